//! Payments to us as the wallet shows them (issue 16: "the receiver is never told"): pending
//! while in the pool, then received in a block with its confirmations, with the sender's name.

#![cfg(not(target_arch = "wasm32"))]

mod sim;

use shared::view::{incoming_payments, AddressBook, IncomingState, Names};
use sim::{Sim, SimConfig};

#[test]
fn a_payment_to_us_shows_pending_then_its_block_and_confirmations_with_the_senders_name() {
    let mut sim = Sim::new(
        4,
        SimConfig {
            mean_block_ms: 1_000_000_000_000,
            ..SimConfig::default()
        },
    );
    let alice = sim.add_node("alice", true);
    let bob = sim.add_node("bob", false);
    sim.join(alice);
    sim.join(bob);
    sim.run_for(1_000);
    for _ in 0..2 {
        sim.now_ms += 1_000;
        sim.mine_one(alice).expect("a job");
        sim.run_for(300);
    }
    let names = |sim: &Sim| Names::new(sim.peers[bob].node(), &AddressBook::default());
    assert!(incoming_payments(sim.peers[bob].node(), &names(&sim)).is_empty());

    let to = sim.peers[bob].node().address();
    assert!(sim.send(alice, to, 7, 1));
    sim.run_for(500);
    let rows = incoming_payments(sim.peers[bob].node(), &names(&sim));
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].amount, 7);
    assert_eq!(rows[0].from, sim.peers[alice].node().address());
    assert_eq!(rows[0].from_name.as_deref(), Some("alice"));
    assert_eq!(rows[0].state, IncomingState::Pending);

    for _ in 0..3 {
        sim.now_ms += 1_000;
        sim.mine_one(alice).expect("a job");
        sim.run_for(300);
    }
    let rows = incoming_payments(sim.peers[bob].node(), &names(&sim));
    assert_eq!(rows.len(), 1, "the same payment, now in a block");
    assert_eq!(
        rows[0].state,
        IncomingState::Confirmed {
            height: 3,
            confirmations: 3
        }
    );
    assert_eq!(
        rows[0].describe().1,
        "received in block 3 (3 confirmations)"
    );
    // The sender sees none of it as incoming.
    let alice_names = Names::new(sim.peers[alice].node(), &AddressBook::default());
    assert!(incoming_payments(sim.peers[alice].node(), &alice_names).is_empty());
}
