//! Rooms as peers see them: presence, broadcast, send-to-one, isolation, ordering.

mod common;

use common::{config, TestRelay};
use shared::protocol::{PeerId, RelayErrorCode, RelayFrame};
use std::collections::HashSet;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn joiner_sees_present_peers_and_others_see_join_and_leave() {
    let relay = TestRelay::start(config()).await;
    let mut alice = relay.join("presence").await;
    assert_eq!(alice.room, "presence");
    assert!(alice.peers.is_empty(), "first peer sees an empty room");

    let mut bob = relay.join("presence").await;
    assert_eq!(bob.peers, vec![alice.id.clone()]);
    match alice.recv().await {
        RelayFrame::PeerJoined { peer_id } => assert_eq!(peer_id, bob.id),
        other => panic!("expected peer_joined, got {other:?}"),
    }

    let carol = relay.join("presence").await;
    let mut expected = vec![alice.id.clone(), bob.id.clone()];
    expected.sort();
    let mut seen = carol.peers.clone();
    seen.sort();
    assert_eq!(seen, expected);
    assert!(
        matches!(alice.recv().await, RelayFrame::PeerJoined { peer_id } if peer_id == carol.id)
    );
    assert!(matches!(bob.recv().await, RelayFrame::PeerJoined { peer_id } if peer_id == carol.id));

    let carol_id = carol.id.clone();
    drop(carol);
    for peer in [&mut alice, &mut bob] {
        match peer.recv().await {
            RelayFrame::PeerLeft { peer_id } => assert_eq!(peer_id, carol_id),
            other => panic!("expected peer_left, got {other:?}"),
        }
    }
    relay.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peer_ids_are_random_hex_and_distinct() {
    let relay = TestRelay::start(config()).await;
    let mut ids = HashSet::new();
    let mut clients = Vec::new();
    for _ in 0..20 {
        let client = relay.join("ids").await;
        let text = client.id.as_str();
        assert_eq!(text.len(), 32);
        assert!(text
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
        assert!(ids.insert(client.id.clone()), "duplicate id {text}");
        clients.push(client);
    }
    relay.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ws_without_a_room_joins_the_lobby() {
    let relay = TestRelay::start(config()).await;
    let first = relay.join_path("/ws").await;
    assert_eq!(first.room, "lobby");
    let second = relay.join("lobby").await;
    assert_eq!(second.peers, vec![first.id.clone()]);
    relay.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broadcast_reaches_every_other_peer_with_the_payload_untouched() {
    let relay = TestRelay::start(config()).await;
    let mut alice = relay.join("gossip").await;
    let mut bob = relay.join("gossip").await;
    let mut carol = relay.join("gossip").await;
    // Drain presence so the next frame each sees is the message.
    alice.recv().await;
    alice.recv().await;
    bob.recv().await;

    // Odd spacing and key order: the relay must forward the payload's text, not a re-encoding.
    let payload = r#"{"type":"status",  "tip": {"height":7 ,"hash":"ab"}}"#;
    alice.broadcast(payload).await;
    for peer in [&mut bob, &mut carol] {
        let (from, text) = peer.recv_message().await;
        assert_eq!(from, alice.id);
        assert_eq!(text, payload);
    }
    // The sender does not get its own broadcast: the next thing alice sees is bob's message.
    bob.broadcast("1").await;
    let (from, text) = alice.recv_message().await;
    assert_eq!((from, text.as_str()), (bob.id.clone(), "1"));
    relay.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_reaches_only_the_named_peer() {
    let relay = TestRelay::start(config()).await;
    let mut alice = relay.join("direct").await;
    let mut bob = relay.join("direct").await;
    let mut carol = relay.join("direct").await;
    alice.recv().await;
    alice.recv().await;
    bob.recv().await;

    alice.send_to(&bob.id, r#"{"only":"bob"}"#).await;
    let (from, text) = bob.recv_message().await;
    assert_eq!(
        (from, text.as_str()),
        (alice.id.clone(), r#"{"only":"bob"}"#)
    );
    // Carol got nothing: her next frame is a later broadcast.
    alice.broadcast(r#""everyone""#).await;
    assert_eq!(carol.recv_message().await.1, r#""everyone""#);
    assert_eq!(bob.recv_message().await.1, r#""everyone""#);
    relay.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_to_an_unknown_peer_is_an_error() {
    let relay = TestRelay::start(config()).await;
    let mut alice = relay.join("direct").await;
    let stranger = relay.join("elsewhere").await;
    // Neither a made-up id nor a peer of another room can be reached.
    for to in [PeerId::from_bytes([7; 16]), stranger.id.clone()] {
        alice.send_to(&to, "1").await;
        match alice.recv().await {
            RelayFrame::Error { code, .. } => assert_eq!(code, RelayErrorCode::UnknownPeer),
            other => panic!("expected unknown_peer, got {other:?}"),
        }
    }
    assert_eq!(
        relay
            .metric("relay_dropped_total{reason=\"unknown_peer\"}")
            .await,
        2
    );
    relay.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rooms_are_isolated() {
    let relay = TestRelay::start(config()).await;
    let mut red_1 = relay.join("red").await;
    let mut red_2 = relay.join("red").await;
    let mut blue_1 = relay.join("blue").await;
    let blue_2 = relay.join("blue").await;
    assert!(red_2.peers.contains(&red_1.id) && !red_2.peers.contains(&blue_1.id));
    assert_eq!(blue_2.peers, vec![blue_1.id.clone()]);
    red_1.recv().await; // red_2 joined
    blue_1.recv().await; // blue_2 joined

    red_1.broadcast(r#""red only""#).await;
    let blue_2_id = blue_2.id.clone();
    blue_2.ws_close().await;
    // Blue hears blue's news (blue_2 left) and never red's message.
    match blue_1.recv().await {
        RelayFrame::PeerLeft { peer_id } => assert_eq!(peer_id, blue_2_id),
        other => panic!("blue saw {other:?}"),
    }
    assert_eq!(red_2.recv_message().await.1, r#""red only""#);
    blue_1.broadcast(r#""blue only""#).await;
    red_2.broadcast(r#""red again""#).await;
    assert_eq!(red_1.recv_message().await.1, r#""red again""#);
    relay.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_hundred_messages_arrive_in_order_at_every_peer() {
    let relay = TestRelay::start(config()).await;
    let mut sender = relay.join("order").await;
    let mut receivers = Vec::new();
    for _ in 0..3 {
        receivers.push(relay.join("order").await);
    }
    // Each receiver first sees the joins of those after it.
    for (index, receiver) in receivers.iter_mut().enumerate() {
        for _ in index + 1..3 {
            receiver.recv().await;
        }
    }
    let count = 500;
    let send = async {
        for seq in 0..count {
            sender.broadcast(&format!(r#"{{"seq":{seq}}}"#)).await;
        }
    };
    let receive = futures_util::future::join_all(receivers.iter_mut().map(|receiver| async {
        for seq in 0..count {
            let (_, text) = receiver.recv_message().await;
            assert_eq!(text, format!(r#"{{"seq":{seq}}}"#));
        }
    }));
    tokio::join!(send, receive);
    relay.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_room_names_are_refused_with_400() {
    let relay = TestRelay::start(config()).await;
    let long = "x".repeat(65);
    for path in [
        "/ws/bad%20room",
        "/ws/a/b",
        "/ws/caf%C3%A9",
        &format!("/ws/{long}"),
    ] {
        let result = tokio_tungstenite::connect_async(relay.url(path)).await;
        match result {
            Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
                assert_eq!(response.status(), 400, "{path}");
                let body =
                    String::from_utf8_lossy(response.body().as_deref().unwrap_or(&[])).into_owned();
                assert!(body.contains("invalid_room"), "{path}: {body}");
            }
            other => panic!("{path}: expected HTTP 400, got {:?}", other.map(|_| ())),
        }
    }
    assert_eq!(
        relay
            .metric("relay_rejected_total{reason=\"invalid_room\"}")
            .await,
        4
    );
    // A valid name right at the limit works.
    relay.join(&"y".repeat(64)).await;
    relay.shutdown().await.unwrap();
}

trait CloseExt {
    async fn ws_close(self);
}

impl CloseExt for common::Client {
    /// Closes politely and waits for the relay's answer.
    async fn ws_close(mut self) {
        let _ = self.ws.close(None).await;
        let _ = common::recv_close(&mut self.ws).await;
    }
}
