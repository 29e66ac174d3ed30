//! Messages accepted and delivered per second, on SQLite (one server) and on PostgreSQL (one
//! and two servers sharing the database, with and without group commit), beside the raw
//! single-row INSERT rate of the same PostgreSQL.
//!
//! `cargo bench -p fastchat-server --bench accept_rate [-- SECONDS]`
//!
//! PostgreSQL runs use `FASTCHAT_TEST_POSTGRES` or the local server, in a database created
//! and dropped for each run; without PostgreSQL those rows are skipped. Servers run in this
//! process, so clients and servers share the machine's cores: the figures are a floor for
//! dedicated servers.
//!
//! Senders wait for each ack before the next send (as a chat client does) or keep a window
//! of pipelined sends. "Delivered" counts the messages one extra member receives.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use fastchat_link::{Link, LinkConfig};
use fastchat_proto::{
    ClientMsgId, CreateGroup, EpochMaterial, Push, SendMessage, Signup, SyncMessages,
};
use fastchat_server::Config;
use fastchat_server::store::Store;
use fastchat_server::store::postgres::PgStore;
use fastchat_server::store::sqlite::SqliteStore;
use fastchat_server::testing::{TestDatabase, TestServer, postgres_available};
use sqlx::Connection;

const PAYLOAD: usize = 1024;

#[derive(Clone, Copy)]
enum Db {
    Sqlite,
    Postgres,
}

#[derive(Clone, Copy)]
struct Run {
    db: Db,
    servers: usize,
    group_commit: bool,
    senders: usize,
    window: usize,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let seconds: u64 = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(5);
    let duration = Duration::from_secs(seconds);
    println!("1 KiB envelopes, {seconds} s per row, all senders and one listener in one group");
    println!();
    println!(
        "| database | servers | group commit | senders x window | accepted msg/s | delivered msg/s |"
    );
    println!("| --- | --- | --- | --- | --- | --- |");
    let mut runs = Vec::new();
    for (senders, window) in [(1, 1), (50, 1), (50, 8)] {
        runs.push(Run {
            db: Db::Sqlite,
            servers: 1,
            group_commit: true,
            senders,
            window,
        });
    }
    let pg = postgres_available().await;
    if pg {
        for servers in [1, 2] {
            for group_commit in [false, true] {
                for (senders, window) in [(1, 1), (50, 1), (50, 8)] {
                    runs.push(Run {
                        db: Db::Postgres,
                        servers,
                        group_commit,
                        senders,
                        window,
                    });
                }
            }
        }
    }
    for run in runs {
        let (accepted, delivered) = measure(run, duration).await?;
        println!(
            "| {} | {} | {} | {} x {} | {accepted:.0} | {delivered:.0} |",
            match run.db {
                Db::Sqlite => "SQLite",
                Db::Postgres => "PostgreSQL",
            },
            run.servers,
            if run.group_commit { "yes" } else { "no" },
            run.senders,
            run.window,
        );
    }
    if pg {
        println!();
        println!("Raw single-row INSERT of 1 KiB (autocommit) into PostgreSQL, same machine:");
        for connections in [1, 8, 50] {
            let rate = raw_insert_rate(connections, duration).await?;
            println!("- {connections} connections: {rate:.0} rows/s");
        }
    }
    Ok(())
}

async fn open(db: Db, dir: &std::path::Path, url: Option<&str>) -> anyhow::Result<Arc<dyn Store>> {
    Ok(match (db, url) {
        (Db::Postgres, Some(url)) => Arc::new(PgStore::open(url).await?),
        _ => Arc::new(SqliteStore::open_path(&dir.join("bench.db")).await?),
    })
}

