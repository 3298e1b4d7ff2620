//! The queue between a link's reader task and the runtime. The reader drains the socket into it
//! without ever waiting for the node, so time the node spends validating one peer's messages
//! never makes the relay see us as a slow consumer.
//!
//! The queue is bounded by events ([`INBOX_EVENTS`]) and by payload bytes ([`INBOX_BYTES`]).
//! When a message does not fit, messages are shed from the peer with the most bytes waiting,
//! newest first: a peer flooding us loses its own messages, the others keep theirs. If the
//! sender of the new message is that peer, the new message is the one dropped. The node is told
//! of every shed message (its sender, and whether it asked for an answer: [`InboxReader::recv`]
//! hands these reports out first as [`LinkEvent::Dropped`]), so it neither blames the sender for
//! an answer we lost nor leaves it waiting for one to a request we lost. Room events (a peer joined or
//! left, relay errors, the close) are never shed; if the queue holds nothing but them, the
//! reader waits for room, which only a relay sending thousands of joins could cause.

use crate::transport::LinkEvent;
use shared::protocol::message::NodeMessage;
use shared::protocol::PeerId;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use tokio::sync::Notify;

/// Events waiting for the runtime. The runtime takes up to `LINK_BATCH` (64) per step in
/// milliseconds; 4,096 covers a burst of several seconds of a busy room, and is four times the
/// relay's own per-peer queue, so the relay's queue for us empties first.
pub const INBOX_EVENTS: usize = 4_096;
/// Payload bytes waiting for the runtime: two of the largest messages a link reads at all
/// ([`crate::transport::MAX_WEBSOCKET_MESSAGE`]), so an oversized one can still reach the node to
/// be refused (and its sender penalised) while honest sync replies keep flowing.
pub const INBOX_BYTES: usize = 2 * crate::transport::MAX_WEBSOCKET_MESSAGE;

#[derive(Default)]
struct State {
    events: VecDeque<LinkEvent>,
    bytes: usize,
    bytes_by_peer: HashMap<PeerId, usize>,
    shed: u64,
    /// Shed messages not yet reported to the node: per sender, whether any asked for an answer.
    /// One entry per peer (the relay caps a room well below [`INBOX_EVENTS`]).
    lost: HashMap<PeerId, bool>,
    /// The reader is gone (the link closed, or it was dropped).
    finished: bool,
}

/// The shared queue; one [`InboxWriter`] (the reader task) and one [`InboxReader`] (the link).
#[derive(Default)]
struct Shared {
    state: Mutex<State>,
    readable: Notify,
    room: Notify,
}

pub struct InboxWriter(Arc<Shared>);
pub struct InboxReader(Arc<Shared>);

pub fn inbox() -> (InboxWriter, InboxReader) {
    let shared = Arc::new(Shared::default());
    (InboxWriter(shared.clone()), InboxReader(shared))
}

fn payload_bytes(event: &LinkEvent) -> Option<(&PeerId, usize)> {
    match event {
        LinkEvent::Message { from, payload } => Some((from, payload.len())),
        _ => None,
    }
}

impl State {
    fn full_for(&self, bytes: usize) -> bool {
        self.events.len() >= INBOX_EVENTS || self.bytes + bytes > INBOX_BYTES
    }

    /// Removes the newest queued message of the peer with the most bytes waiting; returns that
    /// peer, or `None` if no message waits.
    fn shed_heaviest(&mut self, newcomer: Option<(&PeerId, usize)>) -> Shed {
        let heaviest = self
            .bytes_by_peer
            .iter()
            .map(|(peer, bytes)| {
                let extra = newcomer
                    .filter(|(from, _)| *from == peer)
                    .map_or(0, |n| n.1);
                (peer, bytes + extra)
            })
            .max_by_key(|(_, bytes)| *bytes)
            .map(|(peer, bytes)| (peer.clone(), bytes));
        match (heaviest, newcomer) {
            (Some((peer, bytes)), Some((from, size))) if *from == peer || size >= bytes => {
                Shed::Newcomer
            }
            (None, Some(_)) => Shed::Newcomer,
            (None, None) => Shed::Nothing,
            (Some((peer, _)), _) => {
                let index = self
                    .events
                    .iter()
                    .rposition(|event| payload_bytes(event).is_some_and(|(from, _)| *from == peer))
                    .expect("a peer with bytes waiting has a message queued");
                let event = self.events.remove(index).expect("index is in range");
                self.forget(&event);
                self.note_shed(&event);
                Shed::Queued(peer)
            }
        }
    }

