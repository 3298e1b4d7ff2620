//! Everything the relay can be told at startup, with the reason behind every default.
//!
//! [`Config`] is what [`crate::run`] needs; [`Cli`] adds what only the binary needs (where to listen,
//! how to log). Both read flags and environment variables through `clap`, and every default is a
//! named constant here so tests, docs and `--help` agree.

use clap::{Args, Parser};
use shared::protocol::{IceServer, ENVELOPE_ALLOWANCE_BYTES};
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;
use thiserror::Error;

/// The port `cargo xtask run` and the web app's dev proxy expect.
pub const DEFAULT_PORT: u16 = 3030;
/// Loopback by default: a relay is reachable from other machines only when someone asks for it.
pub const DEFAULT_ADDR: &str = "127.0.0.1";
/// Where `cargo xtask build-web` writes the web app; served when no `--static-dir` is given and
/// the binary has no app inside (see `app.rs`).
pub const DEFAULT_STATIC_DIR: &str = "dist";
/// The largest WebSocket message a peer may send. A full block is at most about 500 KB as JSON,
/// so the protocol-wide 1 MiB limit fits any block with room for the envelope.
pub const DEFAULT_MAX_FRAME_BYTES: usize = shared::protocol::MAX_FRAME_BYTES;
/// Every broadcast is copied to every other peer of a room, so a room's cost grows with the square
/// of its size: 256 peers each sending 10 messages a second is about 650k deliveries a second,
/// around what one core forwards.
pub const DEFAULT_MAX_PEERS_PER_ROOM: usize = 256;
/// An idle connection costs the relay under 16 KiB (13.6 KiB measured, BENCHMARKS.md, "Relay
/// (relay/)"), so 10,000 of them fit in about 160 MiB; it also matches a common `LimitNOFILE` once raised for the
/// service. Every socket counts, plain HTTP included.
pub const DEFAULT_MAX_CONNECTIONS: usize = 10_000;
/// Sockets one client address may hold (IPv6: one /64). A school behind one NAT address is the
/// case to fit: four classrooms of 30 pupils with two tabs each are 240 WebSockets, and each page
/// load opens up to 6 HTTP connections for a moment; 512 leaves twice that. One address still
/// cannot take more than a twentieth of the default relay.
pub const DEFAULT_MAX_CONNECTIONS_PER_ADDRESS: usize = 512;
/// Joins per second into one room, and at once. Every member answers a join with a `hello`, which
/// counts against that member's own rate limit (200 a second, bursts of 400): keeping joins to
/// 20 a second, bursts of 128, keeps those answers well inside it however many clients flood
/// the room. A full room of 256 that reconnects after a restart is back within about 7 s from
/// many addresses, about 10 s from one (`admission::ROOM_AT_EASE_FRACTION`).
pub const DEFAULT_JOIN_RATE_PER_ROOM: u32 = 20;
pub const DEFAULT_JOIN_BURST_PER_ROOM: u32 = 128;
/// Joins per second from one client address, and at once, into any rooms: a classroom behind one
/// NAT opening its tabs together fits in the burst; one client spraying joins over many rooms
/// does not get further.
pub const DEFAULT_JOIN_RATE_PER_ADDRESS: u32 = 20;
pub const DEFAULT_JOIN_BURST_PER_ADDRESS: u32 = 128;
/// Messages waiting for one peer. A full room of 100 peers each sending 10 messages a second
/// produces 1,000 messages a second for every member; 1,024 lets a tab stall for about a second
/// (a garbage collection, a throttled background tab) before it is called a slow consumer.
pub const DEFAULT_PEER_QUEUE_MESSAGES: usize = 1_024;
/// Bytes a peer may send per second on average, next to the message rate (a burst of 400
/// messages of 1 MiB would otherwise be 400 MiB). 4 MiB/s is below the 10 MB/s a modest reader
/// takes, so one sender within its limits can never outrun such a reader; an honest node sends
/// far less (a whole 10,000-block sync is about 7 MB).
pub const DEFAULT_BYTE_RATE_PER_SECOND: u64 = 4 * 1024 * 1024;
/// Bytes a peer may send at once: eight maximum-size messages with their framing, so a node
/// answering a sync can send its replies without waiting, and a whole 8,000-block sync (about
/// 6 MB) passes in one burst.
pub const DEFAULT_BYTE_BURST: u64 = 8 * (DEFAULT_MAX_FRAME_BYTES + ENVELOPE_ALLOWANCE_BYTES) as u64;
/// Bytes waiting for one peer: one sender's whole byte burst, plus two maximum-size messages with
/// their envelope, so a reader that drains at least as fast as the byte rate is never cut off by a
/// sender within its limits (the burst arrives at once; the two extra messages are the one being
/// written and the gossip that arrives meanwhile). Frames are shared between receivers, so this
/// is the bound of one reader, not memory the relay holds per reader.
pub const DEFAULT_PEER_QUEUE_BYTES: usize =
    DEFAULT_BYTE_BURST as usize + 2 * (DEFAULT_MAX_FRAME_BYTES + ENVELOPE_ALLOWANCE_BYTES);
