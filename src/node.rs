//! Wiring one node: [`Node::embedded`] or [`Node::redis`] builds its key ring, store, live
//! view, verifier, authority, counters and metrics; [`crate::server::run`] serves it. The
//! data-plane library a cache node links instead lives apart, in [`crate::dataplane`].

use std::sync::Arc;

use std::time::Duration;

use crate::authority::{Authority, Settings};
use crate::clock::{Clock, PrimaryClock};
use crate::config::CommonArgs;
use crate::keyring::{KeyError, KeyFiles, KeyRing};
use crate::metrics::{Counters, Metrics};
use crate::store::limiter;
use crate::store::memory::MemoryStore;
use crate::store::redis::limiter as shared_limiter;
use crate::store::redis::link::{Acks, Link, Target};
use crate::store::redis::sync::{self, NodeIdentity, SyncHandle};
use crate::store::redis::{self as redis_store, Keys, RedisConfig, RedisStore};
use crate::verifier::view::View;
use crate::verifier::StalePolicy;
use crate::verifier::Verifier;

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

impl NodeOptions {
    /// The authority's settings for these options, with the node's limiters and counters (the
    /// one thing an embedded and a Redis-backed node build differently is the limiters).
    fn settings(
        &self,
        limiter: Box<dyn crate::store::limiter::RateLimiter>,
        revocation_limiter: Box<dyn crate::store::limiter::RateLimiter>,
        counters: &Arc<Counters>,
    ) -> Settings {
        Settings {
            cell: self.cell.clone(),
            endpoint: self.endpoint.clone(),
            limiter,
            revocation_limiter,
            max_token_id_revocations: self.max_token_id_revocations,
            max_confirmations: self.max_confirmations,
            counters: counters.clone(),
        }
    }
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

/// One authcell node: its authority (and through it the verifier and the store), its counters
/// and metrics, and on a Redis-backed node the task that keeps its view in step with the cell.
/// Built by [`Node::embedded`] or [`Node::redis`]; served by [`crate::server::run`].
pub struct Node {
    authority: Arc<Authority>,
    metrics: Arc<Metrics>,
    sync: Option<SyncHandle>,
    /// Revokes rotated keys whose overlap ended ([`spawn_rotation_scheduler`]).
    scheduler: Option<tokio::task::JoinHandle<()>>,
}

/// How often a node looks for rotated keys whose overlap ended: the most a scheduled
/// revocation can come late, before it propagates like any other.
pub const ROTATION_TICK: Duration = Duration::from_millis(500);

/// Every node, in every cell, revokes rotated keys whose overlap ended, and records
/// `key.expiring` for keys that entered their last week, every [`ROTATION_TICK`]. The schedule lives in the store (in Redis: a sorted set that one script
/// takes each entry from), so a scheduled revocation happens whichever nodes are alive; it
/// never depends on the node that accepted the rotation. Without a Tokio runtime (a library
/// caller building a node outside one) nothing is spawned.
fn spawn_rotation_scheduler(authority: &Arc<Authority>) -> Option<tokio::task::JoinHandle<()>> {
    let Ok(handle) = tokio::runtime::Handle::try_current() else {
        tracing::warn!("no Tokio runtime: rotated keys will not be revoked at the end of their overlap by this node");
        return None;
    };
    let authority = authority.clone();
    Some(handle.spawn(async move {
        loop {
            tokio::time::sleep(ROTATION_TICK).await;
            match authority.revoke_due().await {
                Ok(0) => {}
                Ok(n) => tracing::info!(
                    revoked = n,
                    "rotated keys revoked at the end of their overlap"
                ),
                Err(e) => tracing::debug!(error = %e, "cannot revoke rotated keys now; retrying"),
            }
            match authority.warn_expiring().await {
                Ok(0) => {}
                Ok(n) => tracing::info!(keys = n, "keys entered their last week: audited"),
                Err(e) => tracing::debug!(error = %e, "cannot record expiring keys now; retrying"),
            }
        }
    }))
}

impl Node {
    /// A node over an in-memory store (the embedded default, and most tests).
    pub fn embedded(keyring: KeyRing, clock: Arc<dyn Clock>, options: &NodeOptions) -> Node {
        let counters = Arc::new(Counters::default());
        let view = Arc::new(View::new());
        let store = Arc::new(MemoryStore::new(view.clone()));
        let verifier = Verifier::new(keyring, view, clock);
        let authority = Arc::new(Authority::new(
            store,
            verifier,
            options.settings(
                limiter::from_config(options.vend_rate_per_second, options.vend_burst),
                limiter::from_config(options.revoke_rate_per_second, options.revoke_burst),
                &counters,
            ),
        ));
        Node::assemble(authority, counters, None)
    }

