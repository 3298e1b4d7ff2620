//! The test vectors of `shared/test-vectors/vectors.json`: how they are generated, and how a
//! build checks itself against them.
//!
//! [`generate`] writes every vector from fixed inputs. [`check`] reads the inputs back from the
//! file, recomputes each output with this build, and compares field by field, so a failure names
//! the vector and the field. The native test and the browser test both call [`check`]: the same
//! file must hold on x86-64 and in wasm32.

use serde_json::{json, Value};
use shared::block::{chain_id, genesis_block, merkle_root, Block, BlockHeader, Coinbase};
use shared::encode::Reader;
use shared::hash::Hash;
use shared::keys::{Address, Keypair};
use shared::mining::{mine, MiningOutcome};
use shared::params::NetworkParams;
use shared::tx::Transaction;
use shared::work::{Target, Work, U256};

/// The three networks whose genesis and chain id are pinned.
const NETWORKS: [&str; 3] = ["main", "classroom", "test"];

/// Compact targets covering each branch of `Target::expand`: exponents below, at and above 3, the
/// largest exponent, overflow, a zero mantissa, and a non-zero mantissa that expands to zero.
const COMPACT_TARGETS: [u32; 10] = [
    0x1d00_ffff,
    0x2000_ffff,
    0x207f_ffff,
    0x20ff_ffff,
    0x0312_3456,
    0x0212_3456,
    0x0112_3456,
    0x0100_0001,
    0x2101_0000,
    0x0400_0000,
];

/// The transaction vector's inputs.
const TX_SEED: [u8; 32] = [7; 32];
const TX_TO: [u8; 20] = [0xab; 20];
const TX_AMOUNT: u64 = 1_234_567;
const TX_FEE: u64 = 89;
const TX_NONCE: u64 = 42;

/// A header whose fields are easy to find in its bytes.
fn sample_header() -> BlockHeader {
    BlockHeader {
        version: 1,
        height: 0x0102_0304_0506_0708,
        prev_hash: Hash(std::array::from_fn(|i| i as u8)),
        tx_root: Hash(std::array::from_fn(|i| 0x20 + i as u8)),
        timestamp_ms: 1_767_225_600_000,
        target: Target(0x1d00_ffff),
        nonce: 0xdead_beef_cafe_f00d,
    }
}

fn merkle_leaves(count: u8) -> Vec<Hash> {
    (0..count).map(|i| Hash::digest(&[&[i]])).collect()
}

fn hex_u256(value: U256) -> String {
    hex::encode(value.to_big_endian())
}

fn target_vector(compact: u32) -> Value {
    let target = Target(compact);
    json!({
        "compact": format!("{compact:08x}"),
        "expanded": target.expand().map(hex_u256),
        "work": target.work(),
    })
}

fn test_chain_id() -> Hash {
    chain_id(&genesis_block(&NetworkParams::test()).hash())
}

fn sample_transaction() -> Transaction {
    Transaction::new_signed(
        &Keypair::from_seed(TX_SEED),
        &test_chain_id(),
        Address(TX_TO),
        TX_AMOUNT,
        TX_FEE,
        TX_NONCE,
    )
}

fn sample_block() -> Block {
    let mut block = Block {
        header: BlockHeader {
            height: 1,
            prev_hash: genesis_block(&NetworkParams::test()).hash(),
            nonce: 0,
            ..sample_header()
        },
        coinbase: Coinbase {
            height: 1,
            to: Address([0xcd; 20]),
            amount: 50 + TX_FEE,
        },
        transactions: vec![sample_transaction()],
    };
    block.header.tx_root = block.compute_tx_root();
    block
}

/// The header of the mining vector: the test network's target, so a nonce is found in a few tries.
fn mining_header() -> BlockHeader {
    BlockHeader {
        target: NetworkParams::test().initial_target,
        nonce: 0,
        ..sample_header()
    }
}

