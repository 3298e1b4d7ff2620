//! The one seam between the node and the network.
//!
//! A transport turns "whatever carries bytes between peers" into a [`Link`]: a stream of
//! transport-neutral [`LinkEvent`]s in and [`Outgoing`] payloads out. [`deliver`] is the only
//! place those events become calls into the [`Node`] state machine, and the runtime only ever
//! talks to a `Link`, so a WebRTC data-channel transport could produce the same `Link` and
//! nothing else would change.
//!
//! The one transport today is the relay: a WebSocket to `ws[s]://host/ws/{room}` carrying the
//! envelope of `shared::protocol::relay`. [`connect_relay`] opens it, waits for the `welcome`
//! frame (proof the relay accepted us into the room) and starts one reader and one writer task.

use crate::inbox::{inbox, InboxReader, InboxWriter};
use futures_util::{SinkExt, StreamExt};
use serde_json::value::RawValue;
use shared::node::Node;
use shared::protocol::{ClientFrame, PeerId, RelayErrorCode, RelayFrame, MAX_FRAME_BYTES};
use std::time::Duration;
use thiserror::Error;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{self, Message};

/// Time to open the TCP connection and finish the WebSocket (and TLS) handshake.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Time for the relay's `welcome` after the handshake; it is sent at once by a healthy relay.
pub const WELCOME_TIMEOUT: Duration = Duration::from_secs(10);
/// Time for queued frames and the close frame to leave when we disconnect on purpose.
pub const CLOSE_TIMEOUT: Duration = Duration::from_secs(3);
/// Payloads waiting to be written; the relay's own per-peer queue holds about as many.
pub const OUTGOING_QUEUE: usize = 1_024;
/// The largest WebSocket message a link reads at all. A relay may be configured with a frame
/// limit above the protocol's ([`MAX_FRAME_BYTES`]); a message between the two is read whole
/// and handed to the node, which refuses that one message as oversized and penalises its sender
/// while the link stays up. tungstenite cannot skip a message, so only beyond this bound does
/// the link close: 8 MiB is eight times the protocol's limit, which no sane relay exceeds, and
/// is what one such message may cost us in memory.
pub const MAX_WEBSOCKET_MESSAGE: usize = 8 << 20;

/// Something the network did, in the terms the node understands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LinkEvent {
    PeerJoined(PeerId),
    PeerLeft(PeerId),
    Message {
        from: PeerId,
        payload: String,
    },
    /// Messages of `from` were shed because the runtime fell behind (see [`crate::inbox`]);
    /// `asked`: one of them asked for an answer.
    Dropped {
        from: PeerId,
        asked: bool,
    },
    /// The relay refused one of our frames (rate limit, unknown peer...); the link stays up.
    RelayError {
        code: RelayErrorCode,
        message: String,
    },
    /// The link is gone; no event follows.
    Closed {
        reason: String,
    },
}

/// A payload (a node message as JSON) for the network.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outgoing {
    Broadcast(String),
    Send { to: PeerId, payload: String },
}

/// Who we are on a link and who was there when we arrived.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LinkInfo {
    pub url: String,
    pub room: String,
    pub peer_id: PeerId,
    pub peers: Vec<PeerId>,
}

#[derive(Debug, Error)]
pub enum ConnectError {
    #[error("`{0}` is not a relay URL: use ws://host:port/ws/ROOM or wss://host/ws/ROOM")]
    BadUrl(String),
    #[error("could not reach the relay at {url}: {reason}")]
    Unreachable { url: String, reason: String },
    #[error("the relay at {url} answered HTTP {status}: {body}")]
    Rejected {
        url: String,
        status: u16,
        body: String,
    },
    #[error("the relay at {url} refused us: {code}: {message}")]
    Refused {
        url: String,
        code: &'static str,
        message: String,
    },
    #[error("the relay at {url} did not welcome us: {reason}")]
    NoWelcome { url: String, reason: String },
}

/// The link is closed; nothing more can be sent on it.
#[derive(Debug, Error)]
#[error("the link to the network is closed")]
pub struct LinkClosed;

/// An open connection to the network. Drop it or call [`Link::close`] to leave.
pub struct Link {
    info: LinkInfo,
    events: InboxReader,
    outgoing: mpsc::Sender<Outgoing>,
    reader: JoinHandle<()>,
    writer: JoinHandle<()>,
}

