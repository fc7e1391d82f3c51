//! Revocation propagation across cells, against its floor.
//!
//! Topology: one Redis primary and two replicas (cells a and b), one authcell node per cell
//! reading its own replica. For each of N keys: revoke it through cell a's gRPC API, then poll
//! cell b's Authorize until it says `revoked`; the time from the start of the revoke call to
//! that answer is one sample. The floor is Redis's own replication lag measured in the same
//! run the same way: SET on the primary, then poll cell b's replica until it sees the value.
//!
//! Run: `cargo bench --bench propagation` (N from `AUTHCELL_BENCH_REVOCATIONS`, default 1000).
//! Goal (issue 4): p99 propagation <= 2 x p99 floor + 5 ms.

/// The test suite's Redis harness, at the same module path as in the tests.
mod support {
    // Inside an inline module a path is relative to `benches/support/`.
    #[path = "../../tests/it/support/redis/mod.rs"]
    pub mod redis;
}
#[path = "support/redis_node.rs"]
mod redis_node;

use redis_node::{ms, percentile, with_key};

use std::time::{Duration, Instant};

use authcell::keyring::generate_pem;
use authcell::node::RedisSettings;
use authcell::proto::authcell::v1 as pb;
use authcell::proto::global_admin as ga;
use redis::AsyncCommands;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    // `cargo bench` passes --bench; under `cargo test --all-targets` this runs as a short smoke
    // run, so the benchmark cannot rot unnoticed.
    let benching = std::env::args().any(|a| a == "--bench");
    let n: usize = std::env::var("AUTHCELL_BENCH_REVOCATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if benching { 1000 } else { 20 });
    let topology = support::redis::Topology::start(false);
    let pem = generate_pem().expect("pem").to_string();
    let primary = topology.primary.url();
    let cell = |replica: String| RedisSettings {
        read_url: Some(replica),
        ..RedisSettings::fixed(&primary)
    };
    let (a, authority_a) = redis_node::start(&pem, "a", &cell(topology.replica_a.url())).await;
    let (b, _) = redis_node::start(&pem, "b", &cell(topology.replica_b.url())).await;
    let (owner, _) = authority_a
        .bootstrap("bench", false)
        .await
        .expect("bootstrap");

    let mut admin_a = ga::global_admin_client::GlobalAdminClient::new(a.clone());
    let mut verifier_b = pb::verifier_client::VerifierClient::new(b.clone());
    let mut keys = Vec::with_capacity(n);
    for _ in 0..n {
        let created = admin_a
            .generate_global_api_key(with_key(
                ga::GenerateGlobalApiKeyRequest {
                    role_id: "viewer".into(),
                    description: "bench".into(),
                    expiry: Some(ga::generate_global_api_key_request::Expiry::Never(
                        ga::generate_global_api_key_request::Never {},
                    )),
                },
                &owner,
            ))
            .await
            .expect("create key")
            .into_inner();
        keys.push((created.api_key, created.key_info.expect("info").key_id));
    }

    // Floor: Redis replication lag primary -> replica b, polled the same way.
    let client_p = redis::Client::open(primary.as_str()).expect("client");
    let client_b = redis::Client::open(topology.replica_b.url().as_str()).expect("client");
    let mut conn_p = client_p
        .get_multiplexed_async_connection()
        .await
        .expect("primary");
    let mut conn_b = client_b
        .get_multiplexed_async_connection()
        .await
        .expect("replica b");
    let mut floor = Vec::with_capacity(n);
    for i in 0..n {
        let value = i.to_string();
        let started = Instant::now();
        let _: () = conn_p.set("bench:floor", &value).await.expect("set");
        loop {
            let seen: Option<String> = conn_b.get("bench:floor").await.expect("get");
            if seen.as_deref() == Some(value.as_str()) {
                break;
            }
        }
        floor.push(started.elapsed());
    }

    let mut propagation = Vec::with_capacity(n);
    for (key, key_id) in &keys {
        let started = Instant::now();
        admin_a
            .revoke_global_api_key(with_key(
                ga::RevokeGlobalApiKeyRequest {
                    key_id: key_id.clone(),
                },
                &owner,
            ))
            .await
            .expect("revoke");
        loop {
            let verdict = verifier_b
                .authorize(pb::AuthorizeRequest {
                    credential: key.clone(),
                    action: pb::Action::CacheRead as i32,
                    cache: "c".into(),
                    ..Default::default()
                })
                .await
                .expect("authorize")
                .into_inner();
            if verdict.reason == pb::Reason::Revoked as i32 {
                break;
            }
        }
        propagation.push(started.elapsed());
    }

    floor.sort();
    propagation.sort();
    let (f50, f99) = (percentile(&floor, 0.5), percentile(&floor, 0.99));
    let (p50, p99) = (
        percentile(&propagation, 0.5),
        percentile(&propagation, 0.99),
    );
    let goal = f99 * 2 + Duration::from_millis(5);
    println!("revocation propagation, cell a -> cell b ({n} revocations)");
    println!("{:<44} {:>10} {:>10}", "", "p50 ms", "p99 ms");
    println!(
        "{:<44} {:>10.3} {:>10.3}",
        "floor: Redis replication primary -> replica b",
        ms(f50),
        ms(f99)
    );
    println!(
        "{:<44} {:>10.3} {:>10.3}",
        "revoke on a -> Authorize on b says revoked",
        ms(p50),
        ms(p99)
    );
    println!(
        "ratio p99/floor p99: {:.2}; goal p99 <= 2 x floor p99 + 5 ms = {:.3} ms: {}",
        ms(p99) / ms(f99).max(f64::EPSILON),
        ms(goal),
        if p99 <= goal { "met" } else { "MISSED" }
    );
}
