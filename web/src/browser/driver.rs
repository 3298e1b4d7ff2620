//! The driver: owns the [`Node`] outside yew's state and moves things between it and the
//! world. Frames from the transport, ticks, found blocks and the person's commands go in
//! through `handle_*` calls; after every call the driver drains `poll_output` and sends,
//! stores, mines and logs what came out, then pushes a fresh [`NodeSnapshot`] to the reducer
//! (at most every [`SNAPSHOT_INTERVAL_MS`], so a sync of thousands of blocks stays smooth).

use super::miner::MinerPool;
use super::storage::{Storage, Write};
use super::transport::{RelayTransport, Transport, TransportEvent};
use crate::config::Config;
use crate::connection::ConnectionState;
use crate::identity::{clean_name, StoredIdentity};
use crate::log::{describe_event, LogEntry, LogKind};
use crate::snapshot::{block_detail, chain_rows, BlockDetail, ChainRow, NodeSnapshot};
use crate::state::{LogAction, LogState, NodeAction, NodeState, Session};
use crate::tamper::Sandbox;
use crate::tree_view::{ReorgRecord, MAX_REORG_RECORDS};
use gloo_timers::future::TimeoutFuture;
use serde_json::value::RawValue;
use shared::node::{Node, NodeConfig, NodeEvent, Output, SyncState};
use shared::protocol::{ClientFrame, PeerId, RelayFrame};
use shared::{Address, Hash};
use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::rc::{Rc, Weak};
use wasm_bindgen_futures::spawn_local;
use yew::UseReducerDispatcher;

/// The UI gets a new picture of the node at most this often.
pub const SNAPSHOT_INTERVAL_MS: u32 = 120;
/// Storage writes are gathered this long into one IndexedDB transaction.
pub const FLUSH_INTERVAL_MS: u32 = 250;
/// The node's timer runs this often (request timeouts, misbehaviour decay).
pub const TICK_MS: u32 = 1_000;
/// The hash rate on screen is refreshed this often.
pub const RATE_REFRESH_MS: u32 = 500;
/// Stored blocks are replayed in batches this big, yielding to the page between batches so
/// the tab stays responsive while it loads a long chain.
pub const REPLAY_BATCH: usize = 250;

const SESSION_IDENTITY_KEY: &str = "tabchain.identity";
const SESSION_MINING_KEY: &str = "tabchain.mining";
const SESSION_WORKERS_KEY: &str = "tabchain.workers";

pub fn now_ms() -> u64 {
    js_sys::Date::now() as u64
}

fn session_storage() -> Option<web_sys::Storage> {
    web_sys::window()?.session_storage().ok().flatten()
}

fn session_get(key: &str) -> Option<String> {
    session_storage()?.get_item(key).ok().flatten()
}

fn session_set(key: &str, value: &str) {
    if let Some(storage) = session_storage() {
        let _ = storage.set_item(key, value);
    }
}

fn reload_page() {
    if let Some(window) = web_sys::window() {
        let _ = window.location().reload();
    }
}

pub fn hardware_threads() -> u32 {
    web_sys::window()
        .map(|window| window.navigator().hardware_concurrency() as u32)
        .unwrap_or(1)
        .clamp(1, 64)
}

pub struct Driver {
    node: RefCell<Node>,
    session: Rc<Session>,
    identity: RefCell<StoredIdentity>,
    storage: Option<Storage>,
    prefix: String,
    transport: RefCell<Option<Box<dyn Transport>>>,
    miner: RefCell<Option<Rc<MinerPool>>>,
    node_dispatch: UseReducerDispatcher<NodeState>,
    log_dispatch: UseReducerDispatcher<LogState>,
    log_seq: Cell<u64>,
    pending_writes: RefCell<Vec<Write>>,
    /// Writes queued or being written. The page hears of it once per batch (when the batch
    /// starts, when it is written and when it is saved), not per block: an import stores
    /// thousands of blocks a second.
    unsaved: Cell<usize>,
    flush_scheduled: Cell<bool>,
    snapshot_scheduled: Cell<bool>,
    reorgs: RefCell<VecDeque<ReorgRecord>>,
    online: Cell<bool>,
    this: Weak<Driver>,
}

