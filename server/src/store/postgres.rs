//! The PostgreSQL backend, for any number of servers sharing one database.
//!
//! Appends lock the rows of the conversations they touch (`SELECT ... FOR UPDATE`, in id
//! order so two servers' batches cannot deadlock), which serialises concurrent senders on
//! different servers and keeps sequence numbers gap-free in commit order. A batch costs a
//! handful of statements per conversation, however many messages it holds: resends are found
//! with one query and the new messages are inserted with one `INSERT ... SELECT FROM UNNEST`.
//!
//! After each commit one `NOTIFY` (outside the writing transaction: NOTIFY inside it takes a
//! global lock at commit) tells the other servers which conversations changed. Notifications
//! are hints: a listener that reconnects reports [`Change::Resync`] and servers re-read.

use std::collections::hash_map::Entry;
use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use fastchat_proto::{
    AmendGroup, ClientMsgId, ConversationId, ConversationInfo, ConversationKind, Cursor, Epoch,
    EpochKey, EpochMaterial, ErrorCode, Member, Sent, Seq, StoredMessage, Timestamp, UploadChunk,
    UploadId,
};
use sqlx::postgres::{PgConnectOptions, PgListener, PgPool, PgPoolOptions};
use sqlx::{PgConnection, Row};
use tokio::sync::mpsc;

use super::membership::{self, MembershipTx};
use super::rules::CurrentMember;
use super::{
    AppendOutcome, Appended, Change, Changed, Credentials, NewMessage, Store, StoreError,
    StoreResult, User, UserId, unknown_conversation, unknown_user,
};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations/server/postgres");

const CHANNEL: &str = "fastchat_changes";

#[derive(Debug)]
pub struct PgStore {
    pool: PgPool,
    /// Tags this server's notifications so that its own listener skips them.
    instance: u64,
    feed: std::sync::Mutex<Option<mpsc::Receiver<Change>>>,
    notifier: std::sync::Mutex<Option<mpsc::UnboundedSender<String>>>,
    notifier_task: std::sync::Mutex<Option<tokio::task::JoinHandle<()>>>,
    /// Holds a pooled connection until it ends: `close` stops it before closing the pool.
    listener_task: std::sync::Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl PgStore {
    /// Connects to `url` (`postgres://...`), runs the migrations and starts listening for
    /// other servers' changes.
    ///
    /// # Errors
    /// If the database cannot be reached or a migration fails.
    pub async fn open(url: &str) -> StoreResult<PgStore> {
        let options: PgConnectOptions = url.parse()?;
        let pool = PgPoolOptions::new()
            // Appends are batched, so a few connections carry the writes; the rest serve
            // reads. Eight per server leaves room for a dozen servers under the default
            // max_connections of 100.
            .max_connections(8)
            .acquire_timeout(Duration::from_secs(5))
            .connect_with(options)
            .await?;
        MIGRATOR.run(&pool).await?;
        let instance = rand::random();
        let (tx, rx) = mpsc::channel(1024);
        let listener = PgListener::connect_with(&pool).await?;
        let listener_task = tokio::spawn(listen(listener, instance, tx));
        let (notify_tx, notify_rx) = mpsc::unbounded_channel();
        let notifier_task = tokio::spawn(notifier(pool.clone(), notify_rx));
        Ok(PgStore {
            pool,
            instance,
            feed: std::sync::Mutex::new(Some(rx)),
            notifier: std::sync::Mutex::new(Some(notify_tx)),
            notifier_task: std::sync::Mutex::new(Some(notifier_task)),
            listener_task: std::sync::Mutex::new(Some(listener_task)),
        })
    }

    /// Tells the other servers what changed, through the notifier task, so that no caller
    /// waits for it. Best effort: a lost notification only delays delivery until the next
    /// one or the next resync, and the caller's commit stands.
    fn notify(&self, payload: String) {
        let notifier = self
            .notifier
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(notifier) = notifier.as_ref() {
            let _ = notifier.send(payload);
        }
    }

    fn notify_changed(&self, changed: &Changed) {
        let ids: Vec<String> = changed.notify.iter().map(|u| u.0.to_string()).collect();
        self.notify(format!(
            "{} c {} {}",
            self.instance,
            changed.info.id.0,
            ids.join(",")
        ));
    }
}

/// Sends NOTIFYs one after another, outside any writing transaction (NOTIFY inside one takes
/// a global lock at commit), until the store closes.
async fn notifier(pool: PgPool, mut payloads: mpsc::UnboundedReceiver<String>) {
    while let Some(payload) = payloads.recv().await {
        let sent = sqlx::query("SELECT pg_notify($1, $2)")
            .bind(CHANNEL)
            .bind(&payload)
            .execute(&pool)
            .await;
        if let Err(e) = sent {
            tracing::warn!(error = %e, "NOTIFY failed; other servers will catch up later");
        }
    }
}

/// Relays notifications into the feed until the server drops it. The listener reconnects
/// by itself; a reconnect may have lost notifications, so it is reported as a resync.
async fn listen(mut listener: PgListener, instance: u64, feed: mpsc::Sender<Change>) {
    let mut listening = false;
    loop {
        if !listening {
            match listener.listen(CHANNEL).await {
                Ok(()) => listening = true,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot LISTEN; retrying");
                    tokio::select! {
                        () = tokio::time::sleep(Duration::from_secs(1)) => continue,
                        () = feed.closed() => return,
                    }
                }
            }
        }
        let received = tokio::select! {
            received = listener.try_recv() => received,
            () = feed.closed() => return,
        };
        let change = match received {
            Ok(Some(notification)) => match parse(notification.payload(), instance) {
                Some(change) => change,
                None => continue,
            },
            // The connection dropped; try_recv reconnects on the next call.
            Ok(None) => {
                tracing::info!("change listener reconnecting");
                Change::Resync
            }
            Err(e) => {
                tracing::warn!(error = %e, "change listener failed; reconnecting");
                listening = false;
                Change::Resync
            }
        };
        if feed.send(change).await.is_err() {
            return;
        }
    }
}

