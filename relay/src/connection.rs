//! One peer's WebSocket, from the upgrade to the last byte.
//!
//! Each connection is one task running two halves side by side: the reader checks each frame
//! (rate, bytes, size, envelope) and hands it to the [`RoomHub`]; the writer drains the peer's
//! [`Outbox`], answers pings and pings in turn. Whatever ends first (the peer leaving, a broken
//! rule, an overflowing outbox, the relay shutting down) decides the [`DisconnectReason`]; the
//! writer is then let finish the frames it has begun, so [`close`] can say goodbye in well-formed
//! frames with the matching close code. (The relay used to drop its writer wherever it was, in
//! the middle of a fragmented message, and then send its error frame: a client saw a new text
//! frame where it expected a continuation and reported a protocol error instead of the goodbye.)
//!
//! The relay never parses a payload: it parses the envelope around it and forwards the payload's
//! raw JSON text.

use crate::admission::SocketSlot;
use crate::budget::{AddressShare, IncomingBudget};
use crate::hub::{JoinError, RoomName, Undelivered};
use crate::metrics::DisconnectReason;
use crate::outbox::{Outbox, OutboxLimits};
use crate::rate::{RateLimiter, RateLimits, Verdict};
use crate::ws::{self, CloseCode, FrameReader, FrameWriter, Incoming, ReadError};
use crate::Relay;
use shared::protocol::{
    ClientFrame, ClientFrameKind, IceServer, PeerId, RelayErrorCode, RelayFrame,
};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;
use tokio::time::{timeout, timeout_at, Instant};
use tokio_tungstenite::tungstenite::{Bytes, Utf8Bytes};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, Instrument};

/// A peer's WebSocket after the handshake: its two halves.
pub(crate) struct PeerSocket {
    pub(crate) reader: FrameReader,
    pub(crate) writer: FrameWriter,
}

impl PeerSocket {
    pub(crate) fn new(
        stream: tokio::net::TcpStream,
        already_read: &[u8],
        max_message_bytes: usize,
        message_timeout: Duration,
        budget: IncomingBudget,
    ) -> PeerSocket {
        let (reader, writer) = ws::split(
            stream,
            already_read,
            max_message_bytes,
            message_timeout,
            budget,
        );
        PeerSocket { reader, writer }
    }
}

/// Frames the writer takes from the outbox per flush: enough to make one system call carry many
/// small messages, few enough that the batch vector stays small.
const WRITE_BATCH_MESSAGES: usize = 32;
/// Time for the last frames and the close frame to reach a peer before the relay stops trying.
const CLOSE_GRACE: Duration = Duration::from_secs(1);
/// After the close frame the relay half-closes the TCP connection and reads until the peer closes
/// too, discarding what arrives, so the kernel does not reset the connection and destroy the close
/// frame in flight (as it does when unread data is left behind). Bounded in time and in bytes.
const LINGER: Duration = Duration::from_secs(2);
/// Shorter at shutdown, so a restart is quick: live peers answer a close frame in milliseconds,
/// and the wait ends when they do. 500 ms once cut off a test client on a loaded machine before
/// it had read the close frame (the reset destroyed it).
const SHUTDOWN_LINGER: Duration = Duration::from_millis(1_500);
const LINGER_MAX_BYTES: usize = 2 * shared::protocol::MAX_FRAME_BYTES;
/// Longest `message` text of an error frame. Errors quote what was wrong (serde names an unknown
/// `type`), and what was wrong is the peer's input: cut, it cannot make the relay echo a 900 KB
/// frame back.
pub(crate) const MAX_ERROR_MESSAGE_BYTES: usize = 256;

/// What the reader and the writer share about control frames: the pong owed to the peer (only
/// the latest ping is answered, so pings never queue) and whether the relay's own ping is still
/// unanswered (only a pong to it proves the peer reads).
#[derive(Default)]
struct Control {
    pong: Mutex<Option<Bytes>>,
    pong_due: Notify,
    ping_outstanding: AtomicBool,
}

impl Control {
    fn owe_pong(&self, payload: Bytes) {
        *self
            .pong
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(payload);
        self.pong_due.notify_one();
    }

