//! The node as a sans-I/O state machine, in the style of quinn-proto's `Connection`: what
//! arrived goes in through `handle_*` methods (a peer joined or left, a message, a tick with
//! the time, a mined block, stored blocks), the application's commands through plain methods
//! (`send_transaction`, `set_mining`, `set_peer_muted`), and what the caller must do comes out
//! of the `poll_*` methods: [`Node::poll_output`] (send, store, mine, events) and
//! [`Node::poll_timeout`] (the next instant the node needs [`Node::handle_tick`]). The browser
//! tab, the native program and the simulator are three small drivers of this one type: they
//! move bytes, keep time, store and draw, and decide nothing.
//!
//! The parts: [`output`] (outputs, events, the bounded queue), [`peers`] (handshake, offences,
//! scores, budgets), [`sync`] (headers-first sync that one liar cannot stall), [`wallet`] (our
//! own transactions). Message dispatch and the chain changes live here.

mod import;
pub use import::ChainImport;
pub mod links;
pub mod output;
pub mod peers;
pub mod private;
mod recent;
pub mod reconnect;
pub mod sync;
pub mod wallet;

pub use links::{
    ring_neighbours, LinkState, OfferAnswer, Route, LINK_ABUSE_BACKOFF_MS, LINK_OPEN_TIMEOUT_MS,
    LINK_RETRY_MS, MAX_DIRECT_LINKS, MAX_KNOWN_INVENTORY, MAX_RELAY_SENDS_PER_BROADCAST,
    OFFERS_PER_MINUTE, OFFER_BURST,
};
pub use output::{MiningJob, NodeEvent, Output, SyncState, MAX_QUEUED_EVENTS, MAX_QUEUED_OUTPUTS};

/// Peers whose pool a node asks for once it is in sync (see `ask_wanted_mempools`). Every pool
/// in a room holds about the same payments (each is gossiped to everyone), so a few answers
/// bring them all; a room of 256 would otherwise send 255 requests and 255 replies per joiner.
/// Three, so one peer that answers with an empty pool hides nothing.
pub const MEMPOOL_SOURCES: usize = 3;
pub use peers::{
    Handshake, Hello, Offense, PeerInfo, BAN_SCORE, HELLOS_PER_SECOND, HELLO_BURST, MAX_PEERS,
    MISBEHAVIOR_DECAY_MS, NOTICE_INTERVAL_MS, PEER_REPLY_BYTES_PER_SECOND, PEER_REPLY_BYTE_BURST,
    REPLIES_PER_SECOND, REPLY_BURST, REPLY_BYTES_PER_SECOND, REPLY_BYTE_BURST, SIDE_BLOCKS_BURST,
    SIDE_BLOCKS_PER_MINUTE, SIDE_BLOCK_BYTES_PER_SECOND, SIDE_BLOCK_BYTE_BURST,
    TOTAL_REPLIES_PER_SECOND, TOTAL_REPLY_BURST,
};
pub use private::{
    DoubleSpendError, PrivateStatus, Release, ReleaseError, MAX_PRIVATE_BLOCKS, MAX_PRIVATE_TXS,
};
pub use sync::{
    BUSY_RETRY_MS, HEADERS_REQUEST_INTERVAL_MS, MAX_BLOCKS_IN_FLIGHT,
    MAX_BLOCKS_IN_FLIGHT_PER_PEER, MAX_CLAIM_BACKOFF_MS, MAX_PENDING_HEADERS, REQUEST_TIMEOUT_MS,
    SIDE_BRANCH_WINDOW_BLOCKS, STATUS_INTERVAL_WHILE_SYNCING_MS, WINDOW_STALL_MS,
};
pub use wallet::{
    IncomingTx, OwnTx, OwnTxState, SendError, CONFIRMATIONS_TO_FORGET, MAX_TRACKED_INCOMING,
    MAX_TRACKED_OWN_TXS, OWN_TX_REANNOUNCE_MS,
};

use crate::block::{Block, BLOCK_VERSION};
use crate::chain::{AddOutcome, BlockTree, ChainError, TipChange};
use crate::hash::Hash;
use crate::keys::{Address, Keypair};
use crate::mempool::{Mempool, MempoolError};
use crate::mining::meets_target;
use crate::params::NetworkParams;
use crate::protocol::message::{
    NodeMessage, ProtocolError, TipStatus, BUSY_ERROR_CODE, HELLO_NEEDED_ERROR_CODE,
    MAX_BLOCKS_PER_REQUEST, MAX_HEADERS_PER_MESSAGE, MAX_TXS_PER_MESSAGE, NOT_LISTENING_ERROR_CODE,
    PROTOCOL_VERSION,
};
use crate::protocol::{PeerId, MAX_FRAME_BYTES};
use crate::tx::Transaction;
use crate::validation::ValidationError;
use output::OutputQueue;
use peers::TokenBucket;
use recent::Recent;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;

/// Senders of recent blocks we remember, so a block found invalid later (an orphan whose parent
/// came, an ancestor failing the ledger in a reorg) costs the peer that sent it. One download
/// window plus the orphan pool.
const MAX_REMEMBERED_SOURCES: usize = 4_096;
/// Parents whose first announced child we remember, to notice races (two children announced).
const MAX_REMEMBERED_ANNOUNCEMENTS: usize = 1_024;
/// After this many block intervals with no block announced, each node says its tip once (one
/// `status`, until its tip moves again): the safety net for an announcement that was lost on
/// the way (a link that broke mid-message) when no later block would show it missing. Blocks
/// come this late about once in 400 (e^-6) while a room mines.
const QUIET_STATUS_INTERVALS: u64 = 6;

pub struct NodeConfig {
    pub params: NetworkParams,
    pub name: String,
    pub keypair: Keypair,
    /// Direct links this node keeps ([`MAX_DIRECT_LINKS`] in a browser tab); 0 when the driver
    /// cannot open any (the native node), so every peer is reached through the relay.
    pub max_direct_links: usize,
}

