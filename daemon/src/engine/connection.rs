//! The connection task: dial (balancer-aware, with backoff), resume the session, sync from
//! the local cursors, then handle pushes; and what happens to each message that arrives.

use std::collections::hash_map::Entry;

use fastchat_crypto::attachment::Manifest;

use super::*;

/// What a verified envelope held.
#[derive(Debug)]
pub(super) struct Opened {
    kind: MessageKind,
    body: Option<String>,
    image_path: Option<String>,
}

impl Engine {
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
    pub(super) async fn resume(&self, link: &Link) -> Result<bool, LinkError> {
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
    pub(super) async fn serve_connection(
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
                    Push::Messages(messages) => self.incoming(link, messages, false).await?,
                    Push::Conversation(info) => self.conversation_changed(&info).await?,
                }
            }
            Err(LinkError::Closed)
        }
        .await;
        forward.abort();
        result
    }

    /// Refreshes the conversation list from the server.
    pub(super) async fn refresh(&self, link: &Link) -> Result<(), LinkError> {
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

    pub(super) async fn conversation_changed(
        &self,
        info: &ConversationInfo,
    ) -> Result<(), LinkError> {
        let Some(me) = self.me().await else {
            return Ok(());
        };
        self.0
            .store
            .upsert_conversation(&to_conversation(info, &me))
            .await
            .map_err(local)
    }

    pub(super) async fn sync(&self, link: &Link) -> Result<(), LinkError> {
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
            self.incoming(link, batch.messages, false).await?;
            if !batch.more {
                return Ok(());
            }
        }
    }

    /// Handles messages from the server: verifies, decrypts and stores each, or keeps it
    /// sealed while the key is locked, or records why it was rejected, and advances the
    /// cursors, in one local transaction for the lot. Only transport errors are returned
    /// (the messages are then fetched again after the reconnect). With `unsealing`, the
    /// messages were received before (while locked) and the cursors are already past them.
    pub(super) async fn incoming(
        &self,
        link: &Link,
        messages: Vec<proto::StoredMessage>,
        unsealing: bool,
    ) -> Result<(), LinkError> {
        let store = &self.0.store;
        let identity = self.0.session.lock().await.identity.clone();
        let me = self.me().await;
        let mut conversations: HashMap<ConversationId, Conversation> = HashMap::new();
        let mut outcomes = Vec::new();
        for m in messages {
            if let Entry::Vacant(slot) = conversations.entry(m.conversation) {
                let mut conv = store.conversation(m.conversation).await.map_err(local)?;
                if conv.is_none() {
                    self.refresh(link).await?;
                    conv = store.conversation(m.conversation).await.map_err(local)?;
                }
                let Some(mut conv) = conv else {
                    tracing::warn!(
                        conversation = m.conversation.0,
                        "message for an unknown conversation ignored"
                    );
                    continue;
                };
                if unsealing {
                    conv.received = 0;
                }
                slot.insert(conv);
            }
            let conv = conversations
                .get_mut(&m.conversation)
                .expect("inserted above");
            let seq = seq_u(m.seq);
            if seq <= conv.received {
                continue;
            }
            conv.received = seq;
            if me.as_deref() == Some(m.sender.as_str())
                && store
                    .has_message(m.conversation, seq)
                    .await
                    .map_err(local)?
            {
                // Our own message, stored when the server acknowledged it.
                outcomes.push(store::Received::Known {
                    conversation: m.conversation,
                    seq,
                });
                continue;
            }
            let Some(identity) = &identity else {
                outcomes.push(store::Received::Sealed(SealedMessage {
                    conversation: m.conversation,
                    seq,
                    sender: m.sender,
                    client_msg_id: m.client_msg_id,
                    sent_at_ms: m.sent_at.0,
                    envelope: m.envelope.to_vec(),
                }));
                continue;
            };
            let conv = conv.clone();
            outcomes.push(match self.open_envelope(link, &conv, identity, &m).await? {
                Ok(opened) => store::Received::Message(store::StoredMessage {
                    conversation: m.conversation,
                    seq,
                    sender: m.sender,
                    client_msg_id: m.client_msg_id,
                    sent_at_ms: m.sent_at.0,
                    kind: opened.kind,
                    body: opened.body,
                    image_path: opened.image_path,
                }),
                Err(reason) => {
                    tracing::warn!(
                        conversation = %conv.reference(), seq, sender = %m.sender, %reason,
                        "rejected a message that failed verification"
                    );
                    store::Received::Rejected {
                        conversation: m.conversation,
                        seq,
                        sender: m.sender,
                        reason,
                    }
                }
            });
        }
        if outcomes.is_empty() {
            return Ok(());
        }
        let new = store.receive(&outcomes).await.map_err(local)?;
        let stored = outcomes.iter().filter_map(|o| match o {
            store::Received::Message(m) => Some(m),
            _ => None,
        });
        let focus = self.0.focus.lock().map(|f| f.clone()).unwrap_or(None);
        for (m, _) in stored.zip(new).filter(|(_, new)| *new) {
            let Some(conv) = conversations.get(&m.conversation) else {
                continue;
            };
            let message = api_message(conv, m);
            let focused = focus.as_ref() == Some(&message.conversation);
            if focused {
                store.mark_read(conv.id, m.seq).await.map_err(local)?;
            }
            if me.as_deref() != Some(&m.sender)
                && !focused
                && let Some(tx) = &self.0.notifications
            {
                let _ = tx.send(message.clone());
            }
            let _ = self.0.messages.send(message);
        }
        self.publish_unread().await.map_err(local)
    }

    /// Verifies and decrypts; the inner error is why the message is rejected.
    pub(super) async fn open_envelope(
        &self,
        link: &Link,
        conv: &Conversation,
        identity: &Identity,
        m: &proto::StoredMessage,
    ) -> Result<Result<Opened, String>, LinkError> {
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
                Ok(text) => Ok(Opened {
                    kind: MessageKind::Text,
                    body: Some(text),
                    image_path: None,
                }),
                Err(_) => Err("text that is not UTF-8".to_owned()),
            },
            Kind::Image { file_name, .. } => {
                let manifest = match Manifest::decode(&content) {
                    Ok(m) => m,
                    Err(e) => return Ok(Err(e.to_string())),
                };
                match self
                    .download(link, m.conversation, &key, &manifest, &file_name)
                    .await?
                {
                    Ok(path) => Ok(Opened {
                        kind: MessageKind::Image,
                        body: Some(file_name),
                        image_path: Some(path.to_string_lossy().into_owned()),
                    }),
                    Err(reason) => Err(reason),
                }
            }
        })
    }

    /// Opens what arrived while the key was locked.
    pub(super) async fn open_sealed(&self, link: &Link) -> Result<(), LinkError> {
        if self.0.session.lock().await.identity.is_none() {
            return Ok(());
        }
        let store = &self.0.store;
        let sealed = store.sealed().await.map_err(local)?;
        if sealed.is_empty() {
            return Ok(());
        }
        let opened: Vec<(ConversationId, u64)> =
            sealed.iter().map(|s| (s.conversation, s.seq)).collect();
        let messages = sealed
            .into_iter()
            .map(|s| proto::StoredMessage {
                conversation: s.conversation,
                seq: seq_of(s.seq),
                sender: s.sender,
                client_msg_id: s.client_msg_id,
                sent_at: Timestamp(s.sent_at_ms),
                envelope: Bytes::from(s.envelope),
            })
            .collect();
        self.incoming(link, messages, true).await?;
        for (conversation, seq) in opened {
            store.unseal(conversation, seq).await.map_err(local)?;
        }
        Ok(())
    }
}
