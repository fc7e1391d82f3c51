//! The operator command line (`authcell keys|roles|tokens|cells|audit`): the real binary
//! against a real server on loopback, in human and JSON mode, with every exit code.

use std::process::Stdio;

use authcell::proto::authcell::v1 as pb;
use serde_json::Value;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;
use tokio::process::Command;

use crate::support::*;

const BIN: &str = env!("CARGO_BIN_EXE_authcell");

/// What one run of the binary did.
#[derive(Debug)]
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    /// Asserts success and returns stdout.
    fn ok(&self) -> &str {
        assert_eq!(self.code, 0, "expected success: {self:?}");
        &self.stdout
    }

    /// Asserts success and parses stdout as one JSON document.
    fn json(&self) -> Value {
        serde_json::from_str(self.ok()).unwrap_or_else(|e| panic!("not JSON ({e}): {self:?}"))
    }

    /// Asserts a failure with `code`, one `authcell: ` line on stderr containing `needle`,
    /// nothing on stdout, and no trace of `secret` anywhere.
    fn fails(&self, code: i32, needle: &str, secret: &str) {
        assert_eq!(self.code, code, "exit code: {self:?}");
        assert!(
            self.stderr.starts_with("authcell: ") || self.stderr.starts_with("error: "),
            "{self:?}"
        );
        assert!(self.stderr.contains(needle), "{needle:?} in {self:?}");
        if !secret.is_empty() {
            assert!(!self.stderr.contains(secret), "the key leaked: {self:?}");
        }
        assert!(self.stdout.is_empty(), "nothing on stdout: {self:?}");
    }
}

/// Runs the binary with exactly these `AUTHCELL_*` variables (the test's own are removed).
async fn run_env(env: &[(&str, &str)], args: &[&str], stdin: Option<&str>) -> Run {
    let mut command = Command::new(BIN);
    command
        .args(args)
        .env_remove("AUTHCELL_ENDPOINT")
        .env_remove("AUTHCELL_API_KEY")
        .env_remove("AUTHCELL_INSECURE")
        .env_remove("AUTHCELL_TLS_CA")
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    for (name, value) in env {
        command.env(name, value);
    }
    let mut child = command.spawn().expect("start authcell");
    if let Some(text) = stdin {
        let mut pipe = child.stdin.take().expect("stdin");
        pipe.write_all(text.as_bytes()).await.expect("write stdin");
        drop(pipe);
    }
    let out = child.wait_with_output().await.expect("run authcell");
    Run {
        code: out.status.code().expect("exit code"),
        stdout: String::from_utf8(out.stdout).expect("utf-8 stdout"),
        stderr: String::from_utf8(out.stderr).expect("utf-8 stderr"),
    }
}

/// Runs the binary against `server` with `key`, both from the environment.
async fn cli(server: &TestServer, key: &str, args: &[&str]) -> Run {
    run_env(
        &[
            ("AUTHCELL_ENDPOINT", &server.endpoint),
            ("AUTHCELL_API_KEY", key),
        ],
        args,
        None,
    )
    .await
}

/// A file in the temp directory, removed on drop.
struct TempFile(std::path::PathBuf);

impl TempFile {
    fn new(name: &str, text: &str) -> Self {
        let path = std::env::temp_dir().join(format!(
            "authcell-cli-{}-{}-{name}",
            std::process::id(),
            uuid::Uuid::new_v4()
        ));
        std::fs::write(&path, text).expect("write temp file");
        TempFile(path)
    }

    fn path(&self) -> &str {
        self.0.to_str().expect("utf-8 path")
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// The row of a table whose first column is `first`.
fn row<'a>(table: &'a str, first: &str) -> Option<&'a str> {
    table
        .lines()
        .find(|line| line.split_whitespace().next() == Some(first))
}

