//! What relays say to each other through the broker: subjects and the bytes of each message.
//!
//! Two kinds of subject:
//! - `tabchain.room.<room>`: everything about one room, from every relay that has members in it
//!   (frames, joins, leaves, presence). One subject per room keeps each relay's messages about
//!   the room in one order, so a `peer_joined` always arrives before its peer's first frame and a
//!   presence heartbeat is never older than a join it follows.
//! - `tabchain.fleet`: relays announcing themselves and asking each other about a room.
//!
//! A message is one header line of space-separated ASCII tokens, a newline, and for frames the
//! relay frame exactly as it goes to a peer (already a complete JSON envelope, so the receiving
//! relay forwards the bytes without parsing them). Text keeps `nats sub 'tabchain.>'` readable.

use bytes::{BufMut, Bytes, BytesMut};
use shared::protocol::PeerId;
use std::fmt;
use thiserror::Error;
use tokio_tungstenite::tungstenite::Utf8Bytes;

/// Every subject this relay uses starts with this, so one NATS account can carry other traffic.
pub const SUBJECT_PREFIX: &str = "tabchain";
/// The subject every relay subscribes to for the whole of its life.
pub const FLEET_SUBJECT: &str = "tabchain.fleet";

/// One relay process. A new one at every start, so a restarted relay is never confused with the
/// process it replaces (whose peers are gone).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RelayId(String);

impl RelayId {
    pub const LEN: usize = 32;

    pub fn random() -> RelayId {
        let bytes: [u8; 16] = rand::random();
        RelayId(bytes.iter().map(|byte| format!("{byte:02x}")).collect())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn short(&self) -> &str {
        &self.0[..8]
    }

    fn parse(token: &str) -> Result<RelayId, WireError> {
        if token.len() == RelayId::LEN
            && token
                .bytes()
                .all(|byte| matches!(byte, b'0'..=b'9' | b'a'..=b'f'))
        {
            Ok(RelayId(token.to_owned()))
        } else {
            Err(WireError::BadRelayId)
        }
    }
}

impl fmt::Display for RelayId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The subject of a room. Subject tokens may not hold `.`, `*`, `>` or whitespace, and room names
/// may hold `.`, so every byte outside `[A-Za-z0-9_-]` becomes `%XX` (room names cannot contain
/// `%`, so the escaping is one-to-one).
pub fn room_subject(room: &str) -> String {
    let mut subject = String::with_capacity(SUBJECT_PREFIX.len() + 6 + room.len() * 3);
    subject.push_str(SUBJECT_PREFIX);
    subject.push_str(".room.");
    for byte in room.bytes() {
        if byte.is_ascii_alphanumeric() || byte == b'_' || byte == b'-' {
            subject.push(byte as char);
        } else {
            subject.push_str(&format!("%{byte:02X}"));
        }
    }
    subject
}

/// A message on a room's subject.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RoomMessage {
    /// A frame for every member of the room except `from`.
    Broadcast {
        relay: RelayId,
        from: PeerId,
        frame: Utf8Bytes,
    },
    /// A frame for one member.
    Send {
        relay: RelayId,
        from: PeerId,
        to: PeerId,
        frame: Utf8Bytes,
    },
    Joined {
        relay: RelayId,
        peer: PeerId,
    },
    Left {
        relay: RelayId,
        peer: PeerId,
    },
    /// Every member `relay` has in the room now: its heartbeat, and its answer to a query.
    Presence {
        relay: RelayId,
        peers: Vec<PeerId>,
    },
}

/// A message on the fleet subject.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FleetMessage {
    /// `relay` is alive (sent every heartbeat, and in answer to `Hello`).
    Alive { relay: RelayId },
    /// `relay` has just connected and wants to know who else is there.
    Hello { relay: RelayId },
    /// `relay` opens `room`: every relay answers with its `Presence` on the room's subject.
    Query { relay: RelayId, room: String },
    /// `relay` is shutting down: forget it and its peers now rather than at expiry.
    Gone { relay: RelayId },
}

