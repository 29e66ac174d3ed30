//! Delivery semantics: complete, ordered, gap-free, exactly once, and only to members.

use std::collections::HashSet;

use bytes::Bytes;
use fastchat_link::LinkConfig;
use fastchat_proto::{AmendGroup, Epoch, EpochMaterial, ErrorCode, SendMessage, SyncMessages};
use fastchat_server::Config;

use crate::support::{Client, Fixture, msg_id, names};

async fn a_thousand_messages_from_three_concurrent_senders_reach_every_member_in_order() {
    let fx = Fixture::start().await;
    let mut senders = Vec::new();
    for name in ["alice", "bob", "carol"] {
        senders.push(fx.signup(name).await);
    }
    let mut dave = fx.signup("dave").await;
    let group = senders[0]
        .create_group("busy", &["bob", "carol", "dave"])
        .await;
    for c in senders.iter_mut() {
        c.sync().await;
    }
    dave.sync().await;

    // 334 + 333 + 333 = 1000, each sender pipelining its sends.
    let counts = [334u64, 333, 333];
    let mut tasks = Vec::new();
    for (client, count) in senders.iter().zip(counts) {
        let link = client.link.clone();
        let name = client.name.clone();
        tasks.push(tokio::spawn(async move {
            let mut sends = Vec::new();
            for i in 0..count {
                let link = link.clone();
                let request = SendMessage {
                    conversation: group.id,
                    client_msg_id: msg_id(&name, i),
                    envelope: Bytes::from(format!("{name} {i}")),
                };
                sends.push(tokio::spawn(async move { link.request(request).await }));
            }
            let mut seqs = Vec::new();
            for s in sends {
                seqs.push(s.await.expect("task").expect("acked").seq.0);
            }
            seqs
        }));
    }
    let mut all_seqs = HashSet::new();
    for t in tasks {
        for s in t.await.expect("sender") {
            assert!(all_seqs.insert(s), "seq {s} given twice");
        }
    }
    assert_eq!(
        all_seqs,
        (1..=1000).collect(),
        "acked seqs are exactly 1..=1000"
    );

    let mut everyone = senders;
    everyone.push(dave);
    let reference: Vec<Bytes> = {
        let first = &mut everyone[0];
        first.until_count(group.id, 1000).await;
        first.received[&group.id]
            .iter()
            .map(|m| m.envelope.clone())
            .collect()
    };
    for client in everyone.iter_mut() {
        client.until_count(group.id, 1000).await;
        client.assert_gap_free(group.id, 1, 1000);
        let order: Vec<Bytes> = client.received[&group.id]
            .iter()
            .map(|m| m.envelope.clone())
            .collect();
        assert_eq!(order, reference, "{} saw another order", client.name);
    }
    // Each sender's own messages are in the order it sent them.
    let texts = everyone[3].texts(group.id);
    for (name, count) in [("alice", 334), ("bob", 333), ("carol", 333)] {
        let own: Vec<String> = texts
            .iter()
            .filter(|t| t.starts_with(name))
            .cloned()
            .collect();
        let expected: Vec<String> = (0..count).map(|i| format!("{name} {i}")).collect();
        assert_eq!(own, expected, "{name}'s messages out of order");
    }
}

async fn a_client_that_reconnects_gets_exactly_what_it_missed() {
    let fx = Fixture::start().await;
    let alice = fx.signup("alice").await;
    let mut bob = fx.signup("bob").await;
    let group = alice.create_group("g", &["bob"]).await;
    bob.sync().await;
    for i in 0..20 {
        alice
            .send(group.id, i, &format!("m{i}"))
            .await
            .expect("acked");
    }
    bob.until_count(group.id, 20).await;
    let kept = bob.received.clone();

    // Bob drops the connection mid-stream; alice keeps sending.
    let sending = {
        let alice_link = alice.link.clone();
        tokio::spawn(async move {
            for i in 20..60u64 {
                alice_link
                    .request(SendMessage {
                        conversation: group.id,
                        client_msg_id: msg_id("alice", i),
                        envelope: Bytes::from(format!("m{i}")),
                    })
                    .await
                    .expect("acked");
            }
        })
    };
    drop(bob);
    sending.await.expect("sender");

    let mut bob = Client::login(&fx.addr(), "bob").await;
    bob.received = kept;
    let caught_up = bob.sync().await;
    assert_eq!(caught_up, 40, "exactly the 40 missed messages");
    bob.assert_gap_free(group.id, 1, 60);
    for i in 60..65 {
        alice
            .send(group.id, i, &format!("m{i}"))
            .await
            .expect("acked");
    }
    bob.until_count(group.id, 65).await;
    bob.assert_gap_free(group.id, 1, 65);
}

