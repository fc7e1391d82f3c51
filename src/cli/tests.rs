use super::*;

#[test]
fn durations() {
    assert_eq!(parse_overlap("0"), Ok(Duration::ZERO));
    assert_eq!(parse_overlap("0s"), Ok(Duration::ZERO));
    assert_eq!(parse_overlap("24h"), Ok(Duration::from_secs(86_400)));
    assert!(parse_overlap("").is_err());
    assert!(parse_overlap("0x").is_err());
    assert_eq!(parse_duration("45s"), Ok(Duration::from_secs(45)));
    assert_eq!(parse_duration("90m"), Ok(Duration::from_secs(5400)));
    assert_eq!(parse_duration("12h"), Ok(Duration::from_secs(43_200)));
    assert_eq!(parse_duration("30d"), Ok(Duration::from_secs(2_592_000)));
    assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
    assert!(parse_duration("10").unwrap_err().contains("add a unit"));
    assert!(parse_duration("10x").unwrap_err().contains("unknown unit"));
    assert!(parse_duration("h").is_err());
    assert!(parse_duration("0s").is_err());
    assert!(parse_duration("").is_err());
    assert!(parse_duration("99999999999999999999d").is_err());
}

#[test]
fn timestamps() {
    assert_eq!(parse_timestamp_ms("0"), Ok(0));
    assert_eq!(parse_timestamp_ms("1700000000"), Ok(1_700_000_000_000));
    assert_eq!(
        parse_timestamp_ms("2023-11-14T22:13:20Z"),
        Ok(1_700_000_000_000)
    );
    assert_eq!(
        parse_timestamp_ms("2023-11-14T23:13:20.5+01:00"),
        Ok(1_700_000_000_500)
    );
    assert_eq!(
        parse_timestamp_ms("2023-11-14T17:13:20-05:00"),
        Ok(1_700_000_000_000)
    );
    assert_eq!(parse_timestamp_ms("2000-02-29"), Ok(951_782_400_000));
    // RFC 3339 lets the separators be lowercase, and a space stand for the `T`.
    assert_eq!(
        parse_timestamp_ms("2023-11-14t22:13:20z"),
        Ok(1_700_000_000_000)
    );
    assert_eq!(
        parse_timestamp_ms("2023-11-14 22:13:20Z"),
        Ok(1_700_000_000_000)
    );
    assert!(parse_timestamp_ms("2001-02-29").is_err());
    assert!(parse_timestamp_ms("2023-13-01T00:00:00Z").is_err());
    assert!(parse_timestamp_ms("2023-11-14T22:13Z").is_err());
    assert!(parse_timestamp_ms("1700000000000")
        .unwrap_err()
        .contains("milliseconds"));
    assert!(parse_timestamp_ms("yesterday").is_err());
    assert!(parse_timestamp_ms("1969-12-31T00:00:00Z").is_err());
}

#[test]
fn formatting_inverts_parsing() {
    for ms in [
        0,
        951_782_400_000,
        1_700_000_000_123,
        4_102_444_800_000,
        253_402_300_799_000,
    ] {
        let text = format_time_ms(ms, true);
        assert_eq!(parse_timestamp_ms(&text), Ok(ms), "{text}");
    }
    assert_eq!(format_secs(1_700_000_000), "2023-11-14T22:13:20Z");
}

#[test]
fn time_arguments() {
    assert_eq!(
        parse_time_arg("24h"),
        Ok(TimeArg::Ago(Duration::from_secs(86_400)))
    );
    assert_eq!(
        parse_time_arg("2023-11-14T22:13:20Z"),
        Ok(TimeArg::At(1_700_000_000_000))
    );
    assert_eq!(
        parse_time_arg("1700000000"),
        Ok(TimeArg::At(1_700_000_000_000))
    );
    assert_eq!(
        TimeArg::Ago(Duration::from_secs(1)).epoch_millis(5_000),
        4_000
    );
    assert!(parse_time_arg("soon").is_err());
}

#[test]
fn endpoints() {
    assert_eq!(
        endpoint_url("127.0.0.1:8080").unwrap(),
        "http://127.0.0.1:8080"
    );
    assert_eq!(
        endpoint_url("http://127.0.0.1:8080/").unwrap(),
        "http://127.0.0.1:8080"
    );
    assert_eq!(
        endpoint_url("HTTP://cell-a.example.com:443").unwrap(),
        "http://cell-a.example.com:443"
    );
    assert_eq!(endpoint_url("[::1]:8080").unwrap(), "http://[::1]:8080");
    assert_eq!(
        endpoint_url("https://cell-a.example.com").unwrap(),
        "https://cell-a.example.com"
    );
    assert_eq!(endpoint_url("grpc://x:1").unwrap_err().exit, Exit::Usage);
    assert_eq!(endpoint_url("  ").unwrap_err().exit, Exit::Usage);
}

