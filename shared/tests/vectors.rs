//! Checks this build against `test-vectors/vectors.json` (the browser build does the same in
//! `wasm_vectors.rs`). With `UPDATE_VECTORS=1` it rewrites the file instead; do that only when a
//! consensus encoding changes on purpose, and say so in the commit.

#![cfg(not(target_arch = "wasm32"))]

mod common;

use common::vectors;
use serde_json::Value;
use shared::block::{chain_id, genesis_block, BlockHeader};
use shared::hash::Hash;
use shared::params::NetworkParams;
use shared::work::Target;

const VECTORS_PATH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/test-vectors/vectors.json");

fn read_file() -> Value {
    let text = std::fs::read_to_string(VECTORS_PATH)
        .unwrap_or_else(|e| panic!("{VECTORS_PATH}: {e} (generate it with UPDATE_VECTORS=1)"));
    serde_json::from_str(&text).expect("vectors.json is JSON")
}

#[test]
fn vectors_file_matches_this_build() {
    if std::env::var_os("UPDATE_VECTORS").is_some_and(|v| v == "1") {
        let mut text = serde_json::to_string_pretty(&vectors::generate()).expect("serializes");
        text.push('\n');
        std::fs::write(VECTORS_PATH, text).expect("writes the vectors file");
    }
    let file = read_file();
    // 3 networks, header, transaction, block, mining, 5 Merkle lists, 10 targets, 8 compact forms,
    // 7 signatures, 3 difficulty sequences.
    assert_eq!(vectors::check(&file), 40, "every vector was checked");
    assert_eq!(
        file,
        vectors::generate(),
        "the generator now writes a different file: a vector was added or removed"
    );
}

/// The header layout spelled out field by field, independently of `BlockHeader::encode`.
#[test]
fn header_bytes_are_the_fields_in_order_big_endian() {
    let file = read_file();
    let header: BlockHeader = serde_json::from_value(file["header"]["fields"].clone()).unwrap();
    let expected = [
        "00000001",                                                         // version
        "0102030405060708",                                                 // height
        "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f", // prev hash
        "202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f", // tx root
        "0000019b76daa800",                                                 // timestamp ms
        "1d00ffff",                                                         // compact target
        "deadbeefcafef00d",                                                 // nonce
    ]
    .concat();
    assert_eq!(hex::encode(header.encode()), expected);
    assert_eq!(file["header"]["canonical_hex"], expected.as_str());
    assert_eq!(expected.len(), 2 * shared::block::HEADER_LEN);
}

/// A user on one network must never accept a peer of another: every network has its own genesis
/// and chain id.
#[test]
fn networks_have_distinct_genesis_and_chain_ids() {
    let ids: Vec<(Hash, Hash)> = ["main", "classroom", "test"]
        .iter()
        .map(|name| {
            let genesis = genesis_block(&NetworkParams::by_name(name).unwrap()).hash();
            (genesis, chain_id(&genesis))
        })
        .collect();
    for (i, a) in ids.iter().enumerate() {
        for b in &ids[i + 1..] {
            assert_ne!(a.0, b.0, "genesis hashes");
            assert_ne!(a.1, b.1, "chain ids");
        }
    }
}

/// Bitcoin's well-known difficulty-1 target, written out by hand.
#[test]
fn compact_target_expands_as_documented() {
    let expanded = Target(0x1d00_ffff).expand().unwrap();
    assert_eq!(
        hex::encode(expanded.to_big_endian()),
        "00000000ffff0000000000000000000000000000000000000000000000000000"
    );
    // Work is 2^256 / (target + 1): for difficulty 1 that is 0x100010001 (Bitcoin's figure).
    assert_eq!(Target(0x1d00_ffff).work().0, 0x1_0001_0001u64.into());
}
