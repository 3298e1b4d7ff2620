//! Headers-first sync that no single peer can stall.
//!
//! A peer's `status` (or `hello`) is a *claim*: "my best chain ends at this hash with this much
//! work". Every peer whose claim beats our tip is asked for headers at once, in parallel; no peer
//! leads alone, so a liar that never answers holds up nothing. Headers from each peer are kept
//! per peer (linked, with proof of work) until their chain has more work than ours; only then
//! are its blocks fetched, so a peer that serves a lighter chain costs us headers, never blocks.
//! Blocks are fetched from every peer that showed them, at most [`MAX_BLOCKS_PER_REQUEST`] a
//! request, each block in flight from one peer at a time, at most [`MAX_BLOCKS_IN_FLIGHT`] in
//! all and [`MAX_BLOCKS_IN_FLIGHT_PER_PEER`] from one peer: when one peer stalls, the window
//! moves on with the others and the stalled blocks go to the next peer that has them.
//!
//! A peer that fails to deliver what its claim implies (no headers in time, headers that never
//! reach the claimed work, no blocks in time, empty `blocks` replies) is *distrusted for that
//! claim*: ignored until it announces another tip, and its next claim is acted on only after a
//! back-off that doubles with each failure, while the penalty doubles too. A claimed tip we
//! already hold is checked against the work we know for it.

use super::peers::{Offense, PeerInfo};
use super::{Node, NodeEvent};
use crate::block::BlockHeader;
use crate::hash::Hash;
use crate::mining::meets_target;
use crate::protocol::message::{
    NodeMessage, TipStatus, MAX_BLOCKS_PER_REQUEST, MAX_HEADERS_PER_MESSAGE, MAX_LOCATOR_HASHES,
};
use crate::protocol::PeerId;
use crate::work::Work;
use std::collections::{HashMap, VecDeque};

pub use super::output::SyncState;

/// Blocks in flight from all peers together: the download window. Blocks that arrive before
/// their parent wait in the orphan pool, which holds 256 (`chain::MAX_ORPHANS`).
pub const MAX_BLOCKS_IN_FLIGHT: usize = 256;
/// Blocks in flight from one peer: two requests, enough to hide a round trip, and half the
/// window, so one stalling peer never holds all of it.
pub const MAX_BLOCKS_IN_FLIGHT_PER_PEER: usize = 2 * MAX_BLOCKS_PER_REQUEST;
/// A request (headers or blocks) not answered within this time has stalled.
pub const REQUEST_TIMEOUT_MS: u64 = 15_000;
/// Peers that download one claimed tip at once (its headers, then its blocks). One, so a late
/// joiner in a room where everyone has the same chain gets each header and block once; another
/// is asked only while every source of that tip has stalled (see [`SOURCE_STALL_MS`]), so a
/// staller delays the download by that long, not by a request timeout. Peers that claim other
/// tips are asked for theirs as before.
pub const HEADER_SOURCES_PER_TIP: usize = 1;
/// A source whose oldest unanswered request, and whose last progress (blocks we asked for, or
/// new headers), are both this long ago no longer counts as downloading its tip: the next peer
/// that claims the tip is asked too.
/// Not an offence (it may only be slow: a phone, 500 headers through a relay); the request
/// timeout judges it as before.
pub const SOURCE_STALL_MS: u64 = 3_000;
/// A block request older than this stalls the download window when other peers are meanwhile
/// delivering, or wait for room in the window: its peer is distrusted at once and its blocks
/// go to the others (Bitcoin Core's stall detection does the same at 2 s). 5 s leaves a slow
/// honest link (a tab on a phone, 64 blocks through a relay) time to answer.
pub const WINDOW_STALL_MS: u64 = 5_000;
/// While syncing, our `status` goes out at most this often (the tip moves with every reply and
/// nobody needs each step); in sync, every tip change is announced at once. Either way it goes
/// out: the deadline is part of `poll_timeout`.
pub const STATUS_INTERVAL_WHILE_SYNCING_MS: u64 = 1_000;
/// Headers kept per peer while their chain does not yet beat ours (four full replies, 256 KB
/// per peer in memory: 96 bytes of header and 32 of hash each). A peer whose chain needs more than that to beat ours has its
/// blocks fetched anyway, in order, as far as they go.
pub const MAX_PENDING_HEADERS: usize = 4 * MAX_HEADERS_PER_MESSAGE;
/// Fresh `get_headers` to one peer (not the continuation of a full reply) at most this often:
/// a peer cannot draw a request loop out of us by re-announcing or by sending orphans.
pub const HEADERS_REQUEST_INTERVAL_MS: u64 = 1_000;
/// The longest a distrusted peer waits before a new claim of its is acted on.
pub const MAX_CLAIM_BACKOFF_MS: u64 = 8 * REQUEST_TIMEOUT_MS;
/// A peer that told us it is busy (see `BUSY_ERROR_CODE`) is asked again after this long;
/// meanwhile the others carry the sync. Long enough that a paused peer is not asked many times
/// a second, short enough that a brief pause costs little.
pub const BUSY_RETRY_MS: u64 = 2_000;
/// Side-branch blocks whose branch has less work than our tip minus this many blocks' worth
/// (at our tip's target) are not checked: they cannot become our chain soon, and checking
/// costs signatures. Deep enough for any partition a class makes on purpose.
pub const SIDE_BRANCH_WINDOW_BLOCKS: u64 = 100;

