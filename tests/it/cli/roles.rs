//! `authcell roles`, and permission files.

use super::*;

const READER_EU_V2: &str = r#"{
  "rules": [
    {"cache": {"permissions": ["read", "write"], "cache": "sessions"}},
    {"topic": {"permissions": ["read"], "cache": "*", "topic_prefix": "chat."}}
  ]
}"#;

#[tokio::test]
async fn roles_create_list_update_delete_in_human_mode() {
    let server = TestServer::start().await;
    let owner = server.owner_key.clone();
    let file = TempFile::new("reader-eu.json", READER_EU);

    let created = cli(
        &server,
        &owner,
        &[
            "roles",
            "create",
            "--name",
            "reader-eu",
            "--file",
            file.path(),
            "--description",
            "EU readers",
        ],
    )
    .await;
    let block = created.ok();
    assert_eq!(field(block, "name"), Some("reader-eu"));
    assert_eq!(field(block, "kind"), Some("custom"));
    assert_eq!(field(block, "description"), Some("EU readers"));
    assert_eq!(field(block, "ip filter"), Some("10.0.0.0/8"));
    let role_id = field(block, "role id").expect("role id").to_owned();
    assert!(
        block.contains("cache   read         cache=\"sessions\" key_prefix=\"user:\""),
        "{block}"
    );

    let listed = cli(&server, &owner, &["roles", "list"]).await;
    let table = listed.ok();
    for system in ["owner", "operator", "viewer"] {
        let line = row(table, system).unwrap_or_else(|| panic!("{system} in {table}"));
        assert_eq!(column(table, line, "KIND"), "system");
    }
    assert_eq!(
        column(table, row(table, "owner").expect("owner"), "RULES"),
        "super-user"
    );
    let line = row(table, &role_id).expect("the new role is listed");
    assert_eq!(column(table, line, "NAME"), "reader-eu");
    assert_eq!(column(table, line, "KIND"), "custom");
    assert_eq!(column(table, line, "RULES"), "1 rule, ip filter");
    assert_eq!(column(table, line, "DESCRIPTION"), "EU readers");

    // A key bound to the role, by the role's name; the key list shows the name.
    let key = cli(
        &server,
        &owner,
        &[
            "keys",
            "create",
            "--role",
            "reader-eu",
            "--description",
            "eu app",
        ],
    )
    .await;
    let key = key.ok().trim_end().to_owned();
    let mut check = cache_check(&key, pb::Action::CacheRead, "sessions", b"user:1");
    check.peer_address = "10.1.2.3".into();
    let verdict = server.authorize(check.clone()).await;
    assert!(verdict.allowed, "{verdict:?}");
    check.peer_address = "192.168.1.1".into();
    assert!(!server.authorize(check.clone()).await.allowed);
    let keys = cli(&server, &owner, &["keys", "list"]).await;
    let table = keys.ok();
    let line = row(table, &verdict.key_id).expect("listed");
    assert_eq!(column(table, line, "ROLE"), "reader-eu");

    // Update by name: rename, new description, new permissions.
    let file = TempFile::new("reader-eu-v2.json", READER_EU_V2);
    let updated = cli(
        &server,
        &owner,
        &[
            "roles",
            "update",
            "reader-eu",
            "--name",
            "reader-all",
            "--file",
            file.path(),
            "--description",
            "all readers",
        ],
    )
    .await;
    let block = updated.ok();
    assert_eq!(field(block, "role id"), Some(role_id.as_str()));
    assert_eq!(field(block, "name"), Some("reader-all"));
    assert_eq!(field(block, "description"), Some("all readers"));
    assert_eq!(field(block, "ip filter"), None);
    assert!(block.contains("topic   read"), "{block}");
    check.peer_address = "192.168.1.1".into();
    check.action = pb::Action::CacheWrite as i32;
    assert!(
        server.authorize(check.clone()).await.allowed,
        "the key follows its role"
    );

    let described = cli(&server, &owner, &["roles", "describe", "reader-all"]).await;
    assert_eq!(field(described.ok(), "role id"), Some(role_id.as_str()));

    // Deleting a role that a live key uses is refused; after revoking the key it works.
    let refused = cli(&server, &owner, &["roles", "delete", &role_id]).await;
    refused.fails(4, "authcell: FAILED_PRECONDITION: ", &owner);
    server.revoke_key(&owner, &verdict.key_id).await;
    let deleted = cli(&server, &owner, &["roles", "delete", "reader-all"]).await;
    assert_eq!(deleted.ok(), format!("Deleted role {role_id}.\n"));
    let listed = cli(&server, &owner, &["roles", "list"]).await;
    assert!(row(listed.ok(), &role_id).is_none());
}

