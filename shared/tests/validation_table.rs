//! One invalid block per consensus rule, each with the exact [`ValidationError`] it must earn.
//!
//! Every case starts from a valid block template on a 12-block chain, breaks one rule, recomputes
//! the transaction root (unless the root is the rule) and mines the block again, so an unrelated
//! rule cannot mask the one under test. Each case is checked twice: with the rule functions
//! (`check_block`, then `Ledger::apply_block`) and through `BlockTree::add_block`, which must
//! leave the node on its old tip with its old ledger. A second table holds the valid blocks at
//! the edge of each rule, so a rule cannot pass by rejecting too much.

mod common;

// The same tests run in a browser: `wasm_bindgen_test` takes the place of `#[test]` there.
#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;
#[cfg(target_arch = "wasm32")]
wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);

use common::{alice, bob, carol, keypair, reseal, seal, unseal};
use shared::block::{Block, COINBASE_LEN, HEADER_LEN};
use shared::chain::{AddOutcome, BlockTree, ChainError};
use shared::hash::Hash;
use shared::keys::{Keypair, PublicKey};
use shared::params::NetworkParams;
use shared::tx::{Transaction, TX_ENCODED_LEN};
use shared::validation::{
    check_block, check_block_rules, ParentContext, Rule, RuleOutcome, ValidationError,
};
use shared::work::{Target, U256};
use std::collections::BTreeSet;

/// Blocks mined before each case: more than the 11 the median time looks at, so the median is
/// not the parent's timestamp.
const HISTORY: usize = 12;

/// The chain a case runs on.
#[derive(Clone, Copy, Debug)]
enum Network {
    /// `NetworkParams::test()`; alice mined all 12 blocks and holds 600 coins.
    Test,
    /// The test network with at most 3 transactions per block.
    FewTransactions,
    /// The test network with room for the canonical bytes of 3 transactions.
    FewBytes,
    /// A subsidy of `u64::MAX`, so a second block overflows the supply; alice mined one block.
    HugeSubsidy,
}

impl Network {
    fn params(self) -> NetworkParams {
        let test = NetworkParams::test();
        match self {
            Network::Test => test,
            Network::FewTransactions => NetworkParams {
                max_block_txs: 3,
                ..test
            },
            Network::FewBytes => NetworkParams {
                max_block_bytes: HEADER_LEN + COINBASE_LEN + 4 + 3 * TX_ENCODED_LEN,
                ..test
            },
            Network::HugeSubsidy => NetworkParams {
                initial_subsidy: u64::MAX,
                ..test
            },
        }
    }
    fn history(self) -> usize {
        match self {
            Network::HugeSubsidy => 1,
            _ => HISTORY,
        }
    }
}

/// A chain mined by alice, and what a case needs to build on its tip.
struct Fixture {
    params: NetworkParams,
    tree: BlockTree,
    chain_id: Hash,
}

impl Fixture {
    fn new(network: Network) -> Fixture {
        let params = network.params();
        let mut tree = BlockTree::new(params.clone());
        common::extend(&mut tree, alice().address(), network.history());
        Fixture {
            chain_id: tree.chain_id(),
            params,
            tree,
        }
    }

    fn parent(&self) -> ParentContext {
        self.tree
            .parent_context(&self.tree.tip_hash())
            .expect("the tip is stored")
    }

    fn grandparent_hash(&self) -> Hash {
        self.tree.tip_header().prev_hash
    }

    /// A valid block paying alice, with `txs`, after `change` and a fresh root and nonce.
    fn block(&self, txs: Vec<Transaction>, change: impl FnOnce(&mut Block)) -> Block {
        let now = self.tree.tip_header().timestamp_ms + self.params.target_block_ms;
        let mut block = self.tree.block_template(alice().address(), txs, now);
        change(&mut block);
        reseal(&mut block);
        block
    }

    fn valid(&self, txs: Vec<Transaction>) -> Block {
        self.block(txs, |_| {})
    }

