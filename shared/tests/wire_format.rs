//! The JSON of node messages is strict at every depth: an unknown field, an uppercase hex digit or
//! a leading zero is malformed wherever it appears, exactly as at the top level of a message.
//! `docs/protocol.md` ("Node messages") promises this; a lenient decoder would let two spellings
//! of one message through, and an independent implementation could not know which it must accept.

#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;
#[cfg(target_arch = "wasm32")]
wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);

use serde_json::{json, Value};
use shared::block::{genesis_block, Block};
use shared::hash::Hash;
use shared::keys::{Address, Keypair};
use shared::params::NetworkParams;
use shared::protocol::message::TipStatus;
use shared::protocol::{NodeMessage, ProtocolError};
use shared::tx::Transaction;
use shared::work::{Work, U256};

fn sample_tx() -> Transaction {
    let params = NetworkParams::test();
    let chain = shared::block::chain_id(&genesis_block(&params).hash());
    Transaction::new_signed(
        &Keypair::from_seed([9; 32]),
        &chain,
        Address([0x11; 20]),
        5,
        1,
        0,
    )
}

fn sample_block() -> Block {
    let mut block = genesis_block(&NetworkParams::test());
    block.transactions.push(sample_tx());
    block
}

fn tip() -> TipStatus {
    TipStatus {
        hash: Hash([0xab; 32]),
        height: 7,
        total_work: Work(U256::from(0x1234u64)),
    }
}

/// One valid message of every type, as JSON values that a test can then alter.
fn valid_messages() -> Vec<Value> {
    let block = sample_block();
    [
        NodeMessage::Hello {
            protocol_version: 1,
            chain_id: Hash([1; 32]),
            genesis_hash: Hash([2; 32]),
            name: "alice".into(),
            address: Address([3; 20]),
            tip: tip(),
            direct_links: false,
        },
        NodeMessage::HelloRejected { reason: "x".into() },
        NodeMessage::Status { tip: tip() },
        NodeMessage::GetHeaders {
            locator: vec![Hash([4; 32])],
        },
        NodeMessage::Headers {
            headers: vec![block.header],
        },
        NodeMessage::GetBlocks {
            hashes: vec![Hash([5; 32])],
        },
        NodeMessage::Blocks {
            blocks: vec![block.clone()],
        },
        NodeMessage::NewBlock { block },
        NodeMessage::NewTransaction { tx: sample_tx() },
        NodeMessage::GetMempool,
        NodeMessage::Mempool {
            txs: vec![sample_tx()],
        },
        NodeMessage::Error {
            code: "bad_message".into(),
            message: "x".into(),
        },
    ]
    .iter()
    .map(|message| serde_json::from_str(&message.encode()).unwrap())
    .collect()
}

fn decode(value: &Value) -> Result<NodeMessage, ProtocolError> {
    NodeMessage::decode(&value.to_string())
}

/// Every JSON object inside `value`, by JSON pointer, the message itself first.
fn object_pointers(value: &Value, at: String, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            out.push(at.clone());
            for (key, inner) in map {
                object_pointers(inner, format!("{at}/{key}"), out);
            }
        }
        Value::Array(items) => {
            for (index, inner) in items.iter().enumerate() {
                object_pointers(inner, format!("{at}/{index}"), out);
            }
        }
        _ => {}
    }
}

#[test]
fn every_valid_message_decodes_to_itself() {
    for value in valid_messages() {
        let message = decode(&value).unwrap_or_else(|e| panic!("{value}: {e}"));
        assert_eq!(serde_json::to_value(&message).unwrap(), value);
    }
}

/// `{"type":"get_mempool","x":1}`, `{"type":"status","tip":{…,"x":1}}`, a header, a coinbase, a
/// transaction with an extra field: each is refused, at whatever depth the field is.
#[test]
fn an_unknown_field_is_malformed_in_every_object_of_every_message() {
    let mut tried = 0;
    for value in valid_messages() {
        let mut pointers = Vec::new();
        object_pointers(&value, String::new(), &mut pointers);
        for pointer in pointers {
            let mut altered = value.clone();
            altered
                .pointer_mut(&pointer)
                .and_then(Value::as_object_mut)
                .unwrap()
                .insert("x".into(), json!(1));
            assert!(
                matches!(decode(&altered), Err(ProtocolError::Malformed(_))),
                "an unknown field at `{pointer}` of {} was accepted",
                value["type"]
            );
            tried += 1;
        }
    }
    // 12 top levels, 3 tips, 4 headers, 2 coinbases, 5 blocks' transactions and blocks.
    assert!(tried >= 25, "only {tried} objects were tried");
}

