//! The two promises, at their edges: a revoked credential is refused everywhere, and nothing
//! derived from a key can do more than that key can do right now. Each test names the hole it
//! closes (issue "Revoked means refused, and nobody holds more than their maker"); each runs
//! over gRPC against the embedded server, and, where cells matter, against two cells over real
//! Redis (a primary and a replica per cell), some while a replica is cut off, paused or
//! restarted.

use std::time::{Duration, Instant};

use authcell::proto::authcell::v1 as pb;
use authcell::proto::permission_rules as pr;
use tonic::transport::Channel;
use tonic::Code;

use crate::support::api::*;
use crate::support::cells::{until_revoked, wait_for, Cells, Node, NodeConfig};
use crate::support::redis::Topology;
use crate::support::statements::read_cache;
use crate::support::*;

const ALLOWED: pb::Reason = pb::Reason::Unspecified;
const READ: pb::Action = pb::Action::CacheRead;
const WRITE: pb::Action = pb::Action::CacheWrite;

/// The claims of a credential, without verifying it (tests only).
fn claims(credential: &str) -> serde_json::Value {
    use base64::Engine;
    let payload = credential.split('.').nth(1).expect("jws payload");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .expect("base64url");
    serde_json::from_slice(&bytes).expect("json claims")
}

// --- 1. RevokeIssuedBefore(now) covers the current second and millisecond --------------------

