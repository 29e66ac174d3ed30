//! `report.md`, rendered from the findings: a pure function of its inputs, so that tests
//! can read what a given run would say.

use std::fmt::Write as _;

use super::analysis::{self, EVEN, Targets, Verdict};
use super::{conclusions, format};
use crate::plot::Plotted;
use crate::{Baseline, Capacity, Findings, Row};

/// Where the report was made: the machine and the time, which tests fix.
#[derive(Debug, Clone)]
pub(crate) struct Context {
    pub machine: String,
    pub now: String,
}

// `writeln!` into a `String` cannot fail; the results below are ignored for that reason.

pub(crate) fn render(findings: &Findings, plots: &[Plotted], context: &Context) -> String {
    let mut out = String::from("# FastChat benchmark\n\n");
    header(&mut out, findings, context);
    method(&mut out, findings);
    baselines(&mut out, &findings.baselines);
    results(&mut out, &findings.rows);
    ratios(&mut out, &findings.rows, &findings.baselines);
    uneven(&mut out, &findings.rows, findings.uneven_busy);
    capacity(&mut out, findings.capacity.as_ref());
    targets(&mut out, &findings.rows, &findings.baselines);
    plots_section(&mut out, plots);
    let said = conclusions::conclusions(&findings.rows, interrupted(findings));
    if !said.is_empty() {
        out.push_str("\n## Conclusions the data supports\n\n");
        for sentence in said {
            let _ = writeln!(out, "- {sentence}");
        }
    }
    out
}

fn interrupted(findings: &Findings) -> bool {
    findings.rows.len() < findings.planned
}

/// `interrupted after 3 of 12 combinations`, or how complete the run is.
pub(crate) fn completeness(findings: &Findings) -> String {
    let (done, planned) = (findings.rows.len(), findings.planned);
    if interrupted(findings) {
        format!("interrupted after {done} of {planned} combinations")
    } else if done == 1 {
        "the one combination planned was measured".into()
    } else {
        format!("all {done} combinations planned were measured")
    }
}

fn header(out: &mut String, findings: &Findings, context: &Context) {
    let _ = writeln!(out, "- Command: `{}`", findings.command);
    let _ = writeln!(out, "- Machine: {}", context.machine);
    let _ = writeln!(
        out,
        "- FastChat {}, at {}",
        env!("CARGO_PKG_VERSION"),
        context.now
    );
    if !findings.versions.is_empty() {
        let _ = writeln!(out, "- Versions: {}", findings.versions.join(", "));
    }
    let rate = match findings.rate {
        Some(r) => format!("{r} msg/s per client"),
        None => "each client sends as fast as its acks allow".into(),
    };
    let _ = writeln!(out, "- Rate: {rate}");
    let _ = writeln!(out, "- Combinations: {}", completeness(findings));
}

fn method(out: &mut String, findings: &Findings) {
    let processes = analysis::mode(findings.rows.iter().map(|r| r.processes)).unwrap_or(1);
    let clients = if processes > 1 {
        format!("spread over {processes} worker processes")
    } else {
        "in the bench's own process".into()
    };
    let _ = writeln!(
        out,
        "\n## How it is measured\n\n\
         Latency is from just before a send to the recipient's push. Each server runs as a \
         process of its own, behind the balancer in the bench process; the simulated clients \
         run {clients}, all on the same machine as the servers. Sealing happens before the \
         timed phase; `seal ms` and `open ms` are the client's own cost per message, measured \
         apart. Throughput out is messages acknowledged per second of sending; in, messages \
         delivered per second until the last arrived."
    );
}

fn baselines(out: &mut String, baselines: &[Baseline]) {
    out.push_str("\n## Baselines\n\n");
    if baselines.is_empty() {
        out.push_str("No baselines in this run.\n");
        return;
    }
    out.push_str(
        "What the machine allows without FastChat in the way: `tcp` is a loopback ping-pong of \
         the size each way; `sqlite-insert` a committed single-row INSERT; \
         `postgres-insert-notify` an INSERT plus NOTIFY, until a listening connection hears it. \
         Round trips are timed one at a time; per s is with the concurrency shown.\n\n\
         | baseline | size | samples | p50 ms | p99 ms | per s | concurrency |\n\
         |---|---:|---:|---:|---:|---:|---:|\n",
    );
    for b in baselines {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} |",
            b.name,
            format::size(b.size),
            b.samples,
            format::ms(b.p50_ms),
            format::ms(b.p99_ms),
            format::count(b.per_s),
            b.concurrency
        );
    }
}

