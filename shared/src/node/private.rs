//! Private mining, for the double-spend lesson: the node mines on a branch of its own without
//! announcing it, then releases it. Nothing here changes a rule of the network; it is only what
//! any miner may choose: what to mine on, what to announce, and when.
//!
//! While private, the blocks we mine go into our [`BlockTree`](crate::chain::BlockTree) like
//! any other block (so fork choice stays the one in `chain.rs`, and our tree may well make the
//! private branch its best chain once it is heavier), but they are *hidden*: not announced, not
//! gossiped, not stored, not served in `headers` or `blocks` replies, not named by our `hello`,
//! `status` or header locators, which all speak of the heaviest *public* block we hold instead.
//! The miner is *pinned* to our private tip: its templates are built on that tip with the
//! ledger at that tip, which we keep ourselves ([`PrivateBranch::ledger`], one `apply_block`
//! per block we mine), whichever branch our tree holds best. Public blocks still arrive and are
//! taken in by the normal rules, so the public tip is known and the lead can be shown.
//!
//! A double spend is a transaction of ours with the nonce of a payment we made publicly, back to
//! ourselves: it is kept here (never in the pool, which peers can ask for) and goes only into
//! private blocks. Our other transactions stay out of the private branch, so a payment made
//! while private can still be reversed. Releasing announces the private tip like a freshly mined
//! block; peers then sync it by the normal rules, and the heavier chain wins.
//!
//! Bounds: everything kept here is ours. A peer adds nothing to it (its blocks go to the tree
//! as always); the branch holds at most [`MAX_PRIVATE_BLOCKS`] and [`MAX_PRIVATE_TXS`].

use super::output::{MiningJob, NodeEvent, Output};
use super::Node;
use crate::block::{Block, BlockHeader};
use crate::chain::AddOutcome;
use crate::hash::Hash;
use crate::protocol::message::{NodeMessage, TipStatus, MAX_TXS_PER_MESSAGE};
use crate::state::Ledger;
use crate::tx::Transaction;
use crate::work::Work;
use std::collections::HashSet;
use std::sync::Arc;
use thiserror::Error;

/// Blocks a private branch may hold; the miner stops at this length until it is released. A
/// lesson needs a handful; the bound keeps the hidden blocks (and the walk over them when the
/// public tip is looked for) small whatever a tab is left doing.
pub const MAX_PRIVATE_BLOCKS: usize = 500;
/// Double spends waiting for, or sitting in, the private branch: one per payment reversed.
pub const MAX_PRIVATE_TXS: usize = 64;

/// Why a double spend was refused. The original payment is never touched.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum DoubleSpendError {
    #[error("private mining is off: a double spend only makes sense on a private branch")]
    NotPrivate,
    #[error("that is not one of our transactions")]
    UnknownTransaction,
    #[error("that payment is already double-spent on our private branch")]
    AlreadyDoubleSpent,
    #[error("that payment is already part of our private branch (it was confirmed before private mining began), so it cannot be reversed there")]
    AlreadyOnPrivateBranch,
    #[error("an earlier payment of ours (nonce {nonce}) is not on our private branch: double-spend that one first")]
    EarlierPaymentFirst { nonce: u64 },
    #[error("our balance on the private branch cannot pay the fee of a double spend")]
    CannotAfford,
    #[error("too many double spends on one private branch (at most {MAX_PRIVATE_TXS})")]
    TooMany,
}

/// Why a release did nothing.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum ReleaseError {
    #[error("private mining is off: there is nothing to release")]
    NotPrivate,
}

/// What a release published.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Release {
    /// Private blocks published.
    pub blocks: usize,
    /// The released tip, if any block was mined privately.
    pub tip: Option<Hash>,
    /// Whether the released branch had more work than the public chain we knew (it wins).
    pub heavier: bool,
}

/// How our private branch compares with the public chain, for the UI.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PrivateStatus {
    /// The public block the branch starts from.
    pub base: TipStatus,
    /// Our private tip (the base until we mine a block).
    pub tip: TipStatus,
    /// The heaviest public block we hold.
    pub public_tip: TipStatus,
    /// Blocks mined privately.
    pub blocks: usize,
    /// Double spends kept for the branch.
    pub double_spends: usize,
    /// The branch is at [`MAX_PRIVATE_BLOCKS`]: the miner waits for a release.
    pub full: bool,
}

/// The private branch while private mining is on.
pub(crate) struct PrivateBranch {
    base: Hash,
    tip: Hash,
    /// The ledger at `tip`: what the next private block is built and checked against.
    ledger: Ledger,
    /// Our hidden blocks, oldest first.
    blocks: Vec<Hash>,
    hidden: HashSet<Hash>,
    /// Double spends, in the order made (nonce order).
    txs: Vec<Transaction>,
    tx_ids: HashSet<Hash>,
    /// The heaviest block we hold that is not hidden.
    public_tip: Hash,
}

