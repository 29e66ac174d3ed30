//! One combination: a fresh fleet (balancer and server processes), simulated clients in
//! this process or spread over worker processes, a timed phase, a row.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use fastchat_crypto::Identity;
use fastchat_link::policy::ClientStrategy;
use serde::{Deserialize, Serialize};

use crate::clients::{ClientSpec, Partial, Prepared};
use crate::fleet::{Fleet, FleetPlan};
use crate::noise::Noise;
use crate::worker::Workers;
use crate::{Strategy, ms, per_second};

/// How much each client sends.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum Load {
    /// This many messages each.
    Messages(u32),
    /// For this long (from a pool of at most [`POOL`] pre-sealed messages each).
    Duration(Duration),
}

/// Messages sealed ahead for a timed run.
pub const POOL: u32 = 2_000;

/// One point of the matrix.
#[derive(Debug, Clone)]
pub struct Combination {
    pub servers: u16,
    pub clients: usize,
    pub size: usize,
    pub strategy: Strategy,
    pub load: Load,
    /// Messages per second each client sends; `None`: as fast as acks allow.
    pub rate: Option<f64>,
    /// `None`: SQLite in a temporary folder (one server only).
    pub database_url: Option<String>,
    /// Client processes (1: the clients run in the bench's own process).
    pub processes: usize,
    /// `Some(n)`: the uneven scenario, with `n` extra clients kept busy on server 1.
    pub noise: Option<usize>,
    /// Makes user and group names unique when several combinations share a database.
    pub tag: String,
}

/// What a combination measured.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// `even`, or `uneven` (one server kept busy by extra clients connected straight to it).
    pub scenario: String,
    /// `sqlite` or `postgres`.
    pub database: String,
    pub servers: u16,
    pub clients: usize,
    pub size: usize,
    pub strategy: String,
    /// Client processes the clients were spread over.
    pub processes: usize,
    /// How many clients each server had, in server order, e.g. `50/50`: where the strategy
    /// put them.
    pub clients_per_server: String,
    /// Messages delivered to their recipient.
    pub messages: u64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    pub out_msgs_per_s: f64,
    pub in_msgs_per_s: f64,
    pub out_bytes_per_s: f64,
    pub in_bytes_per_s: f64,
    /// Sends refused or failed, plus messages never delivered.
    pub errors: u64,
    /// Sealing one message (Fernet + RSA-PSS), before the timed phase.
    pub seal_ms: f64,
    /// Verifying and opening one message, on a sample after it.
    pub open_ms: f64,
}

/// What happens during a combination, for a progress display.
pub trait Progress: Send + Sync {
    /// A new phase began ("signing up 1000 clients", "sending", ...).
    fn phase(&self, what: &str);
}

impl Progress for () {
    fn phase(&self, _: &str) {}
}

/// Runs one combination on a fleet of its own.
///
/// # Errors
/// If the fleet cannot start or the clients cannot sign up.
pub async fn run_combination(
    c: &Combination,
    identity: &Identity,
    progress: &dyn Progress,
) -> anyhow::Result<Row> {
    if c.clients < 2 * c.processes.max(1) {
        bail!(
            "{} clients cannot be spread over {} processes: each needs at least 2",
            c.clients,
            c.processes
        );
    }
    let scratch = tempfile::tempdir().context("a temporary folder")?;
    let database_url = match (&c.database_url, c.servers) {
        (Some(url), _) => url.clone(),
        (None, 1) => format!("sqlite://{}", scratch.path().join("server.db").display()),
        (None, n) => bail!("{n} servers must share a database: add --database-url postgres://..."),
    };
    let balancer_strategy = match c.strategy {
        Strategy::Balancer(s) => s,
        Strategy::Client(_) => fastchat_balancer::Strategy::RoundRobin,
    };
    progress.phase(&format!("starting {} server(s)", c.servers));
    let fleet = Fleet::start(&FleetPlan {
        servers: c.servers,
        database_url: database_url.clone(),
        strategy: balancer_strategy,
        max_connections: 10_000.max(c.clients + c.noise.unwrap_or(0) + 64),
    })
    .await?;
    let addrs = fleet.addrs();
    let result = async {
        fleet.wait_healthy(Duration::from_secs(30)).await?;
        let noise = match c.noise {
            Some(n) => Some(start_noise(c, n, identity, &fleet, progress).await?),
            None => None,
        };
        let measured = measure(c, identity, &fleet, progress).await;
        if let Some(noise) = noise {
            noise.stop().await;
        }
        measured
    }
    .await;
    fleet.stop().await;
    let partial = result?;
    Ok(row(c, &database_url, &addrs, &partial))
}

