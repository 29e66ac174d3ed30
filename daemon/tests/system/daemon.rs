//! The daemon as a process: one per profile, a private socket that curl can call, clean
//! shutdown, and autostart from `fastchatctl`.

use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use crate::support::{Daemon, Server, assert_success, bin, eventually, lines};

fn curl_status(socket: &std::path::Path, as_nobody: bool) -> std::process::Output {
    let mut c = if as_nobody {
        let mut c = Command::new("setpriv");
        c.args([
            "--reuid",
            "65534",
            "--regid",
            "65534",
            "--clear-groups",
            "curl",
        ]);
        c
    } else {
        Command::new("curl")
    };
    c.args(["-sS", "--max-time", "10", "--unix-socket"])
        .arg(socket)
        .args([
            "-H",
            "content-type: application/json",
            "-d",
            r#"{"jsonrpc":"2.0","id":1,"method":"status"}"#,
            "http://localhost/",
        ])
        .output()
        .expect("curl runs")
}

#[test]
fn the_socket_is_private_and_speaks_json_rpc_over_http() {
    let root = tempfile::tempdir().expect("temp dir");
    let server = Server::start(root.path());
    let alice = Daemon::start(root.path(), "alice", &server.addr);

    let mode =
        |p: &std::path::Path| std::fs::metadata(p).expect("exists").permissions().mode() & 0o777;
    assert_eq!(mode(&alice.socket), 0o600, "socket mode");
    assert_eq!(
        mode(alice.socket.parent().expect("folder")),
        0o700,
        "socket folder mode"
    );
    assert_eq!(mode(&alice.data), 0o700, "data folder mode");

    let out = curl_status(&alice.socket, false);
    assert_success(&out, "curl");
    let answer: Value = serde_json::from_slice(&out.stdout).expect("JSON-RPC answer");
    assert_eq!(answer["jsonrpc"], "2.0");
    assert_eq!(answer["id"], 1);
    assert_eq!(answer["result"]["profile"], "alice");
    assert_eq!(answer["result"]["username"], Value::Null);

    // Open the folders so that only the socket's own mode and the uid check stand in the
    // way, then connect as another user.
    for dir in [
        root.path(),
        root.path().join("alice").as_path(),
        alice.socket.parent().expect("folder"),
    ] {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    }
    let out = curl_status(&alice.socket, true);
    assert!(
        !out.status.success(),
        "another user got an answer: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    // Even with the socket opened to everyone (a careless chmod), the daemon checks the
    // peer's uid and serves nobody else.
    std::fs::set_permissions(&alice.socket, std::fs::Permissions::from_mode(0o666)).expect("chmod");
    let out = curl_status(&alice.socket, true);
    assert!(
        !out.status.success(),
        "another user got an answer through the opened socket: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(
        alice
            .log_text()
            .contains("refused a connection from another user")
    );

    // Unknown methods and bad params get JSON-RPC errors, and the daemon goes on.
    let out = Command::new("curl")
        .args(["-sS", "--unix-socket"])
        .arg(&alice.socket)
        .args([
            "-H",
            "content-type: application/json",
            "-d",
            r#"{"jsonrpc":"2.0","id":2,"method":"send","params":{"to":{"group":"x"}}}"#,
            "http://localhost/",
        ])
        .output()
        .expect("curl");
    let answer: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(answer["error"]["code"], -32602, "{answer}");
    let out = Command::new("curl")
        .args(["-sS", "--unix-socket"])
        .arg(&alice.socket)
        .args([
            "-H",
            "content-type: application/json",
            "-d",
            "{not json",
            "http://localhost/",
        ])
        .output()
        .expect("curl");
    let answer: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(answer["error"]["code"], -32700, "{answer}");
    assert_success(&curl_status(&alice.socket, false), "curl after a bad call");
}

#[test]
fn one_daemon_per_profile_and_sigterm_stops_it_cleanly() {
    let root = tempfile::tempdir().expect("temp dir");
    let server = Server::start(root.path());
    let mut alice = Daemon::start(root.path(), "alice", &server.addr);

    let second = alice
        .command()
        .stderr(Stdio::piped())
        .output()
        .expect("second daemon runs");
    assert_eq!(second.status.code(), Some(1));
    let err = String::from_utf8_lossy(&second.stderr);
    assert!(
        err.contains("another fastchatd already runs for profile alice")
            && err.contains(&format!("pid {}", alice.pid())),
        "{err}"
    );
    // The first one still serves.
    assert_success(&alice.ctl(&["status"]), "status after the second daemon");

    let status = alice.terminate();
    assert!(status.success(), "SIGTERM exit: {status}");
    assert!(
        !alice.socket.exists(),
        "the socket is removed on a clean exit"
    );
    // And the profile can be served again.
    alice.spawn();
    assert_success(&alice.ctl(&["status"]), "status after a restart");
}

#[test]
fn fastchatctl_starts_the_daemon_unless_told_not_to() {
    let root = tempfile::tempdir().expect("temp dir");
    let server = Server::start(root.path());
    let socket = root.path().join("run").join("dave.sock");
    let ctl = |extra: &[&str]| {
        Command::new(bin("fastchatctl"))
            .args(["--profile", "dave", "--socket"])
            .arg(&socket)
            .args(["--server", &server.addr])
            .args(extra)
            .env("XDG_DATA_HOME", root.path().join("data"))
            .stdin(Stdio::null())
            .output()
            .expect("fastchatctl runs")
    };
    let out = ctl(&["--no-autostart", "status"]);
    assert_eq!(out.status.code(), Some(3));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("no daemon for profile dave") && err.contains("fastchatd"),
        "{err}"
    );

    let out = ctl(&["--json", "status"]);
    assert_success(&out, "status with autostart");
    let status = lines(&out).remove(0);
    assert_eq!(status["profile"], "dave");
    let data = root.path().join("data/fastchat/profiles/dave");
    assert!(
        data.join("history.db").exists(),
        "the daemon keeps dave's data in XDG_DATA_HOME"
    );
    eventually(
        "the autostarted daemon to connect",
        Duration::from_secs(20),
        || {
            let out = ctl(&["--json", "status"]);
            (lines(&out)[0]["connected"] == true).then_some(())
        },
    );
    // Stop it: it holds the profile lock, whose file names its pid.
    let lock = std::fs::read_to_string(data.join("fastchatd.lock")).expect("lock file");
    let pid = lock
        .strip_prefix("pid ")
        .and_then(|r| r.split(',').next())
        .expect("pid in the lock file");
    assert!(
        Command::new("kill")
            .args(["-TERM", pid])
            .status()
            .expect("kill")
            .success()
    );
    eventually("the daemon to stop", Duration::from_secs(20), || {
        (ctl(&["--no-autostart", "status"]).status.code() == Some(3)).then_some(())
    });
}
