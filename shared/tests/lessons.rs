//! The lessons of issue 17 on simulated nodes: confirmations that go back to pending in a
//! reorg, a double spend by private mining that reverses a payment the merchant saw confirmed,
//! and the privacy of a private branch (no honest node sees any of it before the release).

#![cfg(not(target_arch = "wasm32"))]

mod sim;

use shared::block::Block;
use shared::hash::Hash;
use shared::keys::Address;
use shared::node::{DoubleSpendError, Node, OwnTxState, Release, MAX_PRIVATE_BLOCKS};
use shared::protocol::message::NodeMessage;
use shared::view::{incoming_payments, own_transactions, AddressBook, IncomingState, Names};
use sim::{Sim, SimConfig};
use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

const MERCHANT: usize = 0;
const ATTACKER: usize = 1;
const BYSTANDER: usize = 2;

/// Merchant, attacker and bystander in one room, blocks only when a test mines one.
fn three_nodes() -> Sim {
    let mut sim = Sim::new(
        17,
        SimConfig {
            mean_block_ms: 1_000_000_000_000,
            ..SimConfig::default()
        },
    );
    assert_eq!(sim.add_node("merchant", false), MERCHANT);
    assert_eq!(sim.add_node("attacker", true), ATTACKER);
    assert_eq!(sim.add_node("bystander", true), BYSTANDER);
    for peer in [MERCHANT, ATTACKER, BYSTANDER] {
        sim.join(peer);
    }
    sim.run_for(1_000);
    sim
}

fn mine(sim: &mut Sim, miner: usize, count: usize) -> Vec<Block> {
    (0..count)
        .map(|_| {
            sim.now_ms += 1_000;
            let block = sim.mine_one(miner).expect("a mining job");
            sim.run_for(500);
            block
        })
        .collect()
}

fn address(sim: &Sim, peer: usize) -> Address {
    sim.peers[peer].node().address()
}

fn incoming_state(sim: &Sim, peer: usize, id: &Hash) -> Option<IncomingState> {
    let node = sim.peers[peer].node();
    let names = Names::new(node, &AddressBook::default());
    incoming_payments(node, &names)
        .into_iter()
        .find(|row| row.id == *id)
        .map(|row| row.state)
}

fn own_state(sim: &Sim, peer: usize, id: &Hash) -> OwnTxState {
    sim.peers[peer]
        .node()
        .own_transactions()
        .find(|own| own.id == *id)
        .expect("our transaction")
        .state
        .clone()
}

/// Balances summed by hand over a chain's blocks: every coinbase pays its miner, every
/// transaction moves its amount and burns its fee into the coinbase that claimed it.
fn balances_by_hand(blocks: &[Arc<Block>]) -> BTreeMap<Address, i128> {
    let mut balances: BTreeMap<Address, i128> = BTreeMap::new();
    for block in blocks {
        *balances.entry(block.coinbase.to).or_default() += block.coinbase.amount as i128;
        for tx in &block.transactions {
            *balances.entry(tx.sender()).or_default() -= (tx.amount + tx.fee) as i128;
            *balances.entry(tx.to).or_default() += tx.amount as i128;
        }
    }
    balances
}

fn assert_balances_match_the_chain(sim: &Sim) {
    let reference = sim.peers[MERCHANT].node().tree();
    let blocks = reference.active_blocks(0, usize::MAX);
    assert_eq!(blocks.len() as u64, reference.tip_height() + 1);
    let sums = balances_by_hand(&blocks);
    for peer in [MERCHANT, ATTACKER, BYSTANDER] {
        let node = sim.peers[peer].node();
        for (who, sum) in &sums {
            assert_eq!(
                node.balance(who) as i128,
                *sum,
                "{} disagrees with the sum over the chain",
                node.name()
            );
        }
        for other in [MERCHANT, ATTACKER, BYSTANDER] {
            let who = address(sim, other);
            assert_eq!(
                node.balance(&who) as i128,
                sums.get(&who).copied().unwrap_or(0)
            );
        }
    }
}