/// One block request: the hashes asked for and when.
#[derive(Clone, Debug)]
struct BlockRequest {
    hashes: Vec<Hash>,
    sent_ms: u64,
}

/// Sync state of one peer.
#[derive(Clone, Debug, Default)]
pub(crate) struct PeerSync {
    headers_asked_ms: Option<u64>,
    last_headers_ask_ms: Option<u64>,
    /// A fresh headers request was due but paced; it goes out at this time.
    headers_retry_ms: Option<u64>,
    /// Headers it showed us that are not in our tree, linked to our tree, oldest first.
    headers: VecDeque<(Hash, BlockHeader)>,
    /// Total work at the end of `headers`.
    headers_work: Work,
    /// Its last `headers` reply was full: there may be more after the last header it sent.
    more_after: Option<Hash>,
    /// Block requests not yet answered, oldest first (replies come in order).
    requests: VecDeque<BlockRequest>,
    /// The claimed tip it failed to back; its claims of this tip are ignored.
    pub(crate) distrusted: Option<Hash>,
    /// Claims it failed to back so far: each one doubles the next penalty and back-off.
    pub(crate) failures: u32,
    /// A new claim of a peer that failed before is acted on from this time (0: no back-off).
    trusted_again_ms: u64,
    last_failure_ms: u64,
    /// Blocks it delivered that we had asked for, and when it last did.
    delivered: u64,
    last_delivery_ms: u64,
    /// When it last moved its download on: blocks we asked for, or new headers.
    last_progress_ms: u64,
    /// The last time we lost a message of its ourselves (our driver paused, shed or backlogged):
    /// a request outstanding since then may have been answered, so its deadline is no offence.
    lost_ms: Option<u64>,
    /// Until this time, answers to requests we gave up without blame (a pause, a `busy`) may
    /// still arrive: blocks that match no request are taken without a charge, within the
    /// side-branch budget.
    forgive_until_ms: u64,
    /// It told us it is busy: nothing is asked of it before this time (see [`BUSY_RETRY_MS`]).
    busy_until_ms: u64,
}

impl PeerSync {
    fn blocks_in_flight(&self) -> usize {
        self.requests
            .iter()
            .map(|request| request.hashes.len())
            .sum()
    }
    fn idle(&self) -> bool {
        self.headers_asked_ms.is_none() && self.requests.is_empty()
    }
    /// When its oldest unanswered request went out.
    fn waiting_since(&self) -> Option<u64> {
        let oldest_request = self.requests.front().map(|request| request.sent_ms);
        [self.headers_asked_ms, oldest_request]
            .into_iter()
            .flatten()
            .min()
    }
    fn deadline(&self) -> Option<u64> {
        self.waiting_since().map(|sent| sent + REQUEST_TIMEOUT_MS)
    }
    /// It has a download under way: headers asked or held, or blocks asked.
    fn downloading(&self) -> bool {
        self.headers_asked_ms.is_some() || !self.headers.is_empty() || !self.requests.is_empty()
    }
    /// When its download counts as stalled (see [`SOURCE_STALL_MS`]), if it is waiting: that
    /// long after its oldest unanswered request, or after its last progress if that came later
    /// (requests are pipelined: the next one out was often sent before the last answer came).
    /// A source that answers each request just before its timeout stalls after 3 s, not 15.
    fn stalls_at(&self) -> Option<u64> {
        self.waiting_since()
            .map(|since| since.max(self.last_progress_ms) + SOURCE_STALL_MS)
    }
    fn stalled(&self, now_ms: u64) -> bool {
        self.stalls_at().is_some_and(|at| now_ms >= at)
    }
    /// We lost one of its messages since its oldest unanswered request went out: the answer
    /// may be what we lost, so the wait is ours, not its.
    fn excused(&self) -> bool {
        match (self.lost_ms, self.waiting_since()) {
            (Some(lost), Some(since)) => lost >= since,
            _ => false,
        }
    }
    /// Moves its request times on by `pause_ms`: a pause of ours does not run its clock.
    fn shift(&mut self, pause_ms: u64) {
        if let Some(asked) = &mut self.headers_asked_ms {
            *asked += pause_ms;
        }
        for request in &mut self.requests {
            request.sent_ms += pause_ms;
        }
    }
}

/// How a claim compares with our chain.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Claim {
    Better,
    NotBetter,
    /// A tip we hold, announced with other work than it has.
    False,
}

/// The sync of one node: per-peer download state and the blocks in flight.
#[derive(Default)]
pub(crate) struct Sync {
    pub(crate) peers: HashMap<PeerId, PeerSync>,
    /// Each requested block and the peer it was asked from.
    in_flight: HashMap<Hash, PeerId>,
    pub(crate) state: SyncState,
}