/// `INSTANCE m CONV,CONV` or `INSTANCE c CONV USER,USER`; our own are skipped.
fn parse(payload: &str, instance: u64) -> Option<Change> {
    let mut parts = payload.split(' ');
    let from: u64 = parts.next()?.parse().ok()?;
    if from == instance {
        return None;
    }
    let ids = |s: Option<&str>| -> Option<Vec<i64>> {
        s.unwrap_or("")
            .split(',')
            .filter(|s| !s.is_empty())
            .map(|s| s.parse().ok())
            .collect()
    };
    match parts.next()? {
        "m" => Some(Change::Messages(
            ids(parts.next())?.into_iter().map(ConversationId).collect(),
        )),
        "c" => {
            let conversation = ConversationId(parts.next()?.parse().ok()?);
            let notify = ids(parts.next())?.into_iter().map(UserId).collect();
            Some(Change::Conversation {
                conversation,
                notify,
            })
        }
        _ => None,
    }
}

fn epoch_of(value: i64) -> Epoch {
    Epoch(u32::try_from(value).unwrap_or(u32::MAX))
}

#[async_trait]
impl MembershipTx for PgConnection {
    async fn user_id(&mut self, name: &str) -> StoreResult<UserId> {
        sqlx::query_scalar::<_, i64>("SELECT id FROM users WHERE username = $1")
            .bind(name)
            .fetch_optional(self)
            .await?
            .map(UserId)
            .ok_or_else(|| unknown_user(name))
    }

