//! The embedded store: all state in process memory, like a database's dev mode. Nothing
//! survives exit (startup says so). Each mutation and its view event happen under one lock, so
//! a revocation is visible to the very next check.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;

use super::{
    AuditQuery, AuditRecord, KeyRecord, Receipt, RoleRecord, Rotation, Store, StoreError,
    StoreResult,
};
use crate::policy::KeyPolicy;
use crate::verifier::view::{Event, View};

#[derive(Default)]
struct Data {
    accounts: HashSet<String>,
    /// account -> key id -> record; key ids are UUIDv7, so BTreeMap order is creation order.
    keys: HashMap<String, BTreeMap<String, KeyRecord>>,
    /// account -> role id -> record
    roles: HashMap<String, BTreeMap<String, RoleRecord>>,
    /// account -> audit events, oldest first, at most [`AUDIT_CAPACITY`].
    audit: HashMap<String, VecDeque<AuditRecord>>,
    /// Last audit id handed out, to keep ids strictly increasing within a millisecond.
    last_audit: (u64, u64),
    /// (account, request id) -> the receipt and when it is forgotten.
    receipts: HashMap<(String, String), (Receipt, std::time::Instant)>,
    /// account -> key policy (absent: none)
    policies: HashMap<String, KeyPolicy>,
    /// (account, key id) of keys whose `key.expiring` event was recorded.
    warned: HashSet<(String, String)>,
}

/// Audit events kept per account (oldest dropped first), like the capped Redis stream.
pub const AUDIT_CAPACITY: usize = 10_000;

impl Data {
    fn insert_key(&mut self, key: KeyRecord, audit: Option<&AuditRecord>) -> StoreResult<()> {
        // A key may not be bound to a custom role deleted meanwhile.
        if let Some(role_id) = key.role_id.as_deref() {
            let custom = crate::policy::system::permissions(role_id).is_none();
            let exists = self
                .roles
                .get(&key.account)
                .is_some_and(|roles| roles.contains_key(role_id));
            if custom && !exists {
                return Err(StoreError::NotFound(format!(
                    "role_id: no role {role_id:?} in this account"
                )));
            }
        }
        let keys = self.keys.entry(key.account.clone()).or_default();
        if keys.contains_key(&key.key_id) {
            return Err(StoreError::AlreadyExists(format!(
                "key {} already exists",
                key.key_id
            )));
        }
        // A new key is never revoked: revocation goes through revoke_key, which publishes it.
        let mut key = key;
        key.revoked_at = None;
        keys.insert(key.key_id.clone(), key);
        self.record(audit);
        Ok(())
    }

    fn record(&mut self, audit: Option<&AuditRecord>) {
        let Some(audit) = audit else { return };
        let ms = crate::clock::wall_ms();
        let (last_ms, last_seq) = self.last_audit;
        let (ms, seq) = if ms > last_ms {
            (ms, 0)
        } else {
            (last_ms, last_seq + 1)
        };
        self.last_audit = (ms, seq);
        let mut record = audit.clone();
        record.id = format!("{ms}-{seq}");
        record.at_ms = ms;
        let events = self.audit.entry(record.account.clone()).or_default();
        if events.len() >= AUDIT_CAPACITY {
            events.pop_front();
        }
        events.push_back(record);
    }
}

/// In-memory [`Store`].
pub struct MemoryStore {
    /// A std Mutex, not an async one: critical sections are short, never await, and include the
    /// view update, which is what makes mutation + event atomic here.
    data: Mutex<Data>,
    view: Arc<View>,
}

impl MemoryStore {
    /// Creates (`create`) or replaces a role, keeping names unique in the account, as the
    /// Redis store's PUT_ROLE script does.
    fn put_role(
        &self,
        role: RoleRecord,
        audit: Option<&AuditRecord>,
        create: bool,
    ) -> StoreResult<()> {
        let mut data = self.lock();
        let roles = data.roles.entry(role.account.clone()).or_default();
        match (create, roles.contains_key(&role.role_id)) {
            (true, true) => {
                return Err(StoreError::AlreadyExists(format!(
                    "role {} already exists",
                    role.role_id
                )))
            }
            (false, false) => {
                return Err(StoreError::NotFound(format!(
                    "role_id: no role {} in this account",
                    role.role_id
                )))
            }
            _ => {}
        }
        if roles
            .values()
            .any(|r| r.name == role.name && r.role_id != role.role_id)
        {
            return Err(StoreError::AlreadyExists(format!(
                "name: this account already has a role named {:?}",
                role.name
            )));
        }
        self.view.apply(&Event::RoleSet {
            account: role.account.clone(),
            role_id: role.role_id.clone(),
            permissions: role.permissions.clone(),
        });
        roles.insert(role.role_id.clone(), role);
        data.record(audit);
        Ok(())
    }

