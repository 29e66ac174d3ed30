//! The window against a real server and real daemons, headless (gpui's test platform draws
//! nothing, but runs the views, their actions and keystrokes).

#![allow(clippy::unwrap_used)]

mod support;

use fastchat_api::{ConversationRef, FastChatApiClient, MessageKind};
use fastchat_desktop::NewGroup;
use fastchat_desktop::model::Phase;
use fastchat_desktop::views::chat::{ChatEvent, Row};
use fastchat_desktop::views::root::Dialog;
use gpui::TestAppContext;
use support::{PASSWORD, World, root, until};

fn team() -> ConversationRef {
    ConversationRef::Group("team".into())
}

/// Texts of the messages the pane shows.
fn pane_texts(
    window: &gpui::WindowHandle<fastchat_desktop::views::root::Root>,
    cx: &mut TestAppContext,
) -> Vec<String> {
    let root = root(window, cx);
    cx.read(|cx| {
        root.read(cx)
            .chat
            .read(cx)
            .rows()
            .iter()
            .filter_map(|r| match r {
                Row::Message(m) => m.text.clone(),
                Row::Outgoing(_) => None,
            })
            .collect()
    })
}

/// Alice and bob signed up, in a group `team` that alice made.
fn alice_and_bob_in_team() -> (World, support::User, support::User) {
    let mut world = World::start();
    let alice = world.user("alice");
    let bob = world.user("bob");
    world
        .block(alice.client.create_group("team".into(), vec!["bob".into()]))
        .unwrap();
    (world, alice, bob)
}

/// The group dialog, once it is open.
fn group_dialog(
    root: &gpui::Entity<fastchat_desktop::views::root::Root>,
    cx: &mut TestAppContext,
) -> gpui::Entity<fastchat_desktop::views::dialogs::GroupDialog> {
    until(cx, "the group dialog", |cx| {
        cx.read(|cx| match &root.read(cx).dialog {
            Some(Dialog::Group(d)) => Some(d.clone()),
            _ => None,
        })
    })
}

#[gpui::test]
fn logging_in_typing_and_sending(cx: &mut TestAppContext) {
    let (world, alice, bob) = alice_and_bob_in_team();
    world.block(alice.client.logout()).unwrap();

    let window = world.window(&alice, cx);
    let root = root(&window, cx);
    let session = cx.read(|cx| root.read(cx).session.clone());
    until(cx, "the log-in screen", |cx| {
        cx.read(|cx| (session.read(cx).phase == Phase::LoggedOut).then_some(()))
    });

    // A wrong password is shown in place and logs nobody in.
    let login = cx.read(|cx| root.read(cx).login.clone());
    cx.simulate_input(window.into(), "alice");
    cx.simulate_keystrokes(window.into(), "enter");
    cx.simulate_input(window.into(), "not the password");
    cx.simulate_keystrokes(window.into(), "enter");
    let error = until(cx, "the log-in error", |cx| {
        cx.read(|cx| login.read(cx).error.clone())
    });
    assert_eq!(error, "Wrong username or password.");
    assert_eq!(
        cx.read(|cx| session.read(cx).phase.clone()),
        Phase::LoggedOut
    );

    login.update(cx, |l, cx| {
        l.password.update(cx, |p, cx| p.set_text(PASSWORD, cx))
    });
    cx.simulate_keystrokes(window.into(), "enter");
    until(cx, "alice logged in, on #team", |cx| {
        cx.read(|cx| {
            let s = session.read(cx);
            (s.username() == Some("alice") && s.selected == Some(team())).then_some(())
        })
    });

    // Typed into the composer (focused after log-in): Shift+Enter is a new line, Enter sends.
    cx.simulate_input(window.into(), "hello team");
    cx.simulate_keystrokes(window.into(), "shift-enter");
    cx.simulate_input(window.into(), "second line");
    cx.simulate_keystrokes(window.into(), "enter");
    let chat = cx.read(|cx| root.read(cx).chat.clone());
    assert_eq!(
        cx.read(|cx| chat.read(cx).composer.read(cx).text().to_owned()),
        ""
    );

    // Bob's daemon has it, exactly as typed.
    let received = until(cx, "bob receiving it", |_| {
        let history = world.block(bob.client.history(team(), None, None)).unwrap();
        history.into_iter().find(|m| m.sender == "alice")
    });
    assert_eq!(received.text.as_deref(), Some("hello team\nsecond line"));
    // And alice's pane shows it, confirmed (no outgoing row left).
    until(cx, "the pane showing the sent message", |cx| {
        let rows = cx.read(|cx| chat.read(cx).rows().to_vec());
        (rows.len() == 1 && matches!(&rows[0], Row::Message(m) if m.seq == received.seq))
            .then_some(())
    });
}

