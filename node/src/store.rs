//! The block store: an append-only log file that survives `kill -9` and power loss.
//!
//! Every record is `[len u32 BE][crc32 u32 BE][canonical block bytes]` (the bytes of
//! [`Block::encode`], the one encoding hashes are made over). A batch of records is written with
//! one `write` and made durable with one `fsync` before [`BlockLog::append`] returns, so the
//! driver never reports a block as stored before it is on disk.
//!
//! A crash can only tear the last record. Opening the log scans it from the start and stops at
//! the first record that is short, has an impossible length, fails its checksum or does not decode;
//! the file is truncated there and everything before it is returned. Deleting a block (the node
//! found it invalid) rewrites the log without it into a temporary file that is renamed over the
//! old one, so the log is never half rewritten either. Deletions are rare: they happen only when
//! a stored block turns out to break a rule, so a rewrite is cheaper than a second file format.

use shared::block::{Block, COINBASE_LEN, HEADER_LEN};
use shared::Hash;
use std::collections::HashSet;
use std::fs::{File, OpenOptions};
use std::io::{self, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use thiserror::Error;

/// Bytes of a record header: the payload length and its CRC-32.
pub const RECORD_HEADER_LEN: usize = 8;
/// The smallest canonical block: a header, a coinbase and a transaction count of zero.
pub const MIN_BLOCK_BYTES: usize = HEADER_LEN + COINBASE_LEN + 4;
/// A length above this cannot be a block of any network (the largest allows 200 KB), so a
/// record claiming more is garbage: the scan stops instead of allocating it.
pub const MAX_RECORD_BYTES: usize = 4 << 20;
/// Transactions a stored block may claim when decoded; bounds the allocation of a bad count.
const MAX_DECODED_TXS: usize = MAX_RECORD_BYTES / shared::tx::TX_ENCODED_LEN;

#[derive(Debug, Error)]
pub enum StoreError {
    #[error("could not open the store file {path}: {source}")]
    Open { path: PathBuf, source: io::Error },
    #[error("could not read the store file {path}: {source}")]
    Read { path: PathBuf, source: io::Error },
    #[error("{}", describe_write_error(path, source))]
    Write { path: PathBuf, source: io::Error },
    #[error("the store file {path} failed earlier and accepts no more writes")]
    Poisoned { path: PathBuf },
}

impl StoreError {
    /// True when the disk ran out of space (or quota).
    pub fn is_disk_full(&self) -> bool {
        match self {
            StoreError::Write { source, .. } => is_disk_full(source),
            _ => false,
        }
    }
}

fn is_disk_full(error: &io::Error) -> bool {
    // ENOSPC (28) and EDQUOT (122) on Linux; StorageFull covers both on recent std.
    error.kind() == io::ErrorKind::StorageFull || matches!(error.raw_os_error(), Some(28 | 122))
}

fn describe_write_error(path: &Path, source: &io::Error) -> String {
    if is_disk_full(source) {
        format!(
            "the disk is full: could not write the store file {} ({source}); free some space and restart",
            path.display()
        )
    } else {
        format!(
            "could not write the store file {}: {source}",
            path.display()
        )
    }
}

/// What opening the log found.
#[derive(Debug)]
pub struct Recovered {
    /// Every intact block, in the order they were appended.
    pub blocks: Vec<Block>,
    /// Bytes cut off the end because the record there was torn or corrupt (0 after a clean stop).
    pub truncated_bytes: u64,
}

/// An open block log. See the module documentation for the format.
pub struct BlockLog {
    path: PathBuf,
    file: File,
    /// Length of the valid prefix, which is the whole file unless a write failed.
    len: u64,
    stored: HashSet<Hash>,
    poisoned: bool,
}

impl BlockLog {
    /// Opens (or creates) the log at `path`, drops a torn tail and returns the blocks in it.
    pub fn open(path: &Path) -> Result<(BlockLog, Recovered), StoreError> {
        let open_error = |source| StoreError::Open {
            path: path.to_owned(),
            source,
        };
        let read_error = |source| StoreError::Read {
            path: path.to_owned(),
            source,
        };
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(open_error)?;
        }
        let existed = path.exists();
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(path)
            .map_err(open_error)?;
        if !existed {
            sync_parent_dir(path).map_err(open_error)?;
        }
        // The length comes from the metadata, not from reading to the end: a device such as
        // /dev/full reads forever.
        let file_len = file.metadata().map_err(read_error)?.len();
        file.seek(SeekFrom::Start(0)).map_err(read_error)?;
        let (records, valid_len) =
            scan(BufReader::new((&mut file).take(file_len))).map_err(read_error)?;
        let truncated_bytes = file_len - valid_len;
        if truncated_bytes > 0 {
            tracing::warn!(
                path = %path.display(),
                valid_len,
                truncated_bytes,
                "the block store ends in a torn or corrupt record; cutting it off"
            );
            file.set_len(valid_len)
                .map_err(|source| StoreError::Write {
                    path: path.to_owned(),
                    source,
                })?;
            file.sync_all().map_err(|source| StoreError::Write {
                path: path.to_owned(),
                source,
            })?;
        }
        let blocks: Vec<Block> = records.into_iter().map(|(block, _)| block).collect();
        let stored = blocks.iter().map(Block::hash).collect();
        let log = BlockLog {
            path: path.to_owned(),
            file,
            len: valid_len,
            stored,
            poisoned: false,
        };
        Ok((
            log,
            Recovered {
                blocks,
                truncated_bytes,
            },
        ))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
    /// Blocks in the log.
    pub fn len(&self) -> usize {
        self.stored.len()
    }
    pub fn is_empty(&self) -> bool {
        self.stored.is_empty()
    }
    pub fn contains(&self, hash: &Hash) -> bool {
        self.stored.contains(hash)
    }

    /// Appends the blocks not stored yet and makes them durable with one fsync. Returns how many
    /// were written. A failed write leaves the log as it was before the call (the partial tail
    /// is cut off where possible) and refuses later writes: the caller must stop.
    pub fn append(&mut self, blocks: &[Arc<Block>]) -> Result<usize, StoreError> {
        if self.poisoned {
            return Err(StoreError::Poisoned {
                path: self.path.clone(),
            });
        }
        let mut buffer = Vec::new();
        let mut added = Vec::new();
        for block in blocks {
            let hash = block.hash();
            if self.stored.contains(&hash) || added.contains(&hash) {
                continue;
            }
            encode_record(&block.encode(), &mut buffer);
            added.push(hash);
        }
        if added.is_empty() {
            return Ok(0);
        }
        let written = self
            .file
            .write_all(&buffer)
            .and_then(|()| self.file.sync_data());
        if let Err(source) = written {
            self.poisoned = true;
            // Best effort: a torn tail would also be cut at the next open.
            let _ = self.file.set_len(self.len);
            return Err(StoreError::Write {
                path: self.path.clone(),
                source,
            });
        }
        self.len += buffer.len() as u64;
        self.stored.extend(added.iter().copied());
        Ok(added.len())
    }

    /// Removes one block by rewriting the log without it (see the module documentation).
    pub fn delete(&mut self, hash: &Hash) -> Result<bool, StoreError> {
        if !self.stored.contains(hash) {
            return Ok(false);
        }
        if self.poisoned {
            return Err(StoreError::Poisoned {
                path: self.path.clone(),
            });
        }
        let read_error = |source| StoreError::Read {
            path: self.path.clone(),
            source,
        };
        self.file.seek(SeekFrom::Start(0)).map_err(read_error)?;
        let (records, _) =
            scan(BufReader::new((&mut self.file).take(self.len))).map_err(read_error)?;
        let mut buffer = Vec::new();
        for (block, bytes) in &records {
            if block.hash() != *hash {
                encode_record(bytes, &mut buffer);
            }
        }
        let temporary = self.path.with_extension("log.rewrite");
        let write_error = |source| StoreError::Write {
            path: self.path.clone(),
            source,
        };
        let rewrite = || -> io::Result<File> {
            let mut file = File::create(&temporary)?;
            file.write_all(&buffer)?;
            file.sync_all()?;
            std::fs::rename(&temporary, &self.path)?;
            sync_parent_dir(&self.path)?;
            OpenOptions::new().read(true).append(true).open(&self.path)
        };
        self.file = rewrite().map_err(write_error)?;
        self.len = buffer.len() as u64;
        self.stored.remove(hash);
        Ok(true)
    }
}

/// Appends one record for `payload` to `out`.
pub fn encode_record(payload: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    out.extend_from_slice(&crc32fast::hash(payload).to_be_bytes());
    out.extend_from_slice(payload);
}

/// A decoded block with the record payload it came from.
type Record = (Block, Vec<u8>);

/// Reads records until the end or the first bad one. Returns the good records and the length of
/// the prefix they fill.
fn scan(mut reader: impl Read) -> io::Result<(Vec<Record>, u64)> {
    let mut records = Vec::new();
    let mut valid_len = 0u64;
    loop {
        let mut header = [0u8; RECORD_HEADER_LEN];
        if !read_full(&mut reader, &mut header)? {
            break;
        }
        let len = u32::from_be_bytes(header[..4].try_into().expect("4 bytes")) as usize;
        let crc = u32::from_be_bytes(header[4..].try_into().expect("4 bytes"));
        if !(MIN_BLOCK_BYTES..=MAX_RECORD_BYTES).contains(&len) {
            break;
        }
        let mut payload = vec![0u8; len];
        if !read_full(&mut reader, &mut payload)? || crc32fast::hash(&payload) != crc {
            break;
        }
        let Ok(block) = Block::decode(&payload, MAX_DECODED_TXS) else {
            break;
        };
        valid_len += (RECORD_HEADER_LEN + len) as u64;
        records.push((block, payload));
    }
    Ok((records, valid_len))
}

/// Fills `buffer`; false if the input ended first (a torn record or the clean end).
pub(crate) fn read_full(reader: &mut impl Read, buffer: &mut [u8]) -> io::Result<bool> {
    let mut filled = 0;
    while filled < buffer.len() {
        match reader.read(&mut buffer[filled..]) {
            Ok(0) => return Ok(false),
            Ok(read) => filled += read,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(error) => return Err(error),
        }
    }
    Ok(true)
}

/// Makes a new or renamed directory entry durable.
pub fn sync_parent_dir(path: &Path) -> io::Result<()> {
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => File::open(parent)?.sync_all(),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::chain::BlockTree;
    use shared::mining::{mine, MiningOutcome};
    use shared::{Address, NetworkParams};

    /// A chain of `count` test-network blocks after genesis.
    fn chain(count: usize) -> Vec<Arc<Block>> {
        let params = NetworkParams::test();
        let mut tree = BlockTree::new(params.clone());
        let mut now = params.genesis_timestamp_ms;
        let mut blocks = Vec::new();
        for _ in 0..count {
            now += params.target_block_ms;
            let mut block = tree.block_template(Address([7; 20]), Vec::new(), now);
            let MiningOutcome::Found { nonce, .. } = mine(&block.header, 0, u64::MAX) else {
                panic!("the test target is always met");
            };
            block.header.nonce = nonce;
            tree.add_block(block.clone(), now).expect("valid block");
            blocks.push(Arc::new(block));
        }
        blocks
    }

    fn hashes(blocks: &[Block]) -> Vec<Hash> {
        blocks.iter().map(Block::hash).collect()
    }

    #[test]
    fn blocks_survive_a_reopen_and_duplicates_are_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("blocks.log");
        let blocks = chain(5);
        let (mut log, recovered) = BlockLog::open(&path).unwrap();
        assert!(recovered.blocks.is_empty());
        assert_eq!(log.append(&blocks[..3]).unwrap(), 3);
        assert_eq!(log.append(&blocks).unwrap(), 2, "stored blocks are skipped");
        drop(log);
        let (log, recovered) = BlockLog::open(&path).unwrap();
        assert_eq!(log.len(), 5);
        assert_eq!(recovered.truncated_bytes, 0);
        let expected: Vec<Hash> = blocks.iter().map(|block| block.hash()).collect();
        assert_eq!(hashes(&recovered.blocks), expected);
    }

    #[test]
    fn a_torn_or_corrupt_tail_is_cut_off_at_every_byte() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("blocks.log");
        let blocks = chain(3);
        let (mut log, _) = BlockLog::open(&path).unwrap();
        log.append(&blocks).unwrap();
        drop(log);
        let full = std::fs::read(&path).unwrap();
        let record = full.len() / 3;
        // Cut the file anywhere inside the third record: the first two must come back, and the
        // file must be cut back to exactly two records so the next append lands cleanly.
        for cut in (2 * record + 1)..full.len() {
            std::fs::write(&path, &full[..cut]).unwrap();
            let (mut log, recovered) = BlockLog::open(&path).unwrap();
            assert_eq!(recovered.blocks.len(), 2, "cut at {cut}");
            assert_eq!(recovered.truncated_bytes, (cut - 2 * record) as u64);
            assert_eq!(std::fs::metadata(&path).unwrap().len(), 2 * record as u64);
            log.append(&blocks[2..]).unwrap();
            drop(log);
            let (_, recovered) = BlockLog::open(&path).unwrap();
            assert_eq!(recovered.blocks.len(), 3, "cut at {cut}, after re-append");
        }
        // A flipped bit in the middle record loses it and everything after it.
        let mut corrupt = full.clone();
        corrupt[record + RECORD_HEADER_LEN + 10] ^= 0x40;
        std::fs::write(&path, &corrupt).unwrap();
        let (_, recovered) = BlockLog::open(&path).unwrap();
        assert_eq!(hashes(&recovered.blocks), vec![blocks[0].hash()]);
        // Garbage lengths (zero, huge) are refused without allocating.
        for bad_len in [0u32, u32::MAX] {
            let mut garbage = full[..record].to_vec();
            garbage.extend_from_slice(&bad_len.to_be_bytes());
            garbage.extend_from_slice(&[0; 4]);
            std::fs::write(&path, &garbage).unwrap();
            let (_, recovered) = BlockLog::open(&path).unwrap();
            assert_eq!(recovered.blocks.len(), 1);
        }
    }

    #[test]
    fn delete_rewrites_the_log_without_the_block() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("blocks.log");
        let blocks = chain(4);
        let (mut log, _) = BlockLog::open(&path).unwrap();
        log.append(&blocks).unwrap();
        assert!(log.delete(&blocks[1].hash()).unwrap());
        assert!(!log.delete(&blocks[1].hash()).unwrap(), "already gone");
        log.append(&blocks[1..2]).unwrap();
        drop(log);
        let (_, recovered) = BlockLog::open(&path).unwrap();
        let expected = [0, 2, 3, 1].map(|index| blocks[index].hash());
        assert_eq!(hashes(&recovered.blocks), expected);
    }

    #[test]
    fn a_full_disk_is_a_named_error_and_poisons_the_log() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("blocks.log");
        std::os::unix::fs::symlink("/dev/full", &path).unwrap();
        let (mut log, recovered) = BlockLog::open(&path).unwrap();
        assert!(recovered.blocks.is_empty());
        let error = log.append(&chain(1)).unwrap_err();
        assert!(error.is_disk_full(), "{error}");
        assert!(error.to_string().contains("the disk is full"), "{error}");
        assert!(matches!(
            log.append(&chain(1)),
            Err(StoreError::Poisoned { .. })
        ));
    }
}
