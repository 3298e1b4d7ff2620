//! A peer's outgoing queue: bounded by messages and by bytes, and shut for good the moment it
//! overflows.
//!
//! Whoever delivers to a peer (the room hub, the peer's own connection for error frames) pushes
//! without waiting. The peer's writer drains it. A peer that reads too slowly does not make the
//! relay's memory grow: the push that would exceed a bound drops everything queued, marks the
//! outbox closed as a slow consumer and wakes the connection so it disconnects the peer.
//! Frames are [`Utf8Bytes`], reference-counted, so a broadcast shares one buffer among all
//! receivers; each receiver's byte bound still counts the frame in full.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::Notify;
use tokio_tungstenite::tungstenite::Utf8Bytes;

/// What a push did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Push {
    Queued,
    /// This push overflowed the queue: the outbox is now closed and its frames were dropped.
    Overflowed,
    /// The outbox was already closed; the frame was dropped.
    Closed,
    /// A frame for this peer alone (a `send` or `signal`) found as much such traffic waiting as
    /// one receiver takes ([`DIRECTED_SHARE_OF_QUEUE`]): refused, the outbox left as it was.
    Refused,
}

/// Frames sent to one peer alone may fill at most this fraction of its queue's bytes. Senders
/// each within their own limits could otherwise pick a victim and overflow its queue together,
/// getting it cut off as a slow consumer however fast it reads; now the last of them are refused
/// instead, and the receiver keeps the rest of its queue for the room's broadcasts.
pub const DIRECTED_SHARE_OF_QUEUE: usize = 2;

/// The bounds of one outbox.
#[derive(Clone, Copy, Debug)]
pub struct OutboxLimits {
    pub max_messages: usize,
    pub max_bytes: usize,
}

/// A cloneable handle to one peer's outgoing queue.
#[derive(Clone)]
pub struct Outbox {
    inner: Arc<Inner>,
}

struct Inner {
    state: Mutex<State>,
    /// Wakes the writer when a frame arrives.
    has_frames: Notify,
    /// Wakes the connection when the outbox overflows.
    overflowed: Notify,
    /// Set (once) when a newer connection took this peer's id; wakes the connection.
    replaced: std::sync::atomic::AtomicBool,
    replaced_notify: Notify,
    limits: OutboxLimits,
}

struct State {
    /// Each frame, and whether it was for this peer alone.
    queue: VecDeque<(Utf8Bytes, bool)>,
    /// Bytes of frames for this peer alone waiting in `queue`.
    directed_bytes: usize,
    /// Messages queued plus those taken by the writer and not yet written.
    messages: usize,
    /// Bytes queued plus those taken by the writer and not yet written.
    bytes: usize,
    closed: bool,
}

