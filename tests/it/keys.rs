//! Role-bound API keys over gRPC: GenerateGlobalApiKey, ListGlobalApiKeys, DescribeApiKey,
//! ListApiKeys, RevokeGlobalApiKey and expiry.
//!
//! Every test talks to a real server over loopback. Negative tests first show that the same
//! call succeeds when only the one thing under test is changed back, so they fail for the
//! intended reason. Time moves only through the server's manual clock.

use crate::support::grpc::*;
use authcell::clock::Clock;
use authcell::proto::authcell::v1 as pb;
use authcell::proto::permission_rules as pr;
use authcell::verifier::LEEWAY_SECS;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use tonic::Code;

#[tokio::test]
async fn owner_key_is_allowed_to_read_a_cache() {
    let server = TestServer::start().await;
    let response = server
        .authorize(cache_check(
            &server.owner_key,
            pb::Action::CacheRead,
            "c",
            b"k",
        ))
        .await;
    assert!(response.allowed, "{response:?}");
    assert_eq!(response.account_id, ACCOUNT);
}

#[tokio::test]
async fn generated_key_is_a_v2_jwt_described_by_its_key_info() {
    let server = TestServer::start().await;
    let now = server.clock.now();
    let at = now + 3600;
    let response = generate(
        &server,
        &server.owner_key,
        "operator",
        "ci deploys",
        expires_at(at),
    )
    .await
    .expect("generate key");
    let info = response.key_info.expect("key_info");
    let key = response.api_key;

    let header = jwt_segment(&key, 0);
    assert_eq!(header["alg"], "EdDSA");
    assert!(header["kid"].is_string(), "{header}");
    let claims = claims_of(&key);
    assert_eq!(claims["t"], "g");
    assert_eq!(claims["jti"], info.key_id.as_str());
    assert_eq!(claims["sub"], ACCOUNT);
    assert_eq!(claims["role"], "operator");
    assert_eq!(claims["iat"], now);
    assert_eq!(claims["exp"], at);

    assert_eq!(info.account_id, ACCOUNT);
    assert_eq!(info.role_id, "operator");
    assert_eq!(info.description, "ci deploys");
    assert_eq!(info.issued_at_epoch_seconds, now);
    assert_eq!(info.expires_at_epoch_seconds, Some(at));

    let decision = server
        .authorize(cache_check(&key, pb::Action::CacheWrite, "c", b"k"))
        .await;
    assert!(decision.allowed, "{decision:?}");
    assert_eq!(decision.key_id, info.key_id);
    assert_eq!(decision.account_id, ACCOUNT);
    assert_eq!(decision.expires_at_epoch_seconds, Some(at));
}

#[tokio::test]
async fn key_that_never_expires_has_no_exp() {
    let server = TestServer::start().await;
    let response = generate(&server, &server.owner_key, "viewer", "dashboards", never())
        .await
        .expect("generate key");
    let info = response.key_info.expect("key_info");
    assert_eq!(info.expires_at_epoch_seconds, None);
    assert!(claims_of(&response.api_key).get("exp").is_none());
    let decision = server
        .authorize(cache_check(
            &response.api_key,
            pb::Action::CacheRead,
            "c",
            b"k",
        ))
        .await;
    assert!(decision.allowed, "{decision:?}");
    assert_eq!(decision.expires_at_epoch_seconds, None);
}

#[tokio::test]
async fn owner_mints_every_system_role_and_operator_mints_operator_and_viewer() {
    let server = TestServer::start().await;
    for role in ["owner", "operator", "viewer"] {
        let (key, info) = server.create_key(&server.owner_key, role).await;
        assert_eq!(info.role_id, role);
        assert_eq!(claims_of(&key)["role"], role);
    }
    let (operator, _) = server.create_key(&server.owner_key, "operator").await;
    for role in ["operator", "viewer"] {
        let (key, info) = server.create_key(&operator, role).await;
        assert_eq!(info.role_id, role);
        let decision = server
            .authorize(cache_check(&key, pb::Action::CacheRead, "c", b"k"))
            .await;
        assert!(decision.allowed, "{role}: {decision:?}");
    }
}

#[tokio::test]
async fn generate_key_without_expiry_is_invalid_argument() {
    let server = TestServer::start().await;
    generate(&server, &server.owner_key, "viewer", "ok", never())
        .await
        .expect("precondition: the same request with an expiry succeeds");
    let result = generate(&server, &server.owner_key, "viewer", "ok", None).await;
    assert_status(result, Code::InvalidArgument, &["expiry"]);
}

