//! Integration tests: gRPC over loopback to a real authcell server on a free port.

mod binary;
mod common;
mod foundation;
mod sdk;
mod vending;
