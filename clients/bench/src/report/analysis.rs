//! What the report and the plots compare: which rows make a sweep, which baseline a row is
//! measured against, and the verdicts on the targets. Pure functions of the findings.

use std::collections::BTreeMap;

use super::format;
use crate::{Baseline, Capacity, Row, Strategy};

/// The scenario of the matrix: the load spread as each strategy spreads it.
pub(crate) const EVEN: &str = "even";
/// The scenario with one server kept busy by extra clients.
pub(crate) const UNEVEN: &str = "uneven";
/// The loopback TCP ping-pong baseline.
pub(crate) const TCP: &str = "tcp";
/// The PostgreSQL store's baseline: INSERT plus NOTIFY, until a listener hears it.
pub(crate) const POSTGRES_STORE: &str = "postgres-insert-notify";
/// The SQLite store's baseline: a committed single-row INSERT.
pub(crate) const SQLITE_STORE: &str = "sqlite-insert";

/// The store baseline a row on `database` is measured against.
pub(crate) fn store_baseline_name(database: &str) -> Option<&'static str> {
    match database {
        "postgres" => Some(POSTGRES_STORE),
        "sqlite" => Some(SQLITE_STORE),
        _ => None,
    }
}

/// The baseline called `name` at `size`, or at the nearest size measured: nearest as a
/// ratio, since sizes grow geometrically (ties go to the smaller size).
pub(crate) fn nearest_baseline<'a>(
    baselines: &'a [Baseline],
    name: &str,
    size: usize,
) -> Option<&'a Baseline> {
    #[allow(clippy::cast_precision_loss)]
    let distance = |b: &Baseline| (b.size.max(1) as f64 / size.max(1) as f64).ln().abs();
    baselines.iter().filter(|b| b.name == name).min_by(|a, b| {
        distance(a)
            .total_cmp(&distance(b))
            .then(a.size.cmp(&b.size))
    })
}

/// `a / b`, when that means something.
fn divide(a: f64, b: f64) -> Option<f64> {
    (a.is_finite() && b.is_finite() && b > 0.0).then(|| a / b)
}

/// One row against the baselines of its size.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Ratios<'a> {
    /// The store's baseline for the row's database, at the nearest size.
    pub store: Option<&'a Baseline>,
    pub tcp: Option<&'a Baseline>,
    pub p50_x_store: Option<f64>,
    pub p99_x_store: Option<f64>,
    pub p50_x_tcp: Option<f64>,
    /// Messages delivered per second as a fraction of the store's operations per second.
    pub throughput_of_store: Option<f64>,
}

pub(crate) fn ratios<'a>(row: &Row, baselines: &'a [Baseline]) -> Ratios<'a> {
    let store = store_baseline_name(&row.database)
        .and_then(|name| nearest_baseline(baselines, name, row.size));
    let tcp = nearest_baseline(baselines, TCP, row.size);
    Ratios {
        store,
        tcp,
        p50_x_store: store.and_then(|b| divide(row.p50_ms, b.p50_ms)),
        p99_x_store: store.and_then(|b| divide(row.p99_ms, b.p99_ms)),
        p50_x_tcp: tcp.and_then(|b| divide(row.p50_ms, b.p50_ms)),
        throughput_of_store: store.and_then(|b| divide(row.in_msgs_per_s, b.per_s)),
    }
}

/// The most frequent value; ties go to the smallest.
pub(crate) fn mode<T: Ord>(values: impl IntoIterator<Item = T>) -> Option<T> {
    let mut counts = BTreeMap::new();
    for v in values {
        *counts.entry(v).or_insert(0usize) += 1;
    }
    let mut best: Option<(T, usize)> = None;
    for (v, n) in counts {
        if best.as_ref().is_none_or(|(_, m)| n > *m) {
            best = Some((v, n));
        }
    }
    best.map(|(v, _)| v)
}

/// Where a strategy comes in the report's lists: `Strategy::ALL` order, then by name.
fn strategy_rank(name: &str) -> (usize, &str) {
    (
        Strategy::ALL
            .iter()
            .position(|s| *s == name)
            .unwrap_or(Strategy::ALL.len()),
        name,
    )
}

