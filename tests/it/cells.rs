//! Redis as the system of record, and revocation across regional cells, against real
//! `redis-server` processes: one primary and two replicas (cells a and b), one authcell node per
//! cell reading its own replica.

use std::sync::Arc;
use std::time::{Duration, Instant};

use authcell::clock::SystemClock;
use authcell::keyring::KeyRing;
use authcell::proto::authcell::v1 as pb;
use authcell::proto::global_admin as ga;
use authcell::verifier::StalePolicy;
use tonic::transport::Channel;
use tonic::Code;

use crate::support::cells::*;
use crate::support::redis::{RedisOptions, RedisServer, Topology};
use crate::support::statements::read_cache;
use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_revoked_in_cell_a_is_refused_in_cell_b_within_a_second() {
    let cells = Cells::start(false).await;
    let (key, key_id) = cells
        .a
        .create_key(&cells.owner, "operator")
        .await
        .expect("key");
    assert!(
        cells.b.authorize(read(&key)).await.allowed,
        "precondition: b allows it"
    );
    cells
        .a
        .revoke_key(&cells.owner, &key_id)
        .await
        .expect("revoke on a");
    // a refuses at once: its own mutation is applied to its view before the call returns.
    assert_eq!(
        cells.a.authorize(read(&key)).await.reason,
        pb::Reason::Revoked as i32
    );
    until_revoked(&cells.b, &key, Duration::from_secs(1)).await;
    // Every RPC on b refuses it too.
    let status = cells
        .b
        .create_key(&key, "viewer")
        .await
        .expect_err("revoked");
    assert_eq!(status.code(), Code::Unauthenticated);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cell_whose_replica_was_down_catches_up_with_every_revocation() {
    let mut cells = Cells::start(false).await;
    let mut credentials = Vec::new();
    for _ in 0..5 {
        credentials.push(
            cells
                .a
                .create_key(&cells.owner, "viewer")
                .await
                .expect("key"),
        );
    }
    let (operator, _) = cells
        .a
        .create_key(&cells.owner, "operator")
        .await
        .expect("operator");
    let token = cells.a.mint(&operator, "tid-1").await;
    cells.topology.replica_b.stop();
    for (_, key_id) in &credentials {
        cells
            .a
            .revoke_key(&cells.owner, key_id)
            .await
            .expect("revoke");
    }
    cells
        .a
        .admin()
        .await
        .revoke_token(with_key(
            pb::RevokeTokenRequest {
                token: Some(pb::revoke_token_request::Token::TokenId("tid-1".into())),
                expires_at_epoch_seconds: 0,
            },
            &cells.owner,
        ))
        .await
        .expect("revoke token id");
    // b cannot read its replica, yet keeps answering from its view (serve policy).
    let verdict = cells.b.authorize(read(&credentials[0].0)).await;
    assert!(verdict.allowed, "b still has the old state: {verdict:?}");
    cells.topology.replica_b.start_again();
    for (key, _) in &credentials {
        until_revoked(&cells.b, key, Duration::from_secs(10)).await;
    }
    until_revoked(&cells.b, &token, Duration::from_secs(5)).await;

    // A node restarted while revocations happen misses none either.
    let more: Vec<_> = {
        let mut v = Vec::new();
        for _ in 0..3 {
            v.push(
                cells
                    .a
                    .create_key(&cells.owner, "viewer")
                    .await
                    .expect("key"),
            );
        }
        v
    };
    let revoking = {
        let owner = cells.owner.clone();
        let a_addr = cells.a.addr;
        let ids: Vec<String> = more.iter().map(|(_, id)| id.clone()).collect();
        tokio::spawn(async move {
            let channel = Channel::from_shared(format!("http://{a_addr}"))
                .expect("url")
                .connect()
                .await
                .expect("connect");
            let mut client = ga::global_admin_client::GlobalAdminClient::new(channel);
            for id in ids {
                client
                    .revoke_global_api_key(with_key(
                        ga::RevokeGlobalApiKeyRequest { key_id: id },
                        &owner,
                    ))
                    .await
                    .expect("revoke");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    };
    cells.restart_b().await;
    revoking.await.expect("revocations");
    for (key, _) in more.iter().chain(credentials.iter()) {
        until_revoked(&cells.b, key, Duration::from_secs(5)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_is_lost_when_the_primary_restarts_with_aof() {
    let mut cells = Cells::start(true).await;
    let (kept, _) = cells
        .a
        .create_key(&cells.owner, "viewer")
        .await
        .expect("key");
    let (gone, gone_id) = cells
        .a
        .create_key(&cells.owner, "viewer")
        .await
        .expect("key");
    cells
        .a
        .revoke_key(&cells.owner, &gone_id)
        .await
        .expect("revoke");
    let role = cells
        .a
        .admin()
        .await
        .create_role(with_key(
            pb::CreateRoleRequest {
                name: "reader".into(),
                permissions: Some(reader_role()),
                description: String::new(),
            },
            &cells.owner,
        ))
        .await
        .expect("role")
        .into_inner()
        .role
        .expect("role");
    let (role_key, _) = cells
        .a
        .create_key(&cells.owner, &role.role_id)
        .await
        .expect("role key");

    cells.topology.primary.stop();
    cells.topology.primary.start_again();
    cells.topology.wait_for_links_up();
    // A fresh node loads everything from the restarted primary's replica.
    cells.restart_b().await;
    assert!(cells.b.authorize(read(&kept)).await.allowed);
    assert_eq!(
        cells.b.authorize(read(&gone)).await.reason,
        pb::Reason::Revoked as i32
    );
    assert!(
        cells.b.authorize(read(&role_key)).await.allowed,
        "the role survived"
    );
    let keys = cells
        .b
        .admin()
        .await
        .list_api_keys(with_key(
            pb::ListApiKeysRequest {
                include_inactive: true,
                ..Default::default()
            },
            &cells.owner,
        ))
        .await
        .expect("list")
        .into_inner()
        .keys;
    assert_eq!(keys.len(), 4, "owner, kept, gone, role key: {keys:?}");
}

fn reader_role() -> authcell::proto::permission_rules::PermissionSet {
    use authcell::proto::permission_rules as pr;
    pr::PermissionSet {
        kind: Some(pr::permission_set::Kind::Explicit(
            pr::ExplicitPermissions {
                rules: vec![pr::Rule {
                    kind: Some(pr::rule::Kind::CacheRule(pr::rule::CacheRule {
                        permissions: vec![pr::CacheApiPermissions::CacheRead as i32],
                        cache: Some(pr::rule::cache_rule::Cache::AllCaches(pr::All {})),
                        cache_item: Some(pr::rule::cache_rule::CacheItem::AllItems(pr::All {})),
                    })),
                }],
            },
        )),
        conditions: vec![],
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_reloads_in_full_when_the_stream_was_trimmed_past_it() {
    let topology = Topology::start(false);
    // Small stream nodes, so MAXLEN ~ trims promptly.
    topology
        .primary
        .command(&["CONFIG", "SET", "stream-node-max-entries", "4"]);
    let pem = signing_pem();
    let primary = topology.primary.url();
    let (url_a, url_b) = (topology.replica_a.url(), topology.replica_b.url());
    let mut small = NodeConfig::new(&pem, "a", &primary, &url_a);
    small.stream_max_len = 8;
    let a = Node::start(small).await;
    let mut b_config = NodeConfig::new(&pem, "b", &primary, &url_b);
    b_config.stream_max_len = 8;
    let mut topology = topology;
    let b = Node::start(b_config).await;
    let (owner, _) = a
        .authority
        .bootstrap("acme", false)
        .await
        .expect("bootstrap");
    let mut keys = Vec::new();
    for _ in 0..40 {
        keys.push(a.create_key(&owner, "viewer").await.expect("key"));
    }
    let before = b.sync_position();
    topology.replica_b.stop();
    for (_, id) in &keys {
        a.revoke_key(&owner, id).await.expect("revoke");
    }
    let len: usize = topology
        .primary
        .command(&["XLEN", "authcell:events"])
        .trim()
        .parse()
        .expect("xlen");
    assert!(
        len < 40,
        "precondition: the stream was trimmed ({len} entries left)"
    );
    topology.replica_b.start_again();
    for (key, _) in &keys {
        until_revoked(&b, key, Duration::from_secs(10)).await;
    }
    assert_ne!(b.sync_position(), before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_redis_down_checks_go_on_mutations_are_unavailable_and_state_is_exact_after() {
    let mut redis = RedisServer::start(RedisOptions {
        aof: true,
        ..RedisOptions::default()
    });
    let pem = signing_pem();
    let url = redis.url();
    let a = Node::start(NodeConfig::new(&pem, "a", &url, &url)).await;
    let (owner, _) = a
        .authority
        .bootstrap("acme", false)
        .await
        .expect("bootstrap");
    let (live, _) = a.create_key(&owner, "viewer").await.expect("key");
    let (dead, dead_id) = a.create_key(&owner, "viewer").await.expect("key");
    a.revoke_key(&owner, &dead_id).await.expect("revoke");

    redis.stop();
    assert!(
        a.authorize(read(&live)).await.allowed,
        "checks go on from the view"
    );
    assert_eq!(
        a.authorize(read(&dead)).await.reason,
        pb::Reason::Revoked as i32
    );
    let status = a
        .create_key(&owner, "viewer")
        .await
        .expect_err("redis is down");
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    assert!(
        status.message().contains("nothing was changed"),
        "{status:?}"
    );
    let (_, live_id) = {
        let keys = list_all(&a, &owner).await;
        assert!(keys.is_err(), "listing needs the store");
        (live.clone(), String::new())
    };
    let _ = live_id;
    let status = a
        .revoke_key(&owner, "01a20418-2b4d-7716-9f1c-e5698ea26e22")
        .await
        .expect_err("down");
    assert_eq!(status.code(), Code::Unavailable);

    redis.start_again();
    // The node reconnects by itself.
    let deadline = Instant::now() + Duration::from_secs(10);
    let (after, _) = loop {
        match a.create_key(&owner, "viewer").await {
            Ok(created) => break created,
            Err(status) => {
                assert_eq!(status.code(), Code::Unavailable, "{status:?}");
                assert!(Instant::now() < deadline, "no reconnection: {status:?}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    };
    assert!(a.authorize(read(&after)).await.allowed);
    let keys = list_all(&a, &owner).await.expect("list");
    // Exactly the mutations that succeeded: owner, live, dead (revoked), after.
    assert_eq!(keys.len(), 4, "{keys:?}");
    let revoked: Vec<_> = keys
        .iter()
        .filter(|k| k.status == pb::KeyStatus::Revoked as i32)
        .map(|k| k.key_id.clone())
        .collect();
    assert_eq!(revoked, vec![dead_id]);
}

async fn list_all(node: &Node, owner: &str) -> Result<Vec<pb::ApiKeyInfo>, tonic::Status> {
    let mut out = Vec::new();
    let mut next = String::new();
    let mut admin = node.admin().await;
    loop {
        let page = admin
            .list_api_keys(with_key(
                pb::ListApiKeysRequest {
                    limit: 100,
                    next_token: next.clone(),
                    include_inactive: true,
                    expiring_within_seconds: 0,
                },
                owner,
            ))
            .await?
            .into_inner();
        out.extend(page.keys);
        if page.next_token.is_empty() {
            return Ok(out);
        }
        next = page.next_token;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cascade_and_issued_before_reach_the_other_cell() {
    let cells = Cells::start(false).await;
    let (operator, operator_id) = cells
        .a
        .create_key(&cells.owner, "operator")
        .await
        .expect("key");
    let token = cells.a.mint(&operator, "").await;
    assert!(
        cells.b.authorize(read(&token)).await.allowed,
        "precondition"
    );
    cells
        .a
        .revoke_key(&cells.owner, &operator_id)
        .await
        .expect("revoke");
    until_revoked(&cells.b, &token, Duration::from_secs(1)).await;

    let (viewer, _) = cells
        .a
        .create_key(&cells.owner, "viewer")
        .await
        .expect("viewer");
    let other_token = cells.a.mint(&cells.owner, "").await;
    assert!(
        cells.b.authorize(read(&viewer)).await.allowed,
        "precondition"
    );
    tokio::time::sleep(Duration::from_millis(1100)).await; // issued-before has 1 s granularity
    cells
        .a
        .admin()
        .await
        .revoke_issued_before(with_key(
            pb::RevokeIssuedBeforeRequest::default(),
            &cells.owner,
        ))
        .await
        .expect("issued before");
    for credential in [&viewer, &other_token, &cells.owner] {
        until_revoked(&cells.b, credential, Duration::from_secs(1)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn confirmed_revocation_waits_for_every_cell_and_names_the_one_missing() {
    let mut cells = Cells::start(false).await;
    let (key, key_id) = cells
        .a
        .create_key(&cells.owner, "viewer")
        .await
        .expect("key");
    let revocation = cells
        .a
        .revoke_key(&cells.owner, &key_id)
        .await
        .expect("revoke");
    let confirmation = cells.a.confirm(&cells.owner, revocation).await;
    assert!(confirmation.confirmed, "{confirmation:?}");
    assert_eq!(confirmation.confirmed_cells, vec!["a", "b"]);
    // Confirmed means b refuses it now, with no waiting.
    assert_eq!(
        cells.b.authorize(read(&key)).await.reason,
        pb::Reason::Revoked as i32
    );

    let cells_view = cells
        .a
        .admin()
        .await
        .list_cells(with_key(pb::ListCellsRequest {}, &cells.owner))
        .await
        .expect("cells")
        .into_inner();
    assert_eq!(cells_view.nodes.len(), 2, "{cells_view:?}");
    assert!(cells_view.nodes.iter().all(|n| n.live));

    cells.topology.replica_b.stop();
    let (key2, key2_id) = cells
        .a
        .create_key(&cells.owner, "viewer")
        .await
        .expect("key");
    let revocation = cells
        .a
        .revoke_key(&cells.owner, &key2_id)
        .await
        .expect("revoke");
    let started = Instant::now();
    let confirmation = cells
        .a
        .admin()
        .await
        .confirm_revocation(with_key(
            pb::ConfirmRevocationRequest {
                revocation_id: revocation,
                timeout_ms: 1500,
            },
            &cells.owner,
        ))
        .await
        .expect("confirm")
        .into_inner();
    assert!(!confirmation.confirmed, "{confirmation:?}");
    assert_eq!(confirmation.pending_cells, vec!["b"]);
    assert_eq!(confirmation.confirmed_cells, vec!["a"]);
    assert!(started.elapsed() >= Duration::from_millis(1500));
    assert!(
        cells.b.authorize(read(&key2)).await.allowed,
        "b has not seen it"
    );
    cells.topology.replica_b.start_again();
    until_revoked(&cells.b, &key2, Duration::from_secs(10)).await;
    cells.b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_vending_rate_limit_holds_across_cells() {
    let topology = Topology::start(false);
    let pem = signing_pem();
    let primary = topology.primary.url();
    let (url_a, url_b) = (topology.replica_a.url(), topology.replica_b.url());
    let mut config_a = NodeConfig::new(&pem, "a", &primary, &url_a);
    config_a.vend_rate = 1;
    let mut config_b = NodeConfig::new(&pem, "b", &primary, &url_b);
    config_b.vend_rate = 1;
    let a = Node::start(config_a).await;
    let b = Node::start(config_b).await;
    let (owner, _) = a
        .authority
        .bootstrap("acme", false)
        .await
        .expect("bootstrap");
    let mut refused = None;
    for i in 0..6 {
        let node = if i % 2 == 0 { &a } else { &b };
        let result = authcell::proto::token::token_client::TokenClient::new(node.channel().await)
            .generate_disposable_token(authcell::proto::token::GenerateDisposableTokenRequest {
                expires: Some(
                    authcell::proto::token::generate_disposable_token_request::Expires {
                        valid_for_seconds: 60,
                    },
                ),
                auth_token: owner.clone(),
                permissions: Some(explicit(vec![read_cache("c")])),
                token_id: String::new(),
            })
            .await;
        if let Err(status) = result {
            refused = Some((i, status));
            break;
        }
    }
    let (i, status) = refused.expect("the shared burst of 3 is exhausted across both cells");
    assert_eq!(i, 3, "three calls (a, b, a) used the shared burst");
    assert_eq!(status.code(), Code::ResourceExhausted);
    assert!(status.metadata().get("retry-after").is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_views_are_denied_under_the_deny_policy_and_a_fresh_node_serves_nothing_before_loading(
) {
    let mut redis = RedisServer::start(RedisOptions::default());
    let pem = signing_pem();
    let url = redis.url();
    let mut config = NodeConfig::new(&pem, "a", &url, &url);
    config.stale_policy = StalePolicy::Deny;
    config.max_staleness = Duration::from_secs(2);
    let a = Node::start(config).await;
    let (owner, _) = a
        .authority
        .bootstrap("acme", false)
        .await
        .expect("bootstrap");
    assert!(
        a.authorize(read(&owner)).await.allowed,
        "precondition: fresh view serves"
    );
    redis.stop();
    let deadline = Instant::now() + Duration::from_secs(10);
    let verdict = loop {
        let verdict = a.authorize(read(&owner)).await;
        if !verdict.allowed {
            break verdict;
        }
        assert!(Instant::now() < deadline, "never went stale");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(verdict.reason, pb::Reason::StaleState as i32, "{verdict:?}");
    let health = tonic_health::pb::health_client::HealthClient::new(a.channel().await)
        .check(tonic_health::pb::HealthCheckRequest {
            service: "authcell.v1.Verifier".into(),
        })
        .await
        .expect("health")
        .into_inner();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let health_later = tonic_health::pb::health_client::HealthClient::new(a.channel().await)
        .check(tonic_health::pb::HealthCheckRequest {
            service: "authcell.v1.Verifier".into(),
        })
        .await
        .expect("health")
        .into_inner();
    assert!(
        health.status == tonic_health::ServingStatus::NotServing as i32
            || health_later.status == tonic_health::ServingStatus::NotServing as i32,
        "health shows it"
    );
    redis.start_again();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !a.authorize(read(&owner)).await.allowed {
        assert!(Instant::now() < deadline, "did not recover");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // A node that cannot load its view at all serves no check.
    let view = Arc::new(authcell::verifier::view::View::tracked());
    let ring = KeyRing::from_pem("t", &pem).expect("ring");
    let verifier = authcell::verifier::Verifier::new(ring, view, Arc::new(SystemClock));
    assert!(!verifier.is_serving());
    let decision = verifier.check(
        &owner,
        authcell::policy::Action::CacheRead,
        &Default::default(),
        None,
    );
    assert_eq!(
        decision.outcome.map_err(|(r, _)| r),
        Err(authcell::verifier::Reason::Unavailable)
    );
}
