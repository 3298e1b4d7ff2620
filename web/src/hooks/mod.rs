//! Hooks: starting the driver and reaching it and the state from any component.

mod use_tabchain;

pub use use_tabchain::{use_driver, use_log_state, use_node_state, use_tabchain, Tabchain};