/// Every block and transaction hash a message names.
fn named_hashes(text: &str) -> Vec<Hash> {
    let message = NodeMessage::decode(text).expect("our own messages decode");
    match message {
        NodeMessage::Hello { tip, .. } | NodeMessage::Status { tip } => vec![tip.hash],
        NodeMessage::GetHeaders { locator } => locator,
        NodeMessage::Headers { headers } => headers.iter().map(|h| h.hash()).collect(),
        NodeMessage::GetBlocks { hashes } => hashes,
        NodeMessage::Blocks { blocks } => blocks.iter().map(Block::hash).collect(),
        NodeMessage::NewBlock { block } => {
            let mut named = vec![block.hash(), block.header.prev_hash];
            named.extend(block.transactions.iter().map(|tx| tx.id()));
            named
        }
        NodeMessage::NewTransaction { tx } => vec![tx.id()],
        NodeMessage::Mempool { txs } => txs.iter().map(|tx| tx.id()).collect(),
        _ => Vec::new(),
    }
}

/// The hidden blocks of a private node: from its private tip down to the base.
fn hidden_blocks(node: &Node) -> Vec<Hash> {
    let status = node.private_status().expect("private mining is on");
    let mut hashes = Vec::new();
    let mut cursor = status.tip.hash;
    while cursor != status.base.hash {
        assert!(node.is_hidden(&cursor));
        hashes.push(cursor);
        cursor = node.tree().header(&cursor).unwrap().prev_hash;
    }
    hashes
}

fn assert_nothing_leaked(sim: &Sim, hidden: &[Hash], double_spend: Option<Hash>) {
    let mut secret: HashSet<Hash> = hidden.iter().copied().collect();
    secret.extend(double_spend);
    for peer in [MERCHANT, BYSTANDER] {
        let node = sim.peers[peer].node();
        for hash in hidden {
            assert!(
                !node.tree().contains(hash) && !node.tree().is_orphan(hash),
                "{} holds a private block",
                node.name()
            );
        }
        if let Some(id) = double_spend {
            assert!(
                !node.mempool().contains(&id),
                "{} has the double spend",
                node.name()
            );
        }
    }
    let sent = &sim.peers[ATTACKER].sent_log;
    assert!(!sent.is_empty());
    for text in sent {
        for hash in named_hashes(text) {
            assert!(!secret.contains(&hash), "the attacker sent {text}");
        }
    }
}

