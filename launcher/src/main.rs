//! `fastchat`: `fastchat up` runs a whole local FastChat (a balancer and N chat servers) in
//! the foreground, in this one process (see the library). See docs/interface.md.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};
use fastchat_balancer::Strategy;
use fastchat_launcher::{Deployment, Plan};

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

async fn run(up: Up) -> anyhow::Result<()> {
    let database_url = match &up.database_url {
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
    let plan = Plan {
        servers: up.servers,
        database_url,
        strategy: up.strategy,
        balancer_listen: up.balancer_listen,
        host: up.host,
        first_port: up.first_port,
    };
    let deployment = Deployment::start(&plan).await?;
    println!("balancer  {} ({})", deployment.balancer.addr, plan.strategy);
    for (id, addr) in deployment.servers() {
        println!("{id}  {addr}");
    }
    println!("database  {}", fastchat_runtime::redact(&plan.database_url));
    deployment.wait_healthy(Duration::from_secs(15)).await?;
    println!(
        "ready: {} server{} behind the balancer at {}; Ctrl-C stops everything",
        plan.servers,
        if plan.servers == 1 { "" } else { "s" },
        deployment.balancer.addr
    );
    fastchat_runtime::shutdown_signal().await;
    tracing::info!("stopping");
    deployment.stop().await;
    Ok(())
}
