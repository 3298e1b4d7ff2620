//! Importing a chain file (`crate::export`): its blocks go into the node one by one, the way a
//! peer's blocks do (`BlockTree::add_block` validates each, the tip and mempool follow, the
//! blocks are stored and peers hear our new status), but no peer is blamed for a bad one: the
//! person who chose the file gets a named error instead.

use super::Node;
use crate::chain::{AddOutcome, ChainError};
use crate::export::{ChainFile, ImportError, ImportReport};

impl Node {
    /// Takes in every block of `file` in order and stops at the first one that is not valid.
    /// Blocks taken before it stay (they are valid); nothing the node held before is lost,
    /// since a valid block can only add to the tree, and the best chain is whichever has the
    /// most work, ours or the file's.
    pub fn import_chain(
        &mut self,
        file: ChainFile,
        now_ms: u64,
    ) -> Result<ImportReport, ImportError> {
        self.advance_clock(now_ms);
        let ours = self.tree.params().name;
        if file.network != ours {
            return Err(ImportError::WrongNetwork {
                file: file.network,
                ours: ours.into(),
            });
        }
        if file.genesis_hash != self.tree.genesis_hash() {
            return Err(ImportError::WrongGenesis {
                file: file.genesis_hash,
                ours: self.tree.genesis_hash(),
            });
        }
        let mut report = ImportReport {
            added: 0,
            known: 0,
            became_best: false,
        };
        let mut parent = self.tree.genesis_hash();
        for (index, block) in file.blocks.into_iter().enumerate() {
            let height = index as u64 + 1;
            if block.header.height != height || block.header.prev_hash != parent {
                return Err(ImportError::NotConnected { height });
            }
            let hash = block.hash();
            parent = hash;
            match self.tree.add_block(block, now_ms) {
                Ok(AddOutcome::AlreadyKnown) => report.known += 1,
                Ok(AddOutcome::Orphan { .. }) => {
                    // Its parent is the file's previous block, which the tree took: only a
                    // block the tree already forgot can land here.
                    return Err(ImportError::NotConnected { height });
                }
                Ok(outcome) => {
                    report.added += 1;
                    self.after_add(hash, outcome, None, now_ms);
                }
                Err(error) => {
                    if let ChainError::InvalidAncestor { removed, .. } = &error {
                        for removed in removed {
                            self.push(super::Output::DeleteBlock(*removed));
                        }
                    }
                    let imported = report.added + report.known;
                    return Err(ImportError::InvalidBlock {
                        height,
                        reason: error.to_string(),
                        imported,
                    });
                }
            }
        }
        report.became_best = self.tree.is_active(&parent);
        Ok(report)
    }
}
