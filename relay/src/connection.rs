//! One peer's WebSocket, from the upgrade to the last byte.
//!
//! Each connection is one task running two halves side by side: the reader checks each frame
//! (rate, size, envelope) and hands it to the [`RoomHub`]; the writer drains the peer's
//! [`Outbox`] and pings. Whatever ends first (the peer leaving, a broken rule, an overflowing
//! outbox, the relay shutting down) decides the [`DisconnectReason`], and [`close`] says goodbye
//! with the matching close code before the peer leaves its room.
//!
//! The relay never parses a payload: it parses the envelope around it and forwards the payload's
//! raw JSON text.

use crate::hub::{JoinError, RoomName};
use crate::metrics::DisconnectReason;
use crate::outbox::{Outbox, OutboxLimits};
use crate::rate::{RateLimiter, Verdict};
use crate::Relay;
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use shared::protocol::{ClientFrame, ClientFrameKind, PeerId, RelayErrorCode, RelayFrame};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::OwnedSemaphorePermit;
use tokio::time::{timeout, Instant};
use tokio_tungstenite::tungstenite::error::{Error as WsError, ProtocolError};
use tokio_tungstenite::tungstenite::protocol::frame::coding::{CloseCode, Data, OpCode};
use tokio_tungstenite::tungstenite::protocol::frame::Frame;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, WebSocketConfig};
use tokio_tungstenite::tungstenite::{Bytes, Message, Utf8Bytes};
use tokio_tungstenite::WebSocketStream;
use tracing::{debug, info, Instrument};

pub(crate) type Socket = WebSocketStream<TcpStream>;

/// tungstenite allocates its read buffer up front for every connection. 4 KiB holds any gossip
/// message in one read and keeps 10,000 idle connections at 40 MiB of read buffers (the default,
/// 128 KiB, would be 1.3 GiB). Larger messages grow the buffer as they arrive.
pub(crate) const READ_BUFFER_BYTES: usize = 4 * 1024;
/// Small outgoing frames are gathered up to this size before a write system call.
const WRITE_BUFFER_BYTES: usize = 8 * 1024;
/// Outgoing messages larger than this go out as WebSocket fragments of this size. tungstenite's
/// write buffer keeps the capacity of the largest frame it ever held; fragmenting keeps a peer
/// that once received a 1 MiB block from holding 1 MiB forever. Clients reassemble fragments.
const FRAGMENT_BYTES: usize = 8 * 1024;
/// Frames the writer takes from the outbox per flush: enough to make one system call carry many
/// small messages, few enough that the batch vector stays small.
const WRITE_BATCH_MESSAGES: usize = 32;
/// Time for the last frames and the close frame to reach a peer before the relay stops trying.
const CLOSE_GRACE: Duration = Duration::from_secs(1);
/// After the close frame the relay half-closes the TCP connection and reads until the peer closes
/// too, discarding what arrives, so the kernel does not reset the connection and destroy the close
/// frame in flight (as it does when unread data is left behind). Bounded in time and in bytes.
const LINGER: Duration = Duration::from_secs(2);
/// Shorter at shutdown, so a restart is quick: live peers answer a close frame in milliseconds.
const SHUTDOWN_LINGER: Duration = Duration::from_millis(500);
const LINGER_MAX_BYTES: usize = 2 * shared::protocol::MAX_FRAME_BYTES;

/// The WebSocket settings of a peer connection.
pub(crate) fn websocket_config(max_frame_bytes: usize) -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(READ_BUFFER_BYTES)
        .write_buffer_size(WRITE_BUFFER_BYTES)
        .max_message_size(Some(max_frame_bytes))
        .max_frame_size(Some(max_frame_bytes))
}

