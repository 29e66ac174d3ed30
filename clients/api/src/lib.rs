//! The daemon's local API: the JSON-RPC method table ([`FastChatApi`]), the types its methods
//! take and return, and the typed client every front end (CLI, desktop, tests) uses, with
//! [`autostart`] to start the profile's daemon when none runs.
//!
//! This is the one place the method table is declared: `fastchatd` implements the server half
//! of the trait, front ends call the client half. Everything here is serializable and so
//! part of an IPC boundary: fields are added, never renamed (see docs/interface.md).

pub mod autostart;
mod client;
pub mod codes;
pub mod paths;
mod types;

pub use client::{ConnectError, connect};
pub use types::*;

use jsonrpsee::core::{RpcResult, SubscriptionResult};
use jsonrpsee::proc_macros::rpc;

/// Every method `fastchatd` serves. Params are named (a JSON object); see docs/interface.md.
#[rpc(server, client)]
pub trait FastChatApi {
    /// Creates an account: generates the identity key in the daemon, publishes its public half.
    #[method(name = "signup", param_kind = map)]
    async fn signup(&self, username: String, password: String) -> RpcResult<Account>;

    /// Logs in (and unlocks the identity key kept for this profile).
    #[method(name = "login", param_kind = map)]
    async fn login(&self, username: String, password: String) -> RpcResult<Account>;

    #[method(name = "logout", param_kind = map)]
    async fn logout(&self) -> RpcResult<Empty>;

    #[method(name = "status", param_kind = map)]
    async fn status(&self) -> RpcResult<Status>;

    /// Seals and sends a text message; answers once the server has stored it.
    #[method(name = "send", param_kind = map)]
    async fn send(&self, to: ConversationRef, text: String) -> RpcResult<SendReceipt>;

    #[method(name = "sendImage", param_kind = map)]
    async fn send_image(&self, to: ConversationRef, path: String) -> RpcResult<SendReceipt>;

    #[method(name = "createGroup", param_kind = map)]
    async fn create_group(&self, name: String, members: Vec<String>) -> RpcResult<Group>;

    #[method(name = "amendGroup", param_kind = map)]
    async fn amend_group(
        &self,
        name: String,
        add: Option<Vec<String>>,
        remove: Option<Vec<String>>,
    ) -> RpcResult<Group>;

    #[method(name = "listGroups", param_kind = map)]
    async fn list_groups(&self) -> RpcResult<Vec<Group>>;

    /// Messages of a conversation, oldest first: the newest `limit` (default 50) before
    /// sequence number `before` (default: the end).
    #[method(name = "history", param_kind = map)]
    async fn history(
        &self,
        conversation: ConversationRef,
        limit: Option<u32>,
        before: Option<u64>,
    ) -> RpcResult<Vec<Message>>;

    /// Live messages (of one conversation, or all) as `message` notifications. (Named
    /// `subscribe_messages` in Rust, where `subscribe` is taken by jsonrpsee's client trait.)
    #[subscription(name = "subscribe" => "message", unsubscribe = "unsubscribe", item = Message, param_kind = map)]
    async fn subscribe_messages(&self, conversation: Option<ConversationRef>)
    -> SubscriptionResult;

    #[method(name = "fingerprint", param_kind = map)]
    async fn fingerprint(&self, username: Option<String>) -> RpcResult<FingerprintInfo>;

    #[method(name = "verify", param_kind = map)]
    async fn verify(&self, username: String, fingerprint: String) -> RpcResult<Verified>;

    #[method(name = "servers", param_kind = map)]
    async fn servers(&self) -> RpcResult<Vec<ServerEntry>>;

    #[method(name = "setFocus", param_kind = map)]
    async fn set_focus(&self, conversation: Option<ConversationRef>) -> RpcResult<Empty>;

    /// Extension: the members of a group, with who is an admin.
    #[method(name = "groupMembers", param_kind = map)]
    async fn group_members(&self, name: String) -> RpcResult<Vec<MemberInfo>>;

    /// Extension: every conversation the user is in, groups and direct ones alike, for a
    /// sidebar: the most recently active first (by the newest stored message, then by name).
    #[method(name = "conversations", param_kind = map)]
    async fn conversations(&self) -> RpcResult<Vec<ConversationSummary>>;
}
