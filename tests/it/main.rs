//! Integration tests: gRPC over loopback to a real authcell server on a free port.

mod common;
mod foundation;
mod sdk;
mod vending;
