//! Token vending over raw gRPC: validation, delegation, expiry, revocation, refresh, rate limit.

use authcell::keyring::KeyRing;
use authcell::node::NodeOptions;
use authcell::proto::authcell::v1 as pb;
use authcell::proto::permission_messages as pm;
use authcell::proto::{auth, token};
use pm::permissions_type as pt;
use tonic::Code;

use crate::support::statements::*;
use crate::support::*;

fn assert_invalid(result: Result<impl std::fmt::Debug, tonic::Status>, field: &str) {
    let status = result.expect_err("expected INVALID_ARGUMENT");
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert!(
        status.message().contains(field),
        "message should name {field}: {}",
        status.message()
    );
}

#[tokio::test]
async fn the_credential_may_come_from_metadata_when_the_body_has_none() {
    let server = TestServer::start().await;
    let response = server
        .token()
        .await
        .generate_disposable_token(with_key(
            token::GenerateDisposableTokenRequest {
                expires: Some(token::generate_disposable_token_request::Expires {
                    valid_for_seconds: 60,
                }),
                auth_token: String::new(),
                permissions: Some(explicit(vec![read_cache("c")])),
                token_id: String::new(),
            },
            &server.owner_key,
        ))
        .await
        .expect("metadata credential")
        .into_inner();
    assert_eq!(response.endpoint, server.endpoint);
    assert_eq!(response.valid_until, server.clock_now() + 60);
    let verdict = server
        .authorize(cache_check(
            &response.api_key,
            pb::Action::CacheRead,
            "c",
            b"k",
        ))
        .await;
    assert!(verdict.allowed, "{verdict:?}");
    assert_eq!(verdict.expires_at_epoch_seconds, Some(response.valid_until));
}

#[tokio::test]
async fn bad_input_names_the_field() {
    let server = TestServer::start().await;
    let key = &server.owner_key;
    let mut client = server.token().await;
    let base = token::GenerateDisposableTokenRequest {
        expires: Some(token::generate_disposable_token_request::Expires {
            valid_for_seconds: 60,
        }),
        auth_token: key.clone(),
        permissions: Some(explicit(vec![read_cache("c")])),
        token_id: String::new(),
    };
    // Precondition: the base request is valid.
    client
        .generate_disposable_token(base.clone())
        .await
        .expect("base request is valid");

    let mut r = base.clone();
    r.expires = None;
    assert_invalid(client.generate_disposable_token(r).await, "expires");
    for seconds in [0, 90_001, u32::MAX] {
        let mut r = base.clone();
        r.expires = Some(token::generate_disposable_token_request::Expires {
            valid_for_seconds: seconds,
        });
        assert_invalid(
            client.generate_disposable_token(r).await,
            "valid_for_seconds",
        );
    }
    let mut r = base.clone();
    r.permissions = Some(explicit(
        (0..21).map(|i| read_cache(&format!("c{i}"))).collect(),
    ));
    assert_invalid(client.generate_disposable_token(r).await, "at most 20");
    let mut r = base.clone();
    r.permissions = Some(explicit(vec![]));
    assert_invalid(client.generate_disposable_token(r).await, "permissions");
    let mut r = base.clone();
    r.permissions = None;
    assert_invalid(client.generate_disposable_token(r).await, "permissions");
    let mut r = base.clone();
    r.permissions = Some(pm::Permissions {
        kind: Some(pm::permissions::Kind::SuperUser(
            pm::SuperUserPermissions::SuperUser as i32,
        )),
    });
    assert_invalid(client.generate_disposable_token(r).await, "super_user");
    let mut r = base.clone();
    r.token_id = "x".repeat(65);
    assert_invalid(client.generate_disposable_token(r).await, "token_id");
    // Empty selectors and names.
    let empty_item = pm::PermissionsType {
        kind: Some(pt::Kind::CachePermissions(pt::CachePermissions {
            role: pm::CacheRole::CacheReadOnly as i32,
            cache: Some(pt::cache_permissions::Cache::AllCaches(pt::All {})),
            cache_item: Some(pt::cache_permissions::CacheItem::ItemSelector(
                pt::CacheItemSelector { kind: None },
            )),
        })),
    };
    let cases = vec![
        (
            cache(pm::CacheRole::CacheReadOnly, Some(""), None),
            "cache_name",
        ),
        (
            topic(
                pm::TopicRole::TopicReadOnly,
                Some("c"),
                Some(pt::topic_selector::Kind::TopicName(String::new())),
            ),
            "topic_name",
        ),
        (
            topic(pm::TopicRole::TopicReadOnly, Some(""), None),
            "cache_name",
        ),
        (
            cache(
                pm::CacheRole::CacheReadOnly,
                Some("c"),
                Some(pt::cache_item_selector::Kind::Key(vec![])),
            ),
            "item_selector.key",
        ),
        (
            cache(pm::CacheRole::CachePermitNone, Some("c"), None),
            "role",
        ),
        (empty_item, "item_selector"),
        (pm::PermissionsType { kind: None }, "permissions[0].kind"),
    ];
    for (statement, field) in cases {
        let mut r = base.clone();
        r.permissions = Some(explicit(vec![statement]));
        assert_invalid(client.generate_disposable_token(r).await, field);
    }
}

