//! Typed error codes. A code is a stable number on the wire; a peer that receives a code it
//! does not know keeps it as [`ErrorCode::Other`] instead of failing to decode the frame.

use std::fmt;

use serde::{Deserialize, Serialize};

macro_rules! error_codes {
    ($( $(#[$doc:meta])* $name:ident = $num:literal, $retry:literal; )*) => {
        /// Why a request failed, or why a connection is being closed.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[serde(from = "u16", into = "u16")]
        pub enum ErrorCode {
            $( $(#[$doc])* $name, )*
            /// A code from a newer peer that this build does not know.
            Other(u16),
        }

        impl From<u16> for ErrorCode {
            fn from(n: u16) -> Self {
                match n {
                    $( $num => ErrorCode::$name, )*
                    other => ErrorCode::Other(other),
                }
            }
        }

        impl From<ErrorCode> for u16 {
            fn from(code: ErrorCode) -> u16 {
                match code {
                    $( ErrorCode::$name => $num, )*
                    ErrorCode::Other(n) => n,
                }
            }
        }

        impl ErrorCode {
            /// Whether the same request may succeed if sent again later (on this server or
            /// another). Sends are idempotent, so a retryable send is simply resent.
            #[must_use]
            pub fn is_retryable(self) -> bool {
                match self {
                    $( ErrorCode::$name => $retry, )*
                    ErrorCode::Other(_) => false,
                }
            }
        }
    };
}

error_codes! {
    /// The frame could not be decoded (truncated, garbage, invalid UTF-8, trailing bytes).
    Malformed = 1, false;
    /// The frame's length prefix exceeds the maximum.
    FrameTooLarge = 2, false;
    /// The client's protocol version is not the server's.
    UnsupportedVersion = 3, false;
    /// The request type is not one this server knows.
    UnknownRequest = 4, false;
    /// The first frame was not a `Hello`, or a second `Hello` came.
    HandshakeRequired = 5, false;
    /// The request needs a logged-in session.
    NotAuthenticated = 10, false;
    /// Signup or login on a connection that is already logged in.
    AlreadyAuthenticated = 11, false;
    /// The username does not follow the rules (see `validate::username`).
    InvalidUsername = 12, false;
    /// The password is too short or too long.
    InvalidPassword = 13, false;
    /// Somebody already has that username.
    UsernameTaken = 14, false;
    /// Unknown user or wrong password (deliberately the same answer for both).
    BadCredentials = 15, false;
    /// Too many failed logins from this address or for this user; wait and try again.
    TooManyAttempts = 16, true;
    /// The session token is unknown, expired or logged out.
    InvalidSession = 17, false;
    /// No user has that name.
    UnknownUser = 20, false;
    /// No such conversation, or not one this user can see.
    UnknownConversation = 21, false;
    /// The user is not a member of that conversation.
    NotMember = 22, false;
    /// Only an admin of the group may do that.
    NotAdmin = 23, false;
    /// A group with that name exists already.
    NameTaken = 24, false;
    /// The group name does not follow the rules (see `validate::group_name`).
    InvalidName = 25, false;
    /// The operation needs a group, not a direct conversation (or the reverse).
    WrongConversationKind = 26, false;
    /// Someone else changed the conversation first; re-read it and try again.
    EpochConflict = 27, false;
    /// The wrapped keys do not name exactly the conversation's new members.
    KeysDoNotMatchMembers = 28, false;
    /// The request is well-formed but asks for something impossible (too many members,
    /// a direct conversation with oneself, ...). The message says what.
    InvalidRequest = 29, false;
    /// The envelope or public key is larger than the server accepts.
    TooLarge = 30, false;
    /// No such chunk of that upload in that conversation.
    UnknownChunk = 31, false;
    /// The server cannot reach its database right now; the request was not applied.
    Unavailable = 40, true;
    /// The server is shutting down; connect to another.
    ShuttingDown = 41, true;
    /// The server has as many connections as it allows.
    TooManyConnections = 42, true;
    /// The peer was silent for too long, or a frame took too long to arrive.
    Timeout = 43, true;
    /// A bug on the server. The message may say more.
    Internal = 50, false;
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ErrorCode::Other(n) => write!(f, "error {n}"),
            known => write!(f, "{known:?}"),
        }
    }
}

/// An error as it travels: a code for programs and a one-line message for people.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{code}: {message}")]
pub struct ErrorBody {
    pub code: ErrorCode,
    pub message: String,
}

impl ErrorBody {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ErrorBody {
            code,
            message: message.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_through_numbers_and_unknown_ones_survive() {
        for code in [
            ErrorCode::Malformed,
            ErrorCode::NotAdmin,
            ErrorCode::Internal,
        ] {
            assert_eq!(ErrorCode::from(u16::from(code)), code);
        }
        assert_eq!(ErrorCode::from(999), ErrorCode::Other(999));
        let bytes = postcard::to_allocvec(&ErrorCode::Other(999)).expect("encodes");
        let back: ErrorCode = postcard::from_bytes(&bytes).expect("decodes");
        assert_eq!(back, ErrorCode::Other(999));
    }

    #[test]
    fn only_transient_failures_are_retryable() {
        assert!(ErrorCode::Unavailable.is_retryable());
        assert!(ErrorCode::ShuttingDown.is_retryable());
        assert!(!ErrorCode::NotMember.is_retryable());
        assert!(!ErrorCode::BadCredentials.is_retryable());
    }
}
