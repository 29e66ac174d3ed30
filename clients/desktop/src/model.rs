//! The session model: everything the window shows about the daemon's session, kept up to
//! date from RPC answers and the live feed. Views read it and call its methods; it emits
//! [`SessionEvent`]s and notifies on every change. It holds no gpui view state.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use fastchat_api::{
    Account, ConversationRef, ConversationSummary, FastChatApiClient, FingerprintInfo, MemberInfo,
    Message, MessageKind, SendReceipt, Status, Verified, codes,
};
use gpui::{AsyncApp, Context, EventEmitter, Subscription, Task, WeakEntity};

use crate::backend::{ApiFailure, Backend, Feed};

/// How many messages one page of history holds.
pub const PAGE: u32 = 50;
/// How often the connection status is asked for.
const STATUS_EVERY: Duration = Duration::from_secs(2);

/// Where the session stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Phase {
    /// Waiting for the daemon's first answer.
    Starting,
    /// The daemon answers; nobody is logged in.
    LoggedOut,
    LoggedIn {
        username: String,
    },
    /// The daemon cannot be reached (the feed keeps trying).
    Unreachable(String),
}

/// What changed, for views that react to more than a redraw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionEvent {
    LoggedIn,
    LoggedOut,
    /// A message arrived live.
    Arrived(ConversationRef),
    /// Older messages were loaded at the top of this conversation.
    OlderLoaded(ConversationRef, usize),
    /// Something failed that the user should see.
    Failed(String),
}

/// A message being sent, shown until the daemon confirms it (or says why not).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing {
    pub kind: MessageKind,
    /// The text, or the image's path.
    pub body: String,
    /// Set when the send did not complete: queued (it will be sent) or refused.
    pub problem: Option<String>,
    /// Whether the daemon still holds it (QUEUED): it will be sent when a server answers.
    pub queued: bool,
}

/// The loaded part of one conversation's history.
#[derive(Debug, Clone, Default)]
pub struct Timeline {
    /// By sequence number, so arrivals and pages merge without duplicates.
    messages: BTreeMap<u64, Message>,
    /// No older messages exist than the first loaded.
    pub complete: bool,
    pub loading: bool,
    pub outgoing: Vec<Outgoing>,
}

impl Timeline {
    /// The loaded messages, oldest first.
    pub fn messages(&self) -> impl DoubleEndedIterator<Item = &Message> + ExactSizeIterator {
        self.messages.values()
    }

    #[must_use]
    pub fn len(&self) -> usize {
        self.messages.len()
    }

    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.messages.is_empty()
    }

    fn oldest(&self) -> Option<u64> {
        self.messages.keys().next().copied()
    }

    /// Adds messages; returns how many were new.
    fn merge(&mut self, messages: impl IntoIterator<Item = Message>) -> usize {
        let before = self.messages.len();
        for m in messages {
            self.messages.insert(m.seq, m);
        }
        self.messages.len() - before
    }
}

/// The session, as one gpui entity.
#[derive(Debug)]
pub struct Session {
    backend: Backend,
    pub phase: Phase,
    pub status: Option<Status>,
    /// Newest activity first.
    pub conversations: Vec<ConversationSummary>,
    pub selected: Option<ConversationRef>,
    timelines: HashMap<ConversationRef, Timeline>,
    /// The feed is subscribed (messages arrive live).
    pub live: bool,
    _feed: Task<()>,
    _status: Task<()>,
    _quit: Subscription,
}

impl EventEmitter<SessionEvent> for Session {}

