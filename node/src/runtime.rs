//! The driver: one tokio task that owns the [`Node`] state machine and does everything it asks.
//!
//! Events come in from four places — commands from a [`NodeHandle`], the network [`Link`], the
//! miner threads and a one-second tick — and after every call into the node the task drains
//! `poll_output` completely: payloads go to the link, blocks to the [`BlockLog`] (one fsync per
//! call), jobs to the [`Miner`], and events to the log and to subscribers. After each step the
//! task publishes a [`Snapshot`] on a `watch` channel, so callers wait for a condition ("synced",
//! "height 10") by awaiting changes rather than sleeping.
//!
//! A storage failure (a full disk) is fatal: the task stops mining, says why in the snapshot and
//! ends, because a node that cannot store blocks would lose them at its next start.

use crate::keystore::{self, KeyError};
use crate::miner::{FoundBlock, Miner};
use crate::store::{BlockLog, StoreError};
use crate::transport::{self, ConnectError, Link, LinkEvent, LinkInfo, Outgoing};
use crate::txstore::TxStore;
use serde::Serialize;
use shared::node::reconnect::retry_delay_ms;
use shared::node::{Node, NodeConfig, NodeEvent, Output, SendError, SyncState};
use shared::protocol::{PeerId, RelayErrorCode};
use shared::view::PeerState;
use shared::work::Work;
use shared::{Address, Block, Hash, NetworkParams};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use thiserror::Error;
use tokio::sync::{broadcast, mpsc, oneshot, watch};
use tokio::task::JoinHandle;

/// Commands waiting for the runtime; a caller awaits each reply, so a few suffice.
pub const COMMAND_QUEUE: usize = 64;
/// Events kept for slow subscribers before the oldest are skipped (they see `Lagged`).
pub const EVENT_BUFFER: usize = 4_096;
/// How often the miner's hash rate is measured for the status line. The node itself is ticked
/// only when it asks (`poll_timeout`), not on this beat.
pub const HASH_RATE_INTERVAL: Duration = Duration::from_secs(1);
/// The shortest gap between two ticks. The node's deadlines are met at once, but a deadline it
/// keeps reporting as passed after a tick (a bug) would otherwise spin the loop on one core;
/// a few milliseconds is far below any of its timeouts (hundreds of ms and more).
pub const MIN_TICK_GAP: Duration = Duration::from_millis(5);
/// How long a peer that joined may take to say hello before "synced" stops waiting for it: a
/// node answers at once, so a peer still silent after this is broken or not a tabchain node.
pub const HELLO_GRACE: Duration = Duration::from_secs(5);
/// Link events handled in one step before blocks are flushed to disk: a sync burst of 64
/// replies of 16 blocks is stored with one fsync instead of 64, and the step stays short
/// enough (milliseconds) that commands and found blocks are not kept waiting.
pub const LINK_BATCH: usize = 64;

/// How long to wait before reconnection attempt `attempt` (1 for the first): the policy every
/// driver shares (`shared::node::reconnect`), a second apart for the first tries, then doubling
/// to half a minute, each wait moved by up to a quarter either way. `jitter` in `[0, 1)`.
pub fn reconnect_delay(attempt: u32, jitter: f64) -> Duration {
    Duration::from_millis(retry_delay_ms(attempt.saturating_sub(1), jitter))
}

/// A uniform number in `[0, 1)` from the OS (0.5, the nominal delay, if it has none).
fn jitter() -> f64 {
    getrandom::u32().map_or(0.5, |bits| f64::from(bits) / (f64::from(u32::MAX) + 1.0))
}

/// Milliseconds since the Unix epoch by the system's wall clock.
fn wall_clock_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_millis() as u64)
}

/// The node's clock: wall-clock milliseconds read once at start, advanced by tokio's monotonic
/// clock. Deadlines the node names in milliseconds (`poll_timeout`) become tokio instants
/// exactly, and a test that pauses tokio's clock (`start_paused`, `advance`) controls the
/// node's time too. A wall clock stepped while the node runs is not followed; block times are
/// checked with minutes of slack, and the next start reads it again.
#[derive(Clone, Copy, Debug)]
pub struct Clock {
    origin_ms: u64,
    origin: tokio::time::Instant,
}

impl Clock {
    pub fn start() -> Clock {
        Clock {
            origin_ms: wall_clock_ms(),
            origin: tokio::time::Instant::now(),
        }
    }
    pub fn now_ms(&self) -> u64 {
        self.origin_ms + self.origin.elapsed().as_millis() as u64
    }
    /// The tokio instant of a time on this clock (now, for a time before the clock started).
    pub fn instant_at(&self, ms: u64) -> tokio::time::Instant {
        self.origin + Duration::from_millis(ms.saturating_sub(self.origin_ms))
    }
}

