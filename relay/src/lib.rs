//! The tabchain relay: browser-tab nodes meet in rooms over WebSocket and the relay forwards
//! their envelopes, and it serves the web app itself.
//!
//! The relay is a library so tests and tools can run it in-process: [`run`] takes a bound
//! listener, a [`Config`] and a shutdown future, and returns once every connection has been told
//! goodbye. `main.rs` only reads the command line, sets up logging and calls it.
//!
//! Map of the crate:
//! - [`config`]: every limit, with the reason for its default.
//! - `server`: the accept loop (TCP to HTTP/1.1), with the socket caps and HTTP deadlines.
//! - `admission`: the socket cap, the per-address cap and the join limits.
//! - `budget`: memory budgets over all connections (messages being received, queued frames).
//! - `routes`: HTTP paths; checks and answers the WebSocket handshake.
//! - `connection`: one peer from upgrade to close: reading, rules, writing, goodbye.
//! - `ws`: the WebSocket framing of a peer, with fixed-size buffers.
//! - [`hub`]: room fan-out behind the [`hub::RoomHub`] trait; [`hub::LocalHub`] keeps rooms in
//!   this process.
//! - [`nats_hub`]: the hub whose rooms span relay processes through NATS (`--nats-url`).
//! - [`outbox`]: a peer's bounded outgoing queue.
//! - `rate`: the token buckets: per peer (frames and bytes), and keyed ones for joins and STUN.
//! - [`stun`]: the relay's own STUN server (UDP), named first in every `welcome`.
//! - [`metrics`]: counters and their Prometheus rendering.
//!
//! Invariants: the relay never parses a chain message (only the envelope around it); every queue
//! and map is bounded by a [`Config`] field or a named constant.

mod admission;
pub mod app;
mod budget;
pub mod config;
mod connection;
pub mod hub;
pub mod metrics;
pub mod nats_hub;
pub mod outbox;
mod rate;
mod routes;
mod server;
pub mod stun;
mod ws;

pub use admission::{JOIN_SHARE_OF_ROOM, REFUSAL_SLOTS};
pub use budget::ADDRESS_SHARE_OF_BUDGET;
pub use config::{lan_urls, Cli, Config, ConfigError};
pub use rate::FLOOD_WINDOW;

use hub::{LocalHub, RoomHub};
use metrics::Metrics;
use shared::protocol::IceServer;
use std::future::Future;
use std::sync::Arc;
use thiserror::Error;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Why the relay could not run.
#[derive(Debug, Error)]
pub enum RelayError {
    #[error("invalid configuration: {0}")]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Broker(#[from] nats_hub::BrokerError),
}

/// What every connection shares.
pub(crate) struct Relay {
    pub(crate) config: Config,
    pub(crate) hub: Arc<dyn RoomHub>,
    pub(crate) metrics: Arc<Metrics>,
    /// The socket caps and join limits.
    pub(crate) admission: Arc<admission::Admission>,
    /// The relay-wide memory budgets.
    pub(crate) budgets: budget::MemoryBudgets,
    /// The STUN and TURN servers of `--ice-server`, as every `welcome` lists them.
    pub(crate) ice_servers: Vec<IceServer>,
    /// The UDP port the relay's own STUN server answers on, when it runs.
    pub(crate) stun_port: Option<u16>,
    /// Cancelled when the relay shuts down; every connection watches it.
    pub(crate) shutdown: CancellationToken,
    /// Every connection task, so shutdown can wait for their goodbyes.
    pub(crate) tasks: TaskTracker,
}

/// Serves the relay on `listener` until `shutdown` completes, then closes every WebSocket with
/// code 1001 and returns once they are gone (within a few seconds).
pub async fn run(
    listener: TcpListener,
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), RelayError> {
    config.validate()?;
    let metrics = Arc::new(Metrics::default());
    let hub: Arc<dyn RoomHub> = match &config.nats_url {
        None => Arc::new(LocalHub::new(config.max_peers_per_room, metrics.clone())),
        Some(url) => Arc::new(
            nats_hub::NatsHub::connect(
                url,
                config.max_peers_per_room,
                config.max_frame_bytes + shared::protocol::ENVELOPE_ALLOWANCE_BYTES,
                metrics.clone(),
            )
            .await?,
        ),
    };
    let stun_socket = bind_stun(&config, &listener).await;
    let relay = Arc::new(Relay {
        ice_servers: config.welcome_ice_servers(),
        stun_port: stun_socket
            .as_ref()
            .and_then(|socket| socket.local_addr().ok())
            .map(|address| address.port()),
        admission: Arc::new(admission::Admission::new(&config)),
        budgets: budget::MemoryBudgets::new(
            config.message_memory_bytes,
            config.queue_memory_bytes,
            config.max_frame_bytes + shared::protocol::ENVELOPE_ALLOWANCE_BYTES,
        ),
        config,
        hub,
        metrics,
        shutdown: CancellationToken::new(),
        tasks: TaskTracker::new(),
    });
    let app = app::AppSource::choose(relay.config.static_dir.as_ref());
    if app.has_app() {
        tracing::info!(app = %app, "serving the web app");
    } else {
        tracing::warn!(
            static_dir = %app,
            "no index.html in the static directory; serving a page that explains how to build the web app"
        );
    }

    if let Some(socket) = stun_socket {
        relay.tasks.spawn(stun::serve(
            socket,
            relay.metrics.clone(),
            relay.shutdown.clone(),
        ));
    }

    let token = relay.shutdown.clone();
    let signal = async move {
        shutdown.await;
        tracing::info!("shutting down: closing every connection");
        token.cancel();
    };
    tokio::join!(server::serve(listener, relay.clone()), signal);
    relay.tasks.close();
    relay.tasks.wait().await;
    relay.hub.shutdown().await;
    tracing::info!("relay stopped");
    Ok(())
}

