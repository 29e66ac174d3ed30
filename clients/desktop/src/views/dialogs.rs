//! The modal dialogs: Create/Amend Group (as the original had it, plus the member list),
//! keys (one's own safety number, a peer's, and verifying it), and an image at full size.

use std::path::PathBuf;

use fastchat_api::{ConversationRef, FingerprintInfo, MemberInfo, codes};
use gpui::{
    App, AppContext, Context, Entity, EventEmitter, FocusHandle, Focusable, FontWeight,
    InteractiveElement, IntoElement, ObjectFit, ParentElement, Render, SharedString,
    StatefulInteractiveElement, Styled, StyledImage, Window, div, img, px,
};

use crate::input::{InputEvent, TextInput};
use crate::model::{Session, names};
use crate::theme::Theme;
use crate::views::widgets::{Kind, button, error_line, field};

/// A dialog is done (it closes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dismissed;

/// The frame every dialog sits in.
fn card(title: &str, cx: &App) -> gpui::Div {
    let theme = Theme::get(cx);
    div()
        .w(px(460.))
        .p_5()
        .flex()
        .flex_col()
        .gap_3()
        .rounded(px(10.))
        .border_1()
        .border_color(theme.border)
        .bg(theme.background)
        .text_color(theme.text)
        .child(
            div()
                .text_lg()
                .font_weight(FontWeight::BOLD)
                .child(SharedString::from(title.to_owned())),
        )
}

/// Create or amend a group: its name, members to add and to remove (comma-separated), as
/// in the original; an existing group's members are listed.
#[derive(Debug)]
pub struct GroupDialog {
    session: Entity<Session>,
    pub name: Entity<TextInput>,
    pub add: Entity<TextInput>,
    pub remove: Entity<TextInput>,
    /// The members of the group named, when it exists.
    pub members: Option<Vec<MemberInfo>>,
    pub error: Option<String>,
    pub busy: bool,
}

impl EventEmitter<Dismissed> for GroupDialog {}

impl GroupDialog {
    /// The dialog, on `group` if one is given.
    pub fn new(
        session: Entity<Session>,
        group: Option<String>,
        window: &mut Window,
        cx: &mut Context<Self>,
    ) -> Self {
        let name = cx.new(|cx| TextInput::new("group name", false, cx));
        let add = cx.new(|cx| TextInput::new("e.g. bob, carol", false, cx));
        let remove = cx.new(|cx| TextInput::new("e.g. dave", false, cx));
        // Enter in the name moves on to the members; Enter there saves.
        cx.subscribe_in(&name, window, |this, _, event, window, cx| {
            if *event == InputEvent::Submit {
                window.focus(&this.add.focus_handle(cx));
            }
        })
        .detach();
        for input in [&add, &remove] {
            cx.subscribe_in(input, window, |this, _, event, _, cx| {
                if *event == InputEvent::Submit {
                    this.submit(cx);
                }
            })
            .detach();
        }
        cx.subscribe(&name, |this, _, event, cx| {
            if *event == InputEvent::Changed {
                this.members = None;
                this.load_members(cx);
            }
        })
        .detach();
        let mut dialog = GroupDialog {
            session,
            name,
            add,
            remove,
            members: None,
            error: None,
            busy: false,
        };
        if let Some(group) = group {
            dialog.name.update(cx, |n, cx| n.set_text(group, cx));
            dialog.load_members(cx);
            window.focus(&dialog.add.focus_handle(cx));
        } else {
            window.focus(&dialog.name.focus_handle(cx));
        }
        dialog
    }

    fn group_name(&self, cx: &App) -> String {
        self.name.read(cx).text().trim().to_owned()
    }

    /// Whether the name is one of our groups (so the dialog amends rather than creates).
    pub fn exists(&self, cx: &App) -> bool {
        let name = ConversationRef::Group(self.group_name(cx));
        self.session
            .read(cx)
            .conversations
            .iter()
            .any(|c| c.conversation == name)
    }

    fn load_members(&mut self, cx: &mut Context<Self>) {
        if !self.exists(cx) {
            return;
        }
        let name = self.group_name(cx);
        let call = self.session.read(cx).group_members(name.clone());
        cx.spawn(async move |this, cx| {
            let members = call.await;
            let _ = this.update(cx, |this, cx| {
                // Only if the name was not changed meanwhile.
                if this.group_name(cx) == name
                    && let Ok(members) = members
                {
                    this.members = Some(members);
                    cx.notify();
                }
            });
        })
        .detach();
    }

