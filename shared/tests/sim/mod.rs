//! A deterministic network simulator: N node state machines over a simulated relay room, with a
//! seeded random source, per-link latency and loss, partitions that split and heal, joins and
//! leaves, and scripted adversaries. The same seed replays exactly.
//!
//! Direct links (WebRTC in a browser) are modelled too when `max_direct_links` is above zero: a
//! node's `OpenLink` is signalled through the relay (so it needs the relay up), the other side
//! answers if `answer_offer` says so, and both get `handle_link_up`. The relay can be stopped
//! and started ([`Sim::set_relay_up`]); a link can die silently ([`Sim::break_link`]), which
//! both sides notice after [`HEARTBEAT_DETECT_MS`], as a driver's heartbeat would.

#![allow(dead_code)]

use shared::block::Block;
use shared::keys::{Address, Keypair};
use shared::mining::{mine, MiningOutcome};
use shared::node::{MiningJob, Node, NodeConfig, NodeEvent, OfferAnswer, Output, Route};
use shared::params::NetworkParams;
use shared::protocol::message::NodeMessage;
use shared::protocol::PeerId;
use std::cmp::Reverse;
use std::collections::{BTreeSet, BinaryHeap, HashMap};

/// How long a driver takes to notice a dead direct link (its heartbeat: no frame for 4 s).
pub const HEARTBEAT_DETECT_MS: u64 = 4_000;
/// Signaling through the relay and ICE on a local network: an offer, an answer, a candidate.
pub const LINK_SETUP_MS: u64 = 80;

#[path = "../common/rng.rs"]
mod rng;
pub use rng::Rng;

/// A scripted misbehaving peer: what it sends on joining, in answer to messages, and on a timer.
pub trait Adversary {
    fn name(&self) -> &'static str;
    fn on_join(&mut self, ctx: &AdversaryContext) -> Vec<String>;
    fn on_message(&mut self, ctx: &AdversaryContext, text: &str) -> Vec<String>;
    fn on_timer(&mut self, ctx: &AdversaryContext) -> Vec<String>;
}

/// What an adversary may know: the honest network's genesis and an honest node's chain.
pub struct AdversaryContext<'a> {
    pub params: &'a NetworkParams,
    pub honest: &'a Node,
    pub now_ms: u64,
}

pub enum Member {
    Honest(Box<Node>),
    Adversary(Box<dyn Adversary>),
}

pub struct SimPeer {
    pub id: PeerId,
    pub member: Member,
    pub online: bool,
    /// Peers only hear each other within one group (a partition puts them in different groups).
    pub group: u32,
    pub mining: bool,
    job: Option<MiningJob>,
    pub messages_in: u64,
    pub bytes_in: u64,
    pub messages_out: u64,
    pub bytes_out: u64,
    pub largest_message: usize,
    pub events: Vec<NodeEvent>,
    /// The instant of the tick scheduled from the node's `poll_timeout`.
    wake_at: Option<u64>,
    pub ticks: u64,
    /// Every message this peer put on the wire (relay or direct), when `record_sent` is set.
    pub record_sent: bool,
    pub sent_log: Vec<String>,
    /// Every message delivered to this peer, when `record_received` is set.
    pub record_received: bool,
    pub received_log: Vec<String>,
    /// Its driver cannot keep up (storage far behind): every peer message arriving meanwhile
    /// is one the driver could not take. See [`Sim::set_driver_stalled`].
    pub driver_stalled: bool,
    /// The share of peer messages its driver sheds (a full inbox), from 0 to 1.
    pub shed_rate: f64,
    /// Peer messages its driver could not take.
    pub driver_dropped: u64,
}

