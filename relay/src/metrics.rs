//! Counters the relay keeps and their Prometheus text rendering (`GET /metrics`).
//!
//! Plain atomics, no registry: a counter costs one relaxed add on the hot path.

use crate::stun::StunOutcome;
use std::fmt::Write;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

#[derive(Default, Debug)]
pub struct Counter(AtomicU64);

impl Counter {
    pub fn inc(&self) {
        self.add(1);
    }
    pub fn add(&self, amount: u64) {
        self.0.fetch_add(amount, Ordering::Relaxed);
    }
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// Why a peer's connection ended. Each is a `reason` label of `relay_disconnects_total`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DisconnectReason {
    /// The peer closed the WebSocket or the TCP connection.
    ClientClosed,
    /// The connection dropped without a close frame (a crashed tab, a network failure).
    ConnectionLost,
    /// The peer broke the WebSocket protocol (unmasked frame, invalid UTF-8, ...).
    ProtocolError,
    /// Writing to the peer failed.
    WriteError,
    /// The peer sent a message over the size limit (close code 1009).
    FrameTooLarge,
    /// The peer sent too many malformed frames.
    TooManyErrors,
    /// The peer kept sending above its rate limit.
    RateFlood,
    /// The peer's outgoing queue overflowed.
    SlowConsumer,
    /// Neither a pong nor a message came from the peer for the idle timeout.
    IdleTimeout,
    /// A message took longer than the message timeout to arrive.
    MessageTimeout,
    /// The relay is shutting down (close code 1001).
    Shutdown,
    /// A newer connection presented the same resume token and took the peer id (close 1008).
    Replaced,
}

impl DisconnectReason {
    pub const ALL: [DisconnectReason; 12] = [
        DisconnectReason::ClientClosed,
        DisconnectReason::ConnectionLost,
        DisconnectReason::ProtocolError,
        DisconnectReason::WriteError,
        DisconnectReason::FrameTooLarge,
        DisconnectReason::TooManyErrors,
        DisconnectReason::RateFlood,
        DisconnectReason::SlowConsumer,
        DisconnectReason::IdleTimeout,
        DisconnectReason::MessageTimeout,
        DisconnectReason::Shutdown,
        DisconnectReason::Replaced,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            DisconnectReason::ClientClosed => "client_closed",
            DisconnectReason::ConnectionLost => "connection_lost",
            DisconnectReason::ProtocolError => "protocol_error",
            DisconnectReason::WriteError => "write_error",
            DisconnectReason::FrameTooLarge => "frame_too_large",
            DisconnectReason::TooManyErrors => "too_many_errors",
            DisconnectReason::RateFlood => "rate_flood",
            DisconnectReason::SlowConsumer => "slow_consumer",
            DisconnectReason::IdleTimeout => "idle_timeout",
            DisconnectReason::MessageTimeout => "message_timeout",
            DisconnectReason::Shutdown => "shutdown",
            DisconnectReason::Replaced => "replaced",
        }
    }
}

/// Why a socket or a WebSocket request was turned away before its peer joined a room.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rejection {
    /// Every one of `--max-connections` is taken.
    ServerFull,
    /// The client's address holds `--max-connections-per-address` sockets.
    AddressFull,
    RoomFull,
    /// The room's or the client's join bucket is empty.
    JoinRateLimited,
    InvalidRoom,
    OriginNotAllowed,
    /// A plain HTTP request on the WebSocket path.
    NotWebSocket,
    /// An upgrade request that breaks RFC 6455 (not GET, bad key or version).
    BadHandshake,
    /// A `resume` query parameter that is not 64 lowercase hex digits.
    BadResumeToken,
}

impl Rejection {
    pub const ALL: [Rejection; 9] = [
        Rejection::ServerFull,
        Rejection::AddressFull,
        Rejection::RoomFull,
        Rejection::JoinRateLimited,
        Rejection::InvalidRoom,
        Rejection::OriginNotAllowed,
        Rejection::NotWebSocket,
        Rejection::BadHandshake,
        Rejection::BadResumeToken,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Rejection::ServerFull => "server_full",
            Rejection::AddressFull => "address_full",
            Rejection::RoomFull => "room_full",
            Rejection::JoinRateLimited => "join_rate_limited",
            Rejection::InvalidRoom => "invalid_room",
            Rejection::OriginNotAllowed => "origin_not_allowed",
            Rejection::NotWebSocket => "not_websocket",
            Rejection::BadHandshake => "bad_handshake",
            Rejection::BadResumeToken => "bad_resume_token",
        }
    }
}

/// The memory budgets in use, for rendering.
#[derive(Clone, Copy, Debug, Default)]
pub struct MemoryGauges {
    pub receiving_bytes: usize,
    pub queued_bytes: usize,
}

#[derive(Default, Debug)]
pub struct Metrics {
    pub connections_open: AtomicI64,
    pub connections_total: Counter,
    pub messages_in: Counter,
    pub bytes_in: Counter,
    pub messages_out: Counter,
    pub bytes_out: Counter,
    /// `signal` frames forwarded (also counted in `messages_in`), and their bytes as received.
    pub signal_frames: Counter,
    pub signal_bytes: Counter,
    pub dropped_rate_limited: Counter,
    pub dropped_malformed: Counter,
    pub dropped_unknown_peer: Counter,
    /// Deliveries that overflowed a receiver's queue (each disconnects that receiver).
    pub slow_consumer_overflows: Counter,
    /// Deliveries to a peer already on its way out.
    pub dropped_to_closing_peer: Counter,
    /// Frames refused because the queued-bytes budget was spent.
    pub dropped_relay_busy: Counter,
    /// Frames for one peer refused because frames for it alone filled its share of its queue.
    pub dropped_receiver_busy: Counter,
    disconnects: [Counter; DisconnectReason::ALL.len()],
    rejections: [Counter; Rejection::ALL.len()],
    stun: [Counter; StunOutcome::ALL.len()],
}

