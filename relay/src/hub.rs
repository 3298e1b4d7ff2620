//! Room fan-out, behind one seam.
//!
//! [`RoomHub`] is everything a connection may do to a room: join, leave, broadcast, send to one.
//! [`LocalHub`] implements it inside this process. [`crate::nats_hub::NatsHub`] implements it
//! across relay processes through a NATS broker, delivering what the broker hands back into the
//! same [`Outbox`]es; nothing outside these modules knows how delivery happens.
//!
//! Only `join` may wait (a broker-backed hub confirms a join once the room's broker subscription
//! is active, so nothing sent to the joiner right after its `welcome` is lost). Every other
//! method is synchronous and must not wait on a peer: delivery is a non-blocking push into the
//! receiver's bounded [`Outbox`]. A broker-backed hub keeps that contract by handing its
//! publishes to a background task through a bounded queue and by keeping a local view of the
//! room's membership from the broker's presence messages.
//!
//! Ordering: a hub delivers the frames of one sender to each receiver in the order they were
//! given. A joiner's `welcome` is queued before anything else reaches it, and the `peer_joined`
//! others see is queued before any message from the joiner.

use crate::metrics::Metrics;
use crate::outbox::{Outbox, Push};
use shared::protocol::{IceServer, PeerId, RelayFrame};
use std::collections::hash_map::{DefaultHasher, Entry};
use std::collections::HashMap;
use std::future::Future;
use std::hash::{Hash, Hasher};
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use thiserror::Error;
use tokio_tungstenite::tungstenite::Utf8Bytes;

/// A room name that passed [`shared::protocol::relay::valid_room_name`]. Shared by every member.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct RoomName(Arc<str>);

impl RoomName {
    pub fn parse(name: &str) -> Option<RoomName> {
        shared::protocol::relay::valid_room_name(name).then(|| RoomName(Arc::from(name)))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for RoomName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Clone, Copy, Debug, Error, PartialEq, Eq)]
pub enum JoinError {
    #[error("the room has as many peers as allowed")]
    RoomFull,
}

/// Why a frame for one peer was not delivered.
#[derive(Clone, Copy, Debug, Error, PartialEq, Eq)]
pub enum Undelivered {
    #[error("no such peer in the room")]
    UnknownPeer,
    /// Frames for that peer alone fill its share of its queue ([`Push::Refused`]).
    #[error("the peer has as much waiting for it alone as it takes")]
    ReceiverBusy,
}

/// What [`RoomHub::join`] and [`RoomHub::shutdown`] return: a boxed future, so the trait stays
/// usable as `dyn RoomHub`.
pub type HubFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Whether a hub delivers everything it should, for `/healthz`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HubHealth {
    Ok,
    /// The relay serves, but some delivery is not happening (the reason is for operators).
    Degraded(&'static str),
}

/// Where a room's frames go. See the module documentation for the contract.
pub trait RoomHub: Send + Sync + 'static {
    /// Adds `peer` to `room`. On success the peer's `welcome` (with the peers already present and
    /// `ice_servers`, which the connection chose for it) is queued in `outbox`, and every other
    /// member has been sent `peer_joined`. If a connection with the same id (the same resume
    /// token) is already a member, it is replaced: its outbox is told so ([`Outbox::replace`]),
    /// the others hear `peer_left` then `peer_joined`, and the newcomer takes its place (a
    /// replacement never finds the room full).
    fn join<'a>(
        &'a self,
        room: &'a RoomName,
        peer: &'a PeerId,
        ice_servers: Vec<IceServer>,
        outbox: Outbox,
    ) -> HubFuture<'a, Result<(), JoinError>>;

    /// Removes `peer` from `room` and tells the others with `peer_left`, if its entry is still
    /// `outbox`'s (a replaced connection leaves nothing: its id belongs to the newer one).
    /// Idempotent.
    fn leave(&self, room: &RoomName, peer: &PeerId, outbox: &Outbox);

    /// Delivers `frame` (already a complete relay frame) to every member of `room` except `from`.
    fn broadcast(&self, room: &RoomName, from: &PeerId, frame: Utf8Bytes);

    /// Delivers `frame` to `to` if it is a member of `room`.
    fn send_to(
        &self,
        room: &RoomName,
        from: &PeerId,
        to: &PeerId,
        frame: Utf8Bytes,
    ) -> Result<(), Undelivered>;

    /// Rooms with at least one member, for metrics.
    fn room_count(&self) -> usize;

    /// For `/healthz`.
    fn health(&self) -> HubHealth {
        HubHealth::Ok
    }

    /// Appends the hub's own metric families (Prometheus text) to `out`.
    fn render_metrics(&self, _out: &mut String) {}

    /// Called once every connection has left, before the relay returns from `run`.
    fn shutdown(&self) -> HubFuture<'_, ()> {
        Box::pin(std::future::ready(()))
    }
}

