//! The block tree: every valid block we know with its side branches, the best chain chosen by
//! most cumulative work (ties to the lower hash), the ledger at its tip, and a bounded pool of orphans.
//!
//! A reorg unapplies the old branch and applies the new one on a copy of the ledger, so a block
//! that fails its state rules halfway leaves the node exactly where it was. The failing block and
//! its descendants are forgotten and their hashes remembered as invalid.

use crate::block::{genesis_block, Block, BlockHeader, Coinbase, BLOCK_VERSION};
use crate::hash::Hash;
use crate::keys::Address;
use crate::mining::meets_target;
use crate::params::NetworkParams;
use crate::state::{Ledger, Undo};
use crate::tx::Transaction;
use crate::validation::{
    check_block, median, next_target, CheckedBlock, ParentContext, ValidationError,
};
use crate::work::Work;
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use thiserror::Error;

/// Blocks whose parent we lack, kept until the parent arrives. Sync fetches blocks in order from
/// several peers, so orphans are blocks announced while we are behind and blocks of a download
/// window that arrived before their parents; 256 covers the window (the node keeps at most
/// `node::MAX_BLOCKS_IN_FLIGHT` = 256 blocks in flight) and a burst of announcements.
pub const MAX_ORPHANS: usize = 256;
/// The orphan pool's bound in bytes (canonical encoding; in memory a block takes about 1.5x).
/// Counted in bytes as well as blocks because one peer could otherwise fill 256 slots with the
/// largest blocks the rules allow (about 140 KB each, 36 MB, and several times that while their
/// JSON is parsed). 8 MiB holds a full download window of typical blocks (a few hundred bytes to
/// a few KB each) and about 60 of the largest; the oldest orphan leaves first.
pub const MAX_ORPHAN_BYTES: usize = 8 << 20;
/// Hashes of blocks known to be invalid, so a peer cannot make us check the same block twice.
pub const MAX_REMEMBERED_INVALID: usize = 10_000;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ChainError {
    #[error("block {0} is known to be invalid")]
    KnownInvalid(Hash),
    #[error("block {hash} builds on an invalid block")]
    InvalidParent { hash: Hash },
    #[error("block {hash} is invalid: {error}")]
    Invalid { hash: Hash, error: ValidationError },
    #[error("orphan block {hash} does not meet its own target")]
    OrphanWithoutWork { hash: Hash },
    /// The block was valid on its own, but the branch it made the heaviest holds an ancestor
    /// that breaks a ledger rule; the ancestor and all its descendants (this block among them)
    /// were removed. `removed` lists every stored block that went, for the caller's storage.
    #[error("block {hash} builds on {ancestor}, which is invalid: {error}")]
    InvalidAncestor {
        hash: Hash,
        ancestor: Hash,
        error: Box<ValidationError>,
        removed: Vec<Hash>,
    },
}

/// What adding one block did to the chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AddOutcome {
    AlreadyKnown,
    /// Its parent is unknown; it waits in the orphan pool.
    Orphan {
        missing_parent: Hash,
    },
    /// Valid, stored, but not on the best chain.
    SideBranch,
    /// The best chain changed (an extension or a reorg).
    TipChanged(TipChange),
}

/// How the best chain moved from `old_tip` to `new_tip`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TipChange {
    pub old_tip: Hash,
    pub new_tip: Hash,
    pub new_height: u64,
    /// Blocks that left the best chain, newest first. Non-empty means a reorg.
    pub disconnected: Vec<Arc<Block>>,
    /// Blocks that joined the best chain, oldest first.
    pub connected: Vec<Arc<Block>>,
    /// Blocks found invalid against the ledger while moving the tip.
    pub rejected: Vec<(Hash, ValidationError)>,
    /// Every stored block removed on the way: the rejected ones and their descendants.
    pub removed: Vec<Hash>,
}

impl TipChange {
    pub fn reorg_depth(&self) -> usize {
        self.disconnected.len()
    }
}

struct Entry {
    block: CheckedBlock,
    total_work: Work,
}

