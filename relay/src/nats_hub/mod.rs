//! Rooms that span several relay processes, through a NATS broker (`--nats-url`).
//!
//! [`NatsHub`] is a [`RoomHub`]: every frame still goes straight into the local members'
//! [`Outbox`]es, and is also published on the room's broker subject; each relay delivers what
//! the broker hands it from other relays to its own members. What a relay knows about members
//! elsewhere is a view built from the broker (see [`wire`] for the messages):
//!
//! - **Subscriptions follow members.** A relay subscribes to a room's subject when the room's
//!   first local peer joins, and unsubscribes when its last one leaves. A joiner's `welcome` waits
//!   until the broker has confirmed the subscription (a flush round trip) and the other relays
//!   have answered a presence query, so the welcome lists the whole room and nothing sent to the
//!   joiner after it is lost.
//! - **Presence heals.** Each relay publishes joins and leaves as they happen and, every
//!   [`HEARTBEAT_INTERVAL`], the full list of its members in each of its rooms. A relay not heard
//!   in a room for [`PRESENCE_EXPIRY`] (killed, cut off) has its peers announced as left there. A
//!   heartbeat replaces what it contradicts, so a join or leave lost in an outage is repaired by
//!   the next one. A restarted relay has a new [`RelayId`], so nothing of its old life lingers.
//! - **Outages.** The client reconnects by itself (every [`RECONNECT_DELAY_MAX`] at most) and
//!   re-sends its subscriptions; on reconnection the hub republishes its presence and queries
//!   every room, so views converge at once. While the broker is away local delivery goes on,
//!   publishes are dropped and counted (core NATS is at-most-once; the nodes' sync repairs
//!   chains), and `/healthz` says `degraded`.
//!
//! Order: one relay publishes everything about a room from one queue, in the order its state
//! changed, on one subject; NATS keeps one connection's order per subject, so per-sender order
//! holds across relays. The broker does not echo a relay's own messages (`no_echo`), and the
//! relay ignores any that carry its own id, so nothing is delivered twice.
//!
//! The room cap counts local and remote members. Two relays admitting a room's last seat at the
//! same instant may overshoot it by one each (the view is at most one round trip old).

mod metrics;
pub mod wire;

use crate::hub::{
    deliver_directed, HubFuture, HubHealth, JoinError, RoomHub, RoomName, Undelivered,
};
use crate::metrics::Metrics;
use crate::outbox::{Outbox, Push};
use async_nats::{Client, ConnectOptions, Event, Subject};
use bytes::Bytes;
use futures_util::StreamExt;
use metrics::BrokerMetrics;
use shared::protocol::{IceServer, PeerId, RelayFrame};
use std::collections::hash_map::{DefaultHasher, Entry};
use std::collections::{HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use thiserror::Error;
use tokio::sync::{mpsc, oneshot, watch, Notify};
use tokio::task::AbortHandle;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Utf8Bytes;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};
use wire::{room_subject, FleetMessage, RelayId, RoomMessage, FLEET_SUBJECT};

