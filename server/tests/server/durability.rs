//! The real `fastchat-server` binary: killed with -9 mid-stream and restarted on the same
//! database, it has lost no acknowledged message; SIGTERM stops it cleanly.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use bytes::Bytes;
use fastchat_link::{Link, LinkConfig};
use fastchat_proto::{ConversationId, Login, SendMessage, Seq, SyncMessages};

use crate::support::{Client, msg_id, password};

struct ServerProcess {
    child: Child,
    addr: String,
}

impl ServerProcess {
    fn start(db: &Path) -> ServerProcess {
        let mut child = Command::new(env!("CARGO_BIN_EXE_fastchat-server"))
            .args(["--listen", "127.0.0.1:0", "--database-url"])
            .arg(format!("sqlite://{}", db.display()))
            .env(
                "RUST_LOG",
                std::env::var("TEST_SERVER_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("server starts");
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("reads the listening line");
        let addr = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .to_owned();
        ServerProcess { child, addr }
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn signal(child: &Child, sig: &str) {
    let status = Command::new("kill")
        .args([sig, &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_mid_stream_loses_no_acked_message() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("server.db");
    let mut server = ServerProcess::start(&db);
    let alice = Client::signup(&server.addr, "alice").await;
    Client::signup(&server.addr, "bob").await;
    let group = alice.create_group("g", &["bob"]).await;

    // Alice pipelines 2,000 sends; the server is killed once 300 are acked, with the rest
    // in flight.
    let total = 2000u64;
    let (results, mut results_rx) = tokio::sync::mpsc::unbounded_channel();
    for i in 0..total {
        let link = alice.link.clone();
        let results = results.clone();
        tokio::spawn(async move {
            let request = SendMessage {
                conversation: group.id,
                client_msg_id: msg_id("alice", i),
                envelope: Bytes::from(format!("m{i}")),
            };
            let _ = results.send((i, link.request(request).await));
        });
    }
    drop(results);
    let mut acked = BTreeMap::new();
    let mut unacked = Vec::new();
    let mut killed = false;
    while let Some((i, result)) = results_rx.recv().await {
        match result {
            Ok(sent) => {
                acked.insert(i, sent.seq);
            }
            Err(_) => unacked.push(i),
        }
        if !killed && acked.len() >= 300 {
            signal(&server.child, "-9");
            killed = true;
        }
    }
    server.child.wait().expect("reaped");
    assert!(!acked.is_empty(), "some sends were acked before the kill");
    assert!(!unacked.is_empty(), "the kill interrupted the stream");

    // Restart on the same database: every acked message is there, with its seq.
    let restarted = ServerProcess::start(&db);
    let stored = sync_all(&restarted.addr, "bob", group.id).await;
    for (i, seq) in &acked {
        assert_eq!(
            stored.get(seq),
            Some(&format!("m{i}")),
            "acked message {i} lost"
        );
    }
    // Resending what was not acked stores each exactly once, and nothing twice.
    let alice = Client::login(&restarted.addr, "alice").await;
    for i in unacked.iter().chain(acked.keys()) {
        alice
            .send(group.id, *i, &format!("m{i}"))
            .await
            .expect("resend acked");
    }
    let stored = sync_all(&restarted.addr, "bob", group.id).await;
    assert_eq!(
        stored.len(),
        total as usize,
        "each message stored exactly once"
    );
    let seqs: Vec<i64> = stored.keys().map(|s| s.0).collect();
    assert_eq!(
        seqs,
        (1..=total as i64).collect::<Vec<_>>(),
        "gap-free after the crash"
    );
    drop(restarted);
    drop(server);
}

#[tokio::test]
async fn sigterm_stops_the_server_cleanly() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("server.db");
    let mut server = ServerProcess::start(&db);
    let alice = Client::signup(&server.addr, "alice").await;
    let group = alice.create_group("g", &[]).await;
    alice
        .send(group.id, 1, "before the stop")
        .await
        .expect("acked");
    signal(&server.child, "-TERM");
    let status = wait_with_deadline(&mut server.child, Duration::from_secs(20));
    assert!(status.success(), "exit status {status}");
    // A fresh start finds everything.
    let restarted = ServerProcess::start(&db);
    let stored = sync_all(&restarted.addr, "alice", group.id).await;
    assert_eq!(stored.values().collect::<Vec<_>>(), vec!["before the stop"]);
}

fn wait_with_deadline(child: &mut Child, limit: Duration) -> std::process::ExitStatus {
    let deadline = std::time::Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return status;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "server did not stop within {limit:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Everything `user` can read in `conversation`, through a fresh connection whose pushes
/// are not wanted (dropping them keeps the link from waiting on a reader).
async fn sync_all(addr: &str, user: &str, conversation: ConversationId) -> BTreeMap<Seq, String> {
    let (link, pushes) = Link::connect(&LinkConfig::new(addr))
        .await
        .expect("connects");
    drop(pushes);
    link.request(Login {
        username: user.into(),
        password: password(user),
    })
    .await
    .expect("login");
    let mut out = BTreeMap::new();
    let mut cursor = Seq(0);
    loop {
        let batch = link
            .request(SyncMessages {
                cursors: vec![fastchat_proto::Cursor {
                    conversation,
                    seq: cursor,
                }],
                limit: 500,
            })
            .await
            .expect("sync");
        for m in batch
            .messages
            .iter()
            .filter(|m| m.conversation == conversation)
        {
            cursor = m.seq;
            out.insert(m.seq, String::from_utf8_lossy(&m.envelope).into_owned());
        }
        if !batch.more {
            return out;
        }
    }
}
