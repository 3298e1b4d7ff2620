//! Direct links between tabs: one `RTCPeerConnection` with one ordered, reliable data channel
//! per peer, in raw `web-sys` (a library such as matchbox costs four times the bundle size).
//! The node decides whom to link to and routes every message; this module opens, carries and
//! watches the links, and tells the driver what happened through [`LinkEvent`]s:
//!
//! * Signaling (offer, answer, ICE candidates, bye) goes over the relay as `signal` frames; the
//!   driver sends the [`LinkEvent::Signal`]s and hands incoming ones to [`Links::accept`] and
//!   [`Links::signal`]. One task per link processes them strictly in order, and candidates that
//!   arrive before the remote description wait for it.
//! * Frames are [`shared::protocol::link`]'s: chunked node messages and heartbeats. A ping goes
//!   out every [`HEARTBEAT_MS`]; a link that has heard nothing for [`LINK_SILENT_MS`] is dead (a
//!   closed tab fires no `close` on the other side), as is one whose connection fails.
//! * Sends wait in a bounded per-link [`SendQueue`] kept out of the browser's buffer (see
//!   [`super::link_queue`]). Whatever is still queued when a link dies is handed back
//!   (in [`LinkEvent::Down`], or from [`Links::send`]) for the relay to carry: nothing this tab
//!   queued is lost. Frames the browser had already taken are, as on any dropped connection.
//!
//! Events are emitted with no borrow of this module's state held, so the driver may call back
//! in. A link that dies inside a call from the driver ([`Links::send`]) reports its
//! [`LinkEvent::Down`] on a later microtask, never from inside the call.

use super::link_queue::{Channel, SendQueue, BUFFERED_LOW_THRESHOLD};
use futures::channel::mpsc;
use futures::StreamExt;
use gloo_timers::future::TimeoutFuture;
use shared::protocol::link::{self, InboundBudget, LinkFrame, LinkFrameError, Reassembler};
use shared::protocol::signal::IceCandidate;
use shared::protocol::{IceServer, PeerId, Signal};
use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::rc::{Rc, Weak};
use wasm_bindgen::closure::Closure;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::{spawn_local, JsFuture};
use web_sys::{
    MessageEvent, RtcConfiguration, RtcDataChannel, RtcDataChannelEvent, RtcDataChannelInit,
    RtcDataChannelState, RtcIceCandidateInit, RtcPeerConnection, RtcPeerConnectionIceEvent,
    RtcPeerConnectionState, RtcSdpType, RtcSessionDescriptionInit,
};

/// Links this tab holds at once, connecting or open. The node asks for at most
/// `max_direct_links`; this bounds the table even if it asked for more or peers kept offering.
pub const MAX_LINKS: usize = 32;
/// Signaling messages waiting for one link's task. An offer brings one answer and a dozen
/// candidates; a peer that sends more than this before the task catches up loses the link.
pub const SIGNAL_QUEUE: usize = 64;
/// Candidates kept while the remote description has not been set; more is not a real peer.
pub const EARLY_CANDIDATES: usize = 32;
/// A ping goes out on every open link this often.
pub const HEARTBEAT_MS: u32 = 1_000;
/// A link that has received no frame for this long is closed: four heartbeats missed. The
/// browser itself notices a vanished peer only after 5-15 s.
pub const LINK_SILENT_MS: f64 = 4_000.0;
/// A link whose channel is not open by then is abandoned. The node gives up on the links it
/// opened at `LINK_OPEN_TIMEOUT_MS`; this also clears links we answered that never opened.
pub const LINK_OPEN_GIVE_UP_MS: f64 = 15_000.0;
/// The label of our one data channel.
const CHANNEL_LABEL: &str = "tabchain";

/// What the driver hears from the links.
#[derive(Debug)]
pub enum LinkEvent {
    /// Send this to `to` over the relay.
    Signal { to: PeerId, signal: Signal },
    /// The data channel opened: the node may route to this peer directly.
    Up { peer: PeerId },
    /// The link is gone (it was connecting or open). `unsent` were queued and never handed to
    /// the channel: the relay carries them instead, in this order.
    Down {
        peer: PeerId,
        reason: LinkDown,
        unsent: Vec<String>,
    },
    /// A node message from `from` arrived over the link.
    Message { from: PeerId, payload: String },
    /// A heartbeat round went out (once a second while a link is open): the round trips
    /// from the last one's pongs are in [`Links::round_trips`].
    Heartbeat,
}