#[allow(clippy::cast_precision_loss)]
async fn measure(run: Run, duration: Duration) -> anyhow::Result<(f64, f64)> {
    let dir = tempfile::tempdir()?;
    let database = match run.db {
        Db::Postgres => TestDatabase::create().await,
        Db::Sqlite => None,
    };
    let url = database.as_ref().map(|d| d.url.clone());
    let mut servers = Vec::new();
    for i in 0..run.servers {
        let config = Config {
            server_id: format!("s{i}"),
            max_batch: if run.group_commit { 256 } else { 1 },
            ..Config::default()
        };
        let store = open(run.db, dir.path(), url.as_deref()).await?;
        servers.push(TestServer::start_with_store(store, config, None).await?);
    }
    let addr = |i: usize| servers[i % servers.len()].addr.to_string();

    let mut links = Vec::new();
    for i in 0..=run.senders {
        let (link, pushes) = Link::connect(&LinkConfig::new(addr(i))).await?;
        link.request(Signup {
            username: format!("user{i}"),
            password: "benchmark-password".into(),
            public_key: Bytes::from_static(b"k"),
        })
        .await?;
        links.push((link, pushes));
    }
    let members = (1..=run.senders).map(|i| format!("user{i}")).collect();
    let (listener, mut listener_pushes) = links.remove(0);
    let group = listener
        .request(CreateGroup {
            name: "bench".into(),
            members,
            material: EpochMaterial::default(),
        })
        .await?;
    listener
        .request(SyncMessages {
            cursors: vec![],
            limit: 1,
        })
        .await?;

    let delivered = Arc::new(AtomicU64::new(0));
    let counter = Arc::clone(&delivered);
    let listening = tokio::spawn(async move {
        while let Some(push) = listener_pushes.recv().await {
            if let Push::Messages(m) = push {
                counter.fetch_add(m.len() as u64, Ordering::Relaxed);
            }
        }
    });

    let accepted = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let envelope = Bytes::from(vec![0x5A; PAYLOAD]);
    let mut tasks = Vec::new();
    for (i, (link, pushes)) in links.into_iter().enumerate() {
        // Senders do not read their pushes: dropping the receiver discards them.
        drop(pushes);
        for lane in 0..run.window {
            let (link, accepted, stop, envelope) = (
                link.clone(),
                Arc::clone(&accepted),
                Arc::clone(&stop),
                envelope.clone(),
            );
            tasks.push(tokio::spawn(async move {
                let mut n: u64 = 0;
                while !stop.load(Ordering::Relaxed) {
                    let mut id = [0u8; 16];
                    id[..4].copy_from_slice(&u32::try_from(i).unwrap_or(0).to_be_bytes());
                    id[4..8].copy_from_slice(&u32::try_from(lane).unwrap_or(0).to_be_bytes());
                    id[8..].copy_from_slice(&n.to_be_bytes());
                    n += 1;
                    let send = SendMessage {
                        conversation: group.id,
                        client_msg_id: ClientMsgId(id),
                        envelope: envelope.clone(),
                    };
                    if link.request(send).await.is_ok() {
                        accepted.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }));
        }
    }
    // Warm up, then count over the measured interval only.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (a0, d0) = (
        accepted.load(Ordering::Relaxed),
        delivered.load(Ordering::Relaxed),
    );
    let start = Instant::now();
    tokio::time::sleep(duration).await;
    let (a1, d1) = (
        accepted.load(Ordering::Relaxed),
        delivered.load(Ordering::Relaxed),
    );
    let elapsed = start.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        t.await?;
    }
    drop(listener);
    for s in servers {
        s.stop().await?;
    }
    listening.abort();
    drop(database);
    Ok(((a1 - a0) as f64 / elapsed, (d1 - d0) as f64 / elapsed))
}

/// Autocommit single-row INSERTs of 1 KiB from `connections` connections at once.
#[allow(clippy::cast_precision_loss)]
async fn raw_insert_rate(connections: usize, duration: Duration) -> anyhow::Result<f64> {
    let db = TestDatabase::create()
        .await
        .ok_or_else(|| anyhow::anyhow!("no PostgreSQL"))?;
    let mut setup = sqlx::PgConnection::connect(&db.url).await?;
    sqlx::query("CREATE TABLE raw (id BIGSERIAL PRIMARY KEY, body BYTEA NOT NULL)")
        .execute(&mut setup)
        .await?;
    let count = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for _ in 0..connections {
        let mut conn = sqlx::PgConnection::connect(&db.url).await?;
        let (count, stop) = (Arc::clone(&count), Arc::clone(&stop));
        tasks.push(tokio::spawn(async move {
            let body = vec![0x5Au8; PAYLOAD];
            while !stop.load(Ordering::Relaxed) {
                if sqlx::query("INSERT INTO raw (body) VALUES ($1)")
                    .bind(&body)
                    .execute(&mut conn)
                    .await
                    .is_ok()
                {
                    count.fetch_add(1, Ordering::Relaxed);
                }
            }
            let _ = conn.close().await;
        }));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let c0 = count.load(Ordering::Relaxed);
    let start = Instant::now();
    tokio::time::sleep(duration).await;
    let rate = (count.load(Ordering::Relaxed) - c0) as f64 / start.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        t.await?;
    }
    let _ = setup.close().await;
    Ok(rate)
}
