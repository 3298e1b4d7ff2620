//! The wire protocol, in two layers so the relay can forward without understanding the chain:
//! [`relay`] is the envelope between a peer and the relay, [`message`] is what nodes say to each
//! other inside it. Both are JSON; `docs/protocol.md` documents every field. [`signal`] is what
//! tabs say to each other inside the relay's `signal` frames to open direct WebRTC links; neither
//! the relay nor the node reads it. [`link`] frames node messages on such a link (a WebRTC data
//! channel).

pub mod link;
pub mod message;
pub mod relay;
pub mod signal;

pub use message::{NodeMessage, ProtocolError, TipStatus, PROTOCOL_VERSION};
pub use relay::{ClientFrame, ClientFrameKind, IceServer, PeerId, RelayErrorCode, RelayFrame};
pub use signal::{Signal, SignalError, MAX_SIGNAL_BYTES};

/// The largest frame either layer accepts (1 MiB). A full block is at most 200 KB of canonical
/// bytes, about 500 KB as JSON, so one block always fits with room to spare.
pub const MAX_FRAME_BYTES: usize = 1 << 20;
/// Room for the relay's own wrapping around a payload (`{"type":"message","from":"…",…}`): a
/// node keeps what it sends at most `MAX_FRAME_BYTES` minus this, and the relay's queues and
/// byte budgets allow this much beyond the largest message.
pub const ENVELOPE_ALLOWANCE_BYTES: usize = 1_024;
