//! The tray icon (`--tray`): a StatusNotifierItem over D-Bus (ksni), the protocol KDE,
//! GNOME's AppIndicator extension and most Linux panels show. Its title and tooltip carry
//! the unread count; its menu opens the desktop app or stops the daemon.

use std::sync::Arc;

use ksni::TrayMethods;
use ksni::menu::{MenuItem, StandardItem};
use tokio::sync::{Notify, watch};

#[derive(Debug)]
struct FastChatTray {
    profile: String,
    unread: u64,
    quit: Arc<Notify>,
}

impl FastChatTray {
    fn title(&self) -> String {
        match self.unread {
            0 => "FastChat".to_owned(),
            n => format!("FastChat: {n} unread"),
        }
    }
}

impl ksni::Tray for FastChatTray {
    fn id(&self) -> String {
        format!("fastchat-{}", self.profile)
    }

    fn title(&self) -> String {
        FastChatTray::title(self)
    }

    fn icon_name(&self) -> String {
        if self.unread > 0 {
            "mail-unread".to_owned()
        } else {
            "mail-read".to_owned()
        }
    }

    fn tool_tip(&self) -> ksni::ToolTip {
        ksni::ToolTip {
            title: FastChatTray::title(self),
            description: format!("profile {}", self.profile),
            ..Default::default()
        }
    }

    fn activate(&mut self, _x: i32, _y: i32) {
        open_desktop(&self.profile);
    }

    fn menu(&self) -> Vec<MenuItem<Self>> {
        vec![
            StandardItem {
                label: "Open FastChat".into(),
                activate: Box::new(|tray: &mut Self| open_desktop(&tray.profile)),
                ..Default::default()
            }
            .into(),
            MenuItem::Separator,
            StandardItem {
                label: "Quit".into(),
                activate: Box::new(|tray: &mut Self| tray.quit.notify_one()),
                ..Default::default()
            }
            .into(),
        ]
    }
}

/// Starts `fastchat-desktop` for the profile (from the daemon's folder, else PATH).
fn open_desktop(profile: &str) {
    let name = format!("fastchat-desktop{}", std::env::consts::EXE_SUFFIX);
    let program = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|d| d.join(&name)))
        .filter(|p| p.is_file())
        .unwrap_or_else(|| name.into());
    if let Err(e) = std::process::Command::new(&program)
        .args(["--profile", profile])
        .stdin(std::process::Stdio::null())
        .spawn()
    {
        tracing::warn!(program = %program.display(), error = %e, "cannot open the desktop app");
    }
}

/// Shows the tray until `shutdown`, following the unread count. "Quit" notifies `quit`.
pub async fn run(
    profile: String,
    mut unread: watch::Receiver<u64>,
    quit: Arc<Notify>,
    mut shutdown: watch::Receiver<bool>,
) {
    let tray = FastChatTray {
        profile,
        unread: *unread.borrow_and_update(),
        quit,
    };
    // Without a StatusNotifierWatcher yet (no panel running), keep the item up: a panel
    // that starts later finds it.
    let handle = match tray.assume_sni_available(true).spawn().await {
        Ok(h) => h,
        Err(e) => {
            tracing::warn!(error = %e, "cannot show the tray icon");
            return;
        }
    };
    loop {
        tokio::select! {
            changed = unread.changed() => {
                if changed.is_err() {
                    break;
                }
                let n = *unread.borrow_and_update();
                handle.update(|t| t.unread = n).await;
            }
            _ = shutdown.changed() => break,
        }
    }
    handle.shutdown().await;
}
