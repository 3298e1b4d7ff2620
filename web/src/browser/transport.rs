//! The one seam between the node and the network. The driver only sees [`Transport`] and
//! [`TransportEvent`]; [`RelayTransport`] is today's implementation (a WebSocket to the relay,
//! with reconnects). A later WebRTC transport, with the relay only introducing tabs, would be
//! a second implementation of the same trait.

use crate::connection::ConnectionState;
use futures::channel::mpsc;
use futures::future::{select, Either};
use futures::{SinkExt, StreamExt};
use gloo_net::websocket::{futures::WebSocket, Message};
use shared::node::reconnect::retry_delay_ms;
use shared::protocol::{ClientFrame, RelayFrame};
use std::cell::{Cell, RefCell};
use std::rc::{Rc, Weak};

/// Frames waiting for the socket. The node sends a burst of at most a few dozen frames per
/// call; 1024 absorbs a slow socket for a while, after which frames are dropped (the node
/// asks again for anything it misses).
pub const OUTBOX_LIMIT: usize = 1024;

/// Why a connection ended (or never opened): shown in the status bar while waiting to retry.
#[derive(Debug, thiserror::Error)]
pub enum CloseReason {
    /// The browser would not open the socket (a bad URL, a blocked port); its words.
    #[error("could not open a connection: {0}")]
    Open(String),
    #[error("the connection failed: {0}")]
    Socket(#[from] gloo_net::websocket::WebSocketError),
    #[error("the relay closed the connection")]
    ClosedByRelay,
    #[error("went offline")]
    WentOffline,
    #[error("the outbox closed")]
    OutboxClosed,
}

/// A frame from the relay that is not a relay frame.
#[derive(Debug, thiserror::Error)]
pub enum MalformedFrame {
    #[error("{0}")]
    Json(#[from] serde_json::Error),
    #[error("a binary frame")]
    Binary,
}

/// What a transport tells the driver.
#[derive(Debug)]
pub enum TransportEvent {
    State(ConnectionState),
    Frame(RelayFrame),
    /// The room is gone: every peer with it.
    Disconnected,
    /// The relay sent something that is not a relay frame.
    Malformed(MalformedFrame),
}

pub trait Transport {
    /// Queues a frame; returns false when it was dropped (offline, or the queue is full).
    fn send(&self, frame: &ClientFrame) -> bool;
    /// Offline closes the connection and keeps it closed; online reconnects at once.
    fn set_online(&self, online: bool);
}

pub struct RelayTransport {
    inner: Rc<Inner>,
}

struct Inner {
    url: String,
    on_event: Box<dyn Fn(TransportEvent)>,
    outbox: RefCell<Option<mpsc::Sender<String>>>,
    online: Cell<bool>,
    /// Tells the loop that `online` changed. One pending wake is enough (the loop reads the
    /// flag), so the channel holds one and further wakes are dropped while it is full.
    wake: RefCell<mpsc::Sender<()>>,
}

impl Inner {
    fn wake(&self) {
        let _ = self.wake.borrow_mut().try_send(());
    }
}

impl RelayTransport {
    /// Starts connecting to `url` at once; `on_event` hears everything that happens.
    pub fn connect(url: String, on_event: impl Fn(TransportEvent) + 'static) -> RelayTransport {
        let (wake, wake_rx) = mpsc::channel(1);
        let inner = Rc::new(Inner {
            url,
            on_event: Box::new(on_event),
            outbox: RefCell::new(None),
            online: Cell::new(true),
            wake: RefCell::new(wake),
        });
        wasm_bindgen_futures::spawn_local(run(Rc::downgrade(&inner), wake_rx));
        RelayTransport { inner }
    }
}

impl Transport for RelayTransport {
    fn send(&self, frame: &ClientFrame) -> bool {
        let Ok(text) = serde_json::to_string(frame) else {
            return false;
        };
        match self.inner.outbox.borrow_mut().as_mut() {
            Some(outbox) => outbox.try_send(text).is_ok(),
            None => false,
        }
    }

