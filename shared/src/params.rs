//! Network parameters: every number that two nodes must agree on, in one struct.

use crate::work::{target_for_expected_hashes, Target, U256};

/// The rules of one network. Nodes with different parameters have different genesis blocks
/// and chain ids, so they refuse each other at the handshake.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NetworkParams {
    /// Shown to people and part of the genesis coinbase, so each network has its own genesis.
    pub name: &'static str,
    /// The block interval the difficulty rule aims for.
    pub target_block_ms: u64,
    /// Blocks between two retargets.
    pub retarget_window: u64,
    /// The most a retarget may change the target, in either direction.
    pub max_retarget_factor: u64,
    /// Compact target of the genesis block and of the first window.
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

/// Hashes per second of one browser tab mining with one worker (SHA-256 in wasm, measured).
pub const BROWSER_WORKER_HASHES_PER_SECOND: u64 = 1_400_000;

impl NetworkParams {
    /// The default network: about one block every 10 seconds for one tab mining with one worker.
    pub fn default_network() -> NetworkParams {
        let expected = BROWSER_WORKER_HASHES_PER_SECOND * 10;
        NetworkParams {
            name: "tabchain-main",
            target_block_ms: 10_000,
            retarget_window: 20,
            max_retarget_factor: 4,
            initial_target: Target::from_u256(target_for_expected_hashes(expected)),
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

    /// Blocks nearly instant at first (a few thousand hashes), settling at one every 2 seconds:
    /// for a class watching forks happen.
    pub fn classroom() -> NetworkParams {
        NetworkParams {
            name: "tabchain-classroom",
            target_block_ms: 2_000,
            retarget_window: 10,
            initial_target: Target::from_u256(target_for_expected_hashes(1 << 12)),
            max_target: target_for_expected_hashes(1 << 8),
            ..NetworkParams::default_network()
        }
    }

    /// For tests and the simulator: a block takes a handful of hashes.
    pub fn test() -> NetworkParams {
        NetworkParams {
            name: "tabchain-test",
            target_block_ms: 10_000,
            retarget_window: 10,
            initial_target: Target::from_u256(target_for_expected_hashes(2)),
            max_target: target_for_expected_hashes(2),
            ..NetworkParams::default_network()
        }
    }

    pub fn by_name(name: &str) -> Option<NetworkParams> {
        match name {
            "main" | "tabchain-main" => Some(Self::default_network()),
            "classroom" | "tabchain-classroom" => Some(Self::classroom()),
            "test" | "tabchain-test" => Some(Self::test()),
            _ => None,
        }
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
