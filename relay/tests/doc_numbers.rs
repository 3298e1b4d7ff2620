//! Numbers in the docs that name a constant are that constant. A number followed by a marker
//! `<!--#NAME-->` (or `<!--#NAME/UNIT-->`: `KiB`, `MiB`, `s` for a duration or a constant in
//! milliseconds) must equal the constant `NAME` of the code, read here from the crates
//! themselves, so a change to a constant without its doc fails. Markers are HTML comments:
//! rendered Markdown does not show them. Every constant of the table below must be marked
//! somewhere, and every marker must name one of them.
//!
//! It lives in the relay's tests because the relay depends on `shared`: both crates' constants
//! are in reach.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A duration, in milliseconds, as the table keeps every time.
fn ms(duration: Duration) -> f64 {
    duration.as_millis() as f64
}

/// Every constant a doc may name, with its value.
fn constants() -> BTreeMap<&'static str, f64> {
    use relay::config::*;
    let shared_constants = [
        ("BLOCK_VERSION", f64::from(shared::block::BLOCK_VERSION)),
        (
            "PROTOCOL_VERSION",
            f64::from(shared::protocol::PROTOCOL_VERSION),
        ),
        (
            "MAX_LEGACY_CHAIN_FILE_BYTES",
            shared::export::MAX_LEGACY_CHAIN_FILE_BYTES as f64,
        ),
        (
            "MAX_LEGACY_CHAIN_FILE_BLOCKS",
            shared::export::MAX_LEGACY_CHAIN_FILE_BLOCKS as f64,
        ),
        (
            "MAX_CHAIN_FILE_BLOCKS",
            shared::export::MAX_CHAIN_FILE_BLOCKS as f64,
        ),
        (
            "MAX_CHAIN_FILE_LINE_BYTES",
            shared::export::MAX_CHAIN_FILE_LINE_BYTES as f64,
        ),
        (
            "CHAIN_FILE_VERSION",
            f64::from(shared::export::CHAIN_FILE_VERSION),
        ),
        (
            "LEGACY_CHAIN_FILE_VERSION",
            f64::from(shared::export::LEGACY_CHAIN_FILE_VERSION),
        ),
        ("MAX_FRAME_BYTES", shared::protocol::MAX_FRAME_BYTES as f64),
        (
            "MAX_SIGNAL_BYTES",
            shared::protocol::signal::MAX_SIGNAL_BYTES as f64,
        ),
        (
            "ENVELOPE_ALLOWANCE_BYTES",
            shared::protocol::ENVELOPE_ALLOWANCE_BYTES as f64,
        ),
        ("MAX_DIRECT_LINKS", shared::node::MAX_DIRECT_LINKS as f64),
        (
            "LINK_OPEN_TIMEOUT_MS",
            shared::node::LINK_OPEN_TIMEOUT_MS as f64,
        ),
        ("LINK_RETRY_MS", shared::node::LINK_RETRY_MS as f64),
        ("OFFER_BURST", f64::from(shared::node::OFFER_BURST)),
        (
            "OFFERS_PER_MINUTE",
            f64::from(shared::node::OFFERS_PER_MINUTE),
        ),
        (
            "HEADER_SOURCES_PER_TIP",
            shared::node::sync::HEADER_SOURCES_PER_TIP as f64,
        ),
        (
            "SOURCE_STALL_MS",
            shared::node::sync::SOURCE_STALL_MS as f64,
        ),
        ("MEMPOOL_SOURCES", shared::node::MEMPOOL_SOURCES as f64),
        (
            "LINK_ABUSE_BACKOFF_MS",
            shared::node::LINK_ABUSE_BACKOFF_MS as f64,
        ),
        (
            "FAST_RETRY_MS",
            shared::node::reconnect::FAST_RETRY_MS as f64,
        ),
        (
            "FAST_RETRIES",
            f64::from(shared::node::reconnect::FAST_RETRIES),
        ),
        ("MAX_RETRY_MS", shared::node::reconnect::MAX_RETRY_MS as f64),
    ];
    let relay_constants = [
        ("DEFAULT_PORT", f64::from(DEFAULT_PORT)),
        ("DEFAULT_MAX_CONNECTIONS", DEFAULT_MAX_CONNECTIONS as f64),
        ("REFUSAL_SLOTS", relay::REFUSAL_SLOTS as f64),
        (
            "DEFAULT_MAX_CONNECTIONS_PER_ADDRESS",
            DEFAULT_MAX_CONNECTIONS_PER_ADDRESS as f64,
        ),
        (
            "DEFAULT_JOIN_RATE_PER_ROOM",
            f64::from(DEFAULT_JOIN_RATE_PER_ROOM),
        ),
        (
            "DEFAULT_JOIN_BURST_PER_ROOM",
            f64::from(DEFAULT_JOIN_BURST_PER_ROOM),
        ),
        (
            "DEFAULT_JOIN_RATE_PER_ADDRESS",
            f64::from(DEFAULT_JOIN_RATE_PER_ADDRESS),
        ),
        (
            "DEFAULT_JOIN_BURST_PER_ADDRESS",
            f64::from(DEFAULT_JOIN_BURST_PER_ADDRESS),
        ),
        ("JOIN_SHARE_OF_ROOM", f64::from(relay::JOIN_SHARE_OF_ROOM)),
        (
            "DIRECTED_SHARE_OF_QUEUE",
            relay::outbox::DIRECTED_SHARE_OF_QUEUE as f64,
        ),
        (
            "ADDRESS_SHARE_OF_BUDGET",
            relay::ADDRESS_SHARE_OF_BUDGET as f64,
        ),
        (
            "DEFAULT_MAX_PEERS_PER_ROOM",
            DEFAULT_MAX_PEERS_PER_ROOM as f64,
        ),
        ("DEFAULT_MAX_FRAME_BYTES", DEFAULT_MAX_FRAME_BYTES as f64),
        (
            "DEFAULT_PEER_QUEUE_MESSAGES",
            DEFAULT_PEER_QUEUE_MESSAGES as f64,
        ),
        ("DEFAULT_PEER_QUEUE_BYTES", DEFAULT_PEER_QUEUE_BYTES as f64),
        (
            "DEFAULT_RATE_PER_SECOND",
            f64::from(DEFAULT_RATE_PER_SECOND),
        ),
        ("DEFAULT_RATE_BURST", f64::from(DEFAULT_RATE_BURST)),
        (
            "DEFAULT_BYTE_RATE_PER_SECOND",
            DEFAULT_BYTE_RATE_PER_SECOND as f64,
        ),
        ("DEFAULT_BYTE_BURST", DEFAULT_BYTE_BURST as f64),
        (
            "DEFAULT_MESSAGE_MEMORY_BYTES",
            DEFAULT_MESSAGE_MEMORY_BYTES as f64,
        ),
        (
            "DEFAULT_QUEUE_MEMORY_BYTES",
            DEFAULT_QUEUE_MEMORY_BYTES as f64,
        ),
        (
            "DEFAULT_FLOOD_DROPS_BEFORE_DISCONNECT",
            f64::from(DEFAULT_FLOOD_DROPS_BEFORE_DISCONNECT),
        ),
        ("FLOOD_WINDOW", ms(relay::FLOOD_WINDOW)),
        (
            "DEFAULT_MAX_MALFORMED_FRAMES",
            f64::from(DEFAULT_MAX_MALFORMED_FRAMES),
        ),
        ("DEFAULT_PING_INTERVAL", ms(DEFAULT_PING_INTERVAL)),
        ("DEFAULT_IDLE_TIMEOUT", ms(DEFAULT_IDLE_TIMEOUT)),
        ("DEFAULT_MESSAGE_TIMEOUT", ms(DEFAULT_MESSAGE_TIMEOUT)),
        ("DEFAULT_HTTP_TIMEOUT", ms(DEFAULT_HTTP_TIMEOUT)),
        (
            "STUN_RATE_PER_ADDRESS",
            f64::from(relay::stun::STUN_RATE_PER_ADDRESS),
        ),
        (
            "STUN_BURST_PER_ADDRESS",
            f64::from(relay::stun::STUN_BURST_PER_ADDRESS),
        ),
        ("STUN_RATE_TOTAL", f64::from(relay::stun::STUN_RATE_TOTAL)),
        ("MAX_ICE_SERVERS", MAX_ICE_SERVERS as f64),
        (
            "PUBLISH_QUEUE_MESSAGES",
            relay::nats_hub::PUBLISH_QUEUE_MESSAGES as f64,
        ),
        (
            "PUBLISH_QUEUE_BYTES",
            relay::nats_hub::PUBLISH_QUEUE_BYTES as f64,
        ),
        ("MAX_ICE_URL_BYTES", MAX_ICE_URL_BYTES as f64),
        ("MAX_ICE_CREDENTIAL_BYTES", MAX_ICE_CREDENTIAL_BYTES as f64),
    ];
    shared_constants
        .into_iter()
        .chain(relay_constants)
        .collect()
}

