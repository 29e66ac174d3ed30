//! The daemon's side of end-to-end encryption: the key file at rest, trust on first use with
//! a changed key refused until verified, and envelopes tampered with on the server rejected.

use std::os::unix::fs::PermissionsExt;
use std::process::Command;
use std::time::Duration;

use sqlx::Connection;

use crate::support::{Daemon, PASSWORD, Server, assert_success, eventually, texts};

const PATIENCE: Duration = Duration::from_secs(30);

#[test]
fn the_identity_key_is_encrypted_at_rest_and_readable_by_its_owner_only() {
    let root = tempfile::tempdir().expect("temp dir");
    let server = Server::start(root.path());
    let alice = Daemon::start(root.path(), "alice", &server.addr);
    alice.signup();

    let key = alice.data.join("keys").join("alice.pem");
    let mode = std::fs::metadata(&key)
        .expect("key file")
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600);
    let folder = std::fs::metadata(key.parent().expect("folder")).expect("folder");
    assert_eq!(folder.permissions().mode() & 0o777, 0o700);
    let pem = std::fs::read_to_string(&key).expect("reads");
    assert!(
        pem.starts_with("-----BEGIN ENCRYPTED PRIVATE KEY-----"),
        "{pem:.40}"
    );
    assert!(!pem.contains("BEGIN PRIVATE KEY") && !pem.contains("BEGIN RSA PRIVATE KEY"));

    // Standard tools open it with the password, and not without.
    let openssl = |pass: &str| {
        Command::new("openssl")
            .args(["pkey", "-noout", "-in"])
            .arg(&key)
            .args(["-passin", &format!("pass:{pass}")])
            .output()
            .expect("openssl runs")
    };
    assert_success(&openssl(PASSWORD), "openssl with the password");
    assert!(!openssl("not the password").status.success());

    let db = alice.data.join("history.db");
    let mode = std::fs::metadata(&db)
        .expect("history")
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600, "the decrypted history is the owner's only");
}

#[test]
fn a_changed_key_is_refused_until_verified() {
    let root = tempfile::tempdir().expect("temp dir");
    let server = Server::start(root.path());
    let alice = Daemon::start(root.path(), "alice", &server.addr);
    let bob = Daemon::start(root.path(), "bob", &server.addr);
    alice.signup();
    bob.signup();
    alice.json(&["group", "create", "team", "--members", "bob"]);
    let pinned = alice.json(&["keys", "fingerprint", "bob"]).remove(0);
    assert_eq!(
        pinned["verified"], false,
        "pinned on first use, not verified"
    );

    // Bob logs in on a new machine: a new key is published for him (or the server swaps it).
    let laptop = Daemon::start(root.path(), "bob-laptop", &server.addr);
    let out = laptop.ctl_with_input(
        &["--json", "login", "bob", "--password-stdin"],
        &format!("{PASSWORD}\n"),
    );
    assert_success(&out, "bob logs in on his laptop");
    let new_key = crate::support::lines(&out).remove(0);
    assert_ne!(new_key["fingerprint"], pinned["fingerprint"]);

    // Alice will not encrypt to the new key...
    let out = alice.ctl(&["group", "create", "second", "--members", "bob"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("bob's key changed") && err.contains("keys verify bob"),
        "{err}"
    );

    // ...nor accept what it signs.
    laptop.json(&["send", "--user", "alice", "it is me, on my laptop"]);
    eventually("alice to reject the message", PATIENCE, || {
        (alice.json(&["status"])[0]["rejected"] == 1).then_some(())
    });
    let out = alice.ctl(&["--json", "history", "--user", "bob"]);
    assert!(
        texts(&crate::support::lines(&out)).is_empty(),
        "a message signed by an unverified key was shown"
    );

    // A wrong fingerprint changes nothing; the right one (compared out of band) does.
    let out = alice.ctl(&[
        "keys",
        "verify",
        "bob",
        pinned["fingerprint"].as_str().expect("fp"),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let fp = new_key["fingerprint"].as_str().expect("fp");
    let verified = alice.json(&["keys", "verify", "bob", fp]).remove(0);
    assert_eq!(verified["verified"], true);
    let shown = alice.json(&["keys", "fingerprint", "bob"]).remove(0);
    assert_eq!(shown["fingerprint"], new_key["fingerprint"]);
    assert_eq!(shown["verified"], true);
    alice.json(&["group", "create", "second", "--members", "bob"]);
    laptop.json(&["send", "--group", "second", "verified now"]);
    eventually(
        "alice to accept the verified key's message",
        PATIENCE,
        || (texts(&alice.history(&["--group", "second"])) == ["verified now"]).then_some(()),
    );
}

#[test]
fn an_envelope_tampered_with_on_the_server_is_rejected_and_counted() {
    let root = tempfile::tempdir().expect("temp dir");
    let server = Server::start(root.path());
    let alice = Daemon::start(root.path(), "alice", &server.addr);
    let mut bob = Daemon::start(root.path(), "bob", &server.addr);
    alice.signup();
    bob.signup();
    alice.json(&["group", "create", "team", "--members", "bob"]);
    assert!(bob.terminate().success());
    alice.json(&["send", "--group", "team", "genuine"]);
    alice.json(&["send", "--group", "team", "to be tampered with"]);

    // The server's operator flips one byte in the middle of the second envelope.
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let url = format!("sqlite://{}", root.path().join("server.db").display());
        let mut db = sqlx::SqliteConnection::connect(&url).await.expect("opens");
        let envelope: Vec<u8> = sqlx::query_scalar("SELECT envelope FROM messages WHERE seq = 2")
            .fetch_one(&mut db)
            .await
            .expect("the second message");
        let mut tampered = envelope.clone();
        let middle = tampered.len() / 2;
        tampered[middle] ^= 0x01;
        let changed = sqlx::query("UPDATE messages SET envelope = ?1 WHERE seq = 2")
            .bind(tampered)
            .execute(&mut db)
            .await
            .expect("updates");
        assert_eq!(changed.rows_affected(), 1);
    });

    bob.spawn();
    let out = bob.ctl_with_input(
        &["login", "bob", "--password-stdin"],
        &format!("{PASSWORD}\n"),
    );
    assert_success(&out, "bob logs in");
    eventually("bob to sort the two messages", PATIENCE, || {
        let s = bob.json(&["status"]).remove(0);
        (s["rejected"] == 1).then_some(())
    });
    assert_eq!(texts(&bob.history(&["--group", "team"])), vec!["genuine"]);
    assert!(
        bob.log_text()
            .contains("rejected a message that failed verification"),
        "the rejection is logged"
    );
}