#[tokio::test]
async fn roles_create_list_update_delete_in_json_mode() {
    let server = TestServer::start().await;
    let owner = server.owner_key.clone();

    // The permissions file comes from stdin here.
    let created = run_env(
        &[
            ("AUTHCELL_ENDPOINT", &server.endpoint),
            ("AUTHCELL_API_KEY", &owner),
        ],
        &[
            "roles",
            "create",
            "--json",
            "--name",
            "reader-eu",
            "--file",
            "-",
        ],
        Some(READER_EU),
    )
    .await
    .json();
    let role_id = created["role_id"].as_str().expect("role_id").to_owned();
    assert_eq!(created["name"], "reader-eu");
    assert_eq!(created["kind"], "custom");
    assert_eq!(created["description"], "");
    assert!(created["created_at_epoch_seconds"].is_u64());
    let expected: Value = serde_json::from_str(READER_EU).expect("json");
    assert_eq!(
        created["permissions"], expected,
        "the output format is the input format"
    );

    let listed = cli(&server, &owner, &["roles", "list", "--json"])
        .await
        .json();
    let roles = listed["roles"].as_array().expect("roles");
    assert_eq!(roles.len(), 4);
    assert_eq!(roles[0]["role_id"], "owner");
    assert_eq!(
        roles[0]["permissions"],
        serde_json::json!({"super_user": true})
    );
    assert_eq!(roles[0]["created_at_epoch_seconds"], Value::Null);
    let viewer = roles
        .iter()
        .find(|r| r["role_id"] == "viewer")
        .expect("viewer");
    assert_eq!(viewer["kind"], "system");
    assert!(viewer["permissions"]["rules"]
        .as_array()
        .expect("rules")
        .contains(&serde_json::json!({"auth": {"permissions": ["read", "list"]}})));
    let listed_role = roles
        .iter()
        .find(|r| r["role_id"] == role_id.as_str())
        .expect("listed");
    assert_eq!(listed_role["permissions"], expected);

    // What `roles list --json` prints can be fed back as a file.
    let round_trip = TempFile::new("round-trip.json", &listed_role["permissions"].to_string());
    let file = TempFile::new("v2.json", READER_EU_V2);
    let updated = cli(
        &server,
        &owner,
        &["roles", "update", &role_id, "--json", "--file", file.path()],
    )
    .await
    .json();
    assert_eq!(updated["role_id"], role_id.as_str());
    assert_eq!(updated["name"], "reader-eu", "unchanged");
    let v2: Value = serde_json::from_str(READER_EU_V2).expect("json");
    assert_eq!(updated["permissions"], v2);
    let restored = cli(
        &server,
        &owner,
        &[
            "roles",
            "update",
            "reader-eu",
            "--json",
            "--file",
            round_trip.path(),
        ],
    )
    .await
    .json();
    assert_eq!(restored["permissions"], expected);
    let renamed = cli(
        &server,
        &owner,
        &["roles", "update", &role_id, "--json", "--name", "renamed"],
    )
    .await
    .json();
    assert_eq!(renamed["name"], "renamed");
    assert_eq!(renamed["permissions"], expected);

    let described = cli(&server, &owner, &["roles", "describe", "renamed", "--json"])
        .await
        .json();
    assert_eq!(described["role_id"], role_id.as_str());

    let deleted = cli(&server, &owner, &["roles", "delete", &role_id, "--json"])
        .await
        .json();
    assert_eq!(
        deleted,
        serde_json::json!({"role_id": role_id, "deleted": true})
    );
    let listed = cli(&server, &owner, &["roles", "list", "--json"])
        .await
        .json();
    assert_eq!(listed["roles"].as_array().expect("roles").len(), 3);
    let gone = cli(&server, &owner, &["roles", "describe", &role_id]).await;
    gone.fails(4, "authcell: NOT_FOUND: ", &owner);
}

#[tokio::test]
async fn bad_permission_files_are_usage_errors_and_bad_rules_are_refused() {
    let server = TestServer::start().await;
    let create = |path: String| {
        let server = &server;
        async move {
            cli(
                server,
                &server.owner_key,
                &["roles", "create", "--name", "r", "--file", &path],
            )
            .await
        }
    };

    let missing = std::env::temp_dir().join("authcell-cli-no-such-file.json");
    create(missing.display().to_string())
        .await
        .fails(2, "cannot read it", &server.owner_key);
    let not_json = TempFile::new("bad.json", "{ not json");
    create(not_json.path().into()).await.fails(
        2,
        "bad.json: key must be a string",
        &server.owner_key,
    );
    let typo = TempFile::new(
        "typo.json",
        r#"{"rules":[{"cache":{"permissions":["reed"],"cache":"c"}}]}"#,
    );
    create(typo.path().into()).await.fails(
        2,
        "rules[0].cache.permissions[0]: unknown permission \"reed\"",
        &server.owner_key,
    );
    let unknown_field = TempFile::new(
        "field.json",
        r#"{"rules":[{"cache":{"permissions":["read"],"cache":"c","prefix":"x"}}]}"#,
    );
    create(unknown_field.path().into())
        .await
        .fails(2, "unknown field `prefix`", &server.owner_key);

    // Well-formed but against the server's rules: a list permission narrowed by a selector.
    let narrowed_list = TempFile::new(
        "list.json",
        r#"{"rules":[{"cache":{"permissions":["list"],"cache":"sessions"}}]}"#,
    );
    create(narrowed_list.path().into()).await.fails(
        4,
        "authcell: INVALID_ARGUMENT: permissions.explicit.rules[0].cache_rule.permissions",
        &server.owner_key,
    );

    // A file problem is reported before connecting: the server need not be up.
    let down = closed_port().await;
    let run = run_env(
        &[("AUTHCELL_ENDPOINT", &down), ("AUTHCELL_API_KEY", "k")],
        &["roles", "create", "--name", "r", "--file", typo.path()],
        None,
    )
    .await;
    run.fails(2, "unknown permission", "");
}
