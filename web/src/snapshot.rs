//! Small view structs built from the node after each batch of work, so components render
//! plain data and never touch the node, validate or hash. What the console shows too (peers,
//! names, balances, block rows and rules, our transactions) comes from [`shared::view`]; this
//! module adds only what the browser alone draws (relations to peers' chains, the tree).

use crate::relation::{relation, Relation};
use crate::tree_view::{draw_tree, ReorgRecord, TreeDrawing};
use shared::block::Block;
use shared::node::{LinkState, Node, Release, SyncState};
use shared::protocol::{PeerId, TipStatus};
use shared::view::{
    self, AccountView, AddressBook, IncomingView, Names, OwnTxView, PeerMemory, PrivateView,
    RuleView,
};
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
    /// Our private branch while private mining is on (lead against the public chain).
    pub private: Option<PrivateView>,
    /// What the last release published, until private mining starts again.
    pub last_release: Option<Release>,
    pub block_count: usize,
    pub peers: Vec<PeerRow>,
    /// Peers whose direct link is open (the node routes to them over it).
    pub direct_links: usize,
    /// How far we have heard the room (hellos come, awaited, peers on another network).
    pub hearing: crate::connection::Hearing,
    pub own_txs: Vec<OwnTxView>,
    /// Payments other people made to us, pending and in blocks, newest first.
    pub incoming: Vec<IncomingView>,
    /// Peers that went away (or that we left by going offline) less than a minute ago
    /// (`view::GONE_FOLD_MS`), with their last known state, most recently seen first: a
    /// partition stays visible from both sides.
    pub gone_peers: Vec<GonePeer>,
    /// Peers gone longer: one folded line of the table, opened on demand.
    pub folded_peers: Vec<GonePeer>,
    /// Every peer we have or remember, for the recipient resolver: a peer that went away stays
    /// payable by the name it said.
    pub remembered: Vec<view::PeerView>,
    pub tree: TreeDrawing,
    /// Who mined the last [`shared::shares::SHARE_WINDOW`] blocks of our best chain.
    pub shares: shared::shares::BlockShares,
}

/// A peer no longer among ours, as we last saw it.
#[derive(Clone, Debug, PartialEq)]
pub struct GonePeer {
    /// Its last view and when that was.
    pub seen: view::SeenPeer,
    pub relation: Relation,
    pub work: Option<WorkAhead>,
}

/// A peer's chain's work against ours, in a form that compares.
#[derive(Clone, Debug, PartialEq)]
pub struct WorkAhead {
    /// "2.5 blocks more", "same work" (blocks' worth at our tip's target).
    pub text: String,
    /// Its total work as a power of two, for the title attribute.
    pub total_work_log2: f64,
}

impl WorkAhead {
    fn of(theirs: &Work, ours: &Work, per_block: &Work) -> WorkAhead {
        WorkAhead {
            text: view::describe_work_ahead(view::work_ahead_in_blocks(theirs, ours, per_block)),
            total_work_log2: theirs.log2(),
        }
    }
}

/// A peer as [`shared::view`] sees it, and how its chain relates to ours.
#[derive(Clone, Debug, PartialEq)]
pub struct PeerRow {
    pub view: view::PeerView,
    pub relation: Relation,
    pub work: Option<WorkAhead>,
    pub link: Link,
    /// The direct link's last heartbeat round trip, in microseconds.
    pub rtt_us: Option<u64>,
}

/// How we reach a peer, as the peer table says it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Link {
    /// Over the relay only.
    Relayed,
    /// Over the relay only, after our attempt at a direct link did not open.
    NoPath,
    /// A direct link is being opened; meanwhile the relay carries everything.
    Connecting,
    /// Over a WebRTC data channel.
    Direct,
}