#[gpui::test]
fn arrivals_update_the_pane_and_unread_counts_and_switching_reads_them(cx: &mut TestAppContext) {
    let (world, alice, bob) = alice_and_bob_in_team();
    world
        .block(bob.client.send(team(), "before the window".into()))
        .unwrap();

    let window = world.window(&alice, cx);
    let root = root(&window, cx);
    let session = cx.read(|cx| root.read(cx).session.clone());
    until(cx, "#team on screen with its history", |cx| {
        (pane_texts(&window, cx) == ["before the window"]).then_some(())
    });

    // A message to the conversation on screen appears in the pane and is not unread.
    world
        .block(bob.client.send(team(), "live one".into()))
        .unwrap();
    until(cx, "the live message in the pane", |cx| {
        (pane_texts(&window, cx) == ["before the window", "live one"]).then_some(())
    });
    assert_eq!(cx.read(|cx| session.read(cx).unread(&team())), 0);

    // A direct message elsewhere: a new sidebar entry with one unread, in the title too.
    let direct = ConversationRef::User("bob".into());
    world
        .block(
            bob.client
                .send(ConversationRef::User("alice".into()), "psst".into()),
        )
        .unwrap();
    until(cx, "@bob with one unread", |cx| {
        cx.read(|cx| (session.read(cx).unread(&direct) == 1).then_some(()))
    });
    let title = cx.read(|cx| root.read(cx).title(cx));
    assert_eq!(title, "FastChat — alice · #team (1 unread)");
    // The pane still shows #team.
    assert_eq!(pane_texts(&window, cx), ["before the window", "live one"]);

    // The shortcut moves to the next conversation (newest activity first: @bob is above
    // #team, so "next" from #team wraps around to @bob) and reads it.
    cx.simulate_keystrokes(window.into(), "alt-down");
    until(cx, "@bob on screen", |cx| {
        (pane_texts(&window, cx) == ["psst"]).then_some(())
    });
    assert_eq!(
        cx.read(|cx| session.read(cx).selected.clone()),
        Some(direct.clone())
    );
    assert_eq!(cx.read(|cx| session.read(cx).unread(&direct)), 0);
    // The daemon agrees: nothing is unread (setFocus and history marked it read).
    until(cx, "the daemon counting nothing unread", |_| {
        let status = world.block(alice.client.status()).unwrap();
        (status.unread == 0).then_some(())
    });
    // And it now counts @bob as on screen: a new message there is not unread.
    world
        .block(
            bob.client
                .send(ConversationRef::User("alice".into()), "again".into()),
        )
        .unwrap();
    until(cx, "the second direct message in the pane", |cx| {
        (pane_texts(&window, cx) == ["psst", "again"]).then_some(())
    });
    let status = world.block(alice.client.status()).unwrap();
    assert_eq!(status.unread, 0);

    // Once the app quits nothing is on screen: a message to @bob counts as unread again.
    cx.quit();
    world
        .block(
            bob.client
                .send(ConversationRef::User("alice".into()), "still there?".into()),
        )
        .unwrap();
    until(
        cx,
        "the daemon counting the message after the window closed",
        |_| {
            let status = world.block(alice.client.status()).unwrap();
            (status.unread == 1).then_some(())
        },
    );
}