#[test]
fn a_private_branch_with_a_double_spend_reverses_a_payment_the_merchant_saw_confirmed() {
    let mut sim = three_nodes();
    sim.peers[ATTACKER].record_sent = true;
    // The attacker earns coins in the open first.
    mine(&mut sim, ATTACKER, 3);
    sim.set_mining(ATTACKER, true);
    sim.command(ATTACKER, |node, now| node.set_private_mining(true, now));
    assert!(sim.peers[ATTACKER].node().is_private_mining());

    // It pays the merchant publicly; the bystander mines the payment in, and one more block.
    let merchant = address(&sim, MERCHANT);
    assert!(sim.send(ATTACKER, merchant, 20, 1));
    sim.run_for(500);
    let payment = sim.peers[ATTACKER]
        .node()
        .own_transactions()
        .last()
        .unwrap()
        .id;
    assert_eq!(
        incoming_state(&sim, MERCHANT, &payment),
        Some(IncomingState::Pending)
    );
    let public = mine(&mut sim, BYSTANDER, 2);
    assert!(public[0].transactions.iter().any(|tx| tx.id() == payment));
    let confirmed_height = public[0].header.height;
    assert_eq!(
        incoming_state(&sim, MERCHANT, &payment),
        Some(IncomingState::Confirmed {
            height: confirmed_height,
            confirmations: 2
        })
    );

    // The attacker pays itself with the same nonce on its private branch and mines 3 blocks.
    let double_spend = sim
        .command(ATTACKER, |node, now| node.double_spend(&payment, now))
        .expect("a double spend");
    assert_eq!(
        sim.command(ATTACKER, |node, now| node.double_spend(&payment, now)),
        Err(DoubleSpendError::AlreadyDoubleSpent)
    );
    let private = mine(&mut sim, ATTACKER, 3);
    assert!(private[0]
        .transactions
        .iter()
        .any(|tx| tx.id() == double_spend));
    assert!(private
        .iter()
        .all(|block| block.transactions.iter().all(|tx| tx.id() != payment)));
    let status = sim.peers[ATTACKER].node().private_status().unwrap();
    assert_eq!(status.blocks, 3);
    assert_eq!(status.public_tip.hash, public[1].hash());
    assert_eq!(status.tip.height, status.public_tip.height + 1);
    // The attacker's own tree already prefers its heavier branch: its payment is reversed there.
    assert_eq!(
        own_state(&sim, ATTACKER, &payment),
        OwnTxState::Reversed { confirmations: 2 }
    );

    // Before the release nobody else has seen any of it, and the merchant still sees 2.
    let hidden = hidden_blocks(sim.peers[ATTACKER].node());
    assert_eq!(hidden.len(), 3);
    assert_nothing_leaked(&sim, &hidden, Some(double_spend));
    assert_eq!(
        incoming_state(&sim, MERCHANT, &payment),
        Some(IncomingState::Confirmed {
            height: confirmed_height,
            confirmations: 2
        })
    );

    let release = sim
        .command(ATTACKER, |node, now| node.release_private(now))
        .expect("a release");
    assert_eq!(
        release,
        Release {
            blocks: 3,
            tip: Some(private[2].hash()),
            heavier: true
        }
    );
    sim.run_for(3_000);
    assert_eq!(sim.tip_counts().len(), 1, "{}", sim.tips());
    assert_eq!(
        sim.peers[MERCHANT].node().tree().tip_hash(),
        private[2].hash()
    );
    assert_eq!(
        incoming_state(&sim, MERCHANT, &payment),
        Some(IncomingState::Reversed { confirmations: 2 })
    );
    let node = sim.peers[MERCHANT].node();
    let row = incoming_payments(node, &Names::new(node, &AddressBook::default()))
        .into_iter()
        .find(|row| row.id == payment)
        .unwrap();
    assert_eq!(row.describe().0, "reversed");
    assert!(row.describe().1.starts_with("reversed at 2 confirmations"));
    assert_eq!(
        own_state(&sim, ATTACKER, &payment),
        OwnTxState::Reversed { confirmations: 2 }
    );
    let attacker = sim.peers[ATTACKER].node();
    let view = own_transactions(attacker, &Names::new(attacker, &AddressBook::default()));
    assert_eq!(
        view.iter().find(|v| v.id == payment).unwrap().describe().0,
        "reversed"
    );
    assert_balances_match_the_chain(&sim);
    assert_eq!(sim.peers[MERCHANT].node().balance(&merchant), 0);
}

#[test]
fn a_reorg_without_a_conflict_puts_a_payment_back_to_pending_until_it_confirms_again() {
    let mut sim = three_nodes();
    mine(&mut sim, ATTACKER, 2);
    // The bystander is cut off and mines a longer chain of its own without the payment.
    sim.set_groups(&[0, 0, 1]);
    sim.run_for(500);
    let merchant = address(&sim, MERCHANT);
    assert!(sim.send(ATTACKER, merchant, 5, 1));
    sim.run_for(500);
    let payment = sim.peers[ATTACKER]
        .node()
        .own_transactions()
        .last()
        .unwrap()
        .id;
    mine(&mut sim, ATTACKER, 1);
    assert!(matches!(
        incoming_state(&sim, MERCHANT, &payment),
        Some(IncomingState::Confirmed {
            confirmations: 1,
            ..
        })
    ));
    mine(&mut sim, BYSTANDER, 3);
    sim.set_mining(ATTACKER, false);
    sim.set_groups(&[0, 0, 0]);
    sim.run_for(3_000);
    assert_eq!(sim.tip_counts().len(), 1, "{}", sim.tips());
    // Back in the pool: pending, with the confirmation it had remembered.
    assert_eq!(
        incoming_state(&sim, MERCHANT, &payment),
        Some(IncomingState::Pending)
    );
    let node = sim.peers[MERCHANT].node();
    let row = incoming_payments(node, &Names::new(node, &AddressBook::default()))
        .into_iter()
        .find(|row| row.id == payment)
        .unwrap();
    assert!(
        row.describe().1.starts_with("pending again"),
        "{:?}",
        row.describe()
    );
    assert_eq!(own_state(&sim, ATTACKER, &payment), OwnTxState::Pending);

    // The next block takes it in again.
    let block = mine(&mut sim, BYSTANDER, 1).remove(0);
    assert!(block.transactions.iter().any(|tx| tx.id() == payment));
    assert!(matches!(
        incoming_state(&sim, MERCHANT, &payment),
        Some(IncomingState::Confirmed {
            confirmations: 1,
            ..
        })
    ));
    assert!(matches!(
        own_state(&sim, ATTACKER, &payment),
        OwnTxState::Confirmed { .. }
    ));
    assert_balances_match_the_chain(&sim);
}

