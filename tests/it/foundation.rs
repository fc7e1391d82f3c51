//! Foundation: keys, roles, Authorize, errors, over gRPC.
//!
//! Every test talks to a real server over loopback. Negative tests first show that the same
//! call succeeds when only the one thing under test is changed back, so they fail for the
//! intended reason. Time moves only through the server's manual clock.

use crate::support::*;
use authcell::clock::Clock;
use authcell::credential::{self, Claims};
use authcell::keyring::KeyRing;
use authcell::proto::authcell::v1 as pb;
use authcell::proto::global_admin as ga;
use authcell::proto::permission_rules as pr;
use authcell::verifier::LEEWAY_SECS;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ed25519_dalek::pkcs8::spki::der::pem::LineEnding;
use ed25519_dalek::pkcs8::{EncodePrivateKey, EncodePublicKey};
use tonic::{Code, Status};

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

type Expiry = ga::generate_global_api_key_request::Expiry;

fn never() -> Option<Expiry> {
    Some(Expiry::Never(ga::generate_global_api_key_request::Never {}))
}

fn expires_at(at: u64) -> Option<Expiry> {
    Some(Expiry::Expires(
        ga::generate_global_api_key_request::Expires {
            expiration_epoch_seconds: at,
        },
    ))
}

/// Asserts `result` failed with `code` and a message mentioning every one of `words`.
#[track_caller]
fn assert_status<T: std::fmt::Debug>(
    result: Result<T, Status>,
    code: Code,
    words: &[&str],
) -> Status {
    let status = match result {
        Ok(value) => panic!("expected {code:?} mentioning {words:?}, got Ok({value:?})"),
        Err(status) => status,
    };
    assert_eq!(status.code(), code, "{status:?}");
    for word in words {
        assert!(
            status.message().contains(word),
            "message {:?} should mention {word:?}",
            status.message()
        );
    }
    status
}

/// Decodes segment `index` (0 header, 1 payload) of a compact JWS as JSON.
fn jwt_segment(token: &str, index: usize) -> serde_json::Value {
    let part = token
        .split('.')
        .nth(index)
        .expect("a JWT has three segments");
    let bytes = URL_SAFE_NO_PAD.decode(part).expect("segment is base64url");
    serde_json::from_slice(&bytes).expect("segment is JSON")
}

fn claims_of(token: &str) -> serde_json::Value {
    jwt_segment(token, 1)
}

fn key_id_of(token: &str) -> String {
    claims_of(token)["jti"]
        .as_str()
        .expect("jti claim is a string")
        .to_owned()
}

async fn generate(
    server: &TestServer,
    caller: &str,
    role_id: &str,
    description: &str,
    expiry: Option<Expiry>,
) -> Result<ga::GenerateGlobalApiKeyResponse, Status> {
    let request = ga::GenerateGlobalApiKeyRequest {
        role_id: role_id.into(),
        description: description.into(),
        expiry,
    };
    server
        .global_admin()
        .await
        .generate_global_api_key(with_key(request, caller))
        .await
        .map(|r| r.into_inner())
}

/// Mints `n` operator keys with the owner key over one connection; returns their key ids.
async fn mint_keys(server: &TestServer, n: usize) -> Vec<String> {
    let mut client = server.global_admin().await;
    let mut ids = Vec::with_capacity(n);
    for i in 0..n {
        let request = ga::GenerateGlobalApiKeyRequest {
            role_id: "operator".into(),
            description: format!("bulk key {i}"),
            expiry: never(),
        };
        let response = client
            .generate_global_api_key(with_key(request, &server.owner_key))
            .await
            .expect("generate key")
            .into_inner();
        ids.push(response.key_info.expect("key_info").key_id);
    }
    ids
}

async fn list_global_keys(
    server: &TestServer,
    caller: &str,
) -> Result<Vec<ga::GlobalApiKey>, Status> {
    let mut stream = server
        .global_admin()
        .await
        .list_global_api_keys(with_key(ga::ListGlobalApiKeysRequest {}, caller))
        .await?
        .into_inner();
    let mut keys = Vec::new();
    while let Some(key) = stream.message().await? {
        keys.push(key);
    }
    Ok(keys)
}

async fn revoke(server: &TestServer, caller: &str, key_id: &str) -> Result<(), Status> {
    server
        .global_admin()
        .await
        .revoke_global_api_key(with_key(
            ga::RevokeGlobalApiKeyRequest {
                key_id: key_id.into(),
            },
            caller,
        ))
        .await
        .map(|_| ())
}

async fn describe(
    server: &TestServer,
    caller: &str,
    key_id: &str,
) -> Result<pb::ApiKeyInfo, Status> {
    let response = server
        .admin()
        .await
        .describe_api_key(with_key(
            pb::DescribeApiKeyRequest {
                key_id: key_id.into(),
            },
            caller,
        ))
        .await?
        .into_inner();
    Ok(response.key.expect("describe returns the key"))
}

async fn list_page(
    server: &TestServer,
    caller: &str,
    limit: u32,
    next_token: &str,
    include_inactive: bool,
) -> Result<pb::ListApiKeysResponse, Status> {
    let request = pb::ListApiKeysRequest {
        limit,
        next_token: next_token.into(),
        include_inactive,
    };
    server
        .admin()
        .await
        .list_api_keys(with_key(request, caller))
        .await
        .map(|r| r.into_inner())
}

async fn list_roles(server: &TestServer, caller: &str) -> Result<Vec<pb::Role>, Status> {
    server
        .admin()
        .await
        .list_roles(with_key(pb::ListRolesRequest {}, caller))
        .await
        .map(|r| r.into_inner().roles)
}

async fn list_roles_for_account(
    server: &TestServer,
    caller: &str,
) -> Result<Vec<ga::AccountRole>, Status> {
    server
        .global_admin()
        .await
        .list_roles_for_account(with_key(ga::ListRolesForAccountRequest {}, caller))
        .await
        .map(|r| r.into_inner().roles)
}

async fn create_role(
    server: &TestServer,
    caller: &str,
    name: &str,
    permissions: Option<pr::PermissionSet>,
) -> Result<pb::Role, Status> {
    let request = pb::CreateRoleRequest {
        name: name.into(),
        permissions,
        description: format!("{name} role"),
    };
    let response = server
        .admin()
        .await
        .create_role(with_key(request, caller))
        .await?
        .into_inner();
    Ok(response.role.expect("create returns the role"))
}

/// Creates a role with the owner key; returns its id.
async fn owner_creates_role(
    server: &TestServer,
    name: &str,
    permissions: pr::PermissionSet,
) -> String {
    create_role(server, &server.owner_key, name, Some(permissions))
        .await
        .expect("owner creates role")
        .role_id
}