/// The node's view of the chain.
pub struct BlockTree {
    params: NetworkParams,
    chain_id: Hash,
    genesis_hash: Hash,
    entries: HashMap<Hash, Entry>,
    /// The stored blocks nothing builds on: the tips of all branches, kept as blocks come and
    /// go so a drawing of the tree need not walk every block (250,000 of them on a long chain).
    leaves: HashSet<Hash>,
    /// `active[h]` is the hash of the best chain's block at height `h`.
    active: Vec<Hash>,
    ledger: Ledger,
    /// `undos[h]` undoes `active[h]` in the ledger (a vector beside `active`, not a map by
    /// hash: about 100 bytes a block less on a long chain).
    undos: Vec<Undo>,
    best_candidate: Hash,
    invalid: HashSet<Hash>,
    invalid_order: VecDeque<Hash>,
    orphans: HashMap<Hash, Block>,
    orphans_by_parent: HashMap<Hash, Vec<Hash>>,
    orphan_order: VecDeque<Hash>,
    /// Sum of the encoded sizes of the orphans, bounded by [`MAX_ORPHAN_BYTES`].
    orphan_bytes: usize,
}

impl BlockTree {
    pub fn new(params: NetworkParams) -> BlockTree {
        let genesis = CheckedBlock::genesis(genesis_block(&params));
        let genesis_hash = genesis.hash();
        let mut ledger = Ledger::default();
        let undo = ledger
            .apply_block(genesis.block(), 0)
            .expect("the genesis block applies to an empty ledger");
        let total_work = genesis.header().target.work();
        let mut entries = HashMap::new();
        entries.insert(
            genesis_hash,
            Entry {
                block: genesis,
                total_work,
            },
        );
        BlockTree {
            chain_id: crate::block::chain_id(&genesis_hash),
            params,
            genesis_hash,
            entries,
            leaves: HashSet::from([genesis_hash]),
            active: vec![genesis_hash],
            ledger,
            undos: vec![undo],
            best_candidate: genesis_hash,
            invalid: HashSet::new(),
            invalid_order: VecDeque::new(),
            orphans: HashMap::new(),
            orphans_by_parent: HashMap::new(),
            orphan_order: VecDeque::new(),
            orphan_bytes: 0,
        }
    }

    // ---- getters ----

    pub fn params(&self) -> &NetworkParams {
        &self.params
    }
    pub fn chain_id(&self) -> Hash {
        self.chain_id
    }
    pub fn genesis_hash(&self) -> Hash {
        self.genesis_hash
    }
    pub fn tip_hash(&self) -> Hash {
        *self.active.last().expect("the active chain holds genesis")
    }
    pub fn tip_height(&self) -> u64 {
        (self.active.len() - 1) as u64
    }
    pub fn tip_header(&self) -> &BlockHeader {
        self.header(&self.tip_hash()).expect("the tip is stored")
    }
    pub fn tip_work(&self) -> Work {
        self.total_work(&self.tip_hash())
            .expect("the tip is stored")
    }
    pub fn ledger(&self) -> &Ledger {
        &self.ledger
    }
    pub fn contains(&self, hash: &Hash) -> bool {
        self.entries.contains_key(hash)
    }
    pub fn is_known_invalid(&self, hash: &Hash) -> bool {
        self.invalid.contains(hash)
    }
    pub fn is_orphan(&self, hash: &Hash) -> bool {
        self.orphans.contains_key(hash)
    }
    pub fn orphan_count(&self) -> usize {
        self.orphans.len()
    }
    /// Encoded bytes held by the orphan pool.
    pub fn orphan_bytes(&self) -> usize {
        self.orphan_bytes
    }
    pub fn block_count(&self) -> usize {
        self.entries.len()
    }
    pub fn block(&self, hash: &Hash) -> Option<&Arc<Block>> {
        self.entries.get(hash).map(|entry| entry.block.block())
    }
    pub fn header(&self, hash: &Hash) -> Option<&BlockHeader> {
        self.entries.get(hash).map(|entry| entry.block.header())
    }
    pub fn total_work(&self, hash: &Hash) -> Option<Work> {
        self.entries.get(hash).map(|entry| entry.total_work)
    }
    /// The best chain's block hash at `height`.
    pub fn active_hash_at(&self, height: u64) -> Option<Hash> {
        self.active.get(height as usize).copied()
    }
    pub fn is_active(&self, hash: &Hash) -> bool {
        self.header(hash)
            .is_some_and(|header| self.active_hash_at(header.height) == Some(*hash))
    }
    /// Every stored block that no other stored block builds on (the tips of all branches).
    pub fn branch_tips(&self) -> Vec<Hash> {
        self.leaves.iter().copied().collect()
    }
    /// The best chain's blocks from `from_height`, at most `limit` of them.
    pub fn active_blocks(&self, from_height: u64, limit: usize) -> Vec<Arc<Block>> {
        self.active
            .iter()
            .skip(from_height as usize)
            .take(limit)
            .filter_map(|hash| self.block(hash).cloned())
            .collect()
    }

