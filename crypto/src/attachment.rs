//! Attachments (images): the content travels in chunks beside the message, each chunk
//! Fernet-encrypted under the epoch's key; the message's (signed, encrypted) content is a
//! [`Manifest`] that names the upload and the SHA-256 of every encrypted chunk and of the
//! whole plaintext. So a receiver detects a chunk swapped, dropped, reordered or altered by
//! the server, and a chunk moved from another upload, before it writes anything.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE;
use rsa::sha2::{Digest, Sha256};
use serde::{Deserialize, Serialize};

use crate::error::CryptoError;
use crate::keys::ConversationKey;

/// What an image message carries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// The upload the chunks were stored under.
    pub upload: [u8; 16],
    /// The plaintext's length in bytes.
    pub size: u64,
    /// SHA-256 of each encrypted chunk, in order.
    pub chunks: Vec<[u8; 32]>,
    /// SHA-256 of the whole plaintext.
    pub sha256: [u8; 32],
}

impl Manifest {
    #[must_use]
    pub fn encode(&self) -> Vec<u8> {
        postcard::to_allocvec(self).expect("a manifest always encodes")
    }

    /// # Errors
    /// [`CryptoError::Malformed`].
    pub fn decode(bytes: &[u8]) -> Result<Manifest, CryptoError> {
        postcard::from_bytes(bytes).map_err(|e| CryptoError::Malformed(format!("manifest: {e}")))
    }

    /// Checks that `chunk` is the `index`-th encrypted chunk of this upload.
    ///
    /// # Errors
    /// [`CryptoError::Mismatch`] if it is not.
    pub fn check_chunk(&self, index: usize, chunk: &[u8]) -> Result<(), CryptoError> {
        let expected = self
            .chunks
            .get(index)
            .ok_or_else(|| CryptoError::Mismatch {
                field: "chunk index",
                claimed: index.to_string(),
                actual: format!("{} chunks", self.chunks.len()),
            })?;
        let actual: [u8; 32] = Sha256::digest(chunk).into();
        if &actual == expected {
            Ok(())
        } else {
            Err(CryptoError::Mismatch {
                field: "chunk hash",
                claimed: format!("chunk {index}"),
                actual: "other bytes".into(),
            })
        }
    }
}

/// SHA-256, for manifests.
#[must_use]
pub fn sha256(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

impl ConversationKey {
    /// Encrypts one chunk of an attachment (a Fernet token, as raw bytes).
    ///
    /// # Errors
    /// [`CryptoError::Malformed`] if Fernet's output is not base64 (it always is).
    pub fn seal_chunk(&self, plaintext: &[u8]) -> Result<Vec<u8>, CryptoError> {
        URL_SAFE
            .decode(self.fernet().encrypt(plaintext))
            .map_err(|e| CryptoError::Malformed(format!("Fernet token: {e}")))
    }

    /// Decrypts one chunk.
    ///
    /// # Errors
    /// [`CryptoError::Decrypt`] if it was not made with this key or was altered.
    pub fn open_chunk(&self, token: &[u8]) -> Result<Vec<u8>, CryptoError> {
        self.fernet()
            .decrypt(&URL_SAFE.encode(token))
            .map_err(|_| CryptoError::Decrypt)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_round_trip_and_are_checked_against_the_manifest() {
        let key = ConversationKey::generate();
        let parts: [&[u8]; 2] = [b"first part of the image", b"second"];
        let sealed: Vec<Vec<u8>> = parts
            .iter()
            .map(|p| key.seal_chunk(p).expect("seals"))
            .collect();
        let manifest = Manifest {
            upload: [3; 16],
            size: 29,
            chunks: sealed.iter().map(|c| sha256(c)).collect(),
            sha256: sha256(b"first part of the imagesecond"),
        };
        let manifest = Manifest::decode(&manifest.encode()).expect("decodes");
        for (i, c) in sealed.iter().enumerate() {
            manifest.check_chunk(i, c).expect("listed");
            assert_eq!(key.open_chunk(c).expect("opens"), parts[i]);
        }
        // Swapped, out of range, altered, or under another key: refused.
        assert!(manifest.check_chunk(0, &sealed[1]).is_err());
        assert!(manifest.check_chunk(2, &sealed[0]).is_err());
        let mut altered = sealed[0].clone();
        altered[10] ^= 1;
        assert!(manifest.check_chunk(0, &altered).is_err());
        assert!(key.open_chunk(&altered).is_err());
        assert!(ConversationKey::generate().open_chunk(&sealed[0]).is_err());
        assert!(
            !sealed[0].windows(10).any(|w| w == b"first part"),
            "no plaintext"
        );
    }
}