/// How often a relay says it is alive and lists its members in each of its rooms. One small
/// message per room per interval; short enough that [`PRESENCE_EXPIRY`] meets the 10 s goal.
pub const HEARTBEAT_INTERVAL: Duration = Duration::from_secs(2);
/// A relay not heard in a room for this long is gone from it: three heartbeats, so two lost in a
/// row (a busy broker, a scheduling hiccup) do not make its peers flap.
pub const PRESENCE_EXPIRY: Duration = Duration::from_secs(6);
/// How often expiry is checked. A killed relay's peers are announced as left within
/// `PRESENCE_EXPIRY + SWEEP_INTERVAL` (6.5 s) of its last heartbeat.
pub const SWEEP_INTERVAL: Duration = Duration::from_millis(500);
/// Longest a joiner waits for the broker to confirm a new room subscription. Past it the join is
/// confirmed anyway (local members can talk) and the relay reports the broker as slow.
pub const ROOM_OPEN_TIMEOUT: Duration = Duration::from_secs(2);
/// Longest a room's first joiner waits for the other relays to list their members. On one host
/// or a LAN the answers take about a millisecond; a relay that does not answer in time is
/// learned from its next heartbeat instead.
pub const PRESENCE_QUERY_TIMEOUT: Duration = Duration::from_millis(300);
/// After connecting, how long a relay listens for the other relays' answers to its hello before
/// it serves: without this, a room opened in its first moments would not know whom to wait for.
pub const FLEET_DISCOVERY_WAIT: Duration = Duration::from_millis(200);
/// The reconnect delay grows by this much per failed attempt...
pub const RECONNECT_DELAY_STEP: Duration = Duration::from_millis(100);
/// ...up to this, so cross-relay delivery resumes within about half a second of the broker's
/// return (the goal is 1 s), at the cost of a few connection attempts a second while it is away.
pub const RECONNECT_DELAY_MAX: Duration = Duration::from_millis(500);
/// The client pings the broker this often; two unanswered pings mean the link is dead. A killed
/// broker is noticed at once (the TCP connection closes); this catches a silent network.
pub const BROKER_PING_INTERVAL: Duration = Duration::from_secs(2);
/// Longest the client waits for a broker to accept a connection.
pub const BROKER_CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// Publishes waiting for the broker. A full room of 256 peers at 10 frames a second is 2,560 a
/// second; 16,384 is several seconds of that, and about 16 MiB at worst with 1 KiB frames.
/// When full, publishes are dropped and counted rather than blocking a peer's connection.
pub const PUBLISH_QUEUE_MESSAGES: usize = 16_384;
/// Bytes of publishes waiting for the broker, at most. Without it the count bound alone let a
/// paused broker's queue hold 16,384 messages of up to 1 MiB each (128 MiB was measured, growing
/// 40 MiB/s) outside every memory budget; past it, publishes are dropped and counted.
pub const PUBLISH_QUEUE_BYTES: usize = 32 * 1024 * 1024;
/// Commands the NATS client itself buffers (its default is 2,048): publishes it took but has not
/// written. With frames of up to 1 MiB, 64 keep what a stalled broker can make a relay hold
/// outside [`PUBLISH_QUEUE_BYTES`] to 64 MiB at worst.
const CLIENT_CAPACITY: usize = 64;
/// Publishes handed to the client per wake-up of the publisher task.
const PUBLISH_BATCH: usize = 256;
/// Messages the client buffers for one subscription before it drops (a slow consumer). The
/// reader tasks never wait on a peer, so this only has to cover a scheduling delay.
pub const SUBSCRIPTION_CAPACITY: usize = 16_384;
/// Relays remembered in the fleet. A fleet is a handful of processes; the bound only stops a
/// misbehaving broker client from growing the map.
pub const MAX_FLEET_RELAYS: usize = 1_024;
/// Broker events (connected, disconnected, slow consumer) waiting for the hub's control task.
const EVENT_QUEUE: usize = 256;
/// How many times a join goes round when its room closes under it before it is admitted on the
/// spot (once is the normal case; more would need a room to close and reopen meanwhile).
const JOIN_ATTEMPTS: usize = 3;
/// Shutdown waits this long for the last leaves to reach the broker.
const SHUTDOWN_FLUSH_TIMEOUT: Duration = Duration::from_secs(1);

/// Why a broker-backed hub could not be set up.
#[derive(Debug, Error)]
pub enum BrokerError {
    #[error("cannot connect to the NATS broker at {url}: {source}")]
    Connect {
        url: String,
        #[source]
        source: async_nats::ConnectError,
    },
    #[error("cannot subscribe to the fleet subject: {0}")]
    Subscribe(#[from] async_nats::SubscribeError),
}

/// A hub whose rooms span every relay connected to the same NATS broker.
pub struct NatsHub {
    shared: Arc<Shared>,
}

struct Shared {
    relay_id: RelayId,
    client: Client,
    shards: [Mutex<HashMap<RoomName, Room>>; ROOM_SHARDS],
    /// Other relays heard on the fleet subject, with when.
    fleet: Mutex<HashMap<RelayId, Instant>>,
    publishes: mpsc::Sender<Publish>,
    /// Bytes of the publishes in `publishes` (see [`PUBLISH_QUEUE_BYTES`]).
    publish_bytes: Arc<AtomicUsize>,
    next_room_id: AtomicU64,
    max_peers_per_room: usize,
    /// Largest frame delivered to this relay's peers: its own `--max-frame-bytes` with the
    /// envelope, applied to frames from other relays too (they may allow more).
    max_delivered_bytes: usize,
    metrics: Arc<Metrics>,
    broker: BrokerMetrics,
    stop: CancellationToken,
}

/// Same sharding as the local hub: rooms in different shards never contend.
const ROOM_SHARDS: usize = 16;

enum Publish {
    Message {
        subject: Subject,
        payload: Bytes,
    },
    /// Answered once everything queued before it has reached the broker.
    Flush(oneshot::Sender<()>),
}

/// One room as this relay sees it.
struct Room {
    /// Tells a reader task whether the room it serves is still this one.
    id: u64,
    subject: Subject,
    local: HashMap<PeerId, Outbox>,
    remote: HashMap<RelayId, RemoteMembers>,
    /// `true` once joins may be confirmed.
    ready: watch::Sender<bool>,
    /// Relays that answered this room's presence query.
    answered: HashSet<RelayId>,
    presence_changed: Arc<Notify>,
    reader: Option<AbortHandle>,
    /// When the room last had no local member (or opened): idle rooms are closed after a while.
    idle_since: Instant,
}

struct RemoteMembers {
    peers: HashSet<PeerId>,
    last_heard: Instant,
}

impl Room {
    /// Whether `peer` is in the room anywhere: here, or in any relay's presence. A peer id can be
    /// listed by two relays at once for a moment: a tab with a resume token that moved from one
    /// relay to another while the first had not yet noticed. Members hear `peer_joined` when an
    /// id first appears anywhere and `peer_left` when it is gone everywhere, so such a move is
    /// silent for them.
    fn is_present(&self, peer: &PeerId) -> bool {
        self.local.contains_key(peer)
            || self
                .remote
                .values()
                .any(|members| members.peers.contains(peer))
    }

