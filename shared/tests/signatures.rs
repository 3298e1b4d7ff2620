//! A signature's validity must not depend on the rest of its block. ed25519-dalek's batch
//! equation accepts some signatures whose R carries a small-order (torsion) component when they
//! stand alone, and rejects them next to other transactions; consensus therefore verifies each
//! signature on its own, strictly. These signatures are built by hand from the signer's secret.

#![cfg(not(target_arch = "wasm32"))]

use curve25519_dalek::constants::{ED25519_BASEPOINT_TABLE, EIGHT_TORSION};
use curve25519_dalek::scalar::Scalar;
use sha2::{Digest, Sha512};
use shared::block::{chain_id, genesis_block};
use shared::keys::{Keypair, Signature};
use shared::mempool::Mempool;
use shared::params::NetworkParams;
use shared::state::Ledger;
use shared::tx::Transaction;
use shared::validation::{verify_signatures, ValidationError};

/// Signs `tx` as `seed` would, but with `R + T` for a point `T` of order 8.
fn sign_with_torsion(seed: [u8; 32], tx: &mut Transaction, chain: &shared::Hash, salt: u64) {
    let expanded = Sha512::digest(seed);
    let mut secret = [0u8; 32];
    secret.copy_from_slice(&expanded[..32]);
    secret[0] &= 248;
    secret[31] &= 127;
    secret[31] |= 64;
    let a = Scalar::from_bytes_mod_order(secret);
    let public = (&a * ED25519_BASEPOINT_TABLE).compress();
    assert_eq!(public.to_bytes(), tx.from.0, "the same key as the keypair");
    let r = Scalar::from_bytes_mod_order_wide(&Sha512::digest(salt.to_be_bytes()).into());
    let big_r = (&r * ED25519_BASEPOINT_TABLE + EIGHT_TORSION[1]).compress();
    let mut hasher = Sha512::new();
    hasher.update(big_r.as_bytes());
    hasher.update(public.as_bytes());
    hasher.update(tx.signing_bytes(chain));
    let k = Scalar::from_bytes_mod_order_wide(&hasher.finalize().into());
    let s = r + k * a;
    let mut signature = [0u8; 64];
    signature[..32].copy_from_slice(big_r.as_bytes());
    signature[32..].copy_from_slice(s.as_bytes());
    tx.signature = Signature(signature);
}

#[test]
fn a_signature_with_a_torsion_component_is_invalid_alone_and_in_company() {
    let seed = [1u8; 32];
    let alice = Keypair::from_seed(seed);
    let bob = Keypair::from_seed([2u8; 32]);
    let chain = chain_id(&genesis_block(&NetworkParams::test()).hash());
    let honest = Transaction::new_signed(&bob, &chain, alice.address(), 1, 0, 0);
    // Across many R values, a batch of one accepted some of these; none may pass now.
    for salt in 0..200u64 {
        let mut tx = Transaction::new_signed(&alice, &chain, bob.address(), 1 + salt, 0, 0);
        sign_with_torsion(seed, &mut tx, &chain, salt);
        assert!(
            !tx.verify_signature(&chain),
            "salt {salt}: single verification rejects it"
        );
        assert_eq!(
            verify_signatures(std::slice::from_ref(&tx), &chain),
            Err(ValidationError::InvalidSignature { index: 0 }),
            "salt {salt}: rejected alone"
        );
        assert_eq!(
            verify_signatures(&[honest.clone(), tx.clone()], &chain),
            Err(ValidationError::InvalidSignature { index: 1 }),
            "salt {salt}: rejected next to an honest transaction"
        );
        let mut pool = Mempool::new();
        assert!(
            pool.add(tx, &Ledger::default(), &chain).is_err(),
            "salt {salt}: the mempool refuses it"
        );
    }
}

#[test]
fn verification_on_several_threads_names_the_same_first_invalid_signature() {
    let params = NetworkParams::test();
    let chain = chain_id(&genesis_block(&params).hash());
    let sender = Keypair::from_seed([7; 32]);
    let txs: Vec<Transaction> = (0..40)
        .map(|nonce| Transaction::new_signed(&sender, &chain, sender.address(), 1, 1, nonce))
        .collect();
    for threads in [1, 2, 3, 8] {
        shared::validation::set_verification_threads(threads);
        assert_eq!(verify_signatures(&txs, &chain), Ok(()), "{threads} threads");
        for broken in [[3].as_slice(), &[39], &[25, 31], &[11, 2, 38]] {
            let mut block = txs.clone();
            for &index in broken {
                block[index].amount += 1;
            }
            let first = *broken.iter().min().unwrap();
            assert_eq!(
                verify_signatures(&block, &chain),
                Err(ValidationError::InvalidSignature { index: first }),
                "{threads} threads, broken at {broken:?}"
            );
        }
    }
    shared::validation::set_verification_threads(1);
}
