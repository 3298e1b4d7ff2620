//! Per-peer rate limit: token buckets for frames and for bytes, and a flood detector that turns
//! persistent excess into a disconnect. Pure: the caller passes the time in.
//!
//! Every frame a peer sends pays: data frames, pings and pongs alike (a ping costs the relay a
//! pong, so it is no cheaper than a message). [`TokenBucket`] is also what the join limits use.

use std::collections::HashMap;
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

/// A token bucket: `burst` tokens at most, refilled at `rate_per_second`.
#[derive(Clone, Debug)]
pub struct TokenBucket {
    rate_per_second: f64,
    burst: f64,
    tokens: f64,
    refilled_at: Instant,
}

impl TokenBucket {
    pub fn new(rate_per_second: f64, burst: f64, now: Instant) -> TokenBucket {
        TokenBucket {
            rate_per_second,
            burst,
            tokens: burst,
            refilled_at: now,
        }
    }

    fn refill(&mut self, now: Instant) {
        let elapsed = now
            .saturating_duration_since(self.refilled_at)
            .as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.rate_per_second).min(self.burst);
        self.refilled_at = now;
    }

    /// True when the bucket holds `cost` tokens at `now` (it takes none).
    pub fn has(&self, cost: f64, now: Instant) -> bool {
        let mut probe = self.clone();
        probe.refill(now);
        probe.tokens >= cost
    }

    /// Takes `cost` tokens if there are that many; true when it did.
    pub fn take(&mut self, cost: f64, now: Instant) -> bool {
        self.refill(now);
        if self.tokens >= cost {
            self.tokens -= cost;
            true
        } else {
            false
        }
    }

    /// True when the bucket has refilled completely: it remembers nothing a new one would not.
    pub fn is_full(&self, now: Instant) -> bool {
        self.has(self.burst, now)
    }
}

/// Buckets remembered at most by one [`KeyedBuckets`]. A full bucket is forgotten (a new one would
/// be the same), so this bounds only buckets still refilling: at 20 joins a second from one
/// address, 65,536 refilling buckets take thousands of flooding addresses.
const MAX_KEYED_BUCKETS: usize = 65_536;

/// Token buckets by key, forgetting full ones.
pub(crate) struct KeyedBuckets<K> {
    rate: f64,
    burst: f64,
    buckets: HashMap<K, TokenBucket>,
}

impl<K: std::hash::Hash + Eq> KeyedBuckets<K> {
    pub(crate) fn new(rate: u32, burst: u32) -> KeyedBuckets<K> {
        KeyedBuckets {
            rate: f64::from(rate),
            burst: f64::from(burst),
            buckets: HashMap::new(),
        }
    }

    pub(crate) fn has(&self, key: &K, now: Instant) -> bool {
        self.has_more_than(key, 0.0, now)
    }

    /// Whether `key`'s bucket holds a token beyond `reserve` (it takes none).
    pub(crate) fn has_more_than(&self, key: &K, reserve: f64, now: Instant) -> bool {
        let cost = 1.0 + reserve;
        self.buckets
            .get(key)
            .map_or(cost <= self.burst, |bucket| bucket.has(cost, now))
    }

    /// The burst of every bucket.
    pub(crate) fn burst(&self) -> f64 {
        self.burst
    }

    pub(crate) fn take(&mut self, key: K, now: Instant) -> bool {
        if self.buckets.len() >= MAX_KEYED_BUCKETS && !self.buckets.contains_key(&key) {
            self.buckets.retain(|_, bucket| !bucket.is_full(now));
            if self.buckets.len() >= MAX_KEYED_BUCKETS {
                // Every bucket is still refilling: a flood from very many addresses. Refusing is
                // the safe side; the buckets refill within seconds.
                return false;
            }
        }
        let (rate, burst) = (self.rate, self.burst);
        self.buckets
            .entry(key)
            .or_insert_with(|| TokenBucket::new(rate, burst, now))
            .take(1.0, now)
    }
}

