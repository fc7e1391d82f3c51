//! The shared rate limiter: one GCRA bucket per account and operation kind on the primary, so
//! every node of every cell draws from the same budget.

use std::num::NonZeroU32;
use std::time::Duration;

use async_trait::async_trait;

use super::link::Link;
use super::Keys;
use crate::store::limiter::{quota, LocalRateLimiter, RateLimiter, Unlimited};

const GCRA: &str = include_str!("scripts/gcra.lua");

/// A limiter shared by every node of every cell: a GCRA bucket per account in Redis (the
/// primary), using Redis's clock so nodes' clocks do not matter. If Redis cannot be reached it
/// falls back to a local limiter with the same quota, so vending (which needs no store write)
/// keeps working, limited per node, through an outage.
pub struct RedisRateLimiter {
    conn: Link,
    keys: Keys,
    /// Prefix of the account's bucket name: each limited kind of operation has its own.
    bucket: &'static str,
    interval_ms: u64,
    burst: u32,
    script: redis::Script,
    fallback: LocalRateLimiter,
}

/// The bucket of token vending and key creation.
pub const VENDING: &str = "";
/// The bucket of the revocation endpoints.
pub const REVOCATIONS: &str = "revoke:";

impl RedisRateLimiter {
    pub fn new(
        conn: Link,
        keys: Keys,
        bucket: &'static str,
        per_second: NonZeroU32,
        burst: NonZeroU32,
    ) -> Self {
        RedisRateLimiter {
            conn,
            keys,
            bucket,
            interval_ms: (1000 / u64::from(per_second.get())).max(1),
            burst: burst.get(),
            script: redis::Script::new(GCRA),
            fallback: LocalRateLimiter::new(per_second, burst),
        }
    }
}

#[async_trait]
impl RateLimiter for RedisRateLimiter {
    async fn acquire(&self, account: &str) -> Result<(), Duration> {
        let waited: redis::RedisResult<u64> = self
            .script
            .key(self.keys.rate(&format!("{}{account}", self.bucket)))
            .arg(self.interval_ms)
            .arg(self.burst)
            .invoke_async(&mut self.conn.clone())
            .await;
        match waited {
            Ok(0) => Ok(()),
            Ok(ms) => Err(Duration::from_millis(ms)),
            Err(e) => {
                tracing::warn!(error = %e, "shared rate limiter unreachable; limiting on this node");
                self.fallback.acquire(account).await
            }
        }
    }
}

/// Builds the shared limiter of one bucket for a configured rate: 0 means unlimited.
pub fn shared(
    conn: Link,
    keys: Keys,
    bucket: &'static str,
    per_second: u32,
    burst: u32,
) -> Box<dyn RateLimiter> {
    match quota(per_second, burst) {
        Some((rate, burst)) => Box::new(RedisRateLimiter::new(conn, keys, bucket, rate, burst)),
        None => Box::new(Unlimited),
    }
}
