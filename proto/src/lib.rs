//! FastChat's wire protocol: identifiers, the request/response table, server pushes, error
//! codes and length-delimited framing. Nothing here does I/O or needs a runtime.
//!
//! Invariants:
//! - The protocol is declared once, in [`protocol`]: each request type names its response
//!   type, so a client call is `link.request(SendMessage { .. }).await?` with `Sent` implied.
//! - Envelopes are opaque bytes here and on the server; only clients seal and open them.
//! - A frame is a 4-byte big-endian length followed by a postcard-encoded body, never longer
//!   than [`frame::MAX_FRAME_LEN`]; binary payloads travel as raw bytes, never base64.

pub mod balancer;
pub mod error;
pub mod frame;
pub mod ids;
pub mod protocol;
pub mod validate;

pub use error::{ErrorBody, ErrorCode};
pub use frame::{FrameError, MAX_FRAME_LEN};
pub use ids::{
    ClientMsgId, ConversationId, Epoch, RequestId, Seq, SessionToken, Timestamp, UploadId,
};
pub use protocol::*;

/// The protocol version this build speaks. A server refuses a `Hello` with any other.
pub const PROTOCOL_VERSION: u16 = 1;

/// The largest sealed envelope a server accepts in one `SendMessage`. Keeps every frame well
/// under [`MAX_FRAME_LEN`]; images travel as chunks ([`UploadChunk`]) beside a small envelope.
pub const MAX_ENVELOPE_LEN: usize = 512 * 1024;

/// How much of an attachment one chunk carries before encryption.
pub const CHUNK_PLAINTEXT: usize = 256 * 1024;

/// The largest encrypted chunk a server accepts (a Fernet token of [`CHUNK_PLAINTEXT`]
/// bytes, with room to spare).
pub const MAX_CHUNK_LEN: usize = CHUNK_PLAINTEXT + 1024;

/// The most chunks one upload may have (at [`CHUNK_PLAINTEXT`] each, 64 MiB).
pub const MAX_CHUNKS: u32 = 256;

/// The largest public key (DER) a user may publish.
pub const MAX_PUBLIC_KEY_LEN: usize = 4096;

/// The most members a conversation may have.
pub const MAX_MEMBERS: usize = 1000;
