//! Registration with a balancer: once at start (retried until it answers), then a heartbeat
//! every second with a recent CPU use (the host's, or this process's: [`CpuMetric`]) and
//! the live connection count. A balancer
//! that is down is retried quietly: one warning when it stops answering, one line when it
//! is back, never a line per attempt.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use fastchat_proto::balancer::{HEARTBEAT, REGISTER};
use jsonrpsee::core::client::ClientT;
use jsonrpsee::core::params::ObjectParams;
use jsonrpsee::http_client::HttpClientBuilder;
use tokio::sync::oneshot;

/// Counters the server keeps for the balancer.
#[derive(Debug, Default)]
pub struct Metrics {
    connections: AtomicU64,
}

impl Metrics {
    #[must_use]
    pub fn connections(&self) -> u64 {
        self.connections.load(Ordering::Relaxed)
    }

    /// Counts a connection until the guard drops.
    pub(crate) fn connection(self: &Arc<Self>) -> ConnectionGuard {
        self.connections.fetch_add(1, Ordering::Relaxed);
        ConnectionGuard(Arc::clone(self))
    }
}

pub(crate) struct ConnectionGuard(Arc<Metrics>);

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        self.0.connections.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Which CPU use a server reports for `least-cpu`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum CpuMetric {
    /// The whole host's (one server per host: it also sees other load on the host).
    #[default]
    Host,
    /// This server process's share of the host's CPUs (several servers on one host).
    Process,
}

impl std::str::FromStr for CpuMetric {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "host" => Ok(CpuMetric::Host),
            "process" => Ok(CpuMetric::Process),
            other => Err(format!("{other} is not a CPU metric (host, process)")),
        }
    }
}

/// Reads recent CPU use: each call covers the time since the previous one.
struct CpuSampler {
    system: sysinfo::System,
    metric: CpuMetric,
    pid: Option<sysinfo::Pid>,
}

impl CpuSampler {
    fn new(metric: CpuMetric) -> anyhow::Result<CpuSampler> {
        let system =
            sysinfo::System::new().map_err(|e| anyhow::anyhow!("cannot read CPU use: {e}"))?;
        let mut sampler = CpuSampler {
            system,
            metric,
            pid: sysinfo::get_current_pid().ok(),
        };
        sampler.sample();
        Ok(sampler)
    }

    /// Percent of the host's CPU capacity, 0 to 100.
    fn sample(&mut self) -> f32 {
        self.system.refresh_cpu_usage();
        match (self.metric, self.pid) {
            (CpuMetric::Process, Some(pid)) => {
                self.system.refresh_processes_specifics(
                    sysinfo::ProcessesToUpdate::Some(&[pid]),
                    false,
                    sysinfo::ProcessRefreshKind::nothing().with_cpu(),
                );
                // A process's use is in percent of one CPU.
                let cpus = self.system.cpus().len().max(1);
                #[allow(clippy::cast_precision_loss)]
                let share = self
                    .system
                    .process(pid)
                    .map_or(0.0, |p| p.cpu_usage() / cpus as f32);
                share.clamp(0.0, 100.0)
            }
            _ => self.system.global_cpu_usage(),
        }
    }
}

/// Where to announce this server, and as what.
#[derive(Debug, Clone)]
pub struct Announce {
    /// The balancer's `host:port`.
    pub balancer: String,
    pub id: String,
    /// The address clients should use for this server.
    pub addr: String,
    pub interval: Duration,
    pub cpu: CpuMetric,
}

/// Registers and heartbeats until `stop` fires (or its sender is dropped).
///
/// # Errors
/// If the balancer address is not usable as a URL.
pub async fn announce(
    target: Announce,
    metrics: Arc<Metrics>,
    mut stop: oneshot::Receiver<()>,
) -> anyhow::Result<()> {
    let client = HttpClientBuilder::default()
        .request_timeout(target.interval.max(Duration::from_millis(200)))
        .build(format!("http://{}", target.balancer))?;
    let mut cpu = CpuSampler::new(target.cpu)?;
    let mut ticker = tokio::time::interval(target.interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut registered = false;
    let mut reachable = true;
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = &mut stop => return Ok(()),
        }
        // CPU use since the previous tick: a recent sample, not a lifetime average.
        let used = cpu.sample();
        let mut params = ObjectParams::new();
        params.insert("id", &target.id)?;
        params.insert("addr", &target.addr)?;
        let method = if registered {
            params.insert("cpu", used)?;
            params.insert("connections", metrics.connections())?;
            HEARTBEAT
        } else {
            REGISTER
        };
        match client.request::<bool, _>(method, params).await {
            Ok(_) => {
                if !reachable || !registered {
                    tracing::info!(balancer = %target.balancer, "announced to the balancer");
                }
                registered = true;
                reachable = true;
            }
            Err(e) => {
                if reachable {
                    tracing::warn!(balancer = %target.balancer, error = %e, "balancer unreachable; retrying every {:?}", target.interval);
                }
                reachable = false;
            }
        }
    }
}
