//! What two tabs say to each other to open a direct WebRTC data channel: the payload of the relay's
//! `signal` frames (`docs/protocol.md`, "Signaling").
//!
//! The relay forwards these without reading them (its `payload` is opaque); only the tabs'
//! transports encode and decode them, and never hand them to the node. One JSON object with a
//! `kind`: `{"kind":"offer","sdp":"…"}`, `{"kind":"answer","sdp":"…"}`,
//! `{"kind":"candidate","candidate":{…RTCIceCandidateInit…}}` or `{"kind":"bye"}`.

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// The largest signal, as JSON. The SDP of a data-channel-only session is about 1 KB and a
/// candidate a few hundred bytes; 16 KiB leaves room for many candidates in one offer (no
/// trickle) while a peer cannot make another tab's transport parse a megabyte per message.
pub const MAX_SIGNAL_BYTES: usize = 16 * 1024;

/// One signaling message between two tabs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Signal {
    /// The caller's session description (`RTCSessionDescription.sdp` of type `offer`).
    Offer { sdp: String },
    /// The callee's session description (type `answer`).
    Answer { sdp: String },
    /// One ICE candidate: the fields of `RTCIceCandidate.toJSON()`, passed back to
    /// `addIceCandidate`.
    Candidate { candidate: IceCandidate },
    /// The sender closes the direct link (or refuses one); the receiver drops its side.
    Bye,
}

/// An `RTCIceCandidateInit`, as `RTCIceCandidate.toJSON()` writes it. Typed rather than any JSON
/// value: a candidate is these four fields, and a page that parses arbitrary JSON values pays
/// for that code in its download.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IceCandidate {
    pub candidate: String,
    #[serde(rename = "sdpMid", default, skip_serializing_if = "Option::is_none")]
    pub sdp_mid: Option<String>,
    #[serde(
        rename = "sdpMLineIndex",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub sdp_m_line_index: Option<u16>,
    #[serde(
        rename = "usernameFragment",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub username_fragment: Option<String>,
}

/// Why a signal was refused.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum SignalError {
    /// Over [`MAX_SIGNAL_BYTES`]; not parsed at all.
    #[error("a signal is at most {MAX_SIGNAL_BYTES} bytes, this one is {bytes}")]
    TooLarge { bytes: usize },
    /// Not JSON, an unknown `kind`, a missing, unknown or mistyped field.
    #[error("malformed signal: {0}")]
    Malformed(String),
}

/// A `bye` read as an object holding only `kind`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OnlyKind {
    #[allow(dead_code)]
    kind: String,
}

impl Signal {
    /// Parses a signal, checking its size first.
    pub fn decode(text: &str) -> Result<Signal, SignalError> {
        if text.len() > MAX_SIGNAL_BYTES {
            return Err(SignalError::TooLarge { bytes: text.len() });
        }
        let malformed = |error: serde_json::Error| SignalError::Malformed(error.to_string());
        let signal: Signal = serde_json::from_str(text).map_err(malformed)?;
        if signal == Signal::Bye {
            // serde lets a unit variant of a tagged enum ignore other fields, whatever
            // `deny_unknown_fields` says; `bye` is held to the same rule as the others.
            serde_json::from_str::<OnlyKind>(text).map_err(|error| {
                SignalError::Malformed(format!("`bye` has no other field: {error}"))
            })?;
        }
        Ok(signal)
    }