#[test]
fn a_private_branch_lighter_than_the_public_chain_is_abandoned_on_release() {
    let mut sim = three_nodes();
    mine(&mut sim, ATTACKER, 2);
    sim.set_mining(ATTACKER, true);
    sim.command(ATTACKER, |node, now| node.set_private_mining(true, now));
    let private = mine(&mut sim, ATTACKER, 1);
    let public = mine(&mut sim, BYSTANDER, 3);
    let status = sim.peers[ATTACKER].node().private_status().unwrap();
    assert_eq!(status.public_tip.hash, public[2].hash());
    assert_eq!(status.tip.hash, private[0].hash());
    // The attacker's tree follows the heavier public chain, but its miner stays on its branch.
    assert_eq!(
        sim.peers[ATTACKER].node().tree().tip_hash(),
        public[2].hash()
    );
    let next = mine(&mut sim, ATTACKER, 1).remove(0);
    assert_eq!(next.header.prev_hash, private[0].hash());

    let release = sim
        .command(ATTACKER, |node, now| node.release_private(now))
        .unwrap();
    assert!(!release.heavier);
    assert_eq!(release.blocks, 2);
    sim.run_for(3_000);
    for peer in [MERCHANT, ATTACKER, BYSTANDER] {
        assert_eq!(
            sim.peers[peer].node().tree().tip_hash(),
            public[2].hash(),
            "{}",
            sim.tips()
        );
    }
    // Mining goes on honestly, on the public tip.
    let honest = mine(&mut sim, ATTACKER, 1).remove(0);
    assert_eq!(honest.header.prev_hash, public[2].hash());
    assert_eq!(sim.tip_counts().len(), 1, "{}", sim.tips());
    assert_balances_match_the_chain(&sim);
}

#[test]
fn a_peer_asking_a_private_node_for_headers_and_blocks_never_gets_a_private_block() {
    let mut sim = three_nodes();
    sim.peers[ATTACKER].record_sent = true;
    mine(&mut sim, ATTACKER, 2);
    sim.set_mining(ATTACKER, true);
    sim.command(ATTACKER, |node, now| node.set_private_mining(true, now));
    mine(&mut sim, BYSTANDER, 1);
    mine(&mut sim, ATTACKER, 3);
    let attacker = sim.peers[ATTACKER].node();
    let hidden = hidden_blocks(attacker);
    assert!(
        hidden.contains(&attacker.tree().tip_hash()),
        "the private branch is the attacker's best chain, the hard case"
    );
    let genesis = attacker.tree().genesis_hash();
    let merchant_id = sim.peers[MERCHANT].id.clone();
    sim.peers[ATTACKER].sent_log.clear();
    for request in [
        NodeMessage::GetHeaders {
            locator: vec![genesis],
        },
        NodeMessage::GetHeaders {
            locator: hidden.clone(),
        },
        NodeMessage::GetBlocks {
            hashes: hidden.clone(),
        },
    ] {
        let text = request.encode();
        sim.command(ATTACKER, |node, now| {
            node.handle_message(&merchant_id, &text, now)
        });
        sim.now_ms += 1_000;
    }
    let replies: Vec<NodeMessage> = sim.peers[ATTACKER]
        .sent_log
        .iter()
        .map(|text| NodeMessage::decode(text).unwrap())
        .collect();
    let public_chain: Vec<Hash> = sim.peers[MERCHANT]
        .node()
        .tree()
        .active_blocks(1, usize::MAX)
        .iter()
        .map(|block| block.hash())
        .collect();
    let headers: Vec<Vec<Hash>> = replies
        .iter()
        .filter_map(|reply| match reply {
            NodeMessage::Headers { headers } => Some(headers.iter().map(|h| h.hash()).collect()),
            _ => None,
        })
        .collect();
    assert_eq!(headers.len(), 2, "{replies:?}");
    assert_eq!(headers[0], public_chain, "the public chain from genesis");
    assert_eq!(
        headers[1], public_chain,
        "unknown (hidden) locator hashes count as nothing shared but genesis"
    );
    let blocks: Vec<&Vec<Block>> = replies
        .iter()
        .filter_map(|reply| match reply {
            NodeMessage::Blocks { blocks } => Some(blocks),
            _ => None,
        })
        .collect();
    assert_eq!(blocks, vec![&Vec::new()], "no private block is served");
    assert_nothing_leaked(&sim, &hidden, None);
}

