//! A chain saved as a file, so a lesson can start from a prepared chain and a class can carry a
//! semester's chain around: a header line naming the network, then the best chain's blocks
//! from height 1, one block JSON of `docs/protocol.md` a line (version 2). A file is read a
//! piece at a time ([`ChainFileReader`]), so neither the file nor its blocks are ever all in
//! memory at once. Reading checks only the shape; every block is then validated by the node
//! like a block from a peer (`Node::import_blocks`). Version 1 files (one JSON document,
//! [`ChainFile`]) are still read, within their old bounds.

use crate::block::Block;
use crate::chain::BlockTree;
use crate::hash::Hash;
use serde::{Deserialize, Serialize};

/// The `format` field of every chain file: tells a chain file from any other JSON.
pub const CHAIN_FILE_FORMAT: &str = "tabchain-chain";
/// The version written: a header line, then one block a line. A file of a version this node
/// does not read is refused by name.
pub const CHAIN_FILE_VERSION: u32 = 2;
/// The version of one JSON document ([`ChainFile`]), still read within its bounds below.
pub const LEGACY_CHAIN_FILE_VERSION: u32 = 1;
/// The largest version 1 file read: it is one document, held whole with its parsed blocks, so
/// 32 MiB keeps an import well inside a phone's memory.
pub const MAX_LEGACY_CHAIN_FILE_BYTES: usize = 32 * 1024 * 1024;
/// The most blocks of a version 1 file.
pub const MAX_LEGACY_CHAIN_FILE_BLOCKS: usize = 20_000;
/// The most blocks one file may hold: a semester on the main network (a block every 10 s,
/// 8,640 a day) is about 1.1 million. A file is read a piece at a time, so this bounds the
/// work an import takes, not the memory.
pub const MAX_CHAIN_FILE_BLOCKS: usize = 2_000_000;
/// The longest line of a version 2 file: a block no larger than a message can carry.
pub const MAX_CHAIN_FILE_LINE_BYTES: usize = crate::protocol::MAX_FRAME_BYTES;

/// The first line of a version 2 file: which chain follows. The lines after it are its blocks,
/// from height 1 up to `height`, each building on the one before.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChainFileHeader {
    pub format: String,
    pub version: u32,
    /// `NetworkParams::name`, e.g. `tabchain-test`.
    pub network: String,
    /// The network's genesis block: two builds with the same name but other rules differ here.
    pub genesis_hash: Hash,
    /// The last block's height and hash, for people reading the file.
    pub height: u64,
    pub tip_hash: Hash,
}

impl ChainFileHeader {
    /// The header of a file of `tree`'s best chain.
    pub fn of_best_chain(tree: &BlockTree) -> ChainFileHeader {
        ChainFileHeader {
            format: CHAIN_FILE_FORMAT.into(),
            version: CHAIN_FILE_VERSION,
            network: tree.params().name.into(),
            genesis_hash: tree.genesis_hash(),
            height: tree.tip_height(),
            tip_hash: tree.tip_hash(),
        }
    }

    /// The file name a download gets: `tabchain-test-h500-1a2b3c4d.jsonl`.
    pub fn file_name(&self) -> String {
        let extension = if self.version == LEGACY_CHAIN_FILE_VERSION {
            "json"
        } else {
            "jsonl"
        };
        format!(
            "{}-h{}-{}.{extension}",
            self.network,
            self.height,
            self.tip_hash.short()
        )
    }
}

/// Writes `tree`'s best chain as a version 2 chain file, a line at a time into `sink` (each with
/// its newline), `lines_per_piece` lines a call, so a long chain is never one string.
pub fn write_chain_file(tree: &BlockTree, lines_per_piece: usize, mut sink: impl FnMut(String)) {
    let header = ChainFileHeader::of_best_chain(tree);
    let mut piece = serde_json::to_string(&header).expect("a header always serializes");
    piece.push('\n');
    let mut lines = 1;
    let mut height = 1;
    while height <= header.height {
        let blocks = tree.active_blocks(height, 1_000);
        if blocks.is_empty() {
            break;
        }
        for block in blocks {
            piece.push_str(
                &serde_json::to_string(block.as_ref()).expect("a block always serializes"),
            );
            piece.push('\n');
            lines += 1;
            height += 1;
            if lines >= lines_per_piece.max(1) {
                sink(std::mem::take(&mut piece));
                lines = 0;
            }
        }
    }
    if !piece.is_empty() {
        sink(piece);
    }
}

