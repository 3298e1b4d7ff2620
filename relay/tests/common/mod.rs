//! Test harness: a relay started in-process on port 0, WebSocket clients that speak the envelope,
//! and a tiny HTTP/1.1 client. Every wait is bounded by [`WAIT`] so a broken relay fails a test
//! instead of hanging it.
#![allow(dead_code)]

use futures_util::{SinkExt, StreamExt};
use relay::Config;
use serde_json::value::RawValue;
use shared::protocol::{ClientFrame, IceServer, PeerId, RelayFrame};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio::time::timeout;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// Longest a test waits for something that should happen at once.
pub const WAIT: Duration = Duration::from_secs(10);

pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

pub struct TestRelay {
    pub addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<Result<(), relay::RelayError>>,
}

impl TestRelay {
    pub async fn start(config: Config) -> TestRelay {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(relay::run(listener, config, async {
            let _ = stopped.await;
        }));
        TestRelay {
            addr,
            stop: Some(stop),
            task,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("ws://{}{}", self.addr, path)
    }

    /// Connects to `/ws/{room}` and reads the welcome.
    pub async fn join(&self, room: &str) -> Client {
        self.join_path(&format!("/ws/{room}")).await
    }

    pub async fn join_path(&self, path: &str) -> Client {
        let ws = self.connect_raw(path).await;
        Client::welcomed(ws).await
    }

    /// Connects without reading anything.
    pub async fn connect_raw(&self, path: &str) -> Ws {
        let (ws, _) = timeout(
            WAIT,
            tokio_tungstenite::connect_async_with_config(self.url(path), None, true),
        )
        .await
        .expect("connect timed out")
        .expect("WebSocket handshake failed");
        ws
    }

    /// Stops the relay and waits for `run` to return.
    pub async fn shutdown(mut self) -> Result<(), relay::RelayError> {
        let _ = self.stop.take().expect("stopped once").send(());
        timeout(WAIT, &mut self.task)
            .await
            .expect("the relay did not stop in time")
            .expect("the relay task panicked")
    }

    pub async fn get(&self, path: &str) -> HttpResponse {
        http_get(self.addr, path).await
    }

    /// The value of one metric line, e.g. `relay_dropped_total{reason="rate_limited"}`.
    pub async fn metric(&self, series: &str) -> u64 {
        let body = self.get("/metrics").await.body;
        metric_value(&body, series)
            .unwrap_or_else(|| panic!("no series `{series}` in /metrics:\n{body}"))
    }

    /// Waits until a metric reaches `at_least`, polling /metrics (the event happens inside the
    /// relay, where a test cannot await it directly).
    pub async fn wait_for_metric(&self, series: &str, at_least: u64) {
        let poll = async {
            loop {
                if self.metric(series).await >= at_least {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        };
        timeout(WAIT, poll)
            .await
            .unwrap_or_else(|_| panic!("{series} never reached {at_least}"));
    }
}

pub fn metric_value(body: &str, series: &str) -> Option<u64> {
    body.lines().find_map(|line| {
        let (name, value) = line.rsplit_once(' ')?;
        (name == series).then(|| value.parse().ok())?
    })
}

/// A peer speaking the relay envelope.
pub struct Client {
    pub ws: Ws,
    pub id: PeerId,
    pub room: String,
    /// Peers present when we joined, from the welcome.
    pub peers: Vec<PeerId>,
    /// STUN/TURN servers, from the welcome.
    pub ice_servers: Vec<IceServer>,
}

impl Client {
    pub async fn welcomed(mut ws: Ws) -> Client {
        let frame = next_frame(&mut ws).await;
        match frame {
            RelayFrame::Welcome {
                peer_id,
                room,
                peers,
                ice_servers,
            } => Client {
                ws,
                id: peer_id,
                room,
                peers,
                ice_servers,
            },
            other => panic!("expected welcome, got {other:?}"),
        }
    }

    pub async fn recv(&mut self) -> RelayFrame {
        next_frame(&mut self.ws).await
    }

    /// The next `message` frame: (from, raw payload text). Panics on anything else.
    pub async fn recv_message(&mut self) -> (PeerId, String) {
        match self.recv().await {
            RelayFrame::Message { from, payload } => (from, payload.get().to_owned()),
            other => panic!("expected a message, got {other:?}"),
        }
    }

    pub async fn broadcast(&mut self, payload: &str) {
        let frame = ClientFrame::broadcast(RawValue::from_string(payload.to_owned()).unwrap());
        self.send_text(serde_json::to_string(&frame).unwrap()).await;
    }

    pub async fn send_to(&mut self, to: &PeerId, payload: &str) {
        let frame = ClientFrame::send(
            to.clone(),
            RawValue::from_string(payload.to_owned()).unwrap(),
        );
        self.send_text(serde_json::to_string(&frame).unwrap()).await;
    }

    /// A `signal` frame to one peer (WebRTC signaling, routed like `send`).
    pub async fn signal_to(&mut self, to: &PeerId, payload: &str) {
        let frame = ClientFrame::signal(
            to.clone(),
            RawValue::from_string(payload.to_owned()).unwrap(),
        );
        self.send_text(serde_json::to_string(&frame).unwrap()).await;
    }

    /// The next `signal` frame: (from, raw payload text). Panics on anything else.
    pub async fn recv_signal(&mut self) -> (PeerId, String) {
        match self.recv().await {
            RelayFrame::Signal { from, payload } => (from, payload.get().to_owned()),
            other => panic!("expected a signal, got {other:?}"),
        }
    }

    pub async fn send_text(&mut self, text: String) {
        timeout(WAIT, self.ws.send(Message::text(text)))
            .await
            .expect("send timed out")
            .expect("send failed");
    }

    /// Reads until the relay closes; returns the close frame (None when the stream ended without).
    pub async fn recv_close(&mut self) -> Option<CloseFrame> {
        recv_close(&mut self.ws).await
    }
}

/// The next text frame from the relay, parsed; pings are skipped. Panics on close or timeout.
pub async fn next_frame(ws: &mut Ws) -> RelayFrame {
    loop {
        let message = timeout(WAIT, ws.next())
            .await
            .expect("no frame from the relay in time")
            .expect("the relay closed the stream")
            .expect("reading from the relay failed");
        match message {
            Message::Text(text) => {
                return RelayFrame::from_json(&text)
                    .unwrap_or_else(|error| panic!("bad frame {text}: {error}"))
            }
            Message::Ping(_) | Message::Pong(_) => continue,
            other => panic!("unexpected {other:?}"),
        }
    }
}

/// Reads (and discards) until the close frame or the end of the stream.
pub async fn recv_close(ws: &mut Ws) -> Option<CloseFrame> {
    let read = async {
        loop {
            match ws.next().await {
                Some(Ok(Message::Close(frame))) => return frame,
                Some(Ok(_)) => continue,
                Some(Err(_)) | None => return None,
            }
        }
    };
    timeout(WAIT, read)
        .await
        .expect("the relay did not close in time")
}

pub fn payload_of(frame: &RelayFrame) -> Option<String> {
    match frame {
        RelayFrame::Message { payload, .. } => Some(payload.get().to_owned()),
        _ => None,
    }
}

pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl HttpResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }
}

/// A one-shot HTTP/1.1 GET, enough for the relay's plain responses.
pub async fn http_get(addr: SocketAddr, path: &str) -> HttpResponse {
    http_request(
        addr,
        &format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"),
    )
    .await
}

pub async fn http_request(addr: SocketAddr, request: &str) -> HttpResponse {
    let exchange = async {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).await.unwrap();
        raw
    };
    let raw = timeout(WAIT, exchange)
        .await
        .expect("HTTP request timed out");
    let text = String::from_utf8(raw).expect("UTF-8 response");
    let (head, body) = text.split_once("\r\n\r\n").expect("a complete response");
    let mut lines = head.lines();
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(key, value)| (key.trim().to_owned(), value.trim().to_owned()))
        .collect();
    let chunked = headers.iter().any(|(key, value)| {
        key.eq_ignore_ascii_case("transfer-encoding") && value.eq_ignore_ascii_case("chunked")
    });
    let body = if chunked {
        dechunk(body)
    } else {
        body.to_owned()
    };
    HttpResponse {
        status,
        headers,
        body,
    }
}

