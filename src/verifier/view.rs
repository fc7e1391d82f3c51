//! The live view: the part of the state every check consults, held in process memory.
//!
//! It holds revoked credential ids, revoked token ids, per-account issued-before watermarks and
//! custom roles' permission sets. Stores feed it [`Event`]s: the embedded store applies each
//! mutation's event in the same critical section as the mutation; a Redis-backed node applies
//! the events it tails from its cell's replica. A check never waits on the store.

use std::collections::{HashMap, HashSet};
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::policy::{KeyPolicy, PermissionSet};

/// A change to the live view. Every store mutation that affects checks produces one.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Event {
    /// An API key or a disposable token (by jti) of the account is revoked. With `by`, the
    /// revocation is scoped: it applies only to a credential that has the key `by` among its
    /// ancestors (a key may revoke what it made, and nothing else; see
    /// [`crate::authority::Authority::revoke_token`]).
    CredentialRevoked {
        account: String,
        id: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        by: Option<String>,
    },
    /// Disposable tokens are revoked by their caller-chosen token id until `until` (epoch
    /// seconds), then the revocation is dropped everywhere. With `by`, only tokens that have
    /// the key `by` among their ancestors are affected.
    TokenIdRevoked {
        account: String,
        token_id: String,
        until: u64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        by: Option<String>,
    },
    /// Every credential of the account whose chain was issued before `before_ms` (epoch
    /// milliseconds) is revoked.
    IssuedBefore { account: String, before_ms: u64 },
    /// A custom role was created or changed.
    RoleSet {
        account: String,
        role_id: String,
        permissions: PermissionSet,
    },
    /// A custom role was deleted.
    RoleDeleted { account: String, role_id: String },
    /// The account's key policy was set (an empty one clears it).
    KeyPolicySet { account: String, policy: KeyPolicy },
}

impl Event {
    /// The account the event belongs to.
    pub fn account(&self) -> &str {
        match self {
            Event::CredentialRevoked { account, .. }
            | Event::TokenIdRevoked { account, .. }
            | Event::IssuedBefore { account, .. }
            | Event::RoleSet { account, .. }
            | Event::RoleDeleted { account, .. }
            | Event::KeyPolicySet { account, .. } => account,
        }
    }
}

pub use crate::credential::CredentialId;

/// A token-id revocation: until when, and whose tokens (`None`: every token of the account).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct TokenIdRevocation {
    until: u64,
    by: Option<u128>,
}

/// Everything the view knows about one account. Revocations are scoped by account, so one
/// account can never revoke (or probe) another's credentials, and lookups by `&str` need no
/// allocation.
#[derive(Default)]
struct AccountState {
    revoked: HashSet<u128>,
    revoked_other: HashSet<Box<str>>,
    /// Scoped revocations: credential id -> the keys whose descendants it is revoked for.
    revoked_scoped: HashMap<u128, Vec<u128>>,
    revoked_token_ids: HashMap<String, Vec<TokenIdRevocation>>,
    /// Issued-before watermark, epoch milliseconds.
    watermark_ms: u64,
    roles: HashMap<String, Arc<PermissionSet>>,
    /// The key policy, when the account has one.
    key_policy: Option<Arc<KeyPolicy>>,
}

impl AccountState {
    /// Adds every revocation of `other` (a union: revocations are only ever added).
    fn absorb_revocations(&mut self, other: AccountState) {
        self.revoked.extend(other.revoked);
        self.revoked_other.extend(other.revoked_other);
        for (id, by) in other.revoked_scoped {
            let entry = self.revoked_scoped.entry(id).or_default();
            for b in by {
                if !entry.contains(&b) {
                    entry.push(b);
                }
            }
        }
        for (token_id, entries) in other.revoked_token_ids {
            for e in entries {
                add_token_id_revocation(
                    self.revoked_token_ids.entry(token_id.clone()).or_default(),
                    e,
                );
            }
        }
        self.watermark_ms = self.watermark_ms.max(other.watermark_ms);
    }
}

/// Adds a token-id revocation; one of the same scope keeps the later `until` (a revocation is
/// never shortened).
fn add_token_id_revocation(entries: &mut Vec<TokenIdRevocation>, new: TokenIdRevocation) {
    match entries.iter_mut().find(|e| e.by == new.by) {
        Some(e) => e.until = e.until.max(new.until),
        None => entries.push(new),
    }
}

