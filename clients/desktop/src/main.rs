//! `fastchat-desktop [--profile NAME] [--socket PATH]`: the FastChat window for a profile's
//! daemon, started if none answers.

use std::cell::RefCell;
use std::path::PathBuf;
use std::process::ExitCode;
use std::rc::Rc;
use std::sync::Arc;

use clap::{Parser, ValueEnum};
use fastchat_desktop::backend::{Backend, Connector};
use fastchat_desktop::theme::Appearance;
use fastchat_desktop::views::root::appearance_of;
use gpui::Application;

/// fastchat-desktop: the FastChat window, through the profile's fastchatd (started when none
/// runs).
#[derive(Debug, Parser)]
#[command(name = "fastchat-desktop", version, about)]
struct Args {
    /// The profile (one daemon, account and history per profile).
    #[arg(
        long,
        env = "FASTCHAT_PROFILE",
        default_value = "default",
        value_name = "NAME",
        value_parser = fastchat_api::paths::parse_profile
    )]
    profile: String,
    /// The daemon's socket [default: $XDG_RUNTIME_DIR/fastchat/<profile>.sock].
    #[arg(long, env = "FASTCHAT_SOCKET", value_name = "PATH")]
    socket: Option<PathBuf>,
    /// The load balancer a started fastchatd asks for servers.
    #[arg(long, value_name = "ADDR")]
    balancer: Option<String>,
    /// A server a started fastchatd may use (repeatable).
    #[arg(long = "server", value_name = "ADDR")]
    servers: Vec<String>,
    /// The theme [default: the desktop's].
    #[arg(long, value_enum)]
    theme: Option<ThemeArg>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum ThemeArg {
    Light,
    Dark,
}

fn main() -> ExitCode {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("fastchat-rpc")
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the RPC runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let launch = fastchat_api::autostart::Launch {
        socket: fastchat_api::paths::socket_or_default(&args.profile, args.socket.as_deref()),
        profile: args.profile.clone(),
        balancer: args.balancer.clone(),
        servers: args.servers.clone(),
    };
    let connector: Connector = Arc::new(move || {
        let launch = launch.clone();
        Box::pin(async move {
            fastchat_api::autostart::connect_or_start(&launch)
                .await
                .map_err(|e| with_causes(&e))
        })
    });
    let backend = Backend::new(runtime.handle().clone(), connector);
    let theme = args.theme;
    let failed = Rc::new(RefCell::new(None));
    let failure = failed.clone();
    Application::new().run(move |cx| {
        let appearance = match theme {
            Some(ThemeArg::Light) => Appearance::Light,
            Some(ThemeArg::Dark) => Appearance::Dark,
            None => appearance_of(cx.window_appearance()),
        };
        fastchat_desktop::init(appearance, cx);
        match fastchat_desktop::open_window(backend, cx) {
            Ok(_) => {
                cx.on_window_closed(|cx| {
                    if cx.windows().is_empty() {
                        cx.quit();
                    }
                })
                .detach();
                cx.activate(true);
            }
            Err(e) => {
                *failure.borrow_mut() = Some(format!("cannot open a window: {e:#}"));
                cx.quit();
            }
        }
    });
    drop(runtime);
    let failed = failed.borrow_mut().take();
    match failed {
        Some(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
        None => ExitCode::SUCCESS,
    }
}

/// An error and its causes on one line ("cannot start fastchatd: No such file or directory").
fn with_causes(error: &dyn std::error::Error) -> String {
    let mut line = error.to_string();
    let mut cause = error.source();
    while let Some(c) = cause {
        line.push_str(": ");
        line.push_str(&c.to_string());
        cause = c.source();
    }
    line
}
