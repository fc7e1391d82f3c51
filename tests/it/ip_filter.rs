//! ip_filter conditions: a key works only from the networks its role allows.
//!
//! Every test talks to a real server over loopback. Negative tests first show that the same
//! call succeeds when only the one thing under test is changed back, so they fail for the
//! intended reason. Time moves only through the server's manual clock.

use crate::support::grpc::*;
use authcell::proto::authcell::v1 as pb;
use tonic::Code;

#[tokio::test]
async fn ip_filter_allows_only_peers_inside_an_ipv4_range() {
    let server = TestServer::start().await;
    let set = only_from(explicit(vec![cache_read_on("c")]), vec![v4("10.0.0.0/8")]);
    let role = owner_creates_role(&server, "office", set).await;
    let (key, _) = server.create_key(&server.owner_key, &role).await;

    for peer in ["10.1.2.3", "10.1.2.3:4567", "::ffff:10.1.2.3"] {
        let decision = server.authorize(read_from(&key, "c", peer)).await;
        assert!(decision.allowed, "{peer}: {decision:?}");
    }
    for peer in ["192.168.0.1", "11.0.0.1", "2001:db8::1", ""] {
        let decision = server.authorize(read_from(&key, "c", peer)).await;
        assert!(!decision.allowed, "{peer}: {decision:?}");
        assert_eq!(decision.reason(), pb::Reason::IpNotAllowed, "{peer:?}");
    }
}

#[tokio::test]
async fn ip_filter_allows_only_peers_inside_an_ipv6_range() {
    let server = TestServer::start().await;
    let set = only_from(
        explicit(vec![cache_read_on("c")]),
        vec![v6("2001:db8::/32")],
    );
    let role = owner_creates_role(&server, "office6", set).await;
    let (key, _) = server.create_key(&server.owner_key, &role).await;

    for peer in ["2001:db8::1", "[2001:db8:ffff::1]:443"] {
        let decision = server.authorize(read_from(&key, "c", peer)).await;
        assert!(decision.allowed, "{peer}: {decision:?}");
    }
    for peer in ["2001:db9::1", "10.1.2.3", ""] {
        let decision = server.authorize(read_from(&key, "c", peer)).await;
        assert!(!decision.allowed, "{peer}: {decision:?}");
        assert_eq!(decision.reason(), pb::Reason::IpNotAllowed, "{peer:?}");
    }
}

#[tokio::test]
async fn authorize_refuses_an_unparseable_peer_address() {
    let server = TestServer::start().await;
    let result = try_authorize(&server, read_from(&server.owner_key, "c", "10.1.2.3")).await;
    assert!(
        result
            .expect("precondition: a valid peer is accepted")
            .allowed
    );
    for peer in ["not-an-ip", "10.1.2", "10.0.0.0/8"] {
        let result = try_authorize(&server, read_from(&server.owner_key, "c", peer)).await;
        assert_status(result, Code::InvalidArgument, &["peer_address"]);
    }
}

#[tokio::test]
async fn management_call_from_outside_the_keys_ip_filter_is_permission_denied() {
    let server = TestServer::start().await;
    let rules = || explicit(vec![auth_all(), cache_read_on("c")]);
    let loopback = owner_creates_role(
        &server,
        "local-admins",
        only_from(rules(), vec![v4("127.0.0.0/8")]),
    )
    .await;
    let fenced = owner_creates_role(
        &server,
        "office-admins",
        only_from(rules(), vec![v4("10.0.0.0/8")]),
    )
    .await;
    let (loopback_key, _) = server.create_key(&server.owner_key, &loopback).await;
    let (fenced_key, _) = server.create_key(&server.owner_key, &fenced).await;
    list_roles(&server, &loopback_key).await.expect(
        "precondition: the server sees the loopback peer, so a 127.0.0.0/8 filter admits it",
    );
    let inside = server
        .authorize(read_from(&fenced_key, "c", "10.1.2.3"))
        .await;
    assert!(
        inside.allowed,
        "precondition: the fenced key is valid: {inside:?}"
    );

    let result = list_roles(&server, &fenced_key).await;
    assert_status(result, Code::PermissionDenied, &["ip_filter"]);
    let result = generate(&server, &fenced_key, "viewer", "from loopback", never()).await;
    assert_status(result, Code::PermissionDenied, &["ip_filter"]);
}
