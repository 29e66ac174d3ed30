//! A tiny matrix through the real `fastchat-bench` binary: one CSV row per combination, with
//! values that make sense, and the report beside it.

use std::path::Path;
use std::process::Command;

use fastchat_server::testing::TestDatabase;

fn bench(out: &Path, extra: &[&str]) {
    let status = Command::new(env!("CARGO_BIN_EXE_fastchat-bench"))
        .args([
            "--baseline-samples",
            "20",
            "--clients",
            "3",
            "--sizes",
            "64,2048",
            "--messages",
            "7",
            "--out",
        ])
        .arg(out)
        .args(extra)
        .env("RUST_LOG", "warn")
        .status()
        .expect("fastchat-bench runs");
    assert!(status.success(), "fastchat-bench failed: {status}");
}

fn rows(out: &Path) -> Vec<Vec<String>> {
    let csv = std::fs::read_to_string(out.join("results.csv")).expect("results.csv");
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().expect("a header").split(',').collect();
    for column in [
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
    ] {
        assert!(header.contains(&column), "results.csv has {column}");
    }
    lines
        .map(|l| l.split(',').map(str::to_owned).collect())
        .collect()
}

fn number(row: &[String], i: usize) -> f64 {
    row[i]
        .parse()
        .unwrap_or_else(|_| panic!("column {i} is a number: {row:?}"))
}

fn check(row: &[String], servers: &str, size: f64) {
    assert_eq!(row[0], servers);
    assert_eq!(row[1], "3");
    assert_eq!(
        number(row, 4),
        21.0,
        "3 clients x 7 messages delivered: {row:?}"
    );
    let (p50, p90, p99, max) = (
        number(row, 5),
        number(row, 6),
        number(row, 7),
        number(row, 8),
    );
    assert!(
        0.0 < p50 && p50 <= p90 && p90 <= p99 && p99 <= max,
        "{row:?}"
    );
    assert!(max < 10_000.0, "no message took 10 s: {row:?}");
    assert!(number(row, 9) > 0.0 && number(row, 10) > 0.0, "{row:?}");
    // Sealed envelopes are larger than their text.
    assert!(number(row, 11) > size * number(row, 9) * 0.5, "{row:?}");
    assert_eq!(row[13], "0", "no errors: {row:?}");
}

