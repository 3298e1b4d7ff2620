//! Properties that must hold for every input, not just the examples: encodings round-trip,
//! a reorg lands on exactly the ledger of the winning branch, coins are never created or lost,
//! and a block built from the mempool is always valid.
//!
//! Case counts are kept small so the file runs in seconds in a debug build; set
//! `PROPTEST_CASES=2000` (for example) to search harder.

#![cfg(not(target_arch = "wasm32"))]

mod common;

use common::{add_tip, assert_supply, keypair, next_block, tree_with};
use proptest::prelude::*;
use shared::block::{Block, BlockHeader, Coinbase};
use shared::chain::{AddOutcome, BlockTree, ChainError};
use shared::encode::Reader;
use shared::hash::Hash;
use shared::keys::{Address, Keypair, PublicKey, Signature};
use shared::mempool::Mempool;
use shared::params::NetworkParams;
use shared::state::Account;
use shared::tx::Transaction;
use shared::validation::ValidationError;
use shared::work::{Target, U256};
use std::collections::HashMap;

/// `cases` unless `PROPTEST_CASES` asks for another number.
fn config(cases: u32) -> ProptestConfig {
    let mut config = ProptestConfig::default();
    if std::env::var_os("PROPTEST_CASES").is_none() {
        config.cases = cases;
    }
    config
}

// ---- encodings ----

fn arb_hash() -> impl Strategy<Value = Hash> {
    any::<[u8; 32]>().prop_map(Hash)
}

fn arb_header() -> impl Strategy<Value = BlockHeader> {
    (
        any::<u32>(),
        any::<u64>(),
        arb_hash(),
        arb_hash(),
        any::<u64>(),
        any::<u32>(),
        any::<u64>(),
    )
        .prop_map(
            |(version, height, prev_hash, tx_root, timestamp_ms, target, nonce)| BlockHeader {
                version,
                height,
                prev_hash,
                tx_root,
                timestamp_ms,
                target: Target(target),
                nonce,
            },
        )
}

fn arb_transaction() -> impl Strategy<Value = Transaction> {
    (
        any::<[u8; 32]>(),
        any::<[u8; 20]>(),
        any::<u64>(),
        any::<u64>(),
        any::<u64>(),
        prop::collection::vec(any::<u8>(), 64),
    )
        .prop_map(|(from, to, amount, fee, nonce, signature)| Transaction {
            from: PublicKey(from),
            to: Address(to),
            amount,
            fee,
            nonce,
            signature: Signature(signature.try_into().expect("64 bytes")),
        })
}

