//! The daemon's one session: the account, its keys, the server connection and everything
//! that crosses it. RPC methods call into [`Engine`]; two tasks run beside them:
//!
//! - the connection task dials a server through the [`Dialer`] (balancer-aware, with
//!   backoff), resumes the session with the stored token, syncs every conversation from the
//!   local cursors, then handles pushes until the connection dies, and starts over;
//! - the outbox task sends queued envelopes, oldest first, resending each (same client
//!   message id, so the server stores it once) until a server acknowledges it.
//!
//! Private keys stay in this process: envelopes are sealed and opened here, epoch keys are
//! unwrapped here, and the server only ever sees ciphertext and wrapped keys.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex as StdMutex};
use std::time::Duration;

use bytes::Bytes;
use fastchat_api::{
    Account, ConversationRef, FingerprintInfo, Group, MemberInfo, Message, MessageKind,
    SendReceipt, ServerEntry, ServerRef, Status, Verified, codes,
};
use fastchat_crypto::envelope::{self, Arrival};
use fastchat_crypto::membership::{self, Chain, Statement};
use fastchat_crypto::{
    ConversationKey, Envelope, Fingerprint, Header, Identity, Kind, PublicIdentity,
};
use fastchat_link::policy::{Backoff, ClientStrategy, Dialer};
use fastchat_link::{Link, LinkConfig, LinkError, TlsOptions};
use fastchat_proto::{
    self as proto, ClientMsgId, ConversationId, ConversationInfo, ConversationKind, Epoch,
    EpochMaterial, ErrorCode, Push, SessionToken, Timestamp, WrappedKey,
};
use serde::{Deserialize, Serialize};
use tokio::sync::{Mutex, Notify, broadcast, mpsc, oneshot, watch};
use tokio::time::Instant;

use crate::config::{Config, Strategy};
use crate::error::{ApiError, ApiResult};
use crate::keyfile;
use crate::store::{self, ConvKind, Conversation, Outgoing, SealedMessage, Store};

/// How long a call waits for a server connection before it says none is reachable.
const CONNECT_PATIENCE: Duration = Duration::from_secs(10);
/// How long `send` waits for the server's acknowledgement before it answers that the
/// message is queued (it stays in the outbox and is sent when a server answers).
const ACK_PATIENCE: Duration = Duration::from_secs(30);
/// Messages asked for per sync request.
const SYNC_BATCH: u32 = 500;

/// A live server connection.
#[derive(Debug, Clone)]
pub struct Connected {
    pub link: Link,
    pub server_id: String,
    pub addr: String,
    /// The session was resumed on it (a logged-in connection).
    pub authenticated: bool,
}

/// The membership statement of an epoch with its admin's signature: what `EpochMaterial`'s
/// opaque `proof` holds.
#[derive(Debug, Serialize, Deserialize)]
struct Proof {
    statement: Statement,
    #[serde(with = "serde_bytes")]
    signature: Vec<u8>,
}

#[derive(Debug, Default)]
struct Session {
    username: Option<String>,
    token: Option<SessionToken>,
    /// `None` while locked (after a restart, until `login`) or logged out.
    identity: Option<Arc<Identity>>,
    keys: HashMap<(ConversationId, u32), Arc<ConversationKey>>,
    chains: HashMap<ConversationId, Chain>,
}

type AckWaiter = oneshot::Sender<ApiResult<SendReceipt>>;

#[derive(Debug)]
struct Inner {
    config: Config,
    store: Store,
    session: Mutex<Session>,
    connection: watch::Sender<Option<Connected>>,
    /// Tells the connection task to drop its connection and start over (after a login or
    /// logout changes what the connection should be).
    restart: Notify,
    outbox_wake: Notify,
    acks: StdMutex<HashMap<ClientMsgId, AckWaiter>>,
    messages: broadcast::Sender<Message>,
    /// Unread messages over all current conversations, for the tray.
    unread: watch::Sender<u64>,
    focus: StdMutex<Option<ConversationRef>>,
    notifications: Option<mpsc::UnboundedSender<Message>>,
    template: LinkConfig,
}

/// A cheap handle on the daemon's session.
#[derive(Debug, Clone)]
pub struct Engine(Arc<Inner>);

fn hex(id: &ClientMsgId) -> String {
    id.0.iter().map(|b| format!("{b:02x}")).collect()
}

fn timestamp(ms: i64) -> jiff::Timestamp {
    jiff::Timestamp::from_millisecond(ms).unwrap_or(jiff::Timestamp::UNIX_EPOCH)
}

/// Sequence numbers start at 1; the wire carries them signed.
fn seq_u(seq: proto::Seq) -> u64 {
    u64::try_from(seq.0).unwrap_or(0)
}

fn seq_of(seq: u64) -> proto::Seq {
    proto::Seq(i64::try_from(seq).unwrap_or(i64::MAX))
}

fn now_ms() -> i64 {
    jiff::Timestamp::now().as_millisecond()
}

fn random_id() -> ApiResult<ClientMsgId> {
    let mut id = [0u8; 16];
    getrandom::fill(&mut id).map_err(ApiError::internal)?;
    Ok(ClientMsgId(id))
}

/// Trims, drops empty names and repeats (a CSV typed by a person).
fn names(list: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for n in list.iter().map(|n| n.trim()).filter(|n| !n.is_empty()) {
        if !out.iter().any(|o| o == n) {
            out.push(n.to_owned());
        }
    }
    out
}

fn to_conversation(info: &ConversationInfo, me: &str) -> Conversation {
    let (kind, name) = match &info.kind {
        ConversationKind::Group { name } => (ConvKind::Group, name.clone()),
        ConversationKind::Direct => (
            ConvKind::Direct,
            info.members
                .iter()
                .map(|m| m.username.clone())
                .find(|u| u != me)
                .unwrap_or_else(|| me.to_owned()),
        ),
    };
    Conversation {
        id: info.id,
        kind,
        name,
        epoch: info.epoch.0,
        members: info
            .members
            .iter()
            .map(|m| MemberInfo {
                username: m.username.clone(),
                admin: m.admin,
            })
            .collect(),
        last_seq: seq_u(info.last_seq),
        received: 0,
        read_seq: 0,
        current: info.has_member(me),
    }
}

fn group_of(c: &Conversation) -> Group {
    Group {
        name: c.name.clone(),
        members: c.members.iter().map(|m| m.username.clone()).collect(),
        epoch: c.epoch,
        unread: c.unread(),
    }
}

fn api_message(c: &Conversation, m: &store::StoredMessage) -> Message {
    Message {
        id: hex(&m.client_msg_id),
        seq: m.seq,
        conversation: c.reference(),
        sender: m.sender.clone(),
        sent_at: timestamp(m.sent_at_ms),
        kind: m.kind,
        text: m.body.clone(),
        image_path: m.image_path.clone(),
    }
}