impl Driver {
    /// Reads the URL, opens storage, picks this tab's identity, replays the stored chain and
    /// starts the transport, the miners and the timers.
    pub async fn boot(
        node_dispatch: UseReducerDispatcher<NodeState>,
        log_dispatch: UseReducerDispatcher<LogState>,
    ) -> Result<Rc<Driver>, String> {
        let window = web_sys::window().ok_or("no window")?;
        let location = window.location();
        let config = Config::from_location(
            &location.protocol().unwrap_or_default(),
            &location.host().unwrap_or_default(),
            &location.search().unwrap_or_default(),
        );
        node_dispatch.dispatch(NodeAction::Booting("opening storage…".into()));
        let storage = Storage::open().await.ok();
        let mut identities = match &storage {
            Some(storage) => storage.identities().await.unwrap_or_default(),
            None => Vec::new(),
        };
        let wanted = session_get(SESSION_IDENTITY_KEY);
        let identity = match identities
            .iter()
            .find(|identity| Some(&identity.id) == wanted.as_ref())
        {
            Some(identity) => identity.clone(),
            None => {
                let mut random = [0u8; 40];
                getrandom::fill(&mut random).map_err(|error| error.to_string())?;
                let identity = StoredIdentity::from_random(random, now_ms());
                if let Some(storage) = &storage {
                    let _ = storage.put_identity(&identity).await;
                }
                identities.push(identity.clone());
                identity
            }
        };
        session_set(SESSION_IDENTITY_KEY, &identity.id);
        let keypair = identity.keypair().ok_or("the stored key seed is damaged")?;
        let prefix = format!("{}/{}/", identity.id, config.network.name);
        let session = Rc::new(Session {
            config: config.clone(),
            identity_id: identity.id.clone(),
            persistent: storage.is_some(),
        });
        let node = Node::new(NodeConfig {
            params: config.network.clone(),
            name: identity.name.clone(),
            keypair,
        });
        let driver = Rc::new_cyclic(|this| Driver {
            node: RefCell::new(node),
            session: Rc::clone(&session),
            identity: RefCell::new(identity),
            storage,
            prefix,
            transport: RefCell::new(None),
            miner: RefCell::new(None),
            node_dispatch,
            log_dispatch,
            log_seq: Cell::new(0),
            pending_writes: RefCell::new(Vec::new()),
            unsaved: Cell::new(0),
            flush_scheduled: Cell::new(false),
            snapshot_scheduled: Cell::new(false),
            reorgs: RefCell::new(VecDeque::new()),
            online: Cell::new(true),
            this: this.clone(),
        });
        for warning in &config.warnings {
            driver.log(LogKind::Info, warning.clone());
        }
        if !session.persistent {
            driver.log(
                LogKind::Info,
                "IndexedDB is not available: this node forgets its chain on reload".into(),
            );
        }
        driver
            .node_dispatch
            .dispatch(NodeAction::Identities(identities));
        driver.replay_storage().await;
        driver.start_services();
        driver
            .node_dispatch
            .dispatch(NodeAction::Ready(Rc::clone(&session)));
        driver.push_snapshot();
        Ok(driver)
    }

    async fn replay_storage(&self) {
        let Some(storage) = self.storage.clone() else {
            return;
        };
        let mut blocks = storage.blocks(&self.prefix).await.unwrap_or_default();
        blocks.sort_by_key(|block| block.header.height);
        let total = blocks.len();
        let mut done = 0;
        while !blocks.is_empty() {
            let rest = blocks.split_off(REPLAY_BATCH.min(blocks.len()));
            let batch = std::mem::replace(&mut blocks, rest);
            done += batch.len();
            self.drive(|node, now| node.handle_stored_blocks(batch, now));
            self.node_dispatch.dispatch(NodeAction::Booting(format!(
                "loading the stored chain: {done} of {total} blocks…"
            )));
            TimeoutFuture::new(0).await;
        }
        let txs = storage.transactions(&self.prefix).await.unwrap_or_default();
        if total > 0 || !txs.is_empty() {
            self.log(
                LogKind::Info,
                format!(
                    "restored {total} stored blocks and {} pending transactions",
                    txs.len()
                ),
            );
        }
        self.drive(|node, now| node.handle_stored_transactions(txs, now));
    }