impl SimPeer {
    pub fn node(&self) -> &Node {
        match &self.member {
            Member::Honest(node) => node,
            Member::Adversary(_) => panic!("{} is an adversary", self.id.short()),
        }
    }
    pub fn is_honest(&self) -> bool {
        matches!(self.member, Member::Honest(_))
    }
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Action {
    Deliver {
        from: usize,
        to: usize,
        text: String,
        direct: bool,
    },
    /// Signaling for a link `from` asked for is done: the other side answers or refuses.
    /// `attempt`: the pair's attempt it belongs to; a later open or close of the pair makes it
    /// stale (a closed peer connection never completes).
    LinkAnswer {
        from: usize,
        to: usize,
        attempt: u64,
    },
    /// `to` notices that its link to `from` is gone.
    LinkDown {
        from: usize,
        to: usize,
    },
    Join {
        peer: usize,
    },
    Leave {
        peer: usize,
    },
    /// The wake-up a node asked for through `poll_timeout`.
    Tick {
        peer: usize,
        at: u64,
    },
    BlockFound,
    AdversaryTimer {
        peer: usize,
    },
    Transaction,
}

pub struct SimConfig {
    pub params: NetworkParams,
    pub min_latency_ms: u64,
    pub max_latency_ms: u64,
    pub loss: f64,
    /// Mean time between blocks found by the whole network while everyone mines.
    pub mean_block_ms: u64,
    /// Mean time between transactions, `None` for none.
    pub mean_tx_ms: Option<u64>,
    /// Direct links each node keeps (0: everything goes through the relay).
    pub max_direct_links: usize,
    /// Latency of a direct link, in a range like the relay's.
    pub min_direct_latency_ms: u64,
    pub max_direct_latency_ms: u64,
}

impl Default for SimConfig {
    fn default() -> SimConfig {
        SimConfig {
            params: NetworkParams::test(),
            min_latency_ms: 10,
            max_latency_ms: 120,
            loss: 0.0,
            mean_block_ms: 10_000,
            mean_tx_ms: None,
            max_direct_links: 0,
            min_direct_latency_ms: 2,
            max_direct_latency_ms: 40,
        }
    }
}

pub struct Sim {
    pub rng: Rng,
    pub now_ms: u64,
    pub config: SimConfig,
    pub peers: Vec<SimPeer>,
    queue: BinaryHeap<Reverse<(u64, u64, Action)>>,
    sequence: u64,
    /// When the last message on each link arrives, to keep links first-in first-out.
    link_clock: HashMap<(usize, usize, bool), u64>,
    /// The current link attempt of each pair (lower index first), see `Action::LinkAnswer`.
    link_attempts: HashMap<(usize, usize), u64>,
    pub transactions_sent: u64,
    pub seed: u64,
    /// Whether the relay process runs.
    pub relay_up: bool,
    /// Open direct links, as (lower index, higher index).
    pub links: BTreeSet<(usize, usize)>,
    /// Pairs (lower index, higher index) between which no direct link can open (their routers
    /// change ports, no TURN): offers go through, ICE never succeeds.
    pub no_path: BTreeSet<(usize, usize)>,
    /// Traffic over the relay and over direct links, all peers together.
    pub relay_messages: u64,
    pub relay_bytes: u64,
    pub direct_messages: u64,
    pub direct_bytes: u64,
    /// `new_block` messages delivered through the relay, by (receiver, block hash).
    pub relay_block_deliveries: HashMap<(usize, String), u32>,
}

impl Sim {
    pub fn new(seed: u64, config: SimConfig) -> Sim {
        let start = config.params.genesis_timestamp_ms + 60_000;
        let mut sim = Sim {
            rng: Rng::new(seed),
            now_ms: start,
            config,
            peers: Vec::new(),
            queue: BinaryHeap::new(),
            sequence: 0,
            link_clock: HashMap::new(),
            link_attempts: HashMap::new(),
            transactions_sent: 0,
            seed,
            relay_up: true,
            links: BTreeSet::new(),
            no_path: BTreeSet::new(),
            relay_messages: 0,
            relay_bytes: 0,
            direct_messages: 0,
            direct_bytes: 0,
            relay_block_deliveries: HashMap::new(),
        };
        let first_block = sim.rng.exponential(sim.config.mean_block_ms as f64) as u64;
        sim.schedule(first_block, Action::BlockFound);
        if let Some(mean) = sim.config.mean_tx_ms {
            let first_tx = sim.rng.exponential(mean as f64) as u64;
            sim.schedule(first_tx, Action::Transaction);
        }
        sim
    }

    fn new_peer_id(&mut self) -> PeerId {
        let mut bytes = [0u8; 16];
        bytes[..8].copy_from_slice(&self.rng.next_u64().to_be_bytes());
        bytes[8..].copy_from_slice(&self.rng.next_u64().to_be_bytes());
        PeerId::from_bytes(bytes)
    }

