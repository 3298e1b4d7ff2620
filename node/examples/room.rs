//! A room of many native nodes through a real relay process, as a class behind one school
//! address uses it (issue 30). For each room size it prints one Markdown row:
//! relay frames and bytes out per block per member while one node mines, how long a block took
//! to reach the others (p50/p99), what a late joiner cost the relay (bytes, per block of
//! chain) and how long it took to sync, the relay's CPU time, and whether every node ended on
//! one tip.
//!
//! Run: `bash bench/room.sh` (builds the relay and this example in release; extra arguments are
//! passed on), or by hand:
//! `cargo build --release -p relay && cargo run --release -p node --example room -- --nodes 60,128,256`.
//! Options: `--blocks 20` blocks mined a second apart, `--chain 500` blocks every member holds
//! at the start (so a late joiner has a chain to download), `--joiners 5` late joiners, one at
//! a time, `--relay PATH` the relay binary (default `target/release/relay`).
//!
//! The relay runs with its default limits (as deployed) and every node connects from
//! 127.0.0.1, one address, as pupils behind a school's NAT do. The nodes share this process and
//! its two-core machine; their data directories are on tmpfs when there is one, so what is
//! measured is the room's traffic rather than 256 fsyncs per block on one disk. The nodes run on
//! the test network (blocks found in microseconds), so the pace is the one the benchmark sets.

#[path = "../tests/common/testkit.rs"]
mod testkit;

use futures_util::future::join_all;
use node::runtime::{NodeHandle, NodeOptions, RuntimeEvent, Snapshot};
use shared::node::NodeEvent;
use shared::view::PeerState;
use shared::{Address, Block, Hash, NetworkParams};
use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Waits in this benchmark end with a panic after this long (a room that does not converge is
/// a failure to report, not a number).
const WAIT: Duration = Duration::from_secs(300);

fn arg(name: &str, default: &str) -> String {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|at| args.get(at + 1))
        .cloned()
        .unwrap_or_else(|| default.to_owned())
}

/// The relay binary as a child process on a free loopback port, killed when dropped.
struct RelayProcess {
    child: Child,
    port: u16,
}

impl RelayProcess {
    fn start(bin: &Path) -> RelayProcess {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("a free port")
            .port();
        let child = Command::new(bin)
            .args(["--port", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|error| {
                panic!(
                    "cannot start the relay at {} ({error}): run `cargo build --release -p relay`",
                    bin.display()
                )
            });
        let relay = RelayProcess { child, port };
        let started = Instant::now();
        while relay.get("/healthz").is_none() {
            assert!(
                started.elapsed() < WAIT,
                "the relay never answered /healthz"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        relay
    }

    fn get(&self, path: &str) -> Option<String> {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).ok()?;
        let request =
            format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).ok()?;
        let mut response = String::new();
        stream.read_to_string(&mut response).ok()?;
        response.starts_with("HTTP/1.1 200").then_some(response)
    }

    /// One unlabelled series of `/metrics`.
    fn metric(&self, series: &str) -> u64 {
        let body = self.get("/metrics").expect("the relay answers /metrics");
        body.lines()
            .find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or_else(|| panic!("no series {series} in /metrics"))
    }

    /// Frames and bytes the relay has sent so far.
    fn sent(&self) -> (u64, u64) {
        (
            self.metric("relay_messages_out_total"),
            self.metric("relay_bytes_out_total"),
        )
    }

    /// Waits until the relay has sent nothing for a second: what joining set off is over.
    async fn quiet(&self) {
        let started = Instant::now();
        let mut last = self.sent();
        let mut still_since = Instant::now();
        while still_since.elapsed() < Duration::from_secs(1) {
            assert!(started.elapsed() < WAIT, "the room never went quiet");
            tokio::time::sleep(Duration::from_millis(100)).await;
            let now = self.sent();
            if now != last {
                (last, still_since) = (now, Instant::now());
            }
        }
    }

    /// User plus system CPU time of the relay process so far, from /proc.
    fn cpu_seconds(&self) -> f64 {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.child.id()))
            .expect("/proc/<pid>/stat of the relay");
        // Fields after the command name (which is in parentheses and may hold spaces):
        // utime and stime are the 12th and 13th, in clock ticks of 1/100 s on Linux.
        let after_name = &stat[stat.rfind(')').expect("a stat line") + 2..];
        let fields: Vec<&str> = after_name.split(' ').collect();
        let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
        ticks as f64 / 100.0
    }

    fn url(&self, room: &str) -> String {
        format!("ws://127.0.0.1:{}/ws/{room}", self.port)
    }
}

