//! How results reach stdout: as JSON (one object per line, exactly the RPC result) or as
//! short lines for people. The plain renderings are pure functions of the result (and the
//! time zone), so they are tested without a daemon.

use std::io::{self, Write};

use anyhow::Context;
use fastchat_api::{
    Account, FingerprintInfo, Group, MemberInfo, Message, MessageKind, ServerEntry, Status,
    Verified,
};
use jiff::Timestamp;
use jiff::tz::TimeZone;
use serde::Serialize;

/// Writes results to stdout in the chosen shape, flushing after each so that a reader on a
/// pipe (a script, a test, `watch | grep`) sees every line as soon as it is printed.
#[derive(Debug, Clone, Copy)]
pub struct Printer {
    pub json: bool,
}

impl Printer {
    /// Prints one result: its JSON, or `plain` (lines without a trailing newline; nothing is
    /// printed when it is empty).
    ///
    /// # Errors
    /// If stdout cannot be written (a closed pipe included).
    pub fn one<T: Serialize>(
        &self,
        value: &T,
        plain: impl FnOnce(&T) -> String,
    ) -> anyhow::Result<()> {
        let text = if self.json {
            serde_json::to_string(value).context("cannot encode the result as JSON")?
        } else {
            plain(value)
        };
        if text.is_empty() {
            return Ok(());
        }
        write_line(&text)
    }

    /// Prints a list: one JSON element, or one `plain` rendering, per line.
    ///
    /// # Errors
    /// If stdout cannot be written.
    pub fn many<T: Serialize>(
        &self,
        values: &[T],
        plain: impl Fn(&T) -> String,
    ) -> anyhow::Result<()> {
        values.iter().try_for_each(|v| self.one(v, &plain))
    }
}

fn write_line(text: &str) -> anyhow::Result<()> {
    let mut out = io::stdout().lock();
    writeln!(out, "{text}")
        .and_then(|()| out.flush())
        .context("cannot write to stdout")
}

/// A time as people read it in `zone`: `YYYY-MM-DD HH:MM:SS`.
#[must_use]
pub fn time(at: Timestamp, zone: &TimeZone) -> String {
    at.to_zoned(zone.clone())
        .strftime("%Y-%m-%d %H:%M:%S")
        .to_string()
}

/// What a message says: its text, or `[image] PATH` (the file name when the daemon keeps
/// no path for it).
fn body(message: &Message) -> String {
    match message.kind {
        MessageKind::Text => message.text.clone().unwrap_or_default(),
        MessageKind::Image => {
            let name = message
                .image_path
                .as_deref()
                .or(message.text.as_deref())
                .unwrap_or("");
            format!("[image] {name}")
        }
    }
}

/// A `history` line: `TIME SENDER: TEXT`.
#[must_use]
pub fn history_line(message: &Message, zone: &TimeZone) -> String {
    format!(
        "{} {}: {}",
        time(message.sent_at, zone),
        message.sender,
        body(message)
    )
}

/// A `watch` line: `TIME CONVERSATION SENDER: TEXT`, the conversation as `#group` or
/// `@user`.
#[must_use]
pub fn watch_line(message: &Message, zone: &TimeZone) -> String {
    format!(
        "{} {} {}: {}",
        time(message.sent_at, zone),
        message.conversation,
        message.sender,
        body(message)
    )
}

/// `signup` and `login`: who is logged in and their safety number.
#[must_use]
pub fn account(account: &Account) -> String {
    format!(
        "logged in as {}\nfingerprint: {}",
        account.username, account.fingerprint
    )
}

/// `status` as `key: value` lines.
#[must_use]
pub fn status(status: &Status) -> String {
    let mut lines = vec![format!("profile: {}", status.profile)];
    lines.push(format!(
        "username: {}",
        status.username.as_deref().unwrap_or("(logged out)")
    ));
    lines.push(format!("connected: {}", yes_no(status.connected)));
    lines.push(match &status.server {
        Some(server) => format!("server: {} ({})", server.id, server.addr),
        None => "server: none".to_owned(),
    });
    lines.push(format!("strategy: {}", status.strategy));
    if let Some(fingerprint) = &status.fingerprint {
        lines.push(format!("fingerprint: {fingerprint}"));
    }
    lines.push(format!("unread: {}", status.unread));
    lines.push(format!("pending: {}", status.pending));
    // Only worth a line when it happened: each one is a message someone may have forged.
    if status.rejected > 0 {
        lines.push(format!(
            "rejected: {} (failed verification; the daemon's log says why)",
            status.rejected
        ));
    }
    if status.locked {
        lines.push(format!(
            "locked: run fastchatctl login {} to unlock",
            status.username.as_deref().unwrap_or("USER")
        ));
    }
    lines.join("\n")
}