/// One tabchain node.
pub struct Node {
    name: String,
    keypair: Keypair,
    tree: BlockTree,
    mempool: Mempool,
    peers: BTreeMap<PeerId, PeerInfo>,
    sync: sync::Sync,
    wallet: wallet::Wallet,
    mining: bool,
    next_job_id: u64,
    /// The job the miner works on; a block found for any other is stale.
    current_job: Option<u64>,
    outputs: OutputQueue,
    /// The latest time any call passed in; `poll_output` uses it for deadlines.
    now_ms: u64,
    /// Set when the best chain moved during the current call; the status broadcast and the new
    /// mining job wait for the next `poll_output`, so a batch of blocks causes one of each.
    tip_moved: bool,
    /// Our `status` about a tip change has not gone out yet.
    status_due: bool,
    last_status_ms: Option<u64>,
    /// The tip our peers believe we have: the last we announced (a `status`, or a `new_block`
    /// of ours), moved along by every `new_block` we took onto it, as every peer that took the
    /// same announcement moves it (see [`Node::infer_tips`]). A status goes out only when our tip
    /// is not this one: in a room of `n` the status of every tab after every block was `n²`
    /// relay frames a block (issue 30).
    believed_tip: Option<Hash>,
    /// The announced child of each recent parent (see [`MAX_REMEMBERED_ANNOUNCEMENTS`]), or
    /// `None` once a second one came: a race, after which every node says where it went.
    announced: Recent<Option<Hash>, MAX_REMEMBERED_ANNOUNCEMENTS>,
    /// When a block was last announced (by us or to us) or our tip moved; with the tip our
    /// quiet-time status was sent for (see [`QUIET_STATUS_INTERVALS`]).
    last_announcement_ms: u64,
    quiet_status_for: Option<Hash>,
    /// Peers that joined while our hello budget was spent, waiting for their hello.
    hello_queue: VecDeque<PeerId>,
    hellos: TokenBucket,
    /// What all peers together can draw from us (see [`REPLY_BYTES_PER_SECOND`]).
    replies: TokenBucket,
    reply_bytes: peers::ByteBudget,
    /// Who sent each recent block (see [`MAX_REMEMBERED_SOURCES`]).
    sources: Recent<PeerId, MAX_REMEMBERED_SOURCES>,
    /// Peer messages not handled because the driver left the output queue full.
    refused_backlogged: u64,
    /// Since when our driver takes no peer messages (`set_inbound_paused`).
    inbound_paused_since: Option<u64>,
    /// Peer messages we lost ourselves: refused while paused, or shed by the driver.
    lost_messages: u64,
    /// Peers whose pool we want once we are in sync: judged against a ledger we have not
    /// synced yet, an honest pool looks like payments from empty accounts.
    mempool_wanted: BTreeSet<PeerId>,
    /// Pools asked for since we joined the room: at most [`MEMPOOL_SOURCES`] on a join (an
    /// unmute asks its peer in addition).
    mempools_asked: usize,
    /// Our connection to the relay is up (its welcome came and it has not dropped since).
    relay_connected: bool,
    /// Our peer id in the room, from the relay's welcome.
    own_id: Option<PeerId>,
    max_direct_links: usize,
    /// Our hidden branch while private mining is on (see [`private`]).
    private: Option<private::PrivateBranch>,
    /// What the last release published, until private mining starts again.
    last_release: Option<Release>,
}

impl Node {
    pub fn new(config: NodeConfig) -> Node {
        Node {
            name: config.name,
            keypair: config.keypair,
            tree: BlockTree::new(config.params),
            mempool: Mempool::new(),
            peers: BTreeMap::new(),
            sync: sync::Sync::default(),
            wallet: wallet::Wallet::default(),
            mining: false,
            next_job_id: 0,
            current_job: None,
            outputs: OutputQueue::default(),
            now_ms: 0,
            tip_moved: false,
            status_due: false,
            last_status_ms: None,
            believed_tip: None,
            announced: Recent::default(),
            last_announcement_ms: 0,
            quiet_status_for: None,
            hello_queue: VecDeque::new(),
            hellos: TokenBucket::new(HELLOS_PER_SECOND, HELLO_BURST, 0),
            replies: TokenBucket::new(TOTAL_REPLIES_PER_SECOND, TOTAL_REPLY_BURST, 0),
            reply_bytes: peers::ByteBudget::new(REPLY_BYTES_PER_SECOND, REPLY_BYTE_BURST, 0),
            sources: Recent::default(),
            refused_backlogged: 0,
            inbound_paused_since: None,
            lost_messages: 0,
            mempool_wanted: BTreeSet::new(),
            mempools_asked: 0,
            relay_connected: false,
            own_id: None,
            max_direct_links: config.max_direct_links,
            private: None,
            last_release: None,
        }
    }

    // ---- getters ----

    pub fn name(&self) -> &str {
        &self.name
    }
    pub fn address(&self) -> Address {
        self.keypair.address()
    }
    pub fn keypair(&self) -> &Keypair {
        &self.keypair
    }
    pub fn tree(&self) -> &BlockTree {
        &self.tree
    }
    pub fn mempool(&self) -> &Mempool {
        &self.mempool
    }
    pub fn peers(&self) -> impl Iterator<Item = &PeerInfo> {
        self.peers.values()
    }
    pub fn peer(&self, id: &PeerId) -> Option<&PeerInfo> {
        self.peers.get(id)
    }
    pub fn is_mining(&self) -> bool {
        self.mining
    }
    pub fn balance(&self, address: &Address) -> u64 {
        self.tree.ledger().balance(address)
    }
    pub fn tip_status(&self) -> TipStatus {
        TipStatus {
            hash: self.tree.tip_hash(),
            height: self.tree.tip_height(),
            total_work: self.tree.tip_work(),
        }
    }
    /// UI events dropped because the driver let more than [`MAX_QUEUED_EVENTS`] wait.
    pub fn dropped_events(&self) -> u64 {
        self.outputs.dropped_events()
    }
    /// Peer messages refused because the driver let more than [`MAX_QUEUED_OUTPUTS`] wait.
    pub fn refused_backlogged(&self) -> u64 {
        self.refused_backlogged
    }
    /// Peer messages we lost ourselves: refused while our driver paused us or left the output
    /// queue full, or shed by the driver (`handle_dropped`). None of them is charged to anyone.
    pub fn lost_messages(&self) -> u64 {
        self.lost_messages
    }
    /// Whether our driver has paused peer messages (`set_inbound_paused`).
    pub fn inbound_paused(&self) -> bool {
        self.inbound_paused_since.is_some()
    }
    /// Peers in the room whose hello has not come yet, among those that joined less than
    /// `grace_ms` ago: until it comes we do not know their chains, so a tab is not yet in sync.
    pub fn awaiting_hellos(&self, now_ms: u64, grace_ms: u64) -> usize {
        self.peers
            .values()
            .filter(|peer| {
                peer.handshake == Handshake::Pending
                    && !peer.banned
                    && !peer.muted
                    && now_ms.saturating_sub(peer.joined_at_ms) < grace_ms
            })
            .count()
    }

    // ---- poll ----

    /// The next thing the caller must do, if any. Drain it after every call into the node.
    pub fn poll_output(&mut self) -> Option<Output> {
        if std::mem::take(&mut self.tip_moved) {
            self.status_due = true;
            self.last_announcement_ms = self.now_ms;
            if self.mining {
                self.restart_mining(self.now_ms);
            }
        }
        self.announce_status_if_due(self.now_ms);
        self.announce_status_if_quiet(self.now_ms);
        self.outputs.pop()
    }

