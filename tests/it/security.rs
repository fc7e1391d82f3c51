//! The security matrix: one table of attacks, each row run against the real server over gRPC.
//!
//! Every row first shows its precondition (the genuine credential works, or the legitimate call
//! succeeds), then breaks one thing and asserts the exact refusal. Forged tokens are signed with
//! the server's own private key where that makes the attack stronger: the header or claims
//! check, not the signature, must be what refuses them.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ed25519_dalek::pkcs8::DecodePrivateKey;
use ed25519_dalek::{Signer, SigningKey};
use serde_json::{json, Value};
use tonic::Code;

use authcell::keyring::KeyRing;
use authcell::proto::authcell::v1 as pb;
use authcell::proto::global_admin as ga;

use crate::support::api::{auth_rule, cache_rule, cache_write_all, role_rules, Api};
use crate::support::statements::read_cache;
use crate::support::*;
use authcell::proto::permission_rules as pr;

/// A server whose signing key the test holds.
struct Subject {
    server: TestServer,
    api: Api,
    signing: SigningKey,
    pem: String,
}

async fn subject() -> Subject {
    let pem = authcell::keyring::generate_pem().expect("pem").to_string();
    let ring = KeyRing::from_pem("matrix", &pem).expect("ring");
    let server = TestServer::start_with_keyring(ring).await;
    let api = Api::of_server(&server).await;
    Subject {
        signing: SigningKey::from_pkcs8_pem(&pem).expect("signing key"),
        server,
        api,
        pem,
    }
}

fn split(token: &str) -> (Value, Value) {
    let mut parts = token.split('.');
    let mut next = || {
        let bytes = URL_SAFE_NO_PAD
            .decode(parts.next().expect("segment"))
            .expect("base64url");
        serde_json::from_slice::<Value>(&bytes).expect("json")
    };
    (next(), next())
}

fn b64(value: &Value) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(value).expect("json"))
}

/// A token with this header and payload, signed with `key`.
fn sign(key: &SigningKey, header: &Value, payload: &Value) -> String {
    let input = format!("{}.{}", b64(header), b64(payload));
    let signature = key.sign(input.as_bytes());
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature.to_bytes()))
}

/// A token with this header and payload and the given raw signature bytes.
fn with_signature(header: &Value, payload: &Value, signature: &[u8]) -> String {
    format!(
        "{}.{}.{}",
        b64(header),
        b64(payload),
        URL_SAFE_NO_PAD.encode(signature)
    )
}

/// An HS256 token keyed with `secret`, carrying the original header's kid.
fn hs256(secret: &[u8], header: &Value, payload: &Value) -> String {
    let mut h = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    h.kid = header["kid"].as_str().map(str::to_owned);
    jsonwebtoken::encode(&h, payload, &jsonwebtoken::EncodingKey::from_secret(secret))
        .expect("hs256")
}

const READ: pb::Action = pb::Action::CacheRead;

async fn reason(api: &Api, credential: &str) -> pb::Reason {
    api.reason(credential, READ, "c").await
}

