//! The main screen: the sidebar of conversations, the conversation pane with its composer,
//! and the status bar.

use std::collections::HashSet;
use std::path::PathBuf;

use fastchat_api::{ConversationRef, ConversationSummary, Message, MessageKind, Status};
use gpui::{
    AnyElement, App, AppContext, Context, Entity, EventEmitter, FocusHandle, Focusable, FontWeight,
    InteractiveElement, IntoElement, ListAlignment, ListScrollEvent, ListState, ObjectFit,
    ParentElement, PathPromptOptions, Render, SharedString, StatefulInteractiveElement, Styled,
    StyledImage, Window, div, img, list, px,
};

use crate::input::{InputEvent, TextInput};
use crate::model::{Outgoing, Phase, Session, SessionEvent};
use crate::theme::Theme;
use crate::views::widgets::{Kind, button, error_line};

/// What the chat screen asks of the window around it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChatEvent {
    /// Show an image full size.
    OpenImage(PathBuf),
    /// Open the group dialog, on this group if one is named.
    EditGroup(Option<String>),
    /// Show keys: one's own and, if named, this user's.
    ShowKeys(Option<String>),
}

/// One row of the conversation pane.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Row {
    Message(Message),
    /// Being sent, queued, or refused.
    Outgoing(Outgoing),
}

impl Row {
    /// Identifies a row across updates, so the list keeps its place.
    fn key(&self) -> (u8, u64, &str) {
        match self {
            Row::Message(m) => (0, m.seq, ""),
            Row::Outgoing(o) => (1, 0, &o.body),
        }
    }
}

/// The chat screen.
#[derive(Debug)]
pub struct ChatView {
    session: Entity<Session>,
    pub composer: Entity<TextInput>,
    /// "Message a user": opens the direct conversation with the name typed.
    pub direct: Entity<TextInput>,
    /// Where an image's path is typed when no system file picker is available.
    pub image_path: Option<Entity<TextInput>>,
    list: ListState,
    /// What the list shows, rebuilt from the session on every change.
    rows: Vec<Row>,
    shown: Option<ConversationRef>,
    /// Ids of messages drawn so far (logged once each, for tests that watch the window).
    drawn: HashSet<String>,
    pub error: Option<String>,
}

impl EventEmitter<ChatEvent> for ChatView {}

impl ChatView {
    pub fn new(session: Entity<Session>, window: &mut Window, cx: &mut Context<Self>) -> Self {
        let composer = cx.new(|cx| {
            TextInput::new(
                "Write a message (Enter sends, Shift+Enter for a new line)",
                true,
                cx,
            )
        });
        let direct = cx.new(|cx| TextInput::new("Message a user…", false, cx));
        cx.subscribe_in(&composer, window, |this, _, event, _, cx| {
            if *event == InputEvent::Submit {
                this.send(cx);
            }
        })
        .detach();
        cx.subscribe_in(&direct, window, |this, input, event, _, cx| {
            if *event == InputEvent::Submit {
                let user = input.read(cx).text().trim().to_owned();
                if !user.is_empty() {
                    input.update(cx, |i, cx| i.clear(cx));
                    this.open_direct(user, cx);
                }
            }
        })
        .detach();
        cx.observe(&session, |this, _, cx| this.sync_rows(cx))
            .detach();
        cx.subscribe(&session, |this, _, event, cx| {
            if let SessionEvent::Failed(message) = event {
                this.error = Some(message.clone());
                cx.notify();
            }
        })
        .detach();
        let list = ListState::new(0, ListAlignment::Bottom, px(600.));
        list.set_scroll_handler(cx.listener(|this, event: &ListScrollEvent, _, cx| {
            if event.is_scrolled && event.visible_range.start == 0 {
                this.session.update(cx, |s, cx| s.load_older(cx)).detach();
            }
        }));
        let mut view = ChatView {
            session,
            composer,
            direct,
            image_path: None,
            list,
            rows: Vec::new(),
            shown: None,
            drawn: HashSet::new(),
            error: None,
        };
        view.sync_rows(cx);
        view
    }

    /// The rows the pane shows (oldest first).
    #[must_use]
    pub fn rows(&self) -> &[Row] {
        &self.rows
    }

