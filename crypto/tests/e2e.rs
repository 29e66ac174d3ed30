//! End-to-end encryption against a hostile server: tampering, forgery, replays, removed
//! members, substituted keys and unsigned membership changes. 2048-bit keys to stay fast;
//! key size is not what these tests are about.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use fastchat_crypto::envelope::{self, Arrival};
use fastchat_crypto::membership::{self, Chain, Statement};
use fastchat_crypto::pins::{Pins, Trust};
use fastchat_crypto::{
    ConversationKey, CryptoError, Envelope, Header, Identity, Kind, MIN_KEY_BITS,
};
use fastchat_proto::{ClientMsgId, ConversationId, Epoch, Timestamp};
use proptest::prelude::*;

/// alice, bob, carol, dave, mallory.
static PEOPLE: LazyLock<Vec<Identity>> = LazyLock::new(|| {
    (0..5)
        .map(|_| Identity::generate(MIN_KEY_BITS).expect("key"))
        .collect()
});

fn alice() -> &'static Identity {
    &PEOPLE[0]
}
fn bob() -> &'static Identity {
    &PEOPLE[1]
}
fn carol() -> &'static Identity {
    &PEOPLE[2]
}
fn dave() -> &'static Identity {
    &PEOPLE[3]
}
fn mallory() -> &'static Identity {
    &PEOPLE[4]
}

const GROUP: ConversationId = ConversationId(7);

fn header(sender: &str, epoch: u32, id: u8) -> Header {
    Header {
        conversation: GROUP,
        epoch: Epoch(epoch),
        sender: sender.into(),
        client_msg_id: ClientMsgId([id; 16]),
        sent_at: Timestamp(1_700_000_000_000),
        kind: Kind::Text,
    }
}

fn arrival(sender: &str, id: u8) -> Arrival<'_> {
    Arrival {
        conversation: GROUP,
        sender,
        client_msg_id: ClientMsgId([id; 16]),
    }
}

fn open(
    bytes: &[u8],
    from: &str,
    id: u8,
    sender_key: &Identity,
    key: &ConversationKey,
) -> Result<Vec<u8>, CryptoError> {
    Envelope::decode(bytes)?.open(arrival(from, id), sender_key.public(), key)
}

#[test]
fn text_and_images_round_trip() {
    let key = ConversationKey::generate();
    let sealed = envelope::seal(alice(), &key, header("alice", 1, 1), b"hello bob").expect("seal");
    assert_eq!(
        open(&sealed, "alice", 1, alice(), &key).expect("opens"),
        b"hello bob"
    );
    assert!(
        !sealed.windows(9).any(|w| w == b"hello bob"),
        "no plaintext in the envelope"
    );

    let png = [0x89, b'P', b'N', b'G', 0, 1, 2, 3];
    let mut h = header("alice", 1, 2);
    h.kind = Kind::Image {
        media_type: "image/png".into(),
        file_name: "cat.png".into(),
    };
    let sealed = envelope::seal(alice(), &key, h.clone(), &png).expect("seal");
    let decoded = Envelope::decode(&sealed).expect("decodes");
    assert_eq!(decoded.header, h);
    assert_eq!(
        decoded
            .open(arrival("alice", 2), alice().public(), &key)
            .expect("opens"),
        png
    );
}

#[test]
fn every_byte_of_an_envelope_is_protected() {
    let key = ConversationKey::generate();
    let sealed =
        envelope::seal(alice(), &key, header("alice", 1, 1), b"attack at dawn").expect("seal");
    for i in 0..sealed.len() {
        for flip in [0x01u8, 0x80] {
            let mut tampered = sealed.clone();
            tampered[i] ^= flip;
            let result = open(&tampered, "alice", 1, alice(), &key);
            assert!(
                result.is_err(),
                "flipping {flip:#04x} at byte {i} of {} went unnoticed",
                sealed.len()
            );
        }
    }
    // Truncated or extended, too.
    assert!(open(&sealed[..sealed.len() - 1], "alice", 1, alice(), &key).is_err());
    let mut longer = sealed.clone();
    longer.push(0);
    assert!(matches!(
        open(&longer, "alice", 1, alice(), &key),
        Err(CryptoError::Malformed(_))
    ));
}

