//! What we know about each peer: its handshake, name, address and claimed tip, its misbehaviour
//! score with decay, and the budgets that bound what it can make us send.

use super::links::{KnownInventory, LinkState};
use crate::hash::Hash;
use crate::keys::Address;
use crate::protocol::message::TipStatus;
use crate::protocol::PeerId;

/// Misbehaviour score at which a peer is dropped: ignored and never sent to again.
pub const BAN_SCORE: u32 = 100;
/// Peers we keep state for; the relay caps rooms lower than this.
pub const MAX_PEERS: usize = 256;
/// A peer's misbehaviour score falls by one point per this interval, so rare honest mistakes
/// (a lost reply, a transaction from another branch) never add up to a ban over a long session.
pub const MISBEHAVIOR_DECAY_MS: u64 = 10_000;
/// Replies (`headers`, `blocks`, `mempool`, `status`) one peer can draw from us per second, and
/// the burst it may draw at once. An honest syncing peer keeps at most three requests open
/// with us (two block requests and one for headers) and sends the next when a reply arrives:
/// a native node importing 6,000 blocks a second asks about 100 times a second. Requests above
/// the budget are not answered (the requester times out and asks someone else), so a flood of
/// requests costs us at most this many replies a second, whatever its rate.
pub const REPLIES_PER_SECOND: u32 = 100;
pub const REPLY_BURST: u32 = 200;
/// Bytes of replies all peers together can draw from us per second, and at once. A relay
/// disconnects a member that sends more than 4 MiB a second (bursts of about 8 MiB, see the
/// relay's `DEFAULT_BYTE_RATE_PER_SECOND`) or 200 frames a second: replies take at most half of
/// each, so what peers ask of us can never get us cut off, and our own announcements keep the
/// other half. A `blocks` reply is up to 1 MiB, so the burst serves four at once.
pub const REPLY_BYTES_PER_SECOND: u64 = 2 * 1024 * 1024;
pub const REPLY_BYTE_BURST: u64 = 4 * 1024 * 1024;
/// Replies to all peers together per second, and at once: half the relay's frame rate.
pub const TOTAL_REPLIES_PER_SECOND: u32 = 100;
pub const TOTAL_REPLY_BURST: u32 = 200;
/// Bytes of replies one peer can draw from us per second, and at once: half of the total, so
/// a peer asking without pause leaves the other half to everyone else.
pub const PEER_REPLY_BYTES_PER_SECOND: u64 = REPLY_BYTES_PER_SECOND / 2;
pub const PEER_REPLY_BYTE_BURST: u64 = REPLY_BYTE_BURST / 2;
/// Our `hello`s to newly joined peers, per second and in a burst. A flood of 2,000 joins would
/// otherwise make us send 2,000 frames at once and be dropped by the relay's rate limit for
/// sending too fast; beyond the burst, hellos wait in a queue drained at this pace. A joiner
/// sends its own hello to everyone, and we answer a hello at once if ours is still queued.
pub const HELLOS_PER_SECOND: u32 = 20;
/// Blocks a peer may announce (`new_block`) that would not become our tip, and their bytes:
/// checking one costs its signatures and storing it costs disk, and nothing makes us store
/// them but the sender. An honest peer announces its own tips: in a race or right after a
/// partition heals a few lose to ours, one per block interval at most (a classroom block
/// comes every 2 s). So 20 at once, and then one every 5 s (a little over 2 MB at once and
/// 200 KB a second in bytes); beyond that the sender pays [`Offense::SideBranchFlood`] and the
/// block is dropped unchecked. Blocks we asked for (sync) never count.
pub const SIDE_BLOCKS_BURST: u32 = 20;
pub const SIDE_BLOCKS_PER_MINUTE: u32 = 12;
pub const SIDE_BLOCK_BYTES_PER_SECOND: u64 = 200 * 1024;
pub const SIDE_BLOCK_BYTE_BURST: u64 = 2 * 1024 * 1024 + 512 * 1024;
/// At most one notice of each kind per peer in this interval: a `busy` answer (a requester
/// told once backs off, see `sync::BUSY_RETRY_MS`), a request for its lost hello, our hello
/// sent again on its request. A flood draws one small frame a second, not one per message.
pub const NOTICE_INTERVAL_MS: u64 = 1_000;
pub const HELLO_BURST: u32 = 40;

