//! `kill -9` of the real binary while it mines and while it imports blocks: after a restart the
//! key and the chain come back, every block it reported is still there, the store holds no
//! damaged block, and the node resyncs the rest from its peers.

mod common;

use common::{node_command, run_node, start_node, TestRelay, TIMEOUT};
use node::runtime::block_log_path;
use shared::NetworkParams;
use std::path::Path;
use tokio::io::{AsyncBufReadExt, BufReader};

/// Reads the stored chain with the binary and checks that it is one linked chain from genesis.
async fn stored_chain(data_dir: &Path) -> serde_json::Value {
    let status = run_node(data_dir, &["--offline", "status", "--json"], "").await;
    assert_eq!(status.code, Some(0), "{}", status.stderr);
    let status = status.json();
    assert_eq!(
        status["rejected_stored_blocks"], 0,
        "a stored block was refused"
    );
    let chain = run_node(data_dir, &["--offline", "chain", "--all", "--json"], "").await;
    assert_eq!(chain.code, Some(0), "{}", chain.stderr);
    let chain = chain.json();
    let blocks = chain["blocks"].as_array().unwrap();
    assert_eq!(blocks.len() as u64, status["height"].as_u64().unwrap() + 1);
    for pair in blocks.windows(2) {
        assert_eq!(
            pair[0]["block"]["header"]["prev_hash"], pair[1]["hash"],
            "the chain links"
        );
        assert_eq!(
            pair[0]["height"].as_u64().unwrap(),
            pair[1]["height"].as_u64().unwrap() + 1
        );
    }
    status
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_while_mining_loses_no_reported_block() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("miner");
    let mut address = None;
    let mut last_reported = 0;
    for round in 0..3 {
        let mut child = node_command(
            &data,
            &[
                "--name",
                "miner",
                "--offline",
                "--threads",
                "2",
                "mine",
                "--forever",
                "--json",
            ],
        )
        .spawn()
        .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut mined_this_round = 0;
        tokio::time::timeout(TIMEOUT, async {
            while mined_this_round < 15 {
                let line = lines.next_line().await.unwrap().expect("the miner runs");
                let event: serde_json::Value = serde_json::from_str(&line).unwrap();
                assert_eq!(event["event"], "mined", "{line}");
                last_reported = event["height"].as_u64().unwrap();
                mined_this_round += 1;
            }
        })
        .await
        .expect("15 blocks in time");
        // SIGKILL: no chance to flush or say goodbye.
        child.kill().await.unwrap();

        let status = stored_chain(&data).await;
        let height = status["height"].as_u64().unwrap();
        assert!(
            height >= last_reported,
            "round {round}: reported block {last_reported} but only {height} survived"
        );
        assert_eq!(status["loaded_blocks"].as_u64().unwrap(), height);
        // The same key every time.
        let this_address = status["address"].as_str().unwrap().to_owned();
        assert_eq!(address.get_or_insert(this_address.clone()), &this_address);
        last_reported = height;
    }
    // The node goes on from where it was killed.
    let more = run_node(&data, &["--offline", "mine", "--blocks", "2", "--json"], "").await;
    assert_eq!(more.code, Some(0), "{}", more.stderr);
    let status = stored_chain(&data).await;
    assert_eq!(status["height"].as_u64().unwrap(), last_reported + 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_during_block_import_then_resync_from_the_peer() {
    const CHAIN: usize = 2_000;
    let relay = TestRelay::start().await;
    let dir = tempfile::tempdir().unwrap();
    let params = NetworkParams::test();
    let blocks = common::testkit::synthetic_chain(&params, shared::Address([9; 20]), CHAIN);
    common::testkit::preload(&dir.path().join("server"), &params, &blocks).unwrap();
    let server = start_node("server", dir.path()).await;
    assert_eq!(server.snapshot().height, CHAIN as u64);
    let room = relay.url("import");
    server.connect(&room).await.unwrap();
    let full_size = std::fs::metadata(block_log_path(&dir.path().join("server"), params.name))
        .unwrap()
        .len();

    let data = dir.path().join("fresh");
    let log = block_log_path(&data, params.name);
    let mut child = node_command(
        &data,
        &[
            "--name",
            "fresh",
            "--relay",
            &room,
            "--timeout",
            "120",
            "status",
            "--json",
        ],
    )
    .spawn()
    .unwrap();
    // Poll the growing store and kill the process a tenth of the way through the import.
    tokio::time::timeout(TIMEOUT, async {
        loop {
            let size = std::fs::metadata(&log).map_or(0, |m| m.len());
            if size >= full_size / 10 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        }
    })
    .await
    .expect("the import starts");
    child.kill().await.unwrap();

    let status = stored_chain(&data).await;
    let kept = status["height"].as_u64().unwrap();
    eprintln!(
        "kept {kept} of {CHAIN} blocks after the kill (torn tail cut: {} bytes)",
        status["truncated_bytes"]
    );
    assert!(kept > 0, "blocks written before the kill survive");
    assert!(kept <= CHAIN as u64);

    // Back online: it loads what it had and fetches only the rest.
    let resynced = run_node(
        &data,
        &["--name", "fresh", "--relay", &room, "status", "--json"],
        "",
    )
    .await;
    assert_eq!(resynced.code, Some(0), "{}", resynced.stderr);
    let resynced = resynced.json();
    assert_eq!(resynced["loaded_blocks"].as_u64().unwrap(), kept);
    assert_eq!(resynced["height"].as_u64().unwrap(), CHAIN as u64);
    assert_eq!(resynced["tip"], serde_json::json!(server.snapshot().tip));
    let status = stored_chain(&data).await;
    assert_eq!(status["height"].as_u64().unwrap(), CHAIN as u64);

    server.shutdown().await;
    relay.stop().await;
}
