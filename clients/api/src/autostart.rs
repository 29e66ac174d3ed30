//! Reaching a profile's daemon, starting it when nothing listens on its socket: what every
//! front end does (`fastchatctl`, the desktop window), so they do it alike.
//!
//! A started `fastchatd` (the one beside the current executable, else the one on `PATH`) runs
//! detached from the caller, its output appended to `<data dir>/fastchatd.log`, and outlives
//! it. The caller waits up to 15 s for it to answer.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;

use jsonrpsee::async_client::Client;
use tokio::time::Instant;

use crate::{ConnectError, connect, paths};

/// How long a started daemon has to answer on its socket.
pub const START_DEADLINE: Duration = Duration::from_secs(15);
/// How often to try its socket meanwhile.
const RETRY_EVERY: Duration = Duration::from_millis(50);
/// How much of a failed daemon's log an error quotes.
const LOG_LINES: usize = 5;

/// Which daemon to reach, and how to start it if none runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Launch {
    /// The profile (passed on as `--profile`; its data folder holds the log).
    pub profile: String,
    /// The socket to connect to (passed on as `--socket`).
    pub socket: PathBuf,
    /// The balancer a started daemon asks for servers (`--balancer`), if any.
    pub balancer: Option<String>,
    /// Servers a started daemon may use (`--server`, each).
    pub servers: Vec<String>,
}

impl Launch {
    /// The profile's daemon on its default socket, started without server flags (so it
    /// uses its own defaults).
    #[must_use]
    pub fn new(profile: impl Into<String>) -> Launch {
        let profile = profile.into();
        Launch {
            socket: paths::socket_path(&profile),
            profile,
            balancer: None,
            servers: Vec::new(),
        }
    }

    /// Where a started daemon's output goes: `fastchatd.log` in the profile's data folder.
    #[must_use]
    pub fn log_path(&self) -> PathBuf {
        paths::data_dir(&self.profile).join("fastchatd.log")
    }
}

/// Why the daemon could not be reached or started. Each message is one line; the
/// underlying I/O error, if any, is its [`source`](std::error::Error::source).
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// Something listens on the socket but could not be used.
    #[error(transparent)]
    Connect(#[from] ConnectError),
    #[error("cannot create the folder {}", path.display())]
    CreateFolder { path: PathBuf, source: io::Error },
    #[error("cannot open the log {}", path.display())]
    OpenLog { path: PathBuf, source: io::Error },
    #[error("cannot read the log {}", path.display())]
    ReadLog { path: PathBuf, source: io::Error },
    #[error("cannot start {}", program.display())]
    Spawn { program: PathBuf, source: io::Error },
    #[error("cannot wait for fastchatd")]
    Wait { source: io::Error },
    /// The started daemon exited; `log_tail` quotes the end of what it wrote.
    #[error("fastchatd exited ({status}): {log_tail}")]
    Exited {
        status: ExitStatus,
        log_tail: String,
    },
    /// The started daemon runs but did not answer in time.
    #[error(
        "fastchatd did not answer within {} s ({last_error}); its log is {}",
        START_DEADLINE.as_secs(),
        log.display()
    )]
    Timeout {
        /// Why the last attempt to connect failed.
        last_error: ConnectError,
        log: PathBuf,
    },
}

/// Connects to the daemon on `launch.socket`; if nothing listens there, starts `fastchatd`
/// for the profile and connects once it answers.
///
/// Two front ends racing to start the same profile's daemon both succeed: the one whose
/// daemon exits because the other's holds the profile keeps trying the socket.
///
/// # Errors
/// [`StartError::Connect`] if something listens but does not answer as fastchatd; otherwise
/// why the daemon could not be started or did not answer within [`START_DEADLINE`].
pub async fn connect_or_start(launch: &Launch) -> Result<Client, StartError> {
    match connect(&launch.socket).await {
        Ok(client) => Ok(client),
        Err(ConnectError::NotRunning { .. }) => start_and_connect(launch).await,
        Err(e) => Err(e.into()),
    }
}

/// Starts fastchatd for the profile and connects to it once it listens.
async fn start_and_connect(launch: &Launch) -> Result<Client, StartError> {
    let log_path = launch.log_path();
    let (mut child, log_start) = spawn(launch, &log_path)?;
    let deadline = Instant::now() + START_DEADLINE;
    // Set when our daemon exited only because another one holds the profile (two front
    // ends racing to start it): that one will answer, so keep trying.
    let mut lost_race: Option<(ExitStatus, String)> = None;
    loop {
        let error = match connect(&launch.socket).await {
            Ok(client) => return Ok(client),
            Err(e) => e,
        };
        if lost_race.is_none()
            && let Some(status) = child
                .try_wait()
                .map_err(|source| StartError::Wait { source })?
        {
            let log_tail = log_tail(&log_path, log_start);
            if !log_tail.contains("already runs for profile") {
                return Err(StartError::Exited { status, log_tail });
            }
            lost_race = Some((status, log_tail));
        }
        if Instant::now() >= deadline {
            return Err(match lost_race {
                Some((status, log_tail)) => StartError::Exited { status, log_tail },
                None => StartError::Timeout {
                    last_error: error,
                    log: log_path,
                },
            });
        }
        tokio::time::sleep(RETRY_EVERY).await;
    }
}

