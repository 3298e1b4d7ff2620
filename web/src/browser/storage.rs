//! IndexedDB: identities, and per identity and network the accepted blocks and our pending
//! transactions. Values are JSON strings; keys of blocks and transactions start with the
//! identity's prefix (`{identity id}/{network}/`) so one key range reads or clears a node.

use crate::identity::StoredIdentity;
use idb::{Database, DatabaseEvent, Factory, KeyRange, ObjectStoreParams, TransactionMode};
use shared::block::Block;
use shared::{Hash, Transaction};
use std::rc::Rc;
use wasm_bindgen::JsValue;

const DB_NAME: &str = "tabchain";
const DB_VERSION: u32 = 1;
const IDENTITIES: &str = "identities";
const BLOCKS: &str = "blocks";
const TRANSACTIONS: &str = "transactions";

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("IndexedDB: {0}")]
    Idb(#[from] idb::Error),
    #[error("stored data does not parse: {0}")]
    Corrupt(#[from] serde_json::Error),
}

/// One change to write; the driver batches them into one transaction.
#[derive(Debug, Clone)]
pub enum Write {
    PutBlock(Hash, String),
    DeleteBlock(Hash),
    PutTransaction(Hash, String),
    DeleteTransaction(Hash),
}

#[derive(Clone)]
pub struct Storage {
    db: Rc<Database>,
}

fn key(text: &str) -> JsValue {
    JsValue::from_str(text)
}

/// All keys that start with `prefix`: `'/'` sorts just before `'0'`, and `\u{ffff}` after
/// every character we use.
fn prefix_range(prefix: &str) -> Result<KeyRange, idb::Error> {
    KeyRange::bound(
        &key(prefix),
        &key(&format!("{prefix}\u{ffff}")),
        Some(false),
        Some(false),
    )
}

fn strings(values: Vec<JsValue>) -> impl Iterator<Item = String> {
    values.into_iter().filter_map(|value| value.as_string())
}

impl Storage {
    pub async fn open() -> Result<Storage, StorageError> {
        let factory = Factory::new()?;
        let mut request = factory.open(DB_NAME, Some(DB_VERSION))?;
        request.on_upgrade_needed(|event| {
            let Ok(db) = event.database() else { return };
            for name in [IDENTITIES, BLOCKS, TRANSACTIONS] {
                if !db.store_names().iter().any(|existing| existing == name) {
                    let _ = db.create_object_store(name, ObjectStoreParams::new());
                }
            }
        });
        let db = request.await?;
        Ok(Storage { db: Rc::new(db) })
    }

    pub async fn identities(&self) -> Result<Vec<StoredIdentity>, StorageError> {
        let tx = self
            .db
            .transaction(&[IDENTITIES], TransactionMode::ReadOnly)?;
        let values = tx.object_store(IDENTITIES)?.get_all(None, None)?.await?;
        let mut list: Vec<StoredIdentity> = strings(values)
            .filter_map(|json| serde_json::from_str(&json).ok())
            .collect();
        list.sort_by_key(|identity| identity.created_ms);
        Ok(list)
    }

    pub async fn put_identity(&self, identity: &StoredIdentity) -> Result<(), StorageError> {
        let tx = self
            .db
            .transaction(&[IDENTITIES], TransactionMode::ReadWrite)?;
        let json = serde_json::to_string(identity)?;
        tx.object_store(IDENTITIES)?
            .put(&key(&json), Some(&key(&identity.id)))?
            .await?;
        tx.commit()?.await?;
        Ok(())
    }

    /// Every stored block of one node, in no particular order.
    pub async fn blocks(&self, prefix: &str) -> Result<Vec<Block>, StorageError> {
        let tx = self.db.transaction(&[BLOCKS], TransactionMode::ReadOnly)?;
        let values = tx
            .object_store(BLOCKS)?
            .get_all(Some(prefix_range(prefix)?.into()), None)?
            .await?;
        Ok(strings(values)
            .filter_map(|json| serde_json::from_str(&json).ok())
            .collect())
    }

    pub async fn transactions(&self, prefix: &str) -> Result<Vec<Transaction>, StorageError> {
        let tx = self
            .db
            .transaction(&[TRANSACTIONS], TransactionMode::ReadOnly)?;
        let values = tx
            .object_store(TRANSACTIONS)?
            .get_all(Some(prefix_range(prefix)?.into()), None)?
            .await?;
        Ok(strings(values)
            .filter_map(|json| serde_json::from_str(&json).ok())
            .collect())
    }

    /// Writes a batch in one IndexedDB transaction.
    pub async fn write(&self, prefix: &str, writes: Vec<Write>) -> Result<(), StorageError> {
        if writes.is_empty() {
            return Ok(());
        }
        let tx = self
            .db
            .transaction(&[BLOCKS, TRANSACTIONS], TransactionMode::ReadWrite)?;
        let blocks = tx.object_store(BLOCKS)?;
        let transactions = tx.object_store(TRANSACTIONS)?;
        // The requests are queued on the transaction at once and complete in order; waiting
        // for the commit waits for all of them, without a round trip per write.
        for write in writes {
            match write {
                Write::PutBlock(hash, json) => {
                    blocks.put(&key(&json), Some(&key(&format!("{prefix}{hash}"))))?;
                }
                Write::DeleteBlock(hash) => {
                    blocks.delete(key(&format!("{prefix}{hash}")))?;
                }
                Write::PutTransaction(id, json) => {
                    transactions.put(&key(&json), Some(&key(&format!("{prefix}{id}"))))?;
                }
                Write::DeleteTransaction(id) => {
                    transactions.delete(key(&format!("{prefix}{id}")))?;
                }
            }
        }
        tx.commit()?.await?;
        Ok(())
    }

    /// Forgets one node's chain and pending transactions (the identity stays).
    pub async fn clear_node(&self, prefix: &str) -> Result<(), StorageError> {
        let tx = self
            .db
            .transaction(&[BLOCKS, TRANSACTIONS], TransactionMode::ReadWrite)?;
        tx.object_store(BLOCKS)?.delete(prefix_range(prefix)?)?;
        tx.object_store(TRANSACTIONS)?
            .delete(prefix_range(prefix)?)?;
        tx.commit()?.await?;
        Ok(())
    }
}
