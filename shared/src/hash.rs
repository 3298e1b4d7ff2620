//! 32-byte SHA-256 digests, written as lowercase hex on the wire.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest, Sha256};
use std::fmt;

/// A SHA-256 digest: block hashes, transaction ids, Merkle nodes and the chain id.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Hash(pub [u8; 32]);

impl Hash {
    pub const ZERO: Hash = Hash([0; 32]);

    /// SHA-256 of the concatenation of `parts`.
    pub fn digest(parts: &[&[u8]]) -> Hash {
        let mut hasher = Sha256::new();
        for part in parts {
            hasher.update(part);
        }
        Hash(hasher.finalize().into())
    }

    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// 8 hex digits, as the UI and logs show a hash: the first 8 after its leading zeros. A block
    /// hash starts with zeros (its proof of work), the same run for many blocks: the first 8
    /// digits named four different blocks `0000000a` in one run (issue 30). The digits shown are
    /// still a substring of the full hash, found by reading past the zeros.
    pub fn short(&self) -> String {
        let digits = self.to_hex();
        let zeros = digits.bytes().take_while(|&digit| digit == b'0').count();
        let start = zeros.min(digits.len() - 8);
        digits[start..start + 8].to_string()
    }

    /// How many zero bits the hash starts with (a block's proof of work, as people count it).
    pub fn leading_zero_bits(&self) -> u32 {
        let mut bits = 0;
        for byte in self.0 {
            bits += byte.leading_zeros();
            if byte != 0 {
                break;
            }
        }
        bits
    }

    /// Parses 64 hex digits of either case (for people and tests; the wire takes lowercase only).
    pub fn from_hex(text: &str) -> Result<Hash, hex::FromHexError> {
        let mut out = [0u8; 32];
        hex::decode_to_slice(text, &mut out)?;
        Ok(Hash(out))
    }
}

impl fmt::Display for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Hash({})", self.short())
    }
}

impl Serialize for Hash {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_hex())
    }
}

impl<'de> Deserialize<'de> for Hash {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        hex_bytes::deserialize(deserializer).map(Hash)
    }
}

/// Whether `text` is only lowercase hex digits: the one spelling the wire allows, so a message
/// has one JSON form and an independent implementation knows exactly what to accept.
pub(crate) fn is_lowercase_hex(text: &str) -> bool {
    text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Serde helper for fixed-size byte arrays written as hex strings: exactly `2 * N` lowercase
/// hex digits on the wire (uppercase is malformed; [`Hash::from_hex`] and
/// `Address::from_hex` accept either case for what people type).
pub(crate) mod hex_bytes {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer, const N: usize>(
        bytes: &[u8; N],
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&hex::encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>, const N: usize>(
        deserializer: D,
    ) -> Result<[u8; N], D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        if !super::is_lowercase_hex(&text) {
            return Err(serde::de::Error::custom("hex must be lowercase"));
        }
        let mut out = [0u8; N];
        hex::decode_to_slice(text.as_ref(), &mut out).map_err(serde::de::Error::custom)?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::Hash;

    #[test]
    fn short_ids_skip_the_leading_zeros_of_proof_of_work() {
        let mut bytes = [0x11; 32];
        bytes[..3].copy_from_slice(&[0, 0, 0]);
        bytes[3] = 0x0a;
        let hash = Hash(bytes);
        assert_eq!(hash.short(), "a1111111");
        assert!(hash.to_hex().contains(&hash.short()));
        assert_eq!(hash.leading_zero_bits(), 28);
        // A transaction id with no leading zeros shows its first 8 digits; an all-zero hash its
        // last 8.
        assert_eq!(Hash([0xab; 32]).short(), "abababab");
        assert_eq!(Hash::ZERO.short(), "00000000");
        assert_eq!(Hash::ZERO.leading_zero_bits(), 256);
        let mut late = [0u8; 32];
        late[31] = 0x05;
        assert_eq!(Hash(late).short(), "00000005");
    }

    /// 10,000 block hashes with the zeros of real proof of work (24 to 35 leading zero bits):
    /// their short ids collide no more than 8 random hex digits would (about 0.01 pairs expected;
    /// the first 8 digits, as before, shared one id among hundreds of blocks).
    #[test]
    fn short_ids_of_ten_thousand_blocks_do_not_collide() {
        let hashes: Vec<Hash> = (0u32..10_000)
            .map(|i| {
                let mut hash = Hash::digest(&[&i.to_be_bytes()]);
                let zero_bits = 24 + (i % 12) as usize;
                for bit in 0..zero_bits {
                    hash.0[bit / 8] &= !(0x80 >> (bit % 8));
                }
                hash
            })
            .collect();
        let distinct = |f: fn(&Hash) -> String| {
            hashes
                .iter()
                .map(f)
                .collect::<std::collections::HashSet<_>>()
                .len()
        };
        assert!(distinct(Hash::short) >= hashes.len() - 2);
        assert!(distinct(|hash| hex::encode(&hash.0[..4])) < 3_000);
    }
}
