//! Scenarios on the deterministic network simulator: convergence, partitions, a newcomer
//! catching up with 10,000 blocks, adversaries, and a few hundred random seeds.
//! A failing seed replays exactly: `SIM_SEED=<seed> cargo test -p shared --test simulator random`.

#![cfg(not(target_arch = "wasm32"))]

mod sim;

use shared::block::Block;
use shared::keys::Keypair;
use shared::mining::{meets_target, mine, MiningOutcome};
use shared::node::{NodeEvent, OwnTxState};
use shared::protocol::message::{NodeMessage, TipStatus, PROTOCOL_VERSION};
use shared::tx::Transaction;
use shared::work::{Target, Work, U256};
use shared::Hash;
use sim::{Adversary, AdversaryContext, Sim, SimConfig};
use std::collections::HashSet;

const MINUTE: u64 = 60_000;

/// Asserts every honest node has the same tip, and that the ledger holds exactly the coins the
/// subsidies created.
fn assert_converged_and_sound(sim: &Sim, context: &str) {
    let tips = sim.tip_counts();
    assert_eq!(
        tips.len(),
        1,
        "{context} (seed {}): nodes did not converge: {}",
        sim.seed,
        sim.tips()
    );
    for peer in sim.honest() {
        let tree = peer.node().tree();
        let ledger = tree.ledger();
        let subsidies: u64 = (1..=tree.tip_height())
            .map(|h| tree.params().subsidy(h))
            .sum();
        assert_eq!(
            ledger.issued(),
            subsidies,
            "{context}: issued coins differ from the subsidies"
        );
        assert_eq!(
            ledger.total_balances(),
            subsidies as u128,
            "{context} (seed {}): balances do not add up to the supply",
            sim.seed
        );
    }
}

/// Ids of every transaction on the best chain of `peer`.
fn chain_tx_ids(sim: &Sim, peer: usize) -> HashSet<Hash> {
    let tree = sim.peers[peer].node().tree();
    tree.active_blocks(0, usize::MAX)
        .iter()
        .flat_map(|block| block.transactions.iter().map(Transaction::id))
        .collect()
}

fn assert_confirmed_in_chain(sim: &Sim, context: &str) {
    let ids = chain_tx_ids(sim, 0);
    let mut confirmed = 0;
    for peer in sim.honest() {
        for own in peer.node().own_transactions() {
            if let OwnTxState::Confirmed { .. } = own.state {
                confirmed += 1;
                assert!(
                    ids.contains(&own.id),
                    "{context} (seed {}): {} believes {} confirmed, but it is not in the chain",
                    sim.seed,
                    peer.node().name(),
                    own.id.short()
                );
            }
        }
    }
    assert!(confirmed > 0, "{context}: no transaction confirmed at all");
}

#[test]
fn ten_nodes_converge_after_an_hour_of_mining_and_payments() {
    let mut sim = Sim::new(
        7,
        SimConfig {
            mean_tx_ms: Some(5_000),
            loss: 0.005,
            ..SimConfig::default()
        },
    );
    let nodes: Vec<usize> = (0..10)
        .map(|i| sim.add_node(&format!("node{i}"), true))
        .collect();
    for &node in &nodes {
        sim.join(node);
    }
    sim.run_for(60 * MINUTE);
    sim.config.mean_tx_ms = None;
    sim.stop_all_mining();
    sim.run_for(2 * MINUTE);

    assert_converged_and_sound(&sim, "ten nodes");
    assert_confirmed_in_chain(&sim, "ten nodes");
    let height = sim.peers[0].node().tree().tip_height();
    assert!(
        height > 200,
        "an hour at ~10 s a block should give hundreds of blocks, got {height}"
    );
    for peer in sim.honest() {
        assert!(
            peer.node().peers().all(|p| !p.banned),
            "an honest peer was banned by {}",
            peer.node().name()
        );
    }
}