fn uuid_of(id: &str) -> Option<u128> {
    uuid::Uuid::try_parse(id).ok().map(|u| u.as_u128())
}

/// How many generation counters the accounts are spread over (see [`Stamp`]).
const GENERATION_SHARDS: usize = 1024;

/// A counter alone on its cache lines: a storm of bumps to one account's counter must not
/// evict its neighbours' from the readers' caches.
#[derive(Default)]
#[repr(align(128))]
struct Padded(AtomicU64);

/// Which of the view's generation counters an account's changes bump. Computed once per
/// credential (when it is verified), kept beside it in the verifier's cache.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard(usize);

/// The view's generation as seen by one account: the view-wide epoch (bumped by a reload) and
/// the account's counter (bumped by every change to an account of its shard). A verdict about a
/// credential computed at stamp s stays valid while the stamp of its account is still s; a
/// revocation storm in another account bumps another counter (with 1 024 counters, two
/// accounts share one with odds of 1 in 1 024, and then only cost each other a re-resolve).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Stamp {
    epoch: u64,
    account: u64,
}

/// The live view. Reads vastly outnumber writes (every check reads; only revocations and role
/// changes write), so a reader-writer lock fits: checks share it and never block each other.
pub struct View {
    accounts: RwLock<HashMap<String, AccountState>>,
    /// Whether the view was ever loaded from the store. An empty, never-loaded view must not let
    /// revoked credentials through, so checks are refused until this is set.
    loaded: AtomicBool,
    /// The time (epoch ms, on the primary's clock) up to which the view is known to hold every
    /// change the primary had: the newest heartbeat stamp that came through the replica before
    /// the view had applied everything the replica held. `u64::MAX` for a view that is the
    /// system of record itself (embedded mode). Freshness is measured by data from the primary,
    /// not by whether the replica answers: a replica cut off from its primary keeps answering
    /// with old data, and its heartbeat stamp stops moving.
    fresh_as_of_ms: AtomicU64,
    /// Bumped by a reload. With `shards`, the generation (see [`Stamp`]): a verdict computed
    /// at stamp s stays valid while the stamp is still s, which lets the verifier skip the
    /// lookups on a cache hit without ever missing a revocation or role change.
    epoch: Padded,
    /// Per-account generations: every change to an account bumps its shard's counter.
    shards: Box<[Padded]>,
    /// Keyed at random per process, so nobody can choose account names that share a counter.
    shard_hasher: std::collections::hash_map::RandomState,
}

impl Default for View {
    fn default() -> Self {
        Self::new()
    }
}

impl View {
    /// A view that is itself the system of record (embedded store): always loaded and fresh.
    pub fn new() -> Self {
        View {
            accounts: RwLock::new(HashMap::new()),
            loaded: AtomicBool::new(true),
            fresh_as_of_ms: AtomicU64::new(u64::MAX),
            ..Self::tracked()
        }
    }

    /// A view fed from a remote store: not loaded until [`View::reload`] is first called.
    pub fn tracked() -> Self {
        View {
            accounts: RwLock::new(HashMap::new()),
            loaded: AtomicBool::new(false),
            fresh_as_of_ms: AtomicU64::new(0),
            epoch: Padded(AtomicU64::new(1)),
            shards: (0..GENERATION_SHARDS).map(|_| Padded::default()).collect(),
            shard_hasher: Default::default(),
        }
    }

    pub fn is_loaded(&self) -> bool {
        self.loaded.load(Ordering::Acquire)
    }

