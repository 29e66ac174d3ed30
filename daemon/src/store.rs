//! The profile's local SQLite database: the session, pinned keys, conversations and their
//! cursors, decrypted history, and the outbox. The only module with SQL in it; every
//! statement binds its parameters.
//!
//! Durability: WAL with `synchronous = FULL`, so an outbox row written before `send`
//! returns survives a crash of the daemon or the machine, and a message is marked received
//! in the same transaction that stores it (nothing is skipped or stored twice after a crash).

use std::path::Path;
use std::time::Duration;

use fastchat_api::{ConversationRef, MemberInfo, MessageKind};
use fastchat_proto::{ClientMsgId, ConversationId, SessionToken};
use sqlx::Row;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow,
    SqliteSynchronous,
};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations/daemon/sqlite");

pub type Result<T> = std::result::Result<T, sqlx::Error>;

#[derive(Debug, Clone)]
pub struct Store {
    pool: SqlitePool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConvKind {
    Group,
    Direct,
}

impl ConvKind {
    fn as_str(self) -> &'static str {
        match self {
            ConvKind::Group => "group",
            ConvKind::Direct => "direct",
        }
    }
}

/// A conversation as this profile knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conversation {
    pub id: ConversationId,
    pub kind: ConvKind,
    /// The group's name, or the other member of a direct conversation.
    pub name: String,
    pub epoch: u32,
    pub members: Vec<MemberInfo>,
    pub last_seq: u64,
    pub received: u64,
    pub read_seq: u64,
    pub current: bool,
}

impl Conversation {
    #[must_use]
    pub fn reference(&self) -> ConversationRef {
        match self.kind {
            ConvKind::Group => ConversationRef::Group(self.name.clone()),
            ConvKind::Direct => ConversationRef::User(self.name.clone()),
        }
    }

    #[must_use]
    pub fn unread(&self) -> u64 {
        self.last_seq.saturating_sub(self.read_seq)
    }
}

/// A stored, decrypted message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredMessage {
    pub conversation: ConversationId,
    pub seq: u64,
    pub sender: String,
    pub client_msg_id: ClientMsgId,
    pub sent_at_ms: i64,
    pub kind: MessageKind,
    pub body: Option<String>,
    pub image_path: Option<String>,
}

/// A received envelope kept sealed until the identity key is unlocked.
#[derive(Debug, Clone)]
pub struct SealedMessage {
    pub conversation: ConversationId,
    pub seq: u64,
    pub sender: String,
    pub client_msg_id: ClientMsgId,
    pub sent_at_ms: i64,
    pub envelope: Vec<u8>,
}

/// What became of a message that arrived.
#[derive(Debug, Clone)]
pub enum Received {
    /// Verified and decrypted.
    Message(StoredMessage),
    /// Kept for when the identity key is unlocked.
    Sealed(SealedMessage),
    /// Already stored (our own message, stored when the server acknowledged it).
    Known {
        conversation: ConversationId,
        seq: u64,
    },
    /// Failed verification: never shown, counted.
    Rejected {
        conversation: ConversationId,
        seq: u64,
        sender: String,
        reason: String,
    },
}

/// A send waiting for the server's acknowledgement.
#[derive(Debug, Clone)]
pub struct Outgoing {
    pub client_msg_id: ClientMsgId,
    pub conversation: ConversationId,
    pub envelope: Vec<u8>,
    pub kind: MessageKind,
    pub body: Option<String>,
    pub image_path: Option<String>,
}

fn kind_str(kind: MessageKind) -> &'static str {
    match kind {
        MessageKind::Text => "text",
        MessageKind::Image => "image",
    }
}

fn parse_kind(s: &str) -> MessageKind {
    if s == "image" {
        MessageKind::Image
    } else {
        MessageKind::Text
    }
}

fn msg_id(bytes: &[u8]) -> std::result::Result<ClientMsgId, sqlx::Error> {
    <[u8; 16]>::try_from(bytes)
        .map(ClientMsgId)
        .map_err(|_| sqlx::Error::Decode("client message id is not 16 bytes".into()))
}

