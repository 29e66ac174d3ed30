//! The daemon's errors as front ends see them: a stable code (`fastchat_api::codes`) and a
//! one-line message that says what to do.

use fastchat_api::codes;
use fastchat_crypto::CryptoError;
use fastchat_link::LinkError;
use fastchat_proto::ErrorCode;
use jsonrpsee::types::ErrorObjectOwned;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ApiError {
    pub code: i32,
    pub message: String,
}

pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    pub fn new(code: i32, message: impl Into<String>) -> ApiError {
        ApiError {
            code,
            message: message.into(),
        }
    }

    pub fn invalid(message: impl Into<String>) -> ApiError {
        ApiError::new(codes::INVALID_INPUT, message)
    }

    pub fn internal(e: impl std::fmt::Display) -> ApiError {
        tracing::error!(error = %e, "internal error");
        ApiError::new(codes::INTERNAL, format!("internal error: {e}"))
    }

    pub fn not_logged_in() -> ApiError {
        ApiError::new(
            codes::NOT_LOGGED_IN,
            "not logged in: run `fastchatctl login USER` (or `signup USER`)",
        )
    }

    pub fn locked() -> ApiError {
        ApiError::new(
            codes::LOCKED,
            "the identity key is locked since the daemon restarted: run `fastchatctl login USER` to unlock it",
        )
    }

    pub fn unavailable(what: impl std::fmt::Display) -> ApiError {
        ApiError::new(
            codes::UNAVAILABLE,
            format!("no server is reachable ({what}); try again when one is"),
        )
    }
}

impl From<ApiError> for ErrorObjectOwned {
    fn from(e: ApiError) -> ErrorObjectOwned {
        ErrorObjectOwned::owned(e.code, e.message, None::<()>)
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(e: sqlx::Error) -> ApiError {
        ApiError::internal(format!("local database: {e}"))
    }
}

impl From<CryptoError> for ApiError {
    fn from(e: CryptoError) -> ApiError {
        match e {
            CryptoError::KeyChanged { .. } => ApiError::new(codes::KEY_CHANGED, e.to_string()),
            CryptoError::BadFingerprint(_) | CryptoError::FingerprintMismatch(_) => {
                ApiError::invalid(e.to_string())
            }
            other => ApiError::internal(other),
        }
    }
}

impl From<LinkError> for ApiError {
    fn from(e: LinkError) -> ApiError {
        let Some(body) = e.server_error() else {
            return ApiError::unavailable(e);
        };
        let code = match body.code {
            ErrorCode::BadCredentials => codes::BAD_CREDENTIALS,
            ErrorCode::UsernameTaken => codes::USERNAME_TAKEN,
            ErrorCode::UnknownUser => codes::UNKNOWN_USER,
            ErrorCode::UnknownConversation => codes::UNKNOWN_CONVERSATION,
            ErrorCode::NotMember | ErrorCode::NotAdmin => codes::FORBIDDEN,
            ErrorCode::NameTaken => codes::ALREADY_EXISTS,
            ErrorCode::TooManyAttempts => codes::RATE_LIMITED,
            ErrorCode::NotAuthenticated | ErrorCode::InvalidSession => codes::NOT_LOGGED_IN,
            ErrorCode::InvalidUsername
            | ErrorCode::InvalidPassword
            | ErrorCode::InvalidName
            | ErrorCode::InvalidRequest
            | ErrorCode::WrongConversationKind
            | ErrorCode::TooLarge => codes::INVALID_INPUT,
            c if c.is_retryable() => codes::UNAVAILABLE,
            _ => codes::INTERNAL,
        };
        ApiError::new(code, body.message.clone())
    }
}
