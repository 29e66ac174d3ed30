//! Real processes for whole-system tests: a `fastchat-server` binary, one `fastchatd` per
//! user (each profile in its own temporary folder), and `fastchatctl` to drive them.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

pub const PASSWORD: &str = "correct horse battery";

/// A binary of this workspace. `cargo test --workspace` builds every binary before running
/// tests, and they all land beside `fastchatd`.
pub fn bin(name: &str) -> PathBuf {
    let daemon = Path::new(env!("CARGO_BIN_EXE_fastchatd"));
    let path = daemon.with_file_name(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    assert!(
        path.exists(),
        "{} is missing: build the workspace (cargo test --workspace builds it)",
        path.display()
    );
    path
}

/// Polls `f` until it returns `Some`, failing the test after `limit`.
pub fn eventually<T>(what: &str, limit: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A free port on 127.0.0.1 (bound and released; good enough for a restart on the same
/// address).
pub fn free_addr() -> String {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").to_string()
}

pub struct Server {
    child: Child,
    pub addr: String,
    db: PathBuf,
}

impl Server {
    pub fn start(root: &Path) -> Server {
        Server::start_at(&root.join("server.db"), &free_addr())
    }

    pub fn start_at(db: &Path, addr: &str) -> Server {
        let url = format!("sqlite://{}", db.display());
        let mut server = Server::spawn(
            "fastchat-server",
            &["--listen", addr, "--database-url", &url],
        );
        server.db = db.to_owned();
        server
    }

    /// Starts a server or balancer binary with `args` and waits for its `listening on` line.
    pub fn spawn(program: &str, args: &[&str]) -> Server {
        let mut child = Command::new(bin(program))
            .args(args)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("{program} starts: {e}"));
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("reads the listening line");
        let addr = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .to_owned();
        Server {
            child,
            addr,
            db: PathBuf::new(),
        }
    }

    /// kill -9.
    pub fn kill_9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Stops the server (SIGKILL) and starts it again on the same address and database.
    pub fn stop(mut self) -> (PathBuf, String) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        (self.db.clone(), self.addr.clone())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One user's daemon.
pub struct Daemon {
    pub name: String,
    pub socket: PathBuf,
    pub data: PathBuf,
    pub log: PathBuf,
    /// How the daemon finds servers: `--server ADDR` or `--balancer ADDR`.
    route: Vec<String>,
    env: Vec<(String, String)>,
    notifications: bool,
    child: Option<Child>,
}

impl Daemon {
    /// A daemon for `name` with notifications off.
    pub fn start(root: &Path, name: &str, server: &str) -> Daemon {
        Daemon::configure(root, name, server, false, Vec::new()).started()
    }

    pub fn configure(
        root: &Path,
        name: &str,
        server: &str,
        notifications: bool,
        env: Vec<(String, String)>,
    ) -> Daemon {
        let home = root.join(name);
        std::fs::create_dir_all(&home).expect("profile folder");
        Daemon {
            name: name.to_owned(),
            socket: home.join("run").join(format!("{name}.sock")),
            data: home.join("data"),
            log: home.join("fastchatd.log"),
            route: vec!["--server".to_owned(), server.to_owned()],
            env,
            notifications,
            child: None,
        }
    }

    /// The daemon's command line.
    pub fn command(&self) -> Command {
        let mut c = Command::new(bin("fastchatd"));
        c.arg("--profile")
            .arg(&self.name)
            .arg("--socket")
            .arg(&self.socket)
            .arg("--data-dir")
            .arg(&self.data)
            .args(&self.route)
            .args(["--key-bits", "2048"])
            .env("RUST_LOG", "info,sqlx=warn");
        if !self.notifications {
            c.arg("--no-notifications");
        }
        for (k, v) in &self.env {
            c.env(k, v);
        }
        c
    }

    /// Adds a flag to the daemon's command line.
    pub fn with_arg(mut self, arg: &str) -> Daemon {
        self.route.push(arg.to_owned());
        self
    }

    /// Finds servers through the balancer at `addr` instead.
    pub fn via_balancer(mut self, addr: &str) -> Daemon {
        self.route = vec!["--balancer".to_owned(), addr.to_owned()];
        self
    }

    pub fn started(mut self) -> Daemon {
        self.spawn();
        self
    }

    pub fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("log file");
        let child = self
            .command()
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("fastchatd starts");
        self.child = Some(child);
        let socket = self.socket.clone();
        eventually(
            &format!("{}'s daemon to answer", self.name),
            Duration::from_secs(20),
            || std::os::unix::net::UnixStream::connect(&socket).ok(),
        );
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// kill -9: no chance to clean up.
    pub fn kill_9(&mut self) {
        let mut child = self.child.take().expect("running");
        child.kill().expect("kill -9");
        child.wait().expect("reaped");
    }

    /// SIGTERM, and the exit status.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let mut child = self.child.take().expect("running");
        let status = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .expect("kill");
        assert!(status.success());
        child.wait().expect("exits")
    }

    pub fn ctl_command(&self) -> Command {
        let mut c = Command::new(bin("fastchatctl"));
        c.arg("--profile")
            .arg(&self.name)
            .arg("--socket")
            .arg(&self.socket)
            .arg("--no-autostart");
        c
    }

    /// Runs `fastchatctl ARGS` against this daemon with `input` on stdin.
    pub fn ctl_with_input(&self, args: &[&str], input: &str) -> Output {
        let mut child = self
            .ctl_command()
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("fastchatctl runs");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(input.as_bytes())
            .expect("writes stdin");
        child.wait_with_output().expect("fastchatctl ends")
    }

    pub fn ctl(&self, args: &[&str]) -> Output {
        self.ctl_with_input(args, "")
    }

    /// Runs `fastchatctl --json ARGS`, which must succeed, and parses each line.
    pub fn json(&self, args: &[&str]) -> Vec<Value> {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        let out = self.ctl(&all);
        assert_success(&out, &format!("{} {}", self.name, args.join(" ")));
        lines(&out)
    }

    pub fn signup(&self) -> Value {
        let out = self.ctl_with_input(
            &["--json", "signup", &self.name, "--password-stdin"],
            &format!("{PASSWORD}\n"),
        );
        assert_success(&out, &format!("signup {}", self.name));
        lines(&out).remove(0)
    }

    pub fn history(&self, conversation: &[&str]) -> Vec<Value> {
        let mut args = vec!["history"];
        args.extend_from_slice(conversation);
        self.json(&args)
    }

    /// The daemon's `conversations` (which `fastchatctl` has no command for), through the
    /// typed client, as JSON.
    pub fn conversations(&self) -> Vec<Value> {
        use fastchat_api::FastChatApiClient;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        runtime.block_on(async {
            let client = fastchat_api::connect(&self.socket).await.expect("connects");
            let list = client.conversations().await.expect("conversations");
            list.iter()
                .map(|c| serde_json::to_value(c).expect("JSON"))
                .collect()
        })
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if std::thread::panicking() {
            eprintln!("--- {}'s daemon log ---\n{}", self.name, self.log_text());
        }
    }
}

pub fn assert_success(out: &Output, what: &str) {
    assert!(
        out.status.success(),
        "{what} failed ({}): {}{}",
        out.status,
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
}

pub fn lines(out: &Output) -> Vec<Value> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l:?}")))
        .collect()
}

pub fn texts(history: &[Value]) -> Vec<String> {
    history
        .iter()
        .map(|m| m["text"].as_str().unwrap_or_default().to_owned())
        .collect()
}

/// Reads lines from a child's pipe on a thread, so tests can wait for one with a deadline.
pub struct LineReader {
    rx: std::sync::mpsc::Receiver<String>,
}

impl LineReader {
    pub fn new(pipe: impl Read + Send + 'static) -> LineReader {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        LineReader { rx }
    }

    /// The next line, failing the test if none comes within `limit`.
    pub fn next(&self, what: &str, limit: Duration) -> String {
        self.rx
            .recv_timeout(limit)
            .unwrap_or_else(|e| panic!("no line for {what} within {limit:?}: {e}"))
    }

    /// Lines until one satisfies `pred` (which is returned).
    pub fn until(&self, what: &str, limit: Duration, pred: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = self.next(what, left);
            if pred(&line) {
                return line;
            }
        }
    }
}