impl Link {
    pub fn info(&self) -> &LinkInfo {
        &self.info
    }

    /// The next event; `Closed` once the link is gone (and forever after).
    pub async fn next_event(&mut self) -> LinkEvent {
        self.events
            .recv()
            .await
            .unwrap_or_else(|| LinkEvent::Closed {
                reason: "the connection ended".into(),
            })
    }

    /// An event that is already waiting, if any.
    pub fn try_next_event(&mut self) -> Option<LinkEvent> {
        self.events.try_recv()
    }

    /// Messages shed because the runtime fell behind the socket (see [`crate::inbox`]).
    pub fn shed_messages(&self) -> u64 {
        self.events.shed()
    }

    /// Queues a payload; waits while the queue is full.
    pub async fn send(&self, outgoing: Outgoing) -> Result<(), LinkClosed> {
        self.outgoing.send(outgoing).await.map_err(|_| LinkClosed)
    }

    /// Sends what is queued, says goodbye and waits (briefly) for the relay's goodbye. The relay
    /// answers ours only once it has read every frame before it, so what we sent has been
    /// forwarded when this returns. Without that wait a `node send` that exited at once could
    /// lose its payment: the next run, under the same peer id, replaced this connection at the
    /// relay before the relay had read the payment's frame.
    pub async fn close(self) {
        let Link {
            outgoing,
            mut reader,
            writer,
            ..
        } = self;
        drop(outgoing);
        let deadline = tokio::time::Instant::now() + CLOSE_TIMEOUT;
        if tokio::time::timeout_at(deadline, writer).await.is_err() {
            tracing::warn!("the relay did not take our last frames in time");
        }
        if tokio::time::timeout_at(deadline, &mut reader)
            .await
            .is_err()
        {
            tracing::warn!("the relay did not answer our goodbye in time");
            reader.abort();
        }
    }
}

/// Feeds one link event into the node; returns true if the link closed. The caller then drains
/// `poll_output` as after every call into the node.
pub fn deliver(node: &mut Node, event: LinkEvent, now_ms: u64) -> bool {
    match event {
        LinkEvent::PeerJoined(peer) => node.handle_peer_joined(peer, now_ms),
        LinkEvent::PeerLeft(peer) => node.handle_peer_left(&peer, now_ms),
        LinkEvent::Message { from, payload } => node.handle_message(&from, &payload, now_ms),
        LinkEvent::Dropped { from, asked } => node.handle_dropped(&from, asked, now_ms),
        LinkEvent::RelayError { code, message } => {
            let message = crate::sanitize::printable(&message);
            tracing::warn!(code = code.as_str(), %message, "the relay refused a frame");
        }
        LinkEvent::Closed { reason } => {
            let shown = crate::sanitize::printable(&reason);
            tracing::warn!(reason = %shown, "disconnected from the network");
            node.handle_disconnected(now_ms);
            return true;
        }
    }
    false
}

/// Tells the node it is in the room, and about the peers that were there when we arrived.
pub fn deliver_welcome(node: &mut Node, info: &LinkInfo, now_ms: u64) {
    node.handle_welcome(info.peer_id.clone(), info.peers.clone(), now_ms);
}

/// Checks that `url` names a WebSocket endpoint; returns it trimmed.
pub fn check_relay_url(url: &str) -> Result<String, ConnectError> {
    let url = url.trim();
    let rest = url
        .strip_prefix("ws://")
        .or_else(|| url.strip_prefix("wss://"))
        .ok_or_else(|| ConnectError::BadUrl(url.to_owned()))?;
    if rest.is_empty() || rest.starts_with('/') {
        return Err(ConnectError::BadUrl(url.to_owned()));
    }
    Ok(url.to_owned())
}