impl Node {
    // ---- getters ----

    pub fn is_private_mining(&self) -> bool {
        self.private.is_some()
    }

    /// Where our private branch stands, `None` when private mining is off.
    pub fn private_status(&self) -> Option<PrivateStatus> {
        let private = self.private.as_ref()?;
        let status = |hash: &Hash| self.status_of(hash);
        Some(PrivateStatus {
            base: status(&private.base)?,
            tip: status(&private.tip)?,
            public_tip: status(&private.public_tip)?,
            blocks: private.blocks.len(),
            double_spends: private.txs.len(),
            full: private.blocks.len() >= MAX_PRIVATE_BLOCKS,
        })
    }

    /// The last release, until private mining starts again.
    pub fn last_release(&self) -> Option<&Release> {
        self.last_release.as_ref()
    }

    /// Whether `hash` is a block we mined privately and have not released.
    pub fn is_hidden(&self, hash: &Hash) -> bool {
        self.private
            .as_ref()
            .is_some_and(|private| private.hidden.contains(hash))
    }

    /// Whether `id` is a double spend of ours not yet released (never sent to anyone).
    pub fn is_hidden_transaction(&self, id: &Hash) -> bool {
        self.private
            .as_ref()
            .is_some_and(|private| private.tx_ids.contains(id))
    }

    /// The tip we tell peers about: our best chain's, or while private the heaviest public
    /// block we hold.
    pub fn advertised_tip(&self) -> TipStatus {
        match &self.private {
            // The public tip can only leave the tree if a block under it fails the ledger;
            // then the base, then genesis: never the private tip.
            Some(private) => self
                .status_of(&private.public_tip)
                .or_else(|| self.status_of(&private.base))
                .or_else(|| self.status_of(&self.tree.genesis_hash()))
                .unwrap_or_else(|| self.tip_status()),
            None => self.tip_status(),
        }
    }

    pub(crate) fn status_of(&self, hash: &Hash) -> Option<TipStatus> {
        Some(TipStatus {
            hash: *hash,
            height: self.tree.header(hash)?.height,
            total_work: self.tree.total_work(hash)?,
        })
    }

    // ---- commands ----

    /// Turns private mining on (our next blocks build a hidden branch from our tip) or off
    /// (the branch is released, as [`Node::release_private`]).
    pub fn set_private_mining(&mut self, on: bool, now_ms: u64) {
        self.advance_clock(now_ms);
        if !on {
            let _ = self.release_private(now_ms);
            return;
        }
        if self.private.is_some() {
            return;
        }
        let tip = self.tree.tip_hash();
        self.private = Some(PrivateBranch {
            base: tip,
            tip,
            ledger: self.tree.ledger().clone(),
            blocks: Vec::new(),
            hidden: HashSet::new(),
            txs: Vec::new(),
            tx_ids: HashSet::new(),
            public_tip: tip,
        });
        self.last_release = None;
        if self.mining {
            self.restart_mining(now_ms);
        }
    }

    /// Publishes the private branch: its blocks are stored and its tip is announced like a
    /// block we just mined; peers fetch the rest by the normal sync. Private mining ends.
    pub fn release_private(&mut self, now_ms: u64) -> Result<Release, ReleaseError> {
        self.advance_clock(now_ms);
        let private = self.private.take().ok_or(ReleaseError::NotPrivate)?;
        let public_work = self.tree.total_work(&private.public_tip);
        let tip_work = self.tree.total_work(&private.tip);
        let heavier = !private.blocks.is_empty()
            && match (tip_work, public_work) {
                (Some(ours), Some(public)) => {
                    (ours, std::cmp::Reverse(private.tip))
                        > (public, std::cmp::Reverse(private.public_tip))
                }
                _ => false,
            };
        for hash in &private.blocks {
            if let Some(block) = self.tree.block(hash).cloned() {
                self.push(Output::StoreBlock(block));
            }
        }
        let tip = private.blocks.last().copied();
        if let Some(block) = tip.and_then(|hash| self.tree.block(&hash).cloned()) {
            if !self.note_announcement(block.header.prev_hash, block.hash()) {
                if let Some(status) = self.status_of(&block.hash()) {
                    self.infer_tips(None, &block.header.prev_hash, status);
                }
            }
            self.believed_tip = Some(block.hash());
            self.broadcast(&NodeMessage::NewBlock {
                block: block.as_ref().clone(),
            });
        }
        // Whatever our best chain is now, peers hear of it at once.
        self.status_due = true;
        let release = Release {
            blocks: private.blocks.len(),
            tip,
            heavier,
        };
        self.last_release = Some(release.clone());
        if self.mining {
            self.restart_mining(now_ms);
        }
        Ok(release)
    }

