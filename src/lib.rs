//! authcell: the credential authority of a multi-region cache-and-topics platform.
//!
//! # Map of the crate
//!
//! Two flows make the product, and the folders are named after their steps.
//!
//! **Checking a credential** (the data-plane hot path): credential -> verify -> evaluate -> decide.
//!
//! | step | where |
//! | --- | --- |
//! | credential: compact JWS, claims, structure | [`credential`] |
//! | verify: signature ([`keyring`]), time, revocation in the live view ([`verifier::view`]), roles, the cache of verdicts | [`verifier`] |
//! | evaluate: a pure, default-deny policy function; the delegation subset test | [`policy`] |
//! | decide: [`verifier::Decision`], served by `authcell.v1.Verifier` ([`server`]) or linked in ([`dataplane`]) | [`verifier`] |
//!
//! **Issuing and revoking** (the management path): mint -> sign -> store -> event.
//!
//! | step | where |
//! | --- | --- |
//! | request: protobuf -> a typed request (`TryFrom`, the one validation boundary) | `server/requests.rs`, [`authority::requests`] |
//! | mint: who may do what, one file per family (keys, roles, revoke, vending, audit) | [`authority`] |
//! | sign: the active key of the ring | [`keyring`], [`credential`] |
//! | store: the system of record (trait, in-memory, Redis) | [`store`], [`store::redis`] |
//! | event: applied to every node's live view; on Redis, tailed from the cell's replica | [`verifier::view`], [`store::redis::sync`] |
//!
//! **Around them**: [`proto`] (generated protobuf types) and [`policy::proto`] (permission
//! messages <-> the policy model); [`server`] (one [`server::run`], one file per gRPC service,
//! status mapping, TLS, accept loops, the metrics endpoint); [`node`] ([`node::Node`]:
//! `embedded` or `redis`, what `run` serves); [`metrics`] (a node's counters and registry);
//! [`clock`] (time as a parameter, and the primary's clock); [`config`] (flags and
//! environment of the binary); [`cli`] (the operator command line, a gRPC client); [`endpoint`]
//! (which servers a client may reach without TLS); [`fuzzing`] (the fuzz targets' bodies);
//! [`cache_node`] (a minimal Momento cache and pub/sub node with the verifier linked in, for the
//! example node and the end-to-end tests with the official SDKs).
//!
//! **Dependencies between folders** run one way, with no circles:
//! `server -> node -> authority -> {store, verifier, keyring, policy}`,
//! `store -> {verifier::view, policy, metrics::Counters}`, `verifier -> {credential, keyring,
//! policy, clock}`, `credential -> {keyring, policy}`, `dataplane -> {verifier, keyring,
//! store::redis, endpoint}`, `cli -> {proto, policy, authority constants, endpoint}`.
//!
//! **Features**: `server` (default) builds everything; a cache node that links only
//! [`verifier`], [`policy`], [`keyring`], [`dataplane`], [`cache_node`] and [`store::redis::sync`] builds with
//! `default-features = false`, without clap, prometheus or authcell's server code.

#[cfg(feature = "server")]
pub mod authority;
pub mod cache_node;
#[cfg(feature = "server")]
pub mod cli;
pub mod clock;
#[cfg(feature = "server")]
pub mod config;
pub mod credential;
pub mod dataplane;
pub mod endpoint;
/// The fuzz targets' bodies (`fuzz/`), also replayed on stable by the test suite.
#[cfg(feature = "server")]
pub mod fuzzing;
pub mod keyring;
pub mod metrics;
#[cfg(feature = "server")]
pub mod node;
pub mod policy;
pub mod proto;
#[cfg(feature = "server")]
pub mod server;
pub mod store;
pub mod verifier;
