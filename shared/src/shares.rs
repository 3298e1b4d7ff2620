//! Who mined the room's recent blocks: each miner's share of the last blocks of our best chain,
//! so a class sees hash power as a share of blocks ("you 62 %, bob 30 %, tab-0c49 8 %"), and
//! each miner's share of the blocks since a given height (the majority lesson counts those since
//! a tab's hash-power dial moved, so the dial's effect is not drowned in older blocks).

use crate::chain::BlockTree;
use crate::keys::Address;
use crate::view::Names;
use std::collections::HashMap;

/// Blocks counted: enough that one lucky block moves a share by 2 %, few enough that a change
/// of hash power shows within a minute or two on the classroom network.
pub const SHARE_WINDOW: u64 = 50;

/// Blocks a count since a height reads at most (the newest of them). The majority lesson counts
/// the blocks since its dial moved on every render while its card is open; the step it serves
/// takes a minute or two (tens of blocks), and the newest thousand show the same majority as
/// all of them would, at a bounded cost however long a card stays open.
pub const SINCE_MAX_BLOCKS: u64 = 1_000;

/// One miner among the last blocks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MinerShare {
    pub miner: Address,
    /// The name we know it by ("alice (you)", "bob") or its short address.
    pub label: String,
    pub is_us: bool,
    pub blocks: u64,
    /// Whole percent; the shares of one window add up to exactly 100.
    pub percent: u64,
}

/// The shares of the last `counted` blocks, most blocks first.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct BlockShares {
    pub counted: u64,
    pub miners: Vec<MinerShare>,
    /// Whether we mined the newest of them (the tip).
    pub tip_is_ours: bool,
}

impl BlockShares {
    /// Our own share in percent (0 when we mined none of them, or there are none).
    pub fn ours(&self) -> u64 {
        self.miners
            .iter()
            .find(|share| share.is_us)
            .map_or(0, |share| share.percent)
    }
}

/// The miners of the last `window` blocks of `tree`'s best chain (genesis is nobody's).
pub fn block_shares(tree: &BlockTree, names: &Names, us: &Address, window: u64) -> BlockShares {
    let tip = tree.tip_height();
    if window == 0 {
        return BlockShares::default();
    }
    let from = tip.saturating_sub(window - 1);
    shares_of(&miners_between(tree, from, tip), |address| {
        (
            names.name(address).unwrap_or_else(|| address.short()),
            address == us,
        )
    })
}

/// The miners of our best chain's blocks above `since_height` up to height `top` (the height the
/// screen shows; the tip, if that is lower), at most the newest [`SINCE_MAX_BLOCKS`] of them, so
/// only those blocks are read. Each is labelled as running text names it: "you" for us, others
/// by their cleaned name beside their short address ("bob (3f2a9c1e)"), or the address alone.
pub fn block_shares_since(
    tree: &BlockTree,
    names: &Names,
    us: &Address,
    since_height: u64,
    top: u64,
) -> BlockShares {
    let top = top.min(tree.tip_height());
    let from = (since_height + 1).max(top.saturating_sub(SINCE_MAX_BLOCKS - 1));
    shares_of(&miners_between(tree, from, top), |address| {
        if address == us {
            ("you".into(), true)
        } else {
            (names.label(address), false)
        }
    })
}

/// Who mined each block of our best chain from height `from` to `to` (both included), oldest
/// first; genesis is nobody's.
fn miners_between(tree: &BlockTree, from: u64, to: u64) -> Vec<Address> {
    let from = from.max(1);
    if to < from {
        return Vec::new();
    }
    tree.active_blocks(from, (to - from + 1) as usize)
        .iter()
        .map(|block| block.coinbase.to)
        .collect()
}