impl LinkDown {
    /// The peer broke the link's rules (not the network, not us): the node charges it.
    pub fn is_abuse(&self) -> bool {
        matches!(
            self,
            LinkDown::Flooding | LinkDown::BadFrame(_) | LinkDown::BinaryFrame
        )
    }
}

/// Why a link went down.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum LinkDown {
    #[error("nothing heard for {} s", LINK_SILENT_MS / 1_000.0)]
    Silent,
    #[error("not open after {} s", LINK_OPEN_GIVE_UP_MS / 1_000.0)]
    NeverOpened,
    #[error("the connection {0}")]
    Connection(&'static str),
    #[error("the data channel closed")]
    ChannelClosed,
    #[error("the peer sent a bad frame: {0}")]
    BadFrame(#[from] LinkFrameError),
    #[error("the peer sent a binary frame")]
    BinaryFrame,
    #[error("its send queue is full")]
    QueueFull,
    #[error("a send failed: {0}")]
    SendFailed(String),
    #[error("signaling failed: {0}")]
    Signaling(String),
    #[error("it sent more than {} MiB/s", link::INBOUND_BYTES_PER_SECOND / (1024 * 1024))]
    Flooding,
}

/// Every link of this tab.
pub struct Links {
    inner: Rc<Inner>,
}

struct Inner {
    /// The `iceServers` of every new connection (a JS array), from the relay's welcome.
    ice_servers: RefCell<JsValue>,
    links: RefCell<BTreeMap<PeerId, Rc<Link>>>,
    on_event: Box<dyn Fn(LinkEvent)>,
    this: Weak<Inner>,
}

struct Link {
    peer: PeerId,
    pc: RtcPeerConnection,
    channel: RefCell<Option<RtcDataChannel>>,
    open: Cell<bool>,
    closed: Cell<bool>,
    created_ms: f64,
    last_heard_ms: Cell<f64>,
    rtt_us: Cell<Option<u64>>,
    queue: RefCell<SendQueue>,
    reassembler: RefCell<Reassembler>,
    /// What the peer may still send us (see `link::InboundBudget`).
    inbound: RefCell<InboundBudget>,
    jobs: RefCell<mpsc::Sender<Job>>,
    /// The event listeners, with what they listen on: removed when the link closes (a closed
    /// channel still fires `close`, which must not reach a dropped closure), and dropped on a
    /// later microtask (this may run inside one of them).
    handlers: RefCell<Vec<(web_sys::EventTarget, &'static str, Handler)>>,
}

/// An event listener of a link's connection or channel.
type Handler = Closure<dyn FnMut(JsValue)>;

/// One step of a link's signaling, processed in order by its task.
enum Job {
    MakeOffer,
    Remote(Signal),
}

struct DataChannel<'a>(&'a RtcDataChannel);

impl Channel for DataChannel<'_> {
    fn buffered_amount(&self) -> u32 {
        self.0.buffered_amount()
    }
    fn send(&self, frame: &str) -> Result<(), String> {
        self.0.send_with_str(frame).map_err(describe)
    }
}

fn describe(error: JsValue) -> String {
    error
        .dyn_ref::<js_sys::Error>()
        .map(|error| String::from(error.message()))
        .or_else(|| error.as_string())
        .unwrap_or_else(|| format!("{error:?}"))
}

/// Milliseconds on the page's monotonic clock (heartbeats and round trips do not care about
/// the wall clock, and must not jump with it).
fn monotonic_ms() -> f64 {
    web_sys::window()
        .and_then(|window| window.performance())
        .map_or_else(js_sys::Date::now, |performance| performance.now())
}

impl Links {
    /// `on_event` hears everything; see [`LinkEvent`].
    pub fn new(on_event: impl Fn(LinkEvent) + 'static) -> Links {
        let inner = Rc::new_cyclic(|this| Inner {
            ice_servers: RefCell::new(js_sys::Array::new().into()),
            links: RefCell::new(BTreeMap::new()),
            on_event: Box::new(on_event),
            this: this.clone(),
        });
        spawn_local(heartbeat(Rc::downgrade(&inner)));
        Links { inner }
    }

