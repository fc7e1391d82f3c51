//! Prometheus metrics: what operators scrape (`--metrics-listen`, path `/metrics`).
//!
//! * `authcell_grpc_server_handled_total{grpc_method, grpc_code}` and
//!   `authcell_grpc_server_handling_seconds{grpc_method}`: every RPC, counted by a tower layer
//!   around the gRPC server. Labels are static strings (no allocation per request); the code is
//!   read from the response headers, where gRPC puts it for errors ("trailers-only" responses),
//!   so a stream that fails after it started is counted as OK.
//! * `authcell_authorize_decisions_total{decision}`, `authcell_verification_cache_total{result}`:
//!   read at scrape time from the verifier's own relaxed counters, so the hot path pays nothing
//!   extra for them.
//! * `authcell_revocation_view_age_seconds`, `authcell_revocation_view_entries`,
//!   `authcell_revocation_view_loaded`: the live view.
//! * `authcell_redis_errors_total`, `authcell_rate_limited_total`, `authcell_keys_issued_total`,
//!   `authcell_tokens_issued_total`, `authcell_replica_ack_timeouts_total`: process-wide
//!   counters ([`COUNTERS`]).

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

use crate::verifier::Verifier;

/// Process-wide event counters, bumped where the events happen.
#[derive(Debug, Default)]
pub struct Counters {
    pub redis_errors: AtomicU64,
    pub rate_limited: AtomicU64,
    pub keys_issued: AtomicU64,
    pub tokens_issued: AtomicU64,
    pub replica_ack_timeouts: AtomicU64,
}

pub static COUNTERS: Counters = Counters {
    redis_errors: AtomicU64::new(0),
    rate_limited: AtomicU64::new(0),
    keys_issued: AtomicU64::new(0),
    tokens_issued: AtomicU64::new(0),
    replica_ack_timeouts: AtomicU64::new(0),
};

/// The Redis primary's clock minus this machine's, in ms, at the last measurement.
static CLOCK_SKEW_MS: std::sync::atomic::AtomicI64 = std::sync::atomic::AtomicI64::new(0);

/// Records the measured skew from the primary's clock (see [`crate::clock::PrimaryClock`]).
pub fn set_clock_skew(ms: i64) {
    CLOCK_SKEW_MS.store(ms, Ordering::Relaxed);
}

/// Bumps one of [`COUNTERS`].
pub fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

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
const METHODS: &[&str] = &[
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
    "authcell.v1.Verifier/Authorize",
    "authcell.v1.Verifier/BatchAuthorize",
    "authcell.v1.Keys/GetJwks",
    "grpc.health.v1.Health/Check",
    "grpc.health.v1.Health/Watch",
    "grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
    "grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
];

fn method_label(path: &str) -> &'static str {
    let path = path.strip_prefix('/').unwrap_or(path);
    METHODS
        .iter()
        .find(|m| **m == path)
        .copied()
        .unwrap_or("unknown")
}

const CODES: [&str; 17] = [
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

fn code_label<B>(response: &http::Response<B>) -> &'static str {
    response
        .headers()
        .get("grpc-status")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok())
        .and_then(|code| CODES.get(code).copied())
        .unwrap_or("OK")
}

/// The metrics of one server.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    handled: Family<RpcLabels, Counter>,
    latency: Family<MethodLabels, Histogram>,
}

/// Reads the node's state at scrape time.
struct NodeCollector {
    verifier: Verifier,
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
            CLOCK_SKEW_MS.load(Ordering::Relaxed) as f64 / 1000.0,
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
        let c = &COUNTERS;
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
    pub fn new(verifier: Verifier) -> Self {
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
        registry.register_collector(Box::new(NodeCollector { verifier }));
        Metrics {
            registry,
            handled,
            latency,
        }
    }

    fn record(&self, method: &'static str, code: &'static str, started: Instant) {
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

    /// The OpenMetrics text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        if let Err(e) = prometheus_client::encoding::text::encode(&mut out, &self.registry) {
            tracing::error!(error = %e, "cannot encode metrics");
        }
        out
    }
}

/// Counts and times every RPC of the server it wraps.
#[derive(Clone)]
pub struct MetricsLayer(pub Arc<Metrics>);

impl<S> tower_layer::Layer<S> for MetricsLayer {
    type Service = MetricsService<S>;
    fn layer(&self, inner: S) -> Self::Service {
        MetricsService {
            inner,
            metrics: self.0.clone(),
        }
    }
}

#[derive(Clone)]
pub struct MetricsService<S> {
    inner: S,
    metrics: Arc<Metrics>,
}

impl<S, B, RB> tower_service::Service<http::Request<B>> for MetricsService<S>
where
    S: tower_service::Service<http::Request<B>, Response = http::Response<RB>>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let method = method_label(request.uri().path());
        let started = Instant::now();
        let metrics = self.metrics.clone();
        let response = self.inner.call(request);
        Box::pin(async move {
            let response = response.await;
            let code = match &response {
                Ok(r) => code_label(r),
                Err(_) => "UNKNOWN",
            };
            metrics.record(method, code, started);
            response
        })
    }
}

/// Serves `GET /metrics` (HTTP/1.1) on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: tokio::net::TcpListener,
    metrics: Arc<Metrics>,
    shutdown: impl Future<Output = ()>,
) {
    use http_body_util::Full;
    use hyper::body::Bytes;
    tokio::pin!(shutdown);
    // Out of descriptors, accept fails again at once: wait instead of spinning.
    let mut backoff = crate::accept::Backoff::default();
    loop {
        let (stream, _) = tokio::select! {
            accepted = crate::accept::accept("metrics", &listener, &mut backoff) => accepted,
            _ = &mut shutdown => return,
        };
        let metrics = metrics.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(
                move |request: hyper::Request<hyper::body::Incoming>| {
                    let metrics = metrics.clone();
                    async move {
                        let response = if request.uri().path() == "/metrics" {
                            hyper::Response::builder()
                                .header(
                                    "content-type",
                                    "application/openmetrics-text; version=1.0.0; charset=utf-8",
                                )
                                .body(Full::new(Bytes::from(metrics.render())))
                        } else {
                            hyper::Response::builder()
                                .status(404)
                                .body(Full::new(Bytes::from_static(b"not found: try /metrics\n")))
                        };
                        response
                    }
                },
            );
            let io = hyper_util::rt::TokioIo::new(stream);
            if let Err(e) = hyper::server::conn::http1::Builder::new()
                .serve_connection(io, service)
                .await
            {
                tracing::debug!(error = %e, "metrics connection ended with an error");
            }
        });
    }
}
