//! Load benchmark for the relay, with two baselines in the same run.
//!
//! Starts each server as a child process on 127.0.0.1 (the relay; with `--fleet`, two relays
//! joined by a `nats-server`, each room's peers split between them; a minimal Node `ws` broadcast
//! server; a minimal tokio-tungstenite forwarder), drives it with WebSocket clients in rooms
//! sending at a set rate, and prints Markdown tables: deliveries per second, send-to-receive
//! latency (p50, p99, max), the server's CPU (from /proc/<pid>/stat) and memory (VmRSS from
//! /proc/<pid>/status), then how many idle connections each server holds and what each costs.
//! Every phase has a deadline; the tool stops by itself and touches nothing but 127.0.0.1.
//!
//! ```text
//! cargo build --release -p relay --bin relay --example raw_forwarder --example load
//! (cd bench/relay-load && npm install)
//! ulimit -n 20000
//! $CARGO_TARGET_DIR/release/examples/load \
//!     --relay-bin $CARGO_TARGET_DIR/release/relay \
//!     --raw-bin $CARGO_TARGET_DIR/release/examples/raw_forwarder \
//!     --node-script bench/relay-load/ws-baseline.js
//! ```

use clap::Parser;
use futures_util::{SinkExt, StreamExt};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::time::{sleep, sleep_until, timeout};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;

/// The machine counts as quiet below this share of busy CPU.
const QUIET_BUSY: f64 = 0.15;
/// Longest wait for a quiet machine before measuring anyway (the row says so).
const QUIET_DEADLINE: Duration = Duration::from_secs(20);
/// Clients connecting at once: enough to set up 10,000 connections in seconds without
/// overflowing the listen backlog.
const CONNECT_CONCURRENCY: usize = 256;
/// Time the server gets to start listening.
const START_DEADLINE: Duration = Duration::from_secs(15);
/// Time for every client of a scenario to connect (and, on the relay, be welcomed).
const CONNECT_DEADLINE: Duration = Duration::from_secs(60);
/// After everyone joined, before sending: presence frames settle.
const SETTLE: Duration = Duration::from_millis(500);
/// Sending before the measured window, so connections and caches are warm.
const WARMUP: Duration = Duration::from_secs(1);
/// After the window, time for messages in flight to arrive before counting losses.
const DRAIN: Duration = Duration::from_secs(2);

#[derive(Parser, Debug)]
#[command(
    about = "Load benchmark: the relay against a Node ws server and a raw tokio-tungstenite forwarder"
)]
struct Args {
    /// The relay binary (build it with --release).
    #[arg(long)]
    relay_bin: PathBuf,
    /// An earlier build of the relay to measure side by side with `--relay-bin` (before and
    /// after a change); omit to skip it.
    #[arg(long)]
    relay_before_bin: Option<PathBuf>,
    /// The raw_forwarder example binary; omit to skip that baseline.
    #[arg(long)]
    raw_bin: Option<PathBuf>,
    /// bench/relay-load/ws-baseline.js; omit to skip the Node baseline.
    #[arg(long)]
    node_script: Option<PathBuf>,
    /// The node executable.
    #[arg(long, default_value = "node")]
    node: String,
    /// Also measure a fleet: two relays joined by a NATS broker, each room's peers alternating
    /// between them (so every other delivery crosses the broker). Its CPU is all three processes.
    #[arg(long)]
    fleet: bool,
    /// The nats-server executable for `--fleet`.
    #[arg(long, default_value = "nats-server")]
    nats_server: String,
    /// Seconds measured per traffic run (after a 1 s warm-up).
    #[arg(long, default_value_t = 5.0)]
    seconds: f64,
    /// Runs of each traffic scenario per server; the summary takes the median.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Size of each message's payload in bytes (a transaction gossip is a few hundred).
    #[arg(long, default_value_t = 256)]
    payload_bytes: usize,
    /// Connections in the idle scenario (0 skips it).
    #[arg(long, default_value_t = 10_000)]
    idle_connections: usize,
    /// Peers per room in the idle scenario.
    #[arg(long, default_value_t = 100)]
    idle_room_size: usize,
    /// Seconds the idle connections are held before they are counted again.
    #[arg(long, default_value_t = 5.0)]
    idle_hold_seconds: f64,
    /// Traffic scenarios as ROOMSxPEERS@RATE (peers per room, messages per second per peer).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "1x100@10,1x100@30,100x10@10"
    )]
    scenarios: Vec<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// Our relay: the envelope, welcome frames, rules.
    Relay,
    /// An earlier build of our relay, the same protocol.
    RelayBefore,
    /// Node ws baseline: raw text in, the same text out.
    Node,
    /// tokio-tungstenite baseline: raw text in, the same text out.
    Raw,
    /// Two relays and a NATS broker.
    Fleet,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Relay => "relay",
            Kind::RelayBefore => "relay (before)",
            Kind::Node => "node ws",
            Kind::Raw => "raw forwarder",
            Kind::Fleet => "2 relays + NATS",
        }
    }
    fn path(self, room: &str) -> String {
        match self {
            Kind::Relay | Kind::RelayBefore | Kind::Fleet => format!("/ws/{room}"),
            Kind::Node | Kind::Raw => format!("/{room}"),
        }
    }
    /// One relay process (not the fleet).
    fn is_relay(self) -> bool {
        matches!(self, Kind::Relay | Kind::RelayBefore)
    }
}