fn arb_block() -> impl Strategy<Value = Block> {
    (
        arb_header(),
        any::<u64>(),
        any::<[u8; 20]>(),
        any::<u64>(),
        prop::collection::vec(arb_transaction(), 0..6),
    )
        .prop_map(|(header, height, to, amount, transactions)| Block {
            header,
            coinbase: Coinbase {
                height,
                to: Address(to),
                amount,
            },
            transactions,
        })
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn a_header_round_trips_through_bytes_and_json(header in arb_header()) {
        let bytes = header.encode();
        let mut reader = Reader::new(&bytes);
        prop_assert_eq!(BlockHeader::decode_from(&mut reader), Ok(header));
        prop_assert_eq!(reader.finish(), Ok(()));
        let json = serde_json::to_string(&header).unwrap();
        prop_assert_eq!(serde_json::from_str::<BlockHeader>(&json).unwrap(), header);
        prop_assert_eq!(header.hash(), Hash::digest(&[&bytes]));
    }

    #[test]
    fn a_transaction_round_trips_through_bytes_and_json(tx in arb_transaction()) {
        let bytes = tx.encode();
        prop_assert_eq!(bytes.len(), shared::tx::TX_ENCODED_LEN);
        let mut reader = Reader::new(&bytes);
        prop_assert_eq!(Transaction::decode_from(&mut reader), Ok(tx.clone()));
        prop_assert_eq!(reader.finish(), Ok(()));
        let json = serde_json::to_string(&tx).unwrap();
        prop_assert_eq!(serde_json::from_str::<Transaction>(&json).unwrap(), tx);
    }

    #[test]
    fn a_block_round_trips_through_bytes_and_json(block in arb_block()) {
        let bytes = block.encode();
        prop_assert_eq!(bytes.len(), block.encoded_len());
        prop_assert_eq!(Block::decode(&bytes, 1_000), Ok(block.clone()));
        let json = serde_json::to_string(&block).unwrap();
        prop_assert_eq!(serde_json::from_str::<Block>(&json).unwrap(), block.clone());
        // One byte short or one byte long is an error, never a different block.
        prop_assert!(Block::decode(&bytes[..bytes.len() - 1], 1_000).is_err());
        let mut longer = bytes.clone();
        longer.push(0);
        prop_assert!(Block::decode(&longer, 1_000).is_err());
    }

    /// Whatever a peer sends, decoding does not panic, and what decodes is canonical: it
    /// re-encodes to the very same bytes, so one block has one encoding and one hash.
    #[test]
    fn arbitrary_bytes_decode_to_nothing_or_to_their_own_encoding(
        block in arb_block(),
        noise in prop::collection::vec(any::<u8>(), 0..700),
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
    ) {
        // Random bytes almost never have a consistent length, so also corrupt real encodings.
        let mut corrupted = block.encode();
        for (at, byte) in edits {
            let at = at.index(corrupted.len());
            corrupted[at] = byte;
        }
        for bytes in [noise, corrupted] {
            if let Ok(decoded) = Block::decode(&bytes, 8) {
                prop_assert_eq!(decoded.encode(), bytes);
            }
        }
    }

    /// Signed transactions verify for their own chain only, and any change breaks the signature.
    #[test]
    fn a_signature_covers_every_field_and_the_chain(
        seed in any::<[u8; 32]>(),
        to in any::<[u8; 20]>(),
        amount in any::<u64>(),
        fee in any::<u64>(),
        nonce in any::<u64>(),
        chain in arb_hash(),
        other_chain in arb_hash(),
        field in 0usize..4,
    ) {
        let keypair = Keypair::from_seed(seed);
        let tx = Transaction::new_signed(&keypair, &chain, Address(to), amount, fee, nonce);
        prop_assert!(tx.verify_signature(&chain));
        prop_assume!(other_chain != chain);
        prop_assert!(!tx.verify_signature(&other_chain));
        let mut changed = tx.clone();
        match field {
            0 => changed.amount ^= 1,
            1 => changed.fee ^= 1,
            2 => changed.nonce ^= 1,
            _ => changed.to.0[0] ^= 1,
        }
        prop_assert!(!changed.verify_signature(&chain));
    }

    /// The compact form rounds down (never makes a target easier) and is idempotent, and a
    /// harder target is never less work.
    #[test]
    fn compact_targets_round_down_and_work_grows_as_targets_shrink(
        words in any::<[u64; 4]>(),
        shift in 0usize..256,
        other in any::<[u64; 4]>(),
    ) {
        let value = U256(words) >> shift;
        let compact = Target::from_u256(value);
        match compact.expand() {
            Some(expanded) => {
                prop_assert!(expanded <= value);
                prop_assert_eq!(Target::from_u256(expanded), compact);
                if value < U256::from(1u64 << 24) {
                    prop_assert_eq!(expanded, value);
                }
            }
            None => prop_assert!(value.is_zero()),
        }
        let (a, b) = (Target::from_u256(value), Target::from_u256(U256(other)));
        if let (Some(x), Some(y)) = (a.expand(), b.expand()) {
            if x <= y {
                prop_assert!(a.work() >= b.work());
            }
        }
    }
}

// ---- chains built from random plans ----

/// Four accounts that mine and trade.
fn people() -> Vec<Keypair> {
    (1..=4).map(keypair).collect()
}

/// One block of a plan: who mines it and the transfers to try, as (from, to, amount, fee).
#[derive(Clone, Debug)]
struct BlockPlan {
    miner: usize,
    transfers: Vec<(usize, usize, u64, u64)>,
}

