//! The outputs: `results.csv` (one row per combination, the contract's columns first) and
//! `report.md` (the machine, the command and the table).

use std::fmt::Write as _;
use std::path::Path;

use anyhow::Context;

use crate::run::Row;

const HEADER: &str = "servers,clients,size,strategy,messages,p50_ms,p90_ms,p99_ms,max_ms,\
out_msgs_per_s,in_msgs_per_s,out_bytes_per_s,in_bytes_per_s,errors,seal_ms,open_ms";

/// Writes `rows` as CSV.
///
/// # Errors
/// If the file cannot be written.
pub fn write_csv(rows: &[Row], path: &Path) -> anyhow::Result<()> {
    let mut out = String::from(HEADER);
    out.push('\n');
    for r in rows {
        let _ = writeln!(
            out,
            "{},{},{},{},{},{:.3},{:.3},{:.3},{:.3},{:.1},{:.1},{:.0},{:.0},{},{:.3},{:.3}",
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
        );
    }
    std::fs::write(path, out).with_context(|| format!("cannot write {}", path.display()))
}

/// The machine the bench ran on, for the report.
fn machine() -> String {
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
}

/// Writes the Markdown report.
///
/// # Errors
/// If the file cannot be written.
pub fn write_report(rows: &[Row], command: &str, path: &Path) -> anyhow::Result<()> {
    let mut out = String::from("# FastChat benchmark\n\n");
    let _ = writeln!(out, "- Command: `{command}`");
    let _ = writeln!(out, "- Machine: {}", machine());
    let _ = writeln!(
        out,
        "- FastChat {}, at {}",
        env!("CARGO_PKG_VERSION"),
        jiff::Timestamp::now()
    );
    out.push_str(
        "\nLatency is from just before a send to the recipient's push, in the one process \
         that drives every client (so the clients share the machine with the servers). \
         Sealing happens before the timed phase; `seal ms` and `open ms` are the client's \
         own cost per message, measured apart.\n\n",
    );
    out.push_str(
        "| servers | clients | size | strategy | messages | p50 ms | p90 ms | p99 ms | max ms \
         | out msg/s | in msg/s | out B/s | in B/s | errors | seal ms | open ms |\n",
    );
    out.push_str(
        "|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for r in rows {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {:.2} | {:.2} | {:.2} | {:.2} | {:.0} | {:.0} | {:.0} | {:.0} | {} | {:.2} | {:.2} |",
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
        );
    }
    out.push_str(
        "\nNot in this version yet: plots, the raw TCP and INSERT(+NOTIFY) baselines, \
         clients spread over several processes, and the uneven-load scenario.\n",
    );
    std::fs::write(path, out).with_context(|| format!("cannot write {}", path.display()))
}