    async fn pong_owed(&self) -> Bytes {
        loop {
            if let Some(payload) = self
                .pong
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .take()
            {
                return payload;
            }
            self.pong_due.notified().await;
        }
    }
}

/// What a peer asked to join with, as the handshake found it.
pub(crate) struct Joining {
    pub(crate) room: RoomName,
    pub(crate) remote: Option<std::net::IpAddr>,
    /// The id of its resume token, if it brought one.
    pub(crate) resumed: Option<PeerId>,
    /// What its `welcome` lists for direct links.
    pub(crate) ice_servers: Vec<IceServer>,
    /// Its client address's share of the memory budgets (the forwarded client behind a proxy).
    pub(crate) share: Option<Arc<AddressShare>>,
}

/// Runs a connection that holds a connection slot: joins the room, relays, leaves.
pub(crate) async fn serve(
    relay: Arc<Relay>,
    socket: PeerSocket,
    joining: Joining,
    _slot: SocketSlot,
) {
    let Joining {
        room,
        remote,
        resumed,
        ice_servers,
        share,
    } = joining;
    // A tab that brings a resume token keeps its id across reconnections; others get a new one.
    let peer = resumed.unwrap_or_else(|| PeerId::from_bytes(rand::random()));
    let span = tracing::info_span!("peer", peer = peer.short(), room = room.as_str());
    async move {
        let outbox = Outbox::new(OutboxLimits {
            max_messages: relay.config.peer_queue_messages,
            max_bytes: relay.config.peer_queue_bytes,
        });
        if relay.shutdown.is_cancelled() {
            close(socket, DisconnectReason::Shutdown, &outbox, None).await;
            return;
        }
        if let Err(JoinError::RoomFull) = relay
            .hub
            .join(&room, &peer, ice_servers, outbox.clone())
            .await
        {
            info!("room full; turned away");
            relay.metrics.reject(crate::metrics::Rejection::RoomFull);
            refuse(socket, RelayErrorCode::RoomFull).await;
            return;
        }
        relay.metrics.connections_total.inc();
        relay
            .metrics
            .connections_open
            .fetch_add(1, Ordering::Relaxed);
        match remote {
            Some(remote) => info!(%remote, "joined"),
            None => info!("joined"),
        }

        let PeerSocket {
            mut reader,
            mut writer,
        } = socket;
        let control = Control::default();
        let stop = CancellationToken::new();
        let mut peer_close = None;
        let reason = {
            let write = write_frames(&relay, &mut writer, &outbox, &control, &stop);
            tokio::pin!(write);
            let member = Member {
                room: &room,
                peer: &peer,
                share: share.as_ref(),
            };
            let read = read_frames(
                &relay,
                member,
                &mut reader,
                &outbox,
                &control,
                &mut peer_close,
            );
            let (reason, writer_ended) = tokio::select! {
                reason = read => (reason, false),
                reason = &mut write => (reason.unwrap_or(DisconnectReason::WriteError), true),
                () = outbox.overflowed() => (DisconnectReason::SlowConsumer, false),
                () = outbox.replaced() => (DisconnectReason::Replaced, false),
                () = relay.shutdown.cancelled() => (DisconnectReason::Shutdown, false),
            };
            // Leave first, so the others hear `peer_left` without waiting for the goodbye.
            relay.hub.leave(&room, &peer, &outbox);
            relay.metrics.disconnect(reason);
            relay
                .metrics
                .connections_open
                .fetch_sub(1, Ordering::Relaxed);
            info!(reason = reason.as_str(), "left");
            if !writer_ended {
                // The writer finishes the frames it has taken (never half a frame), so the
                // goodbye follows whole frames. A peer that reads too little for that gets none.
                stop.cancel();
                let _ = timeout(CLOSE_GRACE, &mut write).await;
            }
            reason
        };
        close(PeerSocket { reader, writer }, reason, &outbox, peer_close).await;
    }
    .instrument(span)
    .await
}

