//! Direct links between peers, and gossip over them.
//!
//! The relay introduces peers; a driver that can (a browser tab, over WebRTC data channels)
//! then opens direct links to a few of them, so the room keeps working when the relay stops.
//! The node decides everything here, so the simulator proves it: which peers to link to (a ring
//! over peer ids with offsets ±1, ±2, ±4, …, at most `max_direct_links`, which keeps the direct
//! graph connected and its diameter logarithmic), who initiates (the lower peer id), when an
//! attempt has failed (not up within [`LINK_OPEN_TIMEOUT_MS`]), how each message goes out
//! ([`Route`]), and gossip: a block or transaction first accepted from one peer is forwarded to
//! the direct neighbours that are not known to have it, so with the relay gone a partial mesh
//! still spreads everything. Gossip never goes over the relay: with the relay up, every peer in
//! the room already had the originator's announcement from it.
//!
//! The driver only moves bytes: it opens what [`Output::OpenLink`] names, answers offers that
//! [`Node::accepts_link`] allows, and reports [`Node::handle_link_up`] and
//! [`Node::handle_link_down`] (it watches the link with a heartbeat).

use super::output::Output;
use super::peers::PeerInfo;
use super::recent::Recent;
use super::Node;
use crate::hash::Hash;
use crate::protocol::message::NodeMessage;
use crate::protocol::PeerId;
use std::collections::BTreeSet;

/// Direct links a node keeps by default. A room of 30 must not mean 29 connections per tab: each
/// costs a peer connection, ICE checks and a heartbeat. With offsets ±1, ±2, ±4, ±8 a ring of up
/// to 256 peers is crossed in at most 16 hops.
pub const MAX_DIRECT_LINKS: usize = 8;
/// A link that is not open this long after we asked for it is abandoned; the peer stays on the
/// relay. Data channels between tabs open in 30–100 ms here; ICE over the internet takes a few
/// seconds at worst before it succeeds or fails.
pub const LINK_OPEN_TIMEOUT_MS: u64 = 10_000;
/// After a failed or lost link, the next attempt waits this long, so two tabs that cannot reach
/// each other (no route, no TURN) do not renegotiate forever.
pub const LINK_RETRY_MS: u64 = 30_000;
/// A peer whose link we closed for abuse (flooding, garbage) gets no new link for this long, in
/// either direction: the longest back-off the node's distrust of a peer's claims uses.
pub const LINK_ABUSE_BACKOFF_MS: u64 = super::sync::MAX_CLAIM_BACKOFF_MS;
/// Offers of a direct link one peer may make: an honest tab makes one per attempt, and attempts
/// are 30 s apart after a failure; a storm of offers (each one a browser peer connection) is
/// ignored past this, so it cannot use up the browser's connections.
pub const OFFERS_PER_MINUTE: u32 = 12;
/// Offers one peer may make at once (a tab that reloads, a link lost twice).
pub const OFFER_BURST: u32 = 3;

/// What to do with a peer's offer of a direct link.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OfferAnswer {
    /// Take it: close any link we held with the peer (it started over) and answer.
    Accept,
    /// Say no (`bye`): the ring does not pick the peer, we hold enough links, we are offline
    /// from the relay, or the peer abused its last link.
    Decline,
    /// Do nothing at all, not even `bye`: the peer offers faster than anyone honest.
    Ignore,
}

/// Blocks and transactions remembered per peer as known to it (sent by it or to it), so gossip
/// does not send them back. A few minutes of a busy room; forgetting one only costs a duplicate.
pub const MAX_KNOWN_INVENTORY: usize = 2_048;
/// A broadcast to more relayed peers than this goes out as one relay broadcast (which also
/// reaches the directly linked peers a second time) rather than one relay send per peer.
pub const MAX_RELAY_SENDS_PER_BROADCAST: usize = 8;

/// How one message goes out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route {
    /// Through the relay (`send` to one peer).
    Relay,
    /// Over the direct link to the peer.
    Direct,
}