    /// Creates the group, or amends it if it exists.
    pub fn submit(&mut self, cx: &mut Context<Self>) {
        if self.busy {
            return;
        }
        let name = self.group_name(cx);
        let add = names(self.add.read(cx).text());
        let remove = names(self.remove.read(cx).text());
        if name.is_empty() {
            self.error = Some("Give the group a name.".to_owned());
            cx.notify();
            return;
        }
        let exists = self.exists(cx);
        if exists && add.is_empty() && remove.is_empty() {
            self.error = Some("Name members to add or to remove.".to_owned());
            cx.notify();
            return;
        }
        if !exists && !remove.is_empty() {
            self.error = Some(format!("There is no group {name} to remove members from."));
            cx.notify();
            return;
        }
        self.busy = true;
        self.error = None;
        let task = self.session.update(cx, |s, cx| {
            if exists {
                s.amend_group(name, add, remove, cx)
            } else {
                s.create_group(name, add, cx)
            }
        });
        cx.spawn(async move |this, cx| {
            let result = task.await;
            this.update(cx, |this, cx| {
                this.busy = false;
                match result {
                    Ok(()) => cx.emit(Dismissed),
                    Err(e) => {
                        this.error = Some(match e.code {
                            Some(codes::UNKNOWN_USER) => format!("{} (check the names)", e.message),
                            Some(codes::FORBIDDEN) => {
                                format!("{} (only the group's admins may change it)", e.message)
                            }
                            _ => e.message,
                        });
                    }
                }
                cx.notify();
            })
        })
        .detach();
        cx.notify();
    }
}

impl Focusable for GroupDialog {
    fn focus_handle(&self, cx: &App) -> FocusHandle {
        self.name.focus_handle(cx)
    }
}

impl Render for GroupDialog {
    fn render(&mut self, _window: &mut Window, cx: &mut Context<Self>) -> impl IntoElement {
        let theme = Theme::get(cx).clone();
        let exists = self.exists(cx);
        let action = match (exists, self.busy) {
            (true, false) => "Amend group",
            (false, false) => "Create group",
            (_, true) => "Saving…",
        };
        card(
            if exists {
                "Amend group"
            } else {
                "Create group"
            },
            cx,
        )
        .id("group-dialog")
        .child(field("Group name", self.name.clone(), cx))
        .child(field(
            "Members to add (comma-separated)",
            self.add.clone(),
            cx,
        ))
        .child(field(
            "Members to remove (comma-separated)",
            self.remove.clone(),
            cx,
        ))
        .children(self.members.as_ref().map(|members| {
            div()
                .flex()
                .flex_col()
                .gap_1()
                .child(div().text_sm().text_color(theme.muted).child("Members"))
                .children(members.iter().map(|m| {
                    let label = if m.admin {
                        format!("{} (admin)", m.username)
                    } else {
                        m.username.clone()
                    };
                    div().child(SharedString::from(label))
                }))
        }))
        .children(error_line(self.error.as_deref(), cx))
        .child(
            div()
                .flex()
                .justify_end()
                .gap_2()
                .child(
                    button("group-cancel", "Cancel", Kind::Secondary, cx)
                        .on_click(cx.listener(|_, _, _, cx| cx.emit(Dismissed))),
                )
                .child(
                    button("group-submit", action, Kind::Primary, cx)
                        .on_click(cx.listener(|this, _, _, cx| this.submit(cx))),
                ),
        )
    }
}

/// Safety numbers: one's own, a peer's, and verifying the peer's.
#[derive(Debug)]
pub struct KeysDialog {
    session: Entity<Session>,
    pub own: Option<FingerprintInfo>,
    pub peer: Option<FingerprintInfo>,
    peer_name: Option<String>,
    /// Where the number the peer reads out is typed.
    pub entered: Entity<TextInput>,
    pub error: Option<String>,
    pub notice: Option<String>,
}

impl EventEmitter<Dismissed> for KeysDialog {}

impl KeysDialog {
    pub fn new(
        session: Entity<Session>,
        peer: Option<String>,
        window: &mut Window,
        cx: &mut Context<Self>,
    ) -> Self {
        let entered = cx.new(|cx| TextInput::new("the safety number they read to you", false, cx));
        cx.subscribe_in(&entered, window, |this, _, event, _, cx| {
            if *event == InputEvent::Submit {
                this.verify(cx);
            }
        })
        .detach();
        window.focus(&entered.focus_handle(cx));
        let dialog = KeysDialog {
            session,
            own: None,
            peer: None,
            peer_name: peer,
            entered,
            error: None,
            notice: None,
        };
        dialog.load(cx);
        dialog
    }

    fn load(&self, cx: &mut Context<Self>) {
        let session = self.session.read(cx);
        let own = session.fingerprint(None);
        let peer = self.peer_name.clone().map(|p| session.fingerprint(Some(p)));
        cx.spawn(async move |this, cx| {
            let own = own.await;
            let peer = match peer {
                Some(p) => Some(p.await),
                None => None,
            };
            let _ = this.update(cx, |this, cx| {
                match own {
                    Ok(own) => this.own = Some(own),
                    Err(e) => this.error = Some(e.message),
                }
                match peer {
                    Some(Ok(peer)) => this.peer = Some(peer),
                    Some(Err(e)) => this.error = Some(e.message),
                    None => {}
                }
                cx.notify();
            });
        })
        .detach();
    }

