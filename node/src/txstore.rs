//! Our own pending transactions on disk, so the next start (or the next `node send`) knows
//! which nonces are taken and announces them again until they confirm.
//!
//! The file holds every stored transaction as a record `[len u32 BE][crc32 u32 BE][canonical
//! transaction bytes]`, the same framing as the block log. The set is small (the node tracks at
//! most [`MAX_STORED_TXS`]), so every change rewrites the whole file into a temporary file that
//! is fsynced and renamed over the old one: after a crash the file is either the old set or the
//! new one, never half of each. Opening reads records until the first short, corrupt or
//! undecodable one, as the block log does.

use crate::store::{read_full, sync_parent_dir, StoreError, RECORD_HEADER_LEN};
use shared::encode::Reader;
use shared::tx::{Transaction, TX_ENCODED_LEN};
use shared::Hash;
use std::fs::File;
use std::io::{self, BufReader, Write};
use std::path::{Path, PathBuf};

/// Transactions read from the file at most: the node tracks no more of its own than this, so a
/// longer file was not written by us and the rest is ignored.
pub const MAX_STORED_TXS: usize = shared::node::MAX_TRACKED_OWN_TXS;

/// The stored set, in the order the node asked for it, and whether the file is behind it.
pub struct TxStore {
    path: PathBuf,
    txs: Vec<(Hash, Transaction)>,
    dirty: bool,
    poisoned: bool,
}

impl TxStore {
    /// Opens the file at `path` (none yet is an empty set) and returns the transactions in it.
    pub fn open(path: &Path) -> Result<(TxStore, Vec<Transaction>), StoreError> {
        let open_error = |source| StoreError::Open {
            path: path.to_owned(),
            source,
        };
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(open_error)?;
        }
        let txs = match File::open(path) {
            Ok(file) => read_records(BufReader::new(file)).map_err(|source| StoreError::Read {
                path: path.to_owned(),
                source,
            })?,
            Err(error) if error.kind() == io::ErrorKind::NotFound => Vec::new(),
            Err(error) => return Err(open_error(error)),
        };
        let store = TxStore {
            path: path.to_owned(),
            txs: txs.iter().map(|tx| (tx.id(), tx.clone())).collect(),
            dirty: false,
            poisoned: false,
        };
        Ok((store, txs))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
    pub fn len(&self) -> usize {
        self.txs.len()
    }
    pub fn is_empty(&self) -> bool {
        self.txs.is_empty()
    }

    /// Adds `tx` to the set (on disk at the next [`TxStore::flush`]).
    pub fn put(&mut self, tx: Transaction) {
        let id = tx.id();
        if !self.txs.iter().any(|(stored, _)| *stored == id) {
            self.txs.push((id, tx));
            self.dirty = true;
        }
    }

    /// Removes a transaction from the set (on disk at the next [`TxStore::flush`]).
    pub fn remove(&mut self, id: &Hash) {
        let before = self.txs.len();
        self.txs.retain(|(stored, _)| stored != id);
        self.dirty |= self.txs.len() != before;
    }

    /// Makes the set durable if it changed: write a temporary file, fsync, rename, fsync the
    /// directory. A failure refuses later writes: the caller must stop.
    pub fn flush(&mut self) -> Result<(), StoreError> {
        if !self.dirty {
            return Ok(());
        }
        if self.poisoned {
            return Err(StoreError::Poisoned {
                path: self.path.clone(),
            });
        }
        let mut buffer = Vec::with_capacity(self.txs.len() * (RECORD_HEADER_LEN + TX_ENCODED_LEN));
        for (_, tx) in &self.txs {
            crate::store::encode_record(&tx.encode(), &mut buffer);
        }
        let temporary = self.path.with_extension("log.rewrite");
        let rewrite = || -> io::Result<()> {
            let mut file = File::create(&temporary)?;
            file.write_all(&buffer)?;
            file.sync_all()?;
            std::fs::rename(&temporary, &self.path)?;
            sync_parent_dir(&self.path)
        };
        if let Err(source) = rewrite() {
            self.poisoned = true;
            return Err(StoreError::Write {
                path: self.path.clone(),
                source,
            });
        }
        self.dirty = false;
        Ok(())
    }
}

