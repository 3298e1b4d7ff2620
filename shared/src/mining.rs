//! The proof-of-work search: one pure function that the browser worker, the native miner and
//! the tests all call.
//!
//! The 96-byte header hashes in two SHA-256 blocks, and the nonce sits in the second. So the
//! first block is compressed once per call (the "midstate"), and each nonce costs one
//! compression of a prepared second block whose nonce bytes are rewritten in place.
//! The loop allocates nothing.

use crate::block::{BlockHeader, HEADER_LEN, NONCE_OFFSET};
use crate::hash::Hash;
use sha2::digest::generic_array::GenericArray;

/// SHA-256 initial state (FIPS 180-4, 5.3.3).
const SHA256_INITIAL_STATE: [u32; 8] = [
    0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
];

/// What a search over a nonce range gave.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MiningOutcome {
    /// `header` with this nonce meets its target; `tried` counts the hashes computed.
    Found { nonce: u64, hash: Hash, tried: u64 },
    /// No nonce in the range met the target.
    Exhausted { tried: u64 },
    /// The header's target field does not expand to a valid target.
    InvalidTarget,
}

/// Searches nonces `first_nonce .. first_nonce + count` (wrapping at `u64::MAX`) of `header`
/// for a hash at or below the header's target.
pub fn mine(header: &BlockHeader, first_nonce: u64, count: u64) -> MiningOutcome {
    let Some(target_bytes) = header.target.to_be_bytes() else {
        return MiningOutcome::InvalidTarget;
    };
    let mut target = [0u32; 8];
    for (word, chunk) in target.iter_mut().zip(target_bytes.chunks_exact(4)) {
        *word = u32::from_be_bytes(chunk.try_into().expect("4 bytes"));
    }

    let bytes = header.encode();
    let mut midstate = SHA256_INITIAL_STATE;
    sha2::compress256(&mut midstate, &[*GenericArray::from_slice(&bytes[..64])]);

    // The second block: header bytes 64..96, the 0x80 terminator, zeros, and the bit length.
    let mut tail = [0u8; 64];
    tail[..HEADER_LEN - 64].copy_from_slice(&bytes[64..]);
    tail[HEADER_LEN - 64] = 0x80;
    tail[56..].copy_from_slice(&((HEADER_LEN as u64) * 8).to_be_bytes());
    let mut block = *GenericArray::from_slice(&tail);
    let nonce_at = NONCE_OFFSET - 64;

    let mut nonce = first_nonce;
    for tried in 1..=count {
        block[nonce_at..nonce_at + 8].copy_from_slice(&nonce.to_be_bytes());
        let mut state = midstate;
        sha2::compress256(&mut state, std::slice::from_ref(&block));
        if state <= target {
            let mut hash = [0u8; 32];
            for (chunk, word) in hash.chunks_exact_mut(4).zip(state) {
                chunk.copy_from_slice(&word.to_be_bytes());
            }
            return MiningOutcome::Found {
                nonce,
                hash: Hash(hash),
                tried,
            };
        }
        nonce = nonce.wrapping_add(1);
    }
    MiningOutcome::Exhausted { tried: count }
}

/// True when the header's hash meets the header's own target.
pub fn meets_target(header: &BlockHeader) -> bool {
    match header.target.to_be_bytes() {
        Some(target) => header.hash().0 <= target,
        None => false,
    }
}

/// A hash rate for people: `1.23 MH/s`, `1.5 kH/s`, `12 H/s` (the browser and the console
/// node show it the same way).
pub fn format_rate(hashes_per_second: f64) -> String {
    match hashes_per_second {
        rate if rate >= 1e6 => format!("{:.2} MH/s", rate / 1e6),
        rate if rate >= 1e3 => format!("{:.1} kH/s", rate / 1e3),
        rate => format!("{rate:.0} H/s"),
    }
}
