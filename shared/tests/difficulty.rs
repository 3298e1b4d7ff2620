//! The per-block difficulty rule (`validation::next_target`, LWMA over effective times) on its
//! own, and the block pace it gives a class: one tab or thirty, at the start, and after a pause.
//!
//! Nothing here hashes. A "virtual miner" draws each solve time from the exponential distribution
//! a real miner's solve times follow (mean: the block's expected hashes over the hash rate), with
//! a seeded generator, and stamps blocks the way honest nodes do (`max(now, median + 1)`). The old
//! rule (a retarget every `W` blocks by at most 4x, from the easy initial targets) is kept here,
//! copied from the last commit that had it, to measure both side by side:
//! `cargo test -p shared --test difficulty -- --nocapture block_pace` prints the figures that
//! BENCHMARKS.md ("Block pace") quotes.

#![cfg(not(target_arch = "wasm32"))]

mod common;

use common::Rng;
use shared::block::{genesis_block, BlockHeader};
use shared::params::{NetworkParams, BROWSER_WORKER_HASHES_PER_SECOND};
use shared::validation::{median, next_target};
use shared::work::{target_for_expected_hashes, Target, U256};

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
            genesis.target = Target::from_u256(target_for_expected_hashes(
                OLD_CLASSROOM_INITIAL_EXPECTED_HASHES,
            ));
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
            pace.median_interval_first_50 >= target / 4.0
                && pace.median_interval_first_50 <= target * 2.0,
            "{what}: {pace:?} median interval"
        );
    }
    let one_tab = &figures
        .iter()
        .find(|(r, t, _)| *r == Rule::New && *t == 1)
        .unwrap()
        .2;
    assert!(
        one_tab.runs_over_three_at_start <= 10,
        "one tab rarely sees more than 3 blocks at once: {one_tab:?}"
    );
}

/// Genesis, block 1 a day later, then one block per solve time (negative: a clock running
/// backwards), each carrying the target the rule demands. Only the rule is exercised here, not
/// the timestamp rules.
fn chain_with(params: &NetworkParams, solve_times_ms: &[i64]) -> Vec<BlockHeader> {
    let genesis = genesis_block(params).header;
    let mut chain = vec![genesis];
    let mut timestamp = genesis.timestamp_ms + 86_400_000;
    for step in std::iter::once(0).chain(solve_times_ms.iter().copied()) {
        timestamp = timestamp.checked_add_signed(step).expect("a valid clock");
        let target = next_target(params, &chain);
        chain.push(header(chain.len() as u64, timestamp, target));
    }
    chain
}

/// The target the rule demands after `solve_times_ms`.
fn target_after(params: &NetworkParams, solve_times_ms: &[i64]) -> Target {
    next_target(params, &chain_with(params, solve_times_ms))
}

/// On-time solve times for the first blocks, so the window is full of effective times.
fn on_time(p: &NetworkParams, count: usize) -> Vec<i64> {
    vec![p.target_block_ms as i64; count]
}

