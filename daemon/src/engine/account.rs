//! Signup, login, logout, and what `status` and `servers` report.

use super::*;

impl Engine {
    pub(super) async fn start_session(
        &self,
        username: &str,
        token: SessionToken,
        identity: Identity,
    ) -> ApiResult<Account> {
        self.0.store.set_account(username, &token).await?;
        let fingerprint = identity.public().fingerprint().to_string();
        self.0
            .store
            .save_pin(
                username,
                identity.public().der(),
                &identity.public().fingerprint().0,
                true,
            )
            .await?;
        {
            let mut s = self.0.session.lock().await;
            if s.username.as_deref() != Some(username) {
                s.keys.clear();
                s.chains.clear();
            }
            s.username = Some(username.to_owned());
            s.token = Some(token);
            s.identity = Some(Arc::new(identity));
        }
        // Move the session's connection onto the new token.
        self.0.restart.notify_one();
        Ok(Account {
            username: username.to_owned(),
            fingerprint,
        })
    }

    pub async fn signup(&self, username: String, password: String) -> ApiResult<Account> {
        proto::validate::username(&username).map_err(ApiError::invalid)?;
        let bits = self.0.config.key_bits;
        let identity = tokio::task::spawn_blocking(move || Identity::generate(bits))
            .await
            .map_err(ApiError::internal)??;
        let link = self.fresh_link().await?;
        let session = link
            .request(proto::Signup {
                username: username.clone(),
                password: password.clone(),
                public_key: Bytes::copy_from_slice(identity.public().der()),
            })
            .await?;
        let identity =
            keyfile::save(&self.0.config.data_dir, &username, identity, password).await?;
        self.start_session(&username, session.token, identity).await
    }

    pub async fn login(&self, username: String, password: String) -> ApiResult<Account> {
        let link = self.fresh_link().await?;
        let session = link
            .request(proto::Login {
                username: username.clone(),
                password: password.clone(),
            })
            .await?;
        let dir = &self.0.config.data_dir;
        let identity = match keyfile::load(dir, &username, password.clone()).await? {
            Some(identity) => {
                // The server's copy of the public key must still be ours.
                let published = link
                    .request(proto::FetchKey {
                        username: username.clone(),
                    })
                    .await?;
                if published.public_key.as_ref() != identity.public().der() {
                    link.request(proto::PublishKey {
                        public_key: Bytes::copy_from_slice(identity.public().der()),
                    })
                    .await?;
                }
                identity
            }
            None => {
                // First login on this machine: a new identity, published; the others see a
                // key change for this user and must verify it.
                tracing::info!(%username, "no identity key for this user here; generating one");
                let bits = self.0.config.key_bits;
                let identity = tokio::task::spawn_blocking(move || Identity::generate(bits))
                    .await
                    .map_err(ApiError::internal)??;
                link.request(proto::PublishKey {
                    public_key: Bytes::copy_from_slice(identity.public().der()),
                })
                .await?;
                keyfile::save(dir, &username, identity, password).await?
            }
        };
        self.start_session(&username, session.token, identity).await
    }

    pub async fn logout(&self) -> ApiResult<()> {
        let connection = self.0.connection.borrow().clone();
        if let Some(c) = connection
            && c.authenticated
        {
            // Best effort: the token is forgotten here either way.
            let link = c.link.clone();
            tokio::spawn(async move {
                let _ = link.request(proto::Logout {}).await;
            });
        }
        {
            let mut s = self.0.session.lock().await;
            s.token = None;
            s.identity = None;
            s.keys.clear();
            s.chains.clear();
        }
        self.0.store.forget_token().await?;
        self.0.restart.notify_one();
        Ok(())
    }

    pub async fn status(&self) -> ApiResult<Status> {
        let (username, token, locked) = {
            let s = self.0.session.lock().await;
            (s.username.clone(), s.token.is_some(), s.identity.is_none())
        };
        let username = username.filter(|_| token);
        let connection = self.0.connection.borrow().clone();
        let mut unread = 0;
        for c in self.0.store.conversations().await? {
            if c.current {
                unread += c.unread();
            }
        }
        let fingerprint = match &username {
            Some(u) => self
                .0
                .store
                .pin(u)
                .await?
                .map(|(der, _)| Fingerprint::of(&der).to_string()),
            None => None,
        };
        Ok(Status {
            profile: self.0.config.profile.clone(),
            connected: connection
                .as_ref()
                .is_some_and(|c| c.authenticated || username.is_none()),
            server: connection.map(|c| ServerRef {
                id: c.server_id,
                addr: c.addr,
            }),
            strategy: self.0.config.strategy.name().to_owned(),
            fingerprint,
            unread,
            pending: self.0.store.outbox_len().await?,
            rejected: self.0.store.rejected_count().await?,
            locked: username.is_some() && locked,
            username,
        })
    }

    pub async fn servers(&self) -> ApiResult<Vec<ServerEntry>> {
        let current = self.0.connection.borrow().clone().map(|c| c.addr);
        if let Some(balancer) = &self.0.config.balancer {
            let statuses = crate::balancer::servers(balancer).await.map_err(|e| {
                ApiError::unavailable(format!("the balancer at {balancer} did not answer: {e}"))
            })?;
            return Ok(statuses
                .into_iter()
                .map(|s| ServerEntry {
                    current: current.as_deref() == Some(s.addr.as_str()),
                    id: s.id,
                    addr: s.addr,
                    healthy: s.healthy,
                    cpu: Some(s.cpu),
                    connections: Some(s.connections),
                })
                .collect());
        }
        let connection = self.0.connection.borrow().clone();
        Ok(self
            .0
            .config
            .servers
            .iter()
            .map(|addr| {
                let here = connection.as_ref().filter(|c| &c.addr == addr);
                ServerEntry {
                    id: here.map_or_else(|| addr.clone(), |c| c.server_id.clone()),
                    addr: addr.clone(),
                    // Without a balancer only the server in use is known to be up.
                    healthy: here.is_some(),
                    cpu: None,
                    connections: None,
                    current: here.is_some(),
                }
            })
            .collect())
    }
}
