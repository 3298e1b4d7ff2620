//! Our own transactions with their confirmations, and the payments that came to us.

use super::*;

// ---- our transactions ----

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OwnTxView {
    pub id: Hash,
    pub to: Address,
    pub to_name: Option<String>,
    pub amount: u64,
    pub fee: u64,
    pub nonce: u64,
    pub state: OwnTxState,
    /// Blocks on top of it, its own included (0 unless confirmed).
    pub confirmations: u64,
    /// The most confirmations it ever had (more than `confirmations` after a reorg).
    pub max_confirmations: u64,
}

impl OwnTxView {
    /// A machine key (`pending` / `confirmed` / `reversed` / `dropped`) and a sentence for people.
    pub fn describe(&self) -> (&'static str, String) {
        match &self.state {
            OwnTxState::Pending if self.max_confirmations > 0 => (
                "pending",
                format!(
                    "pending again: its block left the best chain (it had {})",
                    plural(self.max_confirmations, "confirmation", "confirmations")
                ),
            ),
            OwnTxState::Pending => ("pending", "pending".into()),
            OwnTxState::Reversed { confirmations } => (
                "reversed",
                format!(
                    "reversed at {}: another transaction with its nonce is confirmed instead",
                    plural(*confirmations, "confirmation", "confirmations")
                ),
            ),
            OwnTxState::Confirmed { height, .. } => (
                "confirmed",
                format!(
                    "confirmed in block {height} ({} confirmation{})",
                    self.confirmations,
                    if self.confirmations == 1 { "" } else { "s" }
                ),
            ),
            OwnTxState::Dropped { reason } => ("dropped", format!("dropped: {reason}")),
        }
    }
}

/// Our own transactions, newest first.
pub fn own_transactions(node: &Node, names: &Names) -> Vec<OwnTxView> {
    let mut rows: Vec<OwnTxView> = node
        .own_transactions()
        .map(|own| OwnTxView {
            id: own.id,
            to: own.tx.to,
            to_name: names.name(&own.tx.to),
            amount: own.tx.amount,
            fee: own.tx.fee,
            nonce: own.tx.nonce,
            state: own.state.clone(),
            confirmations: node.confirmations(own),
            max_confirmations: own.max_confirmations,
        })
        .collect();
    rows.reverse();
    rows
}

// ---- payments to us ----

/// Blocks searched back from the tip for payments to us: more than a lesson makes, and cheap
/// to scan on every snapshot (a few microseconds a block).
pub const INCOMING_SCAN_BLOCKS: usize = 1_000;
/// Payments to us shown, newest first.
pub const MAX_INCOMING_SHOWN: usize = 50;

/// Where a payment to us stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IncomingState {
    /// Waiting in our pool: announced, not yet in a block of our best chain.
    Pending,
    Confirmed {
        height: u64,
        confirmations: u64,
    },
    /// Its block left our best chain and the sender's nonce is used there by another
    /// transaction (a double spend): it will never confirm. `confirmations` is the most it had.
    Reversed {
        confirmations: u64,
    },
}

/// A payment someone made to us.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IncomingView {
    pub id: Hash,
    pub from: Address,
    pub from_name: Option<String>,
    pub amount: u64,
    pub state: IncomingState,
    /// The most confirmations it ever had.
    pub max_confirmations: u64,
}

impl IncomingView {
    /// A machine key (`pending` / `confirmed` / `reversed`) and a sentence for people.
    pub fn describe(&self) -> (&'static str, String) {
        match self.state {
            IncomingState::Pending if self.max_confirmations > 0 => (
                "pending",
                format!(
                    "pending again: its block left the best chain (it had {})",
                    plural(self.max_confirmations, "confirmation", "confirmations")
                ),
            ),
            IncomingState::Pending => ("pending", "pending: not in a block yet".into()),
            IncomingState::Reversed { confirmations } => (
                "reversed",
                format!(
                    "reversed at {}: the sender spent it again on a heavier chain",
                    plural(confirmations, "confirmation", "confirmations")
                ),
            ),
            IncomingState::Confirmed {
                height,
                confirmations,
            } => (
                "confirmed",
                format!(
                    "received in block {height} ({})",
                    plural(confirmations, "confirmation", "confirmations")
                ),
            ),
        }
    }
}

/// Payments to our address (coinbases aside), newest first: those waiting in our pool, then
/// those the node remembers that are no longer on our best chain (reversed, or pending again
/// after a reorg), then those in the last [`INCOMING_SCAN_BLOCKS`] blocks of our best chain,
/// at most [`MAX_INCOMING_SHOWN`].
pub fn incoming_payments(node: &Node, names: &Names) -> Vec<IncomingView> {
    let us = node.address();
    let tree = node.tree();
    let tip = tree.tip_height();
    let remembered: std::collections::HashMap<Hash, u64> = node
        .incoming_transactions()
        .map(|known| (known.id, known.max_confirmations))
        .collect();
    let view = |tx: &crate::tx::Transaction, state: IncomingState| IncomingView {
        id: tx.id(),
        from: tx.sender(),
        from_name: names.name(&tx.sender()),
        amount: tx.amount,
        max_confirmations: remembered.get(&tx.id()).copied().unwrap_or(0),
        state,
    };
    let mut rows: Vec<IncomingView> = node
        .mempool()
        .transactions()
        .iter()
        .filter(|tx| tx.to == us && tx.sender() != us)
        .map(|tx| view(tx, IncomingState::Pending))
        .collect();
    // Remembered payments whose block is not on our best chain and that are not in the pool.
    for known in node.incoming_transactions().rev() {
        let on_best_chain = known.block.is_some_and(|(_, block)| tree.is_active(&block));
        if on_best_chain || node.mempool().contains(&known.id) {
            continue;
        }
        let state = if node.nonce_used_on_best_chain(&known.tx) {
            IncomingState::Reversed {
                confirmations: known.max_confirmations,
            }
        } else {
            IncomingState::Pending
        };
        rows.push(view(&known.tx, state));
    }
    let from_height = (tip + 1).saturating_sub(INCOMING_SCAN_BLOCKS as u64);
    let blocks = tree.active_blocks(from_height, INCOMING_SCAN_BLOCKS);
    for block in blocks.iter().rev() {
        if rows.len() >= MAX_INCOMING_SHOWN {
            break;
        }
        let height = block.header.height;
        for tx in block.transactions.iter().rev() {
            if tx.to == us && tx.sender() != us {
                rows.push(view(
                    tx,
                    IncomingState::Confirmed {
                        height,
                        confirmations: tip + 1 - height,
                    },
                ));
            }
        }
    }
    rows.truncate(MAX_INCOMING_SHOWN);
    rows
}
