//! Time warp: what a clock (a liar's, or an honest student's that runs wrong) can do to the
//! difficulty, under every timestamp the rules allow (after the median of the last 11, at most
//! `max_future_ms` ahead of the receivers' clocks). Issue 22, item 5.
//!
//! Nothing hashes. Each block is one draw: its work (exponential, mean 1, in units of the
//! block's expected hashes) and who found it (by hash share). A run with the same draws and every
//! block stamped honestly is the *baseline*; the figures compare each run with its baseline
//! block by block (same height, same luck), so they measure the stamps and nothing else (see
//! [`Figures`]):
//! - the *lever*: the same blocks found at the same moments, only restamped; how much easier
//!   (or harder: a lie that makes the class wait is a lie too) a later target is;
//! - the *window*: with the pace following the targets, the mean target over all runs against
//!   the baselines', over the worst window of `N` blocks; and the pace itself.
//!
//! The version 2 rule (signed solve times clamped to ±6 T, between raw timestamps) is kept here verbatim, but for
//! its parameters, to measure both side by side. `cargo test -p shared --release --test time_warp
//! -- --nocapture` prints the table BENCHMARKS.md ("Time warp") quotes.

#![cfg(not(target_arch = "wasm32"))]

mod common;

use common::Rng;
use shared::block::{genesis_block, BlockHeader};
use shared::params::{NetworkParams, BROWSER_WORKER_HASHES_PER_SECOND};
use shared::validation::{median, next_target};
use shared::work::{Target, U256};

type Rule = fn(&NetworkParams, &[BlockHeader]) -> Target;

/// The version 2 rule (the last commit that had it: `4cba141`), verbatim but for its parameters
/// (`F` = 6, and `N` = 10 on the classroom network): signed solve times
/// `clamp(ts_j - ts_{j-1}, -6T, 6T)` between raw timestamps.
fn version_2(params: &NetworkParams, recent: &[BlockHeader]) -> Target {
    let window = if params.name == "tabchain-classroom" {
        10
    } else {
        params.difficulty_window.max(1) as usize
    };
    let after_genesis = recent.iter().position(|header| header.height > 0);
    let recent = &recent[after_genesis.unwrap_or(recent.len())..];
    let recent = &recent[recent.len().saturating_sub(window + 1)..];
    let solved = recent.len().saturating_sub(1);
    if solved == 0 {
        return params.initial_target;
    }
    let n = solved as u64;
    let interval = i128::from(params.target_block_ms.max(1));
    let limit = interval * 6;
    let weighted: i128 = recent
        .windows(2)
        .zip(1i128..)
        .map(|(pair, weight)| {
            let solve = i128::from(pair[1].timestamp_ms) - i128::from(pair[0].timestamp_ms);
            weight * solve.clamp(-limit, limit)
        })
        .sum();
    let steady = interval * i128::from(n * (n + 1) / 2);
    let floor = steady / i128::from(params.max_hardening_factor.max(1));
    let weighted = U256::from(weighted.max(floor).max(1) as u128);
    let steady = U256::from(steady as u128);
    let count = U256::from(n);
    let (quotients, remainders) = recent[1..]
        .iter()
        .map(|header| header.target.expand().unwrap_or(params.max_target))
        .fold((U256::zero(), U256::zero()), |(q, r), target| {
            (q + target / count, r + target % count)
        });
    let average = quotients + remainders / count;
    let scaled = (average / steady)
        .checked_mul(weighted)
        .and_then(|high| high.checked_add((average % steady) * weighted / steady));
    let new = match scaled {
        Some(value) if value <= params.max_target => value.max(U256::one()),
        _ => params.max_target,
    };
    Target::from_u256(new)
}

const RULES: [(&str, Rule); 2] = [("version 2", version_2), ("version 3", next_target)];

/// How the block a draw gives to a miner is stamped.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Stamp {
    /// By a clock `skew_ms` off: `max(clock, median + 1)`, as the miner does.
    Honest { skew_ms: i64 },
    /// As far ahead as the liar: 115 s ahead of the true clock (the limit is 120 s).
    Ahead,
    /// Just after the median of the last 11, as far back as allowed.
    Behind,
    /// Whichever of the above, or of the parent's timestamp plus 1 to 6 T, makes the next
    /// target easiest (a liar that looks one block ahead).
    Greedy,
}

/// Who mines: each miner's share of the hash power and how it stamps.
#[derive(Clone, Debug)]
struct Miner {
    share: f64,
    stamp: Stamp,
}

/// Where a run's lies are.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Lies {
    /// Every block of a non-honest miner is stamped its way from `ATTACK_FROM` on.
    Always,
    /// Only the block at `ATTACK_FROM` (whoever found it) is stamped `stamp`; all others honest.
    One(Stamp),
    /// The blocks at `ATTACK_FROM .. ATTACK_FROM + count` are all the attacker's (a private
    /// branch), stamped greedily; the attacker has the class's hash power.
    Burst { count: u64 },
}