/// Room map shards. Rooms in different shards never contend for a lock; 16 is plenty for the
/// handful of cores a relay runs on.
const ROOM_SHARDS: usize = 16;

type Room = HashMap<PeerId, Outbox>;

/// The in-process hub: rooms live in this process's memory.
pub struct LocalHub {
    shards: [Mutex<HashMap<RoomName, Room>>; ROOM_SHARDS],
    max_peers_per_room: usize,
    metrics: Arc<Metrics>,
}

impl LocalHub {
    pub fn new(max_peers_per_room: usize, metrics: Arc<Metrics>) -> LocalHub {
        LocalHub {
            shards: std::array::from_fn(|_| Mutex::new(HashMap::new())),
            max_peers_per_room,
            metrics,
        }
    }

    fn shard(&self, room: &RoomName) -> MutexGuard<'_, HashMap<RoomName, Room>> {
        let mut hasher = DefaultHasher::new();
        room.hash(&mut hasher);
        let index = (hasher.finish() % ROOM_SHARDS as u64) as usize;
        // Room maps stay consistent even if a holder panicked: every change is one map operation.
        self.shards[index]
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn deliver(&self, outbox: &Outbox, frame: Utf8Bytes) {
        match outbox.push(frame) {
            Push::Queued => {}
            Push::Overflowed => self.metrics.slow_consumer_overflows.inc(),
            Push::Closed | Push::Refused => self.metrics.dropped_to_closing_peer.inc(),
        }
    }
}

impl LocalHub {
    fn join_now(
        &self,
        room: &RoomName,
        peer: &PeerId,
        ice_servers: Vec<IceServer>,
        outbox: Outbox,
    ) -> Result<(), JoinError> {
        let mut shard = self.shard(room);
        let members = shard.entry(room.clone()).or_default();
        if let Some(old) = members.remove(peer) {
            old.replace();
            let left = Utf8Bytes::from(
                RelayFrame::PeerLeft {
                    peer_id: peer.clone(),
                }
                .to_json(),
            );
            for other in members.values() {
                self.deliver(other, left.clone());
            }
        }
        if members.len() >= self.max_peers_per_room {
            if members.is_empty() {
                shard.remove(room);
            }
            return Err(JoinError::RoomFull);
        }
        let mut peers: Vec<PeerId> = members.keys().cloned().collect();
        peers.sort();
        let welcome = RelayFrame::Welcome {
            peer_id: peer.clone(),
            room: room.as_str().to_owned(),
            peers,
            ice_servers,
        };
        self.deliver(&outbox, Utf8Bytes::from(welcome.to_json()));
        let joined = Utf8Bytes::from(
            RelayFrame::PeerJoined {
                peer_id: peer.clone(),
            }
            .to_json(),
        );
        for other in members.values() {
            self.deliver(other, joined.clone());
        }
        members.insert(peer.clone(), outbox);
        Ok(())
    }
}

/// Delivers a frame for `outbox`'s peer alone; refused when such frames fill its share.
pub(crate) fn deliver_directed(
    metrics: &Metrics,
    outbox: &Outbox,
    frame: Utf8Bytes,
) -> Result<(), Undelivered> {
    match outbox.push_directed(frame) {
        Push::Queued => Ok(()),
        Push::Overflowed => {
            metrics.slow_consumer_overflows.inc();
            Ok(())
        }
        Push::Closed => {
            metrics.dropped_to_closing_peer.inc();
            Ok(())
        }
        Push::Refused => Err(Undelivered::ReceiverBusy),
    }
}