/// The value a table row has in the column headed `column` (columns are aligned on the
/// header; values here hold no double spaces).
fn column<'a>(table: &'a str, row_line: &'a str, column: &str) -> &'a str {
    let header = table.lines().next().expect("header");
    let start = header
        .find(column)
        .unwrap_or_else(|| panic!("{column} in {header}"));
    row_line[start..]
        .split("  ")
        .next()
        .expect("value")
        .trim_end()
}

/// The value after `label` in a `label  value` block.
fn field<'a>(block: &'a str, label: &str) -> Option<&'a str> {
    block.lines().find_map(|line| {
        line.strip_prefix(label)
            .filter(|rest| rest.starts_with("  "))
            .map(str::trim)
    })
}

// ---------------------------------------------------------------------------------------------
// keys
// ---------------------------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------------------------
// roles
// ---------------------------------------------------------------------------------------------

const READER_EU: &str = r#"{
  "rules": [
    {"cache": {"permissions": ["read"], "cache": "sessions", "key_prefix": "user:"}}
  ],
  "ip_filter": ["10.0.0.0/8"]
}"#;

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

// ---------------------------------------------------------------------------------------------
// tokens
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn tokens_mint_authorize_and_revoke_by_token_id_in_human_mode() {
    let server = TestServer::start().await;
    let owner = server.owner_key.clone();

    let minted = cli(
        &server,
        &owner,
        &[
            "tokens",
            "mint",
            "--cache",
            "sessions",
            "--key-prefix",
            "user:",
            "--role",
            "readonly",
            "--expires-in",
            "10m",
            "--token-id",
            "checkout-42",
        ],
    )
    .await;
    let stdout = minted.ok();
    assert_eq!(stdout.lines().count(), 1, "only the token on stdout");
    let token = stdout.trim_end().to_owned();
    assert!(!minted.stderr.contains(&token));
    assert!(
        minted
            .stderr
            .contains("(token id checkout-42), valid until "),
        "{minted:?}"
    );

    let allowed = server
        .authorize(cache_check(
            &token,
            pb::Action::CacheRead,
            "sessions",
            b"user:1",
        ))
        .await;
    assert!(allowed.allowed, "{allowed:?}");
    assert_eq!(allowed.token_id, "checkout-42");
    for (action, cache, key) in [
        (pb::Action::CacheRead, "other", &b"user:1"[..]),
        (pb::Action::CacheRead, "sessions", b"admin:1"),
        (pb::Action::CacheWrite, "sessions", b"user:1"),
    ] {
        let verdict = server
            .authorize(cache_check(&token, action, cache, key))
            .await;
        assert!(!verdict.allowed, "{action:?} {cache}: {verdict:?}");
        assert_eq!(verdict.reason, pb::Reason::Permission as i32);
    }

    let revoked = cli(
        &server,
        &owner,
        &["tokens", "revoke", "--token-id", "checkout-42"],
    )
    .await;
    assert_eq!(revoked.ok(), "Revoked token id checkout-42.\n");
    let verdict = server
        .authorize(cache_check(
            &token,
            pb::Action::CacheRead,
            "sessions",
            b"user:1",
        ))
        .await;
    assert_eq!(verdict.reason, pb::Reason::Revoked as i32, "{verdict:?}");

    // A topic statement from flags: publish only.
    let minted = cli(
        &server,
        &owner,
        &[
            "tokens",
            "mint",
            "--cache",
            "chat",
            "--topic",
            "orders",
            "--role",
            "writeonly",
            "--expires-in",
            "1h",
        ],
    )
    .await;
    let token = minted.ok().trim_end().to_owned();
    let publish = topic_check(&token, pb::Action::TopicPublish, "chat", "orders");
    assert!(server.authorize(publish).await.allowed);
    let subscribe = topic_check(&token, pb::Action::TopicSubscribe, "chat", "orders");
    assert!(!server.authorize(subscribe).await.allowed);
    let elsewhere = topic_check(&token, pb::Action::TopicPublish, "chat", "payments");
    assert!(!server.authorize(elsewhere).await.allowed);
}