/// Why a message from the broker was not understood. Another program on the same subjects, or a
/// relay of an incompatible version, would cause these; the message is dropped and counted.
#[derive(Clone, Copy, Debug, Error, PartialEq, Eq)]
pub enum WireError {
    #[error("the message has no header line")]
    NoHeader,
    #[error("the header is not ASCII text")]
    NotText,
    #[error("unknown message kind")]
    UnknownKind,
    #[error("a token is missing from the header")]
    MissingToken,
    #[error("a relay id is not 32 lowercase hex digits")]
    BadRelayId,
    #[error("a peer id is not 32 lowercase hex digits")]
    BadPeerId,
    #[error("a presence list names more peers than a room may hold")]
    TooManyPeers,
    #[error("the frame is not UTF-8")]
    FrameNotUtf8,
}

fn with_header(header: &str, frame: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(header.len() + 1 + frame.len());
    out.put_slice(header.as_bytes());
    out.put_u8(b'\n');
    out.put_slice(frame);
    out.freeze()
}

impl RoomMessage {
    pub fn encode(&self) -> Bytes {
        match self {
            RoomMessage::Broadcast { relay, from, frame } => {
                with_header(&format!("B {relay} {}", from.as_str()), frame.as_bytes())
            }
            RoomMessage::Send {
                relay,
                from,
                to,
                frame,
            } => with_header(
                &format!("S {relay} {} {}", from.as_str(), to.as_str()),
                frame.as_bytes(),
            ),
            RoomMessage::Joined { relay, peer } => {
                with_header(&format!("J {relay} {}", peer.as_str()), b"")
            }
            RoomMessage::Left { relay, peer } => {
                with_header(&format!("L {relay} {}", peer.as_str()), b"")
            }
            RoomMessage::Presence { relay, peers } => {
                let mut header = String::with_capacity(2 + RelayId::LEN + peers.len() * 33);
                header.push_str("P ");
                header.push_str(relay.as_str());
                for peer in peers {
                    header.push(' ');
                    header.push_str(peer.as_str());
                }
                with_header(&header, b"")
            }
        }
    }

    /// Parses a room message. `max_peers` bounds a presence list (a room's cap).
    pub fn decode(payload: &Bytes, max_peers: usize) -> Result<RoomMessage, WireError> {
        let (header, body) = split(payload)?;
        let mut tokens = header.split(' ');
        let kind = tokens.next().ok_or(WireError::NoHeader)?;
        let relay = RelayId::parse(tokens.next().ok_or(WireError::MissingToken)?)?;
        let mut peer = || -> Result<PeerId, WireError> {
            let token = tokens.next().ok_or(WireError::MissingToken)?;
            PeerId::try_from(token.to_owned()).map_err(|_| WireError::BadPeerId)
        };
        Ok(match kind {
            "B" => RoomMessage::Broadcast {
                relay,
                from: peer()?,
                frame: utf8(body)?,
            },
            "S" => RoomMessage::Send {
                relay,
                from: peer()?,
                to: peer()?,
                frame: utf8(body)?,
            },
            "J" => RoomMessage::Joined {
                relay,
                peer: peer()?,
            },
            "L" => RoomMessage::Left {
                relay,
                peer: peer()?,
            },
            "P" => {
                let mut peers = Vec::new();
                for token in tokens.filter(|token| !token.is_empty()) {
                    if peers.len() == max_peers {
                        return Err(WireError::TooManyPeers);
                    }
                    peers.push(
                        PeerId::try_from(token.to_owned()).map_err(|_| WireError::BadPeerId)?,
                    );
                }
                RoomMessage::Presence { relay, peers }
            }
            _ => return Err(WireError::UnknownKind),
        })
    }
}

impl FleetMessage {
    pub fn encode(&self) -> Bytes {
        let header = match self {
            FleetMessage::Alive { relay } => format!("A {relay}"),
            FleetMessage::Hello { relay } => format!("H {relay}"),
            FleetMessage::Query { relay, room } => format!("Q {relay} {room}"),
            FleetMessage::Gone { relay } => format!("G {relay}"),
        };
        with_header(&header, b"")
    }

    pub fn decode(payload: &Bytes) -> Result<FleetMessage, WireError> {
        let (header, _) = split(payload)?;
        let mut tokens = header.split(' ');
        let kind = tokens.next().ok_or(WireError::NoHeader)?;
        let relay = RelayId::parse(tokens.next().ok_or(WireError::MissingToken)?)?;
        Ok(match kind {
            "A" => FleetMessage::Alive { relay },
            "H" => FleetMessage::Hello { relay },
            "Q" => {
                let room = tokens.next().ok_or(WireError::MissingToken)?;
                if !shared::protocol::relay::valid_room_name(room) {
                    return Err(WireError::MissingToken);
                }
                FleetMessage::Query {
                    relay,
                    room: room.to_owned(),
                }
            }
            "G" => FleetMessage::Gone { relay },
            _ => return Err(WireError::UnknownKind),
        })
    }
}