fn results(out: &mut String, rows: &[Row]) {
    out.push_str("\n## Results\n\n");
    if rows.is_empty() {
        out.push_str("No combination measured yet.\n");
        return;
    }
    out.push_str(
        "| servers | clients | size | strategy | messages | p50 ms | p90 ms | p99 ms | max ms \
         | out msg/s | in msg/s | out B/s | in B/s | errors | seal ms | open ms | scenario \
         | database | processes | clients per server |\n\
         |---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|---:|---|\n",
    );
    for r in rows {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            r.servers,
            r.clients,
            format::size(r.size),
            r.strategy,
            r.messages,
            format::ms(r.p50_ms),
            format::ms(r.p90_ms),
            format::ms(r.p99_ms),
            format::ms(r.max_ms),
            format::count(r.out_msgs_per_s),
            format::count(r.in_msgs_per_s),
            format::count(r.out_bytes_per_s),
            format::count(r.in_bytes_per_s),
            r.errors,
            format::ms(r.seal_ms),
            format::ms(r.open_ms),
            r.scenario,
            r.database,
            r.processes,
            r.clients_per_server,
        );
    }
}

fn optional_ratio(v: Option<f64>) -> String {
    v.map_or_else(|| "-".into(), format::ratio)
}

fn ratios(out: &mut String, rows: &[Row], baselines: &[Baseline]) {
    let even: Vec<&Row> = rows.iter().filter(|r| r.scenario == EVEN).collect();
    if even.is_empty() {
        return;
    }
    out.push_str("\n## Against the baselines\n\n");
    if baselines.is_empty() {
        out.push_str("No baselines in this run, so no ratios.\n");
        return;
    }
    out.push_str(
        "Each even-load combination against its database's store baseline \
         (`postgres-insert-notify` or `sqlite-insert`, at the same size or the nearest \
         measured) and the TCP ping-pong: latency as a multiple of the baseline's, delivered \
         msg/s as a fraction of the store's operations per second.\n\n\
         | database | size | clients | servers | strategy | store baseline | p50 ms | p50 / store p50 \
         | p99 ms | p99 / store p99 | p50 / TCP p50 | in msg/s / store per s |\n\
         |---|---:|---:|---:|---|---|---:|---:|---:|---:|---:|---:|\n",
    );
    for r in even {
        let x = analysis::ratios(r, baselines);
        let store = x.store.map_or_else(
            || "-".into(),
            |b| format!("{} {}", b.name, format::size(b.size)),
        );
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {store} | {} | {} | {} | {} | {} | {} |",
            r.database,
            format::size(r.size),
            r.clients,
            r.servers,
            r.strategy,
            format::ms(r.p50_ms),
            optional_ratio(x.p50_x_store),
            format::ms(r.p99_ms),
            optional_ratio(x.p99_x_store),
            optional_ratio(x.p50_x_tcp),
            optional_ratio(x.throughput_of_store),
        );
    }
}

fn uneven(out: &mut String, rows: &[Row], busy: Option<usize>) {
    let compared = analysis::uneven_rows(rows);
    let Some(first) = compared.first() else {
        return;
    };
    let _ = writeln!(
        out,
        "\n## Uneven load\n\n\
         Server 1 kept busy by {} connected straight to it, while {} clients send \
         {} messages through {} servers ({}), one line per strategy; \
         \"clients per server\" says where each strategy put the measured clients (server 1 \
         first).\n\n\
         | strategy | p50 ms | p90 ms | p99 ms | max ms | in msg/s | errors | clients per server |\n\
         |---|---:|---:|---:|---:|---:|---:|---|",
        busy.map_or_else(
            || "extra clients".to_owned(),
            |n| format!(
                "{n} extra clients sending {} msg/s each",
                crate::noise::NOISE_RATE
            )
        ),
        first.clients,
        format::size(first.size),
        first.servers,
        first.database,
    );
    for r in &compared {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} | {} |",
            r.strategy,
            format::ms(r.p50_ms),
            format::ms(r.p90_ms),
            format::ms(r.p99_ms),
            format::ms(r.max_ms),
            format::count(r.in_msgs_per_s),
            r.errors,
            r.clients_per_server
        );
    }
    out.push('\n');
    out.push_str(&conclusions::uneven_verdict(&compared).join(" "));
    out.push('\n');
}