#[tokio::test]
async fn tokens_mint_from_a_file_and_revoke_by_id_in_json_mode() {
    let server = TestServer::start().await;
    let owner = server.owner_key.clone();
    let file = TempFile::new(
        "statements.json",
        r#"{"statements": [
            {"cache": {"role": "readwrite", "cache": "sessions", "key": "user:42"}},
            {"topic": {"role": "readonly", "cache": "*", "topic_prefix": "chat."}},
            {"function": {"cache": "fns", "function": "resize"}}
        ]}"#,
    );
    let minted = cli(
        &server,
        &owner,
        &[
            "tokens",
            "mint",
            "--json",
            "--file",
            file.path(),
            "--expires-in",
            "5m",
        ],
    )
    .await
    .json();
    let token = minted["token"].as_str().expect("token").to_owned();
    let id = minted["id"].as_str().expect("id").to_owned();
    assert_eq!(minted["token_id"], Value::Null);
    assert_eq!(minted["endpoint"], server.endpoint.as_str());
    let valid_until = minted["valid_until_epoch_seconds"].as_u64().expect("u64");
    assert_eq!(valid_until, server.clock_now() + 300);

    let write = cache_check(&token, pb::Action::CacheReadWrite, "sessions", b"user:42");
    assert!(server.authorize(write).await.allowed);
    let other_key = cache_check(&token, pb::Action::CacheRead, "sessions", b"user:43");
    assert!(!server.authorize(other_key).await.allowed);
    let subscribe = topic_check(&token, pb::Action::TopicSubscribe, "any", "chat.room1");
    assert!(server.authorize(subscribe).await.allowed);
    let invoke = function_check(&token, "fns", "resize");
    assert!(server.authorize(invoke).await.allowed);
    let other_function = function_check(&token, "fns", "delete");
    assert!(!server.authorize(other_function).await.allowed);

    let revoked = cli(
        &server,
        &owner,
        &[
            "tokens",
            "revoke",
            "--json",
            "--id",
            &id,
            "--confirm-timeout",
            "1000",
        ],
    )
    .await
    .json();
    assert_eq!(revoked["id"], id.as_str());
    assert_eq!(revoked["revoked"], true);
    assert_eq!(revoked["confirmation"]["confirmed"], true);
    let invoke = function_check(&token, "fns", "resize");
    let verdict = server.authorize(invoke).await;
    assert_eq!(verdict.reason, pb::Reason::Revoked as i32, "{verdict:?}");
}

// ---------------------------------------------------------------------------------------------
// cells, audit
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn cells_in_human_and_json_mode() {
    let server = TestServer::start().await;
    let owner = server.owner_key.clone();
    let human = cli(&server, &owner, &["cells"]).await;
    let table = human.ok();
    assert!(table.starts_with("NODE ID"), "{table}");
    let line = row(table, "embedded").expect("the embedded node");
    assert_eq!(column(table, line, "CELL"), "test-cell");
    assert_eq!(column(table, line, "LIVE"), "yes");

    let json = cli(&server, &owner, &["cells", "--json"]).await.json();
    let nodes = json["nodes"].as_array().expect("nodes");
    assert_eq!(nodes.len(), 1);
    assert_eq!(nodes[0]["cell"], "test-cell");
    assert_eq!(nodes[0]["live"], true);
    assert_eq!(json["latest_event_id"], Value::Null);
}