/// The strategies among `rows`, in the report's order.
pub(crate) fn strategies<'a>(rows: impl IntoIterator<Item = &'a Row>) -> Vec<&'a str> {
    let mut names: Vec<&str> = rows.into_iter().map(|r| r.strategy.as_str()).collect();
    names.sort_by(|a, b| strategy_rank(a).cmp(&strategy_rank(b)));
    names.dedup();
    names
}

/// A dimension of the matrix that a sweep can vary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Variable {
    Size,
    Clients,
    Servers,
}

impl Variable {
    pub(crate) const ALL: [Variable; 3] = [Variable::Size, Variable::Clients, Variable::Servers];

    pub(crate) fn of(self, row: &Row) -> usize {
        match self {
            Variable::Size => row.size,
            Variable::Clients => row.clients,
            Variable::Servers => usize::from(row.servers),
        }
    }

    /// For file names: `size`, `clients`, `servers`.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Variable::Size => "size",
            Variable::Clients => "clients",
            Variable::Servers => "servers",
        }
    }

    /// The variable in words: `message size`, `client count`, `server count`.
    pub(crate) fn noun(self) -> &'static str {
        match self {
            Variable::Size => "message size",
            Variable::Clients => "client count",
            Variable::Servers => "server count",
        }
    }

    /// A value alone: `1 KiB`, `10`.
    pub(crate) fn value(self, value: usize) -> String {
        match self {
            Variable::Size => format::size(value),
            Variable::Clients | Variable::Servers => value.to_string(),
        }
    }

    /// A value in words: `1 KiB`, `10 clients`, `1 server`.
    pub(crate) fn describe(self, value: usize) -> String {
        match (self, value) {
            (Variable::Size, v) => format::size(v),
            (Variable::Clients, 1) => "1 client".into(),
            (Variable::Clients, v) => format!("{v} clients"),
            (Variable::Servers, 1) => "1 server".into(),
            (Variable::Servers, v) => format!("{v} servers"),
        }
    }

    /// Sizes and client counts are chosen geometrically, so their axes are logarithmic.
    pub(crate) fn log_axis(self) -> bool {
        !matches!(self, Variable::Servers)
    }
}

/// One strategy's points along a sweep, by increasing value of the variable.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Line<'a> {
    pub strategy: &'a str,
    pub points: Vec<&'a Row>,
}

/// Even rows along one variable, the others held at their most measured value.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Sweep<'a> {
    pub variable: Variable,
    /// What is held, in words: `1 server, 1 KiB, postgres`.
    pub held: String,
    /// Only strategies with two points or more.
    pub lines: Vec<Line<'a>>,
}

/// A sweep for each variable that has more than one value among the even rows and at least
/// one strategy with two points once the others are held.
pub(crate) fn sweeps(rows: &[Row]) -> Vec<Sweep<'_>> {
    let even: Vec<&Row> = rows.iter().filter(|r| r.scenario == EVEN).collect();
    let Some(database) = mode(even.iter().map(|r| r.database.as_str())) else {
        return Vec::new();
    };
    let even: Vec<&Row> = even
        .into_iter()
        .filter(|r| r.database == database)
        .collect();
    Variable::ALL
        .into_iter()
        .filter_map(|v| sweep(&even, v, database))
        .collect()
}

fn sweep<'a>(even: &[&'a Row], variable: Variable, database: &str) -> Option<Sweep<'a>> {
    let first = even.first()?;
    if even.iter().all(|r| variable.of(r) == variable.of(first)) {
        return None;
    }
    let held: Vec<(Variable, usize)> = Variable::ALL
        .into_iter()
        .filter(|&o| o != variable)
        .filter_map(|o| mode(even.iter().map(|r| o.of(r))).map(|m| (o, m)))
        .collect();
    let kept: Vec<&Row> = even
        .iter()
        .copied()
        .filter(|r| held.iter().all(|&(o, m)| o.of(r) == m))
        .collect();
    let lines: Vec<Line<'a>> = strategies(kept.iter().copied())
        .into_iter()
        .filter_map(|strategy| {
            let mut points: Vec<&Row> = kept
                .iter()
                .copied()
                .filter(|r| r.strategy == strategy)
                .collect();
            // Stable, so the first measurement of a repeated point is the one kept.
            points.sort_by_key(|r| variable.of(r));
            points.dedup_by_key(|r| variable.of(r));
            (points.len() >= 2).then_some(Line { strategy, points })
        })
        .collect();
    if lines.is_empty() {
        return None;
    }
    let mut words: Vec<String> = held.iter().map(|&(o, m)| o.describe(m)).collect();
    words.push(database.to_owned());
    Some(Sweep {
        variable,
        held: words.join(", "),
        lines,
    })
}