    /// Rebuilds the rows from the session, telling the list what moved so that it keeps the
    /// reader's place (older pages are inserted above, arrivals below).
    fn sync_rows(&mut self, cx: &mut Context<Self>) {
        let session = self.session.read(cx);
        let selected = session.selected.clone();
        let rows: Vec<Row> = selected
            .as_ref()
            .and_then(|s| session.timeline(s))
            .map(|t| {
                t.messages()
                    .cloned()
                    .map(Row::Message)
                    .chain(t.outgoing.iter().cloned().map(Row::Outgoing))
                    .collect()
            })
            .unwrap_or_default();
        if selected != self.shown {
            self.shown = selected;
            self.list.reset(rows.len());
            self.error = None;
        } else {
            let old_first = self.rows.first().map(|r| r.key());
            let prepended = match old_first {
                Some(first) => rows.iter().take_while(|r| r.key() < first).count(),
                None => 0,
            };
            if prepended > 0 {
                self.list.splice(0..0, prepended);
            }
            let same = self
                .rows
                .iter()
                .zip(&rows[prepended..])
                .take_while(|(a, b)| a == b)
                .count();
            let old_len = self.rows.len();
            if same < old_len || prepended + same < rows.len() {
                self.list.splice(
                    prepended + same..prepended + old_len,
                    rows.len() - prepended - same,
                );
            }
        }
        self.rows = rows;
        cx.notify();
    }

    /// Sends what the composer holds to the selected conversation.
    pub fn send(&mut self, cx: &mut Context<Self>) {
        let text = self.composer.read(cx).text().to_owned();
        if text.trim().is_empty() {
            return;
        }
        if self.session.read(cx).selected.is_none() {
            self.error = Some("Choose a conversation first.".to_owned());
            cx.notify();
            return;
        }
        self.composer.update(cx, |c, cx| c.clear(cx));
        // A refused send stays in the pane with its text, so nothing typed is lost.
        self.session
            .update(cx, |s, cx| s.send_text(text, cx))
            .detach();
    }

    /// Asks for an image with the system file picker, or, where there is none, for its path.
    pub fn choose_image(&mut self, window: &mut Window, cx: &mut Context<Self>) {
        let picked = cx.prompt_for_paths(PathPromptOptions {
            files: true,
            directories: false,
            multiple: false,
            prompt: Some("Send".into()),
        });
        cx.spawn_in(window, async move |this, cx| {
            let outcome = picked.await;
            this.update_in(cx, |this, window, cx| match outcome {
                Ok(Ok(Some(paths))) => {
                    if let Some(path) = paths.into_iter().next() {
                        this.send_image(path.to_string_lossy().into_owned(), cx);
                    }
                }
                Ok(Ok(None)) => {}
                // No portal or dialog on this desktop: ask for the path instead.
                Ok(Err(e)) => {
                    tracing::info!("no file picker ({e:#}); asking for the path");
                    this.ask_image_path(window, cx);
                }
                Err(_) => {
                    tracing::info!("no file picker (it went away); asking for the path");
                    this.ask_image_path(window, cx);
                }
            })
        })
        .detach();
    }

    /// Shows the field where an image's path is typed.
    pub fn ask_image_path(&mut self, window: &mut Window, cx: &mut Context<Self>) {
        let input = cx.new(|cx| {
            TextInput::new(
                "Path of the image to send (Enter sends, Escape cancels)",
                false,
                cx,
            )
        });
        cx.subscribe_in(&input, window, |this, input, event, window, cx| {
            if *event == InputEvent::Submit {
                let path = input.read(cx).text().trim().to_owned();
                if !path.is_empty() {
                    this.image_path = None;
                    this.send_image(path, cx);
                    window.focus(&this.composer.focus_handle(cx));
                }
            }
        })
        .detach();
        window.focus(&input.focus_handle(cx));
        self.image_path = Some(input);
        cx.notify();
    }

    /// Sends the image at `path` to the selected conversation.
    pub fn send_image(&mut self, path: String, cx: &mut Context<Self>) {
        let path = expand_home(&path);
        self.session
            .update(cx, |s, cx| s.send_image(path, cx))
            .detach();
    }

    /// Opens (and selects) the direct conversation with `user`.
    pub fn open_direct(&mut self, user: String, cx: &mut Context<Self>) {
        let task = self.session.update(cx, |s, cx| s.open_direct(user, cx));
        cx.spawn(async move |this, cx| {
            if let Err(e) = task.await {
                let _ = this.update(cx, |this, cx| {
                    this.error = Some(e.message);
                    cx.notify();
                });
            }
        })
        .detach();
    }