/// Frames a peer may send per second on average: data frames, pings and pongs alike. A node
/// gossips a few messages per block and per transaction; a syncing node sends one request per
/// reply of 64 blocks, which on one machine (10,000 blocks a second natively) is about 160 a
/// second. 200 leaves room for that while one peer still cannot drive the relay's CPU alone (a
/// delivery costs about 1 µs).
pub const DEFAULT_RATE_PER_SECOND: u32 = 200;
/// Frames a peer may send at once: a freshly joined node says hello, asks for headers and answers
/// several peers at the same moment; a whole 10,000-block sync is about 180 frames.
pub const DEFAULT_RATE_BURST: u32 = 400;
/// Frames dropped for rate within one [`crate::rate::FLOOD_WINDOW`] before the peer is
/// disconnected: an honest client backs off after its first `rate_limited` error; one that keeps
/// sending at twice its allowance for the whole window is flooding.
pub const DEFAULT_FLOOD_DROPS_BEFORE_DISCONNECT: u32 = 500;
/// Malformed frames before a peer is disconnected. A correct client sends none, so a few are
/// forgiven (a bug during development) and a stream of garbage is cut off early.
pub const DEFAULT_MAX_MALFORMED_FRAMES: u32 = 10;
/// Browsers answer pings by themselves; 25 s is below the 30 s-60 s idle cut-off of common proxies
/// and load balancers, so the ping also keeps those from closing a quiet connection.
pub const DEFAULT_PING_INTERVAL: Duration = Duration::from_secs(25);
/// A peer that has not answered a ping for two ping intervals plus slack is gone, or does not
/// read: only a pong (or a message) proves it is there, and only a pong proves it reads. Its own
/// pings prove nothing, so they do not keep it connected.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// Longest a message may take to arrive once its first byte is in: while it arrives it holds up to
/// `--max-frame-bytes` of the relay's memory. 30 s lets a 1 MiB message through an uplink of
/// 35 KB/s; a client that starts a message and stalls is cut off.
pub const DEFAULT_MESSAGE_TIMEOUT: Duration = Duration::from_secs(30);
/// Longest a plain HTTP connection lives (request headers, body, response). The web app is about
/// 360 KB gzipped, which takes seconds on any link that can run a node; a client that asks for a
/// file and never reads it gives its socket back after this.
pub const DEFAULT_HTTP_TIMEOUT: Duration = Duration::from_secs(30);
/// Bytes of messages being received, all connections together (see `budget`). 256 MiB lets 256
/// maximum-size messages arrive at once, far more than honest traffic has in flight; past it,
/// readers wait for messages to complete or time out, so 10,000 connections each half-way through
/// a 1 MiB message cost 256 MiB, not 10 GiB.
pub const DEFAULT_MESSAGE_MEMORY_BYTES: usize = 256 * 1024 * 1024;
/// Bytes of forwarded frames waiting in queues, all connections together (a frame shared by many
/// receivers counts once). 512 MiB holds the whole byte burst of 60 senders at once; past it,
/// senders are refused (`rate_limited`) until readers drain.
pub const DEFAULT_QUEUE_MEMORY_BYTES: usize = 512 * 1024 * 1024;
/// Proxies whose `X-Forwarded-For` names the client: loopback, where the recommended Caddy or
/// nginx runs. Their own address is then not limited per address, the forwarded one is.
pub const DEFAULT_TRUSTED_PROXIES: &str = "127.0.0.1,::1";
/// Who may read `/metrics`: this machine.
pub const DEFAULT_METRICS_ALLOW: &str = "127.0.0.1,::1";

/// STUN/TURN URLs the relay hands to tabs. Each is up to [`MAX_ICE_URL_BYTES`] in every
/// joiner's `welcome`, so both are bounded: a handful of servers is all a deployment uses.
pub const MAX_ICE_SERVERS: usize = 8;
pub const MAX_ICE_URL_BYTES: usize = 256;
/// Longest TURN username or credential (coturn's time-limited ones are under 100 bytes).
pub const MAX_ICE_CREDENTIAL_BYTES: usize = 256;

/// The scheme of an ICE server URL.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IceScheme {
    Stun,
    Turn,
    Turns,
}

/// A `stun:`, `turn:` or `turns:` URL (RFC 7064, RFC 7065) that passed [`IceUrl::parse`]:
/// `stun:host[:port]`, `turn:host[:port][?transport=udp|tcp]`, `turns:` like `turn:`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IceUrl {
    text: String,
    scheme: IceScheme,
}

