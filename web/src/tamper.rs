//! The tamper sandbox: a copy of the last blocks of our chain that people may edit, to see
//! why a chain cannot be rewritten quietly. Editing a transaction amount or a nonce and
//! recomputing shows that block's new hash failing its proof of work, and every later block's
//! link to its parent breaking. The real chain is never touched.

use shared::block::Block;
use shared::node::Node;
use shared::view::{tamper_checks, TamperChecks};
use shared::Hash;

/// Blocks copied into the sandbox: enough to watch the breakage run down several links.
pub const SANDBOX_BLOCKS: usize = 8;

/// A change to one copied block.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Edit {
    Nonce {
        block: usize,
        nonce: u64,
    },
    TransactionAmount {
        block: usize,
        tx: usize,
        amount: u64,
    },
    CoinbaseAmount {
        block: usize,
        amount: u64,
    },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sandbox {
    chain_id: Hash,
    /// What each copied block's hash was before any edit.
    original_hashes: Vec<Hash>,
    /// The copies, oldest first.
    pub blocks: Vec<Block>,
    pub edited: Vec<bool>,
    expected_coinbase: Vec<u64>,
}

/// One copied block as the sandbox table shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SandboxRow {
    pub height: u64,
    pub original_hash: Hash,
    pub hash: Hash,
    pub edited: bool,
    /// The checks, done by `shared::view` (the consensus code), not here.
    pub checks: TamperChecks,
}

impl SandboxRow {
    pub fn valid(&self) -> bool {
        self.checks.valid()
    }
}

impl Sandbox {
    /// Copies the last [`SANDBOX_BLOCKS`] blocks of `node`'s best chain.
    pub fn copy_from(node: &Node) -> Sandbox {
        let tree = node.tree();
        let from = tree
            .tip_height()
            .saturating_sub(SANDBOX_BLOCKS as u64 - 1)
            .max(1);
        let blocks: Vec<Block> = tree
            .active_blocks(from, SANDBOX_BLOCKS)
            .iter()
            .map(|block| block.as_ref().clone())
            .collect();
        let expected_coinbase = blocks.iter().map(|block| block.coinbase.amount).collect();
        Sandbox {
            chain_id: tree.chain_id(),
            original_hashes: blocks.iter().map(Block::hash).collect(),
            edited: vec![false; blocks.len()],
            blocks,
            expected_coinbase,
        }
    }

    /// Applies `edit` and recomputes the edited block's transaction root, as a forger would.
    pub fn apply(&mut self, edit: &Edit) {
        let index = match *edit {
            Edit::Nonce { block, .. }
            | Edit::TransactionAmount { block, .. }
            | Edit::CoinbaseAmount { block, .. } => block,
        };
        let Some(block) = self.blocks.get_mut(index) else {
            return;
        };
        match *edit {
            Edit::Nonce { nonce, .. } => block.header.nonce = nonce,
            Edit::TransactionAmount { tx, amount, .. } => match block.transactions.get_mut(tx) {
                Some(tx) => tx.amount = amount,
                None => return,
            },
            Edit::CoinbaseAmount { amount, .. } => block.coinbase.amount = amount,
        }
        block.header.tx_root = block.compute_tx_root();
        self.edited[index] = true;
    }

    /// Every copied block re-checked, oldest first.
    pub fn rows(&self) -> Vec<SandboxRow> {
        let mut previous: Option<Hash> = None;
        self.blocks
            .iter()
            .enumerate()
            .map(|(index, block)| {
                let hash = block.hash();
                let row = SandboxRow {
                    height: block.header.height,
                    original_hash: self.original_hashes[index],
                    hash,
                    edited: self.edited[index],
                    checks: tamper_checks(
                        block,
                        previous,
                        self.expected_coinbase[index],
                        &self.chain_id,
                    ),
                };
                previous = Some(hash);
                row
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_chain::TestNode;

    #[test]
    fn editing_a_nonce_breaks_the_next_link_only_in_the_copy() {
        let mut node = TestNode::new("ours", 1);
        node.mine_blocks(5);
        let tip = node.node.tree().tip_hash();
        let mut sandbox = Sandbox::copy_from(&node.node);
        assert_eq!(sandbox.blocks.len(), 5);
        assert!(sandbox.rows().iter().all(SandboxRow::valid));

        let nonce = sandbox.blocks[1].header.nonce.wrapping_add(1);
        sandbox.apply(&Edit::Nonce { block: 1, nonce });
        let rows = sandbox.rows();
        assert!(rows[1].edited);
        assert_ne!(rows[1].hash, rows[1].original_hash);
        assert!(
            !rows[2].checks.link,
            "the next block still points at the old hash"
        );
        assert!(rows[3].checks.link && rows[0].checks.link);
        assert_eq!(
            node.node.tree().tip_hash(),
            tip,
            "the real chain is untouched"
        );
    }

    #[test]
    fn editing_an_amount_breaks_the_signature_and_the_coinbase_rule() {
        let mut node = TestNode::new("ours", 1);
        node.mine_blocks(2);
        let mut sandbox = Sandbox::copy_from(&node.node);
        sandbox.apply(&Edit::CoinbaseAmount {
            block: 0,
            amount: 1_000_000,
        });
        let rows = sandbox.rows();
        assert!(!rows[0].checks.coinbase);
        assert!(rows[0].checks.tx_root, "the forger recomputed the root");
        assert!(!rows[1].checks.link);
    }
}
