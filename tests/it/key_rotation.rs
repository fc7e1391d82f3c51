//! RotateApiKey: a new key beside the old one for an overlap, then the old one revoked in every
//! cell by whichever node finds it due, in both stores.

use std::time::{Duration, Instant};

use authcell::proto::authcell::v1 as pb;
use tonic::transport::Channel;
use tonic::Code;

use crate::support::api::{cache_write_all, Api};
use crate::support::cells::{read, until_revoked, Cells, NodeConfig};
use crate::support::grpc::key_id_of;
use crate::support::redis::{RedisOptions, RedisServer};
use crate::support::*;

async fn rotate(
    channel: Channel,
    caller: &str,
    key_id: &str,
    overlap_seconds: u64,
) -> Result<pb::RotateApiKeyResponse, tonic::Status> {
    pb::admin_client::AdminClient::new(channel)
        .rotate_api_key(with_key(
            pb::RotateApiKeyRequest {
                key_id: key_id.into(),
                overlap_seconds,
                ..Default::default()
            },
            caller,
        ))
        .await
        .map(|r| r.into_inner())
}

async fn describe(channel: Channel, caller: &str, key_id: &str) -> pb::ApiKeyInfo {
    pb::admin_client::AdminClient::new(channel)
        .describe_api_key(with_key(
            pb::DescribeApiKeyRequest {
                key_id: key_id.into(),
            },
            caller,
        ))
        .await
        .expect("describe")
        .into_inner()
        .key
        .expect("key")
}

async fn audit(channel: Channel, caller: &str) -> Vec<pb::AuditEvent> {
    pb::admin_client::AdminClient::new(channel)
        .list_audit_events(with_key(
            pb::ListAuditEventsRequest {
                limit: 100,
                ..Default::default()
            },
            caller,
        ))
        .await
        .expect("audit")
        .into_inner()
        .events
}

async fn allowed(server: &TestServer, key: &str) -> pb::AuthorizeResponse {
    server
        .authorize(cache_check(key, pb::Action::CacheRead, "c", b"k"))
        .await
}

