//! The framing of a direct link (a WebRTC data channel between two tabs). The channel is
//! ordered and reliable, but a browser refuses a `send()` over 262,144 bytes, and a node message
//! may be up to [`MAX_FRAME_BYTES`] (a block of `blocks` is about 500 KB of JSON). So a node
//! payload longer than [`CHUNK_BYTES`] is split into chunks, and the receiver puts them back
//! together. The same channel carries heartbeats that keep a dead link from looking alive (a
//! closed tab fires no `close` on the other side) and measure the round trip.
//!
//! Every frame is one text message whose first character says what it is:
//!
//! | frame | meaning |
//! |---|---|
//! | `m` + payload | a whole node message (at most [`CHUNK_BYTES`] of payload) |
//! | `b` + total + `:` + text | the first chunk of a message of `total` bytes (decimal) |
//! | `c` + text | the next chunk of that message; the message is complete at `total` bytes |
//! | `i` + microseconds | a heartbeat ping carrying the sender's clock |
//! | `o` + microseconds | the pong: the ping's number sent back, so the pinger reads its round trip |
//!
//! Chunks are cut on character boundaries, so every frame is valid UTF-8 on its own. Because
//! the channel is ordered, one message is being reassembled at a time: a `b` while another
//! message is incomplete, or a `c` with none begun, is malformed. Heartbeats may come between
//! chunks (they are sent outside the message queue).
//!
//! This is pure: the browser's `web/src/browser/rtc.rs` moves the frames and keeps the clock.

use super::MAX_FRAME_BYTES;

/// The most payload bytes in one frame. A browser's data channel refuses a message over
/// 262,144 bytes; 64 KiB keeps every frame far under that with its few header bytes, and keeps
/// the send buffer growing in small steps, so the sender's high-water mark holds closely.
pub const CHUNK_BYTES: usize = 64 * 1024;

/// The most bytes of one frame, header included: the receiver refuses longer ones.
pub const MAX_LINK_FRAME_BYTES: usize = CHUNK_BYTES + 32;

/// Why a frame from a link was refused. Any of these means the other side does not speak
/// this framing (or is broken): the link is closed and the relay carries its messages.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LinkFrameError {
    #[error("an empty frame")]
    Empty,
    #[error("an unknown frame kind {0:?}")]
    UnknownKind(char),
    #[error("a frame of {0} bytes (at most {MAX_LINK_FRAME_BYTES})")]
    FrameTooLarge(usize),
    #[error("a message of {0} bytes (at most {MAX_FRAME_BYTES})")]
    MessageTooLarge(usize),
    #[error("a first chunk without a valid length")]
    BadLength,
    #[error("a heartbeat without a valid timestamp")]
    BadTimestamp,
    #[error("a new message began before the last one was complete")]
    Interrupted,
    #[error("a chunk with no message begun")]
    UnexpectedChunk,
    #[error("the chunks run past the message's length")]
    Overrun,
}

/// What one frame meant, once complete.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkFrame {
    /// A whole node message (JSON text), as the node emitted it.
    Message(String),
    /// Answer with [`pong`] carrying the same number.
    Ping(u64),
    /// The number of one of our pings: the round trip is now minus it.
    Pong(u64),
}

/// The frames that carry `payload`, in order: one for a payload up to [`CHUNK_BYTES`], else a
/// first chunk and continuations, each at most [`CHUNK_BYTES`] of payload.
pub fn split_message(payload: &str) -> Vec<String> {
    if payload.len() <= CHUNK_BYTES {
        let mut frame = String::with_capacity(payload.len() + 1);
        frame.push('m');
        frame.push_str(payload);
        return vec![frame];
    }
    let mut frames = Vec::with_capacity(payload.len().div_ceil(CHUNK_BYTES) + 1);
    let mut rest = payload;
    while !rest.is_empty() {
        let mut end = CHUNK_BYTES.min(rest.len());
        while !rest.is_char_boundary(end) {
            end -= 1;
        }
        let (chunk, tail) = rest.split_at(end);
        let frame = if frames.is_empty() {
            format!("b{}:{chunk}", payload.len())
        } else {
            format!("c{chunk}")
        };
        frames.push(frame);
        rest = tail;
    }
    frames
}

/// The heartbeat frame carrying our clock (microseconds, any origin).
pub fn ping(now_us: u64) -> String {
    format!("i{now_us}")
}

/// The answer to a ping: its number, sent back.
pub fn pong(ping_us: u64) -> String {
    format!("o{ping_us}")
}

/// Puts chunked messages back together, one at a time (the channel is ordered).
#[derive(Debug, Default)]
pub struct Reassembler {
    partial: Option<Partial>,
}

#[derive(Debug)]
struct Partial {
    total: usize,
    text: String,
}