impl Session {
    /// Starts following the daemon behind `backend`: its status, and its live feed.
    pub fn new(backend: Backend, cx: &mut Context<Self>) -> Self {
        let mut feed = backend.feed();
        let feed_task = cx.spawn(async move |this: WeakEntity<Session>, cx: &mut AsyncApp| {
            while let Some(event) = feed.recv().await {
                if this.update(cx, |this, cx| this.on_feed(event, cx)).is_err() {
                    break;
                }
            }
        });
        let status_task = cx.spawn(async move |this: WeakEntity<Session>, cx: &mut AsyncApp| {
            loop {
                let Ok(refresh) = this.update(cx, |this, cx| this.refresh_status(cx)) else {
                    break;
                };
                refresh.await;
                cx.background_executor().timer(STATUS_EVERY).await;
            }
        });
        // Once the window is gone nothing is on screen: the daemon notifies for everything.
        let quit = cx.on_app_quit(|this, _| {
            let clear = this
                .backend
                .call(|c| async move { c.set_focus(None).await });
            async move {
                if let Err(e) = clear.await {
                    tracing::warn!("could not tell fastchatd the window closed: {e}");
                }
            }
        });
        Session {
            backend,
            phase: Phase::Starting,
            status: None,
            conversations: Vec::new(),
            selected: None,
            timelines: HashMap::new(),
            live: false,
            _feed: feed_task,
            _status: status_task,
            _quit: quit,
        }
    }

    #[must_use]
    pub fn backend(&self) -> &Backend {
        &self.backend
    }

    #[must_use]
    pub fn username(&self) -> Option<&str> {
        match &self.phase {
            Phase::LoggedIn { username } => Some(username),
            _ => None,
        }
    }

    /// The loaded history of `conversation`, if any was loaded.
    #[must_use]
    pub fn timeline(&self, conversation: &ConversationRef) -> Option<&Timeline> {
        self.timelines.get(conversation)
    }

    /// Unread messages of `conversation`.
    #[must_use]
    pub fn unread(&self, conversation: &ConversationRef) -> u64 {
        self.conversations
            .iter()
            .find(|c| &c.conversation == conversation)
            .map_or(0, |c| c.unread)
    }

    /// Asks the daemon for its status and follows what it says (logged in or out).
    pub fn refresh_status(&mut self, cx: &mut Context<Self>) -> Task<()> {
        let status = self.backend.call(|c| async move { c.status().await });
        cx.spawn(async move |this: WeakEntity<Session>, cx: &mut AsyncApp| {
            let result = status.await;
            let _ = this.update(cx, |this, cx| this.on_status(result, cx));
        })
    }

    fn on_status(&mut self, result: Result<Status, ApiFailure>, cx: &mut Context<Self>) {
        match result {
            Ok(status) => {
                let phase = match &status.username {
                    Some(username) => Phase::LoggedIn {
                        username: username.clone(),
                    },
                    None => Phase::LoggedOut,
                };
                self.status = Some(status);
                self.enter(phase, cx);
            }
            Err(e) => {
                self.status = None;
                self.phase = Phase::Unreachable(e.message);
            }
        }
        cx.notify();
    }

    /// Moves to `phase`, loading what it shows.
    fn enter(&mut self, phase: Phase, cx: &mut Context<Self>) {
        if self.phase == phase {
            return;
        }
        let was_in = matches!(self.phase, Phase::LoggedIn { .. });
        self.phase = phase;
        match (&self.phase, was_in) {
            (Phase::LoggedIn { .. }, false) => {
                cx.emit(SessionEvent::LoggedIn);
                self.refresh_conversations(cx).detach();
            }
            (Phase::LoggedOut, true) => {
                self.conversations.clear();
                self.timelines.clear();
                self.selected = None;
                cx.emit(SessionEvent::LoggedOut);
            }
            _ => {}
        }
    }