/// Turns away a connection that cannot have a slot or a room: an error frame, then close 1013
/// ("try again later").
pub(crate) async fn refuse(socket: PeerSocket, code: RelayErrorCode) {
    let PeerSocket {
        mut reader,
        mut writer,
    } = socket;
    let goodbye = async {
        writer
            .text(error_frame(code, refusal_text(code)).as_bytes())
            .await?;
        writer.close(CloseCode::Again, code.as_str()).await?;
        writer.flush().await
    };
    let _ = timeout(CLOSE_GRACE, goodbye).await;
    linger(&mut reader, &mut writer, LINGER).await;
}

fn refusal_text(code: RelayErrorCode) -> &'static str {
    match code {
        RelayErrorCode::ServerFull => {
            "the relay has as many connections as it allows; try again later"
        }
        RelayErrorCode::RoomFull => {
            "the room has as many peers as it allows; try another room or later"
        }
        _ => "refused",
    }
}

fn error_frame(code: RelayErrorCode, message: &str) -> Utf8Bytes {
    Utf8Bytes::from(
        RelayFrame::Error {
            code,
            message: ws::truncate_utf8(message, MAX_ERROR_MESSAGE_BYTES).to_owned(),
        }
        .to_json(),
    )
}

/// Queues an error frame for the peer, counted in the queued-bytes budget like forwarded frames
/// (a peer that provokes errors and never reads them must not be a way around it); dropped when
/// the budget is spent.
fn queue_error(
    relay: &Relay,
    share: Option<&Arc<AddressShare>>,
    outbox: &Outbox,
    code: RelayErrorCode,
    message: &str,
) {
    let frame = RelayFrame::Error {
        code,
        message: ws::truncate_utf8(message, MAX_ERROR_MESSAGE_BYTES).to_owned(),
    }
    .to_json();
    if let Some(frame) = relay.budgets.queued_frame(frame, share) {
        outbox.push(frame);
    }
}

/// Who a connection's frames come from: its room, its id, its address's share of the budgets.
#[derive(Clone, Copy)]
struct Member<'a> {
    room: &'a RoomName,
    peer: &'a PeerId,
    share: Option<&'a Arc<AddressShare>>,
}

