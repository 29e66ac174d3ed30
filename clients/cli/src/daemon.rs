//! Reaching the profile's fastchatd: connect to its socket, and when nobody listens there
//! start one (unless `--no-autostart`) and wait until it answers.

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;

use anyhow::Context;
use fastchat_api::ConnectError;
use jsonrpsee::async_client::Client;
use tokio::time::Instant;

use crate::args::Global;

/// How long a started daemon has to answer on its socket.
const START_DEADLINE: Duration = Duration::from_secs(15);
/// How often to try its socket meanwhile.
const RETRY_EVERY: Duration = Duration::from_millis(50);
/// How much of a failed daemon's log an error quotes.
const LOG_LINES: usize = 5;

/// No daemon answers and `--no-autostart` forbids starting one (exit code 3).
#[derive(Debug)]
pub struct NoDaemon {
    pub profile: String,
    pub socket: PathBuf,
}

impl fmt::Display for NoDaemon {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "no daemon for profile {p} (nothing listens on {s}): start it with \
             `fastchatd --profile {p}` or drop --no-autostart",
            p = self.profile,
            s = self.socket.display()
        )
    }
}

impl std::error::Error for NoDaemon {}

/// Connects to the profile's daemon, starting it first if none runs and `--no-autostart`
/// was not given.
///
/// # Errors
/// [`NoDaemon`] with `--no-autostart`; otherwise why the daemon could not be reached or
/// started.
pub async fn connect(global: &Global) -> anyhow::Result<Client> {
    let socket = global.socket_path();
    match fastchat_api::connect(&socket).await {
        Ok(client) => Ok(client),
        Err(ConnectError::NotRunning { .. }) if global.no_autostart => Err(NoDaemon {
            profile: global.profile.clone(),
            socket,
        }
        .into()),
        Err(ConnectError::NotRunning { .. }) => start_and_connect(global, &socket).await,
        Err(e) => Err(e.into()),
    }
}

/// Starts fastchatd for the profile and connects to it once it listens.
async fn start_and_connect(global: &Global, socket: &Path) -> anyhow::Result<Client> {
    let log_path = fastchat_api::paths::data_dir(&global.profile).join("fastchatd.log");
    let (mut child, log_start) = spawn(global, socket, &log_path)?;
    let deadline = Instant::now() + START_DEADLINE;
    // Set when our daemon exited only because another one holds the profile (two
    // fastchatctl racing to start it): that one will answer, so keep trying.
    let mut lost_race: Option<(ExitStatus, String)> = None;
    loop {
        let error = match fastchat_api::connect(socket).await {
            Ok(client) => return Ok(client),
            Err(e) => e,
        };
        if lost_race.is_none()
            && let Some(status) = child.try_wait().context("cannot wait for fastchatd")?
        {
            let tail = log_tail(&log_path, log_start);
            if !tail.contains("already runs for profile") {
                anyhow::bail!("fastchatd exited ({status}): {tail}");
            }
            lost_race = Some((status, tail));
        }
        if Instant::now() >= deadline {
            return Err(match lost_race {
                Some((status, tail)) => anyhow::anyhow!("fastchatd exited ({status}): {tail}"),
                None => anyhow::anyhow!(
                    "fastchatd did not answer within {} s ({error}); its log is {}",
                    START_DEADLINE.as_secs(),
                    log_path.display()
                ),
            });
        }
        tokio::time::sleep(RETRY_EVERY).await;
    }
}

/// Starts the daemon detached from this process, its output appended to `log_path`.
/// Returns the child and where its output starts in the log.
fn spawn(global: &Global, socket: &Path, log_path: &Path) -> anyhow::Result<(Child, u64)> {
    if let Some(dir) = log_path.parent() {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create the folder {}", dir.display()))?;
    }
    let log = OpenOptions::new()
        .create(true)
        .append(true)
        .open(log_path)
        .with_context(|| format!("cannot open the log {}", log_path.display()))?;
    let log_start = log
        .metadata()
        .with_context(|| format!("cannot read the log {}", log_path.display()))?
        .len();
    let stderr = log
        .try_clone()
        .with_context(|| format!("cannot open the log {}", log_path.display()))?;

    let program = daemon_program();
    let mut command = Command::new(&program);
    command
        .arg("--profile")
        .arg(&global.profile)
        .arg("--socket")
        .arg(socket);
    if let Some(balancer) = &global.balancer {
        command.arg("--balancer").arg(balancer);
    }
    for server in &global.servers {
        command.arg("--server").arg(server);
    }
    // The daemon outlives this command: it must not hold our stdout (a reader on a pipe
    // would wait for it forever) nor die with our terminal's Ctrl-C.
    command.stdin(Stdio::null()).stdout(log).stderr(stderr);
    #[cfg(unix)]
    {
        use std::os::unix::process::CommandExt;
        command.process_group(0);
    }
    let child = command
        .spawn()
        .with_context(|| format!("cannot start {}", program.display()))?;
    Ok((child, log_start))
}

/// `fastchatd` from this executable's folder (installed or built together), else from PATH.
fn daemon_program() -> PathBuf {
    let name = format!("fastchatd{}", std::env::consts::EXE_SUFFIX);
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|dir| dir.join(&name)))
        .filter(|candidate| candidate.is_file())
        .unwrap_or_else(|| PathBuf::from(name))
}

/// The last lines the daemon wrote to its log since `start`, on one line.
fn log_tail(log_path: &Path, start: u64) -> String {
    let read = File::open(log_path).and_then(|mut file| {
        file.seek(SeekFrom::Start(start))?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)?;
        Ok(bytes)
    });
    let text = match read {
        Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
        Err(e) => return format!("(cannot read its log {}: {e})", log_path.display()),
    };
    let tail = last_lines(&text, LOG_LINES);
    if tail.is_empty() {
        format!("(nothing in its log {})", log_path.display())
    } else {
        tail
    }
}

/// The last `n` non-blank lines of `text`, joined with ` | ` so an error stays on one line.
fn last_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .collect();
    lines[lines.len().saturating_sub(n)..].join(" | ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_quote_the_end_of_the_log() {
        assert_eq!(last_lines("a\nb\n\nc\nd\ne\nf\n", 5), "b | c | d | e | f");
        assert_eq!(last_lines("only\n", 5), "only");
        assert_eq!(last_lines("", 5), "");
    }

    #[test]
    fn the_no_daemon_message_says_what_to_do() {
        let e = NoDaemon {
            profile: "work".into(),
            socket: PathBuf::from("/run/fastchat/work.sock"),
        };
        assert_eq!(
            e.to_string(),
            "no daemon for profile work (nothing listens on /run/fastchat/work.sock): \
             start it with `fastchatd --profile work` or drop --no-autostart"
        );
    }
}
