//! Choosing a server and reconnecting: the policy half of the server link, shared by the
//! daemon and the bench.
//!
//! A [`Dialer`] holds the server list (from the balancer's `servers` or `--server` flags)
//! and a strategy: `client-round-robin` cycles through the list, `random` picks at random,
//! both never choosing the server that just failed while another remains. With a balancer
//! (`with_balancer`), its `pick` chooses, excluding and reporting the server that failed,
//! and the list is the fallback while the balancer is down. Between failed
//! attempts it waits with exponential backoff and full jitter (100 ms base, 10 s cap by
//! default), so a client facing no servers at all makes a bounded number of attempts per
//! minute and never spins. Failures are logged as a summary at most every 30 s, not a line
//! per attempt.

use std::str::FromStr;
use std::time::Duration;

use fastchat_proto::balancer::{PICK, Picked, REPORT, SERVERS, ServerStatus};
use jsonrpsee::core::client::ClientT;
use jsonrpsee::core::params::ObjectParams;
use jsonrpsee::http_client::HttpClientBuilder;
use jsonrpsee::rpc_params;
use rand::RngExt;
use tokio::time::Instant;

use crate::{Link, LinkConfig, LinkError, Pushes};

/// How the client itself chooses among known servers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientStrategy {
    ClientRoundRobin,
    Random,
}

impl FromStr for ClientStrategy {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "client-round-robin" => Ok(ClientStrategy::ClientRoundRobin),
            "random" => Ok(ClientStrategy::Random),
            other => Err(format!(
                "{other} is not a client-side strategy (client-round-robin, random)"
            )),
        }
    }
}

/// Exponential backoff with full jitter: the n-th wait is uniform in
/// `0..=min(cap, base * 2^n)`.
#[derive(Debug, Clone)]
pub struct Backoff {
    base: Duration,
    cap: Duration,
    attempt: u32,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff::new(Duration::from_millis(100), Duration::from_secs(10))
    }
}

impl Backoff {
    #[must_use]
    pub fn new(base: Duration, cap: Duration) -> Backoff {
        Backoff {
            base,
            cap,
            attempt: 0,
        }
    }

    /// The next wait; each call doubles the ceiling up to the cap.
    pub fn next_delay(&mut self) -> Duration {
        let ceiling = self
            .base
            .saturating_mul(1 << self.attempt.min(20))
            .min(self.cap);
        self.attempt = self.attempt.saturating_add(1);
        let nanos = u64::try_from(ceiling.as_nanos()).unwrap_or(u64::MAX);
        Duration::from_nanos(rand::rng().random_range(0..=nanos))
    }

    /// After a success: start again from the base.
    pub fn reset(&mut self) {
        self.attempt = 0;
    }
}

/// Picks servers from a list and connects, with backoff between failures.
#[derive(Debug)]
pub struct Dialer {
    servers: Vec<String>,
    strategy: ClientStrategy,
    template: LinkConfig,
    backoff: Backoff,
    next: usize,
    failures: u64,
    last_summary: Option<Instant>,
    /// With a balancer, its `pick` chooses (the `balancer` strategy); the list is the
    /// fallback while it cannot be reached.
    balancer: Option<String>,
    /// Server ids by address, learnt from picks, so failures can be reported and excluded.
    ids: std::collections::HashMap<String, String>,
    /// Attempts made so far (for callers' metrics and tests).
    pub attempts: u64,
}

impl Dialer {
    /// `template` supplies everything but the address (TLS, timeouts, client name).
    #[must_use]
    pub fn new(servers: Vec<String>, strategy: ClientStrategy, template: LinkConfig) -> Dialer {
        Dialer {
            servers,
            strategy,
            template,
            backoff: Backoff::default(),
            next: 0,
            failures: 0,
            last_summary: None,
            balancer: None,
            ids: std::collections::HashMap::new(),
            attempts: 0,
        }
    }

    /// Lets the balancer at `addr` choose (its `pick`, excluding a server that just failed,
    /// which is also reported); the server list is used only while it cannot be reached.
    #[must_use]
    pub fn with_balancer(mut self, addr: impl Into<String>) -> Dialer {
        self.balancer = Some(addr.into());
        self
    }

