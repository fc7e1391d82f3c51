//! The fault schedule and how each fault is injected (replica cut off, paused, restarted; primary restarted or failed over; node paused).

use super::*;

#[derive(Clone, Copy, Debug)]
pub(crate) enum Fault {
    Failover,
    PauseReplica(usize),
    RestartReplica(usize),
    RestartPrimary { kill: bool },
    CutReplica(usize),
    PauseNode(usize),
}

impl Fault {
    pub(crate) fn kind(self) -> &'static str {
        match self {
            Fault::Failover => "primary failover",
            Fault::PauseReplica(_) => "pause replica",
            Fault::RestartReplica(_) => "restart replica",
            Fault::RestartPrimary { kill: false } => "restart primary (SIGTERM)",
            Fault::RestartPrimary { kill: true } => "restart primary (SIGKILL)",
            Fault::CutReplica(_) => "cut replica from primary",
            Fault::PauseNode(_) => "pause authcell node",
        }
    }

    pub(crate) fn describe(self, hold: Duration) -> String {
        let cell = match self {
            Fault::PauseReplica(c)
            | Fault::RestartReplica(c)
            | Fault::CutReplica(c)
            | Fault::PauseNode(c) => format!(" of cell {}", CELLS[c]),
            Fault::RestartPrimary { .. } | Fault::Failover => String::new(),
        };
        format!("{}{cell}, {:.0} s", self.kind(), hold.as_secs_f64())
    }
}

/// The faults of cycle `n`: every kind once; the cells alternate between cycles.
pub(crate) fn cycle(n: usize) -> [(Fault, Duration); 6] {
    let (x, y) = (n % 2, 1 - n % 2);
    let s = Duration::from_secs;
    [
        (Fault::PauseReplica(x), s(3)),
        (Fault::RestartReplica(y), s(3)),
        (Fault::RestartPrimary { kill: n % 2 == 1 }, s(3)),
        (Fault::CutReplica(x), s(4)),
        // Cycles 1 and 2 (one per cell) keep the node paused past the 5 s liveness window.
        (
            Fault::PauseNode(y),
            if matches!(n % 4, 1 | 2) { s(7) } else { s(3) },
        ),
        // Last: it takes 30-40 s (SENTINEL_DOWN, the promotion, the old primary's return and
        // the switch-back), so a 60 s run starts it after every other kind, and finishes it
        // after the traffic deadline.
        (Fault::Failover, s(0)),
    ]
}

pub(crate) fn replica(topology: &mut Topology, cell: usize) -> &mut RedisServer {
    if cell == 0 {
        &mut topology.replica_a
    } else {
        &mut topology.replica_b
    }
}

