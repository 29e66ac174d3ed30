//! Signed membership: every epoch of a conversation is a [`Statement`] of its members and
//! admins, signed by the admin who made the change. Members follow the chain of statements
//! with a [`Chain`], which refuses any epoch not signed by an admin of the epoch before, so a
//! server cannot add a member (or itself) on its own.

use std::collections::BTreeMap;

use fastchat_proto::{ConversationId, Epoch};
use serde::{Deserialize, Serialize};

use crate::error::CryptoError;
use crate::identity::{Identity, PublicIdentity};

const DOMAIN: &[u8] = b"fastchat membership v1\0";

/// The conversation named in a first epoch's statement, which is signed before the server
/// assigns the conversation its id. The next epoch's statement names the real id.
pub const UNASSIGNED: ConversationId = ConversationId(0);

/// One epoch of a conversation as its admin declared it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Statement {
    pub conversation: ConversationId,
    pub epoch: Epoch,
    /// The group's name; `None` for a direct conversation.
    pub name: Option<String>,
    /// Every member and whether they are an admin, sorted by name.
    pub members: BTreeMap<String, bool>,
    /// Who made the change (and signed this).
    pub changed_by: String,
}

impl Statement {
    fn signed_bytes(&self) -> Result<Vec<u8>, CryptoError> {
        postcard::to_extend(self, DOMAIN.to_vec())
            .map_err(|e| CryptoError::Membership(e.to_string()))
    }

    /// Signs the statement as `identity` (who must be `changed_by`).
    ///
    /// # Errors
    /// [`CryptoError::Sign`].
    pub fn sign(&self, identity: &Identity) -> Result<Vec<u8>, CryptoError> {
        identity.sign(&self.signed_bytes()?)
    }

    fn is_admin(&self, user: &str) -> bool {
        self.members.get(user).copied().unwrap_or(false)
    }
}

/// A member's view of a conversation's membership, advanced one signed epoch at a time.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Chain {
    current: Option<Statement>,
}

impl Chain {
    /// The newest accepted statement.
    #[must_use]
    pub fn current(&self) -> Option<&Statement> {
        self.current.as_ref()
    }

    /// Accepts `statement` if `proof` is `signer_key`'s signature over it and the change is
    /// allowed: the signer is `changed_by`, and an admin of the previous epoch (or, for the
    /// first epoch this member sees, an admin of the statement itself), and epochs follow
    /// one another.
    ///
    /// # Errors
    /// [`CryptoError::BadSignature`] or [`CryptoError::Membership`] saying why.
    pub fn accept(
        &mut self,
        statement: Statement,
        proof: &[u8],
        signer_key: &PublicIdentity,
    ) -> Result<(), CryptoError> {
        signer_key.verify(&statement.signed_bytes()?, proof, &statement.changed_by)?;
        let refuse = |why: String| Err(CryptoError::Membership(why));
        match &self.current {
            None => {
                if !statement.is_admin(&statement.changed_by) && statement.name.is_some() {
                    return refuse(format!(
                        "epoch {} was made by {}, who is not an admin of it",
                        statement.epoch.0, statement.changed_by
                    ));
                }
            }
            Some(previous) => {
                let adopts_id = previous.conversation == UNASSIGNED && previous.epoch.0 == 1;
                if statement.conversation != previous.conversation && !adopts_id {
                    return refuse("the statement is for another conversation".into());
                }
                if statement.epoch.0 != previous.epoch.0 + 1 {
                    return refuse(format!(
                        "epoch {} does not follow epoch {}",
                        statement.epoch.0, previous.epoch.0
                    ));
                }
                if !previous.is_admin(&statement.changed_by) {
                    return refuse(format!(
                        "{} changed the members of epoch {} but was not an admin",
                        statement.changed_by, previous.epoch.0
                    ));
                }
            }
        }
        self.current = Some(statement);
        Ok(())
    }

    /// Accepts the first statement after epochs this member did not see (it was removed and
    /// added again): `statement` must be later than the current one, for the same
    /// conversation, and signed by someone who was an admin when this member last saw the
    /// group. So a server cannot restart a member's chain with an admin of its own making.
    ///
    /// # Errors
    /// [`CryptoError::BadSignature`] or [`CryptoError::Membership`] saying why.
    pub fn accept_after_gap(
        &mut self,
        statement: Statement,
        proof: &[u8],
        signer_key: &PublicIdentity,
    ) -> Result<(), CryptoError> {
        let Some(previous) = &self.current else {
            return self.accept(statement, proof, signer_key);
        };
        if statement.epoch.0 == previous.epoch.0 + 1 {
            return self.accept(statement, proof, signer_key);
        }
        signer_key.verify(&statement.signed_bytes()?, proof, &statement.changed_by)?;
        let adopts_id = previous.conversation == UNASSIGNED && previous.epoch.0 == 1;
        if statement.conversation != previous.conversation && !adopts_id {
            return Err(CryptoError::Membership(
                "the statement is for another conversation".into(),
            ));
        }
        if statement.epoch.0 <= previous.epoch.0 {
            return Err(CryptoError::Membership(format!(
                "epoch {} is not after epoch {}",
                statement.epoch.0, previous.epoch.0
            )));
        }
        if !previous.is_admin(&statement.changed_by) || !statement.is_admin(&statement.changed_by) {
            return Err(CryptoError::Membership(format!(
                "{} made epoch {} but was not an admin in epoch {}, the last one seen",
                statement.changed_by, statement.epoch.0, previous.epoch.0
            )));
        }
        self.current = Some(statement);
        Ok(())
    }
}
