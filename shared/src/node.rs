//! The node as a sans-I/O state machine, in the style of quinn-proto: events go in through
//! `handle_*` methods and commands from the application, and what the caller must do comes out
//! of [`Node::poll_output`]. The browser tab, the native program and the simulator are three
//! small drivers of this one type: they move bytes, keep time, store blocks and draw.
//!
//! Sync is headers-first: a peer that announces more work than ours is asked for headers after
//! our block locator (at most 500 per reply), the headers are checked for linkage and proof of
//! work, and the missing blocks are fetched in batches of 16, at most 64 in flight. Only one
//! peer leads a header sync at a time; if it leaves, stalls or lies, another one takes over.

use crate::block::Block;
use crate::chain::{AddOutcome, BlockTree, ChainError, TipChange};
use crate::hash::Hash;
use crate::keys::{Address, Keypair};
use crate::mempool::{Mempool, MempoolError};
use crate::mining::meets_target;
use crate::params::NetworkParams;
use crate::protocol::message::{
    NodeMessage, ProtocolError, TipStatus, MAX_BLOCKS_PER_REQUEST, MAX_HEADERS_PER_MESSAGE,
    MAX_TXS_PER_MESSAGE, PROTOCOL_VERSION,
};
use crate::protocol::{PeerId, MAX_FRAME_BYTES};
use crate::tx::Transaction;
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::Arc;
use thiserror::Error;

/// Blocks asked for in one `get_blocks` (the protocol's most). Full blocks would not fit one
/// frame, so the reply is cut at the frame limit and the rest asked again; typical blocks are
/// small. Each reply brings one new request, so this sets the request rate of a fast sync: a
/// native node importing 10,000 blocks a second sends about 160 frames a second, inside the
/// relay's default rate limit (200 a second, bursts of 400).
pub const BLOCKS_PER_REQUEST: usize = 64;
/// Blocks in flight from the sync peer at once: four requests, enough to hide a round trip.
pub const MAX_BLOCKS_IN_FLIGHT: usize = 256;
/// While syncing, our `status` goes out at most this often (the tip moves with every reply, and
/// nobody needs each step); once in sync, every tip change is announced at once.
pub const STATUS_INTERVAL_WHILE_SYNCING_MS: u64 = 1_000;
/// A peer that does not answer a request within this time is stalling.
pub const REQUEST_TIMEOUT_MS: u64 = 15_000;
/// Misbehaviour score at which a peer is dropped: ignored and never sent to again.
pub const BAN_SCORE: u32 = 100;
/// Peers we keep state for; the relay caps rooms lower than this.
pub const MAX_PEERS: usize = 256;
/// Queued outputs before the oldest event is dropped; drivers drain the queue after every call,
/// so this only bounds a driver that forgets to.
pub const MAX_QUEUED_OUTPUTS: usize = 100_000;
/// Our own sent transactions whose fate we remember for the wallet view.
pub const MAX_TRACKED_OWN_TXS: usize = 500;
/// A peer's misbehaviour score falls by one point per this interval, so rare honest mistakes
/// (a lost reply, a transaction from another branch) never add up to a ban over a long session.
pub const MISBEHAVIOR_DECAY_MS: u64 = 10_000;
/// Room left in a frame for the relay envelope around a payload.
const ENVELOPE_ALLOWANCE: usize = 1_024;

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
    /// Headers that do not link or lack proof of work.
    InvalidHeaders(String),
    /// A transaction with a bad signature or impossible fields.
    InvalidTransaction(String),
    /// A transaction that conflicts with our ledger: honest nodes on another branch can send one.
    StaleTransaction(String),
    /// Announced more work than it could show.
    FalseWorkClaim,
    /// Did not answer a request in time.
    Stalled,
    /// Sent headers or blocks we never asked for.
    Unsolicited(&'static str),
}

