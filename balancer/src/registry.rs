//! The balancer's view of the servers, and the strategies that pick among them. Pure state:
//! time comes in as an argument, so every rule is testable without waiting.
//!
//! A server is healthy when all of these hold:
//! - its probes pass: it turns unhealthy after `fall` failed probes in a row and healthy
//!   again after `rise` passes in a row (as HAProxy's checks do);
//! - if it sends heartbeats, the last one is at most `heartbeat_timeout` old (three missed);
//! - it is not ejected: each client report of a failure ejects it for a time that doubles
//!   with every repeat (as Envoy's outlier detection does), up to a cap.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;
use std::time::{Duration, Instant};

use fastchat_proto::balancer::{Picked, ServerStatus};
use rand::RngExt;

/// How the balancer picks a server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strategy {
    /// The next healthy server in turn.
    RoundRobin,
    /// The healthy server with the lowest recent CPU use.
    LeastCpu,
    /// The healthy server with the fewest live connections.
    LeastConnections,
    /// Two random healthy servers; the less loaded of the two.
    P2c,
}

impl Strategy {
    pub const NAMES: [&'static str; 4] = ["round-robin", "least-cpu", "least-connections", "p2c"];
}

impl FromStr for Strategy {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "round-robin" => Ok(Strategy::RoundRobin),
            "least-cpu" => Ok(Strategy::LeastCpu),
            "least-connections" => Ok(Strategy::LeastConnections),
            "p2c" => Ok(Strategy::P2c),
            "client-round-robin" | "random" => Err(format!(
                "{s} is chosen by the daemon, not the balancer; balancer strategies: {}",
                Strategy::NAMES.join(", ")
            )),
            other => Err(format!(
                "unknown strategy {other}; choose one of {}",
                Strategy::NAMES.join(", ")
            )),
        }
    }
}

impl fmt::Display for Strategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Strategy::RoundRobin => "round-robin",
            Strategy::LeastCpu => "least-cpu",
            Strategy::LeastConnections => "least-connections",
            Strategy::P2c => "p2c",
        })
    }
}

/// The health-check rules.
#[derive(Debug, Clone, Copy)]
pub struct Health {
    pub rise: u32,
    pub fall: u32,
    pub heartbeat_timeout: Duration,
    pub eject_base: Duration,
    pub eject_max: Duration,
}

impl Default for Health {
    fn default() -> Self {
        Health {
            rise: 2,
            fall: 3,
            heartbeat_timeout: Duration::from_secs(3),
            eject_base: Duration::from_secs(5),
            eject_max: Duration::from_secs(300),
        }
    }
}

#[derive(Debug, Clone)]
struct Server {
    addr: String,
    cpu: f32,
    connections: u32,
    /// Picks since the last heartbeat: connections on their way, so that picks between
    /// heartbeats spread out instead of piling onto one server.
    pending: u32,
    last_heartbeat: Option<Instant>,
    probes_up: bool,
    /// Whether it was ever healthy: a new server comes up on its first passed probe.
    ever_up: bool,
    streak: u32,
    ejections: u32,
    ejected_until: Option<Instant>,
}

impl Server {
    fn load(&self) -> u32 {
        self.connections + self.pending
    }

    fn healthy(&self, now: Instant, health: &Health) -> bool {
        let fresh = self
            .last_heartbeat
            .is_none_or(|at| now.duration_since(at) <= health.heartbeat_timeout);
        let ejected = self.ejected_until.is_some_and(|until| now < until);
        self.probes_up && fresh && !ejected
    }
}

#[derive(Debug)]
pub struct Registry {
    strategy: Strategy,
    health: Health,
    servers: BTreeMap<String, Server>,
    next: usize,
}

impl Registry {
    #[must_use]
    pub fn new(strategy: Strategy, health: Health) -> Registry {
        Registry {
            strategy,
            health,
            servers: BTreeMap::new(),
            next: 0,
        }
    }

    #[must_use]
    pub fn strategy(&self) -> Strategy {
        self.strategy
    }

    /// A server from `--server`: unhealthy until its first probe passes.
    pub fn add_static(&mut self, id: &str, addr: &str) {
        self.upsert(id, addr, false);
    }

    /// A server that registered itself: it is up, it just said so.
    pub fn register(&mut self, id: &str, addr: &str, now: Instant) {
        self.upsert(id, addr, true);
        if let Some(server) = self.servers.get_mut(id) {
            server.last_heartbeat = Some(now);
        }
    }

    fn upsert(&mut self, id: &str, addr: &str, up: bool) {
        let server = self.servers.entry(id.to_owned()).or_insert_with(|| Server {
            addr: addr.to_owned(),
            cpu: 0.0,
            connections: 0,
            pending: 0,
            last_heartbeat: None,
            probes_up: up,
            ever_up: up,
            streak: 0,
            ejections: 0,
            ejected_until: None,
        });
        if server.addr != addr {
            // Same id at a new address: a restarted server. Its old health says nothing.
            server.addr = addr.to_owned();
            server.probes_up = up;
            server.streak = 0;
        }
    }