    async fn current_members(&mut self, c: ConversationId) -> StoreResult<Vec<CurrentMember>> {
        let rows = sqlx::query(
            "SELECT u.username, ms.is_admin FROM memberships ms JOIN users u ON u.id = ms.user_id
             WHERE ms.conversation_id = $1 AND ms.left_after IS NULL ORDER BY u.username",
        )
        .bind(c.0)
        .fetch_all(self)
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| CurrentMember {
                username: r.get(0),
                admin: r.get(1),
            })
            .collect())
    }

    async fn current_member_ids(&mut self, c: ConversationId) -> StoreResult<Vec<UserId>> {
        let ids = sqlx::query_scalar::<_, i64>(
            "SELECT user_id FROM memberships WHERE conversation_id = $1 AND left_after IS NULL",
        )
        .bind(c.0)
        .fetch_all(self)
        .await?;
        Ok(ids.into_iter().map(UserId).collect())
    }

    async fn load_info(&mut self, c: ConversationId, lock: bool) -> StoreResult<ConversationInfo> {
        let sql = if lock {
            "SELECT kind, name, epoch, last_seq FROM conversations WHERE id = $1 FOR UPDATE"
        } else {
            "SELECT kind, name, epoch, last_seq FROM conversations WHERE id = $1"
        };
        let row = sqlx::query(sql)
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
            epoch: epoch_of(row.get(2)),
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
             VALUES ('group', $1, $2, $3, 1) ON CONFLICT (name) DO NOTHING RETURNING id",
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
             VALUES ('direct', $1, $2, $3, 1) ON CONFLICT (direct_key) DO NOTHING RETURNING id",
        )
        .bind(key)
        .bind(creator.0)
        .bind(now.0)
        .fetch_optional(self)
        .await?;
        Ok(id.map(ConversationId))
    }

    async fn find_direct(&mut self, key: &str) -> StoreResult<ConversationId> {
        let id = sqlx::query_scalar::<_, i64>("SELECT id FROM conversations WHERE direct_key = $1")
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
             VALUES ($1, $2, $3, $4)",
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
            "UPDATE memberships SET left_after = $1
             WHERE conversation_id = $2 AND user_id = $3 AND left_after IS NULL",
        )
        .bind(after.0)
        .bind(c.0)
        .bind(user.0)
        .execute(self)
        .await?;
        Ok(())
    }

    async fn set_epoch(&mut self, c: ConversationId, epoch: Epoch) -> StoreResult<()> {
        sqlx::query("UPDATE conversations SET epoch = $1 WHERE id = $2")
            .bind(i64::from(epoch.0))
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
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(c.0)
        .bind(i64::from(epoch.0))
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
             VALUES ($1, $2, $3, $4)",
        )
        .bind(c.0)
        .bind(i64::from(epoch.0))
        .bind(user.0)
        .bind(wrapped)
        .execute(self)
        .await?;
        Ok(())
    }

    async fn was_member(&mut self, c: ConversationId, user: UserId) -> StoreResult<bool> {
        let row = sqlx::query_scalar::<_, i32>(
            "SELECT 1 FROM memberships WHERE conversation_id = $1 AND user_id = $2 LIMIT 1",
        )
        .bind(c.0)
        .bind(user.0)
        .fetch_optional(self)
        .await?;
        Ok(row.is_some())
    }
}

fn client_msg_id(bytes: &[u8]) -> ClientMsgId {
    let mut id = [0; 16];
    // The column is only ever written from a 16-byte ClientMsgId.
    if bytes.len() == 16 {
        id.copy_from_slice(bytes);
    }
    ClientMsgId(id)
}

