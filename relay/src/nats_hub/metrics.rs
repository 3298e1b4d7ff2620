//! The broker-backed hub's counters, rendered after the relay's own on `/metrics`.

use crate::metrics::Counter;
use std::fmt::Write;
use std::sync::atomic::{AtomicBool, Ordering};

#[derive(Default, Debug)]
pub(super) struct BrokerMetrics {
    connected: AtomicBool,
    /// Times the connection came back after being lost.
    pub reconnects: Counter,
    /// Times the connection was lost.
    pub disconnects: Counter,
    /// Messages handed to the broker (frames, joins, leaves, presence, fleet).
    pub published: Counter,
    /// Broadcasts kept on this relay: no other relay holds a member of their room.
    pub kept_local: Counter,
    /// Frames (broadcasts and sends) that arrived from other relays.
    pub received: Counter,
    /// Deliveries into local peers' queues of frames from other relays.
    pub deliveries: Counter,
    pub dropped_disconnected: Counter,
    pub dropped_queue_full: Counter,
    pub dropped_too_large: Counter,
    pub dropped_slow_consumer: Counter,
    pub dropped_malformed: Counter,
    /// Remote peers announced as left because their relay went silent.
    pub presence_expired: Counter,
}

impl BrokerMetrics {
    pub fn set_connected(&self, connected: bool) {
        self.connected.store(connected, Ordering::Relaxed);
    }

    pub fn render(&self, out: &mut String) {
        let mut family = |name: &str, kind: &str, help: &str, samples: &[(&str, u64)]| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
            for (labels, value) in samples {
                let _ = writeln!(out, "{name}{labels} {value}");
            }
        };
        family(
            "relay_broker_connected",
            "gauge",
            "1 while the relay is connected to the NATS broker.",
            &[("", self.connected.load(Ordering::Relaxed) as u64)],
        );
        family(
            "relay_broker_disconnects_total",
            "counter",
            "Times the broker connection was lost.",
            &[("", self.disconnects.get())],
        );
        family(
            "relay_broker_reconnects_total",
            "counter",
            "Times the broker connection came back (subscriptions re-sent, presence republished).",
            &[("", self.reconnects.get())],
        );
        family(
            "relay_broker_published_total",
            "counter",
            "Messages handed to the broker.",
            &[("", self.published.get())],
        );
        family(
            "relay_broker_kept_local_total",
            "counter",
            "Broadcasts not published: no other relay holds a member of their room.",
            &[("", self.kept_local.get())],
        );
        family(
            "relay_broker_received_total",
            "counter",
            "Frames from peers on other relays that arrived through the broker.",
            &[("", self.received.get())],
        );
        family(
            "relay_broker_deliveries_total",
            "counter",
            "Deliveries to this relay's peers of frames that came through the broker.",
            &[("", self.deliveries.get())],
        );
        family(
            "relay_broker_dropped_total",
            "counter",
            "Broker messages lost, by reason.",
            &[
                ("{reason=\"disconnected\"}", self.dropped_disconnected.get()),
                ("{reason=\"queue_full\"}", self.dropped_queue_full.get()),
                ("{reason=\"too_large\"}", self.dropped_too_large.get()),
                (
                    "{reason=\"slow_consumer\"}",
                    self.dropped_slow_consumer.get(),
                ),
                ("{reason=\"malformed\"}", self.dropped_malformed.get()),
            ],
        );
        family(
            "relay_presence_expired_total",
            "counter",
            "Peers on other relays announced as left because their relay went silent.",
            &[("", self.presence_expired.get())],
        );
    }
}
