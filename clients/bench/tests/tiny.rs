//! A tiny matrix through the real `fastchat-bench` binary: one CSV row per combination, with
//! values that make sense, and the report beside it.

use std::path::Path;
use std::process::Command;

use fastchat_server::testing::TestDatabase;

fn bench(out: &Path, extra: &[&str]) {
    let status = Command::new(env!("CARGO_BIN_EXE_fastchat-bench"))
        .args([
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
        report.matches("| 1 | 3 |").count(),
        4,
        "a table row per combination"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_servers_share_postgresql() {
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
                "least-connections",
                "--database-url",
                &url,
            ],
        );
    })
    .await
    .expect("the bench ran");
    let rows = rows(dir.path());
    assert_eq!(rows.len(), 2);
    for row in &rows {
        assert_eq!(row[3], "least-connections");
        check(row, "2", number(row, 2));
    }
}
