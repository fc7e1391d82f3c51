//! Wiring: builds the key ring, store, live view, verifier and authority of one node.

use std::sync::Arc;

use std::time::Duration;

use crate::authority::{Authority, Settings};
use crate::clock::{Clock, PrimaryClock};
use crate::config::CommonArgs;
use crate::keyring::{KeyError, KeyFiles, KeyRing};
use crate::store::limiter;
use crate::store::memory::MemoryStore;
use crate::store::redis::limiter as shared_limiter;
use crate::store::redis::link::{Acks, Link, Target};
use crate::store::redis::sync::{self, NodeIdentity, SyncHandle};
use crate::store::redis::{self as redis_store, Keys, RedisConfig, RedisStore};
use crate::verifier::view::View;
use crate::verifier::StalePolicy;
use crate::verifier::{KeyRingHandle, Verifier};

/// The key files the flags describe.
pub fn key_files(common: &CommonArgs) -> KeyFiles {
    KeyFiles {
        signing_key_file: common.signing_key_file.clone(),
        verification_key_files: common.verification_key_file.clone(),
        verification_keys_dir: common.verification_keys_dir.clone(),
    }
}

/// Loads the key ring the flags describe, or an ephemeral one when no signing key is given.
pub fn keyring(common: &CommonArgs) -> Result<KeyRing, KeyError> {
    key_files(common).load()
}

/// Re-reads the key files every `interval` and swaps in the new ring when they changed: this
/// is how keys rotate without a restart. A ring that fails to load is logged and ignored (the
/// node keeps the last good one).
pub fn spawn_key_reloader(
    files: KeyFiles,
    authority: Arc<Authority>,
    interval: Duration,
) -> tokio::task::JoinHandle<()> {
    let keys = authority.verifier().keys().clone();
    tokio::spawn(async move {
        let mut last = files.fingerprint().ok();
        loop {
            tokio::time::sleep(interval).await;
            let now = match files.fingerprint() {
                Ok(f) => f,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot read the key files; keeping the current keys");
                    continue;
                }
            };
            if last.as_ref() == Some(&now) {
                continue;
            }
            match files.load() {
                Ok(ring) => {
                    tracing::info!(active_kid = %ring.active_kid(), kids = ?ring.kids(), "key ring reloaded");
                    let (kids, active) = (ring.kids(), ring.active_kid().to_owned());
                    keys.store(ring);
                    last = Some(now);
                    authority.record_rotation(&kids, &active).await;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "the key files changed but do not load; keeping the current keys")
                }
            }
        }
    })
}

/// Where a verifier linked into a cache node gets authcell's public keys.
///
/// Whoever can alter this traffic can hand the node a key of their own and so forge any
/// credential: it must be TLS (`https://`), or stay on this machine (`http://` to a loopback
/// host, see [`crate::endpoint`]), unless `allow_insecure_http` says otherwise.
#[derive(Clone, Debug)]
pub struct JwksSource {
    /// An authcell endpoint serving `authcell.v1.Keys`: `https://host:port`, or
    /// `http://host:port` for a loopback host.
    pub endpoint: String,
    /// PEM CA certificate(s) to verify an `https://` endpoint with; `None`: the public web PKI.
    pub tls_ca_pem: Option<String>,
    /// Also fetch over plain http from a host that is not loopback: only on a network where
    /// nobody can alter the traffic.
    pub allow_insecure_http: bool,
}

impl JwksSource {
    /// `endpoint` with the defaults: public web PKI for https, no plain http off the machine.
    pub fn new(endpoint: impl Into<String>) -> Self {
        JwksSource {
            endpoint: endpoint.into(),
            tls_ca_pem: None,
            allow_insecure_http: false,
        }
    }

    /// Whether keys may be fetched from this endpoint; the error names the endpoint and the
    /// option that would allow it. Decided from the URL alone, before any connection.
    pub fn check(&self) -> Result<(), String> {
        self.transport().map(|_| ())
    }

    /// The checked transport.
    fn transport(&self) -> Result<crate::endpoint::Transport, String> {
        use crate::endpoint::Transport;
        let endpoint = &self.endpoint;
        match crate::endpoint::transport(endpoint) {
            Err(e) => Err(format!("JWK set endpoint {endpoint}: {e}")),
            Ok(Transport::RemotePlaintext) if !self.allow_insecure_http => Err(format!(
                "JWK set endpoint {endpoint}: refusing plain http to a host that is not loopback: \
                 anyone on the path could substitute a key and forge any credential; use \
                 https://, or set allow_insecure_http (cache_node: --insecure-jwks-http) if \
                 nobody can alter traffic on this network"
            )),
            Ok(transport) => Ok(transport),
        }
    }
}

impl From<&str> for JwksSource {
    fn from(endpoint: &str) -> Self {
        JwksSource::new(endpoint)
    }
}