#[tokio::test]
async fn a_rotated_key_works_through_its_overlap_then_is_revoked() {
    let server = TestServer::start().await;
    let owner = server.owner_key.clone();
    let (old_key, old) = server.create_key(&owner, "viewer").await;
    let rotated = rotate(server.channel().await, &owner, &old.key_id, 2)
        .await
        .expect("rotate");
    let new = rotated.key.expect("new key");
    let old_info = rotated.rotated.expect("old key");
    assert_eq!(new.role_id, "viewer");
    assert_eq!(new.rotated_from, old.key_id);
    assert_eq!(old_info.rotated_to, new.key_id);
    // The overlap counts from the next whole second (never cut short).
    let revokes_at = old_info.revokes_at_epoch_seconds.expect("scheduled");
    assert!(
        (new.issued_at_epoch_seconds + 2..=new.issued_at_epoch_seconds + 3).contains(&revokes_at),
        "{revokes_at} for a key issued at {}",
        new.issued_at_epoch_seconds
    );
    assert_eq!(old_info.status, pb::KeyStatus::Active as i32);
    assert!(!rotated.endpoint.is_empty());
    // Both work during the overlap; describe shows the rotation.
    assert!(allowed(&server, &old_key).await.allowed);
    assert!(allowed(&server, &rotated.api_key).await.allowed);
    let described = describe(server.channel().await, &owner, &old.key_id).await;
    assert_eq!(described.rotated_to, new.key_id);
    assert_eq!(
        described.revokes_at_epoch_seconds,
        old_info.revokes_at_epoch_seconds
    );
    // One second in (the server's clock is manual), still both; and no scheduler tick revokes
    // it early.
    server.clock.advance(1);
    tokio::time::sleep(authcell::node::ROTATION_TICK * 2).await;
    assert!(allowed(&server, &old_key).await.allowed);
    // Past the overlap, the old key is revoked within a scheduler tick; the new one keeps
    // working.
    server.clock.advance(2);
    let started = Instant::now();
    loop {
        let verdict = allowed(&server, &old_key).await;
        if verdict.reason == pb::Reason::Revoked as i32 {
            break;
        }
        assert!(verdict.allowed, "{verdict:?}");
        assert!(
            started.elapsed() < authcell::node::ROTATION_TICK * 4,
            "not revoked a scheduler tick after the overlap"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(allowed(&server, &rotated.api_key).await.allowed);
    let described = describe(server.channel().await, &owner, &old.key_id).await;
    assert_eq!(described.status, pb::KeyStatus::Revoked as i32);
    let events = audit(server.channel().await, &owner).await;
    let of_old = |action: &str| {
        events
            .iter()
            .filter(|e| e.action == action && e.target == old.key_id)
            .count()
    };
    assert_eq!(of_old("key.rotated"), 1, "{events:?}");
    assert_eq!(of_old("key.revoked"), 1, "{events:?}");
    assert!(events
        .iter()
        .any(|e| e.action == "key.revoked" && e.actor_key_id == "system"));
}

#[tokio::test]
async fn rotating_with_no_overlap_revokes_the_old_key_at_once() {
    let server = TestServer::start().await;
    let owner = server.owner_key.clone();
    let (old_key, old) = server.create_key(&owner, "operator").await;
    let rotated = rotate(server.channel().await, &owner, &old.key_id, 0)
        .await
        .expect("rotate");
    let verdict = allowed(&server, &old_key).await;
    assert_eq!(verdict.reason, pb::Reason::Revoked as i32, "{verdict:?}");
    assert!(allowed(&server, &rotated.api_key).await.allowed);
    assert_eq!(
        rotated.rotated.expect("old").status,
        pb::KeyStatus::Revoked as i32
    );
    assert_eq!(rotated.key.expect("new").role_id, "operator");
}

#[tokio::test]
async fn rotation_refusals_name_the_rule() {
    let server = TestServer::start().await;
    let owner = server.owner_key.clone();
    let (_, key) = server.create_key(&owner, "viewer").await;
    rotate(server.channel().await, &owner, &key.key_id, 3600)
        .await
        .expect("first rotation");
    let again = rotate(server.channel().await, &owner, &key.key_id, 60)
        .await
        .expect_err("already rotating");
    assert_eq!(again.code(), Code::FailedPrecondition, "{again:?}");
    assert!(again.message().contains("already rotating"), "{again:?}");

    let (_, revoked) = server.create_key(&owner, "viewer").await;
    server.revoke_key(&owner, &revoked.key_id).await;
    let e = rotate(server.channel().await, &owner, &revoked.key_id, 0)
        .await
        .expect_err("revoked");
    assert_eq!(e.code(), Code::FailedPrecondition, "{e:?}");
    assert!(e.message().contains("revoked"), "{e:?}");

    let (_, live) = server.create_key(&owner, "viewer").await;
    let e = rotate(server.channel().await, &owner, &live.key_id, 31 * 24 * 3600)
        .await
        .expect_err("overlap too long");
    assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
    assert!(e.message().contains("overlap_seconds"), "{e:?}");

    let e = rotate(
        server.channel().await,
        &owner,
        &uuid::Uuid::now_v7().to_string(),
        0,
    )
    .await
    .expect_err("unknown");
    assert_eq!(e.code(), Code::NotFound, "{e:?}");

    // Nobody rotates a key stronger than their own.
    let (operator, _) = server.create_key(&owner, "operator").await;
    let (_, owner2) = server.create_key(&owner, "owner").await;
    let e = rotate(server.channel().await, &operator, &owner2.key_id, 0)
        .await
        .expect_err("operator rotating an owner key");
    assert_eq!(e.code(), Code::PermissionDenied, "{e:?}");
    // A viewer may not rotate at all.
    let (viewer, _) = server.create_key(&owner, "viewer").await;
    let e = rotate(server.channel().await, &viewer, &live.key_id, 0)
        .await
        .expect_err("viewer");
    assert_eq!(e.code(), Code::PermissionDenied, "{e:?}");
    // Nothing half-done: the refused rotations left their keys as they were.
    let live_now = describe(server.channel().await, &owner, &live.key_id).await;
    assert_eq!(live_now.rotated_to, "");
    assert_eq!(live_now.status, pb::KeyStatus::Active as i32);
}

/// The scheduled revocation does not depend on the node that accepted the rotation: with that
/// node stopped, the other cell's node revokes the old key at the end of the overlap, and it is
/// refused there; the audit log records it once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotation_outlives_the_node_that_accepted_it() {
    let Cells {
        topology: _topology,
        a,
        b,
        owner,
        ..
    } = Cells::start(false).await;
    let (old_key, old_id) = a.create_key(&owner, "viewer").await.expect("key");
    let rotated = rotate(a.channel().await, &owner, &old_id, 2)
        .await
        .expect("rotate");
    a.stop().await;
    // Still allowed in cell b during the overlap.
    assert!(b.authorize(read(&old_key)).await.allowed);
    until_revoked(&b, &old_key, Duration::from_secs(8)).await;
    assert!(b.authorize(read(&rotated.api_key)).await.allowed);
    let described = describe(b.channel().await, &owner, &old_id).await;
    assert_eq!(described.status, pb::KeyStatus::Revoked as i32);
    assert_eq!(described.rotated_to, rotated.key.expect("new").key_id);
    let events = audit(b.channel().await, &owner).await;
    let revoked = events
        .iter()
        .filter(|e| e.action == "key.revoked" && e.target == old_id)
        .count();
    assert_eq!(revoked, 1, "{events:?}");
    b.stop().await;
}

/// Redis down when a rotation is asked: the call fails as unavailable and nothing is
/// half-done (the rotation is one script: no new key, no schedule, the old key untouched).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotation_with_redis_down_leaves_nothing_half_done() {
    let mut redis = RedisServer::start(RedisOptions {
        aof: true,
        ..RedisOptions::default()
    });
    let pem = crate::support::cells::signing_pem();
    let url = redis.url();
    let node = crate::support::cells::Node::start(NodeConfig::new(&pem, "a", &url, &url)).await;
    let (owner, _) = node
        .authority
        .bootstrap("acme", false)
        .await
        .expect("bootstrap");
    let (old_key, old_id) = node.create_key(&owner, "viewer").await.expect("key");
    redis.stop();
    let e = rotate(node.channel().await, &owner, &old_id, 0)
        .await
        .expect_err("Redis is down");
    assert_eq!(e.code(), Code::Unavailable, "{e:?}");
    redis.start_again();
    // The old key is as it was: live, not rotating, and the only key the account made.
    crate::support::cells::wait_for("the node reconnects", Duration::from_secs(10), async || {
        rotate(node.channel().await, "not a key", &old_id, 0)
            .await
            .is_err_and(|e| e.code() == Code::Unauthenticated)
    })
    .await;
    let described = describe(node.channel().await, &owner, &old_id).await;
    assert_eq!(described.status, pb::KeyStatus::Active as i32);
    assert_eq!(described.rotated_to, "");
    assert!(node.authorize(read(&old_key)).await.allowed);
    let keys = pb::admin_client::AdminClient::new(node.channel().await)
        .list_api_keys(with_key(
            pb::ListApiKeysRequest {
                include_inactive: true,
                ..Default::default()
            },
            &owner,
        ))
        .await
        .expect("list")
        .into_inner()
        .keys;
    assert_eq!(
        keys.len(),
        2,
        "the owner key and the old key only: {keys:?}"
    );
    // And a rotation now goes through.
    let rotated = rotate(node.channel().await, &owner, &old_id, 0)
        .await
        .expect("rotate after Redis is back");
    assert!(node.authorize(read(&rotated.api_key)).await.allowed);
    until_revoked(&node, &old_key, Duration::from_secs(5)).await;
    node.stop().await;
}

