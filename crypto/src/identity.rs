//! Identities: a user's RSA key pair, its public half, and its fingerprint.

use std::fmt;

use getrandom::SysRng;
use rsa::pkcs8::{
    DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey, LineEnding,
};
use rsa::sha2::{Digest, Sha256};
use rsa::traits::PublicKeyParts;
use rsa::{PrivateKey, PublicKey};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::error::CryptoError;
use crate::{MAX_KEY_BITS, MIN_KEY_BITS};

/// A user's key pair. Lives only in the daemon; leaves memory only as encrypted PKCS#8.
pub struct Identity {
    private: PrivateKey,
    public: PublicIdentity,
}

impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Identity")
            .field("public", &self.public)
            .finish_non_exhaustive()
    }
}

impl Identity {
    /// Generates a new key pair of `bits` bits (at least [`MIN_KEY_BITS`]).
    ///
    /// # Errors
    /// If `bits` is out of range or the system's random source fails.
    pub fn generate(bits: usize) -> Result<Identity, CryptoError> {
        if !(MIN_KEY_BITS..=MAX_KEY_BITS).contains(&bits) {
            return Err(CryptoError::KeyGeneration(format!(
                "key size must be {MIN_KEY_BITS} to {MAX_KEY_BITS} bits, not {bits}"
            )));
        }
        let private = PrivateKey::new(&mut SysRng, bits)
            .map_err(|e| CryptoError::KeyGeneration(e.to_string()))?;
        Self::from_private(private)
    }

    fn from_private(private: PrivateKey) -> Result<Identity, CryptoError> {
        let public = PublicIdentity::from_key(private.to_public_key())?;
        Ok(Identity { private, public })
    }

    /// The private key as passphrase-encrypted PKCS#8 PEM (scrypt + AES-256-CBC), readable
    /// by `openssl pkey`.
    ///
    /// # Errors
    /// If encoding fails (it does not for keys this type holds).
    pub fn to_encrypted_pem(&self, passphrase: &str) -> Result<Zeroizing<String>, CryptoError> {
        self.private
            .to_pkcs8_encrypted_pem(passphrase.as_bytes(), LineEnding::LF)
            .map_err(|e| CryptoError::KeyEncoding(e.to_string()))
    }

    /// Reads a key written by [`Identity::to_encrypted_pem`].
    ///
    /// # Errors
    /// [`CryptoError::KeyFile`] for a wrong passphrase or a damaged file, without saying
    /// which.
    pub fn from_encrypted_pem(pem: &str, passphrase: &str) -> Result<Identity, CryptoError> {
        let private = PrivateKey::from_pkcs8_encrypted_pem(pem, passphrase.as_bytes())
            .map_err(|_| CryptoError::KeyFile)?;
        Self::from_private(private)
    }

    #[must_use]
    pub fn public(&self) -> &PublicIdentity {
        &self.public
    }

    /// An RSA-PSS (SHA-256) signature over `message`.
    pub(crate) fn sign(&self, message: &[u8]) -> Result<Vec<u8>, CryptoError> {
        self.private
            .pss_sign::<Sha256>(message)
            .map_err(|e| CryptoError::Sign(e.to_string()))
    }

    /// RSA-OAEP (SHA-256) decryption of a wrapped key.
    pub(crate) fn unwrap(&self, wrapped: &[u8]) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        // One error for every failure: nothing about why decryption failed is revealed.
        self.private
            .oaep_decrypt::<Sha256>(wrapped)
            .map(Zeroizing::new)
            .map_err(|_| CryptoError::Unwrap)
    }
}

/// A user's public key as published in the directory (SubjectPublicKeyInfo DER).
#[derive(Clone, PartialEq, Eq)]
pub struct PublicIdentity {
    key: PublicKey,
    der: Vec<u8>,
    fingerprint: Fingerprint,
}

impl fmt::Debug for PublicIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "PublicIdentity({} bits, {})",
            self.key.size() * 8,
            self.fingerprint
        )
    }
}

impl PublicIdentity {
    /// Parses a published key, refusing sizes outside [`MIN_KEY_BITS`]..=[`MAX_KEY_BITS`].
    ///
    /// # Errors
    /// [`CryptoError::BadPublicKey`].
    pub fn from_der(der: &[u8]) -> Result<PublicIdentity, CryptoError> {
        let key = PublicKey::from_public_key_der(der)
            .map_err(|e| CryptoError::BadPublicKey(e.to_string()))?;
        Self::from_key(key)
    }

    fn from_key(key: PublicKey) -> Result<PublicIdentity, CryptoError> {
        let bits = key.size() * 8;
        if !(MIN_KEY_BITS..=MAX_KEY_BITS).contains(&bits) {
            return Err(CryptoError::BadPublicKey(format!(
                "{bits}-bit keys are not accepted"
            )));
        }
        let der = key
            .to_public_key_der()
            .map_err(|e| CryptoError::BadPublicKey(e.to_string()))?
            .into_vec();
        let fingerprint = Fingerprint::of(&der);
        Ok(PublicIdentity {
            key,
            der,
            fingerprint,
        })
    }

    /// The DER to publish.
    #[must_use]
    pub fn der(&self) -> &[u8] {
        &self.der
    }

    #[must_use]
    pub fn fingerprint(&self) -> &Fingerprint {
        &self.fingerprint
    }

    /// Checks an RSA-PSS (SHA-256) signature; `who` names the key's owner in the error.
    pub(crate) fn verify(
        &self,
        message: &[u8],
        signature: &[u8],
        who: &str,
    ) -> Result<(), CryptoError> {
        self.key
            .pss_verify::<Sha256>(message, signature)
            .map_err(|_| CryptoError::BadSignature(who.to_owned()))
    }

    /// RSA-OAEP (SHA-256) encryption of a conversation key for this key's owner.
    pub(crate) fn wrap(&self, secret: &[u8]) -> Result<Vec<u8>, CryptoError> {
        self.key
            .oaep_encrypt::<Sha256>(secret)
            .map_err(|e| CryptoError::Wrap(e.to_string()))
    }
}

/// SHA-256 of a public key's DER, shown as a safety number: 60 digits in 12 groups of 5,
/// which two people can read to each other to check they see the same key.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Fingerprint(pub [u8; 32]);

impl Fingerprint {
    #[must_use]
    pub fn of(public_der: &[u8]) -> Fingerprint {
        Fingerprint(Sha256::digest(public_der).into())
    }

    /// The 60 digits, without spaces.
    #[must_use]
    pub fn digits(&self) -> String {
        // Six 5-byte chunks, each reduced to 10 decimal digits (as Signal's safety numbers).
        self.0[..30]
            .chunks(5)
            .map(|chunk| {
                let n = chunk.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b));
                format!("{:010}", n % 10_000_000_000)
            })
            .collect()
    }

    /// Whether `text` (digits, spaces allowed) is this fingerprint's safety number.
    ///
    /// # Errors
    /// [`CryptoError::BadFingerprint`] if `text` is not 60 digits.
    pub fn matches(&self, text: &str) -> Result<bool, CryptoError> {
        let digits: String = text.chars().filter(|c| !c.is_whitespace()).collect();
        if digits.len() != 60 || !digits.chars().all(|c| c.is_ascii_digit()) {
            return Err(CryptoError::BadFingerprint(text.to_owned()));
        }
        Ok(digits == self.digits())
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let digits = self.digits();
        for (i, group) in digits.as_bytes().chunks(5).enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            f.write_str(std::str::from_utf8(group).map_err(|_| fmt::Error)?)?;
        }
        Ok(())
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Fingerprint({self})")
    }
}
