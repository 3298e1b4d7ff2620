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

mod blocks;
mod names;
mod payments;
mod peers;
mod private;
mod recipient;

pub use blocks::*;
pub use names::*;
pub use payments::*;
pub use peers::*;
pub use private::*;
pub use recipient::*;

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

#[cfg(test)]
mod tests;
