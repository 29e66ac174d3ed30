//! A logged-in session that outlives its server: when the connection is lost it connects
//! elsewhere through the [`Dialer`] (never first to the server that failed), resumes with its
//! token, and resends a message with the same client message id until it is acked, so the
//! server stores it once. After a reconnect the caller syncs from its cursors to get what
//! arrived meanwhile (pushes start again after that sync, as on any connection).

use std::time::Duration;

use fastchat_proto::{Resume, SendMessage, Sent, SessionToken};
use tokio::time::Instant;

use crate::policy::{Backoff, Dialer};
use crate::{Link, LinkError, Pushes};

#[derive(Debug)]
pub struct ResilientSession {
    dialer: Dialer,
    token: SessionToken,
    server: String,
    link: Link,
    pushes: Option<Pushes>,
    /// How long one call keeps trying before it gives up.
    patience: Duration,
    reconnects: u32,
}

impl ResilientSession {
    /// Connects through `dialer` and resumes the session of `token`.
    ///
    /// # Errors
    /// If no server answers within `patience`, or the token is refused.
    pub async fn resume(
        mut dialer: Dialer,
        token: SessionToken,
        patience: Duration,
    ) -> Result<ResilientSession, LinkError> {
        let (server, link, pushes) = Self::dial(&mut dialer, &token, None, patience).await?;
        Ok(ResilientSession {
            dialer,
            token,
            server,
            link,
            pushes: Some(pushes),
            patience,
            reconnects: 0,
        })
    }

    async fn dial(
        dialer: &mut Dialer,
        token: &SessionToken,
        failed: Option<&str>,
        patience: Duration,
    ) -> Result<(String, Link, Pushes), LinkError> {
        let give_up = Instant::now() + patience;
        let mut failed = failed.map(str::to_owned);
        loop {
            let (server, link, pushes) = dialer.connect(failed.as_deref(), give_up).await?;
            match link
                .request(Resume {
                    token: token.clone(),
                })
                .await
            {
                Ok(_) => return Ok((server, link, pushes)),
                Err(e) if e.is_transient() && Instant::now() < give_up => failed = Some(server),
                Err(e) => return Err(e),
            }
        }
    }

    /// The current connection (cheap to clone for pipelined requests).
    #[must_use]
    pub fn link(&self) -> &Link {
        &self.link
    }

    /// The server in use.
    #[must_use]
    pub fn server(&self) -> &str {
        &self.server
    }

    /// How many times the session has moved to another connection.
    #[must_use]
    pub fn reconnects(&self) -> u32 {
        self.reconnects
    }

    /// The current connection's pushes (once per connection).
    pub fn take_pushes(&mut self) -> Option<Pushes> {
        self.pushes.take()
    }

    /// Moves to another connection, trying the failed server last.
    ///
    /// # Errors
    /// If no server takes the session within the patience.
    pub async fn reconnect(&mut self) -> Result<(), LinkError> {
        let failed = self.server.clone();
        let (server, link, pushes) =
            Self::dial(&mut self.dialer, &self.token, Some(&failed), self.patience).await?;
        tracing::info!(from = %failed, to = %server, "session resumed on another server");
        self.server = server;
        self.link = link;
        self.pushes = Some(pushes);
        self.reconnects += 1;
        Ok(())
    }

    /// Sends `message` until it is acked, reconnecting and resending it (same client message
    /// id, so it is stored once) when the connection or the server fails.
    ///
    /// # Errors
    /// A refusal that retrying cannot change (not a member, too large, ...), or the last
    /// error once the patience is spent.
    pub async fn send(&mut self, message: SendMessage) -> Result<Sent, LinkError> {
        let give_up = Instant::now() + self.patience;
        let mut backoff = Backoff::default();
        loop {
            let error = match self.link.request(message.clone()).await {
                Ok(sent) => return Ok(sent),
                Err(e) if !e.is_transient() => return Err(e),
                Err(e) => e,
            };
            if Instant::now() >= give_up {
                return Err(error);
            }
            if self.link.is_closed() || matches!(error, LinkError::Fatal(_) | LinkError::Closed) {
                self.reconnect().await?;
            } else {
                // The server is up but its database is not: wait, then resend.
                tokio::time::sleep(backoff.next_delay()).await;
            }
        }
    }
}