impl Reassembler {
    /// Takes the next frame. `Ok(None)`: a chunk of a message not yet complete. After an error
    /// the link should be closed; the reassembler forgets the partial message.
    pub fn push(&mut self, frame: &str) -> Result<Option<LinkFrame>, LinkFrameError> {
        if frame.len() > MAX_LINK_FRAME_BYTES {
            self.partial = None;
            return Err(LinkFrameError::FrameTooLarge(frame.len()));
        }
        let mut chars = frame.chars();
        let kind = chars.next().ok_or(LinkFrameError::Empty)?;
        let body = chars.as_str();
        match kind {
            'i' => timestamp(body).map(|us| Some(LinkFrame::Ping(us))),
            'o' => timestamp(body).map(|us| Some(LinkFrame::Pong(us))),
            'm' if self.partial.is_some() => self.fail(LinkFrameError::Interrupted),
            'm' => Ok(Some(LinkFrame::Message(body.to_string()))),
            'b' if self.partial.is_some() => self.fail(LinkFrameError::Interrupted),
            'b' => {
                let (total, chunk) = body.split_once(':').ok_or(LinkFrameError::BadLength)?;
                if total.is_empty() || !total.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(LinkFrameError::BadLength);
                }
                let total: usize = total.parse().map_err(|_| LinkFrameError::BadLength)?;
                if total > MAX_FRAME_BYTES {
                    return Err(LinkFrameError::MessageTooLarge(total));
                }
                if chunk.len() > total {
                    return Err(LinkFrameError::Overrun);
                }
                let mut text = String::with_capacity(total);
                text.push_str(chunk);
                self.partial = Some(Partial { total, text });
                Ok(self.complete())
            }
            'c' => {
                let Some(partial) = self.partial.as_mut() else {
                    return Err(LinkFrameError::UnexpectedChunk);
                };
                if partial.text.len() + body.len() > partial.total {
                    return self.fail(LinkFrameError::Overrun);
                }
                partial.text.push_str(body);
                Ok(self.complete())
            }
            other => self.fail(LinkFrameError::UnknownKind(other)),
        }
    }

    /// Whether a chunked message is half received.
    pub fn is_partial(&self) -> bool {
        self.partial.is_some()
    }

    fn complete(&mut self) -> Option<LinkFrame> {
        match &self.partial {
            Some(partial) if partial.text.len() == partial.total => self
                .partial
                .take()
                .map(|partial| LinkFrame::Message(partial.text)),
            _ => None,
        }
    }

    fn fail<T>(&mut self, error: LinkFrameError) -> Result<T, LinkFrameError> {
        self.partial = None;
        Err(error)
    }
}

fn timestamp(body: &str) -> Result<u64, LinkFrameError> {
    if body.is_empty() || !body.bytes().all(|b| b.is_ascii_digit()) {
        return Err(LinkFrameError::BadTimestamp);
    }
    body.parse().map_err(|_| LinkFrameError::BadTimestamp)
}

/// Bytes one peer may send us over a direct link per second, and in a burst: the relay's own
/// per-peer defaults (4 MiB/s, bursts of 8 largest frames), so a direct link lets a peer make us
/// read and parse no more than the relay would have let through. A sync between tabs moves
/// blocks of a few hundred bytes, 64 to a reply: 4 MiB/s is over 10,000 blocks a second, more
/// than a tab imports.
pub const INBOUND_BYTES_PER_SECOND: u64 = 4 * 1024 * 1024;
pub const INBOUND_BURST_BYTES: u64 = 8 * crate::protocol::MAX_FRAME_BYTES as u64;

/// A token bucket of bytes for what arrives over one link; a frame over the budget means the
/// peer floods (the driver then closes the link, and the relay's limits apply to it again).
#[derive(Clone, Debug)]
pub struct InboundBudget {
    bytes: u64,
    updated_ms: u64,
}

