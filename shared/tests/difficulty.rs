//! The per-block difficulty rule (`validation::next_target`, LWMA) on its own, and the block pace
//! it gives a class: one tab or thirty, at the start, and after a pause.
//!
//! Nothing here hashes. A "virtual miner" draws each solve time from the exponential distribution
//! a real miner's solve times follow (mean: the block's expected hashes over the hash rate), with
//! a seeded generator, and stamps blocks the way honest nodes do (`max(now, median + 1)`). The old
//! rule (a retarget every `W` blocks by at most 4x, from the easy initial targets) is kept here,
//! copied from the last commit that had it, to measure both side by side:
//! `cargo test -p shared --test difficulty -- --nocapture block_pace` prints the figures that
//! BENCHMARKS.md ("Block pace") quotes.

#![cfg(not(target_arch = "wasm32"))]

use shared::block::{genesis_block, BlockHeader};
use shared::params::{NetworkParams, BROWSER_WORKER_HASHES_PER_SECOND};
use shared::validation::{median, next_target};
use shared::work::{target_for_expected_hashes, Target, U256};

/// splitmix64: a small seeded generator, so every figure here is reproducible.
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    /// Exponentially distributed with mean `mean`.
    fn exponential(&mut self, mean: f64) -> f64 {
        let uniform = ((self.next_u64() >> 11) as f64 + 1.0) / (1u64 << 53) as f64;
        -uniform.ln() * mean
    }
}

fn expected_hashes(target: Target) -> f64 {
    target.work().as_f64()
}

/// A header with only what the difficulty rule reads.
fn header(height: u64, timestamp_ms: u64, target: Target) -> BlockHeader {
    BlockHeader {
        height,
        timestamp_ms,
        target,
        ..genesis_block(&NetworkParams::test()).header
    }
}

/// Which difficulty rule a run uses.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Rule {
    /// The old rule with the old initial targets.
    Old,
    /// `validation::next_target` with this commit's parameters.
    New,
}

/// The classroom network as the old rule had it: a retarget every 10 blocks by at most 4x,
/// starting at 4,096 expected hashes per block.
const OLD_CLASSROOM_WINDOW: u64 = 10;
const OLD_MAX_RETARGET_FACTOR: u64 = 4;
const OLD_CLASSROOM_INITIAL_EXPECTED_HASHES: u64 = 1 << 12;

/// The old `validation::next_target`, verbatim but for the parameters.
fn old_next_target(params: &NetworkParams, chain: &[BlockHeader]) -> Target {
    let parent = chain.last().expect("genesis at least");
    let height = parent.height + 1;
    if !height.is_multiple_of(OLD_CLASSROOM_WINDOW) {
        return parent.target;
    }
    let old = parent.target.expand().unwrap();
    let window_start = chain[(height - OLD_CLASSROOM_WINDOW) as usize].timestamp_ms;
    let expected = (OLD_CLASSROOM_WINDOW - 1) * params.target_block_ms;
    let actual = parent.timestamp_ms.saturating_sub(window_start).clamp(
        expected / OLD_MAX_RETARGET_FACTOR,
        expected * OLD_MAX_RETARGET_FACTOR,
    );
    let expected = U256::from(expected);
    let scaled = (old / expected)
        .checked_mul(U256::from(actual))
        .and_then(|value| value.checked_add((old % expected) * actual / expected));
    let new = match scaled {
        Some(value) if value <= params.max_target => value,
        _ => params.max_target,
    };
    Target::from_u256(new)
}

/// A chain mined by virtual miners: whole headers, genesis first.
struct Run {
    params: NetworkParams,
    rule: Rule,
    chain: Vec<BlockHeader>,
    /// The virtual clock, ms.
    now_ms: f64,
    /// The moment the class started mining.
    start_ms: u64,
    rng: Rng,
}

impl Run {
    fn new(params: NetworkParams, rule: Rule, seed: u64) -> Run {
        let mut genesis = genesis_block(&params).header;
        if rule == Rule::Old {
            genesis.target =
                Target::from_u256(target_for_expected_hashes(OLD_CLASSROOM_INITIAL_EXPECTED_HASHES));
        }
        // The class starts mining a day after the genesis timestamp (in reality: months).
        let start_ms = genesis.timestamp_ms + 86_400_000;
        Run {
            params,
            rule,
            chain: vec![genesis],
            now_ms: start_ms as f64,
            start_ms,
            rng: Rng(seed),
        }
    }

    fn next_target(&self) -> Target {
        match self.rule {
            Rule::Old => old_next_target(&self.params, &self.chain),
            Rule::New => next_target(&self.params, &self.chain),
        }
    }

    fn median_time_past(&self) -> u64 {
        let span = self.params.median_time_span;
        let mut timestamps: Vec<u64> = self
            .chain
            .iter()
            .rev()
            .take(span)
            .map(|header| header.timestamp_ms)
            .collect();
        median(&mut timestamps)
    }

    /// Appends a block with this timestamp (checked against the consensus timestamp rules).
    fn push(&mut self, timestamp_ms: u64) {
        assert!(timestamp_ms > self.median_time_past(), "after the median");
        assert!(
            timestamp_ms <= self.now_ms as u64 + self.params.max_future_ms,
            "not too far ahead"
        );
        let target = self.next_target();
        let height = self.chain.len() as u64;
        self.chain.push(header(height, timestamp_ms, target));
    }