    /// The height at which the branch ending in `hash` leaves our best chain; `None` if unknown.
    pub fn fork_height(&self, hash: &Hash) -> Option<u64> {
        let mut cursor = *hash;
        loop {
            let header = self.header(&cursor)?;
            if self.active_hash_at(header.height) == Some(cursor) {
                return Some(header.height);
            }
            cursor = header.prev_hash;
        }
    }

    /// The ancestor of `hash` (inclusive) at `height`.
    pub fn ancestor_at(&self, hash: &Hash, height: u64) -> Option<Hash> {
        let mut cursor = *hash;
        loop {
            let header = self.header(&cursor)?;
            if header.height < height {
                return None;
            }
            if header.height == height {
                return Some(cursor);
            }
            if self.active_hash_at(header.height) == Some(cursor) {
                return self.active_hash_at(height);
            }
            cursor = header.prev_hash;
        }
    }

    /// What a child of `hash` is checked against. It walks back at most
    /// `difficulty_headers()` headers (a few dozen), once per block added.
    pub fn parent_context(&self, hash: &Hash) -> Option<ParentContext> {
        let header = *self.header(hash)?;
        let wanted = self.params.difficulty_headers();
        // Newest first while walking back; reversed below for the difficulty rule.
        let mut recent = Vec::with_capacity(wanted);
        let mut cursor = Some(*hash);
        while let Some(current) = cursor {
            if recent.len() == wanted {
                break;
            }
            let ancestor = self.header(&current)?;
            recent.push(*ancestor);
            cursor = (ancestor.height > 0).then_some(ancestor.prev_hash);
        }
        let mut timestamps: Vec<u64> = recent
            .iter()
            .take(self.params.median_time_span)
            .map(|ancestor| ancestor.timestamp_ms)
            .collect();
        recent.reverse();
        Some(ParentContext {
            hash: *hash,
            header,
            median_time_past: median(&mut timestamps),
            next_target: next_target(&self.params, &recent),
        })
    }

    /// Exponentially spaced hashes of the best chain, newest first, ending at genesis: a peer
    /// finds the newest one it shares with us in a few dozen hashes, whatever the chain length.
    pub fn locator(&self) -> Vec<Hash> {
        locator_heights(self.tip_height())
            .map(|height| self.active[height as usize])
            .collect()
    }

    /// Headers of our best chain after the newest locator hash we share, at most `limit`.
    pub fn headers_after(&self, locator: &[Hash], limit: usize) -> Vec<BlockHeader> {
        let start = locator
            .iter()
            .find(|hash| self.is_active(hash))
            .and_then(|hash| self.header(hash))
            .map_or(0, |header| header.height);
        self.active
            .iter()
            .skip(start as usize + 1)
            .take(limit)
            .filter_map(|hash| self.header(hash).copied())
            .collect()
    }

    /// An unmined block on top of our tip paying `miner`, holding `transactions` (which the
    /// caller took from the mempool in an order the ledger accepts).
    pub fn block_template(
        &self,
        miner: Address,
        transactions: Vec<Transaction>,
        now_ms: u64,
    ) -> Block {
        let parent = self
            .parent_context(&self.tip_hash())
            .expect("the tip is stored");
        self.block_template_on(&parent, miner, transactions, now_ms)
    }

    /// An unmined block on top of `parent` (any stored block: a miner chooses what to build
    /// on, e.g. a private branch), with the target and earliest timestamp the rules demand there.
    pub fn block_template_on(
        &self,
        parent: &ParentContext,
        miner: Address,
        transactions: Vec<Transaction>,
        now_ms: u64,
    ) -> Block {
        let height = parent.header.height + 1;
        let fees = transactions
            .iter()
            .try_fold(0u64, |sum, tx| sum.checked_add(tx.fee))
            .unwrap_or(0);
        let mut block = Block {
            header: BlockHeader {
                version: BLOCK_VERSION,
                height,
                prev_hash: parent.hash,
                tx_root: Hash::ZERO,
                timestamp_ms: now_ms.max(parent.median_time_past + 1),
                target: parent.next_target,
                nonce: 0,
            },
            coinbase: Coinbase {
                height,
                to: miner,
                amount: self.params.subsidy(height).saturating_add(fees),
            },
            transactions,
        };
        block.header.tx_root = block.compute_tx_root();
        block
    }

