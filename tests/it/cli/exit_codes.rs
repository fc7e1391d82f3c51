//! Flags instead of the environment, usage errors and every exit code.

use super::*;

#[tokio::test]
async fn flags_work_instead_of_the_environment() {
    let server = TestServer::start().await;
    let run = run_env(
        &[],
        &[
            "keys",
            "list",
            "--json",
            "--endpoint",
            &server.url(),
            "--api-key",
            &server.owner_key,
        ],
        None,
    )
    .await;
    assert_eq!(run.json()["keys"].as_array().expect("keys").len(), 1);

    // Flags win over the environment.
    let run = run_env(
        &[
            ("AUTHCELL_ENDPOINT", "127.0.0.1:1"),
            ("AUTHCELL_API_KEY", "wrong-key-from-the-environment"),
        ],
        &[
            "cells",
            "--endpoint",
            &server.endpoint,
            "--api-key",
            &server.owner_key,
        ],
        None,
    )
    .await;
    assert!(row(run.ok(), "embedded").is_some(), "{run:?}");
}

#[tokio::test]
async fn usage_errors_exit_2() {
    let server = TestServer::start().await;
    let key = server.owner_key.clone();
    let cases: &[(&[&str], &str)] = &[
        (&["keys"], "Usage: authcell keys"),
        (&["keys", "create", "--description", "x"], "--role <ROLE>"),
        (
            &[
                "keys",
                "create",
                "--role",
                "viewer",
                "--description",
                "x",
                "--expires-in",
                "10",
            ],
            "add a unit",
        ),
        (
            &[
                "keys",
                "create",
                "--role",
                "viewer",
                "--description",
                "x",
                "--expires-in",
                "1h",
                "--expires-at",
                "2030-01-01T00:00:00Z",
            ],
            "cannot be used with",
        ),
        (&["keys", "list", "--limit", "0"], "--limit"),
        (
            &["keys", "revoke", "x", "--confirm-timeout", "60001"],
            "--confirm-timeout",
        ),
        (
            &[
                "tokens",
                "mint",
                "--cache",
                "c",
                "--key",
                "a",
                "--key-prefix",
                "b",
                "--role",
                "readonly",
                "--expires-in",
                "1m",
            ],
            "cannot be used with",
        ),
        (
            &["tokens", "mint", "--cache", "c", "--expires-in", "1m"],
            "--role",
        ),
        (&["tokens", "mint", "--expires-in", "1m"], "--cache"),
        (
            &[
                "tokens",
                "mint",
                "--cache",
                "c",
                "--role",
                "all",
                "--expires-in",
                "1m",
            ],
            "invalid value 'all'",
        ),
        (&["tokens", "revoke"], "--id"),
        (
            &["tokens", "revoke", "--id", "a", "--token-id", "b"],
            "cannot be used with",
        ),
        (&["roles", "update", "some-role"], "--name"),
        (&["audit", "--since", "yesterday"], "--since"),
        (
            &["audit", "--since", "1h", "--until", "2h"],
            "--since must be before --until",
        ),
    ];
    for (args, needle) in cases {
        let run = cli(&server, &key, args).await;
        run.fails(2, needle, &key);
    }

    let no_endpoint = run_env(&[("AUTHCELL_API_KEY", &key)], &["keys", "list"], None).await;
    no_endpoint.fails(2, "authcell: no endpoint: set AUTHCELL_ENDPOINT", &key);
    let bad_ca = run_env(
        &[("AUTHCELL_API_KEY", &key)],
        &[
            "cells",
            "--endpoint",
            "localhost:1",
            "--tls-ca",
            "/nonexistent/ca.pem",
        ],
        None,
    )
    .await;
    bad_ca.fails(2, "--tls-ca /nonexistent/ca.pem: cannot read", &key);

    let help = run_env(&[], &["--help"], None).await;
    let text = help.ok();
    assert!(text.contains("Exit codes"), "{text}");
    for line in [
        "2  usage error",
        "3  authentication or authorization failure",
        "4  the server refused the request",
        "5  server or connection error",
    ] {
        assert!(text.contains(line), "{line:?} in {text}");
    }
    // The key from the environment is never shown in help.
    let help = run_env(
        &[("AUTHCELL_API_KEY", &key)],
        &["keys", "list", "--help"],
        None,
    )
    .await;
    assert!(!help.ok().contains(&key));
}

