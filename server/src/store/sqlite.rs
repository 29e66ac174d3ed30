//! The embedded SQLite backend.
//!
//! One writer connection and a small pool of readers: SQLite has a single writer anyway, and
//! giving it one connection means transactions never wait on `SQLITE_BUSY`, while WAL lets the
//! readers go on during a write. `synchronous = FULL` makes every commit durable before the
//! server acks it, so an acked message survives a power cut, not just a crash.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use fastchat_proto::{
    AmendGroup, ClientMsgId, ConversationId, ConversationInfo, ConversationKind, Cursor, Epoch,
    EpochKey, EpochMaterial, ErrorCode, Member, Sent, Seq, StoredMessage, Timestamp, UploadChunk,
    UploadId,
};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{Row, SqliteConnection};

use super::membership::{self, MembershipTx};
use super::rules::CurrentMember;
use super::{
    AppendOutcome, Appended, Changed, Credentials, NewMessage, Store, StoreError, StoreResult,
    User, UserId, unknown_conversation, unknown_user,
};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations/server/sqlite");

#[derive(Debug, Clone)]
pub struct SqliteStore {
    writer: SqlitePool,
    readers: SqlitePool,
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `url` (`sqlite://PATH` or a bare path) and
    /// runs the migrations.
    ///
    /// # Errors
    /// If the file cannot be opened or created, or a migration fails.
    pub async fn open(url: &str) -> StoreResult<SqliteStore> {
        let options = if url.starts_with("sqlite:") {
            SqliteConnectOptions::from_str(url)?
        } else {
            SqliteConnectOptions::new().filename(url)
        };
        Self::open_with(options).await
    }

    /// Opens the database file at `path`; see [`SqliteStore::open`].
    ///
    /// # Errors
    /// As [`SqliteStore::open`].
    pub async fn open_path(path: &Path) -> StoreResult<SqliteStore> {
        Self::open_with(SqliteConnectOptions::new().filename(path)).await
    }

    async fn open_with(options: SqliteConnectOptions) -> StoreResult<SqliteStore> {
        let options = options
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(5));
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .connect_with(options.clone())
            .await?;
        MIGRATOR.run(&writer).await?;
        let readers = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options.read_only(true))
            .await?;
        Ok(SqliteStore { writer, readers })
    }
}

#[async_trait]
impl MembershipTx for SqliteConnection {
    async fn user_id(&mut self, name: &str) -> StoreResult<UserId> {
        sqlx::query_scalar::<_, i64>("SELECT id FROM users WHERE username = ?1")
            .bind(name)
            .fetch_optional(self)
            .await?
            .map(UserId)
            .ok_or_else(|| unknown_user(name))
    }

