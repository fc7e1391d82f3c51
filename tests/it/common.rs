//! The test harness: starts the real server (`server::run`) on 127.0.0.1:0 with an embedded
//! store and a manual clock, and hands out clients and keys.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::Arc;

use authcell::authority::Authority;
use authcell::clock::ManualClock;
use authcell::keyring::KeyRing;
use authcell::proto::authcell::v1 as pb;
use authcell::proto::{auth, global_admin as ga, token};
use authcell::{node, server};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::transport::Channel;
use tonic::Request;

pub const ACCOUNT: &str = "dev";

pub struct TestServer {
    pub addr: SocketAddr,
    pub endpoint: String,
    /// The owner key of account `dev`.
    pub owner_key: String,
    pub clock: Arc<ManualClock>,
    pub authority: Arc<Authority>,
    shutdown: Option<oneshot::Sender<()>>,
    handle: Option<JoinHandle<()>>,
}

impl TestServer {
    pub async fn start() -> Self {
        Self::start_with_keyring(KeyRing::ephemeral().expect("keyring")).await
    }

    pub async fn start_with_keyring(ring: KeyRing) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let endpoint = listener.local_addr().expect("local addr").to_string();
        let options = node::NodeOptions {
            cell: "test-cell".into(),
            endpoint: endpoint.clone(),
            // Tests mint many tokens; the rate limit has tests of its own.
            vend_rate_per_second: 0,
            vend_burst: 0,
        };
        Self::start_with(ring, options, listener).await
    }

    /// Starts with explicit node options (the endpoint is taken from `options`).
    pub async fn start_with(ring: KeyRing, options: node::NodeOptions, listener: TcpListener) -> Self {
        let addr = listener.local_addr().expect("local addr");
        let endpoint = options.endpoint.clone();
        let clock = Arc::new(ManualClock::starting_now());
        let authority = node::embedded(ring, clock.clone(), &options);
        let (owner_key, _) = authority.bootstrap(ACCOUNT, false).await.expect("bootstrap");
        let (tx, rx) = oneshot::channel::<()>();
        let a = authority.clone();
        let handle = tokio::spawn(async move {
            server::run(listener, a, async {
                let _ = rx.await;
            })
            .await
            .expect("server");
        });
        TestServer {
            addr,
            endpoint,
            owner_key,
            clock,
            authority,
            shutdown: Some(tx),
            handle: Some(handle),
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub async fn channel(&self) -> Channel {
        Channel::from_shared(self.url())
            .expect("url")
            .connect()
            .await
            .expect("connect")
    }

    pub async fn global_admin(&self) -> ga::global_admin_client::GlobalAdminClient<Channel> {
        ga::global_admin_client::GlobalAdminClient::new(self.channel().await)
    }

    pub async fn admin(&self) -> pb::admin_client::AdminClient<Channel> {
        pb::admin_client::AdminClient::new(self.channel().await)
    }

    pub async fn verifier(&self) -> pb::verifier_client::VerifierClient<Channel> {
        pb::verifier_client::VerifierClient::new(self.channel().await)
    }

    pub async fn token(&self) -> token::token_client::TokenClient<Channel> {
        token::token_client::TokenClient::new(self.channel().await)
    }

    pub async fn auth(&self) -> auth::auth_client::AuthClient<Channel> {
        auth::auth_client::AuthClient::new(self.channel().await)
    }

    /// Creates a role-bound key through GenerateGlobalApiKey with the given caller key.
    pub async fn create_key(&self, caller: &str, role_id: &str) -> (String, ga::GlobalApiKey) {
        let response = self
            .global_admin()
            .await
            .generate_global_api_key(with_key(
                ga::GenerateGlobalApiKeyRequest {
                    role_id: role_id.into(),
                    description: format!("test {role_id} key"),
                    expiry: Some(ga::generate_global_api_key_request::Expiry::Never(
                        ga::generate_global_api_key_request::Never {},
                    )),
                },
                caller,
            ))
            .await
            .expect("generate key")
            .into_inner();
        (response.api_key, response.key_info.expect("key_info"))
    }

    /// Asks Authorize about a cache action.
    pub async fn authorize(&self, request: pb::AuthorizeRequest) -> pb::AuthorizeResponse {
        self.verifier()
            .await
            .authorize(request)
            .await
            .expect("authorize")
            .into_inner()
    }

    /// Stops the server and waits for it to finish.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(h) = self.handle.take() {
            let _ = h.await;
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// Wraps a message in a request carrying `key` as `authorization` metadata.
pub fn with_key<T>(message: T, key: &str) -> Request<T> {
    let mut request = Request::new(message);
    request
        .metadata_mut()
        .insert("authorization", key.parse().expect("ascii key"));
    request
}

/// An Authorize request for a cache action.
pub fn cache_check(credential: &str, action: pb::Action, cache: &str, key: &[u8]) -> pb::AuthorizeRequest {
    pb::AuthorizeRequest {
        credential: credential.into(),
        action: action as i32,
        cache: cache.into(),
        key: key.to_vec(),
        ..Default::default()
    }
}

/// An Authorize request for a topic action.
pub fn topic_check(credential: &str, action: pb::Action, cache: &str, topic: &str) -> pb::AuthorizeRequest {
    pb::AuthorizeRequest {
        credential: credential.into(),
        action: action as i32,
        cache: cache.into(),
        topic: topic.into(),
        ..Default::default()
    }
}

/// An Authorize request for a function invocation.
pub fn function_check(credential: &str, cache: &str, function: &str) -> pb::AuthorizeRequest {
    pb::AuthorizeRequest {
        credential: credential.into(),
        action: pb::Action::FunctionInvoke as i32,
        cache: cache.into(),
        function: function.into(),
        ..Default::default()
    }
}
