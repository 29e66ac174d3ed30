//! `fastchat-desktop`: the FastChat window. It talks only to the user's `fastchatd`, through
//! the typed RPC client of `fastchat-api`.
//!
//! - [`backend`] runs RPC calls on a tokio runtime and hands their results to gpui;
//! - [`model::Session`] is the session as the window knows it (models emit events);
//! - [`views`] render the model and call its methods (the model/view split of Zed's chat
//!   panel); [`input::TextInput`] is the text field they are built from.

pub mod backend;
pub mod input;
pub mod model;
pub mod theme;
pub mod views;

use gpui::{
    App, AppContext, Bounds, KeyBinding, TitlebarOptions, WindowBounds, WindowHandle,
    WindowOptions, actions, px, size,
};

use crate::backend::Backend;
use crate::model::Session;
use crate::theme::{Appearance, Theme};
use crate::views::root::Root;

actions!(
    fastchat,
    [
        /// Show the next conversation of the sidebar.
        NextConversation,
        /// Show the previous conversation of the sidebar.
        PreviousConversation,
        /// Open the Create/Amend Group dialog.
        NewGroup,
        /// Show safety numbers (and the peer's, in a direct conversation).
        ShowKeys,
        /// Pick an image to send to the conversation on screen.
        SendImage,
        /// Switch between the light and the dark theme.
        ToggleTheme,
        /// Close the dialog on screen.
        CloseDialog,
        /// Quit the app (the daemon keeps running).
        Quit,
    ]
);

/// Sets the theme and the key bindings. Call once, before opening a window.
pub fn init(appearance: Appearance, cx: &mut App) {
    set_appearance(appearance, cx);
    input::bind_keys(cx);
    cx.bind_keys([
        KeyBinding::new("ctrl-tab", NextConversation, None),
        KeyBinding::new("ctrl-shift-tab", PreviousConversation, None),
        KeyBinding::new("alt-down", NextConversation, None),
        KeyBinding::new("alt-up", PreviousConversation, None),
        KeyBinding::new("secondary-n", NewGroup, None),
        KeyBinding::new("secondary-k", ShowKeys, None),
        KeyBinding::new("secondary-o", SendImage, None),
        KeyBinding::new("secondary-shift-t", ToggleTheme, None),
        KeyBinding::new("escape", CloseDialog, None),
        KeyBinding::new("secondary-q", Quit, None),
    ]);
    cx.on_action(|_: &Quit, cx| cx.quit());
}

/// Switches the theme (every window redraws in it).
pub fn set_appearance(appearance: Appearance, cx: &mut App) {
    cx.set_global(Theme::new(appearance));
    cx.refresh_windows();
}

/// Opens the FastChat window on the daemon behind `backend`.
///
/// # Errors
/// If the platform cannot open a window.
pub fn open_window(backend: Backend, cx: &mut App) -> anyhow::Result<WindowHandle<Root>> {
    let bounds = Bounds::centered(None, size(px(1000.), px(700.)), cx);
    let options = WindowOptions {
        window_bounds: Some(WindowBounds::Windowed(bounds)),
        titlebar: Some(TitlebarOptions {
            title: Some("FastChat".into()),
            ..Default::default()
        }),
        app_id: Some("fastchat-desktop".to_owned()),
        window_min_size: Some(size(px(640.), px(420.))),
        ..Default::default()
    };
    cx.open_window(options, |window, cx| {
        let session = cx.new(|cx| Session::new(backend, cx));
        cx.new(|cx| Root::new(session, window, cx))
    })
}
