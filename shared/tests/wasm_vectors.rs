//! The consensus core as the browser runs it: the same test vectors as the native build, a mining
//! call, and a block tree that grows, reorganises and keeps its ledger, all in wasm32 in a real
//! (headless) Chromium.
//!
//! Run from the workspace root with
//! `CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER=wasm-bindgen-test-runner CHROMEDRIVER=/usr/bin/chromedriver cargo test -p shared --target wasm32-unknown-unknown`.

#![cfg(target_arch = "wasm32")]

mod common;

use common::{
    add, add_tip, alice, bob, carol, extend, next_block, next_block_spaced, pay, tree_with, vectors,
};
use shared::chain::{AddOutcome, BlockTree};
use shared::mining::{mine, MiningOutcome};
use shared::params::NetworkParams;
use shared::validation::ValidationError;
use wasm_bindgen_test::{wasm_bindgen_test, wasm_bindgen_test_configure};

wasm_bindgen_test_configure!(run_in_browser);

const VECTORS: &str = include_str!("../test-vectors/vectors.json");

#[wasm_bindgen_test]
fn vectors_hold_in_the_browser() {
    let file: serde_json::Value = serde_json::from_str(VECTORS).expect("vectors.json is JSON");
    assert_eq!(vectors::check(&file), 40, "every vector was checked");
    assert_eq!(file, vectors::generate(), "wasm computes the same vectors");
}

#[wasm_bindgen_test]
fn mining_finds_the_same_nonce_as_native() {
    let params = NetworkParams::test();
    let tree = BlockTree::new(params);
    let mut block = tree.block_template(alice().address(), Vec::new(), 1_767_225_610_000);
    let MiningOutcome::Found { nonce, hash, tried } = mine(&block.header, 0, 1 << 20) else {
        panic!("the test target is met within 2^20 nonces");
    };
    assert!(tried >= 1 && nonce == tried - 1);
    block.header.nonce = nonce;
    assert_eq!(block.hash(), hash);
    assert!(shared::mining::meets_target(&block.header));
    // An exhausted range reports every hash it tried.
    let mut hard = block.header;
    hard.target = shared::work::Target(0x0300_0001);
    assert_eq!(
        mine(&hard, 0, 1_000),
        MiningOutcome::Exhausted { tried: 1_000 }
    );
}

#[wasm_bindgen_test]
fn a_tree_of_a_few_blocks_grows_and_reorganises() {
    let params = NetworkParams::test();
    let mut tree = BlockTree::new(params.clone());
    let prefix = extend(&mut tree, alice().address(), 3);
    assert_eq!(tree.tip_height(), 3);
    assert_eq!(tree.ledger().balance(&alice().address()), 150);

    // Branch B, two blocks long, built by another node from the same prefix.
    let mut other = tree_with(&params, &prefix);
    let b4 = next_block(&other, carol().address(), Vec::new());
    add_tip(&mut other, b4.clone());
    let b5 = next_block(&other, carol().address(), Vec::new());
    add_tip(&mut other, b5.clone());

    // Branch A: alice pays bob, mined by alice. A4 and B4 share a parent, so a target and a
    // work: A4 must win their tie by the lower hash for B4 to arrive as a side branch.
    let chain_id = tree.chain_id();
    let to_bob = pay(&alice(), &chain_id, &bob(), 30, 2, 0);
    let a4 = (0..)
        .map(|extra| {
            let spacing = params.target_block_ms + extra;
            next_block_spaced(&tree, alice().address(), vec![to_bob.clone()], spacing)
        })
        .find(|block| block.hash() < b4.hash())
        .expect("about every second block has the lower hash");
    add_tip(&mut tree, a4.clone());
    assert_eq!(tree.ledger().balance(&bob().address()), 30);

    // B, now longer, wins.
    assert_eq!(add(&mut tree, b4), Ok(AddOutcome::SideBranch));
    let Ok(AddOutcome::TipChanged(change)) = add(&mut tree, b5.clone()) else {
        panic!("the longer branch of equal targets has more work");
    };
    assert_eq!(change.new_tip, b5.hash());
    assert_eq!(change.reorg_depth(), 1);
    assert_eq!(tree.ledger(), other.ledger());
    assert_eq!(tree.ledger().balance(&bob().address()), 0);
    assert_eq!(tree.ledger().balance(&alice().address()), 150);

    // A double spend on the new branch is rejected by the ledger rules.
    let overspend = pay(&bob(), &chain_id, &alice(), 1, 0, 0);
    let bad = next_block(&tree, carol().address(), vec![overspend]);
    let result = add(&mut tree, bad);
    assert!(
        matches!(
            result,
            Err(shared::chain::ChainError::Invalid {
                error: ValidationError::InsufficientBalance { .. },
                ..
            })
        ),
        "{result:?}"
    );
    assert_eq!(tree.tip_hash(), b5.hash());
    common::assert_supply(&tree);
}
