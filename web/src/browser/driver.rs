//! The driver: owns the [`Node`] outside yew's state and moves things between it and the
//! world. Frames from the transport, ticks, found blocks and the person's commands go in
//! through `handle_*` calls; after every call the driver drains `poll_output` and sends,
//! stores, mines and logs what came out, re-arms its one timer for the node's `poll_timeout`
//! ([`TickScheduler`]), then pushes a fresh [`NodeSnapshot`] to the reducer (at most every
//! [`SNAPSHOT_INTERVAL_MS`], so a sync of thousands of blocks stays smooth).
//!
//! It decides nothing about the chain. What it does decide is mechanical: when to tick, when to
//! write (a bounded [`WriteQueue`], flushed early when it grows and when the page is hidden),
//! and to stop taking peer messages while storage is far behind.
//!
//! The network is two pieces: the relay ([`Transport`]: presence, signaling, and every message
//! without a direct link) and the direct links ([`Links`], WebRTC data channels). The node says
//! which link to open or close and routes each message (`Output::Send`'s `route`); the driver
//! carries it there, and sends over the relay whatever a direct link could not carry. Tabs of
//! this browser are direct links too, over a `BroadcastChannel` ([`Tabs`]): they meet with no
//! server at all, and are preferred to WebRTC and the relay for each other.

use super::miner::MinerPool;
use super::rtc::{LinkEvent, Links};
use super::schedule::{Arm, TickScheduler};
use super::storage::{request_persistence, Storage, StorageError, Write};
use super::tabs::{TabEvent, Tabs};
use super::transport::{RelayTransport, Transport, TransportEvent};
use super::write_queue::{Pushed, WriteQueue};
use crate::config::Config;
use crate::connection::ConnectionState;
use crate::identity::{clean_name, StoredIdentity};
use crate::log::{block_run, describe_event, incoming_line, LogEntry, LogKind};
use crate::mining::THROTTLE_STEPS;
use crate::snapshot::{
    block_detail, chain_rows, shares_since, BlockDetail, ChainRow, NodeSnapshot,
};
use crate::state::{LogAction, LogState, NodeAction, NodeState, Session};
use crate::tamper::Sandbox;
use crate::tree_view::{ReorgRecord, MAX_REORG_RECORDS};
use futures::future::{AbortHandle, Abortable};
use gloo_timers::future::TimeoutFuture;
use serde_json::value::RawValue;
use shared::export::{ChainFileHeader, ImportError, ImportReport};
use shared::node::ChainImport;
use shared::node::{Node, NodeConfig, NodeEvent, OfferAnswer, Output, Route, SendError};
use shared::protocol::{ClientFrame, PeerId, RelayFrame, Signal};
use shared::shares::BlockShares;
use shared::view::{Names, PeerMemory};
use shared::{Address, Hash};
use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::rc::{Rc, Weak};
use wasm_bindgen::closure::Closure;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::spawn_local;
use yew::UseReducerDispatcher;

/// Why a new name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RenameError {
    #[error("a name needs at least one character")]
    Empty,
}
/// The UI gets a new picture of the node at most this often.
pub const SNAPSHOT_INTERVAL_MS: u32 = 120;
/// Storage writes are gathered this long into one IndexedDB transaction (a found block, and a
/// page being hidden, are written at once).
pub const FLUSH_INTERVAL_MS: u32 = 250;
/// After a failed write, the next try waits this long: a full disk or a quota does not clear
/// in milliseconds, and retrying every flush would spin on a failing transaction.
pub const WRITE_RETRY_MS: u64 = 2_000;
/// The hash rate on screen is refreshed this often (its own timer: the node's ticks follow
/// the node's deadlines, see [`TickScheduler`]).
pub const RATE_REFRESH_MS: u32 = 500;
/// While the compare table shows tabs that left, the snapshot is built again this often, so
/// their rows fold a minute after they left (`shared::view::GONE_FOLD_MS`) even in a room where
/// nothing else happens to redraw the table.
pub const GONE_REFRESH_MS: u32 = 5_000;
/// Stored blocks are replayed in batches this big, yielding to the page between batches so
/// the tab stays responsive while it loads a long chain.
pub const REPLAY_BATCH: usize = 250;

const SESSION_IDENTITY_KEY: &str = "tabchain.identity";
const SESSION_MINING_KEY: &str = "tabchain.mining";
const SESSION_WORKERS_KEY: &str = "tabchain.workers";
/// The mining throttle in percent, kept like the worker count for the life of the tab.
const SESSION_THROTTLE_KEY: &str = "tabchain.throttle";

