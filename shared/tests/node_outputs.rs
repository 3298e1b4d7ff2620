//! What the `Node` hands back to its driver when a peer's blocks turn out bad later, and what
//! a peer pays for them: the node decides, the driver only stores and deletes.

#![cfg(not(target_arch = "wasm32"))]

mod common;

use common::{alice, bob, carol, child_of, extend, next_block, pay, tree_with};
use shared::block::Block;
use shared::chain::BlockTree;
use shared::keys::Keypair;
use shared::node::{Node, NodeConfig, NodeEvent, Output, SIDE_BRANCH_WINDOW_BLOCKS};
use shared::params::NetworkParams;
use shared::protocol::message::{NodeMessage, PROTOCOL_VERSION};
use shared::protocol::PeerId;

struct Setup {
    node: Node,
    peer: PeerId,
    now: u64,
}

/// A node holding `prefix` and one greeted peer.
fn node_with(prefix: &[Block]) -> Setup {
    let params = NetworkParams::test();
    let now = prefix.last().map_or(params.genesis_timestamp_ms, |block| {
        block.header.timestamp_ms
    }) + 60_000;
    let mut node = Node::new(NodeConfig {
        params,
        name: "honest".into(),
        keypair: Keypair::from_seed([42; 32]),
    });
    node.handle_stored_blocks(prefix.to_vec(), now);
    let peer = PeerId::from_bytes([9; 16]);
    node.handle_peer_joined(peer.clone(), now);
    let hello = NodeMessage::Hello {
        protocol_version: PROTOCOL_VERSION,
        chain_id: node.tree().chain_id(),
        genesis_hash: node.tree().genesis_hash(),
        name: "peer".into(),
        address: carol().address(),
        tip: node.tip_status(),
    }
    .encode();
    node.handle_message(&peer, &hello, now);
    while node.poll_output().is_some() {}
    Setup { node, peer, now }
}

fn deliver(setup: &mut Setup, block: &Block) -> Vec<Output> {
    let message = NodeMessage::NewBlock {
        block: block.clone(),
    }
    .encode();
    setup.node.handle_message(&setup.peer, &message, setup.now);
    std::iter::from_fn(|| setup.node.poll_output()).collect()
}

fn score(setup: &Setup) -> u32 {
    setup.node.peer(&setup.peer).unwrap().misbehavior
}

#[test]
fn a_side_branch_whose_ancestor_fails_the_ledger_is_deleted_reported_and_blamed() {
    let params = NetworkParams::test();
    let mut tree = BlockTree::new(params.clone());
    let prefix = extend(&mut tree, alice().address(), 2);
    let a3 = extend(&mut tree, alice().address(), 1);
    let mut setup = node_with(&[prefix.clone(), a3].concat());

    let b_tree = tree_with(&params, &prefix);
    let overspend = pay(&bob(), &tree.chain_id(), &carol(), 5, 0, 0);
    let b3 = next_block(&b_tree, carol().address(), vec![overspend]);
    let b4 = child_of(&b3, carol().address(), &params);

    let outputs = deliver(&mut setup, &b3);
    assert!(
        outputs
            .iter()
            .any(|output| matches!(output, Output::StoreBlock(block) if block.hash() == b3.hash())),
        "B3 is a side branch, valid on its own, and stored"
    );
    let before = score(&setup);
    let outputs = deliver(&mut setup, &b4);
    assert!(
        outputs
            .iter()
            .any(|output| *output == Output::DeleteBlock(b3.hash())),
        "the stored B3 is deleted once the ledger refuses it: {outputs:?}"
    );
    let rejected: Vec<_> = outputs
        .iter()
        .filter_map(|output| match output {
            Output::Event(NodeEvent::BlockRejected { hash, .. }) => Some(*hash),
            _ => None,
        })
        .collect();
    assert!(rejected.contains(&b3.hash()) && rejected.contains(&b4.hash()));
    assert!(
        score(&setup) >= before + 100,
        "the sender of the overspending block pays for it"
    );
}

#[test]
fn an_orphan_with_a_bad_signature_costs_its_sender_when_its_parent_comes() {
    let params = NetworkParams::test();
    let mut tree = BlockTree::new(params.clone());
    let prefix = extend(&mut tree, alice().address(), 3);
    let mut setup = node_with(&prefix[..2]);
    // Block 4 carries a payment whose signature is broken; block 3 (its parent) comes later.
    let mut bad_payment = pay(&alice(), &tree.chain_id(), &carol(), 1, 0, 0);
    bad_payment.amount = 2;
    let mut child = next_block(&tree, carol().address(), vec![bad_payment]);
    common::reseal(&mut child);
    deliver(&mut setup, &child);
    assert!(
        setup.node.tree().is_orphan(&child.hash()),
        "it waits as an orphan"
    );
    let before = score(&setup);
    deliver(&mut setup, &prefix[2]);
    assert!(!setup.node.tree().contains(&child.hash()));
    assert!(
        score(&setup) >= before + 100,
        "the orphan's sender was not penalised when its block turned out invalid"
    );
}

#[test]
fn a_block_of_a_side_branch_far_behind_is_refused_unchecked() {
    let params = NetworkParams::test();
    let mut tree = BlockTree::new(params.clone());
    let prefix = extend(&mut tree, alice().address(), 1);
    let main = extend(
        &mut tree,
        alice().address(),
        SIDE_BRANCH_WINDOW_BLOCKS as usize + 5,
    );
    let mut setup = node_with(&[prefix.clone(), main].concat());
    let side_tree = tree_with(&params, &prefix);
    let side = next_block(&side_tree, carol().address(), vec![]);
    let outputs = deliver(&mut setup, &side);
    assert!(
        !setup.node.tree().contains(&side.hash()),
        "a block 100 blocks' worth behind our tip is not taken in"
    );
    assert!(
        !outputs
            .iter()
            .any(|output| matches!(output, Output::StoreBlock(_))),
        "nothing is stored for it"
    );
    assert!(score(&setup) > 0, "its sender pays a little");
    // A side branch within the window is still kept (forks a class makes on purpose).
    let near_prefix: Vec<Block> = tree
        .active_blocks(1, 100)
        .iter()
        .map(|block| block.as_ref().clone())
        .collect();
    let near_tree = tree_with(&params, &near_prefix);
    let near = next_block(&near_tree, carol().address(), vec![]);
    deliver(&mut setup, &near);
    assert!(setup.node.tree().contains(&near.hash()));
}