async fn a_resend_with_the_same_client_id_is_stored_once() {
    let fx = Fixture::start().await;
    let alice = fx.signup("alice").await;
    let mut bob = fx.signup("bob").await;
    let group = alice.create_group("g", &["bob"]).await;
    bob.sync().await;

    let first = alice.send(group.id, 1, "hello").await.expect("acked");
    let again = alice.send(group.id, 1, "hello").await.expect("acked again");
    assert_eq!(first, again, "same seq and timestamp for the resend");
    // Even from another connection of the same user (as after a reconnect).
    let alice2 = Client::login(&fx.addr(), "alice").await;
    assert_eq!(
        alice2.send(group.id, 1, "hello").await.expect("acked"),
        first
    );
    let next = alice.send(group.id, 2, "next").await.expect("acked");
    assert_eq!(
        next.seq.0,
        first.seq.0 + 1,
        "no seq was used up by the duplicates"
    );

    bob.until_count(group.id, 2).await;
    assert_eq!(bob.texts(group.id), vec!["hello", "next"]);
    let more = bob
        .link
        .request(SyncMessages {
            cursors: vec![],
            limit: 100,
        })
        .await
        .expect("sync");
    assert_eq!(more.messages.len(), 2, "stored once: {:?}", more.messages);
}

async fn members_see_nothing_from_before_joining_or_after_leaving() {
    let fx = Fixture::start().await;
    let alice = fx.signup("alice").await;
    let mut bob = fx.signup("bob").await;
    let mut carol = fx.signup("carol").await;
    let group = alice.create_group("g", &["bob"]).await;
    bob.sync().await;
    carol.sync().await;
    alice
        .send(group.id, 1, "before carol")
        .await
        .expect("acked");
    bob.until_count(group.id, 1).await;

    let amend =
        |info: &fastchat_proto::ConversationInfo, add: &[&str], remove: &[&str]| AmendGroup {
            conversation: info.id,
            add: names(add),
            remove: names(remove),
            new_epoch: Epoch(info.epoch.0 + 1),
            material: EpochMaterial::default(),
        };
    let info = alice
        .link
        .request(amend(&group, &["carol"], &["bob"]))
        .await
        .expect("amended");
    alice
        .send(group.id, 2, "after the change")
        .await
        .expect("acked");
    carol.until_count(group.id, 1).await;
    assert_eq!(
        carol.texts(group.id),
        vec!["after the change"],
        "nothing from before joining"
    );

    // Bob heard of his removal and nothing after it, live or by sync.
    bob.until("his removal", |c| {
        c.conversations.iter().any(|i| i.epoch == info.epoch)
    })
    .await;
    assert_eq!(bob.texts(group.id), vec!["before carol"]);
    assert_eq!(bob.sync().await, 0);
    let fresh = Client::login(&fx.addr(), "bob").await;
    let all = fresh
        .link
        .request(SyncMessages {
            cursors: vec![],
            limit: 100,
        })
        .await
        .expect("sync");
    let texts: Vec<&[u8]> = all.messages.iter().map(|m| m.envelope.as_ref()).collect();
    assert_eq!(
        texts,
        vec![&b"before carol"[..]],
        "history up to the removal only"
    );
    let e = bob
        .send(group.id, 9, "let me back")
        .await
        .expect_err("not a member");
    assert_eq!(e.server_error().map(|b| b.code), Some(ErrorCode::NotMember));

    // Re-added later, bob sees from then on, not the gap in between.
    let info = alice
        .link
        .request(amend(&info, &["bob"], &[]))
        .await
        .expect("re-added");
    assert!(info.has_member("bob"));
    alice
        .send(group.id, 3, "welcome back")
        .await
        .expect("acked");
    bob.until_count(group.id, 2).await;
    assert_eq!(bob.texts(group.id), vec!["before carol", "welcome back"]);
}

