//! Keys: pinned identities (trust on first use), epoch keys accepted only with an admin's
//! signed membership statement, and the material a membership change sends.

use super::*;

impl Engine {
    /// The pinned key of `username`, pinning what the server presents on first sight.
    pub(super) async fn known_key(
        &self,
        link: &Link,
        username: &str,
    ) -> Result<ApiResult<PublicIdentity>, LinkError> {
        if let Some((der, _)) = self.0.store.pin(username).await.map_err(local)? {
            return Ok(PublicIdentity::from_der(&der).map_err(ApiError::from));
        }
        let presented = match link
            .request(proto::FetchKey {
                username: username.to_owned(),
            })
            .await
        {
            Ok(k) => k,
            Err(e) if e.is_transient() => return Err(e),
            Err(e) => return Ok(Err(e.into())),
        };
        let key = match PublicIdentity::from_der(&presented.public_key) {
            Ok(k) => k,
            Err(e) => return Ok(Err(e.into())),
        };
        self.0
            .store
            .save_pin(username, key.der(), &key.fingerprint().0, false)
            .await
            .map_err(local)?;
        tracing::info!(%username, fingerprint = %key.fingerprint(), "pinned a new key (trust on first use)");
        Ok(Ok(key))
    }

    /// The key to encrypt to `username`: what the server presents now, which must be the
    /// pinned one.
    pub(super) async fn checked_key(
        &self,
        link: &Link,
        username: &str,
    ) -> ApiResult<PublicIdentity> {
        let pinned = self.0.store.pin(username).await?;
        let presented = link
            .request(proto::FetchKey {
                username: username.to_owned(),
            })
            .await?;
        let key = PublicIdentity::from_der(&presented.public_key)?;
        match pinned {
            Some((der, _)) if der != key.der() => {
                let pinned = Fingerprint::of(&der);
                Err(ApiError::new(
                    codes::KEY_CHANGED,
                    format!(
                        "{username}'s key changed (pinned {pinned}, the server now presents {}): compare the new fingerprint with {username} and run `fastchatctl keys verify {username} FINGERPRINT`",
                        key.fingerprint()
                    ),
                ))
            }
            Some(_) => Ok(key),
            None => {
                self.0
                    .store
                    .save_pin(username, key.der(), &key.fingerprint().0, false)
                    .await?;
                Ok(key)
            }
        }
    }

