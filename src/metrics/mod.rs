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
//!   counters of the node ([`Counters`]), bumped where the events happen.
//! * `authcell_keys_expiring{account, within}`: live keys lapsing within 1, 7 and 30 days, per
//!   account, with bounded cardinality (see [`expiring`]).
//!
//! [`Counters`] are always built (the store and the authority count into them); the registry
//! and the RPC layer only with the `server` feature.

mod counters;
#[cfg(feature = "server")]
pub mod expiring;
#[cfg(feature = "server")]
mod layer;
#[cfg(feature = "server")]
mod registry;

pub use counters::Counters;
#[cfg(feature = "server")]
pub use layer::{MetricsLayer, MetricsService};
#[cfg(feature = "server")]
pub use registry::Metrics;
#[cfg(feature = "server")]
pub(crate) use registry::{CODES, METHODS};
