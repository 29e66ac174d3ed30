use fastchat_proto::Epoch;

use crate::identity::Fingerprint;

/// Why a cryptographic operation failed. Messages say what happened, never secret values.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CryptoError {
    #[error("cannot generate a key: {0}")]
    KeyGeneration(String),
    #[error("not a usable public key: {0}")]
    BadPublicKey(String),
    #[error("cannot read the private key: wrong passphrase or damaged key file")]
    KeyFile,
    #[error("cannot encode the private key: {0}")]
    KeyEncoding(String),
    #[error("the conversation key could not be unwrapped with this identity")]
    Unwrap,
    #[error("cannot wrap the conversation key: {0}")]
    Wrap(String),
    #[error("cannot sign: {0}")]
    Sign(String),
    #[error("malformed envelope: {0}")]
    Malformed(String),
    #[error("envelope version {0} is not supported")]
    UnsupportedVersion(u8),
    #[error("the signature does not verify against {0}'s key")]
    BadSignature(String),
    #[error("the envelope claims {field} {claimed}, but it arrived as {actual}")]
    Mismatch {
        field: &'static str,
        claimed: String,
        actual: String,
    },
    #[error("no key for epoch {}", .0.0)]
    UnknownEpoch(Epoch),
    #[error("the message does not decrypt with its epoch's key")]
    Decrypt,
    #[error(
        "{username}'s key changed: pinned {pinned}, now {presented}; verify the new safety number before trusting it"
    )]
    KeyChanged {
        username: String,
        pinned: Fingerprint,
        presented: Fingerprint,
    },
    #[error("{0} is not a fingerprint (expected 60 digits)")]
    BadFingerprint(String),
    #[error("the safety number given for {0} is not the one of their current key")]
    FingerprintMismatch(String),
    #[error("membership change refused: {0}")]
    Membership(String),
}
