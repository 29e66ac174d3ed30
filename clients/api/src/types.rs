//! What the daemon's methods take and return. JSON field names are camelCase.

use std::fmt;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

/// A conversation as front ends name it: `{"group": "NAME"}` or `{"user": "NAME"}` (the
/// direct conversation with that user).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ConversationRef {
    Group(String),
    User(String),
}

impl fmt::Display for ConversationRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConversationRef::Group(name) => write!(f, "#{name}"),
            ConversationRef::User(name) => write!(f, "@{name}"),
        }
    }
}

/// An empty JSON object, the result of methods with nothing to say.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Empty {}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Account {
    pub username: String,
    /// The account key's safety number (60 digits in groups of five).
    pub fingerprint: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServerRef {
    pub id: String,
    pub addr: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Status {
    /// The profile this daemon serves (extension).
    pub profile: String,
    /// `None` when logged out.
    pub username: Option<String>,
    /// Whether a server connection is up (and, when logged in, the session resumed on it).
    pub connected: bool,
    pub server: Option<ServerRef>,
    /// How the daemon chooses servers: `balancer`, `client-round-robin` or `random`.
    pub strategy: String,
    pub fingerprint: Option<String>,
    /// Unread messages over all conversations.
    pub unread: u64,
    /// Sends not yet acknowledged by a server (extension): they are resent until they are.
    pub pending: u64,
    /// Received messages that failed verification (tampered, forged, or from a changed
    /// key) and were not shown (extension); the daemon's log says why.
    pub rejected: u64,
    /// Logged in but the identity key is not unlocked (after a daemon restart): messages
    /// are received and kept sealed until `login` unlocks it (extension).
    pub locked: bool,
}

/// What `send` answers once the server has stored the message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SendReceipt {
    /// The message's id (its client message id, 32 hex digits).
    pub id: String,
    pub seq: u64,
    pub sent_at: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Group {
    pub name: String,
    pub members: Vec<String>,
    pub epoch: u32,
    /// Unread messages (in `listGroups`; 0 elsewhere).
    #[serde(default)]
    pub unread: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MemberInfo {
    pub username: String,
    pub admin: bool,
}

/// One conversation as `conversations` lists it (extension): a group or a direct
/// conversation, with what a sidebar shows of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConversationSummary {
    pub conversation: ConversationRef,
    /// Every member, the user included.
    pub members: Vec<String>,
    pub epoch: u32,
    /// Messages not read yet.
    pub unread: u64,
    /// The newest sequence number the server reported for it (0 when empty).
    pub last_seq: u64,
    /// When the server stored the newest message kept here, if any.
    pub last_at: Option<Timestamp>,
    /// A preview of that message: its text on one line, cut to at most 80 characters
    /// (ending with `…` when cut), or `[image]` for an image.
    pub last_text: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum MessageKind {
    Text,
    Image,
}

/// A message as `history` and `message` notifications give it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Message {
    /// The message's id (the sender's client message id, 32 hex digits).
    pub id: String,
    pub seq: u64,
    pub conversation: ConversationRef,
    pub sender: String,
    /// When the server stored it.
    pub sent_at: Timestamp,
    pub kind: MessageKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_path: Option<String>,
    /// A small PNG of the image (at most 256 pixels a side) for lists and previews
    /// (extension).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thumbnail_path: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FingerprintInfo {
    pub username: String,
    pub fingerprint: String,
    pub verified: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Verified {
    pub username: String,
    pub verified: bool,
}

/// A server as the balancer lists it, with the one in use marked.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServerEntry {
    pub id: String,
    pub addr: String,
    pub healthy: bool,
    /// Recent CPU use in percent, if the server reports it.
    pub cpu: Option<f32>,
    pub connections: Option<u32>,
    pub current: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conversations_are_named_as_the_contract_says() {
        let group: ConversationRef = serde_json::from_str(r#"{"group": "team"}"#).expect("group");
        assert_eq!(group, ConversationRef::Group("team".into()));
        assert_eq!(
            serde_json::to_string(&ConversationRef::User("bob".into())).expect("json"),
            r#"{"user":"bob"}"#
        );
    }

    #[test]
    fn messages_use_camel_case_and_rfc3339_times() {
        let m = Message {
            id: "00".repeat(16),
            seq: 3,
            conversation: ConversationRef::Group("team".into()),
            sender: "alice".into(),
            sent_at: Timestamp::from_millisecond(1_700_000_000_123).expect("time"),
            kind: MessageKind::Text,
            text: Some("hi".into()),
            image_path: None,
            thumbnail_path: None,
        };
        let json = serde_json::to_value(&m).expect("json");
        assert_eq!(json["sentAt"], "2023-11-14T22:13:20.123Z");
        assert_eq!(json["kind"], "text");
        assert!(json.get("imagePath").is_none());
        assert_eq!(serde_json::from_value::<Message>(json).expect("back"), m);
    }

    #[test]
    fn conversation_summaries_round_trip_in_camel_case() {
        let busy = ConversationSummary {
            conversation: ConversationRef::User("bob".into()),
            members: vec!["alice".into(), "bob".into()],
            epoch: 1,
            unread: 2,
            last_seq: 7,
            last_at: Some(Timestamp::from_millisecond(1_700_000_000_123).expect("time")),
            last_text: Some("see you".into()),
        };
        let json = serde_json::to_value(&busy).expect("json");
        assert_eq!(
            json,
            serde_json::json!({
                "conversation": {"user": "bob"},
                "members": ["alice", "bob"],
                "epoch": 1,
                "unread": 2,
                "lastSeq": 7,
                "lastAt": "2023-11-14T22:13:20.123Z",
                "lastText": "see you",
            })
        );
        assert_eq!(
            serde_json::from_value::<ConversationSummary>(json).expect("back"),
            busy
        );

        let quiet = ConversationSummary {
            conversation: ConversationRef::Group("team".into()),
            members: vec!["alice".into()],
            epoch: 3,
            unread: 0,
            last_seq: 0,
            last_at: None,
            last_text: None,
        };
        let json = serde_json::to_value(&quiet).expect("json");
        assert_eq!(json["lastAt"], serde_json::Value::Null);
        assert_eq!(json["lastText"], serde_json::Value::Null);
        assert_eq!(
            serde_json::from_value::<ConversationSummary>(json).expect("back"),
            quiet
        );
    }
}
