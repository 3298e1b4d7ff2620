//! Test support, kept out of the node's library (the integration tests and the `hashrate`
//! example include this file): a valid chain made without waiting for the clock, and a data
//! directory preloaded with it.
//!
//! The chain's timestamps start at the network's genesis time and advance by the target block
//! interval, so difficulty never rises however fast the blocks are made, and every block is in
//! the past for a node that checks it now.

use node::runtime::block_log_path;
use node::store::{BlockLog, StoreError};
use shared::chain::BlockTree;
use shared::mining::{mine, MiningOutcome};
use shared::{Address, Block, NetworkParams};
use std::path::Path;
use std::sync::Arc;

/// `count` blocks after genesis paying `miner`, each at the network's target interval.
pub fn synthetic_chain(params: &NetworkParams, miner: Address, count: usize) -> Vec<Arc<Block>> {
    let mut tree = BlockTree::new(params.clone());
    let mut now = params.genesis_timestamp_ms;
    let mut blocks = Vec::with_capacity(count);
    for _ in 0..count {
        now += params.target_block_ms;
        let mut block = tree.block_template(miner, Vec::new(), now);
        let mut first_nonce = 0;
        block.header.nonce = loop {
            match mine(&block.header, first_nonce, 1 << 20) {
                MiningOutcome::Found { nonce, .. } => break nonce,
                MiningOutcome::Exhausted { tried } => first_nonce += tried,
                MiningOutcome::InvalidTarget => panic!("the network's own target is valid"),
            }
        };
        tree.add_block(block.clone(), now)
            .expect("a block built on our own tip is valid");
        blocks.push(Arc::new(block));
    }
    blocks
}

/// Writes `blocks` into the block store of `data_dir` for `params`' network, as if a node had
/// stored them, so a node started there loads them.
pub fn preload(
    data_dir: &Path,
    params: &NetworkParams,
    blocks: &[Arc<Block>],
) -> Result<(), StoreError> {
    let (mut log, _) = BlockLog::open(&block_log_path(data_dir, params.name))?;
    log.append(blocks)?;
    Ok(())
}
