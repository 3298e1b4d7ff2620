//! Small view structs built from the node after each batch of work, so components render
//! plain data and never touch the node, validate or hash. What the console shows too (peers,
//! names, balances, block rows and rules, our transactions) comes from [`shared::view`]; this
//! module adds only what the browser alone draws (relations to peers' chains, the tree).

use crate::relation::{relation, Relation};
use crate::tree_view::{draw_tree, ReorgRecord, TreeDrawing};
use shared::block::Block;
use shared::node::{LinkState, Node, SyncState};
use shared::protocol::{PeerId, TipStatus};
use shared::view::{self, AccountView, AddressBook, Names, OwnTxView, RuleView};
use shared::work::Work;
use shared::{Address, Hash};
use std::collections::BTreeMap;
use std::ops::Deref;
use std::sync::Arc;

/// A tab does not tell a silent peer from one whose hello is on its way: it waits for every
/// hello (the native node's scripts are the ones that must not wait forever).
const HELLO_GRACE_MS: u64 = u64::MAX;

/// Everything the status bar, wallet, peer table and tree drawing show.
#[derive(Clone, Debug, PartialEq)]
pub struct NodeSnapshot {
    pub name: String,
    pub address: Address,
    pub height: u64,
    pub tip_hash: Hash,
    pub total_work_log2: f64,
    pub total_work: Work,
    pub sync: SyncState,
    pub balance: u64,
    /// Every account on our best chain with coins or history, and ours; richest first.
    pub accounts: Vec<AccountView>,
    pub mempool_size: usize,
    pub mining: bool,
    pub block_count: usize,
    pub peers: Vec<PeerRow>,
    /// Peers whose direct link is open (the node routes to them over it).
    pub direct_links: usize,
    pub own_txs: Vec<OwnTxView>,
    pub tree: TreeDrawing,
}

/// A peer as [`shared::view`] sees it, and how its chain relates to ours.
#[derive(Clone, Debug, PartialEq)]
pub struct PeerRow {
    pub view: view::PeerView,
    pub relation: Relation,
    pub total_work_log2: Option<f64>,
    pub link: Link,
    /// The direct link's last heartbeat round trip, in microseconds.
    pub rtt_us: Option<u64>,
}

/// How we reach a peer, as the peer table says it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Link {
    /// Over the relay only.
    Relayed,
    /// A direct link is being opened; meanwhile the relay carries everything.
    Connecting,
    /// Over a WebRTC data channel.
    Direct,
}

impl Link {
    /// The stable word in `data-link`, and what the table shows.
    pub fn key(self) -> &'static str {
        match self {
            Link::Relayed => "relayed",
            Link::Connecting => "connecting",
            Link::Direct => "direct",
        }
    }
}

impl From<LinkState> for Link {
    fn from(state: LinkState) -> Link {
        match state {
            LinkState::None => Link::Relayed,
            LinkState::Connecting { .. } => Link::Connecting,
            LinkState::Direct { .. } => Link::Direct,
        }
    }
}

impl Deref for PeerRow {
    type Target = view::PeerView;
    fn deref(&self) -> &view::PeerView {
        &self.view
    }
}

/// Accounts shown in the balances table; the rest are summed up in one line.
pub const ACCOUNTS_SHOWN: usize = 50;

impl NodeSnapshot {
    /// `rtts`: each direct link's last round trip in microseconds.
    pub fn build(
        node: &Node,
        reorgs: &[ReorgRecord],
        rtts: &BTreeMap<PeerId, u64>,
    ) -> NodeSnapshot {
        NodeSnapshot::build_with(node, reorgs, rtts, &crate::address_book::current())
    }

    /// The snapshot with names from `book` before the peers' own.
    pub fn build_with(
        node: &Node,
        reorgs: &[ReorgRecord],
        rtts: &BTreeMap<PeerId, u64>,
        book: &AddressBook,
    ) -> NodeSnapshot {
        let tree = node.tree();
        let names = Names::new(node, book);
        let peers: Vec<PeerRow> = view::peer_views(node, 0, HELLO_GRACE_MS)
            .into_iter()
            .map(|peer| {
                let link = node
                    .peer(&peer.id)
                    .map_or(Link::Relayed, |info| info.link.into());
                PeerRow {
                    relation: relation(tree, peer.tip.as_ref()),
                    total_work_log2: peer.tip.map(|tip| tip.total_work.log2()),
                    rtt_us: (link == Link::Direct)
                        .then(|| rtts.get(&peer.id).copied())
                        .flatten(),
                    link,
                    view: peer,
                }
            })
            .collect();
        let peer_tips: Vec<(String, TipStatus)> = peers
            .iter()
            .filter_map(|peer| Some((peer.name.clone()?, peer.tip?)))
            .collect();
        NodeSnapshot {
            name: view::sanitize_name(node.name()),
            address: node.address(),
            height: tree.tip_height(),
            tip_hash: tree.tip_hash(),
            total_work_log2: tree.tip_work().log2(),
            total_work: tree.tip_work(),
            sync: node.sync_state(),
            balance: node.balance(&node.address()),
            accounts: view::accounts(node, &names),
            mempool_size: node.mempool().len(),
            mining: node.is_mining(),
            block_count: tree.block_count(),
            own_txs: view::own_transactions(node, &names),
            tree: draw_tree(tree, &peer_tips, reorgs),
            direct_links: peers
                .iter()
                .filter(|peer| peer.link == Link::Direct)
                .count(),
            peers,
        }
    }

