//! What people see of a node, built the same way for the console (`node/`) and the browser
//! (`web/`): peers with their state, the names we know addresses by (sanitized, always with the
//! address beside them), balances, block rows, each rule's result for a stored block, our own
//! transactions with their confirmations, and the one resolver that turns what a person typed
//! into a recipient. Pure functions of a [`Node`] and an [`AddressBook`]; no I/O, no clock.
//!
//! Names are not identities: a peer chooses its own name in its hello, and any peer can choose
//! any name. So a name is only ever shown next to its address, a name two peers claim is
//! refused as ambiguous, and a name the person pinned to an address (the address book) wins
//! over whatever peers claim.

use crate::block::Block;
use crate::chain::BlockTree;
use crate::hash::Hash;
use crate::keys::Address;
use crate::node::{Handshake, Node, OwnTxState, PeerInfo};
use crate::protocol::message::TipStatus;
use crate::protocol::PeerId;
use crate::validation::{check_block_rules, Rule, RuleOutcome};
use crate::work::Work;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use thiserror::Error;

/// Characters of a name we show; longer names are cut (the wire allows 32).
pub const MAX_SHOWN_NAME_CHARS: usize = 32;
/// Pins in an address book: far more than the people of a classroom, and a bound on the file
/// and on the localStorage entry that hold it.
pub const MAX_PINS: usize = 256;

/// `raw` without control characters, terminal escape sequences, or invisible and
/// direction-changing characters, trimmed and cut to [`MAX_SHOWN_NAME_CHARS`]; so a peer's name
/// cannot move the cursor, recolour a terminal or pose as a different text.
pub fn sanitize_name(raw: &str) -> String {
    let mut out = String::new();
    let mut chars = raw.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            // ESC [ … final byte (CSI), ESC ] … BEL or ESC \ (OSC), or ESC and one character.
            '\u{1b}' => match chars.next() {
                Some('[') => {
                    for c in chars.by_ref() {
                        if ('\u{40}'..='\u{7e}').contains(&c) {
                            break;
                        }
                    }
                }
                Some(']') => {
                    while let Some(c) = chars.next() {
                        if c == '\u{7}' || (c == '\u{1b}' && chars.next_if_eq(&'\\').is_some()) {
                            break;
                        }
                    }
                }
                _ => {}
            },
            // C1 CSI: the rest of the sequence is dropped as above.
            '\u{9b}' => {
                for c in chars.by_ref() {
                    if ('\u{40}'..='\u{7e}').contains(&c) {
                        break;
                    }
                }
            }
            c if c.is_control() || is_invisible(c) => {}
            c => out.push(c),
        }
    }
    out.trim().chars().take(MAX_SHOWN_NAME_CHARS).collect()
}

/// Zero-width characters, direction overrides and isolates, the byte-order mark.
fn is_invisible(c: char) -> bool {
    matches!(c, '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2060}'..='\u{2069}' | '\u{feff}')
}

/// Names compare without case, the way people type them.
fn same_name(a: &str, b: &str) -> bool {
    a.to_lowercase() == b.to_lowercase()
}

/// "bob (3f2a9c1e)": a name never goes without (the start of) its address.
pub fn labelled(name: &str, address: &Address) -> String {
    format!("{name} ({})", address.short())
}

/// How every screen names a peer in running text (the event log included): its name cleaned
/// ([`sanitize_name`]) beside its address, or "peer <id>" before its hello.
pub fn peer_label(peer: &PeerInfo) -> String {
    let name = peer
        .name
        .as_deref()
        .map(sanitize_name)
        .filter(|name| !name.is_empty());
    match (name, &peer.address) {
        (Some(name), Some(address)) => labelled(&name, address),
        _ => format!("peer {}", peer.id.short()),
    }
}

// ---- peers ----

/// Where a peer stands with us.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PeerState {
    /// Joined, no hello yet.
    Pending,
    /// No hello within the grace period the driver allows.
    Silent,
    /// Said hello on our network.
    Ready,
    /// Another network or protocol version.
    Refused,
    /// Dropped for misbehaviour.
    Banned,
    /// Muted by the user.
    Muted,
}

impl PeerState {
    pub fn key(self) -> &'static str {
        match self {
            PeerState::Pending => "pending",
            PeerState::Silent => "silent",
            PeerState::Ready => "ready",
            PeerState::Refused => "refused",
            PeerState::Banned => "banned",
            PeerState::Muted => "muted",
        }
    }
    /// Whether its name may be used to pay it: it said hello on our network and is not banned.
    fn can_be_paid_by_name(self) -> bool {
        matches!(self, PeerState::Ready | PeerState::Muted)
    }
}

impl fmt::Display for PeerState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.key())
    }
}

/// One peer as people see it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PeerView {
    pub id: PeerId,
    /// Its hello name, sanitized; `None` before the hello.
    pub name: Option<String>,
    pub address: Option<Address>,
    pub state: PeerState,
    /// Why the handshake failed, when it did.
    pub refusal: Option<String>,
    /// The known network it is on when that is not ours (the `?net=` name).
    pub other_network: Option<&'static str>,
    /// The tip it last claimed.
    pub tip: Option<TipStatus>,
    pub misbehavior: u32,
    pub muted: bool,
    pub banned: bool,
    pub last_offense: Option<String>,
}

impl PeerView {
    /// Its name beside its address, or "peer 1a2b3c4d" before its hello.
    pub fn label(&self) -> String {
        match (&self.name, &self.address) {
            (Some(name), Some(address)) => labelled(name, address),
            (Some(name), None) => name.clone(),
            _ => format!("peer {}", self.id.short()),
        }
    }
}

/// `peer` as people see it at `now_ms`; a peer without a hello for more than `hello_grace_ms`
/// after joining is silent.
pub fn peer_view(peer: &PeerInfo, now_ms: u64, hello_grace_ms: u64) -> PeerView {
    let silent = now_ms.saturating_sub(peer.joined_at_ms) > hello_grace_ms;
    let (state, refusal) = match &peer.handshake {
        _ if peer.banned => (PeerState::Banned, None),
        Handshake::Refused(reason) => (PeerState::Refused, Some(reason.clone())),
        _ if peer.muted => (PeerState::Muted, None),
        Handshake::Pending if silent => (PeerState::Silent, None),
        Handshake::Pending => (PeerState::Pending, None),
        Handshake::Done => (PeerState::Ready, None),
    };
    PeerView {
        id: peer.id.clone(),
        name: peer
            .name
            .as_deref()
            .map(sanitize_name)
            .filter(|name| !name.is_empty()),
        address: peer.address,
        state,
        refusal,
        other_network: peer.other_network,
        tip: peer.tip,
        misbehavior: peer.misbehavior,
        muted: peer.muted,
        banned: peer.banned,
        last_offense: peer.last_offense.clone(),
    }
}

