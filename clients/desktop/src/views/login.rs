//! The log-in screen: username, password, Log in or Sign up, errors shown in place.

use fastchat_api::codes;
use gpui::{
    App, AppContext, Context, Entity, FocusHandle, Focusable, FontWeight, InteractiveElement,
    IntoElement, ParentElement, Render, SharedString, StatefulInteractiveElement, Styled, Window,
    div, px,
};

use crate::backend::ApiFailure;
use crate::input::{InputEvent, TextInput};
use crate::model::Session;
use crate::theme::Theme;
use crate::views::widgets::{Kind, button, error_line, field};

/// The log-in and sign-up form.
#[derive(Debug)]
pub struct LoginView {
    session: Entity<Session>,
    pub username: Entity<TextInput>,
    pub password: Entity<TextInput>,
    pub error: Option<String>,
    pub busy: bool,
}

impl LoginView {
    pub fn new(session: Entity<Session>, window: &mut Window, cx: &mut Context<Self>) -> Self {
        let username = cx.new(|cx| TextInput::new("username", false, cx));
        let password = cx.new(|cx| {
            let mut input = TextInput::new("password", false, cx);
            input.set_masked(true);
            input
        });
        cx.subscribe_in(&username, window, |this, _, event, window, cx| {
            if *event == InputEvent::Submit {
                window.focus(&this.password.focus_handle(cx));
            }
        })
        .detach();
        cx.subscribe_in(&password, window, |this, _, event, _, cx| {
            if *event == InputEvent::Submit {
                this.submit(false, cx);
            }
        })
        .detach();
        LoginView {
            session,
            username,
            password,
            error: None,
            busy: false,
        }
    }

    /// Logs in (or signs up) with what the fields hold.
    pub fn submit(&mut self, signup: bool, cx: &mut Context<Self>) {
        if self.busy {
            return;
        }
        let username = self.username.read(cx).text().trim().to_owned();
        let password = self.password.read(cx).text().to_owned();
        if username.is_empty() || password.is_empty() {
            self.error = Some("Enter a username and a password.".to_owned());
            cx.notify();
            return;
        }
        self.busy = true;
        self.error = None;
        let task = self
            .session
            .update(cx, |s, cx| s.log_in(username, password, signup, cx));
        cx.spawn(async move |this, cx| {
            let result = task.await;
            this.update(cx, |this, cx| {
                this.busy = false;
                match result {
                    Ok(_) => this.password.update(cx, |p, cx| p.clear(cx)),
                    Err(e) => this.error = Some(explain(&e, signup)),
                }
                cx.notify();
            })
        })
        .detach();
        cx.notify();
    }
}

/// The daemon's error, said for this form.
fn explain(e: &ApiFailure, signup: bool) -> String {
    match e.code {
        Some(codes::BAD_CREDENTIALS) => "Wrong username or password.".to_owned(),
        Some(codes::USERNAME_TAKEN) => {
            "That username is taken: log in, or pick another.".to_owned()
        }
        Some(codes::UNAVAILABLE) if signup => {
            "No server answered, so no account was made. Try again in a moment.".to_owned()
        }
        Some(codes::UNAVAILABLE) => "No server answered. Try again in a moment.".to_owned(),
        _ => e.message.clone(),
    }
}

impl Focusable for LoginView {
    fn focus_handle(&self, cx: &App) -> FocusHandle {
        self.username.focus_handle(cx)
    }
}

impl Render for LoginView {
    fn render(&mut self, _window: &mut Window, cx: &mut Context<Self>) -> impl IntoElement {
        let theme = Theme::get(cx).clone();
        let profile = self
            .session
            .read(cx)
            .status
            .as_ref()
            .map(|s| s.profile.clone())
            .unwrap_or_default();
        div()
            .id("login")
            .size_full()
            .flex()
            .items_center()
            .justify_center()
            .bg(theme.surface)
            .child(
                div()
                    .w(px(360.))
                    .p_6()
                    .flex()
                    .flex_col()
                    .gap_4()
                    .rounded(px(10.))
                    .border_1()
                    .border_color(theme.border)
                    .bg(theme.background)
                    .child(
                        div()
                            .text_xl()
                            .font_weight(FontWeight::BOLD)
                            .child("FastChat"),
                    )
                    .child(
                        div()
                            .text_sm()
                            .text_color(theme.muted)
                            .child(SharedString::from(format!(
                                "Log in, or sign up for a new account (profile {profile})."
                            ))),
                    )
                    .child(field("Username", self.username.clone(), cx))
                    .child(field("Password", self.password.clone(), cx))
                    .children(error_line(self.error.as_deref(), cx))
                    .child(
                        div()
                            .flex()
                            .gap_2()
                            .justify_end()
                            .child(
                                button("signup", "Sign up", Kind::Secondary, cx)
                                    .on_click(cx.listener(|this, _, _, cx| this.submit(true, cx))),
                            )
                            .child(
                                button(
                                    "login",
                                    if self.busy { "Logging in…" } else { "Log in" },
                                    Kind::Primary,
                                    cx,
                                )
                                .on_click(cx.listener(|this, _, _, cx| this.submit(false, cx))),
                            ),
                    ),
            )
    }
}