async fn update_role_permissions(
    server: &TestServer,
    caller: &str,
    role_id: &str,
    permissions: pr::PermissionSet,
) -> Result<pb::Role, Status> {
    let request = pb::UpdateRoleRequest {
        role_id: role_id.into(),
        name: None,
        permissions: Some(permissions),
        description: None,
    };
    let response = server
        .admin()
        .await
        .update_role(with_key(request, caller))
        .await?
        .into_inner();
    Ok(response.role.expect("update returns the role"))
}

async fn delete_role(server: &TestServer, caller: &str, role_id: &str) -> Result<(), Status> {
    server
        .admin()
        .await
        .delete_role(with_key(
            pb::DeleteRoleRequest {
                role_id: role_id.into(),
            },
            caller,
        ))
        .await
        .map(|_| ())
}

async fn try_authorize(
    server: &TestServer,
    request: pb::AuthorizeRequest,
) -> Result<pb::AuthorizeResponse, Status> {
    server
        .verifier()
        .await
        .authorize(request)
        .await
        .map(|r| r.into_inner())
}

/// A cache read check from a given peer address.
fn read_from(credential: &str, cache: &str, peer: &str) -> pb::AuthorizeRequest {
    pb::AuthorizeRequest {
        peer_address: peer.into(),
        ..cache_check(credential, pb::Action::CacheRead, cache, b"k")
    }
}

// Permission sets, in the form the server lists them back (permissions in read, write, list
// order; auth and resource rules with their "all" selector set).

fn all() -> pr::All {
    pr::All {}
}

fn explicit(rules: Vec<pr::rule::Kind>) -> pr::PermissionSet {
    raw_explicit(
        rules
            .into_iter()
            .map(|kind| pr::Rule { kind: Some(kind) })
            .collect(),
    )
}

fn raw_explicit(rules: Vec<pr::Rule>) -> pr::PermissionSet {
    pr::PermissionSet {
        kind: Some(pr::permission_set::Kind::Explicit(
            pr::ExplicitPermissions { rules },
        )),
        conditions: Vec::new(),
    }
}

type Range = pr::ip_filter::cidr_range::Range;

fn v4(range: &str) -> Range {
    Range::Ipv4(range.into())
}

fn v6(range: &str) -> Range {
    Range::Ipv6(range.into())
}

fn ip_filter(ranges: Vec<Range>) -> pr::Condition {
    pr::Condition {
        condition: Some(pr::condition::Condition::IpFilter(pr::IpFilter {
            allowed_cidr_ranges: ranges
                .into_iter()
                .map(|range| pr::ip_filter::CidrRange { range: Some(range) })
                .collect(),
        })),
    }
}

fn only_from(mut set: pr::PermissionSet, ranges: Vec<Range>) -> pr::PermissionSet {
    set.conditions.push(ip_filter(ranges));
    set
}

fn cache_named(name: &str) -> pr::rule::cache_rule::Cache {
    pr::rule::cache_rule::Cache::CacheSelector(pr::CacheSelector {
        kind: Some(pr::cache_selector::Kind::CacheName(name.into())),
    })
}

/// A cache rule over all items; `cache` None selects every cache.
fn cache_rule(permissions: &[pr::CacheApiPermissions], cache: Option<&str>) -> pr::rule::CacheRule {
    pr::rule::CacheRule {
        permissions: permissions.iter().map(|p| *p as i32).collect(),
        cache: Some(cache.map_or(pr::rule::cache_rule::Cache::AllCaches(all()), cache_named)),
        cache_item: Some(pr::rule::cache_rule::CacheItem::AllItems(all())),
    }
}

fn cache_read_on(cache: &str) -> pr::rule::Kind {
    pr::rule::Kind::CacheRule(cache_rule(
        &[pr::CacheApiPermissions::CacheRead],
        Some(cache),
    ))
}

fn auth_rule(permissions: &[pr::AuthManagementPermissions]) -> pr::rule::Kind {
    pr::rule::Kind::AuthManagementRule(pr::rule::AuthManagementRule {
        permissions: permissions.iter().map(|p| *p as i32).collect(),
        auth_items: Some(pr::rule::auth_management_rule::AuthItems::AllItems(all())),
    })
}

fn auth_all() -> pr::rule::Kind {
    use pr::AuthManagementPermissions::*;
    auth_rule(&[AuthRead, AuthWrite, AuthList])
}

fn account_rule(permissions: &[pr::AccountManagementPermissions]) -> pr::rule::Kind {
    pr::rule::Kind::AccountManagementRule(pr::rule::AccountManagementRule {
        permissions: permissions.iter().map(|p| *p as i32).collect(),
    })
}

/// A server whose Ed25519 signing key the test knows, so it can forge tokens with the public key.
async fn server_with_known_key() -> (TestServer, ed25519_dalek::VerifyingKey) {
    let signing = ed25519_dalek::SigningKey::generate(&mut rand_core::OsRng);
    let pem = signing
        .to_pkcs8_pem(LineEnding::LF)
        .expect("encode private key");
    let ring = KeyRing::from_pem("test signing key", &pem).expect("key ring from pem");
    (
        TestServer::start_with_keyring(ring).await,
        signing.verifying_key(),
    )
}

/// Replaces the signature's last character with another canonical base64url character (an
/// Ed25519 signature's last character is one of A, Q, g, w), so the token still decodes but its
/// signature no longer matches.
fn tamper_last_char(token: &str) -> String {
    let (head, last) = token.split_at(token.len() - 1);
    let swapped = if last == "A" { "Q" } else { "A" };
    format!("{head}{swapped}")
}

