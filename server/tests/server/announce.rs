//! `fastchat-server --balancer`: the real binary registers with a real balancer, reports
//! its load every second, and drops out of the rotation when it dies.

use std::process::{Command, Stdio};
use std::time::Duration;

use fastchat_balancer::{Balancer, Config, Strategy};
use fastchat_link::{Link, LinkConfig};
use fastchat_proto::balancer::{SERVERS, ServerStatus};
use jsonrpsee::core::client::ClientT;
use jsonrpsee::http_client::HttpClientBuilder;
use jsonrpsee::rpc_params;

use crate::support::DEADLINE;

#[tokio::test]
async fn a_server_announces_itself_reports_its_load_and_drops_out_when_killed() {
    let config = Config {
        strategy: Strategy::LeastConnections,
        probe_interval: Duration::from_millis(100),
        ..Config::default()
    };
    let balancer = Balancer::start("127.0.0.1:0", config)
        .await
        .expect("balancer");
    let rpc = HttpClientBuilder::default()
        .build(format!("http://{}", balancer.addr))
        .expect("client");
    let servers = || async {
        rpc.request::<Vec<ServerStatus>, _>(SERVERS, rpc_params![])
            .await
            .expect("servers")
    };
    let until = |what: &'static str, done: fn(&[ServerStatus]) -> bool| {
        let servers = &servers;
        async move {
            let deadline = tokio::time::Instant::now() + DEADLINE;
            loop {
                let now = servers().await;
                if done(&now) {
                    return now;
                }
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "timed out waiting for {what}: {now:?}"
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    };

    let dir = tempfile::tempdir().expect("dir");
    let mut child = Command::new(env!("CARGO_BIN_EXE_fastchat-server"))
        .args(["--listen", "127.0.0.1:0", "--id", "s9", "--balancer"])
        .arg(balancer.addr.to_string())
        .arg("--database-url")
        .arg(format!("sqlite://{}", dir.path().join("s.db").display()))
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .spawn()
        .expect("server starts");
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.take().expect("stdout")),
        &mut line,
    )
    .expect("reads");
    let addr = line
        .trim()
        .strip_prefix("listening on ")
        .expect("listening line")
        .to_owned();

    let now = until("s9 registered", |s| {
        s.iter().any(|s| s.id == "s9" && s.healthy)
    })
    .await;
    assert_eq!(now[0].addr, addr, "advertised at its listening address");
    assert!((0.0..=100.0).contains(&now[0].cpu));

    // Two clients connect: the next heartbeats say so.
    let _a = Link::connect(&LinkConfig::new(&addr))
        .await
        .expect("connects");
    let _b = Link::connect(&LinkConfig::new(&addr))
        .await
        .expect("connects");
    until("two connections reported", |s| {
        s.iter().any(|s| s.id == "s9" && s.connections == 2)
    })
    .await;

    // Killed: out of the rotation (probes fail, heartbeats stop).
    child.kill().expect("kill");
    child.wait().expect("reaped");
    until("s9 unhealthy", |s| {
        s.iter().any(|s| s.id == "s9" && !s.healthy)
    })
    .await;
    balancer.stop().await;
}