#[test]
fn a_server_cannot_move_an_envelope_to_another_conversation_sender_or_id() {
    let key = ConversationKey::generate();
    let sealed =
        envelope::seal(alice(), &key, header("alice", 1, 1), b"for group 7").expect("seal");
    let env = Envelope::decode(&sealed).expect("decodes");
    let moved = Arrival {
        conversation: ConversationId(8),
        ..arrival("alice", 1)
    };
    assert!(matches!(
        env.open(moved, alice().public(), &key),
        Err(CryptoError::Mismatch {
            field: "conversation",
            ..
        })
    ));
    assert!(matches!(
        env.open(arrival("bob", 1), alice().public(), &key),
        Err(CryptoError::Mismatch {
            field: "sender",
            ..
        })
    ));
    assert!(matches!(
        env.open(arrival("alice", 2), alice().public(), &key),
        Err(CryptoError::Mismatch {
            field: "message id",
            ..
        })
    ));
}

#[test]
fn a_key_holder_cannot_forge_another_member() {
    let key = ConversationKey::generate();
    // Bob holds the conversation key and writes a message claiming to be alice.
    let forged =
        envelope::seal(bob(), &key, header("alice", 1, 1), b"I owe bob 100").expect("seal");
    let result = open(&forged, "alice", 1, alice(), &key);
    assert_eq!(result, Err(CryptoError::BadSignature("alice".into())));
}

#[test]
fn wrong_epochs_are_rejected() {
    let key1 = ConversationKey::generate();
    let key2 = ConversationKey::generate();
    let sealed = envelope::seal(alice(), &key1, header("alice", 2, 1), b"x").expect("seal");
    let env = Envelope::decode(&sealed).expect("decodes");
    // No key for the epoch it names.
    let only_epoch_1 = |e: Epoch| (e == Epoch(1)).then_some(&key1);
    assert_eq!(
        env.open_with(arrival("alice", 1), alice().public(), only_epoch_1),
        Err(CryptoError::UnknownEpoch(Epoch(2)))
    );
    // Sealed under epoch 1's key but labelled epoch 2: epoch 2's key does not open it.
    let by_epoch = |e: Epoch| match e.0 {
        1 => Some(&key1),
        2 => Some(&key2),
        _ => None,
    };
    assert_eq!(
        env.open_with(arrival("alice", 1), alice().public(), by_epoch),
        Err(CryptoError::Decrypt)
    );
}

#[test]
fn a_replayed_envelope_is_recognised() {
    let key = ConversationKey::generate();
    let sealed = envelope::seal(alice(), &key, header("alice", 1, 9), b"once").expect("seal");
    let mut shown = std::collections::HashSet::new();
    let mut displayed = Vec::new();
    for _ in 0..3 {
        let env = Envelope::decode(&sealed).expect("decodes");
        let text = env
            .open(arrival("alice", 9), alice().public(), &key)
            .expect("opens");
        let (sender, id) = env.dedup_key();
        if shown.insert((sender.to_owned(), id)) {
            displayed.push(text);
        }
    }
    assert_eq!(displayed, vec![b"once".to_vec()], "shown once");
}

/// Wrapped keys per epoch, per member.
type WrappedByEpoch = BTreeMap<u32, BTreeMap<&'static str, Vec<u8>>>;

/// Alice starts epoch 1 for {alice, bob, carol}, then removes carol (epoch 2) and adds dave
/// (epoch 3), sending a message in each epoch. Returns the wrapped keys per epoch and member,
/// and the envelopes per epoch.
fn history() -> (WrappedByEpoch, BTreeMap<u32, Vec<u8>>) {
    let epochs: [(u32, &[(&str, &Identity)]); 3] = [
        (1, &[("alice", alice()), ("bob", bob()), ("carol", carol())]),
        (2, &[("alice", alice()), ("bob", bob())]),
        (3, &[("alice", alice()), ("bob", bob()), ("dave", dave())]),
    ];
    let mut wrapped = BTreeMap::new();
    let mut envelopes = BTreeMap::new();
    for (epoch, members) in epochs {
        let key = ConversationKey::generate();
        let keys: BTreeMap<&str, Vec<u8>> = members
            .iter()
            .map(|(name, id)| (*name, key.wrap_for(id.public()).expect("wrap")))
            .collect();
        wrapped.insert(epoch, keys);
        let secret = format!("secret of epoch {epoch}");
        let id = u8::try_from(epoch).expect("small");
        envelopes.insert(
            epoch,
            envelope::seal(alice(), &key, header("alice", epoch, id), secret.as_bytes())
                .expect("seal"),
        );
    }
    (wrapped, envelopes)
}

