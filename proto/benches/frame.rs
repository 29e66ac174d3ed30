//! Frame encode and decode for the hot paths: a 1 KiB send, and a push of 100 messages.
//!
//! `cargo bench -p fastchat-proto --bench frame`

use std::hint::black_box;

use bytes::{Bytes, BytesMut};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use fastchat_proto::frame;
use fastchat_proto::{
    ClientFrame, ClientMsgId, ConversationId, Push, Request, RequestId, SendMessage, Seq,
    ServerFrame, StoredMessage, Timestamp,
};

fn send_frame() -> ClientFrame {
    ClientFrame {
        id: RequestId(7),
        request: Request::SendMessage(SendMessage {
            conversation: ConversationId(42),
            client_msg_id: ClientMsgId([9; 16]),
            envelope: Bytes::from(vec![0xAB; 1024]),
        }),
    }
}

fn push_frame() -> ServerFrame {
    ServerFrame::Push(Push::Messages(
        (1..=100)
            .map(|i| StoredMessage {
                conversation: ConversationId(42),
                seq: Seq(i),
                sender: "alice".into(),
                client_msg_id: ClientMsgId([9; 16]),
                sent_at: Timestamp(1_700_000_000_000),
                envelope: Bytes::from(vec![0xAB; 1024]),
            })
            .collect(),
    ))
}

fn frames(c: &mut Criterion) {
    let mut group = c.benchmark_group("frame");
    let send = send_frame();
    let mut wire = BytesMut::new();
    frame::encode(&send, &mut wire).expect("encodes");
    group.throughput(Throughput::Bytes(wire.len() as u64));
    group.bench_function("encode send 1 KiB", |b| {
        let mut out = BytesMut::with_capacity(2048);
        b.iter(|| {
            out.clear();
            frame::encode(black_box(&send), &mut out).expect("encodes");
        });
    });
    group.bench_function("decode send 1 KiB", |b| {
        b.iter(|| {
            let mut input = wire.clone();
            frame::decode_client(black_box(&mut input)).expect("decodes")
        });
    });

    let push = push_frame();
    let mut wire = BytesMut::new();
    frame::encode(&push, &mut wire).expect("encodes");
    group.throughput(Throughput::Bytes(wire.len() as u64));
    group.bench_function("encode push 100 x 1 KiB", |b| {
        let mut out = BytesMut::with_capacity(wire.len());
        b.iter(|| {
            out.clear();
            frame::encode(black_box(&push), &mut out).expect("encodes");
        });
    });
    group.bench_function("decode push 100 x 1 KiB", |b| {
        b.iter(|| {
            let mut input = wire.clone();
            frame::decode::<ServerFrame>(black_box(&mut input)).expect("decodes")
        });
    });
    group.finish();
}

criterion_group!(benches, frames);
criterion_main!(benches);
