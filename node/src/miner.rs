//! The multi-threaded miner: one OS thread per core by default, each searching its own slice of
//! the nonce space with [`shared::mining::mine`] in chunks.
//!
//! The current job's id sits in an atomic that every thread reads between chunks, so a new job
//! (the node's `Output::Mine`) or a stop takes effect within one chunk (a few milliseconds) and
//! no thread ever hashes a stale template for long. The first thread to find a nonce claims the
//! job by swapping its id out of that atomic, so one job yields at most one block even when
//! several threads find a nonce at once (on the test network, nearly every nonce wins).

use shared::mining::{mine, MiningOutcome};
use shared::node::MiningJob;
use shared::Block;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use tokio::sync::mpsc;

/// Nonces hashed between two looks at the job id: about 7 ms at 9 MH/s, short enough that a new
/// tip restarts every thread at once and long enough that the atomic read costs nothing.
pub const CHUNK_NONCES: u64 = 1 << 16;
/// Found blocks waiting for the driver. One job yields at most one block and the driver takes
/// each before the next job starts, so more than a couple can only wait if it is stuck.
pub const FOUND_QUEUE: usize = 16;

/// A block with a valid nonce for the job `job_id`.
#[derive(Debug)]
pub struct FoundBlock {
    pub job_id: u64,
    pub block: Block,
}

struct Shared {
    job: Mutex<JobSlot>,
    wake: Condvar,
    /// The id of the job threads should work on; 0 when there is none or it was solved.
    current_job: AtomicU64,
    hashes: AtomicU64,
    shutdown: AtomicBool,
    found: mpsc::Sender<FoundBlock>,
}

#[derive(Default)]
struct JobSlot {
    job: Option<Arc<MiningJob>>,
}

/// The running miner threads. Dropping it stops and joins them.
pub struct Miner {
    shared: Arc<Shared>,
    threads: Vec<JoinHandle<()>>,
}

impl Miner {
    /// Starts `threads` idle threads (at least one); found blocks arrive on the returned channel.
    pub fn start(threads: usize) -> (Miner, mpsc::Receiver<FoundBlock>) {
        let threads = threads.max(1);
        let (found, found_rx) = mpsc::channel(FOUND_QUEUE);
        let shared = Arc::new(Shared {
            job: Mutex::new(JobSlot::default()),
            wake: Condvar::new(),
            current_job: AtomicU64::new(0),
            hashes: AtomicU64::new(0),
            shutdown: AtomicBool::new(false),
            found,
        });
        let handles = (0..threads)
            .map(|index| {
                let shared = Arc::clone(&shared);
                std::thread::Builder::new()
                    .name(format!("miner-{index}"))
                    .spawn(move || work(&shared, index as u64, threads as u64))
                    .expect("the OS can start a miner thread")
            })
            .collect();
        (
            Miner {
                shared,
                threads: handles,
            },
            found_rx,
        )
    }

    pub fn threads(&self) -> usize {
        self.threads.len()
    }

    /// Abandons any earlier job and starts this one on every thread.
    pub fn start_job(&self, job: MiningJob) {
        let mut slot = self.shared.job.lock().expect("miner lock");
        self.shared.current_job.store(job.job_id, Ordering::Release);
        slot.job = Some(Arc::new(job));
        self.shared.wake.notify_all();
    }

    /// Stops every thread after its current chunk.
    pub fn stop(&self) {
        let mut slot = self.shared.job.lock().expect("miner lock");
        self.shared.current_job.store(0, Ordering::Release);
        slot.job = None;
    }

    /// Whether a job is being searched (none after a stop or once the job is solved).
    pub fn is_busy(&self) -> bool {
        self.shared.current_job.load(Ordering::Acquire) != 0
    }

    /// Hashes computed since the start, over all threads.
    pub fn hashes(&self) -> u64 {
        self.shared.hashes.load(Ordering::Relaxed)
    }
}

