//! Account state (the ledger) at one block, and how a block changes it and is undone.

use crate::block::Block;
use crate::keys::Address;
use crate::tx::Transaction;
use crate::validation::ValidationError;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    pub balance: u64,
    /// The nonce the account's next transaction must carry.
    pub nonce: u64,
}

/// Balances and nonces of every account that ever received or sent coins.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Ledger {
    accounts: HashMap<Address, Account>,
    /// Coins created by coinbases so far; always equals the sum of all balances.
    issued: u64,
}

/// What `apply_block` changed, so the block can be disconnected in a reorg.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Undo {
    previous: Vec<(Address, Option<Account>)>,
    issued_before: u64,
}

impl Ledger {
    pub fn account(&self, address: &Address) -> Account {
        self.accounts.get(address).copied().unwrap_or_default()
    }
    pub fn balance(&self, address: &Address) -> u64 {
        self.account(address).balance
    }
    pub fn issued(&self) -> u64 {
        self.issued
    }
    pub fn accounts(&self) -> impl Iterator<Item = (&Address, &Account)> {
        self.accounts.iter()
    }

    /// Applies the transactions of `block` in order, then its coinbase. Either every rule holds
    /// and the ledger changes, or an error names the first broken rule and nothing changes.
    pub fn apply_block(&mut self, block: &Block, subsidy: u64) -> Result<Undo, ValidationError> {
        let mut overlay: HashMap<Address, Account> = HashMap::new();
        for (index, tx) in block.transactions.iter().enumerate() {
            self.apply_transaction(&mut overlay, tx, index)?;
        }
        let miner = block.coinbase.to;
        let mut account = overlay
            .get(&miner)
            .copied()
            .unwrap_or_else(|| self.account(&miner));
        account.balance = account
            .balance
            .checked_add(block.coinbase.amount)
            .ok_or(ValidationError::BalanceOverflow)?;
        overlay.insert(miner, account);
        let issued = self
            .issued
            .checked_add(subsidy)
            .ok_or(ValidationError::BalanceOverflow)?;

        let previous = overlay
            .into_iter()
            .map(|(address, account)| (address, self.accounts.insert(address, account)))
            .collect();
        let undo = Undo {
            previous,
            issued_before: self.issued,
        };
        self.issued = issued;
        Ok(undo)
    }

    fn apply_transaction(
        &self,
        overlay: &mut HashMap<Address, Account>,
        tx: &Transaction,
        index: usize,
    ) -> Result<(), ValidationError> {
        let sender = tx.sender();
        let mut from = overlay
            .get(&sender)
            .copied()
            .unwrap_or_else(|| self.account(&sender));
        if tx.nonce != from.nonce {
            return Err(ValidationError::BadNonce {
                index,
                expected: from.nonce,
                found: tx.nonce,
            });
        }
        let needed = tx
            .amount
            .checked_add(tx.fee)
            .ok_or(ValidationError::AmountOverflow { index })?;
        if from.balance < needed {
            return Err(ValidationError::InsufficientBalance {
                index,
                balance: from.balance,
                needed,
            });
        }
        from.balance -= needed;
        from.nonce += 1;
        overlay.insert(sender, from);
        let mut to = overlay
            .get(&tx.to)
            .copied()
            .unwrap_or_else(|| self.account(&tx.to));
        to.balance = to
            .balance
            .checked_add(tx.amount)
            .ok_or(ValidationError::BalanceOverflow)?;
        overlay.insert(tx.to, to);
        Ok(())
    }

    /// Reverts the block whose `apply_block` returned `undo`. Undos must be applied newest first.
    pub fn undo_block(&mut self, undo: &Undo) {
        for (address, previous) in &undo.previous {
            match previous {
                Some(account) => self.accounts.insert(*address, *account),
                None => self.accounts.remove(address),
            };
        }
        self.issued = undo.issued_before;
    }

    /// Sum of all balances, for checking that no coins appear or vanish.
    pub fn total_balances(&self) -> u128 {
        self.accounts.values().map(|a| a.balance as u128).sum()
    }
}
