//! Sentences the data supports, computed from the rows: how latency and throughput move
//! along each sweep, which strategy wins where strategies can differ, and the uneven
//! scenario's verdict. Each says only what the rows present show.

use std::collections::BTreeMap;

use super::analysis::{self, EVEN, Sweep};
use super::format;
use crate::Row;

/// Changes within this fraction are reported as no change: one run's noise.
const STEADY: f64 = 0.10;

/// The report's list of conclusions, one sentence each.
pub(crate) fn conclusions(rows: &[Row], interrupted: bool) -> Vec<String> {
    let mut out = Vec::new();
    if rows.is_empty() {
        return out;
    }
    if interrupted {
        out.push(
            "The run was interrupted: what follows covers only the combinations measured.".into(),
        );
    }
    out.push(errors(rows));
    for sweep in analysis::sweeps(rows) {
        out.extend(trend(&sweep, "p50 latency", |r| r.p50_ms, "ms"));
        out.extend(trend(&sweep, "delivered msg/s", |r| r.in_msgs_per_s, ""));
    }
    out.extend(best_strategies(rows));
    out.extend(crypto(rows));
    out
}

fn errors(rows: &[Row]) -> String {
    let failed: Vec<&Row> = rows.iter().filter(|r| r.errors > 0).collect();
    if failed.is_empty() {
        return "No combination lost a message or had a send fail.".into();
    }
    let total: u64 = failed.iter().map(|r| r.errors).sum();
    format!(
        "{} of {} combinations had errors ({total} in all); their latencies cover only the \
         messages delivered.",
        failed.len(),
        rows.len()
    )
}

/// A change in words: beyond `STEADY`, it rose or fell.
fn change_word(factor: f64) -> &'static str {
    if factor > 1.0 + STEADY {
        "rose"
    } else if factor < 1.0 - STEADY {
        "fell"
    } else {
        "stayed within 10%"
    }
}

/// How a metric moves from each line's first point to its last, or `None` when no line
/// has a first value to compare with.
fn trend(sweep: &Sweep<'_>, metric: &str, value: fn(&Row) -> f64, unit: &str) -> Option<String> {
    let v = sweep.variable;
    let shown = |x: f64| {
        if unit == "ms" {
            format!("{} ms", format::ms(x))
        } else {
            format::count(x)
        }
    };
    // (strategy, first row, last row, last / first), for the lines where that means something.
    let ends: Vec<(&str, &Row, &Row, f64)> = sweep
        .lines
        .iter()
        .filter_map(|l| {
            let (first, last) = (*l.points.first()?, *l.points.last()?);
            let (a, b) = (value(first), value(last));
            (a > 0.0 && b.is_finite()).then(|| (l.strategy, first, last, b / a))
        })
        .collect();
    let lo = ends.iter().map(|e| v.of(e.1)).min()?;
    let hi = ends.iter().map(|e| v.of(e.2)).max()?;
    let growth = format!(
        "As the {} grows from {} to {} ({}",
        v.noun(),
        v.value(lo),
        v.value(hi),
        sweep.held
    );
    if let [(strategy, first, last, f)] = ends.as_slice() {
        let (a, b) = (shown(value(first)), shown(value(last)));
        let change = match change_word(*f) {
            "stayed within 10%" => format!("stayed within 10% ({a} to {b})"),
            word => format!("{word} from {a} to {b} ({})", format::ratio(*f)),
        };
        return Some(format!("{growth}, {strategy}), {metric} {change}."));
    }
    let factors: Vec<f64> = ends.iter().map(|e| e.3).collect();
    let (least, most) = (
        factors.iter().copied().fold(f64::INFINITY, f64::min),
        factors.iter().copied().fold(f64::NEG_INFINITY, f64::max),
    );
    let words: Vec<&str> = factors.iter().map(|&f| change_word(f)).collect();
    let how = if words.iter().all(|w| *w == words[0]) {
        format!("{} with every strategy", words[0])
    } else {
        "moved by a different amount with each strategy".into()
    };
    let range = if format::ratio(least) == format::ratio(most) {
        format!("{} with each", format::ratio(least))
    } else {
        format!("{} to {}", format::ratio(least), format::ratio(most))
    };
    Some(format!(
        "{growth}), {metric} {how} ({range}, from each strategy's first point to its last)."
    ))
}

/// A measure strategies are ranked by.
struct Metric {
    what: &'static str,
    value: fn(&Row) -> f64,
    /// Whether more is better.
    higher: bool,
}

const METRICS: [Metric; 3] = [
    Metric {
        what: "the lowest p50",
        value: |r| r.p50_ms,
        higher: false,
    },
    Metric {
        what: "the lowest p99",
        value: |r| r.p99_ms,
        higher: false,
    },
    Metric {
        what: "the most delivered msg/s",
        value: |r| r.in_msgs_per_s,
        higher: true,
    },
];

