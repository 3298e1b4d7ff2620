//! Everything that talks to the browser: the relay transport, direct links to other tabs, IndexedDB, the mining workers
//! and the driver that ties them to the node.

pub mod driver;
pub mod link_queue;
pub mod miner;
pub mod page;
pub mod rtc;
pub mod schedule;
pub mod storage;
pub mod tabs;
pub mod transport;
pub mod write_queue;