impl IceUrl {
    /// Checks what a browser's `RTCPeerConnection` would refuse (it throws on a bad URL and the
    /// tab would have no direct links at all), with a message that says what is wrong.
    pub fn parse(text: &str) -> Result<IceUrl, String> {
        let refuse = |why: &str| Err(format!("`{text}` is not a usable ICE server URL: {why}"));
        if text.len() > MAX_ICE_URL_BYTES {
            return refuse(&format!("longer than {MAX_ICE_URL_BYTES} bytes"));
        }
        let (scheme, rest) = match text.split_once(':') {
            Some(("stun", rest)) => (IceScheme::Stun, rest),
            Some(("turn", rest)) => (IceScheme::Turn, rest),
            Some(("turns", rest)) => (IceScheme::Turns, rest),
            _ => return refuse("it must begin with stun:, turn: or turns: (lowercase)"),
        };
        if rest.starts_with("//") {
            return refuse("write stun:host:port, without `//`");
        }
        if !rest
            .bytes()
            .all(|byte| byte.is_ascii_graphic() && byte != b',')
        {
            return refuse("spaces, commas and non-ASCII characters are not allowed");
        }
        let (address, query) = match rest.split_once('?') {
            Some((address, query)) => (address, Some(query)),
            None => (rest, None),
        };
        match (scheme, query) {
            (_, None) => {}
            (IceScheme::Stun, Some(_)) => return refuse("a stun: URL takes no `?` part"),
            (_, Some("transport=udp" | "transport=tcp")) => {}
            (_, Some(_)) => {
                return refuse(
                    "the only query a TURN URL takes is ?transport=udp or ?transport=tcp",
                )
            }
        }
        let (host, port) = if let Some(bracketed) = address.strip_prefix('[') {
            match bracketed.split_once(']') {
                Some((host, "")) => (host, None),
                Some((host, port)) => match port.strip_prefix(':') {
                    Some(port) => (host, Some(port)),
                    None => {
                        return refuse(
                            "an IPv6 address in brackets is followed by :port or nothing",
                        )
                    }
                },
                None => return refuse("an IPv6 address needs its closing `]`"),
            }
        } else {
            match address.rsplit_once(':') {
                Some((host, port)) => (host, Some(port)),
                None => (address, None),
            }
        };
        if host.is_empty() || host.contains(['/', '@', '[', ']']) {
            return refuse("it needs a host name or address");
        }
        if let Some(port) = port {
            if !port.parse::<u16>().is_ok_and(|port| port != 0) {
                return refuse("the port must be a number from 1 to 65535");
            }
        }
        Ok(IceUrl {
            text: text.to_owned(),
            scheme,
        })
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// TURN (`turn:` or `turns:`) needs a username and credential; STUN none.
    pub fn is_turn(&self) -> bool {
        self.scheme != IceScheme::Stun
    }
}

/// Limits and paths of the relay: everything [`crate::run`] needs.
#[derive(Args, Clone, Debug)]
pub struct Config {
    /// Directory with the built web app (`cargo xtask build-web` writes `dist`). Without it, the
    /// relay serves the app built into it (`cargo xtask dist`), or else `dist`.
    #[arg(long, env = "STATIC_DIR")]
    pub static_dir: Option<PathBuf>,

