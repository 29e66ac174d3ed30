//! The uneven-load scenario's background: clients connected straight to one server (past
//! the balancer), sending to each other at a steady rate, so that this server is busier
//! than the others while the measured clients connect and send.

use std::time::Duration;

use anyhow::Context;
use bytes::Bytes;
use fastchat_crypto::{ConversationKey, Identity, envelope};
use fastchat_link::{Link, LinkConfig};
use fastchat_proto::{CreateGroup, EpochMaterial, SendMessage, Signup};
use tokio::task::JoinSet;

use crate::clients::{go_live, header, random_id};

/// Messages per second each busy client sends.
pub const NOISE_RATE: f64 = 50.0;

/// The busy clients; [`Noise::stop`] ends them.
#[derive(Debug)]
pub struct Noise {
    tasks: JoinSet<()>,
    links: Vec<Link>,
}

impl Noise {
    /// Signs up `n` clients on the server at `addr`, pairs them in groups and starts them
    /// sending `size`-byte messages at [`NOISE_RATE`] each.
    ///
    /// # Errors
    /// If a client cannot connect, sign up or create its group.
    pub async fn start(
        addr: &str,
        n: usize,
        size: usize,
        identity: &Identity,
        tag: &str,
    ) -> anyhow::Result<Noise> {
        let n = n.max(2);
        let public_key = Bytes::copy_from_slice(identity.public().der());
        let mut links = Vec::new();
        let mut tasks = JoinSet::new();
        for i in 0..n {
            let (link, mut pushes) = Link::connect(&LinkConfig::new(addr))
                .await
                .with_context(|| format!("a busy client cannot connect to {addr}"))?;
            link.request(Signup {
                username: format!("{tag}{i}"),
                password: "bench password".into(),
                public_key: public_key.clone(),
            })
            .await?;
            // What arrives is read and dropped, so the server never waits on these clients.
            tasks.spawn(async move { while pushes.recv().await.is_some() {} });
            links.push(link);
        }
        let key = ConversationKey::generate();
        for (i, link) in links.iter().enumerate() {
            let info = link
                .request(CreateGroup {
                    name: format!("{tag}g{i}"),
                    members: vec![format!("{tag}{}", (i + 1) % n)],
                    material: EpochMaterial::default(),
                })
                .await?;
            go_live(link).await?;
            // One sealed envelope, sent again and again under fresh ids: the server only
            // sees ciphertext, so the work it does is the same.
            let id = random_id()?;
            let sealed = Bytes::from(envelope::seal(
                identity,
                &key,
                header(&format!("{tag}{i}"), info.id, id),
                "x".repeat(size).as_bytes(),
            )?);
            let link = link.clone();
            tasks.spawn(async move {
                let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / NOISE_RATE));
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    tick.tick().await;
                    let Ok(client_msg_id) = random_id() else {
                        return;
                    };
                    let sent = link
                        .request(SendMessage {
                            conversation: info.id,
                            client_msg_id,
                            envelope: sealed.clone(),
                        })
                        .await;
                    if sent.is_err() && link.is_closed() {
                        return;
                    }
                }
            });
        }
        Ok(Noise { tasks, links })
    }

    /// Stops the busy clients and closes their connections.
    pub async fn stop(mut self) {
        self.tasks.abort_all();
        while self.tasks.join_next().await.is_some() {}
        for link in self.links {
            link.close();
        }
    }
}
