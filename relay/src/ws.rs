//! The WebSocket framing of a peer connection (RFC 6455, server side), with buffers of fixed size.
//!
//! The relay used to run its peers on tungstenite's `WebSocketStream`. Three of its habits let one
//! client cost the relay memory without bound, and none can be configured away from outside:
//! - its read buffer reserves the whole length of every frame and keeps that capacity for the
//!   life of the connection, so one 1 MiB frame left 1 MiB behind on every connection that sent
//!   one;
//! - a fragmented message is assembled in a buffer that lives as long as the connection does,
//!   however slowly the fragments come;
//! - every ping is answered by moving its pong into the write buffer before the write is tried,
//!   and the write buffer is unbounded by default: a client that pings and never reads grew the
//!   relay by hundreds of MiB a second.
//!
//! Here the reader reads through one [`READ_BUFFER_BYTES`] buffer that never grows; a message is
//! assembled in its own allocation, sized by the bytes that actually arrived (never more than the
//! message-size limit), and handed over whole, so it is freed once forwarded; the caller sees when
//! a message started ([`FrameReader::assembling_since`]) and bounds how long one may take. The
//! writer gathers small frames in one [`WRITE_BUFFER_BYTES`] buffer and writes a large payload
//! straight from its shared bytes, so nothing grows with the size of a frame either. Pongs are
//! the caller's to send, one at a time, like any other frame.
//!
//! Neither half is cancel-safe by itself: a cancelled read ends the connection, and the writer
//! remembers when it was cancelled inside a frame ([`FrameWriter::is_mid_frame`]) so nothing is
//! written after half a frame.

use crate::budget::{IncomingBudget, IncomingHold};
use std::time::Duration;
use thiserror::Error;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio::time::{timeout_at, Instant};
use tokio_tungstenite::tungstenite::{Bytes, Utf8Bytes};

/// The reader's buffer: frame headers and small messages pass through it. 4 KiB holds any gossip
/// message in one read and keeps 10,000 idle connections at 40 MiB of read buffers (tungstenite's
/// default, 128 KiB, would be 1.3 GiB). It never grows: larger payloads are read into their own
/// message buffer.
pub(crate) const READ_BUFFER_BYTES: usize = 4 * 1024;
/// Small outgoing frames are gathered up to this size before a write system call; a frame that
/// does not fit is written straight from its own bytes. Fixed: it never grows, and it is held
/// only while there is something to write.
pub(crate) const WRITE_BUFFER_BYTES: usize = 8 * 1024;
/// RFC 6455 section 5.5: control frames carry at most 125 bytes.
const MAX_CONTROL_PAYLOAD: usize = 125;

const OP_CONTINUATION: u8 = 0x0;
const OP_TEXT: u8 = 0x1;
const OP_BINARY: u8 = 0x2;
const OP_CLOSE: u8 = 0x8;
const OP_PING: u8 = 0x9;
const OP_PONG: u8 = 0xA;

/// Close codes the relay sends (RFC 6455 section 7.4.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum CloseCode {
    Normal = 1000,
    Away = 1001,
    Protocol = 1002,
    Policy = 1008,
    Size = 1009,
    Again = 1013,
}

/// One thing that arrived from the peer.
#[derive(Debug)]
pub(crate) enum Incoming {
    /// A whole text message.
    Text(Utf8Bytes),
    /// A whole binary message (the relay accepts none; only its length is kept).
    Binary(usize),
    /// A ping, with its payload (at most 125 bytes), to be answered with a pong.
    Ping(Bytes),
    Pong,
    /// The peer's close frame, with its code if it sent one.
    Close(Option<u16>),
}

