//! The `authcell` binary itself: embedded start-up output, serving, graceful shutdown, keygen.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use authcell::proto::authcell::v1 as pb;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::HealthCheckRequest;

const BIN: &str = env!("CARGO_BIN_EXE_authcell");

#[tokio::test]
async fn embedded_serve_prints_the_two_lines_serves_and_exits_cleanly_on_sigterm() {
    let mut child = Command::new(BIN)
        .args(["serve", "--listen", "127.0.0.1:0", "--drain-seconds", "1"])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start authcell serve");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let endpoint_line = lines.next().expect("first line").expect("utf-8");
    let key_line = lines.next().expect("second line").expect("utf-8");
    let note = lines.next().expect("note line").expect("utf-8");
    let endpoint = endpoint_line
        .strip_prefix("AUTHCELL_ENDPOINT=")
        .expect("AUTHCELL_ENDPOINT= line")
        .to_owned();
    let key = key_line
        .strip_prefix("AUTHCELL_API_KEY=")
        .expect("AUTHCELL_API_KEY= line")
        .to_owned();
    assert!(
        note.starts_with('#') && note.contains("in memory"),
        "{note}"
    );
    assert_eq!(key.split('.').count(), 3, "the key is a JWT");

    let channel = tonic::transport::Channel::from_shared(format!("http://{endpoint}"))
        .expect("url")
        .connect()
        .await
        .expect("connect");
    let health = HealthClient::new(channel.clone())
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .expect("health")
        .into_inner();
    assert_eq!(health.status, ServingStatus::Serving as i32);
    let channel_for_drain = channel.clone();
    let verdict = pb::verifier_client::VerifierClient::new(channel)
        .authorize(pb::AuthorizeRequest {
            credential: key,
            action: pb::Action::CacheWrite as i32,
            cache: "c".into(),
            ..Default::default()
        })
        .await
        .expect("authorize")
        .into_inner();
    assert!(
        verdict.allowed,
        "the printed key is an owner key: {verdict:?}"
    );
    assert_eq!(verdict.account_id, "dev");

    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    // Draining: health says NOT_SERVING first, while calls are still answered.
    let deadline = Instant::now() + Duration::from_secs(1);
    let mut health = HealthClient::new(channel_for_drain.clone());
    loop {
        let status = health
            .check(HealthCheckRequest {
                service: String::new(),
            })
            .await
            .expect("health is still answered while draining")
            .into_inner()
            .status;
        if status == ServingStatus::NotServing as i32 {
            break;
        }
        assert!(Instant::now() < deadline, "health never went NOT_SERVING");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    let exit = loop {
        if let Some(exit) = child.try_wait().expect("wait") {
            break exit;
        }
        assert!(
            Instant::now() < deadline,
            "authcell did not exit after SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(exit.success(), "clean exit after SIGTERM: {exit:?}");
}

#[test]
fn keygen_makes_a_key_the_server_can_sign_with() {
    let out = Command::new(BIN).arg("keygen").output().expect("keygen");
    assert!(out.status.success());
    let pem = String::from_utf8(out.stdout).expect("utf-8");
    assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----"), "{pem}");
    let ring = authcell::keyring::KeyRing::from_pem("test", &pem).expect("loads");
    assert!(!ring.is_ephemeral());

    let mut child = Command::new(BIN)
        .args(["keygen", "--public"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("keygen --public");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(pem.as_bytes())
        .expect("write");
    let out = child.wait_with_output().expect("output");
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("-----BEGIN PUBLIC KEY-----"));
}

#[test]
fn a_bad_signing_key_file_is_one_clear_error() {
    let dir = std::env::temp_dir().join(format!("authcell-badkey-{}", std::process::id()));
    std::fs::write(&dir, "not a key").expect("write");
    let out = Command::new(BIN)
        .args(["serve", "--listen", "127.0.0.1:0", "--signing-key-file"])
        .arg(&dir)
        .output()
        .expect("run");
    let _ = std::fs::remove_file(&dir);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("not an Ed25519 private key"), "{stderr}");
    assert!(
        out.stdout.is_empty(),
        "nothing printed on stdout before failing"
    );
}

/// `--cors-allowed-origin` takes exact origins only; a wildcard or a URL with a path is one
/// clear error naming the rule, before anything is served.
#[test]
fn a_wildcard_or_malformed_cors_origin_is_refused() {
    for bad in ["*", "https://app.example.com/path"] {
        let out = Command::new(BIN)
            .args([
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--cors-allowed-origin",
                bad,
            ])
            .output()
            .expect("run");
        assert!(!out.status.success(), "{bad} accepted");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("scheme://host[:port]"), "{stderr}");
        assert!(out.stdout.is_empty());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bootstrap_creates_the_first_owner_key_in_redis_once() {
    let redis =
        crate::support::redis::RedisServer::start(crate::support::redis::RedisOptions::default());
    let dir = std::env::temp_dir().join(format!("authcell-bootstrap-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let key_file = dir.join("signing.pem");
    let pem = Command::new(BIN)
        .arg("keygen")
        .output()
        .expect("keygen")
        .stdout;
    std::fs::write(&key_file, pem).expect("write key");
    let bootstrap = |extra: &[&str]| {
        Command::new(BIN)
            .args(["bootstrap", "--account", "acme"])
            .args(extra)
            .env("AUTHCELL_REDIS_URL", redis.url())
            .env("AUTHCELL_SIGNING_KEY_FILE", &key_file)
            .output()
            .expect("bootstrap")
    };
    let first = bootstrap(&[]);
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    let stdout = String::from_utf8(first.stdout).expect("utf-8");
    let owner = stdout
        .trim()
        .strip_prefix("AUTHCELL_API_KEY=")
        .expect("the key, once, on stdout")
        .to_owned();

    let again = bootstrap(&[]);
    assert!(!again.status.success(), "a second bootstrap is refused");
    let stderr = String::from_utf8_lossy(&again.stderr);
    assert!(stderr.contains("already has 1 live key"), "{stderr}");
    assert!(again.stdout.is_empty());
    assert!(
        bootstrap(&["--force"]).status.success(),
        "--force adds another owner key"
    );

    // The platform account is not a tenant: only `--platform` creates it.
    let run = |args: &[&str]| {
        Command::new(BIN)
            .arg("bootstrap")
            .args(args)
            .env("AUTHCELL_REDIS_URL", redis.url())
            .env("AUTHCELL_SIGNING_KEY_FILE", &key_file)
            .output()
            .expect("bootstrap")
    };
    let tenant = run(&["--account", "system"]);
    assert!(!tenant.status.success(), "system is not a tenant");
    assert!(
        String::from_utf8_lossy(&tenant.stderr).contains("reserved"),
        "{}",
        String::from_utf8_lossy(&tenant.stderr)
    );
    assert!(!run(&["--platform", "--account", "acme"]).status.success());
    let platform = run(&["--platform", "--account", "system"]);
    assert!(
        platform.status.success(),
        "{}",
        String::from_utf8_lossy(&platform.stderr)
    );
    assert!(String::from_utf8_lossy(&platform.stdout).starts_with("AUTHCELL_API_KEY="));

    let no_store = Command::new(BIN)
        .args(["bootstrap", "--account", "acme"])
        .env_remove("AUTHCELL_REDIS_URL")
        .output()
        .expect("bootstrap");
    assert!(!no_store.status.success());
    assert!(String::from_utf8_lossy(&no_store.stderr).contains("--redis-url"));

    // A Redis-backed server trusts the bootstrap key.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("probe")
        .local_addr()
        .expect("addr")
        .port();
    let mut serve = Command::new(BIN)
        .args([
            "serve",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--drain-seconds",
            "0",
        ])
        .env("AUTHCELL_REDIS_URL", redis.url())
        .env("AUTHCELL_SIGNING_KEY_FILE", &key_file)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("serve");
    let deadline = Instant::now() + Duration::from_secs(20);
    let verdict = loop {
        let attempt = async {
            let channel =
                tonic::transport::Channel::from_shared(format!("http://127.0.0.1:{port}"))
                    .ok()?
                    .connect()
                    .await
                    .ok()?;
            pb::verifier_client::VerifierClient::new(channel)
                .authorize(pb::AuthorizeRequest {
                    credential: owner.clone(),
                    action: pb::Action::CacheRead as i32,
                    cache: "c".into(),
                    ..Default::default()
                })
                .await
                .ok()
                .map(|r| r.into_inner())
        };
        match attempt.await {
            Some(v) if v.reason != pb::Reason::Unavailable as i32 => break v,
            _ => {
                assert!(
                    Instant::now() < deadline,
                    "the Redis-backed server never answered"
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    };
    let _ = serve.kill();
    let _ = serve.wait();
    let _ = std::fs::remove_dir_all(&dir);
    assert!(verdict.allowed, "{verdict:?}");
    assert_eq!(verdict.account_id, "acme");
}

/// CPU time (user and system) process `pid` has used so far, from `/proc/<pid>/stat`.
#[cfg(target_os = "linux")]
fn cpu_time(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("read stat");
    // After the command name (in parentheses, which may hold spaces): state is field 3 of
    // stat(5), utime and stime fields 14 and 15.
    let rest = &stat[stat.rfind(')').expect("comm") + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 =
        fields[11].parse::<u64>().expect("utime") + fields[12].parse::<u64>().expect("stime");
    let per_second = Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse::<u64>().ok())
        .unwrap_or(100);
    Duration::from_millis(ticks * 1000 / per_second)
}

/// Whether a plain HTTP GET of /metrics on `addr` answers 200.
#[cfg(target_os = "linux")]
fn scrape(addr: std::net::SocketAddr) -> bool {
    use std::io::Read;
    let Ok(mut stream) = std::net::TcpStream::connect(addr) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    if stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut response = String::new();
    let _ = stream.read_to_string(&mut response);
    response.starts_with("HTTP/1.1 200")
}

/// Whether the gRPC health check on `addr` answers.
#[cfg(target_os = "linux")]
async fn health_answers(addr: std::net::SocketAddr) -> bool {
    let Ok(channel) = tonic::transport::Channel::from_shared(format!("http://{addr}"))
        .expect("url")
        .connect_timeout(Duration::from_secs(2))
        .timeout(Duration::from_secs(2))
        .connect()
        .await
    else {
        return false;
    };
    HealthClient::new(channel)
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .is_ok()
}

#[cfg(target_os = "linux")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn out_of_descriptors_the_accept_loops_back_off_instead_of_spinning() {
    use std::net::SocketAddr;
    for listener in ["metrics", "grpc"] {
        let metrics_port = {
            let probe = std::net::TcpListener::bind("127.0.0.1:0").expect("probe");
            probe.local_addr().expect("addr").port()
        };
        let metrics_addr: SocketAddr = ([127, 0, 0, 1], metrics_port).into();
        // A node allowed 32 open files.
        let mut child = Command::new("sh")
            .args(["-c", "ulimit -n 32 && exec \"$0\" \"$@\"", BIN, "serve"])
            .args(["--listen", "127.0.0.1:0", "--drain-seconds", "0"])
            .args(["--metrics-listen", &metrics_addr.to_string()])
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start authcell serve");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        let endpoint = lines.next().expect("first line").expect("utf-8");
        let grpc_addr: SocketAddr = endpoint
            .strip_prefix("AUTHCELL_ENDPOINT=")
            .expect("AUTHCELL_ENDPOINT= line")
            .parse()
            .expect("an address");
        // Whether the listener serves within 5 s (the longest backoff is 1 s).
        let serves = || async {
            let deadline = Instant::now() + Duration::from_secs(5);
            loop {
                let served = match listener {
                    "metrics" => scrape(metrics_addr),
                    _ => health_answers(grpc_addr).await,
                };
                if served || Instant::now() >= deadline {
                    return served;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        };
        assert!(serves().await, "precondition: {listener} serves");

        // More connections than the node has descriptors: it accepts until it runs out, the
        // rest wait in the backlog, and every accept fails (EMFILE) while they do.
        let target = if listener == "metrics" {
            metrics_addr
        } else {
            grpc_addr
        };
        let held: Vec<std::net::TcpStream> = (0..64)
            .map(|_| std::net::TcpStream::connect(target).expect("connect"))
            .collect();
        tokio::time::sleep(Duration::from_millis(300)).await;
        let before = cpu_time(child.id());
        tokio::time::sleep(Duration::from_secs(1)).await;
        let used = cpu_time(child.id()) - before;

        // Descriptors free again: the node serves again.
        drop(held);
        let recovered = serves().await;
        let _ = child.kill();
        let _ = child.wait();
        assert!(
            used < Duration::from_millis(250),
            "{listener}: the node burned {used:?} of CPU in 1 s while out of descriptors"
        );
        assert!(
            recovered,
            "{listener}: not served again once descriptors were free"
        );
    }
}