/// Reads records until the end, the first bad one, or [`MAX_STORED_TXS`].
fn read_records(mut reader: impl io::Read) -> io::Result<Vec<Transaction>> {
    let mut txs = Vec::new();
    while txs.len() < MAX_STORED_TXS {
        let mut header = [0u8; RECORD_HEADER_LEN];
        if !read_full(&mut reader, &mut header)? {
            break;
        }
        let len = u32::from_be_bytes(header[..4].try_into().expect("4 bytes")) as usize;
        let crc = u32::from_be_bytes(header[4..].try_into().expect("4 bytes"));
        if len != TX_ENCODED_LEN {
            break;
        }
        let mut payload = [0u8; TX_ENCODED_LEN];
        if !read_full(&mut reader, &mut payload)? || crc32fast::hash(&payload) != crc {
            break;
        }
        let mut bytes = Reader::new(&payload);
        let Ok(tx) = Transaction::decode_from(&mut bytes) else {
            break;
        };
        if bytes.finish().is_err() {
            break;
        }
        txs.push(tx);
    }
    Ok(txs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::{Address, Keypair};

    fn txs(count: u64) -> Vec<Transaction> {
        let keypair = Keypair::from_seed([4; 32]);
        (0..count)
            .map(|nonce| {
                Transaction::new_signed(&keypair, &Hash([1; 32]), Address([2; 20]), 5, 1, nonce)
            })
            .collect()
    }

    #[test]
    fn the_set_survives_a_reopen_and_deletes_stick() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("own-txs.log");
        let all = txs(3);
        let (mut store, loaded) = TxStore::open(&path).unwrap();
        assert!(loaded.is_empty());
        for tx in &all {
            store.put(tx.clone());
        }
        store.put(all[0].clone());
        store.flush().unwrap();
        store.remove(&all[1].id());
        store.flush().unwrap();
        drop(store);
        let (store, loaded) = TxStore::open(&path).unwrap();
        assert_eq!(loaded, vec![all[0].clone(), all[2].clone()]);
        assert_eq!(store.len(), 2);
    }

    #[test]
    fn a_torn_or_corrupt_file_keeps_the_records_before_the_damage() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("own-txs.log");
        let all = txs(3);
        let (mut store, _) = TxStore::open(&path).unwrap();
        for tx in &all {
            store.put(tx.clone());
        }
        store.flush().unwrap();
        let full = std::fs::read(&path).unwrap();
        let record = full.len() / 3;
        for cut in (2 * record)..full.len() {
            std::fs::write(&path, &full[..cut]).unwrap();
            let (_, loaded) = TxStore::open(&path).unwrap();
            assert_eq!(loaded, all[..2].to_vec(), "cut at {cut}");
        }
        let mut corrupt = full.clone();
        corrupt[record + RECORD_HEADER_LEN + 3] ^= 1;
        std::fs::write(&path, &corrupt).unwrap();
        let (_, loaded) = TxStore::open(&path).unwrap();
        assert_eq!(loaded, all[..1].to_vec());
    }

    #[test]
    fn a_failed_write_is_a_named_error_and_poisons_the_store() {
        let dir = tempfile::tempdir().unwrap();
        // A directory where the temporary file should go makes the rewrite fail.
        let path = dir.path().join("own-txs.log");
        std::fs::create_dir(path.with_extension("log.rewrite")).unwrap();
        let (mut store, _) = TxStore::open(&path).unwrap();
        store.put(txs(1).remove(0));
        assert!(matches!(store.flush(), Err(StoreError::Write { .. })));
        assert!(matches!(store.flush(), Err(StoreError::Poisoned { .. })));
    }
}
