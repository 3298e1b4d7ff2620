//! How long a driver waits before it tries the relay again: one policy for the browser tab and
//! the native node. Pure: the caller passes the number of failed tries and a random number.
//!
//! A relay restart is the common case (a deploy, a crash under supervision): it is back within
//! seconds, so the first tries come about a second apart. Only when tries keep failing (the
//! relay is really gone, or the network is) does the wait grow, so a room of tabs does not
//! hammer a dead relay.

/// The wait between the first tries: a restarted relay is found about a second after it is back.
pub const FAST_RETRY_MS: u64 = 1_000;
/// Tries that fail before the wait starts to grow. Ten fast tries cover a relay restart of up
/// to about ten seconds (a supervised restart, a deploy) at the fast pace; a failed try to a
/// closed port costs the relay's machine nothing, so ten per tab is cheap.
pub const FAST_RETRIES: u32 = 10;
/// The longest wait between tries once they keep failing: a relay that comes back after a long
/// outage is still found within half a minute.
pub const MAX_RETRY_MS: u64 = 30_000;
/// Each wait is moved by up to this fraction either way (`1_000` ms becomes 750..1_250 ms), so
/// a class of tabs that lost the relay at the same instant does not come back in lockstep. The
/// jitter is symmetric so the mean wait stays [`FAST_RETRY_MS`].
pub const JITTER_FRACTION: f64 = 0.25;

/// The wait before the next try after `failed_tries` failed tries in a row (0 after a
/// connection the relay welcomed), with `random` in `0.0..1.0` choosing the jitter.
pub fn retry_delay_ms(failed_tries: u32, random: f64) -> u64 {
    let doublings = failed_tries
        .saturating_sub(FAST_RETRIES.saturating_sub(1))
        .min(16);
    let base = FAST_RETRY_MS
        .saturating_mul(1u64 << doublings)
        .min(MAX_RETRY_MS);
    let spread = base as f64 * JITTER_FRACTION;
    let offset = spread * (2.0 * random.clamp(0.0, 1.0) - 1.0);
    (base as f64 + offset).round().max(0.0) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Without jitter (random 0.5): a second for the first tries, then doubling to the cap.
    #[test]
    fn first_tries_are_fast_then_the_wait_doubles_to_a_cap() {
        let cases = [
            (0, 1_000),
            (1, 1_000),
            (9, 1_000),
            (10, 2_000),
            (11, 4_000),
            (12, 8_000),
            (14, MAX_RETRY_MS),
            (1_000, MAX_RETRY_MS),
        ];
        for (failed, expected) in cases {
            assert_eq!(
                retry_delay_ms(failed, 0.5),
                expected,
                "after {failed} failures"
            );
        }
    }

    /// What issue 16 measured: after a relay restart, tabs came back 6-8 s after the relay.
    /// With the relay back up to 9 s after it went down, the tab's next try now comes at most
    /// a fast retry (with jitter) after the relay is back.
    #[test]
    fn a_restarted_relay_is_found_within_about_a_second() {
        for (random, relay_back_ms) in [(0.0, 1_000), (0.3, 5_000), (0.99, 5_000), (0.3, 9_000)] {
            let mut at = 0;
            let mut failed = 0;
            while at < relay_back_ms {
                failed += 1;
                at += retry_delay_ms(failed - 1, random);
            }
            let late = at - relay_back_ms;
            assert!(
                late <= FAST_RETRY_MS + (FAST_RETRY_MS as f64 * JITTER_FRACTION) as u64,
                "found {late} ms after the relay was back (random {random})"
            );
        }
    }

    #[test]
    fn jitter_spreads_a_quarter_either_way() {
        assert_eq!(retry_delay_ms(0, 0.0), 750);
        assert_eq!(retry_delay_ms(0, 1.0), 1_250);
        assert_eq!(retry_delay_ms(FAST_RETRIES + 1, 0.0), 3_000);
        // Out-of-range randomness is clamped, never a negative or huge wait.
        assert_eq!(retry_delay_ms(0, -3.0), 750);
        assert_eq!(retry_delay_ms(0, 7.0), 1_250);
    }
}
