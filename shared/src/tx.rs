//! Signed transfers between accounts, and their canonical bytes.

use crate::encode::{DecodeError, Reader, Writer};
use crate::hash::Hash;
use crate::keys::{Address, Keypair, PublicKey, Signature};
use serde::{Deserialize, Serialize};

/// Domain separator of the signed bytes, so a signature over a transaction can never be
/// mistaken for a signature over anything else.
pub const TX_SIGNING_DOMAIN: &[u8; 14] = b"tabchain/tx/v1";
/// Canonical size of a transaction: from 32, to 20, amount 8, fee 8, nonce 8, signature 64.
pub const TX_ENCODED_LEN: usize = 140;

/// A transfer of `amount` coins from the account of `from` to `to`, paying `fee` to the miner.
/// `nonce` is the sender's count of earlier transactions: it orders them and stops replays.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Transaction {
    pub from: PublicKey,
    pub to: Address,
    pub amount: u64,
    pub fee: u64,
    pub nonce: u64,
    pub signature: Signature,
}

impl Transaction {
    /// Builds and signs a transaction for the network with `chain_id`.
    pub fn new_signed(
        keypair: &Keypair,
        chain_id: &Hash,
        to: Address,
        amount: u64,
        fee: u64,
        nonce: u64,
    ) -> Transaction {
        let from = keypair.public();
        let message = signing_bytes(chain_id, &from, &to, amount, fee, nonce);
        Transaction {
            from,
            to,
            amount,
            fee,
            nonce,
            signature: keypair.sign(&message),
        }
    }

    /// The bytes the signature covers: the domain, the chain id, then every field but the signature.
    pub fn signing_bytes(&self, chain_id: &Hash) -> [u8; 122] {
        signing_bytes(
            chain_id,
            &self.from,
            &self.to,
            self.amount,
            self.fee,
            self.nonce,
        )
    }

    pub fn sender(&self) -> Address {
        self.from.address()
    }

    pub fn encode_into(&self, writer: &mut Writer) {
        writer
            .raw(&self.from.0)
            .raw(&self.to.0)
            .u64(self.amount)
            .u64(self.fee)
            .u64(self.nonce)
            .raw(&self.signature.0);
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut writer = Writer::with_capacity(TX_ENCODED_LEN);
        self.encode_into(&mut writer);
        writer.bytes
    }

    pub fn decode_from(reader: &mut Reader<'_>) -> Result<Transaction, DecodeError> {
        Ok(Transaction {
            from: PublicKey(reader.take()?),
            to: Address(reader.take()?),
            amount: reader.u64()?,
            fee: reader.u64()?,
            nonce: reader.u64()?,
            signature: Signature(reader.take()?),
        })
    }

    /// The transaction id: SHA-256 of 0x01 followed by the canonical bytes (signature included).
    pub fn id(&self) -> Hash {
        let mut writer = Writer::with_capacity(1 + TX_ENCODED_LEN);
        writer.raw(&[0x01]);
        self.encode_into(&mut writer);
        Hash::digest(&[&writer.bytes])
    }

    /// Checks the signature with RFC 8032 strict verification (small-order keys and R rejected).
    /// Blocks and the mempool both use this, so a signature is valid or not on its own.
    pub fn verify_signature(&self, chain_id: &Hash) -> bool {
        let Some(key) = self.from.verifying_key() else {
            return false;
        };
        let signature = ed25519_dalek::Signature::from_bytes(&self.signature.0);
        key.verify_strict(&self.signing_bytes(chain_id), &signature)
            .is_ok()
    }
}

fn signing_bytes(
    chain_id: &Hash,
    from: &PublicKey,
    to: &Address,
    amount: u64,
    fee: u64,
    nonce: u64,
) -> [u8; 122] {
    let mut out = [0u8; 122];
    out[..14].copy_from_slice(TX_SIGNING_DOMAIN);
    out[14..46].copy_from_slice(&chain_id.0);
    out[46..78].copy_from_slice(&from.0);
    out[78..98].copy_from_slice(&to.0);
    out[98..106].copy_from_slice(&amount.to_be_bytes());
    out[106..114].copy_from_slice(&fee.to_be_bytes());
    out[114..122].copy_from_slice(&nonce.to_be_bytes());
    out
}
