//! The relay envelope: what a peer and the relay say to each other. The chain message inside
//! (`payload`) is opaque to the relay: it is kept as raw JSON and forwarded without re-parsing.

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use std::fmt;

/// A peer id given by the relay: 32 lowercase hex digits of randomness.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PeerId(String);

impl PeerId {
    pub const LEN: usize = 32;

    pub fn from_bytes(bytes: [u8; 16]) -> PeerId {
        PeerId(hex::encode(bytes))
    }

    /// The id the relay gives a connection that presents `token` (`/ws/<room>?resume=<token>`):
    /// the first 16 bytes of `SHA-256("tabchain peer id\0" || token)`. A tab keeps its id across
    /// reconnections this way, and can know it before it connects; the hash is one-way, so a peer
    /// id seen in a room never yields the token that would claim it.
    pub fn from_resume_token(token: &[u8; RESUME_TOKEN_BYTES]) -> PeerId {
        use sha2::{Digest, Sha256};
        let digest = Sha256::new()
            .chain_update(RESUME_ID_DOMAIN)
            .chain_update(token)
            .finalize();
        let mut id = [0u8; 16];
        id.copy_from_slice(&digest[..16]);
        PeerId::from_bytes(id)
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
    pub fn short(&self) -> &str {
        &self.0[..8]
    }
}

impl TryFrom<String> for PeerId {
    type Error = String;
    fn try_from(text: String) -> Result<PeerId, String> {
        if text.len() == PeerId::LEN && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        {
            Ok(PeerId(text))
        } else {
            Err(format!("a peer id is {} lowercase hex digits", PeerId::LEN))
        }
    }
}

impl From<PeerId> for String {
    fn from(id: PeerId) -> String {
        id.0
    }
}

impl fmt::Display for PeerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for PeerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PeerId({})", self.short())
    }
}

/// A resume token is a 256-bit secret the tab draws at random: too many to guess one in use.
pub const RESUME_TOKEN_BYTES: usize = 32;
/// Separates this hash from every other SHA-256 of the protocol.
const RESUME_ID_DOMAIN: &[u8] = b"tabchain peer id\0";

/// Reads the `resume` query parameter: exactly 64 lowercase hex digits, like every hex value on
/// the wire; anything else is `None` (the relay answers HTTP 400 `bad_resume_token`).
pub fn parse_resume_token(text: &str) -> Option<[u8; RESUME_TOKEN_BYTES]> {
    if text.len() != 2 * RESUME_TOKEN_BYTES
        || !text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    {
        return None;
    }
    let mut token = [0u8; RESUME_TOKEN_BYTES];
    hex::decode_to_slice(text, &mut token).ok()?;
    Some(token)
}

/// Room names: 1 to 64 characters of `a-z A-Z 0-9 - _ .`.
pub fn valid_room_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// The room a peer joins when the URL names none.
pub const DEFAULT_ROOM: &str = "lobby";

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClientFrameKind {
    /// Deliver to every other peer in the room.
    Broadcast,
    /// Deliver to the peer named in `to`.
    Send,
    /// Deliver to the peer named in `to`, as a `signal` frame: WebRTC signaling between two tabs
    /// (offers, answers, ICE candidates). Routed like `send`; a distinct type so the receiving
    /// tab's transport can take it out before its node sees it. The payload is a
    /// [`crate::protocol::signal::Signal`] by convention; the relay does not look.
    Signal,
}

/// A frame from a peer to the relay.
/// `{"type":"broadcast","payload":{...}}`, `{"type":"send","to":"<peer id>","payload":{...}}` or
/// `{"type":"signal","to":"<peer id>","payload":{...}}`.
#[derive(Debug, Serialize, Deserialize)]
pub struct ClientFrame {
    #[serde(rename = "type")]
    pub kind: ClientFrameKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<PeerId>,
    pub payload: Box<RawValue>,
}

