//! PNG plots of the rows, drawn with plotters on a bitmap and labelled with DejaVu Sans,
//! embedded so that no system font library is needed: latency and throughput along each
//! sweep of the matrix (one line per strategy), and latency per strategy under uneven load.
//! Charts are described first (pure, tested) and drawn second; each PNG is drawn under a
//! temporary name and renamed, so a half-drawn plot never exists.

mod draw;

use std::path::Path;

use anyhow::{Context, anyhow};

use crate::report::analysis::{self, Sweep, Variable};
use crate::report::{format, temporary_beside};
use crate::{Row, Strategy};

/// A plot written, or why it could not be.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Plotted {
    /// The file name inside `plots/`.
    pub file: String,
    pub title: String,
    pub error: Option<String>,
}

/// What the y axis of a line chart shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Measure {
    LatencyMs,
    MessagesPerSecond,
}

/// A line chart, before it is drawn.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Chart {
    pub file: String,
    pub title: String,
    pub variable: Variable,
    pub measure: Measure,
    /// Whether the y axis is logarithmic (when the values span more than `LOG_SPAN`).
    pub y_log: bool,
    pub series: Vec<Series>,
}

/// One line: a strategy's p50 or p99, messages in or out.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Series {
    pub label: String,
    /// The strategy's place in `Strategy::ALL`, which picks the colour.
    pub color: usize,
    pub dashed: bool,
    pub points: Vec<(f64, f64)>,
}

/// Latency per strategy under uneven load: p50 and p99 side by side.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Bars {
    pub file: String,
    pub title: String,
    pub strategies: Vec<String>,
    pub p50_ms: Vec<f64>,
    pub p99_ms: Vec<f64>,
}

/// Values spanning more than this factor get a logarithmic axis.
const LOG_SPAN: f64 = 20.0;

#[allow(clippy::cast_precision_loss)]
fn x_of(variable: Variable, row: &Row) -> f64 {
    variable.of(row) as f64
}

fn color_index(strategy: &str, fallback: usize) -> usize {
    Strategy::ALL
        .iter()
        .position(|s| *s == strategy)
        .unwrap_or(Strategy::ALL.len() + fallback)
}

fn axis_name(variable: Variable) -> &'static str {
    match variable {
        Variable::Size => "message size",
        Variable::Clients => "clients",
        Variable::Servers => "servers",
    }
}

/// Two series per strategy along a sweep: `first` solid, `second` dashed.
fn pairs(
    sweep: &Sweep<'_>,
    first: (&str, fn(&Row) -> f64),
    second: (&str, fn(&Row) -> f64),
) -> Vec<Series> {
    let mut series = Vec::new();
    for (i, line) in sweep.lines.iter().enumerate() {
        for ((name, value), dashed) in [(first, false), (second, true)] {
            series.push(Series {
                label: format!("{} {name}", line.strategy),
                color: color_index(line.strategy, i),
                dashed,
                points: line
                    .points
                    .iter()
                    .map(|r| (x_of(sweep.variable, r), value(r)))
                    .collect(),
            });
        }
    }
    series
}

fn spans_widely(series: &[Series]) -> bool {
    let ys = series.iter().flat_map(|s| s.points.iter().map(|p| p.1));
    let (lo, hi) = ys.fold((f64::INFINITY, 0.0f64), |(lo, hi), y| {
        (lo.min(y), hi.max(y))
    });
    lo > 0.0 && hi / lo > LOG_SPAN
}

fn latency_chart(sweep: &Sweep<'_>) -> Chart {
    let series = pairs(sweep, ("p50", |r| r.p50_ms), ("p99", |r| r.p99_ms));
    Chart {
        file: format!("latency-vs-{}.png", sweep.variable.name()),
        title: format!(
            "Latency vs {}: p50 solid, p99 dashed ({})",
            axis_name(sweep.variable),
            sweep.held
        ),
        variable: sweep.variable,
        measure: Measure::LatencyMs,
        y_log: spans_widely(&series),
        series,
    }
}

fn throughput_chart(sweep: &Sweep<'_>) -> Chart {
    Chart {
        file: format!("throughput-vs-{}.png", sweep.variable.name()),
        title: format!(
            "Throughput vs {}: delivered solid, sent dashed ({})",
            axis_name(sweep.variable),
            sweep.held
        ),
        variable: sweep.variable,
        measure: Measure::MessagesPerSecond,
        y_log: false,
        series: pairs(
            sweep,
            ("in", |r| r.in_msgs_per_s),
            ("out", |r| r.out_msgs_per_s),
        ),
    }
}

