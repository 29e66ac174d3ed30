//! The one interface to the server's database. All SQL lives behind it, in one module per
//! backend ([`sqlite`] now; PostgreSQL is a second implementation of the same trait).
//!
//! Invariants every backend keeps:
//! - A message is assigned `last_seq + 1` of its conversation and the counter is written back
//!   in the same transaction, so sequence numbers are gap-free and in commit order.
//! - `(conversation, sender, client_msg_id)` is unique: a resend returns the original's
//!   sequence number and is not stored again.
//! - Membership is kept as stretches (`joined_after < seq <= left_after`), and every read of
//!   messages for a user goes through them: nobody reads from before joining or after leaving.
//! - Membership changes and appends to the same conversation are serialised, so the audience
//!   returned with an append is exactly who may see those messages.
//! - Nothing is half-stored: each method is one transaction.
//! - A backend shared by several servers reports what the others committed through
//!   [`Store::changes`]; those reports are hints, and the database stays the truth.

mod membership;
pub mod postgres;
pub mod rules;
pub mod sqlite;

use std::collections::HashMap;

use async_trait::async_trait;
use bytes::Bytes;
use fastchat_proto::{
    AmendGroup, ClientMsgId, ConversationId, ConversationInfo, Cursor, EpochKey, EpochMaterial,
    ErrorBody, ErrorCode, Sent, Seq, StoredMessage, Timestamp, UploadChunk, UploadId,
};

/// A user's row id. Never leaves the server: the wire names users by username.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct UserId(pub i64);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: UserId,
    pub username: String,
}

#[derive(Debug, Clone)]
pub struct Credentials {
    pub user: User,
    /// An argon2id PHC string.
    pub password_hash: String,
}

/// A message to append, already checked for size by the caller.
#[derive(Debug, Clone)]
pub struct NewMessage {
    pub conversation: ConversationId,
    pub sender: User,
    pub client_msg_id: ClientMsgId,
    pub envelope: Bytes,
}

/// What became of one message of an appended batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Appended {
    /// Stored now, with this sequence number.
    Stored(StoredMessage),
    /// Stored before under the same client message id; nothing new was written.
    Duplicate(Sent),
}

impl Appended {
    #[must_use]
    pub fn sent(&self) -> Sent {
        match self {
            Appended::Stored(m) => Sent {
                seq: m.seq,
                sent_at: m.sent_at,
            },
            Appended::Duplicate(sent) => *sent,
        }
    }
}

/// The result of appending a batch in one transaction.
#[derive(Debug, Default)]
pub struct AppendOutcome {
    /// One entry per message of the batch, in order. A refused message (not a member, ...)
    /// does not stop the others.
    pub results: Vec<Result<Appended, ErrorBody>>,
    /// For each conversation that got new messages: its members when they were committed.
    pub audiences: HashMap<ConversationId, Vec<UserId>>,
}