impl Sync {
    /// The next instant a sync deadline passes (a request times out or a paced request is due).
    pub(crate) fn next_deadline(&self, now_ms: u64) -> Option<u64> {
        self.peers
            .values()
            .flat_map(|peer| {
                let backoff = (peer.trusted_again_ms > 0).then_some(peer.trusted_again_ms);
                let busy = (peer.busy_until_ms > 0).then_some(peer.busy_until_ms);
                // A stall is a deadline only until it passes (it has no state of its own).
                let stall = peer.stalls_at().filter(|at| *at > now_ms);
                [peer.deadline(), peer.headers_retry_ms, backoff, busy, stall]
            })
            .flatten()
            .min()
    }
    pub(crate) fn state(&self) -> SyncState {
        self.state
    }
    /// Forgets what `peer` was asked and showed, keeping its failure record (it left the sync
    /// for now: muted, refused, banned, or it failed a claim).
    pub(crate) fn reset_peer(&mut self, peer: &PeerId) {
        let Some(state) = self.peers.get_mut(peer) else {
            return;
        };
        for request in state.requests.drain(..) {
            release_in_flight(&mut self.in_flight, peer, &request.hashes);
        }
        state.headers_asked_ms = None;
        state.headers_retry_ms = None;
        state.headers.clear();
        state.more_after = None;
    }
    pub(crate) fn remove_peer(&mut self, peer: &PeerId) {
        self.reset_peer(peer);
        self.peers.remove(peer);
    }
    /// An answer from `peer` that matches no request is one we gave up without blame.
    fn forgiven(&self, peer: &PeerId, now_ms: u64) -> bool {
        self.peers
            .get(peer)
            .is_some_and(|state| now_ms < state.forgive_until_ms)
    }
    /// We lost a message of `peer` ourselves (see [`PeerSync::lost_ms`]).
    pub(crate) fn note_lost(&mut self, peer: &PeerId, now_ms: u64) {
        if let Some(state) = self.peers.get_mut(peer) {
            state.lost_ms = Some(now_ms);
        }
    }
    /// We took no messages from `paused_ms` until `now_ms`: every request's clock moves on by
    /// the pause, and a peer whose messages we refused meanwhile counts as lost at `now_ms`, so
    /// what it was asked before is excused however the clocks moved.
    /// Returns the peers whose unanswered requests are excused that way.
    pub(crate) fn resume(&mut self, paused_ms: u64, now_ms: u64) -> Vec<PeerId> {
        let pause_ms = now_ms.saturating_sub(paused_ms);
        let mut excused = Vec::new();
        for (peer, state) in &mut self.peers {
            state.shift(pause_ms);
            if state.lost_ms.is_some_and(|lost| lost >= paused_ms) {
                state.lost_ms = Some(now_ms);
            }
            if state.excused() {
                excused.push(peer.clone());
            }
        }
        excused
    }
}

impl Node {
    pub fn sync_state(&self) -> SyncState {
        self.sync.state()
    }

    /// Blocks we have asked for and not yet received.
    pub fn blocks_in_flight(&self) -> usize {
        self.sync.in_flight.len()
    }

    fn judge_claim(&self, tip: &TipStatus) -> Claim {
        if let Some(known) = self.tree.total_work(&tip.hash) {
            return if known == tip.total_work {
                Claim::NotBetter
            } else {
                Claim::False
            };
        }
        if self.beats_our_tip(tip.total_work, &tip.hash) {
            Claim::Better
        } else {
            Claim::NotBetter
        }
    }

    /// The order of the fork choice: more work than our tip, or equal work and a lower hash.
    pub(crate) fn beats_our_tip(&self, work: Work, hash: &Hash) -> bool {
        let our_work = self.tree.tip_work();
        work > our_work || (work == our_work && *hash < self.tree.tip_hash())
    }

    /// Whether `peer`'s claim is one we act on now.
    fn claim_to_follow(&self, peer: &PeerId, now_ms: u64) -> Option<TipStatus> {
        let info = self.peers.get(peer)?;
        let tip = info.tip?;
        if !info.usable() {
            return None;
        }
        if let Some(state) = self.sync.peers.get(peer) {
            if state.distrusted == Some(tip.hash)
                || now_ms < state.trusted_again_ms
                || now_ms < state.busy_until_ms
            {
                return None;
            }
        }
        (self.judge_claim(&tip) == Claim::Better).then_some(tip)
    }

    /// `peer`'s claim, if it beats our tip and we hold off only because it told us it is busy.
    fn claim_we_wait_for(&self, peer: &PeerId, now_ms: u64) -> Option<TipStatus> {
        let info = self.peers.get(peer)?;
        let tip = info.tip?;
        let state = self.sync.peers.get(peer)?;
        let waiting = info.usable()
            && now_ms < state.busy_until_ms
            && now_ms >= state.trusted_again_ms
            && state.distrusted != Some(tip.hash);
        (waiting && self.judge_claim(&tip) == Claim::Better).then_some(tip)
    }