    fn start_services(&self) {
        let weak = self.this.clone();
        let workers = session_get(SESSION_WORKERS_KEY)
            .and_then(|text| text.parse().ok())
            .unwrap_or(1)
            .clamp(1, hardware_threads());
        let miner = MinerPool::new(workers, move |job_id, block| {
            if let Some(driver) = weak.upgrade() {
                driver.drive(|node, now| node.handle_mined_block(job_id, block, now));
            }
        });
        *self.miner.borrow_mut() = Some(miner);
        self.node_dispatch.dispatch(NodeAction::Workers {
            count: workers,
            max: hardware_threads(),
        });

        let weak = self.this.clone();
        let transport =
            RelayTransport::connect(self.session.config.relay_url.clone(), move |event| {
                if let Some(driver) = weak.upgrade() {
                    driver.on_transport(event);
                }
            });
        *self.transport.borrow_mut() = Some(Box::new(transport));

        let weak = self.this.clone();
        spawn_local(async move {
            let mut elapsed = 0;
            loop {
                TimeoutFuture::new(RATE_REFRESH_MS).await;
                let Some(driver) = weak.upgrade() else { return };
                elapsed += RATE_REFRESH_MS;
                if elapsed >= TICK_MS {
                    elapsed = 0;
                    driver.on_tick();
                }
                let rate = driver
                    .miner
                    .borrow()
                    .as_ref()
                    .map_or(0.0, |miner| miner.hash_rate(now_ms()));
                driver.node_dispatch.dispatch(NodeAction::HashRate(rate));
            }
        });

        if session_get(SESSION_MINING_KEY).as_deref() == Some("1") {
            self.set_mining(true);
        }
    }

    // ---- the one way into the node ----

    /// Calls into the node, then does everything its outputs ask.
    fn drive<R>(&self, call: impl FnOnce(&mut Node, u64) -> R) -> R {
        let now = now_ms();
        let (result, outputs) = {
            let mut node = self.node.borrow_mut();
            let result = call(&mut node, now);
            let mut outputs = Vec::new();
            while let Some(output) = node.poll_output() {
                outputs.push(output);
            }
            (result, outputs)
        };
        self.process(outputs, now);
        self.schedule_snapshot();
        result
    }

    fn process(&self, outputs: Vec<Output>, now: u64) {
        let mut entries = Vec::new();
        for output in outputs {
            match output {
                Output::Send { to, payload } => self.send_frame(Some(to), payload),
                Output::Broadcast { payload } => self.send_frame(None, payload),
                Output::StoreBlock(block) => {
                    if let Ok(json) = serde_json::to_string(block.as_ref()) {
                        self.queue_write(Write::PutBlock(block.hash(), json));
                    }
                }
                Output::DeleteBlock(hash) => self.queue_write(Write::DeleteBlock(hash)),
                Output::StoreTransaction(tx) => {
                    if let Ok(json) = serde_json::to_string(&tx) {
                        self.queue_write(Write::PutTransaction(tx.id(), json));
                    }
                }
                Output::DeleteTransaction(id) => self.queue_write(Write::DeleteTransaction(id)),
                Output::Mine(job) => {
                    if let Some(miner) = self.miner.borrow().as_ref() {
                        miner.start(job);
                    }
                }
                Output::StopMining => {
                    if let Some(miner) = self.miner.borrow().as_ref() {
                        miner.stop();
                    }
                }
                Output::Event(event) => {
                    self.on_event(&event, now);
                    let node = self.node.borrow();
                    let syncing = matches!(node.sync_state(), SyncState::Syncing { .. });
                    let name = |peer: &PeerId| {
                        node.peer(peer)
                            .and_then(|info| info.name.clone())
                            .unwrap_or_else(|| format!("peer {}", peer.short()))
                    };
                    if let Some((kind, text)) = describe_event(&event, syncing, &name) {
                        entries.push(self.entry(kind, text, now));
                    }
                }
            }
        }
        if !entries.is_empty() {
            self.log_dispatch.dispatch(LogAction::Append(entries));
        }
    }

    /// Side effects of events beyond the log: recording reorgs.
    fn on_event(&self, event: &NodeEvent, now: u64) {
        match event {
            NodeEvent::TipChanged {
                hash,
                height,
                reorg_depth,
                disconnected,
                ..
            } if *reorg_depth > 0 => {
                let mut reorgs = self.reorgs.borrow_mut();
                if reorgs.len() >= MAX_REORG_RECORDS {
                    reorgs.pop_front();
                }
                reorgs.push_back(ReorgRecord {
                    old_tip: disconnected.first().copied().unwrap_or(*hash),
                    depth: *reorg_depth,
                    new_tip: *hash,
                    new_height: *height,
                    at_ms: now,
                });
            }
            _ => {}
        }
    }