    /// Origins (e.g. https://chain.example.org) allowed to open WebSockets. Repeat the flag or
    /// separate with commas. Empty (the default) allows every origin. Requests without an Origin
    /// header (native nodes, tests) are always allowed: the check guards browsers only.
    #[arg(
        long = "allowed-origin",
        env = "ALLOWED_ORIGINS",
        value_delimiter = ',',
        value_name = "ORIGIN"
    )]
    pub allowed_origins: Vec<String>,

    /// Largest WebSocket message a peer may send; bigger ones close the connection with 1009.
    #[arg(long, env = "MAX_FRAME_BYTES", default_value_t = DEFAULT_MAX_FRAME_BYTES)]
    pub max_frame_bytes: usize,

    /// Peers allowed in one room; the next one gets `room_full`.
    #[arg(long, env = "MAX_PEERS_PER_ROOM", default_value_t = DEFAULT_MAX_PEERS_PER_ROOM)]
    pub max_peers_per_room: usize,

    /// Sockets (WebSocket and plain HTTP) open at once; the next WebSocket gets `server_full`.
    #[arg(long, env = "MAX_CONNECTIONS", default_value_t = DEFAULT_MAX_CONNECTIONS)]
    pub max_connections: usize,

    /// Sockets one client address (IPv6: one /64) may hold at once.
    #[arg(long, env = "MAX_CONNECTIONS_PER_ADDRESS", default_value_t = DEFAULT_MAX_CONNECTIONS_PER_ADDRESS)]
    pub max_connections_per_address: usize,

    /// Joins per second into one room (token bucket refill rate).
    #[arg(long, env = "JOIN_RATE_PER_ROOM", default_value_t = DEFAULT_JOIN_RATE_PER_ROOM)]
    pub join_rate_per_room: u32,

    /// Joins into one room at once (token bucket size).
    #[arg(long, env = "JOIN_BURST_PER_ROOM", default_value_t = DEFAULT_JOIN_BURST_PER_ROOM)]
    pub join_burst_per_room: u32,

    /// Joins per second from one client address.
    #[arg(long, env = "JOIN_RATE_PER_ADDRESS", default_value_t = DEFAULT_JOIN_RATE_PER_ADDRESS)]
    pub join_rate_per_address: u32,

    /// Joins from one client address at once.
    #[arg(long, env = "JOIN_BURST_PER_ADDRESS", default_value_t = DEFAULT_JOIN_BURST_PER_ADDRESS)]
    pub join_burst_per_address: u32,

    /// Proxies trusted to name the client in `X-Forwarded-For` (comma-separated addresses).
    #[arg(
        long = "trusted-proxy",
        env = "TRUSTED_PROXIES",
        value_delimiter = ',',
        default_value = DEFAULT_TRUSTED_PROXIES,
        value_name = "ADDRESS"
    )]
    pub trusted_proxies: Vec<IpAddr>,

    /// Addresses that may read `/metrics` (comma-separated); others get 404. This machine by
    /// default, so `--lan` does not open the counters to the local network; a proxy in front
    /// connects from loopback, so the proxy configurations in `deploy/` refuse `/metrics` to
    /// the outside themselves.
    #[arg(
        long = "metrics-allow",
        env = "METRICS_ALLOW",
        value_delimiter = ',',
        default_value = DEFAULT_METRICS_ALLOW,
        value_name = "ADDRESS"
    )]
    pub metrics_allow: Vec<IpAddr>,

    /// Messages that may wait for one peer before it is disconnected as a slow consumer.
    #[arg(long, env = "PEER_QUEUE_MESSAGES", default_value_t = DEFAULT_PEER_QUEUE_MESSAGES)]
    pub peer_queue_messages: usize,

    /// Bytes that may wait for one peer before it is disconnected as a slow consumer.
    /// Must be at least --max-frame-bytes plus 1 KiB so the largest message can be delivered.
    #[arg(long, env = "PEER_QUEUE_BYTES", default_value_t = DEFAULT_PEER_QUEUE_BYTES)]
    pub peer_queue_bytes: usize,

    /// Bytes per second a peer may send on average, next to the frame rate.
    #[arg(long, env = "BYTE_RATE_PER_SECOND", default_value_t = DEFAULT_BYTE_RATE_PER_SECOND)]
    pub byte_rate_per_second: u64,

    /// Bytes a peer may send at once. At least --max-frame-bytes.
    #[arg(long, env = "BYTE_BURST", default_value_t = DEFAULT_BYTE_BURST)]
    pub byte_burst: u64,

    /// Bytes of messages being received, all connections together.
    #[arg(long, env = "MESSAGE_MEMORY_BYTES", default_value_t = DEFAULT_MESSAGE_MEMORY_BYTES)]
    pub message_memory_bytes: usize,

    /// Bytes of forwarded frames waiting in queues, all connections together.
    #[arg(long, env = "QUEUE_MEMORY_BYTES", default_value_t = DEFAULT_QUEUE_MEMORY_BYTES)]
    pub queue_memory_bytes: usize,

    /// Frames per second a peer may send on average (token bucket refill rate).
    #[arg(long, env = "RATE_PER_SECOND", default_value_t = DEFAULT_RATE_PER_SECOND)]
    pub rate_per_second: u32,

    /// Frames a peer may send in a burst (token bucket size).
    #[arg(long, env = "RATE_BURST", default_value_t = DEFAULT_RATE_BURST)]
    pub rate_burst: u32,

    /// Rate-limited frames within 10 s after which the peer is disconnected.
    #[arg(long, env = "FLOOD_DROPS_BEFORE_DISCONNECT", default_value_t = DEFAULT_FLOOD_DROPS_BEFORE_DISCONNECT)]
    pub flood_drops_before_disconnect: u32,

    /// Malformed frames after which the peer is disconnected (`too_many_errors`).
    #[arg(long, env = "MAX_MALFORMED_FRAMES", default_value_t = DEFAULT_MAX_MALFORMED_FRAMES)]
    pub max_malformed_frames: u32,

    /// Seconds without a pong or a message after which a peer is disconnected (its own pings do
    /// not count). Fractions are allowed (0.5).
    #[arg(long = "idle-timeout-secs", env = "IDLE_TIMEOUT_SECS", default_value = "60", value_parser = parse_seconds)]
    pub idle_timeout: Duration,

    /// Seconds between the relay's pings to each peer. Fractions are allowed.
    #[arg(long = "ping-interval-secs", env = "PING_INTERVAL_SECS", default_value = "25", value_parser = parse_seconds)]
    pub ping_interval: Duration,

    /// Seconds a message may take to arrive once it has begun. Fractions are allowed.
    #[arg(long = "message-timeout-secs", env = "MESSAGE_TIMEOUT_SECS", default_value = "30", value_parser = parse_seconds)]
    pub message_timeout: Duration,

    /// Seconds a plain HTTP connection may live (headers, body and response). Fractions allowed.
    #[arg(long = "http-timeout-secs", env = "HTTP_TIMEOUT_SECS", default_value = "30", value_parser = parse_seconds)]
    pub http_timeout: Duration,

    /// STUN or TURN server handed to tabs in `welcome` for their direct WebRTC links
    /// (stun:host:port, turn:host:port?transport=udp, turns:host:port). Repeat the flag or
    /// separate with commas. None by default: the relay's own STUN server (--stun-port) serves
    /// tabs behind ordinary home routers; routers that pick random ports need a TURN server.
    /// See docs/deploy.md, "Direct links between tabs".
    #[arg(
        long = "ice-server",
        env = "ICE_SERVERS",
        value_delimiter = ',',
        value_name = "URL",
        value_parser = IceUrl::parse
    )]
    pub ice_servers: Vec<IceUrl>,

    /// UDP port of the relay's own STUN server, which every `welcome` names first (as
    /// stun:<the host the tab used>:<port>) so tabs behind home routers learn their public
    /// address and link directly. Default: the same number as the HTTP port. Open it for UDP in
    /// a firewall. See docs/deploy.md, "Direct links between tabs".
    #[arg(long = "stun-port", env = "STUN_PORT", value_name = "PORT")]
    pub stun_port: Option<u16>,

    /// Do not answer STUN (and name no STUN server of the relay's own in `welcome`).
    #[arg(long = "no-stun", env = "NO_STUN", conflicts_with = "stun_port")]
    pub no_stun: bool,

    /// Username for the turn: and turns: servers (not for stun:).
    #[arg(long, env = "ICE_USERNAME", value_name = "NAME")]
    pub ice_username: Option<String>,

    /// Credential (password) for the turn: and turns: servers. Every tab that connects is
    /// given it: use a TURN account meant for this, with quotas.
    #[arg(long, env = "ICE_CREDENTIAL", value_name = "SECRET")]
    pub ice_credential: Option<String>,

    /// NATS broker (e.g. nats://127.0.0.1:4222) through which rooms span every relay connected
    /// to it. Unset (the default): rooms live in this process only. See docs/deploy.md.
    #[arg(long = "nats-url", env = "NATS_URL", value_name = "URL")]
    pub nats_url: Option<String>,

    /// The URLs phones on the local network can open (`--lan`), served at `/lan.json` so a tab
    /// opened as 127.0.0.1 shows one of them in its "Join this room" QR code. Filled by the
    /// binary from the machine's interfaces once it listens; empty otherwise.
    #[arg(skip)]
    pub lan_urls: Vec<String>,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            static_dir: None,
            allowed_origins: Vec::new(),
            max_frame_bytes: DEFAULT_MAX_FRAME_BYTES,
            max_peers_per_room: DEFAULT_MAX_PEERS_PER_ROOM,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            max_connections_per_address: DEFAULT_MAX_CONNECTIONS_PER_ADDRESS,
            join_rate_per_room: DEFAULT_JOIN_RATE_PER_ROOM,
            join_burst_per_room: DEFAULT_JOIN_BURST_PER_ROOM,
            join_rate_per_address: DEFAULT_JOIN_RATE_PER_ADDRESS,
            join_burst_per_address: DEFAULT_JOIN_BURST_PER_ADDRESS,
            metrics_allow: DEFAULT_METRICS_ALLOW
                .split(',')
                .map(|address| address.parse().expect("a valid default address"))
                .collect(),
            trusted_proxies: DEFAULT_TRUSTED_PROXIES
                .split(',')
                .map(|address| address.parse().expect("a valid default address"))
                .collect(),
            byte_rate_per_second: DEFAULT_BYTE_RATE_PER_SECOND,
            byte_burst: DEFAULT_BYTE_BURST,
            message_memory_bytes: DEFAULT_MESSAGE_MEMORY_BYTES,
            queue_memory_bytes: DEFAULT_QUEUE_MEMORY_BYTES,
            peer_queue_messages: DEFAULT_PEER_QUEUE_MESSAGES,
            peer_queue_bytes: DEFAULT_PEER_QUEUE_BYTES,
            rate_per_second: DEFAULT_RATE_PER_SECOND,
            rate_burst: DEFAULT_RATE_BURST,
            flood_drops_before_disconnect: DEFAULT_FLOOD_DROPS_BEFORE_DISCONNECT,
            max_malformed_frames: DEFAULT_MAX_MALFORMED_FRAMES,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            ping_interval: DEFAULT_PING_INTERVAL,
            message_timeout: DEFAULT_MESSAGE_TIMEOUT,
            http_timeout: DEFAULT_HTTP_TIMEOUT,
            ice_servers: Vec::new(),
            stun_port: None,
            no_stun: false,
            ice_username: None,
            ice_credential: None,
            nats_url: None,
            lan_urls: Vec::new(),
        }
    }
}

