//! Membership changes, written once for every backend: creating a group, amending it, and
//! opening a direct conversation. Each backend supplies the SQL as a [`MembershipTx`] on its
//! connection and runs these functions inside one transaction.

use std::collections::BTreeSet;

use async_trait::async_trait;
use fastchat_proto::{
    AmendGroup, ConversationId, ConversationInfo, ConversationKind, Epoch, EpochMaterial,
    ErrorCode, Seq, Timestamp,
};

use super::rules::{self, CurrentMember};
use super::{Changed, StoreError, StoreResult, User, UserId, unknown_conversation};

/// The statements a membership change needs, in one backend's dialect.
#[async_trait]
pub(crate) trait MembershipTx: Send {
    async fn user_id(&mut self, name: &str) -> StoreResult<UserId>;
    async fn current_members(&mut self, c: ConversationId) -> StoreResult<Vec<CurrentMember>>;
    async fn current_member_ids(&mut self, c: ConversationId) -> StoreResult<Vec<UserId>>;
    /// With `lock`, holds the conversation's row until the transaction ends, which
    /// serialises the change with appends to it (on every server).
    async fn load_info(&mut self, c: ConversationId, lock: bool) -> StoreResult<ConversationInfo>;
    /// `None` if a group has that name.
    async fn insert_group(
        &mut self,
        name: &str,
        creator: UserId,
        now: Timestamp,
    ) -> StoreResult<Option<ConversationId>>;
    /// `None` if the pair has a direct conversation already.
    async fn insert_direct(
        &mut self,
        key: &str,
        creator: UserId,
        now: Timestamp,
    ) -> StoreResult<Option<ConversationId>>;
    async fn find_direct(&mut self, key: &str) -> StoreResult<ConversationId>;
    async fn join(
        &mut self,
        c: ConversationId,
        user: UserId,
        admin: bool,
        after: Seq,
    ) -> StoreResult<()>;
    async fn leave(&mut self, c: ConversationId, user: UserId, after: Seq) -> StoreResult<()>;
    async fn set_epoch(&mut self, c: ConversationId, epoch: Epoch) -> StoreResult<()>;
    async fn insert_epoch(
        &mut self,
        c: ConversationId,
        epoch: Epoch,
        by: UserId,
        proof: &[u8],
        now: Timestamp,
    ) -> StoreResult<()>;
    async fn insert_epoch_key(
        &mut self,
        c: ConversationId,
        epoch: Epoch,
        user: UserId,
        wrapped: &[u8],
    ) -> StoreResult<()>;
    /// Whether `user` was ever a member of `c`.
    async fn was_member(&mut self, c: ConversationId, user: UserId) -> StoreResult<bool>;
}

/// Records an epoch, its proof, and the key wrapped for each of its members.
async fn start_epoch(
    tx: &mut impl MembershipTx,
    c: ConversationId,
    epoch: Epoch,
    by: UserId,
    material: &EpochMaterial,
    now: Timestamp,
) -> StoreResult<()> {
    tx.insert_epoch(c, epoch, by, &material.proof, now).await?;
    for key in &material.keys {
        let member = tx.user_id(&key.username).await?;
        tx.insert_epoch_key(c, epoch, member, &key.wrapped).await?;
    }
    Ok(())
}

pub(crate) async fn create_group(
    tx: &mut impl MembershipTx,
    creator: &User,
    name: &str,
    members: &[String],
    material: &EpochMaterial,
    now: Timestamp,
) -> StoreResult<Changed> {
    let mut names: BTreeSet<String> = rules::normalize(members).into_iter().collect();
    names.insert(creator.username.clone());
    rules::check_size(names.len())?;
    rules::check_keys(material, &names)?;
    let Some(conversation) = tx.insert_group(name, creator.id, now).await? else {
        return Err(StoreError::refused(
            ErrorCode::NameTaken,
            format!("a group named {name} exists already"),
        ));
    };
    let mut notify = Vec::with_capacity(names.len());
    for member in &names {
        let id = tx.user_id(member).await?;
        tx.join(conversation, id, id == creator.id, Seq(0)).await?;
        notify.push(id);
    }
    start_epoch(tx, conversation, Epoch(1), creator.id, material, now).await?;
    let info = tx.load_info(conversation, false).await?;
    Ok(Changed { info, notify })
}

