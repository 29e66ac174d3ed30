//! The server link: the client side of FastChat's wire protocol, used by the daemon and the
//! bench. It connects (TCP or TLS), says `Hello`, and then offers typed requests
//! (`link.request(Login { .. }).await?` returns a `Session`) and a stream of pushes.
//!
//! Invariants:
//! - One background task owns the socket; requests may be made concurrently from clones of
//!   [`Link`] and are matched to responses by id, so sends can be pipelined.
//! - When the connection ends, every pending request fails with [`LinkError::Closed`] (or
//!   the server's `Fatal` reason) and the push stream ends. Reconnecting, resuming the
//!   session and resending unacked messages belong to the caller's policy, not to this crate.
//! - Pushes are handed over in the order the server sent them, through a bounded queue: a
//!   caller that stops reading pushes slows the server's writes to this connection instead of
//!   growing memory. So a caller must keep reading [`Pushes`] (or drop it, which discards
//!   pushes) while it waits for responses: responses queue behind unread pushes.

pub mod policy;
pub mod session;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use fastchat_proto::frame::{self, FrameError};
use fastchat_proto::{
    ClientFrame, ErrorBody, Hello, PROTOCOL_VERSION, Ping, Push, Request, RequestId,
    RequestMessage, Response, ServerFrame, Welcome,
};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};
use tokio_rustls::rustls::{ClientConfig, RootCertStore};

#[derive(Debug, Clone, thiserror::Error)]
pub enum LinkError {
    #[error("cannot connect to {addr}: {message}")]
    Connect { addr: String, message: String },
    #[error("timed out after {0:?}")]
    Timeout(Duration),
    #[error("the connection is closed")]
    Closed,
    /// The server refused the request; the code says why.
    #[error("server: {0}")]
    Server(ErrorBody),
    /// The server closed the connection and said why.
    #[error("server closed the connection: {0}")]
    Fatal(ErrorBody),
    #[error("protocol error: {0}")]
    Protocol(String),
    #[error("TLS: {0}")]
    Tls(String),
}

impl LinkError {
    /// The server's error body, if the server answered with one.
    #[must_use]
    pub fn server_error(&self) -> Option<&ErrorBody> {
        match self {
            LinkError::Server(body) | LinkError::Fatal(body) => Some(body),
            _ => None,
        }
    }

    /// Whether trying again (perhaps on another server) can help: a lost or refused
    /// connection, a timeout, or a server error the server marks retryable.
    #[must_use]
    pub fn is_transient(&self) -> bool {
        match self {
            LinkError::Server(body) => body.code.is_retryable(),
            LinkError::Closed
            | LinkError::Timeout(_)
            | LinkError::Fatal(_)
            | LinkError::Connect { .. } => true,
            LinkError::Protocol(_) | LinkError::Tls(_) => false,
        }
    }
}

/// How to reach a server.
#[derive(Debug, Clone)]
pub struct LinkConfig {
    /// `host:port`.
    pub addr: String,
    /// `Some` for TLS: the roots to trust and the name to verify.
    pub tls: Option<TlsOptions>,
    /// Sent in `Hello`, for the server's logs.
    pub client_name: String,
    pub connect_timeout: Duration,
    /// How long a request may wait for its response (a send waits for its commit).
    pub request_timeout: Duration,
    /// Pushes buffered before the link stops reading from the server.
    pub push_queue: usize,
    /// A `Ping` goes out after this long without a write, so the server's idle timeout
    /// never fires; a server silent for three of these is taken for dead.
    pub keepalive: Duration,
}

impl LinkConfig {
    #[must_use]
    pub fn new(addr: impl Into<String>) -> LinkConfig {
        LinkConfig {
            addr: addr.into(),
            tls: None,
            client_name: format!("fastchat-link/{}", env!("CARGO_PKG_VERSION")),
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(30),
            push_queue: 1024,
            keepalive: Duration::from_secs(30),
        }
    }
}

#[derive(Debug, Clone)]
pub struct TlsOptions {
    pub config: Arc<ClientConfig>,
    pub server_name: ServerName<'static>,
}

