//! A fleet on one machine: a real `nats-server` on a free loopback port and relay processes (the
//! built binary) connected to it, each of which a test can kill with SIGKILL.
//!
//! Waits are bounded: the broker's port file and a relay's first line by [`WAIT`], conditions
//! polled over HTTP by the same. A missing `nats-server` fails the test with the way to install it.

use crate::common::{http_get, metric_value, Client, Ws, WAIT};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use tokio::time::{timeout, Instant};

/// Largest broker message: a maximum relay frame (1 MiB) plus its envelope and header. NATS
/// refuses bigger publishes, and its default (1 MiB) is a little too small. See docs/deploy.md.
pub const BROKER_MAX_PAYLOAD: usize = 2 * 1024 * 1024;
/// How often a condition without an event to await (a file appearing, an HTTP answer changing)
/// is checked.
const POLL: Duration = Duration::from_millis(20);

/// A `nats-server` process in its own temporary directory.
pub struct Broker {
    child: Child,
    pub port: u16,
    dir: tempfile::TempDir,
}

impl Broker {
    /// Starts a broker on a port it picks itself (`-p -1`), learned from its ports file.
    pub async fn start() -> Broker {
        let dir = tempfile::tempdir().unwrap();
        let child = spawn_nats(&dir, "-1");
        let port = read_port(&dir, child.id()).await;
        Broker { child, port, dir }
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// SIGSTOP (`true`) or SIGCONT: a broker that hangs rather than crashes.
    pub fn pause(&self, paused: bool) {
        let signal = if paused { "-STOP" } else { "-CONT" };
        let status = std::process::Command::new("kill")
            .args([signal, &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// SIGKILL, and waits for the process to be gone.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Starts a new broker on the same port (after [`Broker::kill`]) and returns once it accepts
    /// connections: the moment it is back.
    pub async fn restart(&mut self) -> Instant {
        self.kill();
        self.child = spawn_nats(&self.dir, &self.port.to_string());
        let port = read_port(&self.dir, self.child.id()).await;
        assert_eq!(port, self.port);
        Instant::now()
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.kill();
    }
}

fn spawn_nats(dir: &tempfile::TempDir, port: &str) -> Child {
    let config = dir.path().join("nats.conf");
    std::fs::write(&config, format!("max_payload: {BROKER_MAX_PAYLOAD}\n")).unwrap();
    let ports_dir = dir.path().join("ports");
    let _ = std::fs::remove_dir_all(&ports_dir);
    std::fs::create_dir_all(&ports_dir).unwrap();
    let log = std::fs::File::create(dir.path().join("nats.log")).unwrap();
    let spawned = Command::new("nats-server")
        .arg("-c")
        .arg(&config)
        .args(["-a", "127.0.0.1", "-p", port, "--ports_file_dir"])
        .arg(&ports_dir)
        .stdout(Stdio::null())
        .stderr(log)
        .spawn();
    match spawned {
        Ok(child) => child,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => panic!(
            "nats-server is not installed, and these tests need a real broker: \
             run `scripts/install-tools.sh nats` (Debian: apt-get install -y nats-server)"
        ),
        Err(error) => panic!("cannot start nats-server: {error}"),
    }
}

/// Reads the client port from the `<name>_<pid>.ports` file nats-server writes once it listens.
async fn read_port(dir: &tempfile::TempDir, pid: u32) -> u16 {
    let ports_dir = dir.path().join("ports");
    let poll = async {
        loop {
            let found = std::fs::read_dir(&ports_dir).ok().and_then(|entries| {
                entries
                    .filter_map(Result::ok)
                    .map(|entry| entry.path())
                    .find(|path| path.to_string_lossy().ends_with(&format!("_{pid}.ports")))
            });
            if let Some(text) = found.and_then(|path| std::fs::read_to_string(path).ok()) {
                // {"client":["nats://127.0.0.1:PORT"],...}; the file may still be being written.
                if let Some(port) = text
                    .split("nats://127.0.0.1:")
                    .nth(1)
                    .and_then(|rest| rest.split('"').next())
                    .and_then(|port| port.parse().ok())
                {
                    return port;
                }
            }
            tokio::time::sleep(POLL).await;
        }
    };
    timeout(WAIT, poll).await.unwrap_or_else(|_| {
        let log = std::fs::read_to_string(dir.path().join("nats.log")).unwrap_or_default();
        panic!("nats-server did not write its ports file in time; its log:\n{log}")
    })
}

/// A relay process started from the built binary.
pub struct RelayProcess {
    child: Child,
    pub addr: SocketAddr,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl RelayProcess {
    /// Starts a relay on a free port connected to `broker_url`, with `extra` flags, and returns
    /// once it has printed its address.
    pub async fn start(broker_url: &str, extra: &[&str]) -> RelayProcess {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("relay.log");
        let mut child = Command::new(env!("CARGO_BIN_EXE_relay"))
            .args(["--port", "0", "--static-dir", "/nonexistent"])
            // Tests send faster than a person: lift the per-peer rate limit unless a test sets it.
            .args(["--rate-per-second", "1000000", "--rate-burst", "1000000"])
            .args(["--nats-url", broker_url])
            .args(extra)
            .env("RUST_LOG", "relay=info")
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("the relay binary starts");
        let addr = crate::common::printed_address(&mut child).await;
        RelayProcess {
            child,
            addr,
            log,
            _dir: dir,
        }
    }

    pub async fn connect(&self, room: &str) -> Ws {
        let url = format!("ws://{}/ws/{room}", self.addr);
        let (ws, _) = timeout(WAIT, tokio_tungstenite::connect_async(url))
            .await
            .expect("connect timed out")
            .expect("WebSocket handshake failed");
        ws
    }

    /// Connects to `room` and reads the welcome.
    pub async fn join(&self, room: &str) -> Client {
        Client::welcomed(self.connect(room).await).await
    }

    pub async fn healthz(&self) -> String {
        http_get(self.addr, "/healthz").await.body
    }

    pub async fn metric(&self, series: &str) -> u64 {
        let body = http_get(self.addr, "/metrics").await.body;
        metric_value(&body, series)
            .unwrap_or_else(|| panic!("no series `{series}` in /metrics:\n{body}"))
    }

    /// Polls `/healthz` until its body starts with `prefix`.
    pub async fn wait_for_health(&self, prefix: &str) {
        let poll = async {
            while !self.healthz().await.starts_with(prefix) {
                tokio::time::sleep(POLL).await;
            }
        };
        timeout(WAIT, poll)
            .await
            .unwrap_or_else(|_| panic!("/healthz never said {prefix:?}; log:\n{}", self.log()));
    }

    pub async fn wait_for_metric(&self, series: &str, at_least: u64) {
        let poll = async {
            while self.metric(series).await < at_least {
                tokio::time::sleep(POLL).await;
            }
        };
        timeout(WAIT, poll)
            .await
            .unwrap_or_else(|_| panic!("{series} never reached {at_least}; log:\n{}", self.log()));
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGTERM, as `systemctl stop` does, and waits for the process to exit.
    pub async fn terminate(&mut self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let pid = self.child.id();
        let exited = async {
            while self.child.try_wait().unwrap().is_none() {
                tokio::time::sleep(POLL).await;
            }
        };
        timeout(WAIT, exited)
            .await
            .unwrap_or_else(|_| panic!("relay {pid} did not exit after SIGTERM"));
    }

    /// SIGKILL: no goodbye to anyone, as when a machine dies.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for RelayProcess {
    fn drop(&mut self) {
        self.kill();
    }
}