/// Rows that forge a credential from a genuine one: (name, forged, expected refusal).
fn forgeries(s: &Subject, genuine: &str, now: u64) -> Vec<(&'static str, String, pb::Reason)> {
    use pb::Reason::*;
    let (header, payload) = split(genuine);
    let key = &s.signing;
    let resign = |h: Value, p: Value| sign(key, &h, &p);
    let edit = |v: &Value, f: &dyn Fn(&mut serde_json::Map<String, Value>)| {
        let mut v = v.clone();
        f(v.as_object_mut().expect("object"));
        v
    };
    let original_sig = genuine.rsplit('.').next().expect("signature").to_owned();
    let mut rows = Vec::new();
    for alg in ["none", "None", "NONE", "nOnE"] {
        let h = edit(&header, &|m| {
            m.insert("alg".into(), json!(alg));
        });
        rows.push((
            "alg none, empty signature",
            format!("{}.{}.", b64(&h), b64(&payload)),
            Unauthenticated,
        ));
        rows.push((
            "alg none, genuine signature kept",
            format!("{}.{}.{original_sig}", b64(&h), b64(&payload)),
            Unauthenticated,
        ));
    }
    let hs = edit(&header, &|m| {
        m.insert("alg".into(), json!("HS256"));
    });
    let public = key.verifying_key();
    rows.push((
        "HS256 keyed with the raw public key",
        hs256(public.as_bytes(), &hs, &payload),
        Unauthenticated,
    ));
    let public_pem = authcell::keyring::public_pem_of(&s.pem).expect("public pem");
    rows.push((
        "HS256 keyed with the public key PEM",
        hs256(public_pem.as_bytes(), &hs, &payload),
        Unauthenticated,
    ));
    // Tampering, keeping the genuine signature.
    let owner_payload = edit(&payload, &|m| {
        m.insert("role".into(), json!("owner"));
    });
    rows.push((
        "payload tampered (role raised to owner), signature kept",
        format!("{}.{}.{original_sig}", b64(&header), b64(&owner_payload)),
        Unauthenticated,
    ));
    let spaced_header = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(format!(
            " {}",
            serde_json::to_string(&header).expect("json")
        )),
        genuine.split('.').nth(1).expect("payload")
    );
    rows.push((
        "header tampered (whitespace), signature kept",
        format!("{spaced_header}.{original_sig}"),
        Unauthenticated,
    ));
    let mut flipped = URL_SAFE_NO_PAD.decode(&original_sig).expect("signature");
    flipped[10] ^= 1;
    rows.push((
        "signature tampered (one bit)",
        with_signature(&header, &payload, &flipped),
        Unauthenticated,
    ));
    rows.push((
        "signature truncated",
        with_signature(&header, &payload, &flipped[..63]),
        Unauthenticated,
    ));
    // Key ids.
    let stranger = SigningKey::from_bytes(&[7u8; 32]);
    rows.push((
        "signed by a stranger's key under the server's kid",
        sign(&stranger, &header, &payload),
        Unauthenticated,
    ));
    rows.push((
        "unknown kid",
        resign(
            edit(&header, &|m| {
                m.insert("kid".into(), json!("not-a-kid"));
            }),
            payload.clone(),
        ),
        Unauthenticated,
    ));
    rows.push((
        "no kid",
        resign(
            edit(&header, &|m| {
                m.remove("kid");
            }),
            payload.clone(),
        ),
        Unauthenticated,
    ));
    // Headers that point elsewhere or demand understanding, validly signed.
    for (name, field, value) in [
        (
            "jku header",
            "jku",
            json!("https://attacker.example/jwks.json"),
        ),
        (
            "jwk header",
            "jwk",
            json!({"kty": "OKP", "crv": "Ed25519", "x": "AAAA"}),
        ),
        (
            "x5u header",
            "x5u",
            json!("https://attacker.example/cert.pem"),
        ),
        ("x5c header", "x5c", json!(["MIIB"])),
        ("crit header", "crit", json!(["exp"])),
    ] {
        rows.push((
            name,
            resign(
                edit(&header, &|m| {
                    m.insert(field.into(), value.clone());
                }),
                payload.clone(),
            ),
            Unauthenticated,
        ));
    }
    // Time, validly signed.
    rows.push((
        "expired",
        resign(
            header.clone(),
            edit(&payload, &|m| {
                m.insert("exp".into(), json!(now - 3600));
            }),
        ),
        Expired,
    ));
    rows.push((
        "nbf in the future",
        resign(
            header.clone(),
            edit(&payload, &|m| {
                m.insert("nbf".into(), json!(now + 3600));
            }),
        ),
        NotYetValid,
    ));
    rows.push((
        "iat far in the future",
        resign(
            header.clone(),
            edit(&payload, &|m| {
                m.insert("iat".into(), json!(now + 86_400));
            }),
        ),
        NotYetValid,
    ));
    // Shape.
    let huge = edit(&payload, &|m| {
        m.insert("pad".into(), json!("x".repeat(9000)));
    });
    rows.push((
        "oversize token",
        resign(header.clone(), huge),
        Unauthenticated,
    ));
    rows.push((
        "derived claims without a root role",
        resign(
            header.clone(),
            edit(&payload, &|m| {
                m.insert("anc".into(), json!([uuid::Uuid::now_v7().to_string()]));
                m.remove("role");
                m.insert("p".into(), json!(["c1;*;*"]));
            }),
        ),
        Unauthenticated,
    ));
    rows
}