impl Drop for RelayProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits until `condition` holds on the snapshots of every node at once.
async fn wait_all(nodes: &[NodeHandle], what: &str, condition: impl Fn(&[Arc<Snapshot>]) -> bool) {
    let started = Instant::now();
    loop {
        let snapshots: Vec<Arc<Snapshot>> = nodes.iter().map(NodeHandle::snapshot).collect();
        if condition(&snapshots) {
            return;
        }
        if started.elapsed() > WAIT {
            let heights: Vec<u64> = snapshots.iter().map(|s| s.height).collect();
            panic!("timed out after {WAIT:?} waiting for {what}; heights {heights:?}");
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Joins the room, retrying while the relay refuses with a `Retry-After` (a school's burst).
async fn join(node: &NodeHandle, url: &str) -> u32 {
    let mut refusals = 0;
    loop {
        match node.connect(url).await {
            Ok(_) => return refusals,
            Err(error) => {
                refusals += 1;
                assert!(refusals < 60, "could not join in 60 tries: {error}");
                tokio::time::sleep(Duration::from_millis(1_000)).await;
            }
        }
    }
}

async fn start(dir: &Path, name: String, params: &NetworkParams) -> NodeHandle {
    NodeHandle::start(NodeOptions {
        data_dir: dir.join(&name),
        name,
        params: params.clone(),
        threads: 1,
    })
    .await
    .expect("a node starts")
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let at = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[at.min(sorted.len() - 1)]
}

fn ms(duration: Duration) -> String {
    format!("{:.1}", duration.as_secs_f64() * 1e3)
}

fn scratch_dir() -> tempfile::TempDir {
    let shm = Path::new("/dev/shm");
    if shm.is_dir() {
        if let Ok(dir) = tempfile::tempdir_in(shm) {
            return dir;
        }
    }
    tempfile::tempdir().expect("a temporary directory")
}

struct Row {
    nodes: usize,
    join_s: f64,
    refusals: u32,
    frames_per_member: f64,
    bytes_per_member: f64,
    p50: Duration,
    p99: Duration,
    joiner_bytes: u64,
    joiner_bytes_per_block: f64,
    joiner_s: f64,
    relay_cpu_s: f64,
    run_s: f64,
    one_tip: bool,
}

async fn room(
    nodes: usize,
    blocks: usize,
    chain: &[Arc<Block>],
    joiners: usize,
    relay_bin: &Path,
) -> Row {
    let params = NetworkParams::test();
    let dir = scratch_dir();
    let run_started = Instant::now();
    for index in 0..nodes {
        testkit::preload(&dir.path().join(format!("n{index:03}")), &params, chain)
            .expect("preloading a member's store");
    }
    let relay = RelayProcess::start(relay_bin);
    let cpu_at_start = relay.cpu_seconds();
    let url = relay.url("school");
    let members: Vec<NodeHandle> =
        join_all((0..nodes).map(|index| start(dir.path(), format!("n{index:03}"), &params))).await;

    // Everyone joins in one burst, from one address.
    let joined_at = Instant::now();
    let refusals: u32 = join_all(members.iter().map(|node| join(node, &url)))
        .await
        .into_iter()
        .sum();
    wait_all(&members, "every member to hear every other", |snapshots| {
        snapshots.iter().all(|s| {
            s.is_synced()
                && s.peers
                    .iter()
                    .filter(|p| p.state == PeerState::Ready)
                    .count()
                    == nodes - 1
        })
    })
    .await;
    let join_s = joined_at.elapsed().as_secs_f64();
    relay.quiet().await;

    // When each block became each member's tip.
    let arrivals: Arc<Mutex<HashMap<Hash, Vec<Instant>>>> = Arc::default();
    let listeners: Vec<_> = members[1..]
        .iter()
        .map(|node| {
            let mut events = node.subscribe();
            let arrivals = arrivals.clone();
            tokio::spawn(async move {
                loop {
                    match events.recv().await {
                        Ok(RuntimeEvent::Node(NodeEvent::TipChanged { hash, .. })) => {
                            let at = Instant::now();
                            arrivals.lock().unwrap().entry(hash).or_default().push(at);
                        }
                        Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                        Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
                    }
                }
            })
        })
        .collect();
    let miner = &members[0];
    let mut mined_events = miner.subscribe();
    let (frames_before, bytes_before) = relay.sent();
    let mut delays = Vec::new();
    for _ in 0..blocks {
        miner.mine_blocks(1).await.expect("the miner runs");
        let (hash, mined_at) = loop {
            if let Ok(RuntimeEvent::Mined { hash, .. }) = mined_events.recv().await {
                break (hash, Instant::now());
            }
        };
        wait_all(&members, "the block to reach every member", |snapshots| {
            snapshots.iter().all(|s| s.tip == hash)
        })
        .await;
        let reached = arrivals.lock().unwrap().remove(&hash).unwrap_or_default();
        delays.extend(
            reached
                .iter()
                .map(|at| at.saturating_duration_since(mined_at)),
        );
        // Blocks a second apart, as a class mining together sees them.
        tokio::time::sleep(Duration::from_millis(1_000)).await;
    }
    let (frames_after, bytes_after) = relay.sent();
    for listener in listeners {
        listener.abort();
    }
    delays.sort();
    let per_block_member = (blocks * nodes) as f64;

    // Late joiners, one at a time, with an empty store. A member leaves first, so the room
    // holds `nodes` with the joiner (the room cap is 256).
    members[nodes - 1].shutdown().await;
    let members = &members[..nodes - 1];
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    let room_tip = miner.snapshot().tip;
    let chain_len = miner.snapshot().height;
    let (mut joiner_bytes, mut joiner_s) = (0, 0.0);
    for index in 0..joiners {
        let joiner = start(dir.path(), format!("late{index}"), &params).await;
        let (_, before) = relay.sent();
        let started = Instant::now();
        join(&joiner, &url).await;
        wait_all(
            std::slice::from_ref(&joiner),
            "the late joiner to sync",
            |s| s[0].tip == room_tip && s[0].is_synced(),
        )
        .await;
        joiner_s += started.elapsed().as_secs_f64();
        // Statuses and hellos the join set off settle within a moment.
        tokio::time::sleep(Duration::from_millis(500)).await;
        joiner_bytes += relay.sent().1 - before;
        joiner.shutdown().await;
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let joiners = joiners.max(1) as u64;
    let one_tip = members.iter().all(|node| node.snapshot().tip == room_tip);
    let relay_cpu_s = relay.cpu_seconds() - cpu_at_start;
    join_all(members.iter().map(NodeHandle::shutdown)).await;
    Row {
        nodes,
        join_s,
        refusals,
        frames_per_member: (frames_after - frames_before) as f64 / per_block_member,
        bytes_per_member: (bytes_after - bytes_before) as f64 / per_block_member,
        p50: percentile(&delays, 0.5),
        p99: percentile(&delays, 0.99),
        joiner_bytes: joiner_bytes / joiners,
        joiner_bytes_per_block: joiner_bytes as f64 / joiners as f64 / chain_len as f64,
        joiner_s: joiner_s / joiners as f64,
        relay_cpu_s,
        run_s: run_started.elapsed().as_secs_f64(),
        one_tip,
    }
}

#[tokio::main]
async fn main() {
    if std::env::var_os("RUST_LOG").is_some() {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_writer(std::io::stderr)
            .init();
    }
    let sizes: Vec<usize> = arg("--nodes", "60,128,256")
        .split(',')
        .map(|size| {
            size.trim()
                .parse()
                .expect("--nodes takes numbers, comma-separated")
        })
        .collect();
    assert!(
        sizes.iter().all(|&size| size >= 3),
        "a room of at least 3 nodes"
    );
    let blocks: usize = arg("--blocks", "20").parse().expect("--blocks N");
    let chain_len: usize = arg("--chain", "500").parse().expect("--chain N");
    let joiners: usize = arg("--joiners", "5").parse().expect("--joiners N");
    let default_relay = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/release/relay");
    let relay_bin = PathBuf::from(arg("--relay", &default_relay.to_string_lossy()));

    let chain = testkit::synthetic_chain(&NetworkParams::test(), Address([7; 20]), chain_len);
    println!(
        "{blocks} blocks mined a second apart by one member, on a chain of {chain_len}; \
         {joiners} late joiners one at a time\n"
    );
    println!(
        "| nodes | all joined and ready, s (refusals retried) | relay frames out per block per member \
         | relay bytes out per block per member | block reaches a member, p50 / p99 ms \
         | late joiner: relay bytes (per block of chain) | late joiner synced, s \
         | relay CPU, s (whole run, s) | one tip |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for size in sizes {
        let row = room(size, blocks, &chain, joiners, &relay_bin).await;
        println!(
            "| {} | {:.2} ({}) | {:.2} | {:.0} | {} / {} | {} ({:.0}) | {:.2} | {:.2} ({:.0}) | {} |",
            row.nodes,
            row.join_s,
            row.refusals,
            row.frames_per_member,
            row.bytes_per_member,
            ms(row.p50),
            ms(row.p99),
            row.joiner_bytes,
            row.joiner_bytes_per_block,
            row.joiner_s,
            row.relay_cpu_s,
            row.run_s,
            if row.one_tip { "yes" } else { "NO" },
        );
    }
}
