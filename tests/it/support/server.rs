//! The one way tests start a server: build an [`authcell::node::Node`], then [`Served::start`]
//! runs it with `server::run` on a listener bound to 127.0.0.1:0, exactly as the binary does.
//! [`TestServer`] is an embedded node with a manual clock and an owner key of account `dev`.

use std::net::SocketAddr;
use std::sync::Arc;

use authcell::authority::Authority;
use authcell::clock::ManualClock;
use authcell::keyring::KeyRing;
use authcell::node::{self, Node};
use authcell::proto::authcell::v1 as pb;
use authcell::proto::{auth, global_admin as ga, token};
use authcell::server;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::transport::Channel;

use super::*;

pub const ACCOUNT: &str = "dev";

/// A node served on a listener until this is stopped or dropped.
pub struct Served {
    pub addr: SocketAddr,
    /// Always `Some` until [`Served::stop`] takes it to stop the node.
    node: Option<Arc<Node>>,
    shutdown: Option<oneshot::Sender<()>>,
    handle: Option<JoinHandle<()>>,
}

impl Served {
    /// Serves `node` on `listener` with `serving` (TLS, drain), as `authcell serve` does.
    pub async fn start(node: Node, listener: TcpListener, serving: server::Serving) -> Served {
        let addr = listener.local_addr().expect("local addr");
        let node = Arc::new(node);
        let (tx, rx) = oneshot::channel::<()>();
        let served = node.clone();
        let handle = tokio::spawn(async move {
            server::run(listener, &served, serving, async {
                let _ = rx.await;
            })
            .await
            .expect("server");
        });
        Served {
            addr,
            node: Some(node),
            shutdown: Some(tx),
            handle: Some(handle),
        }
    }

    /// Binds 127.0.0.1:0 and serves `node` there in plaintext.
    pub async fn local(node: Node) -> Served {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        Served::start(node, listener, server::Serving::default()).await
    }

    pub fn node(&self) -> &Node {
        self.node.as_ref().expect("a served node until stopped")
    }

    pub fn authority(&self) -> &Arc<Authority> {
        self.node().authority()
    }

    /// Stops the server (in-flight calls finish), waits for it to return, then stops the node
    /// (its sync task, on a Redis-backed node).
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(h) = self.handle.take() {
            // The server's own error fails the test here, as a panic of its task.
            if let Err(e) = h.await {
                if e.is_panic() {
                    std::panic::resume_unwind(e.into_panic());
                }
            }
        }
        if let Some(node) = self.node.take().and_then(Arc::into_inner) {
            node.stop().await;
        }
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(h) = self.handle.take() {
            h.abort();
        }
    }
}

pub struct TestServer {
    pub addr: SocketAddr,
    pub endpoint: String,
    /// The owner key of account `dev`.
    pub owner_key: String,
    pub clock: Arc<ManualClock>,
    pub authority: Arc<Authority>,
    pub served: Served,
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
            ..Default::default()
        };
        Self::start_with(ring, options, listener).await
    }

    /// Starts a server whose browser services accept gRPC-Web calls from pages of `origins`.
    pub async fn start_with_origins(origins: &[&str]) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let endpoint = listener.local_addr().expect("local addr").to_string();
        let options = node::NodeOptions {
            cell: "test-cell".into(),
            endpoint,
            vend_rate_per_second: 0,
            vend_burst: 0,
            ..Default::default()
        };
        let serving = server::Serving {
            cors_origins: origins
                .iter()
                .map(|o| server::web::parse_origin(o).expect("origin"))
                .collect(),
            ..Default::default()
        };
        Self::start_serving(
            KeyRing::ephemeral().expect("keyring"),
            options,
            listener,
            serving,
        )
        .await
    }

    /// Starts with explicit node options (the endpoint is taken from `options`).
    pub async fn start_with(
        ring: KeyRing,
        options: node::NodeOptions,
        listener: TcpListener,
    ) -> Self {
        Self::start_serving(ring, options, listener, server::Serving::default()).await
    }

    async fn start_serving(
        ring: KeyRing,
        options: node::NodeOptions,
        listener: TcpListener,
        serving: server::Serving,
    ) -> Self {
        let endpoint = options.endpoint.clone();
        let clock = Arc::new(ManualClock::starting_now());
        let node = Node::embedded(ring, clock.clone(), &options);
        let (owner_key, _) = node
            .authority()
            .bootstrap(ACCOUNT, false)
            .await
            .expect("bootstrap");
        let served = Served::start(node, listener, serving).await;
        TestServer {
            addr: served.addr,
            endpoint,
            owner_key,
            clock,
            authority: served.authority().clone(),
            served,
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
                key_request(role_id, format!("test {role_id} key"), None),
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
    pub async fn stop(self) {
        self.served.stop().await;
    }
}

impl TestServer {
    /// The server's current (manual) time.
    pub fn clock_now(&self) -> u64 {
        use authcell::clock::Clock;
        self.clock.now()
    }

    /// Revokes a key through RevokeGlobalApiKey.
    pub async fn revoke_key(&self, caller: &str, key_id: &str) {
        self.global_admin()
            .await
            .revoke_global_api_key(with_key(
                ga::RevokeGlobalApiKeyRequest {
                    key_id: key_id.into(),
                },
                caller,
            ))
            .await
            .expect("revoke key");
    }

    /// Mints a disposable token over raw gRPC (credential in the body).
    pub async fn mint_raw(
        &self,
        caller: &str,
        permissions: Vec<authcell::proto::permission_messages::PermissionsType>,
        valid_for_seconds: u32,
        token_id: &str,
    ) -> Result<token::GenerateDisposableTokenResponse, tonic::Status> {
        self.token()
            .await
            .generate_disposable_token(token::GenerateDisposableTokenRequest {
                expires: Some(token::generate_disposable_token_request::Expires {
                    valid_for_seconds,
                }),
                auth_token: caller.into(),
                permissions: Some(explicit(permissions)),
                token_id: token_id.into(),
            })
            .await
            .map(|r| r.into_inner())
    }
}
