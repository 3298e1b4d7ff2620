//! Traffic that grows with the room, not its square (issue 30): per block, at most about 3 relay
//! frames per member, block delivery included, and every tab's compare table still true (each
//! peer's tip as this node knows it is the tip that peer announces).
//!
//! A status is sent only when it says something the block announcement did not: a node that
//! takes a `new_block` onto the tip its peers knew needs no status, because every peer that took
//! the same announcement moves it along (see `docs/protocol.md`, "Status").

#![cfg(not(target_arch = "wasm32"))]

mod sim;

use sim::{Sim, SimConfig};

fn room(nodes: usize, max_direct_links: usize, seed: u64) -> Sim {
    let mut sim = Sim::new(
        seed,
        SimConfig {
            // Blocks only when a test mines one.
            mean_block_ms: 1_000_000_000_000,
            max_direct_links,
            ..SimConfig::default()
        },
    );
    for i in 0..nodes {
        let peer = sim.add_node(&format!("tab-{i}"), false);
        sim.join(peer);
    }
    // Hellos are paced (a join burst of 256 takes a while), and a minute after joining with no
    // block each tab says its tip once (the quiet-time status): both before anything measured.
    sim.run_for(75_000);
    sim
}

/// Every node's view of every other node's tip is that node's announced tip.
fn assert_tables_true(sim: &Sim, what: &str) {
    for viewer in sim.honest() {
        for peer in sim.honest() {
            if peer.id == viewer.id {
                continue;
            }
            let seen = viewer
                .node()
                .peer(&peer.id)
                .and_then(|info| info.tip)
                .map(|tip| tip.hash);
            let real = peer.node().advertised_tip().hash;
            assert_eq!(
                seen,
                Some(real),
                "{what}: {} sees {} at {:?}, it is at {}",
                viewer.node().name(),
                peer.node().name(),
                seen.map(|hash| hash.short()),
                real.short()
            );
        }
    }
}

/// Rooms of 40 and 128 tabs on the relay alone (`ROOM_SIZES=60,128,256` for other sizes), one
/// tab mining 10 blocks a second apart: at most 3 frames per member per block (before: one
/// `status` from every tab to every other, 40² frames a block), and every table true. Prints
/// the figures BENCHMARKS.md ("Room traffic") quotes:
/// `ROOM_SIZES=60,128,256 cargo test --release -p shared --test room_traffic -- --nocapture relay_frames`.
#[test]
fn relay_frames_per_block_grow_with_the_room() {
    let sizes: Vec<usize> = std::env::var("ROOM_SIZES")
        .ok()
        .map(|sizes| {
            sizes
                .split(',')
                .filter_map(|n| n.trim().parse().ok())
                .collect()
        })
        .unwrap_or_else(|| vec![40, 128]);
    for nodes in sizes {
        let mut sim = room(nodes, 0, 7);
        assert_tables_true(&sim, "after joining");
        sim.set_mining(0, true);
        let (frames_before, bytes_before) = (sim.relay_messages, sim.relay_bytes);
        let blocks = 10;
        for _ in 0..blocks {
            sim.mine_one(0).expect("a job");
            sim.run_for(1_000);
        }
        let frames = (sim.relay_messages - frames_before) as f64 / blocks as f64;
        let bytes = (sim.relay_bytes - bytes_before) as f64 / blocks as f64 / nodes as f64;
        println!(
            "{nodes} tabs: {frames:.0} relay frames per block ({:.2} per member), {bytes:.0} bytes per member per block",
            frames / nodes as f64
        );
        assert!(
            frames <= 3.0 * nodes as f64,
            "{frames:.0} relay frames per block in a room of {nodes}"
        );
        assert_eq!(sim.tip_counts().len(), 1, "one tip: {}", sim.tips());
        assert_tables_true(&sim, &format!("{nodes} tabs after 10 blocks"));
    }
}

/// Races and reorgs: three miners find blocks at once, over the relay and over direct links
/// (blocks gossiped by neighbours), some blocks lose: once quiet, every table is true.
#[test]
fn compare_tables_stay_true_through_races_and_reorgs() {
    for (seed, links) in (1..=12).map(|seed| (seed, if seed % 2 == 0 { 3 } else { 0 })) {
        let mut sim = room(12, links, seed);
        for miner in [0, 4, 8] {
            sim.set_mining(miner, true);
        }
        for round in 0..8 {
            for miner in [0, 4, 8] {
                if round % 2 == 0 || miner == 0 {
                    sim.mine_one(miner);
                }
            }
            sim.run_for(2_000);
        }
        sim.stop_all_mining();
        sim.run_for(10_000);
        assert_eq!(sim.tip_counts().len(), 1, "seed {seed}: {}", sim.tips());
        assert_tables_true(&sim, &format!("seed {seed}, {links} links"));
    }
}

/// A tab that mutes everyone drops their announcements: its peers must not move it along with
/// the room (it tells them it stopped listening), and it says where it is to anyone still
/// listening. After the unmute, every table is true again.
#[test]
fn a_tab_that_mutes_the_room_is_not_moved_along_with_it() {
    let mut sim = room(6, 0, 5);
    let loner = 5;
    sim.set_mining(0, true);
    sim.mine_one(0);
    sim.run_for(1_000);
    let before = sim.peers[loner].node().advertised_tip().hash;
    for other in 0..loner {
        sim.set_muted(loner, other, true);
    }
    sim.run_for(500);
    for _ in 0..4 {
        sim.mine_one(0);
        sim.run_for(1_000);
    }
    let room_tip = sim.peers[0].node().advertised_tip().hash;
    assert_eq!(
        sim.peers[loner].node().advertised_tip().hash,
        before,
        "it heard nothing"
    );
    for viewer in 0..loner {
        let seen = sim.peers[viewer]
            .node()
            .peer(&sim.peers[loner].id)
            .and_then(|info| info.tip)
            .map(|tip| tip.hash);
        assert_eq!(seen, Some(before), "tab-{viewer} moved the muted tab along");
        assert_ne!(seen, Some(room_tip));
    }
    for other in 0..loner {
        sim.set_muted(loner, other, false);
    }
    sim.run_for(5_000);
    assert_eq!(sim.tip_counts().len(), 1, "{}", sim.tips());
    assert_tables_true(&sim, "after the unmute");
}

