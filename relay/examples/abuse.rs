//! Abuse tool: runs each attack of issue 11 against a relay it starts on 127.0.0.1, for a bounded
//! time, while two honest peers exchange 10 messages a second each, and prints a Markdown table:
//! the relay's CPU-seconds per second during each attack, its RSS before, at its peak and after
//! (and how long it took to get back under twice its idle RSS), and whether the honest peers
//! lost, duplicated or reordered anything.
//!
//! Attackers connect from other loopback addresses (127.0.0.x) than the honest peers, as they
//! would from other hosts; the relay is started with no trusted proxy so every address counts.
//! Everything stays on 127.0.0.1 and every phase has a deadline.
//!
//! ```text
//! cargo build --release -p relay --bin relay --example abuse
//! ulimit -n 20000
//! $CARGO_TARGET_DIR/release/examples/abuse --relay-bin $CARGO_TARGET_DIR/release/relay
//! ```

use clap::Parser;
use futures_util::{SinkExt, StreamExt};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{sleep, timeout};
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
use tokio_tungstenite::tungstenite::protocol::frame::Frame;
use tokio_tungstenite::tungstenite::{Bytes, Message};

/// Longest wait for the relay to start, for one connection, for the honest peers to settle.
const DEADLINE: Duration = Duration::from_secs(15);
/// How often the relay's RSS is sampled.
const SAMPLE_EVERY: Duration = Duration::from_millis(100);
/// Messages per second each honest peer sends.
const HONEST_RATE: u64 = 10;
/// The largest message the relay accepts by default.
const MAX_FRAME: usize = 1024 * 1024;

#[derive(Parser, Debug)]
#[command(about = "Runs each abuse of issue 11 against a relay and checks two honest peers")]
struct Args {
    /// The relay binary (build it with --release).
    #[arg(long)]
    relay_bin: PathBuf,
    /// Seconds each attack runs.
    #[arg(long, default_value_t = 10.0)]
    attack_seconds: f64,
    /// Longest wait after an attack for the relay to get back under twice its idle RSS.
    #[arg(long, default_value_t = 30.0)]
    recover_seconds: f64,
    /// The binary is an earlier build without `--trusted-proxy` (for a before/after comparison).
    #[arg(long)]
    earlier_build: bool,
    /// Attacks to run, in order.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "pings,frames,fragments,http,joins,big-frames,stun"
    )]
    attacks: Vec<String>,
}

struct Relay {
    child: Child,
    addr: SocketAddr,
    _static_dir: PathBuf,
}

