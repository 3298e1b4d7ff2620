//! The block tree as a node lives it: blocks arriving out of order, competing branches, reorgs
//! that move coins back, invalid branches, and the bounds on what a peer can make us store.
//!
//! Competing branches are mined on a second tree that shares the prefix (a second node), then
//! delivered to the tree under test.

mod common;

// The same tests run in a browser: `wasm_bindgen_test` takes the place of `#[test]` there.
#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;
#[cfg(target_arch = "wasm32")]
wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);

use common::{
    add, add_tip, alice, bob, carol, child_of, dave, extend, extend_spaced, next_block, pay,
    tree_with, unseal,
};
use shared::block::Block;
use shared::chain::{AddOutcome, BlockTree, ChainError, MAX_ORPHANS};
use shared::params::NetworkParams;
use shared::validation::ValidationError;
use shared::work::Target;

fn params() -> NetworkParams {
    NetworkParams::test()
}

fn hashes(blocks: &[std::sync::Arc<Block>]) -> Vec<shared::Hash> {
    blocks.iter().map(|block| block.hash()).collect()
}

#[test]
fn an_orphan_connects_when_its_parent_arrives() {
    let mut source = BlockTree::new(params());
    let chain = extend(&mut source, alice().address(), 3);
    let mut tree = BlockTree::new(params());
    add_tip(&mut tree, chain[0].clone());

    assert_eq!(
        add(&mut tree, chain[2].clone()),
        Ok(AddOutcome::Orphan {
            missing_parent: chain[1].hash()
        })
    );
    assert!(tree.is_orphan(&chain[2].hash()));
    assert_eq!(tree.tip_height(), 1);
    assert_eq!(
        add(&mut tree, chain[2].clone()),
        Ok(AddOutcome::AlreadyKnown)
    );

    let Ok(AddOutcome::TipChanged(change)) = add(&mut tree, chain[1].clone()) else {
        panic!("the parent must connect the orphan");
    };
    assert_eq!(change.new_tip, chain[2].hash());
    assert_eq!(change.new_height, 3);
    assert!(change.disconnected.is_empty());
    assert_eq!(
        hashes(&change.connected),
        vec![chain[1].hash(), chain[2].hash()]
    );
    assert_eq!(tree.orphan_count(), 0);
    assert_eq!(tree.ledger(), source.ledger());
}

#[test]
fn orphans_of_an_invalid_block_leave_the_pool_with_it() {
    let mut source = BlockTree::new(params());
    let chain = extend(&mut source, alice().address(), 1);
    // A child paying itself too much, and a grandchild and great-grandchild on top of it.
    let mut bad = child_of(&chain[0], alice().address(), &params());
    bad.coinbase.amount += 1;
    common::reseal(&mut bad);
    let grandchild = child_of(&bad, alice().address(), &params());
    let great = child_of(&grandchild, alice().address(), &params());

    let mut tree = BlockTree::new(params());
    for orphan in [&great, &grandchild, &bad] {
        assert!(matches!(
            add(&mut tree, orphan.clone()),
            Ok(AddOutcome::Orphan { .. })
        ));
    }
    assert_eq!(tree.orphan_count(), 3);

    // The parent arrives: the bad block fails, and what waited on it goes with it.
    add_tip(&mut tree, chain[0].clone());
    assert_eq!(tree.orphan_count(), 0);
    assert_eq!(tree.tip_height(), 1);
    for gone in [&bad, &grandchild, &great] {
        assert!(tree.is_known_invalid(&gone.hash()));
        assert_eq!(
            add(&mut tree, gone.clone()),
            Err(ChainError::KnownInvalid(gone.hash()))
        );
    }
}

#[test]
fn a_chain_delivered_backwards_is_assembled_when_its_first_block_arrives() {
    let mut source = BlockTree::new(params());
    let chain = extend(&mut source, alice().address(), 20);
    // The local clock reads the time of the newest block, as it would after they were mined.
    let now = source.tip_header().timestamp_ms;
    let mut tree = BlockTree::new(params());
    for block in chain.iter().skip(1).rev() {
        assert!(matches!(
            tree.add_block(block.clone(), now),
            Ok(AddOutcome::Orphan { .. })
        ));
    }
    assert_eq!(tree.orphan_count(), 19);
    assert!(matches!(
        tree.add_block(chain[0].clone(), now),
        Ok(AddOutcome::TipChanged(_))
    ));
    assert_eq!(tree.tip_hash(), source.tip_hash());
    assert_eq!(tree.orphan_count(), 0);
    assert_eq!(tree.ledger(), source.ledger());
    common::assert_supply(&tree);
}

