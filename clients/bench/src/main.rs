use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use fastchat_bench::{Combination, Load, Strategy, parse_list, run_combination};

/// fastchat-bench: latency and throughput of FastChat over servers x clients x sizes x
/// strategies. Starts the balancer and servers itself, one deployment per combination.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Server counts (more than 1 needs --database-url postgres://...).
    #[arg(long, default_value = "1")]
    servers: String,
    /// Simulated client counts (at least 2 each).
    #[arg(long, default_value = "10,50,100")]
    clients: String,
    /// Message sizes in bytes.
    #[arg(long, default_value = "64,1024,16384")]
    sizes: String,
    /// Strategies: a comma-separated list, or `all`.
    #[arg(long, default_value = "round-robin")]
    strategies: String,
    /// Messages each client sends.
    #[arg(long, conflicts_with = "duration", default_value_t = 100)]
    messages: u32,
    /// Send for this many seconds instead.
    #[arg(long)]
    duration: Option<u64>,
    /// The servers' database (required for more than one server).
    #[arg(long, env = "FASTCHAT_DATABASE_URL")]
    database_url: Option<String>,
    /// Where results.csv and report.md go [default: bench-results/<timestamp>/].
    #[arg(long)]
    out: Option<PathBuf>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    fastchat_runtime::init_logging();
    fastchat_runtime::run(run(args))
}

async fn run(args: Args) -> anyhow::Result<()> {
    let strategies: Vec<Strategy> = if args.strategies == "all" {
        parse_list(&Strategy::ALL.join(",")).map_err(anyhow::Error::msg)?
    } else {
        parse_list(&args.strategies).map_err(anyhow::Error::msg)?
    };
    let list = |flag: &str, text: &str| {
        parse_list::<usize>(text).map_err(|e| anyhow::anyhow!("--{flag}: {e}"))
    };
    let servers =
        parse_list::<u16>(&args.servers).map_err(|e| anyhow::anyhow!("--servers: {e}"))?;
    let (clients, sizes) = (list("clients", &args.clients)?, list("sizes", &args.sizes)?);
    if args.database_url.is_none() && servers.iter().any(|&n| n > 1) {
        anyhow::bail!("more than one server needs --database-url postgres://...");
    }
    let load = match args.duration {
        Some(s) => Load::Duration(Duration::from_secs(s)),
        None => Load::Messages(args.messages),
    };
    let out = args.out.unwrap_or_else(|| {
        PathBuf::from("bench-results").join(
            jiff::Timestamp::now()
                .strftime("%Y%m%dT%H%M%SZ")
                .to_string(),
        )
    });
    std::fs::create_dir_all(&out).with_context(|| format!("cannot create {}", out.display()))?;
    // One identity signs every simulated client's messages (2048 bits: key size is not what
    // is measured).
    let identity = fastchat_crypto::Identity::generate(fastchat_crypto::MIN_KEY_BITS)?;
    let mut combinations = Vec::new();
    for &servers in &servers {
        for &clients in &clients {
            for &size in &sizes {
                for &strategy in &strategies {
                    combinations.push(Combination {
                        servers,
                        clients,
                        size,
                        strategy,
                        load,
                        database_url: args.database_url.clone(),
                        tag: format!("b{}x{}", std::process::id(), combinations.len()),
                    });
                }
            }
        }
    }
    let command = std::env::args().collect::<Vec<_>>().join(" ");
    let mut rows = Vec::new();
    let total = combinations.len();
    let mut interrupted = false;
    for (i, c) in combinations.iter().enumerate() {
        eprintln!(
            "[{}/{total}] {} server(s), {} clients, {} B, {}",
            i + 1,
            c.servers,
            c.clients,
            c.size,
            c.strategy.name()
        );
        let row = tokio::select! {
            row = run_combination(c, &identity) => row?,
            () = fastchat_runtime::shutdown_signal() => {
                interrupted = true;
                break;
            }
        };
        eprintln!(
            "    p50 {:.2} ms, p99 {:.2} ms, {:.0} msg/s out, {:.0} msg/s in, {} errors",
            row.p50_ms, row.p99_ms, row.out_msgs_per_s, row.in_msgs_per_s, row.errors
        );
        rows.push(row);
        // Written after each combination, so an interrupted run keeps what it measured.
        fastchat_bench::write_csv(&rows, &out.join("results.csv"))?;
        fastchat_bench::write_report(&rows, &command, &out.join("report.md"))?;
    }
    if interrupted {
        eprintln!(
            "interrupted: {} of {total} combinations in {}",
            rows.len(),
            out.display()
        );
    } else {
        eprintln!("done: {}", out.display());
    }
    Ok(())
}
