//! The native node's address book: the names the person pinned to addresses
//! ([`shared::view::AddressBook`]), kept as JSON in `<data-dir>/address_book.json`. A save
//! writes a temporary file and renames it over the old one, so a crash leaves the old book or
//! the new one, never half of one.

use shared::view::AddressBook;
use std::io;
use std::path::{Path, PathBuf};
use thiserror::Error;

pub const FILE_NAME: &str = "address_book.json";

#[derive(Debug, Error)]
pub enum BookError {
    #[error("could not read {}: {source}", .path.display())]
    Read { path: PathBuf, source: io::Error },
    #[error("{} is not an address book: {source}", .path.display())]
    Parse {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("could not write {}: {source}", .path.display())]
    Write { path: PathBuf, source: io::Error },
}

pub fn path(data_dir: &Path) -> PathBuf {
    data_dir.join(FILE_NAME)
}

/// The book in `data_dir`; empty when there is none yet.
pub fn load(data_dir: &Path) -> Result<AddressBook, BookError> {
    let path = path(data_dir);
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            AddressBook::from_json(&text).map_err(|source| BookError::Parse { path, source })
        }
        Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(AddressBook::default()),
        Err(source) => Err(BookError::Read { path, source }),
    }
}

pub fn save(data_dir: &Path, book: &AddressBook) -> Result<(), BookError> {
    let path = path(data_dir);
    let write = || -> io::Result<()> {
        std::fs::create_dir_all(data_dir)?;
        let temporary = data_dir.join(format!("{FILE_NAME}.tmp"));
        std::fs::write(&temporary, book.to_json())?;
        std::fs::File::open(&temporary)?.sync_all()?;
        std::fs::rename(&temporary, &path)
    };
    write().map_err(|source| BookError::Write {
        path: path.clone(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::Address;

    #[test]
    fn a_saved_book_loads_again_and_a_missing_one_is_empty() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(load(dir.path()).unwrap(), AddressBook::default());
        let mut book = AddressBook::default();
        book.pin("bob", Address([0xbb; 20])).unwrap();
        save(dir.path(), &book).unwrap();
        assert_eq!(load(dir.path()).unwrap(), book);
        std::fs::write(path(dir.path()), "not json").unwrap();
        assert!(matches!(load(dir.path()), Err(BookError::Parse { .. })));
    }
}