/// The uneven scenario: `n` clients connected straight to server 1 keep it busy, and the
/// measured clients connect only once the balancer has seen server 1 the busier.
async fn start_noise(
    c: &Combination,
    n: usize,
    identity: &Identity,
    fleet: &Fleet,
    progress: &dyn Progress,
) -> anyhow::Result<Noise> {
    let addrs = fleet.addrs();
    let busy = addrs.first().context("a fleet without servers")?;
    progress.phase(&format!("loading server-1 with {n} busy clients"));
    let noise = Noise::start(busy, n, c.size, identity, &format!("{}n", c.tag)).await?;
    // `least-cpu` can only avoid what the heartbeats have shown it.
    let shown = fleet
        .wait_for(Duration::from_secs(20), "server-1 the busiest", |s| {
            let (first, rest) = match s.iter().position(|s| s.id == "server-1") {
                Some(i) => (s[i].cpu, s.iter().filter(|x| x.id != "server-1")),
                None => return false,
            };
            rest.map(|x| x.cpu).all(|cpu| first > cpu + 5.0)
        })
        .await;
    if let Err(e) = shown {
        tracing::warn!(error = %e, "the busy server's CPU did not stand out; measuring anyway");
    }
    Ok(noise)
}

async fn measure(
    c: &Combination,
    identity: &Identity,
    fleet: &Fleet,
    progress: &dyn Progress,
) -> anyhow::Result<Partial> {
    let spec = ClientSpec {
        servers: fleet.addrs(),
        balancer: fleet.balancer.addr.to_string(),
        strategy: c.strategy.name(),
        clients: c.clients,
        size: c.size,
        load: c.load,
        rate: c.rate,
        tag: c.tag.clone(),
    };
    if c.processes <= 1 {
        progress.phase(&format!("signing up {} clients", c.clients));
        let prepared = Prepared::connect(&spec, identity).await?;
        progress.phase("sending");
        return prepared.run().await;
    }
    progress.phase(&format!(
        "signing up {} clients in {} processes",
        c.clients, c.processes
    ));
    let workers = Workers::start(&spec, c.processes).await?;
    progress.phase("sending");
    workers.run().await
}

fn row(c: &Combination, database_url: &str, addrs: &[String], p: &Partial) -> Row {
    let h = p.histogram();
    Row {
        scenario: if c.noise.is_some() { "uneven" } else { "even" }.into(),
        database: if database_url.starts_with("postgres") {
            "postgres"
        } else {
            "sqlite"
        }
        .into(),
        servers: c.servers,
        clients: c.clients,
        size: c.size,
        strategy: c.strategy.name(),
        processes: c.processes.max(1),
        clients_per_server: addrs
            .iter()
            .map(|a| p.placement.get(a).copied().unwrap_or(0).to_string())
            .collect::<Vec<_>>()
            .join("/"),
        messages: p.delivered,
        p50_ms: ms(h.value_at_quantile(0.5)),
        p90_ms: ms(h.value_at_quantile(0.9)),
        p99_ms: ms(h.value_at_quantile(0.99)),
        max_ms: ms(h.max()),
        out_msgs_per_s: per_second(p.sent, p.sending_s),
        in_msgs_per_s: per_second(p.delivered, p.receiving_s),
        out_bytes_per_s: per_second(p.sent_bytes, p.sending_s),
        in_bytes_per_s: per_second(p.delivered_bytes, p.receiving_s),
        errors: p.errors + p.sent.saturating_sub(p.delivered),
        seal_ms: p.seal_ms,
        open_ms: p.open_ms,
    }
}

/// The client-side strategy a named strategy stands for (balancer strategies connect
/// through the balancer).
pub(crate) fn dial_strategy(name: &str) -> anyhow::Result<Strategy> {
    name.parse::<Strategy>().map_err(anyhow::Error::msg)
}

/// The default client strategy when a balancer chooses.
pub(crate) const VIA_BALANCER: ClientStrategy = ClientStrategy::ClientRoundRobin;

/// Waits, up to `patience`, until `done` holds, checking every few milliseconds.
pub(crate) async fn wait_until(patience: Duration, done: impl Fn() -> bool) -> bool {
    let deadline = Instant::now() + patience;
    while !done() {
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    true
}
