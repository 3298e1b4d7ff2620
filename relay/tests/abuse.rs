//! What one abusive client must not be able to do to the relay or to the honest peers, one test
//! per finding of issue 11 (pings, kept buffers, uncapped HTTP, join floods, big frames) plus the
//! goodbye a dropped peer receives and the smaller findings. Memory itself is measured on the
//! relay binary in `memory.rs`.

mod common;

use common::{config, http_request, next_frame, Client, TestRelay, WAIT};
use futures_util::{SinkExt, StreamExt};
use relay::Config;
use shared::protocol::{PeerId, RelayErrorCode, RelayFrame};
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::time::timeout;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{CloseCode, Data, OpCode};
use tokio_tungstenite::tungstenite::protocol::frame::Frame;
use tokio_tungstenite::tungstenite::{Bytes, Message};

/// A configuration with the relay's default limits (the flood tests are about those), and no web
/// app.
fn default_limits() -> Config {
    Config {
        static_dir: Some(std::path::PathBuf::from("/nonexistent/tabchain-relay-test")),
        ..Config::default()
    }
}

/// A client whose socket has a small receive buffer, so a relay writing to it fills its side.
async fn small_window_client(relay: &TestRelay, path: &str, window: u32) -> common::Ws {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(window).unwrap();
    let stream = socket.connect(relay.addr).await.unwrap();
    let stream = tokio_tungstenite::MaybeTlsStream::Plain(stream);
    let (ws, _) = tokio_tungstenite::client_async(relay.url(path), stream)
        .await
        .unwrap();
    ws
}