fn u64_of(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

fn i64_of(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn conversation_from(row: &SqliteRow) -> Result<Conversation> {
    let members: String = row.try_get("members")?;
    let kind: String = row.try_get("kind")?;
    Ok(Conversation {
        id: ConversationId(row.try_get("id")?),
        kind: if kind == "group" {
            ConvKind::Group
        } else {
            ConvKind::Direct
        },
        name: row.try_get("name")?,
        epoch: u32::try_from(row.try_get::<i64, _>("epoch")?).unwrap_or(0),
        members: serde_json::from_str(&members).map_err(|e| sqlx::Error::Decode(e.into()))?,
        last_seq: u64_of(row.try_get("last_seq")?),
        received: u64_of(row.try_get("received")?),
        read_seq: u64_of(row.try_get("read_seq")?),
        current: row.try_get("current")?,
    })
}

fn message_from(row: &SqliteRow) -> Result<StoredMessage> {
    Ok(StoredMessage {
        conversation: ConversationId(row.try_get("conversation")?),
        seq: u64_of(row.try_get("seq")?),
        sender: row.try_get("sender")?,
        client_msg_id: msg_id(row.try_get::<&[u8], _>("client_msg_id")?)?,
        sent_at_ms: row.try_get("sent_at")?,
        kind: parse_kind(row.try_get("kind")?),
        body: row.try_get("body")?,
        image_path: row.try_get("image_path")?,
    })
}

impl Store {
    /// Opens (creating if needed) the database at `path` and brings its schema up to date.
    pub async fn open(path: &Path) -> Result<Store> {
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(5));
        // One connection: the daemon's traffic is one person's, and a single writer never
        // waits on a lock.
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options)
            .await?;
        MIGRATOR.run(&pool).await?;
        Ok(Store { pool })
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }

    // --- the account ---

    pub async fn account(&self) -> Result<Option<(String, Option<SessionToken>)>> {
        let row = sqlx::query("SELECT username, token FROM account WHERE id = 1")
            .fetch_optional(&self.pool)
            .await?;
        row.map(|row| {
            let token: Option<Vec<u8>> = row.try_get("token")?;
            let token = token
                .and_then(|t| <[u8; 32]>::try_from(t.as_slice()).ok())
                .map(SessionToken);
            Ok((row.try_get("username")?, token))
        })
        .transpose()
    }

    /// Records a login. A different user than before starts from an empty history.
    pub async fn set_account(&self, username: &str, token: &SessionToken) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        let previous: Option<String> =
            sqlx::query_scalar("SELECT username FROM account WHERE id = 1")
                .fetch_optional(&mut *tx)
                .await?;
        if previous.as_deref().is_some_and(|p| p != username) {
            for table in ["messages", "sealed", "rejected", "outbox", "conversations"] {
                // Table names come from the list above, never from input.
                sqlx::query(sqlx::AssertSqlSafe(format!("DELETE FROM {table}")))
                    .execute(&mut *tx)
                    .await?;
            }
        }
        sqlx::query(
            "INSERT INTO account (id, username, token) VALUES (1, ?1, ?2)
             ON CONFLICT (id) DO UPDATE SET username = excluded.username, token = excluded.token",
        )
        .bind(username)
        .bind(token.0.as_slice())
        .execute(&mut *tx)
        .await?;
        tx.commit().await
    }

    pub async fn forget_token(&self) -> Result<()> {
        sqlx::query("UPDATE account SET token = NULL")
            .execute(&self.pool)
            .await
            .map(drop)
    }

    // --- pinned keys ---

    /// The pinned key of `username` (DER) and whether it was verified.
    pub async fn pin(&self, username: &str) -> Result<Option<(Vec<u8>, bool)>> {
        let row = sqlx::query("SELECT public_key, verified FROM pins WHERE username = ?1")
            .bind(username)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| Ok((r.try_get("public_key")?, r.try_get("verified")?)))
            .transpose()
    }

    pub async fn save_pin(
        &self,
        username: &str,
        public_key: &[u8],
        fingerprint: &[u8],
        verified: bool,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO pins (username, public_key, fingerprint, verified) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (username) DO UPDATE SET public_key = excluded.public_key,
                 fingerprint = excluded.fingerprint, verified = excluded.verified",
        )
        .bind(username)
        .bind(public_key)
        .bind(fingerprint)
        .bind(verified)
        .execute(&self.pool)
        .await
        .map(drop)
    }

    // --- conversations ---

    /// Records the server's view of a conversation, keeping the local cursors.
    pub async fn upsert_conversation(&self, c: &Conversation) -> Result<()> {
        let members =
            serde_json::to_string(&c.members).map_err(|e| sqlx::Error::Encode(e.into()))?;
        sqlx::query(
            "INSERT INTO conversations (id, kind, name, epoch, members, last_seq, current)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
             ON CONFLICT (id) DO UPDATE SET name = excluded.name, epoch = excluded.epoch,
                 members = excluded.members, current = excluded.current,
                 last_seq = MAX(conversations.last_seq, excluded.last_seq)",
        )
        .bind(c.id.0)
        .bind(c.kind.as_str())
        .bind(&c.name)
        .bind(i64::from(c.epoch))
        .bind(members)
        .bind(i64_of(c.last_seq))
        .bind(c.current)
        .execute(&self.pool)
        .await
        .map(drop)
    }

    /// Marks every conversation not in `ids` as left.
    pub async fn keep_current(&self, ids: &[ConversationId]) -> Result<()> {
        let json = serde_json::to_string(&ids.iter().map(|c| c.0).collect::<Vec<_>>())
            .map_err(|e| sqlx::Error::Encode(e.into()))?;
        sqlx::query(
            "UPDATE conversations SET current = 0
             WHERE id NOT IN (SELECT value FROM json_each(?1))",
        )
        .bind(json)
        .execute(&self.pool)
        .await
        .map(drop)
    }

    pub async fn conversations(&self) -> Result<Vec<Conversation>> {
        sqlx::query("SELECT * FROM conversations ORDER BY kind, name")
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(conversation_from)
            .collect()
    }

    pub async fn conversation(&self, id: ConversationId) -> Result<Option<Conversation>> {
        sqlx::query("SELECT * FROM conversations WHERE id = ?1")
            .bind(id.0)
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(conversation_from)
            .transpose()
    }

    pub async fn find(&self, reference: &ConversationRef) -> Result<Option<Conversation>> {
        let (kind, name) = match reference {
            ConversationRef::Group(n) => (ConvKind::Group, n),
            ConversationRef::User(n) => (ConvKind::Direct, n),
        };
        sqlx::query("SELECT * FROM conversations WHERE kind = ?1 AND name = ?2")
            .bind(kind.as_str())
            .bind(name)
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(conversation_from)
            .transpose()
    }

    /// The conversation's accepted membership chain, encoded by the engine.
    pub async fn chain(&self, id: ConversationId) -> Result<Option<Vec<u8>>> {
        sqlx::query_scalar("SELECT chain FROM conversations WHERE id = ?1")
            .bind(id.0)
            .fetch_optional(&self.pool)
            .await
            .map(Option::flatten)
    }

    pub async fn save_chain(&self, id: ConversationId, chain: &[u8]) -> Result<()> {
        sqlx::query("UPDATE conversations SET chain = ?2 WHERE id = ?1")
            .bind(id.0)
            .bind(chain)
            .execute(&self.pool)
            .await
            .map(drop)
    }

    /// Marks a conversation read up to `seq` (never backwards).
    pub async fn mark_read(&self, id: ConversationId, seq: u64) -> Result<()> {
        sqlx::query("UPDATE conversations SET read_seq = MAX(read_seq, ?2) WHERE id = ?1")
            .bind(id.0)
            .bind(i64_of(seq))
            .execute(&self.pool)
            .await
            .map(drop)
    }

    // --- received messages ---

    /// Records what became of messages that arrived (stored, kept sealed, or rejected) and
    /// advances each conversation's cursor past them, all in one transaction. A message
    /// already stored (same seq, or same sender and id) is not stored again; the answer
    /// says, for each `Received::Message`, whether it was new.
    pub async fn receive(&self, received: &[Received]) -> Result<Vec<bool>> {
        let mut tx = self.pool.begin().await?;
        let mut new = Vec::new();
        for r in received {
            match r {
                Received::Message(m) => {
                    let inserted = sqlx::query(
                        "INSERT OR IGNORE INTO messages
                             (conversation, seq, sender, client_msg_id, sent_at, kind, body, image_path)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                    )
                    .bind(m.conversation.0)
                    .bind(i64_of(m.seq))
                    .bind(&m.sender)
                    .bind(m.client_msg_id.0.as_slice())
                    .bind(m.sent_at_ms)
                    .bind(kind_str(m.kind))
                    .bind(&m.body)
                    .bind(&m.image_path)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected()
                        > 0;
                    new.push(inserted);
                    advance(&mut tx, m.conversation, m.seq).await?;
                }
                Received::Sealed(m) => {
                    sqlx::query(
                        "INSERT OR IGNORE INTO sealed
                             (conversation, seq, sender, client_msg_id, sent_at, envelope)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                    )
                    .bind(m.conversation.0)
                    .bind(i64_of(m.seq))
                    .bind(&m.sender)
                    .bind(m.client_msg_id.0.as_slice())
                    .bind(m.sent_at_ms)
                    .bind(&m.envelope)
                    .execute(&mut *tx)
                    .await?;
                    advance(&mut tx, m.conversation, m.seq).await?;
                }
                Received::Known { conversation, seq } => {
                    advance(&mut tx, *conversation, *seq).await?;
                }
                Received::Rejected {
                    conversation,
                    seq,
                    sender,
                    reason,
                } => {
                    sqlx::query(
                        "INSERT OR REPLACE INTO rejected (conversation, seq, sender, reason)
                         VALUES (?1, ?2, ?3, ?4)",
                    )
                    .bind(conversation.0)
                    .bind(i64_of(*seq))
                    .bind(sender)
                    .bind(reason)
                    .execute(&mut *tx)
                    .await?;
                    advance(&mut tx, *conversation, *seq).await?;
                }
            }
        }
        tx.commit().await?;
        Ok(new)
    }

    pub async fn has_message(&self, conversation: ConversationId, seq: u64) -> Result<bool> {
        let n: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM messages WHERE conversation = ?1 AND seq = ?2",
        )
        .bind(conversation.0)
        .bind(i64_of(seq))
        .fetch_one(&self.pool)
        .await?;
        Ok(n > 0)
    }

    pub async fn sealed(&self) -> Result<Vec<SealedMessage>> {
        let rows = sqlx::query("SELECT * FROM sealed ORDER BY conversation, seq")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                Ok(SealedMessage {
                    conversation: ConversationId(r.try_get("conversation")?),
                    seq: u64_of(r.try_get("seq")?),
                    sender: r.try_get("sender")?,
                    client_msg_id: msg_id(r.try_get::<&[u8], _>("client_msg_id")?)?,
                    sent_at_ms: r.try_get("sent_at")?,
                    envelope: r.try_get("envelope")?,
                })
            })
            .collect()
    }

    pub async fn unseal(&self, conversation: ConversationId, seq: u64) -> Result<()> {
        sqlx::query("DELETE FROM sealed WHERE conversation = ?1 AND seq = ?2")
            .bind(conversation.0)
            .bind(i64_of(seq))
            .execute(&self.pool)
            .await
            .map(drop)
    }

    pub async fn rejected_count(&self) -> Result<u64> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM rejected")
            .fetch_one(&self.pool)
            .await?;
        Ok(u64_of(n))
    }

    /// Up to `limit` messages before `before` (exclusive), oldest first.
    pub async fn history(
        &self,
        conversation: ConversationId,
        limit: u32,
        before: Option<u64>,
    ) -> Result<Vec<StoredMessage>> {
        let mut rows = sqlx::query(
            "SELECT * FROM messages WHERE conversation = ?1 AND seq < ?2
             ORDER BY seq DESC LIMIT ?3",
        )
        .bind(conversation.0)
        .bind(before.map_or(i64::MAX, i64_of))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(message_from)
        .collect::<Result<Vec<_>>>()?;
        rows.reverse();
        Ok(rows)
    }

    /// The newest stored message of each conversation that has one, in one query.
    pub async fn newest_messages(&self) -> Result<Vec<StoredMessage>> {
        sqlx::query(
            "SELECT m.* FROM messages m
             JOIN (SELECT conversation, MAX(seq) AS seq FROM messages GROUP BY conversation)
                 newest ON newest.conversation = m.conversation AND newest.seq = m.seq",
        )
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(message_from)
        .collect()
    }

    // --- the outbox ---

    pub async fn queue(&self, o: &Outgoing) -> Result<()> {
        sqlx::query(
            "INSERT INTO outbox (client_msg_id, conversation, envelope, kind, body, image_path)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )
        .bind(o.client_msg_id.0.as_slice())
        .bind(o.conversation.0)
        .bind(&o.envelope)
        .bind(kind_str(o.kind))
        .bind(&o.body)
        .bind(&o.image_path)
        .execute(&self.pool)
        .await
        .map(drop)
    }

    /// The queued sends, oldest first.
    pub async fn outbox(&self) -> Result<Vec<Outgoing>> {
        let rows = sqlx::query("SELECT * FROM outbox ORDER BY position")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                Ok(Outgoing {
                    client_msg_id: msg_id(r.try_get::<&[u8], _>("client_msg_id")?)?,
                    conversation: ConversationId(r.try_get("conversation")?),
                    envelope: r.try_get("envelope")?,
                    kind: parse_kind(r.try_get("kind")?),
                    body: r.try_get("body")?,
                    image_path: r.try_get("image_path")?,
                })
            })
            .collect()
    }

    pub async fn outbox_len(&self) -> Result<u64> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM outbox")
            .fetch_one(&self.pool)
            .await?;
        Ok(u64_of(n))
    }

    /// Servers stored these queued sends (`(send, seq, sent_at)`): they leave the outbox and
    /// enter the history (unless they arrived back from the server first), all in one
    /// transaction, so a burst of acknowledgements costs one disk sync.
    pub async fn sent(&self, acked: &[(&Outgoing, u64, i64)], me: &str) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        for (o, seq, sent_at_ms) in acked {
            sqlx::query("DELETE FROM outbox WHERE client_msg_id = ?1")
                .bind(o.client_msg_id.0.as_slice())
                .execute(&mut *tx)
                .await?;
            sqlx::query(
                "INSERT OR IGNORE INTO messages
                     (conversation, seq, sender, client_msg_id, sent_at, kind, body, image_path)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )
            .bind(o.conversation.0)
            .bind(i64_of(*seq))
            .bind(me)
            .bind(o.client_msg_id.0.as_slice())
            .bind(sent_at_ms)
            .bind(kind_str(o.kind))
            .bind(&o.body)
            .bind(&o.image_path)
            .execute(&mut *tx)
            .await?;
            sqlx::query(
                "UPDATE conversations SET last_seq = MAX(last_seq, ?2), read_seq = MAX(read_seq, ?2)
                 WHERE id = ?1",
            )
            .bind(o.conversation.0)
            .bind(i64_of(*seq))
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await
    }

    /// A queued send the server refused for good.
    pub async fn drop_outgoing(&self, id: ClientMsgId) -> Result<()> {
        sqlx::query("DELETE FROM outbox WHERE client_msg_id = ?1")
            .bind(id.0.as_slice())
            .execute(&self.pool)
            .await
            .map(drop)
    }
}

