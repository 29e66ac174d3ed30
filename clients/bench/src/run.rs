//! One combination: a fresh deployment, simulated clients, a timed phase, a row.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use bytes::Bytes;
use fastchat_crypto::envelope::{self, Arrival};
use fastchat_crypto::{ConversationKey, Envelope, Header, Identity, Kind};
use fastchat_launcher::{Deployment, Plan};
use fastchat_link::policy::{ClientStrategy, Dialer};
use fastchat_link::{Link, LinkConfig, Pushes};
use fastchat_proto::{
    ClientMsgId, ConversationId, CreateGroup, Epoch, EpochMaterial, Push, SendMessage, Signup,
    SyncMessages, Timestamp,
};
use hdrhistogram::Histogram;
use tokio::task::JoinSet;

use crate::Strategy;

/// How much each client sends.
#[derive(Debug, Clone, Copy)]
pub enum Load {
    /// This many messages each.
    Messages(u32),
    /// For this long (from a pool of at most `POOL` pre-sealed messages each).
    Duration(Duration),
}

/// Messages sealed ahead for a timed run.
const POOL: u32 = 2_000;

/// One point of the matrix.
#[derive(Debug, Clone)]
pub struct Combination {
    pub servers: u16,
    pub clients: usize,
    pub size: usize,
    pub strategy: Strategy,
    pub load: Load,
    /// `None`: SQLite in a temporary folder (one server only).
    pub database_url: Option<String>,
    /// Makes user and group names unique when several combinations share a database.
    pub tag: String,
}

/// What a combination measured.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub servers: u16,
    pub clients: usize,
    pub size: usize,
    pub strategy: String,
    /// Messages delivered to their recipient.
    pub messages: u64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    pub out_msgs_per_s: f64,
    pub in_msgs_per_s: f64,
    pub out_bytes_per_s: f64,
    pub in_bytes_per_s: f64,
    /// Sends refused or failed, plus messages never delivered.
    pub errors: u64,
    /// Sealing one message (Fernet + RSA-PSS), before the timed phase.
    pub seal_ms: f64,
    /// Verifying and opening one message, on a sample after it.
    pub open_ms: f64,
}

fn ms(micros: u64) -> f64 {
    // Microseconds to milliseconds, for reports.
    #[allow(clippy::cast_precision_loss)]
    let v = micros as f64 / 1000.0;
    v
}

fn per_second(count: u64, elapsed: Duration) -> f64 {
    #[allow(clippy::cast_precision_loss)]
    let v = count as f64 / elapsed.as_secs_f64().max(1e-9);
    v
}

fn random_id() -> anyhow::Result<ClientMsgId> {
    let mut id = [0u8; 16];
    getrandom::fill(&mut id).map_err(|e| anyhow::anyhow!("no randomness: {e}"))?;
    Ok(ClientMsgId(id))
}

/// A fresh id and the header of a text message from `client` to its group.
fn text_header(client: &Client) -> anyhow::Result<(ClientMsgId, Header)> {
    let id = random_id()?;
    Ok((
        id,
        Header {
            conversation: client.conversation,
            epoch: Epoch(1),
            sender: client.name.clone(),
            client_msg_id: id,
            sent_at: Timestamp::now(),
            kind: Kind::Text,
        },
    ))
}

/// Runs one combination on a deployment of its own.
///
/// # Errors
/// If the deployment cannot start or the clients cannot sign up.
pub async fn run_combination(c: &Combination, identity: &Identity) -> anyhow::Result<Row> {
    if c.clients < 2 {
        bail!("a combination needs at least 2 clients (each sends to another)");
    }
    let scratch = tempfile::tempdir().context("a temporary folder")?;
    let database_url = match (&c.database_url, c.servers) {
        (Some(url), _) => url.clone(),
        (None, 1) => format!("sqlite://{}", scratch.path().join("server.db").display()),
        (None, n) => bail!("{n} servers must share a database: add --database-url postgres://..."),
    };
    let balancer_strategy = match c.strategy {
        Strategy::Balancer(s) => s,
        Strategy::Client(_) => fastchat_balancer::Strategy::RoundRobin,
    };
    let deployment = Deployment::start(&Plan {
        servers: c.servers,
        database_url,
        strategy: balancer_strategy,
        balancer_listen: "127.0.0.1:0".into(),
        host: "127.0.0.1".into(),
        first_port: 0,
    })
    .await?;
    let result = async {
        deployment.wait_healthy(Duration::from_secs(15)).await?;
        drive(c, identity, &deployment).await
    }
    .await;
    deployment.stop().await;
    result
}

struct Client {
    name: String,
    link: Link,
    pushes: Option<Pushes>,
    conversation: ConversationId,
}