impl Outbox {
    pub fn new(limits: OutboxLimits) -> Outbox {
        Outbox {
            inner: Arc::new(Inner {
                state: Mutex::new(State {
                    queue: VecDeque::new(),
                    directed_bytes: 0,
                    messages: 0,
                    bytes: 0,
                    closed: false,
                }),
                has_frames: Notify::new(),
                overflowed: Notify::new(),
                replaced: std::sync::atomic::AtomicBool::new(false),
                replaced_notify: Notify::new(),
                limits,
            }),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A panic while holding this lock leaves only counters behind; carry on with them.
        self.inner
            .state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Queues a frame without waiting. Never blocks on the peer.
    pub fn push(&self, frame: Utf8Bytes) -> Push {
        self.push_frame(frame, false)
    }

    /// Queues a frame meant for this peer alone, unless such frames already fill its share of
    /// the queue ([`Push::Refused`]).
    pub fn push_directed(&self, frame: Utf8Bytes) -> Push {
        self.push_frame(frame, true)
    }

    fn push_frame(&self, frame: Utf8Bytes, directed: bool) -> Push {
        let mut state = self.state();
        if state.closed {
            return Push::Closed;
        }
        let limits = self.inner.limits;
        if directed
            && state.directed_bytes + frame.len() > limits.max_bytes / DIRECTED_SHARE_OF_QUEUE
        {
            return Push::Refused;
        }
        if state.messages + 1 > limits.max_messages || state.bytes + frame.len() > limits.max_bytes
        {
            state.closed = true;
            state.queue = VecDeque::new();
            drop(state);
            self.inner.overflowed.notify_one();
            return Push::Overflowed;
        }
        state.messages += 1;
        state.bytes += frame.len();
        if directed {
            state.directed_bytes += frame.len();
        }
        state.queue.push_back((frame, directed));
        drop(state);
        self.inner.has_frames.notify_one();
        Push::Queued
    }

    /// Waits for frames and moves up to `max` of them into `batch`. They keep counting against the
    /// bounds until [`Outbox::written`] says they left. Never returns once the outbox is closed.
    pub async fn take(&self, batch: &mut Vec<Utf8Bytes>, max: usize) {
        loop {
            {
                let mut state = self.state();
                if !state.closed && !state.queue.is_empty() {
                    let count = state.queue.len().min(max);
                    let mut directed = 0;
                    batch.extend(state.queue.drain(..count).map(|(frame, alone)| {
                        if alone {
                            directed += frame.len();
                        }
                        frame
                    }));
                    state.directed_bytes -= directed;
                    if state.queue.is_empty() && state.queue.capacity() > IDLE_QUEUE_CAPACITY {
                        // Give back what a burst grew, so an idle peer stays small.
                        state.queue = VecDeque::new();
                    }
                    return;
                }
            }
            self.inner.has_frames.notified().await;
        }
    }

    /// Releases the bounds held by frames the writer has written.
    pub fn written(&self, messages: usize, bytes: usize) {
        let mut state = self.state();
        state.messages = state.messages.saturating_sub(messages);
        state.bytes = state.bytes.saturating_sub(bytes);
    }

    /// Resolves once the outbox has overflowed.
    pub async fn overflowed(&self) {
        loop {
            if self.state().closed {
                return;
            }
            self.inner.overflowed.notified().await;
        }
    }

    /// Tells the connection that owns this outbox that a newer connection took its peer id (the
    /// same resume token). What is queued still goes out before the goodbye.
    pub fn replace(&self) {
        self.inner
            .replaced
            .store(true, std::sync::atomic::Ordering::Release);
        self.inner.replaced_notify.notify_one();
    }

    pub fn is_replaced(&self) -> bool {
        self.inner
            .replaced
            .load(std::sync::atomic::Ordering::Acquire)
    }

    /// Resolves once [`Outbox::replace`] has been called.
    pub async fn replaced(&self) {
        loop {
            let notified = self.inner.replaced_notify.notified();
            if self.is_replaced() {
                return;
            }
            notified.await;
        }
    }

    /// Whether two handles are the same peer's outbox: a room entry belongs to one connection,
    /// even when a newer connection has the same peer id.
    pub fn same(&self, other: &Outbox) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }

    /// Frames left to write, for the final flush before a close frame.
    pub fn drain_now(&self) -> Vec<Utf8Bytes> {
        let mut state = self.state();
        if state.closed {
            return Vec::new();
        }
        state.directed_bytes = 0;
        state.queue.drain(..).map(|(frame, _)| frame).collect()
    }
}

/// Queue slots kept between bursts. A burst may grow the queue to thousands of slots; keeping a
/// few avoids reallocating for every message of steady traffic.
const IDLE_QUEUE_CAPACITY: usize = 16;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_for_one_peer_alone_fill_only_half_its_queue() {
        let outbox = Outbox::new(OutboxLimits {
            max_messages: 100,
            max_bytes: 100,
        });
        assert_eq!(
            outbox.push_directed(Utf8Bytes::from("d".repeat(40))),
            Push::Queued
        );
        assert_eq!(
            outbox.push_directed(Utf8Bytes::from("d".repeat(20))),
            Push::Refused
        );
        // Broadcasts still have the rest, and a refusal closed nothing.
        assert_eq!(outbox.push(Utf8Bytes::from("b".repeat(50))), Push::Queued);
        let mut batch = Vec::new();
        futures_util::FutureExt::now_or_never(outbox.take(&mut batch, 1)).unwrap();
        // The directed frame was taken: its share is free again.
        assert_eq!(
            outbox.push_directed(Utf8Bytes::from("d".repeat(10))),
            Push::Queued
        );
    }

    fn frame(text: &str) -> Utf8Bytes {
        Utf8Bytes::from(text)
    }

    #[test]
    fn overflow_by_count_closes_and_drops_everything() {
        let outbox = Outbox::new(OutboxLimits {
            max_messages: 2,
            max_bytes: 1_000,
        });
        assert_eq!(outbox.push(frame("a")), Push::Queued);
        assert_eq!(outbox.push(frame("b")), Push::Queued);
        assert_eq!(outbox.push(frame("c")), Push::Overflowed);
        assert_eq!(outbox.push(frame("d")), Push::Closed);
        assert!(outbox.drain_now().is_empty());
    }

    #[test]
    fn overflow_by_bytes_counts_frames_in_flight() {
        let outbox = Outbox::new(OutboxLimits {
            max_messages: 100,
            max_bytes: 10,
        });
        assert_eq!(outbox.push(frame("12345")), Push::Queued);
        let mut batch = Vec::new();
        futures_util::FutureExt::now_or_never(outbox.take(&mut batch, 16)).unwrap();
        assert_eq!(batch.len(), 1);
        // The taken frame is not written yet, so it still counts.
        assert_eq!(outbox.push(frame("12345")), Push::Queued);
        outbox.written(1, 5);
        assert_eq!(outbox.push(frame("12345")), Push::Queued);
        assert_eq!(outbox.push(frame("1")), Push::Overflowed);
    }
}
