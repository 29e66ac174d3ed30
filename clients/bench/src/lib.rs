//! `fastchat-bench`: measures FastChat end to end over a matrix of server counts, client
//! counts, message sizes and strategies. Each combination gets a fresh fleet (a balancer in
//! this process, each server a process of its own) and simulated clients built on the real
//! server link, in this process or spread over worker processes, sending envelopes really
//! sealed (Fernet + RSA-PSS) before the timed phase; receivers time each message when it
//! arrives. Beside the matrix: baselines of what the machine allows (loopback TCP, a raw
//! INSERT, INSERT+NOTIFY), an uneven-load scenario and a connection-capacity run. The
//! outputs are a CSV row per combination, PNG plots and a Markdown report.

pub mod baseline;
pub mod capacity;
pub mod clients;
pub mod fleet;
mod noise;
mod plot;
mod report;
mod run;
pub mod worker;

pub use baseline::Baseline;
pub use capacity::Capacity;
pub use report::write_all;
pub use run::{Combination, Load, Progress, Row, run_combination};

/// Everything one run measured, for the outputs.
#[derive(Debug, Clone, Default)]
pub struct Findings {
    /// The command line that made them.
    pub command: String,
    /// One per combination measured: the matrix (`scenario` `even`) and the uneven-load
    /// scenario (`uneven`), in the order they ran.
    pub rows: Vec<Row>,
    /// Combinations planned: fewer rows than this means the run was interrupted.
    pub planned: usize,
    pub baselines: Vec<Baseline>,
    pub capacity: Option<Capacity>,
    /// Messages per second each client sends; `None`: as fast as acks allow.
    pub rate: Option<f64>,
    /// Busy clients on server 1 in the uneven scenario.
    pub uneven_busy: Option<usize>,
    /// The compiler's and the databases' versions (FastChat's own is always given).
    pub versions: Vec<String>,
}

use std::str::FromStr;

use fastchat_link::policy::ClientStrategy;

/// How clients choose servers: one of the balancer's strategies, or one of their own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strategy {
    Balancer(fastchat_balancer::Strategy),
    Client(ClientStrategy),
}

impl Strategy {
    /// All six, in the order reports list them.
    pub const ALL: [&'static str; 6] = [
        "round-robin",
        "least-cpu",
        "least-connections",
        "p2c",
        "client-round-robin",
        "random",
    ];

    #[must_use]
    pub fn name(self) -> String {
        match self {
            Strategy::Balancer(s) => s.to_string(),
            Strategy::Client(ClientStrategy::ClientRoundRobin) => "client-round-robin".into(),
            Strategy::Client(ClientStrategy::Random) => "random".into(),
        }
    }
}

impl FromStr for Strategy {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.parse::<fastchat_balancer::Strategy>()
            .map(Strategy::Balancer)
            .or_else(|_| s.parse::<ClientStrategy>().map(Strategy::Client))
            .map_err(|_| format!("{s} is not a strategy ({})", Strategy::ALL.join(", ")))
    }
}

/// Microseconds (as histograms record them) to milliseconds, for reports.
pub(crate) fn ms(micros: u64) -> f64 {
    #[allow(clippy::cast_precision_loss)]
    let v = micros as f64 / 1000.0;
    v
}

/// `count` over `seconds`, per second.
pub(crate) fn per_second(count: u64, seconds: f64) -> f64 {
    #[allow(clippy::cast_precision_loss)]
    let v = count as f64 / seconds.max(1e-9);
    v
}

/// The log filter for the bench's child processes: the caller's `RUST_LOG`, else warnings
/// only, so that servers and workers do not drown the progress lines.
pub(crate) fn child_log_filter() -> String {
    std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".into())
}

/// Parses `1,2,4`-style lists.
///
/// # Errors
/// Names the item that does not parse.
pub fn parse_list<T: FromStr>(text: &str) -> Result<Vec<T>, String>
where
    T::Err: std::fmt::Display,
{
    text.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.parse::<T>().map_err(|e| format!("{s}: {e}")))
        .collect::<Result<Vec<T>, String>>()
        .and_then(|v| {
            if v.is_empty() {
                Err("an empty list".into())
            } else {
                Ok(v)
            }
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strategies_and_lists_parse() {
        let all: Vec<Strategy> = parse_list(&Strategy::ALL.join(",")).expect("all six");
        assert_eq!(all.len(), 6);
        assert_eq!(
            all.iter().map(|s| s.name()).collect::<Vec<_>>(),
            Strategy::ALL.to_vec()
        );
        assert_eq!(parse_list::<u16>("1, 2,4").expect("numbers"), vec![1, 2, 4]);
        assert!(parse_list::<u16>("1,x").is_err());
        assert!(parse_list::<u16>("").is_err());
        assert!("fastest".parse::<Strategy>().is_err());
    }
}
