//! Counters of the hot path (allowed, denied by reason, cache hits and misses, verdicts looked
//! up again).

use std::sync::atomic::{AtomicU64, Ordering};

use super::Reason;

/// Counters of the hot path, kept with relaxed atomic adds.
#[derive(Debug, Default)]
pub struct Stats {
    pub(super) allowed: AtomicU64,
    pub(super) denied: [AtomicU64; Reason::ALL.len()],
    pub(super) cache_hits: AtomicU64,
    pub(super) cache_misses: AtomicU64,
    pub(super) resolves: AtomicU64,
}

/// A copy of the counters.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StatsSnapshot {
    pub allowed: u64,
    pub denied: Vec<(&'static str, u64)>,
    pub cache_hits: u64,
    pub cache_misses: u64,
    /// Verdicts looked up in the view (revocations, roles) rather than reused: a cache miss, or
    /// a hit after a change to the credential's account.
    pub resolves: u64,
}

impl Stats {
    pub fn snapshot(&self) -> StatsSnapshot {
        StatsSnapshot {
            allowed: self.allowed.load(Ordering::Relaxed),
            denied: Reason::ALL
                .iter()
                .map(|r| (r.name(), self.denied[r.index()].load(Ordering::Relaxed)))
                .collect(),
            cache_hits: self.cache_hits.load(Ordering::Relaxed),
            cache_misses: self.cache_misses.load(Ordering::Relaxed),
            resolves: self.resolves.load(Ordering::Relaxed),
        }
    }
}
