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

/// How long a server may take to answer `PING` after it is started.
const READY_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a replica may take to report `master_link_status:up`.
const LINK_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a server may take to exit after SIGTERM or SIGKILL.
const EXIT_TIMEOUT: Duration = Duration::from_secs(10);
/// Connect, read and write timeout of one [`RedisServer::command`].
const IO_TIMEOUT: Duration = Duration::from_secs(5);
/// The same for one readiness probe: short, because whatever else holds the port may accept
/// a connection and never answer.
const PROBE_TIMEOUT: Duration = Duration::from_millis(500);
/// Interval of every poll.
const POLL: Duration = Duration::from_millis(20);
/// Free ports tried before giving up when another process keeps taking the chosen one.
const PORT_ATTEMPTS: usize = 5;
/// Lines of the server's log quoted in a panic message.
const LOG_TAIL_LINES: usize = 40;

const NOT_FOUND: &str =
    "redis-server not found on PATH: run `apt-get install -y redis-server` (Debian/Ubuntu) or see README";

/// Panics, with the install command, unless a `redis-server` executable is on `PATH`.
///
/// Tests that need Redis fail without it; they are never skipped.
pub fn require_redis_server() {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let found = std::env::split_paths(&path).any(|dir| is_executable(&dir.join("redis-server")));
    assert!(found, "{NOT_FOUND}");
}

