//! Accounts and sessions: signup, login, resume, logout.
//!
//! Passwords are hashed with argon2id (PHC strings) on blocking threads, at most
//! `hash_concurrency` at once, so a login storm cannot starve the runtime. A login for an
//! unknown user verifies against a dummy hash, so it costs the same as a wrong password and
//! does not reveal which usernames exist. Failed logins are throttled per address and per
//! user. Session tokens are 32 random bytes; only their SHA-256 is stored.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use fastchat_proto::{
    ErrorBody, ErrorCode, MAX_PUBLIC_KEY_LEN, Session, SessionToken, Timestamp, validate,
};
use sha2::{Digest, Sha256};
use tokio::sync::Semaphore;

use crate::config::Config;
use crate::store::{Store, StoreError, User};

#[derive(Debug)]
pub struct Accounts {
    store: Arc<dyn Store>,
    hashing: Semaphore,
    /// Verified against when the user does not exist, to take the same time.
    dummy_hash: String,
    throttle: Mutex<Throttle>,
    session_ttl: Duration,
}

impl Accounts {
    /// # Errors
    /// If the dummy hash cannot be computed (argon2 refused its parameters).
    pub fn new(store: Arc<dyn Store>, config: &Config) -> anyhow::Result<Accounts> {
        let dummy_hash = Argon2::default()
            .hash_password(b"fastchat-dummy-password")
            .map_err(|e| anyhow::anyhow!("argon2: {e}"))?
            .to_string();
        Ok(Accounts {
            store,
            hashing: Semaphore::new(config.hash_concurrency.max(1)),
            dummy_hash,
            throttle: Mutex::new(Throttle::new(config.login_limits)),
            session_ttl: config.session_ttl,
        })
    }

    pub async fn signup(
        &self,
        username: &str,
        password: &str,
        public_key: &[u8],
    ) -> Result<(User, Session), ErrorBody> {
        validate::username(username).map_err(|m| ErrorBody::new(ErrorCode::InvalidUsername, m))?;
        validate::password(password).map_err(|m| ErrorBody::new(ErrorCode::InvalidPassword, m))?;
        if public_key.len() > MAX_PUBLIC_KEY_LEN {
            return Err(ErrorBody::new(
                ErrorCode::TooLarge,
                format!("a public key has at most {MAX_PUBLIC_KEY_LEN} bytes"),
            ));
        }
        let hash = self.hash(password.to_owned()).await?;
        let user = self
            .store
            .create_user(username, &hash, public_key, Timestamp::now())
            .await
            .map_err(|e| e.to_error_body())?;
        let session = self.open_session(&user).await?;
        Ok((user, session))
    }

    pub async fn login(
        &self,
        username: &str,
        password: &str,
        from: IpAddr,
    ) -> Result<(User, Session), ErrorBody> {
        self.throttle_check(username, from)?;
        let credentials = self
            .store
            .credentials(username)
            .await
            .map_err(|e| e.to_error_body())?;
        let (hash, user) = match credentials {
            Some(c) => (c.password_hash, Some(c.user)),
            None => (self.dummy_hash.clone(), None),
        };
        let matches = self.verify(password.to_owned(), hash).await?;
        match user {
            Some(user) if matches => {
                self.lock_throttle().forget(&Key::User(username.to_owned()));
                let session = self.open_session(&user).await?;
                Ok((user, session))
            }
            _ => {
                self.lock_throttle().record_failure(username, from);
                Err(ErrorBody::new(
                    ErrorCode::BadCredentials,
                    "wrong username or password",
                ))
            }
        }
    }

    pub async fn resume(&self, token: &SessionToken) -> Result<(User, Session), ErrorBody> {
        let user = self
            .store
            .session_user(&token_hash(token), Timestamp::now())
            .await
            .map_err(|e| e.to_error_body())?
            .ok_or_else(|| {
                ErrorBody::new(
                    ErrorCode::InvalidSession,
                    "the session expired or was logged out",
                )
            })?;
        let session = Session {
            username: user.username.clone(),
            token: token.clone(),
        };
        Ok((user, session))
    }

    pub async fn logout(&self, token: &SessionToken) -> Result<(), StoreError> {
        self.store.delete_session(&token_hash(token)).await
    }

    async fn open_session(&self, user: &User) -> Result<Session, ErrorBody> {
        let token = SessionToken(rand::random());
        let now = Timestamp::now();
        let ttl = i64::try_from(self.session_ttl.as_millis()).unwrap_or(i64::MAX);
        self.store
            .create_session(
                user.id,
                &token_hash(&token),
                now,
                Timestamp(now.0.saturating_add(ttl)),
            )
            .await
            .map_err(|e| e.to_error_body())?;
        Ok(Session {
            username: user.username.clone(),
            token,
        })
    }

    fn throttle_check(&self, username: &str, from: IpAddr) -> Result<(), ErrorBody> {
        match self.lock_throttle().blocked(username, from) {
            Some(wait) => Err(ErrorBody::new(
                ErrorCode::TooManyAttempts,
                format!(
                    "too many failed logins; try again in {} s",
                    wait.as_secs().max(1)
                ),
            )),
            None => Ok(()),
        }
    }