#[tokio::test]
async fn generate_key_expiring_in_the_past_is_invalid_argument() {
    let server = TestServer::start().await;
    let now = server.clock.now();
    generate(
        &server,
        &server.owner_key,
        "viewer",
        "ok",
        expires_at(now + 1),
    )
    .await
    .expect("precondition: a future expiration succeeds");
    for at in [now - 1, now] {
        let result = generate(&server, &server.owner_key, "viewer", "ok", expires_at(at)).await;
        assert_status(result, Code::InvalidArgument, &["expiration_epoch_seconds"]);
    }
}

#[tokio::test]
async fn generate_key_description_must_be_1_to_256_characters() {
    let server = TestServer::start().await;
    generate(
        &server,
        &server.owner_key,
        "viewer",
        &"d".repeat(256),
        never(),
    )
    .await
    .expect("precondition: a 256-character description is accepted");
    for description in [
        String::new(),
        "   ".into(),
        "d".repeat(257),
        "line\nbreak".into(),
    ] {
        let result = generate(&server, &server.owner_key, "viewer", &description, never()).await;
        assert_status(result, Code::InvalidArgument, &["description"]);
    }
}

#[tokio::test]
async fn generate_key_for_an_unknown_role_is_not_found() {
    let server = TestServer::start().await;
    generate(&server, &server.owner_key, "viewer", "ok", never())
        .await
        .expect("precondition: a known role succeeds");
    let result = generate(&server, &server.owner_key, "no-such-role", "ok", never()).await;
    assert_status(result, Code::NotFound, &["role_id", "no-such-role"]);
    let result = generate(&server, &server.owner_key, "", "ok", never()).await;
    assert_status(result, Code::InvalidArgument, &["role_id"]);
}

#[tokio::test]
async fn viewer_cannot_generate_keys() {
    let server = TestServer::start().await;
    let (viewer, _) = server.create_key(&server.owner_key, "viewer").await;
    list_global_keys(&server, &viewer)
        .await
        .expect("precondition: the viewer key authenticates");
    let result = generate(&server, &viewer, "viewer", "ok", never()).await;
    assert_status(result, Code::PermissionDenied, &["AuthWrite"]);
}

/// One order for every RPC (server/requests.rs): authenticate, then the request's shape, then
/// permissions. Each step is shown to be reached only once the one before it passes.
#[tokio::test]
async fn a_request_is_authenticated_then_checked_for_shape_then_for_permission() {
    let server = TestServer::start().await;
    let (viewer, _) = server.create_key(&server.owner_key, "viewer").await;
    let malformed = "";
    let result = generate(&server, "not-a-key", "viewer", malformed, never()).await;
    assert_status(result, Code::Unauthenticated, &[]);
    let result = generate(&server, &viewer, "viewer", malformed, never()).await;
    assert_status(result, Code::InvalidArgument, &["description"]);
    let result = generate(&server, &viewer, "viewer", "ok", never()).await;
    assert_status(result, Code::PermissionDenied, &["AuthWrite"]);
}

#[tokio::test]
async fn operator_cannot_mint_an_owner_key() {
    let server = TestServer::start().await;
    let (operator, _) = server.create_key(&server.owner_key, "operator").await;
    generate(&server, &operator, "operator", "ok", never())
        .await
        .expect("precondition: the operator may mint keys");
    let result = generate(&server, &operator, "owner", "escalate", never()).await;
    assert_status(result, Code::PermissionDenied, &["owner"]);
}

#[tokio::test]
async fn operator_cannot_mint_a_key_for_a_custom_role_broader_than_itself() {
    use pr::AccountManagementPermissions::*;
    let server = TestServer::start().await;
    let narrow = owner_creates_role(&server, "narrow", explicit(vec![cache_read_on("a")])).await;
    let broad = owner_creates_role(
        &server,
        "broad",
        explicit(vec![account_rule(&[AccountWrite])]),
    )
    .await;
    let (operator, _) = server.create_key(&server.owner_key, "operator").await;
    generate(&server, &operator, &narrow, "ok", never())
        .await
        .expect("precondition: the operator may mint a key for a narrower custom role");
    let result = generate(&server, &operator, &broad, "escalate", never()).await;
    assert_status(result, Code::PermissionDenied, &[]);
}