impl From<String> for JwksSource {
    fn from(endpoint: String) -> Self {
        JwksSource::new(endpoint)
    }
}

impl From<&String> for JwksSource {
    fn from(endpoint: &String) -> Self {
        JwksSource::new(endpoint.as_str())
    }
}

/// How long connecting to the JWK set endpoint may take.
const JWKS_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long fetching the JWK set may take.
const JWKS_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Fetches the JWK set of an authcell endpoint as a verification-only key ring: the
/// public-key source of a verifier linked into a cache node. The source is checked
/// ([`JwksSource::check`]) before connecting.
pub async fn fetch_jwks(source: impl Into<JwksSource>) -> Result<KeyRing, String> {
    let source = source.into();
    warn_if_insecure(&source)?;
    fetch(&source).await
}

/// Checks `source`, and warns when it is plain http off the machine.
fn warn_if_insecure(source: &JwksSource) -> Result<(), String> {
    if source.transport()? == crate::endpoint::Transport::RemotePlaintext {
        tracing::warn!(endpoint = %source.endpoint, "fetching verification keys over plain http from a host that is not loopback (allow_insecure_http)");
    }
    Ok(())
}

async fn fetch(source: &JwksSource) -> Result<KeyRing, String> {
    use crate::proto::authcell::v1 as pb;
    use tonic::transport::{Certificate, ClientTlsConfig, Endpoint};
    let transport = source.transport()?;
    let endpoint = source.endpoint.as_str();
    let mut target = Endpoint::from_shared(endpoint.to_owned())
        .map_err(|e| format!("{endpoint}: not a valid address: {e}"))?
        .connect_timeout(JWKS_CONNECT_TIMEOUT)
        .timeout(JWKS_REQUEST_TIMEOUT);
    if transport == crate::endpoint::Transport::Tls {
        let tls = match &source.tls_ca_pem {
            Some(pem) => ClientTlsConfig::new().ca_certificate(Certificate::from_pem(pem)),
            None => ClientTlsConfig::new().with_webpki_roots(),
        };
        target = target
            .tls_config(tls)
            .map_err(|e| format!("{endpoint}: TLS configuration: {e}"))?;
    }
    let channel = target
        .connect()
        .await
        .map_err(|e| format!("{endpoint}: cannot connect: {e}"))?;
    let response = pb::keys_client::KeysClient::new(channel)
        .get_jwks(pb::GetJwksRequest {})
        .await
        .map_err(|e| format!("{endpoint}: GetJwks: {e}"))?
        .into_inner();
    let set: jsonwebtoken::jwk::JwkSet = serde_json::from_str(&response.jwks)
        .map_err(|e| format!("{endpoint}: bad JWK set: {e}"))?;
    KeyRing::from_jwks(&set, &response.active_kid).map_err(|e| e.to_string())
}

/// Keeps a verifier's keys in step with an authcell endpoint's JWK set. A source that
/// [`JwksSource::check`] refuses is an error here, not a warning every `interval`.
pub fn spawn_jwks_refresher(
    source: impl Into<JwksSource>,
    keys: Arc<KeyRingHandle>,
    interval: Duration,
) -> Result<tokio::task::JoinHandle<()>, String> {
    let source = source.into();
    warn_if_insecure(&source)?;
    Ok(tokio::spawn(async move {
        let mut last = keys.load().kids();
        loop {
            tokio::time::sleep(interval).await;
            match fetch(&source).await {
                Ok(ring) if ring.kids() != last => {
                    tracing::info!(kids = ?ring.kids(), "verification keys changed");
                    last = ring.kids();
                    keys.store(ring);
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "cannot refresh verification keys"),
            }
        }
    }))
}

/// A live revocation view fed from a cell's Redis replica, for a verifier linked into a cache
/// node (it reads only; it reports nothing).
pub async fn revocation_view(
    read_url: &str,
    prefix: &str,
) -> Result<(Arc<View>, SyncHandle), String> {
    let read = redis_store::connect(read_url)
        .await
        .map_err(|e| format!("{read_url}: cannot connect to Redis: {e}"))?;
    let view = Arc::new(View::tracked());
    let handle = sync::spawn(view.clone(), read, Keys::new(prefix), None);
    Ok((view, handle))
}

/// What distinguishes one node from another.
#[derive(Clone, Debug)]
pub struct NodeOptions {
    pub cell: String,
    pub endpoint: String,
    /// Token vending and key creation per account and second; 0 = unlimited.
    pub vend_rate_per_second: u32,
    pub vend_burst: u32,
    /// Revocation-endpoint calls (RevokeToken, RevokeIssuedBefore, ConfirmRevocation) per
    /// account and second; 0 = unlimited.
    pub revoke_rate_per_second: u32,
    pub revoke_burst: u32,
    /// Token-id revocations an account may have in force.
    pub max_token_id_revocations: usize,
    /// ConfirmRevocation calls served at once.
    pub max_confirmations: usize,
}