/// Where our own pending transactions of `network` are kept (see [`crate::txstore`]).
pub fn own_txs_path(data_dir: &Path, network: &str) -> PathBuf {
    data_dir.join("chains").join(network).join("own-txs.log")
}

/// What a node needs to start.
#[derive(Clone, Debug)]
pub struct NodeOptions {
    pub name: String,
    pub params: NetworkParams,
    /// Holds `key.seed` and `chains/<network>/blocks.log`.
    pub data_dir: PathBuf,
    /// Miner threads (at least one).
    pub threads: usize,
}

/// Where the blocks of `network` live inside a data directory. Each network has its own log,
/// so starting on another network never touches (or deletes) the blocks of the first.
pub fn block_log_path(data_dir: &Path, network: &str) -> PathBuf {
    data_dir.join("chains").join(network).join("blocks.log")
}

#[derive(Debug, Error)]
pub enum StartError {
    #[error(transparent)]
    Key(#[from] KeyError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

#[derive(Debug, Error)]
pub enum NodeError {
    #[error("the node stopped: {0}")]
    Stopped(String),
    #[error(transparent)]
    Connect(#[from] ConnectError),
    #[error(transparent)]
    Send(#[from] SendError),
    /// The payment could not be stored, so it was not reported as sent.
    #[error("storage failed: {0}")]
    Storage(String),
}

/// Waiting for a condition on the snapshot failed.
#[derive(Debug, Error)]
pub enum WaitError {
    #[error("timed out after {0:?}")]
    Timeout(Duration),
    #[error("the node stopped: {0}")]
    Stopped(String),
}

/// Something that happened, for subscribers (the CLI prints some of them).
#[derive(Clone, Debug)]
pub enum RuntimeEvent {
    Node(NodeEvent),
    /// Our miner found a block and it became our tip (it is stored).
    Mined {
        height: u64,
        hash: Hash,
    },
    Connected(LinkInfo),
    Disconnected {
        reason: String,
    },
    /// The connection was lost and will be tried again after `delay` (attempt `attempt`).
    Reconnecting {
        attempt: u32,
        delay: Duration,
        reason: String,
    },
    RelayError {
        code: RelayErrorCode,
        message: String,
    },
    Fatal(String),
}

/// Our connection to the network.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Connection {
    Offline,
    Connected {
        url: String,
        room: String,
        peer_id: PeerId,
    },
    Lost {
        url: String,
        reason: String,
    },
}

/// A lost connection the runtime is trying to get back by itself.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Reconnecting {
    pub url: String,
    /// The attempt that comes next (1 for the first).
    pub attempt: u32,
    /// When it starts, on the node's clock; `None` while an attempt is under way.
    pub next_attempt_ms: Option<u64>,
    /// Why the connection (or the last attempt) failed.
    pub reason: String,
}

/// One peer as the user sees it: the view both UIs share (its `state` is a [`PeerState`]).
pub type PeerSummary = shared::view::PeerView;

/// The node's state after the last step, for waiting and for display.
#[derive(Clone, Debug, Serialize)]
pub struct Snapshot {
    pub name: String,
    pub address: Address,
    pub network: &'static str,
    pub connection: Connection,
    /// Set while a lost connection is being retried (see [`NodeHandle::set_auto_reconnect`]).
    pub reconnecting: Option<Reconnecting>,
    pub height: u64,
    pub tip: Hash,
    pub total_work: Work,
    pub syncing: bool,
    pub sync_target_height: Option<u64>,
    /// A header or block request is waiting for an answer.
    pub requests_in_flight: bool,
    pub peers: Vec<PeerSummary>,
    pub mining: bool,
    pub miner_threads: usize,
    /// Hashes per second over the last tick.
    pub hash_rate: f64,
    pub hashes: u64,
    pub blocks_mined: u64,
    pub balance: u64,
    pub mempool: usize,
    pub stored_blocks: usize,
    /// Blocks found in storage at start and replayed into the chain.
    pub loaded_blocks: usize,
    /// Stored blocks the chain refused at start (deleted from storage).
    pub rejected_stored_blocks: usize,
    /// Bytes of a torn record cut off the store at start.
    pub truncated_bytes: u64,
    /// Why the runtime stopped, if it did.
    pub fatal: Option<String>,
    /// Calls of `handle_tick` so far, the time of the last one and the next instant the node
    /// asked for (`poll_timeout`): the runtime sleeps until then, not on a fixed beat.
    pub ticks: u64,
    pub last_tick_ms: Option<u64>,
    pub next_tick_ms: Option<u64>,
}

impl Snapshot {
    /// Connected, caught up with every peer that said hello, nothing asked and unanswered, and
    /// no peer still owing us its hello (peers silent past [`HELLO_GRACE`] are not waited for).
    pub fn is_synced(&self) -> bool {
        matches!(self.connection, Connection::Connected { .. })
            && !self.syncing
            && !self.requests_in_flight
            && self
                .peers
                .iter()
                .all(|peer| peer.state != PeerState::Pending)
    }
    pub fn ready_peers(&self) -> impl Iterator<Item = &PeerSummary> {
        self.peers
            .iter()
            .filter(|peer| peer.state == PeerState::Ready)
    }
}

enum Command {
    Attach(Box<Link>, oneshot::Sender<()>),
    Detach(oneshot::Sender<()>),
    SetAutoReconnect(bool, oneshot::Sender<()>),
    /// Start or stop mining; with a budget, stop by itself once that many more blocks are ours.
    SetMining {
        on: bool,
        budget: Option<u64>,
        reply: oneshot::Sender<()>,
    },
    Send {
        to: Address,
        amount: u64,
        fee: u64,
        reply: oneshot::Sender<Result<Hash, NodeError>>,
    },
    Inspect(Box<dyn FnOnce(&Node) + Send>),
    Shutdown(oneshot::Sender<()>),
}

/// The application's side of a running node. Cheap to clone; the node runs until
/// [`NodeHandle::shutdown`] or until every handle is dropped.
#[derive(Clone)]
pub struct NodeHandle {
    commands: mpsc::Sender<Command>,
    snapshots: watch::Receiver<Arc<Snapshot>>,
    events: broadcast::Sender<RuntimeEvent>,
    task: Arc<tokio::sync::Mutex<Option<JoinHandle<()>>>>,
}

impl NodeHandle {
    /// Loads the key and the stored chain, and starts the runtime task (offline, not mining).
    pub async fn start(options: NodeOptions) -> Result<NodeHandle, StartError> {
        // Large blocks have their signatures checked on every core (shared starts no threads
        // unless asked).
        shared::validation::set_verification_threads(
            std::thread::available_parallelism().map_or(1, |cores| cores.get()),
        );
        let (keypair, created) = keystore::load_or_create(&options.data_dir)?;
        if created {
            tracing::info!(address = %keypair.address(), dir = %options.data_dir.display(), "created a new key");
        }
        let log_path = block_log_path(&options.data_dir, options.params.name);
        let (store, recovered) = BlockLog::open(&log_path)?;
        let (txs, stored_txs) =
            TxStore::open(&own_txs_path(&options.data_dir, options.params.name))?;
        let clock = Clock::start();
        let network = options.params.name;
        let mut node = Node::new(NodeConfig {
            params: options.params,
            name: options.name,
            keypair,
            // No WebRTC here: every peer is reached through the relay (tabs relay to us there).
            max_direct_links: 0,
        });
        let loaded_blocks = recovered.blocks.len();
        let started = Instant::now();
        node.handle_stored_blocks(recovered.blocks, clock.now_ms());
        tracing::info!(
            blocks = loaded_blocks,
            height = node.tree().tip_height(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "loaded the stored chain"
        );
        let loaded_txs = stored_txs.len();
        node.handle_stored_transactions(stored_txs, clock.now_ms());
        if loaded_txs > 0 {
            tracing::info!(transactions = loaded_txs, "loaded our pending transactions");
        }
        let (miner, found) = Miner::start(options.threads);
        let (events, _) = broadcast::channel(EVENT_BUFFER);
        let (commands, command_rx) = mpsc::channel(COMMAND_QUEUE);
        let mut runtime = Runtime {
            node,
            clock,
            ticks: 0,
            last_tick_ms: None,
            network,
            store,
            txs,
            miner,
            link: None,
            connection: Connection::Offline,
            events: events.clone(),
            unstored: Vec::new(),
            blocks_mined: 0,
            mining_until: None,
            hash_rate: 0.0,
            last_rate_sample: (Instant::now(), 0),
            loaded_blocks,
            rejected_stored_blocks: 0,
            truncated_bytes: recovered.truncated_bytes,
            replaying: true,
            fatal: None,
            auto_reconnect: false,
            reconnecting: None,
            connecting: None,
        };
        runtime.drain().await;
        runtime.flush_store();
        runtime.replaying = false;
        if let Some(fatal) = runtime.fatal.take() {
            return Err(StartError::Store(fatal));
        }
        let (snapshot_tx, snapshots) = watch::channel(Arc::new(runtime.snapshot()));
        let task = tokio::spawn(runtime.run(command_rx, found, snapshot_tx));
        Ok(NodeHandle {
            commands,
            snapshots,
            events,
            task: Arc::new(tokio::sync::Mutex::new(Some(task))),
        })
    }

    /// The state after the last step.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.snapshots.borrow().clone()
    }
    pub fn watch(&self) -> watch::Receiver<Arc<Snapshot>> {
        self.snapshots.clone()
    }
    pub fn subscribe(&self) -> broadcast::Receiver<RuntimeEvent> {
        self.events.subscribe()
    }

    fn stopped(&self) -> NodeError {
        NodeError::Stopped(
            self.snapshot()
                .fatal
                .clone()
                .unwrap_or_else(|| "it was shut down".into()),
        )
    }

    async fn request<T>(
        &self,
        command: impl FnOnce(oneshot::Sender<T>) -> Command,
    ) -> Result<T, NodeError> {
        let (reply, answer) = oneshot::channel();
        self.commands
            .send(command(reply))
            .await
            .map_err(|_| self.stopped())?;
        answer.await.map_err(|_| self.stopped())
    }

    /// Joins the relay room at `url` (leaving any earlier one) and tells the node who is there.
    pub async fn connect(&self, url: &str) -> Result<LinkInfo, NodeError> {
        let link = transport::connect_relay(url).await?;
        let info = link.info().clone();
        self.request(|reply| Command::Attach(Box::new(link), reply))
            .await?;
        Ok(info)
    }

    /// With `on`, a connection that drops is tried again by itself, with backoff (see
    /// [`reconnect_delay`]), until it is back, [`NodeHandle::disconnect`] or another
    /// [`NodeHandle::connect`]. Off by default: a subcommand fails fast instead.
    pub async fn set_auto_reconnect(&self, on: bool) -> Result<(), NodeError> {
        self.request(|reply| Command::SetAutoReconnect(on, reply))
            .await
    }

    /// Leaves the room after sending what is queued.
    pub async fn disconnect(&self) -> Result<(), NodeError> {
        self.request(Command::Detach).await
    }

    /// Starts or stops mining; returns once the published snapshot shows it, so a caller that
    /// reads [`NodeHandle::snapshot`] next sees the new state.
    pub async fn set_mining(&self, on: bool) -> Result<(), NodeError> {
        let mut snapshots = self.snapshots.clone();
        self.request(|reply| Command::SetMining {
            on,
            budget: None,
            reply,
        })
        .await?;
        snapshots
            .wait_for(|snapshot| snapshot.mining == on || snapshot.fatal.is_some())
            .await
            .map_err(|_| self.stopped())?;
        Ok(())
    }

    /// Mines until `blocks` more of our blocks became the tip, then stops by itself (so not one
    /// block more is mined, however fast blocks come).
    pub async fn mine_blocks(&self, blocks: u64) -> Result<(), NodeError> {
        self.request(|reply| Command::SetMining {
            on: true,
            budget: Some(blocks),
            reply,
        })
        .await
    }

    /// Signs, queues, stores and announces a payment; returns the transaction id once the
    /// transaction is on disk.
    pub async fn send(&self, to: Address, amount: u64, fee: u64) -> Result<Hash, NodeError> {
        self.request(|reply| Command::Send {
            to,
            amount,
            fee,
            reply,
        })
        .await?
    }

    /// Runs `look` on the node between two steps (to read the chain, balances, peers).
    pub async fn inspect<R: Send + 'static>(
        &self,
        look: impl FnOnce(&Node) -> R + Send + 'static,
    ) -> Result<R, NodeError> {
        self.request(|reply| {
            Command::Inspect(Box::new(move |node: &Node| {
                let _ = reply.send(look(node));
            }))
        })
        .await
    }

    /// Waits until `condition` holds on a snapshot, at most `timeout`.
    pub async fn wait_for(
        &self,
        timeout: Duration,
        mut condition: impl FnMut(&Snapshot) -> bool,
    ) -> Result<Arc<Snapshot>, WaitError> {
        let mut snapshots = self.snapshots.clone();
        let waited = tokio::time::timeout(timeout, async {
            loop {
                let snapshot = snapshots.borrow_and_update().clone();
                if condition(&snapshot) {
                    return Ok(snapshot);
                }
                if let Some(fatal) = &snapshot.fatal {
                    return Err(WaitError::Stopped(fatal.clone()));
                }
                if snapshots.changed().await.is_err() {
                    let fatal = snapshots.borrow().fatal.clone();
                    return Err(WaitError::Stopped(
                        fatal.unwrap_or_else(|| "it was shut down".into()),
                    ));
                }
            }
        })
        .await;
        waited.unwrap_or(Err(WaitError::Timeout(timeout)))
    }

    /// Stops mining, leaves the network (sending what is queued) and ends the runtime.
    pub async fn shutdown(&self) {
        let _ = self.request(Command::Shutdown).await;
        if let Some(task) = self.task.lock().await.take() {
            let _ = task.await;
        }
    }
}

struct Runtime {
    node: Node,
    clock: Clock,
    ticks: u64,
    last_tick_ms: Option<u64>,
    network: &'static str,
    store: BlockLog,
    /// Our own pending transactions; rewritten at most once per step.
    txs: TxStore,
    miner: Miner,
    link: Option<Link>,
    connection: Connection,
    events: broadcast::Sender<RuntimeEvent>,
    /// Blocks the node asked to store that are not yet on disk; flushed once per step.
    unstored: Vec<Arc<Block>>,
    blocks_mined: u64,
    /// Stop mining when `blocks_mined` reaches this.
    mining_until: Option<u64>,
    hash_rate: f64,
    last_rate_sample: (Instant, u64),
    loaded_blocks: usize,
    rejected_stored_blocks: usize,
    truncated_bytes: u64,
    /// True while the events of the stored-chain replay are drained at start.
    replaying: bool,
    auto_reconnect: bool,
    reconnecting: Option<Reconnecting>,
    /// The reconnection attempt under way.
    connecting: Option<JoinHandle<Result<Link, ConnectError>>>,
    fatal: Option<StoreError>,
}

/// What the loop does after a command.
enum Next {
    Continue,
    Stop(oneshot::Sender<()>),
}

impl Runtime {
    async fn run(
        mut self,
        mut commands: mpsc::Receiver<Command>,
        mut found: mpsc::Receiver<FoundBlock>,
        snapshots: watch::Sender<Arc<Snapshot>>,
    ) {
        let mut rate_sample = tokio::time::interval(HASH_RATE_INTERVAL);
        rate_sample.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let stop_reply = loop {
            let wake = self.next_wake();
            let retry = self.reconnect_wake();
            tokio::select! {
                command = commands.recv() => match command {
                    None => break None,
                    Some(command) => match self.on_command(command).await {
                        Next::Continue => {}
                        Next::Stop(reply) => break Some(reply),
                    },
                },
                event = next_link_event(&mut self.link) => self.on_link_events(event).await,
                Some(block) = found.recv() => self.on_found(block).await,
                _ = sleep_until(wake) => self.on_tick().await,
                _ = rate_sample.tick() => self.sample_hash_rate(),
                _ = sleep_until(retry) => self.start_reconnect(),
                attempt = next_attempt(&mut self.connecting) => self.on_reconnect_attempt(attempt).await,
            }
            self.flush_store();
            if let Some(error) = &self.fatal {
                let message = error.to_string();
                tracing::error!(error = %message, "stopping the node");
                let _ = self.events.send(RuntimeEvent::Fatal(message));
                break None;
            }
            snapshots.send_replace(Arc::new(self.snapshot()));
        };
        self.miner.stop();
        self.flush_store();
        self.cancel_reconnect();
        if let Some(link) = self.link.take() {
            link.close().await;
        }
        if !matches!(self.connection, Connection::Lost { .. }) {
            self.connection = Connection::Offline;
        }
        let mut last = self.snapshot();
        last.mining = false;
        if last.fatal.is_none() {
            last.fatal = Some("it was shut down".into());
        }
        snapshots.send_replace(Arc::new(last));
        if let Some(reply) = stop_reply {
            let _ = reply.send(());
        }
    }

