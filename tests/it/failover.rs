//! Primary failover: no acknowledged write is lost, nodes follow the new primary, and a node
//! whose stream position a failover made invalid reloads instead of skipping.
//!
//! Real processes: a primary, two replicas (one per cell) and three Sentinels on free ports;
//! nodes find the primary through the Sentinels (`--redis-sentinel`), and acknowledge a mutation
//! only once a replica holds it (`--min-replica-acks`, automatic: 1).

use std::time::{Duration, Instant};

use authcell::proto::authcell::v1 as pb;
use authcell::proto::global_admin as ga;
use tonic::Code;

use crate::support::cells::wait_for;
use crate::support::cells::{read, until_revoked, Cells, Node, NodeConfig};
use crate::support::redis::{start_sentinels, RedisServer, Topology, SENTINEL_DOWN_AFTER};
use crate::support::*;

/// The Sentinels' addresses, as `--redis-sentinel` takes them (leaked: node configurations
/// borrow them for the test's whole life).
fn addresses(sentinels: &[RedisServer]) -> &'static [String] {
    Vec::leak(
        sentinels
            .iter()
            .map(|s| format!("127.0.0.1:{}", s.port()))
            .collect(),
    )
}

/// Two cells whose nodes follow the primary through Sentinel.
async fn sentinel_cells() -> (Cells, Vec<RedisServer>) {
    let topology = Topology::start(false);
    let sentinels = start_sentinels(topology.primary.port(), SENTINEL_DOWN_AFTER);
    let addrs = addresses(&sentinels);
    // The shared vending limiter on (generous enough never to refuse these tests).
    let cells = Cells::start_on(
        topology,
        |c| NodeConfig {
            sentinels: Some(addrs),
            vend_rate: 1000,
            ..c
        },
        |c| NodeConfig {
            sentinels: Some(addrs),
            vend_rate: 1000,
            ..c
        },
    )
    .await;
    (cells, sentinels)
}

/// What riding out one failover showed.
struct RideOut {
    /// The promoted server's port.
    primary: u16,
    /// From the kill to Sentinel naming the new primary.
    promoted_after: Duration,
    /// From Sentinel naming it to the first mutation acknowledged (if `mutate`).
    resumed_after: Option<Duration>,
    /// Checks made in both cells meanwhile.
    checks: u64,
}

