//! The link against a real TCP peer that answers the handshake and then goes silent (as a
//! server behind a dead network would): the link pings, hears nothing, and gives up within
//! three keepalive periods, failing pending requests instead of hanging.

use std::time::Duration;

use bytes::BytesMut;
use fastchat_link::{Link, LinkConfig, LinkError};
use fastchat_proto::frame;
use fastchat_proto::{ClientFrame, Ping, Request, Response, ServerFrame, Welcome};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

#[tokio::test]
async fn a_silent_server_is_detected_and_pending_requests_fail() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    let (pings_tx, mut pings) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.expect("accept");
        let mut buf = BytesMut::new();
        loop {
            if socket.read_buf(&mut buf).await.unwrap_or(0) == 0 {
                return;
            }
            while let Some(ClientFrame { id, request }) =
                frame::decode_client(&mut buf).expect("decodes")
            {
                if let Request::Hello(_) = request {
                    let welcome = Welcome {
                        version: 1,
                        server_id: "mute".into(),
                        max_frame: 1,
                        max_envelope: 1,
                    };
                    let mut out = BytesMut::new();
                    frame::encode(
                        &ServerFrame::Response {
                            id,
                            result: Ok(Response::Hello(welcome)),
                        },
                        &mut out,
                    )
                    .expect("encodes");
                    socket.write_all(&out).await.expect("writes");
                } else {
                    // Heard, never answered.
                    let _ = pings_tx.send(request);
                }
            }
        }
    });

    let mut config = LinkConfig::new(&addr);
    config.keepalive = Duration::from_millis(100);
    config.request_timeout = Duration::from_secs(20);
    let (link, _pushes) = Link::connect(&config).await.expect("handshake");
    assert_eq!(link.welcome().server_id, "mute");
    let pending = link.request(Ping {});
    let result = tokio::time::timeout(Duration::from_secs(10), pending)
        .await
        .expect("does not hang");
    assert!(
        matches!(result, Err(LinkError::Timeout(d)) if d == Duration::from_millis(300)),
        "{result:?}"
    );
    // The link's own keepalive pings reached the peer before it gave up.
    let mut heard = 0;
    while let Ok(request) = pings.try_recv() {
        assert!(matches!(request, Request::Ping(_)));
        heard += 1;
    }
    assert!(
        heard >= 2,
        "our ping and at least one keepalive ping, got {heard}"
    );
    assert!(link.is_closed());
}