    /// A peer announced its tip (in `hello`, `status` or by a block).
    pub(crate) fn on_claim(&mut self, from: &PeerId, tip: TipStatus, now_ms: u64) {
        let followed = self.follow_announcements(tip);
        let mut seen = tip;
        if let Some(peer) = self.peers.get_mut(from) {
            if peer.follows_announcements {
                seen = followed;
            }
            peer.tip = Some(seen);
        }
        let state = self.sync.peers.entry(from.clone()).or_default();
        if state.distrusted.is_some_and(|hash| hash != tip.hash) {
            state.distrusted = None;
        }
        self.event(NodeEvent::PeerTip {
            peer: from.clone(),
            tip: seen,
        });
        if self.judge_claim(&tip) == Claim::False {
            self.fail_claim(from, ClaimFailure::FalseWork, now_ms);
        }
        self.maybe_sync(now_ms);
    }

    /// Asks peers whose claim beats our tip for headers (at most [`HEADER_SOURCES_PER_TIP`] per
    /// claimed tip at once), and every peer whose headers beat our tip for blocks; updates the
    /// sync state.
    pub(crate) fn maybe_sync(&mut self, now_ms: u64) {
        let peers: Vec<PeerId> = self.peers.keys().cloned().collect();
        let mut target: Option<TipStatus> = None;
        // Downloads under way and not stalled, by the tip their peer claims: a late joiner in
        // a room where everyone has one chain fetches it from one of them, not from each.
        let mut sources: HashMap<Hash, usize> = HashMap::new();
        for (peer, state) in &self.sync.peers {
            if state.downloading() && !state.stalled(now_ms) {
                if let Some(tip) = self.peers.get(peer).and_then(|info| info.tip) {
                    *sources.entry(tip.hash).or_default() += 1;
                }
            }
        }
        for peer in &peers {
            let backed = self.peers[peer]
                .tip
                .is_some_and(|tip| self.tree.total_work(&tip.hash) == Some(tip.total_work));
            if let Some(state) = self.sync.peers.get_mut(peer) {
                if state.trusted_again_ms <= now_ms {
                    state.trusted_again_ms = 0;
                }
                if state.busy_until_ms <= now_ms {
                    state.busy_until_ms = 0;
                }
                if backed && now_ms >= state.last_failure_ms + MAX_CLAIM_BACKOFF_MS {
                    // Its claims have come true for a while: its record is forgiven one failure
                    // at a time, so a liar cannot wipe it with one true claim between lies.
                    state.failures = state.failures.saturating_sub(1);
                    state.last_failure_ms = now_ms;
                }
            }
            let Some(claim) = self.claim_to_follow(peer, now_ms) else {
                // A peer ahead of us that only asked us to wait (`busy`) still has blocks for
                // us: we are syncing, not in sync, while we wait.
                if let Some(tip) = self.claim_we_wait_for(peer, now_ms) {
                    if target.is_none_or(|best| tip.total_work > best.total_work) {
                        target = Some(tip);
                    }
                }
                continue;
            };
            if target.is_none_or(|best| claim.total_work > best.total_work) {
                target = Some(claim);
            }
            let state = self.sync.peers.entry(peer.clone()).or_default();
            let asking = sources.get(&claim.hash).copied().unwrap_or(0);
            if state.idle() && state.headers.is_empty() && asking < HEADER_SOURCES_PER_TIP {
                *sources.entry(claim.hash).or_default() += 1;
                self.request_headers(peer, false, now_ms);
            }
        }
        // Peers with the best record take the free part of the window first, so blocks freed by
        // a staller go to those that deliver.
        let mut by_record: Vec<(u32, std::cmp::Reverse<u64>, PeerId)> = peers
            .iter()
            .map(|peer| {
                let state = self.sync.peers.get(peer);
                (
                    state.map_or(0, |state| state.failures),
                    std::cmp::Reverse(state.map_or(0, |state| state.delivered)),
                    peer.clone(),
                )
            })
            .collect();
        by_record.sort();
        for (_, _, peer) in &by_record {
            self.request_blocks(peer, now_ms);
        }
        let state = match target {
            Some(tip) => SyncState::Syncing {
                target_height: tip.height,
            },
            None => SyncState::Synced,
        };
        if self.sync.state != state {
            self.sync.state = state;
            self.event(NodeEvent::SyncChanged(state));
        }
        self.ask_wanted_mempools();
    }

