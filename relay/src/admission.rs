//! Who may come in: the socket cap, the per-address cap and the join limits.
//!
//! Every accepted socket holds a [`SocketSlot`] for its whole life, plain HTTP included: one of
//! `--max-connections`, and one of its address's `--max-connections-per-address` (unless the
//! socket comes from a trusted proxy, whose clients are counted by their forwarded address when
//! they open a WebSocket). A WebSocket takes its socket's slot along when the connection is
//! upgraded. Joins pay into two token buckets, one of the room and one of the client address, so
//! a join flood costs the flooder and never makes a room's honest members answer more joins than
//! their own rate limit allows.

use crate::config::Config;
use crate::metrics::Rejection;
use crate::rate::KeyedBuckets;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

/// Sockets accepted past the cap, each only long enough to be told `server_full` (with a short
/// deadline): a client sees why it was turned away instead of a reset, and a flood of them cannot
/// hold more than this many extra descriptors. Past these the socket is closed at once.
pub const REFUSAL_SLOTS: usize = 64;

/// Locks a join map; a panicked holder left it consistent (every change is one map operation).
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// One address may take at most this fraction of a room's join rate, once its burst is spent,
/// while the room is in demand (see [`ROOM_AT_EASE_FRACTION`]): a flooding address leaves three
/// quarters of the room's joins to everyone else, and a whole class behind one school address
/// still gets in at once (the burst is the room's, 128 by default).
pub const JOIN_SHARE_OF_ROOM: u32 = 4;
/// Past its share, an address may still join while the room's bucket holds more than this
/// fraction of its burst: nobody else is short of joins then. A whole class of 256 behind one
/// school address came back from a relay restart in 27 s at its share alone (5 joins a second);
/// now in about 10 s, and a newcomer from elsewhere still finds half the room's burst waiting
/// while one address floods.
pub const ROOM_AT_EASE_FRACTION: f64 = 0.5;

/// What a client is counted as: its IPv4 address, or the /64 network of its IPv6 address (one
/// household or one host gets a /64, so counting single IPv6 addresses would count nothing).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct AddressKey(IpAddr);

impl AddressKey {
    pub(crate) fn of(address: IpAddr) -> AddressKey {
        match address {
            IpAddr::V4(v4) => AddressKey(IpAddr::V4(v4)),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => AddressKey(IpAddr::V4(v4)),
                None => {
                    let segments = v6.segments();
                    AddressKey(IpAddr::V6(std::net::Ipv6Addr::new(
                        segments[0],
                        segments[1],
                        segments[2],
                        segments[3],
                        0,
                        0,
                        0,
                        0,
                    )))
                }
            },
        }
    }
}

/// A socket's hold on the caps; dropping it gives them back.
pub(crate) struct SocketSlot {
    _global: OwnedSemaphorePermit,
    address: Option<AddressSlot>,
}

impl SocketSlot {
    /// Adds the per-address hold of a proxied client, counted when its WebSocket opens.
    pub(crate) fn set_address(&mut self, slot: AddressSlot) {
        self.address = Some(slot);
    }
}

/// One of an address's connection slots.
pub(crate) struct AddressSlot {
    admission: Arc<Admission>,
    key: AddressKey,
}

impl Drop for AddressSlot {
    fn drop(&mut self) {
        let mut counts = self.admission.counts();
        if let Some(count) = counts.get_mut(&self.key) {
            *count -= 1;
            if *count == 0 {
                counts.remove(&self.key);
            }
        }
    }
}

/// What an accepted socket may do.
pub(crate) enum Admitted {
    /// Within the caps: served.
    Slot(SocketSlot),
    /// Over a cap: served only to say so, within a short deadline.
    Refused(Rejection, OwnedSemaphorePermit),
    /// Over every cap: closed at once.
    Dropped(Rejection),
}

pub(crate) struct Admission {
    connection_slots: Arc<Semaphore>,
    refusal_slots: Arc<Semaphore>,
    max_per_address: usize,
    trusted_proxies: Vec<IpAddr>,
    per_address: Mutex<HashMap<AddressKey, usize>>,
    room_joins: Mutex<KeyedBuckets<Arc<str>>>,
    address_joins: Mutex<KeyedBuckets<AddressKey>>,
    /// One address's share of one room's joins (see [`JOIN_SHARE_OF_ROOM`]).
    room_address_joins: Mutex<KeyedBuckets<(Arc<str>, AddressKey)>>,
}