#[test]
fn partition_heals_onto_the_heavier_branch_and_losing_transactions_confirm_later() {
    let mut sim = Sim::new(11, SimConfig::default());
    let nodes: Vec<usize> = (0..6)
        .map(|i| sim.add_node(&format!("node{i}"), true))
        .collect();
    for &node in &nodes {
        sim.join(node);
    }
    sim.run_for(2 * MINUTE);
    // Make sure node4, on the lighter side, has coins to pay with.
    let rich = (0..6)
        .max_by_key(|&i| sim.peers[i].node().balance(&sim.peers[i].node().address()))
        .expect("six nodes");
    let node4 = sim.peers[4].node().address();
    if rich != 4 {
        assert!(sim.send(rich, node4, 10, 1), "the richest node can pay");
    }
    sim.run_for(2 * MINUTE);
    assert_converged_and_sound(&sim, "before the partition");

    // Four miners against two: the first half will almost surely have more work.
    sim.set_groups(&[0, 0, 0, 0, 1, 1]);
    sim.run_for(30_000);
    let to = sim.peers[5].node().address();
    assert!(sim.send(4, to, 1, 1), "node4 has coins to send");
    let light_tx = sim.peers[4]
        .node()
        .own_transactions()
        .last()
        .expect("sent")
        .id;
    sim.run_for(5 * MINUTE);

    let heavy_tip = sim.peers[0].node().tree().tip_hash();
    let light_tip = sim.peers[4].node().tree().tip_hash();
    let heavy_work = sim.peers[0].node().tree().tip_work();
    let light_work = sim.peers[4].node().tree().tip_work();
    assert_ne!(heavy_tip, light_tip, "both halves mined their own branch");
    assert!(
        heavy_work > light_work,
        "the four-miner half has more work (seed {})",
        sim.seed
    );
    assert!(
        chain_tx_ids(&sim, 4).contains(&light_tx),
        "the payment confirmed on the light branch"
    );
    assert!(!chain_tx_ids(&sim, 0).contains(&light_tx));

    sim.set_groups(&[0, 0, 0, 0, 0, 0]);
    sim.run_for(3 * MINUTE);
    sim.stop_all_mining();
    sim.run_for(MINUTE);

    assert_converged_and_sound(&sim, "after healing");
    let tree = sim.peers[4].node().tree();
    assert!(
        tree.is_active(&heavy_tip),
        "everyone ends on the heavier branch"
    );
    assert!(
        !tree.is_active(&light_tip),
        "the lighter branch was abandoned"
    );
    let reorged = sim.peers[4].events.iter().any(
        |event| matches!(event, NodeEvent::TipChanged { reorg_depth, .. } if *reorg_depth > 0),
    );
    assert!(reorged, "node4 reported a reorg");
    assert!(
        chain_tx_ids(&sim, 0).contains(&light_tx),
        "the payment from the losing branch returned to the mempool and confirmed again"
    );
    let state = &sim.peers[4]
        .node()
        .own_transactions()
        .last()
        .expect("sent")
        .state;
    assert!(
        matches!(state, OwnTxState::Confirmed { .. }),
        "node4 shows its payment confirmed, got {state:?}"
    );
}

#[test]
fn newcomer_catches_up_with_ten_thousand_blocks_in_batches() {
    let mut sim = Sim::new(3, SimConfig::default());
    let veteran = sim.add_node("veteran", true);
    sim.join(veteran);
    sim.run_for(1);
    for _ in 0..10_000 {
        sim.now_ms += 10_000;
        sim.mine_one(veteran).expect("the veteran has a job");
    }
    sim.set_mining(veteran, false);
    let tree = sim.peers[veteran].node().tree();
    assert_eq!(tree.tip_height(), 10_000);
    let whole_chain_bytes: usize = tree
        .active_blocks(0, usize::MAX)
        .iter()
        .map(|block| serde_json::to_string(block.as_ref()).expect("json").len() + 1)
        .sum();

    let newcomer = sim.add_node("newcomer", false);
    sim.join(newcomer);
    let deadline = sim.now_ms + 30 * MINUTE;
    while sim.now_ms < deadline && sim.peers[newcomer].node().tree().tip_height() < 10_000 {
        sim.run_for(5_000);
    }
    let (messages_in, bytes_in, messages_out, bytes_out) = sim.traffic(newcomer);
    println!(
        "newcomer sync of 10,000 blocks: {messages_in} messages / {bytes_in} bytes in, \
         {messages_out} messages / {bytes_out} bytes out, largest message {} bytes; \
         the whole chain as one message would be {whole_chain_bytes} bytes",
        sim.peers[newcomer].largest_message
    );
    assert_eq!(
        sim.peers[newcomer].node().tree().tip_hash(),
        sim.peers[veteran].node().tree().tip_hash()
    );
    assert!(
        sim.peers[newcomer].largest_message < shared::protocol::MAX_FRAME_BYTES,
        "no message carries the whole chain"
    );
    assert!(
        messages_in < 1_500,
        "batches of headers and blocks, not one message per block: {messages_in}"
    );
}

