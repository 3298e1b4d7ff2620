//! Transactions waiting for a block: checked against the tip's ledger, ordered by fee, bounded
//! with lowest-fee eviction, revalidated on every new tip.

use crate::block::Block;
use crate::hash::Hash;
use crate::keys::Address;
use crate::state::Ledger;
use crate::tx::Transaction;
use crate::validation::{check_transaction_fields, ValidationError};
use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap, HashMap};
use thiserror::Error;

/// At most this many transactions wait; 5,000 is five full blocks, enough for any classroom and
/// at 140 bytes each well under a megabyte.
pub const MAX_MEMPOOL_TXS: usize = 5_000;
/// A sender may queue transactions with nonces up to this far past its next nonce, so one
/// account cannot fill the pool with transactions that can never all confirm.
pub const MAX_PENDING_PER_SENDER: u64 = 64;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum MempoolError {
    #[error("already in the mempool")]
    AlreadyKnown,
    #[error("invalid transaction: {0}")]
    Invalid(ValidationError),
    #[error("nonce {found} was already used (the sender's next nonce is {expected})")]
    StaleNonce { expected: u64, found: u64 },
    #[error("nonce {found} is too far ahead of the sender's next nonce {expected}")]
    NonceTooFarAhead { expected: u64, found: u64 },
    #[error("the sender's balance {balance} does not cover {needed} for this and its pending transactions")]
    InsufficientBalance { balance: u64, needed: u64 },
    #[error("a transaction with this nonce and a fee of {existing_fee} is already waiting")]
    ReplacementFeeTooLow { existing_fee: u64 },
    #[error("the mempool is full and the fee {fee} is not above the lowest waiting fee {lowest}")]
    FeeTooLowForFullPool { fee: u64, lowest: u64 },
}

struct Pending {
    tx: Transaction,
    sequence: u64,
}

#[derive(Default)]
pub struct Mempool {
    txs: HashMap<Hash, Pending>,
    /// Lowest fee first (then newest first), for eviction.
    by_fee: BTreeSet<(u64, Reverse<u64>, Hash)>,
    by_sender: HashMap<Address, BTreeMap<u64, Hash>>,
    next_sequence: u64,
}

impl Mempool {
    pub fn new() -> Mempool {
        Mempool::default()
    }
    pub fn len(&self) -> usize {
        self.txs.len()
    }
    pub fn is_empty(&self) -> bool {
        self.txs.is_empty()
    }
    pub fn contains(&self, id: &Hash) -> bool {
        self.txs.contains_key(id)
    }
    pub fn get(&self, id: &Hash) -> Option<&Transaction> {
        self.txs.get(id).map(|pending| &pending.tx)
    }
    /// All waiting transactions, highest fee first.
    pub fn transactions(&self) -> Vec<Transaction> {
        self.by_fee
            .iter()
            .rev()
            .map(|(_, _, id)| self.txs[id].tx.clone())
            .collect()
    }

    /// Checks `tx` fully (signature included) against `ledger` and adds it. A transaction
    /// already in the pool is recognised by its id before its signature is checked.
    pub fn add(
        &mut self,
        tx: Transaction,
        ledger: &Ledger,
        chain_id: &Hash,
    ) -> Result<Hash, MempoolError> {
        check_transaction_fields(&tx, 0).map_err(MempoolError::Invalid)?;
        // A transaction we already hold was verified when it came in: a peer re-sending its
        // pool must cost us one hash per transaction, not a signature check (~45 µs).
        if self.txs.contains_key(&tx.id()) {
            return Err(MempoolError::AlreadyKnown);
        }
        if !tx.verify_signature(chain_id) {
            return Err(MempoolError::Invalid(ValidationError::InvalidSignature {
                index: 0,
            }));
        }
        self.add_verified(tx, ledger)
    }

    /// Adds a transaction whose fields and signature were already checked.
    fn add_verified(&mut self, tx: Transaction, ledger: &Ledger) -> Result<Hash, MempoolError> {
        let id = tx.id();
        if self.txs.contains_key(&id) {
            return Err(MempoolError::AlreadyKnown);
        }
        let sender = tx.sender();
        let account = ledger.account(&sender);
        if tx.nonce < account.nonce {
            return Err(MempoolError::StaleNonce {
                expected: account.nonce,
                found: tx.nonce,
            });
        }
        if tx.nonce >= account.nonce + MAX_PENDING_PER_SENDER {
            return Err(MempoolError::NonceTooFarAhead {
                expected: account.nonce,
                found: tx.nonce,
            });
        }
        let replaced = self
            .by_sender
            .get(&sender)
            .and_then(|queue| queue.get(&tx.nonce))
            .copied();
        if let Some(existing) = replaced {
            let existing_fee = self.txs[&existing].tx.fee;
            if tx.fee <= existing_fee {
                return Err(MempoolError::ReplacementFeeTooLow { existing_fee });
            }
        }
        let pending_cost: u128 = self
            .by_sender
            .get(&sender)
            .into_iter()
            .flat_map(|queue| queue.values())
            .filter(|id| Some(**id) != replaced)
            .map(|id| cost(&self.txs[id].tx))
            .sum();
        let needed = pending_cost + cost(&tx);
        if needed > account.balance as u128 {
            return Err(MempoolError::InsufficientBalance {
                balance: account.balance,
                needed: needed.min(u64::MAX as u128) as u64,
            });
        }
        if replaced.is_none() && self.txs.len() >= MAX_MEMPOOL_TXS {
            let &(lowest, _, lowest_id) = self.by_fee.first().expect("a full pool is not empty");
            if tx.fee <= lowest {
                return Err(MempoolError::FeeTooLowForFullPool {
                    fee: tx.fee,
                    lowest,
                });
            }
            let evicted = &self.txs[&lowest_id].tx;
            if evicted.sender() == sender && evicted.nonce < tx.nonce {
                // Room would come from a transaction this one waits on.
                return Err(MempoolError::FeeTooLowForFullPool {
                    fee: tx.fee,
                    lowest,
                });
            }
            self.remove_with_later_nonces(&lowest_id);
        }
        if let Some(existing) = replaced {
            self.remove(&existing);
        }
        let sequence = self.next_sequence;
        self.next_sequence += 1;
        self.by_fee.insert((tx.fee, Reverse(sequence), id));
        self.by_sender
            .entry(sender)
            .or_default()
            .insert(tx.nonce, id);
        self.txs.insert(id, Pending { tx, sequence });
        Ok(id)
    }

