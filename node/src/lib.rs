//! The tabchain native node as a library, so tests and benchmarks drive the same code as the
//! binary. `main.rs` only parses the command line, sets up logging and calls [`program::run`].
//!
//! Map of the crate:
//! - [`runtime`]: the driver task that owns the `shared` [`shared::node::Node`] state machine and
//!   does what its outputs ask; [`runtime::NodeHandle`] is how everything else talks to it.
//! - [`transport`]: the one seam to the network. A [`transport::Link`] turns relay frames into
//!   node calls; another transport (WebRTC) would produce the same `Link`.
//! - [`inbox`]: the bounded queue a link's reader fills without waiting for the node.
//! - [`miner`]: one thread per core calling `shared::mining::mine` on disjoint nonce ranges.
//! - [`sanitize`]: network text (peer names, relay reasons) made safe to print.
//! - [`store`]: the append-only, checksummed, fsynced block log that survives `kill -9`.
//! - [`txstore`]: our own pending transactions, rewritten atomically on every change.
//! - [`keystore`]: the node's key seed in a 0600 file.
//! - [`cli`], [`program`], [`app`], [`menu`], [`report`]: the command line, the program (start,
//!   then menu or subcommand), the subcommands, the interactive menu and what they print.
//!
//! Invariants: all chain logic stays in `shared` (this crate only moves bytes, keeps time, stores
//! and draws); every block the node reports as ours or as imported is on disk first; every queue
//! has a named bound.

pub mod address_book;
pub mod app;
pub mod cli;
pub mod inbox;
pub mod keystore;
pub mod menu;
pub mod miner;
pub mod program;
pub mod report;
pub mod runtime;
pub mod sanitize;
pub mod store;
pub mod transport;
pub mod txstore;

pub use runtime::{NodeHandle, NodeOptions, Snapshot};
