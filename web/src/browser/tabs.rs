//! Tabs of one browser reach each other over a `BroadcastChannel`, with no server at all.
//!
//! `trunk serve` (or any static server) and several tabs is the first thing people try; with no
//! relay reachable those tabs used to sit alone. Every tab of one origin and room joins the
//! channel `tabchain/<room>` under its relay peer id (known before any connection:
//! [`PeerId::from_resume_token`]), says `here` once a second and `bye` when it goes, and sends
//! node messages addressed to one peer. To the node each such peer is a direct link like a
//! WebRTC one ([`shared::node::Node::handle_link_up`]): the node routes to it, gossips over it and
//! keeps it when the relay goes away. With the relay up the same holds, so tabs of one browser
//! talk among themselves without relay frames, and the relay and WebRTC carry the rest.
//!
//! A peer silent for [`SILENT_MS`] is gone ([`TabEvent::Down`]). The node may close a link (its
//! bound of direct links, or `?max_links=0`): the peer is then "parked" and reported up again
//! only when the node asks for it ([`Tabs::open`]) or after it went silent and came back.
//! Going offline (the partition control) leaves the channel, so a tab can still be cut off.
//! Frames are checked like any input: a bad one is counted and dropped, never trusted.

use shared::protocol::PeerId;
use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::rc::{Rc, Weak};
use wasm_bindgen::closure::Closure;
use wasm_bindgen::{JsCast, JsValue};
use web_sys::{BroadcastChannel, MessageEvent};

/// Every tab says `here` this often.
pub const HEARTBEAT_MS: u32 = 1_000;
/// A tab not heard from for this long is gone (a closed tab may not manage its `bye`).
pub const SILENT_MS: f64 = 4_000.0;
/// Tabs of one browser tracked at once; more are ignored (they still meet over the relay).
pub const MAX_TABS: usize = 64;
/// The largest frame taken from the channel: a node message's cap with room for the envelope.
pub const MAX_FRAME_BYTES: usize = shared::protocol::MAX_FRAME_BYTES + 1_024;

type OnMessage = Closure<dyn FnMut(MessageEvent)>;

/// What goes over the channel: one text message, its first character saying what it is, then
/// the sender's peer id (32 hex digits): `h<from>` (here), `b<from>` (bye) and
/// `m<from><to><payload>` (a node message for `to`). Plain text rather than JSON: a serde
/// tagged enum cost the page 10 KB gzipped.
#[derive(Debug, PartialEq)]
pub enum TabFrame {
    Here { from: PeerId },
    Bye { from: PeerId },
    Msg { from: PeerId, to: PeerId, p: String },
}

impl TabFrame {
    pub fn encode(&self) -> String {
        match self {
            TabFrame::Here { from } => format!("h{from}"),
            TabFrame::Bye { from } => format!("b{from}"),
            TabFrame::Msg { from, to, p } => format!("m{from}{to}{p}"),
        }
    }

    pub fn decode(text: &str) -> Result<TabFrame, String> {
        let id = |at: usize| -> Result<PeerId, String> {
            let slice = text
                .get(at..at + PeerId::LEN)
                .ok_or_else(|| "too short for a peer id".to_string())?;
            PeerId::try_from(slice.to_string())
        };
        match text.as_bytes().first() {
            Some(b'h') if text.len() == 1 + PeerId::LEN => Ok(TabFrame::Here { from: id(1)? }),
            Some(b'b') if text.len() == 1 + PeerId::LEN => Ok(TabFrame::Bye { from: id(1)? }),
            Some(b'm') => Ok(TabFrame::Msg {
                from: id(1)?,
                to: id(1 + PeerId::LEN)?,
                p: text[1 + 2 * PeerId::LEN..].to_string(),
            }),
            _ => Err("not a tab frame".into()),
        }
    }
}

/// What the driver hears.
#[derive(Debug)]
pub enum TabEvent {
    Up {
        peer: PeerId,
    },
    Down {
        peer: PeerId,
    },
    Message {
        from: PeerId,
        payload: String,
    },
    /// A frame that is not one of ours: counted, dropped.
    Bad {
        why: String,
    },
}

pub struct Tabs {
    inner: Rc<Inner>,
}

struct Peer {
    last_heard_ms: f64,
    /// The node closed the link: not routed, not reported, until it asks again.
    parked: bool,
}