#[test]
fn statuses_map_to_exit_codes() {
    assert_eq!(exit_for(Code::Unauthenticated), Exit::Auth);
    assert_eq!(exit_for(Code::PermissionDenied), Exit::Auth);
    for code in [
        Code::InvalidArgument,
        Code::NotFound,
        Code::AlreadyExists,
        Code::FailedPrecondition,
        Code::ResourceExhausted,
        Code::OutOfRange,
    ] {
        assert_eq!(exit_for(code), Exit::Refused, "{code:?}");
    }
    for code in [
        Code::Unavailable,
        Code::Internal,
        Code::Unimplemented,
        Code::Unknown,
        Code::DeadlineExceeded,
        Code::Aborted,
        Code::Cancelled,
        Code::DataLoss,
    ] {
        assert_eq!(exit_for(code), Exit::Server, "{code:?}");
    }
    let failure = from_status(Status::not_found("key_id: no key x"));
    assert_eq!(failure.message, "NOT_FOUND: key_id: no key x");
    assert_eq!(failure.exit, Exit::Refused);
}

#[test]
fn redaction() {
    let key = "eyJhbGciOiJFZERTQSJ9.payload.signature";
    assert_eq!(
        redact(&format!("bad key {key} here"), key),
        "bad key <redacted> here"
    );
    assert_eq!(redact("short a", "a"), "short a");
}

#[test]
fn tables_align_and_escape() {
    let table = render_table(
        &["ID", "NAME", "NOTE"],
        &[
            vec!["1".into(), "überlong".into(), "x".into()],
            vec!["22".into(), "b".into(), cell("")],
        ],
    );
    assert_eq!(
        table,
        "ID  NAME      NOTE\n1   überlong  x\n22  b         -\n"
    );
    assert_eq!(cell("a\nb\u{1b}"), "a\\nb\\u{1b}");
}

#[test]
fn permissions_documents_round_trip() {
    let text = r#"{
        "rules": [
            {"cache": {"permissions": ["read", "write"], "cache": "sessions", "key_prefix": "user:"}},
            {"cache": {"permissions": ["list"], "cache": "*"}},
            {"topic": {"permissions": ["read"], "cache": "*", "topic_prefix": "chat."}},
            {"store": {"permissions": ["read"], "store": "profiles", "key_base64": "/wA="}},
            {"function": {"cache": "fns", "function": "resize"}},
            {"auth": {"permissions": ["read", "list"]}},
            {"account": {"permissions": ["read"]}},
            {"resource": {"permissions": ["list"]}}
        ],
        "ip_filter": ["10.0.0.0/8", "2001:db8::/32"]
    }"#;
    let doc: PermissionsDoc = serde_json::from_str(text).unwrap();
    let proto = doc.to_proto().unwrap();
    assert_eq!(proto.conditions.len(), 1);
    let back = PermissionsDoc::from_proto(&proto);
    assert_eq!(back, doc);
    let json = serde_json::to_string(&back).unwrap();
    let again: PermissionsDoc = serde_json::from_str(&json).unwrap();
    assert_eq!(again, doc);
    // Every rule renders as one line.
    assert_eq!(rule_rows(&doc).len(), 8);
    assert_eq!(
        rule_rows(&doc)[0],
        vec![
            "cache",
            "read,write",
            "cache=\"sessions\" key_prefix=\"user:\""
        ]
    );
}

