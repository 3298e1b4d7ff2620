//! The mempool as a wallet user meets it: which transactions wait, which are refused and why,
//! which go into the next block, and what happens to them when the chain moves or reorganises.

mod common;

// The same tests run in a browser: `wasm_bindgen_test` takes the place of `#[test]` there.
#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;
#[cfg(target_arch = "wasm32")]
wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);

use common::{add_tip, alice, bob, carol, dave, extend, funded_ledger, keypair, next_block};
use shared::chain::{AddOutcome, BlockTree};
use shared::hash::Hash;
use shared::keys::Keypair;
use shared::mempool::{Mempool, MempoolError, MAX_MEMPOOL_TXS, MAX_PENDING_PER_SENDER};
use shared::params::NetworkParams;
use shared::state::Ledger;
use shared::tx::Transaction;
use shared::validation::ValidationError;

/// Any chain id: the mempool only needs the one the signatures were made for.
fn chain_id() -> Hash {
    BlockTree::new(NetworkParams::test()).chain_id()
}

fn pay(from: &Keypair, to: &Keypair, amount: u64, fee: u64, nonce: u64) -> Transaction {
    common::pay(from, &chain_id(), to, amount, fee, nonce)
}

fn rich(who: &[&Keypair]) -> Ledger {
    let accounts: Vec<_> = who.iter().map(|k| (k.address(), 1_000)).collect();
    funded_ledger(&accounts)
}

fn fees(txs: &[Transaction]) -> Vec<u64> {
    txs.iter().map(|tx| tx.fee).collect()
}

#[test]
fn waiting_transactions_are_listed_and_selected_highest_fee_first() {
    let ledger = rich(&[&alice(), &bob(), &carol()]);
    let mut pool = Mempool::new();
    let chain = chain_id();
    for (sender, fee) in [(alice(), 5), (bob(), 1), (carol(), 3)] {
        pool.add(pay(&sender, &dave(), 10, fee, 0), &ledger, &chain)
            .expect("valid");
    }
    assert_eq!(fees(&pool.transactions()), vec![5, 3, 1]);
    assert_eq!(fees(&pool.select(&ledger, 10)), vec![5, 3, 1]);
    assert_eq!(fees(&pool.select(&ledger, 2)), vec![5, 3]);
}

#[test]
fn selection_keeps_each_senders_nonces_in_order_and_makes_a_valid_block() {
    let params = NetworkParams::test();
    let mut tree = BlockTree::new(params);
    extend(&mut tree, alice().address(), 2);
    extend(&mut tree, bob().address(), 1);
    let chain = tree.chain_id();
    let mut pool = Mempool::new();
    let a1 = common::pay(&alice(), &chain, &carol(), 10, 10, 1);
    let a0 = common::pay(&alice(), &chain, &carol(), 10, 1, 0);
    let b0 = common::pay(&bob(), &chain, &carol(), 10, 5, 0);
    for tx in [&a1, &a0, &b0] {
        pool.add(tx.clone(), tree.ledger(), &chain).expect("valid");
    }
    // a1 pays the most but cannot come before a0.
    let chosen = pool.select(tree.ledger(), 100);
    assert_eq!(chosen, vec![b0.clone(), a0.clone(), a1.clone()]);

    let block = next_block(&tree, dave().address(), chosen);
    assert_eq!(block.coinbase.amount, 50 + 16);
    let Ok(AddOutcome::TipChanged(change)) = common::add(&mut tree, block) else {
        panic!("the selected transactions make a valid block");
    };
    assert!(pool
        .on_new_tip(tree.ledger(), &change.disconnected, &change.connected)
        .is_empty());
    assert!(pool.is_empty(), "confirmed transactions leave the pool");
    assert_eq!(tree.ledger().balance(&carol().address()), 30);
}

#[test]
fn selection_skips_a_sender_who_cannot_pay() {
    let chain = chain_id();
    let rich_ledger = funded_ledger(&[(alice().address(), 100), (bob().address(), 100)]);
    let mut pool = Mempool::new();
    pool.add(pay(&alice(), &carol(), 90, 9, 0), &rich_ledger, &chain)
        .unwrap();
    pool.add(pay(&bob(), &carol(), 10, 1, 0), &rich_ledger, &chain)
        .unwrap();
    // On a ledger where alice has less (another branch), only bob's transfer is selected.
    let poorer = funded_ledger(&[(alice().address(), 50), (bob().address(), 100)]);
    assert_eq!(fees(&pool.select(&poorer, 10)), vec![1]);
}