    /// Adds an honest node (offline until [`Sim::join`]); returns its index.
    pub fn add_node(&mut self, name: &str, mining: bool) -> usize {
        self.add_node_with_links(name, mining, self.config.max_direct_links)
    }

    /// Adds an honest node keeping at most `max_direct_links` (0: a native node).
    pub fn add_node_with_links(
        &mut self,
        name: &str,
        mining: bool,
        max_direct_links: usize,
    ) -> usize {
        let mut seed = [0u8; 32];
        seed[..8].copy_from_slice(&self.rng.next_u64().to_be_bytes());
        seed[8..16].copy_from_slice(&(self.peers.len() as u64).to_be_bytes());
        let node = Node::new(NodeConfig {
            params: self.config.params.clone(),
            name: name.into(),
            keypair: Keypair::from_seed(seed),
            max_direct_links,
        });
        self.push_peer(Member::Honest(Box::new(node)), mining)
    }

    pub fn add_adversary(&mut self, adversary: Box<dyn Adversary>) -> usize {
        self.push_peer(Member::Adversary(adversary), false)
    }

    fn push_peer(&mut self, member: Member, mining: bool) -> usize {
        let id = self.new_peer_id();
        self.peers.push(SimPeer {
            id,
            member,
            online: false,
            group: 0,
            mining,
            job: None,
            messages_in: 0,
            bytes_in: 0,
            messages_out: 0,
            bytes_out: 0,
            largest_message: 0,
            events: Vec::new(),
            wake_at: None,
            ticks: 0,
            record_sent: false,
            sent_log: Vec::new(),
            record_received: false,
            received_log: Vec::new(),
            driver_stalled: false,
            shed_rate: 0.0,
            driver_dropped: 0,
        });
        let index = self.peers.len() - 1;
        let now = self.now_ms;
        if let Member::Honest(node) = &mut self.peers[index].member {
            node.set_mining(mining, now);
        }
        self.drain(index);
        index
    }

    fn schedule(&mut self, delay_ms: u64, action: Action) {
        self.sequence += 1;
        self.queue.push(Reverse((
            self.now_ms.saturating_add(delay_ms),
            self.sequence,
            action,
        )));
    }

    pub fn join(&mut self, peer: usize) {
        self.schedule(0, Action::Join { peer });
    }
    pub fn leave(&mut self, peer: usize) {
        self.schedule(0, Action::Leave { peer });
    }

    fn can_hear(&self, a: usize, b: usize) -> bool {
        a != b
            && self.relay_up
            && self.peers[a].online
            && self.peers[b].online
            && self.peers[a].group == self.peers[b].group
    }

    /// Moves peers into groups; pairs that can no longer hear each other see a leave, pairs that
    /// now can see a join, as a relay would report it.
    pub fn set_groups(&mut self, groups: &[u32]) {
        let before: Vec<Vec<bool>> = (0..self.peers.len())
            .map(|a| (0..self.peers.len()).map(|b| self.can_hear(a, b)).collect())
            .collect();
        for (peer, group) in self.peers.iter_mut().zip(groups) {
            peer.group = *group;
        }
        for (a, heard) in before.iter().enumerate() {
            for (b, &heard_before) in heard.iter().enumerate() {
                let hears_now = self.can_hear(a, b);
                if heard_before && !hears_now {
                    self.notify_left(a, b);
                } else if !heard_before && hears_now {
                    self.notify_joined(a, b);
                }
            }
        }
    }

    fn notify_joined(&mut self, to: usize, joined: usize) {
        let id = self.peers[joined].id.clone();
        let now = self.now_ms;
        match &mut self.peers[to].member {
            Member::Honest(node) => node.handle_peer_joined(id, now),
            Member::Adversary(_) => {
                let messages = self.with_adversary(to, |adversary, ctx| adversary.on_join(ctx));
                for text in messages {
                    self.transmit(to, joined, text);
                }
            }
        }
        self.drain(to);
    }

    fn notify_left(&mut self, to: usize, left: usize) {
        let id = self.peers[left].id.clone();
        let now = self.now_ms;
        if let Member::Honest(node) = &mut self.peers[to].member {
            node.handle_peer_left(&id, now);
        }
        self.drain(to);
    }

