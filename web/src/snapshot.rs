//! Small view structs built from the node after each batch of work, so components render
//! plain data and never touch the node, validate or hash.

use crate::relation::{relation, Relation};
use crate::tree_view::{draw_tree, ReorgRecord, TreeDrawing};
use shared::block::Block;
use shared::node::{Handshake, Node, OwnTxState, SyncState};
use shared::protocol::{PeerId, TipStatus};
use shared::work::Work;
use shared::{Address, Hash};
use std::collections::HashMap;
use std::sync::Arc;

/// Everything the status bar, wallet, peer table and tree drawing show.
#[derive(Clone, Debug, PartialEq)]
pub struct NodeSnapshot {
    pub name: String,
    pub address: Address,
    pub height: u64,
    pub tip_hash: Hash,
    pub total_work_log2: f64,
    pub total_work: Work,
    pub sync: SyncState,
    pub balance: u64,
    /// Every account on our best chain with coins, richest first (ties by address).
    pub accounts: Vec<AccountView>,
    pub mempool_size: usize,
    pub mining: bool,
    pub block_count: usize,
    pub peers: Vec<PeerView>,
    pub own_txs: Vec<TxView>,
    pub tree: TreeDrawing,
}

#[derive(Clone, Debug, PartialEq)]
pub struct PeerView {
    pub id: PeerId,
    /// Its hello name, or the start of its peer id until the hello arrives.
    pub name: String,
    pub address: Option<Address>,
    pub tip: Option<TipStatus>,
    pub total_work_log2: Option<f64>,
    pub relation: Relation,
    pub misbehavior: u32,
    pub banned: bool,
    pub muted: bool,
    pub last_offense: Option<String>,
    /// Set when the handshake failed (another network or protocol version).
    pub refused: Option<String>,
}

/// One account of the ledger at our tip.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccountView {
    pub address: Address,
    pub balance: u64,
    /// Its owner's name when we know it ("… (you)" for ours).
    pub name: Option<String>,
}

/// Accounts shown in the balances table; the rest are summed up in one line.
pub const ACCOUNTS_SHOWN: usize = 50;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TxView {
    pub id: Hash,
    pub to: Address,
    pub to_name: Option<String>,
    pub amount: u64,
    pub fee: u64,
    pub nonce: u64,
    pub state: OwnTxState,
}

impl NodeSnapshot {
    pub fn build(node: &Node, reorgs: &[ReorgRecord]) -> NodeSnapshot {
        let tree = node.tree();
        let names = peer_names(node);
        let peers = node
            .peers()
            .map(|peer| PeerView {
                id: peer.id.clone(),
                name: peer
                    .name
                    .clone()
                    .unwrap_or_else(|| format!("peer {}", peer.id.short())),
                address: peer.address,
                tip: peer.tip,
                total_work_log2: peer.tip.map(|tip| tip.total_work.log2()),
                relation: relation(tree, peer.tip.as_ref()),
                misbehavior: peer.misbehavior,
                banned: peer.banned,
                muted: peer.muted,
                last_offense: peer.last_offense.clone(),
                refused: match &peer.handshake {
                    Handshake::Refused(reason) => Some(reason.clone()),
                    _ => None,
                },
            })
            .collect();
        let mut own_txs: Vec<TxView> = node
            .own_transactions()
            .map(|own| TxView {
                id: own.id,
                to: own.tx.to,
                to_name: names.get(&own.tx.to).cloned(),
                amount: own.tx.amount,
                fee: own.tx.fee,
                nonce: own.tx.nonce,
                state: own.state.clone(),
            })
            .collect();
        own_txs.reverse();
        let peer_tips: Vec<(String, TipStatus)> = node
            .peers()
            .filter_map(|peer| {
                let name = peer.name.clone()?;
                Some((name, peer.tip?))
            })
            .collect();
        NodeSnapshot {
            name: node.name().to_string(),
            address: node.address(),
            height: tree.tip_height(),
            tip_hash: tree.tip_hash(),
            total_work_log2: tree.tip_work().log2(),
            total_work: tree.tip_work(),
            sync: node.sync_state(),
            balance: node.balance(&node.address()),
            accounts: accounts(node, &names),
            mempool_size: node.mempool().len(),
            mining: node.is_mining(),
            block_count: tree.block_count(),
            peers,
            own_txs,
            tree: draw_tree(tree, &peer_tips, reorgs),
        }
    }