/// Whether retrying on another connection can help.
fn transient(e: &LinkError) -> bool {
    match e {
        LinkError::Server(body) => body.code.is_retryable(),
        LinkError::Protocol(_) | LinkError::Tls(_) => false,
        _ => true,
    }
}

impl Engine {
    /// Opens the profile's store and restores its session (locked until `login`).
    pub async fn open(
        config: Config,
        store: Store,
        notifications: Option<mpsc::UnboundedSender<Message>>,
    ) -> anyhow::Result<Engine> {
        let mut template = LinkConfig::new("");
        template.client_name = format!("fastchatd/{}", env!("CARGO_PKG_VERSION"));
        template.push_queue = 1024;
        if let Some((ca, name)) = &config.tls {
            let pem = std::fs::read(ca)
                .map_err(|e| anyhow::anyhow!("cannot read the CA file {}: {e}", ca.display()))?;
            template.tls = Some(TlsOptions::from_pem(&pem, name)?);
        }
        let mut session = Session::default();
        if let Some((username, token)) = store.account().await? {
            session.username = Some(username);
            session.token = token;
        }
        let (connection, _) = watch::channel(None);
        let (messages, _) = broadcast::channel(1024);
        let (unread, _) = watch::channel(0);
        Ok(Engine(Arc::new(Inner {
            config,
            store,
            session: Mutex::new(session),
            connection,
            restart: Notify::new(),
            outbox_wake: Notify::new(),
            acks: StdMutex::new(HashMap::new()),
            messages,
            unread,
            focus: StdMutex::new(None),
            notifications,
            template,
        })))
    }

    fn dialer(&self) -> Dialer {
        let c = &self.0.config;
        let fallback = match c.strategy {
            Strategy::Client(s) => s,
            Strategy::Balancer => ClientStrategy::ClientRoundRobin,
        };
        let dialer = Dialer::new(c.servers.clone(), fallback, self.0.template.clone());
        match (&c.balancer, c.strategy) {
            (Some(b), Strategy::Balancer) => dialer.with_balancer(b.clone()),
            _ => dialer,
        }
    }

    /// The unread count, updated as messages arrive and are read.
    #[must_use]
    pub fn unread(&self) -> watch::Receiver<u64> {
        self.0.unread.subscribe()
    }

    async fn publish_unread(&self) -> Result<(), sqlx::Error> {
        let total = self
            .0
            .store
            .conversations()
            .await?
            .iter()
            .filter(|c| c.current)
            .map(Conversation::unread)
            .sum();
        self.0
            .unread
            .send_if_modified(|n| std::mem::replace(n, total) != total);
        Ok(())
    }

    // --- background tasks ---

    /// Keeps a server connection (and the session on it) up until `shutdown` fires.
    pub async fn run_connection(self, mut shutdown: watch::Receiver<bool>) {
        let mut dialer = self.dialer();
        let mut failed: Option<String> = None;
        let mut backoff = Backoff::default();
        loop {
            if let (Some(balancer), Strategy::Client(_)) =
                (&self.0.config.balancer, self.0.config.strategy)
            {
                // Client-side strategies choose from the balancer's list; the last known one
                // stays in use while it cannot be asked.
                let _ = dialer.refresh_from(balancer).await;
            }
            let far = Instant::now() + Duration::from_secs(3600);
            let dialed = tokio::select! {
                d = dialer.connect(failed.as_deref(), far) => d,
                _ = shutdown.changed() => return,
            };
            let (addr, link, pushes) = match dialed {
                Ok(d) => d,
                Err(e) => {
                    // No server known (the balancer is down and none was learnt yet).
                    tracing::debug!(error = %e, "no server to connect to");
                    tokio::select! {
                        () = tokio::time::sleep(backoff.next_delay()) => continue,
                        _ = shutdown.changed() => return,
                    }
                }
            };
            backoff.reset();
            let server_id = link.welcome().server_id.clone();
            let authenticated = match self.resume(&link).await {
                Ok(a) => a,
                Err(e) => {
                    tracing::info!(server = %addr, error = %e, "could not resume on this server");
                    failed = Some(addr);
                    continue;
                }
            };
            tracing::info!(server = %server_id, %addr, authenticated, "connected");
            self.0.connection.send_replace(Some(Connected {
                link: link.clone(),
                server_id,
                addr: addr.clone(),
                authenticated,
            }));
            self.0.outbox_wake.notify_one();
            let ended = tokio::select! {
                r = self.serve_connection(&link, pushes, authenticated) => r,
                () = self.0.restart.notified() => Ok(()),
                _ = shutdown.changed() => {
                    self.0.connection.send_replace(None);
                    return;
                }
            };
            self.0.connection.send_replace(None);
            match ended {
                Ok(()) => failed = None,
                Err(e) => {
                    tracing::warn!(server = %addr, error = %e, "lost the server connection; reconnecting");
                    failed = Some(addr);
                }
            }
        }
    }

    /// Resumes the stored session on a new connection. `Ok(false)` when there is none (or
    /// the server no longer knows it: then the account is logged out).
    async fn resume(&self, link: &Link) -> Result<bool, LinkError> {
        let token = self.0.session.lock().await.token.clone();
        let Some(token) = token else {
            return Ok(false);
        };
        match link.request(proto::Resume { token }).await {
            Ok(_) => Ok(true),
            Err(LinkError::Server(body)) if body.code == ErrorCode::InvalidSession => {
                tracing::warn!("the server ended this session; log in again");
                let mut s = self.0.session.lock().await;
                s.token = None;
                s.identity = None;
                drop(s);
                if let Err(e) = self.0.store.forget_token().await {
                    tracing::error!(error = %e, "cannot record the logout");
                }
                Ok(false)
            }
            Err(e) => Err(e),
        }
    }

    /// Syncs, then handles pushes until the connection ends.
    async fn serve_connection(
        &self,
        link: &Link,
        mut pushes: fastchat_link::Pushes,
        authenticated: bool,
    ) -> Result<(), LinkError> {
        if !authenticated {
            // Nothing to sync; keep the connection for signup and login, and notice when it
            // dies.
            while pushes.recv().await.is_some() {}
            return Err(LinkError::Closed);
        }
        // Pushes are forwarded to a queue of our own so that the link's reader never waits
        // on us while we wait on the link (for a key, say).
        let (tx, mut queue) = mpsc::unbounded_channel();
        let forward = tokio::spawn(async move {
            while let Some(p) = pushes.recv().await {
                if tx.send(p).is_err() {
                    break;
                }
            }
        });
        let result = async {
            self.sync(link).await?;
            self.open_sealed(link).await?;
            while let Some(push) = queue.recv().await {
                match push {
                    Push::Messages(messages) => {
                        for m in messages {
                            self.incoming(link, m).await?;
                        }
                    }
                    Push::Conversation(info) => self.conversation_changed(&info).await?,
                }
            }
            Err(LinkError::Closed)
        }
        .await;
        forward.abort();
        result
    }