    async fn current_members(&mut self, c: ConversationId) -> StoreResult<Vec<CurrentMember>> {
        let rows = sqlx::query(
            "SELECT u.username, ms.is_admin FROM memberships ms JOIN users u ON u.id = ms.user_id
             WHERE ms.conversation_id = ?1 AND ms.left_after IS NULL ORDER BY u.username",
        )
        .bind(c.0)
        .fetch_all(self)
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| CurrentMember {
                username: r.get(0),
                admin: r.get::<bool, _>(1),
            })
            .collect())
    }

    async fn current_member_ids(&mut self, c: ConversationId) -> StoreResult<Vec<UserId>> {
        let ids = sqlx::query_scalar::<_, i64>(
            "SELECT user_id FROM memberships WHERE conversation_id = ?1 AND left_after IS NULL",
        )
        .bind(c.0)
        .fetch_all(self)
        .await?;
        Ok(ids.into_iter().map(UserId).collect())
    }

    // SQLite has one writer, so every write transaction holds the whole database: `lock`
    // needs nothing more.
    async fn load_info(&mut self, c: ConversationId, _lock: bool) -> StoreResult<ConversationInfo> {
        let row =
            sqlx::query("SELECT kind, name, epoch, last_seq FROM conversations WHERE id = ?1")
                .bind(c.0)
                .fetch_optional(&mut *self)
                .await?
                .ok_or_else(|| unknown_conversation(c))?;
        let kind = match (
            row.get::<String, _>(0).as_str(),
            row.get::<Option<String>, _>(1),
        ) {
            ("group", Some(name)) => ConversationKind::Group { name },
            _ => ConversationKind::Direct,
        };
        let members = self
            .current_members(c)
            .await?
            .into_iter()
            .map(|m| Member {
                username: m.username,
                admin: m.admin,
            })
            .collect();
        Ok(ConversationInfo {
            id: c,
            kind,
            members,
            epoch: Epoch(row.get::<u32, _>(2)),
            last_seq: Seq(row.get(3)),
        })
    }

    async fn insert_group(
        &mut self,
        name: &str,
        creator: UserId,
        now: Timestamp,
    ) -> StoreResult<Option<ConversationId>> {
        let id = sqlx::query_scalar::<_, i64>(
            "INSERT INTO conversations (kind, name, created_by, created_at, epoch)
             VALUES ('group', ?1, ?2, ?3, 1) ON CONFLICT (name) DO NOTHING RETURNING id",
        )
        .bind(name)
        .bind(creator.0)
        .bind(now.0)
        .fetch_optional(self)
        .await?;
        Ok(id.map(ConversationId))
    }

    async fn insert_direct(
        &mut self,
        key: &str,
        creator: UserId,
        now: Timestamp,
    ) -> StoreResult<Option<ConversationId>> {
        let id = sqlx::query_scalar::<_, i64>(
            "INSERT INTO conversations (kind, direct_key, created_by, created_at, epoch)
             VALUES ('direct', ?1, ?2, ?3, 1) ON CONFLICT (direct_key) DO NOTHING RETURNING id",
        )
        .bind(key)
        .bind(creator.0)
        .bind(now.0)
        .fetch_optional(self)
        .await?;
        Ok(id.map(ConversationId))
    }

    async fn find_direct(&mut self, key: &str) -> StoreResult<ConversationId> {
        let id = sqlx::query_scalar::<_, i64>("SELECT id FROM conversations WHERE direct_key = ?1")
            .bind(key)
            .fetch_one(self)
            .await?;
        Ok(ConversationId(id))
    }

    async fn join(
        &mut self,
        c: ConversationId,
        user: UserId,
        admin: bool,
        after: Seq,
    ) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO memberships (conversation_id, user_id, is_admin, joined_after)
             VALUES (?1, ?2, ?3, ?4)",
        )
        .bind(c.0)
        .bind(user.0)
        .bind(admin)
        .bind(after.0)
        .execute(self)
        .await?;
        Ok(())
    }

    async fn leave(&mut self, c: ConversationId, user: UserId, after: Seq) -> StoreResult<()> {
        sqlx::query(
            "UPDATE memberships SET left_after = ?1
             WHERE conversation_id = ?2 AND user_id = ?3 AND left_after IS NULL",
        )
        .bind(after.0)
        .bind(c.0)
        .bind(user.0)
        .execute(self)
        .await?;
        Ok(())
    }

    async fn set_epoch(&mut self, c: ConversationId, epoch: Epoch) -> StoreResult<()> {
        sqlx::query("UPDATE conversations SET epoch = ?1 WHERE id = ?2")
            .bind(epoch.0)
            .bind(c.0)
            .execute(self)
            .await?;
        Ok(())
    }

    async fn insert_epoch(
        &mut self,
        c: ConversationId,
        epoch: Epoch,
        by: UserId,
        proof: &[u8],
        now: Timestamp,
    ) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO epochs (conversation_id, epoch, changed_by, proof, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5)",
        )
        .bind(c.0)
        .bind(epoch.0)
        .bind(by.0)
        .bind(proof)
        .bind(now.0)
        .execute(self)
        .await?;
        Ok(())
    }

    async fn insert_epoch_key(
        &mut self,
        c: ConversationId,
        epoch: Epoch,
        user: UserId,
        wrapped: &[u8],
    ) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO epoch_keys (conversation_id, epoch, user_id, wrapped)
             VALUES (?1, ?2, ?3, ?4)",
        )
        .bind(c.0)
        .bind(epoch.0)
        .bind(user.0)
        .bind(wrapped)
        .execute(self)
        .await?;
        Ok(())
    }

    async fn was_member(&mut self, c: ConversationId, user: UserId) -> StoreResult<bool> {
        let row = sqlx::query_scalar::<_, i64>(
            "SELECT 1 FROM memberships WHERE conversation_id = ?1 AND user_id = ?2 LIMIT 1",
        )
        .bind(c.0)
        .bind(user.0)
        .fetch_optional(self)
        .await?;
        Ok(row.is_some())
    }
}