    /// The name we know for an address: ours, a peer's, or none.
    pub fn name_of(&self, address: &Address) -> Option<&str> {
        if *address == self.address {
            return Some(&self.name);
        }
        self.peers
            .iter()
            .find(|peer| peer.address.as_ref() == Some(address))
            .map(|peer| peer.name.as_str())
    }
}

/// The accounts of our best chain's ledger with a balance, richest first, ties by address.
pub fn accounts(node: &Node, names: &HashMap<Address, String>) -> Vec<AccountView> {
    let mut accounts: Vec<AccountView> = node
        .tree()
        .ledger()
        .accounts()
        .filter(|(_, account)| account.balance > 0)
        .map(|(address, account)| AccountView {
            address: *address,
            balance: account.balance,
            name: names.get(address).cloned(),
        })
        .collect();
    accounts.sort_by(|a, b| b.balance.cmp(&a.balance).then(a.address.cmp(&b.address)));
    accounts
}

/// Names of everyone we know by address, ourselves included.
pub fn peer_names(node: &Node) -> HashMap<Address, String> {
    let mut names: HashMap<Address, String> = node
        .peers()
        .filter_map(|peer| Some((peer.address?, peer.name.clone()?)))
        .collect();
    names.insert(node.address(), format!("{} (you)", node.name()));
    names
}

/// One row of the chain explorer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChainRow {
    pub height: u64,
    pub hash: Hash,
    pub timestamp_ms: u64,
    pub tx_count: usize,
    pub miner: Address,
    pub miner_name: Option<String>,
}

/// Rows of the best chain, newest first, starting `skip` rows below the tip.
pub fn chain_rows(node: &Node, skip: u64, count: usize) -> Vec<ChainRow> {
    let tree = node.tree();
    let tip = tree.tip_height();
    if skip > tip {
        return Vec::new();
    }
    let top = tip - skip;
    let bottom = top.saturating_sub(count.saturating_sub(1) as u64);
    let names = peer_names(node);
    let mut rows: Vec<ChainRow> = tree
        .active_blocks(bottom, (top - bottom + 1) as usize)
        .iter()
        .map(|block| ChainRow {
            height: block.header.height,
            hash: block.hash(),
            timestamp_ms: block.header.timestamp_ms,
            tx_count: block.transactions.len(),
            miner: block.coinbase.to,
            miner_name: names.get(&block.coinbase.to).cloned(),
        })
        .collect();
    rows.reverse();
    rows
}

/// One consensus rule as the block detail lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RuleCheck {
    pub rule: &'static str,
    pub detail: String,
    pub passed: bool,
}

/// The block detail view.
#[derive(Clone, Debug, PartialEq)]
pub struct BlockDetail {
    pub block: Arc<Block>,
    pub hash: Hash,
    pub on_best_chain: bool,
    pub confirmations: u64,
    pub total_work_log2: f64,
    pub miner_name: Option<String>,
    pub rules: Vec<RuleCheck>,
    pub json: String,
}