    // ---- adding blocks ----

    /// Adds a block from a peer, from our miner or from storage. `now_ms` is the local clock.
    pub fn add_block(&mut self, block: Block, now_ms: u64) -> Result<AddOutcome, ChainError> {
        let hash = block.hash();
        if self.entries.contains_key(&hash) || self.orphans.contains_key(&hash) {
            return Ok(AddOutcome::AlreadyKnown);
        }
        if self.invalid.contains(&hash) {
            return Err(ChainError::KnownInvalid(hash));
        }
        let parent_hash = block.header.prev_hash;
        if self.invalid.contains(&parent_hash) {
            self.remember_invalid(hash);
            return Err(ChainError::InvalidParent { hash });
        }
        if !self.entries.contains_key(&parent_hash) {
            return self.add_orphan(hash, block);
        }

        let old_tip = self.tip_hash();
        let mut rejected = Vec::new();
        let mut removed = Vec::new();
        self.insert_checked(hash, block, now_ms)?;
        self.connect_orphans_of(hash, now_ms, &mut rejected);
        self.activate_best(&mut rejected, &mut removed);

        let new_tip = self.tip_hash();
        if new_tip == old_tip {
            if let Some((bad, error)) = rejected.iter().find(|(bad, _)| *bad == hash) {
                return Err(ChainError::Invalid {
                    hash: *bad,
                    error: error.clone(),
                });
            }
            if !self.entries.contains_key(&hash) {
                // An ancestor on its branch failed the ledger when the branch became heaviest.
                let (ancestor, error) = rejected
                    .first()
                    .cloned()
                    .expect("a stored block only leaves the tree when its branch is rejected");
                return Err(ChainError::InvalidAncestor {
                    hash,
                    ancestor,
                    error: Box::new(error),
                    removed,
                });
            }
            return Ok(AddOutcome::SideBranch);
        }
        Ok(AddOutcome::TipChanged(
            self.describe_move(old_tip, new_tip, rejected, removed),
        ))
    }

    /// Checks the context rules and stores the block; the caller knows its parent is stored.
    fn insert_checked(&mut self, hash: Hash, block: Block, now_ms: u64) -> Result<(), ChainError> {
        let parent = self
            .parent_context(&block.header.prev_hash)
            .expect("the parent is stored");
        let parent_work = self.entries[&parent.hash].total_work;
        let checked = match check_block(block, &parent, &self.params, &self.chain_id, now_ms) {
            Ok(checked) => checked,
            Err(error) => {
                if error.marks_hash_invalid() {
                    self.remember_invalid(hash);
                }
                return Err(ChainError::Invalid { hash, error });
            }
        };
        let total_work = parent_work
            .checked_add(checked.header().target.work())
            .unwrap_or(parent_work);
        self.leaves.remove(&parent.hash);
        self.leaves.insert(hash);
        self.entries.insert(
            hash,
            Entry {
                block: checked,
                total_work,
            },
        );
        let best = (
            self.entries[&self.best_candidate].total_work,
            std::cmp::Reverse(self.best_candidate),
        );
        if (total_work, std::cmp::Reverse(hash)) > best {
            self.best_candidate = hash;
        }
        Ok(())
    }

    fn add_orphan(&mut self, hash: Hash, block: Block) -> Result<AddOutcome, ChainError> {
        // Without its parent we cannot know the right target, but a block that misses even the
        // target it claims, or claims one easier than the network allows, is plain spam.
        let claimed_easy_enough = block
            .header
            .target
            .expand()
            .is_some_and(|target| target <= self.params.max_target);
        if !claimed_easy_enough || !meets_target(&block.header) {
            return Err(ChainError::OrphanWithoutWork { hash });
        }
        // The pool is keyed by the hash, which covers only the header. A copy whose body was
        // altered in transit would otherwise take the honest block's place (the honest one is
        // then "already known") and be dropped when the parent arrives, losing the block.
        if block.compute_tx_root() != block.header.tx_root {
            return Err(ChainError::Invalid {
                hash,
                error: ValidationError::TxRootMismatch,
            });
        }
        let size = block.encoded_len();
        while !self.orphans.is_empty()
            && (self.orphans.len() >= MAX_ORPHANS || self.orphan_bytes + size > MAX_ORPHAN_BYTES)
        {
            let Some(oldest) = self.orphan_order.front().copied() else {
                break;
            };
            self.remove_orphan(&oldest);
        }
        let missing_parent = block.header.prev_hash;
        self.orphans_by_parent
            .entry(missing_parent)
            .or_default()
            .push(hash);
        self.orphans.insert(hash, block);
        self.orphan_order.push_back(hash);
        self.orphan_bytes += size;
        Ok(AddOutcome::Orphan { missing_parent })
    }