/// Connects to a relay at `url` and waits for its welcome.
pub async fn connect_relay(url: &str) -> Result<Link, ConnectError> {
    let url = check_relay_url(url)?;
    // rustls needs a process-wide crypto provider for wss://; installing it twice is harmless.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let config = WebSocketConfig::default()
        .max_message_size(Some(MAX_WEBSOCKET_MESSAGE))
        .max_frame_size(Some(MAX_WEBSOCKET_MESSAGE));
    let unreachable = |reason: String| ConnectError::Unreachable {
        url: url.clone(),
        reason,
    };
    let handshake = tokio_tungstenite::connect_async_with_config(url.as_str(), Some(config), false);
    let (socket, _) = match tokio::time::timeout(CONNECT_TIMEOUT, handshake).await {
        Err(_) => return Err(unreachable(format!("no answer within {CONNECT_TIMEOUT:?}"))),
        Ok(Err(tungstenite::Error::Http(response))) => {
            let body = response
                .body()
                .as_deref()
                .map(|bytes| String::from_utf8_lossy(bytes).trim().to_owned())
                .unwrap_or_default();
            return Err(ConnectError::Rejected {
                url,
                status: response.status().as_u16(),
                body,
            });
        }
        Ok(Err(tungstenite::Error::Url(error))) => {
            return Err(ConnectError::BadUrl(format!("{url} ({error})")))
        }
        Ok(Err(error)) => return Err(unreachable(error.to_string())),
        Ok(Ok(connected)) => connected,
    };
    let (mut sink, mut stream) = socket.split();

    let no_welcome = |reason: String| ConnectError::NoWelcome {
        url: url.clone(),
        reason,
    };
    let first = tokio::time::timeout(WELCOME_TIMEOUT, stream.next())
        .await
        .map_err(|_| no_welcome(format!("nothing within {WELCOME_TIMEOUT:?}")))?;
    let text = match first {
        Some(Ok(Message::Text(text))) => text,
        Some(Ok(Message::Close(frame))) => {
            return Err(no_welcome(format!(
                "it closed the connection ({})",
                frame.map_or_else(|| "no reason".into(), |f| f.reason.to_string())
            )))
        }
        Some(Ok(other)) => return Err(no_welcome(format!("unexpected {other:?}"))),
        Some(Err(error)) => return Err(no_welcome(error.to_string())),
        None => return Err(no_welcome("the connection ended".into())),
    };
    let info = match RelayFrame::from_json(&text) {
        Ok(RelayFrame::Welcome {
            peer_id,
            room,
            peers,
            ..
        }) => LinkInfo {
            url: url.clone(),
            room,
            peer_id,
            peers,
        },
        Ok(RelayFrame::Error { code, message }) => {
            return Err(ConnectError::Refused {
                url,
                code: code.as_str(),
                message,
            })
        }
        Ok(other) => return Err(no_welcome(format!("it sent {other:?} first"))),
        Err(error) => return Err(no_welcome(format!("unreadable frame: {error}"))),
    };
    tracing::info!(url = %info.url, room = %info.room, peer = %info.peer_id.short(), peers = info.peers.len(), "joined the room");

    let (events_tx, events) = inbox();
    let (outgoing, mut outgoing_rx) = mpsc::channel::<Outgoing>(OUTGOING_QUEUE);
    let reader = tokio::spawn(read_socket(stream, events_tx));
    let writer = tokio::spawn(async move {
        while let Some(outgoing) = outgoing_rx.recv().await {
            let Some(frame) = client_frame_json(outgoing) else {
                continue;
            };
            tracing::trace!(bytes = frame.len(), "frame out");
            if let Err(error) = sink.send(Message::text(frame)).await {
                tracing::debug!(%error, "could not write to the relay");
                return;
            }
        }
        let _ = sink.close().await;
    });
    Ok(Link {
        info,
        events,
        outgoing,
        reader,
        writer,
    })
}

/// The reader task: takes every frame off the socket as it comes and queues it, never waiting
/// for the node (see [`crate::inbox`] for the bound and what is shed when full).
async fn read_socket<S>(mut stream: S, events: InboxWriter)
where
    S: futures_util::Stream<Item = Result<Message, tungstenite::Error>> + Unpin,
{
    let reason = loop {
        let event = match stream.next().await {
            None => break "the relay closed the connection".to_owned(),
            Some(Err(error)) => break format!("connection error: {error}"),
            Some(Ok(Message::Close(frame))) => {
                break match frame {
                    Some(frame) if !frame.reason.is_empty() => {
                        format!("the relay closed the connection: {}", frame.reason)
                    }
                    Some(frame) => format!("the relay closed the connection ({})", frame.code),
                    None => "the relay closed the connection".to_owned(),
                }
            }
            Some(Ok(Message::Text(text))) => match relay_frame_event(&text) {
                Some(event) if tracing::enabled!(tracing::Level::TRACE) => {
                    tracing::trace!(bytes = text.len(), kind = event_kind(&event), "frame in");
                    event
                }
                Some(event) => event,
                None => continue,
            },
            Some(Ok(_)) => continue,
        };
        if !events.push(event).await {
            return;
        }
    };
    events.push(LinkEvent::Closed { reason }).await;
}