    /// A transfer signed for this chain.
    fn pay(&self, from: &Keypair, to: &Keypair, amount: u64, fee: u64, nonce: u64) -> Transaction {
        common::pay(from, &self.chain_id, to, amount, fee, nonce)
    }

    fn balance(&self, who: &Keypair) -> u64 {
        self.tree.ledger().balance(&who.address())
    }
}

/// Bytes that are not the encoding of a point on the curve (found by search, so the test does
/// not depend on a hand-picked constant).
fn not_a_curve_point() -> PublicKey {
    (0..=255u8)
        .map(|byte| PublicKey([byte; 32]))
        .find(|key| key.verifying_key().is_none())
        .expect("about half of all 32-byte strings are not points")
}

type BuildFn = fn(&Fixture) -> Block;
type ExpectFn = fn(&Fixture, &Block) -> ValidationError;

struct Case {
    name: &'static str,
    network: Network,
    build: BuildFn,
    /// The receiving node's clock; `None` means the block's own timestamp.
    now: Option<fn(&Fixture, &Block) -> u64>,
    expected: ExpectFn,
    /// False for the one rule the tree cannot be asked about: it finds a block's parent by the
    /// block's previous hash, so a block never reaches it with a parent it does not name.
    through_tree: bool,
}

fn case(name: &'static str, build: BuildFn, expected: ExpectFn) -> Case {
    Case {
        name,
        network: Network::Test,
        build,
        now: None,
        expected,
        through_tree: true,
    }
}

impl Case {
    fn on(self, network: Network) -> Case {
        Case { network, ..self }
    }
    fn at(self, now: fn(&Fixture, &Block) -> u64) -> Case {
        Case {
            now: Some(now),
            ..self
        }
    }
    fn check_block_only(self) -> Case {
        Case {
            through_tree: false,
            ..self
        }
    }
}

