//! Every consensus rule a block or transaction must meet, each broken rule its own
//! [`ValidationError`] variant. This is the one place a block is checked.
//!
//! Checking is split in two, as a chain with side branches needs: [`check_block`] holds the
//! rules that depend only on the block and its ancestors' headers (proof of work, target,
//! timestamps, sizes, commitment, signatures, coinbase amount), and
//! [`crate::state::Ledger::apply_block`] holds the rules that depend on account state
//! (nonces, balances), checked when the block joins the best chain.

use crate::block::{Block, BlockHeader, BLOCK_VERSION};
use crate::hash::Hash;
use crate::mining::meets_target;
use crate::params::NetworkParams;
use crate::tx::Transaction;
use crate::work::{Target, U256};
use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use thiserror::Error;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ValidationError {
    #[error("unsupported block version {found}")]
    UnsupportedVersion { found: u32 },
    #[error("height {found} does not follow the parent (expected {expected})")]
    WrongHeight { expected: u64, found: u64 },
    #[error("previous hash {found} is not the parent's hash {expected}")]
    WrongPrevHash { expected: Hash, found: Hash },
    #[error("target {found:08x} is not the one the difficulty rule demands ({expected:08x})")]
    WrongTarget { expected: u32, found: u32 },
    #[error("block hash does not meet its target")]
    InsufficientProofOfWork,
    #[error("timestamp {found} is not after the median of recent blocks ({median})")]
    TimestampTooOld { median: u64, found: u64 },
    #[error("timestamp {found} is more than the allowed margin ahead of the clock ({limit})")]
    TimestampTooFarAhead { limit: u64, found: u64 },
    #[error("{count} transactions exceed the limit of {limit}")]
    TooManyTransactions { count: usize, limit: usize },
    #[error("{size} bytes exceed the block limit of {limit}")]
    BlockTooLarge { size: usize, limit: usize },
    #[error("the transaction root does not match the transactions")]
    TxRootMismatch,
    #[error("coinbase height {found} is not the block height {expected}")]
    CoinbaseHeightMismatch { expected: u64, found: u64 },
    #[error("coinbase pays {found}, but subsidy plus fees is {expected}")]
    WrongCoinbaseAmount { expected: u64, found: u64 },
    #[error("the fees of the block overflow")]
    FeeOverflow,
    #[error("transaction {index} appears twice in the block")]
    DuplicateTransaction { index: usize },
    #[error("transaction {index} sends zero coins")]
    ZeroAmount { index: usize },
    #[error("transaction {index} has an invalid signature")]
    InvalidSignature { index: usize },
    #[error("transaction {index} has nonce {found}, the sender's next nonce is {expected}")]
    BadNonce {
        index: usize,
        expected: u64,
        found: u64,
    },
    #[error("transaction {index} needs {needed} but the sender has {balance}")]
    InsufficientBalance {
        index: usize,
        balance: u64,
        needed: u64,
    },
    #[error("transaction {index}: amount plus fee overflows")]
    AmountOverflow { index: usize },
    #[error("a balance would overflow")]
    BalanceOverflow,
}

impl ValidationError {
    /// Whether the error proves the block (by its hash) can never be valid. A wrong commitment
    /// does not: someone may have altered the body of a good header, so we must not remember
    /// the header's hash as bad.
    pub fn marks_hash_invalid(&self) -> bool {
        !matches!(
            self,
            ValidationError::TxRootMismatch
                | ValidationError::TimestampTooFarAhead { .. }
                | ValidationError::BlockTooLarge { .. }
                | ValidationError::TooManyTransactions { .. }
        )
    }
}

/// What a block is checked against: its parent and what the parent's ancestors determine.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParentContext {
    pub hash: Hash,
    pub header: BlockHeader,
    /// Median timestamp of the parent and up to `median_time_span - 1` of its ancestors.
    pub median_time_past: u64,
    /// The target a child of this parent must carry.
    pub next_target: Target,
}

/// A block that passed [`check_block`]. Only validation makes one, so a block tree that holds
/// only `CheckedBlock`s holds only blocks whose context rules were checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckedBlock {
    block: Arc<Block>,
    hash: Hash,
}

