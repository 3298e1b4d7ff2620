//! Node messages: what peers say to each other inside the relay's `payload`.
//!
//! Every message has a size cap ([`super::MAX_FRAME_BYTES`]) and every list in one has a count
//! cap, checked by [`NodeMessage::decode`] before the node looks at it.

use crate::block::{Block, BlockHeader};
use crate::hash::Hash;
use crate::keys::Address;
use crate::tx::Transaction;
use crate::work::Work;
use serde::{Deserialize, Serialize};
use thiserror::Error;

pub const PROTOCOL_VERSION: u32 = 2;
/// A locator holds about 2·log2(height) hashes; 64 covers any chain we will ever see.
pub const MAX_LOCATOR_HASHES: usize = 64;
/// Headers per `headers` reply: 500 headers are about 150 KB of JSON.
pub const MAX_HEADERS_PER_MESSAGE: usize = 500;
/// Hashes per `get_blocks` request.
pub const MAX_BLOCKS_PER_REQUEST: usize = 64;
/// Transactions per `mempool` reply.
pub const MAX_TXS_PER_MESSAGE: usize = 1_000;
/// Names are for people; 32 characters is plenty and keeps the UI tidy.
pub const MAX_NAME_CHARS: usize = 32;
/// The `error` code of a node that could not take a request now (its driver paused it, or the
/// requester drew more than its reply budget): the requester asks again later, or asks others,
/// and charges nothing.
pub const BUSY_ERROR_CODE: &str = "busy";
/// The `error` code of a node that got a message from a peer whose `hello` it does not have
/// (it lost it while its driver was paused): the peer sends its hello again.
pub const HELLO_NEEDED_ERROR_CODE: &str = "hello_needed";
/// The `error` code of a node that muted the receiver: it takes none of the receiver's messages
/// now, so the receiver stops assuming that it follows the room's block announcements (see
/// `docs/protocol.md`, "Status") until its next `hello`.
pub const NOT_LISTENING_ERROR_CODE: &str = "not_listening";

/// A peer's best chain as it announces it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TipStatus {
    pub hash: Hash,
    pub height: u64,
    pub total_work: Work,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum NodeMessage {
    /// First message to every peer: who we are and which network we are on.
    Hello {
        protocol_version: u32,
        chain_id: Hash,
        genesis_hash: Hash,
        name: String,
        address: Address,
        tip: TipStatus,
        /// The sender's driver can open direct links (WebRTC); absent means false.
        #[serde(default)]
        direct_links: bool,
    },
    /// Our answer to a `hello` from another network or protocol version; we then ignore the peer.
    HelloRejected {
        reason: String,
    },
    /// Our best chain changed (sent to all peers).
    Status {
        tip: TipStatus,
    },
    /// Headers-first sync: "send me headers of your best chain after the newest of these you share".
    GetHeaders {
        locator: Vec<Hash>,
    },
    Headers {
        headers: Vec<BlockHeader>,
    },
    GetBlocks {
        hashes: Vec<Hash>,
    },
    Blocks {
        blocks: Vec<Block>,
    },
    /// A block we just mined or accepted as our new tip.
    NewBlock {
        block: Block,
    },
    NewTransaction {
        tx: Transaction,
    },
    GetMempool,
    Mempool {
        txs: Vec<Transaction>,
    },
    /// We could not handle a message of the peer's; tells why.
    Error {
        code: String,
        message: String,
    },
}

/// A message with no field but its `type` (`get_mempool`), read strictly.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OnlyType {
    #[serde(rename = "type")]
    _kind: serde::de::IgnoredAny,
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ProtocolError {
    #[error("message of {size} bytes exceeds the limit of {limit}")]
    TooLarge { size: usize, limit: usize },
    #[error("malformed message: {0}")]
    Malformed(String),
    #[error("{field} holds {count} entries, the limit is {limit}")]
    TooManyEntries {
        field: &'static str,
        count: usize,
        limit: usize,
    },
    #[error("name longer than {MAX_NAME_CHARS} characters")]
    NameTooLong,
}

