//! The method table served on the socket: each method of `fastchat_api::FastChatApi` is a
//! call into the [`Engine`].

use fastchat_api::{
    Account, ConversationRef, ConversationSummary, Empty, FastChatApiServer, FingerprintInfo,
    Group, MemberInfo, Message, SendReceipt, ServerEntry, Status, Verified,
};
use jsonrpsee::core::{SubscriptionResult, async_trait};
use jsonrpsee::types::ErrorObjectOwned;
use jsonrpsee::{PendingSubscriptionSink, SubscriptionMessage};
use tokio::sync::broadcast::error::RecvError;

use crate::engine::Engine;
use crate::error::ApiError;

type RpcResult<T> = Result<T, ErrorObjectOwned>;

#[derive(Debug, Clone)]
pub struct Rpc(pub Engine);

fn api<T>(r: Result<T, ApiError>) -> RpcResult<T> {
    r.map_err(Into::into)
}

#[async_trait]
impl FastChatApiServer for Rpc {
    async fn signup(&self, username: String, password: String) -> RpcResult<Account> {
        api(self.0.signup(username, password).await)
    }

    async fn login(&self, username: String, password: String) -> RpcResult<Account> {
        api(self.0.login(username, password).await)
    }

    async fn logout(&self) -> RpcResult<Empty> {
        api(self.0.logout().await.map(|()| Empty {}))
    }

    async fn status(&self) -> RpcResult<Status> {
        api(self.0.status().await)
    }

    async fn send(&self, to: ConversationRef, text: String) -> RpcResult<SendReceipt> {
        api(self.0.send(to, text).await)
    }

    async fn send_image(&self, to: ConversationRef, path: String) -> RpcResult<SendReceipt> {
        api(self.0.send_image(to, path).await)
    }

    async fn create_group(&self, name: String, members: Vec<String>) -> RpcResult<Group> {
        api(self.0.create_group(name, members).await)
    }

    async fn amend_group(
        &self,
        name: String,
        add: Option<Vec<String>>,
        remove: Option<Vec<String>>,
    ) -> RpcResult<Group> {
        api(self
            .0
            .amend_group(name, add.unwrap_or_default(), remove.unwrap_or_default())
            .await)
    }

    async fn list_groups(&self) -> RpcResult<Vec<Group>> {
        api(self.0.list_groups().await)
    }

    async fn history(
        &self,
        conversation: ConversationRef,
        limit: Option<u32>,
        before: Option<u64>,
    ) -> RpcResult<Vec<Message>> {
        api(self.0.history(conversation, limit, before).await)
    }

    async fn subscribe_messages(
        &self,
        pending: PendingSubscriptionSink,
        conversation: Option<ConversationRef>,
    ) -> SubscriptionResult {
        // Subscribe before accepting, so nothing sent right after the answer is missed.
        let mut rx = self.0.subscribe();
        let sink = pending.accept().await?;
        loop {
            tokio::select! {
                m = rx.recv() => match m {
                    Ok(m) => {
                        if conversation.as_ref().is_some_and(|c| *c != m.conversation) {
                            continue;
                        }
                        let raw = serde_json::value::to_raw_value(&m)?;
                        if sink.send(SubscriptionMessage::from(raw)).await.is_err() {
                            break;
                        }
                    }
                    Err(RecvError::Lagged(n)) => {
                        tracing::warn!(missed = n, "a subscriber fell behind; it should re-read history");
                    }
                    Err(RecvError::Closed) => break,
                },
                () = sink.closed() => break,
            }
        }
        Ok(())
    }

    async fn fingerprint(&self, username: Option<String>) -> RpcResult<FingerprintInfo> {
        api(self.0.fingerprint(username).await)
    }

    async fn verify(&self, username: String, fingerprint: String) -> RpcResult<Verified> {
        api(self.0.verify(username, fingerprint).await)
    }

    async fn servers(&self) -> RpcResult<Vec<ServerEntry>> {
        api(self.0.servers().await)
    }

    async fn set_focus(&self, conversation: Option<ConversationRef>) -> RpcResult<Empty> {
        api(self.0.set_focus(conversation).await.map(|()| Empty {}))
    }

    async fn group_members(&self, name: String) -> RpcResult<Vec<MemberInfo>> {
        api(self.0.group_members(name).await)
    }

    async fn conversations(&self) -> RpcResult<Vec<ConversationSummary>> {
        api(self.0.conversations().await)
    }
}