#[tokio::test]
async fn authentication_and_authorization_failures_exit_3() {
    let server = TestServer::start().await;
    let owner = server.owner_key.clone();

    let no_key = run_env(
        &[("AUTHCELL_ENDPOINT", &server.endpoint)],
        &["keys", "list"],
        None,
    )
    .await;
    no_key.fails(3, "authcell: no API key: set AUTHCELL_API_KEY", "");

    let garbage = "not-a-real-key-but-secret-anyway-123";
    cli(&server, garbage, &["keys", "list"])
        .await
        .fails(3, "authcell: UNAUTHENTICATED: ", garbage);
    // A forged key with a valid shape.
    let mut parts: Vec<String> = owner.split('.').map(str::to_owned).collect();
    parts[2] = parts[2].chars().rev().collect();
    let forged = parts.join(".");
    cli(&server, &forged, &["roles", "list", "--json"])
        .await
        .fails(3, "authcell: UNAUTHENTICATED: ", &forged);

    let (viewer, _) = server.create_key(&owner, "viewer").await;
    let (_, target) = server.create_key(&owner, "viewer").await;
    cli(&server, &viewer, &["keys", "revoke", &target.key_id])
        .await
        .fails(3, "authcell: PERMISSION_DENIED: ", &viewer);
    cli(
        &server,
        &viewer,
        &["keys", "create", "--role", "viewer", "--description", "x"],
    )
    .await
    .fails(3, "authcell: PERMISSION_DENIED: ", &viewer);
    // The viewer may still read.
    cli(&server, &viewer, &["keys", "list"]).await.ok();

    // A revoked key.
    let (revoked, info) = server.create_key(&owner, "operator").await;
    server.revoke_key(&owner, &info.key_id).await;
    cli(&server, &revoked, &["cells"])
        .await
        .fails(3, "authcell: UNAUTHENTICATED: ", &revoked);
}

#[tokio::test]
async fn refused_requests_exit_4() {
    let server = TestServer::start().await;
    let owner = server.owner_key.clone();
    let unknown = uuid::Uuid::now_v7().to_string();
    cli(&server, &owner, &["keys", "describe", &unknown])
        .await
        .fails(
            4,
            &format!("authcell: NOT_FOUND: key_id: no key {unknown}"),
            &owner,
        );
    cli(&server, &owner, &["keys", "revoke", &unknown])
        .await
        .fails(4, "authcell: NOT_FOUND: ", &owner);
    cli(&server, &owner, &["keys", "describe", "not-a-uuid"])
        .await
        .fails(4, "authcell: INVALID_ARGUMENT: key_id", &owner);
    cli(
        &server,
        &owner,
        &[
            "keys",
            "create",
            "--role",
            "no-such-role",
            "--description",
            "x",
        ],
    )
    .await
    .fails(4, "authcell: NOT_FOUND: ", &owner);
    cli(&server, &owner, &["roles", "delete", "viewer"])
        .await
        .fails(4, "authcell: FAILED_PRECONDITION: ", &owner);
    cli(
        &server,
        &owner,
        &[
            "tokens",
            "mint",
            "--cache",
            "c",
            "--role",
            "readonly",
            "--expires-in",
            "26h",
        ],
    )
    .await
    .fails(4, "authcell: INVALID_ARGUMENT: ", &owner);
    let file = TempFile::new("dup.json", READER_EU);
    cli(
        &server,
        &owner,
        &["roles", "create", "--name", "dup", "--file", file.path()],
    )
    .await
    .ok();
    cli(
        &server,
        &owner,
        &["roles", "create", "--name", "dup", "--file", file.path()],
    )
    .await
    .fails(4, "authcell: ALREADY_EXISTS: ", &owner);
}

