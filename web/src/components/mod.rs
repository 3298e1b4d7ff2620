//! The views. Each reads the state (and, for on-demand data such as chain rows, the driver)
//! and renders; none validates or hashes.

pub mod app;
pub mod chain_file;
pub mod event_log;
pub mod explorer;
pub mod hash_power;
pub mod identity;
pub mod join;
pub mod lesson;
pub mod mining;
pub mod peers;
pub mod status_bar;
pub mod tamper;
pub mod tree;
pub mod wallet;

pub use app::App;