fn capacity(out: &mut String, capacity: Option<&Capacity>) {
    let Some(c) = capacity else {
        return;
    };
    out.push_str("\n## Connection capacity\n\n");
    let _ = writeln!(
        out,
        "One server held {} of {} logged-in idle connections ({} refused or dropped), opened \
         in {:.1} s. Its resident memory went from {} MiB idle to {} MiB.",
        format::count(c.connections as f64),
        format::count(c.target as f64),
        c.errors,
        c.seconds,
        format::mib(c.idle_rss_mib),
        format::mib(c.rss_mib)
    );
    let Some(check) = analysis::capacity_check(c) else {
        out.push_str("\nNo connection was held, so there is no cost per connection.\n");
        return;
    };
    let target = format::count(analysis::CAPACITY_CONNECTIONS as f64);
    let at = if check.projected {
        format!("extrapolated linearly to {target} connections")
    } else {
        format!("at {target} connections")
    };
    let verdict = if check.met() {
        format!(
            "met, with {} MiB to spare",
            format::mib(analysis::CAPACITY_MIB - check.rss_at_target_mib)
        )
    } else {
        format!(
            "missed by {} MiB",
            format::mib(check.rss_at_target_mib - analysis::CAPACITY_MIB)
        )
    };
    let _ = writeln!(
        out,
        "\nThat is {:.1} KiB per connection; {at}, {} MiB against the target of {} MiB: \
         {verdict}.",
        check.kib_per_connection,
        format::mib(check.rss_at_target_mib),
        format::mib(analysis::CAPACITY_MIB)
    );
}

fn verdict_line(what: &str, v: &Verdict, baseline_what: &str) -> String {
    format!(
        "- {what}: {} ms, {} the INSERT+NOTIFY {baseline_what} of {} ms (target: at most {}x, \
         so {} ms): **{}**.",
        format::ms(v.measured_ms),
        format::ratio(v.ratio()),
        format::ms(v.baseline_ms),
        v.limit,
        format::ms(v.allowed_ms()),
        v.describe()
    )
}

fn targets(out: &mut String, rows: &[Row], baselines: &[Baseline]) {
    let _ = writeln!(
        out,
        "\n## Targets\n\n\
         Delivery latency for {} messages at light load on PostgreSQL: p50 at most {}x the \
         raw INSERT+NOTIFY round trip (its p50), p99 at most {}x that round trip.\n",
        format::size(analysis::TARGET_SIZE),
        analysis::P50_LIMIT,
        analysis::P99_LIMIT
    );
    match analysis::targets(rows, baselines) {
        Targets::NotMeasured(why) => {
            let _ = writeln!(out, "Not measured in this run: {why}.");
        }
        Targets::Measured {
            row,
            baseline,
            p50,
            p99,
        } => {
            let _ = writeln!(
                out,
                "Measured on {} clients, {} server{}, {} (the lightest such load in this \
                 run), against the {} baseline at {}:\n",
                row.clients,
                row.servers,
                if row.servers == 1 { "" } else { "s" },
                row.strategy,
                baseline.name,
                format::size(baseline.size)
            );
            let _ = writeln!(out, "{}", verdict_line("p50", &p50, "p50"));
            let _ = writeln!(out, "{}", verdict_line("p99", &p99, "p50"));
        }
    }
}