    fn with_adversary<T>(
        &mut self,
        index: usize,
        f: impl FnOnce(&mut dyn Adversary, &AdversaryContext) -> T,
    ) -> T {
        let honest_index = self
            .peers
            .iter()
            .position(SimPeer::is_honest)
            .expect("a simulation has an honest node");
        let mut member = std::mem::replace(
            &mut self.peers[index].member,
            Member::Adversary(Box::new(Silent)),
        );
        let result = {
            let ctx = AdversaryContext {
                params: &self.config.params,
                honest: self.peers[honest_index].node(),
                now_ms: self.now_ms,
            };
            match &mut member {
                Member::Adversary(adversary) => f(adversary.as_mut(), &ctx),
                Member::Honest(_) => unreachable!("with_adversary is called for adversaries"),
            }
        };
        self.peers[index].member = member;
        result
    }

    fn transmit(&mut self, from: usize, to: usize, text: String) {
        self.transmit_on(from, to, text, false);
    }

    pub fn linked(&self, a: usize, b: usize) -> bool {
        self.links.contains(&(a.min(b), a.max(b)))
    }

    fn transmit_on(&mut self, from: usize, to: usize, text: String, direct: bool) {
        let reachable = if direct {
            self.linked(from, to)
        } else {
            self.can_hear(from, to)
        };
        if !reachable {
            return;
        }
        if self.peers[from].record_sent {
            self.peers[from].sent_log.push(text.clone());
        }
        self.peers[from].messages_out += 1;
        self.peers[from].bytes_out += text.len() as u64;
        if direct {
            self.direct_messages += 1;
            self.direct_bytes += text.len() as u64;
        } else {
            self.relay_messages += 1;
            self.relay_bytes += text.len() as u64;
            if text.starts_with(r#"{"type":"new_block""#) {
                let key = (to, format!("{:016x}", fingerprint(&text)));
                *self.relay_block_deliveries.entry(key).or_default() += 1;
            }
        }
        if self.config.loss > 0.0 && self.rng.chance(self.config.loss) {
            return;
        }
        // Per-link FIFO like a WebSocket through the relay or an ordered data channel: a later
        // message never overtakes an earlier one on the same path.
        let (min, max) = if direct {
            (
                self.config.min_direct_latency_ms,
                self.config.max_direct_latency_ms,
            )
        } else {
            (self.config.min_latency_ms, self.config.max_latency_ms)
        };
        let latency = min + self.rng.below(max - min + 1);
        let clock = self.link_clock.entry((from, to, direct)).or_default();
        let arrival = (self.now_ms + latency).max(*clock);
        *clock = arrival;
        let delay = arrival - self.now_ms;
        self.schedule(
            delay,
            Action::Deliver {
                from,
                to,
                text,
                direct,
            },
        );
    }

    /// Stops or starts the relay process. Stopping it drops every peer's relay connection;
    /// starting it lets every online peer back in (welcome, then the joins of the others).
    pub fn set_relay_up(&mut self, up: bool) {
        if up == self.relay_up {
            return;
        }
        let now = self.now_ms;
        if !up {
            self.relay_up = false;
            for index in 0..self.peers.len() {
                if !self.peers[index].online {
                    continue;
                }
                if let Member::Honest(node) = &mut self.peers[index].member {
                    node.handle_disconnected(now);
                }
                self.drain(index);
            }
            return;
        }
        self.relay_up = true;
        for index in 0..self.peers.len() {
            if self.peers[index].online {
                let present = self.present(index);
                self.welcome(index, present);
            }
        }
        for a in 0..self.peers.len() {
            for b in 0..self.peers.len() {
                if self.can_hear(a, b) {
                    self.notify_joined(a, b);
                }
            }
        }
    }

    /// The relay's welcome to `index`: the peers it can hear that are already in the room.
    fn welcome(&mut self, index: usize, present: Vec<PeerId>) {
        let id = self.peers[index].id.clone();
        let now = self.now_ms;
        if let Member::Honest(node) = &mut self.peers[index].member {
            node.handle_welcome(id, present, now);
        }
        self.drain(index);
    }

    /// The peers `index` can hear, as a relay lists them in its welcome.
    fn present(&self, index: usize) -> Vec<PeerId> {
        (0..self.peers.len())
            .filter(|other| self.can_hear(index, *other))
            .map(|other| self.peers[other].id.clone())
            .collect()
    }

