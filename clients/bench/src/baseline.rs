//! Baselines, measured in the same run so that FastChat's figures are ratios: what the
//! machine allows without FastChat in the way.
//!
//! - `tcp`: a raw loopback TCP ping-pong of `size` bytes each way (one connection, one
//!   message in flight): the floor for any request over the network stack.
//! - `sqlite-insert`: a single-row INSERT of `size` bytes into an SQLite file (WAL, as the
//!   server opens it), one at a time, committed.
//! - `postgres-insert-notify`: a single-row INSERT of `size` bytes in a transaction, then a
//!   NOTIFY sent as the server's PostgreSQL store sends it (after the commit, outside the
//!   writing transaction), timed until a second connection that LISTENs receives the
//!   notification: the store's half of a delivery with nothing else in the way.
//!
//! Latencies are one operation at a time; `per_s` is one connection's sequential rate for
//! `tcp` and `sqlite-insert` (SQLite has one writer), and four connections storing at once
//! (not waiting for the notifications) for PostgreSQL.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU32, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};
use sqlx::postgres::PgListener;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};
use sqlx::{AssertSqlSafe, ConnectOptions, Connection, PgConnection, SqliteConnection};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;

use crate::{ms, per_second};

/// One baseline at one payload size.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Baseline {
    /// `tcp`, `sqlite-insert` or `postgres-insert-notify`.
    pub name: String,
    pub size: usize,
    /// Round trips timed.
    pub samples: u64,
    /// Round trip of one operation, one at a time.
    pub p50_ms: f64,
    pub p99_ms: f64,
    /// Operations per second with `concurrency` connections working at once.
    pub per_s: f64,
    pub concurrency: usize,
}

/// Connections committing at once for PostgreSQL's throughput figure.
const PG_CONCURRENCY: usize = 4;
/// How long PostgreSQL's throughput phase runs, per size.
const RATE_WINDOW: Duration = Duration::from_secs(1);
/// The longest one operation may take before the measurement is abandoned.
const TIMEOUT: Duration = Duration::from_secs(10);

/// The versions a report should name: the compiler that built the bench, SQLite (bundled)
/// and, for a PostgreSQL run, the server's. Ones that cannot be read are left out.
pub async fn versions(database_url: Option<&str>) -> Vec<String> {
    let mut versions = vec![env!("FASTCHAT_RUSTC_VERSION").to_owned()];
    if let Ok(mut conn) = SqliteConnection::connect("sqlite::memory:").await {
        if let Ok(v) = sqlx::query_scalar::<_, String>("SELECT sqlite_version()")
            .fetch_one(&mut conn)
            .await
        {
            versions.push(format!("SQLite {v}"));
        }
        let _ = conn.close().await;
    }
    if let Some(url) = database_url.filter(|u| u.starts_with("postgres"))
        && let Ok(mut conn) = PgConnection::connect(url).await
    {
        if let Ok(v) = sqlx::query_scalar::<_, String>("SHOW server_version")
            .fetch_one(&mut conn)
            .await
        {
            versions.push(format!("PostgreSQL {v}"));
        }
        let _ = conn.close().await;
    }
    versions.retain(|v| !v.is_empty());
    versions
}

/// Measures every baseline at every size: `samples` operations each, timed one at a time
/// after a short warm-up. `tcp` and `sqlite-insert` always (SQLite files go in `scratch`);
/// `postgres-insert-notify` only when `database_url` is a PostgreSQL URL, in a table and on
/// a channel of its own that are dropped at the end.
///
/// # Errors
/// Says which baseline failed and why (a PostgreSQL that cannot be reached, a file that
/// cannot be created, an operation that timed out, ...).
pub async fn measure(
    sizes: &[usize],
    database_url: Option<&str>,
    scratch: &Path,
    samples: u32,
) -> anyhow::Result<Vec<Baseline>> {
    if samples == 0 {
        bail!("a baseline needs at least one sample");
    }
    let mut baselines = Vec::new();
    for &size in sizes {
        baselines.push(
            tcp(size, samples)
                .await
                .with_context(|| format!("tcp baseline at {size} B"))?,
        );
    }
    for &size in sizes {
        baselines.push(
            sqlite_insert(size, scratch, samples)
                .await
                .with_context(|| format!("sqlite-insert baseline at {size} B"))?,
        );
    }
    if let Some(url) = database_url.filter(|url| url.starts_with("postgres")) {
        baselines.extend(
            postgres_insert_notify(sizes, url, samples)
                .await
                .context("postgres-insert-notify baseline")?,
        );
    }
    Ok(baselines)
}