    /// The balancer's pick, or `None` if it cannot answer (no balancer, unreachable, no
    /// healthy server).
    async fn pick(&mut self, failed: Option<&str>) -> Option<String> {
        let balancer = self.balancer.clone()?;
        let client = HttpClientBuilder::default()
            .request_timeout(self.template.connect_timeout)
            .build(format!("http://{balancer}"))
            .ok()?;
        let failed_id = failed.and_then(|addr| self.ids.get(addr)).cloned();
        if let Some(id) = &failed_id {
            // Outlier detection at the balancer; best effort.
            let mut report = ObjectParams::new();
            report.insert("id", id).ok()?;
            let _ = client.request::<bool, _>(REPORT, report).await;
        }
        let mut params = ObjectParams::new();
        params
            .insert("exclude", failed_id.into_iter().collect::<Vec<_>>())
            .ok()?;
        match client.request::<Picked, _>(PICK, params).await {
            Ok(picked) => {
                if !self.servers.contains(&picked.addr) {
                    self.servers.push(picked.addr.clone());
                }
                self.ids.insert(picked.addr.clone(), picked.id);
                Some(picked.addr)
            }
            Err(e) => {
                tracing::debug!(error = %e, "balancer pick failed; using the known server list");
                None
            }
        }
    }

    /// Starts the client-side round robin at a random place in the list, so that many
    /// clients spread over the servers instead of all starting on the first (each still
    /// cycles through the list in order from there). Without it the order is the list's,
    /// which tests and "prefer the first server" set-ups rely on.
    #[must_use]
    pub fn with_random_start(mut self) -> Dialer {
        if !self.servers.is_empty() {
            self.next = rand::rng().random_range(0..self.servers.len());
        }
        self
    }

    #[must_use]
    pub fn with_backoff(mut self, backoff: Backoff) -> Dialer {
        self.backoff = backoff;
        self
    }

    /// Replaces the server list (a fresh `servers` answer from the balancer); the old list
    /// stays in use whenever the balancer cannot be asked.
    pub fn set_servers(&mut self, servers: Vec<String>) {
        if !servers.is_empty() {
            self.servers = servers;
        }
    }

    #[must_use]
    pub fn servers(&self) -> &[String] {
        &self.servers
    }

    /// Refreshes the list from the balancer's `servers` (its healthy ones). When the
    /// balancer cannot be reached the last known list stays in use, so clients go on
    /// connecting while it is down.
    ///
    /// # Errors
    /// If the balancer did not answer; the list is then unchanged.
    pub async fn refresh_from(&mut self, balancer: &str) -> Result<(), LinkError> {
        let unreachable = |e: &dyn std::fmt::Display| LinkError::Connect {
            addr: balancer.to_owned(),
            message: e.to_string(),
        };
        let client = HttpClientBuilder::default()
            .request_timeout(self.template.connect_timeout)
            .build(format!("http://{balancer}"))
            .map_err(|e| unreachable(&e))?;
        let statuses: Vec<ServerStatus> = client
            .request(SERVERS, rpc_params![])
            .await
            .map_err(|e| unreachable(&e))?;
        self.set_servers(
            statuses
                .into_iter()
                .filter(|s| s.healthy)
                .map(|s| s.addr)
                .collect(),
        );
        Ok(())
    }

    /// The server to try next, avoiding `failed` while any other is known.
    #[must_use]
    pub fn choose(&mut self, failed: Option<&str>) -> Option<String> {
        let candidates: Vec<&String> = self
            .servers
            .iter()
            .filter(|s| Some(s.as_str()) != failed)
            .collect();
        let pool = if candidates.is_empty() {
            self.servers.iter().collect()
        } else {
            candidates
        };
        if pool.is_empty() {
            return None;
        }
        let i = match self.strategy {
            ClientStrategy::ClientRoundRobin => {
                let i = self.next % pool.len();
                self.next = self.next.wrapping_add(1);
                i
            }
            ClientStrategy::Random => rand::rng().random_range(0..pool.len()),
        };
        Some(pool[i].clone())
    }

