//! Proof-of-work targets and chain work.
//!
//! A target is a 256-bit number; a block hash (read big-endian) must be at most the target.
//! Headers carry it in a 4-byte compact form: one exponent byte `E` and a 3-byte mantissa `M`,
//! `target = M * 256^(E-3)` (or `M >> 8*(3-E)` when `E < 3`). The work of a block is the expected
//! number of hashes to find it, `2^256 / (target + 1)`; fork choice sums it.

#![allow(clippy::manual_div_ceil, clippy::assign_op_pattern)]

use serde::{Deserialize, Deserializer, Serialize, Serializer};

uint::construct_uint! {
    /// Unsigned 256-bit integer for targets and cumulative work.
    pub struct U256(4);
}

/// Cumulative or per-block work, written as lowercase hex without leading zeros on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Work(pub U256);

impl Serialize for Work {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_hex())
    }
}

impl<'de> Deserialize<'de> for Work {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        // The one spelling `to_hex` writes: 1 to 64 lowercase digits, no leading zero but "0".
        let canonical = (1..=64).contains(&text.len())
            && crate::hash::is_lowercase_hex(&text)
            && (text == "0" || !text.starts_with('0'));
        if !canonical {
            return Err(serde::de::Error::custom(
                "work must be 1 to 64 lowercase hex digits without leading zeros",
            ));
        }
        U256::from_str_radix(&text, 16)
            .map(Work)
            .map_err(|_| serde::de::Error::custom("work is not hex"))
    }
}

impl Work {
    /// Lowercase hex without leading zeros: the wire form.
    pub fn to_hex(&self) -> String {
        format!("{:x}", self.0)
    }
    pub fn checked_add(self, other: Work) -> Option<Work> {
        self.0.checked_add(other.0).map(Work)
    }
    /// The work as a float (53 bits of precision), for figures people compare.
    pub fn as_f64(&self) -> f64 {
        self.0 .0.iter().rev().fold(0.0, |sum, limb| {
            sum * 18_446_744_073_709_551_616.0 + *limb as f64
        })
    }
    /// A rough decimal figure for people: log2 of the work, as "2^23.7".
    pub fn log2(&self) -> f64 {
        if self.0.is_zero() {
            return 0.0;
        }
        let bits = self.0.bits();
        let shift = bits.saturating_sub(53);
        let top = (self.0 >> shift).low_u64() as f64;
        top.log2() + shift as f64
    }
}

/// A target in its compact 4-byte header form.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Target(pub u32);

impl Target {
    /// Expands the compact form; `None` when the exponent overflows 256 bits or the target is 0
    /// (a zero mantissa, or one shifted out entirely by a small exponent).
    pub fn expand(self) -> Option<U256> {
        let exponent = self.0 >> 24;
        let mantissa = self.0 & 0x00ff_ffff;
        if mantissa == 0 || exponent > 32 {
            return None;
        }
        let value = U256::from(mantissa);
        if exponent <= 3 {
            // A zero target is as invalid as a zero mantissa: no real hash meets it, and its
            // work, 2^256, does not fit in 256 bits (`work` used to overflow and panic on it).
            let value = value >> (8 * (3 - exponent) as usize);
            (!value.is_zero()).then_some(value)
        } else {
            let shift = 8 * (exponent - 3) as usize;
            // Reject mantissa bits that would be shifted out of 256 bits.
            if value.bits() + shift > 256 {
                return None;
            }
            Some(value << shift)
        }
    }

    /// The canonical compact form of `value`, rounding down to 24 bits of precision.
    pub fn from_u256(value: U256) -> Target {
        let size = (value.bits() + 7) / 8;
        let mantissa = if size <= 3 {
            value.low_u64() << (8 * (3 - size))
        } else {
            (value >> (8 * (size - 3))).low_u64()
        };
        Target(((size as u32) << 24) | (mantissa as u32 & 0x00ff_ffff))
    }

    /// The work one block at this target represents: `2^256 / (target + 1)`.
    pub fn work(self) -> Work {
        match self.expand() {
            Some(target) if target != U256::MAX => Work((!target / (target + 1)) + 1),
            _ => Work(U256::one()),
        }
    }

    /// The target as 32 big-endian bytes, for comparing with a hash.
    pub fn to_be_bytes(self) -> Option<[u8; 32]> {
        self.expand().map(|value| value.to_big_endian())
    }
}

/// The target a network starts with: one block expected every `expected_hashes` hashes.
pub fn target_for_expected_hashes(expected_hashes: u64) -> U256 {
    U256::MAX / U256::from(expected_hashes.max(1))
}
