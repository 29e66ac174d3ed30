//! Images end to end: sealed in chunks by the sender's daemon, stored as ciphertext by the
//! server, verified, decrypted and stored with a thumbnail by every member's daemon.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;
use sqlx::Connection;

use crate::support::{Daemon, PASSWORD, Server, assert_success, eventually, lines};

const PATIENCE: Duration = Duration::from_secs(60);

/// A PNG of noise (so it does not compress) about `side * side * 3` bytes long.
fn noise_png(path: &Path, side: u32, seed: u64) -> Vec<u8> {
    let mut state = seed;
    let image = image::RgbImage::from_fn(side, side, |_, _| {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        let b = (state >> 33).to_le_bytes();
        image::Rgb([b[0], b[1], b[2]])
    });
    image.save(path).expect("writes the PNG");
    std::fs::read(path).expect("reads it back")
}

fn image_messages(d: &Daemon, conversation: &[&str]) -> Vec<Value> {
    d.history(conversation)
        .into_iter()
        .filter(|m| m["kind"] == "image")
        .collect()
}

/// How many chunks the server holds, read from its database.
fn server_chunks(db: &Path) -> i64 {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let url = format!("sqlite://{}?mode=ro", db.display());
        let mut conn = sqlx::SqliteConnection::connect(&url).await.expect("opens");
        sqlx::query_scalar("SELECT COUNT(*) FROM chunks")
            .fetch_one(&mut conn)
            .await
            .expect("counts")
    })
}

#[test]
fn an_image_arrives_byte_identical_at_every_member_and_the_server_sees_only_ciphertext() {
    let root = tempfile::tempdir().expect("temp dir");
    let server = Server::start(root.path());
    let alice = Daemon::start(root.path(), "alice", &server.addr);
    let bob = Daemon::start(root.path(), "bob", &server.addr);
    let carol = Daemon::start(root.path(), "carol", &server.addr);
    for d in [&alice, &bob, &carol] {
        d.signup();
    }
    alice.json(&["group", "create", "team", "--members", "bob,carol"]);

    let png = root.path().join("holiday photo.png");
    let original = noise_png(&png, 1024, 1);
    assert!(original.len() > 3 * 1024 * 1024, "{} bytes", original.len());
    let receipt = alice
        .json(&[
            "send-image",
            "--group",
            "team",
            png.to_str().expect("utf-8"),
        ])
        .remove(0);
    assert_eq!(receipt["seq"], 1);

    for d in [&bob, &carol, &alice] {
        let got = eventually(&format!("{} to get the image", d.name), PATIENCE, || {
            let m = image_messages(d, &["--group", "team"]);
            (!m.is_empty()).then(|| m[0].clone())
        });
        assert_eq!(got["sender"], "alice");
        assert_eq!(got["id"], receipt["id"]);
        assert_eq!(got["text"], "holiday_photo.png", "the sanitised name");
        let path = PathBuf::from(got["imagePath"].as_str().expect("a path"));
        assert!(
            path.starts_with(&d.data),
            "{} keeps it in its profile",
            d.name
        );
        assert_eq!(
            std::fs::read(&path).expect("the file"),
            original,
            "{}",
            d.name
        );
        let thumb = image::open(got["thumbnailPath"].as_str().expect("a thumbnail"))
            .expect("a thumbnail PNG");
        assert!(thumb.width() <= 256 && thumb.height() <= 256);
    }

    // Nothing of the picture in the clear anywhere in the server's files.
    let mut stored = Vec::new();
    for entry in std::fs::read_dir(root.path()).expect("lists") {
        let path = entry.expect("entry").path();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        if name.starts_with("server.db") {
            stored.extend(std::fs::read(&path).expect("reads"));
        }
    }
    assert!(stored.len() > original.len(), "the chunks are stored");
    for start in (1000..original.len() - 64).step_by(original.len() / 16) {
        let window = &original[start..start + 64];
        assert!(
            !stored.windows(64).any(|w| w == window),
            "plaintext bytes {start}.. found in the server's database"
        );
    }
}