fn is_executable(path: &Path) -> bool {
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

/// One `redis-server` process on 127.0.0.1 with its own directory. See the module docs.
pub struct RedisServer {
    port: u16,
    dir: PathBuf,
    options: RedisOptions,
    /// `None` once stopped or killed. In a mutex so that [`RedisServer::is_running`] (which
    /// reaps an exited child) takes `&self`.
    child: Mutex<Option<Child>>,
}

/// The outcome of one launch of `redis-server`.
enum Launch {
    Ready,
    /// The port was taken by another process before the server could bind it.
    PortTaken,
}

impl RedisServer {
    /// Starts a server on a free port in a fresh directory and waits until it answers `PING`
    /// (and, for a replica, until its link to the primary is up). Panics, with the tail of the
    /// server's log, if it does not come up in time.
    pub fn start(options: RedisOptions) -> RedisServer {
        require_redis_server();
        let mut server = RedisServer {
            port: 0,
            dir: fresh_dir(),
            options,
            child: Mutex::new(None),
        };
        for _ in 0..PORT_ATTEMPTS {
            server.port = free_port();
            match server.launch() {
                Launch::Ready => {
                    server.wait_for_link_if_replica();
                    return server;
                }
                // Another process bound the port between our probe and redis-server's bind.
                Launch::PortTaken => {}
            }
        }
        panic!("redis-server: no free port after {PORT_ATTEMPTS} attempts")
    }

    /// The server's port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `redis://127.0.0.1:PORT/`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// The server's directory (log, AOF files). Kept across restarts, removed on drop.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The options the server was started with.
    pub fn options(&self) -> &RedisOptions {
        &self.options
    }

    /// Whether the process is alive (neither stopped, killed, nor exited on its own).
    pub fn is_running(&self) -> bool {
        let mut child = self.lock_child();
        match child.as_mut().map(Child::try_wait) {
            Some(Ok(None)) => true,
            Some(Ok(Some(_))) => {
                *child = None;
                false
            }
            Some(Err(e)) => panic!(
                "redis-server on port {}: cannot poll the process: {e}",
                self.port
            ),
            None => false,
        }
    }

    /// Stops the server with SIGTERM and waits for it to exit. The directory is kept, so an
    /// AOF server keeps its data for [`RedisServer::start_again`]. Does nothing if the server
    /// is not running.
    pub fn stop(&mut self) {
        let port = self.port;
        if self.options.aof && self.is_running() {
            // A server that is still writing its initial AOF (right after a full resync) refuses
            // SIGTERM ("Writing initial AOF, can't exit"): let it finish first.
            self.wait_for_aof_rewrite();
        }
        let Some(mut child) = self.child_mut().take() else {
            return;
        };
        let status = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .expect("run `kill -TERM`");
        assert!(
            status.success(),
            "`kill -TERM` on redis-server (port {port}) failed: {status}"
        );
        if !wait_for_exit(&mut child, EXIT_TIMEOUT) {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "redis-server on port {port} did not exit within {EXIT_TIMEOUT:?} of SIGTERM\n{}",
                self.log_tail()
            );
        }
    }

    fn wait_for_aof_rewrite(&self) {
        let deadline = Instant::now() + EXIT_TIMEOUT;
        loop {
            let info = request(self.port, &["INFO", "persistence"], PROBE_TIMEOUT)
                .map(|r| r.render())
                .unwrap_or_default();
            let busy = info.lines().any(|l| {
                matches!(
                    l.trim_end(),
                    "aof_rewrite_in_progress:1" | "aof_rewrite_scheduled:1"
                )
            });
            if !busy || Instant::now() >= deadline {
                return;
            }
            thread::sleep(POLL);
        }
    }

    /// Kills the server with SIGKILL (no shutdown work at all) and waits for it to exit. The
    /// directory is kept. Does nothing if the server is not running.
    /// Sets `replica-priority` now and for every later start.
    pub fn set_replica_priority(&mut self, priority: u32) {
        self.options.replica_priority = Some(priority);
        let reply = self.command(&["CONFIG", "SET", "replica-priority", &priority.to_string()]);
        assert_eq!(reply, "OK", "CONFIG SET replica-priority");
    }

    /// Sends SIGKILL through a shared reference (the process is reaped later, or on drop).
    pub fn kill_now(&self) {
        self.signal("-KILL");
    }

    pub fn kill(&mut self) {
        let port = self.port;
        let Some(mut child) = self.child_mut().take() else {
            return;
        };
        child.kill().expect("send SIGKILL to redis-server");
        assert!(
            wait_for_exit(&mut child, EXIT_TIMEOUT),
            "redis-server on port {port} did not exit within {EXIT_TIMEOUT:?} of SIGKILL"
        );
    }

    /// Starts a stopped or killed server again, on the same port, in the same directory, with
    /// the same options, and waits as [`RedisServer::start`] does (for a replica, until its link
    /// is up again, so its primary must be running). Panics if the server is running, or if
    /// another process took the port meanwhile.
    pub fn start_again(&mut self) {
        require_redis_server();
        assert!(
            !self.is_running(),
            "redis-server on port {} is already running",
            self.port
        );
        match self.launch() {
            Launch::Ready => self.wait_for_link_if_replica(),
            Launch::PortTaken => panic!(
                "redis-server cannot start again: port {} was taken by another process\n{}",
                self.port,
                self.log_tail()
            ),
        }
    }

    /// Starts a stopped or killed replica again without waiting for its link to its primary
    /// (which may be paused): it answers from whatever it loaded, here nothing.
    pub fn start_again_unlinked(&mut self) {
        require_redis_server();
        assert!(
            !self.is_running(),
            "redis-server on port {} is already running",
            self.port
        );
        match self.launch() {
            Launch::Ready => {}
            Launch::PortTaken => panic!(
                "redis-server cannot start again: port {} was taken by another process",
                self.port
            ),
        }
    }

    /// Pauses the process (SIGSTOP): it holds its connections and answers nothing.
    pub fn pause(&self) {
        self.signal("-STOP");
    }

    /// Resumes a paused process (SIGCONT).
    pub fn resume(&self) {
        self.signal("-CONT");
    }

    fn signal(&self, signal: &str) {
        let pid = self
            .lock_child()
            .as_ref()
            .map(Child::id)
            .unwrap_or_else(|| panic!("redis-server on port {} is not running", self.port));
        let status = Command::new("kill")
            .args([signal, &pid.to_string()])
            .status()
            .expect("run `kill`");
        assert!(
            status.success(),
            "`kill {signal}` on redis-server failed: {status}"
        );
    }

    /// Runs one command and renders its reply as text (panics if the server cannot be
    /// reached):
    /// - simple string: its text (`OK`, `PONG`); bulk string: its content (lossy UTF-8);
    /// - integer: its decimal digits (`1`);
    /// - error: `(error) ` and the message (`(error) ERR unknown command ...`);
    /// - null bulk string or null array: `(nil)`;
    /// - array: its elements rendered the same way, joined by `\n` (nested arrays flattened).
    pub fn command(&self, args: &[&str]) -> String {
        match request(self.port, args, IO_TIMEOUT) {
            Ok(reply) => reply.render(),
            Err(e) => panic!(
                "redis-server on port {}: {args:?} failed: {e}\n{}",
                self.port,
                self.log_tail()
            ),
        }
    }

    /// [`RedisServer::command`] for polling: `None` when the server cannot be reached or drops
    /// the connection (a Sentinel reconfiguring it kills its clients).
    pub fn try_command(&self, args: &[&str]) -> Option<String> {
        request(self.port, args, IO_TIMEOUT)
            .ok()
            .map(|r| r.render())
    }

    /// Polls `command(args)` until it returns `expected`; panics, with the last reply, after
    /// `timeout`. For what a replica eventually sees.
    pub fn wait_for_reply(&self, args: &[&str], expected: &str, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            let reply = self.command(args);
            if reply == expected {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "redis-server on port {}: {args:?} still returns {reply:?}, not {expected:?}, after {timeout:?}\n{}",
                self.port,
                self.log_tail()
            );
            thread::sleep(POLL);
        }
    }

    /// Waits until this replica reports `master_link_status:up` (it may need one after its
    /// primary restarted). Panics, with the log tail, after a bounded wait.
    pub fn wait_for_link_up(&self) {
        let deadline = Instant::now() + LINK_TIMEOUT;
        loop {
            let info =
                request(self.port, &["INFO", "replication"], PROBE_TIMEOUT).map(|r| r.render());
            if let Ok(info) = &info {
                if info
                    .lines()
                    .any(|l| l.trim_end() == "master_link_status:up")
                {
                    return;
                }
            }
            assert!(
                Instant::now() < deadline,
                "redis-server replica on port {} (of {:?}): link to its primary not up after {LINK_TIMEOUT:?}; last INFO replication: {info:?}\n{}",
                self.port,
                self.options.replica_of,
                self.log_tail()
            );
            thread::sleep(POLL);
        }
    }

    /// The last lines of the server's log and of its stdout/stderr, for panic messages.
    pub fn log_tail(&self) -> String {
        let mut text = format!("--- last lines of {} ---\n", self.log_path().display());
        text.push_str(&tail(&self.log_path()));
        let out = tail(&self.out_path());
        if !out.trim().is_empty() {
            text.push_str(&format!(
                "--- last lines of {} ---\n{out}",
                self.out_path().display()
            ));
        }
        text
    }

    fn log_path(&self) -> PathBuf {
        self.dir.join("redis.log")
    }

    fn out_path(&self) -> PathBuf {
        self.dir.join("redis.out")
    }

    fn lock_child(&self) -> MutexGuard<'_, Option<Child>> {
        self.child.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn child_mut(&mut self) -> &mut Option<Child> {
        self.child.get_mut().unwrap_or_else(PoisonError::into_inner)
    }

    fn args(&self) -> Vec<String> {
        if let Some(primary) = self.options.sentinel_of {
            return self.sentinel_args(primary);
        }
        let mut args: Vec<String> = [
            "--port",
            &self.port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--dir",
            &self.dir.to_string_lossy(),
            "--daemonize",
            "no",
            "--logfile",
            &self.log_path().to_string_lossy(),
            // A primary otherwise waits 5 s (the default) for more replicas before it streams
            // a full sync, so every replica start, and every primary restart, took 5 s.
            "--repl-diskless-sync-delay",
            "0",
        ]
        .map(String::from)
        .into();
        if self.options.aof {
            args.extend(["--appendonly", "yes", "--appendfsync", "always"].map(String::from));
        }
        if let Some(priority) = self.options.replica_priority {
            args.extend(["--replica-priority".into(), priority.to_string()]);
        }
        if let Some(primary) = self.options.replica_of {
            args.extend([
                "--replicaof".into(),
                "127.0.0.1".into(),
                primary.to_string(),
            ]);
        }
        args
    }

    /// A Sentinel needs a configuration file it can rewrite; it is written once, so that a
    /// restarted Sentinel remembers what it learnt (as a real one does).
    fn sentinel_args(&self, primary: u16) -> Vec<String> {
        let conf = self.dir.join("sentinel.conf");
        if !conf.exists() {
            let text = format!(
                "port {port}\nbind 127.0.0.1\ndir {dir}\n\
                 sentinel monitor {SENTINEL_MASTER} 127.0.0.1 {primary} 2\n\
                 sentinel down-after-milliseconds {SENTINEL_MASTER} {down}\n\
                 sentinel failover-timeout {SENTINEL_MASTER} 10000\n\
                 sentinel parallel-syncs {SENTINEL_MASTER} 2\n",
                port = self.port,
                dir = self.dir.display(),
                down = self
                    .options
                    .sentinel_down_after
                    .unwrap_or(SENTINEL_DOWN_AFTER)
                    .as_millis(),
            );
            fs::write(&conf, text).expect("write sentinel.conf");
        }
        [
            conf.to_string_lossy().into_owned(),
            "--sentinel".into(),
            "--port".into(),
            self.port.to_string(),
            "--daemonize".into(),
            "no".into(),
            "--logfile".into(),
            self.log_path().to_string_lossy().into_owned(),
        ]
        .into()
    }

    /// The port of the primary this Sentinel names now.
    pub fn master_port(&self) -> u16 {
        let reply = self.command(&["SENTINEL", "get-master-addr-by-name", SENTINEL_MASTER]);
        reply
            .lines()
            .nth(1)
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("Sentinel answered {reply:?}"))
    }

    /// Spawns `redis-server` on `self.port` and waits until it answers `PING`, or until it
    /// exits because the port is taken. Panics on any other failure.
    fn launch(&mut self) -> Launch {
        // The log is appended to across launches: only this launch's part tells why it failed.
        let log_start = fs::metadata(self.log_path()).map_or(0, |m| m.len());
        let out = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.out_path())
            .expect("create redis.out");
        let err = out.try_clone().expect("clone redis.out handle");
        let child = Command::new("redis-server")
            .args(self.args())
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .expect("spawn redis-server");
        let pid = child.id();
        *self.child_mut() = Some(child);

        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if !self.is_running() {
                let log = fs::read(self.log_path()).unwrap_or_default();
                let this_launch = log.get(log_start as usize..).unwrap_or_default();
                if String::from_utf8_lossy(this_launch).contains("Address already in use") {
                    return Launch::PortTaken;
                }
                panic!(
                    "redis-server (port {}) exited during start-up\n{}",
                    self.port,
                    self.log_tail()
                );
            }
            // Something else may answer on the port (the process that took it): only our own
            // process counts.
            if answers_ping(self.port) && server_pid(self.port) == Some(pid) {
                return Launch::Ready;
            }
            if Instant::now() >= deadline {
                if let Some(mut child) = self.child_mut().take() {
                    let _ = child.kill();
                    let _ = child.wait();
                }
                panic!(
                    "redis-server (port {}) did not answer PING within {READY_TIMEOUT:?}\n{}",
                    self.port,
                    self.log_tail()
                );
            }
            thread::sleep(POLL);
        }
    }

    fn wait_for_link_if_replica(&self) {
        if self.options.replica_of.is_some() {
            self.wait_for_link_up();
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child_mut().take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// A primary and two replicas of it, each with its own directory and the same persistence.
pub struct Topology {
    pub primary: RedisServer,
    pub replica_a: RedisServer,
    pub replica_b: RedisServer,
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
        }
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
fn fresh_dir() -> PathBuf {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("authcell-redis-{}-{n}", std::process::id()));
    // Left over by an earlier process that had the same pid.
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("create {}: {e}", dir.display()));
    dir
}