    /// The direct link between `a` and `b` dies without a word (a crashed tab, a lost route):
    /// both notice after the heartbeat's time, and what was in flight on it is lost.
    pub fn break_link(&mut self, a: usize, b: usize) {
        if self.links.remove(&(a.min(b), a.max(b))) {
            self.schedule(HEARTBEAT_DETECT_MS, Action::LinkDown { from: a, to: b });
            self.schedule(HEARTBEAT_DETECT_MS, Action::LinkDown { from: b, to: a });
        }
    }

    /// The open direct links as an adjacency list.
    pub fn direct_components(&self) -> Vec<Vec<usize>> {
        let mut component = vec![usize::MAX; self.peers.len()];
        let mut components = Vec::new();
        for start in 0..self.peers.len() {
            if component[start] != usize::MAX || !self.peers[start].online {
                continue;
            }
            let id = components.len();
            let mut members = vec![start];
            component[start] = id;
            let mut frontier = vec![start];
            while let Some(at) = frontier.pop() {
                for &(a, b) in &self.links {
                    let next = if a == at {
                        b
                    } else if b == at {
                        a
                    } else {
                        continue;
                    };
                    if component[next] == usize::MAX {
                        component[next] = id;
                        members.push(next);
                        frontier.push(next);
                    }
                }
            }
            members.sort();
            components.push(members);
        }
        components
    }

    /// Carries out everything `index` asked for, then sleeps it until its `poll_timeout`: the
    /// simulator ticks a node only when the node asks, as the drivers do, so a deadline missing
    /// from `poll_timeout` shows up here as a stall.
    fn drain(&mut self, index: usize) {
        self.drain_outputs(index);
        let Member::Honest(node) = &self.peers[index].member else {
            return;
        };
        let Some(deadline) = node.poll_timeout() else {
            return;
        };
        let at = deadline.max(self.now_ms + 1);
        let wake = self.peers[index].wake_at;
        if wake.is_none_or(|wake| at < wake) {
            self.peers[index].wake_at = Some(at);
            self.schedule(at - self.now_ms, Action::Tick { peer: index, at });
        }
    }

    fn drain_outputs(&mut self, index: usize) {
        loop {
            let output = match &mut self.peers[index].member {
                Member::Honest(node) => node.poll_output(),
                Member::Adversary(_) => None,
            };
            let Some(output) = output else { break };
            match output {
                Output::Send { to, payload, route } => {
                    if let Some(target) = self.peers.iter().position(|peer| peer.id == to) {
                        self.transmit_on(index, target, payload, route == Route::Direct);
                    }
                }
                Output::OpenLink { peer } => {
                    if let Some(target) = self.index_of(&peer) {
                        // The offer, the answer and the candidates go through the relay.
                        let pair = (index.min(target), index.max(target));
                        if self.can_hear(index, target) && !self.no_path.contains(&pair) {
                            // Behind what `index` sent `target` through the relay before (its
                            // hello): the relay keeps one sender's frames in order.
                            let relayed = self
                                .link_clock
                                .get(&(index, target, false))
                                .copied()
                                .unwrap_or(0);
                            let at = (self.now_ms + LINK_SETUP_MS).max(relayed + 1);
                            let attempt = self.link_attempts.entry(pair).or_default();
                            *attempt += 1;
                            let attempt = *attempt;
                            self.schedule(
                                at - self.now_ms,
                                Action::LinkAnswer {
                                    from: index,
                                    to: target,
                                    attempt,
                                },
                            );
                        }
                    }
                }
                Output::CloseLink { peer } => {
                    if let Some(target) = self.index_of(&peer) {
                        // An attempt still signaling is abandoned with it.
                        *self
                            .link_attempts
                            .entry((index.min(target), index.max(target)))
                            .or_default() += 1;
                        if self.links.remove(&(index.min(target), index.max(target))) {
                            // The data channel's close reaches the other side.
                            self.schedule(
                                self.config.min_direct_latency_ms,
                                Action::LinkDown {
                                    from: index,
                                    to: target,
                                },
                            );
                        }
                    }
                }
                Output::Broadcast { payload } => {
                    for target in 0..self.peers.len() {
                        if self.can_hear(index, target) {
                            self.transmit(index, target, payload.clone());
                        }
                    }
                }
                Output::Mine(job) => self.peers[index].job = Some(job),
                Output::StopMining => self.peers[index].job = None,
                Output::StoreBlock(_)
                | Output::DeleteBlock(_)
                | Output::StoreTransaction(_)
                | Output::DeleteTransaction(_) => {}
                Output::Event(event) => {
                    // Keep memory flat in long runs: only events tests look at.
                    if !matches!(
                        event,
                        NodeEvent::BlockAccepted { .. } | NodeEvent::PeerTip { .. }
                    ) {
                        self.peers[index].events.push(event);
                    }
                }
            }
        }
    }

