//! The state of our link to the relay, as the status bar shows it. How long the transport waits
//! between tries is `browser::reconnect`.

/// What the status bar says about the relay connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConnectionState {
    /// The person pressed "go offline": no socket, the node keeps mining alone.
    Offline,
    /// Opening the socket (attempt 1, 2, ...).
    Connecting { attempt: u32 },
    /// The relay welcomed us into the room.
    Connected { peer_id: String },
    /// The socket closed; the next try is at `retry_at_ms`.
    Waiting { retry_at_ms: u64, reason: String },
}

impl ConnectionState {
    /// The stable word in `data-state`.
    pub fn key(&self) -> &'static str {
        match self {
            ConnectionState::Offline => "offline",
            ConnectionState::Connecting { .. } => "connecting",
            ConnectionState::Connected { .. } => "connected",
            ConnectionState::Waiting { .. } => "waiting",
        }
    }

    pub fn describe(&self, now_ms: u64) -> String {
        match self {
            ConnectionState::Offline => "offline (by choice)".into(),
            ConnectionState::Connecting { attempt: 1 } => "connecting…".into(),
            ConnectionState::Connecting { attempt } => format!("connecting… (try {attempt})"),
            ConnectionState::Connected { .. } => "connected".into(),
            ConnectionState::Waiting { retry_at_ms, .. } => {
                let seconds = retry_at_ms.saturating_sub(now_ms).div_ceil(1000);
                format!("disconnected, retry in {seconds}s")
            }
        }
    }
}