pub fn peer_views(node: &Node, now_ms: u64, hello_grace_ms: u64) -> Vec<PeerView> {
    node.peers()
        .map(|peer| peer_view(peer, now_ms, hello_grace_ms))
        .collect()
}

// ---- peers that went away ----

/// Peers remembered after they left (or after we went offline), so a partition is visible from
/// both sides and their names stay payable. A classroom room holds a few dozen tabs.
pub const MAX_REMEMBERED_PEERS: usize = 64;
/// A peer gone longer than this folds into one line of the compare table ("3 tabs left in the
/// last minutes"), so a class that reloads often does not fill the projected table with grey
/// rows (issue 29). The rows stay one click away.
pub const GONE_FOLD_MS: u64 = 60_000;

/// A peer as last seen.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SeenPeer {
    pub view: PeerView,
    /// When it was last among our peers.
    pub last_seen_ms: u64,
    /// Among our peers now.
    pub present: bool,
}

impl SeenPeer {
    /// "here", or "seen 12 s ago" / "seen 3 min ago".
    pub fn seen(&self, now_ms: u64) -> String {
        if self.present {
            return "here".into();
        }
        let seconds = now_ms.saturating_sub(self.last_seen_ms) / 1_000;
        match seconds {
            0..=59 => format!("seen {seconds} s ago"),
            60..=3_599 => format!("seen {} min ago", seconds / 60),
            _ => format!("seen {} h ago", seconds / 3_600),
        }
    }
}

/// The peers we have, and the last state of those we had (at most [`MAX_REMEMBERED_PEERS`]
/// gone ones, the longest gone forgotten first). A peer that said hello is remembered by its
/// address too: when it comes back under a new peer id, the old entry goes.
#[derive(Clone, Debug, Default)]
pub struct PeerMemory {
    peers: BTreeMap<PeerId, SeenPeer>,
}

impl PeerMemory {
    /// Takes in the peers we have now.
    pub fn update(&mut self, current: &[PeerView], now_ms: u64) {
        let here: BTreeMap<&PeerId, &PeerView> =
            current.iter().map(|peer| (&peer.id, peer)).collect();
        let addresses_here: Vec<Address> = current.iter().filter_map(|peer| peer.address).collect();
        // A peer that comes back under a new id (a reloaded tab) replaces its old row; one that
        // never said hello (no address: another network, or gone before its hello) is not
        // remembered once gone: there is nothing to show of it or to pay.
        self.peers.retain(|id, seen| {
            here.contains_key(id)
                || seen
                    .view
                    .address
                    .is_some_and(|a| !addresses_here.contains(&a))
        });
        for seen in self.peers.values_mut() {
            seen.present = false;
        }
        for peer in current {
            self.peers.insert(
                peer.id.clone(),
                SeenPeer {
                    view: peer.clone(),
                    last_seen_ms: now_ms,
                    present: true,
                },
            );
        }
        let gone = self.peers.values().filter(|seen| !seen.present).count();
        if gone > MAX_REMEMBERED_PEERS {
            let mut oldest: Vec<(u64, PeerId)> = self
                .peers
                .values()
                .filter(|seen| !seen.present)
                .map(|seen| (seen.last_seen_ms, seen.view.id.clone()))
                .collect();
            oldest.sort();
            for (_, id) in oldest.into_iter().take(gone - MAX_REMEMBERED_PEERS) {
                self.peers.remove(&id);
            }
        }
    }
    /// Present peers first (in id order), then the gone ones, most recently seen first.
    pub fn rows(&self) -> Vec<&SeenPeer> {
        let mut rows: Vec<&SeenPeer> = self.peers.values().collect();
        rows.sort_by_key(|seen| (!seen.present, std::cmp::Reverse(seen.last_seen_ms)));
        rows
    }
    /// The gone peers, most recently seen first, split into those gone for less than
    /// [`GONE_FOLD_MS`] (a row each) and the rest (folded into one line).
    pub fn gone(&self, now_ms: u64) -> (Vec<&SeenPeer>, Vec<&SeenPeer>) {
        self.rows()
            .into_iter()
            .filter(|seen| !seen.present)
            .partition(|seen| now_ms.saturating_sub(seen.last_seen_ms) < GONE_FOLD_MS)
    }

    /// Every remembered peer's view, for the recipient resolver: a peer that went away can
    /// still be paid by the name it said.
    pub fn views(&self) -> Vec<PeerView> {
        self.peers.values().map(|seen| seen.view.clone()).collect()
    }
}

// ---- the address book ----

/// A name the person gave an address.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pin {
    pub name: String,
    pub address: Address,
}

#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum PinError {
    #[error("a pinned name needs at least one visible character")]
    EmptyName,
    #[error("a pinned name cannot be a 40-digit address")]
    NameIsAnAddress,
    #[error("the address book is full ({MAX_PINS} names): remove one first")]
    Full,
}

/// Names the person pinned to addresses. A pinned name is an identity the person vouched for:
/// it wins over any peer that says hello with the same name. Names are unique without case.
/// Stored as JSON (`{"pins":[{"name":…,"address":…}]}`) by each driver: a file in the native
/// node's data directory, localStorage in the browser.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddressBook {
    pins: Vec<Pin>,
}

impl AddressBook {
    /// Parses a stored book, keeping only well-formed pins (at most [`MAX_PINS`]).
    pub fn from_json(text: &str) -> Result<AddressBook, serde_json::Error> {
        let stored: AddressBook = serde_json::from_str(text)?;
        let mut book = AddressBook::default();
        for pin in stored.pins {
            let _ = book.pin(&pin.name, pin.address);
        }
        Ok(book)
    }
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("an address book always serializes")
    }
    pub fn pins(&self) -> &[Pin] {
        &self.pins
    }
    /// Pins `name` to `address`, replacing what the name pointed at. Returns the name as kept.
    pub fn pin(&mut self, name: &str, address: Address) -> Result<String, PinError> {
        if parse_address(name).is_some() {
            return Err(PinError::NameIsAnAddress);
        }
        let name = sanitize_name(name);
        if name.is_empty() {
            return Err(PinError::EmptyName);
        }
        if let Some(pin) = self.pins.iter_mut().find(|pin| same_name(&pin.name, &name)) {
            pin.name = name.clone();
            pin.address = address;
        } else {
            if self.pins.len() >= MAX_PINS {
                return Err(PinError::Full);
            }
            self.pins.push(Pin {
                name: name.clone(),
                address,
            });
        }
        Ok(name)
    }
    /// Removes the pin of `name`; whether there was one.
    pub fn unpin(&mut self, name: &str) -> bool {
        let before = self.pins.len();
        let name = sanitize_name(name);
        self.pins.retain(|pin| !same_name(&pin.name, &name));
        self.pins.len() != before
    }
    pub fn get(&self, name: &str) -> Option<&Pin> {
        self.pins.iter().find(|pin| same_name(&pin.name, name))
    }
    /// The pinned name of `address` (the first, if several).
    pub fn name_of(&self, address: &Address) -> Option<&str> {
        self.pins
            .iter()
            .find(|pin| pin.address == *address)
            .map(|pin| pin.name.as_str())
    }
}