    /// Makes a transaction that takes the place of our payment `own_tx_id` on the private
    /// branch: the same nonce, back to ourselves, one more in fee. It is kept for our private
    /// blocks only and reaches others only inside them, at the release.
    pub fn double_spend(
        &mut self,
        own_tx_id: &Hash,
        now_ms: u64,
    ) -> Result<Hash, DoubleSpendError> {
        self.advance_clock(now_ms);
        let original = self
            .wallet
            .own
            .iter()
            .find(|own| own.id == *own_tx_id)
            .map(|own| own.tx.clone())
            .ok_or(DoubleSpendError::UnknownTransaction)?;
        let me = self.address();
        let chain_id = self.tree.chain_id();
        let private = self.private.as_mut().ok_or(DoubleSpendError::NotPrivate)?;
        if private.txs.iter().any(|tx| tx.nonce == original.nonce) {
            return Err(DoubleSpendError::AlreadyDoubleSpent);
        }
        if private.txs.len() >= MAX_PRIVATE_TXS {
            return Err(DoubleSpendError::TooMany);
        }
        let account = private.ledger.account(&me);
        // The double spends not yet in a private block come first, in nonce order.
        let next_nonce = account.nonce + unmined(private).count() as u64;
        if original.nonce < account.nonce {
            return Err(DoubleSpendError::AlreadyOnPrivateBranch);
        }
        if original.nonce > next_nonce {
            return Err(DoubleSpendError::EarlierPaymentFirst { nonce: next_nonce });
        }
        let committed = unmined(private).fold(0u64, |sum, tx| {
            sum.saturating_add(tx.amount).saturating_add(tx.fee)
        });
        let available = account.balance.saturating_sub(committed);
        let fee = original.fee + 1;
        if available <= fee {
            return Err(DoubleSpendError::CannotAfford);
        }
        let amount = original.amount.min(available - fee);
        let tx = Transaction::new_signed(&self.keypair, &chain_id, me, amount, fee, original.nonce);
        let id = tx.id();
        private.tx_ids.insert(id);
        private.txs.push(tx);
        if self.mining {
            self.restart_mining(now_ms);
        }
        Ok(id)
    }

    // ---- what the rest of the node asks ----

    /// The mining job while private: on our private tip, with the ledger there.
    pub(crate) fn private_job(&mut self, now_ms: u64) -> Option<Block> {
        let private = self.private.as_ref()?;
        if private.blocks.len() >= MAX_PRIVATE_BLOCKS {
            return None;
        }
        let parent = self.tree.parent_context(&private.tip)?;
        let limit = self.tree.params().max_block_txs;
        let me = self.address();
        let mut txs: Vec<Transaction> = unmined(private).cloned().collect();
        // Our own payments stay off the branch, so they can still be reversed on it.
        txs.extend(
            self.mempool
                .select(&private.ledger, limit)
                .into_iter()
                .filter(|tx| tx.sender() != me),
        );
        txs.truncate(limit);
        let height = parent.header.height + 1;
        let build = |transactions: Vec<Transaction>| {
            self.tree
                .block_template_on(&parent, me, transactions, now_ms)
        };
        let subsidy = self.tree.params().subsidy(height);
        let block = build(txs);
        if private.ledger.clone().apply_block(&block, subsidy).is_ok() {
            return Some(block);
        }
        // The pool's choice did not fit the private ledger (it was made for each sender alone):
        // the double spends alone, or an empty block, always do.
        let block = build(unmined(private).cloned().collect());
        if private.ledger.clone().apply_block(&block, subsidy).is_ok() {
            return Some(block);
        }
        Some(build(Vec::new()))
    }

    /// Our miner found a block while private: into the tree, hidden, and the next job on it.
    pub(crate) fn take_private_block(&mut self, block: Block, now_ms: u64) {
        let hash = block.hash();
        let subsidy = self.tree.params().subsidy(block.header.height);
        let mut next_ledger = match &self.private {
            Some(private) if block.header.prev_hash == private.tip => private.ledger.clone(),
            _ => return,
        };
        if let Err(error) = next_ledger.apply_block(&block, subsidy) {
            self.event(NodeEvent::BlockRejected {
                hash,
                from: None,
                reason: format!("our own private block: {error}"),
            });
            self.restart_mining(now_ms);
            return;
        }
        if let Some(private) = self.private.as_mut() {
            // Hidden before the tree sees it, so no output about it names it.
            private.hidden.insert(hash);
        }
        match self.tree.add_block(block, now_ms) {
            Ok(outcome) => {
                if let Some(private) = self.private.as_mut() {
                    private.tip = hash;
                    private.ledger = next_ledger;
                    private.blocks.push(hash);
                }
                let moved = matches!(outcome, AddOutcome::TipChanged(_));
                self.after_add(hash, outcome, None, now_ms);
                if !moved {
                    self.restart_mining(now_ms);
                }
            }
            Err(error) => {
                if let Some(private) = self.private.as_mut() {
                    private.hidden.remove(&hash);
                }
                self.event(NodeEvent::BlockRejected {
                    hash,
                    from: None,
                    reason: format!("our own private block: {error}"),
                });
                self.restart_mining(now_ms);
            }
        }
    }