/// A configuration the relay refuses to start with.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("{0} must be greater than zero")]
    Zero(&'static str),
    #[error(
        "--peer-queue-bytes ({queue}) must be at least --max-frame-bytes ({frame}) + {ENVELOPE_ALLOWANCE_BYTES}, \
         or the largest allowed message could never be delivered"
    )]
    QueueSmallerThanFrame { queue: usize, frame: usize },
    #[error("--ping-interval-secs must be shorter than --idle-timeout-secs, or quiet but live peers are cut off")]
    PingNotBeforeIdle,
    #[error("--rate-burst must be at least 1")]
    NoBurst,
    #[error(
        "--byte-burst ({burst}) must be at least --max-frame-bytes ({frame}), \
         or the largest allowed message could never be sent"
    )]
    ByteBurstSmallerThanFrame { burst: u64, frame: usize },
    #[error(
        "--message-memory-bytes and --queue-memory-bytes must each be at least --max-frame-bytes \
         + {ENVELOPE_ALLOWANCE_BYTES}, or the largest allowed message could never pass"
    )]
    BudgetSmallerThanFrame,
    #[error("at most {MAX_ICE_SERVERS} --ice-server URLs, {0} given")]
    TooManyIceServers(usize),
    #[error(
        "a turn: or turns: --ice-server needs both --ice-username and --ice-credential \
         (browsers refuse a TURN server without them)"
    )]
    TurnWithoutCredentials,
    #[error(
        "--ice-username and --ice-credential are for turn: or turns: servers, and none is given"
    )]
    IceCredentialsWithoutTurn,
    #[error(
        "--ice-username and --ice-credential are at most {MAX_ICE_CREDENTIAL_BYTES} bytes each"
    )]
    IceCredentialTooLong,
}