    fn send_frame(&self, to: Option<PeerId>, payload: String) {
        let Ok(raw) = RawValue::from_string(payload) else {
            return;
        };
        let frame = match to {
            Some(to) => ClientFrame::send(to, raw),
            None => ClientFrame::broadcast(raw),
        };
        if let Some(transport) = self.transport.borrow().as_ref() {
            transport.send(&frame);
        }
    }

    fn on_transport(&self, event: TransportEvent) {
        match event {
            TransportEvent::State(state) => {
                if let ConnectionState::Connected { peer_id } = &state {
                    self.log(
                        LogKind::Relay,
                        format!(
                            "connected to room {} as peer {}",
                            self.session.config.room,
                            &peer_id[..8.min(peer_id.len())]
                        ),
                    );
                }
                self.node_dispatch.dispatch(NodeAction::Connection(state));
            }
            TransportEvent::Frame(frame) => match frame {
                RelayFrame::Welcome { peers, .. } => self.drive(|node, now| {
                    for peer in peers {
                        node.handle_peer_joined(peer, now);
                    }
                }),
                RelayFrame::PeerJoined { peer_id } => {
                    self.drive(|node, now| node.handle_peer_joined(peer_id, now))
                }
                RelayFrame::PeerLeft { peer_id } => {
                    self.drive(|node, now| node.handle_peer_left(&peer_id, now))
                }
                RelayFrame::Message { from, payload } => {
                    self.drive(|node, now| node.handle_message(&from, payload.get(), now))
                }
                RelayFrame::Error { code, message } => self.log(
                    LogKind::Relay,
                    format!("relay error {}: {message}", code.as_str()),
                ),
            },
            TransportEvent::Disconnected => {
                self.log(LogKind::Relay, "disconnected from the relay".into());
                self.drive(|node, now| node.handle_disconnected(now));
            }
            TransportEvent::Malformed(why) => {
                self.log(LogKind::Relay, format!("the relay sent a bad frame: {why}"))
            }
        }
    }

    fn on_tick(&self) {
        self.drive(|node, now| node.handle_tick(now));
    }

    // ---- the log, the snapshot and storage ----

    fn entry(&self, kind: LogKind, text: String, now: u64) -> LogEntry {
        let seq = self.log_seq.get() + 1;
        self.log_seq.set(seq);
        LogEntry {
            seq,
            at_ms: now,
            kind,
            text,
        }
    }

    fn log(&self, kind: LogKind, text: String) {
        let entry = self.entry(kind, text, now_ms());
        self.log_dispatch.dispatch(LogAction::Append(vec![entry]));
    }

    fn schedule_snapshot(&self) {
        if self.snapshot_scheduled.replace(true) {
            return;
        }
        let weak = self.this.clone();
        spawn_local(async move {
            TimeoutFuture::new(SNAPSHOT_INTERVAL_MS).await;
            if let Some(driver) = weak.upgrade() {
                driver.snapshot_scheduled.set(false);
                driver.push_snapshot();
            }
        });
    }

    fn push_snapshot(&self) {
        let Ok(node) = self.node.try_borrow() else {
            self.schedule_snapshot();
            return;
        };
        let reorgs: Vec<ReorgRecord> = self.reorgs.borrow().iter().cloned().collect();
        let snapshot = NodeSnapshot::build(&node, &reorgs);
        drop(node);
        self.node_dispatch
            .dispatch(NodeAction::Snapshot(Rc::new(snapshot)));
    }

    fn queue_write(&self, write: Write) {
        if self.storage.is_none() {
            return;
        }
        self.pending_writes.borrow_mut().push(write);
        self.unsaved.set(self.unsaved.get() + 1);
        if self.flush_scheduled.replace(true) {
            return;
        }
        self.show_unsaved();
        let weak = self.this.clone();
        spawn_local(async move {
            TimeoutFuture::new(FLUSH_INTERVAL_MS).await;
            let Some(driver) = weak.upgrade() else { return };
            driver.flush_scheduled.set(false);
            let writes = std::mem::take(&mut *driver.pending_writes.borrow_mut());
            let count = writes.len();
            driver.show_unsaved();
            if let Some(storage) = driver.storage.clone() {
                if let Err(error) = storage.write(&driver.prefix, writes).await {
                    driver.log(LogKind::Info, format!("could not save: {error}"));
                }
            }
            driver
                .unsaved
                .set(driver.unsaved.get().saturating_sub(count));
            driver.show_unsaved();
        });
    }

