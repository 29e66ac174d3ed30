//! Simulated clients: real server links (through the balancer or a client-side strategy),
//! real accounts and groups, envelopes really sealed (Fernet + RSA-PSS) before the timed
//! phase. Client `i` sends to a group shared with client `i + 1`, so every message has one
//! recipient, and both ends live in the same process: latency is timed on one clock.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use bytes::Bytes;
use fastchat_crypto::envelope::{self, Arrival};
use fastchat_crypto::{ConversationKey, Envelope, Header, Identity, Kind};
use fastchat_link::policy::Dialer;
use fastchat_link::{Link, LinkConfig, Pushes};
use fastchat_proto::{
    ClientMsgId, ConversationId, CreateGroup, Epoch, EpochMaterial, Push, SendMessage, Signup,
    SyncMessages, Timestamp,
};
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::Strategy;
use crate::run::{Load, POOL, VIA_BALANCER, dial_strategy, wait_until};

/// What one process's share of the clients does (sent to worker processes as JSON).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ClientSpec {
    pub servers: Vec<String>,
    pub balancer: String,
    pub strategy: String,
    pub clients: usize,
    pub size: usize,
    pub load: Load,
    pub rate: Option<f64>,
    /// Prefix of user and group names, unique per process and combination.
    pub tag: String,
}

/// What a set of clients measured; sums over processes.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Partial {
    /// Latency histogram in microseconds, as (value, count) pairs.
    pub latency: Vec<(u64, u64)>,
    pub sent: u64,
    pub sent_bytes: u64,
    pub delivered: u64,
    pub delivered_bytes: u64,
    pub errors: u64,
    /// From the first send until the last ack.
    pub sending_s: f64,
    /// From the first send until the last delivery (or giving up on it).
    pub receiving_s: f64,
    pub seal_ms: f64,
    pub open_ms: f64,
    /// Clients per server address.
    #[serde(default)]
    pub placement: BTreeMap<String, u64>,
}

impl Partial {
    /// The latency histogram (microseconds).
    #[must_use]
    pub fn histogram(&self) -> Histogram<u64> {
        let mut h = new_histogram();
        for &(value, count) in &self.latency {
            let _ = h.record_n(value, count);
        }
        h
    }

    /// Adds another process's share: counts add up, durations are the longest (the
    /// processes ran at once), client costs are averaged.
    pub fn merge(&mut self, other: &Partial, weight: f64, total_weight: f64) {
        let mut h = self.histogram();
        let _ = h.add(other.histogram());
        self.latency = pairs(&h);
        self.sent += other.sent;
        self.sent_bytes += other.sent_bytes;
        self.delivered += other.delivered;
        self.delivered_bytes += other.delivered_bytes;
        self.errors += other.errors;
        self.sending_s = self.sending_s.max(other.sending_s);
        self.receiving_s = self.receiving_s.max(other.receiving_s);
        let share = weight / total_weight.max(1e-9);
        self.seal_ms += other.seal_ms * share;
        self.open_ms += other.open_ms * share;
        for (addr, n) in &other.placement {
            *self.placement.entry(addr.clone()).or_default() += n;
        }
    }
}

fn new_histogram() -> Histogram<u64> {
    // 1 µs to an hour at 3 significant digits.
    Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("constant, valid bounds")
}

fn pairs(h: &Histogram<u64>) -> Vec<(u64, u64)> {
    h.iter_recorded()
        .map(|v| (v.value_iterated_to(), v.count_at_value()))
        .collect()
}

struct Client {
    name: String,
    /// The server it connected to.
    server: String,
    link: Link,
    pushes: Option<Pushes>,
    conversation: ConversationId,
}

/// Clients signed up, in their groups, live, with their messages sealed.
pub struct Prepared {
    spec: ClientSpec,
    clients: Vec<Client>,
    outboxes: Vec<Vec<(ClientMsgId, Bytes)>>,
    seal_ms: f64,
    open_ms: f64,
}

impl std::fmt::Debug for Prepared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Prepared")
            .field("clients", &self.clients.len())
            .finish_non_exhaustive()
    }
}

/// Sign-ups at once: each costs the server an argon2id hash, which it queues anyway.
const SIGNUPS_AT_ONCE: usize = 64;

impl Prepared {
    /// Connects and signs up `spec.clients` clients, pairs them in groups, makes every
    /// connection live and seals every client's messages.
    ///
    /// # Errors
    /// If a client cannot connect, sign up or create its group.
    pub async fn connect(spec: &ClientSpec, identity: &Identity) -> anyhow::Result<Prepared> {
        let mut clients = connect_clients(spec, identity).await?;
        // Sealing happens before the timed phase: two cores would otherwise time the
        // simulated clients' RSA, not FastChat.
        let key = ConversationKey::generate();
        let per_client = match spec.load {
            Load::Messages(n) => n,
            Load::Duration(_) => POOL,
        };
        let content = "x".repeat(spec.size);
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
        let open_ms = open_cost(identity, &key, &mut clients, spec.size)?;
        Ok(Prepared {
            spec: spec.clone(),
            clients,
            outboxes,
            seal_ms,
            open_ms,
        })
    }