    /// A node whose state lives in Redis, with its sync task started. Fails with one clear
    /// message if Redis cannot be reached at start.
    ///
    /// The node's clock is a [`PrimaryClock`]: it is measured against the primary before this
    /// returns (and on every heartbeat after), so everything the node stamps and every expiry
    /// it checks follows the primary's clock, whatever this machine's clock says.
    pub async fn redis(
        keyring: KeyRing,
        options: &NodeOptions,
        settings: &RedisSettings,
    ) -> Result<Node, String> {
        let counters = Arc::new(Counters::default());
        let (authority, sync) = with_redis(keyring, options, settings, &counters).await?;
        Ok(Node::assemble(authority, counters, Some(sync)))
    }

    fn assemble(
        authority: Arc<Authority>,
        counters: Arc<Counters>,
        sync: Option<SyncHandle>,
    ) -> Node {
        let metrics = Arc::new(Metrics::new(authority.verifier().clone(), counters));
        metrics.expiring().set_source(authority.clone());
        let scheduler = spawn_rotation_scheduler(&authority);
        Node {
            authority,
            metrics,
            sync,
            scheduler,
        }
    }

    pub fn authority(&self) -> &Arc<Authority> {
        &self.authority
    }

    /// What the metrics endpoint serves for this node; the server counts every RPC in it.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// The task feeding a Redis-backed node's view; `None` for an embedded node.
    pub fn sync(&self) -> Option<&SyncHandle> {
        self.sync.as_ref()
    }

    /// Stops the node's background work (the sync task), once the server has returned.
    pub async fn stop(mut self) {
        if let Some(scheduler) = self.scheduler.take() {
            scheduler.abort();
        }
        if let Some(sync) = self.sync.take() {
            sync.stop().await;
        }
    }
}

impl Drop for Node {
    /// A node dropped without [`Node::stop`] still stops revoking on its timer.
    fn drop(&mut self) {
        if let Some(scheduler) = self.scheduler.take() {
            scheduler.abort();
        }
    }
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
            counters: Arc::default(),
        },
    ))
}

/// The authority of a Redis-backed node and its started sync task (see [`Node::redis`]).
async fn with_redis(
    keyring: KeyRing,
    options: &NodeOptions,
    settings: &RedisSettings,
    counters: &Arc<Counters>,
) -> Result<(Arc<Authority>, SyncHandle), String> {
    let (primary, acks) = primary_link(settings).await?;
    let mut primary = primary.counted(counters.clone());
    // A connection of its own: blocking stream reads would hold up other commands.
    let read = read_link(settings).await?.counted(counters.clone());
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
    // A second connection to this cell's replica (the sync's blocks on stream reads).
    let nearby = read
        .separate(redis_store::RESPONSE_TIMEOUT)
        .map_err(|e| format!("Redis replica: {e}"))?;
    let store = Arc::new(
        RedisStore::new(primary.clone(), redis_config(settings, acks), view.clone())
            .with_nearby(nearby),
    );
    store.warm_up().await;
    // In the background: a node serves at once; the indexes only feed the expiring-keys gauge
    // and the last-week audit event.
    let indexer = store.clone();
    let started = clock.clone();
    tokio::spawn(async move {
        match indexer.index_existing_keys(started.now()).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(
                keys = n,
                "keys stored before the expiry indexes were indexed"
            ),
            Err(e) => {
                tracing::warn!(error = %e, "cannot index existing keys now; the next node start retries")
            }
        }
    });
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
        options.settings(limiter, revocation_limiter, counters),
    ));
    Ok((authority, sync))
}
