//! The outputs of a run, rewritten whole after every stage so an interrupted run keeps what
//! it measured: `results.csv` (one row per combination, the contract's columns first),
//! `baselines.csv`, PNG plots in `plots/` and `report.md`. Each file is written beside its
//! final name and renamed over it, so a reader never sees half a file.

pub(crate) mod analysis;
mod conclusions;
pub(crate) mod format;
mod markdown;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use anyhow::Context;

use crate::{Baseline, Findings, Row, plot};

/// The contract's columns, then ours. `tests/tiny.rs` reads the first ones by position.
const RESULTS_HEADER: &str = "servers,clients,size,strategy,messages,p50_ms,p90_ms,p99_ms,\
max_ms,out_msgs_per_s,in_msgs_per_s,out_bytes_per_s,in_bytes_per_s,errors,seal_ms,open_ms,\
scenario,database,processes,clients_per_server";

const BASELINES_HEADER: &str = "name,size,samples,p50_ms,p99_ms,per_s,concurrency";

/// Writes every output for `findings` into `out`, replacing what an earlier call wrote.
/// A plot that cannot be drawn is reported in `report.md` rather than failing the rest.
///
/// # Errors
/// If a CSV file or the report cannot be written.
pub fn write_all(findings: &Findings, out: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    write_atomically(&out.join("results.csv"), &results_csv(&findings.rows))?;
    write_atomically(
        &out.join("baselines.csv"),
        &baselines_csv(&findings.baselines),
    )?;
    let plotted = plot::write_plots(&findings.rows, &out.join("plots"));
    let context = markdown::Context {
        machine: machine().to_owned(),
        now: jiff::Timestamp::now()
            .strftime("%Y-%m-%d %H:%M:%S UTC")
            .to_string(),
    };
    write_atomically(
        &out.join("report.md"),
        &markdown::render(findings, &plotted, &context),
    )
}

fn results_csv(rows: &[Row]) -> String {
    let mut out = format!("{RESULTS_HEADER}\n");
    for r in rows {
        // Writing into a String cannot fail.
        let _ = writeln!(
            out,
            "{},{},{},{},{},{:.3},{:.3},{:.3},{:.3},{:.1},{:.1},{:.0},{:.0},{},{:.3},{:.3},{},{},{},{}",
            r.servers,
            r.clients,
            r.size,
            r.strategy,
            r.messages,
            r.p50_ms,
            r.p90_ms,
            r.p99_ms,
            r.max_ms,
            r.out_msgs_per_s,
            r.in_msgs_per_s,
            r.out_bytes_per_s,
            r.in_bytes_per_s,
            r.errors,
            r.seal_ms,
            r.open_ms,
            r.scenario,
            r.database,
            r.processes,
            r.clients_per_server,
        );
    }
    out
}

fn baselines_csv(baselines: &[Baseline]) -> String {
    let mut out = format!("{BASELINES_HEADER}\n");
    for b in baselines {
        let _ = writeln!(
            out,
            "{},{},{},{:.4},{:.4},{:.1},{}",
            b.name, b.size, b.samples, b.p50_ms, b.p99_ms, b.per_s, b.concurrency
        );
    }
    out
}

/// A hidden name beside `path` in the same folder (so a rename replaces `path` whole),
/// keeping its extension, which some writers go by.
pub(crate) fn temporary_beside(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let temporary = match name.rsplit_once('.') {
        Some((stem, extension)) => format!(".{stem}.tmp.{extension}"),
        None => format!(".{name}.tmp"),
    };
    path.with_file_name(temporary)
}

fn write_atomically(path: &Path, contents: &str) -> anyhow::Result<()> {
    let temporary = temporary_beside(path);
    std::fs::write(&temporary, contents)
        .with_context(|| format!("cannot write {}", temporary.display()))?;
    std::fs::rename(&temporary, path).with_context(|| {
        format!(
            "cannot rename {} to {}",
            temporary.display(),
            path.display()
        )
    })
}

