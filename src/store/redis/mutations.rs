//! The mutations several [`Store`](crate::store::Store) methods share: the audit every script
//! appends, creating a key (once per request id), and writing a role.

use super::*;

impl RedisStore {
    /// Appends what the audit prelude of every mutation script takes: the account's audit
    /// stream (the last KEY), the record or '' and the stream's cap (the last two ARGV).
    pub(super) fn with_audit<'a, 'b>(
        &self,
        invocation: &'b mut redis::ScriptInvocation<'a>,
        account: &str,
        audit: Option<&AuditRecord>,
    ) -> StoreResult<&'b mut redis::ScriptInvocation<'a>> {
        Ok(invocation
            .key(self.keys.audit(account))
            .arg(audit_json(audit)?)
            .arg(self.audit_max_len()))
    }

    /// Stores a new key, once per request id when there is one. A retry finds the receipt and
    /// stores nothing (the `WAIT` after it is fenced, so it still covers the first attempt).
    pub(super) async fn insert(
        &self,
        key: KeyRecord,
        audit: Option<&AuditRecord>,
        once: Option<(&str, &Receipt)>,
    ) -> StoreResult<Option<Receipt>> {
        let mut stored = key.clone();
        stored.revoked_at = None;
        stored.refresh_hash = None;
        let role_id = key.role_id.clone().unwrap_or_default();
        let custom = !role_id.is_empty() && system::permissions(&role_id).is_none();
        let (request_id, receipt) = match once {
            Some((id, receipt)) => (id, to_json(receipt)?),
            None => ("", String::new()),
        };
        let reply: Reply = run_script(
            self.with_audit(
                self.scripts
                    .insert_key
                    .key(self.keys.key(&key.account, &key.key_id))
                    .key(self.keys.account_keys(&key.account))
                    .key(self.keys.role_keys(&key.account, &role_id))
                    .key(self.keys.roles(&key.account))
                    .key(self.keys.receipt(&key.account, request_id))
                    .key(self.keys.lapses())
                    .key(self.keys.expiring())
                    .arg(&key.key_id)
                    .arg(to_json(&stored)?)
                    .arg(key.refresh_hash.clone().unwrap_or_default())
                    .arg(expiry_score(key.expires_at))
                    .arg(&role_id)
                    .arg(if custom { "custom" } else { "" })
                    .arg(receipt)
                    .arg(crate::store::IDEMPOTENCY_TTL_SECS)
                    .arg(&super::index_args(&key)[..]),
                &key.account,
                audit,
            )?,
            &mut self.write(),
        )
        .await
        .map_err(unavailable)?;
        match reply {
            Reply::Ok(_) => Ok(None),
            Reply::Refused(Refusal::Replay(prior)) => serde_json::from_str(&prior)
                .map(Some)
                .map_err(|e| corrupt("receipt", e)),
            Reply::Refused(Refusal::NoRole) => Err(StoreError::NotFound(format!(
                "role_id: no role {role_id:?} in this account"
            ))),
            Reply::Refused(_) => Err(StoreError::AlreadyExists(format!(
                "key {} already exists",
                key.key_id
            ))),
        }
    }

    pub(super) async fn put_role(
        &self,
        old: Option<(String, String)>,
        role: RoleRecord,
        audit: Option<&AuditRecord>,
    ) -> StoreResult<()> {
        let event = Event::RoleSet {
            account: role.account.clone(),
            role_id: role.role_id.clone(),
            permissions: role.permissions.clone(),
        };
        let (old_json, old_name) = old.unwrap_or_default();
        let reply: Reply = run_script(
            self.with_audit(
                self.scripts
                    .put_role
                    .key(self.keys.roles(&role.account))
                    .key(self.keys.role_names(&role.account))
                    .key(self.keys.all_roles())
                    .key(self.keys.events())
                    .arg(&role.role_id)
                    .arg(&old_json)
                    .arg(to_json(&role)?)
                    .arg(&old_name)
                    .arg(&role.name)
                    .arg(role_field(&role.account, &role.role_id))
                    .arg(to_json(&event)?)
                    .arg(self.max_len()),
                &role.account,
                audit,
            )?,
            &mut self.write(),
        )
        .await
        .map_err(unavailable)?;
        reply.ok(|refusal| match refusal {
            Refusal::NameTaken => StoreError::AlreadyExists(format!(
                "name: this account already has a role named {:?}",
                role.name
            )),
            Refusal::NotFound => {
                StoreError::NotFound(format!("role_id: no role {} in this account", role.role_id))
            }
            Refusal::Conflict => StoreError::FailedPrecondition(
                "the role changed concurrently; read it again and retry".into(),
            ),
            _ => StoreError::AlreadyExists(format!("role {} already exists", role.role_id)),
        })?;
        self.view.apply(&event);
        Ok(())
    }
}
