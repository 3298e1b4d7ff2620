//! Our own transactions: their nonces, their fate (pending, confirmed, reversed, dropped), the
//! outputs that persist them until they are settled, and their re-announcement until they
//! confirm; and the payments to us we have seen, remembered with the most confirmations each
//! reached, so a payment reversed by a reorg shows as reversed instead of vanishing.

use super::output::{NodeEvent, Output};
use super::Node;
use crate::chain::TipChange;
use crate::hash::Hash;
use crate::keys::Address;
use crate::mempool::MempoolError;
use crate::protocol::message::{NodeMessage, MAX_TXS_PER_MESSAGE};
use crate::tx::Transaction;
use std::collections::{HashMap, HashSet, VecDeque};
use thiserror::Error;

/// Our own sent transactions whose fate we remember for the wallet view.
pub const MAX_TRACKED_OWN_TXS: usize = 500;
/// A confirmed transaction of ours leaves storage once this many blocks (its own included) are
/// on top of it: a reorg deeper than that is not expected outside a lesson, and if one happens
/// the transaction comes back from the disconnected block into the pool anyway.
pub const CONFIRMATIONS_TO_FORGET: u64 = 6;
/// Our pending transactions are announced again this often until they confirm, so a payment
/// made while cut off reaches the others once we are back (and a peer that missed it gets it).
pub const OWN_TX_REANNOUNCE_MS: u64 = 30_000;
/// Payments to us that we remember (seen in our pool or in a block of our best chain), newest
/// kept: like [`MAX_TRACKED_OWN_TXS`], more than a lesson makes. A peer can only add to it with
/// valid signed payments to us, and the oldest goes first.
pub const MAX_TRACKED_INCOMING: usize = 500;