/// Credentials that must not authenticate, each with a word its refusal must mention.
/// `real` is a genuine key of the server whose signing key's public half is `public`.
fn bad_credentials(
    real: &str,
    public: &ed25519_dalek::VerifyingKey,
) -> Vec<(&'static str, String, &'static str)> {
    let header = jwt_segment(real, 0);
    let kid = header["kid"]
        .as_str()
        .expect("real key has a kid")
        .to_owned();
    let payload = real.split('.').nth(1).expect("payload segment");
    let none_header =
        URL_SAFE_NO_PAD.encode(serde_json::json!({ "alg": "none", "kid": kid }).to_string());
    let claims: Claims = serde_json::from_value(claims_of(real)).expect("real claims decode");
    let mut hs256 = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    hs256.kid = Some(kid);
    let hmac = |secret: &[u8]| {
        jsonwebtoken::encode(
            &hs256,
            &claims,
            &jsonwebtoken::EncodingKey::from_secret(secret),
        )
        .expect("sign HS256")
    };
    let spki = public
        .to_public_key_pem(LineEnding::LF)
        .expect("encode public key");
    let foreign_ring = KeyRing::ephemeral().expect("foreign key ring");
    let (head, rest) = real.split_once('.').expect("header segment");
    let signature = rest.split_once('.').expect("signature segment").1;
    let mut escalated = claims_of(real);
    escalated["sub"] = "someone-else".into();
    let escalated = URL_SAFE_NO_PAD.encode(escalated.to_string());
    vec![
        ("empty", String::new(), "missing"),
        ("not a JWT", "not-a-jwt".into(), "not a JWT"),
        ("alg none", format!("{none_header}.{payload}."), "algorithm"),
        (
            "HS256 keyed with the raw public key",
            hmac(public.as_bytes()),
            "algorithm",
        ),
        (
            "HS256 keyed with the public key PEM",
            hmac(spki.as_bytes()),
            "algorithm",
        ),
        ("tampered signature", tamper_last_char(real), "signature"),
        (
            "payload changed under the original signature",
            format!("{head}.{escalated}.{signature}"),
            "signature",
        ),
        (
            "unknown kid",
            credential::sign(&foreign_ring, &claims).expect("sign with a foreign key"),
            "unknown key id",
        ),
        ("9000 bytes", "A".repeat(9000), "larger than"),
    ]
}

// ---------------------------------------------------------------------------------------------
// 1. GenerateGlobalApiKey
// ---------------------------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------------------------
// 2. ListGlobalApiKeys
// ---------------------------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------------------------
// 3. authcell.v1.Admin DescribeApiKey / ListApiKeys
// ---------------------------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------------------------
// 4. RevokeGlobalApiKey
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Copy, Debug)]
enum Rpc {
    ListGlobalApiKeys,
    ListRoles,
    GenerateGlobalApiKey,
}

