//! What a use case can fail with. The HTTP layer maps each variant to a status and the
//! RealWorld error body in one place (quire-http's `error.rs`).

use quire_domain::{FieldError, FieldErrors};
use quire_store::StoreError;

/// Why a request could not be authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthFailure {
    /// No token where one is required.
    Missing,
    /// A token that is malformed, badly signed, or names no user.
    Invalid,
    /// A well-signed token past its expiry.
    Expired,
    /// Login with an unknown email or a wrong password (deliberately not told apart).
    BadCredentials,
    /// The account was disabled by an operator (`quire user disable`).
    Disabled,
}

/// A use case's failure.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// Input that does not parse, or unique fields already taken.
    #[error("validation failed: {0}")]
    Validation(FieldErrors),
    #[error("unauthorized: {0:?}")]
    Unauthorized(AuthFailure),
    /// The signed-in user may not change this resource (named by its kind).
    #[error("forbidden: {0}")]
    Forbidden(&'static str),
    /// No such resource (named by its kind: "article", "profile", "comment").
    #[error("{0} not found")]
    NotFound(&'static str),
    /// A body larger than allowed (`limit` bytes).
    #[error("body exceeds {limit} bytes")]
    TooLarge { limit: u64 },
    /// A content type this endpoint does not accept; the message says which it does.
    #[error("unsupported content type: {0}")]
    UnsupportedMediaType(String),
    /// The client stopped sending mid-body.
    #[error("request body interrupted: {0}")]
    Interrupted(String),
    /// Too much work queued; try again shortly.
    #[error("overloaded")]
    Overloaded,
    /// Media storage (the bucket) cannot be reached now; the cause is logged.
    #[error("media storage unavailable: {0}")]
    MediaUnavailable(String),
    /// Anything else; details are logged, never shown to clients.
    #[error("internal: {0}")]
    Internal(String),
}

pub type AppResult<T> = Result<T, AppError>;

impl From<FieldErrors> for AppError {
    fn from(errors: FieldErrors) -> Self {
        Self::Validation(errors)
    }
}

impl From<FieldError> for AppError {
    fn from(error: FieldError) -> Self {
        Self::Validation(error.into())
    }
}

impl From<StoreError> for AppError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Conflict(fields) => {
                let mut errors = FieldErrors::new();
                for field in fields {
                    errors.push(FieldError::new(field, "has already been taken"));
                }
                Self::Validation(errors)
            }
            StoreError::Overloaded | StoreError::Unavailable(_) | StoreError::Closed => {
                Self::Overloaded
            }
            StoreError::Config(e) | StoreError::Database(e) => Self::Internal(e),
        }
    }
}