#[tokio::test]
async fn audit_in_human_and_json_mode() {
    let server = TestServer::start().await;
    let owner = server.owner_key.clone();
    let created = cli(
        &server,
        &owner,
        &[
            "keys",
            "create",
            "--json",
            "--role",
            "viewer",
            "--description",
            "audited",
        ],
    )
    .await
    .json();
    let key_id = created["key_id"].as_str().expect("key_id").to_owned();
    cli(&server, &owner, &["keys", "revoke", &key_id])
        .await
        .ok();

    let json = cli(&server, &owner, &["audit", "--json", "--since", "1h"])
        .await
        .json();
    assert_eq!(json["truncated"], false);
    let events = json["events"].as_array().expect("events");
    let actions: Vec<&str> = events
        .iter()
        .map(|e| e["action"].as_str().expect("action"))
        .collect();
    assert_eq!(
        actions,
        ["key.revoked", "key.created", "key.created"],
        "newest first, the bootstrap key last"
    );
    assert_eq!(events[0]["target"], key_id.as_str());
    assert_eq!(events[1]["target"], key_id.as_str());
    assert_eq!(events[0]["account_id"], ACCOUNT);
    assert_eq!(events[0]["peer_address"], "127.0.0.1");
    assert!(events[0]["at_epoch_millis"].as_u64().expect("ms") > 0);

    let limited = cli(&server, &owner, &["audit", "--json", "--limit", "1"])
        .await
        .json();
    assert_eq!(limited["events"].as_array().expect("events").len(), 1);
    assert_eq!(limited["truncated"], true);
    let old = cli(
        &server,
        &owner,
        &["audit", "--json", "--until", "2001-09-09T01:46:40Z"],
    )
    .await
    .json();
    assert_eq!(old["events"], serde_json::json!([]));

    let human = cli(&server, &owner, &["audit"]).await;
    let table = human.ok();
    let header = table.lines().next().expect("header");
    for title in ["TIME", "ACTION", "TARGET", "ACTOR", "PEER", "DETAIL"] {
        assert!(header.contains(title), "{header}");
    }
    let lines: Vec<&str> = table.lines().skip(1).collect();
    assert_eq!(lines.len(), 3);
    assert_eq!(column(table, lines[0], "ACTION"), "key.revoked");
    assert_eq!(column(table, lines[0], "TARGET"), key_id);
    assert_eq!(column(table, lines[2], "ACTOR"), "bootstrap");
    assert!(column(table, lines[0], "TIME").ends_with('Z'));
}

/// A gRPC server without authcell's services: every call is UNIMPLEMENTED.
async fn bare_grpc_server() -> (String, tokio::sync::oneshot::Sender<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let endpoint = listener.local_addr().expect("addr").to_string();
    let (_reporter, health) = tonic_health::server::health_reporter();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        tonic::transport::Server::builder()
            .add_service(health)
            .serve_with_incoming_shutdown(
                tonic::transport::server::TcpIncoming::from(listener),
                async {
                    let _ = stopped.await;
                },
            )
            .await
            .expect("serve");
    });
    (endpoint, stop)
}

#[tokio::test]
async fn unimplemented_is_a_server_error() {
    let (endpoint, _stop) = bare_grpc_server().await;
    let key = "unimplemented-test-key-0123456789";
    for args in [&["audit"][..], &["keys", "list"], &["cells", "--json"]] {
        let run = run_env(
            &[("AUTHCELL_ENDPOINT", &endpoint), ("AUTHCELL_API_KEY", key)],
            args,
            None,
        )
        .await;
        run.fails(5, "authcell: UNIMPLEMENTED", key);
    }
}

// ---------------------------------------------------------------------------------------------
// Flags, usage errors and exit codes
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn flags_work_instead_of_the_environment() {
    let server = TestServer::start().await;
    let run = run_env(
        &[],
        &[
            "keys",
            "list",
            "--json",
            "--endpoint",
            &server.url(),
            "--api-key",
            &server.owner_key,
        ],
        None,
    )
    .await;
    assert_eq!(run.json()["keys"].as_array().expect("keys").len(), 1);

    // Flags win over the environment.
    let run = run_env(
        &[
            ("AUTHCELL_ENDPOINT", "127.0.0.1:1"),
            ("AUTHCELL_API_KEY", "wrong-key-from-the-environment"),
        ],
        &[
            "cells",
            "--endpoint",
            &server.endpoint,
            "--api-key",
            &server.owner_key,
        ],
        None,
    )
    .await;
    assert!(row(run.ok(), "embedded").is_some(), "{run:?}");
}

