//! The balancer over real JSON-RPC (HTTP) in front of real chat servers on port 0.

use std::collections::BTreeMap;
use std::time::Duration;

use fastchat_balancer::{Balancer, Config, Strategy};
use fastchat_proto::balancer::{PICK, Picked, REGISTER, SERVERS, ServerStatus};
use fastchat_server::testing::TestServer;
use jsonrpsee::core::client::ClientT;
use jsonrpsee::core::params::ObjectParams;
use jsonrpsee::http_client::{HttpClient, HttpClientBuilder};
use jsonrpsee::rpc_params;

const DEADLINE: Duration = Duration::from_secs(20);

struct Fixture {
    servers: Vec<Option<TestServer>>,
    _dirs: Vec<tempfile::TempDir>,
    balancer: Balancer,
    client: HttpClient,
}

async fn fixture(strategy: Strategy) -> Fixture {
    let mut servers = Vec::new();
    let mut dirs = Vec::new();
    let mut flags = Vec::new();
    for i in 1..=3 {
        let dir = tempfile::tempdir().expect("dir");
        let server =
            TestServer::start(&dir.path().join("s.db"), fastchat_server::Config::default())
                .await
                .expect("server");
        flags.push((format!("s{i}"), server.addr.to_string()));
        servers.push(Some(server));
        dirs.push(dir);
    }
    let config = Config {
        strategy,
        probe_interval: Duration::from_millis(50),
        servers: flags,
        ..Config::default()
    };
    let balancer = Balancer::start("127.0.0.1:0", config)
        .await
        .expect("balancer");
    let client = HttpClientBuilder::default()
        .build(format!("http://{}", balancer.addr))
        .expect("client");
    let fx = Fixture {
        servers,
        _dirs: dirs,
        balancer,
        client,
    };
    fx.until("all three healthy", |s| {
        s.iter().filter(|s| s.healthy).count() == 3
    })
    .await;
    fx
}

impl Fixture {
    async fn statuses(&self) -> Vec<ServerStatus> {
        self.client
            .request(SERVERS, rpc_params![])
            .await
            .expect("servers")
    }

    async fn until(&self, what: &str, done: impl Fn(&[ServerStatus]) -> bool) {
        let deadline = tokio::time::Instant::now() + DEADLINE;
        loop {
            if done(&self.statuses().await) {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "timed out waiting for {what}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn spread(&self, n: usize) -> BTreeMap<String, usize> {
        let mut counts = BTreeMap::new();
        for _ in 0..n {
            let picked: Picked = self
                .client
                .request(PICK, rpc_params![])
                .await
                .expect("pick");
            *counts.entry(picked.id).or_default() += 1;
        }
        counts
    }
}

#[tokio::test]
async fn sixty_connections_per_strategy() {
    let fx = fixture(Strategy::RoundRobin).await;
    let counts = fx.spread(60).await;
    assert_eq!(
        counts.values().copied().collect::<Vec<_>>(),
        vec![20, 20, 20],
        "exactly even"
    );
    fx.balancer.stop().await;

    let fx = fixture(Strategy::LeastConnections).await;
    fx.spread(60).await;
    let loads: Vec<u32> = fx.statuses().await.iter().map(|s| s.connections).collect();
    let spread =
        loads.iter().max().copied().unwrap_or(0) - loads.iter().min().copied().unwrap_or(0);
    assert!(spread <= 1, "within one: {loads:?}");
    fx.balancer.stop().await;

    let fx = fixture(Strategy::P2c).await;
    let counts = fx.spread(60).await;
    assert!(
        counts.values().all(|&c| (15..=25).contains(&c)),
        "p2c within 20 +- 5: {counts:?}"
    );
    fx.balancer.stop().await;
}

#[tokio::test]
async fn an_unhealthy_server_is_never_picked_and_comes_back() {
    let mut fx = fixture(Strategy::RoundRobin).await;
    let s2 = fx.servers[1].take().expect("s2");
    s2.stop().await.expect("stops");
    fx.until("s2 unhealthy", |s| {
        s.iter().any(|s| s.id == "s2" && !s.healthy)
    })
    .await;
    let counts = fx.spread(30).await;
    assert!(!counts.contains_key("s2"), "{counts:?}");
    assert_eq!(counts.values().sum::<usize>(), 30);

    // s2 comes back (at a new address) and registers itself.
    let dir = tempfile::tempdir().expect("dir");
    let back = TestServer::start(&dir.path().join("s.db"), fastchat_server::Config::default())
        .await
        .expect("restarts");
    let mut params = ObjectParams::new();
    params.insert("id", "s2").expect("json");
    params.insert("addr", back.addr.to_string()).expect("json");
    let ok: bool = fx.client.request(REGISTER, params).await.expect("register");
    assert!(ok);
    fx.until("s2 healthy again", |s| s.iter().all(|s| s.healthy))
        .await;
    assert!(fx.spread(30).await.contains_key("s2"));
    fx.balancer.stop().await;
}

#[tokio::test]
async fn no_healthy_server_is_a_clear_error() {
    let config = Config {
        servers: vec![("s1".into(), "127.0.0.1:1".into())],
        probe_interval: Duration::from_millis(50),
        ..Config::default()
    };
    let balancer = Balancer::start("127.0.0.1:0", config)
        .await
        .expect("balancer");
    let client = HttpClientBuilder::default()
        .build(format!("http://{}", balancer.addr))
        .expect("client");
    let err = client
        .request::<Picked, _>(PICK, rpc_params![])
        .await
        .expect_err("none healthy");
    assert!(err.to_string().contains("no healthy server"), "{err}");
    balancer.stop().await;
}

#[test]
fn the_binary_refuses_a_daemon_side_strategy_with_a_reason() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_fastchat-balancer"))
        .args(["--strategy", "random"])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("chosen by the daemon"), "{stderr}");
}

#[tokio::test]
async fn pick_honours_exclude_and_answers_plain_http() {
    let fx = fixture(Strategy::RoundRobin).await;
    for _ in 0..6 {
        let mut params = ObjectParams::new();
        params.insert("exclude", ["s1", "s3"]).expect("json");
        let picked: Picked = fx.client.request(PICK, params).await.expect("pick");
        assert_eq!(picked.id, "s2");
    }
    // Any HTTP client can ask, as the contract says (POST / with a JSON-RPC body).
    let mut stream = tokio::net::TcpStream::connect(fx.balancer.addr)
        .await
        .expect("connects");
    let body = r#"{"jsonrpc":"2.0","id":1,"method":"servers"}"#;
    let request = format!(
        "POST / HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    stream.write_all(request.as_bytes()).await.expect("writes");
    let mut response = String::new();
    tokio::time::timeout(DEADLINE, stream.read_to_string(&mut response))
        .await
        .expect("answers in time")
        .expect("reads");
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(
        response.contains(r#""healthy":true"#) && response.contains(r#""id":"s2""#),
        "{response}"
    );
    fx.balancer.stop().await;
}
