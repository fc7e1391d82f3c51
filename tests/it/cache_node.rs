//! The whole loop with the official Rust SDK (`momento`, unmodified): it mints scoped tokens
//! from authcell, uses them with `CacheClient` and `TopicClient` against the example cache node
//! (`authcell::cache_node`, which links the verifier), and is refused the moment they are
//! revoked: by id, through the key that made them (cascade), by an issued-before cut, and
//! across cells.

use std::sync::Arc;
use std::time::{Duration, Instant};

use authcell::cache_node::CacheNode;
use authcell::proto::authcell::v1 as pb;
use authcell::store::StreamId;
use authcell::verifier::Verifier;
use momento::auth::{
    CacheSelector, DisposableTokenScope, DisposableTokenScopes, ExpiresIn, Permission, Permissions,
    TopicPermission, TopicRole,
};
use momento::cache::{configurations as cache_config, GetResponse};
use momento::topics::configurations as topic_config;
use momento::{AuthClient, CacheClient, CredentialProvider, MomentoErrorCode, TopicClient};
use tokio::net::TcpListener;
use tokio_stream::StreamExt;

use crate::support::cells::Cells;
use crate::support::grpc::key_id_of;
use crate::support::*;

/// A cache node serving on loopback with `verifier`; its `http://` URL.
async fn start_node(verifier: Verifier) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let node = CacheNode::new(verifier);
    tokio::spawn(authcell::cache_node::serve(
        listener,
        node,
        std::future::pending(),
    ));
    url
}

fn auth_client(authcell_url: &str, key: &str) -> AuthClient {
    let provider = CredentialProvider::from_api_key_v2(key, "localhost")
        .expect("a v2 key")
        .insecure_endpoint_override(authcell_url);
    AuthClient::builder()
        .credential_provider(provider)
        .build()
        .expect("auth client")
}

/// Mints with the SDK; returns the token as the application receives it (the SDK's envelope).
async fn mint(auth: &AuthClient, scope: impl Into<DisposableTokenScope>) -> String {
    auth.generate_disposable_token(scope.into(), ExpiresIn::minutes(10))
        .await
        .expect("generate_disposable_token")
        .auth_token()
}

fn provider(token: &str, node_url: &str) -> CredentialProvider {
    CredentialProvider::from_disposable_token(token.to_owned())
        .expect("the SDK parses its token")
        .insecure_endpoint_override(node_url)
}

fn cache_client(token: &str, node_url: &str) -> CacheClient {
    CacheClient::builder()
        .default_ttl(Duration::from_secs(60))
        .configuration(cache_config::Laptop::latest())
        .credential_provider(provider(token, node_url))
        .build()
        .expect("cache client")
}

fn topic_client(token: &str, node_url: &str) -> TopicClient {
    TopicClient::builder()
        .configuration(topic_config::Laptop::latest())
        .credential_provider(provider(token, node_url))
        .build()
        .expect("topic client")
}

/// The token inside the SDK's envelope (what RevokeToken takes the id of).
fn inner(token: &str) -> String {
    CredentialProvider::from_disposable_token(token.to_owned())
        .expect("parse")
        .auth_token()
        .to_owned()
}

fn code<T>(result: Result<T, momento::MomentoError>) -> MomentoErrorCode {
    match result {
        Ok(_) => panic!("expected a refusal"),
        Err(e) => e.error_code,
    }
}

fn topic_scope(cache: &str, topic: &str) -> Permissions {
    Permissions {
        permissions: vec![Permission::TopicPermission(TopicPermission {
            role: TopicRole::PublishSubscribe,
            cache: CacheSelector::CacheName { name: cache.into() },
            topic: topic.into(),
        })],
    }
}

