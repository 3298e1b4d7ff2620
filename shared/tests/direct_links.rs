//! Direct links between nodes (issue 14), in the simulator: the mesh the nodes choose is bounded
//! and connected, a room whose links are all direct sends no chain traffic through the relay,
//! nothing reaches a peer twice through the relay, gossip spreads blocks and transactions over
//! a partial mesh, and with the relay stopped every node that is connected through direct links
//! converges on the best chain, for random rooms.

#![cfg(not(target_arch = "wasm32"))]

mod sim;

use shared::node::{
    LinkState, OfferAnswer, OwnTxState, LINK_ABUSE_BACKOFF_MS, LINK_OPEN_TIMEOUT_MS, LINK_RETRY_MS,
    OFFER_BURST,
};
use sim::{Rng, Sim, SimConfig, HEARTBEAT_DETECT_MS};

/// A room of `count` nodes keeping at most `max_links` direct links, nobody mining by chance
/// (blocks are mined by hand with [`mine`]).
fn room(seed: u64, count: usize, max_links: usize) -> Sim {
    let mut sim = Sim::new(
        seed,
        SimConfig {
            // Blocks only by hand: the first random find is 30 years away.
            mean_block_ms: 1_000_000_000_000,
            max_direct_links: max_links,
            ..SimConfig::default()
        },
    );
    for index in 0..count {
        let node = sim.add_node(&format!("n{index}"), true);
        sim.join(node);
    }
    sim.run_for(3_000);
    sim
}

fn mine(sim: &mut Sim, node: usize, blocks: usize) {
    for _ in 0..blocks {
        sim.now_ms += 1_000;
        sim.mine_one(node).expect("a mining job");
        sim.run_for(300);
    }
}

fn direct_count(sim: &Sim, index: usize) -> usize {
    sim.peers[index]
        .node()
        .peers()
        .filter(|peer| matches!(peer.link, LinkState::Direct { .. }))
        .count()
}

/// Every node of each direct-link component has the same tip; returns the components.
fn assert_components_agree(sim: &Sim, context: &str) -> Vec<Vec<usize>> {
    let components = sim.direct_components();
    for component in &components {
        let tips: Vec<_> = component
            .iter()
            .map(|&index| sim.peers[index].node().tip_status())
            .collect();
        assert!(
            tips.windows(2).all(|pair| pair[0] == pair[1]),
            "{context}: component {component:?} disagrees: {}",
            sim.tips()
        );
    }
    components
}

#[test]
fn nodes_choose_a_bounded_connected_mesh_and_both_sides_see_each_link() {
    for (count, max_links) in [(12, 4), (9, 2), (5, 8), (30, 8)] {
        let sim = room(7, count, max_links);
        for index in 0..count {
            let direct = direct_count(&sim, index);
            assert!(
                direct <= max_links,
                "{count} nodes, bound {max_links}: node {index} holds {direct} links"
            );
            assert!(direct >= 2.min(count - 1), "node {index} is linked");
        }
        for &(a, b) in &sim.links {
            let b_id = sim.peers[b].id.clone();
            let a_id = sim.peers[a].id.clone();
            assert!(sim.peers[a].node().peer(&b_id).unwrap().link.is_direct());
            assert!(sim.peers[b].node().peer(&a_id).unwrap().link.is_direct());
        }
        assert_eq!(
            sim.direct_components().len(),
            1,
            "{count} nodes, bound {max_links}: the direct graph is connected"
        );
    }
}

#[test]
fn in_a_room_where_every_link_is_direct_no_chain_traffic_crosses_the_relay() {
    let mut sim = room(11, 5, 8);
    assert_eq!(sim.links.len(), 10, "five nodes, all ten pairs linked");
    let (relay_before, direct_before) = (sim.relay_messages, sim.direct_messages);
    mine(&mut sim, 0, 5);
    mine(&mut sim, 3, 5);
    let coins = sim.peers[0].node().balance(&sim.peers[0].node().address());
    let to = sim.peers[4].node().address();
    assert!(sim.send(0, to, coins / 2, 1));
    sim.run_for(500);
    mine(&mut sim, 2, 2);
    sim.run_for(2_000);
    assert_components_agree(&sim, "all direct");
    assert_eq!(
        sim.peers[4].node().balance(&to),
        coins / 2,
        "the payment arrived"
    );
    assert_eq!(
        sim.relay_messages - relay_before,
        0,
        "12 blocks and a payment: nothing went through the relay"
    );
    assert!(sim.direct_messages - direct_before > 12 * 4);
}

