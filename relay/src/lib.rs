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
//! - `rate`: the per-peer token buckets (frames and bytes).
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
mod ws;

pub use config::{lan_urls, Cli, Config, ConfigError};

use hub::{LocalHub, RoomHub};
use metrics::Metrics;
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
    let ice_servers = config.welcome_ice_servers();
    let hub: Arc<dyn RoomHub> = match &config.nats_url {
        None => Arc::new(LocalHub::new(
            config.max_peers_per_room,
            ice_servers,
            metrics.clone(),
        )),
        Some(url) => Arc::new(
            nats_hub::NatsHub::connect(
                url,
                config.max_peers_per_room,
                ice_servers,
                metrics.clone(),
            )
            .await?,
        ),
    };
    let relay = Arc::new(Relay {
        admission: Arc::new(admission::Admission::new(&config)),
        budgets: budget::MemoryBudgets::new(config.message_memory_bytes, config.queue_memory_bytes),
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
