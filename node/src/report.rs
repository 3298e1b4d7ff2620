//! What the node shows people and scripts: the chain, the balances, the status and the peers,
//! each as a serializable view (for `--json`) and as text. Views are built from the node by
//! pure functions; the text renderers write to any `io::Write`, so the library prints nothing
//! by itself.

use crate::runtime::{Connection, Snapshot};
use serde::Serialize;
use shared::node::Node;
use shared::{Address, Hash};
use std::collections::HashMap;
use std::io::{self, Write};

#[derive(Clone, Debug, Serialize)]
pub struct TxView {
    pub id: Hash,
    pub from: Address,
    pub to: Address,
    pub amount: u64,
    pub fee: u64,
    pub nonce: u64,
}

#[derive(Clone, Debug, Serialize)]
pub struct BlockView {
    pub height: u64,
    pub hash: Hash,
    pub prev_hash: Hash,
    pub timestamp_ms: u64,
    pub target: u32,
    pub nonce: u64,
    pub miner: Address,
    /// Subsidy plus fees paid to the miner.
    pub reward: u64,
    pub transactions: Vec<TxView>,
}

#[derive(Clone, Debug, Serialize)]
pub struct ChainView {
    pub network: &'static str,
    pub height: u64,
    pub tip: Hash,
    /// Newest first.
    pub blocks: Vec<BlockView>,
}

/// The best chain's last `limit` blocks (all of them with `None`), newest first.
pub fn chain_view(node: &Node, limit: Option<usize>) -> ChainView {
    let tree = node.tree();
    let height = tree.tip_height();
    let count = limit.map_or(height + 1, |limit| (limit as u64).min(height + 1));
    let from = height + 1 - count;
    let mut blocks: Vec<BlockView> = tree
        .active_blocks(from, count as usize)
        .iter()
        .map(|block| BlockView {
            height: block.header.height,
            hash: block.hash(),
            prev_hash: block.header.prev_hash,
            timestamp_ms: block.header.timestamp_ms,
            target: block.header.target.0,
            nonce: block.header.nonce,
            miner: block.coinbase.to,
            reward: block.coinbase.amount,
            transactions: block
                .transactions
                .iter()
                .map(|tx| TxView {
                    id: tx.id(),
                    from: tx.sender(),
                    to: tx.to,
                    amount: tx.amount,
                    fee: tx.fee,
                    nonce: tx.nonce,
                })
                .collect(),
        })
        .collect();
    blocks.reverse();
    ChainView {
        network: tree.params().name,
        height,
        tip: tree.tip_hash(),
        blocks,
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct BalanceView {
    pub address: Address,
    /// Our name for it: "you", or the name a peer said hello with.
    pub name: Option<String>,
    pub balance: u64,
    pub nonce: u64,
}

/// Every account with coins or history, richest first.
pub fn balances_view(node: &Node) -> Vec<BalanceView> {
    let names = known_names(node);
    let mut rows: Vec<BalanceView> = node
        .tree()
        .ledger()
        .accounts()
        .filter(|(address, account)| {
            account.balance > 0 || account.nonce > 0 || **address == node.address()
        })
        .map(|(address, account)| BalanceView {
            address: *address,
            name: names.get(address).cloned(),
            balance: account.balance,
            nonce: account.nonce,
        })
        .collect();
    if !rows.iter().any(|row| row.address == node.address()) {
        rows.push(BalanceView {
            address: node.address(),
            name: Some("you".into()),
            balance: 0,
            nonce: 0,
        });
    }
    rows.sort_by(|a, b| b.balance.cmp(&a.balance).then(a.address.cmp(&b.address)));
    rows
}

/// Names we know addresses by: ourselves and every peer that said hello.
pub fn known_names(node: &Node) -> HashMap<Address, String> {
    let mut names: HashMap<Address, String> = node
        .peers()
        .filter_map(|peer| Some((peer.address?, peer.name.clone()?)))
        .collect();
    names.insert(node.address(), "you".into());
    names
}

pub fn write_chain(
    out: &mut dyn Write,
    view: &ChainView,
    names: &HashMap<Address, String>,
) -> io::Result<()> {
    writeln!(
        out,
        "chain {}: height {}, tip {}",
        view.network, view.height, view.tip
    )?;
    for block in &view.blocks {
        let miner = names
            .get(&block.miner)
            .cloned()
            .unwrap_or_else(|| block.miner.short());
        writeln!(
            out,
            "  #{:<6} {}  miner {:<12} reward {:<4} txs {}",
            block.height,
            block.hash.short(),
            miner,
            block.reward,
            block.transactions.len()
        )?;
        for tx in &block.transactions {
            let name = |address: &Address| {
                names
                    .get(address)
                    .cloned()
                    .unwrap_or_else(|| address.short())
            };
            writeln!(
                out,
                "           {} -> {}: {} (fee {})",
                name(&tx.from),
                name(&tx.to),
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

pub fn write_balances(out: &mut dyn Write, rows: &[BalanceView]) -> io::Result<()> {
    writeln!(out, "{:<42} {:<14} {:>12}", "address", "name", "balance")?;
    for row in rows {
        writeln!(
            out,
            "{:<42} {:<14} {:>12}",
            row.address.to_hex(),
            row.name.as_deref().unwrap_or("-"),
            row.balance
        )?;
    }
    Ok(())
}

pub fn write_peers(out: &mut dyn Write, snapshot: &Snapshot) -> io::Result<()> {
    if snapshot.peers.is_empty() {
        return writeln!(out, "no peers");
    }
    writeln!(out, "{} peer(s):", snapshot.peers.len())?;
    for peer in &snapshot.peers {
        let height = peer.height.map_or("-".into(), |height| height.to_string());
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

    #[test]
    fn the_chain_view_lists_newest_first_within_the_limit() {
        let params = NetworkParams::test();
        let mut node = Node::new(NodeConfig {
            params: params.clone(),
            name: "alice".into(),
            keypair: Keypair::from_seed([3; 32]),
        });
        let mut now = params.genesis_timestamp_ms;
        for _ in 0..5 {
            now += params.target_block_ms;
            node.set_mining(true, now);
            let job = std::iter::from_fn(|| node.poll_output())
                .find_map(|output| match output {
                    shared::node::Output::Mine(job) => Some(job),
                    _ => None,
                })
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
        let view = chain_view(&node, Some(3));
        assert_eq!(view.height, 5);
        let heights: Vec<u64> = view.blocks.iter().map(|block| block.height).collect();
        assert_eq!(heights, [5, 4, 3]);
        assert_eq!(chain_view(&node, None).blocks.len(), 6, "genesis included");
        assert_eq!(chain_view(&node, Some(100)).blocks.len(), 6);
        let balances = balances_view(&node);
        assert_eq!(balances[0].name.as_deref(), Some("you"));
        assert_eq!(balances[0].balance, 5 * params.initial_subsidy);
        let mut text = Vec::new();
        write_chain(&mut text, &view, &known_names(&node)).unwrap();
        let text = String::from_utf8(text).unwrap();
        assert!(text.contains("miner you"), "{text}");
        assert!(text.contains("3 earlier blocks not shown"), "{text}");
    }

    #[test]
    fn rates_are_readable() {
        assert_eq!(format_rate(9_100_000.0), "9.10 MH/s");
        assert_eq!(format_rate(1_500.0), "1.5 kH/s");
        assert_eq!(format_rate(12.0), "12 H/s");
    }
}
