//! Block rows for the explorer, and each rule's result for a stored block, in plain words.

use super::*;

// ---- blocks ----

/// One block of the best chain as a row.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct BlockRow {
    pub height: u64,
    pub hash: Hash,
    pub prev_hash: Hash,
    pub timestamp_ms: u64,
    pub tx_count: usize,
    pub miner: Address,
    pub miner_name: Option<String>,
    /// What the coinbase pays: subsidy plus fees.
    pub reward: u64,
}

/// `count` blocks of the best chain, newest first, starting `skip` blocks below the tip.
pub fn active_blocks_newest_first(
    tree: &BlockTree,
    skip: u64,
    count: usize,
) -> Vec<std::sync::Arc<Block>> {
    let tip = tree.tip_height();
    if skip > tip || count == 0 {
        return Vec::new();
    }
    let top = tip - skip;
    let bottom = top.saturating_sub(count as u64 - 1);
    let mut blocks = tree.active_blocks(bottom, (top - bottom + 1) as usize);
    blocks.reverse();
    blocks
}

pub fn block_row(block: &Block, names: &Names) -> BlockRow {
    BlockRow {
        height: block.header.height,
        hash: block.hash(),
        prev_hash: block.header.prev_hash,
        timestamp_ms: block.header.timestamp_ms,
        tx_count: block.transactions.len(),
        miner: block.coinbase.to,
        miner_name: names.name(&block.coinbase.to),
        reward: block.coinbase.amount,
    }
}

/// Rows of the best chain, newest first, starting `skip` rows below the tip.
pub fn chain_rows(node: &Node, names: &Names, skip: u64, count: usize) -> Vec<BlockRow> {
    active_blocks_newest_first(node.tree(), skip, count)
        .iter()
        .map(|block| block_row(block, names))
        .collect()
}

/// One line of a block's rule list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RuleView {
    /// The context rule, or `None` for the genesis line and the ledger rules.
    pub rule: Option<Rule>,
    pub title: &'static str,
    /// The numbers the rule compared.
    pub detail: String,
    pub outcome: RuleOutcome,
}

/// Each rule's result for the stored block `hash` in its place in the tree, at `now_ms`: the
/// context rules as [`check_block_rules`] finds them, then the ledger rules (checked when the
/// block joined the best chain; not yet for a side branch).
pub fn block_rules(tree: &BlockTree, hash: &Hash, now_ms: u64) -> Option<Vec<RuleView>> {
    let block = tree.block(hash)?;
    let header = &block.header;
    if header.height == 0 {
        return Some(vec![RuleView {
            rule: None,
            title: "genesis",
            detail: "the built-in first block of this network; every node has it".into(),
            outcome: RuleOutcome::Passed,
        }]);
    }
    let parent = tree.parent_context(&header.prev_hash)?;
    let params = tree.params();
    let results = check_block_rules(block, &parent, params, &tree.chain_id(), now_ms);
    let fees = block
        .total_fees()
        .map_or("overflowing".into(), |fees| fees.to_string());
    let mut rules: Vec<RuleView> = results
        .into_iter()
        .map(|(rule, outcome)| {
            let (title, detail) = match rule {
                Rule::Version => ("version", format!("version {}", header.version)),
                Rule::PrevHash => (
                    "links to its parent",
                    format!(
                        "previous hash {} is block {}",
                        header.prev_hash.short(),
                        parent.header.height
                    ),
                ),
                Rule::Height => (
                    "height follows",
                    format!("{} = {} + 1", header.height, parent.header.height),
                ),
                Rule::Target => (
                    "difficulty",
                    if header.target == parent.next_target {
                        "the target the difficulty rule sets for this place in the chain".into()
                    } else {
                        format!(
                            "target {:08x}, but the difficulty rule sets {:08x} here",
                            header.target.0, parent.next_target.0
                        )
                    },
                ),
                Rule::ProofOfWork => (
                    "proof of work",
                    format!(
                        "its hash starts with {}; the target asks for {} (on average)",
                        plural(u64::from(hash.leading_zero_bits()), "zero bit", "zero bits"),
                        header.target.work().log2().round() as u64
                    ),
                ),
                Rule::TimestampAfterMedian => (
                    "time after the median",
                    if header.timestamp_ms > parent.median_time_past {
                        format!(
                            "stamped {} after the median time of the last {} blocks",
                            duration_words(header.timestamp_ms - parent.median_time_past),
                            params.median_time_span
                        )
                    } else {
                        format!(
                            "stamped {} before the median time of the last {} blocks",
                            duration_words(parent.median_time_past - header.timestamp_ms),
                            params.median_time_span
                        )
                    },
                ),
                Rule::TimestampNotAhead => (
                    "time not too far ahead",
                    format!(
                        "stamped {} your clock; at most {} ahead is allowed",
                        if header.timestamp_ms > now_ms {
                            format!("{} ahead of", duration_words(header.timestamp_ms - now_ms))
                        } else {
                            format!("{} behind", duration_words(now_ms - header.timestamp_ms))
                        },
                        duration_words(params.max_future_ms)
                    ),
                ),
                Rule::TransactionCount => (
                    "transaction count",
                    format!(
                        "{} (at most {})",
                        plural(
                            block.transactions.len() as u64,
                            "transaction",
                            "transactions"
                        ),
                        params.max_block_txs
                    ),
                ),
                Rule::BlockSize => (
                    "size",
                    format!(
                        "{} (at most {})",
                        plural(block.encoded_len() as u64, "byte", "bytes"),
                        params.max_block_bytes
                    ),
                ),
                Rule::TxRoot => (
                    "transaction root",
                    format!(
                        "the header's Merkle root {} matches the transactions",
                        header.tx_root.short()
                    ),
                ),
                Rule::CoinbaseHeight => (
                    "reward's height",
                    format!("the reward names block {}", block.coinbase.height),
                ),
                Rule::UniqueTransactions => (
                    "no transaction twice",
                    match block.transactions.len() {
                        0 => "no transactions".into(),
                        1 => "one transaction".into(),
                        n => format!("{n} transactions, all different"),
                    },
                ),
                Rule::TransactionAmounts => (
                    "amounts",
                    "every amount above zero, and no amount plus fee too large to count".into(),
                ),
                Rule::CoinbaseAmount => (
                    "reward",
                    format!(
                        "pays {}: the subsidy of {} plus {} of fees",
                        plural(block.coinbase.amount, "coin", "coins"),
                        params.subsidy(header.height),
                        fees
                    ),
                ),
                Rule::Signatures => (
                    "signatures",
                    match block.transactions.len() {
                        0 => "no signatures to check".into(),
                        1 => "the signature verifies".into(),
                        n => format!("all {n} signatures verify"),
                    },
                ),
            };
            RuleView {
                rule: Some(rule),
                title,
                detail,
                outcome,
            }
        })
        .collect();
    let on_best_chain = tree.is_active(hash);
    rules.push(RuleView {
        rule: None,
        title: "nonces and balances",
        detail: if on_best_chain {
            "every sender had the coins and the right nonce".into()
        } else {
            "checked when its branch becomes the best chain".into()
        },
        outcome: if on_best_chain {
            RuleOutcome::Passed
        } else {
            RuleOutcome::NotReached
        },
    });
    Some(rules)
}