const ATTACK_FROM: u64 = 60;
const AHEAD_MS: u64 = 115_000;

/// One run: the chain's headers, from genesis.
fn run(
    params: &NetworkParams,
    rule: Rule,
    miners: &[Miner],
    lies: Lies,
    blocks: u64,
    seed: u64,
    timeline: Option<&[f64]>,
) -> (Vec<BlockHeader>, Vec<f64>) {
    let mut rng = Rng(seed);
    let mut times = vec![0.0];
    let genesis = genesis_block(params).header;
    let mut chain = vec![genesis];
    // The class starts mining a day after the genesis timestamp.
    let mut now_ms = (genesis.timestamp_ms + 86_400_000) as f64;
    // Five tabs of one worker each: the class's hash rate whoever holds it.
    let rate_per_ms = (5 * BROWSER_WORKER_HASHES_PER_SECOND) as f64 / 1_000.0;
    for height in 1..=blocks {
        let target = rule(params, &chain);
        let work = -rng.uniform().ln();
        let pick = rng.uniform();
        now_ms += work * target.work().as_f64() / rate_per_ms;
        if let Some(timeline) = timeline {
            now_ms = timeline[height as usize];
        }
        times.push(now_ms);
        let mut chosen = 0;
        let mut cumulative = 0.0;
        for (index, miner) in miners.iter().enumerate() {
            cumulative += miner.share;
            if pick < cumulative {
                chosen = index;
                break;
            }
        }
        let now = now_ms as u64;
        let mut recent: Vec<u64> = chain
            .iter()
            .rev()
            .take(params.median_time_span)
            .map(|h| h.timestamp_ms)
            .collect();
        let mtp = median(&mut recent);
        let honest = |skew_ms: i64| now.saturating_add_signed(skew_ms).max(mtp + 1);
        let own = match miners[chosen].stamp {
            Stamp::Honest { skew_ms } => Stamp::Honest { skew_ms },
            _ if height < ATTACK_FROM => Stamp::Honest { skew_ms: 0 },
            stamp => stamp,
        };
        let stamp = match lies {
            Lies::Always => own,
            Lies::One(stamp) if height == ATTACK_FROM => stamp,
            Lies::Burst { count } if (ATTACK_FROM..ATTACK_FROM + count).contains(&height) => {
                Stamp::Greedy
            }
            _ => match own {
                Stamp::Honest { skew_ms } => Stamp::Honest { skew_ms },
                _ => Stamp::Honest { skew_ms: 0 },
            },
        };
        let child = |timestamp_ms: u64| BlockHeader {
            height,
            timestamp_ms,
            target,
            ..genesis
        };
        let timestamp = match stamp {
            Stamp::Honest { skew_ms } => honest(skew_ms),
            Stamp::Ahead => (now + AHEAD_MS).max(mtp + 1),
            Stamp::Behind => mtp + 1,
            Stamp::Greedy => {
                let parent = chain.last().expect("genesis at least").timestamp_ms;
                let mut candidates = vec![mtp + 1, now + AHEAD_MS, honest(0)];
                candidates.extend((1..=6).map(|k| parent + k * params.target_block_ms));
                candidates
                    .into_iter()
                    .filter(|&ts| ts > mtp && ts <= now + AHEAD_MS)
                    .max_by_key(|&ts| {
                        chain.push(child(ts));
                        let next = rule(params, &chain).expand().unwrap_or(U256::zero());
                        chain.pop();
                        (next, std::cmp::Reverse(ts))
                    })
                    .expect("honest(0) is a candidate")
            }
        };
        assert!(timestamp > mtp && timestamp <= now + params.max_future_ms);
        chain.push(child(timestamp));
    }
    (chain, times)
}

/// `a / b` of two targets, as numbers (how many times easier `a` is than `b`).
fn easier(a: Target, b: Target) -> f64 {
    b.work().as_f64() / a.work().as_f64()
}

/// What a scenario does, against its baselines (same draws, honest stamps), from `ATTACK_FROM`.
#[derive(Clone, Copy, Debug, Default)]
struct Figures {
    /// The lever, with the blocks found at the same moments and only restamped: the worst
    /// block over all runs, and the 99th percentile of the runs' worst blocks.
    easier_max: f64,
    easier_p99: f64,
    easier_p50: f64,
    harder_max: f64,
    harder_p99: f64,
    /// With the pace following the targets (easier targets, sooner blocks): the mean target
    /// over the runs at each height against the baselines' mean, over the worst window of `N`.
    window_easier: f64,
    window_harder: f64,
    /// The mean block interval against the baselines'.
    pace: f64,
}

