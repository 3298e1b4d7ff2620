//! A node dropped by the relay comes back by itself: the relay stops (every connection
//! closed), the node retries with backoff while it is down, and rejoins once it is back on the
//! same address.

mod common;

use common::{start_node, TestRelay, TIMEOUT};
use node::runtime::Connection;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_node_reconnects_by_itself_with_backoff() {
    let relay = TestRelay::start().await;
    let addr = relay.addr;
    let room = relay.url("comeback");
    let dir = tempfile::tempdir().unwrap();
    let alice = start_node("alice", dir.path()).await;
    alice.set_auto_reconnect(true).await.unwrap();
    alice.connect(&room).await.unwrap();

    relay.stop().await;
    // The first retry (about a second later) fails while the relay is down; the node plans the
    // next one instead of giving up.
    let retrying = alice
        .wait_for(TIMEOUT, |s| {
            s.reconnecting.as_ref().is_some_and(|r| r.attempt >= 2)
        })
        .await
        .unwrap();
    assert!(matches!(retrying.connection, Connection::Lost { .. }));
    let reconnecting = retrying.reconnecting.as_ref().unwrap();
    assert_eq!(reconnecting.url, room);
    assert!(
        reconnecting.reason.contains("could not reach"),
        "{reconnecting:?}"
    );

    let relay = TestRelay::restart_on(addr).await;
    let back = alice
        .wait_for(TIMEOUT, |s| {
            matches!(s.connection, Connection::Connected { .. })
        })
        .await
        .unwrap();
    assert!(back.reconnecting.is_none());

    // A node that left on purpose stays away.
    alice.disconnect().await.unwrap();
    let snapshot = alice.snapshot();
    assert_eq!(snapshot.connection, Connection::Offline);
    assert!(snapshot.reconnecting.is_none());
    alice.shutdown().await;
    relay.stop().await;
}
