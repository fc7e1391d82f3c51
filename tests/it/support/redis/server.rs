//! One `redis-server` process: started on a free port in a directory of its own, stopped,
//! paused, restarted, cut off from its primary, and removed on drop.

use super::*;

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