fn percentile(mut values: Vec<f64>, p: f64) -> f64 {
    values.sort_by(f64::total_cmp);
    values[((values.len() - 1) as f64 * p).round() as usize]
}

fn measure(
    params: &NetworkParams,
    rule: Rule,
    miners: &[Miner],
    lies: Lies,
    blocks: u64,
    seeds: u64,
) -> Figures {
    let honest: Vec<Miner> = miners
        .iter()
        .map(|m| Miner {
            share: m.share,
            stamp: Stamp::Honest { skew_ms: 0 },
        })
        .collect();
    let from = ATTACK_FROM as usize;
    let (mut easier_runs, mut harder_runs) = (Vec::new(), Vec::new());
    let mut sum_attacked = vec![0.0; blocks as usize + 1];
    let mut sum_baseline = vec![0.0; blocks as usize + 1];
    let (mut span_attacked, mut span_baseline) = (0.0, 0.0);
    for seed in 0..seeds {
        let (baseline, timeline) = run(params, rule, &honest, Lies::Always, blocks, seed, None);
        let (restamped, _) = run(params, rule, miners, lies, blocks, seed, Some(&timeline));
        let ratios: Vec<f64> = (from..restamped.len())
            .map(|h| easier(restamped[h].target, baseline[h].target))
            .collect();
        easier_runs.push(ratios.iter().copied().fold(0.0, f64::max));
        harder_runs.push(ratios.iter().map(|r| 1.0 / r).fold(0.0, f64::max));
        let (attacked, attacked_times) = run(params, rule, miners, lies, blocks, seed, None);
        for h in from..attacked.len() {
            sum_attacked[h] += 1.0 / attacked[h].target.work().as_f64();
            sum_baseline[h] += 1.0 / baseline[h].target.work().as_f64();
        }
        // By the true clock: a lying stamp at the end must not count.
        let span = |times: &[f64]| times[times.len() - 1] - times[from];
        span_attacked += span(&attacked_times);
        span_baseline += span(&timeline);
    }
    let window = params.difficulty_window as usize;
    let windows: Vec<f64> = (from + window..=blocks as usize + 1)
        .map(|end| {
            let attacked: f64 = sum_attacked[end - window..end].iter().sum();
            let baseline: f64 = sum_baseline[end - window..end].iter().sum();
            attacked / baseline
        })
        .collect();
    Figures {
        easier_max: percentile(easier_runs.clone(), 1.0),
        easier_p99: percentile(easier_runs.clone(), 0.99),
        easier_p50: percentile(easier_runs, 0.5),
        harder_max: percentile(harder_runs.clone(), 1.0),
        harder_p99: percentile(harder_runs, 0.99),
        window_easier: windows.iter().copied().fold(0.0, f64::max),
        window_harder: windows.iter().map(|r| 1.0 / r).fold(0.0, f64::max),
        pace: span_attacked / span_baseline,
    }
}

impl std::fmt::Display for Figures {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "lever easier {:7.2}x (p99 {:6.2}x, p50 {:5.2}x) harder {:7.2}x (p99 {:6.2}x) | mean window easier {:5.2}x harder {:5.2}x | interval {:4.2}x",
            self.easier_max,
            self.easier_p99,
            self.easier_p50,
            self.harder_max,
            self.harder_p99,
            self.window_easier,
            self.window_harder,
            self.pace
        )
    }
}

fn one_honest_class() -> Vec<Miner> {
    vec![Miner {
        share: 1.0,
        stamp: Stamp::Honest { skew_ms: 0 },
    }]
}

fn a_third(stamp: Stamp) -> Vec<Miner> {
    vec![
        Miner {
            share: 1.0 / 3.0,
            stamp,
        },
        Miner {
            share: 2.0 / 3.0,
            stamp: Stamp::Honest { skew_ms: 0 },
        },
    ]
}

/// Five tabs of equal hash power whose clocks are `-s, -s/2, 0, s/2, s` off.
fn skewed_class(skew_ms: i64) -> Vec<Miner> {
    [-2, -1, 0, 1, 2]
        .into_iter()
        .map(|k| Miner {
            share: 0.2,
            stamp: Stamp::Honest {
                skew_ms: skew_ms * k / 2,
            },
        })
        .collect()
}

const SEEDS: u64 = 300;
const BLOCKS: u64 = 240;