fn invalid_cases() -> Vec<Case> {
    use ValidationError as E;
    vec![
        // ---- header ----
        case(
            "version 1 (the network before the per-block difficulty rule)",
            |fx| fx.block(vec![], |b| b.header.version = 1),
            |_, _| E::UnsupportedVersion { found: 1 },
        ),
        case(
            "version 2 (the network before effective times in the difficulty rule)",
            |fx| fx.block(vec![], |b| b.header.version = 2),
            |_, _| E::UnsupportedVersion { found: 2 },
        ),
        case(
            "version 4",
            |fx| fx.block(vec![], |b| b.header.version = 4),
            |_, _| E::UnsupportedVersion { found: 4 },
        ),
        case(
            "version 0",
            |fx| fx.block(vec![], |b| b.header.version = 0),
            |_, _| E::UnsupportedVersion { found: 0 },
        ),
        case(
            "height skips one",
            |fx| {
                fx.block(vec![], |b| {
                    b.header.height += 1;
                    b.coinbase.height += 1;
                })
            },
            |fx, b| E::WrongHeight {
                expected: fx.parent().header.height + 1,
                found: b.header.height,
            },
        ),
        case(
            "height repeats the parent's",
            |fx| {
                fx.block(vec![], |b| {
                    b.header.height -= 1;
                    b.coinbase.height -= 1;
                })
            },
            |fx, b| E::WrongHeight {
                expected: fx.parent().header.height + 1,
                found: b.header.height,
            },
        ),
        case(
            "previous hash names the grandparent",
            |fx| {
                let grandparent = fx.grandparent_hash();
                fx.block(vec![], |b| b.header.prev_hash = grandparent)
            },
            |fx, b| E::WrongPrevHash {
                expected: fx.parent().hash,
                found: b.header.prev_hash,
            },
        )
        .check_block_only(),
        case(
            "target harder than the difficulty rule demands",
            |fx| {
                let harder = fx.parent().next_target.expand().unwrap() / U256::from(4u64);
                fx.block(vec![], |b| b.header.target = Target::from_u256(harder))
            },
            |fx, b| E::WrongTarget {
                expected: fx.parent().next_target.0,
                found: b.header.target.0,
            },
        ),
        case(
            "target easier than the difficulty rule demands",
            |fx| fx.block(vec![], |b| b.header.target = Target::from_u256(U256::MAX)),
            |fx, _| E::WrongTarget {
                expected: fx.parent().next_target.0,
                found: 0x20ff_ffff,
            },
        ),
        case(
            "hash misses the target",
            |fx| {
                let mut block = fx.valid(vec![]);
                unseal(&mut block);
                block
            },
            |_, _| E::InsufficientProofOfWork,
        ),
        case(
            "timestamp equals the median of the last 11 blocks",
            |fx| {
                let median = fx.parent().median_time_past;
                fx.block(vec![], |b| b.header.timestamp_ms = median)
            },
            |fx, b| E::TimestampTooOld {
                median: fx.parent().median_time_past,
                found: b.header.timestamp_ms,
            },
        ),
        case(
            "timestamp of the genesis block",
            |fx| {
                let genesis_time = fx.params.genesis_timestamp_ms;
                fx.block(vec![], |b| b.header.timestamp_ms = genesis_time)
            },
            |fx, b| E::TimestampTooOld {
                median: fx.parent().median_time_past,
                found: b.header.timestamp_ms,
            },
        ),
        case(
            "timestamp 1 ms past the receiver's future limit",
            |fx| fx.valid(vec![]),
            |_, b| E::TimestampTooFarAhead {
                limit: b.header.timestamp_ms - 1,
                found: b.header.timestamp_ms,
            },
        )
        .at(|fx, b| b.header.timestamp_ms - fx.params.max_future_ms - 1),
        // ---- body ----
        case(
            "one transaction more than the limit",
            |fx| fx.valid((0..4).map(|n| fx.pay(&alice(), &bob(), 1, 0, n)).collect()),
            |fx, _| E::TooManyTransactions {
                count: 4,
                limit: fx.params.max_block_txs,
            },
        )
        .on(Network::FewTransactions),
        case(
            "canonical bytes one transaction over the limit",
            |fx| fx.valid((0..4).map(|n| fx.pay(&alice(), &bob(), 1, 0, n)).collect()),
            |fx, b| E::BlockTooLarge {
                size: b.encode().len(),
                limit: fx.params.max_block_bytes,
            },
        )
        .on(Network::FewBytes),
        case(
            "transaction added after the root was computed",
            |fx| {
                let mut block = fx.valid(vec![fx.pay(&alice(), &bob(), 5, 0, 0)]);
                block.transactions.push(fx.pay(&alice(), &bob(), 5, 0, 1));
                seal(&mut block);
                block
            },
            |_, _| E::TxRootMismatch,
        ),
        case(
            "transactions reordered under the same root",
            |fx| {
                let mut block = fx.valid(vec![
                    fx.pay(&alice(), &bob(), 5, 0, 0),
                    fx.pay(&alice(), &carol(), 5, 0, 1),
                ]);
                block.transactions.swap(0, 1);
                seal(&mut block);
                block
            },
            |_, _| E::TxRootMismatch,
        ),
        case(
            "coinbase paid to another miner under the same root",
            |fx| {
                let mut block = fx.valid(vec![]);
                block.coinbase.to = carol().address();
                seal(&mut block);
                block
            },
            |_, _| E::TxRootMismatch,
        ),
        case(
            "coinbase height one above the block's",
            |fx| fx.block(vec![], |b| b.coinbase.height += 1),
            |_, b| E::CoinbaseHeightMismatch {
                expected: b.header.height,
                found: b.header.height + 1,
            },
        ),
        case(
            "coinbase pays one coin too many",
            |fx| fx.block(vec![], |b| b.coinbase.amount += 1),
            |fx, b| E::WrongCoinbaseAmount {
                expected: fx.params.subsidy(b.header.height),
                found: fx.params.subsidy(b.header.height) + 1,
            },
        ),
        case(
            "coinbase leaves out the fees",
            |fx| {
                let tx = fx.pay(&alice(), &bob(), 5, 3, 0);
                fx.block(vec![tx], |b| b.coinbase.amount -= 3)
            },
            |fx, b| E::WrongCoinbaseAmount {
                expected: fx.params.subsidy(b.header.height) + 3,
                found: fx.params.subsidy(b.header.height),
            },
        ),
        case(
            "the fees of two transactions overflow",
            |fx| {
                fx.valid(vec![
                    fx.pay(&alice(), &bob(), 1, u64::MAX - 1, 0),
                    fx.pay(&alice(), &bob(), 1, 2, 1),
                ])
            },
            |_, _| E::FeeOverflow,
        ),
        case(
            "the subsidy plus one fee overflows",
            |fx| fx.valid(vec![fx.pay(&alice(), &bob(), 1, u64::MAX - 1, 0)]),
            |_, _| E::FeeOverflow,
        ),
        case(
            "the same transaction twice",
            |fx| {
                let tx = fx.pay(&alice(), &bob(), 5, 1, 0);
                fx.valid(vec![tx.clone(), tx])
            },
            |_, _| E::DuplicateTransaction { index: 1 },
        ),
        case(
            "a duplicated pair after a transfer of zero coins (rule 12 before rule 13)",
            |fx| {
                let tx = fx.pay(&alice(), &bob(), 5, 1, 1);
                fx.valid(vec![fx.pay(&alice(), &bob(), 0, 1, 0), tx.clone(), tx])
            },
            |_, _| E::DuplicateTransaction { index: 2 },
        ),
        case(
            "a transfer of zero coins",
            |fx| {
                fx.valid(vec![
                    fx.pay(&alice(), &bob(), 5, 1, 0),
                    fx.pay(&alice(), &bob(), 0, 1, 1),
                ])
            },
            |_, _| E::ZeroAmount { index: 1 },
        ),
        case(
            "a signature with one bit flipped",
            |fx| {
                let mut bad = fx.pay(&alice(), &bob(), 5, 1, 1);
                bad.signature.0[10] ^= 0x01;
                fx.valid(vec![fx.pay(&alice(), &bob(), 5, 1, 0), bad])
            },
            |_, _| E::InvalidSignature { index: 1 },
        ),
        case(
            "a transaction signed for the main network (replay)",
            |fx| {
                let main = NetworkParams::default_network();
                let main_chain_id =
                    shared::block::chain_id(&shared::block::genesis_block(&main).hash());
                assert_ne!(main_chain_id, fx.chain_id);
                let replayed =
                    Transaction::new_signed(&alice(), &main_chain_id, bob().address(), 5, 1, 0);
                fx.valid(vec![replayed])
            },
            |_, _| E::InvalidSignature { index: 0 },
        ),
        case(
            "the amount raised after signing",
            |fx| {
                let mut tx = fx.pay(&alice(), &bob(), 5, 1, 0);
                tx.amount = 500;
                fx.valid(vec![tx])
            },
            |_, _| E::InvalidSignature { index: 0 },
        ),
        case(
            "another sender's key under alice's signature",
            |fx| {
                let mut tx = fx.pay(&alice(), &bob(), 5, 1, 0);
                tx.from = carol().public();
                fx.valid(vec![tx])
            },
            |_, _| E::InvalidSignature { index: 0 },
        ),
        case(
            "a sender key that is not a curve point",
            |fx| {
                let mut tx = fx.pay(&alice(), &bob(), 5, 1, 0);
                tx.from = not_a_curve_point();
                fx.valid(vec![fx.pay(&alice(), &bob(), 5, 1, 0), tx])
            },
            |_, _| E::InvalidSignature { index: 1 },
        ),
        // ---- ledger ----
        case(
            "a nonce one ahead of the sender's",
            |fx| fx.valid(vec![fx.pay(&alice(), &bob(), 5, 1, 1)]),
            |_, _| E::BadNonce {
                index: 0,
                expected: 0,
                found: 1,
            },
        ),
        case(
            "a second transaction reusing the first one's nonce",
            |fx| {
                fx.valid(vec![
                    fx.pay(&alice(), &bob(), 5, 1, 0),
                    fx.pay(&alice(), &carol(), 5, 1, 0),
                ])
            },
            |_, _| E::BadNonce {
                index: 1,
                expected: 1,
                found: 0,
            },
        ),
        case(
            "a sender that never received coins",
            |fx| fx.valid(vec![fx.pay(&bob(), &carol(), 5, 1, 0)]),
            |_, _| E::InsufficientBalance {
                index: 0,
                balance: 0,
                needed: 6,
            },
        ),
        case(
            "the amount is the balance but the fee is not covered",
            |fx| {
                let all = fx.balance(&alice());
                fx.valid(vec![fx.pay(&alice(), &bob(), all, 1, 0)])
            },
            |fx, _| E::InsufficientBalance {
                index: 0,
                balance: fx.balance(&alice()),
                needed: fx.balance(&alice()) + 1,
            },
        ),
        case(
            "spending the coinbase of the same block",
            |fx| {
                let all = fx.balance(&alice());
                fx.valid(vec![
                    fx.pay(&alice(), &bob(), all - 10, 10, 0),
                    fx.pay(&alice(), &bob(), 1, 0, 1),
                ])
            },
            |_, _| E::InsufficientBalance {
                index: 1,
                balance: 0,
                needed: 1,
            },
        ),
        case(
            "amount plus fee overflows",
            |fx| fx.valid(vec![fx.pay(&alice(), &bob(), u64::MAX, 1, 0)]),
            |_, _| E::AmountOverflow { index: 0 },
        ),
        case(
            "a second u64::MAX coinbase overflows the miner's balance",
            |fx| fx.valid(vec![]),
            |_, _| E::BalanceOverflow,
        )
        .on(Network::HugeSubsidy),
        case(
            "a second u64::MAX coinbase to a new miner overflows the supply",
            |fx| fx.block(vec![], |b| b.coinbase.to = bob().address()),
            |_, _| E::BalanceOverflow,
        )
        .on(Network::HugeSubsidy),
    ]
}