/// How a bad peer earned its score. Each variant has a weight; see [`Offense::score`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Offense {
    /// A message that does not parse, has an unknown type or breaks a count limit.
    MalformedMessage(String),
    /// A message over the size limit.
    OversizedMessage(usize),
    /// A block that breaks a consensus rule that no honest node would break.
    InvalidBlock(String),
    /// A block that is bad only from where we stand (for example too far in the future).
    QuestionableBlock(String),
    /// A block on a side branch so far behind our best chain that checking it is not worth it.
    UselessSideBranch,
    /// More blocks that would not become our tip than [`SIDE_BLOCKS_BURST`] and the rate allow.
    SideBranchFlood,
    /// Headers that do not link or lack proof of work.
    InvalidHeaders(String),
    /// A transaction with a bad signature or impossible fields: invalid under every view. A
    /// transaction that only does not fit our ledger (a nonce already used on our branch, a
    /// gap, a balance we have not seen yet) is no offence: see `Node::on_new_transaction`.
    InvalidTransaction(String),
    /// Announced more work than it could show. The weight doubles with each claim it failed.
    FalseWorkClaim { failures: u32 },
    /// Did not answer a request in time. The weight doubles with each claim it failed.
    Stalled { failures: u32 },
    /// Sent headers or blocks we never asked for.
    Unsolicited(&'static str),
    /// Broke the rules of our direct link (flooded past its inbound budget, sent frames that are
    /// not link frames): the driver closed the link, and no new one is taken from the peer for
    /// [`super::links::LINK_ABUSE_BACKOFF_MS`].
    LinkAbuse(String),
}

impl Offense {
    pub fn score(&self) -> u32 {
        match self {
            Offense::InvalidBlock(_) | Offense::InvalidHeaders(_) => 100,
            Offense::OversizedMessage(_) => 50,
            Offense::FalseWorkClaim { failures } => escalate(25, *failures),
            Offense::Stalled { failures } => escalate(10, *failures),
            Offense::MalformedMessage(_)
            | Offense::InvalidTransaction(_)
            | Offense::LinkAbuse(_) => 25,
            Offense::QuestionableBlock(_) | Offense::Unsolicited(_) => 10,
            Offense::UselessSideBranch | Offense::SideBranchFlood => 5,
        }
    }
    pub fn describe(&self) -> String {
        match self {
            Offense::MalformedMessage(why) => format!("malformed message: {why}"),
            Offense::OversizedMessage(size) => format!("oversized message of {size} bytes"),
            Offense::InvalidBlock(why) => format!("invalid block: {why}"),
            Offense::QuestionableBlock(why) => format!("block rejected: {why}"),
            Offense::UselessSideBranch => "sent a block of a branch far behind ours".into(),
            Offense::SideBranchFlood => {
                "sent more blocks that lose to our chain than anyone honest makes".into()
            }
            Offense::InvalidHeaders(why) => format!("invalid headers: {why}"),
            Offense::InvalidTransaction(why) => format!("invalid transaction: {why}"),
            Offense::FalseWorkClaim { .. } => "claimed more work than it could show".into(),
            Offense::Stalled { .. } => "did not deliver what it was asked for in time".into(),
            Offense::Unsolicited(what) => format!("sent {what} we did not ask for"),
            Offense::LinkAbuse(why) => format!("broke the rules of our direct link: {why}"),
        }
    }
}

/// `base` doubled for each earlier failure, capped at a ban.
fn escalate(base: u32, failures: u32) -> u32 {
    base.saturating_mul(1u32 << failures.min(8)).min(BAN_SCORE)
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Handshake {
    /// We have not had its hello yet.
    Pending,
    Done,
    /// Another network or protocol version; the reason is shown to people.
    Refused(String),
}

/// A peer's `hello`, as the node handles it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hello {
    pub protocol_version: u32,
    pub chain_id: Hash,
    pub genesis_hash: Hash,
    pub name: String,
    pub address: Address,
    pub tip: TipStatus,
    pub direct_links: bool,
}

