//! Writes waiting for IndexedDB, with bounds. Pure (no browser calls), so the bounds and the
//! back-pressure are tested natively; the driver runs the flushes.
//!
//! Writes are gathered into one IndexedDB transaction per batch. Nothing the node asked to
//! store is dropped quietly: the queue flushes early when it grows, asks the driver to stop
//! taking peer messages (the only source of writes that can outrun storage) while it is far
//! behind, and refuses a write only past a hard bound, handing it back so the driver can tell
//! the person which block or transaction will not survive a reload.

use super::storage::Write;
use std::collections::VecDeque;

/// Writes queued past this are refused (with an error on screen). Between
/// [`PAUSE_PEERS_AT_WRITES`] and here the queue takes only what the tab does itself (found
/// blocks, payments) and the rest of the message being handled: a peer message carries at most
/// `MAX_BLOCKS_PER_REQUEST` (64) blocks, so the gap holds dozens of them.
pub const MAX_PENDING_WRITES: usize = 4_096;
/// Bytes of JSON queued past this are refused too. A relay frame is at most 1 MiB, so one peer
/// message stores about that much; 64 MiB is a sync burst's worth at most, and what a phone
/// tab can hold beside its block tree.
pub const MAX_PENDING_WRITE_BYTES: usize = 64 << 20;
/// At half the bounds the driver stops handing peer messages to the node until storage catches
/// up. The relay delivers at most once anyway: the node asks again for blocks it misses (its
/// request timeouts) and peers repeat their status, so an ignored message costs time, not data.
pub const PAUSE_PEERS_AT_WRITES: usize = MAX_PENDING_WRITES / 2;
pub const PAUSE_PEERS_AT_BYTES: usize = MAX_PENDING_WRITE_BYTES / 2;
/// A batch this big is written at once rather than at the end of the flush interval: a sync
/// stores thousands of blocks a second, and one transaction of a few hundred is quick.
pub const FLUSH_NOW_WRITES: usize = 256;
pub const FLUSH_NOW_BYTES: usize = 4 << 20;

/// What became of a write handed to [`WriteQueue::push`].
#[derive(Debug)]
pub enum Pushed {
    /// Queued; the next timed flush writes it.
    Queued,
    /// Queued, and the queue is big enough to be written now.
    FlushNow,
    /// Not queued: the queue is full. The caller must tell the person.
    Refused(Write),
}

#[derive(Debug, Default)]
pub struct WriteQueue {
    pending: VecDeque<Write>,
    pending_bytes: usize,
    /// Writes handed out by [`WriteQueue::take_batch`] whose transaction has not finished.
    in_flight: usize,
    in_flight_bytes: usize,
}

impl WriteQueue {
    pub fn push(&mut self, write: Write) -> Pushed {
        let bytes = write.size_bytes();
        if self.unsaved() >= MAX_PENDING_WRITES
            || self.unsaved_bytes() + bytes > MAX_PENDING_WRITE_BYTES
        {
            return Pushed::Refused(write);
        }
        self.pending_bytes += bytes;
        self.pending.push_back(write);
        if self.pending.len() >= FLUSH_NOW_WRITES || self.pending_bytes >= FLUSH_NOW_BYTES {
            Pushed::FlushNow
        } else {
            Pushed::Queued
        }
    }

    /// Everything queued, for one transaction. Call [`WriteQueue::finished`] or
    /// [`WriteQueue::failed`] when it ends; until then the writes count as unsaved.
    pub fn take_batch(&mut self) -> Vec<Write> {
        self.in_flight += self.pending.len();
        self.in_flight_bytes += self.pending_bytes;
        self.pending_bytes = 0;
        self.pending.drain(..).collect()
    }

    /// The batch from [`WriteQueue::take_batch`] is saved.
    pub fn finished(&mut self) {
        self.in_flight = 0;
        self.in_flight_bytes = 0;
    }

    /// The batch could not be written: it goes back in front of anything queued since, in its
    /// order (a put and a later delete of one key must stay in that order), for the next try.
    pub fn failed(&mut self, batch: Vec<Write>) {
        self.finished();
        for write in batch.into_iter().rev() {
            self.pending_bytes += write.size_bytes();
            self.pending.push_front(write);
        }
    }

