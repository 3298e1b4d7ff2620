//! What a lying peer can make an honest node spend, measured side by side in one run:
//! - a `mempool` message of 1,000 transactions the node already holds, against the same message
//!   the first time (which is what every re-send cost before known transactions were recognised
//!   by id: each was verified again);
//! - a flood of 300 orphans of 1,000 transactions each: bytes the orphan pool holds and the
//!   process's resident memory, against what the old count-only bound (256 orphans) allowed.
//!
//! Run with `cargo bench -p shared --bench liars`; the figures go in BENCHMARKS.md.

#[cfg(not(target_arch = "wasm32"))]
#[path = "../tests/common/mod.rs"]
mod common;

#[cfg(not(target_arch = "wasm32"))]
fn main() {
    native::main();
}

#[cfg(target_arch = "wasm32")]
fn main() {}

#[cfg(not(target_arch = "wasm32"))]
mod native {
    use crate::common::{add_tip, alice, bob, extend, keypair, next_block, pay};
    use shared::block::{Block, BlockHeader, Coinbase, BLOCK_VERSION};
    use shared::chain::{BlockTree, MAX_ORPHANS, MAX_ORPHAN_BYTES};
    use shared::hash::Hash;
    use shared::keys::Keypair;
    use shared::mining::{mine, MiningOutcome};
    use shared::node::{Node, NodeConfig};
    use shared::params::NetworkParams;
    use shared::protocol::message::{NodeMessage, PROTOCOL_VERSION};
    use shared::protocol::PeerId;
    use shared::tx::Transaction;
    use std::time::Instant;

    const SENDERS: u32 = 20;
    const TXS_PER_SENDER: u64 = 50;
    const RESENDS: u32 = 20;
    const ORPHANS: usize = 300;
    /// The relay's default message rate per peer: what one liar can send us a second.
    const RELAY_RATE: f64 = 200.0;

    fn rss_bytes() -> u64 {
        let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
        let pages: u64 = statm
            .split_whitespace()
            .nth(1)
            .and_then(|field| field.parse().ok())
            .unwrap_or(0);
        pages * 4096
    }

    fn node_with(blocks: Vec<Block>, now: u64) -> (Node, PeerId) {
        let params = NetworkParams::test();
        let mut node = Node::new(NodeConfig {
            params,
            name: "victim".into(),
            keypair: bob(),
            max_direct_links: 0,
        });
        node.handle_stored_blocks(blocks, now);
        let liar = PeerId::from_bytes([7; 16]);
        node.handle_peer_joined(liar.clone(), now);
        let tree = node.tree();
        let hello = NodeMessage::Hello {
            protocol_version: PROTOCOL_VERSION,
            chain_id: tree.chain_id(),
            genesis_hash: tree.genesis_hash(),
            name: "liar".into(),
            address: Keypair::from_seed([0xad; 32]).address(),
            tip: node.tip_status(),
            direct_links: false,
        }
        .encode();
        node.handle_message(&liar, &hello, now);
        while node.poll_output().is_some() {}
        (node, liar)
    }

    /// A chain in which [`SENDERS`] keys hold coins, and 1,000 valid payments from them.
    fn funded_chain() -> (Vec<Block>, Vec<Transaction>, u64) {
        let params = NetworkParams::test();
        let mut tree = BlockTree::new(params);
        let mut blocks = extend(&mut tree, alice().address(), 30);
        let chain_id = tree.chain_id();
        let funding: Vec<Transaction> = (0..SENDERS)
            .map(|i| pay(&alice(), &chain_id, &keypair(100 + i), 60, 0, i as u64))
            .collect();
        let block = next_block(&tree, alice().address(), funding);
        add_tip(&mut tree, block.clone());
        blocks.push(block);
        let payments = (0..SENDERS)
            .flat_map(|i| {
                let sender = keypair(100 + i);
                (0..TXS_PER_SENDER).map(move |nonce| pay(&sender, &chain_id, &bob(), 1, 0, nonce))
            })
            .collect();
        let now = tree.tip_header().timestamp_ms + 1_000;
        (blocks, payments, now)
    }