/// A conversation after a change, and everyone who should hear of it (old and new members).
#[derive(Debug, Clone)]
pub struct Changed {
    pub info: ConversationInfo,
    pub notify: Vec<UserId>,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The request is refused for a reason the client is told (unknown user, not an admin,
    /// name taken, ...).
    #[error("{0}")]
    Refused(ErrorBody),
    /// The database could not be reached or is busy; nothing was applied.
    #[error("database unavailable: {0}")]
    Unavailable(#[source] sqlx::Error),
    #[error("database error: {0}")]
    Database(#[source] sqlx::Error),
    #[error("cannot run migrations: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

impl StoreError {
    pub(crate) fn refused(code: ErrorCode, message: impl Into<String>) -> Self {
        StoreError::Refused(ErrorBody::new(code, message))
    }

    /// What the client is told. Database details stay in the server's log.
    #[must_use]
    pub fn to_error_body(&self) -> ErrorBody {
        match self {
            StoreError::Refused(body) => body.clone(),
            StoreError::Unavailable(_) => ErrorBody::new(
                ErrorCode::Unavailable,
                "the database is unavailable; try again",
            ),
            StoreError::Database(_) | StoreError::Migrate(_) => {
                ErrorBody::new(ErrorCode::Internal, "internal database error")
            }
        }
    }
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        match &e {
            sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::WorkerCrashed => StoreError::Unavailable(e),
            // SQLITE_BUSY / SQLITE_LOCKED: another writer held the database past the busy
            // timeout. Transient; the client retries.
            sqlx::Error::Database(db) if is_transient(db.code().as_deref()) => {
                StoreError::Unavailable(e)
            }
            _ => StoreError::Database(e),
        }
    }
}

pub(crate) fn unknown_user(name: &str) -> StoreError {
    StoreError::refused(ErrorCode::UnknownUser, format!("no user named {name}"))
}

pub(crate) fn unknown_conversation(id: ConversationId) -> StoreError {
    StoreError::refused(
        ErrorCode::UnknownConversation,
        format!("no conversation {}", id.0),
    )
}

/// Database error codes that mean "not now" rather than "never": the request was not
/// applied and may be retried.
fn is_transient(code: Option<&str>) -> bool {
    let Some(code) = code else { return false };
    // SQLite: SQLITE_BUSY (5), SQLITE_LOCKED (6).
    matches!(code, "5" | "6")
        // PostgreSQL: connection exceptions (08), insufficient resources (53), operator
        // intervention such as a shutdown or restart (57P01-57P03), serialization failures
        // and deadlocks (40001, 40P01).
        || code.starts_with("08")
        || code.starts_with("53")
        || matches!(code, "57P01" | "57P02" | "57P03" | "40001" | "40P01")
}

pub type StoreResult<T> = Result<T, StoreError>;

/// What other servers sharing the database have committed. Only hints: a receiver re-reads
/// the database, so a lost or duplicated change costs nothing but a read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// New messages in these conversations.
    Messages(Vec<ConversationId>),
    /// A conversation was created or its membership changed; `notify` are the users to tell
    /// (old and new members).
    Conversation {
        conversation: ConversationId,
        notify: Vec<UserId>,
    },
    /// Changes may have been missed (the listener reconnected): re-read everything.
    Resync,
}

/// Everything the server persists. Implementations are cheap to share (`Arc<dyn Store>`).
#[async_trait]
pub trait Store: Send + Sync + std::fmt::Debug + 'static {
    /// Creates an account. `UsernameTaken` if the name exists.
    async fn create_user(
        &self,
        username: &str,
        password_hash: &str,
        public_key: &[u8],
        now: Timestamp,
    ) -> StoreResult<User>;

    async fn credentials(&self, username: &str) -> StoreResult<Option<Credentials>>;

    async fn create_session(
        &self,
        user: UserId,
        token_hash: &[u8; 32],
        now: Timestamp,
        expires_at: Timestamp,
    ) -> StoreResult<()>;

    /// The user of an unexpired session.
    async fn session_user(
        &self,
        token_hash: &[u8; 32],
        now: Timestamp,
    ) -> StoreResult<Option<User>>;

    async fn delete_session(&self, token_hash: &[u8; 32]) -> StoreResult<()>;

    async fn set_public_key(&self, user: UserId, public_key: &[u8]) -> StoreResult<()>;

    async fn public_key(&self, username: &str) -> StoreResult<Option<Bytes>>;

    /// Creates a group of `creator` (its first admin) and `members`, at epoch 1.
    async fn create_group(
        &self,
        creator: &User,
        name: &str,
        members: &[String],
        material: &EpochMaterial,
        now: Timestamp,
    ) -> StoreResult<Changed>;

    /// Adds and removes members (admins only) and starts epoch `new_epoch`.
    async fn amend_group(
        &self,
        by: &User,
        amend: &AmendGroup,
        now: Timestamp,
    ) -> StoreResult<Changed>;

    /// The direct conversation of `user` and `peer`, created (at epoch 1) if there is none;
    /// `notify` is empty when it existed already.
    async fn open_direct(
        &self,
        user: &User,
        peer: &str,
        material: &EpochMaterial,
        now: Timestamp,
    ) -> StoreResult<Changed>;

    /// The conversations `user` is a member of now.
    async fn conversations(&self, user: UserId) -> StoreResult<Vec<ConversationInfo>>;

    /// Every conversation `user` is or was a member of.
    async fn visible_conversations(&self, user: UserId) -> StoreResult<Vec<ConversationId>>;

    /// Appends a batch of messages in one transaction (group commit).
    async fn append(&self, batch: &[NewMessage], now: Timestamp) -> StoreResult<AppendOutcome>;

    /// Messages of `conversation` after `after` that `user` may see, oldest first.
    async fn messages_after(
        &self,
        user: UserId,
        conversation: ConversationId,
        after: Seq,
        limit: u32,
    ) -> StoreResult<Vec<StoredMessage>>;

    /// Records how far `user` has read; never moves backwards.
    async fn ack(&self, user: UserId, conversation: ConversationId, seq: Seq) -> StoreResult<()>;

    /// How far `user` has acknowledged each conversation.
    async fn acks(&self, user: UserId) -> StoreResult<Vec<Cursor>>;

    /// A conversation's current state.
    async fn conversation(&self, conversation: ConversationId) -> StoreResult<ConversationInfo>;

    /// The current members of a conversation.
    async fn member_ids(&self, conversation: ConversationId) -> StoreResult<Vec<UserId>>;

    /// Closes the connections, waiting for running queries.
    async fn close(&self);

    /// The feed of other servers' changes, for a backend that several servers share; taken
    /// once, by the server at start. `None` for a backend only one server can use.
    fn changes(&self) -> Option<tokio::sync::mpsc::Receiver<Change>> {
        None
    }

    /// `user`'s wrapped key for every epoch of `conversation` it was a member of.
    async fn epoch_keys(
        &self,
        user: UserId,
        conversation: ConversationId,
    ) -> StoreResult<Vec<EpochKey>>;

    /// Stores a chunk of an attachment; a resend (same conversation, upload and index) is
    /// stored once. The caller checked that `uploader` is a member.
    async fn put_chunk(
        &self,
        uploader: UserId,
        chunk: &UploadChunk,
        now: Timestamp,
    ) -> StoreResult<()>;

    /// Deletes the chunks of uploads that never completed and saw no chunk since `before`;
    /// how many chunks went.
    async fn purge_uploads(&self, before: Timestamp) -> StoreResult<u64>;

    /// A stored chunk, if there is one.
    async fn chunk(
        &self,
        conversation: ConversationId,
        upload: UploadId,
        index: u32,
    ) -> StoreResult<Option<Bytes>>;
}