/// Reads and handles the peer's frames until a rule ends the connection. A close frame from the
/// peer is kept in `peer_close` (its code, if any) so the goodbye can echo it.
async fn read_frames(
    relay: &Relay,
    member: Member<'_>,
    reader: &mut FrameReader,
    outbox: &Outbox,
    control: &Control,
    peer_close: &mut Option<Option<u16>>,
) -> DisconnectReason {
    let Member { room, peer, share } = member;
    let config = &relay.config;
    let metrics = &relay.metrics;
    let mut limiter = RateLimiter::new(
        RateLimits {
            frames_per_second: config.rate_per_second,
            frame_burst: config.rate_burst,
            bytes_per_second: config.byte_rate_per_second,
            byte_burst: config.byte_burst,
            flood_limit: config.flood_drops_before_disconnect,
        },
        Instant::now(),
    );
    let mut malformed = 0u32;
    // The last time the peer proved it is there and reads: a pong to the relay's ping.
    let mut heard = Instant::now();
    loop {
        // The reader bounds each message by the message timeout itself.
        let incoming = match timeout_at(heard + config.idle_timeout, reader.next()).await {
            Err(_) => return DisconnectReason::IdleTimeout,
            Ok(Err(error)) => return read_error_reason(&error),
            Ok(Ok(incoming)) => incoming,
        };
        let wire_bytes = reader.take_wire_bytes();
        match &incoming {
            Incoming::Close(code) => {
                *peer_close = Some(*code);
                return DisconnectReason::ClientClosed;
            }
            Incoming::Text(text) => {
                metrics.messages_in.inc();
                metrics.bytes_in.add(text.len() as u64);
            }
            Incoming::Binary(length) => {
                metrics.messages_in.inc();
                metrics.bytes_in.add(*length as u64);
            }
            Incoming::Ping(_) | Incoming::Pong => {}
        }
        let now = Instant::now();
        // Every frame pays, control frames included: a ping costs the relay a pong.
        match limiter.check(wire_bytes, now) {
            Verdict::Accept => {}
            Verdict::DropAndWarn => {
                metrics.dropped_rate_limited.inc();
                debug!("rate limited");
                queue_error(
                    relay,
                    share,
                    outbox,
                    RelayErrorCode::RateLimited,
                    "too many frames or bytes; this one was dropped",
                );
                continue;
            }
            Verdict::Drop => {
                metrics.dropped_rate_limited.inc();
                continue;
            }
            Verdict::Disconnect => return DisconnectReason::RateFlood,
        }
        if outbox.is_replaced() {
            // The id is the newer connection's now: nothing more goes out in its name from here.
            return DisconnectReason::Replaced;
        }
        let verdict = match incoming {
            Incoming::Text(text) => forward(relay, share, room, peer, &text),
            Incoming::Binary(_) => Err(Refusal::Malformed(
                "frames are JSON text; binary frames are not accepted".to_owned(),
            )),
            Incoming::Ping(payload) => {
                control.owe_pong(payload);
                continue;
            }
            Incoming::Pong => {
                // An unsolicited pong proves nothing; the answer to the relay's ping does.
                if control.ping_outstanding.swap(false, Ordering::Relaxed) {
                    heard = now;
                }
                continue;
            }
            Incoming::Close(_) => return DisconnectReason::ClientClosed,
        };
        match verdict {
            Ok(()) => {}
            Err(Refusal::Busy) => {
                metrics.dropped_relay_busy.inc();
                queue_error(
                    relay,
                    share,
                    outbox,
                    RelayErrorCode::RateLimited,
                    "the relay holds as much queued data as it allows; this frame was dropped",
                );
            }
            Err(Refusal::ReceiverBusy) => {
                metrics.dropped_receiver_busy.inc();
                queue_error(
                    relay,
                    share,
                    outbox,
                    RelayErrorCode::RateLimited,
                    "that peer has as much waiting for it alone as it takes; this frame was dropped",
                );
            }
            Err(Refusal::UnknownPeer) => {
                metrics.dropped_unknown_peer.inc();
                queue_error(
                    relay,
                    share,
                    outbox,
                    RelayErrorCode::UnknownPeer,
                    "no peer with that id is in this room",
                );
            }
            Err(Refusal::Malformed(why)) => {
                metrics.dropped_malformed.inc();
                malformed += 1;
                debug!(
                    error = ws::truncate_utf8(&why, MAX_ERROR_MESSAGE_BYTES),
                    count = malformed,
                    "malformed envelope"
                );
                if malformed >= config.max_malformed_frames {
                    return DisconnectReason::TooManyErrors;
                }
                queue_error(
                    relay,
                    share,
                    outbox,
                    RelayErrorCode::MalformedEnvelope,
                    &why,
                );
            }
        }
    }
}

enum Refusal {
    Malformed(String),
    UnknownPeer,
    /// The queued-bytes budget is spent (see `budget`).
    Busy,
    /// The receiver has as much waiting for it alone as it takes (see `outbox`).
    ReceiverBusy,
}

impl From<Undelivered> for Refusal {
    fn from(undelivered: Undelivered) -> Refusal {
        match undelivered {
            Undelivered::UnknownPeer => Refusal::UnknownPeer,
            Undelivered::ReceiverBusy => Refusal::ReceiverBusy,
        }
    }
}