fn arb_plan(blocks: std::ops::Range<usize>) -> impl Strategy<Value = Vec<BlockPlan>> {
    let transfer = (0..4usize, 0..4usize, 1..80u64, 0..4u64);
    let block = (0..4usize, prop::collection::vec(transfer, 0..4))
        .prop_map(|(miner, transfers)| BlockPlan { miner, transfers });
    prop::collection::vec(block, blocks)
}

/// Mines `plan` onto `tree`, keeping only the transfers the ledger can pay (so every block is
/// valid), and returns the blocks.
fn mine_plan(tree: &mut BlockTree, plan: &[BlockPlan]) -> Vec<Block> {
    let people = people();
    let chain_id = tree.chain_id();
    plan.iter()
        .map(|step| {
            let mut accounts: HashMap<Address, Account> = HashMap::new();
            let mut txs = vec![];
            for &(from, to, amount, fee) in &step.transfers {
                let sender = people[from].address();
                let mut account = *accounts
                    .entry(sender)
                    .or_insert_with(|| tree.ledger().account(&sender));
                if amount + fee > account.balance {
                    continue;
                }
                txs.push(Transaction::new_signed(
                    &people[from],
                    &chain_id,
                    people[to].address(),
                    amount,
                    fee,
                    account.nonce,
                ));
                account.balance -= amount + fee;
                account.nonce += 1;
                accounts.insert(sender, account);
                let recipient = people[to].address();
                accounts
                    .entry(recipient)
                    .or_insert_with(|| tree.ledger().account(&recipient))
                    .balance += amount;
            }
            let block = next_block(tree, people[step.miner].address(), txs);
            add_tip(tree, block.clone());
            block
        })
        .collect()
}

proptest! {
    #![proptest_config(config(24))]

    /// Applying chain A and then reorganising to a heavier chain B leaves exactly the ledger
    /// that applying B from genesis gives, whatever order B's blocks arrive in.
    #[test]
    fn a_reorg_lands_on_the_ledger_of_the_winning_branch(
        prefix_plan in arb_plan(1..4),
        a_plan in arb_plan(1..4),
        extra_plan in arb_plan(1..3),
        b_head in arb_plan(1..4),
        arrival in prop::collection::vec(any::<u32>(), 8),
    ) {
        let params = NetworkParams::test();
        let mut a_tree = BlockTree::new(params.clone());
        let prefix = mine_plan(&mut a_tree, &prefix_plan);
        let a = mine_plan(&mut a_tree, &a_plan);

        // B is longer than A at the same target, so it has more work.
        let b_plan: Vec<BlockPlan> = b_head.iter().chain(&a_plan).chain(&extra_plan)
            .take(a_plan.len() + extra_plan.len()).cloned().collect();
        let mut b_tree = tree_with(&params, &prefix);
        let b = mine_plan(&mut b_tree, &b_plan);
        prop_assert!(b_tree.tip_work() > a_tree.tip_work());

        let mut tree = tree_with(&params, &prefix);
        for block in &a {
            add_tip(&mut tree, block.clone());
        }
        let mut order: Vec<usize> = (0..b.len()).collect();
        order.sort_by_key(|&i| arrival[i % arrival.len()].wrapping_mul(i as u32 + 1));
        let now = b.iter().map(|block| block.header.timestamp_ms).max().unwrap();
        for i in order {
            let outcome = tree.add_block(b[i].clone(), now);
            prop_assert!(outcome.is_ok(), "{:?}", outcome);
        }
        prop_assert_eq!(tree.tip_hash(), b_tree.tip_hash());
        prop_assert_eq!(tree.ledger(), b_tree.ledger());
        prop_assert_eq!(tree.orphan_count(), 0);
        assert_supply(&tree);
    }
}

/// The state a user expects: what each account must hold after each block.
#[derive(Default)]
struct Model {
    accounts: HashMap<Address, Account>,
}

impl Model {
    fn account(&self, address: &Address) -> Account {
        self.accounts.get(address).copied().unwrap_or_default()
    }