/// Operations run and thrown away before timing: connections, caches and the file system
/// settle first.
fn warm_up(samples: u32) -> u32 {
    (samples / 10).clamp(3, 100)
}

/// One-at-a-time latencies, in microseconds.
struct Latencies(Histogram<u64>);

impl Latencies {
    fn new() -> anyhow::Result<Self> {
        // 1 µs to an hour at 3 significant digits.
        Histogram::new_with_bounds(1, 3_600_000_000, 3)
            .map(Latencies)
            .map_err(|e| anyhow!("cannot create a histogram: {e:?}"))
    }

    fn record(&mut self, elapsed: Duration) {
        // Floor at 1 µs: the histogram's lowest value, and a p50 of 0 would be no figure.
        let micros = u64::try_from(elapsed.as_micros())
            .unwrap_or(u64::MAX)
            .max(1);
        self.0.saturating_record(micros);
    }

    fn baseline(&self, name: &str, size: usize, per_s: f64, concurrency: usize) -> Baseline {
        Baseline {
            name: name.into(),
            size,
            samples: self.0.len(),
            p50_ms: ms(self.0.value_at_quantile(0.5)),
            p99_ms: ms(self.0.value_at_quantile(0.99)),
            per_s,
            concurrency,
        }
    }
}

/// `size` random bytes: envelopes are ciphertext, and compressible bytes would flatter
/// PostgreSQL (it compresses large values).
fn payload(size: usize) -> anyhow::Result<Vec<u8>> {
    let mut bytes = vec![0u8; size];
    getrandom::fill(&mut bytes).map_err(|e| anyhow!("no randomness: {e}"))?;
    Ok(bytes)
}

/// Makes each row's payload differ from the last, cheaply.
fn stamp(payload: &mut [u8], n: i64) {
    let tag = n.to_le_bytes();
    let len = payload.len().min(tag.len());
    payload[..len].copy_from_slice(&tag[..len]);
}

/// A client message id for row `n`, as the server's unique key holds one.
fn client_msg_id(n: i64) -> [u8; 16] {
    let mut id = [0u8; 16];
    id[8..].copy_from_slice(&n.to_be_bytes());
    id
}

async fn within<T>(
    what: &str,
    operation: impl Future<Output = anyhow::Result<T>>,
) -> anyhow::Result<T> {
    tokio::time::timeout(TIMEOUT, operation)
        .await
        .map_err(|_| anyhow!("{what} took more than {} s", TIMEOUT.as_secs()))?
}

/// Ping-pong of `size` bytes over one loopback connection with Nagle off.
async fn tcp(size: usize, samples: u32) -> anyhow::Result<Baseline> {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .context("cannot bind a loopback port")?;
    let addr = listener.local_addr()?;
    // Echoes until the client closes; joined below.
    let echo = tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await?;
        stream.set_nodelay(true)?;
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = stream.read(&mut buf).await?;
            if n == 0 {
                return anyhow::Ok(());
            }
            stream.write_all(&buf[..n]).await?;
        }
    });
    let result = async {
        let mut stream = TcpStream::connect(addr)
            .await
            .with_context(|| format!("cannot connect to {addr}"))?;
        stream.set_nodelay(true)?;
        let message = payload(size)?;
        let mut echoed = vec![0u8; size];
        let mut latencies = Latencies::new()?;
        let mut round_trip = async |stream: &mut TcpStream| -> anyhow::Result<Duration> {
            let start = Instant::now();
            let (mut reader, mut writer) = stream.split();
            // Written and read at once: a message larger than the socket buffers would
            // otherwise stall both ends.
            let (written, read) =
                tokio::join!(writer.write_all(&message), reader.read_exact(&mut echoed));
            written?;
            read?;
            Ok(start.elapsed())
        };
        for _ in 0..warm_up(samples) {
            within("a round trip", round_trip(&mut stream)).await?;
        }
        let start = Instant::now();
        for _ in 0..samples {
            latencies.record(within("a round trip", round_trip(&mut stream)).await?);
        }
        let per_s = per_second(u64::from(samples), start.elapsed().as_secs_f64());
        Ok(latencies.baseline("tcp", size, per_s, 1))
    }
    .await;
    // The client's stream is closed by now, so the echo task ends; if the client failed
    // early it may still wait in accept.
    if result.is_err() {
        echo.abort();
    }
    match echo.await {
        Ok(Err(e)) if result.is_ok() => return Err(e.context("the echo server failed")),
        Err(e) if !e.is_cancelled() => return Err(anyhow!("the echo server panicked: {e}")),
        _ => {}
    }
    result
}