/// Chain A has 14 blocks at the target interval, all at the easiest target. Chain B's blocks are
/// mined 1 ms apart, so from block 7 on (the first whose target the rule computes) each one is
/// harder; B is as long as it takes to outweigh A: B is shorter and has more work.
fn long_light_and_short_heavy() -> (Vec<Block>, Vec<Block>) {
    let mut a_tree = BlockTree::new(params());
    let a = extend(&mut a_tree, alice().address(), 14);
    let mut b_tree = BlockTree::new(params());
    let mut b = Vec::new();
    while b_tree.tip_work() <= a_tree.tip_work() {
        b.extend(extend_spaced(&mut b_tree, bob().address(), 1, 1));
    }
    assert!(b.len() < 10, "B is much shorter: {} blocks", b.len());
    let last = &b[b.len() - 1].header;
    assert!(last.target != b[0].header.target, "B got harder");
    (a, b)
}

#[test]
fn the_chain_with_most_work_wins_even_when_shorter() {
    let (a, b) = long_light_and_short_heavy();

    let mut tree = BlockTree::new(params());
    for block in &a {
        add_tip(&mut tree, block.clone());
    }
    for block in &b[..b.len() - 1] {
        assert_eq!(add(&mut tree, block.clone()), Ok(AddOutcome::SideBranch));
    }
    let Ok(AddOutcome::TipChanged(change)) = add(&mut tree, b[b.len() - 1].clone()) else {
        panic!("the heavier branch must take over");
    };
    assert_eq!(change.reorg_depth(), a.len());
    assert_eq!(change.connected.len(), b.len());
    assert_eq!(tree.tip_hash(), b[b.len() - 1].hash());
    assert_eq!(tree.tip_height(), b.len() as u64);
    assert_eq!(tree.ledger().balance(&alice().address()), 0);
    assert_eq!(tree.ledger().balance(&bob().address()), 50 * b.len() as u64);

    // Delivered the other way round, the longer chain never takes over.
    let mut tree = BlockTree::new(params());
    for block in &b {
        add_tip(&mut tree, block.clone());
    }
    for block in &a {
        assert_eq!(add(&mut tree, block.clone()), Ok(AddOutcome::SideBranch));
    }
    assert_eq!(tree.tip_hash(), b[b.len() - 1].hash());
    common::assert_supply(&tree);
}

#[test]
fn equal_work_goes_to_the_lower_hash_whatever_the_arrival_order() {
    let tree = BlockTree::new(params());
    let x = next_block(&tree, alice().address(), vec![]);
    let y = next_block(&tree, bob().address(), vec![]);
    let lower = x.hash().min(y.hash());
    for (first, second) in [(&x, &y), (&y, &x)] {
        let mut tree = BlockTree::new(params());
        add_tip(&mut tree, first.clone());
        add(&mut tree, second.clone()).expect("both are valid");
        assert_eq!(tree.tip_hash(), lower);
    }
}

