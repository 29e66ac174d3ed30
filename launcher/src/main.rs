//! `fastchat`: `fastchat up` runs a whole local FastChat (a balancer and N chat servers) in
//! the foreground, in this one process. See docs/interface.md.
//!
//! The launcher is the one crate that composes the services: it links the server and
//! balancer libraries, so `cargo run --bin fastchat -- up` needs no other binary built.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};
use fastchat_balancer::{Balancer, Strategy};
use fastchat_server::announce::{Announce, CpuMetric, announce};
use fastchat_server::store::Store;
use fastchat_server::store::postgres::PgStore;
use fastchat_server::store::sqlite::SqliteStore;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

#[derive(Debug, Parser)]
#[command(
    name = "fastchat",
    version,
    about = "FastChat: a whole local deployment in one command"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Start a balancer and N chat servers in the foreground; Ctrl-C stops them all.
    Up(Up),
}

#[derive(Debug, clap::Args)]
struct Up {
    /// How many chat servers (more than one needs --database-url postgres://...).
    #[arg(long, default_value_t = 1, value_name = "N")]
    servers: u16,
    /// The servers' database (default: SQLite in the data folder).
    #[arg(long, env = "FASTCHAT_DATABASE_URL", value_name = "URL")]
    database_url: Option<String>,
    /// The balancer's strategy: round-robin, least-cpu, least-connections or p2c.
    #[arg(long, default_value = "round-robin", value_name = "S", value_parser = parse_strategy)]
    strategy: Strategy,
    /// Where the SQLite database lives (default: $XDG_DATA_HOME/fastchat).
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// The balancer's address.
    #[arg(long, default_value = "127.0.0.1:7300", value_name = "ADDR")]
    balancer_listen: String,
    /// The host the servers listen on.
    #[arg(long, default_value = "127.0.0.1", value_name = "HOST")]
    host: String,
    /// The first server's port; the others take the next ones (0: any free port each).
    #[arg(long, default_value_t = 7400, value_name = "PORT")]
    first_port: u16,
}

fn parse_strategy(s: &str) -> Result<Strategy, String> {
    s.parse()
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    fastchat_runtime::init_logging();
    let Command::Up(up) = cli.command;
    if up.servers == 0 {
        eprintln!("error: --servers must be at least 1");
        return ExitCode::from(2);
    }
    let postgres = up
        .database_url
        .as_deref()
        .is_some_and(|u| u.starts_with("postgres"));
    if up.servers > 1 && !postgres {
        eprintln!(
            "error: {} servers must share a database: add --database-url postgres://USER@HOST/DB",
            up.servers
        );
        return ExitCode::from(2);
    }
    fastchat_runtime::run(run(up))
}

struct RunningServer {
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
    stop_announce: oneshot::Sender<()>,
    announce: tokio::task::JoinHandle<anyhow::Result<()>>,
}

async fn run(up: Up) -> anyhow::Result<()> {
    let url = match &up.database_url {
        Some(url) => url.clone(),
        None => {
            let dir = match &up.data_dir {
                Some(dir) => dir.clone(),
                None => fastchat_runtime::data_dir().context("pass --data-dir")?,
            };
            std::fs::create_dir_all(&dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
            format!("sqlite://{}", dir.join("server.db").display())
        }
    };
    let config = fastchat_balancer::Config {
        strategy: up.strategy,
        ..Default::default()
    };
    let balancer = Balancer::start(&up.balancer_listen, config)
        .await
        .map_err(|e| anyhow::anyhow!("cannot start the balancer on {}: {e}", up.balancer_listen))?;
    println!("balancer  {} ({})", balancer.addr, up.strategy);

    let mut servers = Vec::new();
    for i in 0..up.servers {
        let id = format!("server-{}", i + 1);
        let port = if up.first_port == 0 {
            0
        } else {
            up.first_port + i
        };
        let listen = format!("{}:{port}", up.host);
        let listener = TcpListener::bind(&listen)
            .await
            .with_context(|| format!("{id}: cannot listen on {listen}"))?;
        let addr = listener.local_addr()?;
        let store: Arc<dyn Store> = if url.starts_with("postgres") {
            Arc::new(
                PgStore::open(&url)
                    .await
                    .context("cannot open the PostgreSQL database")?,
            )
        } else {
            Arc::new(
                SqliteStore::open(&url)
                    .await
                    .with_context(|| format!("cannot open {url}"))?,
            )
        };
        let config = fastchat_server::Config {
            server_id: id.clone(),
            ..Default::default()
        };
        let metrics = Arc::clone(&config.metrics);
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(fastchat_server::run(listener, store, config, None, stopped));
        let target = Announce {
            balancer: balancer.addr.to_string(),
            id: id.clone(),
            addr: addr.to_string(),
            interval: Duration::from_secs(1),
            // These servers share one process, so only the host's figure means anything.
            cpu: CpuMetric::Host,
        };
        let (stop_announce, announce_stopped) = oneshot::channel();
        let announce = tokio::spawn(announce(target, metrics, announce_stopped));
        println!("{id}  {addr}");
        servers.push(RunningServer {
            stop,
            task,
            stop_announce,
            announce,
        });
    }
    println!("database  {}", fastchat_runtime::redact(&url));

    // Ready once the balancer sees every server healthy.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let healthy = balancer.statuses().iter().filter(|s| s.healthy).count();
        if healthy == usize::from(up.servers) {
            break;
        }
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "only {healthy} of {} servers became healthy",
            up.servers
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    println!(
        "ready: {} server{} behind the balancer at {}; Ctrl-C stops everything",
        up.servers,
        if up.servers == 1 { "" } else { "s" },
        balancer.addr
    );

    fastchat_runtime::shutdown_signal().await;
    tracing::info!("stopping");
    for server in servers {
        let _ = server.stop_announce.send(());
        let _ = server.announce.await;
        let _ = server.stop.send(());
        match server.task.await {
            Ok(Err(e)) => tracing::warn!(error = %e, "a server stopped with an error"),
            Err(e) => tracing::warn!(error = %e, "a server task failed"),
            Ok(Ok(())) => {}
        }
    }
    balancer.stop().await;
    Ok(())
}