    /// The next instant the node needs [`Node::handle_tick`], if any: a request that times out,
    /// a paced request or status, a queued hello, a score that decays, our transactions'
    /// re-announcement. Drivers sleep until it (or until something arrives).
    pub fn poll_timeout(&self) -> Option<u64> {
        let status = self.status_due.then(|| self.status_deadline());
        let hellos = (!self.hello_queue.is_empty()).then(|| self.hellos.next_token_ms());
        let decay = self
            .peers
            .values()
            .filter_map(PeerInfo::next_decay_ms)
            .min();
        // While paused no request deadline runs (see `set_inbound_paused`).
        let sync = (!self.inbound_paused())
            .then(|| self.sync.next_deadline(self.now_ms))
            .flatten();
        [
            sync,
            self.next_hello_ask_ms(),
            self.next_window_check(),
            status,
            hellos,
            decay,
            self.wallet.next_announce_ms,
            self.next_link_deadline(),
            self.quiet_status_deadline(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    // ---- start-up ----

    /// Replays blocks kept in storage (any order; they are sorted by height). Invalid ones are
    /// deleted from storage; nothing is broadcast.
    pub fn handle_stored_blocks(&mut self, mut blocks: Vec<Block>, now_ms: u64) {
        self.advance_clock(now_ms);
        blocks.sort_by_key(|block| block.header.height);
        let old_tip = self.tree.tip_hash();
        for block in blocks {
            let hash = block.hash();
            if block.header.version != BLOCK_VERSION {
                // Kept by a run before the block version changed: it belongs to the old
                // network and can never connect here (as an orphan it would come back on
                // every load).
                self.push(Output::DeleteBlock(hash));
                self.event(NodeEvent::BlockRejected {
                    hash,
                    from: None,
                    reason: format!(
                        "stored block of an older network (block version {}, ours is {BLOCK_VERSION}): deleted",
                        block.header.version
                    ),
                });
                continue;
            }
            match self.tree.add_block(block, now_ms) {
                Ok(_) => {}
                Err(error) => {
                    let mut doomed = vec![hash];
                    if let ChainError::InvalidAncestor { removed, .. } = &error {
                        doomed.extend(removed.iter().copied());
                    }
                    for hash in doomed {
                        self.push(Output::DeleteBlock(hash));
                    }
                    self.event(NodeEvent::BlockRejected {
                        hash,
                        from: None,
                        reason: format!("stored block: {error}"),
                    });
                }
            }
        }
        if self.tree.tip_hash() != old_tip {
            self.event(NodeEvent::TipChanged {
                hash: self.tree.tip_hash(),
                height: self.tree.tip_height(),
                reorg_depth: 0,
                disconnected: Vec::new(),
                connected: Vec::new(),
            });
        }
    }

    // ---- peers ----

    /// `peer` is in the relay's room (its join, or one of the welcome's peers).
    /// A join comes from the relay, so it also means the relay is up.
    pub fn handle_peer_joined(&mut self, peer: PeerId, now_ms: u64) {
        self.advance_clock(now_ms);
        self.relay_connected = true;
        if let Some(info) = self.peers.get_mut(&peer) {
            // Known already over a direct link: it is back in the relay's room too.
            info.in_room = true;
            return;
        }
        self.add_peer(peer, LinkState::None, now_ms);
    }

    /// A new peer, reached over `link`: our hello goes out that way (over a direct link that
    /// introduced the peer, not over a relay that may not know it yet).
    pub(crate) fn add_peer(&mut self, peer: PeerId, link: LinkState, now_ms: u64) {
        if self.insert_peer(peer.clone(), link, now_ms) {
            self.greet(peer, now_ms);
        }
    }

    /// Sends `peer` our hello, or queues it when the hello budget is spent (see
    /// [`HELLOS_PER_SECOND`]).
    fn greet(&mut self, peer: PeerId, now_ms: u64) {
        if self.hellos.take(now_ms) {
            self.send_hello(&peer);
        } else {
            self.hello_queue.push_back(peer);
        }
    }

    /// Puts a new peer in our table, greeted by nobody yet; false when the table is full.
    fn insert_peer(&mut self, peer: PeerId, link: LinkState, now_ms: u64) -> bool {
        if self.peers.len() >= MAX_PEERS {
            return false;
        }
        if self.peers.is_empty() {
            // Our first peer (a tab of this browser, a link with no relay): as on a welcome, the
            // quiet-time status counts from our hello.
            self.last_announcement_ms = now_ms;
        }
        let mut info = PeerInfo::new(peer.clone(), now_ms);
        info.link = link;
        self.peers.insert(peer.clone(), info);
        self.event(NodeEvent::PeerJoined { peer });
        true
    }

    /// The relay's welcome arrived: we are in the room as `me`, and `peers` were there before
    /// us. Our hello goes to all of them in one broadcast: each learns who we are before
    /// anything else of ours reaches it, and a room of 255 costs us one frame instead of 255
    /// hellos paced at [`HELLOS_PER_SECOND`] (in a class joining at once, everything we sent a
    /// peer still waiting for our queued hello drew a `hello_needed`). Each answers with its own
    /// hello. Peers we already know over a direct link have our hello: if any is in the room,
    /// the new ones are greeted one by one instead, as on a join.
    pub fn handle_welcome(&mut self, me: PeerId, peers: Vec<PeerId>, now_ms: u64) {
        self.handle_relay_connected(me, now_ms);
        let mut new = Vec::new();
        let mut known_in_room = false;
        for peer in peers {
            if let Some(info) = self.peers.get_mut(&peer) {
                // Known already over a direct link: it is back in the relay's room too.
                info.in_room = true;
                known_in_room = true;
            } else if self.insert_peer(peer.clone(), LinkState::None, now_ms) {
                new.push(peer);
            }
        }
        if new.is_empty() {
            return;
        }
        if known_in_room {
            for peer in new {
                self.greet(peer, now_ms);
            }
            return;
        }
        for peer in &new {
            if let Some(info) = self.peers.get_mut(peer) {
                info.hello_sent = true;
            }
        }
        let hello = self.hello_message();
        self.push(Output::Broadcast {
            payload: hello.encode(),
        });
    }

    /// `peer` left the relay's room. A peer we still have a direct link to stays (its own relay
    /// connection may be what dropped; the link's heartbeat tells whether the tab is gone).
    pub fn handle_peer_left(&mut self, peer: &PeerId, now_ms: u64) {
        self.advance_clock(now_ms);
        let Some(info) = self.peers.get_mut(peer) else {
            return;
        };
        info.in_room = false;
        if info.link.is_direct() {
            return;
        }
        if info.link != LinkState::None {
            self.push(Output::CloseLink { peer: peer.clone() });
        }
        self.remove_peer(peer, now_ms);
        self.update_links(now_ms);
    }

    /// Our connection to the relay dropped: every peer without a direct link is gone.
    pub fn handle_disconnected(&mut self, now_ms: u64) {
        self.advance_clock(now_ms);
        self.relay_connected = false;
        let peers: Vec<PeerId> = self.peers.keys().cloned().collect();
        for peer in peers {
            self.handle_peer_left(&peer, now_ms);
        }
    }

    pub(crate) fn remove_peer(&mut self, peer: &PeerId, now_ms: u64) {
        if self.peers.remove(peer).is_none() {
            return;
        }
        self.sync.remove_peer(peer);
        self.mempool_wanted.remove(peer);
        self.hello_queue.retain(|queued| queued != peer);
        self.event(NodeEvent::PeerLeft { peer: peer.clone() });
        self.maybe_sync(now_ms);
    }

    /// Mutes or unmutes a peer. Unmuting exchanges state at once: our hello (the peer answers a
    /// repeated hello with its status), a request for its pool, and our pending transactions.
    pub fn set_peer_muted(&mut self, peer: &PeerId, muted: bool, now_ms: u64) {
        self.advance_clock(now_ms);
        let Some(info) = self.peers.get(peer) else {
            return;
        };
        if muted && !info.muted && info.handshake == Handshake::Done {
            // It would otherwise take our tip to move with the announcements we now drop.
            self.reply_error(
                peer,
                NOT_LISTENING_ERROR_CODE,
                "muted: not listening to you",
            );
        }
        let Some(info) = self.peers.get_mut(peer) else {
            return;
        };
        info.muted = muted;
        // Answers to what we asked before may still come after an unmute: forgiven.
        self.on_unanswered(peer, now_ms);
        if !muted {
            self.send_hello(peer);
            if self.peers[peer].handshake == Handshake::Done {
                // Asked in addition to the pools asked on joining.
                self.mempools_asked = self.mempools_asked.saturating_sub(1);
                self.mempool_wanted.insert(peer.clone());
                self.send_own_pending(peer);
            }
        }
        self.maybe_sync(now_ms);
    }

    /// A message arrived from `from`. Nothing a peer sends can make this panic or change our
    /// chain other than by valid blocks.
    pub fn handle_message(&mut self, from: &PeerId, text: &str, now_ms: u64) {
        self.advance_clock(now_ms);
        if self.outputs.backlogged() {
            // The driver has not drained us; like a lost message, the sender asks again.
            self.refused_backlogged += 1;
            self.note_lost(from, now_ms);
            self.dropped_announcement(text);
            return;
        }
        if self.inbound_paused() {
            self.note_lost(from, now_ms);
            self.dropped_announcement(text);
            if NodeMessage::asks_for_answer(text) {
                // It waits for an answer that will not come: tell it, so it does not count
                // our pause as its peer stalling.
                self.reply_busy(from, now_ms);
            }
            return;
        }
        if !self.peers.contains_key(from) {
            // The relay tells us of joins before messages; a stranger is treated as joined.
            self.handle_peer_joined(from.clone(), now_ms);
        }
        match self.peers.get(from) {
            Some(peer) if !peer.banned && !peer.muted => {}
            _ => {
                self.dropped_announcement(text);
                return;
            }
        }
        let message = match NodeMessage::decode(text) {
            Ok(message) => message,
            Err(error) => {
                let offense = match &error {
                    ProtocolError::TooLarge { size, .. } => Offense::OversizedMessage(*size),
                    other => Offense::MalformedMessage(other.to_string()),
                };
                self.reply_error(from, "bad_message", &error.to_string());
                self.penalize(from, offense);
                return;
            }
        };
        let handshake_done = self
            .peers
            .get(from)
            .is_some_and(|p| p.handshake == Handshake::Done);
        match message {
            NodeMessage::Hello {
                protocol_version,
                chain_id,
                genesis_hash,
                name,
                address,
                tip,
                direct_links,
            } => self.on_hello(
                from,
                Hello {
                    protocol_version,
                    chain_id,
                    genesis_hash,
                    name,
                    address,
                    tip,
                    direct_links,
                },
                now_ms,
            ),
            NodeMessage::HelloRejected { reason } => {
                self.refuse(from, format!("it refused us: {reason}"));
            }
            NodeMessage::Error { code, .. } if code == BUSY_ERROR_CODE => {
                self.on_busy(from, now_ms);
            }
            NodeMessage::Error { code, .. } if code == NOT_LISTENING_ERROR_CODE => {
                if let Some(peer) = self.peers.get_mut(from) {
                    peer.follows_announcements = false;
                }
            }
            NodeMessage::Error { code, .. } if code == HELLO_NEEDED_ERROR_CODE => {
                // We are a stranger to it (it lost our hello): say it again, once a second. What
                // we asked it meanwhile went unanswered: asked again, uncharged, once our hello
                // has had time to arrive (as after `busy`; the wait is longer than the notice
                // interval, so an ask that our hello missed again draws a notice again).
                if self.peers.get_mut(from).is_some_and(|peer| {
                    peer.notice_due(|peer| &mut peer.last_hello_resent_ms, now_ms)
                }) {
                    self.send_hello(from);
                }
                self.on_busy(from, now_ms);
            }
            NodeMessage::Error { .. } => {
                // A peer's complaint about one of our messages; never answered, so two nodes
                // cannot trade errors forever.
            }
            _ if !handshake_done => {
                // Until the hello, we do not know the peer is on our network. A peer that
                // talks to us without one sent a hello we lost (our driver paused or shed it):
                // it is asked for it again, or it would wait forever for our answers.
                self.suspect_lost_hello(from);
                self.ask_for_lost_hellos(now_ms);
            }
            NodeMessage::Status { tip } => self.on_claim(from, tip, now_ms),
            NodeMessage::GetHeaders { locator } => {
                if self.reply_allowed(from, now_ms) {
                    let headers = self.advertised_headers_after(&locator, MAX_HEADERS_PER_MESSAGE);
                    self.send_reply(from, &NodeMessage::Headers { headers });
                }
            }
            NodeMessage::Headers { headers } => self.on_headers(from, headers, now_ms),
            NodeMessage::GetBlocks { hashes } => {
                if self.reply_allowed(from, now_ms) {
                    self.on_get_blocks(from, &hashes);
                }
            }
            NodeMessage::Blocks { blocks } => self.on_blocks(from, blocks, text.len(), now_ms),
            NodeMessage::NewBlock { block } => self.on_new_block(from, block, text.len(), now_ms),
            NodeMessage::NewTransaction { tx } => self.on_new_transaction(from, tx, now_ms),
            NodeMessage::GetMempool => {
                if self.reply_allowed(from, now_ms) {
                    let txs: Vec<Transaction> = self
                        .mempool
                        .transactions()
                        .into_iter()
                        .filter(|tx| !self.is_hidden_transaction(&tx.id()))
                        .take(MAX_TXS_PER_MESSAGE)
                        .collect();
                    self.send_reply(from, &NodeMessage::Mempool { txs });
                }
            }
            NodeMessage::Mempool { txs } => {
                for tx in txs {
                    self.on_new_transaction(from, tx, now_ms);
                    if self.peers.get(from).is_none_or(|peer| peer.banned) {
                        return;
                    }
                }
            }
        }
    }

    /// Our driver cannot keep up (storage far behind, a full inbox) and takes no peer messages
    /// for now, or it can again. While paused, peer messages handed to us are refused and no
    /// request deadline runs; on resuming, every request's clock moves on by the pause, and a
    /// request whose answer we may have refused is asked again, uncharged. Drivers report a
    /// pause here; they never drop peer messages without telling the node.
    pub fn set_inbound_paused(&mut self, paused: bool, now_ms: u64) {
        self.advance_clock(now_ms);
        match (paused, self.inbound_paused_since) {
            (true, None) => self.inbound_paused_since = Some(now_ms),
            (false, Some(since)) => {
                self.inbound_paused_since = None;
                self.ask_for_lost_hellos(now_ms);
                self.resume_sync(since, now_ms);
            }
            _ => {}
        }
    }

    /// Our driver lost a message of `from` before it reached us (a full inbox shed it): an
    /// answer we waited for from `from` may be gone, so its deadline is not its fault; and if
    /// the message asked us something (`asked`, see [`NodeMessage::asks_for_answer`]), `from`
    /// is told we are busy rather than left waiting.
    pub fn handle_dropped(&mut self, from: &PeerId, asked: bool, now_ms: u64) {
        self.advance_clock(now_ms);
        self.note_lost(from, now_ms);
        if asked {
            self.reply_busy(from, now_ms);
        }
    }

    fn note_lost(&mut self, from: &PeerId, now_ms: u64) {
        self.lost_messages += 1;
        self.sync.note_lost(from, now_ms);
        // Perhaps its hello: asked for again (at once, or when we resume).
        self.suspect_lost_hello(from);
        self.ask_for_lost_hellos(now_ms);
    }

    /// We may have lost the hello of `from` (we lost a message of its, or it talks to us
    /// without one): `ask_for_lost_hellos` asks it to say it again.
    fn suspect_lost_hello(&mut self, from: &PeerId) {
        if let Some(peer) = self.peers.get_mut(from) {
            if peer.handshake == Handshake::Pending {
                peer.hello_lost = true;
            }
        }
    }

    /// Asks each peer whose hello we may have lost to say it again (see `note_lost`), at most
    /// once per [`NOTICE_INTERVAL_MS`] each; `handle_tick` asks again when one was held back.
    /// While paused we would refuse the answer: nothing is asked until we resume.
    fn ask_for_lost_hellos(&mut self, now_ms: u64) {
        if self.inbound_paused() {
            return;
        }
        let due: Vec<PeerId> = self
            .peers
            .values_mut()
            .filter(|peer| peer.hello_lost && peer.handshake == Handshake::Pending)
            .filter_map(|peer| {
                peer.notice_due(|peer| &mut peer.last_hello_asked_ms, now_ms)
                    .then(|| peer.id.clone())
            })
            .collect();
        for peer in due {
            self.reply_error(&peer, HELLO_NEEDED_ERROR_CODE, "we have no hello of yours");
        }
    }

    /// When a held-back request for a lost hello may go out (see `ask_for_lost_hellos`).
    fn next_hello_ask_ms(&self) -> Option<u64> {
        if self.inbound_paused() {
            return None;
        }
        self.peers
            .values()
            .filter(|peer| peer.hello_lost && peer.handshake == Handshake::Pending)
            .map(|peer| {
                peer.last_hello_asked_ms
                    .map_or(self.now_ms, |at| at + NOTICE_INTERVAL_MS)
            })
            .min()
    }

    /// Time passed: deadlines that passed are acted on (stalled requests given up and handed
    /// to other peers, paced requests and status sent, queued hellos, score decay).
    pub fn handle_tick(&mut self, now_ms: u64) {
        self.advance_clock(now_ms);
        for peer in self.peers.values_mut().filter(|peer| !peer.banned) {
            peer.decay(now_ms);
        }
        while !self.hello_queue.is_empty() && self.hellos.take(now_ms) {
            if let Some(peer) = self.hello_queue.pop_front() {
                self.send_hello(&peer);
            }
        }
        self.ask_for_lost_hellos(now_ms);
        self.expire_requests(now_ms);
        self.retry_paced_requests(now_ms);
        self.announce_own_if_due(now_ms);
        self.update_links(now_ms);
        self.maybe_sync(now_ms);
        self.announce_status_if_due(now_ms);
    }

    // ---- commands from the application ----

    /// Our miner found `block` for job `job_id`. A block for an old job (the tip moved, or mining
    /// stopped, while the miner searched) is ignored; a block the chain refuses is reported and
    /// the miner gets a fresh job.
    pub fn handle_mined_block(&mut self, job_id: u64, block: Block, now_ms: u64) {
        self.advance_clock(now_ms);
        if !self.mining || self.current_job != Some(job_id) || !meets_target(&block.header) {
            return;
        }
        if self.private.is_some() {
            self.take_private_block(block, now_ms);
            return;
        }
        let hash = block.hash();
        match self.tree.add_block(block.clone(), now_ms) {
            Ok(outcome) => {
                let became_tip = matches!(outcome, AddOutcome::TipChanged(_));
                self.after_add(hash, outcome, None, now_ms);
                if became_tip {
                    // Our tip, as every peer that takes the announcement knows.
                    self.note_announcement(block.header.prev_hash, hash);
                    if let Some(tip) = self.status_of(&hash) {
                        // Peers at its parent take it too.
                        self.infer_tips(None, &block.header.prev_hash, tip);
                    }
                    self.believed_tip = Some(hash);
                    self.broadcast(&NodeMessage::NewBlock { block });
                } else {
                    self.restart_mining(now_ms);
                }
            }
            Err(error) => {
                self.event(NodeEvent::BlockRejected {
                    hash,
                    from: None,
                    reason: format!("our own block: {error}"),
                });
                self.restart_mining(now_ms);
            }
        }
    }

    pub fn set_mining(&mut self, on: bool, now_ms: u64) {
        self.advance_clock(now_ms);
        self.mining = on;
        if on {
            self.restart_mining(now_ms);
        } else {
            self.current_job = None;
            self.push(Output::StopMining);
        }
    }

    // ---- message handlers ----

    fn on_hello(&mut self, from: &PeerId, hello: Hello, now_ms: u64) {
        let refusal = if hello.protocol_version != PROTOCOL_VERSION {
            Some(format!(
                "protocol version {}, we speak {PROTOCOL_VERSION}",
                hello.protocol_version
            ))
        } else if hello.genesis_hash != self.tree.genesis_hash()
            || hello.chain_id != self.tree.chain_id()
        {
            let known = NetworkParams::known_by_genesis(&hello.genesis_hash);
            if let Some(peer) = self.peers.get_mut(from) {
                peer.other_network = known;
            }
            Some(format!(
                "another network ({}genesis {}, ours {})",
                known.map(|name| format!("{name}: ")).unwrap_or_default(),
                hello.genesis_hash.short(),
                self.tree.genesis_hash().short()
            ))
        } else {
            None
        };
        if let Some(reason) = refusal {
            self.send(
                from,
                &NodeMessage::HelloRejected {
                    reason: reason.clone(),
                },
            );
            self.refuse(from, reason);
            return;
        }
        let (first, owe_hello) = {
            let peer = self.peers.get_mut(from).expect("checked by handle_message");
            let first = peer.handshake != Handshake::Done;
            peer.handshake = Handshake::Done;
            peer.hello_lost = false;
            peer.follows_announcements = true;
            peer.name = Some(hello.name.clone());
            peer.address = Some(hello.address);
            peer.direct_links = hello.direct_links;
            peer.known.insert(hello.tip.hash);
            (first, !peer.hello_sent)
        };
        if owe_hello {
            // Our hello waited in the queue of a join flood; a peer that speaks gets it now.
            self.hello_queue.retain(|queued| queued != from);
            self.send_hello(from);
        }
        if first {
            self.event(NodeEvent::PeerHello {
                peer: from.clone(),
                name: hello.name,
                address: hello.address,
            });
            // Asked once we know whether its chain is ahead of ours (see `ask_wanted_mempools`).
            self.mempool_wanted.insert(from.clone());
        } else if !owe_hello && self.reply_allowed(from, now_ms) {
            // A repeated hello (it unmuted us, or reconnected under the same id): it may have
            // missed our tip changes, so it gets our status at once.
            let status = NodeMessage::Status {
                tip: self.advertised_tip(),
            };
            self.send(from, &status);
        }
        self.on_claim(from, hello.tip, now_ms);
        self.update_links(now_ms);
    }

    fn on_get_blocks(&mut self, from: &PeerId, hashes: &[Hash]) {
        let budget = MAX_FRAME_BYTES - crate::protocol::ENVELOPE_ALLOWANCE_BYTES;
        let mut blocks = Vec::new();
        let mut size = 32;
        for hash in hashes.iter().take(MAX_BLOCKS_PER_REQUEST) {
            let Some(block) = self.tree.block(hash) else {
                continue;
            };
            if self.is_hidden(hash) {
                // A block of our private branch: as if we did not have it.
                continue;
            }
            let block_size =
                serde_json::to_string(block.as_ref()).map_or(usize::MAX, |json| json.len() + 1);
            if size + block_size > budget {
                break;
            }
            size += block_size;
            blocks.push(block.as_ref().clone());
        }
        self.send_reply(from, &NodeMessage::Blocks { blocks });
    }

    /// `bytes`: the size of the announcement, what a side-branch budget is charged.
    fn on_new_block(&mut self, from: &PeerId, block: Block, bytes: usize, now_ms: u64) {
        if self.beyond_side_branch_window(&block.header) {
            self.penalize(from, Offense::UselessSideBranch);
            return;
        }
        let hash = block.hash();
        if !self.side_block_allowed(from, &block, &hash, bytes, now_ms) {
            self.penalize(from, Offense::SideBranchFlood);
            return;
        }
        let height = block.header.height;
        let prev_hash = block.header.prev_hash;
        if let Some(peer) = self.peers.get_mut(from) {
            peer.known.insert(hash);
        }
        // The copy to forward is made only when a direct neighbour could want it: without
        // direct links (the native node, a tab on the relay alone) a block is never cloned here.
        let gossiping = !self.tree.contains(&hash) && self.direct_link_count() > 0;
        let announcement = gossiping.then(|| NodeMessage::NewBlock {
            block: block.clone(),
        });
        let orphan = self.accept_block_from(from, block, now_ms);
        if let Some(announcement) = announcement {
            if self.tree.total_work(&hash).is_some() {
                self.gossip(hash, from, &announcement);
            }
        }
        let raced = self.note_announcement(prev_hash, hash);
        self.last_announcement_ms = now_ms;
        if let Some(total_work) = self.tree.total_work(&hash) {
            let tip = TipStatus {
                hash,
                height,
                total_work,
            };
            if raced {
                // Two blocks on one parent: each node may have taken either; every node that
                // sees the race says where it went.
                self.forget_belief();
            } else {
                self.infer_tips(Some(from), &prev_hash, tip);
            }
            self.on_claim(from, tip, now_ms);
        } else if self.believed_tip == Some(prev_hash) {
            // Not taken (not yet valid by our clock, or invalid): those who took it think we
            // did too.
            self.forget_belief();
        }
        if orphan {
            // Its parent is missing: the headers after our chain show what to fetch (paced).
            self.request_headers(from, false, now_ms);
        }
    }

    /// Records an announced block; whether its parent already had another announced child.
    pub(crate) fn note_announcement(&mut self, parent: Hash, child: Hash) -> bool {
        match self.announced.get_mut(&parent) {
            Some(Some(first)) if *first == child => false,
            Some(entry) => {
                *entry = None;
                true
            }
            None => {
                self.announced.insert(parent, Some(child));
                false
            }
        }
    }

    /// Where a peer that announced `tip` is now, by the announcements since: each block
    /// announced on it (and taken by us) that no other announced block raced. A status can
    /// cross the announcements that its sender took after sending it.
    pub(crate) fn follow_announcements(&self, mut tip: TipStatus) -> TipStatus {
        for _ in 0..MAX_REMEMBERED_ANNOUNCEMENTS {
            let Some(Some(child)) = self.announced.get(&tip.hash) else {
                break;
            };
            match self.status_of(child) {
                Some(next) => tip = next,
                None => break,
            }
        }
        tip
    }

    /// Our peers may believe a tip that is not ours: our status goes out (paced as any).
    fn forget_belief(&mut self) {
        self.believed_tip = None;
        self.status_due = true;
    }

    /// A dropped message that announced a block: see [`Node::forget_belief`].
    fn dropped_announcement(&mut self, text: &str) {
        if NodeMessage::is_announcement(text) {
            self.forget_belief();
        }
    }

    /// A `new_block` `tip` (on `parent`) that we took in: every peer whose tip we knew as
    /// `parent` took the same announcement (the sender sent it to every peer), so we know it at
    /// `tip` now, without its `status`; and our peers, who knew us at `parent`, know us at `tip`.
    /// A peer whose tip then differs says so in a `status` (our tip differing from what our
    /// peers believe is the one reason we send one: see [`Node::believed_tip`]).
    pub(crate) fn infer_tips(&mut self, from: Option<&PeerId>, parent: &Hash, tip: TipStatus) {
        if self.believed_tip == Some(*parent) {
            self.believed_tip = Some(tip.hash);
        }
        let moved: Vec<PeerId> = self
            .peers
            .values_mut()
            .filter(|peer| {
                Some(&peer.id) != from
                    && peer.follows_announcements
                    && peer.tip.is_some_and(|known| known.hash == *parent)
            })
            .map(|peer| {
                // Not marked as known to it: that would stop our gossip, and over direct links
                // (the relay away) the block may reach it only through us.
                peer.tip = Some(tip);
                peer.id.clone()
            })
            .collect();
        for peer in moved {
            self.event(NodeEvent::PeerTip { peer, tip });
        }
    }

    /// Whether `from` may make us check and store `block`: always when it could become our tip
    /// (or we cannot tell: its parent is not here, or we hold it already); a block that would
    /// lose to our tip draws on the peer's side-branch budget (see [`SIDE_BLOCKS_BURST`]).
    pub(crate) fn side_block_allowed(
        &mut self,
        from: &PeerId,
        block: &Block,
        hash: &Hash,
        bytes: usize,
        now_ms: u64,
    ) -> bool {
        if self.tree.contains(hash) {
            return true;
        }
        let Some(parent_work) = self.tree.total_work(&block.header.prev_hash) else {
            return true;
        };
        let work = parent_work
            .checked_add(block.header.target.work())
            .unwrap_or(parent_work);
        if self.beats_our_tip(work, hash) {
            return true;
        }
        let Some(peer) = self.peers.get_mut(from) else {
            return false;
        };
        let allowed = peer.side_block_bytes.ready(now_ms) && peer.side_blocks.take(now_ms);
        if allowed {
            peer.side_block_bytes.spend(bytes);
        }
        allowed
    }

    /// Adds a block from a peer; returns whether it was an orphan.
    fn accept_block_from(&mut self, from: &PeerId, block: Block, now_ms: u64) -> bool {
        let hash = block.hash();
        match self.tree.add_block(block, now_ms) {
            Ok(outcome) => {
                self.remember_source(hash, from);
                let orphan = matches!(outcome, AddOutcome::Orphan { .. });
                self.after_add(hash, outcome, Some(from.clone()), now_ms);
                orphan
            }
            Err(error) => {
                if let ChainError::InvalidAncestor {
                    ancestor,
                    error: why,
                    removed,
                    ..
                } = &error
                {
                    // The block was fine; an ancestor on its branch broke the ledger.
                    for hash in removed {
                        self.push(Output::DeleteBlock(*hash));
                    }
                    let (ancestor, why) = (*ancestor, why.as_ref().clone());
                    self.blame(&ancestor, &why, Some(from));
                }
                self.event(NodeEvent::BlockRejected {
                    hash,
                    from: Some(from.clone()),
                    reason: error.to_string(),
                });
                let offense = match &error {
                    ChainError::Invalid {
                        error: ValidationError::TimestampTooFarAhead { .. },
                        ..
                    } => {
                        // Ahead of *our* clock: ours may be the one that is wrong (classroom
                        // clocks differ by tens of seconds), so it is no offence. The block is
                        // taken when it is asked for again later.
                        return false;
                    }
                    ChainError::Invalid { error, .. } if !error.marks_hash_invalid() => {
                        Offense::QuestionableBlock(error.to_string())
                    }
                    ChainError::KnownInvalid(_) => Offense::QuestionableBlock(error.to_string()),
                    ChainError::InvalidAncestor { .. } => {
                        Offense::QuestionableBlock(error.to_string())
                    }
                    _ => Offense::InvalidBlock(error.to_string()),
                };
                self.penalize(from, offense);
                false
            }
        }
    }

    fn on_new_transaction(&mut self, from: &PeerId, tx: Transaction, now_ms: u64) {
        let chain_id = self.tree.chain_id();
        let id = tx.id();
        if let Some(peer) = self.peers.get_mut(from) {
            peer.known.insert(id);
        }
        let announcement =
            (self.direct_link_count() > 0).then(|| NodeMessage::NewTransaction { tx: tx.clone() });
        let us = self.address();
        let to_us = (tx.to == us && tx.sender() != us).then(|| tx.clone());
        match self.mempool.add(tx, self.tree.ledger(), &chain_id) {
            Ok(id) => {
                if let Some(payment) = to_us {
                    self.note_incoming_pending(&payment);
                }
                if let Some(announcement) = announcement {
                    self.gossip(id, from, &announcement);
                }
                self.event(NodeEvent::TransactionAccepted {
                    id,
                    from_peer: Some(from.clone()),
                });
                if self.mining {
                    // A fee-paying transaction is worth including at once.
                    self.restart_mining(now_ms);
                }
            }
            Err(MempoolError::AlreadyKnown) => {}
            Err(MempoolError::Invalid(error)) => {
                self.penalize(from, Offense::InvalidTransaction(error.to_string()))
            }
            // It does not fit our ledger as we see it now (a nonce our branch already used, a
            // gap, a balance from blocks we have not synced, a full pool): an honest peer on
            // another branch, or one ahead of us, sends such transactions. Dropped, never
            // charged; once we are in sync we ask for the pools again (`mempool_wanted`).
            Err(_) => {}
        }
    }

    // ---- chain changes ----

    fn after_add(&mut self, hash: Hash, outcome: AddOutcome, from: Option<PeerId>, now_ms: u64) {
        match outcome {
            AddOutcome::AlreadyKnown | AddOutcome::Orphan { .. } => {}
            AddOutcome::SideBranch => {
                if let Some(block) = self.tree.block(&hash).cloned() {
                    if self.storable(&block) {
                        self.push(Output::StoreBlock(block.clone()));
                    }
                    self.event(NodeEvent::BlockAccepted {
                        hash,
                        height: block.header.height,
                        from,
                        side_branch: true,
                    });
                }
            }
            AddOutcome::TipChanged(change) => self.on_tip_changed(change, from, now_ms),
        }
        self.update_public_tip();
    }

    fn on_tip_changed(&mut self, change: TipChange, from: Option<PeerId>, now_ms: u64) {
        for block in &change.connected {
            if self.storable(block) {
                self.push(Output::StoreBlock(Arc::clone(block)));
            }
            let hash = block.hash();
            let source = self.sources.get(&hash).cloned().or_else(|| from.clone());
            self.event(NodeEvent::BlockAccepted {
                hash,
                height: block.header.height,
                from: source,
                side_branch: false,
            });
        }
        for hash in &change.removed {
            self.push(Output::DeleteBlock(*hash));
        }
        for (hash, error) in &change.rejected {
            self.blame(hash, error, from.as_ref());
        }
        let dropped =
            self.mempool
                .on_new_tip(self.tree.ledger(), &change.disconnected, &change.connected);
        self.update_own_txs(&change, &dropped);
        self.schedule_announce(now_ms);
        self.event(NodeEvent::TipChanged {
            hash: change.new_tip,
            height: change.new_height,
            reorg_depth: change.reorg_depth(),
            disconnected: change
                .disconnected
                .iter()
                .map(|block| block.hash())
                .collect(),
            connected: change.connected.iter().map(|block| block.hash()).collect(),
        });
        // One status and one new mining job per call into the node, however many blocks the
        // call connected (a sync batch connects 64): see `poll_output`.
        self.tip_moved = true;
        self.maybe_sync(now_ms);
    }

    /// A block found invalid after it was taken in: reported, and its sender (if we remember
    /// who sent it, else whoever delivered the block that exposed it) pays for it.
    fn blame(
        &mut self,
        hash: &Hash,
        error: &crate::validation::ValidationError,
        fallback: Option<&PeerId>,
    ) {
        let sender = self.sources.remove(hash).or_else(|| fallback.cloned());
        self.event(NodeEvent::BlockRejected {
            hash: *hash,
            from: sender.clone(),
            reason: error.to_string(),
        });
        if let Some(sender) = sender {
            let offense = if error.marks_hash_invalid() {
                Offense::InvalidBlock(error.to_string())
            } else {
                Offense::QuestionableBlock(error.to_string())
            };
            self.penalize(&sender, offense);
        }
    }

    fn remember_source(&mut self, hash: Hash, from: &PeerId) {
        self.sources.insert(hash, from.clone());
    }

    fn restart_mining(&mut self, now_ms: u64) {
        if self.private.is_some() {
            self.emit_private_job(now_ms);
            return;
        }
        let limit = self.tree.params().max_block_txs;
        let txs = self.mempool.select(self.tree.ledger(), limit);
        let block = self.tree.block_template(self.address(), txs, now_ms);
        self.next_job_id += 1;
        self.current_job = Some(self.next_job_id);
        self.push(Output::Mine(MiningJob {
            job_id: self.next_job_id,
            block,
        }));
    }

    // ---- helpers ----

    fn advance_clock(&mut self, now_ms: u64) {
        self.now_ms = self.now_ms.max(now_ms);
    }

    /// When a due status may go out: now in sync, else one interval after the last one.
    fn status_deadline(&self) -> u64 {
        let syncing = matches!(self.sync.state(), SyncState::Syncing { .. });
        match (syncing, self.last_status_ms) {
            (true, Some(last)) => last + STATUS_INTERVAL_WHILE_SYNCING_MS,
            _ => self.now_ms,
        }
    }

    /// When our quiet-time status is due (see [`QUIET_STATUS_INTERVALS`]), if it is.
    fn quiet_status_deadline(&self) -> Option<u64> {
        let interval = self.tree.params().target_block_ms;
        (!self.peers.is_empty() && self.quiet_status_for != Some(self.advertised_tip().hash))
            .then(|| self.last_announcement_ms + QUIET_STATUS_INTERVALS * interval)
    }

    fn announce_status_if_quiet(&mut self, now_ms: u64) {
        if self.quiet_status_deadline().is_none_or(|due| now_ms < due) {
            return;
        }
        let tip = self.advertised_tip();
        self.quiet_status_for = Some(tip.hash);
        self.believed_tip = Some(tip.hash);
        self.last_status_ms = Some(now_ms);
        self.broadcast(&NodeMessage::Status { tip });
    }

    /// Broadcasts our `status` for a tip change: at once when in sync, at most once per
    /// [`STATUS_INTERVAL_WHILE_SYNCING_MS`] while syncing, whatever holds the sync up.
    fn announce_status_if_due(&mut self, now_ms: u64) {
        if !self.status_due || now_ms < self.status_deadline() {
            return;
        }
        self.status_due = false;
        let tip = self.advertised_tip();
        if self.believed_tip == Some(tip.hash) {
            // The announcements we took say it already.
            return;
        }
        self.last_status_ms = Some(now_ms);
        self.believed_tip = Some(tip.hash);
        self.last_announcement_ms = now_ms;
        self.broadcast(&NodeMessage::Status { tip });
    }

    fn send_hello(&mut self, to: &PeerId) {
        if let Some(peer) = self.peers.get_mut(to) {
            peer.hello_sent = true;
        } else {
            return;
        }
        let hello = self.hello_message();
        self.send(to, &hello);
    }

    /// Our hello, as it goes to every peer.
    fn hello_message(&mut self) -> NodeMessage {
        if self.believed_tip.is_none() && !self.status_due {
            // The first peers to hear of us learn our tip from this hello.
            self.believed_tip = Some(self.advertised_tip().hash);
        }
        NodeMessage::Hello {
            protocol_version: PROTOCOL_VERSION,
            chain_id: self.tree.chain_id(),
            genesis_hash: self.tree.genesis_hash(),
            name: self.name.clone(),
            address: self.address(),
            tip: self.advertised_tip(),
            direct_links: self.max_direct_links > 0,
        }
    }

    /// Whether `peer` may draw a reply now. Every reply counts against the peer's budgets
    /// (messages, [`REPLIES_PER_SECOND`], and bytes) and those of all peers together, which stay
    /// below what the relay lets us send (see [`REPLY_BYTES_PER_SECOND`]); its bytes are counted
    /// when it is sent (`send_reply`). Beyond a budget the peer is told to wait (`reply_busy`)
    /// rather than left to time out and blame us.
    fn reply_allowed(&mut self, peer: &PeerId, now_ms: u64) -> bool {
        let total_ready = self.reply_bytes.ready(now_ms) && self.replies.has_token(now_ms);
        let allowed = total_ready
            && self
                .peers
                .get_mut(peer)
                .is_some_and(|info| info.reply_bytes.ready(now_ms) && info.replies.take(now_ms))
            && self.replies.take(now_ms);
        if !allowed {
            self.reply_busy(peer, now_ms);
        }
        allowed
    }

    /// Tells `peer` we could not take its request, at most once per [`NOTICE_INTERVAL_MS`]
    /// (a flood of requests draws one small frame a second, not one per request).
    fn reply_busy(&mut self, peer: &PeerId, now_ms: u64) {
        let Some(info) = self.peers.get_mut(peer) else {
            return;
        };
        // A peer whose hello we lost (refused while paused) is told too.
        if matches!(info.handshake, Handshake::Refused(_))
            || !info.notice_due(|peer| &mut peer.last_busy_reply_ms, now_ms)
        {
            return;
        }
        self.reply_error(peer, BUSY_ERROR_CODE, "busy: ask again later");
    }

    fn refuse(&mut self, from: &PeerId, reason: String) {
        if let Some(peer) = self.peers.get_mut(from) {
            peer.handshake = Handshake::Refused(reason.clone());
        }
        self.sync.reset_peer(from);
        self.event(NodeEvent::PeerRefused {
            peer: from.clone(),
            reason,
        });
    }

    fn penalize(&mut self, peer_id: &PeerId, offense: Offense) {
        let Some(peer) = self.peers.get_mut(peer_id) else {
            return;
        };
        peer.decay(self.now_ms);
        peer.misbehavior = peer.misbehavior.saturating_add(offense.score());
        let reason = offense.describe();
        peer.last_offense = Some(reason.clone());
        let newly_banned = !peer.banned && peer.misbehavior >= BAN_SCORE;
        if newly_banned {
            peer.banned = true;
            if peer.link != LinkState::None {
                peer.link = LinkState::None;
                self.outputs.push(Output::CloseLink {
                    peer: peer_id.clone(),
                });
            }
        }
        let (score, banned) = (peer.misbehavior, peer.banned);
        if newly_banned {
            self.sync.reset_peer(peer_id);
        }
        self.event(NodeEvent::PeerMisbehaved {
            peer: peer_id.clone(),
            reason,
            score,
            banned,
        });
    }

    /// Asks peers in `mempool_wanted` for their pools once we are in sync: only then can their
    /// transactions be judged against the ledger they were made for. At most
    /// [`MEMPOOL_SOURCES`] of them at once: their pools hold the same payments, and each peer
    /// sends us its own pending ones when it first hears from us (`send_own_pending`).
    pub(crate) fn ask_wanted_mempools(&mut self) {
        if self.sync.state() != SyncState::Synced || self.mempool_wanted.is_empty() {
            return;
        }
        let wanted = std::mem::take(&mut self.mempool_wanted);
        let budget = MEMPOOL_SOURCES.saturating_sub(self.mempools_asked);
        // In an order of our own (our address mixed with theirs), so joiners do not all ask
        // the same few peers.
        let ours = self.address();
        let mut usable: Vec<PeerId> = wanted
            .into_iter()
            .filter(|peer| self.peers.get(peer).is_some_and(PeerInfo::usable))
            .collect();
        usable.sort_by_key(|peer| Hash::digest(&[&ours.0, peer.as_str().as_bytes()]));
        for peer in usable.into_iter().take(budget) {
            self.mempools_asked += 1;
            self.send(&peer, &NodeMessage::GetMempool);
        }
    }

    fn reply_error(&mut self, to: &PeerId, code: &str, message: &str) {
        let message: String = message.chars().take(200).collect();
        self.send(
            to,
            &NodeMessage::Error {
                code: code.into(),
                message,
            },
        );
    }

    /// Sends a reply that `reply_allowed` let through, and charges its bytes to the budgets.
    fn send_reply(&mut self, to: &PeerId, message: &NodeMessage) {
        let bytes = self.send(to, message);
        self.reply_bytes.spend(bytes);
        if let Some(peer) = self.peers.get_mut(to) {
            peer.reply_bytes.spend(bytes);
        }
    }

    /// Sends `message` to one peer; returns the bytes that went out (0 when nothing did).
    fn send(&mut self, to: &PeerId, message: &NodeMessage) -> usize {
        let Some(peer) = self.peers.get_mut(to) else {
            return 0;
        };
        if peer.banned || peer.muted {
            return 0;
        }
        if let Some(hash) = inventory_of(message) {
            peer.known.insert(hash);
        }
        let peer = &self.peers[to];
        let Some(route) = self.route_to(peer) else {
            return 0;
        };
        let payload = message.encode();
        let bytes = payload.len();
        self.push(Output::Send {
            to: to.clone(),
            payload,
            route,
        });
        bytes
    }

    /// Sends `message` to every peer: over the direct links, and through the relay to the
    /// rest (one relay broadcast when nobody is excluded and no direct link exists, or when
    /// more than [`MAX_RELAY_SENDS_PER_BROADCAST`] peers need the relay).
    fn broadcast(&mut self, message: &NodeMessage) {
        let payload = message.encode();
        let inventory = inventory_of(message);
        let mut direct = Vec::new();
        let mut relayed = Vec::new();
        let mut excluded = false;
        for peer in self.peers.values_mut() {
            if peer.banned || peer.muted {
                excluded |= peer.in_room;
                continue;
            }
            if let Some(hash) = inventory {
                peer.known.insert(hash);
            }
            if peer.link.is_direct() {
                direct.push(peer.id.clone());
            } else if peer.in_room {
                relayed.push(peer.id.clone());
            }
        }
        for to in direct.iter().cloned() {
            self.push(Output::Send {
                to,
                payload: payload.clone(),
                route: Route::Direct,
            });
        }
        if !self.relay_connected || relayed.is_empty() {
            return;
        }
        let whole_room =
            !excluded && (direct.is_empty() || relayed.len() > MAX_RELAY_SENDS_PER_BROADCAST);
        if whole_room {
            self.push(Output::Broadcast { payload });
            return;
        }
        for to in relayed {
            self.push(Output::Send {
                to,
                payload: payload.clone(),
                route: Route::Relay,
            });
        }
    }

    fn event(&mut self, event: NodeEvent) {
        self.push(Output::Event(event));
    }

    fn push(&mut self, output: Output) {
        self.outputs.push(output);
    }
}

/// The block or transaction a message announces, to remember that its recipient has it.
fn inventory_of(message: &NodeMessage) -> Option<Hash> {
    match message {
        NodeMessage::NewBlock { block } => Some(block.hash()),
        NodeMessage::NewTransaction { tx } => Some(tx.id()),
        NodeMessage::Status { tip } => Some(tip.hash),
        _ => None,
    }
}