/// Each variant by name. The match has no wildcard, so a new rule does not compile until it is
/// named here, and then `every_rule_has_a_case` fails until the table has a case for it.
fn variant(error: &ValidationError) -> &'static str {
    use ValidationError as E;
    match error {
        E::UnsupportedVersion { .. } => "UnsupportedVersion",
        E::WrongHeight { .. } => "WrongHeight",
        E::WrongPrevHash { .. } => "WrongPrevHash",
        E::WrongTarget { .. } => "WrongTarget",
        E::InsufficientProofOfWork => "InsufficientProofOfWork",
        E::TimestampTooOld { .. } => "TimestampTooOld",
        E::TimestampTooFarAhead { .. } => "TimestampTooFarAhead",
        E::TooManyTransactions { .. } => "TooManyTransactions",
        E::BlockTooLarge { .. } => "BlockTooLarge",
        E::TxRootMismatch => "TxRootMismatch",
        E::CoinbaseHeightMismatch { .. } => "CoinbaseHeightMismatch",
        E::WrongCoinbaseAmount { .. } => "WrongCoinbaseAmount",
        E::FeeOverflow => "FeeOverflow",
        E::DuplicateTransaction { .. } => "DuplicateTransaction",
        E::ZeroAmount { .. } => "ZeroAmount",
        E::InvalidSignature { .. } => "InvalidSignature",
        E::BadNonce { .. } => "BadNonce",
        E::InsufficientBalance { .. } => "InsufficientBalance",
        E::AmountOverflow { .. } => "AmountOverflow",
        E::BalanceOverflow => "BalanceOverflow",
    }
}