    /// The key of `epoch` of `conv`, fetched, verified against its signed membership
    /// statement and unwrapped if not cached. `None` if there is no verified one.
    pub(super) async fn epoch_key(
        &self,
        link: &Link,
        conv: &Conversation,
        identity: &Identity,
        epoch: u32,
    ) -> Result<Option<Arc<ConversationKey>>, LinkError> {
        if let Some(k) = self.0.session.lock().await.keys.get(&(conv.id, epoch)) {
            return Ok(Some(Arc::clone(k)));
        }
        let fetched = link
            .request(proto::FetchEpochKeys {
                conversation: conv.id,
            })
            .await;
        let mut keys = match fetched {
            Ok(k) => k.keys,
            Err(e) if e.is_transient() => return Err(e),
            Err(e) => {
                tracing::warn!(conversation = %conv.reference(), error = %e, "cannot fetch epoch keys");
                return Ok(None);
            }
        };
        keys.sort_by_key(|k| k.epoch.0);
        let me = self.me().await.unwrap_or_default();
        let mut chain = self.chain(conv.id).await.map_err(local)?;
        let mut verified = Vec::new();
        for k in keys {
            if chain.current().is_some_and(|c| c.epoch.0 >= k.epoch.0) {
                // Already accepted; only its key may be missing from the cache.
                if let Ok(key) = ConversationKey::unwrap(identity, &k.wrapped) {
                    verified.push((k.epoch.0, Arc::new(key)));
                }
                continue;
            }
            let proof: Proof = match postcard::from_bytes(&k.proof) {
                Ok(p) => p,
                Err(e) => {
                    tracing::warn!(conversation = %conv.reference(), epoch = k.epoch.0, error = %e, "epoch without a readable membership proof");
                    continue;
                }
            };
            let st = &proof.statement;
            let names_this = st.conversation == conv.id
                || (st.epoch.0 == 1 && st.conversation == membership::UNASSIGNED);
            let name_ok = match conv.kind {
                ConvKind::Group => st.name.as_deref() == Some(conv.name.as_str()),
                // Exactly the two of us, and made by one of us.
                ConvKind::Direct => {
                    st.name.is_none()
                        && st.members.len() == 2
                        && st.members.contains_key(&me)
                        && st.members.contains_key(&st.changed_by)
                }
            };
            if st.epoch != k.epoch || st.changed_by != k.wrapped_by || !names_this || !name_ok {
                tracing::warn!(conversation = %conv.reference(), epoch = k.epoch.0, "membership proof does not match its epoch");
                continue;
            }
            let signer = match self.known_key(link, &st.changed_by).await? {
                Ok(k) => k,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot check a membership proof");
                    continue;
                }
            };
            // After epochs we were not in (removed, then added again), only someone who was
            // an admin when we last saw the group may continue it.
            if let Err(e) =
                chain.accept_after_gap(proof.statement.clone(), &proof.signature, &signer)
            {
                tracing::warn!(conversation = %conv.reference(), epoch = k.epoch.0, error = %e, "refused a membership change");
                continue;
            }
            match ConversationKey::unwrap(identity, &k.wrapped) {
                Ok(key) => verified.push((k.epoch.0, Arc::new(key))),
                Err(e) => {
                    tracing::warn!(conversation = %conv.reference(), epoch = k.epoch.0, error = %e, "cannot unwrap an epoch key")
                }
            }
        }
        self.save_chain(conv.id, &chain).await.map_err(local)?;
        let mut s = self.0.session.lock().await;
        s.chains.insert(conv.id, chain);
        for (e, key) in verified {
            s.keys.insert((conv.id, e), key);
        }
        Ok(s.keys.get(&(conv.id, epoch)).cloned())
    }

    /// The membership chain accepted so far for a conversation (kept across restarts).
    pub(super) async fn chain(&self, id: ConversationId) -> Result<Chain, sqlx::Error> {
        if let Some(c) = self.0.session.lock().await.chains.get(&id) {
            return Ok(c.clone());
        }
        Ok(match self.0.store.chain(id).await? {
            Some(bytes) => postcard::from_bytes(&bytes).unwrap_or_else(|e| {
                tracing::warn!(conversation = id.0, error = %e, "unreadable membership chain; starting over");
                Chain::default()
            }),
            None => Chain::default(),
        })
    }

    pub(super) async fn save_chain(
        &self,
        id: ConversationId,
        chain: &Chain,
    ) -> Result<(), sqlx::Error> {
        let bytes = postcard::to_allocvec(chain).map_err(|e| sqlx::Error::Encode(e.into()))?;
        self.0.store.save_chain(id, &bytes).await
    }

    /// Signs a membership statement and wraps a new key for each of its members.
    pub(super) async fn material(
        &self,
        link: &Link,
        identity: &Identity,
        statement: Statement,
    ) -> ApiResult<(EpochMaterial, ConversationKey, Statement)> {
        let key = ConversationKey::generate();
        let mut wrapped = Vec::new();
        for member in statement.members.keys() {
            let public = if member == &statement.changed_by {
                identity.public().clone()
            } else {
                self.checked_key(link, member).await?
            };
            wrapped.push(WrappedKey {
                username: member.clone(),
                wrapped: Bytes::from(key.wrap_for(&public)?),
            });
        }
        let signature = statement.sign(identity)?;
        let proof = postcard::to_allocvec(&Proof {
            statement: statement.clone(),
            signature,
        })
        .map_err(ApiError::internal)?;
        Ok((
            EpochMaterial {
                keys: wrapped,
                proof: Bytes::from(proof),
            },
            key,
            statement,
        ))
    }

    /// Caches a key and statement this daemon made itself.
    pub(super) async fn adopt(
        &self,
        identity: &Identity,
        info: &ConversationInfo,
        key: ConversationKey,
        statement: Statement,
        proof: &[u8],
    ) -> ApiResult<Conversation> {
        let me = statement.changed_by.clone();
        let conv = to_conversation(info, &me);
        self.0.store.upsert_conversation(&conv).await?;
        let mut chain = self.chain(info.id).await?;
        let signature: Proof = postcard::from_bytes(proof).map_err(ApiError::internal)?;
        chain.accept_after_gap(statement, &signature.signature, identity.public())?;
        self.save_chain(info.id, &chain).await?;
        let mut s = self.0.session.lock().await;
        s.keys.insert((info.id, info.epoch.0), Arc::new(key));
        s.chains.insert(info.id, chain);
        drop(s);
        Ok(self.0.store.conversation(info.id).await?.unwrap_or(conv))
    }

    pub async fn fingerprint(&self, username: Option<String>) -> ApiResult<FingerprintInfo> {
        let username = match username {
            Some(u) => u,
            None => self.me().await.ok_or_else(ApiError::not_logged_in)?,
        };
        if self.0.store.pin(&username).await?.is_none() {
            let link = self.connection(true).await?.link;
            self.known_key(&link, &username).await??;
        }
        let (der, verified) = self.0.store.pin(&username).await?.ok_or_else(|| {
            ApiError::new(codes::UNKNOWN_USER, format!("no key known for {username}"))
        })?;
        Ok(FingerprintInfo {
            username,
            fingerprint: Fingerprint::of(&der).to_string(),
            verified,
        })
    }

    pub async fn verify(&self, username: String, fingerprint: String) -> ApiResult<Verified> {
        let link = self.connection(true).await?.link;
        let presented = link
            .request(proto::FetchKey {
                username: username.clone(),
            })
            .await?;
        let key = PublicIdentity::from_der(&presented.public_key)?;
        if !key.fingerprint().matches(&fingerprint)? {
            return Err(ApiError::invalid(format!(
                "that is not the fingerprint of the key the server presents for {username}: nothing changed"
            )));
        }
        self.0
            .store
            .save_pin(&username, key.der(), &key.fingerprint().0, true)
            .await?;
        Ok(Verified {
            username,
            verified: true,
        })
    }
}
