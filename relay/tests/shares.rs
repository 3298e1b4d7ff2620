//! What one client address can take of what everyone shares (issue 26), against the relay
//! binary: every socket counts against the caps for its whole life, whatever it was answered, and
//! a proxy is recognised whichever socket family the relay listens on.

mod common;

use common::RelayProcess;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;

/// Sends `request` on a new connection and reads the answer's status; the connection stays open
/// (nothing else is read from it).
async fn status_of(addr: SocketAddr, request: &str) -> (TcpStream, u16) {
    let (stream, status, _) = answer_from("127.0.0.1", addr, request).await;
    (stream, status)
}

/// Sends `request` from the local address `from` and reads the answer's status and head.
async fn answer_from(from: &str, addr: SocketAddr, request: &str) -> (TcpStream, u16, String) {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket
        .bind(SocketAddr::new(from.parse().unwrap(), 0))
        .unwrap();
    let mut stream = socket.connect(addr).await.unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    let read = async {
        while !head.ends_with(b"\r\n\r\n") {
            if stream.read(&mut byte).await.unwrap() == 0 {
                break;
            }
            head.push(byte[0]);
        }
    };
    timeout(common::WAIT, read)
        .await
        .expect("an answer in time");
    let head = String::from_utf8_lossy(&head);
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {head:?}"));
    let head = head.into_owned();
    (stream, status, head)
}