/// ListApiKeys `expiring_within_seconds`: live keys that expire, or that a rotation revokes,
/// within the window; never revoked ones, nor keys that never lapse; the rule in the error
/// for a window past ten years. And `authcell keys list --expiring-within` asks the same.
#[tokio::test]
async fn keys_expiring_soon_are_listed_by_their_lapse() {
    let server = TestServer::start().await;
    let owner = server.owner_key.clone();
    let now = server.clock_now();
    let create = |days: u64| {
        let server = &server;
        let owner = owner.clone();
        async move {
            server
                .global_admin()
                .await
                .generate_global_api_key(with_key(
                    key_request("viewer", "expiring", Some(now + days * 86_400)),
                    &owner,
                ))
                .await
                .expect("key")
                .into_inner()
                .key_info
                .expect("info")
                .key_id
        }
    };
    let soon = create(3).await;
    let later = create(20).await;
    let revoked_soon = create(2).await;
    server.revoke_key(&owner, &revoked_soon).await;
    let (_, never) = server.create_key(&owner, "viewer").await;
    // A never-expiring key being rotated lapses at the end of its overlap.
    rotate(server.channel().await, &owner, &never.key_id, 86_400)
        .await
        .expect("rotate");
    let list = |seconds: u64| {
        let server = &server;
        let owner = owner.clone();
        async move {
            pb::admin_client::AdminClient::new(server.channel().await)
                .list_api_keys(with_key(
                    pb::ListApiKeysRequest {
                        expiring_within_seconds: seconds,
                        ..Default::default()
                    },
                    &owner,
                ))
                .await
                .map(|r| {
                    let mut ids: Vec<String> =
                        r.into_inner().keys.into_iter().map(|k| k.key_id).collect();
                    ids.sort();
                    ids
                })
        }
    };
    let mut week = vec![soon.clone(), never.key_id.clone()];
    week.sort();
    assert_eq!(list(7 * 86_400).await.expect("7 days"), week);
    let mut month = vec![soon.clone(), later.clone(), never.key_id.clone()];
    month.sort();
    assert_eq!(list(30 * 86_400).await.expect("30 days"), month);
    let e = list(11 * 366 * 86_400).await.expect_err("too far");
    assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
    assert!(e.message().contains("expiring_within_seconds"), "{e:?}");
}

