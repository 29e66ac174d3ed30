//! What a daemon is told at start: its profile, where it listens and keeps data, and how it
//! finds servers.

use std::path::PathBuf;

use fastchat_link::policy::ClientStrategy;

/// How the daemon chooses a server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strategy {
    /// Ask the balancer's `pick` (falling back to its last known list while it is down).
    Balancer,
    /// Choose from the server list itself.
    Client(ClientStrategy),
}

impl Strategy {
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Strategy::Balancer => "balancer",
            Strategy::Client(ClientStrategy::ClientRoundRobin) => "client-round-robin",
            Strategy::Client(ClientStrategy::Random) => "random",
        }
    }
}

impl std::str::FromStr for Strategy {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "balancer" => Ok(Strategy::Balancer),
            other => other.parse().map(Strategy::Client).map_err(|_| {
                format!("{other} is not a daemon strategy (balancer, client-round-robin, random)")
            }),
        }
    }
}

/// Whether and how incoming messages raise desktop notifications.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Notifications {
    Off,
    /// Sender, conversation and a preview of the text.
    Preview,
    /// Sender and conversation only.
    Private,
}

#[derive(Debug, Clone)]
pub struct Config {
    pub profile: String,
    pub socket: PathBuf,
    pub data_dir: PathBuf,
    /// The balancer's address, if any.
    pub balancer: Option<String>,
    /// Servers to use without (or while there is no) balancer.
    pub servers: Vec<String>,
    pub strategy: Strategy,
    pub notifications: Notifications,
    /// Show a tray icon with the unread count.
    pub tray: bool,
    /// The largest image sent or accepted, in bytes.
    pub max_image_bytes: u64,
    /// Where received (and sent) images and their thumbnails are kept.
    pub images_dir: PathBuf,
    /// Size of identity keys this daemon generates.
    pub key_bits: usize,
    /// A CA certificate (PEM) to connect to servers over TLS with, and the name to check.
    pub tls: Option<(PathBuf, String)>,
}