    fn resent_mempool() {
        let (blocks, payments, now) = funded_chain();
        let message = NodeMessage::Mempool { txs: payments }.encode();
        let (mut node, liar) = node_with(blocks, now);
        let start = Instant::now();
        node.handle_message(&liar, &message, now);
        let first = start.elapsed().as_secs_f64();
        while node.poll_output().is_some() {}
        assert_eq!(
            node.mempool().len(),
            (SENDERS as u64 * TXS_PER_SENDER) as usize
        );
        let start = Instant::now();
        for _ in 0..RESENDS {
            node.handle_message(&liar, &message, now);
            while node.poll_output().is_some() {}
        }
        let again = start.elapsed().as_secs_f64() / RESENDS as f64;
        println!(
            "mempool message of 1,000 transactions ({} bytes):",
            message.len()
        );
        println!(
            "  first time (every signature checked; what each re-send cost before): {:.2} ms",
            first * 1e3
        );
        println!(
            "  re-sent, already known (recognised by id):                        {:.2} ms",
            again * 1e3
        );
        println!(
            "  ratio re-send / first: {:.3}; CPU-seconds per second a liar can cost at {RELAY_RATE} msgs/s: before {:.2}, now {:.2}",
            again / first,
            first * RELAY_RATE,
            again * RELAY_RATE
        );
        let liar_info = node.peer(&liar).expect("the liar");
        println!(
            "  the liar's score after {RESENDS} re-sends: {} (re-sending known transactions is not an offence)",
            liar_info.misbehavior
        );
    }

    /// An orphan with 1,000 real signed transactions and a random unknown parent, mined at the
    /// easiest target: valid enough to enter the pool.
    fn orphan(txs: &[Transaction], salt: u64, params: &NetworkParams) -> Block {
        let mut block = Block {
            header: BlockHeader {
                version: BLOCK_VERSION,
                height: 1_000,
                prev_hash: Hash::digest(&[b"unknown parent", &salt.to_be_bytes()]),
                tx_root: Hash::ZERO,
                timestamp_ms: params.genesis_timestamp_ms + 1_000,
                target: shared::work::Target::from_u256(params.max_target),
                nonce: 0,
            },
            coinbase: Coinbase {
                height: 1_000,
                to: alice().address(),
                amount: params.subsidy(1_000),
            },
            transactions: txs.to_vec(),
        };
        block.header.tx_root = block.compute_tx_root();
        let mut start = 0;
        block.header.nonce = loop {
            if let MiningOutcome::Found { nonce, .. } = mine(&block.header, start, 10_000) {
                break nonce;
            }
            start += 10_000;
        };
        block
    }

    fn orphan_flood() {
        let params = NetworkParams::test();
        let (blocks, payments, now) = funded_chain();
        let messages: Vec<String> = (0..ORPHANS as u64)
            .map(|salt| {
                NodeMessage::NewBlock {
                    block: orphan(&payments, salt, &params),
                }
                .encode()
            })
            .collect();
        let encoded = orphan(&payments, 0, &params).encoded_len();
        let (mut node, liar) = node_with(blocks, now);
        let before = rss_bytes();
        let start = Instant::now();
        for message in &messages {
            node.handle_message(&liar, message, now);
            while node.poll_output().is_some() {}
        }
        let per_message = start.elapsed().as_secs_f64() / ORPHANS as f64;
        let after = rss_bytes();
        let tree = node.tree();
        println!(
            "orphan flood: {ORPHANS} orphans of 1,000 transactions ({encoded} bytes encoded, {} bytes as JSON):",
            messages[0].len()
        );
        println!(
            "  pool now: {} orphans, {} bytes (bound {} orphans and {MAX_ORPHAN_BYTES} bytes)",
            tree.orphan_count(),
            tree.orphan_bytes(),
            MAX_ORPHANS
        );
        println!(
            "  the old count-only bound let the pool hold {} bytes of these: ratio now/before {:.3}",
            MAX_ORPHANS * encoded,
            tree.orphan_bytes() as f64 / (MAX_ORPHANS * encoded) as f64
        );
        println!(
            "  resident memory grew by {:.1} MiB (the messages themselves were built before)",
            after.saturating_sub(before) as f64 / (1 << 20) as f64
        );
        println!(
            "  CPU per orphan message: {:.2} ms (JSON decoding and the Merkle root; no signature is checked for an orphan)",
            per_message * 1e3
        );
    }

    pub fn main() {
        resent_mempool();
        orphan_flood();
    }
}