#[async_trait]
impl Store for PgStore {
    async fn create_user(
        &self,
        username: &str,
        password_hash: &str,
        public_key: &[u8],
        now: Timestamp,
    ) -> StoreResult<User> {
        let result = sqlx::query_scalar::<_, i64>(
            "INSERT INTO users (username, password_hash, public_key, created_at)
             VALUES ($1, $2, $3, $4) RETURNING id",
        )
        .bind(username)
        .bind(password_hash)
        .bind(public_key)
        .bind(now.0)
        .fetch_one(&self.pool)
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
        let row = sqlx::query("SELECT id, password_hash FROM users WHERE username = $1")
            .bind(username)
            .fetch_optional(&self.pool)
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
        let mut tx = self.pool.begin().await?;
        sqlx::query("DELETE FROM sessions WHERE expires_at <= $1")
            .bind(now.0)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO sessions (token_hash, user_id, created_at, expires_at)
             VALUES ($1, $2, $3, $4)",
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
             WHERE s.token_hash = $1 AND s.expires_at > $2",
        )
        .bind(token_hash.as_slice())
        .bind(now.0)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|r| User {
            id: UserId(r.get(0)),
            username: r.get(1),
        }))
    }

    async fn delete_session(&self, token_hash: &[u8; 32]) -> StoreResult<()> {
        sqlx::query("DELETE FROM sessions WHERE token_hash = $1")
            .bind(token_hash.as_slice())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn set_public_key(&self, user: UserId, public_key: &[u8]) -> StoreResult<()> {
        sqlx::query("UPDATE users SET public_key = $1 WHERE id = $2")
            .bind(public_key)
            .bind(user.0)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn public_key(&self, username: &str) -> StoreResult<Option<Bytes>> {
        let key =
            sqlx::query_scalar::<_, Vec<u8>>("SELECT public_key FROM users WHERE username = $1")
                .bind(username)
                .fetch_optional(&self.pool)
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
        let mut tx = self.pool.begin().await?;
        let changed =
            membership::create_group(&mut *tx, creator, name, members, material, now).await?;
        tx.commit().await?;
        self.notify_changed(&changed);
        Ok(changed)
    }

    async fn amend_group(
        &self,
        by: &User,
        amend: &AmendGroup,
        now: Timestamp,
    ) -> StoreResult<Changed> {
        let mut tx = self.pool.begin().await?;
        let changed = membership::amend_group(&mut *tx, by, amend, now).await?;
        tx.commit().await?;
        self.notify_changed(&changed);
        Ok(changed)
    }

    async fn open_direct(
        &self,
        user: &User,
        peer: &str,
        material: &EpochMaterial,
        now: Timestamp,
    ) -> StoreResult<Changed> {
        let mut tx = self.pool.begin().await?;
        let changed = membership::open_direct(&mut *tx, user, peer, material, now).await?;
        tx.commit().await?;
        if !changed.notify.is_empty() {
            self.notify_changed(&changed);
        }
        Ok(changed)
    }

    async fn conversations(&self, user: UserId) -> StoreResult<Vec<ConversationInfo>> {
        let mut conn = self.pool.acquire().await?;
        let ids = sqlx::query_scalar::<_, i64>(
            "SELECT conversation_id FROM memberships WHERE user_id = $1 AND left_after IS NULL
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
            "SELECT DISTINCT conversation_id FROM memberships WHERE user_id = $1
             ORDER BY conversation_id",
        )
        .bind(user.0)
        .fetch_all(&self.pool)
        .await?;
        Ok(ids.into_iter().map(ConversationId).collect())
    }

    async fn append(&self, batch: &[NewMessage], now: Timestamp) -> StoreResult<AppendOutcome> {
        let mut tx = self.pool.begin().await?;
        // Lock every conversation of the batch, in id order, before anything else.
        let conversations: Vec<i64> = batch
            .iter()
            .map(|m| m.conversation.0)
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        // One round trip: the rows locked, their counters, and their members.
        let locked = sqlx::query(
            "SELECT c.id, c.last_seq,
                    ARRAY(SELECT m.user_id FROM memberships m
                          WHERE m.conversation_id = c.id AND m.left_after IS NULL)
             FROM conversations c WHERE c.id = ANY($1) ORDER BY c.id FOR UPDATE OF c",
        )
        .bind(&conversations)
        .fetch_all(&mut *tx)
        .await?;
        let mut counters: HashMap<ConversationId, Seq> = HashMap::with_capacity(locked.len());
        let mut members: HashMap<ConversationId, Vec<UserId>> =
            HashMap::with_capacity(locked.len());
        for row in &locked {
            let conversation = ConversationId(row.get(0));
            counters.insert(conversation, Seq(row.get(1)));
            let ids: Vec<i64> = row.get(2);
            members.insert(conversation, ids.into_iter().map(UserId).collect());
        }
        // Resends: (conversation, sender, client id) already stored. With the rows locked,
        // no other server can insert one of these meanwhile.
        let earlier_rows = sqlx::query(
            "SELECT m.conversation_id, m.sender_id, m.client_msg_id, m.seq, m.sent_at
             FROM messages m
             JOIN UNNEST($1::bigint[], $2::bigint[], $3::bytea[]) AS b (c, s, id)
               ON m.conversation_id = b.c AND m.sender_id = b.s AND m.client_msg_id = b.id",
        )
        .bind(batch.iter().map(|m| m.conversation.0).collect::<Vec<_>>())
        .bind(batch.iter().map(|m| m.sender.id.0).collect::<Vec<_>>())
        .bind(
            batch
                .iter()
                .map(|m| m.client_msg_id.0.to_vec())
                .collect::<Vec<_>>(),
        )
        .fetch_all(&mut *tx)
        .await?;
        let mut known: HashMap<(ConversationId, UserId, ClientMsgId), Sent> = earlier_rows
            .iter()
            .map(|r| {
                let key = (
                    ConversationId(r.get(0)),
                    UserId(r.get(1)),
                    client_msg_id(r.get::<&[u8], _>(2)),
                );
                (
                    key,
                    Sent {
                        seq: Seq(r.get(3)),
                        sent_at: Timestamp(r.get(4)),
                    },
                )
            })
            .collect();

        let mut outcome = AppendOutcome::default();
        // The new rows, column by column, for one INSERT ... SELECT FROM UNNEST.
        let (mut c_col, mut seq_col, mut sender_col, mut id_col, mut env_col) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
        let mut touched = BTreeSet::new();
        for message in batch {
            let conversation = message.conversation;
            let is_member = members
                .get(&conversation)
                .is_some_and(|ids| ids.contains(&message.sender.id));
            if !is_member {
                let refusal =
                    membership::non_member(&mut *tx, conversation, message.sender.id).await?;
                outcome.results.push(Err(refusal.to_error_body()));
                continue;
            }
            match known.entry((conversation, message.sender.id, message.client_msg_id)) {
                Entry::Occupied(sent) => outcome.results.push(Ok(Appended::Duplicate(*sent.get()))),
                Entry::Vacant(slot) => {
                    let counter = counters.entry(conversation).or_default();
                    *counter = counter.next();
                    slot.insert(Sent {
                        seq: *counter,
                        sent_at: now,
                    });
                    touched.insert(conversation);
                    c_col.push(conversation.0);
                    seq_col.push(counter.0);
                    sender_col.push(message.sender.id.0);
                    id_col.push(message.client_msg_id.0.to_vec());
                    env_col.push(message.envelope.to_vec());
                    outcome.results.push(Ok(Appended::Stored(StoredMessage {
                        conversation,
                        seq: *counter,
                        sender: message.sender.username.clone(),
                        client_msg_id: message.client_msg_id,
                        sent_at: now,
                        envelope: message.envelope.clone(),
                    })));
                }
            }
        }
        if !c_col.is_empty() {
            // The rows and the counters they advance, in one statement.
            let (counter_ids, counter_seqs): (Vec<i64>, Vec<i64>) =
                touched.iter().map(|c| (c.0, counters[c].0)).unzip();
            sqlx::query(
                "WITH inserted AS (
                     INSERT INTO messages
                     (conversation_id, seq, sender_id, client_msg_id, sent_at, envelope)
                     SELECT c, s, u, id, $5, e
                     FROM UNNEST($1::bigint[], $2::bigint[], $3::bigint[], $4::bytea[],
                                 $6::bytea[]) AS b (c, s, u, id, e)
                 )
                 UPDATE conversations SET last_seq = v.seq
                 FROM UNNEST($7::bigint[], $8::bigint[]) AS v (id, seq)
                 WHERE conversations.id = v.id",
            )
            .bind(c_col)
            .bind(seq_col)
            .bind(sender_col)
            .bind(id_col)
            .bind(now.0)
            .bind(env_col)
            .bind(counter_ids)
            .bind(counter_seqs)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        outcome.audiences = members
            .into_iter()
            .filter(|(c, _)| touched.contains(c))
            .collect();
        if !touched.is_empty() {
            let ids: Vec<String> = touched.iter().map(|c| c.0.to_string()).collect();
            self.notify(format!("{} m {}", self.instance, ids.join(",")));
        }
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
             JOIN memberships ms ON ms.conversation_id = m.conversation_id AND ms.user_id = $1
                 AND m.seq > ms.joined_after
                 AND (ms.left_after IS NULL OR m.seq <= ms.left_after)
             JOIN users u ON u.id = m.sender_id
             WHERE m.conversation_id = $2 AND m.seq > $3
             ORDER BY m.seq LIMIT $4",
        )
        .bind(user.0)
        .bind(conversation.0)
        .bind(after.0)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|r| StoredMessage {
                conversation: ConversationId(r.get(0)),
                seq: Seq(r.get(1)),
                sender: r.get(2),
                client_msg_id: client_msg_id(r.get::<&[u8], _>(3)),
                sent_at: Timestamp(r.get(4)),
                envelope: Bytes::from(r.get::<Vec<u8>, _>(5)),
            })
            .collect())
    }

    async fn ack(&self, user: UserId, conversation: ConversationId, seq: Seq) -> StoreResult<()> {
        let updated = sqlx::query(
            "INSERT INTO acks (user_id, conversation_id, seq)
             SELECT $1, $2, $3 WHERE EXISTS
                 (SELECT 1 FROM memberships WHERE user_id = $1 AND conversation_id = $2)
             ON CONFLICT (user_id, conversation_id)
             DO UPDATE SET seq = GREATEST(acks.seq, excluded.seq)",
        )
        .bind(user.0)
        .bind(conversation.0)
        .bind(seq.0)
        .execute(&self.pool)
        .await?;
        if updated.rows_affected() == 0 {
            return Err(unknown_conversation(conversation));
        }
        Ok(())
    }

    async fn acks(&self, user: UserId) -> StoreResult<Vec<Cursor>> {
        let rows = sqlx::query(
            "SELECT conversation_id, seq FROM acks WHERE user_id = $1 ORDER BY conversation_id",
        )
        .bind(user.0)
        .fetch_all(&self.pool)
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
        let mut conn = self.pool.acquire().await?;
        conn.load_info(conversation, false).await
    }

    async fn member_ids(&self, conversation: ConversationId) -> StoreResult<Vec<UserId>> {
        let mut conn = self.pool.acquire().await?;
        conn.current_member_ids(conversation).await
    }

    fn changes(&self) -> Option<mpsc::Receiver<Change>> {
        self.feed
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take()
    }

    async fn close(&self) {
        // Let the notifier send what is queued, stop it, then close the pool.
        use std::sync::PoisonError;
        // The listener holds a pooled connection for as long as it runs (whether or not
        // anyone took the feed): closing the pool would wait for it forever.
        let listener = self
            .listener_task
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(listener) = listener {
            listener.abort();
            let _ = listener.await;
        }
        drop(
            self.notifier
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .take(),
        );
        let task = self
            .notifier_task
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(task) = task {
            let _ = task.await;
        }
        self.pool.close().await;
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
             WHERE k.conversation_id = $1 AND k.user_id = $2 ORDER BY e.epoch",
        )
        .bind(conversation.0)
        .bind(user.0)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| EpochKey {
                epoch: epoch_of(r.get(0)),
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
             VALUES ($1, $2, $3, $4, $5, $6, $7)
             ON CONFLICT (conversation_id, upload_id, idx) DO NOTHING",
        )
        .bind(chunk.conversation.0)
        .bind(chunk.upload.0.as_slice())
        .bind(i64::from(chunk.index))
        .bind(i64::from(chunk.total))
        .bind(uploader.0)
        .bind(chunk.bytes.as_ref())
        .bind(now.0)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn purge_uploads(&self, before: Timestamp) -> StoreResult<u64> {
        let purged = sqlx::query(
            "DELETE FROM chunks WHERE (conversation_id, upload_id) IN (
                 SELECT conversation_id, upload_id FROM chunks
                 GROUP BY conversation_id, upload_id
                 HAVING COUNT(*) < MAX(total) AND MAX(created_at) < $1)",
        )
        .bind(before.0)
        .execute(&self.pool)
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
             WHERE conversation_id = $1 AND upload_id = $2 AND idx = $3",
        )
        .bind(conversation.0)
        .bind(upload.0.as_slice())
        .bind(i64::from(index))
        .fetch_optional(&self.pool)
        .await?;
        Ok(bytes.map(Bytes::from))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notifications_parse_and_our_own_are_skipped() {
        assert_eq!(
            parse("7 m 1,2", 9),
            Some(Change::Messages(vec![ConversationId(1), ConversationId(2)]))
        );
        assert_eq!(
            parse("7 c 3 4,5", 9),
            Some(Change::Conversation {
                conversation: ConversationId(3),
                notify: vec![UserId(4), UserId(5)]
            })
        );
        assert_eq!(parse("9 m 1", 9), None, "our own");
        assert_eq!(parse("garbage", 9), None);
        assert_eq!(parse("7 m x", 9), None);
    }

    /// A store closes whether its change feed was never taken (a tool, a benchmark) or is
    /// still held: the listener's connection used to keep `pool.close()` waiting forever.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn closes_when_nobody_took_the_feed() {
        let Some(db) = crate::testing::TestDatabase::create().await else {
            return;
        };
        let store = PgStore::open(&db.url).await.expect("opens");
        tokio::time::timeout(Duration::from_secs(10), store.close())
            .await
            .expect("close returns without the feed taken");
        let taken = PgStore::open(&db.url).await.expect("opens again");
        let feed = taken.changes().expect("a feed");
        tokio::time::timeout(Duration::from_secs(10), taken.close())
            .await
            .expect("close returns with the feed still held");
        drop(feed);
    }
}
