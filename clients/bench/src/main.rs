use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use fastchat_bench::fleet::{SERVER_COMMAND, serve_main};
use fastchat_bench::worker::{WORKER_COMMAND, worker_main};
use fastchat_bench::{Combination, Findings, Load, Progress, Strategy, parse_list};
use indicatif::{ProgressBar, ProgressStyle};

/// fastchat-bench: latency and throughput of FastChat over servers x clients x sizes x
/// strategies, beside baselines of what the machine allows without FastChat. Starts the
/// balancer and servers itself, a fresh set per combination.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Server counts (more than 1 needs --database-url postgres://...).
    #[arg(long, default_value = "1")]
    servers: String,
    /// Simulated client counts (at least 2 per process each).
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
    #[arg(long, value_name = "SECS")]
    duration: Option<u64>,
    /// Messages per second each client sends [default: as fast as its acks allow].
    #[arg(long, value_name = "PER_SECOND", value_parser = positive)]
    rate: Option<f64>,
    /// Spread each combination's clients over this many processes.
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..))]
    processes: u16,
    /// Also run the uneven-load scenario for each strategy: this many extra clients keep
    /// server 1 busy, on the largest server count (at least 2) and client count given.
    /// Needs --database-url postgres://...
    #[arg(long, value_name = "BUSY_CLIENTS")]
    uneven: Option<usize>,
    /// Also measure how much memory one server needs for this many logged-in connections.
    #[arg(long, value_name = "N")]
    connections: Option<u64>,
    /// Round trips timed per baseline and size (0: no baselines).
    #[arg(long, value_name = "N", default_value_t = 500)]
    baseline_samples: u32,
    /// The servers' database (required for more than one server).
    #[arg(long, env = "FASTCHAT_DATABASE_URL")]
    database_url: Option<String>,
    /// Where results.csv, plots/ and report.md go [default: bench-results/<timestamp>/].
    #[arg(long)]
    out: Option<PathBuf>,
}

fn positive(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(v) if v > 0.0 && v.is_finite() => Ok(v),
        _ => Err(format!("{text} is not a positive number")),
    }
}

fn main() -> ExitCode {
    // The bench re-executes itself as a chat server and as client workers.
    let mut argv = std::env::args().skip(1);
    match argv.next().as_deref() {
        Some(SERVER_COMMAND) => return serve_main(argv),
        Some(WORKER_COMMAND) => return worker_main(argv.next()),
        _ => {}
    }
    let args = Args::parse();
    fastchat_runtime::init_logging();
    fastchat_runtime::run(run(args))
}

/// The progress bar (drawn only on a terminal), which also carries each phase's message.
struct Bar(ProgressBar);

impl Progress for Bar {
    fn phase(&self, what: &str) {
        self.0.set_message(what.to_owned());
    }
}

