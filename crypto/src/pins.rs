//! Trust on first use. The first key seen for a user is pinned; a different key later is
//! refused (for encrypting to and for accepting from that user) until the person verifies
//! the new safety number, out of band, and says so.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::CryptoError;
use crate::identity::{Fingerprint, PublicIdentity};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pin {
    pub fingerprint: Fingerprint,
    /// The user compared the safety number with its owner.
    pub verified: bool,
}

/// How far a key is trusted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trust {
    /// First sight: pinned now.
    New,
    /// The pinned key, not yet verified.
    Pinned,
    /// The pinned key, verified by the user.
    Verified,
}

/// Every user's pinned key. Serializable, so the daemon can keep it with the profile.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pins {
    users: BTreeMap<String, Pin>,
}

impl Pins {
    /// Checks the key the directory presents for `username`, pinning it on first sight.
    ///
    /// # Errors
    /// [`CryptoError::KeyChanged`] if it differs from the pinned key.
    pub fn check(&mut self, username: &str, key: &PublicIdentity) -> Result<Trust, CryptoError> {
        let presented = *key.fingerprint();
        match self.users.get(username) {
            None => {
                self.users.insert(
                    username.to_owned(),
                    Pin {
                        fingerprint: presented,
                        verified: false,
                    },
                );
                Ok(Trust::New)
            }
            Some(pin) if pin.fingerprint == presented => Ok(if pin.verified {
                Trust::Verified
            } else {
                Trust::Pinned
            }),
            Some(pin) => Err(CryptoError::KeyChanged {
                username: username.to_owned(),
                pinned: pin.fingerprint,
                presented,
            }),
        }
    }

    /// Records that the user compared `safety_number` with `username` and it matched the
    /// key the directory now presents; that key becomes the pinned, verified one.
    ///
    /// # Errors
    /// [`CryptoError::BadFingerprint`] for text that is not a safety number;
    /// [`CryptoError::FingerprintMismatch`] if it is not `key`'s.
    pub fn verify(
        &mut self,
        username: &str,
        key: &PublicIdentity,
        safety_number: &str,
    ) -> Result<(), CryptoError> {
        if !key.fingerprint().matches(safety_number)? {
            return Err(CryptoError::FingerprintMismatch(username.to_owned()));
        }
        self.users.insert(
            username.to_owned(),
            Pin {
                fingerprint: *key.fingerprint(),
                verified: true,
            },
        );
        Ok(())
    }

    #[must_use]
    pub fn get(&self, username: &str) -> Option<&Pin> {
        self.users.get(username)
    }
}
