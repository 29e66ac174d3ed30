//! Groups and direct conversations: creation, amendment by admins only, listing.

use bytes::Bytes;
use fastchat_proto::{
    AmendGroup, ConversationKind, CreateGroup, Epoch, EpochMaterial, ErrorCode, FetchEpochKeys,
    ListConversations, OpenDirect, WrappedKey,
};

use crate::support::{Fixture, names};

fn code(e: &fastchat_link::LinkError) -> ErrorCode {
    e.server_error()
        .map(|b| b.code)
        .unwrap_or_else(|| panic!("not a server error: {e}"))
}

fn amend(group: &fastchat_proto::ConversationInfo, add: &[&str], remove: &[&str]) -> AmendGroup {
    AmendGroup {
        conversation: group.id,
        add: names(add),
        remove: names(remove),
        new_epoch: Epoch(group.epoch.0 + 1),
        material: EpochMaterial::default(),
    }
}

async fn create_amend_by_admin_and_refuse_non_admin() {
    let fx = Fixture::start().await;
    let alice = fx.signup("alice").await;
    let mut bob = fx.signup("bob").await;
    fx.signup("carol").await;
    bob.sync().await;

    // Members as the CSV of the original GUI would give them: spaces and repeats are fine.
    let group = alice
        .link
        .request(CreateGroup {
            name: "team".into(),
            members: names(&[" bob", "bob", ""]),
            material: EpochMaterial::default(),
        })
        .await
        .expect("created");
    assert_eq!(
        group.kind,
        ConversationKind::Group {
            name: "team".into()
        }
    );
    assert_eq!(group.epoch, Epoch(1));
    let members: Vec<(String, bool)> = group
        .members
        .iter()
        .map(|m| (m.username.clone(), m.admin))
        .collect();
    assert_eq!(members, vec![("alice".into(), true), ("bob".into(), false)]);

    // Bob hears of it.
    bob.until("the new group", |c| {
        c.conversations.iter().any(|i| i.id == group.id)
    })
    .await;

    let e = bob
        .link
        .request(amend(&group, &["carol"], &[]))
        .await
        .expect_err("bob is no admin");
    assert_eq!(code(&e), ErrorCode::NotAdmin);

    let amended = alice
        .link
        .request(amend(&group, &["carol"], &["bob"]))
        .await
        .expect("amended");
    assert_eq!(amended.epoch, Epoch(2));
    assert!(amended.has_member("carol") && !amended.has_member("bob"));

    // A stale epoch is a conflict, not a silent overwrite.
    let e = alice
        .link
        .request(amend(&group, &["bob"], &[]))
        .await
        .expect_err("stale epoch");
    assert_eq!(code(&e), ErrorCode::EpochConflict);

    let e = alice
        .link
        .request(amend(&amended, &["zed"], &[]))
        .await
        .expect_err("unknown user");
    assert_eq!(code(&e), ErrorCode::UnknownUser);
    assert!(e.to_string().contains("zed"), "{e}");

    let e = alice
        .link
        .request(CreateGroup {
            name: "team".into(),
            members: vec![],
            material: EpochMaterial::default(),
        })
        .await
        .expect_err("taken");
    assert_eq!(code(&e), ErrorCode::NameTaken);
    let e = alice
        .link
        .request(CreateGroup {
            name: "a,b".into(),
            members: vec![],
            material: EpochMaterial::default(),
        })
        .await
        .expect_err("bad name");
    assert_eq!(code(&e), ErrorCode::InvalidName);

    let listed = bob.link.request(ListConversations {}).await.expect("list");
    assert!(
        listed.conversations.is_empty(),
        "bob was removed: {listed:?}"
    );
    let listed = alice
        .link
        .request(ListConversations {})
        .await
        .expect("list");
    assert_eq!(listed.conversations, vec![amended]);
}

async fn direct_conversations_have_exactly_two_members_and_are_found_again() {
    let fx = Fixture::start().await;
    let alice = fx.signup("alice").await;
    let bob = fx.signup("bob").await;
    let open = |peer: &str| OpenDirect {
        peer: peer.into(),
        material: EpochMaterial::default(),
    };
    let first = alice.link.request(open("bob")).await.expect("opened");
    assert_eq!(first.kind, ConversationKind::Direct);
    assert_eq!(first.members.len(), 2);
    let again = bob.link.request(open("alice")).await.expect("found");
    assert_eq!(
        again.id, first.id,
        "one conversation per pair, whoever opens it"
    );
    let e = alice
        .link
        .request(amend(&first, &["carol"], &[]))
        .await
        .expect_err("not a group");
    assert_eq!(code(&e), ErrorCode::WrongConversationKind);
    let e = alice.link.request(open("alice")).await.expect_err("self");
    assert_eq!(code(&e), ErrorCode::InvalidRequest);
    let e = alice
        .link
        .request(open("nobody"))
        .await
        .expect_err("unknown");
    assert_eq!(code(&e), ErrorCode::UnknownUser);
}

async fn wrapped_keys_are_stored_per_epoch_and_member() {
    let fx = Fixture::start().await;
    let alice = fx.signup("alice").await;
    let bob = fx.signup("bob").await;
    let key = |user: &str, epoch: u8| WrappedKey {
        username: user.into(),
        wrapped: Bytes::from(vec![epoch; 4]),
    };
    let group = alice
        .link
        .request(CreateGroup {
            name: "keys".into(),
            members: names(&["bob"]),
            material: EpochMaterial {
                keys: vec![key("alice", 1), key("bob", 1)],
                proof: Bytes::from_static(b"sig1"),
            },
        })
        .await
        .expect("created");
    // Keys for someone who is not a member are refused.
    let mut bad = amend(&group, &[], &["bob"]);
    bad.material.keys = vec![key("alice", 2), key("bob", 2)];
    let e = alice.link.request(bad).await.expect_err("bob is leaving");
    assert_eq!(code(&e), ErrorCode::KeysDoNotMatchMembers);
    let mut good = amend(&group, &[], &["bob"]);
    good.material.keys = vec![key("alice", 2)];
    alice.link.request(good).await.expect("amended");

    let alice_keys = alice
        .link
        .request(FetchEpochKeys {
            conversation: group.id,
        })
        .await
        .expect("keys");
    let epochs: Vec<u32> = alice_keys.keys.iter().map(|k| k.epoch.0).collect();
    assert_eq!(epochs, vec![1, 2]);
    assert_eq!(alice_keys.keys[0].proof, Bytes::from_static(b"sig1"));
    let bob_keys = bob
        .link
        .request(FetchEpochKeys {
            conversation: group.id,
        })
        .await
        .expect("keys");
    let epochs: Vec<u32> = bob_keys.keys.iter().map(|k| k.epoch.0).collect();
    assert_eq!(
        epochs,
        vec![1],
        "a removed member gets no key for the new epoch"
    );
}

on_both_backends!(
    create_amend_by_admin_and_refuse_non_admin,
    direct_conversations_have_exactly_two_members_and_are_found_again,
    wrapped_keys_are_stored_per_epoch_and_member,
);
