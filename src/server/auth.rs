//! `auth.Auth`: SDK-made API keys and their refresh; Login is not served.

use std::pin::Pin;
use std::sync::Arc;

use tokio_stream::Stream;
use tonic::{Request, Response, Status};

use crate::authority::Authority;
use crate::proto::auth as pb;

pub struct AuthService {
    #[allow(dead_code)]
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
        _request: Request<pb::GenerateApiTokenRequest>,
    ) -> Result<Response<pb::GenerateApiTokenResponse>, Status> {
        Err(Status::unimplemented("GenerateApiToken is not served yet"))
    }

    async fn refresh_api_token(
        &self,
        _request: Request<pb::RefreshApiTokenRequest>,
    ) -> Result<Response<pb::RefreshApiTokenResponse>, Status> {
        Err(Status::unimplemented("RefreshApiToken is not served yet"))
    }
}
