//! What the node's integration tests share: an in-process relay on a free port, nodes on the
//! test network in temporary directories, and waiting for a condition on several nodes at once.

#![allow(dead_code)]

pub mod testkit;

use futures_util::future::select_all;
use node::runtime::{NodeHandle, NodeOptions, Snapshot};
use shared::NetworkParams;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::oneshot;

/// Long enough for a debug build on a busy 2-core machine; each wait returns as soon as its
/// condition holds, so a passing test never waits this long.
pub const TIMEOUT: Duration = Duration::from_secs(60);

/// A relay running in this process until dropped.
pub struct TestRelay {
    pub addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
    _static_dir: tempfile::TempDir,
}

impl TestRelay {
    pub async fn start() -> TestRelay {
        // The test network makes blocks in microseconds, far faster than a real network's gossip:
        // lift the per-peer rate limit so the relay's flood guard does not cut the nodes off.
        TestRelay::start_with(relay::Config {
            rate_per_second: 1_000_000,
            rate_burst: 1_000_000,
            flood_drops_before_disconnect: 1_000_000,
            ..relay::Config::default()
        })
        .await
    }

    /// The relay of [`TestRelay::start`] again on `addr`.
    pub async fn restart_on(addr: SocketAddr) -> TestRelay {
        TestRelay::start_on(
            addr,
            relay::Config {
                rate_per_second: 1_000_000,
                rate_burst: 1_000_000,
                flood_drops_before_disconnect: 1_000_000,
                ..relay::Config::default()
            },
        )
        .await
    }

    /// A relay with the limits a deployed relay has by default.
    pub async fn start_with_default_limits() -> TestRelay {
        TestRelay::start_with(relay::Config::default()).await
    }

    pub async fn start_with(config: relay::Config) -> TestRelay {
        TestRelay::start_on("127.0.0.1:0".parse().unwrap(), config).await
    }

    /// A relay on `addr` (a stopped relay's address, to restart it where its peers look).
    pub async fn start_on(addr: SocketAddr, config: relay::Config) -> TestRelay {
        let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let static_dir = tempfile::tempdir().unwrap();
        std::fs::write(static_dir.path().join("index.html"), "<!doctype html>").unwrap();
        let config = relay::Config {
            static_dir: Some(static_dir.path().to_owned()),
            ..config
        };
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            relay::run(listener, config, async {
                let _ = stopped.await;
            })
            .await
            .expect("the relay runs");
        });
        TestRelay {
            addr,
            stop: Some(stop),
            task: Some(task),
            _static_dir: static_dir,
        }
    }

    /// The value of one series of the relay's `/metrics` (0 when it is not there).
    pub async fn metric(&self, series: &str) -> u64 {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut stream = tokio::net::TcpStream::connect(self.addr).await.unwrap();
        let request = format!(
            "GET /metrics HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
            self.addr
        );
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).await.unwrap();
        response
            .lines()
            .find_map(|line| line.strip_prefix(series)?.trim().parse().ok())
            .unwrap_or(0)
    }

    pub fn url(&self, room: &str) -> String {
        format!("ws://{}/ws/{room}", self.addr)
    }

    /// Closes every connection and stops the relay.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

pub async fn start_node(name: &str, data_dir: &Path) -> NodeHandle {
    NodeHandle::start(NodeOptions {
        name: name.into(),
        params: NetworkParams::test(),
        data_dir: data_dir.join(name),
        threads: 1,
    })
    .await
    .expect("the node starts")
}

/// Waits until `condition` holds on the latest snapshots of all `nodes` at once.
pub async fn wait_all(
    nodes: &[&NodeHandle],
    what: &str,
    condition: impl Fn(&[Arc<Snapshot>]) -> bool,
) -> Vec<Arc<Snapshot>> {
    let mut watches: Vec<_> = nodes.iter().map(|node| node.watch()).collect();
    let waited = tokio::time::timeout(TIMEOUT, async {
        loop {
            let snapshots: Vec<Arc<Snapshot>> = watches
                .iter_mut()
                .map(|watch| watch.borrow_and_update().clone())
                .collect();
            if condition(&snapshots) {
                return snapshots;
            }
            let changes = watches.iter_mut().map(|watch| Box::pin(watch.changed()));
            let (changed, _, _) = select_all(changes).await;
            changed.expect("a node stopped while we waited");
        }
    })
    .await;
    match waited {
        Ok(snapshots) => snapshots,
        Err(_) => {
            let states: Vec<String> = nodes
                .iter()
                .map(|node| {
                    let s = node.snapshot();
                    format!(
                        "{}: height {} tip {} syncing {} in flight {} peers {:?}",
                        s.name,
                        s.height,
                        s.tip.short(),
                        s.syncing,
                        s.requests_in_flight,
                        s.peers
                            .iter()
                            .map(|p| (p.name.clone(), p.state, p.tip.map(|tip| tip.height)))
                            .collect::<Vec<_>>()
                    )
                })
                .collect();
            panic!("timed out waiting for {what}:\n{}", states.join("\n"));
        }
    }
}

/// Every node has the same tip and is synced.
pub fn converged(snapshots: &[Arc<Snapshot>]) -> bool {
    snapshots
        .iter()
        .all(|s| s.is_synced() && s.tip == snapshots[0].tip)
}

/// The `node` binary built for these tests.
pub const BIN: &str = env!("CARGO_BIN_EXE_node");

/// What a finished run of the binary printed.
pub struct Run {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(self.stdout.trim()).unwrap_or_else(|error| {
            panic!(
                "stdout is not JSON ({error}):\n{}\nstderr:\n{}",
                self.stdout, self.stderr
            )
        })
    }
}

/// A command for the binary with its data in `data_dir`, on the test network unless `args`
/// name another.
pub fn node_command(data_dir: &Path, args: &[&str]) -> tokio::process::Command {
    let mut command = tokio::process::Command::new(BIN);
    if !args.contains(&"--network") {
        command.args(["--network", "test"]);
    }
    command
        .arg("--data-dir")
        .arg(data_dir)
        .args(args)
        .env_remove("RUST_LOG")
        .env_remove("TABCHAIN_RELAY")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    command
}

/// Runs the binary to the end with `stdin` as its input.
pub async fn run_node(data_dir: &Path, args: &[&str], stdin: &str) -> Run {
    use tokio::io::AsyncWriteExt;
    let mut child = node_command(data_dir, args)
        .spawn()
        .expect("the binary starts");
    let mut input = child.stdin.take().unwrap();
    input.write_all(stdin.as_bytes()).await.unwrap();
    drop(input);
    let output = tokio::time::timeout(TIMEOUT, child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("`node {}` did not finish in {TIMEOUT:?}", args.join(" ")))
        .unwrap();
    Run {
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}