// ---- names ----

/// Who told us a name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NameSource {
    /// Our own name.
    Us,
    /// The person pinned it in the address book.
    Pinned,
    /// A peer said it in its hello: a claim, not an identity.
    Peer,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct KnownName {
    pub name: String,
    pub source: NameSource,
}

/// The names we know addresses by: ours, then the person's pins, then what peers claimed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Names {
    by_address: HashMap<Address, KnownName>,
}

impl Names {
    pub fn new(node: &Node, book: &AddressBook) -> Names {
        let mut by_address = HashMap::new();
        let mut add = |address: Address, name: String, source: NameSource| {
            by_address
                .entry(address)
                .or_insert(KnownName { name, source });
        };
        add(node.address(), sanitize_name(node.name()), NameSource::Us);
        for pin in book.pins() {
            add(pin.address, pin.name.clone(), NameSource::Pinned);
        }
        for peer in node.peers().filter(|peer| !peer.banned) {
            if let (Some(address), Some(name)) = (peer.address, peer.name.as_deref()) {
                let name = sanitize_name(name);
                if !name.is_empty() {
                    add(address, name, NameSource::Peer);
                }
            }
        }
        Names { by_address }
    }
    /// Adds what peers we no longer have said (see [`PeerMemory`]), below every other source.
    pub fn with_remembered(mut self, peers: &[PeerView]) -> Names {
        for peer in peers.iter().filter(|peer| !peer.banned) {
            if let (Some(address), Some(name)) = (peer.address, peer.name.clone()) {
                self.by_address.entry(address).or_insert(KnownName {
                    name,
                    source: NameSource::Peer,
                });
            }
        }
        self
    }
    pub fn get(&self, address: &Address) -> Option<&KnownName> {
        self.by_address.get(address)
    }
    /// "alice (you)", "bob" or none: the name alone, for where the address is shown beside it.
    pub fn name(&self, address: &Address) -> Option<String> {
        self.get(address).map(|known| match known.source {
            NameSource::Us => format!("{} (you)", known.name),
            _ => known.name.clone(),
        })
    }
    /// "bob (3f2a9c1e)", "alice (you) (1a2b3c4d)", or the start of the address alone.
    pub fn label(&self, address: &Address) -> String {
        match self.name(address) {
            Some(name) => labelled(&name, address),
            None => address.short(),
        }
    }
}

// ---- the recipient resolver ----

/// A 40-hex-digit address (either case), or `None`.
pub fn parse_address(text: &str) -> Option<Address> {
    let text = text.trim();
    (text.len() == 40)
        .then(|| Address::from_hex(text).ok())
        .flatten()
}

/// A name and the address it stands for, as offered to the person.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Candidate {
    pub name: String,
    pub address: Address,
}

impl fmt::Display for Candidate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.name, self.address.to_hex())
    }
}

fn list(candidates: &[Candidate]) -> String {
    if candidates.is_empty() {
        return "none".into();
    }
    let items: Vec<String> = candidates.iter().map(ToString::to_string).collect();
    items.join(", ")
}

/// How a recipient was found.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RecipientSource {
    Address,
    Pinned,
    Peer,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Recipient {
    pub address: Address,
    /// The name it goes by, when it was chosen by name.
    pub name: Option<String>,
    pub source: RecipientSource,
}

#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum RecipientError {
    #[error("choose a peer or paste an address")]
    Empty,
    #[error("`{text}` is neither a pinned name, a peer's name nor a 40-digit address (peers: {})", list(.known))]
    Unknown { text: String, known: Vec<Candidate> },
    #[error("{} peers say they are `{name}`: pay one by its address, or pin the name to one ({})", .candidates.len(), list(.candidates))]
    Ambiguous {
        name: String,
        candidates: Vec<Candidate>,
    },
}

/// The one way a typed recipient becomes an address, in both UIs:
/// 1. a 40-digit address (or "name (address)", as suggestion lists show it) is that address;
/// 2. a pinned name (without case) is the address the person pinned it to;
/// 3. a name (without case) that ready peers said hello with is their address, if they all
///    have the same one; two addresses under one name are refused, listing them.
///
/// Our own address is never a candidate by name.
pub fn resolve_recipient(
    text: &str,
    peers: &[PeerView],
    book: &AddressBook,
    us: &Address,
) -> Result<Recipient, RecipientError> {
    let text = text.trim();
    if text.is_empty() {
        return Err(RecipientError::Empty);
    }
    let suggested = text
        .rsplit_once('(')
        .and_then(|(_, rest)| rest.strip_suffix(')'));
    if let Some(address) = parse_address(text).or_else(|| suggested.and_then(parse_address)) {
        return Ok(Recipient {
            address,
            name: None,
            source: RecipientSource::Address,
        });
    }
    let wanted = sanitize_name(text);
    if let Some(pin) = book.get(&wanted) {
        return Ok(Recipient {
            address: pin.address,
            name: Some(pin.name.clone()),
            source: RecipientSource::Pinned,
        });
    }
    let payable: Vec<Candidate> = peers
        .iter()
        .filter(|peer| peer.state.can_be_paid_by_name())
        .filter_map(|peer| {
            let address = peer.address.filter(|address| address != us)?;
            Some(Candidate {
                name: peer.name.clone()?,
                address,
            })
        })
        .collect();
    let mut matching: Vec<Candidate> = payable
        .iter()
        .filter(|candidate| same_name(&candidate.name, &wanted))
        .cloned()
        .collect();
    matching.sort_by_key(|candidate| candidate.address);
    matching.dedup_by_key(|candidate| candidate.address);
    match matching.len() {
        0 => Err(RecipientError::Unknown {
            text: wanted,
            known: payable,
        }),
        1 => {
            let found = matching.remove(0);
            Ok(Recipient {
                address: found.address,
                name: Some(found.name),
                source: RecipientSource::Peer,
            })
        }
        _ => Err(RecipientError::Ambiguous {
            name: wanted,
            candidates: matching,
        }),
    }
}