impl Admission {
    pub(crate) fn new(config: &Config) -> Admission {
        Admission {
            connection_slots: Arc::new(Semaphore::new(config.max_connections)),
            refusal_slots: Arc::new(Semaphore::new(REFUSAL_SLOTS)),
            max_per_address: config.max_connections_per_address,
            trusted_proxies: config.trusted_proxies.clone(),
            per_address: Mutex::new(HashMap::new()),
            room_joins: Mutex::new(KeyedBuckets::new(
                config.join_rate_per_room,
                config.join_burst_per_room,
            )),
            address_joins: Mutex::new(KeyedBuckets::new(
                config.join_rate_per_address,
                config.join_burst_per_address,
            )),
            room_address_joins: Mutex::new(KeyedBuckets::new(
                (config.join_rate_per_room / JOIN_SHARE_OF_ROOM).max(1),
                config.join_burst_per_room,
            )),
        }
    }

    fn counts(&self) -> MutexGuard<'_, HashMap<AddressKey, usize>> {
        // Counts stay consistent even if a holder panicked: every change is one map operation.
        self.per_address
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Whether `address` is one of `--trusted-proxy`. A relay listening on `::` sees an IPv4
    /// peer as `::ffff:a.b.c.d`: both sides are compared in their canonical form, so a proxy at
    /// 127.0.0.1 is trusted whichever socket family the relay listens on.
    pub(crate) fn is_trusted_proxy(&self, address: IpAddr) -> bool {
        let address = address.to_canonical();
        self.trusted_proxies
            .iter()
            .any(|proxy| proxy.to_canonical() == address)
    }

    /// Decides about a socket just accepted from `peer`.
    pub(crate) fn admit(self: &Arc<Self>, peer: IpAddr) -> Admitted {
        let refuse = |rejection| match self.refusal_slots.clone().try_acquire_owned() {
            Ok(permit) => Admitted::Refused(rejection, permit),
            Err(_) => Admitted::Dropped(rejection),
        };
        let Ok(global) = self.connection_slots.clone().try_acquire_owned() else {
            return refuse(Rejection::ServerFull);
        };
        if self.is_trusted_proxy(peer) {
            return Admitted::Slot(SocketSlot {
                _global: global,
                address: None,
            });
        }
        match self.address_slot(peer) {
            Some(address) => Admitted::Slot(SocketSlot {
                _global: global,
                address: Some(address),
            }),
            None => refuse(Rejection::AddressFull),
        }
    }

    /// One of `client`'s per-address slots, if it has one left.
    pub(crate) fn address_slot(self: &Arc<Self>, client: IpAddr) -> Option<AddressSlot> {
        let key = AddressKey::of(client);
        let mut counts = self.counts();
        let count = counts.entry(key).or_insert(0);
        if *count >= self.max_per_address {
            return None;
        }
        *count += 1;
        Some(AddressSlot {
            admission: self.clone(),
            key,
        })
    }

    /// Takes one join from the room's bucket, the client's, and the client's share of the room;
    /// refuses when any is empty (and then takes from none), but for a spent share while the room
    /// is at ease ([`ROOM_AT_EASE_FRACTION`]). The share is what keeps a room open while one
    /// address floods it: the flooder spends its own share and the room's tokens above half its
    /// burst, and the rest stays for everyone else.
    pub(crate) fn allow_join(&self, room: &str, client: IpAddr) -> bool {
        let now = Instant::now();
        let key = AddressKey::of(client);
        let mut rooms = lock(&self.room_joins);
        let mut addresses = lock(&self.address_joins);
        let mut shares = lock(&self.room_address_joins);
        let room_key: Arc<str> = Arc::from(room);
        let share_key = (room_key.clone(), key);
        let within_share = shares.has(&share_key, now);
        let room_at_ease =
            rooms.has_more_than(&room_key, rooms.burst() * ROOM_AT_EASE_FRACTION, now);
        if !rooms.has(&room_key, now)
            || !addresses.has(&key, now)
            || !(within_share || room_at_ease)
        {
            return false;
        }
        rooms.take(room_key, now)
            && addresses.take(key, now)
            && (!within_share || shares.take(share_key, now))
    }
}

// ---- what a socket carries through HTTP to the routes ----