impl NodeMessage {
    pub fn kind(&self) -> &'static str {
        match self {
            NodeMessage::Hello { .. } => "hello",
            NodeMessage::HelloRejected { .. } => "hello_rejected",
            NodeMessage::Status { .. } => "status",
            NodeMessage::GetHeaders { .. } => "get_headers",
            NodeMessage::Headers { .. } => "headers",
            NodeMessage::GetBlocks { .. } => "get_blocks",
            NodeMessage::Blocks { .. } => "blocks",
            NodeMessage::NewBlock { .. } => "new_block",
            NodeMessage::NewTransaction { .. } => "new_transaction",
            NodeMessage::GetMempool => "get_mempool",
            NodeMessage::Mempool { .. } => "mempool",
            NodeMessage::Error { .. } => "error",
        }
    }

    pub fn encode(&self) -> String {
        serde_json::to_string(self).expect("node messages always serialize")
    }

    /// The `type` of a message, read without building it (every other field is skipped), or
    /// `None` when it has none or is over the size limit.
    pub fn message_type(text: &str) -> Option<String> {
        #[derive(Deserialize)]
        struct TypeOnly {
            #[serde(rename = "type")]
            kind: String,
        }
        if text.len() > super::MAX_FRAME_BYTES {
            return None;
        }
        serde_json::from_str::<TypeOnly>(text)
            .ok()
            .map(|only| only.kind)
    }

    /// Whether a message asks for an answer (`get_headers`, `get_blocks`, `get_mempool`), read
    /// without building it: a driver that loses one tells the node (`Node::handle_dropped`),
    /// which tells the asker it is busy.
    /// Whether `text` is a block announcement (`new_block`), read without parsing the block: a
    /// node that drops one must say where its tip is (see `docs/protocol.md`, "Status").
    pub fn is_announcement(text: &str) -> bool {
        Self::message_type(text).as_deref() == Some("new_block")
    }

    pub fn asks_for_answer(text: &str) -> bool {
        matches!(
            Self::message_type(text).as_deref(),
            Some("get_headers" | "get_blocks" | "get_mempool")
        )
    }

    /// Parses and bounds-checks a message. Unknown types and fields are `Malformed`.
    pub fn decode(text: &str) -> Result<NodeMessage, ProtocolError> {
        if text.len() > super::MAX_FRAME_BYTES {
            return Err(ProtocolError::TooLarge {
                size: text.len(),
                limit: super::MAX_FRAME_BYTES,
            });
        }
        let message: NodeMessage = serde_json::from_str(text)
            .map_err(|error| ProtocolError::Malformed(error.to_string()))?;
        if message == NodeMessage::GetMempool {
            // serde's internally tagged enums ignore every other field of a unit variant, even
            // with `deny_unknown_fields`: read the message again as an object holding only `type`.
            serde_json::from_str::<OnlyType>(text)
                .map_err(|error| ProtocolError::Malformed(error.to_string()))?;
        }
        message.check_bounds()?;
        Ok(message)
    }

    fn check_bounds(&self) -> Result<(), ProtocolError> {
        let check = |field: &'static str, count: usize, limit: usize| {
            if count > limit {
                Err(ProtocolError::TooManyEntries {
                    field,
                    count,
                    limit,
                })
            } else {
                Ok(())
            }
        };
        match self {
            NodeMessage::Hello { name, .. } if name.chars().count() > MAX_NAME_CHARS => {
                Err(ProtocolError::NameTooLong)
            }
            NodeMessage::GetHeaders { locator } => {
                check("locator", locator.len(), MAX_LOCATOR_HASHES)
            }
            NodeMessage::Headers { headers } => {
                check("headers", headers.len(), MAX_HEADERS_PER_MESSAGE)
            }
            NodeMessage::GetBlocks { hashes } => {
                check("hashes", hashes.len(), MAX_BLOCKS_PER_REQUEST)
            }
            NodeMessage::Blocks { blocks } => check("blocks", blocks.len(), MAX_BLOCKS_PER_REQUEST),
            NodeMessage::Mempool { txs } => check("txs", txs.len(), MAX_TXS_PER_MESSAGE),
            _ => Ok(()),
        }
    }
}
