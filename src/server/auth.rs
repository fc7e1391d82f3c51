//! `auth.Auth`: SDK-made API keys and their refresh; Login is not served.

use std::pin::Pin;
use std::sync::Arc;

use tokio_stream::Stream;
use tonic::{Request, Response, Status};

use super::{body_or_metadata_credential, peer_ip};
use crate::authority::vending::KeyLifetime;
use crate::authority::Authority;
use crate::policy::proto::statements_from_proto;
use crate::proto::auth as pb;

pub struct AuthService {
    authority: Arc<Authority>,
}

impl AuthService {
    pub fn new(authority: Arc<Authority>) -> Self {
        AuthService { authority }
    }
}

type LoginStream = Pin<Box<dyn Stream<Item = Result<pb::LoginResponse, Status>> + Send>>;

#[tonic::async_trait]
impl pb::auth_server::Auth for AuthService {
    type LoginStream = LoginStream;

    async fn login(
        &self,
        _request: Request<pb::LoginRequest>,
    ) -> Result<Response<Self::LoginStream>, Status> {
        Err(Status::unimplemented(
            "Login is not served by authcell: use an API key",
        ))
    }

    async fn generate_api_token(
        &self,
        request: Request<pb::GenerateApiTokenRequest>,
    ) -> Result<Response<pb::GenerateApiTokenResponse>, Status> {
        let peer = peer_ip(&request);
        let credential = body_or_metadata_credential(&request, &request.get_ref().auth_token);
        let req = request.into_inner();
        use pb::generate_api_token_request::Expiry;
        let lifetime = req.expiry.map(|e| match e {
            Expiry::Never(_) => KeyLifetime::Never,
            Expiry::Expires(x) => KeyLifetime::Seconds(x.valid_for_seconds),
        });
        let minted = self
            .authority
            .generate_api_token(
                &credential,
                peer,
                lifetime,
                statements_from_proto("permissions", req.permissions.as_ref()),
                &req.token_id,
                &req.description,
            )
            .await?;
        Ok(Response::new(pb::GenerateApiTokenResponse {
            api_key: minted.key.token,
            refresh_token: minted.refresh_token,
            endpoint: minted.key.endpoint,
            valid_until: minted.key.valid_until.unwrap_or(0),
        }))
    }

    async fn refresh_api_token(
        &self,
        request: Request<pb::RefreshApiTokenRequest>,
    ) -> Result<Response<pb::RefreshApiTokenResponse>, Status> {
        let peer = peer_ip(&request);
        let req = request.into_inner();
        let minted = self
            .authority
            .refresh_api_token(&req.api_key, &req.refresh_token, peer)
            .await?;
        Ok(Response::new(pb::RefreshApiTokenResponse {
            api_key: minted.key.token,
            refresh_token: minted.refresh_token,
            endpoint: minted.key.endpoint,
            valid_until: minted.key.valid_until.unwrap_or(0),
        }))
    }
}