#[tokio::test]
async fn list_global_api_keys_lists_live_keys_of_the_account_and_never_a_secret() {
    let server = TestServer::start().await;
    let (operator, operator_info) = server.create_key(&server.owner_key, "operator").await;
    let (viewer, viewer_info) = server.create_key(&operator, "viewer").await;
    let (revoked, revoked_info) = server.create_key(&server.owner_key, "viewer").await;
    let (other_owner, other_record) = server
        .authority
        .bootstrap("other", false)
        .await
        .expect("bootstrap other account");
    let before = list_global_keys(&server, &viewer)
        .await
        .expect("viewer lists keys");
    assert!(before.iter().any(|k| k.key_id == revoked_info.key_id));
    revoke(&server, &server.owner_key, &revoked_info.key_id)
        .await
        .expect("revoke");

    let listed = list_global_keys(&server, &viewer)
        .await
        .expect("viewer lists keys");
    let mut ids: Vec<&str> = listed.iter().map(|k| k.key_id.as_str()).collect();
    ids.sort_unstable();
    let owner_id = key_id_of(&server.owner_key);
    let mut expected = vec![
        owner_id.as_str(),
        operator_info.key_id.as_str(),
        viewer_info.key_id.as_str(),
    ];
    expected.sort_unstable();
    assert_eq!(ids, expected);
    assert!(!ids.contains(&other_record.key_id.as_str()));

    let secrets = [
        &server.owner_key,
        &operator,
        &viewer,
        &revoked,
        &other_owner,
    ];
    for key in &listed {
        assert_eq!(key.account_id, ACCOUNT);
        for field in [&key.key_id, &key.account_id, &key.description, &key.role_id] {
            assert!(!field.contains('.'), "looks like a JWT: {field:?}");
            assert!(!secrets.contains(&field), "a listing returned a key");
        }
    }
    let by_id = |id: &str| listed.iter().find(|k| k.key_id == id).expect("listed");
    assert_eq!(by_id(&operator_info.key_id), &operator_info);
    assert_eq!(by_id(&viewer_info.key_id), &viewer_info);
}

#[tokio::test]
async fn describe_api_key_reports_creator_kind_and_status() {
    let server = TestServer::start().await;
    let owner_id = key_id_of(&server.owner_key);
    let (operator, operator_info) = server.create_key(&server.owner_key, "operator").await;
    let (viewer, viewer_info) = server.create_key(&operator, "viewer").await;

    let owner = describe(&server, &viewer, &owner_id)
        .await
        .expect("viewer describes owner key");
    assert_eq!(owner.created_by, "bootstrap");
    assert_eq!(owner.role_id, "owner");
    assert_eq!(owner.kind(), pb::KeyKind::Role);
    assert_eq!(owner.status(), pb::KeyStatus::Active);
    assert_eq!(owner.account_id, ACCOUNT);

    let described = describe(&server, &viewer, &operator_info.key_id)
        .await
        .expect("describe");
    assert_eq!(described.created_by, owner_id);
    assert_eq!(described.role_id, "operator");
    assert_eq!(described.description, operator_info.description);
    assert_eq!(
        described.issued_at_epoch_seconds,
        operator_info.issued_at_epoch_seconds
    );
    assert_eq!(described.expires_at_epoch_seconds, None);
    assert_eq!(described.revoked_at_epoch_seconds, None);
    assert_eq!(described.kind(), pb::KeyKind::Role);
    assert_eq!(described.status(), pb::KeyStatus::Active);

    let by_operator = describe(&server, &viewer, &viewer_info.key_id)
        .await
        .expect("describe");
    assert_eq!(by_operator.created_by, operator_info.key_id);

    server.clock.advance(7);
    revoke(&server, &server.owner_key, &operator_info.key_id)
        .await
        .expect("revoke");
    let revoked = describe(&server, &viewer, &operator_info.key_id)
        .await
        .expect("describe");
    assert_eq!(revoked.status(), pb::KeyStatus::Revoked);
    assert_eq!(revoked.revoked_at_epoch_seconds, Some(server.clock.now()));
}

#[tokio::test]
async fn describe_api_key_reports_expired_once_the_clock_passes_expiry() {
    let server = TestServer::start().await;
    let at = server.clock.now() + 10;
    let response = generate(
        &server,
        &server.owner_key,
        "viewer",
        "short",
        expires_at(at),
    )
    .await
    .expect("generate key");
    let key_id = response.key_info.expect("key_info").key_id;
    let active = describe(&server, &server.owner_key, &key_id)
        .await
        .expect("describe");
    assert_eq!(active.status(), pb::KeyStatus::Active);
    server.clock.advance(10);
    let expired = describe(&server, &server.owner_key, &key_id)
        .await
        .expect("describe");
    assert_eq!(expired.status(), pb::KeyStatus::Expired);
    assert_eq!(expired.expires_at_epoch_seconds, Some(at));
}

