//! Desktop notifications over a real D-Bus session with a real notification server (dunst
//! on Xvfb), observed with dbus-monitor.

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use fastchat_api::{ConversationRef, FastChatApiClient};

use crate::support::{Daemon, LineReader, Server, eventually};

const PATIENCE: Duration = Duration::from_secs(30);

/// Child processes killed when the test ends.
struct Procs(Vec<Child>);

impl Drop for Procs {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn have(tool: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// A `Notify` call as dbus-monitor shows it.
#[derive(Debug, PartialEq, Eq)]
struct Notify {
    app: String,
    summary: String,
    body: String,
}

/// Turns dbus-monitor's output into Notify calls.
struct Monitor {
    lines: LineReader,
}

impl Monitor {
    fn next_notify(&self, limit: Duration) -> Notify {
        self.lines.until("a Notify call", limit, |l| {
            l.starts_with("method call") && l.contains("member=Notify")
        });
        // Its arguments follow: app name, replaces id, icon, summary, body, ...
        let mut strings = Vec::new();
        while strings.len() < 4 {
            let line = self.lines.next("Notify's arguments", limit);
            if let Some(s) = line.trim().strip_prefix("string \"") {
                strings.push(s.strip_suffix('"').unwrap_or(s).to_owned());
            }
        }
        Notify {
            app: strings[0].clone(),
            summary: strings[2].clone(),
            body: strings[3].clone(),
        }
    }
}

#[test]
fn notifications_and_the_tray_follow_incoming_messages() {
    let required = std::env::var_os("FASTCHAT_REQUIRE_DESKTOP").is_some();
    let missing: Vec<&str> = ["Xvfb", "dunst", "dbus-daemon", "dbus-monitor", "dbus-send"]
        .into_iter()
        .filter(|t| !have(t))
        .collect();
    if !missing.is_empty() {
        assert!(
            !required,
            "missing {missing:?} (FASTCHAT_REQUIRE_DESKTOP is set)"
        );
        eprintln!("skipped: missing {missing:?}");
        return;
    }
    let root = tempfile::tempdir().expect("temp dir");
    let mut procs = Procs(Vec::new());

    // An X server for dunst, on a display it chooses.
    let mut xvfb = Command::new("Xvfb")
        .args([
            "-displayfd",
            "1",
            "-screen",
            "0",
            "640x480x24",
            "-nolisten",
            "tcp",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("Xvfb");
    let display = LineReader::new(xvfb.stdout.take().expect("stdout"));
    procs.0.push(xvfb);
    let display = format!(":{}", display.next("the display number", PATIENCE).trim());

    // A private session bus.
    let mut bus = Command::new("dbus-daemon")
        .args(["--session", "--nofork", "--print-address=1"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("dbus-daemon");
    let address = LineReader::new(bus.stdout.take().expect("stdout"));
    procs.0.push(bus);
    let address = address.next("the bus address", PATIENCE).trim().to_owned();
    let env = vec![
        ("DBUS_SESSION_BUS_ADDRESS".to_owned(), address.clone()),
        ("DISPLAY".to_owned(), display.clone()),
    ];

    let dunst = Command::new("dunst")
        .envs(env.iter().cloned())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("dunst");
    procs.0.push(dunst);
    eventually(
        "dunst to own org.freedesktop.Notifications",
        PATIENCE,
        || {
            bus_call(
                &address,
                &["NameHasOwner", "string:org.freedesktop.Notifications"],
            )
            .contains("boolean true")
            .then_some(())
        },
    );

    let mut monitor = Command::new("dbus-monitor")
        .args([
            "--address",
            &address,
            "type='method_call',interface='org.freedesktop.Notifications',member='Notify'",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .expect("dbus-monitor");
    let monitor_lines = LineReader::new(monitor.stdout.take().expect("stdout"));
    procs.0.push(monitor);
    // dbus-monitor's first words are its own NameAcquired signal: it is listening.
    monitor_lines.next("dbus-monitor to start", PATIENCE);
    let monitor = Monitor {
        lines: monitor_lines,
    };

    let server = Server::start(root.path());
    let alice = Daemon::start(root.path(), "alice", &server.addr);
    let bob = Daemon::configure(root.path(), "bob", &server.addr, true, env)
        .with_arg("--tray")
        .started();
    alice.signup();
    bob.signup();
    alice.json(&["group", "create", "team", "--members", "bob"]);

    alice.json(&["send", "--group", "team", "lunch at noon?"]);
    assert_eq!(
        monitor.next_notify(PATIENCE),
        Notify {
            app: "FastChat".into(),
            summary: "alice in #team".into(),
            body: "lunch at noon?".into(),
        }
    );

    // Bob's tray shows the unread message, over D-Bus.
    let item = tray_item(&address, bob.pid());
    eventually("the tray to show 1 unread", PATIENCE, || {
        (tray_property(&address, &item, "Title").as_deref() == Some("FastChat: 1 unread"))
            .then_some(())
    });
    let tooltip = tray_property_raw(&address, &item, "ToolTip");
    assert!(tooltip.contains("FastChat: 1 unread"), "{tooltip}");
    // Reading the group clears it.
    bob.history(&["--group", "team"]);
    eventually("the tray to show nothing unread", PATIENCE, || {
        (tray_property(&address, &item, "Title").as_deref() == Some("FastChat")).then_some(())
    });

    // Bob's own message raises nothing: the next notification is alice's next message.
    bob.json(&["send", "--group", "team", "sure, see you there"]);
    alice.json(&["send", "--group", "team", "great"]);
    let next = monitor.next_notify(PATIENCE);
    assert_eq!(
        (next.summary.as_str(), next.body.as_str()),
        ("alice in #team", "great")
    );

    // A burst of 100 gives one summary.
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let client = Arc::new(
            fastchat_api::connect(&alice.socket)
                .await
                .expect("connects"),
        );
        let sends: Vec<_> = (0..100)
            .map(|i| {
                let client = Arc::clone(&client);
                tokio::spawn(async move {
                    client
                        .send(ConversationRef::Group("team".into()), format!("burst {i}"))
                        .await
                })
            })
            .collect();
        for s in sends {
            s.await.expect("joins").expect("sent");
        }
    });
    let burst = monitor.next_notify(PATIENCE);
    assert_eq!(burst.summary, "100 new messages", "{burst:?}");
    assert_eq!(burst.body, "From alice in #team");
    alice.json(&["send", "--group", "team", "after the burst"]);
    let next = monitor.next_notify(PATIENCE);
    assert_eq!(
        next.body, "after the burst",
        "one notification for the whole burst"
    );

    // A front end showing the group: nothing for it.
    bob.json(&["status"]);
    let focus = runtime.block_on(async {
        let client = fastchat_api::connect(&bob.socket).await.expect("connects");
        client
            .set_focus(Some(ConversationRef::Group("team".into())))
            .await
            .expect("setFocus");
        client
    });
    alice.json(&["send", "--group", "team", "you are looking at this"]);
    alice.json(&["send", "--user", "bob", "but not at this"]);
    let next = monitor.next_notify(PATIENCE);
    assert_eq!(
        (next.summary.as_str(), next.body.as_str()),
        ("alice", "but not at this")
    );
    drop(focus);
}

/// The bus name of the StatusNotifierItem of the process `pid` (ksni names it
/// `org.kde.StatusNotifierItem-PID-N`).
fn tray_item(address: &str, pid: u32) -> String {
    let prefix = format!("org.kde.StatusNotifierItem-{pid}-");
    eventually("the tray item on the bus", PATIENCE, || {
        bus_call(address, &["ListNames"])
            .lines()
            .filter_map(|l| l.trim().strip_prefix("string \""))
            .map(|n| n.trim_end_matches('"').to_owned())
            .find(|n| n.starts_with(&prefix))
    })
}

fn tray_property_raw(address: &str, item: &str, property: &str) -> String {
    let out = Command::new("dbus-send")
        .args([
            &format!("--bus={address}"),
            &format!("--dest={item}"),
            "--print-reply",
            "/StatusNotifierItem",
            "org.freedesktop.DBus.Properties.Get",
            "string:org.kde.StatusNotifierItem",
            &format!("string:{property}"),
        ])
        .output()
        .expect("dbus-send runs");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A string property of the tray item, as `variant string "..."`.
fn tray_property(address: &str, item: &str, property: &str) -> Option<String> {
    let raw = tray_property_raw(address, item, property);
    let start = raw.find("variant")?;
    let rest = raw[start..].split_once("string \"")?.1;
    Some(rest.split_once('"')?.0.to_owned())
}

/// Calls a method of the bus itself (`org.freedesktop.DBus.METHOD ARGS...`) and gives its
/// printed reply.
fn bus_call(address: &str, method_and_args: &[&str]) -> String {
    let (method, args) = method_and_args.split_first().expect("a method");
    let out = Command::new("dbus-send")
        .args([
            &format!("--bus={address}"),
            "--dest=org.freedesktop.DBus",
            "--print-reply",
            "/org/freedesktop/DBus",
            &format!("org.freedesktop.DBus.{method}"),
        ])
        .args(args)
        .output()
        .expect("dbus-send runs");
    String::from_utf8_lossy(&out.stdout).into_owned()
}