    /// Sends `get_headers` to `peer`. A continuation follows the last header of its full reply;
    /// a fresh request starts from our best chain and is paced.
    pub(crate) fn request_headers(&mut self, peer: &PeerId, continuation: bool, now_ms: u64) {
        // While paused we would refuse the answer: asked when we resume (`maybe_sync`).
        if self.inbound_paused() || !self.peers.get(peer).is_some_and(|info| info.usable()) {
            return;
        }
        let locator_head = {
            let state = self.sync.peers.entry(peer.clone()).or_default();
            if state.headers_asked_ms.is_some() {
                return;
            }
            if now_ms < state.busy_until_ms {
                state.headers_retry_ms = Some(state.busy_until_ms);
                return;
            }
            if !continuation {
                if let Some(last) = state.last_headers_ask_ms {
                    if now_ms < last + HEADERS_REQUEST_INTERVAL_MS {
                        state.headers_retry_ms = Some(last + HEADERS_REQUEST_INTERVAL_MS);
                        return;
                    }
                }
            }
            state.headers_retry_ms = None;
            state.headers_asked_ms = Some(now_ms);
            state.last_headers_ask_ms = Some(now_ms);
            if continuation {
                state
                    .headers
                    .back()
                    .map(|(hash, _)| *hash)
                    .or(state.more_after)
            } else {
                state.headers.clear();
                state.more_after = None;
                None
            }
        };
        let mut locator = self.advertised_locator();
        if let Some(head) = locator_head {
            if locator.first() != Some(&head) {
                locator.insert(0, head);
            }
        }
        locator.truncate(MAX_LOCATOR_HASHES);
        self.send(peer, &NodeMessage::GetHeaders { locator });
    }

    /// A paced headers request whose time has come.
    pub(crate) fn retry_paced_requests(&mut self, now_ms: u64) {
        let due: Vec<PeerId> = self
            .sync
            .peers
            .iter()
            .filter(|(_, state)| state.headers_retry_ms.is_some_and(|at| at <= now_ms))
            .map(|(peer, _)| peer.clone())
            .collect();
        for peer in due {
            if let Some(state) = self.sync.peers.get_mut(&peer) {
                state.headers_retry_ms = None;
            }
            self.request_headers(&peer, false, now_ms);
        }
    }

    pub(crate) fn on_headers(&mut self, from: &PeerId, headers: Vec<BlockHeader>, now_ms: u64) {
        let asked = self
            .sync
            .peers
            .get(from)
            .is_some_and(|state| state.headers_asked_ms.is_some());
        if !asked {
            let forgiven = self.sync.forgiven(from, now_ms);
            if !forgiven {
                self.penalize(from, Offense::Unsolicited("headers"));
            }
            return;
        }
        let full = headers.len() == MAX_HEADERS_PER_MESSAGE;
        let last_sent = headers.last().map(BlockHeader::hash);
        let (base_hash, base_work) = {
            let state = &self.sync.peers[from];
            match (headers.first(), state.headers.back()) {
                (Some(first), Some((last, _))) if first.prev_hash == *last => {
                    (*last, Some(state.headers_work))
                }
                (Some(first), _) => (first.prev_hash, self.tree.total_work(&first.prev_hash)),
                (None, _) => (Hash::ZERO, None),
            }
        };
        if !headers.is_empty() {
            let base_header = match self.tree.header(&base_hash) {
                Some(header) => Some(*header),
                None => self.sync.peers[from]
                    .headers
                    .back()
                    .filter(|(hash, _)| *hash == base_hash)
                    .map(|(_, header)| *header),
            };
            let checked = match (base_header, base_work) {
                (Some(base), Some(work)) => self.check_header_chain(&base, work, &headers),
                _ => Err("the first header does not build on a block we know".into()),
            };
            let work = match checked {
                Ok(work) => work,
                Err(why) => {
                    self.sync.reset_peer(from);
                    self.penalize(from, Offense::InvalidHeaders(why));
                    self.maybe_sync(now_ms);
                    return;
                }
            };
            let state = self.sync.peers.get_mut(from).expect("asked above");
            if state.headers.back().map(|(hash, _)| *hash) != Some(base_hash) {
                state.headers.clear();
            }
            state.headers_work = work;
            state.last_progress_ms = now_ms;
            for header in headers {
                let hash = header.hash();
                if state.headers.len() < MAX_PENDING_HEADERS && !self.tree.contains(&hash) {
                    state.headers.push_back((hash, header));
                }
            }
        }
        let beats_ours = {
            let state = &self.sync.peers[from];
            state
                .headers
                .back()
                .is_some_and(|(hash, _)| self.beats_our_tip(state.headers_work, hash))
        };
        let state = self.sync.peers.get_mut(from).expect("asked above");
        state.headers_asked_ms = None;
        state.more_after = if full { last_sent } else { None };
        let window_full = state.headers.len() >= MAX_PENDING_HEADERS;
        if beats_ours || (window_full && full) {
            self.request_blocks(from, now_ms);
            return;
        }
        if full {
            self.request_headers(from, true, now_ms);
            return;
        }
        // Its chain ends here, and it does not beat ours: whatever it claimed beyond that, it
        // cannot show.
        state.headers.clear();
        let claimed_better = self
            .peers
            .get(from)
            .and_then(|peer| peer.tip)
            .is_some_and(|tip| self.judge_claim(&tip) == Claim::Better);
        if claimed_better {
            self.fail_claim(from, ClaimFailure::FalseWork, now_ms);
        }
        self.maybe_sync(now_ms);
    }