/// A port that was free on 127.0.0.1 a moment ago (it may be taken again before it is used).
fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .expect("bind 127.0.0.1:0 to find a free port")
        .port()
}

/// Polls until `child` exits; false if it is still running after `timeout`.
fn wait_for_exit(child: &mut Child, timeout: Duration) -> bool {
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
fn tail(path: &Path) -> String {
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
fn answers_ping(port: u16) -> bool {
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
fn server_pid(port: u16) -> Option<u32> {
    let info = request(port, &["INFO", "server"], PROBE_TIMEOUT)
        .ok()?
        .render();
    info.lines()
        .find_map(|l| l.trim_end().strip_prefix("process_id:"))
        .and_then(|pid| pid.parse().ok())
}

// --- A minimal blocking RESP2 client ------------------------------------------------------

/// One RESP2 reply.
enum Reply {
    Simple(String),
    Error(String),
    Integer(i64),
    Bulk(Vec<u8>),
    Nil,
    Array(Vec<Reply>),
}

impl Reply {
    /// See [`RedisServer::command`].
    fn render(&self) -> String {
        match self {
            Reply::Simple(s) => s.clone(),
            Reply::Error(e) => format!("(error) {e}"),
            Reply::Integer(i) => i.to_string(),
            Reply::Bulk(b) => String::from_utf8_lossy(b).into_owned(),
            Reply::Nil => "(nil)".into(),
            Reply::Array(items) => items
                .iter()
                .map(Reply::render)
                .collect::<Vec<_>>()
                .join("\n"),
        }
    }
}

/// Connects to 127.0.0.1:`port`; `timeout` bounds the connect and every read and write.
fn connect(port: u16, timeout: Duration) -> io::Result<TcpStream> {
    let stream =
        TcpStream::connect_timeout(&SocketAddr::from((Ipv4Addr::LOCALHOST, port)), timeout)?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    Ok(stream)
}

/// Sends `args` as an array of bulk strings on a new connection and reads one reply.
fn request(port: u16, args: &[&str], timeout: Duration) -> io::Result<Reply> {
    let mut message = format!("*{}\r\n", args.len()).into_bytes();
    for arg in args {
        message.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
        message.extend_from_slice(arg.as_bytes());
        message.extend_from_slice(b"\r\n");
    }
    let mut stream = connect(port, timeout)?;
    stream.write_all(&message)?;
    read_reply(&mut BufReader::new(stream))
}

fn read_reply(reader: &mut BufReader<TcpStream>) -> io::Result<Reply> {
    let mut line = String::new();
    if reader.read_line(&mut line)? == 0 {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "connection closed before a reply",
        ));
    }
    let line = line
        .strip_suffix("\r\n")
        .ok_or_else(|| invalid(format!("reply line without CRLF: {line:?}")))?;
    let (kind, rest) = line
        .split_at_checked(1)
        .ok_or_else(|| invalid("empty reply line".into()))?;
    let number = || -> io::Result<i64> {
        rest.parse()
            .map_err(|_| invalid(format!("bad length or integer: {line:?}")))
    };
    Ok(match kind {
        "+" => Reply::Simple(rest.into()),
        "-" => Reply::Error(rest.into()),
        ":" => Reply::Integer(number()?),
        "$" => match usize::try_from(number()?) {
            Err(_) => Reply::Nil,
            Ok(len) => {
                let mut data = vec![0; len + 2];
                reader.read_exact(&mut data)?;
                if !data.ends_with(b"\r\n") {
                    return Err(invalid("bulk string without CRLF".into()));
                }
                data.truncate(len);
                Reply::Bulk(data)
            }
        },
        "*" => match usize::try_from(number()?) {
            Err(_) => Reply::Nil,
            Ok(len) => Reply::Array(
                (0..len)
                    .map(|_| read_reply(reader))
                    .collect::<io::Result<_>>()?,
            ),
        },
        _ => return Err(invalid(format!("unknown reply type: {line:?}"))),
    })
}

fn invalid(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message)
}

// --- Tests of the harness itself -----------------------------------------------------------

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