const NOT_AN_UPGRADE: &str = "GET /ws/shares HTTP/1.1\r\nHost: relay\r\n\r\n";
const BAD_HANDSHAKE: &str = "GET /ws/shares HTTP/1.1\r\nHost: relay\r\nConnection: upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n\r\n";
/// The page (a 503 here, with no app): `/healthz` and `/metrics` are answered even over a cap.
const PAGE: &str = "GET / HTTP/1.1\r\nHost: relay\r\n\r\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_socket_answered_anything_but_101_keeps_its_slot_until_it_closes() {
    // Loopback is not a proxy here, so every socket counts for 127.0.0.1.
    let relay = RelayProcess::start(&[
        "--max-connections-per-address",
        "4",
        "--trusted-proxy",
        "192.0.2.99",
    ])
    .await;
    let mut held = Vec::new();
    for (request, expected) in [
        (NOT_AN_UPGRADE, 426),
        (NOT_AN_UPGRADE, 426),
        (BAD_HANDSHAKE, 400),
        (BAD_HANDSHAKE, 400),
    ] {
        let (stream, status) = status_of(relay.addr, request).await;
        assert_eq!(status, expected, "{request:?}");
        held.push(stream);
    }
    // Those four sockets are still open: the address has used its share.
    let (_refused, status) = status_of(relay.addr, PAGE).await;
    assert_eq!(
        status, 429,
        "a fifth socket while four refused upgrades stay open"
    );
    // One closes: its slot comes back.
    drop(held.pop());
    let retry = async {
        loop {
            if status_of(relay.addr, PAGE).await.1 != 429 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    timeout(common::WAIT, retry)
        .await
        .expect("the closed socket's slot was given back");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_proxy_is_trusted_when_the_relay_listens_on_an_ipv6_socket() {
    // Listening on `::`, the proxy at 127.0.0.1 arrives as ::ffff:127.0.0.1.
    let relay = RelayProcess::start(&["--addr", "::", "--max-connections-per-address", "2"]).await;
    let url = format!("ws://{}/ws/shares", relay.addr);
    let mut held = Vec::new();
    for client in [
        "198.51.100.1",
        "198.51.100.2",
        "198.51.100.3",
        "198.51.100.4",
    ] {
        let request = common::request_with(&url, &[("x-forwarded-for", client)]);
        let (ws, _) = tokio_tungstenite::connect_async(request)
            .await
            .unwrap_or_else(|error| {
                panic!("{client} behind the proxy was refused ({error}): the proxy is not trusted")
            });
        held.push(common::Client::welcomed(ws).await);
    }
    // Each forwarded client is still held to its own share.
    let request = common::request_with(&url, &[("x-forwarded-for", "198.51.100.1")]);
    held.push(
        common::Client::welcomed(tokio_tungstenite::connect_async(request).await.unwrap().0).await,
    );
    let request = common::request_with(&url, &[("x-forwarded-for", "198.51.100.1")]);
    match tokio_tungstenite::connect_async(request).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), 429)
        }
        other => panic!("a third socket for one forwarded client: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_join_flood_from_one_address_leaves_the_room_open_to_a_newcomer() {
    // Behind the proxy (loopback, trusted by default): the flooder and the newcomer are two
    // forwarded addresses.
    let relay = RelayProcess::start(&[]).await;
    let url = format!("ws://{}/ws/locked", relay.addr);
    let join_as = |client: &'static str| {
        let request = common::request_with(&url, &[("x-forwarded-for", client)]);
        tokio_tungstenite::connect_async(request)
    };
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flooders: Vec<_> = (0..2)
        .map(|_| {
            let stop = stop.clone();
            let url = url.clone();
            tokio::spawn(async move {
                let (mut admitted, mut attempts) = (0u32, 0u32);
                // Bounded: at most 5,000 attempts each, loopback only.
                while !stop.load(std::sync::atomic::Ordering::Relaxed) && attempts < 5_000 {
                    attempts += 1;
                    let request =
                        common::request_with(&url, &[("x-forwarded-for", "198.51.100.1")]);
                    if tokio_tungstenite::connect_async(request).await.is_ok() {
                        admitted += 1;
                    }
                }
                admitted
            })
        })
        .collect();
    // The newcomer retries every second, as `Retry-After: 1` tells it.
    let mut welcomed = 0;
    let tries = 6;
    for _ in 0..tries {
        tokio::time::sleep(Duration::from_secs(1)).await;
        if let Ok((ws, _)) = join_as("198.51.100.2").await {
            common::Client::welcomed(ws).await;
            welcomed += 1;
        }
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut flooded = 0;
    for flooder in flooders {
        flooded += flooder.await.unwrap();
    }
    assert!(
        welcomed >= tries - 1,
        "the newcomer got in {welcomed} times of {tries} while one address flooded ({flooded} of its joins admitted)"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_counters_and_the_servers_paths_stay_with_the_server() {
    let relay = RelayProcess::start(&[]).await;
    let metrics = "GET /metrics HTTP/1.1\r\nHost: relay\r\n\r\n";
    // This machine reads the counters; another address (as a phone on the LAN with --lan) not.
    assert_eq!(answer_from("127.0.0.1", relay.addr, metrics).await.1, 200);
    assert_eq!(answer_from("127.0.0.2", relay.addr, metrics).await.1, 404);
    // The page that says the app is missing names the folder, not the server's path to it.
    let (mut stream, status, _) = answer_from("127.0.0.1", relay.addr, PAGE).await;
    assert_eq!(status, 503);
    let mut body = vec![0u8; 4096];
    let read = timeout(common::WAIT, stream.read(&mut body))
        .await
        .unwrap()
        .unwrap();
    let body = String::from_utf8_lossy(&body[..read]);
    assert!(body.contains("<code>nonexistent</code>"), "{body}");
    assert!(!body.contains("/nonexistent"), "{body}");
}

#[test]
fn the_relay_raises_its_open_files_limit_to_what_its_caps_need() {
    // A soft limit of 256 (a login shell's 1,024 is as short for 10,000 sockets): the relay
    // raises it itself, up to the hard limit, before it listens.
    let mut child = std::process::Command::new("sh")
        .args([
            "-c",
            &format!(
                "ulimit -Sn 256 && exec {} --port 0 --static-dir /nonexistent --max-connections 1000",
                env!("CARGO_BIN_EXE_relay")
            ),
        ])
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    assert!(line.starts_with("tabchain relay listening"), "{line}");
    let limits = std::fs::read_to_string(format!("/proc/{}/limits", child.id())).unwrap();
    let _ = child.kill();
    let _ = child.wait();
    let field = |index: usize| -> u64 {
        limits
            .lines()
            .find(|line| line.starts_with("Max open files"))
            .and_then(|line| line.split_whitespace().nth(index))
            .and_then(|value| value.parse().ok())
            .unwrap_or(u64::MAX)
    };
    let (soft, hard) = (field(3), field(4));
    // Serving files from a directory: two descriptors per socket, the refusal slots, and a few.
    let needed = (1_000 + 64) * 2 + 64;
    assert!(
        soft >= needed.min(hard),
        "soft limit {soft} (hard {hard}), {needed} needed"
    );
}

#[test]
fn with_too_few_descriptors_the_relay_lowers_its_socket_cap_to_what_fits() {
    // A hard limit of 512: 10,000 sockets serving files cannot fit; the relay says so and caps
    // itself at what does ((512 - 64) / 2 - 64 refusal slots = 160), so it refuses sockets with
    // server_full instead of failing to accept them.
    let output = std::process::Command::new("sh")
        .args([
            "-c",
            &format!(
                "ulimit -n 512 && timeout -s INT 1 {} --port 0 --static-dir /nonexistent",
                env!("CARGO_BIN_EXE_relay")
            ),
        ])
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&output.stderr);
    assert!(log.contains("lowered_to=160"), "{log}");
}
