//! Prometheus metrics, scraped over HTTP from a real server.

use std::io::{Read, Write};
use std::sync::Arc;

use authcell::keyring::KeyRing;
use authcell::node::{Node, NodeOptions};
use authcell::proto::authcell::v1 as pb;
use authcell::server;
use tokio::net::TcpListener;

use crate::support::statements::read_cache;
use crate::support::*;

/// Reads one metric sample's value from the exposition text.
fn sample(text: &str, name_and_labels: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(name_and_labels) && l[name_and_labels.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

fn scrape(addr: std::net::SocketAddr, path: &str) -> (String, String) {
    let mut stream = std::net::TcpStream::connect(addr).expect("connect");
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .expect("write");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("read");
    let (head, body) = response.split_once("\r\n\r\n").expect("http response");
    (head.to_owned(), body.to_owned())
}

/// An embedded node with `options` (its endpoint set to where it listens), serving on
/// loopback; its address, an owner key of account `acme`, and its metrics.
async fn start(
    options: NodeOptions,
) -> (
    std::net::SocketAddr,
    String,
    Arc<authcell::metrics::Metrics>,
    Served,
) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let options = NodeOptions {
        endpoint: addr.to_string(),
        ..options
    };
    let node = Node::embedded(
        KeyRing::ephemeral().expect("ring"),
        Arc::new(authcell::clock::SystemClock),
        &options,
    );
    let (owner, _) = node
        .authority()
        .bootstrap("acme", false)
        .await
        .expect("bootstrap");
    let metrics = node.metrics().clone();
    let served = Served::start(node, listener, server::Serving::default()).await;
    (addr, owner, metrics, served)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_decisions_and_issuance_are_counted() {
    let (addr, owner, metrics, _served) = start(NodeOptions {
        cell: "m".into(),
        vend_rate_per_second: 1,
        vend_burst: 2,
        ..Default::default()
    })
    .await;
    let metrics_listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let metrics_addr = metrics_listener.local_addr().expect("addr");
    tokio::spawn(server::serve_metrics(
        metrics_listener,
        metrics.clone(),
        std::future::pending(),
    ));

    let channel = tonic::transport::Channel::from_shared(format!("http://{addr}"))
        .expect("url")
        .connect()
        .await
        .expect("connect");
    let mut verifier = pb::verifier_client::VerifierClient::new(channel.clone());
    for _ in 0..3 {
        verifier
            .authorize(cache_check(&owner, pb::Action::CacheRead, "c", b"k"))
            .await
            .expect("authorize");
    }
    verifier
        .authorize(cache_check("not-a-jwt", pb::Action::CacheRead, "c", b"k"))
        .await
        .expect("authorize");
    let status = verifier
        .authorize(pb::AuthorizeRequest::default())
        .await
        .expect_err("no action");
    assert_eq!(status.code(), tonic::Code::InvalidArgument);
    let mut tokens = authcell::proto::token::token_client::TokenClient::new(channel.clone());
    let mut limited = 0;
    for _ in 0..4 {
        let result = tokens
            .generate_disposable_token(authcell::proto::token::GenerateDisposableTokenRequest {
                expires: Some(
                    authcell::proto::token::generate_disposable_token_request::Expires {
                        valid_for_seconds: 60,
                    },
                ),
                auth_token: owner.clone(),
                permissions: Some(explicit(vec![read_cache("c")])),
                token_id: String::new(),
            })
            .await;
        if result.is_err() {
            limited += 1;
        }
    }
    assert!(limited >= 1, "precondition: the rate limit refused some");

    let (head, text) = scrape(metrics_addr, "/metrics");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(head.contains("application/openmetrics-text"), "{head}");
    let authorize_ok = r#"authcell_grpc_server_handled_total{grpc_method="authcell.v1.Verifier/Authorize",grpc_code="OK"}"#;
    assert_eq!(sample(&text, authorize_ok), Some(4.0), "{text}");
    let authorize_invalid = r#"authcell_grpc_server_handled_total{grpc_method="authcell.v1.Verifier/Authorize",grpc_code="INVALID_ARGUMENT"}"#;
    assert_eq!(sample(&text, authorize_invalid), Some(1.0), "{text}");
    let vend_exhausted = r#"authcell_grpc_server_handled_total{grpc_method="token.Token/GenerateDisposableToken",grpc_code="RESOURCE_EXHAUSTED"}"#;
    assert_eq!(
        sample(&text, vend_exhausted),
        Some(f64::from(limited)),
        "{text}"
    );
    assert!(
        text.contains(r#"authcell_grpc_server_handling_seconds_bucket{le="#)
            || text.contains(r#"authcell_grpc_server_handling_seconds_bucket{grpc_method="authcell.v1.Verifier/Authorize",le="#),
        "{text}"
    );
    assert!(
        sample(
            &text,
            r#"authcell_authorize_decisions_total{decision="allowed"}"#
        )
        .is_some_and(|v| v >= 3.0),
        "{text}"
    );
    assert!(
        sample(
            &text,
            r#"authcell_authorize_decisions_total{decision="unauthenticated"}"#
        )
        .is_some_and(|v| v >= 1.0),
        "{text}"
    );
    assert!(
        sample(&text, r#"authcell_verification_cache_total{result="hit"}"#)
            .is_some_and(|v| v >= 2.0),
        "{text}"
    );
    assert_eq!(
        sample(&text, "authcell_revocation_view_loaded"),
        Some(1.0),
        "{text}"
    );
    // The counters are this node's own (not the process's, where other tests' servers run):
    // they are exact.
    assert_eq!(
        sample(&text, "authcell_rate_limited_total"),
        Some(f64::from(limited)),
        "{text}"
    );
    assert_eq!(
        sample(&text, "authcell_tokens_issued_total"),
        Some(f64::from(4 - limited)),
        "{text}"
    );
    assert_eq!(
        sample(&text, "authcell_keys_issued_total"),
        Some(1.0),
        "the owner key: {text}"
    );
    assert_eq!(
        sample(&text, "authcell_redis_errors_total"),
        Some(0.0),
        "{text}"
    );
    assert!(!text.contains(&owner), "no credential in metrics");

    let (head, _) = scrape(metrics_addr, "/other");
    assert!(head.starts_with("HTTP/1.1 404"), "{head}");
}

/// `authcell_keys_expiring{account, within}`: live keys that expire, or that a rotation
/// revokes, within 1, 7 and 30 days; revoked and never-expiring keys are not counted, nor keys
/// made to live a day or less (they lapse by design).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_expiring_soon_are_counted_per_account_and_window() {
    use authcell::proto::global_admin as ga;
    const DAY: u64 = 86_400;
    let (addr, owner, metrics, served) = start(NodeOptions::default()).await;
    let (other_owner, _) = served
        .authority()
        .bootstrap("globex", false)
        .await
        .expect("bootstrap");
    let channel = tonic::transport::Channel::from_shared(format!("http://{addr}"))
        .expect("url")
        .connect()
        .await
        .expect("connect");
    let admin = ga::global_admin_client::GlobalAdminClient::new(channel.clone());
    let now = authcell::clock::wall_ms() / 1000;
    let create = |caller: String, expires_at: Option<u64>| {
        let mut admin = admin.clone();
        async move {
            admin
                .generate_global_api_key(with_key(
                    key_request("viewer", "gauge", expires_at),
                    &caller,
                ))
                .await
                .expect("create")
                .into_inner()
                .key_info
                .expect("info")
                .key_id
        }
    };
    create(owner.clone(), Some(now + DAY / 2)).await; // made for 12 h: not counted
    create(owner.clone(), Some(now + 3 * DAY)).await;
    create(owner.clone(), Some(now + 20 * DAY)).await;
    create(owner.clone(), Some(now + 40 * DAY)).await;
    create(owner.clone(), None).await;
    let revoked = create(owner.clone(), Some(now + 2 * DAY)).await;
    admin
        .clone()
        .revoke_global_api_key(with_key(
            ga::RevokeGlobalApiKeyRequest { key_id: revoked },
            &owner,
        ))
        .await
        .expect("revoke");
    // A never-expiring key rotated with a 12-hour overlap lapses within a day.
    let rotated = create(owner.clone(), None).await;
    pb::admin_client::AdminClient::new(channel.clone())
        .rotate_api_key(with_key(
            pb::RotateApiKeyRequest {
                key_id: rotated,
                overlap_seconds: DAY / 2,
                ..Default::default()
            },
            &owner,
        ))
        .await
        .expect("rotate");
    create(other_owner.clone(), Some(now + 10 * DAY)).await;

    let metrics_listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let metrics_addr = metrics_listener.local_addr().expect("addr");
    tokio::spawn(server::serve_metrics(
        metrics_listener,
        metrics,
        std::future::pending(),
    ));
    let text = tokio::task::spawn_blocking(move || scrape(metrics_addr, "/metrics").1)
        .await
        .expect("scrape");
    let gauge = |account: &str, within: &str| {
        sample(
            &text,
            &format!(r#"authcell_keys_expiring{{account="{account}",within="{within}"}}"#),
        )
    };
    assert_eq!(gauge("acme", "1d"), Some(1.0), "{text}");
    assert_eq!(gauge("acme", "7d"), Some(2.0), "{text}");
    assert_eq!(gauge("acme", "30d"), Some(3.0), "{text}");
    assert_eq!(gauge("globex", "7d"), Some(0.0), "{text}");
    assert_eq!(gauge("globex", "30d"), Some(1.0), "{text}");
    assert!(
        text.contains("# TYPE authcell_keys_expiring gauge"),
        "{text}"
    );
}
