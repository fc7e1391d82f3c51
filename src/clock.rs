//! Time as a parameter: logic asks a [`Clock`] for "now" instead of reading the system clock,
//! so expiry and revocation windows are tested by moving a [`ManualClock`].
//!
//! # One clock for every cell
//!
//! Revocation by time ("everything issued before now") compares issue times stamped by many
//! nodes in many cells with a cut made by one of them. If each node stamped its own wall clock,
//! a node whose clock runs a minute fast would mint credentials that survive every cut for that
//! minute (and a node running slow would have its fresh credentials killed by an older cut). So
//! a Redis-backed node never stamps its own wall clock: it keeps a [`PrimaryClock`], an
//! estimate of the Redis primary's clock (the one clock every cut is made with, in the
//! revocation script), measured with `TIME` on every heartbeat. The estimate is a lower bound of
//! the primary's true time (see [`PrimaryClock::record`]), so a credential's stamp is never later
//! than the moment it was really minted: no credential minted before a cut can carry a stamp
//! after it.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// A source of the current time since the Unix epoch.
pub trait Clock: Send + Sync + 'static {
    /// Milliseconds since the epoch.
    fn now_ms(&self) -> u64;

    /// Whole seconds since the epoch.
    fn now(&self) -> u64 {
        self.now_ms() / 1000
    }

    /// How far this machine's clock is behind the clock this one follows, in ms (the Redis
    /// primary's, for a [`PrimaryClock`]); 0 for a clock that follows no other.
    fn skew_ms(&self) -> i64 {
        0
    }
}

/// The real wall clock of this machine.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> u64 {
        wall_ms()
    }
}

/// Wall-clock milliseconds of this machine.
pub fn wall_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// A clock that only moves when told to (tests).
#[derive(Debug)]
pub struct ManualClock(AtomicU64);

impl ManualClock {
    /// Starts at `now` whole seconds.
    pub fn new(now: u64) -> Self {
        ManualClock(AtomicU64::new(now.saturating_mul(1000)))
    }
    /// Starts at the current wall-clock second.
    pub fn starting_now() -> Self {
        Self::new(SystemClock.now())
    }
    pub fn advance(&self, seconds: u64) {
        self.0
            .fetch_add(seconds.saturating_mul(1000), Ordering::SeqCst);
    }
    pub fn advance_ms(&self, ms: u64) {
        self.0.fetch_add(ms, Ordering::SeqCst);
    }
    pub fn set(&self, now: u64) {
        self.0.store(now.saturating_mul(1000), Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }
}

/// How many recent measurements the offset is taken from.
const SAMPLES: usize = 8;

/// An estimate of the Redis primary's clock, kept by a Redis-backed node (see the module docs).
///
/// Time is read from this process's monotonic clock (which no NTP step or `date` moves) plus an
/// offset to the primary's clock. Until the first measurement it falls back to the wall clock.
#[derive(Debug)]
pub struct PrimaryClock {
    origin: Instant,
    /// Primary microseconds minus monotonic microseconds since `origin`; `i64::MIN` until the
    /// first measurement.
    offset_us: AtomicI64,
    /// The last few lower bounds of the offset: the best (largest) one is used, and old ones age
    /// out so that drift of the monotonic clock is followed.
    samples: Mutex<VecDeque<i64>>,
    /// The primary's clock minus this machine's wall clock, in ms, at the last measurement (for
    /// metrics and the skew warning).
    skew_ms: AtomicI64,
}

impl Default for PrimaryClock {
    fn default() -> Self {
        Self::new()
    }
}

impl PrimaryClock {
    pub fn new() -> Self {
        PrimaryClock {
            origin: Instant::now(),
            offset_us: AtomicI64::new(i64::MIN),
            samples: Mutex::new(VecDeque::with_capacity(SAMPLES)),
            skew_ms: AtomicI64::new(0),
        }
    }

    fn mono_us(&self, at: Instant) -> i64 {
        i64::try_from(at.saturating_duration_since(self.origin).as_micros()).unwrap_or(i64::MAX)
    }

