//! Conversation keys: one Fernet key per conversation epoch.

use std::fmt;

use fernet::Fernet;
use zeroize::Zeroizing;

use crate::error::CryptoError;
use crate::identity::{Identity, PublicIdentity};

/// The Fernet key of one conversation epoch. Wiped from memory when dropped.
pub struct ConversationKey {
    /// The key in Fernet's own form (URL-safe base64 of 32 bytes).
    text: Zeroizing<String>,
    fernet: Fernet,
}

impl fmt::Debug for ConversationKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ConversationKey(<secret>)")
    }
}

impl ConversationKey {
    /// A fresh random key, made by the member who starts an epoch.
    #[must_use]
    pub fn generate() -> ConversationKey {
        let text = Zeroizing::new(Fernet::generate_key());
        Self::from_text(text).expect("Fernet::generate_key makes valid keys")
    }

    fn from_text(text: Zeroizing<String>) -> Option<ConversationKey> {
        let fernet = Fernet::new(&text)?;
        Some(ConversationKey { text, fernet })
    }

    /// This key encrypted for `member` with RSA-OAEP (SHA-256).
    ///
    /// # Errors
    /// [`CryptoError::Wrap`] if the key is too large for the member's RSA key (it is not for
    /// any accepted key size).
    pub fn wrap_for(&self, member: &PublicIdentity) -> Result<Vec<u8>, CryptoError> {
        member.wrap(self.text.as_bytes())
    }

    /// Unwraps a key wrapped for `identity`.
    ///
    /// # Errors
    /// [`CryptoError::Unwrap`] if it was wrapped for someone else or tampered with.
    pub fn unwrap(identity: &Identity, wrapped: &[u8]) -> Result<ConversationKey, CryptoError> {
        let bytes = identity.unwrap(wrapped)?;
        let text = std::str::from_utf8(&bytes).map_err(|_| CryptoError::Unwrap)?;
        Self::from_text(Zeroizing::new(text.to_owned())).ok_or(CryptoError::Unwrap)
    }

    pub(crate) fn fernet(&self) -> &Fernet {
        &self.fernet
    }
}
