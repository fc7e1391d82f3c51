//! Real `redis-server` processes for tests: one server, or a primary with two replicas.
//!
//! This module owns, for each [`RedisServer`]:
//! - the `redis-server` child process (started on a free loopback port, stopped with SIGTERM,
//!   killed with SIGKILL, and always killed on drop);
//! - a fresh directory under [`std::env::temp_dir`] (`authcell-redis-<pid>-<n>`) holding the
//!   server's log (`redis.log`), its stdout/stderr (`redis.out`) and, with AOF, its append-only
//!   files. The directory survives [`RedisServer::stop`] and [`RedisServer::kill`] so that
//!   [`RedisServer::start_again`] finds its data; it is removed on drop.
//!
//! It talks to the servers with a tiny blocking RESP2 client over `std::net::TcpStream` (no
//! redis crate, no async runtime), so it works the same from `#[test]` and `#[tokio::test]`.
//! Every call blocks the calling thread (waits poll every 20 ms, bounded by a few seconds): in
//! an async test call it during set-up, or through `spawn_blocking` while tasks must make
//! progress.
//!
//! The tests need a real `redis-server` on `PATH` and fail (never skip) without one.

// A harness: not every helper is used by every test module that includes it.
#![allow(dead_code)]

use std::fs::{self, OpenOptions};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

mod resp;
mod server;
#[cfg(test)]
mod tests;
mod wan;

use resp::*;
pub use server::RedisServer;
pub use wan::WanLink;

/// How long a server may take to answer `PING` after it is started.
pub(super) const READY_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a replica may take to report `master_link_status:up`.
pub(super) const LINK_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a server may take to exit after SIGTERM or SIGKILL.
pub(super) const EXIT_TIMEOUT: Duration = Duration::from_secs(10);
/// Connect, read and write timeout of one [`RedisServer::command`].
pub(super) const IO_TIMEOUT: Duration = Duration::from_secs(5);
/// The same for one readiness probe: short, because whatever else holds the port may accept
/// a connection and never answer.
pub(super) const PROBE_TIMEOUT: Duration = Duration::from_millis(500);
/// Interval of every poll.
pub(super) const POLL: Duration = Duration::from_millis(20);
/// Free ports tried before giving up when another process keeps taking the chosen one.
pub(super) const PORT_ATTEMPTS: usize = 5;
/// Lines of the server's log quoted in a panic message.
pub(super) const LOG_TAIL_LINES: usize = 40;

pub(super) const NOT_FOUND: &str =
    "redis-server not found on PATH: run `apt-get install -y redis-server` (Debian/Ubuntu) or see README";

/// Panics, with the install command, unless a `redis-server` executable is on `PATH`.
///
/// Tests that need Redis fail without it; they are never skipped.
pub fn require_redis_server() {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let found = std::env::split_paths(&path).any(|dir| is_executable(&dir.join("redis-server")));
    assert!(found, "{NOT_FOUND}");
}

pub(super) fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// How to run a [`RedisServer`].
#[derive(Clone, Debug, Default)]
pub struct RedisOptions {
    /// Port of a primary on 127.0.0.1 to replicate (`--replicaof 127.0.0.1 PORT`).
    pub replica_of: Option<u16>,
    /// Append-only file persistence, fsynced on every write (`--appendonly yes
    /// --appendfsync always`). Without it the server persists nothing (`--save ""`).
    pub aof: bool,
    /// Run as a Sentinel (`redis-server sentinel.conf --sentinel`) monitoring the primary on
    /// this port under [`SENTINEL_MASTER`], with a quorum of 2.
    pub sentinel_of: Option<u16>,
    /// A Sentinel's `down-after-milliseconds` ([`SENTINEL_DOWN_AFTER`] if `None`).
    pub sentinel_down_after: Option<Duration>,
    /// `--replica-priority` (Sentinel promotes the lowest first).
    pub replica_priority: Option<u32>,
}

/// The master name the test Sentinels monitor.
pub const SENTINEL_MASTER: &str = "authcell";
/// How long Sentinels wait, by default, before they call an unanswering primary down.
pub const SENTINEL_DOWN_AFTER: Duration = Duration::from_millis(1000);