/// A latency and a throughput chart for each sweep.
pub(crate) fn line_charts(rows: &[Row]) -> Vec<Chart> {
    analysis::sweeps(rows)
        .iter()
        .flat_map(|s| [latency_chart(s), throughput_chart(s)])
        .collect()
}

/// The uneven scenario's chart, when it ran.
pub(crate) fn uneven_bars(rows: &[Row]) -> Option<Bars> {
    let compared = analysis::uneven_rows(rows);
    let first = compared.first()?;
    Some(Bars {
        file: "uneven.png".into(),
        title: format!(
            "Uneven load, server 1 kept busy: latency per strategy ({} servers, {} clients, {}, {})",
            first.servers,
            first.clients,
            format::size(first.size),
            first.database
        ),
        strategies: compared.iter().map(|r| r.strategy.clone()).collect(),
        p50_ms: compared.iter().map(|r| r.p50_ms).collect(),
        p99_ms: compared.iter().map(|r| r.p99_ms).collect(),
    })
}

/// Draws every plot the rows allow into `dir`, and removes plots of ours that no longer
/// apply. Failures are returned per plot, not raised: the report says what went wrong.
pub(crate) fn write_plots(rows: &[Row], dir: &Path) -> Vec<Plotted> {
    let charts = line_charts(rows);
    let bars = uneven_bars(rows);
    if charts.is_empty() && bars.is_none() {
        remove_stale(dir, &[]);
        return Vec::new();
    }
    let mut plotted = Vec::new();
    let ready = draw::font().and_then(|()| {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))
    });
    let mut record = |file: &str, title: &str, drawn: anyhow::Result<()>| {
        plotted.push(Plotted {
            file: file.to_owned(),
            title: title.to_owned(),
            error: drawn.err().map(|e| format!("{e:#}")),
        });
    };
    for chart in &charts {
        let drawn = match &ready {
            Ok(()) => publish(&dir.join(&chart.file), |path| draw::chart(chart, path)),
            Err(e) => Err(anyhow!("{e:#}")),
        };
        record(&chart.file, &chart.title, drawn);
    }
    if let Some(bars) = &bars {
        let drawn = match &ready {
            Ok(()) => publish(&dir.join(&bars.file), |path| draw::bars(bars, path)),
            Err(e) => Err(anyhow!("{e:#}")),
        };
        record(&bars.file, &bars.title, drawn);
    }
    // A plot that failed goes too: an older version would not match the report.
    let kept: Vec<&str> = plotted
        .iter()
        .filter(|p| p.error.is_none())
        .map(|p| p.file.as_str())
        .collect();
    remove_stale(dir, &kept);
    plotted
}

/// Draws into a temporary file beside `path` and renames it over `path`.
fn publish(path: &Path, draw: impl FnOnce(&Path) -> anyhow::Result<()>) -> anyhow::Result<()> {
    let temporary = temporary_beside(path);
    let drawn = draw(&temporary).and_then(|()| {
        std::fs::rename(&temporary, path).with_context(|| {
            format!(
                "cannot rename {} to {}",
                temporary.display(),
                path.display()
            )
        })
    });
    if drawn.is_err() {
        let _ = std::fs::remove_file(&temporary);
    }
    drawn
}