    /// Runs until simulated time `until_ms` (absolute).
    pub fn run_until(&mut self, until_ms: u64) {
        while let Some(Reverse((at, _, _))) = self.queue.peek() {
            if *at > until_ms {
                break;
            }
            let Reverse((at, _, action)) = self.queue.pop().expect("peeked");
            self.now_ms = at;
            self.step(action);
        }
        self.now_ms = until_ms;
    }

    pub fn run_for(&mut self, duration_ms: u64) {
        self.run_until(self.now_ms + duration_ms);
    }

    fn step(&mut self, action: Action) {
        let now = self.now_ms;
        match action {
            Action::Join { peer } => {
                if self.peers[peer].online {
                    return;
                }
                self.peers[peer].online = true;
                if self.relay_up {
                    let present = self.present(peer);
                    self.welcome(peer, present);
                }
                for other in 0..self.peers.len() {
                    if self.can_hear(peer, other) {
                        self.notify_joined(peer, other);
                        self.notify_joined(other, peer);
                    }
                }
                if !self.peers[peer].is_honest() {
                    self.schedule(1_000, Action::AdversaryTimer { peer });
                }
            }
            Action::Leave { peer } => {
                let hearing: Vec<usize> = (0..self.peers.len())
                    .filter(|&o| self.can_hear(peer, o))
                    .collect();
                self.peers[peer].online = false;
                for other in hearing {
                    self.notify_left(other, peer);
                }
                let linked: Vec<usize> = (0..self.peers.len())
                    .filter(|&other| self.linked(peer, other))
                    .collect();
                for other in linked {
                    // A closed tab does not say goodbye on a data channel: the heartbeat notices.
                    self.links.remove(&(peer.min(other), peer.max(other)));
                    self.schedule(
                        HEARTBEAT_DETECT_MS,
                        Action::LinkDown {
                            from: peer,
                            to: other,
                        },
                    );
                    self.schedule(
                        0,
                        Action::LinkDown {
                            from: other,
                            to: peer,
                        },
                    );
                }
                if let Member::Honest(node) = &mut self.peers[peer].member {
                    node.handle_disconnected(now);
                }
                self.drain(peer);
            }
            Action::LinkAnswer { from, to, attempt } => {
                if self.link_attempts.get(&(from.min(to), from.max(to))) != Some(&attempt) {
                    return; // closed or replaced while signaling
                }
                let from_id = self.peers[from].id.clone();
                let accepted = self.peers[from].online
                    && self.peers[to].online
                    && match &mut self.peers[to].member {
                        Member::Honest(node) => {
                            node.answer_offer(&from_id, now) == OfferAnswer::Accept
                        }
                        Member::Adversary(_) => false,
                    };
                let (from_id, to_id) = (self.peers[from].id.clone(), self.peers[to].id.clone());
                if accepted {
                    self.links.insert((from.min(to), from.max(to)));
                    if let Member::Honest(node) = &mut self.peers[to].member {
                        node.handle_link_up(&from_id, now);
                    }
                    self.drain(to);
                    if let Member::Honest(node) = &mut self.peers[from].member {
                        node.handle_link_up(&to_id, now);
                    }
                } else if let Member::Honest(node) = &mut self.peers[from].member {
                    // Refused (a `bye`) or the other side is gone.
                    node.handle_link_down(&to_id, now);
                }
                self.drain(from);
            }
            Action::LinkDown { from, to } => {
                if self.linked(from, to) {
                    return; // opened again meanwhile
                }
                let from_id = self.peers[from].id.clone();
                if let Member::Honest(node) = &mut self.peers[to].member {
                    node.handle_link_down(&from_id, now);
                }
                self.drain(to);
            }
            Action::Deliver {
                from,
                to,
                text,
                direct,
            } => {
                let reachable = if direct {
                    self.linked(from, to)
                } else {
                    self.can_hear(from, to)
                };
                if !reachable {
                    return;
                }
                let from_id = self.peers[from].id.clone();
                let receiver = &mut self.peers[to];
                receiver.messages_in += 1;
                receiver.bytes_in += text.len() as u64;
                if receiver.record_received {
                    receiver.received_log.push(text.clone());
                }
                receiver.largest_message = receiver.largest_message.max(text.len());
                let shed_rate = receiver.shed_rate;
                let shed = shed_rate > 0.0 && self.rng.chance(shed_rate);
                let receiver = &mut self.peers[to];
                match &mut receiver.member {
                    Member::Honest(node) if shed => {
                        // The driver lost it, and says so.
                        receiver.driver_dropped += 1;
                        node.handle_dropped(&from_id, NodeMessage::asks_for_answer(&text), now);
                        self.drain(to);
                    }
                    Member::Honest(node) => {
                        // While the driver is stalled the node has been told, and refuses it.
                        node.handle_message(&from_id, &text, now);
                        self.drain(to);
                    }
                    Member::Adversary(_) => {
                        let replies = self
                            .with_adversary(to, |adversary, ctx| adversary.on_message(ctx, &text));
                        for reply in replies {
                            self.transmit(to, from, reply);
                        }
                    }
                }
            }
            Action::Tick { peer, at } => {
                if self.peers[peer].wake_at != Some(at) {
                    return; // superseded by an earlier deadline
                }
                self.peers[peer].wake_at = None;
                self.peers[peer].ticks += 1;
                if let Member::Honest(node) = &mut self.peers[peer].member {
                    node.handle_tick(now);
                }
                self.drain(peer);
            }
            Action::AdversaryTimer { peer } => {
                if !self.peers[peer].online {
                    return;
                }
                let spam = self.with_adversary(peer, |adversary, ctx| adversary.on_timer(ctx));
                for text in spam {
                    for target in 0..self.peers.len() {
                        if self.can_hear(peer, target) {
                            self.transmit(peer, target, text.clone());
                        }
                    }
                }
                self.schedule(2_000, Action::AdversaryTimer { peer });
            }
            Action::BlockFound => {
                let miners: Vec<usize> = (0..self.peers.len())
                    .filter(|&i| self.peers[i].mining && self.peers[i].job.is_some())
                    .collect();
                if !miners.is_empty() {
                    let winner = miners[self.rng.below(miners.len() as u64) as usize];
                    self.mine_one(winner);
                }
                let delay = (self.rng.exponential(self.config.mean_block_ms as f64) as u64).max(1);
                self.schedule(delay, Action::BlockFound);
            }
            Action::Transaction => {
                self.random_transaction();
                if let Some(mean) = self.config.mean_tx_ms {
                    let delay = (self.rng.exponential(mean as f64) as u64).max(1);
                    self.schedule(delay, Action::Transaction);
                }
            }
        }
    }

