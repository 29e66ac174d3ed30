//! Runs a real server in tests: `TestServer::start(db_path, config)` binds 127.0.0.1:0,
//! serves in a task, and `stop` shuts it down the way SIGTERM would.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;

use crate::Config;
use crate::store::sqlite::SqliteStore;

#[derive(Debug)]
pub struct TestServer {
    pub addr: SocketAddr,
    pub store: Arc<SqliteStore>,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<anyhow::Result<()>>>,
}

impl TestServer {
    /// # Errors
    /// If the database cannot be opened or the port cannot be bound.
    pub async fn start(db: &Path, config: Config) -> anyhow::Result<TestServer> {
        Self::start_with_tls(db, config, None).await
    }

    /// # Errors
    /// As [`TestServer::start`].
    pub async fn start_with_tls(
        db: &Path,
        config: Config,
        tls: Option<TlsAcceptor>,
    ) -> anyhow::Result<TestServer> {
        let store = Arc::new(SqliteStore::open_path(db).await?);
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (tx, rx) = oneshot::channel::<()>();
        let dyn_store: Arc<dyn crate::store::Store> = store.clone();
        let task = tokio::spawn(crate::run(listener, dyn_store, config, tls, rx));
        Ok(TestServer {
            addr,
            store,
            shutdown: Some(tx),
            task: Some(task),
        })
    }

    /// Shuts down gracefully and waits until every connection has closed.
    ///
    /// # Errors
    /// Whatever `run` returned.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        self.shutdown.take();
        let result = match self.task.take() {
            Some(task) => task.await?,
            None => Ok(()),
        };
        self.store.close().await;
        result
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}
