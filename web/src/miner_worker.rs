//! The mining Web Worker: runs [`shared::mining::mine`] in chunks and yields to its event loop
//! between chunks (a `setTimeout(0)`, a real task, not a microtask), so a new job or a stop
//! arrives within one chunk. Chunks are sized to take about [`CHUNK_TARGET_MS`]. A throttle
//! below 100 % (`MinerCommand::Throttle`) makes the worker sleep after each chunk, so it mines
//! that share of the time: a chunk of 60 ms at 25 % is followed by 180 ms of rest.

use crate::mining::{throttle_pause_ms, MinerCommand, MinerReport};
use gloo_worker::{HandlerId, Worker, WorkerScope};
use shared::mining::{mine, MiningOutcome};
use shared::BlockHeader;

/// How long one chunk should take: short enough that a new job starts promptly, long enough
/// that the progress messages and timer overhead stay a small share of the time.
pub const CHUNK_TARGET_MS: f64 = 60.0;
/// Bounds of the adaptive chunk size.
pub const MIN_CHUNK: u64 = 1_000;
pub const MAX_CHUNK: u64 = 500_000;
/// The longest a job waits for its start time (the page asks for tens of milliseconds; a
/// wrong clock must not park the worker).
pub const MAX_START_DELAY_MS: f64 = 1_000.0;

struct Job {
    job_id: u64,
    header: BlockHeader,
    next_nonce: u64,
    not_before_ms: f64,
    subscriber: HandlerId,
}

pub struct MiningWorker {
    job: Option<Job>,
    chunk: u64,
    chunk_scheduled: bool,
    /// Percent of the time spent mining (10 to 100).
    throttle_percent: u8,
}

pub enum WorkerMessage {
    RunChunk,
}

impl MiningWorker {
    /// Runs the next chunk in a new task: after `pause_ms` (the throttle's rest; 0 yields one
    /// task), and not before the job may start.
    fn schedule(&mut self, scope: &WorkerScope<Self>, pause_ms: u32) {
        if self.chunk_scheduled {
            return;
        }
        self.chunk_scheduled = true;
        let start_in = self
            .job
            .as_ref()
            .map_or(0.0, |job| job.not_before_ms - js_sys::Date::now())
            .clamp(0.0, MAX_START_DELAY_MS);
        let wait = (start_in as u32).max(pause_ms);
        scope.send_future(async move {
            gloo_timers::future::TimeoutFuture::new(wait).await;
            WorkerMessage::RunChunk
        });
    }
}

impl Worker for MiningWorker {
    type Message = WorkerMessage;
    type Input = MinerCommand;
    type Output = MinerReport;

    fn create(_scope: &WorkerScope<Self>) -> Self {
        MiningWorker {
            job: None,
            chunk: 20_000,
            chunk_scheduled: false,
            throttle_percent: 100,
        }
    }

    fn update(&mut self, scope: &WorkerScope<Self>, message: WorkerMessage) {
        let WorkerMessage::RunChunk = message;
        self.chunk_scheduled = false;
        let Some(job) = self.job.as_mut() else {
            return;
        };
        let started = js_sys::Date::now();
        if started < job.not_before_ms {
            // A newer job that may start later than the chunk this wake-up was set for.
            self.schedule(scope, 0);
            return;
        }
        let outcome = mine(&job.header, job.next_nonce, self.chunk);
        let elapsed = (js_sys::Date::now() - started).max(1.0);
        match outcome {
            MiningOutcome::Found { nonce, tried, .. } => {
                scope.respond(
                    job.subscriber,
                    MinerReport::Found {
                        job_id: job.job_id,
                        nonce,
                        hashes: tried,
                    },
                );
                self.job = None;
            }
            MiningOutcome::Exhausted { tried } => {
                job.next_nonce = job.next_nonce.wrapping_add(tried);
                scope.respond(
                    job.subscriber,
                    MinerReport::Progress {
                        job_id: job.job_id,
                        hashes: tried,
                    },
                );
                let scaled = (self.chunk as f64 * CHUNK_TARGET_MS / elapsed) as u64;
                // Change by at most a factor of two per chunk, so one slow chunk (a GC pause)
                // does not swing the size.
                self.chunk = scaled
                    .clamp(self.chunk / 2, self.chunk * 2)
                    .clamp(MIN_CHUNK, MAX_CHUNK);
                let pause = throttle_pause_ms(elapsed, self.throttle_percent);
                self.schedule(scope, pause.round() as u32);
            }
            MiningOutcome::InvalidTarget => {
                self.job = None;
            }
        }
    }

    fn received(&mut self, scope: &WorkerScope<Self>, command: MinerCommand, id: HandlerId) {
        match command {
            MinerCommand::Mine {
                job_id,
                header,
                first_nonce,
                not_before_ms,
            } => {
                self.job = Some(Job {
                    job_id,
                    header,
                    next_nonce: first_nonce,
                    not_before_ms,
                    subscriber: id,
                });
                self.schedule(scope, 0);
            }
            MinerCommand::Stop => self.job = None,
            MinerCommand::Throttle { percent } => self.throttle_percent = percent.clamp(10, 100),
        }
    }
}