    fn remote_count(&self) -> usize {
        self.remote
            .values()
            .map(|members| members.peers.len())
            .sum()
    }

    fn deliver_all(&self, metrics: &Metrics, frame: &Utf8Bytes) -> u64 {
        for outbox in self.local.values() {
            deliver(metrics, outbox, frame.clone());
        }
        self.local.len() as u64
    }
}

fn deliver(metrics: &Metrics, outbox: &Outbox, frame: Utf8Bytes) {
    match outbox.push(frame) {
        Push::Queued => {}
        Push::Overflowed => metrics.slow_consumer_overflows.inc(),
        Push::Closed | Push::Refused => metrics.dropped_to_closing_peer.inc(),
    }
}

fn joined_frame(peer: &PeerId) -> Utf8Bytes {
    Utf8Bytes::from(
        RelayFrame::PeerJoined {
            peer_id: peer.clone(),
        }
        .to_json(),
    )
}

fn left_frame(peer: &PeerId) -> Utf8Bytes {
    Utf8Bytes::from(
        RelayFrame::PeerLeft {
            peer_id: peer.clone(),
        }
        .to_json(),
    )
}

impl NatsHub {
    /// Connects to the broker at `url` and starts the hub's background tasks. If the broker
    /// cannot be reached the relay still starts (degraded) and keeps trying; only a malformed
    /// URL is an error.
    pub async fn connect(
        url: &str,
        max_peers_per_room: usize,
        max_delivered_bytes: usize,
        metrics: Arc<Metrics>,
    ) -> Result<NatsHub, BrokerError> {
        let relay_id = RelayId::random();
        let (events_tx, mut events_rx) = mpsc::channel(EVENT_QUEUE);
        let options = ConnectOptions::new()
            .name(format!("tabchain-relay {relay_id}"))
            .no_echo()
            .retry_on_initial_connect()
            .max_reconnects(None)
            .connection_timeout(BROKER_CONNECT_TIMEOUT)
            .ping_interval(BROKER_PING_INTERVAL)
            .subscription_capacity(SUBSCRIPTION_CAPACITY)
            .client_capacity(CLIENT_CAPACITY)
            .reconnect_delay_callback(|attempts| {
                (RECONNECT_DELAY_STEP * attempts as u32).min(RECONNECT_DELAY_MAX)
            })
            .event_callback(move |event| {
                let events = events_tx.clone();
                async move {
                    // A full queue only loses a duplicate state change or a slow-consumer tick.
                    let _ = events.try_send(event);
                }
            });
        let client = options
            .connect(url)
            .await
            .map_err(|source| BrokerError::Connect {
                url: url.to_owned(),
                source,
            })?;
        // The client connects in the background (so a relay can start before its broker): give
        // it the usual time to succeed before deciding whether this relay starts degraded.
        let first_connection = async {
            while let Some(event) = events_rx.recv().await {
                if matches!(event, Event::Connected) {
                    return;
                }
            }
        };
        let _ = tokio::time::timeout(BROKER_CONNECT_TIMEOUT, first_connection).await;
        let (publishes, publish_rx) = mpsc::channel(PUBLISH_QUEUE_MESSAGES);
        let shared = Arc::new(Shared {
            relay_id,
            client,
            shards: std::array::from_fn(|_| Mutex::new(HashMap::new())),
            fleet: Mutex::new(HashMap::new()),
            publishes,
            next_room_id: AtomicU64::new(0),
            max_peers_per_room,
            max_delivered_bytes,
            metrics,
            broker: BrokerMetrics::default(),
            publish_bytes: Arc::new(AtomicUsize::new(0)),
            stop: CancellationToken::new(),
        });
        let fleet = shared.client.subscribe(FLEET_SUBJECT).await?;
        let connected = shared.is_connected();
        shared.broker.set_connected(connected);
        info!(
            relay = shared.relay_id.short(),
            url, connected, "broker-backed rooms (NATS)"
        );
        if !connected {
            warn!(
                url,
                "the NATS broker is not reachable yet; serving local rooms until it is"
            );
        }
        tokio::spawn(publisher(shared.clone(), publish_rx));
        tokio::spawn(fleet_reader(shared.clone(), fleet));
        tokio::spawn(control(shared.clone(), events_rx));
        if connected {
            shared.publish_fleet(FleetMessage::Hello {
                relay: shared.relay_id.clone(),
            });
            tokio::time::sleep(FLEET_DISCOVERY_WAIT).await;
        }
        Ok(NatsHub { shared })
    }

    /// This relay's identity on the broker (new at every start).
    pub fn relay_id(&self) -> &RelayId {
        &self.shared.relay_id
    }
}

impl Shared {
    fn is_connected(&self) -> bool {
        self.client.connection_state() == async_nats::connection::State::Connected
    }