/// Which strategy wins each metric, counted over the configurations where strategies can
/// differ: two servers or more, measured with at least two strategies.
fn best_strategies(rows: &[Row]) -> Vec<String> {
    let mut groups: BTreeMap<(u16, usize, usize, &str), Vec<&Row>> = BTreeMap::new();
    for r in rows.iter().filter(|r| r.scenario == EVEN) {
        groups
            .entry((r.servers, r.clients, r.size, r.database.as_str()))
            .or_default()
            .push(r);
    }
    let compared = |servers: fn(u16) -> bool| {
        groups
            .iter()
            .filter(|((s, ..), rows)| {
                servers(*s) && analysis::strategies(rows.iter().copied()).len() > 1
            })
            .map(|(_, rows)| rows.clone())
            .collect::<Vec<_>>()
    };
    let several = compared(|s| s >= 2);
    if several.is_empty() {
        return if compared(|s| s < 2).is_empty() {
            Vec::new()
        } else {
            vec![
                "Every strategy sends one server's clients to that one server, so at 1 server \
                 the strategies differ only by noise and are not ranked."
                    .into(),
            ]
        };
    }
    METRICS
        .iter()
        .map(
            |&Metric {
                 what,
                 value,
                 higher,
             }| {
                let mut wins: BTreeMap<&str, usize> = BTreeMap::new();
                for group in &several {
                    let best = group.iter().copied().reduce(|a, b| {
                        let better = if higher {
                            value(b) > value(a)
                        } else {
                            value(b) < value(a)
                        };
                        if better { b } else { a }
                    });
                    if let Some(best) = best {
                        *wins.entry(best.strategy.as_str()).or_default() += 1;
                    }
                }
                let mut wins: Vec<(&str, usize)> = wins.into_iter().collect();
                wins.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
                if let ([(strategy, _)], 1) = (wins.as_slice(), several.len()) {
                    return format!(
                        "In the one configuration with 2 servers or more measured with several \
                     strategies, {what} came from {strategy}."
                    );
                }
                let list: Vec<String> = wins.iter().map(|(s, n)| format!("{s} in {n}")).collect();
                format!(
                    "Of the {} configurations with 2 servers or more measured with several \
                 strategies, {what} came from {}.",
                    several.len(),
                    list.join(", ")
                )
            },
        )
        .collect()
}

/// The clients' own crypto, against the delivery latency.
fn crypto(rows: &[Row]) -> Option<String> {
    let median = |mut v: Vec<f64>| {
        v.retain(|x| x.is_finite());
        v.sort_by(f64::total_cmp);
        v.get(v.len() / 2).copied()
    };
    let seal = median(rows.iter().map(|r| r.seal_ms).collect())?;
    let open = median(rows.iter().map(|r| r.open_ms).collect())?;
    let p50 = median(rows.iter().map(|r| r.p50_ms).collect())?;
    Some(format!(
        "A client spends about {} ms sealing and {} ms verifying and opening each message \
         (medians over the combinations, outside the timed path), against a median delivery \
         p50 of {} ms.",
        format::ms(seal),
        format::ms(open),
        format::ms(p50)
    ))
}

/// Within this fraction of round-robin's p99, a strategy neither beat it nor lost.
const SAME: f64 = 0.05;

