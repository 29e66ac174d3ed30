//! Registration with a balancer: once at start (retried until it answers), then a heartbeat
//! every second with this host's recent CPU use and the live connection count. A balancer
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

/// Where to announce this server, and as what.
#[derive(Debug, Clone)]
pub struct Announce {
    /// The balancer's `host:port`.
    pub balancer: String,
    pub id: String,
    /// The address clients should use for this server.
    pub addr: String,
    pub interval: Duration,
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
    let mut system =
        sysinfo::System::new().map_err(|e| anyhow::anyhow!("cannot read CPU use: {e}"))?;
    system.refresh_cpu_usage();
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
        system.refresh_cpu_usage();
        let mut params = ObjectParams::new();
        params.insert("id", &target.id)?;
        params.insert("addr", &target.addr)?;
        let method = if registered {
            params.insert("cpu", system.global_cpu_usage())?;
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
