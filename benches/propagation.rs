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

#[path = "../tests/it/redis_env.rs"]
mod redis_env;

use std::sync::Arc;
use std::time::{Duration, Instant};

use authcell::keyring::{generate_pem, KeyRing};
use authcell::node::{self, NodeOptions, RedisSettings};
use authcell::proto::authcell::v1 as pb;
use authcell::proto::global_admin as ga;
use authcell::server;
use authcell::verifier::StalePolicy;
use redis::AsyncCommands;
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
    cell: &str,
    primary: &str,
    replica: &str,
) -> (Channel, Arc<authcell::authority::Authority>) {
    let ring = KeyRing::from_pem("bench", pem).expect("signing key");
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let options = NodeOptions {
        cell: cell.into(),
        endpoint: addr.to_string(),
        vend_rate_per_second: 0,
        vend_burst: 0,
        ..Default::default()
    };
    let settings = RedisSettings {
        primary: authcell::store::link::Target::Url(primary.into()),
        read_url: Some(replica.into()),
        prefix: "authcell:".into(),
        stream_max_len: 100_000,
        max_staleness: Duration::from_secs(30),
        stale_policy: StalePolicy::Serve,
        min_replica_acks: None,
        replica_ack_timeout: authcell::node::DEFAULT_REPLICA_ACK_TIMEOUT,
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

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    // `cargo bench` passes --bench; under `cargo test --all-targets` this runs as a short smoke
    // run, so the benchmark cannot rot unnoticed.
    let benching = std::env::args().any(|a| a == "--bench");
    let n: usize = std::env::var("AUTHCELL_BENCH_REVOCATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if benching { 1000 } else { 20 });
    let topology = redis_env::Topology::start(false);
    let pem = generate_pem().expect("pem").to_string();
    let primary = topology.primary.url();
    let (a, authority_a) = start_node(&pem, "a", &primary, &topology.replica_a.url()).await;
    let (b, _) = start_node(&pem, "b", &primary, &topology.replica_b.url()).await;
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