    /// What the rules say about a block holding this one transfer, in the order they check.
    fn judge(&self, tx: &Transaction, subsidy: u64) -> Result<(), ValidationError> {
        if tx.amount == 0 {
            return Err(ValidationError::ZeroAmount { index: 0 });
        }
        let Some(needed) = tx.amount.checked_add(tx.fee) else {
            return Err(ValidationError::AmountOverflow { index: 0 });
        };
        if subsidy.checked_add(tx.fee).is_none() {
            return Err(ValidationError::FeeOverflow);
        }
        let sender = self.account(&tx.sender());
        if tx.nonce != sender.nonce {
            return Err(ValidationError::BadNonce {
                index: 0,
                expected: sender.nonce,
                found: tx.nonce,
            });
        }
        if needed > sender.balance {
            return Err(ValidationError::InsufficientBalance {
                index: 0,
                balance: sender.balance,
                needed,
            });
        }
        Ok(())
    }

    fn apply(&mut self, tx: Option<&Transaction>, miner: Address, subsidy: u64) {
        let mut fee = 0;
        if let Some(tx) = tx {
            let sender = self.accounts.entry(tx.sender()).or_default();
            sender.balance -= tx.amount + tx.fee;
            sender.nonce += 1;
            self.accounts.entry(tx.to).or_default().balance += tx.amount;
            fee = tx.fee;
        }
        self.accounts.entry(miner).or_default().balance += subsidy + fee;
    }
}

#[derive(Clone, Debug)]
struct Attempt {
    miner: usize,
    from: usize,
    to: usize,
    amount: u64,
    fee: u64,
    nonce_skew: i8,
}

fn arb_attempt() -> impl Strategy<Value = Attempt> {
    let amount = prop_oneof![
        8 => 1..120u64,
        1 => Just(0u64),
        1 => any::<u64>(),
    ];
    let fee = prop_oneof![9 => 0..5u64, 1 => any::<u64>()];
    let skew = prop_oneof![8 => Just(0i8), 1 => Just(1i8), 1 => Just(-1i8)];
    (0..4usize, 0..4usize, 0..4usize, amount, fee, skew).prop_map(
        |(miner, from, to, amount, fee, nonce_skew)| Attempt {
            miner,
            from,
            to,
            amount,
            fee,
            nonce_skew,
        },
    )
}

