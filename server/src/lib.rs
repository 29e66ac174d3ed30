//! The FastChat server: accounts, groups and durable, ordered delivery of opaque envelopes.
//!
//! Architecture invariants:
//! - The server never sees plaintext: envelopes and wrapped keys are opaque bytes.
//! - A send is acknowledged only after its transaction commits ([`delivery`]).
//! - All SQL lives in [`store`]; handlers go through the [`store::Store`] trait.
//! - [`connection`] is the only code that touches a socket.
//! - Every task takes the shutdown signal and is joined before [`run`] returns.
//!
//! Shutdown follows mini-redis: a broadcast channel tells every connection to stop, each
//! connection holds a clone of an mpsc sender so `run` knows when all are gone, and a
//! semaphore caps the number of connections.

pub mod accounts;
pub mod announce;
pub mod cli;
pub mod config;
pub mod connection;
pub mod delivery;
mod handler;
pub mod hub;
pub mod store;
pub mod testing;
pub mod tls;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use fastchat_proto::{ErrorBody, ErrorCode, ServerFrame, Timestamp, frame};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, broadcast, mpsc};
use tokio_rustls::TlsAcceptor;

pub use crate::config::Config;
use crate::delivery::Delivery;
use crate::hub::{Event, Hub};
use crate::store::{Change, Store};

/// What every connection shares.
#[derive(Debug)]
pub(crate) struct Shared {
    config: Config,
    store: Arc<dyn Store>,
    accounts: accounts::Accounts,
    hub: Arc<Hub>,
    delivery: Delivery,
}

/// Serves `listener` until `shutdown` completes, then closes every connection (answering
/// the sends already queued), commits what was submitted, and returns.
///
/// # Errors
/// If the server cannot be set up (argon2 parameters) or accepting fails persistently.
pub async fn run(
    listener: TcpListener,
    store: Arc<dyn Store>,
    config: Config,
    tls: Option<TlsAcceptor>,
    shutdown: impl Future,
) -> anyhow::Result<()> {
    let hub = Arc::new(Hub::default());
    let (delivery, delivery_task) =
        Delivery::spawn(Arc::clone(&store), Arc::clone(&hub), config.max_batch);
    let accounts = accounts::Accounts::new(Arc::clone(&store), &config)?;
    let limit = Arc::new(Semaphore::new(config.max_connections));
    let shared = Arc::new(Shared {
        config,
        store,
        accounts,
        hub,
        delivery,
    });
    let (notify_shutdown, _) = broadcast::channel::<()>(1);
    let (shutdown_complete_tx, mut shutdown_complete_rx) = mpsc::channel::<()>(1);
    let janitor_task = tokio::spawn(janitor(
        Arc::clone(&shared.store),
        shared.config.upload_ttl,
        notify_shutdown.subscribe(),
    ));
    let relay_task = shared.store.changes().map(|changes| {
        tokio::spawn(relay(
            changes,
            Arc::clone(&shared.store),
            Arc::clone(&shared.hub),
            notify_shutdown.subscribe(),
        ))
    });

    let mut listener = Listener {
        listener,
        tls,
        shared: Arc::clone(&shared),
        limit,
        notify_shutdown: notify_shutdown.clone(),
        shutdown_complete_tx: shutdown_complete_tx.clone(),
    };
    let result = tokio::select! {
        res = listener.accept_loop() => res,
        _ = shutdown => {
            tracing::info!("shutting down");
            Ok(())
        }
    };

    // Dropping the listener drops its clones of both channels' senders.
    drop(listener);
    drop(notify_shutdown);
    drop(shutdown_complete_tx);
    // Every connection holds a sender clone: this returns when the last one has finished.
    let _ = shutdown_complete_rx.recv().await;
    if let Some(task) = relay_task {
        let _ = task.await;
    }
    let _ = janitor_task.await;
    // The last `Delivery` handle goes with `shared`; the service commits what is queued and ends.
    drop(shared);
    if let Err(e) = delivery_task.await {
        tracing::error!(error = %e, "delivery service panicked");
    }
    result
}

/// Deletes abandoned uploads (interrupted image transfers) once an hour, or as often as the
/// TTL if that is shorter. Servers sharing a database may all do it: the delete is idempotent.
async fn janitor(store: Arc<dyn Store>, ttl: Duration, mut shutdown: broadcast::Receiver<()>) {
    let every = ttl.min(Duration::from_secs(3600));
    loop {
        tokio::select! {
            () = tokio::time::sleep(every) => {}
            _ = shutdown.recv() => return,
        }
        let ttl_ms = i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX);
        let before = Timestamp(Timestamp::now().0.saturating_sub(ttl_ms));
        match store.purge_uploads(before).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(chunks = n, "deleted abandoned uploads"),
            Err(e) => tracing::warn!(error = %e, "cannot delete abandoned uploads"),
        }
    }
}

