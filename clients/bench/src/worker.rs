//! Clients spread over several processes (`--processes N`): the bench re-executes itself
//! as `fastchat-bench __clients SPEC` once per process. A worker signs its share of the
//! clients up, prints `ready`, waits for `go` on stdin, runs the timed phase and prints its
//! measurements as one line of JSON. Every pair of clients lives in one worker, so each
//! latency is timed on a single process's clock.

use std::process::{ExitCode, Stdio};
use std::time::Duration;

use anyhow::{Context, bail};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

use crate::clients::{ClientSpec, Partial, Prepared};

/// The hidden first argument that makes the bench binary a client worker.
pub const WORKER_COMMAND: &str = "__clients";

const READY: &str = "ready";
const GO: &str = "go";

/// The worker process's `main`: `spec` is a [`ClientSpec`] as JSON.
pub fn worker_main(spec: Option<String>) -> ExitCode {
    fastchat_runtime::init_logging();
    fastchat_runtime::run(async move {
        let spec: ClientSpec = serde_json::from_str(&spec.context("no client spec given")?)
            .context("a malformed client spec")?;
        let identity = fastchat_crypto::Identity::generate(fastchat_crypto::MIN_KEY_BITS)?;
        let prepared = Prepared::connect(&spec, &identity).await?;
        println!("{READY}");
        let mut stdin = BufReader::new(tokio::io::stdin()).lines();
        match stdin.next_line().await? {
            Some(line) if line == GO => {}
            other => bail!("expected {GO:?} from the bench, got {other:?}"),
        }
        let partial = prepared.run().await?;
        println!("{}", serde_json::to_string(&partial)?);
        Ok(())
    })
}

struct Worker {
    child: Child,
    stdin: ChildStdin,
    stdout: Lines<BufReader<ChildStdout>>,
    clients: usize,
}

/// Worker processes with their clients ready to send.
pub struct Workers {
    workers: Vec<Worker>,
}

impl std::fmt::Debug for Workers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Workers")
            .field("processes", &self.workers.len())
            .finish()
    }
}

/// How `clients` are shared out over `processes`: as evenly as possible.
#[must_use]
pub fn shares(clients: usize, processes: usize) -> Vec<usize> {
    let processes = processes.max(1);
    (0..processes)
        .map(|j| clients / processes + usize::from(j < clients % processes))
        .collect()
}

impl Workers {
    /// Starts `processes` workers, each with its share of the clients, and waits until
    /// every one is ready.
    ///
    /// # Errors
    /// If a worker cannot start or fails before it is ready.
    pub async fn start(spec: &ClientSpec, processes: usize) -> anyhow::Result<Workers> {
        let exe = std::env::current_exe().context("cannot find the bench's own executable")?;
        let mut workers = Vec::new();
        for (j, clients) in shares(spec.clients, processes).into_iter().enumerate() {
            let share = ClientSpec {
                clients,
                tag: format!("{}p{j}", spec.tag),
                ..spec.clone()
            };
            let mut child = Command::new(&exe)
                .arg(WORKER_COMMAND)
                .arg(serde_json::to_string(&share)?)
                .env("RUST_LOG", crate::child_log_filter())
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .kill_on_drop(true)
                .spawn()
                .with_context(|| format!("cannot start a client worker ({})", exe.display()))?;
            let stdin = child.stdin.take().context("the worker's stdin")?;
            let stdout = BufReader::new(child.stdout.take().context("the worker's stdout")?);
            workers.push(Worker {
                child,
                stdin,
                stdout: stdout.lines(),
                clients,
            });
        }
        for (j, worker) in workers.iter_mut().enumerate() {
            let line = tokio::time::timeout(Duration::from_secs(600), worker.stdout.next_line())
                .await
                .with_context(|| format!("client worker {j} was not ready within 10 minutes"))?;
            match line {
                Ok(Some(l)) if l == READY => {}
                other => {
                    let status = worker.child.wait().await.ok();
                    bail!(
                        "client worker {j} failed before it was ready ({other:?}, {status:?}); its log is above"
                    )
                }
            }
        }
        Ok(Workers { workers })
    }

    /// Tells every worker to go, and adds up what they measured.
    ///
    /// # Errors
    /// If a worker fails or answers something that is not its measurements.
    pub async fn run(mut self) -> anyhow::Result<Partial> {
        for worker in &mut self.workers {
            worker.stdin.write_all(format!("{GO}\n").as_bytes()).await?;
            worker.stdin.flush().await?;
        }
        let total: usize = self.workers.iter().map(|w| w.clients).sum();
        let mut sum = Partial::default();
        for (j, worker) in self.workers.iter_mut().enumerate() {
            let line = worker
                .stdout
                .next_line()
                .await?
                .with_context(|| format!("client worker {j} ended without its measurements"))?;
            let partial: Partial = serde_json::from_str(&line)
                .with_context(|| format!("client worker {j} answered {line:?}"))?;
            #[allow(clippy::cast_precision_loss)]
            sum.merge(&partial, worker.clients as f64, total as f64);
            let status = worker.child.wait().await?;
            if !status.success() {
                bail!("client worker {j} exited with {status}");
            }
        }
        Ok(sum)
    }
}

#[cfg(test)]
mod tests {
    use super::shares;

    #[test]
    fn clients_are_shared_out_evenly() {
        assert_eq!(shares(10, 3), vec![4, 3, 3]);
        assert_eq!(shares(1000, 4), vec![250; 4]);
        assert_eq!(shares(5, 1), vec![5]);
        assert_eq!(shares(7, 0), vec![7]);
        assert_eq!(shares(1001, 2).iter().sum::<usize>(), 1001);
    }
}