    fn note_shed(&mut self, event: &LinkEvent) {
        self.shed += 1;
        if let LinkEvent::Message { from, payload } = event {
            let asked = NodeMessage::asks_for_answer(payload);
            *self.lost.entry(from.clone()).or_default() |= asked;
        }
    }

    fn forget(&mut self, event: &LinkEvent) {
        if let Some((from, bytes)) = payload_bytes(event) {
            self.bytes -= bytes;
            if let Some(waiting) = self.bytes_by_peer.get_mut(from) {
                *waiting -= bytes;
                if *waiting == 0 {
                    self.bytes_by_peer.remove(from);
                }
            }
        }
    }
}

enum Shed {
    Nothing,
    Newcomer,
    Queued(PeerId),
}

impl InboxWriter {
    /// Queues `event`, shedding as the module documentation says. Waits only when the queue is
    /// full of room events. Returns false if the reader side is gone.
    pub async fn push(&self, event: LinkEvent) -> bool {
        loop {
            // Registered before the check, so a pop between the check and the wait is not missed.
            let room = self.0.room.notified();
            {
                let mut state = self.0.state.lock().expect("inbox lock");
                if state.finished {
                    return false;
                }
                let newcomer = payload_bytes(&event).map(|(from, bytes)| (from.clone(), bytes));
                let newcomer_ref = newcomer.as_ref().map(|(from, bytes)| (from, *bytes));
                let size = newcomer.as_ref().map_or(0, |(_, bytes)| *bytes);
                let mut fits = true;
                while state.full_for(size) {
                    match state.shed_heaviest(newcomer_ref) {
                        Shed::Queued(peer) => {
                            tracing::debug!(peer = %peer.short(), "inbox full: shed a queued message")
                        }
                        Shed::Newcomer => {
                            state.note_shed(&event);
                            if let Some((from, bytes)) = &newcomer {
                                tracing::debug!(peer = %from.short(), bytes, "inbox full: shed a new message");
                            }
                            return true;
                        }
                        Shed::Nothing => {
                            fits = false;
                            break;
                        }
                    }
                }
                if fits {
                    if let Some((from, bytes)) = newcomer {
                        state.bytes += bytes;
                        *state.bytes_by_peer.entry(from).or_default() += bytes;
                    }
                    state.events.push_back(event);
                    drop(state);
                    self.0.readable.notify_one();
                    return true;
                }
            }
            room.await;
        }
    }
}

impl Drop for InboxWriter {
    fn drop(&mut self) {
        self.0.state.lock().expect("inbox lock").finished = true;
        self.0.readable.notify_one();
    }
}

impl InboxReader {
    /// The next event, or `None` once the writer is gone and the queue is empty.
    pub async fn recv(&mut self) -> Option<LinkEvent> {
        let shared = self.0.clone();
        loop {
            let readable = shared.readable.notified();
            if let Some(event) = self.try_recv() {
                return Some(event);
            }
            if shared.state.lock().expect("inbox lock").finished {
                return None;
            }
            readable.await;
        }
    }

    /// The next event that is already waiting: first the reports of shed messages, then the
    /// queue in order.
    pub fn try_recv(&mut self) -> Option<LinkEvent> {
        let mut state = self.0.state.lock().expect("inbox lock");
        if let Some(from) = state.lost.keys().next().cloned() {
            let asked = state.lost.remove(&from).unwrap_or(false);
            return Some(LinkEvent::Dropped { from, asked });
        }
        let event = state.events.pop_front()?;
        state.forget(&event);
        drop(state);
        self.0.room.notify_one();
        Some(event)
    }

