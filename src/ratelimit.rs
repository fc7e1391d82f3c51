//! Per-account rate limiting of token vending and key creation.
//!
//! The limiter sits behind [`RateLimiter`] so a shared (Redis-backed) limiter can replace the
//! in-process one without touching callers. [`LocalRateLimiter`] uses governor's GCRA (a
//! token bucket without a background refill task), keyed by account.

use std::num::NonZeroU32;
use std::time::Duration;

use async_trait::async_trait;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};

/// Decides whether an account may perform one more rate-limited operation now.
#[async_trait]
pub trait RateLimiter: Send + Sync + 'static {
    /// `Err(wait)` if the account must wait before trying again.
    async fn acquire(&self, account: &str) -> Result<(), Duration>;
}

/// No limit (benchmarks, or `--vend-rate 0`).
#[derive(Debug, Default)]
pub struct Unlimited;

#[async_trait]
impl RateLimiter for Unlimited {
    async fn acquire(&self, _account: &str) -> Result<(), Duration> {
        Ok(())
    }
}

/// An in-process limiter: `per_second` sustained, up to `burst` at once, per account.
pub struct LocalRateLimiter {
    limiter: DefaultKeyedRateLimiter<String>,
    clock: DefaultClock,
}

impl LocalRateLimiter {
    pub fn new(per_second: NonZeroU32, burst: NonZeroU32) -> Self {
        LocalRateLimiter {
            limiter: governor::RateLimiter::keyed(Quota::per_second(per_second).allow_burst(burst)),
            clock: DefaultClock::default(),
        }
    }
}

#[async_trait]
impl RateLimiter for LocalRateLimiter {
    async fn acquire(&self, account: &str) -> Result<(), Duration> {
        // governor's keyed store needs an owned key; accounts are few and short.
        self.limiter
            .check_key(&account.to_owned())
            .map_err(|not_until| not_until.wait_time_from(self.clock.now()))
    }
}

const GCRA: &str = include_str!("store/redis/scripts/gcra.lua");

/// A limiter shared by every node of every cell: a GCRA bucket per account in Redis (the
/// primary), using Redis's clock so nodes' clocks do not matter. If Redis cannot be reached it
/// falls back to a local limiter with the same quota, so vending (which needs no store write)
/// keeps working, limited per node, through an outage.
pub struct RedisRateLimiter {
    conn: crate::store::link::Link,
    keys: crate::store::redis::Keys,
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
        conn: crate::store::link::Link,
        keys: crate::store::redis::Keys,
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
    conn: crate::store::link::Link,
    keys: crate::store::redis::Keys,
    bucket: &'static str,
    per_second: u32,
    burst: u32,
) -> Box<dyn RateLimiter> {
    match quota(per_second, burst) {
        Some((rate, burst)) => Box::new(RedisRateLimiter::new(conn, keys, bucket, rate, burst)),
        None => Box::new(Unlimited),
    }
}

/// Builds the limiter for a configured rate: 0 means unlimited.
pub fn from_config(per_second: u32, burst: u32) -> Box<dyn RateLimiter> {
    match quota(per_second, burst) {
        None => Box::new(Unlimited),
        Some((rate, burst)) => Box::new(LocalRateLimiter::new(rate, burst)),
    }
}

/// The one reading of `--*-rate` and `--*-burst`, for the embedded and the shared limiter
/// alike: rate 0 is unlimited (`None`); burst 0 allows one second's worth.
fn quota(per_second: u32, burst: u32) -> Option<(NonZeroU32, NonZeroU32)> {
    let rate = NonZeroU32::new(per_second)?;
    Some((rate, NonZeroU32::new(burst).unwrap_or(rate)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_limiters_read_rate_and_burst_alike() {
        let n = |v| NonZeroU32::new(v);
        assert_eq!(quota(0, 10), None, "rate 0 is unlimited");
        assert_eq!(quota(5, 0), n(5).zip(n(5)), "burst 0: one second's worth");
        assert_eq!(quota(5, 10), n(5).zip(n(10)));
    }

    #[tokio::test]
    async fn burst_then_refusal_with_a_wait_per_account() {
        let limiter = from_config(5, 3);
        for _ in 0..3 {
            assert!(limiter.acquire("a").await.is_ok());
        }
        let wait = limiter
            .acquire("a")
            .await
            .expect_err("fourth call within the burst window");
        assert!(
            wait > Duration::ZERO && wait <= Duration::from_millis(200),
            "{wait:?}"
        );
        // Another account has its own bucket.
        assert!(limiter.acquire("b").await.is_ok());
    }

    #[tokio::test]
    async fn zero_rate_means_unlimited() {
        let limiter = from_config(0, 0);
        for _ in 0..1000 {
            assert!(limiter.acquire("a").await.is_ok());
        }
    }
}