// ---- balances ----

/// One account of the ledger at our tip.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AccountView {
    pub address: Address,
    /// Its name, when we know one ("… (you)" for ours).
    pub name: Option<String>,
    pub balance: u64,
    pub nonce: u64,
}

/// Every account with coins or history on our best chain, richest first, ties by address: the
/// same rows on every node of that chain.
pub fn accounts(node: &Node, names: &Names) -> Vec<AccountView> {
    let mut rows: Vec<AccountView> = node
        .tree()
        .ledger()
        .accounts()
        .filter(|(_, account)| account.balance > 0 || account.nonce > 0)
        .map(|(address, account)| AccountView {
            address: *address,
            name: names.name(address),
            balance: account.balance,
            nonce: account.nonce,
        })
        .collect();
    rows.sort_by(|a, b| b.balance.cmp(&a.balance).then(a.address.cmp(&b.address)));
    rows
}

// ---- blocks ----

/// One block of the best chain as a row.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct BlockRow {
    pub height: u64,
    pub hash: Hash,
    pub prev_hash: Hash,
    pub timestamp_ms: u64,
    pub tx_count: usize,
    pub miner: Address,
    pub miner_name: Option<String>,
    /// What the coinbase pays: subsidy plus fees.
    pub reward: u64,
}

/// `count` blocks of the best chain, newest first, starting `skip` blocks below the tip.
pub fn active_blocks_newest_first(
    tree: &BlockTree,
    skip: u64,
    count: usize,
) -> Vec<std::sync::Arc<Block>> {
    let tip = tree.tip_height();
    if skip > tip || count == 0 {
        return Vec::new();
    }
    let top = tip - skip;
    let bottom = top.saturating_sub(count as u64 - 1);
    let mut blocks = tree.active_blocks(bottom, (top - bottom + 1) as usize);
    blocks.reverse();
    blocks
}

pub fn block_row(block: &Block, names: &Names) -> BlockRow {
    BlockRow {
        height: block.header.height,
        hash: block.hash(),
        prev_hash: block.header.prev_hash,
        timestamp_ms: block.header.timestamp_ms,
        tx_count: block.transactions.len(),
        miner: block.coinbase.to,
        miner_name: names.name(&block.coinbase.to),
        reward: block.coinbase.amount,
    }
}

/// Rows of the best chain, newest first, starting `skip` rows below the tip.
pub fn chain_rows(node: &Node, names: &Names, skip: u64, count: usize) -> Vec<BlockRow> {
    active_blocks_newest_first(node.tree(), skip, count)
        .iter()
        .map(|block| block_row(block, names))
        .collect()
}

/// One line of a block's rule list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RuleView {
    /// The context rule, or `None` for the genesis line and the ledger rules.
    pub rule: Option<Rule>,
    pub title: &'static str,
    /// The numbers the rule compared.
    pub detail: String,
    pub outcome: RuleOutcome,
}

/// Each rule's result for the stored block `hash` in its place in the tree, at `now_ms`: the
/// context rules as [`check_block_rules`] finds them, then the ledger rules (checked when the
/// block joined the best chain; not yet for a side branch).
pub fn block_rules(tree: &BlockTree, hash: &Hash, now_ms: u64) -> Option<Vec<RuleView>> {
    let block = tree.block(hash)?;
    let header = &block.header;
    if header.height == 0 {
        return Some(vec![RuleView {
            rule: None,
            title: "genesis",
            detail: "the built-in first block of this network; every node has it".into(),
            outcome: RuleOutcome::Passed,
        }]);
    }
    let parent = tree.parent_context(&header.prev_hash)?;
    let params = tree.params();
    let results = check_block_rules(block, &parent, params, &tree.chain_id(), now_ms);
    let fees = block
        .total_fees()
        .map_or("overflowing".into(), |fees| fees.to_string());
    let mut rules: Vec<RuleView> = results
        .into_iter()
        .map(|(rule, outcome)| {
            let (title, detail) = match rule {
                Rule::Version => ("version", format!("version {}", header.version)),
                Rule::PrevHash => (
                    "links to its parent",
                    format!(
                        "previous hash {} is block {}",
                        header.prev_hash.short(),
                        parent.header.height
                    ),
                ),
                Rule::Height => (
                    "height follows",
                    format!("{} = {} + 1", header.height, parent.header.height),
                ),
                Rule::Target => (
                    "difficulty",
                    if header.target == parent.next_target {
                        "the target the difficulty rule sets for this place in the chain".into()
                    } else {
                        format!(
                            "target {:08x}, but the difficulty rule sets {:08x} here",
                            header.target.0, parent.next_target.0
                        )
                    },
                ),
                Rule::ProofOfWork => (
                    "proof of work",
                    format!(
                        "its hash starts with {}; the target asks for {} (on average)",
                        plural(u64::from(hash.leading_zero_bits()), "zero bit", "zero bits"),
                        header.target.work().log2().round() as u64
                    ),
                ),
                Rule::TimestampAfterMedian => (
                    "time after the median",
                    if header.timestamp_ms > parent.median_time_past {
                        format!(
                            "stamped {} after the median time of the last {} blocks",
                            duration_words(header.timestamp_ms - parent.median_time_past),
                            params.median_time_span
                        )
                    } else {
                        format!(
                            "stamped {} before the median time of the last {} blocks",
                            duration_words(parent.median_time_past - header.timestamp_ms),
                            params.median_time_span
                        )
                    },
                ),
                Rule::TimestampNotAhead => (
                    "time not too far ahead",
                    format!(
                        "stamped {} your clock; at most {} ahead is allowed",
                        if header.timestamp_ms > now_ms {
                            format!("{} ahead of", duration_words(header.timestamp_ms - now_ms))
                        } else {
                            format!("{} behind", duration_words(now_ms - header.timestamp_ms))
                        },
                        duration_words(params.max_future_ms)
                    ),
                ),
                Rule::TransactionCount => (
                    "transaction count",
                    format!(
                        "{} (at most {})",
                        plural(
                            block.transactions.len() as u64,
                            "transaction",
                            "transactions"
                        ),
                        params.max_block_txs
                    ),
                ),
                Rule::BlockSize => (
                    "size",
                    format!(
                        "{} (at most {})",
                        plural(block.encoded_len() as u64, "byte", "bytes"),
                        params.max_block_bytes
                    ),
                ),
                Rule::TxRoot => (
                    "transaction root",
                    format!(
                        "the header's Merkle root {} matches the transactions",
                        header.tx_root.short()
                    ),
                ),
                Rule::CoinbaseHeight => (
                    "reward's height",
                    format!("the reward names block {}", block.coinbase.height),
                ),
                Rule::UniqueTransactions => (
                    "no transaction twice",
                    match block.transactions.len() {
                        0 => "no transactions".into(),
                        1 => "one transaction".into(),
                        n => format!("{n} transactions, all different"),
                    },
                ),
                Rule::TransactionAmounts => (
                    "amounts",
                    "every amount above zero, and no amount plus fee too large to count".into(),
                ),
                Rule::CoinbaseAmount => (
                    "reward",
                    format!(
                        "pays {}: the subsidy of {} plus {} of fees",
                        plural(block.coinbase.amount, "coin", "coins"),
                        params.subsidy(header.height),
                        fees
                    ),
                ),
                Rule::Signatures => (
                    "signatures",
                    match block.transactions.len() {
                        0 => "no signatures to check".into(),
                        1 => "the signature verifies".into(),
                        n => format!("all {n} signatures verify"),
                    },
                ),
            };
            RuleView {
                rule: Some(rule),
                title,
                detail,
                outcome,
            }
        })
        .collect();
    let on_best_chain = tree.is_active(hash);
    rules.push(RuleView {
        rule: None,
        title: "nonces and balances",
        detail: if on_best_chain {
            "every sender had the coins and the right nonce".into()
        } else {
            "checked when its branch becomes the best chain".into()
        },
        outcome: if on_best_chain {
            RuleOutcome::Passed
        } else {
            RuleOutcome::NotReached
        },
    });
    Some(rules)
}