/// Polls a replica until its link to its primary is up, for up to [`LINK_BOUND`].
pub(crate) fn wait_link(server: &RedisServer) {
    let started = Instant::now();
    loop {
        let info = server
            .try_command(&["INFO", "replication"])
            .unwrap_or_default();
        if info
            .lines()
            .any(|l| l.trim_end() == "master_link_status:up")
        {
            return;
        }
        assert!(
            started.elapsed() < LINK_BOUND,
            "replica on port {}: link not up within {LINK_BOUND:?}\n{info}\n{}",
            server.port(),
            server.log_tail()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The Sentinels' `down-after-milliseconds`: longer than a primary restart (so that only the
/// failover fault fails over), short enough for a 60 s run.
pub(crate) const SENTINEL_DOWN: Duration = Duration::from_secs(6);

/// The soak's Redis: the topology and the Sentinels watching it.
pub(crate) struct Redis {
    pub(crate) topology: Topology,
    pub(crate) sentinels: Vec<RedisServer>,
}

/// Polls until the Sentinels name the server on `port` as the primary and it says so.
pub(crate) fn wait_named(redis: &Redis, port: u16) {
    if named_within(redis, port, LINK_BOUND) {
        return;
    }
    let t = &redis.topology;
    let roles: Vec<String> = [&t.primary, &t.replica_a, &t.replica_b]
        .into_iter()
        .map(|s| {
            let role = s.try_command(&["ROLE"]).unwrap_or_default();
            format!("{}: {}", s.port(), role.replace('\n', " "))
        })
        .collect();
    panic!(
        "the Sentinels did not promote port {port} within {LINK_BOUND:?}; roles: {roles:?}\n{}",
        redis.sentinels[0].log_tail()
    );
}

/// Whether the Sentinels name the server on `port` as the primary, and it says so, within
/// `within`.
pub(crate) fn named_within(redis: &Redis, port: u16, within: Duration) -> bool {
    let started = Instant::now();
    loop {
        let named = redis.sentinels.iter().all(|s| s.master_port() == port);
        if named
            && redis
                .topology
                .server(port)
                .try_command(&["ROLE"])
                .is_some_and(|r| r.starts_with("master"))
        {
            return true;
        }
        if started.elapsed() >= within {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Kills the primary; waits for the Sentinels to promote a replica; starts the old primary
/// again (the Sentinels make it a replica of the new one) and switches back to it with a
/// graceful `SENTINEL FAILOVER` (it is given the best replica priority), so that the other
/// faults find the roles where they expect them.
pub(crate) fn failover(redis: &mut Redis) {
    let old = redis.topology.primary.port();
    redis.topology.primary.kill();
    let started = Instant::now();
    let promoted = loop {
        let port = redis.sentinels[0].master_port();
        if port != old {
            break port;
        }
        assert!(
            started.elapsed() < LINK_BOUND,
            "no replica promoted within {LINK_BOUND:?} of the primary's death"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    wait_named(redis, promoted);
    // Only once every other replica follows the new primary may the old one come back: it
    // restarts as a primary with its own (older) data until the Sentinels demote it, and a
    // replica still pointed at its address would copy that stale data meanwhile.
    let promoted_port = promoted.to_string();
    let started = Instant::now();
    loop {
        let t = &redis.topology;
        let following = [&t.replica_a, &t.replica_b]
            .into_iter()
            .filter(|s| s.port() != promoted)
            .all(|s| {
                let info = s.try_command(&["INFO", "replication"]).unwrap_or_default();
                info.lines()
                    .any(|l| l.trim_end() == format!("master_port:{promoted_port}"))
                    && info
                        .lines()
                        .any(|l| l.trim_end() == "master_link_status:up")
            });
        if following {
            break;
        }
        assert!(
            started.elapsed() < LINK_BOUND,
            "the other replica did not follow the new primary within {LINK_BOUND:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    redis.topology.primary.start_again();
    let started = Instant::now();
    while !redis
        .topology
        .primary
        .try_command(&["ROLE"])
        .is_some_and(|r| r.starts_with("slave"))
    {
        assert!(
            started.elapsed() < LINK_BOUND,
            "the old primary was not made a replica within {LINK_BOUND:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    wait_link(&redis.topology.primary);
    // It runs with --replica-priority 1 (the replicas have the default 100): once a Sentinel
    // has read that from it, a failover picks it.
    let started = Instant::now();
    let port = old.to_string();
    loop {
        let replicas = redis.sentinels[0].command(&["SENTINEL", "replicas", SENTINEL_MASTER]);
        let lines: Vec<&str> = replicas.lines().collect();
        // Flattened: one entry's fields run from its "name" to the next "name".
        let ready = lines.split(|l| *l == "name").any(|entry| {
            let field = |name: &str| {
                entry
                    .iter()
                    .position(|l| *l == name)
                    .and_then(|i| entry.get(i + 1).copied())
            };
            field("port") == Some(port.as_str())
                && field("slave-priority") == Some("1")
                && field("master-link-status") == Some("ok")
                && field("flags") == Some("slave")
        });
        if ready {
            break;
        }
        assert!(
            started.elapsed() < LINK_BOUND,
            "the Sentinel did not see the old primary as a ready replica within {LINK_BOUND:?}: {replicas}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // A graceful switch-over loses nothing only if the replica to be promoted holds every
    // acknowledged write (Sentinel promotes by priority first, data second): pause writes on
    // the current primary, wait until the old primary has caught up, then fail over. The
    // writes held meanwhile run after the switch, answered READONLY by the demoted server, and
    // the nodes resend them to the new primary.
    let current = redis.topology.server(promoted);
    let offset = |server: &RedisServer, field: &str| -> Option<u64> {
        server
            .try_command(&["INFO", "replication"])?
            .lines()
            .find_map(|l| l.trim_end().strip_prefix(field)?.strip_prefix(':'))
            .and_then(|v| v.parse().ok())
    };
    // A Sentinel sometimes aborts a requested failover (`-failover-abort-slave-timeout`): the
    // whole switch-back is tried again, writes paused anew each time.
    for _ in 0..3 {
        let reply = current.command(&["CLIENT", "PAUSE", "15000", "WRITE"]);
        assert_eq!(reply, "OK", "CLIENT PAUSE WRITE");
        let started = Instant::now();
        loop {
            let want = offset(current, "master_repl_offset");
            if want.is_some() && offset(&redis.topology.primary, "slave_repl_offset") == want {
                break;
            }
            // Within the 15 s write pause (on a loaded 2-core machine a catch-up after a
            // restart has taken more than 8 s).
            assert!(
                started.elapsed() < Duration::from_secs(14),
                "the old primary did not catch up with the paused primary"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        // A Sentinel refuses a failover while it still considers one in progress: retry.
        let started = Instant::now();
        loop {
            let reply = redis.sentinels[0].command(&["SENTINEL", "FAILOVER", SENTINEL_MASTER]);
            if reply == "OK" {
                break;
            }
            assert!(
                started.elapsed() < LINK_BOUND,
                "SENTINEL FAILOVER kept failing: {reply}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        if named_within(redis, old, Duration::from_secs(14)) {
            break;
        }
        let _ = current.try_command(&["CLIENT", "UNPAUSE"]);
        std::thread::sleep(Duration::from_secs(1));
    }
    wait_named(redis, old);
    // Now a replica: the held writes are released (to be refused READONLY).
    let _ = current.command(&["CLIENT", "UNPAUSE"]);
    wait_link(&redis.topology.replica_a);
    wait_link(&redis.topology.replica_b);
}

/// Injects one fault, holds it, and undoes it (blocking).
pub(crate) fn inject(redis: &mut Redis, pids: [u32; 2], fault: Fault, hold: Duration) {
    if let Fault::Failover = fault {
        failover(redis);
        return;
    }
    let topology = &mut redis.topology;
    match fault {
        Fault::Failover => {}
        Fault::PauseReplica(c) => {
            let server = replica(topology, c);
            server.pause();
            std::thread::sleep(hold);
            server.resume();
            wait_link(server);
        }
        Fault::RestartReplica(c) => {
            let server = replica(topology, c);
            server.stop();
            std::thread::sleep(hold);
            server.start_again_unlinked();
            wait_link(server);
        }
        Fault::RestartPrimary { kill } => {
            if kill {
                topology.primary.kill();
            } else {
                topology.primary.stop();
            }
            std::thread::sleep(hold);
            topology.primary.start_again();
            wait_link(&topology.replica_a);
            wait_link(&topology.replica_b);
        }
        Fault::CutReplica(c) => {
            let port = topology.primary.port().to_string();
            let server = replica(topology, c);
            let reply = server.command(&["REPLICAOF", "127.0.0.1", "1"]);
            assert_eq!(reply, "OK", "REPLICAOF 127.0.0.1 1");
            std::thread::sleep(hold);
            let reply = server.command(&["REPLICAOF", "127.0.0.1", &port]);
            assert_eq!(reply, "OK", "REPLICAOF back to the primary");
            wait_link(server);
        }
        Fault::PauseNode(c) => {
            assert!(signal(pids[c], "-STOP"), "SIGSTOP authcell node");
            std::thread::sleep(hold);
            assert!(signal(pids[c], "-CONT"), "SIGCONT authcell node");
        }
    }
}

/// Runs the schedule until the deadline, one fault at a time, 2 s apart.
pub(crate) async fn faults(shared: Arc<Shared>, topology: Arc<Mutex<Redis>>, pids: [u32; 2]) {
    let mut n = 0;
    'cycles: loop {
        for (fault, hold) in cycle(n) {
            sleep_ms(2000).await;
            if !shared.running() {
                break 'cycles;
            }
            {
                let mut state = shared.state();
                let at = state.started.elapsed().as_secs_f64();
                state.report.fault_log.push((at, fault.describe(hold)));
                *state.report.faults.entry(fault.kind()).or_default() += 1;
            }
            let topology = topology.clone();
            tokio::task::spawn_blocking(move || {
                let mut topology = topology.lock().unwrap_or_else(PoisonError::into_inner);
                inject(&mut topology, pids, fault, hold);
            })
            .await
            .expect("a fault could not be injected or undone (see the panic above)");
        }
        n += 1;
    }
}