/// The direct link to one peer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum LinkState {
    /// None: the peer is reached through the relay.
    #[default]
    None,
    /// We asked the driver to open it; the relay carries the traffic meanwhile.
    Connecting { since_ms: u64 },
    /// Open: everything to this peer goes over it.
    Direct { since_ms: u64 },
}

impl LinkState {
    pub fn is_direct(self) -> bool {
        matches!(self, LinkState::Direct { .. })
    }
}

/// Hashes a peer is known to have, oldest forgotten first.
#[derive(Clone, Debug, Default)]
pub(crate) struct KnownInventory(Recent<(), MAX_KNOWN_INVENTORY>);

impl KnownInventory {
    pub(crate) fn insert(&mut self, hash: Hash) {
        self.0.insert(hash, ());
    }
    pub(crate) fn contains(&self, hash: &Hash) -> bool {
        self.0.contains(hash)
    }
}

/// The peers `me` links to among `members` (which may include `me`): the members at ring
/// offsets ±1, ±2, ±4, … from `me` in peer-id order, a pair at a time while the pair fits in
/// `max`. Every member with the same view computes the same offsets, so the relation is
/// symmetric, and the ±1 pair makes the graph a connected ring whenever `max` ≥ 2.
pub fn ring_neighbours(me: &PeerId, members: &[PeerId], max: usize) -> BTreeSet<PeerId> {
    let mut ring: Vec<&PeerId> = members.iter().chain(std::iter::once(me)).collect();
    ring.sort();
    ring.dedup();
    let n = ring.len();
    let mut chosen = BTreeSet::new();
    let Some(index) = ring.iter().position(|id| *id == me) else {
        return chosen;
    };
    let mut offset = 1;
    while offset < n {
        let pair = [ring[(index + offset) % n], ring[(index + n - offset) % n]];
        let new: BTreeSet<&PeerId> = pair
            .into_iter()
            .filter(|id| !chosen.contains(*id))
            .collect();
        if chosen.len() + new.len() > max {
            break;
        }
        chosen.extend(new.into_iter().cloned());
        offset *= 2;
    }
    chosen
}

impl Node {
    // ---- getters ----

    /// Whether we are connected to the relay (its welcome came and it has not dropped since).
    pub fn relay_connected(&self) -> bool {
        self.relay_connected
    }
    /// Our peer id in the room, from the relay's welcome.
    pub fn own_peer_id(&self) -> Option<&PeerId> {
        self.own_id.as_ref()
    }
    pub fn max_direct_links(&self) -> usize {
        self.max_direct_links
    }
    /// Peers we have an open direct link to.
    pub fn direct_link_count(&self) -> usize {
        self.peers
            .values()
            .filter(|peer| peer.link.is_direct())
            .count()
    }
    /// An offer for a direct link arrived from `peer`: whether to answer it. Only from a peer
    /// that finished its hello, said it can link, and is one we want or we have room for.
    pub fn accepts_link(&self, peer: &PeerId) -> bool {
        let Some(info) = self.peers.get(peer) else {
            return false;
        };
        self.max_direct_links > 0
            && self.relay_connected
            && info.usable_for_links()
            && info
                .link_refused_until_ms
                .is_none_or(|until| self.now_ms >= until)
            && (self.wanted_links().contains(peer)
                || self.direct_link_count() < self.max_direct_links)
    }

    /// What to do with `peer`'s offer of a direct link at `now_ms`. The driver asks before it
    /// touches any link of the peer's: an ignored offer costs nothing.
    pub fn answer_offer(&mut self, peer: &PeerId, now_ms: u64) -> OfferAnswer {
        self.advance_clock(now_ms);
        let Some(info) = self.peers.get_mut(peer) else {
            return OfferAnswer::Decline;
        };
        if !info.offers.take(now_ms) {
            return OfferAnswer::Ignore;
        }
        if self.accepts_link(peer) {
            OfferAnswer::Accept
        } else {
            OfferAnswer::Decline
        }
    }

