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
    /// An API key or a disposable token (by jti) is revoked.
    CredentialRevoked { id: String },
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

#[derive(Default)]
struct Inner {
    revoked: HashSet<String>,
    /// `account \u{0} token_id`
    revoked_token_ids: HashSet<String>,
    watermarks: HashMap<String, u64>,
    /// (account, role id) -> permissions
    roles: HashMap<(String, String), Arc<PermissionSet>>,
}

/// The live view. Reads vastly outnumber writes (every check reads; only revocations and role
/// changes write), so a reader-writer lock fits: checks share it and never block each other.
#[derive(Default)]
pub struct View {
    inner: RwLock<Inner>,
}

fn token_id_key(account: &str, token_id: &str) -> String {
    format!("{account}\u{0}{token_id}")
}

impl View {
    pub fn new() -> Self {
        Self::default()
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Inner> {
        // A panic while holding the lock cannot leave the maps half-updated (each apply is a
        // single insert or remove), so a poisoned lock is still safe to use.
        self.inner.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Applies one event.
    pub fn apply(&self, event: &Event) {
        let mut inner = self.inner.write().unwrap_or_else(|e| e.into_inner());
        match event {
            Event::CredentialRevoked { id } => {
                inner.revoked.insert(id.clone());
            }
            Event::TokenIdRevoked { account, token_id } => {
                inner.revoked_token_ids.insert(token_id_key(account, token_id));
            }
            Event::IssuedBefore { account, before } => {
                let mark = inner.watermarks.entry(account.clone()).or_insert(0);
                *mark = (*mark).max(*before);
            }
            Event::RoleSet {
                account,
                role_id,
                permissions,
            } => {
                inner.roles.insert(
                    (account.clone(), role_id.clone()),
                    Arc::new(permissions.clone()),
                );
            }
            Event::RoleDeleted { account, role_id } => {
                inner.roles.remove(&(account.clone(), role_id.clone()));
            }
        }
    }

    /// Whether any of `ids` is revoked, or the token id is, or the issue time is before the
    /// account's watermark.
    pub fn is_revoked<'a>(
        &self,
        account: &str,
        issued_at: u64,
        ids: impl IntoIterator<Item = &'a String>,
        token_id: Option<&str>,
    ) -> bool {
        let inner = self.read();
        if inner
            .watermarks
            .get(account)
            .is_some_and(|mark| issued_at < *mark)
        {
            return true;
        }
        if ids.into_iter().any(|id| inner.revoked.contains(id)) {
            return true;
        }
        token_id.is_some_and(|tid| {
            inner
                .revoked_token_ids
                .contains(&token_id_key(account, tid))
        })
    }

    /// The account's issued-before watermark, if any.
    pub fn watermark(&self, account: &str) -> Option<u64> {
        self.read().watermarks.get(account).copied()
    }

    /// A custom role's current permissions.
    pub fn role(&self, account: &str, role_id: &str) -> Option<Arc<PermissionSet>> {
        self.read()
            .roles
            .get(&(account.to_owned(), role_id.to_owned()))
            .cloned()
    }

    /// Number of revoked ids held.
    pub fn revoked_len(&self) -> usize {
        let inner = self.read();
        inner.revoked.len() + inner.revoked_token_ids.len()
    }
}
