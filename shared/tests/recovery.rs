//! Recovery after the user cut peers off (issue 12): unmuting exchanges state at once, and a
//! payment made while cut off reaches the others afterwards, even by a node that does not mine.

#![cfg(not(target_arch = "wasm32"))]

mod sim;

use shared::node::OwnTxState;
use sim::{Sim, SimConfig};

fn two_quiet_nodes(seed: u64) -> (Sim, usize, usize) {
    let mut sim = Sim::new(
        seed,
        SimConfig {
            mean_block_ms: u64::MAX / 4,
            ..SimConfig::default()
        },
    );
    let a = sim.add_node("a", true);
    let b = sim.add_node("b", true);
    sim.join(a);
    sim.join(b);
    sim.run_for(1_000);
    (sim, a, b)
}

fn mine(sim: &mut Sim, node: usize, blocks: usize) {
    for _ in 0..blocks {
        sim.now_ms += 2_000;
        sim.mine_one(node).expect("a job");
        sim.run_for(200);
    }
}

#[test]
fn unmuting_a_peer_catches_up_at_once_without_a_new_block() {
    let (mut sim, a, b) = two_quiet_nodes(3);
    sim.set_muted(a, b, true);
    mine(&mut sim, b, 2);
    sim.stop_all_mining();
    assert_ne!(
        sim.peers[a].node().tip_status(),
        sim.peers[b].node().tip_status(),
        "muted, a does not follow b"
    );
    sim.set_muted(a, b, false);
    sim.run_for(2_000);
    assert_eq!(
        sim.peers[a].node().tip_status(),
        sim.peers[b].node().tip_status(),
        "a caught up with b within 2 s of unmuting, with nobody mining"
    );
}

#[test]
fn a_payment_made_while_cut_off_confirms_after_the_reorg_without_its_sender_mining() {
    let (mut sim, a, b) = two_quiet_nodes(5);
    mine(&mut sim, a, 3);
    // Both cut each other off, as the partition controls of two tabs do.
    sim.set_muted(a, b, true);
    sim.set_muted(b, a, true);
    let to = sim.peers[b].node().address();
    assert!(sim.send(a, to, 5, 1), "a has coins");
    let payment = sim.peers[a]
        .node()
        .own_transactions()
        .last()
        .expect("sent")
        .id;
    mine(&mut sim, a, 1);
    assert!(matches!(
        sim.peers[a].node().own_transactions().last().unwrap().state,
        OwnTxState::Confirmed { .. }
    ));
    // b mines a heavier branch alone.
    mine(&mut sim, b, 4);
    sim.set_mining(a, false);
    sim.set_muted(a, b, false);
    sim.set_muted(b, a, false);
    sim.run_for(5_000);
    assert_eq!(
        sim.peers[a].node().tree().tip_hash(),
        sim.peers[b].node().tree().tip_hash(),
        "a reorganised onto b's heavier branch"
    );
    assert!(
        sim.peers[b].node().mempool().contains(&payment),
        "the payment that left a's chain in the reorg reached b"
    );
    // b mines on; the payment confirms without a mining.
    mine(&mut sim, b, 1);
    sim.run_for(2_000);
    let state = &sim.peers[a]
        .node()
        .own_transactions()
        .find(|own| own.id == payment)
        .unwrap()
        .state;
    assert!(
        matches!(state, OwnTxState::Confirmed { .. }),
        "the payment confirmed on the winning chain: {state:?}"
    );
}