    /// Selects the conversation `step` places below (or above) the selected one, wrapping.
    pub fn step_conversation(&mut self, step: isize, cx: &mut Context<Self>) {
        self.session.update(cx, |s, cx| {
            let n = s.conversations.len();
            if n == 0 {
                return;
            }
            let current = s
                .selected
                .as_ref()
                .and_then(|sel| s.conversations.iter().position(|c| &c.conversation == sel));
            let next = match current {
                Some(ix) => (ix as isize + step).rem_euclid(n as isize) as usize,
                None => 0,
            };
            let target = s.conversations[next].conversation.clone();
            s.select(target, cx);
        });
    }

    fn render_row(
        &mut self,
        ix: usize,
        _window: &mut Window,
        cx: &mut Context<Self>,
    ) -> AnyElement {
        let Some(row) = self.rows.get(ix).cloned() else {
            return div().into_any_element();
        };
        let theme = Theme::get(cx).clone();
        let me = self.session.read(cx).username().map(str::to_owned);
        match row {
            Row::Message(m) => {
                if self.drawn.insert(m.id.clone()) {
                    tracing::debug!(
                        target: "fastchat_desktop::pane",
                        id = %m.id, seq = m.seq, conversation = %m.conversation,
                        "drew message"
                    );
                }
                let own = me.as_deref() == Some(m.sender.as_str());
                let body: AnyElement = match (&m.kind, &m.image_path) {
                    (MessageKind::Image, Some(path)) => {
                        let full = PathBuf::from(path);
                        let shown = m.thumbnail_path.clone().unwrap_or_else(|| path.clone());
                        div()
                            .id(SharedString::from(format!("image-{}", m.id)))
                            .cursor_pointer()
                            .child(
                                img(PathBuf::from(shown))
                                    .max_w(px(256.))
                                    .max_h(px(256.))
                                    .object_fit(ObjectFit::Contain),
                            )
                            .on_click(cx.listener(move |_, _, _, cx| {
                                cx.emit(ChatEvent::OpenImage(full.clone()));
                            }))
                            .into_any_element()
                    }
                    (MessageKind::Image, None) => div()
                        .text_color(theme.muted)
                        .child("[image still downloading]")
                        .into_any_element(),
                    (MessageKind::Text, _) => div()
                        .child(SharedString::from(m.text.clone().unwrap_or_default()))
                        .into_any_element(),
                };
                let content = frame(own, &theme)
                    .child(
                        div()
                            .flex()
                            .gap_2()
                            .text_sm()
                            .child(
                                div()
                                    .font_weight(FontWeight::BOLD)
                                    .child(SharedString::from(m.sender.clone())),
                            )
                            .child(
                                div()
                                    .text_color(theme.muted)
                                    .child(SharedString::from(clock(&m.sent_at))),
                            ),
                    )
                    .child(body);
                row_frame(own).child(content).into_any_element()
            }
            Row::Outgoing(o) => {
                let what = match o.kind {
                    MessageKind::Text => o.body.clone(),
                    MessageKind::Image => format!("[image {}]", o.body),
                };
                let note = match (&o.problem, o.queued) {
                    (None, _) => "sending…".to_owned(),
                    (Some(_), true) => "queued: it is sent when a server answers".to_owned(),
                    (Some(p), false) => format!("not sent: {p} (click to edit it again)"),
                };
                let refused = o.problem.is_some() && !o.queued;
                let content = frame(true, &theme)
                    .opacity(0.7)
                    .child(div().child(SharedString::from(what)))
                    .child(
                        div()
                            .text_sm()
                            .text_color(if refused { theme.danger } else { theme.muted })
                            .child(SharedString::from(note)),
                    );
                let mut el = row_frame(true)
                    .id(SharedString::from(format!("outgoing-{ix}")))
                    .child(content);
                if refused && o.kind == MessageKind::Text {
                    let body = o.body.clone();
                    el = el
                        .cursor_pointer()
                        .on_click(cx.listener(move |this, _, _, cx| {
                            this.composer
                                .update(cx, |c, cx| c.set_text(body.clone(), cx));
                            this.session.update(cx, |s, cx| s.dismiss_failed(cx));
                        }));
                }
                el.into_any_element()
            }
        }
    }