impl Config {
    /// Checks the limits fit together; [`crate::run`] calls it before serving.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let nonzero = [
            ("--max-frame-bytes", self.max_frame_bytes),
            ("--max-peers-per-room", self.max_peers_per_room),
            ("--max-connections", self.max_connections),
            (
                "--max-connections-per-address",
                self.max_connections_per_address,
            ),
            ("--join-rate-per-room", self.join_rate_per_room as usize),
            ("--join-burst-per-room", self.join_burst_per_room as usize),
            (
                "--join-rate-per-address",
                self.join_rate_per_address as usize,
            ),
            (
                "--join-burst-per-address",
                self.join_burst_per_address as usize,
            ),
            ("--byte-rate-per-second", self.byte_rate_per_second as usize),
            ("--peer-queue-messages", self.peer_queue_messages),
            ("--rate-per-second", self.rate_per_second as usize),
            ("--max-malformed-frames", self.max_malformed_frames as usize),
        ];
        if let Some((name, _)) = nonzero.iter().find(|(_, value)| *value == 0) {
            return Err(ConfigError::Zero(name));
        }
        if self.rate_burst == 0 {
            return Err(ConfigError::NoBurst);
        }
        if self.idle_timeout.is_zero() {
            return Err(ConfigError::Zero("--idle-timeout-secs"));
        }
        let durations = [
            ("--ping-interval-secs", self.ping_interval),
            ("--message-timeout-secs", self.message_timeout),
            ("--http-timeout-secs", self.http_timeout),
        ];
        if let Some((name, _)) = durations.iter().find(|(_, value)| value.is_zero()) {
            return Err(ConfigError::Zero(name));
        }
        let smallest_budget = self.message_memory_bytes.min(self.queue_memory_bytes);
        if smallest_budget < self.max_frame_bytes + ENVELOPE_ALLOWANCE_BYTES {
            return Err(ConfigError::BudgetSmallerThanFrame);
        }
        if self.byte_burst < self.max_frame_bytes as u64 {
            return Err(ConfigError::ByteBurstSmallerThanFrame {
                burst: self.byte_burst,
                frame: self.max_frame_bytes,
            });
        }
        if self.peer_queue_bytes < self.max_frame_bytes + ENVELOPE_ALLOWANCE_BYTES {
            return Err(ConfigError::QueueSmallerThanFrame {
                queue: self.peer_queue_bytes,
                frame: self.max_frame_bytes,
            });
        }
        if self.ping_interval >= self.idle_timeout {
            return Err(ConfigError::PingNotBeforeIdle);
        }
        self.validate_ice()
    }

    fn validate_ice(&self) -> Result<(), ConfigError> {
        if self.ice_servers.len() > MAX_ICE_SERVERS {
            return Err(ConfigError::TooManyIceServers(self.ice_servers.len()));
        }
        let credentials = [&self.ice_username, &self.ice_credential];
        if credentials.iter().any(|value| {
            value
                .as_ref()
                .is_some_and(|value| value.len() > MAX_ICE_CREDENTIAL_BYTES)
        }) {
            return Err(ConfigError::IceCredentialTooLong);
        }
        let has_turn = self.ice_servers.iter().any(IceUrl::is_turn);
        let complete = credentials.iter().all(|value| value.is_some());
        let any = credentials.iter().any(|value| value.is_some());
        if has_turn && !complete {
            return Err(ConfigError::TurnWithoutCredentials);
        }
        if !has_turn && any {
            return Err(ConfigError::IceCredentialsWithoutTurn);
        }
        Ok(())
    }

    /// The `ice_servers` of every `welcome`: one entry with the STUN URLs, one with the TURN URLs
    /// and their credentials; none when no server is configured.
    pub fn welcome_ice_servers(&self) -> Vec<IceServer> {
        let urls = |turn: bool| -> Vec<String> {
            self.ice_servers
                .iter()
                .filter(|url| url.is_turn() == turn)
                .map(|url| url.as_str().to_owned())
                .collect()
        };
        let mut servers = Vec::new();
        let stun = urls(false);
        if !stun.is_empty() {
            servers.push(IceServer {
                urls: stun,
                username: None,
                credential: None,
            });
        }
        let turn = urls(true);
        if !turn.is_empty() {
            servers.push(IceServer {
                urls: turn,
                username: self.ice_username.clone(),
                credential: self.ice_credential.clone(),
            });
        }
        servers
    }
}

/// The relay binary's command line: where to listen and how to log, plus the [`Config`].
#[derive(Parser, Debug)]
#[command(
    name = "relay",
    version,
    about = "tabchain relay: WebSocket rooms and the web app"
)]
pub struct Cli {
    /// Address to listen on. Keep 127.0.0.1 behind a reverse proxy on the same host; use 0.0.0.0
    /// to accept connections from other machines directly.
    #[arg(long = "addr", env = "RELAY_ADDR", default_value = DEFAULT_ADDR)]
    pub addr: IpAddr,

    /// TCP port to listen on.
    #[arg(long, env = "PORT", default_value_t = DEFAULT_PORT)]
    pub port: u16,

    /// For a classroom: listen on every interface (0.0.0.0, whatever --addr says), print the
    /// addresses phones on the same network can open, and tell the page them (`/lan.json`)
    /// for its QR code. `cargo xtask run --lan`.
    #[arg(long, env = "RELAY_LAN")]
    pub lan: bool,

    /// Log one JSON object per line (for journald or a log shipper) instead of text.
    #[arg(long, env = "LOG_JSON")]
    pub log_json: bool,

    #[command(flatten)]
    pub config: Config,
}

impl Cli {
    /// Where to listen: `--addr`, or every interface with `--lan`.
    pub fn listen_addr(&self) -> IpAddr {
        if self.lan {
            IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED)
        } else {
            self.addr
        }
    }
}

/// Interface names that are not the room's network: VPNs, containers, virtual machines. Their
/// addresses would put a URL that no phone on the Wi-Fi can open into the page's QR code.
const NOT_LAN_INTERFACES: [&str; 16] = [
    "docker",
    "br-",
    "veth",
    "virbr",
    "vnet",
    "tun",
    "tap",
    "wg",
    "tailscale",
    "zt",
    "lxc",
    "lxd",
    "cni",
    "flannel",
    "vboxnet",
    "vmnet",
];