    /// Headers must follow `base` (a block we have, or the last header the peer showed us) and
    /// each other, and meet their own targets; returns the work at the last one.
    fn check_header_chain(
        &self,
        base: &BlockHeader,
        base_work: Work,
        headers: &[BlockHeader],
    ) -> Result<Work, String> {
        let mut previous_hash = base.hash();
        let mut previous_height = base.height;
        let mut work = base_work;
        for header in headers {
            if header.prev_hash != previous_hash || header.height != previous_height + 1 {
                return Err(format!("header at height {} does not link", header.height));
            }
            let easy_enough = header
                .target
                .expand()
                .is_some_and(|target| target <= self.tree.params().max_target);
            if !easy_enough || !meets_target(header) {
                return Err(format!(
                    "header at height {} lacks proof of work",
                    header.height
                ));
            }
            work = work.checked_add(header.target.work()).unwrap_or(work);
            previous_hash = header.hash();
            previous_height = header.height;
        }
        Ok(work)
    }

    /// Asks `peer` for the next blocks of the headers it showed us, within the windows.
    pub(crate) fn request_blocks(&mut self, peer: &PeerId, now_ms: u64) {
        if self.inbound_paused() || !self.peers.get(peer).is_some_and(|info| info.usable()) {
            return;
        }
        let Some(state) = self.sync.peers.get_mut(peer) else {
            return;
        };
        if now_ms < state.busy_until_ms {
            return;
        }
        // Headers whose blocks arrived are done.
        while state
            .headers
            .front()
            .is_some_and(|(hash, _)| self.tree.contains(hash))
        {
            state.headers.pop_front();
        }
        let mut requests = Vec::new();
        let mut in_flight = state.blocks_in_flight();
        let wanted: Vec<Hash> = state
            .headers
            .iter()
            .map(|(hash, _)| *hash)
            .filter(|hash| {
                !self.sync.in_flight.contains_key(hash)
                    && !arrived(&self.tree, hash)
                    && !self.tree.is_known_invalid(hash)
            })
            .collect();
        // Full requests only: a window that frees one block at a time (each block stays in
        // flight until taken) would otherwise draw one request, and one reply, per block.
        for chunk in wanted.chunks(MAX_BLOCKS_PER_REQUEST) {
            let room = MAX_BLOCKS_IN_FLIGHT_PER_PEER
                .saturating_sub(in_flight)
                .min(MAX_BLOCKS_IN_FLIGHT.saturating_sub(self.sync.in_flight.len()));
            if room < chunk.len() {
                break;
            }
            for hash in chunk {
                self.sync.in_flight.insert(*hash, peer.clone());
            }
            in_flight += chunk.len();
            requests.push(chunk.to_vec());
        }
        let state = self.sync.peers.get_mut(peer).expect("looked up above");
        let all_there = state.requests.is_empty() && requests.is_empty() && {
            state
                .headers
                .iter()
                .all(|(hash, _)| arrived(&self.tree, hash))
        };
        for hashes in &requests {
            state.requests.push_back(BlockRequest {
                hashes: hashes.clone(),
                sent_ms: now_ms,
            });
        }
        for hashes in requests {
            self.send(peer, &NodeMessage::GetBlocks { hashes });
        }
        if all_there && state_continues(&self.sync.peers[peer]) {
            self.request_headers(peer, true, now_ms);
        }
    }

