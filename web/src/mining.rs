//! What the page and its mining workers say to each other, and the hash-rate meter.
//! The worker itself is in [`crate::miner_worker`]; the page side is in `browser::miner`.

use serde::{Deserialize, Serialize};
use shared::BlockHeader;
use std::collections::VecDeque;

/// From the page to one worker.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum MinerCommand {
    /// Abandon any earlier job and search nonces from `first_nonce` upwards, starting no
    /// earlier than `not_before_ms` (wall clock; 0: at once). The worker keeps that wait with
    /// its own timer: a hidden page's timers fire at most once a second, a worker's are not
    /// throttled, so a background tab keeps mining at its full rate.
    Mine {
        job_id: u64,
        header: BlockHeader,
        first_nonce: u64,
        not_before_ms: f64,
    },
    Stop,
    /// Mine only `percent` of the time (10 to 100): after each chunk the worker sleeps long
    /// enough that mining takes that share of its time, so the tab's hash rate scales with it.
    Throttle {
        percent: u8,
    },
}

/// The throttle steps the page offers, in percent of the time spent mining.
pub const THROTTLE_STEPS: [u8; 10] = [10, 20, 30, 40, 50, 60, 70, 80, 90, 100];

/// How long to sleep after a chunk of `mined_ms` so mining takes `percent` of the time:
/// `mined_ms * (100 - percent) / percent`. Out-of-range values are clamped to 10..=100.
pub fn throttle_pause_ms(mined_ms: f64, percent: u8) -> f64 {
    let percent = f64::from(percent.clamp(10, 100));
    mined_ms.max(0.0) * (100.0 - percent) / percent
}

/// From a worker to the page.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum MinerReport {
    /// A chunk of `hashes` nonces was tried without success.
    Progress { job_id: u64, hashes: u64 },
    /// `nonce` solves the job; the worker then waits for a new job.
    Found {
        job_id: u64,
        nonce: u64,
        hashes: u64,
    },
}

/// Where worker `index` of `workers` starts: the nonce space cut into equal slices, so no two
/// workers ever try the same nonce of one job.
pub fn first_nonce(index: u32, workers: u32) -> u64 {
    (u64::MAX / u64::from(workers.max(1))) * u64::from(index)
}

/// Samples kept by the hash-rate meter; at a few reports per second per worker this is more
/// than the window needs.
pub const MAX_RATE_SAMPLES: usize = 512;
/// The hash rate is averaged over this window.
pub const RATE_WINDOW_MS: u64 = 3_000;

/// Hashes per second over the last few seconds, from the workers' progress reports.
#[derive(Default, Debug)]
pub struct HashRateMeter {
    samples: VecDeque<(u64, u64)>,
}

impl HashRateMeter {
    pub fn record(&mut self, now_ms: u64, hashes: u64) {
        if self.samples.len() >= MAX_RATE_SAMPLES {
            self.samples.pop_front();
        }
        self.samples.push_back((now_ms, hashes));
    }

    pub fn clear(&mut self) {
        self.samples.clear();
    }

    pub fn rate(&mut self, now_ms: u64) -> f64 {
        let start = now_ms.saturating_sub(RATE_WINDOW_MS);
        while self.samples.front().is_some_and(|(at, _)| *at < start) {
            self.samples.pop_front();
        }
        let hashes: u64 = self.samples.iter().map(|(_, hashes)| hashes).sum();
        hashes as f64 * 1000.0 / RATE_WINDOW_MS as f64
    }
}

pub use shared::mining::format_rate;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workers_get_disjoint_slices() {
        assert_eq!(first_nonce(0, 4), 0);
        assert!(first_nonce(1, 4) > 1 << 60);
        assert!(first_nonce(3, 4) < u64::MAX - (1 << 60));
    }

    #[test]
    fn the_throttle_pause_gives_the_asked_share_of_time() {
        for (percent, mined, pause) in [
            (100, 60.0, 0.0),
            (50, 60.0, 60.0),
            (25, 60.0, 180.0),
            (10, 60.0, 540.0),
            (0, 60.0, 540.0),
            (200, 60.0, 0.0),
        ] {
            let got = throttle_pause_ms(mined, percent);
            assert!((got - pause).abs() < 1e-9, "{percent} %: {got} ms");
        }
    }

    #[test]
    fn the_meter_forgets_old_samples() {
        let mut meter = HashRateMeter::default();
        meter.record(0, 3_000_000);
        meter.record(2_000, 3_000_000);
        assert_eq!(meter.rate(2_500), 2_000_000.0);
        assert_eq!(meter.rate(4_000), 1_000_000.0);
        assert_eq!(format_rate(1_420_000.0), "1.42 MH/s");
    }
}