/// The URLs a machine on the same network opens to reach a relay on `port`: one per IPv4
/// address of this machine's interfaces (name, address) that is on a network. Left out:
/// loopback; link-local 169.254.x.x (what an interface without a network gets); the shared
/// address space 100.64.0.0/10 (carrier NAT, Tailscale); and interfaces of VPNs, containers and
/// virtual machines ([`NOT_LAN_INTERFACES`]). Sorted, so private addresses (192.168, 10, 172.16)
/// come in a stable order.
pub fn lan_urls(interfaces: &[(String, IpAddr)], port: u16) -> Vec<String> {
    let mut v4: Vec<std::net::Ipv4Addr> = interfaces
        .iter()
        .filter(|(name, _)| {
            !NOT_LAN_INTERFACES
                .iter()
                .any(|prefix| name.starts_with(prefix))
        })
        .filter_map(|(_, address)| match address {
            IpAddr::V4(v4) => Some(*v4),
            IpAddr::V6(_) => None,
        })
        .filter(|v4| {
            let carrier_nat = v4.octets()[0] == 100 && (v4.octets()[1] & 0xc0) == 64;
            !(v4.is_loopback() || v4.is_link_local() || v4.is_unspecified() || carrier_nat)
        })
        .collect();
    v4.sort();
    v4.dedup();
    v4.into_iter()
        .map(|address| format!("http://{address}:{port}/"))
        .collect()
}

