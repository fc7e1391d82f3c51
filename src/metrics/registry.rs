//! The registry: per-RPC counts and latencies, and what the node reports at scrape time.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

use crate::verifier::Verifier;

use super::expiring::{ExpiringKeys, WINDOWS};
use super::Counters;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RpcLabels {
    grpc_method: &'static str,
    grpc_code: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct MethodLabels {
    grpc_method: &'static str,
}

/// Every method the server answers, as `service/Method` labels.
pub(crate) const METHODS: &[&str] = &[
    "token.Token/GenerateDisposableToken",
    "auth.Auth/Login",
    "auth.Auth/GenerateApiToken",
    "auth.Auth/RefreshApiToken",
    "global_admin.GlobalAdmin/ListRolesForAccount",
    "global_admin.GlobalAdmin/GenerateGlobalApiKey",
    "global_admin.GlobalAdmin/ListGlobalApiKeys",
    "global_admin.GlobalAdmin/RevokeGlobalApiKey",
    "authcell.v1.Admin/DescribeApiKey",
    "authcell.v1.Admin/ListApiKeys",
    "authcell.v1.Admin/CreateRole",
    "authcell.v1.Admin/UpdateRole",
    "authcell.v1.Admin/DeleteRole",
    "authcell.v1.Admin/ListRoles",
    "authcell.v1.Admin/RevokeToken",
    "authcell.v1.Admin/RevokeIssuedBefore",
    "authcell.v1.Admin/ConfirmRevocation",
    "authcell.v1.Admin/ListCells",
    "authcell.v1.Admin/ListAuditEvents",
    "authcell.v1.Admin/RotateApiKey",
    "authcell.v1.Admin/GetKeyPolicy",
    "authcell.v1.Admin/SetKeyPolicy",
    "authcell.v1.Verifier/Authorize",
    "authcell.v1.Verifier/BatchAuthorize",
    "authcell.v1.Keys/GetJwks",
    "grpc.health.v1.Health/Check",
    "grpc.health.v1.Health/Watch",
    "grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
    "grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
];

pub(crate) const CODES: [&str; 17] = [
    "OK",
    "CANCELLED",
    "UNKNOWN",
    "INVALID_ARGUMENT",
    "DEADLINE_EXCEEDED",
    "NOT_FOUND",
    "ALREADY_EXISTS",
    "PERMISSION_DENIED",
    "RESOURCE_EXHAUSTED",
    "FAILED_PRECONDITION",
    "ABORTED",
    "OUT_OF_RANGE",
    "UNIMPLEMENTED",
    "INTERNAL",
    "UNAVAILABLE",
    "DATA_LOSS",
    "UNAUTHENTICATED",
];

/// The metrics of one server.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    expiring: Arc<ExpiringKeys>,
    handled: Family<RpcLabels, Counter>,
    latency: Family<MethodLabels, Histogram>,
}

/// Reads the node's state at scrape time.
struct NodeCollector {
    verifier: Verifier,
    counters: Arc<Counters>,
    expiring: Arc<ExpiringKeys>,
}

impl std::fmt::Debug for NodeCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("NodeCollector")
    }
}

fn counter(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    value: u64,
) -> Result<(), std::fmt::Error> {
    let metric = ConstCounter::new(value);
    metric.encode(encoder.encode_descriptor(name, help, None, metric.metric_type())?)
}

fn gauge(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    value: f64,
) -> Result<(), std::fmt::Error> {
    let metric = ConstGauge::new(value);
    metric.encode(encoder.encode_descriptor(name, help, None, metric.metric_type())?)
}