/// Parses the envelope of one text frame and hands the payload, unparsed, to the hub.
fn forward(
    relay: &Relay,
    share: Option<&Arc<AddressShare>>,
    room: &RoomName,
    peer: &PeerId,
    text: &str,
) -> Result<(), Refusal> {
    let frame: ClientFrame =
        serde_json::from_str(text).map_err(|error| Refusal::Malformed(error.to_string()))?;
    match (frame.kind, frame.to) {
        (ClientFrameKind::Broadcast, None) => {
            let message = counted(relay, share, RelayFrame::message_json(peer, &frame.payload))?;
            relay.hub.broadcast(room, peer, message);
            Ok(())
        }
        (ClientFrameKind::Send, Some(to)) => {
            let message = counted(relay, share, RelayFrame::message_json(peer, &frame.payload))?;
            relay
                .hub
                .send_to(room, peer, &to, message)
                .map_err(Refusal::from)
        }
        (ClientFrameKind::Signal, Some(to)) => {
            // Routed exactly like `send`, only wrapped as a `signal` frame, and counted apart so
            // an operator can see how much of the traffic sets up direct links.
            let signal = counted(relay, share, RelayFrame::signal_json(peer, &frame.payload))?;
            relay
                .hub
                .send_to(room, peer, &to, signal)
                .map_err(Refusal::from)?;
            relay.metrics.signal_frames.inc();
            relay.metrics.signal_bytes.add(text.len() as u64);
            Ok(())
        }
        (ClientFrameKind::Broadcast, Some(_)) => Err(Refusal::Malformed(
            "`broadcast` goes to the whole room and takes no `to`".to_owned(),
        )),
        (ClientFrameKind::Send, None) => Err(Refusal::Malformed(
            "`send` needs `to`, the peer id to deliver to".to_owned(),
        )),
        (ClientFrameKind::Signal, None) => Err(Refusal::Malformed(
            "`signal` needs `to`, the peer id to deliver to".to_owned(),
        )),
    }
}

/// A forwarded frame, counted in the relay's queued-bytes budget while any receiver holds it.
fn counted(
    relay: &Relay,
    share: Option<&Arc<AddressShare>>,
    message: String,
) -> Result<Utf8Bytes, Refusal> {
    relay
        .budgets
        .queued_frame(message, share)
        .ok_or(Refusal::Busy)
}

fn read_error_reason(error: &ReadError) -> DisconnectReason {
    match error {
        ReadError::TooLarge { .. } => DisconnectReason::FrameTooLarge,
        ReadError::MessageTimeout => DisconnectReason::MessageTimeout,
        ReadError::Eof | ReadError::Io(_) => DisconnectReason::ConnectionLost,
        ReadError::Protocol(why) => {
            debug!(error = why, "protocol error");
            DisconnectReason::ProtocolError
        }
    }
}

/// Writes what the outbox holds, answers pings and pings on schedule, until writing fails
/// (`Some(WriteError)`) or `stop` is cancelled (`None`, between frames).
async fn write_frames(
    relay: &Relay,
    writer: &mut FrameWriter,
    outbox: &Outbox,
    control: &Control,
    stop: &CancellationToken,
) -> Option<DisconnectReason> {
    enum Step {
        Pong(Bytes),
        Batch,
        Ping,
    }
    let interval = relay.config.ping_interval;
    let mut ping = tokio::time::interval_at(Instant::now() + interval, interval);
    ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut batch = Vec::new();
    loop {
        let step = tokio::select! {
            biased;
            () = stop.cancelled() => return None,
            payload = control.pong_owed() => Step::Pong(payload),
            () = outbox.take(&mut batch, WRITE_BATCH_MESSAGES) => Step::Batch,
            _ = ping.tick() => Step::Ping,
        };
        // A step is never cut short by `stop`: it ends between frames.
        let written = match step {
            Step::Pong(payload) => match writer.pong(&payload).await {
                Ok(()) => writer.flush().await,
                Err(error) => Err(error),
            },
            Step::Ping => {
                // Marked before it goes out, so a quick pong cannot arrive before the mark.
                control.ping_outstanding.store(true, Ordering::Relaxed);
                match writer.ping().await {
                    Ok(()) => writer.flush().await,
                    Err(error) => Err(error),
                }
            }
            Step::Batch => {
                let messages = batch.len();
                let bytes: usize = batch.iter().map(|frame| frame.len()).sum();
                let mut result = Ok(());
                for frame in batch.drain(..) {
                    result = writer.text(frame.as_bytes()).await;
                    if result.is_err() {
                        break;
                    }
                }
                let result = match result {
                    Ok(()) => writer.flush().await,
                    Err(error) => Err(error),
                };
                outbox.written(messages, bytes);
                relay.metrics.messages_out.add(messages as u64);
                relay.metrics.bytes_out.add(bytes as u64);
                result
            }
        };
        if let Err(error) = written {
            debug!(error = %error, "write failed");
            return Some(DisconnectReason::WriteError);
        }
    }
}