/// With the relay away, blocks travel only over direct links, hop by hop: a tab that infers a
/// neighbour's tip from an announcement must still forward the block to it (the neighbour may
/// hear of it only through this tab). Every tab converges, and every table is true.
#[test]
fn over_direct_links_alone_blocks_still_reach_every_tab() {
    let mut exercised = 0;
    for seed in 1..=4 {
        let mut sim = room(12, 3, seed);
        sim.set_relay_up(false);
        sim.run_for(2_000);
        let components = sim.direct_components();
        let Some(component) = components.iter().find(|c| c.len() >= 4) else {
            continue;
        };
        exercised += 1;
        let miner = component[0];
        sim.set_mining(miner, true);
        for _ in 0..5 {
            sim.mine_one(miner);
            sim.run_for(1_000);
        }
        sim.stop_all_mining();
        sim.run_for(2_000);
        let tip = sim.peers[miner].node().advertised_tip().hash;
        for &member in component {
            assert_eq!(
                sim.peers[member].node().advertised_tip().hash,
                tip,
                "seed {seed}: tab-{member} did not get the miner's blocks over the links"
            );
        }
    }
    assert!(
        exercised >= 2,
        "only {exercised} seeds formed a mesh of 4 or more"
    );
}

/// A late joiner in a room where every tab has the same chain downloads that chain about once
/// (issue 30: 2.1 MB through the relay per joiner at 60 peers and 125 blocks, growing with room
/// size times chain length): every header and every block comes to it once, from one peer at a
/// time, in full requests, and it asks a few peers for their pools, not all of them.
#[test]
fn a_late_joiner_gets_each_header_and_block_once() {
    let nodes = 40;
    let chain = 600; // more than one `headers` reply (500) and than the download window (256)
    let mut sim = room(nodes, 0, 23);
    sim.set_mining(0, true);
    for _ in 0..chain {
        sim.now_ms += 10_000;
        sim.mine_one(0).expect("a job");
        sim.run_for(200);
    }
    sim.run_for(5_000);
    let late = sim.add_node("late", false);
    sim.peers[late].record_sent = true;
    sim.peers[late].record_received = true;
    let relay_bytes = sim.relay_bytes;
    sim.join(late);
    sim.run_for(20_000);
    assert_eq!(
        sim.peers[late].node().tree().tip_height(),
        sim.peers[0].node().tree().tip_height(),
        "the late joiner synced"
    );
    let of_type = |log: &[String], kind: &str| -> Vec<serde_json::Value> {
        log.iter()
            .map(|text| serde_json::from_str::<serde_json::Value>(text).expect("json"))
            .filter(|message| message["type"] == kind)
            .collect()
    };
    let late_peer = &sim.peers[late];
    let mut headers = std::collections::HashMap::<String, u32>::new();
    for reply in of_type(&late_peer.received_log, "headers") {
        for header in reply["headers"].as_array().expect("a list") {
            *headers.entry(header["prev_hash"].to_string()).or_default() += 1;
        }
    }
    let mut blocks = std::collections::HashMap::<String, u32>::new();
    for reply in of_type(&late_peer.received_log, "blocks") {
        for block in reply["blocks"].as_array().expect("a list") {
            *blocks
                .entry(block["header"]["prev_hash"].to_string())
                .or_default() += 1;
        }
    }
    for text in late_peer.sent_log.iter().take(12) {
        eprintln!("SENT {}", &text[..text.len().min(100)]);
    }
    for text in late_peer
        .sent_log
        .iter()
        .chain(late_peer.received_log.iter())
    {
        if text.contains("headers") || text.contains("error") {
            eprintln!("DBG {}", &text[..text.len().min(150)]);
        }
    }
    let header_asks = of_type(&late_peer.sent_log, "get_headers").len();
    let block_asks = of_type(&late_peer.sent_log, "get_blocks");
    let pool_asks = of_type(&late_peer.sent_log, "get_mempool").len();
    let headers_received: u32 = headers.values().sum();
    let blocks_received: u32 = blocks.values().sum();
    println!(
        "late joiner in a room of {nodes}, chain of {chain}: {header_asks} header requests, \
         {headers_received} headers for {} distinct, {} block requests, {blocks_received} blocks \
         for {} distinct, {pool_asks} pool requests, {} relay bytes while it joined",
        headers.len(),
        block_asks.len(),
        blocks.len(),
        sim.relay_bytes - relay_bytes
    );
    assert!(headers.len() >= chain, "it saw the whole chain's headers");
    assert_eq!(
        headers_received as usize,
        headers.len(),
        "each header came once"
    );
    assert_eq!(
        blocks_received as usize,
        blocks.len(),
        "each block came once"
    );
    // Full requests of `MAX_BLOCKS_PER_REQUEST`, not one hash at a time as the window frees.
    let full_requests = chain.div_ceil(shared::protocol::message::MAX_BLOCKS_PER_REQUEST);
    assert!(
        block_asks.len() <= full_requests + 2,
        "{} block requests for {chain} blocks (full ones would be {full_requests})",
        block_asks.len()
    );
    assert!(
        pool_asks <= shared::node::MEMPOOL_SOURCES,
        "{pool_asks} pool requests in a room of {nodes}"
    );
}
