//! The authority's errors, each with the meaning the API reports.

use crate::credential::CredentialError;
use crate::policy::proto::Invalid;
use crate::store::StoreError;

/// Errors of the authority, each with the meaning the API reports (mapped to gRPC status codes
/// in one place, `server::status`).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    Unauthenticated(CredentialError),
    #[error("{0}")]
    PermissionDenied(String),
    #[error("{0}")]
    Invalid(#[from] Invalid),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    AlreadyExists(String),
    #[error("{0}")]
    FailedPrecondition(String),
    #[error("{message}")]
    ResourceExhausted {
        message: String,
        retry_after_secs: u64,
    },
    #[error("{0}")]
    Unavailable(String),
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<CredentialError> for Error {
    fn from(e: CredentialError) -> Self {
        match e {
            // Not the caller's fault: this node cannot judge right now.
            CredentialError::StateNotLoaded | CredentialError::StateStale => {
                Error::Unavailable(e.to_string())
            }
            other => Error::Unauthenticated(other),
        }
    }
}

impl From<StoreError> for Error {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(m) => Error::NotFound(m),
            StoreError::AlreadyExists(m) => Error::AlreadyExists(m),
            StoreError::FailedPrecondition(m) => Error::FailedPrecondition(m),
            StoreError::QuotaExceeded(m) => Error::ResourceExhausted {
                message: m,
                retry_after_secs: 60,
            },
            StoreError::Unavailable(m) => {
                Error::Unavailable(format!("state store unavailable, nothing was changed: {m}"))
            }
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
