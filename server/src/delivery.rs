//! The delivery service: the only writer of messages. It takes sends from every connection,
//! commits them in batches (group commit: whatever has queued while the previous transaction
//! ran goes into the next one, up to `max_batch`), and only after the commit answers each
//! sender and hands the new messages to the hub.
//!
//! Because one task appends in FIFO order, the sends of one connection get increasing
//! sequence numbers in the order they were made, even when pipelined.

use std::collections::HashMap;
use std::sync::Arc;

use fastchat_proto::{ConversationId, ErrorBody, Sent, StoredMessage, Timestamp};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::hub::{Event, Hub};
use crate::store::{Appended, NewMessage, Store};

pub type SendResult = Result<Sent, ErrorBody>;

#[derive(Debug)]
struct Job {
    message: NewMessage,
    reply: oneshot::Sender<SendResult>,
}

/// A handle for submitting sends. The service stops once every handle is dropped, after
/// committing everything already submitted.
#[derive(Debug, Clone)]
pub struct Delivery {
    jobs: mpsc::Sender<Job>,
}

impl Delivery {
    pub fn spawn(
        store: Arc<dyn Store>,
        hub: Arc<Hub>,
        max_batch: usize,
    ) -> (Delivery, JoinHandle<()>) {
        let (tx, rx) = mpsc::channel(max_batch.max(1) * 4);
        let task = tokio::spawn(run(store, hub, rx, max_batch.max(1)));
        (Delivery { jobs: tx }, task)
    }

    /// Queues a message; the receiver yields once it is committed (or refused).
    pub async fn submit(&self, message: NewMessage) -> oneshot::Receiver<SendResult> {
        let (reply, rx) = oneshot::channel();
        // The service outlives every handle, so the queue is open while `self` exists.
        if let Err(mpsc::error::SendError(job)) = self.jobs.send(Job { message, reply }).await {
            let _ = job.reply.send(Err(ErrorBody::new(
                fastchat_proto::ErrorCode::ShuttingDown,
                "the server is shutting down",
            )));
        }
        rx
    }
}

async fn run(
    store: Arc<dyn Store>,
    hub: Arc<Hub>,
    mut jobs: mpsc::Receiver<Job>,
    max_batch: usize,
) {
    let mut batch = Vec::with_capacity(max_batch);
    while jobs.recv_many(&mut batch, max_batch).await > 0 {
        commit(&*store, &hub, &mut batch).await;
    }
}

async fn commit(store: &dyn Store, hub: &Hub, batch: &mut Vec<Job>) {
    let (messages, replies): (Vec<NewMessage>, Vec<oneshot::Sender<SendResult>>) =
        batch.drain(..).map(|job| (job.message, job.reply)).unzip();
    match store.append(&messages, Timestamp::now()).await {
        Ok(outcome) => {
            let mut fresh: HashMap<ConversationId, Vec<StoredMessage>> = HashMap::new();
            for (result, reply) in outcome.results.into_iter().zip(replies) {
                let answer = result.map(|appended| {
                    let sent = appended.sent();
                    if let Appended::Stored(message) = appended {
                        fresh.entry(message.conversation).or_default().push(message);
                    }
                    sent
                });
                // A sender that has gone away still had its message stored; it will get the
                // seq from a resend with the same client message id.
                let _ = reply.send(answer);
            }
            for (conversation, messages) in fresh {
                if let Some(audience) = outcome.audiences.get(&conversation) {
                    hub.publish(audience, &Event::Messages(messages.into()));
                }
            }
        }
        Err(e) => {
            tracing::warn!(error = %e, messages = messages.len(), "append failed");
            let body = e.to_error_body();
            for reply in replies {
                let _ = reply.send(Err(body.clone()));
            }
        }
    }
}
