//! The views. Each reads the state (and, for on-demand data such as chain rows, the driver)
//! and renders; none validates or hashes.

pub mod app;
pub mod chain_file;
pub mod class_view;
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

// The panels' headings, in one place: lesson texts name panels by them, and a test checks that
// every panel a lesson names exists (issue 29: a card named a "Peers panel" the page did not have).
pub const CHAIN_FILE_TITLE: &str = "Save or load a chain";
pub const EVENT_LOG_TITLE: &str = "Event log";
pub const HASH_POWER_TITLE: &str = "Hash power";
pub const IDENTITY_TITLE: &str = "This node";
pub const JOIN_TITLE: &str = "Join this room";
pub const MINING_TITLE: &str = "Mining";
pub const PEERS_TITLE: &str = "Compare chains across tabs";
pub const TAMPER_TITLE: &str = "Tamper sandbox";
pub const WALLET_TITLE: &str = "Wallet";
pub const PANEL_TITLES: [&str; 9] = [
    CHAIN_FILE_TITLE,
    EVENT_LOG_TITLE,
    HASH_POWER_TITLE,
    IDENTITY_TITLE,
    JOIN_TITLE,
    MINING_TITLE,
    PEERS_TITLE,
    TAMPER_TITLE,
    WALLET_TITLE,
];
