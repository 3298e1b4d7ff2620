//! The runtime sleeps until the instant the node asks for (`poll_timeout`), not on a fixed
//! beat. Tokio's clock is paused, so the test controls time: it jumps from timer to timer.

mod common;

use common::testkit::{preload, synthetic_chain};
use node::runtime::{NodeHandle, NodeOptions};
use shared::node::OWN_TX_REANNOUNCE_MS;
use shared::{Address, NetworkParams};
use std::time::Duration;

#[tokio::test(start_paused = true)]
async fn the_runtime_ticks_the_node_only_at_its_poll_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("alice");
    let params = NetworkParams::test();
    let (keypair, _) = node::keystore::load_or_create(&data_dir).unwrap();
    preload(
        &data_dir,
        &params,
        &synthetic_chain(&params, keypair.address(), 2),
    )
    .unwrap();
    let handle = NodeHandle::start(NodeOptions {
        name: "alice".into(),
        params,
        data_dir,
        threads: 1,
    })
    .await
    .unwrap();
    let start = handle.snapshot();
    assert_eq!(
        start.next_tick_ms, None,
        "an idle offline node needs no tick"
    );

    // Let a minute pass with nothing to do: a fixed one-second tick would have run 60 times.
    tokio::time::sleep(Duration::from_secs(60)).await;
    handle.inspect(|_| ()).await.unwrap();
    assert_eq!(handle.snapshot().ticks, 0, "ticked without a deadline");

    // A payment of ours is announced again after OWN_TX_REANNOUNCE_MS: that is the deadline.
    handle.send(Address([5; 20]), 1, 0).await.unwrap();
    let sent = handle.snapshot();
    let deadline = sent
        .next_tick_ms
        .expect("the re-announcement is a deadline");
    let sent_at = deadline - OWN_TX_REANNOUNCE_MS;
    assert!(sent_at >= start.last_tick_ms.unwrap_or(0));
    let ticked = handle
        .wait_for(Duration::from_secs(600), |s| s.ticks > 0)
        .await
        .unwrap();
    assert_eq!(ticked.ticks, 1, "one tick, at the deadline");
    let at = ticked.last_tick_ms.unwrap();
    assert!(
        (deadline..deadline + 50).contains(&at),
        "ticked at {at}, the deadline was {deadline}"
    );
    handle.shutdown().await;
}
