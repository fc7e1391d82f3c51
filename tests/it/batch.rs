//! BatchAuthorize: many checks in one call, each with its own decision.

use authcell::proto::authcell::v1 as pb;
use tonic::Code;

use crate::support::*;

#[tokio::test]
async fn each_check_of_a_batch_gets_its_own_decision_in_order() {
    let server = TestServer::start().await;
    let (viewer, _) = server.create_key(&server.owner_key, "viewer").await;
    let requests = vec![
        cache_check(&viewer, pb::Action::CacheRead, "c", b"k"),
        cache_check(&viewer, pb::Action::CacheWrite, "c", b"k"),
        cache_check("not-a-jwt", pb::Action::CacheRead, "c", b"k"),
        pb::AuthorizeRequest {
            credential: viewer.clone(),
            action: pb::Action::CacheRead as i32,
            ..Default::default()
        },
        topic_check(&server.owner_key, pb::Action::TopicPublish, "c", "t"),
    ];
    let responses = server
        .verifier()
        .await
        .batch_authorize(pb::BatchAuthorizeRequest { requests })
        .await
        .expect("batch")
        .into_inner()
        .responses;
    assert_eq!(responses.len(), 5);
    assert!(responses[0].allowed);
    assert_eq!(responses[1].reason, pb::Reason::Permission as i32);
    assert_eq!(responses[2].reason, pb::Reason::Unauthenticated as i32);
    assert_eq!(responses[3].reason, pb::Reason::InvalidRequest as i32);
    assert!(
        responses[3].message.contains("requests[3].cache"),
        "{:?}",
        responses[3]
    );
    assert!(responses[4].allowed);
    assert_eq!(responses[4].account_id, ACCOUNT);
}

#[tokio::test]
async fn a_batch_over_1000_checks_is_refused() {
    let server = TestServer::start().await;
    let one = cache_check(&server.owner_key, pb::Action::CacheRead, "c", b"k");
    let mut client = server.verifier().await;
    let ok = client
        .batch_authorize(pb::BatchAuthorizeRequest {
            requests: vec![one.clone(); 1000],
        })
        .await
        .expect("precondition: 1000 checks are served")
        .into_inner();
    assert!(ok.responses.iter().all(|r| r.allowed));
    let status = client
        .batch_authorize(pb::BatchAuthorizeRequest {
            requests: vec![one; 1001],
        })
        .await
        .expect_err("1001 checks");
    assert_eq!(status.code(), Code::InvalidArgument);
    // Names the field, the limit and what was asked.
    assert_eq!(
        status.message(),
        "requests: at most 1000 checks per call, got 1001",
        "{status:?}"
    );
}