    async fn on_command(&mut self, command: Command) -> Next {
        let now = self.clock.now_ms();
        match command {
            Command::Attach(link, reply) => {
                self.cancel_reconnect();
                self.attach(*link).await;
                let _ = reply.send(());
            }
            Command::SetAutoReconnect(on, reply) => {
                self.auto_reconnect = on;
                if !on {
                    self.cancel_reconnect();
                }
                let _ = reply.send(());
            }
            Command::Detach(reply) => {
                self.cancel_reconnect();
                if let Some(link) = self.link.take() {
                    self.node.handle_disconnected(now);
                    self.drain().await;
                    self.connection = Connection::Offline;
                    // Closing waits for the writer; the node keeps running meanwhile.
                    tokio::spawn(async move {
                        link.close().await;
                        let _ = reply.send(());
                    });
                } else {
                    let _ = reply.send(());
                }
            }
            Command::SetMining { on, budget, reply } => {
                self.mining_until = budget.map(|blocks| self.blocks_mined + blocks);
                self.node.set_mining(on, now);
                self.drain().await;
                let _ = reply.send(());
            }
            Command::Send {
                to,
                amount,
                fee,
                reply,
            } => {
                let result = self.node.send_transaction(to, amount, fee, now);
                self.drain().await;
                // The payment is on disk before it is reported as sent: the next start (or the
                // next `node send`) must know its nonce is taken.
                self.flush_store();
                let result = match (&self.fatal, result) {
                    (Some(error), Ok(_)) => Err(NodeError::Storage(error.to_string())),
                    (_, result) => result.map_err(NodeError::Send),
                };
                let _ = reply.send(result);
            }
            Command::Inspect(look) => look(&self.node),
            Command::Shutdown(reply) => return Next::Stop(reply),
        }
        Next::Continue
    }

