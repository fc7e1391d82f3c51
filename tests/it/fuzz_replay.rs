//! The fuzz corpora, replayed on stable: every file under `fuzz/corpus/<target>/` and
//! `fuzz/regressions/<target>/` goes through the same `authcell::fuzzing` function the fuzz
//! target calls. A missing or empty corpus fails the test rather than skipping it.
//!
//! `write_seeds` (ignored; run it with `--ignored`) writes the hand-made seed inputs the
//! corpora started from: real tokens signed by the fixture's key, and malformed variants.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use authcell::authority::vending::KeyLifetime;
use authcell::authority::{ApiToken, DisposableToken, Expiry, NewKey};
use authcell::credential::{self, Claims};
use authcell::fuzzing::{self, ACCOUNT, NOW, REVOKED_KEY_ID, REVOKED_TOKEN_ID, ROLE_ID};
use authcell::policy::{
    self, system, Action, BytesSel, NameSel, Ops, PermissionSet, Resource, Rule, TextSel,
};
use authcell::proto::authcell::v1 as pb;
use authcell::proto::permission_messages as pm;
use authcell::proto::permission_rules as pr;
use authcell::verifier::Reason;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use prost::Message;

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz")
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("a directory entry").path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}

/// Runs `body` on every file of the target's corpus and regressions.
fn replay(target: &str, body: fn(&[u8])) {
    let corpus = fuzz_dir().join("corpus").join(target);
    assert!(
        corpus.is_dir(),
        "{}: the corpus of fuzz target {target} is missing",
        corpus.display()
    );
    let corpus = files(&corpus);
    assert!(
        !corpus.is_empty(),
        "the corpus of fuzz target {target} is empty"
    );
    let regressions_dir = fuzz_dir().join("regressions").join(target);
    let regressions = if regressions_dir.is_dir() {
        files(&regressions_dir)
    } else {
        Vec::new()
    };
    for path in corpus.iter().chain(&regressions) {
        let data = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        if std::panic::catch_unwind(|| body(&data)).is_err() {
            panic!("fuzz target {target} panics on {}", path.display());
        }
    }
    println!(
        "fuzz target {target}: replayed {} corpus inputs and {} regressions",
        corpus.len(),
        regressions.len()
    );
}

/// One test per fuzz target, named after it, and the list of them.
macro_rules! replay_tests {
    ($($target:ident),* $(,)?) => {
        const REPLAYED: &[&str] = &[$(stringify!($target)),*];
        $(
            #[test]
            fn $target() {
                replay(stringify!($target), fuzzing::$target);
            }
        )*
    };
}

replay_tests!(
    credential_decode,
    credential_check,
    credential_claims,
    role_permissions,
    token_permissions,
    cli_permissions,
    page_token,
    authorize,
);

/// A fuzz target without a replay here would never be checked on stable.
#[test]
fn every_fuzz_target_is_replayed() {
    let mut on_disk: Vec<String> = files(&fuzz_dir().join("fuzz_targets"))
        .iter()
        .filter_map(|p| Some(p.file_stem()?.to_str()?.to_owned()))
        .collect();
    on_disk.sort();
    let mut replayed: Vec<String> = REPLAYED.iter().map(|t| (*t).to_owned()).collect();
    replayed.sort();
    assert_eq!(on_disk, replayed);
}

/// The credential corpus must keep tokens the fixture accepts, or a campaign never gets past
/// the signature check (a changed fixture key would do that silently).
#[test]
fn credential_corpus_holds_tokens_the_fixture_accepts() {
    let ring = fuzzing::keyring();
    let valid = files(&fuzz_dir().join("corpus").join("credential_check"))
        .iter()
        .filter(|p| {
            let text = std::fs::read_to_string(p).unwrap_or_default();
            credential::decode(&ring, &text).is_ok()
        })
        .count();
    assert!(valid >= 2, "only {valid} corpus tokens verify");
}

