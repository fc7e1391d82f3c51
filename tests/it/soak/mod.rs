//! A soak under a fault schedule: mixed traffic on two cells over real Redis, with an oracle
//! that tracks every revocation and role narrowing.
//!
//! Topology: a Redis primary and one replica per cell, all with AOF (`appendfsync always`, so a
//! primary restart loses nothing acknowledged), and two real `authcell serve` processes (cell a
//! and cell b, `--stale-policy serve --vend-rate 0 --revoke-rate 0`), each reading its cell's
//! replica. Everything listens on 127.0.0.1.
//!
//! Traffic, until the deadline: role-bound keys (GenerateGlobalApiKey), disposable tokens
//! (GenerateDisposableToken, each with its own token_id), SDK keys (GenerateApiToken) and their
//! refreshes (RefreshApiToken, which revokes the old key), revocations (RevokeGlobalApiKey,
//! RevokeToken by id and by token_id, RevokeToken of an SDK key, RevokeIssuedBefore on a
//! separate account), custom roles created and then narrowed (CreateRole, UpdateRole), and
//! Authorize checks on both cells, of live, revoked and narrowed credentials.
//!
//! Faults, one at a time, cycling: pause a replica (SIGSTOP/SIGCONT), restart a replica,
//! restart the primary (SIGTERM, then SIGKILL on the next cycle; shorter than the Sentinels'
//! down-after, so no failover), cut a replica from its primary (`REPLICAOF 127.0.0.1 1`, then
//! back), pause an authcell node (SIGSTOP/SIGCONT), and last fail the primary over (SIGKILL;
//! three Sentinels promote a replica; the old primary comes back as a replica once the other
//! replica follows the new primary, and is switched back with `SENTINEL FAILOVER` after writes
//! were paused until it caught up). The cells alternate between cycles. The nodes find the
//! primary through the Sentinels (`--redis-sentinel`) and wait for one replica's
//! acknowledgement of every mutation (`--min-replica-acks`, automatic).
//!
//! # The oracle
//!
//! A revocation (or a narrowing) is *confirmed for cell X* at the earlier of:
//! 1. the reply of a `ConfirmRevocation` that lists X in `confirmed_cells` (asked with the
//!    revocation id the revoke call returned; for a refresh or a role edit, which return none,
//!    with an empty id, which means the newest event, asked after the call returned);
//! 2. the reply of an `Authorize` on X that refused the credential as revoked (for a narrowing:
//!    refused the narrowed permission), or refused any credential in its chain of makers so.
//!    Revocations are only ever added, so a cell that once refused must refuse for good.
//!
//! A **violation** is an `Authorize` *sent* to X after that moment that allowed the credential
//! (or the narrowed permission). At the end, after the faults stop and the topology heals, every
//! revoked credential and every narrowed permission must be refused on both cells within
//! [`FINAL_BOUND`]; any left allowed is **missed**. Both must be zero.
//!
//! `confirmed: true` promises more than rule 1: no cell with a node that could still allow the
//! credential is left out (a node that went silent keeps its cell pending while it could come
//! back with its old state). So an `Authorize` sent after a `confirmed: true` answer that allows
//! the credential on a cell the answer did not list ("allowed on a cell left out of a
//! confirmed=true answer") is a violation too. The soak found such cases before
//! `ConfirmRevocation` learned about silent nodes.
//!
//! Revoke calls that fail (UNAVAILABLE while the primary restarts, timeouts while a node is
//! paused) are retried until they succeed: only then is the credential counted as revoked.
//!
//! `run` uses blocking helpers of [`crate::support::redis`] from `spawn_blocking`, so it needs a
//! multi-threaded runtime.

use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use authcell::proto::authcell::v1 as pb;
use authcell::proto::permission_messages as pm;
use authcell::proto::permission_rules as pr;
use authcell::proto::{auth, global_admin as ga, token};
use tonic::transport::{Channel, Endpoint};
use tonic::{Request, Status};

use crate::support::redis::{start_sentinels, RedisServer, Topology, SENTINEL_MASTER};

mod driver;
mod faults;
mod oracle;
mod processes;
mod report;
mod sweep;