#[test]
fn files_that_are_not_images_or_too_large_are_refused_before_anything_is_sent() {
    let root = tempfile::tempdir().expect("temp dir");
    let server = Server::start(root.path());
    let alice = Daemon::configure(root.path(), "alice", &server.addr, false, Vec::new())
        .with_arg("--max-image-bytes")
        .with_arg("1000000")
        .started();
    let bob = Daemon::start(root.path(), "bob", &server.addr);
    alice.signup();
    bob.signup();
    alice.json(&["group", "create", "team", "--members", "bob"]);

    let fake = root.path().join("notes.png");
    std::fs::write(&fake, "just some text, named like an image").expect("writes");
    let out = alice.ctl(&[
        "send-image",
        "--group",
        "team",
        fake.to_str().expect("utf-8"),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("is not a PNG, JPEG, GIF or WebP image"),
        "{err}"
    );

    let big = root.path().join("big.png");
    noise_png(&big, 700, 2);
    let out = alice.ctl(&[
        "send-image",
        "--group",
        "team",
        big.to_str().expect("utf-8"),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("images may have at most 1000000"), "{err}");

    let missing = alice.ctl(&["send-image", "--group", "team", "/nonexistent/x.png"]);
    assert_eq!(missing.status.code(), Some(1));

    assert_eq!(
        server_chunks(&root.path().join("server.db")),
        0,
        "nothing uploaded"
    );
    assert_eq!(alice.json(&["status"])[0]["pending"], 0);
    alice.json(&["send", "--group", "team", "still fine"]);
    eventually("bob to get the text", PATIENCE, || {
        (crate::support::texts(&bob.history(&["--group", "team"])) == ["still fine"]).then_some(())
    });
}

#[test]
fn text_overtakes_a_large_image_and_a_cut_transfer_leaves_nothing_half() {
    let root = tempfile::tempdir().expect("temp dir");
    let server = Server::start(root.path());
    let db = root.path().join("server.db");
    let mut alice = Daemon::start(root.path(), "alice", &server.addr);
    let bob = Daemon::start(root.path(), "bob", &server.addr);
    alice.signup();
    bob.signup();
    alice.json(&["group", "create", "team", "--members", "bob"]);
    let png = root.path().join("large.png");
    let original = noise_png(&png, 2800, 3);
    let png_arg = png.to_str().expect("utf-8").to_owned();

    // A text sent while a 23 MiB image is being uploaded is stored first.
    let upload = alice
        .ctl_command()
        .args(["--json", "send-image", "--group", "team", &png_arg])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("send-image runs");
    eventually("the upload to start", PATIENCE, || {
        (server_chunks(&db) > 0).then_some(())
    });
    let text = alice
        .json(&["send", "--group", "team", "meanwhile"])
        .remove(0);
    let out = upload.wait_with_output().expect("send-image ends");
    assert_success(&out, "send-image");
    let image = lines(&out).remove(0);
    assert!(
        text["seq"].as_u64() < image["seq"].as_u64(),
        "the text ({}) waited for the image ({})",
        text["seq"],
        image["seq"]
    );
    let got = eventually("bob to get the image", PATIENCE, || {
        let m = image_messages(&bob, &["--group", "team"]);
        (!m.is_empty()).then(|| m[0].clone())
    });
    let path = got["imagePath"].as_str().expect("a path").to_owned();
    assert_eq!(std::fs::read(&path).expect("the file"), original);

    // The daemon dies in the middle of the next upload: nothing reaches bob, no part-file
    // stays, and sending again after the restart works.
    let chunks_before = server_chunks(&db);
    let upload = alice
        .ctl_command()
        .args(["send-image", "--group", "team", &png_arg])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("send-image runs");
    eventually("the second upload to start", PATIENCE, || {
        (server_chunks(&db) > chunks_before).then_some(())
    });
    alice.kill_9();
    let _ = { upload }.wait();
    alice.spawn();
    let out = alice.ctl_with_input(
        &["login", "alice", "--password-stdin"],
        &format!("{PASSWORD}\n"),
    );
    assert_success(&out, "login after the restart");
    assert_eq!(
        alice.json(&["status"])[0]["pending"],
        0,
        "no half message queued"
    );
    let leftovers: Vec<_> = std::fs::read_dir(alice.data.join("images"))
        .expect("images folder")
        .filter_map(Result::ok)
        .filter(|e| e.path().extension().is_some_and(|x| x == "part"))
        .collect();
    assert!(leftovers.is_empty(), "part files left: {leftovers:?}");
    alice.json(&["send-image", "--group", "team", &png_arg]);
    let got = eventually("bob to get the resent image", PATIENCE, || {
        let m = image_messages(&bob, &["--group", "team"]);
        (m.len() == 2).then(|| m[1].clone())
    });
    assert_eq!(
        std::fs::read(got["imagePath"].as_str().expect("a path")).expect("the file"),
        original
    );
    assert_eq!(
        image_messages(&bob, &["--group", "team"]).len(),
        2,
        "no half image shown"
    );
}
