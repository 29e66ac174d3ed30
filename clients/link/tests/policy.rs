//! The dialer against real servers: a lost server is replaced by another at once, and with
//! no server at all the client backs off instead of spinning.

use std::time::Duration;

use fastchat_link::LinkConfig;
use fastchat_link::policy::{Backoff, ClientStrategy, Dialer};
use fastchat_server::Config;
use fastchat_server::testing::TestServer;
use tokio::time::Instant;

/// Two real servers, each on SQLite in its own folder (returned so it lives as long).
async fn two_servers() -> ([tempfile::TempDir; 2], TestServer, TestServer) {
    let dirs = [
        tempfile::tempdir().expect("dir"),
        tempfile::tempdir().expect("dir"),
    ];
    let a = TestServer::start(&dirs[0].path().join("a.db"), Config::default())
        .await
        .expect("a");
    let b = TestServer::start(&dirs[1].path().join("b.db"), Config::default())
        .await
        .expect("b");
    (dirs, a, b)
}

#[tokio::test]
async fn a_lost_server_is_replaced_by_another_within_five_seconds() {
    let (_dirs, a, b) = two_servers().await;
    let (addr_a, addr_b) = (a.addr.to_string(), b.addr.to_string());
    let mut dialer = Dialer::new(
        vec![addr_a.clone(), addr_b.clone()],
        ClientStrategy::ClientRoundRobin,
        LinkConfig::new(""),
    );
    let deadline = Instant::now() + Duration::from_secs(5);
    let (first, _link, _pushes) = dialer.connect(None, deadline).await.expect("connects");
    assert_eq!(first, addr_a);

    a.stop().await.expect("a stops");
    let started = Instant::now();
    let (second, link, _pushes) = dialer
        .connect(Some(&first), started + Duration::from_secs(5))
        .await
        .expect("fails over");
    assert_eq!(second, addr_b, "the failed server is not tried first");
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(link.welcome().server_id, "server-1");
    drop(link);
    b.stop().await.expect("b stops");
}

#[tokio::test]
async fn with_no_server_at_all_attempts_are_bounded() {
    // Two addresses where nothing listens.
    let mut closed = Vec::new();
    for _ in 0..2 {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        closed.push(l.local_addr().expect("addr").to_string());
    }
    let mut dialer = Dialer::new(closed, ClientStrategy::Random, LinkConfig::new("")).with_backoff(
        Backoff::new(Duration::from_millis(50), Duration::from_millis(400)),
    );
    let started = Instant::now();
    let result = dialer.connect(None, started + Duration::from_secs(3)).await;
    assert!(result.is_err());
    let elapsed = started.elapsed();
    // It never sleeps past the deadline; the last attempt may end a little after it.
    assert!(
        elapsed < Duration::from_secs(4),
        "gave up at the deadline, not long after: {elapsed:?}"
    );
    // Refused connections fail in microseconds: without backoff this would be thousands.
    // With a 400 ms cap and full jitter, three seconds hold about fifteen attempts.
    assert!(
        (3..=60).contains(&dialer.attempts),
        "{} attempts in {elapsed:?}",
        dialer.attempts
    );
}

/// A minute of the default policy (100 ms base, 10 s cap, full jitter) against addresses
/// where nothing listens, on tokio's paused clock: the minute passes as fast as the attempts
/// fail, and the count is what a real minute would hold.
#[tokio::test(start_paused = true)]
async fn with_no_server_at_all_a_minute_holds_a_bounded_number_of_attempts() {
    let mut closed = Vec::new();
    for _ in 0..2 {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        closed.push(l.local_addr().expect("addr").to_string());
    }
    let mut dialer = Dialer::new(
        closed,
        ClientStrategy::ClientRoundRobin,
        LinkConfig::new(""),
    );
    let started = Instant::now();
    let result = dialer
        .connect(None, started + Duration::from_secs(60))
        .await;
    assert!(result.is_err());
    // The doubling ceilings reach the 10 s cap by the eighth attempt; after that a wait
    // averages 5 s. Without backoff, refused connections would make thousands a second.
    assert!(
        (4..=60).contains(&dialer.attempts),
        "{} attempts in one minute",
        dialer.attempts
    );
}