/// Moves a conversation's received cursor to `seq` (never backwards).
async fn advance(
    tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
    conversation: ConversationId,
    seq: u64,
) -> Result<()> {
    sqlx::query(
        "UPDATE conversations SET received = MAX(received, ?2), last_seq = MAX(last_seq, ?2)
         WHERE id = ?1",
    )
    .bind(conversation.0)
    .bind(i64_of(seq))
    .execute(&mut **tx)
    .await
    .map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conversation(id: i64, name: &str) -> Conversation {
        Conversation {
            id: ConversationId(id),
            kind: ConvKind::Group,
            name: name.to_owned(),
            epoch: 1,
            members: Vec::new(),
            last_seq: 0,
            received: 0,
            read_seq: 0,
            current: true,
        }
    }

    fn message(conversation: i64, seq: u64, body: &str) -> StoredMessage {
        let mut id = [0u8; 16];
        id[0] = u8::try_from(conversation).expect("small id");
        id[1] = u8::try_from(seq).expect("small seq");
        StoredMessage {
            conversation: ConversationId(conversation),
            seq,
            sender: "alice".to_owned(),
            client_msg_id: ClientMsgId(id),
            sent_at_ms: i64_of(seq) * 1000,
            kind: MessageKind::Text,
            body: Some(body.to_owned()),
            image_path: None,
        }
    }

    #[tokio::test]
    async fn the_newest_message_of_each_conversation_in_one_query() {
        let dir = tempfile::tempdir().expect("temporary folder");
        let store = Store::open(&dir.path().join("history.db"))
            .await
            .expect("opens");
        for (id, name) in [(1, "a"), (2, "b"), (3, "empty")] {
            store
                .upsert_conversation(&conversation(id, name))
                .await
                .expect("conversation");
        }
        let received: Vec<Received> = [(1, 1, "a1"), (2, 1, "b1"), (1, 3, "a3"), (1, 2, "a2")]
            .into_iter()
            .map(|(c, seq, body)| Received::Message(message(c, seq, body)))
            .collect();
        store.receive(&received).await.expect("stored");

        let mut newest = store.newest_messages().await.expect("newest");
        newest.sort_by_key(|m| m.conversation.0);
        assert_eq!(newest, vec![message(1, 3, "a3"), message(2, 1, "b1")]);
        store.close().await;
    }
}