    /// The ICE servers for links opened from now on, as the relay's welcome lists them (an
    /// empty list: host candidates only, no outside server is asked).
    pub fn set_ice_servers(&self, servers: &[IceServer]) {
        let parsed = serde_json::to_string(servers)
            .ok()
            .and_then(|text| js_sys::JSON::parse(&text).ok())
            .filter(js_sys::Array::is_array);
        *self.inner.ice_servers.borrow_mut() =
            parsed.unwrap_or_else(|| js_sys::Array::new().into());
    }

    /// Opens a link to `peer` as the side that offers. A link already there is kept.
    pub fn open(&self, peer: PeerId) -> Result<(), LinkDown> {
        if self.inner.links.borrow().contains_key(&peer) {
            return Ok(());
        }
        let link = self.inner.create(peer)?;
        let init = RtcDataChannelInit::new();
        init.set_ordered(true);
        let channel = link
            .pc
            .create_data_channel_with_data_channel_dict(CHANNEL_LABEL, &init);
        self.inner.attach_channel(&link, channel);
        link.queue_job(Job::MakeOffer);
        Ok(())
    }

    /// Answers `peer`'s offer (the node accepted the link). A link to `peer` must be closed
    /// first ([`Links::close`]: a fresh offer means the other side started over).
    pub fn accept(&self, peer: PeerId, sdp: String) -> Result<(), LinkDown> {
        if self.inner.links.borrow().contains_key(&peer) {
            return Err(LinkDown::Signaling(
                "a link to this peer is open already".into(),
            ));
        }
        let link = self.inner.create(peer)?;
        let weak = Rc::downgrade(&link);
        let inner = self.inner.this.clone();
        link.handle("datachannel", &link.pc, move |event| {
            let (Some(link), Some(inner)) = (weak.upgrade(), inner.upgrade()) else {
                return;
            };
            let channel = event.unchecked_into::<RtcDataChannelEvent>().channel();
            if link.channel.borrow().is_none() {
                inner.attach_channel(&link, channel);
            } else {
                channel.close(); // one channel per link; a second is not ours
            }
        });
        link.queue_job(Job::Remote(Signal::Offer { sdp }));
        Ok(())
    }

    /// A signal for an existing link (answer, candidate). Ignored when there is none: it was
    /// for a link closed meanwhile.
    pub fn signal(&self, peer: &PeerId, signal: Signal) {
        let link = self.inner.links.borrow().get(peer).cloned();
        if let Some(link) = link {
            link.queue_job(Job::Remote(signal));
        }
    }

    /// Closes the link to `peer` (the node asked, or the peer said bye); returns what it still
    /// had queued, or `None` if there was no link. No [`LinkEvent::Down`] follows.
    pub fn close(&self, peer: &PeerId) -> Option<Vec<String>> {
        let link = self.inner.links.borrow_mut().remove(peer)?;
        Some(link.shut())
    }

    /// Sends a node message over the open link to `to`. `Err` holds what must go over the
    /// relay instead, in order: this payload when there is no open link, or everything the
    /// link had queued and this one when its queue overflowed or its channel failed (the link
    /// is then closed and its [`LinkEvent::Down`] follows, without these).
    pub fn send(&self, to: &PeerId, payload: String) -> Result<(), Vec<String>> {
        let link = self.inner.links.borrow().get(to).cloned();
        let Some(link) = link.filter(|link| link.open.get()) else {
            return Err(vec![payload]);
        };
        let pushed = link.queue.borrow_mut().push(payload);
        let reason = match pushed {
            Err(payload) => {
                let mut unsent = link.queue.borrow_mut().take_all();
                unsent.push(payload);
                self.inner.kill_later(&link, LinkDown::QueueFull);
                return Err(unsent);
            }
            Ok(()) => match link.drain() {
                Ok(()) => return Ok(()),
                Err(error) => LinkDown::SendFailed(error),
            },
        };
        let unsent = link.queue.borrow_mut().take_all();
        self.inner.kill_later(&link, reason);
        Err(unsent)
    }

    /// The peers we hold a link to, connecting or open.
    pub fn peers(&self) -> Vec<PeerId> {
        self.inner.links.borrow().keys().cloned().collect()
    }

