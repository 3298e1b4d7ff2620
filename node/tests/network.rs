//! Native nodes talking through a real relay running in this process: they mine, pay each other,
//! converge, and after a partition settle on the chain with the most work.

mod common;

use common::{converged, start_node, wait_all, TestRelay};
use node::runtime::Snapshot;
use std::sync::Arc;

fn all_see_each_other(snapshots: &[Arc<Snapshot>]) -> bool {
    snapshots
        .iter()
        .all(|s| s.ready_peers().count() == snapshots.len() - 1)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_mine_pay_each_other_and_agree() {
    let relay = TestRelay::start().await;
    let dir = tempfile::tempdir().unwrap();
    let alice = start_node("alice", dir.path()).await;
    let bob = start_node("bob", dir.path()).await;
    alice.connect(&relay.url("pay")).await.unwrap();
    bob.connect(&relay.url("pay")).await.unwrap();
    wait_all(&[&alice, &bob], "hellos", all_see_each_other).await;

    alice.mine_blocks(3).await.unwrap();
    let snapshots = wait_all(&[&alice, &bob], "bob has alice's 3 blocks", |s| {
        converged(s) && s[0].height == 3
    })
    .await;
    assert_eq!(snapshots[0].blocks_mined, 3);
    assert_eq!(snapshots[1].balance, 0);
    let subsidy = shared::NetworkParams::test().initial_subsidy;
    assert_eq!(snapshots[0].balance, 3 * subsidy);

    // Alice pays bob by address; the payment reaches bob's mempool, then alice mines it.
    let bob_address = bob.snapshot().address;
    alice.send(bob_address, 10, 1).await.unwrap();
    wait_all(&[&bob], "the payment in bob's mempool", |s| {
        s[0].mempool == 1
    })
    .await;
    alice.mine_blocks(1).await.unwrap();
    let snapshots = wait_all(&[&alice, &bob], "the payment confirmed on both", |s| {
        converged(s) && s[0].height == 4 && s[1].balance == 10
    })
    .await;
    // Alice mined the fee back to herself.
    assert_eq!(snapshots[0].balance, 4 * subsidy - 10);
    assert_eq!(snapshots[0].mempool, 0);
    assert_eq!(snapshots[1].mempool, 0);

    // Bob now mines on top and alice follows.
    bob.mine_blocks(2).await.unwrap();
    let snapshots = wait_all(&[&alice, &bob], "alice follows bob", |s| {
        converged(s) && s[0].height == 6
    })
    .await;
    assert_eq!(snapshots[1].balance, 10 + 2 * subsidy);

    alice.shutdown().await;
    bob.shutdown().await;
    relay.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_heal_a_partition_on_the_heavier_chain() {
    let relay = TestRelay::start().await;
    let dir = tempfile::tempdir().unwrap();
    let alice = start_node("alice", dir.path()).await;
    let bob = start_node("bob", dir.path()).await;
    let carol = start_node("carol", dir.path()).await;
    let room = relay.url("partition");
    for node in [&alice, &bob, &carol] {
        node.connect(&room).await.unwrap();
    }
    let nodes = [&alice, &bob, &carol];
    wait_all(&nodes, "hellos", all_see_each_other).await;
    alice.mine_blocks(2).await.unwrap();
    wait_all(&nodes, "a common chain of 2", |s| {
        converged(s) && s[0].height == 2
    })
    .await;

    // Carol leaves and mines 5 blocks alone; alice mines 2 with bob watching.
    carol.disconnect().await.unwrap();
    wait_all(&[&alice, &bob], "carol gone", |s| {
        s.iter().all(|s| s.peers.len() == 1)
    })
    .await;
    carol.mine_blocks(5).await.unwrap();
    let carol_alone = wait_all(&[&carol], "carol's 5 blocks", |s| s[0].height == 7).await;
    alice.mine_blocks(2).await.unwrap();
    let majority = wait_all(&[&alice, &bob], "alice and bob at 4", |s| {
        converged(s) && s[0].height == 4
    })
    .await;
    assert_ne!(majority[0].tip, carol_alone[0].tip);
    assert!(carol_alone[0].total_work > majority[0].total_work);

    // Carol comes back: everyone moves to her heavier branch, reorganizing two blocks.
    carol.connect(&room).await.unwrap();
    let healed = wait_all(&nodes, "all on carol's chain", |s| {
        converged(s) && all_see_each_other(s)
    })
    .await;
    for snapshot in &healed {
        assert_eq!(snapshot.tip, carol_alone[0].tip, "{}", snapshot.name);
        assert_eq!(snapshot.height, 7);
    }
    // Alice's two blocks of the losing branch no longer pay her.
    let subsidy = shared::NetworkParams::test().initial_subsidy;
    assert_eq!(healed[0].balance, 2 * subsidy);
    assert_eq!(healed[2].balance, 5 * subsidy);
    // The losing blocks stay stored (a side branch), the winning ones were stored by everyone.
    assert!(healed[0].stored_blocks >= 9);

    for node in nodes {
        node.shutdown().await;
    }
    relay.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_of_another_network_is_refused_by_name() {
    let relay = TestRelay::start().await;
    let dir = tempfile::tempdir().unwrap();
    let alice = start_node("alice", dir.path()).await;
    let stranger = node::NodeHandle::start(node::NodeOptions {
        name: "stranger".into(),
        params: shared::NetworkParams::classroom(),
        data_dir: dir.path().join("stranger"),
        threads: 1,
    })
    .await
    .unwrap();
    alice.connect(&relay.url("mixed")).await.unwrap();
    stranger.connect(&relay.url("mixed")).await.unwrap();
    let snapshots = wait_all(&[&alice, &stranger], "both refuse", |s| {
        s.iter()
            .all(|s| s.peers.len() == 1 && s.peers[0].state == shared::view::PeerState::Refused)
    })
    .await;
    for snapshot in snapshots {
        let reason = snapshot.peers[0].refusal.clone().unwrap();
        assert!(reason.contains("another network"), "{reason}");
        assert!(snapshot.is_synced(), "a refused peer does not hold up sync");
    }
    alice.shutdown().await;
    stranger.shutdown().await;
    relay.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_peer_does_not_hold_up_sync_forever() {
    let relay = TestRelay::start().await;
    let room = relay.url("silent");
    // Something joins the room and never says hello (a broken client, not a tabchain node).
    let (mut silent, _) = tokio_tungstenite::connect_async(room.as_str())
        .await
        .unwrap();
    // The relay confirms the join with a welcome; only then is it in the room for alice to see.
    let welcome = futures_util::StreamExt::next(&mut silent).await;
    assert!(
        matches!(&welcome, Some(Ok(message)) if message.to_text().is_ok_and(|text| text.contains("welcome"))),
        "{welcome:?}"
    );
    let dir = tempfile::tempdir().unwrap();
    let alice = start_node("alice", dir.path()).await;
    alice.connect(&room).await.unwrap();
    // The snapshot after the welcome is published at the end of the runtime's step.
    let first = wait_all(&[&alice], "alice sees the silent peer", |s| {
        s[0].peers.len() == 1
    })
    .await;
    assert!(!first[0].is_synced(), "a new peer gets time to say hello");
    let synced = wait_all(&[&alice], "synced despite the silent peer", |s| {
        s[0].is_synced()
    })
    .await;
    assert_eq!(synced[0].peers[0].state, shared::view::PeerState::Silent);
    alice.shutdown().await;
    relay.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_newcomer_syncs_a_long_chain_within_the_default_relay_limits() {
    const BLOCKS: usize = 8_000;
    let relay = TestRelay::start_with_default_limits().await;
    let room = relay.url("long");
    let dir = tempfile::tempdir().unwrap();
    let params = shared::NetworkParams::test();
    let blocks = common::testkit::synthetic_chain(&params, shared::Address([9; 20]), BLOCKS);
    common::testkit::preload(&dir.path().join("server"), &params, &blocks).unwrap();
    let server = start_node("server", dir.path()).await;
    assert_eq!(server.snapshot().height, BLOCKS as u64);
    server.connect(&room).await.unwrap();
    let fresh = start_node("fresh", dir.path()).await;
    fresh.connect(&room).await.unwrap();
    let done = wait_all(&[&fresh, &server], "the newcomer caught up", |s| {
        s[0].height == BLOCKS as u64 && s[0].is_synced()
    })
    .await;
    assert_eq!(done[0].tip, done[1].tip);
    // Batched requests keep an honest sync inside the relay's rate limit: nothing was dropped
    // (a dropped request would have cost a 15 s stall and a mark against an honest peer).
    let dropped = relay
        .metric("relay_dropped_total{reason=\"rate_limited\"}")
        .await;
    assert_eq!(dropped, 0, "frames dropped for rate during an honest sync");
    assert!(
        done[0].peers.iter().all(|peer| peer.misbehavior == 0),
        "{:?}",
        done[0].peers
    );
    fresh.shutdown().await;
    server.shutdown().await;
    relay.stop().await;
}