    /// Reloads the conversation list.
    pub fn refresh_conversations(
        &mut self,
        cx: &mut Context<Self>,
    ) -> Task<Result<(), ApiFailure>> {
        let list = self
            .backend
            .call(|c| async move { c.conversations().await });
        cx.spawn(async move |this: WeakEntity<Session>, cx: &mut AsyncApp| {
            let list = list.await;
            this.update(cx, |this, cx| {
                this.conversations = list?;
                // What is on screen is read, even if it arrived before the daemon knew
                // that it was on screen: tell it again.
                let selected = this.selected.clone();
                if let Some(summary) = this
                    .conversations
                    .iter_mut()
                    .find(|c| Some(&c.conversation) == selected.as_ref() && c.unread > 0)
                {
                    summary.unread = 0;
                    let on_screen = summary.conversation.clone();
                    this.focus_daemon(on_screen, cx);
                }
                if this.selected.is_none()
                    && let Some(first) = this.conversations.first()
                {
                    let first = first.conversation.clone();
                    this.select(first, cx);
                }
                cx.notify();
                Ok(())
            })
            .map_err(|_| gone())?
        })
    }

    fn on_feed(&mut self, event: Feed, cx: &mut Context<Self>) {
        match event {
            Feed::Live => {
                self.live = true;
                // Whatever arrived while the feed was down is in the daemon's history.
                self.refresh_status(cx).detach();
                if matches!(self.phase, Phase::LoggedIn { .. }) {
                    self.refresh_conversations(cx).detach();
                    if let Some(selected) = self.selected.clone() {
                        self.load_newest(selected, cx).detach();
                    }
                }
            }
            Feed::Message(message) => self.on_message(*message, cx),
            Feed::Lost(reason) => {
                self.live = false;
                self.phase = Phase::Unreachable(reason);
            }
        }
        cx.notify();
    }

    fn on_message(&mut self, message: Message, cx: &mut Context<Self>) {
        let conversation = message.conversation.clone();
        let own = self.username() == Some(message.sender.as_str());
        let selected = self.selected.as_ref() == Some(&conversation);
        match self
            .conversations
            .iter()
            .position(|c| c.conversation == conversation)
        {
            Some(ix) => {
                let mut summary = self.conversations.remove(ix);
                if !own && !selected && message.seq > summary.last_seq {
                    summary.unread += 1;
                }
                summary.last_seq = summary.last_seq.max(message.seq);
                summary.last_at = Some(message.sent_at);
                summary.last_text = Some(preview(&message));
                self.conversations.insert(0, summary);
            }
            // A conversation we did not know: someone added us to a group.
            None => self.refresh_conversations(cx).detach(),
        }
        if let Some(timeline) = self.timelines.get_mut(&conversation) {
            timeline.merge([message]);
        }
        cx.emit(SessionEvent::Arrived(conversation));
        cx.notify();
    }

    /// Shows `conversation`: tells the daemon it is on screen (so it does not notify for it
    /// and counts it read) and loads its newest messages.
    pub fn select(&mut self, conversation: ConversationRef, cx: &mut Context<Self>) {
        if self.selected.as_ref() == Some(&conversation) {
            return;
        }
        self.selected = Some(conversation.clone());
        if let Some(summary) = self
            .conversations
            .iter_mut()
            .find(|c| c.conversation == conversation)
        {
            summary.unread = 0;
        }
        self.focus_daemon(conversation.clone(), cx);
        self.load_newest(conversation, cx).detach();
        cx.notify();
    }

    /// Tells the daemon `conversation` is on screen (which also marks it read there).
    fn focus_daemon(&self, conversation: ConversationRef, cx: &mut Context<Self>) {
        let set_focus = self
            .backend
            .call(move |c| async move { c.set_focus(Some(conversation)).await });
        cx.spawn(async move |this: WeakEntity<Session>, cx: &mut AsyncApp| {
            if let Err(e) = set_focus.await {
                let _ = this.update(cx, |_, cx| cx.emit(SessionEvent::Failed(e.message)));
            }
        })
        .detach();
    }

    /// Follows the window's activation: while it is not the active window, no conversation
    /// counts as on screen, so the daemon notifies for all of them.
    pub fn set_window_active(&mut self, active: bool, cx: &mut Context<Self>) {
        if !matches!(self.phase, Phase::LoggedIn { .. }) {
            return;
        }
        let focus = if active { self.selected.clone() } else { None };
        let call = self
            .backend
            .call(move |c| async move { c.set_focus(focus).await });
        cx.spawn(async move |this: WeakEntity<Session>, cx: &mut AsyncApp| {
            if let Err(e) = call.await {
                let _ = this.update(cx, |_, cx| cx.emit(SessionEvent::Failed(e.message)));
            }
        })
        .detach();
    }

