//! A node with a fast clock (the real binary under libfaketime) mints nothing that outlives a
//! cut.

use super::*;

// --- 7. A node with a fast clock mints nothing that outlives a cut -----------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_whose_clock_runs_a_minute_fast_mints_nothing_that_survives_a_cut() {
    let libfaketime = libfaketime();
    let (topology, pem) = (Topology::start(false), crate::support::cells::signing_pem());
    let primary = topology.primary.url();
    let (a, owner) = in_process_node(&pem, "a", &primary, &topology.replica_a.url()).await;
    // Cell b's node runs with its clock 60 s ahead of everyone else's.
    let metrics_port = free_port();
    let fast = ProcessNode::start(
        &pem,
        "b",
        &primary,
        &topology.replica_b.url(),
        &[("LD_PRELOAD", &libfaketime), ("FAKETIME", "+60s")],
        &["--metrics-listen", &format!("127.0.0.1:{metrics_port}")],
    )
    .await;
    let b = Api {
        channel: fast.channel.clone(),
    };
    let a_api = Api::of(&a).await;
    wait_for(
        "the fast node serves",
        Duration::from_secs(20),
        async || b.reason(&owner, READ, "c").await == ALLOWED,
    )
    .await;
    let page = metrics_page(metrics_port);
    let skew = page
        .lines()
        .find_map(|l| l.strip_prefix("authcell_clock_skew_seconds "))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .unwrap_or_else(|| panic!("no skew gauge in {page}"));
    assert!(
        (skew + 60.0).abs() < 5.0,
        "the node sees its clock 60 s ahead: {skew}"
    );

    // What the fast node mints carries the primary's time, not its own.
    let (key, _) = b
        .create_key(&owner, "operator", None)
        .await
        .expect("key on the fast node");
    let token = b
        .mint(&key, vec![read_cache("c")], "")
        .await
        .expect("token on the fast node");
    let real_now = authcell::clock::wall_ms() / 1000;
    for credential in [&key, &token] {
        let iat = claims(credential)["iat"].as_u64().expect("iat");
        assert!(
            iat.abs_diff(real_now) < 5,
            "iat {iat} vs real time {real_now}"
        );
        assert_eq!(
            a_api.reason(credential, READ, "c").await,
            ALLOWED,
            "precondition"
        );
    }
    // A cut made on a correct node takes them, on both nodes, now and after real time passes
    // the fast node's clock.
    a_api.revoke_issued_before(&owner).await.expect("cut");
    for api in [&a_api, &b] {
        for credential in [&key, &token] {
            wait_for("the cut applies", Duration::from_secs(5), async || {
                api.reason(credential, READ, "c").await == pb::Reason::Revoked
            })
            .await;
        }
    }
    // And the fast node's fresh credentials, minted after the cut, work everywhere.
    let (owner2, _) = a.authority.bootstrap("acme", true).await.expect("owner");
    let (after, _) = b
        .create_key(&owner2, "viewer", None)
        .await
        .expect("key after the cut");
    assert_eq!(a_api.reason(&after, READ, "c").await, ALLOWED);
    assert_eq!(b.reason(&after, READ, "c").await, ALLOWED);
    drop(fast);
}
