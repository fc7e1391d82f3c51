//! Authorize: request validation and every kind of bad credential.
//!
//! Every test talks to a real server over loopback. Negative tests first show that the same
//! call succeeds when only the one thing under test is changed back, so they fail for the
//! intended reason. Time moves only through the server's manual clock.

use crate::support::grpc::*;
use authcell::proto::authcell::v1 as pb;
use tonic::Code;

#[tokio::test]
async fn authorize_names_the_missing_request_field() {
    let server = TestServer::start().await;
    let key = server.owner_key.clone();
    let cases = [
        (
            "action",
            cache_check(&key, pb::Action::CacheRead, "c", b"k"),
            pb::AuthorizeRequest {
                action: pb::Action::Unspecified as i32,
                ..cache_check(&key, pb::Action::CacheRead, "c", b"k")
            },
        ),
        (
            "action",
            cache_check(&key, pb::Action::CacheRead, "c", b"k"),
            pb::AuthorizeRequest {
                action: 99,
                ..cache_check(&key, pb::Action::CacheRead, "c", b"k")
            },
        ),
        (
            "cache",
            cache_check(&key, pb::Action::CacheWrite, "c", b"k"),
            cache_check(&key, pb::Action::CacheWrite, "", b"k"),
        ),
        (
            "topic",
            topic_check(&key, pb::Action::TopicPublish, "c", "t"),
            topic_check(&key, pb::Action::TopicPublish, "c", ""),
        ),
        (
            "function",
            function_check(&key, "c", "f"),
            function_check(&key, "c", ""),
        ),
    ];
    for (field, valid, invalid) in cases {
        let answer = try_authorize(&server, valid).await;
        assert!(
            answer
                .expect("precondition: the complete request is answered")
                .allowed
        );
        let result = try_authorize(&server, invalid).await;
        assert_status(result, Code::InvalidArgument, &[field]);
    }
}

#[tokio::test]
async fn authorize_denies_bad_credentials_without_echoing_them() {
    let (server, public) = server_with_known_key().await;
    let real = server.owner_key.clone();
    let genuine = server
        .authorize(cache_check(&real, pb::Action::CacheRead, "c", b"k"))
        .await;
    assert!(
        genuine.allowed,
        "precondition: the genuine key is allowed: {genuine:?}"
    );

    for (case, credential, _) in bad_credentials(&real, &public) {
        let decision = try_authorize(
            &server,
            cache_check(&credential, pb::Action::CacheRead, "c", b"k"),
        )
        .await
        .unwrap_or_else(|e| panic!("{case}: a bad credential is a decision, not an error: {e:?}"));
        assert!(!decision.allowed, "{case}: {decision:?}");
        assert_eq!(decision.reason(), pb::Reason::Unauthenticated, "{case}");
        assert!(decision.key_id.is_empty(), "{case}: {decision:?}");
        if !credential.is_empty() {
            assert!(
                !decision.message.contains(&credential),
                "{case}: message echoes the credential"
            );
        }
    }
}
