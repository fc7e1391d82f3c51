//! The cache of verified credentials: bounded in bytes, each entry's verdict valid for one
//! generation of its account in the view.

use std::sync::Arc;

use arc_swap::ArcSwap;

use crate::credential::{Credential, CredentialError};
use crate::policy::PermissionSet;

use super::view::{Shard, Stamp};
use super::ENTRY_OVERHEAD_BYTES;

/// What a credential may do, as resolved against the view: its own set and its bound.
pub(super) type Resolution =
    Result<(Arc<PermissionSet>, Option<Arc<PermissionSet>>), CredentialError>;

/// A verdict about a cached credential, valid while its account's stamp stays `stamp`.
pub(super) struct Resolved {
    pub(super) stamp: Stamp,
    pub(super) outcome: Resolution,
}

/// Weighs cache entries in bytes (see the module docs).
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct EntryWeighter;

impl quick_cache::Weighter<Box<str>, Arc<Entry>> for EntryWeighter {
    fn weight(&self, key: &Box<str>, _entry: &Arc<Entry>) -> u64 {
        (key.len() as u64).saturating_mul(2) + ENTRY_OVERHEAD_BYTES
    }
}

pub(super) type CredentialCache = quick_cache::sync::Cache<Box<str>, Arc<Entry>, EntryWeighter>;

pub(super) fn new_cache(bytes: u64) -> CredentialCache {
    let bytes = bytes.max(ENTRY_OVERHEAD_BYTES * 16);
    // The item estimate only sizes the initial tables; the byte budget is the bound.
    let estimated_items = usize::try_from(bytes / 1024).unwrap_or(usize::MAX).max(16);
    quick_cache::sync::Cache::with_weighter(estimated_items, bytes, EntryWeighter)
}

pub(super) struct Entry {
    pub(super) credential: Arc<Credential>,
    /// The view's generation counter of the credential's account.
    pub(super) shard: Shard,
    pub(super) resolved: ArcSwap<Resolved>,
}
