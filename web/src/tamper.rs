//! The tamper sandbox: a copy of the last blocks of our chain that people may edit, to see
//! why a chain cannot be rewritten quietly. It behaves like the classic blockchain demo: an edit
//! changes that block's hash, so its proof of work fails; every later block is re-pointed at
//! its edited parent (its `prev_hash` rewritten, as a forger must), which changes its hash too,
//! so every descendant fails its proof of work. Re-mining a block (a nonce search, done by a
//! mining worker) makes its proof of work pass again and re-points the blocks after it, which
//! stay invalid until they are re-mined in turn. Every check is `shared::view::tamper_checks`;
//! the real chain is never touched.

use shared::block::Block;
use shared::node::Node;
use shared::view::{tamper_checks, TamperChecks};
use shared::work::Target;
use shared::{Address, BlockHeader, Hash};

/// Blocks copied into the sandbox: enough to watch the breakage run down several links.
pub const SANDBOX_BLOCKS: usize = 8;
/// A re-mine gives up after this many times the expected number of hashes (the chance of
/// needing more is e^-20), so a search on a hard target does not run all day.
pub const REMINE_EXPECTED_MULTIPLE: u64 = 20;
/// And after this many tries whatever the target: about a minute for one mining worker.
pub const REMINE_MAX_TRIES: u64 = 100_000_000;

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
    /// Pay the block's reward to someone else: no signature covers the coinbase, so after a
    /// re-mine the block is valid again (only the blocks after it still need re-mining).
    CoinbaseRecipient {
        block: usize,
        to: Address,
    },
}

impl Edit {
    fn block(&self) -> usize {
        match *self {
            Edit::Nonce { block, .. }
            | Edit::TransactionAmount { block, .. }
            | Edit::CoinbaseAmount { block, .. }
            | Edit::CoinbaseRecipient { block, .. } => block,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sandbox {
    chain_id: Hash,
    /// What each copied block's hash was before any edit.
    original_hashes: Vec<Hash>,
    /// The copies, oldest first.
    pub blocks: Vec<Block>,
    pub edited: Vec<bool>,
    /// Re-mined in the sandbox (a new nonce found) since the copy.
    pub remined: Vec<bool>,
    expected_coinbase: Vec<u64>,
}

/// One copied block as the sandbox table shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SandboxRow {
    pub height: u64,
    pub original_hash: Hash,
    pub hash: Hash,
    pub edited: bool,
    /// Its `prev_hash` was rewritten to point at its changed parent.
    pub repointed: bool,
    pub remined: bool,
    pub target: Target,
    /// The checks, done by `shared::view` (the consensus code), not here.
    pub checks: TamperChecks,
}

impl SandboxRow {
    pub fn valid(&self) -> bool {
        self.checks.valid()
    }

    /// Only the proof of work fails: re-mining this block makes it valid.
    pub fn fixable_by_remining(&self) -> bool {
        !self.checks.proof_of_work
            && TamperChecks {
                proof_of_work: true,
                ..self.checks
            }
            .valid()
    }
}

/// How many nonces a re-mine of `header` may try before it gives up.
pub fn remine_budget(header: &BlockHeader) -> u64 {
    let expected = expected_hashes(header.target);
    (expected.saturating_mul(REMINE_EXPECTED_MULTIPLE)).clamp(1, REMINE_MAX_TRIES)
}

/// The expected number of hashes to find a block at `target` (`2^256 / (target + 1)`, the
/// block's work), saturated at `u64::MAX`.
pub fn expected_hashes(target: Target) -> u64 {
    let work = target.work().0;
    if work.bits() > 64 {
        u64::MAX
    } else {
        work.low_u64()
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
            remined: vec![false; blocks.len()],
            blocks,
            expected_coinbase,
        }
    }

    /// Applies `edit`, recomputes the edited block's transaction root (as a forger would) and
    /// re-points every later block at its changed parent.
    pub fn apply(&mut self, edit: &Edit) {
        let index = edit.block();
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
            Edit::CoinbaseRecipient { to, .. } => block.coinbase.to = to,
        }
        block.header.tx_root = block.compute_tx_root();
        self.edited[index] = true;
        self.repoint_after(index);
    }

