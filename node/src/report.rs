//! What the node shows people and scripts: the chain, the balances, the status and the peers,
//! each as a serializable view (for `--json`) and as text. Views are built from the node by
//! pure functions; the text renderers write to any `io::Write`, so the library prints nothing
//! by itself.

use crate::runtime::{Connection, Snapshot};
use serde::Serialize;
use shared::block::Block;
use shared::node::Node;
use shared::view::{self, AccountView, AddressBook, BlockRow, Names};
use shared::{Address, Hash};
use std::io::{self, Write};

/// What the chain export derives from each transaction: its id and its sender's address.
#[derive(Clone, Debug, Serialize)]
pub struct DerivedTx {
    pub id: Hash,
    pub from_address: Address,
}

/// One block of `chain --json`: the block exactly in the spec's JSON (`docs/protocol.md`, the
/// serde form it has on the wire) under `block`, so another implementation can decode and
/// re-verify it, and beside it what is derived from it.
#[derive(Clone, Debug, Serialize)]
pub struct ExportedBlock {
    pub hash: Hash,
    pub height: u64,
    pub miner_name: Option<String>,
    /// The fees of its transactions (the coinbase pays subsidy plus fees).
    pub fees: Option<u64>,
    pub transactions: Vec<DerivedTx>,
    pub block: Block,
}

#[derive(Clone, Debug, Serialize)]
pub struct ChainView {
    pub network: &'static str,
    pub height: u64,
    pub tip: Hash,
    /// Newest first.
    pub blocks: Vec<ExportedBlock>,
}

/// The best chain's last `limit` blocks (all of them with `None`), newest first.
pub fn chain_view(node: &Node, names: &Names, limit: Option<usize>) -> ChainView {
    let tree = node.tree();
    let height = tree.tip_height();
    let count = limit.map_or(height + 1, |limit| (limit as u64).min(height + 1));
    let blocks = view::active_blocks_newest_first(tree, 0, count as usize)
        .iter()
        .map(|block| ExportedBlock {
            hash: block.hash(),
            height: block.header.height,
            miner_name: names.name(&block.coinbase.to),
            fees: block.total_fees(),
            transactions: block
                .transactions
                .iter()
                .map(|tx| DerivedTx {
                    id: tx.id(),
                    from_address: tx.sender(),
                })
                .collect(),
            block: Block::clone(block),
        })
        .collect();
    ChainView {
        network: tree.params().name,
        height,
        tip: tree.tip_hash(),
        blocks,
    }
}

/// Every account with coins or history, richest first, and ours (last, when it has neither).
pub fn balances_view(node: &Node, names: &Names) -> Vec<AccountView> {
    let mut rows = view::accounts(node, names);
    let ours = node.address();
    if !rows.iter().any(|row| row.address == ours) {
        rows.push(AccountView {
            address: ours,
            name: names.name(&ours),
            balance: 0,
            nonce: 0,
        });
    }
    rows
}

/// The names we know: ours, the pinned ones, the peers'.
pub fn names(node: &Node, book: &AddressBook) -> Names {
    Names::new(node, book)
}

pub fn write_chain(out: &mut dyn Write, view: &ChainView, names: &Names) -> io::Result<()> {
    writeln!(
        out,
        "chain {}: height {}, tip {}",
        view.network, view.height, view.tip
    )?;
    for exported in &view.blocks {
        let row: BlockRow = view::block_row(&exported.block, names);
        writeln!(
            out,
            "  #{:<6} {}  miner {:<24} reward {:<4} txs {}",
            row.height,
            row.hash.short(),
            names.label(&row.miner),
            row.reward,
            row.tx_count
        )?;
        for (tx, derived) in exported
            .block
            .transactions
            .iter()
            .zip(&exported.transactions)
        {
            writeln!(
                out,
                "           {} -> {}: {} (fee {})",
                names.label(&derived.from_address),
                names.label(&tx.to),
                tx.amount,
                tx.fee
            )?;
        }
    }
    let shown = view.blocks.len() as u64;
    if shown < view.height + 1 {
        writeln!(
            out,
            "  ({} earlier blocks not shown; --all lists them)",
            view.height + 1 - shown
        )?;
    }
    Ok(())
}

