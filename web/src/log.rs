//! The event log: what happened to this node, in words, from the node's events and the
//! relay's frames.

use shared::node::{NodeEvent, SyncState};
use shared::protocol::PeerId;
use shared::tx::Transaction;
use shared::view::{self, Names};
use shared::Address;

/// Entries kept; older ones fall off the end.
pub const MAX_LOG_ENTRIES: usize = 300;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogKind {
    Peer,
    Block,
    Rejected,
    Reorg,
    Misbehavior,
    Transaction,
    Sync,
    Relay,
    Info,
}

impl LogKind {
    /// The stable word in `data-kind`.
    pub fn key(self) -> &'static str {
        match self {
            LogKind::Peer => "peer",
            LogKind::Block => "block",
            LogKind::Rejected => "rejected",
            LogKind::Reorg => "reorg",
            LogKind::Misbehavior => "misbehavior",
            LogKind::Transaction => "tx",
            LogKind::Sync => "sync",
            LogKind::Relay => "relay",
            LogKind::Info => "info",
        }
    }
}

/// A run of consecutive blocks, received (from any neighbours) or mined by us, shown as one line
/// ("blocks 120–158 received from tab-0c49 and bob") instead of one line a block: in a room of
/// direct links, consecutive blocks arrive from whichever neighbour was quickest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlockRun {
    /// Who sent the first of them; `None` for blocks we mined.
    pub from: Option<PeerId>,
    /// The names of everyone who sent some of them, in the order they first did.
    pub from_names: Vec<String>,
    pub first: u64,
    pub last: u64,
    pub side_branch: bool,
}

impl BlockRun {
    pub fn describe(&self) -> String {
        let blocks = if self.first == self.last {
            format!("block {}", self.first)
        } else {
            format!("blocks {}–{}", self.first, self.last)
        };
        let place = if self.side_branch {
            " on a side branch"
        } else {
            ""
        };
        let senders = match self.from_names.as_slice() {
            [] => String::new(),
            [one] => one.clone(),
            [one, two] => format!("{one} and {two}"),
            [one, two, three] => format!("{one}, {two} and {three}"),
            [one, two, rest @ ..] => format!("{one}, {two} and {} others", rest.len()),
        };
        match &self.from {
            Some(_) => format!("{blocks} received from {senders}{place}"),
            None => format!("{blocks} mined by us{place}"),
        }
    }
    /// `next` continues this run: received (from anyone) or mined like it, same branch kind,
    /// the next height.
    fn continued_by(&self, next: &BlockRun) -> bool {
        self.from.is_some() == next.from.is_some()
            && self.side_branch == next.side_branch
            && next.first == self.last + 1
    }
    fn extend(&mut self, next: &BlockRun) {
        self.last = next.last;
        for name in &next.from_names {
            if !self.from_names.contains(name) {
                self.from_names.push(name.clone());
            }
        }
    }
}

/// The run a `BlockAccepted` starts, for grouping.
pub fn block_run(event: &NodeEvent, name: &dyn Fn(&PeerId) -> String) -> Option<BlockRun> {
    let NodeEvent::BlockAccepted {
        height,
        from,
        side_branch,
        ..
    } = event
    else {
        return None;
    };
    Some(BlockRun {
        from: from.clone(),
        from_names: from.as_ref().map(name).into_iter().collect(),
        first: *height,
        last: *height,
        side_branch: *side_branch,
    })
}