const ALL_VARIANTS: [&str; 20] = [
    "UnsupportedVersion",
    "WrongHeight",
    "WrongPrevHash",
    "WrongTarget",
    "InsufficientProofOfWork",
    "TimestampTooOld",
    "TimestampTooFarAhead",
    "TooManyTransactions",
    "BlockTooLarge",
    "TxRootMismatch",
    "CoinbaseHeightMismatch",
    "WrongCoinbaseAmount",
    "FeeOverflow",
    "DuplicateTransaction",
    "ZeroAmount",
    "InvalidSignature",
    "BadNonce",
    "InsufficientBalance",
    "AmountOverflow",
    "BalanceOverflow",
];

/// What the rule functions say: the context rules, then the ledger rules on a copy of the ledger.
fn rule_functions(fx: &Fixture, block: &Block, now: u64) -> Result<(), ValidationError> {
    let verdict = check_block(block.clone(), &fx.parent(), &fx.params, &fx.chain_id, now);
    assert_rule_results_agree(fx, block, now, verdict.as_ref().err());
    let checked = verdict?;
    let mut ledger = fx.tree.ledger().clone();
    ledger
        .apply_block(checked.block(), fx.params.subsidy(block.header.height))
        .map(|_| ())
}

/// What a view lists per rule (`check_block_rules`) says exactly what `check_block` says: the
/// rule it stopped at failed with the same error, every rule before it passed, none after it
/// was reached; a block it accepts passes every rule.
fn assert_rule_results_agree(
    fx: &Fixture,
    block: &Block,
    now: u64,
    error: Option<&ValidationError>,
) {
    let results = check_block_rules(block, &fx.parent(), &fx.params, &fx.chain_id, now);
    let rules: Vec<Rule> = results.iter().map(|(rule, _)| *rule).collect();
    assert_eq!(rules, Rule::ALL, "every rule, in check_block's order");
    let failed: Vec<&ValidationError> = results
        .iter()
        .filter_map(|(_, outcome)| match outcome {
            RuleOutcome::Failed(error) => Some(error),
            _ => None,
        })
        .collect();
    assert_eq!(failed, error.into_iter().collect::<Vec<_>>(), "{results:?}");
    match error {
        None => assert!(
            results
                .iter()
                .all(|(_, outcome)| *outcome == RuleOutcome::Passed),
            "{results:?}"
        ),
        Some(error) => {
            let stop = Rule::ALL
                .iter()
                .position(|rule| Some(*rule) == error.rule())
                .expect("a context error names its rule");
            for (at, (rule, outcome)) in results.iter().enumerate() {
                let before_the_same_pass = *rule == Rule::UniqueTransactions
                    && error.rule() == Some(Rule::TransactionAmounts);
                if at < stop && !before_the_same_pass {
                    assert_eq!(*outcome, RuleOutcome::Passed, "{rule:?} before {error:?}");
                } else if at > stop {
                    assert_eq!(
                        *outcome,
                        RuleOutcome::NotReached,
                        "{rule:?} after {error:?}"
                    );
                }
            }
        }
    }
}

