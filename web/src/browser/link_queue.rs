//! What waits to go out on one direct link, and the rule that lets it out: whole node payloads
//! wait in a bounded queue and are handed to the data channel, chunked by
//! [`shared::protocol::link::split_message`], only while the channel's own buffer
//! (`bufferedAmount`) is under [`BUFFERED_HIGH_WATER`]. The browser buffers up to 16 MiB per
//! channel and throws when that is full, and a deep buffer slows a fresh connection to a crawl
//! (measured: a 1 MB high-water mark once collapsed one to ~300 messages a second), so the
//! driver keeps the buffer shallow and the rest here, where it can still be taken back and sent
//! over the relay. Pure, so the rule is tested natively with a fake channel.

use shared::protocol::link::split_message;
use std::collections::VecDeque;

/// Payloads are handed to the channel only while its buffer holds less than this. 256 KiB
/// keeps a few block-sized messages in flight on a fast link without letting the buffer grow
/// deep.
pub const BUFFERED_HIGH_WATER: u32 = 256 * 1024;

/// The channel fires `bufferedamountlow` when its buffer falls to this, and the queue drains
/// again: low enough that the link never idles while the queue waits.
pub const BUFFERED_LOW_THRESHOLD: u32 = 64 * 1024;

/// Payloads waiting on one link. A node sends a burst of a few dozen messages per call; 512
/// absorbs a slow link for a while. Past it the link is given up and the relay carries on.
pub const LINK_QUEUE_MESSAGES: usize = 512;

/// Bytes waiting on one link: eight full-sized (1 MiB) messages. With [`LINK_QUEUE_MESSAGES`]
/// this bounds what one slow peer holds in this tab's memory.
pub const LINK_QUEUE_BYTES: usize = 8 << 20;

/// The data channel, as far as the queue needs it.
pub trait Channel {
    fn buffered_amount(&self) -> u32;
    /// Hands one frame to the browser; an error means the channel is unusable.
    fn send(&self, frame: &str) -> Result<(), String>;
}

/// The queue of one link.
#[derive(Debug, Default)]
pub struct SendQueue {
    payloads: VecDeque<String>,
    bytes: usize,
}

impl SendQueue {
    /// Queues a payload; gives it back when the queue is full.
    pub fn push(&mut self, payload: String) -> Result<(), String> {
        if self.payloads.len() >= LINK_QUEUE_MESSAGES
            || self.bytes + payload.len() > LINK_QUEUE_BYTES
        {
            return Err(payload);
        }
        self.bytes += payload.len();
        self.payloads.push_back(payload);
        Ok(())
    }

    /// Everything still queued, oldest first (the link is gone: these go over the relay).
    pub fn take_all(&mut self) -> Vec<String> {
        self.bytes = 0;
        self.payloads.drain(..).collect()
    }

    pub fn len(&self) -> usize {
        self.payloads.len()
    }

    pub fn is_empty(&self) -> bool {
        self.payloads.is_empty()
    }

    /// Hands payloads to `channel`, oldest first, while its buffer is under
    /// [`BUFFERED_HIGH_WATER`]; all chunks of one payload go together. Returns how many went.
    /// On a send error the payload that failed goes back to the front of the queue (the other
    /// side will never complete it over this channel) and the error is returned.
    pub fn drain(&mut self, channel: &impl Channel) -> Result<usize, String> {
        let mut sent = 0;
        while channel.buffered_amount() < BUFFERED_HIGH_WATER {
            let Some(payload) = self.payloads.pop_front() else {
                break;
            };
            for frame in split_message(&payload) {
                if let Err(error) = channel.send(&frame) {
                    self.payloads.push_front(payload);
                    return Err(error);
                }
            }
            self.bytes -= payload.len();
            sent += 1;
        }
        Ok(sent)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::protocol::link::{LinkFrame, Reassembler, CHUNK_BYTES};
    use std::cell::{Cell, RefCell};

    /// A channel whose buffer only grows until the test "transmits" it.
    #[derive(Default)]
    struct FakeChannel {
        buffered: Cell<u32>,
        frames: RefCell<Vec<String>>,
        fail_after: Cell<Option<usize>>,
    }

    impl Channel for FakeChannel {
        fn buffered_amount(&self) -> u32 {
            self.buffered.get()
        }
        fn send(&self, frame: &str) -> Result<(), String> {
            if self.fail_after.get() == Some(self.frames.borrow().len()) {
                return Err("InvalidStateError".into());
            }
            self.buffered.set(self.buffered.get() + frame.len() as u32);
            self.frames.borrow_mut().push(frame.to_string());
            Ok(())
        }
    }

    fn received(channel: &FakeChannel) -> Vec<String> {
        let mut reassembler = Reassembler::default();
        channel
            .frames
            .borrow()
            .iter()
            .filter_map(|frame| match reassembler.push(frame).unwrap() {
                Some(LinkFrame::Message(text)) => Some(text),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn the_buffer_stays_near_the_high_water_mark_and_everything_arrives_in_order() {
        let mut queue = SendQueue::default();
        let payloads: Vec<String> = (0..40)
            .map(|i| format!("{i:03}{}", "b".repeat(CHUNK_BYTES / 2)))
            .collect();
        for payload in &payloads {
            queue.push(payload.clone()).unwrap();
        }
        let channel = FakeChannel::default();
        let first = queue.drain(&channel).unwrap();
        assert!(first < payloads.len(), "the first drain stops at the mark");
        assert!(channel.buffered.get() < BUFFERED_HIGH_WATER + CHUNK_BYTES as u32 + 64);
        // The browser sends its buffer down to the low threshold, fires bufferedamountlow, and
        // the queue drains again, until it is empty.
        let mut drains = 1;
        while !queue.is_empty() {
            channel.buffered.set(BUFFERED_LOW_THRESHOLD);
            queue.drain(&channel).unwrap();
            drains += 1;
            assert!(drains < 100, "the queue does not empty");
        }
        assert_eq!(received(&channel), payloads);
    }

    #[test]
    fn a_full_queue_gives_the_payload_back() {
        let mut queue = SendQueue::default();
        for i in 0..LINK_QUEUE_MESSAGES {
            queue.push(i.to_string()).unwrap();
        }
        assert_eq!(queue.push("one more".into()), Err("one more".into()));
        let mut by_bytes = SendQueue::default();
        by_bytes.push("x".repeat(LINK_QUEUE_BYTES - 1)).unwrap();
        assert_eq!(by_bytes.push("yz".into()), Err("yz".into()));
        by_bytes.push("y".into()).unwrap();
    }

    #[test]
    fn a_failed_send_keeps_the_payload_and_everything_after_it() {
        let mut queue = SendQueue::default();
        let big = "c".repeat(3 * CHUNK_BYTES);
        for payload in ["first".to_string(), big.clone(), "last".to_string()] {
            queue.push(payload).unwrap();
        }
        let channel = FakeChannel::default();
        // The first payload goes, then the second fails on its second chunk.
        channel.fail_after.set(Some(2));
        assert!(queue.drain(&channel).is_err());
        assert_eq!(queue.take_all(), vec![big, "last".to_string()]);
        assert!(queue.is_empty());
        assert_eq!(queue.bytes, 0);
    }
}