// ---- our transactions ----

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OwnTxView {
    pub id: Hash,
    pub to: Address,
    pub to_name: Option<String>,
    pub amount: u64,
    pub fee: u64,
    pub nonce: u64,
    pub state: OwnTxState,
    /// Blocks on top of it, its own included (0 unless confirmed).
    pub confirmations: u64,
    /// The most confirmations it ever had (more than `confirmations` after a reorg).
    pub max_confirmations: u64,
}

impl OwnTxView {
    /// A machine key (`pending` / `confirmed` / `reversed` / `dropped`) and a sentence for people.
    pub fn describe(&self) -> (&'static str, String) {
        match &self.state {
            OwnTxState::Pending if self.max_confirmations > 0 => (
                "pending",
                format!(
                    "pending again: its block left the best chain (it had {})",
                    plural(self.max_confirmations, "confirmation", "confirmations")
                ),
            ),
            OwnTxState::Pending => ("pending", "pending".into()),
            OwnTxState::Reversed { confirmations } => (
                "reversed",
                format!(
                    "reversed at {}: another transaction with its nonce is confirmed instead",
                    plural(*confirmations, "confirmation", "confirmations")
                ),
            ),
            OwnTxState::Confirmed { height, .. } => (
                "confirmed",
                format!(
                    "confirmed in block {height} ({} confirmation{})",
                    self.confirmations,
                    if self.confirmations == 1 { "" } else { "s" }
                ),
            ),
            OwnTxState::Dropped { reason } => ("dropped", format!("dropped: {reason}")),
        }
    }
}

/// Our own transactions, newest first.
pub fn own_transactions(node: &Node, names: &Names) -> Vec<OwnTxView> {
    let mut rows: Vec<OwnTxView> = node
        .own_transactions()
        .map(|own| OwnTxView {
            id: own.id,
            to: own.tx.to,
            to_name: names.name(&own.tx.to),
            amount: own.tx.amount,
            fee: own.tx.fee,
            nonce: own.tx.nonce,
            state: own.state.clone(),
            confirmations: node.confirmations(own),
            max_confirmations: own.max_confirmations,
        })
        .collect();
    rows.reverse();
    rows
}

// ---- payments to us ----

/// Blocks searched back from the tip for payments to us: more than a lesson makes, and cheap
/// to scan on every snapshot (a few microseconds a block).
pub const INCOMING_SCAN_BLOCKS: usize = 1_000;
/// Payments to us shown, newest first.
pub const MAX_INCOMING_SHOWN: usize = 50;

/// Where a payment to us stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IncomingState {
    /// Waiting in our pool: announced, not yet in a block of our best chain.
    Pending,
    Confirmed {
        height: u64,
        confirmations: u64,
    },
    /// Its block left our best chain and the sender's nonce is used there by another
    /// transaction (a double spend): it will never confirm. `confirmations` is the most it had.
    Reversed {
        confirmations: u64,
    },
}

/// A payment someone made to us.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IncomingView {
    pub id: Hash,
    pub from: Address,
    pub from_name: Option<String>,
    pub amount: u64,
    pub state: IncomingState,
    /// The most confirmations it ever had.
    pub max_confirmations: u64,
}

impl IncomingView {
    /// A machine key (`pending` / `confirmed` / `reversed`) and a sentence for people.
    pub fn describe(&self) -> (&'static str, String) {
        match self.state {
            IncomingState::Pending if self.max_confirmations > 0 => (
                "pending",
                format!(
                    "pending again: its block left the best chain (it had {})",
                    plural(self.max_confirmations, "confirmation", "confirmations")
                ),
            ),
            IncomingState::Pending => ("pending", "pending: not in a block yet".into()),
            IncomingState::Reversed { confirmations } => (
                "reversed",
                format!(
                    "reversed at {}: the sender spent it again on a heavier chain",
                    plural(confirmations, "confirmation", "confirmations")
                ),
            ),
            IncomingState::Confirmed {
                height,
                confirmations,
            } => (
                "confirmed",
                format!(
                    "received in block {height} ({})",
                    plural(confirmations, "confirmation", "confirmations")
                ),
            ),
        }
    }
}

/// "1 block", "2 blocks": a count with the right form of its noun.
pub fn plural(count: u64, one: &str, many: &str) -> String {
    format!("{count} {}", if count == 1 { one } else { many })
}