fn event_kind(event: &LinkEvent) -> &'static str {
    match event {
        LinkEvent::PeerJoined(_) => "peer_joined",
        LinkEvent::PeerLeft(_) => "peer_left",
        LinkEvent::Message { .. } => "message",
        LinkEvent::Dropped { .. } => "dropped",
        LinkEvent::RelayError { .. } => "relay_error",
        LinkEvent::Closed { .. } => "closed",
    }
}

/// Reads one frame from the relay; `None` for frames the node has no use for.
fn relay_frame_event(text: &str) -> Option<LinkEvent> {
    match RelayFrame::from_json(text) {
        Ok(RelayFrame::PeerJoined { peer_id }) => Some(LinkEvent::PeerJoined(peer_id)),
        Ok(RelayFrame::PeerLeft { peer_id }) => Some(LinkEvent::PeerLeft(peer_id)),
        Ok(RelayFrame::Message { from, payload }) => {
            if payload.get().len() > MAX_FRAME_BYTES {
                // Handed on all the same: the node refuses it as `oversized message` and
                // penalises the sender; the link is not at fault.
                tracing::warn!(peer = %from.short(), bytes = payload.get().len(), limit = MAX_FRAME_BYTES, "oversized message from a peer");
            }
            Some(LinkEvent::Message {
                from,
                payload: payload.get().to_owned(),
            })
        }
        Ok(RelayFrame::Error { code, message }) => Some(LinkEvent::RelayError { code, message }),
        // Signaling is for direct links between tabs, which this node does not open.
        Ok(RelayFrame::Welcome { .. } | RelayFrame::Signal { .. }) => None,
        Err(error) => {
            tracing::warn!(%error, "unreadable frame from the relay");
            None
        }
    }
}

/// Wraps a payload in the relay envelope. The node only emits valid JSON, so `None` means a bug;
/// it is logged rather than sent.
fn client_frame_json(outgoing: Outgoing) -> Option<String> {
    let (to, payload) = match outgoing {
        Outgoing::Broadcast(payload) => (None, payload),
        Outgoing::Send { to, payload } => (Some(to), payload),
    };
    let raw = match RawValue::from_string(payload) {
        Ok(raw) => raw,
        Err(error) => {
            tracing::error!(%error, "the node produced a payload that is not JSON");
            return None;
        }
    };
    let frame = match to {
        None => ClientFrame::broadcast(raw),
        Some(to) => ClientFrame::send(to, raw),
    };
    serde_json::to_string(&frame).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relay_urls_are_checked() {
        for good in [
            "ws://127.0.0.1:3030/ws/lobby",
            "wss://relay.example/ws/a",
            " ws://h ",
        ] {
            assert!(check_relay_url(good).is_ok(), "{good}");
        }
        for bad in ["http://h/ws", "127.0.0.1:3030", "ws://", "ws:///ws", ""] {
            assert!(check_relay_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn frames_map_to_events_and_back() {
        let peer = PeerId::from_bytes([0xab; 16]);
        let message =
            RelayFrame::message_json(&peer, &RawValue::from_string("{\"a\":1}".into()).unwrap());
        assert_eq!(
            relay_frame_event(&message),
            Some(LinkEvent::Message {
                from: peer.clone(),
                payload: "{\"a\":1}".into()
            })
        );
        assert_eq!(relay_frame_event("not json"), None);
        let json = client_frame_json(Outgoing::Send {
            to: peer.clone(),
            payload: "{\"type\":\"get_mempool\"}".into(),
        })
        .unwrap();
        let value: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(value["type"], "send");
        assert_eq!(value["to"], peer.as_str());
        assert_eq!(value["payload"]["type"], "get_mempool");
        assert_eq!(client_frame_json(Outgoing::Broadcast("{oops".into())), None);
    }
}
