//! Bad input and load: every limit of the relay, seen from the peers.

mod common;

use common::{config, next_frame, recv_close, request_with, Client, TestRelay, WAIT};
use futures_util::{SinkExt, StreamExt};
use relay::Config;
use shared::protocol::{RelayErrorCode, RelayFrame};
use std::time::{Duration, Instant};
use tokio::time::timeout;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::Message;

fn expect_error(frame: RelayFrame, expected: RelayErrorCode) {
    match frame {
        RelayFrame::Error { code, .. } => assert_eq!(code, expected),
        other => panic!("expected error {expected:?}, got {other:?}"),
    }
}

fn expect_left(frame: RelayFrame, who: &Client) {
    match frame {
        RelayFrame::PeerLeft { peer_id } => assert_eq!(peer_id, who.id),
        other => panic!("expected peer_left of {:?}, got {other:?}", who.id),
    }
}

/// A broadcast envelope whose payload is a JSON string making the whole frame `total` bytes.
fn broadcast_of_size(total: usize) -> String {
    let head = r#"{"type":"broadcast","payload":""#;
    let tail = r#""}"#;
    let filler = "x".repeat(total - head.len() - tail.len());
    format!("{head}{filler}{tail}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frame_over_the_limit_closes_that_peer_with_1009_and_spares_the_room() {
    let relay = TestRelay::start(config()).await;
    let mut big = relay.join("big").await;
    let mut bob = relay.join("big").await;
    let mut carol = relay.join("big").await;
    big.recv().await;
    big.recv().await;
    bob.recv().await;

    // The relay may close while the frame is still being sent; that is the point.
    let _ = big
        .ws
        .send(Message::text(broadcast_of_size(
            shared::protocol::MAX_FRAME_BYTES + 1,
        )))
        .await;
    let close = big.recv_close().await.expect("a close frame");
    assert_eq!(close.code, CloseCode::Size);
    assert_eq!(close.reason.as_str(), "frame_too_large");

    expect_left(bob.recv().await, &big);
    expect_left(carol.recv().await, &big);
    carol.broadcast(r#""still here""#).await;
    assert_eq!(bob.recv_message().await.1, r#""still here""#);
    assert_eq!(
        relay
            .metric("relay_disconnects_total{reason=\"frame_too_large\"}")
            .await,
        1
    );
    relay.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frame_of_exactly_the_limit_is_delivered_whole() {
    let relay = TestRelay::start(config()).await;
    let mut alice = relay.join("edge").await;
    let mut bob = relay.join("edge").await;
    alice.recv().await;
    let frame = broadcast_of_size(shared::protocol::MAX_FRAME_BYTES);
    alice.send_text(frame.clone()).await;
    let (from, payload) = bob.recv_message().await;
    assert_eq!(from, alice.id);
    let expected_payload = &frame[r#"{"type":"broadcast","payload":"#.len()..frame.len() - 1];
    assert_eq!(payload.len(), expected_payload.len());
    assert!(payload == expected_payload, "the payload arrived changed");
    relay.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_malformed_envelope_gets_an_error_and_reaches_nobody() {
    let relay = TestRelay::start(config()).await;
    let mut alice = relay.join("bad").await;
    let mut bob = relay.join("bad").await;
    alice.recv().await;
    let valid_id = bob.id.as_str().to_owned();
    let cases: Vec<(&str, Message)> = vec![
        ("not JSON", Message::text("hello")),
        (
            "unknown type",
            Message::text(r#"{"type":"shout","payload":1}"#),
        ),
        ("no payload", Message::text(r#"{"type":"broadcast"}"#)),
        (
            "send without to",
            Message::text(r#"{"type":"send","payload":1}"#),
        ),
        (
            "broadcast with to",
            Message::text(format!(
                r#"{{"type":"broadcast","to":"{valid_id}","payload":1}}"#
            )),
        ),
        (
            "to is not a peer id",
            Message::text(r#"{"type":"send","to":"bob","payload":1}"#),
        ),
        (
            "payload is not JSON",
            Message::text(r#"{"type":"broadcast","payload":nope}"#),
        ),
        ("binary frame", Message::binary(vec![1u8, 2, 3])),
    ];
    for (name, message) in cases {
        alice.ws.send(message).await.unwrap();
        match alice.recv().await {
            RelayFrame::Error { code, message } => {
                assert_eq!(code, RelayErrorCode::MalformedEnvelope, "{name}");
                assert!(!message.is_empty(), "{name}: the error explains itself");
            }
            other => panic!("{name}: expected malformed_envelope, got {other:?}"),
        }
    }
    // Nothing reached bob: his next message is the first good one.
    alice.broadcast(r#""good""#).await;
    assert_eq!(bob.recv_message().await.1, r#""good""#);
    relay.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_that_keeps_sending_garbage_is_disconnected() {
    let relay = TestRelay::start(config()).await;
    let mut noisy = relay.join("garbage").await;
    let mut bob = relay.join("garbage").await;
    noisy.recv().await;
    let limit = relay::config::DEFAULT_MAX_MALFORMED_FRAMES;
    for _ in 0..limit {
        noisy.send_text("garbage".to_owned()).await;
    }
    for _ in 1..limit {
        expect_error(noisy.recv().await, RelayErrorCode::MalformedEnvelope);
    }
    expect_error(noisy.recv().await, RelayErrorCode::TooManyErrors);
    let close = noisy.recv_close().await.expect("a close frame");
    assert_eq!(close.code, CloseCode::Policy);
    assert_eq!(close.reason.as_str(), "too_many_errors");
    expect_left(bob.recv().await, &noisy);
    relay.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frames_above_the_rate_are_dropped_and_a_flood_is_disconnected() {
    let burst = 5;
    let flood_limit = 20;
    let relay = TestRelay::start(Config {
        rate_per_second: 1,
        rate_burst: burst,
        flood_drops_before_disconnect: flood_limit,
        ..config()
    })
    .await;
    let mut flooder = relay.join("flood").await;
    let mut bob = relay.join("flood").await;
    flooder.recv().await;

    let started = Instant::now();
    for seq in 0..burst + 1 {
        flooder.broadcast(&seq.to_string()).await;
    }
    // The burst goes through; the next frame is refused with an error.
    expect_error(flooder.recv().await, RelayErrorCode::RateLimited);
    for seq in 0..burst {
        assert_eq!(bob.recv_message().await.1, seq.to_string());
    }

    // Keep flooding: the relay cuts the peer off.
    for seq in burst + 1..burst + 1 + flood_limit + 5 {
        if flooder
            .ws
            .send(Message::text(format!(
                r#"{{"type":"broadcast","payload":{seq}}}"#
            )))
            .await
            .is_err()
        {
            break;
        }
    }
    let close = flooder.recv_close().await.expect("a close frame");
    assert_eq!(close.code, CloseCode::Policy);
    assert_eq!(close.reason.as_str(), "rate_limited");

    // Bob saw at most what the bucket refilled while the test ran (one frame per second).
    let refilled = started.elapsed().as_secs() as usize + 1;
    let mut extra = 0;
    loop {
        match bob.recv().await {
            RelayFrame::Message { .. } => extra += 1,
            RelayFrame::PeerLeft { peer_id } if peer_id == flooder.id => break,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(extra <= refilled, "{extra} frames passed the rate limit");
    assert!(
        relay
            .metric("relay_dropped_total{reason=\"rate_limited\"}")
            .await
            >= u64::from(flood_limit)
    );
    assert_eq!(
        relay
            .metric("relay_disconnects_total{reason=\"rate_flood\"}")
            .await,
        1
    );
    relay.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_reader_is_disconnected_and_the_others_keep_up() {
    let relay = TestRelay::start(Config {
        max_frame_bytes: 64 * 1024,
        peer_queue_bytes: 256 * 1024,
        peer_queue_messages: 64,
        ..config()
    })
    .await;
    // A reader with a tiny receive window, so the relay's queue for it fills quickly.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let stream = socket.connect(relay.addr).await.unwrap();
    let stream = tokio_tungstenite::MaybeTlsStream::Plain(stream);
    let (slow_ws, _) = tokio_tungstenite::client_async(relay.url("/ws/slow"), stream)
        .await
        .unwrap();
    let mut slow = Client::welcomed(slow_ws).await;
    let mut sender = relay.join("slow").await;
    let mut fast = relay.join("slow").await;
    slow.recv().await;
    slow.recv().await;
    sender.recv().await;

    // The sender sends in step with the fast reader (so only the slow one falls behind) until the
    // relay gives up on the slow reader; the fast one gets every message, and the news.
    let payload = format!(r#""{}""#, "p".repeat(16 * 1024));
    let max_messages = 5_000;
    let mut slow_left = false;
    let mut sent = 0;
    while !slow_left && sent < max_messages {
        sender.broadcast(&payload).await;
        sent += 1;
        loop {
            match fast.recv().await {
                RelayFrame::Message { payload: got, .. } => {
                    assert_eq!(got.get(), payload);
                    break;
                }
                RelayFrame::PeerLeft { peer_id } => {
                    assert_eq!(peer_id, slow.id);
                    slow_left = true;
                }
                other => panic!("unexpected {other:?}"),
            }
        }
    }
    assert!(slow_left, "the slow reader was never disconnected");
    assert_eq!(
        relay
            .metric("relay_disconnects_total{reason=\"slow_consumer\"}")
            .await,
        1
    );
    // The slow reader, reading at last, finds its stream ends.
    let ended = timeout(WAIT, async {
        while let Some(Ok(_)) = slow.ws.next().await {}
    })
    .await;
    assert!(ended.is_ok(), "the slow reader's connection stayed open");
    relay.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_room_turns_the_next_peer_away() {
    let relay = TestRelay::start(Config {
        max_peers_per_room: 2,
        ..config()
    })
    .await;
    let _first = relay.join("small").await;
    let _second = relay.join("small").await;
    let mut third = relay.connect_raw("/ws/small").await;
    expect_error(next_frame(&mut third).await, RelayErrorCode::RoomFull);
    let close = recv_close(&mut third).await.expect("a close frame");
    assert_eq!(close.code, CloseCode::Again);
    assert_eq!(close.reason.as_str(), "room_full");
    // Other rooms are not affected.
    relay.join("other").await;
    assert_eq!(
        relay
            .metric("relay_rejected_total{reason=\"room_full\"}")
            .await,
        1
    );
    relay.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_connection_cap_turns_peers_away_until_a_slot_frees() {
    let relay = TestRelay::start(Config {
        max_connections: 2,
        ..config()
    })
    .await;
    let first = relay.join("cap").await;
    let _second = relay.join("other-room").await;
    let mut third = relay.connect_raw("/ws/cap").await;
    expect_error(next_frame(&mut third).await, RelayErrorCode::ServerFull);
    let close = recv_close(&mut third).await.expect("a close frame");
    assert_eq!(close.code, CloseCode::Again);
    assert_eq!(close.reason.as_str(), "server_full");

    // When a peer leaves, its slot frees (once its socket is closed) and a new peer gets in.
    let mut first = first;
    first.ws.close(None).await.unwrap();
    recv_close(&mut first.ws).await;
    drop(first);
    let retry = async {
        loop {
            let mut ws = relay.connect_raw("/ws/cap").await;
            match next_frame(&mut ws).await {
                RelayFrame::Welcome { .. } => return,
                RelayFrame::Error {
                    code: RelayErrorCode::ServerFull,
                    ..
                } => continue,
                other => panic!("unexpected {other:?}"),
            }
        }
    };
    timeout(WAIT, retry).await.expect("the slot never freed");
    relay.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_peer_is_closed_after_the_idle_timeout_and_a_live_one_stays() {
    let idle = Duration::from_millis(600);
    let relay = TestRelay::start(Config {
        idle_timeout: idle,
        ping_interval: Duration::from_millis(100),
        ..config()
    })
    .await;
    // `silent` never reads, so it never answers the relay's pings.
    let silent = relay.join("idle").await;
    let joined = Instant::now();
    let mut live = relay.join("idle").await;
    // `live` reads all along (its client answers pings) and sees the silent one leave.
    expect_left(live.recv().await, &silent);
    assert!(joined.elapsed() >= idle - Duration::from_millis(100));
    let mut silent = silent;
    let close = silent.recv_close().await.expect("a close frame");
    assert_eq!(close.code, CloseCode::Normal);
    assert_eq!(close.reason.as_str(), "idle_timeout");

    // The live peer outlasts several idle periods and is pinged meanwhile.
    let mut pings = 0;
    let watch = async {
        while let Some(Ok(message)) = live.ws.next().await {
            if matches!(message, Message::Ping(_)) {
                pings += 1;
            }
        }
    };
    assert!(
        timeout(idle * 3, watch).await.is_err(),
        "the live peer was disconnected"
    );
    assert!(pings >= 5, "only {pings} pings in {:?}", idle * 3);
    relay.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_allowed_origins_may_connect_when_a_list_is_set() {
    let relay = TestRelay::start(Config {
        allowed_origins: vec!["https://chain.example".to_owned()],
        ..config()
    })
    .await;
    let url = relay.url("/ws/origins");
    let refused =
        tokio_tungstenite::connect_async(request_with(&url, &[("origin", "https://evil.example")]))
            .await;
    match refused {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), 403)
        }
        other => panic!("expected 403, got {:?}", other.map(|_| ())),
    }
    let (allowed, _) = tokio_tungstenite::connect_async(request_with(
        &url,
        &[("origin", "https://chain.example")],
    ))
    .await
    .expect("the allowed origin connects");
    Client::welcomed(allowed).await;
    // Native nodes send no Origin and are let in.
    relay.join("origins").await;
    relay.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_connection_leaves_the_room() {
    let relay = TestRelay::start(config()).await;
    let doomed = relay.join("dead").await;
    let mut bob = relay.join("dead").await;
    let doomed_id = doomed.id.clone();
    // Drop the TCP connection without a close frame, as a crashed tab would.
    let stream = doomed.ws.into_inner();
    drop(stream);
    match timeout(WAIT, bob.recv()).await.unwrap() {
        RelayFrame::PeerLeft { peer_id } => assert_eq!(peer_id, doomed_id),
        other => panic!("expected peer_left, got {other:?}"),
    }
    assert_eq!(
        relay
            .metric("relay_disconnects_total{reason=\"connection_lost\"}")
            .await,
        1
    );
    relay.shutdown().await.unwrap();
}
