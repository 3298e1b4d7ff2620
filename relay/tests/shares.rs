//! What one client address can take of what everyone shares (issue 26), against the relay
//! binary: every socket counts against the caps for its whole life, whatever it was answered; a
//! proxy is recognised whichever socket family the relay listens on; a join flood leaves a room
//! open; one address holding messages half-sent or filling queues nobody reads spends its own
//! share of the memory budgets, not everyone's; the counters and the server's paths stay private;
//! descriptors are planned for the caps. Each test was seen failing on the code before its fix.

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

/// A text message of `length` bytes announced in one frame, of which only `sent` bytes follow:
/// the relay holds a buffer for it until the message timeout.
async fn half_sent_message(from: &str, addr: &SocketAddr, length: usize, sent: usize) -> TcpStream {
    let mut stream = common::raw_websocket_from(from, addr, "holders").await;
    let mut frame = vec![0x81, 0xff];
    frame.extend_from_slice(&(length as u64).to_be_bytes());
    frame.extend_from_slice(&[0, 0, 0, 0]); // mask key 0: the payload goes as it is
    frame.extend(std::iter::repeat_n(b'h', sent));
    stream.write_all(&frame).await.unwrap();
    stream
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_address_holding_messages_half_sent_cannot_stall_everyone_elses() {
    // An 8 MiB incoming budget; one address holds 16 messages of 1 MiB, 600 KB of each sent.
    let relay = RelayProcess::start(&[
        "--trusted-proxy",
        "192.0.2.99",
        "--message-memory-bytes",
        "8388608",
        "--message-timeout-secs",
        "20",
    ])
    .await;
    let mut held = Vec::new();
    for _ in 0..16 {
        held.push(half_sent_message("127.0.0.1", &relay.addr, 1_000_000, 600_000).await);
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    // Two honest clients of other addresses: a 200 KB message arrives within 5 s.
    let mut sender = common::client_from("127.0.0.2", &relay.addr, "honest").await;
    let mut receiver = common::client_from("127.0.0.3", &relay.addr, "honest").await;
    sender.recv().await; // the receiver joined
    let payload = format!("\"{}\"", "m".repeat(200_000));
    sender.broadcast(&payload).await;
    let delivered = timeout(Duration::from_secs(5), receiver.recv_message()).await;
    let metrics = relay.metrics().await;
    let receiving = common::metric_value(&metrics, "relay_receiving_bytes").unwrap();
    assert!(
        delivered.is_ok(),
        "an honest 200 KB message waited more than 5 s while one address held {receiving} bytes of the budget"
    );
    assert_eq!(delivered.unwrap().1.len(), payload.len());
    drop(held);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_address_filling_queues_that_nobody_reads_cannot_refuse_everyone_elses_frames() {
    // A 16 MiB queued budget. In each of 3 rooms one address has a member that never reads and a
    // sender of 36 frames of 256 KB (9 MiB, under a member's own 10 MiB queue limit).
    let relay = RelayProcess::start(&[
        "--trusted-proxy",
        "192.0.2.99",
        "--queue-memory-bytes",
        "16777216",
    ])
    .await;
    let mut sinks = Vec::new();
    let mut senders = Vec::new();
    for room in 0..3 {
        let room = format!("sink{room}");
        sinks.push(common::raw_websocket_from("127.0.0.1", &relay.addr, &room).await);
        senders.push(common::client_from("127.0.0.1", &relay.addr, &room).await);
    }
    let frame = format!("\"{}\"", "q".repeat(256 * 1024));
    let small = format!("\"{}\"", "q".repeat(1024));
    for sender in &mut senders {
        for _ in 0..36 {
            sender.broadcast(&frame).await;
        }
        // Then small frames, to fill what is left to the brim.
        for _ in 0..200 {
            sender.broadcast(&small).await;
        }
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    // Two honest clients of other addresses exchange 50 messages of 4 KB; none is refused.
    let mut sender = common::client_from("127.0.0.2", &relay.addr, "honest").await;
    let mut receiver = common::client_from("127.0.0.3", &relay.addr, "honest").await;
    sender.recv().await; // the receiver joined
    for index in 0..50 {
        sender
            .broadcast(&format!("\"{index} {}\"", "h".repeat(4096)))
            .await;
    }
    let mut received = 0;
    while let Ok((_, _)) = timeout(Duration::from_secs(2), receiver.recv_message()).await {
        received += 1;
        if received == 50 {
            break;
        }
    }
    let metrics = relay.metrics().await;
    let queued = common::metric_value(&metrics, "relay_queued_bytes").unwrap();
    assert_eq!(
        received, 50,
        "only {received} of 50 honest frames got through while one address held {queued} queued bytes"
    );
    drop((sinks, senders));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn senders_each_within_their_limits_cannot_get_a_victim_cut_off() {
    // Four connections of one address send signals of almost 1 MiB to one victim, each within its
    // own byte burst (8 MiB), while the victim looks away for a second (a phone busy drawing):
    // together 32 MiB for a queue of 10 MiB.
    let relay = RelayProcess::start(&["--trusted-proxy", "192.0.2.99"]).await;
    let mut victim = common::client_from("127.0.0.2", &relay.addr, "target").await;
    let mut senders = Vec::new();
    for _ in 0..4 {
        senders.push(common::client_from("127.0.0.1", &relay.addr, "target").await);
    }
    let payload = format!("\"{}\"", "s".repeat(1_000_000));
    let victim_id = victim.id.clone();
    let flood: Vec<_> = senders
        .into_iter()
        .map(|mut sender| {
            let (payload, to) = (payload.clone(), victim_id.clone());
            tokio::spawn(async move {
                for _ in 0..8 {
                    sender.signal_to(&to, &payload).await;
                }
                sender
            })
        })
        .collect();
    let mut senders = Vec::new();
    for task in flood {
        senders.push(task.await.unwrap());
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    // The victim reads again: everything waiting, then a last message, and it is still there.
    let mut last = common::client_from("127.0.0.3", &relay.addr, "target").await;
    last.send_to(&victim_id, "\"still here?\"").await;
    let mut signals = 0;
    let read = async {
        loop {
            match victim.recv().await {
                shared::protocol::RelayFrame::Signal { .. } => signals += 1,
                shared::protocol::RelayFrame::Message { payload, .. } => {
                    return payload.get().to_owned()
                }
                _ => {}
            }
        }
    };
    let last_message = timeout(Duration::from_secs(20), read).await;
    let metrics = relay.metrics().await;
    let cut = common::metric_value(
        &metrics,
        r#"relay_disconnects_total{reason="slow_consumer"}"#,
    )
    .unwrap();
    assert_eq!(cut, 0, "the victim was cut off as a slow consumer");
    assert_eq!(
        last_message.expect("the victim still receives"),
        "\"still here?\""
    );
    let refused =
        common::metric_value(&metrics, r#"relay_dropped_total{reason="receiver_busy"}"#).unwrap();
    assert!(
        refused > 0 && signals > 0,
        "{signals} signals delivered, {refused} refused"
    );
    drop(senders);
}

/// Issue 30: a whole class behind one address (a school's NAT) is the normal case, not an
/// abuser. With the default limits a full room (256 tabs, the room cap) from one address joins
/// in one burst, and after a relay restart every tab is back within 20 s (the issue asks 30),
/// each retrying as a tab does (`shared::node::reconnect`), refused only with a `Retry-After`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_class_behind_one_address_fills_a_room_and_is_back_within_20_s_of_a_restart() {
    use futures_util::StreamExt;
    use shared::node::reconnect::retry_delay_ms;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use tokio_tungstenite::tungstenite::Error as WsError;

    const CLASS: usize = relay::config::DEFAULT_MAX_PEERS_PER_ROOM;
    let relay = RelayProcess::start(&[]).await;
    let addr = relay.addr;
    let welcomed = Arc::new(AtomicUsize::new(0));
    let bad_refusals = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let honoured = Arc::new(AtomicUsize::new(0));
    let (restarted_tx, restarted) = tokio::sync::watch::channel(false);

    // One tab: joins, holds its socket until the relay goes, joins again, holds it.
    let tab = |index: usize| {
        let (welcomed, bad_refusals, honoured) =
            (welcomed.clone(), bad_refusals.clone(), honoured.clone());
        let mut restarted = restarted.clone();
        async move {
            let mut seed = common_random(index as u64);
            for round in 0..2 {
                let mut failed = 0;
                let mut ws = loop {
                    match tokio_tungstenite::connect_async(format!("ws://{addr}/ws/class")).await {
                        Ok((ws, _)) => break ws,
                        Err(WsError::Http(response)) => {
                            let status = response.status().as_u16();
                            let retry_after = response
                                .headers()
                                .get("retry-after")
                                .and_then(|value| value.to_str().ok())
                                .and_then(|value| value.parse::<u64>().ok());
                            match (status, retry_after) {
                                (429 | 503, Some(seconds)) => {
                                    honoured.fetch_add(1, Ordering::Relaxed);
                                    seed = common_random(seed);
                                    let wait =
                                        retry_delay_ms(failed, unit(seed)).max(seconds * 1_000);
                                    tokio::time::sleep(Duration::from_millis(wait)).await;
                                }
                                _ => {
                                    bad_refusals.lock().unwrap().push(format!(
                                        "tab {index}: {status} (Retry-After {retry_after:?})"
                                    ));
                                    return;
                                }
                            }
                        }
                        // The relay is down: a tab's retry policy.
                        Err(_) => {
                            seed = common_random(seed);
                            let wait = retry_delay_ms(failed, unit(seed));
                            tokio::time::sleep(Duration::from_millis(wait)).await;
                        }
                    }
                    failed += 1;
                };
                // The welcome, then hold the socket until it ends (the relay is killed).
                match timeout(common::WAIT, ws.next()).await {
                    Ok(Some(Ok(_))) => {
                        welcomed.fetch_add(1, Ordering::Relaxed);
                    }
                    other => {
                        bad_refusals
                            .lock()
                            .unwrap()
                            .push(format!("tab {index}: no welcome ({other:?})"));
                        return;
                    }
                }
                if round == 0 {
                    while let Some(Ok(_)) = ws.next().await {}
                    // Reconnect only once the test has restarted the relay on the same port
                    // (tries before that are refused by a closed port, like a tab's).
                    let _ = restarted.wait_for(|up| *up).await;
                } else {
                    // Keep the socket open until the test ends.
                    let _ = timeout(Duration::from_secs(60), ws.next()).await;
                }
            }
        }
    };
    fn common_random(seed: u64) -> u64 {
        let mut rng = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ 0xbf58_476d_1ce4_e5b9;
        rng ^= rng >> 31;
        rng.wrapping_mul(0x94d0_49bb_1331_11eb) ^ (rng >> 29)
    }
    fn unit(random: u64) -> f64 {
        (random >> 11) as f64 / (1u64 << 53) as f64
    }

    let tabs: Vec<_> = (0..CLASS).map(|index| tokio::spawn(tab(index))).collect();
    let started = std::time::Instant::now();
    while welcomed.load(Ordering::Relaxed) < CLASS && started.elapsed() < Duration::from_secs(60) {
        assert!(
            bad_refusals.lock().unwrap().is_empty(),
            "{:?}",
            bad_refusals.lock().unwrap()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let joined_in = started.elapsed();
    assert_eq!(
        welcomed.load(Ordering::Relaxed),
        CLASS,
        "the whole class joined"
    );

    // The relay restarts on the same port, as a supervised relay does.
    let port = addr.port();
    drop(relay);
    let relay = RelayProcess::start_on(port, &[]).await;
    let restart = std::time::Instant::now();
    restarted_tx.send(true).unwrap();
    while welcomed.load(Ordering::Relaxed) < 2 * CLASS
        && restart.elapsed() < Duration::from_secs(60)
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let back_in = restart.elapsed();
    let refusals = bad_refusals.lock().unwrap().clone();
    assert!(
        refusals.is_empty(),
        "refused without a Retry-After: {refusals:?}"
    );
    assert_eq!(
        welcomed.load(Ordering::Relaxed),
        2 * CLASS,
        "every tab back after the restart"
    );
    println!(
        "{CLASS} tabs from one address: joined in {:.1} s, back {:.1} s after the restart, {} refusals with Retry-After honoured",
        joined_in.as_secs_f64(),
        back_in.as_secs_f64(),
        honoured.load(Ordering::Relaxed)
    );
    // The issue asks for 30 s. At its share alone (5 joins a second once the burst is spent) the
    // class took 27 s; 20 s holds the rule that lets it use a room nobody else is short of.
    assert!(
        back_in <= Duration::from_secs(20),
        "the class took {back_in:?} to come back"
    );
    drop(relay);
    for tab in tabs {
        tab.abort();
    }
}
