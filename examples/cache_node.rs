//! A cache node the official Momento SDKs can talk to, with authcell's verifier linked in
//! (see [`authcell::cache_node`] for what it serves and how each call is checked).
//!
//! Quick start, no Redis: the node runs an embedded authcell beside itself and checks against
//! its live view, so a revocation applies on the very next call. It prints the owner key.
//!
//! ```sh
//! cargo run --example cache_node -- --embedded
//! #   AUTHCELL_ENDPOINT=127.0.0.1:8080   (mint tokens here)
//! #   AUTHCELL_API_KEY=...
//! #   cache node: 127.0.0.1:9090         (point the SDKs' cache and topic clients here)
//! ```
//!
//! Like a real node, beside a Redis-backed authcell: authcell's public keys from
//! `authcell.v1.Keys/GetJwks` (refreshed every 30 s, so signing key rotation needs no restart)
//! and the revocation state tailed from the cell's Redis replica:
//!
//! ```sh
//! authcell serve --redis-url redis://127.0.0.1:6379/ --signing-key-file key.pem &
//! cargo run --example cache_node -- --authcell http://127.0.0.1:8080 \
//!     --redis redis://127.0.0.1:6379/ --listen 127.0.0.1:9090
//! ```

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;

use authcell::cache_node::CacheNode;
use authcell::clock::SystemClock;
use authcell::dataplane;
use authcell::verifier::Verifier;

#[derive(Parser)]
struct Args {
    /// Where the node serves the cache and pub/sub services.
    #[arg(long, default_value = "127.0.0.1:9090")]
    listen: SocketAddr,
    /// Run an embedded authcell in this process (on --embedded-listen) and check against its
    /// live view: the quick start, no Redis needed.
    #[arg(long, conflicts_with_all = ["authcell", "redis"])]
    embedded: bool,
    /// Where the embedded authcell serves (with --embedded).
    #[arg(long, default_value = "127.0.0.1:8080")]
    embedded_listen: SocketAddr,
    /// An authcell endpoint serving authcell.v1.Keys: https://host:port, or http:// to this
    /// machine (localhost, 127.0.0.0/8, [::1]).
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    authcell: String,
    /// PEM CA certificate(s) to verify an https:// --authcell with (default: the web PKI).
    #[arg(long, value_name = "PEM")]
    authcell_ca: Option<String>,
    /// Fetch the public keys over plain http from a host that is not loopback. Anyone who can
    /// alter that traffic can substitute a key and forge any credential.
    #[arg(long)]
    insecure_jwks_http: bool,
    /// This cell's Redis replica.
    #[arg(long, default_value = "redis://127.0.0.1:6379/")]
    redis: String,
    /// authcell's Redis key prefix.
    #[arg(long, default_value = "authcell:")]
    prefix: String,
}

#[tokio::main]
async fn main() -> Result<(), String> {
    let args = Args::parse();
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .map_err(|e| format!("--listen {}: {e}", args.listen))?;
    let (verifier, sync) = if args.embedded {
        (embedded(&args).await?, None)
    } else {
        let (verifier, sync) = following_redis(&args).await?;
        (verifier, Some(sync))
    };
    println!("cache node: {}", args.listen);
    let node = CacheNode::new(verifier);
    let served = authcell::cache_node::serve(listener, node, async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await
    .map_err(|e| format!("cache node: {e}"));
    if let Some(sync) = sync {
        sync.stop().await;
    }
    served
}

/// Keys from authcell's JWK set, revocations tailed from the cell's replica.
async fn following_redis(
    args: &Args,
) -> Result<(Verifier, authcell::store::redis::sync::SyncHandle), String> {
    // Public keys: fetched once, then kept in step with the endpoint. Refused before
    // connecting if they would travel over plain http off this machine, unless asked for.
    let tls_ca_pem = match &args.authcell_ca {
        Some(path) => Some(
            std::fs::read_to_string(path)
                .map_err(|e| format!("--authcell-ca {path}: cannot read: {e}"))?,
        ),
        None => None,
    };
    let source = dataplane::JwksSource {
        endpoint: args.authcell.clone(),
        tls_ca_pem,
        allow_insecure_http: args.insecure_jwks_http,
    };
    let ring = dataplane::fetch_jwks(source.clone()).await?;
    let (view, sync) = dataplane::revocation_view(&args.redis, &args.prefix).await?;
    let verifier = Verifier::new(ring, view, Arc::new(SystemClock));
    dataplane::spawn_jwks_refresher(source, verifier.keys().clone(), Duration::from_secs(30))?;
    // An empty view must not let revoked credentials through: wait until it is loaded.
    for _ in 0..500 {
        if verifier.is_serving() {
            return Ok((verifier, sync));
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    Err(format!("{}: the revocation view did not load", args.redis))
}

/// An embedded authcell in this process, whose verifier the cache node shares.
#[cfg(feature = "server")]
async fn embedded(args: &Args) -> Result<Verifier, String> {
    use authcell::keyring::KeyRing;
    use authcell::node::{Node, NodeOptions};
    let listener = tokio::net::TcpListener::bind(args.embedded_listen)
        .await
        .map_err(|e| format!("--embedded-listen {}: {e}", args.embedded_listen))?;
    let options = NodeOptions {
        endpoint: args.embedded_listen.to_string(),
        ..Default::default()
    };
    let ring = KeyRing::ephemeral().map_err(|e| format!("signing key: {e}"))?;
    let node = Node::embedded(ring, Arc::new(SystemClock), &options);
    let (owner, _) = node
        .authority()
        .bootstrap("dev", false)
        .await
        .map_err(|e| format!("dev account: {e}"))?;
    println!("AUTHCELL_ENDPOINT={}", args.embedded_listen);
    println!("AUTHCELL_API_KEY={owner}");
    let verifier = node.authority().verifier().clone();
    tokio::spawn(async move {
        let served = authcell::server::run(
            listener,
            &node,
            authcell::server::Serving::default(),
            std::future::pending(),
        )
        .await;
        if let Err(e) = served {
            eprintln!("embedded authcell: {e}");
        }
    });
    Ok(verifier)
}

#[cfg(not(feature = "server"))]
async fn embedded(_: &Args) -> Result<Verifier, String> {
    Err("--embedded needs authcell's server feature (cargo run --example cache_node builds with it)".into())
}