fn scenarios(params: &NetworkParams, rule: Rule) -> Vec<(String, Figures)> {
    let mut rows = Vec::new();
    for stamp in [Stamp::Ahead, Stamp::Behind] {
        let figures = measure(
            params,
            rule,
            &one_honest_class(),
            Lies::One(stamp),
            ATTACK_FROM + 3 * params.difficulty_window,
            SEEDS,
        );
        rows.push((format!("one lie {stamp:?}"), figures));
    }
    for stamp in [Stamp::Ahead, Stamp::Behind, Stamp::Greedy] {
        let figures = measure(params, rule, &a_third(stamp), Lies::Always, BLOCKS, SEEDS);
        rows.push((format!("a third {stamp:?}"), figures));
    }
    rows
}

/// The bounds of issue 22 on the version 3 rule, and the version 2 rule breaking them (so this
/// test fails on it), on the classroom network (T = 2 s, where the 120 s future limit is 60 block
/// intervals) and the main one:
/// - a miner with a third of the hash power, stamping as it likes (ahead, behind, or greedily),
///   makes no window of `N` blocks more than 2x easier than honest stamps would, with the pace
///   following the targets (measured: at most 1.0x; version 2: 49x);
/// - one lying block, ahead or behind: its lever on later targets is at most 1.5x easier and 2x
///   harder in 99 runs of 100 (measured 1.41x and 1.62x; version 2: 3.2x and 15x). The worst run
///   of 300 is printed, not bounded (1.52x): a lie moves the newest effective time by one honest
///   solve time, which weighs most when the honest blocks before it were quick (the weighted
///   sum is small); no rule that reads timestamps can make that weigh nothing.
///
/// BENCHMARKS.md ("Time warp") has the table.
#[test]
fn no_minority_clock_bends_the_difficulty() {
    for params in [NetworkParams::classroom(), NetworkParams::default_network()] {
        for (rule_name, rule) in RULES {
            let rows = scenarios(&params, rule);
            for (scenario, figures) in &rows {
                println!("{:20} {rule_name:10} {scenario:16} {figures}", params.name);
            }
            let third = rows
                .iter()
                .filter(|(scenario, _)| scenario.starts_with("a third"))
                .map(|(_, f)| f.window_easier)
                .fold(0.0, f64::max);
            let lie_easier = rows
                .iter()
                .filter(|(scenario, _)| scenario.starts_with("one lie"))
                .map(|(_, f)| f.easier_p99)
                .fold(0.0, f64::max);
            let lie_harder = rows
                .iter()
                .filter(|(scenario, _)| scenario.starts_with("one lie"))
                .map(|(_, f)| f.harder_p99)
                .fold(0.0, f64::max);
            let holds = third <= 2.0 && lie_easier <= 1.5 && lie_harder <= 2.0;
            if rule_name == "version 3" {
                assert!(
                    holds,
                    "{}: a third {third:.2}x, one lie {lie_easier:.2}x easier, {lie_harder:.2}x harder",
                    params.name
                );
            } else {
                assert!(!holds, "{}: version 2 breaks the bounds", params.name);
            }
        }
    }
}

/// Ten blocks in a row by one miner (a private branch with the class's hash power), each stamped
/// to make the next target easiest (the burst eased the target 79x). Version 3: no
/// target after the burst is more than 1.5x easier than after the same ten stamped honestly
/// (measured 1.32x), and no window 2x easier with the pace following; version 2 breaks both.
#[test]
fn a_burst_of_warped_blocks() {
    let params = NetworkParams::classroom();
    for (rule_name, rule) in RULES {
        let figures = measure(
            &params,
            rule,
            &one_honest_class(),
            Lies::Burst { count: 10 },
            ATTACK_FROM + 40,
            SEEDS,
        );
        println!("burst of 10, {rule_name}: {figures}");
        let holds = figures.easier_max <= 1.5 && figures.window_easier <= 2.0;
        assert_eq!(holds, rule_name == "version 3", "{rule_name}: {figures}");
    }
}

/// Honest clocks that disagree: five tabs of equal hash power whose clocks are `-s, -s/2, 0,
/// s/2, s` off. What it costs in pace (the mean interval against clocks that agree, same draws).
/// Version 3: clocks within ±10 s slow the class by at most 1.5x (version 2: 2.4x). Wider skews
/// are printed for BENCHMARKS.md: both rules slow down (a fast clock pushes the effective time
/// ahead, and the blocks after it count as found at once), version 3 less.
#[test]
fn honest_clock_skew_costs_little() {
    let params = NetworkParams::classroom();
    for (rule_name, rule) in RULES {
        for skew_s in [0i64, 10, 30, 60] {
            let figures = measure(
                &params,
                rule,
                &skewed_class(skew_s * 1_000),
                Lies::Always,
                BLOCKS,
                SEEDS / 3,
            );
            println!("clocks ±{skew_s:2} s, {rule_name}: {figures}");
            if skew_s == 10 {
                assert_eq!(
                    figures.pace <= 1.5,
                    rule_name == "version 3",
                    "{rule_name}: {figures}"
                );
            }
        }
    }
}
