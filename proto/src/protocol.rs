//! The protocol table: every request, the response it gets, and what the server pushes.
//!
//! A connection opens with `Hello` (answered by `Welcome`); everything else is a
//! [`ClientFrame`] carrying a [`Request`] and answered by a [`ServerFrame::Response`] with the
//! same [`RequestId`]. Responses may come out of order (a `SendMessage` waits for its commit while a
//! `Ping` does not). The server also sends [`ServerFrame::Push`] at any time after the first
//! `SyncMessages`, and [`ServerFrame::Fatal`] just before it closes a connection it cannot serve.
//!
//! Variant order is the wire format: append new requests at the end, never reorder.

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::error::ErrorBody;
use crate::ids::{
    ClientMsgId, ConversationId, Epoch, RequestId, Seq, SessionToken, Timestamp, UploadId,
};

/// A request type together with the response type it gets. Implemented for every request by
/// the [`protocol!`] table below.
pub trait RequestMessage: Into<Request> {
    type Response;
    /// The request's name in logs and errors.
    const NAME: &'static str;
    /// Extracts this request's response, or `None` if the server answered with another type.
    fn response_from(response: Response) -> Option<Self::Response>;
}

macro_rules! protocol {
    ($( $(#[$doc:meta])* $name:ident -> $resp:ident; )*) => {
        /// Every request a client can make.
        #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
        pub enum Request {
            $( $(#[$doc])* $name($name), )*
        }

        /// Every response, tagged with the request it answers.
        #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
        pub enum Response {
            $( $name($resp), )*
        }

        impl Request {
            /// How many request types this build knows; a larger variant index is unknown.
            pub const COUNT: u32 = [$( stringify!($name) ),*].len() as u32;

            /// The request's name in logs and errors.
            #[must_use]
            pub fn name(&self) -> &'static str {
                match self {
                    $( Request::$name(_) => stringify!($name), )*
                }
            }
        }

        $(
            impl From<$name> for Request {
                fn from(r: $name) -> Request {
                    Request::$name(r)
                }
            }

            impl RequestMessage for $name {
                type Response = $resp;
                const NAME: &'static str = stringify!($name);

                fn response_from(response: Response) -> Option<$resp> {
                    #[allow(unreachable_patterns)]
                    match response {
                        Response::$name(r) => Some(r),
                        _ => None,
                    }
                }
            }
        )*
    };
}

protocol! {
    /// Opens a connection: the client's protocol version and name.
    Hello -> Welcome;
    /// Creates an account with its public key and logs in.
    Signup -> Session;
    /// Logs in with a password.
    Login -> Session;
    /// Logs in with the token of an earlier session (after a reconnect, on any server).
    Resume -> Session;
    /// Ends the session: its token stops working everywhere.
    Logout -> Done;
    /// Replaces the caller's published public key.
    PublishKey -> Done;
    /// Fetches a user's published public key.
    FetchKey -> UserKey;
    /// Creates a group with the caller as its first admin.
    CreateGroup -> ConversationInfo;
    /// Adds and removes members of a group (admins only); starts a new epoch.
    AmendGroup -> ConversationInfo;
    /// Opens (creating if needed) the direct conversation with another user.
    OpenDirect -> ConversationInfo;
    /// Lists the conversations the caller is a member of now.
    ListConversations -> Conversations;
    /// Stores a sealed envelope durably and answers with its sequence number.
    SendMessage -> Sent;
    /// Returns messages after the given cursors; after a complete sync, pushes begin.
    SyncMessages -> SyncBatch;
    /// Records that the caller has seen a conversation up to a sequence number.
    Ack -> Done;
    /// Fetches the caller's wrapped keys for every epoch of a conversation it belonged to.
    FetchEpochKeys -> EpochKeys;
    /// Keeps an idle connection alive.
    Ping -> Pong;
    /// Stores one encrypted chunk of an attachment for a conversation; a resend is stored once.
    UploadChunk -> Done;
    /// Fetches one chunk of an attachment of a conversation the caller is a member of.
    FetchChunk -> Chunk;
}

/// What a client sends: a request and the id its response will carry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClientFrame {
    pub id: RequestId,
    pub request: Request,
}

/// What a server sends.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ServerFrame {
    /// The answer to the request with this id.
    Response {
        id: RequestId,
        result: Result<Response, ErrorBody>,
    },
    /// Something the client did not ask for: new messages, a changed conversation.
    Push(Push),
    /// The server is closing this connection, and why.
    Fatal(ErrorBody),
}

/// Unsolicited news from the server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Push {
    /// New messages, in sequence order within each conversation, with no gaps after what the
    /// connection has already been given.
    Messages(Vec<StoredMessage>),
    /// A conversation the caller belongs (or belonged) to was created or changed.
    Conversation(ConversationInfo),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hello {
    pub version: u16,
    /// The client's name and version, for the server's logs.
    pub client: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Welcome {
    pub version: u16,
    /// The server's id (its `--id`), so a client can tell servers apart.
    pub server_id: String,
    /// The largest frame this server accepts.
    pub max_frame: u32,
    pub max_envelope: u32,
}

#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Signup {
    pub username: String,
    pub password: String,
    /// The user's public key (DER); opaque to the server.
    pub public_key: Bytes,
}

#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Login {
    pub username: String,
    pub password: String,
}

