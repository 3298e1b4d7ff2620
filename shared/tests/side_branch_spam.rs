//! Side branches cost their sender. A rogue announces 150 valid sibling blocks five below our tip
//! (each a different block on the same parent, each with real proof of work): none can become
//! our chain, yet each would be checked and stored. The honest node checks and stores at most
//! the rogue's side-branch budget, charges it for the rest until it is banned, and an honest
//! peer whose block loses a race is not charged.

#![cfg(not(target_arch = "wasm32"))]

mod common;

use common::{alice, bob, extend, keypair, seal};
use shared::block::Block;
use shared::chain::BlockTree;
use shared::node::{Node, NodeConfig, Output, SIDE_BLOCKS_BURST};
use shared::params::NetworkParams;
use shared::protocol::message::{NodeMessage, TipStatus, PROTOCOL_VERSION};
use shared::protocol::PeerId;

const SPAM: usize = 150;

fn hello(tree: &BlockTree, name: &str, tag: u32) -> String {
    NodeMessage::Hello {
        protocol_version: PROTOCOL_VERSION,
        chain_id: tree.chain_id(),
        genesis_hash: tree.genesis_hash(),
        name: name.into(),
        address: keypair(tag).address(),
        tip: TipStatus {
            hash: tree.tip_hash(),
            height: tree.tip_height(),
            total_work: tree.tip_work(),
        },
        direct_links: false,
    }
    .encode()
}

/// A valid block on the block `below` our tip, different for each `salt`.
fn sibling(tree: &BlockTree, below: u64, salt: u64, now_ms: u64) -> Block {
    let parent_height = tree.tip_height() - below - 1;
    let parent = tree.active_blocks(parent_height, 1)[0].hash();
    let context = tree.parent_context(&parent).expect("stored");
    let mut block = tree.block_template_on(
        &context,
        keypair(100 + salt as u32).address(),
        Vec::new(),
        now_ms,
    );
    block.header.timestamp_ms = context.median_time_past + 1 + salt;
    seal(&mut block);
    block
}

#[test]
fn sibling_spam_is_bounded_and_charged_and_an_honest_race_is_not() {
    let params = NetworkParams::test();
    let mut tree = BlockTree::new(params.clone());
    let blocks = extend(&mut tree, bob().address(), 30);
    let now = blocks.last().unwrap().header.timestamp_ms + 1_000;
    let mut node = Node::new(NodeConfig {
        params,
        name: "honest".into(),
        keypair: alice(),
        max_direct_links: 0,
    });
    node.handle_stored_blocks(blocks, now);
    let rogue = PeerId::from_bytes([7; 16]);
    let racer = PeerId::from_bytes([8; 16]);
    for (peer, tag) in [(&rogue, 70), (&racer, 80)] {
        node.handle_peer_joined(peer.clone(), now);
        node.handle_message(peer, &hello(&tree, "peer", tag), now);
    }
    while node.poll_output().is_some() {}

    // An honest peer lost a race: its block at our height arrives after ours.
    let raced = sibling(&tree, 0, 999, now);
    let raced_hash = raced.hash();
    node.handle_message(
        &racer,
        &NodeMessage::NewBlock { block: raced }.encode(),
        now,
    );

    let mut stored = 0;
    for salt in 0..SPAM as u64 {
        let block = sibling(&tree, 5, salt, now);
        // Ten a second, as a script would send them.
        let at = now + salt * 100;
        node.handle_message(&rogue, &NodeMessage::NewBlock { block }.encode(), at);
        while let Some(output) = node.poll_output() {
            stored += matches!(output, Output::StoreBlock(_)) as usize;
        }
    }
    let rogue_seen = node.peer(&rogue).expect("known");
    println!(
        "side-branch spam: {SPAM} siblings sent, {stored} checked and stored, rogue score {} banned {}",
        rogue_seen.misbehavior, rogue_seen.banned
    );
    assert!(
        stored <= SIDE_BLOCKS_BURST as usize + 3,
        "{stored} of {SPAM} spam blocks were stored"
    );
    assert!(
        rogue_seen.banned,
        "the spammer pays: {:?}",
        rogue_seen.last_offense
    );
    let racer_seen = node.peer(&racer).expect("known");
    assert_eq!(racer_seen.misbehavior, 0, "{:?}", racer_seen.last_offense);
    // The race is decided by the fork choice (equal work: the lower hash); the spam changes nothing.
    let tip = node.tree().tip_hash();
    assert!(
        tip == tree.tip_hash() || tip == raced_hash,
        "our chain is unchanged"
    );
}

#[test]
fn a_busy_notice_and_late_replies_are_no_way_around_the_side_branch_budget() {
    let params = NetworkParams::test();
    let mut tree = BlockTree::new(params.clone());
    let blocks = extend(&mut tree, bob().address(), 30);
    let now = blocks.last().unwrap().header.timestamp_ms + 1_000;
    let mut node = Node::new(NodeConfig {
        params,
        name: "honest".into(),
        keypair: alice(),
        max_direct_links: 0,
    });
    node.handle_stored_blocks(blocks, now);
    let rogue = PeerId::from_bytes([7; 16]);
    node.handle_peer_joined(rogue.clone(), now);
    node.handle_message(&rogue, &hello(&tree, "rogue", 70), now);
    while node.poll_output().is_some() {}

    // "busy" makes us forgive late answers for a while; the rogue then pushes `blocks` replies
    // nobody asked for, full of siblings that lose to our tip.
    let busy = r#"{"type":"error","code":"busy","message":"ask later"}"#;
    let mut stored = 0;
    for round in 0..3u64 {
        let at = now + round * 1_000;
        node.handle_message(&rogue, busy, at);
        let siblings: Vec<Block> = (0..64)
            .map(|i| sibling(&tree, 5, round * 64 + i, now))
            .collect();
        node.handle_message(
            &rogue,
            &NodeMessage::Blocks { blocks: siblings }.encode(),
            at,
        );
        while let Some(output) = node.poll_output() {
            stored += matches!(output, Output::StoreBlock(_)) as usize;
        }
    }
    println!("late-reply spam: 192 siblings sent after busy, {stored} checked and stored");
    assert!(
        stored <= SIDE_BLOCKS_BURST as usize + 1,
        "{stored} of 192 siblings were checked and stored"
    );
}