fn yes_no(yes: bool) -> &'static str {
    if yes { "yes" } else { "no" }
}

/// A `group list` line: `NAME (N members, U unread)`.
#[must_use]
pub fn group_line(group: &Group) -> String {
    format!(
        "{} ({} members, {} unread)",
        group.name,
        group.members.len(),
        group.unread
    )
}

/// `group create` and `group amend`: the group as it now is.
#[must_use]
pub fn group_changed(verb: &str, group: &Group) -> String {
    format!(
        "{verb} group {} (epoch {}): {}",
        group.name,
        group.epoch,
        group.members.join(", ")
    )
}

/// A `group members` line: `alice (admin)` or `bob`.
#[must_use]
pub fn member_line(member: &MemberInfo) -> String {
    if member.admin {
        format!("{} (admin)", member.username)
    } else {
        member.username.clone()
    }
}

/// `keys fingerprint`: `bob: 12345 ... (verified)`.
#[must_use]
pub fn fingerprint(info: &FingerprintInfo) -> String {
    format!(
        "{}: {} ({})",
        info.username,
        info.fingerprint,
        if info.verified {
            "verified"
        } else {
            "not verified"
        }
    )
}

/// `keys verify`.
#[must_use]
pub fn verified(verified: &Verified) -> String {
    if verified.verified {
        format!("verified {}", verified.username)
    } else {
        format!("{} is not verified", verified.username)
    }
}

/// A `servers` line: `* ID ADDR healthy cpu 12.5% connections 3`, the `* ` only before the
/// server in use; unknown numbers as `-`.
#[must_use]
pub fn server_line(server: &ServerEntry) -> String {
    let cpu = server
        .cpu
        .map_or_else(|| "-".to_owned(), |cpu| format!("{cpu:.1}%"));
    let connections = server
        .connections
        .map_or_else(|| "-".to_owned(), |n| n.to_string());
    format!(
        "{}{} {} {} cpu {cpu} connections {connections}",
        if server.current { "* " } else { "" },
        server.id,
        server.addr,
        if server.healthy {
            "healthy"
        } else {
            "unhealthy"
        },
    )
}

#[cfg(test)]
mod tests {
    use fastchat_api::{ConversationRef, ServerRef};

    use super::*;

    fn at() -> Timestamp {
        // 2023-11-14 22:13:20.123 UTC
        Timestamp::from_millisecond(1_700_000_000_123).expect("in range")
    }

    fn message(kind: MessageKind, text: Option<&str>, image_path: Option<&str>) -> Message {
        Message {
            id: "00".repeat(16),
            seq: 7,
            conversation: ConversationRef::Group("team".into()),
            sender: "alice".into(),
            sent_at: at(),
            kind,
            text: text.map(Into::into),
            image_path: image_path.map(Into::into),
            thumbnail_path: None,
        }
    }

    #[test]
    fn times_are_local_to_the_zone_given() {
        assert_eq!(time(at(), &TimeZone::UTC), "2023-11-14 22:13:20");
        let plus_two = TimeZone::fixed(jiff::tz::offset(2));
        assert_eq!(time(at(), &plus_two), "2023-11-15 00:13:20");
    }

    #[test]
    fn history_lines() {
        let text = message(MessageKind::Text, Some("hello world"), None);
        assert_eq!(
            history_line(&text, &TimeZone::UTC),
            "2023-11-14 22:13:20 alice: hello world"
        );
        let image = message(MessageKind::Image, Some("cat.png"), Some("/data/cat.png"));
        assert_eq!(
            history_line(&image, &TimeZone::UTC),
            "2023-11-14 22:13:20 alice: [image] /data/cat.png"
        );
        let unstored = message(MessageKind::Image, Some("cat.png"), None);
        assert_eq!(
            history_line(&unstored, &TimeZone::UTC),
            "2023-11-14 22:13:20 alice: [image] cat.png"
        );
    }