/// Reads a chain file a piece at a time: [`ChainFileReader::feed`] takes the next bytes and
/// returns the blocks of the lines they completed; [`ChainFileReader::finish`] the last line.
/// Holds one unfinished line at most ([`MAX_CHAIN_FILE_LINE_BYTES`]; a version 1 file is one
/// line of up to [`MAX_LEGACY_CHAIN_FILE_BYTES`]).
pub struct ChainFileReader {
    header: Option<ChainFileHeader>,
    partial: Vec<u8>,
    line: u64,
    blocks: usize,
    max_blocks: usize,
    /// A version 1 document was read: nothing may follow it.
    legacy: bool,
}

impl Default for ChainFileReader {
    fn default() -> Self {
        ChainFileReader::with_max_blocks(MAX_CHAIN_FILE_BLOCKS)
    }
}

impl ChainFileReader {
    pub fn new() -> ChainFileReader {
        ChainFileReader::default()
    }

    /// A reader that refuses files of more than `max_blocks` blocks.
    pub fn with_max_blocks(max_blocks: usize) -> ChainFileReader {
        ChainFileReader {
            header: None,
            partial: Vec::new(),
            line: 0,
            blocks: 0,
            max_blocks,
            legacy: false,
        }
    }

    /// The file's header, once its first line is read.
    pub fn header(&self) -> Option<&ChainFileHeader> {
        self.header.as_ref()
    }

    /// Blocks read so far.
    pub fn blocks_read(&self) -> usize {
        self.blocks
    }

    /// Takes the next piece of the file; returns the blocks of the lines it completed, in order.
    pub fn feed(&mut self, mut bytes: &[u8]) -> Result<Vec<Block>, ImportError> {
        let mut out = Vec::new();
        while let Some(end) = bytes.iter().position(|&byte| byte == b'\n') {
            let (head, rest) = bytes.split_at(end);
            bytes = &rest[1..];
            self.check_length(self.partial.len() + head.len())?;
            if self.partial.is_empty() {
                self.take_line(head, &mut out)?;
            } else {
                self.partial.extend_from_slice(head);
                let line = std::mem::take(&mut self.partial);
                self.take_line(&line, &mut out)?;
            }
        }
        self.check_length(self.partial.len() + bytes.len())?;
        self.partial.extend_from_slice(bytes);
        Ok(out)
    }

    /// The end of the file: the blocks of its last line, if it had no newline.
    pub fn finish(&mut self) -> Result<Vec<Block>, ImportError> {
        let mut out = Vec::new();
        let line = std::mem::take(&mut self.partial);
        self.take_line(&line, &mut out)?;
        if self.header.is_none() {
            return Err(ImportError::BadJson("the file is empty".into()));
        }
        Ok(out)
    }

    fn check_length(&self, length: usize) -> Result<(), ImportError> {
        match &self.header {
            None if length > MAX_LEGACY_CHAIN_FILE_BYTES => {
                Err(ImportError::TooLarge { size: length })
            }
            Some(_) if length > MAX_CHAIN_FILE_LINE_BYTES => Err(ImportError::LineTooLong {
                line: self.line + 1,
            }),
            _ => Ok(()),
        }
    }