    /// Writes not yet saved: queued or being written.
    pub fn unsaved(&self) -> usize {
        self.pending.len() + self.in_flight
    }

    pub fn unsaved_bytes(&self) -> usize {
        self.pending_bytes + self.in_flight_bytes
    }

    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    /// Whether storage is so far behind that peer messages should wait.
    pub fn is_behind(&self) -> bool {
        self.unsaved() >= PAUSE_PEERS_AT_WRITES || self.unsaved_bytes() >= PAUSE_PEERS_AT_BYTES
    }

    /// Forgets everything queued (the node is being reset).
    pub fn clear(&mut self) {
        self.pending.clear();
        self.pending_bytes = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::Hash;

    fn put(n: u8, bytes: usize) -> Write {
        Write::PutBlock(Hash([n; 32]), "x".repeat(bytes))
    }

    #[test]
    fn a_growing_queue_asks_for_an_early_flush() {
        let mut queue = WriteQueue::default();
        for n in 0..FLUSH_NOW_WRITES - 1 {
            assert!(matches!(queue.push(put(n as u8, 10)), Pushed::Queued));
        }
        assert!(matches!(queue.push(put(0, 10)), Pushed::FlushNow));
        let mut queue = WriteQueue::default();
        assert!(matches!(
            queue.push(put(1, FLUSH_NOW_BYTES)),
            Pushed::FlushNow
        ));
    }

    /// Past the bound a write is handed back (so the person hears of it), never dropped.
    #[test]
    fn a_full_queue_refuses_and_hands_the_write_back() {
        let mut queue = WriteQueue::default();
        for n in 0..MAX_PENDING_WRITES {
            assert!(!matches!(queue.push(put(n as u8, 1)), Pushed::Refused(_)));
        }
        assert!(queue.is_behind());
        match queue.push(put(7, 1)) {
            Pushed::Refused(Write::PutBlock(hash, _)) => assert_eq!(hash, Hash([7; 32])),
            other => panic!("expected a refusal, got {other:?}"),
        }
        assert_eq!(queue.unsaved(), MAX_PENDING_WRITES);
        // Writes being written still count: taking a batch does not make room.
        let batch = queue.take_batch();
        assert!(matches!(queue.push(put(8, 1)), Pushed::Refused(_)));
        drop(batch);
        queue.finished();
        assert!(matches!(queue.push(put(8, 1)), Pushed::Queued));
        assert!(!queue.is_behind());
    }

    #[test]
    fn bytes_are_bounded_as_well_as_count() {
        let mut queue = WriteQueue::default();
        assert!(!queue.is_behind());
        queue.push(put(1, PAUSE_PEERS_AT_BYTES));
        assert!(queue.is_behind(), "half the byte bound pauses peers");
        let room = MAX_PENDING_WRITE_BYTES - queue.unsaved_bytes();
        let fits = put(2, room - put(2, 0).size_bytes());
        assert_eq!(fits.size_bytes(), room);
        assert!(!matches!(queue.push(fits), Pushed::Refused(_)));
        assert!(matches!(queue.push(put(3, 1)), Pushed::Refused(_)));
        assert_eq!(queue.unsaved(), 2);
    }

    /// A failed transaction keeps its writes, ahead of newer ones and in their order.
    #[test]
    fn a_failed_batch_is_retried_first_in_order() {
        let mut queue = WriteQueue::default();
        queue.push(put(1, 1));
        queue.push(Write::DeleteBlock(Hash([1; 32])));
        let batch = queue.take_batch();
        queue.push(put(2, 1));
        assert_eq!(queue.unsaved(), 3);
        queue.failed(batch);
        assert_eq!(queue.unsaved(), 3);
        let order: Vec<String> = queue
            .take_batch()
            .iter()
            .map(|write| match write {
                Write::PutBlock(hash, _) => format!("put {}", hash.0[0]),
                Write::DeleteBlock(hash) => format!("delete {}", hash.0[0]),
                _ => unreachable!(),
            })
            .collect();
        assert_eq!(order, ["put 1", "delete 1", "put 2"]);
        queue.finished();
        assert_eq!(queue.unsaved(), 0);
        assert_eq!(queue.unsaved_bytes(), 0);
    }
}
