//! The verifier linked into a cache node: public keys from authcell's JWK set, revocations
//! from the cell's Redis replica, checks in process.

use std::sync::Arc;
use std::time::{Duration, Instant};

use authcell::clock::SystemClock;
use authcell::dataplane;
use authcell::policy::{Action, Resource};
use authcell::verifier::{Reason, Verifier};

use crate::support::cells::{Node, NodeConfig};
use crate::support::redis::Topology;
use crate::support::TestServer;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_linked_in_verifier_sees_keys_and_revocations_without_asking_authcell() {
    let topology = Topology::start(false);
    let pem = authcell::keyring::generate_pem().expect("pem").to_string();
    let primary = topology.primary.url();
    let replica = topology.replica_b.url();
    let server = Node::start(NodeConfig::new(
        &pem,
        "a",
        &primary,
        &topology.replica_a.url(),
    ))
    .await;
    let (owner, _) = server
        .authority
        .bootstrap("acme", false)
        .await
        .expect("bootstrap");
    let (key, key_id) = server.create_key(&owner, "viewer").await.expect("key");

    let endpoint = format!("http://{}", server.addr);
    let ring = dataplane::fetch_jwks(&endpoint).await.expect("jwks");
    let (view, sync) = dataplane::revocation_view(&replica, "authcell:")
        .await
        .expect("view");
    let verifier = Verifier::new(ring, view, Arc::new(SystemClock));
    let deadline = Instant::now() + Duration::from_secs(10);
    while !verifier.is_serving() {
        assert!(Instant::now() < deadline, "the view never loaded");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let resource = Resource {
        cache: Some("c"),
        key: Some(b"k"),
        ..Resource::default()
    };
    let decision = verifier.check(&key, Action::CacheRead, &resource, None);
    assert!(decision.allowed(), "{decision:?}");
    let decision = verifier.check(&key, Action::CacheWrite, &resource, None);
    assert_eq!(
        decision.outcome.map_err(|(r, _)| r),
        Err(Reason::Permission)
    );

    server.revoke_key(&owner, &key_id).await.expect("revoke");
    let started = Instant::now();
    loop {
        let decision = verifier.check(&key, Action::CacheRead, &resource, None);
        if let Err((Reason::Revoked, _)) = decision.outcome {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "revocation not seen"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let stats = verifier.stats().snapshot();
    assert!(stats.cache_hits > 0, "{stats:?}");
    assert!(stats.allowed >= 1);
    sync.stop().await;
    server.stop().await;
}

#[test]
fn jwks_sources_off_the_machine_need_https_or_an_explicit_opt_in() {
    for endpoint in [
        "http://127.0.0.1:8080",
        "http://127.9.9.9:8080",
        "http://localhost:8080",
        "http://[::1]:8080",
        "https://authcell.example.com:8443",
        "https://10.0.0.7:8443",
    ] {
        assert_eq!(
            dataplane::JwksSource::new(endpoint).check(),
            Ok(()),
            "{endpoint}"
        );
    }
    for endpoint in [
        "http://10.255.255.1:1",
        "http://authcell:8080",
        "http://authcell.example.com:8080",
        "http://0.0.0.0:8080",
        "http://[2001:db8::1]:8080",
    ] {
        let refused = dataplane::JwksSource::new(endpoint)
            .check()
            .expect_err(endpoint);
        assert!(refused.contains(endpoint), "names the endpoint: {refused}");
        assert!(
            refused.contains("allow_insecure_http") && refused.contains("--insecure-jwks-http"),
            "names the override: {refused}"
        );
        let opted_in = dataplane::JwksSource {
            allow_insecure_http: true,
            ..dataplane::JwksSource::new(endpoint)
        };
        assert_eq!(opted_in.check(), Ok(()), "{endpoint}");
    }
    let bad = dataplane::JwksSource::new("authcell:8080")
        .check()
        .expect_err("no scheme");
    assert!(
        bad.contains("use http://host:port or https://host:port"),
        "{bad}"
    );
}

/// Linux delivers a connection to 0.0.0.0 to this machine; the policy reads only the URL and
/// counts 0.0.0.0 as remote. So a refusal can be told apart from a failed connection without
/// sending anything to another host: a listener on 127.0.0.1 would see the attempt.
#[cfg(target_os = "linux")]
#[tokio::test]
async fn plain_http_jwks_off_the_machine_is_refused_before_connecting() {
    let trap = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://0.0.0.0:{}", trap.local_addr().expect("addr").port());

    let refused = dataplane::fetch_jwks(url.as_str())
        .await
        .expect_err("refused");
    assert!(refused.contains(&url), "{refused}");
    assert!(refused.contains("refusing plain http"), "{refused}");
    let verifier = Verifier::new(
        authcell::keyring::KeyRing::ephemeral().expect("ring"),
        Arc::new(authcell::verifier::view::View::new()),
        Arc::new(SystemClock),
    );
    let refused = dataplane::spawn_jwks_refresher(
        url.as_str(),
        verifier.keys().clone(),
        Duration::from_millis(10),
    )
    .expect_err("the refresher refuses at once");
    assert!(refused.contains("refusing plain http"), "{refused}");
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(
        tokio::time::timeout(Duration::from_millis(200), trap.accept())
            .await
            .is_err(),
        "a connection was attempted"
    );

    // Precondition of the above: a connection to that URL's address does reach the trap.
    let probe = tokio::net::TcpStream::connect(url.trim_start_matches("http://"))
        .await
        .expect("0.0.0.0 reaches this machine");
    tokio::time::timeout(Duration::from_secs(5), trap.accept())
        .await
        .expect("the trap sees a connection")
        .expect("accept");
    drop(probe);
}

#[cfg(target_os = "linux")]
#[tokio::test]
async fn plain_http_jwks_is_fetched_from_loopback_or_when_explicitly_allowed() {
    let server = TestServer::start().await;
    let expected = server.authority.verifier().keys().load().kids();
    let ring = dataplane::fetch_jwks(server.url())
        .await
        .expect("loopback http");
    assert_eq!(ring.kids(), expected);
    // 0.0.0.0 counts as remote (see above) but reaches this machine's server.
    let remote = format!("http://0.0.0.0:{}", server.addr.port());
    let allowed = dataplane::JwksSource {
        allow_insecure_http: true,
        ..dataplane::JwksSource::new(remote.as_str())
    };
    let ring = dataplane::fetch_jwks(allowed.clone())
        .await
        .expect("opted in");
    assert_eq!(ring.kids(), expected);
    let verifier = Verifier::new(
        ring,
        Arc::new(authcell::verifier::view::View::new()),
        Arc::new(SystemClock),
    );
    let refresher = dataplane::spawn_jwks_refresher(
        allowed,
        verifier.keys().clone(),
        Duration::from_millis(10),
    )
    .expect("opted in");
    refresher.abort();
}