impl Offense {
    pub fn score(&self) -> u32 {
        match self {
            Offense::InvalidBlock(_) | Offense::InvalidHeaders(_) => 100,
            Offense::OversizedMessage(_) | Offense::FalseWorkClaim => 50,
            Offense::MalformedMessage(_) | Offense::InvalidTransaction(_) => 25,
            Offense::QuestionableBlock(_) | Offense::Unsolicited(_) | Offense::Stalled => 10,
            Offense::StaleTransaction(_) => 2,
        }
    }
    pub fn describe(&self) -> String {
        match self {
            Offense::MalformedMessage(why) => format!("malformed message: {why}"),
            Offense::OversizedMessage(size) => format!("oversized message of {size} bytes"),
            Offense::InvalidBlock(why) => format!("invalid block: {why}"),
            Offense::QuestionableBlock(why) => format!("block rejected: {why}"),
            Offense::InvalidHeaders(why) => format!("invalid headers: {why}"),
            Offense::InvalidTransaction(why) => format!("invalid transaction: {why}"),
            Offense::StaleTransaction(why) => format!("transaction rejected: {why}"),
            Offense::FalseWorkClaim => "claimed more work than it could show".into(),
            Offense::Stalled => "did not answer a request in time".into(),
            Offense::Unsolicited(what) => format!("sent {what} we did not ask for"),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Handshake {
    /// We sent our hello and wait for theirs.
    Pending,
    Done,
    /// Another network or protocol version; the reason is shown to people.
    Refused(String),
}

/// What we know about one peer.
#[derive(Clone, Debug)]
pub struct PeerInfo {
    pub id: PeerId,
    pub name: Option<String>,
    pub address: Option<Address>,
    pub handshake: Handshake,
    pub tip: Option<TipStatus>,
    pub misbehavior: u32,
    pub banned: bool,
    /// Muted by the user: nothing is sent to or accepted from it (to make forks on purpose).
    pub muted: bool,
    pub last_offense: Option<String>,
    pub joined_at_ms: u64,
    last_decay_ms: u64,
    headers_requested_at: Option<u64>,
    blocks_requested_at: Option<u64>,
    download_queue: VecDeque<Hash>,
    blocks_in_flight: HashSet<Hash>,
    /// The last header of a full `headers` reply: the next request continues from it, so a
    /// branch longer than one reply is walked even while its blocks are not yet our best chain.
    continue_from: Option<Hash>,
    /// The tip it claimed when it last failed to show the work; we do not sync from it again
    /// until it announces another tip.
    distrusted_tip: Option<Hash>,
}

impl PeerInfo {
    fn new(id: PeerId, now_ms: u64) -> PeerInfo {
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
            headers_requested_at: None,
            blocks_requested_at: None,
            download_queue: VecDeque::new(),
            blocks_in_flight: HashSet::new(),
            continue_from: None,
            distrusted_tip: None,
        }
    }
    fn usable(&self) -> bool {
        self.handshake == Handshake::Done && !self.banned && !self.muted
    }
}

/// The state of one of our own transactions, for the wallet view.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OwnTxState {
    Pending,
    Confirmed { height: u64, block: Hash },
    Dropped { reason: String },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OwnTx {
    pub tx: Transaction,
    pub id: Hash,
    pub state: OwnTxState,
}

/// Whether we are catching up with a peer that has more work.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SyncState {
    Synced,
    Syncing { target_height: u64 },
}

/// Work for the miner: find a nonce for `block.header`; then call [`Node::handle_mined_block`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MiningJob {
    pub job_id: u64,
    pub block: Block,
}

/// Something that changed which the UI may show.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NodeEvent {
    TipChanged {
        hash: Hash,
        height: u64,
        /// Blocks that left the best chain; more than zero means a reorg.
        reorg_depth: usize,
        disconnected: Vec<Hash>,
        connected: Vec<Hash>,
    },
    BlockAccepted {
        hash: Hash,
        height: u64,
        from: Option<PeerId>,
        side_branch: bool,
    },
    BlockRejected {
        hash: Hash,
        from: Option<PeerId>,
        reason: String,
    },
    PeerJoined {
        peer: PeerId,
    },
    PeerLeft {
        peer: PeerId,
    },
    PeerHello {
        peer: PeerId,
        name: String,
        address: Address,
    },
    PeerRefused {
        peer: PeerId,
        reason: String,
    },
    PeerTip {
        peer: PeerId,
        tip: TipStatus,
    },
    PeerMisbehaved {
        peer: PeerId,
        reason: String,
        score: u32,
        banned: bool,
    },
    TransactionAccepted {
        id: Hash,
        from_peer: Option<PeerId>,
    },
    TransactionConfirmed {
        id: Hash,
        height: u64,
    },
    TransactionDropped {
        id: Hash,
        reason: String,
    },
    SyncChanged(SyncState),
}

