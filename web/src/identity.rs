//! Who a tab is: a name people read and a keypair, created on first visit and kept in
//! IndexedDB. Each tab remembers which identity it uses in its sessionStorage, so several tabs
//! of one browser are separate nodes; a tab can adopt another saved identity from the list.

use serde::{Deserialize, Serialize};
use shared::protocol::message::MAX_NAME_CHARS;
use shared::{Address, Keypair};

/// An identity as stored in IndexedDB. The seed is the whole secret: anyone who reads the
/// browser's storage can spend this tab's coins, which is fine for a teaching chain.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredIdentity {
    /// 16 hex digits of randomness; also the prefix of the identity's blocks in storage.
    pub id: String,
    pub name: String,
    pub seed_hex: String,
    pub created_ms: u64,
}

impl StoredIdentity {
    /// A fresh identity from 40 random bytes: 8 for the id, 32 for the key seed.
    pub fn from_random(random: [u8; 40], created_ms: u64) -> StoredIdentity {
        let id = hex::encode(&random[..8]);
        let seed: [u8; 32] = random[8..].try_into().expect("32 bytes");
        StoredIdentity {
            name: default_name(&id),
            id,
            seed_hex: hex::encode(seed),
            created_ms,
        }
    }

    pub fn keypair(&self) -> Option<Keypair> {
        let mut seed = [0u8; 32];
        hex::decode_to_slice(&self.seed_hex, &mut seed).ok()?;
        Some(Keypair::from_seed(seed))
    }

    pub fn address(&self) -> Option<Address> {
        self.keypair().map(|keypair| keypair.address())
    }
}

/// A friendly default like `tab-3f2a`, from the identity id.
pub fn default_name(id: &str) -> String {
    format!("tab-{}", &id[..4.min(id.len())])
}

/// Trims a name people typed to what the protocol accepts; `None` if nothing is left.
pub fn clean_name(text: &str) -> Option<String> {
    let name: String = text
        .trim()
        .chars()
        .filter(|c| !c.is_control())
        .take(MAX_NAME_CHARS)
        .collect();
    (!name.is_empty()).then_some(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_identity_has_a_friendly_name_and_a_usable_key() {
        let mut random = [7u8; 40];
        random[0] = 0x3f;
        random[1] = 0x2a;
        let identity = StoredIdentity::from_random(random, 1);
        assert_eq!(identity.name, "tab-3f2a");
        assert_eq!(identity.keypair().unwrap().seed(), [7u8; 32]);
    }

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert_eq!(clean_name("  ada  ").as_deref(), Some("ada"));
        assert_eq!(clean_name("   "), None);
        assert_eq!(clean_name(&"x".repeat(100)).unwrap().len(), MAX_NAME_CHARS);
    }
}