#[gpui::test]
fn older_history_loads_above(cx: &mut TestAppContext) {
    let (world, alice, bob) = alice_and_bob_in_team();
    let total = fastchat_desktop::model::PAGE as usize + 20;
    for i in 0..total {
        world
            .block(bob.client.send(team(), format!("message {i}")))
            .unwrap();
    }
    let window = world.window(&alice, cx);
    let root = root(&window, cx);
    let session = cx.read(|cx| root.read(cx).session.clone());
    until(cx, "the newest page", |cx| {
        (pane_texts(&window, cx).len() == fastchat_desktop::model::PAGE as usize).then_some(())
    });
    assert_eq!(
        pane_texts(&window, cx).last().map(String::as_str),
        Some(&*format!("message {}", total - 1))
    );
    let task = session.update(cx, |s, cx| s.load_older(cx));
    until(cx, "the older page", |cx| {
        (pane_texts(&window, cx).len() == total).then_some(())
    });
    drop(task);
    let texts = pane_texts(&window, cx);
    let expected: Vec<String> = (0..total).map(|i| format!("message {i}")).collect();
    assert_eq!(
        texts, expected,
        "oldest first, nothing twice, nothing missing"
    );
    let complete = cx.read(|cx| session.read(cx).timeline(&team()).map(|t| t.complete));
    assert_eq!(complete, Some(true));
}

#[gpui::test]
fn the_group_dialog_creates_and_amends(cx: &mut TestAppContext) {
    let (mut world, alice, bob) = alice_and_bob_in_team();
    let _carol = world.user("carol");
    let window = world.window(&alice, cx);
    let root = root(&window, cx);
    let session = cx.read(|cx| root.read(cx).session.clone());
    until(cx, "alice on #team", |cx| {
        cx.read(|cx| (session.read(cx).selected == Some(team())).then_some(()))
    });

    // Create: Ctrl+N, a name and members as CSV, Enter.
    cx.simulate_keystrokes(window.into(), "ctrl-n");
    let dialog = group_dialog(&root, cx);
    cx.simulate_input(window.into(), "ops");
    cx.simulate_keystrokes(window.into(), "enter");
    cx.simulate_input(window.into(), " bob, carol ,bob");
    assert_eq!(
        cx.read(|cx| dialog.read(cx).add.read(cx).text().to_owned()),
        " bob, carol ,bob"
    );
    cx.simulate_keystrokes(window.into(), "enter");
    until(cx, "the dialog closing and #ops on screen", |cx| {
        cx.read(|cx| {
            (root.read(cx).dialog.is_none()
                && session.read(cx).selected == Some(ConversationRef::Group("ops".into())))
            .then_some(())
        })
    });
    let groups = world.block(bob.client.list_groups()).unwrap();
    let ops = groups
        .iter()
        .find(|g| g.name == "ops")
        .expect("bob is in ops");
    let mut members = ops.members.clone();
    members.sort();
    assert_eq!(members, ["alice", "bob", "carol"]);

    // Amend from the pane's Members button: the dialog opens on the group, lists its
    // members, and removes and adds as the original's fields say.
    let chat = cx.read(|cx| root.read(cx).chat.clone());
    session.update(cx, |s, cx| s.select(team(), cx));
    chat.update(cx, |_, cx| {
        cx.emit(ChatEvent::EditGroup(Some("team".into())))
    });
    let dialog = until(cx, "the dialog on #team with its members", |cx| {
        cx.read(|cx| match &root.read(cx).dialog {
            Some(Dialog::Group(d)) if d.read(cx).members.is_some() => Some(d.clone()),
            _ => None,
        })
    });
    let listed: Vec<(String, bool)> = cx.read(|cx| {
        dialog
            .read(cx)
            .members
            .clone()
            .unwrap()
            .into_iter()
            .map(|m| (m.username, m.admin))
            .collect()
    });
    assert_eq!(
        listed,
        [("alice".to_owned(), true), ("bob".to_owned(), false)]
    );
    assert!(cx.read(|cx| dialog.read(cx).exists(cx)));
    // Focus is on "add" when the dialog opens on a group.
    cx.simulate_input(window.into(), "carol");
    dialog.update(cx, |d, cx| {
        d.remove.update(cx, |r, cx| r.set_text("bob", cx))
    });
    cx.simulate_keystrokes(window.into(), "enter");
    until(cx, "the dialog closing", |cx| {
        cx.read(|cx| root.read(cx).dialog.is_none().then_some(()))
    });
    let members = world
        .block(alice.client.group_members("team".into()))
        .unwrap();
    let names: Vec<&str> = members.iter().map(|m| m.username.as_str()).collect();
    assert_eq!(names, ["alice", "carol"]);

    // An unknown member is an error shown in the dialog, which stays open.
    cx.dispatch_action(window.into(), NewGroup);
    let dialog = group_dialog(&root, cx);
    cx.simulate_input(window.into(), "ghosts");
    cx.simulate_keystrokes(window.into(), "enter");
    cx.simulate_input(window.into(), "nobody-here");
    cx.simulate_keystrokes(window.into(), "enter");
    let error = until(cx, "the dialog's error", |cx| {
        cx.read(|cx| dialog.read(cx).error.clone())
    });
    assert!(error.contains("nobody-here"), "{error}");
    assert!(cx.read(|cx| root.read(cx).dialog.is_some()));
}