    pub fn heartbeat(&mut self, id: &str, addr: &str, cpu: f32, connections: u32, now: Instant) {
        self.register(id, addr, now);
        if let Some(server) = self.servers.get_mut(id) {
            server.cpu = cpu.clamp(0.0, 100.0);
            server.connections = connections;
            server.pending = 0;
        }
    }

    /// The addresses to probe.
    #[must_use]
    pub fn targets(&self) -> Vec<(String, String)> {
        self.servers
            .iter()
            .map(|(id, s)| (id.clone(), s.addr.clone()))
            .collect()
    }

    /// Records a probe of `id` at `addr` (ignored if the server has moved meanwhile).
    pub fn probed(&mut self, id: &str, addr: &str, passed: bool) {
        let Some(server) = self.servers.get_mut(id) else {
            return;
        };
        if server.addr != addr {
            return;
        }
        if passed == server.probes_up {
            server.streak = 0;
            return;
        }
        server.streak += 1;
        let needed = if passed {
            self.health.rise
        } else {
            self.health.fall
        };
        if server.streak >= needed || (passed && !server.ever_up) {
            server.probes_up = passed;
            server.ever_up |= passed;
            server.streak = 0;
            tracing::info!(server = id, healthy = passed, "health changed");
        }
    }

    /// A client could not use `id`: eject it for a time that doubles with each report.
    pub fn report_failure(&mut self, id: &str, now: Instant) {
        let Some(server) = self.servers.get_mut(id) else {
            return;
        };
        if server.ejected_until.is_some_and(|until| now < until) {
            return; // Already out; many clients report the same outage.
        }
        let factor = 1u32 << server.ejections.min(16);
        let time = (self.health.eject_base * factor).min(self.health.eject_max);
        server.ejections += 1;
        server.ejected_until = Some(now + time);
        tracing::warn!(
            server = id,
            seconds = time.as_secs(),
            "ejected after a client report"
        );
    }

    /// Picks a healthy server not in `exclude`, counting the pick as a pending connection.
    pub fn pick(&mut self, exclude: &[String], now: Instant) -> Option<Picked> {
        let health = self.health;
        let candidates: Vec<(&str, &Server)> = self
            .servers
            .iter()
            .filter(|(id, s)| s.healthy(now, &health) && !exclude.contains(id))
            .map(|(id, s)| (id.as_str(), s))
            .collect();
        if candidates.is_empty() {
            return None;
        }
        let chosen = match self.strategy {
            Strategy::RoundRobin => candidates[self.next % candidates.len()].0,
            Strategy::LeastConnections => {
                candidates
                    .iter()
                    .min_by_key(|(id, s)| (s.load(), *id))
                    .expect("non-empty")
                    .0
            }
            Strategy::LeastCpu => {
                candidates
                    .iter()
                    .min_by(|(a, sa), (b, sb)| {
                        sa.cpu
                            .total_cmp(&sb.cpu)
                            .then(sa.load().cmp(&sb.load()))
                            .then(a.cmp(b))
                    })
                    .expect("non-empty")
                    .0
            }
            Strategy::P2c => {
                let mut rng = rand::rng();
                let a = candidates[rng.random_range(0..candidates.len())];
                let b = candidates[rng.random_range(0..candidates.len())];
                if b.1.load() < a.1.load() { b.0 } else { a.0 }
            }
        }
        .to_owned();
        if self.strategy == Strategy::RoundRobin {
            self.next = self.next.wrapping_add(1);
        }
        let server = self.servers.get_mut(&chosen).expect("chosen from the map");
        server.pending += 1;
        Some(Picked {
            id: chosen,
            addr: server.addr.clone(),
        })
    }

