//! Test helpers: nodes on the test network that mine real blocks natively, with a clock that
//! advances one target interval per block so the difficulty stays at its easiest.

use shared::block::Block;
use shared::mining::{mine, MiningOutcome};
use shared::node::{Node, NodeConfig, Output};
use shared::{Keypair, NetworkParams};

pub struct TestNode {
    pub node: Node,
    pub clock_ms: u64,
}

impl TestNode {
    pub fn new(name: &str, seed: u8) -> TestNode {
        TestNode::with_params(name, seed, NetworkParams::test())
    }

    pub fn with_params(name: &str, seed: u8, params: NetworkParams) -> TestNode {
        let clock_ms = params.genesis_timestamp_ms;
        TestNode {
            node: Node::new(NodeConfig {
                params,
                name: name.into(),
                keypair: Keypair::from_seed([seed; 32]),
                max_direct_links: 0,
            }),
            clock_ms,
        }
    }

    fn drain(&mut self) -> Vec<Output> {
        std::iter::from_fn(|| self.node.poll_output()).collect()
    }

    /// Mines one block on our tip and returns it.
    pub fn mine_block(&mut self) -> Block {
        self.clock_ms += self.node.tree().params().target_block_ms;
        self.node.set_mining(true, self.clock_ms);
        let job = self
            .drain()
            .into_iter()
            .find_map(|output| match output {
                Output::Mine(job) => Some(job),
                _ => None,
            })
            .expect("mining gives a job");
        let mut block = job.block.clone();
        match mine(&block.header, 0, u64::MAX) {
            MiningOutcome::Found { nonce, .. } => block.header.nonce = nonce,
            other => panic!("no nonce found: {other:?}"),
        }
        self.node
            .handle_mined_block(job.job_id, block.clone(), self.clock_ms);
        self.node.set_mining(false, self.clock_ms);
        self.drain();
        block
    }

    pub fn mine_blocks(&mut self, count: usize) -> Vec<Block> {
        (0..count).map(|_| self.mine_block()).collect()
    }

    /// Hands blocks over as if read from storage.
    pub fn receive(&mut self, blocks: &[Block]) {
        self.node
            .handle_stored_blocks(blocks.to_vec(), self.clock_ms);
        self.drain();
    }
}
