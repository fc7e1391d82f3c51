//! `authcell policy show|set`, and `keys rotate` under a policy and for SDK-made keys.

use super::*;
use crate::support::api::Api;
use crate::support::grpc::key_id_of;

#[tokio::test]
async fn policy_set_and_show_in_human_and_json_mode() {
    let server = TestServer::start().await;
    let owner = server.owner_key.clone();
    let (operator, _) = server.create_key(&owner, "operator").await;
    let shown = cli(&server, &owner, &["policy", "show"]).await;
    assert!(shown.ok().contains("require expiry"), "{shown:?}");
    assert!(shown.ok().contains("none"), "{shown:?}");

    // Set: the owner and operator keys never expire, so they are reported (and keep working).
    let set = cli(
        &server,
        &owner,
        &[
            "policy",
            "set",
            "--require-expiry",
            "--max-key-lifetime",
            "90d",
            "--max-disposable-lifetime",
            "1h",
        ],
    )
    .await;
    let text = set.ok();
    assert!(text.contains("7776000 s (90d)"), "{text}");
    assert!(text.contains("3600 s (1h)"), "{text}");
    assert!(text.contains("2 live key(s) break this policy"), "{text}");
    assert!(text.contains("require_expiry"), "{text}");
    let json = cli(&server, &owner, &["policy", "show", "--json"])
        .await
        .json();
    assert_eq!(json["require_expiry"], true);
    assert_eq!(json["max_key_lifetime_seconds"], 7_776_000);
    assert_eq!(json["max_sdk_key_lifetime_seconds"], Value::Null);
    assert_eq!(json["max_disposable_token_lifetime_seconds"], 3600);
    assert_eq!(json["violations_total"], 2);
    assert_eq!(json["violations"][0]["key"]["role_id"], "owner");
    assert_eq!(json["violations"][1]["key"]["role_id"], "operator");

    // The policy binds the CLI's own creation commands, naming the rule.
    let refused = cli(
        &server,
        &owner,
        &["keys", "create", "--role", "viewer", "--description", "x"],
    )
    .await;
    assert_eq!(refused.code, 4, "{refused:?}");
    assert!(refused.stderr.contains("require_expiry"), "{refused:?}");
    let refused = cli(
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
            "2h",
        ],
    )
    .await;
    assert_eq!(refused.code, 4, "{refused:?}");
    assert!(
        refused
            .stderr
            .contains("max_disposable_token_lifetime_seconds = 3600"),
        "{refused:?}"
    );

    // Only the owner sets it.
    let denied = cli(&server, &operator, &["policy", "set"]).await;
    assert_eq!(denied.code, 3, "{denied:?}");
    // `set` with no flags clears it.
    let cleared = cli(&server, &owner, &["policy", "set", "--json"])
        .await
        .json();
    assert_eq!(cleared["require_expiry"], false);
    assert_eq!(cleared["violations_total"], 0);
}

/// `keys rotate --expires-in` names the new key's lifetime (a never-expiring key under a
/// policy that requires an expiry); an SDK-made key's rotation prints its refresh token too.
#[tokio::test]
async fn keys_rotate_with_a_lifetime_and_an_sdk_made_key() {
    let server = TestServer::start().await;
    let owner = server.owner_key.clone();
    let (_, old) = server.create_key(&owner, "viewer").await;
    cli(&server, &owner, &["policy", "set", "--require-expiry"])
        .await
        .ok();
    let refused = cli(
        &server,
        &owner,
        &["keys", "rotate", &old.key_id, "--overlap", "0s"],
    )
    .await;
    assert_eq!(refused.code, 4, "{refused:?}");
    assert!(refused.stderr.contains("--expires-in"), "{refused:?}");
    let rotated = cli(
        &server,
        &owner,
        &[
            "keys",
            "rotate",
            &old.key_id,
            "--overlap",
            "0s",
            "--expires-in",
            "30d",
            "--json",
        ],
    )
    .await
    .json();
    let key = &rotated["key"];
    assert_eq!(
        key["expires_at_epoch_seconds"].as_u64(),
        key["issued_at_epoch_seconds"]
            .as_u64()
            .map(|t| t + 30 * 86_400)
    );
    assert_eq!(rotated.get("refresh_token"), None, "a role key has none");

    let made = Api::of_server(&server)
        .await
        .sdk_key(&owner, vec![statements::read_cache("c")], Some(3600))
        .await
        .expect("sdk key");
    let human = cli(
        &server,
        &owner,
        &[
            "keys",
            "rotate",
            &key_id_of(&made.api_key),
            "--overlap",
            "1h",
        ],
    )
    .await;
    let lines: Vec<&str> = human.ok().lines().collect();
    assert_eq!(lines.len(), 2, "the key, then its refresh token: {human:?}");
    assert!(lines[1].starts_with("acr1_"), "{human:?}");
    assert!(human.stderr.contains("refresh token"), "{human:?}");
    // The refresh token printed is the new key's.
    Api::of_server(&server)
        .await
        .refresh(lines[0], lines[1])
        .await
        .expect("the printed pair refreshes");
}
