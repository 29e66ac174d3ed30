//! What every FastChat binary does the same way, so that they all behave alike: logging to
//! stderr with `RUST_LOG` (default `info`), stopping on SIGINT or SIGTERM, the XDG data
//! folder, and never printing a database password.

use std::future::Future;
use std::io::IsTerminal;
use std::path::PathBuf;

use anyhow::Context;

/// Logs with `tracing` to stderr; `RUST_LOG` honoured, `info` by default; colours only on a
/// terminal.
pub fn init_logging() {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
}

/// Completes on Ctrl-C (SIGINT) or, on Unix, SIGTERM.
pub async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}

/// `$XDG_DATA_HOME/fastchat` (or `~/.local/share/fastchat`).
///
/// # Errors
/// If neither `XDG_DATA_HOME` nor `HOME` is set.
pub fn data_dir() -> anyhow::Result<PathBuf> {
    let base = std::env::var_os("XDG_DATA_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")))
        .context("neither XDG_DATA_HOME nor HOME is set")?;
    Ok(base.join("fastchat"))
}

/// A database URL with its credentials hidden, for logs and status lines.
#[must_use]
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            format!("{}://***{}", &url[..scheme], &url[at..])
        }
        _ => url.to_owned(),
    }
}

/// Runs `main` on a multi-threaded runtime and turns its result into the exit code the
/// contract asks for: 0, or 1 with `error: ...` on stderr.
pub fn run<F: Future<Output = anyhow::Result<()>>>(main: F) -> std::process::ExitCode {
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(main) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_never_reach_a_log() {
        assert_eq!(
            redact("postgres://me:secret@db/chat"),
            "postgres://***@db/chat"
        );
        assert_eq!(
            redact("sqlite:///var/lib/fastchat/server.db"),
            "sqlite:///var/lib/fastchat/server.db"
        );
    }
}