    /// Each open link's last heartbeat round trip in microseconds, for the peer table.
    pub fn round_trips(&self) -> BTreeMap<PeerId, u64> {
        self.inner
            .links
            .borrow()
            .iter()
            .filter_map(|(peer, link)| Some((peer.clone(), link.rtt_us.get()?)))
            .collect()
    }

    /// Whether the link to `peer` is open.
    pub fn is_open(&self, peer: &PeerId) -> bool {
        self.inner
            .links
            .borrow()
            .get(peer)
            .is_some_and(|link| link.open.get())
    }

    pub fn open_count(&self) -> usize {
        self.inner
            .links
            .borrow()
            .values()
            .filter(|link| link.open.get())
            .count()
    }
}

impl Inner {
    fn emit(&self, event: LinkEvent) {
        (self.on_event)(event);
    }

    /// A new connection for `peer`, in the table, its signaling task running.
    fn create(&self, peer: PeerId) -> Result<Rc<Link>, LinkDown> {
        if self.links.borrow().len() >= MAX_LINKS {
            return Err(LinkDown::Signaling(format!(
                "this tab already holds {MAX_LINKS} links"
            )));
        }
        let config = RtcConfiguration::new();
        // Explicitly empty unless the relay names servers: the browser must not go looking
        // for public STUN servers on its own.
        config.set_ice_servers(&self.ice_servers.borrow());
        let pc = RtcPeerConnection::new_with_configuration(&config)
            .map_err(|error| LinkDown::Signaling(describe(error)))?;
        let (jobs, jobs_rx) = mpsc::channel(SIGNAL_QUEUE);
        let now = monotonic_ms();
        let link = Rc::new(Link {
            peer: peer.clone(),
            pc,
            channel: RefCell::new(None),
            open: Cell::new(false),
            closed: Cell::new(false),
            created_ms: now,
            last_heard_ms: Cell::new(now),
            rtt_us: Cell::new(None),
            queue: RefCell::new(SendQueue::default()),
            inbound: RefCell::new(InboundBudget::new(monotonic_ms() as u64)),
            reassembler: RefCell::new(Reassembler::default()),
            jobs: RefCell::new(jobs),
            handlers: RefCell::new(Vec::new()),
        });
        let weak = Rc::downgrade(&link);
        let inner = self.this.clone();
        link.handle("icecandidate", &link.pc, move |event| {
            let (Some(link), Some(inner)) = (weak.upgrade(), inner.upgrade()) else {
                return;
            };
            let event = event.unchecked_into::<RtcPeerConnectionIceEvent>();
            // `None` marks the end of gathering: nothing to send.
            let Some(candidate) = event.candidate() else {
                return;
            };
            let candidate = IceCandidate {
                candidate: candidate.candidate(),
                sdp_mid: candidate.sdp_mid(),
                sdp_m_line_index: candidate.sdp_m_line_index(),
                // Not in web-sys: read from the object.
                username_fragment: js_sys::Reflect::get(
                    &candidate,
                    &JsValue::from_str("usernameFragment"),
                )
                .ok()
                .and_then(|fragment| fragment.as_string()),
            };
            {
                inner.emit(LinkEvent::Signal {
                    to: link.peer.clone(),
                    signal: Signal::Candidate { candidate },
                });
            }
        });
        let weak = Rc::downgrade(&link);
        let inner = self.this.clone();
        link.handle("connectionstatechange", &link.pc, move |_| {
            let (Some(link), Some(inner)) = (weak.upgrade(), inner.upgrade()) else {
                return;
            };
            // `disconnected` may recover by itself; the heartbeat decides sooner anyway.
            match link.pc.connection_state() {
                RtcPeerConnectionState::Failed => inner.kill(&link, LinkDown::Connection("failed")),
                RtcPeerConnectionState::Closed => inner.kill(&link, LinkDown::Connection("closed")),
                _ => {}
            }
        });
        self.links.borrow_mut().insert(peer, Rc::clone(&link));
        spawn_local(signaling(self.this.clone(), Rc::downgrade(&link), jobs_rx));
        Ok(link)
    }