#[test]
fn a_removed_member_with_the_whole_database_reads_nothing_after_removal() {
    let (wrapped, envelopes) = history();
    // Carol legitimately holds epoch 1's key...
    let key1 = ConversationKey::unwrap(carol(), &wrapped[&1]["carol"]).expect("carol was a member");
    assert_eq!(
        open(&envelopes[&1], "alice", 1, alice(), &key1).expect("opens"),
        b"secret of epoch 1"
    );
    // ...and, given every wrapped key and envelope the server ever stored, nothing later.
    for epoch in [2u32, 3] {
        for (member, blob) in &wrapped[&epoch] {
            assert_eq!(
                ConversationKey::unwrap(carol(), blob).err(),
                Some(CryptoError::Unwrap),
                "epoch {epoch}, {member}'s key"
            );
        }
        let id = u8::try_from(epoch).expect("small");
        assert_eq!(
            open(&envelopes[&epoch], "alice", id, alice(), &key1),
            Err(CryptoError::Decrypt),
            "epoch {epoch}"
        );
    }
}

#[test]
fn an_added_member_cannot_read_earlier_epochs() {
    let (wrapped, envelopes) = history();
    let key3 = ConversationKey::unwrap(dave(), &wrapped[&3]["dave"]).expect("dave is in epoch 3");
    assert_eq!(
        open(&envelopes[&3], "alice", 3, alice(), &key3).expect("opens"),
        b"secret of epoch 3"
    );
    for epoch in [1u32, 2] {
        for blob in wrapped[&epoch].values() {
            assert!(ConversationKey::unwrap(dave(), blob).is_err());
        }
        let id = u8::try_from(epoch).expect("small");
        assert_eq!(
            open(&envelopes[&epoch], "alice", id, alice(), &key3),
            Err(CryptoError::Decrypt)
        );
    }
}

#[test]
fn a_substituted_public_key_is_detected_until_verified() {
    let mut pins = Pins::default();
    assert_eq!(pins.check("alice", alice().public()), Ok(Trust::New));
    assert_eq!(pins.check("alice", alice().public()), Ok(Trust::Pinned));
    // The server now hands out mallory's key as alice's.
    let err = pins
        .check("alice", mallory().public())
        .expect_err("swap detected");
    assert!(matches!(&err, CryptoError::KeyChanged { username, .. } if username == "alice"));
    assert!(
        err.to_string().contains("verify the new safety number"),
        "{err}"
    );
    // Stays refused until the user verifies; a wrong safety number changes nothing.
    let alices_number = alice().public().fingerprint().to_string();
    assert_eq!(
        pins.verify("alice", mallory().public(), &alices_number),
        Err(CryptoError::FingerprintMismatch("alice".into()))
    );
    assert!(pins.check("alice", mallory().public()).is_err());
    // Alice really did change keys, and her friend checked the new number with her.
    let new_number = mallory().public().fingerprint().to_string();
    pins.verify("alice", mallory().public(), &new_number)
        .expect("verified");
    assert_eq!(pins.check("alice", mallory().public()), Ok(Trust::Verified));
    assert!(
        pins.check("alice", alice().public()).is_err(),
        "the old key is no longer trusted"
    );
    assert!(matches!(
        pins.verify("bob", bob().public(), "12345"),
        Err(CryptoError::BadFingerprint(_))
    ));
}

