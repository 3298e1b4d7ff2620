//! A chain saved as a file, so a lesson can start from a prepared chain: a small header naming
//! the network, then the best chain's blocks from height 1 in the block JSON of
//! `docs/protocol.md`. Reading a file checks only its shape and its network; every block is
//! then validated by the node like a block from a peer (`Node::import_chain`).

use crate::block::Block;
use crate::chain::BlockTree;
use crate::hash::Hash;
use serde::{Deserialize, Serialize};

/// The `format` field of every chain file: tells a chain file from any other JSON.
pub const CHAIN_FILE_FORMAT: &str = "tabchain-chain";
/// The version of the layout below; a file of another version is refused by name.
pub const CHAIN_FILE_VERSION: u32 = 1;
/// The largest file read. A classroom chain of 20,000 empty blocks is about 8 MB of JSON; a
/// browser tab holds the text, its parsed blocks and the chain at once, so 32 MiB keeps an
/// import well inside a phone's memory.
pub const MAX_CHAIN_FILE_BYTES: usize = 32 * 1024 * 1024;
/// The most blocks one file may hold: each becomes a store output and an event in one call into
/// the node, and the node's output queue holds 100,000 (`MAX_QUEUED_OUTPUTS`).
pub const MAX_CHAIN_FILE_BLOCKS: usize = 20_000;

/// The file: which chain it is, and its blocks in height order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChainFile {
    pub format: String,
    pub version: u32,
    /// `NetworkParams::name`, e.g. `tabchain-test`.
    pub network: String,
    /// The network's genesis block: two builds with the same name but other rules differ here.
    pub genesis_hash: Hash,
    /// The last block's height and hash, for people reading the file.
    pub height: u64,
    pub tip_hash: Hash,
    /// From height 1 up to `height`, each building on the one before.
    pub blocks: Vec<Block>,
}

/// Why a file was not imported. Nothing the node held before is lost in any case.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ImportError {
    #[error("the file is {size} bytes; the limit is {MAX_CHAIN_FILE_BYTES} bytes (32 MiB)")]
    TooLarge { size: usize },
    #[error("the file is not a tabchain chain file: {0}")]
    BadJson(String),
    #[error("the file says format {found:?}, version {version}; this node reads {CHAIN_FILE_FORMAT:?} version {CHAIN_FILE_VERSION}")]
    UnknownFormat { found: String, version: u32 },
    #[error("the file holds {count} blocks; the limit is {MAX_CHAIN_FILE_BLOCKS}")]
    TooManyBlocks { count: usize },
    #[error("the file is a chain of network {file:?}, this tab runs {ours:?} (open the page with ?net=… to match)")]
    WrongNetwork { file: String, ours: String },
    #[error("the file's genesis block {file} is not this network's ({ours}): it was made by other rules")]
    WrongGenesis { file: Hash, ours: Hash },
    #[error("the block at height {height} does not build on the block before it in the file")]
    NotConnected { height: u64 },
    #[error("the block at height {height} is invalid: {reason} ({imported} blocks before it were taken)")]
    InvalidBlock {
        height: u64,
        reason: String,
        imported: usize,
    },
}

/// What an import did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImportReport {
    /// Blocks the node did not hold before.
    pub added: usize,
    /// Blocks it already had.
    pub known: usize,
    /// Whether the file's chain became our best chain (it has the most work).
    pub became_best: bool,
}

impl ChainFile {
    /// The best chain of `tree`, from height 1 to its tip.
    pub fn of_best_chain(tree: &BlockTree) -> ChainFile {
        let height = tree.tip_height();
        ChainFile {
            format: CHAIN_FILE_FORMAT.into(),
            version: CHAIN_FILE_VERSION,
            network: tree.params().name.into(),
            genesis_hash: tree.genesis_hash(),
            height,
            tip_hash: tree.tip_hash(),
            blocks: tree
                .active_blocks(1, height as usize)
                .iter()
                .map(|block| block.as_ref().clone())
                .collect(),
        }
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a chain file always serializes")
    }

    /// Reads a file's text: its size, its JSON, its format and its block count. Whether it is
    /// our network and whether its blocks are valid is the node's call (`Node::import_chain`).
    pub fn parse(text: &str) -> Result<ChainFile, ImportError> {
        if text.len() > MAX_CHAIN_FILE_BYTES {
            return Err(ImportError::TooLarge { size: text.len() });
        }
        // The header first, so a file of another format or version gets that name rather
        // than whatever field its blocks lack.
        #[derive(Deserialize)]
        struct Header {
            format: String,
            version: u32,
        }
        let header: Header =
            serde_json::from_str(text).map_err(|error| ImportError::BadJson(error.to_string()))?;
        if header.format != CHAIN_FILE_FORMAT || header.version != CHAIN_FILE_VERSION {
            return Err(ImportError::UnknownFormat {
                found: header.format,
                version: header.version,
            });
        }
        let file: ChainFile =
            serde_json::from_str(text).map_err(|error| ImportError::BadJson(error.to_string()))?;
        if file.blocks.len() > MAX_CHAIN_FILE_BLOCKS {
            return Err(ImportError::TooManyBlocks {
                count: file.blocks.len(),
            });
        }
        Ok(file)
    }

    /// The file name a download gets: `tabchain-test-h500-1a2b3c4d.json`.
    pub fn file_name(&self) -> String {
        format!(
            "{}-h{}-{}.json",
            self.network,
            self.height,
            self.tip_hash.short()
        )
    }
}
