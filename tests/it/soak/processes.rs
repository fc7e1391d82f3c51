//! The processes under test: `authcell serve` nodes and their setup, and request builders.

use super::*;

/// The authcell binary: `AUTHCELL_SOAK_BIN` if set, else the one cargo built for this target
/// (cargo sets `CARGO_BIN_EXE_authcell` for integration tests and benchmarks alike, and builds
/// the binary, in the same profile, before running them).
pub(crate) fn authcell_bin() -> PathBuf {
    let path = std::env::var_os("AUTHCELL_SOAK_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_authcell")));
    assert!(
        path.is_file(),
        "the authcell binary {} does not exist: build it first (`cargo build --release` for the bench, `cargo build` for the test), or point AUTHCELL_SOAK_BIN at one",
        path.display()
    );
    path
}

pub(crate) fn signal(pid: u32, signal: &str) -> bool {
    Command::new("kill")
        .args([signal, &pid.to_string()])
        .status()
        .is_ok_and(|s| s.success())
}

/// VmRSS of a process, in KiB.
pub(crate) fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// One `authcell serve` process, logging to a file; killed on drop.
pub(crate) struct NodeProcess {
    pub(crate) port: u16,
    pub(crate) child: Child,
    pub(crate) log: PathBuf,
}

impl NodeProcess {
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    pub(crate) fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }
}

impl Drop for NodeProcess {
    fn drop(&mut self) {
        signal(self.child.id(), "-CONT");
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) struct Setup<'a> {
    pub(crate) bin: &'a Path,
    pub(crate) dir: &'a Path,
    pub(crate) key_file: &'a Path,
    /// How authcell finds the primary: `--redis-sentinel ... --redis-master-name ...`.
    pub(crate) redis: Vec<String>,
}

impl Setup<'_> {
    pub(crate) fn command(&self) -> Command {
        let mut command = Command::new(self.bin);
        // The flags say everything; nothing leaks in from the caller's environment.
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("AUTHCELL_") {
                command.env_remove(name);
            }
        }
        command
    }

    /// `authcell bootstrap --force` of `account`: its owner key.
    pub(crate) fn bootstrap(&self, account: &str) -> Result<String, String> {
        let out = self
            .command()
            .args(["bootstrap", "--force", "--account", account])
            .args(&self.redis)
            .args(["--min-replica-acks", "2"])
            .arg("--signing-key-file")
            .arg(self.key_file)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("run authcell bootstrap: {e}"))?;
        let stdout = String::from_utf8_lossy(&out.stdout);
        match stdout.trim().strip_prefix("AUTHCELL_API_KEY=") {
            Some(key) if out.status.success() => Ok(key.to_owned()),
            _ => Err(format!(
                "authcell bootstrap failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            )),
        }
    }

    /// Starts `authcell serve` for `cell` on a free port and waits until it allows `owner`.
    pub(crate) async fn node(&self, cell: &str, replica: &str, owner: &str) -> NodeProcess {
        for attempt in 0..5 {
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .expect("find a free port")
                .port();
            let log = self.dir.join(format!("node-{cell}-{attempt}.log"));
            let file = std::fs::File::create(&log).expect("create the node's log file");
            let child = self
                .command()
                .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
                .args(["--cell", cell])
                .args(&self.redis)
                .args(["--redis-read-url", replica, "--signing-key-file"])
                .arg(self.key_file)
                .args(["--stale-policy", "serve", "--vend-rate", "0"])
                // Every replica must hold a mutation before it is acknowledged: then no
                // acknowledged write is lost whichever replica Sentinel promotes.
                .args(["--min-replica-acks", "2"])
                .args(["--revoke-rate", "0", "--drain-seconds", "0"])
                .env("RUST_LOG", "warn")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(file)
                .spawn()
                .expect("start authcell serve");
            let mut node = NodeProcess { port, child, log };
            let started = Instant::now();
            let channel = channel(port, Duration::from_secs(5));
            loop {
                if let Ok(Some(status)) = node.child.try_wait() {
                    let tail = node.log_tail();
                    if tail.contains("Address already in use") {
                        break;
                    }
                    panic!("authcell serve (cell {cell}) exited during start-up: {status}\n{tail}");
                }
                let verdict = pb::verifier_client::VerifierClient::new(channel.clone())
                    .authorize(read_check(owner))
                    .await;
                if verdict.is_ok_and(|v| v.into_inner().allowed) {
                    return node;
                }
                assert!(
                    started.elapsed() < START_BOUND,
                    "authcell serve (cell {cell}) did not serve within {START_BOUND:?}\n{}",
                    node.log_tail()
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        panic!("authcell serve (cell {cell}): no free port after 5 attempts")
    }
}

pub(crate) fn channel(port: u16, timeout: Duration) -> Channel {
    Endpoint::from_shared(format!("http://127.0.0.1:{port}"))
        .expect("a valid loopback URL")
        .connect_timeout(Duration::from_secs(2))
        .timeout(timeout)
        .connect_lazy()
}

pub(crate) fn with_key<T>(message: T, key: &str) -> Request<T> {
    let mut request = Request::new(message);
    if let Ok(value) = key.parse() {
        request.metadata_mut().insert("authorization", value);
    }
    request
}

pub(crate) fn read_check(credential: &str) -> pb::AuthorizeRequest {
    check(credential, false)
}

pub(crate) fn check(credential: &str, write: bool) -> pb::AuthorizeRequest {
    pb::AuthorizeRequest {
        credential: credential.into(),
        action: if write {
            pb::Action::CacheWrite
        } else {
            pb::Action::CacheRead
        } as i32,
        cache: CACHE.into(),
        key: b"k".to_vec(),
        peer_address: "127.0.0.1".into(),
        ..Default::default()
    }
}

pub(crate) fn statement(role: pm::CacheRole) -> pm::Permissions {
    use pm::permissions_type as pt;
    pm::Permissions {
        kind: Some(pm::permissions::Kind::Explicit(pm::ExplicitPermissions {
            permissions: vec![pm::PermissionsType {
                kind: Some(pt::Kind::CachePermissions(pt::CachePermissions {
                    role: role as i32,
                    cache: Some(pt::cache_permissions::Cache::CacheSelector(
                        pt::CacheSelector {
                            kind: Some(pt::cache_selector::Kind::CacheName(CACHE.into())),
                        },
                    )),
                    cache_item: Some(pt::cache_permissions::CacheItem::AllItems(pt::All {})),
                })),
            }],
        })),
    }
}

pub(crate) fn role_set(perms: &[pr::CacheApiPermissions]) -> pr::PermissionSet {
    pr::PermissionSet {
        kind: Some(pr::permission_set::Kind::Explicit(
            pr::ExplicitPermissions {
                rules: vec![pr::Rule {
                    kind: Some(pr::rule::Kind::CacheRule(pr::rule::CacheRule {
                        permissions: perms.iter().map(|p| *p as i32).collect(),
                        cache: Some(pr::rule::cache_rule::Cache::CacheSelector(
                            pr::CacheSelector {
                                kind: Some(pr::cache_selector::Kind::CacheName(CACHE.into())),
                            },
                        )),
                        cache_item: Some(pr::rule::cache_rule::CacheItem::AllItems(pr::All {})),
                    })),
                }],
            },
        )),
        conditions: vec![],
    }
}
