//! The server's tunables, with the defaults a deployment gets.

use std::sync::Arc;
use std::time::Duration;

use fastchat_proto::MAX_ENVELOPE_LEN;

use crate::accounts::LoginLimits;
use crate::announce::Metrics;

#[derive(Debug, Clone)]
pub struct Config {
    /// The server's name in `Welcome` and the logs.
    pub server_id: String,
    /// Connections beyond this are told `TooManyConnections` and closed.
    pub max_connections: usize,
    /// A new connection must complete `Hello` within this.
    pub handshake_timeout: Duration,
    /// A connection that sends nothing for this long is closed (clients ping well within it).
    pub idle_timeout: Duration,
    /// Once a frame has begun to arrive, all of it must arrive within this.
    pub frame_timeout: Duration,
    /// Sends a connection may have waiting for their commit before it stops reading more.
    pub max_inflight_sends: usize,
    /// The largest envelope accepted in one send.
    pub max_envelope: usize,
    /// The largest attachment (image) accepted, in plaintext bytes: uploads of more chunks
    /// than that needs are refused.
    pub max_attachment: u64,
    /// An upload that saw no chunk for this long and is still incomplete is deleted.
    pub upload_ttl: Duration,
    /// How many messages at most are committed in one transaction.
    pub max_batch: usize,
    /// Pushes queued for one connection before it is marked lagging (it then catches up
    /// from the database instead of from memory).
    pub push_queue: usize,
    pub session_ttl: Duration,
    pub login_limits: LoginLimits,
    /// Password hashes computed at once (each takes ~19 MiB and ~50 ms of a core).
    pub hash_concurrency: usize,
    /// Live counters, shared with whoever reports them (the balancer heartbeat).
    pub metrics: Arc<Metrics>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            server_id: "server-1".into(),
            max_connections: 10_000,
            handshake_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(300),
            frame_timeout: Duration::from_secs(30),
            max_inflight_sends: 256,
            max_envelope: MAX_ENVELOPE_LEN,
            max_attachment: 25 * 1024 * 1024,
            upload_ttl: Duration::from_secs(24 * 3600),
            max_batch: 256,
            push_queue: 256,
            session_ttl: Duration::from_secs(30 * 24 * 3600),
            login_limits: LoginLimits::default(),
            hash_concurrency: std::thread::available_parallelism().map_or(2, usize::from),
            metrics: Arc::default(),
        }
    }
}
