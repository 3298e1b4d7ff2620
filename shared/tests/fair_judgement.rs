//! Fair judgement: in a room of honest nodes only, nobody is ever charged with an offence,
//! whatever happens to the room. Late joiners arrive while payments are pending, the room splits
//! and heals (reorgs re-announce payments the winning branch already spent), nodes leave and
//! come back, and drivers fall behind: storage that stalls for seconds, an inbox that sheds
//! messages. What a node cannot judge yet, or what it lost itself, must never count against
//! a peer. A failing seed replays with `SIM_SEED=<seed> cargo test -p shared --test fair_judgement`.

#![cfg(not(target_arch = "wasm32"))]

mod sim;

use shared::node::NodeEvent;
use shared::params::NetworkParams;
use sim::{Sim, SimConfig};

const SECOND: u64 = 1_000;
const MINUTE: u64 = 60 * SECOND;

/// Every offence any honest node charged, as "node: peer charged for reason".
fn offences(sim: &Sim) -> Vec<String> {
    sim.honest()
        .flat_map(|peer| {
            peer.events.iter().filter_map(move |event| match event {
                NodeEvent::PeerMisbehaved {
                    peer: offender,
                    reason,
                    score,
                    ..
                } => Some(format!(
                    "{} charged {} ({score} points): {reason}",
                    peer.node().name(),
                    offender.short()
                )),
                _ => None,
            })
        })
        .collect()
}

fn honest_room(seed: u64) -> Sim {
    let mut sim = Sim::new(
        seed,
        SimConfig {
            // The relay and direct links are ordered and reliable; what is lost, the drivers lose.
            loss: 0.0,
            mean_tx_ms: Some(4 * SECOND),
            // The test network's pace: the simulator finds blocks on a clock, not by hashing, so a
            // faster clock would only make the rule raise the difficulty (and our hashing) forever.
            mean_block_ms: NetworkParams::test().target_block_ms,
            max_direct_links: if seed.is_multiple_of(2) { 0 } else { 4 },
            ..SimConfig::default()
        },
    );
    let founders = 3 + (seed % 3) as usize;
    let late = 1 + (seed % 2) as usize;
    let nodes: Vec<usize> = (0..founders + late)
        .map(|i| sim.add_node(&format!("n{i}"), true))
        .collect();
    for &node in &nodes[..founders] {
        sim.join(node);
    }
    let count = nodes.len();
    for round in 0..8 {
        if round == 2 || round == 4 {
            // A late joiner, while payments are pending in everyone's pool.
            if let Some(&joiner) = nodes[founders..].get(round / 2 - 1) {
                sim.join(joiner);
            }
        }
        let node = nodes[sim.rng.below(count as u64) as usize];
        let action = sim.rng.below(6);
        if std::env::var("SIM_TRACE").is_ok() {
            eprintln!("t={} round {round}: action {action} on n{node}", sim.now_ms);
        }
        match action {
            0 => {
                let groups: Vec<u32> = (0..count).map(|_| sim.rng.below(2) as u32).collect();
                sim.set_groups(&groups);
                sim.run_for(MINUTE);
                continue;
            }
            1 => sim.set_groups(&vec![0; count]),
            2 => {
                sim.leave(node);
                let away = sim.rng.below(30 * SECOND);
                sim.run_for(away);
                sim.join(node);
            }
            3 => {
                // Storage falls behind for up to 40 s: the driver cannot take peer messages.
                let stall = 2 * SECOND + sim.rng.below(38 * SECOND);
                sim.set_driver_stalled(node, true);
                sim.run_for(stall);
                sim.set_driver_stalled(node, false);
            }
            4 => {
                // A full inbox sheds a fifth of what arrives for a while.
                sim.peers[node].shed_rate = 0.2;
                sim.run_for(30 * SECOND);
                sim.peers[node].shed_rate = 0.0;
            }
            _ => {}
        }
        sim.run_for(MINUTE);
    }
    sim.set_groups(&vec![0; count]);
    for &node in &nodes {
        sim.join(node);
    }
    sim.config.mean_tx_ms = None;
    sim.run_for(MINUTE);
    sim.stop_all_mining();
    sim.run_for(2 * MINUTE);
    sim
}

fn check(seed: u64) -> Result<(), String> {
    let sim = honest_room(seed);
    let tips = sim.tip_counts();
    if tips.len() != 1 {
        return Err(format!(
            "seed {seed}: the room did not converge: {}",
            sim.tips()
        ));
    }
    let charged = offences(&sim);
    if !charged.is_empty() {
        return Err(format!(
            "seed {seed}: {} offences in a room of honest nodes, first: {}",
            charged.len(),
            charged[..charged.len().min(3)].join("; ")
        ));
    }
    Ok(())
}

#[test]
fn honest_rooms_charge_nobody_and_converge() {
    if let Ok(seed) = std::env::var("SIM_SEED") {
        check(seed.parse().expect("SIM_SEED is a number")).unwrap();
        return;
    }
    let seeds: u64 = std::env::var("SIM_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(300);
    // Seeds are independent: run them on every core (two threads on CI's two cores).
    let threads = std::thread::available_parallelism().map_or(1, usize::from) as u64;
    let mut failures: Vec<String> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|worker| {
                scope.spawn(move || {
                    (worker..seeds)
                        .step_by(threads as usize)
                        .filter_map(|seed| check(seed).err())
                        .collect::<Vec<String>>()
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|worker| worker.join().expect("a seed panicked"))
            .collect()
    });
    failures.sort();
    assert!(
        failures.is_empty(),
        "{} of {seeds} honest rooms went wrong; the first:\n{}",
        failures.len(),
        failures[..failures.len().min(5)].join("\n")
    );
}
