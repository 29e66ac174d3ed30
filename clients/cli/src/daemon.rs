//! Reaching the profile's fastchatd: connect to its socket, and when nobody listens there
//! start one (unless `--no-autostart`) and wait until it answers
//! ([`fastchat_api::autostart`], shared with the other front ends).

use std::fmt;
use std::path::PathBuf;

use fastchat_api::ConnectError;
use fastchat_api::autostart::{self, Launch};
use jsonrpsee::async_client::Client;

use crate::args::Global;

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
    let launch = Launch {
        profile: global.profile.clone(),
        socket: global.socket_path(),
        balancer: global.balancer.clone(),
        servers: global.servers.clone(),
    };
    if !global.no_autostart {
        return Ok(autostart::connect_or_start(&launch).await?);
    }
    match fastchat_api::connect(&launch.socket).await {
        Ok(client) => Ok(client),
        Err(ConnectError::NotRunning { .. }) => Err(NoDaemon {
            profile: launch.profile,
            socket: launch.socket,
        }
        .into()),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