#[test]
fn permissions_documents_refuse_mistakes() {
    let refused = |text: &str| -> String {
        match serde_json::from_str::<PermissionsDoc>(text) {
            Err(e) => e.to_string(),
            Ok(doc) => doc.to_proto().unwrap_err(),
        }
    };
    assert!(
        refused(r#"{"rules":[{"cache":{"permissions":["reed"],"cache":"c"}}]}"#)
            .contains("rules[0].cache.permissions[0]: unknown permission \"reed\"")
    );
    assert!(refused(r#"{"rules":[{"cache":{"permissions":["read"]}}]}"#)
        .contains("missing field `cache`"));
    assert!(
        refused(r#"{"rules":[{"cache":{"permissions":["read"],"cache":"c","ky":"x"}}]}"#)
            .contains("unknown field `ky`")
    );
    assert!(refused(r#"{"rules":[{"cachee":{}}]}"#).contains("unknown variant `cachee`"));
    assert!(refused(
        r#"{"rules":[{"cache":{"permissions":["read"],"cache":"c","key":"a","key_prefix":"b"}}]}"#
    )
    .contains("at most one of"));
    assert!(refused(r#"{"rules":[]}"#).contains("at least one rule"));
    assert!(refused(r#"{"rules":[{"unknown":{}}]}"#).contains("unknown variant"));
    assert!(
        refused(r#"{"rules":[{"cache":{"permissions":["read"],"cache":""}}]}"#)
            .contains("must not be empty")
    );
}

#[test]
fn statements_from_documents() {
    let doc: StatementsDoc = serde_json::from_str(
        r#"{"statements":[
            {"cache":{"role":"readonly","cache":"sessions","key":"user:42"}},
            {"topic":{"role":"writeonly","cache":"*","topic":"orders"}},
            {"function":{"cache":"fns","function_prefix":"img-"}}
        ]}"#,
    )
    .unwrap();
    let protos: Vec<_> = doc
        .statements
        .iter()
        .map(|s| s.to_proto("s").unwrap())
        .collect();
    use pm::permissions_type as pt;
    match &protos[0].kind {
        Some(pt::Kind::CachePermissions(c)) => {
            assert_eq!(c.role, pm::CacheRole::CacheReadOnly as i32);
            assert!(matches!(
                &c.cache_item,
                Some(pt::cache_permissions::CacheItem::ItemSelector(s))
                    if s.kind == Some(pt::cache_item_selector::Kind::Key(b"user:42".to_vec()))
            ));
        }
        other => panic!("{other:?}"),
    }
    match &protos[1].kind {
        Some(pt::Kind::TopicPermissions(t)) => {
            assert_eq!(t.role, pm::TopicRole::TopicWriteOnly as i32);
            assert!(matches!(
                t.cache,
                Some(pt::topic_permissions::Cache::AllCaches(_))
            ));
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        &protos[2].kind,
        Some(pt::Kind::FunctionPermissions(_))
    ));
    let bad: Result<StatementsDoc, _> =
        serde_json::from_str(r#"{"statements":[{"cache":{"role":"all","cache":"c"}}]}"#);
    assert!(bad.is_err());
}

#[test]
fn token_ids_are_read_from_the_payload() {
    let payload = URL_SAFE_NO_PAD.encode(r#"{"jti":"abc","t":"d"}"#);
    assert_eq!(
        token_jti(&format!("header.{payload}.sig")).as_deref(),
        Some("abc")
    );
    assert_eq!(token_jti("not a token"), None);
}

#[test]
fn client_args_never_show_the_key() {
    let args = ClientArgs {
        endpoint: Some("e:1".into()),
        api_key: Some("secret-key-value".into()),
        json: false,
        tls_ca: None,
        insecure: false,
    };
    assert!(!format!("{args:?}").contains("secret-key-value"));
}

#[test]
fn the_key_travels_in_plaintext_only_to_loopback_unless_insecure() {
    for endpoint in [
        "127.0.0.1:8080",
        "http://127.0.0.1:8080",
        "127.3.2.1:8080",
        "localhost:8080",
        "http://LOCALHOST:8080",
        "[::1]:8080",
        "https://cell-a.example.com",
        "https://10.0.0.5:8443",
    ] {
        assert!(target_url(endpoint, false, false).is_ok(), "{endpoint}");
    }
    for endpoint in [
        "10.0.0.5:8080",
        "http://10.0.0.5:8080",
        "cell-a.example.com:443",
        "http://authcell:8080",
        "0.0.0.0:8080",
        "[2001:db8::1]:8080",
    ] {
        let refused = target_url(endpoint, false, false).expect_err(endpoint);
        assert_eq!(refused.exit, Exit::Usage, "{endpoint}");
        assert!(
            refused
                .message
                .starts_with(&format!("--endpoint {endpoint}: refusing")),
            "{refused:?}"
        );
        assert!(refused.message.contains("--insecure"), "{refused:?}");
        assert!(target_url(endpoint, false, true).is_ok(), "{endpoint}");
        // A CA means TLS: nothing travels in plaintext.
        assert!(
            target_url(endpoint, true, false)
                .expect(endpoint)
                .starts_with("https://"),
            "{endpoint}"
        );
    }
    assert_eq!(
        target_url("http://exa mple.com:1", false, false)
            .expect_err("bad")
            .exit,
        Exit::Usage
    );
}