// ---- adversaries ----

fn adversary_key(tag: u8) -> Keypair {
    Keypair::from_seed([tag; 32])
}

fn hello(ctx: &AdversaryContext, name: &str, tip: TipStatus) -> String {
    let tree = ctx.honest.tree();
    NodeMessage::Hello {
        protocol_version: PROTOCOL_VERSION,
        chain_id: tree.chain_id(),
        genesis_hash: tree.genesis_hash(),
        name: name.into(),
        address: adversary_key(0).address(),
        tip,
        direct_links: false,
    }
    .encode()
}

fn honest_tip(ctx: &AdversaryContext) -> TipStatus {
    ctx.honest.tip_status()
}

fn huge_claim(salt: u64) -> TipStatus {
    TipStatus {
        hash: Hash::digest(&[b"fake tip", &salt.to_be_bytes()]),
        height: 1_000_000,
        total_work: Work(U256::MAX >> 8),
    }
}

/// Mines `block` so that it meets its target (which the attack may have changed).
fn remine(mut block: Block) -> Block {
    block.header.tx_root = block.compute_tx_root();
    let mut start = 0;
    loop {
        if let MiningOutcome::Found { nonce, .. } = mine(&block.header, start, 10_000) {
            block.header.nonce = nonce;
            return block;
        }
        start += 10_000;
    }
}

fn template(ctx: &AdversaryContext, txs: Vec<Transaction>) -> Block {
    let tree = ctx.honest.tree();
    tree.block_template(adversary_key(0).address(), txs, ctx.now_ms)
}

/// Sends the block built by `build` on a timer, after a proper hello.
struct BlockSpammer {
    name: &'static str,
    build: fn(&AdversaryContext) -> Block,
}

impl Adversary for BlockSpammer {
    fn name(&self) -> &'static str {
        self.name
    }
    fn on_join(&mut self, ctx: &AdversaryContext) -> Vec<String> {
        vec![hello(ctx, self.name, honest_tip(ctx))]
    }
    fn on_message(&mut self, _: &AdversaryContext, _: &str) -> Vec<String> {
        Vec::new()
    }
    fn on_timer(&mut self, ctx: &AdversaryContext) -> Vec<String> {
        vec![NodeMessage::NewBlock {
            block: (self.build)(ctx),
        }
        .encode()]
    }
}

fn invalid_proof_of_work(ctx: &AdversaryContext) -> Block {
    let mut block = remine(template(ctx, Vec::new()));
    while meets_target(&block.header) {
        block.header.nonce = block.header.nonce.wrapping_add(1);
    }
    block
}

fn wrong_target(ctx: &AdversaryContext) -> Block {
    let mut block = template(ctx, Vec::new());
    let easiest = Target::from_u256(ctx.params.max_target);
    let harder = Target::from_u256(ctx.params.max_target >> 1);
    block.header.target = if block.header.target == easiest {
        harder
    } else {
        easiest
    };
    remine(block)
}

fn bad_signature(ctx: &AdversaryContext) -> Block {
    let key = adversary_key(1);
    let chain_id = ctx.honest.tree().chain_id();
    let mut tx = Transaction::new_signed(&key, &chain_id, adversary_key(2).address(), 5, 1, 0);
    tx.signature.0[0] ^= 0xff;
    let mut block = template(ctx, vec![tx]);
    block.coinbase.amount = ctx.params.subsidy(block.header.height) + 1;
    remine(block)
}

