//! Peers as people see them: each with its state and name, and the memory of peers that went
//! away (shown a while, then folded, then forgotten).

use super::*;

// ---- peers ----

/// Where a peer stands with us.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PeerState {
    /// Joined, no hello yet.
    Pending,
    /// No hello within the grace period the driver allows.
    Silent,
    /// Said hello on our network.
    Ready,
    /// Another network or protocol version.
    Refused,
    /// Dropped for misbehaviour.
    Banned,
    /// Muted by the user.
    Muted,
}

impl PeerState {
    pub fn key(self) -> &'static str {
        match self {
            PeerState::Pending => "pending",
            PeerState::Silent => "silent",
            PeerState::Ready => "ready",
            PeerState::Refused => "refused",
            PeerState::Banned => "banned",
            PeerState::Muted => "muted",
        }
    }
    /// Whether its name may be used to pay it: it said hello on our network and is not banned.
    pub(super) fn can_be_paid_by_name(self) -> bool {
        matches!(self, PeerState::Ready | PeerState::Muted)
    }
}

impl fmt::Display for PeerState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.key())
    }
}

/// One peer as people see it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PeerView {
    pub id: PeerId,
    /// Its hello name, sanitized; `None` before the hello.
    pub name: Option<String>,
    pub address: Option<Address>,
    pub state: PeerState,
    /// Why the handshake failed, when it did.
    pub refusal: Option<String>,
    /// The known network it is on when that is not ours (the `?net=` name).
    pub other_network: Option<&'static str>,
    /// The tip it last claimed.
    pub tip: Option<TipStatus>,
    pub misbehavior: u32,
    pub muted: bool,
    pub banned: bool,
    pub last_offense: Option<String>,
}

impl PeerView {
    /// Its name beside its address, or "peer 1a2b3c4d" before its hello.
    pub fn label(&self) -> String {
        match (&self.name, &self.address) {
            (Some(name), Some(address)) => labelled(name, address),
            (Some(name), None) => name.clone(),
            _ => format!("peer {}", self.id.short()),
        }
    }
}

/// `peer` as people see it at `now_ms`; a peer without a hello for more than `hello_grace_ms`
/// after joining is silent.
pub fn peer_view(peer: &PeerInfo, now_ms: u64, hello_grace_ms: u64) -> PeerView {
    let silent = now_ms.saturating_sub(peer.joined_at_ms) > hello_grace_ms;
    let (state, refusal) = match &peer.handshake {
        _ if peer.banned => (PeerState::Banned, None),
        Handshake::Refused(reason) => (PeerState::Refused, Some(reason.clone())),
        _ if peer.muted => (PeerState::Muted, None),
        Handshake::Pending if silent => (PeerState::Silent, None),
        Handshake::Pending => (PeerState::Pending, None),
        Handshake::Done => (PeerState::Ready, None),
    };
    PeerView {
        id: peer.id.clone(),
        name: peer
            .name
            .as_deref()
            .map(sanitize_name)
            .filter(|name| !name.is_empty()),
        address: peer.address,
        state,
        refusal,
        other_network: peer.other_network,
        tip: peer.tip,
        misbehavior: peer.misbehavior,
        muted: peer.muted,
        banned: peer.banned,
        last_offense: peer.last_offense.clone(),
    }
}

pub fn peer_views(node: &Node, now_ms: u64, hello_grace_ms: u64) -> Vec<PeerView> {
    node.peers()
        .map(|peer| peer_view(peer, now_ms, hello_grace_ms))
        .collect()
}

// ---- peers that went away ----

/// Peers remembered after they left (or after we went offline), so a partition is visible from
/// both sides and their names stay payable. A classroom room holds a few dozen tabs.
pub const MAX_REMEMBERED_PEERS: usize = 64;
/// A peer gone longer than this folds into one line of the compare table ("3 tabs left in the
/// last minutes"), so a class that reloads often does not fill the projected table with grey
/// rows (issue 29). The rows stay one click away.
pub const GONE_FOLD_MS: u64 = 60_000;

