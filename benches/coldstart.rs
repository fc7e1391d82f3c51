//! Cold start at scale: a node starting against a Redis holding 1 000 000 revoked ids, 100 000
//! keys and 1 000 custom roles, against the floor of Redis handing the same data to a client.
//!
//! - Floor: a client reads what a node loads (the `revoked`, `watermarks` and `roles` hashes)
//!   with the node's own access pattern (HSCAN, COUNT 5000) into memory, on loopback.
//! - Measured: a node process (this binary, re-run as a child so its memory is its own) from
//!   start to SERVING (its view loaded), and its resident memory then.
//! - Rolling restarts: Authorize latency on a node that is already serving, while another node
//!   cold-starts beside it, vs the same node quiet.
//!
//! Run: `cargo bench --bench coldstart` (`AUTHCELL_BENCH_REVOKED`, default 1 000 000). Under
//! `cargo test --all-targets` it is a smoke run with 20 000 revoked ids.
//! Goal (issue 12): time to SERVING <= 2 x the floor.

/// The test suite's Redis harness, at the same module path as in the tests.
mod support {
    // Inside an inline module a path is relative to `benches/support/`.
    #[path = "../../tests/it/support/redis/mod.rs"]
    pub mod redis;
}
#[path = "support/redis_node.rs"]
mod redis_node;

use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use authcell::keyring::generate_pem;
use authcell::node::RedisSettings;
use authcell::policy::{NameSel, Ops, PermissionSet, Rule};
use authcell::proto::authcell::v1 as pb;
use authcell::store::redis::{revoked_credential_field, Keys};
use authcell::store::{KeyRecord, RoleRecord};
use redis_node::{ms, percentile};

const CHILD_ENV: &str = "AUTHCELL_BENCH_COLDSTART_CHILD";
const PEM_ENV: &str = "AUTHCELL_BENCH_COLDSTART_PEM";
const PREFIX: &str = "authcell:";
const ACCOUNTS: usize = 1_000;