fn run_invalid(case: &Case) -> Result<(), String> {
    let fx = Fixture::new(case.network);
    let block = (case.build)(&fx);
    let now = case
        .now
        .map_or(block.header.timestamp_ms, |now| now(&fx, &block));
    let expected = (case.expected)(&fx, &block);

    let direct = rule_functions(&fx, &block, now);
    if direct != Err(expected.clone()) {
        return Err(format!(
            "rule functions gave {direct:?}, expected {expected:?}"
        ));
    }
    if !case.through_tree {
        return Ok(());
    }

    let mut tree = fx.tree;
    let (tip, ledger) = (tree.tip_hash(), tree.ledger().clone());
    let hash = block.hash();
    let first = tree.add_block(block.clone(), now);
    let rejected = Err(ChainError::Invalid {
        hash,
        error: expected.clone(),
    });
    if first != rejected {
        return Err(format!("add_block gave {first:?}, expected {rejected:?}"));
    }
    if tree.tip_hash() != tip || tree.ledger() != &ledger || tree.contains(&hash) {
        return Err("a rejected block moved the tip, changed the ledger or was stored".into());
    }
    // A block that can never be valid is refused by hash without checking it again; one whose
    // header may still be good (a body altered in transit, a clock behind) is checked again.
    let again = tree.add_block(block, now);
    let expected_again = if expected.marks_hash_invalid() {
        Err(ChainError::KnownInvalid(hash))
    } else {
        rejected
    };
    if again != expected_again {
        return Err(format!(
            "adding it again gave {again:?}, expected {expected_again:?}"
        ));
    }
    Ok(())
}