/// One marker found in a doc.
#[derive(Debug)]
struct Marker {
    place: String,
    name: String,
    unit: Option<String>,
    /// The number written just before the marker, if there is one.
    written: Option<f64>,
}

/// The markers of `text` (the doc at `path`).
fn markers(path: &Path, text: &str) -> Vec<Marker> {
    let mut found = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let mut rest = line;
        let mut offset = 0;
        while let Some(start) = rest.find("<!--#") {
            let absolute = offset + start;
            let after = &line[absolute + 5..];
            let Some(end) = after.find("-->") else {
                break;
            };
            let (name, unit) = match after[..end].split_once('/') {
                Some((name, unit)) => (name, Some(unit.to_owned())),
                None => (&after[..end], None),
            };
            let before = line[..absolute].trim_end_matches('`');
            let digits: String = before
                .chars()
                .rev()
                .take_while(|c| c.is_ascii_digit() || matches!(c, ',' | '.' | '_'))
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect();
            let written = digits
                .trim_start_matches([',', '.'])
                .replace([',', '_'], "")
                .parse::<f64>()
                .ok();
            found.push(Marker {
                place: format!("{}:{}", path.display(), index + 1),
                name: name.to_owned(),
                unit,
                written,
            });
            offset = absolute + 5 + end + 3;
            rest = &line[offset..];
        }
    }
    found
}