struct Inner {
    channel: BroadcastChannel,
    me: PeerId,
    peers: RefCell<BTreeMap<PeerId, Peer>>,
    online: Cell<bool>,
    on_event: Box<dyn Fn(TabEvent)>,
    _on_message: RefCell<Option<OnMessage>>,
}

fn now_ms() -> f64 {
    js_sys::Date::now()
}

impl Tabs {
    /// Joins the channel of `room` as `me`; `None` where the browser has no `BroadcastChannel`.
    pub fn open(room: &str, me: PeerId, on_event: impl Fn(TabEvent) + 'static) -> Option<Tabs> {
        let channel = BroadcastChannel::new(&format!("tabchain/{room}")).ok()?;
        let inner = Rc::new(Inner {
            channel,
            me,
            peers: RefCell::new(BTreeMap::new()),
            online: Cell::new(true),
            on_event: Box::new(on_event),
            _on_message: RefCell::new(None),
        });
        let weak = Rc::downgrade(&inner);
        let on_message = Closure::<dyn FnMut(MessageEvent)>::new(move |event: MessageEvent| {
            if let Some(inner) = weak.upgrade() {
                inner.receive(event.data());
            }
        });
        inner
            .channel
            .set_onmessage(Some(on_message.as_ref().unchecked_ref()));
        *inner._on_message.borrow_mut() = Some(on_message);
        inner.post(&TabFrame::Here {
            from: inner.me.clone(),
        });
        wasm_bindgen_futures::spawn_local(heartbeat(Rc::downgrade(&inner)));
        Some(Tabs { inner })
    }

    /// Sends a node message to `to` if it is a tab of this browser we route to; false otherwise
    /// (the caller sends it another way).
    pub fn send(&self, to: &PeerId, payload: &str) -> bool {
        if !self.is_up(to) {
            return false;
        }
        self.inner.post(&TabFrame::Msg {
            from: self.inner.me.clone(),
            to: to.clone(),
            p: payload.to_string(),
        })
    }

    /// Whether `peer` is a live tab of this browser that carries our messages to it.
    pub fn is_up(&self, peer: &PeerId) -> bool {
        self.inner.online.get()
            && self
                .inner
                .peers
                .borrow()
                .get(peer)
                .is_some_and(|p| !p.parked)
    }

    /// The node wants a link to `peer`: true when this channel is it (the caller then reports
    /// it up); false when `peer` is not a tab of this browser.
    pub fn open_link(&self, peer: &PeerId) -> bool {
        if !self.inner.online.get() {
            return false;
        }
        match self.inner.peers.borrow_mut().get_mut(peer) {
            Some(known) => {
                known.parked = false;
                true
            }
            None => false,
        }
    }

    /// The node closed the link to `peer`: stop routing to it. False when it was not ours.
    pub fn close_link(&self, peer: &PeerId) -> bool {
        match self.inner.peers.borrow_mut().get_mut(peer) {
            Some(known) if !known.parked => {
                known.parked = true;
                true
            }
            _ => false,
        }
    }

    /// How many tabs of this browser we route to.
    pub fn up_count(&self) -> usize {
        self.up_peers().len()
    }

    /// Tabs of this browser we route to.
    pub fn up_peers(&self) -> Vec<PeerId> {
        if !self.inner.online.get() {
            return Vec::new();
        }
        self.inner
            .peers
            .borrow()
            .iter()
            .filter(|(_, p)| !p.parked)
            .map(|(id, _)| id.clone())
            .collect()
    }

    /// Offline leaves the channel (every peer goes down); online joins it again.
    pub fn set_online(&self, online: bool) {
        if self.inner.online.replace(online) == online {
            return;
        }
        if online {
            self.inner.post(&TabFrame::Here {
                from: self.inner.me.clone(),
            });
        } else {
            self.inner.post(&TabFrame::Bye {
                from: self.inner.me.clone(),
            });
            let gone: Vec<PeerId> = std::mem::take(&mut *self.inner.peers.borrow_mut())
                .into_iter()
                .filter(|(_, p)| !p.parked)
                .map(|(peer, _)| peer)
                .collect();
            for peer in gone {
                (self.inner.on_event)(TabEvent::Down { peer });
            }
        }
    }
}

impl Drop for Tabs {
    fn drop(&mut self) {
        self.inner.post(&TabFrame::Bye {
            from: self.inner.me.clone(),
        });
        self.inner.channel.set_onmessage(None);
        self.inner.channel.close();
    }
}