/// The rule, case by case on the classroom network (N = 20, T = 2 s, M = 5, solve times counted
/// up to 3 T, at most 10 times harder than the average per block). `target_after(solves)` is the
/// target of block `solves.len() + 2`.
#[test]
fn the_difficulty_rule_weights_clamps_and_caps() {
    let p = NetworkParams::classroom();
    let t = p.target_block_ms as i64;
    let initial = p.initial_target;
    assert_eq!(
        Target::from_u256(initial.expand().unwrap()),
        initial,
        "the initial target is canonical"
    );
    // Blocks 1 to 6 (M + 1) carry the initial target, whatever their timestamps.
    for solves in [vec![], on_time(&p, 4), vec![0, 50 * t, -t, 3]] {
        assert_eq!(target_after(&p, &solves), initial, "{solves:?}");
    }
    assert_ne!(
        target_after(&p, &on_time(&p, 5)),
        initial,
        "block 7 is computed"
    );

    // On time, the counted solve times are T against k = 15/16·T·n(n+1)/2: each block is 16/15
    // times easier than the window's average (the 15/16 makes up, on average, for what the
    // clamp and the median leave out of a real miner's solve times).
    let steady = on_time(&p, 5);
    let a = target_after(&p, &on_time(&p, 4)).expand().unwrap();
    assert_eq!(
        target_after(&p, &steady),
        Target::from_u256(a * U256::from(16u64) / U256::from(15u64))
    );

    let base = on_time(&p, 30);
    let with = |tail: &[i64]| {
        let mut solves = base.clone();
        solves.extend_from_slice(tail);
        target_after(&p, &solves)
    };
    // The effective time is the median of five timestamps: the newest two solve times do not
    // count yet, so one lie on the newest block, however far ahead, moves nothing at once.
    assert_eq!(with(&[60 * t]), with(&[t]), "a lie ahead, at once");
    assert_eq!(with(&[t, 60 * t]), with(&[t, t]), "two blocks later");
    // A pause counts as at most 3 T: a minute and 3 T weigh the same, 2 T less.
    assert_eq!(with(&[30 * t, t, t]), with(&[3 * t, t, t]), "clamped");
    assert_ne!(with(&[2 * t, t, t]), with(&[3 * t, t, t]), "not clamped");
    // Effective times never run back: a stamp behind, then one forward to where the clock
    // is, eases nothing (the version 2 rule counted -3 T then +6 T, weighted, as time gained).
    let warped = with(&[-4 * t, 6 * t, t, t, t]).expand().unwrap();
    let honest = with(&on_time(&p, 5)).expand().unwrap();
    assert!(warped <= honest, "a step back: {warped:x} > {honest:x}");
    // At once, every block: at most 10 times harder than the window's average per block.
    let hardest = with(&[0; 12]).expand().unwrap();
    let average = with(&[0; 11]).expand().unwrap();
    assert!(hardest * U256::from(10u64) >= average / U256::from(2u64));

    // Only the last N + M headers count: a slow start is forgotten.
    let mut forgotten = vec![3 * t; 5];
    forgotten.extend(on_time(&p, 30));
    let chain = chain_with(&p, &forgotten);
    let tail = &chain[chain.len() - p.difficulty_headers()..];
    assert_eq!(next_target(&p, &chain), next_target(&p, tail));
}

/// After a 60 s pause the next blocks ease by the clamp only: the pause counts as 3 T, so with
/// N = 20 the target is at most (k + 2 T·20) / k easier than without it, not 30 times.
#[test]
fn a_pause_eases_the_next_block_by_the_clamp_only() {
    let p = NetworkParams::classroom();
    let t = p.target_block_ms as i64;
    let mut solves = on_time(&p, 30);
    let steady = target_after(&p, &solves).expand().unwrap();
    solves.extend([60_000, t, t]);
    let after_pause = target_after(&p, &solves).expand().unwrap();
    assert!(after_pause > steady);
    // k = 15/16 · 2 s · 210 = 393.75 s; the pause adds at most 2 T at weight 20: 80 s (and the
    // on-time blocks 1/15 more, as every block on time does).
    assert!(
        after_pause * U256::from(394u64) <= steady * U256::from(394u64 + 80 + 30),
        "{after_pause:x} against {steady:x}"
    );
}

/// No overflow at either end: the easiest target with the slowest blocks stays at the limit,
/// the hardest target (1) with the fastest blocks stays 1, never 0.
#[test]
fn the_rule_neither_overflows_nor_reaches_zero() {
    let widest = Target(0x20ff_ffff);
    let p = NetworkParams {
        initial_target: widest,
        max_target: widest.expand().unwrap(),
        ..NetworkParams::default_network()
    };
    let t = p.target_block_ms as i64;
    assert_eq!(target_after(&p, &vec![100 * t; 40]), widest, "capped");
    let test = NetworkParams::test();
    assert_eq!(
        target_after(&test, &vec![6 * test.target_block_ms as i64; 40]),
        Target::from_u256(test.max_target),
        "the test network's easiest target"
    );
    let hardest = Target::from_u256(U256::one());
    let p = NetworkParams {
        initial_target: hardest,
        ..NetworkParams::default_network()
    };
    let after = target_after(&p, &vec![0; 40]);
    assert_eq!(after, hardest);
    assert_eq!(after.expand(), Some(U256::one()));
    // A window of blocks each at the widest compact target averages without overflowing.
    let headers: Vec<BlockHeader> = (1..=31).map(|h| header(h, h * 60_000, widest)).collect();
    let wide = NetworkParams {
        max_target: U256::MAX,
        ..NetworkParams::default_network()
    };
    assert_eq!(next_target(&wide, &headers), Target::from_u256(U256::MAX));
}

