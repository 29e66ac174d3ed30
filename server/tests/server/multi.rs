//! Several servers sharing one PostgreSQL database: messages cross servers, sequence
//! numbers stay gap-free under concurrent senders on different servers, and a server killed
//! with -9 strands nobody: its clients resume on another server and lose nothing.

use std::collections::BTreeMap;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use bytes::Bytes;
use fastchat_link::policy::{ClientStrategy, Dialer};
use fastchat_link::session::ResilientSession;
use fastchat_link::{LinkConfig, LinkError, Pushes};
use fastchat_proto::{
    ConversationId, Cursor, Push, SendMessage, Seq, SessionToken, StoredMessage, SyncMessages,
};
use fastchat_server::Config;
use fastchat_server::testing::{TestDatabase, TestServer};

use crate::support::{Client, DEADLINE, msg_id};

/// Collects pushes for `conversation` in a task of its own (so that no link stalls on
/// unread pushes while others wait), checking each arrives exactly once and in order.
fn collect(
    name: String,
    mut pushes: Pushes,
    conversation: ConversationId,
    from: Seq,
    count: usize,
) -> tokio::task::JoinHandle<Vec<StoredMessage>> {
    tokio::spawn(async move {
        let mut got: Vec<StoredMessage> = Vec::with_capacity(count);
        let mut cursor = from;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        while got.len() < count {
            let push = tokio::time::timeout_at(deadline, pushes.recv())
                .await
                .unwrap_or_else(|_| panic!("{name}: only {} of {count} arrived", got.len()))
                .unwrap_or_else(|| panic!("{name}: connection closed"));
            if let Push::Messages(messages) = push {
                for m in messages
                    .into_iter()
                    .filter(|m| m.conversation == conversation)
                {
                    assert_eq!(m.seq, cursor.next(), "{name}: gap or repeat");
                    cursor = m.seq;
                    got.push(m);
                }
            }
        }
        got
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_servers_four_clients_five_thousand_messages_one_order() {
    let Some(db) = TestDatabase::create().await else {
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
    let addr = |i: usize| servers[i % 2].addr.to_string();
    let names = ["alice", "bob", "carol", "dave"];
    let mut clients = Vec::new();
    for (i, name) in names.iter().enumerate() {
        clients.push(Client::signup(&addr(i), name).await);
    }
    let group = clients[0].create_group("everyone", &names[1..]).await;

    let per_client = 1250u64;
    let total = per_client as usize * names.len();
    let mut collectors = Vec::new();
    let mut links = Vec::new();
    for mut client in clients {
        client.sync().await;
        let Client {
            name, link, pushes, ..
        } = client;
        collectors.push(collect(name.clone(), pushes, group.id, Seq(0), total));
        links.push((name, link));
    }
    // All four send at once, each pipelining its 1,250 sends, through two servers.
    let mut senders = Vec::new();
    for (name, link) in &links {
        let (name, link) = (name.clone(), link.clone());
        senders.push(tokio::spawn(async move {
            let mut acks = Vec::new();
            for chunk in (0..per_client).collect::<Vec<_>>().chunks(50) {
                let batch: Vec<_> = chunk
                    .iter()
                    .map(|&i| {
                        let link = link.clone();
                        let request = SendMessage {
                            conversation: group.id,
                            client_msg_id: msg_id(&name, i),
                            envelope: Bytes::from(format!("{name} {i}")),
                        };
                        tokio::spawn(async move { link.request(request).await })
                    })
                    .collect();
                for b in batch {
                    acks.push(b.await.expect("task").expect("acked").seq.0);
                }
            }
            acks
        }));
    }
    let mut seqs = Vec::new();
    for s in senders {
        seqs.extend(s.await.expect("sender"));
    }
    seqs.sort_unstable();
    assert_eq!(
        seqs,
        (1..=total as i64).collect::<Vec<_>>(),
        "acked seqs are gap-free"
    );

    let mut orders = Vec::new();
    for c in collectors {
        let got = c.await.expect("collector");
        orders.push(got.iter().map(|m| m.envelope.clone()).collect::<Vec<_>>());
    }
    for order in &orders[1..] {
        assert!(
            order == &orders[0],
            "every member sees one and the same order"
        );
    }
    drop(links);
    for s in servers {
        s.stop().await.expect("stops");
    }
}

struct ServerProcess(Child, String);

impl ServerProcess {
    fn start(url: &str, id: &str) -> ServerProcess {
        use std::io::BufRead;
        let mut child = Command::new(env!("CARGO_BIN_EXE_fastchat-server"))
            .args(["--listen", "127.0.0.1:0", "--id", id, "--database-url", url])
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .spawn()
            .expect("server starts");
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("reads");
        let addr = line
            .trim()
            .strip_prefix("listening on ")
            .expect("listening line")
            .to_owned();
        ServerProcess(child, addr)
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A session on `servers` (tried in this order) for a user already signed up.
async fn session(servers: &[&str], token: SessionToken) -> ResilientSession {
    let list = servers.iter().map(|s| (*s).to_owned()).collect();
    let dialer = Dialer::new(list, ClientStrategy::ClientRoundRobin, LinkConfig::new(""));
    ResilientSession::resume(dialer, token, DEADLINE)
        .await
        .expect("resumes")
}

/// A receiver that survives its server's death: on a lost connection the session resumes
/// elsewhere and syncs from its cursor; exactly-once, in-order delivery is checked on every
/// message, across the move.
fn resilient_receiver(
    name: &'static str,
    mut session: ResilientSession,
    conversation: ConversationId,
    count: usize,
) -> tokio::task::JoinHandle<(Vec<StoredMessage>, u32)> {
    tokio::spawn(async move {
        let mut got: Vec<StoredMessage> = Vec::new();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
        let take = |messages: Vec<StoredMessage>, got: &mut Vec<StoredMessage>| {
            for m in messages
                .into_iter()
                .filter(|m| m.conversation == conversation)
            {
                assert_eq!(m.seq, Seq(got.len() as i64 + 1), "{name}: gap or repeat");
                got.push(m);
            }
        };
        let mut pushes = session.take_pushes().expect("pushes");
        loop {
            // Catch up from the cursor (this also makes the connection live for pushes).
            loop {
                let cursor = Cursor {
                    conversation,
                    seq: Seq(got.len() as i64),
                };
                let batch = session
                    .link()
                    .request(SyncMessages {
                        cursors: vec![cursor],
                        limit: 500,
                    })
                    .await
                    .expect("sync");
                take(batch.messages, &mut got);
                if !batch.more {
                    break;
                }
            }
            while got.len() < count {
                match tokio::time::timeout_at(deadline, pushes.recv()).await {
                    Err(_) => panic!("{name}: {} of {count}", got.len()),
                    Ok(Some(Push::Messages(messages))) => take(messages, &mut got),
                    Ok(Some(Push::Conversation(_))) => {}
                    Ok(None) => break,
                }
            }
            if got.len() >= count {
                return (got, session.reconnects());
            }
            session
                .reconnect()
                .await
                .expect("resumes on another server");
            pushes = session.take_pushes().expect("pushes");
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_servers_clients_resume_on_another_and_lose_nothing() {
    let Some(db) = TestDatabase::create().await else {
        return;
    };
    let mut a = ServerProcess::start(&db.url, "a");
    let b = ServerProcess::start(&db.url, "b");
    let (addr_a, addr_b) = (a.1.clone(), b.1.clone());

    let alice = Client::signup(&addr_a, "alice").await;
    let bob = Client::signup(&addr_a, "bob").await;
    let carol = Client::signup(&addr_b, "carol").await;
    let group = alice.create_group("failover", &["bob", "carol"]).await;

    let total = 1500u64;
    // Bob and alice are on server a (to be killed), carol on b.
    let receivers = vec![
        (
            "bob",
            resilient_receiver(
                "bob",
                session(&[&addr_a, &addr_b], bob.session.token.clone()).await,
                group.id,
                total as usize,
            ),
        ),
        (
            "carol",
            resilient_receiver(
                "carol",
                session(&[&addr_b, &addr_a], carol.session.token.clone()).await,
                group.id,
                total as usize,
            ),
        ),
    ];
    let mut alice = session(&[&addr_a, &addr_b], alice.session.token.clone()).await;
    assert_eq!(alice.server(), addr_a);

    // Alice sends in windows of 20 pipelined sends; server a dies under her after 300 acks.
    let mut acked: BTreeMap<u64, Seq> = BTreeMap::new();
    let mut resent = 0;
    let mut killed = false;
    for window in (0..total).collect::<Vec<_>>().chunks(20) {
        let mut pending: Vec<u64> = window.to_vec();
        while !pending.is_empty() {
            let sends: Vec<_> = pending
                .iter()
                .map(|&i| {
                    let link = alice.link().clone();
                    let request = SendMessage {
                        conversation: group.id,
                        client_msg_id: msg_id("alice", i),
                        envelope: Bytes::from(format!("m{i}")),
                    };
                    tokio::spawn(async move { (i, link.request(request).await) })
                })
                .collect();
            let mut failed = Vec::new();
            for s in sends {
                match s.await.expect("task") {
                    (i, Ok(sent)) => {
                        if let Some(before) = acked.insert(i, sent.seq) {
                            assert_eq!(before, sent.seq, "a resend got another seq");
                        }
                    }
                    (i, Err(LinkError::Server(body))) if !body.code.is_retryable() => {
                        panic!("send {i} refused: {body}")
                    }
                    (i, Err(_)) => failed.push(i),
                }
            }
            if !killed && acked.len() >= 300 {
                let _ = a.0.kill();
                let _ = a.0.wait();
                killed = true;
            }
            if !failed.is_empty() {
                resent += failed.len();
                alice.reconnect().await.expect("alice resumes on b");
            }
            pending = failed;
        }
    }
    assert!(killed);
    assert_eq!(
        alice.server(),
        addr_b,
        "alice moved to the surviving server"
    );
    // The session's own send resends until acked; a known id is acked with its seq.
    let again = alice
        .send(SendMessage {
            conversation: group.id,
            client_msg_id: msg_id("alice", 0),
            envelope: Bytes::from("m0"),
        })
        .await
        .expect("acked");
    assert_eq!(Some(&again.seq), acked.get(&0), "a resend is stored once");
    let mut sorted: Vec<i64> = acked.values().map(|s| s.0).collect();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(
        sorted,
        (1..=total as i64).collect::<Vec<_>>(),
        "every message stored once"
    );

    for (name, r) in receivers {
        let (got, reconnects) = r.await.expect("receiver");
        assert_eq!(got.len(), total as usize, "{name}");
        let texts: BTreeMap<i64, String> = got
            .iter()
            .map(|m| (m.seq.0, String::from_utf8_lossy(&m.envelope).into_owned()))
            .collect();
        for (i, seq) in &acked {
            assert_eq!(
                texts.get(&seq.0),
                Some(&format!("m{i}")),
                "{name}: message {i}"
            );
        }
        if name == "bob" {
            assert!(reconnects >= 1, "bob was on the killed server");
        }
        eprintln!(
            "{name}: {} messages, {reconnects} reconnects; alice resent {resent}",
            got.len()
        );
    }
    drop(b);
}