/// Why this tab's node could not start.
#[derive(Debug, thiserror::Error)]
pub enum BootError {
    #[error("this page has no window")]
    NoWindow,
    #[error("no randomness for a new key: {0}")]
    Randomness(getrandom::Error),
    #[error("the stored key seed is damaged")]
    DamagedKey,
}

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
    links: RefCell<Option<Links>>,
    /// Tabs of this browser in our room (`None` with `?local=off` or no `BroadcastChannel`).
    tabs: RefCell<Option<Tabs>>,
    /// A bad frame from the tab channel was logged (once per page: they are not peers' fault
    /// to charge, and a flood must not flood the log).
    tab_frame_logged: Cell<bool>,
    /// Sent to the relay on every connection of this page (`?resume=`), so the relay gives us
    /// the same peer id after a reconnect, or after it restarted: peers linked to us directly
    /// meanwhile still know us by it. Random per page load, kept only in memory (a reload is a
    /// new node).
    resume_token: [u8; 32],
    miner: RefCell<Option<Rc<MinerPool>>>,
    node_dispatch: UseReducerDispatcher<NodeState>,
    log_dispatch: UseReducerDispatcher<LogState>,
    log_seq: Cell<u64>,
    /// Writes queued or being written. The page hears of their number once per batch (when
    /// the batch starts, when it is written and when it is saved), not per block: an import
    /// stores thousands of blocks a second.
    writes: RefCell<WriteQueue>,
    flush_scheduled: Cell<bool>,
    /// A flush loop is running; it takes whatever is queued until the queue is empty.
    flushing: Cell<bool>,
    /// No write before this instant: the last one failed (see [`WRITE_RETRY_MS`]).
    write_retry_at: Cell<u64>,
    write_failing: Cell<bool>,
    /// While storage is behind and the node paused: its count of lost messages at the pause.
    paused_at_lost: Cell<Option<u64>>,
    /// Frames the transport refused since the last one it took (offline, or its outbox full).
    unsent_frames: Cell<u64>,
    scheduler: RefCell<TickScheduler>,
    /// Cancels the armed tick timer (aborting drops the `setTimeout`).
    tick_timer: RefCell<Option<AbortHandle>>,
    snapshot_scheduled: Cell<bool>,
    /// A rebuild for the gone rows is pending (see [`GONE_REFRESH_MS`]).
    gone_refresh_scheduled: Cell<bool>,
    reorgs: RefCell<VecDeque<ReorgRecord>>,
    /// Peers we had, kept after they go (see [`shared::view::PeerMemory`]).
    peer_memory: RefCell<PeerMemory>,
    online: Cell<bool>,
    this: Weak<Driver>,
}

