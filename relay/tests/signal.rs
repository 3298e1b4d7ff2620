//! Direct links between tabs, as far as the relay takes part: `signal` frames (WebRTC signaling
//! routed like `send` but kept a frame type of its own, so a tab's transport can take it before its
//! node sees it, and counted apart), and the STUN/TURN servers every `welcome` names.

mod common;

use common::{config, next_frame, TestRelay};
use futures_util::StreamExt;
use relay::config::IceUrl;
use relay::Config;
use shared::protocol::{IceServer, PeerId, RelayErrorCode, RelayFrame};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

fn expect_error(frame: RelayFrame, expected: RelayErrorCode) {
    match frame {
        RelayFrame::Error { code, .. } => assert_eq!(code, expected),
        other => panic!("expected error {expected:?}, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signal_reaches_only_the_named_peer_as_a_signal_frame_and_is_counted() {
    let relay = TestRelay::start(config()).await;
    let mut alice = relay.join("rtc").await;
    let mut bob = relay.join("rtc").await;
    let mut carol = relay.join("rtc").await;
    alice.recv().await;
    alice.recv().await;
    bob.recv().await;

    // Spacing and key order are the sender's: the relay never re-serializes a payload.
    let offer = r#"{"kind":"offer",  "sdp":"v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\n"}"#;
    alice.signal_to(&bob.id, offer).await;
    let (from, text) = bob.recv_signal().await;
    assert_eq!((&from, text.as_str()), (&alice.id, offer));
    bob.signal_to(&alice.id, r#"{"kind":"answer","sdp":"v=0"}"#)
        .await;
    assert_eq!(
        alice.recv_signal().await,
        (
            bob.id.clone(),
            r#"{"kind":"answer","sdp":"v=0"}"#.to_owned()
        )
    );
    // Carol got neither: her next frame is a later broadcast, a `message` as before.
    alice.broadcast(r#""everyone""#).await;
    assert_eq!(carol.recv_message().await.1, r#""everyone""#);

    let sent_bytes = format!(r#"{{"type":"signal","to":"{}","payload":{offer}}}"#, bob.id).len()
        + format!(
            r#"{{"type":"signal","to":"{}","payload":{{"kind":"answer","sdp":"v=0"}}}}"#,
            alice.id
        )
        .len();
    assert_eq!(relay.metric("relay_signal_frames_total").await, 2);
    assert_eq!(
        relay.metric("relay_signal_bytes_total").await,
        sent_bytes as u64
    );
    // Signals are frames like any other in the totals.
    assert_eq!(relay.metric("relay_messages_in_total").await, 3);
    relay.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signal_to_nobody_is_unknown_peer_and_one_without_to_is_malformed() {
    let relay = TestRelay::start(config()).await;
    let mut alice = relay.join("rtc").await;
    let stranger = relay.join("elsewhere").await;
    for to in [PeerId::from_bytes([7; 16]), stranger.id.clone()] {
        alice.signal_to(&to, r#"{"kind":"bye"}"#).await;
        expect_error(alice.recv().await, RelayErrorCode::UnknownPeer);
    }
    alice
        .send_text(r#"{"type":"signal","payload":{"kind":"bye"}}"#.to_owned())
        .await;
    match alice.recv().await {
        RelayFrame::Error { code, message } => {
            assert_eq!(code, RelayErrorCode::MalformedEnvelope);
            assert!(message.contains("`signal` needs `to`"), "{message}");
        }
        other => panic!("expected malformed_envelope, got {other:?}"),
    }
    assert_eq!(
        relay
            .metric("relay_dropped_total{reason=\"unknown_peer\"}")
            .await,
        2
    );
    assert_eq!(relay.metric("relay_signal_frames_total").await, 0);
    relay.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signals_pay_the_same_rate_limit_as_everything_else() {
    let burst = 3;
    let relay = TestRelay::start(Config {
        rate_per_second: 1,
        rate_burst: burst,
        ..config()
    })
    .await;
    let mut alice = relay.join("rtc").await;
    let mut bob = relay.join("rtc").await;
    alice.recv().await;
    for seq in 0..=burst {
        alice.signal_to(&bob.id, &seq.to_string()).await;
    }
    expect_error(alice.recv().await, RelayErrorCode::RateLimited);
    for seq in 0..burst {
        assert_eq!(bob.recv_signal().await.1, seq.to_string());
    }
    assert_eq!(
        relay.metric("relay_signal_frames_total").await,
        u64::from(burst)
    );
    relay.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signal_over_the_frame_limit_closes_the_connection_like_any_frame() {
    let relay = TestRelay::start(Config {
        max_frame_bytes: 4_096,
        peer_queue_bytes: 64 * 1024,
        byte_burst: 64 * 1024,
        ..config()
    })
    .await;
    let mut alice = relay.join("rtc").await;
    let mut bob = relay.join("rtc").await;
    alice.recv().await;
    let huge = format!(r#""{}""#, "s".repeat(4_096));
    alice.signal_to(&bob.id, &huge).await;
    expect_error(alice.recv().await, RelayErrorCode::FrameTooLarge);
    let close = alice.recv_close().await.expect("a close frame");
    assert_eq!(close.code, CloseCode::Size);
    match bob.recv().await {
        RelayFrame::PeerLeft { peer_id } => assert_eq!(peer_id, alice.id),
        other => panic!("bob got {other:?}"),
    }
    relay.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_welcome_always_lists_ice_servers_and_none_with_no_stun() {
    let relay = TestRelay::start(Config {
        no_stun: true,
        ..config()
    })
    .await;
    let mut ws = relay.connect_raw("/ws/rtc").await;
    let text = tokio::time::timeout(common::WAIT, ws.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap()
        .into_text()
        .unwrap();
    assert!(
        text.ends_with(r#","ice_servers":[]}"#),
        "the field is there, empty: {text}"
    );
    relay.shutdown().await.unwrap();

    let relay = TestRelay::start(Config {
        ice_servers: vec![
            IceUrl::parse("stun:127.0.0.1:3478").unwrap(),
            IceUrl::parse("turn:127.0.0.1:3478?transport=udp").unwrap(),
        ],
        ice_username: Some("tabs".into()),
        ice_credential: Some("s3cret".into()),
        ..config()
    })
    .await;
    let first = relay.join("rtc").await;
    let mut raw = relay.connect_raw("/ws/rtc").await;
    let RelayFrame::Welcome { ice_servers, .. } = next_frame(&mut raw).await else {
        panic!("no welcome");
    };
    // The relay's own STUN server first, then the configured ones.
    let expected = vec![
        IceServer {
            urls: vec![format!("stun:127.0.0.1:{}", relay.addr.port())],
            username: None,
            credential: None,
        },
        IceServer {
            urls: vec!["stun:127.0.0.1:3478".into()],
            username: None,
            credential: None,
        },
        IceServer {
            urls: vec!["turn:127.0.0.1:3478?transport=udp".into()],
            username: Some("tabs".into()),
            credential: Some("s3cret".into()),
        },
    ];
    assert_eq!(ice_servers, expected);
    assert_eq!(first.ice_servers, expected, "every joiner gets them");
    relay.shutdown().await.unwrap();
}
