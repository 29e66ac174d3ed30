//! The window's root view: the log-in screen or the chat screen, a dialog over it, the
//! window-wide shortcuts and the window title.

use fastchat_api::ConversationRef;
use gpui::{
    AnyView, App, AppContext, Context, Entity, FocusHandle, Focusable, InteractiveElement,
    IntoElement, ParentElement, Render, SharedString, Styled, Subscription, Window, div, px,
};

use crate::model::{Phase, Session, SessionEvent};
use crate::theme::{Appearance, Theme};
use crate::views::chat::{ChatEvent, ChatView};
use crate::views::dialogs::{Dismissed, GroupDialog, ImageViewer, KeysDialog};
use crate::views::login::LoginView;
use crate::{
    CloseDialog, NewGroup, NextConversation, PreviousConversation, SendImage, ShowKeys, ToggleTheme,
};

/// The dialog on screen, if any.
#[derive(Debug, Clone)]
pub enum Dialog {
    Group(Entity<GroupDialog>),
    Keys(Entity<KeysDialog>),
    Image(Entity<ImageViewer>),
}

impl Dialog {
    fn view(&self) -> AnyView {
        match self {
            Dialog::Group(d) => d.clone().into(),
            Dialog::Keys(d) => d.clone().into(),
            Dialog::Image(d) => d.clone().into(),
        }
    }
}

/// The window's content.
#[derive(Debug)]
pub struct Root {
    pub session: Entity<Session>,
    pub login: Entity<LoginView>,
    pub chat: Entity<ChatView>,
    pub dialog: Option<Dialog>,
    focus: FocusHandle,
    title: String,
    _subscriptions: Vec<Subscription>,
}

impl Root {
    pub fn new(session: Entity<Session>, window: &mut Window, cx: &mut Context<Self>) -> Self {
        let login = cx.new(|cx| LoginView::new(session.clone(), window, cx));
        let chat = cx.new(|cx| ChatView::new(session.clone(), window, cx));
        let subscriptions = vec![
            cx.observe(&session, |_, _, cx| cx.notify()),
            cx.subscribe_in(&session, window, |this, _, event, window, cx| match event {
                SessionEvent::LoggedIn => {
                    this.dialog = None;
                    window.focus(&this.chat.focus_handle(cx));
                }
                SessionEvent::LoggedOut => {
                    this.dialog = None;
                    window.focus(&this.login.focus_handle(cx));
                }
                _ => {}
            }),
            cx.subscribe_in(&chat, window, |this, _, event, window, cx| {
                this.on_chat_event(event, window, cx);
            }),
            // The daemon notifies for the conversation on screen only while the window is
            // not the active one.
            cx.observe_window_activation(window, |this, window, cx| {
                let active = window.is_window_active();
                this.session
                    .update(cx, |s, cx| s.set_window_active(active, cx));
            }),
        ];
        window.focus(&login.focus_handle(cx));
        Root {
            session,
            login,
            chat,
            dialog: None,
            focus: cx.focus_handle(),
            title: String::new(),
            _subscriptions: subscriptions,
        }
    }

    fn on_chat_event(&mut self, event: &ChatEvent, window: &mut Window, cx: &mut Context<Self>) {
        match event {
            ChatEvent::OpenImage(path) => {
                let path = path.clone();
                let viewer = cx.new(|cx| ImageViewer::new(path, window, cx));
                self.show(Dialog::Image(viewer), window, cx);
            }
            ChatEvent::EditGroup(group) => self.open_group_dialog(group.clone(), window, cx),
            ChatEvent::ShowKeys(peer) => {
                let session = self.session.clone();
                let peer = peer.clone();
                let keys = cx.new(|cx| KeysDialog::new(session, peer, window, cx));
                self.show(Dialog::Keys(keys), window, cx);
            }
        }
    }

    /// Opens the Create/Amend Group dialog, on `group` if named.
    pub fn open_group_dialog(
        &mut self,
        group: Option<String>,
        window: &mut Window,
        cx: &mut Context<Self>,
    ) {
        let session = self.session.clone();
        let dialog = cx.new(|cx| GroupDialog::new(session, group, window, cx));
        self.show(Dialog::Group(dialog), window, cx);
    }

    fn show(&mut self, dialog: Dialog, window: &mut Window, cx: &mut Context<Self>) {
        let closed = match &dialog {
            Dialog::Group(d) => cx.subscribe_in(d, window, Self::dismissed),
            Dialog::Keys(d) => cx.subscribe_in(d, window, Self::dismissed),
            Dialog::Image(d) => cx.subscribe_in(d, window, Self::dismissed),
        };
        self._subscriptions.push(closed);
        self.dialog = Some(dialog);
        cx.notify();
    }

    fn dismissed<E>(
        &mut self,
        _: &Entity<E>,
        _: &Dismissed,
        window: &mut Window,
        cx: &mut Context<Self>,
    ) {
        self.close_dialog(&CloseDialog, window, cx);
    }

