//! Event counters of one node, bumped where the events happen and read at scrape time.
//!
//! The node owns them and hands them to the parts that count (authority, Redis store and its
//! write links), so two nodes in one process (the tests run many) count apart.

use std::sync::atomic::{AtomicU64, Ordering};

/// One node's event counters (relaxed atomic adds: each is a tally, ordered with nothing).
#[derive(Debug, Default)]
pub struct Counters {
    pub redis_errors: AtomicU64,
    pub rate_limited: AtomicU64,
    pub keys_issued: AtomicU64,
    pub tokens_issued: AtomicU64,
    pub replica_ack_timeouts: AtomicU64,
}

impl Counters {
    /// Adds one to `counter`, one of this node's.
    pub fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }
}