#[tokio::test]
async fn describe_api_key_refuses_malformed_and_unknown_ids() {
    let server = TestServer::start().await;
    describe(&server, &server.owner_key, &key_id_of(&server.owner_key))
        .await
        .expect("precondition: describing a real key id succeeds");
    for malformed in ["", "not-a-uuid", "../../etc/passwd"] {
        let result = describe(&server, &server.owner_key, malformed).await;
        assert_status(result, Code::InvalidArgument, &["key_id"]);
    }
    let unknown = uuid::Uuid::new_v4().to_string();
    let result = describe(&server, &server.owner_key, &unknown).await;
    assert_status(result, Code::NotFound, &[&unknown]);
}

#[tokio::test]
async fn list_api_keys_pages_through_every_key_once_in_key_id_order() {
    let server = TestServer::start().await;
    let mut all_ids = vec![key_id_of(&server.owner_key)];
    all_ids.extend(mint_keys(&server, 25).await);
    let mut sorted = all_ids.clone();
    sorted.sort();
    assert_eq!(all_ids, sorted, "key ids are in creation order");

    let mut pages = Vec::new();
    let mut token = String::new();
    loop {
        let page = list_page(&server, &server.owner_key, 10, &token, false)
            .await
            .expect("list page");
        pages.push(
            page.keys
                .iter()
                .map(|k| k.key_id.clone())
                .collect::<Vec<_>>(),
        );
        if page.next_token.is_empty() {
            break;
        }
        assert!(pages.len() < 10, "paging does not end");
        token = page.next_token;
    }
    let sizes: Vec<usize> = pages.iter().map(Vec::len).collect();
    assert_eq!(sizes, [10, 10, 6]);
    assert_eq!(pages.concat(), all_ids);
}

#[tokio::test]
async fn list_api_keys_limit_zero_means_a_page_of_100() {
    let server = TestServer::start().await;
    mint_keys(&server, 100).await;
    let first = list_page(&server, &server.owner_key, 0, "", false)
        .await
        .expect("list");
    assert_eq!(first.keys.len(), 100);
    assert!(!first.next_token.is_empty());
    let rest = list_page(&server, &server.owner_key, 0, &first.next_token, false)
        .await
        .expect("list");
    assert_eq!(rest.keys.len(), 1);
    assert!(rest.next_token.is_empty());
}

#[tokio::test]
async fn list_api_keys_refuses_a_limit_above_100_and_a_garbage_next_token() {
    let server = TestServer::start().await;
    list_page(&server, &server.owner_key, 100, "", false)
        .await
        .expect("precondition: limit 100 is accepted");
    let result = list_page(&server, &server.owner_key, 101, "", false).await;
    assert_status(result, Code::InvalidArgument, &["limit"]);
    let forged = URL_SAFE_NO_PAD.encode("k1:not-a-key-id");
    for token in ["garbage!", "Z2FyYmFnZQ", forged.as_str()] {
        let result = list_page(&server, &server.owner_key, 10, token, false).await;
        assert_status(result, Code::InvalidArgument, &["next_token"]);
    }
}

#[tokio::test]
async fn list_api_keys_include_inactive_shows_revoked_and_expired_keys() {
    let server = TestServer::start().await;
    let owner_id = key_id_of(&server.owner_key);
    let (_, active) = server.create_key(&server.owner_key, "viewer").await;
    let (_, revoked) = server.create_key(&server.owner_key, "viewer").await;
    let expiring = generate(
        &server,
        &server.owner_key,
        "viewer",
        "short",
        expires_at(server.clock.now() + 5),
    )
    .await
    .expect("generate key")
    .key_info
    .expect("key_info");
    revoke(&server, &server.owner_key, &revoked.key_id)
        .await
        .expect("revoke");
    server.clock.advance(5);

    let live = list_page(&server, &server.owner_key, 0, "", false)
        .await
        .expect("list");
    let ids: Vec<&str> = live.keys.iter().map(|k| k.key_id.as_str()).collect();
    assert_eq!(ids, [owner_id.as_str(), active.key_id.as_str()]);

    let everything = list_page(&server, &server.owner_key, 0, "", true)
        .await
        .expect("list");
    let statuses: Vec<(&str, pb::KeyStatus)> = everything
        .keys
        .iter()
        .map(|k| (k.key_id.as_str(), k.status()))
        .collect();
    assert_eq!(
        statuses,
        [
            (owner_id.as_str(), pb::KeyStatus::Active),
            (active.key_id.as_str(), pb::KeyStatus::Active),
            (revoked.key_id.as_str(), pb::KeyStatus::Revoked),
            (expiring.key_id.as_str(), pb::KeyStatus::Expired),
        ]
    );
}