#[test]
fn double_spend_refusals_are_named_and_change_nothing() {
    let mut sim = three_nodes();
    mine(&mut sim, ATTACKER, 2);
    let merchant = address(&sim, MERCHANT);
    assert!(sim.send(ATTACKER, merchant, 5, 1));
    sim.run_for(500);
    let early = sim.peers[ATTACKER]
        .node()
        .own_transactions()
        .last()
        .unwrap()
        .id;
    assert_eq!(
        sim.command(ATTACKER, |node, now| node.double_spend(&early, now)),
        Err(DoubleSpendError::NotPrivate)
    );
    mine(&mut sim, BYSTANDER, 1);
    sim.command(ATTACKER, |node, now| node.set_private_mining(true, now));
    assert_eq!(
        sim.command(ATTACKER, |node, now| node.double_spend(&Hash::ZERO, now)),
        Err(DoubleSpendError::UnknownTransaction)
    );
    assert_eq!(
        sim.command(ATTACKER, |node, now| node.double_spend(&early, now)),
        Err(DoubleSpendError::AlreadyOnPrivateBranch),
        "confirmed before private mining began: below the fork"
    );
    assert!(sim.send(ATTACKER, merchant, 1, 1));
    assert!(sim.send(ATTACKER, merchant, 2, 1));
    let second = sim.peers[ATTACKER]
        .node()
        .own_transactions()
        .last()
        .unwrap()
        .id;
    assert_eq!(
        sim.command(ATTACKER, |node, now| node.double_spend(&second, now)),
        Err(DoubleSpendError::EarlierPaymentFirst { nonce: 1 })
    );
    assert_eq!(
        sim.peers[ATTACKER]
            .node()
            .private_status()
            .unwrap()
            .double_spends,
        0
    );
}

#[test]
fn a_private_branch_stops_at_its_bound_until_it_is_released() {
    let mut sim = three_nodes();
    sim.set_mining(ATTACKER, true);
    sim.command(ATTACKER, |node, now| node.set_private_mining(true, now));
    for _ in 0..MAX_PRIVATE_BLOCKS {
        // At the target spacing, so the difficulty stays where it is.
        sim.now_ms += sim.config.params.target_block_ms;
        sim.mine_one(ATTACKER)
            .expect("a job while the branch has room");
    }
    let status = sim.peers[ATTACKER].node().private_status().unwrap();
    assert_eq!(status.blocks, MAX_PRIVATE_BLOCKS);
    assert!(status.full);
    assert!(
        sim.mine_one(ATTACKER).is_none(),
        "no job beyond the bound: the miner waits for the release"
    );
    assert_eq!(sim.peers[MERCHANT].node().tree().tip_height(), 0);
    sim.command(ATTACKER, |node, now| node.release_private(now))
        .unwrap();
    sim.run_for(10_000);
    assert_eq!(
        sim.peers[MERCHANT].node().tree().tip_height(),
        MAX_PRIVATE_BLOCKS as u64,
        "{}",
        sim.tips()
    );
    assert!(
        sim.mine_one(ATTACKER).is_some(),
        "mining goes on in the open"
    );
}