    fn set_online(&self, online: bool) {
        self.inner.online.set(online);
        self.inner.wake();
    }
}

impl Drop for RelayTransport {
    fn drop(&mut self) {
        self.inner.online.set(false);
        self.inner.wake();
    }
}

fn now_ms() -> u64 {
    js_sys::Date::now() as u64
}

/// The connection loop: connect, serve, wait (see [`super::reconnect`]), repeat; it ends when
/// the transport is dropped. A connection the relay welcomed resets the count of failures, so
/// the first try after a relay restart comes about a second later.
async fn run(inner: Weak<Inner>, mut wake: mpsc::Receiver<()>) {
    let mut failures = 0u32;
    loop {
        let Some(this) = inner.upgrade() else { return };
        if !this.online.get() {
            (this.on_event)(TransportEvent::State(ConnectionState::Offline));
            drop(this);
            if wake.next().await.is_none() {
                return;
            }
            continue;
        }
        (this.on_event)(TransportEvent::State(ConnectionState::Connecting {
            attempt: failures + 1,
        }));
        let (welcomed, reason) = match WebSocket::open(&this.url) {
            Ok(socket) => serve(&this, socket, &mut wake).await,
            Err(error) => (false, CloseReason::Open(error.to_string())),
        };
        *this.outbox.borrow_mut() = None;
        if welcomed {
            (this.on_event)(TransportEvent::Disconnected);
            failures = 0;
        } else {
            failures = failures.saturating_add(1);
        }
        if !this.online.get() {
            continue;
        }
        let wait = retry_delay_ms(failures, js_sys::Math::random());
        (this.on_event)(TransportEvent::State(ConnectionState::Waiting {
            retry_at_ms: now_ms() + wait,
            reason: reason.to_string(),
        }));
        drop(this);
        let sleep = gloo_timers::future::TimeoutFuture::new(wait.min(u32::MAX as u64) as u32);
        // "Go online" during the wait reconnects at once.
        if let Either::Right((None, _)) = select(sleep, wake.next()).await {
            return;
        }
    }
}

/// Serves one open socket until it closes or we go offline; returns whether the relay
/// welcomed us, and why it ended.
async fn serve(
    this: &Rc<Inner>,
    socket: WebSocket,
    wake: &mut mpsc::Receiver<()>,
) -> (bool, CloseReason) {
    let (mut write, mut read) = socket.split();
    let (outbox, mut queued) = mpsc::channel::<String>(OUTBOX_LIMIT);
    *this.outbox.borrow_mut() = Some(outbox);
    let welcomed = Cell::new(false);
    let reader = async {
        while let Some(message) = read.next().await {
            match message {
                Ok(Message::Text(text)) => match RelayFrame::from_json(&text) {
                    Ok(frame) => {
                        if let RelayFrame::Welcome { peer_id, .. } = &frame {
                            welcomed.set(true);
                            (this.on_event)(TransportEvent::State(ConnectionState::Connected {
                                peer_id: peer_id.to_string(),
                            }));
                        }
                        (this.on_event)(TransportEvent::Frame(frame));
                    }
                    Err(error) => (this.on_event)(TransportEvent::Malformed(error.into())),
                },
                Ok(Message::Bytes(_)) => {
                    (this.on_event)(TransportEvent::Malformed(MalformedFrame::Binary))
                }
                Err(error) => return CloseReason::Socket(error),
            }
        }
        CloseReason::ClosedByRelay
    };
    let writer = async {
        while let Some(text) = queued.next().await {
            if let Err(error) = write.send(Message::Text(text)).await {
                return CloseReason::Socket(error);
            }
        }
        CloseReason::OutboxClosed
    };
    let offline = async {
        loop {
            if wake.next().await.is_none() || !this.online.get() {
                return CloseReason::WentOffline;
            }
        }
    };
    futures::pin_mut!(reader, writer, offline);
    let reason = match select(select(reader, writer), offline).await {
        Either::Left((Either::Left((reason, _)), _)) => reason,
        Either::Left((Either::Right((reason, _)), _)) => reason,
        Either::Right((reason, _)) => reason,
    };
    (welcomed.get(), reason)
}