    /// Records that the view holds every change the primary had at `as_of_ms` (its clock).
    /// Freshness only moves forward.
    pub fn mark_fresh(&self, as_of_ms: u64) {
        let _ = self
            .fresh_as_of_ms
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |current| {
                (current != u64::MAX && as_of_ms > current).then_some(as_of_ms)
            });
    }

    /// How far behind the primary the view may be at `now_ms` (the primary's clock); zero for
    /// an embedded view.
    pub fn age(&self, now_ms: u64) -> Duration {
        match self.fresh_as_of_ms.load(Ordering::Acquire) {
            u64::MAX => Duration::ZERO,
            at => Duration::from_millis(now_ms.saturating_sub(at)),
        }
    }

    /// A full load or reload: applies `events` to an empty state, then takes its roles and adds
    /// every revocation the view already held (revocations are only ever added, so a reload
    /// from a source that lost some, such as a replica that restarted empty or a primary
    /// restored from an old backup, never resurrects a credential). Atomic for readers; marks
    /// the view loaded.
    pub fn reload(&self, events: impl IntoIterator<Item = Event>) {
        let mut fresh = HashMap::new();
        for event in events {
            apply_to(&mut fresh, &event);
        }
        let mut accounts = self.accounts.write().unwrap_or_else(|e| e.into_inner());
        for (name, old) in std::mem::take(&mut *accounts) {
            fresh.entry(name).or_default().absorb_revocations(old);
        }
        *accounts = fresh;
        self.epoch.0.fetch_add(1, Ordering::AcqRel);
        drop(accounts);
        self.loaded.store(true, Ordering::Release);
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<String, AccountState>> {
        // Each apply is a single insert or remove, so a panic elsewhere while the lock was held
        // cannot have left the maps half-updated: a poisoned lock is still safe to use.
        self.accounts.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Applies one event.
    pub fn apply(&self, event: &Event) {
        let mut accounts = self.accounts.write().unwrap_or_else(|e| e.into_inner());
        apply_to(&mut accounts, event);
        // Bumped while the write lock is held: a reader that saw the old stamp either ran its
        // lookups before this change or will recompute on its next check.
        self.bump(self.shard(event.account()));
    }

    /// Drops token-id revocations that ended at or before `now` (epoch seconds). Returns how
    /// many were dropped.
    pub fn prune_expired(&self, now: u64) -> usize {
        let mut accounts = self.accounts.write().unwrap_or_else(|e| e.into_inner());
        let mut dropped = 0;
        for (account, state) in accounts.iter_mut() {
            let mut here = 0;
            state.revoked_token_ids.retain(|_, entries| {
                let before = entries.len();
                entries.retain(|e| e.until > now);
                here += before - entries.len();
                !entries.is_empty()
            });
            if here > 0 {
                self.bump(self.shard(account));
            }
            dropped += here;
        }
        dropped
    }

    fn bump(&self, shard: Shard) {
        if let Some(counter) = self.shards.get(shard.0) {
            counter.0.fetch_add(1, Ordering::AcqRel);
        }
    }

    /// The generation counter `account`'s changes bump.
    pub fn shard(&self, account: &str) -> Shard {
        Shard((self.shard_hasher.hash_one(account) as usize) % self.shards.len().max(1))
    }

    /// The current stamp of the accounts of `shard` (see [`Stamp`]).
    pub fn stamp(&self, shard: Shard) -> Stamp {
        Stamp {
            epoch: self.epoch.0.load(Ordering::Acquire),
            account: self
                .shards
                .get(shard.0)
                .map_or(0, |c| c.0.load(Ordering::Acquire)),
        }
    }

    /// Whether the credential is revoked at `now` (epoch seconds): its chain issued before the
    /// account's watermark (`origin_issued_ms`, epoch ms), or any of `ids` (itself, then its
    /// ancestors, nearest first) revoked, or its token id revoked.
    pub fn is_revoked<'a>(
        &self,
        account: &str,
        origin_issued_ms: u64,
        ids: impl IntoIterator<Item = &'a String>,
        token_id: Option<&str>,
        now: u64,
    ) -> bool {
        let ids: Vec<CredentialId> = ids.into_iter().map(|id| CredentialId::parse(id)).collect();
        self.is_revoked_ids(account, origin_issued_ms, &ids, token_id, now)
    }

    /// [`View::is_revoked`] with ids already parsed (the hot path).
    pub fn is_revoked_ids(
        &self,
        account: &str,
        origin_issued_ms: u64,
        ids: &[CredentialId],
        token_id: Option<&str>,
        now: u64,
    ) -> bool {
        let accounts = self.read();
        let Some(state) = accounts.get(account) else {
            return false;
        };
        let has_ancestor = |from: usize, key: u128| {
            ids.get(from..)
                .is_some_and(|rest| rest.contains(&CredentialId::Uuid(key)))
        };
        origin_issued_ms < state.watermark_ms
            || ids.iter().enumerate().any(|(i, id)| match id {
                CredentialId::Uuid(u) => {
                    state.revoked.contains(u)
                        || state
                            .revoked_scoped
                            .get(u)
                            .is_some_and(|by| by.iter().any(|b| has_ancestor(i + 1, *b)))
                }
                CredentialId::Other(s) => state.revoked_other.contains(s),
            })
            || token_id
                .and_then(|tid| state.revoked_token_ids.get(tid))
                .is_some_and(|entries| {
                    entries
                        .iter()
                        .any(|e| e.until > now && e.by.is_none_or(|b| has_ancestor(1, b)))
                })
    }

    /// The account's issued-before watermark (epoch ms), if any.
    pub fn watermark(&self, account: &str) -> Option<u64> {
        self.read()
            .get(account)
            .map(|s| s.watermark_ms)
            .filter(|w| *w > 0)
    }

    /// A custom role's current permissions.
    pub fn role(&self, account: &str, role_id: &str) -> Option<Arc<PermissionSet>> {
        self.read().get(account)?.roles.get(role_id).cloned()
    }

    /// The account's key policy, when it has one.
    pub fn key_policy(&self, account: &str) -> Option<Arc<KeyPolicy>> {
        self.read().get(account)?.key_policy.clone()
    }

    /// Number of revoked ids and token ids held.
    pub fn revoked_len(&self) -> usize {
        self.read()
            .values()
            .map(|s| {
                s.revoked.len()
                    + s.revoked_other.len()
                    + s.revoked_scoped.len()
                    + s.revoked_token_ids.values().map(Vec::len).sum::<usize>()
            })
            .sum()
    }

    /// Whether a revocation of the same token id and scope as `event` is held (extending it
    /// adds nothing to count against a quota).
    pub fn has_token_id_revocation(&self, event: &Event) -> bool {
        let Event::TokenIdRevoked {
            account,
            token_id,
            by,
            ..
        } = event
        else {
            return false;
        };
        let by = by.as_deref().and_then(uuid_of);
        self.read()
            .get(account.as_str())
            .and_then(|s| s.revoked_token_ids.get(token_id))
            .is_some_and(|entries| entries.iter().any(|e| e.by == by))
    }

    /// Number of token-id revocations of the account in force at `now` (epoch seconds).
    pub fn token_id_revocations(&self, account: &str, now: u64) -> usize {
        self.read().get(account).map_or(0, |s| {
            s.revoked_token_ids
                .values()
                .flatten()
                .filter(|e| e.until > now)
                .count()
        })
    }
}

