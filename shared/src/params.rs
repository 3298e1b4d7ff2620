//! Network parameters: every number that two nodes must agree on, in one struct.

use crate::work::{target_for_expected_hashes, Target, U256};

/// The rules of one network. Nodes with different parameters have different genesis blocks
/// and chain ids, so they refuse each other at the handshake.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NetworkParams {
    /// Shown to people and part of the genesis coinbase, so each network has its own genesis.
    pub name: &'static str,
    /// The block interval `T` the difficulty rule aims for.
    pub target_block_ms: u64,
    /// `N`: how many of the latest blocks' solve times (and targets) the difficulty rule averages
    /// (LWMA, [`crate::validation::next_target`]). Fewer exist near genesis: the rule uses those.
    pub difficulty_window: u64,
    /// `F`: each solve time counts as at most `F·T`. One long pause moves the average only so
    /// far, and a miner with `1/F` of the hash power claims at most as much time as really
    /// passed, however it stamps its blocks.
    pub solve_time_limit_factor: u64,
    /// `M`: the difficulty rule reads a block's time as the median of its own timestamp and
    /// its `M - 1` ancestors' (its *effective time*), so one clock running ahead or behind (a
    /// liar's, or a student's) moves it by one place among honest ones, not by what it says.
    pub effective_time_span: usize,
    /// The next target is at least the window's average target divided by this: a burst of
    /// very fast blocks (or timestamps bunched by a liar) hardens it at most this much per block.
    pub max_hardening_factor: u64,
    /// Compact target of the genesis block and of block 1: one browser worker's hashes over one
    /// target interval, so a single tab mines at about the target pace from the first block.
    pub initial_target: Target,
    /// The easiest target allowed (the "proof-of-work limit").
    pub max_target: U256,
    /// A block may be at most this far ahead of the receiving node's clock.
    pub max_future_ms: u64,
    /// A block's timestamp must exceed the median of this many previous blocks.
    pub median_time_span: usize,
    /// Transactions per block, not counting the coinbase.
    pub max_block_txs: usize,
    /// Canonical bytes per block.
    pub max_block_bytes: usize,
    /// New coins per block before any halving.
    pub initial_subsidy: u64,
    /// Blocks between halvings of the subsidy.
    pub halving_interval: u64,
    /// Fixed timestamp of the genesis block.
    pub genesis_timestamp_ms: u64,
}

/// Hashes per second the initial targets are set for: one browser worker on a slow device (a
/// full double SHA-256 per nonce in wasm on a phone). Meant to be below what a laptop does: one
/// worker of Chromium on this project's 2-core machine does about 5 MH/s (BENCHMARKS.md, "Web
/// app"), so there the first blocks come about 3.5x faster than designed, and the difficulty
/// rule brings the pace to its target within one window (20 blocks); a phone at this rate still
/// finds its first block in about one block time instead of 3.5. Changing it changes every
/// network's genesis (the initial target is in its header).
pub const BROWSER_WORKER_HASHES_PER_SECOND: u64 = 1_400_000;

/// The target at which one browser worker expects one block per `interval_ms`.
fn one_worker_target(interval_ms: u64) -> Target {
    let expected = BROWSER_WORKER_HASHES_PER_SECOND * interval_ms / 1_000;
    Target::from_u256(target_for_expected_hashes(expected))
}

impl NetworkParams {
    /// The default network: about one block every 10 seconds for one tab mining with one worker.
    pub fn default_network() -> NetworkParams {
        NetworkParams {
            name: "tabchain-main",
            target_block_ms: 10_000,
            difficulty_window: 20,
            solve_time_limit_factor: 3,
            effective_time_span: 5,
            max_hardening_factor: 10,
            initial_target: one_worker_target(10_000),
            max_target: target_for_expected_hashes(1 << 10),
            max_future_ms: 120_000,
            median_time_span: 11,
            max_block_txs: 1_000,
            max_block_bytes: 200_000,
            initial_subsidy: 50,
            halving_interval: 210_000,
            genesis_timestamp_ms: 1_767_225_600_000,
        }
    }

    /// One block every 2 seconds, from the first block on: for a class watching forks happen.
    /// The window of 20 blocks (40 s) follows tabs joining and leaving within a minute, and keeps
    /// one lying timestamp's lever on the target below 1.5x (with 10 it was 2.2x).
    pub fn classroom() -> NetworkParams {
        NetworkParams {
            name: "tabchain-classroom",
            target_block_ms: 2_000,
            difficulty_window: 20,
            initial_target: one_worker_target(2_000),
            max_target: target_for_expected_hashes(1 << 8),
            ..NetworkParams::default_network()
        }
    }

    /// For tests and the simulator: a block takes a handful of hashes. The difficulty rule is
    /// the same as on the other networks; blocks one target interval apart keep the target at
    /// its easiest (the maximum), faster blocks make it harder.
    pub fn test() -> NetworkParams {
        NetworkParams {
            name: "tabchain-test",
            target_block_ms: 10_000,
            difficulty_window: 10,
            initial_target: Target::from_u256(target_for_expected_hashes(2)),
            max_target: target_for_expected_hashes(2),
            ..NetworkParams::default_network()
        }
    }

    /// The networks this build knows, by the short name `?net=` takes.
    pub fn known() -> [(&'static str, NetworkParams); 3] {
        [
            ("main", Self::default_network()),
            ("classroom", Self::classroom()),
            ("test", Self::test()),
        ]
    }

    /// The short name of the known network whose genesis block hashes to `genesis_hash`.
    pub fn known_by_genesis(genesis_hash: &crate::hash::Hash) -> Option<&'static str> {
        Self::known()
            .into_iter()
            .find(|(_, params)| crate::block::genesis_block(params).hash() == *genesis_hash)
            .map(|(name, _)| name)
    }

    pub fn by_name(name: &str) -> Option<NetworkParams> {
        match name {
            "main" | "tabchain-main" => Some(Self::default_network()),
            "classroom" | "tabchain-classroom" => Some(Self::classroom()),
            "test" | "tabchain-test" => Some(Self::test()),
            _ => None,
        }
    }

    /// How many headers, the parent and its ancestors, [`crate::validation::next_target`] and
    /// the median time past read: the difficulty window, the block before it, and the
    /// `M - 1` ancestors of the window's oldest block its effective time reads.
    pub fn difficulty_headers(&self) -> usize {
        (self.difficulty_window as usize + self.effective_time_span).max(self.median_time_span)
    }

    /// The subsidy of the block at `height`; genesis pays nothing, so the supply is exactly
    /// the sum of the subsidies of blocks 1..=tip.
    pub fn subsidy(&self, height: u64) -> u64 {
        if height == 0 {
            return 0;
        }
        let halvings = height / self.halving_interval;
        if halvings >= 64 {
            0
        } else {
            self.initial_subsidy >> halvings
        }
    }
}