/// Starts the daemon detached from this process, its output appended to `log_path`.
/// Returns the child and where its output starts in the log.
fn spawn(launch: &Launch, log_path: &Path) -> Result<(Child, u64), StartError> {
    if let Some(dir) = log_path.parent() {
        std::fs::create_dir_all(dir).map_err(|source| StartError::CreateFolder {
            path: dir.to_owned(),
            source,
        })?;
    }
    let open_log = |source| StartError::OpenLog {
        path: log_path.to_owned(),
        source,
    };
    let log = OpenOptions::new()
        .create(true)
        .append(true)
        .open(log_path)
        .map_err(open_log)?;
    let log_start = log
        .metadata()
        .map_err(|source| StartError::ReadLog {
            path: log_path.to_owned(),
            source,
        })?
        .len();
    let stderr = log.try_clone().map_err(open_log)?;

    let program = daemon_program();
    let mut command = Command::new(&program);
    command
        .arg("--profile")
        .arg(&launch.profile)
        .arg("--socket")
        .arg(&launch.socket);
    if let Some(balancer) = &launch.balancer {
        command.arg("--balancer").arg(balancer);
    }
    for server in &launch.servers {
        command.arg("--server").arg(server);
    }
    // The daemon outlives the caller: it must not hold our stdout (a reader on a pipe would
    // wait for it forever) nor die with our terminal's Ctrl-C.
    command.stdin(Stdio::null()).stdout(log).stderr(stderr);
    #[cfg(unix)]
    {
        use std::os::unix::process::CommandExt;
        command.process_group(0);
    }
    let child = command
        .spawn()
        .map_err(|source| StartError::Spawn { program, source })?;
    Ok((child, log_start))
}

/// `fastchatd` from the current executable's folder (installed or built together), else
/// from PATH.
#[must_use]
pub fn daemon_program() -> PathBuf {
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
    fn the_log_tail_starts_where_the_started_daemon_began_writing() {
        // A folder of this test's own (the crate has no temporary-folder helper).
        let dir =
            std::env::temp_dir().join(format!("fastchat-api-log-tail-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temporary folder");
        let log = dir.join("fastchatd.log");
        std::fs::write(&log, "old run\n").expect("writes");
        let start = std::fs::metadata(&log).expect("metadata").len();
        assert_eq!(
            log_tail(&log, start),
            format!("(nothing in its log {})", log.display())
        );
        std::fs::write(
            &log,
            "old run\nstarting\n\nerror: already runs for profile x\n",
        )
        .expect("writes");
        assert_eq!(
            log_tail(&log, start),
            "starting | error: already runs for profile x"
        );
        let missing = dir.join("missing.log");
        assert!(log_tail(&missing, 0).starts_with("(cannot read its log "));
        std::fs::remove_dir_all(&dir).expect("cleans up");
    }

    #[test]
    fn the_daemon_is_found_beside_this_executable_or_on_the_path() {
        let program = daemon_program();
        let name = format!("fastchatd{}", std::env::consts::EXE_SUFFIX);
        assert_eq!(program.file_name(), Some(name.as_ref()));
        let beside = std::env::current_exe()
            .expect("current executable")
            .with_file_name(&name);
        if beside.is_file() {
            assert_eq!(program, beside);
        } else {
            assert_eq!(program, PathBuf::from(name));
        }
    }

    #[test]
    fn errors_are_one_line_with_their_cause_as_source() {
        let e = StartError::Spawn {
            program: PathBuf::from("/opt/fastchatd"),
            source: io::Error::from(io::ErrorKind::NotFound),
        };
        assert_eq!(e.to_string(), "cannot start /opt/fastchatd");
        assert!(std::error::Error::source(&e).is_some());
        let e = StartError::Timeout {
            last_error: ConnectError::Handshake {
                path: PathBuf::from("/run/x.sock"),
                message: "bad".into(),
            },
            log: PathBuf::from("/data/fastchatd.log"),
        };
        assert_eq!(
            e.to_string(),
            "fastchatd did not answer within 15 s (/run/x.sock does not answer as fastchatd: \
             bad); its log is /data/fastchatd.log"
        );
        assert!(std::error::Error::source(&e).is_none());
    }
}