    #[must_use]
    pub fn statuses(&self, now: Instant) -> Vec<ServerStatus> {
        self.servers
            .iter()
            .map(|(id, s)| ServerStatus {
                id: id.clone(),
                addr: s.addr.clone(),
                healthy: s.healthy(now, &self.health),
                cpu: s.cpu,
                connections: s.load(),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn registry(strategy: Strategy) -> (Registry, Instant) {
        let now = Instant::now();
        let mut r = Registry::new(strategy, Health::default());
        for i in 1..=3 {
            r.register(&format!("s{i}"), &format!("127.0.0.1:{i}"), now);
        }
        (r, now)
    }

    fn spread(r: &mut Registry, n: usize, now: Instant) -> BTreeMap<String, usize> {
        let mut counts = BTreeMap::new();
        for _ in 0..n {
            *counts
                .entry(r.pick(&[], now).expect("a server").id)
                .or_default() += 1;
        }
        counts
    }

    #[test]
    fn round_robin_is_exactly_even() {
        let (mut r, now) = registry(Strategy::RoundRobin);
        let counts = spread(&mut r, 60, now);
        assert_eq!(
            counts.values().copied().collect::<Vec<_>>(),
            vec![20, 20, 20]
        );
    }

    #[test]
    fn least_connections_stays_within_one() {
        let (mut r, now) = registry(Strategy::LeastConnections);
        r.heartbeat("s1", "127.0.0.1:1", 0.0, 7, now);
        let counts = spread(&mut r, 60, now);
        // s1 starts with 7: the others catch up first, then all grow together.
        let loads: Vec<u32> = r.statuses(now).iter().map(|s| s.connections).collect();
        let (min, max) = (loads.iter().min().copied(), loads.iter().max().copied());
        assert!(
            max.zip(min).is_some_and(|(max, min)| max - min <= 1),
            "{loads:?} {counts:?}"
        );
    }

    #[test]
    fn p2c_spreads_within_tolerance() {
        let (mut r, now) = registry(Strategy::P2c);
        let counts = spread(&mut r, 60, now);
        assert_eq!(counts.len(), 3);
        assert!(
            counts.values().all(|&c| (15..=25).contains(&c)),
            "{counts:?}"
        );
    }

    #[test]
    fn least_cpu_avoids_the_busy_server() {
        let (mut r, now) = registry(Strategy::LeastCpu);
        r.heartbeat("s1", "127.0.0.1:1", 95.0, 0, now);
        r.heartbeat("s2", "127.0.0.1:2", 10.0, 0, now);
        r.heartbeat("s3", "127.0.0.1:3", 12.0, 0, now);
        let counts = spread(&mut r, 60, now);
        assert!(!counts.contains_key("s1"), "{counts:?}");
    }

    #[test]
    fn probes_fall_and_rise() {
        let now = Instant::now();
        let mut r = Registry::new(Strategy::RoundRobin, Health::default());
        r.add_static("s1", "a");
        assert!(
            r.pick(&[], now).is_none(),
            "static servers wait for a probe"
        );
        r.probed("s1", "a", true);
        assert!(r.pick(&[], now).is_some());
        r.probed("s1", "a", false);
        r.probed("s1", "a", false);
        assert!(
            r.pick(&[], now).is_some(),
            "two failures are not yet a fall"
        );
        r.probed("s1", "a", false);
        assert!(r.pick(&[], now).is_none(), "three are");
        r.probed("s1", "a", true);
        assert!(r.pick(&[], now).is_none(), "one pass is not yet a rise");
        r.probed("s1", "a", true);
        assert!(r.pick(&[], now).is_some());
    }

    #[test]
    fn missed_heartbeats_make_a_server_unhealthy() {
        let (mut r, now) = registry(Strategy::RoundRobin);
        let later = now + Duration::from_secs(4);
        r.heartbeat("s2", "127.0.0.1:2", 0.0, 0, later);
        r.heartbeat("s3", "127.0.0.1:3", 0.0, 0, later);
        let counts = spread(&mut r, 10, later);
        assert!(
            !counts.contains_key("s1"),
            "s1 missed three heartbeats: {counts:?}"
        );
        r.heartbeat("s1", "127.0.0.1:1", 0.0, 0, later);
        assert!(
            spread(&mut r, 10, later).contains_key("s1"),
            "and is back with the next"
        );
    }

    #[test]
    fn reported_servers_are_ejected_for_growing_times() {
        // Probed servers (no heartbeats), so only the ejection decides.
        let now = Instant::now();
        let mut r = Registry::new(Strategy::RoundRobin, Health::default());
        for id in ["s1", "s2", "s3"] {
            r.add_static(id, id);
            r.probed(id, id, true);
        }
        r.report_failure("s1", now);
        r.report_failure("s1", now); // the same outage, reported twice
        assert!(!spread(&mut r, 6, now).contains_key("s1"));
        let after_first = now + Duration::from_secs(6);
        assert!(
            spread(&mut r, 6, after_first).contains_key("s1"),
            "back after 5 s"
        );
        r.report_failure("s1", after_first);
        assert!(!spread(&mut r, 6, after_first + Duration::from_secs(6)).contains_key("s1"));
        let later = after_first + Duration::from_secs(11);
        assert!(
            spread(&mut r, 6, later).contains_key("s1"),
            "10 s the second time"
        );
    }

    #[test]
    fn excluded_servers_are_not_picked() {
        let (mut r, now) = registry(Strategy::RoundRobin);
        for _ in 0..10 {
            assert_ne!(r.pick(&["s2".into()], now).expect("a server").id, "s2");
        }
        assert!(
            r.pick(&["s1".into(), "s2".into(), "s3".into()], now)
                .is_none()
        );
    }

    #[test]
    fn strategy_names() {
        for name in Strategy::NAMES {
            assert_eq!(name.parse::<Strategy>().expect("known").to_string(), name);
        }
        assert!(
            "random"
                .parse::<Strategy>()
                .expect_err("daemon-side")
                .contains("daemon")
        );
        assert!("fastest".parse::<Strategy>().is_err());
    }
}