#[tokio::test]
async fn usage_errors_exit_2() {
    let server = TestServer::start().await;
    let key = server.owner_key.clone();
    let cases: &[(&[&str], &str)] = &[
        (&["keys"], "Usage: authcell keys"),
        (&["keys", "create", "--description", "x"], "--role <ROLE>"),
        (
            &[
                "keys",
                "create",
                "--role",
                "viewer",
                "--description",
                "x",
                "--expires-in",
                "10",
            ],
            "add a unit",
        ),
        (
            &[
                "keys",
                "create",
                "--role",
                "viewer",
                "--description",
                "x",
                "--expires-in",
                "1h",
                "--expires-at",
                "2030-01-01T00:00:00Z",
            ],
            "cannot be used with",
        ),
        (&["keys", "list", "--limit", "0"], "--limit"),
        (
            &["keys", "revoke", "x", "--confirm-timeout", "60001"],
            "--confirm-timeout",
        ),
        (
            &[
                "tokens",
                "mint",
                "--cache",
                "c",
                "--key",
                "a",
                "--key-prefix",
                "b",
                "--role",
                "readonly",
                "--expires-in",
                "1m",
            ],
            "cannot be used with",
        ),
        (
            &["tokens", "mint", "--cache", "c", "--expires-in", "1m"],
            "--role",
        ),
        (&["tokens", "mint", "--expires-in", "1m"], "--cache"),
        (
            &[
                "tokens",
                "mint",
                "--cache",
                "c",
                "--role",
                "all",
                "--expires-in",
                "1m",
            ],
            "invalid value 'all'",
        ),
        (&["tokens", "revoke"], "--id"),
        (
            &["tokens", "revoke", "--id", "a", "--token-id", "b"],
            "cannot be used with",
        ),
        (&["roles", "update", "some-role"], "--name"),
        (&["audit", "--since", "yesterday"], "--since"),
        (
            &["audit", "--since", "1h", "--until", "2h"],
            "--since must be before --until",
        ),
    ];
    for (args, needle) in cases {
        let run = cli(&server, &key, args).await;
        run.fails(2, needle, &key);
    }

    let no_endpoint = run_env(&[("AUTHCELL_API_KEY", &key)], &["keys", "list"], None).await;
    no_endpoint.fails(2, "authcell: no endpoint: set AUTHCELL_ENDPOINT", &key);
    let bad_ca = run_env(
        &[("AUTHCELL_API_KEY", &key)],
        &[
            "cells",
            "--endpoint",
            "localhost:1",
            "--tls-ca",
            "/nonexistent/ca.pem",
        ],
        None,
    )
    .await;
    bad_ca.fails(2, "--tls-ca /nonexistent/ca.pem: cannot read", &key);

    let help = run_env(&[], &["--help"], None).await;
    let text = help.ok();
    assert!(text.contains("Exit codes"), "{text}");
    for line in [
        "2  usage error",
        "3  authentication or authorization failure",
        "4  the server refused the request",
        "5  server or connection error",
    ] {
        assert!(text.contains(line), "{line:?} in {text}");
    }
    // The key from the environment is never shown in help.
    let help = run_env(
        &[("AUTHCELL_API_KEY", &key)],
        &["keys", "list", "--help"],
        None,
    )
    .await;
    assert!(!help.ok().contains(&key));
}

