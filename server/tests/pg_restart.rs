//! PostgreSQL restarted under a send loop: in-flight sends fail cleanly and are retried with
//! their client message ids, servers reconnect by themselves, and every member still gets
//! every message exactly once, in order.
//!
//! This restarts the machine's PostgreSQL cluster (`pg_ctlcluster ... restart`), so it is a
//! test binary of its own: cargo runs test binaries one at a time, and no other test's
//! database disappears under it.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use fastchat_link::{Link, LinkConfig, LinkError};
use fastchat_proto::{
    ClientMsgId, CreateGroup, EpochMaterial, Push, SendMessage, Seq, Signup, SyncMessages,
};
use fastchat_server::Config;
use fastchat_server::testing::{TestDatabase, TestServer};

/// The cluster serving 127.0.0.1:5432, as `pg_ctlcluster` names it ("15 main").
fn local_cluster() -> Option<(String, String)> {
    let out = std::process::Command::new("pg_lsclusters")
        .arg("-h")
        .output()
        .ok()?;
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            (f.get(2) == Some(&"5432")).then(|| (f[0].to_owned(), f[1].to_owned()))
        })
}

async fn signup(addr: &str, name: &str) -> (Link, fastchat_link::Pushes) {
    let (link, pushes) = Link::connect(&LinkConfig::new(addr))
        .await
        .expect("connects");
    link.request(Signup {
        username: name.into(),
        password: format!("{name}-password"),
        public_key: Bytes::from_static(b"k"),
    })
    .await
    .expect("signup");
    (link, pushes)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_restarted_during_a_send_loop_loses_nothing() {
    let Some(db) = TestDatabase::create().await else {
        return;
    };
    let Some((version, cluster)) = local_cluster() else {
        assert!(
            std::env::var_os("FASTCHAT_REQUIRE_POSTGRES").is_none(),
            "pg_ctlcluster is needed to restart PostgreSQL"
        );
        eprintln!("skipped: cannot find the local PostgreSQL cluster to restart");
        return;
    };
    let mut servers = Vec::new();
    for id in ["a", "b"] {
        let config = Config {
            server_id: id.into(),
            ..Config::default()
        };
        servers.push(
            TestServer::start_postgres(&db.url, config)
                .await
                .expect("starts"),
        );
    }
    let (alice, _alice_pushes) = signup(&servers[0].addr.to_string(), "alice").await;
    let (bob, mut bob_pushes) = signup(&servers[1].addr.to_string(), "bob").await;
    let group = alice
        .request(CreateGroup {
            name: "g".into(),
            members: vec!["bob".into()],
            material: EpochMaterial::default(),
        })
        .await
        .expect("group");
    bob.request(SyncMessages {
        cursors: vec![],
        limit: 10,
    })
    .await
    .expect("live");

    // Sending goes on until the restart has finished, then 100 more: the loop spans it.
    let total = Arc::new(std::sync::atomic::AtomicU64::new(u64::MAX));
    let expected = Arc::clone(&total);
    let receiver = tokio::spawn(async move {
        let mut next = Seq(1);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
        while next.0 as u64 <= expected.load(std::sync::atomic::Ordering::Acquire) {
            let push = tokio::time::timeout_at(deadline, bob_pushes.recv())
                .await
                .unwrap_or_else(|_| panic!("bob stuck before seq {}", next.0))
                .expect("bob's server stays up");
            if let Push::Messages(messages) = push {
                for m in messages {
                    assert_eq!(m.seq, next, "gap or repeat");
                    assert_eq!(m.envelope, Bytes::from(format!("m{}", m.seq.0 - 1)));
                    next = next.next();
                }
            }
        }
    });

    let mut retries = 0u32;
    let mut restarted: Option<tokio::task::JoinHandle<std::io::Result<std::process::ExitStatus>>> =
        None;
    let mut sent_during_restart = 0;
    let mut i = 0u64;
    while i < total.load(std::sync::atomic::Ordering::Acquire) {
        let mut id = [0u8; 16];
        id[8..].copy_from_slice(&i.to_be_bytes());
        let request = SendMessage {
            conversation: group.id,
            client_msg_id: ClientMsgId(id),
            envelope: Bytes::from(format!("m{i}")),
        };
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            match alice.request(request.clone()).await {
                Ok(sent) => {
                    assert_eq!(
                        sent.seq.0,
                        i as i64 + 1,
                        "one seq per message, resends included"
                    );
                    break;
                }
                Err(LinkError::Server(e)) if e.code.is_retryable() => {
                    retries += 1;
                    assert!(
                        tokio::time::Instant::now() < deadline,
                        "PostgreSQL did not come back"
                    );
                    // A client's retry backoff, not synchronisation.
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(e) => panic!("send {i}: {e}"),
            }
        }
        if let Some(task) = &restarted {
            if task.is_finished() {
                if total.load(std::sync::atomic::Ordering::Acquire) == u64::MAX {
                    total.store(i + 101, std::sync::atomic::Ordering::Release);
                }
            } else {
                sent_during_restart += 1;
            }
        }
        if i == 200 {
            let (version, cluster) = (version.clone(), cluster.clone());
            restarted = Some(tokio::task::spawn_blocking(move || {
                std::process::Command::new("pg_ctlcluster")
                    .args([&version, &cluster, "restart", "-m", "fast"])
                    .status()
            }));
        }
        i += 1;
    }
    let status = restarted
        .expect("restarted")
        .await
        .expect("task")
        .expect("pg_ctlcluster runs");
    assert!(status.success(), "pg_ctlcluster restart: {status}");
    receiver
        .await
        .expect("bob got every message once, in order");
    assert!(sent_during_restart > 0, "the send loop spanned the restart");
    eprintln!(
        "{i} messages; {sent_during_restart} sent while PostgreSQL restarted, {retries} retried"
    );
    for s in servers {
        s.stop().await.expect("stops");
    }
}