#[test]
fn with_the_relay_up_no_block_reaches_a_peer_twice_through_it() {
    for seed in 0..4 {
        let mut sim = room(seed, 14, 3);
        for block in 0..12 {
            let miner = (block * 5 + seed as usize) % 14;
            mine(&mut sim, miner, 1);
        }
        sim.run_for(3_000);
        assert_components_agree(&sim, "relay up");
        let twice: Vec<_> = sim
            .relay_block_deliveries
            .iter()
            .filter(|(_, count)| **count > 1)
            .collect();
        assert!(
            twice.is_empty(),
            "seed {seed}: blocks delivered twice through the relay: {twice:?}"
        );
        assert!(
            !sim.relay_block_deliveries.is_empty(),
            "some peers are relayed"
        );
    }
}

#[test]
fn gossip_spreads_a_payment_and_a_block_around_a_ring_without_the_relay() {
    let mut sim = room(5, 8, 2);
    mine(&mut sim, 0, 3);
    sim.stop_all_mining();
    sim.run_for(1_000);
    sim.set_relay_up(false);
    sim.run_for(500);
    assert_eq!(sim.direct_components().len(), 1, "a ring of eight");
    let to = sim.peers[4].node().address();
    assert!(sim.send(0, to, 5, 1), "node 0 has coins");
    // Each hop is one direct latency (at most 40 ms); the far side of the ring is 4 hops away.
    sim.run_for(400);
    for index in 0..8 {
        assert_eq!(
            sim.peers[index].node().mempool().len(),
            1,
            "node {index} has the payment within 400 ms: gossip forwarded it"
        );
    }
    sim.set_mining(6, true);
    sim.now_ms += 1_000;
    let block = sim.mine_one(6).expect("a job");
    sim.run_for(400);
    for index in 0..8 {
        assert_eq!(
            sim.peers[index].node().tree().tip_hash(),
            block.hash(),
            "node {index} has node 6's block within 400 ms"
        );
    }
}

#[test]
fn without_the_relay_every_node_connected_by_direct_links_converges_on_the_best_chain() {
    let mut rng = Rng::new(0xd1ec7);
    for case in 0..12u64 {
        let count = 4 + rng.below(9) as usize;
        let max_links = 2 + rng.below(7) as usize;
        let mut sim = Sim::new(
            case,
            SimConfig {
                mean_block_ms: 1_500,
                mean_tx_ms: Some(2_000),
                max_direct_links: max_links,
                loss: if case % 3 == 0 { 0.02 } else { 0.0 },
                ..SimConfig::default()
            },
        );
        for index in 0..count {
            let node = sim.add_node(&format!("n{index}"), index % 2 == 0 || index == 1);
            sim.join(node);
        }
        sim.run_for(8_000);
        sim.set_relay_up(false);
        // Links die one by one while the room mines apart, maybe splitting the mesh.
        for _ in 0..rng.below(4) {
            let links: Vec<(usize, usize)> = sim.links.iter().copied().collect();
            if links.is_empty() {
                break;
            }
            let (a, b) = links[rng.below(links.len() as u64) as usize];
            sim.break_link(a, b);
            sim.run_for(3_000 + rng.below(5_000));
        }
        sim.run_for(20_000);
        sim.stop_all_mining();
        sim.run_for(10_000);
        let context = format!("case {case}: {count} nodes, bound {max_links}");
        let components = assert_components_agree(&sim, &context);
        for component in &components {
            // Their common tip is the heaviest chain any of them holds, side branches included.
            let tip = sim.peers[component[0]].node().tip_status();
            for &index in component {
                let tree = sim.peers[index].node().tree();
                for branch in tree.branch_tips() {
                    let work = tree
                        .total_work(&branch)
                        .expect("a branch tip is in the tree");
                    assert!(
                        work <= tip.total_work,
                        "{context}: node {index} holds a branch heavier than the common tip"
                    );
                }
            }
        }
    }
}

