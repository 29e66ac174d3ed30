//! `fastchat-server --balancer`: the real binary registers with a real balancer, reports
//! its load every second, and drops out of the rotation when it dies.

use std::process::{Command, Stdio};
use std::time::Duration;

use fastchat_balancer::{Balancer, Config, Strategy};
use fastchat_link::{Link, LinkConfig};
use fastchat_proto::Ping;
use fastchat_proto::balancer::{PICK, Picked, SERVERS, ServerStatus};
use jsonrpsee::core::client::ClientT;
use jsonrpsee::core::params::ObjectParams;
use jsonrpsee::http_client::HttpClientBuilder;
use jsonrpsee::rpc_params;

use crate::support::DEADLINE;

#[tokio::test]
async fn a_server_announces_itself_reports_its_load_and_drops_out_when_killed() {
    let (balancer, rpc) = start_balancer(Strategy::LeastConnections).await;
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
    let (mut child, addr) =
        spawn_server("s9", &balancer.addr.to_string(), &dir.path().join("s.db"));

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

/// A balancer probing every 100 ms, and a JSON-RPC client for it.
async fn start_balancer(strategy: Strategy) -> (Balancer, jsonrpsee::http_client::HttpClient) {
    let config = Config {
        strategy,
        probe_interval: Duration::from_millis(100),
        ..Config::default()
    };
    let balancer = Balancer::start("127.0.0.1:0", config)
        .await
        .expect("balancer");
    let rpc = HttpClientBuilder::default()
        .build(format!("http://{}", balancer.addr))
        .expect("client");
    (balancer, rpc)
}

fn spawn_server(id: &str, balancer: &str, db: &std::path::Path) -> (std::process::Child, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_fastchat-server"))
        .args([
            "--listen",
            "127.0.0.1:0",
            "--id",
            id,
            "--cpu-metric",
            "process",
        ])
        .args(["--balancer", balancer, "--database-url"])
        .arg(format!("sqlite://{}", db.display()))
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
    (child, addr)
}

/// Three real servers on one machine, each reporting its own CPU use; one is kept busy by
/// clients hammering it. `least-cpu` sends 60 new connections to the other two.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn least_cpu_avoids_a_server_kept_busy() {
    let (balancer, rpc) = start_balancer(Strategy::LeastCpu).await;
    let dir = tempfile::tempdir().expect("dir");
    let mut children = Vec::new();
    let mut busy_addr = String::new();
    for id in ["busy", "idle-1", "idle-2"] {
        let (child, addr) = spawn_server(
            id,
            &balancer.addr.to_string(),
            &dir.path().join(format!("{id}.db")),
        );
        if id == "busy" {
            busy_addr = addr;
        }
        children.push(child);
    }
    let deadline = tokio::time::Instant::now() + DEADLINE;
    let statuses = || async {
        rpc.request::<Vec<ServerStatus>, _>(SERVERS, rpc_params![])
            .await
            .expect("servers")
    };
    while statuses().await.iter().filter(|s| s.healthy).count() != 3 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "servers never became healthy"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // The burner: connections pinging "busy" as fast as it answers.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut burners = Vec::new();
    for _ in 0..4 {
        let (link, _pushes) = Link::connect(&LinkConfig::new(&busy_addr))
            .await
            .expect("connects");
        for _ in 0..8 {
            let (link, stop) = (link.clone(), std::sync::Arc::clone(&stop));
            burners.push(tokio::spawn(async move {
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    if link.request(Ping {}).await.is_err() {
                        break;
                    }
                }
            }));
        }
    }
    let load = |s: &[ServerStatus], id: &str| s.iter().find(|s| s.id == id).map_or(0.0, |s| s.cpu);
    loop {
        let now = statuses().await;
        let busy = load(&now, "busy");
        if busy > 5.0 && busy > 2.0 * load(&now, "idle-1").max(load(&now, "idle-2")) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the burner never showed: {now:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let mut picked = std::collections::BTreeMap::<String, u32>::new();
    for _ in 0..60 {
        let mut params = ObjectParams::new();
        params
            .insert("exclude", Vec::<String>::new())
            .expect("params");
        let p: Picked = rpc.request(PICK, params).await.expect("pick");
        *picked.entry(p.id).or_default() += 1;
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for b in burners {
        let _ = b.await;
    }
    assert_eq!(
        picked.get("busy"),
        None,
        "least-cpu picked the busy server: {picked:?}"
    );
    assert_eq!(picked.values().sum::<u32>(), 60);
    for mut c in children {
        let _ = c.kill();
        let _ = c.wait();
    }
    balancer.stop().await;
}