/// Runs `blocks` blocks mined by `tabs` tabs and returns the run.
fn mined(params: NetworkParams, tabs: u64, blocks: usize, seed: u64) -> Run {
    let mut run = Run::new(params, Rule::New, seed);
    for _ in 0..blocks {
        run.mine_one(tabs);
    }
    run
}

/// A steady hash rate settles at the target interval (one tab; the mean over 400 blocks of 20
/// seeded runs is within 10 % of 2 s).
#[test]
fn a_steady_hash_rate_converges_to_the_target_interval() {
    let p = NetworkParams::classroom();
    let means: Vec<f64> = (0..20)
        .map(|seed| {
            let run = mined(p.clone(), 1, 500, seed);
            let span = run.chain[500].timestamp_ms - run.chain[100].timestamp_ms;
            span as f64 / 400.0
        })
        .collect();
    let mean = mean_of(&means);
    let target = p.target_block_ms as f64;
    println!("steady mean interval {mean:.0} ms");
    assert!(
        (mean - target).abs() < target * 0.1,
        "mean interval {mean:.0} ms"
    );
}

/// A class of 30 tabs joins one tab mining alone. LWMA needs about 1.5 N blocks for a 30-fold
/// change: after N blocks the expected interval at 30 tabs is back from T/30 to at least T/3,
/// after 2 N blocks within a factor of 2 of T (medians over 50 runs).
#[test]
fn a_thirtyfold_hash_rate_settles_within_the_window() {
    let p = NetworkParams::classroom();
    let window = p.difficulty_window as usize;
    let interval_at = |target: Target, tabs: u64| {
        expected_hashes(target) * 1_000.0 / (tabs * BROWSER_WORKER_HASHES_PER_SECOND) as f64
    };
    let target = p.target_block_ms as f64;
    for (blocks, low, high) in [
        (window, target / 3.0, target * 2.0),
        (2 * window, target / 2.0, target * 2.0),
    ] {
        let mut settled: Vec<u64> = (0..50)
            .map(|seed| {
                let mut run = mined(p.clone(), 1, 100, seed);
                let before = interval_at(run.next_target(), 30);
                assert!(
                    before < target / 4.0,
                    "30 tabs at one tab's target: {before:.0} ms"
                );
                for _ in 0..blocks {
                    run.mine_one(30);
                }
                interval_at(run.next_target(), 30) as u64
            })
            .collect();
        settled.sort_unstable();
        let median = settled[settled.len() / 2] as f64;
        assert!(
            median > low && median < high,
            "expected interval after {blocks} blocks of 30 tabs: {median:.0} ms"
        );
    }
}

/// What one liar can do with timestamps, within the timestamp rules (after the median of the
/// last 11, at most `max_future_ms` = 120 s ahead of the receiver's clock).
///
/// One lying block, stamped as far ahead as allowed, counts as one 6 T solve time: the next block
/// is easier by the clamp only (as after a pause). The next honest block's timestamp is then far
/// behind it, a negative solve time clamped to -6 T, which cancels the lie: the target after it is
/// harder than if nobody had lied, never easier.
#[test]
fn a_lying_timestamp_eases_one_block_and_is_cancelled_by_the_next() {
    let p = NetworkParams::classroom();
    let t = p.target_block_ms as i64;
    let future = p.max_future_ms as i64;
    let honest = vec![t; 30];
    let steady = target_after(&p, &honest).expand().unwrap();
    let mut lied = honest.clone();
    // The liar's block found on time, stamped 120 s ahead of the clock.
    lied.push(t + future);
    let after_lie = target_after(&p, &lied).expand().unwrap();
    let limit = steady * U256::from(105u64) / U256::from(55u64);
    assert!(after_lie <= limit, "eased by the clamp only");
    // The next honest block, on time by the real clock: 120 s behind the lie.
    lied.push(t - future);
    let after_honest = target_after(&p, &lied).expand().unwrap();
    let mut truthful = honest;
    truthful.extend([t, t]);
    let no_lie = target_after(&p, &truthful).expand().unwrap();
    assert!(
        after_honest <= no_lie,
        "the lie is cancelled: {after_honest:x} > {no_lie:x}"
    );
}