/// The machine the bench ran on, for the report; looked up once per run.
fn machine() -> &'static str {
    static MACHINE: OnceLock<String> = OnceLock::new();
    MACHINE.get_or_init(|| {
        let mut system = sysinfo::System::new().ok();
        let (cpus, brand, memory) = match system.as_mut() {
            Some(s) => {
                s.refresh_cpu_all();
                s.refresh_memory();
                (
                    s.cpus().len(),
                    s.cpus()
                        .first()
                        .map(|c| c.brand().trim().to_owned())
                        .unwrap_or_default(),
                    s.total_memory() / (1024 * 1024),
                )
            }
            None => (0, String::new(), 0),
        };
        format!(
            "{cpus} CPUs ({brand}), {memory} MiB of memory, {} {}",
            sysinfo::System::long_os_version().unwrap_or_default(),
            std::env::consts::ARCH
        )
    })
}

#[cfg(test)]
mod tests {
    use super::analysis::fixtures::{baseline, row};
    use super::*;

    #[test]
    fn the_contracts_columns_come_first() {
        let contract = [
            "servers",
            "clients",
            "size",
            "strategy",
            "messages",
            "p50_ms",
            "p90_ms",
            "p99_ms",
            "max_ms",
            "out_msgs_per_s",
            "in_msgs_per_s",
            "out_bytes_per_s",
            "in_bytes_per_s",
            "errors",
        ];
        let csv = results_csv(&[Row {
            scenario: "uneven".into(),
            processes: 3,
            ..row(2, 10, 1024, "p2c")
        }]);
        let mut lines = csv.lines();
        let header: Vec<&str> = lines.next().expect("a header").split(',').collect();
        assert_eq!(header[..contract.len()], contract);
        let cells: Vec<&str> = lines.next().expect("a row").split(',').collect();
        assert_eq!(cells.len(), header.len());
        assert_eq!(cells[..5], ["2", "10", "1024", "p2c", "100"]);
        assert_eq!(cells[5], "1.000");
        assert_eq!(cells[13], "0");
        assert_eq!(cells[16..], ["uneven", "postgres", "3", "10"]);
        assert_eq!(lines.next(), None);
    }

    #[test]
    fn temporary_names_keep_the_extension() {
        assert_eq!(
            temporary_beside(Path::new("out/plots/latency-vs-size.png")),
            Path::new("out/plots/.latency-vs-size.tmp.png")
        );
        assert_eq!(
            temporary_beside(Path::new("out/report")),
            Path::new("out/.report.tmp")
        );
    }

    #[test]
    fn write_all_writes_everything_and_overwrites_cleanly() {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let out = dir.path().join("run");
        let mut findings = Findings {
            command: "fastchat-bench".into(),
            planned: 4,
            baselines: vec![baseline("tcp", 64, 0.05, 0.1)],
            ..Findings::default()
        };
        // Before any combination: the files exist, with headers only.
        write_all(&findings, &out).expect("written");
        let results = std::fs::read_to_string(out.join("results.csv")).expect("results.csv");
        assert_eq!(results.lines().count(), 1);
        let baselines = std::fs::read_to_string(out.join("baselines.csv")).expect("csv");
        assert_eq!(
            baselines,
            format!("{BASELINES_HEADER}\ntcp,64,500,0.0500,0.1000,4000.0,8\n")
        );

        for (clients, size) in [(10, 64), (10, 1024), (50, 64), (50, 1024)] {
            findings.rows.push(row(1, clients, size, "round-robin"));
            write_all(&findings, &out).expect("written again");
        }
        let results = std::fs::read_to_string(out.join("results.csv")).expect("results.csv");
        assert_eq!(results.lines().count(), 5);
        let report = std::fs::read_to_string(out.join("report.md")).expect("report.md");
        assert!(report.contains("all 4 combinations planned were measured"));
        for plot in ["latency-vs-size", "throughput-vs-clients"] {
            assert!(
                report.contains(&format!("(plots/{plot}.png)")),
                "{plot} in {report}"
            );
            assert!(out.join("plots").join(format!("{plot}.png")).is_file());
        }
        // Nothing temporary is left behind.
        for folder in [out.clone(), out.join("plots")] {
            for entry in std::fs::read_dir(&folder).expect("a folder") {
                let name = entry.expect("an entry").file_name();
                assert!(
                    !name.to_string_lossy().contains(".tmp"),
                    "{name:?} left in {}",
                    folder.display()
                );
            }
        }
    }
}