/// Says goodbye in the way `reason` calls for, then lingers so the close frame arrives.
async fn close(
    socket: PeerSocket,
    reason: DisconnectReason,
    outbox: &Outbox,
    peer_close: Option<Option<u16>>,
) {
    let PeerSocket {
        mut reader,
        mut writer,
    } = socket;
    // A half-received message is of no use any more; its memory goes back before the goodbye.
    reader.abandon_message();
    let goodbye: Option<(Option<RelayErrorCode>, CloseCode)> = match reason {
        DisconnectReason::ClientClosed
        | DisconnectReason::ConnectionLost
        | DisconnectReason::WriteError => None,
        // A peer that breaks the protocol is told so, in case it is a buggy client worth fixing.
        DisconnectReason::ProtocolError => Some((None, CloseCode::Protocol)),
        DisconnectReason::FrameTooLarge => {
            Some((Some(RelayErrorCode::FrameTooLarge), CloseCode::Size))
        }
        DisconnectReason::TooManyErrors => {
            Some((Some(RelayErrorCode::TooManyErrors), CloseCode::Policy))
        }
        DisconnectReason::RateFlood => Some((Some(RelayErrorCode::RateLimited), CloseCode::Policy)),
        DisconnectReason::SlowConsumer => {
            Some((Some(RelayErrorCode::SlowConsumer), CloseCode::Policy))
        }
        DisconnectReason::MessageTimeout => Some((None, CloseCode::Policy)),
        DisconnectReason::IdleTimeout => Some((None, CloseCode::Normal)),
        DisconnectReason::Shutdown => Some((None, CloseCode::Away)),
        DisconnectReason::Replaced => Some((Some(RelayErrorCode::Replaced), CloseCode::Policy)),
    };
    let polite = async {
        if writer.is_mid_frame() {
            // Half a frame went out: nothing more can be framed after it.
            return Ok(());
        }
        match goodbye {
            None => {
                if let Some(code) = peer_close {
                    writer.close_reply(code).await?;
                }
                writer.flush().await
            }
            Some((error, close_code)) => {
                // Frames queued before the verdict (earlier error frames) still go out first.
                for frame in outbox.drain_now() {
                    writer.text(frame.as_bytes()).await?;
                }
                if let Some(code) = error {
                    writer
                        .text(error_frame(code, disconnect_text(reason)).as_bytes())
                        .await?;
                }
                // The close reason names the error code when there is one, so a client can
                // match it like an error frame.
                let close_reason = error.map_or(reason.as_str(), RelayErrorCode::as_str);
                writer.close(close_code, close_reason).await?;
                writer.flush().await
            }
        }
    };
    if let Ok(Err(error)) = timeout(CLOSE_GRACE, polite).await {
        debug!(error = %error, "goodbye not delivered");
    }
    let linger_for = if reason == DisconnectReason::Shutdown {
        SHUTDOWN_LINGER
    } else {
        LINGER
    };
    linger(&mut reader, &mut writer, linger_for).await;
}

fn disconnect_text(reason: DisconnectReason) -> &'static str {
    match reason {
        DisconnectReason::FrameTooLarge => "a frame exceeded the size limit; closing",
        DisconnectReason::TooManyErrors => "too many malformed frames; closing",
        DisconnectReason::RateFlood => "kept sending above the rate limit; closing",
        DisconnectReason::SlowConsumer => "you read too slowly and your queue filled; closing",
        DisconnectReason::Replaced => {
            "a newer connection presented your resume token and took your peer id; closing"
        }
        _ => "closing",
    }
}

/// Half-closes and reads what the peer still sends until it closes too, within bounds.
async fn linger(reader: &mut FrameReader, writer: &mut FrameWriter, duration: Duration) {
    let drain = async {
        writer.shutdown().await;
        reader.discard(LINGER_MAX_BYTES).await;
    };
    let _ = timeout(duration, drain).await;
}