#[tokio::test]
async fn missing_expired_or_revoked_callers_are_unauthenticated() {
    let server = TestServer::start().await;
    let status = server
        .mint_raw("", vec![read_cache("c")], 60, "")
        .await
        .expect_err("no credential");
    assert_eq!(status.code(), Code::Unauthenticated);
    assert!(status.message().contains("missing"), "{status:?}");

    let (key, info) = server.create_key(&server.owner_key, "operator").await;
    server
        .mint_raw(&key, vec![read_cache("c")], 60, "")
        .await
        .expect("precondition: the operator key mints");
    server.revoke_key(&server.owner_key, &info.key_id).await;
    let status = server
        .mint_raw(&key, vec![read_cache("c")], 60, "")
        .await
        .expect_err("revoked");
    assert_eq!(status.code(), Code::Unauthenticated);
    assert!(status.message().contains("revoked"), "{status:?}");
    assert!(!status.message().contains(&key));
}

#[tokio::test]
async fn a_token_never_outlives_its_parent_and_expires() {
    let server = TestServer::start().await;
    let now = server.clock_now();
    let response = server
        .global_admin()
        .await
        .generate_global_api_key(with_key(
            key_request("operator", "short-lived", Some(now + 100)),
            &server.owner_key,
        ))
        .await
        .expect("short-lived key")
        .into_inner();
    let minted = server
        .mint_raw(&response.api_key, vec![read_cache("c")], 3600, "")
        .await
        .expect("mint");
    assert_eq!(
        minted.valid_until,
        now + 100,
        "clamped to the parent's expiry"
    );

    let short = server
        .mint_raw(&server.owner_key, vec![read_cache("c")], 10, "")
        .await
        .expect("mint");
    let check = || cache_check(&short.api_key, pb::Action::CacheRead, "c", b"k");
    assert!(
        server.authorize(check()).await.allowed,
        "precondition: fresh token allowed"
    );
    server.clock.advance(10 + 6);
    let verdict = server.authorize(check()).await;
    assert!(!verdict.allowed);
    assert_eq!(verdict.reason, pb::Reason::Expired as i32, "{verdict:?}");
}

#[tokio::test]
async fn disposable_tokens_cannot_mint_or_manage() {
    let server = TestServer::start().await;
    let token = server
        .mint_raw(&server.owner_key, vec![read_cache("c")], 60, "")
        .await
        .expect("mint")
        .api_key;
    let status = server
        .mint_raw(&token, vec![read_cache("c")], 60, "")
        .await
        .expect_err("a token cannot mint");
    assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
    let status = server
        .admin()
        .await
        .list_roles(with_key(pb::ListRolesRequest {}, &token))
        .await
        .expect_err("a token cannot manage");
    assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
}

#[tokio::test]
async fn function_statements_are_honoured() {
    let server = TestServer::start().await;
    let minted = server
        .mint_raw(
            &server.owner_key,
            vec![
                function(
                    Some("c"),
                    Some(pt::function_selector::Kind::FunctionNamePrefix(
                        "img-".into(),
                    )),
                ),
                function(
                    None,
                    Some(pt::function_selector::Kind::FunctionName("ping".into())),
                ),
            ],
            60,
            "",
        )
        .await
        .expect("mint")
        .api_key;
    for (cache, function, expected) in [
        ("c", "img-resize", true),
        ("d", "img-resize", false),
        ("c", "video", false),
        ("any", "ping", true),
        ("any", "pong", false),
    ] {
        let verdict = server
            .authorize(function_check(&minted, cache, function))
            .await;
        assert_eq!(verdict.allowed, expected, "{cache}/{function}: {verdict:?}");
    }
    let topic_prefix = server
        .mint_raw(
            &server.owner_key,
            vec![topic(
                pm::TopicRole::TopicReadOnly,
                Some("c"),
                Some(pt::topic_selector::Kind::TopicNamePrefix("news.".into())),
            )],
            60,
            "",
        )
        .await
        .expect("mint")
        .api_key;
    assert!(
        server
            .authorize(topic_check(
                &topic_prefix,
                pb::Action::TopicSubscribe,
                "c",
                "news.eu"
            ))
            .await
            .allowed
    );
    assert!(
        !server
            .authorize(topic_check(
                &topic_prefix,
                pb::Action::TopicSubscribe,
                "c",
                "sport"
            ))
            .await
            .allowed
    );
    assert!(
        !server
            .authorize(topic_check(
                &topic_prefix,
                pb::Action::TopicPublish,
                "c",
                "news.eu"
            ))
            .await
            .allowed
    );
}