#[tokio::test]
async fn issued_before_now_refuses_a_key_minted_in_the_same_second_embedded() {
    let server = TestServer::start().await;
    let api = Api::of_server(&server).await;
    let (key, _) = api
        .create_key(&server.owner_key, "viewer", None)
        .await
        .expect("key");
    assert_eq!(api.reason(&key, READ, "c").await, ALLOWED, "precondition");
    // The manual clock does not move: the cut and the key share their second and millisecond.
    let cut = api
        .revoke_issued_before(&server.owner_key)
        .await
        .expect("cut");
    let iatm = claims(&key)["iatm"].as_u64().expect("iatm");
    assert!(
        cut.issued_before_epoch_millis > iatm,
        "{cut:?} covers {iatm}"
    );
    assert_eq!(
        cut.issued_before_epoch_seconds,
        cut.issued_before_epoch_millis / 1000
    );
    assert_eq!(api.reason(&key, READ, "c").await, pb::Reason::Revoked);
    assert_eq!(
        api.reason(&server.owner_key, READ, "c").await,
        pb::Reason::Revoked,
        "the owner key that made the cut existed too"
    );
    // A credential minted after the call works, in the same millisecond as the cut.
    let (fresh_owner, _) = server
        .authority
        .bootstrap(ACCOUNT, true)
        .await
        .expect("new owner key");
    assert_eq!(api.reason(&fresh_owner, READ, "c").await, ALLOWED);
    let (after, _) = api
        .create_key(&fresh_owner, "viewer", None)
        .await
        .expect("key after");
    assert_eq!(api.reason(&after, READ, "c").await, ALLOWED);
    // And a second cut, still in the same millisecond, takes them too.
    let again = api
        .revoke_issued_before(&fresh_owner)
        .await
        .expect("cut again");
    assert!(again.issued_before_epoch_millis > cut.issued_before_epoch_millis);
    assert_eq!(api.reason(&after, READ, "c").await, pb::Reason::Revoked);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issued_before_now_is_exact_in_both_cells() {
    let cells = Cells::start(false).await;
    let (a, b) = (Api::of(&cells.a).await, Api::of(&cells.b).await);
    for round in 0..5 {
        let (owner, _) = cells
            .a
            .authority
            .bootstrap("acme", true)
            .await
            .expect("owner");
        let (key, _) = a.create_key(&owner, "viewer", None).await.expect("key");
        let (token_key, _) = b
            .create_key(&owner, "operator", None)
            .await
            .expect("key on b");
        let token = b
            .mint(&token_key, vec![read_cache("c")], "")
            .await
            .expect("token");
        assert_eq!(
            b.reason(&key, READ, "c").await,
            ALLOWED,
            "round {round}: precondition"
        );
        let cut = a.revoke_issued_before(&owner).await.expect("cut");
        for (cell, node) in [("a", &cells.a), ("b", &cells.b)] {
            for credential in [&key, &token, &owner] {
                let took = until_revoked(node, credential, Duration::from_secs(5)).await;
                assert!(took < Duration::from_secs(5), "round {round}, cell {cell}");
            }
        }
        let (after_owner, _) = cells
            .a
            .authority
            .bootstrap("acme", true)
            .await
            .expect("owner");
        let (after, _) = b
            .create_key(&after_owner, "viewer", None)
            .await
            .expect("key after");
        assert!(claims(&after)["iatm"].as_u64().expect("iatm") >= cut.issued_before_epoch_millis);
        assert_eq!(a.reason(&after, READ, "c").await, ALLOWED, "round {round}");
        assert_eq!(b.reason(&after, READ, "c").await, ALLOWED, "round {round}");
    }
}

// --- 2. RevokeToken never reaches what the caller could not have made --------------------------

#[tokio::test]
async fn revoke_token_cannot_kill_a_stronger_key_or_what_it_made() {
    let server = TestServer::start().await;
    let api = Api::of_server(&server).await;
    revoke_token_rules(&api, server.owner_key.clone()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoke_token_cannot_kill_a_stronger_key_or_what_it_made_over_redis() {
    let cells = Cells::start(false).await;
    let api = Api::of(&cells.a).await;
    revoke_token_rules(&api, cells.owner.clone()).await;
}

async fn revoke_token_rules(api: &Api, owner: String) {
    let owner_id = api.key_id_of(&owner).await;
    let (operator, _) = api
        .create_key(&owner, "operator", None)
        .await
        .expect("operator");
    let owner_token = api
        .mint(&owner, vec![read_cache("c")], "shared")
        .await
        .expect("token");
    let owner_token_id = api.key_id_of(&owner_token).await;
    let operator_token = api
        .mint(&operator, vec![read_cache("c")], "shared")
        .await
        .expect("token");
    let operator_token_id = api.key_id_of(&operator_token).await;
    for credential in [&owner, &owner_token, &operator_token] {
        assert_eq!(
            api.reason(credential, READ, "c").await,
            ALLOWED,
            "precondition"
        );
    }
    use pb::revoke_token_request::Token;

    // The owner key itself: the same error RevokeGlobalApiKey gives the operator.
    let by_token = api
        .revoke_token(&operator, Token::Id(owner_id.clone()), 0)
        .await
        .expect_err("an operator cannot revoke the owner key");
    let by_key = api
        .revoke_key(&operator, &owner_id)
        .await
        .expect_err("nor here");
    assert_eq!(by_token.code(), Code::PermissionDenied, "{by_token:?}");
    assert_eq!(by_token.code(), by_key.code());
    assert_eq!(by_token.message(), by_key.message());
    assert_eq!(api.reason(&owner, READ, "c").await, ALLOWED);
    let listed = api.describe(&owner, &owner_id).await;
    assert_eq!(listed.status, pb::KeyStatus::Active as i32);

    // A token the owner minted: the operator's revocation does not reach it; its own does.
    api.revoke_token(&operator, Token::Id(owner_token_id.clone()), 0)
        .await
        .expect("accepted, scoped to what the operator made");
    assert_eq!(api.reason(&owner_token, READ, "c").await, ALLOWED);
    api.revoke_token(&operator, Token::Id(operator_token_id), 0)
        .await
        .expect("its own token");
    assert_eq!(
        api.reason(&operator_token, READ, "c").await,
        pb::Reason::Revoked
    );

    // The same for token ids: the operator's revocation of "shared" spares the owner's token.
    let operator_token2 = api
        .mint(&operator, vec![read_cache("c")], "t2")
        .await
        .expect("token");
    let owner_token2 = api
        .mint(&owner, vec![read_cache("c")], "t2")
        .await
        .expect("token");
    api.revoke_token(&operator, Token::TokenId("t2".into()), 0)
        .await
        .expect("token id");
    assert_eq!(
        api.reason(&operator_token2, READ, "c").await,
        pb::Reason::Revoked
    );
    assert_eq!(api.reason(&owner_token2, READ, "c").await, ALLOWED);
    // The owner's reaches every token of the account.
    api.revoke_token(&owner, Token::TokenId("t2".into()), 0)
        .await
        .expect("owner token id");
    assert_eq!(
        api.reason(&owner_token2, READ, "c").await,
        pb::Reason::Revoked
    );
    api.revoke_token(&owner, Token::Id(owner_token_id), 0)
        .await
        .expect("owner revokes its token");
    assert_eq!(
        api.reason(&owner_token, READ, "c").await,
        pb::Reason::Revoked
    );

    // A role-bound key is not RevokeToken's to revoke, even for the owner.
    let (viewer, viewer_id) = api
        .create_key(&owner, "viewer", None)
        .await
        .expect("viewer");
    let status = api
        .revoke_token(&owner, Token::Id(viewer_id.clone()), 0)
        .await
        .expect_err("role key");
    assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
    assert!(
        status.message().contains("RevokeGlobalApiKey"),
        "{status:?}"
    );
    assert_eq!(api.reason(&viewer, READ, "c").await, ALLOWED);
}

#[tokio::test]
async fn revoke_token_of_an_sdk_key_needs_its_powers_and_marks_its_record() {
    let server = TestServer::start().await;
    let api = Api::of_server(&server).await;
    let owner = server.owner_key.clone();
    // The revoker may manage keys and read cache `c`, nothing more.
    let (revoker, _) = api.limited_key(&owner, "revokers").await;
    // An SDK key that writes every cache: more than the revoker could have made.
    let strong = api
        .sdk_key(&owner, vec![cache_write_all()], None)
        .await
        .expect("sdk key");
    let strong_id = api.key_id_of(&strong.api_key).await;
    use pb::revoke_token_request::Token;
    let status = api
        .revoke_token(&revoker, Token::Id(strong_id.clone()), 0)
        .await
        .expect_err("stronger than the revoker");
    assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
    assert_eq!(api.reason(&strong.api_key, READ, "c").await, ALLOWED);

    let weak = api
        .sdk_key(&owner, vec![read_cache("c")], None)
        .await
        .expect("sdk key");
    let weak_id = api.key_id_of(&weak.api_key).await;
    api.revoke_token(&revoker, Token::Id(weak_id.clone()), 0)
        .await
        .expect("within the revoker's powers");
    assert_eq!(
        api.reason(&weak.api_key, READ, "c").await,
        pb::Reason::Revoked
    );
    let info = api.describe(&owner, &weak_id).await;
    assert_eq!(info.status, pb::KeyStatus::Revoked as i32, "{info:?}");
    assert!(info.revoked_at_epoch_seconds.is_some());
}

// --- 3. A refresh never outlives the maker -------------------------------------------------------

#[tokio::test]
async fn refresh_fails_once_the_maker_expired_and_never_extends_past_it() {
    let server = TestServer::start().await;
    let api = Api::of_server(&server).await;
    let maker_expiry = server.clock_now() + 600;
    let (maker, _) = api
        .create_key(&server.owner_key, "operator", Some(maker_expiry))
        .await
        .expect("maker");
    let made = api
        .sdk_key(&maker, vec![read_cache("c")], None)
        .await
        .expect("sdk key");
    assert_eq!(
        made.valid_until, maker_expiry,
        "capped at the maker's expiry"
    );
    // Before the maker expires, a refresh works and stays capped.
    server.clock.advance(300);
    let refreshed = api
        .refresh(&made.api_key, &made.refresh_token)
        .await
        .expect("refresh while the maker lives");
    assert!(
        refreshed.valid_until <= maker_expiry,
        "{} > {maker_expiry}",
        refreshed.valid_until
    );
    assert_eq!(api.reason(&refreshed.api_key, READ, "c").await, ALLOWED);
    // After it, the refresh is an authentication error, again and again.
    server.clock.advance(400);
    for _ in 0..2 {
        let status = api
            .refresh(&refreshed.api_key, &refreshed.refresh_token)
            .await
            .expect_err("maker expired");
        assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
    }
    assert_ne!(api.reason(&refreshed.api_key, READ, "c").await, ALLOWED);
}

#[tokio::test]
async fn refresh_fails_once_the_maker_was_revoked() {
    let server = TestServer::start().await;
    let api = Api::of_server(&server).await;
    refresh_after_the_maker_was_revoked(&api, &server.owner_key).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresh_fails_once_the_maker_was_revoked_or_expired_over_redis() {
    let cells = Cells::start(false).await;
    let (a, b) = (Api::of(&cells.a).await, Api::of(&cells.b).await);
    refresh_after_the_maker_was_revoked(&a, &cells.owner).await;
    // A maker that expires in two seconds (real time: Redis nodes use the primary's clock).
    let expiry = authcell::clock::wall_ms() / 1000 + 2;
    let (maker, _) = a
        .create_key(&cells.owner, "operator", Some(expiry))
        .await
        .expect("maker");
    let made = a
        .sdk_key(&maker, vec![read_cache("c")], None)
        .await
        .expect("sdk key");
    assert_eq!(made.valid_until, expiry);
    tokio::time::sleep(Duration::from_millis(3100)).await;
    let status = b
        .refresh(&made.api_key, &made.refresh_token)
        .await
        .expect_err("maker expired, refreshed in the other cell");
    assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
}

async fn refresh_after_the_maker_was_revoked(api: &Api, owner: &str) {
    let (maker, maker_id) = api
        .create_key(owner, "operator", None)
        .await
        .expect("maker");
    let made = api
        .sdk_key(&maker, vec![read_cache("c")], Some(60))
        .await
        .expect("sdk key");
    api.revoke_key(owner, &maker_id)
        .await
        .expect("revoke maker");
    let status = api
        .refresh(&made.api_key, &made.refresh_token)
        .await
        .expect_err("maker revoked");
    assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
}

// --- 4. Derived credentials follow their root role at every check ---------------------------

async fn narrowing_a_role_narrows_everything_derived(a: &Api, b: &Api, owner: &str) {
    let role_id = a
        .create_role(
            owner,
            "writers",
            role_rules(
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
            ),
        )
        .await;
    let (writer, _) = a
        .create_key(owner, &role_id, None)
        .await
        .expect("writer key");
    let sdk = a
        .sdk_key(&writer, vec![cache_write_all()], None)
        .await
        .expect("sdk key");
    let token = a
        .mint(&writer, vec![cache_write_all()], "")
        .await
        .expect("token");
    let grandchild = a
        .mint(&sdk.api_key, vec![cache_write_all()], "")
        .await
        .expect("grandchild");
    for api in [a, b] {
        for credential in [&writer, &sdk.api_key, &token, &grandchild] {
            // Cell b may still be applying the role.
            wait_for(
                "precondition: allowed",
                Duration::from_secs(5),
                async || api.reason(credential, WRITE, "other").await == ALLOWED,
            )
            .await;
        }
    }
    // Narrowed to reading one cache.
    a.update_role(
        owner,
        &role_id,
        role_rules(
            vec![cache_rule(&[pr::CacheApiPermissions::CacheRead], Some("c"))],
            vec![],
        ),
    )
    .await;
    let deadline = Instant::now() + Duration::from_secs(5);
    for (cell, api) in [("a", a), ("b", b)] {
        for credential in [&writer, &sdk.api_key, &token, &grandchild] {
            loop {
                let reason = api.reason(credential, WRITE, "other").await;
                if reason == pb::Reason::Permission {
                    break;
                }
                assert!(Instant::now() < deadline, "cell {cell}: still {reason:?}");
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            assert_eq!(
                api.reason(credential, WRITE, "c").await,
                pb::Reason::Permission
            );
            assert_eq!(
                api.reason(credential, READ, "c").await,
                ALLOWED,
                "cell {cell}"
            );
            assert_eq!(
                api.reason(credential, READ, "other").await,
                pb::Reason::Permission
            );
        }
    }
    // Nothing derived can mint, or refresh into, more than the narrowed role.
    let status = a
        .mint(&sdk.api_key, vec![cache_write_all()], "")
        .await
        .expect_err("mint beyond the root role");
    assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
    let refreshed = a
        .refresh(&sdk.api_key, &sdk.refresh_token)
        .await
        .expect("refresh");
    assert_eq!(
        a.reason(&refreshed.api_key, WRITE, "other").await,
        pb::Reason::Permission
    );
    assert_eq!(a.reason(&refreshed.api_key, READ, "c").await, ALLOWED);
    // An ip_filter added to the role applies to everything derived, too.
    a.update_role(
        owner,
        &role_id,
        role_rules(
            vec![cache_rule(&[pr::CacheApiPermissions::CacheRead], Some("c"))],
            vec![only_from("10.0.0.0/8")],
        ),
    )
    .await;
    // (The grandchild died with the refresh: its parent was the key the refresh replaced.)
    assert_eq!(a.reason(&grandchild, READ, "c").await, pb::Reason::Revoked);
    let deadline = Instant::now() + Duration::from_secs(5);
    for api in [a, b] {
        for credential in [&token, &refreshed.api_key] {
            loop {
                let reason = api.reason(credential, READ, "c").await;
                if reason == pb::Reason::IpNotAllowed {
                    break;
                }
                assert!(Instant::now() < deadline, "still {reason:?}");
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
}

#[tokio::test]
async fn narrowing_a_role_narrows_everything_derived_embedded() {
    let server = TestServer::start().await;
    let api = Api::of_server(&server).await;
    let again = Api::of_server(&server).await;
    narrowing_a_role_narrows_everything_derived(&api, &again, &server.owner_key).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn narrowing_a_role_narrows_everything_derived_in_both_cells() {
    let cells = Cells::start(false).await;
    let (a, b) = (Api::of(&cells.a).await, Api::of(&cells.b).await);
    narrowing_a_role_narrows_everything_derived(&a, &b, &cells.owner).await;
}

// --- 5. Token-id revocations end ------------------------------------------------------------------

#[tokio::test]
async fn a_token_id_revocation_holds_until_its_end_then_the_id_is_free() {
    let server = TestServer::start().await;
    let api = Api::of_server(&server).await;
    use pb::revoke_token_request::Token;
    let end = server.clock_now() + 120;
    let before = api
        .mint(&server.owner_key, vec![read_cache("c")], "x")
        .await
        .expect("token");
    api.revoke_token(&server.owner_key, Token::TokenId("x".into()), end)
        .await
        .expect("revoke token id");
    assert_eq!(api.reason(&before, READ, "c").await, pb::Reason::Revoked);
    let during = api
        .mint(&server.owner_key, vec![read_cache("c")], "x")
        .await
        .expect("token");
    assert_eq!(api.reason(&during, READ, "c").await, pb::Reason::Revoked);
    server.clock.advance(121);
    let after = api
        .mint(&server.owner_key, vec![read_cache("c")], "x")
        .await
        .expect("token");
    assert_eq!(
        api.reason(&after, READ, "c").await,
        ALLOWED,
        "the id can be used again"
    );
    // An end in the past is refused; 0 means the longest token lifetime from now.
    let status = api
        .revoke_token(
            &server.owner_key,
            Token::TokenId("y".into()),
            server.clock_now(),
        )
        .await
        .expect_err("end in the past");
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert!(status.message().contains("expires_at_epoch_seconds"));
    api.revoke_token(&server.owner_key, Token::TokenId("y".into()), 0)
        .await
        .expect("default end");
    let y = api
        .mint(&server.owner_key, vec![read_cache("c")], "y")
        .await
        .expect("token");
    server
        .clock
        .advance(u64::from(authcell::authority::vending::MAX_DISPOSABLE_SECS) - 1);
    let y2 = api
        .mint(&server.owner_key, vec![read_cache("c")], "y")
        .await
        .expect("token");
    assert_eq!(
        api.reason(&y2, READ, "c").await,
        pb::Reason::Revoked,
        "held 25 hours"
    );
    server.clock.advance(2);
    let y3 = api
        .mint(&server.owner_key, vec![read_cache("c")], "y")
        .await
        .expect("token");
    assert_eq!(api.reason(&y3, READ, "c").await, ALLOWED);
    drop(y);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_id_revocations_end_in_every_cell_and_leave_redis() {
    let cells = Cells::start(false).await;
    let (a, b) = (Api::of(&cells.a).await, Api::of(&cells.b).await);
    use pb::revoke_token_request::Token;
    let now = authcell::clock::wall_ms() / 1000;
    let token = b
        .mint(&cells.owner, vec![read_cache("c")], "x")
        .await
        .expect("token");
    a.revoke_token(&cells.owner, Token::TokenId("x".into()), now + 2)
        .await
        .expect("revoke");
    until_revoked(&cells.b, &token, Duration::from_secs(5)).await;
    let revoked = |server: &crate::support::redis::RedisServer| {
        server.command(&["HKEYS", "authcell:revoked"])
    };
    assert!(
        revoked(&cells.topology.primary).contains("x"),
        "precondition"
    );
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let fresh = b
        .mint(&cells.owner, vec![read_cache("c")], "x")
        .await
        .expect("token");
    assert_eq!(b.reason(&fresh, READ, "c").await, ALLOWED);
    assert_eq!(a.reason(&fresh, READ, "c").await, ALLOWED);
    // Redis drops it too (the next token-id revocation sweeps ended ones first), so a node
    // that loads later never sees it.
    a.revoke_token(&cells.owner, Token::TokenId("other".into()), 0)
        .await
        .expect("another");
    let left = revoked(&cells.topology.primary);
    assert!(!left.contains("\u{0}x\u{0}"), "{left:?}");
    let mut cells = cells;
    cells.restart_b().await;
    let b = Api::of(&cells.b).await;
    assert_eq!(b.reason(&fresh, READ, "c").await, ALLOWED);
}

// --- 6. A cell cut off from the primary knows it ------------------------------------------------

async fn health(node: &Node) -> i32 {
    tonic_health::pb::health_client::HealthClient::new(node.channel().await)
        .check(tonic_health::pb::HealthCheckRequest {
            service: String::new(),
        })
        .await
        .expect("health")
        .into_inner()
        .status
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cell_cut_off_from_the_primary_turns_stale_and_catches_up() {
    use tonic_health::pb::health_check_response::ServingStatus;
    let topology = Topology::start(false);
    let pem = crate::support::cells::signing_pem();
    let primary = topology.primary.url();
    let a = Node::start(NodeConfig::new(
        &pem,
        "a",
        &primary,
        &topology.replica_a.url(),
    ))
    .await;
    let b_deny = Node::start(NodeConfig {
        stale_policy: authcell::verifier::StalePolicy::Deny,
        max_staleness: Duration::from_secs(3),
        ..NodeConfig::new(&pem, "b", &primary, &topology.replica_b.url())
    })
    .await;
    let b_serve = Node::start(NodeConfig {
        max_staleness: Duration::from_secs(3),
        ..NodeConfig::new(&pem, "b", &primary, &topology.replica_b.url())
    })
    .await;
    let (owner, _) = a
        .authority
        .bootstrap("acme", false)
        .await
        .expect("bootstrap");
    let api_a = Api::of(&a).await;
    let (key, key_id) = api_a.create_key(&owner, "viewer", None).await.expect("key");
    let (deny, serve) = (Api::of(&b_deny).await, Api::of(&b_serve).await);
    wait_for("key reaches b", Duration::from_secs(5), async || {
        deny.reason(&key, READ, "c").await == ALLOWED
    })
    .await;
    wait_for(
        "precondition: health SERVING",
        Duration::from_secs(10),
        async || health(&b_deny).await == ServingStatus::Serving as i32,
    )
    .await;

    // Cell b's replica follows a dead primary: it keeps answering with its old data.
    let port = topology.primary.port().to_string();
    assert_eq!(
        topology.replica_b.command(&["REPLICAOF", "127.0.0.1", "1"]),
        "OK"
    );
    api_a
        .revoke_key(&owner, &key_id)
        .await
        .expect("revoke in cell a");
    until_revoked(&a, &key, Duration::from_secs(2)).await;
    let cut_at = Instant::now();
    wait_for(
        "deny policy refuses as stale",
        Duration::from_secs(8),
        async || deny.reason(&key, READ, "c").await == pb::Reason::StaleState,
    )
    .await;
    assert!(
        cut_at.elapsed() >= Duration::from_secs(2),
        "not before the bound"
    );
    wait_for("health NOT_SERVING", Duration::from_secs(3), async || {
        health(&b_deny).await == ServingStatus::NotServing as i32
    })
    .await;
    // Serve policy keeps answering from what it knows, and says it is stale.
    assert_eq!(serve.reason(&key, READ, "c").await, ALLOWED);
    assert!(b_serve.authority.verifier().is_stale());
    let metrics = b_serve.metrics().render();
    assert!(
        metrics.contains("authcell_revocation_view_stale 1"),
        "{metrics}"
    );

    // The link returns: the cell catches up and serves again, without a restart.
    assert_eq!(
        topology
            .replica_b
            .command(&["REPLICAOF", "127.0.0.1", &port]),
        "OK"
    );
    for (name, node) in [("deny", &b_deny), ("serve", &b_serve)] {
        let took = until_revoked(node, &key, Duration::from_secs(10)).await;
        eprintln!("{name}: revoked after the link returned within {took:?}");
    }
    wait_for("health SERVING again", Duration::from_secs(5), async || {
        health(&b_deny).await == ServingStatus::Serving as i32
    })
    .await;
    assert!(!b_serve.authority.verifier().is_stale());
}

// --- Suspected: a replica resyncing from empty, and a gap hidden by trimming -------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_restarted_empty_never_empties_the_view() {
    let mut cells = Cells::start(false).await;
    let a = Api::of(&cells.a).await;
    let (key, key_id) = a
        .create_key(&cells.owner, "viewer", None)
        .await
        .expect("key");
    a.revoke_key(&cells.owner, &key_id).await.expect("revoke");
    until_revoked(&cells.b, &key, Duration::from_secs(5)).await;
    // Replica b restarts without persistence while its primary cannot serve the full resync:
    // it answers from an empty dataset.
    cells.topology.replica_b.stop();
    cells.topology.primary.pause();
    cells.topology.replica_b.start_again_unlinked();
    let empty = cells
        .topology
        .replica_b
        .command(&["EXISTS", "authcell:revoked"]);
    assert_eq!(empty, "0", "precondition: the replica is empty");
    let b = Api::of(&cells.b).await;
    let watched = Instant::now();
    while watched.elapsed() < Duration::from_secs(3) {
        assert_eq!(b.reason(&key, READ, "c").await, pb::Reason::Revoked);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    cells.topology.primary.resume();
    cells.topology.replica_b.wait_for_link_up();
    // Still refused after the resync, and new revocations flow again.
    assert_eq!(b.reason(&key, READ, "c").await, pb::Reason::Revoked);
    let (other, other_id) = a
        .create_key(&cells.owner, "viewer", None)
        .await
        .expect("key");
    a.revoke_key(&cells.owner, &other_id).await.expect("revoke");
    until_revoked(&cells.b, &other, Duration::from_secs(10)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_cut_off_while_the_stream_moved_on_never_misses_a_trimmed_revocation() {
    // AOF everywhere: cell b's replica comes back with the data it had (the node's position),
    // then, its primary's backlog being too small for a partial resync, takes a full resync that
    // replaces that data at once with the trimmed stream.
    let topology = Topology::start(true);
    for setting in [
        ["stream-node-max-entries", "10"],
        ["repl-backlog-size", "16384"],
    ] {
        let [name, value] = setting;
        assert_eq!(
            topology.primary.command(&["CONFIG", "SET", name, value]),
            "OK"
        );
    }
    let cells = Cells::start_on(
        topology,
        |c| NodeConfig {
            stream_max_len: 100,
            ..c
        },
        |c| c,
    )
    .await;
    let mut cells = cells;
    let owner = cells.owner.clone();
    let api = Api::of(&cells.a).await;
    let (key, key_id) = api.create_key(&owner, "viewer", None).await.expect("key");
    let api_b = Api::of(&cells.b).await;
    assert_eq!(api_b.reason(&key, READ, "c").await, ALLOWED, "precondition");
    cells.topology.replica_b.stop();
    api.revoke_key(&owner, &key_id).await.expect("revoke");
    // 150 more entries: the revocation is trimmed away, and more survivors (about 100) follow
    // it than were trimmed after cell b's position (about 50), so counting the survivors read
    // as "seen" would hide the gap.
    use pb::revoke_token_request::Token;
    for _ in 0..150 {
        api.revoke_token(&owner, Token::Id(uuid::Uuid::now_v7().to_string()), 0)
            .await
            .expect("filler revocation");
    }
    let stream = cells
        .topology
        .primary
        .command(&["XRANGE", "authcell:events", "-", "+"]);
    assert!(
        !stream.contains(&key_id),
        "precondition: the revocation was trimmed"
    );
    cells.topology.replica_b.start_again();
    let took = until_revoked(&cells.b, &key, Duration::from_secs(15)).await;
    eprintln!("revocation applied after the resync within {took:?}");
}

// --- 7. A node with a fast clock mints nothing that outlives a cut -----------------------------

/// One in-process node of `cell`, and an owner key of account `acme` bootstrapped through it
/// (the other cell's node is a real process in these tests).
async fn in_process_node(pem: &str, cell: &str, primary: &str, replica: &str) -> (Node, String) {
    let node = Node::start(NodeConfig::new(pem, cell, primary, replica)).await;
    let (owner, _) = node
        .authority
        .bootstrap("acme", false)
        .await
        .expect("bootstrap");
    (node, owner)
}

/// libfaketime's library (Debian's `faketime` package), or a failure with the install command.
fn libfaketime() -> String {
    let found = std::fs::read_dir("/usr/lib")
        .into_iter()
        .flatten()
        .flatten()
        .map(|dir| dir.path().join("faketime/libfaketime.so.1"))
        .find(|path| path.is_file());
    match found {
        Some(path) => path.to_string_lossy().into_owned(),
        None => panic!(
            "libfaketime not found: run `apt-get install -y faketime` (Debian/Ubuntu); ./scripts/test installs it"
        ),
    }
}

/// The real `authcell serve` binary as one node of a cell, killed on drop.
pub(crate) struct ProcessNode {
    pub(crate) child: std::process::Child,
    pub(crate) channel: Channel,
    dir: std::path::PathBuf,
}

impl ProcessNode {
    /// Starts the binary (with `env` added, e.g. libfaketime's) with the signing key `pem`,
    /// reading `replica`, and waits until it accepts connections. The process is the binary
    /// itself (no wrapper in between), so killing it on drop leaves nothing behind.
    pub(crate) async fn start(
        pem: &str,
        cell: &str,
        primary: &str,
        replica: &str,
        env: &[(&str, &str)],
        extra: &[&str],
    ) -> ProcessNode {
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("authcell-node-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let key_file = dir.join("signing.pem");
        std::fs::write(&key_file, pem).expect("write key");
        let port = free_port();
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_authcell"))
            .envs(env.iter().copied())
            .arg("serve")
            .args(["--listen", &format!("127.0.0.1:{port}"), "--cell", cell])
            .args(["--drain-seconds", "0"])
            .args(extra)
            .env("AUTHCELL_REDIS_URL", primary)
            .env("AUTHCELL_REDIS_READ_URL", replica)
            .env("AUTHCELL_SIGNING_KEY_FILE", &key_file)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start authcell serve");
        let deadline = Instant::now() + Duration::from_secs(30);
        let channel = loop {
            let url = format!("http://127.0.0.1:{port}");
            match Channel::from_shared(url).expect("url").connect().await {
                Ok(channel) => break channel,
                Err(e) => {
                    assert!(Instant::now() < deadline, "the node never listened: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        };
        ProcessNode {
            child,
            channel,
            dir,
        }
    }

    /// Sends a signal (`-STOP`, `-CONT`) to the process.
    pub(crate) fn signal(&self, signal: &str) {
        let status = std::process::Command::new("kill")
            .args([signal, &self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(status.success(), "kill {signal}");
    }
}

impl Drop for ProcessNode {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Reads a node's metrics page over plain HTTP.
fn metrics_page(port: u16) -> String {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).expect("metrics connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        .expect("request");
    let mut page = String::new();
    let _ = stream.read_to_string(&mut page);
    page
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("probe")
        .local_addr()
        .expect("addr")
        .port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_whose_clock_runs_a_minute_fast_mints_nothing_that_survives_a_cut() {
    let libfaketime = libfaketime();
    let (topology, pem) = (Topology::start(false), crate::support::cells::signing_pem());
    let primary = topology.primary.url();
    let (a, owner) = in_process_node(&pem, "a", &primary, &topology.replica_a.url()).await;
    // Cell b's node runs with its clock 60 s ahead of everyone else's.
    let metrics_port = free_port();
    let fast = ProcessNode::start(
        &pem,
        "b",
        &primary,
        &topology.replica_b.url(),
        &[("LD_PRELOAD", &libfaketime), ("FAKETIME", "+60s")],
        &["--metrics-listen", &format!("127.0.0.1:{metrics_port}")],
    )
    .await;
    let b = Api {
        channel: fast.channel.clone(),
    };
    let a_api = Api::of(&a).await;
    wait_for(
        "the fast node serves",
        Duration::from_secs(20),
        async || b.reason(&owner, READ, "c").await == ALLOWED,
    )
    .await;
    let page = metrics_page(metrics_port);
    let skew = page
        .lines()
        .find_map(|l| l.strip_prefix("authcell_clock_skew_seconds "))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .unwrap_or_else(|| panic!("no skew gauge in {page}"));
    assert!(
        (skew + 60.0).abs() < 5.0,
        "the node sees its clock 60 s ahead: {skew}"
    );

    // What the fast node mints carries the primary's time, not its own.
    let (key, _) = b
        .create_key(&owner, "operator", None)
        .await
        .expect("key on the fast node");
    let token = b
        .mint(&key, vec![read_cache("c")], "")
        .await
        .expect("token on the fast node");
    let real_now = authcell::clock::wall_ms() / 1000;
    for credential in [&key, &token] {
        let iat = claims(credential)["iat"].as_u64().expect("iat");
        assert!(
            iat.abs_diff(real_now) < 5,
            "iat {iat} vs real time {real_now}"
        );
        assert_eq!(
            a_api.reason(credential, READ, "c").await,
            ALLOWED,
            "precondition"
        );
    }
    // A cut made on a correct node takes them, on both nodes, now and after real time passes
    // the fast node's clock.
    a_api.revoke_issued_before(&owner).await.expect("cut");
    for api in [&a_api, &b] {
        for credential in [&key, &token] {
            wait_for("the cut applies", Duration::from_secs(5), async || {
                api.reason(credential, READ, "c").await == pb::Reason::Revoked
            })
            .await;
        }
    }
    // And the fast node's fresh credentials, minted after the cut, work everywhere.
    let (owner2, _) = a.authority.bootstrap("acme", true).await.expect("owner");
    let (after, _) = b
        .create_key(&owner2, "viewer", None)
        .await
        .expect("key after the cut");
    assert_eq!(a_api.reason(&after, READ, "c").await, ALLOWED);
    assert_eq!(b.reason(&after, READ, "c").await, ALLOWED);
    drop(fast);
}

// --- Confirmation never vouches for a node that went silent ------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_node_keeps_its_cell_unconfirmed_until_it_has_caught_up() {
    let (topology, pem) = (Topology::start(false), crate::support::cells::signing_pem());
    let primary = topology.primary.url();
    let (b, owner) = in_process_node(&pem, "b", &primary, &topology.replica_b.url()).await;
    // Cell a's only node, a real process under the serve policy.
    let a = ProcessNode::start(&pem, "a", &primary, &topology.replica_a.url(), &[], &[]).await;
    let api_a = Api {
        channel: a.channel.clone(),
    };
    let api_b = Api::of(&b).await;
    let (key, key_id) = api_b.create_key(&owner, "viewer", None).await.expect("key");
    wait_for("cell a serves", Duration::from_secs(20), async || {
        api_a.reason(&key, READ, "c").await == ALLOWED
    })
    .await;
    let confirm = |timeout_ms: u32, id: String| {
        let mut admin = api_b.admin();
        let owner = owner.clone();
        async move {
            admin
                .confirm_revocation(with_key(
                    pb::ConfirmRevocationRequest {
                        revocation_id: id,
                        timeout_ms,
                    },
                    &owner,
                ))
                .await
                .expect("confirm")
                .into_inner()
        }
    };
    // Frozen past the liveness window, then the key is revoked in cell b.
    a.signal("-STOP");
    tokio::time::sleep(Duration::from_millis(6000)).await;
    let id = b.revoke_key(&owner, &key_id).await.expect("revoke");
    let answer = confirm(1000, id.clone()).await;
    assert!(!answer.confirmed, "{answer:?}");
    assert_eq!(answer.pending_cells, ["a"], "{answer:?}");
    assert_eq!(answer.silent_cells, ["a"], "{answer:?}");
    assert_eq!(answer.confirmed_cells, ["b"], "{answer:?}");
    // Once it is back and caught up, the revocation is confirmed, and holds there.
    a.signal("-CONT");
    let answer = confirm(20_000, id).await;
    assert!(answer.confirmed, "{answer:?}");
    assert_eq!(answer.confirmed_cells, ["a", "b"], "{answer:?}");
    assert_eq!(api_a.reason(&key, READ, "c").await, pb::Reason::Revoked);
}
