//! A whole local FastChat in one process: a balancer and N chat servers sharing one
//! database. `fastchat up` runs one in the foreground; the bench starts one per measured
//! combination. This is the one crate that composes the services: it links the server and
//! balancer libraries, so nothing else needs to be built or started.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use fastchat_balancer::{Balancer, Strategy};
use fastchat_server::announce::{Announce, CpuMetric, announce};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

/// What to start.
#[derive(Debug, Clone)]
pub struct Plan {
    pub servers: u16,
    /// `sqlite://PATH` (one server) or `postgres://...`.
    pub database_url: String,
    pub strategy: Strategy,
    pub balancer_listen: String,
    /// The host the servers listen on.
    pub host: String,
    /// The first server's port; the others take the next ones (0: any free port each).
    pub first_port: u16,
}

#[derive(Debug)]
struct RunningServer {
    id: String,
    addr: String,
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
    stop_announce: oneshot::Sender<()>,
    announce: tokio::task::JoinHandle<anyhow::Result<()>>,
}

/// A running balancer and its servers.
#[derive(Debug)]
pub struct Deployment {
    pub balancer: Balancer,
    servers: Vec<RunningServer>,
}

impl Deployment {
    /// Starts the balancer, then each server (registered with it).
    ///
    /// # Errors
    /// If an address cannot be bound or the database cannot be opened.
    pub async fn start(plan: &Plan) -> anyhow::Result<Deployment> {
        let config = fastchat_balancer::Config {
            strategy: plan.strategy,
            ..Default::default()
        };
        let balancer = Balancer::start(&plan.balancer_listen, config)
            .await
            .map_err(|e| {
                anyhow::anyhow!("cannot start the balancer on {}: {e}", plan.balancer_listen)
            })?;
        let url = &plan.database_url;
        let mut servers = Vec::new();
        for i in 0..plan.servers {
            let id = format!("server-{}", i + 1);
            let port = if plan.first_port == 0 {
                0
            } else {
                plan.first_port + i
            };
            let listen = format!("{}:{port}", plan.host);
            let listener = TcpListener::bind(&listen)
                .await
                .with_context(|| format!("{id}: cannot listen on {listen}"))?;
            let addr = listener.local_addr()?;
            let store = fastchat_server::cli::open_store(url).await?;
            let config = fastchat_server::Config {
                server_id: id.clone(),
                ..Default::default()
            };
            let metrics = Arc::clone(&config.metrics);
            let (stop, stopped) = oneshot::channel::<()>();
            let task = tokio::spawn(fastchat_server::run(listener, store, config, None, stopped));
            let target = Announce {
                balancer: balancer.addr.to_string(),
                id: id.clone(),
                addr: addr.to_string(),
                interval: Duration::from_secs(1),
                // These servers share one process, so only the host's figure means anything.
                cpu: CpuMetric::Host,
            };
            let (stop_announce, announce_stopped) = oneshot::channel();
            let announce = tokio::spawn(announce(target, metrics, announce_stopped));
            servers.push(RunningServer {
                id,
                addr: addr.to_string(),
                stop,
                task,
                stop_announce,
                announce,
            });
        }
        Ok(Deployment { balancer, servers })
    }

    /// The servers' ids and addresses, in order.
    #[must_use]
    pub fn servers(&self) -> Vec<(String, String)> {
        self.servers
            .iter()
            .map(|s| (s.id.clone(), s.addr.clone()))
            .collect()
    }

    /// Waits until the balancer sees every server healthy.
    ///
    /// # Errors
    /// If that takes longer than `patience`.
    pub async fn wait_healthy(&self, patience: Duration) -> anyhow::Result<()> {
        let deadline = tokio::time::Instant::now() + patience;
        loop {
            let healthy = self
                .balancer
                .statuses()
                .iter()
                .filter(|s| s.healthy)
                .count();
            if healthy == self.servers.len() {
                return Ok(());
            }
            anyhow::ensure!(
                tokio::time::Instant::now() < deadline,
                "only {healthy} of {} servers became healthy",
                self.servers.len()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Stops every server (answering the sends already queued), then the balancer.
    pub async fn stop(self) {
        for server in self.servers {
            let _ = server.stop_announce.send(());
            let _ = server.announce.await;
            let _ = server.stop.send(());
            match server.task.await {
                Ok(Err(e)) => tracing::warn!(error = %e, "a server stopped with an error"),
                Err(e) => tracing::warn!(error = %e, "a server task failed"),
                Ok(Ok(())) => {}
            }
        }
        self.balancer.stop().await;
    }
}