/// What we know about one peer.
#[derive(Clone, Debug)]
pub struct PeerInfo {
    pub id: PeerId,
    pub name: Option<String>,
    pub address: Option<Address>,
    pub handshake: Handshake,
    /// The tip it last announced (a claim: see `sync` for how claims are held to account).
    pub tip: Option<TipStatus>,
    pub misbehavior: u32,
    pub banned: bool,
    /// Muted by the user: nothing is sent to or accepted from it (to make forks on purpose).
    pub muted: bool,
    pub last_offense: Option<String>,
    pub joined_at_ms: u64,
    last_decay_ms: u64,
    /// Whether our hello has gone out (it may wait in the hello queue during a join flood).
    pub(crate) hello_sent: bool,
    pub(crate) replies: TokenBucket,
    pub(crate) reply_bytes: ByteBudget,
    /// What it may make us check and store of blocks that lose to our tip (see
    /// [`SIDE_BLOCKS_BURST`]).
    pub(crate) side_blocks: TokenBucket,
    pub(crate) side_block_bytes: ByteBudget,
    /// When we last told it we are busy, asked it for its hello, and sent ours again at its
    /// request (see [`NOTICE_INTERVAL_MS`]).
    pub(crate) last_busy_reply_ms: Option<u64>,
    pub(crate) last_hello_asked_ms: Option<u64>,
    pub(crate) last_hello_resent_ms: Option<u64>,
    /// We lost a message of its before its hello came (perhaps the hello): we ask for it.
    pub(crate) hello_lost: bool,
    /// The known network it said it is on, when that is not ours (`?net=` names it).
    pub other_network: Option<&'static str>,
    /// In the relay's room (its presence); a peer may also be reached only by a direct link.
    pub in_room: bool,
    /// Its hello said its driver can open direct links.
    pub direct_links: bool,
    /// The direct link to it, if any (see `links`).
    pub link: LinkState,
    /// When a failed or lost link may be tried again.
    pub(crate) link_retry_at_ms: Option<u64>,
    /// Our last attempt to link to it timed out before the link opened: no direct path between
    /// us (a router that changes ports, a firewall). Cleared when a link opens.
    pub link_never_opened: bool,
    /// Until when no link is taken from it: it abused the last one (see `Node::handle_link_abuse`).
    pub(crate) link_refused_until_ms: Option<u64>,
    /// The offers of direct links it may make (see `Node::answer_offer`).
    pub(crate) offers: TokenBucket,
    /// Blocks and transactions it is known to have, so gossip does not send them back.
    pub(crate) known: KnownInventory,
    /// Whether it takes the block announcements of the room, so that its tip moves with them
    /// (see `Node::infer_tips`): false after it told us it muted us, until its next hello.
    pub(crate) follows_announcements: bool,
}

impl PeerInfo {
    pub(crate) fn new(id: PeerId, now_ms: u64) -> PeerInfo {
        PeerInfo {
            id,
            name: None,
            address: None,
            handshake: Handshake::Pending,
            tip: None,
            misbehavior: 0,
            banned: false,
            muted: false,
            last_offense: None,
            joined_at_ms: now_ms,
            last_decay_ms: now_ms,
            hello_sent: false,
            replies: TokenBucket::new(REPLIES_PER_SECOND, REPLY_BURST, now_ms),
            reply_bytes: ByteBudget::new(
                PEER_REPLY_BYTES_PER_SECOND,
                PEER_REPLY_BYTE_BURST,
                now_ms,
            ),
            side_blocks: TokenBucket::per_minute(SIDE_BLOCKS_PER_MINUTE, SIDE_BLOCKS_BURST, now_ms),
            side_block_bytes: ByteBudget::new(
                SIDE_BLOCK_BYTES_PER_SECOND,
                SIDE_BLOCK_BYTE_BURST,
                now_ms,
            ),
            last_busy_reply_ms: None,
            last_hello_asked_ms: None,
            last_hello_resent_ms: None,
            hello_lost: false,
            other_network: None,
            in_room: true,
            direct_links: false,
            link: LinkState::None,
            link_retry_at_ms: None,
            link_never_opened: false,
            link_refused_until_ms: None,
            offers: TokenBucket::per_minute(
                super::links::OFFERS_PER_MINUTE,
                super::links::OFFER_BURST,
                now_ms,
            ),
            known: KnownInventory::default(),
            follows_announcements: true,
        }
    }
    /// A member of the ring of direct links: finished its hello, can link, not banned. Muted
    /// peers stay members (muting is a partition of messages, not of the topology).
    pub(crate) fn usable_for_links(&self) -> bool {
        self.handshake == Handshake::Done && self.direct_links && !self.banned
    }
    /// Whether a notice of the kind `last` names may go out now (at most one per
    /// [`NOTICE_INTERVAL_MS`]); if so, records it as sent.
    pub(crate) fn notice_due(
        &mut self,
        last: impl FnOnce(&mut PeerInfo) -> &mut Option<u64>,
        now_ms: u64,
    ) -> bool {
        let last = last(self);
        if last.is_some_and(|at| now_ms < at + NOTICE_INTERVAL_MS) {
            return false;
        }
        *last = Some(now_ms);
        true
    }
    pub(crate) fn usable(&self) -> bool {
        self.handshake == Handshake::Done && !self.banned && !self.muted
    }
    /// Lowers the score by the decay owed up to `now_ms`.
    pub(crate) fn decay(&mut self, now_ms: u64) {
        let steps = now_ms.saturating_sub(self.last_decay_ms) / MISBEHAVIOR_DECAY_MS;
        if steps > 0 {
            self.misbehavior = self
                .misbehavior
                .saturating_sub(steps.min(u32::MAX as u64) as u32);
            self.last_decay_ms += steps * MISBEHAVIOR_DECAY_MS;
        }
        if self.misbehavior == 0 {
            // Nothing to decay: the clock of the next offense starts now.
            self.last_decay_ms = self.last_decay_ms.max(now_ms);
        }
    }
    /// When the score next decays, if it has anything to decay.
    pub(crate) fn next_decay_ms(&self) -> Option<u64> {
        (self.misbehavior > 0 && !self.banned).then_some(self.last_decay_ms + MISBEHAVIOR_DECAY_MS)
    }
}