fn double_spend(ctx: &AdversaryContext) -> Block {
    let key = adversary_key(3);
    let chain_id = ctx.honest.tree().chain_id();
    let first = Transaction::new_signed(&key, &chain_id, adversary_key(4).address(), 40, 0, 0);
    let second = Transaction::new_signed(&key, &chain_id, adversary_key(5).address(), 40, 0, 0);
    let mut block = template(ctx, vec![first, second]);
    block.coinbase.amount = ctx.params.subsidy(block.header.height);
    remine(block)
}

/// Announces ever-new tips with enormous work it cannot show.
struct FakeWork {
    salt: u64,
}

impl Adversary for FakeWork {
    fn name(&self) -> &'static str {
        "fake-work"
    }
    fn on_join(&mut self, ctx: &AdversaryContext) -> Vec<String> {
        vec![hello(ctx, "fake-work", huge_claim(self.salt))]
    }
    fn on_message(&mut self, _: &AdversaryContext, text: &str) -> Vec<String> {
        match NodeMessage::decode(text) {
            Ok(NodeMessage::GetHeaders { .. }) => vec![NodeMessage::Headers {
                headers: Vec::new(),
            }
            .encode()],
            _ => Vec::new(),
        }
    }
    fn on_timer(&mut self, _: &AdversaryContext) -> Vec<String> {
        self.salt += 1;
        vec![NodeMessage::Status {
            tip: huge_claim(self.salt),
        }
        .encode()]
    }
}

/// Answers every header request with 500 fresh headers whose blocks never come, and pushes
/// more headers unasked.
struct EndlessHeaders;

impl EndlessHeaders {
    fn headers(ctx: &AdversaryContext) -> String {
        let tree = ctx.honest.tree();
        let mut prev = tree.genesis_hash();
        let mut headers = Vec::new();
        for height in 1..=500u64 {
            let mut block = tree.block_template(adversary_key(9).address(), Vec::new(), ctx.now_ms);
            block.header.height = height;
            block.header.prev_hash = prev;
            block.header.timestamp_ms = ctx.params.genesis_timestamp_ms + height * 1_000;
            block.header.target = ctx.params.initial_target;
            let block = remine(block);
            prev = block.hash();
            headers.push(block.header);
        }
        NodeMessage::Headers { headers }.encode()
    }
}

impl Adversary for EndlessHeaders {
    fn name(&self) -> &'static str {
        "endless-headers"
    }
    fn on_join(&mut self, ctx: &AdversaryContext) -> Vec<String> {
        vec![hello(ctx, "endless-headers", huge_claim(77))]
    }
    fn on_message(&mut self, ctx: &AdversaryContext, text: &str) -> Vec<String> {
        match NodeMessage::decode(text) {
            Ok(NodeMessage::GetHeaders { .. }) => vec![Self::headers(ctx)],
            _ => Vec::new(),
        }
    }
    fn on_timer(&mut self, ctx: &AdversaryContext) -> Vec<String> {
        vec![Self::headers(ctx)]
    }
}

/// Sends messages over the size limit.
struct Oversized;

impl Adversary for Oversized {
    fn name(&self) -> &'static str {
        "oversized"
    }
    fn on_join(&mut self, ctx: &AdversaryContext) -> Vec<String> {
        vec![hello(ctx, "oversized", honest_tip(ctx))]
    }
    fn on_message(&mut self, _: &AdversaryContext, _: &str) -> Vec<String> {
        Vec::new()
    }
    fn on_timer(&mut self, _: &AdversaryContext) -> Vec<String> {
        let padding = "x".repeat(shared::protocol::MAX_FRAME_BYTES + 10);
        vec![format!(
            r#"{{"type":"error","code":"pad","message":"{padding}"}}"#
        )]
    }
}

/// Sends garbage: bad JSON, unknown types, wrong field types, counts over the limits.
struct Garbage {
    round: usize,
}

