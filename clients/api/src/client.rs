//! The typed client: connects to a daemon's socket with JSON-RPC over WebSocket, so calls
//! and subscriptions share one connection. The generated [`crate::FastChatApiClient`] trait
//! gives its methods.

use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use interprocess::local_socket::tokio::Stream;
use interprocess::local_socket::tokio::prelude::*;
use interprocess::local_socket::{GenericFilePath, ToFsName};
use jsonrpsee::async_client::{Client, ClientBuilder};
use jsonrpsee::client_transport::ws::{Url, WsTransportClientBuilder};

/// Why no daemon could be reached.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// Nothing listens on the socket (no daemon runs for that profile).
    #[error("no daemon listens on {}", path.display())]
    NotRunning { path: PathBuf, source: io::Error },
    /// Something listens but did not speak the daemon's protocol.
    #[error("{} does not answer as fastchatd: {message}", path.display())]
    Handshake { path: PathBuf, message: String },
}

/// Connects to the daemon listening on `socket`.
///
/// # Errors
/// [`ConnectError::NotRunning`] if no daemon listens there.
pub async fn connect(socket: &Path) -> Result<Client, ConnectError> {
    let not_running = |source: io::Error| ConnectError::NotRunning {
        path: socket.to_owned(),
        source,
    };
    let name = socket
        .to_fs_name::<GenericFilePath>()
        .map_err(not_running)?;
    let stream = Stream::connect(name).await.map_err(not_running)?;
    let handshake = |message: String| ConnectError::Handshake {
        path: socket.to_owned(),
        message,
    };
    // The host is never resolved: the stream is already connected.
    let url = Url::parse("ws://localhost/").map_err(|e| handshake(e.to_string()))?;
    let (tx, rx) = WsTransportClientBuilder::default()
        .connection_timeout(Duration::from_secs(10))
        .build_with_stream(url, stream)
        .await
        .map_err(|e| handshake(e.to_string()))?;
    Ok(ClientBuilder::default()
        .request_timeout(Duration::from_secs(120))
        .build_with_tokio(tx, rx))
}