    /// The JSON of a signal, refused if the receiver would refuse it, so a sender learns of an
    /// oversized offer before it sends it.
    pub fn encode(&self) -> Result<String, SignalError> {
        let text = serde_json::to_string(self).expect("signals always serialize");
        if text.len() > MAX_SIGNAL_BYTES {
            return Err(SignalError::TooLarge { bytes: text.len() });
        }
        Ok(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_kind_round_trips_in_its_documented_shape() {
        let candidate = json!({
            "candidate": "candidate:1 1 udp 2122260223 127.0.0.1 50000 typ host",
            "sdpMid": "0",
            "sdpMLineIndex": 0,
            "usernameFragment": "abcd"
        });
        let cases = [
            (
                Signal::Offer {
                    sdp: "v=0\r\n".into(),
                },
                json!({"kind": "offer", "sdp": "v=0\r\n"}),
            ),
            (
                Signal::Answer {
                    sdp: "v=0\r\n".into(),
                },
                json!({"kind": "answer", "sdp": "v=0\r\n"}),
            ),
            (
                Signal::Candidate {
                    candidate: IceCandidate {
                        candidate: "candidate:1 1 udp 2122260223 127.0.0.1 50000 typ host".into(),
                        sdp_mid: Some("0".into()),
                        sdp_m_line_index: Some(0),
                        username_fragment: Some("abcd".into()),
                    },
                },
                json!({"kind": "candidate", "candidate": candidate}),
            ),
            (Signal::Bye, json!({"kind": "bye"})),
        ];
        for (signal, wire) in cases {
            let text = signal.encode().unwrap();
            assert_eq!(
                serde_json::from_str::<serde_json::Value>(&text).unwrap(),
                wire
            );
            assert_eq!(Signal::decode(&wire.to_string()), Ok(signal));
        }
    }

    #[test]
    fn malformed_signals_are_refused_by_name() {
        let cases = [
            ("not json", r#"{"kind":"offer""#),
            ("no kind", r#"{"sdp":"v=0"}"#),
            ("unknown kind", r#"{"kind":"hello"}"#),
            ("missing sdp", r#"{"kind":"answer"}"#),
            ("sdp not a string", r#"{"kind":"offer","sdp":1}"#),
            ("unknown field", r#"{"kind":"offer","sdp":"v=0","x":1}"#),
            ("field on bye", r#"{"kind":"bye","reason":"x"}"#),
            ("kind in capitals", r#"{"kind":"Offer","sdp":"v=0"}"#),
            ("not an object", r#""offer""#),
        ];
        for (name, text) in cases {
            assert!(
                matches!(Signal::decode(text), Err(SignalError::Malformed(_))),
                "{name}: {:?}",
                Signal::decode(text)
            );
        }
        for candidate in [
            r#""candidate:1""#,
            "null",
            "[]",
            "7",
            "{}",
            r#"{"candidate":"c","extra":1}"#,
            r#"{"candidate":"c","sdpMLineIndex":"0"}"#,
        ] {
            let text = format!(r#"{{"kind":"candidate","candidate":{candidate}}}"#);
            assert!(
                matches!(Signal::decode(&text), Err(SignalError::Malformed(_))),
                "{candidate}"
            );
        }
        // What Chromium writes when a field is unknown to it: null.
        let text = r#"{"kind":"candidate","candidate":{"candidate":"c","sdpMid":null,"sdpMLineIndex":null,"usernameFragment":null}}"#;
        assert!(Signal::decode(text).is_ok());
    }

    #[test]
    fn the_size_cap_holds_on_both_sides() {
        // Exactly at the cap passes; one byte more is refused before parsing.
        let overhead = r#"{"kind":"offer","sdp":""}"#.len();
        let at_cap = Signal::Offer {
            sdp: "a".repeat(MAX_SIGNAL_BYTES - overhead),
        };
        let text = at_cap.encode().unwrap();
        assert_eq!(text.len(), MAX_SIGNAL_BYTES);
        assert_eq!(Signal::decode(&text), Ok(at_cap));

        let over = Signal::Offer {
            sdp: "a".repeat(MAX_SIGNAL_BYTES - overhead + 1),
        };
        assert_eq!(
            over.encode(),
            Err(SignalError::TooLarge {
                bytes: MAX_SIGNAL_BYTES + 1
            })
        );
        let text = format!(
            r#"{{"kind":"offer","sdp":"{}"}}"#,
            "a".repeat(MAX_SIGNAL_BYTES)
        );
        assert_eq!(
            Signal::decode(&text),
            Err(SignalError::TooLarge { bytes: text.len() })
        );
        // Not even parsed: garbage over the cap is `TooLarge`, not `Malformed`.
        let garbage = "x".repeat(MAX_SIGNAL_BYTES + 1);
        assert!(matches!(
            Signal::decode(&garbage),
            Err(SignalError::TooLarge { .. })
        ));
    }
}
