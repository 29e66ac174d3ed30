//! Creating and amending groups, and opening direct conversations.

use super::*;

impl Engine {
    pub async fn create_group(&self, name: String, members: Vec<String>) -> ApiResult<Group> {
        let (me, identity) = self.logged_in().await?;
        proto::validate::group_name(&name).map_err(ApiError::invalid)?;
        let link = self.connection(true).await?.link;
        let others: Vec<String> = names(&members).into_iter().filter(|m| *m != me).collect();
        let mut roster = BTreeMap::new();
        roster.insert(me.clone(), true);
        for o in &others {
            roster.insert(o.clone(), false);
        }
        let statement = Statement {
            conversation: membership::UNASSIGNED,
            epoch: Epoch(1),
            name: Some(name.clone()),
            members: roster,
            changed_by: me.clone(),
        };
        let (material, key, statement) = self.material(&link, &identity, statement).await?;
        let proof = material.proof.clone();
        let info = link
            .request(proto::CreateGroup {
                name,
                members: others,
                material,
            })
            .await?;
        let conv = self.adopt(&identity, &info, key, statement, &proof).await?;
        Ok(group_of(&conv))
    }

    pub async fn amend_group(
        &self,
        name: String,
        add: Vec<String>,
        remove: Vec<String>,
    ) -> ApiResult<Group> {
        let (me, identity) = self.logged_in().await?;
        let link = self.connection(true).await?.link;
        let (add, remove) = (names(&add), names(&remove));
        if add.is_empty() && remove.is_empty() {
            return Err(ApiError::invalid(
                "nothing to change: give members to add or remove",
            ));
        }
        let mut attempt = 0;
        loop {
            let conv = self
                .find(&link, &ConversationRef::Group(name.clone()))
                .await?;
            // Start from the members the last admin signed for, not from what the server
            // says, so a member the server slipped in gets no key.
            let _ = self.epoch_key(&link, &conv, &identity, conv.epoch).await?;
            let signed = self
                .0
                .session
                .lock()
                .await
                .chains
                .get(&conv.id)
                .and_then(|c| c.current().cloned());
            let Some(signed) = signed.filter(|s| s.epoch.0 == conv.epoch) else {
                return Err(ApiError::new(
                    codes::FORBIDDEN,
                    format!(
                        "the current members of {name} are not signed by an admin; refusing to change them"
                    ),
                ));
            };
            let mut roster = signed.members.clone();
            for r in &remove {
                if roster.remove(r).is_none() {
                    return Err(ApiError::invalid(format!("{r} is not a member of {name}")));
                }
            }
            for a in &add {
                if roster.insert(a.clone(), false).is_some() {
                    return Err(ApiError::invalid(format!(
                        "{a} is already a member of {name}"
                    )));
                }
            }
            let statement = Statement {
                conversation: conv.id,
                epoch: Epoch(conv.epoch + 1),
                name: Some(name.clone()),
                members: roster,
                changed_by: me.clone(),
            };
            let (material, key, statement) = self.material(&link, &identity, statement).await?;
            let proof = material.proof.clone();
            let result = link
                .request(proto::AmendGroup {
                    conversation: conv.id,
                    add: add.clone(),
                    remove: remove.clone(),
                    new_epoch: Epoch(conv.epoch + 1),
                    material,
                })
                .await;
            match result {
                Ok(info) => {
                    let conv = self.adopt(&identity, &info, key, statement, &proof).await?;
                    return Ok(group_of(&conv));
                }
                Err(LinkError::Server(body))
                    if body.code == ErrorCode::EpochConflict && attempt == 0 =>
                {
                    // Someone changed the group meanwhile: re-read it and try once more.
                    attempt += 1;
                    self.refresh(&link).await?;
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    pub async fn list_groups(&self) -> ApiResult<Vec<Group>> {
        Ok(self
            .current_conversations()
            .await?
            .iter()
            .filter(|c| c.kind == ConvKind::Group)
            .map(group_of)
            .collect())
    }

    /// Every current conversation, groups and direct ones, the most recently active first
    /// (by the newest stored message; those without one last), then by name.
    pub async fn conversations(&self) -> ApiResult<Vec<ConversationSummary>> {
        let conversations = self.current_conversations().await?;
        let mut newest: HashMap<ConversationId, store::StoredMessage> = self
            .0
            .store
            .newest_messages()
            .await?
            .into_iter()
            .map(|m| (m.conversation, m))
            .collect();
        let mut list: Vec<(String, ConversationSummary)> = conversations
            .into_iter()
            .map(|c| {
                let last = newest.remove(&c.id);
                let summary = ConversationSummary {
                    conversation: c.reference(),
                    members: c.members.iter().map(|m| m.username.clone()).collect(),
                    epoch: c.epoch,
                    unread: c.unread(),
                    last_seq: c.last_seq,
                    last_at: last.as_ref().map(|m| timestamp(m.sent_at_ms)),
                    last_text: last.as_ref().map(last_text),
                };
                (c.name, summary)
            })
            .collect();
        list.sort_by(|(a_name, a), (b_name, b)| {
            b.last_at
                .cmp(&a.last_at)
                .then_with(|| a_name.cmp(b_name))
                .then_with(|| a.conversation.cmp(&b.conversation))
        });
        Ok(list.into_iter().map(|(_, summary)| summary).collect())
    }

    /// The conversations the user is a member of, as the server last said (asked first
    /// when logged in and connected; otherwise what is known here).
    async fn current_conversations(&self) -> ApiResult<Vec<Conversation>> {
        if let Ok(c) = self.connection(true).await {
            let _ = self.refresh(&c.link).await;
        }
        Ok(self
            .0
            .store
            .conversations()
            .await?
            .into_iter()
            .filter(|c| c.current)
            .collect())
    }

    pub async fn group_members(&self, name: String) -> ApiResult<Vec<MemberInfo>> {
        let link = self.connection(true).await?.link;
        Ok(self
            .find(&link, &ConversationRef::Group(name))
            .await?
            .members)
    }

    /// The conversation to send to, opening a direct one if needed.
    pub(super) async fn target(
        &self,
        link: &Link,
        me: &str,
        identity: &Identity,
        to: &ConversationRef,
    ) -> ApiResult<Conversation> {
        match self.find(link, to).await {
            Ok(c) => Ok(c),
            Err(e) if e.code == codes::UNKNOWN_CONVERSATION => {
                let ConversationRef::User(peer) = to else {
                    return Err(e);
                };
                if peer == me {
                    return Err(ApiError::invalid(
                        "a direct conversation needs another user",
                    ));
                }
                let mut roster = BTreeMap::new();
                roster.insert(me.to_owned(), false);
                roster.insert(peer.clone(), false);
                let statement = Statement {
                    conversation: membership::UNASSIGNED,
                    epoch: Epoch(1),
                    name: None,
                    members: roster,
                    changed_by: me.to_owned(),
                };
                let (material, key, statement) = self.material(link, identity, statement).await?;
                let proof = material.proof.clone();
                let info = link
                    .request(proto::OpenDirect {
                        peer: peer.clone(),
                        material,
                    })
                    .await?;
                if info.epoch.0 == 1 && self.0.store.conversation(info.id).await?.is_none() {
                    self.adopt(identity, &info, key, statement, &proof).await
                } else {
                    // It existed already (opened by the peer meanwhile): use its keys.
                    self.conversation_changed(&info).await?;
                    self.find(link, to).await
                }
            }
            Err(e) => Err(e),
        }
    }

    /// The conversation to send to and the key of its current epoch.
    pub(super) async fn target_and_key(
        &self,
        link: &Link,
        me: &str,
        identity: &Identity,
        to: &ConversationRef,
    ) -> ApiResult<(Conversation, Arc<ConversationKey>)> {
        let conv = self.target(link, me, identity, to).await?;
        match self.epoch_key(link, &conv, identity, conv.epoch).await? {
            Some(key) => Ok((conv, key)),
            None => Err(ApiError::new(
                codes::FORBIDDEN,
                format!(
                    "no verified key for the current epoch of {}",
                    conv.reference()
                ),
            )),
        }
    }
}

/// How long a preview of a message's text may be, in characters.
const PREVIEW_CHARS: usize = 80;

/// A message as a sidebar previews it: its text on one line, cut on a character boundary
/// (with `…` when cut), or `[image]`.
fn last_text(m: &store::StoredMessage) -> String {
    match m.kind {
        MessageKind::Image => "[image]".to_owned(),
        MessageKind::Text => preview(m.body.as_deref().unwrap_or_default()),
    }
}

fn preview(text: &str) -> String {
    let line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut chars = line.chars();
    let mut p: String = chars.by_ref().take(PREVIEW_CHARS).collect();
    if chars.next().is_some() {
        p.push('…');
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn previews_are_one_short_line() {
        assert_eq!(preview("hello bob"), "hello bob");
        assert_eq!(preview("  two\n lines\t here \n"), "two lines here");
        assert_eq!(preview(""), "");
        let exact = "x".repeat(PREVIEW_CHARS);
        assert_eq!(preview(&exact), exact);
        // Cut on a character boundary, however many bytes the characters take.
        let long = "é".repeat(PREVIEW_CHARS + 5);
        let cut = preview(&long);
        assert_eq!(cut.chars().count(), PREVIEW_CHARS + 1);
        assert!(cut.ends_with("é…"), "{cut}");
    }

    #[test]
    fn images_preview_as_a_placeholder() {
        let m = store::StoredMessage {
            conversation: ConversationId(1),
            seq: 1,
            sender: "alice".into(),
            client_msg_id: ClientMsgId([0; 16]),
            sent_at_ms: 0,
            kind: MessageKind::Image,
            body: Some("cat.png".into()),
            image_path: Some("/images/x-cat.png".into()),
        };
        assert_eq!(last_text(&m), "[image]");
    }
}
