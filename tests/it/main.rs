//! Integration tests: gRPC over loopback to a real authcell server on a free port.

mod binary;
mod cells;
mod common;
mod foundation;
mod listing;
mod redis_env;
mod sdk;
mod store_contract;
mod vending;