struct Server {
    kind: Kind,
    /// Every process of the server (a fleet has three); the broker, if any, is last.
    children: Vec<Child>,
    /// Where clients connect; client `i` takes `addrs[i % addrs.len()]`.
    addrs: Vec<SocketAddr>,
}

/// Largest broker message for the fleet: a maximum relay frame plus its envelope.
const FLEET_BROKER_MAX_PAYLOAD: usize = 2 * 1024 * 1024;

impl Server {
    async fn start(kind: Kind, args: &Args) -> Server {
        if kind == Kind::Fleet {
            return Server::start_fleet(args).await;
        }
        let (child, addr) = Server::spawn(kind, args, &[]).await;
        Server {
            kind,
            children: vec![child],
            addrs: vec![addr],
        }
    }

    async fn start_fleet(args: &Args) -> Server {
        let nats_port = free_port();
        let config = std::env::temp_dir().join(format!("tabchain-load-nats-{nats_port}.conf"));
        std::fs::write(
            &config,
            format!("max_payload: {FLEET_BROKER_MAX_PAYLOAD}\n"),
        )
        .expect("write the broker's config");
        let broker = Command::new(&args.nats_server)
            .arg("-c")
            .arg(&config)
            .args(["-a", "127.0.0.1", "-p", &nats_port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|error| panic!("cannot start {}: {error}", args.nats_server));
        let broker_addr = SocketAddr::from(([127, 0, 0, 1], nats_port));
        wait_listening(broker_addr, "nats-server").await;
        let url = format!("nats://{broker_addr}");
        let (a, a_addr) = Server::spawn(Kind::Relay, args, &["--nats-url", &url]).await;
        let (b, b_addr) = Server::spawn(Kind::Relay, args, &["--nats-url", &url]).await;
        Server {
            kind: Kind::Fleet,
            children: vec![a, b, broker],
            addrs: vec![a_addr, b_addr],
        }
    }

    async fn spawn(kind: Kind, args: &Args, extra: &[&str]) -> (Child, SocketAddr) {
        let port = free_port();
        let mut command = match kind {
            Kind::Relay | Kind::RelayBefore | Kind::Fleet => {
                let binary = match kind {
                    Kind::RelayBefore => {
                        args.relay_before_bin.as_ref().expect("relay before binary")
                    }
                    _ => &args.relay_bin,
                };
                let mut command = Command::new(binary);
                command
                    .args(["--port", &port.to_string()])
                    .args(["--static-dir", "/nonexistent"])
                    // Every socket counts against the cap: room for the tool's /metrics calls.
                    .args(["--max-connections", "20000"])
                    .args(extra)
                    .env("RUST_LOG", "warn");
                // Every client of the tool comes from 127.0.0.1: lift the per-address limits.
                // Through the environment, which an earlier build without them ignores.
                for (variable, value) in [
                    ("MAX_CONNECTIONS_PER_ADDRESS", "100000"),
                    ("JOIN_RATE_PER_ADDRESS", "1000000"),
                    ("JOIN_BURST_PER_ADDRESS", "1000000"),
                    ("JOIN_RATE_PER_ROOM", "1000000"),
                    ("JOIN_BURST_PER_ROOM", "1000000"),
                ] {
                    command.env(variable, value);
                }
                command
            }
            Kind::Node => {
                let mut command = Command::new(&args.node);
                command
                    .arg(args.node_script.as_ref().expect("node script"))
                    .arg(port.to_string());
                command
            }
            Kind::Raw => {
                let mut command = Command::new(args.raw_bin.as_ref().expect("raw binary"));
                command.arg(port.to_string());
                command
            }
        };
        let child = command
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|error| panic!("cannot start {}: {error}", kind.name()));
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        wait_listening(addr, kind.name()).await;
        (child, addr)
    }

