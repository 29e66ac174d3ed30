//! `fastchat-balancer`: see docs/interface.md.

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use fastchat_balancer::{Balancer, Config, Strategy};

/// The FastChat load balancer: tells clients which chat server to use (JSON-RPC 2.0 over
/// HTTP), checking the servers' health.
#[derive(Debug, Parser)]
#[command(name = "fastchat-balancer", version)]
struct Args {
    /// Address to serve JSON-RPC on.
    #[arg(long, default_value = "127.0.0.1:7300", value_name = "ADDR")]
    listen: String,
    /// round-robin, least-cpu, least-connections or p2c.
    #[arg(long, default_value = "round-robin", value_name = "S", value_parser = parse_strategy)]
    strategy: Strategy,
    /// A server known from the start (repeatable); servers may also register themselves.
    #[arg(long = "server", value_name = "ID=ADDR", value_parser = parse_server)]
    servers: Vec<(String, String)>,
    /// How often each server is probed, in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 1000)]
    probe_interval_ms: u64,
}

fn parse_strategy(s: &str) -> Result<Strategy, String> {
    s.parse()
}

fn parse_server(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((id, addr)) if !id.is_empty() && !addr.is_empty() => Ok((id.into(), addr.into())),
        _ => Err(format!(
            "expected ID=ADDR, such as s1=127.0.0.1:7400, not {s:?}"
        )),
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    fastchat_runtime::init_logging();
    fastchat_runtime::run(serve(args))
}

async fn serve(args: Args) -> anyhow::Result<()> {
    let config = Config {
        strategy: args.strategy,
        probe_interval: Duration::from_millis(args.probe_interval_ms.max(10)),
        servers: args.servers,
        ..Config::default()
    };
    let strategy = config.strategy;
    let balancer = Balancer::start(&args.listen, config)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", args.listen))?;
    tracing::info!(addr = %balancer.addr, %strategy, "balancing");
    println!("listening on {}", balancer.addr);
    fastchat_runtime::shutdown_signal().await;
    tracing::info!("shutting down");
    balancer.stop().await;
    Ok(())
}