/// Parses seconds, with an optional fraction (`25`, `0.5`), into a duration.
fn parse_seconds(text: &str) -> Result<Duration, String> {
    let seconds: f64 = text
        .trim()
        .parse()
        .map_err(|_| format!("`{text}` is not a number of seconds"))?;
    Duration::try_from_secs_f64(seconds).map_err(|_| format!("`{text}` is not a usable duration"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_match_the_command_line() {
        let from_cli = Cli::parse_from(["relay"]);
        let defaults = Config::default();
        assert_eq!(defaults.validate(), Ok(()));
        assert_eq!(from_cli.port, DEFAULT_PORT);
        assert_eq!(from_cli.addr.to_string(), DEFAULT_ADDR);
        assert_eq!(format!("{:?}", from_cli.config), format!("{defaults:?}"));
    }

    #[test]
    fn lan_mode_listens_everywhere_and_lists_only_reachable_addresses() {
        let lan = Cli::parse_from(["relay", "--lan", "--addr", "127.0.0.1"]);
        assert_eq!(lan.listen_addr().to_string(), "0.0.0.0");
        assert_eq!(
            Cli::parse_from(["relay"]).listen_addr().to_string(),
            DEFAULT_ADDR
        );
        let interfaces: Vec<(String, IpAddr)> = [
            ("lo", "127.0.0.1"),
            ("wlan0", "192.168.1.20"),
            ("eth0", "10.0.0.4"),
            ("eth1", "169.254.3.3"),
            ("lo", "::1"),
            ("wlan0", "fe80::1"),
            ("wlan0", "192.168.1.20"),
            // Not the room's network: a VPN, containers, a carrier NAT address.
            ("tailscale0", "100.101.1.2"),
            ("wg0", "10.8.0.1"),
            ("docker0", "172.17.0.1"),
            ("br-1a2b3c", "172.18.0.1"),
            ("eth2", "100.64.0.7"),
        ]
        .iter()
        .map(|(name, text)| (name.to_string(), text.parse().unwrap()))
        .collect();
        assert_eq!(
            lan_urls(&interfaces, 3030),
            vec!["http://10.0.0.4:3030/", "http://192.168.1.20:3030/"]
        );
        assert!(lan_urls(&[("lo".into(), "127.0.0.1".parse().unwrap())], 3030).is_empty());
    }

    #[test]
    fn flags_override_defaults() {
        let cli = Cli::parse_from([
            "relay",
            "--addr",
            "0.0.0.0",
            "--port",
            "8000",
            "--allowed-origin",
            "https://a.example",
            "--allowed-origin",
            "https://b.example",
            "--idle-timeout-secs",
            "0.5",
            "--ping-interval-secs",
            "0.1",
        ]);
        assert_eq!(cli.addr.to_string(), "0.0.0.0");
        assert_eq!(cli.port, 8000);
        assert_eq!(
            cli.config.allowed_origins,
            ["https://a.example", "https://b.example"]
        );
        assert_eq!(cli.config.idle_timeout, Duration::from_millis(500));
        assert_eq!(cli.config.ping_interval, Duration::from_millis(100));
    }

    #[test]
    fn ice_server_urls_are_checked() {
        let valid = [
            "stun:stun.example.org",
            "stun:stun.example.org:3478",
            "stun:192.0.2.1:19302",
            "stun:[2001:db8::1]:3478",
            "stun:[2001:db8::1]",
            "turn:turn.example.org:3478?transport=udp",
            "turn:turn.example.org?transport=tcp",
            "turns:turn.example.org:5349",
        ];
        for url in valid {
            assert_eq!(IceUrl::parse(url).map(|url| url.text), Ok(url.to_owned()));
        }
        let invalid = [
            ("no scheme", "stun.example.org:3478", "must begin with"),
            ("http", "http://stun.example.org", "must begin with"),
            ("capitals", "STUN:stun.example.org", "must begin with"),
            ("slashes", "stun://stun.example.org", "without `//`"),
            ("empty host", "stun:", "host"),
            ("port only", "turn::3478", "host"),
            ("bad port", "stun:example.org:99999", "port"),
            ("port zero", "stun:example.org:0", "port"),
            ("no port digits", "stun:example.org:", "port"),
            ("query on stun", "stun:example.org?transport=udp", "no `?`"),
            (
                "bad transport",
                "turn:example.org?transport=sctp",
                "transport",
            ),
            ("space", "stun:exa mple.org", "spaces"),
            ("unclosed ipv6", "stun:[2001:db8::1", "closing"),
            ("credentials in the url", "turn:user@example.org", "host"),
            (
                "too long",
                &format!("stun:{}.org", "a".repeat(MAX_ICE_URL_BYTES)),
                "longer",
            ),
        ];
        for (name, url, why) in invalid {
            let error = IceUrl::parse(url).expect_err(name);
            assert!(
                error.contains(why) && error.contains(url),
                "{name}: {error}"
            );
        }
        // The command line says so too, naming the URL.
        let error = Cli::try_parse_from(["relay", "--ice-server", "http://x"]).unwrap_err();
        assert!(
            error
                .to_string()
                .contains("`http://x` is not a usable ICE server URL"),
            "{error}"
        );
    }

    #[test]
    fn ice_servers_reach_the_welcome_grouped_with_their_credentials() {
        let cli = Cli::parse_from([
            "relay",
            "--ice-server",
            "stun:a.example:3478",
            "--ice-server",
            "turn:b.example:3478?transport=udp,turns:b.example:5349",
            "--ice-username",
            "tab",
            "--ice-credential",
            "secret",
        ]);
        assert_eq!(cli.config.validate(), Ok(()));
        assert_eq!(
            cli.config.welcome_ice_servers(),
            vec![
                IceServer {
                    urls: vec!["stun:a.example:3478".into()],
                    username: None,
                    credential: None,
                },
                IceServer {
                    urls: vec![
                        "turn:b.example:3478?transport=udp".into(),
                        "turns:b.example:5349".into()
                    ],
                    username: Some("tab".into()),
                    credential: Some("secret".into()),
                },
            ]
        );
        assert!(Config::default().welcome_ice_servers().is_empty());
    }

    #[test]
    fn inconsistent_ice_settings_are_refused() {
        let urls = |list: &[&str]| -> Vec<IceUrl> {
            list.iter().map(|url| IceUrl::parse(url).unwrap()).collect()
        };
        let cases = [
            (
                urls(&["turn:t.example"]),
                None,
                None,
                ConfigError::TurnWithoutCredentials,
            ),
            (
                urls(&["turns:t.example"]),
                Some("tab"),
                None,
                ConfigError::TurnWithoutCredentials,
            ),
            (
                urls(&["stun:s.example"]),
                Some("tab"),
                Some("secret"),
                ConfigError::IceCredentialsWithoutTurn,
            ),
            (
                vec![],
                None,
                Some("secret"),
                ConfigError::IceCredentialsWithoutTurn,
            ),
            (
                urls(&["stun:s.example"; MAX_ICE_SERVERS + 1]),
                None,
                None,
                ConfigError::TooManyIceServers(MAX_ICE_SERVERS + 1),
            ),
        ];
        for (ice_servers, username, credential, expected) in cases {
            let config = Config {
                ice_servers,
                ice_username: username.map(str::to_owned),
                ice_credential: credential.map(str::to_owned),
                ..Config::default()
            };
            assert_eq!(config.validate(), Err(expected));
        }
        let long = Config {
            ice_servers: urls(&["turn:t.example"]),
            ice_username: Some("tab".into()),
            ice_credential: Some("x".repeat(MAX_ICE_CREDENTIAL_BYTES + 1)),
            ..Config::default()
        };
        assert_eq!(long.validate(), Err(ConfigError::IceCredentialTooLong));
    }

    #[test]
    fn inconsistent_limits_are_refused() {
        let cases: Vec<(Config, ConfigError)> = vec![
            (
                Config {
                    max_connections: 0,
                    ..Config::default()
                },
                ConfigError::Zero("--max-connections"),
            ),
            (
                Config {
                    rate_burst: 0,
                    ..Config::default()
                },
                ConfigError::NoBurst,
            ),
            (
                Config {
                    peer_queue_bytes: DEFAULT_MAX_FRAME_BYTES,
                    ..Config::default()
                },
                ConfigError::QueueSmallerThanFrame {
                    queue: DEFAULT_MAX_FRAME_BYTES,
                    frame: DEFAULT_MAX_FRAME_BYTES,
                },
            ),
            (
                Config {
                    ping_interval: Duration::from_secs(60),
                    ..Config::default()
                },
                ConfigError::PingNotBeforeIdle,
            ),
            (
                Config {
                    byte_burst: 1_000,
                    ..Config::default()
                },
                ConfigError::ByteBurstSmallerThanFrame {
                    burst: 1_000,
                    frame: DEFAULT_MAX_FRAME_BYTES,
                },
            ),
            (
                Config {
                    max_connections_per_address: 0,
                    ..Config::default()
                },
                ConfigError::Zero("--max-connections-per-address"),
            ),
        ];
        for (config, expected) in cases {
            assert_eq!(config.validate(), Err(expected));
        }
    }
}