/// Groups `miners` (one entry per block, oldest first) and gives each a whole percent by the largest
/// remainder, so the column adds up to 100 as people expect. Ties sort by label, so the order
/// does not flicker between renders.
pub fn shares_of(miners: &[Address], describe: impl Fn(&Address) -> (String, bool)) -> BlockShares {
    let counted = miners.len() as u64;
    if counted == 0 {
        return BlockShares::default();
    }
    let last_is_us = miners.last().is_some_and(|last| describe(last).1);
    let mut counts: HashMap<Address, u64> = HashMap::new();
    for miner in miners {
        *counts.entry(*miner).or_default() += 1;
    }
    let mut shares: Vec<(MinerShare, u64)> = counts
        .into_iter()
        .map(|(miner, blocks)| {
            let (label, is_us) = describe(&miner);
            let scaled = blocks * 100;
            (
                MinerShare {
                    miner,
                    label,
                    is_us,
                    blocks,
                    percent: scaled / counted,
                },
                scaled % counted,
            )
        })
        .collect();
    let missing = 100 - shares.iter().map(|(share, _)| share.percent).sum::<u64>();
    shares.sort_by(|(a, a_rest), (b, b_rest)| {
        b_rest
            .cmp(a_rest)
            .then(b.blocks.cmp(&a.blocks))
            .then(a.label.cmp(&b.label))
    });
    for (share, _) in shares.iter_mut().take(missing as usize) {
        share.percent += 1;
    }
    let mut miners: Vec<MinerShare> = shares.into_iter().map(|(share, _)| share).collect();
    miners.sort_by(|a, b| {
        b.blocks
            .cmp(&a.blocks)
            .then(a.label.cmp(&b.label))
            .then(a.miner.cmp(&b.miner))
    });
    BlockShares {
        counted,
        miners,
        tip_is_ours: last_is_us,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn address(byte: u8) -> Address {
        Address([byte; 20])
    }

    fn describe(address: &Address) -> (String, bool) {
        match address.0[0] {
            1 => ("you".into(), true),
            2 => ("bob".into(), false),
            _ => (address.short(), false),
        }
    }

    #[test]
    fn shares_group_by_miner_and_add_up_to_100() {
        // 31 of ours, 15 of bob's, 4 of a third tab's: 62 %, 30 %, 8 %.
        let mut miners = vec![address(1); 31];
        miners.extend(vec![address(2); 15]);
        miners.extend(vec![address(3); 4]);
        let shares = shares_of(&miners, describe);
        assert_eq!(shares.counted, 50);
        let rows: Vec<(&str, u64, u64)> = shares
            .miners
            .iter()
            .map(|share| (share.label.as_str(), share.blocks, share.percent))
            .collect();
        assert_eq!(
            rows,
            vec![
                ("you", 31, 62),
                ("bob", 15, 30),
                (&*address(3).short(), 4, 8)
            ]
        );
        assert_eq!(shares.ours(), 62);
        assert!(!shares.tip_is_ours, "the newest block is the third tab's");
        assert!(shares_of(&[address(2), address(1)], describe).tip_is_ours);
    }

    #[test]
    fn rounding_never_leaves_the_total_off_100() {
        let cases: &[&[u8]] = &[&[1, 2, 3], &[1, 1, 2, 3, 3, 3, 4], &[1; 7], &[2, 3]];
        for miners in cases {
            let miners: Vec<Address> = miners.iter().map(|byte| address(*byte)).collect();
            let shares = shares_of(&miners, describe);
            let total: u64 = shares.miners.iter().map(|share| share.percent).sum();
            assert_eq!(total, 100, "{miners:?}");
        }
        // Thirds: the remainders tie, so the label decides who gets the extra point.
        let thirds = shares_of(&[address(1), address(2), address(3)], describe);
        let percents: Vec<u64> = thirds.miners.iter().map(|share| share.percent).collect();
        assert_eq!(percents.iter().sum::<u64>(), 100);
        assert!(percents
            .iter()
            .all(|percent| *percent == 33 || *percent == 34));
        assert_eq!(shares_of(&[address(2), address(3)], describe).ours(), 0);
        assert_eq!(shares_of(&[], describe), BlockShares::default());
    }
}