    fn attach_channel(&self, link: &Rc<Link>, channel: RtcDataChannel) {
        channel.set_buffered_amount_low_threshold(BUFFERED_LOW_THRESHOLD);
        let weak = Rc::downgrade(link);
        let inner = self.this.clone();
        link.handle("open", &channel, move |_| {
            if let (Some(link), Some(inner)) = (weak.upgrade(), inner.upgrade()) {
                inner.opened(&link);
            }
        });
        let weak = Rc::downgrade(link);
        let inner = self.this.clone();
        link.handle("message", &channel, move |event| {
            let (Some(link), Some(inner)) = (weak.upgrade(), inner.upgrade()) else {
                return;
            };
            let data = event.unchecked_into::<MessageEvent>().data();
            let Some(text) = data.as_string() else {
                inner.kill(&link, LinkDown::BinaryFrame);
                return;
            };
            link.last_heard_ms.set(monotonic_ms());
            if !link
                .inbound
                .borrow_mut()
                .take(text.len(), monotonic_ms() as u64)
            {
                inner.kill(&link, LinkDown::Flooding);
                return;
            }
            let frame = link.reassembler.borrow_mut().push(&text);
            match frame {
                Ok(None) => {}
                Ok(Some(LinkFrame::Message(payload))) => inner.emit(LinkEvent::Message {
                    from: link.peer.clone(),
                    payload,
                }),
                Ok(Some(LinkFrame::Ping(stamp))) => {
                    // Straight to the channel, past the queue: a pong waiting behind a
                    // megabyte of blocks would read as a slow link, not a busy one.
                    if let Err(error) = link.send_now(&link::pong(stamp)) {
                        inner.kill(&link, LinkDown::SendFailed(error));
                    }
                }
                Ok(Some(LinkFrame::Pong(stamp))) => {
                    let now_us = (monotonic_ms() * 1_000.0) as u64;
                    link.rtt_us.set(Some(now_us.saturating_sub(stamp)));
                }
                Err(error) => inner.kill(&link, error.into()),
            }
        });
        let weak = Rc::downgrade(link);
        let inner = self.this.clone();
        link.handle("bufferedamountlow", &channel, move |_| {
            let (Some(link), Some(inner)) = (weak.upgrade(), inner.upgrade()) else {
                return;
            };
            if let Err(error) = link.drain() {
                inner.kill(&link, LinkDown::SendFailed(error));
            }
        });
        let weak = Rc::downgrade(link);
        let inner = self.this.clone();
        link.handle("close", &channel, move |_| {
            if let (Some(link), Some(inner)) = (weak.upgrade(), inner.upgrade()) {
                inner.kill(&link, LinkDown::ChannelClosed);
            }
        });
        // The answering side's channel may come from `datachannel` already open, and then its
        // `open` may have fired before we listened.
        let already_open = channel.ready_state() == RtcDataChannelState::Open;
        *link.channel.borrow_mut() = Some(channel);
        if already_open {
            self.opened(link);
        }
    }

    /// The channel is open (once per link, however the browser says it).
    fn opened(&self, link: &Rc<Link>) {
        if link.closed.get() || link.open.replace(true) {
            return;
        }
        link.last_heard_ms.set(monotonic_ms());
        self.emit(LinkEvent::Up {
            peer: link.peer.clone(),
        });
    }

    /// Closes `link` if it is still the table's link for its peer, and reports it down with
    /// what it still had queued.
    fn kill(&self, link: &Rc<Link>, reason: LinkDown) {
        let mut links = self.links.borrow_mut();
        let current = links
            .get(&link.peer)
            .is_some_and(|entry| Rc::ptr_eq(entry, link));
        if !current {
            return; // closed already, or replaced by a newer link to the same peer
        }
        links.remove(&link.peer);
        drop(links);
        let unsent = link.shut();
        self.emit(LinkEvent::Down {
            peer: link.peer.clone(),
            reason,
            unsent,
        });
    }

    /// [`Inner::kill`] from inside a call of the driver: the link leaves the table now (so
    /// later sends go to the relay), its `Down` comes on the next microtask with nothing
    /// unsent (the caller got that back already).
    fn kill_later(&self, link: &Rc<Link>, reason: LinkDown) {
        {
            let mut links = self.links.borrow_mut();
            if links
                .get(&link.peer)
                .is_some_and(|entry| Rc::ptr_eq(entry, link))
            {
                links.remove(&link.peer);
            } else {
                return;
            }
        }
        let _ = link.shut();
        let inner = self.this.clone();
        let peer = link.peer.clone();
        spawn_local(async move {
            if let Some(inner) = inner.upgrade() {
                inner.emit(LinkEvent::Down {
                    peer,
                    reason,
                    unsent: Vec::new(),
                });
            }
        });
    }
}

