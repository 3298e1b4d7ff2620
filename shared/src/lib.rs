//! The whole consensus of tabchain, the node state machine and the wire protocol.
//!
//! This crate does no I/O: no sockets, clocks, randomness or storage. Time, keys and randomness
//! come in as arguments, so the same code runs natively, in wasm and in deterministic tests.
//! The browser tab (`web/`), the native node (`node/`) and the simulator in `tests/` are three
//! small drivers of the [`node::Node`] state machine defined here.

pub mod block;
pub mod chain;
pub mod encode;
pub mod export;
pub mod hash;
pub mod keys;
pub mod mempool;
pub mod mining;
pub mod node;
pub mod params;
pub mod protocol;
pub mod shares;
pub mod state;
pub mod tx;
pub mod validation;
pub mod view;
pub mod work;

pub use block::{Block, BlockHeader, Coinbase};
pub use chain::{AddOutcome, BlockTree, ChainError};
pub use hash::Hash;
pub use keys::{Address, Keypair, PublicKey};
pub use params::NetworkParams;
pub use tx::Transaction;
pub use validation::ValidationError;
pub use work::{Target, U256};