    fn take_line(&mut self, line: &[u8], out: &mut Vec<Block>) -> Result<(), ImportError> {
        self.line += 1;
        let line = line.trim_ascii();
        if line.is_empty() {
            return Ok(());
        }
        let bad = |line: u64, error: serde_json::Error| {
            ImportError::BadJson(format!("line {line}: {error}"))
        };
        if self.legacy {
            return Err(ImportError::BadJson(format!(
                "line {}: more after a version 1 document",
                self.line
            )));
        }
        if self.header.is_none() {
            // The format and version first, so a file of another kind gets that name rather
            // than whatever field it lacks.
            #[derive(Deserialize)]
            struct Probe {
                format: String,
                version: u32,
            }
            let probe: Probe =
                serde_json::from_slice(line).map_err(|error| bad(self.line, error))?;
            if probe.format != CHAIN_FILE_FORMAT {
                return Err(ImportError::UnknownFormat {
                    found: probe.format,
                    version: probe.version,
                });
            }
            match probe.version {
                CHAIN_FILE_VERSION => {
                    let header: ChainFileHeader =
                        serde_json::from_slice(line).map_err(|error| bad(self.line, error))?;
                    self.header = Some(header);
                }
                LEGACY_CHAIN_FILE_VERSION => {
                    let file: ChainFile =
                        serde_json::from_slice(line).map_err(|error| bad(self.line, error))?;
                    if file.blocks.len() > MAX_LEGACY_CHAIN_FILE_BLOCKS {
                        return Err(ImportError::TooManyBlocks {
                            limit: MAX_LEGACY_CHAIN_FILE_BLOCKS,
                        });
                    }
                    self.legacy = true;
                    let (header, blocks) = file.into_parts();
                    self.blocks = blocks.len();
                    self.header = Some(header);
                    out.extend(blocks);
                }
                version => {
                    return Err(ImportError::UnknownFormat {
                        found: probe.format,
                        version,
                    })
                }
            }
            return Ok(());
        }
        self.blocks += 1;
        if self.blocks > self.max_blocks {
            return Err(ImportError::TooManyBlocks {
                limit: self.max_blocks,
            });
        }
        let block: Block = serde_json::from_slice(line).map_err(|error| bad(self.line, error))?;
        out.push(block);
        Ok(())
    }
}

/// A version 1 file: which chain it is, and its blocks in height order, in one JSON document.
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
    #[error("the file is a version 1 chain file of {size} bytes; the limit for those is {MAX_LEGACY_CHAIN_FILE_BYTES} bytes (32 MiB)")]
    TooLarge { size: usize },
    #[error("line {line} of the file is longer than {MAX_CHAIN_FILE_LINE_BYTES} bytes")]
    LineTooLong { line: u64 },
    #[error("the file is not a tabchain chain file: {0}")]
    BadJson(String),
    #[error("the file says format {found:?}, version {version}; this node reads {CHAIN_FILE_FORMAT:?} versions {LEGACY_CHAIN_FILE_VERSION} and {CHAIN_FILE_VERSION}")]
    UnknownFormat { found: String, version: u32 },
    #[error("the file holds more than {limit} blocks")]
    TooManyBlocks { limit: usize },
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
    /// The best chain of `tree`, from height 1 to its tip, as a version 1 file (for tests and
    /// the prepared lesson chain; downloads are version 2, [`write_chain_file`]).
    pub fn of_best_chain(tree: &BlockTree) -> ChainFile {
        let height = tree.tip_height();
        ChainFile {
            format: CHAIN_FILE_FORMAT.into(),
            version: LEGACY_CHAIN_FILE_VERSION,
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

    /// Its header (as a version 2 file would have it, but for the version) and its blocks.
    pub fn into_parts(self) -> (ChainFileHeader, Vec<Block>) {
        let header = ChainFileHeader {
            format: self.format,
            version: self.version,
            network: self.network,
            genesis_hash: self.genesis_hash,
            height: self.height,
            tip_hash: self.tip_hash,
        };
        (header, self.blocks)
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a chain file always serializes")
    }

    /// Reads a file's text: its size, its JSON, its format and its block count. Whether it is
    /// our network and whether its blocks are valid is the node's call (`Node::import_chain`).
    pub fn parse(text: &str) -> Result<ChainFile, ImportError> {
        if text.len() > MAX_LEGACY_CHAIN_FILE_BYTES {
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
        if header.format != CHAIN_FILE_FORMAT || header.version != LEGACY_CHAIN_FILE_VERSION {
            return Err(ImportError::UnknownFormat {
                found: header.format,
                version: header.version,
            });
        }
        let file: ChainFile =
            serde_json::from_str(text).map_err(|error| ImportError::BadJson(error.to_string()))?;
        if file.blocks.len() > MAX_LEGACY_CHAIN_FILE_BLOCKS {
            return Err(ImportError::TooManyBlocks {
                limit: MAX_LEGACY_CHAIN_FILE_BLOCKS,
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