#[gpui::test]
fn images_are_sent_and_shown(cx: &mut TestAppContext) {
    let (world, alice, bob) = alice_and_bob_in_team();
    let png = world.dir.path().join("picture.png");
    let mut picture = image::RgbImage::new(320, 200);
    for (x, y, p) in picture.enumerate_pixels_mut() {
        *p = image::Rgb([(x % 256) as u8, (y % 256) as u8, 128]);
    }
    picture.save(&png).unwrap();

    let window = world.window(&alice, cx);
    let root = root(&window, cx);
    let session = cx.read(|cx| root.read(cx).session.clone());
    until(cx, "alice on #team", |cx| {
        cx.read(|cx| (session.read(cx).selected == Some(team())).then_some(()))
    });
    let chat = cx.read(|cx| root.read(cx).chat.clone());
    // What the Send Image button does once the picker (or the path field) gives a path.
    chat.update(cx, |c, cx| {
        c.send_image(png.to_string_lossy().into_owned(), cx)
    });

    let received = until(cx, "bob receiving the image", |_| {
        let history = world.block(bob.client.history(team(), None, None)).unwrap();
        history
            .into_iter()
            .find(|m| m.kind == MessageKind::Image && m.image_path.is_some())
    });
    let bytes = std::fs::read(received.image_path.as_ref().unwrap()).unwrap();
    assert_eq!(
        bytes,
        std::fs::read(&png).unwrap(),
        "byte-identical at bob's"
    );

    // Alice's pane shows it as an image row; clicking it opens the viewer on the full image.
    let shown = until(cx, "the image row in alice's pane", |cx| {
        cx.read(|cx| {
            chat.read(cx).rows().iter().find_map(|r| match r {
                Row::Message(m) if m.kind == MessageKind::Image => m.image_path.clone(),
                _ => None,
            })
        })
    });
    chat.update(cx, |_, cx| {
        cx.emit(ChatEvent::OpenImage(shown.clone().into()))
    });
    let viewed = until(cx, "the image viewer", |cx| {
        cx.read(|cx| match &root.read(cx).dialog {
            Some(Dialog::Image(v)) => Some(v.read(cx).path.clone()),
            _ => None,
        })
    });
    assert_eq!(viewed, std::path::PathBuf::from(shown));

    // Something that is not an image is refused with a clear error, and nothing is sent.
    let text = world.dir.path().join("notes.png");
    std::fs::write(&text, "just text").unwrap();
    let task = session.update(cx, |s, cx| {
        s.send_image(text.to_string_lossy().into_owned(), cx)
    });
    let failure = until(cx, "the refusal", |cx| {
        cx.read(|cx| {
            session
                .read(cx)
                .timeline(&team())
                .and_then(|t| t.outgoing.iter().find_map(|o| o.problem.clone()))
        })
    });
    drop(task);
    assert!(failure.to_lowercase().contains("image"), "{failure}");
}