/// A rotation asked again under the same `idempotency-key`, by the key that asked it, gets the
/// same new key (its answer may have been lost); anyone else, or another id, is refused as
/// already rotating. With no overlap the old key is revoked by then, and the retry still works.
#[tokio::test]
async fn a_rotation_retried_under_its_idempotency_key_returns_the_same_key() {
    let server = TestServer::start().await;
    let owner = server.owner_key.clone();
    let (operator, _) = server.create_key(&owner, "operator").await;
    let (_, old) = server.create_key(&owner, "viewer").await;
    let ask = |caller: String, id: &'static str| {
        let server = &server;
        let key_id = old.key_id.clone();
        async move {
            let mut request = with_key(
                pb::RotateApiKeyRequest {
                    key_id,
                    overlap_seconds: 0,
                    ..Default::default()
                },
                &caller,
            );
            request
                .metadata_mut()
                .insert("idempotency-key", id.parse().expect("ascii"));
            pb::admin_client::AdminClient::new(server.channel().await)
                .rotate_api_key(request)
                .await
                .map(|r| r.into_inner())
        }
    };
    let first = ask(operator.clone(), "rotate-1").await.expect("rotate");
    let again = ask(operator.clone(), "rotate-1")
        .await
        .expect("the same request again");
    assert_eq!(again.api_key, first.api_key, "the same key, signed again");
    assert_eq!(again.key, first.key);
    assert!(allowed(&server, &again.api_key).await.allowed);
    let other_id = ask(operator.clone(), "rotate-2")
        .await
        .expect_err("another request");
    assert_eq!(other_id.code(), Code::FailedPrecondition, "{other_id:?}");
    let other_caller = ask(owner.clone(), "rotate-1")
        .await
        .expect_err("another caller");
    assert_eq!(
        other_caller.code(),
        Code::FailedPrecondition,
        "{other_caller:?}"
    );
    assert!(!other_caller.message().contains(&first.api_key));
    // The same id for a different request (another overlap) is not a retry.
    let mut changed = with_key(
        pb::RotateApiKeyRequest {
            key_id: old.key_id.clone(),
            overlap_seconds: 60,
            ..Default::default()
        },
        &operator,
    );
    changed
        .metadata_mut()
        .insert("idempotency-key", "rotate-1".parse().expect("ascii"));
    let changed = pb::admin_client::AdminClient::new(server.channel().await)
        .rotate_api_key(changed)
        .await
        .expect_err("another request under the same id");
    assert_eq!(changed.code(), Code::FailedPrecondition, "{changed:?}");
    // Only one replacement exists.
    let keys = pb::admin_client::AdminClient::new(server.channel().await)
        .list_api_keys(with_key(pb::ListApiKeysRequest::default(), &owner))
        .await
        .expect("list")
        .into_inner()
        .keys;
    let replacements = keys.iter().filter(|k| k.rotated_from == old.key_id).count();
    assert_eq!(replacements, 1, "{keys:?}");
}

