//! The account key policy: reading and setting it, checking new credentials against it, and
//! reporting the live keys that break it.
//!
//! Who: anyone who may list keys (AuthList) reads the policy and its report, so a creator can
//! see the limits before asking; only the owner (AccountWrite, which no other system role holds) sets it.
//!
//! Where it is enforced (see [`crate::policy::lifetime`]): each node checks against its live
//! view's copy, so a new policy binds in every cell within the revocation propagation bound
//! (the node that accepted it, at once). The bootstrap owner key (`authcell bootstrap`, a
//! break-glass path on the server itself) is exempt.
//!
//! Errors: a lifetime the caller asked for (GenerateGlobalApiKey, GenerateApiToken,
//! GenerateDisposableToken, RotateApiKey with a `lifetime_seconds`) is INVALID_ARGUMENT naming
//! the request's field; a lifetime carried over from an existing key (RefreshApiToken,
//! RotateApiKey without one) is FAILED_PRECONDITION. Both name the policy's rule and limit.

use super::*;
use crate::policy::lifetime::{Breach, CredentialKind};
use crate::policy::KeyPolicy;

/// Most violating keys a policy report lists (the total is always given).
pub const MAX_REPORTED: usize = 100;

/// A live key that the policy would not allow to be created now.
#[derive(Clone, Debug)]
pub struct Violation {
    pub key: KeyRecord,
    pub breach: Breach,
}

/// The policy and the live keys that break it.
#[derive(Clone, Debug)]
pub struct PolicyReport {
    pub policy: KeyPolicy,
    /// At most [`MAX_REPORTED`], oldest first.
    pub violations: Vec<Violation>,
    pub violations_total: usize,
}

/// The kind of a stored key, for the policy.
pub(super) fn kind_of(key: &KeyRecord) -> CredentialKind {
    if key.role_id.is_some() {
        CredentialKind::RoleKey
    } else {
        CredentialKind::SdkKey
    }
}

/// A key's lifetime as the policy counts it: from issue to expiry (`None`: never).
pub(super) fn lifetime_of(issued_at: u64, expires_at: Option<u64>) -> Option<u64> {
    expires_at.map(|exp| exp.saturating_sub(issued_at))
}

impl Authority {
    /// The policy this node enforces for `account` (its live view's copy).
    pub(super) fn key_policy(&self, account: &str) -> Option<Arc<KeyPolicy>> {
        self.verifier.view().key_policy(account)
    }

    /// Refuses a credential whose lifetime the caller asked for (`field`) when the policy does
    /// not allow it: INVALID_ARGUMENT naming the field, the rule and the limit.
    pub(super) fn check_requested_lifetime(
        &self,
        account: &str,
        kind: CredentialKind,
        lifetime: Option<u64>,
        field: &str,
    ) -> Result<()> {
        match self
            .key_policy(account)
            .and_then(|p| p.breach(kind, lifetime))
        {
            None => Ok(()),
            Some(breach) => Err(Invalid::new(field, breach.to_string()).into()),
        }
    }

    /// Refuses a credential whose lifetime is carried over from `old` (a refresh or rotation)
    /// when the policy does not allow it: FAILED_PRECONDITION naming the rule and the limit, and
    /// what to do instead.
    pub(super) fn check_carried_lifetime(
        &self,
        old: &KeyRecord,
        lifetime: Option<u64>,
        instead: &str,
    ) -> Result<()> {
        let kind = kind_of(old);
        match self
            .key_policy(&old.account)
            .and_then(|p| p.breach(kind, lifetime))
        {
            None => Ok(()),
            Some(breach) => Err(Error::FailedPrecondition(format!(
                "{breach}; key {} {}, and its replacement would too: {instead}",
                old.key_id,
                match lifetime {
                    None => "never expires".to_owned(),
                    Some(s) => format!("lives {s} s"),
                }
            ))),
        }
    }

    /// GetKeyPolicy: the policy as the system of record has it, and the live keys that break it.
    pub async fn get_key_policy(&self, caller: &Caller) -> Result<PolicyReport> {
        self.require(caller, Action::AuthList)?;
        let policy = self.store.get_key_policy(caller.account()).await?;
        self.policy_report(caller, policy).await
    }

    /// SetKeyPolicy (owner only): replaces the policy (an empty one clears it). Revokes nothing;
    /// reports the live keys that break the new policy.
    pub async fn set_key_policy(&self, caller: &Caller, policy: KeyPolicy) -> Result<PolicyReport> {
        self.require(caller, Action::AccountWrite)?;
        policy
            .validate()
            .map_err(|(field, rule)| Invalid::new(format!("policy.{field}"), rule))?;
        let detail = serde_json::to_string(&policy)
            .map_err(|e| Error::Internal(format!("key policy: {e}")))?;
        let audit = Self::caller_audit(caller, "key_policy.set", caller.account(), detail);
        self.store
            .set_key_policy(caller.account(), &policy, Some(&audit))
            .await?;
        tracing::info!(account = %caller.account(), ?policy, "key policy set");
        self.policy_report(caller, policy).await
    }

    async fn policy_report(&self, caller: &Caller, policy: KeyPolicy) -> Result<PolicyReport> {
        let mut violations = Vec::new();
        let mut violations_total = 0;
        if !policy.is_empty() {
            // The setter (AccountWrite) may not hold AuthList: the report is part of the answer
            // to what it was allowed to do.
            for key in self.live_keys_of(caller.account()).await? {
                let lifetime = lifetime_of(key.issued_at, key.expires_at);
                if let Some(breach) = policy.breach(kind_of(&key), lifetime) {
                    violations_total += 1;
                    if violations.len() < MAX_REPORTED {
                        violations.push(Violation { key, breach });
                    }
                }
            }
        }
        Ok(PolicyReport {
            policy,
            violations,
            violations_total,
        })
    }
}