/// How a run's miners stamp their blocks.
#[derive(Clone, Copy, Debug)]
enum Liar {
    /// Every block of the liar as far ahead as allowed.
    Ahead,
    /// The liar's blocks alternate: as far ahead as allowed, then just after the median.
    Alternating,
}

/// A run of 400 blocks by 30 tabs after 50 honest ones, in which a liar holding `1/share` of the
/// hash rate restamps every block it finds; returns the mean interval in real (virtual) time.
fn interval_with_liar(p: &NetworkParams, strategy: Liar, share: u64, seed: u64) -> f64 {
    let mut run = mined(p.clone(), 30, 50, seed);
    let start_ms = run.now_ms;
    let mut next_lie_ahead = true;
    for _ in 0..400 {
        // Drawn as an honest block; the liar restamps the blocks it found.
        run.mine_one(30);
        if !run.rng.next_u64().is_multiple_of(share) {
            continue;
        }
        let honest = run.chain.pop().unwrap();
        let ahead = matches!(strategy, Liar::Ahead) || next_lie_ahead;
        next_lie_ahead = !next_lie_ahead;
        let stamp = if ahead {
            run.now_ms as u64 + p.max_future_ms
        } else {
            run.median_time_past() + 1
        };
        assert_eq!(run.next_target(), honest.target);
        run.push(stamp);
    }
    (run.now_ms - start_ms) / 400.0
}

/// A liar restamping every block it finds (as far ahead as allowed, or alternating ahead and just
/// after the median) never makes blocks come faster than honest mining would (more coins sooner):
/// the mean interval stays above 0.9 T. One tab of 30 lying (or with a clock two minutes fast)
/// slows the class by at most 30 %. A third of the hash rate stamping 120 s ahead slows it a lot
/// (three of five stamps ahead put the effective time ahead, and the blocks after it count as
/// found at once until the clock catches up; a third of the last 11 timestamps also drags the
/// consensus median ahead): measured 4.1 T ahead, 1.3 T alternating (version 2: 3.9 T and
/// 5.7 T); a known limit, written in BENCHMARKS.md, asserted here only as "under 8 T".
#[test]
fn a_liar_can_slow_the_pace_but_never_speed_it_up() {
    let p = NetworkParams::classroom();
    let target = p.target_block_ms as f64;
    for (share, slowest) in [(30, 1.3), (10, 1.8), (3, 8.0)] {
        for strategy in [Liar::Ahead, Liar::Alternating] {
            let means: Vec<f64> = (0..10)
                .map(|seed| interval_with_liar(&p, strategy, share, seed))
                .collect();
            let mean = mean_of(&means);
            println!(
                "liar with 1/{share} of the hash rate, {strategy:?}: mean interval {mean:.0} ms"
            );
            assert!(
                mean > 0.9 * target && mean < slowest * target,
                "1/{share}, {strategy:?}: mean interval {mean:.0} ms"
            );
        }
    }
    let honest: Vec<f64> = (0..10)
        .map(|seed| interval_with_liar(&p, Liar::Ahead, u64::MAX, seed))
        .collect();
    let honest = mean_of(&honest);
    println!("no liar: mean interval {honest:.0} ms");
    assert!((honest - target).abs() < 0.1 * target, "{honest:.0} ms");
}
