//! The daemon behind a balancer with two servers sharing PostgreSQL: when its server dies it
//! moves to the other one and nothing acknowledged is lost.

use std::time::Duration;

use fastchat_server::testing::TestDatabase;
use serde_json::Value;

use crate::support::{Daemon, Server, eventually, free_addr, texts};

const PATIENCE: Duration = Duration::from_secs(30);

#[test]
fn the_daemon_moves_to_another_server_when_its_server_dies() {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let Some(db) = runtime.block_on(TestDatabase::create()) else {
        return;
    };
    let root = tempfile::tempdir().expect("temp dir");
    let balancer = Server::spawn(
        "fastchat-balancer",
        &[
            "--listen",
            &free_addr(),
            "--strategy",
            "round-robin",
            "--probe-interval-ms",
            "100",
        ],
    );
    let mut servers: Vec<(String, Server)> = ["s1", "s2"]
        .into_iter()
        .map(|id| {
            let server = Server::spawn(
                "fastchat-server",
                &[
                    "--listen",
                    &free_addr(),
                    "--id",
                    id,
                    "--database-url",
                    &db.url,
                    "--balancer",
                    &balancer.addr,
                ],
            );
            (id.to_owned(), server)
        })
        .collect();

    let alice = Daemon::configure(root.path(), "alice", "", false, Vec::new())
        .via_balancer(&balancer.addr)
        .started();
    let bob = Daemon::configure(root.path(), "bob", "", false, Vec::new())
        .via_balancer(&balancer.addr)
        .started();
    eventually("both servers healthy at the balancer", PATIENCE, || {
        let list = alice.json(&["servers"]);
        (list.len() == 2 && list.iter().all(|s| s["healthy"] == true)).then_some(())
    });
    alice.signup();
    bob.signup();
    alice.json(&["group", "create", "team", "--members", "bob"]);
    alice.json(&["send", "--group", "team", "one"]);

    let status = alice.json(&["status"]).remove(0);
    assert_eq!(status["strategy"], "balancer");
    let used: String = status["server"]["id"]
        .as_str()
        .expect("a server")
        .to_owned();
    let current: Vec<Value> = alice
        .json(&["servers"])
        .into_iter()
        .filter(|s| s["current"] == true)
        .collect();
    assert_eq!(current.len(), 1);
    assert_eq!(current[0]["id"], used.as_str());

    // Alice's server dies; her next send goes through the other one.
    let (_, dead) = servers
        .iter_mut()
        .find(|(id, _)| *id == used)
        .expect("the server in use");
    dead.kill_9();
    alice.json(&["send", "--group", "team", "two"]);
    let status = alice.json(&["status"]).remove(0);
    assert_eq!(status["connected"], true);
    assert_ne!(
        status["server"]["id"],
        used.as_str(),
        "moved to the other server"
    );

    eventually("bob to get both messages, once each", PATIENCE, || {
        (texts(&bob.history(&["--group", "team"])) == ["one", "two"]).then_some(())
    });
    drop(runtime);
}