    /// After any block was added while private: the heaviest public block may have moved.
    pub(crate) fn update_public_tip(&mut self) {
        let Some(private) = &self.private else {
            return;
        };
        let mut best: Option<(Work, std::cmp::Reverse<Hash>)> = None;
        let mut best_hash = private.base;
        let mut consider = |hash: Hash, work: Work| {
            let key = (work, std::cmp::Reverse(hash));
            if best.is_none_or(|current| key > current) {
                best = Some(key);
                best_hash = hash;
            }
        };
        for tip in self.tree.branch_tips() {
            // A branch ending in our hidden blocks counts up to its last public block.
            let mut cursor = tip;
            while private.hidden.contains(&cursor) {
                match self.tree.header(&cursor) {
                    Some(header) => cursor = header.prev_hash,
                    None => break,
                }
            }
            if let Some(work) = self.tree.total_work(&cursor) {
                consider(cursor, work);
            }
        }
        if let Some(private) = self.private.as_mut() {
            private.public_tip = best_hash;
        }
    }

    /// The public chain's block at `height` (our best chain's when no hidden block is on it).
    fn public_hash_at(&self, height: u64) -> Option<Hash> {
        let Some(private) = &self.private else {
            return self.tree.active_hash_at(height);
        };
        let public_tip = private.public_tip;
        let fork = self.tree.fork_height(&public_tip)?;
        if height <= fork {
            return self.tree.active_hash_at(height);
        }
        let tip_height = self.tree.header(&public_tip)?.height;
        if height > tip_height {
            return None;
        }
        self.tree.ancestor_at(&public_tip, height)
    }

    /// Our locator as peers may see it: of the public chain while private.
    pub(crate) fn advertised_locator(&self) -> Vec<Hash> {
        if self.private.is_none() {
            return self.tree.locator();
        }
        crate::chain::locator_heights(self.advertised_tip().height)
            .filter_map(|height| self.public_hash_at(height))
            .collect()
    }

    /// The headers we serve after `locator`: of the public chain while private.
    pub(crate) fn advertised_headers_after(
        &self,
        locator: &[Hash],
        limit: usize,
    ) -> Vec<BlockHeader> {
        if self.private.is_none() {
            return self.tree.headers_after(locator, limit);
        }
        let tip_height = self.advertised_tip().height;
        let start = locator
            .iter()
            .filter_map(|hash| {
                let height = self.tree.header(hash)?.height;
                (self.public_hash_at(height) == Some(*hash)).then_some(height)
            })
            .next()
            .unwrap_or(0);
        (start + 1..=tip_height)
            .take(limit)
            .filter_map(|height| {
                let hash = self.public_hash_at(height)?;
                self.tree.header(&hash).copied()
            })
            .collect()
    }

    /// Drops the hidden transactions from a list we are about to send.
    pub(crate) fn without_hidden(&self, txs: Vec<Transaction>) -> Vec<Transaction> {
        match &self.private {
            Some(private) => txs
                .into_iter()
                .filter(|tx| !private.tx_ids.contains(&tx.id()))
                .take(MAX_TXS_PER_MESSAGE)
                .collect(),
            None => txs,
        }
    }

    /// Whether a block may go to storage now (hidden blocks wait for the release).
    pub(crate) fn storable(&self, block: &Arc<Block>) -> bool {
        !self.is_hidden(&block.hash())
    }

    pub(crate) fn emit_private_job(&mut self, now_ms: u64) {
        match self.private_job(now_ms) {
            Some(block) => {
                self.next_job_id += 1;
                self.current_job = Some(self.next_job_id);
                self.push(Output::Mine(MiningJob {
                    job_id: self.next_job_id,
                    block,
                }));
            }
            None => {
                self.current_job = None;
                self.push(Output::StopMining);
            }
        }
    }
}

/// The double spends not yet in a private block.
fn unmined(private: &PrivateBranch) -> impl Iterator<Item = &Transaction> + '_ {
    let me_nonce = |tx: &Transaction| private.ledger.account(&tx.sender()).nonce;
    private
        .txs
        .iter()
        .filter(move |tx| tx.nonce >= me_nonce(tx))
}