impl CheckedBlock {
    pub fn block(&self) -> &Arc<Block> {
        &self.block
    }
    pub fn hash(&self) -> Hash {
        self.hash
    }
    pub fn header(&self) -> &BlockHeader {
        &self.block.header
    }

    /// Trusts the built-in genesis block; it is never received from a peer.
    pub(crate) fn genesis(block: Block) -> CheckedBlock {
        let hash = block.hash();
        CheckedBlock {
            block: Arc::new(block),
            hash,
        }
    }
}

/// The median of `timestamps` (the caller passes at most `median_time_span` of them).
pub fn median(timestamps: &mut [u64]) -> u64 {
    timestamps.sort_unstable();
    timestamps.get(timestamps.len() / 2).copied().unwrap_or(0)
}

/// The target of the child of `recent`'s last header (LWMA: a linearly weighted moving average
/// of solve times, after zawy's LWMA-1, with solve times measured between *effective times*
/// that one clock cannot move far: block version 3).
///
/// `recent` holds the parent and its ancestors, oldest first, contiguous: at least
/// [`NetworkParams::difficulty_headers`] of them, or all back to genesis. Genesis never counts
/// (its timestamp is fixed long before anyone mines). The window's blocks `b_0 … b_n`, oldest
/// first, are the parent and up to `N` ancestors, none below height `M`; if `n = 0` (the child is
/// at height `M + 1` or below) the target is the initial one. Otherwise:
///
/// - the *effective time* of `b_j` is the median of its own timestamp and those of its
///   `M - 1` ancestors (`M = effective_time_span`), and never earlier than
///   `b_{j-1}`'s: `e_j = max(e_{j-1}, median)`. One lying timestamp, ahead or behind, moves a
///   median by one place among honest ones, not by what it claims; a block stamped behind
///   counts as found at once and lends no later block a longer solve time;
/// - `s_j = min(e_j - e_{j-1}, F·T)`, weight `j`. With `k = ⌊T·n(n+1)/2 · 15/16⌋`,
///   `W = max(sum of j·s_j, k / H, 1)` and the average target of the `n` blocks
///   `A = floor(sum of targets / n)`, the new target is `floor(A·W / k)`, at least 1 and at most
///   `max_target`, in its compact form (`docs/protocol.md`, "Difficulty", gives the integer order
///   of operations; it never overflows).
pub fn next_target(params: &NetworkParams, recent: &[BlockHeader]) -> Target {
    let window = params.difficulty_window.max(1) as usize;
    // Genesis carries a fixed timestamp from long before anyone mines: the time from it to
    // block 1 is no solve time, and it is no miner's clock.
    let first_mined = recent
        .iter()
        .position(|header| header.height > 0)
        .unwrap_or(recent.len());
    let mined = &recent[first_mined..];
    debug_assert!(
        first_mined > 0 || recent.len() >= params.difficulty_headers(),
        "next_target reads difficulty_headers() headers, or all back to genesis"
    );
    let span = params.effective_time_span.max(1);
    // A block has an effective time once it has `M - 1` mined ancestors: the window starts there
    // at the earliest (block `M` when the chain is young).
    let start = (span - 1).max(mined.len().saturating_sub(window + 1));
    let solved = mined.len().saturating_sub(start + 1);
    if solved == 0 {
        return params.initial_target;
    }
    let n = solved as u64;
    let interval = params.target_block_ms.max(1);
    let limit = interval.saturating_mul(params.solve_time_limit_factor);

    let mut previous: Option<u64> = None;
    let mut weighted: u64 = 0;
    for (j, index) in (start..mined.len()).enumerate() {
        let mut times: Vec<u64> = mined[index + 1 - span..=index]
            .iter()
            .map(|header| header.timestamp_ms)
            .collect();
        let median_time = median(&mut times);
        let effective = previous.map_or(median_time, |before| before.max(median_time));
        if let Some(before) = previous {
            let solve = (effective - before).min(limit);
            weighted = weighted.saturating_add((j as u64).saturating_mul(solve));
        }
        previous = Some(effective);
    }
    // `k`: the weighted sum when every counted solve time is 15/16 T, what the clamp and the
    // effective times' lag leave of a real miner's solve times of mean T (measured by the pace
    // test, N = 20): with `k` at T, blocks would come about 7 % slower than T.
    let steady = interval * (n * (n + 1) / 2) * 15 / 16;
    let floor = steady / params.max_hardening_factor.max(1);
    let weighted = U256::from(weighted.max(floor).max(1));
    let steady = U256::from(steady);

    // The exact floor of the mean without overflowing a sum of large targets:
    // sum(t_j) / n = sum(t_j / n) + (sum(t_j mod n)) / n, every division rounding down.
    let count = U256::from(n);
    let (quotients, remainders) = mined[start + 1..]
        .iter()
        .map(|header| header.target.expand().unwrap_or(params.max_target))
        .fold((U256::zero(), U256::zero()), |(q, r), target| {
            (q + target / count, r + target % count)
        });
    let average = quotients + remainders / count;

    // floor(A * W / k) = (A / k) * W + ((A mod k) * W) / k, exactly, without a 512-bit product.
    let scaled = (average / steady)
        .checked_mul(weighted)
        .and_then(|high| high.checked_add((average % steady) * weighted / steady));
    let new = match scaled {
        Some(value) if value <= params.max_target => value.max(U256::one()),
        _ => params.max_target,
    };
    Target::from_u256(new)
}

