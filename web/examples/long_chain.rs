//! Writes a long valid chain of the test network as JSON, for the explorer's 10,000-block
//! scrolling check (`web/bench/serve-chain.js` serves it to a tab as a peer).
//!
//! `cargo run -p web --example long_chain -- 10000 /tmp/chain.json`
//!
//! Timestamps are spaced exactly one target interval apart, so the difficulty stays at the
//! test network's easiest target and the whole chain mines in a moment.

use shared::mining::{mine, MiningOutcome};
use shared::node::{Node, NodeConfig, Output};
use shared::{Keypair, NetworkParams};
use std::io::Write;

fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let count: usize = args.next().and_then(|n| n.parse().ok()).unwrap_or(10_000);
    let path = args.next().unwrap_or_else(|| "chain.json".into());
    let params = NetworkParams::test();
    let mut clock = params.genesis_timestamp_ms;
    let mut node = Node::new(NodeConfig {
        params,
        name: "long-chain".into(),
        keypair: Keypair::from_seed([9; 32]),
        max_direct_links: 0,
    });
    for _ in 0..count {
        clock += node.tree().params().target_block_ms;
        node.set_mining(true, clock);
        let job = std::iter::from_fn(|| node.poll_output())
            .find_map(|output| match output {
                Output::Mine(job) => Some(job),
                _ => None,
            })
            .expect("mining gives a job");
        let mut block = job.block.clone();
        if let MiningOutcome::Found { nonce, .. } = mine(&block.header, 0, u64::MAX) {
            block.header.nonce = nonce;
        }
        node.handle_mined_block(job.job_id, block, clock);
        while node.poll_output().is_some() {}
    }
    let tree = node.tree();
    let blocks = tree.active_blocks(1, count);
    let document = serde_json::json!({
        "chain_id": tree.chain_id(),
        "genesis_hash": tree.genesis_hash(),
        "address": node.address(),
        "tip": node.tip_status(),
        "blocks": blocks.iter().map(|block| block.as_ref()).collect::<Vec<_>>(),
    });
    let mut file = std::fs::File::create(&path)?;
    file.write_all(document.to_string().as_bytes())?;
    eprintln!("wrote {} blocks to {path}", blocks.len());
    Ok(())
}