impl Default for NodeOptions {
    fn default() -> Self {
        NodeOptions {
            cell: "local".into(),
            endpoint: String::new(),
            vend_rate_per_second: 0,
            vend_burst: 0,
            revoke_rate_per_second: 0,
            revoke_burst: 0,
            max_token_id_revocations: crate::authority::DEFAULT_MAX_TOKEN_ID_REVOCATIONS,
            max_confirmations: crate::authority::DEFAULT_MAX_CONFIRMATIONS,
        }
    }
}

/// An authority over an in-memory store (the embedded default, and most tests).
pub fn embedded(keyring: KeyRing, clock: Arc<dyn Clock>, options: &NodeOptions) -> Arc<Authority> {
    let view = Arc::new(View::new());
    let store = Arc::new(MemoryStore::new(view.clone()));
    let verifier = Verifier::new(keyring, view, clock);
    Arc::new(Authority::new(
        store,
        verifier,
        Settings {
            cell: options.cell.clone(),
            endpoint: options.endpoint.clone(),
            limiter: limiter::from_config(options.vend_rate_per_second, options.vend_burst),
            revocation_limiter: limiter::from_config(
                options.revoke_rate_per_second,
                options.revoke_burst,
            ),
            max_token_id_revocations: options.max_token_id_revocations,
            max_confirmations: options.max_confirmations,
        },
    ))
}

/// How a Redis-backed node reaches Redis and treats a stale view.
#[derive(Clone, Debug)]
pub struct RedisSettings {
    /// The primary: every write. A fixed URL, or Sentinel's current primary.
    pub primary: Target,
    /// This cell's replica: loading and tailing the view. `None`: the primary.
    pub read_url: Option<String>,
    pub prefix: String,
    pub stream_max_len: u64,
    pub max_staleness: Duration,
    pub stale_policy: StalePolicy,
    /// Replicas that must hold a mutation before it is acknowledged; `None`: one if the
    /// primary has a replica when the node starts, else none.
    pub min_replica_acks: Option<u32>,
    /// How long a mutation waits for those replicas before it is answered UNAVAILABLE.
    pub replica_ack_timeout: Duration,
}

/// Default of `--replica-ack-timeout-ms`.
pub const DEFAULT_REPLICA_ACK_TIMEOUT: Duration = Duration::from_millis(1000);

impl RedisSettings {
    /// The defaults for a primary at a fixed URL.
    pub fn fixed(url: &str) -> Self {
        RedisSettings {
            primary: Target::Url(url.to_owned()),
            read_url: None,
            prefix: "authcell:".into(),
            stream_max_len: 100_000,
            max_staleness: Duration::from_secs(30),
            stale_policy: StalePolicy::Serve,
            min_replica_acks: None,
            replica_ack_timeout: DEFAULT_REPLICA_ACK_TIMEOUT,
        }
    }
}

/// Connects to the primary and decides how many replicas each mutation waits for.
async fn primary_link(settings: &RedisSettings) -> Result<(Link, Acks), String> {
    let mut primary = Link::connect(settings.primary.clone(), redis_store::RESPONSE_TIMEOUT)
        .await
        .map_err(|e| format!("Redis primary: {e}"))?;
    let replicas = match settings.min_replica_acks {
        Some(n) => n,
        None => {
            let connected = crate::store::redis::link::connected_replicas(&mut primary)
                .await
                .map_err(|e| format!("Redis primary {}: {e}", primary.describe()))?;
            if connected == 0 {
                tracing::warn!("the Redis primary has no replica: writes are acknowledged without waiting for one, and a failover could lose them (set --min-replica-acks to require replicas)");
            }
            connected.min(1)
        }
    };
    let acks = Acks {
        replicas,
        timeout: settings.replica_ack_timeout,
    };
    tracing::info!(primary = %primary.describe(), min_replica_acks = replicas, timeout_ms = settings.replica_ack_timeout.as_millis() as u64, "Redis primary connected");
    Ok((primary, acks))
}

/// This cell's read connection: the replica's URL, or the primary's target.
async fn read_link(settings: &RedisSettings) -> Result<Link, String> {
    let target = match &settings.read_url {
        Some(url) => Target::Url(url.clone()),
        None => settings.primary.clone(),
    };
    Link::connect(target, redis_store::RESPONSE_TIMEOUT)
        .await
        .map_err(|e| format!("--redis-read-url: {e}"))
}

/// A node whose state lives in Redis: its authority, and the sync task feeding its view.
pub struct RedisNode {
    pub authority: Arc<Authority>,
    pub sync: SyncHandle,
}

