//! Helpers shared by the integration tests: fixed keys, funded ledgers, and valid blocks built
//! the way a node builds them, with [`BlockTree::block_template`] and the real mining loop.
//!
//! Every test file includes this module with `mod common;`, and each uses only part of it,
//! hence the `dead_code` allowance.

#![allow(dead_code)]

pub mod rng;
pub mod vectors;

#[allow(unused_imports)] // not every test crate draws random numbers
pub use rng::Rng;

use shared::block::{Block, BlockHeader, Coinbase, BLOCK_VERSION};
use shared::chain::{AddOutcome, BlockTree, ChainError};
use shared::hash::Hash;
use shared::keys::{Address, Keypair};
use shared::mining::{meets_target, mine, MiningOutcome};
use shared::params::NetworkParams;
use shared::state::Ledger;
use shared::tx::Transaction;
use shared::work::Target;

/// A fixed key per tag, so failures are reproducible and addresses are stable across runs.
pub fn keypair(tag: u32) -> Keypair {
    let mut seed = [0x5a; 32];
    seed[..4].copy_from_slice(&tag.to_be_bytes());
    Keypair::from_seed(seed)
}

pub fn alice() -> Keypair {
    keypair(1)
}
pub fn bob() -> Keypair {
    keypair(2)
}
pub fn carol() -> Keypair {
    keypair(3)
}
pub fn dave() -> Keypair {
    keypair(4)
}

/// Sets the first nonce (counting from 0) that meets the header's own target.
pub fn seal(block: &mut Block) {
    block.header.nonce = find_nonce(&block.header);
}

/// Recomputes the transaction root after a change to the body, then seals.
pub fn reseal(block: &mut Block) {
    block.header.tx_root = block.compute_tx_root();
    seal(block);
}

pub fn find_nonce(header: &BlockHeader) -> u64 {
    match mine(header, 0, u64::MAX) {
        MiningOutcome::Found { nonce, .. } => nonce,
        other => panic!("mining {header:?} gave {other:?}"),
    }
}

/// Sets the first nonce whose hash does NOT meet the target, for the proof-of-work rule.
pub fn unseal(block: &mut Block) {
    block.header.nonce = (0..)
        .find(|&nonce| {
            let mut header = block.header;
            header.nonce = nonce;
            !meets_target(&header)
        })
        .expect("some nonce misses a target easier than 2^256");
}

/// A mined block on `tree`'s tip, `spacing_ms` after the tip's timestamp (the template moves it
/// past the median time if needed).
pub fn next_block_spaced(
    tree: &BlockTree,
    miner: Address,
    txs: Vec<Transaction>,
    spacing_ms: u64,
) -> Block {
    let now = tree.tip_header().timestamp_ms + spacing_ms;
    let mut block = tree.block_template(miner, txs, now);
    seal(&mut block);
    block
}

/// A mined block on `tree`'s tip, one target interval after the tip, so the difficulty rule keeps
/// the target as it is (on the test network: at its easiest).
pub fn next_block(tree: &BlockTree, miner: Address, txs: Vec<Transaction>) -> Block {
    let spacing = tree.params().target_block_ms;
    next_block_spaced(tree, miner, txs, spacing)
}

/// A mined empty child of `parent`, built by hand for blocks no honest tree would build on (an
/// unknown or invalid parent). It carries the parent's target, which is the one the difficulty rule
/// demands while blocks come one target interval apart at the easiest target (the test network).
pub fn child_of(parent: &Block, miner: Address, params: &NetworkParams) -> Block {
    let height = parent.header.height + 1;
    let mut block = Block {
        header: BlockHeader {
            version: BLOCK_VERSION,
            height,
            prev_hash: parent.hash(),
            tx_root: Hash::ZERO,
            timestamp_ms: parent.header.timestamp_ms + params.target_block_ms,
            target: parent.header.target,
            nonce: 0,
        },
        coinbase: Coinbase {
            height,
            to: miner,
            amount: params.subsidy(height),
        },
        transactions: Vec::new(),
    };
    reseal(&mut block);
    block
}

/// Adds a block as a node would when it arrives: the local clock reads its own timestamp.
pub fn add(tree: &mut BlockTree, block: Block) -> Result<AddOutcome, ChainError> {
    let now = block.header.timestamp_ms;
    tree.add_block(block, now)
}

/// Adds a block that must join the best chain (as its tip, or below orphans it connects).
pub fn add_tip(tree: &mut BlockTree, block: Block) {
    let hash = block.hash();
    match add(tree, block) {
        Ok(AddOutcome::TipChanged(_)) => assert!(tree.is_active(&hash), "{hash:?} is active"),
        other => panic!("block {hash:?} did not join the best chain: {other:?}"),
    }
}

/// Mines `count` empty blocks paying `miner` onto `tree` and returns them in order.
pub fn extend(tree: &mut BlockTree, miner: Address, count: usize) -> Vec<Block> {
    extend_spaced(tree, miner, count, tree.params().target_block_ms)
}

pub fn extend_spaced(
    tree: &mut BlockTree,
    miner: Address,
    count: usize,
    spacing_ms: u64,
) -> Vec<Block> {
    (0..count)
        .map(|_| {
            let block = next_block_spaced(tree, miner, Vec::new(), spacing_ms);
            add_tip(tree, block.clone());
            block
        })
        .collect()
}

/// A fresh tree that has accepted `blocks`, each becoming the tip: a second node that shares a
/// chain prefix, from which a competing branch can be mined.
pub fn tree_with(params: &NetworkParams, blocks: &[Block]) -> BlockTree {
    let mut tree = BlockTree::new(params.clone());
    for block in blocks {
        add_tip(&mut tree, block.clone());
    }
    tree
}

/// A transfer signed for `chain_id`.
pub fn pay(
    from: &Keypair,
    chain_id: &Hash,
    to: &Keypair,
    amount: u64,
    fee: u64,
    nonce: u64,
) -> Transaction {
    Transaction::new_signed(from, chain_id, to.address(), amount, fee, nonce)
}

/// A ledger in which each of `accounts` holds the given balance, as if a block had paid it.
/// The ledger does not check coinbase amounts (validation does), which lets mempool tests start
/// from any state without mining.
pub fn funded_ledger(accounts: &[(Address, u64)]) -> Ledger {
    let mut ledger = Ledger::default();
    for (height, (address, balance)) in accounts.iter().enumerate() {
        let block = Block {
            header: BlockHeader {
                version: BLOCK_VERSION,
                height: height as u64 + 1,
                prev_hash: Hash::ZERO,
                tx_root: Hash::ZERO,
                timestamp_ms: 0,
                target: Target(0),
                nonce: 0,
            },
            coinbase: Coinbase {
                height: height as u64 + 1,
                to: *address,
                amount: *balance,
            },
            transactions: Vec::new(),
        };
        ledger
            .apply_block(&block, *balance)
            .expect("funding a fresh account cannot fail");
    }
    ledger
}

/// The coins the subsidy rule creates in blocks `1..=height`.
pub fn subsidies_up_to(params: &NetworkParams, height: u64) -> u64 {
    (1..=height).map(|h| params.subsidy(h)).sum()
}

/// Asserts the supply invariant: the balances add up to what was issued, and that is exactly
/// the subsidies of the best chain.
pub fn assert_supply(tree: &BlockTree) {
    let ledger = tree.ledger();
    let expected = subsidies_up_to(tree.params(), tree.tip_height());
    assert_eq!(ledger.issued(), expected, "issued vs subsidies");
    assert_eq!(
        ledger.total_balances(),
        u128::from(expected),
        "balances vs issued"
    );
}
