//! The acceptance test of token vending: the official Momento Rust SDK (`momento` crate,
//! unmodified) drives our server over plaintext loopback, and Authorize judges the tokens it
//! gets back.

use authcell::proto::authcell::v1 as pb;
use momento::auth::{
    CachePermission, CacheRole, CacheSelector, DisposableTokenScope, DisposableTokenScopes,
    ExpiresIn, GenerateDisposableTokenRequest, Permission, PermissionScopes, Permissions,
    TopicPermission, TopicRole, TopicSelector,
};
use momento::{AuthClient, CredentialProvider, MomentoErrorCode};

use crate::support::*;

fn sdk_client(server: &TestServer, key: &str) -> AuthClient {
    let provider = CredentialProvider::from_api_key_v2(key, "localhost")
        .expect("our v2 key is accepted by from_api_key_v2")
        .insecure_endpoint_override(&server.url());
    AuthClient::builder()
        .credential_provider(provider)
        .build()
        .expect("auth client")
}

/// Mints through the SDK and returns the raw token after checking that the SDK's own parser
/// accepts what it returns and that the endpoint is ours.
async fn mint(server: &TestServer, scope: impl Into<DisposableTokenScope>) -> String {
    let client = sdk_client(server, &server.owner_key);
    let response = client
        .generate_disposable_token(scope.into(), ExpiresIn::minutes(10))
        .await
        .expect("generate_disposable_token");
    assert_eq!(response.clone().endpoint(), server.endpoint);
    let now = server.clock_now();
    let expires = response.clone().expires_at().epoch();
    assert!(
        (now + 595..=now + 600).contains(&expires),
        "valid_until {expires} should be ~10 minutes after {now}"
    );
    let provider = CredentialProvider::from_disposable_token(response.auth_token())
        .expect("the SDK parses the disposable token it returned");
    let debug = format!("{provider:?}");
    assert!(
        debug.contains(&format!("cache.{}", server.endpoint)),
        "credential provider should point at our endpoint: {debug}"
    );
    let token = provider.auth_token().to_owned();
    assert_ne!(
        jwt_claim(&token, "t"),
        Some("g".into()),
        "a disposable token is not a v2 key"
    );
    token
}

/// Reads one string claim from a JWT's payload (no verification: test inspection only).
fn jwt_claim(token: &str, claim: &str) -> Option<String> {
    use base64::Engine;
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .ok()?;
    let json: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    json.get(claim)?.as_str().map(str::to_owned)
}

async fn allowed(server: &TestServer, request: pb::AuthorizeRequest) -> bool {
    let response = server.authorize(request).await;
    if !response.allowed {
        assert_eq!(
            response.reason,
            pb::Reason::Permission as i32,
            "a valid token is only ever denied for permission here: {response:?}"
        );
    }
    response.allowed
}

use pb::Action::{CacheRead as R, CacheReadWrite as RW, CacheWrite as W};

/// Asserts the cache decisions of `token` for (action, cache, key) triples.
async fn assert_cache(server: &TestServer, token: &str, cases: &[(pb::Action, &str, &[u8], bool)]) {
    for (action, cache, key, expected) in cases {
        let got = allowed(server, cache_check(token, *action, cache, key)).await;
        assert_eq!(
            got,
            *expected,
            "{action:?} on cache {cache:?} key {:?}",
            String::from_utf8_lossy(key)
        );
    }
}

async fn assert_topics(server: &TestServer, token: &str, cases: &[(pb::Action, &str, &str, bool)]) {
    for (action, cache, topic, expected) in cases {
        let got = allowed(server, topic_check(token, *action, cache, topic)).await;
        assert_eq!(
            got, *expected,
            "{action:?} on cache {cache:?} topic {topic:?}"
        );
    }
}

#[tokio::test]
#[allow(deprecated)]
async fn credential_providers_recognise_our_v2_key() {
    let server = TestServer::start().await;
    assert!(CredentialProvider::from_api_key_v2(server.owner_key.clone(), "localhost").is_ok());
    let err = CredentialProvider::from_string(server.owner_key.clone())
        .expect_err("from_string refuses a v2 key");
    assert!(
        err.message.contains("Received a v2 API key"),
        "{}",
        err.message
    );
    let err = CredentialProvider::from_disposable_token(server.owner_key.clone())
        .expect_err("from_disposable_token refuses a v2 key");
    assert!(
        err.message.contains("Received a v2 API key"),
        "{}",
        err.message
    );
}

#[tokio::test]
async fn cache_key_read_write() {
    let server = TestServer::start().await;
    let token = mint(
        &server,
        DisposableTokenScopes::cache_key_read_write("c", "k"),
    )
    .await;
    assert_cache(
        &server,
        &token,
        &[
            (R, "c", b"k", true),
            (W, "c", b"k", true),
            (RW, "c", b"k", true),
            (R, "c", b"k2", false),
            (W, "c", b"other", false),
            (R, "d", b"k", false),
            (R, "c", b"", false),
        ],
    )
    .await;
    assert!(
        !allowed(
            &server,
            topic_check(&token, pb::Action::TopicSubscribe, "c", "k")
        )
        .await
    );
}

