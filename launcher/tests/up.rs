//! `fastchat up`, the real binary: a balancer and servers that answer, a `ready` line, and
//! a clean stop on SIGTERM.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use fastchat_link::{Link, LinkConfig};
use fastchat_proto::{CreateGroup, EpochMaterial, Push, SendMessage, Signup, SyncMessages};
use fastchat_server::testing::TestDatabase;

struct Up {
    child: Child,
    balancer: String,
    servers: Vec<String>,
}

/// Starts `fastchat up` with `args` on free ports and reads its lines up to `ready`.
fn up(args: &[&str], data_dir: &std::path::Path) -> Up {
    let mut child = Command::new(env!("CARGO_BIN_EXE_fastchat"))
        .arg("up")
        .args([
            "--balancer-listen",
            "127.0.0.1:0",
            "--first-port",
            "0",
            "--data-dir",
        ])
        .arg(data_dir)
        .args(args)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .spawn()
        .expect("fastchat starts");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let (mut balancer, mut servers) = (None, Vec::new());
    loop {
        let line = lines.next().expect("a line before ready").expect("reads");
        let mut words = line.split_whitespace();
        match words.next() {
            Some("balancer") => balancer = words.next().map(str::to_owned),
            Some(name) if name.starts_with("server-") => {
                servers.extend(words.next().map(str::to_owned))
            }
            Some("ready:") => break,
            _ => {}
        }
    }
    Up {
        child,
        balancer: balancer.expect("a balancer line"),
        servers,
    }
}

impl Up {
    fn stop(mut self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(status.success());
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                assert!(status.success(), "fastchat up exited with {status}");
                return;
            }
            assert!(Instant::now() < deadline, "fastchat up did not stop");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Up {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn pick(balancer: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(balancer)
        .await
        .expect("balancer answers");
    let body = r#"{"jsonrpc":"2.0","id":1,"method":"pick"}"#;
    let request = format!(
        "POST / HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.expect("writes");
    let mut response = String::new();
    stream.read_to_string(&mut response).await.expect("reads");
    response
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

/// Alice (on `from`) creates a group with bob (on `to`) and sends `text`; returns what bob
/// is pushed.
async fn exchange(from: &str, to: &str, text: &'static [u8]) -> Bytes {
    let (alice, _alice_pushes) = signup(from, "alice").await;
    let (bob, mut bob_pushes) = signup(to, "bob").await;
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
    alice
        .request(SendMessage {
            conversation: group.id,
            client_msg_id: fastchat_proto::ClientMsgId([1; 16]),
            envelope: Bytes::from_static(text),
        })
        .await
        .expect("sent");
    let messages = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            if let Some(Push::Messages(m)) = bob_pushes.recv().await {
                return m;
            }
        }
    })
    .await
    .expect("bob receives");
    messages[0].envelope.clone()
}

#[tokio::test]
async fn up_with_sqlite_serves_a_first_message_and_stops_cleanly() {
    let dir = tempfile::tempdir().expect("dir");
    let fc = up(&[], dir.path());
    assert_eq!(fc.servers.len(), 1);
    let response = pick(&fc.balancer).await;
    assert!(
        response.contains(&fc.servers[0]),
        "the balancer picks the server: {response}"
    );

    let received = exchange(&fc.servers[0], &fc.servers[0], b"hello").await;
    assert_eq!(&received[..], b"hello");
    assert!(
        dir.path().join("server.db").exists(),
        "SQLite in the data folder"
    );
    fc.stop();
}

#[test]
fn more_than_one_server_needs_postgres() {
    let out = Command::new(env!("CARGO_BIN_EXE_fastchat"))
        .args(["up", "--servers", "2"])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--database-url postgres://"));
}

#[tokio::test]
async fn up_with_two_servers_on_postgres_delivers_across_them() {
    let Some(db) = TestDatabase::create().await else {
        return;
    };
    let dir = tempfile::tempdir().expect("dir");
    let fc = up(
        &[
            "--servers",
            "2",
            "--database-url",
            &db.url,
            "--strategy",
            "least-connections",
        ],
        dir.path(),
    );
    assert_eq!(fc.servers.len(), 2);
    let received = exchange(&fc.servers[0], &fc.servers[1], b"across").await;
    assert_eq!(
        &received[..],
        b"across",
        "bob, on the other server, receives"
    );
    fc.stop();
}
