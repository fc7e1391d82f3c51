//! Tests of the harness itself.

use super::*;

/// Long enough for a replica to catch up on loopback.
const CATCH_UP: Duration = Duration::from_secs(10);

#[test]
fn a_topology_replicates_and_a_restarted_replica_catches_up() {
    let mut t = Topology::start(false);
    assert_eq!(t.primary.command(&["SET", "k1", "v1"]), "OK");
    t.replica_a.wait_for_reply(&["GET", "k1"], "v1", CATCH_UP);
    t.replica_b.wait_for_reply(&["GET", "k1"], "v1", CATCH_UP);
    assert!(
        t.replica_a
            .command(&["SET", "k1", "x"])
            .starts_with("(error) READONLY"),
        "replicas are read-only"
    );

    t.replica_b.stop();
    assert!(!t.replica_b.is_running());
    assert_eq!(t.primary.command(&["SET", "k2", "v2"]), "OK");
    assert_eq!(t.primary.command(&["INCR", "n"]), "1");
    t.replica_a.wait_for_reply(&["GET", "k2"], "v2", CATCH_UP);

    // It reloads the dump.rdb it received at its first full sync, then resyncs partially.
    t.replica_b.start_again();
    assert!(t.replica_b.is_running());
    t.replica_b.wait_for_reply(&["GET", "k2"], "v2", CATCH_UP);
    t.replica_b.wait_for_reply(&["GET", "n"], "1", CATCH_UP);
    assert_eq!(t.replica_b.command(&["GET", "k1"]), "v1");
}

#[test]
fn replicas_follow_a_restarted_aof_primary() {
    let mut t = Topology::start(true);
    assert_eq!(t.primary.command(&["SET", "k", "v"]), "OK");
    t.replica_a.wait_for_reply(&["GET", "k"], "v", CATCH_UP);

    t.primary.stop();
    t.primary.start_again();
    t.wait_for_links_up();
    assert_eq!(t.primary.command(&["GET", "k"]), "v");
    assert_eq!(t.primary.command(&["SET", "k2", "v2"]), "OK");
    for replica in [&t.replica_a, &t.replica_b] {
        replica.wait_for_reply(&["GET", "k2"], "v2", CATCH_UP);
        assert_eq!(replica.command(&["GET", "k"]), "v");
    }
}

#[test]
fn an_aof_server_keeps_its_keys_across_a_restart() {
    let mut server = RedisServer::start(RedisOptions {
        aof: true,
        ..Default::default()
    });
    assert_eq!(server.command(&["SET", "k", "v"]), "OK");
    assert_eq!(server.command(&["RPUSH", "list", "a", "b"]), "2");
    let port = server.port();

    server.stop();
    assert!(!server.is_running());
    server.start_again();
    assert_eq!(server.port(), port, "same port after a restart");
    assert_eq!(server.command(&["GET", "k"]), "v");
    assert_eq!(server.command(&["LRANGE", "list", "0", "-1"]), "a\nb");

    // appendfsync always: even SIGKILL loses nothing acknowledged.
    assert_eq!(server.command(&["SET", "k", "after"]), "OK");
    server.kill();
    server.start_again();
    assert_eq!(server.command(&["GET", "k"]), "after");
}

#[test]
fn without_aof_a_restart_starts_empty() {
    let mut server = RedisServer::start(RedisOptions::default());
    assert_eq!(server.command(&["SET", "k", "v"]), "OK");
    server.stop();
    server.start_again();
    assert_eq!(server.command(&["GET", "k"]), "(nil)");
}

#[test]
fn command_renders_every_kind_of_reply() {
    let server = RedisServer::start(RedisOptions::default());
    assert_eq!(
        server.url(),
        format!("redis://127.0.0.1:{}/", server.port())
    );
    assert_eq!(server.command(&["PING"]), "PONG");
    let error = server.command(&["NOSUCHCOMMAND", "x"]);
    assert!(error.starts_with("(error) ERR unknown command"), "{error}");
    let error = server.command(&["GET"]);
    assert!(
        error.starts_with("(error) ERR wrong number of arguments"),
        "{error}"
    );
    assert_eq!(server.command(&["GET", "missing"]), "(nil)");
    assert_eq!(server.command(&["SET", "with space", "a\r\nb"]), "OK");
    assert_eq!(server.command(&["GET", "with space"]), "a\r\nb");
    assert_eq!(server.command(&["SET", "empty", ""]), "OK");
    assert_eq!(server.command(&["GET", "empty"]), "");
    assert_eq!(server.command(&["DEL", "empty", "missing"]), "1");
    assert_eq!(server.command(&["LRANGE", "missing", "0", "-1"]), "");
}

#[test]
fn drop_kills_the_server_and_removes_its_directory() {
    let server = RedisServer::start(RedisOptions::default());
    let (port, dir) = (server.port(), server.dir().to_path_buf());
    assert!(dir.join("redis.log").is_file());
    drop(server);
    assert!(!dir.exists(), "{} removed on drop", dir.display());
    assert!(
        !answers_ping(port),
        "nothing answers on port {port} after drop"
    );
}

#[test]
#[should_panic(expected = "was taken by another process")]
fn start_again_on_a_port_taken_meanwhile_fails_clearly() {
    let mut server = RedisServer::start(RedisOptions::default());
    server.stop();
    let _squatter = TcpListener::bind((Ipv4Addr::LOCALHOST, server.port())).expect("bind the port");
    server.start_again();
}
