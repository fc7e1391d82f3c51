//! `token.Token`: GenerateDisposableToken.

use std::sync::Arc;

use tonic::{Request, Response, Status};

use super::{body_or_metadata_credential, peer_ip};
use crate::authority::{Authority, DisposableToken};
use crate::proto::token as pb;

pub struct TokenService {
    authority: Arc<Authority>,
}

impl TokenService {
    pub fn new(authority: Arc<Authority>) -> Self {
        TokenService { authority }
    }
}

#[tonic::async_trait]
impl pb::token_server::Token for TokenService {
    async fn generate_disposable_token(
        &self,
        request: Request<pb::GenerateDisposableTokenRequest>,
    ) -> Result<Response<pb::GenerateDisposableTokenResponse>, Status> {
        let peer = peer_ip(&request);
        let credential = body_or_metadata_credential(&request, &request.get_ref().auth_token);
        let parent = self.authority.vending_caller(&credential, peer)?;
        let request = DisposableToken::try_from(request.into_inner())?;
        let minted = self.authority.mint_disposable(&parent, request).await?;
        Ok(Response::new(pb::GenerateDisposableTokenResponse {
            api_key: minted.token,
            endpoint: minted.endpoint,
            valid_until: minted.valid_until.unwrap_or(0),
        }))
    }
}