async fn call_as(server: &TestServer, rpc: Rpc, key: &str) -> Result<(), Status> {
    match rpc {
        Rpc::ListGlobalApiKeys => list_global_keys(server, key).await.map(|_| ()),
        Rpc::ListRoles => list_roles(server, key).await.map(|_| ()),
        Rpc::GenerateGlobalApiKey => generate(server, key, "viewer", "ok", never())
            .await
            .map(|_| ()),
    }
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

// ---------------------------------------------------------------------------------------------
// 5. Expiry
// ---------------------------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------------------------
// 6. Cross-account isolation
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn another_account_gets_not_found_for_dev_keys() {
    let server = TestServer::start().await;
    let (_, dev_key) = server.create_key(&server.owner_key, "viewer").await;
    let (other, _) = server
        .authority
        .bootstrap("other", false)
        .await
        .expect("bootstrap other account");
    describe(&server, &server.owner_key, &dev_key.key_id)
        .await
        .expect("precondition: the dev owner sees the key");
    describe(&server, &other, &key_id_of(&other))
        .await
        .expect("precondition: the other owner may describe keys of its own account");
    assert_status(
        describe(&server, &other, &dev_key.key_id).await,
        Code::NotFound,
        &[],
    );
    assert_status(
        revoke(&server, &other, &dev_key.key_id).await,
        Code::NotFound,
        &[],
    );
    let still = describe(&server, &server.owner_key, &dev_key.key_id)
        .await
        .expect("describe");
    assert_eq!(still.status(), pb::KeyStatus::Active);
}

#[tokio::test]
async fn another_account_does_not_see_dev_keys_or_roles() {
    let server = TestServer::start().await;
    server.create_key(&server.owner_key, "viewer").await;
    let dev_role =
        owner_creates_role(&server, "dev-readers", explicit(vec![cache_read_on("a")])).await;
    let (other, other_record) = server
        .authority
        .bootstrap("other", false)
        .await
        .expect("bootstrap other account");

    let global = list_global_keys(&server, &other).await.expect("list");
    assert_eq!(
        global.iter().map(|k| k.key_id.as_str()).collect::<Vec<_>>(),
        [other_record.key_id.as_str()]
    );
    let page = list_page(&server, &other, 0, "", true).await.expect("list");
    assert_eq!(
        page.keys
            .iter()
            .map(|k| k.key_id.as_str())
            .collect::<Vec<_>>(),
        [other_record.key_id.as_str()]
    );

    let dev_roles = list_roles(&server, &server.owner_key)
        .await
        .expect("list roles");
    assert!(
        dev_roles.iter().any(|r| r.role_id == dev_role),
        "precondition"
    );
    let roles = list_roles(&server, &other).await.expect("list roles");
    let ids: Vec<&str> = roles.iter().map(|r| r.role_id.as_str()).collect();
    assert_eq!(ids, ["owner", "operator", "viewer"]);
    let account_roles = list_roles_for_account(&server, &other)
        .await
        .expect("list roles");
    let ids: Vec<&str> = account_roles.iter().map(|r| r.role_id.as_str()).collect();
    assert_eq!(ids, ["owner", "operator", "viewer"]);
}

#[tokio::test]
async fn another_account_cannot_use_change_or_delete_dev_roles() {
    let server = TestServer::start().await;
    let dev_role =
        owner_creates_role(&server, "dev-readers", explicit(vec![cache_read_on("a")])).await;
    let (other, _) = server
        .authority
        .bootstrap("other", false)
        .await
        .expect("bootstrap other account");
    update_role_permissions(
        &server,
        &server.owner_key,
        &dev_role,
        explicit(vec![cache_read_on("a")]),
    )
    .await
    .expect("precondition: the dev owner can update the role");

    let result = update_role_permissions(
        &server,
        &other,
        &dev_role,
        explicit(vec![cache_read_on("x")]),
    )
    .await;
    assert_status(result, Code::NotFound, &["role_id"]);
    assert_status(
        delete_role(&server, &other, &dev_role).await,
        Code::NotFound,
        &["role_id"],
    );
    let result = generate(&server, &other, &dev_role, "borrow", never()).await;
    assert_status(result, Code::NotFound, &["role_id"]);

    let roles = list_roles(&server, &server.owner_key)
        .await
        .expect("list roles");
    let role = roles
        .iter()
        .find(|r| r.role_id == dev_role)
        .expect("dev role still exists");
    assert_eq!(role.permissions, Some(explicit(vec![cache_read_on("a")])));
}

// ---------------------------------------------------------------------------------------------
// 7. Roles
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn role_listings_include_system_roles_and_custom_roles_with_their_permissions() {
    let server = TestServer::start().await;
    let permissions = explicit(vec![cache_read_on("a")]);
    let custom = owner_creates_role(&server, "readers", permissions.clone()).await;
    let (viewer, _) = server.create_key(&server.owner_key, "viewer").await;

    let roles = list_roles(&server, &viewer)
        .await
        .expect("viewer lists roles");
    let kinds: Vec<(&str, &str, pb::RoleKind)> = roles
        .iter()
        .map(|r| (r.role_id.as_str(), r.name.as_str(), r.kind()))
        .collect();
    assert_eq!(
        kinds,
        [
            ("owner", "Owner", pb::RoleKind::System),
            ("operator", "Operator", pb::RoleKind::System),
            ("viewer", "Viewer", pb::RoleKind::System),
            (custom.as_str(), "readers", pb::RoleKind::Custom),
        ]
    );
    let owner_set = roles[0].permissions.as_ref().expect("owner permissions");
    assert!(matches!(
        owner_set.kind,
        Some(pr::permission_set::Kind::SuperUser(_))
    ));
    for system in &roles[1..3] {
        let set = system.permissions.as_ref().expect("system permissions");
        assert!(
            matches!(set.kind, Some(pr::permission_set::Kind::Explicit(_))),
            "{system:?}"
        );
    }
    assert_eq!(roles[3].permissions, Some(permissions.clone()));

    let account_roles = list_roles_for_account(&server, &viewer)
        .await
        .expect("list roles");
    let types: Vec<(&str, ga::RoleType)> = account_roles
        .iter()
        .map(|r| (r.role_id.as_str(), r.role_type()))
        .collect();
    assert_eq!(
        types,
        [
            ("owner", ga::RoleType::System),
            ("operator", ga::RoleType::System),
            ("viewer", ga::RoleType::System),
            (custom.as_str(), ga::RoleType::Custom),
        ]
    );
    assert_eq!(account_roles[3].role_name, "readers");
    assert_eq!(account_roles[3].permissions, Some(permissions));
    assert_eq!(account_roles[1].permissions, roles[1].permissions);
}

#[tokio::test]
async fn create_role_refuses_a_duplicate_name() {
    let server = TestServer::start().await;
    owner_creates_role(&server, "readers", explicit(vec![cache_read_on("a")])).await;
    create_role(
        &server,
        &server.owner_key,
        "writers",
        Some(explicit(vec![cache_read_on("b")])),
    )
    .await
    .expect("precondition: the same request under a new name succeeds");
    let result = create_role(
        &server,
        &server.owner_key,
        "readers",
        Some(explicit(vec![cache_read_on("b")])),
    )
    .await;
    assert_status(result, Code::AlreadyExists, &["readers"]);
}

#[tokio::test]
async fn create_role_refuses_reserved_names_and_super_user() {
    let server = TestServer::start().await;
    let valid = explicit(vec![cache_read_on("a")]);
    create_role(&server, &server.owner_key, "ok", Some(valid.clone()))
        .await
        .expect("precondition: the permission set is valid");
    for reserved in ["owner", "Operator", "VIEWER"] {
        let result = create_role(&server, &server.owner_key, reserved, Some(valid.clone())).await;
        assert_status(result, Code::InvalidArgument, &["name"]);
    }
    let super_user = pr::PermissionSet {
        kind: Some(pr::permission_set::Kind::SuperUser(
            pr::SuperUserPermissions::SuperUser as i32,
        )),
        conditions: Vec::new(),
    };
    let result = create_role(&server, &server.owner_key, "root", Some(super_user)).await;
    assert_status(result, Code::InvalidArgument, &["permissions.super_user"]);
}

#[tokio::test]
async fn create_role_refuses_malformed_rules_naming_the_field() {
    use pr::CacheApiPermissions::*;
    let server = TestServer::start().await;
    let good = cache_rule(&[CacheRead], Some("a"));
    let with_second = |second: pr::rule::CacheRule| {
        explicit(vec![
            pr::rule::Kind::CacheRule(good.clone()),
            pr::rule::Kind::CacheRule(second),
        ])
    };
    let valid = only_from(
        explicit(vec![pr::rule::Kind::CacheRule(good.clone())]),
        vec![v4("10.0.0.0/8")],
    );
    create_role(&server, &server.owner_key, "valid", Some(valid))
        .await
        .expect("precondition: the unmodified set is valid");

    let rules = "permissions.explicit.rules";
    let ranges = "permissions.conditions[0].ip_filter.allowed_cidr_ranges";
    let cases: Vec<(&str, Option<pr::PermissionSet>, String)> = vec![
        ("no permissions", None, "permissions".into()),
        (
            "no kind",
            Some(pr::PermissionSet {
                kind: None,
                conditions: Vec::new(),
            }),
            "permissions.kind".into(),
        ),
        ("no rules", Some(explicit(Vec::new())), rules.into()),
        (
            "rule without kind",
            Some(raw_explicit(vec![pr::Rule { kind: None }])),
            format!("{rules}[0].kind"),
        ),
        (
            "cache rule without cache",
            Some(with_second(pr::rule::CacheRule {
                cache: None,
                ..good.clone()
            })),
            format!("{rules}[1].cache_rule.cache"),
        ),
        (
            "cache selector without kind",
            Some(with_second(pr::rule::CacheRule {
                cache: Some(pr::rule::cache_rule::Cache::CacheSelector(
                    pr::CacheSelector { kind: None },
                )),
                ..good.clone()
            })),
            format!("{rules}[1].cache_rule.cache_selector"),
        ),
        (
            "empty cache name",
            Some(with_second(cache_rule(&[CacheRead], Some("")))),
            format!("{rules}[1].cache_rule.cache_selector.cache_name"),
        ),
        (
            "unknown permission value",
            Some(with_second(pr::rule::CacheRule {
                permissions: vec![99],
                ..good.clone()
            })),
            format!("{rules}[1].cache_rule.permissions[0]"),
        ),
        (
            "no permissions in a rule",
            Some(with_second(pr::rule::CacheRule {
                permissions: Vec::new(),
                ..good.clone()
            })),
            format!("{rules}[1].cache_rule.permissions"),
        ),
        (
            "list with a named cache",
            Some(with_second(cache_rule(&[CacheRead, CacheList], Some("a")))),
            format!("{rules}[1].cache_rule.permissions"),
        ),
        (
            "CIDR prefix out of range",
            Some(only_from(
                with_second(good.clone()),
                vec![v4("10.0.0.0/33")],
            )),
            format!("{ranges}[0].ipv4"),
        ),
        (
            "IPv6 range in the ipv4 field",
            Some(only_from(
                with_second(good.clone()),
                vec![v4("10.0.0.0/8"), v4("2001:db8::/32")],
            )),
            format!("{ranges}[1].ipv4"),
        ),
        (
            "IPv4 range in the ipv6 field",
            Some(only_from(with_second(good.clone()), vec![v6("10.0.0.0/8")])),
            format!("{ranges}[0].ipv6"),
        ),
        (
            "no CIDR ranges",
            Some(only_from(with_second(good.clone()), Vec::new())),
            ranges.into(),
        ),
    ];
    for (i, (case, permissions, field)) in cases.into_iter().enumerate() {
        let result =
            create_role(&server, &server.owner_key, &format!("bad-{i}"), permissions).await;
        let status = match result {
            Ok(role) => panic!("{case}: accepted {role:?}"),
            Err(status) => status,
        };
        assert_eq!(status.code(), Code::InvalidArgument, "{case}: {status:?}");
        assert!(
            status.message().starts_with(&format!("{field}:")),
            "{case}: message {:?} should name {field:?}",
            status.message()
        );
    }
}

/// A permission set with every rule family, every selector and both kinds of CIDR range, in
/// the form the server lists it back.
fn every_rule_family() -> pr::PermissionSet {
    use pr::rule::{cache_rule as c, function_rule as f, store_rule as s, topic_rule as t, Kind};
    use pr::{
        AccountManagementPermissions as Acc, CacheApiPermissions as Cache,
        FunctionApiPermissions as Func, ResourceManagementPermissions as Res,
        StoreApiPermissions as Store, TopicApiPermissions as Topic,
    };
    let ops = |values: &[i32]| values.to_vec();
    let cache_item = |kind| c::CacheItem::ItemSelector(pr::CacheItemSelector { kind: Some(kind) });
    let store_item = |kind| s::StoreItem::ItemSelector(pr::StoreItemSelector { kind: Some(kind) });
    let topic = |kind| t::Topic::TopicSelector(pr::TopicSelector { kind: Some(kind) });
    let function = |kind| f::Function::FunctionSelector(pr::FunctionSelector { kind: Some(kind) });
    let named = |name: &str| pr::CacheSelector {
        kind: Some(pr::cache_selector::Kind::CacheName(name.into())),
    };
    let rules = vec![
        account_rule(&[Acc::AccountRead, Acc::AccountList]),
        auth_rule(&[
            pr::AuthManagementPermissions::AuthRead,
            pr::AuthManagementPermissions::AuthList,
        ]),
        Kind::ResourceManagementRule(pr::rule::ResourceManagementRule {
            permissions: ops(&[
                Res::ResourceRead as i32,
                Res::ResourceWrite as i32,
                Res::ResourceList as i32,
            ]),
            resources: Some(pr::rule::resource_management_rule::Resources::AllResources(
                all(),
            )),
        }),
        Kind::CacheRule(cache_rule(
            &[Cache::CacheRead, Cache::CacheWrite, Cache::CacheList],
            None,
        )),
        Kind::CacheRule(pr::rule::CacheRule {
            permissions: ops(&[Cache::CacheRead as i32]),
            cache: Some(c::Cache::CacheSelector(named("c1"))),
            cache_item: Some(cache_item(pr::cache_item_selector::Kind::Key(
                b"k\x00\xff".to_vec(),
            ))),
        }),
        Kind::CacheRule(pr::rule::CacheRule {
            permissions: ops(&[Cache::CacheWrite as i32]),
            cache: Some(c::Cache::AllCaches(all())),
            cache_item: Some(cache_item(pr::cache_item_selector::Kind::KeyPrefix(
                b"p/".to_vec(),
            ))),
        }),
        Kind::TopicRule(pr::rule::TopicRule {
            permissions: ops(&[
                Topic::TopicRead as i32,
                Topic::TopicWrite as i32,
                Topic::TopicList as i32,
            ]),
            cache: Some(t::Cache::AllCaches(all())),
            topic: Some(t::Topic::AllTopics(all())),
        }),
        Kind::TopicRule(pr::rule::TopicRule {
            permissions: ops(&[Topic::TopicRead as i32]),
            cache: Some(t::Cache::CacheSelector(named("c1"))),
            topic: Some(topic(pr::topic_selector::Kind::TopicName("alerts".into()))),
        }),
        Kind::TopicRule(pr::rule::TopicRule {
            permissions: ops(&[Topic::TopicWrite as i32]),
            cache: Some(t::Cache::AllCaches(all())),
            topic: Some(topic(pr::topic_selector::Kind::TopicNamePrefix(
                "news.".into(),
            ))),
        }),
        Kind::StorageRule(pr::rule::StoreRule {
            permissions: ops(&[
                Store::StoreRead as i32,
                Store::StoreWrite as i32,
                Store::StoreList as i32,
            ]),
            store: Some(s::Store::AllStores(all())),
            store_item: Some(s::StoreItem::AllItems(all())),
        }),
        Kind::StorageRule(pr::rule::StoreRule {
            permissions: ops(&[Store::StoreRead as i32]),
            store: Some(s::Store::StoreSelector(pr::StoreSelector {
                kind: Some(pr::store_selector::Kind::StoreName("s1".into())),
            })),
            store_item: Some(store_item(pr::store_item_selector::Kind::Key(
                b"k".to_vec(),
            ))),
        }),
        Kind::StorageRule(pr::rule::StoreRule {
            permissions: ops(&[Store::StoreWrite as i32]),
            store: Some(s::Store::AllStores(all())),
            store_item: Some(store_item(pr::store_item_selector::Kind::KeyPrefix(
                b"kp".to_vec(),
            ))),
        }),
        Kind::FunctionRule(pr::rule::FunctionRule {
            permissions: ops(&[Func::FunctionInvoke as i32]),
            cache: Some(f::Cache::AllCaches(all())),
            function: Some(f::Function::AllFunctions(all())),
        }),
        Kind::FunctionRule(pr::rule::FunctionRule {
            permissions: ops(&[Func::FunctionInvoke as i32]),
            cache: Some(f::Cache::CacheSelector(named("c1"))),
            function: Some(function(pr::function_selector::Kind::FunctionName(
                "resize".into(),
            ))),
        }),
        Kind::FunctionRule(pr::rule::FunctionRule {
            permissions: ops(&[Func::FunctionInvoke as i32]),
            cache: Some(f::Cache::AllCaches(all())),
            function: Some(function(pr::function_selector::Kind::FunctionPrefix(
                "fn_".into(),
            ))),
        }),
    ];
    only_from(explicit(rules), vec![v4("10.0.0.0/8"), v6("2001:db8::/32")])
}

#[tokio::test]
async fn every_rule_family_and_selector_round_trips_through_create_and_list() {
    let server = TestServer::start().await;
    let permissions = every_rule_family();
    let created = create_role(
        &server,
        &server.owner_key,
        "everything",
        Some(permissions.clone()),
    )
    .await
    .expect("create role");
    assert_eq!(created.permissions.as_ref(), Some(&permissions));
    assert_eq!(created.kind(), pb::RoleKind::Custom);

    let roles = list_roles(&server, &server.owner_key)
        .await
        .expect("list roles");
    let listed = roles
        .iter()
        .find(|r| r.role_id == created.role_id)
        .expect("listed");
    assert_eq!(listed, &created);
    let account_roles = list_roles_for_account(&server, &server.owner_key)
        .await
        .expect("list");
    let listed = account_roles
        .iter()
        .find(|r| r.role_id == created.role_id)
        .expect("listed");
    assert_eq!(listed.permissions.as_ref(), Some(&permissions));
}

#[tokio::test]
async fn updating_a_role_changes_its_keys_on_the_very_next_authorize() {
    let server = TestServer::start().await;
    let role = owner_creates_role(&server, "one-cache", explicit(vec![cache_read_on("a")])).await;
    let (key, _) = server.create_key(&server.owner_key, &role).await;
    let check = |cache: &str| cache_check(&key, pb::Action::CacheRead, cache, b"k");

    assert!(server.authorize(check("a")).await.allowed);
    let denied = server.authorize(check("b")).await;
    assert!(!denied.allowed);
    assert_eq!(denied.reason(), pb::Reason::Permission);

    let updated = update_role_permissions(
        &server,
        &server.owner_key,
        &role,
        explicit(vec![cache_read_on("b")]),
    )
    .await
    .expect("update role");
    assert_eq!(
        updated.permissions,
        Some(explicit(vec![cache_read_on("b")]))
    );

    assert!(server.authorize(check("b")).await.allowed);
    let denied = server.authorize(check("a")).await;
    assert!(!denied.allowed);
    assert_eq!(denied.reason(), pb::Reason::Permission);
}

#[tokio::test]
async fn system_roles_cannot_be_updated_or_deleted() {
    let server = TestServer::start().await;
    let custom = owner_creates_role(&server, "custom", explicit(vec![cache_read_on("a")])).await;
    update_role_permissions(
        &server,
        &server.owner_key,
        &custom,
        explicit(vec![cache_read_on("b")]),
    )
    .await
    .expect("precondition: a custom role can be updated");
    for system in ["owner", "operator", "viewer"] {
        let result = update_role_permissions(
            &server,
            &server.owner_key,
            system,
            explicit(vec![cache_read_on("b")]),
        )
        .await;
        assert_status(result, Code::FailedPrecondition, &[system]);
        let result = delete_role(&server, &server.owner_key, system).await;
        assert_status(result, Code::FailedPrecondition, &[system]);
    }
}

#[tokio::test]
async fn deleting_a_role_with_live_keys_is_refused_with_their_count() {
    let server = TestServer::start().await;
    let role = owner_creates_role(&server, "in-use", explicit(vec![cache_read_on("a")])).await;
    let (_, first) = server.create_key(&server.owner_key, &role).await;
    let (_, second) = server.create_key(&server.owner_key, &role).await;
    let result = delete_role(&server, &server.owner_key, &role).await;
    assert_status(result, Code::FailedPrecondition, &["2"]);

    revoke(&server, &server.owner_key, &first.key_id)
        .await
        .expect("revoke");
    let result = delete_role(&server, &server.owner_key, &role).await;
    assert_status(result, Code::FailedPrecondition, &["1"]);
    revoke(&server, &server.owner_key, &second.key_id)
        .await
        .expect("revoke");
    delete_role(&server, &server.owner_key, &role)
        .await
        .expect("delete unused role");

    let roles = list_roles(&server, &server.owner_key)
        .await
        .expect("list roles");
    assert!(roles.iter().all(|r| r.role_id != role));
    assert_status(
        delete_role(&server, &server.owner_key, &role).await,
        Code::NotFound,
        &["role_id"],
    );
    let result = generate(&server, &server.owner_key, &role, "too late", never()).await;
    assert_status(result, Code::NotFound, &["role_id"]);
}

#[tokio::test]
async fn viewer_cannot_create_roles_but_operator_can() {
    let server = TestServer::start().await;
    let (viewer, _) = server.create_key(&server.owner_key, "viewer").await;
    let (operator, _) = server.create_key(&server.owner_key, "operator").await;
    list_roles(&server, &viewer)
        .await
        .expect("precondition: the viewer key authenticates");
    let result = create_role(
        &server,
        &viewer,
        "by-viewer",
        Some(explicit(vec![cache_read_on("a")])),
    )
    .await;
    assert_status(result, Code::PermissionDenied, &["AuthWrite"]);

    let role = create_role(
        &server,
        &operator,
        "by-operator",
        Some(explicit(vec![cache_read_on("a")])),
    )
    .await
    .expect("operator creates a role");
    let (key, _) = server.create_key(&operator, &role.role_id).await;
    assert!(
        server
            .authorize(cache_check(&key, pb::Action::CacheRead, "a", b"k"))
            .await
            .allowed
    );
}

#[tokio::test]
async fn operator_cannot_create_or_change_a_role_broader_than_itself() {
    use pr::AccountManagementPermissions::*;
    let server = TestServer::start().await;
    let (operator, _) = server.create_key(&server.owner_key, "operator").await;
    let broad = explicit(vec![account_rule(&[AccountWrite])]);
    create_role(
        &server,
        &operator,
        "account-readers",
        Some(explicit(vec![account_rule(&[AccountRead])])),
    )
    .await
    .expect("precondition: the operator may create a role within its own permissions");
    let result = create_role(&server, &operator, "account-writers", Some(broad.clone())).await;
    assert_status(result, Code::PermissionDenied, &[]);

    let narrow = owner_creates_role(&server, "narrow", explicit(vec![cache_read_on("a")])).await;
    let result = update_role_permissions(&server, &operator, &narrow, broad).await;
    assert_status(result, Code::PermissionDenied, &[]);
}

// ---------------------------------------------------------------------------------------------
// 8. ip_filter
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn ip_filter_allows_only_peers_inside_an_ipv4_range() {
    let server = TestServer::start().await;
    let set = only_from(explicit(vec![cache_read_on("c")]), vec![v4("10.0.0.0/8")]);
    let role = owner_creates_role(&server, "office", set).await;
    let (key, _) = server.create_key(&server.owner_key, &role).await;

    for peer in ["10.1.2.3", "10.1.2.3:4567", "::ffff:10.1.2.3"] {
        let decision = server.authorize(read_from(&key, "c", peer)).await;
        assert!(decision.allowed, "{peer}: {decision:?}");
    }
    for peer in ["192.168.0.1", "11.0.0.1", "2001:db8::1", ""] {
        let decision = server.authorize(read_from(&key, "c", peer)).await;
        assert!(!decision.allowed, "{peer}: {decision:?}");
        assert_eq!(decision.reason(), pb::Reason::IpNotAllowed, "{peer:?}");
    }
}

#[tokio::test]
async fn ip_filter_allows_only_peers_inside_an_ipv6_range() {
    let server = TestServer::start().await;
    let set = only_from(
        explicit(vec![cache_read_on("c")]),
        vec![v6("2001:db8::/32")],
    );
    let role = owner_creates_role(&server, "office6", set).await;
    let (key, _) = server.create_key(&server.owner_key, &role).await;

    for peer in ["2001:db8::1", "[2001:db8:ffff::1]:443"] {
        let decision = server.authorize(read_from(&key, "c", peer)).await;
        assert!(decision.allowed, "{peer}: {decision:?}");
    }
    for peer in ["2001:db9::1", "10.1.2.3", ""] {
        let decision = server.authorize(read_from(&key, "c", peer)).await;
        assert!(!decision.allowed, "{peer}: {decision:?}");
        assert_eq!(decision.reason(), pb::Reason::IpNotAllowed, "{peer:?}");
    }
}

#[tokio::test]
async fn authorize_refuses_an_unparseable_peer_address() {
    let server = TestServer::start().await;
    let result = try_authorize(&server, read_from(&server.owner_key, "c", "10.1.2.3")).await;
    assert!(
        result
            .expect("precondition: a valid peer is accepted")
            .allowed
    );
    for peer in ["not-an-ip", "10.1.2", "10.0.0.0/8"] {
        let result = try_authorize(&server, read_from(&server.owner_key, "c", peer)).await;
        assert_status(result, Code::InvalidArgument, &["peer_address"]);
    }
}

#[tokio::test]
async fn management_call_from_outside_the_keys_ip_filter_is_permission_denied() {
    let server = TestServer::start().await;
    let rules = || explicit(vec![auth_all(), cache_read_on("c")]);
    let loopback = owner_creates_role(
        &server,
        "local-admins",
        only_from(rules(), vec![v4("127.0.0.0/8")]),
    )
    .await;
    let fenced = owner_creates_role(
        &server,
        "office-admins",
        only_from(rules(), vec![v4("10.0.0.0/8")]),
    )
    .await;
    let (loopback_key, _) = server.create_key(&server.owner_key, &loopback).await;
    let (fenced_key, _) = server.create_key(&server.owner_key, &fenced).await;
    list_roles(&server, &loopback_key).await.expect(
        "precondition: the server sees the loopback peer, so a 127.0.0.0/8 filter admits it",
    );
    let inside = server
        .authorize(read_from(&fenced_key, "c", "10.1.2.3"))
        .await;
    assert!(
        inside.allowed,
        "precondition: the fenced key is valid: {inside:?}"
    );

    let result = list_roles(&server, &fenced_key).await;
    assert_status(result, Code::PermissionDenied, &["ip_filter"]);
    let result = generate(&server, &fenced_key, "viewer", "from loopback", never()).await;
    assert_status(result, Code::PermissionDenied, &["ip_filter"]);
}

// ---------------------------------------------------------------------------------------------
// 9. Authorize request validation and bad credentials
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn authorize_names_the_missing_request_field() {
    let server = TestServer::start().await;
    let key = server.owner_key.clone();
    let cases = [
        (
            "action",
            cache_check(&key, pb::Action::CacheRead, "c", b"k"),
            pb::AuthorizeRequest {
                action: pb::Action::Unspecified as i32,
                ..cache_check(&key, pb::Action::CacheRead, "c", b"k")
            },
        ),
        (
            "action",
            cache_check(&key, pb::Action::CacheRead, "c", b"k"),
            pb::AuthorizeRequest {
                action: 99,
                ..cache_check(&key, pb::Action::CacheRead, "c", b"k")
            },
        ),
        (
            "cache",
            cache_check(&key, pb::Action::CacheWrite, "c", b"k"),
            cache_check(&key, pb::Action::CacheWrite, "", b"k"),
        ),
        (
            "topic",
            topic_check(&key, pb::Action::TopicPublish, "c", "t"),
            topic_check(&key, pb::Action::TopicPublish, "c", ""),
        ),
        (
            "function",
            function_check(&key, "c", "f"),
            function_check(&key, "c", ""),
        ),
    ];
    for (field, valid, invalid) in cases {
        let answer = try_authorize(&server, valid).await;
        assert!(
            answer
                .expect("precondition: the complete request is answered")
                .allowed
        );
        let result = try_authorize(&server, invalid).await;
        assert_status(result, Code::InvalidArgument, &[field]);
    }
}

#[tokio::test]
async fn authorize_denies_bad_credentials_without_echoing_them() {
    let (server, public) = server_with_known_key().await;
    let real = server.owner_key.clone();
    let genuine = server
        .authorize(cache_check(&real, pb::Action::CacheRead, "c", b"k"))
        .await;
    assert!(
        genuine.allowed,
        "precondition: the genuine key is allowed: {genuine:?}"
    );

    for (case, credential, _) in bad_credentials(&real, &public) {
        let decision = try_authorize(
            &server,
            cache_check(&credential, pb::Action::CacheRead, "c", b"k"),
        )
        .await
        .unwrap_or_else(|e| panic!("{case}: a bad credential is a decision, not an error: {e:?}"));
        assert!(!decision.allowed, "{case}: {decision:?}");
        assert_eq!(decision.reason(), pb::Reason::Unauthenticated, "{case}");
        assert!(decision.key_id.is_empty(), "{case}: {decision:?}");
        if !credential.is_empty() {
            assert!(
                !decision.message.contains(&credential),
                "{case}: message echoes the credential"
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// 10. Management RPC authentication errors
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn management_call_without_a_credential_is_unauthenticated() {
    let server = TestServer::start().await;
    list_roles(&server, &server.owner_key)
        .await
        .expect("precondition: the same call with a key succeeds");
    let mut admin = server.admin().await;
    let result = admin.list_roles(pb::ListRolesRequest {}).await;
    assert_status(result, Code::Unauthenticated, &["missing"]);
    let mut global = server.global_admin().await;
    let result = global
        .generate_global_api_key(ga::GenerateGlobalApiKeyRequest {
            role_id: "viewer".into(),
            description: "anonymous".into(),
            expiry: never(),
        })
        .await;
    assert_status(result, Code::Unauthenticated, &["missing"]);
}

#[tokio::test]
async fn management_call_accepts_a_bearer_prefix() {
    let server = TestServer::start().await;
    let roles = list_roles(&server, &format!("Bearer {}", server.owner_key))
        .await
        .expect("Bearer-prefixed key authenticates");
    assert!(!roles.is_empty());
}

#[tokio::test]
async fn management_call_with_a_bad_credential_says_why_without_echoing_it() {
    let (server, public) = server_with_known_key().await;
    let real = server.owner_key.clone();
    list_roles(&server, &real)
        .await
        .expect("precondition: the genuine key authenticates");
    for (case, credential, word) in bad_credentials(&real, &public) {
        for rpc in [
            Rpc::ListRoles,
            Rpc::ListGlobalApiKeys,
            Rpc::GenerateGlobalApiKey,
        ] {
            let status = call_as(&server, rpc, &credential)
                .await
                .expect_err("a bad credential is refused");
            assert_eq!(
                status.code(),
                Code::Unauthenticated,
                "{case} {rpc:?}: {status:?}"
            );
            assert!(
                status.message().contains(word),
                "{case} {rpc:?}: message {:?} should mention {word:?}",
                status.message()
            );
            if !credential.is_empty() {
                assert!(
                    !status.message().contains(&credential),
                    "{case}: message echoes the credential"
                );
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// 11. Health and reflection
// ---------------------------------------------------------------------------------------------

use authcell::server::SERVICES;

#[tokio::test]
async fn health_reports_the_server_and_every_service_serving() {
    use tonic_health::pb::health_check_response::ServingStatus;
    use tonic_health::pb::{health_client::HealthClient, HealthCheckRequest};
    let server = TestServer::start().await;
    let mut health = HealthClient::new(server.channel().await);
    for service in std::iter::once("").chain(SERVICES) {
        let response = health
            .check(HealthCheckRequest {
                service: service.into(),
            })
            .await
            .unwrap_or_else(|e| panic!("health check {service:?}: {e:?}"))
            .into_inner();
        assert_eq!(response.status(), ServingStatus::Serving, "{service:?}");
    }
    let result = health
        .check(HealthCheckRequest {
            service: "no.Such".into(),
        })
        .await;
    assert_status(result, Code::NotFound, &[]);
}

#[tokio::test]
async fn reflection_v1_lists_every_service() {
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
    use tonic_reflection::pb::v1::ServerReflectionRequest;
    let server = TestServer::start().await;
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut stream = ServerReflectionClient::new(server.channel().await)
        .server_reflection_info(tokio_stream::iter([request]))
        .await
        .expect("reflection call")
        .into_inner();
    let response = stream
        .message()
        .await
        .expect("reflection response")
        .expect("one response");
    let names: Vec<String> = match response.message_response {
        Some(MessageResponse::ListServicesResponse(list)) => {
            list.service.into_iter().map(|s| s.name).collect()
        }
        other => panic!("expected a service list, got {other:?}"),
    };
    for service in SERVICES.into_iter().chain(["grpc.health.v1.Health"]) {
        assert!(
            names.iter().any(|n| n == service),
            "{service} missing from {names:?}"
        );
    }
}

#[tokio::test]
async fn reflection_v1alpha_lists_services_too() {
    use tonic_reflection::pb::v1alpha::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1alpha::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1alpha::server_reflection_response::MessageResponse;
    use tonic_reflection::pb::v1alpha::ServerReflectionRequest;
    let server = TestServer::start().await;
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut stream = ServerReflectionClient::new(server.channel().await)
        .server_reflection_info(tokio_stream::iter([request]))
        .await
        .expect("reflection call")
        .into_inner();
    let response = stream
        .message()
        .await
        .expect("reflection response")
        .expect("one response");
    let names: Vec<String> = match response.message_response {
        Some(MessageResponse::ListServicesResponse(list)) => {
            list.service.into_iter().map(|s| s.name).collect()
        }
        other => panic!("expected a service list, got {other:?}"),
    };
    for service in SERVICES.into_iter().chain(["grpc.health.v1.Health"]) {
        assert!(
            names.iter().any(|n| n == service),
            "{service} missing from {names:?}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// 12. Upstream methods that authcell does not serve
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn login_is_unimplemented() {
    let server = TestServer::start().await;
    let result = server
        .auth()
        .await
        .login(with_key(
            authcell::proto::auth::LoginRequest {},
            &server.owner_key,
        ))
        .await;
    let status = match result {
        Err(status) => status,
        Ok(response) => response
            .into_inner()
            .message()
            .await
            .expect_err("Login yields no messages"),
    };
    assert_eq!(status.code(), Code::Unimplemented, "{status:?}");
}

// ---------------------------------------------------------------------------------------------
// 13. Oversized requests
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn oversized_requests_are_refused_and_the_server_keeps_serving() {
    let server = TestServer::start().await;
    let under_limit = cache_check(&server.owner_key, pb::Action::CacheRead, "c", &[7; 60_000]);
    let answer = try_authorize(&server, under_limit).await;
    assert!(
        answer
            .expect("precondition: a 60 KB request is served")
            .allowed
    );
    let mut client = server.global_admin().await;
    let request = |description: String| {
        with_key(
            ga::GenerateGlobalApiKeyRequest {
                role_id: "viewer".into(),
                description,
                expiry: never(),
            },
            &server.owner_key,
        )
    };
    let status = client
        .generate_global_api_key(request("d".repeat(70_000)))
        .await
        .expect_err("a 70 KB request is refused");
    assert!(
        matches!(status.code(), Code::OutOfRange | Code::ResourceExhausted),
        "{status:?}"
    );
    client
        .generate_global_api_key(request("small".into()))
        .await
        .expect("the same connection keeps serving");
    // The verifier takes batches, so its limit is 8 MiB rather than 64 KiB.
    let oversized_check = cache_check(
        &server.owner_key,
        pb::Action::CacheRead,
        "c",
        &vec![7; 9 * 1024 * 1024],
    );
    let result = try_authorize(&server, oversized_check).await;
    let status = result.expect_err("a 9 MiB Authorize is refused");
    assert!(
        matches!(status.code(), Code::OutOfRange | Code::ResourceExhausted),
        "{status:?}"
    );
    list_roles(&server, &server.owner_key)
        .await
        .expect("the server keeps serving");
}
