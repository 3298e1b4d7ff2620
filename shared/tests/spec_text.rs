//! Behaviour that `docs/protocol.md` states in words, pinned so the text and the code cannot drift
//! apart: the subsidy formula at its edges, the Merkle root of no leaves, targets that expand to
//! nothing and their work, the answer to an empty or unknown locator, and a locator that never
//! names one hash twice, even when it continues after a full `headers` reply.

#![cfg(not(target_arch = "wasm32"))]

mod common;

use common::{bob, extend};
use shared::block::{merkle_root, Block};
use shared::chain::BlockTree;
use shared::hash::Hash;
use shared::node::{Node, NodeConfig, Output};
use shared::params::NetworkParams;
use shared::protocol::{NodeMessage, PeerId};
use shared::work::{Target, Work, U256};
use std::collections::HashSet;

#[test]
fn subsidy_is_the_initial_subsidy_shifted_by_the_halvings() {
    let params = NetworkParams::default_network();
    let cases = [
        (0, 0),
        (1, 50),
        (209_999, 50),
        (210_000, 25),
        (419_999, 25),
        (420_000, 12),
        (210_000 * 5, 1),
        (210_000 * 6, 0),
        (210_000 * 63, 0),
        // 64 halvings and more: a shift of 64 or more is 0, not a wrapped or panicking shift.
        (210_000 * 64, 0),
        (u64::MAX, 0),
    ];
    for (height, subsidy) in cases {
        assert_eq!(params.subsidy(height), subsidy, "height {height}");
    }
    let huge = NetworkParams {
        initial_subsidy: u64::MAX,
        ..params
    };
    assert_eq!(huge.subsidy(210_000 * 63), 1, "63 halvings of u64::MAX");
    assert_eq!(huge.subsidy(210_000 * 64), 0);
}

#[test]
fn the_merkle_root_of_no_leaves_is_zero_and_of_one_leaf_the_leaf() {
    assert_eq!(merkle_root(Vec::new()), Hash::ZERO);
    let leaf = Hash::digest(&[b"leaf"]);
    assert_eq!(merkle_root(vec![leaf]), leaf);
}

#[test]
fn targets_that_expand_to_nothing_are_invalid_and_worth_one() {
    for compact in [
        0x0000_0000,
        0x0100_0001,
        0x0200_00ff,
        0x0300_0000,
        0x2101_0000,
        0x2201_0000,
    ] {
        let target = Target(compact);
        assert_eq!(target.expand(), None, "{compact:08x}");
        assert_eq!(target.work(), Work(U256::one()), "{compact:08x}");
    }
    // 0xffff << 240 needs 257 bits; 0xffff << 232 is valid, worth 2^256 / (0xffff·2^232 + 1).
    assert_eq!(Target(0x2100_ffff).expand(), None);
    assert_eq!(Target(0x2000_ffff).work(), Work(U256::from(256u64)));
    assert_eq!(Target(0x0100_0080).expand(), None, "0x80 >> 16 is 0");
    assert_eq!(
        Target(0x0101_0000).expand(),
        Some(U256::one()),
        "0x010000 >> 16"
    );
}

#[test]
fn an_empty_or_unknown_locator_gets_headers_from_height_one() {
    let params = NetworkParams::test();
    let mut tree = BlockTree::new(params.clone());
    let blocks = extend(&mut tree, bob().address(), 12);
    let heights = |locator: &[Hash], limit| -> Vec<u64> {
        tree.headers_after(locator, limit)
            .iter()
            .map(|header| header.height)
            .collect()
    };
    let all: Vec<u64> = (1..=12).collect();
    assert_eq!(heights(&[], 500), all, "empty locator");
    assert_eq!(heights(&[Hash([7; 32])], 500), all, "unknown hash");
    assert_eq!(
        heights(&[Hash([7; 32])], 5),
        vec![1, 2, 3, 4, 5],
        "cut at the limit"
    );
    // The first hash on our best chain wins, whatever follows it.
    let at = |height: usize| blocks[height - 1].hash();
    assert_eq!(
        heights(&[Hash([7; 32]), at(9), at(3)], 500),
        vec![10, 11, 12]
    );
    assert_eq!(heights(&[at(3), at(9)], 500), (4..=12).collect::<Vec<_>>());
    assert_eq!(heights(&[at(12)], 500), Vec::<u64>::new(), "our tip");
}

/// A node syncing 1,200 blocks asks for headers three times; no locator it sends repeats a
/// hash (a continuation used to put the last header of a full reply in front of a locator that
/// already started with it).
#[test]
fn a_locator_never_names_a_hash_twice() {
    let params = NetworkParams::test();
    let mut tree = BlockTree::new(params.clone());
    let blocks: Vec<Block> = extend(&mut tree, bob().address(), 1_200);
    let now = blocks.last().unwrap().header.timestamp_ms + 1_000;
    let mut server = Node::new(NodeConfig {
        params: params.clone(),
        name: "server".into(),
        keypair: bob(),
        max_direct_links: 0,
    });
    server.handle_stored_blocks(blocks, now);
    let mut client = Node::new(NodeConfig {
        params,
        name: "client".into(),
        keypair: common::alice(),
        max_direct_links: 0,
    });
    let (server_id, client_id) = (PeerId::from_bytes([1; 16]), PeerId::from_bytes([2; 16]));
    server.handle_peer_joined(client_id.clone(), now);
    client.handle_peer_joined(server_id.clone(), now);
    let mut locators = Vec::new();
    loop {
        let mut moved = false;
        while let Some(output) = client.poll_output() {
            if let Output::Send { payload, .. } | Output::Broadcast { payload } = output {
                if let Ok(NodeMessage::GetHeaders { locator }) = NodeMessage::decode(&payload) {
                    locators.push(locator);
                }
                server.handle_message(&client_id, &payload, now);
                moved = true;
            }
        }
        while let Some(output) = server.poll_output() {
            if let Output::Send { payload, .. } | Output::Broadcast { payload } = output {
                client.handle_message(&server_id, &payload, now);
                moved = true;
            }
        }
        if !moved {
            break;
        }
    }
    assert_eq!(client.tree().tip_height(), 1_200);
    assert!(locators.len() >= 3, "{} headers requests", locators.len());
    for locator in &locators {
        let distinct: HashSet<&Hash> = locator.iter().collect();
        assert_eq!(
            distinct.len(),
            locator.len(),
            "a repeated hash in {locator:?}"
        );
    }
}
