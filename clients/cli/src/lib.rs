//! `fastchatctl`, the command line front end: parses the command, reaches the profile's
//! fastchatd (starting it when none runs), makes one call through the typed client of
//! `fastchat-api`, and prints the result for people or, with `--json`, as JSON lines.
//!
//! Invariants: stdout carries results only (diagnostics and prompts go to stderr or the
//! terminal); every failure is one `error: ...` line on stderr with exit code 1, except an
//! unreachable daemon under `--no-autostart` (3) and bad usage (2, clap's own).

pub mod args;
pub mod daemon;
mod input;
pub mod output;

use std::io;
use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;
use clap::CommandFactory;
use clap_complete::Shell;
use fastchat_api::{Empty, FastChatApiClient};
use jiff::tz::TimeZone;
use jsonrpsee::async_client::Client;
use jsonrpsee::core::ClientError;
use jsonrpsee::core::client::SubscriptionCloseReason;

pub use args::Cli;
use args::{Command, Credentials, GroupCommand, KeysCommand};
use output::Printer;

/// Exit code when no daemon answers and `--no-autostart` forbids starting one.
const EXIT_NO_DAEMON: u8 = 3;

/// Runs a parsed command line and says how the process should exit.
#[must_use]
pub fn run(cli: Cli) -> ExitCode {
    let result = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
        .and_then(|runtime| runtime.block_on(execute(cli)));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => report(&e),
    }
}

/// Prints `error` the way the contract asks and picks the exit code.
fn report(error: &anyhow::Error) -> ExitCode {
    // A reader that went away (`fastchatctl history ... | head`) is not a failure.
    let broken_pipe = error.chain().any(|cause| {
        cause
            .downcast_ref::<io::Error>()
            .is_some_and(|e| e.kind() == io::ErrorKind::BrokenPipe)
    });
    if broken_pipe {
        return ExitCode::SUCCESS;
    }
    let message = format!("{error:#}").replace(['\r', '\n'], " ");
    eprintln!("error: {message}");
    if error.downcast_ref::<daemon::NoDaemon>().is_some() {
        ExitCode::from(EXIT_NO_DAEMON)
    } else {
        ExitCode::FAILURE
    }
}

async fn execute(cli: Cli) -> anyhow::Result<()> {
    let Cli { global, command } = cli;
    let out = Printer { json: global.json };
    // The only command that needs no daemon.
    if let Command::Completions { shell } = command {
        return completions(shell);
    }
    let client = daemon::connect(&global).await?;
    match command {
        Command::Signup(Credentials {
            username,
            password_stdin,
        }) => {
            let password = blocking(move || input::password(password_stdin, true)).await?;
            let account = client.signup(username, password).await.rpc()?;
            out.one(&account, output::account)
        }
        Command::Login(Credentials {
            username,
            password_stdin,
        }) => {
            let password = blocking(move || input::password(password_stdin, false)).await?;
            let account = client.login(username, password).await.rpc()?;
            out.one(&account, output::account)
        }
        Command::Logout => {
            let done: Empty = client.logout().await.rpc()?;
            out.one(&done, |_| "logged out".to_owned())
        }
        Command::Status => out.one(&client.status().await.rpc()?, output::status),
        Command::Send { to, text } => {
            let text = if text.len() == 1 && text[0] == "-" {
                blocking(input::stdin_text).await?
            } else {
                text.join(" ")
            };
            let receipt = client.send(to.conversation(), text).await.rpc()?;
            out.one(&receipt, |r| format!("sent (seq {})", r.seq))
        }
        Command::SendImage { to, path } => {
            let path = absolute(&path)?;
            let receipt = client.send_image(to.conversation(), path).await.rpc()?;
            out.one(&receipt, |r| format!("sent (seq {})", r.seq))
        }
        Command::Group(group) => run_group(&client, out, group).await,
        Command::History { to, limit } => {
            let messages = client.history(to.conversation(), limit, None).await.rpc()?;
            let zone = TimeZone::system();
            out.many(&messages, |m| output::history_line(m, &zone))
        }
        Command::Watch { to } => watch(&client, out, to.conversation()).await,
        Command::Keys(KeysCommand::Fingerprint { user }) => {
            out.one(&client.fingerprint(user).await.rpc()?, output::fingerprint)
        }
        Command::Keys(KeysCommand::Verify { user, fingerprint }) => {
            // A safety number is read out in groups of five; the shell splits them.
            let verified = client.verify(user, fingerprint.join(" ")).await.rpc()?;
            out.one(&verified, output::verified)
        }
        Command::Servers => out.many(&client.servers().await.rpc()?, output::server_line),
        Command::Completions { shell } => completions(shell),
    }
}

async fn run_group(client: &Client, out: Printer, command: GroupCommand) -> anyhow::Result<()> {
    match command {
        GroupCommand::Create { name, members } => {
            let members = args::parse_members(&members);
            let group = client.create_group(name, members).await.rpc()?;
            out.one(&group, |g| output::group_changed("created", g))
        }
        GroupCommand::Amend(amend) => {
            let add = Some(args::parse_members(&amend.add)).filter(|l| !l.is_empty());
            let remove = Some(args::parse_members(&amend.remove)).filter(|l| !l.is_empty());
            anyhow::ensure!(
                add.is_some() || remove.is_some(),
                "name at least one member to --add or --remove"
            );
            let group = client.amend_group(amend.name, add, remove).await.rpc()?;
            out.one(&group, |g| output::group_changed("amended", g))
        }
        GroupCommand::List => out.many(&client.list_groups().await.rpc()?, output::group_line),
        GroupCommand::Members { name } => out.many(
            &client.group_members(name).await.rpc()?,
            output::member_line,
        ),
    }
}