impl Relay {
    async fn start(args: &Args) -> Relay {
        let static_dir = std::env::temp_dir().join(format!("relay-abuse-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&static_dir);
        std::fs::create_dir_all(&static_dir).unwrap();
        std::fs::write(static_dir.join("index.html"), "<!doctype html>").unwrap();
        std::fs::write(static_dir.join("big.bin"), vec![b'x'; 8 * 1024 * 1024]).unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut command = Command::new(&args.relay_bin);
        command
            .args(["--port", &port.to_string()])
            .arg("--static-dir")
            .arg(&static_dir);
        if !args.earlier_build {
            // No trusted proxy: every loopback address is a client of its own.
            command.args(["--trusted-proxy", "192.0.2.1"]);
        }
        let child = command
            .env("RUST_LOG", "error")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("the relay starts");
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let started = Instant::now();
        while TcpStream::connect(addr).await.is_err() {
            assert!(started.elapsed() < DEADLINE, "the relay did not start");
            sleep(Duration::from_millis(50)).await;
        }
        Relay {
            child,
            addr,
            _static_dir: static_dir,
        }
    }

    fn rss_mib(&self) -> f64 {
        rss_of(self.child.id())
    }

    async fn metrics(&self) -> String {
        let exchange = async {
            let mut stream = TcpStream::connect(self.addr).await.ok()?;
            stream
                .write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                .await
                .ok()?;
            let mut body = String::new();
            stream.read_to_string(&mut body).await.ok()?;
            Some(body)
        };
        timeout(DEADLINE, exchange)
            .await
            .ok()
            .flatten()
            .unwrap_or_default()
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self._static_dir);
    }
}

/// Counters of the relay's `/metrics` that tell what it did to the attackers.
fn counters(metrics: &str) -> Vec<(String, u64)> {
    metrics
        .lines()
        .filter(|line| {
            line.starts_with("relay_disconnects_total")
                || line.starts_with("relay_rejected_total")
                || line.starts_with("relay_dropped_total")
                || line.starts_with("relay_stun_requests_total")
        })
        .filter_map(|line| {
            let (name, value) = line.rsplit_once(' ')?;
            Some((name.to_owned(), value.parse().ok()?))
        })
        .collect()
}

fn counter_changes(before: &[(String, u64)], after: &[(String, u64)]) -> String {
    let changes: Vec<String> = after
        .iter()
        .filter_map(|(name, value)| {
            let old = before
                .iter()
                .find(|(other, _)| other == name)
                .map_or(0, |(_, value)| *value);
            let short = name
                .replace("relay_disconnects_total", "closed")
                .replace("relay_rejected_total", "refused")
                .replace("relay_dropped_total", "dropped")
                .replace("relay_stun_requests_total", "STUN")
                .replace("{outcome=\"", " ")
                .replace("{reason=\"", " ")
                .replace("\"}", "");
            (*value > old).then(|| format!("{short} {}", value - old))
        })
        .collect();
    if changes.is_empty() {
        "-".to_owned()
    } else {
        changes.join(", ")
    }
}

/// A TCP connection from `source` (a loopback address of the attacker's).
async fn connect_from(
    source: Ipv4Addr,
    relay: SocketAddr,
    window: Option<u32>,
) -> Option<TcpStream> {
    let socket = tokio::net::TcpSocket::new_v4().ok()?;
    if let Some(window) = window {
        socket.set_recv_buffer_size(window).ok()?;
    }
    socket.bind(SocketAddr::from((source, 0))).ok()?;
    timeout(DEADLINE, socket.connect(relay)).await.ok()?.ok()
}

type Ws = tokio_tungstenite::WebSocketStream<TcpStream>;

/// A WebSocket to `room` from `source`.
async fn websocket_from(source: Ipv4Addr, relay: SocketAddr, room: &str) -> Option<Ws> {
    let stream = connect_from(source, relay, None).await?;
    let url = format!("ws://{relay}/ws/{room}");
    let (ws, _) = timeout(DEADLINE, tokio_tungstenite::client_async(url, stream))
        .await
        .ok()?
        .ok()?;
    Some(ws)
}

/// A WebSocket opened by hand, never read after the handshake.
async fn raw_websocket_from(source: Ipv4Addr, relay: SocketAddr, room: &str) -> Option<TcpStream> {
    let mut stream = connect_from(source, relay, Some(4096)).await?;
    let request = format!(
        "GET /ws/{room} HTTP/1.1\r\nHost: {relay}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
         Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.ok()?;
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut byte = [0u8; 1];
        timeout(DEADLINE, stream.read_exact(&mut byte))
            .await
            .ok()?
            .ok()?;
        head.push(byte[0]);
    }
    head.starts_with(b"HTTP/1.1 101").then_some(stream)
}

/// The loopback address of attacker connection `index` of an attack: 50 connections per address,
/// so the attacks measure what they are about rather than the per-address caps (512 sockets, a
/// join burst of 128).
fn attacker(group: u8, index: usize) -> Ipv4Addr {
    Ipv4Addr::new(127, group, (index / 50) as u8, 10)
}

/// A broadcast of exactly the largest size the relay accepts.
fn maximum_broadcast(fill: char) -> String {
    let head = r#"{"type":"broadcast","payload":""#;
    let filler: String = std::iter::repeat_n(fill, MAX_FRAME - head.len() - 2).collect();
    format!("{head}{filler}\"}}")
}

/// What the honest peers saw, over the whole run.
#[derive(Default)]
struct Honest {
    sent: AtomicU64,
    received: AtomicU64,
    lost: AtomicU64,
    duplicated_or_reordered: AtomicU64,
    disconnects: AtomicU64,
}

/// One honest peer: sends 10 messages a second numbered in order, answers every join with a hello
/// as a node does, and checks the other's numbers arrive once each, in order. Reconnects if the
/// relay drops it (counted).
async fn honest_peer(
    relay: SocketAddr,
    me: &'static str,
    other: &'static str,
    stats: Arc<Honest>,
    stop: Arc<AtomicBool>,
) {
    let mut next_seq: u64 = 0;
    let mut expected: u64 = 0;
    while !stop.load(Ordering::Relaxed) {
        let Some(ws) = websocket_from(Ipv4Addr::LOCALHOST, relay, "honest").await else {
            sleep(Duration::from_millis(200)).await;
            continue;
        };
        let (mut sink, mut stream) = ws.split();
        let mut tick = tokio::time::interval(Duration::from_millis(1000 / HONEST_RATE));
        let ended = loop {
            tokio::select! {
                _ = tick.tick() => {
                    if stop.load(Ordering::Relaxed) {
                        break false;
                    }
                    let frame = format!(r#"{{"type":"broadcast","payload":{{"from":"{me}","seq":{next_seq}}}}}"#);
                    if sink.send(Message::text(frame)).await.is_err() {
                        break true;
                    }
                    next_seq += 1;
                    stats.sent.fetch_add(1, Ordering::Relaxed);
                }
                message = stream.next() => {
                    let text = match message {
                        Some(Ok(Message::Text(text))) => text,
                        Some(Ok(_)) => continue,
                        _ => break true,
                    };
                    if text.starts_with(r#"{"type":"peer_joined""#) {
                        if let Some(id) = text.split('"').nth(7) {
                            let hello = format!(r#"{{"type":"send","to":"{id}","payload":{{"type":"hello"}}}}"#);
                            let _ = sink.send(Message::text(hello)).await;
                        }
                        continue;
                    }
                    let Some(seq) = honest_seq(&text, other) else { continue };
                    stats.received.fetch_add(1, Ordering::Relaxed);
                    if seq == expected {
                        expected += 1;
                    } else if seq > expected {
                        stats.lost.fetch_add(seq - expected, Ordering::Relaxed);
                        expected = seq + 1;
                    } else {
                        stats.duplicated_or_reordered.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        };
        if ended && !stop.load(Ordering::Relaxed) {
            stats.disconnects.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// The sequence number of an honest message from `from`.
fn honest_seq(text: &str, from: &str) -> Option<u64> {
    let marker = format!(r#""from":"{from}","seq":"#);
    let start = text.find(&marker)? + marker.len();
    let digits: String = text[start..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

/// Runs one attack until `until`; returns a line on what it did.
async fn attack(name: &str, relay: SocketAddr, until: Instant) -> String {
    match name {
        "pings" => {
            // 20 connections that blast 125-byte pings and never read a pong.
            let mut ping = vec![0x89, 0x80 | 125, 0, 0, 0, 0];
            ping.extend_from_slice(&[b'p'; 125]);
            let pings: Arc<Vec<u8>> = Arc::new(
                ping.iter()
                    .copied()
                    .cycle()
                    .take(ping.len() * 4_000)
                    .collect(),
            );
            let sent = Arc::new(AtomicU64::new(0));
            let tasks: Vec<_> = (0..20)
                .map(|index| {
                    let (pings, sent) = (pings.clone(), sent.clone());
                    tokio::spawn(async move {
                        let source = Ipv4Addr::new(127, 10, 0, 10 + index as u8);
                        let Some(mut stream) =
                            raw_websocket_from(source, relay, "ping-flood").await
                        else {
                            return;
                        };
                        while Instant::now() < until {
                            match timeout(
                                until.saturating_duration_since(Instant::now()),
                                stream.write_all(&pings),
                            )
                            .await
                            {
                                Ok(Ok(())) => {
                                    sent.fetch_add(4_000, Ordering::Relaxed);
                                    // Leave the tool's honest peers their share of its threads.
                                    tokio::task::yield_now().await;
                                }
                                _ => return,
                            }
                        }
                    })
                })
                .collect();
            for task in tasks {
                let _ = task.await;
            }
            format!(
                "20 connections sent {} pings, reading nothing",
                sent.load(Ordering::Relaxed)
            )
        }
        "frames" => {
            // 200 connections each send one maximum-size frame, then stay, idle.
            let frame = maximum_broadcast('f');
            let mut held = Vec::new();
            for index in 0..200 {
                if let Some(mut ws) =
                    websocket_from(attacker(20, index), relay, &format!("frames-{index}")).await
                {
                    if ws.send(Message::text(frame.clone())).await.is_ok() {
                        held.push(ws);
                    }
                }
            }
            let count = held.len();
            sleep(until.saturating_duration_since(Instant::now())).await;
            drop(held);
            format!("{count} connections each sent one 1 MiB frame, then held the connection")
        }
        "fragments" => {
            // 1,000 connections each send 900 KiB of a message and stall: 880 MiB if the relay
            // held it all.
            let half = Frame::message(
                Bytes::from(vec![b' '; 900 * 1024]),
                OpCode::Data(Data::Text),
                false,
            );
            let sent = Arc::new(AtomicU64::new(0));
            let held = Arc::new(Mutex::new(Vec::new()));
            let tasks: Vec<_> = (0..1_000)
                .map(|index| {
                    let (half, sent, held) = (half.clone(), sent.clone(), held.clone());
                    tokio::spawn(async move {
                        let Some(mut ws) = websocket_from(
                            attacker(30, index),
                            relay,
                            &format!("fragments-{}", index % 50),
                        )
                        .await
                        else {
                            return;
                        };
                        if timeout(Duration::from_secs(2), ws.send(Message::Frame(half)))
                            .await
                            .is_ok_and(|sent| sent.is_ok())
                        {
                            sent.fetch_add(1, Ordering::Relaxed);
                        }
                        held.lock().unwrap().push(ws);
                    })
                })
                .collect();
            for task in tasks {
                let _ = task.await;
            }
            sleep(until.saturating_duration_since(Instant::now())).await;
            let count = held.lock().unwrap().len();
            held.lock().unwrap().clear();
            format!(
                "{count} connections sent 900 KiB of a message each ({} whole halves accepted by the socket) and stalled",
                sent.load(Ordering::Relaxed)
            )
        }
        "http" => {
            // 2,000 sockets ask for an 8 MiB file and never read; the relay's cap is 10,000.
            let mut held = Vec::new();
            for index in 0..2_000 {
                if let Some(mut stream) = connect_from(attacker(40, index), relay, Some(4096)).await
                {
                    if stream
                        .write_all(b"GET /big.bin HTTP/1.1\r\nHost: x\r\n\r\n")
                        .await
                        .is_ok()
                    {
                        held.push(stream);
                    }
                }
            }
            let count = held.len();
            sleep(until.saturating_duration_since(Instant::now())).await;
            drop(held);
            format!("{count} sockets asked for an 8 MiB file and never read it")
        }
        "joins" => {
            // Joins into the honest room as fast as they go, 50 at a time, each leaving at once.
            let attempted = Arc::new(AtomicU64::new(0));
            let joined = Arc::new(AtomicU64::new(0));
            let mut index = 0usize;
            while Instant::now() < until && index < 20_000 {
                let batch: Vec<_> = (0..50)
                    .map(|offset| {
                        let (attempted, joined) = (attempted.clone(), joined.clone());
                        let source = Ipv4Addr::new(127, 50, ((index + offset) % 200) as u8, 10);
                        tokio::spawn(async move {
                            attempted.fetch_add(1, Ordering::Relaxed);
                            if let Some(mut ws) = websocket_from(source, relay, "honest").await {
                                joined.fetch_add(1, Ordering::Relaxed);
                                let _ = ws.close(None).await;
                            }
                        })
                    })
                    .collect();
                for task in batch {
                    let _ = task.await;
                }
                index += 50;
            }
            format!(
                "{} joins tried into the honest room from 200 addresses, {} let in",
                attempted.load(Ordering::Relaxed),
                joined.load(Ordering::Relaxed)
            )
        }
        "big-frames" => {
            // In the honest room: one peer sends maximum frames as fast as it may, another joins
            // and never reads.
            let sink_peer = raw_websocket_from(attacker(60, 0), relay, "honest").await;
            let Some(ws) = websocket_from(attacker(60, 1), relay, "honest").await else {
                return "could not connect".to_owned();
            };
            let frame = maximum_broadcast('b');
            let mut sent = 0;
            let (mut sink, mut stream) = ws.split();
            let reader =
                tokio::spawn(async move { while let Some(Ok(_)) = stream.next().await {} });
            while Instant::now() < until {
                match timeout(
                    until.saturating_duration_since(Instant::now()),
                    sink.send(Message::text(frame.clone())),
                )
                .await
                {
                    Ok(Ok(())) => sent += 1,
                    _ => break,
                }
            }
            reader.abort();
            drop(sink_peer);
            format!("one peer sent {sent} frames of 1 MiB to the honest room; another member never read")
        }
        "stun" => {
            // 50 addresses each send Binding requests to the relay's STUN port (the HTTP port's
            // number) as fast as one socket sends, and read nothing back.
            let request = {
                use stun_types::message::{Message, MessageWriteVec, BINDING};
                use stun_types::prelude::*;
                Message::builder_request(BINDING, MessageWriteVec::new()).finish()
            };
            let request = Arc::new(request);
            let sent = Arc::new(AtomicU64::new(0));
            let tasks: Vec<_> = (0..50)
                .map(|index| {
                    let (request, sent) = (request.clone(), sent.clone());
                    tokio::spawn(async move {
                        let source =
                            SocketAddr::from((Ipv4Addr::new(127, 70, 0, 10 + index as u8), 0));
                        let Ok(socket) = tokio::net::UdpSocket::bind(source).await else {
                            return;
                        };
                        while Instant::now() < until {
                            for _ in 0..64 {
                                if socket.send_to(&request, relay).await.is_ok() {
                                    sent.fetch_add(1, Ordering::Relaxed);
                                }
                            }
                            tokio::task::yield_now().await;
                        }
                    })
                })
                .collect();
            for task in tasks {
                let _ = task.await;
            }
            format!(
                "{} STUN Binding requests from 50 addresses, answers never read",
                sent.load(Ordering::Relaxed)
            )
        }
        other => format!("unknown attack `{other}`"),
    }
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let relay = Relay::start(&args).await;
    let stats = Arc::new(Honest::default());
    let stop = Arc::new(AtomicBool::new(false));
    // The honest peers and the health probe run on a thread of their own, so the attackers'
    // busy loops in this tool cannot starve them: only the relay may.
    let honest_runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("a runtime for the honest peers");
    let peers = [
        honest_runtime.spawn(honest_peer(
            relay.addr,
            "a",
            "b",
            stats.clone(),
            stop.clone(),
        )),
        honest_runtime.spawn(honest_peer(
            relay.addr,
            "b",
            "a",
            stats.clone(),
            stop.clone(),
        )),
    ];
    sleep(Duration::from_secs(2)).await;
    let idle = relay.rss_mib();
    println!("## Relay abuse run\n");
    println!(
        "Relay RSS with the two honest peers connected: {idle:.1} MiB. Each attack runs {} s; then the tool waits up to {} s for RSS under {:.1} MiB (2x idle).\n",
        args.attack_seconds,
        args.recover_seconds,
        2.0 * idle
    );
    println!("| attack | what the attacker did | relay CPU-s per s | RSS before MiB | peak MiB | after MiB | back under 2x idle | /healthz during (2 s timeout) | honest sent / received | lost | dup. or reordered | honest dropped | what the relay did |");
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    for name in &args.attacks {
        let before_counters = counters(&relay.metrics().await);
        let before = relay.rss_mib();
        let (sent0, received0, lost0, dup0, drops0) = snapshot(&stats);
        let attack_end = Instant::now() + Duration::from_secs_f64(args.attack_seconds);
        let peak = Arc::new(Mutex::new(before));
        let sampling = {
            let peak = peak.clone();
            let pid = relay.child.id();
            tokio::spawn(async move {
                loop {
                    let rss = rss_of(pid);
                    {
                        let mut peak = peak.lock().unwrap();
                        *peak = peak.max(rss);
                    }
                    sleep(SAMPLE_EVERY).await;
                }
            })
        };
        let probes = Arc::new((AtomicU64::new(0), AtomicU64::new(0)));
        let probing = {
            let probes = probes.clone();
            let addr = relay.addr;
            honest_runtime.spawn(async move {
                loop {
                    sleep(Duration::from_secs(1)).await;
                    let ok = healthz_at(addr).await;
                    probes.0.fetch_add(1, Ordering::Relaxed);
                    if ok {
                        probes.1.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        };
        let (cpu_before, attack_start) = (cpu_seconds(relay.child.id()), Instant::now());
        let what = attack(name, relay.addr, attack_end).await;
        let cpu_per_second =
            (cpu_seconds(relay.child.id()) - cpu_before) / attack_start.elapsed().as_secs_f64();
        probing.abort();
        let attack_done = Instant::now();
        let recover_deadline = attack_done + Duration::from_secs_f64(args.recover_seconds);
        let mut recovered = None;
        while Instant::now() < recover_deadline {
            if relay.rss_mib() < 2.0 * idle {
                recovered = Some(attack_done.elapsed());
                break;
            }
            sleep(SAMPLE_EVERY).await;
        }
        // In-flight honest messages arrive.
        sleep(Duration::from_secs(1)).await;
        sampling.abort();
        let after = relay.rss_mib();
        let (sent1, received1, lost1, dup1, drops1) = snapshot(&stats);
        let after_counters = counters(&relay.metrics().await);
        let health = format!(
            "{} of {} ok",
            probes.1.load(Ordering::Relaxed),
            probes.0.load(Ordering::Relaxed)
        );
        println!(
            "| {name} | {what} | {cpu_per_second:.2} | {before:.1} | {:.1} | {after:.1} | {} | {} | {} / {} | {} | {} | {} | {} |",
            *peak.lock().unwrap(),
            recovered.map_or(format!("no, not within {} s", args.recover_seconds), |took| format!("yes, {:.1} s", took.as_secs_f64())),
            health,
            sent1 - sent0,
            received1 - received0,
            lost1 - lost0,
            dup1 - dup0,
            drops1 - drops0,
            counter_changes(&before_counters, &after_counters),
        );
    }
    stop.store(true, Ordering::Relaxed);
    for peer in peers {
        let _ = timeout(Duration::from_secs(2), peer).await;
    }
    honest_runtime.shutdown_background();
    println!();
}

fn snapshot(stats: &Honest) -> (u64, u64, u64, u64, u64) {
    (
        stats.sent.load(Ordering::Relaxed),
        stats.received.load(Ordering::Relaxed),
        stats.lost.load(Ordering::Relaxed),
        stats.duplicated_or_reordered.load(Ordering::Relaxed),
        stats.disconnects.load(Ordering::Relaxed),
    )
}

/// CPU time (user + system) the process has used, in seconds, from /proc/PID/stat.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may hold spaces) start after the last ')'.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or(Vec::new(), |(_, rest)| rest.split_whitespace().collect());
    let ticks = |index: usize| {
        fields
            .get(index)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the command name.
    // SAFETY: sysconf only reads a system constant.
    let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    (ticks(11) + ticks(12)) / per_second.max(1.0)
}

fn rss_of(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|kib| kib.parse::<f64>().ok())
        .unwrap_or(0.0)
        / 1024.0
}

async fn healthz_at(addr: SocketAddr) -> bool {
    let exchange = async {
        let mut stream = TcpStream::connect(addr).await.ok()?;
        stream
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await
            .ok()?;
        let mut body = String::new();
        stream.read_to_string(&mut body).await.ok()?;
        Some(body.starts_with("HTTP/1.1 200"))
    };
    timeout(Duration::from_secs(2), exchange)
        .await
        .ok()
        .flatten()
        .unwrap_or(false)
}