// Passwords never reach a log through `{:?}`.
impl std::fmt::Debug for Signup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signup")
            .field("username", &self.username)
            .field(
                "public_key",
                &format_args!("{} bytes", self.public_key.len()),
            )
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for Login {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Login")
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resume {
    pub token: SessionToken,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    pub username: String,
    pub token: SessionToken,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Logout {}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Done {}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublishKey {
    pub public_key: Bytes,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FetchKey {
    pub username: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserKey {
    pub username: String,
    pub public_key: Bytes,
}

/// A conversation key wrapped for one member (RSA-OAEP by the client; opaque here).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WrappedKey {
    pub username: String,
    pub wrapped: Bytes,
}

/// The key material that comes with a membership change: the new epoch's key wrapped for
/// every member, and the changing admin's signature over the change. Both are opaque to the
/// server; `keys` may be empty, and otherwise must name exactly the new member set.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EpochMaterial {
    pub keys: Vec<WrappedKey>,
    pub proof: Bytes,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateGroup {
    pub name: String,
    /// The other members; the creator is always a member and the first admin.
    pub members: Vec<String>,
    pub material: EpochMaterial,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AmendGroup {
    pub conversation: ConversationId,
    pub add: Vec<String>,
    pub remove: Vec<String>,
    /// Must be the group's current epoch plus one; otherwise `EpochConflict`.
    pub new_epoch: Epoch,
    pub material: EpochMaterial,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpenDirect {
    pub peer: String,
    /// Used only when the conversation is created by this call.
    pub material: EpochMaterial,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListConversations {}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ConversationKind {
    Group {
        name: String,
    },
    /// Exactly two members, both listed in `members`.
    Direct,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    pub username: String,
    pub admin: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConversationInfo {
    pub id: ConversationId,
    pub kind: ConversationKind,
    /// Current members, sorted by username.
    pub members: Vec<Member>,
    pub epoch: Epoch,
    /// The newest sequence number in the conversation.
    pub last_seq: Seq,
}

impl ConversationInfo {
    /// Whether `username` is a current member.
    #[must_use]
    pub fn has_member(&self, username: &str) -> bool {
        self.members.iter().any(|m| m.username == username)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Conversations {
    pub conversations: Vec<ConversationInfo>,
    /// How far the caller has acknowledged each conversation (from any of its devices);
    /// conversations never acknowledged are absent. `last_seq - acked` is the unread count.
    pub acked: Vec<Cursor>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SendMessage {
    pub conversation: ConversationId,
    pub client_msg_id: ClientMsgId,
    /// The sealed envelope; at most `MAX_ENVELOPE_LEN` bytes.
    pub envelope: Bytes,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sent {
    pub seq: Seq,
    pub sent_at: Timestamp,
}

/// A conversation and the last sequence number the client already has in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cursor {
    pub conversation: ConversationId,
    pub seq: Seq,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncMessages {
    /// Conversations missing here start from the beginning of what the caller may see.
    pub cursors: Vec<Cursor>,
    /// At most this many messages in the answer (the server may lower it).
    pub limit: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncBatch {
    /// Ordered by conversation, then sequence number.
    pub messages: Vec<StoredMessage>,
    /// More messages are waiting: sync again with the advanced cursors. While `more` is
    /// true the server sends no pushes; once a sync returns `more: false`, it does.
    pub more: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredMessage {
    pub conversation: ConversationId,
    pub seq: Seq,
    pub sender: String,
    pub client_msg_id: ClientMsgId,
    pub sent_at: Timestamp,
    pub envelope: Bytes,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ack {
    pub conversation: ConversationId,
    pub seq: Seq,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FetchEpochKeys {
    pub conversation: ConversationId,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EpochKey {
    pub epoch: Epoch,
    /// The member who generated and wrapped this epoch's key.
    pub wrapped_by: String,
    pub wrapped: Bytes,
    pub proof: Bytes,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EpochKeys {
    pub keys: Vec<EpochKey>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ping {}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pong {}

/// One encrypted chunk of an attachment (an image), opaque to the server. The uploader seals
/// each chunk under the conversation's epoch key and lists their hashes in the (signed)
/// message that refers to the upload, which it sends once every chunk is stored.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UploadChunk {
    pub conversation: ConversationId,
    pub upload: UploadId,
    /// 0-based; less than `total`.
    pub index: u32,
    /// How many chunks the upload has (at most `MAX_CHUNKS`).
    pub total: u32,
    /// At most `MAX_CHUNK_LEN` bytes.
    pub bytes: Bytes,
}

impl std::fmt::Debug for UploadChunk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UploadChunk")
            .field("conversation", &self.conversation)
            .field("upload", &self.upload)
            .field("index", &self.index)
            .field("total", &self.total)
            .field("bytes", &format_args!("{} bytes", self.bytes.len()))
            .finish()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FetchChunk {
    pub conversation: ConversationId,
    pub upload: UploadId,
    pub index: u32,
}

#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Chunk {
    pub bytes: Bytes,
}

impl std::fmt::Debug for Chunk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Chunk({} bytes)", self.bytes.len())
    }
}
