//! What the server tests share: starting a server, signing up clients, and waiting for
//! pushes with a deadline (never a sleep).

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;
use fastchat_link::{Link, LinkConfig, LinkError, Pushes};
use fastchat_proto::{
    ClientMsgId, ConversationId, ConversationInfo, CreateGroup, Cursor, EpochMaterial, Login, Push,
    SendMessage, Sent, Session, Signup, StoredMessage, SyncMessages,
};
use fastchat_server::Config;
use fastchat_server::testing::{TestDatabase, TestServer};
use tempfile::TempDir;

pub const DEADLINE: Duration = Duration::from_secs(20);

/// The database behind a test's server; set per test by `on_both_backends!`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

tokio::task_local! {
    pub static BACKEND: Backend;
}

/// Runs each named test (an `async fn()` in the calling module) twice: on SQLite, and on a
/// fresh PostgreSQL database (skipped with a note when none answers, unless CI requires it).
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod on_sqlite {
            $(
                #[tokio::test]
                async fn $name() {
                    crate::support::BACKEND.scope(crate::support::Backend::Sqlite, super::$name()).await;
                }
            )*
        }
        mod on_postgres {
            $(
                #[tokio::test]
                async fn $name() {
                    if fastchat_server::testing::postgres_available().await {
                        crate::support::BACKEND.scope(crate::support::Backend::Postgres, super::$name()).await;
                    }
                }
            )*
        }
    };
}

/// A server and its database (a temporary folder, or a temporary PostgreSQL database; both
/// removed when the fixture drops).
pub struct Fixture {
    pub server: TestServer,
    _dir: TempDir,
    _db: Option<TestDatabase>,
}

impl Fixture {
    pub async fn start() -> Fixture {
        Self::with_config(Config::default()).await
    }

    pub async fn with_config(config: Config) -> Fixture {
        let dir = tempfile::tempdir().expect("temp dir");
        match BACKEND.try_with(|b| *b).unwrap_or(Backend::Sqlite) {
            Backend::Sqlite => {
                let server = TestServer::start(&dir.path().join("server.db"), config)
                    .await
                    .expect("server starts");
                Fixture {
                    server,
                    _dir: dir,
                    _db: None,
                }
            }
            Backend::Postgres => {
                let db = TestDatabase::create()
                    .await
                    .expect("PostgreSQL was available");
                let server = TestServer::start_postgres(&db.url, config)
                    .await
                    .expect("server starts");
                Fixture {
                    server,
                    _dir: dir,
                    _db: Some(db),
                }
            }
        }
    }

    pub fn addr(&self) -> String {
        self.server.addr.to_string()
    }

    pub async fn signup(&self, name: &str) -> Client {
        Client::signup(&self.addr(), name).await
    }
}

pub fn password(name: &str) -> String {
    format!("{name}-correct-horse")
}