    /// The class (`tabs` tabs of one browser worker each) finds the next block; it is stamped
    /// honestly. Mining is memoryless, so the draw starts at the current moment.
    fn mine_one(&mut self, tabs: u64) {
        let rate_per_ms = (tabs * BROWSER_WORKER_HASHES_PER_SECOND) as f64 / 1_000.0;
        let mean_ms = expected_hashes(self.next_target()) / rate_per_ms;
        self.now_ms += self.rng.exponential(mean_ms);
        let timestamp = (self.now_ms as u64).max(self.median_time_past() + 1);
        self.push(timestamp);
    }

    /// Blocks (after genesis) whose timestamps fall in `[from, from + span)` of the virtual clock.
    fn blocks_between(&self, from_ms: u64, span_ms: u64) -> usize {
        self.chain[1..]
            .iter()
            .filter(|h| (from_ms..from_ms + span_ms).contains(&h.timestamp_ms))
            .count()
    }

    fn intervals(&self, from_height: usize, count: usize) -> Vec<u64> {
        self.chain[from_height..=from_height + count]
            .windows(2)
            .map(|pair| pair[1].timestamp_ms.saturating_sub(pair[0].timestamp_ms))
            .collect()
    }
}

fn median_of(mut values: Vec<u64>) -> u64 {
    values.sort_unstable();
    values[values.len() / 2]
}

fn mean_of(values: &[f64]) -> f64 {
    values.iter().sum::<f64>() / values.len() as f64
}

/// What a class sees, averaged over seeded runs.
#[derive(Debug)]
struct Pace {
    first_two_seconds: f64,
    median_interval_first_50: f64,
    after_pause_two_seconds: f64,
    /// Runs (of 100) with more than 3 blocks in the first 2 s.
    runs_over_three_at_start: usize,
}

const RUNS: u64 = 100;
const PAUSE_MS: u64 = 60_000;

fn pace(rule: Rule, tabs: u64) -> Pace {
    let (mut first, mut medians, mut after) = (Vec::new(), Vec::new(), Vec::new());
    let mut over_three = 0;
    for seed in 0..RUNS {
        let mut run = Run::new(NetworkParams::classroom(), rule, seed);
        for _ in 0..60 {
            run.mine_one(tabs);
        }
        let start = run.blocks_between(run.start_ms, 2_000);
        over_three += usize::from(start > 3);
        first.push(start as f64);
        medians.push(median_of(run.intervals(0, 50)) as f64);
        // Everyone stops for a minute (the teacher talks), then mining resumes.
        run.now_ms = run.chain.last().unwrap().timestamp_ms as f64 + PAUSE_MS as f64;
        let resume = run.now_ms as u64;
        for _ in 0..40 {
            run.mine_one(tabs);
        }
        after.push(run.blocks_between(resume, 2_000) as f64);
    }
    Pace {
        first_two_seconds: mean_of(&first),
        median_interval_first_50: mean_of(&medians),
        after_pause_two_seconds: mean_of(&after),
        runs_over_three_at_start: over_three,
    }
}

/// The figures of BENCHMARKS.md "Block pace", and loose bounds on the new rule that the old one
/// breaks (about 40 blocks in the first 2 s).
#[test]
fn block_pace_on_the_classroom_network_old_and_new() {
    println!(
        "classroom network, {RUNS} seeded runs each; means over runs \
         (median interval: the median of blocks 1-50's intervals, averaged)"
    );
    println!("rule | tabs | blocks in first 2 s | median interval, first 50 | blocks in 2 s after a 60 s pause | runs with > 3 blocks in first 2 s");
    let mut figures = Vec::new();
    for rule in [Rule::Old, Rule::New] {
        for tabs in [1, 30] {
            let pace = pace(rule, tabs);
            println!(
                "{rule:?} | {tabs} | {:.1} | {:.0} ms | {:.1} | {}",
                pace.first_two_seconds,
                pace.median_interval_first_50,
                pace.after_pause_two_seconds,
                pace.runs_over_three_at_start
            );
            figures.push((rule, tabs, pace));
        }
    }
    let target = NetworkParams::classroom().target_block_ms as f64;
    for (rule, tabs, pace) in figures.iter().filter(|(rule, ..)| *rule == Rule::New) {
        let what = format!("{rule:?} rule, {tabs} tabs");
        let start_limit = if *tabs == 1 { 3.0 } else { 8.0 };
        assert!(
            pace.first_two_seconds <= start_limit,
            "{what}: {pace:?} in the first 2 s"
        );
        assert!(
            pace.after_pause_two_seconds <= 3.0,
            "{what}: {pace:?} after a pause"
        );
        assert!(
            pace.median_interval_first_50 >= target / 4.0 && pace.median_interval_first_50 <= target * 2.0,
            "{what}: {pace:?} median interval"
        );
    }
    let one_tab = &figures.iter().find(|(r, t, _)| *r == Rule::New && *t == 1).unwrap().2;
    assert!(
        one_tab.runs_over_three_at_start <= 10,
        "one tab rarely sees more than 3 blocks at once: {one_tab:?}"
    );
}