fn dechunk(mut rest: &str) -> String {
    let mut body = String::new();
    loop {
        let (size, after) = rest.split_once("\r\n").expect("chunk size line");
        let size = usize::from_str_radix(size.trim(), 16).expect("hex chunk size");
        if size == 0 {
            return body;
        }
        body.push_str(&after[..size]);
        rest = &after[size + 2..];
    }
}

/// Builds a WebSocket request with extra headers (e.g. Origin).
pub fn request_with(
    url: &str,
    headers: &[(&'static str, &str)],
) -> tokio_tungstenite::tungstenite::handshake::client::Request {
    let mut request = url.into_client_request().unwrap();
    for (name, value) in headers {
        request.headers_mut().insert(*name, value.parse().unwrap());
    }
    request
}

/// A configuration for tests: defaults, with rate limits out of the way unless a test sets them.
pub fn config() -> Config {
    Config {
        rate_per_second: 1_000_000,
        rate_burst: 1_000_000,
        static_dir: Some(std::path::PathBuf::from("/nonexistent/tabchain-relay-test")),
        ..Config::default()
    }
}

/// The relay binary, started on a free port with `--static-dir /nonexistent` and the given flags;
/// killed when dropped.
pub struct RelayProcess {
    child: std::process::Child,
    pub addr: SocketAddr,
}

impl RelayProcess {
    pub async fn start(extra: &[&str]) -> RelayProcess {
        RelayProcess::start_on(0, extra).await
    }

    /// The same on `port` (0: any free one), e.g. to restart a relay where its clients were.
    pub async fn start_on(port: u16, extra: &[&str]) -> RelayProcess {
        let port = port.to_string();
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_relay"))
            .args(["--port", port.as_str(), "--static-dir", "/nonexistent"])
            .args(extra)
            .env("RUST_LOG", "warn")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("the relay binary starts");
        let addr = printed_address(&mut child).await;
        RelayProcess { child, addr }
    }

    pub async fn metrics(&self) -> String {
        http_get(self.addr, "/metrics").await.body
    }

    /// Its resident set size, from /proc: the allocator's and the kernel's view of its memory.
    pub fn rss_mib(&self) -> f64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        let kib: f64 = status
            .lines()
            .find_map(|line| line.strip_prefix("VmRSS:"))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|kib| kib.parse().ok())
            .expect("VmRSS in /proc/PID/status");
        kib / 1024.0
    }

    /// Connects to `/ws/{room}` and reads the welcome.
    pub async fn join(&self, room: &str) -> Client {
        let (ws, _) = timeout(
            WAIT,
            tokio_tungstenite::connect_async(format!("ws://{}/ws/{room}", self.addr)),
        )
        .await
        .expect("connect timed out")
        .expect("handshake");
        Client::welcomed(ws).await
    }

    /// The URLs of the `welcome`'s `ice_servers` a new joiner gets.
    pub async fn welcome_ice_urls(&self) -> Vec<String> {
        let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{}/ws/stun", self.addr))
            .await
            .expect("a WebSocket");
        let RelayFrame::Welcome { ice_servers, .. } = next_frame(&mut ws).await else {
            panic!("no welcome");
        };
        ice_servers
            .into_iter()
            .flat_map(|server| server.urls)
            .collect()
    }
}

