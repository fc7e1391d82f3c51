//! `authcell.v1.Verifier`: Authorize, a thin wrapper over [`crate::verifier::Verifier::check`].

use std::sync::Arc;

use tonic::{Request, Response, Status};

use crate::authority::Authority;
use crate::policy::proto::Invalid;
use crate::proto::authcell::v1 as pb;
use crate::verifier::{Query, Reason};

pub struct VerifierService {
    authority: Arc<Authority>,
    /// mTLS: only callers with a client certificate (verified against --tls-client-ca during
    /// the handshake) may ask.
    client_cert_required: bool,
}

impl VerifierService {
    pub fn new(authority: Arc<Authority>, client_cert_required: bool) -> Self {
        VerifierService {
            authority,
            client_cert_required,
        }
    }

    fn require_client_cert<T>(&self, request: &Request<T>) -> Result<(), Status> {
        if self.client_cert_required && request.peer_certs().is_none_or(|certs| certs.is_empty()) {
            return Err(Status::unauthenticated(
                "the verifier service requires a client certificate (mTLS)",
            ));
        }
        Ok(())
    }
}

fn reason(r: Reason) -> pb::Reason {
    match r {
        Reason::Unauthenticated => pb::Reason::Unauthenticated,
        Reason::Expired => pb::Reason::Expired,
        Reason::Revoked => pb::Reason::Revoked,
        Reason::Permission => pb::Reason::Permission,
        Reason::IpNotAllowed => pb::Reason::IpNotAllowed,
        Reason::RoleNotFound => pb::Reason::RoleNotFound,
        Reason::NotYetValid => pb::Reason::NotYetValid,
        Reason::Unavailable => pb::Reason::Unavailable,
        Reason::Stale => pb::Reason::StaleState,
    }
}

/// Most checks in one BatchAuthorize call. Without mTLS anyone who reaches the port may call
/// it, so this (with the message size limit and the credential size limit) bounds what one
/// call can cost: at most this many signature verifications.
pub const MAX_BATCH: usize = 1000;

impl VerifierService {
    /// One decision: the shared path of Authorize and each BatchAuthorize item.
    pub(crate) fn decide(
        &self,
        req: &pb::AuthorizeRequest,
    ) -> Result<pb::AuthorizeResponse, Invalid> {
        let query = Query::try_from(req)?;
        let decision = self.authority.verifier().check(
            &req.credential,
            query.action,
            &query.resource,
            query.peer,
        );
        let mut response = pb::AuthorizeResponse::default();
        if let Some(c) = decision.credential() {
            response.key_id = c.id.clone();
            response.account_id = c.account.clone();
            response.token_id = c.token_id.clone().unwrap_or_default();
            response.expires_at_epoch_seconds = c.expires_at;
        }
        match decision.outcome {
            Ok(()) => response.allowed = true,
            Err((r, message)) => {
                response.reason = reason(r) as i32;
                response.message = message;
            }
        }
        Ok(response)
    }
}

#[tonic::async_trait]
impl pb::verifier_server::Verifier for VerifierService {
    async fn authorize(
        &self,
        request: Request<pb::AuthorizeRequest>,
    ) -> Result<Response<pb::AuthorizeResponse>, Status> {
        self.require_client_cert(&request)?;
        self.decide(request.get_ref())
            .map(Response::new)
            .map_err(|e| Status::invalid_argument(e.to_string()))
    }

    async fn batch_authorize(
        &self,
        request: Request<pb::BatchAuthorizeRequest>,
    ) -> Result<Response<pb::BatchAuthorizeResponse>, Status> {
        self.require_client_cert(&request)?;
        let requests = &request.get_ref().requests;
        if requests.len() > MAX_BATCH {
            return Err(Status::invalid_argument(format!(
                "requests: at most {MAX_BATCH} checks per call, got {}",
                requests.len()
            )));
        }
        let responses = requests
            .iter()
            .enumerate()
            .map(|(i, req)| {
                self.decide(req).unwrap_or_else(|e| pb::AuthorizeResponse {
                    allowed: false,
                    reason: pb::Reason::InvalidRequest as i32,
                    message: format!("requests[{i}].{e}"),
                    ..Default::default()
                })
            })
            .collect();
        Ok(Response::new(pb::BatchAuthorizeResponse { responses }))
    }
}