    fn render_sidebar(&mut self, cx: &mut Context<Self>) -> impl IntoElement {
        let theme = Theme::get(cx).clone();
        let session = self.session.read(cx);
        let selected = session.selected.clone();
        let username = session.username().unwrap_or_default().to_owned();
        let rows: Vec<ConversationSummary> = session.conversations.clone();
        div()
            .w(px(260.))
            .h_full()
            .flex()
            .flex_col()
            .bg(theme.surface)
            .border_r_1()
            .border_color(theme.border)
            .child(
                div()
                    .p_3()
                    .flex()
                    .items_center()
                    .justify_between()
                    .child(
                        div()
                            .flex()
                            .flex_col()
                            .child(div().font_weight(FontWeight::BOLD).child("FastChat"))
                            .child(
                                div()
                                    .text_sm()
                                    .text_color(theme.muted)
                                    .child(SharedString::from(format!("@{username}"))),
                            ),
                    )
                    .child(
                        button("new-group", "New group", Kind::Secondary, cx).on_click(
                            cx.listener(|_, _, _, cx| cx.emit(ChatEvent::EditGroup(None))),
                        ),
                    ),
            )
            .child(div().mx_3().mb_2().child(self.direct.clone()))
            .child(
                div()
                    .id("conversations")
                    .flex_1()
                    .overflow_y_scroll()
                    .children(rows.into_iter().map(|c| {
                        let is_selected = selected.as_ref() == Some(&c.conversation);
                        let target = c.conversation.clone();
                        div()
                            .id(SharedString::from(format!(
                                "conversation-{}",
                                c.conversation
                            )))
                            .px_3()
                            .py_2()
                            .flex()
                            .flex_col()
                            .cursor_pointer()
                            .when_selected(is_selected, &theme)
                            .hover(|s| s.bg(theme.border.opacity(0.4)))
                            .on_click(cx.listener(move |this, _, _, cx| {
                                let target = target.clone();
                                this.session.update(cx, |s, cx| s.select(target, cx));
                            }))
                            .child(
                                div()
                                    .flex()
                                    .justify_between()
                                    .child(
                                        div()
                                            .font_weight(if c.unread > 0 {
                                                FontWeight::BOLD
                                            } else {
                                                FontWeight::NORMAL
                                            })
                                            .child(SharedString::from(c.conversation.to_string())),
                                    )
                                    .children((c.unread > 0).then(|| {
                                        div()
                                            .px_2()
                                            .rounded(px(8.))
                                            .bg(theme.accent)
                                            .text_color(theme.on_accent)
                                            .text_xs()
                                            .child(SharedString::from(c.unread.to_string()))
                                    })),
                            )
                            .children(c.last_text.map(|t| {
                                div()
                                    .text_sm()
                                    .text_color(if is_selected {
                                        theme.on_accent
                                    } else {
                                        theme.muted
                                    })
                                    .overflow_hidden()
                                    .whitespace_nowrap()
                                    .text_ellipsis()
                                    .child(SharedString::from(t))
                            }))
                    })),
            )
    }