    /// The header a re-mine of block `index` searches nonces for.
    pub fn remine_header(&self, index: usize) -> Option<BlockHeader> {
        self.blocks.get(index).map(|block| block.header)
    }

    /// Takes the nonce a re-mine of block `index` found, and re-points the blocks after it.
    /// A nonce for a header that has changed since (a stale search) is ignored.
    pub fn remined(&mut self, index: usize, header: &BlockHeader, nonce: u64) -> bool {
        let Some(block) = self.blocks.get_mut(index) else {
            return false;
        };
        if block.header != *header {
            return false;
        }
        block.header.nonce = nonce;
        self.remined[index] = true;
        self.repoint_after(index);
        true
    }

    /// Rewrites each later block's `prev_hash` to its parent's current hash, oldest first:
    /// the link holds again, but the block's own header (and so its hash) has changed.
    fn repoint_after(&mut self, index: usize) {
        for later in index + 1..self.blocks.len() {
            let parent = self.blocks[later - 1].hash();
            let block = &mut self.blocks[later];
            if block.header.prev_hash == parent {
                // The chain below is unchanged from here on.
                break;
            }
            block.header.prev_hash = parent;
        }
    }

    /// Every copied block re-checked, oldest first.
    pub fn rows(&self) -> Vec<SandboxRow> {
        let mut previous: Option<Hash> = None;
        self.blocks
            .iter()
            .enumerate()
            .map(|(index, block)| {
                let hash = block.hash();
                let original_prev = match index {
                    0 => block.header.prev_hash,
                    _ => self.original_hashes[index - 1],
                };
                let row = SandboxRow {
                    height: block.header.height,
                    original_hash: self.original_hashes[index],
                    hash,
                    edited: self.edited[index],
                    repointed: block.header.prev_hash != original_prev,
                    remined: self.remined[index],
                    target: block.header.target,
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
    use shared::mining::{mine, MiningOutcome};
    use shared::NetworkParams;

    /// A chain on the classroom network (about 2.8 million hashes a block), so a changed header misses the
    /// target as it would in a class; the chain is deterministic, so so is every outcome here.
    fn classroom_sandbox(blocks: usize) -> (TestNode, Sandbox) {
        let mut node = TestNode::with_params("ours", 1, NetworkParams::classroom());
        node.mine_blocks(blocks);
        let sandbox = Sandbox::copy_from(&node.node);
        (node, sandbox)
    }

    fn remine(sandbox: &mut Sandbox, index: usize) {
        let header = sandbox.remine_header(index).unwrap();
        match mine(&header, 0, remine_budget(&header)) {
            MiningOutcome::Found { nonce, .. } => assert!(sandbox.remined(index, &header, nonce)),
            other => panic!("no nonce within the budget: {other:?}"),
        }
    }

    fn valid(rows: &[SandboxRow]) -> Vec<bool> {
        rows.iter().map(SandboxRow::valid).collect()
    }

    #[test]
    fn an_edit_invalidates_every_later_block_and_only_the_copy() {
        let (node, mut sandbox) = classroom_sandbox(6);
        let tip = node.node.tree().tip_hash();
        assert_eq!(sandbox.blocks.len(), 6);
        assert!(sandbox.rows().iter().all(SandboxRow::valid));

        sandbox.apply(&Edit::CoinbaseAmount {
            block: 1,
            amount: 1_000_000,
        });
        let rows = sandbox.rows();
        assert_eq!(valid(&rows), [true, false, false, false, false, false]);
        assert!(
            !rows[1].checks.coinbase && rows[1].checks.tx_root,
            "the forger recomputed the root"
        );
        for row in &rows[2..] {
            assert!(
                row.repointed && row.checks.link,
                "re-pointed at its changed parent"
            );
            assert!(
                !row.checks.proof_of_work,
                "so its own hash changed: {}",
                row.height
            );
            assert!(row.fixable_by_remining());
            assert_ne!(row.hash, row.original_hash);
        }
        // Re-mining cannot make a wrong coinbase amount right.
        remine(&mut sandbox, 1);
        let rows = sandbox.rows();
        assert!(rows[1].checks.proof_of_work && !rows[1].valid() && !rows[1].fixable_by_remining());
        assert!(!rows[2].checks.proof_of_work);
        assert_eq!(
            node.node.tree().tip_hash(),
            tip,
            "the real chain is untouched"
        );
    }

    #[test]
    fn re_mining_block_by_block_turns_the_chain_green_one_block_at_a_time() {
        let (_node, mut sandbox) = classroom_sandbox(5);
        sandbox.apply(&Edit::CoinbaseRecipient {
            block: 1,
            to: Address([0xaa; 20]),
        });
        assert_eq!(valid(&sandbox.rows()), [true, false, false, false, false]);
        for index in 1..5 {
            remine(&mut sandbox, index);
            let rows = sandbox.rows();
            let expected: Vec<bool> = (0..5).map(|i| i <= index).collect();
            assert_eq!(valid(&rows), expected, "after re-mining block {index}");
            assert!(rows[index].remined);
        }
    }

    #[test]
    fn a_nonce_edit_breaks_the_block_and_its_descendants_until_re_mined() {
        let (_node, mut sandbox) = classroom_sandbox(4);
        let nonce = sandbox.blocks[2].header.nonce.wrapping_add(1);
        sandbox.apply(&Edit::Nonce { block: 2, nonce });
        assert_eq!(valid(&sandbox.rows()), [true, true, false, false]);
        assert!(sandbox.rows()[2].fixable_by_remining());
    }

    #[test]
    fn a_stale_nonce_is_ignored() {
        let (_node, mut sandbox) = classroom_sandbox(3);
        sandbox.apply(&Edit::CoinbaseRecipient {
            block: 0,
            to: Address([0xaa; 20]),
        });
        let stale = sandbox.remine_header(0).unwrap();
        sandbox.apply(&Edit::CoinbaseRecipient {
            block: 0,
            to: Address([0xbb; 20]),
        });
        assert!(!sandbox.remined(0, &stale, 7));
        assert!(!sandbox.rows()[0].remined);
    }

    #[test]
    fn the_search_budget_follows_the_target() {
        let easy = Target::from_u256(shared::work::target_for_expected_hashes(4096));
        assert_eq!(expected_hashes(easy), 4096);
        assert_eq!(
            remine_budget(&BlockHeader {
                target: easy,
                ..header()
            }),
            4096 * 20
        );
        // The classroom network starts at one worker's 2 s: about 2.8 million hashes (the
        // compact form rounds the target down a little), a budget of 20 times that.
        let classroom = NetworkParams::classroom().initial_target;
        assert_eq!(expected_hashes(classroom), 2_800_005);
        assert_eq!(
            remine_budget(&BlockHeader {
                target: classroom,
                ..header()
            }),
            2_800_005 * 20
        );
        let main = NetworkParams::default_network().initial_target;
        assert!(
            remine_budget(&BlockHeader {
                target: main,
                ..header()
            }) <= REMINE_MAX_TRIES
        );
    }

    fn header() -> BlockHeader {
        BlockHeader {
            version: shared::block::BLOCK_VERSION,
            height: 1,
            prev_hash: Hash([0; 32]),
            tx_root: Hash([0; 32]),
            timestamp_ms: 0,
            target: NetworkParams::test().initial_target,
            nonce: 0,
        }
    }
}
