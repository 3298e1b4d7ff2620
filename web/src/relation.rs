//! Where a peer's chain stands against ours: the "compare chains across tabs" column.

use shared::protocol::TipStatus;
use shared::BlockTree;

/// A peer's tip seen from our block tree.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Relation {
    /// It has not told us its tip yet.
    Unknown,
    /// Same tip as ours.
    Same,
    /// Its tip is on our best chain, `by` blocks below ours.
    Behind { by: u64 },
    /// Its tip is a block we do not have and it claims more work: we will sync from it.
    Ahead { by: u64 },
    /// Its tip is on another branch; `at` is where that branch leaves our best chain, when we
    /// hold the branch.
    Forked { at: Option<u64> },
}

impl Relation {
    /// The stable word in `data-relation`.
    pub fn key(&self) -> &'static str {
        match self {
            Relation::Unknown => "unknown",
            Relation::Same => "same",
            Relation::Behind { .. } => "behind",
            Relation::Ahead { .. } => "ahead",
            Relation::Forked { .. } => "forked",
        }
    }

    pub fn describe(&self) -> String {
        match self {
            Relation::Unknown => "no status yet".into(),
            Relation::Same => "same chain".into(),
            Relation::Behind { by } => format!("behind by {by}"),
            Relation::Ahead { by: 0 } => "ahead (more work)".into(),
            Relation::Ahead { by } => format!("ahead by {by}"),
            Relation::Forked { at: Some(height) } => format!("forked at height {height}"),
            Relation::Forked { at: None } => "on a branch we do not have".into(),
        }
    }
}

/// Compares `peer_tip` with our best chain in `tree`.
pub fn relation(tree: &BlockTree, peer_tip: Option<&TipStatus>) -> Relation {
    let Some(tip) = peer_tip else {
        return Relation::Unknown;
    };
    if tip.hash == tree.tip_hash() {
        return Relation::Same;
    }
    if tree.is_active(&tip.hash) {
        return Relation::Behind {
            by: tree.tip_height().saturating_sub(tip.height),
        };
    }
    if tree.contains(&tip.hash) {
        return Relation::Forked {
            at: tree.fork_height(&tip.hash),
        };
    }
    if tip.total_work > tree.tip_work() {
        Relation::Ahead {
            by: tip.height.saturating_sub(tree.tip_height()),
        }
    } else {
        Relation::Forked { at: None }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_chain::TestNode;

    fn tip_of(node: &TestNode) -> TipStatus {
        node.node.tip_status()
    }

    #[test]
    fn each_relation_is_named_from_our_tree() {
        let mut ours = TestNode::new("ours", 1);
        let shared_blocks = ours.mine_blocks(3);
        let mut theirs = TestNode::new("theirs", 2);
        theirs.receive(&shared_blocks);
        let tree = ours.node.tree();

        assert_eq!(relation(tree, None), Relation::Unknown);
        assert_eq!(relation(tree, Some(&tip_of(&theirs))), Relation::Same);

        let mut behind = TestNode::new("behind", 3);
        behind.receive(&shared_blocks[..1]);
        assert_eq!(
            relation(tree, Some(&tip_of(&behind))),
            Relation::Behind { by: 2 }
        );

        // They mine two blocks we have not seen: more work, unknown to us.
        theirs.mine_blocks(2);
        assert_eq!(
            relation(tree, Some(&tip_of(&theirs))),
            Relation::Ahead { by: 2 }
        );

        // A branch from height 1 that we hold but is not our best chain.
        let mut fork = TestNode::new("fork", 4);
        fork.receive(&shared_blocks[..1]);
        let side = fork.mine_blocks(1);
        ours.receive(&side);
        assert_eq!(
            relation(ours.node.tree(), Some(&tip_of(&fork))),
            Relation::Forked { at: Some(1) }
        );
        assert_eq!(
            Relation::Forked { at: Some(1) }.describe(),
            "forked at height 1"
        );
    }
}