async fn revoke_token(server: &TestServer, token: &str) {
    pb::admin_client::AdminClient::new(server.channel().await)
        .revoke_token(with_key(
            pb::RevokeTokenRequest {
                token: Some(pb::revoke_token_request::Token::Id(key_id_of(&inner(
                    token,
                )))),
                expires_at_epoch_seconds: server.clock_now() + 3600,
            },
            &server.owner_key,
        ))
        .await
        .expect("revoke token");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sdk_clients_work_inside_their_scope_and_are_refused_outside_it() {
    let server = TestServer::start().await;
    let node = start_node(server.authority.verifier().clone()).await;
    let auth = auth_client(&server.url(), &server.owner_key);

    // A token for the keys under "user:" of cache "sessions".
    let token = mint(
        &auth,
        DisposableTokenScopes::cache_key_prefix_read_write("sessions", "user:"),
    )
    .await;
    let cache = cache_client(&token, &node);
    cache
        .set("sessions", "user:1", "hello")
        .await
        .expect("set in scope");
    match cache.get("sessions", "user:1").await.expect("get in scope") {
        GetResponse::Hit { value } => {
            let text: String = value.try_into().expect("utf-8");
            assert_eq!(text, "hello");
        }
        miss => panic!("{miss:?}"),
    }
    cache
        .delete("sessions", "user:1")
        .await
        .expect("delete in scope");
    assert!(matches!(
        cache.get("sessions", "user:1").await.expect("get"),
        GetResponse::Miss
    ));
    // Another key, another cache: permission errors.
    assert_eq!(
        code(cache.set("sessions", "admin:1", "x").await),
        MomentoErrorCode::PermissionError
    );
    assert_eq!(
        code(cache.get("archive", "user:1").await),
        MomentoErrorCode::PermissionError
    );

    // A token for topic "events" of cache "sessions".
    let token = mint(&auth, topic_scope("sessions", "events")).await;
    let topics = topic_client(&token, &node);
    let mut subscription = topics
        .subscribe("sessions", "events")
        .await
        .expect("subscribe in scope");
    topics
        .publish("sessions", "events", "hello")
        .await
        .expect("publish in scope");
    let received = tokio::time::timeout(Duration::from_secs(5), subscription.next())
        .await
        .expect("a message within 5 s")
        .expect("the stream is open");
    let text: String = received.try_into().expect("text");
    assert_eq!(text, "hello");
    assert_eq!(
        code(topics.publish("sessions", "other", "x").await),
        MomentoErrorCode::PermissionError
    );
    assert_eq!(
        code(topics.publish("archive", "events", "x").await),
        MomentoErrorCode::PermissionError
    );
    assert_eq!(
        code(topics.subscribe("sessions", "other").await),
        MomentoErrorCode::PermissionError
    );
    // A credential that is not a token at all: authentication error.
    let garbage = base64::Engine::encode(
        &base64::engine::general_purpose::STANDARD,
        r#"{"endpoint":"localhost","api_key":"not.a.token"}"#,
    );
    assert_eq!(
        code(
            cache_client(&garbage, &node)
                .get("sessions", "user:1")
                .await
        ),
        MomentoErrorCode::AuthenticationError
    );
}

/// After a revocation, the very next call is refused as an authentication error: by the
/// token's id, through the key that made it, and by an issued-before cut.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_next_call_after_a_revocation_is_an_authentication_error() {
    let server = TestServer::start().await;
    let node = start_node(server.authority.verifier().clone()).await;
    let auth = auth_client(&server.url(), &server.owner_key);
    let scope = || DisposableTokenScopes::cache_key_prefix_read_write("sessions", "user:");

    // RevokeToken.
    let token = mint(&auth, scope()).await;
    let cache = cache_client(&token, &node);
    cache.set("sessions", "user:1", "v").await.expect("set");
    let topics = topic_client(&mint(&auth, topic_scope("sessions", "events")).await, &node);
    topics
        .publish("sessions", "events", "x")
        .await
        .expect("publish");
    revoke_token(&server, &token).await;
    assert_eq!(
        code(cache.get("sessions", "user:1").await),
        MomentoErrorCode::AuthenticationError
    );

    // Cascade: a token minted by an operator key dies with that key.
    let (operator, operator_info) = server.create_key(&server.owner_key, "operator").await;
    let token = mint(&auth_client(&server.url(), &operator), scope()).await;
    let cache = cache_client(&token, &node);
    cache.set("sessions", "user:2", "v").await.expect("set");
    server
        .revoke_key(&server.owner_key, &operator_info.key_id)
        .await;
    assert_eq!(
        code(cache.get("sessions", "user:2").await),
        MomentoErrorCode::AuthenticationError
    );

    // RevokeIssuedBefore: everything issued before the cut, topics included.
    let token = mint(&auth, scope()).await;
    let cache = cache_client(&token, &node);
    cache.get("sessions", "user:3").await.expect("get");
    server.clock.advance(1);
    pb::admin_client::AdminClient::new(server.channel().await)
        .revoke_issued_before(with_key(
            pb::RevokeIssuedBeforeRequest {
                issued_before_epoch_seconds: server.clock_now(),
                ..Default::default()
            },
            &server.owner_key,
        ))
        .await
        .expect("revoke issued before");
    assert_eq!(
        code(cache.get("sessions", "user:3").await),
        MomentoErrorCode::AuthenticationError
    );
    assert_eq!(
        code(topics.publish("sessions", "events", "x").await),
        MomentoErrorCode::AuthenticationError
    );
}