/// The remote address of a request, put into its extensions for the routes.
#[derive(Clone, Copy, Debug)]
pub(crate) struct RemoteAddr(pub(crate) SocketAddr);

/// What a socket holds of the caps, in its requests' extensions, so a WebSocket upgrade can take
/// it along: a connection slot, or (over a cap) one of the few refusal slots.
#[derive(Clone)]
pub(crate) struct Hold(Arc<Mutex<Option<Held>>>);

pub(crate) enum Held {
    Slot(SocketSlot),
    Refusal(Rejection, OwnedSemaphorePermit),
}

impl Hold {
    pub(crate) fn new(held: Held) -> Hold {
        Hold(Arc::new(Mutex::new(Some(held))))
    }
    /// What the socket was refused as, if it holds a refusal rather than a slot (it leaves the
    /// hold in place).
    pub(crate) fn refusal(&self) -> Option<Rejection> {
        match &*self
            .0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
        {
            Some(Held::Refusal(rejection, _)) => Some(*rejection),
            _ => None,
        }
    }
    pub(crate) fn take(&self) -> Option<Held> {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .take()
    }
}

/// The rejection of a socket admitted only to be refused, for the routes.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Refused(pub(crate) Rejection);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_clients_are_counted_by_their_64() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::2".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(AddressKey::of(a), AddressKey::of(b));
        assert_ne!(AddressKey::of(a), AddressKey::of(c));
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().unwrap();
        let plain: IpAddr = "192.0.2.7".parse().unwrap();
        assert_eq!(AddressKey::of(mapped), AddressKey::of(plain));
    }

    #[test]
    fn per_address_slots_are_counted_and_given_back() {
        let config = Config {
            max_connections_per_address: 2,
            trusted_proxies: Vec::new(),
            ..Config::default()
        };
        let admission = Arc::new(Admission::new(&config));
        let client: IpAddr = "192.0.2.1".parse().unwrap();
        let first = admission.admit(client);
        let second = admission.admit(client);
        assert!(matches!(first, Admitted::Slot(_)));
        assert!(matches!(second, Admitted::Slot(_)));
        assert!(matches!(
            admission.admit(client),
            Admitted::Refused(Rejection::AddressFull, _)
        ));
        assert!(matches!(
            admission.admit("192.0.2.2".parse().unwrap()),
            Admitted::Slot(_)
        ));
        drop(first);
        assert!(matches!(admission.admit(client), Admitted::Slot(_)));
    }

    #[test]
    fn joins_pay_into_the_room_and_the_address() {
        let config = Config {
            join_rate_per_room: 1,
            join_burst_per_room: 3,
            join_rate_per_address: 1,
            join_burst_per_address: 2,
            ..Config::default()
        };
        let admission = Admission::new(&config);
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        assert!(admission.allow_join("r", a));
        assert!(admission.allow_join("r", a));
        // a's burst is spent, in any room.
        assert!(!admission.allow_join("r", a));
        assert!(!admission.allow_join("other", a));
        // The room has one join left: b takes it, then the room is closed to b as well.
        assert!(admission.allow_join("r", b));
        assert!(!admission.allow_join("r", b));
        assert!(admission.allow_join("other", b));
    }

    #[test]
    fn one_address_takes_only_its_share_of_a_room() {
        let config = Config {
            join_rate_per_room: 20,
            join_burst_per_room: 8,
            join_rate_per_address: 20,
            join_burst_per_address: 8,
            ..Config::default()
        };
        let admission = Admission::new(&config);
        let flooder: IpAddr = "192.0.2.1".parse().unwrap();
        let joined = (0..100)
            .filter(|_| admission.allow_join("r", flooder))
            .count();
        assert_eq!(joined, 8, "a burst as large as the room's");
        // A second later the room has refilled 20 joins (to its burst of 8); the flooder's share
        // only 5 of them.
        std::thread::sleep(std::time::Duration::from_secs(1));
        let joined = (0..100)
            .filter(|_| admission.allow_join("r", flooder))
            .count();
        assert_eq!(joined, 5, "a quarter of the room's rate");
        let others = (2..=4)
            .filter(|n| admission.allow_join("r", format!("192.0.2.{n}").parse().unwrap()))
            .count();
        assert_eq!(
            others, 3,
            "the rest of the room's joins are everyone else's"
        );
    }
}
