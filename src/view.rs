//! The live view: the part of the state every check consults, held in process memory.
//!
//! It holds revoked credential ids, revoked token ids, per-account issued-before watermarks and
//! custom roles' permission sets. Stores feed it [`Event`]s: the embedded store applies each
//! mutation's event in the same critical section as the mutation; a Redis-backed node applies
//! the events it tails from its cell's replica. A check never waits on the store.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, RwLock};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::permissions::PermissionSet;

/// A change to the live view. Every store mutation that affects checks produces one.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Event {
    /// An API key or a disposable token (by jti) of the account is revoked.
    CredentialRevoked { account: String, id: String },
    /// A disposable token is revoked by its caller-chosen token id.
    TokenIdRevoked { account: String, token_id: String },
    /// Every credential of the account issued before `before` is revoked.
    IssuedBefore { account: String, before: u64 },
    /// A custom role was created or changed.
    RoleSet {
        account: String,
        role_id: String,
        permissions: PermissionSet,
    },
    /// A custom role was deleted.
    RoleDeleted { account: String, role_id: String },
}

/// A credential id as the view stores it: ids authcell mints are UUIDs, held as 16 bytes (a
/// million revocations cost tens of megabytes, not hundreds); anything else is kept as text.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum CredentialId {
    Uuid(u128),
    Other(Box<str>),
}

impl CredentialId {
    pub fn parse(id: &str) -> Self {
        match uuid::Uuid::try_parse(id) {
            Ok(u) => CredentialId::Uuid(u.as_u128()),
            Err(_) => CredentialId::Other(id.into()),
        }
    }
}

/// Everything the view knows about one account. Revocations are scoped by account, so one
/// account can never revoke (or probe) another's credentials, and lookups by `&str` need no
/// allocation.
#[derive(Default)]
struct AccountState {
    revoked: HashSet<u128>,
    revoked_other: HashSet<Box<str>>,
    revoked_token_ids: HashSet<String>,
    watermark: u64,
    roles: HashMap<String, Arc<PermissionSet>>,
}

/// The live view. Reads vastly outnumber writes (every check reads; only revocations and role
/// changes write), so a reader-writer lock fits: checks share it and never block each other.
pub struct View {
    accounts: RwLock<HashMap<String, AccountState>>,
    /// Whether the view was ever loaded from the store. An empty, never-loaded view must not let
    /// revoked credentials through, so checks are refused until this is set.
    loaded: AtomicBool,
    /// Milliseconds (since [`epoch`]) of the last successful sync with the store, or
    /// `u64::MAX` for a view that is the system of record itself (embedded mode).
    synced_at_ms: AtomicU64,
    /// Bumped by every change. A verdict computed at generation g stays valid while the
    /// generation is still g, which lets the verifier skip the lookups on a cache hit without
    /// ever missing a revocation or role change.
    generation: AtomicU64,
}

impl Default for View {
    fn default() -> Self {
        Self::new()
    }
}

/// A process-local monotonic origin for sync times.
fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

fn now_ms() -> u64 {
    u64::try_from(epoch().elapsed().as_millis()).unwrap_or(u64::MAX - 1)
}

impl View {
    /// A view that is itself the system of record (embedded store): always loaded and fresh.
    pub fn new() -> Self {
        View {
            accounts: RwLock::new(HashMap::new()),
            loaded: AtomicBool::new(true),
            synced_at_ms: AtomicU64::new(u64::MAX),
            generation: AtomicU64::new(1),
        }
    }

    /// A view fed from a remote store: not loaded until [`View::replace`] is first called.
    pub fn tracked() -> Self {
        View {
            accounts: RwLock::new(HashMap::new()),
            loaded: AtomicBool::new(false),
            synced_at_ms: AtomicU64::new(0),
            generation: AtomicU64::new(1),
        }
    }

    pub fn is_loaded(&self) -> bool {
        self.loaded.load(Ordering::Acquire)
    }

    /// Records a successful sync with the store now.
    pub fn mark_synced(&self) {
        if self.synced_at_ms.load(Ordering::Relaxed) != u64::MAX {
            self.synced_at_ms.store(now_ms(), Ordering::Release);
        }
    }