fn message_from_row(row: &sqlx::sqlite::SqliteRow) -> StoredMessage {
    let id: Vec<u8> = row.get(3);
    let mut client_msg_id = [0; 16];
    // The column is only ever written from a 16-byte ClientMsgId.
    if id.len() == 16 {
        client_msg_id.copy_from_slice(&id);
    }
    StoredMessage {
        conversation: ConversationId(row.get(0)),
        seq: Seq(row.get(1)),
        sender: row.get(2),
        client_msg_id: ClientMsgId(client_msg_id),
        sent_at: Timestamp(row.get(4)),
        envelope: Bytes::from(row.get::<Vec<u8>, _>(5)),
    }
}

#[async_trait]
impl Store for SqliteStore {
    async fn create_user(
        &self,
        username: &str,
        password_hash: &str,
        public_key: &[u8],
        now: Timestamp,
    ) -> StoreResult<User> {
        let result = sqlx::query_scalar::<_, i64>(
            "INSERT INTO users (username, password_hash, public_key, created_at)
             VALUES (?1, ?2, ?3, ?4) RETURNING id",
        )
        .bind(username)
        .bind(password_hash)
        .bind(public_key)
        .bind(now.0)
        .fetch_one(&self.writer)
        .await;
        match result {
            Ok(id) => Ok(User {
                id: UserId(id),
                username: username.to_owned(),
            }),
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => Err(StoreError::refused(
                ErrorCode::UsernameTaken,
                format!("the username {username} is taken"),
            )),
            Err(e) => Err(e.into()),
        }
    }

    async fn credentials(&self, username: &str) -> StoreResult<Option<Credentials>> {
        let row = sqlx::query("SELECT id, password_hash FROM users WHERE username = ?1")
            .bind(username)
            .fetch_optional(&self.readers)
            .await?;
        Ok(row.map(|r| Credentials {
            user: User {
                id: UserId(r.get(0)),
                username: username.to_owned(),
            },
            password_hash: r.get(1),
        }))
    }

    async fn create_session(
        &self,
        user: UserId,
        token_hash: &[u8; 32],
        now: Timestamp,
        expires_at: Timestamp,
    ) -> StoreResult<()> {
        let mut tx = self.writer.begin().await?;
        // Expired sessions are swept here rather than by a timer: logins are rare enough.
        sqlx::query("DELETE FROM sessions WHERE expires_at <= ?1")
            .bind(now.0)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO sessions (token_hash, user_id, created_at, expires_at)
             VALUES (?1, ?2, ?3, ?4)",
        )
        .bind(token_hash.as_slice())
        .bind(user.0)
        .bind(now.0)
        .bind(expires_at.0)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn session_user(
        &self,
        token_hash: &[u8; 32],
        now: Timestamp,
    ) -> StoreResult<Option<User>> {
        let row = sqlx::query(
            "SELECT u.id, u.username FROM sessions s JOIN users u ON u.id = s.user_id
             WHERE s.token_hash = ?1 AND s.expires_at > ?2",
        )
        .bind(token_hash.as_slice())
        .bind(now.0)
        .fetch_optional(&self.readers)
        .await?;
        Ok(row.map(|r| User {
            id: UserId(r.get(0)),
            username: r.get(1),
        }))
    }