/// Found by `role_permissions`: a role naming its cache `*` (a literal name, as the server took
/// it) is printed by `roles list --json` as `"cache": "*"`, which `roles create --file` reads as
/// every cache: the role widened on its way through the CLI. The server now refuses `*` as the
/// name of a cache, store, topic or function.
#[test]
fn regression_literal_star_name_cannot_widen_through_the_cli() {
    let path =
        fuzz_dir().join("regressions/role_permissions/literal-star-cache-name-widens-through-cli");
    let data = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let set = pr::PermissionSet::decode(&data[..]).expect("a permission set");
    assert!(
        format!("{set:?}").contains(r#"CacheName("*")"#),
        "the input names a cache *"
    );
    let refused = policy::proto::permission_set_from_proto("permissions", Some(&set), false)
        .expect_err("a cache named * is refused");
    assert_eq!(
        refused.to_string(),
        "permissions.explicit.rules[0].cache_rule.cache_selector.cache_name: \"*\" is not a name: set all_caches to select every one"
    );
    fuzzing::role_permissions(&data);

    // Every family's name selector, in roles and in token statements.
    let star = || NameSel::Name("*".into());
    let rules = [
        Rule::Cache {
            ops: Ops::READ,
            cache: star(),
            item: BytesSel::All,
        },
        Rule::Store {
            ops: Ops::READ,
            store: star(),
            item: BytesSel::All,
        },
        Rule::Topic {
            ops: Ops::READ,
            cache: NameSel::All,
            topic: TextSel::Name("*".into()),
        },
        Rule::Function {
            ops: Ops::INVOKE,
            cache: NameSel::All,
            function: TextSel::Name("*".into()),
        },
    ];
    for rule in rules {
        let set = policy::proto::permission_set_to_proto(&PermissionSet::rules(vec![rule.clone()]));
        let refused = policy::proto::permission_set_from_proto("permissions", Some(&set), false)
            .expect_err("a * name is refused");
        assert!(
            refused.rule.starts_with("\"*\" is not a name"),
            "{rule:?}: {refused}"
        );
    }
    let refused = policy::proto::statements_from_proto("permissions", Some(&statements("*")))
        .expect_err("a token statement on a cache named * is refused");
    assert!(refused.rule.starts_with("\"*\" is not a name"), "{refused}");
    // A prefix `*` stays a prefix both ways, and is still accepted.
    let prefix = Rule::Topic {
        ops: Ops::READ,
        cache: NameSel::All,
        topic: TextSel::Prefix("*".into()),
    };
    let set = policy::proto::permission_set_to_proto(&PermissionSet::rules(vec![prefix]));
    assert!(policy::proto::permission_set_from_proto("permissions", Some(&set), false).is_ok());
    fuzzing::role_permissions(&set.encode_to_vec());
}

// ---------------------------------------------------------------------------------------------
// Seeds
// ---------------------------------------------------------------------------------------------

fn write(target: &str, name: &str, data: &[u8]) {
    let dir = fuzz_dir().join("corpus").join(target);
    std::fs::create_dir_all(&dir).expect("create the corpus directory");
    std::fs::write(dir.join(format!("seed-{name}")), data).expect("write a seed");
}

fn sign(claims: &Claims) -> String {
    credential::sign(&fuzzing::keyring(), claims).expect("sign with the fixture key")
}

fn role_key_claims(account: &str, jti: &str, role: &str) -> Claims {
    Claims {
        t: credential::TYPE_API_KEY.into(),
        jti: jti.into(),
        sub: account.into(),
        role: Some(role.into()),
        p: None,
        ipf: Vec::new(),
        anc: Vec::new(),
        tid: None,
        cell: None,
        iat: NOW - 60,
        iatm: Some((NOW - 60) * 1000),
        oiatm: None,
        rr: None,
        aexp: None,
        exp: None,
        nbf: None,
    }
}

/// Malformed variants of a valid token: each fails a different check.
fn malformed(token: &str) -> Vec<(&'static str, String)> {
    let (signing_input, signature) = token.rsplit_once('.').expect("a JWS");
    let (header, payload) = signing_input.split_once('.').expect("a JWS");
    let b64 = |s: &str| URL_SAFE_NO_PAD.encode(s);
    let mut flipped = signature.as_bytes().to_vec();
    flipped[3] = if flipped[3] == b'A' { b'B' } else { b'A' };
    let claims: serde_json::Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).expect("base64url"))
            .expect("JSON claims");
    let mut widened = claims.clone();
    widened["role"] = "owner".into();
    widened["p"] = serde_json::Value::Null;
    vec![
        ("truncated", token[..token.len() - 10].to_owned()),
        (
            "bad-signature",
            format!("{signing_input}.{}", String::from_utf8(flipped).unwrap()),
        ),
        (
            "alg-none",
            format!("{}.{payload}.", b64(r#"{"alg":"none","typ":"JWT"}"#)),
        ),
        (
            "alg-hs256",
            format!(
                "{}.{payload}.{signature}",
                b64(r#"{"alg":"HS256","typ":"JWT"}"#)
            ),
        ),
        (
            "unknown-kid",
            format!(
                "{}.{payload}.{signature}",
                b64(r#"{"alg":"EdDSA","typ":"JWT","kid":"AAAAAAAAAAAAAAAA"}"#)
            ),
        ),
        (
            "claims-swapped",
            format!("{header}.{}.{signature}", b64(&widened.to_string())),
        ),
        (
            "extra-segment",
            format!("{header}.{payload}.{payload}.{signature}"),
        ),
        ("no-dots", token.replace('.', "")),
        ("padded", format!("{token}==")),
    ]
}

/// A token's statements: read-write on keys starting with `k` of `cache`, subscribe to `news.*`
/// topics, invoke every function.
fn statements(cache: &str) -> pm::Permissions {
    pm::Permissions {
        kind: Some(pm::permissions::Kind::Explicit(pm::ExplicitPermissions {
            permissions: vec![
                pm::PermissionsType {
                    kind: Some(pm::permissions_type::Kind::CachePermissions(
                        pm::permissions_type::CachePermissions {
                            role: pm::CacheRole::CacheReadWrite as i32,
                            cache: Some(pm::permissions_type::cache_permissions::Cache::CacheSelector(
                                pm::permissions_type::CacheSelector {
                                    kind: Some(pm::permissions_type::cache_selector::Kind::CacheName(
                                        cache.into(),
                                    )),
                                },
                            )),
                            cache_item: Some(
                                pm::permissions_type::cache_permissions::CacheItem::ItemSelector(
                                    pm::permissions_type::CacheItemSelector {
                                        kind: Some(
                                            pm::permissions_type::cache_item_selector::Kind::KeyPrefix(
                                                b"k".to_vec(),
                                            ),
                                        ),
                                    },
                                ),
                            ),
                        },
                    )),
                },
                pm::PermissionsType {
                    kind: Some(pm::permissions_type::Kind::TopicPermissions(
                        pm::permissions_type::TopicPermissions {
                            role: pm::TopicRole::TopicReadOnly as i32,
                            cache: Some(pm::permissions_type::topic_permissions::Cache::AllCaches(
                                pm::permissions_type::All {},
                            )),
                            topic: Some(pm::permissions_type::topic_permissions::Topic::TopicSelector(
                                pm::permissions_type::TopicSelector {
                                    kind: Some(
                                        pm::permissions_type::topic_selector::Kind::TopicNamePrefix(
                                            "news.".into(),
                                        ),
                                    ),
                                },
                            )),
                        },
                    )),
                },
                pm::PermissionsType {
                    kind: Some(pm::permissions_type::Kind::FunctionPermissions(
                        pm::permissions_type::FunctionPermissions {
                            role: pm::FunctionRole::FunctionInvoke as i32,
                            cache: Some(pm::permissions_type::function_permissions::Cache::AllCaches(
                                pm::permissions_type::All {},
                            )),
                            function: Some(
                                pm::permissions_type::function_permissions::Function::AllFunctions(
                                    pm::permissions_type::All {},
                                ),
                            ),
                        },
                    )),
                },
            ],
        })),
    }
}

/// Writes the seed inputs of every target into `fuzz/corpus/<target>/seed-*`.
#[tokio::test]
#[ignore = "writes the fuzz seed corpora; run when the fixture changes"]
async fn write_seeds() {
    let authority = fuzzing::authority();
    // Real credentials, minted by the authority's own paths.
    let (owner, _) = authority.bootstrap(ACCOUNT, true).await.expect("bootstrap");
    let caller = authority
        .caller(&owner, None)
        .expect("the owner key verifies");
    let viewer_key = NewKey::new(
        system::VIEWER.into(),
        "viewer",
        Some(Expiry::At(NOW + 3600)),
        None,
    )
    .expect("a well-formed request");
    let (viewer, _) = authority
        .generate_key(&caller, viewer_key)
        .await
        .expect("a viewer key");
    let rules = || policy::proto::statements_from_proto("permissions", Some(&statements("c")));
    let parent = authority
        .vending_caller(&owner, None)
        .expect("the owner key vends");
    let token = |secs, token_id| DisposableToken::new(Some(secs), rules(), token_id);
    let disposable = authority
        .mint_disposable(&parent, token(3600, "").expect("well formed"))
        .await
        .expect("a disposable token")
        .token;
    let revoked_tid = authority
        .mint_disposable(&parent, token(600, REVOKED_TOKEN_ID).expect("well formed"))
        .await
        .expect("a disposable token with a revoked token id")
        .token;
    let sdk_request = ApiToken::new(
        Some(KeyLifetime::Seconds(86_400)),
        rules(),
        "sdk",
        "an SDK-made key",
    )
    .expect("well formed");
    let sdk_key = authority
        .generate_api_token(&parent, None, sdk_request)
        .await
        .expect("an SDK-made key")
        .key
        .token;
    // Credentials the authority would not mint today, signed with the same key.
    let custom_role = sign(&role_key_claims(
        ACCOUNT,
        "01978f3c-0000-7000-8000-0000000c0ff0",
        ROLE_ID,
    ));
    let revoked = sign(&role_key_claims(ACCOUNT, REVOKED_KEY_ID, system::OWNER));
    let watermarked = sign(&role_key_claims(
        fuzzing::WATERMARKED_ACCOUNT,
        "01978f3c-0000-7000-8000-0000000a11ce",
        system::OWNER,
    ));
    let expired = sign(&Claims {
        t: credential::TYPE_DISPOSABLE.into(),
        exp: Some(NOW - 3600),
        p: Some(vec!["c1;*;*".into()]),
        role: None,
        ..role_key_claims(ACCOUNT, "01978f3c-0000-7000-8000-0000000e0e0e", "")
    });
    let tokens = [
        ("owner-key", owner),
        ("viewer-key", viewer),
        ("disposable", disposable),
        ("disposable-revoked-token-id", revoked_tid),
        ("sdk-key", sdk_key),
        ("custom-role-key", custom_role),
        ("revoked-key", revoked),
        ("watermarked-key", watermarked),
        ("expired-disposable", expired),
    ];
    // Each seed reaches the verdict it stands for.
    let read = |token: &str| {
        let resource = Resource {
            cache: Some("c"),
            key: Some(b"k1"),
            ..Resource::default()
        };
        let peer = Some(IpAddr::from([10, 1, 2, 3]));
        let decision = authority
            .verifier()
            .check(token, Action::CacheRead, &resource, peer);
        decision.outcome.map_err(|(reason, _)| reason)
    };
    let expected = [
        Ok(()),
        Ok(()),
        Ok(()),
        Err(Reason::Revoked),
        Ok(()),
        Ok(()),
        Err(Reason::Revoked),
        Err(Reason::Revoked),
        Err(Reason::Expired),
    ];
    for ((name, token), expected) in tokens.iter().zip(expected) {
        assert_eq!(read(token), expected, "seed {name}");
    }
    for (name, token) in &tokens {
        for target in ["credential_decode", "credential_check"] {
            write(target, name, token.as_bytes());
        }
    }
    for (name, token) in malformed(&tokens[2].1) {
        for target in ["credential_decode", "credential_check"] {
            write(target, name, token.as_bytes());
        }
    }

    // Claims, signed by the credential_claims target itself: each real token's, and variants.
    let claims_of = |token: &str| -> serde_json::Value {
        let payload = token.split('.').nth(1).expect("a JWS");
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).expect("base64url"))
            .expect("JSON claims")
    };
    for (name, token) in &tokens {
        write(
            "credential_claims",
            name,
            claims_of(token).to_string().as_bytes(),
        );
    }
    let disposable_claims = claims_of(&tokens[2].1);
    let variant = |edit: &dyn Fn(&mut serde_json::Value)| {
        let mut claims = disposable_claims.clone();
        edit(&mut claims);
        claims.to_string()
    };
    for (name, claims) in [
        (
            "revoked-ancestor",
            variant(&|c| c["anc"] = serde_json::json!([REVOKED_KEY_ID])),
        ),
        (
            "bad-ip-filter",
            variant(&|c| c["ipf"] = serde_json::json!([["10.0.0.0/33"]])),
        ),
        (
            "ip-filter",
            variant(&|c| c["ipf"] = serde_json::json!([["10.0.0.0/8", "::1"]])),
        ),
        ("unknown-type", variant(&|c| c["t"] = "x".into())),
        ("role-and-rules", variant(&|c| c["role"] = ROLE_ID.into())),
        ("future-iat", variant(&|c| c["iat"] = (NOW + 3600).into())),
        (
            "bad-rule",
            variant(&|c| c["p"] = serde_json::json!(["c10;*;*", "z1"])),
        ),
        (
            "watermarked-origin",
            variant(&|c| {
                c["sub"] = fuzzing::WATERMARKED_ACCOUNT.into();
                c["oiatm"] = ((NOW - 1) * 1000).into();
            }),
        ),
    ] {
        write("credential_claims", name, claims.as_bytes());
    }

    // Authorize requests: each real credential asking for something, and malformed requests.
    let request = |credential: &str, action: pb::Action| pb::AuthorizeRequest {
        credential: credential.into(),
        action: action as i32,
        cache: "c".into(),
        key: b"k1".to_vec(),
        topic: "news.today".into(),
        function: "f".into(),
        peer_address: "10.1.2.3:4567".into(),
    };
    for (name, token) in &tokens {
        write(
            "authorize",
            name,
            &request(token, pb::Action::CacheRead).encode_to_vec(),
        );
    }
    let disposable = &tokens[2].1;
    for (name, req) in [
        (
            "topic-publish",
            request(disposable, pb::Action::TopicPublish),
        ),
        (
            "function-invoke",
            request(disposable, pb::Action::FunctionInvoke),
        ),
        (
            "cache-read-write",
            request(disposable, pb::Action::CacheReadWrite),
        ),
        (
            "unspecified-action",
            request(disposable, pb::Action::Unspecified),
        ),
        (
            "unknown-action",
            pb::AuthorizeRequest {
                action: 99,
                ..request(disposable, pb::Action::CacheRead)
            },
        ),
        (
            "ipv6-peer",
            pb::AuthorizeRequest {
                peer_address: "[2001:db8::1]:443".into(),
                ..request(disposable, pb::Action::CacheWrite)
            },
        ),
        (
            "bad-peer",
            pb::AuthorizeRequest {
                peer_address: "10.1.2".into(),
                ..request(disposable, pb::Action::CacheRead)
            },
        ),
        (
            "no-cache",
            pb::AuthorizeRequest {
                cache: String::new(),
                ..request(disposable, pb::Action::TopicSubscribe)
            },
        ),
    ] {
        write("authorize", name, &req.encode_to_vec());
    }

    // Role permission sets: the system roles, the fixture's role, and refusals.
    for id in system::ALL {
        let set = system::permissions(id).expect("a system role");
        write(
            "role_permissions",
            &format!("system-{id}"),
            &policy::proto::permission_set_to_proto(&set).encode_to_vec(),
        );
    }
    let fixture_role = policy::proto::permission_set_to_proto(&fuzzing::fixture_role());
    write(
        "role_permissions",
        "fixture-role",
        &fixture_role.encode_to_vec(),
    );
    write("role_permissions", "empty", b"");
    let mut no_rules = fixture_role.clone();
    no_rules.kind = Some(
        authcell::proto::permission_rules::permission_set::Kind::Explicit(
            authcell::proto::permission_rules::ExplicitPermissions { rules: Vec::new() },
        ),
    );
    write("role_permissions", "no-rules", &no_rules.encode_to_vec());

    // Token statements: valid, and with an unknown role value.
    write(
        "token_permissions",
        "cache-topic-function",
        &statements("c").encode_to_vec(),
    );
    write("token_permissions", "empty", b"");
    let mut bad_role = statements("c");
    if let Some(pm::permissions::Kind::Explicit(e)) = &mut bad_role.kind {
        if let Some(pm::permissions_type::Kind::CachePermissions(c)) = &mut e.permissions[0].kind {
            c.role = 42;
        }
    }
    write(
        "token_permissions",
        "unknown-role",
        &bad_role.encode_to_vec(),
    );

    // CLI permission files.
    for (name, text) in [
        (
            "role-document",
            r#"{"rules":[{"cache":{"permissions":["read","write"],"cache":"c","key_prefix":"k"}},
                {"topic":{"permissions":["read"],"cache":"*","topic_prefix":"news."}},
                {"store":{"permissions":["read"],"store":"s","key_base64":"AP8="}},
                {"function":{"cache":"c","function_prefix":"fn-"}},
                {"auth":{"permissions":["read","list"]}}],
              "ip_filter":["10.0.0.0/8","2001:db8::/32"]}"#,
        ),
        ("super-user", r#"{"super_user":true}"#),
        (
            "ip-filters",
            r#"{"rules":[{"account":{"permissions":["read"]}}],"ip_filters":[["10.0.0.0/8"],["10.1.0.0/16"]]}"#,
        ),
        (
            "statements",
            r#"{"statements":[{"cache":{"role":"readwrite","cache":"c","key":"k"}},
                {"topic":{"role":"readonly","cache":"*","topic":"t"}},
                {"function":{"cache":"c","function":"f"}}]}"#,
        ),
        ("unknown-field", r#"{"rules":[],"extra":1}"#),
        ("not-json", "rules: everything"),
    ] {
        write("cli_permissions", name, text.as_bytes());
    }

    // Page tokens of both listings, and garbage.
    let key_token = URL_SAFE_NO_PAD.encode(format!("k1:{REVOKED_KEY_ID}"));
    let audit_token = URL_SAFE_NO_PAD.encode("a1:1750000000000-0");
    for (name, text) in [
        ("keys", key_token.as_str()),
        ("audit", audit_token.as_str()),
        ("wrong-prefix", &URL_SAFE_NO_PAD.encode("x1:1-0")),
        ("not-base64", "k1:!!"),
    ] {
        write("page_token", name, text.as_bytes());
    }
}