fn apply_to(accounts: &mut HashMap<String, AccountState>, event: &Event) {
    let state = match event {
        Event::RoleDeleted { account, .. } => match accounts.get_mut(account) {
            Some(state) => state,
            None => return,
        },
        other => accounts.entry(other.account().to_owned()).or_default(),
    };
    match event {
        Event::CredentialRevoked { id, by: None, .. } => {
            match CredentialId::parse(id) {
                CredentialId::Uuid(u) => state.revoked.insert(u),
                CredentialId::Other(s) => state.revoked_other.insert(s),
            };
        }
        Event::CredentialRevoked {
            id, by: Some(by), ..
        } => {
            // Scoped revocations name UUIDs on both sides (the store refuses anything else);
            // an unparsable one is dropped rather than widened into a revocation for everyone.
            if let (Some(id), Some(by)) = (uuid_of(id), uuid_of(by)) {
                let entry = state.revoked_scoped.entry(id).or_default();
                if !entry.contains(&by) {
                    entry.push(by);
                }
            }
        }
        Event::TokenIdRevoked {
            token_id,
            until,
            by,
            ..
        } => {
            let by = match by {
                None => None,
                Some(b) => match uuid_of(b) {
                    Some(u) => Some(u),
                    None => return,
                },
            };
            add_token_id_revocation(
                state.revoked_token_ids.entry(token_id.clone()).or_default(),
                TokenIdRevocation { until: *until, by },
            );
        }
        Event::IssuedBefore { before_ms, .. } => {
            state.watermark_ms = state.watermark_ms.max(*before_ms);
        }
        Event::RoleSet {
            role_id,
            permissions,
            ..
        } => {
            state
                .roles
                .insert(role_id.clone(), Arc::new(permissions.clone()));
        }
        Event::RoleDeleted { role_id, .. } => {
            state.roles.remove(role_id);
        }
        Event::KeyPolicySet { policy, .. } => {
            state.key_policy = (!policy.is_empty()).then(|| Arc::new(policy.clone()));
        }
    }
}