    fn remove_orphan(&mut self, hash: &Hash) -> Option<Block> {
        let block = self.orphans.remove(hash)?;
        self.orphan_bytes -= block.encoded_len();
        if let Some(siblings) = self.orphans_by_parent.get_mut(&block.header.prev_hash) {
            siblings.retain(|sibling| sibling != hash);
            if siblings.is_empty() {
                self.orphans_by_parent.remove(&block.header.prev_hash);
            }
        }
        self.orphan_order.retain(|queued| queued != hash);
        Some(block)
    }

    /// Stores, in order, every orphan that descends from `parent`.
    fn connect_orphans_of(
        &mut self,
        parent: Hash,
        now_ms: u64,
        rejected: &mut Vec<(Hash, ValidationError)>,
    ) {
        let mut ready = vec![parent];
        while let Some(parent) = ready.pop() {
            let Some(waiting) = self.orphans_by_parent.remove(&parent) else {
                continue;
            };
            for hash in waiting {
                let Some(block) = self.remove_orphan(&hash) else {
                    continue;
                };
                match self.insert_checked(hash, block, now_ms) {
                    Ok(()) => ready.push(hash),
                    Err(ChainError::Invalid { hash, error }) => rejected.push((hash, error)),
                    Err(_) => {}
                }
            }
        }
    }

    /// Moves the best chain to the stored block with the most work, dropping any block that
    /// breaks a ledger rule on the way and trying the next best.
    fn activate_best(
        &mut self,
        rejected: &mut Vec<(Hash, ValidationError)>,
        removed: &mut Vec<Hash>,
    ) {
        while self.best_candidate != self.tip_hash() {
            let target = self.best_candidate;
            match self.switch_to(target) {
                Ok(()) => {}
                Err((bad, error)) => {
                    rejected.push((bad, error));
                    self.forget_invalid_branch(bad, removed);
                    self.best_candidate = self.most_work_entry();
                }
            }
        }
    }

    /// Makes `target` the tip. On a ledger failure the ledger and best chain are unchanged,
    /// except that a plain extension keeps the blocks it connected before the failing one.
    fn switch_to(&mut self, target: Hash) -> Result<(), (Hash, ValidationError)> {
        let mut path = Vec::new();
        let mut cursor = target;
        while !self.is_active(&cursor) {
            path.push(cursor);
            cursor = self.entries[&cursor].block.header().prev_hash;
        }
        path.reverse();
        let fork_height = self.entries[&cursor].block.header().height;

        if fork_height == self.tip_height() {
            // A plain extension: apply in place; apply_block changes nothing when it fails.
            for hash in path {
                let block = Arc::clone(self.entries[&hash].block.block());
                let undo = self
                    .ledger
                    .apply_block(&block, self.params.subsidy(block.header.height))
                    .map_err(|error| (hash, error))?;
                self.undos.push(undo);
                self.active.push(hash);
            }
            return Ok(());
        }

        let mut ledger = self.ledger.clone();
        for undo in self.undos[fork_height as usize + 1..].iter().rev() {
            ledger.undo_block(undo);
        }
        let mut new_undos = Vec::with_capacity(path.len());
        for hash in &path {
            let block = self.entries[hash].block.block();
            let undo = ledger
                .apply_block(block, self.params.subsidy(block.header.height))
                .map_err(|error| (*hash, error))?;
            new_undos.push(undo);
        }
        self.active.truncate(fork_height as usize + 1);
        self.undos.truncate(fork_height as usize + 1);
        self.active.extend(path);
        self.undos.extend(new_undos);
        self.ledger = ledger;
        Ok(())
    }

