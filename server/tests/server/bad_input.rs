//! Hostile and broken clients: each gets an error code and is closed, while the server and
//! every other connection go on, and nothing is half-stored.

use std::time::Duration;

use bytes::{BufMut, BytesMut};
use fastchat_proto::frame;
use fastchat_proto::{
    ClientFrame, ErrorCode, Hello, PROTOCOL_VERSION, Ping, Request, RequestId, ServerFrame,
};
use fastchat_server::Config;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::{DEADLINE, Fixture};

/// Reads frames until the server closes the connection; returns the `Fatal` it sent.
async fn fatal_then_close(stream: &mut TcpStream) -> ErrorCode {
    let mut buf = BytesMut::new();
    let mut fatal = None;
    loop {
        while let Some(frame) =
            frame::decode::<ServerFrame>(&mut buf).expect("server frames decode")
        {
            if let ServerFrame::Fatal(body) = frame {
                fatal = Some(body.code);
            }
        }
        let n = tokio::time::timeout(DEADLINE, stream.read_buf(&mut buf))
            .await
            .expect("the server closes the connection in time")
            .unwrap_or(0);
        if n == 0 {
            return fatal.expect("a Fatal frame before the close");
        }
    }
}

fn encode(frame: &ClientFrame) -> BytesMut {
    let mut out = BytesMut::new();
    frame::encode(frame, &mut out).expect("encodes");
    out
}

fn hello(version: u16) -> BytesMut {
    encode(&ClientFrame {
        id: RequestId(0),
        request: Request::Hello(Hello {
            version,
            client: "test".into(),
        }),
    })
}

fn raw(body: &[u8]) -> BytesMut {
    let mut out = BytesMut::new();
    out.put_u32(u32::try_from(body.len()).expect("fits"));
    out.put_slice(body);
    out
}

async fn open(addr: &str, greet: bool) -> TcpStream {
    let mut stream = TcpStream::connect(addr).await.expect("connects");
    if greet {
        stream
            .write_all(&hello(PROTOCOL_VERSION))
            .await
            .expect("writes");
        let mut buf = BytesMut::new();
        loop {
            stream.read_buf(&mut buf).await.expect("reads");
            if let Some(frame) = frame::decode::<ServerFrame>(&mut buf).expect("decodes") {
                assert!(
                    matches!(frame, ServerFrame::Response { result: Ok(_), .. }),
                    "{frame:?}"
                );
                break;
            }
        }
    }
    stream
}

async fn every_kind_of_bad_frame_gets_its_code_and_a_close() {
    let fx = Fixture::start().await;
    let alice = fx.signup("alice").await;
    let mut bob = fx.signup("bob").await;
    let group = alice.create_group("g", &["bob"]).await;
    bob.sync().await;
    alice.send(group.id, 1, "before").await.expect("acked");

    let mut oversized = BytesMut::new();
    oversized.put_u32(u32::try_from(frame::MAX_FRAME_LEN + 1).expect("fits"));
    oversized.put_slice(&[0; 64]);
    let mut ping = encode(&ClientFrame {
        id: RequestId(1),
        request: Request::Ping(Ping {}),
    });
    ping.put_u8(0); // one trailing byte past the frame's body...
    ping[3] += 1; // ...counted in its length.
    let cases: Vec<(&str, bool, BytesMut, ErrorCode)> = vec![
        ("oversized", true, oversized, ErrorCode::FrameTooLarge),
        ("garbage", true, raw(&[0xFF; 12]), ErrorCode::Malformed),
        (
            "unknown request type",
            true,
            raw(&[9, 120, 0]),
            ErrorCode::UnknownRequest,
        ),
        // Login { username: <invalid UTF-8>, password: "x" } as request 9.
        (
            "invalid UTF-8",
            true,
            raw(&[9, 2, 2, 0xC3, 0x28, 1, b'x']),
            ErrorCode::Malformed,
        ),
        ("trailing bytes", true, ping, ErrorCode::Malformed),
        (
            "wrong protocol version",
            false,
            hello(PROTOCOL_VERSION + 1),
            ErrorCode::UnsupportedVersion,
        ),
        (
            "no handshake",
            false,
            encode(&ClientFrame {
                id: RequestId(1),
                request: Request::Ping(Ping {}),
            }),
            ErrorCode::HandshakeRequired,
        ),
    ];
    for (what, greet, bytes, expected) in cases {
        let mut stream = open(&fx.addr(), greet).await;
        stream.write_all(&bytes).await.expect("writes");
        assert_eq!(fatal_then_close(&mut stream).await, expected, "{what}");
    }

    // A frame cut short by the client closing its side.
    let mut stream = open(&fx.addr(), true).await;
    let whole = raw(&[1; 100]);
    stream.write_all(&whole[..20]).await.expect("writes");
    stream.shutdown().await.expect("half-close");
    assert_eq!(
        fatal_then_close(&mut stream).await,
        ErrorCode::Malformed,
        "truncated"
    );

    // The server and the existing connections are untouched, and nothing was stored.
    alice.send(group.id, 2, "after").await.expect("acked");
    bob.until_count(group.id, 2).await;
    assert_eq!(bob.texts(group.id), vec!["before", "after"]);
    bob.assert_gap_free(group.id, 1, 2);
}