#[test]
fn every_invalid_block_is_rejected_with_its_rule() {
    let failures: Vec<String> = invalid_cases()
        .iter()
        .filter_map(|case| {
            run_invalid(case)
                .err()
                .map(|why| format!("{}: {why}", case.name))
        })
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        invalid_cases().len(),
        failures.join("\n")
    );
}

#[test]
fn every_rule_has_a_case() {
    let covered: BTreeSet<&str> = invalid_cases()
        .iter()
        .map(|case| {
            let fx = Fixture::new(case.network);
            let block = (case.build)(&fx);
            variant(&(case.expected)(&fx, &block))
        })
        .collect();
    let all: BTreeSet<&str> = ALL_VARIANTS.into_iter().collect();
    let missing: Vec<_> = all.difference(&covered).collect();
    assert!(missing.is_empty(), "rules without a case: {missing:?}");
    let names: BTreeSet<&str> = invalid_cases().iter().map(|case| case.name).collect();
    assert_eq!(names.len(), invalid_cases().len(), "case names are unique");
}

// ---- the valid side of each edge ----

struct ValidCase {
    name: &'static str,
    network: Network,
    build: BuildFn,
    now: Option<fn(&Fixture, &Block) -> u64>,
}

fn valid(name: &'static str, build: BuildFn) -> ValidCase {
    ValidCase {
        name,
        network: Network::Test,
        build,
        now: None,
    }
}

fn valid_cases() -> Vec<ValidCase> {
    vec![
        valid("the unchanged template", |fx| fx.valid(vec![])),
        valid(
            "timestamp 1 ms after the median, before the parent's",
            |fx| {
                let median = fx.parent().median_time_past;
                assert!(median + 1 < fx.tree.tip_header().timestamp_ms);
                fx.block(vec![], |b| b.header.timestamp_ms = median + 1)
            },
        ),
        ValidCase {
            now: Some(|fx, b| b.header.timestamp_ms - fx.params.max_future_ms),
            ..valid("timestamp exactly at the receiver's future limit", |fx| {
                fx.valid(vec![])
            })
        },
        ValidCase {
            network: Network::FewTransactions,
            ..valid("exactly the transaction limit", |fx| {
                fx.valid((0..3).map(|n| fx.pay(&alice(), &bob(), 1, 0, n)).collect())
            })
        },
        ValidCase {
            network: Network::FewBytes,
            ..valid("exactly the byte limit", |fx| {
                let block = fx.valid((0..3).map(|n| fx.pay(&alice(), &bob(), 1, 0, n)).collect());
                assert_eq!(block.encode().len(), fx.params.max_block_bytes);
                block
            })
        },
        valid("amount plus fee is exactly the balance", |fx| {
            let all = fx.balance(&alice());
            fx.valid(vec![fx.pay(&alice(), &bob(), all - 7, 7, 0)])
        }),
        valid("a zero fee", |fx| {
            fx.valid(vec![fx.pay(&alice(), &bob(), 1, 0, 0)])
        }),
        valid("paying oneself", |fx| {
            fx.valid(vec![fx.pay(&alice(), &alice(), 100, 1, 0)])
        }),
        valid(
            "a chain of nonces, the receiver spending in the same block",
            |fx| {
                fx.valid(vec![
                    fx.pay(&alice(), &bob(), 100, 1, 0),
                    fx.pay(&alice(), &carol(), 100, 1, 1),
                    fx.pay(&bob(), &carol(), 50, 2, 0),
                ])
            },
        ),
        valid(
            "many senders with one bad-looking but valid key order",
            |fx| {
                let senders: Vec<Keypair> = (10..20).map(keypair).collect();
                let mut txs = vec![];
                for (n, sender) in senders.iter().enumerate() {
                    txs.push(fx.pay(&alice(), sender, 20, 0, n as u64));
                }
                for sender in &senders {
                    txs.push(fx.pay(sender, &bob(), 10, 1, 0));
                }
                fx.valid(txs)
            },
        ),
    ]
}

