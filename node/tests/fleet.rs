//! Two native nodes on two different relays of one fleet (joined by a real `nats-server`): they
//! find each other, mine, pay each other and agree, exactly as on one relay.

mod common;

use common::{converged, start_node, wait_all, TestRelay, TIMEOUT};
use node::runtime::Snapshot;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

/// A `nats-server` on a port it picks (`-p -1`), killed when dropped.
struct Broker {
    child: Child,
    url: String,
    _dir: tempfile::TempDir,
}

impl Broker {
    async fn start() -> Broker {
        let dir = tempfile::tempdir().unwrap();
        // A full block as a relay frame is up to 1 MiB; NATS's default max_payload is just that.
        let config = dir.path().join("nats.conf");
        std::fs::write(&config, "max_payload: 2097152\n").unwrap();
        let child = Command::new("nats-server")
            .arg("-c")
            .arg(&config)
            .args(["-a", "127.0.0.1", "-p", "-1", "--ports_file_dir"])
            .arg(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|error| {
                panic!(
                    "cannot start nats-server ({error}); these tests need a real broker: \
                     run `scripts/install-tools.sh nats` (Debian: apt-get install -y nats-server)"
                )
            });
        let ports_file = dir.path().join(format!("nats-server_{}.ports", child.id()));
        // nats-server writes the file once it listens; there is no event to await.
        let url = tokio::time::timeout(TIMEOUT, async {
            loop {
                if let Ok(text) = std::fs::read_to_string(&ports_file) {
                    if let Some(port) = text
                        .split("nats://127.0.0.1:")
                        .nth(1)
                        .and_then(|rest| rest.split('"').next())
                        .filter(|port| port.parse::<u16>().is_ok())
                    {
                        return format!("nats://127.0.0.1:{port}");
                    }
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await
        .expect("nats-server wrote its ports file");
        Broker {
            child,
            url,
            _dir: dir,
        }
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn fleet_relay(broker: &Broker) -> TestRelay {
    TestRelay::start_with(relay::Config {
        rate_per_second: 1_000_000,
        rate_burst: 1_000_000,
        flood_drops_before_disconnect: 1_000_000,
        nats_url: Some(broker.url.clone()),
        ..relay::Config::default()
    })
    .await
}

fn all_see_each_other(snapshots: &[Arc<Snapshot>]) -> bool {
    snapshots
        .iter()
        .all(|s| s.ready_peers().count() == snapshots.len() - 1)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_on_different_relays_mine_pay_and_agree() {
    let broker = Broker::start().await;
    let relay_a = fleet_relay(&broker).await;
    let relay_b = fleet_relay(&broker).await;
    let dir = tempfile::tempdir().unwrap();
    let alice = start_node("alice", dir.path()).await;
    let bob = start_node("bob", dir.path()).await;
    alice.connect(&relay_a.url("fleet")).await.unwrap();
    bob.connect(&relay_b.url("fleet")).await.unwrap();
    wait_all(&[&alice, &bob], "hellos across relays", all_see_each_other).await;

    alice.mine_blocks(3).await.unwrap();
    wait_all(&[&alice, &bob], "bob has alice's 3 blocks", |s| {
        converged(s) && s[0].height == 3
    })
    .await;
    let subsidy = shared::NetworkParams::test().initial_subsidy;

    let bob_address = bob.snapshot().address;
    alice.send(bob_address, 10, 1).await.unwrap();
    wait_all(&[&bob], "the payment in bob's mempool", |s| {
        s[0].mempool == 1
    })
    .await;
    alice.mine_blocks(1).await.unwrap();
    wait_all(&[&alice, &bob], "the payment confirmed on both", |s| {
        converged(s) && s[0].height == 4 && s[1].balance == 10
    })
    .await;

    bob.mine_blocks(2).await.unwrap();
    let snapshots = wait_all(&[&alice, &bob], "alice follows bob", |s| {
        converged(s) && s[0].height == 6
    })
    .await;
    assert_eq!(snapshots[1].balance, 10 + 2 * subsidy);
    assert_eq!(snapshots[0].balance, 4 * subsidy - 10);
    // Everything crossed the broker: each relay delivered frames that came from the other.
    assert!(relay_a.metric("relay_broker_deliveries_total").await > 0);
    assert!(relay_b.metric("relay_broker_deliveries_total").await > 0);

    alice.shutdown().await;
    bob.shutdown().await;
    relay_a.stop().await;
    relay_b.stop().await;
}