    fn close_dialog(&mut self, _: &CloseDialog, window: &mut Window, cx: &mut Context<Self>) {
        if self.dialog.take().is_some() {
            window.focus(&self.chat.focus_handle(cx));
            cx.notify();
        } else {
            // Escape also cancels the image-path field.
            self.chat.update(cx, |chat, cx| {
                if chat.image_path.take().is_some() {
                    cx.notify();
                }
            });
        }
    }

    fn logged_in(&self, cx: &App) -> bool {
        matches!(self.session.read(cx).phase, Phase::LoggedIn { .. })
    }

    fn next_conversation(&mut self, _: &NextConversation, _: &mut Window, cx: &mut Context<Self>) {
        self.chat.update(cx, |c, cx| c.step_conversation(1, cx));
    }

    fn previous_conversation(
        &mut self,
        _: &PreviousConversation,
        _: &mut Window,
        cx: &mut Context<Self>,
    ) {
        self.chat.update(cx, |c, cx| c.step_conversation(-1, cx));
    }

    fn new_group(&mut self, _: &NewGroup, window: &mut Window, cx: &mut Context<Self>) {
        if self.logged_in(cx) {
            self.open_group_dialog(None, window, cx);
        }
    }

    fn show_keys(&mut self, _: &ShowKeys, window: &mut Window, cx: &mut Context<Self>) {
        if self.logged_in(cx) {
            let peer = match &self.session.read(cx).selected {
                Some(ConversationRef::User(user)) => Some(user.clone()),
                _ => None,
            };
            self.on_chat_event(&ChatEvent::ShowKeys(peer), window, cx);
        }
    }

    fn send_image(&mut self, _: &SendImage, window: &mut Window, cx: &mut Context<Self>) {
        if self.logged_in(cx) {
            self.chat.update(cx, |c, cx| c.choose_image(window, cx));
        }
    }

    fn toggle_theme(&mut self, _: &ToggleTheme, window: &mut Window, cx: &mut Context<Self>) {
        let next = Theme::get(cx).appearance.toggled();
        crate::set_appearance(next, cx);
        window.refresh();
    }

    /// The window title: the app, the user and the conversation on screen, and unread
    /// messages elsewhere.
    #[must_use]
    pub fn title(&self, cx: &App) -> String {
        let session = self.session.read(cx);
        let mut title = "FastChat".to_owned();
        if let Some(user) = session.username() {
            title.push_str(&format!(" — {user}"));
            if let Some(selected) = &session.selected {
                title.push_str(&format!(" · {selected}"));
            }
            let unread: u64 = session.conversations.iter().map(|c| c.unread).sum();
            if unread > 0 {
                title.push_str(&format!(" ({unread} unread)"));
            }
        }
        title
    }
}

impl Focusable for Root {
    fn focus_handle(&self, _: &App) -> FocusHandle {
        self.focus.clone()
    }
}

impl Render for Root {
    fn render(&mut self, window: &mut Window, cx: &mut Context<Self>) -> impl IntoElement {
        let title = self.title(cx);
        if title != self.title {
            window.set_window_title(&title);
            self.title = title;
        }
        let theme = Theme::get(cx).clone();
        let phase = self.session.read(cx).phase.clone();
        let screen = match phase {
            Phase::LoggedIn { .. } => self.chat.clone().into_any_element(),
            Phase::LoggedOut => self.login.clone().into_any_element(),
            Phase::Starting => splash("Connecting to fastchatd…", &theme).into_any_element(),
            Phase::Unreachable(reason) => {
                if self.session.read(cx).status.is_some() {
                    self.chat.clone().into_any_element()
                } else {
                    splash(&format!("{reason}. Retrying…"), &theme).into_any_element()
                }
            }
        };
        div()
            .id("root")
            .key_context("FastChat")
            .track_focus(&self.focus)
            .on_action(cx.listener(Self::next_conversation))
            .on_action(cx.listener(Self::previous_conversation))
            .on_action(cx.listener(Self::new_group))
            .on_action(cx.listener(Self::show_keys))
            .on_action(cx.listener(Self::send_image))
            .on_action(cx.listener(Self::toggle_theme))
            .on_action(cx.listener(Self::close_dialog))
            .size_full()
            .relative()
            .bg(theme.background)
            .text_color(theme.text)
            .text_size(px(14.))
            .child(screen)
            .children(self.dialog.as_ref().map(|dialog| {
                div()
                    .id("scrim")
                    .absolute()
                    .top_0()
                    .left_0()
                    .size_full()
                    .flex()
                    .items_center()
                    .justify_center()
                    .bg(theme.scrim)
                    .occlude()
                    .child(dialog.view())
            }))
    }
}

fn splash(text: &str, theme: &Theme) -> gpui::Div {
    div()
        .size_full()
        .flex()
        .items_center()
        .justify_center()
        .text_color(theme.muted)
        .child(SharedString::from(text.to_owned()))
}

/// Which theme fits the desktop's own appearance.
#[must_use]
pub fn appearance_of(window: gpui::WindowAppearance) -> Appearance {
    match window {
        gpui::WindowAppearance::Dark | gpui::WindowAppearance::VibrantDark => Appearance::Dark,
        gpui::WindowAppearance::Light | gpui::WindowAppearance::VibrantLight => Appearance::Light,
    }
}
