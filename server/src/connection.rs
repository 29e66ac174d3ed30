//! The only code that touches a client's socket: reads whole frames (with idle and per-frame
//! timeouts) and writes frames (with a write timeout, so a client that stops reading cannot
//! pin the task forever).
//!
//! `read_request` is cancel-safe: all progress lives in `self`, so it can sit in a
//! `tokio::select!` beside pushes and shutdown.

use std::time::Duration;

use bytes::BytesMut;
use fastchat_proto::frame::{self, FrameError};
use fastchat_proto::{ClientFrame, ServerFrame};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::time::Instant;

#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("{0}")]
    Frame(#[from] FrameError),
    #[error("connection closed in the middle of a frame")]
    Truncated,
    #[error("no frame for {0:?}")]
    Idle(Duration),
    #[error("a frame took longer than {0:?} to arrive")]
    SlowFrame(Duration),
    #[error("read failed: {0}")]
    Io(#[from] std::io::Error),
}

#[derive(Debug)]
pub struct Connection<S> {
    stream: S,
    read_buf: BytesMut,
    write_buf: BytesMut,
    idle_timeout: Duration,
    frame_timeout: Duration,
    last_frame: Instant,
    /// When the bytes now buffered began to arrive, if they are part of an unfinished frame.
    partial_since: Option<Instant>,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Connection<S> {
    pub fn new(stream: S, idle_timeout: Duration, frame_timeout: Duration) -> Self {
        Connection {
            stream,
            read_buf: BytesMut::with_capacity(8 * 1024),
            write_buf: BytesMut::with_capacity(8 * 1024),
            idle_timeout,
            frame_timeout,
            last_frame: Instant::now(),
            partial_since: None,
        }
    }

    /// Changes the idle timeout (the handshake uses a shorter one).
    pub fn set_idle_timeout(&mut self, idle: Duration) {
        self.idle_timeout = idle;
        self.last_frame = Instant::now();
    }

    /// The next whole frame, or `None` when the client closed the connection cleanly.
    pub async fn read_request(&mut self) -> Result<Option<ClientFrame>, ReadError> {
        loop {
            if let Some(frame) = frame::decode_client(&mut self.read_buf)? {
                let now = Instant::now();
                self.last_frame = now;
                self.partial_since = (!self.read_buf.is_empty()).then_some(now);
                return Ok(Some(frame));
            }
            let (deadline, error) = match self.partial_since {
                Some(since) => (
                    since + self.frame_timeout,
                    ReadError::SlowFrame(self.frame_timeout),
                ),
                None => (
                    self.last_frame + self.idle_timeout,
                    ReadError::Idle(self.idle_timeout),
                ),
            };
            match tokio::time::timeout_at(deadline, self.stream.read_buf(&mut self.read_buf)).await
            {
                Err(_) => return Err(error),
                Ok(Ok(0)) if self.read_buf.is_empty() => return Ok(None),
                Ok(Ok(0)) => return Err(ReadError::Truncated),
                Ok(Ok(_)) => {
                    if self.partial_since.is_none() {
                        self.partial_since = Some(Instant::now());
                    }
                }
                Ok(Err(e)) => return Err(e.into()),
            }
        }
    }

    /// Writes one frame and flushes it.
    pub async fn write_frame(&mut self, frame: &ServerFrame) -> std::io::Result<()> {
        if let Err(e) = frame::encode(frame, &mut self.write_buf) {
            // Only a push or sync answer could be this large, and those are sized below the
            // limit; treat it as the bug it would be.
            return Err(std::io::Error::other(e));
        }
        let write = async {
            self.stream.write_all(&self.write_buf).await?;
            self.stream.flush().await
        };
        let result = match tokio::time::timeout(self.frame_timeout, write).await {
            Ok(result) => result,
            Err(_) => Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "the client is not reading",
            )),
        };
        self.write_buf.clear();
        result
    }

    /// Flushes and closes the write side.
    pub async fn shutdown(&mut self) {
        let _ = tokio::time::timeout(self.frame_timeout, self.stream.shutdown()).await;
    }
}
