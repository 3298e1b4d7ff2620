//! Importing a chain file (`crate::export`): its blocks go into the node one by one, the way a
//! peer's blocks do (`BlockTree::add_block` validates each, the tip and mempool follow, the
//! blocks are stored and peers hear our new status), but no peer is blamed for a bad one: the
//! person who chose the file gets a named error instead.

use super::Node;
use crate::block::Block;
use crate::chain::{AddOutcome, ChainError};
use crate::export::{ChainFile, ChainFileHeader, ImportError, ImportReport};
use crate::hash::Hash;

/// An import under way: the file's header matched our network; its blocks come in pieces
/// ([`Node::import_blocks`]), so a long chain never has to be in memory at once.
#[derive(Debug)]
pub struct ChainImport {
    parent: Hash,
    next_height: u64,
    report: ImportReport,
}

impl ChainImport {
    /// Blocks taken so far (new and already held).
    pub fn blocks_taken(&self) -> usize {
        self.report.added + self.report.known
    }
}

impl Node {
    /// Checks a file's header against our network and starts an import.
    pub fn begin_import(&self, header: &ChainFileHeader) -> Result<ChainImport, ImportError> {
        let ours = self.tree.params().name;
        if header.network != ours {
            return Err(ImportError::WrongNetwork {
                file: header.network.clone(),
                ours: ours.into(),
            });
        }
        if header.genesis_hash != self.tree.genesis_hash() {
            return Err(ImportError::WrongGenesis {
                file: header.genesis_hash,
                ours: self.tree.genesis_hash(),
            });
        }
        Ok(ChainImport {
            parent: self.tree.genesis_hash(),
            next_height: 1,
            report: ImportReport {
                added: 0,
                known: 0,
                became_best: false,
            },
        })
    }

    /// Takes in the next `blocks` of an import in order and stops at the first one that is not
    /// valid. Blocks taken before it stay (they are valid); nothing the node held before is
    /// lost, since a valid block can only add to the tree, and the best chain is whichever has
    /// the most work, ours or the file's.
    pub fn import_blocks(
        &mut self,
        import: &mut ChainImport,
        blocks: Vec<Block>,
        now_ms: u64,
    ) -> Result<(), ImportError> {
        self.advance_clock(now_ms);
        for block in blocks {
            let height = import.next_height;
            if block.header.height != height || block.header.prev_hash != import.parent {
                return Err(ImportError::NotConnected { height });
            }
            let hash = block.hash();
            import.parent = hash;
            import.next_height += 1;
            match self.tree.add_block(block, now_ms) {
                Ok(AddOutcome::AlreadyKnown) => import.report.known += 1,
                Ok(AddOutcome::Orphan { .. }) => {
                    // Its parent is the file's previous block, which the tree took: only a
                    // block the tree already forgot can land here.
                    return Err(ImportError::NotConnected { height });
                }
                Ok(outcome) => {
                    import.report.added += 1;
                    self.after_add(hash, outcome, None, now_ms);
                }
                Err(error) => {
                    if let ChainError::InvalidAncestor { removed, .. } = &error {
                        for removed in removed {
                            self.push(super::Output::DeleteBlock(*removed));
                        }
                    }
                    return Err(ImportError::InvalidBlock {
                        height,
                        reason: error.to_string(),
                        imported: import.blocks_taken(),
                    });
                }
            }
        }
        Ok(())
    }

    /// The end of an import: what it did.
    pub fn end_import(&self, import: ChainImport) -> ImportReport {
        ImportReport {
            became_best: self.tree.is_active(&import.parent),
            ..import.report
        }
    }

    /// Takes in every block of a version 1 file (see [`Node::import_blocks`]).
    pub fn import_chain(
        &mut self,
        file: ChainFile,
        now_ms: u64,
    ) -> Result<ImportReport, ImportError> {
        self.advance_clock(now_ms);
        let (header, blocks) = file.into_parts();
        let mut import = self.begin_import(&header)?;
        self.import_blocks(&mut import, blocks, now_ms)?;
        Ok(self.end_import(import))
    }
}
