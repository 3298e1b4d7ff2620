//! The node's signing key: a 32-byte seed kept as 64 hex digits in `key.seed`, readable by its
//! owner only (0600). The seed comes from the operating system's randomness (`getrandom`),
//! because `shared` takes keys as arguments and has no randomness of its own.

use shared::Keypair;
use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use thiserror::Error;

/// The seed file's name inside the data directory.
pub const SEED_FILE: &str = "key.seed";

#[derive(Debug, Error)]
pub enum KeyError {
    #[error("could not create the data directory {path}: {source}")]
    CreateDir { path: PathBuf, source: io::Error },
    #[error("could not read the key file {path}: {source}")]
    Read { path: PathBuf, source: io::Error },
    #[error("could not write the key file {path}: {source}")]
    Write { path: PathBuf, source: io::Error },
    #[error("the key file {path} is damaged: expected 64 hex digits")]
    Malformed { path: PathBuf },
    #[error("the operating system gave no randomness for a new key: {0}")]
    Randomness(String),
}

/// Loads the key in `dir`, or makes and saves a new one. Returns it and whether it is new.
pub fn load_or_create(dir: &Path) -> Result<(Keypair, bool), KeyError> {
    create_private_dir(dir)?;
    let path = dir.join(SEED_FILE);
    match fs::read_to_string(&path) {
        Ok(text) => {
            warn_if_readable_by_others(&path);
            let seed =
                parse_seed(&text).ok_or_else(|| KeyError::Malformed { path: path.clone() })?;
            Ok((Keypair::from_seed(seed), false))
        }
        Err(error) if error.kind() == io::ErrorKind::NotFound => {
            let mut seed = [0u8; 32];
            getrandom::fill(&mut seed).map_err(|error| KeyError::Randomness(error.to_string()))?;
            write_seed(&path, &seed)?;
            Ok((Keypair::from_seed(seed), true))
        }
        Err(source) => Err(KeyError::Read { path, source }),
    }
}

fn parse_seed(text: &str) -> Option<[u8; 32]> {
    let mut seed = [0u8; 32];
    hex::decode_to_slice(text.trim(), &mut seed).ok()?;
    Some(seed)
}

/// Writes the seed with mode 0600 from the first byte on (never world-readable, even briefly)
/// and makes it durable before the node signs anything with it.
fn write_seed(path: &Path, seed: &[u8; 32]) -> Result<(), KeyError> {
    let write_error = |source| KeyError::Write {
        path: path.to_owned(),
        source,
    };
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(write_error)?;
    writeln!(file, "{}", hex::encode(seed)).map_err(write_error)?;
    file.sync_all().map_err(write_error)?;
    crate::store::sync_parent_dir(path).map_err(write_error)
}

fn create_private_dir(dir: &Path) -> Result<(), KeyError> {
    let create_error = |source| KeyError::CreateDir {
        path: dir.to_owned(),
        source,
    };
    if dir.is_dir() {
        return Ok(());
    }
    fs::create_dir_all(dir).map_err(create_error)?;
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).map_err(create_error)
}

fn warn_if_readable_by_others(path: &Path) {
    if let Ok(metadata) = fs::metadata(path) {
        let mode = metadata.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            tracing::warn!(
                path = %path.display(),
                mode = format!("{mode:o}"),
                "the key file is readable by other users; run chmod 600 on it"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_key_is_private_and_comes_back_the_same() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("alice");
        let (first, created) = load_or_create(&data).unwrap();
        assert!(created);
        let mode = fs::metadata(data.join(SEED_FILE))
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600);
        let (again, created) = load_or_create(&data).unwrap();
        assert!(!created);
        assert_eq!(first.address(), again.address());
        let (other, _) = load_or_create(&dir.path().join("bob")).unwrap();
        assert_ne!(
            first.address(),
            other.address(),
            "each node gets its own key"
        );
    }

    #[test]
    fn a_damaged_key_file_is_an_error_not_a_new_key() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(SEED_FILE), "not hex\n").unwrap();
        let error = load_or_create(dir.path()).unwrap_err();
        assert!(matches!(error, KeyError::Malformed { .. }), "{error}");
    }
}
