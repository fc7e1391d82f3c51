//! Custom roles over gRPC: create, update, delete, list, and the delegation rule.
//!
//! Every test talks to a real server over loopback. Negative tests first show that the same
//! call succeeds when only the one thing under test is changed back, so they fail for the
//! intended reason. Time moves only through the server's manual clock.

use crate::support::grpc::*;
use authcell::proto::authcell::v1 as pb;
use authcell::proto::global_admin as ga;
use authcell::proto::permission_rules as pr;
use tonic::Code;

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