/// Runs a connection that holds a connection slot: joins the room, relays, leaves.
pub(crate) async fn serve(
    relay: Arc<Relay>,
    socket: Socket,
    room: RoomName,
    remote: Option<std::net::SocketAddr>,
    _slot: OwnedSemaphorePermit,
) {
    let peer = PeerId::from_bytes(rand::random());
    let span = tracing::info_span!("peer", peer = peer.short(), room = room.as_str());
    async move {
        let outbox = Outbox::new(OutboxLimits {
            max_messages: relay.config.peer_queue_messages,
            max_bytes: relay.config.peer_queue_bytes,
        });
        if relay.shutdown.is_cancelled() {
            close(socket, DisconnectReason::Shutdown, &outbox).await;
            return;
        }
        if let Err(JoinError::RoomFull) = relay.hub.join(&room, &peer, outbox.clone()).await {
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

        let (mut sink, mut stream) = socket.split();
        let reason = tokio::select! {
            reason = read_frames(&relay, &mut stream, &room, &peer, &outbox) => reason,
            reason = write_frames(&relay, &mut sink, &outbox) => reason,
            () = outbox.overflowed() => DisconnectReason::SlowConsumer,
            () = relay.shutdown.cancelled() => DisconnectReason::Shutdown,
        };
        // Leave first, so the others hear `peer_left` without waiting for the goodbye.
        relay.hub.leave(&room, &peer);
        relay.metrics.disconnect(reason);
        relay
            .metrics
            .connections_open
            .fetch_sub(1, Ordering::Relaxed);
        info!(reason = reason.as_str(), "left");
        let socket = stream
            .reunite(sink)
            .expect("both halves come from this socket");
        close(socket, reason, &outbox).await;
    }
    .instrument(span)
    .await
}

/// Turns away a connection that cannot have a slot or a room: an error frame, then close 1013
/// ("try again later").
pub(crate) async fn refuse(mut socket: Socket, code: RelayErrorCode) {
    let goodbye = async {
        socket.feed(error_message(code, refusal_text(code))).await?;
        socket
            .send(Message::Close(Some(CloseFrame {
                code: CloseCode::Again,
                reason: code.as_str().into(),
            })))
            .await
    };
    let _ = timeout(CLOSE_GRACE, goodbye).await;
    linger(socket.get_mut(), LINGER).await;
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

fn error_message(code: RelayErrorCode, message: &str) -> Message {
    Message::Text(error_frame(code, message))
}

fn error_frame(code: RelayErrorCode, message: &str) -> Utf8Bytes {
    Utf8Bytes::from(
        RelayFrame::Error {
            code,
            message: message.to_owned(),
        }
        .to_json(),
    )
}

/// Reads and handles the peer's frames until a rule ends the connection.
async fn read_frames(
    relay: &Relay,
    stream: &mut SplitStream<Socket>,
    room: &RoomName,
    peer: &PeerId,
    outbox: &Outbox,
) -> DisconnectReason {
    let config = &relay.config;
    let metrics = &relay.metrics;
    let mut limiter = RateLimiter::new(
        config.rate_per_second,
        config.rate_burst,
        config.flood_drops_before_disconnect,
        Instant::now(),
    );
    let mut malformed = 0u32;
    loop {
        let message = match timeout(config.idle_timeout, stream.next()).await {
            Err(_) => return DisconnectReason::IdleTimeout,
            Ok(None) => return DisconnectReason::ClientClosed,
            Ok(Some(Err(error))) => return read_error_reason(&error),
            Ok(Some(Ok(message))) => message,
        };
        // Pings and pongs only prove the peer is alive; tungstenite answers pings itself.
        let text = match message {
            Message::Text(text) => Some(text),
            Message::Binary(bytes) => {
                metrics.bytes_in.add(bytes.len() as u64);
                None
            }
            Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => continue,
            Message::Close(_) => return DisconnectReason::ClientClosed,
        };
        metrics.messages_in.inc();
        if let Some(text) = &text {
            metrics.bytes_in.add(text.len() as u64);
        }
        match limiter.check(Instant::now()) {
            Verdict::Accept => {}
            Verdict::DropAndWarn => {
                metrics.dropped_rate_limited.inc();
                debug!("rate limited");
                outbox.push(error_frame(
                    RelayErrorCode::RateLimited,
                    "too many frames; this one was dropped",
                ));
                continue;
            }
            Verdict::Drop => {
                metrics.dropped_rate_limited.inc();
                continue;
            }
            Verdict::Disconnect => return DisconnectReason::RateFlood,
        }
        let verdict = match text {
            Some(text) => forward(relay, room, peer, &text),
            None => Err(Refusal::Malformed(
                "frames are JSON text; binary frames are not accepted".to_owned(),
            )),
        };
        match verdict {
            Ok(()) => {}
            Err(Refusal::UnknownPeer) => {
                metrics.dropped_unknown_peer.inc();
                outbox.push(error_frame(
                    RelayErrorCode::UnknownPeer,
                    "no peer with that id is in this room",
                ));
            }
            Err(Refusal::Malformed(why)) => {
                metrics.dropped_malformed.inc();
                malformed += 1;
                debug!(
                    error = why.as_str(),
                    count = malformed,
                    "malformed envelope"
                );
                if malformed >= config.max_malformed_frames {
                    return DisconnectReason::TooManyErrors;
                }
                outbox.push(error_frame(RelayErrorCode::MalformedEnvelope, &why));
            }
        }
    }
}

enum Refusal {
    Malformed(String),
    UnknownPeer,
}

/// Parses the envelope of one text frame and hands the payload, unparsed, to the hub.
fn forward(relay: &Relay, room: &RoomName, peer: &PeerId, text: &str) -> Result<(), Refusal> {
    let frame: ClientFrame =
        serde_json::from_str(text).map_err(|error| Refusal::Malformed(error.to_string()))?;
    match (frame.kind, frame.to) {
        (ClientFrameKind::Broadcast, None) => {
            let message = RelayFrame::message_json(peer, &frame.payload);
            relay.hub.broadcast(room, peer, Utf8Bytes::from(message));
            Ok(())
        }
        (ClientFrameKind::Send, Some(to)) => {
            let message = RelayFrame::message_json(peer, &frame.payload);
            relay
                .hub
                .send_to(room, peer, &to, Utf8Bytes::from(message))
                .map_err(|_| Refusal::UnknownPeer)
        }
        (ClientFrameKind::Broadcast, Some(_)) => Err(Refusal::Malformed(
            "`broadcast` goes to the whole room and takes no `to`".to_owned(),
        )),
        (ClientFrameKind::Send, None) => Err(Refusal::Malformed(
            "`send` needs `to`, the peer id to deliver to".to_owned(),
        )),
    }
}

fn read_error_reason(error: &WsError) -> DisconnectReason {
    match error {
        WsError::Capacity(_) => DisconnectReason::FrameTooLarge,
        WsError::ConnectionClosed | WsError::AlreadyClosed => DisconnectReason::ClientClosed,
        WsError::Io(_) | WsError::Protocol(ProtocolError::ResetWithoutClosingHandshake) => {
            DisconnectReason::ConnectionLost
        }
        other => {
            debug!(error = %other, "protocol error");
            DisconnectReason::ProtocolError
        }
    }
}

/// Writes what the outbox holds and pings on schedule, until writing fails.
async fn write_frames(
    relay: &Relay,
    sink: &mut SplitSink<Socket, Message>,
    outbox: &Outbox,
) -> DisconnectReason {
    let interval = relay.config.ping_interval;
    let mut ping = tokio::time::interval_at(Instant::now() + interval, interval);
    ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut batch = Vec::new();
    loop {
        let written = tokio::select! {
            () = outbox.take(&mut batch, WRITE_BATCH_MESSAGES) => {
                let messages = batch.len();
                let bytes: usize = batch.iter().map(|frame| frame.len()).sum();
                let mut result = Ok(());
                for frame in batch.drain(..) {
                    result = feed(sink, frame).await;
                    if result.is_err() {
                        break;
                    }
                }
                let result = match result {
                    Ok(()) => sink.flush().await,
                    Err(error) => Err(error),
                };
                outbox.written(messages, bytes);
                relay.metrics.messages_out.add(messages as u64);
                relay.metrics.bytes_out.add(bytes as u64);
                result
            }
            _ = ping.tick() => sink.send(Message::Ping(Bytes::new())).await,
        };
        if let Err(error) = written {
            debug!(error = %error, "write failed");
            return DisconnectReason::WriteError;
        }
    }
}

/// Queues one text message on the socket, in fragments when it is large.
async fn feed<S>(sink: &mut S, frame: Utf8Bytes) -> Result<(), WsError>
where
    S: futures_util::Sink<Message, Error = WsError> + Unpin,
{
    if frame.len() <= FRAGMENT_BYTES {
        return sink.feed(Message::Text(frame)).await;
    }
    let bytes = Bytes::from(frame);
    let mut start = 0;
    while start < bytes.len() {
        let end = (start + FRAGMENT_BYTES).min(bytes.len());
        let opcode = if start == 0 {
            OpCode::Data(Data::Text)
        } else {
            OpCode::Data(Data::Continue)
        };
        let fragment = Frame::message(bytes.slice(start..end), opcode, end == bytes.len());
        sink.feed(Message::Frame(fragment)).await?;
        start = end;
    }
    Ok(())
}

/// Says goodbye in the way `reason` calls for, then lingers so the close frame arrives.
async fn close(mut socket: Socket, reason: DisconnectReason, outbox: &Outbox) {
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
        DisconnectReason::IdleTimeout => Some((None, CloseCode::Normal)),
        DisconnectReason::Shutdown => Some((None, CloseCode::Away)),
    };
    let polite = async {
        match goodbye {
            // Writes tungstenite's echo of the peer's close frame, if one is pending.
            None => socket.flush().await,
            Some((error, close_code)) => {
                // Frames queued before the verdict (earlier error frames) still go out first.
                for frame in outbox.drain_now() {
                    feed(&mut socket, frame).await?;
                }
                if let Some(code) = error {
                    socket
                        .feed(error_message(code, disconnect_text(reason)))
                        .await?;
                }
                // The close reason names the error code when there is one, so a client can
                // match it like an error frame.
                let close_reason = error.map_or(reason.as_str(), RelayErrorCode::as_str);
                socket
                    .send(Message::Close(Some(CloseFrame {
                        code: close_code,
                        reason: close_reason.into(),
                    })))
                    .await
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
    linger(socket.get_mut(), linger_for).await;
}

fn disconnect_text(reason: DisconnectReason) -> &'static str {
    match reason {
        DisconnectReason::FrameTooLarge => "a frame exceeded the size limit; closing",
        DisconnectReason::TooManyErrors => "too many malformed frames; closing",
        DisconnectReason::RateFlood => "kept sending above the rate limit; closing",
        DisconnectReason::SlowConsumer => "you read too slowly and your queue filled; closing",
        _ => "closing",
    }
}

/// Half-closes and reads what the peer still sends until it closes too, within bounds.
async fn linger(io: &mut TcpStream, duration: Duration) {
    let drain = async {
        io.shutdown().await?;
        // On the heap: this future is part of every connection's task for its whole life.
        let mut buffer = vec![0u8; READ_BUFFER_BYTES];
        let mut total = 0;
        while total < LINGER_MAX_BYTES {
            match io.read(&mut buffer).await? {
                0 => break,
                read => total += read,
            }
        }
        Ok::<(), std::io::Error>(())
    };
    let _ = timeout(duration, drain).await;
}
