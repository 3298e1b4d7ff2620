//! A chain saved to a file and read back into a fresh node: the same tip and balances, every
//! block validated on the way in, and a named error for each kind of bad file, losing nothing.

#![cfg(not(target_arch = "wasm32"))]

mod common;

use common::{alice, bob, extend, next_block, pay};
use shared::chain::BlockTree;
use shared::export::{ChainFile, ImportError, MAX_CHAIN_FILE_BLOCKS, MAX_CHAIN_FILE_BYTES};
use shared::keys::Keypair;
use shared::node::{Node, NodeConfig, Output};
use shared::params::NetworkParams;

fn node(params: NetworkParams, seed: u8) -> Node {
    Node::new(NodeConfig {
        params,
        name: "fresh".into(),
        keypair: Keypair::from_seed([seed; 32]),
        max_direct_links: 0,
    })
}

/// 500 blocks on the test network, with a payment from alice to bob in the middle.
fn chain_of_500() -> BlockTree {
    let mut tree = BlockTree::new(NetworkParams::test());
    extend(&mut tree, alice().address(), 200);
    let chain_id = tree.chain_id();
    let payment = pay(&alice(), &chain_id, &bob(), 7, 1, 0);
    let block = next_block(&tree, bob().address(), vec![payment]);
    let now = block.header.timestamp_ms;
    tree.add_block(block, now).unwrap();
    extend(&mut tree, bob().address(), 299);
    assert_eq!(tree.tip_height(), 500);
    tree
}

fn now_after(tree: &BlockTree) -> u64 {
    tree.tip_header().timestamp_ms + 1_000
}

#[test]
fn a_chain_of_500_blocks_round_trips_through_a_file() {
    let tree = chain_of_500();
    let text = ChainFile::of_best_chain(&tree).to_json();
    let file = ChainFile::parse(&text).unwrap();
    assert_eq!(file.blocks.len(), 500);
    assert_eq!(file.blocks[0].header.height, 1);
    assert!(file.file_name().starts_with("tabchain-test-h500-"));

    let mut fresh = node(NetworkParams::test(), 9);
    let report = fresh.import_chain(file, now_after(&tree)).unwrap();
    assert_eq!(report.added, 500);
    assert!(report.became_best);
    assert_eq!(fresh.tree().tip_hash(), tree.tip_hash());
    for who in [alice(), bob()] {
        assert_eq!(
            fresh.balance(&who.address()),
            tree.ledger().balance(&who.address())
        );
    }
    assert!(fresh.balance(&bob().address()) > 0);
    // The driver stores every imported block, as it would a peer's.
    let stored = std::iter::from_fn(|| fresh.poll_output())
        .filter(|output| matches!(output, Output::StoreBlock(_)))
        .count();
    assert_eq!(stored, 500);

    // The same file again: nothing new, nothing lost.
    let again = fresh
        .import_chain(ChainFile::parse(&text).unwrap(), now_after(&tree))
        .unwrap();
    assert_eq!((again.added, again.known), (0, 500));
    assert_eq!(fresh.tree().tip_hash(), tree.tip_hash());
}

#[test]
fn a_shorter_chain_in_a_file_does_not_replace_ours() {
    let mut ours = BlockTree::new(NetworkParams::test());
    extend(&mut ours, alice().address(), 30);
    let mut theirs = BlockTree::new(NetworkParams::test());
    extend(&mut theirs, bob().address(), 10);
    let mut node = node(NetworkParams::test(), 9);
    node.import_chain(ChainFile::of_best_chain(&ours), now_after(&ours))
        .unwrap();
    let report = node
        .import_chain(ChainFile::of_best_chain(&theirs), now_after(&ours))
        .unwrap();
    assert_eq!(report.added, 10);
    assert!(!report.became_best);
    assert_eq!(node.tree().tip_hash(), ours.tip_hash());
}

#[test]
fn bad_files_get_named_errors_and_lose_nothing() {
    let mut source = BlockTree::new(NetworkParams::test());
    extend(&mut source, alice().address(), 20);
    let good = ChainFile::of_best_chain(&source);
    let now = now_after(&source);

    let mut classroom = BlockTree::new(NetworkParams::classroom());
    extend(&mut classroom, alice().address(), 3);
    let other_network = ChainFile::of_best_chain(&classroom).to_json();

    let mut renamed = good.clone();
    renamed.genesis_hash = classroom.genesis_hash();

    let mut bad_block = good.clone();
    bad_block.blocks[11].coinbase.amount += 1;
    common::reseal(&mut bad_block.blocks[11]);
    // The rest of the file still builds on the altered block's hash.
    for index in 12..bad_block.blocks.len() {
        bad_block.blocks[index].header.prev_hash = bad_block.blocks[index - 1].hash();
        common::reseal(&mut bad_block.blocks[index]);
    }

    let mut gap = good.clone();
    gap.blocks.remove(5);

    let mut other_format = serde_json::to_value(&good).unwrap();
    other_format["version"] = 2.into();

    let too_large = format!("{}{}", good.to_json(), " ".repeat(MAX_CHAIN_FILE_BYTES));

    // One block more than the bound, small enough in bytes to pass the size check first.
    let mut too_many = good.clone();
    let first = too_many.blocks[0].clone();
    too_many.blocks = vec![first; MAX_CHAIN_FILE_BLOCKS + 1];
    let too_many = too_many.to_json();
    assert!(too_many.len() < MAX_CHAIN_FILE_BYTES);

    // Our node holds its own chain of 25 blocks before every attempt.
    let mut ours = BlockTree::new(NetworkParams::test());
    extend(&mut ours, bob().address(), 25);
    let check = |text: String, expected: &dyn Fn(&ImportError) -> bool| {
        let mut node = node(NetworkParams::test(), 9);
        node.import_chain(ChainFile::of_best_chain(&ours), now)
            .unwrap();
        let error = ChainFile::parse(&text)
            .and_then(|file| node.import_chain(file, now))
            .unwrap_err();
        assert!(expected(&error), "{error}");
        assert_eq!(node.tree().tip_hash(), ours.tip_hash(), "{error}");
        assert_eq!(node.tree().tip_height(), 25);
        error
    };
    check(
        other_network,
        &|error| matches!(error, ImportError::WrongNetwork { file, .. } if file == "tabchain-classroom"),
    );
    check(renamed.to_json(), &|error| {
        matches!(error, ImportError::WrongGenesis { .. })
    });
    check("[1, 2".into(), &|error| {
        matches!(error, ImportError::BadJson(_))
    });
    check(
        "{\"format\":\"tabchain-chain\",\"version\":1}".into(),
        &|error| matches!(error, ImportError::BadJson(_)),
    );
    check(other_format.to_string(), &|error| {
        matches!(error, ImportError::UnknownFormat { version: 2, .. })
    });
    check(too_large, &|error| {
        matches!(error, ImportError::TooLarge { .. })
    });
    check(
        too_many,
        &|error| matches!(error, ImportError::TooManyBlocks { count } if *count == MAX_CHAIN_FILE_BLOCKS + 1),
    );
    check(gap.to_json(), &|error| {
        matches!(error, ImportError::NotConnected { height: 6 })
    });
    let error = check(bad_block.to_json(), &|error| {
        matches!(
            error,
            ImportError::InvalidBlock {
                height: 12,
                imported: 11,
                ..
            }
        )
    });
    assert!(error.to_string().contains("height 12"), "{error}");
}