#[test]
fn a_tiny_matrix_gives_one_sane_row_per_combination() {
    let dir = tempfile::tempdir().expect("temp dir");
    bench(dir.path(), &["--strategies", "round-robin,random"]);
    let rows = rows(dir.path());
    assert_eq!(rows.len(), 4, "2 sizes x 2 strategies");
    let combos: Vec<(String, String)> = rows.iter().map(|r| (r[2].clone(), r[3].clone())).collect();
    assert_eq!(
        combos,
        [
            ("64", "round-robin"),
            ("64", "random"),
            ("2048", "round-robin"),
            ("2048", "random")
        ]
        .map(|(a, b)| (a.to_owned(), b.to_owned()))
    );
    for row in &rows {
        check(row, "1", number(row, 2));
    }
    let report = std::fs::read_to_string(dir.path().join("report.md")).expect("report.md");
    assert!(report.contains("| servers | clients | size | strategy |"));
    assert_eq!(
        report.matches("\n| 1 | 3 |").count(),
        4,
        "a table row per combination"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgresql_servers_uneven_load_and_capacity() {
    let Some(db) = TestDatabase::create().await else {
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let out = dir.path().to_owned();
    let url = db.url.clone();
    tokio::task::spawn_blocking(move || {
        bench(
            &out,
            &[
                "--servers",
                "2",
                "--strategies",
                "least-connections,least-cpu",
                "--uneven",
                "8",
                "--connections",
                "300",
                "--database-url",
                &url,
            ],
        );
    })
    .await
    .expect("the bench ran");
    let csv = read(dir.path(), "results.csv");
    let rows = rows(dir.path());
    assert_eq!(
        rows.len(),
        6,
        "2 sizes x 2 strategies, then 2 uneven: {csv}"
    );
    assert_eq!(
        column(&csv, "scenario"),
        ["even", "even", "even", "even", "uneven", "uneven"]
    );
    assert!(column(&csv, "database").iter().all(|d| d == "postgres"));
    // Where each strategy put the 3 clients, over the 2 servers.
    for placed in column(&csv, "clients_per_server") {
        let counts: Vec<usize> = placed
            .split('/')
            .map(|n| n.parse().expect("a count"))
            .collect();
        assert_eq!((counts.len(), counts.iter().sum()), (2, 3), "{csv}");
    }
    for row in &rows {
        check(row, "2", number(row, 2));
    }
    let baselines = read(dir.path(), "baselines.csv");
    assert!(
        baselines.contains("postgres-insert-notify,64,")
            && baselines.contains("postgres-insert-notify,2048,"),
        "{baselines}"
    );
    let report = read(dir.path(), "report.md");
    assert!(report.contains("postgres-insert-notify"), "{report}");
    let capacity = read(dir.path(), "capacity.csv");
    assert_eq!(column(&capacity, "connections"), ["300"], "{capacity}");
    let rss: f64 = column(&capacity, "rss_mib")[0].parse().expect("a number");
    assert!(rss > 1.0 && rss < 2_000.0, "{capacity}");
}

fn read(out: &Path, name: &str) -> String {
    std::fs::read_to_string(out.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// A column of a CSV file, by its header.
fn column(csv: &str, name: &str) -> Vec<String> {
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().expect("a header").split(',').collect();
    let i = header
        .iter()
        .position(|h| *h == name)
        .unwrap_or_else(|| panic!("no column {name} in {header:?}"));
    lines
        .map(|l| l.split(',').nth(i).expect("a full row").to_owned())
        .collect()
}

#[test]
fn baselines_and_plots_come_with_the_matrix() {
    let dir = tempfile::tempdir().expect("temp dir");
    bench(dir.path(), &["--strategies", "round-robin"]);
    let baselines = read(dir.path(), "baselines.csv");
    let names = column(&baselines, "name");
    let sizes = column(&baselines, "size");
    for (name, size) in [
        ("tcp", "64"),
        ("tcp", "2048"),
        ("sqlite-insert", "64"),
        ("sqlite-insert", "2048"),
    ] {
        assert!(
            names
                .iter()
                .zip(&sizes)
                .any(|(n, s)| n == name && s == size),
            "a {name} baseline at {size} B: {baselines}"
        );
    }
    for p50 in column(&baselines, "p50_ms") {
        let p50: f64 = p50.parse().expect("a number");
        assert!(p50 > 0.0 && p50 < 1000.0, "{baselines}");
    }
    // Two sizes: latency and throughput against size are plotted.
    let plots: Vec<_> = std::fs::read_dir(dir.path().join("plots"))
        .expect("plots/")
        .map(|e| e.expect("an entry").path())
        .collect();
    assert!(!plots.is_empty(), "at least one plot");
    for plot in &plots {
        let bytes = std::fs::read(plot).expect("a plot");
        assert!(
            bytes.starts_with(b"\x89PNG\r\n\x1a\n") && bytes.len() > 2_000,
            "{} is a real PNG",
            plot.display()
        );
        let name = plot
            .file_name()
            .expect("a name")
            .to_string_lossy()
            .into_owned();
        assert!(
            read(dir.path(), "report.md").contains(&format!("plots/{name}")),
            "the report shows {name}"
        );
    }
    let report = read(dir.path(), "report.md");
    assert!(report.contains("sqlite-insert"), "baselines in the report");
}

#[test]
fn clients_spread_over_processes_all_deliver() {
    let dir = tempfile::tempdir().expect("temp dir");
    let status = Command::new(env!("CARGO_BIN_EXE_fastchat-bench"))
        .args(["--clients", "6", "--sizes", "512", "--messages", "5"])
        .args(["--processes", "3", "--baseline-samples", "0", "--out"])
        .arg(dir.path())
        .env("RUST_LOG", "warn")
        .status()
        .expect("fastchat-bench runs");
    assert!(status.success(), "{status}");
    let csv = read(dir.path(), "results.csv");
    assert_eq!(column(&csv, "processes"), ["3"]);
    assert_eq!(
        column(&csv, "messages"),
        ["30"],
        "6 clients x 5, all delivered"
    );
    assert_eq!(column(&csv, "errors"), ["0"]);
}

#[test]
fn bad_flags_are_refused_with_a_reason() {
    for (args, reason) in [
        (&["--servers", "2"][..], "--database-url"),
        (
            &["--clients", "3", "--processes", "2"][..],
            "at least 2 clients",
        ),
        (&["--rate", "0"][..], "positive"),
        (&["--strategies", "fastest"][..], "not a strategy"),
        (&["--uneven", "4"][..], "postgres"),
    ] {
        let output = Command::new(env!("CARGO_BIN_EXE_fastchat-bench"))
            .args(args)
            .arg("--out")
            .arg(std::env::temp_dir().join("fastchat-bench-refused"))
            .output()
            .expect("fastchat-bench runs");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{args:?} is refused");
        assert!(stderr.contains(reason), "{args:?}: {stderr}");
    }
}

#[cfg(unix)]
#[test]
fn ctrl_c_keeps_what_was_measured() {
    use std::time::{Duration, Instant};

    let dir = tempfile::tempdir().expect("temp dir");
    let mut child = Command::new(env!("CARGO_BIN_EXE_fastchat-bench"))
        .args([
            "--clients",
            "2",
            "--sizes",
            "64,128,256,512,1024,2048,4096,8192",
        ])
        .args(["--messages", "20", "--baseline-samples", "0", "--out"])
        .arg(dir.path())
        .env("RUST_LOG", "warn")
        .spawn()
        .expect("fastchat-bench runs");
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let measured = std::fs::read_to_string(dir.path().join("results.csv"))
            .map(|csv| csv.lines().count() > 1)
            .unwrap_or(false);
        if measured {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no combination measured in 2 minutes"
        );
        assert!(
            child.try_wait().expect("waits").is_none(),
            "ended too early"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let interrupt = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(interrupt.success());
    let status = child.wait().expect("it exits");
    assert!(
        status.success(),
        "an interrupted run still exits 0: {status}"
    );
    let rows = column(&read(dir.path(), "results.csv"), "size").len();
    assert!(
        (1..8).contains(&rows),
        "some but not all combinations: {rows}"
    );
    let report = read(dir.path(), "report.md");
    assert!(
        report.contains(&format!("interrupted after {rows} of 8")),
        "the report says so: {report}"
    );
}
