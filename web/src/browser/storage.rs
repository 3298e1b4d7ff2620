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
    #[error("data to store does not encode: {0}")]
    Encode(#[from] serde_json::Error),
    /// The page is not a secure context, so the browser offers no storage manager.
    #[error(
        "this page is not a secure context (http:// on a network address), so the browser cannot \
         be asked to keep its data for good"
    )]
    NotSecureContext,
    /// A browser call outside IndexedDB failed (the storage manager); the browser's words.
    #[error("the browser refused: {0}")]
    Browser(String),
}

/// Asks the browser to keep this site's storage under pressure instead of evicting it (the
/// chain of a tab that mined for an hour is worth keeping). Chromium decides without asking
/// the person, from how the site is used; the answer is whether it is granted.
pub async fn request_persistence() -> Result<bool, StorageError> {
    let window = web_sys::window().ok_or_else(|| StorageError::Browser("no window".into()))?;
    // Outside a secure context (http:// on a LAN address, as the class's QR link opens) the
    // storage manager is not there at all: say that, not the TypeError calling it would raise.
    let navigator = window.navigator();
    if js_sys::Reflect::get(&navigator, &"storage".into())
        .map_or(true, |storage| storage.is_undefined())
    {
        return Err(StorageError::NotSecureContext);
    }
    let promise = navigator
        .storage()
        .persist()
        .map_err(|error| StorageError::Browser(format!("{error:?}")))?;
    let granted = wasm_bindgen_futures::JsFuture::from(promise)
        .await
        .map_err(|error| StorageError::Browser(format!("{error:?}")))?;
    Ok(granted.as_bool().unwrap_or(false))
}

/// What a read found: the entries that parse, and how many did not (a damaged or foreign
/// entry must not stop a node from loading the rest, but the person is told).
#[derive(Debug)]
pub struct Loaded<T> {
    pub items: Vec<T>,
    pub unreadable: usize,
}

impl<T: serde::de::DeserializeOwned> Loaded<T> {
    fn parse(values: Vec<JsValue>) -> Loaded<T> {
        let total = values.len();
        let items: Vec<T> = values
            .into_iter()
            .filter_map(|value| value.as_string())
            .filter_map(|json| serde_json::from_str(&json).ok())
            .collect();
        Loaded {
            unreadable: total - items.len(),
            items,
        }
    }
}

/// One change to write; the driver batches them into one transaction.
#[derive(Debug, Clone)]
pub enum Write {
    PutBlock(Hash, String),
    DeleteBlock(Hash),
    PutTransaction(Hash, String),
    DeleteTransaction(Hash),
}

impl Write {
    /// About what the write holds in memory until it is saved: its JSON and its key.
    pub fn size_bytes(&self) -> usize {
        const KEY_BYTES: usize = 128;
        match self {
            Write::PutBlock(_, json) | Write::PutTransaction(_, json) => json.len() + KEY_BYTES,
            Write::DeleteBlock(_) | Write::DeleteTransaction(_) => KEY_BYTES,
        }
    }
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

    pub async fn identities(&self) -> Result<Loaded<StoredIdentity>, StorageError> {
        let tx = self
            .db
            .transaction(&[IDENTITIES], TransactionMode::ReadOnly)?;
        let values = tx.object_store(IDENTITIES)?.get_all(None, None)?.await?;
        let mut loaded = Loaded::<StoredIdentity>::parse(values);
        loaded.items.sort_by_key(|identity| identity.created_ms);
        Ok(loaded)
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
    pub async fn blocks(&self, prefix: &str) -> Result<Loaded<Block>, StorageError> {
        let tx = self.db.transaction(&[BLOCKS], TransactionMode::ReadOnly)?;
        let values = tx
            .object_store(BLOCKS)?
            .get_all(Some(prefix_range(prefix)?.into()), None)?
            .await?;
        Ok(Loaded::parse(values))
    }

    pub async fn transactions(&self, prefix: &str) -> Result<Loaded<Transaction>, StorageError> {
        let tx = self
            .db
            .transaction(&[TRANSACTIONS], TransactionMode::ReadOnly)?;
        let values = tx
            .object_store(TRANSACTIONS)?
            .get_all(Some(prefix_range(prefix)?.into()), None)?
            .await?;
        Ok(Loaded::parse(values))
    }

    /// Writes a batch in one IndexedDB transaction.
    pub async fn write(&self, prefix: &str, writes: &[Write]) -> Result<(), StorageError> {
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
                    blocks.put(&key(json), Some(&key(&format!("{prefix}{hash}"))))?;
                }
                Write::DeleteBlock(hash) => {
                    blocks.delete(key(&format!("{prefix}{hash}")))?;
                }
                Write::PutTransaction(id, json) => {
                    transactions.put(&key(json), Some(&key(&format!("{prefix}{id}"))))?;
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
