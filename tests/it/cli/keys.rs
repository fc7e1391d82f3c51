//! `authcell keys`: create, list, describe, revoke, in human and JSON mode.

use super::*;

#[tokio::test]
async fn keys_create_list_describe_revoke_in_human_mode() {
    let server = TestServer::start().await;
    let owner = server.owner_key.clone();

    let created = cli(
        &server,
        &owner,
        &[
            "keys",
            "create",
            "--role",
            "viewer",
            "--description",
            "dashboards",
            "--expires-in",
            "30d",
        ],
    )
    .await;
    let stdout = created.ok();
    assert_eq!(
        stdout.lines().count(),
        1,
        "only the key on stdout: {created:?}"
    );
    let key = stdout.trim_end().to_owned();
    assert_eq!(key.split('.').count(), 3, "a JWT: {key}");
    assert!(
        !created.stderr.contains(&key),
        "the key goes to stdout only"
    );
    let verdict = server
        .authorize(cache_check(&key, pb::Action::CacheRead, "c", b"k"))
        .await;
    assert!(verdict.allowed, "{verdict:?}");
    let key_id = verdict.key_id;
    assert!(
        created
            .stderr
            .contains(&format!("Created key {key_id} (role viewer, expires ")),
        "{created:?}"
    );

    let listed = cli(&server, &owner, &["keys", "list"]).await;
    let table = listed.ok();
    let header = table.lines().next().expect("header");
    for title in [
        "KEY ID",
        "ROLE",
        "STATUS",
        "DESCRIPTION",
        "ISSUED",
        "EXPIRES",
        "CREATED BY",
    ] {
        assert!(header.contains(title), "{header}");
    }
    let line = row(table, &key_id).unwrap_or_else(|| panic!("{key_id} in {table}"));
    assert_eq!(column(table, line, "ROLE"), "viewer");
    assert_eq!(column(table, line, "STATUS"), "active");
    assert_eq!(column(table, line, "DESCRIPTION"), "dashboards");
    assert_ne!(column(table, line, "EXPIRES"), "never");
    assert!(column(table, line, "ISSUED").ends_with('Z'));
    let owner_line = table
        .lines()
        .find(|l| l.contains("bootstrap owner key"))
        .expect("the owner key is listed");
    assert_eq!(column(table, owner_line, "EXPIRES"), "never");
    assert_eq!(column(table, owner_line, "CREATED BY"), "bootstrap");

    let described = cli(&server, &owner, &["keys", "describe", &key_id]).await;
    let block = described.ok();
    assert_eq!(field(block, "key id"), Some(key_id.as_str()));
    assert_eq!(field(block, "role"), Some("viewer"));
    assert_eq!(field(block, "status"), Some("active"));
    assert_eq!(field(block, "description"), Some("dashboards"));
    assert_eq!(field(block, "account"), Some(ACCOUNT));
    assert_eq!(field(block, "revoked"), None);

    let revoked = cli(&server, &owner, &["keys", "revoke", &key_id]).await;
    assert_eq!(revoked.ok(), format!("Revoked key {key_id}.\n"));

    let described = cli(&server, &owner, &["keys", "describe", &key_id]).await;
    let block = described.ok();
    assert_eq!(field(block, "status"), Some("revoked"));
    assert!(
        field(block, "revoked").is_some_and(|t| t.ends_with('Z')),
        "{block}"
    );

    let active = cli(&server, &owner, &["keys", "list"]).await;
    assert!(
        row(active.ok(), &key_id).is_none(),
        "revoked keys are hidden"
    );
    let all = cli(&server, &owner, &["keys", "list", "--all"]).await;
    let table = all.ok();
    let line = row(table, &key_id).expect("--all shows revoked keys");
    assert_eq!(column(table, line, "STATUS"), "revoked");

    let verdict = server
        .authorize(cache_check(&key, pb::Action::CacheRead, "c", b"k"))
        .await;
    assert_eq!(verdict.reason, pb::Reason::Revoked as i32, "{verdict:?}");
}

