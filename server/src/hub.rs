//! Who is connected, by user, and the fan-out of news to their connections.
//!
//! The hub only forwards what the delivery service committed; it holds no messages of its
//! own. Each connection has a bounded queue. When a queue is full the event is dropped and
//! the connection is told it lagged: it then re-reads from the database, which is the truth,
//! so a slow reader costs memory on nobody and loses nothing.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use fastchat_proto::{ConversationId, ConversationInfo, StoredMessage};
use tokio::sync::{Notify, mpsc};

use crate::store::UserId;

/// News for one connection.
#[derive(Debug, Clone)]
pub enum Event {
    /// Newly committed messages of one conversation, in sequence order.
    Messages(Arc<[StoredMessage]>),
    /// A conversation the user belongs or belonged to changed.
    Conversation(Arc<ConversationInfo>),
    /// Another server committed messages in this conversation: read them from the database.
    Hint(ConversationId),
}

#[derive(Debug)]
struct Slot {
    id: u64,
    events: mpsc::Sender<Event>,
    lagged: Arc<Notify>,
}

#[derive(Debug, Default)]
pub struct Hub {
    next_id: AtomicU64,
    users: Mutex<HashMap<UserId, Vec<Slot>>>,
}

/// A connection's registration; dropping it unregisters the connection.
#[derive(Debug)]
pub struct Subscription {
    hub: Arc<Hub>,
    user: UserId,
    id: u64,
    pub events: mpsc::Receiver<Event>,
    /// Notified when an event for this connection had to be dropped.
    pub lagged: Arc<Notify>,
}

impl Drop for Subscription {
    fn drop(&mut self) {
        let mut users = self.hub.lock();
        if let Some(slots) = users.get_mut(&self.user) {
            slots.retain(|s| s.id != self.id);
            if slots.is_empty() {
                users.remove(&self.user);
            }
        }
    }
}

impl Hub {
    fn lock(&self) -> MutexGuard<'_, HashMap<UserId, Vec<Slot>>> {
        // Only plain map updates happen under the lock; a poisoned map is still consistent.
        self.users.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Registers a connection of `user`.
    pub fn subscribe(self: &Arc<Self>, user: UserId, queue: usize) -> Subscription {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = mpsc::channel(queue.max(1));
        let lagged = Arc::new(Notify::new());
        self.lock().entry(user).or_default().push(Slot {
            id,
            events: tx,
            lagged: Arc::clone(&lagged),
        });
        Subscription {
            hub: Arc::clone(self),
            user,
            id,
            events: rx,
            lagged,
        }
    }

    /// Hands `event` to every connection of every user in `audience`.
    pub fn publish(&self, audience: &[UserId], event: &Event) {
        let users = self.lock();
        for user in audience {
            for slot in users.get(user).into_iter().flatten() {
                if let Err(mpsc::error::TrySendError::Full(_)) = slot.events.try_send(event.clone())
                {
                    slot.lagged.notify_one();
                }
            }
        }
    }

    /// Tells every connection it may have missed something, so that each re-reads after
    /// its cursors (after the database's change feed reconnected).
    pub fn lag_all(&self) {
        for slot in self.lock().values().flatten() {
            slot.lagged.notify_one();
        }
    }

    /// How many connections are registered (logged in).
    pub fn connections(&self) -> usize {
        self.lock().values().map(Vec::len).sum()
    }
}
