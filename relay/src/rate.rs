//! Per-peer rate limit: a token bucket for frames, and a flood detector that turns persistent
//! excess into a disconnect. Pure: the caller passes the time in.

use std::time::Duration;
use tokio::time::Instant;

/// The window over which dropped frames are counted: long enough that a steady flood is caught,
/// short enough that an old burst does not count against a peer that has since behaved.
pub const FLOOD_WINDOW: Duration = Duration::from_secs(10);

/// What to do with one incoming frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Accept,
    /// Drop the frame and tell the peer (the first drop of a window).
    DropAndWarn,
    /// Drop the frame silently: the peer was warned in this window already.
    Drop,
    /// The peer keeps flooding: disconnect it.
    Disconnect,
}

#[derive(Debug)]
pub struct RateLimiter {
    rate_per_second: f64,
    burst: f64,
    flood_limit: u32,
    tokens: f64,
    refilled_at: Instant,
    window_started: Instant,
    drops_in_window: u32,
}

impl RateLimiter {
    pub fn new(rate_per_second: u32, burst: u32, flood_limit: u32, now: Instant) -> RateLimiter {
        RateLimiter {
            rate_per_second: f64::from(rate_per_second),
            burst: f64::from(burst),
            flood_limit,
            tokens: f64::from(burst),
            refilled_at: now,
            window_started: now,
            drops_in_window: 0,
        }
    }

    /// Decides about one frame arriving at `now`.
    pub fn check(&mut self, now: Instant) -> Verdict {
        let elapsed = now
            .saturating_duration_since(self.refilled_at)
            .as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.rate_per_second).min(self.burst);
        self.refilled_at = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            return Verdict::Accept;
        }
        if now.saturating_duration_since(self.window_started) >= FLOOD_WINDOW {
            self.window_started = now;
            self.drops_in_window = 0;
        }
        self.drops_in_window += 1;
        if self.drops_in_window > self.flood_limit {
            Verdict::Disconnect
        } else if self.drops_in_window == 1 {
            Verdict::DropAndWarn
        } else {
            Verdict::Drop
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_then_refill_then_flood() {
        let start = Instant::now();
        let mut limiter = RateLimiter::new(10, 3, 4, start);
        let verdicts: Vec<Verdict> = (0..5).map(|_| limiter.check(start)).collect();
        assert_eq!(
            verdicts,
            [
                Verdict::Accept,
                Verdict::Accept,
                Verdict::Accept,
                Verdict::DropAndWarn,
                Verdict::Drop
            ]
        );
        // A tenth of a second refills one token at 10 per second.
        let later = start + Duration::from_millis(100);
        assert_eq!(limiter.check(later), Verdict::Accept);
        assert_eq!(limiter.check(later), Verdict::Drop);
        assert_eq!(limiter.check(later), Verdict::Drop);
        assert_eq!(limiter.check(later), Verdict::Disconnect);
    }

    #[test]
    fn a_new_window_forgives_old_drops() {
        let start = Instant::now();
        let mut limiter = RateLimiter::new(1, 1, 2, start);
        assert_eq!(limiter.check(start), Verdict::Accept);
        assert_eq!(limiter.check(start), Verdict::DropAndWarn);
        assert_eq!(limiter.check(start), Verdict::Drop);
        let later = start + FLOOD_WINDOW;
        // The bucket refilled (one token), then the next drop starts a fresh window with a warning.
        assert_eq!(limiter.check(later), Verdict::Accept);
        assert_eq!(limiter.check(later), Verdict::DropAndWarn);
    }
}