    #[test]
    fn watch_lines_name_the_conversation() {
        let mut m = message(MessageKind::Text, Some("hi"), None);
        assert_eq!(
            watch_line(&m, &TimeZone::UTC),
            "2023-11-14 22:13:20 #team alice: hi"
        );
        m.conversation = ConversationRef::User("alice".into());
        assert_eq!(
            watch_line(&m, &TimeZone::UTC),
            "2023-11-14 22:13:20 @alice alice: hi"
        );
    }

    fn a_status() -> Status {
        Status {
            profile: "default".into(),
            username: Some("alice".into()),
            connected: true,
            server: Some(ServerRef {
                id: "s1".into(),
                addr: "127.0.0.1:7001".into(),
            }),
            strategy: "balancer".into(),
            fingerprint: Some("12345 67890".into()),
            unread: 3,
            pending: 0,
            rejected: 0,
            locked: false,
        }
    }

    #[test]
    fn status_is_key_value_lines() {
        assert_eq!(
            status(&a_status()),
            "profile: default\n\
             username: alice\n\
             connected: yes\n\
             server: s1 (127.0.0.1:7001)\n\
             strategy: balancer\n\
             fingerprint: 12345 67890\n\
             unread: 3\n\
             pending: 0"
        );
    }

    #[test]
    fn status_says_how_to_unlock() {
        let locked = Status {
            locked: true,
            rejected: 2,
            connected: false,
            server: None,
            ..a_status()
        };
        let text = status(&locked);
        assert!(text.contains("\nconnected: no\n"), "{text}");
        assert!(text.contains("\nserver: none\n"), "{text}");
        assert!(
            text.contains("\nrejected: 2 (failed verification; the daemon's log says why)\n"),
            "{text}"
        );
        assert!(
            text.ends_with("\nlocked: run fastchatctl login alice to unlock"),
            "{text}"
        );
        let logged_out = Status {
            username: None,
            fingerprint: None,
            ..a_status()
        };
        let text = status(&logged_out);
        assert!(text.contains("\nusername: (logged out)\n"), "{text}");
        assert!(!text.contains("fingerprint"), "{text}");
    }

    #[test]
    fn group_lines() {
        let group = Group {
            name: "team".into(),
            members: vec!["alice".into(), "bob".into(), "carol".into()],
            epoch: 2,
            unread: 4,
        };
        assert_eq!(group_line(&group), "team (3 members, 4 unread)");
        assert_eq!(
            group_changed("created", &group),
            "created group team (epoch 2): alice, bob, carol"
        );
        let admin = MemberInfo {
            username: "alice".into(),
            admin: true,
        };
        assert_eq!(member_line(&admin), "alice (admin)");
        let member = MemberInfo {
            username: "bob".into(),
            admin: false,
        };
        assert_eq!(member_line(&member), "bob");
    }

    #[test]
    fn server_lines_mark_the_current_one() {
        let mut server = ServerEntry {
            id: "s1".into(),
            addr: "127.0.0.1:7001".into(),
            healthy: true,
            cpu: Some(12.5),
            connections: Some(3),
            current: true,
        };
        assert_eq!(
            server_line(&server),
            "* s1 127.0.0.1:7001 healthy cpu 12.5% connections 3"
        );
        server.current = false;
        server.healthy = false;
        server.cpu = None;
        server.connections = None;
        assert_eq!(
            server_line(&server),
            "s1 127.0.0.1:7001 unhealthy cpu - connections -"
        );
    }

    #[test]
    fn accounts_and_keys() {
        let a = Account {
            username: "alice".into(),
            fingerprint: "12345 67890".into(),
        };
        assert_eq!(account(&a), "logged in as alice\nfingerprint: 12345 67890");
        let info = FingerprintInfo {
            username: "bob".into(),
            fingerprint: "11111 22222".into(),
            verified: false,
        };
        assert_eq!(fingerprint(&info), "bob: 11111 22222 (not verified)");
        let v = Verified {
            username: "bob".into(),
            verified: true,
        };
        assert_eq!(verified(&v), "verified bob");
    }
}
