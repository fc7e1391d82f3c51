//! One-call helpers over the embedded server (generate, list, describe, revoke keys; roles;
//! Authorize), permission-rule builders and bad credentials: what the topic files of keys,
//! roles, isolation, ip_filter, Authorize and the service surface share.

pub use super::*;
use authcell::credential::{self, Claims};
use authcell::keyring::KeyRing;
use authcell::proto::authcell::v1 as pb;
use authcell::proto::global_admin as ga;
use authcell::proto::permission_rules as pr;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ed25519_dalek::pkcs8::spki::der::pem::LineEnding;
use ed25519_dalek::pkcs8::{EncodePrivateKey, EncodePublicKey};
use tonic::{Code, Status};

pub type Expiry = ga::generate_global_api_key_request::Expiry;

pub fn never() -> Option<Expiry> {
    Some(Expiry::Never(ga::generate_global_api_key_request::Never {}))
}

pub fn expires_at(at: u64) -> Option<Expiry> {
    Some(Expiry::Expires(
        ga::generate_global_api_key_request::Expires {
            expiration_epoch_seconds: at,
        },
    ))
}

/// Asserts `result` failed with `code` and a message mentioning every one of `words`.
#[track_caller]
pub fn assert_status<T: std::fmt::Debug>(
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
pub fn jwt_segment(token: &str, index: usize) -> serde_json::Value {
    let part = token
        .split('.')
        .nth(index)
        .expect("a JWT has three segments");
    let bytes = URL_SAFE_NO_PAD.decode(part).expect("segment is base64url");
    serde_json::from_slice(&bytes).expect("segment is JSON")
}

pub fn claims_of(token: &str) -> serde_json::Value {
    jwt_segment(token, 1)
}

pub fn key_id_of(token: &str) -> String {
    claims_of(token)["jti"]
        .as_str()
        .expect("jti claim is a string")
        .to_owned()
}

pub async fn generate(
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
pub async fn mint_keys(server: &TestServer, n: usize) -> Vec<String> {
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

pub async fn list_global_keys(
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

pub async fn revoke(server: &TestServer, caller: &str, key_id: &str) -> Result<(), Status> {
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

pub async fn describe(
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

pub async fn list_page(
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
        expiring_within_seconds: 0,
    };
    server
        .admin()
        .await
        .list_api_keys(with_key(request, caller))
        .await
        .map(|r| r.into_inner())
}

pub async fn list_roles(server: &TestServer, caller: &str) -> Result<Vec<pb::Role>, Status> {
    server
        .admin()
        .await
        .list_roles(with_key(pb::ListRolesRequest {}, caller))
        .await
        .map(|r| r.into_inner().roles)
}

pub async fn list_roles_for_account(
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

pub async fn create_role(
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
pub async fn owner_creates_role(
    server: &TestServer,
    name: &str,
    permissions: pr::PermissionSet,
) -> String {
    create_role(server, &server.owner_key, name, Some(permissions))
        .await
        .expect("owner creates role")
        .role_id
}

pub async fn update_role_permissions(
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

pub async fn delete_role(server: &TestServer, caller: &str, role_id: &str) -> Result<(), Status> {
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

pub async fn try_authorize(
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
pub fn read_from(credential: &str, cache: &str, peer: &str) -> pb::AuthorizeRequest {
    pb::AuthorizeRequest {
        peer_address: peer.into(),
        ..cache_check(credential, pb::Action::CacheRead, cache, b"k")
    }
}

// Permission sets, in the form the server lists them back (permissions in read, write, list
// order; auth and resource rules with their "all" selector set).

pub fn all() -> pr::All {
    pr::All {}
}

pub fn explicit(rules: Vec<pr::rule::Kind>) -> pr::PermissionSet {
    raw_explicit(
        rules
            .into_iter()
            .map(|kind| pr::Rule { kind: Some(kind) })
            .collect(),
    )
}

pub fn raw_explicit(rules: Vec<pr::Rule>) -> pr::PermissionSet {
    pr::PermissionSet {
        kind: Some(pr::permission_set::Kind::Explicit(
            pr::ExplicitPermissions { rules },
        )),
        conditions: Vec::new(),
    }
}

pub type Range = pr::ip_filter::cidr_range::Range;

pub fn v4(range: &str) -> Range {
    Range::Ipv4(range.into())
}

pub fn v6(range: &str) -> Range {
    Range::Ipv6(range.into())
}

pub fn ip_filter(ranges: Vec<Range>) -> pr::Condition {
    pr::Condition {
        condition: Some(pr::condition::Condition::IpFilter(pr::IpFilter {
            allowed_cidr_ranges: ranges
                .into_iter()
                .map(|range| pr::ip_filter::CidrRange { range: Some(range) })
                .collect(),
        })),
    }
}

pub fn only_from(mut set: pr::PermissionSet, ranges: Vec<Range>) -> pr::PermissionSet {
    set.conditions.push(ip_filter(ranges));
    set
}

pub fn cache_named(name: &str) -> pr::rule::cache_rule::Cache {
    pr::rule::cache_rule::Cache::CacheSelector(pr::CacheSelector {
        kind: Some(pr::cache_selector::Kind::CacheName(name.into())),
    })
}

/// A cache rule over all items; `cache` None selects every cache.
pub fn cache_rule(
    permissions: &[pr::CacheApiPermissions],
    cache: Option<&str>,
) -> pr::rule::CacheRule {
    pr::rule::CacheRule {
        permissions: permissions.iter().map(|p| *p as i32).collect(),
        cache: Some(cache.map_or(pr::rule::cache_rule::Cache::AllCaches(all()), cache_named)),
        cache_item: Some(pr::rule::cache_rule::CacheItem::AllItems(all())),
    }
}

pub fn cache_read_on(cache: &str) -> pr::rule::Kind {
    pr::rule::Kind::CacheRule(cache_rule(
        &[pr::CacheApiPermissions::CacheRead],
        Some(cache),
    ))
}

pub fn auth_rule(permissions: &[pr::AuthManagementPermissions]) -> pr::rule::Kind {
    pr::rule::Kind::AuthManagementRule(pr::rule::AuthManagementRule {
        permissions: permissions.iter().map(|p| *p as i32).collect(),
        auth_items: Some(pr::rule::auth_management_rule::AuthItems::AllItems(all())),
    })
}

pub fn auth_all() -> pr::rule::Kind {
    use pr::AuthManagementPermissions::*;
    auth_rule(&[AuthRead, AuthWrite, AuthList])
}

pub fn account_rule(permissions: &[pr::AccountManagementPermissions]) -> pr::rule::Kind {
    pr::rule::Kind::AccountManagementRule(pr::rule::AccountManagementRule {
        permissions: permissions.iter().map(|p| *p as i32).collect(),
    })
}

/// A server whose Ed25519 signing key the test knows, so it can forge tokens with the public key.
pub async fn server_with_known_key() -> (TestServer, ed25519_dalek::VerifyingKey) {
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
pub fn tamper_last_char(token: &str) -> String {
    let (head, last) = token.split_at(token.len() - 1);
    let swapped = if last == "A" { "Q" } else { "A" };
    format!("{head}{swapped}")
}

/// Credentials that must not authenticate, each with a word its refusal must mention.
/// `real` is a genuine key of the server whose signing key's public half is `public`.
pub fn bad_credentials(
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

/// A management RPC, for tests that run the same check on several.
#[derive(Clone, Copy, Debug)]
pub enum Rpc {
    ListGlobalApiKeys,
    ListRoles,
    GenerateGlobalApiKey,
}

pub async fn call_as(server: &TestServer, rpc: Rpc, key: &str) -> Result<(), Status> {
    match rpc {
        Rpc::ListGlobalApiKeys => list_global_keys(server, key).await.map(|_| ()),
        Rpc::ListRoles => list_roles(server, key).await.map(|_| ()),
        Rpc::GenerateGlobalApiKey => generate(server, key, "viewer", "ok", never())
            .await
            .map(|_| ()),
    }
}