#[tokio::test]
async fn cache_key_prefix_read_write() {
    let server = TestServer::start().await;
    let token = mint(
        &server,
        DisposableTokenScopes::cache_key_prefix_read_write("c", "user:"),
    )
    .await;
    assert_cache(
        &server,
        &token,
        &[
            (R, "c", b"user:1", true),
            (W, "c", b"user:2", true),
            (RW, "c", b"user:", true),
            (R, "c", b"usr:1", false),
            (W, "c", b"admin", false),
            (R, "other", b"user:1", false),
        ],
    )
    .await;
}

#[tokio::test]
async fn cache_key_read_only() {
    let server = TestServer::start().await;
    let token = mint(
        &server,
        DisposableTokenScopes::cache_key_read_only("c", "k"),
    )
    .await;
    assert_cache(
        &server,
        &token,
        &[
            (R, "c", b"k", true),
            (W, "c", b"k", false),
            (RW, "c", b"k", false),
            (R, "c", b"j", false),
        ],
    )
    .await;
}

#[tokio::test]
async fn cache_key_prefix_read_only() {
    let server = TestServer::start().await;
    let token = mint(
        &server,
        DisposableTokenScopes::cache_key_prefix_read_only("c", "p"),
    )
    .await;
    assert_cache(
        &server,
        &token,
        &[
            (R, "c", b"p1", true),
            (W, "c", b"p1", false),
            (RW, "c", b"p1", false),
            (R, "c", b"q1", false),
        ],
    )
    .await;
}

#[tokio::test]
async fn cache_key_write_only_excludes_conditional_writes() {
    let server = TestServer::start().await;
    let token = mint(
        &server,
        DisposableTokenScopes::cache_key_write_only("c", "k"),
    )
    .await;
    assert_cache(
        &server,
        &token,
        &[
            (W, "c", b"k", true),
            (R, "c", b"k", false),
            (RW, "c", b"k", false),
            (W, "c", b"k2", false),
        ],
    )
    .await;
}

#[tokio::test]
async fn cache_key_prefix_write_only() {
    let server = TestServer::start().await;
    let token = mint(
        &server,
        DisposableTokenScopes::cache_key_prefix_write_only("c", "p"),
    )
    .await;
    assert_cache(
        &server,
        &token,
        &[
            (W, "c", b"p-1", true),
            (R, "c", b"p-1", false),
            (RW, "c", b"p-1", false),
            (W, "c", b"x", false),
        ],
    )
    .await;
}

#[tokio::test]
async fn whole_cache_scopes_cover_every_key_of_the_named_cache_only() {
    let server = TestServer::start().await;
    let rw = mint(&server, PermissionScopes::cache_read_write("c")).await;
    assert_cache(
        &server,
        &rw,
        &[
            (R, "c", b"a", true),
            (W, "c", b"b", true),
            (RW, "c", b"c", true),
            (R, "d", b"a", false),
        ],
    )
    .await;
    let ro = mint(
        &server,
        PermissionScopes::cache_read_only(CacheSelector::AllCaches),
    )
    .await;
    assert_cache(
        &server,
        &ro,
        &[
            (R, "c", b"a", true),
            (R, "d", b"a", true),
            (W, "c", b"a", false),
            (RW, "d", b"a", false),
        ],
    )
    .await;
    let wo = mint(&server, PermissionScopes::cache_write_only("c")).await;
    assert_cache(
        &server,
        &wo,
        &[
            (W, "c", b"a", true),
            (R, "c", b"a", false),
            (RW, "c", b"a", false),
            (W, "d", b"a", false),
        ],
    )
    .await;
}

#[tokio::test]
async fn topic_scopes() {
    use pb::Action::{TopicPublish as P, TopicSubscribe as S};
    let server = TestServer::start().await;
    let pubsub = mint(
        &server,
        PermissionScopes::topic_publish_subscribe("c", "news"),
    )
    .await;
    assert_topics(
        &server,
        &pubsub,
        &[
            (P, "c", "news", true),
            (S, "c", "news", true),
            (S, "c", "sports", false),
            (P, "d", "news", false),
        ],
    )
    .await;
    assert!(!allowed(&server, cache_check(&pubsub, R, "c", b"news")).await);
    let sub = mint(
        &server,
        PermissionScopes::topic_subscribe_only(CacheSelector::AllCaches, TopicSelector::AllTopics),
    )
    .await;
    assert_topics(
        &server,
        &sub,
        &[
            (S, "c", "a", true),
            (S, "d", "b", true),
            (P, "c", "a", false),
        ],
    )
    .await;
    let publish = mint(
        &server,
        PermissionScopes::topic_publish_only("c", TopicSelector::AllTopics),
    )
    .await;
    assert_topics(
        &server,
        &publish,
        &[
            (P, "c", "a", true),
            (P, "c", "b", true),
            (S, "c", "a", false),
            (P, "d", "a", false),
        ],
    )
    .await;
}