    /// The node at `index` finds a block on its current job.
    pub fn mine_one(&mut self, index: usize) -> Option<Block> {
        let job = self.peers[index].job.clone()?;
        let mut block = job.block.clone();
        block.header.timestamp_ms = block.header.timestamp_ms.max(self.now_ms);
        let mut first = self.rng.next_u64();
        let found = loop {
            match mine(&block.header, first, 1_000) {
                MiningOutcome::Found { nonce, .. } => break nonce,
                MiningOutcome::Exhausted { .. } => first = first.wrapping_add(1_000),
                MiningOutcome::InvalidTarget => return None,
            }
        };
        block.header.nonce = found;
        let now = self.now_ms;
        if let Member::Honest(node) = &mut self.peers[index].member {
            node.handle_mined_block(job.job_id, block.clone(), now);
        }
        self.drain(index);
        Some(block)
    }

    fn random_transaction(&mut self) {
        let honest: Vec<usize> = (0..self.peers.len())
            .filter(|&i| self.peers[i].is_honest() && self.peers[i].online)
            .collect();
        if honest.len() < 2 {
            return;
        }
        let from = honest[self.rng.below(honest.len() as u64) as usize];
        let to = honest[self.rng.below(honest.len() as u64) as usize];
        if from == to {
            return;
        }
        let to_address = self.peers[to].node().address();
        let balance = {
            let node = self.peers[from].node();
            node.balance(&node.address())
        };
        if balance < 3 {
            return;
        }
        let amount = 1 + self.rng.below(balance / 3);
        let fee = self.rng.below(3);
        self.send(from, to_address, amount, fee);
    }