    fn render_pane(&mut self, window: &mut Window, cx: &mut Context<Self>) -> impl IntoElement {
        let theme = Theme::get(cx).clone();
        let session = self.session.read(cx);
        let selected = session.selected.clone();
        let members = selected
            .as_ref()
            .and_then(|s| session.conversations.iter().find(|c| &c.conversation == s))
            .map(|c| c.members.join(", "))
            .unwrap_or_default();
        let title = selected
            .as_ref()
            .map_or_else(|| "No conversation".to_owned(), ToString::to_string);
        let header_action = match &selected {
            Some(ConversationRef::Group(name)) => {
                let name = name.clone();
                Some(
                    button("amend-group", "Members", Kind::Secondary, cx).on_click(cx.listener(
                        move |_, _, _, cx| cx.emit(ChatEvent::EditGroup(Some(name.clone()))),
                    )),
                )
            }
            Some(ConversationRef::User(user)) => {
                let user = user.clone();
                Some(
                    button("their-key", "Safety number", Kind::Secondary, cx).on_click(
                        cx.listener(move |_, _, _, cx| {
                            cx.emit(ChatEvent::ShowKeys(Some(user.clone())));
                        }),
                    ),
                )
            }
            None => None,
        };
        let _ = window;
        div()
            .flex_1()
            .h_full()
            .flex()
            .flex_col()
            .bg(theme.background)
            .child(
                div()
                    .px_4()
                    .py_2()
                    .flex()
                    .items_center()
                    .justify_between()
                    .border_b_1()
                    .border_color(theme.border)
                    .child(
                        div()
                            .flex()
                            .flex_col()
                            .child(
                                div()
                                    .font_weight(FontWeight::BOLD)
                                    .child(SharedString::from(title)),
                            )
                            .child(
                                div()
                                    .text_sm()
                                    .text_color(theme.muted)
                                    .child(SharedString::from(members)),
                            ),
                    )
                    .children(header_action),
            )
            .child(
                div().flex_1().child(
                    list(self.list.clone(), cx.processor(Self::render_row))
                        .size_full()
                        .py_2(),
                ),
            )
            .children(error_line(self.error.as_deref(), cx).map(|e| e.px_4()))
            .children(
                self.image_path
                    .clone()
                    .map(|input| div().mx_4().mb_2().child(input)),
            )
            .child(
                div()
                    .px_4()
                    .py_2()
                    .flex()
                    .items_end()
                    .gap_2()
                    .border_t_1()
                    .border_color(theme.border)
                    .child(
                        button("send-image", "Send image", Kind::Secondary, cx).on_click(
                            cx.listener(|this, _, window, cx| this.choose_image(window, cx)),
                        ),
                    )
                    .child(div().flex_1().child(self.composer.clone()))
                    .child(
                        button("send", "Send", Kind::Primary, cx)
                            .on_click(cx.listener(|this, _, _, cx| this.send(cx))),
                    ),
            )
    }

    fn render_status(&mut self, cx: &mut Context<Self>) -> impl IntoElement {
        let theme = Theme::get(cx).clone();
        let session = self.session.read(cx);
        let (health, line) = connection_line(&session.phase, session.status.as_ref());
        let dot = match health {
            Health::Connected => theme.success,
            Health::Waiting => theme.muted,
            Health::Down => theme.danger,
        };
        let warnings: Vec<String> = session
            .status
            .iter()
            .flat_map(|s| {
                let mut w = Vec::new();
                if s.locked {
                    w.push("Key locked: log in again to read new messages".to_owned());
                }
                if s.rejected > 0 {
                    w.push(format!("{} message(s) failed verification", s.rejected));
                }
                w
            })
            .collect();
        div()
            .id("status-bar")
            .px_3()
            .py_1()
            .flex()
            .items_center()
            .justify_between()
            .text_sm()
            .bg(theme.surface)
            .border_t_1()
            .border_color(theme.border)
            .child(
                div()
                    .flex()
                    .gap_2()
                    .child(div().text_color(dot).child("●"))
                    .child(SharedString::from(line))
                    .children(warnings.into_iter().map(|w| {
                        div()
                            .text_color(theme.danger)
                            .child(SharedString::from(format!("· {w}")))
                    })),
            )
            .child(
                div()
                    .flex()
                    .gap_2()
                    .child(
                        button("my-key", "My key", Kind::Secondary, cx).on_click(
                            cx.listener(|_, _, _, cx| cx.emit(ChatEvent::ShowKeys(None))),
                        ),
                    )
                    .child(
                        button("toggle-theme", "Theme", Kind::Secondary, cx).on_click(
                            |_, window, cx| {
                                window.dispatch_action(Box::new(crate::ToggleTheme), cx)
                            },
                        ),
                    )
                    .child(
                        button("logout", "Log out", Kind::Secondary, cx).on_click(cx.listener(
                            |this, _, _, cx| {
                                this.session.update(cx, |s, cx| s.log_out(cx)).detach();
                            },
                        )),
                    ),
            )
    }
}

/// How the connection stands, for the status bar's dot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    Connected,
    /// Connecting or reconnecting.
    Waiting,
    /// The daemon cannot be reached.
    Down,
}