/// Builds the detail of a stored block, re-running the rules that need no ledger so people
/// can see the numbers each one compared.
pub fn block_detail(node: &Node, hash: &Hash) -> Option<BlockDetail> {
    let tree = node.tree();
    let block = Arc::clone(tree.block(hash)?);
    let header = &block.header;
    let params = tree.params();
    let on_best_chain = tree.is_active(hash);
    let mut rules = Vec::new();
    if header.height == 0 {
        rules.push(RuleCheck {
            rule: "genesis",
            detail: "the built-in first block of this network; every node has it".into(),
            passed: true,
        });
    } else if let Some(parent) = tree.parent_context(&header.prev_hash) {
        let target_hex = header
            .target
            .to_be_bytes()
            .map(hex::encode)
            .unwrap_or_default();
        let fees = block.total_fees().unwrap_or(0);
        let subsidy = params.subsidy(header.height);
        rules.extend([
            RuleCheck {
                rule: "version",
                detail: format!("version {} is supported", header.version),
                passed: header.version == shared::block::BLOCK_VERSION,
            },
            RuleCheck {
                rule: "links to its parent",
                detail: format!(
                    "previous hash {} is block {}",
                    header.prev_hash.short(),
                    parent.header.height
                ),
                passed: true,
            },
            RuleCheck {
                rule: "height follows",
                detail: format!("{} = {} + 1", header.height, parent.header.height),
                passed: header.height == parent.header.height + 1,
            },
            RuleCheck {
                rule: "difficulty",
                detail: format!(
                    "target {:08x} is what the retarget rule demands",
                    header.target.0
                ),
                passed: header.target == parent.next_target,
            },
            RuleCheck {
                rule: "proof of work",
                detail: format!("hash {} ≤ target {}", hash, target_hex),
                passed: shared::mining::meets_target(header),
            },
            RuleCheck {
                rule: "timestamp",
                detail: format!(
                    "{} is after the median of recent blocks ({})",
                    header.timestamp_ms, parent.median_time_past
                ),
                passed: header.timestamp_ms > parent.median_time_past,
            },
            RuleCheck {
                rule: "size",
                detail: format!(
                    "{} transactions (limit {}), {} bytes (limit {})",
                    block.transactions.len(),
                    params.max_block_txs,
                    block.encoded_len(),
                    params.max_block_bytes
                ),
                passed: block.transactions.len() <= params.max_block_txs
                    && block.encoded_len() <= params.max_block_bytes,
            },
            RuleCheck {
                rule: "transaction root",
                detail: format!(
                    "Merkle root {} commits to the transactions",
                    header.tx_root.short()
                ),
                passed: block.compute_tx_root() == header.tx_root,
            },
            RuleCheck {
                rule: "coinbase",
                detail: format!(
                    "pays {} = subsidy {} + fees {}",
                    block.coinbase.amount, subsidy, fees
                ),
                passed: block.coinbase.amount == subsidy + fees,
            },
            RuleCheck {
                rule: "signatures",
                detail: format!("{} signatures verify", block.transactions.len()),
                passed: shared::validation::verify_signatures(
                    &block.transactions,
                    &tree.chain_id(),
                )
                .is_ok(),
            },
            RuleCheck {
                rule: "nonces and balances",
                detail: if on_best_chain {
                    "every sender had the coins and the right nonce".into()
                } else {
                    "checked when its branch becomes the best chain".into()
                },
                passed: true,
            },
        ]);
    }
    let names = peer_names(node);
    Some(BlockDetail {
        hash: *hash,
        on_best_chain,
        confirmations: if on_best_chain {
            tree.tip_height() - header.height + 1
        } else {
            0
        },
        total_work_log2: tree.total_work(hash).map_or(0.0, |work| work.log2()),
        miner_name: names.get(&block.coinbase.to).cloned(),
        rules,
        json: serde_json::to_string_pretty(block.as_ref()).unwrap_or_default(),
        block,
    })
}

/// Blocks behind the tip that a transaction's block has on top of it, for the wallet.
pub fn describe_tx_state(state: &OwnTxState) -> (&'static str, String) {
    match state {
        OwnTxState::Pending => ("pending", "pending".into()),
        OwnTxState::Confirmed { height, .. } => {
            ("confirmed", format!("confirmed in block {height}"))
        }
        OwnTxState::Dropped { reason } => ("dropped", format!("dropped: {reason}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_chain::TestNode;

    #[test]
    fn chain_rows_are_newest_first_and_windowed() {
        let mut node = TestNode::new("ours", 1);
        node.mine_blocks(20);
        let rows = chain_rows(&node.node, 0, 5);
        let heights: Vec<u64> = rows.iter().map(|row| row.height).collect();
        assert_eq!(heights, vec![20, 19, 18, 17, 16]);
        assert_eq!(chain_rows(&node.node, 18, 5).len(), 3, "down to genesis");
        assert!(chain_rows(&node.node, 21, 5).is_empty());
        assert_eq!(rows[0].miner_name.as_deref(), Some("ours (you)"));
    }

    #[test]
    fn a_block_detail_lists_every_rule_passed() {
        let mut node = TestNode::new("ours", 1);
        let blocks = node.mine_blocks(3);
        let detail = block_detail(&node.node, &blocks[1].hash()).unwrap();
        assert!(detail.on_best_chain);
        assert_eq!(detail.confirmations, 2);
        assert!(detail.rules.len() >= 10);
        assert!(
            detail.rules.iter().all(|rule| rule.passed),
            "{:?}",
            detail.rules
        );
        assert!(detail.json.contains("\"coinbase\""));
    }
}