/// The message size the latency targets are set for.
pub(crate) const TARGET_SIZE: usize = 1024;
/// p50 delivery latency at most this many times the INSERT+NOTIFY p50.
pub(crate) const P50_LIMIT: f64 = 4.0;
/// p99 delivery latency at most this many times the INSERT+NOTIFY round trip (its p50).
pub(crate) const P99_LIMIT: f64 = 10.0;

/// A measured latency against a multiple of a baseline's.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Verdict {
    pub measured_ms: f64,
    pub baseline_ms: f64,
    pub limit: f64,
}

impl Verdict {
    pub(crate) fn ratio(&self) -> f64 {
        self.measured_ms / self.baseline_ms
    }

    pub(crate) fn met(&self) -> bool {
        self.ratio() <= self.limit
    }

    pub(crate) fn allowed_ms(&self) -> f64 {
        self.limit * self.baseline_ms
    }

    /// `met, with 1.2 ms (1.50x) to spare` or `missed by 0.8 ms (0.70x over)`.
    pub(crate) fn describe(&self) -> String {
        let gap_ms = (self.allowed_ms() - self.measured_ms).abs();
        let gap_x = (self.limit - self.ratio()).abs();
        if self.met() {
            format!(
                "met, with {} ms ({}) to spare",
                format::ms(gap_ms),
                format::ratio(gap_x)
            )
        } else {
            format!(
                "missed by {} ms ({} over)",
                format::ms(gap_ms),
                format::ratio(gap_x)
            )
        }
    }
}

/// The latency targets, checked on the lightest-load 1 KiB PostgreSQL row.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Targets<'a> {
    /// Why they could not be checked.
    NotMeasured(&'static str),
    Measured {
        row: &'a Row,
        baseline: &'a Baseline,
        p50: Verdict,
        p99: Verdict,
    },
}

/// The even PostgreSQL row at 1 KiB with the fewest clients, on one server if there is
/// such a row, else on the fewest servers; the first measured among equals.
pub(crate) fn reference_row(rows: &[Row]) -> Option<&Row> {
    rows.iter()
        .filter(|r| r.scenario == EVEN && r.database == "postgres" && r.size == TARGET_SIZE)
        .min_by_key(|r| (r.clients, r.servers != 1, r.servers))
}

pub(crate) fn targets<'a>(rows: &'a [Row], baselines: &'a [Baseline]) -> Targets<'a> {
    let Some(row) = reference_row(rows) else {
        return Targets::NotMeasured("no even-load PostgreSQL combination with 1 KiB messages");
    };
    let Some(baseline) = nearest_baseline(baselines, POSTGRES_STORE, row.size) else {
        return Targets::NotMeasured("no INSERT+NOTIFY baseline");
    };
    if !(baseline.p50_ms > 0.0 && baseline.p99_ms > 0.0) {
        return Targets::NotMeasured("the INSERT+NOTIFY baseline timed no round trip");
    }
    if row.messages == 0 {
        return Targets::NotMeasured("the reference combination delivered no message");
    }
    Targets::Measured {
        row,
        baseline,
        p50: Verdict {
            measured_ms: row.p50_ms,
            baseline_ms: baseline.p50_ms,
            limit: P50_LIMIT,
        },
        p99: Verdict {
            measured_ms: row.p99_ms,
            baseline_ms: baseline.p50_ms,
            limit: P99_LIMIT,
        },
    }
}

/// Connections one server should hold...
pub(crate) const CAPACITY_CONNECTIONS: u64 = 10_000;
/// ...within this much resident memory.
pub(crate) const CAPACITY_MIB: f64 = 500.0;

