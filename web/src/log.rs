//! The event log: what happened to this node, in words, from the node's events and the
//! relay's frames.

use shared::node::{NodeEvent, SyncState};
use shared::protocol::PeerId;

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

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogEntry {
    pub seq: u64,
    pub at_ms: u64,
    pub kind: LogKind,
    pub text: String,
}

/// Turns a node event into words; `None` for events too frequent to log (peer tips, and
/// blocks accepted while a sync fetches them by the thousand). `name` names a peer.
pub fn describe_event(
    event: &NodeEvent,
    syncing: bool,
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
                "reorg: {reorg_depth} block(s) replaced, new tip {} at height {height}",
                hash.short()
            ),
        ),
        NodeEvent::TipChanged { .. } => return None,
        NodeEvent::BlockAccepted { .. } if syncing => return None,
        NodeEvent::BlockAccepted {
            hash,
            height,
            from,
            side_branch,
        } => {
            let place = if *side_branch {
                " on a side branch"
            } else {
                ""
            };
            let text = match from {
                Some(peer) => format!(
                    "block {height} ({}) received from {}{place}",
                    hash.short(),
                    name(peer)
                ),
                None => format!("block {height} ({}) mined by us{place}", hash.short()),
            };
            (LogKind::Block, text)
        }
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
                "peer {} is {peer_name} (address {})",
                peer.short(),
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