impl Inner {
    fn post(&self, frame: &TabFrame) -> bool {
        self.channel
            .post_message(&JsValue::from_str(&frame.encode()))
            .is_ok()
    }

    fn receive(&self, data: JsValue) {
        if !self.online.get() {
            return;
        }
        let Some(text) = data.as_string() else {
            (self.on_event)(TabEvent::Bad {
                why: "not text".into(),
            });
            return;
        };
        if text.len() > MAX_FRAME_BYTES {
            (self.on_event)(TabEvent::Bad {
                why: format!("{} bytes, over {MAX_FRAME_BYTES}", text.len()),
            });
            return;
        }
        let frame = match TabFrame::decode(&text) {
            Ok(frame) => frame,
            Err(why) => {
                (self.on_event)(TabEvent::Bad { why });
                return;
            }
        };
        match frame {
            TabFrame::Here { from } => self.heard(from),
            TabFrame::Bye { from } => {
                let removed = self.peers.borrow_mut().remove(&from);
                if removed.is_some_and(|p| !p.parked) {
                    (self.on_event)(TabEvent::Down { peer: from });
                }
            }
            TabFrame::Msg { from, to, p } => {
                if to != self.me {
                    return;
                }
                // A message is a sign of life too (a busy tab's heartbeat may wait).
                self.heard(from.clone());
                if self.peers.borrow().get(&from).is_some_and(|p| !p.parked) {
                    (self.on_event)(TabEvent::Message { from, payload: p });
                }
            }
        }
    }

    fn heard(&self, from: PeerId) {
        if from == self.me {
            return; // a duplicated tab carries our token; it is not a peer of ours
        }
        let now = now_ms();
        let new = {
            let mut peers = self.peers.borrow_mut();
            let count = peers.len();
            match peers.get_mut(&from) {
                Some(peer) => {
                    peer.last_heard_ms = now;
                    false
                }
                None if count < MAX_TABS => {
                    peers.insert(
                        from.clone(),
                        Peer {
                            last_heard_ms: now,
                            parked: false,
                        },
                    );
                    true
                }
                None => false,
            }
        };
        if new {
            // Answer at once, so the newcomer need not wait a heartbeat to know us.
            self.post(&TabFrame::Here {
                from: self.me.clone(),
            });
            (self.on_event)(TabEvent::Up { peer: from });
        }
    }

    fn expire(&self) {
        let now = now_ms();
        let gone: Vec<(PeerId, bool)> = {
            let mut peers = self.peers.borrow_mut();
            let gone: Vec<(PeerId, bool)> = peers
                .iter()
                .filter(|(_, p)| now - p.last_heard_ms > SILENT_MS)
                .map(|(peer, p)| (peer.clone(), p.parked))
                .collect();
            for (peer, _) in &gone {
                peers.remove(peer);
            }
            gone
        };
        for (peer, parked) in gone {
            if !parked {
                (self.on_event)(TabEvent::Down { peer });
            }
        }
    }
}

async fn heartbeat(inner: Weak<Inner>) {
    loop {
        gloo_timers::future::TimeoutFuture::new(HEARTBEAT_MS).await;
        let Some(inner) = inner.upgrade() else { return };
        if inner.online.get() {
            inner.post(&TabFrame::Here {
                from: inner.me.clone(),
            });
            inner.expire();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_read_back_and_bad_ones_are_refused() {
        let id = PeerId::from_bytes([7; 16]);
        let frame = TabFrame::Msg {
            from: id.clone(),
            to: id.clone(),
            p: "{\"type\":\"status\"}".into(),
        };
        let text = frame.encode();
        assert_eq!(TabFrame::decode(&text).unwrap(), frame);
        for frame in [
            TabFrame::Here { from: id.clone() },
            TabFrame::Bye { from: id.clone() },
        ] {
            assert_eq!(TabFrame::decode(&frame.encode()).unwrap(), frame);
        }
        let hex = "07".repeat(16);
        for bad in [
            "h".to_string(),
            format!("h{}", "zz".repeat(16)),
            format!("h{hex}x"),
            format!("x{hex}"),
            format!("m{hex}"),
            format!("m{hex}{}", "0".repeat(31)),
            "é".repeat(40),
            String::new(),
        ] {
            assert!(TabFrame::decode(&bad).is_err(), "{bad}");
        }
    }
}