#[tokio::test]
async fn delegation_names_the_first_statement_that_exceeds_the_caller() {
    let server = TestServer::start().await;
    let (viewer, _) = server.create_key(&server.owner_key, "viewer").await;
    let status = server
        .mint_raw(
            &viewer,
            vec![
                read_cache("c"),
                cache(pm::CacheRole::CacheWriteOnly, Some("c"), None),
            ],
            60,
            "",
        )
        .await
        .expect_err("viewer cannot delegate writes");
    assert_eq!(status.code(), Code::PermissionDenied);
    assert!(status.message().contains("permissions[1]"), "{status:?}");
    // A token minted by an SDK-made key is bounded by that key's inline permissions.
    let sdk_key = generate_api_token(&server, &server.owner_key, vec![read_cache("c")], None)
        .await
        .expect("sdk key");
    server
        .mint_raw(&sdk_key.api_key, vec![read_cache("c")], 60, "")
        .await
        .expect("within the SDK key");
    let status = server
        .mint_raw(&sdk_key.api_key, vec![read_cache("d")], 60, "")
        .await
        .expect_err("beyond the SDK key");
    assert_eq!(status.code(), Code::PermissionDenied);
}

async fn generate_api_token(
    server: &TestServer,
    caller: &str,
    permissions: Vec<pm::PermissionsType>,
    valid_for_seconds: Option<u32>,
) -> Result<auth::GenerateApiTokenResponse, tonic::Status> {
    use auth::generate_api_token_request::{Expires, Expiry, Never};
    server
        .auth()
        .await
        .generate_api_token(auth::GenerateApiTokenRequest {
            expiry: Some(match valid_for_seconds {
                None => Expiry::Never(Never {}),
                Some(s) => Expiry::Expires(Expires {
                    valid_for_seconds: s,
                }),
            }),
            auth_token: caller.into(),
            permissions: Some(explicit(permissions)),
            token_id: "sdk-key".into(),
            description: "made by a test".into(),
        })
        .await
        .map(|r| r.into_inner())
}

#[tokio::test]
async fn sdk_made_keys_refresh_once_and_keep_their_permissions() {
    let server = TestServer::start().await;
    let made = generate_api_token(
        &server,
        &server.owner_key,
        vec![read_cache("c")],
        Some(3600),
    )
    .await
    .expect("generate api token");
    assert_eq!(made.endpoint, server.endpoint);
    assert_eq!(made.valid_until, server.clock_now() + 3600);
    let read = |key: &str| cache_check(key, pb::Action::CacheRead, "c", b"k");
    let verdict = server.authorize(read(&made.api_key)).await;
    assert!(verdict.allowed, "{verdict:?}");
    assert_eq!(
        verdict.token_id, "sdk-key",
        "the key's token_id is carried and reported"
    );
    assert!(
        !server
            .authorize(cache_check(
                &made.api_key,
                pb::Action::CacheWrite,
                "c",
                b"k"
            ))
            .await
            .allowed
    );

    server.clock.advance(100);
    let mut client = server.auth().await;
    let refreshed = client
        .refresh_api_token(auth::RefreshApiTokenRequest {
            api_key: made.api_key.clone(),
            refresh_token: made.refresh_token.clone(),
        })
        .await
        .expect("refresh")
        .into_inner();
    assert_ne!(refreshed.api_key, made.api_key);
    assert_ne!(refreshed.refresh_token, made.refresh_token);
    assert_eq!(
        refreshed.valid_until,
        server.clock_now() + 3600,
        "same lifetime length"
    );
    assert!(server.authorize(read(&refreshed.api_key)).await.allowed);
    let old = server.authorize(read(&made.api_key)).await;
    assert_eq!(
        old.reason,
        pb::Reason::Revoked as i32,
        "the old key is revoked: {old:?}"
    );

    // A refresh token works once.
    let status = client
        .refresh_api_token(auth::RefreshApiTokenRequest {
            api_key: made.api_key.clone(),
            refresh_token: made.refresh_token.clone(),
        })
        .await
        .expect_err("second use");
    assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
    // A wrong refresh token fails.
    let status = client
        .refresh_api_token(auth::RefreshApiTokenRequest {
            api_key: refreshed.api_key.clone(),
            refresh_token: "acr1_wrong".into(),
        })
        .await
        .expect_err("wrong refresh token");
    assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
    assert!(!status.message().contains("acr1_wrong"));
}