/// The status bar's words for the connection.
#[must_use]
pub fn connection_line(phase: &Phase, status: Option<&Status>) -> (Health, String) {
    if let Phase::Unreachable(reason) = phase {
        return (Health::Down, format!("{reason}; retrying"));
    }
    let Some(status) = status else {
        return (Health::Waiting, "Connecting to fastchatd…".to_owned());
    };
    let pending = match status.pending {
        0 => String::new(),
        n => format!(" · {n} waiting to be sent"),
    };
    match (&status.server, status.connected) {
        (Some(server), true) => (
            Health::Connected,
            format!(
                "Connected to {} ({}) · {}{pending}",
                server.id, server.addr, status.strategy
            ),
        ),
        _ => (
            Health::Waiting,
            format!("Reconnecting ({}){pending}", status.strategy),
        ),
    }
}

/// A message's frame, in its own colour for one's own messages.
fn frame(own: bool, theme: &Theme) -> gpui::Div {
    div()
        .max_w(px(560.))
        .px_3()
        .py_2()
        .rounded(px(10.))
        .flex()
        .flex_col()
        .gap_1()
        .bg(if own {
            theme.own_bubble
        } else {
            theme.other_bubble
        })
}

/// A row holding a frame: one's own messages to the right.
fn row_frame(own: bool) -> gpui::Div {
    let row = div().px_4().py_1().flex().w_full();
    if own {
        row.justify_end()
    } else {
        row.justify_start()
    }
}

trait Selectable: Sized {
    fn when_selected(self, selected: bool, theme: &Theme) -> Self;
}

impl Selectable for gpui::Stateful<gpui::Div> {
    fn when_selected(self, selected: bool, theme: &Theme) -> Self {
        if selected {
            self.bg(theme.accent).text_color(theme.on_accent)
        } else {
            self
        }
    }
}

/// A message's time: the clock for today, the date before that.
fn clock(at: &jiff::Timestamp) -> String {
    let tz = jiff::tz::TimeZone::system();
    let zoned = at.to_zoned(tz.clone());
    let today = jiff::Timestamp::now().to_zoned(tz).date();
    if zoned.date() == today {
        zoned.strftime("%H:%M").to_string()
    } else {
        zoned.strftime("%Y-%m-%d %H:%M").to_string()
    }
}

/// `~/x` as the home folder's `x` (the path field takes what people type).
fn expand_home(path: &str) -> String {
    match (path.strip_prefix("~/"), std::env::var_os("HOME")) {
        (Some(rest), Some(home)) => PathBuf::from(home)
            .join(rest)
            .to_string_lossy()
            .into_owned(),
        _ => path.to_owned(),
    }
}

impl Focusable for ChatView {
    fn focus_handle(&self, cx: &App) -> FocusHandle {
        self.composer.focus_handle(cx)
    }
}

impl Render for ChatView {
    fn render(&mut self, window: &mut Window, cx: &mut Context<Self>) -> impl IntoElement {
        div()
            .size_full()
            .flex()
            .flex_col()
            .child(
                div()
                    .flex_1()
                    .flex()
                    .overflow_hidden()
                    .child(self.render_sidebar(cx))
                    .child(self.render_pane(window, cx)),
            )
            .child(self.render_status(cx))
    }
}

#[cfg(test)]
mod tests {
    use fastchat_api::ServerRef;

    use super::*;

    fn status(connected: bool, pending: u64) -> Status {
        Status {
            profile: "default".into(),
            username: Some("alice".into()),
            connected,
            server: connected.then(|| ServerRef {
                id: "server-2".into(),
                addr: "127.0.0.1:7401".into(),
            }),
            strategy: "balancer".into(),
            fingerprint: None,
            unread: 0,
            pending,
            rejected: 0,
            locked: false,
        }
    }

    #[test]
    fn the_status_bar_names_the_server_and_strategy_or_says_it_reconnects() {
        let phase = Phase::LoggedIn {
            username: "alice".into(),
        };
        assert_eq!(
            connection_line(&phase, Some(&status(true, 0))),
            (
                Health::Connected,
                "Connected to server-2 (127.0.0.1:7401) · balancer".to_owned()
            )
        );
        assert_eq!(
            connection_line(&phase, Some(&status(false, 3))),
            (
                Health::Waiting,
                "Reconnecting (balancer) · 3 waiting to be sent".to_owned()
            )
        );
        assert_eq!(connection_line(&phase, None).0, Health::Waiting);
        let reason = "fastchatd is not reachable: connection refused";
        let (health, line) = connection_line(&Phase::Unreachable(reason.into()), None);
        assert_eq!(health, Health::Down);
        assert_eq!(line, format!("{reason}; retrying"));
    }
}
