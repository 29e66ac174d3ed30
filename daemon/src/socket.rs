//! The local socket: one daemon per profile (an exclusive lock), a socket only its owner
//! can use (folder 0700, socket 0600 set before it is bound, and the peer's uid checked on
//! every connection), and JSON-RPC over HTTP and WebSocket on it (jsonrpsee serves both).

use std::fs::{File, TryLockError};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use interprocess::local_socket::tokio::{Listener, prelude::*};
use interprocess::local_socket::{GenericFilePath, ListenerOptions, ToFsName};
use jsonrpsee::server::{Methods, Server, serve_with_graceful_shutdown, stop_channel};
use tokio::sync::watch;

use crate::fsutil::create_private_dir;

/// Held for the daemon's life; the lock goes with the process, even on kill -9.
#[derive(Debug)]
pub struct ProfileLock {
    _file: File,
}

/// Takes the profile's lock, or says which daemon holds it.
pub fn lock_profile(data_dir: &Path, profile: &str, socket: &Path) -> anyhow::Result<ProfileLock> {
    create_private_dir(data_dir)
        .with_context(|| format!("cannot create the data folder {}", data_dir.display()))?;
    let path = data_dir.join("fastchatd.lock");
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .with_context(|| format!("cannot open the lock file {}", path.display()))?;
    match file.try_lock() {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => {
            let mut holder = String::new();
            let _ = file.read_to_string(&mut holder);
            let holder = holder.trim();
            bail!(
                "another fastchatd already runs for profile {profile} ({}); stop it first",
                if holder.is_empty() {
                    "pid unknown"
                } else {
                    holder
                }
            );
        }
        Err(TryLockError::Error(e)) => {
            return Err(e).with_context(|| format!("cannot lock {}", path.display()));
        }
    }
    file.set_len(0)?;
    file.rewind()?;
    write!(
        file,
        "pid {}, socket {}",
        std::process::id(),
        socket.display()
    )?;
    file.flush()?;
    Ok(ProfileLock { _file: file })
}

/// Binds the socket, removing a stale one (nobody answering on it) first.
pub fn bind(socket: &Path) -> anyhow::Result<Listener> {
    let dir = socket.parent().unwrap_or(Path::new("."));
    create_private_dir(dir)
        .with_context(|| format!("cannot create the socket folder {}", dir.display()))?;
    if socket.exists() {
        let name = socket.to_fs_name::<GenericFilePath>()?;
        use interprocess::local_socket::traits::Stream as _;
        if interprocess::local_socket::Stream::connect(name).is_ok() {
            bail!(
                "another process already serves {}; choose another --socket",
                socket.display()
            );
        }
        std::fs::remove_file(socket)
            .with_context(|| format!("cannot remove the stale socket {}", socket.display()))?;
    }
    let name = socket.to_fs_name::<GenericFilePath>()?;
    let options = ListenerOptions::new().name(name);
    #[cfg(unix)]
    let options = {
        use interprocess::os::unix::local_socket::ListenerOptionsExt;
        options.mode(0o600)
    };
    options
        .create_tokio()
        .with_context(|| format!("cannot listen on {}", socket.display()))
}

/// Serves `methods` on `listener` until `shutdown`, then lets open calls finish.
pub async fn serve(
    listener: Listener,
    socket: PathBuf,
    methods: Methods,
    mut shutdown: watch::Receiver<bool>,
) {
    let (stop, handle) = stop_channel();
    let builder = Server::builder().to_service_builder();
    let me = fastchat_api::paths::user_id();
    loop {
        let conn = tokio::select! {
            c = listener.accept() => c,
            _ = shutdown.changed() => break,
        };
        let stream = match conn {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "accept failed");
                continue;
            }
        };
        if !same_user(&stream, me) {
            tracing::warn!(socket = %socket.display(), "refused a connection from another user");
            continue;
        }
        let service = builder.clone().build(methods.clone(), stop.clone());
        let stopped = stop.clone().shutdown();
        tokio::spawn(async move {
            if let Err(e) = serve_with_graceful_shutdown(stream, service, stopped).await {
                tracing::debug!(error = %e, "local connection ended with an error");
            }
        });
    }
    drop(stop);
    let _ = handle.stop();
    handle.stopped().await;
}

#[cfg(unix)]
fn same_user(stream: &interprocess::local_socket::tokio::Stream, me: u32) -> bool {
    match stream.peer_creds() {
        Ok(creds) => creds.euid() == Some(me),
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the peer's credentials");
            false
        }
    }
}

#[cfg(not(unix))]
fn same_user(_stream: &interprocess::local_socket::tokio::Stream, _me: String) -> bool {
    // Named pipes are created with the owner's default ACL.
    true
}