#[gpui::test]
fn safety_numbers_are_shown_and_verified_and_the_theme_switches(cx: &mut TestAppContext) {
    let mut world = World::start();
    let alice = world.user("alice");
    let bob = world.user("bob");
    world
        .block(
            bob.client
                .send(ConversationRef::User("alice".into()), "hi".into()),
        )
        .unwrap();
    let window = world.window(&alice, cx);
    let root = root(&window, cx);
    let session = cx.read(|cx| root.read(cx).session.clone());
    until(cx, "the direct conversation on screen", |cx| {
        cx.read(|cx| {
            (session.read(cx).selected == Some(ConversationRef::User("bob".into()))).then_some(())
        })
    });

    // Ctrl+K in a direct conversation: one's own number and the peer's, not yet verified.
    cx.simulate_keystrokes(window.into(), "ctrl-k");
    let keys = until(cx, "the keys dialog with both numbers", |cx| {
        cx.read(|cx| match &root.read(cx).dialog {
            Some(Dialog::Keys(k)) if k.read(cx).own.is_some() && k.read(cx).peer.is_some() => {
                Some(k.clone())
            }
            _ => None,
        })
    });
    let (own, peer) = cx.read(|cx| {
        let k = keys.read(cx);
        (k.own.clone().unwrap(), k.peer.clone().unwrap())
    });
    let alice_status = world.block(alice.client.status()).unwrap();
    assert_eq!(Some(own.fingerprint), alice_status.fingerprint);
    let bobs = world.block(bob.client.fingerprint(None)).unwrap();
    assert_eq!(
        (peer.username.as_str(), peer.fingerprint.as_str()),
        ("bob", bobs.fingerprint.as_str())
    );
    assert!(!peer.verified);

    // A wrong number is refused in place and verifies nothing.
    cx.simulate_input(window.into(), "12345 67890");
    cx.simulate_keystrokes(window.into(), "enter");
    until(cx, "the refusal", |cx| {
        cx.read(|cx| keys.read(cx).error.clone())
    });
    assert!(
        !world
            .block(alice.client.fingerprint(Some("bob".into())))
            .unwrap()
            .verified
    );

    // The number bob reads out verifies his key, in the dialog and in the daemon.
    keys.update(cx, |k, cx| {
        k.entered
            .update(cx, |e, cx| e.set_text(bobs.fingerprint.clone(), cx))
    });
    cx.simulate_keystrokes(window.into(), "enter");
    until(cx, "bob verified", |cx| {
        cx.read(|cx| {
            keys.read(cx)
                .peer
                .as_ref()
                .is_some_and(|p| p.verified)
                .then_some(())
        })
    });
    assert!(
        world
            .block(alice.client.fingerprint(Some("bob".into())))
            .unwrap()
            .verified
    );

    // Escape closes the dialog; Ctrl+Shift+T switches to the dark theme and back.
    cx.simulate_keystrokes(window.into(), "escape");
    until(cx, "the dialog closed", |cx| {
        cx.read(|cx| root.read(cx).dialog.is_none().then_some(()))
    });
    let appearance =
        |cx: &mut TestAppContext| cx.read(|cx| fastchat_desktop::theme::Theme::get(cx).appearance);
    assert_eq!(appearance(cx), fastchat_desktop::theme::Appearance::Light);
    cx.simulate_keystrokes(window.into(), "ctrl-shift-t");
    assert_eq!(appearance(cx), fastchat_desktop::theme::Appearance::Dark);
    cx.simulate_keystrokes(window.into(), "ctrl-shift-t");
    assert_eq!(appearance(cx), fastchat_desktop::theme::Appearance::Light);
}