use driver::*;
use faults::*;
use oracle::*;
use processes::*;
pub(crate) use report::*;
use sweep::*;

/// After healing, how long every revoked credential may take to be refused on both cells.
pub(crate) const FINAL_BOUND: Duration = Duration::from_secs(15);
/// How long a replica may take to report its link up after a fault ends (a loaded machine may
/// need a full resync).
const LINK_BOUND: Duration = Duration::from_secs(60);
/// How long a node may take to serve after it starts.
const START_BOUND: Duration = Duration::from_secs(60);
/// How long a revoke (or role edit) is retried before it is given up as uncertain.
const RETRY_BOUND: Duration = Duration::from_secs(60);
/// ConfirmRevocation's own wait, per call.
const CONFIRM_WAIT_MS: u32 = 10_000;
/// ConfirmRevocation calls per revocation at most.
const CONFIRM_ATTEMPTS: usize = 4;
/// Operator keys (the makers of tokens and SDK keys) kept live at once.
const OPERATORS: usize = 6;
/// Credentials tracked at most: past this, only revocations, refreshes and checks go on.
const MAX_CREDENTIALS: usize = 20_000;
const CACHE: &str = "soak";
const ACCOUNT: &str = "soak";
const IB_ACCOUNT: &str = "soak-ib";
const CELLS: [&str; 2] = ["a", "b"];
/// Every operation the traffic makes (each must succeed at least once).
const OPERATIONS: [&str; 13] = [
    "Authorize",
    "GenerateGlobalApiKey",
    "GenerateDisposableToken",
    "GenerateApiToken",
    "RefreshApiToken",
    "RevokeGlobalApiKey",
    "RevokeToken(id)",
    "RevokeToken(token_id)",
    "RevokeToken(SDK key id)",
    "RevokeIssuedBefore",
    "ConfirmRevocation",
    "CreateRole",
    "UpdateRole",
];
/// Every kind of fault of a cycle (a run of 60 s or more runs each at least once).
const FAULTS: [&str; 6] = [
    "primary failover",
    "pause replica",
    "restart replica",
    "restart primary (SIGTERM)",
    "cut replica from primary",
    "pause authcell node",
];

// --- run -----------------------------------------------------------------------------------------

fn seed() -> u64 {
    std::env::var("AUTHCELL_SOAK_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64)
        })
}