/// Checks every rule of `block` that does not need account state.
pub fn check_block(
    block: Block,
    parent: &ParentContext,
    params: &NetworkParams,
    chain_id: &Hash,
    now_ms: u64,
) -> Result<CheckedBlock, ValidationError> {
    let header = &block.header;
    if header.version != BLOCK_VERSION {
        return Err(ValidationError::UnsupportedVersion {
            found: header.version,
        });
    }
    if header.prev_hash != parent.hash {
        return Err(ValidationError::WrongPrevHash {
            expected: parent.hash,
            found: header.prev_hash,
        });
    }
    let expected_height = parent.header.height + 1;
    if header.height != expected_height {
        return Err(ValidationError::WrongHeight {
            expected: expected_height,
            found: header.height,
        });
    }
    if header.target != parent.next_target {
        return Err(ValidationError::WrongTarget {
            expected: parent.next_target.0,
            found: header.target.0,
        });
    }
    if !meets_target(header) {
        return Err(ValidationError::InsufficientProofOfWork);
    }
    if header.timestamp_ms <= parent.median_time_past {
        return Err(ValidationError::TimestampTooOld {
            median: parent.median_time_past,
            found: header.timestamp_ms,
        });
    }
    let limit = now_ms.saturating_add(params.max_future_ms);
    if header.timestamp_ms > limit {
        return Err(ValidationError::TimestampTooFarAhead {
            limit,
            found: header.timestamp_ms,
        });
    }
    check_body(&block, params, chain_id)?;
    let hash = block.hash();
    Ok(CheckedBlock {
        block: Arc::new(block),
        hash,
    })
}

/// The body rules: sizes, commitment, coinbase, duplicates, amounts, signatures.
fn check_body(
    block: &Block,
    params: &NetworkParams,
    chain_id: &Hash,
) -> Result<(), ValidationError> {
    let count = block.transactions.len();
    if count > params.max_block_txs {
        return Err(ValidationError::TooManyTransactions {
            count,
            limit: params.max_block_txs,
        });
    }
    let size = block.encoded_len();
    if size > params.max_block_bytes {
        return Err(ValidationError::BlockTooLarge {
            size,
            limit: params.max_block_bytes,
        });
    }
    if block.compute_tx_root() != block.header.tx_root {
        return Err(ValidationError::TxRootMismatch);
    }
    if block.coinbase.height != block.header.height {
        return Err(ValidationError::CoinbaseHeightMismatch {
            expected: block.header.height,
            found: block.coinbase.height,
        });
    }
    // Rule 12 over the whole block, then rule 13 over the whole block, as `docs/protocol.md`
    // numbers them: every rule is one pass in block order, so `[zero, x, x]` is a duplicate
    // (at index 2), not a zero amount, whatever an implementation's loop structure.
    let mut seen = HashSet::with_capacity(count);
    if let Some(index) = block
        .transactions
        .iter()
        .position(|tx| !seen.insert(tx.id()))
    {
        return Err(ValidationError::DuplicateTransaction { index });
    }
    for (index, tx) in block.transactions.iter().enumerate() {
        check_transaction_fields(tx, index)?;
    }
    let fees = block.total_fees().ok_or(ValidationError::FeeOverflow)?;
    let expected = params
        .subsidy(block.header.height)
        .checked_add(fees)
        .ok_or(ValidationError::FeeOverflow)?;
    if block.coinbase.amount != expected {
        return Err(ValidationError::WrongCoinbaseAmount {
            expected,
            found: block.coinbase.amount,
        });
    }
    verify_signatures(&block.transactions, chain_id)
}