impl RoomHub for LocalHub {
    fn join<'a>(
        &'a self,
        room: &'a RoomName,
        peer: &'a PeerId,
        ice_servers: Vec<IceServer>,
        outbox: Outbox,
    ) -> HubFuture<'a, Result<(), JoinError>> {
        Box::pin(std::future::ready(self.join_now(
            room,
            peer,
            ice_servers,
            outbox,
        )))
    }

    fn leave(&self, room: &RoomName, peer: &PeerId, outbox: &Outbox) {
        let mut shard = self.shard(room);
        let Entry::Occupied(mut entry) = shard.entry(room.clone()) else {
            return;
        };
        if !entry
            .get()
            .get(peer)
            .is_some_and(|member| member.same(outbox))
        {
            return;
        }
        entry.get_mut().remove(peer);
        if entry.get().is_empty() {
            entry.remove();
            return;
        }
        let left = Utf8Bytes::from(
            RelayFrame::PeerLeft {
                peer_id: peer.clone(),
            }
            .to_json(),
        );
        for other in entry.get().values() {
            self.deliver(other, left.clone());
        }
    }

    fn broadcast(&self, room: &RoomName, from: &PeerId, frame: Utf8Bytes) {
        let shard = self.shard(room);
        let Some(members) = shard.get(room) else {
            return;
        };
        for (id, outbox) in members {
            if id != from {
                self.deliver(outbox, frame.clone());
            }
        }
    }

    fn send_to(
        &self,
        room: &RoomName,
        _from: &PeerId,
        to: &PeerId,
        frame: Utf8Bytes,
    ) -> Result<(), Undelivered> {
        let shard = self.shard(room);
        let outbox = shard
            .get(room)
            .and_then(|members| members.get(to))
            .ok_or(Undelivered::UnknownPeer)?;
        deliver_directed(&self.metrics, outbox, frame)
    }

    fn room_count(&self) -> usize {
        self.shards
            .iter()
            .map(|shard| shard.lock().map(|rooms| rooms.len()).unwrap_or(0))
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outbox::OutboxLimits;

    fn outbox() -> Outbox {
        Outbox::new(OutboxLimits {
            max_messages: 100,
            max_bytes: 100_000,
        })
    }

    fn frames(outbox: &Outbox) -> Vec<String> {
        outbox
            .drain_now()
            .iter()
            .map(|frame| frame.as_str().to_owned())
            .collect()
    }

    fn peer(byte: u8) -> PeerId {
        PeerId::from_bytes([byte; 16])
    }

    #[test]
    fn join_welcomes_and_announces_then_leave_announces() {
        let hub = LocalHub::new(2, Arc::new(Metrics::default()));
        let room = RoomName::parse("r").unwrap();
        let (a, b) = (outbox(), outbox());
        hub.join_now(&room, &peer(1), Vec::new(), a.clone())
            .unwrap();
        hub.join_now(&room, &peer(2), Vec::new(), b.clone())
            .unwrap();
        assert_eq!(
            hub.join_now(&room, &peer(3), Vec::new(), outbox()),
            Err(JoinError::RoomFull)
        );
        let a_frames = frames(&a);
        assert!(a_frames[0].contains(r#""type":"welcome""#));
        assert!(a_frames[1].contains(r#""type":"peer_joined""#));
        let b_frames = frames(&b);
        assert!(b_frames[0].contains(peer(1).as_str()), "{b_frames:?}");
        hub.leave(&room, &peer(2), &b);
        assert!(frames(&a)[0].contains(r#""type":"peer_left""#));
        hub.leave(&room, &peer(1), &a);
        assert_eq!(hub.room_count(), 0);
    }

    #[test]
    fn a_second_connection_with_one_id_replaces_the_first() {
        let hub = LocalHub::new(2, Arc::new(Metrics::default()));
        let room = RoomName::parse("r").unwrap();
        let (a, old, new) = (outbox(), outbox(), outbox());
        hub.join_now(&room, &peer(1), Vec::new(), a.clone())
            .unwrap();
        hub.join_now(&room, &peer(2), Vec::new(), old.clone())
            .unwrap();
        frames(&a);
        // The room is full, but a replacement takes the old seat.
        hub.join_now(&room, &peer(2), Vec::new(), new.clone())
            .unwrap();
        assert!(old.is_replaced() && !new.is_replaced());
        let seen = frames(&a);
        assert_eq!(seen.len(), 2, "{seen:?}");
        assert!(seen[0].contains(r#""type":"peer_left""#) && seen[0].contains(peer(2).as_str()));
        assert!(seen[1].contains(r#""type":"peer_joined""#) && seen[1].contains(peer(2).as_str()));
        // The old connection's leave takes nothing from the new one.
        hub.leave(&room, &peer(2), &old);
        assert!(frames(&a).is_empty());
        hub.send_to(&room, &peer(1), &peer(2), Utf8Bytes::from("x"))
            .unwrap();
        assert_eq!(frames(&new).last().map(String::as_str), Some("x"));
    }
}
