//! The two themes, light and dark, as a gpui global every view reads its colours from.

use gpui::{App, Global, Hsla, rgb};

/// Which theme is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Appearance {
    Light,
    Dark,
}

impl Appearance {
    #[must_use]
    pub fn toggled(self) -> Self {
        match self {
            Appearance::Light => Appearance::Dark,
            Appearance::Dark => Appearance::Light,
        }
    }
}

/// The colours of one theme.
#[derive(Debug, Clone)]
pub struct Theme {
    pub appearance: Appearance,
    /// The conversation pane.
    pub background: Hsla,
    /// The sidebar and the status bar.
    pub surface: Hsla,
    /// Text fields, dialogs and cards.
    pub elevated: Hsla,
    pub border: Hsla,
    pub text: Hsla,
    /// Secondary text: times, hints, placeholders.
    pub muted: Hsla,
    /// Buttons, the selected conversation, the cursor.
    pub accent: Hsla,
    /// Text on `accent`.
    pub on_accent: Hsla,
    /// Selected text's background.
    pub selection: Hsla,
    /// Errors.
    pub danger: Hsla,
    /// Good news: connected, verified.
    pub success: Hsla,
    /// The bubbles of one's own messages.
    pub own_bubble: Hsla,
    /// The bubbles of everyone else's.
    pub other_bubble: Hsla,
    /// Behind modal dialogs.
    pub scrim: Hsla,
}

impl Global for Theme {}

fn color(hex: u32) -> Hsla {
    rgb(hex).into()
}

impl Theme {
    #[must_use]
    pub fn light() -> Self {
        Theme {
            appearance: Appearance::Light,
            background: color(0xffffff),
            surface: color(0xf3f4f6),
            elevated: color(0xffffff),
            border: color(0xd1d5db),
            text: color(0x111827),
            muted: color(0x6b7280),
            accent: color(0x2563eb),
            on_accent: color(0xffffff),
            selection: color(0xbfdbfe),
            danger: color(0xb91c1c),
            success: color(0x15803d),
            own_bubble: color(0xdbeafe),
            other_bubble: color(0xf3f4f6),
            scrim: Hsla {
                a: 0.45,
                ..color(0x000000)
            },
        }
    }

    #[must_use]
    pub fn dark() -> Self {
        Theme {
            appearance: Appearance::Dark,
            background: color(0x1f2329),
            surface: color(0x16191d),
            elevated: color(0x2a2f36),
            border: color(0x3b424c),
            text: color(0xe5e7eb),
            muted: color(0x9ca3af),
            accent: color(0x3b82f6),
            on_accent: color(0xffffff),
            selection: color(0x1e3a8a),
            danger: color(0xf87171),
            success: color(0x4ade80),
            own_bubble: color(0x1e3a5f),
            other_bubble: color(0x2a2f36),
            scrim: Hsla {
                a: 0.6,
                ..color(0x000000)
            },
        }
    }

    #[must_use]
    pub fn new(appearance: Appearance) -> Self {
        match appearance {
            Appearance::Light => Theme::light(),
            Appearance::Dark => Theme::dark(),
        }
    }

    /// The theme in use (set by [`crate::init`]; light until then).
    #[must_use]
    pub fn get(cx: &App) -> &Theme {
        cx.try_global::<Theme>().unwrap_or(&LIGHT_FALLBACK)
    }
}

static LIGHT_FALLBACK: std::sync::LazyLock<Theme> = std::sync::LazyLock::new(Theme::light);