async fn connect_clients(
    c: &Combination,
    identity: &Identity,
    deployment: &Deployment,
) -> anyhow::Result<Vec<Client>> {
    let addrs: Vec<String> = deployment.servers().into_iter().map(|(_, a)| a).collect();
    let balancer = deployment.balancer.addr.to_string();
    let public_key = Bytes::copy_from_slice(identity.public().der());
    let mut joins = JoinSet::new();
    for i in 0..c.clients {
        let (addrs, balancer, public_key) = (addrs.clone(), balancer.clone(), public_key.clone());
        let (strategy, name) = (c.strategy, format!("{}u{i}", c.tag));
        joins.spawn(async move {
            let mut dialer = match strategy {
                Strategy::Balancer(_) => {
                    Dialer::new(addrs, ClientStrategy::ClientRoundRobin, LinkConfig::new(""))
                        .with_balancer(balancer)
                }
                Strategy::Client(s) => Dialer::new(addrs, s, LinkConfig::new("")),
            };
            let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
            let (_, link, pushes) = dialer.connect(None, deadline).await?;
            link.request(Signup {
                username: name.clone(),
                password: "bench password".into(),
                public_key,
            })
            .await?;
            anyhow::Ok((i, name, link, pushes))
        });
    }
    let mut clients: Vec<Option<Client>> = (0..c.clients).map(|_| None).collect();
    while let Some(joined) = joins.join_next().await {
        let (i, name, link, pushes) = joined.context("a client task")??;
        clients[i] = Some(Client {
            name,
            link,
            pushes: Some(pushes),
            conversation: ConversationId(0),
        });
    }
    let mut clients: Vec<Client> = clients.into_iter().flatten().collect();
    // Client i sends to a group shared with client i + 1: each message has one recipient.
    let names: Vec<String> = clients.iter().map(|c| c.name.clone()).collect();
    for (i, client) in clients.iter_mut().enumerate() {
        let info = client
            .link
            .request(CreateGroup {
                name: format!("{}g{i}", c.tag),
                members: vec![names[(i + 1) % names.len()].clone()],
                material: EpochMaterial::default(),
            })
            .await?;
        client.conversation = info.id;
    }
    // A complete sync makes each connection live (pushes start).
    for client in &clients {
        loop {
            let batch = client
                .link
                .request(SyncMessages {
                    cursors: Vec::new(),
                    limit: 1000,
                })
                .await?;
            if !batch.more {
                break;
            }
        }
    }
    Ok(clients)
}