    pub fn new(view: Arc<View>) -> Self {
        MemoryStore {
            data: Mutex::new(Data::default()),
            view,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Data> {
        self.data.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The error for a full token-id revocation quota.
pub(crate) fn quota_exceeded(max_live: usize) -> StoreError {
    StoreError::QuotaExceeded(format!(
        "token_id: this account already has {max_live} token-id revocations in force (the limit); they end at their expires_at_epoch_seconds"
    ))
}

/// Placeholder in an audit record of an issued-before cut, replaced by the cut (epoch ms) once
/// the store has chosen it.
pub const CUT_PLACEHOLDER: &str = "@cut";

/// The audit record with the cut written in.
fn with_cut(audit: &AuditRecord, watermark: u64) -> AuditRecord {
    let mut audit = audit.clone();
    audit.target = audit
        .target
        .replace(CUT_PLACEHOLDER, &watermark.to_string());
    audit.detail = audit
        .detail
        .replace(CUT_PLACEHOLDER, &watermark.to_string());
    audit
}

fn is_live(key: &KeyRecord, now: u64) -> bool {
    key.revoked_at.is_none() && key.expires_at.is_none_or(|exp| exp > now)
}

#[async_trait]
impl Store for MemoryStore {
    async fn ensure_account(&self, account: &str, _now: u64) -> StoreResult<bool> {
        Ok(self.lock().accounts.insert(account.to_owned()))
    }

    async fn count_live_keys(&self, account: &str, now: u64) -> StoreResult<usize> {
        Ok(self
            .lock()
            .keys
            .get(account)
            .map(|keys| keys.values().filter(|k| is_live(k, now)).count())
            .unwrap_or(0))
    }

    async fn insert_key_once(
        &self,
        key: KeyRecord,
        audit: Option<&AuditRecord>,
        request_id: &str,
        receipt: &Receipt,
    ) -> StoreResult<Option<Receipt>> {
        let mut data = self.lock();
        let now = std::time::Instant::now();
        data.receipts.retain(|_, (_, until)| *until > now);
        let slot = (key.account.clone(), request_id.to_owned());
        if let Some((prior, _)) = data.receipts.get(&slot) {
            return Ok(Some(prior.clone()));
        }
        data.insert_key(key, audit)?;
        let until = now + std::time::Duration::from_secs(super::IDEMPOTENCY_TTL_SECS);
        data.receipts.insert(slot, (receipt.clone(), until));
        Ok(None)
    }

    async fn insert_key(&self, key: KeyRecord, audit: Option<&AuditRecord>) -> StoreResult<()> {
        self.lock().insert_key(key, audit)
    }

    async fn get_key(&self, account: &str, key_id: &str) -> StoreResult<Option<KeyRecord>> {
        Ok(self
            .lock()
            .keys
            .get(account)
            .and_then(|keys| keys.get(key_id))
            .cloned())
    }

    async fn list_keys(
        &self,
        account: &str,
        after: Option<&str>,
        limit: usize,
    ) -> StoreResult<Vec<KeyRecord>> {
        use std::ops::Bound;
        let data = self.lock();
        let Some(keys) = data.keys.get(account) else {
            return Ok(Vec::new());
        };
        let lower = match after {
            Some(after) => Bound::Excluded(after.to_owned()),
            None => Bound::Unbounded,
        };
        Ok(keys
            .range((lower, Bound::Unbounded))
            .take(limit)
            .map(|(_, k)| k.clone())
            .collect())
    }

    async fn revoke_key(
        &self,
        key: &KeyRecord,
        now: u64,
        audit: Option<&AuditRecord>,
    ) -> StoreResult<(KeyRecord, Option<String>)> {
        let (account, key_id) = (key.account.as_str(), key.key_id.as_str());
        let mut data = self.lock();
        let key = data
            .keys
            .get_mut(account)
            .and_then(|keys| keys.get_mut(key_id))
            .ok_or_else(|| {
                StoreError::NotFound(format!("key_id: no key {key_id} in this account"))
            })?;
        if key.revoked_at.is_none() {
            key.revoked_at = Some(now);
        }
        let record = key.clone();
        self.view.apply(&Event::CredentialRevoked {
            account: account.to_owned(),
            id: key_id.to_owned(),
            by: None,
        });
        data.record(audit);
        Ok((record, None))
    }

    async fn rotate_key(
        &self,
        old: &KeyRecord,
        new: KeyRecord,
        revokes_at: u64,
        now: u64,
        request_id: Option<&str>,
        audit: &[AuditRecord],
    ) -> StoreResult<Option<String>> {
        let mut data = self.lock();
        let current = data
            .keys
            .get(&old.account)
            .and_then(|keys| keys.get(&old.key_id))
            .ok_or_else(|| {
                StoreError::NotFound(format!("key_id: no key {} in this account", old.key_id))
            })?;
        if current.revoked_at.is_some() {
            return Err(StoreError::FailedPrecondition(format!(
                "key_id: key {} is revoked",
                old.key_id
            )));
        }
        if let Some(to) = &current.rotation.to {
            return Err(StoreError::FailedPrecondition(format!(
                "key_id: key {} is already rotating (to {to})",
                old.key_id
            )));
        }
        let mut new = new;
        new.rotation = Rotation {
            from: Some(old.key_id.clone()),
            ..Rotation::default()
        };
        data.insert_key(new.clone(), None)?;
        let immediate = revokes_at <= now;
        if let Some(key) = data
            .keys
            .get_mut(&old.account)
            .and_then(|keys| keys.get_mut(&old.key_id))
        {
            key.rotation.to = Some(new.key_id.clone());
            key.rotation.revokes_at = Some(revokes_at);
            key.rotation.request = request_id.map(str::to_owned);
            if immediate {
                key.revoked_at = Some(now);
            }
        }
        if immediate {
            self.view.apply(&Event::CredentialRevoked {
                account: old.account.clone(),
                id: old.key_id.clone(),
                by: None,
            });
        }
        // The rotation's record, and the revocation's only when it happened now.
        for record in audit.iter().take(if immediate { 2 } else { 1 }) {
            data.record(Some(record));
        }
        Ok(None)
    }

    async fn revoke_due(&self, now: u64) -> StoreResult<usize> {
        let mut data = self.lock();
        let mut due = Vec::new();
        for keys in data.keys.values_mut() {
            for key in keys.values_mut() {
                if key.revoked_at.is_none() && key.rotation.revokes_at.is_some_and(|at| at <= now) {
                    key.revoked_at = Some(now);
                    due.push((
                        key.account.clone(),
                        key.key_id.clone(),
                        key.rotation.to.clone(),
                    ));
                }
            }
        }
        for (account, key_id, to) in &due {
            self.view.apply(&Event::CredentialRevoked {
                account: account.clone(),
                id: key_id.clone(),
                by: None,
            });
            data.record(Some(&AuditRecord {
                id: String::new(),
                at_ms: 0,
                account: account.clone(),
                actor: "system".into(),
                peer: None,
                action: "key.revoked".into(),
                target: key_id.clone(),
                detail: format!(
                    "rotation overlap ended (replaced by {})",
                    to.as_deref().unwrap_or("?")
                ),
            }));
        }
        Ok(due.len())
    }

    async fn revoke(
        &self,
        event: Event,
        audit: Option<&AuditRecord>,
    ) -> StoreResult<Option<String>> {
        if !matches!(event, Event::CredentialRevoked { .. }) {
            return Err(StoreError::FailedPrecondition(
                "only credential revocations are published by revoke".into(),
            ));
        }
        let mut data = self.lock();
        self.view.apply(&event);
        data.record(audit);
        Ok(None)
    }

    async fn revoke_token_id(
        &self,
        event: Event,
        now: u64,
        max_live: usize,
        audit: Option<&AuditRecord>,
    ) -> StoreResult<Option<String>> {
        let Event::TokenIdRevoked { account, .. } = &event else {
            return Err(StoreError::FailedPrecondition(
                "only token-id revocations are published by revoke_token_id".into(),
            ));
        };
        let mut data = self.lock();
        self.view.prune_expired(now);
        if self.view.token_id_revocations(account, now) >= max_live
            && !self.view.has_token_id_revocation(&event)
        {
            return Err(quota_exceeded(max_live));
        }
        self.view.apply(&event);
        data.record(audit);
        Ok(None)
    }

    async fn revoke_issued_before(
        &self,
        account: &str,
        before_ms: Option<u64>,
        now_ms: u64,
        audit: Option<&AuditRecord>,
    ) -> StoreResult<(u64, Option<String>)> {
        let mut data = self.lock();
        let current = self.view.watermark(account).unwrap_or(0);
        let watermark = match before_ms {
            Some(before) => before.max(current),
            None => now_ms.saturating_add(1).max(current.saturating_add(1)),
        };
        self.view.apply(&Event::IssuedBefore {
            account: account.to_owned(),
            before_ms: watermark,
        });
        data.record(audit.map(|a| with_cut(a, watermark)).as_ref());
        Ok((watermark, None))
    }

    async fn append_audit(&self, audit: &AuditRecord) -> StoreResult<()> {
        self.lock().record(Some(audit));
        Ok(())
    }

    async fn list_audit(&self, account: &str, query: &AuditQuery) -> StoreResult<Vec<AuditRecord>> {
        let data = self.lock();
        let Some(events) = data.audit.get(account) else {
            return Ok(Vec::new());
        };
        let before = query.before_id.as_deref();
        Ok(events
            .iter()
            .rev()
            .filter(|e| before.is_none_or(|b| crate::store::StreamId::cmp_text(&e.id, b).is_lt()))
            .filter(|e| query.until_ms.is_none_or(|u| e.at_ms < u))
            .take_while(|e| query.since_ms.is_none_or(|s| e.at_ms >= s))
            .take(query.limit)
            .cloned()
            .collect())
    }

    async fn latest_event_id(&self) -> StoreResult<Option<String>> {
        Ok(None)
    }

    async fn nodes(&self) -> StoreResult<Vec<super::NodeStatus>> {
        Ok(Vec::new())
    }

    async fn rotate_refresh(
        &self,
        account: &str,
        old_key_id: &str,
        refresh_hash: &str,
        new_key: KeyRecord,
        now: u64,
        audit: Option<&AuditRecord>,
    ) -> StoreResult<()> {
        let mut data = self.lock();
        let keys = data.keys.entry(account.to_owned()).or_default();
        if keys.contains_key(&new_key.key_id) {
            return Err(StoreError::AlreadyExists(format!(
                "key {} already exists",
                new_key.key_id
            )));
        }
        let old = keys
            .get_mut(old_key_id)
            .ok_or_else(|| StoreError::NotFound(format!("no key {old_key_id} in this account")))?;
        let matches = old.refresh_hash.as_deref().is_some_and(|h| {
            subtle::ConstantTimeEq::ct_eq(h.as_bytes(), refresh_hash.as_bytes()).into()
        });
        if old.revoked_at.is_some() || old.rotation.to.is_some() || !matches {
            return Err(StoreError::FailedPrecondition(
                "refresh_token: not valid for this key (a refresh token works once)".into(),
            ));
        }
        old.revoked_at = Some(now);
        keys.insert(new_key.key_id.clone(), new_key);
        self.view.apply(&Event::CredentialRevoked {
            account: account.to_owned(),
            id: old_key_id.to_owned(),
            by: None,
        });
        data.record(audit);
        Ok(())
    }

    async fn reset_refresh(
        &self,
        account: &str,
        key_id: &str,
        refresh_hash: &str,
    ) -> StoreResult<()> {
        let mut data = self.lock();
        let key = data
            .keys
            .get_mut(account)
            .and_then(|keys| keys.get_mut(key_id))
            .ok_or_else(|| StoreError::NotFound(format!("no key {key_id} in this account")))?;
        if key.revoked_at.is_some() || key.refresh_hash.is_none() {
            return Err(StoreError::FailedPrecondition(format!(
                "key {key_id} is revoked or has no refresh token"
            )));
        }
        key.refresh_hash = Some(refresh_hash.to_owned());
        Ok(())
    }

    async fn warn_expiring(&self, now: u64) -> StoreResult<usize> {
        let mut data = self.lock();
        let mut due = Vec::new();
        for keys in data.keys.values() {
            for key in keys.values() {
                let entered = key.warns_at().is_some_and(|at| at <= now);
                let unexpired = key.expires_at.is_some_and(|exp| exp > now);
                if !entered
                    || !unexpired
                    || key.revoked_at.is_some()
                    || key.rotation.to.is_some()
                    || data
                        .warned
                        .contains(&(key.account.clone(), key.key_id.clone()))
                {
                    continue;
                }
                let chain_revoked = self.view.is_revoked(
                    &key.account,
                    key.origin_ms(),
                    std::iter::once(&key.key_id).chain(key.ancestors.iter()),
                    None,
                    now,
                );
                if !chain_revoked {
                    due.push((key.account.clone(), key.key_id.clone(), key.expires_at));
                }
            }
        }
        for (account, key_id, expires_at) in &due {
            let record = AuditRecord {
                id: String::new(),
                at_ms: now * 1000,
                account: account.clone(),
                actor: "system".into(),
                peer: None,
                action: "key.expiring".into(),
                target: key_id.clone(),
                detail: super::expiring_detail(expires_at.unwrap_or(now), now),
            };
            data.record(Some(&record));
            data.warned.insert((account.clone(), key_id.clone()));
        }
        Ok(due.len())
    }

    async fn keys_lapsing(&self, now: u64, within: u64) -> StoreResult<Vec<KeyRecord>> {
        let horizon = now.saturating_add(within);
        Ok(self
            .lock()
            .keys
            .values()
            .flat_map(|keys| keys.values())
            .filter(|k| k.gauged_lapse().is_some_and(|at| at > now && at <= horizon))
            .cloned()
            .collect())
    }

    async fn set_key_policy(
        &self,
        account: &str,
        policy: &KeyPolicy,
        audit: Option<&AuditRecord>,
    ) -> StoreResult<()> {
        let mut data = self.lock();
        self.view.apply(&Event::KeyPolicySet {
            account: account.to_owned(),
            policy: policy.clone(),
        });
        data.policies.insert(account.to_owned(), policy.clone());
        data.record(audit);
        Ok(())
    }

    async fn get_key_policy(&self, account: &str) -> StoreResult<KeyPolicy> {
        Ok(self
            .lock()
            .policies
            .get(account)
            .cloned()
            .unwrap_or_default())
    }

    async fn list_roles(&self, account: &str) -> StoreResult<Vec<RoleRecord>> {
        Ok(self
            .lock()
            .roles
            .get(account)
            .map(|roles| roles.values().cloned().collect())
            .unwrap_or_default())
    }

    async fn get_role(&self, account: &str, role_id: &str) -> StoreResult<Option<RoleRecord>> {
        Ok(self
            .lock()
            .roles
            .get(account)
            .and_then(|roles| roles.get(role_id))
            .cloned())
    }

    async fn create_role(&self, role: RoleRecord, audit: Option<&AuditRecord>) -> StoreResult<()> {
        self.put_role(role, audit, true)
    }

    async fn update_role(&self, role: RoleRecord, audit: Option<&AuditRecord>) -> StoreResult<()> {
        self.put_role(role, audit, false)
    }

    async fn delete_role(
        &self,
        account: &str,
        role_id: &str,
        now: u64,
        audit: Option<&AuditRecord>,
    ) -> StoreResult<()> {
        let mut data = self.lock();
        let in_use = data
            .keys
            .get(account)
            .map(|keys| {
                keys.values()
                    .filter(|k| k.role_id.as_deref() == Some(role_id) && is_live(k, now))
                    .count()
            })
            .unwrap_or(0);
        let roles = data.roles.entry(account.to_owned()).or_default();
        if !roles.contains_key(role_id) {
            return Err(StoreError::NotFound(format!(
                "role_id: no role {role_id} in this account"
            )));
        }
        if in_use > 0 {
            return Err(StoreError::FailedPrecondition(format!(
                "role {role_id} is used by {in_use} live key(s): revoke them first"
            )));
        }
        roles.remove(role_id);
        self.view.apply(&Event::RoleDeleted {
            account: account.to_owned(),
            role_id: role_id.to_owned(),
        });
        data.record(audit);
        Ok(())
    }
}