/// A cache node in cell b, like a production node: keys from cell b's authcell, revocations
/// tailed from cell b's replica. Its URL and its sync task.
async fn cell_b_node(cells: &Cells) -> (String, authcell::store::redis::sync::SyncHandle) {
    let ring = authcell::dataplane::fetch_jwks(authcell::dataplane::JwksSource::new(format!(
        "http://{}",
        cells.b.addr
    )))
    .await
    .expect("JWK set from cell b");
    let (view, sync) =
        authcell::dataplane::revocation_view(&cells.topology.replica_b.url(), "authcell:")
            .await
            .expect("cell b's replica");
    let verifier = Verifier::new(ring, view, Arc::new(authcell::clock::SystemClock));
    let started = Instant::now();
    while !verifier.is_serving() {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "view not loaded"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    (start_node(verifier).await, sync)
}

/// Revokes `token` in cell a; the revocation's id.
async fn revoke_in_a(cells: &Cells, token: &str) -> StreamId {
    let revocation = pb::admin_client::AdminClient::new(cells.a.channel().await)
        .revoke_token(with_key(
            pb::RevokeTokenRequest {
                token: Some(pb::revoke_token_request::Token::Id(key_id_of(&inner(
                    token,
                )))),
                expires_at_epoch_seconds: 0,
            },
            &cells.owner,
        ))
        .await
        .expect("revoke in cell a")
        .into_inner()
        .revocation_id;
    StreamId::parse(&revocation)
}

/// Waits until the node's view has applied `wanted`.
async fn until_applied(sync: &authcell::store::redis::sync::SyncHandle, wanted: StreamId) {
    let started = Instant::now();
    while StreamId::parse(&sync.position()) < wanted {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "cell b's replica never had the revocation"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// A token minted in cell a, in use against the cache node of cell b.
async fn token_in_use(cells: &Cells, node: &str) -> (String, CacheClient) {
    let auth = auth_client(&format!("http://{}", cells.a.addr), &cells.owner);
    let token = mint(
        &auth,
        DisposableTokenScopes::cache_key_prefix_read_write("sessions", "user:"),
    )
    .await;
    let cache = cache_client(&token, node);
    cache
        .set("sessions", "user:1", "v")
        .await
        .expect("set in cell b");
    (token, cache)
}

/// Two cells: a token minted in cell a is used against the cache node of cell b (which follows
/// its cell's Redis replica); revoked in cell a, the SDK's next call to the node in cell b,
/// once the revocation reached that replica, is an authentication error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revocation_in_one_cell_refuses_the_next_call_to_a_cache_node_in_the_other() {
    let cells = Cells::start(false).await;
    let (node, sync) = cell_b_node(&cells).await;
    let (token, cache) = token_in_use(&cells, &node).await;
    until_applied(&sync, revoke_in_a(&cells, &token).await).await;
    assert_eq!(
        code(cache.get("sessions", "user:1").await),
        MomentoErrorCode::AuthenticationError
    );
    sync.stop().await;
}

/// The same with cell b's replica paused while the revocation is made: once the replica is back
/// and the node has applied the revocation, the SDK's next call is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revocation_made_while_the_far_replica_is_paused_refuses_the_next_call_once_it_resumes() {
    let cells = Cells::start(false).await;
    let (node, sync) = cell_b_node(&cells).await;
    let (token, cache) = token_in_use(&cells, &node).await;
    cells.topology.replica_b.pause();
    let wanted = revoke_in_a(&cells, &token).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        StreamId::parse(&sync.position()) < wanted,
        "the paused replica cannot have passed the revocation on"
    );
    cells.topology.replica_b.resume();
    until_applied(&sync, wanted).await;
    assert_eq!(
        code(cache.get("sessions", "user:1").await),
        MomentoErrorCode::AuthenticationError
    );
    sync.stop().await;
}

