//! The block tree drawing: the recent part of every branch we hold, laid out in lanes (lane 0
//! is our best chain), with the peers that sit on each block and the reorgs we went through.

use shared::protocol::TipStatus;
use shared::{BlockTree, Hash};
use std::collections::{HashMap, HashSet};

/// Heights drawn: the last 30 blocks show a fork and its resolution with room to spare.
pub const TREE_WINDOW: u64 = 30;
/// Side-branch lanes drawn; more branches than this in 30 heights are not readable anyway.
pub const MAX_SIDE_LANES: usize = 6;
/// Reorgs remembered for the drawing and the markers.
pub const MAX_REORG_RECORDS: usize = 32;

/// A reorg the node went through, recorded by the driver from `NodeEvent::TipChanged`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReorgRecord {
    /// The tip before the reorg (now on a side branch).
    pub old_tip: Hash,
    pub depth: usize,
    pub new_tip: Hash,
    pub new_height: u64,
    pub at_ms: u64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TreeNode {
    pub hash: Hash,
    pub height: u64,
    pub lane: usize,
    pub on_best_chain: bool,
    pub is_our_tip: bool,
    /// Names of the peers whose tip this block is.
    pub peers: Vec<String>,
    /// Index of the parent in `nodes`, when the parent is drawn.
    pub parent: Option<usize>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReorgMark {
    pub height: u64,
    pub lane: usize,
    pub depth: usize,
}

#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct TreeDrawing {
    pub min_height: u64,
    pub max_height: u64,
    pub lanes: usize,
    pub nodes: Vec<TreeNode>,
    pub reorgs: Vec<ReorgMark>,
    /// Peers whose tip is a block we do not hold: (name, height).
    pub unknown_peer_tips: Vec<(String, u64)>,
}

pub fn draw_tree(
    tree: &BlockTree,
    peer_tips: &[(String, TipStatus)],
    reorgs: &[ReorgRecord],
) -> TreeDrawing {
    let tip_height = tree.tip_height();
    let min_height = tip_height.saturating_sub(TREE_WINDOW - 1);
    let mut nodes: Vec<TreeNode> = Vec::new();
    let mut index: HashMap<Hash, usize> = HashMap::new();
    for height in min_height..=tip_height {
        let Some(hash) = tree.active_hash_at(height) else {
            continue;
        };
        index.insert(hash, nodes.len());
        nodes.push(TreeNode {
            hash,
            height,
            lane: 0,
            on_best_chain: true,
            is_our_tip: height == tip_height,
            peers: Vec::new(),
            parent: None,
        });
    }

    let mut leaves: Vec<(u64, Hash)> = tree
        .branch_tips()
        .into_iter()
        .filter(|hash| !tree.is_active(hash))
        .filter_map(|hash| Some((tree.header(&hash)?.height, hash)))
        .filter(|(height, _)| *height >= min_height)
        .collect();
    leaves.sort_by(|a, b| b.cmp(a));
    // Occupied height ranges per side lane, so short forks far apart share a lane.
    let mut lanes: Vec<Vec<(u64, u64)>> = Vec::new();
    for (_, leaf) in leaves {
        let mut branch = Vec::new();
        let mut cursor = leaf;
        while let Some(header) = tree.header(&cursor) {
            if header.height < min_height || index.contains_key(&cursor) {
                break;
            }
            branch.push((cursor, header.height));
            cursor = header.prev_hash;
        }
        let (Some(&(_, top)), Some(&(_, bottom))) = (branch.first(), branch.last()) else {
            continue;
        };
        let span = (bottom.saturating_sub(1), top);
        let free = lanes
            .iter()
            .position(|taken| taken.iter().all(|&(lo, hi)| span.1 < lo || span.0 > hi));
        let lane = match free {
            Some(lane) => lane,
            None if lanes.len() < MAX_SIDE_LANES => {
                lanes.push(Vec::new());
                lanes.len() - 1
            }
            None => continue,
        };
        lanes[lane].push(span);
        for (hash, height) in branch {
            index.insert(hash, nodes.len());
            nodes.push(TreeNode {
                hash,
                height,
                lane: lane + 1,
                on_best_chain: false,
                is_our_tip: false,
                peers: Vec::new(),
                parent: None,
            });
        }
    }

    for node in nodes.iter_mut() {
        node.parent = tree
            .header(&node.hash)
            .and_then(|header| index.get(&header.prev_hash).copied());
    }
    let mut unknown_peer_tips = Vec::new();
    for (name, tip) in peer_tips {
        match index.get(&tip.hash) {
            Some(&at) => nodes[at].peers.push(name.clone()),
            None if !tree.contains(&tip.hash) => unknown_peer_tips.push((name.clone(), tip.height)),
            None => {}
        }
    }
    let mut marked = HashSet::new();
    let reorg_marks = reorgs
        .iter()
        .filter_map(|record| {
            let at = *index.get(&record.old_tip)?;
            marked.insert(at).then(|| ReorgMark {
                height: nodes[at].height,
                lane: nodes[at].lane,
                depth: record.depth,
            })
        })
        .collect();
    TreeDrawing {
        min_height,
        max_height: nodes.iter().map(|node| node.height).max().unwrap_or(0),
        lanes: lanes.len() + 1,
        nodes,
        reorgs: reorg_marks,
        unknown_peer_tips,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_chain::TestNode;

    #[test]
    fn a_fork_gets_its_own_lane_with_its_peer_and_reorg_marked() {
        let mut ours = TestNode::new("ours", 1);
        let common = ours.mine_blocks(2);
        let mut rival = TestNode::new("rival", 2);
        rival.receive(&common);
        let rival_blocks = rival.mine_blocks(1);
        let our_old_tip = ours.mine_blocks(1)[0].hash();
        ours.mine_blocks(1);
        ours.receive(&rival_blocks);

        let reorg = ReorgRecord {
            old_tip: our_old_tip,
            depth: 1,
            new_tip: ours.node.tree().tip_hash(),
            new_height: 4,
            at_ms: 0,
        };
        let drawing = draw_tree(
            ours.node.tree(),
            &[("rival".to_string(), rival.node.tip_status())],
            &[reorg],
        );
        assert_eq!(drawing.lanes, 2);
        assert_eq!(
            drawing.nodes.len(),
            6,
            "genesis, 4 best blocks, 1 side block"
        );
        let side: Vec<&TreeNode> = drawing.nodes.iter().filter(|n| n.lane == 1).collect();
        assert_eq!(side.len(), 1);
        assert_eq!(side[0].peers, vec!["rival".to_string()]);
        assert!(
            side[0].parent.is_some(),
            "the side block hangs off the best chain"
        );
        assert_eq!(drawing.reorgs.len(), 1);
        assert!(drawing.nodes.iter().any(|n| n.is_our_tip && n.lane == 0));
    }
}
