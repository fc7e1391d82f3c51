//! The audit log: every lifecycle event recorded with who, what, when and from where, readable
//! through authcell.v1.Admin/ListAuditEvents, in the embedded store and in Redis.

use authcell::proto::authcell::v1 as pb;
use authcell::proto::global_admin as ga;
use tonic::transport::Channel;
use tonic::Code;

use crate::support::cells::{Node, NodeConfig};
use crate::support::redis::{RedisOptions, RedisServer};
use crate::support::statements::read_cache;
use crate::support::*;

async fn list(
    channel: Channel,
    key: &str,
    request: pb::ListAuditEventsRequest,
) -> Result<pb::ListAuditEventsResponse, tonic::Status> {
    pb::admin_client::AdminClient::new(channel)
        .list_audit_events(with_key(request, key))
        .await
        .map(|r| r.into_inner())
}

async fn all_events(channel: Channel, key: &str) -> Vec<pb::AuditEvent> {
    let mut out = Vec::new();
    let mut next = String::new();
    loop {
        let page = list(
            channel.clone(),
            key,
            pb::ListAuditEventsRequest {
                limit: 2,
                next_token: next.clone(),
                ..Default::default()
            },
        )
        .await
        .expect("list audit");
        assert!(page.events.len() <= 2);
        out.extend(page.events);
        if page.next_token.is_empty() {
            return out;
        }
        next = page.next_token;
    }
}