fn divisor(unit: Option<&str>) -> Option<f64> {
    match unit {
        None => Some(1.0),
        Some("KiB") => Some(1024.0),
        Some("MiB") => Some(1024.0 * 1024.0),
        Some("s") => Some(1000.0),
        Some(_) => None,
    }
}

fn docs() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut paths = vec![root.join("README.md"), root.join("ARCHITECTURE.md")];
    let mut in_docs: Vec<PathBuf> = std::fs::read_dir(root.join("docs"))
        .expect("docs/")
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "md"))
        .collect();
    in_docs.sort();
    paths.extend(in_docs);
    paths
}

#[test]
fn every_marked_number_in_the_docs_is_its_constant() {
    let constants = constants();
    let mut problems = Vec::new();
    let mut used = std::collections::BTreeSet::new();
    for path in docs() {
        let text = std::fs::read_to_string(&path).unwrap();
        for marker in markers(&path, &text) {
            let Some(value) = constants.get(marker.name.as_str()) else {
                problems.push(format!(
                    "{}: `{}` is not a constant this test knows",
                    marker.place, marker.name
                ));
                continue;
            };
            used.insert(marker.name.clone());
            let Some(divisor) = divisor(marker.unit.as_deref()) else {
                problems.push(format!(
                    "{}: unknown unit `{:?}`",
                    marker.place, marker.unit
                ));
                continue;
            };
            let expected = value / divisor;
            match marker.written {
                Some(written) if (written - expected).abs() < 1e-9 => {}
                Some(written) => problems.push(format!(
                    "{}: the doc says {written} where `{}` is {expected}",
                    marker.place, marker.name
                )),
                None => problems.push(format!(
                    "{}: no number just before the marker of `{}`",
                    marker.place, marker.name
                )),
            }
        }
    }
    for name in constants.keys() {
        if !used.contains(*name) {
            problems.push(format!("`{name}` is marked nowhere in the docs"));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn markers_are_read_as_written() {
    let text = "at most 16<!--#A/KiB--> KiB, `3030`<!--#B-->, 10,000<!--#C--> and <!--#D-->";
    let found = markers(Path::new("x.md"), text);
    let read: Vec<(&str, Option<f64>)> = found
        .iter()
        .map(|marker| (marker.name.as_str(), marker.written))
        .collect();
    assert_eq!(
        read,
        vec![
            ("A", Some(16.0)),
            ("B", Some(3030.0)),
            ("C", Some(10_000.0)),
            ("D", None)
        ]
    );
    assert_eq!(found[0].unit.as_deref(), Some("KiB"));
}