impl ClientFrame {
    pub fn broadcast(payload: Box<RawValue>) -> ClientFrame {
        ClientFrame {
            kind: ClientFrameKind::Broadcast,
            to: None,
            payload,
        }
    }
    pub fn send(to: PeerId, payload: Box<RawValue>) -> ClientFrame {
        ClientFrame {
            kind: ClientFrameKind::Send,
            to: Some(to),
            payload,
        }
    }
    pub fn signal(to: PeerId, payload: Box<RawValue>) -> ClientFrame {
        ClientFrame {
            kind: ClientFrameKind::Signal,
            to: Some(to),
            payload,
        }
    }
}

/// Why the relay refused something. Sent in an `error` frame, or as the reason of a close frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RelayErrorCode {
    /// The frame is not a valid client frame (bad JSON, unknown type, missing field).
    MalformedEnvelope,
    /// `send` or `signal` named a peer that is not in the room.
    UnknownPeer,
    /// The frame exceeded the size limit; the connection is closed.
    FrameTooLarge,
    /// The peer sends faster than its rate limit; the frame was dropped.
    RateLimited,
    /// The room has as many peers as allowed.
    RoomFull,
    /// The relay has as many connections as allowed.
    ServerFull,
    /// The room name is not valid.
    InvalidRoom,
    /// Too many malformed frames; the connection is closed.
    TooManyErrors,
    /// The peer read too slowly and its queue filled; the connection is closed.
    SlowConsumer,
    /// A newer connection presented the same resume token and took this peer id; this one is
    /// closed (1008). A client told this must not reconnect with the token on its own, or two
    /// tabs sharing one token would take turns replacing each other.
    Replaced,
}

impl RelayErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            RelayErrorCode::MalformedEnvelope => "malformed_envelope",
            RelayErrorCode::UnknownPeer => "unknown_peer",
            RelayErrorCode::FrameTooLarge => "frame_too_large",
            RelayErrorCode::RateLimited => "rate_limited",
            RelayErrorCode::RoomFull => "room_full",
            RelayErrorCode::ServerFull => "server_full",
            RelayErrorCode::InvalidRoom => "invalid_room",
            RelayErrorCode::TooManyErrors => "too_many_errors",
            RelayErrorCode::SlowConsumer => "slow_consumer",
            RelayErrorCode::Replaced => "replaced",
        }
    }
}

/// A STUN or TURN server for the tabs' direct links, as the relay hands it out in `welcome`:
/// the shape of WebRTC's `RTCIceServer`, so a tab passes it to `RTCPeerConnection` as it is.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IceServer {
    /// `stun:`, `turn:` or `turns:` URLs.
    pub urls: Vec<String>,
    /// For TURN only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// For TURN only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential: Option<String>,
}

/// A frame from the relay to a peer.
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum RelayFrame {
    /// First frame on a connection: who we are and who is already in the room.
    Welcome {
        peer_id: PeerId,
        room: String,
        peers: Vec<PeerId>,
        /// STUN/TURN servers for direct links; empty when the relay names none (tabs then connect
        /// directly only where host candidates reach: one machine, one LAN).
        ice_servers: Vec<IceServer>,
    },
    PeerJoined {
        peer_id: PeerId,
    },
    PeerLeft {
        peer_id: PeerId,
    },
    /// A payload another peer sent to us (by broadcast or send).
    Message {
        from: PeerId,
        payload: Box<RawValue>,
    },
    /// A signaling payload another peer sent to us (by `signal`): for the transport that sets up
    /// direct links, not for the node.
    Signal {
        from: PeerId,
        payload: Box<RawValue>,
    },
    Error {
        code: RelayErrorCode,
        message: String,
    },
}

impl RelayFrame {
    /// Builds the JSON of a `message` frame around raw payload JSON without parsing it; the relay
    /// forwards with this. `payload` must be the raw JSON text of a value (as it arrived).
    pub fn message_json(from: &PeerId, payload: &RawValue) -> String {
        Self::forwarded_json("message", from, payload)
    }

    /// Builds the JSON of a `signal` frame the same way as [`RelayFrame::message_json`].
    pub fn signal_json(from: &PeerId, payload: &RawValue) -> String {
        Self::forwarded_json("signal", from, payload)
    }