    async fn delete_session(&self, token_hash: &[u8; 32]) -> StoreResult<()> {
        sqlx::query("DELETE FROM sessions WHERE token_hash = ?1")
            .bind(token_hash.as_slice())
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    async fn set_public_key(&self, user: UserId, public_key: &[u8]) -> StoreResult<()> {
        sqlx::query("UPDATE users SET public_key = ?1 WHERE id = ?2")
            .bind(public_key)
            .bind(user.0)
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    async fn public_key(&self, username: &str) -> StoreResult<Option<Bytes>> {
        let key =
            sqlx::query_scalar::<_, Vec<u8>>("SELECT public_key FROM users WHERE username = ?1")
                .bind(username)
                .fetch_optional(&self.readers)
                .await?;
        Ok(key.map(Bytes::from))
    }

    async fn create_group(
        &self,
        creator: &User,
        name: &str,
        members: &[String],
        material: &EpochMaterial,
        now: Timestamp,
    ) -> StoreResult<Changed> {
        let mut tx = self.writer.begin().await?;
        let changed =
            membership::create_group(&mut *tx, creator, name, members, material, now).await?;
        tx.commit().await?;
        Ok(changed)
    }

    async fn amend_group(
        &self,
        by: &User,
        amend: &AmendGroup,
        now: Timestamp,
    ) -> StoreResult<Changed> {
        let mut tx = self.writer.begin().await?;
        let changed = membership::amend_group(&mut *tx, by, amend, now).await?;
        tx.commit().await?;
        Ok(changed)
    }

    async fn open_direct(
        &self,
        user: &User,
        peer: &str,
        material: &EpochMaterial,
        now: Timestamp,
    ) -> StoreResult<Changed> {
        let mut tx = self.writer.begin().await?;
        let changed = membership::open_direct(&mut *tx, user, peer, material, now).await?;
        tx.commit().await?;
        Ok(changed)
    }

    async fn conversations(&self, user: UserId) -> StoreResult<Vec<ConversationInfo>> {
        let mut conn = self.readers.acquire().await?;
        let ids = sqlx::query_scalar::<_, i64>(
            "SELECT conversation_id FROM memberships WHERE user_id = ?1 AND left_after IS NULL
             ORDER BY conversation_id",
        )
        .bind(user.0)
        .fetch_all(&mut *conn)
        .await?;
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            out.push(conn.load_info(ConversationId(id), false).await?);
        }
        Ok(out)
    }

    async fn visible_conversations(&self, user: UserId) -> StoreResult<Vec<ConversationId>> {
        let ids = sqlx::query_scalar::<_, i64>(
            "SELECT DISTINCT conversation_id FROM memberships WHERE user_id = ?1
             ORDER BY conversation_id",
        )
        .bind(user.0)
        .fetch_all(&self.readers)
        .await?;
        Ok(ids.into_iter().map(ConversationId).collect())
    }

    async fn append(&self, batch: &[NewMessage], now: Timestamp) -> StoreResult<AppendOutcome> {
        // Per conversation in the batch: its counter and members are read once; then one
        // INSERT per message. A resend (same sender and client id) conflicts, inserts
        // nothing and takes no sequence number.
        let mut tx = self.writer.begin().await?;
        let mut outcome = AppendOutcome::default();
        let mut counters: HashMap<ConversationId, Seq> = HashMap::new();
        let mut members: HashMap<ConversationId, Vec<UserId>> = HashMap::new();
        for message in batch {
            let conversation = message.conversation;
            let ids = match members.entry(conversation) {
                Entry::Occupied(known) => known.into_mut(),
                Entry::Vacant(slot) => slot.insert(tx.current_member_ids(conversation).await?),
            };
            let is_member = ids.contains(&message.sender.id);
            if !is_member {
                let refusal =
                    membership::non_member(&mut *tx, conversation, message.sender.id).await?;
                outcome.results.push(Err(refusal.to_error_body()));
                continue;
            }
            let last = match counters.get(&conversation) {
                Some(seq) => *seq,
                None => Seq(sqlx::query_scalar::<_, i64>(
                    "SELECT last_seq FROM conversations WHERE id = ?1",
                )
                .bind(conversation.0)
                .fetch_one(&mut *tx)
                .await?),
            };
            let seq = last.next();
            let inserted = sqlx::query(
                "INSERT INTO messages
                 (conversation_id, seq, sender_id, client_msg_id, sent_at, envelope)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT (conversation_id, sender_id, client_msg_id) DO NOTHING",
            )
            .bind(conversation.0)
            .bind(seq.0)
            .bind(message.sender.id.0)
            .bind(message.client_msg_id.0.as_slice())
            .bind(now.0)
            .bind(message.envelope.as_ref())
            .execute(&mut *tx)
            .await?;
            if inserted.rows_affected() == 0 {
                let row = sqlx::query(
                    "SELECT seq, sent_at FROM messages
                     WHERE conversation_id = ?1 AND sender_id = ?2 AND client_msg_id = ?3",
                )
                .bind(conversation.0)
                .bind(message.sender.id.0)
                .bind(message.client_msg_id.0.as_slice())
                .fetch_one(&mut *tx)
                .await?;
                let sent = Sent {
                    seq: Seq(row.get(0)),
                    sent_at: Timestamp(row.get(1)),
                };
                outcome.results.push(Ok(Appended::Duplicate(sent)));
                counters.insert(conversation, last);
                continue;
            }
            counters.insert(conversation, seq);
            outcome.results.push(Ok(Appended::Stored(StoredMessage {
                conversation,
                seq,
                sender: message.sender.username.clone(),
                client_msg_id: message.client_msg_id,
                sent_at: now,
                envelope: message.envelope.clone(),
            })));
        }
        for (conversation, last) in &counters {
            sqlx::query("UPDATE conversations SET last_seq = ?1 WHERE id = ?2")
                .bind(last.0)
                .bind(conversation.0)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        outcome.audiences = members
            .into_iter()
            .filter(|(conversation, _)| counters.contains_key(conversation))
            .collect();
        Ok(outcome)
    }

    async fn messages_after(
        &self,
        user: UserId,
        conversation: ConversationId,
        after: Seq,
        limit: u32,
    ) -> StoreResult<Vec<StoredMessage>> {
        let rows = sqlx::query(
            "SELECT m.conversation_id, m.seq, u.username, m.client_msg_id, m.sent_at, m.envelope
             FROM messages m
             JOIN memberships ms ON ms.conversation_id = m.conversation_id AND ms.user_id = ?1
                 AND m.seq > ms.joined_after
                 AND (ms.left_after IS NULL OR m.seq <= ms.left_after)
             JOIN users u ON u.id = m.sender_id
             WHERE m.conversation_id = ?2 AND m.seq > ?3
             ORDER BY m.seq LIMIT ?4",
        )
        .bind(user.0)
        .bind(conversation.0)
        .bind(after.0)
        .bind(limit)
        .fetch_all(&self.readers)
        .await?;
        Ok(rows.iter().map(message_from_row).collect())
    }

    async fn ack(&self, user: UserId, conversation: ConversationId, seq: Seq) -> StoreResult<()> {
        let updated = sqlx::query(
            "INSERT INTO acks (user_id, conversation_id, seq)
             SELECT ?1, ?2, ?3 WHERE EXISTS
                 (SELECT 1 FROM memberships WHERE user_id = ?1 AND conversation_id = ?2)
             ON CONFLICT (user_id, conversation_id) DO UPDATE SET seq = max(seq, excluded.seq)",
        )
        .bind(user.0)
        .bind(conversation.0)
        .bind(seq.0)
        .execute(&self.writer)
        .await?;
        if updated.rows_affected() == 0 {
            return Err(unknown_conversation(conversation));
        }
        Ok(())
    }

    async fn acks(&self, user: UserId) -> StoreResult<Vec<Cursor>> {
        let rows = sqlx::query(
            "SELECT conversation_id, seq FROM acks WHERE user_id = ?1 ORDER BY conversation_id",
        )
        .bind(user.0)
        .fetch_all(&self.readers)
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| Cursor {
                conversation: ConversationId(r.get(0)),
                seq: Seq(r.get(1)),
            })
            .collect())
    }

