//! The account key policy: only the owner sets it; every path that creates a credential
//! enforces it (GenerateGlobalApiKey, GenerateApiToken, RefreshApiToken,
//! GenerateDisposableToken, RotateApiKey), the official SDK sees invalid-argument, existing
//! keys that break it are reported (not revoked), and every cell enforces it.

use std::time::{Duration, Instant};

use authcell::proto::authcell::v1 as pb;
use authcell::proto::token;
use momento::auth::{DisposableTokenScopes, ExpiresIn};
use momento::{AuthClient, CredentialProvider, MomentoErrorCode};
use tonic::transport::Channel;
use tonic::Code;

use crate::support::api::Api;
use crate::support::cells::Cells;
use crate::support::grpc::key_id_of;
use crate::support::*;

const DAY: u64 = 86_400;

fn policy(require_expiry: bool, key: u64, sdk: u64, disposable: u64) -> pb::KeyPolicy {
    let limit = |v: u64| (v > 0).then_some(v);
    pb::KeyPolicy {
        require_expiry,
        max_key_lifetime_seconds: limit(key),
        max_sdk_key_lifetime_seconds: limit(sdk),
        max_disposable_token_lifetime_seconds: limit(disposable),
    }
}

async fn set_policy(
    channel: Channel,
    caller: &str,
    policy: pb::KeyPolicy,
) -> Result<pb::KeyPolicyResponse, tonic::Status> {
    pb::admin_client::AdminClient::new(channel)
        .set_key_policy(with_key(
            pb::SetKeyPolicyRequest {
                policy: Some(policy),
            },
            caller,
        ))
        .await
        .map(|r| r.into_inner())
}

async fn get_policy(
    channel: Channel,
    caller: &str,
) -> Result<pb::KeyPolicyResponse, tonic::Status> {
    pb::admin_client::AdminClient::new(channel)
        .get_key_policy(with_key(pb::GetKeyPolicyRequest {}, caller))
        .await
        .map(|r| r.into_inner())
}

async fn role_key(
    channel: Channel,
    caller: &str,
    expires_at: Option<u64>,
) -> Result<String, tonic::Status> {
    use authcell::proto::global_admin as ga;
    use ga::generate_global_api_key_request::{Expires, Expiry, Never};
    ga::global_admin_client::GlobalAdminClient::new(channel)
        .generate_global_api_key(with_key(
            ga::GenerateGlobalApiKeyRequest {
                role_id: "viewer".into(),
                description: "policy test".into(),
                expiry: Some(match expires_at {
                    None => Expiry::Never(Never {}),
                    Some(at) => Expiry::Expires(Expires {
                        expiration_epoch_seconds: at,
                    }),
                }),
            },
            caller,
        ))
        .await
        .map(|r| r.into_inner().api_key)
}

async fn disposable(channel: Channel, caller: &str, secs: u32) -> Result<String, tonic::Status> {
    token::token_client::TokenClient::new(channel)
        .generate_disposable_token(token::GenerateDisposableTokenRequest {
            expires: Some(token::generate_disposable_token_request::Expires {
                valid_for_seconds: secs,
            }),
            auth_token: caller.into(),
            permissions: Some(explicit(vec![statements::read_cache("c")])),
            token_id: String::new(),
        })
        .await
        .map(|r| r.into_inner().api_key)
}

async fn rotate(
    channel: Channel,
    caller: &str,
    key_id: &str,
    lifetime_seconds: u64,
) -> Result<pb::RotateApiKeyResponse, tonic::Status> {
    pb::admin_client::AdminClient::new(channel)
        .rotate_api_key(with_key(
            pb::RotateApiKeyRequest {
                key_id: key_id.into(),
                overlap_seconds: 0,
                lifetime_seconds,
            },
            caller,
        ))
        .await
        .map(|r| r.into_inner())
}

/// The error names the code, the rule and its limit.
fn refused<T: std::fmt::Debug>(
    result: Result<T, tonic::Status>,
    code: Code,
    words: &[&str],
) -> tonic::Status {
    let status = result.expect_err("refused by the key policy");
    assert_eq!(status.code(), code, "{status:?}");
    for word in words {
        assert!(status.message().contains(word), "{word:?} in {status:?}");
    }
    status
}

