use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use fastchat_daemon::{Config, Notifications, Strategy};

/// fastchatd: the per-user FastChat daemon. Holds the keys, the server connection and the
/// local history, and serves JSON-RPC on a local socket to fastchatctl, the desktop app and
/// scripts.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// The profile (one daemon, account and history per profile).
    #[arg(long, env = "FASTCHAT_PROFILE", default_value = "default")]
    profile: String,
    /// The socket to listen on [default: $XDG_RUNTIME_DIR/fastchat/<profile>.sock].
    #[arg(long, env = "FASTCHAT_SOCKET")]
    socket: Option<PathBuf>,
    /// Where the profile keeps its keys and history
    /// [default: $XDG_DATA_HOME/fastchat/profiles/<profile>].
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// The load balancer to ask for a server [default: 127.0.0.1:7300 when no --server is given].
    #[arg(long)]
    balancer: Option<String>,
    /// A server to use (repeatable); without a balancer, the daemon chooses among these.
    #[arg(long = "server")]
    servers: Vec<String>,
    /// How to choose a server: balancer, client-round-robin or random
    /// [default: balancer with --balancer, else client-round-robin].
    #[arg(long)]
    strategy: Option<Strategy>,
    /// Raise no desktop notifications.
    #[arg(long)]
    no_notifications: bool,
    /// Notifications name the sender and conversation but do not show the text.
    #[arg(long)]
    hide_content: bool,
    /// Show a tray icon with the unread count (StatusNotifierItem over D-Bus).
    #[arg(long)]
    tray: bool,
    /// The largest image to send or accept, in bytes.
    #[arg(long, default_value_t = fastchat_daemon::DEFAULT_MAX_IMAGE_BYTES)]
    max_image_bytes: u64,
    /// Where received images and their thumbnails are kept [default: <data dir>/images].
    #[arg(long)]
    images_dir: Option<PathBuf>,
    /// Connect to servers over TLS, trusting this CA certificate (PEM).
    #[arg(long)]
    tls_ca: Option<PathBuf>,
    /// The name the servers' certificates are checked against.
    #[arg(long, default_value = "localhost", requires = "tls_ca")]
    tls_server_name: String,
    /// RSA key size for new identities (tests use 2048 to stay fast).
    #[arg(long, default_value_t = fastchat_crypto::DEFAULT_KEY_BITS, hide = true)]
    key_bits: usize,
}

fn config(args: Args) -> anyhow::Result<Config> {
    anyhow::ensure!(
        fastchat_api::paths::valid_profile(&args.profile),
        "the profile name {:?} is not usable as a file name (letters, digits, _ - .)",
        args.profile
    );
    anyhow::ensure!(
        args.key_bits >= fastchat_crypto::MIN_KEY_BITS,
        "--key-bits must be at least {}",
        fastchat_crypto::MIN_KEY_BITS
    );
    anyhow::ensure!(
        !args.tray || cfg!(all(unix, not(target_os = "macos"))),
        "--tray needs a StatusNotifierItem panel (Linux and the BSDs)"
    );
    let balancer = match (&args.balancer, args.servers.is_empty()) {
        (Some(b), _) => Some(b.clone()),
        (None, true) => Some("127.0.0.1:7300".to_owned()),
        (None, false) => None,
    };
    let strategy = args
        .strategy
        .unwrap_or(if args.balancer.is_some() || args.servers.is_empty() {
            Strategy::Balancer
        } else {
            Strategy::Client(fastchat_link::policy::ClientStrategy::ClientRoundRobin)
        });
    anyhow::ensure!(
        strategy != Strategy::Balancer || balancer.is_some(),
        "--strategy balancer needs --balancer"
    );
    let data_dir = args
        .data_dir
        .unwrap_or_else(|| fastchat_api::paths::data_dir(&args.profile));
    Ok(Config {
        socket: args
            .socket
            .unwrap_or_else(|| fastchat_api::paths::socket_path(&args.profile)),
        images_dir: args.images_dir.unwrap_or_else(|| data_dir.join("images")),
        data_dir,
        max_image_bytes: args.max_image_bytes,
        profile: args.profile,
        balancer,
        servers: args.servers,
        strategy,
        notifications: match (args.no_notifications, args.hide_content) {
            (true, _) => Notifications::Off,
            (false, true) => Notifications::Private,
            (false, false) => Notifications::Preview,
        },
        tray: args.tray,
        key_bits: args.key_bits,
        tls: args.tls_ca.map(|ca| (ca, args.tls_server_name)),
    })
}

fn main() -> ExitCode {
    let args = Args::parse();
    fastchat_runtime::init_logging();
    fastchat_runtime::run(async move {
        let config = config(args)?;
        fastchat_daemon::run(config, fastchat_runtime::shutdown_signal()).await
    })
}
