//! Attachment chunks: stored once per index, fetched by members only, bounded in size and
//! count.

use bytes::Bytes;
use fastchat_proto::{ErrorCode, FetchChunk, MAX_CHUNK_LEN, MAX_CHUNKS, UploadChunk, UploadId};

use crate::support::Fixture;

fn code(e: &fastchat_link::LinkError) -> ErrorCode {
    e.server_error()
        .map(|b| b.code)
        .unwrap_or_else(|| panic!("not a server error: {e}"))
}

async fn members_store_and_fetch_chunks_and_others_cannot() {
    let fx = Fixture::start().await;
    let alice = fx.signup("alice").await;
    let bob = fx.signup("bob").await;
    let mallory = fx.signup("mallory").await;
    let group = alice.create_group("team", &["bob"]).await;
    let upload = UploadId([7; 16]);
    let chunk = |index: u32, bytes: &[u8]| UploadChunk {
        conversation: group.id,
        upload,
        index,
        total: 2,
        bytes: Bytes::copy_from_slice(bytes),
    };

    alice
        .link
        .request(chunk(0, b"first"))
        .await
        .expect("chunk 0");
    alice
        .link
        .request(chunk(1, b"second"))
        .await
        .expect("chunk 1");
    // A resend is stored once: the first bytes stay.
    alice
        .link
        .request(chunk(1, b"changed"))
        .await
        .expect("resend");
    let fetch = |index| FetchChunk {
        conversation: group.id,
        upload,
        index,
    };
    let got = bob.link.request(fetch(1)).await.expect("bob fetches");
    assert_eq!(got.bytes.as_ref(), b"second");
    let got = alice.link.request(fetch(0)).await.expect("alice fetches");
    assert_eq!(got.bytes.as_ref(), b"first");

    let err = bob.link.request(fetch(2)).await.expect_err("no such chunk");
    assert_eq!(code(&err), ErrorCode::UnknownChunk);
    let err = mallory
        .link
        .request(fetch(0))
        .await
        .expect_err("not a member");
    assert_eq!(code(&err), ErrorCode::NotMember);
    let err = mallory
        .link
        .request(chunk(0, b"spam"))
        .await
        .expect_err("not a member");
    assert_eq!(code(&err), ErrorCode::NotMember);
}

async fn chunks_are_bounded() {
    let fx = Fixture::start().await;
    let alice = fx.signup("alice").await;
    let group = alice.create_group("team", &[]).await;
    let mut big = UploadChunk {
        conversation: group.id,
        upload: UploadId([1; 16]),
        index: 0,
        total: 1,
        bytes: Bytes::from(vec![0u8; MAX_CHUNK_LEN + 1]),
    };
    let err = alice
        .link
        .request(big.clone())
        .await
        .expect_err("too large");
    assert_eq!(code(&err), ErrorCode::TooLarge);
    big.bytes = Bytes::from_static(b"ok");
    for (index, total) in [(1, 1), (0, 0), (0, MAX_CHUNKS + 1)] {
        let mut bad = big.clone();
        bad.index = index;
        bad.total = total;
        let err = alice.link.request(bad).await.expect_err("out of range");
        assert_eq!(code(&err), ErrorCode::InvalidRequest, "{index} of {total}");
    }
    // The connection goes on.
    alice.link.request(big).await.expect("a good chunk");
}

async fn the_server_caps_the_size_of_an_attachment() {
    let fx = Fixture::with_config(fastchat_server::Config {
        max_attachment: 300 * 1024,
        ..fastchat_server::Config::default()
    })
    .await;
    let alice = fx.signup("alice").await;
    let group = alice.create_group("team", &[]).await;
    let chunk = |total| UploadChunk {
        conversation: group.id,
        upload: UploadId([2; 16]),
        index: 0,
        total,
        bytes: Bytes::from_static(b"x"),
    };
    // 300 KiB fit in two 256 KiB chunks, not three.
    alice.link.request(chunk(2)).await.expect("two chunks");
    let err = alice.link.request(chunk(3)).await.expect_err("three");
    assert_eq!(code(&err), ErrorCode::TooLarge);
}

async fn abandoned_uploads_are_purged_and_complete_ones_kept() {
    let fx = Fixture::start().await;
    let alice = fx.signup("alice").await;
    let group = alice.create_group("team", &[]).await;
    let chunk = |upload: u8, index: u32| UploadChunk {
        conversation: group.id,
        upload: UploadId([upload; 16]),
        index,
        total: 2,
        bytes: Bytes::from_static(b"sealed"),
    };
    // Upload 1 is complete; upload 2 stopped after its first chunk.
    for c in [chunk(1, 0), chunk(1, 1), chunk(2, 0)] {
        alice.link.request(c).await.expect("stored");
    }
    let store = &fx.server.store;
    let fresh = fastchat_proto::Timestamp(fastchat_proto::Timestamp::now().0 - 60_000);
    assert_eq!(
        store.purge_uploads(fresh).await.expect("purge"),
        0,
        "too recent"
    );
    let later = fastchat_proto::Timestamp(fastchat_proto::Timestamp::now().0 + 60_000);
    assert_eq!(store.purge_uploads(later).await.expect("purge"), 1);
    let fetch = |upload: u8, index| FetchChunk {
        conversation: group.id,
        upload: UploadId([upload; 16]),
        index,
    };
    alice
        .link
        .request(fetch(1, 1))
        .await
        .expect("the complete upload stays");
    let err = alice.link.request(fetch(2, 0)).await.expect_err("purged");
    assert_eq!(code(&err), ErrorCode::UnknownChunk);
}

on_both_backends!(
    abandoned_uploads_are_purged_and_complete_ones_kept,
    members_store_and_fetch_chunks_and_others_cannot,
    chunks_are_bounded,
    the_server_caps_the_size_of_an_attachment,
);