impl Drop for RelayProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Opens a WebSocket by hand from the local address `from`, on a socket with a small receive
/// window, and returns the raw stream once the handshake is answered (nothing after it is read).
pub async fn raw_websocket_from(from: &str, addr: &SocketAddr, room: &str) -> TcpStream {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    socket
        .bind(SocketAddr::new(from.parse().unwrap(), 0))
        .unwrap();
    let mut stream = socket.connect(*addr).await.unwrap();
    let request = format!(
        "GET /ws/{room} HTTP/1.1\r\nHost: {addr}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
         Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut byte = [0u8; 1];
        stream.read_exact(&mut byte).await.unwrap();
        head.push(byte[0]);
    }
    assert!(
        head.starts_with(b"HTTP/1.1 101"),
        "{}",
        String::from_utf8_lossy(&head)
    );
    stream
}

/// A client of `room` whose socket comes from the local address `from`, welcomed.
pub async fn client_from(from: &str, addr: &SocketAddr, room: &str) -> Client {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket
        .bind(SocketAddr::new(from.parse().unwrap(), 0))
        .unwrap();
    let stream = socket.connect(*addr).await.unwrap();
    let (ws, _) = timeout(
        WAIT,
        tokio_tungstenite::client_async_with_config(
            format!("ws://{addr}/ws/{room}"),
            MaybeTlsStream::Plain(stream),
            None,
        ),
    )
    .await
    .expect("handshake timed out")
    .expect("handshake");
    Client::welcomed(ws).await
}

/// The address a relay binary prints first on stdout (`tabchain relay listening; open http://…/`).
pub async fn printed_address(child: &mut std::process::Child) -> SocketAddr {
    let stdout = child.stdout.take().expect("the relay's stdout is piped");
    let line = tokio::task::spawn_blocking(move || {
        use std::io::BufRead;
        let mut line = String::new();
        std::io::BufReader::new(stdout)
            .read_line(&mut line)
            .unwrap();
        line
    });
    let line = timeout(WAIT, line)
        .await
        .expect("the relay printed its address in time")
        .unwrap();
    line.trim()
        .strip_prefix("tabchain relay listening; open http://")
        .and_then(|rest| rest.strip_suffix('/'))
        .unwrap_or_else(|| panic!("unexpected first line: {line:?}"))
        .parse()
        .expect("an address")
}