#[tokio::test]
async fn only_the_owner_sets_the_policy_and_bad_limits_are_named() {
    let server = TestServer::start().await;
    let owner = server.owner_key.clone();
    let (operator, _) = server.create_key(&owner, "operator").await;
    let (viewer, _) = server.create_key(&owner, "viewer").await;
    for caller in [&operator, &viewer] {
        refused(
            set_policy(server.channel().await, caller, policy(true, 0, 0, 0)).await,
            Code::PermissionDenied,
            &["AccountWrite"],
        );
    }
    // Anyone who may list keys reads it (empty at first).
    let read = get_policy(server.channel().await, &viewer)
        .await
        .expect("a viewer reads the policy");
    assert_eq!(read.policy, Some(policy(false, 0, 0, 0)));
    refused(
        set_policy(server.channel().await, &owner, policy(false, 0, 0, 90_001)).await,
        Code::InvalidArgument,
        &["policy.max_disposable_token_lifetime_seconds", "90000"],
    );
    refused(
        set_policy(
            server.channel().await,
            &owner,
            policy(false, 101 * 365 * DAY, 0, 0),
        )
        .await,
        Code::InvalidArgument,
        &["policy.max_key_lifetime_seconds"],
    );
    // Nothing was set by the refusals.
    let read = get_policy(server.channel().await, &owner)
        .await
        .expect("get");
    assert_eq!(read.policy, Some(policy(false, 0, 0, 0)));
    // The owner's change is audited.
    set_policy(server.channel().await, &owner, policy(true, 30 * DAY, 0, 0))
        .await
        .expect("owner sets");
    let events = pb::admin_client::AdminClient::new(server.channel().await)
        .list_audit_events(with_key(
            pb::ListAuditEventsRequest {
                limit: 10,
                ..Default::default()
            },
            &owner,
        ))
        .await
        .expect("audit")
        .into_inner()
        .events;
    assert!(
        events
            .iter()
            .any(|e| e.action == "key_policy.set" && e.detail.contains("require_expiry")),
        "{events:?}"
    );
}

/// Every creation path refuses what the policy does not allow, naming the rule and the limit,
/// and allows what it does.
#[tokio::test]
async fn every_creation_path_enforces_the_policy() {
    let server = TestServer::start().await;
    let owner = server.owner_key.clone();
    let api = Api::of_server(&server).await;
    // Made before the policy: a never-expiring viewer key and a 2-hour SDK key.
    let (_, old_role_key) = server.create_key(&owner, "viewer").await;
    let old_sdk = api
        .sdk_key(&owner, vec![statements::read_cache("c")], Some(7200))
        .await
        .expect("sdk key before the policy");

    let report = set_policy(
        server.channel().await,
        &owner,
        policy(true, 30 * DAY, 3600, 600),
    )
    .await
    .expect("set");
    // Existing keys are reported, not revoked: the owner key and the viewer key never expire,
    // the SDK key lives 2 h.
    let reported: Vec<&str> = report
        .violations
        .iter()
        .map(|v| v.key.as_ref().expect("key").key_id.as_str())
        .collect();
    assert_eq!(report.violations_total, 3, "{report:?}");
    assert!(reported.contains(&old_role_key.key_id.as_str()));
    let old_sdk_id = key_id_of(&old_sdk.api_key);
    let sdk_violation = report
        .violations
        .iter()
        .find(|v| v.key.as_ref().is_some_and(|k| k.key_id == old_sdk_id))
        .expect("the SDK key is reported");
    assert!(
        sdk_violation
            .reason
            .contains("max_sdk_key_lifetime_seconds = 3600"),
        "{sdk_violation:?}"
    );
    let check = |key: String| {
        let server = &server;
        async move {
            server
                .authorize(cache_check(&key, pb::Action::CacheRead, "c", b"k"))
                .await
                .allowed
        }
    };
    assert!(check(old_sdk.api_key.clone()).await, "not revoked");

    let now = server.clock_now();
    // GenerateGlobalApiKey.
    refused(
        role_key(server.channel().await, &owner, None).await,
        Code::InvalidArgument,
        &["expiry", "require_expiry"],
    );
    refused(
        role_key(server.channel().await, &owner, Some(now + 31 * DAY)).await,
        Code::InvalidArgument,
        &["expiry", "max_key_lifetime_seconds = 2592000"],
    );
    role_key(server.channel().await, &owner, Some(now + 29 * DAY))
        .await
        .expect("within the policy");
    // GenerateApiToken.
    refused(
        api.sdk_key(&owner, vec![statements::read_cache("c")], None)
            .await,
        Code::InvalidArgument,
        &["expiry", "require_expiry"],
    );
    refused(
        api.sdk_key(&owner, vec![statements::read_cache("c")], Some(3601))
            .await,
        Code::InvalidArgument,
        &["expiry", "max_sdk_key_lifetime_seconds = 3600"],
    );
    let fits = api
        .sdk_key(&owner, vec![statements::read_cache("c")], Some(3600))
        .await
        .expect("within the policy");
    // GenerateDisposableToken.
    refused(
        disposable(server.channel().await, &owner, 601).await,
        Code::InvalidArgument,
        &[
            "expires.valid_for_seconds",
            "max_disposable_token_lifetime_seconds = 600",
        ],
    );
    let token = disposable(server.channel().await, &owner, 600)
        .await
        .expect("within the policy");
    assert!(check(token).await);
    // RefreshApiToken: the old key's 2 h lifetime carries over, which the policy refuses; a
    // key within it refreshes.
    refused(
        api.refresh(&old_sdk.api_key, &old_sdk.refresh_token).await,
        Code::FailedPrecondition,
        &["max_sdk_key_lifetime_seconds = 3600", "GenerateApiToken"],
    );
    api.refresh(&fits.api_key, &fits.refresh_token)
        .await
        .expect("a key within the policy refreshes");
    // RotateApiKey: the never-expiring key's lifetime carries over (refused), a lifetime named
    // beyond the limit is refused, one within it works.
    refused(
        rotate(server.channel().await, &owner, &old_role_key.key_id, 0).await,
        Code::FailedPrecondition,
        &["require_expiry", "lifetime_seconds"],
    );
    refused(
        rotate(
            server.channel().await,
            &owner,
            &old_role_key.key_id,
            31 * DAY,
        )
        .await,
        Code::InvalidArgument,
        &["lifetime_seconds", "max_key_lifetime_seconds"],
    );
    let rotated = rotate(
        server.channel().await,
        &owner,
        &old_role_key.key_id,
        7 * DAY,
    )
    .await
    .expect("a lifetime within the policy");
    let new = rotated.key.expect("new");
    assert_eq!(
        new.expires_at_epoch_seconds,
        Some(new.issued_at_epoch_seconds + 7 * DAY)
    );
    // Clearing the policy allows everything again.
    let cleared = set_policy(server.channel().await, &owner, policy(false, 0, 0, 0))
        .await
        .expect("clear");
    assert_eq!(cleared.violations_total, 0);
    role_key(server.channel().await, &owner, None)
        .await
        .expect("no policy");
}