async fn drive(
    c: &Combination,
    identity: &Identity,
    deployment: &Deployment,
) -> anyhow::Result<Row> {
    let mut clients = connect_clients(c, identity, deployment).await?;

    // Sealing happens before the timed phase: two cores would otherwise time the
    // simulated clients' RSA, not FastChat.
    let key = ConversationKey::generate();
    let per_client = match c.load {
        Load::Messages(n) => n,
        Load::Duration(_) => POOL,
    };
    let content = "x".repeat(c.size);
    let sealing = Instant::now();
    let mut outboxes = Vec::new();
    for client in &clients {
        let mut out = Vec::new();
        for _ in 0..per_client {
            let (id, header) = text_header(client)?;
            out.push((
                id,
                Bytes::from(envelope::seal(identity, &key, header, content.as_bytes())?),
            ));
        }
        outboxes.push(out);
    }
    let sealed = clients.len() as u64 * u64::from(per_client);
    #[allow(clippy::cast_precision_loss)]
    let seal_ms = sealing.elapsed().as_secs_f64() * 1000.0 / sealed.max(1) as f64;

    // Receivers: every push of someone else's message is timed against its send.
    let sent_at: Arc<Mutex<HashMap<ClientMsgId, Instant>>> = Arc::default();
    let histogram = Arc::new(Mutex::new(
        Histogram::<u64>::new_with_bounds(1, 3_600_000_000, 3).context("histogram bounds")?,
    ));
    let (delivered, delivered_bytes) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let mut readers = JoinSet::new();
    for client in &mut clients {
        let mut pushes = client.pushes.take().context("pushes taken once")?;
        let me = client.name.clone();
        let (sent_at, histogram) = (Arc::clone(&sent_at), Arc::clone(&histogram));
        let (delivered, delivered_bytes) = (Arc::clone(&delivered), Arc::clone(&delivered_bytes));
        readers.spawn(async move {
            while let Some(push) = pushes.recv().await {
                let Push::Messages(messages) = push else {
                    continue;
                };
                let now = Instant::now();
                for m in messages.iter().filter(|m| m.sender != me) {
                    let Some(t0) = sent_at
                        .lock()
                        .ok()
                        .and_then(|mut s| s.remove(&m.client_msg_id))
                    else {
                        continue;
                    };
                    let micros =
                        u64::try_from(now.duration_since(t0).as_micros()).unwrap_or(u64::MAX);
                    if let Ok(mut h) = histogram.lock() {
                        let _ = h.record(micros.max(1));
                    }
                    delivered.fetch_add(1, Ordering::Relaxed);
                    delivered_bytes.fetch_add(m.envelope.len() as u64, Ordering::Relaxed);
                }
            }
        });
    }

    // The timed phase: each client sends as fast as its acks allow.
    let (sent, sent_bytes, errors) = (
        Arc::new(AtomicU64::new(0)),
        Arc::new(AtomicU64::new(0)),
        Arc::new(AtomicU64::new(0)),
    );
    let start = Instant::now();
    let stop_at = match c.load {
        Load::Duration(d) => Some(start + d),
        Load::Messages(_) => None,
    };
    let mut senders = JoinSet::new();
    for (client, outbox) in clients.iter().zip(outboxes) {
        let (link, conversation) = (client.link.clone(), client.conversation);
        let (sent_at, sent, sent_bytes, errors) = (
            Arc::clone(&sent_at),
            Arc::clone(&sent),
            Arc::clone(&sent_bytes),
            Arc::clone(&errors),
        );
        senders.spawn(async move {
            for (id, envelope) in outbox {
                if stop_at.is_some_and(|t| Instant::now() >= t) {
                    break;
                }
                let len = envelope.len() as u64;
                if let Ok(mut s) = sent_at.lock() {
                    s.insert(id, Instant::now());
                }
                let result = link
                    .request(SendMessage {
                        conversation,
                        client_msg_id: id,
                        envelope,
                    })
                    .await;
                if result.is_ok() {
                    sent.fetch_add(1, Ordering::Relaxed);
                    sent_bytes.fetch_add(len, Ordering::Relaxed);
                } else {
                    errors.fetch_add(1, Ordering::Relaxed);
                    if let Ok(mut s) = sent_at.lock() {
                        s.remove(&id);
                    }
                }
            }
        });
    }
    while senders.join_next().await.is_some() {}
    let sending = start.elapsed();
    let out = sent.load(Ordering::Relaxed);
    // Deliveries still in flight: wait for them, for a while.
    let deadline = Instant::now() + Duration::from_secs(30);
    while delivered.load(Ordering::Relaxed) < out && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let receiving = start.elapsed();
    readers.abort_all();
    let got = delivered.load(Ordering::Relaxed);

    // Verify and open a sample, to report what receiving costs a real client.
    let open_ms = open_cost(identity, &key, &clients, c.size)?;

    let h = histogram
        .lock()
        .map_err(|_| anyhow::anyhow!("histogram lock poisoned"))?;
    Ok(Row {
        servers: c.servers,
        clients: c.clients,
        size: c.size,
        strategy: c.strategy.name(),
        messages: got,
        p50_ms: ms(h.value_at_quantile(0.5)),
        p90_ms: ms(h.value_at_quantile(0.9)),
        p99_ms: ms(h.value_at_quantile(0.99)),
        max_ms: ms(h.max()),
        out_msgs_per_s: per_second(out, sending),
        in_msgs_per_s: per_second(got, receiving),
        out_bytes_per_s: per_second(sent_bytes.load(Ordering::Relaxed), sending),
        in_bytes_per_s: per_second(delivered_bytes.load(Ordering::Relaxed), receiving),
        errors: errors.load(Ordering::Relaxed) + out.saturating_sub(got),
        seal_ms,
        open_ms,
    })
}

/// Average cost of verifying and opening one message, over a small sample.
fn open_cost(
    identity: &Identity,
    key: &ConversationKey,
    clients: &[Client],
    size: usize,
) -> anyhow::Result<f64> {
    let content = "x".repeat(size);
    let samples: Vec<(ClientMsgId, Vec<u8>, &Client)> = clients
        .iter()
        .take(10)
        .map(|client| {
            let (id, header) = text_header(client)?;
            Ok((
                id,
                envelope::seal(identity, key, header, content.as_bytes())?,
                client,
            ))
        })
        .collect::<anyhow::Result<_>>()?;
    let started = Instant::now();
    for (id, bytes, client) in &samples {
        let arrival = Arrival {
            conversation: client.conversation,
            sender: &client.name,
            client_msg_id: *id,
        };
        Envelope::decode(bytes)?.open(arrival, identity.public(), key)?;
    }
    #[allow(clippy::cast_precision_loss)]
    let v = started.elapsed().as_secs_f64() * 1000.0 / samples.len().max(1) as f64;
    Ok(v)
}