#[test]
fn safety_numbers_are_twelve_groups_of_five_digits() {
    let fp = alice().public().fingerprint();
    let shown = fp.to_string();
    let groups: Vec<&str> = shown.split(' ').collect();
    assert_eq!(groups.len(), 12);
    assert!(
        groups
            .iter()
            .all(|g| g.len() == 5 && g.chars().all(|c| c.is_ascii_digit()))
    );
    assert_eq!(fp.matches(&shown), Ok(true));
    assert_eq!(fp.matches(&shown.replace(' ', "")), Ok(true));
    assert_eq!(bob().public().fingerprint().matches(&shown), Ok(false));
}

fn statement(epoch: u32, members: &[(&str, bool)], by: &str) -> Statement {
    Statement {
        conversation: GROUP,
        epoch: Epoch(epoch),
        name: Some("team".into()),
        members: members.iter().map(|(n, a)| ((*n).to_owned(), *a)).collect(),
        changed_by: by.into(),
    }
}

#[test]
fn membership_changes_need_an_admins_signature() {
    let mut chain = Chain::default();
    let first = statement(1, &[("alice", true), ("bob", false)], "alice");
    chain
        .accept(
            first.clone(),
            &first.sign(alice()).expect("sign"),
            alice().public(),
        )
        .expect("epoch 1");

    // The server adds mallory on its own, signing with a key of its choosing.
    let sneaky = statement(
        2,
        &[("alice", true), ("bob", false), ("mallory", false)],
        "alice",
    );
    let proof = sneaky.sign(mallory()).expect("sign");
    assert_eq!(
        chain.accept(sneaky.clone(), &proof, alice().public()),
        Err(CryptoError::BadSignature("alice".into()))
    );
    // Bob is a member but no admin: his signature is genuine and still refused.
    let by_bob = statement(
        2,
        &[("alice", true), ("bob", false), ("mallory", false)],
        "bob",
    );
    let err = chain.accept(
        by_bob.clone(),
        &by_bob.sign(bob()).expect("sign"),
        bob().public(),
    );
    assert!(matches!(err, Err(CryptoError::Membership(_))), "{err:?}");
    // Skipping an epoch is refused.
    let skip = statement(3, &[("alice", true)], "alice");
    assert!(
        chain
            .accept(
                skip.clone(),
                &skip.sign(alice()).expect("sign"),
                alice().public()
            )
            .is_err()
    );
    assert_eq!(chain.current(), Some(&first), "nothing refused was applied");

    // Alice's genuine change goes through.
    let real = statement(
        2,
        &[("alice", true), ("bob", false), ("carol", false)],
        "alice",
    );
    chain
        .accept(
            real.clone(),
            &real.sign(alice()).expect("sign"),
            alice().public(),
        )
        .expect("epoch 2");
    assert_eq!(chain.current(), Some(&real));
}

/// `chain.accept` of `st` as signed by `by`.
fn accept(chain: &mut Chain, st: &Statement, by: &Identity) -> Result<(), CryptoError> {
    chain.accept(st.clone(), &st.sign(by).expect("sign"), by.public())
}

/// `chain.accept_after_gap` of `st` as signed by `by`.
fn accept_after_gap(chain: &mut Chain, st: &Statement, by: &Identity) -> Result<(), CryptoError> {
    chain.accept_after_gap(st.clone(), &st.sign(by).expect("sign"), by.public())
}

#[test]
fn a_first_epoch_signed_before_the_id_was_assigned_is_followed_by_the_real_id_only() {
    let mut chain = Chain::default();
    let mut first = statement(1, &[("alice", true), ("bob", false)], "alice");
    first.conversation = membership::UNASSIGNED;
    accept(&mut chain, &first, alice()).expect("epoch 1 before the id");
    let second = statement(2, &[("alice", true)], "alice");
    accept(&mut chain, &second, alice()).expect("epoch 2 names the id");
    // From then on the id is fixed.
    let mut moved = statement(3, &[("alice", true)], "alice");
    moved.conversation = ConversationId(99);
    let err = accept(&mut chain, &moved, alice());
    assert!(matches!(err, Err(CryptoError::Membership(_))), "{err:?}");
}

