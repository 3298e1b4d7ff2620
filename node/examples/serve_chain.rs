//! A native node that serves a long test chain to a room, for measuring a tab that syncs it
//! (`web/bench/long-chain.sh`, BENCHMARKS.md "A long chain"): writes a chain of N coinbase-only
//! blocks of the test network into a fresh block store, starts a node on it, joins the room and
//! prints `ready <height> <tip>` once it is there; then serves until stdin closes.
//!
//! `cargo run --release -p node --example serve_chain -- 250000 ws://127.0.0.1:3030/ws/big`

#[path = "../tests/common/testkit.rs"]
mod testkit;

use node::runtime::{NodeHandle, NodeOptions};
use shared::{Address, NetworkParams};
use tokio::io::AsyncReadExt;

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let count: usize = args.next().and_then(|n| n.parse().ok()).unwrap_or(10_000);
    let url = args
        .next()
        .unwrap_or_else(|| "ws://127.0.0.1:3030/ws/big".into());
    let params = NetworkParams::test();
    let dir = tempfile::tempdir().expect("a temporary directory");
    let blocks = testkit::synthetic_chain(&params, Address([9; 20]), count);
    testkit::preload(&dir.path().join("server"), &params, &blocks).expect("the chain is written");
    drop(blocks);
    let server = NodeHandle::start(NodeOptions {
        name: "long-chain".into(),
        params,
        data_dir: dir.path().join("server"),
        threads: 1,
    })
    .await
    .expect("the node starts");
    server.connect(&url).await.expect("the relay is up");
    let snapshot = server.snapshot();
    println!("ready {} {}", snapshot.height, snapshot.tip);
    // Serve until whoever started us closes our stdin.
    let mut rest = Vec::new();
    let _ = tokio::io::stdin().read_to_end(&mut rest).await;
    server.shutdown().await;
}
