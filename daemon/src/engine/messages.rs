//! Sending through the outbox, history, read positions and focus.

use super::*;

/// Queued sends written to the connection before the first answer is awaited.
const PIPELINE: usize = 64;

impl Engine {
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
                let (conv, key) = self.target_and_key(&link, &me, &identity, &to).await?;
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
        self.queue_and_wait(Outgoing {
            client_msg_id: id,
            conversation: conv.id,
            envelope: sealed,
            kind: MessageKind::Text,
            body: Some(text),
            image_path: None,
        })
        .await
    }

    /// Puts a sealed message in the outbox and waits (a while) for a server to store it.
    pub(super) async fn queue_and_wait(&self, outgoing: Outgoing) -> ApiResult<SendReceipt> {
        let id = outgoing.client_msg_id;
        let (tx, rx) = oneshot::channel();
        self.0
            .acks
            .lock()
            .map_err(ApiError::internal)?
            .insert(id, tx);
        if let Err(e) = self.0.store.queue(&outgoing).await {
            if let Ok(mut acks) = self.0.acks.lock() {
                acks.remove(&id);
            }
            return Err(e.into());
        }
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
    pub(super) async fn drain_outbox(&self, link: &Link) -> Result<bool, LinkError> {
        let queued = self.0.store.outbox().await.map_err(local)?;
        if queued.is_empty() {
            return Ok(false);
        }
        let Some(me) = self.me().await else {
            return Ok(false);
        };
        // A batch of sends is written to the connection before the first answer is awaited:
        // the server takes a connection's frames in order, so they keep their order, and a
        // burst costs one round trip, not one per message.
        let mut retry = None;
        for batch in queued.chunks(PIPELINE) {
            let requests = batch.iter().map(|o| {
                link.request(proto::SendMessage {
                    conversation: o.conversation,
                    client_msg_id: o.client_msg_id,
                    envelope: Bytes::from(o.envelope.clone()),
                })
            });
            let results = futures_util::future::join_all(requests).await;
            let mut acked = Vec::new();
            for (o, result) in batch.iter().zip(results) {
                match result {
                    Ok(sent) => acked.push((o, sent)),
                    // Stays queued; later answers of the batch are still recorded, since
                    // the server has stored those messages already.
                    Err(e) if e.is_transient() => retry = retry.or(Some(e)),
                    Err(e) => {
                        tracing::warn!(error = %e, "the server refused a queued message; dropped");
                        self.0
                            .store
                            .drop_outgoing(o.client_msg_id)
                            .await
                            .map_err(local)?;
                        if let Some(w) = self.ack_waiter(o.client_msg_id) {
                            let _ = w.send(Err(e.into()));
                        }
                    }
                }
            }
            self.acknowledged(&acked, &me).await?;
            if let Some(e) = retry {
                return Err(e);
            }
        }
        Ok(true)
    }

    fn ack_waiter(&self, id: ClientMsgId) -> Option<AckWaiter> {
        self.0.acks.lock().ok().and_then(|mut a| a.remove(&id))
    }

    /// Servers stored these queued sends: into the history (one transaction), out to
    /// subscribers, and the answer to whoever waits for each.
    async fn acknowledged(
        &self,
        acked: &[(&Outgoing, proto::Sent)],
        me: &str,
    ) -> Result<(), LinkError> {
        if acked.is_empty() {
            return Ok(());
        }
        let rows: Vec<(&Outgoing, u64, i64)> = acked
            .iter()
            .map(|(o, sent)| (*o, seq_u(sent.seq), sent.sent_at.0))
            .collect();
        self.0.store.sent(&rows, me).await.map_err(local)?;
        self.publish_unread().await.map_err(local)?;
        for (o, sent) in acked {
            let receipt = SendReceipt {
                id: hex(&o.client_msg_id.0),
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
                    seq: receipt.seq,
                    conversation: conv.reference(),
                    sender: me.to_owned(),
                    sent_at: receipt.sent_at,
                    kind: o.kind,
                    text: o.body.clone(),
                    image_path: o.image_path.clone(),
                    thumbnail_path: thumbnail_of(o.image_path.as_deref()),
                });
            }
            if let Some(w) = self.ack_waiter(o.client_msg_id) {
                let _ = w.send(Ok(receipt));
            }
        }
        Ok(())
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
        // Reading the newest messages counts as having seen them, including one stored
        // after `conv` was read (it is among the rows).
        if before.is_none() {
            let newest = rows.last().map_or(0, |m| m.seq);
            self.mark_read(&conv, conv.received.max(newest)).await?;
        }
        Ok(rows.iter().map(|m| api_message(&conv, m)).collect())
    }

    /// Marks `conv` read up to `seq` (here and, when connected, on the server).
    pub(super) async fn mark_read(&self, conv: &Conversation, seq: u64) -> ApiResult<()> {
        if seq > conv.read_seq {
            self.0.store.mark_read(conv.id, seq).await?;
            let connection = self.0.connection.borrow().clone();
            if let Some(c) = connection
                && c.authenticated
            {
                let id = conv.id;
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
            self.mark_read(&conv, conv.received).await?;
        }
        *self.0.focus.lock().map_err(ApiError::internal)? = conversation;
        Ok(())
    }
}