pub fn write_balances(out: &mut dyn Write, rows: &[AccountView]) -> io::Result<()> {
    writeln!(out, "{:<42} {:<20} {:>12}", "address", "name", "balance")?;
    for row in rows {
        writeln!(
            out,
            "{:<42} {:<20} {:>12}",
            row.address.to_hex(),
            row.name.as_deref().unwrap_or("-"),
            row.balance
        )?;
    }
    Ok(())
}

/// The address book, one pin a line.
pub fn write_pins(out: &mut dyn Write, book: &AddressBook) -> io::Result<()> {
    if book.pins().is_empty() {
        return writeln!(
            out,
            "no pinned names (pin one with `node pin NAME ADDRESS`)"
        );
    }
    for pin in book.pins() {
        writeln!(out, "{:<20} {}", pin.name, pin.address.to_hex())?;
    }
    Ok(())
}

pub fn write_peers(out: &mut dyn Write, snapshot: &Snapshot) -> io::Result<()> {
    if snapshot.peers.is_empty() {
        return writeln!(out, "no peers");
    }
    writeln!(out, "{} peer(s):", snapshot.peers.len())?;
    for peer in &snapshot.peers {
        let height = peer.tip.map_or("-".into(), |tip| tip.height.to_string());
        let address = peer.address.map_or("-".into(), |address| address.to_hex());
        write!(
            out,
            "  {:<14} {:<8} height {:<7} address {} (peer {})",
            peer.name.as_deref().unwrap_or("?"),
            peer.state,
            height,
            address,
            peer.id.short()
        )?;
        if let Some(refusal) = &peer.refusal {
            write!(out, ": {refusal}")?;
        }
        writeln!(out)?;
    }
    Ok(())
}

pub fn write_status(out: &mut dyn Write, snapshot: &Snapshot) -> io::Result<()> {
    writeln!(
        out,
        "node {} on {}, address {}",
        snapshot.name, snapshot.network, snapshot.address
    )?;
    match &snapshot.connection {
        Connection::Offline => writeln!(out, "connection: offline")?,
        Connection::Connected { url, room, peer_id } => writeln!(
            out,
            "connection: room {room} at {url} as peer {}",
            peer_id.short()
        )?,
        Connection::Lost { url, reason } => writeln!(out, "connection: lost ({url}): {reason}")?,
    }
    writeln!(
        out,
        "chain: height {}, tip {}, stored blocks {}",
        snapshot.height, snapshot.tip, snapshot.stored_blocks
    )?;
    match snapshot.sync_target_height {
        Some(target) => writeln!(out, "sync: syncing towards height {target}")?,
        None => writeln!(out, "sync: synced")?,
    }
    writeln!(
        out,
        "balance: {} (mempool {} transactions)",
        snapshot.balance, snapshot.mempool
    )?;
    if snapshot.mining {
        writeln!(
            out,
            "mining: on, {} threads, {}, {} blocks mined",
            snapshot.miner_threads,
            format_rate(snapshot.hash_rate),
            snapshot.blocks_mined
        )?;
    } else {
        writeln!(
            out,
            "mining: off ({} threads available, {} blocks mined)",
            snapshot.miner_threads, snapshot.blocks_mined
        )?;
    }
    write_peers(out, snapshot)
}

pub use shared::mining::format_rate;

#[cfg(test)]
mod tests {
    use super::*;
    use shared::node::NodeConfig;
    use shared::{Keypair, NetworkParams};

