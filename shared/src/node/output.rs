//! What the node hands back to its driver: [`Output`]s (send, store, mine, ...) and the
//! [`NodeEvent`]s the UI shows, in one bounded queue.
//!
//! The queue never drops an output that carries data (a block or transaction to store, a
//! message to send, a mining job): losing one would lose a block or break the protocol. Only
//! UI events are dropped, oldest first, when more than [`MAX_QUEUED_EVENTS`] wait. The data
//! outputs are bounded by what the node accepts instead: while more than [`MAX_QUEUED_OUTPUTS`]
//! wait (a driver that does not drain), the node refuses new peer messages (see
//! [`super::Node::handle_message`]), which the network tolerates like any lost message.

use super::links::{LinkState, Route};
use crate::block::Block;
use crate::hash::Hash;
use crate::keys::Address;
use crate::protocol::message::TipStatus;
use crate::protocol::PeerId;
use crate::tx::Transaction;
use std::collections::VecDeque;
use std::sync::Arc;

/// Data outputs waiting before the node stops taking peer messages. Drivers drain the queue
/// after every call, so this only bounds a driver that forgets to; one call produces at most a
/// few hundred (a `blocks` reply stores 64 blocks, a reorg a few hundred).
pub const MAX_QUEUED_OUTPUTS: usize = 100_000;
/// UI events kept waiting; beyond it the oldest event is dropped (the UI rereads the node).
pub const MAX_QUEUED_EVENTS: usize = 10_000;

/// Work for the miner: find a nonce for `block.header`, then call
/// [`super::Node::handle_mined_block`] with the same `job_id`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MiningJob {
    pub job_id: u64,
    pub block: Block,
}

/// Whether we are catching up with a peer that has more work.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum SyncState {
    #[default]
    Synced,
    Syncing {
        target_height: u64,
    },
}

/// Something that changed which the UI may show.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NodeEvent {
    TipChanged {
        hash: Hash,
        height: u64,
        /// Blocks that left the best chain; more than zero means a reorg.
        reorg_depth: usize,
        disconnected: Vec<Hash>,
        connected: Vec<Hash>,
    },
    BlockAccepted {
        hash: Hash,
        height: u64,
        from: Option<PeerId>,
        side_branch: bool,
    },
    BlockRejected {
        hash: Hash,
        from: Option<PeerId>,
        reason: String,
    },
    PeerJoined {
        peer: PeerId,
    },
    PeerLeft {
        peer: PeerId,
    },
    PeerHello {
        peer: PeerId,
        name: String,
        address: Address,
    },
    PeerRefused {
        peer: PeerId,
        reason: String,
    },
    PeerTip {
        peer: PeerId,
        tip: TipStatus,
    },
    PeerMisbehaved {
        peer: PeerId,
        reason: String,
        score: u32,
        banned: bool,
    },
    TransactionAccepted {
        id: Hash,
        from_peer: Option<PeerId>,
    },
    TransactionConfirmed {
        id: Hash,
        height: u64,
    },
    TransactionDropped {
        id: Hash,
        reason: String,
    },
    SyncChanged(SyncState),
    /// The direct link to a peer opened or closed.
    LinkChanged {
        peer: PeerId,
        link: LinkState,
    },
}

/// What the caller must do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Output {
    /// Send `payload` (a JSON node message) to one peer, the way `route` says.
    Send {
        to: PeerId,
        payload: String,
        route: Route,
    },
    /// Send `payload` through the relay to every peer in the room.
    Broadcast {
        payload: String,
    },
    /// Open a direct link to `peer` (we initiate: an offer goes to it through the relay's
    /// signaling). Report the result with `handle_link_up` / `handle_link_down`.
    OpenLink {
        peer: PeerId,
    },
    /// Close (or stop opening) the direct link to `peer`.
    CloseLink {
        peer: PeerId,
    },
    /// Persist this block (it was accepted into the tree).
    StoreBlock(Arc<Block>),
    /// Forget a stored block (it turned out invalid).
    DeleteBlock(Hash),
    /// Persist one of our own transactions until it is confirmed or dropped, so a restart (or
    /// the next `node send`) knows it: its nonce is taken and it is announced again.
    StoreTransaction(Transaction),
    /// Forget a stored transaction of ours (confirmed deep enough, or dropped).
    DeleteTransaction(Hash),
    /// Start mining on this job, abandoning any earlier one.
    Mine(MiningJob),
    /// Stop mining.
    StopMining,
    Event(NodeEvent),
}

impl Output {
    fn is_event(&self) -> bool {
        matches!(self, Output::Event(_))
    }
}

/// The bounded output queue; see the module documentation for what it drops.
#[derive(Default)]
pub(crate) struct OutputQueue {
    queue: VecDeque<Output>,
    events: usize,
    dropped_events: u64,
}

impl OutputQueue {
    pub(crate) fn push(&mut self, output: Output) {
        if output.is_event() {
            if self.events >= MAX_QUEUED_EVENTS {
                if let Some(index) = self.queue.iter().position(Output::is_event) {
                    self.queue.remove(index);
                    self.events -= 1;
                    self.dropped_events += 1;
                }
            }
            self.events += 1;
        }
        self.queue.push_back(output);
    }
    pub(crate) fn pop(&mut self) -> Option<Output> {
        let output = self.queue.pop_front()?;
        if output.is_event() {
            self.events -= 1;
        }
        Some(output)
    }
    /// More data outputs wait than a draining driver would ever leave.
    pub(crate) fn backlogged(&self) -> bool {
        self.queue.len() - self.events >= MAX_QUEUED_OUTPUTS
    }
    pub(crate) fn dropped_events(&self) -> u64 {
        self.dropped_events
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_queue_drops_the_oldest_event_and_never_a_data_output() {
        let mut queue = OutputQueue::default();
        queue.push(Output::DeleteBlock(Hash::ZERO));
        for height in 0..(MAX_QUEUED_EVENTS as u64 + 5) {
            queue.push(Output::Event(NodeEvent::SyncChanged(SyncState::Syncing {
                target_height: height,
            })));
        }
        assert_eq!(queue.dropped_events(), 5);
        assert_eq!(queue.pop(), Some(Output::DeleteBlock(Hash::ZERO)));
        assert_eq!(
            queue.pop(),
            Some(Output::Event(NodeEvent::SyncChanged(SyncState::Syncing {
                target_height: 5
            }))),
            "the oldest events went first"
        );
        assert!(
            !queue.backlogged(),
            "events never make the queue backlogged"
        );
        for _ in 0..MAX_QUEUED_OUTPUTS {
            queue.push(Output::StopMining);
        }
        assert!(queue.backlogged());
        assert_eq!(
            queue.dropped_events(),
            5,
            "data outputs are kept, all of them"
        );
    }
}
