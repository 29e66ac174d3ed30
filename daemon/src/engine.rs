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
//!
//! The session's state and shared helpers are here; its work is split by concern:
//! `connection` (the connection task and incoming messages), `keys` (pins, epoch keys,
//! membership chains), `account` (signup, login, status), `groups` and `messages` (the
//! outbox, history, focus).

mod account;
mod connection;
mod groups;
mod images;
mod keys;
mod messages;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex as StdMutex};
use std::time::Duration;

use bytes::Bytes;
use fastchat_api::{
    Account, ConversationRef, ConversationSummary, FingerprintInfo, Group, MemberInfo, Message,
    MessageKind, SendReceipt, ServerEntry, ServerRef, Status, Verified, codes,
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

/// Random ids (message, upload) as the hex text front ends and file names use.
fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
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
        id: hex(&m.client_msg_id.0),
        seq: m.seq,
        conversation: c.reference(),
        sender: m.sender.clone(),
        sent_at: timestamp(m.sent_at_ms),
        kind: m.kind,
        text: m.body.clone(),
        image_path: m.image_path.clone(),
        thumbnail_path: thumbnail_of(m.image_path.as_deref()),
    }
}

/// The thumbnail of an image, if it was made.
fn thumbnail_of(image: Option<&str>) -> Option<String> {
    let thumb = crate::images::thumbnail_path(std::path::Path::new(image?));
    thumb.exists().then(|| thumb.to_string_lossy().into_owned())
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
        // A random start spreads a team's daemons over the servers.
        let dialer =
            Dialer::new(c.servers.clone(), fallback, self.0.template.clone()).with_random_start();
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

    async fn me(&self) -> Option<String> {
        self.0.session.lock().await.username.clone()
    }

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
}

/// A local database failure seen from the connection task: treated like a lost connection
/// (the work is retried after a reconnect), and logged.
fn local(e: sqlx::Error) -> LinkError {
    tracing::error!(error = %e, "local database error");
    LinkError::Protocol(format!("local database: {e}"))
}