    pub fn remove(&mut self, id: &Hash) -> Option<Transaction> {
        let pending = self.txs.remove(id)?;
        self.by_fee
            .remove(&(pending.tx.fee, Reverse(pending.sequence), *id));
        let sender = pending.tx.sender();
        if let Some(queue) = self.by_sender.get_mut(&sender) {
            queue.remove(&pending.tx.nonce);
            if queue.is_empty() {
                self.by_sender.remove(&sender);
            }
        }
        Some(pending.tx)
    }

    /// Evicts `id` and the same sender's transactions with later nonces: without it they could
    /// never confirm, and would only hold room in the pool.
    fn remove_with_later_nonces(&mut self, id: &Hash) {
        let Some(pending) = self.txs.get(id) else {
            return;
        };
        let (sender, nonce) = (pending.tx.sender(), pending.tx.nonce);
        let doomed: Vec<Hash> = self
            .by_sender
            .get(&sender)
            .map(|queue| queue.range(nonce..).map(|(_, id)| *id).collect())
            .unwrap_or_default();
        for id in doomed {
            self.remove(&id);
        }
    }

    /// Up to `limit` transactions the ledger accepts in this order: each sender's nonces in
    /// sequence, the highest fee among the senders' next transactions first.
    pub fn select(&self, ledger: &Ledger, limit: usize) -> Vec<Transaction> {
        let mut balances: HashMap<Address, u64> = HashMap::new();
        let mut next_nonce: HashMap<Address, u64> = HashMap::new();
        let mut ready = BinaryHeap::new();
        for (sender, queue) in &self.by_sender {
            let nonce = ledger.account(sender).nonce;
            if let Some(id) = queue.get(&nonce) {
                let pending = &self.txs[id];
                ready.push((pending.tx.fee, Reverse(pending.sequence), *id));
            }
        }
        let mut chosen = Vec::new();
        while let Some((_, _, id)) = ready.pop() {
            if chosen.len() >= limit {
                break;
            }
            let tx = &self.txs[&id].tx;
            let sender = tx.sender();
            let balance = *balances
                .entry(sender)
                .or_insert_with(|| ledger.balance(&sender));
            let Some(needed) = tx.amount.checked_add(tx.fee) else {
                continue;
            };
            if needed > balance {
                continue;
            }
            balances.insert(sender, balance - needed);
            let recipient = balances
                .entry(tx.to)
                .or_insert_with(|| ledger.balance(&tx.to));
            *recipient = recipient.saturating_add(tx.amount);
            let nonce = tx.nonce + 1;
            next_nonce.insert(sender, nonce);
            chosen.push(tx.clone());
            if let Some(next_id) = self
                .by_sender
                .get(&sender)
                .and_then(|queue| queue.get(&nonce))
            {
                let next = &self.txs[next_id];
                ready.push((next.tx.fee, Reverse(next.sequence), *next_id));
            }
        }
        chosen
    }

    /// Brings the pool up to date after the best chain moved: the transactions of
    /// `disconnected` blocks come back, those now confirmed or no longer valid leave.
    /// Returns the transactions dropped for another reason than being confirmed.
    pub fn on_new_tip(
        &mut self,
        ledger: &Ledger,
        disconnected: &[std::sync::Arc<Block>],
        connected: &[std::sync::Arc<Block>],
    ) -> Vec<(Transaction, MempoolError)> {
        let confirmed: std::collections::HashSet<Hash> = connected
            .iter()
            .flat_map(|block| block.transactions.iter().map(Transaction::id))
            .collect();
        let mut candidates: Vec<Transaction> =
            self.txs.drain().map(|(_, pending)| pending.tx).collect();
        self.by_fee.clear();
        self.by_sender.clear();
        candidates.extend(
            disconnected
                .iter()
                .flat_map(|block| block.transactions.iter().cloned()),
        );
        // Re-add each sender's transactions in nonce order, so a later nonce finds its
        // predecessors. Signatures were checked when the transactions first arrived.
        candidates.sort_by_key(|tx| (tx.from, tx.nonce, Reverse(tx.fee), tx.id()));
        let mut dropped = Vec::new();
        for tx in candidates {
            if confirmed.contains(&tx.id()) {
                continue;
            }
            match self.add_verified(tx.clone(), ledger) {
                Ok(_) | Err(MempoolError::AlreadyKnown) => {}
                Err(error) => dropped.push((tx, error)),
            }
        }
        dropped
    }
}

fn cost(tx: &Transaction) -> u128 {
    tx.amount as u128 + tx.fee as u128
}