    fn pids(&self) -> Vec<String> {
        self.children
            .iter()
            .map(|child| child.id().to_string())
            .collect()
    }

    fn stop(mut self) {
        // Relays first, so they leave the broker before it goes.
        for child in &mut self.children {
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

async fn wait_listening(addr: SocketAddr, name: &str) {
    let deadline = Instant::now() + START_DEADLINE;
    while tokio::net::TcpStream::connect(addr).await.is_err() {
        assert!(Instant::now() < deadline, "{name} did not start");
        sleep(Duration::from_millis(50)).await;
    }
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    listener.local_addr().unwrap().port()
}

/// CPU time (user + system) of a process in seconds, from /proc/<pid>/stat.
fn cpu_seconds(pid: &str) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may contain spaces) start at ") ".
    let after = stat.rsplit_once(") ").map(|(_, rest)| rest).unwrap_or("");
    let fields: Vec<&str> = after.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line, 12 and 13 after the name.
    let ticks: f64 = [11, 12]
        .iter()
        .filter_map(|index| fields.get(*index)?.parse::<f64>().ok())
        .sum();
    ticks / clock_ticks_per_second()
}

fn clock_ticks_per_second() -> f64 {
    static TICKS: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *TICKS.get_or_init(|| {
        Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|output| String::from_utf8(output.stdout).ok())
            .and_then(|text| text.trim().parse().ok())
            .unwrap_or(100.0)
    })
}

/// (busy, total) CPU time of the whole machine in clock ticks, from /proc/stat: the kernel's
/// network work for loopback traffic shows up here and in no process.
fn machine_cpu_ticks() -> (f64, f64) {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let values: Vec<f64> = stat
        .lines()
        .next()
        .unwrap_or("")
        .split_whitespace()
        .skip(1)
        .filter_map(|value| value.parse().ok())
        .collect();
    let total: f64 = values.iter().take(8).sum();
    // idle and iowait are the fourth and fifth columns.
    let idle = values.get(3).copied().unwrap_or(0.0) + values.get(4).copied().unwrap_or(0.0);
    (total - idle, total)
}