#[test]
fn the_relay_comes_back_and_every_node_is_in_its_room_again_with_its_links() {
    let mut sim = room(21, 6, 3);
    let links_before = sim.links.clone();
    sim.set_relay_up(false);
    mine(&mut sim, 2, 3);
    sim.run_for(1_000);
    assert_eq!(sim.links, links_before, "links survive the outage");
    for index in 0..6 {
        assert!(!sim.peers[index].node().relay_connected());
        assert_eq!(
            sim.peers[index].node().peers().count(),
            direct_count(&sim, index),
            "node {index} keeps exactly its direct peers"
        );
    }
    sim.set_relay_up(true);
    sim.run_for(2_000);
    for index in 0..6 {
        let node = sim.peers[index].node();
        assert!(node.relay_connected());
        assert_eq!(node.peers().count(), 5, "node {index} sees the whole room");
        assert!(node.peers().all(|peer| peer.in_room));
    }
    mine(&mut sim, 5, 1);
    sim.run_for(1_000);
    assert_components_agree(&sim, "relay back");
    assert_eq!(sim.peers[0].node().tree().tip_height(), 4);
}

#[test]
fn a_dead_link_falls_back_to_the_relay_and_is_opened_again_later() {
    let mut sim = room(3, 3, 8);
    assert_eq!(sim.links.len(), 3);
    sim.break_link(0, 1);
    mine(&mut sim, 0, 2);
    // Until the heartbeat notices, what 0 sends straight to 1 is lost; 1 still hears about the
    // blocks from 2, and after the heartbeat the relay carries 0's traffic to 1.
    sim.run_for(HEARTBEAT_DETECT_MS + 1_000);
    let id1 = sim.peers[1].id.clone();
    assert_eq!(
        sim.peers[0].node().peer(&id1).unwrap().link,
        LinkState::None,
        "the dead link is noticed"
    );
    mine(&mut sim, 0, 1);
    sim.run_for(1_000);
    assert_components_agree(&sim, "after the dead link");
    assert_eq!(sim.peers[1].node().tree().tip_height(), 3);
    sim.run_for(LINK_RETRY_MS + 1_000);
    assert!(
        sim.linked(0, 1),
        "the link was opened again after the retry delay"
    );
}

#[test]
fn a_link_that_never_opens_is_marked_until_one_does() {
    let mut sim = room(7, 0, 8);
    for index in 0..2 {
        sim.add_node(&format!("n{index}"), true);
    }
    sim.no_path.insert((0, 1));
    for index in 0..2 {
        sim.join(index);
    }
    sim.run_for(LINK_OPEN_TIMEOUT_MS + 3_000);
    assert!(!sim.linked(0, 1));
    let (id0, id1) = (sim.peers[0].id.clone(), sim.peers[1].id.clone());
    let never_opened = |sim: &Sim| {
        [(0, &id1), (1, &id0)].iter().any(|(index, other)| {
            sim.peers[*index]
                .node()
                .peer(other)
                .unwrap()
                .link_never_opened
        })
    };
    assert!(
        never_opened(&sim),
        "the side that asked for the link knows it never opened"
    );
    // The path appears (a TURN server, another network): the retry links them and the mark goes.
    sim.no_path.clear();
    sim.run_for(LINK_RETRY_MS + LINK_OPEN_TIMEOUT_MS);
    assert!(sim.linked(0, 1), "the retry opened the link");
    assert!(!never_opened(&sim));
}

#[test]
fn a_peer_whose_link_was_closed_for_abuse_is_charged_and_not_relinked_within_the_back_off() {
    let mut sim = room(11, 2, 8);
    assert!(sim.linked(0, 1));
    let id1 = sim.peers[1].id.clone();
    // Node 0's driver caught node 1 flooding the link and closed it.
    sim.break_link(0, 1);
    sim.command(0, |node, now| {
        node.handle_link_abuse(&id1, "flooded past the link's inbound budget", now)
    });
    let info = sim.peers[0].node().peer(&id1).unwrap();
    assert!(info.misbehavior > 0, "the peer is charged");
    assert!(info
        .last_offense
        .as_deref()
        .is_some_and(|why| why.contains("direct link")));
    // Both would link again after a lost link's retry (30 s); not within the back-off.
    sim.run_for(LINK_ABUSE_BACKOFF_MS - 5_000);
    assert!(!sim.linked(0, 1), "re-linked within the back-off");
    assert!(!sim.peers[0].node().accepts_link(&id1));
    // After it, the ring links them again.
    sim.run_for(LINK_RETRY_MS + LINK_OPEN_TIMEOUT_MS + 10_000);
    assert!(sim.linked(0, 1), "linked again after the back-off");
}