    fn lock_throttle(&self) -> std::sync::MutexGuard<'_, Throttle> {
        // The throttle holds counters only; a panic mid-update leaves them usable.
        self.throttle
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    async fn hash(&self, password: String) -> Result<String, ErrorBody> {
        let _permit = self.hashing.acquire().await.map_err(|_| shutting_down())?;
        tokio::task::spawn_blocking(move || {
            Argon2::default()
                .hash_password(password.as_bytes())
                .map(|h| h.to_string())
        })
        .await
        .map_err(|_| internal("hashing task failed"))?
        .map_err(|e| internal(&format!("argon2: {e}")))
    }

    async fn verify(&self, password: String, hash: String) -> Result<bool, ErrorBody> {
        let _permit = self.hashing.acquire().await.map_err(|_| shutting_down())?;
        tokio::task::spawn_blocking(move || {
            let parsed = PasswordHash::new(&hash).map_err(|e| e.to_string())?;
            Ok::<_, String>(
                Argon2::default()
                    .verify_password(password.as_bytes(), &parsed)
                    .is_ok(),
            )
        })
        .await
        .map_err(|_| internal("hashing task failed"))?
        .map_err(|e| internal(&format!("stored hash unreadable: {e}")))
    }
}

fn internal(what: &str) -> ErrorBody {
    tracing::error!("{what}");
    ErrorBody::new(ErrorCode::Internal, "internal error")
}

fn shutting_down() -> ErrorBody {
    ErrorBody::new(ErrorCode::ShuttingDown, "the server is shutting down")
}

fn token_hash(token: &SessionToken) -> [u8; 32] {
    Sha256::digest(token.0).into()
}

/// How many failed logins are allowed per window before further attempts are refused.
#[derive(Debug, Clone, Copy)]
pub struct LoginLimits {
    pub per_user: u32,
    pub per_address: u32,
    pub window: Duration,
}

impl Default for LoginLimits {
    fn default() -> Self {
        LoginLimits {
            per_user: 10,
            per_address: 50,
            window: Duration::from_secs(15 * 60),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    User(String),
    Address(IpAddr),
}

/// Fixed-window failure counters. Entries expire with their window, and the map is swept
/// when it grows, so a flood of random usernames cannot grow it without bound.
#[derive(Debug)]
struct Throttle {
    limits: LoginLimits,
    failures: HashMap<Key, (u32, Instant)>,
}

impl Throttle {
    const SWEEP_AT: usize = 100_000;

    fn new(limits: LoginLimits) -> Self {
        Throttle {
            limits,
            failures: HashMap::new(),
        }
    }

    fn blocked(&mut self, username: &str, from: IpAddr) -> Option<Duration> {
        let now = Instant::now();
        let window = self.limits.window;
        [
            (Key::User(username.to_owned()), self.limits.per_user),
            (Key::Address(from), self.limits.per_address),
        ]
        .into_iter()
        .filter_map(|(key, limit)| {
            let (count, since) = *self.failures.get(&key)?;
            let elapsed = now.duration_since(since);
            (elapsed < window && count >= limit).then(|| window - elapsed)
        })
        .max()
    }

    fn record_failure(&mut self, username: &str, from: IpAddr) {
        let now = Instant::now();
        if self.failures.len() >= Self::SWEEP_AT {
            let window = self.limits.window;
            self.failures
                .retain(|_, (_, since)| now.duration_since(*since) < window);
        }
        for key in [Key::User(username.to_owned()), Key::Address(from)] {
            let entry = self.failures.entry(key).or_insert((0, now));
            if now.duration_since(entry.1) >= self.limits.window {
                *entry = (0, now);
            }
            entry.0 += 1;
        }
    }

    fn forget(&mut self, key: &Key) {
        self.failures.remove(key);
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;

    #[test]
    fn throttle_blocks_after_the_limit_per_user_and_per_address() {
        let limits = LoginLimits {
            per_user: 3,
            per_address: 5,
            window: Duration::from_secs(60),
        };
        let mut t = Throttle::new(limits);
        let a = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));
        let b = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2));
        for _ in 0..3 {
            assert!(t.blocked("alice", a).is_none());
            t.record_failure("alice", a);
        }
        assert!(t.blocked("alice", a).is_some());
        assert!(
            t.blocked("alice", b).is_some(),
            "per user, from any address"
        );
        assert!(t.blocked("bob", b).is_none());
        t.record_failure("carol", a);
        t.record_failure("dave", a);
        assert!(t.blocked("erin", a).is_some(), "per address, for any user");
        t.forget(&Key::User("alice".into()));
        assert!(t.blocked("alice", b).is_none());
    }

    #[test]
    fn throttle_windows_expire() {
        let limits = LoginLimits {
            per_user: 1,
            per_address: 10,
            window: Duration::ZERO,
        };
        let mut t = Throttle::new(limits);
        let a = IpAddr::V4(Ipv4Addr::LOCALHOST);
        t.record_failure("alice", a);
        assert!(t.blocked("alice", a).is_none());
    }
}