impl Bar {
    fn new(length: u64) -> Bar {
        let bar = ProgressBar::new(length);
        if let Ok(style) = ProgressStyle::with_template(
            "{elapsed_precise} [{bar:30}] {pos}/{len} {prefix} {wide_msg}",
        ) {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.enable_steady_tick(Duration::from_millis(200));
        Bar(bar)
    }

    /// A line above the bar (or on stderr, when there is no terminal).
    fn say(&self, line: &str) {
        if self.0.is_hidden() {
            eprintln!("{line}");
        } else {
            self.0.println(line);
        }
    }
}

struct Plan {
    combinations: Vec<Combination>,
    sizes: Vec<usize>,
}

fn plan(args: &Args) -> anyhow::Result<Plan> {
    let strategies: Vec<Strategy> = if args.strategies == "all" {
        parse_list(&Strategy::ALL.join(",")).map_err(anyhow::Error::msg)?
    } else {
        parse_list(&args.strategies).map_err(|e| anyhow::anyhow!("--strategies: {e}"))?
    };
    let list = |flag: &str, text: &str| {
        parse_list::<usize>(text).map_err(|e| anyhow::anyhow!("--{flag}: {e}"))
    };
    let servers =
        parse_list::<u16>(&args.servers).map_err(|e| anyhow::anyhow!("--servers: {e}"))?;
    let (clients, sizes) = (list("clients", &args.clients)?, list("sizes", &args.sizes)?);
    let postgres = args
        .database_url
        .as_deref()
        .is_some_and(|u| u.starts_with("postgres"));
    if !postgres && servers.iter().any(|&n| n > 1) {
        anyhow::bail!("more than one server needs --database-url postgres://...");
    }
    if args.uneven.is_some() && !postgres {
        anyhow::bail!("--uneven runs two servers or more: it needs --database-url postgres://...");
    }
    let processes = usize::from(args.processes);
    if let Some(&few) = clients.iter().find(|&&n| n < 2 * processes) {
        anyhow::bail!(
            "--clients {few} over --processes {processes}: each process needs at least 2 clients"
        );
    }
    let load = match args.duration {
        Some(s) => Load::Duration(Duration::from_secs(s)),
        None => Load::Messages(args.messages),
    };
    let mut combinations = Vec::new();
    let mut add = |servers, clients, size, strategy, noise| {
        let tag = format!("b{}x{}", std::process::id(), combinations.len());
        combinations.push(Combination {
            servers,
            clients,
            size,
            strategy,
            load,
            rate: args.rate,
            database_url: args.database_url.clone(),
            processes,
            noise,
            tag,
        });
    };
    for &servers in &servers {
        for &clients in &clients {
            for &size in &sizes {
                for &strategy in &strategies {
                    add(servers, clients, size, strategy, None);
                }
            }
        }
    }
    if let Some(busy) = args.uneven {
        let servers = servers.iter().copied().max().unwrap_or(2).max(2);
        let clients = clients.iter().copied().max().unwrap_or(2);
        let size = if sizes.contains(&1024) {
            1024
        } else {
            sizes[0]
        };
        for &strategy in &strategies {
            add(servers, clients, size, strategy, Some(busy));
        }
    }
    Ok(Plan {
        combinations,
        sizes,
    })
}

async fn run(args: Args) -> anyhow::Result<()> {
    let Plan {
        combinations,
        sizes,
    } = plan(&args)?;
    let out = args.out.clone().unwrap_or_else(|| {
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
    let mut findings = Findings {
        command: std::env::args().collect::<Vec<_>>().join(" "),
        planned: combinations.len(),
        rate: args.rate,
        uneven_busy: args.uneven,
        versions: fastchat_bench::baseline::versions(args.database_url.as_deref()).await,
        ..Findings::default()
    };
    let stages = combinations.len()
        + usize::from(args.baseline_samples > 0)
        + usize::from(args.connections.is_some());
    let bar = Bar::new(stages as u64);
    let finished = measure_all(
        &args,
        &combinations,
        &sizes,
        &identity,
        &bar,
        &mut findings,
        &out,
    )
    .await;
    bar.0.finish_and_clear();
    fastchat_bench::write_all(&findings, &out)?;
    match finished {
        Ok(true) => eprintln!("done: {}", out.join("report.md").display()),
        Ok(false) => eprintln!(
            "interrupted: {} of {} combinations measured, written to {}",
            findings.rows.len(),
            findings.planned,
            out.display()
        ),
        Err(e) => {
            eprintln!(
                "what was measured before the failure is in {}",
                out.display()
            );
            return Err(e);
        }
    }
    Ok(())
}

/// Runs every stage, writing the outputs after each. `Ok(false)`: interrupted (Ctrl-C).
async fn measure_all(
    args: &Args,
    combinations: &[Combination],
    sizes: &[usize],
    identity: &fastchat_crypto::Identity,
    bar: &Bar,
    findings: &mut Findings,
    out: &Path,
) -> anyhow::Result<bool> {
    let database_url = args.database_url.as_deref();
    if args.baseline_samples > 0 {
        bar.0.set_prefix("baselines");
        bar.phase("loopback TCP and the raw store");
        let scratch = tempfile::tempdir().context("a temporary folder")?;
        let measured = tokio::select! {
            b = fastchat_bench::baseline::measure(sizes, database_url, scratch.path(), args.baseline_samples) => b?,
            () = fastchat_runtime::shutdown_signal() => return Ok(false),
        };
        for b in &measured {
            bar.say(&format!(
                "baseline {} {} B: p50 {:.3} ms, p99 {:.3} ms, {:.0}/s",
                b.name, b.size, b.p50_ms, b.p99_ms, b.per_s
            ));
        }
        findings.baselines = measured;
        fastchat_bench::write_all(findings, out)?;
        bar.0.inc(1);
    }
    let total = combinations.len();
    for (i, c) in combinations.iter().enumerate() {
        let what = format!(
            "{}{} server(s), {} clients, {} B, {}",
            if c.noise.is_some() { "uneven: " } else { "" },
            c.servers,
            c.clients,
            c.size,
            c.strategy.name()
        );
        bar.0.set_prefix(format!("[{}/{total}] {what}", i + 1));
        let row = tokio::select! {
            row = fastchat_bench::run_combination(c, identity, bar) => {
                row.with_context(|| format!("combination {}/{total} ({what})", i + 1))?
            }
            () = fastchat_runtime::shutdown_signal() => return Ok(false),
        };
        bar.say(&format!(
            "[{}/{total}] {what}: p50 {:.2} ms, p99 {:.2} ms, {:.0} msg/s out, {:.0} msg/s in, {} errors",
            i + 1,
            row.p50_ms,
            row.p99_ms,
            row.out_msgs_per_s,
            row.in_msgs_per_s,
            row.errors
        ));
        findings.rows.push(row);
        // Written after each combination, so an interrupted run keeps what it measured.
        fastchat_bench::write_all(findings, out)?;
        bar.0.inc(1);
    }
    if let Some(target) = args.connections {
        bar.0.set_prefix(format!("capacity, {target} connections"));
        let capacity = tokio::select! {
            c = fastchat_bench::capacity::measure(target, database_url, identity, bar) => c?,
            () = fastchat_runtime::shutdown_signal() => return Ok(false),
        };
        bar.say(&format!(
            "capacity: {} of {target} connections held, server RSS {:.0} MiB (idle {:.0} MiB)",
            capacity.connections, capacity.rss_mib, capacity.idle_rss_mib
        ));
        capacity.write_csv(&out.join("capacity.csv"))?;
        findings.capacity = Some(capacity);
        bar.0.inc(1);
    }
    Ok(true)
}