proptest! {
    #![proptest_config(config(48))]

    /// Every transfer is accepted exactly when the sender can pay it with the right nonce, each
    /// rejection names the rule, balances follow a plain model, and the supply is always exactly
    /// the subsidies issued: no sequence of operations creates coins or drives a balance below 0.
    #[test]
    fn balances_follow_the_model_and_the_supply_is_the_subsidies(
        attempts in prop::collection::vec(arb_attempt(), 1..16),
    ) {
        let people = people();
        let params = NetworkParams::test();
        let mut tree = BlockTree::new(params.clone());
        let chain_id = tree.chain_id();
        let mut model = Model::default();
        for attempt in attempts {
            let miner = people[attempt.miner].address();
            let sender = people[attempt.from].address();
            let nonce = model.account(&sender).nonce.wrapping_add_signed(attempt.nonce_skew.into());
            let tx = Transaction::new_signed(
                &people[attempt.from], &chain_id, people[attempt.to].address(),
                attempt.amount, attempt.fee, nonce,
            );
            let subsidy = params.subsidy(tree.tip_height() + 1);
            let block = next_block(&tree, miner, vec![tx.clone()]);
            let hash = block.hash();
            let (tip, ledger) = (tree.tip_hash(), tree.ledger().clone());
            match model.judge(&tx, subsidy) {
                Ok(()) => {
                    let outcome = common::add(&mut tree, block);
                    prop_assert!(matches!(outcome, Ok(AddOutcome::TipChanged(_))), "{:?}", outcome);
                    model.apply(Some(&tx), miner, subsidy);
                }
                Err(error) => {
                    prop_assert_eq!(
                        common::add(&mut tree, block),
                        Err(ChainError::Invalid { hash, error })
                    );
                    prop_assert_eq!(tree.tip_hash(), tip);
                    prop_assert_eq!(tree.ledger(), &ledger);
                    // The miner tries again with an empty block.
                    let block = next_block(&tree, miner, vec![]);
                    add_tip(&mut tree, block);
                    model.apply(None, miner, subsidy);
                }
            }
            for person in &people {
                let address = person.address();
                prop_assert_eq!(tree.ledger().account(&address), model.account(&address));
            }
            assert_supply(&tree);
        }
    }

    /// Whatever users send, and however the chain reorganises under the pool, the block a miner
    /// builds from its mempool is valid, and every waiting transaction could still confirm: its
    /// nonce is not used up and its sender can pay for everything it has waiting.
    #[test]
    fn a_block_built_from_the_mempool_is_always_valid(
        rounds in prop::collection::vec(
            (prop::collection::vec(arb_attempt(), 0..8), prop::bool::weighted(0.3), arb_plan(1..2)),
            1..7,
        ),
    ) {
        let people = people();
        let params = NetworkParams::test();
        let mut tree = BlockTree::new(params.clone());
        let chain_id = tree.chain_id();
        // Everyone has mined once, so everyone can pay.
        for person in &people {
            let block = next_block(&tree, person.address(), vec![]);
            add_tip(&mut tree, block);
        }
        let mut pool = Mempool::new();
        for (round, (attempts, reorg, rival_plan)) in rounds.into_iter().enumerate() {
            for attempt in attempts {
                let sender = people[attempt.from].address();
                let nonce = tree.ledger().account(&sender).nonce
                    .wrapping_add_signed(attempt.nonce_skew.into());
                let tx = Transaction::new_signed(
                    &people[attempt.from], &chain_id, people[attempt.to].address(),
                    attempt.amount, attempt.fee, nonce,
                );
                let _ = pool.add(tx, tree.ledger(), &chain_id);
            }
            if reorg {
                // Another miner replaces our tip with two blocks of its own transfers.
                let active: Vec<Block> = tree
                    .active_blocks(1, usize::MAX)
                    .iter()
                    .map(|block| (**block).clone())
                    .collect();
                let mut rival = tree_with(&params, &active[..active.len() - 1]);
                let mut rival_blocks = mine_plan(&mut rival, &rival_plan);
                rival_blocks.extend(mine_plan(&mut rival, &[BlockPlan { miner: 0, transfers: vec![] }]));
                for block in rival_blocks {
                    if let Ok(AddOutcome::TipChanged(change)) = common::add(&mut tree, block) {
                        pool.on_new_tip(tree.ledger(), &change.disconnected, &change.connected);
                    }
                }
                prop_assert_eq!(tree.tip_hash(), rival.tip_hash());
            }
            for tx in pool.transactions() {
                let account = tree.ledger().account(&tx.sender());
                prop_assert!(tx.nonce >= account.nonce, "a used nonce waits: {:?}", tx);
                let waiting: u128 = pool
                    .transactions()
                    .iter()
                    .filter(|other| other.from == tx.from)
                    .map(|other| u128::from(other.amount) + u128::from(other.fee))
                    .sum();
                prop_assert!(waiting <= u128::from(account.balance), "more waits than the sender has");
            }
            let chosen = pool.select(tree.ledger(), 1_000);
            let block = next_block(&tree, people[round % 4].address(), chosen.clone());
            let outcome = common::add(&mut tree, block);
            let Ok(AddOutcome::TipChanged(change)) = outcome else {
                return Err(TestCaseError::fail(format!("mempool block refused: {outcome:?}")));
            };
            pool.on_new_tip(tree.ledger(), &change.disconnected, &change.connected);
            for tx in &chosen {
                prop_assert!(!pool.contains(&tx.id()), "confirmed transactions leave the pool");
            }
            assert_supply(&tree);
        }
    }
}

/// One block of a random block tree: which earlier block it builds on (or genesis), who mines
/// it, the transfers it tries, and whether it also carries a transfer from an account that
/// never had coins (valid in form and signature, invalid against the ledger).
#[derive(Clone, Debug)]
struct TreeBlockPlan {
    parent: prop::sample::Index,
    step: BlockPlan,
    poisoned: bool,
}