    /// Loads the newest page of `conversation` (merging with what is loaded).
    pub fn load_newest(
        &mut self,
        conversation: ConversationRef,
        cx: &mut Context<Self>,
    ) -> Task<Result<(), ApiFailure>> {
        self.load_page(conversation, None, cx)
    }

    /// Loads the page before the oldest loaded message of the selected conversation, unless
    /// it is all loaded or a load is under way.
    pub fn load_older(&mut self, cx: &mut Context<Self>) -> Task<Result<(), ApiFailure>> {
        let Some(conversation) = self.selected.clone() else {
            return Task::ready(Ok(()));
        };
        let Some(timeline) = self.timelines.get(&conversation) else {
            return Task::ready(Ok(()));
        };
        if timeline.complete || timeline.loading {
            return Task::ready(Ok(()));
        }
        let before = timeline.oldest();
        self.load_page(conversation, before, cx)
    }

    fn load_page(
        &mut self,
        conversation: ConversationRef,
        before: Option<u64>,
        cx: &mut Context<Self>,
    ) -> Task<Result<(), ApiFailure>> {
        self.timelines
            .entry(conversation.clone())
            .or_default()
            .loading = true;
        let which = conversation.clone();
        let page = self
            .backend
            .call(move |c| async move { c.history(which, Some(PAGE), before).await });
        cx.spawn(async move |this: WeakEntity<Session>, cx: &mut AsyncApp| {
            let page = page.await;
            this.update(cx, |this, cx| {
                let timeline = this.timelines.entry(conversation.clone()).or_default();
                timeline.loading = false;
                let page = match page {
                    Ok(page) => page,
                    Err(e) => {
                        cx.emit(SessionEvent::Failed(e.message.clone()));
                        cx.notify();
                        return Err(e);
                    }
                };
                let full = page.len() >= PAGE as usize;
                let added = timeline.merge(page);
                if before.is_some() || timeline.len() < PAGE as usize {
                    // A short page (or an older page that added nothing) is the beginning.
                    timeline.complete = !full || added == 0;
                }
                if before.is_some() {
                    cx.emit(SessionEvent::OlderLoaded(conversation, added));
                }
                cx.notify();
                Ok(())
            })
            .map_err(|_| gone())?
        })
    }

    /// Sends `text` to the selected conversation. It shows as outgoing until the daemon
    /// confirms it; the message itself then arrives through the feed.
    pub fn send_text(
        &mut self,
        text: String,
        cx: &mut Context<Self>,
    ) -> Task<Result<(), ApiFailure>> {
        let Some(to) = self.selected.clone() else {
            return Task::ready(Err(nothing_selected()));
        };
        let body = text.clone();
        let target = to.clone();
        let call = self
            .backend
            .call(move |c| async move { c.send(target, text).await });
        self.track_send(to, MessageKind::Text, body, call, cx)
    }

    /// Sends the image at `path` to the selected conversation.
    pub fn send_image(
        &mut self,
        path: String,
        cx: &mut Context<Self>,
    ) -> Task<Result<(), ApiFailure>> {
        let Some(to) = self.selected.clone() else {
            return Task::ready(Err(nothing_selected()));
        };
        let body = path.clone();
        let target = to.clone();
        let call = self
            .backend
            .call(move |c| async move { c.send_image(target, path).await });
        self.track_send(to, MessageKind::Image, body, call, cx)
    }