fn plots_section(out: &mut String, plots: &[Plotted]) {
    out.push_str("\n## Plots\n\n");
    if plots.is_empty() {
        out.push_str(
            "None: a plot needs a variable with two values or more among the even-load \
             combinations, or an uneven-load run.\n",
        );
        return;
    }
    for p in plots {
        match &p.error {
            None => {
                // A blank line between images, so each is a paragraph of its own.
                let _ = writeln!(out, "![{}](plots/{})\n", p.title, p.file);
            }
            Some(e) => {
                let _ = writeln!(
                    out,
                    "- {} (`{}`) could not be drawn: {e}\n",
                    p.title, p.file
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::analysis::fixtures::{baseline, row};
    use super::super::analysis::{POSTGRES_STORE, SQLITE_STORE, TCP};
    use super::*;

    fn context() -> Context {
        Context {
            machine: "2 CPUs (test)".into(),
            now: "2026-11-27T00:00:00Z".into(),
        }
    }

    #[test]
    fn an_interrupted_run_says_how_far_it_got() {
        let mut findings = Findings {
            rows: vec![
                row(1, 10, 64, "round-robin"),
                row(1, 10, 1024, "round-robin"),
            ],
            planned: 6,
            ..Findings::default()
        };
        assert_eq!(
            completeness(&findings),
            "interrupted after 2 of 6 combinations"
        );
        let report = render(&findings, &[], &context());
        assert!(report.contains("- Combinations: interrupted after 2 of 6 combinations\n"));
        assert!(report.contains("- The run was interrupted"));
        findings.planned = 2;
        assert_eq!(
            completeness(&findings),
            "all 2 combinations planned were measured"
        );
        assert!(!render(&findings, &[], &context()).contains("interrupted"));
    }

    #[test]
    fn the_report_has_every_section_with_numbers_from_the_findings() {
        let findings = Findings {
            command: "fastchat-bench --clients 10,50".into(),
            rows: vec![
                Row {
                    p50_ms: 1.5,
                    p99_ms: 12.0,
                    ..row(1, 10, 1024, "round-robin")
                },
                Row {
                    p50_ms: 3.0,
                    p99_ms: 20.0,
                    ..row(1, 50, 1024, "round-robin")
                },
                Row {
                    scenario: "uneven".into(),
                    p99_ms: 30.0,
                    ..row(2, 50, 1024, "round-robin")
                },
                Row {
                    scenario: "uneven".into(),
                    p99_ms: 15.0,
                    ..row(2, 50, 1024, "least-cpu")
                },
            ],
            planned: 4,
            baselines: vec![
                baseline(TCP, 1024, 0.05, 0.1),
                baseline(POSTGRES_STORE, 1024, 0.5, 1.0),
                baseline(SQLITE_STORE, 1024, 0.2, 0.4),
            ],
            capacity: Some(Capacity {
                target: 10_000,
                connections: 10_000,
                idle_rss_mib: 20.0,
                rss_mib: 620.0,
                errors: 0,
                seconds: 9.5,
            }),
            rate: Some(50.0),
            uneven_busy: Some(20),
            versions: vec!["rustc 1.95.0".into(), "PostgreSQL 15.19".into()],
        };
        let plots = [Plotted {
            file: "latency-vs-clients.png".into(),
            title: "Latency vs clients".into(),
            error: None,
        }];
        let report = render(&findings, &plots, &context());
        for needle in [
            "- Rate: 50 msg/s per client\n",
            "- Versions: rustc 1.95.0, PostgreSQL 15.19\n",
            "- Combinations: all 4 combinations planned were measured\n",
            "| tcp | 1 KiB | 500 | 0.050 | 0.100 | 4,000 | 8 |",
            "| servers | clients | size | strategy |",
            // 1.5 ms against 0.5 ms, 12 against 1.0, 1.5 against TCP's 0.05, 1000/s of 4000/s.
            "| postgres | 1 KiB | 10 | 1 | round-robin | postgres-insert-notify 1 KiB | 1.50 | \
             3.00x | 12.0 | 12x | 30x | 0.25x |",
            "| least-cpu | 1.00 | 1.50 | 15.0 | 3.00 | 1,000 | 0 | 50 |",
            "least-cpu beat round-robin: p99 15.0 ms against 30.0 ms (0.50x).",
            "That is 61.4 KiB per connection; at 10,000 connections, 620 MiB against the target \
             of 500 MiB: missed by 120 MiB.",
            "Measured on 10 clients, 1 server, round-robin",
            "- p50: 1.50 ms, 3.00x the INSERT+NOTIFY p50 of 0.500 ms (target: at most 4x, so \
             2.00 ms): **met, with 0.500 ms (1.00x) to spare**.",
            "- p99: 12.0 ms, 24x the INSERT+NOTIFY p50 of 0.500 ms (target: at most 10x, so \
             5.00 ms): **missed by 7.00 ms (14x over)**.",
            "Server 1 kept busy by 20 extra clients sending 50 msg/s each",
            "![Latency vs clients](plots/latency-vs-clients.png)",
            "## Conclusions the data supports",
            "p50 latency rose from 1.50 ms to 3.00 ms (2.00x)",
        ] {
            assert!(report.contains(needle), "missing {needle:?} in\n{report}");
        }
        // The tiny matrix test counts the results table's rows by their first two cells.
        assert_eq!(report.matches("\n| 1 | 10 |").count(), 1, "{report}");
    }

    #[test]
    fn targets_not_measured_say_so() {
        let findings = Findings {
            rows: vec![Row {
                database: "sqlite".into(),
                ..row(1, 10, 1024, "round-robin")
            }],
            planned: 1,
            ..Findings::default()
        };
        let report = render(&findings, &[], &context());
        assert!(report.contains(
            "Not measured in this run: no even-load PostgreSQL combination with 1 KiB messages."
        ));
        assert!(report.contains("No baselines in this run, so no ratios."));
        assert!(!report.contains("## Uneven load"));
        assert!(!report.contains("## Connection capacity"));
    }
}