#[tokio::test]
async fn an_unreachable_server_exits_5() {
    let endpoint = closed_port().await;
    let key = "a-key-that-must-not-leak-0123456789";
    for args in [
        &["keys", "list"][..],
        &["keys", "create", "--role", "viewer", "--description", "x"],
        &["tokens", "revoke", "--token-id", "t"],
        &["audit", "--json"],
    ] {
        let run = run_env(
            &[("AUTHCELL_ENDPOINT", &endpoint), ("AUTHCELL_API_KEY", key)],
            args,
            None,
        )
        .await;
        run.fails(
            5,
            &format!("authcell: UNAVAILABLE: cannot connect to {endpoint}: "),
            key,
        );
    }

    // A server that stops between calls.
    let server = TestServer::start().await;
    let endpoint = server.endpoint.clone();
    let owner = server.owner_key.clone();
    server.stop().await;
    let run = run_env(
        &[
            ("AUTHCELL_ENDPOINT", &endpoint),
            ("AUTHCELL_API_KEY", &owner),
        ],
        &["keys", "list", "--json"],
        None,
    )
    .await;
    run.fails(5, "authcell: UNAVAILABLE: ", &owner);
}

/// Linux delivers a connection to 0.0.0.0 to this machine, but the CLI reads only the
/// endpoint's text and counts 0.0.0.0 as remote: a listener on 127.0.0.1 would see any
/// attempt to connect, and nothing is sent to another host.
#[cfg(target_os = "linux")]
#[tokio::test]
async fn the_key_is_not_sent_in_plaintext_off_the_machine_without_insecure() {
    let key = "a-key-that-must-stay-home-0123456789";
    let trap = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = trap.local_addr().expect("addr").port();
    for endpoint in [format!("0.0.0.0:{port}"), format!("http://0.0.0.0:{port}")] {
        for args in [&["keys", "list"][..], &["cells", "--json"]] {
            let run = run_env(
                &[("AUTHCELL_ENDPOINT", &endpoint), ("AUTHCELL_API_KEY", key)],
                args,
                None,
            )
            .await;
            run.fails(
                2,
                &format!(
                    "authcell: --endpoint {endpoint}: refusing to send the API key in plaintext"
                ),
                key,
            );
            assert!(run.stderr.contains("--insecure"), "{run:?}");
        }
    }
    // Refused before connecting: the trap saw nothing...
    assert!(
        tokio::time::timeout(std::time::Duration::from_millis(200), trap.accept())
            .await
            .is_err(),
        "the CLI connected"
    );
    // ...though a connection to that address would have reached it.
    let _probe = tokio::net::TcpStream::connect(("0.0.0.0", port))
        .await
        .expect("0.0.0.0 reaches this machine");
    tokio::time::timeout(std::time::Duration::from_secs(5), trap.accept())
        .await
        .expect("the trap sees a connection")
        .expect("accept");

    // With --insecure, or AUTHCELL_INSECURE, the call goes through, with a warning.
    let server = TestServer::start().await;
    let remote = format!("http://0.0.0.0:{}", server.addr.port());
    let env = [
        ("AUTHCELL_ENDPOINT", remote.as_str()),
        ("AUTHCELL_API_KEY", server.owner_key.as_str()),
    ];
    let flagged = run_env(&env, &["keys", "list", "--json", "--insecure"], None).await;
    assert_eq!(flagged.json()["keys"].as_array().expect("keys").len(), 1);
    assert!(
        flagged
            .stderr
            .contains("warning: sending the API key in plaintext"),
        "{flagged:?}"
    );
    assert!(!flagged.stderr.contains(&server.owner_key), "{flagged:?}");
    let with_env = [env[0], env[1], ("AUTHCELL_INSECURE", "1")];
    let from_env = run_env(&with_env, &["keys", "list", "--json"], None).await;
    assert_eq!(from_env.json()["keys"].as_array().expect("keys").len(), 1);
    let off = [env[0], env[1], ("AUTHCELL_INSECURE", "false")];
    run_env(&off, &["keys", "list"], None).await.fails(
        2,
        "refusing to send the API key in plaintext",
        &server.owner_key,
    );

    // Loopback needs no flag: by address, and by the name localhost.
    let localhost = format!("localhost:{}", server.addr.port());
    let run = run_env(
        &[
            ("AUTHCELL_ENDPOINT", localhost.as_str()),
            ("AUTHCELL_API_KEY", server.owner_key.as_str()),
        ],
        &["keys", "list", "--json"],
        None,
    )
    .await;
    assert_eq!(run.json()["keys"].as_array().expect("keys").len(), 1);
    assert!(run.stderr.is_empty(), "no warning on loopback: {run:?}");
}
