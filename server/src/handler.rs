//! One task per connection: the handshake, then requests, send acknowledgements and pushes,
//! until the client leaves, breaks the protocol, or the server shuts down.
//!
//! Delivery to a connection keeps its own cursor per conversation (the highest sequence
//! number given to this client). A push that would skip numbers is completed from the
//! database first, and anything at or below the cursor is dropped, so a client sees each
//! conversation in order, without gaps or repeats, whatever the timing of commits and pushes.

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use fastchat_proto::frame::FrameError;
use fastchat_proto::{
    Ack, CHUNK_PLAINTEXT, Chunk, ClientFrame, ConversationId, Conversations, Done, EpochKeys,
    ErrorBody, ErrorCode, FetchChunk, FetchKey, MAX_CHUNK_LEN, MAX_CHUNKS, MAX_PUBLIC_KEY_LEN,
    PROTOCOL_VERSION, Pong, Push, Request, RequestId, Response, SendMessage, Seq, ServerFrame,
    Session, SessionToken, StoredMessage, SyncBatch, SyncMessages, Timestamp, UploadChunk, UserKey,
    Welcome, validate,
};
use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::broadcast;
use tokio::time::Instant;

use crate::Shared;
use crate::connection::{Connection, ReadError};
use crate::delivery::SendResult;
use crate::hub::{Event, Subscription};
use crate::store::{Changed, NewMessage, StoreError, User, UserId};

/// The most messages in one sync answer or one catch-up push.
const PAGE: u32 = 500;

/// The most envelope bytes in one sync answer or push, keeping every frame under the
/// frame limit (one envelope alone is at most `MAX_ENVELOPE_LEN`, half of it).
const FRAME_BUDGET: usize = fastchat_proto::MAX_FRAME_LEN / 2;

/// How many of `messages`, from the front, fit in one frame (at least one).
fn fits_in_frame(messages: &[StoredMessage]) -> usize {
    fits_in_frame_after(&[], messages)
}

/// How many of `more` fit in one frame that already holds `held` (at least one if `held` is
/// empty).
fn fits_in_frame_after(held: &[StoredMessage], more: &[StoredMessage]) -> usize {
    let mut bytes: usize = held.iter().map(|m| m.envelope.len()).sum();
    let mut n = 0;
    for m in more {
        bytes += m.envelope.len();
        if bytes > FRAME_BUDGET && (n > 0 || !held.is_empty()) {
            break;
        }
        n += 1;
    }
    n
}

type Inflight = Pin<Box<dyn Future<Output = (RequestId, SendResult)> + Send + Sync>>;

struct Authed {
    user: User,
    token: SessionToken,
    subscription: Subscription,
}

pub(crate) struct Handler<S> {
    conn: Connection<S>,
    peer: SocketAddr,
    shared: Arc<Shared>,
    auth: Option<Authed>,
    /// Pushes flow only after a complete sync; until then the client is catching up.
    live: bool,
    cursors: HashMap<ConversationId, Seq>,
    inflight: FuturesUnordered<Inflight>,
    /// When to catch up again after a failed read.
    retry_at: Option<Instant>,
}

/// Why a connection ends.
enum End {
    /// The client closed it or we must close it; nothing more to say.
    Quiet,
    /// Tell the client why, then close.
    Fatal(ErrorBody),
    /// Not an end: the database could not be read just now. The connection stays open and
    /// catches up from its cursors a moment later.
    Retry,
}

/// How long a connection waits before re-reading after the database was unavailable.
const RETRY_READ: Duration = Duration::from_millis(500);