/// Every vector, computed by this build. Only the generator writes this to the file.
pub fn generate() -> Value {
    let networks: Vec<Value> = NETWORKS
        .iter()
        .map(|name| {
            let params = NetworkParams::by_name(name).expect("a known network");
            let genesis = genesis_block(&params);
            json!({
                "network": name,
                "name": params.name,
                "genesis_header_hex": hex::encode(genesis.header.encode()),
                "genesis_hash": genesis.hash(),
                "chain_id": chain_id(&genesis.hash()),
                "initial_target": format!("{:08x}", params.initial_target.0),
            })
        })
        .collect();

    let header = sample_header();
    let tx = sample_transaction();
    let other_chain = chain_id(&genesis_block(&NetworkParams::default_network()).hash());
    let block = sample_block();
    let mining = mining_header();
    let MiningOutcome::Found { nonce, hash, tried } = mine(&mining, 0, 1 << 20) else {
        panic!("the test network's target is met within 2^20 nonces");
    };
    let merkle: Vec<Value> = [0u8, 1, 2, 3, 5]
        .iter()
        .map(|&count| {
            let leaves = merkle_leaves(count);
            json!({ "leaves": leaves, "root": merkle_root(leaves.clone()) })
        })
        .collect();
    let compact_of: Vec<Value> = [
        U256::zero(),
        U256::one(),
        U256::from(0x80u64),
        U256::from(0x1234u64),
        U256::from(0x0012_3456u64),
        U256::from(0x1234_5678u64),
        U256::MAX / U256::from(2u64),
        U256::MAX,
    ]
    .into_iter()
    .map(|value| {
        json!({
            "value": hex_u256(value),
            "compact": format!("{:08x}", Target::from_u256(value).0),
        })
    })
    .collect();

    json!({
        "about": "tabchain consensus test vectors. All integers in canonical bytes are big-endian. \
                  Generated by `UPDATE_VECTORS=1 cargo test -p shared --test vectors`; \
                  checked natively (tests/vectors.rs), in a browser (tests/wasm_vectors.rs) and \
                  independently by test-vectors/check_vectors.py.",
        "networks": networks,
        "header": {
            "fields": header,
            "canonical_hex": hex::encode(header.encode()),
            "hash": header.hash(),
        },
        "transaction": {
            "seed_hex": hex::encode(TX_SEED),
            "network": "test",
            "chain_id": test_chain_id(),
            "public_key": hex::encode(tx.from.0),
            "sender_address": tx.sender(),
            "to": Address(TX_TO),
            "amount": TX_AMOUNT,
            "fee": TX_FEE,
            "nonce": TX_NONCE,
            "signing_bytes_hex": hex::encode(tx.signing_bytes(&test_chain_id())),
            "signature_hex": hex::encode(tx.signature.0),
            "canonical_hex": hex::encode(tx.encode()),
            "id": tx.id(),
            "json": tx,
            "other_chain_id": other_chain,
        },
        "block": {
            "json": block,
            "coinbase_id": block.coinbase.id(),
            "tx_root": block.header.tx_root,
            "canonical_hex": hex::encode(block.encode()),
            "hash": block.hash(),
        },
        "mining": {
            "header": mining,
            "first_nonce": 0,
            "found_nonce": nonce,
            "hash": hash,
            "tried": tried,
        },
        "merkle": merkle,
        "targets": COMPACT_TARGETS.iter().map(|&c| target_vector(c)).collect::<Vec<_>>(),
        "compact_of": compact_of,
    })
}

fn text<'a>(value: &'a Value, path: &str) -> &'a str {
    value
        .pointer(path)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("vectors.json has no string at {path}"))
}

fn number(value: &Value, path: &str) -> u64 {
    value
        .pointer(path)
        .and_then(Value::as_u64)
        .unwrap_or_else(|| panic!("vectors.json has no integer at {path}"))
}

