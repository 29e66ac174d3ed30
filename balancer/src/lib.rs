//! The FastChat load balancer: tells clients which chat server to use.
//!
//! JSON-RPC 2.0 over HTTP (jsonrpsee) with the methods of `fastchat_proto::balancer`:
//! `pick`, `servers`, `register`, `heartbeat` and `report`. Servers come from `--server`
//! flags and from registration; a probe task connects to each every `probe_interval`.
//!
//! Invariants: the balancer never touches chat traffic, only addresses and health; all state
//! is in one [`Registry`] behind a mutex, changed by short, non-async critical sections.

pub mod registry;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use fastchat_proto::balancer::{self as api, Heartbeat, PickParams, Register, Report};
use jsonrpsee::RpcModule;
use jsonrpsee::server::{Server, ServerHandle};
use jsonrpsee::types::ErrorObjectOwned;

pub use crate::registry::{Health, Registry, Strategy};

/// JSON-RPC error code for "no healthy server to pick".
pub const NO_SERVER: i32 = -32000;

#[derive(Debug, Clone)]
pub struct Config {
    pub strategy: Strategy,
    pub health: Health,
    pub probe_interval: Duration,
    /// Servers known from the start (`--server ID=ADDR`).
    pub servers: Vec<(String, String)>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            strategy: Strategy::RoundRobin,
            health: Health::default(),
            probe_interval: Duration::from_secs(1),
            servers: Vec::new(),
        }
    }
}

#[derive(Debug, Clone)]
struct State(Arc<Mutex<Registry>>);

impl State {
    fn lock(&self) -> MutexGuard<'_, Registry> {
        // Registry updates are plain field writes; a poisoned one is still consistent.
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A running balancer.
#[derive(Debug)]
pub struct Balancer {
    pub addr: SocketAddr,
    state: State,
    handle: ServerHandle,
    prober: tokio::task::JoinHandle<()>,
}

impl Balancer {
    /// Binds `listen` and serves until [`Balancer::stop`].
    ///
    /// # Errors
    /// If the address cannot be bound.
    pub async fn start(listen: &str, config: Config) -> anyhow::Result<Balancer> {
        let mut registry = Registry::new(config.strategy, config.health);
        for (id, addr) in &config.servers {
            registry.add_static(id, addr);
        }
        let state = State(Arc::new(Mutex::new(registry)));
        let server = Server::builder().build(listen).await?;
        let addr = server.local_addr()?;
        let handle = server.start(module(state.clone())?);
        let prober = tokio::spawn(probe(state.clone(), config.probe_interval, handle.clone()));
        Ok(Balancer {
            addr,
            state,
            handle,
            prober,
        })
    }

    /// The servers as `servers` reports them, for a launcher in the same process.
    #[must_use]
    pub fn statuses(&self) -> Vec<fastchat_proto::balancer::ServerStatus> {
        self.state.lock().statuses(Instant::now())
    }

    /// Stops serving and waits for the probe task.
    pub async fn stop(self) {
        let _ = self.handle.stop();
        self.handle.stopped().await;
        let _ = self.prober.await;
    }
}

fn module(state: State) -> anyhow::Result<RpcModule<State>> {
    let mut module = RpcModule::new(state);
    module.register_method(api::PICK, |params, state, _| {
        let params = params.parse::<Option<PickParams>>()?.unwrap_or_default();
        state
            .lock()
            .pick(&params.exclude, Instant::now())
            .ok_or_else(|| {
                ErrorObjectOwned::owned(NO_SERVER, "no healthy server to pick", None::<()>)
            })
    })?;
    module.register_method(api::SERVERS, |_, state, _| {
        state.lock().statuses(Instant::now())
    })?;
    module.register_method(api::REGISTER, |params, state, _| {
        let r: Register = params.parse()?;
        state.lock().register(&r.id, &r.addr, Instant::now());
        tracing::info!(server = %r.id, addr = %r.addr, "registered");
        Ok::<_, ErrorObjectOwned>(true)
    })?;
    module.register_method(api::HEARTBEAT, |params, state, _| {
        let h: Heartbeat = params.parse()?;
        state
            .lock()
            .heartbeat(&h.id, &h.addr, h.cpu, h.connections, Instant::now());
        Ok::<_, ErrorObjectOwned>(true)
    })?;
    module.register_method(api::REPORT, |params, state, _| {
        let r: Report = params.parse()?;
        state.lock().report_failure(&r.id, Instant::now());
        Ok::<_, ErrorObjectOwned>(true)
    })?;
    Ok(module)
}

/// Connects to every server each interval; a TCP connection that opens in time is a pass.
/// (Load and liveness in detail come from the servers' own heartbeats.)
async fn probe(state: State, interval: Duration, server: ServerHandle) {
    let timeout = interval.max(Duration::from_millis(100));
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            () = server.clone().stopped() => return,
        }
        let targets = state.lock().targets();
        let probes: Vec<_> = targets
            .into_iter()
            .map(|(id, addr)| {
                tokio::spawn(async move {
                    let connect = tokio::net::TcpStream::connect(addr.clone());
                    let passed = matches!(tokio::time::timeout(timeout, connect).await, Ok(Ok(_)));
                    (id, addr, passed)
                })
            })
            .collect();
        for p in probes {
            if let Ok((id, addr, passed)) = p.await {
                state.lock().probed(&id, &addr, passed);
            }
        }
    }
}