/// The capacity run against the memory target.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct CapacityCheck {
    pub kib_per_connection: f64,
    /// The server's memory with `CAPACITY_CONNECTIONS` connections: measured, or
    /// extrapolated linearly from what was measured.
    pub rss_at_target_mib: f64,
    /// Whether `rss_at_target_mib` is extrapolated.
    pub projected: bool,
}

impl CapacityCheck {
    pub(crate) fn met(&self) -> bool {
        self.rss_at_target_mib <= CAPACITY_MIB
    }
}

/// `None` when no connection was held, so nothing can be said per connection.
pub(crate) fn capacity_check(c: &Capacity) -> Option<CapacityCheck> {
    if c.connections == 0 {
        return None;
    }
    #[allow(clippy::cast_precision_loss)]
    let (held, target) = (c.connections as f64, CAPACITY_CONNECTIONS as f64);
    let per_connection_mib = (c.rss_mib - c.idle_rss_mib).max(0.0) / held;
    Some(CapacityCheck {
        kib_per_connection: per_connection_mib * 1024.0,
        rss_at_target_mib: c.idle_rss_mib + per_connection_mib * target,
        projected: c.connections != CAPACITY_CONNECTIONS,
    })
}

/// The uneven scenario's rows to compare: one per strategy, all from the configuration
/// measured with the most strategies, in the report's strategy order.
pub(crate) fn uneven_rows(rows: &[Row]) -> Vec<&Row> {
    let uneven: Vec<&Row> = rows.iter().filter(|r| r.scenario == UNEVEN).collect();
    let Some(config) = mode(
        uneven
            .iter()
            .map(|r| (r.servers, r.clients, r.size, r.database.as_str())),
    ) else {
        return Vec::new();
    };
    let same: Vec<&Row> = uneven
        .into_iter()
        .filter(|r| (r.servers, r.clients, r.size, r.database.as_str()) == config)
        .collect();
    strategies(same.iter().copied())
        .into_iter()
        .filter_map(|s| same.iter().copied().find(|r| r.strategy == s))
        .collect()
}

#[cfg(test)]
pub(crate) mod fixtures {
    use crate::{Baseline, Row};

    /// An even PostgreSQL row with plausible numbers, for tests to adjust.
    pub(crate) fn row(servers: u16, clients: usize, size: usize, strategy: &str) -> Row {
        Row {
            scenario: "even".into(),
            database: "postgres".into(),
            servers,
            clients,
            size,
            strategy: strategy.into(),
            processes: 1,
            clients_per_server: format!("{clients}"),
            messages: 100,
            p50_ms: 1.0,
            p90_ms: 1.5,
            p99_ms: 2.0,
            max_ms: 3.0,
            out_msgs_per_s: 1000.0,
            in_msgs_per_s: 1000.0,
            out_bytes_per_s: 1_000_000.0,
            in_bytes_per_s: 1_000_000.0,
            errors: 0,
            seal_ms: 1.5,
            open_ms: 0.2,
        }
    }

