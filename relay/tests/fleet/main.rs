//! Rooms across relay processes: two relay binaries and a real `nats-server`, all on loopback.
//!
//! What a user would notice: peers on different relays of one room see each other come and go,
//! hear each other's broadcasts in order and exactly once, can address each other; a relay that
//! dies has its peers announced as gone; a broker outage leaves each relay serving its own peers
//! and heals by itself.

#[path = "../common/mod.rs"]
mod common;
mod support;

use common::{Client, WAIT};
use relay::nats_hub::{PRESENCE_EXPIRY, RECONNECT_DELAY_MAX, SWEEP_INTERVAL};
use shared::protocol::{PeerId, RelayErrorCode, RelayFrame};
use std::collections::HashMap;
use std::time::Duration;
use support::{Broker, RelayProcess};
use tokio::time::{timeout, Instant};

async fn fleet(extra: &[&str]) -> (Broker, RelayProcess, RelayProcess) {
    let broker = Broker::start().await;
    let a = RelayProcess::start(&broker.url(), extra).await;
    let b = RelayProcess::start(&broker.url(), extra).await;
    (broker, a, b)
}

async fn expect_joined(client: &mut Client, peer: &PeerId) {
    match client.recv().await {
        RelayFrame::PeerJoined { peer_id } => assert_eq!(&peer_id, peer),
        other => panic!("expected peer_joined of {peer:?}, got {other:?}"),
    }
}

async fn expect_left(client: &mut Client, peer: &PeerId) {
    match client.recv().await {
        RelayFrame::PeerLeft { peer_id } => assert_eq!(&peer_id, peer),
        other => panic!("expected peer_left of {peer:?}, got {other:?}"),
    }
}

