//! TLS on the client port: a round trip through rustls, and refusals for clients that do not
//! trust the certificate or do not speak TLS.

use fastchat_link::{Link, LinkConfig, TlsOptions};
use fastchat_proto::{Login, SyncMessages};
use fastchat_server::Config;
use fastchat_server::testing::TestServer;

use crate::support::{Client, password};

fn self_signed() -> (String, String) {
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).expect("cert");
    (cert.cert.pem(), cert.signing_key.serialize_pem())
}

#[tokio::test]
async fn tls_round_trip_and_refusals() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (cert, key) = self_signed();
    let cert_path = dir.path().join("cert.pem");
    let key_path = dir.path().join("key.pem");
    std::fs::write(&cert_path, &cert).expect("write cert");
    std::fs::write(&key_path, &key).expect("write key");
    let acceptor = fastchat_server::tls::acceptor(&cert_path, &key_path).expect("acceptor");
    let server =
        TestServer::start_with_tls(&dir.path().join("s.db"), Config::default(), Some(acceptor))
            .await
            .expect("server");
    let addr = server.addr.to_string();

    let mut config = LinkConfig::new(&addr);
    config.tls = Some(TlsOptions::from_pem(cert.as_bytes(), "localhost").expect("tls options"));
    let (link, pushes) = Link::connect(&config).await.expect("TLS connect");
    let session = link
        .request(fastchat_proto::Signup {
            username: "alice".into(),
            password: password("alice"),
            public_key: bytes::Bytes::from_static(b"k"),
        })
        .await
        .expect("signup over TLS");
    let alice = Client {
        name: "alice".into(),
        link,
        pushes,
        session,
        received: Default::default(),
        conversations: vec![],
    };
    let group = alice.create_group("secure", &[]).await;
    let sent = alice.send(group.id, 1, "over tls").await.expect("acked");
    let (link2, _p) = Link::connect(&config).await.expect("TLS connect");
    link2
        .request(Login {
            username: "alice".into(),
            password: password("alice"),
        })
        .await
        .expect("login");
    let batch = link2
        .request(SyncMessages {
            cursors: vec![],
            limit: 10,
        })
        .await
        .expect("sync");
    assert_eq!(batch.messages.len(), 1);
    assert_eq!(batch.messages[0].seq, sent.seq);
    assert_eq!(&batch.messages[0].envelope[..], b"over tls");

    // A client that trusts another certificate is refused by its own verifier.
    let (other_cert, _) = self_signed();
    let mut untrusting = LinkConfig::new(&addr);
    untrusting.tls = Some(TlsOptions::from_pem(other_cert.as_bytes(), "localhost").expect("opts"));
    assert!(matches!(
        Link::connect(&untrusting).await,
        Err(fastchat_link::LinkError::Tls(_))
    ));
    // A plain-text client gets no service.
    assert!(Link::connect(&LinkConfig::new(&addr)).await.is_err());
    server.stop().await.expect("clean stop");
}