/// A span of time for people: "350 ms", "4.2 s", "2 min", "3 min 5 s", "2 h 10 min".
pub fn duration_words(ms: u64) -> String {
    let seconds = ms / 1_000;
    match ms {
        0..=999 => format!("{ms} ms"),
        1_000..=59_999 => {
            let tenths = ms / 100;
            if tenths.is_multiple_of(10) {
                format!("{seconds} s")
            } else {
                format!("{}.{} s", tenths / 10, tenths % 10)
            }
        }
        60_000..=3_599_999 if seconds.is_multiple_of(60) => format!("{} min", seconds / 60),
        60_000..=3_599_999 => format!("{} min {} s", seconds / 60, seconds % 60),
        _ if (seconds / 60).is_multiple_of(60) => format!("{} h", seconds / 3_600),
        _ => format!("{} h {} min", seconds / 3_600, (seconds / 60) % 60),
    }
}

/// Payments to our address (coinbases aside), newest first: those waiting in our pool, then
/// those the node remembers that are no longer on our best chain (reversed, or pending again
/// after a reorg), then those in the last [`INCOMING_SCAN_BLOCKS`] blocks of our best chain,
/// at most [`MAX_INCOMING_SHOWN`].
pub fn incoming_payments(node: &Node, names: &Names) -> Vec<IncomingView> {
    let us = node.address();
    let tree = node.tree();
    let tip = tree.tip_height();
    let remembered: std::collections::HashMap<Hash, u64> = node
        .incoming_transactions()
        .map(|known| (known.id, known.max_confirmations))
        .collect();
    let view = |tx: &crate::tx::Transaction, state: IncomingState| IncomingView {
        id: tx.id(),
        from: tx.sender(),
        from_name: names.name(&tx.sender()),
        amount: tx.amount,
        max_confirmations: remembered.get(&tx.id()).copied().unwrap_or(0),
        state,
    };
    let mut rows: Vec<IncomingView> = node
        .mempool()
        .transactions()
        .iter()
        .filter(|tx| tx.to == us && tx.sender() != us)
        .map(|tx| view(tx, IncomingState::Pending))
        .collect();
    // Remembered payments whose block is not on our best chain and that are not in the pool.
    for known in node.incoming_transactions().rev() {
        let on_best_chain = known.block.is_some_and(|(_, block)| tree.is_active(&block));
        if on_best_chain || node.mempool().contains(&known.id) {
            continue;
        }
        let state = if node.nonce_used_on_best_chain(&known.tx) {
            IncomingState::Reversed {
                confirmations: known.max_confirmations,
            }
        } else {
            IncomingState::Pending
        };
        rows.push(view(&known.tx, state));
    }
    let from_height = (tip + 1).saturating_sub(INCOMING_SCAN_BLOCKS as u64);
    let blocks = tree.active_blocks(from_height, INCOMING_SCAN_BLOCKS);
    for block in blocks.iter().rev() {
        if rows.len() >= MAX_INCOMING_SHOWN {
            break;
        }
        let height = block.header.height;
        for tx in block.transactions.iter().rev() {
            if tx.to == us && tx.sender() != us {
                rows.push(view(
                    tx,
                    IncomingState::Confirmed {
                        height,
                        confirmations: tip + 1 - height,
                    },
                ));
            }
        }
    }
    rows.truncate(MAX_INCOMING_SHOWN);
    rows
}

// ---- private mining ----

/// Where our private branch stands against the public chain, for the mining panel and the
/// lesson cards.
#[derive(Clone, Debug, PartialEq)]
pub struct PrivateView {
    /// Blocks mined privately (not yet released).
    pub blocks: usize,
    /// The height of the public block the branch starts from.
    pub base_height: u64,
    pub private_height: u64,
    /// The heaviest public block we hold.
    pub public_height: u64,
    /// Private tip height minus public tip height (negative: behind).
    pub lead_blocks: i64,
    /// The private tip's work minus the public tip's, in blocks' worth at the public tip's
    /// target (what decides who wins at the release).
    pub lead_work_blocks: f64,
    /// "2.0 blocks more", "1.0 block less", "same work".
    pub lead_text: String,
    /// Double spends waiting for, or in, the branch.
    pub double_spends: usize,
    /// The branch is at its bound ([`crate::node::MAX_PRIVATE_BLOCKS`]): release it.
    pub full: bool,
}

impl PrivateView {
    /// Whether a release now would win (more work than the public chain).
    pub fn ahead(&self) -> bool {
        self.lead_work_blocks > 0.0
    }

    /// One line for people: "private branch: 3 blocks, 1.0 block more work than the public chain".
    pub fn describe(&self) -> String {
        let lead = if self.lead_text == "same work" {
            "the same work as the public chain".to_string()
        } else {
            format!("{} work than the public chain", self.lead_text)
        };
        format!(
            "Private branch: {} from block {}, {lead}.",
            plural(self.blocks as u64, "block", "blocks"),
            self.base_height
        )
    }
}

/// Our private branch, `None` when private mining is off.
pub fn private_view(node: &Node) -> Option<PrivateView> {
    let status = node.private_status()?;
    let per_block = node
        .tree()
        .header(&status.public_tip.hash)
        .map(|header| header.target.work())
        .unwrap_or_else(|| node.tree().tip_header().target.work());
    let lead_work_blocks = work_ahead_in_blocks(
        &status.tip.total_work,
        &status.public_tip.total_work,
        &per_block,
    );
    Some(PrivateView {
        blocks: status.blocks,
        base_height: status.base.height,
        private_height: status.tip.height,
        public_height: status.public_tip.height,
        lead_blocks: status.tip.height as i64 - status.public_tip.height as i64,
        lead_work_blocks,
        lead_text: describe_work_ahead(lead_work_blocks),
        double_spends: status.double_spends,
        full: status.full,
    })
}

// ---- work people can compare ----

/// How much more work `theirs` has than `ours`, in blocks' worth of work at `per_block` (the
/// work of one block at the current target): +2.0 means "two blocks ahead". Both chains' total
/// work is a huge number (2^29.4 and 2^29.4 look the same); the difference in blocks shows why
/// one of them wins.
pub fn work_ahead_in_blocks(theirs: &Work, ours: &Work, per_block: &Work) -> f64 {
    let per_block = per_block.as_f64();
    if per_block <= 0.0 {
        return 0.0;
    }
    let difference = if theirs >= ours {
        Work(theirs.0 - ours.0).as_f64()
    } else {
        -Work(ours.0 - theirs.0).as_f64()
    };
    difference / per_block
}

/// "same work", "1.0 block more", "2.5 blocks less" (one decimal).
pub fn describe_work_ahead(blocks: f64) -> String {
    let rounded = (blocks * 10.0).round() / 10.0;
    if rounded == 0.0 {
        return "same work".into();
    }
    let amount = rounded.abs();
    let noun = if amount == 1.0 { "block" } else { "blocks" };
    let direction = if rounded > 0.0 { "more" } else { "less" };
    format!("{amount:.1} {noun} {direction}")
}