#[test]
fn a_reorg_moves_coins_back_and_forth() {
    let p = params();
    let mut tree = BlockTree::new(p.clone());
    let prefix = extend(&mut tree, alice().address(), 2);
    let chain_id = tree.chain_id();

    // Branch A: alice pays bob 30 (fee 2), carol mines.
    let a3 = next_block(
        &tree,
        carol().address(),
        vec![pay(&alice(), &chain_id, &bob(), 30, 2, 0)],
    );
    add_tip(&mut tree, a3.clone());
    let mut a_tree = tree_with(&p, &prefix);
    add_tip(&mut a_tree, a3.clone());
    assert_eq!(tree.ledger().balance(&bob().address()), 30);

    // Branch B, one block longer: alice pays carol 10 (fee 1), carol pays bob 5; dave mines.
    let mut b_tree = tree_with(&p, &prefix);
    let b3 = next_block(
        &b_tree,
        dave().address(),
        vec![pay(&alice(), &chain_id, &carol(), 10, 1, 0)],
    );
    add_tip(&mut b_tree, b3.clone());
    let b4 = next_block(
        &b_tree,
        dave().address(),
        vec![pay(&carol(), &chain_id, &bob(), 5, 0, 0)],
    );
    add_tip(&mut b_tree, b4.clone());

    assert!(matches!(
        add(&mut tree, b4.clone()),
        Ok(AddOutcome::Orphan { .. })
    ));
    let Ok(AddOutcome::TipChanged(change)) = add(&mut tree, b3.clone()) else {
        panic!("B has more work");
    };
    assert_eq!(hashes(&change.disconnected), vec![a3.hash()]);
    assert_eq!(hashes(&change.connected), vec![b3.hash(), b4.hash()]);
    let ledger = tree.ledger();
    assert_eq!(
        ledger,
        b_tree.ledger(),
        "the same ledger as applying B alone"
    );
    assert_eq!(ledger.balance(&alice().address()), 100 - 11);
    assert_eq!(ledger.balance(&bob().address()), 5);
    assert_eq!(ledger.balance(&carol().address()), 5);
    assert_eq!(ledger.balance(&dave().address()), 101);
    assert_eq!(ledger.account(&alice().address()).nonce, 1);
    common::assert_supply(&tree);

    // A grows past B again: everything B did is undone and A's transfer is back.
    let a4 = next_block(&a_tree, carol().address(), vec![]);
    add_tip(&mut a_tree, a4.clone());
    let a5 = next_block(&a_tree, carol().address(), vec![]);
    add_tip(&mut a_tree, a5.clone());
    assert!(matches!(add(&mut tree, a5), Ok(AddOutcome::Orphan { .. })));
    let Ok(AddOutcome::TipChanged(change)) = add(&mut tree, a4) else {
        panic!("A has more work again");
    };
    assert_eq!(hashes(&change.disconnected), vec![b4.hash(), b3.hash()]);
    assert_eq!(tree.ledger(), a_tree.ledger());
    assert_eq!(tree.ledger().balance(&bob().address()), 30);
    assert_eq!(tree.ledger().balance(&dave().address()), 0);
    common::assert_supply(&tree);
}

#[test]
fn an_invalid_block_on_a_heavier_branch_leaves_the_node_on_its_tip() {
    let p = params();
    let mut tree = BlockTree::new(p.clone());
    let prefix = extend(&mut tree, alice().address(), 2);
    extend(&mut tree, alice().address(), 1);
    let (tip, ledger, stored) = (tree.tip_hash(), tree.ledger().clone(), tree.block_count());

    // B3 spends coins bob does not have (valid signature, so only the ledger can tell);
    // B4 on top of it makes branch B heavier.
    let b_tree = tree_with(&p, &prefix);
    let overspend = pay(&bob(), &tree.chain_id(), &carol(), 5, 0, 0);
    let b3 = next_block(&b_tree, carol().address(), vec![overspend]);
    let b4 = child_of(&b3, carol().address(), &p);

    assert!(matches!(
        add(&mut tree, b4.clone()),
        Ok(AddOutcome::Orphan { .. })
    ));
    let result = add(&mut tree, b3.clone());
    assert_eq!(
        result,
        Err(ChainError::Invalid {
            hash: b3.hash(),
            error: ValidationError::InsufficientBalance {
                index: 0,
                balance: 0,
                needed: 5
            }
        })
    );
    assert_eq!(tree.tip_hash(), tip);
    assert_eq!(tree.ledger(), &ledger);
    assert_eq!(tree.block_count(), stored, "the invalid branch is not kept");
    assert!(tree.is_known_invalid(&b3.hash()));
    assert!(tree.is_known_invalid(&b4.hash()));

    // Both are now refused by hash, and so is anything built on them.
    assert_eq!(
        add(&mut tree, b3.clone()),
        Err(ChainError::KnownInvalid(b3.hash()))
    );
    assert_eq!(
        add(&mut tree, b4.clone()),
        Err(ChainError::KnownInvalid(b4.hash()))
    );
    let b5 = child_of(&b4, carol().address(), &p);
    assert_eq!(
        add(&mut tree, b5.clone()),
        Err(ChainError::InvalidParent { hash: b5.hash() })
    );
    assert!(tree.is_known_invalid(&b5.hash()));
    assert_eq!(tree.tip_hash(), tip);
}