/// An SDK-made key rotates like a role-bound one: the replacement has its permissions, chain,
/// token id, description and lifetime, with a new refresh token; the old key works through the
/// overlap, can no longer be refreshed (that would fork a second successor), and is revoked at
/// the end. The replacement still dies with the key that made the original.
#[tokio::test]
async fn an_sdk_made_key_rotates_with_its_permissions_and_a_new_refresh_token() {
    let server = TestServer::start().await;
    let owner = server.owner_key.clone();
    let api = Api::of_server(&server).await;
    let (maker, maker_info) = server.create_key(&owner, "operator").await;
    let made = api
        .sdk_key(&maker, vec![statements::read_cache("c")], Some(3600))
        .await
        .expect("sdk key");
    let old_id = key_id_of(&made.api_key);
    let rotated = rotate(server.channel().await, &owner, &old_id, 60)
        .await
        .expect("rotate an SDK-made key");
    let new = rotated.key.clone().expect("new key");
    assert_eq!(new.kind, pb::KeyKind::Inline as i32);
    assert_eq!(new.description, "guarantee test");
    assert_eq!(new.rotated_from, old_id);
    assert_eq!(
        new.expires_at_epoch_seconds,
        Some(new.issued_at_epoch_seconds + 3600),
        "the same lifetime"
    );
    assert!(!rotated.refresh_token.is_empty(), "a new refresh token");
    // The same permissions: read on cache c, nothing else.
    let read = |key: String, cache: &'static str| {
        let server = &server;
        async move {
            server
                .authorize(cache_check(&key, pb::Action::CacheRead, cache, b"k"))
                .await
        }
    };
    assert!(read(rotated.api_key.clone(), "c").await.allowed);
    assert!(!read(rotated.api_key.clone(), "other").await.allowed);
    let write = server
        .authorize(cache_check(
            &rotated.api_key,
            pb::Action::CacheWrite,
            "c",
            b"k",
        ))
        .await;
    assert!(!write.allowed, "{write:?}");
    // The old key works through the overlap but can no longer be refreshed.
    assert!(read(made.api_key.clone(), "c").await.allowed);
    let e = api
        .refresh(&made.api_key, &made.refresh_token)
        .await
        .expect_err("refreshing a rotated key");
    assert_eq!(e.code(), Code::FailedPrecondition, "{e:?}");
    assert!(e.message().contains("rotated"), "{e:?}");
    // The replacement refreshes with its own refresh token.
    let refreshed = api
        .refresh(&rotated.api_key, &rotated.refresh_token)
        .await
        .expect("refresh the replacement");
    assert!(read(refreshed.api_key.clone(), "c").await.allowed);
    // End of the overlap: the old key is revoked by the scheduler.
    server.clock.advance(62);
    let started = Instant::now();
    while read(made.api_key.clone(), "c").await.allowed {
        assert!(
            started.elapsed() < authcell::node::ROTATION_TICK * 4,
            "not revoked a scheduler tick after the overlap"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The chain holds: revoking the key that made the original kills its rotated successor's
    // line too.
    assert!(read(refreshed.api_key.clone(), "c").await.allowed);
    server.revoke_key(&owner, &maker_info.key_id).await;
    let verdict = read(refreshed.api_key.clone(), "c").await;
    assert_eq!(verdict.reason, pb::Reason::Revoked as i32, "{verdict:?}");
}

/// Nobody rotates an SDK-made key that can do more than they can, and its replacement never
/// lives longer than it did.
#[tokio::test]
async fn an_sdk_made_key_is_rotated_only_by_a_key_that_holds_its_permissions() {
    let server = TestServer::start().await;
    let owner = server.owner_key.clone();
    let api = Api::of_server(&server).await;
    let made = api
        .sdk_key(&owner, vec![cache_write_all()], None)
        .await
        .expect("sdk key");
    let old_id = key_id_of(&made.api_key);
    let (reader, _) = api.limited_key(&owner, "reader").await;
    let e = rotate(server.channel().await, &reader, &old_id, 0)
        .await
        .expect_err("a weaker key");
    assert_eq!(e.code(), Code::PermissionDenied, "{e:?}");
    let still = describe(server.channel().await, &owner, &old_id).await;
    assert_eq!(still.rotated_to, "");

    let hour = api
        .sdk_key(&owner, vec![cache_write_all()], Some(3600))
        .await
        .expect("an SDK key made for an hour");
    let writer_id = key_id_of(&hour.api_key);
    let e = pb::admin_client::AdminClient::new(server.channel().await)
        .rotate_api_key(with_key(
            pb::RotateApiKeyRequest {
                key_id: writer_id.clone(),
                overlap_seconds: 0,
                lifetime_seconds: 3601,
            },
            &owner,
        ))
        .await
        .expect_err("longer than the key lived");
    assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
    assert!(e.message().contains("lifetime_seconds"), "{e:?}");
    let still = describe(server.channel().await, &owner, &writer_id).await;
    assert_eq!(still.rotated_to, "", "nothing half-done");
}

/// An SDK-made key's rotation retried under its idempotency-key returns the same key with a
/// new refresh token; the refresh token of the lost reply no longer works.
#[tokio::test]
async fn an_sdk_key_rotation_retried_returns_the_same_key_and_a_fresh_refresh_token() {
    let server = TestServer::start().await;
    let owner = server.owner_key.clone();
    let api = Api::of_server(&server).await;
    let made = api
        .sdk_key(&owner, vec![statements::read_cache("c")], Some(3600))
        .await
        .expect("sdk key");
    let ask = || {
        let server = &server;
        let mut request = with_key(
            pb::RotateApiKeyRequest {
                key_id: key_id_of(&made.api_key),
                overlap_seconds: 60,
                ..Default::default()
            },
            &owner,
        );
        request
            .metadata_mut()
            .insert("idempotency-key", "sdk-rotation-1".parse().expect("ascii"));
        async move {
            pb::admin_client::AdminClient::new(server.channel().await)
                .rotate_api_key(request)
                .await
                .map(|r| r.into_inner())
        }
    };
    let first = ask().await.expect("rotate");
    let retried = ask().await.expect("retry");
    let id = |r: &pb::RotateApiKeyResponse| r.key.as_ref().expect("key").key_id.clone();
    assert_eq!(id(&first), id(&retried), "the same new key");
    assert_ne!(first.refresh_token, retried.refresh_token);
    let e = api
        .refresh(&first.api_key, &first.refresh_token)
        .await
        .expect_err("the lost reply's refresh token");
    assert_eq!(e.code(), Code::Unauthenticated, "{e:?}");
    api.refresh(&retried.api_key, &retried.refresh_token)
        .await
        .expect("the retry's refresh token works");
}

/// A key entering its last week is audited once, by `system`, though every node of both cells
/// runs the check every tick.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_entering_its_last_week_is_audited_once_across_cells() {
    let Cells {
        topology: _topology,
        a,
        b,
        owner,
        ..
    } = Cells::start(false).await;
    let now = a.authority.now();
    // Lives a week and 3 s: it enters its last week 3 s from now.
    let key_id = authcell::proto::global_admin::global_admin_client::GlobalAdminClient::new(
        a.channel().await,
    )
    .generate_global_api_key(with_key(
        key_request("viewer", "expiring", Some(now + 7 * 86_400 + 3)),
        &owner,
    ))
    .await
    .expect("create")
    .into_inner()
    .key_info
    .expect("info")
    .key_id;
    let expiring = |events: &[pb::AuditEvent]| {
        events
            .iter()
            .filter(|e| e.action == "key.expiring" && e.target == key_id)
            .count()
    };
    let started = Instant::now();
    loop {
        let events = audit(b.channel().await, &owner).await;
        match expiring(&events) {
            0 => {}
            1 => {
                let event = events
                    .iter()
                    .find(|e| e.action == "key.expiring")
                    .expect("event");
                assert_eq!(event.actor_key_id, "system");
                assert!(event.detail.contains("rotate it"), "{event:?}");
                break;
            }
            n => panic!("{n} key.expiring events: {events:?}"),
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "no key.expiring event"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // More ticks of both nodes add nothing.
    tokio::time::sleep(authcell::node::ROTATION_TICK * 4).await;
    assert_eq!(expiring(&audit(a.channel().await, &owner).await), 1);
    a.stop().await;
    b.stop().await;
}