#[tokio::test]
async fn refresh_fails_for_a_revoked_key() {
    let server = TestServer::start().await;
    let made = generate_api_token(&server, &server.owner_key, vec![read_cache("c")], None)
        .await
        .expect("generate api token");
    let key_id = server
        .admin()
        .await
        .list_api_keys(with_key(
            pb::ListApiKeysRequest::default(),
            &server.owner_key,
        ))
        .await
        .expect("list")
        .into_inner()
        .keys
        .into_iter()
        .find(|k| k.kind == pb::KeyKind::Inline as i32)
        .expect("the SDK-made key is listed")
        .key_id;
    server.revoke_key(&server.owner_key, &key_id).await;
    let status = server
        .auth()
        .await
        .refresh_api_token(auth::RefreshApiTokenRequest {
            api_key: made.api_key,
            refresh_token: made.refresh_token,
        })
        .await
        .expect_err("revoked key");
    assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
    assert!(status.message().contains("revoked"), "{status:?}");
}

#[tokio::test]
async fn generate_api_token_refuses_super_user_and_bad_input() {
    let server = TestServer::start().await;
    let mut client = server.auth().await;
    let request = auth::GenerateApiTokenRequest {
        expiry: Some(auth::generate_api_token_request::Expiry::Never(
            auth::generate_api_token_request::Never {},
        )),
        auth_token: server.owner_key.clone(),
        permissions: Some(pm::Permissions {
            kind: Some(pm::permissions::Kind::SuperUser(
                pm::SuperUserPermissions::SuperUser as i32,
            )),
        }),
        token_id: String::new(),
        description: String::new(),
    };
    assert_invalid(
        client.generate_api_token(request.clone()).await,
        "super_user",
    );
    let mut r = request.clone();
    r.permissions = Some(explicit(vec![read_cache("c")]));
    r.expiry = None;
    assert_invalid(client.generate_api_token(r).await, "expiry");
    let mut r = request.clone();
    r.permissions = Some(explicit(vec![read_cache("c")]));
    r.token_id = "t".repeat(65);
    assert_invalid(client.generate_api_token(r).await, "token_id");
    // A viewer holds no AuthWrite: it cannot create keys.
    let (viewer, _) = server.create_key(&server.owner_key, "viewer").await;
    let mut r = request;
    r.permissions = Some(explicit(vec![read_cache("c")]));
    r.auth_token = viewer;
    let status = client.generate_api_token(r).await.expect_err("viewer");
    assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
}

#[tokio::test]
async fn revoking_a_key_revokes_its_tokens_and_keys_it_made() {
    let server = TestServer::start().await;
    let (operator, info) = server.create_key(&server.owner_key, "operator").await;
    let token = server
        .mint_raw(&operator, vec![read_cache("c")], 600, "")
        .await
        .expect("token")
        .api_key;
    let sdk_key = generate_api_token(&server, &operator, vec![read_cache("c")], None)
        .await
        .expect("sdk key")
        .api_key;
    let grandchild = server
        .mint_raw(&sdk_key, vec![read_cache("c")], 600, "")
        .await
        .expect("token from the sdk key")
        .api_key;
    let read = |key: &str| cache_check(key, pb::Action::CacheRead, "c", b"k");
    for credential in [&token, &sdk_key, &grandchild] {
        assert!(
            server.authorize(read(credential)).await.allowed,
            "precondition"
        );
    }
    server.revoke_key(&server.owner_key, &info.key_id).await;
    for credential in [&token, &sdk_key, &grandchild] {
        let verdict = server.authorize(read(credential)).await;
        assert_eq!(verdict.reason, pb::Reason::Revoked as i32, "{verdict:?}");
    }
}

