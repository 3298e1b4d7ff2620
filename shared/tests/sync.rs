//! Sync between two nodes wired by hand, with control over every message: what happens when a
//! request is lost on the way (a relay dropping a frame for its rate limit, say), or when one
//! side's driver pauses it (its storage fell behind) and it refuses what arrives meanwhile.

mod common;

use common::{alice, bob, extend};
use shared::chain::BlockTree;
use shared::node::{Node, NodeConfig, Output, BUSY_RETRY_MS, REQUEST_TIMEOUT_MS};
use shared::params::NetworkParams;
use shared::protocol::PeerId;

const CHAIN: usize = 1_200;

struct Pair {
    server: Node,
    client: Node,
    server_id: PeerId,
    client_id: PeerId,
    now: u64,
}

impl Pair {
    fn new() -> Pair {
        let params = NetworkParams::test();
        let mut tree = BlockTree::new(params.clone());
        let blocks = extend(&mut tree, bob().address(), CHAIN);
        let now = blocks.last().unwrap().header.timestamp_ms + 1_000;
        let mut server = Node::new(NodeConfig {
            params: params.clone(),
            name: "server".into(),
            keypair: bob(),
            max_direct_links: 0,
        });
        server.handle_stored_blocks(blocks, now);
        let client = Node::new(NodeConfig {
            params,
            name: "client".into(),
            keypair: alice(),
            max_direct_links: 0,
        });
        let mut pair = Pair {
            server,
            client,
            server_id: PeerId::from_bytes([1; 16]),
            client_id: PeerId::from_bytes([2; 16]),
            now,
        };
        pair.server.handle_peer_joined(pair.client_id.clone(), now);
        pair.client.handle_peer_joined(pair.server_id.clone(), now);
        pair
    }

    /// Delivers messages both ways until both are quiet. `drop_request` sees each message the
    /// client sends and may swallow it. Returns how many it swallowed.
    fn run(&mut self, mut drop_request: impl FnMut(&str) -> bool) -> usize {
        let mut dropped = 0;
        loop {
            let mut moved = false;
            while let Some(output) = self.client.poll_output() {
                if let Output::Send { payload, .. } | Output::Broadcast { payload } = output {
                    if drop_request(&payload) {
                        dropped += 1;
                        continue;
                    }
                    self.server
                        .handle_message(&self.client_id, &payload, self.now);
                    moved = true;
                }
            }
            while let Some(output) = self.server.poll_output() {
                if let Output::Send { payload, .. } | Output::Broadcast { payload } = output {
                    self.client
                        .handle_message(&self.server_id, &payload, self.now);
                    moved = true;
                }
            }
            if !moved {
                return dropped;
            }
        }
    }
}

#[test]
fn a_lost_block_request_is_asked_again_as_soon_as_a_later_answer_shows_it_lost() {
    let mut pair = Pair::new();
    // Lose the first `get_blocks`, as a relay enforcing its rate limit would. Replies come in
    // order, so the answer to the next request shows the first one will not be answered.
    let mut lost = false;
    let dropped = pair.run(|payload| {
        let drop = !lost && payload.contains("\"get_blocks\"");
        lost |= drop;
        drop
    });
    assert_eq!(dropped, 1);
    assert_eq!(pair.client.tree().tip_height(), CHAIN as u64);
    let server = pair.client.peer(&pair.server_id).unwrap();
    assert_eq!(
        server.misbehavior, 0,
        "nothing is charged for a request we lost: {:?}",
        server.last_offense
    );
}

#[test]
fn a_lost_last_block_request_is_retried_after_the_timeout_and_the_peer_stays_trusted() {
    let mut pair = Pair::new();
    // Lose every request for the last block: once no later answer shows it lost, only the
    // deadline can.
    let tip = pair.server.tree().tip_hash().to_string();
    let dropped = pair.run(|payload| payload.contains("\"get_blocks\"") && payload.contains(&tip));
    assert!(dropped >= 1);
    assert!(
        pair.client.tree().tip_height() < CHAIN as u64,
        "the lost request holds the client up"
    );

    pair.now += REQUEST_TIMEOUT_MS + 1;
    pair.client.handle_tick(pair.now);
    pair.run(|_| false);

    assert_eq!(pair.client.tree().tip_height(), CHAIN as u64);
    assert_eq!(pair.client.tree().tip_hash(), pair.server.tree().tip_hash());
    let server = pair.client.peer(&pair.server_id).unwrap();
    assert!(
        !server.banned,
        "an honest peer is not banned for a request we lost: {:?}",
        server.last_offense
    );
}

#[test]
fn a_client_whose_storage_falls_behind_charges_nobody_for_the_answers_it_refused() {
    let mut pair = Pair::new();
    // The client asks, then its driver pauses it before the answers come: they are refused.
    pair.client.handle_tick(pair.now);
    let mut asked = Vec::new();
    while let Some(output) = pair.client.poll_output() {
        if let Output::Send { payload, .. } | Output::Broadcast { payload } = output {
            asked.push(payload);
        }
    }
    pair.client.set_inbound_paused(true, pair.now);
    for payload in asked {
        pair.server
            .handle_message(&pair.client_id, &payload, pair.now);
    }
    pair.run(|_| false);
    assert!(
        pair.client.lost_messages() > 0,
        "the paused client refused answers"
    );
    assert_eq!(pair.client.tree().tip_height(), 0);

    // Paused much longer than a request may take: no deadline runs meanwhile.
    pair.now += 3 * REQUEST_TIMEOUT_MS;
    pair.client.handle_tick(pair.now);
    pair.client.set_inbound_paused(false, pair.now);
    pair.run(|_| false);
    pair.now += REQUEST_TIMEOUT_MS + 1;
    pair.client.handle_tick(pair.now);
    pair.run(|_| false);

    assert_eq!(pair.client.tree().tip_height(), CHAIN as u64);
    let server = pair.client.peer(&pair.server_id).unwrap();
    assert_eq!(
        server.misbehavior, 0,
        "the server is not charged for our pause: {:?}",
        server.last_offense
    );
}

