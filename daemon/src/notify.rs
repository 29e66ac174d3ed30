//! Desktop notifications for incoming messages (notify-rust: D-Bus on Linux and the BSDs,
//! the platform's own service on macOS and Windows).
//!
//! The engine sends this task every message that deserves one (not one's own, not in the
//! conversation a front end has in focus). Messages arriving close together are gathered:
//! a burst raises one summary notification, not one per message.

use std::time::Duration;

use fastchat_api::{Message, MessageKind};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use crate::config::Notifications;

/// A burst ends when no message came for this long...
const QUIET: Duration = Duration::from_millis(400);
/// ...or this long after its first message.
const LONGEST: Duration = Duration::from_secs(5);
const PREVIEW_CHARS: usize = 120;

/// What a notification says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    pub summary: String,
    pub body: String,
    /// An image's thumbnail, shown in the notification (previews only).
    pub image: Option<String>,
}

fn preview(m: &Message) -> String {
    match m.kind {
        MessageKind::Image => match &m.text {
            Some(name) => format!("sent an image: {name}"),
            None => "sent an image".to_owned(),
        },
        MessageKind::Text => {
            let text = m.text.as_deref().unwrap_or_default();
            let mut p: String = text.chars().take(PREVIEW_CHARS).collect();
            if text.chars().count() > PREVIEW_CHARS {
                p.push('…');
            }
            p
        }
    }
}

/// The notification for a burst of messages.
#[must_use]
pub fn render(batch: &[Message], mode: Notifications) -> Note {
    match batch {
        [m] => Note {
            summary: match &m.conversation {
                fastchat_api::ConversationRef::Group(_) => {
                    format!("{} in {}", m.sender, m.conversation)
                }
                fastchat_api::ConversationRef::User(_) => m.sender.clone(),
            },
            body: if mode == Notifications::Preview {
                preview(m)
            } else {
                "New message".to_owned()
            },
            image: m
                .thumbnail_path
                .clone()
                .filter(|_| mode == Notifications::Preview),
        },
        many => {
            let mut where_from: Vec<String> = Vec::new();
            for m in many {
                let place = match &m.conversation {
                    fastchat_api::ConversationRef::Group(_) => {
                        format!("{} in {}", m.sender, m.conversation)
                    }
                    fastchat_api::ConversationRef::User(_) => m.sender.clone(),
                };
                if !where_from.contains(&place) {
                    where_from.push(place);
                }
            }
            let shown = where_from.len().min(3);
            let mut body = format!("From {}", where_from[..shown].join(", "));
            if where_from.len() > shown {
                body.push_str(&format!(" and {} more", where_from.len() - shown));
            }
            Note {
                summary: format!("{} new messages", many.len()),
                body,
                image: None,
            }
        }
    }
}

/// Gathers messages into bursts and shows one notification per burst until `shutdown`.
pub async fn run(
    mut rx: mpsc::UnboundedReceiver<Message>,
    mode: Notifications,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        let first = tokio::select! {
            m = rx.recv() => match m {
                Some(m) => m,
                None => return,
            },
            _ = shutdown.changed() => return,
        };
        let mut batch = vec![first];
        let longest = Instant::now() + LONGEST;
        loop {
            tokio::select! {
                m = rx.recv() => match m {
                    Some(m) => batch.push(m),
                    None => break,
                },
                () = tokio::time::sleep(QUIET) => break,
                () = tokio::time::sleep_until(longest) => break,
            }
        }
        show(render(&batch, mode)).await;
    }
}

async fn show(note: Note) {
    let mut n = notify_rust::Notification::new();
    n.appname("FastChat")
        .summary(&note.summary)
        .body(&note.body)
        .icon("mail-message-new");
    if let Some(image) = &note.image {
        n.image_path(image);
    }
    #[cfg(all(unix, not(target_os = "macos")))]
    let shown = n.show_async().await.map(drop);
    #[cfg(not(all(unix, not(target_os = "macos"))))]
    let shown = tokio::task::spawn_blocking(move || n.show().map(drop))
        .await
        .unwrap_or(Ok(()));
    if let Err(e) = shown {
        // Said once at warn level: a machine without a notification service would
        // otherwise log a line per message.
        static WARNED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
        if WARNED.swap(true, std::sync::atomic::Ordering::Relaxed) {
            tracing::debug!(error = %e, "cannot show a desktop notification");
        } else {
            tracing::warn!(error = %e, "cannot show a desktop notification (run with --no-notifications to stop trying)");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fastchat_api::ConversationRef;

    fn msg(sender: &str, to: ConversationRef, text: &str) -> Message {
        Message {
            id: "00".repeat(16),
            seq: 1,
            conversation: to,
            sender: sender.into(),
            sent_at: jiff::Timestamp::UNIX_EPOCH,
            kind: MessageKind::Text,
            text: Some(text.into()),
            image_path: None,
            thumbnail_path: None,
        }
    }

    #[test]
    fn one_message_names_sender_and_group_and_previews_the_text() {
        let m = msg(
            "alice",
            ConversationRef::Group("team".into()),
            "lunch at noon?",
        );
        let note = render(std::slice::from_ref(&m), Notifications::Preview);
        assert_eq!(note.summary, "alice in #team");
        assert_eq!(note.body, "lunch at noon?");
        let hidden = render(&[m], Notifications::Private);
        assert_eq!(hidden.body, "New message", "content hidden");
    }

    #[test]
    fn a_burst_is_summarised() {
        let batch: Vec<Message> = (0..100)
            .map(|i| {
                let who = if i % 2 == 0 { "alice" } else { "carol" };
                msg(who, ConversationRef::Group("team".into()), "x")
            })
            .collect();
        let note = render(&batch, Notifications::Preview);
        assert_eq!(note.summary, "100 new messages");
        assert_eq!(note.body, "From alice in #team, carol in #team");
    }

    #[test]
    fn an_image_shows_its_name_and_thumbnail_unless_content_is_hidden() {
        let mut m = msg("alice", ConversationRef::User("alice".into()), "cat.png");
        m.kind = MessageKind::Image;
        m.thumbnail_path = Some("/data/images/x-cat.png.thumb.png".into());
        let note = render(std::slice::from_ref(&m), Notifications::Preview);
        assert_eq!(note.body, "sent an image: cat.png");
        assert_eq!(
            note.image.as_deref(),
            Some("/data/images/x-cat.png.thumb.png")
        );
        let hidden = render(&[m], Notifications::Private);
        assert_eq!((hidden.body.as_str(), hidden.image), ("New message", None));
    }

    #[test]
    fn long_texts_are_cut() {
        let long = "é".repeat(500);
        let note = render(
            &[msg("bob", ConversationRef::User("bob".into()), &long)],
            Notifications::Preview,
        );
        assert_eq!(note.summary, "bob");
        assert_eq!(note.body.chars().count(), PREVIEW_CHARS + 1);
    }
}
