//! Two and three users, each with their own daemon, chatting through `fastchatctl`.

use std::process::Stdio;
use std::time::Duration;

use serde_json::{Value, json};

use crate::support::{Daemon, LineReader, Server, eventually, lines, texts};

const PATIENCE: Duration = Duration::from_secs(30);

fn is_safety_number(s: &str) -> bool {
    let groups: Vec<&str> = s.split(' ').collect();
    groups.len() == 12
        && groups
            .iter()
            .all(|g| g.len() == 5 && g.chars().all(|c| c.is_ascii_digit()))
}

#[test]
fn users_chat_in_groups_and_directly_through_their_daemons() {
    let root = tempfile::tempdir().expect("temp dir");
    let server = Server::start(root.path());
    let alice = Daemon::start(root.path(), "alice", &server.addr);
    let bob = Daemon::start(root.path(), "bob", &server.addr);
    let carol = Daemon::start(root.path(), "carol", &server.addr);

    for d in [&alice, &bob, &carol] {
        let account = d.signup();
        assert_eq!(account["username"], d.name.as_str());
        let fp = account["fingerprint"].as_str().expect("fingerprint");
        assert!(is_safety_number(fp), "{fp:?}");
    }

    let team = alice.json(&["group", "create", "team", "--members", " bob, ,bob "]);
    assert_eq!(
        team,
        vec![json!({"name": "team", "members": ["alice", "bob"], "epoch": 1, "unread": 0})]
    );

    // Bob watches the group; `watch` says on stderr when its subscription is live.
    let mut watch = bob
        .ctl_command()
        .args(["--json", "watch", "--group", "team"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("watch runs");
    let watch_out = LineReader::new(watch.stdout.take().expect("stdout"));
    let watch_err = LineReader::new(watch.stderr.take().expect("stderr"));
    watch_err.until("the watch to start", PATIENCE, |l| {
        l.starts_with("watching")
    });

    let receipt = alice
        .json(&["send", "--group", "team", "hello", "bob"])
        .remove(0);
    assert_eq!(receipt["seq"], 1);
    assert_eq!(receipt["id"].as_str().map(str::len), Some(32));

    let live: Value = serde_json::from_str(&watch_out.next("bob's live message", PATIENCE))
        .expect("watch prints JSON");
    assert_eq!(live["id"], receipt["id"]);
    assert_eq!(live["seq"], 1);
    assert_eq!(live["conversation"], json!({"group": "team"}));
    assert_eq!(live["sender"], "alice");
    assert_eq!(live["kind"], "text");
    assert_eq!(live["text"], "hello bob");
    assert_eq!(live["sentAt"], receipt["sentAt"]);
    let _ = watch.kill();
    let _ = watch.wait();

    assert_eq!(bob.history(&["--group", "team"]), vec![live.clone()]);
    // The plain form: TIME SENDER: TEXT.
    let plain = bob.ctl(&["history", "--group", "team"]);
    let plain = String::from_utf8_lossy(&plain.stdout);
    let line = plain.lines().next().expect("a line");
    assert!(line.ends_with(" alice: hello bob"), "{line:?}");
    assert!(
        line.as_bytes()[..4].iter().all(u8::is_ascii_digit),
        "{line:?}"
    );

    // Carol joins: a new epoch; she cannot read what came before.
    let amended = alice
        .json(&["group", "amend", "team", "--add", "carol"])
        .remove(0);
    assert_eq!(amended["epoch"], 2);
    assert_eq!(amended["members"], json!(["alice", "bob", "carol"]));
    alice.json(&["send", "--group", "team", "welcome carol"]);
    let carol_sees = eventually("carol to get the welcome", PATIENCE, || {
        let h = carol.history(&["--group", "team"]);
        (!h.is_empty()).then_some(h)
    });
    assert_eq!(texts(&carol_sees), vec!["welcome carol"]);
    eventually("bob to get the welcome", PATIENCE, || {
        (texts(&bob.history(&["--group", "team"])) == ["hello bob", "welcome carol"]).then_some(())
    });

    // Bob leaves: he gets nothing sent after that.
    let amended = alice
        .json(&["group", "amend", "team", "--remove", "bob"])
        .remove(0);
    assert_eq!(amended["epoch"], 3);
    alice.json(&["send", "--group", "team", "bob has left"]);
    eventually("carol to get the message after bob left", PATIENCE, || {
        (texts(&carol.history(&["--group", "team"])) == ["welcome carol", "bob has left"])
            .then_some(())
    });
    eventually("bob to see he left", PATIENCE, || {
        bob.json(&["group", "list"]).is_empty().then_some(())
    });
    let bob_history = bob.history(&["--group", "team"]);
    assert!(
        !texts(&bob_history).contains(&"bob has left".to_owned()),
        "a removed member got a later message"
    );

    // Bob is added back: the first epoch he sees after the gap is signed by alice, who was an
    // admin when he last saw the group, so he accepts it and reads on (but not what he missed).
    let amended = alice
        .json(&["group", "amend", "team", "--add", "bob"])
        .remove(0);
    assert_eq!(amended["epoch"], 4);
    alice.json(&["send", "--group", "team", "welcome back, bob"]);
    eventually("bob to read on after being added back", PATIENCE, || {
        (texts(&bob.history(&["--group", "team"]))
            == ["hello bob", "welcome carol", "welcome back, bob"])
        .then_some(())
    });
    assert_eq!(bob.json(&["status"])[0]["rejected"], 0);

    // A direct conversation, opened by the first message.
    bob.json(&["send", "--user", "alice", "psst, alice"]);
    let direct = eventually("alice to get bob's direct message", PATIENCE, || {
        let out = alice.ctl(&["--json", "history", "--user", "bob"]);
        out.status
            .success()
            .then(|| lines(&out))
            .filter(|h| !h.is_empty())
    });
    assert_eq!(direct[0]["sender"], "bob");
    assert_eq!(direct[0]["conversation"], json!({"user": "bob"}));
    assert_eq!(direct[0]["text"], "psst, alice");
    alice.json(&["send", "--user", "bob", "hi bob"]);
    eventually("bob to get the answer", PATIENCE, || {
        (texts(&bob.history(&["--user", "alice"])) == ["psst, alice", "hi bob"]).then_some(())
    });

    // The sidebar's list: groups and direct conversations, the most recent first, with
    // unread counts and a preview of the newest message.
    let news = alice
        .json(&["send", "--group", "team", "team news"])
        .remove(0);
    let long = format!("{}{}", "é".repeat(70), "x".repeat(30));
    let last = alice.json(&["send", "--user", "bob", &long]).remove(0);
    let sidebar = eventually("bob to get both messages", PATIENCE, || {
        let list = bob.conversations();
        list.iter()
            .all(|c| c["unread"] == 1)
            .then_some(list)
            .filter(|l| l.len() == 2)
    });
    let preview = format!("{}{}…", "é".repeat(70), "x".repeat(10));
    assert_eq!(
        sidebar,
        vec![
            json!({
                "conversation": {"user": "alice"},
                "members": ["alice", "bob"],
                "epoch": 1,
                "unread": 1,
                "lastSeq": last["seq"],
                "lastAt": last["sentAt"],
                "lastText": preview,
            }),
            json!({
                "conversation": {"group": "team"},
                "members": ["alice", "bob", "carol"],
                "epoch": 4,
                "unread": 1,
                "lastSeq": news["seq"],
                "lastAt": news["sentAt"],
                "lastText": "team news",
            }),
        ]
    );
    // Reading a conversation clears its unread count but not its place.
    bob.history(&["--group", "team"]);
    let sidebar = bob.conversations();
    assert_eq!(sidebar[0]["conversation"], json!({"user": "alice"}));
    assert_eq!(sidebar[0]["unread"], 1);
    assert_eq!(sidebar[1]["conversation"], json!({"group": "team"}));
    assert_eq!(sidebar[1]["unread"], 0);
    // A newer message moves its conversation to the top.
    bob.json(&["send", "--group", "team", "on my way"]);
    let sidebar = bob.conversations();
    assert_eq!(sidebar[0]["conversation"], json!({"group": "team"}));
    assert_eq!(sidebar[0]["lastText"], "on my way");
    assert_eq!(sidebar[0]["unread"], 0);
    assert_eq!(sidebar[1]["conversation"], json!({"user": "alice"}));
    // Carol is in the group only.
    let carols = carol.conversations();
    assert_eq!(carols.len(), 1);
    assert_eq!(carols[0]["conversation"], json!({"group": "team"}));

    let status = alice.json(&["status"]).remove(0);
    assert_eq!(status["username"], "alice");
    assert_eq!(status["connected"], true);
    assert_eq!(status["strategy"], "client-round-robin");
    assert_eq!(status["server"]["addr"], server.addr.as_str());
    assert_eq!(status["pending"], 0);
    assert_eq!(status["rejected"], 0);
    assert_eq!(status["locked"], false);
    let fp = alice.json(&["keys", "fingerprint"]).remove(0);
    assert_eq!(fp["fingerprint"], status["fingerprint"]);
}

#[test]
fn errors_say_what_is_wrong_and_exit_1() {
    let root = tempfile::tempdir().expect("temp dir");
    let server = Server::start(root.path());
    let alice = Daemon::start(root.path(), "alice", &server.addr);

    let out = alice.ctl(&["send", "--group", "team", "hi"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.starts_with("error: not logged in"), "{err}");

    alice.signup();
    let wrong = alice.ctl_with_input(&["login", "alice", "--password-stdin"], "wrong password\n");
    assert_eq!(wrong.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&wrong.stderr).starts_with("error: "));

    let out = alice.ctl(&["group", "create", "team", "--members", "nobody"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("nobody"), "{err}");

    let out = alice.ctl(&["history", "--group", "nowhere"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("nowhere"));

    let out = alice.ctl(&["send", "--group", "team"]);
    assert_eq!(out.status.code(), Some(2), "bad usage exits 2");

    let out = alice.ctl(&["send", "--user", "nobody", "hello?"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("nobody"), "{err}");

    // A message too large for the server is refused before anything is queued.
    alice.json(&["group", "create", "solo"]);
    let huge = "x".repeat(600 * 1024);
    let out = alice.ctl_with_input(&["send", "--group", "solo", "-"], &huge);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("too long"), "{err}");
    let status = alice.json(&["status"]).remove(0);
    assert_eq!(status["pending"], 0, "nothing half-sent stays queued");
    // Text from stdin, as `-`.
    alice.ctl_with_input(&["send", "--group", "solo", "-"], "from stdin\n");
    assert_eq!(
        texts(&alice.history(&["--group", "solo"])),
        vec!["from stdin"]
    );
}

#[test]
fn watch_ends_with_an_error_when_the_daemon_stops_and_completions_need_no_daemon() {
    let root = tempfile::tempdir().expect("temp dir");
    let server = Server::start(root.path());
    let mut alice = Daemon::start(root.path(), "alice", &server.addr);
    let mut watch = alice
        .ctl_command()
        .arg("watch")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("watch runs");
    let err = LineReader::new(watch.stderr.take().expect("stderr"));
    err.until("the watch to start", PATIENCE, |l| {
        l.starts_with("watching")
    });
    assert!(alice.terminate().success());
    let line = err.next("the watch's error", PATIENCE);
    assert!(line.starts_with("error: "), "{line}");
    assert_eq!(watch.wait().expect("exits").code(), Some(1));

    for shell in ["bash", "zsh", "fish"] {
        let out = alice.ctl(&["completions", shell]);
        crate::support::assert_success(&out, shell);
        let script = String::from_utf8_lossy(&out.stdout);
        assert!(
            script.contains("fastchatctl") && script.contains("send-image"),
            "{shell} completions name the commands"
        );
    }
}