    async fn attach(&mut self, link: Link) {
        let now = self.clock.now_ms();
        if let Some(old) = self.link.take() {
            self.node.handle_disconnected(now);
            self.drain().await;
            tokio::spawn(old.close());
        }
        let info = link.info().clone();
        self.connection = Connection::Connected {
            url: info.url.clone(),
            room: info.room.clone(),
            peer_id: info.peer_id.clone(),
        };
        self.link = Some(link);
        transport::deliver_welcome(&mut self.node, &info, now);
        self.drain().await;
        let _ = self.events.send(RuntimeEvent::Connected(info));
    }

    fn cancel_reconnect(&mut self) {
        self.reconnecting = None;
        if let Some(attempt) = self.connecting.take() {
            attempt.abort();
        }
    }

    /// Plans reconnection attempt `attempt` to `url` after its backoff, and says so.
    fn schedule_reconnect(&mut self, url: String, attempt: u32, reason: String) {
        let delay = reconnect_delay(attempt, jitter());
        tracing::warn!(%url, attempt, delay_ms = delay.as_millis() as u64, reason = %crate::sanitize::printable(&reason), "connection lost; reconnecting");
        let _ = self.events.send(RuntimeEvent::Reconnecting {
            attempt,
            delay,
            reason: reason.clone(),
        });
        self.reconnecting = Some(Reconnecting {
            url,
            attempt,
            next_attempt_ms: Some(self.clock.now_ms() + delay.as_millis() as u64),
            reason,
        });
    }