    /// The peers the ring says we link to, among those that can link.
    pub fn wanted_links(&self) -> BTreeSet<PeerId> {
        let Some(me) = &self.own_id else {
            return BTreeSet::new();
        };
        if self.max_direct_links == 0 {
            return BTreeSet::new();
        }
        let members: Vec<PeerId> = self
            .peers
            .values()
            .filter(|peer| peer.usable_for_links())
            .map(|peer| peer.id.clone())
            .collect();
        ring_neighbours(me, &members, self.max_direct_links)
    }

    // ---- what the driver reports ----

    /// We are in the relay's room as `me` (called by [`Node::handle_welcome`], which then
    /// takes the welcome's peers).
    pub(crate) fn handle_relay_connected(&mut self, me: PeerId, now_ms: u64) {
        self.advance_clock(now_ms);
        self.relay_connected = true;
        self.own_id = Some(me);
        // Our hellos tell the room our tip: the quiet-time status (see `QUIET_STATUS_INTERVALS`)
        // counts from now, or it would go out at once, ahead of the hellos.
        self.last_announcement_ms = now_ms;
        // A new join: a few pools are asked for again (see `ask_wanted_mempools`).
        self.mempools_asked = 0;
        self.update_links(now_ms);
    }

    /// The direct link to `peer` is open (whichever side opened it).
    pub fn handle_link_up(&mut self, peer: &PeerId, now_ms: u64) {
        self.advance_clock(now_ms);
        if self.max_direct_links == 0 {
            self.close_link(peer, now_ms);
            return;
        }
        if !self.peers.contains_key(peer) {
            // WebRTC signaling went through the relay, so we normally know the peer; if its join
            // has not reached us yet, or a link with no relay at all (tabs of one browser)
            // introduces it, our hello goes over the link: the relay may not know the peer.
            self.add_peer(peer.clone(), LinkState::Direct { since_ms: now_ms }, now_ms);
            if let Some(info) = self.peers.get_mut(peer) {
                info.in_room = self.relay_connected;
            }
        }
        let already_direct = self
            .peers
            .get(peer)
            .is_some_and(|info| info.link.is_direct());
        let others = self.direct_link_count() - usize::from(already_direct);
        let over_bound = others >= self.max_direct_links && !self.wanted_links().contains(peer);
        let Some(info) = self.peers.get_mut(peer) else {
            self.push(Output::CloseLink { peer: peer.clone() });
            return;
        };
        if over_bound || info.banned {
            info.link = LinkState::None;
            self.close_link(peer, now_ms);
            return;
        }
        info.link = LinkState::Direct { since_ms: now_ms };
        info.link_retry_at_ms = None;
        info.link_never_opened = false;
        let link = info.link;
        self.event(super::NodeEvent::LinkChanged {
            peer: peer.clone(),
            link,
        });
        // Links that were wanted when they were asked for may not be any more (the room grew):
        // beyond the bound, those go.
        self.update_links(now_ms);
    }

    /// The direct link to `peer` closed, failed or went silent. The peer falls back to the
    /// relay if it is in the room there, else it is gone. What was asked over the dead link is
    /// asked again at once.
    pub fn handle_link_down(&mut self, peer: &PeerId, now_ms: u64) {
        self.advance_clock(now_ms);
        let Some(info) = self.peers.get_mut(peer) else {
            return;
        };
        if info.link == LinkState::None {
            return;
        }
        info.link = LinkState::None;
        info.link_retry_at_ms = Some(now_ms + LINK_RETRY_MS);
        let in_room = info.in_room && self.relay_connected;
        self.event(super::NodeEvent::LinkChanged {
            peer: peer.clone(),
            link: LinkState::None,
        });
        if in_room {
            // What we asked over the link is gone; what we asked through the relay may still
            // be answered: asked again, and a late answer is forgiven.
            self.on_unanswered(peer, now_ms);
        } else {
            self.remove_peer(peer, now_ms);
        }
        self.update_links(now_ms);
    }