/// The limits of one peer's sending.
#[derive(Clone, Copy, Debug)]
pub struct RateLimits {
    pub frames_per_second: u32,
    pub frame_burst: u32,
    pub bytes_per_second: u64,
    pub byte_burst: u64,
    /// Frames dropped within [`FLOOD_WINDOW`] before the peer is disconnected.
    pub flood_limit: u32,
}

#[derive(Debug)]
pub struct RateLimiter {
    frames: TokenBucket,
    bytes: TokenBucket,
    flood_limit: u32,
    window_started: Instant,
    drops_in_window: u32,
}

impl RateLimiter {
    pub fn new(limits: RateLimits, now: Instant) -> RateLimiter {
        RateLimiter {
            frames: TokenBucket::new(
                f64::from(limits.frames_per_second),
                f64::from(limits.frame_burst),
                now,
            ),
            bytes: TokenBucket::new(
                limits.bytes_per_second as f64,
                limits.byte_burst as f64,
                now,
            ),
            flood_limit: limits.flood_limit,
            window_started: now,
            drops_in_window: 0,
        }
    }

    /// Decides about one frame of `bytes` bytes (on the wire) arriving at `now`. A frame is
    /// accepted only when both buckets hold enough; then both pay.
    pub fn check(&mut self, bytes: usize, now: Instant) -> Verdict {
        let bytes = bytes as f64;
        if self.frames.has(1.0, now) && self.bytes.has(bytes, now) {
            self.frames.take(1.0, now);
            self.bytes.take(bytes, now);
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
        let mut limiter = RateLimiter::new(frames(10, 3, 4), start);
        let verdicts: Vec<Verdict> = (0..5).map(|_| limiter.check(1, start)).collect();
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
        assert_eq!(limiter.check(1, later), Verdict::Accept);
        assert_eq!(limiter.check(1, later), Verdict::Drop);
        assert_eq!(limiter.check(1, later), Verdict::Drop);
        assert_eq!(limiter.check(1, later), Verdict::Disconnect);
    }

    #[test]
    fn a_new_window_forgives_old_drops() {
        let start = Instant::now();
        let mut limiter = RateLimiter::new(frames(1, 1, 2), start);
        assert_eq!(limiter.check(1, start), Verdict::Accept);
        assert_eq!(limiter.check(1, start), Verdict::DropAndWarn);
        assert_eq!(limiter.check(1, start), Verdict::Drop);
        let later = start + FLOOD_WINDOW;
        // The bucket refilled (one token), then the next drop starts a fresh window with a warning.
        assert_eq!(limiter.check(1, later), Verdict::Accept);
        assert_eq!(limiter.check(1, later), Verdict::DropAndWarn);
    }

    #[test]
    fn bytes_are_limited_next_to_frames() {
        let start = Instant::now();
        let mut limiter = RateLimiter::new(
            RateLimits {
                frames_per_second: 1_000,
                frame_burst: 1_000,
                bytes_per_second: 1_000,
                byte_burst: 3_000,
                flood_limit: 100,
            },
            start,
        );
        // Three frames of 1,000 bytes use the byte burst; the fourth waits for the refill.
        for _ in 0..3 {
            assert_eq!(limiter.check(1_000, start), Verdict::Accept);
        }
        assert_eq!(limiter.check(1_000, start), Verdict::DropAndWarn);
        // A dropped frame costs nothing: small frames still pass on the frame bucket alone.
        let later = start + Duration::from_millis(10);
        assert_eq!(limiter.check(5, later), Verdict::Accept);
        let second = start + Duration::from_secs(2);
        assert_eq!(limiter.check(1_000, second), Verdict::Accept);
    }

    fn frames(rate: u32, burst: u32, flood_limit: u32) -> RateLimits {
        RateLimits {
            frames_per_second: rate,
            frame_burst: burst,
            bytes_per_second: u64::MAX / 2,
            byte_burst: u64::MAX / 2,
            flood_limit,
        }
    }
}
