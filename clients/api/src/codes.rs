//! Stable JSON-RPC error codes of the daemon's methods. Scripts match on these numbers;
//! they are never reused or renumbered. (-32xxx codes are JSON-RPC's own: -32602 is
//! invalid params.)

/// No account is logged in on this daemon.
pub const NOT_LOGGED_IN: i32 = 1000;
/// Wrong username or password (the server does not say which).
pub const BAD_CREDENTIALS: i32 = 1001;
/// The username is taken.
pub const USERNAME_TAKEN: i32 = 1002;
/// No such user.
pub const UNKNOWN_USER: i32 = 1003;
/// No such group or conversation (or not one of the caller's).
pub const UNKNOWN_CONVERSATION: i32 = 1004;
/// The caller may not do that (not a member, not an admin).
pub const FORBIDDEN: i32 = 1005;
/// A user's key differs from the pinned one: verify the new fingerprint first.
pub const KEY_CHANGED: i32 = 1006;
/// No server could be reached in time; nothing was done (and nothing queued).
pub const UNAVAILABLE: i32 = 1007;
/// Too many attempts: wait and try again.
pub const RATE_LIMITED: i32 = 1008;
/// The input is well-formed JSON but not acceptable (bad name, empty text, too large, ...).
pub const INVALID_INPUT: i32 = 1009;
/// The group already exists.
pub const ALREADY_EXISTS: i32 = 1010;
/// The identity key could not be unlocked or is missing: log in again.
pub const LOCKED: i32 = 1011;
/// The message was sealed and queued, but no server acknowledged it in time. It stays in
/// the outbox and is sent when one answers: sending it again would send it twice.
pub const QUEUED: i32 = 1012;
/// Something failed inside the daemon; its log says more.
pub const INTERNAL: i32 = 1099;
