//! `authcell tokens`: mint and revoke.

use super::*;

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