    fn shard(&self, room: &RoomName) -> MutexGuard<'_, HashMap<RoomName, Room>> {
        let mut hasher = DefaultHasher::new();
        room.hash(&mut hasher);
        let index = (hasher.finish() % ROOM_SHARDS as u64) as usize;
        self.shards[index]
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn fleet(&self) -> MutexGuard<'_, HashMap<RelayId, Instant>> {
        self.fleet
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Queues a publish without waiting. Callers hold the room's lock, so the queue's order is
    /// the order the room's state changed in.
    fn publish(&self, subject: Subject, payload: Bytes) {
        let length = payload.len();
        let before = self.publish_bytes.fetch_add(length, Ordering::Relaxed);
        if before + length > PUBLISH_QUEUE_BYTES {
            self.publish_bytes.fetch_sub(length, Ordering::Relaxed);
            self.broker.dropped_queue_full.inc();
            debug!("broker publish queue full (bytes); dropped");
            return;
        }
        if let Err(error) = self
            .publishes
            .try_send(Publish::Message { subject, payload })
        {
            self.publish_bytes.fetch_sub(length, Ordering::Relaxed);
            if matches!(error, mpsc::error::TrySendError::Full(_)) {
                self.broker.dropped_queue_full.inc();
                debug!("broker publish queue full; dropped");
            }
        }
    }

    fn publish_room(&self, room: &Room, message: RoomMessage) {
        self.publish(room.subject.clone(), message.encode());
    }

    fn publish_fleet(&self, message: FleetMessage) {
        self.publish(Subject::from_static(FLEET_SUBJECT), message.encode());
    }

    fn note_relay(&self, relay: &RelayId) {
        let mut fleet = self.fleet();
        if fleet.len() < MAX_FLEET_RELAYS || fleet.contains_key(relay) {
            fleet.insert(relay.clone(), Instant::now());
        }
    }

    async fn join(
        self: &Arc<Shared>,
        room: &RoomName,
        peer: &PeerId,
        ice_servers: Vec<IceServer>,
        outbox: Outbox,
    ) -> Result<(), JoinError> {
        for attempt in 1..=JOIN_ATTEMPTS {
            let mut ready = {
                let mut shard = self.shard(room);
                match shard.get_mut(room) {
                    Some(state) if *state.ready.borrow() || attempt == JOIN_ATTEMPTS => {
                        return self.admit(state, room, peer, ice_servers, outbox);
                    }
                    Some(state) => state.ready.subscribe(),
                    None => {
                        let (ready, waiting) = watch::channel(false);
                        let id = self.next_room_id.fetch_add(1, Ordering::Relaxed);
                        shard.insert(
                            room.clone(),
                            Room {
                                id,
                                subject: Subject::from(room_subject(room.as_str())),
                                local: HashMap::new(),
                                remote: HashMap::new(),
                                ready,
                                answered: HashSet::new(),
                                presence_changed: Arc::new(Notify::new()),
                                reader: None,
                                idle_since: Instant::now(),
                            },
                        );
                        tokio::spawn(self.clone().open_room(room.clone(), id));
                        waiting
                    }
                }
            };
            // `open_room` marks the room ready within its bounded waits; an error means the room
            // was closed meanwhile, and the next round opens it again.
            let _ = ready.wait_for(|ready| *ready).await;
        }
        unreachable!("the last attempt admits")
    }

    /// Admits `peer` into a ready room (under the room's lock).
    fn admit(
        &self,
        state: &mut Room,
        room: &RoomName,
        peer: &PeerId,
        ice_servers: Vec<IceServer>,
        outbox: Outbox,
    ) -> Result<(), JoinError> {
        if let Some(old) = state.local.remove(peer) {
            // The same resume token again on this relay: the newer connection takes the id, and
            // the room hears the old one leave and the new one join, as on a single relay.
            old.replace();
            self.announce_left(state, peer);
        }
        if state.local.len() + state.remote_count() >= self.max_peers_per_room {
            return Err(JoinError::RoomFull);
        }
        let mut peers: Vec<PeerId> = state
            .local
            .keys()
            .chain(
                state
                    .remote
                    .values()
                    .flat_map(|members| members.peers.iter()),
            )
            .filter(|listed| *listed != peer)
            .cloned()
            .collect();
        peers.sort();
        peers.dedup();
        let welcome = RelayFrame::Welcome {
            peer_id: peer.clone(),
            room: room.as_str().to_owned(),
            peers,
            ice_servers,
        };
        deliver(&self.metrics, &outbox, Utf8Bytes::from(welcome.to_json()));
        if !state.is_present(peer) {
            state.deliver_all(&self.metrics, &joined_frame(peer));
        }
        state.local.insert(peer.clone(), outbox);
        self.publish_room(
            state,
            RoomMessage::Joined {
                relay: self.relay_id.clone(),
                peer: peer.clone(),
            },
        );
        Ok(())
    }