    /// The driver closed the link to `peer` because the peer broke its rules (`why`: it flooded
    /// past the link's inbound budget, or sent what is not a link frame). The peer is charged
    /// ([`Offense::LinkAbuse`]), falls back to the relay like any lost link, and no new link is
    /// taken from it or offered to it for [`LINK_ABUSE_BACKOFF_MS`].
    pub fn handle_link_abuse(&mut self, peer: &PeerId, why: &str, now_ms: u64) {
        self.advance_clock(now_ms);
        self.penalize(peer, super::peers::Offense::LinkAbuse(why.to_owned()));
        self.handle_link_down(peer, now_ms);
        if let Some(info) = self.peers.get_mut(peer) {
            let until = now_ms + LINK_ABUSE_BACKOFF_MS;
            info.link_retry_at_ms = Some(until);
            info.link_refused_until_ms = Some(until);
        }
    }

    // ---- inside the node ----

    /// Closes our side of the link to `peer`. It may have answered us over that link before it
    /// learns of the close, and those answers are lost: what we asked it is asked again,
    /// uncharged (see `on_unanswered`).
    fn close_link(&mut self, peer: &PeerId, now_ms: u64) {
        self.push(Output::CloseLink { peer: peer.clone() });
        if self.peers.contains_key(peer) {
            self.on_unanswered(peer, now_ms);
        }
    }

    /// Opens the links the ring wants (we initiate toward higher ids), gives up on attempts that
    /// took too long, and closes links we do not want once we hold more than the bound.
    pub(crate) fn update_links(&mut self, now_ms: u64) {
        let timed_out: Vec<PeerId> = self
            .peers
            .values()
            .filter(|peer| {
                matches!(peer.link, LinkState::Connecting { since_ms }
                    if now_ms >= since_ms + LINK_OPEN_TIMEOUT_MS)
            })
            .map(|peer| peer.id.clone())
            .collect();
        for peer in timed_out {
            if let Some(info) = self.peers.get_mut(&peer) {
                info.link = LinkState::None;
                info.link_retry_at_ms = Some(now_ms + LINK_RETRY_MS);
                info.link_never_opened = true;
            }
            self.close_link(&peer, now_ms);
        }
        if !self.relay_connected || self.max_direct_links == 0 {
            // Without the relay there is no signaling: the links we have are all we get.
            return;
        }
        let Some(me) = self.own_id.clone() else {
            return;
        };
        let wanted = self.wanted_links();
        for peer in &wanted {
            let Some(info) = self.peers.get_mut(peer) else {
                continue;
            };
            let retry_due = info.link_retry_at_ms.is_none_or(|at| now_ms >= at);
            if info.link == LinkState::None && me < *peer && retry_due {
                info.link = LinkState::Connecting { since_ms: now_ms };
                info.link_retry_at_ms = None;
                self.push(Output::OpenLink { peer: peer.clone() });
            }
        }
        let held = self
            .peers
            .values()
            .filter(|peer| peer.link != LinkState::None)
            .count();
        if held > self.max_direct_links {
            let surplus: Vec<PeerId> = self
                .peers
                .values()
                .filter(|peer| peer.link != LinkState::None && !wanted.contains(&peer.id))
                .map(|peer| peer.id.clone())
                .take(held - self.max_direct_links)
                .collect();
            for peer in surplus {
                if let Some(info) = self.peers.get_mut(&peer) {
                    info.link = LinkState::None;
                }
                self.close_link(&peer, now_ms);
                self.event(super::NodeEvent::LinkChanged {
                    peer: peer.clone(),
                    link: LinkState::None,
                });
                if !self.peers.get(&peer).is_some_and(|info| info.in_room) {
                    self.remove_peer(&peer, now_ms);
                }
            }
        }
    }