/// The official Rust SDK, unmodified, asking for a token longer than the policy allows, gets
/// an error it maps to invalid-argument (and one within it works).
#[tokio::test]
async fn the_official_sdk_sees_a_policy_refusal_as_invalid_argument() {
    let server = TestServer::start().await;
    let owner = server.owner_key.clone();
    set_policy(server.channel().await, &owner, policy(false, 0, 0, 600))
        .await
        .expect("set");
    let provider = CredentialProvider::from_api_key_v2(&owner, "localhost")
        .expect("v2 key")
        .insecure_endpoint_override(&server.url());
    let client = AuthClient::builder()
        .credential_provider(provider)
        .build()
        .expect("client");
    let e = client
        .generate_disposable_token(
            DisposableTokenScopes::cache_key_read_only("c", "k"),
            ExpiresIn::minutes(20),
        )
        .await
        .expect_err("longer than the policy");
    assert_eq!(
        e.error_code,
        MomentoErrorCode::InvalidArgumentError,
        "{e:?}"
    );
    assert!(
        format!("{e:?}").contains("max_disposable_token_lifetime_seconds"),
        "{e:?}"
    );
    client
        .generate_disposable_token(
            DisposableTokenScopes::cache_key_read_only("c", "k"),
            ExpiresIn::minutes(10),
        )
        .await
        .expect("within the policy");
}

/// A policy set in cell a binds in cell b within the propagation bound, and a node that starts
/// later loads it with the rest of its view.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_cell_enforces_the_policy() {
    let mut cells = Cells::start(false).await;
    let owner = cells.owner.clone();
    set_policy(cells.a.channel().await, &owner, policy(false, 0, 0, 300))
        .await
        .expect("set in cell a");
    // Refused at once in cell a (the node that took it applied it).
    refused(
        disposable(cells.a.channel().await, &owner, 301).await,
        Code::InvalidArgument,
        &["max_disposable_token_lifetime_seconds = 300"],
    );
    // In cell b once the event arrives.
    let started = Instant::now();
    loop {
        match disposable(cells.b.channel().await, &owner, 301).await {
            Err(e) if e.code() == Code::InvalidArgument => break,
            Err(e) => panic!("{e:?}"),
            Ok(_) => {}
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "cell b still vends past the policy"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // A node started afterwards has it from its first load; GetKeyPolicy reads it there too.
    cells.restart_b().await;
    refused(
        disposable(cells.b.channel().await, &owner, 301).await,
        Code::InvalidArgument,
        &["max_disposable_token_lifetime_seconds = 300"],
    );
    let read = get_policy(cells.b.channel().await, &owner)
        .await
        .expect("get in cell b");
    assert_eq!(read.policy, Some(policy(false, 0, 0, 300)));
}