    /// Alice's node after mining `blocks` blocks, with a payment to bob in the third.
    fn mined_node(blocks: usize) -> (Node, u64) {
        let params = NetworkParams::test();
        let mut node = Node::new(NodeConfig {
            params: params.clone(),
            name: "alice".into(),
            keypair: Keypair::from_seed([3; 32]),
            max_direct_links: 0,
        });
        let mut now = params.genesis_timestamp_ms;
        for height in 1..=blocks {
            now += params.target_block_ms;
            if height == 3 {
                let bob = Keypair::from_seed([4; 32]).address();
                node.send_transaction(bob, 7, 2, now)
                    .expect("alice has coins");
            }
            node.set_mining(true, now);
            // The newest job: a payment made while mining replaces the job before it.
            let job = std::iter::from_fn(|| node.poll_output())
                .filter_map(|output| match output {
                    shared::node::Output::Mine(job) => Some(job),
                    _ => None,
                })
                .last()
                .expect("mining gives a job");
            let mut block = job.block;
            let shared::mining::MiningOutcome::Found { nonce, .. } =
                shared::mining::mine(&block.header, 0, u64::MAX)
            else {
                panic!("test target");
            };
            block.header.nonce = nonce;
            node.handle_mined_block(job.job_id, block, now);
            while node.poll_output().is_some() {}
        }
        (node, now)
    }

    #[test]
    fn the_chain_view_lists_newest_first_within_the_limit() {
        let (node, _) = mined_node(5);
        let names = names(&node, &AddressBook::default());
        let view = chain_view(&node, &names, Some(3));
        assert_eq!(view.height, 5);
        let heights: Vec<u64> = view.blocks.iter().map(|block| block.height).collect();
        assert_eq!(heights, [5, 4, 3]);
        assert_eq!(
            chain_view(&node, &names, None).blocks.len(),
            6,
            "genesis included"
        );
        assert_eq!(chain_view(&node, &names, Some(100)).blocks.len(), 6);
        let balances = balances_view(&node, &names);
        assert_eq!(balances[0].name.as_deref(), Some("alice (you)"));
        assert_eq!(
            balances[0].balance,
            5 * node.tree().params().initial_subsidy - 7
        );
        let mut text = Vec::new();
        write_chain(&mut text, &view, &names).unwrap();
        let text = String::from_utf8(text).unwrap();
        let ours = node.address().short();
        assert!(
            text.contains(&format!("miner alice (you) ({ours})")),
            "{text}"
        );
        assert!(text.contains("3 earlier blocks not shown"), "{text}");
    }

    /// `chain --json` is the spec's block JSON: an independent tool can decode every block and
    /// check it again. Here a fresh block tree plays that tool.
    #[test]
    fn the_chain_export_decodes_and_validates_again() {
        let (node, now) = mined_node(5);
        let names = names(&node, &AddressBook::default());
        let json = serde_json::to_string(&chain_view(&node, &names, None)).unwrap();
        let export: serde_json::Value = serde_json::from_str(&json).unwrap();
        let mut entries = export["blocks"].as_array().unwrap().clone();
        entries.reverse();
        assert_eq!(entries.len(), 6);
        let params = node.tree().params().clone();
        let mut tree = shared::BlockTree::new(params);
        assert_eq!(entries[0]["hash"], tree.genesis_hash().to_hex());
        let mut paid = 0;
        for entry in &entries[1..] {
            let header = &entry["block"]["header"];
            for field in [
                "version",
                "height",
                "prev_hash",
                "tx_root",
                "timestamp_ms",
                "target",
                "nonce",
            ] {
                assert!(!header[field].is_null(), "header.{field} in {entry}");
            }
            for tx in entry["block"]["transactions"].as_array().unwrap() {
                assert_eq!(tx["from"].as_str().unwrap().len(), 64, "a public key");
                assert_eq!(tx["signature"].as_str().unwrap().len(), 128);
                paid += 1;
            }
            let block: Block = serde_json::from_value(entry["block"].clone()).unwrap();
            assert_eq!(block.hash().to_hex(), entry["hash"]);
            tree.add_block(block, now)
                .expect("each exported block validates");
        }
        assert_eq!(paid, 1);
        assert_eq!(tree.tip_hash(), node.tree().tip_hash());
        assert_eq!(tree.ledger(), node.tree().ledger());
    }

    #[test]
    fn rates_are_readable() {
        assert_eq!(format_rate(9_100_000.0), "9.10 MH/s");
        assert_eq!(format_rate(1_500.0), "1.5 kH/s");
        assert_eq!(format_rate(12.0), "12 H/s");
    }
}
