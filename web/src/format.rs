//! Small text helpers for the views.

use crate::snapshot::NodeSnapshot;
use shared::Address;

/// "12s ago", "3m ago", "2h ago".
pub fn ago(now_ms: u64, then_ms: u64) -> String {
    let seconds = now_ms.saturating_sub(then_ms) / 1000;
    match seconds {
        0..=59 => format!("{seconds}s ago"),
        60..=3599 => format!("{}m ago", seconds / 60),
        3600..=86_399 => format!("{}h ago", seconds / 3600),
        _ => format!("{}d ago", seconds / 86_400),
    }
}

/// Wall-clock time of day, UTC, "14:03:27".
pub fn clock(ms: u64) -> String {
    let seconds = (ms / 1000) % 86_400;
    format!(
        "{:02}:{:02}:{:02}",
        seconds / 3600,
        (seconds / 60) % 60,
        seconds % 60
    )
}

/// "2^23.7": cumulative work is astronomically large, its logarithm reads well.
pub fn work(log2: f64) -> String {
    format!("2^{log2:.1}")
}

/// Who the person means by `text`: a peer's name (exact, then case-insensitive), or a pasted
/// 40-digit hex address.
pub fn resolve_recipient(text: &str, snapshot: &NodeSnapshot) -> Result<Address, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err("choose a peer or paste an address".into());
    }
    let by_name = snapshot
        .peers
        .iter()
        .find(|peer| peer.name == text)
        .or_else(|| {
            snapshot
                .peers
                .iter()
                .find(|peer| peer.name.eq_ignore_ascii_case(text))
        });
    if let Some(peer) = by_name {
        return peer
            .address
            .ok_or_else(|| format!("{} has not said its address yet", peer.name));
    }
    // "name (address)" as the suggestion list shows it.
    if let Some(inner) = text
        .rsplit_once('(')
        .and_then(|(_, rest)| rest.strip_suffix(')'))
    {
        if let Ok(address) = Address::from_hex(inner) {
            return Ok(address);
        }
    }
    Address::from_hex(text)
        .map_err(|_| format!("{text:?} is neither a peer's name nor a 40-digit hex address"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_chain::TestNode;
    use shared::protocol::PeerId;

    #[test]
    fn recipients_by_name_or_address() {
        let node = TestNode::new("ours", 1);
        let mut snapshot = NodeSnapshot::build(&node.node, &[]);
        let bob = Address([7; 20]);
        snapshot.peers.push(crate::snapshot::PeerView {
            id: PeerId::from_bytes([1; 16]),
            name: "Bob".into(),
            address: Some(bob),
            tip: None,
            total_work_log2: None,
            relation: crate::relation::Relation::Unknown,
            misbehavior: 0,
            banned: false,
            muted: false,
            last_offense: None,
            refused: None,
        });
        assert_eq!(resolve_recipient("Bob", &snapshot), Ok(bob));
        assert_eq!(resolve_recipient("bob", &snapshot), Ok(bob));
        assert_eq!(resolve_recipient(&bob.to_hex(), &snapshot), Ok(bob));
        assert_eq!(
            resolve_recipient(&format!("Bob ({})", bob.to_hex()), &snapshot),
            Ok(bob)
        );
        assert!(resolve_recipient("carol", &snapshot).is_err());
        assert!(resolve_recipient("", &snapshot).is_err());
    }

    #[test]
    fn times_read_well() {
        assert_eq!(ago(100_000, 40_000), "1m ago");
        assert_eq!(clock(3_723_000), "01:02:03");
    }
}
