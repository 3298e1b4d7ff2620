//! The wire protocol, in two layers so the relay can forward without understanding the chain:
//! [`relay`] is the envelope between a peer and the relay, [`message`] is what nodes say to each
//! other inside it. Both are JSON; `docs/protocol.md` documents every field. [`link`] frames
//! node messages on a direct link between two tabs (a WebRTC data channel).

pub mod link;
pub mod message;
pub mod relay;

pub use message::{NodeMessage, ProtocolError, TipStatus, PROTOCOL_VERSION};
pub use relay::{ClientFrame, ClientFrameKind, PeerId, RelayErrorCode, RelayFrame};

/// The largest frame either layer accepts (1 MiB). A full block is at most 200 KB of canonical
/// bytes, about 500 KB as JSON, so one block always fits with room to spare.
pub const MAX_FRAME_BYTES: usize = 1 << 20;