fn main() {
    if let Ok(url) = std::env::var(CHILD_ENV) {
        child(&url);
        return;
    }
    let benching = std::env::args().any(|a| a == "--bench");
    let revoked: usize = std::env::var("AUTHCELL_BENCH_REVOKED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if benching { 1_000_000 } else { 20_000 });
    let keys = revoked / 10;
    let roles = (revoked / 1000).max(10);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let redis = support::redis::RedisServer::start(Default::default());
    let url = redis.url();
    let started = Instant::now();
    runtime.block_on(populate(&url, revoked, keys, roles));
    println!(
        "cold start: {revoked} revoked ids, {keys} keys, {roles} roles in Redis (written in {:.1} s)",
        started.elapsed().as_secs_f64()
    );
    let used: String = redis.command(&["INFO", "memory"]);
    let redis_bytes = used
        .lines()
        .find_map(|l| l.trim().strip_prefix("used_memory:"))
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(0);
    let pem = generate_pem().expect("pem").to_string();
    let (serving, authority) =
        runtime.block_on(async { redis_node::start(&pem, "a", &RedisSettings::fixed(&url)).await });
    let owner = runtime
        .block_on(authority.bootstrap("bench", false))
        .expect("bootstrap")
        .0;

    let rounds = if benching { 3 } else { 1 };
    let (mut floors, mut starts, mut rss) = (Vec::new(), Vec::new(), Vec::new());
    let (mut quiet, mut during) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        floors.push(runtime.block_on(floor(&url)));
        // A node starting beside the serving one, with the serving one under checks.
        let stop = Arc::new(AtomicBool::new(false));
        let checking = runtime.spawn(check_for(serving.clone(), owner.clone(), stop.clone()));
        let child_started = Instant::now();
        let output = Command::new(std::env::current_exe().expect("exe"))
            .env(CHILD_ENV, &url)
            .env(PEM_ENV, &pem)
            .output()
            .expect("spawn the starting node");
        let took = child_started.elapsed();
        stop.store(true, Ordering::SeqCst);
        during.extend(runtime.block_on(checking).expect("checks beside the start"));
        assert!(
            output.status.success(),
            "starting node failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let stdout = String::from_utf8_lossy(&output.stdout);
        let field = |name: &str| -> u64 {
            stdout
                .split_whitespace()
                .find_map(|kv| kv.strip_prefix(&format!("{name}=")))
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("the starting node printed no {name}: {stdout}"))
        };
        starts.push(Duration::from_millis(field("serving_ms")));
        rss.push(field("rss"));
        // The same node, quiet, for as long.
        let stop = Arc::new(AtomicBool::new(false));
        let checking = runtime.spawn(check_for(serving.clone(), owner.clone(), stop.clone()));
        std::thread::sleep(took);
        stop.store(true, Ordering::SeqCst);
        quiet.extend(runtime.block_on(checking).expect("quiet checks"));
    }
    floors.sort();
    starts.sort();
    let (floor_ms, start_ms) = (ms(floors[floors.len() / 2]), ms(starts[starts.len() / 2]));
    let rss_mib = rss.iter().copied().max().unwrap_or(0) as f64 / 1048576.0;
    println!();
    println!(
        "{:<52} {:>12} {:>12} {:>8}",
        "", "floor", "authcell", "ratio"
    );
    println!(
        "{:<52} {:>9.0} ms {:>9.0} ms {:>7.2}x  goal <= 2x: {}",
        "Redis hands the state over / node start to SERVING",
        floor_ms,
        start_ms,
        start_ms / floor_ms.max(f64::EPSILON),
        if benching {
            if start_ms <= 2.0 * floor_ms {
                "met"
            } else {
                "MISSED"
            }
        } else {
            "(smoke)"
        }
    );
    println!(
        "  median of {rounds}; the starting node's resident memory once SERVING: {rss_mib:.0} MiB \
         (Redis itself holds {:.0} MiB for the same data)",
        redis_bytes as f64 / 1048576.0
    );
    quiet.sort();
    during.sort();
    if !quiet.is_empty() && !during.is_empty() {
        println!(
            "{:<52} {:>12} {:>12} {:>8}",
            "Authorize on a serving node", "quiet", "beside start", "ratio"
        );
        for (label, p) in [("p50", 0.5), ("p99", 0.99)] {
            let (q, d) = (percentile(&quiet, p), percentile(&during, p));
            println!(
                "{:<52} {:>9.3} ms {:>9.3} ms {:>7.2}x",
                format!("  {label} ({} / {} checks)", quiet.len(), during.len()),
                ms(q),
                ms(d),
                ms(d) / ms(q).max(f64::EPSILON)
            );
        }
        println!(
            "  (two cores shared by the serving node, the starting node and the load: the \
             starting node's CPU is the only thing they share; checks never wait on its load)"
        );
    }
    drop(redis);
}