#[test]
fn a_side_block_whose_ancestor_fails_the_ledger_is_reported_with_every_removed_block() {
    // The parent-first order: B3 (overspending) arrives while branch B is lighter, so it is
    // stored as a side branch without a ledger check; B4 then makes B heavier, the switch finds
    // B3 invalid, and both leave the tree. The caller must hear of it to delete B3 (stored) and
    // to blame its sender; this used to come back as `Ok(SideBranch)` with B4 gone.
    let p = params();
    let mut tree = BlockTree::new(p.clone());
    let prefix = extend(&mut tree, alice().address(), 2);
    let b_tree = tree_with(&p, &prefix);
    let overspend = pay(&bob(), &tree.chain_id(), &carol(), 5, 0, 0);
    let b3 = next_block(&b_tree, carol().address(), vec![overspend]);
    let b4 = child_of(&b3, carol().address(), &p);
    // A3 and B3 share a parent, so a target and a work: A3 must win the tie by the lower hash.
    let a3 = (0..)
        .map(|extra| {
            let spacing = p.target_block_ms + extra;
            common::next_block_spaced(&tree, alice().address(), Vec::new(), spacing)
        })
        .find(|block| block.hash() < b3.hash())
        .expect("about every second block has the lower hash");
    add_tip(&mut tree, a3);
    let (tip, ledger) = (tree.tip_hash(), tree.ledger().clone());

    assert_eq!(add(&mut tree, b3.clone()), Ok(AddOutcome::SideBranch));
    let result = add(&mut tree, b4.clone());
    let Err(ChainError::InvalidAncestor {
        hash,
        ancestor,
        error,
        removed,
    }) = result
    else {
        panic!("B4's branch holds an invalid ancestor, got {result:?}");
    };
    assert_eq!(hash, b4.hash());
    assert_eq!(ancestor, b3.hash());
    assert!(matches!(
        *error,
        ValidationError::InsufficientBalance { .. }
    ));
    let mut removed = removed;
    removed.sort();
    let mut expected = vec![b3.hash(), b4.hash()];
    expected.sort();
    assert_eq!(removed, expected);
    assert_eq!(tree.tip_hash(), tip);
    assert_eq!(tree.ledger(), &ledger);
    assert!(!tree.contains(&b3.hash()) && !tree.contains(&b4.hash()));
    assert!(tree.is_known_invalid(&b3.hash()) && tree.is_known_invalid(&b4.hash()));
    assert_eq!(
        tree.branch_tips(),
        vec![tip],
        "the only branch left is ours"
    );
}

#[test]
fn the_valid_part_of_a_heavier_branch_is_kept_when_it_alone_has_more_work() {
    let p = params();
    let mut tree = BlockTree::new(p.clone());
    let prefix = extend(&mut tree, alice().address(), 2);
    extend(&mut tree, alice().address(), 1);

    let mut b_tree = tree_with(&p, &prefix);
    let b = extend(&mut b_tree, carol().address(), 2);
    let overspend = pay(&bob(), &tree.chain_id(), &carol(), 5, 0, 0);
    let bad = next_block(&b_tree, carol().address(), vec![overspend]);

    add(&mut tree, bad.clone()).expect("an orphan");
    add(&mut tree, b[1].clone()).expect("an orphan");
    let Ok(AddOutcome::TipChanged(change)) = add(&mut tree, b[0].clone()) else {
        panic!("B3, B4 have more work than A3 without the bad B5");
    };
    assert_eq!(change.new_tip, b[1].hash());
    assert_eq!(change.rejected.len(), 1);
    assert_eq!(change.rejected[0].0, bad.hash());
    assert!(matches!(
        change.rejected[0].1,
        ValidationError::InsufficientBalance { .. }
    ));
    assert_eq!(tree.ledger(), b_tree.ledger());
    // The kept part ends at B4 (its bad child is gone), beside our old branch's tip.
    let tips = tree.branch_tips();
    assert!(tips.contains(&b[1].hash()), "B4 is a branch tip");
    assert_eq!(tips.len(), 2, "B4 and the old tip A3: {tips:?}");
    assert!(!tips.contains(&bad.hash()));
}

#[test]
fn the_orphan_pool_is_bounded_and_forgets_the_oldest_first() {
    let extra = 10;
    let mut source = BlockTree::new(params());
    let chain = extend(&mut source, alice().address(), MAX_ORPHANS + extra + 1);
    let now = source.tip_header().timestamp_ms;
    let mut tree = BlockTree::new(params());
    for block in &chain[1..] {
        assert!(matches!(
            tree.add_block(block.clone(), now),
            Ok(AddOutcome::Orphan { .. })
        ));
        assert!(tree.orphan_count() <= MAX_ORPHANS);
    }
    assert_eq!(tree.orphan_count(), MAX_ORPHANS);
    let evicted = &chain[1..=extra];
    assert!(evicted.iter().all(|block| !tree.is_orphan(&block.hash())));
    assert!(chain[extra + 1..]
        .iter()
        .all(|block| tree.is_orphan(&block.hash())));

    // The first block connects nothing, since its child was forgotten; sending the forgotten
    // blocks again reassembles the whole chain.
    for block in std::iter::once(&chain[0]).chain(evicted) {
        assert!(matches!(
            tree.add_block(block.clone(), now),
            Ok(AddOutcome::TipChanged(_))
        ));
        if block.hash() == chain[0].hash() {
            assert_eq!(tree.tip_height(), 1);
        }
    }
    assert_eq!(tree.tip_hash(), source.tip_hash());
    assert_eq!(tree.orphan_count(), 0);
}

