//! The shared rate limiter: one GCRA bucket per account and operation kind on the primary, so
//! every node of every cell draws from the same budget.
//!
//! # Budget shares: no round trip to the primary per call
//!
//! A cell may be a region away from the primary. Asking the primary's bucket on every vend
//! would add a WAN round trip to each GenerateDisposableToken there. So a node *leases* tokens
//! from the shared bucket a few at a time ([`LeasedRateLimiter`]): a call spends a token held
//! locally, and when the node's share runs low it takes the next share in the background,
//! before it is needed. A call waits on the primary only when the node holds nothing (its
//! first call for an account, or a share that ran out faster than a round trip).
//!
//! The limit stays global: every token a node spends was taken from the shared bucket first,
//! under the shared bucket's rate and burst. What a share changes is *when* a token counts: a
//! node may spend tokens it took before a window began: those it held then (at most
//! `2 x share`) and those of the one background take that may be in flight (at most `share`;
//! calls that find nothing held take one token for themselves, which counts when taken). A
//! share is `rate / 5`, at least 1 and at most half the burst. So over any window of T seconds
//! the tokens spent across C nodes are at most `rate x T + burst + C x 3 x share`; for the
//! default 5/s and burst 10 the share is 1 and the tolerance 3 tokens per node. Tokens not
//! spent within [`LEASE_TTL`] of the last take that brought any are dropped (never hoarded), so
//! a node that goes quiet costs the others at most one or two shares for a second.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;

use super::link::Link;
use super::Keys;
use crate::store::limiter::{quota, LocalRateLimiter, RateLimiter, Unlimited};

const GCRA: &str = include_str!("scripts/gcra.lua");

/// How long a leased token may wait to be spent.
pub const LEASE_TTL: Duration = Duration::from_secs(1);
/// Accounts whose leases a node keeps before it drops the expired ones.
const MAX_LEASES: usize = 10_000;

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

    /// Takes up to `want` tokens of the account's bucket: how many it got, or how long to wait
    /// for one.
    async fn take(&self, account: &str, want: u32) -> redis::RedisResult<Result<u32, Duration>> {
        let (taken, wait_ms): (u32, u64) = self
            .script
            .key(self.keys.rate(&format!("{}{account}", self.bucket)))
            .arg(self.interval_ms)
            .arg(self.burst)
            .arg(want.max(1))
            .invoke_async(&mut self.conn.clone())
            .await?;
        Ok(if taken > 0 {
            Ok(taken)
        } else {
            Err(Duration::from_millis(wait_ms.max(1)))
        })
    }
}

#[async_trait]
impl RateLimiter for RedisRateLimiter {
    async fn acquire(&self, account: &str) -> Result<(), Duration> {
        match self.take(account, 1).await {
            Ok(taken) => taken.map(|_| ()),
            Err(e) => {
                tracing::warn!(error = %e, "shared rate limiter unreachable; limiting on this node");
                self.fallback.acquire(account).await
            }
        }
    }
}

/// A node's share of an account's budget.
#[derive(Debug)]
struct Lease {
    tokens: u32,
    expires: Instant,
    refilling: bool,
}

/// The shared limiter with budget shares (see the module docs).
pub struct LeasedRateLimiter {
    inner: Arc<Leases>,
}

struct Leases {
    shared: RedisRateLimiter,
    share: u32,
    leases: Mutex<LeaseMap>,
}

/// The leases by account, and when expired ones were last dropped.
struct LeaseMap {
    by_account: HashMap<String, Lease>,
    swept: Instant,
}

impl Leases {
    fn lock(&self) -> std::sync::MutexGuard<'_, LeaseMap> {
        // Every critical section leaves the map whole: a poisoned lock is still usable.
        self.leases.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds `taken` tokens to the account's share (at most two shares held), valid for
    /// [`LEASE_TTL`] from now.
    fn credit(&self, account: &str, taken: u32) {
        let now = Instant::now();
        let mut map = self.lock();
        // Past MAX_LEASES accounts, expired leases are dropped, at most once per LEASE_TTL (a
        // scan of the whole map under the lock every call would be a cliff at that scale): the
        // map holds the accounts active within about a second, plus those refilling.
        if map.by_account.len() >= MAX_LEASES && now.duration_since(map.swept) >= LEASE_TTL {
            map.swept = now;
            map.by_account.retain(|_, l| l.expires > now || l.refilling);
        }
        let lease = map.by_account.entry(account.to_owned()).or_insert(Lease {
            tokens: 0,
            expires: now,
            refilling: false,
        });
        let held = if lease.expires > now { lease.tokens } else { 0 };
        lease.tokens = held.saturating_add(taken).min(2 * self.share);
        // Only fresh tokens extend the lease: an empty answer does not keep old ones alive.
        if taken > 0 {
            lease.expires = now + LEASE_TTL;
        }
    }