/// A token bucket: `rate` tokens a second up to `burst`.
#[derive(Clone, Debug)]
pub(crate) struct TokenBucket {
    rate: u32,
    /// `rate` is tokens a minute, not a second.
    per_minute: bool,
    burst: u32,
    /// Tokens in thousandths, so refills between calls a few ms apart are not lost.
    milli_tokens: u64,
    updated_ms: u64,
}

impl TokenBucket {
    pub(crate) fn new(rate: u32, burst: u32, now_ms: u64) -> TokenBucket {
        TokenBucket {
            rate,
            per_minute: false,
            burst,
            milli_tokens: burst as u64 * 1_000,
            updated_ms: now_ms,
        }
    }
    /// A bucket refilled by `per_minute` tokens a minute.
    pub(crate) fn per_minute(per_minute: u32, burst: u32, now_ms: u64) -> TokenBucket {
        TokenBucket {
            per_minute: true,
            ..TokenBucket::new(per_minute, burst, now_ms)
        }
    }
    fn refill(&mut self, now_ms: u64) {
        let elapsed = now_ms.saturating_sub(self.updated_ms);
        // `rate` tokens a second add `rate` thousandths a millisecond; a minute's take 60 times longer.
        let added = if self.per_minute {
            elapsed * self.rate as u64 / 60
        } else {
            elapsed * self.rate as u64
        };
        self.milli_tokens = (self.milli_tokens + added).min(self.burst as u64 * 1_000);
        self.updated_ms = self.updated_ms.max(now_ms);
    }
    pub(crate) fn take(&mut self, now_ms: u64) -> bool {
        self.refill(now_ms);
        if self.milli_tokens >= 1_000 {
            self.milli_tokens -= 1_000;
            true
        } else {
            false
        }
    }
    /// Whether a token is there, without taking it.
    pub(crate) fn has_token(&mut self, now_ms: u64) -> bool {
        self.refill(now_ms);
        self.milli_tokens >= 1_000
    }
    /// When the next token is there.
    pub(crate) fn next_token_ms(&self) -> u64 {
        if self.milli_tokens >= 1_000 {
            self.updated_ms
        } else {
            let missing = 1_000 - self.milli_tokens;
            let per_ms = self.rate.max(1) as u64;
            let wait = if self.per_minute {
                (missing * 60).div_ceil(per_ms)
            } else {
                missing.div_ceil(per_ms)
            };
            self.updated_ms + wait
        }
    }
}

/// A budget of bytes a second that may run into debt: a reply is allowed while the budget is
/// above zero and then costs what it really weighed (known only once it is built), so the
/// average stays at the rate and a debt delays the next reply.
#[derive(Clone, Debug)]
pub(crate) struct ByteBudget {
    rate: u64,
    burst: u64,
    available: i64,
    updated_ms: u64,
}

impl ByteBudget {
    pub(crate) fn new(rate: u64, burst: u64, now_ms: u64) -> ByteBudget {
        ByteBudget {
            rate,
            burst,
            available: burst as i64,
            updated_ms: now_ms,
        }
    }
    fn refill(&mut self, now_ms: u64) {
        let elapsed = now_ms.saturating_sub(self.updated_ms);
        let refill = (elapsed.saturating_mul(self.rate) / 1_000) as i64;
        self.available = self.available.saturating_add(refill).min(self.burst as i64);
        self.updated_ms = self.updated_ms.max(now_ms);
    }
    /// Whether anything may be spent now.
    pub(crate) fn ready(&mut self, now_ms: u64) -> bool {
        self.refill(now_ms);
        self.available > 0
    }
    pub(crate) fn spend(&mut self, bytes: usize) {
        self.available = self.available.saturating_sub(bytes as i64);
    }
}
