//! The real `fastchatctl` binary where no daemon is needed: help, version, usage errors
//! (exit 2), an unreachable daemon with `--no-autostart` (exit 3), completions. (The
//! whole-system tests in `daemon/tests/system/` drive it against real daemons; this test
//! also makes `cargo test` build the binary they use.)

use std::process::{Command, Output};

fn ctl(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_fastchatctl"))
        .args(args)
        .env_remove("FASTCHAT_SOCKET")
        .env_remove("FASTCHAT_PROFILE")
        .output()
        .expect("fastchatctl runs")
}

#[test]
fn help_and_version_need_no_daemon() {
    let out = ctl(&["--help"]);
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for command in [
        "signup",
        "send",
        "send-image",
        "group",
        "history",
        "watch",
        "keys",
        "servers",
    ] {
        assert!(help.contains(command), "--help lists {command}");
    }
    let out = ctl(&["--version"]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains(env!("CARGO_PKG_VERSION")));
}

#[test]
fn bad_usage_exits_2_and_no_daemon_exits_3() {
    let out = ctl(&["send", "--group", "a", "--user", "b", "hi"]);
    assert_eq!(out.status.code(), Some(2));
    let out = ctl(&["frobnicate"]);
    assert_eq!(out.status.code(), Some(2));

    let dir = tempfile::tempdir().expect("temp dir");
    let socket = dir.path().join("nobody.sock");
    let out = ctl(&[
        "--profile",
        "nobody",
        "--socket",
        socket.to_str().expect("utf-8"),
        "--no-autostart",
        "status",
    ]);
    assert_eq!(out.status.code(), Some(3));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.starts_with("error: no daemon for profile nobody"),
        "{err}"
    );
    assert!(out.stdout.is_empty(), "nothing on stdout");
}

#[test]
fn completions_are_printed_for_each_shell() {
    for shell in ["bash", "zsh", "fish"] {
        let out = ctl(&["completions", shell]);
        assert!(out.status.success(), "{shell}");
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("send-image"),
            "{shell}"
        );
    }
    assert_eq!(ctl(&["completions", "cmd.exe"]).status.code(), Some(2));
}
