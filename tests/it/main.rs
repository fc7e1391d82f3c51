//! Integration tests: gRPC over loopback to a real authcell server on a free port.

mod audit;
mod authorize;
mod batch;
mod binary;
mod cells;
mod cli;
mod failover;
mod fuzz_replay;
mod guarantees;
mod ip_filter;
mod isolation;
mod keys;
mod library;
mod listing;
mod metrics;
mod roles;
mod rotation;
mod sdk;
mod security;
mod soak;
mod store_contract;
mod support;
mod surface;
mod tls;
mod vending;
mod wan;
