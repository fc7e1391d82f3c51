//! What acknowledging a mutation only once a replica holds it costs (`--min-replica-acks`).
//!
//! Topology: a Redis primary with two replicas on loopback, and two authcell nodes on it, one
//! with `--min-replica-acks 0` (acknowledged when the primary has it) and one with `1`
//! (acknowledged when a replica has it too: the script and `WAIT 1` go in one round trip). The
//! two are measured interleaved, call by call, so machine noise hits both alike. Each sample is
//! one gRPC call from the client's side: GenerateGlobalApiKey, then RevokeGlobalApiKey of the
//! key it made.
//!
//! Run: `cargo bench --bench durability` (N from `AUTHCELL_BENCH_MUTATIONS`, default 1000).

#[path = "../tests/it/redis_env.rs"]
mod redis_env;

use std::time::{Duration, Instant};

use authcell::keyring::{generate_pem, KeyRing};
use authcell::node::{self, NodeOptions, RedisSettings};
use authcell::proto::global_admin as ga;
use authcell::server;
use tokio::net::TcpListener;
use tonic::transport::Channel;
use tonic::Request;

fn with_key<T>(message: T, key: &str) -> Request<T> {
    let mut request = Request::new(message);
    if let Ok(value) = key.parse() {
        request.metadata_mut().insert("authorization", value);
    }
    request
}

async fn start_node(
    pem: &str,
    primary: &str,
    acks: u32,
) -> (Channel, std::sync::Arc<authcell::authority::Authority>) {
    let ring = KeyRing::from_pem("bench", pem).expect("signing key");
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let options = NodeOptions {
        cell: format!("acks{acks}"),
        endpoint: addr.to_string(),
        ..Default::default()
    };
    let settings = RedisSettings {
        min_replica_acks: Some(acks),
        ..RedisSettings::fixed(primary)
    };
    let node = node::with_redis(ring, &options, &settings)
        .await
        .expect("node");
    let authority = node.authority.clone();
    tokio::spawn(async move {
        let _ = server::run(listener, node.authority, std::future::pending()).await;
        node.sync.stop().await;
    });
    while !authority.verifier().is_serving() {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let channel = Channel::from_shared(format!("http://{addr}"))
        .expect("url")
        .connect()
        .await
        .expect("connect");
    (channel, authority)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

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
    let topology = redis_env::Topology::start(false);
    let pem = generate_pem().expect("pem").to_string();
    let primary = topology.primary.url();
    let (plain, authority) = start_node(&pem, &primary, 0).await;
    let (durable, _) = start_node(&pem, &primary, 1).await;
    let (owner, _) = authority
        .bootstrap("bench", false)
        .await
        .expect("bootstrap");
    // Warm both (connections, scripts loaded).
    for _ in 0..10 {
        mutate(&plain, &owner).await;
        mutate(&durable, &owner).await;
    }
    let mut samples: [Vec<Duration>; 4] = Default::default();
    for i in 0..n {
        // Alternate which goes first, so neither always follows the other's writes.
        let order = if i % 2 == 0 {
            [(&plain, 0), (&durable, 2)]
        } else {
            [(&durable, 2), (&plain, 0)]
        };
        for (channel, slot) in order {
            let (create, revoke) = mutate(channel, &owner).await;
            samples[slot].push(create);
            samples[slot + 1].push(revoke);
        }
    }
    for s in &mut samples {
        s.sort();
    }
    println!("mutation latency, {n} calls each, loopback, primary + 2 replicas");
    println!("| call | acks 0 p50 | acks 1 p50 | ratio | acks 0 p99 | acks 1 p99 | ratio |");
    println!("| --- | --- | --- | --- | --- | --- | --- |");
    for (name, base) in [("GenerateGlobalApiKey", 0), ("RevokeGlobalApiKey", 1)] {
        let (a, b) = (&samples[base], &samples[base + 2]);
        let (a50, b50, a99, b99) = (
            percentile(a, 0.5),
            percentile(b, 0.5),
            percentile(a, 0.99),
            percentile(b, 0.99),
        );
        println!(
            "| {name} | {:.3} ms | {:.3} ms | {:.2}x | {:.3} ms | {:.3} ms | {:.2}x |",
            ms(a50),
            ms(b50),
            ms(b50) / ms(a50),
            ms(a99),
            ms(b99),
            ms(b99) / ms(a99)
        );
    }
}