impl Adversary for Garbage {
    fn name(&self) -> &'static str {
        "garbage"
    }
    fn on_join(&mut self, ctx: &AdversaryContext) -> Vec<String> {
        vec![hello(ctx, "garbage", honest_tip(ctx))]
    }
    fn on_message(&mut self, _: &AdversaryContext, _: &str) -> Vec<String> {
        Vec::new()
    }
    fn on_timer(&mut self, _: &AdversaryContext) -> Vec<String> {
        let samples = [
            "not json at all".to_string(),
            r#"{"type":"warp_drive","speed":9}"#.to_string(),
            r#"{"type":"status","tip":{"hash":"zz","height":-1,"total_work":"g"}}"#.to_string(),
            format!(
                r#"{{"type":"get_blocks","hashes":[{}]}}"#,
                vec![format!("\"{}\"", "00".repeat(32)); 65].join(",")
            ),
            "[1,2,3]".to_string(),
        ];
        self.round += 1;
        vec![samples[self.round % samples.len()].clone()]
    }
}

#[test]
fn adversaries_are_dropped_and_never_change_an_honest_chain() {
    let mut sim = Sim::new(5, SimConfig::default());
    let honest: Vec<usize> = (0..3)
        .map(|i| sim.add_node(&format!("honest{i}"), true))
        .collect();
    for &node in &honest {
        sim.join(node);
    }
    sim.run_for(MINUTE);
    let adversaries: Vec<(usize, &str)> = vec![
        (
            sim.add_adversary(Box::new(BlockSpammer {
                name: "invalid-pow",
                build: invalid_proof_of_work,
            })),
            "invalid-pow",
        ),
        (
            sim.add_adversary(Box::new(BlockSpammer {
                name: "wrong-target",
                build: wrong_target,
            })),
            "wrong-target",
        ),
        (
            sim.add_adversary(Box::new(BlockSpammer {
                name: "bad-signature",
                build: bad_signature,
            })),
            "bad-signature",
        ),
        (
            sim.add_adversary(Box::new(BlockSpammer {
                name: "double-spend",
                build: double_spend,
            })),
            "double-spend",
        ),
        (
            sim.add_adversary(Box::new(FakeWork { salt: 0 })),
            "fake-work",
        ),
        (
            sim.add_adversary(Box::new(EndlessHeaders)),
            "endless-headers",
        ),
        (sim.add_adversary(Box::new(Oversized)), "oversized"),
        (sim.add_adversary(Box::new(Garbage { round: 0 })), "garbage"),
    ];
    for &(adversary, _) in &adversaries {
        sim.join(adversary);
    }
    sim.run_for(5 * MINUTE);
    sim.stop_all_mining();
    sim.run_for(MINUTE);

    assert_converged_and_sound(&sim, "under attack");
    let honest_addresses: HashSet<_> = honest
        .iter()
        .map(|&i| sim.peers[i].node().address())
        .collect();
    for &node in &honest {
        let tree = sim.peers[node].node().tree();
        assert!(tree.tip_height() > 10, "honest mining went on");
        for block in tree.active_blocks(1, usize::MAX) {
            assert!(
                honest_addresses.contains(&block.coinbase.to),
                "block {} on an honest chain pays an adversary",
                block.header.height
            );
        }
        for &(adversary, name) in &adversaries {
            let id = &sim.peers[adversary].id;
            let info = sim.peers[node]
                .node()
                .peer(id)
                .expect("the adversary was seen");
            assert!(
                info.banned,
                "{} did not drop the {name} adversary (score {}, last offense {:?})",
                sim.peers[node].node().name(),
                info.misbehavior,
                info.last_offense
            );
        }
        for other in &honest {
            let id = &sim.peers[*other].id;
            if let Some(info) = sim.peers[node].node().peer(id) {
                assert!(!info.banned, "an honest peer was dropped");
            }
        }
    }
}

