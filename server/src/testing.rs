//! Runs real servers in tests: `TestServer::start(db_path, config)` binds 127.0.0.1:0 and
//! serves in a task on SQLite; `TestServer::start_with_store` on any store (PostgreSQL
//! through [`TestDatabase`]); `stop` shuts down the way SIGTERM would.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use sqlx::Connection;
use sqlx::postgres::PgConnection;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;

use crate::Config;
use crate::store::Store;
use crate::store::sqlite::SqliteStore;

#[derive(Debug)]
pub struct TestServer {
    pub addr: SocketAddr,
    pub store: Arc<dyn Store>,
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
        Self::start_with_store(store, config, tls).await
    }

    /// A server on the PostgreSQL database at `url` (several may share one).
    ///
    /// # Errors
    /// If the database cannot be opened or the port cannot be bound.
    pub async fn start_postgres(url: &str, config: Config) -> anyhow::Result<TestServer> {
        let store = Arc::new(crate::store::postgres::PgStore::open(url).await?);
        Self::start_with_store(store, config, None).await
    }

    /// # Errors
    /// If the port cannot be bound.
    pub async fn start_with_store(
        store: Arc<dyn Store>,
        config: Config,
        tls: Option<TlsAcceptor>,
    ) -> anyhow::Result<TestServer> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(crate::run(listener, Arc::clone(&store), config, tls, rx));
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

/// The PostgreSQL server tests use: `FASTCHAT_TEST_POSTGRES` or the local one.
#[must_use]
pub fn postgres_admin_url() -> String {
    std::env::var("FASTCHAT_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// Whether tests can use PostgreSQL; see [`TestDatabase::create`].
///
/// # Panics
/// When PostgreSQL is required (`FASTCHAT_REQUIRE_POSTGRES`) and unavailable.
pub async fn postgres_available() -> bool {
    match postgres_admin().await {
        Some(conn) => {
            let _ = conn.close().await;
            true
        }
        None => false,
    }
}

async fn postgres_admin() -> Option<PgConnection> {
    let admin = postgres_admin_url();
    match PgConnection::connect(&admin).await {
        Ok(conn) => Some(conn),
        Err(e) if std::env::var_os("FASTCHAT_REQUIRE_POSTGRES").is_some() => {
            panic!("PostgreSQL is required (FASTCHAT_REQUIRE_POSTGRES) but {admin} fails: {e}")
        }
        Err(e) => {
            // Once per test process, and past the test harness's output capture, so that a
            // developer without PostgreSQL sees why those tests did nothing.
            static SAID: std::sync::Once = std::sync::Once::new();
            SAID.call_once(|| {
                use std::io::Write;
                let _ = writeln!(std::io::stderr(), "skipped: no PostgreSQL at {admin} ({e})");
            });
            None
        }
    }
}

/// A database of its own for one test, dropped when the value is dropped.
#[derive(Debug)]
pub struct TestDatabase {
    pub url: String,
    name: String,
}

impl TestDatabase {
    /// Creates a fresh database, or returns `None` (after printing "skipped: no PostgreSQL")
    /// when no PostgreSQL answers, unless `FASTCHAT_REQUIRE_POSTGRES` is set, as CI sets it:
    /// then a missing PostgreSQL fails the test.
    ///
    /// # Panics
    /// When PostgreSQL is required and unavailable, or the database cannot be created.
    pub async fn create() -> Option<TestDatabase> {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let admin = postgres_admin_url();
        let mut conn = postgres_admin().await?;
        let name = format!(
            "fastchat_test_{}_{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        // The name is made of digits and a fixed prefix: safe to splice into DDL, which
        // cannot take bind parameters.
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut conn)
            .await
            .expect("create the test database");
        let _ = conn.close().await;
        let base = admin
            .rsplit_once('/')
            .map_or(admin.as_str(), |(base, _)| base);
        Some(TestDatabase {
            url: format!("{base}/{name}"),
            name,
        })
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let admin = postgres_admin_url();
        let name = self.name.clone();
        // Drop runs outside async; a thread with its own small runtime does the cleanup.
        let _ = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async {
                if let Ok(mut conn) = PgConnection::connect(&admin).await {
                    let sql = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
                    let _ = sqlx::query(sqlx::AssertSqlSafe(sql))
                        .execute(&mut conn)
                        .await;
                }
            });
        })
        .join();
    }
}