impl TlsOptions {
    /// Trusts the certificates in `ca_pem` (PEM) and verifies the server as `server_name`.
    ///
    /// # Errors
    /// If the PEM holds no usable certificate or the name is not a valid DNS name or address.
    pub fn from_pem(ca_pem: &[u8], server_name: &str) -> Result<TlsOptions, LinkError> {
        let mut roots = RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(ca_pem) {
            let cert = cert.map_err(|e| LinkError::Tls(format!("bad CA certificate: {e}")))?;
            roots
                .add(cert)
                .map_err(|e| LinkError::Tls(format!("bad CA certificate: {e}")))?;
        }
        if roots.is_empty() {
            return Err(LinkError::Tls("no CA certificate in the PEM".into()));
        }
        let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
        let config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| LinkError::Tls(e.to_string()))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        let server_name = ServerName::try_from(server_name.to_owned())
            .map_err(|e| LinkError::Tls(format!("bad server name {server_name}: {e}")))?;
        Ok(TlsOptions {
            config: Arc::new(config),
            server_name,
        })
    }
}

struct Call {
    request: Request,
    reply: oneshot::Sender<Result<Response, LinkError>>,
}

/// A connected, handshaken link to one server. Cheap to clone; the connection closes when
/// the last clone is dropped or [`Link::close`] is called.
#[derive(Debug, Clone)]
pub struct Link {
    calls: mpsc::Sender<Call>,
    welcome: Arc<Welcome>,
    request_timeout: Duration,
}

impl std::fmt::Debug for Call {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.request.name())
    }
}

/// The server's pushes, in order. Ends when the connection does.
#[derive(Debug)]
pub struct Pushes {
    rx: mpsc::Receiver<Push>,
}

impl Pushes {
    pub async fn recv(&mut self) -> Option<Push> {
        self.rx.recv().await
    }
}

trait Io: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Io for T {}

impl Link {
    /// Connects, performs the handshake, and starts the connection's task.
    ///
    /// # Errors
    /// If the server cannot be reached in time, TLS fails, or the server refuses the
    /// handshake.
    pub async fn connect(config: &LinkConfig) -> Result<(Link, Pushes), LinkError> {
        let connect = async {
            let tcp = TcpStream::connect(&config.addr)
                .await
                .map_err(|e| LinkError::Connect {
                    addr: config.addr.clone(),
                    message: e.to_string(),
                })?;
            let _ = tcp.set_nodelay(true);
            let io: Box<dyn Io> = match &config.tls {
                None => Box::new(tcp),
                Some(tls) => {
                    let connector = TlsConnector::from(Arc::clone(&tls.config));
                    let stream = connector
                        .connect(tls.server_name.clone(), tcp)
                        .await
                        .map_err(|e| LinkError::Tls(e.to_string()))?;
                    Box::new(stream)
                }
            };
            Ok::<_, LinkError>(io)
        };
        let io = tokio::time::timeout(config.connect_timeout, connect)
            .await
            .map_err(|_| LinkError::Timeout(config.connect_timeout))??;

        let (calls, call_rx) = mpsc::channel(256);
        let (push_tx, push_rx) = mpsc::channel(config.push_queue.max(1));
        tokio::spawn(Driver::new(io, push_tx, config.keepalive).run(call_rx));
        let hello = Hello {
            version: PROTOCOL_VERSION,
            client: config.client_name.clone(),
        };
        let mut link = Link {
            calls,
            welcome: Arc::new(Welcome {
                version: PROTOCOL_VERSION,
                server_id: String::new(),
                max_frame: 0,
                max_envelope: 0,
            }),
            request_timeout: config.connect_timeout,
        };
        let welcome = link.request(hello).await?;
        link.welcome = Arc::new(welcome);
        link.request_timeout = config.request_timeout;
        Ok((link, Pushes { rx: push_rx }))
    }

    /// The server's `Welcome`: its id and limits.
    #[must_use]
    pub fn welcome(&self) -> &Welcome {
        &self.welcome
    }

    /// Sends a request and waits for its typed response.
    ///
    /// # Errors
    /// [`LinkError::Server`] if the server refused it; [`LinkError::Closed`] or
    /// [`LinkError::Fatal`] if the connection ended first; [`LinkError::Timeout`].
    pub async fn request<R: RequestMessage>(&self, request: R) -> Result<R::Response, LinkError> {
        let (reply, rx) = oneshot::channel();
        self.calls
            .send(Call {
                request: request.into(),
                reply,
            })
            .await
            .map_err(|_| LinkError::Closed)?;
        let response = tokio::time::timeout(self.request_timeout, rx)
            .await
            .map_err(|_| LinkError::Timeout(self.request_timeout))?
            .map_err(|_| LinkError::Closed)??;
        R::response_from(response)
            .ok_or_else(|| LinkError::Protocol(format!("wrong response type to {}", R::NAME)))
    }