    fn reconnect_wake(&self) -> Option<tokio::time::Instant> {
        let at = self.reconnecting.as_ref()?.next_attempt_ms?;
        Some(self.clock.instant_at(at))
    }

    /// The retry's time came: connect in the background, so the node keeps running meanwhile.
    fn start_reconnect(&mut self) {
        let Some(reconnecting) = &mut self.reconnecting else {
            return;
        };
        reconnecting.next_attempt_ms = None;
        let url = reconnecting.url.clone();
        tracing::info!(%url, attempt = reconnecting.attempt, "reconnecting");
        self.connecting = Some(tokio::spawn(
            async move { transport::connect_relay(&url).await },
        ));
    }

    async fn on_reconnect_attempt(&mut self, attempt: Result<Link, ConnectError>) {
        self.connecting = None;
        let Some(reconnecting) = self.reconnecting.take() else {
            return;
        };
        match attempt {
            Ok(link) => {
                tracing::info!(url = %reconnecting.url, attempts = reconnecting.attempt, "reconnected");
                self.attach(link).await;
            }
            Err(error) => {
                self.schedule_reconnect(
                    reconnecting.url,
                    reconnecting.attempt + 1,
                    error.to_string(),
                );
            }
        }
    }

    /// Handles `event` and whatever else the link already has queued (up to [`LINK_BATCH`]), so
    /// a burst of sync replies costs one fsync rather than one each.
    async fn on_link_events(&mut self, event: LinkEvent) {
        self.on_link_event(event).await;
        for _ in 1..LINK_BATCH {
            let Some(event) = self.link.as_mut().and_then(Link::try_next_event) else {
                break;
            };
            self.on_link_event(event).await;
        }
    }