    /// Removes `bad` and every stored descendant, remembering their hashes as invalid; every
    /// removed stored block is appended to `removed`. Descendants are found among the blocks
    /// from `bad`'s height up (a map of children for every block would cost a long chain about
    /// 150 bytes a block, for this rare event).
    fn forget_invalid_branch(&mut self, bad: Hash, removed: &mut Vec<Hash>) {
        let Some(header) = self.entries.get(&bad).map(|entry| *entry.block.header()) else {
            self.remember_invalid(bad);
            return;
        };
        // Children of every block from `bad`'s parent up: `bad`'s descendants, and whether its
        // parent keeps another child.
        let mut children: HashMap<Hash, Vec<Hash>> = HashMap::new();
        for (hash, entry) in &self.entries {
            let child = entry.block.header();
            if child.height >= header.height {
                children.entry(child.prev_hash).or_default().push(*hash);
            }
        }
        let mut doomed = vec![bad];
        while let Some(hash) = doomed.pop() {
            if self.entries.remove(&hash).is_some() {
                self.leaves.remove(&hash);
                removed.push(hash);
            }
            doomed.extend(children.remove(&hash).unwrap_or_default());
            self.remember_invalid(hash);
        }
        // Every other removed block's parent was removed too; `bad`'s parent, left with no
        // child, is the tip of its branch now.
        let parent = header.prev_hash;
        let has_child = children
            .get(&parent)
            .is_some_and(|kids| kids.iter().any(|kid| self.entries.contains_key(kid)));
        if self.entries.contains_key(&parent) && !has_child {
            self.leaves.insert(parent);
        }
    }

    /// The fork choice: most cumulative work, ties broken by the lower block hash, so nodes that
    /// saw two equal branches in a different order still pick the same one.
    fn most_work_entry(&self) -> Hash {
        // Work grows along a branch, so the most of it is at a branch's tip.
        self.leaves
            .iter()
            .filter_map(|hash| Some((*hash, self.entries.get(hash)?.total_work)))
            .max_by_key(|(hash, work)| (*work, std::cmp::Reverse(*hash)))
            .map(|(hash, _)| hash)
            .expect("the tree holds genesis")
    }

    /// Remembers `hash` as invalid, and with it every orphan waiting on it (they can never
    /// connect, so they would only take room in the pool until evicted).
    fn remember_invalid(&mut self, hash: Hash) {
        let mut doomed = vec![hash];
        while let Some(hash) = doomed.pop() {
            if self.invalid.insert(hash) {
                self.invalid_order.push_back(hash);
                if self.invalid_order.len() > MAX_REMEMBERED_INVALID {
                    if let Some(oldest) = self.invalid_order.pop_front() {
                        self.invalid.remove(&oldest);
                    }
                }
            }
            for child in self.orphans_by_parent.remove(&hash).unwrap_or_default() {
                if self.remove_orphan(&child).is_some() {
                    doomed.push(child);
                }
            }
        }
    }

    fn describe_move(
        &self,
        old_tip: Hash,
        new_tip: Hash,
        rejected: Vec<(Hash, ValidationError)>,
        removed: Vec<Hash>,
    ) -> TipChange {
        // The old tip's blocks stay stored (only invalid blocks are removed, and the old best
        // chain was valid), so walking back from it finds where it meets the new best chain.
        let mut disconnected = Vec::new();
        let mut cursor = old_tip;
        while !self.is_active(&cursor) {
            let block = Arc::clone(self.entries[&cursor].block.block());
            cursor = block.header.prev_hash;
            disconnected.push(block);
        }
        let fork_height = self.entries[&cursor].block.header().height;
        let connected = self.active_blocks(fork_height + 1, usize::MAX);
        TipChange {
            old_tip,
            new_tip,
            new_height: self.tip_height(),
            disconnected,
            connected,
            rejected,
            removed,
        }
    }
}

/// The heights a locator names below a tip at `tip_height`, newest first: the ten newest one by
/// one, then twice as far apart each time, always ending at genesis (height 0).
pub(crate) fn locator_heights(tip_height: u64) -> impl Iterator<Item = u64> {
    let mut next = Some(tip_height);
    let mut taken = 0usize;
    let mut step = 1;
    std::iter::from_fn(move || {
        let height = next?;
        taken += 1;
        if taken >= 10 {
            step *= 2;
        }
        next = (height > 0).then(|| height.saturating_sub(step));
        Some(height)
    })
}