async fn expect_message(client: &mut Client, from: &PeerId, payload: &str) {
    let (sender, text) = client.recv_message().await;
    assert_eq!((&sender, text.as_str()), (from, payload));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peers_on_two_relays_share_a_room() {
    let (_broker, a, b) = fleet(&[]).await;
    // A dot in the name: it must be escaped in the broker subject, and not collide with `class_1`.
    let mut alice = a.join("class.1").await;
    let mut bob = b.join("class.1").await;
    assert_eq!(
        bob.peers,
        vec![alice.id.clone()],
        "the welcome lists peers on the other relay"
    );
    expect_joined(&mut alice, &bob.id).await;
    let mut stranger = b.join("class_1").await;
    assert!(stranger.peers.is_empty());

    alice.broadcast(r#"{"hello":"from A"}"#).await;
    expect_message(&mut bob, &alice.id, r#"{"hello":"from A"}"#).await;
    bob.broadcast(r#"{"hello":"from B"}"#).await;
    expect_message(&mut alice, &bob.id, r#"{"hello":"from B"}"#).await;

    // `send` across relays, both ways.
    alice.send_to(&bob.id, r#"{"offer":"sdp"}"#).await;
    expect_message(&mut bob, &alice.id, r#"{"offer":"sdp"}"#).await;
    bob.send_to(&alice.id, r#"{"answer":"sdp"}"#).await;
    expect_message(&mut alice, &bob.id, r#"{"answer":"sdp"}"#).await;
    // `signal` (signaling for direct links) crosses relays the same way and stays a `signal`.
    let offer = r#"{"kind":"offer", "sdp":"v=0"}"#;
    alice.signal_to(&bob.id, offer).await;
    assert_eq!(
        bob.recv_signal().await,
        (alice.id.clone(), offer.to_owned())
    );
    bob.signal_to(&alice.id, r#"{"kind":"bye"}"#).await;
    assert_eq!(
        alice.recv_signal().await,
        (bob.id.clone(), r#"{"kind":"bye"}"#.to_owned())
    );
    // Each relay counts the signals its own peers sent.
    assert_eq!(a.metric("relay_signal_frames_total").await, 1);
    assert_eq!(b.metric("relay_signal_frames_total").await, 1);
    // The other room heard none of it: the next thing the stranger gets is its own peer's join.
    let mut other = a.join("class_1").await;
    assert_eq!(other.peers, vec![stranger.id.clone()]);
    expect_joined(&mut stranger, &other.id).await;
    other.broadcast("1").await;
    expect_message(&mut stranger, &other.id, "1").await;

    // A send or a signal to nobody in the room is refused, as on one relay.
    alice.send_to(&stranger.id, "{}").await;
    match alice.recv().await {
        RelayFrame::Error { code, .. } => assert_eq!(code, RelayErrorCode::UnknownPeer),
        other => panic!("expected unknown_peer, got {other:?}"),
    }
    alice.signal_to(&stranger.id, r#"{"kind":"bye"}"#).await;
    match alice.recv().await {
        RelayFrame::Error { code, .. } => assert_eq!(code, RelayErrorCode::UnknownPeer),
        other => panic!("expected unknown_peer, got {other:?}"),
    }

    let mut carol = a.join("class.1").await;
    let mut expected = vec![alice.id.clone(), bob.id.clone()];
    expected.sort();
    assert_eq!(carol.peers, expected);
    expect_joined(&mut alice, &carol.id).await;
    expect_joined(&mut bob, &carol.id).await;

    let bob_id = bob.id.clone();
    drop(bob);
    expect_left(&mut alice, &bob_id).await;
    expect_left(&mut carol, &bob_id).await;
    assert_eq!(a.metric("relay_broker_connected").await, 1);
    assert_eq!(a.healthz().await, "ok\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_sender_s_frames_arrive_in_order_exactly_once_under_load() {
    const PER_SENDER: usize = 2_000;
    // Room for every frame in the receivers' queues: this test is about order, not about how a
    // slow reader is cut off (tests/limits.rs covers that).
    let (_broker, a, b) = fleet(&["--peer-queue-messages", "20000"]).await;
    let mut receivers = vec![a.join("load").await, b.join("load").await];
    let mut senders = Vec::new();
    for relay in [&a, &b, &a, &b] {
        senders.push(relay.join("load").await);
    }
    // Everyone has heard of everyone before the load starts.
    let everyone = receivers.len() + senders.len();
    for client in receivers.iter_mut().chain(senders.iter_mut()) {
        let mut known = client.peers.len();
        while known < everyone - 1 {
            assert!(matches!(client.recv().await, RelayFrame::PeerJoined { .. }));
            known += 1;
        }
    }
    let sender_ids: Vec<PeerId> = senders.iter().map(|sender| sender.id.clone()).collect();
    let readers: Vec<_> = receivers
        .into_iter()
        .map(|mut receiver| {
            let expected = sender_ids.clone();
            tokio::spawn(async move {
                let mut next: HashMap<PeerId, usize> = HashMap::new();
                for _ in 0..expected.len() * PER_SENDER {
                    let (from, payload) = receiver.recv_message().await;
                    let counter = next.entry(from.clone()).or_default();
                    assert_eq!(
                        payload,
                        counter.to_string(),
                        "from {from:?}: out of order or duplicated"
                    );
                    *counter += 1;
                }
                for id in &expected {
                    assert_eq!(next.get(id), Some(&PER_SENDER));
                }
                receiver
            })
        })
        .collect();
    let writers: Vec<_> = senders
        .into_iter()
        .map(|mut sender| {
            tokio::spawn(async move {
                for n in 0..PER_SENDER {
                    sender.broadcast(&n.to_string()).await;
                }
                sender
            })
        })
        .collect();
    // The senders stay in the room until the receivers are done (a leave would be a frame too).
    let mut finished = Vec::new();
    for writer in writers {
        finished.push(
            timeout(WAIT * 3, writer)
                .await
                .expect("senders finish")
                .unwrap(),
        );
    }
    for reader in readers {
        let mut receiver = timeout(WAIT * 3, reader)
            .await
            .expect("every frame arrives")
            .unwrap();
        // Nothing more (no duplicate after the last): a probe is the next frame.
        let probe = a.join("load").await;
        let _ = probe;
        match receiver.recv().await {
            RelayFrame::PeerJoined { .. } => {}
            other => panic!("expected nothing but the probe's join, got {other:?}"),
        }
    }
    for relay in [&a, &b] {
        assert_eq!(
            relay
                .metric("relay_broker_dropped_total{reason=\"queue_full\"}")
                .await,
            0
        );
        assert_eq!(
            relay
                .metric("relay_broker_dropped_total{reason=\"slow_consumer\"}")
                .await,
            0
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_room_cap_counts_peers_on_every_relay() {
    let (_broker, a, b) = fleet(&["--max-peers-per-room", "3"]).await;
    let _first = a.join("small").await;
    let _second = a.join("small").await;
    let third = b.join("small").await;
    assert_eq!(third.peers.len(), 2);
    let mut fourth = b.connect("small").await;
    match common::next_frame(&mut fourth).await {
        RelayFrame::Error { code, .. } => assert_eq!(code, RelayErrorCode::RoomFull),
        other => panic!("expected room_full, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_relay_s_peers_are_announced_as_left_and_a_restart_leaves_no_ghosts() {
    let (broker, a, mut b) = fleet(&[]).await;
    let mut alice = a.join("crash").await;
    let bob = b.join("crash").await;
    expect_joined(&mut alice, &bob.id).await;
    let bea = b.join("crash").await;
    expect_joined(&mut alice, &bea.id).await;

    let killed = Instant::now();
    b.kill();
    let mut gone = vec![];
    for _ in 0..2 {
        // `recv` waits at most 10 s, the goal.
        match alice.recv().await {
            RelayFrame::PeerLeft { peer_id } => gone.push(peer_id),
            other => panic!("expected peer_left, got {other:?}"),
        }
    }
    let elapsed = killed.elapsed();
    gone.sort();
    let mut expected = vec![bob.id.clone(), bea.id.clone()];
    expected.sort();
    assert_eq!(gone, expected);
    // The stated bound: expiry plus one sweep, measured from the last heartbeat (at most one
    // heartbeat interval before the kill). Well inside the 10 s goal.
    assert!(
        elapsed <= PRESENCE_EXPIRY + SWEEP_INTERVAL + Duration::from_secs(1),
        "left announced after {elapsed:?}"
    );
    assert!(elapsed < Duration::from_secs(10));
    assert_eq!(a.metric("relay_presence_expired_total").await, 2);

    // A relay started in its place knows only the living: no ghost in the welcome.
    let b = RelayProcess::start(&broker.url(), &[]).await;
    let mut carol = b.join("crash").await;
    assert_eq!(carol.peers, vec![alice.id.clone()]);
    expect_joined(&mut alice, &carol.id).await;
    carol.broadcast("\"back\"").await;
    expect_message(&mut alice, &carol.id, "\"back\"").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_that_stops_cleanly_has_its_peers_leave_at_once() {
    let (_broker, a, mut b) = fleet(&[]).await;
    let mut alice = a.join("restart").await;
    let bob = b.join("restart").await;
    expect_joined(&mut alice, &bob.id).await;
    let stopped = Instant::now();
    b.terminate().await;
    expect_left(&mut alice, &bob.id).await;
    // Not the presence expiry: the relay said goodbye.
    assert!(
        stopped.elapsed() < PRESENCE_EXPIRY / 2,
        "{:?}",
        stopped.elapsed()
    );
    assert_eq!(a.metric("relay_presence_expired_total").await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_outage_keeps_rooms_local_and_heals_by_itself() {
    let (mut broker, a, b) = fleet(&[]).await;
    let mut alice = a.join("outage").await;
    let mut amos = a.join("outage").await;
    expect_joined(&mut alice, &amos.id).await;
    let mut bob = b.join("outage").await;
    expect_joined(&mut alice, &bob.id).await;
    expect_joined(&mut amos, &bob.id).await;
    alice.broadcast("\"before\"").await;
    expect_message(&mut amos, &alice.id, "\"before\"").await;
    expect_message(&mut bob, &alice.id, "\"before\"").await;

    broker.kill();
    a.wait_for_health("degraded").await;
    b.wait_for_health("degraded").await;
    assert_eq!(a.metric("relay_broker_connected").await, 0);

    // Local delivery is untouched: every frame between peers of one relay arrives.
    for n in 0..200 {
        alice.broadcast(&n.to_string()).await;
    }
    for n in 0..200 {
        expect_message(&mut amos, &alice.id, &n.to_string()).await;
    }
    // What could not cross is counted.
    a.wait_for_metric("relay_broker_dropped_total{reason=\"disconnected\"}", 1)
        .await;
    // A join during the outage is welcomed at once, with the peers this relay knows (the view
    // of the other relay's peers lasts until they expire).
    let joined_at = Instant::now();
    let mut dora = b.join("outage").await;
    assert!(joined_at.elapsed() < Duration::from_secs(2));
    assert!(dora.peers.contains(&bob.id));
    expect_joined(&mut bob, &dora.id).await;

    // The outage lasts long enough for the client's reconnect delay to reach its maximum, so
    // the resumption below is measured in the worst case, not right after the first retry.
    tokio::time::sleep(RECONNECT_DELAY_MAX * 4).await;
    let back = broker.restart().await;
    // Cross-relay delivery resumes by itself: alice probes until bob hears one. Bob's
    // subscription predates the outage, so the client must have re-sent it.
    let alice_id = alice.id.clone();
    let probing = async {
        let mut n = 0;
        loop {
            alice.broadcast(&format!("\"probe {n}\"")).await;
            n += 1;
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    let heard = async {
        loop {
            if let RelayFrame::Message { from, .. } = bob.recv().await {
                assert_eq!(from, alice_id);
                return Instant::now();
            }
        }
    };
    let heard_at = tokio::select! {
        heard_at = heard => heard_at,
        () = probing => unreachable!(),
    };
    let resumed = heard_at - back;
    println!("cross-relay delivery resumed {resumed:?} after the broker came back");
    assert!(
        resumed < Duration::from_secs(1),
        "resumed after {resumed:?}"
    );

    // Dora's subscription was made while the broker was away: she hears A's peers too, and
    // knows them all by then.
    let mut known: Vec<PeerId> = dora.peers.clone();
    amos.broadcast("\"after\"").await;
    loop {
        match dora.recv().await {
            RelayFrame::PeerJoined { peer_id } => known.push(peer_id),
            RelayFrame::Message { from, payload } if payload.get() == "\"after\"" => {
                assert_eq!(from, amos.id);
                break;
            }
            RelayFrame::Message { .. } => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    for peer in [&alice.id, &amos.id, &bob.id] {
        assert!(known.contains(peer), "dora never heard of {peer:?}");
    }
    a.wait_for_health("ok").await;
    b.wait_for_health("ok").await;
    assert!(a.metric("relay_broker_reconnects_total").await >= 1);
    assert!(b.metric("relay_broker_reconnects_total").await >= 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tab_that_moves_relays_with_its_resume_token_keeps_its_id_and_nobody_sees_it_leave() {
    let (_broker, a, b) = fleet(&[]).await;
    let token = "7e".repeat(32);
    let mut carol = a.join("move").await;
    let mut dave = b.join("move").await;
    expect_joined(&mut carol, &dave.id).await;
    let mut old = a.join(&format!("move?resume={token}")).await;
    let id = old.id.clone();
    expect_joined(&mut carol, &id).await;
    expect_joined(&mut dave, &id).await;

    // The tab reconnects through the other relay while its first socket is still open.
    let mut new = b.join(&format!("move?resume={token}")).await;
    assert_eq!(new.id, id);
    let mut listed = new.peers.clone();
    listed.sort();
    let mut expected = vec![carol.id.clone(), dave.id.clone()];
    expected.sort();
    assert_eq!(listed, expected, "the others, once each, not itself");
    match old.recv().await {
        RelayFrame::Error { code, .. } => assert_eq!(code, RelayErrorCode::Replaced),
        other => panic!("expected replaced, got {other:?}"),
    }
    a.wait_for_metric("relay_disconnects_total{reason=\"replaced\"}", 1)
        .await;

    // Neither relay's members heard the id leave or join again: their next frames are these.
    dave.broadcast(r#""after the move""#).await;
    expect_message(&mut carol, &dave.id, r#""after the move""#).await;
    expect_message(&mut new, &dave.id, r#""after the move""#).await;
    carol.send_to(&id, r#""still you?""#).await;
    expect_message(&mut new, &carol.id, r#""still you?""#).await;
    new.broadcast(r#""yes""#).await;
    expect_message(&mut carol, &id, r#""yes""#).await;
    expect_message(&mut dave, &id, r#""yes""#).await;
    // A heartbeat later (A no longer lists it, B does) nothing has changed either.
    tokio::time::sleep(relay::nats_hub::HEARTBEAT_INTERVAL * 2).await;
    dave.broadcast(r#""later""#).await;
    expect_message(&mut carol, &dave.id, r#""later""#).await;
    expect_message(&mut new, &dave.id, r#""later""#).await;
    carol.send_to(&id, "1").await;
    expect_message(&mut new, &carol.id, "1").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_room_no_other_relay_holds_is_not_published() {
    let (_broker, a, b) = fleet(&[]).await;
    let mut alice = a.join("alone").await;
    let mut ally = a.join("alone").await;
    expect_joined(&mut alice, &ally.id).await;
    let published = a.metric("relay_broker_published_total").await;
    for index in 0..50 {
        alice.broadcast(&index.to_string()).await;
    }
    for index in 0..50 {
        expect_message(&mut ally, &alice.id, &index.to_string()).await;
    }
    // Presence heartbeats may go out meanwhile; the 50 frames do not.
    let more = a.metric("relay_broker_published_total").await - published;
    assert!(
        more < 10,
        "{more} messages published for a room only this relay holds"
    );
    assert!(a.metric("relay_broker_kept_local_total").await >= 50);
    // Once a member joins on the other relay, the room's broadcasts cross again.
    let mut bob = b.join("alone").await;
    expect_joined(&mut alice, &bob.id).await;
    alice.broadcast("\"across\"").await;
    expect_message(&mut bob, &alice.id, "\"across\"").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_broker_makes_a_relay_hold_no_more_than_its_publish_queue_bytes() {
    // Byte limits lifted so one peer can push 100 MB at once; the broker hangs (SIGSTOP), so
    // nothing the relay publishes leaves it.
    let (broker, a, b) = fleet(&[
        "--byte-rate-per-second",
        "1073741824",
        "--byte-burst",
        "1073741824",
    ])
    .await;
    let mut alice = a.join("hung").await;
    let bob = b.join("hung").await;
    expect_joined(&mut alice, &bob.id).await;
    broker.pause(true);
    let frame = format!("\"{}\"", "h".repeat(512 * 1024));
    for _ in 0..200 {
        alice.broadcast(&frame).await;
    }
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    let queued = a.metric("relay_broker_queued_bytes").await;
    let dropped = a
        .metric("relay_broker_dropped_total{reason=\"queue_full\"}")
        .await;
    broker.pause(false);
    assert!(
        queued <= relay::nats_hub::PUBLISH_QUEUE_BYTES as u64,
        "{queued} bytes waiting for the broker"
    );
    assert!(
        dropped > 0,
        "100 MB for a hung broker, none dropped: the queue held it all"
    );
    drop(bob);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_delivers_no_frame_over_its_own_limit_whatever_the_others_allow() {
    let broker = Broker::start().await;
    let a = RelayProcess::start(&broker.url(), &[]).await;
    // B allows its peers 100 KB frames; A allows 1 MiB.
    let b = RelayProcess::start(&broker.url(), &["--max-frame-bytes", "100000"]).await;
    let mut alice = a.join("limits").await;
    let mut bob = b.join("limits").await;
    expect_joined(&mut alice, &bob.id).await;
    alice
        .broadcast(&format!("\"{}\"", "x".repeat(500_000)))
        .await;
    alice.broadcast("\"small\"").await;
    // Bob gets the small one only; B counts the big one as too large.
    expect_message(&mut bob, &alice.id, "\"small\"").await;
    assert_eq!(
        b.metric("relay_broker_dropped_total{reason=\"too_large\"}")
            .await,
        1
    );
}
