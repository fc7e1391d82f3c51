//! `authcell.v1.Keys`: the public verification keys as a JWK set.

use std::sync::Arc;

use tonic::{Request, Response, Status};

use crate::authority::Authority;
use crate::proto::authcell::v1 as pb;

pub struct KeysService {
    authority: Arc<Authority>,
}

impl KeysService {
    pub fn new(authority: Arc<Authority>) -> Self {
        KeysService { authority }
    }
}

#[tonic::async_trait]
impl pb::keys_server::Keys for KeysService {
    async fn get_jwks(
        &self,
        _request: Request<pb::GetJwksRequest>,
    ) -> Result<Response<pb::GetJwksResponse>, Status> {
        let ring = self.authority.verifier().keys().load();
        let jwks = serde_json::to_string(&ring.jwks())
            .map_err(|e| Status::internal(format!("encoding the JWK set: {e}")))?;
        Ok(Response::new(pb::GetJwksResponse {
            jwks,
            active_kid: ring.active_kid().to_owned(),
        }))
    }
}