/// Descriptors the relay may need at its caps: one per socket, two per socket while it serves a
/// file from `--static-dir` (the socket and the file; the app inside the binary needs no file),
/// the sockets admitted only to be refused, and a few for the listener, the STUN socket, the
/// broker and the logs.
pub fn descriptors_needed(config: &Config) -> usize {
    (config.max_connections + admission::REFUSAL_SLOTS) * descriptors_per_socket(config)
        + SPARE_DESCRIPTORS
}

/// The most sockets (`--max-connections`) `limit` descriptors serve; at least 1.
pub fn connections_that_fit(config: &Config, limit: usize) -> usize {
    (limit.saturating_sub(SPARE_DESCRIPTORS) / descriptors_per_socket(config))
        .saturating_sub(admission::REFUSAL_SLOTS)
        .max(1)
}

/// Descriptors for the listener, the STUN socket, the broker, logs and a margin.
const SPARE_DESCRIPTORS: usize = 64;

fn descriptors_per_socket(config: &Config) -> usize {
    match app::AppSource::choose(config.static_dir.as_ref()) {
        app::AppSource::Dir(_) => 2,
        app::AppSource::Embedded => 1,
    }
}

/// The relay's STUN socket: UDP on the listener's address, at `--stun-port` or the listener's
/// port number. A port that cannot be had (taken by another program) is not fatal: the relay
/// serves without STUN, says so, and names no STUN server of its own.
async fn bind_stun(config: &Config, listener: &TcpListener) -> Option<tokio::net::UdpSocket> {
    if config.no_stun {
        return None;
    }
    let listening = listener.local_addr().ok()?;
    let address =
        std::net::SocketAddr::new(listening.ip(), config.stun_port.unwrap_or(listening.port()));
    match tokio::net::UdpSocket::bind(address).await {
        Ok(socket) => {
            tracing::info!(%address, "answering STUN (direct links between homes)");
            Some(socket)
        }
        Err(error) => {
            tracing::warn!(
                %address, %error,
                "could not listen for STUN on UDP; tabs behind home routers will not link directly \
                 (free the port or choose one with --stun-port)"
            );
            None
        }
    }
}

impl Relay {
    /// The `ice_servers` of the `welcome` to a tab that reached the relay as `host` (its `Host`
    /// header): the relay's own STUN server first, addressed as the tab addressed the relay, then
    /// the configured ones. A `Host` that is not a plain host name or address gets no STUN entry
    /// (a browser refuses a whole configuration over one malformed URL).
    pub(crate) fn welcome_ice_servers(&self, host: Option<&str>) -> Vec<IceServer> {
        let own = self
            .stun_port
            .zip(host.and_then(stun_host))
            .map(|(port, host)| IceServer {
                urls: vec![format!("stun:{host}:{port}")],
                username: None,
                credential: None,
            });
        own.into_iter()
            .chain(self.ice_servers.iter().cloned())
            .collect()
    }
}

/// The host part of a `Host` header, if it is a DNS name or an IP address (IPv6 in brackets).
fn stun_host(header: &str) -> Option<&str> {
    let host = match header.strip_prefix('[') {
        Some(rest) => {
            let end = rest.find(']')?;
            let inner = &rest[..end];
            inner.parse::<std::net::Ipv6Addr>().ok()?;
            let after = &rest[end + 1..];
            if !(after.is_empty() || after.starts_with(':')) {
                return None;
            }
            &header[..end + 2]
        }
        None => header.split(':').next()?,
    };
    let plain = host.starts_with('[')
        || (!host.is_empty()
            && host.len() <= 253
            && host
                .bytes()
                .all(|byte| byte.is_ascii_alphanumeric() || byte == b'.' || byte == b'-'));
    plain.then_some(host)
}

#[cfg(test)]
mod tests {
    use super::stun_host;

    #[test]
    fn the_stun_host_is_the_host_the_tab_used_or_nothing() {
        for (header, host) in [
            ("chain.example.org", Some("chain.example.org")),
            ("chain.example.org:8443", Some("chain.example.org")),
            ("192.0.2.1:3030", Some("192.0.2.1")),
            ("[2001:db8::1]:3030", Some("[2001:db8::1]")),
            ("[::1]", Some("[::1]")),
            ("", None),
            ("evil.example?x=1", None),
            ("a b", None),
            ("[not-v6]:1", None),
            ("[::1]x", None),
            ("host/path", None),
        ] {
            assert_eq!(stun_host(header), host, "{header:?}");
        }
    }
}