    async fn on_link_event(&mut self, event: LinkEvent) {
        let now = self.clock.now_ms();
        let closed_reason = match &event {
            LinkEvent::Closed { reason } => Some(reason.clone()),
            LinkEvent::RelayError { code, message } => {
                let _ = self.events.send(RuntimeEvent::RelayError {
                    code: *code,
                    message: message.clone(),
                });
                None
            }
            _ => None,
        };
        let closed = transport::deliver(&mut self.node, event, now);
        if closed {
            let url = self
                .link
                .take()
                .map(|link| link.info().url.clone())
                .unwrap_or_default();
            let reason = closed_reason.unwrap_or_default();
            self.connection = Connection::Lost {
                url: url.clone(),
                reason: reason.clone(),
            };
            let _ = self.events.send(RuntimeEvent::Disconnected {
                reason: reason.clone(),
            });
            if self.auto_reconnect && !url.is_empty() {
                self.schedule_reconnect(url, 1, reason);
            }
        }
        self.drain().await;
    }

    async fn on_found(&mut self, found: FoundBlock) {
        let now = self.clock.now_ms();
        let hash = found.block.hash();
        let height = found.block.header.height;
        // The node judges the job id: a block for an old job is ignored, a refused one gets
        // the miner a fresh job.
        self.node.handle_mined_block(found.job_id, found.block, now);
        self.drain().await;
        // Our block is on disk before anyone is told it was mined.
        self.flush_store();
        if self.fatal.is_some() {
            return;
        }
        if self.node.tree().tip_hash() == hash {
            self.blocks_mined += 1;
            tracing::info!(height, hash = %hash.short(), "mined a block");
            let _ = self.events.send(RuntimeEvent::Mined { height, hash });
            if self.mining_until == Some(self.blocks_mined) {
                self.mining_until = None;
                self.node.set_mining(false, now);
                self.drain().await;
            }
        }
    }

