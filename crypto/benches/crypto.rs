//! Seal + open per message at 100 B, 1 KiB, 64 KiB and 1 MiB, and the cost of an epoch
//! rotation (new key, wrapped for every member, signed statement) for 10 and 100 members.
//! 3072-bit keys, as users get by default.
//!
//! `cargo bench -p fastchat-crypto --bench crypto`

use std::collections::BTreeMap;
use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use fastchat_crypto::envelope::{self, Arrival};
use fastchat_crypto::membership::Statement;
use fastchat_crypto::{ConversationKey, DEFAULT_KEY_BITS, Envelope, Header, Identity, Kind};
use fastchat_proto::{ClientMsgId, ConversationId, Epoch, Timestamp};

fn header() -> Header {
    Header {
        conversation: ConversationId(1),
        epoch: Epoch(1),
        sender: "alice".into(),
        client_msg_id: ClientMsgId([7; 16]),
        sent_at: Timestamp(0),
        kind: Kind::Text,
    }
}

fn seal_open(c: &mut Criterion) {
    let alice = Identity::generate(DEFAULT_KEY_BITS).expect("key");
    let key = ConversationKey::generate();
    let arrival = Arrival {
        conversation: ConversationId(1),
        sender: "alice",
        client_msg_id: ClientMsgId([7; 16]),
    };
    let mut group = c.benchmark_group("envelope");
    group.sample_size(20);
    for size in [100usize, 1024, 64 * 1024, 1024 * 1024] {
        let content = vec![0x42u8; size];
        group.throughput(Throughput::Bytes(size as u64));
        group.bench_with_input(BenchmarkId::new("seal", size), &content, |b, content| {
            b.iter(|| envelope::seal(&alice, &key, header(), black_box(content)).expect("seal"));
        });
        let sealed = envelope::seal(&alice, &key, header(), &content).expect("seal");
        group.bench_with_input(BenchmarkId::new("open", size), &sealed, |b, sealed| {
            b.iter(|| {
                Envelope::decode(black_box(sealed))
                    .and_then(|e| e.open(arrival, alice.public(), &key))
                    .expect("open")
            });
        });
    }
    group.finish();
}

fn rotation(c: &mut Criterion) {
    let admin = Identity::generate(DEFAULT_KEY_BITS).expect("key");
    let members: Vec<Identity> = (0..100)
        .map(|_| Identity::generate(DEFAULT_KEY_BITS).expect("key"))
        .collect();
    let mut group = c.benchmark_group("epoch rotation");
    group.sample_size(10);
    for n in [10usize, 100] {
        group.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, &n| {
            b.iter(|| {
                let key = ConversationKey::generate();
                let wrapped: Vec<Vec<u8>> = members[..n]
                    .iter()
                    .map(|m| key.wrap_for(m.public()).expect("wrap"))
                    .collect();
                let statement = Statement {
                    conversation: ConversationId(1),
                    epoch: Epoch(2),
                    name: Some("team".into()),
                    members: (0..n)
                        .map(|i| (format!("member{i}"), i == 0))
                        .collect::<BTreeMap<_, _>>(),
                    changed_by: "member0".into(),
                };
                (wrapped, statement.sign(&admin).expect("sign"))
            });
        });
    }
    group.finish();
}

criterion_group!(benches, seal_open, rotation);
criterion_main!(benches);