async fn a_slow_reader_loses_nothing_when_its_push_queue_overflows() {
    let config = Config {
        push_queue: 2,
        ..Config::default()
    };
    let fx = Fixture::with_config(config).await;
    let alice = fx.signup("alice").await;
    fx.signup("bob").await;
    let group = alice.create_group("g", &["bob"]).await;

    // Bob's link buffers a single push, so it stops reading the socket; with 32 KiB
    // envelopes the socket buffers fill and the server's queue for him overflows.
    let mut config = LinkConfig::new(fx.addr());
    config.push_queue = 1;
    let (link, pushes) = fastchat_link::Link::connect(&config)
        .await
        .expect("connects");
    let session = link
        .request(fastchat_proto::Login {
            username: "bob".into(),
            password: crate::support::password("bob"),
        })
        .await
        .expect("login");
    let mut bob = Client {
        name: "bob".into(),
        link,
        pushes,
        session,
        received: Default::default(),
        conversations: vec![],
    };
    bob.sync().await;

    let body = "x".repeat(32 * 1024);
    for i in 0..300 {
        alice
            .send(group.id, i, &format!("{i} {body}"))
            .await
            .expect("acked");
    }
    bob.until_count(group.id, 300).await;
    bob.assert_gap_free(group.id, 1, 300);
}

async fn oversized_envelopes_and_unknown_conversations_are_refused_and_the_connection_goes_on() {
    let fx = Fixture::start().await;
    let alice = fx.signup("alice").await;
    let group = alice.create_group("g", &[]).await;
    let e = alice
        .link
        .request(SendMessage {
            conversation: group.id,
            client_msg_id: msg_id("alice", 1),
            envelope: Bytes::from(vec![0; fastchat_proto::MAX_ENVELOPE_LEN + 1]),
        })
        .await
        .expect_err("too large");
    assert_eq!(e.server_error().map(|b| b.code), Some(ErrorCode::TooLarge));
    let e = alice
        .send(fastchat_proto::ConversationId(999), 2, "x")
        .await
        .expect_err("unknown");
    assert_eq!(
        e.server_error().map(|b| b.code),
        Some(ErrorCode::UnknownConversation)
    );
    let sent = alice.send(group.id, 3, "still fine").await.expect("acked");
    assert_eq!(sent.seq.0, 1, "nothing was stored by the refused sends");
}

async fn acks_are_kept_per_user_and_never_move_backwards() {
    let fx = Fixture::start().await;
    let alice = fx.signup("alice").await;
    let bob = fx.signup("bob").await;
    let group = alice.create_group("g", &["bob"]).await;
    for i in 0..5 {
        alice.send(group.id, i, "m").await.expect("acked");
    }
    let ack = |seq| fastchat_proto::Ack {
        conversation: group.id,
        seq: fastchat_proto::Seq(seq),
    };
    bob.link.request(ack(3)).await.expect("ack");
    bob.link
        .request(ack(2))
        .await
        .expect("an older ack is accepted and ignored");
    let listed = bob
        .link
        .request(fastchat_proto::ListConversations {})
        .await
        .expect("list");
    assert_eq!(listed.conversations[0].last_seq.0, 5);
    assert_eq!(
        listed.acked,
        vec![fastchat_proto::Cursor {
            conversation: group.id,
            seq: fastchat_proto::Seq(3)
        }],
        "two unread"
    );
    // Another device of bob's sees the same position; alice's is her own.
    let bob2 = Client::login(&fx.addr(), "bob").await;
    let listed = bob2
        .link
        .request(fastchat_proto::ListConversations {})
        .await
        .expect("list");
    assert_eq!(listed.acked.len(), 1);
    let listed = alice
        .link
        .request(fastchat_proto::ListConversations {})
        .await
        .expect("list");
    assert!(listed.acked.is_empty());
    let e = bob
        .link
        .request(fastchat_proto::Ack {
            conversation: fastchat_proto::ConversationId(99),
            seq: fastchat_proto::Seq(1),
        })
        .await
        .expect_err("unknown conversation");
    assert_eq!(
        e.server_error().map(|b| b.code),
        Some(ErrorCode::UnknownConversation)
    );
}

on_both_backends!(
    a_thousand_messages_from_three_concurrent_senders_reach_every_member_in_order,
    a_client_that_reconnects_gets_exactly_what_it_missed,
    a_resend_with_the_same_client_id_is_stored_once,
    members_see_nothing_from_before_joining_or_after_leaving,
    a_slow_reader_loses_nothing_when_its_push_queue_overflows,
    oversized_envelopes_and_unknown_conversations_are_refused_and_the_connection_goes_on,
    acks_are_kept_per_user_and_never_move_backwards,
);