    async fn me(&self) -> Option<String> {
        self.0.session.lock().await.username.clone()
    }

    /// Refreshes the conversation list from the server.
    async fn refresh(&self, link: &Link) -> Result<(), LinkError> {
        let Some(me) = self.me().await else {
            return Ok(());
        };
        let list = link.request(proto::ListConversations {}).await?;
        let store = &self.0.store;
        let mut ids = Vec::new();
        for info in &list.conversations {
            ids.push(info.id);
            store
                .upsert_conversation(&to_conversation(info, &me))
                .await
                .map_err(local)?;
        }
        store.keep_current(&ids).await.map_err(local)?;
        for acked in &list.acked {
            store
                .mark_read(acked.conversation, seq_u(acked.seq))
                .await
                .map_err(local)?;
        }
        self.publish_unread().await.map_err(local)
    }

    async fn conversation_changed(&self, info: &ConversationInfo) -> Result<(), LinkError> {
        let Some(me) = self.me().await else {
            return Ok(());
        };
        self.0
            .store
            .upsert_conversation(&to_conversation(info, &me))
            .await
            .map_err(local)
    }

    async fn sync(&self, link: &Link) -> Result<(), LinkError> {
        self.refresh(link).await?;
        loop {
            let cursors = self
                .0
                .store
                .conversations()
                .await
                .map_err(local)?
                .iter()
                .map(|c| proto::Cursor {
                    conversation: c.id,
                    seq: seq_of(c.received),
                })
                .collect();
            let batch = link
                .request(proto::SyncMessages {
                    cursors,
                    limit: SYNC_BATCH,
                })
                .await?;
            for m in batch.messages {
                self.incoming(link, m).await?;
            }
            if !batch.more {
                return Ok(());
            }
        }
    }

    /// Handles one message from the server: verifies, decrypts and stores it, or keeps it
    /// sealed while the key is locked, or records why it was rejected. Only transport
    /// errors are returned (the message is then fetched again after the reconnect).
    async fn incoming(&self, link: &Link, m: proto::StoredMessage) -> Result<(), LinkError> {
        let store = &self.0.store;
        let mut conv = store.conversation(m.conversation).await.map_err(local)?;
        if conv.is_none() {
            self.refresh(link).await?;
            conv = store.conversation(m.conversation).await.map_err(local)?;
        }
        let Some(conv) = conv else {
            tracing::warn!(
                conversation = m.conversation.0,
                "message for an unknown conversation ignored"
            );
            return Ok(());
        };
        if seq_u(m.seq) <= conv.received {
            return Ok(());
        }
        let identity = self.0.session.lock().await.identity.clone();
        let Some(identity) = identity else {
            return store
                .keep_sealed(&SealedMessage {
                    conversation: m.conversation,
                    seq: seq_u(m.seq),
                    sender: m.sender,
                    client_msg_id: m.client_msg_id,
                    sent_at_ms: m.sent_at.0,
                    envelope: m.envelope.to_vec(),
                })
                .await
                .map_err(local);
        };
        self.open_and_store(link, &conv, &identity, m).await
    }

    async fn open_and_store(
        &self,
        link: &Link,
        conv: &Conversation,
        identity: &Identity,
        m: proto::StoredMessage,
    ) -> Result<(), LinkError> {
        let store = &self.0.store;
        let opened = self.open_envelope(link, conv, identity, &m).await?;
        let (kind, body) = match opened {
            Ok(x) => x,
            Err(reason) => {
                tracing::warn!(
                    conversation = %conv.reference(), seq = m.seq.0, sender = %m.sender, %reason,
                    "rejected a message that failed verification"
                );
                return store
                    .reject(m.conversation, seq_u(m.seq), &m.sender, &reason)
                    .await
                    .map_err(local);
            }
        };
        let stored = store::StoredMessage {
            conversation: m.conversation,
            seq: seq_u(m.seq),
            sender: m.sender,
            client_msg_id: m.client_msg_id,
            sent_at_ms: m.sent_at.0,
            kind,
            body,
            image_path: None,
        };
        if store.receive(&stored).await.map_err(local)? {
            let message = api_message(conv, &stored);
            let me = self.me().await;
            let focused = self
                .0
                .focus
                .lock()
                .map(|f| f.as_ref() == Some(&message.conversation))
                .unwrap_or(false);
            if focused {
                let _ = store.mark_read(conv.id, stored.seq).await;
            }
            if me.as_deref() != Some(&stored.sender)
                && !focused
                && let Some(tx) = &self.0.notifications
            {
                let _ = tx.send(message.clone());
            }
            let _ = self.0.messages.send(message);
            self.publish_unread().await.map_err(local)?;
        }
        Ok(())
    }

    /// Verifies and decrypts; the inner error is why the message is rejected.
    async fn open_envelope(
        &self,
        link: &Link,
        conv: &Conversation,
        identity: &Identity,
        m: &proto::StoredMessage,
    ) -> Result<Result<(MessageKind, Option<String>), String>, LinkError> {
        let envelope = match Envelope::decode(&m.envelope) {
            Ok(e) => e,
            Err(e) => return Ok(Err(e.to_string())),
        };
        let sender_key = match self.known_key(link, &m.sender).await? {
            Ok(k) => k,
            Err(e) => return Ok(Err(e.message)),
        };
        let Some(key) = self
            .epoch_key(link, conv, identity, envelope.header.epoch.0)
            .await?
        else {
            return Ok(Err(format!(
                "no verified key for epoch {}",
                envelope.header.epoch.0
            )));
        };
        let arrival = Arrival {
            conversation: m.conversation,
            sender: &m.sender,
            client_msg_id: m.client_msg_id,
        };
        let content = match envelope.open(arrival, &sender_key, &key) {
            Ok(c) => c,
            Err(e) => return Ok(Err(e.to_string())),
        };
        Ok(match envelope.header.kind {
            Kind::Text => match String::from_utf8(content) {
                Ok(text) => Ok((MessageKind::Text, Some(text))),
                Err(_) => Err("text that is not UTF-8".to_owned()),
            },
            // Images are stored by the images work (#7); until then they are listed.
            Kind::Image { file_name, .. } => Ok((MessageKind::Image, Some(file_name))),
        })
    }