/// Prints live messages until interrupted (a success) or until the daemon goes away (a
/// failure).
async fn watch(
    client: &Client,
    out: Printer,
    conversation: Option<fastchat_api::ConversationRef>,
) -> anyhow::Result<()> {
    // Listen for the interrupt before subscribing, so that one arriving at any point after
    // the subscription exists ends the command cleanly.
    let mut interrupted = Interrupt::new()?;
    let what = conversation
        .as_ref()
        .map_or_else(|| "all conversations".to_owned(), ToString::to_string);
    let mut messages = client.subscribe_messages(conversation).await.rpc()?;
    // On stderr, so stdout stays results only; it also tells a script the subscription is
    // live.
    eprintln!("watching {what} (Ctrl-C to stop)");
    let zone = TimeZone::system();
    loop {
        tokio::select! {
            () = interrupted.recv() => return Ok(()),
            next = messages.next() => match next {
                Some(Ok(message)) => out.one(&message, |m| output::watch_line(m, &zone))?,
                Some(Err(e)) => anyhow::bail!("the daemon sent a message this fastchatctl cannot read: {e}"),
                None => match messages.close_reason() {
                    Some(SubscriptionCloseReason::Lagged) => {
                        anyhow::bail!("messages arrived faster than they were printed; some were lost")
                    }
                    _ => anyhow::bail!("the daemon stopped"),
                },
            },
        }
    }
}

/// Ctrl-C (and, on Unix, SIGTERM): the normal way to end `watch`.
#[derive(Debug)]
struct Interrupt {
    #[cfg(unix)]
    int: tokio::signal::unix::Signal,
    #[cfg(unix)]
    term: tokio::signal::unix::Signal,
}

impl Interrupt {
    fn new() -> anyhow::Result<Self> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            let listen = |kind| signal(kind).context("cannot listen for Ctrl-C");
            Ok(Self {
                int: listen(SignalKind::interrupt())?,
                term: listen(SignalKind::terminate())?,
            })
        }
        #[cfg(not(unix))]
        Ok(Self {})
    }

    async fn recv(&mut self) {
        #[cfg(unix)]
        tokio::select! {
            _ = self.int.recv() => {}
            _ = self.term.recv() => {}
        }
        #[cfg(not(unix))]
        {
            // Without a handler the interrupt ends the process anyway; this waits forever
            // only if none can be installed.
            if tokio::signal::ctrl_c().await.is_err() {
                std::future::pending::<()>().await;
            }
        }
    }
}

/// `path` made absolute against the current folder (the daemon runs elsewhere).
fn absolute(path: &Path) -> anyhow::Result<String> {
    let absolute = std::path::absolute(path)
        .with_context(|| format!("cannot make {} absolute", path.display()))?;
    absolute
        .into_os_string()
        .into_string()
        .map_err(|p| anyhow::anyhow!("{} is not valid UTF-8", Path::new(&p).display()))
}

fn completions(shell: Shell) -> anyhow::Result<()> {
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "fastchatctl", &mut script);
    io::Write::write_all(&mut io::stdout().lock(), &script).context("cannot write to stdout")
}

/// Runs blocking input (a prompt, stdin) on tokio's blocking pool, so the client's
/// connection task keeps running meanwhile.
async fn blocking<T: Send + 'static>(
    read: impl FnOnce() -> anyhow::Result<T> + Send + 'static,
) -> anyhow::Result<T> {
    tokio::task::spawn_blocking(read)
        .await
        .context("the input reader failed")?
}

/// Daemon call errors as the one-line message the daemon gave.
trait RpcResult<T> {
    fn rpc(self) -> anyhow::Result<T>;
}

impl<T> RpcResult<T> for Result<T, ClientError> {
    fn rpc(self) -> anyhow::Result<T> {
        self.map_err(|e| match e {
            ClientError::Call(object) => anyhow::Error::msg(object.message().to_owned()),
            ClientError::RestartNeeded(_) => anyhow::anyhow!("the daemon closed the connection"),
            ClientError::RequestTimeout => anyhow::anyhow!("the daemon did not answer in time"),
            other => anyhow::anyhow!("talking to the daemon failed: {other}"),
        })
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[test]
    fn no_daemon_without_autostart_exits_3() {
        let dir = tempfile::tempdir().expect("temporary folder");
        let socket = dir.path().join("nobody.sock");
        let socket = socket.to_str().expect("temporary paths are UTF-8");
        let cli = Cli::try_parse_from([
            "fastchatctl",
            "status",
            "--profile",
            "nobody",
            "--socket",
            socket,
            "--no-autostart",
        ])
        .expect("parses");
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let error = runtime.block_on(execute(cli)).expect_err("nothing listens");
        let no_daemon = error
            .downcast_ref::<daemon::NoDaemon>()
            .expect("the no-daemon error");
        assert_eq!(no_daemon.profile, "nobody");
        assert_eq!(report(&error), ExitCode::from(EXIT_NO_DAEMON));
    }

    #[test]
    fn daemon_errors_are_its_one_line_message() {
        let object = jsonrpsee::types::ErrorObjectOwned::owned(
            fastchat_api::codes::NOT_LOGGED_IN,
            "not logged in: run fastchatctl login USER",
            None::<()>,
        );
        let error = Err::<(), _>(ClientError::Call(object))
            .rpc()
            .expect_err("an error");
        assert_eq!(
            format!("{error:#}"),
            "not logged in: run fastchatctl login USER"
        );
        assert_eq!(report(&error), ExitCode::FAILURE);
    }
}