    async fn conversation(&self, conversation: ConversationId) -> StoreResult<ConversationInfo> {
        let mut conn = self.readers.acquire().await?;
        conn.load_info(conversation, false).await
    }

    async fn member_ids(&self, conversation: ConversationId) -> StoreResult<Vec<UserId>> {
        let mut conn = self.readers.acquire().await?;
        conn.current_member_ids(conversation).await
    }

    async fn close(&self) {
        self.readers.close().await;
        self.writer.close().await;
    }

    async fn epoch_keys(
        &self,
        user: UserId,
        conversation: ConversationId,
    ) -> StoreResult<Vec<EpochKey>> {
        let rows = sqlx::query(
            "SELECT e.epoch, u.username, k.wrapped, e.proof
             FROM epoch_keys k
             JOIN epochs e ON e.conversation_id = k.conversation_id AND e.epoch = k.epoch
             JOIN users u ON u.id = e.changed_by
             WHERE k.conversation_id = ?1 AND k.user_id = ?2 ORDER BY e.epoch",
        )
        .bind(conversation.0)
        .bind(user.0)
        .fetch_all(&self.readers)
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| EpochKey {
                epoch: Epoch(r.get::<u32, _>(0)),
                wrapped_by: r.get(1),
                wrapped: Bytes::from(r.get::<Vec<u8>, _>(2)),
                proof: Bytes::from(r.get::<Vec<u8>, _>(3)),
            })
            .collect())
    }

    async fn put_chunk(
        &self,
        uploader: UserId,
        chunk: &UploadChunk,
        now: Timestamp,
    ) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO chunks
                 (conversation_id, upload_id, idx, total, uploader_id, bytes, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
             ON CONFLICT (conversation_id, upload_id, idx) DO NOTHING",
        )
        .bind(chunk.conversation.0)
        .bind(chunk.upload.0.as_slice())
        .bind(i64::from(chunk.index))
        .bind(i64::from(chunk.total))
        .bind(uploader.0)
        .bind(chunk.bytes.as_ref())
        .bind(now.0)
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    async fn purge_uploads(&self, before: Timestamp) -> StoreResult<u64> {
        let purged = sqlx::query(
            "DELETE FROM chunks WHERE (conversation_id, upload_id) IN (
                 SELECT conversation_id, upload_id FROM chunks
                 GROUP BY conversation_id, upload_id
                 HAVING COUNT(*) < MAX(total) AND MAX(created_at) < ?1)",
        )
        .bind(before.0)
        .execute(&self.writer)
        .await?;
        Ok(purged.rows_affected())
    }

    async fn chunk(
        &self,
        conversation: ConversationId,
        upload: UploadId,
        index: u32,
    ) -> StoreResult<Option<Bytes>> {
        let bytes: Option<Vec<u8>> = sqlx::query_scalar(
            "SELECT bytes FROM chunks
             WHERE conversation_id = ?1 AND upload_id = ?2 AND idx = ?3",
        )
        .bind(conversation.0)
        .bind(upload.0.as_slice())
        .bind(i64::from(index))
        .fetch_optional(&self.readers)
        .await?;
        Ok(bytes.map(Bytes::from))
    }
}
