//! A rogue's requests must not get an honest node cut off by the relay. Two rogues ask an honest
//! node for 64 blocks a hundred times a second each for 20 s (as a script would, 4,000
//! `get_blocks` in all); meanwhile an honest newcomer syncs from the same node. What the node
//! sends stays under half of what the relay lets one member send (4 MiB a second, 200 frames a
//! second), the rogues are told `busy` instead of being answered, and the newcomer still syncs
//! and charges nobody.

#![cfg(not(target_arch = "wasm32"))]

mod common;

use common::{bob, extend};
use shared::chain::BlockTree;
use shared::keys::Keypair;
use shared::node::{
    Node, NodeConfig, Output, REPLY_BYTES_PER_SECOND, REPLY_BYTE_BURST, TOTAL_REPLIES_PER_SECOND,
    TOTAL_REPLY_BURST,
};
use shared::params::NetworkParams;
use shared::protocol::message::{NodeMessage, PROTOCOL_VERSION};
use shared::protocol::PeerId;

const CHAIN: usize = 1_200;
/// The relay's default limits for one member (relay/src/config.rs: `DEFAULT_BYTE_RATE_PER_SECOND`,
/// `DEFAULT_BYTE_BURST` of eight 1 MiB frames, `DEFAULT_RATE_PER_SECOND`).
const RELAY_BYTES_PER_SECOND: u64 = 4 * 1024 * 1024;
const RELAY_BYTE_BURST: u64 = 8 * (1024 * 1024 + 1024);
const RELAY_FRAMES_PER_SECOND: u64 = 200;
const RELAY_FRAME_BURST: u64 = 400;

/// The relay's view of one member's sending: two token buckets (frames and bytes), as
/// relay/src/rate.rs keeps them. A frame over either is dropped, and enough drops disconnect.
struct RelayLimit {
    frames: f64,
    bytes: f64,
    at_ms: u64,
    dropped: u64,
}

impl RelayLimit {
    fn new(now_ms: u64) -> RelayLimit {
        RelayLimit {
            frames: RELAY_FRAME_BURST as f64,
            bytes: RELAY_BYTE_BURST as f64,
            at_ms: now_ms,
            dropped: 0,
        }
    }
    fn send(&mut self, bytes: usize, now_ms: u64) {
        let elapsed = (now_ms - self.at_ms) as f64 / 1_000.0;
        self.at_ms = now_ms;
        self.frames =
            (self.frames + elapsed * RELAY_FRAMES_PER_SECOND as f64).min(RELAY_FRAME_BURST as f64);
        self.bytes =
            (self.bytes + elapsed * RELAY_BYTES_PER_SECOND as f64).min(RELAY_BYTE_BURST as f64);
        if self.frames >= 1.0 && self.bytes >= bytes as f64 {
            self.frames -= 1.0;
            self.bytes -= bytes as f64;
        } else {
            self.dropped += 1;
        }
    }
}
const SECONDS: u64 = 20;

fn hello(node_like: &Node, keypair: &Keypair, name: &str) -> String {
    let tree = node_like.tree();
    NodeMessage::Hello {
        protocol_version: PROTOCOL_VERSION,
        chain_id: tree.chain_id(),
        genesis_hash: tree.genesis_hash(),
        name: name.into(),
        address: keypair.address(),
        tip: shared::protocol::message::TipStatus {
            hash: tree.genesis_hash(),
            height: 0,
            total_work: tree.total_work(&tree.genesis_hash()).expect("genesis"),
        },
        direct_links: false,
    }
    .encode()
}

