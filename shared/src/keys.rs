//! Keys and addresses. An address is the first 20 bytes of SHA-256 of an ed25519 public key.

use crate::hash::{hex_bytes, Hash};
use ed25519_dalek::{Signer, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};
use std::fmt;

/// Where coins can be sent: 20 bytes, hex on the wire.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, Default)]
pub struct Address(#[serde(with = "hex_bytes")] pub [u8; 20]);

impl Address {
    pub const ZERO: Address = Address([0; 20]);

    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
    /// Parses what a person typed: 40 hex digits of either case, surrounding spaces ignored.
    /// The wire is stricter (exactly 40 lowercase digits, see `hash::hex_bytes`).
    pub fn from_hex(text: &str) -> Result<Address, hex::FromHexError> {
        let mut out = [0u8; 20];
        hex::decode_to_slice(text.trim(), &mut out)?;
        Ok(Address(out))
    }
    pub fn short(&self) -> String {
        hex::encode(&self.0[..4])
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Address({})", self.short())
    }
}

/// An ed25519 public key as 32 bytes. Whether the bytes are a valid curve point is checked
/// when a signature is verified, so a bad key is a validation error, not a decode failure.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct PublicKey(#[serde(with = "hex_bytes")] pub [u8; 32]);

impl PublicKey {
    pub fn address(&self) -> Address {
        let digest = Hash::digest(&[&self.0]);
        let mut out = [0u8; 20];
        out.copy_from_slice(&digest.0[..20]);
        Address(out)
    }
    pub fn verifying_key(&self) -> Option<VerifyingKey> {
        VerifyingKey::from_bytes(&self.0).ok()
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({})", hex::encode(&self.0[..4]))
    }
}

/// A 64-byte ed25519 signature, hex on the wire.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Signature(#[serde(with = "hex_bytes")] pub [u8; 64]);

impl fmt::Debug for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Signature({}..)", hex::encode(&self.0[..4]))
    }
}

/// A signing key made from a 32-byte seed. The seed comes from the caller (getrandom in the
/// browser and the native node, a fixed value in tests), because this crate has no randomness.
#[derive(Clone)]
pub struct Keypair {
    signing: SigningKey,
}

impl Keypair {
    pub fn from_seed(seed: [u8; 32]) -> Keypair {
        Keypair {
            signing: SigningKey::from_bytes(&seed),
        }
    }
    pub fn seed(&self) -> [u8; 32] {
        self.signing.to_bytes()
    }
    pub fn public(&self) -> PublicKey {
        PublicKey(self.signing.verifying_key().to_bytes())
    }
    pub fn address(&self) -> Address {
        self.public().address()
    }
    pub fn sign(&self, message: &[u8]) -> Signature {
        Signature(self.signing.sign(message).to_bytes())
    }
}

impl fmt::Debug for Keypair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Keypair({})", self.address().short())
    }
}