async fn silent_and_slow_clients_time_out() {
    let config = Config {
        handshake_timeout: Duration::from_millis(300),
        idle_timeout: Duration::from_millis(500),
        frame_timeout: Duration::from_millis(300),
        ..Config::default()
    };
    let fx = Fixture::with_config(config).await;

    let mut silent = open(&fx.addr(), false).await;
    assert_eq!(
        fatal_then_close(&mut silent).await,
        ErrorCode::Timeout,
        "no Hello"
    );

    let mut idle = open(&fx.addr(), true).await;
    assert_eq!(
        fatal_then_close(&mut idle).await,
        ErrorCode::Timeout,
        "idle"
    );

    // Half a frame, then nothing: the per-frame timeout fires before the idle one would.
    let mut slow = open(&fx.addr(), true).await;
    slow.write_all(&raw(&[1; 100])[..10]).await.expect("writes");
    assert_eq!(
        fatal_then_close(&mut slow).await,
        ErrorCode::Timeout,
        "slow frame"
    );

    // The link's keepalive pings keep a quiet client connected past the idle timeout.
    let mut config = fastchat_link::LinkConfig::new(fx.addr());
    config.keepalive = Duration::from_millis(100);
    let (link, _pushes) = fastchat_link::Link::connect(&config)
        .await
        .expect("connects");
    tokio::time::sleep(Duration::from_millis(1200)).await;
    link.request(Ping {})
        .await
        .expect("still connected after more than twice the idle timeout");
}

async fn connections_over_the_cap_are_refused_with_a_reason() {
    let config = Config {
        max_connections: 2,
        ..Config::default()
    };
    let fx = Fixture::with_config(config).await;
    let first = open(&fx.addr(), true).await;
    let _second = open(&fx.addr(), true).await;
    let mut third = TcpStream::connect(fx.addr()).await.expect("accepts");
    assert_eq!(
        fatal_then_close(&mut third).await,
        ErrorCode::TooManyConnections
    );
    // A place frees up when a connection closes.
    drop(first);
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        let attempt =
            fastchat_link::Link::connect(&fastchat_link::LinkConfig::new(fx.addr())).await;
        if attempt.is_ok() {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no place freed: {attempt:?}"
        );
        tokio::task::yield_now().await;
    }
}

on_both_backends!(
    every_kind_of_bad_frame_gets_its_code_and_a_close,
    silent_and_slow_clients_time_out,
    connections_over_the_cap_are_refused_with_a_reason,
);