    /// Subscribes to a new room's subject, learns who is in it elsewhere, then lets joins in.
    async fn open_room(self: Arc<Shared>, room: RoomName, id: u64) {
        let subject = Subject::from(room_subject(room.as_str()));
        match self.client.subscribe(subject).await {
            Ok(subscriber) => {
                let reader = tokio::spawn(room_reader(self.clone(), room.clone(), id, subscriber));
                let mut shard = self.shard(&room);
                match shard.get_mut(&room) {
                    Some(state) if state.id == id => state.reader = Some(reader.abort_handle()),
                    _ => reader.abort(),
                }
            }
            Err(error) => {
                warn!(room = room.as_str(), %error, "cannot subscribe to a room; its peers here hear only each other")
            }
        }
        if self.is_connected() {
            // A flush is a round trip: once it returns, the broker has our subscription.
            match tokio::time::timeout(ROOM_OPEN_TIMEOUT, self.client.flush()).await {
                Ok(Ok(())) => self.query_presence(&room, id).await,
                Ok(Err(error)) => {
                    warn!(room = room.as_str(), %error, "the broker did not confirm a room subscription")
                }
                Err(_) => {
                    warn!(
                        room = room.as_str(),
                        "the broker did not confirm a room subscription in time"
                    )
                }
            }
        }
        let shard = self.shard(&room);
        if let Some(state) = shard.get(&room).filter(|state| state.id == id) {
            state.ready.send_replace(true);
        }
    }

    /// Asks every relay for its members in `room` and waits (bounded) for the relays this one
    /// knows to answer.
    async fn query_presence(&self, room: &RoomName, id: u64) {
        self.publish_fleet(FleetMessage::Query {
            relay: self.relay_id.clone(),
            room: room.as_str().to_owned(),
        });
        let expected: Vec<RelayId> = self.fleet().keys().cloned().collect();
        let deadline = Instant::now() + PRESENCE_QUERY_TIMEOUT;
        loop {
            let notify = {
                let shard = self.shard(room);
                let Some(state) = shard.get(room).filter(|state| state.id == id) else {
                    return;
                };
                if expected.iter().all(|relay| state.answered.contains(relay)) {
                    return;
                }
                state.presence_changed.clone()
            };
            let changed = notify.notified();
            tokio::pin!(changed);
            // Registered before the check below, so an answer in between is not missed.
            changed.as_mut().enable();
            {
                let shard = self.shard(room);
                if let Some(state) = shard.get(room).filter(|state| state.id == id) {
                    if expected.iter().all(|relay| state.answered.contains(relay)) {
                        return;
                    }
                }
            }
            if tokio::time::timeout_at(deadline, changed).await.is_err() {
                debug!(
                    room = room.as_str(),
                    "not every relay answered the presence query in time"
                );
                return;
            }
        }
    }

    /// `peer`, just removed from this relay's members, has left: the local members hear it
    /// unless another relay still lists it, and the other relays are told.
    fn announce_left(&self, state: &mut Room, peer: &PeerId) {
        if !state.is_present(peer) {
            state.deliver_all(&self.metrics, &left_frame(peer));
        }
        self.publish_room(
            state,
            RoomMessage::Left {
                relay: self.relay_id.clone(),
                peer: peer.clone(),
            },
        );
    }

    fn leave(&self, room: &RoomName, peer: &PeerId, outbox: &Outbox) {
        let mut shard = self.shard(room);
        let Entry::Occupied(mut entry) = shard.entry(room.clone()) else {
            return;
        };
        let state = entry.get_mut();
        if !state
            .local
            .get(peer)
            .is_some_and(|member| member.same(outbox))
        {
            return;
        }
        state.local.remove(peer);
        self.announce_left(state, peer);
        if state.local.is_empty() {
            // No local member: stop receiving the room. Unsubscribing is the reader's drop.
            if let Some(reader) = state.reader.take() {
                reader.abort();
            }
            entry.remove();
        }
    }

    fn broadcast(&self, room: &RoomName, from: &PeerId, frame: Utf8Bytes) {
        let shard = self.shard(room);
        let Some(state) = shard.get(room) else {
            return;
        };
        for (id, outbox) in &state.local {
            if id != from {
                deliver(&self.metrics, outbox, frame.clone());
            }
        }
        if state.remote_count() == 0 {
            // No other relay holds a member of this room: the broker would carry it to nobody.
            // A member who joins elsewhere counts once its relay's `joined` arrives here (one
            // broker round trip): a broadcast in that moment does not reach it, as a frame sent
            // just before a join on one relay does not; its hello and the room's answers to it
            // are what bring a newcomer up to date.
            self.broker.kept_local.inc();
            return;
        }
        self.publish_room(
            state,
            RoomMessage::Broadcast {
                relay: self.relay_id.clone(),
                from: from.clone(),
                frame,
            },
        );
    }

    fn send_to(
        &self,
        room: &RoomName,
        from: &PeerId,
        to: &PeerId,
        frame: Utf8Bytes,
    ) -> Result<(), Undelivered> {
        let shard = self.shard(room);
        let state = shard.get(room).ok_or(Undelivered::UnknownPeer)?;
        if let Some(outbox) = state.local.get(to) {
            return deliver_directed(&self.metrics, outbox, frame);
        }
        if !state
            .remote
            .values()
            .any(|members| members.peers.contains(to))
        {
            return Err(Undelivered::UnknownPeer);
        }
        self.publish_room(
            state,
            RoomMessage::Send {
                relay: self.relay_id.clone(),
                from: from.clone(),
                to: to.clone(),
                frame,
            },
        );
        Ok(())
    }