    fn forwarded_json(kind: &str, from: &PeerId, payload: &RawValue) -> String {
        let raw = payload.get();
        let mut out = String::with_capacity(raw.len() + 64);
        out.push_str(r#"{"type":""#);
        out.push_str(kind);
        out.push_str(r#"","from":""#);
        out.push_str(from.as_str());
        out.push_str(r#"","payload":"#);
        out.push_str(raw);
        out.push('}');
        out
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("relay frames always serialize")
    }

    /// Parses a frame from the relay. `serde_json` cannot keep a raw payload inside an
    /// internally tagged enum, so the frame is read into a flat struct first.
    pub fn from_json(text: &str) -> Result<RelayFrame, serde_json::Error> {
        #[derive(Deserialize)]
        struct Flat {
            #[serde(rename = "type")]
            kind: String,
            peer_id: Option<PeerId>,
            room: Option<String>,
            peers: Option<Vec<PeerId>>,
            ice_servers: Option<Vec<IceServer>>,
            from: Option<PeerId>,
            payload: Option<Box<RawValue>>,
            code: Option<RelayErrorCode>,
            message: Option<String>,
        }
        use serde::de::Error;
        let flat: Flat = serde_json::from_str(text)?;
        let missing = |field: &str| serde_json::Error::custom(format!("missing field `{field}`"));
        Ok(match flat.kind.as_str() {
            "welcome" => RelayFrame::Welcome {
                peer_id: flat.peer_id.ok_or_else(|| missing("peer_id"))?,
                room: flat.room.ok_or_else(|| missing("room"))?,
                peers: flat.peers.ok_or_else(|| missing("peers"))?,
                // Relays from before direct links send none: no servers.
                ice_servers: flat.ice_servers.unwrap_or_default(),
            },
            "peer_joined" => RelayFrame::PeerJoined {
                peer_id: flat.peer_id.ok_or_else(|| missing("peer_id"))?,
            },
            "peer_left" => RelayFrame::PeerLeft {
                peer_id: flat.peer_id.ok_or_else(|| missing("peer_id"))?,
            },
            "message" => RelayFrame::Message {
                from: flat.from.ok_or_else(|| missing("from"))?,
                payload: flat.payload.ok_or_else(|| missing("payload"))?,
            },
            "signal" => RelayFrame::Signal {
                from: flat.from.ok_or_else(|| missing("from"))?,
                payload: flat.payload.ok_or_else(|| missing("payload"))?,
            },
            "error" => RelayFrame::Error {
                code: flat.code.ok_or_else(|| missing("code"))?,
                message: flat.message.unwrap_or_default(),
            },
            other => {
                return Err(serde_json::Error::custom(format!(
                    "unknown frame type `{other}`"
                )))
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(text: &str) -> Box<RawValue> {
        RawValue::from_string(text.to_owned()).unwrap()
    }

    #[test]
    fn signal_frames_keep_their_own_type_and_the_payload_untouched() {
        let peer = PeerId::from_bytes([0xab; 16]);
        let payload = raw(r#"{"kind":"offer", "sdp":"v=0\r\n"}"#);
        let built = RelayFrame::signal_json(&peer, &payload);
        assert_eq!(
            built,
            format!(
                r#"{{"type":"signal","from":"{peer}","payload":{{"kind":"offer", "sdp":"v=0\r\n"}}}}"#
            )
        );
        match RelayFrame::from_json(&built).unwrap() {
            RelayFrame::Signal { from, payload: got } => {
                assert_eq!(from, peer);
                assert_eq!(got.get(), payload.get(), "byte for byte, spacing included");
            }
            other => panic!("expected a signal, got {other:?}"),
        }
        // The serde form and the builder agree, and a `message` stays a `message`.
        let frame = RelayFrame::Signal {
            from: peer.clone(),
            payload: payload.clone(),
        };
        assert_eq!(frame.to_json(), built);
        assert!(matches!(
            RelayFrame::from_json(&RelayFrame::message_json(&peer, &payload)),
            Ok(RelayFrame::Message { .. })
        ));
        assert!(RelayFrame::from_json(r#"{"type":"signal","payload":{}}"#).is_err());
    }

    #[test]
    fn welcome_carries_ice_servers_and_an_old_welcome_has_none() {
        let peer = PeerId::from_bytes([2; 16]);
        let welcome = RelayFrame::Welcome {
            peer_id: peer.clone(),
            room: "lobby".into(),
            peers: vec![],
            ice_servers: vec![
                IceServer {
                    urls: vec!["stun:stun.example.org:3478".into()],
                    username: None,
                    credential: None,
                },
                IceServer {
                    urls: vec!["turn:turn.example.org:3478?transport=udp".into()],
                    username: Some("tab".into()),
                    credential: Some("secret".into()),
                },
            ],
        };
        let text = welcome.to_json();
        assert_eq!(
            text,
            format!(
                r#"{{"type":"welcome","peer_id":"{peer}","room":"lobby","peers":[],"ice_servers":[{{"urls":["stun:stun.example.org:3478"]}},{{"urls":["turn:turn.example.org:3478?transport=udp"],"username":"tab","credential":"secret"}}]}}"#
            )
        );
        let RelayFrame::Welcome { ice_servers, .. } = RelayFrame::from_json(&text).unwrap() else {
            panic!("not a welcome");
        };
        let RelayFrame::Welcome {
            ice_servers: expected,
            ..
        } = welcome
        else {
            unreachable!()
        };
        assert_eq!(ice_servers, expected);
        // An empty list is written out, not left away.
        let empty = RelayFrame::Welcome {
            peer_id: peer.clone(),
            room: "lobby".into(),
            peers: vec![],
            ice_servers: vec![],
        };
        assert!(empty.to_json().ends_with(r#""ice_servers":[]}"#));
        let old = format!(r#"{{"type":"welcome","peer_id":"{peer}","room":"lobby","peers":[]}}"#);
        match RelayFrame::from_json(&old).unwrap() {
            RelayFrame::Welcome { ice_servers, .. } => assert!(ice_servers.is_empty()),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn peer_ids_from_resume_tokens_match_the_test_vectors() {
        // Computed independently: python3 -c "import hashlib; print(hashlib.sha256(
        //   b'tabchain peer id\x00' + bytes(range(32))).digest()[:16].hex())"
        let cases = [
            ([0u8; 32], "a2d7b8a858870eaa98242e46c1cb7973"),
            (
                std::array::from_fn(|i| i as u8),
                "51d60fdd6b44dfe6ac9cef5c0356014b",
            ),
        ];
        for (token, id) in cases {
            assert_eq!(PeerId::from_resume_token(&token).as_str(), id);
            assert_eq!(parse_resume_token(&hex::encode(token)), Some(token));
        }
    }

    #[test]
    fn resume_tokens_are_64_lowercase_hex_digits() {
        let good = "00".repeat(31) + "ff";
        assert!(parse_resume_token(&good).is_some());
        for bad in [
            String::new(),
            "00".repeat(31),
            "00".repeat(33),
            "00".repeat(31) + "FF",
            "00".repeat(31) + "0g",
            "00".repeat(31) + " f",
            format!("0x{}", "00".repeat(31)),
        ] {
            assert_eq!(parse_resume_token(&bad), None, "{bad:?}");
        }
    }

    #[test]
    fn client_signal_frames_name_their_receiver() {
        let to = PeerId::from_bytes([1; 16]);
        let text =
            serde_json::to_string(&ClientFrame::signal(to.clone(), raw(r#"{"kind":"bye"}"#)))
                .unwrap();
        assert_eq!(
            text,
            format!(r#"{{"type":"signal","to":"{to}","payload":{{"kind":"bye"}}}}"#)
        );
        let parsed: ClientFrame = serde_json::from_str(&text).unwrap();
        assert_eq!(parsed.kind, ClientFrameKind::Signal);
        assert_eq!(parsed.to, Some(to));
    }
}