fn redis_config(settings: &RedisSettings, acks: Acks) -> RedisConfig {
    RedisConfig {
        prefix: settings.prefix.clone(),
        stream_max_len: settings.stream_max_len,
        acks,
        ..RedisConfig::default()
    }
}

/// An authority over the Redis store with no sync task and no server: for `bootstrap`. Its clock
/// is measured against the primary and its view is loaded from the primary, so that the key it
/// mints is stamped after any issued-before cut already made.
pub async fn bootstrap_authority(
    keyring: KeyRing,
    cell: &str,
    settings: &RedisSettings,
) -> Result<Authority, String> {
    let (mut primary, acks) = primary_link(settings).await?;
    let keys = Keys::new(&settings.prefix);
    let clock = Arc::new(PrimaryClock::new());
    let identity = NodeIdentity {
        node_id: format!("{cell}/bootstrap-{}", uuid::Uuid::new_v4()),
        cell: cell.to_owned(),
        max_staleness_ms: 0,
        deny_when_stale: true,
    };
    sync::report(&mut primary, &keys, &identity, &clock, "0-0")
        .await
        .map_err(|e| format!("Redis primary: {e}"))?;
    let _ = redis::cmd("HDEL")
        .arg(keys.nodes())
        .arg(&identity.node_id)
        .query_async::<()>(&mut primary)
        .await;
    let view = Arc::new(View::tracked());
    let loaded = sync::load(&mut primary, &keys, clock.now())
        .await
        .map_err(|e| format!("Redis primary: {e}"))?;
    view.reload(loaded.events);
    let store = Arc::new(RedisStore::new(
        primary,
        redis_config(settings, acks),
        view.clone(),
    ));
    Ok(Authority::new(
        store,
        Verifier::new(keyring, view, clock),
        Settings {
            cell: cell.to_owned(),
            endpoint: String::new(),
            limiter: Box::new(limiter::Unlimited),
            revocation_limiter: Box::new(limiter::Unlimited),
            max_token_id_revocations: crate::authority::DEFAULT_MAX_TOKEN_ID_REVOCATIONS,
            max_confirmations: crate::authority::DEFAULT_MAX_CONFIRMATIONS,
        },
    ))
}

/// Builds a node backed by Redis and starts its sync task. Fails with one clear message if
/// Redis cannot be reached at start.
///
/// The node's clock is a [`PrimaryClock`]: it is measured against the primary before this
/// returns (and on every heartbeat after), so everything the node stamps and every expiry it
/// checks follows the primary's clock, whatever this machine's clock says.
pub async fn with_redis(
    keyring: KeyRing,
    options: &NodeOptions,
    settings: &RedisSettings,
) -> Result<RedisNode, String> {
    let (mut primary, acks) = primary_link(settings).await?;
    // A connection of its own: blocking stream reads would hold up other commands.
    let read = read_link(settings).await?;
    let view = Arc::new(View::tracked());
    let keys = Keys::new(&settings.prefix);
    let clock = Arc::new(PrimaryClock::new());
    let identity = NodeIdentity {
        node_id: format!("{}/{}", options.cell, uuid::Uuid::new_v4()),
        cell: options.cell.clone(),
        max_staleness_ms: u64::try_from(settings.max_staleness.as_millis()).unwrap_or(u64::MAX),
        deny_when_stale: settings.stale_policy == StalePolicy::Deny,
    };
    sync::report(&mut primary, &keys, &identity, &clock, "0-0")
        .await
        .map_err(|e| format!("Redis primary: {e}"))?;
    let store = Arc::new(RedisStore::new(
        primary.clone(),
        redis_config(settings, acks),
        view.clone(),
    ));
    let limiter = shared_limiter::shared(
        primary.clone(),
        keys.clone(),
        shared_limiter::VENDING,
        options.vend_rate_per_second,
        options.vend_burst,
    );
    let revocation_limiter = shared_limiter::shared(
        primary.clone(),
        keys.clone(),
        shared_limiter::REVOCATIONS,
        options.revoke_rate_per_second,
        options.revoke_burst,
    );
    let verifier = Verifier::new(keyring, view.clone(), clock.clone())
        .with_staleness(settings.max_staleness, settings.stale_policy);
    let sync = sync::spawn(
        view,
        read,
        keys,
        Some(sync::Reporting {
            primary,
            identity,
            clock,
            prefix: settings.prefix.clone(),
        }),
    );
    let authority = Arc::new(Authority::new(
        store,
        verifier,
        Settings {
            cell: options.cell.clone(),
            endpoint: options.endpoint.clone(),
            limiter,
            revocation_limiter,
            max_token_id_revocations: options.max_token_id_revocations,
            max_confirmations: options.max_confirmations,
        },
    ));
    Ok(RedisNode { authority, sync })
}