#[test]
fn get_mempool_takes_no_fields() {
    assert_eq!(
        NodeMessage::decode(r#"{"type":"get_mempool"}"#),
        Ok(NodeMessage::GetMempool)
    );
    for text in [
        r#"{"type":"get_mempool","x":1}"#,
        r#"{"type":"get_mempool","txs":[]}"#,
        r#"{"x":null,"type":"get_mempool"}"#,
    ] {
        assert!(
            matches!(NodeMessage::decode(text), Err(ProtocolError::Malformed(_))),
            "{text} was accepted"
        );
    }
}

/// Replaces the string at `pointer` of `value` with `change` applied to it.
fn with_string(value: &Value, pointer: &str, change: impl Fn(&str) -> String) -> Value {
    let mut altered = value.clone();
    let slot = altered.pointer_mut(pointer).unwrap();
    let text = slot.as_str().unwrap().to_string();
    *slot = Value::String(change(&text));
    altered
}

/// Hashes, addresses, keys and signatures are exactly their length in lowercase hex: an uppercase
/// digit is malformed, not another spelling of the same bytes.
#[test]
fn fixed_length_hex_is_lowercase_only() {
    let by_type = |kind: &str| {
        valid_messages()
            .into_iter()
            .find(|value| value["type"] == kind)
            .unwrap()
    };
    let places = [
        ("status", "/tip/hash"),
        ("hello", "/chain_id"),
        ("hello", "/address"),
        ("get_headers", "/locator/0"),
        ("headers", "/headers/0/prev_hash"),
        ("new_block", "/block/coinbase/to"),
        ("new_transaction", "/tx/from"),
        ("new_transaction", "/tx/to"),
        ("new_transaction", "/tx/signature"),
    ];
    for (kind, pointer) in places {
        let value = by_type(kind);
        let upper = with_string(&value, pointer, |text| {
            // Some digit becomes a letter, so upper-casing changes the text.
            format!("A{}", &text[1..]).to_uppercase()
        });
        let lower = with_string(&value, pointer, |text| format!("a{}", &text[1..]));
        assert!(decode(&lower).is_ok(), "{kind} {pointer}: lowercase");
        assert!(
            matches!(decode(&upper), Err(ProtocolError::Malformed(_))),
            "{kind} {pointer}: uppercase hex was accepted"
        );
        for wrong_length in [
            with_string(&value, pointer, |text| text[2..].to_string()),
            with_string(&value, pointer, |text| format!("00{text}")),
            with_string(&value, pointer, |text| format!("{text}0")),
        ] {
            assert!(
                matches!(decode(&wrong_length), Err(ProtocolError::Malformed(_))),
                "{kind} {pointer}: wrong length accepted"
            );
        }
    }
}

/// Total work is lowercase hex without leading zeros, 1 to 64 digits: one spelling per number.
#[test]
fn work_is_lowercase_hex_without_leading_zeros() {
    let status = |work: &str| json!({"type": "status", "tip": {"hash": Hash([1; 32]), "height": 3, "total_work": work}});
    let accepted = |work: &str| decode(&status(work)).is_ok();
    for good in [
        "0",
        "1",
        "1234abcdef",
        &"f".repeat(64),
        &format!("1{}", "0".repeat(63)),
    ] {
        assert!(accepted(good), "{good:?} is refused");
    }
    for bad in [
        "",
        "00",
        "01",
        "0abc",
        "ABC",
        "1234ABCDEF",
        "0x12",
        "+12",
        " 12",
        "g",
        &"f".repeat(65),
        &format!("0{}", "f".repeat(63)),
    ] {
        assert!(!accepted(bad), "{bad:?} is accepted");
    }
    let work: Work = serde_json::from_value(json!("1234abcdef")).unwrap();
    assert_eq!(work.0, U256::from(0x0012_34ab_cdef_u64));
}