#[test]
fn a_full_pool_evicts_its_lowest_fee_to_admit_a_higher_one() {
    // 100 senders with 50 transactions each fill the pool (a sender may queue at most 64).
    let senders: Vec<Keypair> = (100..200).map(keypair).collect();
    let per_sender = MAX_MEMPOOL_TXS / senders.len();
    assert!((per_sender as u64) < MAX_PENDING_PER_SENDER);
    let accounts: Vec<_> = senders
        .iter()
        .chain([alice(), bob()].iter())
        .map(|k| (k.address(), 1_000_000))
        .collect();
    let ledger = funded_ledger(&accounts);
    let chain = chain_id();
    let mut pool = Mempool::new();
    // Fees from 3 up, except two fee-2 transactions: the older and the newer lowest.
    let mut lowest = vec![];
    for (s, sender) in senders.iter().enumerate() {
        for nonce in 0..per_sender as u64 {
            let fee = match (s, nonce) {
                (0, 49) | (99, 49) => 2,
                _ => 3 + (s as u64 * 7 + nonce) % 50,
            };
            let id = pool
                .add(pay(sender, &dave(), 1, fee, nonce), &ledger, &chain)
                .expect("room until full");
            if fee == 2 {
                lowest.push(id);
            }
        }
    }
    assert_eq!(pool.len(), MAX_MEMPOOL_TXS);

    assert_eq!(
        pool.add(pay(&alice(), &dave(), 1, 2, 0), &ledger, &chain),
        Err(MempoolError::FeeTooLowForFullPool { fee: 2, lowest: 2 })
    );
    let newcomer = pool
        .add(pay(&alice(), &dave(), 1, 100, 0), &ledger, &chain)
        .expect("a higher fee displaces the lowest");
    assert_eq!(pool.len(), MAX_MEMPOOL_TXS);
    assert!(pool.contains(&newcomer));
    // Of two equal lowest fees, the newer one goes: the older was waiting first.
    assert!(pool.contains(&lowest[0]));
    assert!(!pool.contains(&lowest[1]));
    pool.add(pay(&bob(), &dave(), 1, 100, 0), &ledger, &chain)
        .unwrap();
    assert!(!pool.contains(&lowest[0]));
    assert_eq!(pool.transactions().last().unwrap().fee, 3);
}

#[test]
fn eviction_takes_the_later_nonces_that_depend_on_the_evicted_transaction() {
    let senders: Vec<Keypair> = (100..200).map(keypair).collect();
    let per_sender = MAX_MEMPOOL_TXS / senders.len();
    let accounts: Vec<_> = senders
        .iter()
        .chain([alice()].iter())
        .map(|k| (k.address(), 1_000_000))
        .collect();
    let ledger = funded_ledger(&accounts);
    let chain = chain_id();
    let mut pool = Mempool::new();
    // The lowest fee of the pool sits in the middle of the first sender's queue.
    for (s, sender) in senders.iter().enumerate() {
        for nonce in 0..per_sender as u64 {
            let fee = if (s, nonce) == (0, 10) { 2 } else { 5 };
            pool.add(pay(sender, &dave(), 1, fee, nonce), &ledger, &chain)
                .expect("room until full");
        }
    }
    assert_eq!(pool.len(), MAX_MEMPOOL_TXS);
    // The first sender cannot make room by pushing out its own earlier transaction.
    assert_eq!(
        pool.add(pay(&senders[0], &dave(), 1, 100, 50), &ledger, &chain),
        Err(MempoolError::FeeTooLowForFullPool {
            fee: 100,
            lowest: 2
        })
    );

    let newcomer = pool
        .add(pay(&alice(), &dave(), 1, 100, 0), &ledger, &chain)
        .expect("a higher fee displaces the lowest");
    // Nonce 10 went, and with it nonces 11..49, which could never confirm without it.
    assert_eq!(pool.len(), MAX_MEMPOOL_TXS - (per_sender - 10) + 1);
    assert!(pool.contains(&newcomer));
    // Everything still waiting can be mined.
    assert_eq!(pool.select(&ledger, usize::MAX).len(), pool.len());
}

