//! Private mining as people see it, and work that people can compare: how far ahead a chain
//! is, in blocks' worth.

use super::*;

// ---- private mining ----

/// Where our private branch stands against the public chain, for the mining panel and the
/// lesson cards.
#[derive(Clone, Debug, PartialEq)]
pub struct PrivateView {
    /// Blocks mined privately (not yet released).
    pub blocks: usize,
    /// The height of the public block the branch starts from.
    pub base_height: u64,
    pub private_height: u64,
    /// The heaviest public block we hold.
    pub public_height: u64,
    /// Private tip height minus public tip height (negative: behind).
    pub lead_blocks: i64,
    /// The private tip's work minus the public tip's, in blocks' worth at the public tip's
    /// target (what decides who wins at the release).
    pub lead_work_blocks: f64,
    /// "2.0 blocks more", "1.0 block less", "same work".
    pub lead_text: String,
    /// Double spends waiting for, or in, the branch.
    pub double_spends: usize,
    /// The branch is at its bound ([`crate::node::MAX_PRIVATE_BLOCKS`]): release it.
    pub full: bool,
}

impl PrivateView {
    /// Whether a release now would win (more work than the public chain).
    pub fn ahead(&self) -> bool {
        self.lead_work_blocks > 0.0
    }

    /// One line for people: "private branch: 3 blocks, 1.0 block more work than the public chain".
    pub fn describe(&self) -> String {
        let lead = if self.lead_text == "same work" {
            "the same work as the public chain".to_string()
        } else {
            format!("{} work than the public chain", self.lead_text)
        };
        format!(
            "Private branch: {} from block {}, {lead}.",
            plural(self.blocks as u64, "block", "blocks"),
            self.base_height
        )
    }
}

/// Our private branch, `None` when private mining is off.
pub fn private_view(node: &Node) -> Option<PrivateView> {
    let status = node.private_status()?;
    let per_block = node
        .tree()
        .header(&status.public_tip.hash)
        .map(|header| header.target.work())
        .unwrap_or_else(|| node.tree().tip_header().target.work());
    let lead_work_blocks = work_ahead_in_blocks(
        &status.tip.total_work,
        &status.public_tip.total_work,
        &per_block,
    );
    Some(PrivateView {
        blocks: status.blocks,
        base_height: status.base.height,
        private_height: status.tip.height,
        public_height: status.public_tip.height,
        lead_blocks: status.tip.height as i64 - status.public_tip.height as i64,
        lead_work_blocks,
        lead_text: describe_work_ahead(lead_work_blocks),
        double_spends: status.double_spends,
        full: status.full,
    })
}

// ---- work people can compare ----

/// How much more work `theirs` has than `ours`, in blocks' worth of work at `per_block` (the
/// work of one block at the current target): +2.0 means "two blocks ahead". Both chains' total
/// work is a huge number (2^29.4 and 2^29.4 look the same); the difference in blocks shows why
/// one of them wins.
pub fn work_ahead_in_blocks(theirs: &Work, ours: &Work, per_block: &Work) -> f64 {
    let per_block = per_block.as_f64();
    if per_block <= 0.0 {
        return 0.0;
    }
    let difference = if theirs >= ours {
        Work(theirs.0 - ours.0).as_f64()
    } else {
        -Work(ours.0 - theirs.0).as_f64()
    };
    difference / per_block
}

/// "same work", "1.0 block more", "2.5 blocks less" (one decimal).
pub fn describe_work_ahead(blocks: f64) -> String {
    let rounded = (blocks * 10.0).round() / 10.0;
    if rounded == 0.0 {
        return "same work".into();
    }
    let amount = rounded.abs();
    let noun = if amount == 1.0 { "block" } else { "blocks" };
    let direction = if rounded > 0.0 { "more" } else { "less" };
    format!("{amount:.1} {noun} {direction}")
}

/// What the tamper sandbox shows of one edited copy of a block: the checks a reader can follow
/// by eye, each done by the consensus code itself. `parent_hash` is the (recomputed) hash of the
/// copy before it, `None` for the first copy; `subsidy_and_fees` what its coinbase should pay.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TamperChecks {
    pub proof_of_work: bool,
    pub tx_root: bool,
    pub signatures: bool,
    pub coinbase: bool,
    /// Its `prev_hash` still equals the hash of the block before it.
    pub link: bool,
}

impl TamperChecks {
    pub fn valid(&self) -> bool {
        self.proof_of_work && self.tx_root && self.signatures && self.coinbase && self.link
    }
}

pub fn tamper_checks(
    block: &Block,
    parent_hash: Option<Hash>,
    expected_coinbase: u64,
    chain_id: &Hash,
) -> TamperChecks {
    TamperChecks {
        proof_of_work: crate::mining::meets_target(&block.header),
        tx_root: block.compute_tx_root() == block.header.tx_root,
        signatures: crate::validation::verify_signatures(&block.transactions, chain_id).is_ok(),
        coinbase: block.coinbase.amount == expected_coinbase,
        link: parent_hash.is_none_or(|parent| parent == block.header.prev_hash),
    }
}