/// Splits the header line from the body, without copying the body.
fn split(payload: &Bytes) -> Result<(&str, Bytes), WireError> {
    let newline = payload
        .iter()
        .position(|&byte| byte == b'\n')
        .ok_or(WireError::NoHeader)?;
    let header = std::str::from_utf8(&payload[..newline]).map_err(|_| WireError::NotText)?;
    if !header.is_ascii() {
        return Err(WireError::NotText);
    }
    Ok((header, payload.slice(newline + 1..)))
}

fn utf8(body: Bytes) -> Result<Utf8Bytes, WireError> {
    Utf8Bytes::try_from(body).map_err(|_| WireError::FrameNotUtf8)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(byte: u8) -> PeerId {
        PeerId::from_bytes([byte; 16])
    }

    #[test]
    fn room_messages_survive_a_round_trip() {
        let relay = RelayId::random();
        let cases = [
            RoomMessage::Broadcast {
                relay: relay.clone(),
                from: peer(1),
                frame: Utf8Bytes::from_static(r#"{"type":"message","payload":"a\nb"}"#),
            },
            RoomMessage::Send {
                relay: relay.clone(),
                from: peer(1),
                to: peer(2),
                frame: Utf8Bytes::from_static("{}"),
            },
            RoomMessage::Joined {
                relay: relay.clone(),
                peer: peer(3),
            },
            RoomMessage::Left {
                relay: relay.clone(),
                peer: peer(3),
            },
            RoomMessage::Presence {
                relay: relay.clone(),
                peers: vec![],
            },
            RoomMessage::Presence {
                relay: relay.clone(),
                peers: vec![peer(4), peer(5)],
            },
        ];
        for case in cases {
            assert_eq!(RoomMessage::decode(&case.encode(), 10), Ok(case.clone()));
        }
    }

    #[test]
    fn fleet_messages_survive_a_round_trip() {
        let relay = RelayId::random();
        for case in [
            FleetMessage::Alive {
                relay: relay.clone(),
            },
            FleetMessage::Hello {
                relay: relay.clone(),
            },
            FleetMessage::Query {
                relay: relay.clone(),
                room: "class.1-b".into(),
            },
            FleetMessage::Gone { relay },
        ] {
            assert_eq!(FleetMessage::decode(&case.encode()), Ok(case.clone()));
        }
    }

    #[test]
    fn malformed_messages_have_named_reasons() {
        let relay = RelayId::random();
        let too_many = RoomMessage::Presence {
            relay: relay.clone(),
            peers: vec![peer(1), peer(2), peer(3)],
        }
        .encode();
        let cases: [(Bytes, WireError); 7] = [
            (Bytes::from_static(b"B no newline"), WireError::NoHeader),
            (Bytes::from(format!("X {relay}\n")), WireError::UnknownKind),
            (Bytes::from_static(b"J\n"), WireError::MissingToken),
            (Bytes::from_static(b"J 12\n"), WireError::BadRelayId),
            (Bytes::from(format!("J {relay} zz\n")), WireError::BadPeerId),
            (
                Bytes::from(
                    [
                        format!("B {relay} {}\n", peer(1).as_str()).as_bytes(),
                        &[0xff],
                    ]
                    .concat(),
                ),
                WireError::FrameNotUtf8,
            ),
            (too_many, WireError::TooManyPeers),
        ];
        for (payload, expected) in cases {
            assert_eq!(
                RoomMessage::decode(&payload, 2),
                Err(expected),
                "{payload:?}"
            );
        }
    }

    #[test]
    fn room_subjects_are_single_tokens_and_distinct() {
        assert_eq!(room_subject("lobby"), "tabchain.room.lobby");
        assert_eq!(room_subject("a.b"), "tabchain.room.a%2Eb");
        assert_ne!(room_subject("a.b"), room_subject("a_b"));
        assert_eq!(room_subject("A-z_9"), "tabchain.room.A-z_9");
    }
}