#[tokio::test]
async fn keys_create_list_describe_revoke_in_json_mode() {
    let server = TestServer::start().await;
    let owner = server.owner_key.clone();
    let expires_at = server.clock_now() + 3600;

    let created = cli(
        &server,
        &owner,
        &[
            "keys",
            "create",
            "--json",
            "--role",
            "operator",
            "--description",
            "ci deploys",
            "--expires-at",
            &expires_at.to_string(),
        ],
    )
    .await
    .json();
    let key = created["api_key"].as_str().expect("api_key").to_owned();
    let key_id = created["key_id"].as_str().expect("key_id").to_owned();
    assert_eq!(created["role_id"], "operator");
    assert_eq!(created["account_id"], ACCOUNT);
    assert_eq!(created["description"], "ci deploys");
    assert_eq!(created["expires_at_epoch_seconds"], expires_at);
    // One document with everything an application needs (to store as a secret as is).
    assert_eq!(created["endpoint"], server.endpoint.as_str());
    let verdict = server
        .authorize(cache_check(&key, pb::Action::CacheWrite, "c", b"k"))
        .await;
    assert!(verdict.allowed && verdict.key_id == key_id, "{verdict:?}");

    let listed = cli(&server, &owner, &["keys", "list", "--json"])
        .await
        .json();
    assert_eq!(listed["truncated"], false);
    let keys = listed["keys"].as_array().expect("keys");
    assert_eq!(keys.len(), 2);
    let entry = keys
        .iter()
        .find(|k| k["key_id"] == key_id.as_str())
        .expect("listed");
    assert_eq!(entry["status"], "active");
    assert_eq!(entry["kind"], "role");
    assert_eq!(
        entry["created_by"], keys[0]["key_id"],
        "made by the owner key"
    );

    let described = cli(&server, &owner, &["keys", "describe", "--json", &key_id])
        .await
        .json();
    assert_eq!(described["key_id"], key_id.as_str());
    assert_eq!(described["status"], "active");
    assert_eq!(described["revoked_at_epoch_seconds"], Value::Null);

    // The global flag also works before the subcommand.
    let revoked = cli(
        &server,
        &owner,
        &[
            "keys",
            "--json",
            "revoke",
            &key_id,
            "--confirm-timeout",
            "2000",
        ],
    )
    .await
    .json();
    assert_eq!(revoked["key_id"], key_id.as_str());
    assert_eq!(revoked["revoked"], true);
    assert_eq!(revoked["confirmation"]["confirmed"], true);
    assert_eq!(
        revoked["confirmation"]["confirmed_cells"],
        serde_json::json!(["test-cell"])
    );
    assert_eq!(
        revoked["confirmation"]["pending_cells"],
        serde_json::json!([])
    );

    let described = cli(&server, &owner, &["keys", "describe", "--json", &key_id])
        .await
        .json();
    assert_eq!(described["status"], "revoked");
    assert!(described["revoked_at_epoch_seconds"].is_u64());
    let listed = cli(&server, &owner, &["keys", "list", "--json"])
        .await
        .json();
    assert_eq!(listed["keys"].as_array().expect("keys").len(), 1);
    let all = cli(&server, &owner, &["keys", "list", "--all", "--json"])
        .await
        .json();
    assert_eq!(all["keys"].as_array().expect("keys").len(), 2);
}

#[tokio::test]
async fn keys_revoke_confirms_in_human_mode() {
    let server = TestServer::start().await;
    let owner = server.owner_key.clone();
    let (_, info) = server.create_key(&owner, "viewer").await;
    let run = cli(
        &server,
        &owner,
        &["keys", "revoke", &info.key_id, "--confirm-timeout", "1000"],
    )
    .await;
    assert_eq!(
        run.ok(),
        format!(
            "Revoked key {}.\nConfirmed by every live cell: test-cell.\n",
            info.key_id
        )
    );
}