    /// A `blocks` reply from `from`. It answers the outstanding request that asked for its
    /// first block (an empty reply: the oldest one). Replies come in order, but a request we
    /// gave up without blame may still be answered late: those blocks are checked like any
    /// block, uncharged, instead of being taken for the answer to a newer request.
    /// `bytes`: the size of the reply.
    pub(crate) fn on_blocks(
        &mut self,
        from: &PeerId,
        blocks: Vec<crate::Block>,
        bytes: usize,
        now_ms: u64,
    ) {
        let matching = self.sync.peers.get(from).and_then(|state| {
            let first = blocks.first().map(crate::Block::hash);
            match first {
                None => (!state.requests.is_empty()).then_some(0),
                Some(first) => state
                    .requests
                    .iter()
                    .position(|request| request.hashes.contains(&first)),
            }
        });
        let request = matching.and_then(|index| {
            let state = self.sync.peers.get_mut(from)?;
            // Requests before the one answered were skipped: the peer answers in order, so
            // they will not come (they were cut, or lost); their blocks go to others.
            let skipped: Vec<BlockRequest> = state.requests.drain(..index).collect();
            let request = state.requests.pop_front();
            for old in skipped {
                release_in_flight(&mut self.sync.in_flight, from, &old.hashes);
            }
            request
        });
        let Some(request) = request else {
            let forgiven = self.sync.forgiven(from, now_ms);
            if forgiven {
                // Not asked for any more, so like announced blocks: those that would lose to
                // our tip draw on the side-branch budget (dropped uncharged beyond it), or
                // `busy` and a late reply would be a way around that budget.
                let share = bytes / blocks.len().max(1);
                for block in blocks {
                    let hash = block.hash();
                    if !self.side_block_allowed(from, &block, &hash, share, now_ms) {
                        break;
                    }
                    self.accept_block_from(from, block, now_ms);
                    if self.peers.get(from).is_none_or(|peer| peer.banned) {
                        return;
                    }
                }
                self.maybe_sync(now_ms);
            } else {
                self.penalize(from, Offense::Unsolicited("blocks"));
            }
            return;
        };
        let asked: std::collections::HashSet<Hash> = request.hashes.iter().copied().collect();
        let mut delivered = 0;
        let mut unsolicited = false;
        for block in blocks {
            let hash = block.hash();
            if !asked.contains(&hash) {
                unsolicited = true;
                continue;
            }
            delivered += 1;
            if let Some(state) = self.sync.peers.get_mut(from) {
                state.delivered += 1;
                state.last_delivery_ms = now_ms;
                state.last_progress_ms = now_ms;
            }
            // Each block stays in flight until it is taken: taking one may move the sync on
            // (a new tip asks for more), and the rest of this reply must not be asked again.
            self.accept_block_from(from, block, now_ms);
            if self.sync.in_flight.get(&hash) == Some(from) {
                self.sync.in_flight.remove(&hash);
            }
            if self.peers.get(from).is_none_or(|peer| peer.banned) {
                release_in_flight(&mut self.sync.in_flight, from, &request.hashes);
                return;
            }
        }
        // Those it left out (a reply is cut at the frame limit) are free for the next request.
        release_in_flight(&mut self.sync.in_flight, from, &request.hashes);
        if unsolicited {
            self.penalize(from, Offense::Unsolicited("blocks"));
        }
        if delivered == 0 && !request.hashes.is_empty() {
            // It showed these blocks' headers and now cannot give a single one of them.
            self.fail_claim(from, ClaimFailure::Stalled, now_ms);
        } else {
            // Blocks it left out (a reply is cut at the frame limit) are asked for again.
            self.request_blocks(from, now_ms);
        }
        self.expire_window_stallers(now_ms);
        self.maybe_sync(now_ms);
    }

    /// Whether, while `peer`'s oldest block request (sent at `since`) is outstanding, another
    /// peer delivered blocks or waits with blocks to fetch: then `peer` holds the window up.
    fn others_progressing(&self, peer: &PeerId, since: u64) -> bool {
        self.sync.peers.iter().any(|(other, state)| {
            other != peer
                && self.peers.get(other).is_some_and(PeerInfo::usable)
                && (state.last_delivery_ms > since
                    || (state.requests.is_empty()
                        && state.headers.iter().any(|(hash, _)| {
                            !arrived(&self.tree, hash)
                                && self.sync.in_flight.get(hash) != Some(other)
                        })))
        })
    }

    /// The next instant a peer would be found stalling the window, if one is on course to.
    pub(crate) fn next_window_check(&self) -> Option<u64> {
        if self.inbound_paused() {
            return None;
        }
        self.sync
            .peers
            .iter()
            .filter_map(|(peer, state)| {
                let since = state.requests.front()?.sent_ms;
                self.others_progressing(peer, since)
                    .then_some(since + WINDOW_STALL_MS)
            })
            .min()
    }

    /// Distrusts the peers that hold the download window up (see [`WINDOW_STALL_MS`]).
    pub(crate) fn expire_window_stallers(&mut self, now_ms: u64) {
        let stallers: Vec<PeerId> = self
            .sync
            .peers
            .iter()
            .filter_map(|(peer, state)| {
                let since = state.requests.front()?.sent_ms;
                (now_ms >= since + WINDOW_STALL_MS && self.others_progressing(peer, since))
                    .then(|| peer.clone())
            })
            .collect();
        for peer in stallers {
            self.fail_or_excuse(&peer, ClaimFailure::StalledWindow, now_ms);
        }
    }

    /// Gives up requests that took longer than [`REQUEST_TIMEOUT_MS`]. While we take no
    /// messages ourselves, no deadline runs (see `Node::set_inbound_paused`).
    pub(crate) fn expire_requests(&mut self, now_ms: u64) {
        if self.inbound_paused() {
            return;
        }
        let stalled: Vec<PeerId> = self
            .sync
            .peers
            .iter()
            .filter(|(_, state)| state.deadline().is_some_and(|deadline| now_ms >= deadline))
            .map(|(peer, _)| peer.clone())
            .collect();
        for peer in stalled {
            self.fail_or_excuse(&peer, ClaimFailure::Stalled, now_ms);
        }
        self.expire_window_stallers(now_ms);
    }

    /// A stall we may have caused (we lost one of its messages since we asked) is retried
    /// without a charge; otherwise the peer failed its claim.
    fn fail_or_excuse(&mut self, peer: &PeerId, failure: ClaimFailure, now_ms: u64) {
        if self.sync.peers.get(peer).is_some_and(PeerSync::excused) {
            self.give_up_requests(peer, 0, now_ms);
        } else {
            self.fail_claim(peer, failure, now_ms);
        }
    }

