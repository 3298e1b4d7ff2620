//! tabchain in the browser: each tab is a full node of the chain in `shared`.
//!
//! The [`shared::node::Node`] state machine lives in the [`browser::driver::Driver`], outside
//! yew's state; the driver feeds it frames from the [`browser::transport`] seam, ticks, mined
//! blocks and the person's commands, drains its outputs after every call, and pushes small
//! view structs ([`snapshot`]) into the reducers in [`state`]. Components in [`components`]
//! only render. The pure parts (URL config, relations between chains, the tree layout, the
//! tamper sandbox, the log text) are plain modules tested natively.

pub mod address_book;
pub mod browser;
pub mod components;
pub mod config;
pub mod connection;
pub mod format;
pub mod hooks;
pub mod identity;
pub mod lessons;
pub mod log;
pub mod miner_worker;
pub mod mining;
pub mod qr;
pub mod relation;
pub mod room_link;
pub mod snapshot;
pub mod state;
pub mod tamper;
#[cfg(test)]
mod test_chain;
pub mod tree_view;

/// Mounts the app on the page's body.
pub fn start_app() {
    yew::Renderer::<components::App>::new().render();
}
