//! End to end on a real X server: the real `fastchat-desktop` binary in an Xvfb window, a
//! real `fastchat-server`, and `fastchatctl` (with the daemons it starts) acting as the users.
//! A message sent from the terminal must be drawn in the window.
//!
//! Needs Xvfb, xdotool, ImageMagick's `import` and Mesa's software Vulkan. Without them the
//! test says so and passes, unless `FASTCHAT_REQUIRE_DESKTOP` is set (as CI does).

#![allow(clippy::unwrap_used)]

use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const PATIENCE: Duration = Duration::from_secs(90);
const PASSWORD: &str = "correct horse battery";
const LAVAPIPE: &str = "/usr/share/vulkan/icd.d/lvp_icd.x86_64.json";

/// Child processes, killed when the test ends however it ends.
struct Processes(Vec<Child>);

impl Drop for Processes {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A binary of this workspace, beside this package's own.
fn bin(name: &str) -> PathBuf {
    let desktop = Path::new(env!("CARGO_BIN_EXE_fastchat-desktop"));
    let path = desktop.with_file_name(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    assert!(
        path.exists(),
        "{} is missing: build the workspace (cargo test --workspace builds it)",
        path.display()
    );
    path
}

fn have(tool: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn eventually<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + PATIENCE;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// One isolated desktop session: its own X display, runtime and data folders.
struct Desktop {
    dir: tempfile::TempDir,
    display: String,
    procs: Processes,
}

impl Drop for Desktop {
    /// Stops the daemons that `fastchatctl` and the window started (they outlive whoever
    /// started them): each profile's lock file names its daemon's pid.
    fn drop(&mut self) {
        let profiles = self
            .dir
            .path()
            .join("data")
            .join("fastchat")
            .join("profiles");
        for entry in std::fs::read_dir(profiles).into_iter().flatten().flatten() {
            let lock =
                std::fs::read_to_string(entry.path().join("fastchatd.lock")).unwrap_or_default();
            if let Some(pid) = lock.strip_prefix("pid ").and_then(|r| r.split(',').next()) {
                let _ = Command::new("kill").args(["-TERM", pid]).status();
            }
        }
    }
}

impl Desktop {
    fn env(&self, command: &mut Command) {
        command
            .env("DISPLAY", &self.display)
            .env_remove("WAYLAND_DISPLAY")
            .env("VK_ICD_FILENAMES", LAVAPIPE)
            .env("XDG_RUNTIME_DIR", self.dir.path().join("run"))
            .env("XDG_DATA_HOME", self.dir.path().join("data"))
            .env("HOME", self.dir.path())
            // No session bus: no file-picker portal, whatever the machine running the test has.
            .env_remove("DBUS_SESSION_BUS_ADDRESS")
            .env_remove("FASTCHAT_PROFILE")
            .env_remove("FASTCHAT_SOCKET");
    }

    fn ctl(&self, profile: &str, server: &str, args: &[&str], stdin: &str) -> Output {
        let mut command = Command::new(bin("fastchatctl"));
        self.env(&mut command);
        command
            .args(["--profile", profile, "--server", server])
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command.spawn().unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(stdin.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "fastchatctl {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    fn xdotool(&self, args: &[&str]) -> Option<String> {
        let out = Command::new("xdotool")
            .args(args)
            .env("DISPLAY", &self.display)
            .output()
            .ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
    }
}

#[test]
fn a_message_sent_from_the_terminal_is_drawn_in_the_window() {
    let required = std::env::var_os("FASTCHAT_REQUIRE_DESKTOP").is_some();
    let mut missing: Vec<&str> = ["Xvfb", "xdotool", "import"]
        .into_iter()
        .filter(|t| !have(t))
        .collect();
    if !Path::new(LAVAPIPE).exists() {
        missing.push("mesa-vulkan-drivers");
    }
    if !missing.is_empty() {
        assert!(
            !required,
            "missing {missing:?} (FASTCHAT_REQUIRE_DESKTOP is set)"
        );
        eprintln!("skipped: missing {missing:?}");
        return;
    }

    let dir = tempfile::tempdir().unwrap();
    let mut procs = Processes(Vec::new());
    // Composite gives gpui a visual it can draw on (without it the window stays black).
    let mut xvfb = Command::new("Xvfb")
        .args([
            "-displayfd",
            "1",
            "-screen",
            "0",
            "1280x800x24",
            "-extension",
            "Composite",
            "-nolisten",
            "tcp",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(xvfb.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    procs.0.push(xvfb);
    let display = format!(":{}", line.trim());
    std::fs::create_dir_all(dir.path().join("run")).unwrap();
    let desktop = Desktop {
        dir,
        display,
        procs,
    };
    let mut desktop = desktop;

    // The server, on a free port, with its own SQLite file.
    let db = desktop.dir.path().join("server.db");
    let mut server = Command::new(bin("fastchat-server"))
        .args([
            "--listen",
            "127.0.0.1:0",
            "--database-url",
            &format!("sqlite://{}", db.display()),
        ])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(server.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    desktop.procs.0.push(server);
    let addr = line
        .split_whitespace()
        .last()
        .expect("the server says where it listens")
        .to_owned();

    // Alice and bob sign up from the terminal (each fastchatctl starts its daemon), and
    // alice makes the group.
    let password = format!("{PASSWORD}\n");
    desktop.ctl(
        "alice",
        &addr,
        &["signup", "alice", "--password-stdin"],
        &password,
    );
    desktop.ctl(
        "bob",
        &addr,
        &["signup", "bob", "--password-stdin"],
        &password,
    );
    desktop.ctl(
        "alice",
        &addr,
        &["group", "create", "team", "--members", "bob"],
        "",
    );

    // The window, on alice's (already logged-in) daemon: it opens on the conversations.
    let log_path = desktop.dir.path().join("desktop.log");
    let mut command = Command::new(bin("fastchat-desktop"));
    desktop.env(&mut command);
    command
        .args(["--profile", "alice", "--theme", "light"])
        .env("RUST_LOG", "info,fastchat_desktop::pane=debug")
        .stdout(Stdio::null())
        .stderr(File::create(&log_path).unwrap());
    desktop.procs.0.push(command.spawn().unwrap());
    let log = || std::fs::read_to_string(&log_path).unwrap_or_default();

    let window = eventually("the FastChat window", || {
        desktop
            .xdotool(&["search", "--name", "^FastChat"])
            .and_then(|ids| ids.lines().next().map(str::to_owned))
    });
    // With no window manager, gpui draws once an X event arrives after mapping.
    let _ = desktop.xdotool(&["windowmove", &window, "0", "0"]);
    let title = eventually("the title naming alice and #team", || {
        desktop
            .xdotool(&["getwindowname", &window])
            .filter(|t| t.contains("alice · #team"))
    });
    assert!(title.starts_with("FastChat"), "{title}");

    // Bob sends from the terminal; the window draws that very message.
    let sent = desktop.ctl(
        "bob",
        &addr,
        &[
            "--json",
            "send",
            "--group",
            "team",
            "hello from the terminal",
        ],
        "",
    );
    let receipt: serde_json::Value = serde_json::from_slice(&sent.stdout).unwrap();
    let id = receipt["id"].as_str().unwrap().to_owned();
    eventually("the window drawing bob's message", || {
        log()
            .lines()
            .any(|l| l.contains("drew message") && l.contains(&id))
            .then_some(())
    });

    // Send Image (Ctrl+O): with no file picker on this display, a field asks for the path;
    // the image then reaches bob intact.
    let png = desktop.dir.path().join("sent.png");
    let mut picture = image::RgbImage::new(64, 48);
    for (x, y, p) in picture.enumerate_pixels_mut() {
        *p = image::Rgb([(x * 4) as u8, (y * 5) as u8, 200]);
    }
    picture.save(&png).unwrap();
    let _ = desktop.xdotool(&["windowfocus", "--sync", &window]);
    desktop.xdotool(&["key", "ctrl+o"]).expect("xdotool key");
    eventually("the image path field", || {
        log().contains("asking for the path").then_some(())
    });
    desktop
        .xdotool(&["type", "--delay", "5", png.to_str().unwrap()])
        .expect("xdotool type");
    desktop.xdotool(&["key", "Return"]).expect("xdotool key");
    let received = eventually("bob receiving the image", || {
        let out = desktop.ctl("bob", &addr, &["--json", "history", "--group", "team"], "");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .find_map(|m| m["imagePath"].as_str().map(PathBuf::from))
    });
    assert_eq!(
        std::fs::read(&received).unwrap(),
        std::fs::read(&png).unwrap(),
        "the image bob got is the one picked"
    );

    // And the window is not blank: a screenshot of it has the window's many colours (the
    // frame that drew the message may still be on its way to the screen: try until it is).
    let shot = desktop.dir.path().join("shot.png");
    let colours = || -> Option<u64> {
        let taken = Command::new("import")
            .args(["-window", &window, shot.to_str()?])
            .env("DISPLAY", &desktop.display)
            .status()
            .ok()?;
        if !taken.success() {
            return None;
        }
        let out = Command::new("identify")
            .args(["-format", "%k", shot.to_str()?])
            .output()
            .ok()?;
        String::from_utf8_lossy(&out.stdout).trim().parse().ok()
    };
    // Without a window manager, gpui may miss the map event and present nothing until an
    // X event arrives: move the pointer over the window between tries.
    let mut nudge = 0;
    eventually(
        "a screenshot of the window with more than 16 colours",
        || {
            nudge = (nudge + 7) % 50;
            let (x, y) = ((300 + nudge).to_string(), (200 + nudge).to_string());
            let _ = desktop.xdotool(&["mousemove", "--window", &window, &x, &y]);
            colours().filter(|&n| n > 16)
        },
    );

    // For a profile with no daemon, the window starts one, and it answers.
    let socket = desktop
        .dir
        .path()
        .join("run")
        .join("fastchat")
        .join("carol.sock");
    assert!(!socket.exists());
    let mut command = Command::new(bin("fastchat-desktop"));
    desktop.env(&mut command);
    command
        .args(["--profile", "carol", "--server", &addr])
        .stdout(Stdio::null())
        .stderr(File::create(desktop.dir.path().join("carol.log")).unwrap());
    desktop.procs.0.push(command.spawn().unwrap());
    eventually("carol's daemon, started by the window", || {
        socket.exists().then_some(())
    });
    let status = desktop.ctl("carol", &addr, &["--no-autostart", "--json", "status"], "");
    let status: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(status["profile"], "carol");
    assert!(
        status["username"].is_null(),
        "nobody is logged in yet: {status}"
    );
}
