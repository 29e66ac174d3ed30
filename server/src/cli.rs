//! The `fastchat-server` command line: its flags and the serving loop, in the library so
//! that the bench can run the very same server as a child process of its own
//! (`fastchat-bench` re-executes itself with the server's arguments).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;

use crate::announce::{Announce, CpuMetric, announce};
use crate::store::Store;
use crate::store::postgres::PgStore;
use crate::store::sqlite::SqliteStore;
use crate::{Config, tls};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

/// A FastChat chat server: accounts, groups and durable, ordered delivery of end-to-end
/// encrypted messages (it only ever sees ciphertext).
#[derive(Debug, Parser)]
#[command(name = "fastchat-server", version)]
pub struct Args {
    /// Address to accept client connections on.
    #[arg(long, default_value = "127.0.0.1:7400", value_name = "ADDR")]
    pub listen: String,
    /// Database: sqlite://PATH or postgres://... (default: $XDG_DATA_HOME/fastchat/server.db).
    #[arg(long, env = "FASTCHAT_DATABASE_URL", value_name = "URL")]
    pub database_url: Option<String>,
    /// This server's name, shown to clients and in logs.
    #[arg(long, value_name = "NAME", default_value = "server-1")]
    pub id: String,
    /// Register with this balancer and send it a heartbeat every second (CPU use and live
    /// connections).
    #[arg(long, value_name = "ADDR")]
    pub balancer: Option<String>,
    /// The address clients should use for this server, as told to the balancer (default:
    /// the address it listens on).
    #[arg(long, value_name = "ADDR", requires = "balancer")]
    pub advertise: Option<String>,
    /// The CPU use reported to the balancer: `host` (the whole machine's) or `process`
    /// (this server's own, for several servers on one machine).
    #[arg(
        long,
        value_name = "METRIC",
        default_value = "host",
        requires = "balancer"
    )]
    pub cpu_metric: CpuMetric,
    /// PEM certificate chain: serve TLS on the client port (needs --tls-key).
    #[arg(long, value_name = "PEM", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key for --tls-cert.
    #[arg(long, value_name = "PEM", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Connections beyond this are refused with a TooManyConnections error.
    #[arg(long, value_name = "N", default_value_t = 10_000)]
    pub max_connections: usize,
    /// The largest image (attachment) accepted, in bytes.
    #[arg(long, value_name = "BYTES", default_value_t = 25 * 1024 * 1024)]
    pub max_image_bytes: u64,
}

/// Serves until `shutdown` completes (then answers what is queued and returns). Prints
/// `listening on ADDR` on stdout once it accepts connections.
///
/// # Errors
/// If the database cannot be opened, the address bound, or serving fails.
pub async fn serve(args: Args, shutdown: impl Future) -> anyhow::Result<()> {
    let url = match args.database_url {
        Some(url) => url,
        None => default_database()?,
    };
    let store = open_store(&url).await?;
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => Some(tls::acceptor(cert, key)?),
        _ => None,
    };
    let listener = TcpListener::bind(&args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let addr = listener.local_addr()?;
    let config = Config {
        server_id: args.id.clone(),
        max_connections: args.max_connections,
        max_attachment: args.max_image_bytes,
        ..Config::default()
    };
    let announcing = args.balancer.map(|balancer| {
        let target = Announce {
            balancer,
            id: args.id,
            addr: args.advertise.unwrap_or_else(|| addr.to_string()),
            interval: Duration::from_secs(1),
            cpu: args.cpu_metric,
        };
        let (stop, stopped) = oneshot::channel();
        (
            stop,
            tokio::spawn(announce(target, Arc::clone(&config.metrics), stopped)),
        )
    });
    tracing::info!(%addr, tls = tls.is_some(), database = %fastchat_runtime::redact(&url), "serving");
    println!("listening on {addr}");
    let served = crate::run(listener, store, config, tls, shutdown).await;
    if let Some((stop, task)) = announcing {
        let _ = stop.send(());
        match task.await {
            Ok(Err(e)) => tracing::warn!(error = %e, "announcing to the balancer failed"),
            Err(e) => tracing::warn!(error = %e, "announcing task failed"),
            Ok(Ok(())) => {}
        }
    }
    served?;
    tracing::info!("stopped");
    Ok(())
}

/// Opens (and migrates) the store a URL names: `sqlite://PATH` or `postgres://...`.
///
/// # Errors
/// If the database cannot be opened or migrated.
pub async fn open_store(url: &str) -> anyhow::Result<Arc<dyn Store>> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        let store = PgStore::open(url)
            .await
            .with_context(|| format!("cannot open database {}", fastchat_runtime::redact(url)))?;
        return Ok(Arc::new(store));
    }
    let store = SqliteStore::open(url)
        .await
        .with_context(|| format!("cannot open database {url}"))?;
    Ok(Arc::new(store))
}

/// `$XDG_DATA_HOME/fastchat/server.db`, creating the folder.
fn default_database() -> anyhow::Result<String> {
    let dir = fastchat_runtime::data_dir().context("pass --database-url")?;
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    Ok(format!("sqlite://{}", dir.join("server.db").display()))
}
