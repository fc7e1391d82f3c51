//! The verifier linked into a cache node: public keys from authcell's JWK set, revocations
//! from the cell's Redis replica, checks in process.

use std::sync::Arc;
use std::time::{Duration, Instant};

use authcell::clock::SystemClock;
use authcell::node;
use authcell::permissions::{Action, Resource};
use authcell::verifier::{Reason, Verifier};

use crate::cells::{Node, NodeConfig};
use crate::redis_env::Topology;

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
    let ring = node::fetch_jwks(&endpoint).await.expect("jwks");
    let (view, sync) = node::revocation_view(&replica, "authcell:")
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