#[tokio::test]
async fn revoke_token_by_id_and_by_token_id() {
    let server = TestServer::start().await;
    let mut admin = server.admin().await;
    let a = server
        .mint_raw(&server.owner_key, vec![read_cache("c")], 600, "session-a")
        .await
        .expect("a")
        .api_key;
    let b = server
        .mint_raw(&server.owner_key, vec![read_cache("c")], 600, "session-b")
        .await
        .expect("b")
        .api_key;
    let read = |key: &str| cache_check(key, pb::Action::CacheRead, "c", b"k");
    let a_id = server.authorize(read(&a)).await.key_id;
    assert!(!a_id.is_empty(), "Authorize reports the token's id");

    admin
        .revoke_token(with_key(
            pb::RevokeTokenRequest {
                token: Some(pb::revoke_token_request::Token::Id(a_id)),
                expires_at_epoch_seconds: 0,
            },
            &server.owner_key,
        ))
        .await
        .expect("revoke by id");
    assert_eq!(
        server.authorize(read(&a)).await.reason,
        pb::Reason::Revoked as i32
    );
    assert!(
        server.authorize(read(&b)).await.allowed,
        "only a is revoked"
    );

    admin
        .revoke_token(with_key(
            pb::RevokeTokenRequest {
                token: Some(pb::revoke_token_request::Token::TokenId("session-b".into())),
                expires_at_epoch_seconds: 0,
            },
            &server.owner_key,
        ))
        .await
        .expect("revoke by token id");
    assert_eq!(
        server.authorize(read(&b)).await.reason,
        pb::Reason::Revoked as i32
    );

    let status = admin
        .revoke_token(with_key(
            pb::RevokeTokenRequest::default(),
            &server.owner_key,
        ))
        .await
        .expect_err("nothing named");
    assert_eq!(status.code(), Code::InvalidArgument);
}

#[tokio::test]
async fn revoke_issued_before_revokes_everything_older_in_one_step() {
    let server = TestServer::start().await;
    let (operator, _) = server.create_key(&server.owner_key, "operator").await;
    let token = server
        .mint_raw(&operator, vec![read_cache("c")], 600, "")
        .await
        .expect("token")
        .api_key;
    let read = |key: &str| cache_check(key, pb::Action::CacheRead, "c", b"k");
    server.clock.advance(10);
    // An operator may not do it; the owner may.
    let status = server
        .admin()
        .await
        .revoke_issued_before(with_key(
            pb::RevokeIssuedBeforeRequest::default(),
            &operator,
        ))
        .await
        .expect_err("operator");
    assert_eq!(status.code(), Code::PermissionDenied);
    let cut = server
        .admin()
        .await
        .revoke_issued_before(with_key(
            pb::RevokeIssuedBeforeRequest::default(),
            &server.owner_key,
        ))
        .await
        .expect("owner")
        .into_inner()
        .issued_before_epoch_seconds;
    assert_eq!(cut, server.clock_now());
    for credential in [&operator, &token, &server.owner_key] {
        assert_eq!(
            server.authorize(read(credential)).await.reason,
            pb::Reason::Revoked as i32
        );
    }
    // Future cut-offs are refused (checked with a fresh owner key).
    let (fresh, _) = server
        .authority
        .bootstrap(ACCOUNT, true)
        .await
        .expect("new owner key");
    let status = server
        .admin()
        .await
        .revoke_issued_before(with_key(
            pb::RevokeIssuedBeforeRequest {
                issued_before_epoch_seconds: server.clock_now() + 100,
                ..Default::default()
            },
            &fresh,
        ))
        .await
        .expect_err("future");
    assert_eq!(status.code(), Code::InvalidArgument);
}

#[tokio::test]
async fn vending_is_rate_limited_per_account_with_retry_after() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let endpoint = listener.local_addr().expect("addr").to_string();
    let options = NodeOptions {
        cell: "test-cell".into(),
        endpoint,
        vend_rate_per_second: 1,
        vend_burst: 3,
        ..Default::default()
    };
    let server =
        TestServer::start_with(KeyRing::ephemeral().expect("ring"), options, listener).await;
    let mut outcomes = Vec::new();
    for _ in 0..6 {
        outcomes.push(
            server
                .mint_raw(&server.owner_key, vec![read_cache("c")], 60, "")
                .await,
        );
    }
    assert!(
        outcomes[..3].iter().all(Result::is_ok),
        "the burst passes: {outcomes:?}"
    );
    let refused = outcomes
        .iter()
        .filter_map(|o| o.as_ref().err())
        .next()
        .expect("some call over the limit is refused");
    assert_eq!(refused.code(), Code::ResourceExhausted, "{refused:?}");
    assert!(refused.message().contains("retry in"), "{refused:?}");
    let retry_after = refused
        .metadata()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        .expect("retry-after metadata in seconds");
    assert!((1..=2).contains(&retry_after), "{retry_after}");
    // Another account is not affected.
    let (other, _) = server
        .authority
        .bootstrap("other", false)
        .await
        .expect("other account");
    server
        .mint_raw(&other, vec![read_cache("c")], 60, "")
        .await
        .expect("another account has its own budget");
}
