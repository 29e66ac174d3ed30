//! Storing one message through the server's [`Store`] (`append` with a batch of one: what a
//! send costs the database when nothing else is queued), on SQLite (a temporary file, opened
//! as the server opens it) and on PostgreSQL, at 64 B, 1 KiB and 16 KiB envelopes.
//!
//! `cargo bench -p fastchat-server --bench store`
//! (`-- --quick` for a short run; `-- sqlite` or `-- postgres` for one backend)
//!
//! PostgreSQL uses `FASTCHAT_TEST_POSTGRES` or the local server, in a database created and
//! dropped for the run; without PostgreSQL those benchmarks are skipped with a line saying
//! so. Every append stores a new row (a fresh client message id) in one group of two members,
//! committed before the next starts, on a multi-thread tokio runtime as the server runs.
//! The PostgreSQL figure includes queueing the NOTIFY, not sending it: the store's notifier
//! task does that after the commit.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use fastchat_proto::{ClientMsgId, ConversationId, EpochMaterial, Timestamp};
use fastchat_server::store::postgres::PgStore;
use fastchat_server::store::sqlite::SqliteStore;
use fastchat_server::store::{Appended, NewMessage, Store, User};
use fastchat_server::testing::{TestDatabase, postgres_available};
use tokio::runtime::Runtime;

const SIZES: [usize; 3] = [64, 1024, 16 * 1024];

/// A store with a sender in a group, ready for appends.
struct Fixture {
    store: Arc<dyn Store>,
    sender: User,
    conversation: ConversationId,
    /// Makes every client message id new, so that no append is a resend.
    next_id: u64,
}

impl Fixture {
    async fn new(store: Arc<dyn Store>) -> Fixture {
        let now = Timestamp::now();
        // The store keeps whatever hash it is given; argon2 is not what is measured.
        let sender = store
            .create_user("alice", "$argon2id$bench", b"key", now)
            .await
            .expect("create alice");
        store
            .create_user("bob", "$argon2id$bench", b"key", now)
            .await
            .expect("create bob");
        let changed = store
            .create_group(
                &sender,
                "bench",
                &["bob".to_owned()],
                &EpochMaterial::default(),
                now,
            )
            .await
            .expect("create the group");
        Fixture {
            store,
            sender,
            conversation: changed.info.id,
            next_id: 0,
        }
    }

    /// Appends `iters` messages of `envelope`, one at a time; the time they took.
    async fn append(&mut self, envelope: &Bytes, iters: u64) -> Duration {
        let start = Instant::now();
        for _ in 0..iters {
            self.next_id += 1;
            let mut id = [0u8; 16];
            id[8..].copy_from_slice(&self.next_id.to_be_bytes());
            let message = NewMessage {
                conversation: self.conversation,
                sender: self.sender.clone(),
                client_msg_id: ClientMsgId(id),
                envelope: envelope.clone(),
            };
            let outcome = self
                .store
                .append(&[message], Timestamp::now())
                .await
                .expect("append");
            assert!(
                matches!(outcome.results.as_slice(), [Ok(Appended::Stored(_))]),
                "the message was not stored: {:?}",
                outcome.results
            );
        }
        start.elapsed()
    }
}

fn bench_backend(c: &mut Criterion, rt: &Runtime, backend: &str, fixture: &mut Fixture) {
    let mut group = c.benchmark_group("store append");
    group.sample_size(30);
    group.throughput(Throughput::Elements(1));
    for size in SIZES {
        let envelope = Bytes::from(vec![0x5A; size]);
        group.bench_with_input(BenchmarkId::new(backend, size), &envelope, |b, envelope| {
            b.iter_custom(|iters| rt.block_on(fixture.append(envelope, iters)));
        });
    }
    group.finish();
}

fn store_append(c: &mut Criterion) {
    let rt = Runtime::new().expect("a tokio runtime");

    let dir = tempfile::tempdir().expect("a temporary folder");
    let sqlite: Arc<dyn Store> = Arc::new(
        rt.block_on(SqliteStore::open_path(&dir.path().join("bench.db")))
            .expect("open SQLite"),
    );
    let mut fixture = rt.block_on(Fixture::new(Arc::clone(&sqlite)));
    bench_backend(c, &rt, "sqlite", &mut fixture);
    rt.block_on(sqlite.close());

    let database = rt.block_on(async {
        if postgres_available().await {
            TestDatabase::create().await
        } else {
            None
        }
    });
    if let Some(database) = database {
        let postgres: Arc<dyn Store> = Arc::new(
            rt.block_on(PgStore::open(&database.url))
                .expect("open PostgreSQL"),
        );
        // Held as the server holds it, so that the store keeps a LISTEN connection open as
        // in production; dropped before `close`, which otherwise waits for that connection.
        let feed = postgres.changes();
        let mut fixture = rt.block_on(Fixture::new(Arc::clone(&postgres)));
        bench_backend(c, &rt, "postgres", &mut fixture);
        drop(feed);
        rt.block_on(postgres.close());
        // Dropped after the store has closed its connections, so the drop does not wait.
        drop(fixture);
        drop(database);
    }
}

criterion_group!(benches, store_append);
criterion_main!(benches);