/// Rule 13 for one transaction, which needs no state: a non-zero amount (`ZeroAmount`), then
/// an amount plus fee that fits in a u64 (`AmountOverflow`).
pub fn check_transaction_fields(tx: &Transaction, index: usize) -> Result<(), ValidationError> {
    if tx.amount == 0 {
        return Err(ValidationError::ZeroAmount { index });
    }
    if tx.amount.checked_add(tx.fee).is_none() {
        return Err(ValidationError::AmountOverflow { index });
    }
    Ok(())
}

/// Verifies every signature on its own with RFC 8032 strict verification.
///
/// Batch verification would be about 3x faster, but ed25519-dalek's batch equation does not agree
/// with single verification on signatures with a small-order component: such a signature could be
/// valid in one block and invalid in another, depending on its neighbours. Validity must not
/// depend on the rest of the block, so consensus verifies one by one, exactly as the mempool does.
///
/// Natively the checks of a large block may be spread over several threads
/// ([`set_verification_threads`]); each signature is still checked on its own, and the error names
/// the first invalid one, exactly as on one thread.
pub fn verify_signatures(txs: &[Transaction], chain_id: &Hash) -> Result<(), ValidationError> {
    match first_invalid_signature(txs, chain_id) {
        Some(index) => Err(ValidationError::InvalidSignature { index }),
        None => Ok(()),
    }
}

/// Threads that verify a block's signatures; 1 (the default) keeps everything on the caller's
/// thread. `shared` starts no threads unless its driver asks: the native node sets this to its
/// core count, the browser (no threads in wasm32) and the simulator leave it at 1.
static VERIFICATION_THREADS: AtomicUsize = AtomicUsize::new(1);
/// Blocks with fewer transactions are verified on the caller's thread: starting a thread costs
/// about as much as a few verifications.
pub const PARALLEL_VERIFICATION_MIN_TXS: usize = 8;

/// Sets how many threads [`verify_signatures`] may use (at least 1; ignored on wasm32).
pub fn set_verification_threads(threads: usize) {
    VERIFICATION_THREADS.store(threads.clamp(1, 64), Ordering::Relaxed);
}

fn first_invalid_in(txs: &[Transaction], chain_id: &Hash, offset: usize) -> Option<usize> {
    txs.iter()
        .position(|tx| !tx.verify_signature(chain_id))
        .map(|index| offset + index)
}

#[cfg(target_arch = "wasm32")]
fn first_invalid_signature(txs: &[Transaction], chain_id: &Hash) -> Option<usize> {
    first_invalid_in(txs, chain_id, 0)
}

#[cfg(not(target_arch = "wasm32"))]
fn first_invalid_signature(txs: &[Transaction], chain_id: &Hash) -> Option<usize> {
    let threads = VERIFICATION_THREADS.load(Ordering::Relaxed);
    if threads < 2 || txs.len() < PARALLEL_VERIFICATION_MIN_TXS {
        return first_invalid_in(txs, chain_id, 0);
    }
    let chunk = txs.len().div_ceil(threads);
    std::thread::scope(|scope| {
        let others: Vec<_> = txs
            .chunks(chunk)
            .enumerate()
            .skip(1)
            .map(|(part, slice)| {
                scope.spawn(move || first_invalid_in(slice, chain_id, part * chunk))
            })
            .collect();
        let mine = first_invalid_in(&txs[..chunk], chain_id, 0);
        let theirs = others.into_iter().map(|handle| {
            handle
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
        });
        // The smallest invalid index over all parts: what one thread would have reported.
        std::iter::once(mine).chain(theirs).flatten().min()
    })
}