/// What the caller must do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Output {
    /// Send `payload` (a JSON node message) to one peer.
    Send {
        to: PeerId,
        payload: String,
    },
    /// Send `payload` to every peer in the room.
    Broadcast {
        payload: String,
    },
    /// Persist this block (it was accepted into the tree).
    StoreBlock(Arc<Block>),
    /// Forget a stored block (it turned out invalid).
    DeleteBlock(Hash),
    /// Start mining on this job, abandoning any earlier one.
    Mine(MiningJob),
    /// Stop mining.
    StopMining,
    Event(NodeEvent),
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SendError {
    #[error("the amount must be more than zero")]
    ZeroAmount,
    #[error(transparent)]
    Rejected(#[from] MempoolError),
}

pub struct NodeConfig {
    pub params: NetworkParams,
    pub name: String,
    pub keypair: Keypair,
}

/// One tabchain node.
pub struct Node {
    name: String,
    keypair: Keypair,
    tree: BlockTree,
    mempool: Mempool,
    peers: BTreeMap<PeerId, PeerInfo>,
    sync_peer: Option<PeerId>,
    sync_state: SyncState,
    mining: bool,
    next_job_id: u64,
    own_txs: VecDeque<OwnTx>,
    outputs: VecDeque<Output>,
    /// Set when the best chain moved during the current call; the status broadcast and the new
    /// mining job wait for the next `poll_output`, so a batch of blocks causes one of each.
    tip_moved_at: Option<u64>,
    /// The tip moved at this time and our `status` about it has not gone out yet.
    status_due: Option<u64>,
    last_status_ms: Option<u64>,
}

impl Node {
    pub fn new(config: NodeConfig) -> Node {
        Node {
            name: config.name,
            keypair: config.keypair,
            tree: BlockTree::new(config.params),
            mempool: Mempool::new(),
            peers: BTreeMap::new(),
            sync_peer: None,
            sync_state: SyncState::Synced,
            mining: false,
            next_job_id: 0,
            own_txs: VecDeque::new(),
            outputs: VecDeque::new(),
            tip_moved_at: None,
            status_due: None,
            last_status_ms: None,
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
    pub fn sync_state(&self) -> SyncState {
        self.sync_state
    }
    pub fn is_mining(&self) -> bool {
        self.mining
    }
    pub fn balance(&self, address: &Address) -> u64 {
        self.tree.ledger().balance(address)
    }
    pub fn own_transactions(&self) -> impl Iterator<Item = &OwnTx> {
        self.own_txs.iter()
    }
    pub fn tip_status(&self) -> TipStatus {
        TipStatus {
            hash: self.tree.tip_hash(),
            height: self.tree.tip_height(),
            total_work: self.tree.tip_work(),
        }
    }
    /// The next thing the caller must do, if any. Drain it after every call into the node.
    pub fn poll_output(&mut self) -> Option<Output> {
        let moved = self.tip_moved_at.take();
        if moved.is_some() {
            self.status_due = moved;
        }
        self.announce_status_if_due();
        if let (Some(now_ms), true) = (moved, self.mining) {
            self.restart_mining(now_ms);
        }
        self.outputs.pop_front()
    }
    /// When the node next needs [`Node::handle_tick`]: the earliest request deadline.
    pub fn poll_timeout(&self) -> Option<u64> {
        self.peers
            .values()
            .flat_map(|peer| [peer.headers_requested_at, peer.blocks_requested_at])
            .flatten()
            .min()
            .map(|sent| sent + REQUEST_TIMEOUT_MS)
    }

    // ---- start-up ----

    /// Replays blocks kept in storage (any order; they are sorted by height). Invalid ones are
    /// deleted from storage; nothing is broadcast.
    pub fn handle_stored_blocks(&mut self, mut blocks: Vec<Block>, now_ms: u64) {
        blocks.sort_by_key(|block| block.header.height);
        let old_tip = self.tree.tip_hash();
        for block in blocks {
            let hash = block.hash();
            if let Err(error) = self.tree.add_block(block, now_ms) {
                self.push(Output::DeleteBlock(hash));
                self.event(NodeEvent::BlockRejected {
                    hash,
                    from: None,
                    reason: format!("stored block: {error}"),
                });
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

    /// Puts back our own transactions kept in storage (the mempool of our last session).
    pub fn handle_stored_transactions(&mut self, txs: Vec<Transaction>) {
        for tx in txs {
            let id = tx.id();
            let chain_id = self.tree.chain_id();
            if self
                .mempool
                .add(tx.clone(), self.tree.ledger(), &chain_id)
                .is_ok()
                && tx.from == self.keypair.public()
            {
                self.track_own(OwnTx {
                    tx,
                    id,
                    state: OwnTxState::Pending,
                });
            }
        }
    }

    // ---- peers ----

    pub fn handle_peer_joined(&mut self, peer: PeerId, now_ms: u64) {
        if self.peers.contains_key(&peer) || self.peers.len() >= MAX_PEERS {
            return;
        }
        self.peers
            .insert(peer.clone(), PeerInfo::new(peer.clone(), now_ms));
        self.event(NodeEvent::PeerJoined { peer: peer.clone() });
        let hello = self.hello();
        self.send(&peer, &hello);
    }

    pub fn handle_peer_left(&mut self, peer: &PeerId, now_ms: u64) {
        if self.peers.remove(peer).is_none() {
            return;
        }
        self.event(NodeEvent::PeerLeft { peer: peer.clone() });
        if self.sync_peer.as_ref() == Some(peer) {
            self.sync_peer = None;
        }
        self.maybe_sync(now_ms);
    }

    /// Our connection to the room dropped: every peer is gone.
    pub fn handle_disconnected(&mut self, now_ms: u64) {
        let peers: Vec<PeerId> = self.peers.keys().cloned().collect();
        for peer in peers {
            self.handle_peer_left(&peer, now_ms);
        }
    }

    pub fn set_peer_muted(&mut self, peer: &PeerId, muted: bool, now_ms: u64) {
        if let Some(info) = self.peers.get_mut(peer) {
            info.muted = muted;
            info.headers_requested_at = None;
            info.blocks_requested_at = None;
            info.blocks_in_flight.clear();
            info.download_queue.clear();
        }
        if muted && self.sync_peer.as_ref() == Some(peer) {
            self.sync_peer = None;
        }
        if !muted {
            let hello = self.hello();
            self.send(peer, &hello);
        }
        self.maybe_sync(now_ms);
    }

    /// A message arrived from `from`. Nothing a peer sends can make this panic or change our
    /// chain other than by valid blocks.
    pub fn handle_message(&mut self, from: &PeerId, text: &str, now_ms: u64) {
        if !self.peers.contains_key(from) {
            // The relay tells us of joins before messages; a stranger is treated as joined.
            self.handle_peer_joined(from.clone(), now_ms);
        }
        match self.peers.get(from) {
            Some(peer) if !peer.banned && !peer.muted => {}
            _ => return,
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
            } => self.on_hello(
                from,
                protocol_version,
                chain_id,
                genesis_hash,
                name,
                address,
                tip,
                now_ms,
            ),
            NodeMessage::HelloRejected { reason } => {
                self.refuse(from, format!("it refused us: {reason}"));
            }
            NodeMessage::Error { .. } => {
                // A peer's complaint about one of our messages; never answered, so two nodes
                // cannot trade errors forever.
            }
            _ if !handshake_done => {
                // Until the hello, we do not know the peer is on our network.
            }
            NodeMessage::Status { tip } => self.on_status(from, tip, now_ms),
            NodeMessage::GetHeaders { locator } => {
                let headers = self.tree.headers_after(&locator, MAX_HEADERS_PER_MESSAGE);
                self.send(from, &NodeMessage::Headers { headers });
            }
            NodeMessage::Headers { headers } => self.on_headers(from, headers, now_ms),
            NodeMessage::GetBlocks { hashes } => self.on_get_blocks(from, &hashes),
            NodeMessage::Blocks { blocks } => self.on_blocks(from, blocks, now_ms),
            NodeMessage::NewBlock { block } => self.on_new_block(from, block, now_ms),
            NodeMessage::NewTransaction { tx } => self.on_new_transaction(from, tx, now_ms),
            NodeMessage::GetMempool => {
                let txs: Vec<Transaction> = self
                    .mempool
                    .transactions()
                    .into_iter()
                    .take(MAX_TXS_PER_MESSAGE)
                    .collect();
                self.send(from, &NodeMessage::Mempool { txs });
            }
            NodeMessage::Mempool { txs } => {
                for tx in txs {
                    self.on_new_transaction(from, tx, now_ms);
                }
            }
        }
    }

    /// Time passed: stalled requests are given up and handed to other peers.
    pub fn handle_tick(&mut self, now_ms: u64) {
        for peer in self.peers.values_mut().filter(|peer| !peer.banned) {
            let steps = now_ms.saturating_sub(peer.last_decay_ms) / MISBEHAVIOR_DECAY_MS;
            if steps > 0 {
                peer.misbehavior = peer
                    .misbehavior
                    .saturating_sub(steps.min(u32::MAX as u64) as u32);
                peer.last_decay_ms += steps * MISBEHAVIOR_DECAY_MS;
            }
        }
        let stalled: Vec<PeerId> = self
            .peers
            .values()
            .filter(|peer| {
                [peer.headers_requested_at, peer.blocks_requested_at]
                    .into_iter()
                    .flatten()
                    .any(|sent| now_ms >= sent + REQUEST_TIMEOUT_MS)
            })
            .map(|peer| peer.id.clone())
            .collect();
        for id in stalled {
            if let Some(peer) = self.peers.get_mut(&id) {
                peer.headers_requested_at = None;
                peer.blocks_requested_at = None;
                peer.blocks_in_flight.clear();
                peer.download_queue.clear();
                // The blocks up to that header never came: the next request starts again
                // from our own chain, or the reply would build on a block we do not have.
                peer.continue_from = None;
            }
            if self.sync_peer.as_ref() == Some(&id) {
                self.sync_peer = None;
            }
            self.penalize(&id, Offense::Stalled);
        }
        self.maybe_sync(now_ms);
    }

    // ---- commands from the application ----

    /// Our miner found `block` (a job's block with the nonce set).
    pub fn handle_mined_block(&mut self, block: Block, now_ms: u64) {
        if !meets_target(&block.header) {
            return;
        }
        let hash = block.hash();
        match self.tree.add_block(block.clone(), now_ms) {
            Ok(outcome) => {
                let became_tip = matches!(outcome, AddOutcome::TipChanged(_));
                self.after_add(hash, outcome, None, now_ms);
                if became_tip {
                    self.broadcast(&NodeMessage::NewBlock { block });
                }
            }
            Err(error) => self.event(NodeEvent::BlockRejected {
                hash,
                from: None,
                reason: format!("our own block: {error}"),
            }),
        }
    }

    pub fn set_mining(&mut self, on: bool, now_ms: u64) {
        self.mining = on;
        if on {
            self.restart_mining(now_ms);
        } else {
            self.push(Output::StopMining);
        }
    }

    /// Signs, queues and announces a payment from our account.
    pub fn send_transaction(
        &mut self,
        to: Address,
        amount: u64,
        fee: u64,
        now_ms: u64,
    ) -> Result<Hash, SendError> {
        if amount == 0 {
            return Err(SendError::ZeroAmount);
        }
        let account = self.tree.ledger().account(&self.address());
        let pending = self
            .own_txs
            .iter()
            .filter(|own| own.state == OwnTxState::Pending && self.mempool.contains(&own.id))
            .map(|own| own.tx.nonce + 1)
            .max()
            .unwrap_or(0);
        let nonce = account.nonce.max(pending);
        let chain_id = self.tree.chain_id();
        let tx = Transaction::new_signed(&self.keypair, &chain_id, to, amount, fee, nonce);
        let id = self
            .mempool
            .add(tx.clone(), self.tree.ledger(), &chain_id)?;
        self.track_own(OwnTx {
            tx: tx.clone(),
            id,
            state: OwnTxState::Pending,
        });
        self.event(NodeEvent::TransactionAccepted {
            id,
            from_peer: None,
        });
        self.broadcast(&NodeMessage::NewTransaction { tx });
        if self.mining {
            self.restart_mining(now_ms);
        }
        Ok(id)
    }

    // ---- message handlers ----

    #[allow(clippy::too_many_arguments)]
    fn on_hello(
        &mut self,
        from: &PeerId,
        protocol_version: u32,
        chain_id: Hash,
        genesis_hash: Hash,
        name: String,
        address: Address,
        tip: TipStatus,
        now_ms: u64,
    ) {
        let refusal = if protocol_version != PROTOCOL_VERSION {
            Some(format!(
                "protocol version {protocol_version}, we speak {PROTOCOL_VERSION}"
            ))
        } else if genesis_hash != self.tree.genesis_hash() || chain_id != self.tree.chain_id() {
            Some(format!(
                "another network (genesis {}, ours {})",
                genesis_hash.short(),
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
        let first = {
            let peer = self.peers.get_mut(from).expect("checked by handle_message");
            let first = peer.handshake != Handshake::Done;
            peer.handshake = Handshake::Done;
            peer.name = Some(name.clone());
            peer.address = Some(address);
            first
        };
        if first {
            self.event(NodeEvent::PeerHello {
                peer: from.clone(),
                name,
                address,
            });
            self.send(from, &NodeMessage::GetMempool);
        }
        self.on_status(from, tip, now_ms);
    }

    fn on_status(&mut self, from: &PeerId, tip: TipStatus, now_ms: u64) {
        if let Some(peer) = self.peers.get_mut(from) {
            peer.tip = Some(tip);
            if peer
                .distrusted_tip
                .is_some_and(|distrusted| distrusted != tip.hash)
            {
                peer.distrusted_tip = None;
            }
        }
        self.event(NodeEvent::PeerTip {
            peer: from.clone(),
            tip,
        });
        self.maybe_sync(now_ms);
    }

    fn on_headers(&mut self, from: &PeerId, headers: Vec<crate::block::BlockHeader>, now_ms: u64) {
        let asked = self
            .peers
            .get(from)
            .is_some_and(|p| p.headers_requested_at.is_some());
        if !asked {
            self.penalize(from, Offense::Unsolicited("headers"));
            return;
        }
        if let Err(why) = self.check_header_chain(&headers) {
            if let Some(peer) = self.peers.get_mut(from) {
                peer.headers_requested_at = None;
            }
            self.sync_peer = None;
            self.penalize(from, Offense::InvalidHeaders(why));
            self.maybe_sync(now_ms);
            return;
        }
        let missing: Vec<Hash> = headers
            .iter()
            .map(|header| header.hash())
            .filter(|hash| !self.tree.contains(hash))
            .collect();
        let full = headers.len() == MAX_HEADERS_PER_MESSAGE;
        let peer = self.peers.get_mut(from).expect("checked above");
        peer.headers_requested_at = None;
        peer.continue_from = if full {
            headers.last().map(|header| header.hash())
        } else {
            None
        };
        if missing.is_empty() && full {
            self.request_headers(from, now_ms);
            return;
        }
        if missing.is_empty() {
            // Nothing new after our locator, yet it claimed more work: it cannot show it.
            let claimed_more = peer.tip.is_some_and(|tip| {
                tip.total_work > self.tree.tip_work() && !self.tree.contains(&tip.hash)
            });
            if claimed_more {
                peer.distrusted_tip = peer.tip.map(|tip| tip.hash);
                self.sync_peer = None;
                self.penalize(from, Offense::FalseWorkClaim);
            } else if self.sync_peer.as_ref() == Some(from) {
                self.sync_peer = None;
            }
            self.maybe_sync(now_ms);
            return;
        }
        peer.download_queue.extend(missing);
        self.request_blocks(from, now_ms);
    }

    /// Headers must link to a block we have, follow each other, and meet their own targets.
    fn check_header_chain(&self, headers: &[crate::block::BlockHeader]) -> Result<(), String> {
        let Some(first) = headers.first() else {
            return Ok(());
        };
        let Some(parent) = self.tree.header(&first.prev_hash) else {
            return Err("the first header does not build on a block we know".into());
        };
        let mut previous_hash = first.prev_hash;
        let mut previous_height = parent.height;
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
            previous_hash = header.hash();
            previous_height = header.height;
        }
        Ok(())
    }

    fn request_blocks(&mut self, from: &PeerId, now_ms: u64) {
        let mut requests = Vec::new();
        if let Some(peer) = self.peers.get_mut(from) {
            while peer.blocks_in_flight.len() < MAX_BLOCKS_IN_FLIGHT
                && !peer.download_queue.is_empty()
            {
                let take = BLOCKS_PER_REQUEST.min(peer.download_queue.len());
                let hashes: Vec<Hash> = peer.download_queue.drain(..take).collect();
                peer.blocks_in_flight.extend(hashes.iter().copied());
                requests.push(hashes);
            }
            if !requests.is_empty() {
                peer.blocks_requested_at = Some(now_ms);
            }
        }
        for hashes in requests {
            self.send(from, &NodeMessage::GetBlocks { hashes });
        }
    }

    fn on_get_blocks(&mut self, from: &PeerId, hashes: &[Hash]) {
        let budget = MAX_FRAME_BYTES - ENVELOPE_ALLOWANCE;
        let mut blocks = Vec::new();
        let mut size = 32;
        for hash in hashes.iter().take(MAX_BLOCKS_PER_REQUEST) {
            let Some(block) = self.tree.block(hash) else {
                continue;
            };
            let block_size =
                serde_json::to_string(block.as_ref()).map_or(usize::MAX, |json| json.len() + 1);
            if size + block_size > budget {
                break;
            }
            size += block_size;
            blocks.push(block.as_ref().clone());
        }
        self.send(from, &NodeMessage::Blocks { blocks });
    }

    fn on_blocks(&mut self, from: &PeerId, blocks: Vec<Block>, now_ms: u64) {
        let mut unsolicited = false;
        for block in blocks {
            let hash = block.hash();
            let requested = self
                .peers
                .get_mut(from)
                .is_some_and(|peer| peer.blocks_in_flight.remove(&hash));
            if !requested {
                unsolicited = true;
                continue;
            }
            self.accept_block_from(from, block, now_ms);
            if !self.peers.contains_key(from) || self.peers[from].banned {
                return;
            }
        }
        if unsolicited {
            self.penalize(from, Offense::Unsolicited("blocks"));
        }
        let Some(peer) = self.peers.get_mut(from) else {
            return;
        };
        peer.blocks_requested_at = if peer.blocks_in_flight.is_empty() {
            None
        } else {
            Some(now_ms)
        };
        // Blocks a peer skipped (it may have lost them in a reorg) are asked for again later.
        if peer.blocks_in_flight.is_empty() && peer.download_queue.is_empty() {
            if peer.continue_from.is_some() {
                self.request_headers(from, now_ms);
                return;
            }
            if self.sync_peer.as_ref() == Some(from) {
                self.sync_peer = None;
            }
            self.maybe_sync(now_ms);
        } else {
            self.request_blocks(from, now_ms);
        }
    }

    fn on_new_block(&mut self, from: &PeerId, block: Block, now_ms: u64) {
        let hash = block.hash();
        let height = block.header.height;
        let orphan = self.accept_block_from(from, block, now_ms);
        if let Some(total_work) = self.tree.total_work(&hash) {
            let tip = TipStatus {
                hash,
                height,
                total_work,
            };
            if let Some(peer) = self.peers.get_mut(from) {
                peer.tip = Some(tip);
            }
            self.event(NodeEvent::PeerTip {
                peer: from.clone(),
                tip,
            });
        }
        if orphan && self.sync_peer.is_none() {
            self.request_headers(from, now_ms);
        }
    }

    /// Adds a block from a peer; returns whether it was an orphan.
    fn accept_block_from(&mut self, from: &PeerId, block: Block, now_ms: u64) -> bool {
        let hash = block.hash();
        match self.tree.add_block(block, now_ms) {
            Ok(outcome) => {
                let orphan = matches!(outcome, AddOutcome::Orphan { .. });
                self.after_add(hash, outcome, Some(from.clone()), now_ms);
                orphan
            }
            Err(error) => {
                self.event(NodeEvent::BlockRejected {
                    hash,
                    from: Some(from.clone()),
                    reason: error.to_string(),
                });
                let offense = match &error {
                    ChainError::Invalid { error, .. } if !error.marks_hash_invalid() => {
                        Offense::QuestionableBlock(error.to_string())
                    }
                    ChainError::KnownInvalid(_) => Offense::QuestionableBlock(error.to_string()),
                    _ => Offense::InvalidBlock(error.to_string()),
                };
                self.penalize(from, offense);
                false
            }
        }
    }

    fn on_new_transaction(&mut self, from: &PeerId, tx: Transaction, now_ms: u64) {
        let chain_id = self.tree.chain_id();
        match self.mempool.add(tx, self.tree.ledger(), &chain_id) {
            Ok(id) => {
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
            Err(error) => self.penalize(from, Offense::StaleTransaction(error.to_string())),
        }
    }

    // ---- chain changes ----

    fn after_add(&mut self, hash: Hash, outcome: AddOutcome, from: Option<PeerId>, now_ms: u64) {
        match outcome {
            AddOutcome::AlreadyKnown | AddOutcome::Orphan { .. } => {}
            AddOutcome::SideBranch => {
                if let Some(block) = self.tree.block(&hash).cloned() {
                    self.push(Output::StoreBlock(block.clone()));
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
    }

    fn on_tip_changed(&mut self, change: TipChange, from: Option<PeerId>, now_ms: u64) {
        for block in &change.connected {
            self.push(Output::StoreBlock(Arc::clone(block)));
            self.event(NodeEvent::BlockAccepted {
                hash: block.hash(),
                height: block.header.height,
                from: from.clone(),
                side_branch: false,
            });
        }
        for (hash, error) in &change.rejected {
            self.push(Output::DeleteBlock(*hash));
            self.event(NodeEvent::BlockRejected {
                hash: *hash,
                from: from.clone(),
                reason: error.to_string(),
            });
        }
        let dropped =
            self.mempool
                .on_new_tip(self.tree.ledger(), &change.disconnected, &change.connected);
        self.update_own_txs(&change, &dropped);
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
        // call connected (a sync batch connects 16): see `poll_output`.
        self.tip_moved_at = Some(now_ms);
        self.maybe_sync(now_ms);
    }

    fn update_own_txs(&mut self, change: &TipChange, dropped: &[(Transaction, MempoolError)]) {
        let mut confirmed = HashMap::new();
        for block in &change.connected {
            for tx in &block.transactions {
                confirmed.insert(tx.id(), (block.header.height, block.hash()));
            }
        }
        let dropped: HashMap<Hash, String> = dropped
            .iter()
            .map(|(tx, error)| (tx.id(), error.to_string()))
            .collect();
        let mut events = Vec::new();
        for own in self.own_txs.iter_mut() {
            if let Some((height, block)) = confirmed.get(&own.id) {
                own.state = OwnTxState::Confirmed {
                    height: *height,
                    block: *block,
                };
                events.push(NodeEvent::TransactionConfirmed {
                    id: own.id,
                    height: *height,
                });
            } else if let Some(reason) = dropped.get(&own.id) {
                own.state = OwnTxState::Dropped {
                    reason: reason.clone(),
                };
                events.push(NodeEvent::TransactionDropped {
                    id: own.id,
                    reason: reason.clone(),
                });
            } else if matches!(own.state, OwnTxState::Confirmed { .. })
                && !self.tree.is_active(&confirmed_block(&own.state))
            {
                // Its block left the best chain; it is back in the mempool.
                own.state = if self.mempool.contains(&own.id) {
                    OwnTxState::Pending
                } else {
                    OwnTxState::Dropped {
                        reason: "its block left the best chain".into(),
                    }
                };
            }
        }
        for event in events {
            self.event(event);
        }
    }

    fn restart_mining(&mut self, now_ms: u64) {
        let limit = self.tree.params().max_block_txs;
        let txs = self.mempool.select(self.tree.ledger(), limit);
        let block = self.tree.block_template(self.address(), txs, now_ms);
        self.next_job_id += 1;
        self.push(Output::Mine(MiningJob {
            job_id: self.next_job_id,
            block,
        }));
    }

    // ---- sync ----

    fn maybe_sync(&mut self, now_ms: u64) {
        let our_work = self.tree.tip_work();
        let our_tip = self.tree.tip_hash();
        let best = self
            .peers
            .values()
            .filter(|peer| peer.usable())
            .filter_map(|peer| peer.tip.map(|tip| (peer, tip)))
            .filter(|(peer, tip)| {
                // The same order as the fork choice: more work, or equal work and a lower hash.
                let better = tip.total_work > our_work
                    || (tip.total_work == our_work
                        && tip.hash < our_tip
                        && !self.tree.contains(&tip.hash));
                better && peer.distrusted_tip != Some(tip.hash)
            })
            .max_by_key(|(_, tip)| tip.total_work)
            .map(|(peer, tip)| (peer.id.clone(), tip.height));
        let state = match &best {
            Some((_, height)) => SyncState::Syncing {
                target_height: *height,
            },
            None => SyncState::Synced,
        };
        if state != self.sync_state {
            self.sync_state = state;
            self.event(NodeEvent::SyncChanged(state));
        }
        if self.sync_peer.is_some() {
            return;
        }
        if let Some((peer, _)) = best {
            self.request_headers(&peer, now_ms);
        }
    }

    fn request_headers(&mut self, peer: &PeerId, now_ms: u64) {
        let Some(info) = self.peers.get_mut(peer) else {
            return;
        };
        if !info.usable() || info.headers_requested_at.is_some() {
            return;
        }
        info.headers_requested_at = Some(now_ms);
        let mut locator = self.tree.locator();
        if let Some(last) = info.continue_from.take() {
            locator.insert(0, last);
            locator.truncate(crate::protocol::message::MAX_LOCATOR_HASHES);
        }
        self.sync_peer = Some(peer.clone());
        self.send(peer, &NodeMessage::GetHeaders { locator });
    }

    // ---- helpers ----

    /// Broadcasts our `status` for a tip change, at once when in sync, at most once per
    /// [`STATUS_INTERVAL_WHILE_SYNCING_MS`] while syncing (and at the end of the sync).
    fn announce_status_if_due(&mut self) {
        let Some(moved_ms) = self.status_due else {
            return;
        };
        let syncing = matches!(self.sync_state, SyncState::Syncing { .. });
        let recently = self
            .last_status_ms
            .is_some_and(|last| moved_ms < last + STATUS_INTERVAL_WHILE_SYNCING_MS);
        if syncing && recently {
            return;
        }
        self.status_due = None;
        self.last_status_ms = Some(moved_ms);
        let status = NodeMessage::Status {
            tip: self.tip_status(),
        };
        self.broadcast(&status);
    }

    fn hello(&self) -> NodeMessage {
        NodeMessage::Hello {
            protocol_version: PROTOCOL_VERSION,
            chain_id: self.tree.chain_id(),
            genesis_hash: self.tree.genesis_hash(),
            name: self.name.clone(),
            address: self.address(),
            tip: self.tip_status(),
        }
    }

    fn refuse(&mut self, from: &PeerId, reason: String) {
        if let Some(peer) = self.peers.get_mut(from) {
            peer.handshake = Handshake::Refused(reason.clone());
        }
        self.event(NodeEvent::PeerRefused {
            peer: from.clone(),
            reason,
        });
    }

    fn penalize(&mut self, peer_id: &PeerId, offense: Offense) {
        let Some(peer) = self.peers.get_mut(peer_id) else {
            return;
        };
        peer.misbehavior = peer.misbehavior.saturating_add(offense.score());
        let reason = offense.describe();
        peer.last_offense = Some(reason.clone());
        let newly_banned = !peer.banned && peer.misbehavior >= BAN_SCORE;
        if newly_banned {
            peer.banned = true;
            peer.download_queue.clear();
            peer.blocks_in_flight.clear();
            peer.headers_requested_at = None;
            peer.blocks_requested_at = None;
        }
        let (score, banned) = (peer.misbehavior, peer.banned);
        self.event(NodeEvent::PeerMisbehaved {
            peer: peer_id.clone(),
            reason,
            score,
            banned,
        });
        if newly_banned && self.sync_peer.as_ref() == Some(peer_id) {
            self.sync_peer = None;
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

    fn track_own(&mut self, own: OwnTx) {
        if self.own_txs.len() >= MAX_TRACKED_OWN_TXS {
            self.own_txs.pop_front();
        }
        self.own_txs.push_back(own);
    }

    fn send(&mut self, to: &PeerId, message: &NodeMessage) {
        if self
            .peers
            .get(to)
            .is_some_and(|peer| peer.banned || peer.muted)
        {
            return;
        }
        self.push(Output::Send {
            to: to.clone(),
            payload: message.encode(),
        });
    }

    fn broadcast(&mut self, message: &NodeMessage) {
        let payload = message.encode();
        let excluded = self.peers.values().any(|peer| peer.banned || peer.muted);
        if !excluded {
            self.push(Output::Broadcast { payload });
            return;
        }
        let recipients: Vec<PeerId> = self
            .peers
            .values()
            .filter(|peer| !peer.banned && !peer.muted)
            .map(|peer| peer.id.clone())
            .collect();
        for to in recipients {
            self.push(Output::Send {
                to,
                payload: payload.clone(),
            });
        }
    }

    fn event(&mut self, event: NodeEvent) {
        self.push(Output::Event(event));
    }

    fn push(&mut self, output: Output) {
        if self.outputs.len() >= MAX_QUEUED_OUTPUTS {
            self.outputs.pop_front();
        }
        self.outputs.push_back(output);
    }
}

fn confirmed_block(state: &OwnTxState) -> Hash {
    match state {
        OwnTxState::Confirmed { block, .. } => *block,
        _ => Hash::ZERO,
    }
}