pub(crate) async fn amend_group(
    tx: &mut impl MembershipTx,
    by: &User,
    amend: &AmendGroup,
    now: Timestamp,
) -> StoreResult<Changed> {
    let add = rules::normalize(&amend.add);
    let remove = rules::normalize(&amend.remove);
    let conversation = amend.conversation;
    let before = tx.load_info(conversation, true).await?;
    if !matches!(before.kind, ConversationKind::Group { .. }) {
        return Err(StoreError::refused(
            ErrorCode::WrongConversationKind,
            "a direct conversation cannot be amended",
        ));
    }
    let current = tx.current_members(conversation).await?;
    if !current.iter().any(|m| m.username == by.username) {
        return Err(unknown_conversation(conversation));
    }
    let after = rules::check_amend(&current, &by.username, &add, &remove)?;
    if amend.new_epoch.0 != before.epoch.0 + 1 {
        return Err(StoreError::refused(
            ErrorCode::EpochConflict,
            format!(
                "the group is at epoch {}, so the change must start epoch {}",
                before.epoch.0,
                before.epoch.0 + 1
            ),
        ));
    }
    rules::check_keys(&amend.material, &after)?;

    // Removed members keep what they could see up to now; added ones see from now on.
    let mut notify = tx.current_member_ids(conversation).await?;
    for name in &remove {
        let id = tx.user_id(name).await?;
        tx.leave(conversation, id, before.last_seq).await?;
    }
    for name in &add {
        let id = tx.user_id(name).await?;
        tx.join(conversation, id, false, before.last_seq).await?;
        notify.push(id);
    }
    tx.set_epoch(conversation, amend.new_epoch).await?;
    start_epoch(
        tx,
        conversation,
        amend.new_epoch,
        by.id,
        &amend.material,
        now,
    )
    .await?;
    let info = tx.load_info(conversation, false).await?;
    Ok(Changed { info, notify })
}

/// The direct conversation of `user` and `peer`, created at epoch 1 if there is none
/// (`notify` is empty when it existed).
pub(crate) async fn open_direct(
    tx: &mut impl MembershipTx,
    user: &User,
    peer: &str,
    material: &EpochMaterial,
    now: Timestamp,
) -> StoreResult<Changed> {
    if peer == user.username {
        return Err(StoreError::refused(
            ErrorCode::InvalidRequest,
            "a direct conversation needs another user",
        ));
    }
    let peer_id = tx.user_id(peer).await?;
    let (lo, hi) = if user.id < peer_id {
        (user.id, peer_id)
    } else {
        (peer_id, user.id)
    };
    let key = format!("{}:{}", lo.0, hi.0);
    let names: BTreeSet<String> = [user.username.clone(), peer.to_owned()].into();
    rules::check_keys(material, &names)?;
    // Two users opening their conversation at once (on two servers): one insert wins, the
    // other finds it.
    let Some(conversation) = tx.insert_direct(&key, user.id, now).await? else {
        let existing = tx.find_direct(&key).await?;
        let info = tx.load_info(existing, false).await?;
        return Ok(Changed {
            info,
            notify: Vec::new(),
        });
    };
    for id in [user.id, peer_id] {
        tx.join(conversation, id, false, Seq(0)).await?;
    }
    start_epoch(tx, conversation, Epoch(1), user.id, material, now).await?;
    let info = tx.load_info(conversation, false).await?;
    Ok(Changed {
        info,
        notify: vec![user.id, peer_id],
    })
}

/// Why `user` may not send to `c`: no longer a member, or never was.
pub(crate) async fn non_member(
    tx: &mut impl MembershipTx,
    c: ConversationId,
    user: UserId,
) -> StoreResult<StoreError> {
    Ok(if tx.was_member(c, user).await? {
        StoreError::refused(
            ErrorCode::NotMember,
            format!("you are no longer a member of conversation {}", c.0),
        )
    } else {
        unknown_conversation(c)
    })
}