/// The server's messages table, without the references to tables a baseline does not have.
const SQLITE_TABLE: &str = "CREATE TABLE messages (
    conversation_id INTEGER NOT NULL,
    seq             INTEGER NOT NULL,
    sender_id       INTEGER NOT NULL,
    client_msg_id   BLOB    NOT NULL,
    sent_at         INTEGER NOT NULL,
    envelope        BLOB    NOT NULL,
    PRIMARY KEY (conversation_id, seq),
    UNIQUE (conversation_id, sender_id, client_msg_id)
)";

/// Autocommit single-row INSERTs into a fresh SQLite file, opened as the server opens its
/// own (WAL, `synchronous = FULL`: each commit reaches the disk).
async fn sqlite_insert(size: usize, scratch: &Path, samples: u32) -> anyhow::Result<Baseline> {
    let path = scratch.join(format!("baseline-sqlite-{size}.db"));
    for stale in ["", "-wal", "-shm"] {
        let mut name = path.clone().into_os_string();
        name.push(stale);
        match std::fs::remove_file(&name) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(e).with_context(|| format!("cannot remove {}", path.display()));
            }
            _ => {}
        }
    }
    let mut conn = SqliteConnectOptions::new()
        .filename(&path)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Full)
        .foreign_keys(true)
        .busy_timeout(Duration::from_secs(5))
        .connect()
        .await
        .with_context(|| format!("cannot open SQLite at {}", path.display()))?;
    let result = async {
        sqlx::query(SQLITE_TABLE).execute(&mut conn).await?;
        let mut envelope = payload(size)?;
        let mut latencies = Latencies::new()?;
        let mut seq: i64 = 0;
        let mut insert = async |conn: &mut SqliteConnection| -> anyhow::Result<Duration> {
            seq += 1;
            stamp(&mut envelope, seq);
            let start = Instant::now();
            sqlx::query(
                "INSERT INTO messages
                 (conversation_id, seq, sender_id, client_msg_id, sent_at, envelope)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )
            .bind(1_i64)
            .bind(seq)
            .bind(1_i64)
            .bind(client_msg_id(seq).as_slice())
            .bind(seq)
            .bind(envelope.as_slice())
            .execute(conn)
            .await?;
            Ok(start.elapsed())
        };
        for _ in 0..warm_up(samples) {
            within("an INSERT", insert(&mut conn)).await?;
        }
        let start = Instant::now();
        for _ in 0..samples {
            latencies.record(within("an INSERT", insert(&mut conn)).await?);
        }
        let per_s = per_second(u64::from(samples), start.elapsed().as_secs_f64());
        Ok(latencies.baseline("sqlite-insert", size, per_s, 1))
    }
    .await;
    let _ = conn.close().await;
    result
}

/// `postgres://user:secret@host/db` without the secret, for messages.
fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.into();
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => match rest[..at].split_once(':') {
            Some((user, _)) => format!("{scheme}://{user}:***{}", &rest[at..]),
            None => url.into(),
        },
        None => url.into(),
    }
}

async fn pg_connect(url: &str) -> anyhow::Result<PgConnection> {
    PgConnection::connect(url)
        .await
        .with_context(|| format!("cannot connect to PostgreSQL at {}", redact(url)))
}

/// The server's messages table, without the references, under a name of this run's own.
fn pg_table(table: &str) -> String {
    format!(
        "CREATE TABLE {table} (
             conversation_id BIGINT NOT NULL,
             seq             BIGINT NOT NULL,
             sender_id       BIGINT NOT NULL,
             client_msg_id   BYTEA  NOT NULL,
             sent_at         BIGINT NOT NULL,
             envelope        BYTEA  NOT NULL,
             PRIMARY KEY (conversation_id, seq),
             UNIQUE (conversation_id, sender_id, client_msg_id)
         )"
    )
}

