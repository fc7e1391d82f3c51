//! What acknowledging a mutation only once a replica holds it costs (`--min-replica-acks`).
//!
//! Topology: a Redis primary with two replicas on loopback, and three authcell nodes on it, with
//! `--min-replica-acks` 0 (acknowledged when the primary has it), 1 and 2 (acknowledged when
//! one, or both, replicas have it too: the script, the fence and `WAIT` go in one round trip).
//! They are measured interleaved, call by call, so machine noise hits all alike. Each sample is
//! one gRPC call from the client's side: GenerateGlobalApiKey, then RevokeGlobalApiKey of the
//! key it made.
//!
//! Run: `cargo bench --bench durability` (N from `AUTHCELL_BENCH_MUTATIONS`, default 1000).

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
use authcell::proto::global_admin as ga;
use tonic::transport::Channel;

/// One create and one revoke through `channel`; their durations.
async fn mutate(channel: &Channel, owner: &str) -> (Duration, Duration) {
    let mut admin = ga::global_admin_client::GlobalAdminClient::new(channel.clone());
    let started = Instant::now();
    let created = admin
        .generate_global_api_key(with_key(
            ga::GenerateGlobalApiKeyRequest {
                role_id: "viewer".into(),
                description: "bench".into(),
                expiry: Some(ga::generate_global_api_key_request::Expiry::Never(
                    ga::generate_global_api_key_request::Never {},
                )),
            },
            owner,
        ))
        .await
        .expect("create key")
        .into_inner();
    let create = started.elapsed();
    let key_id = created.key_info.expect("info").key_id;
    let started = Instant::now();
    admin
        .revoke_global_api_key(with_key(ga::RevokeGlobalApiKeyRequest { key_id }, owner))
        .await
        .expect("revoke");
    (create, started.elapsed())
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    // `cargo bench` passes --bench; under `cargo test --all-targets` this is a short smoke run.
    let benching = std::env::args().any(|a| a == "--bench");
    let n: usize = std::env::var("AUTHCELL_BENCH_MUTATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if benching { 1000 } else { 20 });
    let topology = support::redis::Topology::start(false);
    let pem = generate_pem().expect("pem").to_string();
    let primary = topology.primary.url();
    let acks = |n: u32| RedisSettings {
        min_replica_acks: Some(n),
        ..RedisSettings::fixed(&primary)
    };
    let (plain, authority) = redis_node::start(&pem, "acks0", &acks(0)).await;
    let (one, _) = redis_node::start(&pem, "acks1", &acks(1)).await;
    let (all, _) = redis_node::start(&pem, "acks2", &acks(2)).await;
    let (owner, _) = authority
        .bootstrap("bench", false)
        .await
        .expect("bootstrap");
    let channels = [&plain, &one, &all];
    // Warm every node (connections, scripts loaded).
    for _ in 0..10 {
        for channel in channels {
            mutate(channel, &owner).await;
        }
    }
    // samples[acks][0 = create, 1 = revoke]
    let mut samples: [[Vec<Duration>; 2]; 3] = Default::default();
    for i in 0..n {
        // Rotate which goes first, so that none always follows another's writes.
        for k in 0..3 {
            let acks = (i + k) % 3;
            let (create, revoke) = mutate(channels[acks], &owner).await;
            samples[acks][0].push(create);
            samples[acks][1].push(revoke);
        }
    }
    for per_acks in &mut samples {
        for s in per_acks.iter_mut() {
            s.sort();
        }
    }
    println!(
        "mutation latency, {n} calls each, loopback, primary + 2 replicas; ratios against acks 0"
    );
    println!("| call | percentile | acks 0 | acks 1 | ratio | acks 2 | ratio |");
    println!("| --- | --- | --- | --- | --- | --- | --- |");
    for (name, call) in [("GenerateGlobalApiKey", 0), ("RevokeGlobalApiKey", 1)] {
        for (label, p) in [("p50", 0.5), ("p99", 0.99)] {
            let at = |acks: usize| ms(percentile(&samples[acks][call], p));
            println!(
                "| {name} | {label} | {:.3} ms | {:.3} ms | {:.2}x | {:.3} ms | {:.2}x |",
                at(0),
                at(1),
                at(1) / at(0),
                at(2),
                at(2) / at(0)
            );
        }
    }
}