    fn track_send(
        &mut self,
        to: ConversationRef,
        kind: MessageKind,
        body: String,
        call: impl Future<Output = Result<SendReceipt, ApiFailure>> + 'static,
        cx: &mut Context<Self>,
    ) -> Task<Result<(), ApiFailure>> {
        let timeline = self.timelines.entry(to.clone()).or_default();
        timeline.outgoing.push(Outgoing {
            kind,
            body: body.clone(),
            problem: None,
            queued: false,
        });
        cx.notify();
        cx.spawn(async move |this: WeakEntity<Session>, cx: &mut AsyncApp| {
            let result = call.await;
            this.update(cx, |this, cx| {
                let timeline = this.timelines.entry(to).or_default();
                let ix = timeline
                    .outgoing
                    .iter()
                    .position(|o| o.body == body && o.problem.is_none());
                let outcome = match result {
                    Ok(_) => {
                        if let Some(ix) = ix {
                            timeline.outgoing.remove(ix);
                        }
                        Ok(())
                    }
                    Err(e) => {
                        if let Some(o) = ix.and_then(|ix| timeline.outgoing.get_mut(ix)) {
                            o.queued = e.code == Some(codes::QUEUED);
                            o.problem = Some(e.message.clone());
                        }
                        Err(e)
                    }
                };
                cx.notify();
                outcome
            })
            .map_err(|_| gone())?
        })
    }

    /// Forgets failed outgoing messages of the selected conversation (the user dismissed
    /// them). Queued ones stay: the daemon still sends them.
    pub fn dismiss_failed(&mut self, cx: &mut Context<Self>) {
        if let Some(timeline) = self
            .selected
            .as_ref()
            .and_then(|s| self.timelines.get_mut(s))
        {
            timeline
                .outgoing
                .retain(|o| o.problem.is_none() || o.queued);
            cx.notify();
        }
    }

    /// Logs in, or signs up when `signup`.
    pub fn log_in(
        &mut self,
        username: String,
        password: String,
        signup: bool,
        cx: &mut Context<Self>,
    ) -> Task<Result<Account, ApiFailure>> {
        let call = self.backend.call(move |c| async move {
            if signup {
                c.signup(username, password).await
            } else {
                c.login(username, password).await
            }
        });
        cx.spawn(async move |this: WeakEntity<Session>, cx: &mut AsyncApp| {
            let account = call.await?;
            let refresh = this
                .update(cx, |this, cx| {
                    this.enter(
                        Phase::LoggedIn {
                            username: account.username.clone(),
                        },
                        cx,
                    );
                    this.refresh_status(cx)
                })
                .map_err(|_| gone())?;
            refresh.await;
            Ok(account)
        })
    }

    pub fn log_out(&mut self, cx: &mut Context<Self>) -> Task<Result<(), ApiFailure>> {
        let call = self.backend.call(|c| async move { c.logout().await });
        cx.spawn(async move |this: WeakEntity<Session>, cx: &mut AsyncApp| {
            call.await?;
            this.update(cx, |this, cx| {
                this.enter(Phase::LoggedOut, cx);
                cx.notify();
            })
            .map_err(|_| gone())
        })
    }

    /// Creates a group and selects it.
    pub fn create_group(
        &mut self,
        name: String,
        members: Vec<String>,
        cx: &mut Context<Self>,
    ) -> Task<Result<(), ApiFailure>> {
        let group = name.clone();
        let call = self
            .backend
            .call(move |c| async move { c.create_group(group, members).await });
        self.then_show(ConversationRef::Group(name), call, cx)
    }

    /// Adds and removes members of a group.
    pub fn amend_group(
        &mut self,
        name: String,
        add: Vec<String>,
        remove: Vec<String>,
        cx: &mut Context<Self>,
    ) -> Task<Result<(), ApiFailure>> {
        let group = name.clone();
        let call = self.backend.call(move |c| async move {
            let add = (!add.is_empty()).then_some(add);
            let remove = (!remove.is_empty()).then_some(remove);
            c.amend_group(group, add, remove).await
        });
        self.then_show(ConversationRef::Group(name), call, cx)
    }