impl Collector for NodeCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let verifier = &self.verifier;
        let stats = verifier.stats().snapshot();
        {
            let mut expiring = encoder.encode_descriptor(
                "authcell_keys_expiring",
                "Live keys that expire (or a rotation revokes) within the window, per account; at most 100 accounts, the rest summed as account=\"(other)\". The same on every node: aggregate with max.",
                None,
                prometheus_client::metrics::MetricType::Gauge,
            )?;
            for (account, counts) in self.expiring.rows() {
                for ((within, _), count) in WINDOWS.iter().zip(counts) {
                    ConstGauge::new(count as i64).encode(
                        expiring
                            .encode_family(&[("account", account.as_str()), ("within", within)])?,
                    )?;
                }
            }
        }
        {
            let mut decisions = encoder.encode_descriptor(
                "authcell_authorize_decisions",
                "Credential checks by decision (allowed, or the denial reason).",
                None,
                prometheus_client::metrics::MetricType::Counter,
            )?;
            let allowed = ConstCounter::new(stats.allowed);
            allowed.encode(decisions.encode_family(&[("decision", "allowed")])?)?;
            for (reason, value) in &stats.denied {
                ConstCounter::new(*value)
                    .encode(decisions.encode_family(&[("decision", *reason)])?)?;
            }
        }
        {
            let mut cache = encoder.encode_descriptor(
                "authcell_verification_cache",
                "Lookups of the verified-credential cache, by result.",
                None,
                prometheus_client::metrics::MetricType::Counter,
            )?;
            ConstCounter::new(stats.cache_hits)
                .encode(cache.encode_family(&[("result", "hit")])?)?;
            ConstCounter::new(stats.cache_misses)
                .encode(cache.encode_family(&[("result", "miss")])?)?;
        }
        let view = verifier.view();
        gauge(
            &mut encoder,
            "authcell_revocation_view_age_seconds",
            "How far behind the Redis primary the revocation view may be: time since the newest primary heartbeat it is known to be current with (0 in embedded mode).",
            verifier.view_age().as_secs_f64(),
        )?;
        gauge(
            &mut encoder,
            "authcell_revocation_view_stale",
            "1 while the revocation view is older than --max-staleness (checks are denied under --stale-policy deny, served from the last known state under serve).",
            if view.is_loaded() && verifier.is_stale() { 1.0 } else { 0.0 },
        )?;
        gauge(
            &mut encoder,
            "authcell_clock_skew_seconds",
            "The Redis primary's clock minus this machine's at the last heartbeat (credentials are stamped on the primary's clock).",
            self.verifier.clock().skew_ms() as f64 / 1000.0,
        )?;
        let (cache_bytes, cache_budget) = verifier.cache_weight();
        gauge(
            &mut encoder,
            "authcell_verification_cache_bytes",
            "Estimated bytes held by the verified-credential cache.",
            cache_bytes as f64,
        )?;
        gauge(
            &mut encoder,
            "authcell_verification_cache_budget_bytes",
            "The verified-credential cache's byte budget.",
            cache_budget as f64,
        )?;
        gauge(
            &mut encoder,
            "authcell_revocation_view_entries",
            "Revoked credential and token ids held in the live view.",
            view.revoked_len() as f64,
        )?;
        gauge(
            &mut encoder,
            "authcell_revocation_view_loaded",
            "1 once the revocation view has loaded (checks are refused before).",
            if view.is_loaded() { 1.0 } else { 0.0 },
        )?;
        let c = &self.counters;
        counter(
            &mut encoder,
            "authcell_redis_errors",
            "Redis commands that failed (unreachable, timed out, refused).",
            c.redis_errors.load(Ordering::Relaxed),
        )?;
        counter(
            &mut encoder,
            "authcell_replica_ack_timeouts",
            "Mutations answered UNAVAILABLE because too few Redis replicas acknowledged them in time (--min-replica-acks).",
            c.replica_ack_timeouts.load(Ordering::Relaxed),
        )?;
        counter(
            &mut encoder,
            "authcell_rate_limited",
            "Token vending and key creation refused by the rate limit.",
            c.rate_limited.load(Ordering::Relaxed),
        )?;
        counter(
            &mut encoder,
            "authcell_keys_issued",
            "API keys issued (role-bound and SDK-made, refreshes included).",
            c.keys_issued.load(Ordering::Relaxed),
        )?;
        counter(
            &mut encoder,
            "authcell_tokens_issued",
            "Disposable tokens issued.",
            c.tokens_issued.load(Ordering::Relaxed),
        )
    }
}

impl Metrics {
    pub fn new(verifier: Verifier, counters: Arc<Counters>) -> Self {
        let mut registry = Registry::default();
        let handled = Family::<RpcLabels, Counter>::default();
        registry.register(
            "authcell_grpc_server_handled",
            "RPCs completed, by method and gRPC status code.",
            handled.clone(),
        );
        let latency = Family::<MethodLabels, Histogram>::new_with_constructor(|| {
            // 50 us .. ~1.6 s.
            Histogram::new(exponential_buckets(0.000_05, 2.0, 16))
        });
        registry.register(
            "authcell_grpc_server_handling_seconds",
            "Time to answer an RPC (until the response headers), by method.",
            latency.clone(),
        );
        let expiring = Arc::new(ExpiringKeys::default());
        registry.register_collector(Box::new(NodeCollector {
            verifier,
            counters,
            expiring: expiring.clone(),
        }));
        Metrics {
            registry,
            expiring,
            handled,
            latency,
        }
    }

    pub(crate) fn record(&self, method: &'static str, code: &'static str, started: Instant) {
        self.handled
            .get_or_create(&RpcLabels {
                grpc_method: method,
                grpc_code: code,
            })
            .inc();
        self.latency
            .get_or_create(&MethodLabels {
                grpc_method: method,
            })
            .observe(started.elapsed().as_secs_f64());
    }

    /// The expiring-keys gauge's figures (see [`super::expiring`]).
    pub fn expiring(&self) -> &ExpiringKeys {
        &self.expiring
    }

    /// The OpenMetrics text exposition, after refreshing the figures read from the store
    /// when they are due (see [`super::expiring`]).
    pub async fn render_fresh(&self) -> String {
        self.expiring.refresh().await;
        self.render()
    }

    /// The OpenMetrics text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        if let Err(e) = prometheus_client::encoding::text::encode(&mut out, &self.registry) {
            tracing::error!(error = %e, "cannot encode metrics");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use prost::Message;

    use super::METHODS;

    /// Every method the protobuf files define has its own label (one left out is counted as
    /// "unknown", as RotateApiKey once was).
    #[test]
    fn every_served_method_has_a_label() {
        let set = prost_types::FileDescriptorSet::decode(crate::proto::FILE_DESCRIPTOR_SET)
            .expect("the descriptor set decodes");
        let mut seen = 0;
        for file in &set.file {
            for service in &file.service {
                for method in &service.method {
                    let path = format!("{}.{}/{}", file.package(), service.name(), method.name());
                    assert!(METHODS.contains(&path.as_str()), "{path} has no label");
                    seen += 1;
                }
            }
        }
        assert!(seen > 20, "{seen} methods");
    }
}
