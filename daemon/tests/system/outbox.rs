//! Nothing is lost or doubled when the daemon dies with sends pending.

use std::time::Duration;

use fastchat_api::{ConversationRef, FastChatApiClient};

use crate::support::{Daemon, Server, eventually, texts};

#[test]
fn sends_pending_when_the_daemon_is_killed_are_sent_once_after_restart() {
    let root = tempfile::tempdir().expect("temp dir");
    let server = Server::start(root.path());
    let mut alice = Daemon::start(root.path(), "alice", &server.addr);
    let bob = Daemon::start(root.path(), "bob", &server.addr);
    alice.signup();
    bob.signup();
    alice.json(&["group", "create", "team", "--members", "bob"]);
    alice.json(&["send", "--group", "team", "before"]);

    // The server goes away; alice sends 20 messages, which wait in her outbox.
    let (db, addr) = server.stop();
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let socket = alice.socket.clone();
    runtime.block_on(async {
        let client = std::sync::Arc::new(fastchat_api::connect(&socket).await.expect("connects"));
        for i in 0..20 {
            let client = client.clone();
            tokio::spawn(async move {
                // Answered with an error (or never) while no server is up; queued either way.
                let _ = client
                    .send(
                        ConversationRef::Group("team".into()),
                        format!("pending {i:02}"),
                    )
                    .await;
            });
        }
    });
    // Sends are sealed and queued one by one; wait until all 20 are in the outbox.
    eventually("20 pending sends", Duration::from_secs(60), || {
        let s = alice.json(&["status"]).remove(0);
        (s["pending"] == 20).then_some(())
    });
    alice.kill_9();

    let _server = Server::start_at(&db, &addr);
    alice.spawn();
    eventually("the outbox to drain", Duration::from_secs(60), || {
        let s = alice.json(&["status"]).remove(0);
        (s["pending"] == 0).then_some(())
    });
    // The restarted daemon is locked (its key needs the password) but still delivered.
    let status = alice.json(&["status"]).remove(0);
    assert_eq!(status["locked"], true);

    let got = eventually("bob to get all 21", Duration::from_secs(60), || {
        let h = texts(&bob.history(&["--group", "team"]));
        (h.len() >= 21).then_some(h)
    });
    let mut pending: Vec<String> = got[1..].to_vec();
    pending.sort();
    let expected: Vec<String> = (0..20).map(|i| format!("pending {i:02}")).collect();
    assert_eq!(got[0], "before");
    assert_eq!(pending, expected, "each pending message exactly once");
    drop(runtime);

    // Alice logs in again: her key unlocks and her own history shows every message once.
    let out = alice.ctl_with_input(
        &["login", "alice", "--password-stdin"],
        &format!("{}\n", crate::support::PASSWORD),
    );
    crate::support::assert_success(&out, "login after restart");
    let mine = eventually("alice's history", Duration::from_secs(30), || {
        let h = texts(&alice.history(&["--group", "team"]));
        (h.len() >= 21).then_some(h)
    });
    assert_eq!(mine.len(), 21, "{mine:?}");
}