#[test]
fn a_replacement_needs_a_higher_fee_and_counts_the_balance_once() {
    let ledger = funded_ledger(&[(alice().address(), 10)]);
    let chain = chain_id();
    let mut pool = Mempool::new();
    let first = pool
        .add(pay(&alice(), &bob(), 5, 1, 0), &ledger, &chain)
        .unwrap();
    assert_eq!(
        pool.add(pay(&alice(), &carol(), 5, 1, 0), &ledger, &chain),
        Err(MempoolError::ReplacementFeeTooLow { existing_fee: 1 })
    );
    assert_eq!(
        pool.add(pay(&alice(), &carol(), 6, 0, 0), &ledger, &chain),
        Err(MempoolError::ReplacementFeeTooLow { existing_fee: 1 })
    );
    // 5 + 4 = 9 fits in 10 only if the replaced transaction's 6 is no longer counted.
    let second = pool
        .add(pay(&alice(), &carol(), 5, 4, 0), &ledger, &chain)
        .expect("a higher fee replaces");
    assert!(!pool.contains(&first));
    assert!(pool.contains(&second));
    assert_eq!(pool.len(), 1);
}

#[test]
fn stale_and_far_ahead_nonces_are_refused() {
    let params = NetworkParams::test();
    let mut tree = BlockTree::new(params);
    extend(&mut tree, alice().address(), 2);
    let chain = tree.chain_id();
    let spent = common::pay(&alice(), &chain, &bob(), 5, 0, 0);
    let block = next_block(&tree, carol().address(), vec![spent.clone()]);
    add_tip(&mut tree, block);
    let mut pool = Mempool::new();
    assert_eq!(
        pool.add(spent, tree.ledger(), &chain),
        Err(MempoolError::StaleNonce {
            expected: 1,
            found: 0
        })
    );
    assert_eq!(
        pool.add(
            common::pay(&alice(), &chain, &bob(), 5, 0, 1 + MAX_PENDING_PER_SENDER),
            tree.ledger(),
            &chain
        ),
        Err(MempoolError::NonceTooFarAhead {
            expected: 1,
            found: 1 + MAX_PENDING_PER_SENDER
        })
    );
    // A gap is allowed: the transaction waits for its predecessor.
    let later = common::pay(&alice(), &chain, &bob(), 5, 0, MAX_PENDING_PER_SENDER);
    pool.add(later, tree.ledger(), &chain)
        .expect("within reach");
    assert!(pool.select(tree.ledger(), 10).is_empty());
}

#[test]
fn a_sender_cannot_queue_more_than_its_balance() {
    let ledger = funded_ledger(&[(alice().address(), 10)]);
    let chain = chain_id();
    let mut pool = Mempool::new();
    assert_eq!(
        pool.add(pay(&alice(), &bob(), 10, 1, 0), &ledger, &chain),
        Err(MempoolError::InsufficientBalance {
            balance: 10,
            needed: 11
        })
    );
    pool.add(pay(&alice(), &bob(), 5, 1, 0), &ledger, &chain)
        .unwrap();
    assert_eq!(
        pool.add(pay(&alice(), &bob(), 4, 1, 1), &ledger, &chain),
        Err(MempoolError::InsufficientBalance {
            balance: 10,
            needed: 11
        })
    );
    assert_eq!(
        pool.add(pay(&bob(), &alice(), 1, 0, 0), &ledger, &chain),
        Err(MempoolError::InsufficientBalance {
            balance: 0,
            needed: 1
        })
    );
    assert_eq!(pool.len(), 1);
}

#[test]
fn malformed_and_foreign_transactions_are_refused() {
    let ledger = rich(&[&alice()]);
    let chain = chain_id();
    let mut pool = Mempool::new();
    let ok = pay(&alice(), &bob(), 5, 1, 0);
    pool.add(ok.clone(), &ledger, &chain).unwrap();
    assert_eq!(
        pool.add(ok, &ledger, &chain),
        Err(MempoolError::AlreadyKnown)
    );
    assert_eq!(
        pool.add(pay(&alice(), &bob(), 0, 1, 1), &ledger, &chain),
        Err(MempoolError::Invalid(ValidationError::ZeroAmount {
            index: 0
        }))
    );
    assert_eq!(
        pool.add(pay(&alice(), &bob(), u64::MAX, 1, 1), &ledger, &chain),
        Err(MempoolError::Invalid(ValidationError::AmountOverflow {
            index: 0
        }))
    );
    let classroom = BlockTree::new(NetworkParams::classroom()).chain_id();
    let foreign = common::pay(&alice(), &classroom, &bob(), 5, 1, 1);
    assert_eq!(
        pool.add(foreign, &ledger, &chain),
        Err(MempoolError::Invalid(ValidationError::InvalidSignature {
            index: 0
        }))
    );
    let mut forged = pay(&alice(), &bob(), 5, 1, 1);
    forged.to = carol().address();
    assert_eq!(
        pool.add(forged, &ledger, &chain),
        Err(MempoolError::Invalid(ValidationError::InvalidSignature {
            index: 0
        }))
    );
    assert_eq!(pool.len(), 1);
}