/// One token for a key prefix and a topic (the official SDK's scope builders make one or the
/// other; the wire protocol, and authcell, take both in one GenerateDisposableToken), used with
/// both `CacheClient` and `TopicClient`, then revoked: both are refused on their next call.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_token_for_a_key_prefix_and_a_topic_serves_both_clients_until_revoked() {
    use authcell::proto::permission_messages as pm;
    use authcell::proto::token;
    let server = TestServer::start().await;
    let node = start_node(server.authority.verifier().clone()).await;
    use pm::permissions_type as pt;
    let prefix = statements::cache(
        pm::CacheRole::CacheReadWrite,
        Some("sessions"),
        Some(pt::cache_item_selector::Kind::KeyPrefix(b"user:".to_vec())),
    );
    let topic = statements::topic(
        pm::TopicRole::TopicReadWrite,
        Some("sessions"),
        Some(pt::topic_selector::Kind::TopicName("events".into())),
    );
    let minted = token::token_client::TokenClient::new(server.channel().await)
        .generate_disposable_token(token::GenerateDisposableTokenRequest {
            expires: Some(token::generate_disposable_token_request::Expires {
                valid_for_seconds: 600,
            }),
            auth_token: server.owner_key.clone(),
            permissions: Some(explicit(vec![prefix, topic])),
            token_id: String::new(),
        })
        .await
        .expect("mint")
        .into_inner();
    // What the SDK hands an application: its envelope around the token.
    let envelope = base64::Engine::encode(
        &base64::engine::general_purpose::URL_SAFE,
        serde_json::json!({"endpoint": minted.endpoint, "api_key": minted.api_key}).to_string(),
    );
    let cache = cache_client(&envelope, &node);
    let topics = topic_client(&envelope, &node);
    cache
        .set("sessions", "user:9", "v")
        .await
        .expect("set in scope");
    topics
        .publish("sessions", "events", "hi")
        .await
        .expect("publish in scope");
    assert_eq!(
        code(cache.set("sessions", "admin:9", "v").await),
        MomentoErrorCode::PermissionError
    );
    assert_eq!(
        code(topics.publish("sessions", "other", "hi").await),
        MomentoErrorCode::PermissionError
    );
    revoke_token(&server, &envelope).await;
    assert_eq!(
        code(cache.get("sessions", "user:9").await),
        MomentoErrorCode::AuthenticationError
    );
    assert_eq!(
        code(topics.publish("sessions", "events", "hi").await),
        MomentoErrorCode::AuthenticationError
    );
}