impl From<std::io::Error> for End {
    fn from(_: std::io::Error) -> Self {
        End::Quiet
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin + Send> Handler<S> {
    pub(crate) fn new(stream: S, peer: SocketAddr, shared: Arc<Shared>) -> Self {
        let config = &shared.config;
        let mut conn = Connection::new(stream, config.idle_timeout, config.frame_timeout);
        conn.set_idle_timeout(config.handshake_timeout);
        Handler {
            conn,
            peer,
            shared,
            auth: None,
            live: false,
            cursors: HashMap::new(),
            inflight: FuturesUnordered::new(),
            retry_at: None,
        }
    }

    /// Serves the connection until it ends; never panics on client input.
    pub(crate) async fn run(mut self, mut shutdown: broadcast::Receiver<()>) {
        let end = match self.handshake().await {
            Ok(()) => self.serve(&mut shutdown).await,
            Err(end) => end,
        };
        if let End::Fatal(body) = end {
            tracing::debug!(peer = %self.peer, error = %body, "closing connection");
            let _ = self.conn.write_frame(&ServerFrame::Fatal(body)).await;
        }
        self.conn.shutdown().await;
    }

    async fn handshake(&mut self) -> Result<(), End> {
        let frame = match self.conn.read_request().await {
            Ok(Some(frame)) => frame,
            Ok(None) => return Err(End::Quiet),
            Err(e) => return Err(read_error(e)),
        };
        let Request::Hello(hello) = frame.request else {
            return Err(End::Fatal(ErrorBody::new(
                ErrorCode::HandshakeRequired,
                "a connection must open with Hello",
            )));
        };
        if hello.version != PROTOCOL_VERSION {
            return Err(End::Fatal(ErrorBody::new(
                ErrorCode::UnsupportedVersion,
                format!(
                    "this server speaks protocol version {PROTOCOL_VERSION}, not {}",
                    hello.version
                ),
            )));
        }
        tracing::debug!(peer = %self.peer, client = %hello.client, "handshake");
        let config = &self.shared.config;
        let welcome = Welcome {
            version: PROTOCOL_VERSION,
            server_id: config.server_id.clone(),
            max_frame: u32::try_from(fastchat_proto::MAX_FRAME_LEN).unwrap_or(u32::MAX),
            max_envelope: u32::try_from(config.max_envelope).unwrap_or(u32::MAX),
        };
        self.conn.set_idle_timeout(config.idle_timeout);
        self.respond(frame.id, Ok(Response::Hello(welcome))).await?;
        Ok(())
    }

    async fn serve(&mut self, shutdown: &mut broadcast::Receiver<()>) -> End {
        loop {
            let max_inflight = self.shared.config.max_inflight_sends;
            let lag = self
                .auth
                .as_ref()
                .map(|a| Arc::clone(&a.subscription.lagged));
            let result = tokio::select! {
                read = self.conn.read_request(), if self.inflight.len() < max_inflight => {
                    match read {
                        Ok(Some(frame)) => self.handle(frame).await,
                        Ok(None) => Err(End::Quiet),
                        Err(e) => Err(read_error(e)),
                    }
                }
                Some((id, result)) = self.inflight.next() => {
                    self.respond(id, result.map(Response::SendMessage)).await
                }
                Some(event) = next_event(&mut self.auth) => self.on_event(event).await,
                () = lagged(lag) => self.catch_up().await,
                () = sleep_until(self.retry_at) => {
                    self.retry_at = None;
                    self.catch_up().await
                }
                _ = shutdown.recv() => Err(self.drain().await),
            };
            match result {
                Ok(()) => {}
                Err(End::Retry) => self.retry_at = Some(Instant::now() + RETRY_READ),
                Err(end) => return end,
            }
        }
    }

    /// On shutdown: answer every send already queued (they will be committed), then say why
    /// the connection closes.
    async fn drain(&mut self) -> End {
        while let Some((id, result)) = self.inflight.next().await {
            if self
                .respond(id, result.map(Response::SendMessage))
                .await
                .is_err()
            {
                return End::Quiet;
            }
        }
        End::Fatal(ErrorBody::new(
            ErrorCode::ShuttingDown,
            "the server is shutting down",
        ))
    }

    async fn respond(
        &mut self,
        id: RequestId,
        result: Result<Response, ErrorBody>,
    ) -> Result<(), End> {
        self.conn
            .write_frame(&ServerFrame::Response { id, result })
            .await?;
        Ok(())
    }

    async fn push(&mut self, push: Push) -> Result<(), End> {
        self.conn.write_frame(&ServerFrame::Push(push)).await?;
        Ok(())
    }

    async fn handle(&mut self, frame: ClientFrame) -> Result<(), End> {
        let id = frame.id;
        let result = match frame.request {
            Request::Hello(_) => Err(ErrorBody::new(
                ErrorCode::HandshakeRequired,
                "Hello comes only once",
            )),
            Request::Signup(r) => {
                let outcome = match self.not_authed() {
                    Ok(()) => {
                        self.shared
                            .accounts
                            .signup(&r.username, &r.password, &r.public_key)
                            .await
                    }
                    Err(e) => Err(e),
                };
                self.log_in(outcome).map(Response::Signup)
            }
            Request::Login(r) => {
                let outcome = match self.not_authed() {
                    Ok(()) => {
                        self.shared
                            .accounts
                            .login(&r.username, &r.password, self.peer.ip())
                            .await
                    }
                    Err(e) => Err(e),
                };
                self.log_in(outcome).map(Response::Login)
            }
            Request::Resume(r) => {
                let outcome = match self.not_authed() {
                    Ok(()) => self.shared.accounts.resume(&r.token).await,
                    Err(e) => Err(e),
                };
                self.log_in(outcome).map(Response::Resume)
            }
            Request::Logout(_) => self.logout().await.map(Response::Logout),
            Request::PublishKey(r) => self
                .publish_key(&r.public_key)
                .await
                .map(Response::PublishKey),
            Request::FetchKey(r) => self.fetch_key(r).await.map(Response::FetchKey),
            Request::CreateGroup(r) => self.create_group(r).await.map(Response::CreateGroup),
            Request::AmendGroup(r) => self.amend_group(r).await.map(Response::AmendGroup),
            Request::OpenDirect(r) => self.open_direct(r).await.map(Response::OpenDirect),
            Request::ListConversations(_) => self
                .list_conversations()
                .await
                .map(Response::ListConversations),
            Request::SendMessage(r) => match self.send(id, r).await {
                // Answered when committed, from the inflight queue.
                Ok(()) => return Ok(()),
                Err(e) => Err(e),
            },
            Request::SyncMessages(r) => self.sync(r).await.map(Response::SyncMessages),
            Request::Ack(r) => self.ack(r).await.map(Response::Ack),
            Request::FetchEpochKeys(r) => self
                .epoch_keys(r.conversation)
                .await
                .map(Response::FetchEpochKeys),
            Request::Ping(_) => Ok(Response::Ping(Pong {})),
            Request::UploadChunk(r) => self.upload_chunk(r).await.map(Response::UploadChunk),
            Request::FetchChunk(r) => self.fetch_chunk(r).await.map(Response::FetchChunk),
        };
        self.respond(id, result).await
    }

    fn user(&self) -> Result<&User, ErrorBody> {
        self.auth
            .as_ref()
            .map(|a| &a.user)
            .ok_or_else(not_authenticated)
    }

    fn not_authed(&self) -> Result<(), ErrorBody> {
        match &self.auth {
            Some(a) => Err(ErrorBody::new(
                ErrorCode::AlreadyAuthenticated,
                format!("this connection is logged in as {}", a.user.username),
            )),
            None => Ok(()),
        }
    }

    fn log_in(
        &mut self,
        outcome: Result<(User, Session), ErrorBody>,
    ) -> Result<Session, ErrorBody> {
        let (user, session) = outcome?;
        tracing::info!(peer = %self.peer, user = %user.username, "logged in");
        let subscription = self
            .shared
            .hub
            .subscribe(user.id, self.shared.config.push_queue);
        self.auth = Some(Authed {
            user,
            token: session.token.clone(),
            subscription,
        });
        Ok(session)
    }

    async fn logout(&mut self) -> Result<Done, ErrorBody> {
        let Some(token) = self.auth.as_ref().map(|a| a.token.clone()) else {
            return Err(not_authenticated());
        };
        self.shared
            .accounts
            .logout(&token)
            .await
            .map_err(|e| store_error(&e))?;
        self.auth = None;
        self.live = false;
        self.cursors.clear();
        Ok(Done {})
    }

    async fn publish_key(&self, key: &[u8]) -> Result<Done, ErrorBody> {
        let user = self.user()?;
        if key.len() > MAX_PUBLIC_KEY_LEN {
            return Err(ErrorBody::new(
                ErrorCode::TooLarge,
                format!("a public key has at most {MAX_PUBLIC_KEY_LEN} bytes"),
            ));
        }
        self.shared
            .store
            .set_public_key(user.id, key)
            .await
            .map_err(|e| store_error(&e))?;
        Ok(Done {})
    }

    async fn fetch_key(&self, r: FetchKey) -> Result<UserKey, ErrorBody> {
        self.user()?;
        let key = self
            .shared
            .store
            .public_key(&r.username)
            .await
            .map_err(|e| store_error(&e))?;
        match key {
            Some(public_key) => Ok(UserKey {
                username: r.username,
                public_key,
            }),
            None => Err(ErrorBody::new(
                ErrorCode::UnknownUser,
                format!("no user named {}", r.username),
            )),
        }
    }

    async fn create_group(
        &self,
        r: fastchat_proto::CreateGroup,
    ) -> Result<fastchat_proto::ConversationInfo, ErrorBody> {
        let user = self.user()?;
        validate::group_name(&r.name).map_err(|m| ErrorBody::new(ErrorCode::InvalidName, m))?;
        let changed = self
            .shared
            .store
            .create_group(user, &r.name, &r.members, &r.material, Timestamp::now())
            .await;
        self.announce(changed)
    }

    async fn amend_group(
        &self,
        r: fastchat_proto::AmendGroup,
    ) -> Result<fastchat_proto::ConversationInfo, ErrorBody> {
        let user = self.user()?;
        let changed = self
            .shared
            .store
            .amend_group(user, &r, Timestamp::now())
            .await;
        self.announce(changed)
    }

    async fn open_direct(
        &self,
        r: fastchat_proto::OpenDirect,
    ) -> Result<fastchat_proto::ConversationInfo, ErrorBody> {
        let user = self.user()?;
        let changed = self
            .shared
            .store
            .open_direct(user, &r.peer, &r.material, Timestamp::now())
            .await;
        self.announce(changed)
    }

    /// Tells everyone concerned about a membership change and returns the new state.
    fn announce(
        &self,
        changed: Result<Changed, StoreError>,
    ) -> Result<fastchat_proto::ConversationInfo, ErrorBody> {
        let changed = changed.map_err(|e| store_error(&e))?;
        if !changed.notify.is_empty() {
            let event = Event::Conversation(Arc::new(changed.info.clone()));
            self.shared.hub.publish(&changed.notify, &event);
        }
        Ok(changed.info)
    }

    async fn list_conversations(&self) -> Result<Conversations, ErrorBody> {
        let user = self.user()?;
        let conversations = self
            .shared
            .store
            .conversations(user.id)
            .await
            .map_err(|e| store_error(&e))?;
        let acked = self
            .shared
            .store
            .acks(user.id)
            .await
            .map_err(|e| store_error(&e))?;
        Ok(Conversations {
            conversations,
            acked,
        })
    }

    async fn send(&mut self, id: RequestId, r: SendMessage) -> Result<(), ErrorBody> {
        let user = self.user()?.clone();
        let max = self.shared.config.max_envelope;
        if r.envelope.len() > max {
            return Err(ErrorBody::new(
                ErrorCode::TooLarge,
                format!(
                    "an envelope has at most {max} bytes, not {}",
                    r.envelope.len()
                ),
            ));
        }
        let message = NewMessage {
            conversation: r.conversation,
            sender: user,
            client_msg_id: r.client_msg_id,
            envelope: r.envelope,
        };
        let committed = self.shared.delivery.submit(message).await;
        self.inflight.push(Box::pin(async move {
            let result = committed.await.unwrap_or_else(|_| {
                Err(ErrorBody::new(
                    ErrorCode::Internal,
                    "the delivery service stopped",
                ))
            });
            (id, result)
        }));
        Ok(())
    }

    async fn sync(&mut self, r: SyncMessages) -> Result<SyncBatch, ErrorBody> {
        let user = self.user()?.id;
        let limit = r.limit.clamp(1, PAGE) as usize;
        let given: HashMap<ConversationId, Seq> =
            r.cursors.iter().map(|c| (c.conversation, c.seq)).collect();
        let store = &self.shared.store;
        let conversations = store
            .visible_conversations(user)
            .await
            .map_err(|e| store_error(&e))?;
        let mut messages: Vec<StoredMessage> = Vec::new();
        let mut cursors = HashMap::with_capacity(conversations.len());
        let mut more = false;
        for conversation in conversations {
            let after = given.get(&conversation).copied().unwrap_or_default();
            cursors.insert(conversation, after);
            if more {
                continue;
            }
            let room = limit - messages.len();
            let want = u32::try_from(room + 1).unwrap_or(u32::MAX);
            let mut page = store
                .messages_after(user, conversation, after, want)
                .await
                .map_err(|e| store_error(&e))?;
            if page.len() > room {
                page.truncate(room);
                more = true;
            }
            let fit = fits_in_frame_after(&messages, &page);
            if fit < page.len() {
                page.truncate(fit);
                more = true;
            }
            if let Some(last) = page.last() {
                cursors.insert(conversation, last.seq);
            }
            messages.extend(page);
        }
        self.live = !more;
        if self.live {
            self.cursors = cursors;
        }
        Ok(SyncBatch { messages, more })
    }

    async fn ack(&self, r: Ack) -> Result<Done, ErrorBody> {
        let user = self.user()?.id;
        self.shared
            .store
            .ack(user, r.conversation, r.seq)
            .await
            .map_err(|e| store_error(&e))?;
        Ok(Done {})
    }

    async fn epoch_keys(&self, conversation: ConversationId) -> Result<EpochKeys, ErrorBody> {
        let user = self.user()?.id;
        let keys = self
            .shared
            .store
            .epoch_keys(user, conversation)
            .await
            .map_err(|e| store_error(&e))?;
        Ok(EpochKeys { keys })
    }

    /// Refuses anyone who is not a current member of `conversation`.
    async fn require_member(&self, conversation: ConversationId) -> Result<UserId, ErrorBody> {
        let user = self.user()?.id;
        let members = self
            .shared
            .store
            .member_ids(conversation)
            .await
            .map_err(|e| store_error(&e))?;
        if members.contains(&user) {
            Ok(user)
        } else {
            Err(ErrorBody::new(
                ErrorCode::NotMember,
                "you are not a member of that conversation",
            ))
        }
    }

    async fn upload_chunk(&self, r: UploadChunk) -> Result<Done, ErrorBody> {
        if r.bytes.len() > MAX_CHUNK_LEN {
            return Err(ErrorBody::new(
                ErrorCode::TooLarge,
                format!("a chunk may have at most {MAX_CHUNK_LEN} bytes"),
            ));
        }
        if r.total == 0 || r.total > MAX_CHUNKS || r.index >= r.total {
            return Err(ErrorBody::new(
                ErrorCode::InvalidRequest,
                format!(
                    "chunk {} of {} (an upload has 1 to {MAX_CHUNKS} chunks)",
                    r.index, r.total
                ),
            ));
        }
        let max = self.shared.config.max_attachment;
        if u64::from(r.total) > max.div_ceil(CHUNK_PLAINTEXT as u64) {
            return Err(ErrorBody::new(
                ErrorCode::TooLarge,
                format!("attachments on this server may have at most {max} bytes"),
            ));
        }
        let user = self.require_member(r.conversation).await?;
        self.shared
            .store
            .put_chunk(user, &r, Timestamp::now())
            .await
            .map_err(|e| store_error(&e))?;
        Ok(Done {})
    }

    async fn fetch_chunk(&self, r: FetchChunk) -> Result<Chunk, ErrorBody> {
        self.require_member(r.conversation).await?;
        let bytes = self
            .shared
            .store
            .chunk(r.conversation, r.upload, r.index)
            .await
            .map_err(|e| store_error(&e))?;
        bytes.map(|bytes| Chunk { bytes }).ok_or_else(|| {
            ErrorBody::new(
                ErrorCode::UnknownChunk,
                format!("no chunk {} of that upload", r.index),
            )
        })
    }

    async fn on_event(&mut self, event: Event) -> Result<(), End> {
        if !self.live {
            // Not caught up yet: the sync that makes the connection live reads after this.
            return Ok(());
        }
        match event {
            Event::Conversation(info) => self.push(Push::Conversation((*info).clone())).await,
            Event::Hint(conversation) => self.read_on(conversation).await,
            Event::Messages(batch) => {
                let Some(first) = batch.first() else {
                    return Ok(());
                };
                let conversation = first.conversation;
                let cursor = self.cursors.get(&conversation).copied().unwrap_or_default();
                let mut out = Vec::new();
                if first.seq > cursor.next() {
                    // Something committed before this batch has not reached us (another
                    // server committed it, or our queue overflowed): read it first.
                    let missing = self.read_after(conversation, cursor).await?;
                    out.extend(missing.into_iter().filter(|m| m.seq < first.seq));
                }
                out.extend(batch.iter().filter(|m| m.seq > cursor).cloned());
                self.deliver(conversation, out).await
            }
        }
    }

    /// Delivers everything after our cursor in `conversation`, from the database.
    async fn read_on(&mut self, conversation: ConversationId) -> Result<(), End> {
        loop {
            let cursor = self.cursors.get(&conversation).copied().unwrap_or_default();
            let page = self.read_after(conversation, cursor).await?;
            if page.is_empty() {
                return Ok(());
            }
            self.deliver(conversation, page).await?;
        }
    }

    /// After the push queue overflowed: re-read everything after our cursors.
    async fn catch_up(&mut self) -> Result<(), End> {
        tracing::debug!(peer = %self.peer, "push queue overflowed; catching up from the database");
        if !self.live {
            return Ok(());
        }
        let user = self.user().map_err(End::Fatal)?.id;
        let conversations = self
            .shared
            .store
            .visible_conversations(user)
            .await
            .map_err(|e| read_failed(&e))?;
        for conversation in conversations {
            self.read_on(conversation).await?;
        }
        Ok(())
    }

    async fn read_after(
        &self,
        conversation: ConversationId,
        after: Seq,
    ) -> Result<Vec<StoredMessage>, End> {
        let user = self.user().map_err(End::Fatal)?.id;
        self.shared
            .store
            .messages_after(user, conversation, after, PAGE)
            .await
            .map_err(|e| read_failed(&e))
    }

    async fn deliver(
        &mut self,
        conversation: ConversationId,
        mut messages: Vec<StoredMessage>,
    ) -> Result<(), End> {
        let Some(last) = messages.last() else {
            return Ok(());
        };
        self.cursors.insert(conversation, last.seq);
        while !messages.is_empty() {
            let rest = messages.split_off(fits_in_frame(&messages));
            self.push(Push::Messages(messages)).await?;
            messages = rest;
        }
        Ok(())
    }
}

async fn next_event(auth: &mut Option<Authed>) -> Option<Event> {
    match auth {
        Some(a) => a.subscription.events.recv().await,
        None => std::future::pending().await,
    }
}

async fn lagged(lag: Option<Arc<tokio::sync::Notify>>) {
    match lag {
        Some(notify) => notify.notified().await,
        None => std::future::pending().await,
    }
}

/// A failed read while delivering: retried later if the database is only unavailable (the
/// cursor has not moved, so nothing is skipped), fatal otherwise.
fn read_failed(e: &StoreError) -> End {
    match e {
        StoreError::Unavailable(_) => {
            tracing::debug!(error = %e, "read failed; retrying shortly");
            End::Retry
        }
        _ => End::Fatal(store_error(e)),
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

fn not_authenticated() -> ErrorBody {
    ErrorBody::new(
        ErrorCode::NotAuthenticated,
        "log in first (Signup, Login or Resume)",
    )
}

fn read_error(e: ReadError) -> End {
    match e {
        ReadError::Frame(FrameError::UnknownRequest { id, kind }) => End::Fatal(ErrorBody::new(
            ErrorCode::UnknownRequest,
            format!("request {} has unknown type {kind}", id.0),
        )),
        ReadError::Frame(f) => End::Fatal(f.to_error_body()),
        ReadError::Idle(_) | ReadError::SlowFrame(_) => {
            End::Fatal(ErrorBody::new(ErrorCode::Timeout, e.to_string()))
        }
        ReadError::Truncated => End::Fatal(ErrorBody::new(ErrorCode::Malformed, e.to_string())),
        ReadError::Io(_) => End::Quiet,
    }
}

fn store_error(e: &StoreError) -> ErrorBody {
    if !matches!(e, StoreError::Refused(_)) {
        tracing::warn!(error = %e, "store");
    }
    e.to_error_body()
}