/// A new viewer key, shown to work before a row breaks it.
async fn working_viewer(s: &Subject) -> String {
    let (viewer, _) = s
        .api
        .create_key(&s.server.owner_key, "viewer", None)
        .await
        .expect("viewer");
    assert_eq!(
        reason(&s.api, &viewer).await,
        pb::Reason::Unspecified,
        "precondition"
    );
    viewer
}

#[tokio::test]
async fn forged_and_broken_credentials_are_refused() {
    let s = subject().await;
    let viewer = working_viewer(&s).await;
    // The genuine token re-signed unchanged still works: the forging helper itself is sound.
    let (header, payload) = split(&viewer);
    let resigned = sign(&s.signing, &header, &payload);
    assert_eq!(
        reason(&s.api, &resigned).await,
        pb::Reason::Unspecified,
        "precondition"
    );
    let rows = forgeries(&s, &viewer, s.server.clock_now());
    let mut failures = Vec::new();
    for (name, forged, want) in &rows {
        let got = reason(&s.api, forged).await;
        if got != *want {
            failures.push(format!("{name}: want {want:?}, got {got:?}"));
        }
        // The same credential is refused by the management API too.
        let status = s
            .api
            .admin()
            .list_api_keys(with_key(pb::ListApiKeysRequest::default(), forged))
            .await;
        match status {
            Err(status) if status.code() == Code::Unauthenticated => {}
            other => failures.push(format!("{name}: management call gave {other:?}")),
        }
    }
    assert!(
        failures.is_empty(),
        "{} rows failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    eprintln!("{} forged credentials refused", rows.len());
}

#[tokio::test]
async fn a_retired_signing_key_stops_verifying_at_once() {
    let s = subject().await;
    let viewer = working_viewer(&s).await;
    // The ring moves to a new key; the old one is no longer trusted.
    let next = KeyRing::ephemeral().expect("ring");
    s.server.authority.verifier().keys().store(next);
    assert_eq!(reason(&s.api, &viewer).await, pb::Reason::Unauthenticated);
}

/// A call that must be refused with `code`, after its legitimate twin succeeded.
fn refused<T: std::fmt::Debug>(what: &str, result: Result<T, tonic::Status>, code: Code) {
    match result {
        Err(status) if status.code() == code => {}
        other => panic!("{what}: want {code:?}, got {other:?}"),
    }
}

#[tokio::test]
async fn credentials_are_refused_where_their_kind_does_not_belong() {
    let s = subject().await;
    let api = &s.api;
    let owner = &s.server.owner_key;
    let token = api
        .mint(owner, vec![read_cache("c")], "")
        .await
        .expect("token");
    assert_eq!(
        reason(api, &token).await,
        pb::Reason::Unspecified,
        "precondition"
    );
    // A disposable token is for the data plane only.
    api.create_key(owner, "viewer", None)
        .await
        .expect("precondition: owner creates keys");
    refused(
        "disposable token as a management key",
        api.create_key(&token, "viewer", None).await,
        Code::Unauthenticated,
    );
    refused(
        "disposable token minting a token",
        api.mint(&token, vec![read_cache("c")], "").await,
        Code::PermissionDenied,
    );
    refused(
        "disposable token making an SDK key",
        api.sdk_key(&token, vec![read_cache("c")], None).await,
        Code::PermissionDenied,
    );
    // An SDK key holds data permissions only: it cannot make keys.
    let sdk = api
        .sdk_key(owner, vec![cache_write_all()], None)
        .await
        .expect("sdk key");
    api.mint(&sdk.api_key, vec![read_cache("c")], "")
        .await
        .expect("precondition: an SDK key mints tokens");
    refused(
        "SDK key making an SDK key",
        api.sdk_key(&sdk.api_key, vec![read_cache("c")], None).await,
        Code::PermissionDenied,
    );
    refused(
        "SDK key creating a role-bound key",
        api.create_key(&sdk.api_key, "viewer", None).await,
        Code::PermissionDenied,
    );
}

#[tokio::test]
async fn revocation_rows_revoked_cascade_and_the_same_millisecond() {
    let s = subject().await;
    let api = &s.api;
    let owner = s.server.owner_key.clone();
    let (operator, operator_id) = api.create_key(&owner, "operator", None).await.expect("op");
    let token = api
        .mint(&operator, vec![read_cache("c")], "")
        .await
        .expect("token");
    let sdk = api
        .sdk_key(&operator, vec![read_cache("c")], None)
        .await
        .expect("sdk");
    let grandchild = api
        .mint(&sdk.api_key, vec![read_cache("c")], "")
        .await
        .expect("gc");
    for c in [&operator, &token, &sdk.api_key, &grandchild] {
        assert_eq!(
            reason(api, c).await,
            pb::Reason::Unspecified,
            "precondition"
        );
    }
    api.revoke_key(&owner, &operator_id).await.expect("revoke");
    for (name, c) in [
        ("revoked key", &operator),
        ("token of a revoked key", &token),
        ("SDK key of a revoked key", &sdk.api_key),
        ("token of an SDK key of a revoked key", &grandchild),
    ] {
        assert_eq!(reason(api, c).await, pb::Reason::Revoked, "{name}");
    }
    refused(
        "a revoked key's refresh",
        api.refresh(&sdk.api_key, &sdk.refresh_token).await,
        Code::Unauthenticated,
    );
    // Issued before, at the same millisecond (the manual clock stands still).
    let (k, _) = api.create_key(&owner, "viewer", None).await.expect("key");
    assert_eq!(
        reason(api, &k).await,
        pb::Reason::Unspecified,
        "precondition"
    );
    api.revoke_issued_before(&owner).await.expect("cut");
    assert_eq!(
        reason(api, &k).await,
        pb::Reason::Revoked,
        "same millisecond"
    );
}

#[tokio::test]
async fn no_escalation_across_accounts_roles_or_revocations() {
    let s = subject().await;
    let api = &s.api;
    let owner = s.server.owner_key.clone();
    let (other_owner, _) = s
        .server
        .authority
        .bootstrap("globex", false)
        .await
        .expect("other");
    let (other_key, other_key_id) = api
        .create_key(&other_owner, "viewer", None)
        .await
        .expect("other key");
    assert_eq!(
        reason(api, &other_key).await,
        pb::Reason::Unspecified,
        "precondition"
    );
    // Cross-account: another account's key id is not found, for reading and for revoking.
    api.describe(&other_owner, &other_key_id).await;
    let describe = api
        .admin()
        .describe_api_key(with_key(
            pb::DescribeApiKeyRequest {
                key_id: other_key_id.clone(),
            },
            &owner,
        ))
        .await;
    refused("describe another account's key", describe, Code::NotFound);
    refused(
        "revoke another account's key",
        api.revoke_key(&owner, &other_key_id).await,
        Code::NotFound,
    );
    use pb::revoke_token_request::Token;
    api.revoke_token(&owner, Token::Id(other_key_id.clone()), 0)
        .await
        .expect("accepted: scoped to this account, it cannot touch the other");
    assert_eq!(reason(api, &other_key).await, pb::Reason::Unspecified);

    // Escalation through roles: an operator can neither hand out owner nor widen a role
    // beyond itself, nor edit a role stronger than itself.
    let (operator, _) = api
        .create_key(&owner, "operator", None)
        .await
        .expect("operator");
    api.create_key(&operator, "viewer", None)
        .await
        .expect("precondition: operator makes viewers");
    refused(
        "operator creates an owner key",
        api.create_key(&operator, "owner", None).await,
        Code::PermissionDenied,
    );
    let (limited, role_id) = api.limited_key(&owner, "limited").await;
    let widen = api
        .admin()
        .update_role(with_key(
            pb::UpdateRoleRequest {
                role_id: role_id.clone(),
                permissions: Some(role_rules(
                    vec![
                        cache_rule(
                            &[
                                pr::CacheApiPermissions::CacheRead,
                                pr::CacheApiPermissions::CacheWrite,
                            ],
                            None,
                        ),
                        auth_rule(&[pr::AuthManagementPermissions::AuthWrite]),
                    ],
                    vec![],
                )),
                ..Default::default()
            },
            &limited,
        ))
        .await;
    refused("a key widens its own role", widen, Code::PermissionDenied);
    refused(
        "a limited key mints beyond itself",
        api.mint(&limited, vec![cache_write_all()], "").await,
        Code::PermissionDenied,
    );
    // RevokeToken on a stronger key.
    let owner_id = api.key_id_of(&owner).await;
    refused(
        "RevokeToken on the owner key by an operator",
        api.revoke_token(&operator, Token::Id(owner_id), 0).await,
        Code::PermissionDenied,
    );
    assert_eq!(reason(api, &owner).await, pb::Reason::Unspecified);
}

#[tokio::test]
async fn refresh_tokens_work_once_and_never_after_the_maker() {
    let s = subject().await;
    let api = &s.api;
    let maker_expiry = s.server.clock_now() + 100;
    let (maker, _) = api
        .create_key(&s.server.owner_key, "operator", Some(maker_expiry))
        .await
        .expect("maker");
    let sdk = api
        .sdk_key(&maker, vec![read_cache("c")], Some(30))
        .await
        .expect("sdk");
    let refreshed = api
        .refresh(&sdk.api_key, &sdk.refresh_token)
        .await
        .expect("first refresh");
    refused(
        "refresh token reused",
        api.refresh(&sdk.api_key, &sdk.refresh_token).await,
        Code::Unauthenticated,
    );
    refused(
        "refresh token of another key",
        api.refresh(&refreshed.api_key, &sdk.refresh_token).await,
        Code::Unauthenticated,
    );
    s.server.clock.advance(101);
    refused(
        "refresh after the maker expired",
        api.refresh(&refreshed.api_key, &refreshed.refresh_token)
            .await,
        Code::Unauthenticated,
    );
}

#[tokio::test]
async fn the_platform_account_cannot_be_a_tenant() {
    let s = subject().await;
    for name in ["system", "SYSTEM", "System"] {
        let refused = s.server.authority.bootstrap(name, false).await;
        assert!(
            matches!(refused, Err(authcell::authority::Error::Invalid(_))),
            "{name}: {refused:?}"
        );
    }
    s.server
        .authority
        .bootstrap("systems", false)
        .await
        .expect("a similar name is fine");
    // The operators' own path still exists.
    let (platform, _) = s
        .server
        .authority
        .bootstrap_platform(false)
        .await
        .expect("platform");
    let listed = ga::global_admin_client::GlobalAdminClient::new(s.server.channel().await)
        .list_roles_for_account(with_key(ga::ListRolesForAccountRequest {}, &platform))
        .await;
    assert!(listed.is_ok(), "{listed:?}");
}

// --- Abuse limits -----------------------------------------------------------------------------

async fn server_with(options: authcell::node::NodeOptions) -> TestServer {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let endpoint = listener.local_addr().expect("addr").to_string();
    TestServer::start_with(
        KeyRing::ephemeral().expect("ring"),
        authcell::node::NodeOptions {
            endpoint,
            ..options
        },
        listener,
    )
    .await
}

#[tokio::test]
async fn revocation_endpoints_are_rate_limited_per_account() {
    let server = server_with(authcell::node::NodeOptions {
        revoke_rate_per_second: 1,
        revoke_burst: 3,
        ..Default::default()
    })
    .await;
    let api = Api::of_server(&server).await;
    let owner = &server.owner_key;
    use pb::revoke_token_request::Token;
    let id = || Token::Id(uuid::Uuid::now_v7().to_string());
    api.revoke_token(owner, id(), 0).await.expect("1");
    api.revoke_token(owner, Token::TokenId("t".into()), 0)
        .await
        .expect("2");
    api.admin()
        .confirm_revocation(with_key(pb::ConfirmRevocationRequest::default(), owner))
        .await
        .expect("3: confirmations count too");
    for call in 0..3 {
        let status = match call {
            0 => api.revoke_token(owner, id(), 0).await.map(|_| ()),
            1 => api.revoke_issued_before(owner).await.map(|_| ()),
            _ => api
                .admin()
                .confirm_revocation(with_key(pb::ConfirmRevocationRequest::default(), owner))
                .await
                .map(|_| ()),
        }
        .expect_err("over the burst");
        assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
        assert!(status.message().contains("revocation"), "{status:?}");
        assert!(status.metadata().get("retry-after").is_some(), "{status:?}");
    }
    // Vending has its own budget, and another account its own bucket.
    api.mint(owner, vec![read_cache("c")], "")
        .await
        .expect("vending unaffected");
    let (other, _) = server
        .authority
        .bootstrap("globex", false)
        .await
        .expect("other");
    api.revoke_token(&other, id(), 0)
        .await
        .expect("another account");
}

#[tokio::test]
async fn token_id_revocations_in_force_are_capped_per_account() {
    let server = server_with(authcell::node::NodeOptions {
        max_token_id_revocations: 2,
        ..Default::default()
    })
    .await;
    let api = Api::of_server(&server).await;
    let owner = &server.owner_key;
    use pb::revoke_token_request::Token;
    let end = server.clock_now() + 60;
    api.revoke_token(owner, Token::TokenId("a".into()), end)
        .await
        .expect("a");
    api.revoke_token(owner, Token::TokenId("b".into()), end)
        .await
        .expect("b");
    let status = api
        .revoke_token(owner, Token::TokenId("c".into()), end)
        .await
        .expect_err("over the cap");
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    assert!(status.message().contains("token_id"), "{status:?}");
    api.revoke_token(owner, Token::TokenId("a".into()), end + 10)
        .await
        .expect("extending one in force is not a new one");
    server.clock.advance(61);
    api.revoke_token(owner, Token::TokenId("c".into()), 0)
        .await
        .expect("ended ones make room");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn confirmations_are_bounded_in_time_and_in_number() {
    use crate::support::cells::{Cells, NodeConfig};
    let cells = Cells::start_on(
        crate::support::redis::Topology::start(false),
        |c| NodeConfig {
            max_confirmations: 1,
            ..c
        },
        |c| c,
    )
    .await;
    let (a, owner, topology) = (&cells.a, cells.owner.clone(), &cells.topology);
    let api = Api::of(a).await;
    let confirm = |timeout_ms| {
        let mut admin = api.admin();
        let owner = owner.clone();
        async move {
            admin
                .confirm_revocation(with_key(
                    pb::ConfirmRevocationRequest {
                        revocation_id: String::new(),
                        timeout_ms,
                    },
                    &owner,
                ))
                .await
        }
    };
    let too_long = confirm(60_000).await.expect_err("over the longest wait");
    assert_eq!(too_long.code(), Code::InvalidArgument, "{too_long:?}");
    assert!(too_long.message().contains("30000"), "{too_long:?}");
    // Cell b cannot apply anything while its replica is paused: a confirmation waits.
    use pb::revoke_token_request::Token;
    topology.replica_b.pause();
    api.revoke_token(&owner, Token::Id(uuid::Uuid::now_v7().to_string()), 0)
        .await
        .expect("revoke");
    let waiting = tokio::spawn(confirm(3000));
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let second = confirm(100)
        .await
        .expect_err("only one at a time on this node");
    assert_eq!(second.code(), Code::ResourceExhausted, "{second:?}");
    let first = waiting.await.expect("join").expect("the first answers");
    topology.replica_b.resume();
    assert!(!first.get_ref().confirmed, "{first:?}");
    assert_eq!(first.get_ref().pending_cells, ["b"]);
    confirm(5000).await.expect("free again");
}
