//! Small pieces every view uses.

use gpui::{
    App, Div, ElementId, FontWeight, InteractiveElement, IntoElement, ParentElement, SharedString,
    Stateful, Styled, div, px,
};

use crate::theme::Theme;

/// How a button looks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The main action of a form or pane.
    Primary,
    Secondary,
}

/// A button: the caller adds `.on_click(...)`.
pub fn button(
    id: impl Into<ElementId>,
    label: impl Into<SharedString>,
    kind: Kind,
    cx: &App,
) -> Stateful<Div> {
    let theme = Theme::get(cx);
    let (bg, fg, border) = match kind {
        Kind::Primary => (theme.accent, theme.on_accent, theme.accent),
        Kind::Secondary => (theme.elevated, theme.text, theme.border),
    };
    let hover = bg.opacity(0.85);
    div()
        .id(id)
        .px_3()
        .py_1()
        .rounded(px(6.))
        .border_1()
        .border_color(border)
        .bg(bg)
        .text_color(fg)
        .font_weight(FontWeight::MEDIUM)
        .cursor_pointer()
        .hover(move |style| style.bg(hover))
        .child(label.into())
}

/// A text input with a label above it (the input draws its own frame).
pub fn field(label: impl Into<SharedString>, input: impl IntoElement, cx: &App) -> Div {
    let theme = Theme::get(cx);
    div()
        .flex()
        .flex_col()
        .gap_1()
        .child(div().text_sm().text_color(theme.muted).child(label.into()))
        .child(input)
}

/// An error line, shown in place under what it is about.
pub fn error_line(message: Option<&str>, cx: &App) -> Option<Div> {
    let theme = Theme::get(cx);
    message.map(|m| {
        div()
            .text_sm()
            .text_color(theme.danger)
            .child(SharedString::from(m.to_owned()))
    })
}