/// The uneven scenario's verdict: the lowest p99, and whether the load-aware strategies
/// beat round-robin. `rows` are `analysis::uneven_rows`.
pub(crate) fn uneven_verdict(rows: &[&Row]) -> Vec<String> {
    let Some(lowest) = rows
        .iter()
        .copied()
        .min_by(|a, b| a.p99_ms.total_cmp(&b.p99_ms))
    else {
        return Vec::new();
    };
    let mut out = Vec::new();
    if rows.len() == 1 {
        out.push(format!(
            "Only {} was measured under uneven load (p99 {} ms), so there is nothing to compare.",
            lowest.strategy,
            format::ms(lowest.p99_ms)
        ));
        return out;
    }
    out.push(format!(
        "The lowest p99 under uneven load came from {} ({} ms).",
        lowest.strategy,
        format::ms(lowest.p99_ms)
    ));
    let Some(rr) = rows.iter().find(|r| r.strategy == "round-robin") else {
        out.push(
            "Round-robin was not measured under uneven load, so nothing is compared with it."
                .into(),
        );
        return out;
    };
    let mut compared = false;
    for name in ["least-cpu", "p2c"] {
        let Some(r) = rows.iter().find(|r| r.strategy == name) else {
            continue;
        };
        compared = true;
        let f = r.p99_ms / rr.p99_ms;
        let verdict = if !f.is_finite() {
            "cannot be compared".to_owned()
        } else if f < 1.0 - SAME {
            "beat round-robin".to_owned()
        } else if f > 1.0 + SAME {
            "did worse than round-robin".to_owned()
        } else {
            "was within 5% of round-robin".to_owned()
        };
        out.push(format!(
            "{name} {verdict}: p99 {} ms against {} ms ({}).",
            format::ms(r.p99_ms),
            format::ms(rr.p99_ms),
            format::ratio(f)
        ));
    }
    if !compared {
        out.push("Neither least-cpu nor p2c was measured under uneven load.".into());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::analysis::{UNEVEN, fixtures::row};
    use super::*;

    fn uneven(strategy: &str, p99_ms: f64) -> Row {
        Row {
            scenario: UNEVEN.into(),
            p99_ms,
            ..row(2, 100, 1024, strategy)
        }
    }

    #[test]
    fn the_uneven_verdict_is_computed_from_the_rows() {
        let rows = [
            uneven("round-robin", 40.0),
            uneven("least-cpu", 12.0),
            uneven("p2c", 41.0),
        ];
        let refs: Vec<&Row> = rows.iter().collect();
        let verdict = uneven_verdict(&refs);
        assert_eq!(
            verdict,
            [
                "The lowest p99 under uneven load came from least-cpu (12.0 ms).",
                "least-cpu beat round-robin: p99 12.0 ms against 40.0 ms (0.30x).",
                "p2c was within 5% of round-robin: p99 41.0 ms against 40.0 ms (1.02x).",
            ]
        );
        let worse = [uneven("round-robin", 10.0), uneven("p2c", 20.0)];
        let refs: Vec<&Row> = worse.iter().collect();
        assert!(uneven_verdict(&refs)[1].starts_with("p2c did worse than round-robin"));
        let alone = [uneven("random", 10.0), uneven("p2c", 20.0)];
        let refs: Vec<&Row> = alone.iter().collect();
        assert!(uneven_verdict(&refs)[1].starts_with("Round-robin was not measured"));
        assert!(uneven_verdict(&[]).is_empty());
    }

    #[test]
    fn trends_follow_the_sweep() {
        let rows: Vec<Row> = [(10, 1.0), (50, 2.0), (100, 3.0)]
            .into_iter()
            .map(|(clients, p50_ms)| Row {
                p50_ms,
                ..row(1, clients, 1024, "round-robin")
            })
            .collect();
        let said = conclusions(&rows, false);
        assert!(
            said.contains(
                &"As the client count grows from 10 to 100 (1 KiB, 1 server, postgres, \
                  round-robin), p50 latency rose from 1.00 ms to 3.00 ms (3.00x)."
                    .to_owned()
            ),
            "{said:#?}"
        );
        assert!(
            said.iter()
                .any(|s| s.contains("delivered msg/s stayed within 10% (1,000 to 1,000)")),
            "{said:#?}"
        );
        assert_eq!(said[0], "No combination lost a message or had a send fail.");
        let mut both = rows.clone();
        both.extend(rows.iter().map(|r| Row {
            strategy: "random".into(),
            p50_ms: 1.0 + r.p50_ms / 100.0,
            ..r.clone()
        }));
        let said = conclusions(&both, false);
        assert!(
            said.contains(
                &"As the client count grows from 10 to 100 (1 KiB, 1 server, postgres), p50 \
                  latency moved by a different amount with each strategy (1.02x to 3.00x, from \
                  each strategy's first point to its last)."
                    .to_owned()
            ),
            "{said:#?}"
        );
        assert!(
            said.iter().any(|s| s.contains(
                "delivered msg/s stayed within 10% with every strategy (1.00x with each"
            )),
            "{said:#?}"
        );
        assert!(conclusions(&rows, true)[0].starts_with("The run was interrupted"));
        assert!(conclusions(&[], false).is_empty());
    }

    #[test]
    fn strategies_are_ranked_only_where_they_can_differ() {
        let one = [row(1, 10, 64, "round-robin"), row(1, 10, 64, "random")];
        let said = conclusions(&one, false);
        assert!(
            said.iter().any(|s| s.contains("are not ranked")),
            "{said:#?}"
        );
        let rows = [
            Row {
                p50_ms: 2.0,
                p99_ms: 9.0,
                ..row(2, 10, 64, "round-robin")
            },
            Row {
                p50_ms: 3.0,
                p99_ms: 5.0,
                in_msgs_per_s: 2000.0,
                ..row(2, 10, 64, "p2c")
            },
        ];
        let said = best_strategies(&rows);
        assert_eq!(
            said,
            [
                "In the one configuration with 2 servers or more measured with several \
                 strategies, the lowest p50 came from round-robin.",
                "In the one configuration with 2 servers or more measured with several \
                 strategies, the lowest p99 came from p2c.",
                "In the one configuration with 2 servers or more measured with several \
                 strategies, the most delivered msg/s came from p2c.",
            ]
        );
        let mut more = rows.to_vec();
        more.extend(rows.iter().map(|r| Row {
            clients: 50,
            p50_ms: 10.0 - r.p50_ms,
            ..r.clone()
        }));
        more.push(Row {
            p50_ms: 20.0,
            ..row(2, 50, 64, "random")
        });
        assert_eq!(
            best_strategies(&more)[0],
            "Of the 2 configurations with 2 servers or more measured with several \
             strategies, the lowest p50 came from p2c in 1, round-robin in 1."
        );
    }

    #[test]
    fn errors_are_counted() {
        let rows = [
            Row {
                errors: 3,
                ..row(1, 10, 64, "random")
            },
            row(1, 10, 1024, "random"),
        ];
        assert_eq!(
            errors(&rows),
            "1 of 2 combinations had errors (3 in all); their latencies cover only the \
             messages delivered."
        );
    }
}
