//! The block detail's rules in plain words (issue 29, item 5): counts with the right plural,
//! times as spans from the rule's reference ("3 s after the median"), no epoch milliseconds, no
//! 64-digit numbers, no crate paths.

#![cfg(not(target_arch = "wasm32"))]

mod common;

use common::{add_tip, alice, bob, extend, next_block, pay};
use shared::chain::BlockTree;
use shared::params::NetworkParams;
use shared::view::{block_rules, duration_words};

fn details(tree: &BlockTree, now_ms: u64) -> Vec<String> {
    block_rules(tree, &tree.tip_hash(), now_ms)
        .expect("the tip has rules")
        .iter()
        .map(|rule| format!("{}: {}", rule.title, rule.detail))
        .collect()
}

/// No run of 10 or more digits (an epoch timestamp, a 64-digit target), and no `::`.
fn assert_plain(lines: &[String]) {
    for line in lines {
        let longest_digits = line
            .split(|c: char| !c.is_ascii_digit())
            .map(str::len)
            .max()
            .unwrap_or(0);
        assert!(longest_digits < 10, "a raw number in {line:?}");
        assert!(!line.contains("::"), "a code path in {line:?}");
    }
}

#[test]
fn one_transaction_is_one_transaction_and_times_are_spans() {
    let params = NetworkParams::test();
    let mut tree = BlockTree::new(params.clone());
    extend(&mut tree, alice().address(), 12);
    let payment = pay(&alice(), &tree.chain_id(), &bob(), 5, 1, 0);
    let block = next_block(&tree, alice().address(), vec![payment]);
    let stamped = block.header.timestamp_ms;
    add_tip(&mut tree, block);

    let lines = details(&tree, stamped + 4_000);
    assert_plain(&lines);
    let text = lines.join("\n");
    for expected in [
        "transaction count: 1 transaction (at most 1000)",
        "no transaction twice: one transaction",
        "signatures: the signature verifies",
        "reward: pays 51 coins: the subsidy of 50 plus 1 of fees",
        // Blocks 10 s apart: the median of the last 11 is 6 blocks back, 60 s before.
        "time after the median: stamped 1 min after the median time of the last 11 blocks",
        "time not too far ahead: stamped 4 s behind your clock; at most 2 min ahead is allowed",
        "difficulty: the target the difficulty rule sets for this place in the chain",
    ] {
        assert!(text.contains(expected), "{expected:?} not in\n{text}");
    }
    assert!(
        text.contains("proof of work: its hash starts with "),
        "{text}"
    );

    // An empty block: nothing to count in the plural.
    extend(&mut tree, alice().address(), 1);
    let lines = details(&tree, stamped + 10_000);
    let text = lines.join("\n");
    assert!(
        text.contains("transaction count: 0 transactions (at most 1000)"),
        "{text}"
    );
    assert!(
        text.contains("signatures: no signatures to check"),
        "{text}"
    );
    assert!(text.contains("stamped 0 ms behind your clock"), "{text}");
}

#[test]
fn spans_read_as_people_say_them() {
    for (ms, words) in [
        (0, "0 ms"),
        (350, "350 ms"),
        (1_000, "1 s"),
        (4_250, "4.2 s"),
        (59_999, "59.9 s"),
        (60_000, "1 min"),
        (120_000, "2 min"),
        (185_000, "3 min 5 s"),
        (3_600_000, "1 h"),
        (7_800_000, "2 h 10 min"),
    ] {
        assert_eq!(duration_words(ms), words, "{ms} ms");
    }
}