    /// Whether the connection is still up.
    #[must_use]
    pub fn is_closed(&self) -> bool {
        self.calls.is_closed()
    }

    /// Closes the connection once the requests already made are written.
    pub fn close(self) {
        drop(self);
    }
}

/// The task that owns the socket.
struct Driver {
    io: Box<dyn Io>,
    read_buf: BytesMut,
    write_buf: BytesMut,
    next_id: u32,
    pending: HashMap<RequestId, oneshot::Sender<Result<Response, LinkError>>>,
    pushes: mpsc::Sender<Push>,
    keepalive: Duration,
    last_read: Instant,
    last_write: Instant,
}

impl Driver {
    fn new(io: Box<dyn Io>, pushes: mpsc::Sender<Push>, keepalive: Duration) -> Self {
        let now = Instant::now();
        Driver {
            keepalive,
            last_read: now,
            last_write: now,
            io,
            read_buf: BytesMut::with_capacity(16 * 1024),
            write_buf: BytesMut::with_capacity(16 * 1024),
            next_id: 0,
            pending: HashMap::new(),
            pushes,
        }
    }

    async fn run(mut self, mut calls: mpsc::Receiver<Call>) {
        let end = loop {
            // Read whatever whole frames are buffered before waiting for more.
            match frame::decode::<ServerFrame>(&mut self.read_buf) {
                Ok(Some(frame)) => match self.dispatch(frame).await {
                    Ok(()) => continue,
                    Err(e) => break e,
                },
                Ok(None) => {}
                Err(e) => break protocol_error(&e),
            }
            let silence = self.keepalive * 3;
            let tick = (self.last_write + self.keepalive).min(self.last_read + silence);
            tokio::select! {
                read = self.io.read_buf(&mut self.read_buf) => match read {
                    Ok(0) | Err(_) => break LinkError::Closed,
                    Ok(_) => self.last_read = Instant::now(),
                },
                () = tokio::time::sleep_until(tick) => {
                    if self.last_read.elapsed() >= silence {
                        break LinkError::Timeout(silence);
                    }
                    if self.last_write.elapsed() >= self.keepalive {
                        // The answer only matters as a sign of life; nobody waits for it.
                        let (reply, _) = oneshot::channel();
                        if let Err(e) = self.write(Call { request: Ping {}.into(), reply }).await {
                            break e;
                        }
                    }
                },
                call = calls.recv() => match call {
                    Some(call) => {
                        if let Err(e) = self.write(call).await {
                            break e;
                        }
                    }
                    // Every `Link` is gone: close.
                    None => break LinkError::Closed,
                },
            }
        };
        for (_, reply) in self.pending.drain() {
            let _ = reply.send(Err(end.clone()));
        }
        // Fail calls that were queued but never written.
        calls.close();
        while let Some(call) = calls.recv().await {
            let _ = call.reply.send(Err(end.clone()));
        }
        let _ = self.io.shutdown().await;
    }

    async fn write(&mut self, call: Call) -> Result<(), LinkError> {
        let id = RequestId(self.next_id);
        self.next_id = self.next_id.wrapping_add(1);
        let frame = ClientFrame {
            id,
            request: call.request,
        };
        if let Err(e) = frame::encode(&frame, &mut self.write_buf) {
            // This request alone is at fault; the connection goes on.
            let _ = call.reply.send(Err(LinkError::Protocol(e.to_string())));
            return Ok(());
        }
        self.pending.insert(id, call.reply);
        let result = async {
            self.io.write_all(&self.write_buf).await?;
            self.io.flush().await
        }
        .await;
        self.write_buf.clear();
        self.last_write = Instant::now();
        result.map_err(|_| LinkError::Closed)
    }

    async fn dispatch(&mut self, frame: ServerFrame) -> Result<(), LinkError> {
        match frame {
            ServerFrame::Response { id, result } => {
                let Some(reply) = self.pending.remove(&id) else {
                    return Err(LinkError::Protocol(format!(
                        "response to unknown request {}",
                        id.0
                    )));
                };
                let _ = reply.send(result.map_err(LinkError::Server));
                Ok(())
            }
            // If nobody listens for pushes any more, drop them; responses still flow.
            ServerFrame::Push(push) => {
                let _ = self.pushes.send(push).await;
                Ok(())
            }
            ServerFrame::Fatal(body) => Err(LinkError::Fatal(body)),
        }
    }
}

fn protocol_error(e: &FrameError) -> LinkError {
    LinkError::Protocol(e.to_string())
}