    /// Takes the next share in the background.
    fn refill(self: &Arc<Self>, account: String) {
        let leases = self.clone();
        tokio::spawn(async move {
            let taken = match leases.shared.take(&account, leases.share).await {
                Ok(Ok(taken)) => taken,
                Ok(Err(_)) => 0,
                Err(e) => {
                    tracing::debug!(error = %e, "cannot lease vending tokens in the background");
                    0
                }
            };
            leases.credit(&account, taken);
            if let Some(lease) = leases.lock().by_account.get_mut(&account) {
                lease.refilling = false;
            }
        });
    }
}

impl LeasedRateLimiter {
    pub fn new(shared: RedisRateLimiter, per_second: NonZeroU32, burst: NonZeroU32) -> Self {
        LeasedRateLimiter {
            inner: Arc::new(Leases {
                shared,
                share: share(per_second.get(), burst.get()),
                leases: Mutex::new(LeaseMap {
                    by_account: HashMap::new(),
                    swept: Instant::now(),
                }),
            }),
        }
    }
}

/// The tokens a node leases at a time: a fifth of a second's worth, at least 1, at most half
/// the burst.
pub fn share(per_second: u32, burst: u32) -> u32 {
    (per_second / 5).clamp(1, (burst / 2).max(1))
}

#[async_trait]
impl RateLimiter for LeasedRateLimiter {
    async fn acquire(&self, account: &str) -> Result<(), Duration> {
        let inner = &self.inner;
        let spent = {
            let now = Instant::now();
            let mut map = inner.lock();
            match map.by_account.get_mut(account) {
                Some(lease) if lease.expires > now && lease.tokens > 0 => {
                    lease.tokens -= 1;
                    let low = lease.tokens <= inner.share / 2 && !lease.refilling;
                    if low {
                        lease.refilling = true;
                    }
                    Some(low)
                }
                _ => None,
            }
        };
        match spent {
            Some(low) => {
                if low {
                    inner.refill(account.to_owned());
                }
                Ok(())
            }
            // Nothing held: ask the primary now (one round trip), one token for this call and
            // a share to hold.
            None => match inner.shared.take(account, inner.share + 1).await {
                Ok(Ok(taken)) => {
                    inner.credit(account, taken - 1);
                    Ok(())
                }
                Ok(Err(wait)) => Err(wait),
                Err(e) => {
                    tracing::warn!(error = %e, "shared rate limiter unreachable; limiting on this node");
                    inner.shared.fallback.acquire(account).await
                }
            },
        }
    }
}

/// Builds the shared limiter of one bucket for a configured rate: 0 means unlimited. The
/// vending bucket is leased in shares (see the module docs); the revocation bucket, whose calls
/// wait on the primary anyway, is asked on every call.
pub fn shared(
    conn: Link,
    keys: Keys,
    bucket: &'static str,
    per_second: u32,
    burst: u32,
) -> Box<dyn RateLimiter> {
    match quota(per_second, burst) {
        Some((rate, burst)) if bucket == VENDING => Box::new(LeasedRateLimiter::new(
            RedisRateLimiter::new(conn, keys, bucket, rate, burst),
            rate,
            burst,
        )),
        Some((rate, burst)) => Box::new(RedisRateLimiter::new(conn, keys, bucket, rate, burst)),
        None => Box::new(Unlimited),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_share_is_a_fifth_of_a_second_within_half_the_burst() {
        assert_eq!(share(5, 10), 1, "the defaults");
        assert_eq!(share(1, 3), 1);
        assert_eq!(share(40, 40), 8);
        assert_eq!(share(1000, 10), 5, "at most half the burst");
        assert_eq!(share(1000, 1), 1);
    }
}
