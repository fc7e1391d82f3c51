//! A cache node that links authcell's verifier in, instead of calling Authorize per request.
//!
//! It needs two things, both read-only: authcell's public keys (the JWK set from
//! `authcell.v1.Keys/GetJwks`, refreshed periodically, so key rotation needs no restart) and
//! the cell's Redis replica (the live revocation state, tailed in the background). Every check
//! then runs in process: a cached credential costs a cache lookup and a permission evaluation,
//! and a revocation takes effect on the next check after it reaches the replica.
//!
//! Try it against a Redis-backed authcell:
//!
//! ```sh
//! authcell keygen > key.pem
//! authcell bootstrap --account acme --redis-url redis://127.0.0.1:6379/ --signing-key-file key.pem
//! authcell serve --redis-url redis://127.0.0.1:6379/ --signing-key-file key.pem &
//! cargo run --example cache_node -- --authcell http://127.0.0.1:8080 \
//!     --redis redis://127.0.0.1:6379/ --credential "$AUTHCELL_API_KEY" --cache sessions --key user:42
//! ```

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;

use authcell::clock::SystemClock;
use authcell::dataplane;
use authcell::policy::{Action, Resource};
use authcell::verifier::Verifier;

#[derive(Parser)]
struct Args {
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
    /// The credential a client presented.
    #[arg(long)]
    credential: String,
    #[arg(long, default_value = "sessions")]
    cache: String,
    #[arg(long, default_value = "user:42")]
    key: String,
    /// The client's address, for ip_filter conditions.
    #[arg(long)]
    peer: Option<IpAddr>,
}

#[tokio::main]
async fn main() -> Result<(), String> {
    let args = Args::parse();

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
    // Revocations: loaded from the replica, then tailed from its event stream.
    let (view, sync) = dataplane::revocation_view(&args.redis, &args.prefix).await?;
    let verifier = Verifier::new(ring, view, Arc::new(SystemClock));
    dataplane::spawn_jwks_refresher(source, verifier.keys().clone(), Duration::from_secs(30))?;
    // An empty view must not let revoked credentials through: wait until it is loaded.
    for _ in 0..500 {
        if verifier.is_serving() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    if !verifier.is_serving() {
        return Err(format!("{}: the revocation view did not load", args.redis));
    }

    // What a request handler does, per request:
    let resource = Resource {
        cache: Some(&args.cache),
        key: Some(args.key.as_bytes()),
        ..Resource::default()
    };
    for action in [
        Action::CacheRead,
        Action::CacheWrite,
        Action::CacheReadWrite,
    ] {
        let decision = verifier.check(&args.credential, action, &resource, args.peer);
        match decision.outcome {
            Ok(()) => println!("{action:?} on {}/{}: allowed", args.cache, args.key),
            Err((reason, message)) => {
                println!(
                    "{action:?} on {}/{}: denied ({reason:?}: {message})",
                    args.cache, args.key
                )
            }
        }
    }
    println!("{:?}", verifier.stats().snapshot());
    sync.stop().await;
    Ok(())
}