/// Three Sentinels watching the primary on `primary` (which has two replicas), once each knows
/// both replicas and its two peers.
pub fn start_sentinels(primary: u16, down_after: Duration) -> Vec<RedisServer> {
    let sentinels: Vec<RedisServer> = (0..3)
        .map(|_| {
            RedisServer::start(RedisOptions {
                sentinel_of: Some(primary),
                sentinel_down_after: Some(down_after),
                ..RedisOptions::default()
            })
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(30);
    for sentinel in &sentinels {
        loop {
            let reply = sentinel.command(&["SENTINEL", "master", SENTINEL_MASTER]);
            let fields: Vec<&str> = reply.lines().collect();
            let field = |name: &str| {
                fields
                    .chunks(2)
                    .find(|kv| kv.first() == Some(&name))
                    .and_then(|kv| kv.get(1).copied())
            };
            if field("num-slaves") == Some("2") && field("num-other-sentinels") == Some("2") {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "Sentinel on port {} did not find both replicas and its peers: {reply}",
                sentinel.port()
            );
            thread::sleep(POLL);
        }
    }
    sentinels
}

/// A primary and two replicas of it, each with its own directory and the same persistence.
pub struct Topology {
    pub primary: RedisServer,
    pub replica_a: RedisServer,
    pub replica_b: RedisServer,
    /// Replica b's link to the primary, when cell b is a WAN away ([`Topology::start_wan`]).
    pub wan_b: Option<WanLink>,
}

impl Topology {
    /// Starts the primary, then both replicas, and waits until both links are up.
    pub fn start(aof: bool) -> Topology {
        require_redis_server();
        let primary = RedisServer::start(RedisOptions {
            aof,
            ..RedisOptions::default()
        });
        let replica_options = RedisOptions {
            replica_of: Some(primary.port()),
            aof,
            ..RedisOptions::default()
        };
        let replica_a = RedisServer::start(replica_options.clone());
        let replica_b = RedisServer::start(replica_options);
        Topology {
            primary,
            replica_a,
            replica_b,
            wan_b: None,
        }
    }

    /// As [`Topology::start`] without persistence, but replica b follows the primary through a
    /// [`WanLink`] delaying each direction by `one_way` (cell b is a region away).
    pub fn start_wan(one_way: std::time::Duration) -> Topology {
        require_redis_server();
        let primary = RedisServer::start(RedisOptions::default());
        let replica_a = RedisServer::start(RedisOptions {
            replica_of: Some(primary.port()),
            ..RedisOptions::default()
        });
        let wan_b = WanLink::start(primary.port(), one_way);
        let replica_b = RedisServer::start(RedisOptions {
            replica_of: Some(wan_b.port()),
            ..RedisOptions::default()
        });
        let topology = Topology {
            primary,
            replica_a,
            replica_b,
            wan_b: Some(wan_b),
        };
        topology.wait_for_links_up();
        topology
    }

    /// The server of the topology on `port` (which one is the primary changes on failover).
    pub fn server(&self, port: u16) -> &RedisServer {
        [&self.primary, &self.replica_a, &self.replica_b]
            .into_iter()
            .find(|s| s.port() == port)
            .unwrap_or_else(|| panic!("no server of the topology on port {port}"))
    }

    /// Waits until both replicas' links to the primary are up (after the primary restarted).
    pub fn wait_for_links_up(&self) {
        self.replica_a.wait_for_link_up();
        self.replica_b.wait_for_link_up();
    }
}

/// A new, empty directory under the system temp dir, unique to this process and call.
pub(super) fn fresh_dir() -> PathBuf {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("authcell-redis-{}-{n}", std::process::id()));
    // Left over by an earlier process that had the same pid.
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("create {}: {e}", dir.display()));
    dir
}

/// A port that was free on 127.0.0.1 a moment ago (it may be taken again before it is used).
pub(super) fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .expect("bind 127.0.0.1:0 to find a free port")
        .port()
}

/// Polls until `child` exits; false if it is still running after `timeout`.
pub(super) fn wait_for_exit(child: &mut Child, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        match child.try_wait() {
            Ok(Some(_)) => return true,
            Ok(None) if Instant::now() < deadline => thread::sleep(POLL),
            Ok(None) => return false,
            Err(e) => panic!("cannot wait for redis-server: {e}"),
        }
    }
}

/// The last [`LOG_TAIL_LINES`] lines of a file, or a note saying why there are none.
pub(super) fn tail(path: &Path) -> String {
    match fs::read(path) {
        Ok(bytes) => {
            let text = String::from_utf8_lossy(&bytes);
            let lines: Vec<&str> = text.lines().collect();
            let start = lines.len().saturating_sub(LOG_TAIL_LINES);
            lines[start..].iter().map(|l| format!("{l}\n")).collect()
        }
        Err(e) => format!("(cannot read {}: {e})\n", path.display()),
    }
}

/// Whether something on `port` answers an inline `PING` with `+PONG`.
pub(super) fn answers_ping(port: u16) -> bool {
    let ping = || -> io::Result<bool> {
        let mut stream = connect(port, PROBE_TIMEOUT)?;
        stream.write_all(b"PING\r\n")?;
        let mut line = String::new();
        BufReader::new(stream).read_line(&mut line)?;
        Ok(line.starts_with("+PONG"))
    };
    ping().unwrap_or(false)
}

/// The `process_id` in `INFO server` of whatever answers on `port`.
pub(super) fn server_pid(port: u16) -> Option<u32> {
    let info = request(port, &["INFO", "server"], PROBE_TIMEOUT)
        .ok()?
        .render();
    info.lines()
        .find_map(|l| l.trim_end().strip_prefix("process_id:"))
        .and_then(|pid| pid.parse().ok())
}