    /// `peer` could not take our request (its driver paused it, or we drew more than its reply
    /// budget): its requests go to others, and it is asked again after [`BUSY_RETRY_MS`].
    pub(crate) fn on_busy(&mut self, peer: &PeerId, now_ms: u64) {
        self.give_up_requests(peer, BUSY_RETRY_MS, now_ms);
    }

    /// We take peer messages again after a pause since `paused_ms` (see
    /// `Node::set_inbound_paused`): what we may have refused the answer to is asked again now.
    pub(crate) fn resume_sync(&mut self, paused_ms: u64, now_ms: u64) {
        for peer in self.sync.resume(paused_ms, now_ms) {
            self.give_up_requests(&peer, 0, now_ms);
        }
        self.maybe_sync(now_ms);
    }

    /// What we asked `peer` may not be answered (it did not know us yet, a link went down, we
    /// muted it): asked again at once, uncharged, and a late answer is forgiven.
    pub(crate) fn on_unanswered(&mut self, peer: &PeerId, now_ms: u64) {
        self.give_up_requests(peer, 0, now_ms);
    }

    /// Gives up what `peer` was asked without blaming it; its claim is acted on again after
    /// `backoff_ms`, and late answers to what we gave up are forgiven for a while.
    fn give_up_requests(&mut self, peer: &PeerId, backoff_ms: u64, now_ms: u64) {
        self.sync.reset_peer(peer);
        if let Some(state) = self.sync.peers.get_mut(peer) {
            state.forgive_until_ms = now_ms + REQUEST_TIMEOUT_MS;
            state.busy_until_ms = state.busy_until_ms.max(now_ms + backoff_ms);
        }
        self.maybe_sync(now_ms);
    }

    /// `peer` did not back its claim: distrust the claim, back off and penalise, and let the
    /// others carry the sync.
    fn fail_claim(&mut self, peer: &PeerId, failure: ClaimFailure, now_ms: u64) {
        let claimed = self.peers.get(peer).and_then(|info| info.tip);
        self.sync.reset_peer(peer);
        let state = self.sync.peers.entry(peer.clone()).or_default();
        let failures = state.failures;
        state.failures = failures.saturating_add(1);
        state.last_failure_ms = now_ms;
        // A reply that contradicts the claim proves it false. A timeout may be one lost message
        // (a relay enforcing its rate limit drops frames), so the first one is retried at once;
        // from the second on, the claim is distrusted too.
        let proven = !matches!(failure, ClaimFailure::Stalled) || failures > 0;
        if proven {
            state.distrusted = claimed.map(|tip| tip.hash);
        }
        // No back-off for a first stall; then 30 s, 60 s, 120 s (the cap, 8 request timeouts);
        // a reply that proves the claim false backs off from the first time, 15 s, 30 s, 60 s, ...
        let backoff = if proven {
            REQUEST_TIMEOUT_MS
                .saturating_mul((1u64 << failures.min(16)).max(1))
                .min(MAX_CLAIM_BACKOFF_MS)
        } else {
            0
        };
        state.trusted_again_ms = now_ms + backoff;
        let offense = match failure {
            ClaimFailure::FalseWork => Offense::FalseWorkClaim { failures },
            ClaimFailure::Stalled | ClaimFailure::StalledWindow => Offense::Stalled { failures },
        };
        self.penalize(peer, offense);
        self.maybe_sync(now_ms);
    }

    /// Whether a block from a peer is on a side branch too far behind our tip to check.
    pub(crate) fn beyond_side_branch_window(&self, header: &BlockHeader) -> bool {
        let Some(parent_work) = self.tree.total_work(&header.prev_hash) else {
            return false;
        };
        let block_work = header.target.work();
        let window = Work(
            self.tree
                .tip_header()
                .target
                .work()
                .0
                .saturating_mul(crate::work::U256::from(SIDE_BRANCH_WINDOW_BLOCKS)),
        );
        let branch_work = parent_work.checked_add(block_work).unwrap_or(parent_work);
        branch_work
            .checked_add(window)
            .is_some_and(|reach| reach < self.tree.tip_work())
    }
}

/// Frees the hashes of one of `peer`'s requests from the download window (those another peer
/// was asked for meanwhile stay his).
fn release_in_flight(in_flight: &mut HashMap<Hash, PeerId>, peer: &PeerId, hashes: &[Hash]) {
    for hash in hashes {
        if in_flight.get(hash) == Some(peer) {
            in_flight.remove(hash);
        }
    }
}

/// A block we hold, in the tree or waiting for its parent in the orphan pool.
fn arrived(tree: &crate::chain::BlockTree, hash: &Hash) -> bool {
    tree.contains(hash) || tree.is_orphan(hash)
}

fn state_continues(state: &PeerSync) -> bool {
    state.more_after.is_some() && state.headers_asked_ms.is_none()
}

#[derive(Clone, Copy, Debug)]
enum ClaimFailure {
    FalseWork,
    Stalled,
    /// Held the download window while others delivered or waited.
    StalledWindow,
}
