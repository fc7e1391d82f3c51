//! `authcell cells` and `authcell audit`; a server without authcell's services.

use super::*;

#[tokio::test]
async fn cells_in_human_and_json_mode() {
    let server = TestServer::start().await;
    let owner = server.owner_key.clone();
    let human = cli(&server, &owner, &["cells"]).await;
    let table = human.ok();
    assert!(table.starts_with("NODE ID"), "{table}");
    let line = row(table, "embedded").expect("the embedded node");
    assert_eq!(column(table, line, "CELL"), "test-cell");
    assert_eq!(column(table, line, "LIVE"), "yes");

    let json = cli(&server, &owner, &["cells", "--json"]).await.json();
    let nodes = json["nodes"].as_array().expect("nodes");
    assert_eq!(nodes.len(), 1);
    assert_eq!(nodes[0]["cell"], "test-cell");
    assert_eq!(nodes[0]["live"], true);
    assert_eq!(json["latest_event_id"], Value::Null);
}

#[tokio::test]
async fn audit_in_human_and_json_mode() {
    let server = TestServer::start().await;
    let owner = server.owner_key.clone();
    let created = cli(
        &server,
        &owner,
        &[
            "keys",
            "create",
            "--json",
            "--role",
            "viewer",
            "--description",
            "audited",
        ],
    )
    .await
    .json();
    let key_id = created["key_id"].as_str().expect("key_id").to_owned();
    cli(&server, &owner, &["keys", "revoke", &key_id])
        .await
        .ok();

    let json = cli(&server, &owner, &["audit", "--json", "--since", "1h"])
        .await
        .json();
    assert_eq!(json["truncated"], false);
    let events = json["events"].as_array().expect("events");
    let actions: Vec<&str> = events
        .iter()
        .map(|e| e["action"].as_str().expect("action"))
        .collect();
    assert_eq!(
        actions,
        ["key.revoked", "key.created", "key.created"],
        "newest first, the bootstrap key last"
    );
    assert_eq!(events[0]["target"], key_id.as_str());
    assert_eq!(events[1]["target"], key_id.as_str());
    assert_eq!(events[0]["account_id"], ACCOUNT);
    assert_eq!(events[0]["peer_address"], "127.0.0.1");
    assert!(events[0]["at_epoch_millis"].as_u64().expect("ms") > 0);

    let limited = cli(&server, &owner, &["audit", "--json", "--limit", "1"])
        .await
        .json();
    assert_eq!(limited["events"].as_array().expect("events").len(), 1);
    assert_eq!(limited["truncated"], true);
    let old = cli(
        &server,
        &owner,
        &["audit", "--json", "--until", "2001-09-09T01:46:40Z"],
    )
    .await
    .json();
    assert_eq!(old["events"], serde_json::json!([]));

    let human = cli(&server, &owner, &["audit"]).await;
    let table = human.ok();
    let header = table.lines().next().expect("header");
    for title in ["TIME", "ACTION", "TARGET", "ACTOR", "PEER", "DETAIL"] {
        assert!(header.contains(title), "{header}");
    }
    let lines: Vec<&str> = table.lines().skip(1).collect();
    assert_eq!(lines.len(), 3);
    assert_eq!(column(table, lines[0], "ACTION"), "key.revoked");
    assert_eq!(column(table, lines[0], "TARGET"), key_id);
    assert_eq!(column(table, lines[2], "ACTOR"), "bootstrap");
    assert!(column(table, lines[0], "TIME").ends_with('Z'));
}

/// A gRPC server without authcell's services: every call is UNIMPLEMENTED.
async fn bare_grpc_server() -> (String, tokio::sync::oneshot::Sender<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let endpoint = listener.local_addr().expect("addr").to_string();
    let (_reporter, health) = tonic_health::server::health_reporter();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        tonic::transport::Server::builder()
            .add_service(health)
            .serve_with_incoming_shutdown(
                tonic::transport::server::TcpIncoming::from(listener),
                async {
                    let _ = stopped.await;
                },
            )
            .await
            .expect("serve");
    });
    (endpoint, stop)
}

#[tokio::test]
async fn unimplemented_is_a_server_error() {
    let (endpoint, _stop) = bare_grpc_server().await;
    let key = "unimplemented-test-key-0123456789";
    for args in [&["audit"][..], &["keys", "list"], &["cells", "--json"]] {
        let run = run_env(
            &[("AUTHCELL_ENDPOINT", &endpoint), ("AUTHCELL_API_KEY", key)],
            args,
            None,
        )
        .await;
        run.fails(5, "authcell: UNIMPLEMENTED", key);
    }
}