/// Turns other servers' changes (from a shared database) into events for our connections.
/// They are hints: connections re-read from the database what they are owed.
async fn relay(
    mut changes: mpsc::Receiver<Change>,
    store: Arc<dyn Store>,
    hub: Arc<Hub>,
    mut shutdown: broadcast::Receiver<()>,
) {
    loop {
        let change = tokio::select! {
            change = changes.recv() => change,
            _ = shutdown.recv() => None,
        };
        let Some(change) = change else { return };
        if hub.connections() == 0 {
            continue;
        }
        match change {
            Change::Messages(conversations) => {
                for conversation in conversations {
                    match store.member_ids(conversation).await {
                        Ok(members) => hub.publish(&members, &Event::Hint(conversation)),
                        Err(e) => {
                            tracing::warn!(error = %e, "cannot read members; every connection re-reads");
                            hub.lag_all();
                        }
                    }
                }
            }
            Change::Conversation {
                conversation,
                notify,
            } => match store.conversation(conversation).await {
                Ok(info) => hub.publish(&notify, &Event::Conversation(Arc::new(info))),
                Err(e) => tracing::warn!(error = %e, "cannot read a changed conversation"),
            },
            Change::Resync => hub.lag_all(),
        }
    }
}

struct Listener {
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    shared: Arc<Shared>,
    limit: Arc<Semaphore>,
    notify_shutdown: broadcast::Sender<()>,
    shutdown_complete_tx: mpsc::Sender<()>,
}

impl Listener {
    async fn accept_loop(&mut self) -> anyhow::Result<()> {
        loop {
            let (socket, peer) = self.accept().await?;
            let _ = socket.set_nodelay(true);
            let tls_on = self.tls.is_some();
            let Ok(permit) = Arc::clone(&self.limit).try_acquire_owned() else {
                tracing::warn!(%peer, "connection refused: at the connection limit");
                let done = self.shutdown_complete_tx.clone();
                tokio::spawn(async move {
                    refuse(socket, tls_on).await;
                    drop(done);
                });
                continue;
            };
            let shared = Arc::clone(&self.shared);
            let tls = self.tls.clone();
            let shutdown = self.notify_shutdown.subscribe();
            let done = self.shutdown_complete_tx.clone();
            let counted = shared.config.metrics.connection();
            tokio::spawn(async move {
                let handshake = shared.config.handshake_timeout;
                match tls {
                    None => {
                        handler::Handler::new(socket, peer, shared)
                            .run(shutdown)
                            .await
                    }
                    Some(acceptor) => {
                        match tokio::time::timeout(handshake, acceptor.accept(socket)).await {
                            Ok(Ok(stream)) => {
                                handler::Handler::new(stream, peer, shared)
                                    .run(shutdown)
                                    .await
                            }
                            Ok(Err(e)) => {
                                tracing::debug!(%peer, error = %e, "TLS handshake failed")
                            }
                            Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                        }
                    }
                }
                drop(counted);
                drop(permit);
                drop(done);
            });
        }
    }

    /// Accepts with exponential backoff on errors (such as running out of file descriptors),
    /// giving up after about a minute of failures.
    async fn accept(&mut self) -> anyhow::Result<(TcpStream, std::net::SocketAddr)> {
        let mut backoff = Duration::from_millis(10);
        loop {
            match self.listener.accept().await {
                Ok(accepted) => return Ok(accepted),
                Err(e) if backoff > Duration::from_secs(32) => return Err(e.into()),
                Err(e) => tracing::warn!(error = %e, "accept failed; retrying"),
            }
            tokio::time::sleep(backoff).await;
            backoff *= 2;
        }
    }
}

/// Tells a client over the connection cap why it is closed (on plain TCP; a TLS client just
/// sees the close, since a handshake would cost what the cap protects).
async fn refuse(mut socket: TcpStream, tls: bool) {
    if !tls {
        let mut buf = BytesMut::new();
        let fatal = ServerFrame::Fatal(ErrorBody::new(
            ErrorCode::TooManyConnections,
            "the server is at its connection limit; try another server",
        ));
        if frame::encode(&fatal, &mut buf).is_ok() {
            let _ = tokio::time::timeout(Duration::from_secs(1), socket.write_all(&buf)).await;
        }
    }
    let _ = socket.shutdown().await;
}