    /// The peers as the recipient resolver takes them.
    pub fn peer_views(&self) -> Vec<view::PeerView> {
        self.peers.iter().map(|peer| peer.view.clone()).collect()
    }
}

/// One row of the chain explorer.
pub type ChainRow = view::BlockRow;

/// Rows of the best chain, newest first, starting `skip` rows below the tip.
pub fn chain_rows(node: &Node, skip: u64, count: usize) -> Vec<ChainRow> {
    let names = Names::new(node, &crate::address_book::current());
    view::chain_rows(node, &names, skip, count)
}

/// The block detail view.
#[derive(Clone, Debug, PartialEq)]
pub struct BlockDetail {
    pub block: Arc<Block>,
    pub hash: Hash,
    pub on_best_chain: bool,
    pub confirmations: u64,
    pub total_work_log2: f64,
    pub miner_name: Option<String>,
    /// The names we know for each transaction's sender and recipient, in block order.
    pub tx_names: Vec<(Option<String>, Option<String>)>,
    /// Each rule's result, from `shared::validation` (the same check every block passed).
    pub rules: Vec<RuleView>,
    pub json: String,
}

/// The detail of a stored block at `now_ms`, with each rule's result as `shared` finds it.
pub fn block_detail(node: &Node, hash: &Hash, now_ms: u64) -> Option<BlockDetail> {
    let tree = node.tree();
    let block = Arc::clone(tree.block(hash)?);
    let on_best_chain = tree.is_active(hash);
    let names = Names::new(node, &crate::address_book::current());
    Some(BlockDetail {
        hash: *hash,
        on_best_chain,
        confirmations: if on_best_chain {
            tree.tip_height() - block.header.height + 1
        } else {
            0
        },
        total_work_log2: tree.total_work(hash).map_or(0.0, |work| work.log2()),
        miner_name: names.name(&block.coinbase.to),
        tx_names: block
            .transactions
            .iter()
            .map(|tx| (names.name(&tx.sender()), names.name(&tx.to)))
            .collect(),
        rules: view::block_rules(tree, hash, now_ms)?,
        json: serde_json::to_string_pretty(block.as_ref()).unwrap_or_default(),
        block,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_chain::TestNode;
    use shared::validation::{check_block, RuleOutcome};

    #[test]
    fn chain_rows_are_newest_first_and_windowed() {
        let mut node = TestNode::new("ours", 1);
        node.mine_blocks(20);
        let rows = chain_rows(&node.node, 0, 5);
        let heights: Vec<u64> = rows.iter().map(|row| row.height).collect();
        assert_eq!(heights, vec![20, 19, 18, 17, 16]);
        assert_eq!(chain_rows(&node.node, 18, 5).len(), 3, "down to genesis");
        assert!(chain_rows(&node.node, 21, 5).is_empty());
        assert_eq!(rows[0].miner_name.as_deref(), Some("ours (you)"));
    }

    /// The rules the detail lists are `check_block`'s, the future-time rule included (the
    /// browser's own copy of the rules left it out).
    #[test]
    fn a_block_detail_lists_every_rule_as_check_block_finds_it() {
        let mut node = TestNode::new("ours", 1);
        let blocks = node.mine_blocks(3);
        let hash = blocks[1].hash();
        let now = blocks[2].header.timestamp_ms;
        let detail = block_detail(&node.node, &hash, now).unwrap();
        assert!(detail.on_best_chain);
        assert_eq!(detail.confirmations, 2);
        let tree = node.node.tree();
        let parent = tree.parent_context(&blocks[1].header.prev_hash).unwrap();
        let verdict = check_block(
            blocks[1].clone(),
            &parent,
            tree.params(),
            &tree.chain_id(),
            now,
        );
        assert!(verdict.is_ok());
        assert!(
            detail
                .rules
                .iter()
                .all(|rule| rule.outcome == RuleOutcome::Passed),
            "{:?}",
            detail.rules
        );
        let titles: Vec<&str> = detail.rules.iter().map(|rule| rule.title).collect();
        assert!(
            titles.contains(&"timestamp not too far ahead"),
            "{titles:?}"
        );
        assert!(detail.json.contains("\"coinbase\""));
    }
}
