//! Per-account rate limiting of token vending and key creation.
//!
//! The limiter sits behind [`RateLimiter`] so the shared limiter ([`crate::store::redis::limiter`],
//! buckets on the primary) can replace the in-process one without touching callers. [`LocalRateLimiter`] uses governor's GCRA (a
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

/// Builds the limiter for a configured rate: 0 means unlimited.
pub fn from_config(per_second: u32, burst: u32) -> Box<dyn RateLimiter> {
    match quota(per_second, burst) {
        None => Box::new(Unlimited),
        Some((rate, burst)) => Box::new(LocalRateLimiter::new(rate, burst)),
    }
}

/// The one reading of `--*-rate` and `--*-burst`, for the embedded and the shared limiter
/// alike: rate 0 is unlimited (`None`); burst 0 allows one second's worth.
pub(crate) fn quota(per_second: u32, burst: u32) -> Option<(NonZeroU32, NonZeroU32)> {
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