    /// The timed phase: every client sends its messages (at the spec's rate, or as fast as
    /// its acks allow), and every recipient times each arrival against its send.
    ///
    /// # Errors
    /// Only if the bookkeeping breaks (a poisoned lock); failed sends are counted.
    pub async fn run(mut self) -> anyhow::Result<Partial> {
        let mut placement = BTreeMap::new();
        for client in &self.clients {
            *placement.entry(client.server.clone()).or_default() += 1;
        }
        let sent_at: Arc<Mutex<HashMap<ClientMsgId, Instant>>> = Arc::default();
        let histogram = Arc::new(Mutex::new(new_histogram()));
        let (delivered, delivered_bytes) =
            (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
        let mut readers = JoinSet::new();
        for client in &mut self.clients {
            let mut pushes = client.pushes.take().context("pushes taken once")?;
            let me = client.name.clone();
            let (sent_at, histogram) = (Arc::clone(&sent_at), Arc::clone(&histogram));
            let (delivered, delivered_bytes) =
                (Arc::clone(&delivered), Arc::clone(&delivered_bytes));
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

        let (sent, sent_bytes, errors) = (
            Arc::new(AtomicU64::new(0)),
            Arc::new(AtomicU64::new(0)),
            Arc::new(AtomicU64::new(0)),
        );
        let start = Instant::now();
        let stop_at = match self.spec.load {
            Load::Duration(d) => Some(start + d),
            Load::Messages(_) => None,
        };
        let interval = self.spec.rate.map(|r| Duration::from_secs_f64(1.0 / r));
        let count = self.clients.len();
        let mut senders = JoinSet::new();
        for (i, (client, outbox)) in self.clients.iter().zip(self.outboxes).enumerate() {
            let (link, conversation) = (client.link.clone(), client.conversation);
            let (sent_at, sent, sent_bytes, errors) = (
                Arc::clone(&sent_at),
                Arc::clone(&sent),
                Arc::clone(&sent_bytes),
                Arc::clone(&errors),
            );
            senders.spawn(async move {
                // At a set rate the clients' sends are spread over the interval, not
                // bunched at its start.
                #[allow(clippy::cast_possible_truncation)]
                let mut next =
                    start + interval.map_or(Duration::ZERO, |t| t.mul_f64(i as f64 / count as f64));
                for (id, envelope) in outbox {
                    if let Some(t) = interval {
                        tokio::time::sleep_until(next.into()).await;
                        next += t;
                    }
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
        wait_until(Duration::from_secs(30), || {
            delivered.load(Ordering::Relaxed) >= out
        })
        .await;
        let receiving = start.elapsed();
        readers.abort_all();
        let h = histogram
            .lock()
            .map_err(|_| anyhow::anyhow!("histogram lock poisoned"))?;
        Ok(Partial {
            latency: pairs(&h),
            sent: out,
            sent_bytes: sent_bytes.load(Ordering::Relaxed),
            delivered: delivered.load(Ordering::Relaxed),
            delivered_bytes: delivered_bytes.load(Ordering::Relaxed),
            errors: errors.load(Ordering::Relaxed),
            sending_s: sending.as_secs_f64(),
            receiving_s: receiving.as_secs_f64(),
            seal_ms: self.seal_ms,
            open_ms: self.open_ms,
            placement,
        })
    }
}

/// A fresh random message id.
pub(crate) fn random_id() -> anyhow::Result<ClientMsgId> {
    let mut id = [0u8; 16];
    getrandom::fill(&mut id).map_err(|e| anyhow::anyhow!("no randomness: {e}"))?;
    Ok(ClientMsgId(id))
}

/// A fresh id and the header of a text message from `client` to its group.
fn text_header(client: &Client) -> anyhow::Result<(ClientMsgId, Header)> {
    let id = random_id()?;
    Ok((id, header(&client.name, client.conversation, id)))
}

pub(crate) fn header(sender: &str, conversation: ConversationId, id: ClientMsgId) -> Header {
    Header {
        conversation,
        epoch: Epoch(1),
        sender: sender.to_owned(),
        client_msg_id: id,
        sent_at: Timestamp::now(),
        kind: Kind::Text,
    }
}

/// Connects and signs up one client (through the balancer, or by a client-side strategy).
async fn connect_one(
    spec: &ClientSpec,
    strategy: Strategy,
    name: &str,
    public_key: Bytes,
) -> anyhow::Result<(String, Link, Pushes)> {
    let mut dialer = match strategy {
        Strategy::Balancer(_) => {
            Dialer::new(spec.servers.clone(), VIA_BALANCER, LinkConfig::new(""))
                .with_balancer(spec.balancer.clone())
        }
        // Each simulated client starts its round robin at a random server, as daemons do.
        Strategy::Client(s) => {
            Dialer::new(spec.servers.clone(), s, LinkConfig::new("")).with_random_start()
        }
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    let (server, link, pushes) = dialer.connect(None, deadline).await?;
    link.request(Signup {
        username: name.to_owned(),
        password: "bench password".into(),
        public_key,
    })
    .await
    .with_context(|| format!("signing up {name}"))?;
    Ok((server, link, pushes))
}

async fn connect_clients(spec: &ClientSpec, identity: &Identity) -> anyhow::Result<Vec<Client>> {
    let strategy = dial_strategy(&spec.strategy)?;
    let public_key = Bytes::copy_from_slice(identity.public().der());
    let permits = Arc::new(Semaphore::new(SIGNUPS_AT_ONCE));
    let mut joins = JoinSet::new();
    for i in 0..spec.clients {
        let (spec, public_key, permits) = (spec.clone(), public_key.clone(), Arc::clone(&permits));
        let name = format!("{}u{i}", spec.tag);
        joins.spawn(async move {
            let _permit = permits.acquire_owned().await?;
            let (server, link, pushes) = connect_one(&spec, strategy, &name, public_key).await?;
            anyhow::Ok((i, name, server, link, pushes))
        });
    }
    let mut clients: Vec<Option<Client>> = (0..spec.clients).map(|_| None).collect();
    while let Some(joined) = joins.join_next().await {
        let (i, name, server, link, pushes) = joined.context("a client task")??;
        clients[i] = Some(Client {
            name,
            server,
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
                name: format!("{}g{i}", spec.tag),
                members: vec![names[(i + 1) % names.len()].clone()],
                material: EpochMaterial::default(),
            })
            .await?;
        client.conversation = info.id;
    }
    // A complete sync makes each connection live (pushes start).
    for client in &clients {
        go_live(&client.link).await?;
    }
    Ok(clients)
}

/// Syncs until nothing more is held, which makes the connection live (pushes start).
pub(crate) async fn go_live(link: &Link) -> anyhow::Result<()> {
    loop {
        let batch = link
            .request(SyncMessages {
                cursors: Vec::new(),
                limit: 1000,
            })
            .await?;
        if !batch.more {
            return Ok(());
        }
    }
}

/// Average cost of verifying and opening one message, over a small sample.
fn open_cost(
    identity: &Identity,
    key: &ConversationKey,
    clients: &mut [Client],
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partials_merge_counts_histograms_and_the_longest_duration() {
        let mut a = new_histogram();
        a.record_n(1_000, 9).expect("in range");
        let mut b = new_histogram();
        b.record_n(50_000, 1).expect("in range");
        let mut total = Partial::default();
        let first = Partial {
            latency: pairs(&a),
            sent: 9,
            delivered: 9,
            sending_s: 1.0,
            receiving_s: 1.5,
            seal_ms: 2.0,
            ..Partial::default()
        };
        let second = Partial {
            latency: pairs(&b),
            sent: 1,
            delivered: 1,
            errors: 2,
            sending_s: 2.0,
            receiving_s: 2.5,
            seal_ms: 4.0,
            ..Partial::default()
        };
        let first = Partial {
            placement: BTreeMap::from([("a".to_owned(), 2), ("b".to_owned(), 1)]),
            ..first
        };
        let second = Partial {
            placement: BTreeMap::from([("b".to_owned(), 3)]),
            ..second
        };
        total.merge(&first, 1.0, 2.0);
        total.merge(&second, 1.0, 2.0);
        assert_eq!(
            total.placement,
            BTreeMap::from([("a".to_owned(), 2), ("b".to_owned(), 4)])
        );
        let h = total.histogram();
        assert_eq!(h.len(), 10);
        assert!(
            h.value_at_quantile(0.5) < 1_010,
            "median from the 9 fast ones"
        );
        assert!(h.max() >= 49_000, "the slow one survives the merge");
        assert_eq!((total.sent, total.delivered, total.errors), (10, 10, 2));
        assert!((total.sending_s - 2.0).abs() < 1e-9);
        assert!((total.receiving_s - 2.5).abs() < 1e-9);
        assert!((total.seal_ms - 3.0).abs() < 1e-9, "{}", total.seal_ms);
        let json = serde_json::to_string(&total).expect("serialises");
        let back: Partial = serde_json::from_str(&json).expect("parses");
        assert_eq!(back.histogram().len(), 10);
    }
}