/// After the primary on `old` was killed: checks `live` (must stay allowed: the cells keep
/// serving) and every credential in `refused` (must never be allowed) in both cells every few
/// ms, until Sentinel names a new primary and, with `mutate`, a key can be created again.
async fn ride_out(
    cells: &Cells,
    sentinels: &[RedisServer],
    old: u16,
    killed_at: Instant,
    live: &str,
    refused: &[&str],
    mutate: bool,
) -> RideOut {
    let mut promoted: Option<(u16, Instant)> = None;
    let mut checks = 0;
    loop {
        for (cell, node) in [("a", &cells.a), ("b", &cells.b)] {
            let verdict = node.authorize(read(live)).await;
            assert!(
                verdict.allowed,
                "cell {cell} stopped serving a live key during the failover: {verdict:?}"
            );
            for credential in refused {
                let verdict = node.authorize(read(credential)).await;
                assert!(
                    !verdict.allowed,
                    "cell {cell} allowed a revoked credential during the failover ({:?} after the kill)",
                    killed_at.elapsed()
                );
            }
            checks += 1;
        }
        if promoted.is_none() {
            let port = sentinels[0].master_port();
            if port != old
                && cells
                    .topology
                    .server(port)
                    .command(&["ROLE"])
                    .starts_with("master")
            {
                promoted = Some((port, Instant::now()));
            }
        }
        if let Some((port, at)) = promoted {
            if !mutate {
                return RideOut {
                    primary: port,
                    promoted_after: at - killed_at,
                    resumed_after: None,
                    checks,
                };
            }
            if cells.a.create_key(&cells.owner, "viewer").await.is_ok() {
                return RideOut {
                    primary: port,
                    promoted_after: at - killed_at,
                    resumed_after: Some(at.elapsed()),
                    checks,
                };
            }
        }
        assert!(
            killed_at.elapsed() < Duration::from_secs(40),
            "no new primary, or no mutation acknowledged, 40 s after the kill (promoted: {promoted:?})"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// How long after Sentinel names the new primary mutations may still fail: the nodes notice
/// the lost connection, ask Sentinel again (at most every 100 ms), and the remaining replica
/// must reattach to the new primary before `WAIT` can be satisfied (docs/operating.md, "During a
/// failover").
const RESUME_BOUND: Duration = Duration::from_secs(3);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_acknowledged_revocation_survives_a_primary_kill_and_the_cells_keep_serving() {
    let (cells, sentinels) = sentinel_cells().await;
    let (key, key_id) = cells
        .a
        .create_key(&cells.owner, "operator")
        .await
        .expect("key");
    for node in [&cells.a, &cells.b] {
        wait_for(
            "the new key to reach both cells",
            Duration::from_secs(2),
            || async { node.authorize(read(&key)).await.allowed },
        )
        .await;
    }

    cells
        .a
        .revoke_key(&cells.owner, &key_id)
        .await
        .expect("revoke");
    let old = cells.topology.primary.port();
    let killed_at = Instant::now();
    cells.topology.primary.kill_now();

    // Before the promotion: refused in both cells.
    assert_eq!(
        cells.a.authorize(read(&key)).await.reason,
        pb::Reason::Revoked as i32
    );
    until_revoked(&cells.b, &key, Duration::from_secs(1)).await;

    // Through the failover: never allowed, and the owner key always served.
    let ride = ride_out(
        &cells,
        &sentinels,
        old,
        killed_at,
        &cells.owner,
        &[&key],
        true,
    )
    .await;
    let resumed = ride.resumed_after.expect("mutated");
    eprintln!(
        "failover: new primary named {:?} after the kill, mutations acknowledged again {:?} after that; {} checks in each cell meanwhile",
        ride.promoted_after, resumed, ride.checks
    );
    assert!(
        resumed <= RESUME_BOUND,
        "mutations resumed {resumed:?} after the promotion (bound {RESUME_BOUND:?})"
    );

    // The revocation is in the new primary's data, and both cells still refuse the key.
    let primary = cells.topology.server(ride.primary);
    assert_ne!(
        primary.command(&["HGET", &format!("authcell:key:acme:{key_id}"), "revoked_at"]),
        "(nil)",
        "the new primary lost the acknowledged revocation"
    );
    for node in [&cells.a, &cells.b] {
        assert_eq!(
            node.authorize(read(&key)).await.reason,
            pb::Reason::Revoked as i32
        );
    }
    // Revocations made after the failover reach the other cell through its replica, which
    // now follows the new primary.
    let (later, later_id) = cells
        .a
        .create_key(&cells.owner, "viewer")
        .await
        .expect("key after failover");
    let revocation = cells
        .a
        .revoke_key(&cells.owner, &later_id)
        .await
        .expect("revoke after failover");
    until_revoked(&cells.b, &later, Duration::from_secs(2)).await;
    // Heartbeats and position reports reach the new primary: both cells confirm.
    let confirmation = cells.a.confirm(&cells.owner, revocation).await;
    assert!(confirmation.confirmed, "{confirmation:?}");
    assert_eq!(confirmation.confirmed_cells, vec!["a", "b"]);
    // The shared vending limiter runs on the new primary again (not only its per-node
    // fallback): the account's bucket is there after a mint.
    cells.b.mint(&cells.owner, "after-failover").await;
    assert_eq!(primary.command(&["EXISTS", "authcell:rl:acme"]), "1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_acknowledged_key_and_issued_before_cut_survive_primary_kills() {
    let (cells, sentinels) = sentinel_cells().await;

    // A key created just before the primary dies is there after the failover: listed,
    // described, and revocable.
    let (key, key_id) = cells
        .a
        .create_key(&cells.owner, "viewer")
        .await
        .expect("key");
    let old = cells.topology.primary.port();
    let killed_at = Instant::now();
    cells.topology.primary.kill_now();
    let ride = ride_out(&cells, &sentinels, old, killed_at, &cells.owner, &[], true).await;
    let primary = cells.topology.server(ride.primary);
    assert_eq!(
        primary.command(&["ZSCORE", "authcell:acct:acme:keys", &key_id]),
        "0",
        "the new primary does not list the acknowledged key"
    );
    let described = cells
        .a
        .admin()
        .await
        .describe_api_key(with_key(
            pb::DescribeApiKeyRequest {
                key_id: key_id.clone(),
            },
            &cells.owner,
        ))
        .await;
    assert!(
        described.is_ok(),
        "DescribeApiKey after the failover: {described:?}"
    );
    cells
        .b
        .revoke_key(&cells.owner, &key_id)
        .await
        .expect("the key is revocable after the failover");
    until_revoked(&cells.a, &key, Duration::from_secs(2)).await;

    // An issued-before cut made just before the new primary dies too. It is made through the
    // node whose cell reads from that primary (so that node has applied it itself); the other
    // cell reads from the last replica, which is promoted and holds the cut (it was the only
    // replica that could acknowledge it).
    let (beta, _) = cells
        .a
        .authority
        .bootstrap("beta", false)
        .await
        .expect("account beta");
    let via: &Node = if cells.topology.replica_a.port() == ride.primary {
        &cells.a
    } else {
        &cells.b
    };
    for node in [&cells.a, &cells.b] {
        wait_for(
            "beta's key in both cells",
            Duration::from_secs(2),
            || async { node.authorize(read(&beta)).await.allowed },
        )
        .await;
    }
    let cut = via
        .admin()
        .await
        .revoke_issued_before(with_key(pb::RevokeIssuedBeforeRequest::default(), &beta))
        .await
        .expect("revoke issued before")
        .into_inner()
        .issued_before_epoch_millis;
    let old = ride.primary;
    let killed_at = Instant::now();
    cells.topology.server(old).kill_now();
    assert_eq!(
        via.authorize(read(&beta)).await.reason,
        pb::Reason::Revoked as i32
    );
    let other = if std::ptr::eq(via, &cells.a) {
        &cells.b
    } else {
        &cells.a
    };
    until_revoked(other, &beta, Duration::from_secs(1)).await;
    let ride = ride_out(
        &cells,
        &sentinels,
        old,
        killed_at,
        &cells.owner,
        &[&beta],
        false,
    )
    .await;
    assert_eq!(
        cells
            .topology
            .server(ride.primary)
            .command(&["HGET", "authcell:watermarks", "beta"]),
        cut.to_string(),
        "the last primary lost the acknowledged issued-before cut"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mutation_no_replica_acknowledges_is_unavailable_and_its_retry_creates_one_key() {
    let cells = Cells::start(false).await;
    let (_, victim_id) = cells
        .a
        .create_key(&cells.owner, "viewer")
        .await
        .expect("key");
    let keys_before = cells
        .topology
        .primary
        .command(&["ZCARD", "authcell:acct:acme:keys"]);
    let create = |description: &str| {
        let mut request = with_key(key_request("viewer", description, None), &cells.owner);
        request
            .metadata_mut()
            .insert("idempotency-key", "deploy-42".parse().expect("ascii"));
        request
    };

    cells.topology.replica_a.pause();
    cells.topology.replica_b.pause();
    let client =
        || async { ga::global_admin_client::GlobalAdminClient::new(cells.a.channel().await) };
    let status = client()
        .await
        .generate_global_api_key(create("ci deploy key"))
        .await
        .expect_err("no replica can acknowledge");
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    assert!(
        status.message().contains("replica") && status.message().contains("retrying is safe"),
        "{status:?}"
    );
    let status = cells
        .a
        .revoke_key(&cells.owner, &victim_id)
        .await
        .expect_err("no replica can acknowledge");
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    cells.topology.replica_a.resume();
    cells.topology.replica_b.resume();

    // The retry under the same request id answers with the key the first attempt made.
    let first = client()
        .await
        .generate_global_api_key(create("ci deploy key"))
        .await
        .expect("retry")
        .into_inner();
    let again = client()
        .await
        .generate_global_api_key(create("ci deploy key"))
        .await
        .expect("second retry")
        .into_inner();
    assert_eq!(first.api_key, again.api_key, "a retry returns the same key");
    let keys_after = cells
        .topology
        .primary
        .command(&["ZCARD", "authcell:acct:acme:keys"]);
    assert_eq!(
        keys_after.parse::<u64>().expect("count"),
        keys_before.parse::<u64>().expect("count") + 1,
        "one request id, one key"
    );
    assert!(cells.a.authorize(read(&first.api_key)).await.allowed);
    // The same id for a different request is refused, not replayed.
    let status = client()
        .await
        .generate_global_api_key(create("another key"))
        .await
        .expect_err("reused id");
    assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
    assert!(status.message().contains("idempotency-key"), "{status:?}");
    // The revocation's retry goes through.
    cells
        .a
        .revoke_key(&cells.owner, &victim_id)
        .await
        .expect("revocation retried");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_whose_position_a_failover_lost_reloads_instead_of_skipping() {
    // Writes acknowledged without replicas here, so that the promoted replica can lack the
    // tail cell b already read: the case the position check exists for.
    let cells = Cells::start_on(
        Topology::start(false),
        |c| NodeConfig {
            min_replica_acks: Some(0),
            ..c
        },
        |c| NodeConfig {
            min_replica_acks: Some(0),
            ..c
        },
    )
    .await;
    let (x, x_id) = cells.a.create_key(&cells.owner, "viewer").await.expect("x");
    let (y, y_id) = cells.a.create_key(&cells.owner, "viewer").await.expect("y");
    wait_for("y in cell b", Duration::from_secs(2), || async {
        cells.b.authorize(read(&y)).await.allowed
    })
    .await;

    // Replica a is cut off from the primary (made a primary of its own, keeping its data)
    // and misses the revocation of x; cell b (replica b) applies it.
    let promoted = &cells.topology.replica_a;
    assert_eq!(promoted.command(&["REPLICAOF", "NO", "ONE"]), "OK");
    tokio::time::sleep(Duration::from_millis(100)).await;
    let x_event = cells
        .a
        .revoke_key(&cells.owner, &x_id)
        .await
        .expect("revoke x");
    until_revoked(&cells.b, &x, Duration::from_secs(1)).await;
    assert_eq!(
        promoted.command(&["HGET", &format!("authcell:key:acme:{x_id}"), "revoked_at"]),
        "(nil)",
        "precondition: replica a missed the revocation"
    );

    // The primary dies; replica b follows replica a, resyncing in full: its stream no longer
    // holds the event at cell b's position.
    cells.topology.primary.kill_now();
    let port = promoted.port().to_string();
    assert_eq!(
        cells
            .topology
            .replica_b
            .command(&["REPLICAOF", "127.0.0.1", &port]),
        "OK"
    );
    cells.topology.replica_b.wait_for_link_up();

    // The new primary writes a revocation (and a few other events) with ids below cell b's
    // position, as a primary whose clock is behind the old one's would: tailing on from that
    // position would skip them.
    let x_ms: u64 = x_event
        .split('-')
        .next()
        .and_then(|m| m.parse().ok())
        .expect("event id");
    for i in 0..10 {
        let filler = format!(r#"{{"CredentialRevoked":{{"account":"acme","id":"filler-{i}"}}}}"#);
        promoted.command(&[
            "XADD",
            "authcell:events",
            &format!("{}-{i}", x_ms - 50),
            "e",
            &filler,
        ]);
    }
    let y_event = format!(r#"{{"CredentialRevoked":{{"account":"acme","id":"{y_id}"}}}}"#);
    promoted.command(&[
        "HSET",
        "authcell:revoked",
        &format!("c\u{0}acme\u{0}{y_id}"),
        "1",
    ]);
    let added = promoted.command(&[
        "XADD",
        "authcell:events",
        &format!("{}-0", x_ms - 20),
        "e",
        &y_event,
    ]);
    assert!(!added.starts_with("(error)"), "{added}");

    until_revoked(&cells.b, &y, Duration::from_secs(5)).await;
    assert_eq!(
        cells.b.authorize(read(&x)).await.reason,
        pb::Reason::Revoked as i32,
        "a reload keeps what the node had already applied"
    );
}

/// A TCP forwarder standing in for a managed Redis's DNS name: new connections go to
/// whichever port it points at now; connections already made stay where they are.
struct MovingName {
    port: u16,
    target: std::sync::Arc<std::sync::atomic::AtomicU16>,
}

impl MovingName {
    async fn start(target: u16) -> MovingName {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let target = std::sync::Arc::new(std::sync::atomic::AtomicU16::new(target));
        let to = target.clone();
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let port = to.load(std::sync::atomic::Ordering::SeqCst);
                tokio::spawn(async move {
                    if let Ok(mut outbound) =
                        tokio::net::TcpStream::connect(("127.0.0.1", port)).await
                    {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
            }
        });
        MovingName { port, target }
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    fn point_at(&self, port: u16) {
        self.target.store(port, std::sync::atomic::Ordering::SeqCst);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_on_a_moving_name_follows_a_demoted_primary_to_the_new_one() {
    // A managed Redis fails over by promoting a replica, demoting the old primary (which stays
    // up, answering READONLY to writes) and moving its name. The node's open connections
    // still reach the old primary.
    let topology = Topology::start(false);
    let name = MovingName::start(topology.primary.port()).await;
    // Leaked: node configurations borrow it for the test's whole life.
    let url: &'static str = String::leak(name.url());
    let cells = Cells::start_on(
        topology,
        |c| NodeConfig { primary: url, ..c },
        // Cell b's mutations are single commands (no WAIT pipeline): both paths are covered.
        |c| NodeConfig {
            primary: url,
            min_replica_acks: Some(0),
            ..c
        },
    )
    .await;
    let (_, before) = cells
        .a
        .create_key(&cells.owner, "viewer")
        .await
        .expect("key");

    let t = &cells.topology;
    let (old, new) = (&t.primary, &t.replica_a);
    wait_for("replica a caught up", Duration::from_secs(2), || async {
        new.command(&["HGET", &format!("authcell:key:acme:{before}"), "rec"]) != "(nil)"
    })
    .await;
    assert_eq!(new.command(&["REPLICAOF", "NO", "ONE"]), "OK");
    let new_port = new.port().to_string();
    assert_eq!(old.command(&["REPLICAOF", "127.0.0.1", &new_port]), "OK");
    assert_eq!(
        t.replica_b.command(&["REPLICAOF", "127.0.0.1", &new_port]),
        "OK"
    );
    name.point_at(new.port());
    old.wait_for_link_up();
    t.replica_b.wait_for_link_up();

    // The very next mutations succeed: the old primary's READONLY drops the connection and the
    // command, which did not run, goes to the new primary.
    let (key, key_id) = cells
        .a
        .create_key(&cells.owner, "viewer")
        .await
        .expect("the first key created after the move");
    cells
        .b
        .revoke_key(&cells.owner, &key_id)
        .await
        .expect("the first revocation through cell b after the move");
    assert_ne!(
        new.command(&["HGET", &format!("authcell:key:acme:{key_id}"), "revoked_at"]),
        "(nil)",
        "the revocation is on the new primary"
    );
    until_revoked(&cells.a, &key, Duration::from_secs(2)).await;
}