#[tokio::test]
async fn keys_list_follows_every_page_and_stops_at_the_limit() {
    let server = TestServer::start().await;
    let owner = server.owner_key.clone();
    for _ in 0..120 {
        server.create_key(&owner, "viewer").await;
    }
    let all = cli(&server, &owner, &["keys", "list", "--json"])
        .await
        .json();
    let keys = all["keys"].as_array().expect("keys");
    assert_eq!(keys.len(), 121, "two pages followed to the end");
    assert_eq!(all["truncated"], false);
    let mut ids: Vec<&str> = keys
        .iter()
        .map(|k| k["key_id"].as_str().expect("id"))
        .collect();
    let in_order = ids.clone();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 121, "no key twice");
    assert_eq!(ids, in_order, "in creation order");

    let limited = cli(
        &server,
        &owner,
        &["keys", "list", "--json", "--limit", "101"],
    )
    .await
    .json();
    assert_eq!(limited["keys"].as_array().expect("keys").len(), 101);
    assert_eq!(limited["truncated"], true);

    let human = cli(&server, &owner, &["keys", "list", "--limit", "2"]).await;
    assert_eq!(human.ok().lines().count(), 3, "header and two rows");
    assert!(human.stderr.contains("raise --limit"), "{human:?}");
}

#[tokio::test]
async fn keys_rotate_prints_the_new_key_once_and_revokes_the_old_one() {
    let server = TestServer::start().await;
    let owner = server.owner_key.clone();
    let (old_key, old) = server.create_key(&owner, "viewer").await;
    let rotated = cli(
        &server,
        &owner,
        &["keys", "rotate", &old.key_id, "--overlap", "0s"],
    )
    .await;
    let stdout = rotated.ok();
    assert_eq!(
        stdout.lines().count(),
        1,
        "only the key on stdout: {rotated:?}"
    );
    let new_key = stdout.trim_end().to_owned();
    assert!(rotated.stderr.contains("Rotated key"), "{rotated:?}");
    assert!(rotated.stderr.contains("revoked now"), "{rotated:?}");
    assert!(
        !rotated.stderr.contains(&new_key),
        "the key goes to stdout only"
    );
    let check = |key: &str| cache_check(key, pb::Action::CacheRead, "c", b"k");
    assert!(server.authorize(check(&new_key)).await.allowed);
    let verdict = server.authorize(check(&old_key)).await;
    assert_eq!(verdict.reason, pb::Reason::Revoked as i32, "{verdict:?}");

    // JSON: the new key, the endpoint, both records; then a second rotation of the same key is
    // refused with the rule.
    let (_, other) = server.create_key(&owner, "viewer").await;
    let json = cli(
        &server,
        &owner,
        &[
            "keys",
            "rotate",
            &other.key_id,
            "--overlap",
            "24h",
            "--json",
        ],
    )
    .await;
    let doc = json.json();
    assert_eq!(doc["key"]["rotated_from"], other.key_id.as_str());
    assert_eq!(doc["rotated"]["status"], "active");
    assert!(doc["api_key"]
        .as_str()
        .is_some_and(|k| k.split('.').count() == 3));
    assert!(doc["endpoint"].as_str().is_some_and(|e| !e.is_empty()));
    assert!(doc["rotated"]["revokes_at_epoch_seconds"]
        .as_u64()
        .is_some());
    let again = cli(
        &server,
        &owner,
        &["keys", "rotate", &other.key_id, "--overlap", "1h"],
    )
    .await;
    assert_ne!(again.code, 0, "{again:?}");
    assert!(again.stderr.contains("already rotating"), "{again:?}");
}

#[tokio::test]
async fn keys_list_expiring_within_shows_only_keys_that_lapse_in_the_window() {
    let server = TestServer::start().await;
    let owner = server.owner_key.clone();
    let soon = cli(
        &server,
        &owner,
        &[
            "keys",
            "create",
            "--role",
            "viewer",
            "--description",
            "soon",
            "--expires-in",
            "3d",
            "--json",
        ],
    )
    .await
    .json();
    cli(
        &server,
        &owner,
        &[
            "keys",
            "create",
            "--role",
            "viewer",
            "--description",
            "forever",
        ],
    )
    .await
    .ok();
    let listed = cli(
        &server,
        &owner,
        &["keys", "list", "--expiring-within", "7d", "--json"],
    )
    .await
    .json();
    let ids: Vec<&str> = listed["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .filter_map(|k| k["key_id"].as_str())
        .collect();
    assert_eq!(ids, [soon["key_id"].as_str().expect("key id")], "{listed}");
    let both = cli(
        &server,
        &owner,
        &["keys", "list", "--expiring-within", "7d", "--all"],
    )
    .await;
    assert_ne!(
        both.code, 0,
        "--all and --expiring-within conflict: {both:?}"
    );
}
