//! How many idle, logged-in connections one server holds, and at what memory cost.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use bytes::Bytes;
use fastchat_link::{Link, LinkConfig, Pushes};
use fastchat_proto::{Resume, Signup};
use serde::{Deserialize, Serialize};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::fleet::{Fleet, FleetPlan, rss_mib};
use crate::run::Progress;

/// Connections held by one server process, and its resident memory.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Capacity {
    /// Connections asked for.
    pub target: u64,
    /// Connections open and logged in at the end.
    pub connections: u64,
    /// The server's resident memory before the connections, MiB.
    pub idle_rss_mib: f64,
    /// With all of them open, MiB.
    pub rss_mib: f64,
    /// Connections refused or dropped.
    pub errors: u64,
    /// Seconds it took to open them all.
    pub seconds: f64,
}

impl Capacity {
    /// Writes `capacity.csv`: a header and one row.
    ///
    /// # Errors
    /// If the file cannot be written.
    pub fn write_csv(&self, path: &std::path::Path) -> anyhow::Result<()> {
        let text = format!(
            "target,connections,idle_rss_mib,rss_mib,errors,seconds\n{},{},{:.1},{:.1},{},{:.2}\n",
            self.target,
            self.connections,
            self.idle_rss_mib,
            self.rss_mib,
            self.errors,
            self.seconds
        );
        std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))
    }
}

/// Connections being opened at once.
const OPENING_AT_ONCE: usize = 256;

/// Opens `target` connections to one server process, each logged in (one account, whose
/// session token every connection resumes: an argon2id hash per connection would measure
/// sign-up, not holding connections), and reads the server's resident memory.
///
/// # Errors
/// If the server cannot start or the first account cannot sign up.
pub async fn measure(
    target: u64,
    database_url: Option<&str>,
    identity: &fastchat_crypto::Identity,
    progress: &dyn Progress,
) -> anyhow::Result<Capacity> {
    let scratch = tempfile::tempdir().context("a temporary folder")?;
    let database_url = database_url.map_or_else(
        || format!("sqlite://{}", scratch.path().join("capacity.db").display()),
        str::to_owned,
    );
    progress.phase("starting a server for the capacity run");
    let fleet = Fleet::start(&FleetPlan {
        servers: 1,
        database_url,
        strategy: fastchat_balancer::Strategy::RoundRobin,
        max_connections: usize::try_from(target)
            .unwrap_or(usize::MAX)
            .saturating_add(16),
    })
    .await?;
    let result = hold(target, &fleet, identity, progress).await;
    fleet.stop().await;
    result
}

async fn hold(
    target: u64,
    fleet: &Fleet,
    identity: &fastchat_crypto::Identity,
    progress: &dyn Progress,
) -> anyhow::Result<Capacity> {
    fleet.wait_healthy(Duration::from_secs(30)).await?;
    let addr = fleet.addrs().into_iter().next().context("no server")?;
    let pid = fleet.pid(0).context("the server's process id")?;
    let idle_rss_mib = rss_mib(pid).context("cannot read the server's memory")?;
    let (first, _pushes) = Link::connect(&LinkConfig::new(&addr)).await?;
    let session = first
        .request(Signup {
            username: format!("cap{}", std::process::id()),
            password: "bench password".into(),
            public_key: Bytes::copy_from_slice(identity.public().der()),
        })
        .await?;
    first.close();

    progress.phase(&format!("opening {target} connections"));
    let started = Instant::now();
    let errors = Arc::new(AtomicU64::new(0));
    let permits = Arc::new(Semaphore::new(OPENING_AT_ONCE));
    let mut joins: JoinSet<Option<(Link, Pushes)>> = JoinSet::new();
    for _ in 0..target {
        let (addr, token, permits, errors) = (
            addr.clone(),
            session.token.clone(),
            Arc::clone(&permits),
            Arc::clone(&errors),
        );
        joins.spawn(async move {
            let _permit = permits.acquire_owned().await.ok()?;
            let opened = async {
                let (link, pushes) = Link::connect(&LinkConfig::new(addr)).await?;
                link.request(Resume { token }).await?;
                anyhow::Ok((link, pushes))
            }
            .await;
            match opened {
                Ok(held) => Some(held),
                Err(e) => {
                    if errors.fetch_add(1, Ordering::Relaxed) == 0 {
                        tracing::warn!(error = %e, "a connection failed (only the first is logged)");
                    }
                    None
                }
            }
        });
    }
    let mut held = Vec::new();
    while let Some(joined) = joins.join_next().await {
        if let Ok(Some(link)) = joined {
            held.push(link);
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    // The server's own count, as its heartbeat tells the balancer.
    let want = u32::try_from(held.len()).unwrap_or(u32::MAX);
    let counted = fleet
        .wait_for(Duration::from_secs(10), "every connection counted", |s| {
            s.iter().any(|s| s.connections >= want)
        })
        .await;
    if let Err(e) = counted {
        tracing::warn!(error = %e, "the server's connection count lags");
    }
    let rss_mib = rss_mib(pid).context("cannot read the server's memory")?;
    let connections = held.iter().filter(|(link, _)| !link.is_closed()).count() as u64;
    progress.phase("closing the connections");
    for (link, _) in held {
        link.close();
    }
    Ok(Capacity {
        target,
        connections,
        idle_rss_mib,
        rss_mib,
        errors: errors.load(Ordering::Relaxed) + (target - connections.min(target)),
        seconds,
    })
}