/// What the tamper sandbox shows of one edited copy of a block: the checks a reader can follow
/// by eye, each done by the consensus code itself. `parent_hash` is the (recomputed) hash of the
/// copy before it, `None` for the first copy; `subsidy_and_fees` what its coinbase should pay.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TamperChecks {
    pub proof_of_work: bool,
    pub tx_root: bool,
    pub signatures: bool,
    pub coinbase: bool,
    /// Its `prev_hash` still equals the hash of the block before it.
    pub link: bool,
}

impl TamperChecks {
    pub fn valid(&self) -> bool {
        self.proof_of_work && self.tx_root && self.signatures && self.coinbase && self.link
    }
}

pub fn tamper_checks(
    block: &Block,
    parent_hash: Option<Hash>,
    expected_coinbase: u64,
    chain_id: &Hash,
) -> TamperChecks {
    TamperChecks {
        proof_of_work: crate::mining::meets_target(&block.header),
        tx_root: block.compute_tx_root() == block.header.tx_root,
        signatures: crate::validation::verify_signatures(&block.transactions, chain_id).is_ok(),
        coinbase: block.coinbase.amount == expected_coinbase,
        link: parent_hash.is_none_or(|parent| parent == block.header.prev_hash),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn work_is_compared_in_blocks_at_the_current_target() {
        let per_block = crate::work::Target(0x1f00_ffff).work();
        let times = |n: u64| Work(per_block.0 * crate::work::U256::from(n));
        let ours = times(40);
        assert_eq!(work_ahead_in_blocks(&times(42), &ours, &per_block), 2.0);
        assert_eq!(work_ahead_in_blocks(&times(39), &ours, &per_block), -1.0);
        assert_eq!(work_ahead_in_blocks(&ours, &ours, &per_block), 0.0);
        let cases = [
            (0.0, "same work"),
            (0.04, "same work"),
            (1.0, "1.0 block more"),
            (-1.0, "1.0 block less"),
            (2.46, "2.5 blocks more"),
            (-0.3, "0.3 blocks less"),
        ];
        for (blocks, text) in cases {
            assert_eq!(describe_work_ahead(blocks), text, "{blocks}");
        }
        assert_eq!(
            Work(crate::work::U256::from(3u64) << 100).as_f64(),
            3.0 * 2f64.powi(100)
        );
    }

    #[test]
    fn a_peer_that_went_away_is_remembered_with_when_it_was_seen_and_stays_payable() {
        let bob = peer(1, "bob", 0xbb, PeerState::Ready);
        let carol = peer(2, "carol", 0xcc, PeerState::Ready);
        let mut memory = PeerMemory::default();
        memory.update(&[bob.clone(), carol.clone()], 1_000);
        memory.update(std::slice::from_ref(&carol), 13_500);
        let rows = memory.rows();
        assert_eq!(rows.len(), 2);
        assert!(rows[0].present && rows[0].view.id == carol.id);
        assert!(!rows[1].present);
        assert_eq!(rows[1].seen(13_500), "seen 12 s ago");
        assert_eq!(rows[1].seen(200_000), "seen 3 min ago");
        assert_eq!(rows[0].seen(200_000), "here");
        // Gone, but still paid by name.
        let recipient =
            resolve_recipient("bob", &memory.views(), &AddressBook::default(), &US).unwrap();
        assert_eq!(recipient.address, Address([0xbb; 20]));
        // Back under a new peer id: the old entry goes.
        let bob_again = peer(9, "bob", 0xbb, PeerState::Ready);
        memory.update(&[carol.clone(), bob_again], 20_000);
        assert_eq!(memory.rows().len(), 2);
        assert!(memory.rows().iter().all(|seen| seen.present));
        // Bounded.
        for i in 0..(MAX_REMEMBERED_PEERS as u8 + 10) {
            memory.update(
                &[peer(100 + i, "x", i, PeerState::Ready)],
                30_000 + i as u64,
            );
        }
        memory.update(&[], 40_000);
        assert_eq!(memory.rows().len(), MAX_REMEMBERED_PEERS);
    }

    #[test]
    fn counts_have_the_right_noun() {
        assert_eq!(plural(1, "transaction", "transactions"), "1 transaction");
        assert_eq!(plural(0, "transaction", "transactions"), "0 transactions");
        assert_eq!(
            plural(2, "confirmation", "confirmations"),
            "2 confirmations"
        );
    }

    fn peer(id: u8, name: &str, address: u8, state: PeerState) -> PeerView {
        PeerView {
            id: PeerId::from_bytes([id; 16]),
            name: Some(name.into()),
            address: Some(Address([address; 20])),
            state,
            refusal: None,
            other_network: None,
            tip: None,
            misbehavior: 0,
            muted: false,
            banned: false,
            last_offense: None,
        }
    }

    const US: Address = Address([0xee; 20]);

    #[test]
    fn names_lose_control_characters_and_escapes() {
        let cases = [
            ("bob", "bob"),
            ("  bob  ", "bob"),
            ("\u{1b}[31mbob\u{1b}[0m", "bob"),
            ("\u{1b}]0;owned\u{7}bob", "bob"),
            ("\u{1b}]8;;http://x\u{1b}\\bob", "bob"),
            ("bo\u{1b}Mb", "bob"),
            ("b\u{9b}2Job", "bob"),
            ("b\no\rb\u{7}\u{0}", "bob"),
            ("b\u{202e}ob\u{200b}", "bob"),
            ("\u{1b}[", ""),
            ("Zoë", "Zoë"),
        ];
        for (raw, shown) in cases {
            assert_eq!(sanitize_name(raw), shown, "{raw:?}");
        }
        assert_eq!(sanitize_name(&"x".repeat(100)).len(), MAX_SHOWN_NAME_CHARS);
    }

    #[test]
    fn a_name_two_peers_claim_is_refused_with_both_addresses() {
        // Issue 12: a rogue said hello as `bob` and got the coins meant for bob.
        let peers = [
            peer(1, "bob", 0xbb, PeerState::Ready),
            peer(2, "bob", 0x66, PeerState::Ready),
        ];
        let book = AddressBook::default();
        let error = resolve_recipient("bob", &peers, &book, &US).unwrap_err();
        let RecipientError::Ambiguous { candidates, .. } = &error else {
            panic!("{error:?}");
        };
        let addresses: Vec<Address> = candidates.iter().map(|c| c.address).collect();
        assert_eq!(addresses, [Address([0x66; 20]), Address([0xbb; 20])]);
        let text = error.to_string();
        assert!(text.contains(&"bb".repeat(20)) && text.contains(&"66".repeat(20)));
        // Case does not make a different name.
        let peers = [
            peer(1, "bob", 0xbb, PeerState::Ready),
            peer(2, "BOB", 0x66, PeerState::Ready),
        ];
        assert!(matches!(
            resolve_recipient("Bob", &peers, &book, &US),
            Err(RecipientError::Ambiguous { .. })
        ));
    }

    #[test]
    fn a_pinned_name_wins_over_what_peers_claim() {
        let peers = [
            peer(1, "bob", 0x66, PeerState::Ready),
            peer(2, "bob", 0xbb, PeerState::Ready),
        ];
        let mut book = AddressBook::default();
        book.pin("Bob", Address([0xbb; 20])).unwrap();
        let found = resolve_recipient("bob", &peers, &book, &US).unwrap();
        assert_eq!(found.address, Address([0xbb; 20]));
        assert_eq!(found.source, RecipientSource::Pinned);
        // Even with only the impostor in the room.
        let found = resolve_recipient("bob", &peers[..1], &book, &US).unwrap();
        assert_eq!(found.address, Address([0xbb; 20]));
    }

    #[test]
    fn recipients_by_address_name_or_suggestion() {
        let peers = [
            peer(1, "Carol", 0xcc, PeerState::Ready),
            peer(2, "dave", 0xdd, PeerState::Refused),
            peer(3, "erin", 0xe1, PeerState::Banned),
            peer(4, "me", 0xee, PeerState::Ready),
            peer(5, "frank", 0xf1, PeerState::Muted),
        ];
        let book = AddressBook::default();
        let resolve = |text: &str| resolve_recipient(text, &peers, &book, &US);
        let carol = Address([0xcc; 20]);
        assert_eq!(resolve("carol").unwrap().address, carol);
        assert_eq!(resolve(" CAROL ").unwrap().address, carol);
        assert_eq!(resolve(&carol.to_hex()).unwrap().address, carol);
        assert_eq!(
            resolve(&carol.to_hex().to_uppercase()).unwrap().address,
            carol
        );
        assert_eq!(
            resolve(&format!("Carol ({})", carol.to_hex()))
                .unwrap()
                .address,
            carol
        );
        assert_eq!(resolve("frank").unwrap().address, Address([0xf1; 20]));
        assert_eq!(resolve(""), Err(RecipientError::Empty));
        for nobody in ["dave", "erin", "me", "zed"] {
            let Err(RecipientError::Unknown { known, .. }) = resolve(nobody) else {
                panic!("{nobody} is not payable by name");
            };
            let names: Vec<&str> = known.iter().map(|c| c.name.as_str()).collect();
            assert_eq!(names, ["Carol", "frank"]);
        }
    }

    #[test]
    fn the_address_book_round_trips_and_is_bounded() {
        let mut book = AddressBook::default();
        assert_eq!(
            book.pin(" bob\u{1b}[2J ", Address([1; 20])),
            Ok("bob".into())
        );
        assert_eq!(book.pin("BOB", Address([2; 20])), Ok("BOB".into()));
        assert_eq!(book.pins().len(), 1, "one pin per name, without case");
        assert_eq!(
            book.pin("\u{7}", Address([1; 20])),
            Err(PinError::EmptyName)
        );
        assert_eq!(
            book.pin(&"ab".repeat(20), Address([1; 20])),
            Err(PinError::NameIsAnAddress)
        );
        let again = AddressBook::from_json(&book.to_json()).unwrap();
        assert_eq!(again, book);
        assert_eq!(again.get("bob").unwrap().address, Address([2; 20]));
        assert!(book.unpin("Bob"));
        assert!(!book.unpin("bob"));
        for n in 0..MAX_PINS {
            book.pin(&format!("p{n}"), Address([3; 20])).unwrap();
        }
        assert_eq!(book.pin("one more", Address([3; 20])), Err(PinError::Full));
    }

    /// A chain of `count` blocks mined on the test network, and their hashes.
    fn mined_tree(count: usize) -> (BlockTree, Vec<Hash>, u64) {
        let params = crate::params::NetworkParams::test();
        let mut tree = BlockTree::new(params.clone());
        let mut now = params.genesis_timestamp_ms;
        let mut hashes = Vec::new();
        for _ in 0..count {
            now += params.target_block_ms;
            let mut block = tree.block_template(Address([9; 20]), vec![], now);
            let crate::mining::MiningOutcome::Found { nonce, .. } =
                crate::mining::mine(&block.header, 0, u64::MAX)
            else {
                panic!("the test target is met within a few hashes");
            };
            block.header.nonce = nonce;
            hashes.push(block.hash());
            tree.add_block(block, now).expect("a valid block");
        }
        (tree, hashes, now)
    }

    #[test]
    fn a_stored_block_lists_every_rule_as_check_block_finds_it() {
        let (tree, hashes, now) = mined_tree(3);
        let rules = block_rules(&tree, &hashes[1], now).unwrap();
        let listed: Vec<Rule> = rules.iter().filter_map(|rule| rule.rule).collect();
        assert_eq!(
            listed,
            Rule::ALL,
            "every context rule, the future-time rule included"
        );
        assert!(
            rules.iter().all(|rule| rule.outcome == RuleOutcome::Passed),
            "{rules:?}"
        );
        assert_eq!(rules.last().unwrap().title, "nonces and balances");
        // Seen from a clock far behind the block, the future-time rule is the one that fails.
        let early = tree.params().genesis_timestamp_ms - 10 * tree.params().max_future_ms;
        let rules = block_rules(&tree, &hashes[1], early).unwrap();
        let failed: Vec<(Option<Rule>, &RuleOutcome)> = rules
            .iter()
            .filter(|rule| rule.outcome != RuleOutcome::Passed)
            .map(|rule| (rule.rule, &rule.outcome))
            .collect();
        assert_eq!(failed.len(), 1 + (Rule::ALL.len() - 7), "{failed:?}");
        assert!(matches!(
            failed[0],
            (
                Some(Rule::TimestampNotAhead),
                RuleOutcome::Failed(crate::ValidationError::TimestampTooFarAhead { .. })
            )
        ));
        let genesis = block_rules(&tree, &tree.genesis_hash(), now).unwrap();
        assert_eq!(genesis.len(), 1);
    }
}