    /// Opens what arrived while the key was locked.
    async fn open_sealed(&self, link: &Link) -> Result<(), LinkError> {
        let identity = self.0.session.lock().await.identity.clone();
        let Some(identity) = identity else {
            return Ok(());
        };
        let store = &self.0.store;
        for s in store.sealed().await.map_err(local)? {
            let Some(conv) = store.conversation(s.conversation).await.map_err(local)? else {
                continue;
            };
            let m = proto::StoredMessage {
                conversation: s.conversation,
                seq: seq_of(s.seq),
                sender: s.sender,
                client_msg_id: s.client_msg_id,
                sent_at: Timestamp(s.sent_at_ms),
                envelope: Bytes::from(s.envelope),
            };
            // `received` is already past it; store it directly.
            let mut conv = conv;
            conv.received = 0;
            self.open_and_store(link, &conv, &identity, m).await?;
            store.unseal(s.conversation, s.seq).await.map_err(local)?;
        }
        Ok(())
    }

    // --- keys ---

    /// The pinned key of `username`, pinning what the server presents on first sight.
    async fn known_key(
        &self,
        link: &Link,
        username: &str,
    ) -> Result<ApiResult<PublicIdentity>, LinkError> {
        if let Some((der, _)) = self.0.store.pin(username).await.map_err(local)? {
            return Ok(PublicIdentity::from_der(&der).map_err(ApiError::from));
        }
        let presented = match link
            .request(proto::FetchKey {
                username: username.to_owned(),
            })
            .await
        {
            Ok(k) => k,
            Err(e) if transient(&e) => return Err(e),
            Err(e) => return Ok(Err(e.into())),
        };
        let key = match PublicIdentity::from_der(&presented.public_key) {
            Ok(k) => k,
            Err(e) => return Ok(Err(e.into())),
        };
        self.0
            .store
            .save_pin(username, key.der(), &key.fingerprint().0, false)
            .await
            .map_err(local)?;
        tracing::info!(%username, fingerprint = %key.fingerprint(), "pinned a new key (trust on first use)");
        Ok(Ok(key))
    }

    /// The key to encrypt to `username`: what the server presents now, which must be the
    /// pinned one.
    async fn checked_key(&self, link: &Link, username: &str) -> ApiResult<PublicIdentity> {
        let pinned = self.0.store.pin(username).await?;
        let presented = link
            .request(proto::FetchKey {
                username: username.to_owned(),
            })
            .await?;
        let key = PublicIdentity::from_der(&presented.public_key)?;
        match pinned {
            Some((der, _)) if der != key.der() => {
                let pinned = Fingerprint::of(&der);
                Err(ApiError::new(
                    codes::KEY_CHANGED,
                    format!(
                        "{username}'s key changed (pinned {pinned}, the server now presents {}): compare the new fingerprint with {username} and run `fastchatctl keys verify {username} FINGERPRINT`",
                        key.fingerprint()
                    ),
                ))
            }
            Some(_) => Ok(key),
            None => {
                self.0
                    .store
                    .save_pin(username, key.der(), &key.fingerprint().0, false)
                    .await?;
                Ok(key)
            }
        }
    }