fn arb_tree_plan() -> impl Strategy<Value = Vec<TreeBlockPlan>> {
    let block = (
        any::<prop::sample::Index>(),
        arb_plan(1..2),
        prop::bool::weighted(0.15),
    )
        .prop_map(|(parent, mut steps, poisoned)| TreeBlockPlan {
            parent,
            step: steps.remove(0),
            poisoned,
        });
    prop::collection::vec(block, 1..14)
}

proptest! {
    #![proptest_config(config(32))]

    /// Nodes that receive the same blocks in any order end on the same tip with the same
    /// ledger: the block with most work (here, height; ties to the lower hash) among those
    /// with no invalid ancestor, and exactly the ledger of applying its chain from genesis.
    #[test]
    fn any_arrival_order_gives_the_same_tip_and_ledger(
        plan in arb_tree_plan(),
        arrival in prop::collection::vec(any::<u32>(), 14),
    ) {
        let params = NetworkParams::test();
        let chain_id = BlockTree::new(params.clone()).chain_id();
        let unfunded = keypair(99);
        // Block i (1-based; 0 is genesis) with the indices of its ancestors, oldest first.
        let mut blocks: Vec<Block> = vec![];
        let mut paths: Vec<Vec<usize>> = vec![];
        let mut poisoned: Vec<bool> = vec![];
        for spec in &plan {
            let parent = spec.parent.index(blocks.len() + 1);
            let path: Vec<usize> = if parent == 0 { vec![] } else { paths[parent - 1].clone() };
            let branch_poisoned = path.iter().any(|&i| poisoned[i]);
            let block = if branch_poisoned {
                // No honest node builds on an invalid block: build the child by hand.
                common::child_of(&blocks[*path.last().unwrap()], keypair(1).address(), &params)
            } else {
                let chain: Vec<Block> = path.iter().map(|&i| blocks[i].clone()).collect();
                let mut builder = tree_with(&params, &chain);
                let mut block = mine_plan(&mut builder, std::slice::from_ref(&spec.step)).remove(0);
                if spec.poisoned {
                    block.transactions.push(Transaction::new_signed(
                        &unfunded, &chain_id, keypair(1).address(), 1, 0, 0,
                    ));
                    block.coinbase.amount = params.subsidy(block.header.height)
                        + block.total_fees().unwrap();
                    common::reseal(&mut block);
                }
                block
            };
            let mut own_path = path;
            own_path.push(blocks.len());
            paths.push(own_path);
            poisoned.push(spec.poisoned && !branch_poisoned);
            blocks.push(block);
        }

        // The expected tip, by the rule, from the blocks with no invalid ancestor.
        let valid: Vec<usize> = (0..blocks.len())
            .filter(|&i| !paths[i].iter().any(|&j| poisoned[j]))
            .collect();
        let best = valid.iter().copied().max_by_key(|&i| {
            (blocks[i].header.height, std::cmp::Reverse(blocks[i].hash()))
        });
        let expected = match best {
            Some(i) => tree_with(
                &params,
                &paths[i].iter().map(|&j| blocks[j].clone()).collect::<Vec<_>>(),
            ),
            None => BlockTree::new(params.clone()),
        };

        let now = blocks.iter().map(|b| b.header.timestamp_ms).max().unwrap();
        let in_order: Vec<usize> = (0..blocks.len()).collect();
        let mut shuffled = in_order.clone();
        shuffled.sort_by_key(|&i| arrival[i].wrapping_mul(2_654_435_761).rotate_left(i as u32));
        for order in [in_order, shuffled] {
            let mut tree = BlockTree::new(params.clone());
            for &i in &order {
                // Invalid blocks are refused; that is all a node can do with them.
                let _ = tree.add_block(blocks[i].clone(), now);
            }
            prop_assert_eq!(tree.tip_hash(), expected.tip_hash(), "arrival order {:?}", order);
            prop_assert_eq!(tree.ledger(), expected.ledger());
            assert_supply(&tree);
        }
    }
}