/// A field of /proc/<pid>/status in KiB (VmRSS, VmHWM).
fn status_kib(pid: &str, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find(|line| line.starts_with(field))
        .and_then(|line| line.split_whitespace().nth(1))
        .and_then(|value| value.parse().ok())
        .unwrap_or(0)
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Nanoseconds since the tool started: the send time inside each payload.
fn now_ns(origin: Instant) -> u64 {
    origin.elapsed().as_nanos() as u64
}

/// The send time from a delivered frame: the number after `"t":`.
fn sent_at(text: &str) -> Option<u64> {
    let start = text.find(r#""t":"#)? + 4;
    let digits = &text[start..];
    let end = digits
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(digits.len());
    digits[..end].parse().ok()
}

struct Scenario {
    rooms: usize,
    peers_per_room: usize,
    rate: f64,
}

impl Scenario {
    fn parse(text: &str) -> Scenario {
        let (shape, rate) = text.split_once('@').expect("ROOMSxPEERS@RATE");
        let (rooms, peers) = shape.split_once('x').expect("ROOMSxPEERS@RATE");
        Scenario {
            rooms: rooms.parse().expect("rooms"),
            peers_per_room: peers.parse().expect("peers per room"),
            rate: rate.parse().expect("rate"),
        }
    }
    fn describe(&self) -> String {
        format!(
            "{} room(s) x {} peers, each sending {} msg/s",
            self.rooms, self.peers_per_room, self.rate
        )
    }
    fn offered_deliveries_per_second(&self) -> f64 {
        (self.rooms * self.peers_per_room) as f64 * self.rate * (self.peers_per_room - 1) as f64
    }
}

struct TrafficResult {
    delivered_per_second: f64,
    loss: f64,
    p50_ms: f64,
    p99_ms: f64,
    max_ms: f64,
    server_cores: f64,
    cpu_us_per_delivery: f64,
    rss_mib: f64,
    tool_cores: f64,
    /// Cores busy with neither the server nor the tool: the kernel's loopback work and
    /// whatever else runs on the machine.
    other_cores: f64,
    disconnected: usize,
}

async fn run_traffic(kind: Kind, args: &Args, scenario: &Scenario) -> TrafficResult {
    let server = Server::start(kind, args).await;
    let origin = Instant::now();
    let peers = scenario.rooms * scenario.peers_per_room;
    let semaphore = Arc::new(tokio::sync::Semaphore::new(CONNECT_CONCURRENCY));
    let mut sockets = Vec::with_capacity(peers);
    {
        let mut pending = Vec::with_capacity(peers);
        for index in 0..peers {
            let room = format!("load-{}", index % scenario.rooms);
            let permit = semaphore.clone().acquire_owned().await.unwrap();
            let target = ServerRef {
                kind: server.kind,
                addr: server.addrs[index % server.addrs.len()],
            };
            pending.push(tokio::spawn(async move {
                let ws = target.connect(&room).await;
                drop(permit);
                (index, ws)
            }));
        }
        for handle in pending {
            sockets.push(handle.await.expect("connect task"));
        }
    }
    sleep(SETTLE).await;

    let window = Duration::from_secs_f64(args.seconds);
    let send_start = Instant::now();
    let window_start = send_start + WARMUP;
    let window_end = window_start + window;
    let window_start_ns = (window_start - origin).as_nanos() as u64;
    let window_end_ns = (window_end - origin).as_nanos() as u64;
    let delivered = Arc::new(AtomicU64::new(0));
    let sent_in_window = Arc::new(AtomicU64::new(0));
    let disconnected = Arc::new(AtomicUsize::new(0));
    let latencies = Arc::new(Mutex::new(Vec::<u32>::new()));
    let pad = "x".repeat(args.payload_bytes.saturating_sub(40));
    let period = Duration::from_secs_f64(1.0 / scenario.rate);
    let stop_receiving = window_end + DRAIN;

    let mut tasks = Vec::new();
    for (index, ws) in sockets {
        let (mut sink, mut stream) = ws.split();
        let (delivered, disconnected, latencies) =
            (delivered.clone(), disconnected.clone(), latencies.clone());
        tasks.push(tokio::spawn(async move {
            let mut local = Vec::new();
            let deadline = tokio::time::Instant::from_std(stop_receiving);
            loop {
                tokio::select! {
                    message = stream.next() => match message {
                        Some(Ok(Message::Text(text))) => {
                            let now = now_ns(origin);
                            if let Some(sent) = sent_at(&text) {
                                if (window_start_ns..window_end_ns).contains(&sent) {
                                    local.push(((now - sent) / 1_000).min(u64::from(u32::MAX)) as u32);
                                }
                            }
                        }
                        Some(Ok(_)) => {}
                        Some(Err(_)) | None => {
                            disconnected.fetch_add(1, Ordering::Relaxed);
                            break;
                        }
                    },
                    () = sleep_until(deadline) => break,
                }
            }
            delivered.fetch_add(local.len() as u64, Ordering::Relaxed);
            latencies.lock().unwrap().extend(local);
        }));
        let (sent_in_window, pad) = (sent_in_window.clone(), pad.clone());
        let kind = server.kind;
        tasks.push(tokio::spawn(async move {
            // Spread the peers' sends over the period so they do not all fire at once.
            let phase = period.mul_f64((index as f64 * 0.618_034) % 1.0);
            let mut ticks = tokio::time::interval_at(
                tokio::time::Instant::from_std(send_start + phase),
                period,
            );
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
            loop {
                let tick = ticks.tick().await.into_std();
                if tick >= window_end {
                    break;
                }
                let sent = now_ns(origin);
                let payload = format!(r#"{{"t":{sent},"c":{index},"pad":"{pad}"}}"#);
                let text = match kind {
                    Kind::Relay | Kind::RelayBefore | Kind::Fleet => {
                        format!(r#"{{"type":"broadcast","payload":{payload}}}"#)
                    }
                    Kind::Node | Kind::Raw => payload,
                };
                if sink.send(Message::text(text)).await.is_err() {
                    break;
                }
                if (window_start_ns..window_end_ns).contains(&sent) {
                    sent_in_window.fetch_add(1, Ordering::Relaxed);
                }
            }
            // Keep the socket open until the receivers are done.
            sleep_until(tokio::time::Instant::from_std(stop_receiving)).await;
            drop(sink);
        }));
    }

    let pids = server.pids();
    let server_cpu = || pids.iter().map(|pid| cpu_seconds(pid)).sum::<f64>();
    sleep_until(tokio::time::Instant::from_std(window_start)).await;
    let (server_cpu_start, tool_cpu_start) = (server_cpu(), cpu_seconds("self"));
    let machine_start = machine_cpu_ticks();
    sleep_until(tokio::time::Instant::from_std(window_end)).await;
    let (server_cpu_end, tool_cpu_end) = (server_cpu(), cpu_seconds("self"));
    let machine_end = machine_cpu_ticks();
    let rss_kib: u64 = pids.iter().map(|pid| status_kib(pid, "VmRSS:")).sum();
    for task in tasks {
        let _ = timeout(DRAIN + Duration::from_secs(10), task).await;
    }
    server.stop();

    let mut latencies = std::mem::take(&mut *latencies.lock().unwrap());
    latencies.sort_unstable();
    let quantile = |q: f64| -> f64 {
        if latencies.is_empty() {
            return f64::NAN;
        }
        let index = ((latencies.len() - 1) as f64 * q).round() as usize;
        f64::from(latencies[index]) / 1_000.0
    };
    let delivered = delivered.load(Ordering::Relaxed);
    let expected = sent_in_window.load(Ordering::Relaxed) * (scenario.peers_per_room as u64 - 1);
    let server_cpu = server_cpu_end - server_cpu_start;
    TrafficResult {
        delivered_per_second: delivered as f64 / window.as_secs_f64(),
        loss: if expected == 0 {
            0.0
        } else {
            1.0 - delivered as f64 / expected as f64
        },
        p50_ms: quantile(0.50),
        p99_ms: quantile(0.99),
        max_ms: quantile(1.0),
        server_cores: server_cpu / window.as_secs_f64(),
        cpu_us_per_delivery: server_cpu * 1e6 / delivered.max(1) as f64,
        rss_mib: rss_kib as f64 / 1024.0,
        tool_cores: (tool_cpu_end - tool_cpu_start) / window.as_secs_f64(),
        other_cores: (machine_end.0 - machine_start.0)
            / clock_ticks_per_second()
            / window.as_secs_f64()
            - (server_cpu_end - server_cpu_start + tool_cpu_end - tool_cpu_start)
                / window.as_secs_f64(),
        disconnected: disconnected.load(Ordering::Relaxed),
    }
}

/// What a connecting task needs of a server (the child process stays with the caller).
#[derive(Clone, Copy)]
struct ServerRef {
    kind: Kind,
    addr: SocketAddr,
}

impl ServerRef {
    /// Connects to `room`; on the relay, also reads the welcome.
    async fn connect(&self, room: &str) -> Ws {
        let url = format!("ws://{}{}", self.addr, self.kind.path(room));
        // Small client buffers, as in the relay, so 10,000 clients fit in the load tool too.
        let config = WebSocketConfig::default().read_buffer_size(4096);
        let (mut ws, _) = timeout(
            CONNECT_DEADLINE,
            tokio_tungstenite::connect_async_with_config(url, Some(config), true),
        )
        .await
        .expect("connect timed out")
        .expect("connect failed");
        if self.kind.is_relay() || self.kind == Kind::Fleet {
            let welcome = timeout(CONNECT_DEADLINE, ws.next())
                .await
                .expect("no welcome in time");
            match welcome {
                Some(Ok(Message::Text(text))) if text.contains(r#""type":"welcome""#) => {}
                other => panic!("expected a welcome, got {other:?}"),
            }
        }
        ws
    }
}

struct IdleResult {
    connected: usize,
    held: usize,
    rss_before_mib: f64,
    rss_after_mib: f64,
    kib_per_connection: f64,
    server_reported: Option<u64>,
}

async fn run_idle(kind: Kind, args: &Args) -> IdleResult {
    let server = Server::start(kind, args).await;
    let pid = server.pids().swap_remove(0);
    sleep(SETTLE).await;
    let rss_before = status_kib(&pid, "VmRSS:");
    let count = args.idle_connections;
    let open = Arc::new(AtomicUsize::new(0));
    let failed = Arc::new(AtomicBool::new(false));
    let semaphore = Arc::new(tokio::sync::Semaphore::new(CONNECT_CONCURRENCY));
    let mut tasks = Vec::with_capacity(count);
    let target = ServerRef {
        kind: server.kind,
        addr: server.addrs[0],
    };
    let hold_until = Instant::now()
        + CONNECT_DEADLINE
        + Duration::from_secs_f64(args.idle_hold_seconds)
        + Duration::from_secs(10);
    let room_size = args.idle_room_size.max(1);
    for index in 0..count {
        let permit = semaphore.clone().acquire_owned().await.unwrap();
        let (open, failed) = (open.clone(), failed.clone());
        tasks.push(tokio::spawn(async move {
            let room = format!("idle-{}", index / room_size);
            let url_connect = timeout(CONNECT_DEADLINE, target.connect(&room));
            let Ok(mut ws) = url_connect.await else {
                failed.store(true, Ordering::Relaxed);
                return;
            };
            drop(permit);
            open.fetch_add(1, Ordering::Relaxed);
            // Read (presence frames, pings) until the end of the run or the connection's end.
            let deadline = tokio::time::Instant::from_std(hold_until);
            loop {
                tokio::select! {
                    message = ws.next() => match message {
                        Some(Ok(_)) => {}
                        _ => break,
                    },
                    () = sleep_until(deadline) => break,
                }
            }
            open.fetch_sub(1, Ordering::Relaxed);
        }));
    }
    // Wait until every client is connected (or the deadline passes).
    let deadline = Instant::now() + CONNECT_DEADLINE;
    while open.load(Ordering::Relaxed) < count && Instant::now() < deadline {
        if failed.load(Ordering::Relaxed) {
            break;
        }
        sleep(Duration::from_millis(100)).await;
    }
    let connected = open.load(Ordering::Relaxed);
    sleep(Duration::from_secs_f64(args.idle_hold_seconds)).await;
    let held = open.load(Ordering::Relaxed);
    let rss_after = status_kib(&pid, "VmRSS:");
    let server_reported = if kind.is_relay() {
        metric(server.addrs[0], "relay_connections").await
    } else {
        None
    };
    for task in &tasks {
        task.abort();
    }
    for task in tasks {
        let _ = task.await;
    }
    server.stop();
    IdleResult {
        connected,
        held,
        rss_before_mib: rss_before as f64 / 1024.0,
        rss_after_mib: rss_after as f64 / 1024.0,
        kib_per_connection: rss_after.saturating_sub(rss_before) as f64 / held.max(1) as f64,
        server_reported,
    }
}

/// One series from the relay's /metrics.
async fn metric(addr: SocketAddr, series: &str) -> Option<u64> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect(addr).await.ok()?;
        stream
            .write_all(b"GET /metrics HTTP/1.1\r\nHost: relay\r\nConnection: close\r\n\r\n")
            .await
            .ok()?;
        let mut body = String::new();
        stream.read_to_string(&mut body).await.ok()?;
        body.lines().find_map(|line| {
            let (name, value) = line.rsplit_once(' ')?;
            (name == series).then(|| value.parse().ok())?
        })
    };
    timeout(Duration::from_secs(10), exchange).await.ok()?
}

fn median(mut values: Vec<f64>) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    values.sort_by(f64::total_cmp);
    let middle = values.len() / 2;
    if values.len().is_multiple_of(2) {
        (values[middle - 1] + values[middle]) / 2.0
    } else {
        values[middle]
    }
}

/// Waits (up to [`QUIET_DEADLINE`]) until the machine is mostly idle before a measurement, so
/// other work on a shared machine disturbs fewer runs. Says whether it got quiet.
async fn wait_for_quiet() -> bool {
    let deadline = Instant::now() + QUIET_DEADLINE;
    loop {
        let start = machine_cpu_ticks();
        sleep(Duration::from_millis(500)).await;
        let end = machine_cpu_ticks();
        let busy = (end.0 - start.0) / (end.1 - start.1).max(1.0);
        if busy <= QUIET_BUSY {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
    }
}

fn ratio(ours: f64, theirs: f64) -> String {
    if ours.is_finite() && theirs.is_finite() && theirs > 0.0 {
        format!("{:.2}x", ours / theirs)
    } else {
        "n/a".to_owned()
    }
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let mut kinds = vec![Kind::Relay];
    if args.relay_before_bin.is_some() {
        kinds.push(Kind::RelayBefore);
    }
    if args.fleet {
        kinds.push(Kind::Fleet);
    }
    if args.node_script.is_some() {
        kinds.push(Kind::Node);
    }
    if args.raw_bin.is_some() {
        kinds.push(Kind::Raw);
    }
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!("## Relay load benchmark\n");
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "Load average before the run: {} (other work on the machine competes for the cores).\n",
        load.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    );
    println!(
        "{cores} CPU cores shared by the server and this load tool; payload {} bytes; {} s measured per run after {} s warm-up. Latency is send to receive, measured inside the tool. Before each run the tool waits up to {} s for the machine to be under {:.0}% busy (\"quiet before\"); \"other CPU\" is what neither the server nor the tool used (the kernel's loopback work, other programs).\n",
        args.payload_bytes,
        args.seconds,
        WARMUP.as_secs(),
        QUIET_DEADLINE.as_secs(),
        QUIET_BUSY * 100.0
    );

    for text in args.scenarios.iter().filter(|text| !text.is_empty()) {
        let scenario = Scenario::parse(text);
        println!("### {}\n", scenario.describe());
        println!(
            "Offered: {:.0} deliveries/s. {} rounds; the servers take turns within each round.\n",
            scenario.offered_deliveries_per_second(),
            args.rounds
        );
        println!("| round | server | deliveries/s | lost | p50 ms | p99 ms | max ms | server CPU (cores) | CPU µs/delivery | server RSS MiB | tool CPU (cores) | other CPU (cores) | quiet before | disconnected |");
        println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|");
        let mut results: Vec<(Kind, Vec<TrafficResult>)> =
            kinds.iter().map(|kind| (*kind, Vec::new())).collect();
        for round in 0..args.rounds {
            // Rotate who goes first, so a disturbance does not always hit the same server.
            for offset in 0..kinds.len() {
                let slot = (round + offset) % kinds.len();
                let kind = kinds[slot];
                let quiet = wait_for_quiet().await;
                let result = run_traffic(kind, &args, &scenario).await;
                println!(
                    "| {} | {} | {:.0} | {:.2}% | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {:.1} | {:.2} | {:.2} | {} | {} |",
                    round + 1,
                    kind.name(),
                    result.delivered_per_second,
                    result.loss * 100.0,
                    result.p50_ms,
                    result.p99_ms,
                    result.max_ms,
                    result.server_cores,
                    result.cpu_us_per_delivery,
                    result.rss_mib,
                    result.tool_cores,
                    result.other_cores,
                    if quiet { "yes" } else { "no" },
                    result.disconnected,
                );
                results[slot].1.push(result);
            }
        }
        println!("\nMedians over the rounds:\n");
        println!(
            "| server | deliveries/s | lost | p50 ms | p99 ms | CPU µs/delivery | server RSS MiB |"
        );
        println!("|---|---|---|---|---|---|---|");
        let medians: Vec<(Kind, [f64; 6])> = results
            .iter()
            .map(|(kind, rounds)| {
                let median_of =
                    |value: fn(&TrafficResult) -> f64| median(rounds.iter().map(value).collect());
                (
                    *kind,
                    [
                        median_of(|r| r.delivered_per_second),
                        median_of(|r| r.loss),
                        median_of(|r| r.p50_ms),
                        median_of(|r| r.p99_ms),
                        median_of(|r| r.cpu_us_per_delivery),
                        median_of(|r| r.rss_mib),
                    ],
                )
            })
            .collect();
        for (kind, [delivered, loss, p50, p99, cpu, rss]) in &medians {
            println!(
                "| {} | {delivered:.0} | {:.2}% | {p50:.2} | {p99:.2} | {cpu:.2} | {rss:.1} |",
                kind.name(),
                loss * 100.0
            );
        }
        let ours = medians[0].1;
        for (kind, theirs) in &medians[1..] {
            println!(
                "\nrelay / {}: p99 latency {}, p50 latency {}, CPU per delivery {}, deliveries/s {}",
                kind.name(),
                ratio(ours[3], theirs[3]),
                ratio(ours[2], theirs[2]),
                ratio(ours[4], theirs[4]),
                ratio(ours[0], theirs[0]),
            );
        }
        println!();
    }

    if args.idle_connections > 0 {
        println!(
            "### {} idle connections (rooms of {}), held {} s\n",
            args.idle_connections, args.idle_room_size, args.idle_hold_seconds
        );
        println!("| server | connected | still open after hold | server says | RSS before MiB | RSS after MiB | KiB per connection |");
        println!("|---|---|---|---|---|---|---|");
        let mut results = Vec::new();
        // The fleet is measured for traffic only: an idle connection costs what it does on one relay.
        for kind in kinds.iter().filter(|kind| **kind != Kind::Fleet) {
            wait_for_quiet().await;
            let result = run_idle(*kind, &args).await;
            println!(
                "| {} | {} | {} | {} | {:.1} | {:.1} | {:.1} |",
                kind.name(),
                result.connected,
                result.held,
                result
                    .server_reported
                    .map_or("-".to_owned(), |count| count.to_string()),
                result.rss_before_mib,
                result.rss_after_mib,
                result.kib_per_connection,
            );
            results.push((*kind, result));
        }
        let ours = &results[0].1;
        for (kind, theirs) in &results[1..] {
            println!(
                "\nrelay vs {}: memory per idle connection {}",
                kind.name(),
                ratio(ours.kib_per_connection, theirs.kib_per_connection),
            );
        }
        println!();
    }
}