    /// The key of `epoch` of `conv`, fetched, verified against its signed membership
    /// statement and unwrapped if not cached. `None` if there is no verified one.
    async fn epoch_key(
        &self,
        link: &Link,
        conv: &Conversation,
        identity: &Identity,
        epoch: u32,
    ) -> Result<Option<Arc<ConversationKey>>, LinkError> {
        if let Some(k) = self.0.session.lock().await.keys.get(&(conv.id, epoch)) {
            return Ok(Some(Arc::clone(k)));
        }
        let fetched = link
            .request(proto::FetchEpochKeys {
                conversation: conv.id,
            })
            .await;
        let mut keys = match fetched {
            Ok(k) => k.keys,
            Err(e) if transient(&e) => return Err(e),
            Err(e) => {
                tracing::warn!(conversation = %conv.reference(), error = %e, "cannot fetch epoch keys");
                return Ok(None);
            }
        };
        keys.sort_by_key(|k| k.epoch.0);
        let me = self.me().await.unwrap_or_default();
        let mut chain = self.chain(conv.id).await.map_err(local)?;
        let mut verified = Vec::new();
        for k in keys {
            if chain.current().is_some_and(|c| c.epoch.0 >= k.epoch.0) {
                // Already accepted; only its key may be missing from the cache.
                if let Ok(key) = ConversationKey::unwrap(identity, &k.wrapped) {
                    verified.push((k.epoch.0, Arc::new(key)));
                }
                continue;
            }
            let proof: Proof = match postcard::from_bytes(&k.proof) {
                Ok(p) => p,
                Err(e) => {
                    tracing::warn!(conversation = %conv.reference(), epoch = k.epoch.0, error = %e, "epoch without a readable membership proof");
                    continue;
                }
            };
            let st = &proof.statement;
            let names_this = st.conversation == conv.id
                || (st.epoch.0 == 1 && st.conversation == membership::UNASSIGNED);
            let name_ok = match conv.kind {
                ConvKind::Group => st.name.as_deref() == Some(conv.name.as_str()),
                // Exactly the two of us, and made by one of us.
                ConvKind::Direct => {
                    st.name.is_none()
                        && st.members.len() == 2
                        && st.members.contains_key(&me)
                        && st.members.contains_key(&st.changed_by)
                }
            };
            if st.epoch != k.epoch || st.changed_by != k.wrapped_by || !names_this || !name_ok {
                tracing::warn!(conversation = %conv.reference(), epoch = k.epoch.0, "membership proof does not match its epoch");
                continue;
            }
            let signer = match self.known_key(link, &st.changed_by).await? {
                Ok(k) => k,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot check a membership proof");
                    continue;
                }
            };
            // After epochs we were not in (removed, then added again), only someone who was
            // an admin when we last saw the group may continue it.
            if let Err(e) =
                chain.accept_after_gap(proof.statement.clone(), &proof.signature, &signer)
            {
                tracing::warn!(conversation = %conv.reference(), epoch = k.epoch.0, error = %e, "refused a membership change");
                continue;
            }
            match ConversationKey::unwrap(identity, &k.wrapped) {
                Ok(key) => verified.push((k.epoch.0, Arc::new(key))),
                Err(e) => {
                    tracing::warn!(conversation = %conv.reference(), epoch = k.epoch.0, error = %e, "cannot unwrap an epoch key")
                }
            }
        }
        self.save_chain(conv.id, &chain).await.map_err(local)?;
        let mut s = self.0.session.lock().await;
        s.chains.insert(conv.id, chain);
        for (e, key) in verified {
            s.keys.insert((conv.id, e), key);
        }
        Ok(s.keys.get(&(conv.id, epoch)).cloned())
    }

    /// The membership chain accepted so far for a conversation (kept across restarts).
    async fn chain(&self, id: ConversationId) -> Result<Chain, sqlx::Error> {
        if let Some(c) = self.0.session.lock().await.chains.get(&id) {
            return Ok(c.clone());
        }
        Ok(match self.0.store.chain(id).await? {
            Some(bytes) => postcard::from_bytes(&bytes).unwrap_or_else(|e| {
                tracing::warn!(conversation = id.0, error = %e, "unreadable membership chain; starting over");
                Chain::default()
            }),
            None => Chain::default(),
        })
    }

    async fn save_chain(&self, id: ConversationId, chain: &Chain) -> Result<(), sqlx::Error> {
        let bytes = postcard::to_allocvec(chain).map_err(|e| sqlx::Error::Encode(e.into()))?;
        self.0.store.save_chain(id, &bytes).await
    }

    // --- what the RPC methods call ---

    async fn connection(&self, authenticated: bool) -> ApiResult<Connected> {
        let mut rx = self.0.connection.subscribe();
        let wait = async {
            rx.wait_for(|c| {
                c.as_ref()
                    .is_some_and(|c| c.authenticated || !authenticated)
            })
            .await
            .map(|c| c.clone())
        };
        match tokio::time::timeout(CONNECT_PATIENCE, wait).await {
            Ok(Ok(Some(c))) => Ok(c),
            _ if authenticated && self.0.session.lock().await.token.is_none() => {
                Err(ApiError::not_logged_in())
            }
            _ => Err(ApiError::unavailable(format!(
                "waited {}s for a connection",
                CONNECT_PATIENCE.as_secs()
            ))),
        }
    }

    /// A fresh connection to the server in use, for signup and login (the session's own
    /// connection is replaced once they succeed).
    async fn fresh_link(&self) -> ApiResult<Link> {
        let current = self.connection(false).await?;
        let config = LinkConfig {
            addr: current.addr.clone(),
            ..self.0.template.clone()
        };
        let (link, _pushes) = Link::connect(&config).await?;
        Ok(link)
    }

    async fn logged_in(&self) -> ApiResult<(String, Arc<Identity>)> {
        let s = self.0.session.lock().await;
        match (&s.username, &s.token, &s.identity) {
            (Some(u), Some(_), Some(id)) => Ok((u.clone(), Arc::clone(id))),
            (Some(_), Some(_), None) => Err(ApiError::locked()),
            _ => Err(ApiError::not_logged_in()),
        }
    }

    async fn start_session(
        &self,
        username: &str,
        token: SessionToken,
        identity: Identity,
    ) -> ApiResult<Account> {
        self.0.store.set_account(username, &token).await?;
        let fingerprint = identity.public().fingerprint().to_string();
        self.0
            .store
            .save_pin(
                username,
                identity.public().der(),
                &identity.public().fingerprint().0,
                true,
            )
            .await?;
        {
            let mut s = self.0.session.lock().await;
            if s.username.as_deref() != Some(username) {
                s.keys.clear();
                s.chains.clear();
            }
            s.username = Some(username.to_owned());
            s.token = Some(token);
            s.identity = Some(Arc::new(identity));
        }
        // Move the session's connection onto the new token.
        self.0.restart.notify_one();
        Ok(Account {
            username: username.to_owned(),
            fingerprint,
        })
    }

    pub async fn signup(&self, username: String, password: String) -> ApiResult<Account> {
        proto::validate::username(&username).map_err(ApiError::invalid)?;
        let bits = self.0.config.key_bits;
        let identity = tokio::task::spawn_blocking(move || Identity::generate(bits))
            .await
            .map_err(ApiError::internal)??;
        let link = self.fresh_link().await?;
        let session = link
            .request(proto::Signup {
                username: username.clone(),
                password: password.clone(),
                public_key: Bytes::copy_from_slice(identity.public().der()),
            })
            .await?;
        let identity =
            keyfile::save(&self.0.config.data_dir, &username, identity, password).await?;
        self.start_session(&username, session.token, identity).await
    }

    pub async fn login(&self, username: String, password: String) -> ApiResult<Account> {
        let link = self.fresh_link().await?;
        let session = link
            .request(proto::Login {
                username: username.clone(),
                password: password.clone(),
            })
            .await?;
        let dir = &self.0.config.data_dir;
        let identity = match keyfile::load(dir, &username, password.clone()).await? {
            Some(identity) => {
                // The server's copy of the public key must still be ours.
                let published = link
                    .request(proto::FetchKey {
                        username: username.clone(),
                    })
                    .await?;
                if published.public_key.as_ref() != identity.public().der() {
                    link.request(proto::PublishKey {
                        public_key: Bytes::copy_from_slice(identity.public().der()),
                    })
                    .await?;
                }
                identity
            }
            None => {
                // First login on this machine: a new identity, published; the others see a
                // key change for this user and must verify it.
                tracing::info!(%username, "no identity key for this user here; generating one");
                let bits = self.0.config.key_bits;
                let identity = tokio::task::spawn_blocking(move || Identity::generate(bits))
                    .await
                    .map_err(ApiError::internal)??;
                link.request(proto::PublishKey {
                    public_key: Bytes::copy_from_slice(identity.public().der()),
                })
                .await?;
                keyfile::save(dir, &username, identity, password).await?
            }
        };
        self.start_session(&username, session.token, identity).await
    }

    pub async fn logout(&self) -> ApiResult<()> {
        let connection = self.0.connection.borrow().clone();
        if let Some(c) = connection
            && c.authenticated
        {
            // Best effort: the token is forgotten here either way.
            let link = c.link.clone();
            tokio::spawn(async move {
                let _ = link.request(proto::Logout {}).await;
            });
        }
        {
            let mut s = self.0.session.lock().await;
            s.token = None;
            s.identity = None;
            s.keys.clear();
            s.chains.clear();
        }
        self.0.store.forget_token().await?;
        self.0.restart.notify_one();
        Ok(())
    }

    pub async fn status(&self) -> ApiResult<Status> {
        let (username, token, locked) = {
            let s = self.0.session.lock().await;
            (s.username.clone(), s.token.is_some(), s.identity.is_none())
        };
        let username = username.filter(|_| token);
        let connection = self.0.connection.borrow().clone();
        let mut unread = 0;
        for c in self.0.store.conversations().await? {
            if c.current {
                unread += c.unread();
            }
        }
        let fingerprint = match &username {
            Some(u) => self
                .0
                .store
                .pin(u)
                .await?
                .map(|(der, _)| Fingerprint::of(&der).to_string()),
            None => None,
        };
        Ok(Status {
            profile: self.0.config.profile.clone(),
            connected: connection
                .as_ref()
                .is_some_and(|c| c.authenticated || username.is_none()),
            server: connection.map(|c| ServerRef {
                id: c.server_id,
                addr: c.addr,
            }),
            strategy: self.0.config.strategy.name().to_owned(),
            fingerprint,
            unread,
            pending: self.0.store.outbox_len().await?,
            rejected: self.0.store.rejected_count().await?,
            locked: username.is_some() && locked,
            username,
        })
    }

    /// Finds a conversation, asking the server for news if it is not known here.
    async fn find(&self, link: &Link, reference: &ConversationRef) -> ApiResult<Conversation> {
        if let Some(c) = self.0.store.find(reference).await?
            && c.current
        {
            return Ok(c);
        }
        self.refresh(link).await?;
        match self.0.store.find(reference).await? {
            Some(c) if c.current => Ok(c),
            _ => Err(ApiError::new(
                codes::UNKNOWN_CONVERSATION,
                match reference {
                    ConversationRef::Group(g) => {
                        format!("no group named {g} that you are a member of")
                    }
                    ConversationRef::User(u) => format!("no conversation with {u}"),
                },
            )),
        }
    }

    /// Signs a membership statement and wraps a new key for each of its members.
    async fn material(
        &self,
        link: &Link,
        identity: &Identity,
        statement: Statement,
    ) -> ApiResult<(EpochMaterial, ConversationKey, Statement)> {
        let key = ConversationKey::generate();
        let mut wrapped = Vec::new();
        for member in statement.members.keys() {
            let public = if member == &statement.changed_by {
                identity.public().clone()
            } else {
                self.checked_key(link, member).await?
            };
            wrapped.push(WrappedKey {
                username: member.clone(),
                wrapped: Bytes::from(key.wrap_for(&public)?),
            });
        }
        let signature = statement.sign(identity)?;
        let proof = postcard::to_allocvec(&Proof {
            statement: statement.clone(),
            signature,
        })
        .map_err(ApiError::internal)?;
        Ok((
            EpochMaterial {
                keys: wrapped,
                proof: Bytes::from(proof),
            },
            key,
            statement,
        ))
    }

    /// Caches a key and statement this daemon made itself.
    async fn adopt(
        &self,
        identity: &Identity,
        info: &ConversationInfo,
        key: ConversationKey,
        statement: Statement,
        proof: &[u8],
    ) -> ApiResult<Conversation> {
        let me = statement.changed_by.clone();
        let conv = to_conversation(info, &me);
        self.0.store.upsert_conversation(&conv).await?;
        let mut chain = self.chain(info.id).await?;
        let signature: Proof = postcard::from_bytes(proof).map_err(ApiError::internal)?;
        chain.accept_after_gap(statement, &signature.signature, identity.public())?;
        self.save_chain(info.id, &chain).await?;
        let mut s = self.0.session.lock().await;
        s.keys.insert((info.id, info.epoch.0), Arc::new(key));
        s.chains.insert(info.id, chain);
        drop(s);
        Ok(self.0.store.conversation(info.id).await?.unwrap_or(conv))
    }

    pub async fn create_group(&self, name: String, members: Vec<String>) -> ApiResult<Group> {
        let (me, identity) = self.logged_in().await?;
        proto::validate::group_name(&name).map_err(ApiError::invalid)?;
        let link = self.connection(true).await?.link;
        let others: Vec<String> = names(&members).into_iter().filter(|m| *m != me).collect();
        let mut roster = BTreeMap::new();
        roster.insert(me.clone(), true);
        for o in &others {
            roster.insert(o.clone(), false);
        }
        let statement = Statement {
            conversation: membership::UNASSIGNED,
            epoch: Epoch(1),
            name: Some(name.clone()),
            members: roster,
            changed_by: me.clone(),
        };
        let (material, key, statement) = self.material(&link, &identity, statement).await?;
        let proof = material.proof.clone();
        let info = link
            .request(proto::CreateGroup {
                name,
                members: others,
                material,
            })
            .await?;
        let conv = self.adopt(&identity, &info, key, statement, &proof).await?;
        Ok(group_of(&conv))
    }

    pub async fn amend_group(
        &self,
        name: String,
        add: Vec<String>,
        remove: Vec<String>,
    ) -> ApiResult<Group> {
        let (me, identity) = self.logged_in().await?;
        let link = self.connection(true).await?.link;
        let (add, remove) = (names(&add), names(&remove));
        if add.is_empty() && remove.is_empty() {
            return Err(ApiError::invalid(
                "nothing to change: give members to add or remove",
            ));
        }
        let mut attempt = 0;
        loop {
            let conv = self
                .find(&link, &ConversationRef::Group(name.clone()))
                .await?;
            // Start from the members the last admin signed for, not from what the server
            // says, so a member the server slipped in gets no key.
            let _ = self.epoch_key(&link, &conv, &identity, conv.epoch).await?;
            let signed = self
                .0
                .session
                .lock()
                .await
                .chains
                .get(&conv.id)
                .and_then(|c| c.current().cloned());
            let Some(signed) = signed.filter(|s| s.epoch.0 == conv.epoch) else {
                return Err(ApiError::new(
                    codes::FORBIDDEN,
                    format!(
                        "the current members of {name} are not signed by an admin; refusing to change them"
                    ),
                ));
            };
            let mut roster = signed.members.clone();
            for r in &remove {
                if roster.remove(r).is_none() {
                    return Err(ApiError::invalid(format!("{r} is not a member of {name}")));
                }
            }
            for a in &add {
                if roster.insert(a.clone(), false).is_some() {
                    return Err(ApiError::invalid(format!(
                        "{a} is already a member of {name}"
                    )));
                }
            }
            let statement = Statement {
                conversation: conv.id,
                epoch: Epoch(conv.epoch + 1),
                name: Some(name.clone()),
                members: roster,
                changed_by: me.clone(),
            };
            let (material, key, statement) = self.material(&link, &identity, statement).await?;
            let proof = material.proof.clone();
            let result = link
                .request(proto::AmendGroup {
                    conversation: conv.id,
                    add: add.clone(),
                    remove: remove.clone(),
                    new_epoch: Epoch(conv.epoch + 1),
                    material,
                })
                .await;
            match result {
                Ok(info) => {
                    let conv = self.adopt(&identity, &info, key, statement, &proof).await?;
                    return Ok(group_of(&conv));
                }
                Err(LinkError::Server(body))
                    if body.code == ErrorCode::EpochConflict && attempt == 0 =>
                {
                    // Someone changed the group meanwhile: re-read it and try once more.
                    attempt += 1;
                    self.refresh(&link).await?;
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    pub async fn list_groups(&self) -> ApiResult<Vec<Group>> {
        if let Ok(c) = self.connection(true).await {
            let _ = self.refresh(&c.link).await;
        }
        Ok(self
            .0
            .store
            .conversations()
            .await?
            .iter()
            .filter(|c| c.kind == ConvKind::Group && c.current)
            .map(group_of)
            .collect())
    }

    pub async fn group_members(&self, name: String) -> ApiResult<Vec<MemberInfo>> {
        let link = self.connection(true).await?.link;
        Ok(self
            .find(&link, &ConversationRef::Group(name))
            .await?
            .members)
    }

    /// The conversation to send to, opening a direct one if needed.
    async fn target(
        &self,
        link: &Link,
        me: &str,
        identity: &Identity,
        to: &ConversationRef,
    ) -> ApiResult<Conversation> {
        match self.find(link, to).await {
            Ok(c) => Ok(c),
            Err(e) if e.code == codes::UNKNOWN_CONVERSATION => {
                let ConversationRef::User(peer) = to else {
                    return Err(e);
                };
                if peer == me {
                    return Err(ApiError::invalid(
                        "a direct conversation needs another user",
                    ));
                }
                let mut roster = BTreeMap::new();
                roster.insert(me.to_owned(), false);
                roster.insert(peer.clone(), false);
                let statement = Statement {
                    conversation: membership::UNASSIGNED,
                    epoch: Epoch(1),
                    name: None,
                    members: roster,
                    changed_by: me.to_owned(),
                };
                let (material, key, statement) = self.material(link, identity, statement).await?;
                let proof = material.proof.clone();
                let info = link
                    .request(proto::OpenDirect {
                        peer: peer.clone(),
                        material,
                    })
                    .await?;
                if info.epoch.0 == 1 && self.0.store.conversation(info.id).await?.is_none() {
                    self.adopt(identity, &info, key, statement, &proof).await
                } else {
                    // It existed already (opened by the peer meanwhile): use its keys.
                    self.conversation_changed(&info).await?;
                    self.find(link, to).await
                }
            }
            Err(e) => Err(e),
        }
    }

    pub async fn send(&self, to: ConversationRef, text: String) -> ApiResult<SendReceipt> {
        if text.trim().is_empty() {
            return Err(ApiError::invalid("the message is empty"));
        }
        let (me, identity) = self.logged_in().await?;
        // A known conversation whose key is at hand needs no server now: the message is
        // queued and goes out when one answers.
        let known = self.0.store.find(&to).await?.filter(|c| c.current);
        let cached = match &known {
            Some(c) => self
                .0
                .session
                .lock()
                .await
                .keys
                .get(&(c.id, c.epoch))
                .cloned(),
            None => None,
        };
        let (conv, key, max) = match (known, cached) {
            (Some(conv), Some(key)) => {
                let max = self
                    .0
                    .connection
                    .borrow()
                    .as_ref()
                    .map_or(proto::MAX_ENVELOPE_LEN, |c| {
                        usize::try_from(c.link.welcome().max_envelope).unwrap_or(usize::MAX)
                    });
                (conv, key, max)
            }
            _ => {
                let link = self.connection(true).await?.link;
                let conv = self.target(&link, &me, &identity, &to).await?;
                let Some(key) = self.epoch_key(&link, &conv, &identity, conv.epoch).await? else {
                    return Err(ApiError::new(
                        codes::FORBIDDEN,
                        format!(
                            "no verified key for the current epoch of {}",
                            conv.reference()
                        ),
                    ));
                };
                let max = usize::try_from(link.welcome().max_envelope).unwrap_or(usize::MAX);
                (conv, key, max)
            }
        };
        let id = random_id()?;
        let header = Header {
            conversation: conv.id,
            epoch: Epoch(conv.epoch),
            sender: me.clone(),
            client_msg_id: id,
            sent_at: Timestamp(now_ms()),
            kind: Kind::Text,
        };
        let body = text.clone();
        let sealed = tokio::task::spawn_blocking(move || {
            envelope::seal(&identity, &key, header, body.as_bytes())
        })
        .await
        .map_err(ApiError::internal)??;
        if sealed.len() > max {
            return Err(ApiError::invalid(format!(
                "the message is too long ({} bytes sealed; the server takes at most {max})",
                sealed.len()
            )));
        }
        let (tx, rx) = oneshot::channel();
        self.0
            .acks
            .lock()
            .map_err(ApiError::internal)?
            .insert(id, tx);
        self.0
            .store
            .queue(&Outgoing {
                client_msg_id: id,
                conversation: conv.id,
                envelope: sealed,
                kind: MessageKind::Text,
                body: Some(text),
                image_path: None,
            })
            .await?;
        self.0.outbox_wake.notify_one();
        match tokio::time::timeout(ACK_PATIENCE, rx).await {
            Ok(Ok(result)) => result,
            _ => {
                if let Ok(mut acks) = self.0.acks.lock() {
                    acks.remove(&id);
                }
                Err(ApiError::new(
                    codes::QUEUED,
                    format!(
                        "no server acknowledged the message within {}s; it stays queued and is sent when one answers (`fastchatctl status` shows pending sends): do not send it again",
                        ACK_PATIENCE.as_secs()
                    ),
                ))
            }
        }
    }

    /// Sends queued envelopes until `shutdown`, oldest first.
    pub async fn run_outbox(self, mut shutdown: watch::Receiver<bool>) {
        let mut rx = self.0.connection.subscribe();
        let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(5));
        loop {
            let link = {
                let wait = async {
                    rx.wait_for(|c| c.as_ref().is_some_and(|c| c.authenticated))
                        .await
                        .map(|c| c.clone().map(|c| c.link))
                };
                tokio::select! {
                    c = wait => match c {
                        Ok(link) => link,
                        Err(_) => return,
                    },
                    _ = shutdown.changed() => return,
                }
            };
            let Some(link) = link else { continue };
            let wake = self.0.outbox_wake.notified();
            match self.drain_outbox(&link).await {
                Ok(true) => {
                    backoff.reset();
                    continue;
                }
                Ok(false) => {
                    backoff.reset();
                    tokio::select! {
                        () = wake => {}
                        _ = rx.changed() => {}
                        _ = shutdown.changed() => return,
                    }
                }
                Err(e) => {
                    tracing::debug!(error = %e, "outbox waits for a working connection");
                    tokio::select! {
                        () = tokio::time::sleep(backoff.next_delay()) => {}
                        _ = shutdown.changed() => return,
                    }
                }
            }
        }
    }

    /// Sends what is queued. `Ok(true)` if anything was sent (look again), `Ok(false)` if
    /// the outbox is empty.
    async fn drain_outbox(&self, link: &Link) -> Result<bool, LinkError> {
        let queued = self.0.store.outbox().await.map_err(local)?;
        if queued.is_empty() {
            return Ok(false);
        }
        let Some(me) = self.me().await else {
            return Ok(false);
        };
        for o in queued {
            let result = link
                .request(proto::SendMessage {
                    conversation: o.conversation,
                    client_msg_id: o.client_msg_id,
                    envelope: Bytes::from(o.envelope.clone()),
                })
                .await;
            let waiter = || {
                self.0
                    .acks
                    .lock()
                    .ok()
                    .and_then(|mut a| a.remove(&o.client_msg_id))
            };
            match result {
                Ok(sent) => {
                    self.0
                        .store
                        .sent(&o, &me, seq_u(sent.seq), sent.sent_at.0)
                        .await
                        .map_err(local)?;
                    self.publish_unread().await.map_err(local)?;
                    let receipt = SendReceipt {
                        id: hex(&o.client_msg_id),
                        seq: seq_u(sent.seq),
                        sent_at: timestamp(sent.sent_at.0),
                    };
                    if let Some(conv) = self
                        .0
                        .store
                        .conversation(o.conversation)
                        .await
                        .map_err(local)?
                    {
                        let _ = self.0.messages.send(Message {
                            id: receipt.id.clone(),
                            seq: seq_u(sent.seq),
                            conversation: conv.reference(),
                            sender: me.clone(),
                            sent_at: receipt.sent_at,
                            kind: o.kind,
                            text: o.body.clone(),
                            image_path: o.image_path.clone(),
                        });
                    }
                    if let Some(w) = waiter() {
                        let _ = w.send(Ok(receipt));
                    }
                }
                Err(e) if transient(&e) => return Err(e),
                Err(e) => {
                    tracing::warn!(error = %e, "the server refused a queued message; dropped");
                    self.0
                        .store
                        .drop_outgoing(o.client_msg_id)
                        .await
                        .map_err(local)?;
                    if let Some(w) = waiter() {
                        let _ = w.send(Err(e.into()));
                    }
                }
            }
        }
        Ok(true)
    }

    pub async fn history(
        &self,
        conversation: ConversationRef,
        limit: Option<u32>,
        before: Option<u64>,
    ) -> ApiResult<Vec<Message>> {
        let store = &self.0.store;
        let conv = match store.find(&conversation).await? {
            Some(c) => c,
            None => match self.connection(true).await {
                Ok(c) => self.find(&c.link, &conversation).await?,
                Err(_) => {
                    return Err(ApiError::new(
                        codes::UNKNOWN_CONVERSATION,
                        format!("no conversation {conversation} here"),
                    ));
                }
            },
        };
        let limit = limit.unwrap_or(50).clamp(1, 1000);
        let rows = store.history(conv.id, limit, before).await?;
        // Reading the newest messages counts as having seen them.
        if before.is_none() {
            self.mark_read(&conv).await?;
        }
        Ok(rows.iter().map(|m| api_message(&conv, m)).collect())
    }

    async fn mark_read(&self, conv: &Conversation) -> ApiResult<()> {
        if conv.received > conv.read_seq {
            self.0.store.mark_read(conv.id, conv.received).await?;
            let connection = self.0.connection.borrow().clone();
            if let Some(c) = connection
                && c.authenticated
            {
                let (id, seq) = (conv.id, conv.received);
                tokio::spawn(async move {
                    let _ = c
                        .link
                        .request(proto::Ack {
                            conversation: id,
                            seq: seq_of(seq),
                        })
                        .await;
                });
            }
            self.publish_unread().await?;
        }
        Ok(())
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Message> {
        self.0.messages.subscribe()
    }

    pub async fn set_focus(&self, conversation: Option<ConversationRef>) -> ApiResult<()> {
        if let Some(c) = &conversation
            && let Some(conv) = self.0.store.find(c).await?
        {
            self.mark_read(&conv).await?;
        }
        *self.0.focus.lock().map_err(ApiError::internal)? = conversation;
        Ok(())
    }

    pub async fn fingerprint(&self, username: Option<String>) -> ApiResult<FingerprintInfo> {
        let username = match username {
            Some(u) => u,
            None => self.me().await.ok_or_else(ApiError::not_logged_in)?,
        };
        if self.0.store.pin(&username).await?.is_none() {
            let link = self.connection(true).await?.link;
            self.known_key(&link, &username).await??;
        }
        let (der, verified) = self.0.store.pin(&username).await?.ok_or_else(|| {
            ApiError::new(codes::UNKNOWN_USER, format!("no key known for {username}"))
        })?;
        Ok(FingerprintInfo {
            username,
            fingerprint: Fingerprint::of(&der).to_string(),
            verified,
        })
    }

    pub async fn verify(&self, username: String, fingerprint: String) -> ApiResult<Verified> {
        let link = self.connection(true).await?.link;
        let presented = link
            .request(proto::FetchKey {
                username: username.clone(),
            })
            .await?;
        let key = PublicIdentity::from_der(&presented.public_key)?;
        if !key.fingerprint().matches(&fingerprint)? {
            return Err(ApiError::invalid(format!(
                "that is not the fingerprint of the key the server presents for {username}: nothing changed"
            )));
        }
        self.0
            .store
            .save_pin(&username, key.der(), &key.fingerprint().0, true)
            .await?;
        Ok(Verified {
            username,
            verified: true,
        })
    }

    pub async fn servers(&self) -> ApiResult<Vec<ServerEntry>> {
        let current = self.0.connection.borrow().clone().map(|c| c.addr);
        if let Some(balancer) = &self.0.config.balancer {
            let statuses = crate::balancer::servers(balancer).await.map_err(|e| {
                ApiError::unavailable(format!("the balancer at {balancer} did not answer: {e}"))
            })?;
            return Ok(statuses
                .into_iter()
                .map(|s| ServerEntry {
                    current: current.as_deref() == Some(s.addr.as_str()),
                    id: s.id,
                    addr: s.addr,
                    healthy: s.healthy,
                    cpu: Some(s.cpu),
                    connections: Some(s.connections),
                })
                .collect());
        }
        let connection = self.0.connection.borrow().clone();
        Ok(self
            .0
            .config
            .servers
            .iter()
            .map(|addr| {
                let here = connection.as_ref().filter(|c| &c.addr == addr);
                ServerEntry {
                    id: here.map_or_else(|| addr.clone(), |c| c.server_id.clone()),
                    addr: addr.clone(),
                    // Without a balancer only the server in use is known to be up.
                    healthy: here.is_some(),
                    cpu: None,
                    connections: None,
                    current: here.is_some(),
                }
            })
            .collect())
    }
}

/// A local database failure seen from the connection task: treated like a lost connection
/// (the work is retried after a reconnect), and logged.
fn local(e: sqlx::Error) -> LinkError {
    tracing::error!(error = %e, "local database error");
    LinkError::Protocol(format!("local database: {e}"))
}
