//! The shortest path to a first message, straight over the wire protocol: signs up two
//! users on a running server, puts them in a group, sends one message from the first and
//! prints it as the second receives it.
//!
//! `cargo run --release -p fastchat-link --example first_message -- [ADDR] [GROUP]`
//!
//! The envelope here is plain text because this example talks to the server directly; the
//! daemon seals every message end to end before it leaves the machine.

use std::time::Duration;

use bytes::Bytes;
use fastchat_link::{Link, LinkConfig, LinkError, Pushes};
use fastchat_proto::{
    ClientMsgId, CreateGroup, EpochMaterial, Push, SendMessage, Signup, SyncMessages,
};

async fn signup(addr: &str, name: &str) -> Result<(Link, Pushes), LinkError> {
    let (link, pushes) = Link::connect(&LinkConfig::new(addr)).await?;
    link.request(Signup {
        username: name.into(),
        password: format!("{name}-example-password"),
        public_key: Bytes::new(),
    })
    .await?;
    Ok((link, pushes))
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    match run().await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let addr = args.next().unwrap_or_else(|| "127.0.0.1:7400".into());
    // Fresh names each run, so the example works against a server that has seen it before.
    let tag = std::process::id();
    let (alice, bob) = (format!("alice{tag}"), format!("bob{tag}"));
    let group_name = args.next().unwrap_or_else(|| format!("hello-{tag}"));

    let (alice_link, _alice_pushes) = signup(&addr, &alice).await?;
    let (bob_link, mut bob_pushes) = signup(&addr, &bob).await?;
    println!("signed up {alice} and {bob} on {addr}");
    let group = alice_link
        .request(CreateGroup {
            name: group_name.clone(),
            members: vec![bob.clone()],
            material: EpochMaterial::default(),
        })
        .await?;
    println!("{alice} created group {group_name:?} with {bob}");

    // A complete sync makes bob's connection live: from now on the server pushes.
    bob_link
        .request(SyncMessages {
            cursors: vec![],
            limit: 100,
        })
        .await?;
    let sent = alice_link
        .request(SendMessage {
            conversation: group.id,
            client_msg_id: ClientMsgId(rand_id()),
            envelope: Bytes::from_static(b"Hello from FastChat!"),
        })
        .await?;
    println!(
        "{alice} sent message {} (stored before the ack)",
        sent.seq.0
    );

    let received = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(push) = bob_pushes.recv().await {
            if let Push::Messages(messages) = push {
                return messages.into_iter().next();
            }
        }
        None
    })
    .await?
    .ok_or("the connection closed")?;
    println!(
        "{bob} received #{} from {}: {}",
        received.seq.0,
        received.sender,
        String::from_utf8_lossy(&received.envelope)
    );
    Ok(())
}

fn rand_id() -> [u8; 16] {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    nanos.to_be_bytes()
}