impl Link {
    /// Registers `on_event` for `kind` on `target`, kept alive as long as the link.
    fn handle(
        &self,
        kind: &'static str,
        target: &web_sys::EventTarget,
        on_event: impl FnMut(JsValue) + 'static,
    ) {
        let closure = Handler::new(on_event);
        let _ = target.add_event_listener_with_callback(kind, closure.as_ref().unchecked_ref());
        self.handlers
            .borrow_mut()
            .push((target.clone(), kind, closure));
    }

    fn queue_job(&self, job: Job) {
        if self.jobs.borrow_mut().try_send(job).is_err() {
            // The peer floods signaling faster than it can be processed: the task sees the
            // closed channel, takes no more, and a link that cannot open is cleared by the
            // heartbeat as never opened.
            self.jobs.borrow_mut().close_channel();
        }
    }

    fn send_now(&self, frame: &str) -> Result<(), String> {
        match self.channel.borrow().as_ref() {
            Some(channel) => DataChannel(channel).send(frame),
            None => Err("no channel".into()),
        }
    }

    /// Moves queued payloads into the channel while its buffer allows.
    fn drain(&self) -> Result<(), String> {
        if !self.open.get() {
            return Ok(());
        }
        let channel = self.channel.borrow();
        let Some(channel) = channel.as_ref() else {
            return Ok(());
        };
        self.queue
            .borrow_mut()
            .drain(&DataChannel(channel))
            .map(|_| ())
    }

    /// Closes the connection for good and takes back what was still queued. The handlers
    /// are dropped on a later microtask: this may run inside one of them.
    fn shut(&self) -> Vec<String> {
        if self.closed.replace(true) {
            return Vec::new();
        }
        self.open.set(false);
        self.jobs.borrow_mut().close_channel();
        if let Some(channel) = self.channel.borrow().as_ref() {
            channel.close();
        }
        self.pc.close();
        let handlers = std::mem::take(&mut *self.handlers.borrow_mut());
        for (target, kind, closure) in &handlers {
            let _ =
                target.remove_event_listener_with_callback(kind, closure.as_ref().unchecked_ref());
        }
        spawn_local(async move { drop(handlers) });
        self.queue.borrow_mut().take_all()
    }
}

/// One link's signaling, in the order it was queued: each step waits for the browser before
/// the next begins (a candidate added before its description is refused).
async fn signaling(inner: Weak<Inner>, link: Weak<Link>, mut jobs: mpsc::Receiver<Job>) {
    let mut early_candidates: Vec<IceCandidate> = Vec::new();
    let mut described = false;
    while let Some(job) = jobs.next().await {
        let (Some(link), Some(inner)) = (link.upgrade(), inner.upgrade()) else {
            return;
        };
        if link.closed.get() {
            return;
        }
        let step = match job {
            Job::MakeOffer => make_offer(&link.pc)
                .await
                .map(|sdp| Some(Signal::Offer { sdp })),
            Job::Remote(Signal::Offer { sdp }) => {
                described = true;
                answer(&link.pc, &sdp, &mut early_candidates)
                    .await
                    .map(|sdp| Some(Signal::Answer { sdp }))
            }
            Job::Remote(Signal::Answer { sdp }) => {
                described = true;
                remote_description(&link.pc, RtcSdpType::Answer, &sdp, &mut early_candidates)
                    .await
                    .map(|()| None)
            }
            Job::Remote(Signal::Candidate { candidate }) if described => {
                add_candidate(&link.pc, &candidate).await;
                Ok(None)
            }
            Job::Remote(Signal::Candidate { candidate }) => {
                if early_candidates.len() < EARLY_CANDIDATES {
                    early_candidates.push(candidate);
                }
                Ok(None)
            }
            // A bye is the driver's to handle (it closes the link); none is queued.
            Job::Remote(Signal::Bye) => Ok(None),
        };
        if link.closed.get() {
            return;
        }
        match step {
            Ok(Some(signal)) => inner.emit(LinkEvent::Signal {
                to: link.peer.clone(),
                signal,
            }),
            Ok(None) => {}
            Err(error) => {
                inner.kill(&link, LinkDown::Signaling(error));
                return;
            }
        }
    }
}

