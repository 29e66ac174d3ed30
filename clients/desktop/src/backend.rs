//! The bridge between gpui and the daemon: RPC calls run on a tokio runtime (jsonrpsee needs
//! one) and come back as plain futures that gpui's executor awaits; the live message feed
//! comes back as a channel. The connection to `fastchatd` is made on first use and made
//! again (starting the daemon if it must) after it drops.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use fastchat_api::{FastChatApiClient, Message};
use futures_util::future::BoxFuture;
use jsonrpsee::async_client::Client;
use jsonrpsee::core::client::Error as ClientError;
use tokio::runtime::Handle;
use tokio::sync::{Mutex, mpsc};

/// Makes a connection to the daemon (and may start it).
pub type Connector = Arc<dyn Fn() -> BoxFuture<'static, Result<Client, String>> + Send + Sync>;

/// A failed call, as the user should read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiFailure {
    /// The daemon's stable error code (see `fastchat_api::codes`), if it answered with one.
    pub code: Option<i32>,
    pub message: String,
}

impl ApiFailure {
    fn daemon_gone(reason: impl fmt::Display) -> Self {
        ApiFailure {
            code: None,
            message: format!("fastchatd is not reachable: {reason}"),
        }
    }
}

impl fmt::Display for ApiFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ApiFailure {}

impl From<ClientError> for ApiFailure {
    fn from(e: ClientError) -> Self {
        match e {
            ClientError::Call(object) => ApiFailure {
                code: Some(object.code()),
                message: object.message().to_owned(),
            },
            ClientError::RequestTimeout => ApiFailure {
                code: None,
                message: "fastchatd did not answer in time".to_owned(),
            },
            other => ApiFailure::daemon_gone(other),
        }
    }
}

/// What the live feed reports.
#[derive(Debug, Clone)]
pub enum Feed {
    /// Subscribed: messages from here on arrive as [`Feed::Message`].
    Live,
    Message(Box<Message>),
    /// The daemon went away; the feed reconnects by itself.
    Lost(String),
}

/// A handle on the daemon, cheap to clone.
#[derive(Clone)]
pub struct Backend {
    inner: Arc<Inner>,
}

struct Inner {
    runtime: Handle,
    connector: Connector,
    client: Mutex<Option<Arc<Client>>>,
}

impl fmt::Debug for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Backend").finish_non_exhaustive()
    }
}

/// How long the feed waits before trying a lost daemon again, at first and at most.
const RETRY_FIRST: Duration = Duration::from_millis(250);
const RETRY_MAX: Duration = Duration::from_secs(5);

impl Backend {
    /// A backend whose calls run on `runtime` and connect with `connector`.
    #[must_use]
    pub fn new(runtime: Handle, connector: Connector) -> Self {
        Backend {
            inner: Arc::new(Inner {
                runtime,
                connector,
                client: Mutex::new(None),
            }),
        }
    }

    /// Runs `call` with a connected client on the runtime. The returned future can be awaited
    /// on any executor.
    pub fn call<T, F, Fut>(
        &self,
        call: F,
    ) -> impl Future<Output = Result<T, ApiFailure>> + use<T, F, Fut>
    where
        T: Send + 'static,
        F: FnOnce(Arc<Client>) -> Fut + Send + 'static,
        Fut: Future<Output = Result<T, ClientError>> + Send + 'static,
    {
        let inner = self.inner.clone();
        let task = self.inner.runtime.spawn(async move {
            let client = inner.client().await?;
            call(client).await.map_err(ApiFailure::from)
        });
        async move {
            match task.await {
                Ok(result) => result,
                Err(e) => Err(ApiFailure {
                    code: None,
                    message: format!("the call was lost: {e}"),
                }),
            }
        }
    }

    /// The live feed of every conversation's messages. It subscribes, and subscribes again
    /// whenever the daemon goes away and comes back, until the receiver is dropped.
    #[must_use]
    pub fn feed(&self) -> mpsc::UnboundedReceiver<Feed> {
        let (tx, rx) = mpsc::unbounded_channel();
        let inner = self.inner.clone();
        self.inner.runtime.spawn(async move {
            let mut retry = RETRY_FIRST;
            loop {
                let reason = match inner.client().await {
                    Ok(client) => match client.subscribe_messages(None).await {
                        Ok(mut subscription) => {
                            retry = RETRY_FIRST;
                            if tx.send(Feed::Live).is_err() {
                                return;
                            }
                            loop {
                                match subscription.next().await {
                                    Some(Ok(message)) => {
                                        if tx.send(Feed::Message(Box::new(message))).is_err() {
                                            return;
                                        }
                                    }
                                    Some(Err(e)) => {
                                        tracing::warn!(
                                            "a message the daemon sent is unreadable: {e}"
                                        );
                                    }
                                    None => break "the daemon closed the connection".to_owned(),
                                }
                            }
                        }
                        Err(e) => ApiFailure::from(e).message,
                    },
                    Err(e) => e.message,
                };
                inner.forget().await;
                if tx.send(Feed::Lost(reason)).is_err() {
                    return;
                }
                tokio::select! {
                    () = tokio::time::sleep(retry) => {}
                    () = tx.closed() => return,
                }
                retry = (retry * 2).min(RETRY_MAX);
            }
        });
        rx
    }
}

impl Inner {
    /// The connected client, connecting first if there is none or it dropped.
    async fn client(&self) -> Result<Arc<Client>, ApiFailure> {
        let mut slot = self.client.lock().await;
        if let Some(client) = slot.as_ref()
            && client.is_connected()
        {
            return Ok(client.clone());
        }
        let client = Arc::new((self.connector)().await.map_err(ApiFailure::daemon_gone)?);
        *slot = Some(client.clone());
        Ok(client)
    }

    async fn forget(&self) {
        let mut slot = self.client.lock().await;
        if slot.as_ref().is_some_and(|c| !c.is_connected()) {
            *slot = None;
        }
    }
}
