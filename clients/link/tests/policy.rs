//! The dialer against real servers: a lost server is replaced by another at once, and with
//! no server at all the client backs off instead of spinning.

use std::time::Duration;

use fastchat_link::LinkConfig;
use fastchat_link::policy::{Backoff, ClientStrategy, Dialer};
use fastchat_server::Config;
use fastchat_server::testing::TestServer;
use tokio::time::Instant;

#[tokio::test]
async fn a_lost_server_is_replaced_by_another_within_five_seconds() {
    let (dir_a, dir_b) = (
        tempfile::tempdir().expect("dir"),
        tempfile::tempdir().expect("dir"),
    );
    let a = TestServer::start(&dir_a.path().join("a.db"), Config::default())
        .await
        .expect("a");
    let b = TestServer::start(&dir_b.path().join("b.db"), Config::default())
        .await
        .expect("b");
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
    assert!(
        elapsed <= Duration::from_secs(3),
        "gave up in time: {elapsed:?}"
    );
    // Refused connections fail in microseconds: without backoff this would be thousands.
    // With a 400 ms cap and full jitter, three seconds hold about fifteen attempts.
    assert!(
        (3..=60).contains(&dialer.attempts),
        "{} attempts in {elapsed:?}",
        dialer.attempts
    );
}