    /// Messages shed because the queue was full, since the link opened.
    pub fn shed(&self) -> u64 {
        self.0.state.lock().expect("inbox lock").shed
    }
}

impl Drop for InboxReader {
    fn drop(&mut self) {
        self.0.state.lock().expect("inbox lock").finished = true;
        self.0.room.notify_one();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(peer: u8, bytes: usize) -> LinkEvent {
        LinkEvent::Message {
            from: PeerId::from_bytes([peer; 16]),
            payload: "x".repeat(bytes),
        }
    }

    #[tokio::test]
    async fn a_flooding_peer_loses_its_own_messages_and_the_others_keep_theirs() {
        let (writer, mut reader) = inbox();
        let rogue = PeerId::from_bytes([1; 16]);
        for _ in 0..INBOX_EVENTS + 100 {
            assert!(writer.push(message(1, 10)).await);
        }
        assert!(
            writer.push(message(2, 10)).await,
            "never waits for messages"
        );
        assert!(writer.push(LinkEvent::PeerLeft(rogue.clone())).await);
        assert_eq!(reader.shed(), 102);
        let events: Vec<LinkEvent> = std::iter::from_fn(|| reader.try_recv()).collect();
        assert_eq!(
            events[0],
            LinkEvent::Dropped {
                from: rogue.clone(),
                asked: false
            },
            "the node hears first that the rogue's messages were shed, once"
        );
        assert_eq!(events.len(), 1 + INBOX_EVENTS);
        assert_eq!(
            events[events.len() - 2],
            message(2, 10),
            "the honest message is kept"
        );
        assert_eq!(events[events.len() - 1], LinkEvent::PeerLeft(rogue));
    }

    #[tokio::test]
    async fn bytes_are_bounded_too_and_the_heaviest_peer_pays() {
        let (writer, mut reader) = inbox();
        let big = INBOX_BYTES / 4;
        for _ in 0..4 {
            writer.push(message(1, big)).await;
        }
        // Peer 2's message pushes out peer 1's newest; peer 1's next is dropped on arrival.
        writer.push(message(2, 100)).await;
        writer.push(message(1, big)).await;
        let events: Vec<LinkEvent> = std::iter::from_fn(|| reader.try_recv()).collect();
        assert_eq!(
            events,
            vec![
                LinkEvent::Dropped {
                    from: PeerId::from_bytes([1; 16]),
                    asked: false
                },
                message(1, big),
                message(1, big),
                message(1, big),
                message(2, 100)
            ]
        );
        assert_eq!(reader.shed(), 2);
    }

    #[tokio::test]
    async fn a_shed_request_is_reported_as_one_that_asked_for_an_answer() {
        let (writer, mut reader) = inbox();
        let big = INBOX_BYTES / 2;
        writer.push(message(1, big)).await;
        writer.push(message(1, big)).await;
        // Full: the request of peer 1 is shed on arrival, and the node must answer it `busy`.
        let request = LinkEvent::Message {
            from: PeerId::from_bytes([1; 16]),
            payload: r#"{"type":"get_mempool"}"#.into(),
        };
        writer.push(request).await;
        assert_eq!(
            reader.try_recv(),
            Some(LinkEvent::Dropped {
                from: PeerId::from_bytes([1; 16]),
                asked: true
            })
        );
        assert_eq!(reader.try_recv(), Some(message(1, big)));
    }

    #[tokio::test]
    async fn the_reader_sees_the_end_after_the_queued_events() {
        let (writer, mut reader) = inbox();
        writer.push(message(1, 1)).await;
        drop(writer);
        assert_eq!(reader.recv().await, Some(message(1, 1)));
        assert_eq!(reader.recv().await, None);
    }
}
