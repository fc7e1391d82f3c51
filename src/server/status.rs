//! The one mapping from domain errors to gRPC statuses.

use tonic::{Code, Status};

use crate::authority::Error;

/// Handlers return authority errors with `?`.
impl From<Error> for Status {
    fn from(error: Error) -> Status {
        to_status(&error)
    }
}

/// Handlers return request refusals from the validation boundary with `?`.
impl From<crate::policy::proto::Invalid> for Status {
    fn from(invalid: crate::policy::proto::Invalid) -> Status {
        to_status(&Error::from(invalid))
    }
}

/// Converts an authority error to the status the API promises. Internal errors are logged with
/// their detail and reported with a generic message.
pub fn to_status(error: &Error) -> Status {
    match error {
        Error::Unauthenticated(e) => Status::unauthenticated(e.to_string()),
        Error::PermissionDenied(m) => Status::permission_denied(m.clone()),
        Error::Invalid(e) => Status::invalid_argument(e.to_string()),
        Error::NotFound(m) => Status::not_found(m.clone()),
        Error::AlreadyExists(m) => Status::already_exists(m.clone()),
        Error::FailedPrecondition(m) => Status::failed_precondition(m.clone()),
        Error::ResourceExhausted {
            message,
            retry_after_secs,
        } => {
            let mut status = Status::new(Code::ResourceExhausted, message.clone());
            if let Ok(value) = retry_after_secs.to_string().parse() {
                status.metadata_mut().insert("retry-after", value);
            }
            status
        }
        Error::Unavailable(m) => Status::unavailable(m.clone()),
        Error::Internal(detail) => {
            tracing::error!(error = %detail, "internal error");
            Status::internal("internal error")
        }
    }
}
