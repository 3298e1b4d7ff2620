//! Simulator throughput: simulated time per wall-clock second for 10 and 50 nodes, and the bytes
//! a newcomer needs to sync 10,000 blocks against sending the whole chain as one message (as the
//! original project did on every new block). Run: `cargo bench -p shared --bench simulator`.

#[path = "../tests/sim/mod.rs"]
mod sim;

use sim::{Sim, SimConfig};
use std::time::Instant;

const MINUTE: u64 = 60_000;

fn simulated_seconds_per_wall_second(nodes: usize, simulated_minutes: u64) -> (f64, u64) {
    let mut sim = Sim::new(
        42,
        SimConfig {
            mean_tx_ms: Some(5_000),
            ..SimConfig::default()
        },
    );
    let indexes: Vec<usize> = (0..nodes)
        .map(|i| sim.add_node(&format!("n{i}"), true))
        .collect();
    for index in indexes {
        sim.join(index);
    }
    let started = Instant::now();
    sim.run_for(simulated_minutes * MINUTE);
    let wall = started.elapsed().as_secs_f64();
    let height = sim.peers[0].node().tree().tip_height();
    ((simulated_minutes * 60) as f64 / wall, height)
}

fn newcomer_bytes() -> (u64, u64, usize) {
    let mut sim = Sim::new(3, SimConfig::default());
    let veteran = sim.add_node("veteran", true);
    sim.join(veteran);
    sim.run_for(1);
    for _ in 0..10_000 {
        sim.now_ms += 10_000;
        sim.mine_one(veteran).expect("a job");
    }
    sim.set_mining(veteran, false);
    let whole_chain: usize = sim.peers[veteran]
        .node()
        .tree()
        .active_blocks(0, usize::MAX)
        .iter()
        .map(|block| serde_json::to_string(block.as_ref()).expect("json").len() + 1)
        .sum();
    let newcomer = sim.add_node("newcomer", false);
    sim.join(newcomer);
    while sim.peers[newcomer].node().tree().tip_height() < 10_000 {
        sim.run_for(5_000);
    }
    let (messages_in, bytes_in, _, bytes_out) = sim.traffic(newcomer);
    (messages_in, bytes_in + bytes_out, whole_chain)
}

fn main() {
    if std::env::args().any(|arg| arg == "--list") {
        return;
    }
    for (nodes, minutes) in [(10, 60), (50, 10)] {
        let (ratio, height) = simulated_seconds_per_wall_second(nodes, minutes);
        println!("simulator, {nodes} nodes, {minutes} simulated minutes (height {height}): {ratio:.0} simulated seconds per wall-clock second");
    }
    let (messages, bytes, whole_chain) = newcomer_bytes();
    println!(
        "newcomer sync of 10,000 blocks: {messages} messages in, {bytes} bytes both ways; \
         the whole chain in one message: {whole_chain} bytes (ratio {:.2}); the original re-sent \
         the whole chain on every block",
        bytes as f64 / whole_chain as f64
    );
}