#[tokio::test]
async fn authentication_and_authorization_failures_exit_3() {
    let server = TestServer::start().await;
    let owner = server.owner_key.clone();

    let no_key = run_env(
        &[("AUTHCELL_ENDPOINT", &server.endpoint)],
        &["keys", "list"],
        None,
    )
    .await;
    no_key.fails(3, "authcell: no API key: set AUTHCELL_API_KEY", "");

    let garbage = "not-a-real-key-but-secret-anyway-123";
    cli(&server, garbage, &["keys", "list"])
        .await
        .fails(3, "authcell: UNAUTHENTICATED: ", garbage);
    // A forged key with a valid shape.
    let mut parts: Vec<String> = owner.split('.').map(str::to_owned).collect();
    parts[2] = parts[2].chars().rev().collect();
    let forged = parts.join(".");
    cli(&server, &forged, &["roles", "list", "--json"])
        .await
        .fails(3, "authcell: UNAUTHENTICATED: ", &forged);

    let (viewer, _) = server.create_key(&owner, "viewer").await;
    let (_, target) = server.create_key(&owner, "viewer").await;
    cli(&server, &viewer, &["keys", "revoke", &target.key_id])
        .await
        .fails(3, "authcell: PERMISSION_DENIED: ", &viewer);
    cli(
        &server,
        &viewer,
        &["keys", "create", "--role", "viewer", "--description", "x"],
    )
    .await
    .fails(3, "authcell: PERMISSION_DENIED: ", &viewer);
    // The viewer may still read.
    cli(&server, &viewer, &["keys", "list"]).await.ok();

    // A revoked key.
    let (revoked, info) = server.create_key(&owner, "operator").await;
    server.revoke_key(&owner, &info.key_id).await;
    cli(&server, &revoked, &["cells"])
        .await
        .fails(3, "authcell: UNAUTHENTICATED: ", &revoked);
}

#[tokio::test]
async fn refused_requests_exit_4() {
    let server = TestServer::start().await;
    let owner = server.owner_key.clone();
    let unknown = uuid::Uuid::now_v7().to_string();
    cli(&server, &owner, &["keys", "describe", &unknown])
        .await
        .fails(
            4,
            &format!("authcell: NOT_FOUND: key_id: no key {unknown}"),
            &owner,
        );
    cli(&server, &owner, &["keys", "revoke", &unknown])
        .await
        .fails(4, "authcell: NOT_FOUND: ", &owner);
    cli(&server, &owner, &["keys", "describe", "not-a-uuid"])
        .await
        .fails(4, "authcell: INVALID_ARGUMENT: key_id", &owner);
    cli(
        &server,
        &owner,
        &[
            "keys",
            "create",
            "--role",
            "no-such-role",
            "--description",
            "x",
        ],
    )
    .await
    .fails(4, "authcell: NOT_FOUND: ", &owner);
    cli(&server, &owner, &["roles", "delete", "viewer"])
        .await
        .fails(4, "authcell: FAILED_PRECONDITION: ", &owner);
    cli(
        &server,
        &owner,
        &[
            "tokens",
            "mint",
            "--cache",
            "c",
            "--role",
            "readonly",
            "--expires-in",
            "26h",
        ],
    )
    .await
    .fails(4, "authcell: INVALID_ARGUMENT: ", &owner);
    let file = TempFile::new("dup.json", READER_EU);
    cli(
        &server,
        &owner,
        &["roles", "create", "--name", "dup", "--file", file.path()],
    )
    .await
    .ok();
    cli(
        &server,
        &owner,
        &["roles", "create", "--name", "dup", "--file", file.path()],
    )
    .await
    .fails(4, "authcell: ALREADY_EXISTS: ", &owner);
}

/// An address nothing listens on.
async fn closed_port() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let endpoint = listener.local_addr().expect("addr").to_string();
    drop(listener);
    endpoint
}

#[tokio::test]
async fn an_unreachable_server_exits_5() {
    let endpoint = closed_port().await;
    let key = "a-key-that-must-not-leak-0123456789";
    for args in [
        &["keys", "list"][..],
        &["keys", "create", "--role", "viewer", "--description", "x"],
        &["tokens", "revoke", "--token-id", "t"],
        &["audit", "--json"],
    ] {
        let run = run_env(
            &[("AUTHCELL_ENDPOINT", &endpoint), ("AUTHCELL_API_KEY", key)],
            args,
            None,
        )
        .await;
        run.fails(
            5,
            &format!("authcell: UNAVAILABLE: cannot connect to {endpoint}: "),
            key,
        );
    }

    // A server that stops between calls.
    let server = TestServer::start().await;
    let endpoint = server.endpoint.clone();
    let owner = server.owner_key.clone();
    server.stop().await;
    let run = run_env(
        &[
            ("AUTHCELL_ENDPOINT", &endpoint),
            ("AUTHCELL_API_KEY", &owner),
        ],
        &["keys", "list", "--json"],
        None,
    )
    .await;
    run.fails(5, "authcell: UNAVAILABLE: ", &owner);
}