    pub(crate) fn baseline(name: &str, size: usize, p50_ms: f64, p99_ms: f64) -> Baseline {
        Baseline {
            name: name.into(),
            size,
            samples: 500,
            p50_ms,
            p99_ms,
            per_s: 4000.0,
            concurrency: 8,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::fixtures::{baseline, row};
    use super::*;

    #[test]
    fn the_nearest_size_is_nearest_as_a_ratio() {
        let b = [
            baseline(POSTGRES_STORE, 64, 0.4, 1.0),
            baseline(POSTGRES_STORE, 1024, 0.5, 1.2),
            baseline(POSTGRES_STORE, 16_384, 0.9, 2.0),
            baseline(TCP, 1024, 0.03, 0.1),
        ];
        let size = |s| nearest_baseline(&b, POSTGRES_STORE, s).map(|b| b.size);
        assert_eq!(size(1024), Some(1024));
        assert_eq!(size(2000), Some(1024));
        // 3000 is 2.9x from 1024 and 5.5x from 16384.
        assert_eq!(size(3000), Some(1024));
        assert_eq!(size(10_000), Some(16_384));
        assert_eq!(size(1), Some(64));
        // 256 is 4x from both 64 and 1024: the smaller wins.
        assert_eq!(size(256), Some(64));
        assert_eq!(nearest_baseline(&b, SQLITE_STORE, 1024), None);
        assert_eq!(nearest_baseline(&b, TCP, 64).map(|b| b.size), Some(1024));
    }

    #[test]
    fn ratios_use_the_store_of_the_rows_database() {
        let b = [
            baseline(POSTGRES_STORE, 1024, 0.5, 1.0),
            baseline(SQLITE_STORE, 1024, 0.25, 0.5),
            baseline(TCP, 1024, 0.05, 0.1),
        ];
        let pg = Row {
            p50_ms: 2.0,
            p99_ms: 8.0,
            in_msgs_per_s: 1000.0,
            ..row(1, 10, 1024, "round-robin")
        };
        let r = ratios(&pg, &b);
        assert_eq!(r.store.map(|b| b.name.as_str()), Some(POSTGRES_STORE));
        assert_eq!(r.p50_x_store, Some(4.0));
        assert_eq!(r.p99_x_store, Some(8.0));
        assert_eq!(r.p50_x_tcp, Some(40.0));
        assert_eq!(r.throughput_of_store, Some(0.25));
        let lite = Row {
            database: "sqlite".into(),
            ..pg.clone()
        };
        assert_eq!(ratios(&lite, &b).p50_x_store, Some(8.0));
        let r = ratios(&pg, &[]);
        assert_eq!((r.store, r.p50_x_store, r.p50_x_tcp), (None, None, None));
        // A zero baseline gives no ratio rather than infinity.
        let zero = [baseline(POSTGRES_STORE, 1024, 0.0, 0.0)];
        assert_eq!(ratios(&pg, &zero).p50_x_store, None);
    }

    #[test]
    fn the_reference_row_is_the_lightest_1kib_postgres_one() {
        let rows = vec![
            row(2, 10, 1024, "round-robin"),
            row(1, 10, 64, "round-robin"),
            row(1, 50, 1024, "round-robin"),
            Row {
                scenario: UNEVEN.into(),
                ..row(1, 2, 1024, "round-robin")
            },
            Row {
                database: "sqlite".into(),
                ..row(1, 2, 1024, "round-robin")
            },
            row(1, 10, 1024, "random"),
            row(1, 10, 1024, "round-robin"),
        ];
        let chosen = reference_row(&rows).expect("a reference");
        assert_eq!(
            (chosen.servers, chosen.clients, chosen.strategy.as_str()),
            (1, 10, "random")
        );
        // Without a 1-server row, the fewest servers.
        let rows = vec![row(4, 10, 1024, "p2c"), row(2, 10, 1024, "p2c")];
        assert_eq!(reference_row(&rows).map(|r| r.servers), Some(2));
    }

    #[test]
    fn target_verdicts_come_from_the_rows_and_the_baseline() {
        let b = [
            baseline(POSTGRES_STORE, 1024, 0.5, 1.0),
            baseline(POSTGRES_STORE, 64, 0.1, 0.1),
        ];
        let rows = vec![Row {
            p50_ms: 1.5,
            p99_ms: 12.0,
            ..row(1, 10, 1024, "round-robin")
        }];
        let Targets::Measured {
            baseline: used,
            p50,
            p99,
            ..
        } = targets(&rows, &b)
        else {
            panic!("the targets are measurable");
        };
        assert_eq!(used.size, 1024);
        assert!((p50.ratio() - 3.0).abs() < 1e-9);
        assert!(p50.met());
        assert!((p50.allowed_ms() - 2.0).abs() < 1e-9);
        assert_eq!(p50.describe(), "met, with 0.500 ms (1.00x) to spare");
        // p99 against the round trip (the baseline's p50): 12 / 0.5.
        assert!((p99.ratio() - 24.0).abs() < 1e-9);
        assert!(!p99.met());
        assert_eq!(p99.describe(), "missed by 7.00 ms (14x over)");

        assert!(matches!(targets(&rows, &[]), Targets::NotMeasured(_)));
        assert!(matches!(
            targets(&[row(1, 10, 64, "round-robin")], &b),
            Targets::NotMeasured(_)
        ));
        let silent = vec![Row {
            messages: 0,
            ..rows[0].clone()
        }];
        assert!(matches!(targets(&silent, &b), Targets::NotMeasured(_)));
    }

    #[test]
    fn capacity_is_judged_at_ten_thousand_connections() {
        let measured = Capacity {
            target: 10_000,
            connections: 10_000,
            idle_rss_mib: 20.0,
            rss_mib: 520.5,
            errors: 0,
            seconds: 12.0,
        };
        let check = capacity_check(&measured).expect("connections held");
        assert!(!check.projected);
        assert!(!check.met());
        assert!((check.rss_at_target_mib - 520.5).abs() < 1e-9);
        assert!((check.kib_per_connection - 500.5 * 1024.0 / 10_000.0).abs() < 1e-9);
        // 1,000 connections costing 30 MiB extrapolate to 20 + 300 MiB.
        let small = Capacity {
            target: 1000,
            connections: 1000,
            rss_mib: 50.0,
            ..measured.clone()
        };
        let check = capacity_check(&small).expect("connections held");
        assert!(check.projected && check.met());
        assert!((check.rss_at_target_mib - 320.0).abs() < 1e-9);
        let none = Capacity {
            connections: 0,
            ..measured
        };
        assert_eq!(capacity_check(&none), None);
    }

    #[test]
    fn sweeps_hold_the_other_variables_at_their_most_measured_value() {
        let mut rows = Vec::new();
        for clients in [10, 50, 100] {
            for size in [64, 1024] {
                for strategy in ["random", "round-robin"] {
                    rows.push(row(1, clients, size, strategy));
                }
            }
        }
        // One 2-server point, which makes 64 B and 10 clients the most measured values and
        // gives round-robin (only) two points along the servers.
        rows.push(row(2, 10, 64, "round-robin"));
        rows.push(Row {
            scenario: UNEVEN.into(),
            ..row(2, 500, 1024, "p2c")
        });
        let sweeps = sweeps(&rows);
        let names: Vec<&str> = sweeps.iter().map(|s| s.variable.name()).collect();
        assert_eq!(names, ["size", "clients", "servers"]);

        let by_size = &sweeps[0];
        assert_eq!(by_size.held, "10 clients, 1 server, postgres");
        let strategies: Vec<&str> = by_size.lines.iter().map(|l| l.strategy).collect();
        assert_eq!(strategies, ["round-robin", "random"], "Strategy::ALL order");
        let sizes: Vec<usize> = by_size.lines[0].points.iter().map(|r| r.size).collect();
        assert_eq!(sizes, [64, 1024]);

        let by_servers = &sweeps[2];
        assert_eq!(by_servers.held, "64 B, 10 clients, postgres");
        assert_eq!(by_servers.lines.len(), 1);
        assert_eq!(by_servers.lines[0].strategy, "round-robin");

        // One value per variable: nothing to sweep.
        assert!(super::sweeps(&rows[..1]).is_empty());
        assert!(super::sweeps(&[]).is_empty());
    }

    #[test]
    fn uneven_rows_are_one_per_strategy() {
        let uneven = |strategy: &str, clients| Row {
            scenario: UNEVEN.into(),
            ..row(2, clients, 1024, strategy)
        };
        let rows = vec![
            row(2, 100, 1024, "p2c"),
            uneven("p2c", 100),
            uneven("round-robin", 100),
            uneven("least-cpu", 100),
            uneven("random", 10),
        ];
        let names: Vec<&str> = uneven_rows(&rows)
            .iter()
            .map(|r| r.strategy.as_str())
            .collect();
        assert_eq!(names, ["round-robin", "least-cpu", "p2c"]);
        assert!(uneven_rows(&rows[..1]).is_empty());
    }

    #[test]
    fn mode_prefers_the_most_frequent_then_the_smallest() {
        assert_eq!(mode([3, 1, 3, 1, 2]), Some(1));
        assert_eq!(mode([5, 4, 5]), Some(5));
        assert_eq!(mode(Vec::<u8>::new()), None);
    }
}
