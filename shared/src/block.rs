//! Blocks: the header, the coinbase, the transactions, their canonical bytes, the Merkle
//! commitment and the one genesis block every node of a network shares.

use crate::encode::{DecodeError, Reader, Writer};
use crate::hash::Hash;
use crate::keys::Address;
use crate::params::NetworkParams;
use crate::tx::{Transaction, TX_ENCODED_LEN};
use crate::work::Target;
use serde::{Deserialize, Serialize};

pub const BLOCK_VERSION: u32 = 3;
/// Canonical header size: version 4, height 8, previous hash 32, tx root 32, timestamp 8,
/// target 4, nonce 8. 96 bytes hash in two SHA-256 blocks, and the first 64 bytes do not
/// contain the nonce, so miners hash one block per nonce (see `mining`).
pub const HEADER_LEN: usize = 96;
/// Canonical coinbase size: height 8, recipient 20, amount 8.
pub const COINBASE_LEN: usize = 36;
/// Byte offset of the nonce inside the canonical header.
pub const NONCE_OFFSET: usize = 88;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BlockHeader {
    pub version: u32,
    pub height: u64,
    pub prev_hash: Hash,
    /// Merkle root over the coinbase and the transactions.
    pub tx_root: Hash,
    pub timestamp_ms: u64,
    pub target: Target,
    pub nonce: u64,
}

impl BlockHeader {
    /// The canonical header bytes. This is the one place a header is encoded.
    pub fn encode(&self) -> [u8; HEADER_LEN] {
        let mut out = [0u8; HEADER_LEN];
        out[0..4].copy_from_slice(&self.version.to_be_bytes());
        out[4..12].copy_from_slice(&self.height.to_be_bytes());
        out[12..44].copy_from_slice(&self.prev_hash.0);
        out[44..76].copy_from_slice(&self.tx_root.0);
        out[76..84].copy_from_slice(&self.timestamp_ms.to_be_bytes());
        out[84..88].copy_from_slice(&self.target.0.to_be_bytes());
        out[NONCE_OFFSET..HEADER_LEN].copy_from_slice(&self.nonce.to_be_bytes());
        out
    }

    pub fn decode_from(reader: &mut Reader<'_>) -> Result<BlockHeader, DecodeError> {
        Ok(BlockHeader {
            version: reader.u32()?,
            height: reader.u64()?,
            prev_hash: Hash(reader.take()?),
            tx_root: Hash(reader.take()?),
            timestamp_ms: reader.u64()?,
            target: Target(reader.u32()?),
            nonce: reader.u64()?,
        })
    }

    /// The block hash: SHA-256 over the 96 canonical header bytes.
    pub fn hash(&self) -> Hash {
        Hash::digest(&[&self.encode()])
    }
}

/// The one payment of new coins (subsidy plus fees) to the miner of a block.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Coinbase {
    /// Repeats the block height, so no two coinbases have the same id.
    pub height: u64,
    pub to: Address,
    pub amount: u64,
}

impl Coinbase {
    pub fn encode_into(&self, writer: &mut Writer) {
        writer.u64(self.height).raw(&self.to.0).u64(self.amount);
    }
    pub fn decode_from(reader: &mut Reader<'_>) -> Result<Coinbase, DecodeError> {
        Ok(Coinbase {
            height: reader.u64()?,
            to: Address(reader.take()?),
            amount: reader.u64()?,
        })
    }
    /// SHA-256 of 0x00 followed by the canonical coinbase bytes (transactions use 0x01).
    pub fn id(&self) -> Hash {
        let mut writer = Writer::with_capacity(1 + COINBASE_LEN);
        writer.raw(&[0x00]);
        self.encode_into(&mut writer);
        Hash::digest(&[&writer.bytes])
    }
}

/// A block. The coinbase is its own field, so "exactly one coinbase" holds by construction.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Block {
    pub header: BlockHeader,
    pub coinbase: Coinbase,
    pub transactions: Vec<Transaction>,
}

impl Block {
    pub fn hash(&self) -> Hash {
        self.header.hash()
    }