/// Runs the soak: set-up, `duration` of traffic under the fault schedule, healing, the final
/// sweep. Panics only if the set-up (or a fault's undoing) fails; everything the traffic meets
/// is counted in the report.
pub(crate) async fn run(duration: Duration) -> Report {
    let bin = authcell_bin();
    let seed = seed();
    let dir = std::env::temp_dir().join(format!(
        "authcell-soak-{}-{}",
        std::process::id(),
        seed % 1_000_000
    ));
    std::fs::create_dir_all(&dir).expect("create the soak's directory");
    let key_file = dir.join("signing.pem");
    let pem = Command::new(&bin)
        .arg("keygen")
        .output()
        .expect("run authcell keygen");
    assert!(pem.status.success(), "authcell keygen failed");
    std::fs::write(&key_file, &pem.stdout).expect("write the signing key");

    let redis = tokio::task::spawn_blocking(|| {
        let mut topology = Topology::start(true);
        // So that a switch-back failover picks it (see `failover`).
        topology.primary.set_replica_priority(1);
        let sentinels = start_sentinels(topology.primary.port(), SENTINEL_DOWN);
        Redis {
            topology,
            sentinels,
        }
    })
    .await
    .expect("start the Redis topology");
    let redis_args = vec![
        "--redis-sentinel".to_owned(),
        redis
            .sentinels
            .iter()
            .map(|s| format!("127.0.0.1:{}", s.port()))
            .collect::<Vec<_>>()
            .join(","),
        "--redis-master-name".to_owned(),
        SENTINEL_MASTER.to_owned(),
    ];
    let topology = &redis.topology;
    let (replica_a, replica_b) = (topology.replica_a.url(), topology.replica_b.url());
    let setup = Setup {
        bin: &bin,
        dir: &dir,
        key_file: &key_file,
        redis: redis_args.clone(),
    };
    let owner = setup
        .bootstrap(ACCOUNT)
        .expect("bootstrap the soak account");
    let node_a = setup.node("a", &replica_a, &owner).await;
    let node_b = setup.node("b", &replica_b, &owner).await;
    let nodes = [&node_a, &node_b];
    let pids = [node_a.pid(), node_b.pid()];

    let started = Instant::now();
    let cell = |n: &NodeProcess| CellClient {
        ops: channel(n.port, Duration::from_secs(10)),
        confirm: channel(n.port, Duration::from_secs(20)),
    };
    let shared = Arc::new(Shared {
        state: Mutex::new(Oracle::new(started, seed)),
        cells: [cell(&node_a), cell(&node_b)],
        owner,
        deadline: started + duration,
        confirmations: tokio::sync::Semaphore::new(12),
        setup_bin: bin.clone(),
        key_file: key_file.clone(),
        dir: dir.clone(),
        redis: redis_args,
    });
    {
        let mut state = shared.state();
        state.report.traffic = duration;
        for (i, n) in nodes.iter().enumerate() {
            state.report.rss_start_kib[i] = rss_kib(n.pid());
        }
    }
    let topology = Arc::new(Mutex::new(redis));
    let mut rng = Rng::new(seed);
    let mut tasks = vec![
        tokio::spawn(maker(shared.clone(), Rng::new(rng.next()))),
        tokio::spawn(revoker(shared.clone(), Rng::new(rng.next()))),
        tokio::spawn(roles(shared.clone(), Rng::new(rng.next()))),
        tokio::spawn(issued_before(shared.clone(), Rng::new(rng.next()))),
    ];
    for (cell, node) in nodes.iter().enumerate() {
        for _ in 0..2 {
            tasks.push(tokio::spawn(checker(
                shared.clone(),
                cell,
                channel(node.port, Duration::from_secs(5)),
                Rng::new(rng.next()),
            )));
        }
    }
    let fault_task = tokio::spawn(faults(shared.clone(), topology.clone(), pids));
    fault_task
        .await
        .expect("the fault schedule failed (see the panic above)");
    for task in tasks {
        task.await.expect("a traffic task panicked");
    }
    // Revocations still being retried and confirmations still waiting finish: every permit
    // free means no confirmation runs. Bounded by the retry and confirmation bounds.
    let quiet = Instant::now();
    while quiet.elapsed() < RETRY_BOUND + Duration::from_secs(60) {
        let busy = {
            let state = shared.state();
            state
                .revocations
                .iter()
                .any(|r| r.ok.is_none() && !r.gave_up)
        };
        if !busy && shared.confirmations.available_permits() == 12 {
            break;
        }
        sleep_ms(200).await;
    }

    // Heal: every fault was undone by its own step; wait for both links and both nodes.
    {
        let topology = topology.clone();
        tokio::task::spawn_blocking(move || {
            let redis = topology.lock().unwrap_or_else(PoisonError::into_inner);
            wait_link(&redis.topology.replica_a);
            wait_link(&redis.topology.replica_b);
        })
        .await
        .expect("the topology did not heal");
    }
    let checks = [
        channel(node_a.port, Duration::from_secs(10)),
        channel(node_b.port, Duration::from_secs(10)),
    ];
    final_sweep(&shared, &checks).await;

    let mut report = {
        let mut state = shared.state();
        for (i, n) in nodes.iter().enumerate() {
            state.report.rss_end_kib[i] = rss_kib(n.pid());
        }
        state.report.clone()
    };
    drop(node_a);
    drop(node_b);
    if report.passed() {
        let _ = std::fs::remove_dir_all(&dir);
    } else {
        report.logs = Some(dir);
    }
    report
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_short_soak_under_faults_loses_no_revocation() {
    let seconds = std::env::var("AUTHCELL_SOAK_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    let report = run(Duration::from_secs(seconds)).await;
    println!("{report}");
    assert_eq!(
        report.violation_count(),
        0,
        "revoked credentials accepted after their revocation was confirmed:\n{report}"
    );
    assert_eq!(
        report.missed_count(),
        0,
        "revocations missed at the end:\n{report}"
    );
    let gaps = report.gaps();
    assert!(gaps.is_empty(), "{gaps:?} never happened:\n{report}");
}
