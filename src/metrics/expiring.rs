//! `authcell_keys_expiring{account, within}`: live keys that lapse (expire, or a rotation
//! revokes them) within 1, 7 and 30 days, per account.
//!
//! Bounded label cardinality: at most [`MAX_ACCOUNTS`] accounts get their own series (those
//! with the most keys lapsing within 30 days, then by name); every other account is summed
//! into `account="(other)"`, a value no account can have (names are letters, digits, `_`, `-`
//! and `.`). So the gauge has at most `3 x (MAX_ACCOUNTS + 1)` series whatever the tenants do.
//!
//! Computed at scrape time from the store's lapse index (a window of it, not every key), at
//! most once per [`REFRESH`] per node; a scrape in between, or one while the store is
//! unreachable, serves the last figures. Every node reports the same figures (they come from
//! the shared store): aggregate with `max by (account, within)`, not `sum`.

use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use async_trait::async_trait;

/// The windows, as the `within` label says them.
pub const WINDOWS: [(&str, u64); 3] = [("1d", 86_400), ("7d", 7 * 86_400), ("30d", 30 * 86_400)];
/// Accounts with a series of their own.
pub const MAX_ACCOUNTS: usize = 100;
/// The account label of every other account's keys.
pub const OTHER: &str = "(other)";
/// The figures are recomputed at most this often.
pub const REFRESH: Duration = Duration::from_secs(30);
/// A recomputation that takes longer is abandoned (the last figures stay).
const TIMEOUT: Duration = Duration::from_secs(2);

/// Where the figures come from: every live key lapsing within a window, as (account, seconds
/// left).
#[async_trait]
pub trait LapsingKeys: Send + Sync {
    async fn lapsing_keys(&self, within: u64) -> Result<Vec<(String, u64)>, String>;
}

/// One series' counts, per window.
pub type Row = (String, [u64; 3]);

/// The gauge's figures and where to refresh them from.
#[derive(Default)]
pub struct ExpiringKeys {
    source: OnceLock<Arc<dyn LapsingKeys>>,
    rows: Mutex<Vec<Row>>,
    /// When the last refresh started (`None`: never).
    refreshed: Mutex<Option<Instant>>,
}

impl std::fmt::Debug for ExpiringKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ExpiringKeys")
    }
}

impl ExpiringKeys {
    /// Sets the source (once; later calls are ignored).
    pub fn set_source(&self, source: Arc<dyn LapsingKeys>) {
        let _ = self.source.set(source);
    }

    /// The current figures.
    pub fn rows(&self) -> Vec<Row> {
        self.rows.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Recomputes the figures if the last refresh is older than [`REFRESH`] (one caller at a
    /// time does it; the others keep the last figures).
    pub async fn refresh(&self) {
        let Some(source) = self.source.get() else {
            return;
        };
        {
            let mut refreshed = self.refreshed.lock().unwrap_or_else(|e| e.into_inner());
            if refreshed.is_some_and(|at| at.elapsed() < REFRESH) {
                return;
            }
            *refreshed = Some(Instant::now());
        }
        let longest = WINDOWS[WINDOWS.len() - 1].1;
        match tokio::time::timeout(TIMEOUT, source.lapsing_keys(longest)).await {
            Ok(Ok(keys)) => {
                *self.rows.lock().unwrap_or_else(|e| e.into_inner()) = bucket(keys);
            }
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "cannot count expiring keys; serving the last figures")
            }
            Err(_) => tracing::warn!(
                "counting expiring keys took over {TIMEOUT:?}; serving the last figures"
            ),
        }
    }
}

/// Counts keys per account and window; keeps the [`MAX_ACCOUNTS`] accounts with the most keys
/// in the longest window and sums the rest into [`OTHER`].
pub fn bucket(keys: Vec<(String, u64)>) -> Vec<Row> {
    let mut per_account: std::collections::HashMap<String, [u64; 3]> = Default::default();
    for (account, left) in keys {
        let counts = per_account.entry(account).or_default();
        for (i, (_, window)) in WINDOWS.iter().enumerate() {
            if left <= *window {
                counts[i] += 1;
            }
        }
    }
    let mut rows: Vec<Row> = per_account.into_iter().collect();
    rows.sort_by(|a, b| b.1[2].cmp(&a.1[2]).then_with(|| a.0.cmp(&b.0)));
    if rows.len() > MAX_ACCOUNTS {
        let rest = rows.split_off(MAX_ACCOUNTS);
        let mut other = [0u64; 3];
        for (_, counts) in rest {
            for (o, c) in other.iter_mut().zip(counts) {
                *o += c;
            }
        }
        rows.push((OTHER.to_owned(), other));
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_counted_in_every_window_they_fall_in() {
        let rows = bucket(vec![
            ("a".into(), 3_600),
            ("a".into(), 3 * 86_400),
            ("a".into(), 20 * 86_400),
            ("b".into(), 29 * 86_400),
        ]);
        assert_eq!(rows, vec![("a".into(), [1, 2, 3]), ("b".into(), [0, 0, 1])]);
    }

    #[test]
    fn accounts_beyond_the_bound_are_summed_into_other() {
        let mut keys = Vec::new();
        for i in 0..MAX_ACCOUNTS + 50 {
            // Account i has i + 1 keys lapsing within a day.
            for _ in 0..=i {
                keys.push((format!("acct-{i:04}"), 60));
            }
        }
        let rows = bucket(keys);
        assert_eq!(rows.len(), MAX_ACCOUNTS + 1);
        // The biggest accounts keep their series; the 50 smallest are summed.
        assert_eq!(rows[0].0, format!("acct-{:04}", MAX_ACCOUNTS + 49));
        let (label, other) = rows.last().expect("other");
        assert_eq!(label, OTHER);
        assert_eq!(other[0], (1..=50).sum::<u64>());
    }
}