    /// Size of the canonical encoding, without building it.
    pub fn encoded_len(&self) -> usize {
        HEADER_LEN + COINBASE_LEN + 4 + self.transactions.len() * TX_ENCODED_LEN
    }

    /// Canonical block bytes: header, coinbase, transaction count (u32), transactions.
    pub fn encode(&self) -> Vec<u8> {
        let mut writer = Writer::with_capacity(self.encoded_len());
        writer.raw(&self.header.encode());
        self.coinbase.encode_into(&mut writer);
        writer.u32(self.transactions.len() as u32);
        for tx in &self.transactions {
            tx.encode_into(&mut writer);
        }
        writer.bytes
    }

    /// Decodes canonical bytes; `max_txs` bounds the allocation a hostile count could cause.
    pub fn decode(bytes: &[u8], max_txs: usize) -> Result<Block, DecodeError> {
        let mut reader = Reader::new(bytes);
        let header = BlockHeader::decode_from(&mut reader)?;
        let coinbase = Coinbase::decode_from(&mut reader)?;
        let count = reader.u32()? as u64;
        if count > max_txs as u64 {
            return Err(DecodeError::CountTooLarge {
                count,
                limit: max_txs as u64,
            });
        }
        let mut transactions = Vec::with_capacity(count as usize);
        for _ in 0..count {
            transactions.push(Transaction::decode_from(&mut reader)?);
        }
        reader.finish()?;
        Ok(Block {
            header,
            coinbase,
            transactions,
        })
    }

    /// The Merkle root this block's header must carry.
    pub fn compute_tx_root(&self) -> Hash {
        let mut leaves = Vec::with_capacity(1 + self.transactions.len());
        leaves.push(self.coinbase.id());
        leaves.extend(self.transactions.iter().map(Transaction::id));
        merkle_root(leaves)
    }

    pub fn total_fees(&self) -> Option<u64> {
        self.transactions
            .iter()
            .try_fold(0u64, |sum, tx| sum.checked_add(tx.fee))
    }
}

/// Merkle root of `leaves`: pairs are hashed as SHA-256(0x02 || left || right); an odd node at
/// the end of a level moves up unchanged (never duplicated, so no two lists share a root).
pub fn merkle_root(mut level: Vec<Hash>) -> Hash {
    if level.is_empty() {
        return Hash::ZERO;
    }
    while level.len() > 1 {
        let next: Vec<Hash> = level
            .chunks(2)
            .map(|pair| match pair {
                [left, right] => Hash::digest(&[&[0x02], &left.0, &right.0]),
                [single] => *single,
                _ => unreachable!("chunks(2) yields one or two"),
            })
            .collect();
        level = next;
    }
    level[0]
}

/// The genesis block of a network: height 0, no parent, a coinbase of zero coins to the zero
/// address. It is the same on every node, so nodes of one network can agree.
pub fn genesis_block(params: &NetworkParams) -> Block {
    let coinbase = Coinbase {
        height: 0,
        to: network_tag(params),
        amount: 0,
    };
    let mut block = Block {
        header: BlockHeader {
            version: BLOCK_VERSION,
            height: 0,
            prev_hash: Hash::ZERO,
            tx_root: Hash::ZERO,
            timestamp_ms: params.genesis_timestamp_ms,
            target: params.initial_target,
            nonce: 0,
        },
        coinbase,
        transactions: Vec::new(),
    };
    block.header.tx_root = block.compute_tx_root();
    block
}

/// The genesis coinbase pays nothing to an address derived from the network's name, which makes
/// each network's genesis, and so its chain id, distinct.
fn network_tag(params: &NetworkParams) -> Address {
    let digest = Hash::digest(&[b"tabchain/genesis/", params.name.as_bytes()]);
    let mut out = [0u8; 20];
    out.copy_from_slice(&digest.0[..20]);
    Address(out)
}

/// The chain id: SHA-256("tabchain/chain-id/v1" || genesis hash). Signatures cover it.
pub fn chain_id(genesis_hash: &Hash) -> Hash {
    Hash::digest(&[b"tabchain/chain-id/v1", &genesis_hash.0])
}