/// Writes the state: revoked ids spread over [`ACCOUNTS`] accounts, key records, custom roles.
async fn populate(url: &str, revoked: usize, keys: usize, roles: usize) {
    let client = redis::Client::open(url).expect("client");
    let mut conn = client
        .get_multiplexed_async_connection()
        .await
        .expect("connect");
    let layout = Keys::new(PREFIX);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let batch = 10_000;
    let mut written = 0;
    while written < revoked {
        let mut pipe = redis::pipe();
        for i in written..(written + batch).min(revoked) {
            pipe.cmd("HSET")
                .arg(layout.revoked())
                .arg(revoked_credential_field(
                    &format!("acme-{}", i % ACCOUNTS),
                    &uuid::Uuid::now_v7().to_string(),
                ))
                .arg(now)
                .ignore();
        }
        pipe.query_async::<()>(&mut conn).await.expect("revoked");
        written += batch;
    }
    let mut written = 0;
    while written < keys {
        let mut pipe = redis::pipe();
        for i in written..(written + batch).min(keys) {
            let account = format!("acme-{}", i % ACCOUNTS);
            let key_id = uuid::Uuid::now_v7().to_string();
            let record = KeyRecord {
                key_id: key_id.clone(),
                account: account.clone(),
                description: format!("key {i}"),
                role_id: Some("viewer".into()),
                inline: None,
                token_id: None,
                created_by: String::new(),
                issued_at: now,
                issued_at_ms: now * 1000,
                ancestors: Vec::new(),
                origin_issued_at_ms: now * 1000,
                expires_at: None,
                revoked_at: None,
                refresh_hash: None,
                rotation: Default::default(),
            };
            pipe.cmd("HSET")
                .arg(layout.key(&account, &key_id))
                .arg("rec")
                .arg(serde_json::to_string(&record).expect("json"))
                .ignore();
            pipe.cmd("ZADD")
                .arg(layout.account_keys(&account))
                .arg(0)
                .arg(&key_id)
                .ignore();
        }
        pipe.query_async::<()>(&mut conn).await.expect("keys");
        written += batch;
    }
    let mut pipe = redis::pipe();
    for i in 0..roles {
        let account = format!("acme-{}", i % ACCOUNTS);
        let role = RoleRecord {
            role_id: format!("role-{i}"),
            account: account.clone(),
            name: format!("role {i}"),
            description: String::new(),
            permissions: PermissionSet::rules(vec![Rule::Cache {
                ops: Ops::READ,
                cache: NameSel::Name(format!("cache-{i}")),
                item: authcell::policy::BytesSel::All,
            }]),
            created_at: now,
            updated_at: now,
        };
        pipe.cmd("HSET")
            .arg(layout.all_roles())
            .arg(format!("{account}\u{0}{}", role.role_id))
            .arg(serde_json::to_string(&role).expect("json"))
            .ignore();
    }
    pipe.query_async::<()>(&mut conn).await.expect("roles");
}

/// The floor: what a node loads, read the way it loads it (HSCAN, COUNT 5000) into memory.
async fn floor(url: &str) -> Duration {
    let client = redis::Client::open(url).expect("client");
    let mut conn = client
        .get_multiplexed_async_connection()
        .await
        .expect("connect");
    let layout = Keys::new(PREFIX);
    let started = Instant::now();
    let mut held = 0usize;
    for key in [layout.revoked(), layout.watermarks(), layout.all_roles()] {
        let mut cursor: u64 = 0;
        loop {
            let (next, page): (u64, Vec<(String, String)>) = redis::cmd("HSCAN")
                .arg(&key)
                .arg(cursor)
                .arg("COUNT")
                .arg(5000)
                .query_async(&mut conn)
                .await
                .expect("HSCAN");
            held += page.len();
            std::hint::black_box(page);
            if next == 0 {
                break;
            }
            cursor = next;
        }
    }
    assert!(held > 0);
    started.elapsed()
}

/// Authorize on `channel` back to back until `stop` is set: each call's latency.
async fn check_for(
    channel: tonic::transport::Channel,
    credential: String,
    stop: Arc<AtomicBool>,
) -> Vec<Duration> {
    let mut verifier = pb::verifier_client::VerifierClient::new(channel);
    let mut out = Vec::new();
    while !stop.load(Ordering::SeqCst) {
        let t = Instant::now();
        let verdict = verifier
            .authorize(pb::AuthorizeRequest {
                credential: credential.clone(),
                action: pb::Action::CacheRead as i32,
                cache: "c".into(),
                ..Default::default()
            })
            .await
            .expect("authorize")
            .into_inner();
        assert!(verdict.allowed, "{verdict:?}");
        out.push(t.elapsed());
    }
    out
}

/// The starting node: from nothing to SERVING, then its resident memory.
fn child(url: &str) {
    let pem = std::env::var(PEM_ENV).expect("pem");
    let started = Instant::now();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let (_, authority) =
        runtime.block_on(async { redis_node::start(&pem, "b", &RedisSettings::fixed(url)).await });
    let serving = started.elapsed();
    assert!(
        authority.verifier().view().revoked_len() > 0,
        "the view is loaded"
    );
    let statm = std::fs::read_to_string("/proc/self/statm").expect("statm");
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .expect("resident pages");
    println!("serving_ms={} rss={}", serving.as_millis(), pages * 4096);
}