#[test]
fn an_offer_storm_is_ignored_past_its_burst_and_an_honest_offer_still_answered() {
    let mut sim = room(13, 3, 8);
    let (storm, honest) = (sim.peers[1].id.clone(), sim.peers[2].id.clone());
    // Peer 1 offers 100 links within a second (each would cost the victim a peer connection).
    let answers: Vec<OfferAnswer> = (0..100)
        .map(|i| sim.command(0, |node, now| node.answer_offer(&storm, now + i * 10)))
        .collect();
    let taken = answers
        .iter()
        .filter(|answer| **answer != OfferAnswer::Ignore)
        .count();
    assert_eq!(taken, OFFER_BURST as usize, "{answers:?}");
    // Another peer's offer is still answered at once.
    assert_ne!(
        sim.command(0, |node, now| node.answer_offer(&honest, now + 1_000)),
        OfferAnswer::Ignore
    );
    // The storming peer may offer again after a few seconds, as an honest retry would.
    assert_ne!(
        sim.command(0, |node, now| node.answer_offer(&storm, now + 6_000)),
        OfferAnswer::Ignore
    );
}

#[test]
fn a_node_without_direct_links_gets_everything_through_the_relay() {
    let mut sim = room(9, 4, 8);
    let native = sim.add_node_with_links("native", false, 0);
    sim.join(native);
    sim.run_for(2_000);
    assert!(sim.peers[native]
        .node()
        .peers()
        .all(|peer| !peer.link.is_direct()));
    mine(&mut sim, 1, 3);
    sim.run_for(1_000);
    assert_eq!(
        sim.peers[native].node().tip_status(),
        sim.peers[1].node().tip_status()
    );
    let to = sim.peers[native].node().address();
    assert!(sim.send(1, to, 4, 1));
    sim.run_for(500);
    mine(&mut sim, 2, 1);
    sim.run_for(1_000);
    let sender = sim.peers[1].node();
    assert!(sender
        .own_transactions()
        .all(|own| matches!(own.state, OwnTxState::Confirmed { .. })));
    assert_eq!(sim.peers[native].node().balance(&to), 4);
}

/// A link that introduces a peer the relay has not (tabs of one browser meet over a channel with
/// no relay, or before their relay joins): our hello goes over that link, not to a relay that
/// would answer `unknown_peer` and lose it. Before the fix the hello went out as a relay send and
/// the other tab never learnt which network we are on.
#[test]
fn a_link_that_introduces_a_peer_carries_our_hello() {
    use shared::keys::Keypair;
    use shared::node::{Node, NodeConfig, Output, Route, MAX_DIRECT_LINKS};
    use shared::params::NetworkParams;
    use shared::protocol::PeerId;

    let params = NetworkParams::test();
    let now = params.genesis_timestamp_ms + 60_000;
    let mut node = Node::new(NodeConfig {
        params,
        name: "tab".into(),
        keypair: Keypair::from_seed([7; 32]),
        max_direct_links: MAX_DIRECT_LINKS,
    });
    while node.poll_output().is_some() {}
    let peer = PeerId::from_bytes([3; 16]);
    node.handle_link_up(&peer, now);
    let mut hellos = Vec::new();
    while let Some(output) = node.poll_output() {
        match output {
            Output::Send { to, payload, route } if payload.contains("\"hello\"") => {
                hellos.push((to, route))
            }
            Output::Broadcast { payload } => {
                assert!(
                    !payload.contains("\"hello\""),
                    "no hello to the relay's room"
                )
            }
            _ => {}
        }
    }
    assert_eq!(hellos, vec![(peer.clone(), Route::Direct)]);
    assert!(node
        .peers()
        .any(|info| info.id == peer && matches!(info.link, LinkState::Direct { .. })));
}