// 1. Pings.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ping_flood_is_rate_limited_like_messages_and_cut_off() {
    let relay = TestRelay::start(default_limits()).await;
    let mut flooder = relay.join("pings").await;
    let mut bob = relay.join("pings").await;
    flooder.recv().await;
    // Never reading, pinging as fast as the socket takes it: the relay must count the pings.
    let flood = async {
        for _ in 0..20_000 {
            if flooder.ws.send(Message::Ping(Bytes::new())).await.is_err() {
                return;
            }
        }
    };
    let _ = timeout(WAIT, flood).await;
    relay
        .wait_for_metric("relay_disconnects_total{reason=\"rate_flood\"}", 1)
        .await;
    match bob.recv().await {
        RelayFrame::PeerLeft { peer_id } => assert_eq!(peer_id, flooder.id),
        other => panic!("expected peer_left, got {other:?}"),
    }
    relay.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_that_pings_but_never_reads_is_dropped_at_the_idle_timeout() {
    let idle = Duration::from_millis(600);
    let relay = TestRelay::start(Config {
        idle_timeout: idle,
        ping_interval: Duration::from_millis(100),
        ..config()
    })
    .await;
    let mut pinger = relay.join("idle-pings").await;
    let mut bob = relay.join("idle-pings").await;
    // A ping every 50 ms, well within the rate limit, and never a read: no pong ever comes back
    // from this client for the relay's pings, so its own pings must not keep it connected.
    let pings = async {
        loop {
            if pinger.ws.send(Message::Ping(Bytes::new())).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    let left = async {
        loop {
            match bob.recv().await {
                RelayFrame::PeerLeft { peer_id } if peer_id == pinger.id => return,
                _ => continue,
            }
        }
    };
    tokio::select! {
        () = pings => {}
        () = left => {}
        () = tokio::time::sleep(WAIT) => panic!("the pinging peer that never reads was kept"),
    }
    assert_eq!(
        relay
            .metric("relay_disconnects_total{reason=\"idle_timeout\"}")
            .await,
        1
    );
    relay.shutdown().await.unwrap();
}

// 2. Buffers kept after a frame (the memory is measured in memory.rs) and half-sent messages.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_left_half_sent_is_cut_off_even_while_the_peer_answers_pings() {
    let relay = TestRelay::start(Config {
        message_timeout: Duration::from_millis(500),
        ping_interval: Duration::from_millis(100),
        ..config()
    })
    .await;
    let mut stalling = relay.join("fragments").await;
    // The first half of a fragmented message, then nothing but live answers to pings.
    let half = Frame::message(
        Bytes::from(vec![b' '; 512 * 1024]),
        OpCode::Data(Data::Text),
        false,
    );
    stalling.ws.send(Message::Frame(half)).await.unwrap();
    let close = stalling
        .recv_close()
        .await
        .expect("a close frame, not silence");
    assert_eq!(close.code, CloseCode::Policy);
    assert_eq!(close.reason.as_str(), "message_timeout");
    relay.shutdown().await.unwrap();
}

// 3. Plain HTTP counts.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_clients_that_never_read_count_against_the_cap_and_are_cut_off() {
    let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("relay-abuse-http-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("index.html"), "<html>app</html>").unwrap();
    std::fs::write(dir.join("big.bin"), vec![b'x'; 16 * 1024 * 1024]).unwrap();
    let relay = TestRelay::start(Config {
        static_dir: Some(dir.clone()),
        max_connections: 3,
        http_timeout: Duration::from_secs(1),
        ..config()
    })
    .await;
    // Three clients ask for a large file and never read the answer.
    let mut stalled = Vec::new();
    for _ in 0..3 {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.set_recv_buffer_size(4096).unwrap();
        let mut stream = socket.connect(relay.addr).await.unwrap();
        stream
            .write_all(b"GET /big.bin HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        stalled.push(stream);
    }
    // They hold every slot: a WebSocket is told the relay is full.
    let mut turned_away = relay.connect_raw("/ws/http").await;
    match next_frame(&mut turned_away).await {
        RelayFrame::Error { code, .. } => assert_eq!(code, RelayErrorCode::ServerFull),
        other => panic!("expected server_full while HTTP holds every slot, got {other:?}"),
    }
    // Past the HTTP deadline they are dropped and the slots come back.
    let retry = async {
        loop {
            let mut ws = relay.connect_raw("/ws/http").await;
            match next_frame(&mut ws).await {
                RelayFrame::Welcome { .. } => return,
                RelayFrame::Error {
                    code: RelayErrorCode::ServerFull,
                    ..
                } => tokio::time::sleep(Duration::from_millis(100)).await,
                other => panic!("unexpected {other:?}"),
            }
        }
    };
    timeout(WAIT, retry)
        .await
        .expect("the stalled HTTP clients were never cut off");
    drop(stalled);
    relay.shutdown().await.unwrap();
    std::fs::remove_dir_all(dir).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_address_cannot_take_every_slot_directly_or_through_the_proxy() {
    // Direct: the socket's own address is counted.
    let relay = TestRelay::start(Config {
        max_connections_per_address: 2,
        trusted_proxies: Vec::new(),
        ..config()
    })
    .await;
    let _first = relay.join("nat").await;
    let _second = relay.join("nat").await;
    let refused = tokio_tungstenite::connect_async(relay.url("/ws/nat")).await;
    assert_http_status(refused, 429);
    relay.shutdown().await.unwrap();

    // Behind a trusted proxy (loopback by default): the forwarded client is counted.
    let relay = TestRelay::start(Config {
        max_connections_per_address: 2,
        ..config()
    })
    .await;
    let url = relay.url("/ws/nat");
    let from = |client: &'static str| common::request_with(&url, &[("x-forwarded-for", client)]);
    let mut held = Vec::new();
    for _ in 0..2 {
        let (ws, _) = tokio_tungstenite::connect_async(from("198.51.100.1"))
            .await
            .unwrap();
        held.push(Client::welcomed(ws).await);
    }
    assert_http_status(
        tokio_tungstenite::connect_async(from("198.51.100.1")).await,
        429,
    );
    let (other, _) = tokio_tungstenite::connect_async(from("198.51.100.2"))
        .await
        .expect("another client behind the same proxy gets in");
    Client::welcomed(other).await;
    assert_eq!(
        relay
            .metric("relay_rejected_total{reason=\"address_full\"}")
            .await,
        1
    );
    relay.shutdown().await.unwrap();
}

fn assert_http_status<T>(result: Result<T, tokio_tungstenite::tungstenite::Error>, status: u16) {
    match result {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), status)
        }
        Err(other) => panic!("expected HTTP {status}, got {other}"),
        Ok(_) => panic!("expected HTTP {status}, got a WebSocket"),
    }
}

