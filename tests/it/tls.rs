//! TLS and mTLS over real connections: server TLS for every service, client certificates
//! required by the Verifier service, certificates reloaded without a restart.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use authcell::dataplane;
use authcell::keyring::KeyRing;
use authcell::node::{Node, NodeOptions};
use authcell::proto::authcell::v1 as pb;
use authcell::server;
use authcell::server::tls::{self, ServerTls, TlsFiles};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use tokio::net::TcpListener;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};
use tonic::Code;

use crate::support::*;

fn ca(name: &str) -> CertifiedIssuer<'static, KeyPair> {
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    CertifiedIssuer::self_signed(params, KeyPair::generate().expect("key")).expect("ca")
}

/// A certificate and key (PEM) signed by `issuer`, for a server or a client.
fn leaf(issuer: &CertifiedIssuer<'static, KeyPair>, server: bool) -> (String, String) {
    let names = if server {
        vec!["localhost".to_owned(), "127.0.0.1".to_owned()]
    } else {
        vec!["cache-node-1".to_owned()]
    };
    let mut params = CertificateParams::new(names).expect("params");
    params.extended_key_usages = vec![if server {
        ExtendedKeyUsagePurpose::ServerAuth
    } else {
        ExtendedKeyUsagePurpose::ClientAuth
    }];
    let key = KeyPair::generate().expect("key");
    let cert = params.signed_by(&key, issuer).expect("sign");
    (cert.pem(), key.serialize_pem())
}

struct Dir(PathBuf);

