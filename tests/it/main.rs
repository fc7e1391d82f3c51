//! Integration tests: gRPC over loopback to a real authcell server on a free port.

mod audit;
mod batch;
mod binary;
mod cells;
mod cli;
mod failover;
mod foundation;
mod fuzz_replay;
mod guarantees;
mod library;
mod listing;
mod metrics;
mod rotation;
mod sdk;
mod security;
mod soak;
mod store_contract;
mod support;
mod tls;
mod vending;
