//! Envelopes: what a message is on the wire and on the server.
//!
//! An envelope is `version`, a [`Header`] (conversation, epoch, sender, client message id,
//! timestamp, kind), the Fernet token of the content under the epoch's key, and the sender's
//! RSA-PSS (SHA-256) signature over all of it. Encoded with postcard; the token travels as
//! raw bytes, not Fernet's base64 text.
//!
//! Opening checks, in order: the version; that the header names the conversation, sender
//! and client message id the envelope arrived under (so the server cannot move it); the
//! signature against the sender's pinned key; and only then decrypts with the epoch's key.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE;
use fastchat_proto::{ClientMsgId, ConversationId, Epoch, Timestamp};
use serde::{Deserialize, Serialize};

use crate::error::CryptoError;
use crate::identity::{Identity, PublicIdentity};
use crate::keys::ConversationKey;

/// The envelope format this build writes and reads.
pub const VERSION: u8 = 1;

/// Separates envelope signatures from every other thing a user signs.
const DOMAIN: &[u8] = b"fastchat envelope v1\0";

/// What a message is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Kind {
    /// UTF-8 text.
    Text,
    /// An image; the content is the image's bytes.
    Image {
        media_type: String,
        file_name: String,
    },
}

/// Everything about a message except its content, all of it signed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Header {
    pub conversation: ConversationId,
    pub epoch: Epoch,
    pub sender: String,
    pub client_msg_id: ClientMsgId,
    /// When the sender sealed it (the sender's clock).
    pub sent_at: Timestamp,
    pub kind: Kind,
}

/// A decoded, not yet verified envelope. Read its header to find the sender's key and the
/// epoch's key, then [`Envelope::open`] it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    pub header: Header,
    token: Vec<u8>,
    signature: Vec<u8>,
}

#[derive(Serialize, Deserialize)]
struct Wire {
    version: u8,
    header: Header,
    #[serde(with = "serde_bytes")]
    token: Vec<u8>,
    #[serde(with = "serde_bytes")]
    signature: Vec<u8>,
}

/// What the transport says about an envelope: the conversation it came in, and the sender
/// and client message id the server recorded. The signed header must agree.
#[derive(Debug, Clone, Copy)]
pub struct Arrival<'a> {
    pub conversation: ConversationId,
    pub sender: &'a str,
    pub client_msg_id: ClientMsgId,
}

fn signed_bytes(header: &Header, token: &[u8]) -> Result<Vec<u8>, CryptoError> {
    let mut out = DOMAIN.to_vec();
    out.push(VERSION);
    out = postcard::to_extend(header, out).map_err(|e| CryptoError::Malformed(e.to_string()))?;
    out.extend_from_slice(token);
    Ok(out)
}

/// Encrypts `content` under `key` and signs the whole as `identity` (whose name must be
/// `header.sender`; the daemon builds the header from its own session).
///
/// # Errors
/// [`CryptoError::Sign`] if signing fails.
pub fn seal(
    identity: &Identity,
    key: &ConversationKey,
    header: Header,
    content: &[u8],
) -> Result<Vec<u8>, CryptoError> {
    let token = URL_SAFE
        .decode(key.fernet().encrypt(content))
        .map_err(|e| CryptoError::Malformed(format!("Fernet token: {e}")))?;
    let signature = identity.sign(&signed_bytes(&header, &token)?)?;
    let wire = Wire {
        version: VERSION,
        header,
        token,
        signature,
    };
    postcard::to_allocvec(&wire).map_err(|e| CryptoError::Malformed(e.to_string()))
}

impl Envelope {
    /// Decodes an envelope without trusting anything in it yet.
    ///
    /// # Errors
    /// [`CryptoError::Malformed`] or [`CryptoError::UnsupportedVersion`].
    pub fn decode(bytes: &[u8]) -> Result<Envelope, CryptoError> {
        // The version comes first and is read alone, so a future format is named as such.
        match bytes.first() {
            Some(&VERSION) => {}
            Some(&other) => return Err(CryptoError::UnsupportedVersion(other)),
            None => return Err(CryptoError::Malformed("empty".into())),
        }
        match postcard::take_from_bytes::<Wire>(bytes) {
            Ok((wire, [])) => Ok(Envelope {
                header: wire.header,
                token: wire.token,
                signature: wire.signature,
            }),
            Ok((_, rest)) => Err(CryptoError::Malformed(format!(
                "{} trailing bytes",
                rest.len()
            ))),
            Err(e) => Err(CryptoError::Malformed(e.to_string())),
        }
    }

    /// Verifies and decrypts. `sender_key` is the pinned key of `self.header.sender`, and
    /// `key` the conversation key of `self.header.epoch`.
    ///
    /// # Errors
    /// [`CryptoError::Mismatch`] if the header disagrees with `arrival`;
    /// [`CryptoError::BadSignature`]; [`CryptoError::Decrypt`].
    pub fn open(
        &self,
        arrival: Arrival<'_>,
        sender_key: &PublicIdentity,
        key: &ConversationKey,
    ) -> Result<Vec<u8>, CryptoError> {
        self.check_arrival(arrival)?;
        sender_key.verify(
            &signed_bytes(&self.header, &self.token)?,
            &self.signature,
            &self.header.sender,
        )?;
        key.fernet()
            .decrypt(&URL_SAFE.encode(&self.token))
            .map_err(|_| CryptoError::Decrypt)
    }

    /// Like [`Envelope::open`], finding the epoch's key with `keys`.
    ///
    /// # Errors
    /// As [`Envelope::open`], plus [`CryptoError::UnknownEpoch`].
    pub fn open_with<'k>(
        &self,
        arrival: Arrival<'_>,
        sender_key: &PublicIdentity,
        keys: impl FnOnce(Epoch) -> Option<&'k ConversationKey>,
    ) -> Result<Vec<u8>, CryptoError> {
        let key = keys(self.header.epoch).ok_or(CryptoError::UnknownEpoch(self.header.epoch))?;
        self.open(arrival, sender_key, key)
    }

    /// Senders and client message ids identify a message: a second envelope with the same
    /// pair is a replay or a resend and is shown once.
    #[must_use]
    pub fn dedup_key(&self) -> (&str, ClientMsgId) {
        (&self.header.sender, self.header.client_msg_id)
    }

    fn check_arrival(&self, arrival: Arrival<'_>) -> Result<(), CryptoError> {
        let h = &self.header;
        if h.conversation != arrival.conversation {
            return Err(CryptoError::Mismatch {
                field: "conversation",
                claimed: h.conversation.0.to_string(),
                actual: arrival.conversation.0.to_string(),
            });
        }
        if h.sender != arrival.sender {
            return Err(CryptoError::Mismatch {
                field: "sender",
                claimed: h.sender.clone(),
                actual: arrival.sender.to_owned(),
            });
        }
        if h.client_msg_id != arrival.client_msg_id {
            return Err(CryptoError::Mismatch {
                field: "message id",
                claimed: format!("{:?}", h.client_msg_id),
                actual: format!("{:?}", arrival.client_msg_id),
            });
        }
        Ok(())
    }
}