#[test]
fn a_paused_server_says_busy_and_nobody_is_charged() {
    let mut pair = Pair::new();
    // The server cannot take messages (its storage is behind): the client's hello and requests
    // are refused, and each request is answered `busy`.
    pair.server.set_inbound_paused(true, pair.now);
    pair.run(|_| false);
    assert!(pair.server.lost_messages() > 0);
    assert_eq!(pair.client.tree().tip_height(), 0);

    pair.now += 2 * REQUEST_TIMEOUT_MS;
    pair.client.handle_tick(pair.now);
    pair.server.set_inbound_paused(false, pair.now);
    pair.run(|_| false);
    // The server lost the client's hello: it asks for it, the client says it again and asks
    // again once it had time to arrive.
    for _ in 0..4 {
        pair.now += BUSY_RETRY_MS;
        pair.client.handle_tick(pair.now);
        pair.server.handle_tick(pair.now);
        pair.run(|_| false);
    }

    assert_eq!(pair.client.tree().tip_height(), CHAIN as u64);
    let server = pair.client.peer(&pair.server_id).unwrap();
    assert_eq!(server.misbehavior, 0, "{:?}", server.last_offense);
    let client = pair.server.peer(&pair.client_id).unwrap();
    assert_eq!(client.misbehavior, 0, "{:?}", client.last_offense);
}

#[test]
fn a_lost_headers_request_is_retried_after_the_timeout() {
    let mut pair = Pair::new();
    let mut lost = 0;
    // Lose the second `get_headers` (the one that continues past the first 500).
    pair.run(|payload| {
        if payload.contains("\"get_headers\"") {
            lost += 1;
            return lost == 2;
        }
        false
    });
    assert_eq!(pair.client.tree().tip_height(), 500);
    pair.now += REQUEST_TIMEOUT_MS + 1;
    pair.client.handle_tick(pair.now);
    pair.run(|_| false);
    assert_eq!(pair.client.tree().tip_height(), CHAIN as u64);
    assert!(!pair.client.peer(&pair.server_id).unwrap().banned);
}

/// Issue 25: a 520-block sync sent 1,025 `get_blocks` entries for 520 blocks, each window
/// overlapping the one before. Every block is asked for once, and each `get_headers` is answered
/// by headers we did not have.
#[test]
fn every_block_is_asked_for_once() {
    let mut pair = Pair::new();
    let mut asked: Vec<String> = Vec::new();
    let mut header_requests = 0;
    pair.run(|payload| {
        if let Ok(shared::protocol::message::NodeMessage::GetBlocks { hashes }) =
            shared::protocol::message::NodeMessage::decode(payload)
        {
            asked.extend(hashes.iter().map(|hash| hash.to_string()));
        }
        header_requests += usize::from(payload.contains("\"get_headers\""));
        false
    });
    assert_eq!(pair.client.tree().tip_height(), CHAIN as u64);
    let distinct: std::collections::HashSet<&String> = asked.iter().collect();
    assert_eq!(
        asked.len(),
        distinct.len(),
        "{} block hashes asked for, {} distinct",
        asked.len(),
        distinct.len()
    );
    assert_eq!(distinct.len(), CHAIN);
    let needed = CHAIN.div_ceil(shared::protocol::message::MAX_HEADERS_PER_MESSAGE) + 1;
    assert!(
        header_requests <= needed,
        "{header_requests} header requests for {CHAIN} blocks (at most {needed} needed)"
    );
}

/// Issue 25: a node syncing a long chain from a peer that paces it (`busy`: its reply budget is
/// spent) said "in sync" at heights far below the peer's for each 2 s wait, and its screen with
/// it. A peer that is ahead and only asked us to wait still makes us a node that is syncing.
#[test]
fn a_busy_peer_ahead_of_us_leaves_us_syncing() {
    let mut pair = Pair::new();
    // The server answers the first few block requests, then its budget is spent: the requests
    // after those go unanswered, and it says `busy`.
    let mut requests = 0;
    pair.run(|payload| {
        let asks = payload.contains("\"get_blocks\"");
        requests += usize::from(asks);
        asks && requests > 3
    });
    let height = pair.client.tree().tip_height();
    assert!(height > 0 && height < CHAIN as u64, "part way: {height}");
    let busy = r#"{"type":"error","code":"busy","message":"busy: ask again later"}"#;
    pair.client.handle_message(&pair.server_id, busy, pair.now);
    assert!(
        matches!(
            pair.client.sync_state(),
            shared::node::SyncState::Syncing { .. }
        ),
        "at height {height} of {CHAIN}, waiting on a busy peer, the client says {:?}",
        pair.client.sync_state()
    );
    // And once the wait is over it goes on to the end, charging nobody.
    pair.now += BUSY_RETRY_MS;
    pair.client.handle_tick(pair.now);
    pair.run(|_| false);
    assert_eq!(pair.client.tree().tip_height(), CHAIN as u64);
    assert!(matches!(
        pair.client.sync_state(),
        shared::node::SyncState::Synced
    ));
    let server = pair.client.peer(&pair.server_id).unwrap();
    assert_eq!(server.misbehavior, 0, "{:?}", server.last_offense);
}