impl Metrics {
    pub fn disconnect(&self, reason: DisconnectReason) {
        self.disconnects[reason as usize].inc();
    }
    pub fn disconnects(&self, reason: DisconnectReason) -> u64 {
        self.disconnects[reason as usize].get()
    }
    pub fn reject(&self, reason: Rejection) {
        self.rejections[reason as usize].inc();
    }
    pub fn stun(&self, outcome: StunOutcome) {
        self.stun[outcome as usize].inc();
    }

    /// The Prometheus text exposition of every counter; `rooms` comes from the hub, `memory`
    /// from the budgets.
    pub fn render(&self, rooms: usize, memory: MemoryGauges) -> String {
        let mut out = String::with_capacity(4096);
        let mut family = |name: &str, kind: &str, help: &str, samples: &[(String, u64)]| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
            for (labels, value) in samples {
                let _ = writeln!(out, "{name}{labels} {value}");
            }
        };
        // A family's one sample, unlabelled.
        let one = |value: u64| [(String::new(), value)];
        let open = self.connections_open.load(Ordering::Relaxed).max(0) as u64;
        family(
            "relay_connections",
            "gauge",
            "WebSocket connections open now.",
            &one(open),
        );
        family(
            "relay_rooms",
            "gauge",
            "Rooms with at least one peer.",
            &one(rooms as u64),
        );
        family(
            "relay_receiving_bytes",
            "gauge",
            "Bytes held by messages being received, all connections (the incoming budget in use).",
            &one(memory.receiving_bytes as u64),
        );
        family(
            "relay_queued_bytes",
            "gauge",
            "Bytes of forwarded frames waiting in queues, each frame counted once.",
            &one(memory.queued_bytes as u64),
        );
        family(
            "relay_connections_total",
            "counter",
            "WebSocket connections accepted into a room.",
            &one(self.connections_total.get()),
        );
        family(
            "relay_messages_in_total",
            "counter",
            "Frames received from peers.",
            &one(self.messages_in.get()),
        );
        family(
            "relay_bytes_in_total",
            "counter",
            "Payload bytes of frames received from peers.",
            &one(self.bytes_in.get()),
        );
        family(
            "relay_messages_out_total",
            "counter",
            "Frames written to peers.",
            &one(self.messages_out.get()),
        );
        family(
            "relay_bytes_out_total",
            "counter",
            "Payload bytes of frames written to peers.",
            &one(self.bytes_out.get()),
        );
        family(
            "relay_signal_frames_total",
            "counter",
            "Signal frames (WebRTC signaling between tabs) forwarded; part of relay_messages_in_total.",
            &one(self.signal_frames.get()),
        );
        family(
            "relay_signal_bytes_total",
            "counter",
            "Bytes of the signal frames forwarded, as received; part of relay_bytes_in_total.",
            &one(self.signal_bytes.get()),
        );
        family(
            "relay_dropped_total",
            "counter",
            "Frames the relay did not forward, by reason.",
            &by_label(
                "reason",
                [
                    ("rate_limited", self.dropped_rate_limited.get()),
                    ("malformed", self.dropped_malformed.get()),
                    ("unknown_peer", self.dropped_unknown_peer.get()),
                    ("slow_consumer", self.slow_consumer_overflows.get()),
                    ("peer_closing", self.dropped_to_closing_peer.get()),
                    ("relay_busy", self.dropped_relay_busy.get()),
                    ("receiver_busy", self.dropped_receiver_busy.get()),
                ],
            ),
        );
        family(
            "relay_disconnects_total",
            "counter",
            "Peer connections that ended, by reason.",
            &by_label(
                "reason",
                DisconnectReason::ALL
                    .iter()
                    .map(|reason| (reason.as_str(), self.disconnects(*reason))),
            ),
        );
        family(
            "relay_stun_requests_total",
            "counter",
            "Datagrams on the relay's STUN port, by what became of them.",
            &by_label(
                "outcome",
                StunOutcome::ALL
                    .iter()
                    .map(|outcome| (outcome.as_str(), self.stun[*outcome as usize].get())),
            ),
        );
        family(
            "relay_rejected_total",
            "counter",
            "Sockets and WebSocket requests turned away before joining a room, by reason.",
            &by_label(
                "reason",
                Rejection::ALL
                    .iter()
                    .map(|reason| (reason.as_str(), self.rejections[*reason as usize].get())),
            ),
        );
        out
    }
}

/// The samples of a family labelled by `label`: `{label="value"}` for each pair.
fn by_label<'a>(
    label: &str,
    values: impl IntoIterator<Item = (&'a str, u64)>,
) -> Vec<(String, u64)> {
    values
        .into_iter()
        .map(|(value, count)| (format!("{{{label}=\"{value}\"}}"), count))
        .collect()
}
