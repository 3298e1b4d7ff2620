//! The UI state: one reducer for the node's picture, one for the event log. The driver
//! dispatches actions after it has drained the node's outputs; components only read.

use crate::config::Config;
use crate::connection::ConnectionState;
use crate::identity::StoredIdentity;
use crate::log::{LogEntry, MAX_LOG_ENTRIES};
use crate::snapshot::NodeSnapshot;
use std::collections::VecDeque;
use std::rc::Rc;
use yew::Reducible;

#[derive(Clone, Debug, PartialEq)]
pub enum Boot {
    Loading(String),
    Ready,
    Failed(String),
}

/// What this tab is: fixed for the life of the page.
#[derive(Clone, Debug, PartialEq)]
pub struct Session {
    pub config: Config,
    pub identity_id: String,
    /// False when IndexedDB could not be opened: the node runs, but forgets on reload.
    pub persistent: bool,
}

#[derive(Clone, Debug, PartialEq)]
pub struct NodeState {
    pub boot: Boot,
    pub session: Option<Rc<Session>>,
    pub snapshot: Option<Rc<NodeSnapshot>>,
    pub connection: ConnectionState,
    /// Tabs of this browser linked over the tab channel (`browser::tabs`): how many, and which
    /// (the compare table says "this browser" for them, not "direct").
    pub same_browser: usize,
    pub same_browser_peers: Vec<shared::protocol::PeerId>,
    pub hash_rate: f64,
    pub workers: u32,
    pub max_workers: u32,
    /// Percent of the time the workers mine (the hash-power dial).
    pub throttle: u8,
    pub identities: Rc<Vec<StoredIdentity>>,
    /// Blocks and transactions accepted but not yet written to IndexedDB (writes are batched).
    pub unsaved: usize,
    pub storage: StorageHealth,
    /// The page is hidden (another tab in front, a minimized window): the browser slows its
    /// timers, so its miners and its relay connection with them (see docs/web.md).
    pub hidden: bool,
}

impl NodeState {
    /// The room this tab is in ("" before the session starts).
    pub fn room(&self) -> String {
        self.session
            .as_ref()
            .map(|s| s.config.room.clone())
            .unwrap_or_default()
    }

    /// The network this tab runs, in words ("classroom").
    pub fn network_label(&self) -> String {
        self.session
            .as_ref()
            .map(|s| s.config.network_label().to_string())
            .unwrap_or_default()
    }

    /// What the status line says of the chain: offline, syncing, in sync, alone on a network.
    pub fn chain_status(&self, snapshot: &NodeSnapshot) -> crate::connection::ChainStatus {
        crate::connection::ChainStatus::of(
            &self.connection,
            snapshot.sync,
            snapshot.height,
            snapshot.direct_links,
            &snapshot.hearing,
        )
    }
}

/// What the person must know about this tab's storage beyond `Session::persistent`.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct StorageHealth {
    /// Whether the browser granted persistent storage (`navigator.storage.persist()`): when it
    /// did not, it may evict the chain under storage pressure. `None` until it answers, or when
    /// it could not be asked (no IndexedDB).
    pub persisted: Option<bool>,
    /// A read at boot that failed (storage did not open, the chain or the identities could not
    /// be read, entries were unreadable). It stays until the page reloads.
    pub boot_problem: Option<String>,
    /// The last write that failed; cleared once a later batch is saved (the failed one is
    /// retried first).
    pub write_problem: Option<String>,
    /// Writes refused because storage was too far behind: these blocks or transactions are
    /// not saved and are gone after a reload (peers have the blocks).
    pub lost_writes: u64,
}

impl Default for NodeState {
    fn default() -> Self {
        NodeState {
            boot: Boot::Loading("starting…".into()),
            session: None,
            snapshot: None,
            connection: ConnectionState::Connecting { attempt: 1 },
            same_browser: 0,
            same_browser_peers: Vec::new(),
            hash_rate: 0.0,
            workers: 1,
            max_workers: 1,
            throttle: 100,
            unsaved: 0,
            storage: StorageHealth::default(),
            hidden: false,
            identities: Rc::new(Vec::new()),
        }
    }
}

pub enum NodeAction {
    Booting(String),
    Ready(Rc<Session>),
    Failed(crate::browser::driver::BootError),
    Snapshot(Rc<NodeSnapshot>),
    Connection(ConnectionState),
    SameBrowser(Vec<shared::protocol::PeerId>),
    HashRate(f64),
    Workers {
        count: u32,
        max: u32,
    },
    Throttle(u8),
    Identities(Vec<StoredIdentity>),
    Unsaved(usize),
    Persisted(bool),
    StorageBootProblem(String),
    /// `None`: a batch was saved, any earlier write problem is over.
    StorageWriteProblem(Option<String>),
    WriteLost,
    Hidden(bool),
}

impl Reducible for NodeState {
    type Action = NodeAction;

    fn reduce(self: Rc<Self>, action: NodeAction) -> Rc<Self> {
        let mut next = (*self).clone();
        match action {
            NodeAction::Booting(what) => next.boot = Boot::Loading(what),
            NodeAction::Ready(session) => {
                next.boot = Boot::Ready;
                next.session = Some(session);
            }
            NodeAction::Failed(why) => next.boot = Boot::Failed(why.to_string()),
            NodeAction::Snapshot(snapshot) => next.snapshot = Some(snapshot),
            NodeAction::Connection(state) => next.connection = state,
            NodeAction::SameBrowser(peers) => {
                if peers == self.same_browser_peers {
                    return self;
                }
                next.same_browser = peers.len();
                next.same_browser_peers = peers;
            }
            NodeAction::HashRate(rate) => {
                if rate == self.hash_rate {
                    return self;
                }
                next.hash_rate = rate;
            }
            NodeAction::Workers { count, max } => {
                next.workers = count;
                next.max_workers = max;
            }
            NodeAction::Throttle(percent) => next.throttle = percent,
            NodeAction::Identities(list) => next.identities = Rc::new(list),
            NodeAction::Unsaved(count) => {
                if count == self.unsaved {
                    return self;
                }
                next.unsaved = count;
            }
            NodeAction::Persisted(granted) => next.storage.persisted = Some(granted),
            NodeAction::StorageBootProblem(problem) => {
                // Several problems at boot are joined: each is something the person should know.
                next.storage.boot_problem = Some(match next.storage.boot_problem.take() {
                    Some(earlier) => format!("{earlier}; {problem}"),
                    None => problem,
                })
            }
            NodeAction::StorageWriteProblem(problem) => {
                if problem == self.storage.write_problem {
                    return self;
                }
                next.storage.write_problem = problem;
            }
            NodeAction::WriteLost => next.storage.lost_writes += 1,
            NodeAction::Hidden(hidden) => next.hidden = hidden,
        }
        Rc::new(next)
    }
}

/// The event log, newest first.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct LogState {
    pub entries: VecDeque<LogEntry>,
}

pub enum LogAction {
    Append(Vec<LogEntry>),
}

impl Reducible for LogState {
    type Action = LogAction;

    fn reduce(self: Rc<Self>, action: LogAction) -> Rc<Self> {
        let LogAction::Append(entries) = action;
        if entries.is_empty() {
            return self;
        }
        let mut next = (*self).clone();
        for entry in entries {
            crate::log::push_grouped(&mut next.entries, entry);
        }
        next.entries.truncate(MAX_LOG_ENTRIES);
        Rc::new(next)
    }
}