    fn show_unsaved(&self) {
        self.node_dispatch
            .dispatch(NodeAction::Unsaved(self.unsaved.get()));
    }

    // ---- commands from the page ----

    pub fn session(&self) -> Rc<Session> {
        Rc::clone(&self.session)
    }

    pub fn set_mining(&self, on: bool) {
        session_set(SESSION_MINING_KEY, if on { "1" } else { "0" });
        self.drive(|node, now| node.set_mining(on, now));
    }

    pub fn set_workers(&self, count: u32) {
        let count = count.clamp(1, hardware_threads());
        session_set(SESSION_WORKERS_KEY, &count.to_string());
        if let Some(miner) = self.miner.borrow().as_ref() {
            miner.set_workers(count);
        }
        self.node_dispatch.dispatch(NodeAction::Workers {
            count,
            max: hardware_threads(),
        });
    }

    pub fn send_coins(&self, to: Address, amount: u64, fee: u64) -> Result<Hash, String> {
        self.drive(|node, now| node.send_transaction(to, amount, fee, now))
            .map_err(|error| error.to_string())
    }

    pub fn is_online(&self) -> bool {
        self.online.get()
    }

    pub fn set_online(&self, online: bool) {
        self.online.set(online);
        self.log(
            LogKind::Relay,
            if online {
                "going online".into()
            } else {
                "going offline: mining alone".into()
            },
        );
        if let Some(transport) = self.transport.borrow().as_ref() {
            transport.set_online(online);
        }
    }

    pub fn set_peer_muted(&self, peer: &PeerId, muted: bool) {
        self.drive(|node, now| node.set_peer_muted(peer, muted, now));
    }

    pub fn chain_rows(&self, skip: u64, count: usize) -> Vec<ChainRow> {
        match self.node.try_borrow() {
            Ok(node) => chain_rows(&node, skip, count),
            Err(_) => Vec::new(),
        }
    }

    pub fn block_detail(&self, hash: &Hash) -> Option<BlockDetail> {
        block_detail(&*self.node.try_borrow().ok()?, hash, now_ms())
    }

    pub fn sandbox(&self) -> Option<Sandbox> {
        Some(Sandbox::copy_from(&*self.node.try_borrow().ok()?))
    }

    /// Saves a new name and reloads the page: the name is part of the hello every peer
    /// got, so the node starts again under it (the chain and keys stay).
    pub fn rename(&self, name: &str) -> Result<(), String> {
        let name = clean_name(name).ok_or("a name needs at least one character")?;
        let mut identity = self.identity.borrow().clone();
        identity.name = name;
        *self.identity.borrow_mut() = identity.clone();
        let storage = self.storage.clone();
        spawn_local(async move {
            if let Some(storage) = storage {
                let _ = storage.put_identity(&identity).await;
            }
            reload_page();
        });
        Ok(())
    }

    /// Makes this tab use another saved identity.
    pub fn adopt_identity(&self, id: &str) {
        session_set(SESSION_IDENTITY_KEY, id);
        reload_page();
    }

    /// Makes this tab a brand-new identity.
    pub fn new_identity(&self) {
        session_set(SESSION_IDENTITY_KEY, "");
        reload_page();
    }

    /// Forgets this node's chain and pending transactions, then starts again from genesis.
    pub fn reset(&self) {
        self.set_mining(false);
        let storage = self.storage.clone();
        let prefix = self.prefix.clone();
        self.pending_writes.borrow_mut().clear();
        spawn_local(async move {
            if let Some(storage) = storage {
                let _ = storage.clear_node(&prefix).await;
            }
            reload_page();
        });
    }

    pub fn identity(&self) -> StoredIdentity {
        self.identity.borrow().clone()
    }
}

/// A cheap handle components get through a context; equal when it is the same driver.
#[derive(Clone)]
pub struct DriverHandle(pub Rc<Driver>);

impl PartialEq for DriverHandle {
    fn eq(&self, other: &Self) -> bool {
        Rc::ptr_eq(&self.0, &other.0)
    }
}

impl std::ops::Deref for DriverHandle {
    type Target = Driver;
    fn deref(&self) -> &Driver {
        &self.0
    }
}