    /// The next instant a link attempt times out or may be retried.
    pub(crate) fn next_link_deadline(&self) -> Option<u64> {
        let timeouts = self.peers.values().filter_map(|peer| match peer.link {
            LinkState::Connecting { since_ms } => Some(since_ms + LINK_OPEN_TIMEOUT_MS),
            _ => None,
        });
        let retries = if self.relay_connected {
            let wanted = self.wanted_links();
            self.peers
                .values()
                .filter(|peer| peer.link == LinkState::None && wanted.contains(&peer.id))
                .filter_map(|peer| peer.link_retry_at_ms)
                .collect::<Vec<_>>()
        } else {
            Vec::new()
        };
        timeouts.chain(retries).min()
    }

    /// How a message to `to` goes out now, if it can.
    pub(crate) fn route_to(&self, to: &PeerInfo) -> Option<Route> {
        if to.link.is_direct() {
            Some(Route::Direct)
        } else if self.relay_connected && to.in_room {
            Some(Route::Relay)
        } else {
            None
        }
    }

    /// Forwards a block or transaction first accepted from `from` to the direct neighbours not
    /// known to have it.
    pub(crate) fn gossip(&mut self, hash: Hash, from: &PeerId, message: &NodeMessage) {
        let targets: Vec<PeerId> = self
            .peers
            .values()
            .filter(|peer| {
                peer.link.is_direct()
                    && &peer.id != from
                    && peer.usable()
                    && !peer.known.contains(&hash)
            })
            .map(|peer| peer.id.clone())
            .collect();
        if targets.is_empty() {
            return;
        }
        let payload = message.encode();
        for to in targets {
            if let Some(info) = self.peers.get_mut(&to) {
                info.known.insert(hash);
            }
            self.push(Output::Send {
                to,
                payload: payload.clone(),
                route: Route::Direct,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(count: u8) -> Vec<PeerId> {
        (0..count)
            .map(|i| {
                let mut bytes = [0u8; 16];
                bytes[0] = i.wrapping_mul(37);
                bytes[1] = i;
                PeerId::from_bytes(bytes)
            })
            .collect()
    }

    #[test]
    fn the_ring_is_symmetric_bounded_and_connected() {
        for count in 1..=40u8 {
            let members = ids(count);
            for max in [1usize, 2, 3, 4, 8] {
                let chosen: Vec<BTreeSet<PeerId>> = members
                    .iter()
                    .map(|me| ring_neighbours(me, &members, max))
                    .collect();
                for (a, neighbours) in members.iter().zip(&chosen) {
                    assert!(neighbours.len() <= max, "{count} members, max {max}");
                    assert!(!neighbours.contains(a), "never itself");
                    for b in neighbours {
                        let b_index = members.iter().position(|id| id == b).unwrap();
                        assert!(
                            chosen[b_index].contains(a),
                            "{count} members, max {max}: {a:?} wants {b:?} but not back"
                        );
                    }
                }
                if max >= 2 {
                    // Walk the graph from the first member: everyone is reached.
                    let mut seen = BTreeSet::from([members[0].clone()]);
                    let mut frontier = vec![0usize];
                    while let Some(at) = frontier.pop() {
                        for next in &chosen[at] {
                            if seen.insert(next.clone()) {
                                frontier.push(members.iter().position(|id| id == next).unwrap());
                            }
                        }
                    }
                    assert_eq!(seen.len(), members.len(), "{count} members, max {max}");
                }
            }
        }
    }

    #[test]
    fn known_inventory_forgets_the_oldest_beyond_its_bound() {
        let mut known = KnownInventory::default();
        let hash = |i: usize| Hash::digest(&[&i.to_be_bytes()]);
        for i in 0..MAX_KNOWN_INVENTORY + 3 {
            known.insert(hash(i));
        }
        assert!(!known.contains(&hash(0)));
        assert!(!known.contains(&hash(2)));
        assert!(known.contains(&hash(3)));
        assert!(known.contains(&hash(MAX_KNOWN_INVENTORY + 2)));
        assert_eq!(known.0.len(), MAX_KNOWN_INVENTORY);
    }
}