    /// Handles one message from a room's subject.
    fn on_room_message(&self, room: &RoomName, id: u64, payload: &Bytes) {
        let message = match RoomMessage::decode(payload, self.max_peers_per_room) {
            Ok(message) => message,
            Err(error) => {
                self.broker.dropped_malformed.inc();
                debug!(room = room.as_str(), %error, "malformed broker message");
                return;
            }
        };
        let mut shard = self.shard(room);
        let Some(state) = shard.get_mut(room).filter(|state| state.id == id) else {
            return;
        };
        let now = Instant::now();
        let oversized = match &message {
            RoomMessage::Broadcast { frame, .. } | RoomMessage::Send { frame, .. } => {
                frame.len() > self.max_delivered_bytes
            }
            _ => false,
        };
        if oversized {
            self.broker.dropped_too_large.inc();
            return;
        }
        match message {
            RoomMessage::Broadcast { relay, from, frame } => {
                if relay == self.relay_id {
                    return;
                }
                self.broker.received.inc();
                self.learn_member(state, &relay, &from, now);
                let delivered = state.deliver_all(&self.metrics, &frame);
                self.broker.deliveries.add(delivered);
            }
            RoomMessage::Send {
                relay,
                from,
                to,
                frame,
            } => {
                if relay == self.relay_id {
                    return;
                }
                self.broker.received.inc();
                if state.local.contains_key(&to) {
                    self.learn_member(state, &relay, &from, now);
                    // From another relay, the sender cannot be told: a refusal is only counted.
                    if deliver_directed(&self.metrics, &state.local[&to], frame).is_err() {
                        self.metrics.dropped_receiver_busy.inc();
                    } else {
                        self.broker.deliveries.inc();
                    }
                }
            }
            RoomMessage::Joined { relay, peer } => {
                if relay == self.relay_id {
                    return;
                }
                self.learn_member(state, &relay, &peer, now);
                if let Some(old) = state.local.remove(&peer) {
                    // The tab moved to another relay with its resume token while its old
                    // connection here was still open: the newer one wins, and since the id is
                    // still in the room (there), nobody hears it leave.
                    info!(
                        room = room.as_str(),
                        peer = peer.short(),
                        relay = relay.short(),
                        "peer id taken by a connection on another relay; closing ours"
                    );
                    old.replace();
                    self.publish_room(
                        state,
                        RoomMessage::Left {
                            relay: self.relay_id.clone(),
                            peer: peer.clone(),
                        },
                    );
                }
            }
            RoomMessage::Left { relay, peer } => {
                if relay == self.relay_id {
                    return;
                }
                let Some(members) = state.remote.get_mut(&relay) else {
                    return;
                };
                members.last_heard = now;
                if members.peers.remove(&peer) && !state.is_present(&peer) {
                    state.deliver_all(&self.metrics, &left_frame(&peer));
                }
            }
            RoomMessage::Presence { relay, peers } => {
                if relay == self.relay_id {
                    return;
                }
                self.reconcile(state, relay, peers, now);
            }
        }
    }

    /// Adds `peer` of `relay` to the view, announcing it if it is new.
    fn learn_member(&self, state: &mut Room, relay: &RelayId, peer: &PeerId, now: Instant) {
        let members = state
            .remote
            .entry(relay.clone())
            .or_insert_with(|| RemoteMembers {
                peers: HashSet::new(),
                last_heard: now,
            });
        members.last_heard = now;
        if members.peers.contains(peer) || members.peers.len() >= self.max_peers_per_room {
            return;
        }
        let announce = !state.is_present(peer);
        if let Some(members) = state.remote.get_mut(relay) {
            members.peers.insert(peer.clone());
        }
        if announce {
            state.deliver_all(&self.metrics, &joined_frame(peer));
        }
    }

    /// Makes the view of `relay`'s members in a room equal its presence list.
    fn reconcile(&self, state: &mut Room, relay: RelayId, peers: Vec<PeerId>, now: Instant) {
        let listed: HashSet<PeerId> = peers.into_iter().collect();
        let known = state.remote.remove(&relay).map(|members| members.peers);
        let known = known.unwrap_or_default();
        for gone in known.difference(&listed) {
            if !state.is_present(gone) {
                state.deliver_all(&self.metrics, &left_frame(gone));
            }
        }
        for new in listed.difference(&known) {
            if !state.is_present(new) {
                state.deliver_all(&self.metrics, &joined_frame(new));
            }
        }
        if !listed.is_empty() {
            state.remote.insert(
                relay.clone(),
                RemoteMembers {
                    peers: listed,
                    last_heard: now,
                },
            );
        }
        state.answered.insert(relay);
        state.presence_changed.notify_waiters();
    }