/// One message stored as the server's PostgreSQL store does it: an INSERT in a transaction,
/// then, after the commit and outside the transaction, `pg_notify` with the row's sequence
/// number (NOTIFY inside a writing transaction takes a global lock at commit, so the server
/// keeps it out). Rows share one conversation; `seq` makes each unique.
async fn pg_store(
    conn: &mut PgConnection,
    table: &str,
    seq: i64,
    envelope: &[u8],
) -> anyhow::Result<()> {
    let mut tx = conn.begin().await?;
    sqlx::query(AssertSqlSafe(format!(
        "INSERT INTO {table} (conversation_id, seq, sender_id, client_msg_id, sent_at, envelope)
         VALUES ($1, $2, $3, $4, $5, $6)"
    )))
    .bind(1_i64)
    .bind(seq)
    .bind(1_i64)
    .bind(client_msg_id(seq).as_slice())
    .bind(seq)
    .bind(envelope)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    sqlx::query("SELECT pg_notify($1, $2)")
        .bind(table)
        .bind(seq.to_string())
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Latency (insert, commit, notify, until a listening connection hears of it) and the rate
/// of [`PG_CONCURRENCY`] connections storing at once, at each size.
async fn postgres_insert_notify(
    sizes: &[usize],
    url: &str,
    samples: u32,
) -> anyhow::Result<Vec<Baseline>> {
    static RUNS: AtomicU32 = AtomicU32::new(0);
    // Digits and a fixed prefix: safe to splice into SQL, where a table name cannot be a
    // bind parameter. It names the LISTEN channel too.
    let table = format!(
        "bench_baseline_{}_{}",
        std::process::id(),
        RUNS.fetch_add(1, Ordering::Relaxed)
    );
    let mut conn = pg_connect(url).await?;
    sqlx::query(AssertSqlSafe(pg_table(&table)))
        .execute(&mut conn)
        .await
        .with_context(|| format!("cannot create table {table}"))?;
    let result = postgres_sizes(sizes, url, samples, &table, &mut conn).await;
    let dropped = sqlx::query(AssertSqlSafe(format!("DROP TABLE IF EXISTS {table}")))
        .execute(&mut conn)
        .await;
    let _ = conn.close().await;
    let baselines = result?;
    dropped.with_context(|| format!("cannot drop table {table}"))?;
    Ok(baselines)
}

async fn postgres_sizes(
    sizes: &[usize],
    url: &str,
    samples: u32,
    table: &str,
    conn: &mut PgConnection,
) -> anyhow::Result<Vec<Baseline>> {
    let mut listener = PgListener::connect(url)
        .await
        .with_context(|| format!("cannot connect to PostgreSQL at {}", redact(url)))?;
    listener
        .listen(table)
        .await
        .with_context(|| format!("cannot LISTEN on {table}"))?;
    let seq = Arc::new(AtomicI64::new(0));
    let mut baselines = Vec::new();
    for &size in sizes {
        let mut envelope = payload(size)?;
        let mut latencies = Latencies::new()?;
        // The first warm-up sample also drains the notifications of the previous size's
        // rate phase, which nobody waited for.
        for n in 0..warm_up(samples) + samples {
            let seq = seq.fetch_add(1, Ordering::Relaxed) + 1;
            stamp(&mut envelope, seq);
            let start = Instant::now();
            let expected = seq.to_string();
            within("an INSERT + NOTIFY", async {
                pg_store(conn, table, seq, &envelope).await?;
                loop {
                    let notification = listener
                        .recv()
                        .await
                        .context("the LISTEN connection failed")?;
                    if notification.payload() == expected {
                        return anyhow::Ok(());
                    }
                }
            })
            .await?;
            if n >= warm_up(samples) {
                latencies.record(start.elapsed());
            }
        }
        let per_s = postgres_rate(url, table, size, &seq).await?;
        baselines.push(latencies.baseline("postgres-insert-notify", size, per_s, PG_CONCURRENCY));
    }
    let _ = listener.unlisten(table).await;
    Ok(baselines)
}

/// Messages stored per second by [`PG_CONCURRENCY`] connections at once for
/// [`RATE_WINDOW`], none waiting for the notifications.
async fn postgres_rate(
    url: &str,
    table: &str,
    size: usize,
    seq: &Arc<AtomicI64>,
) -> anyhow::Result<f64> {
    let mut connections = Vec::with_capacity(PG_CONCURRENCY);
    for _ in 0..PG_CONCURRENCY {
        connections.push(pg_connect(url).await?);
    }
    let start = Instant::now();
    let deadline = start + RATE_WINDOW;
    let mut writers = JoinSet::new();
    for mut conn in connections {
        let (table, seq, mut envelope) = (table.to_owned(), Arc::clone(seq), payload(size)?);
        writers.spawn(async move {
            let mut stored: u64 = 0;
            let result = async {
                while Instant::now() < deadline {
                    let seq = seq.fetch_add(1, Ordering::Relaxed) + 1;
                    stamp(&mut envelope, seq);
                    within(
                        "an INSERT + NOTIFY",
                        pg_store(&mut conn, &table, seq, &envelope),
                    )
                    .await?;
                    stored += 1;
                }
                anyhow::Ok(stored)
            }
            .await;
            let _ = conn.close().await;
            result
        });
    }
    let mut stored = 0;
    let mut failure = None;
    while let Some(joined) = writers.join_next().await {
        match joined {
            Ok(Ok(n)) => stored += n,
            Ok(Err(e)) => failure = failure.or(Some(e)),
            Err(e) => failure = failure.or(Some(anyhow!("a writer panicked: {e}"))),
        }
    }
    let elapsed = start.elapsed();
    match failure {
        Some(e) => Err(e),
        None => Ok(per_second(stored, elapsed.as_secs_f64())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fastchat_server::testing::TestDatabase;

    const SIZES: [usize; 2] = [64, 1024];
    const SAMPLES: u32 = 20;

    fn check(baselines: &[Baseline], name: &str) {
        for size in SIZES {
            let b = baselines
                .iter()
                .find(|b| b.name == name && b.size == size)
                .unwrap_or_else(|| panic!("no {name} row at {size} B in {baselines:?}"));
            assert_eq!(b.samples, u64::from(SAMPLES), "{b:?}");
            assert!(0.0 < b.p50_ms && b.p50_ms <= b.p99_ms, "{b:?}");
            assert!(b.per_s > 0.0 && b.concurrency > 0, "{b:?}");
        }
    }

    #[tokio::test]
    async fn versions_name_the_compiler_and_the_databases() {
        let local = versions(None).await;
        assert!(local[0].starts_with("rustc "), "{local:?}");
        assert!(
            local.iter().any(|v| v.starts_with("SQLite 3.")),
            "{local:?}"
        );
        let Some(db) = TestDatabase::create().await else {
            return;
        };
        let with_pg = versions(Some(&db.url)).await;
        assert!(
            with_pg.iter().any(|v| v.starts_with("PostgreSQL ")),
            "{with_pg:?}"
        );
    }

    #[tokio::test]
    async fn tcp_and_sqlite_without_postgres() {
        let scratch = tempfile::tempdir().expect("a temporary folder");
        let baselines = measure(&SIZES, None, scratch.path(), SAMPLES)
            .await
            .expect("baselines");
        assert_eq!(baselines.len(), 2 * SIZES.len(), "{baselines:?}");
        check(&baselines, "tcp");
        check(&baselines, "sqlite-insert");
        // A SQLite URL is not a PostgreSQL one: no PostgreSQL rows either.
        let baselines = measure(&[64], Some("sqlite://x.db"), scratch.path(), 3)
            .await
            .expect("baselines");
        assert!(baselines.iter().all(|b| b.name != "postgres-insert-notify"));
    }

    #[tokio::test]
    async fn a_tcp_message_larger_than_the_socket_buffers() {
        let b = tcp(4 * 1024 * 1024, 3).await.expect("a 4 MiB ping-pong");
        assert_eq!(b.samples, 3);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres_rows_and_no_table_left() {
        let Some(db) = TestDatabase::create().await else {
            return;
        };
        let scratch = tempfile::tempdir().expect("a temporary folder");
        let baselines = measure(&SIZES, Some(&db.url), scratch.path(), SAMPLES)
            .await
            .expect("baselines");
        assert_eq!(baselines.len(), 3 * SIZES.len(), "{baselines:?}");
        check(&baselines, "tcp");
        check(&baselines, "sqlite-insert");
        check(&baselines, "postgres-insert-notify");
        let mut conn = PgConnection::connect(&db.url).await.expect("connect");
        let left: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_tables WHERE tablename LIKE 'bench_baseline_%'",
        )
        .fetch_one(&mut conn)
        .await
        .expect("count tables");
        assert_eq!(left, 0, "the baseline's table is still there");
        let _ = conn.close().await;
    }

    #[tokio::test]
    async fn an_unreachable_postgres_is_named() {
        let scratch = tempfile::tempdir().expect("a temporary folder");
        // Port 1 on loopback: nothing listens there.
        let url = "postgres://bench:secret@127.0.0.1:1/none";
        let e = measure(&[64], Some(url), scratch.path(), 3)
            .await
            .expect_err("no PostgreSQL on port 1");
        let text = format!("{e:#}");
        assert!(
            text.contains("cannot connect to PostgreSQL at postgres://bench:***@127.0.0.1:1/none"),
            "{text}"
        );
        assert!(!text.contains("secret"), "{text}");
    }

    #[test]
    fn urls_lose_their_password() {
        assert_eq!(redact("postgres://u:p@h:5/d"), "postgres://u:***@h:5/d");
        assert_eq!(redact("postgres://u@h/d"), "postgres://u@h/d");
        assert_eq!(redact("postgres://h/d?x=a@b"), "postgres://h/d?x=a@b");
    }
}