    /// Connects to a server, trying others and backing off until one answers or `give_up`
    /// passes. `failed` is the server just lost, tried last.
    ///
    /// # Errors
    /// The last connection error when `give_up` passes first.
    pub async fn connect(
        &mut self,
        failed: Option<&str>,
        give_up: Instant,
    ) -> Result<(String, Link, Pushes), LinkError> {
        let mut avoid = failed.map(str::to_owned);
        loop {
            let picked = self.pick(avoid.as_deref()).await;
            let Some(addr) = picked.or_else(|| self.choose(avoid.as_deref())) else {
                return Err(LinkError::Connect {
                    addr: String::new(),
                    message: "no servers known".into(),
                });
            };
            self.attempts += 1;
            let config = LinkConfig {
                addr: addr.clone(),
                ..self.template.clone()
            };
            let error = match Link::connect(&config).await {
                Ok((link, pushes)) => {
                    if self.failures > 0 {
                        tracing::info!(server = %addr, after = self.failures, "connected after failed attempts");
                    }
                    self.failures = 0;
                    self.backoff.reset();
                    return Ok((addr, link, pushes));
                }
                Err(e) => e,
            };
            self.failures += 1;
            let now = Instant::now();
            if self
                .last_summary
                .is_none_or(|at| now.duration_since(at) >= Duration::from_secs(30))
            {
                tracing::warn!(failures = self.failures, last = %error, "cannot reach a server; retrying with backoff");
                self.last_summary = Some(now);
            }
            let wait = self.backoff.next_delay();
            if now + wait >= give_up {
                return Err(error);
            }
            avoid = Some(addr);
            tokio::time::sleep(wait).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_ceilings_double_to_the_cap_and_reset() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_secs(10));
        for n in 0..12 {
            let ceiling = Duration::from_millis(100 * (1 << n)).min(Duration::from_secs(10));
            let d = b.next_delay();
            assert!(d <= ceiling, "attempt {n}: {d:?} > {ceiling:?}");
        }
        b.reset();
        assert!(b.next_delay() <= Duration::from_millis(100));
    }

    #[test]
    fn round_robin_cycles_and_skips_the_failed_server() {
        let servers = vec!["a".to_owned(), "b".to_owned(), "c".to_owned()];
        let mut d = Dialer::new(
            servers,
            ClientStrategy::ClientRoundRobin,
            LinkConfig::new(""),
        );
        let picks: Vec<String> = (0..6).filter_map(|_| d.choose(None)).collect();
        assert_eq!(picks, ["a", "b", "c", "a", "b", "c"]);
        for _ in 0..10 {
            assert_ne!(d.choose(Some("b")).as_deref(), Some("b"));
        }
        let mut single = Dialer::new(
            vec!["a".into()],
            ClientStrategy::Random,
            LinkConfig::new(""),
        );
        assert_eq!(
            single.choose(Some("a")).as_deref(),
            Some("a"),
            "the only server is retried"
        );
    }

    #[test]
    fn a_random_start_spreads_many_clients_and_each_still_cycles() {
        let servers = vec!["a".to_owned(), "b".to_owned(), "c".to_owned()];
        let mut first = std::collections::HashMap::<String, u32>::new();
        for _ in 0..300 {
            let mut d = Dialer::new(
                servers.clone(),
                ClientStrategy::ClientRoundRobin,
                LinkConfig::new(""),
            )
            .with_random_start();
            let picks: Vec<String> = (0..4).filter_map(|_| d.choose(None)).collect();
            let start = servers.iter().position(|s| *s == picks[0]).expect("known");
            let expected: Vec<&String> = (0..4).map(|k| &servers[(start + k) % 3]).collect();
            assert_eq!(picks.iter().collect::<Vec<_>>(), expected, "in list order");
            *first.entry(picks[0].clone()).or_default() += 1;
        }
        // 300 clients, 3 servers: each should be first for about 100 of them.
        for s in &servers {
            let n = first.get(s).copied().unwrap_or(0);
            assert!(
                n >= 50,
                "{s} was first for only {n} of 300 clients: {first:?}"
            );
        }
    }

    #[test]
    fn random_uses_every_server_and_never_the_failed_one() {
        let servers = vec!["a".to_owned(), "b".to_owned(), "c".to_owned()];
        let mut d = Dialer::new(servers, ClientStrategy::Random, LinkConfig::new(""));
        let mut seen = std::collections::BTreeMap::new();
        for _ in 0..300 {
            let s = d.choose(Some("a")).expect("a server");
            assert_ne!(s, "a");
            *seen.entry(s).or_insert(0) += 1;
        }
        assert!(seen.values().all(|&n| (100..=200).contains(&n)), "{seen:?}");
    }

    #[test]
    fn an_empty_server_list_keeps_the_last_known_one() {
        let mut d = Dialer::new(
            vec!["a".into()],
            ClientStrategy::Random,
            LinkConfig::new(""),
        );
        d.set_servers(vec![]);
        assert_eq!(d.servers(), ["a"]);
        d.set_servers(vec!["b".into()]);
        assert_eq!(d.servers(), ["b"]);
    }

    #[test]
    fn strategy_names() {
        assert_eq!("random".parse(), Ok(ClientStrategy::Random));
        assert_eq!(
            "client-round-robin".parse(),
            Ok(ClientStrategy::ClientRoundRobin)
        );
        assert!("p2c".parse::<ClientStrategy>().is_err());
    }
}