    async fn on_tick(&mut self) {
        let now = self.clock.now_ms();
        self.ticks += 1;
        self.last_tick_ms = Some(now);
        self.node.handle_tick(now);
        self.drain().await;
    }

    /// When the node next needs `handle_tick`: the instant it named, but not sooner than
    /// [`MIN_TICK_GAP`] after the last tick. `None` while it has no deadline.
    fn next_wake(&self) -> Option<tokio::time::Instant> {
        let deadline = self.clock.instant_at(self.node.poll_timeout()?);
        let earliest = self
            .last_tick_ms
            .map(|last| self.clock.instant_at(last) + MIN_TICK_GAP);
        Some(earliest.map_or(deadline, |earliest| deadline.max(earliest)))
    }

    fn sample_hash_rate(&mut self) {
        let (then, hashes_then) = self.last_rate_sample;
        let hashes = self.miner.hashes();
        let elapsed = then.elapsed().as_secs_f64();
        if elapsed > 0.0 {
            self.hash_rate = (hashes - hashes_then) as f64 / elapsed;
        }
        self.last_rate_sample = (Instant::now(), hashes);
    }

    /// Does everything the node asked for since the last call.
    async fn drain(&mut self) {
        while let Some(output) = self.node.poll_output() {
            match output {
                // With no direct links every route is the relay.
                Output::Send { to, payload, .. } => {
                    self.transmit(Outgoing::Send { to, payload }).await
                }
                // Never asked of a node configured without direct links.
                Output::OpenLink { .. } | Output::CloseLink { .. } => {}
                Output::Broadcast { payload } => self.transmit(Outgoing::Broadcast(payload)).await,
                Output::StoreBlock(block) => self.unstored.push(block),
                Output::DeleteBlock(hash) => {
                    self.flush_store();
                    if self.fatal.is_none() {
                        if let Err(error) = self.store.delete(&hash) {
                            self.fail(error);
                        }
                    }
                }
                Output::Mine(job) => {
                    if self.fatal.is_none() {
                        self.miner.start_job(job);
                    }
                }
                Output::StoreTransaction(tx) => self.txs.put(tx),
                Output::DeleteTransaction(id) => self.txs.remove(&id),
                Output::StopMining => self.miner.stop(),
                Output::Event(event) => self.on_node_event(event),
            }
        }
    }

    /// Makes the blocks accepted since the last flush durable, with one fsync. The loop calls
    /// it at the end of every step, before the step's snapshot is published.
    fn flush_store(&mut self) {
        if self.fatal.is_some() {
            return;
        }
        if !self.unstored.is_empty() {
            let blocks = std::mem::take(&mut self.unstored);
            if let Err(error) = self.store.append(&blocks) {
                self.fail(error);
                return;
            }
        }
        if let Err(error) = self.txs.flush() {
            self.fail(error);
        }
    }

    fn fail(&mut self, error: StoreError) {
        self.miner.stop();
        if self.node.is_mining() {
            self.node.set_mining(false, self.clock.now_ms());
        }
        self.fatal = Some(error);
    }

    async fn transmit(&mut self, outgoing: Outgoing) {
        if let Some(link) = &self.link {
            // A closed link is reported by its reader; the payload is lost with it.
            let _ = link.send(outgoing).await;
        }
    }

    fn on_node_event(&mut self, event: NodeEvent) {
        log_event(&self.node, &event);
        if self.replaying && matches!(event, NodeEvent::BlockRejected { .. }) {
            self.rejected_stored_blocks += 1;
        }
        let _ = self.events.send(RuntimeEvent::Node(event));
    }

