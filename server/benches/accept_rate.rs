//! Messages accepted per second through one server on SQLite, for 1 and 50 concurrent
//! senders, each waiting for its ack before the next send (as a chat client does), and with
//! a window of pipelined sends per sender.
//!
//! `cargo bench -p fastchat-server --bench accept_rate [-- SECONDS]`
//!
//! The server runs in this process on a fresh database in a temporary folder, so clients and
//! server share the machine's cores; the figures are a floor for a dedicated server.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use fastchat_link::{Link, LinkConfig};
use fastchat_proto::{ClientMsgId, CreateGroup, EpochMaterial, SendMessage, Signup};
use fastchat_server::Config;
use fastchat_server::testing::TestServer;

const PAYLOAD: usize = 1024;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let seconds: u64 = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(5);
    println!("1 KiB envelopes, {seconds} s each, SQLite synchronous=FULL");
    println!("senders  window  conversations        accepted msg/s");
    for (senders, window, shared) in [
        (1, 1, true),
        (50, 1, true),
        (50, 1, false),
        (1, 32, true),
        (50, 8, true),
        (50, 8, false),
    ] {
        let rate = run(senders, window, shared, Duration::from_secs(seconds)).await?;
        let layout = if shared {
            "one group of all"
        } else {
            "one group each"
        };
        println!("{senders:>7}  {window:>6}  {layout:<18}  {rate:>14.0}");
    }
    Ok(())
}

async fn run(
    senders: usize,
    window: usize,
    shared: bool,
    duration: Duration,
) -> anyhow::Result<f64> {
    let dir = tempfile::tempdir()?;
    let server = TestServer::start(&dir.path().join("bench.db"), Config::default()).await?;
    let addr = server.addr.to_string();
    let mut links = Vec::new();
    for i in 0..senders {
        // Pushes are not wanted here: dropping the receiver discards them.
        let (link, _pushes) = Link::connect(&LinkConfig::new(&addr)).await?;
        link.request(Signup {
            username: format!("sender{i}"),
            password: "benchmark-password".into(),
            public_key: Bytes::from_static(b"k"),
        })
        .await?;
        links.push(link);
    }
    // Either every sender in one group (each message fans out to all of them) or each
    // sender alone in its own group (acceptance without fan-out).
    let mut groups = Vec::new();
    for (i, link) in links.iter().enumerate() {
        if shared && i > 0 {
            groups.push(groups[0]);
            continue;
        }
        let members = if shared {
            (1..senders).map(|i| format!("sender{i}")).collect()
        } else {
            vec![]
        };
        let name = format!("bench{i}");
        let material = EpochMaterial::default();
        groups.push(
            link.request(CreateGroup {
                name,
                members,
                material,
            })
            .await?
            .id,
        );
    }

    let accepted = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let envelope = Bytes::from(vec![0x5A; PAYLOAD]);
    let mut tasks = Vec::new();
    for (i, link) in links.iter().enumerate() {
        for lane in 0..window {
            let link = link.clone();
            let accepted = Arc::clone(&accepted);
            let stop = Arc::clone(&stop);
            let envelope = envelope.clone();
            let conversation = groups[i];
            tasks.push(tokio::spawn(async move {
                let mut n: u64 = 0;
                while !stop.load(Ordering::Relaxed) {
                    let mut id = [0u8; 16];
                    id[..4].copy_from_slice(&u32::try_from(i).unwrap_or(0).to_be_bytes());
                    id[4..8].copy_from_slice(&u32::try_from(lane).unwrap_or(0).to_be_bytes());
                    id[8..].copy_from_slice(&n.to_be_bytes());
                    n += 1;
                    let send = SendMessage {
                        conversation,
                        client_msg_id: ClientMsgId(id),
                        envelope: envelope.clone(),
                    };
                    if link.request(send).await.is_ok() {
                        accepted.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }));
        }
    }
    // Warm up, then count over the measured interval only.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let start_count = accepted.load(Ordering::Relaxed);
    let start = Instant::now();
    tokio::time::sleep(duration).await;
    let count = accepted.load(Ordering::Relaxed) - start_count;
    let elapsed = start.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        t.await?;
    }
    drop(links);
    server.stop().await?;
    #[allow(clippy::cast_precision_loss)]
    Ok(count as f64 / elapsed)
}
