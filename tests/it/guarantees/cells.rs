//! Across cells under faults: a cut-off cell knows it is stale, a resyncing replica or a
//! trimmed stream hides no revocation, confirmation never vouches for a silent node.

use super::*;

// --- 6. A cell cut off from the primary knows it ------------------------------------------------

async fn health(node: &Node) -> i32 {
    tonic_health::pb::health_client::HealthClient::new(node.channel().await)
        .check(tonic_health::pb::HealthCheckRequest {
            service: String::new(),
        })
        .await
        .expect("health")
        .into_inner()
        .status
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cell_cut_off_from_the_primary_turns_stale_and_catches_up() {
    use tonic_health::pb::health_check_response::ServingStatus;
    let topology = Topology::start(false);
    let pem = crate::support::cells::signing_pem();
    let primary = topology.primary.url();
    let a = Node::start(NodeConfig::new(
        &pem,
        "a",
        &primary,
        &topology.replica_a.url(),
    ))
    .await;
    let b_deny = Node::start(NodeConfig {
        stale_policy: authcell::verifier::StalePolicy::Deny,
        max_staleness: Duration::from_secs(3),
        ..NodeConfig::new(&pem, "b", &primary, &topology.replica_b.url())
    })
    .await;
    let b_serve = Node::start(NodeConfig {
        max_staleness: Duration::from_secs(3),
        ..NodeConfig::new(&pem, "b", &primary, &topology.replica_b.url())
    })
    .await;
    let (owner, _) = a
        .authority
        .bootstrap("acme", false)
        .await
        .expect("bootstrap");
    let api_a = Api::of(&a).await;
    let (key, key_id) = api_a.create_key(&owner, "viewer", None).await.expect("key");
    let (deny, serve) = (Api::of(&b_deny).await, Api::of(&b_serve).await);
    wait_for("key reaches b", Duration::from_secs(5), async || {
        deny.reason(&key, READ, "c").await == ALLOWED
    })
    .await;
    wait_for(
        "precondition: health SERVING",
        Duration::from_secs(10),
        async || health(&b_deny).await == ServingStatus::Serving as i32,
    )
    .await;

    // Cell b's replica follows a dead primary: it keeps answering with its old data.
    let port = topology.primary.port().to_string();
    assert_eq!(
        topology.replica_b.command(&["REPLICAOF", "127.0.0.1", "1"]),
        "OK"
    );
    api_a
        .revoke_key(&owner, &key_id)
        .await
        .expect("revoke in cell a");
    until_revoked(&a, &key, Duration::from_secs(2)).await;
    let cut_at = Instant::now();
    wait_for(
        "deny policy refuses as stale",
        Duration::from_secs(8),
        async || deny.reason(&key, READ, "c").await == pb::Reason::StaleState,
    )
    .await;
    assert!(
        cut_at.elapsed() >= Duration::from_secs(2),
        "not before the bound"
    );
    wait_for("health NOT_SERVING", Duration::from_secs(3), async || {
        health(&b_deny).await == ServingStatus::NotServing as i32
    })
    .await;
    // Serve policy keeps answering from what it knows, and says it is stale.
    assert_eq!(serve.reason(&key, READ, "c").await, ALLOWED);
    assert!(b_serve.authority.verifier().is_stale());
    let metrics = b_serve.metrics().render();
    assert!(
        metrics.contains("authcell_revocation_view_stale 1"),
        "{metrics}"
    );

    // The link returns: the cell catches up and serves again, without a restart.
    assert_eq!(
        topology
            .replica_b
            .command(&["REPLICAOF", "127.0.0.1", &port]),
        "OK"
    );
    for (name, node) in [("deny", &b_deny), ("serve", &b_serve)] {
        let took = until_revoked(node, &key, Duration::from_secs(10)).await;
        eprintln!("{name}: revoked after the link returned within {took:?}");
    }
    wait_for("health SERVING again", Duration::from_secs(5), async || {
        health(&b_deny).await == ServingStatus::Serving as i32
    })
    .await;
    assert!(!b_serve.authority.verifier().is_stale());
}

// --- Suspected: a replica resyncing from empty, and a gap hidden by trimming -------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_restarted_empty_never_empties_the_view() {
    let mut cells = Cells::start(false).await;
    let a = Api::of(&cells.a).await;
    let (key, key_id) = a
        .create_key(&cells.owner, "viewer", None)
        .await
        .expect("key");
    a.revoke_key(&cells.owner, &key_id).await.expect("revoke");
    until_revoked(&cells.b, &key, Duration::from_secs(5)).await;
    // Replica b restarts without persistence while its primary cannot serve the full resync:
    // it answers from an empty dataset.
    cells.topology.replica_b.stop();
    cells.topology.primary.pause();
    cells.topology.replica_b.start_again_unlinked();
    let empty = cells
        .topology
        .replica_b
        .command(&["EXISTS", "authcell:revoked"]);
    assert_eq!(empty, "0", "precondition: the replica is empty");
    let b = Api::of(&cells.b).await;
    let watched = Instant::now();
    while watched.elapsed() < Duration::from_secs(3) {
        assert_eq!(b.reason(&key, READ, "c").await, pb::Reason::Revoked);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    cells.topology.primary.resume();
    cells.topology.replica_b.wait_for_link_up();
    // Still refused after the resync, and new revocations flow again.
    assert_eq!(b.reason(&key, READ, "c").await, pb::Reason::Revoked);
    let (other, other_id) = a
        .create_key(&cells.owner, "viewer", None)
        .await
        .expect("key");
    a.revoke_key(&cells.owner, &other_id).await.expect("revoke");
    until_revoked(&cells.b, &other, Duration::from_secs(10)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_cut_off_while_the_stream_moved_on_never_misses_a_trimmed_revocation() {
    // AOF everywhere: cell b's replica comes back with the data it had (the node's position),
    // then, its primary's backlog being too small for a partial resync, takes a full resync that
    // replaces that data at once with the trimmed stream.
    let topology = Topology::start(true);
    for setting in [
        ["stream-node-max-entries", "10"],
        ["repl-backlog-size", "16384"],
    ] {
        let [name, value] = setting;
        assert_eq!(
            topology.primary.command(&["CONFIG", "SET", name, value]),
            "OK"
        );
    }
    let cells = Cells::start_on(
        topology,
        |c| NodeConfig {
            stream_max_len: 100,
            ..c
        },
        |c| c,
    )
    .await;
    let mut cells = cells;
    let owner = cells.owner.clone();
    let api = Api::of(&cells.a).await;
    let (key, key_id) = api.create_key(&owner, "viewer", None).await.expect("key");
    let api_b = Api::of(&cells.b).await;
    assert_eq!(api_b.reason(&key, READ, "c").await, ALLOWED, "precondition");
    cells.topology.replica_b.stop();
    api.revoke_key(&owner, &key_id).await.expect("revoke");
    // 150 more entries: the revocation is trimmed away, and more survivors (about 100) follow
    // it than were trimmed after cell b's position (about 50), so counting the survivors read
    // as "seen" would hide the gap.
    use pb::revoke_token_request::Token;
    for _ in 0..150 {
        api.revoke_token(&owner, Token::Id(uuid::Uuid::now_v7().to_string()), 0)
            .await
            .expect("filler revocation");
    }
    let stream = cells
        .topology
        .primary
        .command(&["XRANGE", "authcell:events", "-", "+"]);
    assert!(
        !stream.contains(&key_id),
        "precondition: the revocation was trimmed"
    );
    cells.topology.replica_b.start_again();
    let took = until_revoked(&cells.b, &key, Duration::from_secs(15)).await;
    eprintln!("revocation applied after the resync within {took:?}");
}

// --- Confirmation never vouches for a node that went silent ------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_node_keeps_its_cell_unconfirmed_until_it_has_caught_up() {
    let (topology, pem) = (Topology::start(false), crate::support::cells::signing_pem());
    let primary = topology.primary.url();
    let (b, owner) = in_process_node(&pem, "b", &primary, &topology.replica_b.url()).await;
    // Cell a's only node, a real process under the serve policy.
    let a = ProcessNode::start(&pem, "a", &primary, &topology.replica_a.url(), &[], &[]).await;
    let api_a = Api {
        channel: a.channel.clone(),
    };
    let api_b = Api::of(&b).await;
    let (key, key_id) = api_b.create_key(&owner, "viewer", None).await.expect("key");
    wait_for("cell a serves", Duration::from_secs(20), async || {
        api_a.reason(&key, READ, "c").await == ALLOWED
    })
    .await;
    let confirm = |timeout_ms: u32, id: String| {
        let mut admin = api_b.admin();
        let owner = owner.clone();
        async move {
            admin
                .confirm_revocation(with_key(
                    pb::ConfirmRevocationRequest {
                        revocation_id: id,
                        timeout_ms,
                    },
                    &owner,
                ))
                .await
                .expect("confirm")
                .into_inner()
        }
    };
    // Frozen past the liveness window, then the key is revoked in cell b.
    a.signal("-STOP");
    tokio::time::sleep(Duration::from_millis(6000)).await;
    let id = b.revoke_key(&owner, &key_id).await.expect("revoke");
    let answer = confirm(1000, id.clone()).await;
    assert!(!answer.confirmed, "{answer:?}");
    assert_eq!(answer.pending_cells, ["a"], "{answer:?}");
    assert_eq!(answer.silent_cells, ["a"], "{answer:?}");
    assert_eq!(answer.confirmed_cells, ["b"], "{answer:?}");
    // Once it is back and caught up, the revocation is confirmed, and holds there.
    a.signal("-CONT");
    let answer = confirm(20_000, id).await;
    assert!(answer.confirmed, "{answer:?}");
    assert_eq!(answer.confirmed_cells, ["a", "b"], "{answer:?}");
    assert_eq!(api_a.reason(&key, READ, "c").await, pb::Reason::Revoked);
}