    /// Marks the peer's key verified if the number typed is theirs.
    pub fn verify(&mut self, cx: &mut Context<Self>) {
        let Some(peer) = self.peer_name.clone() else {
            return;
        };
        let entered = self.entered.read(cx).text().trim().to_owned();
        if entered.is_empty() {
            self.error = Some("Type the safety number they read to you.".to_owned());
            cx.notify();
            return;
        }
        let call = self.session.read(cx).verify(peer, entered);
        cx.spawn(async move |this, cx| {
            let result = call.await;
            let _ = this.update(cx, |this, cx| {
                match result {
                    Ok(v) if v.verified => {
                        this.error = None;
                        this.notice = Some(format!("{}'s key is verified.", v.username));
                        if let Some(p) = &mut this.peer {
                            p.verified = true;
                        }
                    }
                    Ok(v) => {
                        this.error = Some(format!("That is not {}'s safety number.", v.username));
                    }
                    Err(e) => this.error = Some(e.message),
                }
                cx.notify();
            });
        })
        .detach();
    }
}

impl Focusable for KeysDialog {
    fn focus_handle(&self, cx: &App) -> FocusHandle {
        self.entered.focus_handle(cx)
    }
}

impl Render for KeysDialog {
    fn render(&mut self, _window: &mut Window, cx: &mut Context<Self>) -> impl IntoElement {
        let theme = Theme::get(cx).clone();
        let number = |info: &FingerprintInfo| {
            div()
                .font_family("monospace")
                .child(SharedString::from(info.fingerprint.clone()))
        };
        card("Safety numbers", cx)
            .id("keys-dialog")
            .children(self.own.as_ref().map(|own| {
                div()
                    .flex()
                    .flex_col()
                    .gap_1()
                    .child(
                        div()
                            .text_sm()
                            .text_color(theme.muted)
                            .child(SharedString::from(format!(
                                "Yours ({}): read it to the people you talk to",
                                own.username
                            ))),
                    )
                    .child(number(own))
            }))
            .children(self.peer.as_ref().map(|peer| {
                let state = if peer.verified {
                    ("verified", theme.success)
                } else {
                    ("not verified", theme.danger)
                };
                div()
                    .flex()
                    .flex_col()
                    .gap_1()
                    .child(
                        div()
                            .flex()
                            .gap_2()
                            .text_sm()
                            .child(
                                div()
                                    .text_color(theme.muted)
                                    .child(SharedString::from(format!("{}'s", peer.username))),
                            )
                            .child(div().text_color(state.1).child(state.0)),
                    )
                    .child(number(peer))
            }))
            .children(self.peer_name.is_some().then(|| {
                field(
                    "Verify: the number they read to you",
                    self.entered.clone(),
                    cx,
                )
            }))
            .children(error_line(self.error.as_deref(), cx))
            .children(self.notice.clone().map(|n| {
                div()
                    .text_sm()
                    .text_color(theme.success)
                    .child(SharedString::from(n))
            }))
            .child(
                div()
                    .flex()
                    .justify_end()
                    .gap_2()
                    .child(
                        button("keys-close", "Close", Kind::Secondary, cx)
                            .on_click(cx.listener(|_, _, _, cx| cx.emit(Dismissed))),
                    )
                    .children(self.peer_name.is_some().then(|| {
                        button("keys-verify", "Verify", Kind::Primary, cx)
                            .on_click(cx.listener(|this, _, _, cx| this.verify(cx)))
                    })),
            )
    }
}

/// An image at full size (scaled down to fit the window); a click or Escape closes it.
#[derive(Debug)]
pub struct ImageViewer {
    pub path: PathBuf,
    focus: FocusHandle,
}

impl EventEmitter<Dismissed> for ImageViewer {}

impl ImageViewer {
    pub fn new(path: PathBuf, window: &mut Window, cx: &mut Context<Self>) -> Self {
        let focus = cx.focus_handle();
        window.focus(&focus);
        ImageViewer { path, focus }
    }
}

impl Focusable for ImageViewer {
    fn focus_handle(&self, _: &App) -> FocusHandle {
        self.focus.clone()
    }
}

impl Render for ImageViewer {
    fn render(&mut self, _window: &mut Window, cx: &mut Context<Self>) -> impl IntoElement {
        div()
            .id("image-viewer")
            .track_focus(&self.focus)
            .size_full()
            .p_6()
            .flex()
            .items_center()
            .justify_center()
            .cursor_pointer()
            .on_click(cx.listener(|_, _, _, cx| cx.emit(Dismissed)))
            .child(
                img(self.path.clone())
                    .size_full()
                    .object_fit(ObjectFit::Contain),
            )
    }
}