impl Dir {
    fn new() -> Self {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "authcell-tls-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).expect("dir");
        Dir(dir)
    }
    fn write(&self, name: &str, content: &str) -> String {
        let path = self.0.join(name);
        let tmp = self.0.join(format!("{name}.tmp"));
        std::fs::write(&tmp, content).expect("write");
        std::fs::rename(&tmp, &path).expect("rename");
        path.to_string_lossy().into_owned()
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

struct TlsServer {
    port: u16,
    owner: String,
    _dir: Dir,
    _served: Served,
}

async fn start(dir: Dir, files: TlsFiles) -> TlsServer {
    start_with(dir, files, tls::DEFAULT_HANDSHAKE_TIMEOUT).await
}

async fn start_with(dir: Dir, files: TlsFiles, handshake_timeout: Duration) -> TlsServer {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let options = NodeOptions {
        cell: "t".into(),
        endpoint: format!("localhost:{port}"),
        vend_rate_per_second: 0,
        vend_burst: 0,
        ..Default::default()
    };
    let node = Node::embedded(
        KeyRing::ephemeral().expect("ring"),
        Arc::new(authcell::clock::SystemClock),
        &options,
    );
    let (owner, _) = node
        .authority()
        .bootstrap(ACCOUNT, false)
        .await
        .expect("bootstrap");
    let server_tls = ServerTls::load(&files)
        .expect("tls")
        .with_handshake_timeout(handshake_timeout);
    tls::spawn_reloader(files, server_tls.clone(), Duration::from_millis(20));
    let served = Served::start(
        node,
        listener,
        server::Serving {
            tls: Some(server_tls),
            ..Default::default()
        },
    )
    .await;
    TlsServer {
        port,
        owner,
        _dir: dir,
        _served: served,
    }
}

async fn connect(
    port: u16,
    trust: &str,
    identity: Option<&(String, String)>,
) -> Result<Channel, tonic::transport::Error> {
    let mut config = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(trust))
        .domain_name("localhost");
    if let Some((cert, key)) = identity {
        config = config.identity(Identity::from_pem(cert, key));
    }
    Channel::from_shared(format!("https://127.0.0.1:{port}"))
        .expect("url")
        .tls_config(config)?
        .connect()
        .await
}

async fn authorize(channel: Channel, key: &str) -> Result<pb::AuthorizeResponse, tonic::Status> {
    pb::verifier_client::VerifierClient::new(channel)
        .authorize(cache_check(key, pb::Action::CacheRead, "c", b"k"))
        .await
        .map(|r| r.into_inner())
}

async fn list_roles(channel: Channel, key: &str) -> Result<usize, tonic::Status> {
    pb::admin_client::AdminClient::new(channel)
        .list_roles(with_key(pb::ListRolesRequest {}, key))
        .await
        .map(|r| r.into_inner().roles.len())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mtls_guards_the_verifier_while_other_services_take_server_tls() {
    let server_ca = ca("server ca");
    let client_ca = ca("client ca");
    let stranger_ca = ca("stranger ca");
    let (cert, key) = leaf(&server_ca, true);
    let client = leaf(&client_ca, false);
    let stranger = leaf(&stranger_ca, false);
    let dir = Dir::new();
    let files = TlsFiles {
        cert: dir.write("cert.pem", &cert),
        key: dir.write("key.pem", &key),
        client_ca: Some(dir.write("client-ca.pem", &client_ca.pem())),
    };
    let server = start(dir, files).await;
    let trust = server_ca.pem();

    // Server TLS only: management works, the verifier asks for a client certificate.
    let plain_tls = connect(server.port, &trust, None)
        .await
        .expect("tls connect");
    assert_eq!(
        list_roles(plain_tls.clone(), &server.owner)
            .await
            .expect("roles"),
        3
    );
    let status = authorize(plain_tls, &server.owner)
        .await
        .expect_err("no client cert");
    assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
    assert!(
        status.message().contains("client certificate"),
        "{status:?}"
    );

    // A data-plane node with a certificate from the client CA may ask.
    let node = connect(server.port, &trust, Some(&client))
        .await
        .expect("mtls connect");
    let verdict = authorize(node, &server.owner)
        .await
        .expect("authorize over mTLS");
    assert!(verdict.allowed, "{verdict:?}");

    // A certificate from another CA does not get through the handshake.
    let refused = match connect(server.port, &trust, Some(&stranger)).await {
        Err(_) => true,
        Ok(channel) => authorize(channel, &server.owner).await.is_err(),
    };
    assert!(refused, "an untrusted client certificate is refused");

    // Plaintext against the TLS port fails.
    let plaintext = Channel::from_shared(format!("http://127.0.0.1:{}", server.port))
        .expect("url")
        .connect()
        .await;
    let failed = match plaintext {
        Err(_) => true,
        Ok(channel) => list_roles(channel, &server.owner).await.is_err(),
    };
    assert!(failed, "plaintext is not served on a TLS port");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_handshakes_are_cut_off_at_the_deadline_and_hold_up_nobody() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let server_ca = ca("handshake ca");
    let (cert, key) = leaf(&server_ca, true);
    let dir = Dir::new();
    let files = TlsFiles {
        cert: dir.write("cert.pem", &cert),
        key: dir.write("key.pem", &key),
        client_ca: None,
    };
    let timeout = Duration::from_secs(2);
    let server = start_with(dir, files, timeout).await;

    // Clients that never finish their handshake: half send nothing, half send the start of a
    // ClientHello record that announces 512 bytes and never deliver the rest.
    let opened = Instant::now();
    let mut stalled = Vec::new();
    for i in 0..8 {
        let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", server.port))
            .await
            .expect("connect");
        if i % 2 == 1 {
            stream
                .write_all(&[0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc])
                .await
                .expect("write");
        }
        stalled.push(stream);
    }

    // Meanwhile a real client gets through the handshake and is served.
    let channel = connect(server.port, &server_ca.pem(), None)
        .await
        .expect("a TLS client is served while other handshakes stall");
    assert_eq!(list_roles(channel, &server.owner).await.expect("roles"), 3);
    let served = opened.elapsed();
    assert!(
        served < timeout,
        "precondition: the real client was served before the stalled handshakes timed out ({served:?})"
    );

    // Every stalled connection is closed by the server at its deadline, not before.
    for (i, mut stream) in stalled.into_iter().enumerate() {
        let mut buf = [0u8; 64];
        let read = tokio::time::timeout(timeout + Duration::from_secs(5), stream.read(&mut buf))
            .await
            .unwrap_or_else(|_| {
                panic!("stalled connection {i} still open long after the deadline")
            });
        match read {
            Ok(0) | Err(_) => {}
            Ok(n) => panic!("stalled connection {i}: {n} unexpected bytes from the server"),
        }
        let closed = opened.elapsed();
        assert!(
            closed >= timeout - Duration::from_millis(20),
            "stalled connection {i} closed after {closed:?}, before the {timeout:?} deadline"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tls_port_closes_when_the_server_stops() {
    let server_ca = ca("stop ca");
    let (cert, key) = leaf(&server_ca, true);
    let dir = Dir::new();
    let files = TlsFiles {
        cert: dir.write("cert.pem", &cert),
        key: dir.write("key.pem", &key),
        client_ca: None,
    };
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let node = Node::embedded(
        KeyRing::ephemeral().expect("ring"),
        Arc::new(authcell::clock::SystemClock),
        &NodeOptions {
            cell: "t".into(),
            endpoint: format!("localhost:{port}"),
            vend_rate_per_second: 0,
            vend_burst: 0,
            ..Default::default()
        },
    );
    let served = Served::start(
        node,
        listener,
        server::Serving {
            tls: Some(ServerTls::load(&files).expect("tls")),
            ..Default::default()
        },
    )
    .await;
    connect(port, &server_ca.pem(), None)
        .await
        .expect("precondition: served over TLS");
    tokio::time::timeout(Duration::from_secs(10), served.stop())
        .await
        .expect("the server stops");
    tokio::time::sleep(Duration::from_millis(100)).await;
    // Not even the TCP handshake: a port that is still bound would complete it, and its
    // clients would hang until their own deadline.
    let after = tokio::net::TcpStream::connect(("127.0.0.1", port)).await;
    assert!(
        after.is_err(),
        "the port still accepts connections after the server stopped"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_linked_in_verifier_fetches_the_jwk_set_over_https() {
    let server_ca = ca("jwks ca");
    let other_ca = ca("other ca");
    let (cert, key) = leaf(&server_ca, true);
    let dir = Dir::new();
    let files = TlsFiles {
        cert: dir.write("cert.pem", &cert),
        key: dir.write("key.pem", &key),
        client_ca: None,
    };
    let server = start(dir, files).await;
    let endpoint = format!("https://localhost:{}", server.port);
    let source = |ca: &CertifiedIssuer<'static, KeyPair>| dataplane::JwksSource {
        tls_ca_pem: Some(ca.pem()),
        ..dataplane::JwksSource::new(endpoint.as_str())
    };
    let ring = dataplane::fetch_jwks(source(&server_ca))
        .await
        .expect("the JWK set over https");
    assert!(!ring.kids().is_empty());
    let refused = dataplane::fetch_jwks(source(&other_ca))
        .await
        .expect_err("a server the CA does not vouch for");
    assert!(refused.contains("cannot connect"), "{refused}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificates_reload_without_a_restart() {
    let old_ca = ca("old ca");
    let new_ca = ca("new ca");
    let (cert, key) = leaf(&old_ca, true);
    let dir = Dir::new();
    let files = TlsFiles {
        cert: dir.write("cert.pem", &cert),
        key: dir.write("key.pem", &key),
        client_ca: None,
    };
    let cert_path = files.cert.clone();
    let key_path = files.key.clone();
    let server = start(dir, files).await;
    let before = connect(server.port, &old_ca.pem(), None)
        .await
        .expect("old cert served");
    assert_eq!(
        list_roles(before.clone(), &server.owner)
            .await
            .expect("roles"),
        3
    );
    assert!(
        connect(server.port, &new_ca.pem(), None).await.is_err(),
        "precondition: the new CA does not trust the current certificate"
    );

    let (cert, key) = leaf(&new_ca, true);
    // Key first, then certificate: in between, the pair does not match and is ignored.
    std::fs::write(&key_path, key).expect("key");
    std::fs::write(&cert_path, cert).expect("cert");
    let deadline = Instant::now() + Duration::from_secs(10);
    let after = loop {
        if let Ok(channel) = connect(server.port, &new_ca.pem(), None).await {
            break channel;
        }
        assert!(
            Instant::now() < deadline,
            "the new certificate was never served"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(list_roles(after, &server.owner).await.expect("roles"), 3);
    assert!(
        connect(server.port, &old_ca.pem(), None).await.is_err(),
        "new connections get the new certificate"
    );
    // A connection made before the reload keeps working.
    assert_eq!(list_roles(before, &server.owner).await.expect("roles"), 3);
}

#[test]
fn unreadable_or_mismatched_tls_files_are_one_clear_error_at_start() {
    let dir = Dir::new();
    let server_ca = ca("ca");
    let (cert, _) = leaf(&server_ca, true);
    let (_, other_key) = leaf(&server_ca, true);
    let bin = env!("CARGO_BIN_EXE_authcell");
    let run = |args: &[&str]| {
        let out = std::process::Command::new(bin)
            .args(["serve", "--listen", "127.0.0.1:0"])
            .args(args)
            .output()
            .expect("run");
        assert!(!out.status.success(), "{args:?} should fail");
        assert!(out.stdout.is_empty(), "nothing on stdout before failing");
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let missing = run(&[
        "--tls-cert",
        "/nonexistent/cert.pem",
        "--tls-key",
        "/nonexistent/key.pem",
    ]);
    assert!(
        missing.contains("--tls-cert /nonexistent/cert.pem: cannot read"),
        "{missing}"
    );
    let cert_path = dir.write("cert.pem", &cert);
    let key_path = dir.write("key.pem", &other_key);
    let mismatch = run(&["--tls-cert", &cert_path, "--tls-key", &key_path]);
    assert!(mismatch.contains("--tls-key"), "{mismatch}");
    let garbage = dir.write("garbage.pem", "not a certificate");
    let bad = run(&["--tls-cert", &garbage, "--tls-key", &key_path]);
    assert!(bad.contains("--tls-cert"), "{bad}");
    let usage = std::process::Command::new(bin)
        .args(["serve", "--tls-cert", &cert_path])
        .output()
        .expect("run");
    assert!(!usage.status.success(), "--tls-cert needs --tls-key");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_serves_tls_when_given_certificates() {
    use std::io::{BufRead, BufReader};
    let server_ca = ca("binary ca");
    let (cert, key) = leaf(&server_ca, true);
    let dir = Dir::new();
    let cert_path = dir.write("cert.pem", &cert);
    let key_path = dir.write("key.pem", &key);
    let port = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").expect("probe");
        probe.local_addr().expect("addr").port()
    };
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_authcell"))
        .args([
            "serve",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--drain-seconds",
            "0",
        ])
        .args(["--endpoint", &format!("localhost:{port}")])
        .args(["--tls-cert", &cert_path, "--tls-key", &key_path])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("serve");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let _endpoint = lines.next().expect("endpoint line").expect("utf-8");
    let key_line = lines.next().expect("key line").expect("utf-8");
    let owner = key_line.trim_start_matches("AUTHCELL_API_KEY=").to_owned();
    let channel = connect(port, &server_ca.pem(), None)
        .await
        .expect("TLS connect");
    assert_eq!(
        list_roles(channel, &owner).await.expect("roles over TLS"),
        3
    );
    let plaintext = Channel::from_shared(format!("http://127.0.0.1:{port}"))
        .expect("url")
        .connect()
        .await;
    let refused = match plaintext {
        Err(_) => true,
        Ok(channel) => list_roles(channel, &owner).await.is_err(),
    };
    assert!(
        refused,
        "the binary does not answer plaintext when TLS is configured"
    );
    let _ = child.kill();
    let _ = child.wait();
}
