//! `token.Token`: GenerateDisposableToken.

use std::sync::Arc;

use tonic::{Request, Response, Status};

use crate::authority::Authority;
use crate::proto::token as pb;

pub struct TokenService {
    #[allow(dead_code)]
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
        _request: Request<pb::GenerateDisposableTokenRequest>,
    ) -> Result<Response<pb::GenerateDisposableTokenResponse>, Status> {
        Err(Status::unimplemented("GenerateDisposableToken is not served yet"))
    }
}