/// The state of one of our own transactions, for the wallet view.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OwnTxState {
    Pending,
    Confirmed {
        height: u64,
        block: Hash,
    },
    /// Its block left the best chain and another transaction with its nonce is confirmed
    /// instead (a double spend): it can never confirm again. `confirmations` is the most it had.
    Reversed {
        confirmations: u64,
    },
    Dropped {
        reason: String,
    },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OwnTx {
    pub tx: Transaction,
    pub id: Hash,
    pub state: OwnTxState,
    /// The most confirmations it ever had (kept when its block leaves the best chain).
    pub max_confirmations: u64,
    /// Kept in the driver's storage (a `StoreTransaction` went out and no `DeleteTransaction`).
    pub(crate) stored: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SendError {
    #[error("the amount must be more than zero")]
    ZeroAmount,
    #[error(transparent)]
    Rejected(#[from] MempoolError),
}

/// A payment to us that we have seen, for the wallet's "received" list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IncomingTx {
    pub tx: Transaction,
    pub id: Hash,
    /// The block of our best chain that holds it, as (height, hash), when we last saw it there.
    pub block: Option<(u64, Hash)>,
    /// The most confirmations it ever had.
    pub max_confirmations: u64,
}

/// Our transactions, oldest first.
#[derive(Default)]
pub(crate) struct Wallet {
    pub(crate) own: VecDeque<OwnTx>,
    /// Payments to us, oldest first, at most [`MAX_TRACKED_INCOMING`].
    pub(crate) incoming: VecDeque<IncomingTx>,
    pub(crate) next_announce_ms: Option<u64>,
}

impl Wallet {
    fn track(&mut self, own: OwnTx, outputs: &mut Vec<Output>) {
        if self.own.len() >= MAX_TRACKED_OWN_TXS {
            if let Some(oldest) = self.own.pop_front() {
                if oldest.stored {
                    outputs.push(Output::DeleteTransaction(oldest.id));
                }
            }
        }
        self.own.push_back(own);
    }
    /// Remembers a payment to us (or where it is now, if known).
    pub(crate) fn note_incoming(&mut self, tx: &Transaction, block: Option<(u64, Hash)>) {
        let id = tx.id();
        if let Some(known) = self.incoming.iter_mut().find(|known| known.id == id) {
            if block.is_some() {
                known.block = block;
            }
            return;
        }
        if self.incoming.len() >= MAX_TRACKED_INCOMING {
            self.incoming.pop_front();
        }
        self.incoming.push_back(IncomingTx {
            tx: tx.clone(),
            id,
            block,
            max_confirmations: 0,
        });
    }
    fn pending(&self) -> impl Iterator<Item = &OwnTx> {
        self.own
            .iter()
            .filter(|own| own.state == OwnTxState::Pending)
    }
}

impl Node {
    pub fn own_transactions(&self) -> impl Iterator<Item = &OwnTx> {
        self.wallet.own.iter()
    }

    /// Payments to us we have seen, oldest first (see [`MAX_TRACKED_INCOMING`]).
    pub fn incoming_transactions(&self) -> impl DoubleEndedIterator<Item = &IncomingTx> {
        self.wallet.incoming.iter()
    }

    /// Whether the sender's nonce of `tx` is used on our best chain: for a transaction that is
    /// not on it, another one with its nonce is, so it can never confirm there.
    pub fn nonce_used_on_best_chain(&self, tx: &Transaction) -> bool {
        self.tree.ledger().account(&tx.sender()).nonce > tx.nonce
    }

    /// Blocks on top of one of our confirmed transactions, its own block included.
    pub fn confirmations(&self, own: &OwnTx) -> u64 {
        match &own.state {
            OwnTxState::Confirmed { height, .. } => {
                (self.tree.tip_height() + 1).saturating_sub(*height)
            }
            _ => 0,
        }
    }

    /// Puts back our own transactions kept in storage (the pool of our last session). Those that
    /// no longer fit the ledger (confirmed meanwhile, or spent) are deleted from storage.
    pub fn handle_stored_transactions(&mut self, txs: Vec<Transaction>, now_ms: u64) {
        let chain_id = self.tree.chain_id();
        let mut outputs = Vec::new();
        for tx in txs {
            let id = tx.id();
            if tx.from != self.keypair.public() {
                outputs.push(Output::DeleteTransaction(id));
                continue;
            }
            match self.mempool.add(tx.clone(), self.tree.ledger(), &chain_id) {
                Ok(_) | Err(MempoolError::AlreadyKnown) => {
                    if !self.wallet.own.iter().any(|own| own.id == id) {
                        let own = OwnTx {
                            tx,
                            id,
                            state: OwnTxState::Pending,
                            max_confirmations: 0,
                            stored: true,
                        };
                        self.wallet.track(own, &mut outputs);
                    }
                }
                Err(_) => outputs.push(Output::DeleteTransaction(id)),
            }
        }
        for output in outputs {
            self.push(output);
        }
        self.schedule_announce(now_ms);
    }

    /// Signs, queues, stores and announces a payment from our account. The nonce follows our
    /// confirmed nonce and every pending transaction of ours, stored ones from earlier runs
    /// included, so a payment reported as sent is never silently replaced.
    pub fn send_transaction(
        &mut self,
        to: Address,
        amount: u64,
        fee: u64,
        now_ms: u64,
    ) -> Result<Hash, SendError> {
        if amount == 0 {
            return Err(SendError::ZeroAmount);
        }
        let account = self.tree.ledger().account(&self.address());
        let pending = self
            .wallet
            .pending()
            .filter(|own| self.mempool.contains(&own.id))
            .map(|own| own.tx.nonce + 1)
            .max()
            .unwrap_or(0);
        let nonce = account.nonce.max(pending);
        let chain_id = self.tree.chain_id();
        let tx = Transaction::new_signed(&self.keypair, &chain_id, to, amount, fee, nonce);
        let id = self
            .mempool
            .add(tx.clone(), self.tree.ledger(), &chain_id)?;
        let mut outputs = vec![Output::StoreTransaction(tx.clone())];
        self.wallet.track(
            OwnTx {
                tx: tx.clone(),
                id,
                state: OwnTxState::Pending,
                max_confirmations: 0,
                stored: true,
            },
            &mut outputs,
        );
        for output in outputs {
            self.push(output);
        }
        self.event(NodeEvent::TransactionAccepted {
            id,
            from_peer: None,
        });
        self.broadcast(&NodeMessage::NewTransaction { tx });
        self.schedule_announce(now_ms);
        if self.mining {
            self.restart_mining(now_ms);
        }
        Ok(id)
    }

    pub(crate) fn schedule_announce(&mut self, now_ms: u64) {
        if self.wallet.next_announce_ms.is_none() && self.wallet.pending().next().is_some() {
            self.wallet.next_announce_ms = Some(now_ms + OWN_TX_REANNOUNCE_MS);
        }
    }

    /// Announces our pending transactions again if it is time (see [`OWN_TX_REANNOUNCE_MS`]).
    pub(crate) fn announce_own_if_due(&mut self, now_ms: u64) {
        let Some(due) = self.wallet.next_announce_ms else {
            return;
        };
        if now_ms < due {
            return;
        }
        self.wallet.next_announce_ms = None;
        let txs = self.own_pending_in_pool();
        if !txs.is_empty() {
            self.broadcast(&NodeMessage::Mempool { txs });
        }
        self.schedule_announce(now_ms);
    }

    /// Our pending transactions, for one peer that just came (back): a hello, an unmute.
    pub(crate) fn send_own_pending(&mut self, to: &crate::protocol::PeerId) {
        let txs = self.own_pending_in_pool();
        if !txs.is_empty() {
            self.send(to, &NodeMessage::Mempool { txs });
        }
    }

    /// Our pending transactions still in the pool, at most one message's worth.
    fn own_pending_in_pool(&self) -> Vec<Transaction> {
        self.wallet
            .pending()
            .filter(|own| self.mempool.contains(&own.id))
            .map(|own| own.tx.clone())
            .take(MAX_TXS_PER_MESSAGE)
            .collect()
    }

    /// Follows the fate of our transactions through a tip change.
    pub(crate) fn update_own_txs(
        &mut self,
        change: &TipChange,
        dropped: &[(Transaction, MempoolError)],
    ) {
        let mut confirmed = HashMap::new();
        for block in &change.connected {
            for tx in &block.transactions {
                confirmed.insert(tx.id(), (block.header.height, block.hash()));
            }
        }
        let dropped: HashMap<Hash, String> = dropped
            .iter()
            .map(|(tx, error)| (tx.id(), error.to_string()))
            .collect();
        let tip_height = self.tree.tip_height();
        let our_nonce = self.tree.ledger().account(&self.address()).nonce;
        let mut events = Vec::new();
        let mut outputs = Vec::new();
        let mut back_in_pool = HashSet::new();
        for own in self.wallet.own.iter_mut() {
            if let Some((height, block)) = confirmed.get(&own.id) {
                own.state = OwnTxState::Confirmed {
                    height: *height,
                    block: *block,
                };
                events.push(NodeEvent::TransactionConfirmed {
                    id: own.id,
                    height: *height,
                });
            } else if let OwnTxState::Confirmed { block, .. } = own.state {
                if !self.tree.is_active(&block) {
                    // Its block left the best chain; it is back in the mempool, or conflicts.
                    own.state = if self.mempool.contains(&own.id) {
                        back_in_pool.insert(own.id);
                        OwnTxState::Pending
                    } else if our_nonce > own.tx.nonce {
                        OwnTxState::Reversed {
                            confirmations: own.max_confirmations,
                        }
                    } else {
                        OwnTxState::Dropped {
                            reason: dropped
                                .get(&own.id)
                                .cloned()
                                .unwrap_or_else(|| "its block left the best chain".into()),
                        }
                    };
                    if let OwnTxState::Dropped { reason } = &own.state {
                        events.push(NodeEvent::TransactionDropped {
                            id: own.id,
                            reason: reason.clone(),
                        });
                    }
                }
            } else if let Some(reason) = dropped.get(&own.id) {
                own.state = if own.max_confirmations > 0 && our_nonce > own.tx.nonce {
                    OwnTxState::Reversed {
                        confirmations: own.max_confirmations,
                    }
                } else {
                    OwnTxState::Dropped {
                        reason: reason.clone(),
                    }
                };
                events.push(NodeEvent::TransactionDropped {
                    id: own.id,
                    reason: reason.clone(),
                });
            }
            if let OwnTxState::Confirmed { height, .. } = own.state {
                own.max_confirmations = own
                    .max_confirmations
                    .max((tip_height + 1).saturating_sub(height));
            }
            match &own.state {
                OwnTxState::Confirmed { height, .. }
                    if own.stored && tip_height + 1 >= height + CONFIRMATIONS_TO_FORGET =>
                {
                    own.stored = false;
                    outputs.push(Output::DeleteTransaction(own.id));
                }
                OwnTxState::Pending if !own.stored => {
                    own.stored = true;
                    outputs.push(Output::StoreTransaction(own.tx.clone()));
                }
                OwnTxState::Dropped { .. } | OwnTxState::Reversed { .. } if own.stored => {
                    own.stored = false;
                    outputs.push(Output::DeleteTransaction(own.id));
                }
                _ => {}
            }
        }
        for output in outputs {
            self.push(output);
        }
        for event in events {
            self.event(event);
        }
        self.update_incoming(change);
        // Transactions of the blocks that left the best chain are back in our pool; the
        // winning side may never have seen them, so they are announced again at once.
        if !change.disconnected.is_empty() {
            let returned: Vec<Transaction> = change
                .disconnected
                .iter()
                .flat_map(|block| block.transactions.iter())
                .filter(|tx| self.mempool.contains(&tx.id()) || back_in_pool.contains(&tx.id()))
                .take(MAX_TXS_PER_MESSAGE)
                .cloned()
                .collect();
            let returned = self.without_hidden(returned);
            if !returned.is_empty() {
                self.broadcast(&NodeMessage::Mempool { txs: returned });
            }
        }
    }
}

impl Node {
    /// A payment to us arrived in our pool.
    pub(crate) fn note_incoming_pending(&mut self, tx: &Transaction) {
        let us = self.address();
        if tx.to == us && tx.sender() != us {
            self.wallet.note_incoming(tx, None);
        }
    }

    /// Follows the payments to us through a tip change: those in connected blocks are noted
    /// with their block, and each one's most confirmations grows while its block is active.
    fn update_incoming(&mut self, change: &TipChange) {
        let us = self.address();
        for block in &change.connected {
            let place = Some((block.header.height, block.hash()));
            for tx in &block.transactions {
                if tx.to == us && tx.sender() != us {
                    self.wallet.note_incoming(tx, place);
                }
            }
        }
        let tip_height = self.tree.tip_height();
        for known in self.wallet.incoming.iter_mut() {
            if let Some((height, block)) = known.block {
                if self.tree.is_active(&block) {
                    known.max_confirmations = known
                        .max_confirmations
                        .max((tip_height + 1).saturating_sub(height));
                }
            }
        }
    }
}