    /// Opens the direct conversation with `user`: the daemon makes it on first use, here by
    /// reading its (empty) history.
    pub fn open_direct(
        &mut self,
        user: String,
        cx: &mut Context<Self>,
    ) -> Task<Result<(), ApiFailure>> {
        let conversation = ConversationRef::User(user);
        let which = conversation.clone();
        let call = self
            .backend
            .call(move |c| async move { c.history(which, Some(1), None).await });
        self.then_show(conversation, call, cx)
    }

    /// After `call` succeeds, reloads the list and selects `conversation`.
    fn then_show<T: 'static>(
        &mut self,
        conversation: ConversationRef,
        call: impl Future<Output = Result<T, ApiFailure>> + 'static,
        cx: &mut Context<Self>,
    ) -> Task<Result<(), ApiFailure>> {
        cx.spawn(async move |this: WeakEntity<Session>, cx: &mut AsyncApp| {
            call.await?;
            let refresh = this
                .update(cx, |this, cx| this.refresh_conversations(cx))
                .map_err(|_| gone())?;
            refresh.await?;
            this.update(cx, |this, cx| this.select(conversation, cx))
                .map_err(|_| gone())
        })
    }

    /// The members of a group, admins marked.
    pub fn group_members(
        &self,
        name: String,
    ) -> impl Future<Output = Result<Vec<MemberInfo>, ApiFailure>> + use<> {
        self.backend
            .call(move |c| async move { c.group_members(name).await })
    }

    /// A user's (or, with `None`, one's own) key fingerprint and whether it is verified.
    pub fn fingerprint(
        &self,
        user: Option<String>,
    ) -> impl Future<Output = Result<FingerprintInfo, ApiFailure>> + use<> {
        self.backend
            .call(move |c| async move { c.fingerprint(user).await })
    }

    /// Marks `user`'s key verified, if `fingerprint` is theirs.
    pub fn verify(
        &self,
        user: String,
        fingerprint: String,
    ) -> impl Future<Output = Result<Verified, ApiFailure>> + use<> {
        self.backend
            .call(move |c| async move { c.verify(user, fingerprint).await })
    }
}

/// A line of the newest message for the sidebar.
#[must_use]
pub fn preview(message: &Message) -> String {
    match message.kind {
        MessageKind::Image => "[image]".to_owned(),
        MessageKind::Text => {
            let text = message.text.as_deref().unwrap_or_default();
            let line = text.lines().next().unwrap_or_default();
            match line.char_indices().nth(80) {
                Some((end, _)) => format!("{}…", &line[..end]),
                None => line.to_owned(),
            }
        }
    }
}

/// Splits a comma-separated list of names, as the group dialog takes them: blanks and
/// repeats dropped, order kept.
#[must_use]
pub fn names(csv: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for name in csv.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        if !out.iter().any(|n| n == name) {
            out.push(name.to_owned());
        }
    }
    out
}

fn gone() -> ApiFailure {
    ApiFailure {
        code: None,
        message: "the window closed".to_owned(),
    }
}

fn nothing_selected() -> ApiFailure {
    ApiFailure {
        code: None,
        message: "choose a conversation first".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_split_trimmed_and_deduplicated() {
        assert_eq!(names(" bob, carol,,bob ,  "), vec!["bob", "carol"]);
        assert!(names("  ").is_empty());
    }

    #[test]
    fn previews_take_the_first_line_and_cut_long_ones() {
        let mut m = Message {
            id: "00".repeat(16),
            seq: 1,
            conversation: ConversationRef::Group("team".into()),
            sender: "alice".into(),
            sent_at: jiff::Timestamp::UNIX_EPOCH,
            kind: MessageKind::Text,
            text: Some("first line\nsecond".into()),
            image_path: None,
            thumbnail_path: None,
        };
        assert_eq!(preview(&m), "first line");
        m.text = Some("é".repeat(100));
        assert_eq!(preview(&m), format!("{}…", "é".repeat(80)));
        m.kind = MessageKind::Image;
        assert_eq!(preview(&m), "[image]");
    }
}