impl Drop for Miner {
    fn drop(&mut self) {
        {
            let _slot = self.shared.job.lock().expect("miner lock");
            self.shared.shutdown.store(true, Ordering::Release);
            self.shared.current_job.store(0, Ordering::Release);
            self.shared.wake.notify_all();
        }
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

/// The loop of one miner thread: wait for a job, search its slice of nonces until the job
/// changes or is solved, repeat.
fn work(shared: &Shared, index: u64, threads: u64) {
    let slice = u64::MAX / threads;
    let mut last_job = 0;
    loop {
        let job = {
            let mut slot = shared.job.lock().expect("miner lock");
            loop {
                if shared.shutdown.load(Ordering::Acquire) {
                    return;
                }
                let current = shared.current_job.load(Ordering::Acquire);
                match &slot.job {
                    Some(job) if job.job_id != last_job && job.job_id == current => {
                        break Arc::clone(job)
                    }
                    _ => slot = shared.wake.wait(slot).expect("miner lock"),
                }
            }
        };
        last_job = job.job_id;
        let mut nonce = index * slice;
        while shared.current_job.load(Ordering::Relaxed) == job.job_id {
            match mine(&job.block.header, nonce, CHUNK_NONCES) {
                MiningOutcome::Found {
                    nonce: found,
                    tried,
                    ..
                } => {
                    shared.hashes.fetch_add(tried, Ordering::Relaxed);
                    let claimed = shared
                        .current_job
                        .compare_exchange(job.job_id, 0, Ordering::AcqRel, Ordering::Acquire)
                        .is_ok();
                    if claimed {
                        let mut block = job.block.clone();
                        block.header.nonce = found;
                        // Full only if the driver is stuck; then this block is stale anyway.
                        let _ = shared.found.try_send(FoundBlock {
                            job_id: job.job_id,
                            block,
                        });
                    }
                    break;
                }
                MiningOutcome::Exhausted { tried } => {
                    shared.hashes.fetch_add(tried, Ordering::Relaxed);
                    nonce = nonce.wrapping_add(tried);
                }
                MiningOutcome::InvalidTarget => {
                    tracing::error!(job = job.job_id, "mining job with an invalid target");
                    break;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::chain::BlockTree;
    use shared::mining::meets_target;
    use shared::work::{Target, U256};
    use shared::{Address, NetworkParams};
    use std::time::Duration;

    fn job(job_id: u64, target: Option<Target>) -> MiningJob {
        let params = NetworkParams::test();
        let tree = BlockTree::new(params.clone());
        let mut block = tree.block_template(
            Address([1; 20]),
            Vec::new(),
            params.genesis_timestamp_ms + 1,
        );
        if let Some(target) = target {
            block.header.target = target;
        }
        MiningJob { job_id, block }
    }

    #[tokio::test]
    async fn finds_one_block_per_job_whatever_the_thread_count() {
        let (miner, mut found) = Miner::start(4);
        miner.start_job(job(1, None));
        let block = tokio::time::timeout(Duration::from_secs(10), found.recv())
            .await
            .expect("a test-network block takes a few hashes")
            .expect("the miner is alive");
        assert_eq!(block.job_id, 1);
        assert!(meets_target(&block.block.header));
        assert!(!miner.is_busy(), "a solved job stops every thread");
        assert!(found.try_recv().is_err(), "one job, one block");
        miner.start_job(job(2, None));
        let block = tokio::time::timeout(Duration::from_secs(10), found.recv())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(block.job_id, 2);
    }

    #[tokio::test]
    async fn a_new_job_replaces_an_unsolvable_one_at_once() {
        let (miner, mut found) = Miner::start(2);
        // A target of 1 is never met: the threads hash until told otherwise.
        miner.start_job(job(1, Some(Target::from_u256(U256::from(1)))));
        let started = miner.hashes();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while miner.hashes() < started + 2 * CHUNK_NONCES {
            assert!(
                std::time::Instant::now() < deadline,
                "the miner does not hash"
            );
            tokio::task::yield_now().await;
        }
        miner.start_job(job(2, None));
        let block = tokio::time::timeout(Duration::from_secs(10), found.recv())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(block.job_id, 2);
        miner.stop();
        assert!(!miner.is_busy());
    }
}
