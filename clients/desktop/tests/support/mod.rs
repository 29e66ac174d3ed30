//! A real FastChat for the window's tests, in this process: a chat server on 127.0.0.1 with
//! its SQLite database, and one `fastchatd` per user (the daemon's own library, serving its
//! real socket), on a tokio runtime beside gpui's test executor.

#![allow(dead_code, clippy::unwrap_used)]

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use fastchat_api::FastChatApiClient;
use fastchat_desktop::backend::{Backend, Connector};
use fastchat_desktop::theme::Appearance;
use fastchat_desktop::views::root::Root;
use gpui::{AppContext, Entity, TestAppContext, WindowHandle};
use jsonrpsee::async_client::Client;
use tempfile::TempDir;
use tokio::sync::oneshot;

pub const PASSWORD: &str = "correct horse battery";

/// How long any awaited condition may take.
const PATIENCE: Duration = Duration::from_secs(60);

pub struct World {
    pub rt: tokio::runtime::Runtime,
    pub dir: TempDir,
    deployment: Option<fastchat_launcher::Deployment>,
    pub server: String,
    daemons: Vec<(
        oneshot::Sender<()>,
        tokio::task::JoinHandle<anyhow::Result<()>>,
    )>,
}

/// A running daemon and an RPC client of its own, for the test to act as that user.
pub struct User {
    pub name: String,
    pub socket: PathBuf,
    pub client: Client,
}

impl World {
    pub fn start() -> World {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let plan = fastchat_launcher::Plan {
            servers: 1,
            database_url: format!("sqlite://{}", dir.path().join("server.db").display()),
            strategy: fastchat_balancer::Strategy::RoundRobin,
            balancer_listen: "127.0.0.1:0".to_owned(),
            host: "127.0.0.1".to_owned(),
            first_port: 0,
        };
        let deployment = rt.block_on(async {
            let d = fastchat_launcher::Deployment::start(&plan).await.unwrap();
            d.wait_healthy(PATIENCE).await.unwrap();
            d
        });
        let server = deployment.servers()[0].1.clone();
        World {
            rt,
            dir,
            deployment: Some(deployment),
            server,
            daemons: Vec::new(),
        }
    }

    /// Starts `name`'s daemon (not logged in) and connects a client to it.
    pub fn daemon(&mut self, name: &str) -> User {
        let root = self.dir.path().join(name);
        let socket = root.join("run").join("fastchatd.sock");
        let config = fastchat_daemon::Config {
            profile: name.to_owned(),
            socket: socket.clone(),
            data_dir: root.join("data"),
            balancer: None,
            servers: vec![self.server.clone()],
            strategy: "client-round-robin".parse().unwrap(),
            notifications: fastchat_daemon::Notifications::Off,
            tray: false,
            max_image_bytes: fastchat_daemon::DEFAULT_MAX_IMAGE_BYTES,
            images_dir: root.join("data").join("images"),
            key_bits: 2048,
            tls: None,
        };
        let (stop, stopped) = oneshot::channel::<()>();
        let task = self.rt.spawn(fastchat_daemon::run(config, async {
            let _ = stopped.await;
        }));
        self.daemons.push((stop, task));
        let client = self.rt.block_on(async {
            let deadline = Instant::now() + PATIENCE;
            loop {
                match fastchat_api::connect(&socket).await {
                    Ok(client) => break client,
                    Err(e) => {
                        assert!(
                            Instant::now() < deadline,
                            "{name}'s daemon never answered: {e}"
                        );
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                }
            }
        });
        User {
            name: name.to_owned(),
            socket,
            client,
        }
    }

    /// Starts `name`'s daemon and signs the user up on it.
    pub fn user(&mut self, name: &str) -> User {
        let user = self.daemon(name);
        self.rt
            .block_on(user.client.signup(name.to_owned(), PASSWORD.to_owned()))
            .unwrap();
        user
    }

    /// A backend for the window, on `user`'s daemon.
    pub fn backend(&self, user: &User) -> Backend {
        let socket = user.socket.clone();
        let connector: Connector = Arc::new(move || {
            let socket = socket.clone();
            Box::pin(async move {
                fastchat_api::connect(&socket)
                    .await
                    .map_err(|e| e.to_string())
            })
        });
        Backend::new(self.rt.handle().clone(), connector)
    }

    /// Opens the window on `user`'s daemon.
    pub fn window(&self, user: &User, cx: &mut TestAppContext) -> WindowHandle<Root> {
        cx.executor().allow_parking();
        cx.update(|cx| fastchat_desktop::init(Appearance::Light, cx));
        let backend = self.backend(user);
        cx.add_window(|window, cx| {
            let session = cx.new(|cx| fastchat_desktop::model::Session::new(backend, cx));
            Root::new(session, window, cx)
        })
    }

    /// Runs an RPC call (as a user) to completion.
    pub fn block<F: Future>(&self, f: F) -> F::Output {
        self.rt.block_on(f)
    }
}

impl Drop for World {
    fn drop(&mut self) {
        let daemons = std::mem::take(&mut self.daemons);
        let deployment = self.deployment.take();
        self.rt.block_on(async move {
            for (stop, task) in daemons {
                let _ = stop.send(());
                let _ = tokio::time::timeout(Duration::from_secs(10), task).await;
            }
            if let Some(d) = deployment {
                d.stop().await;
            }
        });
    }
}

/// Runs gpui's tasks until `f` holds, failing the test after a minute. The daemon answers
/// on other threads, so this waits for the condition, not for a set time.
pub fn until<T>(
    cx: &mut TestAppContext,
    what: &str,
    mut f: impl FnMut(&mut TestAppContext) -> Option<T>,
) -> T {
    let deadline = Instant::now() + PATIENCE;
    loop {
        cx.run_until_parked();
        if let Some(v) = f(cx) {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The root view of `window`.
pub fn root(window: &WindowHandle<Root>, cx: &mut TestAppContext) -> Entity<Root> {
    window.root(cx).unwrap()
}