/// A peer as last seen.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SeenPeer {
    pub view: PeerView,
    /// When it was last among our peers.
    pub last_seen_ms: u64,
    /// Among our peers now.
    pub present: bool,
}

impl SeenPeer {
    /// "here", or "seen 12 s ago" / "seen 3 min ago".
    pub fn seen(&self, now_ms: u64) -> String {
        if self.present {
            return "here".into();
        }
        let seconds = now_ms.saturating_sub(self.last_seen_ms) / 1_000;
        match seconds {
            0..=59 => format!("seen {seconds} s ago"),
            60..=3_599 => format!("seen {} min ago", seconds / 60),
            _ => format!("seen {} h ago", seconds / 3_600),
        }
    }
}

/// The peers we have, and the last state of those we had (at most [`MAX_REMEMBERED_PEERS`]
/// gone ones, the longest gone forgotten first). A peer that said hello is remembered by its
/// address too: when it comes back under a new peer id, the old entry goes.
#[derive(Clone, Debug, Default)]
pub struct PeerMemory {
    peers: BTreeMap<PeerId, SeenPeer>,
}

impl PeerMemory {
    /// Takes in the peers we have now.
    pub fn update(&mut self, current: &[PeerView], now_ms: u64) {
        let here: BTreeMap<&PeerId, &PeerView> =
            current.iter().map(|peer| (&peer.id, peer)).collect();
        let addresses_here: Vec<Address> = current.iter().filter_map(|peer| peer.address).collect();
        // A peer that comes back under a new id (a reloaded tab) replaces its old row; one that
        // never said hello (no address: another network, or gone before its hello) is not
        // remembered once gone: there is nothing to show of it or to pay.
        self.peers.retain(|id, seen| {
            here.contains_key(id)
                || seen
                    .view
                    .address
                    .is_some_and(|a| !addresses_here.contains(&a))
        });
        for seen in self.peers.values_mut() {
            seen.present = false;
        }
        for peer in current {
            self.peers.insert(
                peer.id.clone(),
                SeenPeer {
                    view: peer.clone(),
                    last_seen_ms: now_ms,
                    present: true,
                },
            );
        }
        let gone = self.peers.values().filter(|seen| !seen.present).count();
        if gone > MAX_REMEMBERED_PEERS {
            let mut oldest: Vec<(u64, PeerId)> = self
                .peers
                .values()
                .filter(|seen| !seen.present)
                .map(|seen| (seen.last_seen_ms, seen.view.id.clone()))
                .collect();
            oldest.sort();
            for (_, id) in oldest.into_iter().take(gone - MAX_REMEMBERED_PEERS) {
                self.peers.remove(&id);
            }
        }
    }
    /// Present peers first (in id order), then the gone ones, most recently seen first.
    pub fn rows(&self) -> Vec<&SeenPeer> {
        let mut rows: Vec<&SeenPeer> = self.peers.values().collect();
        rows.sort_by_key(|seen| (!seen.present, std::cmp::Reverse(seen.last_seen_ms)));
        rows
    }
    /// The gone peers, most recently seen first, split into those gone for less than
    /// [`GONE_FOLD_MS`] (a row each) and the rest (folded into one line).
    pub fn gone(&self, now_ms: u64) -> (Vec<&SeenPeer>, Vec<&SeenPeer>) {
        self.rows()
            .into_iter()
            .filter(|seen| !seen.present)
            .partition(|seen| now_ms.saturating_sub(seen.last_seen_ms) < GONE_FOLD_MS)
    }

    /// Every remembered peer's view, for the recipient resolver: a peer that went away can
    /// still be paid by the name it said.
    pub fn views(&self) -> Vec<PeerView> {
        self.peers.values().map(|seen| seen.view.clone()).collect()
    }
}
