//! `fastchatd`: the per-user daemon. It holds the account's keys, the server connection
//! (balancer-aware, reconnecting), the local history and the outbox, raises desktop
//! notifications, and serves every front end the same session through JSON-RPC on a local
//! socket (`fastchat_api` is the method table).
//!
//! Invariants: private keys never leave this process (and are encrypted at rest); a `send`
//! is in the outbox (durable) before it is sent, and leaves it only when a server has
//! acknowledged it, so nothing is lost when the daemon, the network or a server dies;
//! the socket is usable by its owner only.

mod balancer;
pub mod config;
mod engine;
mod error;
mod fsutil;
mod images;
mod keyfile;
pub mod notify;
mod rpc;
mod socket;
mod store;
#[cfg(all(unix, not(target_os = "macos")))]
mod tray;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use fastchat_api::FastChatApiServer;
use tokio::sync::{Notify, mpsc, watch};

pub use config::{Config, Notifications, Strategy};
pub use images::DEFAULT_MAX_BYTES as DEFAULT_MAX_IMAGE_BYTES;

/// Runs a daemon until `shutdown` completes.
///
/// # Errors
/// If the profile is locked by another daemon, or the socket or store cannot be opened.
pub async fn run(config: Config, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
    let _lock = socket::lock_profile(&config.data_dir, &config.profile, &config.socket)?;
    images::remove_partials(&config.images_dir);
    let db = config.data_dir.join("history.db");
    let store = store::Store::open(&db)
        .await
        .with_context(|| format!("cannot open the local store {}", db.display()))?;
    private_file(&db);
    let (notify_tx, notify_rx) = match config.notifications {
        Notifications::Off => (None, None),
        _ => {
            let (tx, rx) = mpsc::unbounded_channel();
            (Some(tx), Some(rx))
        }
    };
    let engine = engine::Engine::open(config.clone(), store.clone(), notify_tx).await?;
    let listener = socket::bind(&config.socket)?;
    tracing::info!(profile = %config.profile, socket = %config.socket.display(), "listening on {}", config.socket.display());

    let (stop, stopped) = watch::channel(false);
    let mut tasks = vec![
        tokio::spawn(engine.clone().run_connection(stopped.clone())),
        tokio::spawn(engine.clone().run_outbox(stopped.clone())),
        tokio::spawn(socket::serve(
            listener,
            config.socket.clone(),
            rpc::Rpc(engine.clone()).into_rpc().into(),
            stopped.clone(),
        )),
    ];
    if let Some(rx) = notify_rx {
        tasks.push(tokio::spawn(notify::run(
            rx,
            config.notifications,
            stopped.clone(),
        )));
    }
    // The tray's "Quit" stops the daemon like a signal does.
    let quit = Arc::new(Notify::new());
    #[cfg(all(unix, not(target_os = "macos")))]
    if config.tray {
        tasks.push(tokio::spawn(tray::run(
            config.profile.clone(),
            engine.unread(),
            Arc::clone(&quit),
            stopped.clone(),
        )));
    }
    tokio::select! {
        () = shutdown => {}
        () = quit.notified() => tracing::info!("quit from the tray"),
    }
    tracing::info!("shutting down");
    let _ = stop.send(true);
    let joined = tokio::time::timeout(Duration::from_secs(10), async {
        for t in tasks {
            let _ = t.await;
        }
    })
    .await;
    if joined.is_err() {
        tracing::warn!("some tasks did not stop within 10 s");
    }
    drop(engine);
    store.close().await;
    Ok(())
}

/// The history holds decrypted messages: owner only.
fn private_file(path: &std::path::Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        for p in [
            path.to_owned(),
            path.with_extension("db-wal"),
            path.with_extension("db-shm"),
        ] {
            let _ = std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600));
        }
    }
    #[cfg(not(unix))]
    let _ = path;
}