#[tokio::test]
async fn with_the_balancer_down_sessions_go_on_and_new_connections_use_the_cached_list() {
    let (_dirs, a, b) = two_servers().await;
    let config = fastchat_balancer::Config {
        probe_interval: Duration::from_millis(50),
        servers: vec![
            ("a".into(), a.addr.to_string()),
            ("b".into(), b.addr.to_string()),
        ],
        ..Default::default()
    };
    let balancer = fastchat_balancer::Balancer::start("127.0.0.1:0", config)
        .await
        .expect("balancer");
    let balancer_addr = balancer.addr.to_string();

    let mut dialer = Dialer::new(
        Vec::new(),
        ClientStrategy::ClientRoundRobin,
        LinkConfig::new(""),
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    while dialer.servers().len() < 2 {
        dialer
            .refresh_from(&balancer_addr)
            .await
            .expect("the balancer answers");
        assert!(
            Instant::now() < deadline,
            "both servers healthy at the balancer"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (_, session, _pushes) = dialer.connect(None, deadline).await.expect("connects");

    balancer.stop().await;
    // The session does not depend on the balancer.
    session
        .request(fastchat_proto::Ping {})
        .await
        .expect("the session goes on");
    // Asking the balancer fails, the cached list stays, and new connections work.
    assert!(dialer.refresh_from(&balancer_addr).await.is_err());
    assert_eq!(dialer.servers().len(), 2);
    for _ in 0..2 {
        let (addr, link, _p) = dialer
            .connect(None, Instant::now() + Duration::from_secs(5))
            .await
            .expect("connects");
        assert!(addr == a.addr.to_string() || addr == b.addr.to_string());
        link.request(fastchat_proto::Ping {})
            .await
            .expect("new connection works");
    }
    drop(session);
    a.stop().await.expect("a");
    b.stop().await.expect("b");
}

#[tokio::test]
async fn the_balancer_picks_excludes_the_failed_server_and_is_not_needed_to_go_on() {
    let (_dirs, a, b) = two_servers().await;
    let mut servers = vec![Some(a), Some(b)];
    let addrs: Vec<String> = servers
        .iter()
        .flatten()
        .map(|s| s.addr.to_string())
        .collect();
    let config = fastchat_balancer::Config {
        probe_interval: Duration::from_millis(50),
        servers: vec![
            ("a".into(), addrs[0].clone()),
            ("b".into(), addrs[1].clone()),
        ],
        ..Default::default()
    };
    let balancer = fastchat_balancer::Balancer::start("127.0.0.1:0", config)
        .await
        .expect("balancer");
    let deadline = Instant::now() + Duration::from_secs(20);
    while balancer.statuses().iter().filter(|s| s.healthy).count() < 2 {
        assert!(
            Instant::now() < deadline,
            "both servers healthy at the balancer"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let mut dialer = Dialer::new(
        Vec::new(),
        ClientStrategy::ClientRoundRobin,
        LinkConfig::new(""),
    )
    .with_balancer(balancer.addr.to_string());
    let (first, _link, _p) = dialer
        .connect(None, Instant::now() + Duration::from_secs(5))
        .await
        .expect("picked");
    assert!(addrs.contains(&first));

    // The picked server dies: the next pick excludes it, and the report ejects it.
    let dead = addrs.iter().position(|a| *a == first).expect("known");
    servers[dead]
        .take()
        .expect("running")
        .stop()
        .await
        .expect("stops");
    let (second, _link2, _p2) = dialer
        .connect(Some(&first), Instant::now() + Duration::from_secs(5))
        .await
        .expect("another");
    assert_ne!(second, first);
    let dead_id = if dead == 0 { "a" } else { "b" };
    assert!(
        balancer
            .statuses()
            .iter()
            .any(|s| s.id == dead_id && !s.healthy),
        "reported and ejected"
    );

    // Without the balancer, the servers learnt from its picks are still there to use.
    balancer.stop().await;
    let (third, link3, _p3) = dialer
        .connect(Some(&first), Instant::now() + Duration::from_secs(5))
        .await
        .expect("from the list");
    assert_eq!(third, second);
    link3.request(fastchat_proto::Ping {}).await.expect("works");
    for s in servers.into_iter().flatten() {
        s.stop().await.expect("stops");
    }
}