#[test]
fn a_peer_on_another_network_is_refused_with_a_reason() {
    struct OtherNetwork;
    impl Adversary for OtherNetwork {
        fn name(&self) -> &'static str {
            "other-network"
        }
        fn on_join(&mut self, ctx: &AdversaryContext) -> Vec<String> {
            let other = shared::BlockTree::new(shared::NetworkParams::classroom());
            vec![NodeMessage::Hello {
                protocol_version: PROTOCOL_VERSION,
                chain_id: other.chain_id(),
                genesis_hash: other.genesis_hash(),
                name: "classroom".into(),
                address: adversary_key(0).address(),
                tip: honest_tip(ctx),
                direct_links: false,
            }
            .encode()]
        }
        fn on_message(&mut self, _: &AdversaryContext, _: &str) -> Vec<String> {
            Vec::new()
        }
        fn on_timer(&mut self, _: &AdversaryContext) -> Vec<String> {
            Vec::new()
        }
    }
    let mut sim = Sim::new(1, SimConfig::default());
    let node = sim.add_node("honest", false);
    sim.join(node);
    let stranger = sim.add_adversary(Box::new(OtherNetwork));
    sim.join(stranger);
    sim.run_for(10_000);
    let id = sim.peers[stranger].id.clone();
    let refused = sim.peers[node].events.iter().any(|event| {
        matches!(event, NodeEvent::PeerRefused { peer, reason } if *peer == id && reason.contains("another network"))
    });
    assert!(
        refused,
        "the node refused the peer from another network with a reason"
    );
}

// ---- random seeds ----

fn random_scenario(seed: u64) {
    let mut sim = Sim::new(
        seed,
        SimConfig {
            loss: 0.01,
            mean_tx_ms: Some(8_000),
            mean_block_ms: 8_000,
            ..SimConfig::default()
        },
    );
    let count = 3 + (seed % 3) as usize;
    let nodes: Vec<usize> = (0..count)
        .map(|i| sim.add_node(&format!("n{i}"), true))
        .collect();
    for &node in &nodes {
        sim.join(node);
    }
    for _ in 0..8 {
        sim.run_for(MINUTE);
        match sim.rng.below(4) {
            0 => {
                let groups: Vec<u32> = (0..count).map(|_| sim.rng.below(2) as u32).collect();
                sim.set_groups(&groups);
            }
            1 => {
                let node = nodes[sim.rng.below(count as u64) as usize];
                sim.leave(node);
                let away = sim.rng.below(30_000);
                sim.run_for(away);
                sim.join(node);
            }
            2 => sim.set_groups(&vec![0; count]),
            _ => {}
        }
    }
    sim.set_groups(&vec![0; count]);
    sim.config.mean_tx_ms = None;
    sim.run_for(MINUTE);
    sim.stop_all_mining();
    sim.run_for(2 * MINUTE);
    assert_converged_and_sound(
        &sim,
        &format!("random scenario, replay with SIM_SEED={seed}"),
    );
}

#[test]
fn random_seeds_converge() {
    if let Ok(seed) = std::env::var("SIM_SEED") {
        random_scenario(seed.parse().expect("SIM_SEED is a number"));
        return;
    }
    let seeds: u64 = std::env::var("SIM_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(200);
    for seed in 0..seeds {
        random_scenario(seed);
    }
}

#[test]
fn a_fork_deeper_than_one_headers_reply_is_followed_to_the_heavier_branch() {
    let mut sim = Sim::new(21, SimConfig::default());
    let a = sim.add_node("a", true);
    let b = sim.add_node("b", true);
    sim.join(a);
    sim.join(b);
    sim.run_for(1);
    sim.set_groups(&[0, 1]);
    // Both mine alone: a 600 blocks, b 700, so b's branch wins and is longer than one reply.
    for (node, blocks) in [(a, 600), (b, 700)] {
        for _ in 0..blocks {
            sim.now_ms += 10_000;
            sim.mine_one(node).expect("a job");
        }
    }
    sim.stop_all_mining();
    let b_tip = sim.peers[b].node().tree().tip_hash();
    assert_eq!(
        sim.peers[a].node().tree().fork_height(&b_tip),
        None,
        "a has not seen b's branch yet"
    );
    sim.set_groups(&[0, 0]);
    sim.run_for(10 * MINUTE);
    assert_eq!(
        sim.peers[a].node().tree().tip_hash(),
        b_tip,
        "a followed b's heavier branch: {}",
        sim.tips()
    );
    let depth = sim.peers[a]
        .events
        .iter()
        .filter_map(|event| match event {
            NodeEvent::TipChanged { reorg_depth, .. } => Some(*reorg_depth),
            _ => None,
        })
        .max();
    assert_eq!(depth, Some(600), "a reorged away all 600 of its own blocks");
}
