//! Writes a chain file (`shared::export::ChainFile`) of the test network, for the browser test
//! that loads a prepared chain into a fresh tab (`e2e/tests/classroom.test.js`): mining 500 blocks
//! in real time is not possible there, since the test network's difficulty rises to one block
//! per 10 s. Half the blocks pay one miner, half another, and the first miner pays the second
//! once, so balances differ.
//!
//! `cargo run -p web --example chain_file -- 500 /tmp/chain.json`

use shared::export::ChainFile;
use shared::mining::{mine, MiningOutcome};
use shared::node::{Node, NodeConfig, Output};
use shared::{Keypair, NetworkParams};

fn node(seed: u8) -> Node {
    Node::new(NodeConfig {
        params: NetworkParams::test(),
        name: format!("miner-{seed}"),
        keypair: Keypair::from_seed([seed; 32]),
        max_direct_links: 0,
    })
}

/// Mines one block on `miner`'s tip at `clock` and hands it to `other` too.
fn mine_one(miner: &mut Node, other: &mut Node, clock: u64) {
    miner.set_mining(true, clock);
    let job = std::iter::from_fn(|| miner.poll_output())
        .find_map(|output| match output {
            Output::Mine(job) => Some(job),
            _ => None,
        })
        .expect("mining gives a job");
    let mut block = job.block.clone();
    if let MiningOutcome::Found { nonce, .. } = mine(&block.header, 0, u64::MAX) {
        block.header.nonce = nonce;
    }
    miner.handle_mined_block(job.job_id, block.clone(), clock);
    miner.set_mining(false, clock);
    while miner.poll_output().is_some() {}
    other.handle_stored_blocks(vec![block], clock);
    while other.poll_output().is_some() {}
}

fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let count: u64 = args.next().and_then(|n| n.parse().ok()).unwrap_or(500);
    let path = args.next().unwrap_or_else(|| "chain.json".into());
    let (mut alice, mut bob) = (node(11), node(12));
    let mut clock = NetworkParams::test().genesis_timestamp_ms;
    for height in 1..=count {
        // One target interval apart: the difficulty stays at the test network's easiest.
        clock += NetworkParams::test().target_block_ms;
        if height == count / 2 {
            alice
                .send_transaction(bob.address(), 7, 1, clock)
                .expect("alice has coins by then");
        }
        if height <= count / 2 {
            mine_one(&mut alice, &mut bob, clock);
        } else {
            mine_one(&mut bob, &mut alice, clock);
        }
    }
    let file = ChainFile::of_best_chain(alice.tree());
    std::fs::write(&path, file.to_json())?;
    eprintln!("wrote {} blocks to {path}", file.blocks.len());
    Ok(())
}