    /// Time since the last successful sync; zero for an embedded view.
    pub fn age(&self) -> Duration {
        match self.synced_at_ms.load(Ordering::Acquire) {
            u64::MAX => Duration::ZERO,
            at => Duration::from_millis(now_ms().saturating_sub(at)),
        }
    }

    /// Replaces the whole state by the result of applying `events` to an empty view (a full
    /// load or reload), atomically for readers, and marks the view loaded and synced.
    pub fn replace(&self, events: impl IntoIterator<Item = Event>) {
        let mut fresh = HashMap::new();
        for event in events {
            apply_to(&mut fresh, &event);
        }
        let mut accounts = self.accounts.write().unwrap_or_else(|e| e.into_inner());
        *accounts = fresh;
        self.generation.fetch_add(1, Ordering::AcqRel);
        drop(accounts);
        self.loaded.store(true, Ordering::Release);
        self.mark_synced();
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
        // Bumped while the write lock is held: a reader that saw the old generation either ran
        // its lookups before this change or will recompute on its next check.
        self.generation.fetch_add(1, Ordering::AcqRel);
    }

    /// The current generation (see the field's doc).
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Whether the credential is revoked: issued (along its chain) before the account's
    /// watermark, or any of `ids` (itself and its ancestors) revoked, or its token id revoked.
    pub fn is_revoked<'a>(
        &self,
        account: &str,
        origin_issued_at: u64,
        ids: impl IntoIterator<Item = &'a String>,
        token_id: Option<&str>,
    ) -> bool {
        let ids: Vec<CredentialId> = ids.into_iter().map(|id| CredentialId::parse(id)).collect();
        self.is_revoked_ids(account, origin_issued_at, &ids, token_id)
    }

    /// [`View::is_revoked`] with ids already parsed (the hot path).
    pub fn is_revoked_ids(
        &self,
        account: &str,
        origin_issued_at: u64,
        ids: &[CredentialId],
        token_id: Option<&str>,
    ) -> bool {
        let accounts = self.read();
        let Some(state) = accounts.get(account) else {
            return false;
        };
        origin_issued_at < state.watermark
            || ids.iter().any(|id| match id {
                CredentialId::Uuid(u) => state.revoked.contains(u),
                CredentialId::Other(s) => state.revoked_other.contains(s),
            })
            || token_id.is_some_and(|tid| state.revoked_token_ids.contains(tid))
    }

    /// The account's issued-before watermark, if any.
    pub fn watermark(&self, account: &str) -> Option<u64> {
        self.read()
            .get(account)
            .map(|s| s.watermark)
            .filter(|w| *w > 0)
    }

    /// A custom role's current permissions.
    pub fn role(&self, account: &str, role_id: &str) -> Option<Arc<PermissionSet>> {
        self.read().get(account)?.roles.get(role_id).cloned()
    }

    /// Number of revoked ids and token ids held.
    pub fn revoked_len(&self) -> usize {
        self.read()
            .values()
            .map(|s| s.revoked.len() + s.revoked_other.len() + s.revoked_token_ids.len())
            .sum()
    }
}

fn apply_to(accounts: &mut HashMap<String, AccountState>, event: &Event) {
    match event {
        Event::CredentialRevoked { account, id } => {
            let state = accounts.entry(account.clone()).or_default();
            match CredentialId::parse(id) {
                CredentialId::Uuid(u) => state.revoked.insert(u),
                CredentialId::Other(s) => state.revoked_other.insert(s),
            };
        }
        Event::TokenIdRevoked { account, token_id } => {
            accounts
                .entry(account.clone())
                .or_default()
                .revoked_token_ids
                .insert(token_id.clone());
        }
        Event::IssuedBefore { account, before } => {
            let state = accounts.entry(account.clone()).or_default();
            state.watermark = state.watermark.max(*before);
        }
        Event::RoleSet {
            account,
            role_id,
            permissions,
        } => {
            accounts
                .entry(account.clone())
                .or_default()
                .roles
                .insert(role_id.clone(), Arc::new(permissions.clone()));
        }
        Event::RoleDeleted { account, role_id } => {
            if let Some(state) = accounts.get_mut(account) {
                state.roles.remove(role_id);
            }
        }
    }
}