#[tokio::test]
async fn revoked_key_is_refused_on_its_very_next_call_on_any_rpc() {
    let server = TestServer::start().await;
    for rpc in [
        Rpc::ListGlobalApiKeys,
        Rpc::ListRoles,
        Rpc::GenerateGlobalApiKey,
    ] {
        let (key, info) = server.create_key(&server.owner_key, "operator").await;
        call_as(&server, rpc, &key)
            .await
            .unwrap_or_else(|e| panic!("precondition: {rpc:?} works before revocation: {e:?}"));
        revoke(&server, &server.owner_key, &info.key_id)
            .await
            .expect("revoke");
        let status = assert_status(
            call_as(&server, rpc, &key).await,
            Code::Unauthenticated,
            &["revoked"],
        );
        assert!(!status.message().contains(&key));

        let decision = server
            .authorize(cache_check(&key, pb::Action::CacheRead, "c", b"k"))
            .await;
        assert!(!decision.allowed, "{decision:?}");
        assert_eq!(decision.reason(), pb::Reason::Revoked);
    }
}

#[tokio::test]
async fn operator_cannot_revoke_the_owner_key() {
    let server = TestServer::start().await;
    let (operator, _) = server.create_key(&server.owner_key, "operator").await;
    let (_, viewer) = server.create_key(&server.owner_key, "viewer").await;
    revoke(&server, &operator, &viewer.key_id)
        .await
        .expect("precondition: the operator may revoke a viewer key");
    let result = revoke(&server, &operator, &key_id_of(&server.owner_key)).await;
    assert_status(result, Code::PermissionDenied, &[]);
    list_roles(&server, &server.owner_key)
        .await
        .expect("the owner key still works");
}

#[tokio::test]
async fn viewer_cannot_revoke_keys() {
    let server = TestServer::start().await;
    let (viewer, _) = server.create_key(&server.owner_key, "viewer").await;
    let (_, target) = server.create_key(&server.owner_key, "viewer").await;
    describe(&server, &viewer, &target.key_id)
        .await
        .expect("precondition: the viewer key authenticates and sees the target");
    let result = revoke(&server, &viewer, &target.key_id).await;
    assert_status(result, Code::PermissionDenied, &["AuthWrite"]);
}

#[tokio::test]
async fn revoking_an_unknown_or_malformed_key_id_is_refused() {
    let server = TestServer::start().await;
    let (_, real) = server.create_key(&server.owner_key, "viewer").await;
    revoke(&server, &server.owner_key, &real.key_id)
        .await
        .expect("precondition: revoking a real key succeeds");
    let unknown = uuid::Uuid::new_v4().to_string();
    assert_status(
        revoke(&server, &server.owner_key, &unknown).await,
        Code::NotFound,
        &[&unknown],
    );
    assert_status(
        revoke(&server, &server.owner_key, "nope").await,
        Code::InvalidArgument,
        &["key_id"],
    );
}

#[tokio::test]
async fn revoking_twice_is_ok_and_keeps_the_first_revocation_time() {
    let server = TestServer::start().await;
    let (_, info) = server.create_key(&server.owner_key, "viewer").await;
    revoke(&server, &server.owner_key, &info.key_id)
        .await
        .expect("first revoke");
    let first = server.clock.now();
    server.clock.advance(30);
    revoke(&server, &server.owner_key, &info.key_id)
        .await
        .expect("second revoke");
    let described = describe(&server, &server.owner_key, &info.key_id)
        .await
        .expect("describe");
    assert_eq!(described.status(), pb::KeyStatus::Revoked);
    assert_eq!(described.revoked_at_epoch_seconds, Some(first));
}

#[tokio::test]
async fn expired_key_is_refused_once_the_leeway_has_passed() {
    let server = TestServer::start().await;
    let at = server.clock.now() + 3;
    let response = generate(
        &server,
        &server.owner_key,
        "operator",
        "short",
        expires_at(at),
    )
    .await
    .expect("generate key");
    let key = response.api_key;
    server.clock.advance(3 + LEEWAY_SECS - 1);
    list_roles(&server, &key)
        .await
        .expect("precondition: still accepted within the leeway");

    server.clock.advance(2);
    let status = assert_status(
        list_roles(&server, &key).await,
        Code::Unauthenticated,
        &["expired"],
    );
    assert!(!status.message().contains(&key));
    let decision = server
        .authorize(cache_check(&key, pb::Action::CacheRead, "c", b"k"))
        .await;
    assert!(!decision.allowed, "{decision:?}");
    assert_eq!(decision.reason(), pb::Reason::Expired);
}
