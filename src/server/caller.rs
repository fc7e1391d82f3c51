//! Who is calling: the credential (metadata `authorization`, or the request body where the
//! upstream protocol puts it), the peer address, and the authenticated [`Caller`].

use std::net::IpAddr;

use crate::authority::{Authority, Caller};

/// The credential a call presents in its `authorization` metadata (`Bearer ` optional).
pub(crate) fn metadata_credential<T>(request: &tonic::Request<T>) -> &str {
    request
        .metadata()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .map(|v| v.strip_prefix("Bearer ").unwrap_or(v).trim())
        .unwrap_or("")
}

/// The credential of a vending call: the request body's `auth_token`, or the `authorization`
/// metadata when the body has none (the official SDKs differ in which they send).
pub(crate) fn body_or_metadata_credential<T>(request: &tonic::Request<T>, body: &str) -> String {
    if body.is_empty() {
        metadata_credential(request).to_owned()
    } else {
        body.to_owned()
    }
}

/// The caller's IP address, when the transport knows it.
pub(crate) fn peer_ip<T>(request: &tonic::Request<T>) -> Option<IpAddr> {
    request.remote_addr().map(|a| a.ip())
}

/// Authenticates the caller of a management RPC from its metadata.
pub(crate) fn caller<T>(
    authority: &Authority,
    request: &tonic::Request<T>,
) -> Result<Caller, tonic::Status> {
    authority
        .caller(metadata_credential(request), peer_ip(request))
        .map_err(tonic::Status::from)
}

/// The `idempotency-key` metadata, if sent (its rules are checked with the rest of the request).
pub(crate) fn request_id<T>(request: &tonic::Request<T>) -> Result<Option<String>, tonic::Status> {
    match request.metadata().get(crate::authority::IDEMPOTENCY_KEY) {
        None => Ok(None),
        Some(value) => value.to_str().map(|v| Some(v.to_owned())).map_err(|_| {
            tonic::Status::invalid_argument(
                "idempotency-key: must be 1 to 128 characters of A-Z a-z 0-9 . _ : -",
            )
        }),
    }
}
