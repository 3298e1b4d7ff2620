//! The test vectors of `shared/test-vectors/vectors.json`: how they are generated, and how a
//! build checks itself against them.
//!
//! [`generate`] writes every vector from fixed inputs. [`check`] reads the inputs back from the
//! file, recomputes each output with this build, and compares field by field, so a failure names
//! the vector and the field. The native test and the browser test both call [`check`]: the same
//! file must hold on x86-64 and in wasm32.

use curve25519_dalek::constants::{ED25519_BASEPOINT_TABLE, EIGHT_TORSION};
use curve25519_dalek::scalar::Scalar;
use serde_json::{json, Value};
use sha2::{Digest, Sha512};
use shared::block::{chain_id, genesis_block, merkle_root, Block, BlockHeader, Coinbase};
use shared::encode::Reader;
use shared::hash::Hash;
use shared::keys::{Address, Keypair, PublicKey, Signature};
use shared::mining::{mine, MiningOutcome};
use shared::params::NetworkParams;
use shared::tx::Transaction;
use shared::validation::{median, next_target};
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

/// The group order L = 2^252 + 27742317777372353535851937790883648493, little-endian.
const GROUP_ORDER_LE: [u8; 32] = [
    0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
];
/// The seed of the signer of the signature vectors.
const SIGNATURE_SEED: [u8; 32] = [0x3c; 32];

/// `a + b` of two little-endian 256-bit numbers (no overflow for the values used here).
fn add_le(a: [u8; 32], b: [u8; 32]) -> [u8; 32] {
    let mut out = [0u8; 32];
    let mut carry = 0u16;
    for i in 0..32 {
        let sum = u16::from(a[i]) + u16::from(b[i]) + carry;
        out[i] = sum as u8;
        carry = sum >> 8;
    }
    out
}

/// The clamped secret scalar of an RFC 8032 seed.
fn secret_scalar(seed: [u8; 32]) -> Scalar {
    let expanded = Sha512::digest(seed);
    let mut secret = [0u8; 32];
    secret.copy_from_slice(&expanded[..32]);
    secret[0] &= 248;
    secret[31] &= 127;
    secret[31] |= 64;
    Scalar::from_bytes_mod_order(secret)
}

/// A transfer of the signature vectors, unsigned: the nonce varies the signed message.
fn unsigned(from: PublicKey, nonce: u64) -> Transaction {
    Transaction {
        from,
        to: Address(TX_TO),
        amount: 1,
        fee: 0,
        nonce,
        signature: Signature([0; 64]),
    }
}

/// Signs `tx` with secret scalar `a` and the nonce point `r·B + torsion`, where the public key
/// in `tx.from` may itself carry a torsion component. Returns `k mod 8` of the challenge.
fn sign_raw(tx: &mut Transaction, a: Scalar, salt: u64, torsion_in_r: bool) -> u8 {
    let r = Scalar::from_bytes_mod_order_wide(&Sha512::digest(salt.to_be_bytes()).into());
    let mut big_r = &r * ED25519_BASEPOINT_TABLE;
    if torsion_in_r {
        big_r += EIGHT_TORSION[1];
    }
    let big_r = big_r.compress();
    let mut hasher = Sha512::new();
    hasher.update(big_r.as_bytes());
    hasher.update(tx.from.0);
    hasher.update(tx.signing_bytes(&test_chain_id()));
    let k = Scalar::from_bytes_mod_order_wide(&hasher.finalize().into());
    let s = r + k * a;
    tx.signature.0[..32].copy_from_slice(big_r.as_bytes());
    tx.signature.0[32..].copy_from_slice(s.as_bytes());
    k.as_bytes()[0] % 8
}

/// Signatures at each edge of the verification rule (cofactorless, canonical S, small-order keys
/// and R refused), as transactions of the test network: whether each verifies is pinned here.
fn signature_cases() -> Vec<Value> {
    let keypair = Keypair::from_seed(SIGNATURE_SEED);
    let chain = test_chain_id();
    let a = secret_scalar(SIGNATURE_SEED);
    let mut cases = Vec::new();
    let mut push = |name: &str, tx: &Transaction, valid: bool| {
        cases.push(json!({ "name": name, "tx": tx, "valid": valid }));
    };

    let honest = Transaction::new_signed(&keypair, &chain, Address(TX_TO), 1, 0, 0);
    push("RFC 8032 signature", &honest, true);

    let mut high_s = honest.clone();
    let mut s = [0u8; 32];
    s.copy_from_slice(&honest.signature.0[32..]);
    high_s.signature.0[32..].copy_from_slice(&add_le(s, GROUP_ORDER_LE));
    push("S + L: not canonical (S must be below L)", &high_s, false);

    let identity = {
        let mut bytes = [0u8; 32];
        bytes[0] = 1;
        bytes
    };
    let mut small_key = unsigned(PublicKey(identity), 1);
    small_key.signature.0[..32].copy_from_slice(&identity);
    push(
        "identity key, identity R, S = 0: holds for every message, refused as small order",
        &small_key,
        false,
    );

    let not_a_point = (0..=255u8)
        .map(|byte| PublicKey([byte; 32]))
        .find(|key| key.verifying_key().is_none())
        .expect("about half of all 32-byte strings are not points");
    let mut bad_key = honest.clone();
    bad_key.from = not_a_point;
    push("a key that is not a curve point", &bad_key, false);

    let mut torsion_r = unsigned(keypair.public(), 2);
    sign_raw(&mut torsion_r, a, 2, true);
    push(
        "R = r·B + T (T of order 8): cofactored verification accepts it, cofactorless refuses",
        &torsion_r,
        false,
    );

    // A key A = a·B + T with a torsion component is not of small order, so it is allowed; a
    // signature s = r + k·a then verifies cofactorless exactly when k·T = 0, i.e. k ≡ 0 mod 8.
    let mixed_key = PublicKey(
        (&a * ED25519_BASEPOINT_TABLE + EIGHT_TORSION[1])
            .compress()
            .0,
    );
    let mut found = [None, None];
    for nonce in 3.. {
        let mut tx = unsigned(mixed_key, nonce);
        let k_mod_8 = sign_raw(&mut tx, a, nonce, false);
        let slot = usize::from(k_mod_8 != 0);
        found[slot].get_or_insert(tx);
        if found.iter().all(Option::is_some) {
            break;
        }
    }
    let [zero, nonzero] = found.map(|tx| tx.expect("found"));
    push("key a·B + T, challenge k ≡ 0 mod 8: verifies", &zero, true);
    push(
        "key a·B + T, challenge k ≢ 0 mod 8: cofactored verification accepts it, cofactorless refuses",
        &nonzero,
        false,
    );
    cases
}

