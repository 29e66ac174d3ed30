//! FastChat's end-to-end encryption. Pure functions and values: nothing here does I/O, and
//! nothing here is linked into the server, which only ever stores what this crate produces.
//!
//! The primitives are those of the original design, RSA and Fernet, used so that the holes
//! that design left are closed (see docs/security.md):
//! - [`Identity`]: a user's RSA key pair (3072 bits by default). The private key only leaves
//!   memory as passphrase-encrypted PKCS#8.
//! - [`ConversationKey`]: a Fernet key per conversation *epoch*, wrapped for each member with
//!   RSA-OAEP (SHA-256). Every membership change starts a new epoch with a new key, so a
//!   removed member cannot read on and an added one cannot read back.
//! - [`envelope`]: every message is Fernet-encrypted and signed by its sender with RSA-PSS
//!   (SHA-256) over all of its fields, so no key holder can forge another member's messages
//!   and the server cannot move a message to another conversation, epoch or sender.
//! - [`membership`]: each membership change is signed by the admin who made it, so a server
//!   cannot add a member on its own.
//! - [`pins`]: trust on first use of each user's key, with safety-number fingerprints, so a
//!   server that swaps a public key is caught.
//!
//! Private-key operations (OAEP decryption, PSS signing) happen only in the daemon on the
//! user's machine, never on behalf of a remote party that could time them; this is why the
//! rsa crate's timing advisory RUSTSEC-2023-0071 does not apply (see deny.toml).

pub mod attachment;
pub mod envelope;
mod error;
mod identity;
mod keys;
pub mod membership;
pub mod pins;

pub use envelope::{Envelope, Header, Kind};
pub use error::CryptoError;
pub use identity::{Fingerprint, Identity, PublicIdentity};
pub use keys::ConversationKey;

/// The key size new identities get.
pub const DEFAULT_KEY_BITS: usize = 3072;

/// The smallest key accepted from anyone (tests use it to stay fast).
pub const MIN_KEY_BITS: usize = 2048;

/// The largest key accepted from anyone, which bounds the cost of verifying with it.
pub const MAX_KEY_BITS: usize = 8192;