/// Why reading from the peer stopped.
#[derive(Debug, Error)]
pub(crate) enum ReadError {
    #[error("the connection ended without a close frame")]
    Eof,
    #[error("reading failed: {0}")]
    Io(#[from] std::io::Error),
    #[error("a message of {size} bytes or more exceeds the limit of {limit}")]
    TooLarge { size: u64, limit: usize },
    #[error("protocol violation: {0}")]
    Protocol(&'static str),
    #[error("a message took longer than the message timeout to arrive")]
    MessageTimeout,
}

/// A message being assembled from its frames.
struct Assembly {
    text: bool,
    bytes: Vec<u8>,
    started: Instant,
    /// The message's share of the relay-wide incoming budget, given back when it completes.
    hold: IncomingHold,
}

/// The reading half of a peer's WebSocket.
pub(crate) struct FrameReader {
    io: OwnedReadHalf,
    /// `buffer[start..end]` is read but not yet parsed. Its length is [`READ_BUFFER_BYTES`],
    /// or, until they are parsed, the bytes the HTTP server had read past the handshake.
    buffer: Vec<u8>,
    start: usize,
    end: usize,
    message: Option<Assembly>,
    max_message_bytes: usize,
    message_timeout: Duration,
    /// The relay-wide budget of bytes in messages being received, and the client address's share
    /// of it (see `budget`).
    budget: IncomingBudget,
    /// Bytes taken off the wire since the last [`FrameReader::take_wire_bytes`].
    wire_bytes: usize,
}

/// The writing half of a peer's WebSocket.
pub(crate) struct FrameWriter {
    io: OwnedWriteHalf,
    buffer: Vec<u8>,
    mid_frame: bool,
}

/// Splits an upgraded connection into its reader and writer. `already_read` holds bytes the HTTP
/// server read past the handshake (a client may send its first frame right behind it).
pub(crate) fn split(
    stream: TcpStream,
    already_read: &[u8],
    max_message_bytes: usize,
    message_timeout: Duration,
    budget: IncomingBudget,
) -> (FrameReader, FrameWriter) {
    let (read, write) = stream.into_split();
    let mut buffer = vec![0u8; READ_BUFFER_BYTES.max(already_read.len())];
    buffer[..already_read.len()].copy_from_slice(already_read);
    let reader = FrameReader {
        io: read,
        buffer,
        start: 0,
        end: already_read.len(),
        message: None,
        max_message_bytes,
        message_timeout,
        budget,
        wire_bytes: 0,
    };
    let writer = FrameWriter {
        io: write,
        buffer: Vec::new(),
        mid_frame: false,
    };
    (reader, writer)
}

impl FrameReader {
    /// When the message now being assembled began to arrive, if one is.
    pub(crate) fn assembling_since(&self) -> Option<Instant> {
        self.message.as_ref().map(|message| message.started)
    }

    /// Bytes of frames read since the last call, control frames and fragments included: what the
    /// peer spent, for its byte-rate limit.
    pub(crate) fn take_wire_bytes(&mut self) -> usize {
        std::mem::take(&mut self.wire_bytes)
    }

    /// Makes sure at least `wanted` unparsed bytes are in the buffer: at most a frame header (14
    /// bytes) or a control frame's payload (125), both far below the buffer's size.
    async fn fill(&mut self, wanted: usize) -> Result<(), ReadError> {
        while self.end - self.start < wanted {
            if self.start == self.end {
                self.start = 0;
                self.end = 0;
                if self.buffer.len() > READ_BUFFER_BYTES {
                    // The handshake's leftovers are parsed: back to the fixed size.
                    self.buffer = vec![0u8; READ_BUFFER_BYTES];
                }
            } else if self.buffer.len() - self.start < wanted {
                self.buffer.copy_within(self.start..self.end, 0);
                self.end -= self.start;
                self.start = 0;
            }
            let read = self.io.read(&mut self.buffer[self.end..]).await?;
            if read == 0 {
                return Err(ReadError::Eof);
            }
            self.end += read;
        }
        Ok(())
    }

    fn consume(&mut self, count: usize) {
        self.start += count;
        self.wire_bytes += count;
    }

    /// Reads until something whole arrives: a message, a control frame, the peer's close. Once a
    /// message has begun, everything up to its end must arrive within `message_timeout` of its
    /// first frame, control frames in between included.
    pub(crate) async fn next(&mut self) -> Result<Incoming, ReadError> {
        loop {
            let frame = match self.assembling_since() {
                Some(started) => timeout_at(started + self.message_timeout, self.next_frame())
                    .await
                    .map_err(|_| ReadError::MessageTimeout)?,
                None => self.next_frame().await,
            };
            match frame {
                Ok(Some(incoming)) => return Ok(incoming),
                Ok(None) => {}
                Err(error) => {
                    self.abandon_message();
                    return Err(error);
                }
            }
        }
    }

    /// Drops the message being assembled, if any, and gives its share of the budget back: the
    /// connection is ending and will read no more of it.
    pub(crate) fn abandon_message(&mut self) {
        self.message = None;
    }

    /// Reads one frame: `None` when it was a part of a message that is not complete yet.
    async fn next_frame(&mut self) -> Result<Option<Incoming>, ReadError> {
        self.fill(2).await?;
        let first = self.buffer[self.start];
        let second = self.buffer[self.start + 1];
        let fin = first & 0x80 != 0;
        if first & 0x70 != 0 {
            return Err(ReadError::Protocol("reserved bits are set"));
        }
        let opcode = first & 0x0F;
        if second & 0x80 == 0 {
            return Err(ReadError::Protocol("client frames must be masked"));
        }
        let length_bytes = match second & 0x7F {
            126 => 2,
            127 => 8,
            _ => 0,
        };
        let header_len = 2 + length_bytes + 4;
        self.fill(header_len).await?;
        let header = &self.buffer[self.start..self.start + header_len];
        let length: u64 = match length_bytes {
            0 => u64::from(second & 0x7F),
            2 => u64::from(u16::from_be_bytes([header[2], header[3]])),
            _ => u64::from_be_bytes(header[2..10].try_into().expect("eight bytes")),
        };
        let mask: [u8; 4] = header[header_len - 4..header_len]
            .try_into()
            .expect("four bytes");
        self.consume(header_len);

        match opcode {
            OP_CLOSE | OP_PING | OP_PONG => {
                if !fin {
                    return Err(ReadError::Protocol("control frames must not be fragmented"));
                }
                if length > MAX_CONTROL_PAYLOAD as u64 {
                    return Err(ReadError::Protocol(
                        "control frames carry at most 125 bytes",
                    ));
                }
                let length = length as usize;
                self.fill(length).await?;
                let mut payload = [0u8; MAX_CONTROL_PAYLOAD];
                payload[..length].copy_from_slice(&self.buffer[self.start..self.start + length]);
                self.consume(length);
                let payload = &mut payload[..length];
                apply_mask(payload, mask, 0);
                return match opcode {
                    OP_PING => Ok(Some(Incoming::Ping(Bytes::copy_from_slice(payload)))),
                    OP_PONG => Ok(Some(Incoming::Pong)),
                    _ => close_code(payload).map(|code| Some(Incoming::Close(code))),
                };
            }
            OP_TEXT | OP_BINARY => {
                if self.message.is_some() {
                    return Err(ReadError::Protocol(
                        "a new message began before the last one ended",
                    ));
                }
                self.check_size(0, length)?;
                self.message = Some(Assembly {
                    text: opcode == OP_TEXT,
                    bytes: Vec::new(),
                    started: Instant::now(),
                    hold: IncomingHold::default(),
                });
            }
            OP_CONTINUATION => {
                let Some(message) = &self.message else {
                    return Err(ReadError::Protocol(
                        "a continuation frame without a message",
                    ));
                };
                self.check_size(message.bytes.len(), length)?;
            }
            _ => return Err(ReadError::Protocol("unknown opcode")),
        }
        let started = self.assembling_since().expect("a message is open");
        timeout_at(
            started + self.message_timeout,
            self.read_payload(length as usize, mask),
        )
        .await
        .map_err(|_| ReadError::MessageTimeout)??;
        if fin {
            return self.finish().map(Some);
        }
        Ok(None)
    }

    fn check_size(&self, so_far: usize, length: u64) -> Result<(), ReadError> {
        let size = (so_far as u64).saturating_add(length);
        if size > self.max_message_bytes as u64 {
            return Err(ReadError::TooLarge {
                size,
                limit: self.max_message_bytes,
            });
        }
        Ok(())
    }

    /// Appends one frame's payload to the message. The message buffer grows with what arrives
    /// (doubling, capped at the frame's end), so a peer that announces a large frame and sends
    /// little of it holds little; each growth is first covered by the incoming budget.
    async fn read_payload(&mut self, length: usize, mask: [u8; 4]) -> Result<(), ReadError> {
        let Self {
            io,
            buffer,
            start,
            end,
            message,
            wire_bytes,
            budget,
            ..
        } = self;
        let Assembly { bytes, hold, .. } = message.as_mut().expect("a message is open");
        let buffered = (*end - *start).min(length);
        let first = length.min(buffered + READ_BUFFER_BYTES);
        hold.cover(budget, charged(bytes.len() + first)).await;
        bytes.reserve_exact(first);
        let from = bytes.len();
        bytes.extend_from_slice(&buffer[*start..*start + buffered]);
        apply_mask(&mut bytes[from..], mask, 0);
        *start += buffered;
        *wire_bytes += buffered;
        let mut offset = buffered;
        while offset < length {
            let remaining = length - offset;
            if bytes.capacity() == bytes.len() {
                let grow = remaining.min(bytes.len().max(READ_BUFFER_BYTES));
                hold.cover(budget, charged(bytes.len() + grow)).await;
                bytes.reserve_exact(grow);
            }
            let room = (bytes.capacity() - bytes.len()).min(remaining);
            let from = bytes.len();
            bytes.resize(from + room, 0);
            let read = io.read(&mut bytes[from..]).await?;
            bytes.truncate(from + read);
            if read == 0 {
                return Err(ReadError::Eof);
            }
            apply_mask(&mut bytes[from..], mask, offset);
            offset += read;
            *wire_bytes += read;
        }
        Ok(())
    }

    fn finish(&mut self) -> Result<Incoming, ReadError> {
        let message = self.message.take().expect("a message is open");
        if !message.text {
            return Ok(Incoming::Binary(message.bytes.len()));
        }
        let text = String::from_utf8(message.bytes)
            .map_err(|_| ReadError::Protocol("a text message is not valid UTF-8"))?;
        Ok(Incoming::Text(Utf8Bytes::from(text)))
    }

    /// After the relay has said goodbye: reads and discards until the peer closes too, at most
    /// `max_bytes`, so the kernel does not reset the connection and destroy the close frame in
    /// flight (as it does when unread data is left behind).
    pub(crate) async fn discard(&mut self, max_bytes: usize) {
        let mut total = 0;
        self.start = 0;
        self.end = 0;
        while total < max_bytes {
            match self.io.read(&mut self.buffer[..]).await {
                Ok(0) | Err(_) => return,
                Ok(read) => total += read,
            }
        }
    }
}

/// The part of a message buffer of `capacity` bytes charged to the relay-wide budget: the first
/// [`READ_BUFFER_BYTES`] of every message are part of the connection's fixed cost (counted per
/// connection in `docs/deploy.md`), so ordinary gossip never touches the shared budget.
fn charged(capacity: usize) -> usize {
    capacity.saturating_sub(READ_BUFFER_BYTES)
}

/// The code of a close frame's payload (RFC 6455 section 5.5.1).
fn close_code(payload: &[u8]) -> Result<Option<u16>, ReadError> {
    match payload {
        [] => Ok(None),
        [_] => Err(ReadError::Protocol("a close frame with a one-byte payload")),
        [high, low, reason @ ..] => {
            if std::str::from_utf8(reason).is_err() {
                return Err(ReadError::Protocol("a close reason is not valid UTF-8"));
            }
            Ok(Some(u16::from_be_bytes([*high, *low])))
        }
    }
}

/// XORs `data` with the mask, `offset` bytes into the frame's payload.
fn apply_mask(data: &mut [u8], mask: [u8; 4], offset: usize) {
    let mut rotated = [0u8; 4];
    for (index, byte) in rotated.iter_mut().enumerate() {
        *byte = mask[(offset + index) % 4];
    }
    let word = u64::from_ne_bytes([
        rotated[0], rotated[1], rotated[2], rotated[3], rotated[0], rotated[1], rotated[2],
        rotated[3],
    ]);
    let mut chunks = data.chunks_exact_mut(8);
    for chunk in &mut chunks {
        let value = u64::from_ne_bytes(chunk.try_into().expect("eight bytes")) ^ word;
        chunk.copy_from_slice(&value.to_ne_bytes());
    }
    for (index, byte) in chunks.into_remainder().iter_mut().enumerate() {
        *byte ^= rotated[index % 4];
    }
}

impl FrameWriter {
    /// True when a write was cancelled inside a frame: the stream can carry nothing more.
    pub(crate) fn is_mid_frame(&self) -> bool {
        self.mid_frame
    }

    /// Queues a text frame; written when the buffer fills or on [`FrameWriter::flush`].
    pub(crate) async fn text(&mut self, payload: &[u8]) -> std::io::Result<()> {
        self.frame(OP_TEXT, payload).await
    }

    pub(crate) async fn ping(&mut self) -> std::io::Result<()> {
        self.frame(OP_PING, &[]).await
    }

    pub(crate) async fn pong(&mut self, payload: &[u8]) -> std::io::Result<()> {
        self.frame(OP_PONG, &payload[..payload.len().min(MAX_CONTROL_PAYLOAD)])
            .await
    }

    /// Queues a close frame; the reason is cut to what a control frame can carry.
    pub(crate) async fn close(&mut self, code: CloseCode, reason: &str) -> std::io::Result<()> {
        let mut payload = Vec::with_capacity(MAX_CONTROL_PAYLOAD);
        payload.extend_from_slice(&(code as u16).to_be_bytes());
        payload.extend_from_slice(truncate_utf8(reason, MAX_CONTROL_PAYLOAD - 2).as_bytes());
        self.frame(OP_CLOSE, &payload).await
    }

    /// Echoes the peer's close frame (RFC 6455 section 5.5.1).
    pub(crate) async fn close_reply(&mut self, code: Option<u16>) -> std::io::Result<()> {
        let payload = code.map(u16::to_be_bytes);
        self.frame(OP_CLOSE, payload.as_ref().map_or(&[][..], |code| &code[..]))
            .await
    }

    async fn frame(&mut self, opcode: u8, payload: &[u8]) -> std::io::Result<()> {
        let mut header = [0u8; 10];
        header[0] = 0x80 | opcode;
        let header_len = match payload.len() {
            length @ 0..=125 => {
                header[1] = length as u8;
                2
            }
            length @ 126..=0xFFFF => {
                header[1] = 126;
                header[2..4].copy_from_slice(&(length as u16).to_be_bytes());
                4
            }
            length => {
                header[1] = 127;
                header[2..10].copy_from_slice(&(length as u64).to_be_bytes());
                10
            }
        };
        let total = header_len + payload.len();
        if self.buffer.len() + total > WRITE_BUFFER_BYTES {
            self.write_buffer().await?;
        }
        if self.buffer.capacity() == 0 {
            // Taken when there is something to write, given back when the writer goes idle.
            self.buffer.reserve_exact(WRITE_BUFFER_BYTES);
        }
        self.buffer.extend_from_slice(&header[..header_len]);
        if total <= WRITE_BUFFER_BYTES {
            self.buffer.extend_from_slice(payload);
            return Ok(());
        }
        // Too large to gather: the header goes out, then the payload from its own bytes.
        self.mid_frame = true;
        self.write_buffer().await?;
        self.io.write_all(payload).await?;
        self.mid_frame = false;
        Ok(())
    }

    async fn write_buffer(&mut self) -> std::io::Result<()> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        self.mid_frame = true;
        self.io.write_all(&self.buffer).await?;
        self.mid_frame = false;
        self.buffer.clear();
        Ok(())
    }

    /// Writes everything queued, and gives the buffer back: most connections are idle most of the
    /// time, and an idle connection then holds no write buffer at all.
    pub(crate) async fn flush(&mut self) -> std::io::Result<()> {
        self.write_buffer().await?;
        self.buffer = Vec::new();
        self.io.flush().await
    }

    /// Sends FIN: the relay will write nothing more.
    pub(crate) async fn shutdown(&mut self) {
        let _ = self.io.shutdown().await;
    }
}

/// The longest prefix of `text` of at most `max` bytes that ends on a character boundary.
pub(crate) fn truncate_utf8(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masking_at_any_offset_matches_byte_by_byte() {
        let mask = [0x6d, 0xb6, 0xb2, 0x80];
        let data: Vec<u8> = (0..=255u8).collect();
        for offset in 0..8 {
            for len in [0, 1, 7, 8, 9, 63, 200] {
                let mut fast = data[..len].to_vec();
                apply_mask(&mut fast, mask, offset);
                let slow: Vec<u8> = data[..len]
                    .iter()
                    .enumerate()
                    .map(|(index, byte)| byte ^ mask[(offset + index) % 4])
                    .collect();
                assert_eq!(fast, slow, "offset {offset}, len {len}");
            }
        }
    }

    #[test]
    fn truncation_keeps_whole_characters() {
        assert_eq!(truncate_utf8("abc", 10), "abc");
        assert_eq!(truncate_utf8("abcdef", 3), "abc");
        assert_eq!(truncate_utf8("aé", 2), "a");
    }
}