// 4. Join floods.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_join_flood_does_not_get_the_members_who_answer_it_disconnected() {
    let relay = TestRelay::start(default_limits()).await;
    let mut alice = relay.join("class").await;
    let mut bob = relay.join("class").await;
    alice.recv().await;
    // Alice answers every join with a hello, as a node does; she also records bob's messages.
    let answering = tokio::spawn(async move {
        let mut from_bob = Vec::new();
        loop {
            match alice.recv().await {
                RelayFrame::PeerJoined { peer_id } => {
                    alice.send_to(&peer_id, r#"{"type":"hello"}"#).await
                }
                RelayFrame::Message { payload, .. } if payload.get() == r#""done""# => break,
                RelayFrame::Message { payload, .. } => from_bob.push(payload.get().to_owned()),
                RelayFrame::PeerLeft { .. } | RelayFrame::Error { .. } => {}
                other => panic!("alice got {other:?}"),
            }
        }
        from_bob
    });
    // 2,000 joins as fast as the relay takes them, 50 at a time; each flooder leaves at once.
    let addr = relay.addr;
    let mut joins = Vec::new();
    for batch in 0..40 {
        let flood: Vec<_> = (0..50)
            .map(|_| {
                tokio::spawn(async move {
                    let url = format!("ws://{addr}/ws/class");
                    if let Ok((mut ws, _)) = tokio_tungstenite::connect_async(url).await {
                        let _ = ws.close(None).await;
                    }
                })
            })
            .collect();
        for join in flood {
            join.await.unwrap();
        }
        bob.broadcast(&batch.to_string()).await;
        joins.push(batch);
    }
    bob.broadcast(r#""done""#).await;
    let from_bob = timeout(WAIT, answering)
        .await
        .expect("alice was cut off and never saw bob's last message")
        .unwrap();
    let expected: Vec<String> = joins.iter().map(|batch| batch.to_string()).collect();
    assert_eq!(from_bob, expected, "alice lost or reordered bob's messages");
    assert_eq!(
        relay
            .metric("relay_disconnects_total{reason=\"rate_flood\"}")
            .await,
        0
    );
    assert!(
        relay
            .metric("relay_rejected_total{reason=\"join_rate_limited\"}")
            .await
            > 0
    );
    relay.shutdown().await.unwrap();
}

// 5. Big frames and a reader at 10 MB/s.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_at_10_mb_per_second_gets_eight_maximum_frames_sent_at_once() {
    let relay = TestRelay::start(default_limits()).await;
    let mut sender = relay.join("big").await;
    let reader = small_window_client(&relay, "/ws/big", 64 * 1024).await;
    let mut reader = Client::welcomed(reader).await;
    sender.recv().await;
    let head = r#"{"type":"broadcast","payload":""#;
    let filler = "b".repeat(shared::protocol::MAX_FRAME_BYTES - head.len() - 2);
    for index in 0..8 {
        let mut frame = format!("{head}{filler}\"}}");
        frame.replace_range(head.len()..head.len() + 1, &index.to_string());
        sender.send_text(frame).await;
    }
    // Read at about 10 MB/s: a message of 1 MiB, then a tenth of a second's pause.
    for index in 0..8 {
        let (from, payload) = timeout(WAIT, reader.recv_message())
            .await
            .unwrap_or_else(|_| panic!("message {index} never came"));
        assert_eq!(from, sender.id);
        assert_eq!(payload.len(), filler.len() + 2);
        assert!(
            payload.starts_with(&format!("\"{index}")),
            "message {index}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        relay
            .metric("relay_disconnects_total{reason=\"slow_consumer\"}")
            .await,
        0
    );
    relay.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bytes_past_the_byte_burst_are_dropped_with_rate_limited() {
    let relay = TestRelay::start(Config {
        max_frame_bytes: 64 * 1024,
        peer_queue_bytes: 1024 * 1024,
        byte_rate_per_second: 1_000,
        byte_burst: 100 * 1024,
        ..config()
    })
    .await;
    let mut sender = relay.join("bytes").await;
    let mut bob = relay.join("bytes").await;
    sender.recv().await;
    let payload = format!("\"{}\"", "z".repeat(40 * 1024));
    for _ in 0..3 {
        sender.broadcast(&payload).await;
    }
    // Two fit in the burst of 100 KiB; the third is refused.
    match sender.recv().await {
        RelayFrame::Error { code, .. } => assert_eq!(code, RelayErrorCode::RateLimited),
        other => panic!("expected rate_limited, got {other:?}"),
    }
    for _ in 0..2 {
        assert_eq!(bob.recv_message().await.1.len(), payload.len());
    }
    sender.broadcast(r#""small""#).await;
    // Small frames still fit what the bucket refilled meanwhile.
    assert_eq!(bob.recv_message().await.1, r#""small""#);
    relay.shutdown().await.unwrap();
}

// The goodbye of a slow consumer.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_consumer_receives_whole_frames_then_slow_consumer_and_close_1008() {
    // The shape of the issue: maximum-size messages, a queue of two of them, a reader at about
    // 20 MB/s, and a sender allowed to outrun it.
    let relay = TestRelay::start(Config {
        peer_queue_bytes: 2 * shared::protocol::MAX_FRAME_BYTES + 2048,
        byte_rate_per_second: u64::MAX / 4,
        byte_burst: u64::MAX / 4,
        ..config()
    })
    .await;
    let slow = small_window_client(&relay, "/ws/goodbye", 64 * 1024).await;
    let mut slow = Client::welcomed(slow).await;
    let mut sender = relay.join("goodbye").await;
    slow.recv().await; // the sender's join
    let reading = tokio::spawn(async move {
        let mut last_error = None;
        loop {
            let next = timeout(WAIT, slow.ws.next())
                .await
                .expect("nothing in time");
            match next {
                Some(Ok(Message::Text(text))) => {
                    match RelayFrame::from_json(&text).expect("a well-formed relay frame") {
                        RelayFrame::Error { code, .. } => last_error = Some(code),
                        _ => assert!(last_error.is_none(), "a frame after the error"),
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Some(Ok(Message::Close(frame))) => return (last_error, frame),
                Some(Ok(_)) => {}
                Some(Err(error)) => panic!("the dropped peer saw a broken stream: {error}"),
                None => panic!("the stream ended without a close frame"),
            }
        }
    });
    let head = r#"{"type":"broadcast","payload":""#;
    let frame = format!(
        "{head}{}\"}}",
        "g".repeat(shared::protocol::MAX_FRAME_BYTES - head.len() - 2)
    );
    for _ in 0..20 {
        sender.send_text(frame.clone()).await;
    }
    let (last_error, close) = timeout(WAIT, reading)
        .await
        .expect("no close frame in time")
        .unwrap();
    let close = close.expect("a close frame with a code");
    assert_eq!(last_error, Some(RelayErrorCode::SlowConsumer));
    assert_eq!(close.code, CloseCode::Policy);
    assert_eq!(close.reason.as_str(), "slow_consumer");
    relay.shutdown().await.unwrap();
}

// Smaller findings.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_error_never_echoes_unbounded_input() {
    let relay = TestRelay::start(config()).await;
    let mut peer = relay.join("echo").await;
    let huge_type = "t".repeat(900 * 1024);
    peer.send_text(format!(r#"{{"type":"{huge_type}","payload":1}}"#))
        .await;
    let raw = timeout(WAIT, peer.ws.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let text = raw.into_text().unwrap();
    assert!(text.len() < 1024, "an error of {} bytes", text.len());
    match RelayFrame::from_json(&text).unwrap() {
        RelayFrame::Error { code, message } => {
            assert_eq!(code, RelayErrorCode::MalformedEnvelope);
            assert!(message.starts_with("unknown variant"), "{message}");
        }
        other => panic!("expected an error, got {other:?}"),
    }
    relay.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_upgrades_are_refused_with_400() {
    let relay = TestRelay::start(config()).await;
    let upgrade = |method: &str, key: &str| {
        format!(
            "{method} /ws/lobby HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
             Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: {key}\r\nContent-Length: 0\r\n\
             Connection: close\r\n\r\n"
        )
    };
    let cases = [
        (
            "POST with upgrade headers",
            upgrade("POST", "dGhlIHNhbXBsZSBub25jZQ=="),
        ),
        ("empty key", upgrade("GET", "")),
        ("key that is not 16 bytes", upgrade("GET", "c2hvcnQ=")),
    ];
    for (name, request) in cases {
        let response = http_request(relay.addr, &request).await;
        assert_eq!(response.status, 400, "{name}: {}", response.body);
        assert!(response.body.starts_with("bad_handshake"), "{name}");
    }
    // Nobody joined.
    assert_eq!(relay.metric("relay_connections_total").await, 0);
    let _: PeerId = relay.join("lobby").await.id;
    relay.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_being_received_share_one_budget() {
    let budget = 256 * 1024;
    let relay = TestRelay::start(Config {
        max_frame_bytes: 64 * 1024,
        message_memory_bytes: budget,
        message_timeout: Duration::from_secs(2),
        ..config()
    })
    .await;
    // Ten clients each send 60 KiB of a 64 KiB message and stall: 600 KiB if each were let hold
    // what it sent.
    let mut stalled = Vec::new();
    for _ in 0..10 {
        let mut stream = tokio::net::TcpStream::connect(relay.addr).await.unwrap();
        let request = "GET /ws/budget HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\n\
             Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n";
        stream.write_all(request.as_bytes()).await.unwrap();
        // A masked text frame header of 65,536 bytes (mask zero), then most of its payload.
        let mut frame = vec![0x81, 0x80 | 127];
        frame.extend_from_slice(&(64u64 * 1024).to_be_bytes());
        frame.extend_from_slice(&[0, 0, 0, 0]);
        frame.extend_from_slice(&vec![b' '; 60 * 1024]);
        // The relay may stop reading this one: the budget is spent.
        let _ = timeout(Duration::from_millis(500), stream.write_all(&frame)).await;
        stalled.push(stream);
    }
    relay.wait_for_metric("relay_connections", 10).await;
    let held = relay.metric("relay_receiving_bytes").await;
    assert!(held > 0, "nothing counted");
    assert!(held <= budget as u64, "{held} bytes held, over the budget");
    // The stalled messages time out, and give their share back: a whole message passes again.
    relay
        .wait_for_metric("relay_disconnects_total{reason=\"message_timeout\"}", 10)
        .await;
    assert_eq!(relay.metric("relay_receiving_bytes").await, 0);
    let mut alice = relay.join("budget-after").await;
    let mut bob = relay.join("budget-after").await;
    alice.recv().await;
    let payload = format!("\"{}\"", "a".repeat(50 * 1024));
    alice.broadcast(&payload).await;
    assert_eq!(bob.recv_message().await.1.len(), payload.len());
    drop(stalled);
    relay.shutdown().await.unwrap();
}
