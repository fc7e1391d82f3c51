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
            ..Default::default()
        };
        Self::start_with(ring, options, listener).await
    }

    /// Starts with explicit node options (the endpoint is taken from `options`).
    pub async fn start_with(
        ring: KeyRing,
        options: node::NodeOptions,
        listener: TcpListener,
    ) -> Self {
        let addr = listener.local_addr().expect("local addr");
        let endpoint = options.endpoint.clone();
        let clock = Arc::new(ManualClock::starting_now());
        let authority = node::embedded(ring, clock.clone(), &options);
        let (owner_key, _) = authority
            .bootstrap(ACCOUNT, false)
            .await
            .expect("bootstrap");
        let (tx, rx) = oneshot::channel::<()>();
        let a = authority.clone();
        let handle = tokio::spawn(async move {
            server::run(listener, a, server::Serving::default(), async {
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
pub fn cache_check(
    credential: &str,
    action: pb::Action,
    cache: &str,
    key: &[u8],
) -> pb::AuthorizeRequest {
    pb::AuthorizeRequest {
        credential: credential.into(),
        action: action as i32,
        cache: cache.into(),
        key: key.to_vec(),
        ..Default::default()
    }
}

/// An Authorize request for a topic action.
pub fn topic_check(
    credential: &str,
    action: pb::Action,
    cache: &str,
    topic: &str,
) -> pb::AuthorizeRequest {
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

pub mod statements {
    //! Builders for permission_messages statements.
    use authcell::proto::permission_messages as pm;
    use pm::permissions_type as pt;

    pub fn cache(
        role: pm::CacheRole,
        cache: Option<&str>,
        item: Option<pt::cache_item_selector::Kind>,
    ) -> pm::PermissionsType {
        pm::PermissionsType {
            kind: Some(pt::Kind::CachePermissions(pt::CachePermissions {
                role: role as i32,
                cache: Some(match cache {
                    None => pt::cache_permissions::Cache::AllCaches(pt::All {}),
                    Some(name) => pt::cache_permissions::Cache::CacheSelector(pt::CacheSelector {
                        kind: Some(pt::cache_selector::Kind::CacheName(name.into())),
                    }),
                }),
                cache_item: Some(match item {
                    None => pt::cache_permissions::CacheItem::AllItems(pt::All {}),
                    Some(kind) => {
                        pt::cache_permissions::CacheItem::ItemSelector(pt::CacheItemSelector {
                            kind: Some(kind),
                        })
                    }
                }),
            })),
        }
    }

    pub fn topic(
        role: pm::TopicRole,
        cache: Option<&str>,
        topic: Option<pt::topic_selector::Kind>,
    ) -> pm::PermissionsType {
        pm::PermissionsType {
            kind: Some(pt::Kind::TopicPermissions(pt::TopicPermissions {
                role: role as i32,
                cache: Some(match cache {
                    None => pt::topic_permissions::Cache::AllCaches(pt::All {}),
                    Some(name) => pt::topic_permissions::Cache::CacheSelector(pt::CacheSelector {
                        kind: Some(pt::cache_selector::Kind::CacheName(name.into())),
                    }),
                }),
                topic: Some(match topic {
                    None => pt::topic_permissions::Topic::AllTopics(pt::All {}),
                    Some(kind) => pt::topic_permissions::Topic::TopicSelector(pt::TopicSelector {
                        kind: Some(kind),
                    }),
                }),
            })),
        }
    }

    pub fn function(
        cache: Option<&str>,
        function: Option<pt::function_selector::Kind>,
    ) -> pm::PermissionsType {
        pm::PermissionsType {
            kind: Some(pt::Kind::FunctionPermissions(pt::FunctionPermissions {
                role: pm::FunctionRole::FunctionInvoke as i32,
                cache: Some(match cache {
                    None => pt::function_permissions::Cache::AllCaches(pt::All {}),
                    Some(name) => {
                        pt::function_permissions::Cache::CacheSelector(pt::CacheSelector {
                            kind: Some(pt::cache_selector::Kind::CacheName(name.into())),
                        })
                    }
                }),
                function: Some(match function {
                    None => pt::function_permissions::Function::AllFunctions(pt::All {}),
                    Some(kind) => {
                        pt::function_permissions::Function::FunctionSelector(pt::FunctionSelector {
                            kind: Some(kind),
                        })
                    }
                }),
            })),
        }
    }

    pub fn read_cache(name: &str) -> pm::PermissionsType {
        cache(pm::CacheRole::CacheReadOnly, Some(name), None)
    }
}

/// Wraps statements in an explicit permission_messages set.
pub fn explicit(
    permissions: Vec<authcell::proto::permission_messages::PermissionsType>,
) -> authcell::proto::permission_messages::Permissions {
    use authcell::proto::permission_messages as pm;
    pm::Permissions {
        kind: Some(pm::permissions::Kind::Explicit(pm::ExplicitPermissions {
            permissions,
        })),
    }
}

/// A GenerateGlobalApiKey request: a key bound to `role_id`, expiring at `expires_at` (epoch
/// seconds) or never.
pub fn key_request(
    role_id: &str,
    description: impl Into<String>,
    expires_at: Option<u64>,
) -> ga::GenerateGlobalApiKeyRequest {
    use ga::generate_global_api_key_request::{Expires, Expiry, Never};
    ga::GenerateGlobalApiKeyRequest {
        role_id: role_id.into(),
        description: description.into(),
        expiry: Some(match expires_at {
            None => Expiry::Never(Never {}),
            Some(at) => Expiry::Expires(Expires {
                expiration_epoch_seconds: at,
            }),
        }),
    }
}
