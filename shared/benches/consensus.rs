//! Benchmarks of the consensus core: the mining loop against plain SHA-256, validating blocks of
//! 1 to 1,000 transactions, and importing a 10,000-block chain from genesis.
//!
//! Run with `cargo bench -p shared --bench consensus`; the figures go in BENCHMARKS.md.
//! Sample sizes are small so the whole run takes a few minutes.

#[cfg(not(target_arch = "wasm32"))]
#[path = "../tests/common/mod.rs"]
mod common;

#[cfg(not(target_arch = "wasm32"))]
mod native {
    use crate::common::{add_tip, alice, bob, keypair, next_block};
    use criterion::{BatchSize, BenchmarkId, Criterion, Throughput};
    use sha2::{Digest, Sha256};
    use shared::block::{Block, NONCE_OFFSET};
    use shared::chain::BlockTree;
    use shared::keys::Keypair;
    use shared::mining::{mine, MiningOutcome};
    use shared::params::NetworkParams;
    use shared::tx::Transaction;
    use shared::validation::check_block;
    use shared::work::Target;
    use std::hint::black_box;
    use std::time::Duration;

    /// Nonces per measured call: long enough that the per-call midstate is noise.
    const NONCES: u64 = 100_000;

    /// `mine` (one compression per nonce after a midstate) against what a naive miner does:
    /// SHA-256 of all 96 header bytes per nonce, then compare with the target.
    fn hashing(c: &mut Criterion) {
        let tree = BlockTree::new(NetworkParams::test());
        let mut header = tree
            .block_template(alice().address(), vec![], 1_767_225_610_000)
            .header;
        // A target of 1: no nonce meets it, so every call tries all NONCES.
        header.target = Target(0x0300_0001);
        let target = header.target.to_be_bytes().expect("a valid target");

        let mut group = c.benchmark_group("hashing");
        group.throughput(Throughput::Elements(NONCES));
        group.sample_size(20);
        group.measurement_time(Duration::from_secs(4));
        group.bench_function("mine (midstate)", |b| {
            b.iter(|| {
                let outcome = mine(black_box(&header), 0, NONCES);
                assert_eq!(outcome, MiningOutcome::Exhausted { tried: NONCES });
            })
        });
        group.bench_function("raw sha2 of 96 bytes", |b| {
            let mut bytes = header.encode();
            b.iter(|| {
                let mut found = None;
                for nonce in 0..NONCES {
                    bytes[NONCE_OFFSET..].copy_from_slice(&nonce.to_be_bytes());
                    let digest = Sha256::digest(black_box(&bytes));
                    if digest.as_slice() <= target.as_slice() {
                        found = Some(nonce);
                        break;
                    }
                }
                assert_eq!(found, None);
            })
        });
        group.finish();
    }

    /// A chain on which alice holds enough coins for 1,000 transfers.
    fn funded_tree() -> BlockTree {
        let mut tree = BlockTree::new(NetworkParams::test());
        for _ in 0..25 {
            let block = next_block(&tree, alice().address(), vec![]);
            add_tip(&mut tree, block);
        }
        tree
    }

    /// Every rule of a block: `check_block` (PoW, header, root, batch signature verification)
    /// then `Ledger::apply_block` on a copy of the tip's ledger.
    fn validation(c: &mut Criterion) {
        let tree = funded_tree();
        let params = tree.params().clone();
        let chain_id = tree.chain_id();
        let parent = tree.parent_context(&tree.tip_hash()).expect("tip");
        let mut group = c.benchmark_group("validate block");
        group.sample_size(20);
        group.measurement_time(Duration::from_secs(4));
        for count in [1u64, 100, 1_000] {
            let txs: Vec<Transaction> = (0..count)
                .map(|nonce| {
                    Transaction::new_signed(&alice(), &chain_id, bob().address(), 1, 0, nonce)
                })
                .collect();
            let block = next_block(&tree, keypair(9).address(), txs);
            let now = block.header.timestamp_ms;
            group.throughput(Throughput::Elements(count));
            group.bench_with_input(BenchmarkId::new("txs", count), &block, |b, block| {
                b.iter_batched(
                    || (block.clone(), tree.ledger().clone()),
                    |(block, mut ledger)| {
                        let height = block.header.height;
                        let checked = check_block(block, &parent, &params, &chain_id, now)
                            .expect("a valid block");
                        ledger
                            .apply_block(checked.block(), params.subsidy(height))
                            .expect("the ledger accepts it");
                        ledger
                    },
                    BatchSize::SmallInput,
                )
            });
        }
        group.finish();
    }

    pub const CHAIN_BLOCKS: usize = 10_000;
    pub const TXS_PER_BLOCK: usize = 10;

    /// 10,000 blocks on the test network. Ten accounts each mine one of the first ten blocks;
    /// every later block carries one transfer from each of them (amount 1, fee 1) and pays its
    /// subsidy and fees to one of them in turn, so they never run dry.
    pub fn long_chain() -> Vec<Block> {
        let people: Vec<Keypair> = (0..TXS_PER_BLOCK as u32)
            .map(|i| keypair(100 + i))
            .collect();
        let mut tree = BlockTree::new(NetworkParams::test());
        let chain_id = tree.chain_id();
        let mut blocks = Vec::with_capacity(CHAIN_BLOCKS);
        for height in 1..=CHAIN_BLOCKS {
            let txs = if height <= people.len() {
                vec![]
            } else {
                people
                    .iter()
                    .enumerate()
                    .map(|(i, from)| {
                        let nonce = tree.ledger().account(&from.address()).nonce;
                        let to = people[(i + 1) % people.len()].address();
                        Transaction::new_signed(from, &chain_id, to, 1, 1, nonce)
                    })
                    .collect()
            };
            let miner = people[height % people.len()].address();
            let block = next_block(&tree, miner, txs);
            add_tip(&mut tree, block.clone());
            blocks.push(block);
        }
        blocks
    }

    /// A node catching up: a fresh tree takes every block of the chain in order.
    fn import(c: &mut Criterion) {
        let blocks = long_chain();
        let now = blocks.last().expect("blocks").header.timestamp_ms;
        let mut group = c.benchmark_group("import chain");
        group.sample_size(10);
        group.warm_up_time(Duration::from_secs(1));
        group.measurement_time(Duration::from_secs(20));
        group.throughput(Throughput::Elements(CHAIN_BLOCKS as u64));
        for threads in [1, 2] {
            import_with(&mut group, &blocks, now, threads);
        }
        group.finish();
    }

    fn import_with(
        group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
        blocks: &[Block],
        now: u64,
        threads: usize,
    ) {
        shared::validation::set_verification_threads(threads);
        let name = format!("10000 blocks x 10 txs, {threads} verification thread(s)");
        group.bench_function(name, |b| {
            b.iter_batched(
                || blocks.to_vec(),
                |blocks| {
                    let mut tree = BlockTree::new(NetworkParams::test());
                    for block in blocks {
                        tree.add_block(block, now).expect("a valid chain");
                    }
                    assert_eq!(tree.tip_height(), CHAIN_BLOCKS as u64);
                    tree
                },
                BatchSize::PerIteration,
            )
        });
        shared::validation::set_verification_threads(1);
    }

    criterion::criterion_group!(benches, hashing, validation, import);
}

#[cfg(not(target_arch = "wasm32"))]
criterion::criterion_main!(native::benches);

/// criterion does not build for wasm32; `cargo clippy --all-targets --target wasm32-unknown-unknown`
/// still compiles this file.
#[cfg(target_arch = "wasm32")]
fn main() {}
