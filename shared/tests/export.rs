//! A chain saved to a file and read back into a fresh node: the same tip and balances, every
//! block validated on the way in, and a named error for each kind of bad file, losing nothing.

#![cfg(not(target_arch = "wasm32"))]

mod common;

use common::{alice, bob, extend, next_block, pay};
use shared::chain::BlockTree;
use shared::export::{
    write_chain_file, ChainFile, ChainFileReader, ImportError, ImportReport,
    MAX_CHAIN_FILE_LINE_BYTES, MAX_LEGACY_CHAIN_FILE_BLOCKS, MAX_LEGACY_CHAIN_FILE_BYTES,
};
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

/// Reads `text` as a browser tab does: `piece` bytes at a time through a [`ChainFileReader`],
/// each piece's blocks into the node as they come. Returns the report and the longest line the
/// reader held unfinished.
fn import_in_pieces(
    node: &mut Node,
    reader: &mut ChainFileReader,
    text: &[u8],
    piece: usize,
    now: u64,
) -> Result<ImportReport, ImportError> {
    let mut import = None;
    let mut take = |node: &mut Node, reader: &ChainFileReader, blocks| {
        if import.is_none() {
            if let Some(header) = reader.header() {
                import = Some(node.begin_import(header)?);
            }
        }
        match import.as_mut() {
            Some(import) => node.import_blocks(import, blocks, now),
            None => Ok(()),
        }
    };
    for chunk in text.chunks(piece) {
        let blocks = reader.feed(chunk)?;
        take(node, reader, blocks)?;
    }
    let blocks = reader.finish()?;
    take(node, reader, blocks)?;
    Ok(node.end_import(import.expect("finish returns an error without a header")))
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
    other_format["version"] = 3.into();

    let too_large = format!(
        "{}{}",
        good.to_json(),
        " ".repeat(MAX_LEGACY_CHAIN_FILE_BYTES)
    );

    // One block more than a version 1 file may hold, small enough in bytes to pass the size
    // check first.
    let mut too_many = good.clone();
    let first = too_many.blocks[0].clone();
    too_many.blocks = vec![first; MAX_LEGACY_CHAIN_FILE_BLOCKS + 1];
    let too_many = too_many.to_json();
    assert!(too_many.len() < MAX_LEGACY_CHAIN_FILE_BYTES);

    // Our node holds its own chain of 25 blocks before every attempt.
    let mut ours = BlockTree::new(NetworkParams::test());
    extend(&mut ours, bob().address(), 25);
    let check = |text: String, expected: &dyn Fn(&ImportError) -> bool| {
        let mut node = node(NetworkParams::test(), 9);
        node.import_chain(ChainFile::of_best_chain(&ours), now)
            .unwrap();
        let mut reader = ChainFileReader::new();
        let error =
            import_in_pieces(&mut node, &mut reader, text.as_bytes(), 4_096, now).unwrap_err();
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
        matches!(error, ImportError::UnknownFormat { version: 3, .. })
    });
    check(too_large, &|error| {
        matches!(error, ImportError::TooLarge { .. })
    });
    check(
        too_many,
        &|error| matches!(error, ImportError::TooManyBlocks { limit } if *limit == MAX_LEGACY_CHAIN_FILE_BLOCKS),
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

/// Issue 25: a chain file held at most 20,000 blocks, so a month of a class's chain could not be
/// carried. A version 2 file (a header line, a block a line) of 25,000 blocks round trips, read
/// in pieces of a prime number of bytes so lines are cut anywhere, and the reader never holds
/// more than one line.
#[test]
fn a_chain_longer_than_the_old_bound_round_trips_a_piece_at_a_time() {
    let blocks = MAX_LEGACY_CHAIN_FILE_BLOCKS + 5_000;
    let mut tree = BlockTree::new(NetworkParams::test());
    extend(&mut tree, alice().address(), blocks);
    let mut pieces = Vec::new();
    write_chain_file(&tree, 1_000, |piece| pieces.push(piece));
    assert!(pieces.len() > 20, "{} pieces", pieces.len());
    let text = pieces.concat();
    assert_eq!(text.lines().count(), blocks + 1);
    assert!(text.starts_with("{\"format\":\"tabchain-chain\",\"version\":2,"));

    let mut fresh = node(NetworkParams::test(), 9);
    let mut reader = ChainFileReader::new();
    let report = import_in_pieces(
        &mut fresh,
        &mut reader,
        text.as_bytes(),
        7_919,
        now_after(&tree),
    )
    .unwrap();
    assert_eq!(report.added, blocks);
    assert!(report.became_best);
    assert_eq!(reader.blocks_read(), blocks);
    assert_eq!(fresh.tree().tip_hash(), tree.tip_hash());
    assert_eq!(
        fresh.balance(&alice().address()),
        tree.ledger().balance(&alice().address())
    );
}

#[test]
fn bad_lines_of_a_version_2_file_get_named_errors_and_lose_nothing() {
    let mut source = BlockTree::new(NetworkParams::test());
    extend(&mut source, alice().address(), 20);
    let mut text = String::new();
    write_chain_file(&source, 7, |piece| text.push_str(&piece));
    let lines: Vec<&str> = text.lines().collect();
    let now = now_after(&source);
    let attempt = |text: String, reader: ChainFileReader| {
        let mut ours = node(NetworkParams::test(), 9);
        let mut theirs = BlockTree::new(NetworkParams::test());
        extend(&mut theirs, bob().address(), 25);
        ours.import_chain(ChainFile::of_best_chain(&theirs), now)
            .unwrap();
        let mut reader = reader;
        let error =
            import_in_pieces(&mut ours, &mut reader, text.as_bytes(), 1_000, now).unwrap_err();
        assert_eq!(ours.tree().tip_hash(), theirs.tip_hash(), "{error}");
        error
    };

    // A block line that is not a block: named with its line.
    let mut garbled = lines.clone();
    garbled[6] = "{\"header\": 5}";
    let error = attempt(garbled.join("\n"), ChainFileReader::new());
    assert!(
        matches!(&error, ImportError::BadJson(why) if why.starts_with("line 7:")),
        "{error}"
    );

    // A line longer than any block can be, refused before it is all held.
    let long = format!(
        "{}\n{}",
        lines[0],
        "x".repeat(MAX_CHAIN_FILE_LINE_BYTES + 1)
    );
    let error = attempt(long, ChainFileReader::new());
    assert!(
        matches!(error, ImportError::LineTooLong { line: 2 }),
        "{error}"
    );

    // More blocks than the reader takes.
    let error = attempt(text.clone(), ChainFileReader::with_max_blocks(10));
    assert!(
        matches!(error, ImportError::TooManyBlocks { limit: 10 }),
        "{error}"
    );

    // A version 1 document with more after it.
    let legacy = format!(
        "{}\n{}",
        ChainFile::of_best_chain(&source).to_json(),
        lines[1]
    );
    let error = attempt(legacy, ChainFileReader::new());
    assert!(
        matches!(&error, ImportError::BadJson(why) if why.contains("after a version 1")),
        "{error}"
    );

    // A file with nothing in it.
    let error = attempt("\n\n".into(), ChainFileReader::new());
    assert!(
        matches!(&error, ImportError::BadJson(why) if why.contains("empty")),
        "{error}"
    );
}