pub fn names(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

/// A logged-in connection and everything it has been pushed.
pub struct Client {
    pub name: String,
    pub link: Link,
    pub pushes: Pushes,
    pub session: Session,
    /// Messages received (sync and push), per conversation, in arrival order.
    pub received: BTreeMap<ConversationId, Vec<StoredMessage>>,
    pub conversations: Vec<ConversationInfo>,
}

pub async fn connect(addr: &str) -> (Link, Pushes) {
    Link::connect(&LinkConfig::new(addr))
        .await
        .expect("connects")
}

impl Client {
    pub async fn signup(addr: &str, name: &str) -> Client {
        let (link, pushes) = connect(addr).await;
        let session = link
            .request(Signup {
                username: name.into(),
                password: password(name),
                public_key: Bytes::from(format!("public key of {name}")),
            })
            .await
            .expect("signup succeeds");
        Client::new(name, link, pushes, session)
    }

    pub async fn login(addr: &str, name: &str) -> Client {
        let (link, pushes) = connect(addr).await;
        let session = link
            .request(Login {
                username: name.into(),
                password: password(name),
            })
            .await
            .expect("login succeeds");
        Client::new(name, link, pushes, session)
    }

    fn new(name: &str, link: Link, pushes: Pushes, session: Session) -> Client {
        Client {
            name: name.into(),
            link,
            pushes,
            session,
            received: BTreeMap::new(),
            conversations: Vec::new(),
        }
    }

    pub async fn create_group(&self, name: &str, members: &[&str]) -> ConversationInfo {
        self.link
            .request(CreateGroup {
                name: name.into(),
                members: names(members),
                material: EpochMaterial::default(),
            })
            .await
            .expect("group created")
    }

    pub async fn send(
        &self,
        conversation: ConversationId,
        id: u64,
        text: &str,
    ) -> Result<Sent, LinkError> {
        self.link
            .request(SendMessage {
                conversation,
                client_msg_id: msg_id(&self.name, id),
                envelope: Bytes::from(text.to_owned()),
            })
            .await
    }

    /// The highest sequence number received per conversation.
    pub fn cursors(&self) -> Vec<Cursor> {
        self.received
            .iter()
            .filter_map(|(c, m)| {
                m.last().map(|m| Cursor {
                    conversation: *c,
                    seq: m.seq,
                })
            })
            .collect()
    }

    /// Syncs from the current cursors until the server has nothing more; pushes start then.
    pub async fn sync(&mut self) -> usize {
        let mut total = 0;
        loop {
            let batch = self
                .link
                .request(SyncMessages {
                    cursors: self.cursors(),
                    limit: 200,
                })
                .await
                .expect("sync");
            total += batch.messages.len();
            self.record(batch.messages);
            if !batch.more {
                return total;
            }
        }
    }

    fn record(&mut self, messages: Vec<StoredMessage>) {
        for m in messages {
            self.received.entry(m.conversation).or_default().push(m);
        }
    }

    /// Takes pushes until `done(self)` holds, failing the test at the deadline.
    pub async fn until(&mut self, what: &str, done: impl Fn(&Client) -> bool) {
        let deadline = tokio::time::Instant::now() + DEADLINE;
        while !done(self) {
            match tokio::time::timeout_at(deadline, self.pushes.recv()).await {
                Ok(Some(Push::Messages(messages))) => self.record(messages),
                Ok(Some(Push::Conversation(info))) => self.conversations.push(info),
                Ok(None) => panic!("{}: connection closed while waiting for {what}", self.name),
                Err(_) => panic!("{}: timed out waiting for {what}", self.name),
            }
        }
    }

    /// Waits until `count` messages have arrived in `conversation`.
    pub async fn until_count(&mut self, conversation: ConversationId, count: usize) {
        let what = format!("{count} messages in conversation {}", conversation.0);
        self.until(&what, |c| c.count(conversation) >= count).await;
    }

    pub fn count(&self, conversation: ConversationId) -> usize {
        self.received.get(&conversation).map_or(0, Vec::len)
    }

    pub fn texts(&self, conversation: ConversationId) -> Vec<String> {
        self.received
            .get(&conversation)
            .into_iter()
            .flatten()
            .map(|m| String::from_utf8_lossy(&m.envelope).into_owned())
            .collect()
    }

    /// Asserts the conversation's messages are exactly seqs `from..=to`, once each, in order.
    pub fn assert_gap_free(&self, conversation: ConversationId, from: i64, to: i64) {
        let seqs: Vec<i64> = self
            .received
            .get(&conversation)
            .into_iter()
            .flatten()
            .map(|m| m.seq.0)
            .collect();
        let expected: Vec<i64> = (from..=to).collect();
        assert_eq!(seqs, expected, "{} received a wrong sequence", self.name);
    }
}

pub fn msg_id(sender: &str, n: u64) -> ClientMsgId {
    let mut id = [0u8; 16];
    let tag = sender.as_bytes();
    let len = tag.len().min(8);
    id[..len].copy_from_slice(&tag[..len]);
    id[8..].copy_from_slice(&n.to_be_bytes());
    ClientMsgId(id)
}