#[test]
fn blocks_at_the_edge_of_each_rule_are_accepted() {
    let mut failures = vec![];
    for case in valid_cases() {
        let fx = Fixture::new(case.network);
        let block = (case.build)(&fx);
        let now = case
            .now
            .map_or(block.header.timestamp_ms, |now| now(&fx, &block));
        if let Err(error) = rule_functions(&fx, &block, now) {
            failures.push(format!("{}: rule functions: {error:?}", case.name));
            continue;
        }
        let mut tree = fx.tree;
        match tree.add_block(block.clone(), now) {
            Ok(AddOutcome::TipChanged(change)) if change.new_tip == block.hash() => {
                common::assert_supply(&tree)
            }
            other => failures.push(format!("{}: add_block gave {other:?}", case.name)),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The fee of each transaction moves from its sender to the block's miner; nothing else changes.
#[test]
fn fees_go_to_the_miner_and_amounts_to_the_recipient() {
    let fx = Fixture::new(Network::Test);
    let before = fx.balance(&alice());
    let now = fx.tree.tip_header().timestamp_ms + fx.params.target_block_ms;
    let txs = vec![
        fx.pay(&alice(), &bob(), 100, 3, 0),
        fx.pay(&alice(), &carol(), 20, 4, 1),
    ];
    let mut block = fx.tree.block_template(carol().address(), txs, now);
    seal(&mut block);
    let subsidy = fx.params.subsidy(block.header.height);
    assert_eq!(block.coinbase.amount, subsidy + 7);
    let mut tree = fx.tree;
    common::add_tip(&mut tree, block);
    let ledger = tree.ledger();
    assert_eq!(ledger.balance(&alice().address()), before - 127);
    assert_eq!(ledger.balance(&bob().address()), 100);
    assert_eq!(ledger.balance(&carol().address()), 20 + subsidy + 7);
    assert_eq!(ledger.account(&alice().address()).nonce, 2);
    common::assert_supply(&tree);
}

/// A block that was only early is not remembered as invalid: once the clock passes its
/// timestamp minus the allowed margin, the same block is accepted.
#[test]
fn a_block_from_the_future_is_accepted_once_the_clock_catches_up() {
    let fx = Fixture::new(Network::Test);
    let block = fx.valid(vec![]);
    let early = block.header.timestamp_ms - fx.params.max_future_ms - 1;
    let mut tree = fx.tree;
    assert!(matches!(
        tree.add_block(block.clone(), early),
        Err(ChainError::Invalid {
            error: ValidationError::TimestampTooFarAhead { .. },
            ..
        })
    ));
    assert!(!tree.is_known_invalid(&block.hash()));
    assert!(matches!(
        tree.add_block(block.clone(), early + 1),
        Ok(AddOutcome::TipChanged(_))
    ));
    assert_eq!(tree.tip_hash(), block.hash());
}

/// Someone relaying a block can alter its body, but must not get the honest block banned: after
/// a tampered copy is refused, the original with the same header is accepted.
#[test]
fn a_tampered_body_does_not_ban_the_honest_block() {
    let fx = Fixture::new(Network::Test);
    let honest = fx.valid(vec![fx.pay(&alice(), &bob(), 10, 1, 0)]);
    let mut tampered = honest.clone();
    tampered.transactions[0] = fx.pay(&alice(), &carol(), 10, 1, 0);
    assert_eq!(tampered.hash(), honest.hash());
    let mut tree = fx.tree;
    let now = honest.header.timestamp_ms;
    assert_eq!(
        tree.add_block(tampered, now),
        Err(ChainError::Invalid {
            hash: honest.hash(),
            error: ValidationError::TxRootMismatch
        })
    );
    common::add_tip(&mut tree, honest);
    assert_eq!(tree.ledger().balance(&bob().address()), 10);
}