async fn make_offer(pc: &RtcPeerConnection) -> Result<String, String> {
    let offer = JsFuture::from(pc.create_offer()).await.map_err(describe)?;
    let sdp = sdp_of(&offer)?;
    local_description(pc, RtcSdpType::Offer, &sdp).await?;
    Ok(sdp)
}

async fn answer(
    pc: &RtcPeerConnection,
    offer_sdp: &str,
    early_candidates: &mut Vec<IceCandidate>,
) -> Result<String, String> {
    remote_description(pc, RtcSdpType::Offer, offer_sdp, early_candidates).await?;
    let answer = JsFuture::from(pc.create_answer()).await.map_err(describe)?;
    let sdp = sdp_of(&answer)?;
    local_description(pc, RtcSdpType::Answer, &sdp).await?;
    Ok(sdp)
}

/// `createOffer` and `createAnswer` resolve to a plain object with an `sdp` string.
fn sdp_of(description: &JsValue) -> Result<String, String> {
    js_sys::Reflect::get(description, &JsValue::from_str("sdp"))
        .ok()
        .and_then(|sdp| sdp.as_string())
        .ok_or_else(|| "a session description without sdp".to_string())
}

async fn local_description(
    pc: &RtcPeerConnection,
    kind: RtcSdpType,
    sdp: &str,
) -> Result<(), String> {
    let init = RtcSessionDescriptionInit::new(kind);
    init.set_sdp(sdp);
    JsFuture::from(pc.set_local_description(&init))
        .await
        .map(|_| ())
        .map_err(describe)
}

/// Sets the remote description, then adds the candidates that came before it.
async fn remote_description(
    pc: &RtcPeerConnection,
    kind: RtcSdpType,
    sdp: &str,
    early_candidates: &mut Vec<IceCandidate>,
) -> Result<(), String> {
    let init = RtcSessionDescriptionInit::new(kind);
    init.set_sdp(sdp);
    JsFuture::from(pc.set_remote_description(&init))
        .await
        .map_err(describe)?;
    for candidate in std::mem::take(early_candidates) {
        add_candidate(pc, &candidate).await;
    }
    Ok(())
}

/// Adds one remote candidate. One the browser refuses is skipped: the others may connect,
/// and a link that never opens is given up on its deadline.
async fn add_candidate(pc: &RtcPeerConnection, candidate: &IceCandidate) {
    let init = RtcIceCandidateInit::new(&candidate.candidate);
    if let Some(mid) = &candidate.sdp_mid {
        init.set_sdp_mid(Some(mid));
    }
    if let Some(index) = candidate.sdp_m_line_index {
        init.set_sdp_m_line_index(Some(index));
    }
    if let Some(fragment) = &candidate.username_fragment {
        // Not in web-sys: set on the dictionary object.
        let _ = js_sys::Reflect::set(
            &init,
            &JsValue::from_str("usernameFragment"),
            &JsValue::from_str(fragment),
        );
    }
    let added = pc.add_ice_candidate_with_opt_rtc_ice_candidate_init(Some(&init));
    let _ = JsFuture::from(added).await;
}

/// Every [`HEARTBEAT_MS`]: pings each open link, closes the silent ones and those that never
/// opened. Ends when the links are dropped.
async fn heartbeat(inner: Weak<Inner>) {
    loop {
        TimeoutFuture::new(HEARTBEAT_MS).await;
        let Some(inner) = inner.upgrade() else { return };
        let now = monotonic_ms();
        let links: Vec<Rc<Link>> = inner.links.borrow().values().cloned().collect();
        let any_open = links.iter().any(|link| link.open.get());
        for link in links {
            if !link.open.get() {
                if now - link.created_ms > LINK_OPEN_GIVE_UP_MS {
                    inner.kill(&link, LinkDown::NeverOpened);
                }
                continue;
            }
            if now - link.last_heard_ms.get() > LINK_SILENT_MS {
                inner.kill(&link, LinkDown::Silent);
                continue;
            }
            if let Err(error) = link.send_now(&link::ping((now * 1_000.0) as u64)) {
                inner.kill(&link, LinkDown::SendFailed(error));
            }
        }
        if any_open {
            inner.emit(LinkEvent::Heartbeat);
        }
    }
}