#[test]
fn an_orphan_without_proof_of_work_is_refused() {
    let mut source = BlockTree::new(params());
    let chain = extend(&mut source, alice().address(), 2);
    let mut tree = BlockTree::new(params());

    let mut no_work = chain[1].clone();
    unseal(&mut no_work);
    assert_eq!(
        add(&mut tree, no_work.clone()),
        Err(ChainError::OrphanWithoutWork {
            hash: no_work.hash()
        })
    );
    // A target easier than the network ever allows is no work either, even if met.
    let mut too_easy = chain[1].clone();
    too_easy.header.target = Target(0x20ff_ffff);
    common::seal(&mut too_easy);
    assert_eq!(
        add(&mut tree, too_easy.clone()),
        Err(ChainError::OrphanWithoutWork {
            hash: too_easy.hash()
        })
    );
    assert_eq!(tree.orphan_count(), 0);
}

/// A relaying peer can alter the body of a block it forwards while the header (and so the hash)
/// stays the same. If that copy arrives first as an orphan, the honest block must still connect.
#[test]
fn a_tampered_orphan_does_not_shadow_the_honest_block() {
    let p = params();
    let mut source = BlockTree::new(p.clone());
    let b1 = next_block(&source, alice().address(), vec![]);
    add_tip(&mut source, b1.clone());
    let chain_id = source.chain_id();
    let honest = next_block(
        &source,
        alice().address(),
        vec![pay(&alice(), &chain_id, &bob(), 10, 0, 0)],
    );
    add_tip(&mut source, honest.clone());
    let mut tampered = honest.clone();
    tampered.transactions[0] = pay(&alice(), &chain_id, &carol(), 10, 0, 0);
    assert_eq!(tampered.hash(), honest.hash());

    let mut tree = BlockTree::new(p);
    assert_eq!(
        add(&mut tree, tampered),
        Err(ChainError::Invalid {
            hash: honest.hash(),
            error: ValidationError::TxRootMismatch
        })
    );
    assert!(matches!(
        add(&mut tree, honest.clone()),
        Ok(AddOutcome::Orphan { .. })
    ));
    add(&mut tree, b1).expect("b1 is valid");
    assert_eq!(
        tree.tip_hash(),
        honest.hash(),
        "the honest block was shadowed by its tampered copy"
    );
    assert_eq!(tree.ledger().balance(&bob().address()), 10);
}

#[test]
fn an_extension_reports_exactly_the_new_block() {
    let mut tree = BlockTree::new(params());
    let old = tree.tip_hash();
    let block = next_block(&tree, alice().address(), vec![]);
    let Ok(AddOutcome::TipChanged(change)) = add(&mut tree, block.clone()) else {
        panic!("an extension moves the tip");
    };
    assert_eq!(change.old_tip, old);
    assert_eq!(change.new_tip, block.hash());
    assert_eq!(change.new_height, 1);
    assert_eq!(change.reorg_depth(), 0);
    assert_eq!(hashes(&change.connected), vec![block.hash()]);
    assert!(change.rejected.is_empty());
    assert_eq!(add(&mut tree, block), Ok(AddOutcome::AlreadyKnown));
}

#[test]
fn a_node_behind_finds_the_fork_point_from_a_locator() {
    let p = params();
    let mut ahead = BlockTree::new(p.clone());
    let chain = extend(&mut ahead, alice().address(), 40);
    let behind = tree_with(&p, &chain[..25]);
    let headers = ahead.headers_after(&behind.locator(), 10);
    assert_eq!(headers.len(), 10);
    assert_eq!(headers[0], chain[25].header);
    assert_eq!(headers[9], chain[34].header);
    // The locator is short and ends at genesis.
    let locator = ahead.locator();
    assert!(locator.len() < 20, "{} hashes", locator.len());
    assert_eq!(locator.last(), Some(&ahead.genesis_hash()));
}