#[test]
fn after_a_gap_only_a_known_admin_may_continue_the_chain() {
    let mut chain = Chain::default();
    let first = statement(1, &[("alice", true), ("bob", false)], "alice");
    accept(&mut chain, &first, alice()).expect("epoch 1");
    // Bob was away for epochs 2-4. The server's own account claims epoch 5.
    let fake = statement(5, &[("mallory", true), ("bob", false)], "mallory");
    let err = accept_after_gap(&mut chain, &fake, mallory());
    assert!(matches!(err, Err(CryptoError::Membership(_))), "{err:?}");
    // Going back is refused too.
    let old = statement(
        1,
        &[("alice", true), ("bob", false), ("carol", false)],
        "alice",
    );
    assert!(accept_after_gap(&mut chain, &old, alice()).is_err());
    // Alice, an admin when bob last looked, may.
    let real = statement(5, &[("alice", true), ("bob", false)], "alice");
    accept_after_gap(&mut chain, &real, alice()).expect("epoch 5 by alice");
    assert_eq!(chain.current(), Some(&real));
}

#[test]
fn the_private_key_is_stored_encrypted() {
    let pem = alice().to_encrypted_pem("correct horse").expect("encode");
    assert!(
        pem.starts_with("-----BEGIN ENCRYPTED PRIVATE KEY-----"),
        "{}",
        &pem[..40]
    );
    let back = Identity::from_encrypted_pem(&pem, "correct horse").expect("decode");
    assert_eq!(back.public(), alice().public());
    assert_eq!(
        Identity::from_encrypted_pem(&pem, "wrong horse").err(),
        Some(CryptoError::KeyFile)
    );

    // Standard tools read it with the passphrase and not without.
    let dir = std::env::temp_dir().join(format!("fastchat-key-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let path = dir.join("key.pem");
    std::fs::write(&path, pem.as_bytes()).expect("write");
    let openssl = |pass: &str| {
        std::process::Command::new("openssl")
            .args(["pkey", "-noout", "-in"])
            .arg(&path)
            .args(["-passin", &format!("pass:{pass}")])
            .output()
    };
    match openssl("correct horse") {
        Ok(out) => {
            assert!(
                out.status.success(),
                "openssl: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            assert!(!openssl("wrong horse").expect("runs").status.success());
        }
        Err(e) => panic!("openssl is needed for this test (Debian package openssl): {e}"),
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn small_and_odd_public_keys_are_refused() {
    assert!(matches!(
        Identity::generate(1024),
        Err(CryptoError::KeyGeneration(_))
    ));
    assert!(matches!(
        fastchat_crypto::PublicIdentity::from_der(b"not a key"),
        Err(CryptoError::BadPublicKey(_))
    ));
    let der = alice().public().der();
    assert_eq!(
        fastchat_crypto::PublicIdentity::from_der(der).expect("parses"),
        *alice().public()
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn seal_then_open_gives_back_any_content(
        content in proptest::collection::vec(any::<u8>(), 0..4096),
        conversation in any::<i64>(),
        epoch in any::<u32>(),
        id in any::<[u8; 16]>(),
        sent_at in any::<i64>(),
        image in any::<bool>(),
        name in "[a-z0-9._ -]{0,40}",
    ) {
        let key = ConversationKey::generate();
        let kind = if image { Kind::Image { media_type: "image/png".into(), file_name: name } } else { Kind::Text };
        let header = Header {
            conversation: ConversationId(conversation),
            epoch: Epoch(epoch),
            sender: "alice".into(),
            client_msg_id: ClientMsgId(id),
            sent_at: Timestamp(sent_at),
            kind,
        };
        let sealed = envelope::seal(alice(), &key, header.clone(), &content).expect("seal");
        let env = Envelope::decode(&sealed).expect("decodes");
        prop_assert_eq!(&env.header, &header);
        let arrival = Arrival { conversation: ConversationId(conversation), sender: "alice", client_msg_id: ClientMsgId(id) };
        prop_assert_eq!(env.open(arrival, alice().public(), &key).expect("opens"), content);
    }

    #[test]
    fn decoding_arbitrary_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let _ = Envelope::decode(&bytes);
    }
}
