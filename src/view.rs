//! The live view: the part of the state every check consults, held in process memory.
//!
//! It holds revoked credential ids, revoked token ids, per-account issued-before watermarks and
//! custom roles' permission sets. Stores feed it [`Event`]s: the embedded store applies each
//! mutation's event in the same critical section as the mutation; a Redis-backed node applies
//! the events it tails from its cell's replica. A check never waits on the store.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, RwLock};

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

/// Everything the view knows about one account. Revocations are scoped by account, so one
/// account can never revoke (or probe) another's credentials, and lookups by `&str` need no
/// allocation.
#[derive(Default)]
struct AccountState {
    revoked: HashSet<String>,
    revoked_token_ids: HashSet<String>,
    watermark: u64,
    roles: HashMap<String, Arc<PermissionSet>>,
}

/// The live view. Reads vastly outnumber writes (every check reads; only revocations and role
/// changes write), so a reader-writer lock fits: checks share it and never block each other.
#[derive(Default)]
pub struct View {
    accounts: RwLock<HashMap<String, AccountState>>,
}

impl View {
    pub fn new() -> Self {
        Self::default()
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<String, AccountState>> {
        // Each apply is a single insert or remove, so a panic elsewhere while the lock was held
        // cannot have left the maps half-updated: a poisoned lock is still safe to use.
        self.accounts.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Applies one event.
    pub fn apply(&self, event: &Event) {
        let mut accounts = self.accounts.write().unwrap_or_else(|e| e.into_inner());
        match event {
            Event::CredentialRevoked { account, id } => {
                accounts
                    .entry(account.clone())
                    .or_default()
                    .revoked
                    .insert(id.clone());
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

    /// Whether the credential is revoked: issued (along its chain) before the account's
    /// watermark, or any of `ids` (itself and its ancestors) revoked, or its token id revoked.
    pub fn is_revoked<'a>(
        &self,
        account: &str,
        origin_issued_at: u64,
        ids: impl IntoIterator<Item = &'a String>,
        token_id: Option<&str>,
    ) -> bool {
        let accounts = self.read();
        let Some(state) = accounts.get(account) else {
            return false;
        };
        origin_issued_at < state.watermark
            || ids.into_iter().any(|id| state.revoked.contains(id))
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
            .map(|s| s.revoked.len() + s.revoked_token_ids.len())
            .sum()
    }
}
