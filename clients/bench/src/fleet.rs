//! The system under test: a balancer in the bench's process and N chat servers, each a
//! process of its own (the bench re-executes itself as `fastchat-bench __server ARGS`, which
//! runs the very code of `fastchat-server`). Separate processes make each server's CPU use
//! its own, so `least-cpu` sees real differences, and let the bench read a server's memory.

use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, bail};
use fastchat_balancer::{Balancer, Strategy};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// The hidden first argument that makes the bench binary a chat server.
pub const SERVER_COMMAND: &str = "__server";

/// Runs a chat server with `fastchat-server`'s arguments (`args` without the program name),
/// until SIGINT/SIGTERM.
pub fn serve_main(args: impl Iterator<Item = String>) -> std::process::ExitCode {
    use clap::Parser;
    let args = fastchat_server::cli::Args::parse_from(
        std::iter::once("fastchat-server".to_owned()).chain(args),
    );
    fastchat_runtime::init_logging();
    fastchat_runtime::run(fastchat_server::cli::serve(
        args,
        fastchat_runtime::shutdown_signal(),
    ))
}

/// One server process.
#[derive(Debug)]
struct ServerProcess {
    id: String,
    addr: String,
    child: Child,
}

/// A running balancer and its server processes. Dropping it kills the servers.
#[derive(Debug)]
pub struct Fleet {
    pub balancer: Balancer,
    servers: Vec<ServerProcess>,
}

/// What a fleet is made of.
#[derive(Debug, Clone)]
pub struct FleetPlan {
    pub servers: u16,
    /// `sqlite://PATH` (one server) or `postgres://...`.
    pub database_url: String,
    pub strategy: Strategy,
    /// Connections each server accepts (`--max-connections`).
    pub max_connections: usize,
}

impl Fleet {
    /// Starts the balancer, then each server in turn (the first migrates the database),
    /// each registered with the balancer and reporting its own process's CPU use.
    ///
    /// # Errors
    /// If the balancer cannot bind or a server does not start.
    pub async fn start(plan: &FleetPlan) -> anyhow::Result<Fleet> {
        let config = fastchat_balancer::Config {
            strategy: plan.strategy,
            ..Default::default()
        };
        let balancer = Balancer::start("127.0.0.1:0", config)
            .await
            .map_err(|e| anyhow::anyhow!("cannot start the balancer: {e}"))?;
        let exe = std::env::current_exe().context("cannot find the bench's own executable")?;
        let mut fleet = Fleet {
            balancer,
            servers: Vec::new(),
        };
        for i in 0..plan.servers {
            let id = format!("server-{}", i + 1);
            let mut child = Command::new(&exe)
                .arg(SERVER_COMMAND)
                .args([
                    "--listen",
                    "127.0.0.1:0",
                    "--id",
                    &id,
                    "--cpu-metric",
                    "process",
                ])
                .args(["--database-url", &plan.database_url])
                .args(["--balancer", &fleet.balancer.addr.to_string()])
                .args(["--max-connections", &plan.max_connections.to_string()])
                .env("RUST_LOG", crate::child_log_filter())
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .kill_on_drop(true)
                .spawn()
                .with_context(|| format!("cannot start {id} ({})", exe.display()))?;
            let stdout = child.stdout.take().context("the server's stdout")?;
            let mut lines = BufReader::new(stdout).lines();
            let listening = tokio::time::timeout(Duration::from_secs(60), lines.next_line()).await;
            let addr = match listening {
                Ok(Ok(Some(line))) => match line.strip_prefix("listening on ") {
                    Some(addr) => addr.to_owned(),
                    None => bail!("{id} said {line:?} instead of its address"),
                },
                Ok(Ok(None) | Err(_)) => {
                    let status = child.wait().await.ok();
                    bail!("{id} exited before listening ({status:?}); its log is above")
                }
                Err(_) => bail!("{id} did not listen within 60 s"),
            };
            // Keep draining its stdout so that it never blocks on a full pipe.
            tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
            fleet.servers.push(ServerProcess { id, addr, child });
        }
        Ok(fleet)
    }

    /// The servers' addresses, in order.
    #[must_use]
    pub fn addrs(&self) -> Vec<String> {
        self.servers.iter().map(|s| s.addr.clone()).collect()
    }

    /// The process id of server `i` (0-based).
    #[must_use]
    pub fn pid(&self, i: usize) -> Option<u32> {
        self.servers.get(i).and_then(|s| s.child.id())
    }

    /// Waits until the balancer sees every server healthy.
    ///
    /// # Errors
    /// If that takes longer than `patience`.
    pub async fn wait_healthy(&self, patience: Duration) -> anyhow::Result<()> {
        self.wait_for(patience, "every server healthy", |statuses| {
            statuses.iter().filter(|s| s.healthy).count() == self.servers.len()
        })
        .await
    }

    /// Waits until `condition` holds for the balancer's view of the servers.
    ///
    /// # Errors
    /// If that takes longer than `patience`.
    pub async fn wait_for(
        &self,
        patience: Duration,
        what: &str,
        condition: impl Fn(&[fastchat_proto::balancer::ServerStatus]) -> bool,
    ) -> anyhow::Result<()> {
        let deadline = tokio::time::Instant::now() + patience;
        loop {
            if condition(&self.balancer.statuses()) {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                bail!("the balancer did not see {what} within {patience:?}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Stops each server (SIGTERM: it answers what is queued and exits), then the balancer.
    pub async fn stop(mut self) {
        for server in &mut self.servers {
            terminate(&mut server.child);
        }
        for server in &mut self.servers {
            match tokio::time::timeout(Duration::from_secs(10), server.child.wait()).await {
                Ok(Ok(status)) if status.success() => {}
                Ok(Ok(status)) => tracing::warn!(id = %server.id, %status, "a server exited badly"),
                Ok(Err(e)) => tracing::warn!(id = %server.id, error = %e, "a server is lost"),
                Err(_) => {
                    tracing::warn!(id = %server.id, "a server ignored SIGTERM for 10 s");
                    let _ = server.child.kill().await;
                }
            }
        }
        self.balancer.stop().await;
    }
}

#[cfg(unix)]
fn terminate(child: &mut Child) {
    use rustix::process::{Pid, Signal, kill_process};
    if let Some(pid) = child
        .id()
        .and_then(|id| i32::try_from(id).ok())
        .and_then(Pid::from_raw)
    {
        let _ = kill_process(pid, Signal::TERM);
    }
}

#[cfg(not(unix))]
fn terminate(child: &mut Child) {
    let _ = child.start_kill();
}

/// The resident memory of a process, in MiB.
#[must_use]
pub fn rss_mib(pid: u32) -> Option<f64> {
    let pid = sysinfo::Pid::from_u32(pid);
    let mut system = sysinfo::System::new().ok()?;
    system.refresh_processes_specifics(
        sysinfo::ProcessesToUpdate::Some(&[pid]),
        true,
        sysinfo::ProcessRefreshKind::nothing().with_memory(),
    );
    #[allow(clippy::cast_precision_loss)]
    system
        .process(pid)
        .map(|p| p.memory() as f64 / (1024.0 * 1024.0))
}