    pub fn send(&mut self, from: usize, to: Address, amount: u64, fee: u64) -> bool {
        let now = self.now_ms;
        let sent = match &mut self.peers[from].member {
            Member::Honest(node) => node.send_transaction(to, amount, fee, now).is_ok(),
            Member::Adversary(_) => false,
        };
        if sent {
            self.transactions_sent += 1;
        }
        self.drain(from);
        sent
    }

    /// Runs an application command on the honest node at `index` (with the simulated time),
    /// then carries out what it asked for.
    pub fn command<T>(&mut self, index: usize, f: impl FnOnce(&mut Node, u64) -> T) -> T {
        let now = self.now_ms;
        let result = match &mut self.peers[index].member {
            Member::Honest(node) => f(node, now),
            Member::Adversary(_) => panic!("commands go to honest nodes"),
        };
        self.drain(index);
        result
    }

    pub fn set_mining(&mut self, index: usize, on: bool) {
        self.peers[index].mining = on;
        let now = self.now_ms;
        if let Member::Honest(node) = &mut self.peers[index].member {
            node.set_mining(on, now);
        }
        self.drain(index);
    }

    /// `index` mutes (or unmutes) the peer at `other`, as the partition controls of a tab do.
    pub fn set_muted(&mut self, index: usize, other: usize, muted: bool) {
        let other_id = self.peers[other].id.clone();
        let now = self.now_ms;
        if let Member::Honest(node) = &mut self.peers[index].member {
            node.set_peer_muted(&other_id, muted, now);
        }
        self.drain(index);
    }

    /// The driver of `index` falls behind (its storage cannot keep up) or catches up again.
    pub fn set_driver_stalled(&mut self, index: usize, stalled: bool) {
        self.peers[index].driver_stalled = stalled;
        let now = self.now_ms;
        if let Member::Honest(node) = &mut self.peers[index].member {
            node.set_inbound_paused(stalled, now);
        }
        self.drain(index);
    }

    pub fn stop_all_mining(&mut self) {
        for index in 0..self.peers.len() {
            if self.peers[index].is_honest() {
                self.set_mining(index, false);
            }
        }
    }

    pub fn honest(&self) -> impl Iterator<Item = &SimPeer> {
        self.peers.iter().filter(|peer| peer.is_honest())
    }

    /// Describes the tips of all honest nodes, for assertion messages.
    pub fn tips(&self) -> String {
        self.honest()
            .map(|peer| {
                let tree = peer.node().tree();
                format!(
                    "{}@{}:{}",
                    peer.node().name(),
                    tree.tip_height(),
                    tree.tip_hash().short()
                )
            })
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// Sums of the message counters, for the report a newcomer test prints.
    pub fn traffic(&self, index: usize) -> (u64, u64, u64, u64) {
        let peer = &self.peers[index];
        (
            peer.messages_in,
            peer.bytes_in,
            peer.messages_out,
            peer.bytes_out,
        )
    }

    pub fn index_of(&self, id: &PeerId) -> Option<usize> {
        self.peers.iter().position(|peer| &peer.id == id)
    }

    pub fn tip_counts(&self) -> HashMap<shared::Hash, usize> {
        let mut counts = HashMap::new();
        for peer in self.honest() {
            *counts.entry(peer.node().tree().tip_hash()).or_default() += 1;
        }
        counts
    }
}

/// Placeholder while an adversary is borrowed out of its slot.
struct Silent;

impl Adversary for Silent {
    fn name(&self) -> &'static str {
        "silent"
    }
    fn on_join(&mut self, _: &AdversaryContext) -> Vec<String> {
        Vec::new()
    }
    fn on_message(&mut self, _: &AdversaryContext, _: &str) -> Vec<String> {
        Vec::new()
    }
    fn on_timer(&mut self, _: &AdversaryContext) -> Vec<String> {
        Vec::new()
    }
}

/// FNV-1a of a message, to count deliveries of the same message without keeping it.
fn fingerprint(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ byte as u64).wrapping_mul(0x0100_0000_01b3)
    })
}