impl Link {
    /// The stable word in `data-link`, and what the table shows.
    pub fn key(self) -> &'static str {
        match self {
            Link::Relayed | Link::NoPath => "relayed",
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
    /// `rtts`: each direct link's last round trip in microseconds; `memory` takes in the peers
    /// we have at `now_ms` and gives back those that went away.
    pub fn build(
        node: &Node,
        reorgs: &[ReorgRecord],
        rtts: &BTreeMap<PeerId, u64>,
        memory: &mut PeerMemory,
        now_ms: u64,
    ) -> NodeSnapshot {
        let book = crate::address_book::current();
        NodeSnapshot::build_with(node, reorgs, rtts, &book, memory, now_ms)
    }

    /// The snapshot with names from `book` before the peers' own.
    pub fn build_with(
        node: &Node,
        reorgs: &[ReorgRecord],
        rtts: &BTreeMap<PeerId, u64>,
        book: &AddressBook,
        memory: &mut PeerMemory,
        now_ms: u64,
    ) -> NodeSnapshot {
        let tree = node.tree();
        let current = view::peer_views(node, 0, HELLO_GRACE_MS);
        memory.update(&current, now_ms);
        let remembered = memory.views();
        let names = Names::new(node, book).with_remembered(&remembered);
        let ours = tree.tip_work();
        let per_block = tree.tip_header().target.work();
        let work_of = |tip: &TipStatus| WorkAhead::of(&tip.total_work, &ours, &per_block);
        let gone_row = |seen: &view::SeenPeer| GonePeer {
            relation: relation(tree, seen.view.tip.as_ref()),
            work: seen.view.tip.as_ref().map(work_of),
            seen: seen.clone(),
        };
        let (recent, folded) = memory.gone(now_ms);
        let gone_peers: Vec<GonePeer> = recent.into_iter().map(gone_row).collect();
        let folded_peers: Vec<GonePeer> = folded.into_iter().map(gone_row).collect();
        let peers: Vec<PeerRow> = current
            .into_iter()
            .map(|peer| {
                let link =
                    node.peer(&peer.id)
                        .map_or(Link::Relayed, |info| match Link::from(info.link) {
                            Link::Relayed if info.link_never_opened => Link::NoPath,
                            link => link,
                        });
                PeerRow {
                    relation: relation(tree, peer.tip.as_ref()),
                    work: peer.tip.as_ref().map(work_of),
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
            private: view::private_view(node),
            last_release: node.last_release().cloned(),
            block_count: tree.block_count(),
            own_txs: view::own_transactions(node, &names),
            incoming: view::incoming_payments(node, &names),
            gone_peers,
            folded_peers,
            remembered,
            tree: draw_tree(tree, &peer_tips, reorgs),
            shares: shared::shares::block_shares(
                tree,
                &names,
                &node.address(),
                shared::shares::SHARE_WINDOW,
            ),
            direct_links: peers
                .iter()
                .filter(|peer| peer.link == Link::Direct)
                .count(),
            hearing: crate::connection::Hearing {
                ready: peers
                    .iter()
                    .filter(|peer| peer.view.state == view::PeerState::Ready)
                    .count(),
                awaiting: node.awaiting_hellos(now_ms, crate::connection::HELLO_WAIT_MS),
                other_network: peers
                    .iter()
                    .filter(|peer| peer.view.refusal.is_some())
                    .count(),
                theirs: peers.iter().find_map(|peer| peer.view.other_network),
            },
            peers,
        }
    }

    /// The peers as the recipient resolver takes them: those we have and those we remember.
    /// Peers that said hello on our network: the tabs this one is talking to.
    pub fn answering_peers(&self) -> usize {
        self.peers
            .iter()
            .filter(|peer| peer.address.is_some() && peer.refusal.is_none())
            .count()
    }

    pub fn peer_views(&self) -> Vec<view::PeerView> {
        self.remembered.clone()
    }
}

/// One row of the chain explorer.
pub type ChainRow = view::BlockRow;

/// Rows of the best chain, newest first, starting `skip` rows below height `top`: the height
/// of the snapshot on screen, so the explorer lists the same chain the status bar and the
/// tables show, not one the node reached after that snapshot (a syncing tab's live tip runs
/// ahead of its snapshot).
/// `remembered` are the peers that went away (`PeerMemory`), so their blocks keep their names.
pub fn chain_rows(
    node: &Node,
    remembered: &[view::PeerView],
    top: u64,
    skip: u64,
    count: usize,
) -> Vec<ChainRow> {
    let names = Names::new(node, &crate::address_book::current()).with_remembered(remembered);
    let live_skip = node.tree().tip_height().saturating_sub(top) + skip;
    view::chain_rows(node, &names, live_skip, count)
}

/// Who mined the best chain's blocks above `since_height`, up to height `top` (the snapshot's,
/// as for [`chain_rows`]), named as running text names them; see
/// [`shared::shares::block_shares_since`]. `remembered` are the peers that went away.
pub fn shares_since(
    node: &Node,
    remembered: &[view::PeerView],
    top: u64,
    since_height: u64,
) -> shared::shares::BlockShares {
    let names = Names::new(node, &crate::address_book::current()).with_remembered(remembered);
    shared::shares::block_shares_since(node.tree(), &names, &node.address(), since_height, top)
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
pub fn block_detail(
    node: &Node,
    remembered: &[view::PeerView],
    hash: &Hash,
    now_ms: u64,
) -> Option<BlockDetail> {
    let tree = node.tree();
    let block = Arc::clone(tree.block(hash)?);
    let on_best_chain = tree.is_active(hash);
    let names = Names::new(node, &crate::address_book::current()).with_remembered(remembered);
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
        let rows = chain_rows(&node.node, &[], 20, 0, 5);
        let heights: Vec<u64> = rows.iter().map(|row| row.height).collect();
        assert_eq!(heights, vec![20, 19, 18, 17, 16]);
        assert_eq!(
            chain_rows(&node.node, &[], 20, 18, 5).len(),
            3,
            "down to genesis"
        );
        assert!(chain_rows(&node.node, &[], 20, 21, 5).is_empty());
        // The snapshot on screen is at height 12: the rows start there, not at the live tip.
        let behind: Vec<u64> = chain_rows(&node.node, &[], 12, 0, 3)
            .iter()
            .map(|row| row.height)
            .collect();
        assert_eq!(behind, vec![12, 11, 10]);
        assert_eq!(rows[0].miner_name.as_deref(), Some("ours (you)"));
    }

    /// The count since a height reads only the blocks above it, up to the height on screen,
    /// and names the others' tabs beside their short address.
    #[test]
    fn shares_since_count_only_the_blocks_above_the_height() {
        let mut teacher = TestNode::new("teacher", 1);
        let mut student = TestNode::new("student", 2);
        let early = student.mine_blocks(4);
        teacher.receive(&early);
        teacher.clock_ms = student.clock_ms;
        let later = teacher.mine_blocks(3);
        student.receive(&later);
        student.clock_ms = teacher.clock_ms;
        let last = student.mine_blocks(1);
        teacher.receive(&last);
        // Heights 1-4 the student's, 5-7 the teacher's, 8 the student's. The student remembers
        // the teacher's tab by the name it said.
        let teacher_tab = view::PeerView {
            id: PeerId::from_bytes([1; 16]),
            name: Some("teacher".into()),
            address: Some(teacher.node.address()),
            state: view::PeerState::Ready,
            refusal: None,
            other_network: None,
            tip: None,
            misbehavior: 0,
            muted: false,
            banned: false,
            last_offense: None,
        };
        let rows = |shares: shared::shares::BlockShares| -> Vec<(String, u64, u64, bool)> {
            shares
                .miners
                .iter()
                .map(|share| {
                    (
                        share.label.clone(),
                        share.blocks,
                        share.percent,
                        share.is_us,
                    )
                })
                .collect()
        };
        let shares = shares_since(&student.node, &[teacher_tab], 8, 4);
        assert_eq!(shares.counted, 4);
        let short = teacher.node.address().short();
        assert_eq!(
            rows(shares),
            vec![
                (format!("teacher ({short})"), 3, 75, false),
                ("you".into(), 1, 25, true)
            ]
        );
        // A tab we know no name of is its short address.
        assert_eq!(rows(shares_since(&student.node, &[], 8, 4))[0].0, short);
        // The height on screen caps the count; nothing above the height, nothing counted.
        assert_eq!(shares_since(&student.node, &[], 6, 4).counted, 2);
        assert_eq!(shares_since(&student.node, &[], 8, 8).counted, 0);
        assert_eq!(shares_since(&student.node, &[], 8, 20).counted, 0);
        assert_eq!(
            shares_since(&student.node, &[], 50, 0).counted,
            8,
            "up to the tip"
        );
    }

    /// However long ago the height, only the newest `SINCE_MAX_BLOCKS` blocks are read.
    #[test]
    fn shares_since_read_a_bounded_number_of_blocks() {
        let mut node = TestNode::new("ours", 1);
        let max = shared::shares::SINCE_MAX_BLOCKS;
        node.mine_blocks(max as usize + 5);
        let shares = shares_since(&node.node, &[], max + 5, 0);
        assert_eq!(shares.counted, max);
        assert_eq!(shares_since(&node.node, &[], max + 5, 10).counted, max - 5);
    }

    /// The rules the detail lists are `check_block`'s, the future-time rule included (the
    /// browser's own copy of the rules left it out).
    #[test]
    fn a_block_detail_lists_every_rule_as_check_block_finds_it() {
        let mut node = TestNode::new("ours", 1);
        let blocks = node.mine_blocks(3);
        let hash = blocks[1].hash();
        let now = blocks[2].header.timestamp_ms;
        let detail = block_detail(&node.node, &[], &hash, now).unwrap();
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
        assert!(titles.contains(&"time not too far ahead"), "{titles:?}");
        assert!(detail.json.contains("\"coinbase\""));
    }
}
