//! The page side of mining: a pool of Web Workers running [`crate::miner_worker`], fed the
//! node's current job, their progress summed into a hash rate.

use crate::miner_worker::MiningWorker;
use crate::mining::{first_nonce, HashRateMeter, MinerCommand, MinerReport};
use gloo_worker::{Spawnable, WorkerBridge};
use shared::block::Block;
use shared::node::MiningJob;
use std::cell::{Cell, RefCell};
use std::rc::{Rc, Weak};

/// Least time between two blocks this tab finds. On the test network a block takes a few
/// hashes, so a tab could find hundreds a second until the difficulty catches up (on the
/// classroom and main networks the initial target is already one worker's interval), and each
/// costs two broadcasts: 25 ms keeps a tab near 80 frames a second, under the relay's default
/// rate limit (200 a second).
pub const MIN_BLOCK_SPACING_MS: u64 = 25;

/// The worker script the build (xtask or trunk) emits for the `data-type="worker"` link, relative to the page.
pub const WORKER_SCRIPT: &str = "worker.js";

pub struct MinerPool {
    workers: RefCell<Vec<WorkerBridge<MiningWorker>>>,
    job: RefCell<Option<MiningJob>>,
    meter: RefCell<HashRateMeter>,
    on_found: Box<dyn Fn(u64, Block)>,
    last_found_ms: Cell<u64>,
    /// Percent of the time each worker mines (`MinerCommand::Throttle`).
    throttle_percent: Cell<u8>,
    this: Weak<MinerPool>,
}

impl MinerPool {
    /// `on_found` gets the job's block with the winning nonce.
    pub fn new(workers: u32, on_found: impl Fn(u64, Block) + 'static) -> Rc<MinerPool> {
        let pool = Rc::new_cyclic(|this| MinerPool {
            workers: RefCell::new(Vec::new()),
            job: RefCell::new(None),
            meter: RefCell::new(HashRateMeter::default()),
            on_found: Box::new(on_found),
            last_found_ms: Cell::new(0),
            throttle_percent: Cell::new(100),
            this: this.clone(),
        });
        pool.set_workers(workers);
        pool
    }

    pub fn worker_count(&self) -> u32 {
        self.workers.borrow().len() as u32
    }

    /// Replaces the workers with `count` new ones and hands them the current job.
    pub fn set_workers(&self, count: u32) {
        let spawned: Vec<WorkerBridge<MiningWorker>> = (0..count.max(1))
            .map(|_| {
                let pool = self.this.clone();
                MiningWorker::spawner()
                    .callback(move |report| {
                        if let Some(pool) = pool.upgrade() {
                            pool.on_report(report);
                        }
                    })
                    .spawn(WORKER_SCRIPT)
            })
            .collect();
        let percent = self.throttle_percent.get();
        for worker in &spawned {
            worker.send(MinerCommand::Throttle { percent });
        }
        // Dropping the old bridges terminates the old workers.
        *self.workers.borrow_mut() = spawned;
        self.dispatch_job();
    }

    /// Hands `job` to the workers at once; they start it no earlier than
    /// [`MIN_BLOCK_SPACING_MS`] after our last find (the wait is theirs: see
    /// [`MinerCommand::Mine`]).
    pub fn start(&self, job: MiningJob) {
        *self.job.borrow_mut() = Some(job);
        self.dispatch_job();
    }

    /// Every worker mines `percent` of the time from its next chunk on.
    pub fn set_throttle(&self, percent: u8) {
        self.throttle_percent.set(percent);
        for worker in self.workers.borrow().iter() {
            worker.send(MinerCommand::Throttle { percent });
        }
    }

    pub fn throttle(&self) -> u8 {
        self.throttle_percent.get()
    }

    pub fn stop(&self) {
        *self.job.borrow_mut() = None;
        for worker in self.workers.borrow().iter() {
            worker.send(MinerCommand::Stop);
        }
        self.meter.borrow_mut().clear();
    }

    pub fn hash_rate(&self, now_ms: u64) -> f64 {
        self.meter.borrow_mut().rate(now_ms)
    }

    fn dispatch_job(&self) {
        let job = self.job.borrow();
        let Some(job) = job.as_ref() else { return };
        let workers = self.workers.borrow();
        let count = workers.len() as u32;
        let not_before_ms = (self.last_found_ms.get() + MIN_BLOCK_SPACING_MS) as f64;
        for (index, worker) in workers.iter().enumerate() {
            worker.send(MinerCommand::Mine {
                job_id: job.job_id,
                header: job.block.header,
                first_nonce: first_nonce(index as u32, count),
                not_before_ms,
            });
        }
    }

    fn on_report(&self, report: MinerReport) {
        let now = js_sys::Date::now() as u64;
        let (job_id, hashes, nonce) = match report {
            MinerReport::Progress { job_id, hashes } => (job_id, hashes, None),
            MinerReport::Found {
                job_id,
                nonce,
                hashes,
            } => (job_id, hashes, Some(nonce)),
        };
        let current = self.job.borrow().as_ref().map(|job| job.job_id);
        if current.is_none() {
            return;
        }
        self.meter.borrow_mut().record(now, hashes);
        let Some(nonce) = nonce else { return };
        // Only the job's own block is built here; whether the job is still current is the
        // node's call (it minted the id).
        let Some(mut block) = self
            .job
            .borrow()
            .as_ref()
            .filter(|job| job.job_id == job_id)
            .map(|job| job.block.clone())
        else {
            return;
        };
        block.header.nonce = nonce;
        self.last_found_ms.set(now);
        (self.on_found)(job_id, block);
    }
}

impl MinerPool {
    /// Whether the workers have a job (false after a find, until the node hands a new one).
    pub fn has_job(&self) -> bool {
        self.job.borrow().is_some()
    }
}
