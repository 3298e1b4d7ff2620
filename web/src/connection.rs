//! The state of our link to the relay, as the status bar shows it, and the reconnect backoff.

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

/// The first retry waits this long; each failed try doubles it.
pub const FIRST_BACKOFF_MS: u64 = 500;
/// The longest wait between tries: a relay that comes back is found within half a minute.
pub const MAX_BACKOFF_MS: u64 = 30_000;

/// Wait before try `attempt + 1` after `attempt` failed tries, with up to 25 % jitter from
/// `jitter` (0.0..1.0) so a class of tabs does not reconnect in lockstep after a relay restart.
pub fn backoff_ms(failed_attempts: u32, jitter: f64) -> u64 {
    let base = FIRST_BACKOFF_MS
        .saturating_mul(1u64 << failed_attempts.min(16))
        .min(MAX_BACKOFF_MS);
    base + (base as f64 * 0.25 * jitter.clamp(0.0, 1.0)) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_a_cap() {
        assert_eq!(backoff_ms(0, 0.0), 500);
        assert_eq!(backoff_ms(1, 0.0), 1_000);
        assert_eq!(backoff_ms(3, 0.0), 4_000);
        assert_eq!(backoff_ms(40, 0.0), MAX_BACKOFF_MS);
        assert_eq!(backoff_ms(0, 1.0), 625);
    }
}