/// Our plots that are not in `kept`, and temporary files a crash left behind.
fn remove_stale(dir: &Path, kept: &[&str]) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let ours = name.ends_with(".png")
            && (name.starts_with("latency-vs-")
                || name.starts_with("throughput-vs-")
                || name == "uneven.png"
                || (name.starts_with('.') && name.contains(".tmp.")));
        if ours && !kept.contains(&name.as_str()) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::analysis::fixtures::row;

    fn matrix() -> Vec<Row> {
        let mut rows = Vec::new();
        for clients in [10, 100] {
            for size in [64, 1024, 16_384] {
                for (strategy, slower) in [("round-robin", 1.0), ("p2c", 1.5)] {
                    #[allow(clippy::cast_precision_loss)]
                    let p50_ms = slower * (clients as f64 / 10.0) * (size as f64 / 64.0).sqrt();
                    rows.push(Row {
                        p50_ms,
                        p99_ms: p50_ms * 4.0,
                        ..row(1, clients, size, strategy)
                    });
                }
            }
        }
        rows
    }

    #[test]
    fn charts_follow_the_variables_that_vary() {
        let charts = line_charts(&matrix());
        let files: Vec<&str> = charts.iter().map(|c| c.file.as_str()).collect();
        assert_eq!(
            files,
            [
                "latency-vs-size.png",
                "throughput-vs-size.png",
                "latency-vs-clients.png",
                "throughput-vs-clients.png"
            ]
        );
        let by_size = &charts[0];
        assert_eq!(
            by_size.title,
            "Latency vs message size: p50 solid, p99 dashed (10 clients, 1 server, postgres)"
        );
        let labels: Vec<(&str, bool)> = by_size
            .series
            .iter()
            .map(|s| (s.label.as_str(), s.dashed))
            .collect();
        assert_eq!(
            labels,
            [
                ("round-robin p50", false),
                ("round-robin p99", true),
                ("p2c p50", false),
                ("p2c p99", true)
            ]
        );
        assert_eq!(
            by_size.series[0].points,
            [(64.0, 1.0), (1024.0, 4.0), (16_384.0, 16.0)]
        );
        // 1 ms to 96 ms: a log axis; throughput stays linear.
        assert!(by_size.y_log);
        assert!(!charts[1].y_log);
        assert_eq!(by_size.series[2].color, 3, "p2c's place in Strategy::ALL");
        // A single row gives nothing to plot.
        assert!(line_charts(&matrix()[..1]).is_empty());
        assert_eq!(uneven_bars(&matrix()), None);
    }

    fn assert_png(path: &Path) {
        let bytes = std::fs::read(path).expect("the plot exists");
        assert!(
            bytes.len() > 1000,
            "{} is {} bytes",
            path.display(),
            bytes.len()
        );
        assert_eq!(bytes[..8], *b"\x89PNG\r\n\x1a\n", "{}", path.display());
    }

    #[test]
    fn plots_are_real_pngs_and_stale_ones_go() {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let plots = dir.path().join("plots");
        let mut rows = matrix();
        for (strategy, p99_ms) in [("round-robin", 40.0), ("least-cpu", 12.0), ("p2c", 20.0)] {
            rows.push(Row {
                scenario: "uneven".into(),
                p99_ms,
                ..row(2, 100, 1024, strategy)
            });
        }
        for (strategy, p50_ms) in [("round-robin", 0.8), ("p2c", 0.7)] {
            rows.push(Row {
                p50_ms,
                p99_ms: 3.0,
                out_msgs_per_s: 1800.0,
                in_msgs_per_s: 1700.0,
                ..row(3, 10, 64, strategy)
            });
        }
        // Left by an earlier run: a plot that no longer applies, and a half-drawn one.
        std::fs::create_dir_all(&plots).expect("plots/");
        std::fs::write(plots.join("latency-vs-wind.png"), b"old").expect("written");
        std::fs::write(plots.join(".uneven.tmp.png"), b"half").expect("written");
        std::fs::write(plots.join("notes.txt"), b"mine").expect("written");

        let written = write_plots(&rows, &plots);
        assert_eq!(written.len(), 7);
        for p in &written {
            assert_eq!(p.error, None, "{p:?}");
            assert_png(&plots.join(&p.file));
        }
        let mut left: Vec<String> = std::fs::read_dir(&plots)
            .expect("plots/")
            .map(|e| {
                e.expect("an entry")
                    .file_name()
                    .to_string_lossy()
                    .into_owned()
            })
            .collect();
        left.sort();
        assert_eq!(
            left,
            [
                "latency-vs-clients.png",
                "latency-vs-servers.png",
                "latency-vs-size.png",
                "notes.txt",
                "throughput-vs-clients.png",
                "throughput-vs-servers.png",
                "throughput-vs-size.png",
                "uneven.png"
            ]
        );
        // Drawn again over the same files: still whole PNGs.
        assert_eq!(write_plots(&rows, &plots).len(), 7);
        assert_png(&plots.join("uneven.png"));
        // No rows: nothing drawn, nothing of ours left.
        assert!(write_plots(&[], &plots).is_empty());
        assert!(!plots.join("uneven.png").exists());
        assert!(plots.join("notes.txt").exists());
    }
}