/// Linux delivers a connection to 0.0.0.0 to this machine, but the CLI reads only the
/// endpoint's text and counts 0.0.0.0 as remote: a listener on 127.0.0.1 would see any
/// attempt to connect, and nothing is sent to another host.
#[cfg(target_os = "linux")]
#[tokio::test]
async fn the_key_is_not_sent_in_plaintext_off_the_machine_without_insecure() {
    let key = "a-key-that-must-stay-home-0123456789";
    let trap = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = trap.local_addr().expect("addr").port();
    for endpoint in [format!("0.0.0.0:{port}"), format!("http://0.0.0.0:{port}")] {
        for args in [&["keys", "list"][..], &["cells", "--json"]] {
            let run = run_env(
                &[("AUTHCELL_ENDPOINT", &endpoint), ("AUTHCELL_API_KEY", key)],
                args,
                None,
            )
            .await;
            run.fails(
                2,
                &format!(
                    "authcell: --endpoint {endpoint}: refusing to send the API key in plaintext"
                ),
                key,
            );
            assert!(run.stderr.contains("--insecure"), "{run:?}");
        }
    }
    // Refused before connecting: the trap saw nothing...
    assert!(
        tokio::time::timeout(std::time::Duration::from_millis(200), trap.accept())
            .await
            .is_err(),
        "the CLI connected"
    );
    // ...though a connection to that address would have reached it.
    let _probe = tokio::net::TcpStream::connect(("0.0.0.0", port))
        .await
        .expect("0.0.0.0 reaches this machine");
    tokio::time::timeout(std::time::Duration::from_secs(5), trap.accept())
        .await
        .expect("the trap sees a connection")
        .expect("accept");

    // With --insecure, or AUTHCELL_INSECURE, the call goes through, with a warning.
    let server = TestServer::start().await;
    let remote = format!("http://0.0.0.0:{}", server.addr.port());
    let env = [
        ("AUTHCELL_ENDPOINT", remote.as_str()),
        ("AUTHCELL_API_KEY", server.owner_key.as_str()),
    ];
    let flagged = run_env(&env, &["keys", "list", "--json", "--insecure"], None).await;
    assert_eq!(flagged.json()["keys"].as_array().expect("keys").len(), 1);
    assert!(
        flagged
            .stderr
            .contains("warning: sending the API key in plaintext"),
        "{flagged:?}"
    );
    assert!(!flagged.stderr.contains(&server.owner_key), "{flagged:?}");
    let with_env = [env[0], env[1], ("AUTHCELL_INSECURE", "1")];
    let from_env = run_env(&with_env, &["keys", "list", "--json"], None).await;
    assert_eq!(from_env.json()["keys"].as_array().expect("keys").len(), 1);
    let off = [env[0], env[1], ("AUTHCELL_INSECURE", "false")];
    run_env(&off, &["keys", "list"], None).await.fails(
        2,
        "refusing to send the API key in plaintext",
        &server.owner_key,
    );

    // Loopback needs no flag: by address, and by the name localhost.
    let localhost = format!("localhost:{}", server.addr.port());
    let run = run_env(
        &[
            ("AUTHCELL_ENDPOINT", localhost.as_str()),
            ("AUTHCELL_API_KEY", server.owner_key.as_str()),
        ],
        &["keys", "list", "--json"],
        None,
    )
    .await;
    assert_eq!(run.json()["keys"].as_array().expect("keys").len(), 1);
    assert!(run.stderr.is_empty(), "no warning on loopback: {run:?}");
}