impl InboundBudget {
    pub fn new(now_ms: u64) -> InboundBudget {
        InboundBudget {
            bytes: INBOUND_BURST_BYTES,
            updated_ms: now_ms,
        }
    }
    /// Takes `bytes` from the budget; false when it does not hold them.
    pub fn take(&mut self, bytes: usize, now_ms: u64) -> bool {
        let elapsed = now_ms.saturating_sub(self.updated_ms);
        self.updated_ms = self.updated_ms.max(now_ms);
        self.bytes =
            (self.bytes + elapsed * INBOUND_BYTES_PER_SECOND / 1_000).min(INBOUND_BURST_BYTES);
        match self.bytes.checked_sub(bytes as u64) {
            Some(left) => {
                self.bytes = left;
                true
            }
            None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds every frame; returns the messages that came out.
    fn reassemble(frames: &[String]) -> Result<Vec<LinkFrame>, LinkFrameError> {
        let mut reassembler = Reassembler::default();
        let mut out = Vec::new();
        for frame in frames {
            out.extend(reassembler.push(frame)?);
        }
        assert!(!reassembler.is_partial(), "a message left half received");
        Ok(out)
    }

    #[test]
    fn messages_of_every_size_come_back_whole() {
        // Around the chunk size, the largest node message, and multi-byte characters that
        // straddle every chunk boundary (a name in a hello is free text).
        let cases = [
            String::new(),
            r#"{"type":"get_mempool"}"#.to_string(),
            "x".repeat(CHUNK_BYTES),
            "x".repeat(CHUNK_BYTES + 1),
            "y".repeat(3 * CHUNK_BYTES),
            "z".repeat(MAX_FRAME_BYTES),
            "é".repeat(CHUNK_BYTES),
            format!("a{}", "€".repeat(CHUNK_BYTES)),
            format!("ab{}", "🦀".repeat(CHUNK_BYTES / 2)),
        ];
        for payload in cases {
            let frames = split_message(&payload);
            for frame in &frames {
                assert!(
                    frame.len() <= MAX_LINK_FRAME_BYTES && frame.len() < 262_144,
                    "a frame of {} bytes for a payload of {}",
                    frame.len(),
                    payload.len()
                );
            }
            assert_eq!(
                frames.len() > 1,
                payload.len() > CHUNK_BYTES,
                "split only when needed ({} bytes)",
                payload.len()
            );
            assert_eq!(
                reassemble(&frames).unwrap(),
                vec![LinkFrame::Message(payload.clone())]
            );
        }
    }

    #[test]
    fn heartbeats_pass_between_chunks_and_carry_their_number() {
        let payload = "q".repeat(2 * CHUNK_BYTES + 5);
        let mut frames = split_message(&payload);
        frames.insert(1, ping(17));
        frames.insert(3, pong(u64::MAX));
        assert_eq!(
            reassemble(&frames).unwrap(),
            vec![
                LinkFrame::Ping(17),
                LinkFrame::Pong(u64::MAX),
                LinkFrame::Message(payload)
            ]
        );
    }

    #[test]
    fn malformed_and_oversized_frames_are_named() {
        let big = MAX_FRAME_BYTES + 1;
        let cases: Vec<(Vec<String>, LinkFrameError)> = vec![
            (vec![String::new()], LinkFrameError::Empty),
            (vec!["x{}".into()], LinkFrameError::UnknownKind('x')),
            (vec!["i".into()], LinkFrameError::BadTimestamp),
            (vec!["o-3".into()], LinkFrameError::BadTimestamp),
            (
                vec!["i99999999999999999999999".into()],
                LinkFrameError::BadTimestamp,
            ),
            (vec!["b12abc".into()], LinkFrameError::BadLength),
            (vec!["b:abc".into()], LinkFrameError::BadLength),
            (vec!["b+3:abc".into()], LinkFrameError::BadLength),
            (
                vec![format!("b{big}:x")],
                LinkFrameError::MessageTooLarge(big),
            ),
            (vec!["b2:abc".into()], LinkFrameError::Overrun),
            (vec!["b4:ab".into(), "cabc".into()], LinkFrameError::Overrun),
            (vec!["cabc".into()], LinkFrameError::UnexpectedChunk),
            (
                vec!["b4:ab".into(), "b4:ab".into()],
                LinkFrameError::Interrupted,
            ),
            (
                vec!["b4:ab".into(), "m{}".into()],
                LinkFrameError::Interrupted,
            ),
            (
                vec![format!("m{}", "x".repeat(MAX_LINK_FRAME_BYTES))],
                LinkFrameError::FrameTooLarge(MAX_LINK_FRAME_BYTES + 1),
            ),
        ];
        for (frames, expected) in cases {
            assert_eq!(reassemble(&frames), Err(expected), "{frames:?}");
        }
    }

    #[test]
    fn after_an_error_the_next_message_starts_clean() {
        let mut reassembler = Reassembler::default();
        assert!(reassembler.push("b10:abc").unwrap().is_none());
        assert!(reassembler.push("b4:ab").is_err());
        assert!(!reassembler.is_partial());
        assert_eq!(
            reassembler.push("m{}").unwrap(),
            Some(LinkFrame::Message("{}".into()))
        );
    }

    #[test]
    fn a_link_takes_its_burst_then_its_rate_and_no_more() {
        let mut budget = InboundBudget::new(1_000);
        let frame = CHUNK_BYTES;
        let burst_frames = (INBOUND_BURST_BYTES / frame as u64) as usize;
        for _ in 0..burst_frames {
            assert!(budget.take(frame, 1_000));
        }
        assert!(!budget.take(frame, 1_000), "the burst is spent");
        // A second later, one second's worth and not a byte more.
        let per_second = (INBOUND_BYTES_PER_SECOND / frame as u64) as usize;
        for _ in 0..per_second {
            assert!(budget.take(frame, 2_000));
        }
        assert!(!budget.take(frame, 2_000));
        // Idle for a minute: back to the burst, not beyond.
        let mut taken = 0;
        while budget.take(frame, 62_000) {
            taken += 1;
        }
        assert_eq!(taken, burst_frames);
    }
}