#[test]
fn transactions_of_disconnected_blocks_return_after_a_reorg() {
    let params = NetworkParams::test();
    let mut tree = BlockTree::new(params.clone());
    let prefix = extend(&mut tree, alice().address(), 2);
    let chain = tree.chain_id();
    let mut pool = Mempool::new();

    // Branch A confirms alice's first transfer; carol mines it.
    let first = common::pay(&alice(), &chain, &bob(), 10, 1, 0);
    let a3 = next_block(&tree, carol().address(), vec![first.clone()]);
    add_tip(&mut tree, a3);
    // Then alice's second transfer and one of carol's wait.
    let second = common::pay(&alice(), &chain, &bob(), 5, 1, 1);
    let from_carol = common::pay(&carol(), &chain, &dave(), 20, 1, 0);
    pool.add(second.clone(), tree.ledger(), &chain).unwrap();
    pool.add(from_carol.clone(), tree.ledger(), &chain).unwrap();

    // Branch B, mined by dave, is heavier and has none of this.
    let mut other = common::tree_with(&params, &prefix);
    let b = extend(&mut other, dave().address(), 2);
    common::add(&mut tree, b[1].clone()).unwrap();
    let Ok(AddOutcome::TipChanged(change)) = common::add(&mut tree, b[0].clone()) else {
        panic!("B is heavier");
    };
    assert_eq!(change.reorg_depth(), 1);
    let dropped = pool.on_new_tip(tree.ledger(), &change.disconnected, &change.connected);

    // The confirmed-then-unconfirmed transfer is back, the one after it still waits, and
    // carol's transfer is gone with the coinbase that paid for it.
    assert!(pool.contains(&first.id()));
    assert!(pool.contains(&second.id()));
    assert_eq!(
        dropped,
        vec![(
            from_carol,
            MempoolError::InsufficientBalance {
                balance: 0,
                needed: 21
            }
        )]
    );
    // And they go into the next block of the new branch, in nonce order.
    let chosen = pool.select(tree.ledger(), 10);
    assert_eq!(chosen, vec![first, second]);
    let block = next_block(&tree, dave().address(), chosen);
    add_tip(&mut tree, block);
    assert_eq!(tree.ledger().balance(&bob().address()), 15);
}

#[test]
fn a_new_tip_removes_confirmed_and_conflicting_transactions() {
    let params = NetworkParams::test();
    let mut tree = BlockTree::new(params);
    extend(&mut tree, alice().address(), 2);
    extend(&mut tree, bob().address(), 1);
    let chain = tree.chain_id();
    let mut pool = Mempool::new();
    let confirmed = common::pay(&alice(), &chain, &carol(), 10, 1, 0);
    let replaced_in_block = common::pay(&alice(), &chain, &carol(), 10, 1, 1);
    let still_valid = common::pay(&bob(), &chain, &carol(), 10, 1, 0);
    for tx in [&confirmed, &replaced_in_block, &still_valid] {
        pool.add(tx.clone(), tree.ledger(), &chain).unwrap();
    }
    // The block confirms the first and spends alice's nonce 1 on a different transfer.
    let other_spend = common::pay(&alice(), &chain, &dave(), 7, 2, 1);
    let block = next_block(
        &tree,
        dave().address(),
        vec![confirmed.clone(), other_spend],
    );
    let Ok(AddOutcome::TipChanged(change)) = common::add(&mut tree, block) else {
        panic!("valid block");
    };
    let dropped = pool.on_new_tip(tree.ledger(), &change.disconnected, &change.connected);
    assert_eq!(
        dropped,
        vec![(
            replaced_in_block,
            MempoolError::StaleNonce {
                expected: 2,
                found: 1
            }
        )]
    );
    assert_eq!(pool.transactions(), vec![still_valid]);
}