    /// Drops every member of relays not heard in a room for [`PRESENCE_EXPIRY`], and closes rooms
    /// left without a local member (a joiner that vanished while its room opened).
    fn sweep(&self, now: Instant) {
        for shard in &self.shards {
            let mut rooms = shard
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            rooms.retain(|room, state| {
                let expired: Vec<RelayId> = state
                    .remote
                    .iter()
                    .filter(|(_, members)| now - members.last_heard > PRESENCE_EXPIRY)
                    .map(|(relay, _)| relay.clone())
                    .collect();
                for relay in expired {
                    let members = state.remote.remove(&relay).expect("listed above");
                    warn!(
                        room = room.as_str(),
                        relay = relay.short(),
                        peers = members.peers.len(),
                        "relay not heard in time; its peers are announced as left"
                    );
                    self.broker.presence_expired.add(members.peers.len() as u64);
                    for peer in &members.peers {
                        if !state.is_present(peer) {
                            state.deliver_all(&self.metrics, &left_frame(peer));
                        }
                    }
                }
                let abandoned = state.local.is_empty()
                    && *state.ready.borrow()
                    && now - state.idle_since > ROOM_OPEN_TIMEOUT + PRESENCE_QUERY_TIMEOUT;
                if abandoned {
                    if let Some(reader) = state.reader.take() {
                        reader.abort();
                    }
                }
                !abandoned
            });
        }
        self.fleet()
            .retain(|_, last_heard| now - *last_heard <= PRESENCE_EXPIRY);
    }

    /// Publishes this relay's members of every room it has (its heartbeat), and on reconnection
    /// asks the others for theirs.
    fn announce(&self, query: bool) {
        self.publish_fleet(FleetMessage::Alive {
            relay: self.relay_id.clone(),
        });
        for shard in &self.shards {
            let rooms = shard
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            for (room, state) in rooms.iter() {
                if state.local.is_empty() {
                    continue;
                }
                self.publish_room(state, self.presence_of(state));
                if query {
                    self.publish_fleet(FleetMessage::Query {
                        relay: self.relay_id.clone(),
                        room: room.as_str().to_owned(),
                    });
                }
            }
        }
    }

    fn presence_of(&self, state: &Room) -> RoomMessage {
        let mut peers: Vec<PeerId> = state.local.keys().cloned().collect();
        peers.sort();
        RoomMessage::Presence {
            relay: self.relay_id.clone(),
            peers,
        }
    }