/// Solve times of the difficulty vectors, in tenths of the network's target interval: on time,
/// fast, a burst, a pause of 30 intervals (clamped to 6), a clock running back by 3 intervals,
/// then enough blocks for the window to roll past all of it.
const DIFFICULTY_STEPS_TENTHS: [i64; 40] = [
    10, 10, 5, 30, 2, 2, 1, 0, 10, 10, 300, 10, 10, -30, 20, 10, 1_000, 10, -10, 5, //
    10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10,
];

/// A chain's headers as the difficulty rule reads them: genesis, block 1 a day after it, then one
/// block per step, each with the target the rule demands. Every timestamp is after the median of
/// the previous ones, as the timestamp rule requires, so the sequence is a valid chain's.
fn difficulty_sequence(params: &NetworkParams) -> Vec<BlockHeader> {
    let genesis = genesis_block(params).header;
    let mut chain = vec![genesis];
    let mut timestamp = genesis.timestamp_ms + 86_400_000;
    let tenth = params.target_block_ms as i64 / 10;
    for step in std::iter::once(0).chain(DIFFICULTY_STEPS_TENTHS) {
        timestamp = timestamp.checked_add_signed(step * tenth).expect("a clock");
        let mut recent: Vec<u64> = chain
            .iter()
            .rev()
            .take(params.median_time_span)
            .map(|header| header.timestamp_ms)
            .collect();
        assert!(
            timestamp > median(&mut recent),
            "the vector obeys the median rule"
        );
        let header = BlockHeader {
            height: chain.len() as u64,
            timestamp_ms: timestamp,
            target: next_target(params, &chain),
            ..genesis
        };
        chain.push(header);
    }
    chain
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

    let difficulty: Vec<Value> = NETWORKS
        .iter()
        .map(|name| {
            let params = NetworkParams::by_name(name).expect("a known network");
            let blocks: Vec<Value> = difficulty_sequence(&params)[1..]
                .iter()
                .map(|header| {
                    json!({
                        "height": header.height,
                        "timestamp_ms": header.timestamp_ms,
                        "target": format!("{:08x}", header.target.0),
                    })
                })
                .collect();
            json!({
                "network": name,
                "target_block_ms": params.target_block_ms,
                "difficulty_window": params.difficulty_window,
                "solve_time_limit_factor": params.solve_time_limit_factor,
                "effective_time_span": params.effective_time_span,
                "max_hardening_factor": params.max_hardening_factor,
                "initial_target": format!("{:08x}", params.initial_target.0),
                "max_target": hex_u256(params.max_target),
                "genesis_timestamp_ms": params.genesis_timestamp_ms,
                "blocks": blocks,
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
        "signatures": signature_cases(),
        "difficulty": difficulty,
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

    let chain = test_chain_id();
    for case in file["signatures"].as_array().expect("signatures is a list") {
        let tx: Transaction = typed(case, "/tx");
        let valid = case["valid"].as_bool().expect("valid is a boolean");
        assert_eq!(
            tx.verify_signature(&chain),
            valid,
            "signature case {}",
            case["name"]
        );
        checked += 1;
    }

    // Difficulty: each block's target from the headers before it (genesis first).
    for case in file["difficulty"].as_array().expect("difficulty is a list") {
        let short = text(case, "/network");
        let params = NetworkParams::by_name(short).expect("a known network");
        assert_eq!(number(case, "/target_block_ms"), params.target_block_ms);
        assert_eq!(number(case, "/difficulty_window"), params.difficulty_window);
        assert_eq!(
            number(case, "/solve_time_limit_factor"),
            params.solve_time_limit_factor
        );
        assert_eq!(
            number(case, "/effective_time_span"),
            params.effective_time_span as u64
        );
        assert_eq!(
            number(case, "/max_hardening_factor"),
            params.max_hardening_factor
        );
        assert_eq!(
            U256::from_big_endian(&bytes_at::<32>(case, "/max_target")),
            params.max_target
        );
        let mut chain = vec![genesis_block(&params).header];
        let blocks = case["blocks"].as_array().expect("blocks is a list");
        assert_eq!(blocks.len(), DIFFICULTY_STEPS_TENTHS.len() + 1);
        for block in blocks {
            let expected = u32::from_str_radix(text(block, "/target"), 16).expect("hex");
            let height = number(block, "/height");
            assert_eq!(
                next_target(&params, &chain).0,
                expected,
                "{short}: target of block {height}"
            );
            chain.push(BlockHeader {
                height,
                timestamp_ms: number(block, "/timestamp_ms"),
                target: Target(expected),
                ..chain[0]
            });
        }
        checked += 1;
    }

    checked
}