    /// Records one measurement: a request answered at `received` carried the primary's time
    /// `primary_us` (microseconds since the epoch, from `TIME`).
    ///
    /// The primary read its clock before `received`, so its offset is at least
    /// `primary_us - received`: using that lower bound, this clock never runs ahead of the
    /// primary's (it lags by up to one round trip, which only makes a stamp earlier).
    pub fn record(&self, received: Instant, primary_us: u64) {
        let lower = i64::try_from(primary_us)
            .unwrap_or(i64::MAX)
            .saturating_sub(self.mono_us(received));
        let best = {
            let mut samples = self.samples.lock().unwrap_or_else(|e| e.into_inner());
            if samples.len() == SAMPLES {
                samples.pop_front();
            }
            samples.push_back(lower);
            samples.iter().copied().max().unwrap_or(lower)
        };
        self.offset_us.store(best, Ordering::Release);
        let wall = i64::try_from(wall_ms()).unwrap_or(i64::MAX);
        let primary_ms = i64::try_from(primary_us / 1000).unwrap_or(i64::MAX);
        self.skew_ms
            .store(primary_ms.saturating_sub(wall), Ordering::Relaxed);
    }

    /// Whether at least one measurement was recorded.
    pub fn is_measured(&self) -> bool {
        self.offset_us.load(Ordering::Acquire) != i64::MIN
    }

    /// The primary's clock minus this machine's wall clock at the last measurement, in ms.
    pub fn skew_ms(&self) -> i64 {
        self.skew_ms.load(Ordering::Relaxed)
    }
}

impl Clock for PrimaryClock {
    fn skew_ms(&self) -> i64 {
        PrimaryClock::skew_ms(self)
    }

    fn now_ms(&self) -> u64 {
        match self.offset_us.load(Ordering::Acquire) {
            i64::MIN => wall_ms(),
            offset => {
                let us = self.mono_us(Instant::now()).saturating_add(offset);
                u64::try_from(us / 1000).unwrap_or(0)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_primary_clock_follows_the_primary_not_this_machine() {
        let clock = PrimaryClock::new();
        assert!(!clock.is_measured());
        let received = Instant::now() + Duration::from_millis(4);
        // The primary is 60 s ahead of this machine.
        let primary_us = (wall_ms() + 60_000) * 1000;
        clock.record(received, primary_us);
        assert!(clock.is_measured());
        let now = clock.now_ms();
        let diff = now as i64 - (wall_ms() as i64 + 60_000);
        assert!(
            diff.abs() < 1_000,
            "{diff} ms away from the primary's clock"
        );
        assert!((clock.skew_ms() - 60_000).abs() < 1_000);
    }

    #[test]
    fn the_estimate_is_the_best_lower_bound_of_recent_samples() {
        let clock = PrimaryClock::new();
        let t0 = Instant::now();
        let base = 1_000_000_000_000u64; // primary µs at t0
                                         // A slow round trip (the reply came 50 ms after the primary read its clock) ...
        clock.record(t0 + Duration::from_millis(60), base + 10_000);
        let slow = clock.offset_us.load(Ordering::Acquire);
        // ... then a fast one: a tighter (larger) lower bound wins.
        clock.record(t0 + Duration::from_millis(101), base + 100_500);
        let fast = clock.offset_us.load(Ordering::Acquire);
        assert!(fast > slow);
        // A later, looser sample does not loosen the estimate.
        clock.record(t0 + Duration::from_millis(290), base + 200_000);
        assert_eq!(clock.offset_us.load(Ordering::Acquire), fast);
    }

    #[test]
    fn manual_clocks_count_in_milliseconds() {
        let clock = ManualClock::new(100);
        assert_eq!(clock.now_ms(), 100_000);
        clock.advance_ms(1500);
        assert_eq!(clock.now(), 101);
        clock.advance(1);
        assert_eq!(clock.now_ms(), 102_500);
    }
}