/// The context rules of [`check_block`], in the order it applies them (rules 1–15 of
/// `docs/protocol.md`), so a view can list each one with its result.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Rule {
    Version,
    PrevHash,
    Height,
    Target,
    ProofOfWork,
    TimestampAfterMedian,
    TimestampNotAhead,
    TransactionCount,
    BlockSize,
    TxRoot,
    CoinbaseHeight,
    UniqueTransactions,
    TransactionAmounts,
    CoinbaseAmount,
    Signatures,
}

impl Rule {
    pub const ALL: [Rule; 15] = [
        Rule::Version,
        Rule::PrevHash,
        Rule::Height,
        Rule::Target,
        Rule::ProofOfWork,
        Rule::TimestampAfterMedian,
        Rule::TimestampNotAhead,
        Rule::TransactionCount,
        Rule::BlockSize,
        Rule::TxRoot,
        Rule::CoinbaseHeight,
        Rule::UniqueTransactions,
        Rule::TransactionAmounts,
        Rule::CoinbaseAmount,
        Rule::Signatures,
    ];
}

impl ValidationError {
    /// The context rule this error breaks; `None` for the ledger rules (16–18).
    pub fn rule(&self) -> Option<Rule> {
        use ValidationError as E;
        Some(match self {
            E::UnsupportedVersion { .. } => Rule::Version,
            E::WrongPrevHash { .. } => Rule::PrevHash,
            E::WrongHeight { .. } => Rule::Height,
            E::WrongTarget { .. } => Rule::Target,
            E::InsufficientProofOfWork => Rule::ProofOfWork,
            E::TimestampTooOld { .. } => Rule::TimestampAfterMedian,
            E::TimestampTooFarAhead { .. } => Rule::TimestampNotAhead,
            E::TooManyTransactions { .. } => Rule::TransactionCount,
            E::BlockTooLarge { .. } => Rule::BlockSize,
            E::TxRootMismatch => Rule::TxRoot,
            E::CoinbaseHeightMismatch { .. } => Rule::CoinbaseHeight,
            E::DuplicateTransaction { .. } => Rule::UniqueTransactions,
            E::ZeroAmount { .. } | E::AmountOverflow { .. } => Rule::TransactionAmounts,
            E::WrongCoinbaseAmount { .. } | E::FeeOverflow => Rule::CoinbaseAmount,
            E::InvalidSignature { .. } => Rule::Signatures,
            E::BadNonce { .. } | E::InsufficientBalance { .. } | E::BalanceOverflow => return None,
        })
    }
}

/// What [`check_block_rules`] found for one rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RuleOutcome {
    Passed,
    Failed(ValidationError),
    /// `check_block` stopped at an earlier rule (or, for duplicates, at an amount in the same
    /// pass over the transactions) before it checked this one in full.
    NotReached,
}

/// Every context rule with its result for `block`, for views. It runs [`check_block`] itself,
/// so it cannot disagree with it: the rules before the one that failed passed, the rest were
/// not reached.
pub fn check_block_rules(
    block: &Block,
    parent: &ParentContext,
    params: &NetworkParams,
    chain_id: &Hash,
    now_ms: u64,
) -> Vec<(Rule, RuleOutcome)> {
    let error = check_block(block.clone(), parent, params, chain_id, now_ms).err();
    let failed = error.as_ref().and_then(ValidationError::rule);
    let failed_at = failed.and_then(|rule| Rule::ALL.iter().position(|r| *r == rule));
    Rule::ALL
        .iter()
        .enumerate()
        .map(|(at, &rule)| {
            let outcome = match (failed_at, &error) {
                (Some(stop), Some(error)) if at == stop => RuleOutcome::Failed(error.clone()),
                (Some(stop), _) if at > stop => RuleOutcome::NotReached,
                // Duplicates and amounts are checked in one pass over the transactions.
                (_, _)
                    if rule == Rule::UniqueTransactions
                        && failed == Some(Rule::TransactionAmounts) =>
                {
                    RuleOutcome::NotReached
                }
                _ => RuleOutcome::Passed,
            };
            (rule, outcome)
        })
        .collect()
}
