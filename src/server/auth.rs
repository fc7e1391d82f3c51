//! `auth.Auth`: SDK-made API keys and their refresh; Login is not served.

use std::pin::Pin;
use std::sync::Arc;

use tokio_stream::Stream;
use tonic::{Request, Response, Status};

use super::{body_or_metadata_credential, peer_ip};
use crate::authority::{ApiToken, Authority, Refresh};
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
        let parent = self.authority.vending_caller(&credential, peer)?;
        let request = ApiToken::try_from(request.into_inner())?;
        let minted = self
            .authority
            .generate_api_token(&parent, peer, request)
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
        let request = Refresh::try_from(request.into_inner())?;
        let minted = self.authority.refresh_api_token(request, peer).await?;
        Ok(Response::new(pb::RefreshApiTokenResponse {
            api_key: minted.key.token,
            refresh_token: minted.refresh_token,
            endpoint: minted.key.endpoint,
            valid_until: minted.key.valid_until.unwrap_or(0),
        }))
    }
}