#[test]
fn a_reply_flood_stays_within_what_the_relay_allows_and_an_honest_newcomer_still_syncs() {
    let params = NetworkParams::test();
    let mut tree = BlockTree::new(params.clone());
    let blocks = extend(&mut tree, bob().address(), CHAIN);
    let hashes: Vec<_> = blocks.iter().map(|block| block.hash()).collect();
    let start = blocks.last().unwrap().header.timestamp_ms + 1_000;
    let config = |name: &str, keypair: Keypair| NodeConfig {
        params: params.clone(),
        name: name.into(),
        keypair,
        max_direct_links: 0,
    };
    let mut server = Node::new(config("server", bob()));
    server.handle_stored_blocks(blocks, start);
    let mut client = Node::new(config("newcomer", common::alice()));
    let server_id = PeerId::from_bytes([1; 16]);
    let client_id = PeerId::from_bytes([2; 16]);
    let rogues = [PeerId::from_bytes([7; 16]), PeerId::from_bytes([8; 16])];

    server.handle_peer_joined(client_id.clone(), start);
    client.handle_peer_joined(server_id.clone(), start);
    for (index, rogue) in rogues.iter().enumerate() {
        server.handle_peer_joined(rogue.clone(), start);
        let key = common::keypair(70 + index as u32);
        server.handle_message(rogue, &hello(&server, &key, "rogue"), start);
    }

    let mut sent_bytes = 0u64;
    let mut sent_frames = 0u64;
    let mut busy_to_rogues = 0u64;
    let mut relay = RelayLimit::new(start);
    let mut to_client: Vec<String> = Vec::new();
    let mut to_server: Vec<String> = Vec::new();
    // Milliseconds of the attack; every 10 ms each rogue sends one request of 64 blocks.
    for tick in 0..SECONDS * 100 {
        let now = start + tick * 10;
        for (index, rogue) in rogues.iter().enumerate() {
            let at = (tick as usize * 64 + index * 500) % (CHAIN - 64);
            let request = NodeMessage::GetBlocks {
                hashes: hashes[at..at + 64].to_vec(),
            };
            server.handle_message(rogue, &request.encode(), now);
        }
        for payload in to_server.drain(..) {
            server.handle_message(&client_id, &payload, now);
        }
        server.handle_tick(now);
        while let Some(output) = server.poll_output() {
            if let Output::Send { to, payload, .. } = output {
                sent_bytes += payload.len() as u64;
                sent_frames += 1;
                relay.send(payload.len(), now);
                if rogues.contains(&to) {
                    busy_to_rogues += payload.contains(r#""code":"busy""#) as u64;
                } else if to == client_id {
                    to_client.push(payload);
                }
            } else if let Output::Broadcast { payload } = output {
                sent_bytes += payload.len() as u64;
                sent_frames += 1;
                relay.send(payload.len(), now);
                to_client.push(payload);
            }
        }
        for payload in to_client.drain(..) {
            client.handle_message(&server_id, &payload, now);
        }
        client.handle_tick(now);
        while let Some(output) = client.poll_output() {
            if let Output::Send { payload, .. } | Output::Broadcast { payload } = output {
                to_server.push(payload);
            }
        }
    }

    println!(
        "reply flood: {sent_frames} frames, {sent_bytes} bytes in {SECONDS} s from the honest node, \
         {} of them over the relay's limits; {busy_to_rogues} busy answers to the rogues; \
         newcomer at {} of {CHAIN}",
        relay.dropped,
        client.tree().tip_height()
    );
    assert_eq!(
        relay.dropped, 0,
        "frames over the relay's limits (enough of them and the relay disconnects us)"
    );
    assert!(
        sent_bytes <= REPLY_BYTES_PER_SECOND * SECONDS + REPLY_BYTE_BURST + 1024 * 1024 + 64 * 1024,
        "replies stay within the node's own budget"
    );
    assert!(
        sent_frames
            <= (TOTAL_REPLIES_PER_SECOND as u64 + 2 * 2) * SECONDS + TOTAL_REPLY_BURST as u64 + 64,
        "{sent_frames} frames"
    );
    assert!(busy_to_rogues > 0, "the rogues are told to wait");
    assert!(
        busy_to_rogues <= 2 * (SECONDS + 1),
        "at most one busy a second to each: {busy_to_rogues}"
    );
    // The newcomer, served its share, is in sync and blames nobody.
    assert_eq!(
        client.tree().tip_height(),
        CHAIN as u64,
        "the newcomer synced"
    );
    let server_seen = client.peer(&server_id).expect("the server is known");
    assert_eq!(
        server_seen.misbehavior, 0,
        "the newcomer charged the server: {:?}",
        server_seen.last_offense
    );
}