/// Drives every lifecycle operation through gRPC and checks the log, newest first.
async fn lifecycle_is_audited(channel: Channel, owner: &str, owner_id: &str) {
    let mut admin = pb::admin_client::AdminClient::new(channel.clone());
    let mut global = ga::global_admin_client::GlobalAdminClient::new(channel.clone());
    let created = global
        .generate_global_api_key(with_key(key_request("viewer", "audited", None), owner))
        .await
        .expect("create")
        .into_inner();
    let key_id = created.key_info.expect("info").key_id;
    global
        .revoke_global_api_key(with_key(
            ga::RevokeGlobalApiKeyRequest {
                key_id: key_id.clone(),
            },
            owner,
        ))
        .await
        .expect("revoke");
    let role = admin
        .create_role(with_key(
            pb::CreateRoleRequest {
                name: "audited-role".into(),
                permissions: Some(authcell::policy::proto::permission_set_to_proto(
                    &authcell::policy::PermissionSet::rules(vec![authcell::policy::Rule::Auth(
                        authcell::policy::Ops::READ,
                    )]),
                )),
                description: String::new(),
            },
            owner,
        ))
        .await
        .expect("role")
        .into_inner()
        .role
        .expect("role")
        .role_id;
    admin
        .update_role(with_key(
            pb::UpdateRoleRequest {
                role_id: role.clone(),
                description: Some("changed".into()),
                ..Default::default()
            },
            owner,
        ))
        .await
        .expect("update");
    admin
        .delete_role(with_key(
            pb::DeleteRoleRequest {
                role_id: role.clone(),
            },
            owner,
        ))
        .await
        .expect("delete");
    admin
        .revoke_token(with_key(
            pb::RevokeTokenRequest {
                token: Some(pb::revoke_token_request::Token::TokenId("t-1".into())),
                expires_at_epoch_seconds: 0,
            },
            owner,
        ))
        .await
        .expect("revoke token");
    let minted = authcell::proto::auth::auth_client::AuthClient::new(channel.clone())
        .generate_api_token(authcell::proto::auth::GenerateApiTokenRequest {
            expiry: Some(
                authcell::proto::auth::generate_api_token_request::Expiry::Never(
                    authcell::proto::auth::generate_api_token_request::Never {},
                ),
            ),
            auth_token: owner.into(),
            permissions: Some(explicit(vec![read_cache("c")])),
            token_id: String::new(),
            description: String::new(),
        })
        .await
        .expect("sdk key")
        .into_inner();
    authcell::proto::auth::auth_client::AuthClient::new(channel.clone())
        .refresh_api_token(authcell::proto::auth::RefreshApiTokenRequest {
            api_key: minted.api_key,
            refresh_token: minted.refresh_token,
        })
        .await
        .expect("refresh");

    let events = all_events(channel.clone(), owner).await;
    let actions: Vec<&str> = events.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(
        actions,
        vec![
            "key.refreshed",
            "key.created",
            "token.revoked",
            "role.deleted",
            "role.updated",
            "role.created",
            "key.revoked",
            "key.created",
            "key.created",
        ],
        "newest first, every lifecycle event: {events:#?}"
    );
    let ids: Vec<&str> = events.iter().map(|e| e.id.as_str()).collect();
    let mut sorted = ids.clone();
    sorted.sort_by(|a, b| authcell::store::StreamId::cmp_text(b, a));
    assert_eq!(ids, sorted, "ordered newest first");
    let revoked = &events[6];
    assert_eq!(revoked.target, key_id);
    assert_eq!(revoked.actor_key_id, owner_id);
    assert_eq!(revoked.peer_address, "127.0.0.1", "from where");
    assert!(revoked.at_epoch_millis > 0);
    let bootstrap = &events[8];
    assert_eq!(bootstrap.actor_key_id, "bootstrap");
    assert_eq!(events[3].target, role);
    assert_eq!(events[2].target, "token_id t-1");
    for event in &events {
        assert!(
            !event.detail.contains('.') || !event.detail.contains("eyJ"),
            "no secrets: {event:?}"
        );
    }

    // Time range: from the role's creation up to and including the token revocation.
    let from = events[5].at_epoch_millis;
    let until = events[2].at_epoch_millis + 1;
    let window = list(
        channel.clone(),
        owner,
        pb::ListAuditEventsRequest {
            since_epoch_millis: from,
            until_epoch_millis: until,
            ..Default::default()
        },
    )
    .await
    .expect("window")
    .events;
    assert!(window
        .iter()
        .all(|e| e.at_epoch_millis >= from && e.at_epoch_millis < until));
    assert!(
        window.iter().any(|e| e.action == "role.created"),
        "{window:?}"
    );
    assert!(
        window.iter().any(|e| e.action == "token.revoked"),
        "{window:?}"
    );
    assert!(
        window
            .iter()
            .all(|e| e.action != "key.revoked" || e.at_epoch_millis >= from),
        "{window:?}"
    );

    let status = list(
        channel.clone(),
        owner,
        pb::ListAuditEventsRequest {
            next_token: "garbage".into(),
            ..Default::default()
        },
    )
    .await
    .expect_err("bad token");
    assert_eq!(status.code(), Code::InvalidArgument);
    let status = list(
        channel,
        owner,
        pb::ListAuditEventsRequest {
            since_epoch_millis: 10,
            until_epoch_millis: 5,
            ..Default::default()
        },
    )
    .await
    .expect_err("inverted window");
    assert_eq!(status.code(), Code::InvalidArgument);
}

#[tokio::test]
async fn the_embedded_store_audits_every_lifecycle_event() {
    let server = TestServer::start().await;
    let owner_id = server
        .authorize(cache_check(
            &server.owner_key,
            pb::Action::CacheRead,
            "c",
            b"k",
        ))
        .await
        .key_id;
    lifecycle_is_audited(server.channel().await, &server.owner_key, &owner_id).await;
    // Another account sees none of it.
    let (other, _) = server
        .authority
        .bootstrap("other", false)
        .await
        .expect("other");
    let theirs = all_events(server.channel().await, &other).await;
    assert_eq!(theirs.len(), 1, "only its own bootstrap: {theirs:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_redis_store_audits_every_lifecycle_event() {
    let redis = RedisServer::start(RedisOptions::default());
    let pem = authcell::keyring::generate_pem().expect("pem").to_string();
    let url = redis.url();
    let node = Node::start(NodeConfig::new(&pem, "a", &url, &url)).await;
    let (owner, record) = node
        .authority
        .bootstrap("acme", false)
        .await
        .expect("bootstrap");
    lifecycle_is_audited(node.channel().await, &owner, &record.key_id).await;
    let stream_len = redis.command(&["XLEN", "authcell:audit:acme"]);
    assert_eq!(stream_len.trim(), "9", "kept in a Redis stream");
    node.stop().await;
}