/// Adds `entry` at the front of `entries` (newest first), merging it into the newest entry when
/// both are runs of blocks and it continues that run.
pub fn push_grouped(entries: &mut std::collections::VecDeque<LogEntry>, entry: LogEntry) {
    if let (Some(front), Some(run)) = (entries.front_mut(), entry.run.as_ref()) {
        if let Some(current) = front.run.as_mut() {
            if current.continued_by(run) {
                current.extend(run);
                front.text = current.describe();
                front.at_ms = entry.at_ms;
                return;
            }
        }
    }
    entries.push_front(entry);
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogEntry {
    pub seq: u64,
    pub at_ms: u64,
    pub kind: LogKind,
    pub text: String,
    /// Set for a block accepted, so that consecutive ones become one line.
    pub run: Option<BlockRun>,
}

/// Turns a node event into words; `None` for events too frequent to log (peer tips, tip
/// changes that are not reorgs). Blocks accepted are grouped into runs by [`push_grouped`], so
/// a sync of thousands of blocks is one line. `name` names a peer.
pub fn describe_event(
    event: &NodeEvent,
    name: &dyn Fn(&PeerId) -> String,
) -> Option<(LogKind, String)> {
    Some(match event {
        NodeEvent::TipChanged {
            height,
            reorg_depth,
            hash,
            ..
        } if *reorg_depth > 0 => (
            LogKind::Reorg,
            format!(
                "reorg: {} replaced, new tip {} at height {height}",
                shared::view::plural(*reorg_depth as u64, "block", "blocks"),
                hash.short()
            ),
        ),
        NodeEvent::TipChanged { .. } => return None,
        // One line per run of blocks (see `push_grouped`), during a sync as at any time.
        NodeEvent::BlockAccepted { .. } => (
            LogKind::Block,
            block_run(event, name)
                .expect("a block accepted makes a run")
                .describe(),
        ),
        NodeEvent::BlockRejected { hash, from, reason } => {
            let source = from
                .as_ref()
                .map_or("ours".to_string(), |peer| format!("from {}", name(peer)));
            (
                LogKind::Rejected,
                format!("block {} ({source}) rejected: {reason}", hash.short()),
            )
        }
        NodeEvent::PeerJoined { peer } => (
            LogKind::Peer,
            format!("peer {} joined the room", peer.short()),
        ),
        NodeEvent::PeerLeft { peer } => (LogKind::Peer, format!("{} left the room", name(peer))),
        NodeEvent::PeerHello {
            peer,
            name: peer_name,
            address,
        } => (
            LogKind::Peer,
            format!(
                "peer {} is {} (address {})",
                peer.short(),
                view::sanitize_name(peer_name),
                address.short()
            ),
        ),
        NodeEvent::PeerRefused { peer, reason } => {
            (LogKind::Peer, format!("{} refused: {reason}", name(peer)))
        }
        NodeEvent::PeerTip { .. } => return None,
        NodeEvent::PeerMisbehaved {
            peer,
            reason,
            score,
            banned,
        } => (
            LogKind::Misbehavior,
            format!(
                "{} misbehaved ({reason}); score {score}{}",
                name(peer),
                if *banned { ", now ignored" } else { "" }
            ),
        ),
        NodeEvent::TransactionAccepted { id, from_peer } => match from_peer {
            // A payment to us is described by `incoming_line`, from the pool.
            None => (
                LogKind::Transaction,
                format!("our transaction {} sent", id.short()),
            ),
            Some(peer) => (
                LogKind::Transaction,
                format!("transaction {} from {}", id.short(), name(peer)),
            ),
        },
        NodeEvent::TransactionConfirmed { id, height } => (
            LogKind::Transaction,
            format!("our transaction {} confirmed in block {height}", id.short()),
        ),
        NodeEvent::TransactionDropped { id, reason } => (
            LogKind::Transaction,
            format!("our transaction {} dropped: {reason}", id.short()),
        ),
        NodeEvent::SyncChanged(SyncState::Synced) => (LogKind::Sync, "in sync".into()),
        NodeEvent::SyncChanged(SyncState::Syncing { target_height }) => (
            LogKind::Sync,
            format!("catching up to height {target_height}"),
        ),
        NodeEvent::LinkChanged { peer, link } => (
            LogKind::Peer,
            if link.is_direct() {
                format!("direct link to {} open", name(peer))
            } else {
                format!(
                    "direct link to {} closed; the relay carries its traffic",
                    name(peer)
                )
            },
        ),
    })
}

/// The log line of a transaction a peer sent that pays us: "received 7 coins from bob
/// (3f2a9c1e), pending"; `None` when it pays someone else.
pub fn incoming_line(tx: &Transaction, us: &Address, names: &Names) -> Option<String> {
    (tx.to == *us && tx.sender() != *us).then(|| {
        format!(
            "received {} from {}, pending",
            view::plural(tx.amount, "coin", "coins"),
            names.label(&tx.sender())
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::Hash;
    use std::collections::VecDeque;

    fn accepted(height: u64, from: Option<u8>, side_branch: bool) -> NodeEvent {
        NodeEvent::BlockAccepted {
            hash: Hash::ZERO,
            height,
            from: from.map(|byte| PeerId::from_bytes([byte; 16])),
            side_branch,
        }
    }

    fn push(entries: &mut VecDeque<LogEntry>, event: NodeEvent, at_ms: u64) {
        let name = |peer: &PeerId| format!("tab-{}", &peer.short()[..4]);
        let (kind, text) = describe_event(&event, &name).expect("blocks are logged");
        let entry = LogEntry {
            seq: at_ms,
            at_ms,
            kind,
            text,
            run: block_run(&event, &name),
        };
        push_grouped(entries, entry);
    }

    #[test]
    fn a_peers_name_reaches_the_log_cleaned_and_beside_its_address() {
        let event = NodeEvent::PeerHello {
            peer: PeerId::from_bytes([7; 16]),
            name: "evil\u{202e}gnp.exe\u{1b}[2J".into(),
            address: Address([9; 20]),
        };
        let name = |peer: &PeerId| format!("peer {}", peer.short());
        let (_, text) = describe_event(&event, &name).unwrap();
        assert!(
            !text.contains('\u{202e}') && !text.contains('\u{1b}'),
            "{text:?}"
        );
        assert!(text.contains("evilgnp.exe"), "{text}");
        assert!(text.ends_with(&format!("(address {})", Address([9; 20]).short())));
    }

    #[test]
    fn consecutive_blocks_from_one_source_are_one_line() {
        let mut entries = VecDeque::new();
        for height in 120..=158 {
            push(&mut entries, accepted(height, Some(0x0c), false), height);
        }
        assert_eq!(entries.len(), 1);
        assert_eq!(entries[0].text, "blocks 120–158 received from tab-0c0c");
        assert_eq!(
            entries[0].at_ms, 158,
            "the line carries the time of its last block"
        );
        // Another neighbour continues the run (issue 29: 16 lines for 28 blocks from two
        // neighbours); our own blocks, a side branch, a gap each start a new line.
        push(&mut entries, accepted(159, Some(0x0d), false), 159);
        push(&mut entries, accepted(160, Some(0x0c), false), 160);
        push(&mut entries, accepted(161, None, false), 161);
        push(&mut entries, accepted(162, None, false), 162);
        push(&mut entries, accepted(162, Some(0x0d), true), 163);
        push(&mut entries, accepted(170, Some(0x0d), true), 164);
        let texts: Vec<&str> = entries.iter().map(|entry| entry.text.as_str()).collect();
        assert_eq!(
            texts,
            [
                "block 170 received from tab-0d0d on a side branch",
                "block 162 received from tab-0d0d on a side branch",
                "blocks 161–162 mined by us",
                "blocks 120–160 received from tab-0c0c and tab-0d0d",
            ]
        );
    }

    #[test]
    fn a_run_from_many_neighbours_names_two_and_counts_the_rest() {
        let mut entries = VecDeque::new();
        for (height, from) in (1..=6).zip([1u8, 2, 3, 1, 4, 5]) {
            push(&mut entries, accepted(height, Some(from), false), height);
        }
        assert_eq!(entries.len(), 1);
        assert_eq!(
            entries[0].text,
            "blocks 1–6 received from tab-0101, tab-0202 and 3 others"
        );
    }

    #[test]
    fn a_reorg_line_counts_its_blocks_in_words() {
        let name = |peer: &PeerId| peer.short().to_string();
        let event = |depth| NodeEvent::TipChanged {
            hash: Hash::ZERO,
            height: 9,
            reorg_depth: depth,
            disconnected: Vec::new(),
            connected: Vec::new(),
        };
        let text = |depth| describe_event(&event(depth), &name).unwrap().1;
        assert!(
            text(1).starts_with("reorg: 1 block replaced"),
            "{}",
            text(1)
        );
        assert!(
            text(3).starts_with("reorg: 3 blocks replaced"),
            "{}",
            text(3)
        );
    }

    /// The receiver's log says what came and from whom, by name beside the address.
    #[test]
    fn a_payment_to_us_is_logged_with_its_amount_and_sender() {
        let bob = shared::Keypair::from_seed([2; 32]);
        let us = shared::Keypair::from_seed([1; 32]).address();
        let tx = Transaction::new_signed(&bob, &Hash::ZERO, us, 7, 1, 0);
        let mut pinned = shared::view::AddressBook::default();
        pinned.pin("bob", bob.address()).unwrap();
        let node = crate::test_chain::TestNode::new("us", 1);
        let names = Names::new(&node.node, &pinned);
        assert_eq!(
            incoming_line(&tx, &us, &names).as_deref(),
            Some(
                format!(
                    "received 7 coins from bob ({}), pending",
                    bob.address().short()
                )
                .as_str()
            )
        );
        let elsewhere = Transaction::new_signed(&bob, &Hash::ZERO, bob.address(), 7, 1, 0);
        assert_eq!(incoming_line(&elsewhere, &us, &names), None);
    }
}