#[tokio::test]
async fn explicit_permission_lists_combine_statements() {
    let server = TestServer::start().await;
    let scope = Permissions {
        permissions: vec![
            Permission::CachePermission(CachePermission {
                role: CacheRole::ReadOnly,
                cache: "a".into(),
            }),
            Permission::CachePermission(CachePermission {
                role: CacheRole::WriteOnly,
                cache: "b".into(),
            }),
            Permission::TopicPermission(TopicPermission {
                role: TopicRole::PublishSubscribe,
                cache: CacheSelector::AllCaches,
                topic: "t".into(),
            }),
        ],
    };
    let token = mint(&server, scope).await;
    assert_cache(
        &server,
        &token,
        &[
            (R, "a", b"k", true),
            (W, "a", b"k", false),
            (W, "b", b"k", true),
            (R, "b", b"k", false),
        ],
    )
    .await;
    assert_topics(
        &server,
        &token,
        &[
            (pb::Action::TopicPublish, "x", "t", true),
            (pb::Action::TopicSubscribe, "y", "t", true),
            (pb::Action::TopicSubscribe, "y", "u", false),
        ],
    )
    .await;
    let all = mint(&server, Permissions::all_data_read_write()).await;
    assert!(allowed(&server, cache_check(&all, RW, "any", b"k")).await);
    assert!(
        allowed(
            &server,
            topic_check(&all, pb::Action::TopicPublish, "any", "t")
        )
        .await
    );
}

#[tokio::test]
async fn token_id_round_trips_to_authorize() {
    let server = TestServer::start().await;
    let client = sdk_client(&server, &server.owner_key);
    let request = GenerateDisposableTokenRequest::new(
        DisposableTokenScopes::cache_key_read_only("c", "k"),
        ExpiresIn::seconds(30),
    )
    .token_id("session-42".into());
    let response = client
        .send_request(request)
        .await
        .expect("mint with token_id");
    let provider = CredentialProvider::from_disposable_token(response.auth_token()).expect("parse");
    let verdict = server
        .authorize(cache_check(provider.auth_token(), R, "c", b"k"))
        .await;
    assert!(verdict.allowed, "{verdict:?}");
    assert_eq!(verdict.token_id, "session-42");
    assert_eq!(verdict.account_id, ACCOUNT);
}

#[tokio::test]
async fn over_25_hours_is_refused_by_our_server() {
    let server = TestServer::start().await;
    let client = sdk_client(&server, &server.owner_key);
    // The SDK does not check the upper bound itself, so this reaches the server.
    let err = client
        .generate_disposable_token(
            DisposableTokenScopes::cache_key_read_only("c", "k"),
            ExpiresIn::hours(26),
        )
        .await
        .expect_err("26 hours is over the limit");
    assert_eq!(
        err.error_code,
        MomentoErrorCode::InvalidArgumentError,
        "{err:?}"
    );
    assert!(format!("{err:?}").contains("valid_for_seconds"), "{err:?}");
    // Exactly 25 hours is fine.
    client
        .generate_disposable_token(
            DisposableTokenScopes::cache_key_read_only("c", "k"),
            ExpiresIn::hours(25),
        )
        .await
        .expect("25 hours is within the limit");
}

#[tokio::test]
async fn a_scope_beyond_the_callers_role_is_refused() {
    let server = TestServer::start().await;
    let (viewer, _) = server.create_key(&server.owner_key, "viewer").await;
    let client = sdk_client(&server, &viewer);
    // Viewers read data; they cannot delegate writes.
    let err = client
        .generate_disposable_token(
            DisposableTokenScopes::cache_key_read_write("c", "k"),
            ExpiresIn::minutes(1),
        )
        .await
        .expect_err("viewer cannot delegate writes");
    assert_eq!(err.error_code, MomentoErrorCode::PermissionError, "{err:?}");
    assert!(format!("{err:?}").contains("permissions[0]"), "{err:?}");
    let token = client
        .generate_disposable_token(
            DisposableTokenScopes::cache_key_read_only("c", "k"),
            ExpiresIn::minutes(1),
        )
        .await
        .expect("viewer can delegate reads");
    let provider = CredentialProvider::from_disposable_token(token.auth_token()).expect("parse");
    assert!(allowed(&server, cache_check(provider.auth_token(), R, "c", b"k")).await);
}

#[tokio::test]
async fn a_revoked_key_cannot_mint_through_the_sdk() {
    let server = TestServer::start().await;
    let (operator, info) = server.create_key(&server.owner_key, "operator").await;
    let client = sdk_client(&server, &operator);
    client
        .generate_disposable_token(
            DisposableTokenScopes::cache_key_read_only("c", "k"),
            ExpiresIn::minutes(1),
        )
        .await
        .expect("precondition: the operator key mints");
    server.revoke_key(&server.owner_key, &info.key_id).await;
    let err = client
        .generate_disposable_token(
            DisposableTokenScopes::cache_key_read_only("c", "k"),
            ExpiresIn::minutes(1),
        )
        .await
        .expect_err("revoked key");
    assert_eq!(
        err.error_code,
        MomentoErrorCode::AuthenticationError,
        "{err:?}"
    );
}