fn hash_at(value: &Value, path: &str) -> Hash {
    Hash::from_hex(text(value, path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn typed<T: serde::de::DeserializeOwned>(value: &Value, path: &str) -> T {
    let inner = value
        .pointer(path)
        .unwrap_or_else(|| panic!("vectors.json has nothing at {path}"));
    serde_json::from_value(inner.clone()).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn bytes_at<const N: usize>(value: &Value, path: &str) -> [u8; N] {
    let mut out = [0u8; N];
    hex::decode_to_slice(text(value, path), &mut out).unwrap_or_else(|e| panic!("{path}: {e}"));
    out
}

/// Recomputes every output of `file` from its inputs and asserts it matches; returns how many
/// vectors were checked, so a caller can assert none were skipped.
pub fn check(file: &Value) -> usize {
    let mut checked = 0;

    let networks = file["networks"].as_array().expect("networks is a list");
    assert_eq!(networks.len(), NETWORKS.len(), "one vector per network");
    for network in networks {
        let short = text(network, "/network");
        let params = NetworkParams::by_name(short).expect("a known network");
        let genesis = genesis_block(&params);
        assert_eq!(params.name, text(network, "/name"));
        assert_eq!(
            hex::encode(genesis.header.encode()),
            text(network, "/genesis_header_hex"),
            "{short}: genesis header bytes"
        );
        assert_eq!(
            genesis.hash(),
            hash_at(network, "/genesis_hash"),
            "{short}: genesis hash"
        );
        assert_eq!(
            chain_id(&genesis.hash()),
            hash_at(network, "/chain_id"),
            "{short}: chain id"
        );
        assert_eq!(
            format!("{:08x}", params.initial_target.0),
            text(network, "/initial_target"),
            "{short}: initial target"
        );
        checked += 1;
    }

    // Header: fields → bytes → hash, and bytes → fields.
    let header: BlockHeader = typed(file, "/header/fields");
    let canonical = hex::decode(text(file, "/header/canonical_hex")).expect("hex");
    assert_eq!(header.encode().as_slice(), canonical, "header bytes");
    assert_eq!(header.hash(), hash_at(file, "/header/hash"), "header hash");
    let mut reader = Reader::new(&canonical);
    assert_eq!(BlockHeader::decode_from(&mut reader), Ok(header));
    assert_eq!(reader.finish(), Ok(()));
    assert_eq!(
        serde_json::to_value(header).unwrap(),
        file["header"]["fields"]
    );
    checked += 1;

    // Transaction: seed and fields → key, signing bytes, signature, id, bytes, JSON.
    let t = &file["transaction"];
    let keypair = Keypair::from_seed(bytes_at(t, "/seed_hex"));
    let params = NetworkParams::by_name(text(t, "/network")).expect("a known network");
    let chain = chain_id(&genesis_block(&params).hash());
    assert_eq!(chain, hash_at(t, "/chain_id"), "transaction chain id");
    assert_eq!(hex::encode(keypair.public().0), text(t, "/public_key"));
    assert_eq!(keypair.address(), typed(t, "/sender_address"));
    let tx = Transaction::new_signed(
        &keypair,
        &chain,
        typed(t, "/to"),
        number(t, "/amount"),
        number(t, "/fee"),
        number(t, "/nonce"),
    );
    assert_eq!(
        hex::encode(tx.signing_bytes(&chain)),
        text(t, "/signing_bytes_hex"),
        "signing bytes"
    );
    assert_eq!(
        hex::encode(tx.signature.0),
        text(t, "/signature_hex"),
        "signature"
    );
    assert_eq!(hex::encode(tx.encode()), text(t, "/canonical_hex"));
    assert_eq!(tx.id(), hash_at(t, "/id"), "transaction id");
    let from_json: Transaction = typed(t, "/json");
    assert_eq!(from_json, tx, "transaction JSON");
    assert!(tx.verify_signature(&chain));
    assert!(
        !tx.verify_signature(&hash_at(t, "/other_chain_id")),
        "a signature for the test network must not verify on the main network"
    );
    checked += 1;

    // Block: JSON → coinbase id, Merkle root, canonical bytes, hash; bytes → the same block.
    let b = &file["block"];
    let block: Block = typed(b, "/json");
    assert_eq!(
        block.coinbase.id(),
        hash_at(b, "/coinbase_id"),
        "coinbase id"
    );
    assert_eq!(block.compute_tx_root(), hash_at(b, "/tx_root"), "tx root");
    assert_eq!(block.header.tx_root, hash_at(b, "/tx_root"));
    let bytes = hex::decode(text(b, "/canonical_hex")).expect("hex");
    assert_eq!(block.encode(), bytes, "block bytes");
    assert_eq!(Block::decode(&bytes, 1_000).as_ref(), Ok(&block));
    assert_eq!(block.hash(), hash_at(b, "/hash"), "block hash");
    checked += 1;

    // Mining: the same nonce is found, after the same number of tries.
    let m = &file["mining"];
    let mining: BlockHeader = typed(m, "/header");
    let expected = MiningOutcome::Found {
        nonce: number(m, "/found_nonce"),
        hash: hash_at(m, "/hash"),
        tried: number(m, "/tried"),
    };
    assert_eq!(mine(&mining, number(m, "/first_nonce"), 1 << 20), expected);
    let mut found = mining;
    found.nonce = number(m, "/found_nonce");
    assert_eq!(found.hash(), hash_at(m, "/hash"), "mined header hash");
    checked += 1;

    for case in file["merkle"].as_array().expect("merkle is a list") {
        let leaves: Vec<Hash> = typed(case, "/leaves");
        assert_eq!(
            merkle_root(leaves.clone()),
            hash_at(case, "/root"),
            "merkle root of {} leaves",
            leaves.len()
        );
        checked += 1;
    }

    for case in file["targets"].as_array().expect("targets is a list") {
        let compact = u32::from_str_radix(text(case, "/compact"), 16).expect("hex");
        let target = Target(compact);
        let expanded = case["expanded"].as_str();
        assert_eq!(
            target.expand().map(hex_u256).as_deref(),
            expanded,
            "expansion of {compact:08x}"
        );
        let work: Work = typed(case, "/work");
        assert_eq!(target.work(), work, "work of {compact:08x}");
        checked += 1;
    }

    for case in file["compact_of"].as_array().expect("compact_of is a list") {
        let value = U256::from_big_endian(&bytes_at::<32>(case, "/value"));
        assert_eq!(
            format!("{:08x}", Target::from_u256(value).0),
            text(case, "/compact"),
            "compact form of {value:x}"
        );
        checked += 1;
    }

    checked
}