    fn on_fleet_message(&self, payload: &Bytes) {
        let message = match FleetMessage::decode(payload) {
            Ok(message) => message,
            Err(error) => {
                self.broker.dropped_malformed.inc();
                debug!(%error, "malformed fleet message");
                return;
            }
        };
        match message {
            FleetMessage::Alive { relay } if relay != self.relay_id => self.note_relay(&relay),
            FleetMessage::Hello { relay } if relay != self.relay_id => {
                self.note_relay(&relay);
                self.publish_fleet(FleetMessage::Alive {
                    relay: self.relay_id.clone(),
                });
            }
            FleetMessage::Query { relay, room } if relay != self.relay_id => {
                self.note_relay(&relay);
                let Some(room) = RoomName::parse(&room) else {
                    return;
                };
                let shard = self.shard(&room);
                match shard.get(&room) {
                    Some(state) => self.publish_room(state, self.presence_of(state)),
                    // Not in the room: say so, so the asker need not wait for us.
                    None => self.publish(
                        Subject::from(room_subject(room.as_str())),
                        RoomMessage::Presence {
                            relay: self.relay_id.clone(),
                            peers: Vec::new(),
                        }
                        .encode(),
                    ),
                }
            }
            FleetMessage::Gone { relay } if relay != self.relay_id => {
                self.fleet().remove(&relay);
                for shard in &self.shards {
                    let mut rooms = shard
                        .lock()
                        .unwrap_or_else(|poisoned| poisoned.into_inner());
                    for state in rooms.values_mut() {
                        if let Some(members) = state.remote.remove(&relay) {
                            for peer in &members.peers {
                                if !state.is_present(peer) {
                                    state.deliver_all(&self.metrics, &left_frame(peer));
                                }
                            }
                        }
                    }
                }
            }
            _ => {}
        }
    }
}

/// Hands queued publishes to the client, dropping (and counting) them while the broker is away.
async fn publisher(shared: Arc<Shared>, mut queue: mpsc::Receiver<Publish>) {
    let mut batch = Vec::with_capacity(PUBLISH_BATCH);
    loop {
        tokio::select! {
            () = shared.stop.cancelled() => return,
            received = queue.recv_many(&mut batch, PUBLISH_BATCH) => if received == 0 { return },
        }
        for publish in batch.drain(..) {
            let (subject, payload) = match publish {
                Publish::Message { subject, payload } => (subject, payload),
                Publish::Flush(done) => {
                    let _ = shared.client.flush().await;
                    let _ = done.send(());
                    continue;
                }
            };
            // Counted until the client has taken it: while a broker stalls, the publish in hand
            // waits here, and what waits behind it stays within the queue's bytes.
            let length = payload.len();
            let result = if shared.is_connected() {
                Some(shared.client.publish(subject, payload).await)
            } else {
                None
            };
            shared.publish_bytes.fetch_sub(length, Ordering::Relaxed);
            let Some(result) = result else {
                shared.broker.dropped_disconnected.inc();
                continue;
            };
            match result {
                Ok(()) => shared.broker.published.inc(),
                Err(error) => {
                    if error.kind() == async_nats::client::PublishErrorKind::MaxPayloadExceeded {
                        shared.broker.dropped_too_large.inc();
                        warn!("a frame is larger than the broker's max_payload; dropped (raise max_payload in nats-server.conf)");
                    } else {
                        shared.broker.dropped_disconnected.inc();
                        debug!(%error, "publish failed");
                    }
                }
            }
        }
    }
}

async fn room_reader(
    shared: Arc<Shared>,
    room: RoomName,
    id: u64,
    mut subscriber: async_nats::Subscriber,
) {
    while let Some(message) = subscriber.next().await {
        shared.on_room_message(&room, id, &message.payload);
    }
}

async fn fleet_reader(shared: Arc<Shared>, mut subscriber: async_nats::Subscriber) {
    loop {
        tokio::select! {
            () = shared.stop.cancelled() => return,
            message = subscriber.next() => match message {
                Some(message) => shared.on_fleet_message(&message.payload),
                None => return,
            },
        }
    }
}

/// Heartbeats, expiry, and what the broker's connection events call for.
async fn control(shared: Arc<Shared>, mut events: mpsc::Receiver<Event>) {
    let mut heartbeat = tokio::time::interval(HEARTBEAT_INTERVAL);
    heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut sweep = tokio::time::interval(SWEEP_INTERVAL);
    sweep.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut was_connected = shared.is_connected();
    loop {
        tokio::select! {
            () = shared.stop.cancelled() => return,
            _ = heartbeat.tick() => shared.announce(false),
            _ = sweep.tick() => shared.sweep(Instant::now()),
            event = events.recv() => match event {
                None => return,
                Some(Event::Connected) => {
                    shared.broker.set_connected(true);
                    if !was_connected {
                        was_connected = true;
                        shared.broker.reconnects.inc();
                        info!(
                            dropped = shared.broker.dropped_disconnected.get(),
                            "broker connection back; resubscribed, republishing presence"
                        );
                        shared.publish_fleet(FleetMessage::Hello { relay: shared.relay_id.clone() });
                        shared.announce(true);
                    }
                }
                Some(Event::Disconnected) => {
                    shared.broker.set_connected(false);
                    if was_connected {
                        was_connected = false;
                        shared.broker.disconnects.inc();
                        warn!("broker connection lost; rooms are local to this relay until it returns");
                    }
                }
                Some(Event::SlowConsumer(_)) => {
                    shared.broker.dropped_slow_consumer.inc();
                }
                Some(other) => debug!(event = %other, "broker event"),
            },
        }
    }
}

impl RoomHub for NatsHub {
    fn join<'a>(
        &'a self,
        room: &'a RoomName,
        peer: &'a PeerId,
        ice_servers: Vec<IceServer>,
        outbox: Outbox,
    ) -> HubFuture<'a, Result<(), JoinError>> {
        Box::pin(self.shared.join(room, peer, ice_servers, outbox))
    }

    fn leave(&self, room: &RoomName, peer: &PeerId, outbox: &Outbox) {
        self.shared.leave(room, peer, outbox);
    }

    fn broadcast(&self, room: &RoomName, from: &PeerId, frame: Utf8Bytes) {
        self.shared.broadcast(room, from, frame);
    }

    fn send_to(
        &self,
        room: &RoomName,
        from: &PeerId,
        to: &PeerId,
        frame: Utf8Bytes,
    ) -> Result<(), Undelivered> {
        self.shared.send_to(room, from, to, frame)
    }

    fn room_count(&self) -> usize {
        self.shared
            .shards
            .iter()
            .map(|shard| {
                shard
                    .lock()
                    .map(|rooms| rooms.values().filter(|room| !room.local.is_empty()).count())
                    .unwrap_or(0)
            })
            .sum()
    }

    fn health(&self) -> HubHealth {
        if self.shared.is_connected() {
            HubHealth::Ok
        } else {
            HubHealth::Degraded("the NATS broker is unreachable; rooms do not span relays")
        }
    }

    fn render_metrics(&self, out: &mut String) {
        self.shared.broker.render(out);
        use std::fmt::Write;
        let _ = writeln!(
            out,
            "# HELP relay_broker_queued_bytes Bytes of publishes waiting for the broker.\n\
             # TYPE relay_broker_queued_bytes gauge\nrelay_broker_queued_bytes {}",
            self.shared.publish_bytes.load(Ordering::Relaxed)
        );
    }

    fn shutdown(&self) -> HubFuture<'_, ()> {
        Box::pin(async move {
            let shared = &self.shared;
            shared.publish_fleet(FleetMessage::Gone {
                relay: shared.relay_id.clone(),
            });
            // Let the publisher hand over what is queued (the leaves and the goodbye), then make
            // sure the broker has it.
            let (done, flushed) = oneshot::channel();
            let drained = async {
                if shared.publishes.send(Publish::Flush(done)).await.is_ok() {
                    let _ = flushed.await;
                }
            };
            if shared.is_connected() {
                let _ = tokio::time::timeout(SHUTDOWN_FLUSH_TIMEOUT, drained).await;
            }
            shared.stop.cancel();
        })
    }
}
