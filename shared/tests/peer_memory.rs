//! The compare table as a class lives in it (issue 29, item 6): a reloaded tab replaces its own
//! row, a peer that never said hello is not kept once gone, and peers gone for more than a
//! minute fold into one line.

#![cfg(not(target_arch = "wasm32"))]

mod common;

use common::keypair;
use shared::protocol::PeerId;
use shared::view::{PeerMemory, PeerState, PeerView, GONE_FOLD_MS};

fn peer(id: u8, hello_from: Option<u32>) -> PeerView {
    PeerView {
        id: PeerId::from_bytes([id; 16]),
        name: hello_from.map(|tag| format!("tab-{tag}")),
        address: hello_from.map(|tag| keypair(tag).address()),
        state: PeerState::Ready,
        refusal: None,
        other_network: None,
        tip: None,
        misbehavior: 0,
        muted: false,
        banned: false,
        last_offense: None,
    }
}

fn names(rows: &[&shared::view::SeenPeer]) -> Vec<String> {
    rows.iter().map(|seen| seen.view.label()).collect()
}

#[test]
fn gone_rows_fold_after_a_minute_and_nameless_ones_are_not_kept() {
    let mut memory = PeerMemory::default();
    let (alice, bob, stranger) = (peer(1, Some(1)), peer(2, Some(2)), peer(3, None));
    memory.update(&[alice.clone(), bob.clone(), stranger.clone()], 0);
    // All three leave; the stranger never said hello.
    memory.update(&[], 1_000);
    let (recent, folded) = memory.gone(1_000);
    assert_eq!(recent.len(), 2, "{:?}", names(&recent));
    assert!(folded.is_empty());
    assert!(
        !names(&recent).iter().any(|name| name.starts_with("peer ")),
        "a nameless row lingers: {:?}",
        names(&recent)
    );
    // A minute later they fold into one line.
    let (recent, folded) = memory.gone(1_000 + GONE_FOLD_MS);
    assert!(recent.is_empty());
    assert_eq!(folded.len(), 2);
    // Alice reloads: a new peer id, the same address. Her old row goes.
    let alice_again = PeerView {
        id: PeerId::from_bytes([9; 16]),
        ..alice
    };
    memory.update(&[alice_again], 70_000);
    let (recent, folded) = memory.gone(70_000);
    assert!(recent.is_empty());
    assert_eq!(names(&folded), vec![bob.label()], "only bob is gone");
    assert_eq!(memory.rows().iter().filter(|seen| seen.present).count(), 1);
}
