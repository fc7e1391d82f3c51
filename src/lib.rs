//! authcell: the credential authority of a multi-region cache-and-topics platform.
//!
//! # Map of the crate
//!
//! Checking a credential (the data-plane hot path):
//!
//! credential ([`credential`]: JWS format, signature, structure) -> verify ([`verifier`]: time,
//! revocation in the live [`verifier::view`], role lookup, and for a derived credential its root role's
//! current permissions) -> evaluate ([`policy`]: pure policy function) -> decide
//! ([`verifier::Decision`]).
//!
//! Issuing and revoking (the management path):
//!
//! mint ([`authority`]: who may do what, delegation subset test) -> sign ([`keyring`],
//! [`credential`]) -> store ([`store`]: system of record) -> event ([`verifier::view::Event`], applied to
//! the live view). On a Redis-backed node, [`sync`] keeps the view in step with its cell's
//! replica and says how fresh it is, from heartbeats stamped on the primary. Its connections
//! ([`store::redis::link`]) follow the primary through a failover (Sentinel or a name that moves),
//! and acknowledge a mutation only once `--min-replica-acks` replicas hold it.
//!
//! Around them: [`proto`] (generated protobuf types), [`policy::proto`] (protobuf <-> domain, the one
//! place requests are validated), [`server`] (gRPC handlers, status mapping, the `run` entry
//! point), [`config`] (flags and environment), [`node`] (wiring one node together), [`clock`]
//! (time as a parameter, and the primary's clock every node stamps credentials with), [`cli`] (the operator command line: a gRPC client of the server).
//!
//! At the edges: [`tls`] (handshakes with a deadline, certificates that reload), [`accept`]
//! (accept loops that back off instead of spinning when the process runs out of descriptors),
//! [`metrics`] (the Prometheus endpoint), [`endpoint`] (which servers a client may reach
//! without TLS).

pub mod authority;
pub mod cli;
pub mod clock;
pub mod config;
pub mod credential;
pub mod dataplane;
pub mod endpoint;
/// The fuzz targets' bodies (`fuzz/`), also replayed on stable by the test suite.
pub mod fuzzing;
pub mod keyring;
pub mod metrics;
pub mod node;
pub mod policy;
pub mod proto;
pub mod server;
pub mod store;
pub mod verifier;
