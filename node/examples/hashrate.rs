//! Benchmarks of the native node, printed as a Markdown table:
//! 1. hash rate of the miner on 1 thread and on every core (the scaling ratio);
//! 2. blocks imported per second by a fresh node syncing a 2,000-block test chain from a peer
//!    through an in-process relay (headers-first sync, validation, fsynced storage);
//! 3. blocks replayed per second from the block store at start.
//!
//! Run: `cargo run --release -p node --example hashrate` (add `-- --seconds 5 --blocks 5000`;
//! `--relay-limits 1` keeps the relay's default rate limits, as a deployed relay has them;
//! `--seconds 0` skips the hash rates).

#[path = "../tests/common/testkit.rs"]
mod testkit;

use node::miner::Miner;
use node::runtime::{NodeHandle, NodeOptions};
use shared::node::MiningJob;
use shared::work::{Target, U256};
use shared::{Address, NetworkParams};
use std::time::{Duration, Instant};

fn arg(name: &str, default: u64) -> u64 {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|at| args.get(at + 1))
        .and_then(|value| value.parse().ok())
        .unwrap_or(default)
}

/// Hashes per second of `threads` miner threads on a job that is never solved.
async fn hash_rate(threads: usize, seconds: u64) -> f64 {
    let params = NetworkParams::default_network();
    let tree = shared::chain::BlockTree::new(params.clone());
    let mut block = tree.block_template(
        Address([1; 20]),
        Vec::new(),
        params.genesis_timestamp_ms + 1,
    );
    // A target of 1 is never met, so every thread hashes for the whole measurement.
    block.header.target = Target::from_u256(U256::from(1));
    let (miner, _found) = Miner::start(threads);
    miner.start_job(MiningJob { job_id: 1, block });
    tokio::time::sleep(Duration::from_millis(300)).await; // warm up: threads running, caches hot
    let (start, hashes) = (Instant::now(), miner.hashes());
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    let rate = (miner.hashes() - hashes) as f64 / start.elapsed().as_secs_f64();
    miner.stop();
    rate
}

#[tokio::main]
async fn main() {
    if std::env::var_os("RUST_LOG").is_some() {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_writer(std::io::stderr)
            .init();
    }
    let seconds = arg("--seconds", 3);
    let chain_len = arg("--blocks", 2_000) as usize;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());

    let relay_limits = arg("--relay-limits", 0) == 1;
    println!("| measurement | value |");
    println!("|---|---|");
    if seconds > 0 {
        hash_rates(seconds, cores).await;
    }
    sync(chain_len, relay_limits).await;
}

async fn hash_rates(seconds: u64, cores: usize) {
    let single = hash_rate(1, seconds).await;
    println!("| miner, 1 thread | {:.2} MH/s |", single / 1e6);
    let all = hash_rate(cores, seconds).await;
    println!("| miner, {cores} threads | {:.2} MH/s |", all / 1e6);
    println!(
        "| scaling {cores} threads / 1 thread | {:.2}x |",
        all / single
    );
}

async fn sync(chain_len: usize, relay_limits: bool) {
    // A relay in this process, with the rate limit lifted as in the tests (or not).
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("index.html"), "").unwrap();
    let config = if relay_limits {
        relay::Config {
            static_dir: Some(dir.path().to_owned()),
            ..relay::Config::default()
        }
    } else {
        relay::Config {
            static_dir: Some(dir.path().to_owned()),
            rate_per_second: 1_000_000,
            rate_burst: 1_000_000,
            ..relay::Config::default()
        }
    };
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let relay_task = tokio::spawn(relay::run(listener, config, async {
        let _ = stopped.await;
    }));
    let url = format!("ws://{addr}/ws/bench");

    let params = NetworkParams::test();
    let blocks = testkit::synthetic_chain(&params, Address([9; 20]), chain_len);
    testkit::preload(&dir.path().join("server"), &params, &blocks).unwrap();
    let options = |name: &str| NodeOptions {
        name: name.into(),
        params: params.clone(),
        data_dir: dir.path().join(name),
        threads: 1,
    };
    let started = Instant::now();
    let server = NodeHandle::start(options("server")).await.unwrap();
    let load = started.elapsed();
    assert_eq!(server.snapshot().height, chain_len as u64);
    println!(
        "| replay of {chain_len} stored blocks at start | {:.0} blocks/s ({:.2} s) |",
        chain_len as f64 / load.as_secs_f64(),
        load.as_secs_f64()
    );
    server.connect(&url).await.unwrap();

    let fresh = NodeHandle::start(options("fresh")).await.unwrap();
    let started = Instant::now();
    fresh.connect(&url).await.unwrap();
    fresh
        .wait_for(Duration::from_secs(600), |s| {
            s.height == chain_len as u64 && s.is_synced()
        })
        .await
        .unwrap();
    let sync = started.elapsed();
    let limits = if relay_limits {
        "the relay's default limits"
    } else {
        "no relay rate limit"
    };
    println!(
        "| sync of {chain_len} blocks from a peer through the relay ({limits}) | {:.0} blocks/s ({:.2} s) |",
        chain_len as f64 / sync.as_secs_f64(),
        sync.as_secs_f64()
    );
    let charged: Vec<String> = fresh
        .snapshot()
        .peers
        .iter()
        .filter(|peer| peer.misbehavior > 0 || peer.last_offense.is_some())
        .map(|peer| format!("{} ({:?})", peer.misbehavior, peer.last_offense))
        .collect();
    println!(
        "| what the syncing node charged the serving peer | {} |",
        if charged.is_empty() {
            "nothing".to_string()
        } else {
            charged.join(", ")
        }
    );
    assert_eq!(fresh.snapshot().stored_blocks, chain_len);
    fresh.shutdown().await;
    server.shutdown().await;
    let _ = stop.send(());
    let _ = relay_task.await;
}