    fn snapshot(&self) -> Snapshot {
        let node = &self.node;
        let tip = node.tip_status();
        let (syncing, sync_target_height) = match node.sync_state() {
            SyncState::Synced => (false, None),
            SyncState::Syncing { target_height } => (true, Some(target_height)),
        };
        Snapshot {
            name: node.name().to_owned(),
            address: node.address(),
            network: self.network,
            connection: self.connection.clone(),
            reconnecting: self.reconnecting.clone(),
            height: tip.height,
            tip: tip.hash,
            total_work: tip.total_work,
            syncing,
            sync_target_height,
            requests_in_flight: node.blocks_in_flight() > 0,
            peers: node
                .peers()
                .map(|peer| peer_summary(peer, self.clock.now_ms()))
                .collect(),
            mining: node.is_mining(),
            miner_threads: self.miner.threads(),
            hash_rate: self.hash_rate,
            hashes: self.miner.hashes(),
            blocks_mined: self.blocks_mined,
            balance: node.balance(&node.address()),
            mempool: node.mempool().len(),
            stored_blocks: self.store.len(),
            loaded_blocks: self.loaded_blocks,
            rejected_stored_blocks: self.rejected_stored_blocks,
            truncated_bytes: self.truncated_bytes,
            fatal: self.fatal.as_ref().map(ToString::to_string),
            ticks: self.ticks,
            last_tick_ms: self.last_tick_ms,
            next_tick_ms: node.poll_timeout(),
        }
    }
}

fn peer_summary(peer: &shared::node::PeerInfo, now_ms: u64) -> PeerSummary {
    shared::view::peer_view(peer, now_ms, HELLO_GRACE.as_millis() as u64)
}

/// Sleeps until `wake`, or forever without one.
async fn sleep_until(wake: Option<tokio::time::Instant>) {
    match wake {
        Some(wake) => tokio::time::sleep_until(wake).await,
        None => std::future::pending().await,
    }
}

/// The outcome of the reconnection attempt under way; never, without one.
async fn next_attempt(
    connecting: &mut Option<JoinHandle<Result<Link, ConnectError>>>,
) -> Result<Link, ConnectError> {
    match connecting {
        Some(attempt) => match attempt.await {
            Ok(result) => result,
            Err(error) => Err(ConnectError::Unreachable {
                url: String::new(),
                reason: format!("the attempt failed: {error}"),
            }),
        },
        None => std::future::pending().await,
    }
}

async fn next_link_event(link: &mut Option<Link>) -> LinkEvent {
    match link {
        Some(link) => link.next_event().await,
        None => std::future::pending().await,
    }
}

/// Logs a node event with fields; routine chain growth at debug level, the rest at info or warn.
fn log_event(node: &Node, event: &NodeEvent) {
    let peer_name = |peer: &PeerId| {
        node.peer(peer)
            .and_then(|info| info.name.as_deref())
            .map(|name| crate::sanitize::printable(name).into_owned())
            .unwrap_or_else(|| peer.short().to_owned())
    };
    match event {
        NodeEvent::TipChanged {
            hash,
            height,
            reorg_depth,
            ..
        } => {
            if *reorg_depth > 0 {
                tracing::info!(height, hash = %hash.short(), reorg_depth, "reorganized to a heavier chain");
            } else {
                tracing::debug!(height, hash = %hash.short(), "new tip");
            }
        }
        NodeEvent::BlockAccepted { .. }
        | NodeEvent::PeerTip { .. }
        | NodeEvent::LinkChanged { .. } => {}
        NodeEvent::BlockRejected { hash, from, reason } => {
            let from = from.as_ref().map(peer_name);
            tracing::warn!(hash = %hash.short(), from, %reason, "block rejected");
        }
        NodeEvent::PeerJoined { peer } => tracing::debug!(peer = %peer.short(), "peer joined"),
        NodeEvent::PeerLeft { peer } => tracing::info!(peer = %peer_name(peer), "peer left"),
        NodeEvent::PeerHello {
            peer,
            name,
            address,
        } => {
            let name = crate::sanitize::printable(name);
            tracing::info!(peer = %peer.short(), %name, address = %address.short(), "peer said hello")
        }
        NodeEvent::PeerRefused { peer, reason } => {
            let reason = crate::sanitize::printable(reason);
            tracing::warn!(peer = %peer.short(), %reason, "peer refused: it is not on our network")
        }
        NodeEvent::PeerMisbehaved {
            peer,
            reason,
            score,
            banned,
        } => tracing::warn!(peer = %peer_name(peer), %reason, score, banned, "peer misbehaved"),
        NodeEvent::TransactionAccepted { id, from_peer } => {
            let from = from_peer.as_ref().map(peer_name);
            tracing::info!(id = %id.short(), from, "transaction accepted")
        }
        NodeEvent::TransactionConfirmed { id, height } => {
            tracing::info!(id = %id.short(), height, "transaction confirmed")
        }
        NodeEvent::TransactionDropped { id, reason } => {
            tracing::warn!(id = %id.short(), %reason, "transaction dropped")
        }
        NodeEvent::SyncChanged(state) => match state {
            SyncState::Synced => tracing::info!(height = node.tree().tip_height(), "synced"),
            SyncState::Syncing { target_height } => {
                tracing::info!(target_height, "syncing")
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::node::reconnect::{FAST_RETRY_MS, MAX_RETRY_MS};

    #[test]
    fn reconnection_follows_the_shared_policy() {
        // Attempt 1 waits what the policy gives after no failure; the policy's own tests cover
        // its shape.
        for attempt in 1..20 {
            assert_eq!(
                reconnect_delay(attempt, 0.3),
                Duration::from_millis(retry_delay_ms(attempt - 1, 0.3))
            );
        }
        assert_eq!(
            reconnect_delay(1, 0.5),
            Duration::from_millis(FAST_RETRY_MS)
        );
        assert_eq!(
            reconnect_delay(1_000, 0.5),
            Duration::from_millis(MAX_RETRY_MS)
        );
        for _ in 0..100 {
            assert!((0.0..1.0).contains(&jitter()));
        }
    }
}