impl Driver {
    /// Reads the URL, opens storage, picks this tab's identity, replays the stored chain and
    /// starts the transport, the miners and the timers.
    pub async fn boot(
        node_dispatch: UseReducerDispatcher<NodeState>,
        log_dispatch: UseReducerDispatcher<LogState>,
    ) -> Result<Rc<Driver>, BootError> {
        let window = web_sys::window().ok_or(BootError::NoWindow)?;
        let location = window.location();
        let config = Config::from_location(
            &location.protocol().unwrap_or_default(),
            &location.host().unwrap_or_default(),
            &location.search().unwrap_or_default(),
        );
        node_dispatch.dispatch(NodeAction::Booting("opening storage…".into()));
        // Storage problems do not stop the node (it can run and sync without them), but each
        // is shown: a tab that silently forgets its chain looks like a bug in the chain.
        let mut problems = Vec::new();
        let storage = match Storage::open().await {
            Ok(storage) => Some(storage),
            Err(error) => {
                problems.push(format!(
                    "IndexedDB could not be opened ({error}): this node forgets its chain on reload"
                ));
                None
            }
        };
        let mut identities = match &storage {
            Some(storage) => match storage.identities().await {
                Ok(loaded) => {
                    if loaded.unreadable > 0 {
                        problems.push(format!(
                            "{} saved identities could not be read",
                            loaded.unreadable
                        ));
                    }
                    loaded.items
                }
                Err(error) => {
                    problems.push(describe_read_error("the saved identities", &error));
                    Vec::new()
                }
            },
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
                getrandom::fill(&mut random).map_err(BootError::Randomness)?;
                let identity = StoredIdentity::from_random(random, now_ms());
                if let Some(storage) = &storage {
                    if let Err(error) = storage.put_identity(&identity).await {
                        problems.push(format!(
                            "the new identity could not be saved ({error}): its key is gone after a reload"
                        ));
                    }
                }
                identities.push(identity.clone());
                identity
            }
        };
        session_set(SESSION_IDENTITY_KEY, &identity.id);
        let keypair = identity.keypair().ok_or(BootError::DamagedKey)?;
        let mut resume_token = [0u8; 32];
        getrandom::fill(&mut resume_token).map_err(BootError::Randomness)?;
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
            max_direct_links: config.max_direct_links,
        });
        let driver = Rc::new_cyclic(|this| Driver {
            node: RefCell::new(node),
            session: Rc::clone(&session),
            identity: RefCell::new(identity),
            storage,
            prefix,
            transport: RefCell::new(None),
            links: RefCell::new(None),
            tabs: RefCell::new(None),
            tab_frame_logged: Cell::new(false),
            resume_token,
            miner: RefCell::new(None),
            node_dispatch,
            log_dispatch,
            log_seq: Cell::new(0),
            writes: RefCell::new(WriteQueue::default()),
            flush_scheduled: Cell::new(false),
            flushing: Cell::new(false),
            write_retry_at: Cell::new(0),
            write_failing: Cell::new(false),
            paused_at_lost: Cell::new(None),
            unsent_frames: Cell::new(0),
            scheduler: RefCell::new(TickScheduler::default()),
            tick_timer: RefCell::new(None),
            snapshot_scheduled: Cell::new(false),
            gone_refresh_scheduled: Cell::new(false),
            reorgs: RefCell::new(VecDeque::new()),
            peer_memory: RefCell::new(PeerMemory::default()),
            online: Cell::new(true),
            this: this.clone(),
        });
        for warning in &config.warnings {
            driver.log(LogKind::Info, warning.clone());
        }
        for problem in problems {
            driver.boot_problem(problem);
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
        let mut blocks = match storage.blocks(&self.prefix).await {
            Ok(loaded) => {
                if loaded.unreadable > 0 {
                    self.boot_problem(format!(
                        "{} stored blocks could not be read and were skipped (peers send them again)",
                        loaded.unreadable
                    ));
                }
                loaded.items
            }
            Err(error) => {
                self.boot_problem(describe_read_error("the stored chain", &error));
                Vec::new()
            }
        };
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
        let txs = match storage.transactions(&self.prefix).await {
            Ok(loaded) => {
                if loaded.unreadable > 0 {
                    self.boot_problem(format!(
                        "{} of our stored pending transactions could not be read",
                        loaded.unreadable
                    ));
                }
                loaded.items
            }
            Err(error) => {
                self.boot_problem(describe_read_error("our pending transactions", &error));
                Vec::new()
            }
        };
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

    /// A storage problem found while booting: logged and kept on screen.
    fn boot_problem(&self, problem: String) {
        self.log(LogKind::Info, problem.clone());
        self.node_dispatch
            .dispatch(NodeAction::StorageBootProblem(problem));
    }

    fn start_services(&self) {
        self.listen_for_page_hide();
        if self.storage.is_some() {
            let weak = self.this.clone();
            spawn_local(async move {
                let answer = request_persistence().await;
                let Some(driver) = weak.upgrade() else { return };
                match answer {
                    Ok(granted) => {
                        if !granted {
                            driver.log(
                                LogKind::Info,
                                "the browser did not grant persistent storage: it may evict this chain when space runs low".into(),
                            );
                        }
                        driver
                            .node_dispatch
                            .dispatch(NodeAction::Persisted(granted));
                    }
                    // Not a secure context (a LAN address): `navigator.storage` is undefined.
                    // Nothing was promised, so the panel says so instead of "asking…" forever.
                    Err(error) => {
                        driver.log(
                            LogKind::Info,
                            format!("could not ask for persistent storage: {error}"),
                        );
                        driver.node_dispatch.dispatch(NodeAction::Persisted(false));
                    }
                }
            });
        }
        let weak = self.this.clone();
        let workers = session_get(SESSION_WORKERS_KEY)
            .and_then(|text| text.parse().ok())
            .unwrap_or(1)
            .clamp(1, hardware_threads());
        let miner = MinerPool::new(workers, move |job_id, block| {
            if let Some(driver) = weak.upgrade() {
                driver.drive(|node, now| node.handle_mined_block(job_id, block, now));
                // Our own block exists nowhere else yet: save it now rather than at the end of
                // the flush interval, so a reload right after a find keeps it.
                driver.flush_now();
            }
        });
        let throttle = session_get(SESSION_THROTTLE_KEY)
            .and_then(|text| text.parse::<u8>().ok())
            .filter(|percent| THROTTLE_STEPS.contains(percent))
            .unwrap_or(100);
        miner.set_throttle(throttle);
        self.node_dispatch.dispatch(NodeAction::Throttle(throttle));
        *self.miner.borrow_mut() = Some(miner);
        self.node_dispatch.dispatch(NodeAction::Workers {
            count: workers,
            max: hardware_threads(),
        });

        let weak = self.this.clone();
        let links = Links::new(move |event| {
            if let Some(driver) = weak.upgrade() {
                driver.on_link(event);
            }
        });
        *self.links.borrow_mut() = Some(links);

        if self.session.config.same_browser {
            let weak = self.this.clone();
            let me = PeerId::from_resume_token(&self.resume_token);
            let tabs = Tabs::open(&self.session.config.room, me, move |event| {
                if let Some(driver) = weak.upgrade() {
                    driver.on_tab(event);
                }
            });
            *self.tabs.borrow_mut() = tabs;
        }

        let weak = self.this.clone();
        let url = format!(
            "{}?resume={}",
            self.session.config.relay_url,
            hex::encode(self.resume_token)
        );
        let transport = RelayTransport::connect(url, move |event| {
            if let Some(driver) = weak.upgrade() {
                driver.on_transport(event);
            }
        });
        *self.transport.borrow_mut() = Some(Box::new(transport));

        let weak = self.this.clone();
        spawn_local(async move {
            loop {
                TimeoutFuture::new(RATE_REFRESH_MS).await;
                let Some(driver) = weak.upgrade() else { return };
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
        self.rearm_tick(now);
        self.schedule_snapshot();
        result
    }

    /// Points the one tick timer at the node's next deadline (see [`TickScheduler`]).
    fn rearm_tick(&self, now: u64) {
        let Ok(node) = self.node.try_borrow() else {
            return;
        };
        let deadline = node.poll_timeout();
        drop(node);
        let arm = self.scheduler.borrow_mut().rearm(deadline, now);
        match arm {
            Arm::Keep => {}
            Arm::Disarm => {
                if let Some(timer) = self.tick_timer.take() {
                    timer.abort();
                }
            }
            Arm::Sleep { delay_ms } => {
                if let Some(timer) = self.tick_timer.take() {
                    timer.abort();
                }
                let (handle, registration) = AbortHandle::new_pair();
                let weak = self.this.clone();
                spawn_local(async move {
                    let sleep = Abortable::new(TimeoutFuture::new(delay_ms), registration);
                    if sleep.await.is_err() {
                        return; // re-armed for another deadline meanwhile
                    }
                    let Some(driver) = weak.upgrade() else { return };
                    driver.tick_timer.take();
                    driver.scheduler.borrow_mut().fired();
                    driver.drive(|node, now| node.handle_tick(now));
                });
                *self.tick_timer.borrow_mut() = Some(handle);
            }
        }
    }

    fn process(&self, outputs: Vec<Output>, now: u64) {
        let mut entries = Vec::new();
        let mut sync_changed = false;
        for output in outputs {
            match output {
                Output::Send {
                    to,
                    payload,
                    route: Route::Direct,
                } => self.send_direct(to, payload),
                Output::Send {
                    to,
                    payload,
                    route: Route::Relay,
                } => self.send_frame(Some(to), payload),
                Output::Broadcast { payload } => self.send_frame(None, payload),
                Output::OpenLink { peer } => self.open_link(peer),
                Output::CloseLink { peer } => self.close_link(&peer),
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
                    sync_changed |= matches!(event, NodeEvent::SyncChanged(_));
                    let node = self.node.borrow();
                    // Names in the log as everywhere: cleaned, beside their address.
                    let name = |peer: &PeerId| {
                        node.peer(peer).map_or_else(
                            || format!("peer {}", peer.short()),
                            shared::view::peer_label,
                        )
                    };
                    let described = match &event {
                        // A payment to us says what it brings: the event has only the id, the
                        // pool has the transaction.
                        NodeEvent::TransactionAccepted {
                            id,
                            from_peer: Some(_),
                        } => node.mempool().get(id).and_then(|tx| {
                            let names = Names::new(&node, &crate::address_book::current())
                                .with_remembered(&self.peer_memory.borrow().views());
                            incoming_line(tx, &node.address(), &names)
                                .map(|text| (LogKind::Transaction, text))
                        }),
                        _ => None,
                    };
                    if let Some((kind, text)) = described.or_else(|| describe_event(&event, &name))
                    {
                        let mut entry = self.entry(kind, text, now);
                        entry.run = block_run(&event, &name);
                        entries.push(entry);
                    }
                }
            }
        }
        if sync_changed {
            // The log is about to say "in sync" or "catching up": the status bar and the
            // explorer must say the same at once, not one snapshot interval later.
            self.push_snapshot();
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
        let Some(sent) = self
            .transport
            .borrow()
            .as_ref()
            .map(|transport| transport.send(&frame))
        else {
            return;
        };
        if sent {
            self.unsent_frames.set(0);
            return;
        }
        // Offline, reconnecting or an outbox full: the frame is gone. The node repeats its
        // status and asks again for what it misses, so this costs time; it is logged once per
        // run of refusals, not per frame.
        let unsent = self.unsent_frames.get();
        self.unsent_frames.set(unsent + 1);
        if unsent == 0 && self.online.get() {
            let tabs = self.tabs.borrow().as_ref().map_or(0, Tabs::up_count);
            self.log(
                LogKind::Relay,
                if tabs > 0 {
                    "messages to peers beyond this browser are not being sent (no server, or it is behind)"
                        .into()
                } else {
                    "messages to peers are not being sent (no connection, or it is behind)".into()
                },
            );
        }
    }

    // ---- direct links ----

    /// Over the link when it is open; what it cannot carry goes over the relay, in order.
    fn send_direct(&self, to: PeerId, payload: String) {
        if self
            .tabs
            .borrow()
            .as_ref()
            .is_some_and(|tabs| tabs.send(&to, &payload))
        {
            return;
        }
        let sent = match self.links.borrow().as_ref() {
            Some(links) => links.send(&to, payload),
            None => Err(vec![payload]),
        };
        if let Err(payloads) = sent {
            self.send_over_relay(&to, payloads);
        }
    }

    /// Sends what a WebRTC link could not carry: over the tab channel when `to` is a tab of this
    /// browser, else over the relay.
    fn send_over_relay(&self, to: &PeerId, payloads: Vec<String>) {
        for payload in payloads {
            if !self
                .tabs
                .borrow()
                .as_ref()
                .is_some_and(|tabs| tabs.send(to, &payload))
            {
                self.send_frame(Some(to.clone()), payload);
            }
        }
    }

    fn open_link(&self, peer: PeerId) {
        // A tab of this browser: the channel is the link, open already.
        if self
            .tabs
            .borrow()
            .as_ref()
            .is_some_and(|tabs| tabs.open_link(&peer))
        {
            self.link_up_later(peer);
            self.publish_tabs();
            return;
        }
        // Offline by choice is a partition: no link is opened (its signaling could not go
        // out anyway). The node hears the link is down, on the next task, not inside the call
        // that asked for it.
        let opened = if self.online.get() {
            self.links
                .borrow()
                .as_ref()
                .map(|links| links.open(peer.clone()))
        } else {
            None
        };
        match opened {
            Some(Ok(())) => {}
            Some(Err(reason)) => {
                self.log(
                    LogKind::Relay,
                    format!(
                        "could not open a direct link to peer {}: {reason}",
                        peer.short()
                    ),
                );
                self.link_down_later(peer);
            }
            None => self.link_down_later(peer),
        }
    }

    /// Closes our link to `peer`, sending what it still had queued over the relay; false when
    /// there was no link.
    fn take_link(&self, peer: &PeerId) -> bool {
        let unsent = self
            .links
            .borrow()
            .as_ref()
            .and_then(|links| links.close(peer));
        let Some(unsent) = unsent else {
            return false;
        };
        self.send_over_relay(peer, unsent);
        true
    }

    fn close_link(&self, peer: &PeerId) {
        if let Some(tabs) = self.tabs.borrow().as_ref() {
            tabs.close_link(peer);
        }
        self.publish_tabs();
        if self.take_link(peer) {
            self.send_signal(peer, &Signal::Bye);
        }
    }

    fn link_up_later(&self, peer: PeerId) {
        let weak = self.this.clone();
        spawn_local(async move {
            if let Some(driver) = weak.upgrade() {
                driver.drive(|node, now| node.handle_link_up(&peer, now));
            }
        });
    }

    /// Whether a tab of this browser carries our messages to `peer`.
    fn tab_up(&self, peer: &PeerId) -> bool {
        self.tabs
            .borrow()
            .as_ref()
            .is_some_and(|tabs| tabs.is_up(peer))
    }

    fn publish_tabs(&self) {
        let mut peers = self
            .tabs
            .borrow()
            .as_ref()
            .map_or_else(Vec::new, Tabs::up_peers);
        peers.sort();
        self.node_dispatch.dispatch(NodeAction::SameBrowser(peers));
    }

    fn on_tab(&self, event: TabEvent) {
        match event {
            TabEvent::Up { peer } => {
                self.log(
                    LogKind::Relay,
                    format!(
                        "peer {} is a tab of this browser: linked directly",
                        peer.short()
                    ),
                );
                self.publish_tabs();
                self.drive(|node, now| node.handle_link_up(&peer, now));
            }
            TabEvent::Down { peer } => {
                self.publish_tabs();
                let rtc_open = self
                    .links
                    .borrow()
                    .as_ref()
                    .is_some_and(|links| links.is_open(&peer));
                if !rtc_open {
                    self.drive(|node, now| node.handle_link_down(&peer, now));
                }
            }
            TabEvent::Message { from, payload } => self.on_peer_message(&from, &payload),
            TabEvent::Bad { why } => {
                if !self.tab_frame_logged.replace(true) {
                    self.log(
                        LogKind::Relay,
                        format!("another tab of this browser sent a bad frame (dropped): {why}"),
                    );
                }
            }
        }
    }

    fn link_down_later(&self, peer: PeerId) {
        let weak = self.this.clone();
        spawn_local(async move {
            if let Some(driver) = weak.upgrade() {
                driver.drive(|node, now| node.handle_link_down(&peer, now));
            }
        });
    }

    fn send_signal(&self, to: &PeerId, signal: &Signal) {
        let Ok(text) = signal.encode() else {
            return; // an offer over the signal cap: the link never opens and times out
        };
        let Ok(raw) = RawValue::from_string(text) else {
            return;
        };
        if let Some(transport) = self.transport.borrow().as_ref() {
            // Refused while the relay is away: the link cannot open without it, and the node
            // gives up on it at its deadline.
            let _ = transport.send(&ClientFrame::signal(to.clone(), raw));
        }
    }

    /// A signal from another tab, through the relay. It goes to the links, never to the node:
    /// the node only says whether it wants the link an offer proposes.
    fn on_signal(&self, from: PeerId, text: &str) {
        let signal = match Signal::decode(text) {
            Ok(signal) => signal,
            Err(error) => {
                self.log(
                    LogKind::Relay,
                    format!("peer {} sent a bad signal: {error}", from.short()),
                );
                return;
            }
        };
        match signal {
            Signal::Offer { sdp } => {
                // The node answers first: an offer storm is ignored before it costs a thing.
                let answer = self.node.borrow_mut().answer_offer(&from, now_ms());
                if answer == OfferAnswer::Ignore {
                    return;
                }
                // A fresh offer means the other side started over: the old link goes.
                self.drop_link(&from);
                let wanted = self.online.get() && answer == OfferAnswer::Accept;
                let accepted = match (wanted, self.links.borrow().as_ref()) {
                    (true, Some(links)) => links.accept(from.clone(), sdp).is_ok(),
                    _ => false,
                };
                if !accepted {
                    // Not wanted (the ring does not pick it, or we hold enough links), or
                    // this tab cannot make another connection: the peer stays on the relay.
                    self.send_signal(&from, &Signal::Bye);
                }
            }
            Signal::Bye => self.drop_link(&from),
            signal => {
                if let Some(links) = self.links.borrow().as_ref() {
                    links.signal(&from, signal);
                }
            }
        }
    }

    /// Closes our link to `peer` if there is one (it said bye, or offers anew) and tells the
    /// node; what the link still had queued goes over the relay.
    fn drop_link(&self, peer: &PeerId) {
        if self.take_link(peer) && !self.tab_up(peer) {
            self.drive(|node, now| node.handle_link_down(peer, now));
        }
    }

    fn on_link(&self, event: LinkEvent) {
        match event {
            LinkEvent::Signal { to, signal } => self.send_signal(&to, &signal),
            LinkEvent::Up { peer } => {
                self.drive(|node, now| node.handle_link_up(&peer, now));
            }
            LinkEvent::Down {
                peer,
                reason,
                unsent,
            } => {
                let name = self.node.borrow().peer(&peer).map_or_else(
                    || format!("peer {}", peer.short()),
                    shared::view::peer_label,
                );
                self.log(
                    LogKind::Relay,
                    format!("direct link to {name} ended: {reason}"),
                );
                self.send_over_relay(&peer, unsent);
                if reason.is_abuse() {
                    // The peer broke the link's rules: the node charges it and takes no new
                    // link from it for a while (a closed flooder must not just open another).
                    let why = reason.to_string();
                    self.drive(|node, now| node.handle_link_abuse(&peer, &why, now));
                } else if !self.tab_up(&peer) {
                    // A tab of this browser stays linked over the channel.
                    self.drive(|node, now| node.handle_link_down(&peer, now));
                }
            }
            LinkEvent::Message { from, payload } => self.on_peer_message(&from, &payload),
            // The peer table shows each link's round trip: a fresh picture once a second,
            // though the node did nothing.
            LinkEvent::Heartbeat => self.schedule_snapshot(),
        }
    }

    /// A node message, from the relay or a direct link. While storage is far behind, the node
    /// is paused and refuses it itself (so nobody is blamed for what we could not take).
    fn on_peer_message(&self, from: &PeerId, payload: &str) {
        if self.writes.borrow().is_behind() {
            self.pause_peers();
        }
        self.drive(|node, now| node.handle_message(from, payload, now))
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
                RelayFrame::Welcome {
                    peer_id,
                    peers,
                    ice_servers,
                    ..
                } => {
                    if let Some(links) = self.links.borrow().as_ref() {
                        links.set_ice_servers(&ice_servers);
                    }
                    self.drive(|node, now| node.handle_welcome(peer_id, peers, now))
                }
                RelayFrame::PeerJoined { peer_id } => {
                    self.drive(|node, now| node.handle_peer_joined(peer_id, now))
                }
                RelayFrame::PeerLeft { peer_id } => {
                    self.drive(|node, now| node.handle_peer_left(&peer_id, now))
                }
                RelayFrame::Message { from, payload } => self.on_peer_message(&from, payload.get()),
                // Signaling for direct links: the links take it, never the node.
                RelayFrame::Signal { from, payload } => self.on_signal(from, payload.get()),
                RelayFrame::Error { code, message } => self.log(
                    LogKind::Relay,
                    format!("relay error {}: {message}", code.as_str()),
                ),
            },
            TransportEvent::Disconnected => {
                let links = self.links.borrow().as_ref().map_or(0, Links::open_count);
                self.log(
                    LogKind::Relay,
                    if links > 0 {
                        format!("disconnected from the relay; {links} direct links carry on")
                    } else {
                        "disconnected from the relay".into()
                    },
                );
                self.drive(|node, now| node.handle_disconnected(now));
            }
            TransportEvent::Malformed(why) => {
                self.log(LogKind::Relay, format!("the relay sent a bad frame: {why}"))
            }
        }
    }

    /// Storage is far behind: the node is paused (`Node::set_inbound_paused`), so it takes no
    /// peer message that could bring more blocks to store, runs no request deadline meanwhile
    /// and answers requests `busy`. See [`super::write_queue::PAUSE_PEERS_AT_WRITES`] for why
    /// this loses time, not data.
    fn pause_peers(&self) {
        if self.paused_at_lost.get().is_some() {
            return;
        }
        let lost = self.node.borrow().lost_messages();
        self.paused_at_lost.set(Some(lost));
        self.log(
            LogKind::Info,
            format!(
                "storage is behind ({} writes waiting): peer messages wait until it catches up",
                self.writes.borrow().unsaved()
            ),
        );
        self.drive(|node, now| node.set_inbound_paused(true, now));
        self.flush_now();
    }

    fn resume_peers_if_caught_up(&self) {
        if self.writes.borrow().is_behind() {
            return;
        }
        if let Some(lost_before) = self.paused_at_lost.take() {
            self.drive(|node, now| node.set_inbound_paused(false, now));
            let refused = self
                .node
                .borrow()
                .lost_messages()
                .saturating_sub(lost_before);
            self.log(
                LogKind::Info,
                format!("storage caught up; {refused} peer messages were refused meanwhile (the node asks again)"),
            );
        }
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
            run: None,
        }
    }

    fn log(&self, kind: LogKind, text: String) {
        let entry = self.entry(kind, text, now_ms());
        self.log_dispatch.dispatch(LogAction::Append(vec![entry]));
    }

    fn schedule_snapshot(&self) {
        self.push_snapshot_after(SNAPSHOT_INTERVAL_MS, |driver| &driver.snapshot_scheduled);
    }

    /// Builds the snapshot again in `ms`, unless the timer that `pending` flags is on its way.
    fn push_snapshot_after(&self, ms: u32, pending: fn(&Driver) -> &Cell<bool>) {
        if pending(self).replace(true) {
            return;
        }
        let weak = self.this.clone();
        spawn_local(async move {
            TimeoutFuture::new(ms).await;
            if let Some(driver) = weak.upgrade() {
                pending(&driver).set(false);
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
        let rtts = self
            .links
            .borrow()
            .as_ref()
            .map(Links::round_trips)
            .unwrap_or_default();
        let snapshot = NodeSnapshot::build(
            &node,
            &reorgs,
            &rtts,
            &mut self.peer_memory.borrow_mut(),
            now_ms(),
        );
        drop(node);
        let gone_rows = !snapshot.gone_peers.is_empty();
        self.node_dispatch
            .dispatch(NodeAction::Snapshot(Rc::new(snapshot)));
        if gone_rows {
            self.push_snapshot_after(GONE_REFRESH_MS, |driver| &driver.gone_refresh_scheduled);
        }
    }

    fn queue_write(&self, write: Write) {
        if self.storage.is_none() {
            return;
        }
        let pushed = self.writes.borrow_mut().push(write);
        match pushed {
            Pushed::Queued => self.schedule_flush(),
            Pushed::FlushNow => self.flush_now(),
            Pushed::Refused(write) => self.write_refused(&write),
        }
    }

    /// The queue is full even though peer messages wait: the write is not kept, and the person
    /// is told what will be missing after a reload.
    fn write_refused(&self, write: &Write) {
        let what = match write {
            Write::PutBlock(hash, _) => format!("block {}", hash.short()),
            Write::DeleteBlock(hash) => format!("the removal of block {}", hash.short()),
            Write::PutTransaction(id, _) => format!("transaction {}", id.short()),
            Write::DeleteTransaction(id) => format!("the removal of transaction {}", id.short()),
        };
        let text = format!(
            "storage is too far behind ({} writes waiting): {what} is not saved and is gone after a reload",
            self.writes.borrow().unsaved()
        );
        self.log(LogKind::Info, text.clone());
        self.node_dispatch.dispatch(NodeAction::WriteLost);
        self.node_dispatch
            .dispatch(NodeAction::StorageWriteProblem(Some(text)));
        self.flush_now();
    }

    fn schedule_flush(&self) {
        if self.flush_scheduled.replace(true) {
            return;
        }
        self.show_unsaved();
        let weak = self.this.clone();
        spawn_local(async move {
            TimeoutFuture::new(FLUSH_INTERVAL_MS).await;
            let Some(driver) = weak.upgrade() else { return };
            driver.flush_scheduled.set(false);
            driver.flush_now();
        });
    }

    /// Writes everything queued now, one transaction per batch, until the queue is empty.
    /// A flush already running takes what was queued meanwhile.
    fn flush_now(&self) {
        let Some(storage) = self.storage.clone() else {
            return;
        };
        if self.writes.borrow().is_empty() || self.flushing.get() {
            return;
        }
        if now_ms() < self.write_retry_at.get() {
            self.schedule_flush();
            return;
        }
        self.flushing.set(true);
        let weak = self.this.clone();
        spawn_local(async move {
            loop {
                let Some(driver) = weak.upgrade() else { return };
                let batch = driver.writes.borrow_mut().take_batch();
                if batch.is_empty() {
                    driver.flushing.set(false);
                    return;
                }
                driver.show_unsaved();
                let result = storage.write(&driver.prefix, &batch).await;
                match result {
                    Ok(()) => {
                        driver.writes.borrow_mut().finished();
                        if driver.write_failing.replace(false) {
                            driver.log(LogKind::Info, "storage works again: all saved".into());
                            driver
                                .node_dispatch
                                .dispatch(NodeAction::StorageWriteProblem(None));
                        }
                    }
                    Err(error) => {
                        driver.writes.borrow_mut().failed(batch);
                        driver.write_failed(&error);
                        driver.flushing.set(false);
                        driver.show_unsaved();
                        driver.schedule_flush();
                        return;
                    }
                }
                driver.show_unsaved();
                driver.resume_peers_if_caught_up();
            }
        });
    }

    fn write_failed(&self, error: &StorageError) {
        self.write_retry_at.set(now_ms() + WRITE_RETRY_MS);
        if self.write_failing.replace(true) {
            return; // said once; the retries say nothing until one works
        }
        let text = format!(
            "could not save {} writes ({error}); retrying every {} s",
            self.writes.borrow().unsaved(),
            WRITE_RETRY_MS / 1_000
        );
        self.log(LogKind::Info, text.clone());
        self.node_dispatch
            .dispatch(NodeAction::StorageWriteProblem(Some(text)));
    }

    fn show_unsaved(&self) {
        self.node_dispatch
            .dispatch(NodeAction::Unsaved(self.writes.borrow().unsaved()));
    }

    /// Flushes when the page is hidden or goes away (`visibilitychange` to hidden, `pagehide`):
    /// a reload or a closed tab otherwise loses what the flush interval still holds. The
    /// browser lets a transaction started then finish in most cases; the earlier the better.
    fn listen_for_page_hide(&self) {
        let Some(window) = web_sys::window() else {
            return;
        };
        let weak = self.this.clone();
        let on_hide = Closure::<dyn FnMut(web_sys::Event)>::new(move |event: web_sys::Event| {
            let hidden = event.type_() == "pagehide"
                || web_sys::window()
                    .and_then(|window| window.document())
                    .is_some_and(|document| {
                        document.visibility_state() == web_sys::VisibilityState::Hidden
                    });
            let Some(driver) = weak.upgrade() else {
                return;
            };
            if event.type_() == "visibilitychange" {
                driver.on_visibility(hidden);
            }
            if hidden {
                driver.flush_now();
            }
        });
        let callback = on_hide.as_ref().unchecked_ref();
        let _ = window.add_event_listener_with_callback("pagehide", callback);
        if let Some(document) = window.document() {
            let _ = document.add_event_listener_with_callback("visibilitychange", callback);
        }
        // The listeners live as long as the page (the driver does too).
        on_hide.forget();
    }

    /// The page went to the background or came back. Hidden, the browser runs its timers
    /// rarely (the status says so); back in front, the node gets a tick at once, so whatever
    /// deadline slipped meanwhile (requests, status, re-announcements) is handled now and sync
    /// catches up without waiting for the next one.
    fn on_visibility(&self, hidden: bool) {
        self.node_dispatch.dispatch(NodeAction::Hidden(hidden));
        self.log(
            LogKind::Info,
            if hidden {
                "in the background: the browser slows this tab's timers".into()
            } else {
                "in front again: catching up".into()
            },
        );
        if !hidden {
            self.drive(|node, now| node.handle_tick(now));
        }
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

    /// Mine `percent` of the time (one of [`THROTTLE_STEPS`]).
    pub fn set_throttle(&self, percent: u8) {
        let percent = percent.clamp(10, 100);
        session_set(SESSION_THROTTLE_KEY, &percent.to_string());
        if let Some(miner) = self.miner.borrow().as_ref() {
            miner.set_throttle(percent);
        }
        self.node_dispatch.dispatch(NodeAction::Throttle(percent));
    }

    /// Our best chain as a chain file (`shared::export`, version 2), for a download: its file
    /// name and its text in pieces of 1,000 lines (a long chain is never one string).
    pub fn export_chain(&self) -> Option<(String, Vec<String>)> {
        let node = self.node.try_borrow().ok()?;
        let name = ChainFileHeader::of_best_chain(node.tree()).file_name();
        let mut pieces = Vec::new();
        shared::export::write_chain_file(node.tree(), 1_000, |piece| pieces.push(piece));
        Some((name, pieces))
    }

    /// Starts importing a chain file whose header was read (`Node::begin_import`).
    pub fn begin_import(&self, header: &ChainFileHeader) -> Result<ChainImport, ImportError> {
        self.node.borrow().begin_import(header)
    }

    /// Feeds the next blocks of a chain file to the node, each validated as a peer's would be
    /// (`Node::import_blocks`); what was taken is saved at once.
    pub fn import_blocks(
        &self,
        import: &mut ChainImport,
        blocks: Vec<shared::Block>,
    ) -> Result<(), ImportError> {
        let result = self.drive(|node, now| node.import_blocks(import, blocks, now));
        self.flush_now();
        self.push_snapshot();
        result
    }

    /// The end of an import, `result` its outcome: logged, and the report.
    pub fn end_import(
        &self,
        import: Option<ChainImport>,
        result: Result<(), ImportError>,
    ) -> Result<ImportReport, ImportError> {
        let result = result.and_then(|()| {
            let import = import.ok_or_else(|| ImportError::BadJson("the file is empty".into()))?;
            Ok(self.node.borrow().end_import(import))
        });
        let line = match &result {
            Ok(report) => format!(
                "imported a chain file of {} blocks: {} new, {} already held{}",
                report.added + report.known,
                report.added,
                report.known,
                if report.became_best {
                    "; it is now our best chain"
                } else {
                    "; our own chain has more work and stays the best"
                }
            ),
            Err(error) => format!("the chain file was not imported: {error}"),
        };
        self.log(LogKind::Info, line);
        self.push_snapshot();
        result
    }

    pub fn send_coins(&self, to: Address, amount: u64, fee: u64) -> Result<Hash, SendError> {
        self.drive(|node, now| node.send_transaction(to, amount, fee, now))
    }

    /// Private mining on (our blocks build a hidden branch) or off (the branch is released).
    pub fn set_private_mining(&self, on: bool) {
        self.drive(|node, now| node.set_private_mining(on, now));
    }

    pub fn release_private(&self) -> Result<shared::node::Release, shared::node::ReleaseError> {
        self.drive(|node, now| node.release_private(now))
    }

    pub fn double_spend(&self, own_tx: Hash) -> Result<Hash, shared::node::DoubleSpendError> {
        self.drive(|node, now| node.double_spend(&own_tx, now))
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
        // Offline cuts the tab off from the other tabs of this browser too.
        if let Some(tabs) = self.tabs.borrow().as_ref() {
            tabs.set_online(online);
        }
        self.publish_tabs();
        if !online {
            // Offline is a partition (to make forks on purpose): the direct links go too.
            let peers: Vec<PeerId> = self
                .links
                .borrow()
                .as_ref()
                .map(Links::peers)
                .unwrap_or_default();
            for peer in peers {
                self.drop_link(&peer);
            }
        }
    }

    pub fn set_peer_muted(&self, peer: &PeerId, muted: bool) {
        self.drive(|node, now| node.set_peer_muted(peer, muted, now));
    }

    /// Rows below height `top` (the snapshot's), see [`chain_rows`].
    pub fn chain_rows(&self, top: u64, skip: u64, count: usize) -> Vec<ChainRow> {
        match self.node.try_borrow() {
            Ok(node) => chain_rows(&node, &self.peer_memory.borrow().views(), top, skip, count),
            Err(_) => Vec::new(),
        }
    }

    /// Who mined the blocks above `since_height` up to height `top` (the snapshot's), see
    /// [`shares_since`]; nothing while the node is busy.
    pub fn shares_since(&self, top: u64, since_height: u64) -> BlockShares {
        match self.node.try_borrow() {
            Ok(node) => shares_since(&node, &self.peer_memory.borrow().views(), top, since_height),
            Err(_) => BlockShares::default(),
        }
    }

    pub fn block_detail(&self, hash: &Hash) -> Option<BlockDetail> {
        let remembered = self.peer_memory.borrow().views();
        block_detail(&*self.node.try_borrow().ok()?, &remembered, hash, now_ms())
    }

    pub fn sandbox(&self) -> Option<Sandbox> {
        Some(Sandbox::copy_from(&*self.node.try_borrow().ok()?))
    }

    /// Saves a new name and reloads the page: the name is part of the hello every peer
    /// got, so the node starts again under it (the chain and keys stay).
    pub fn rename(&self, name: &str) -> Result<(), RenameError> {
        let name = clean_name(name).ok_or(RenameError::Empty)?;
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
        self.writes.borrow_mut().clear();
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

fn describe_read_error(what: &str, error: &StorageError) -> String {
    format!("{what} could not be read ({error}); the node starts without them")
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
