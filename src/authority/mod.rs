//! The credential authority: mint -> sign -> store -> event.
//!
//! Business rules for keys, roles and revocation live here, free of gRPC and of any particular
//! store. Each operation takes the authenticated [`Caller`], checks what it may do (management
//! permissions and the delegation subset test), validates its input, and calls the store.
//!
//! One file per family of operations: [`keys`](self#keys) (mint, list, describe, bootstrap),
//! `revoke` (keys, token ids, issued-before cuts, confirmation across cells), `roles`, `audit`,
//! `vending` (disposable tokens and SDK-made keys); and what they share: `validation` (field
//! rules of requests), `paging` (page tokens), `error`.

use std::net::IpAddr;
use std::sync::Arc;

use crate::clock::Clock;
use crate::credential::{self, Claims, CredentialError};
use crate::metrics::Counters;
use crate::policy::proto::Invalid;
use crate::policy::{system, Action, Denial, PermissionSet, Resource};
use crate::store::limiter::RateLimiter;
use crate::store::{AuditQuery, AuditRecord, KeyRecord, RoleRecord, Store};
use crate::verifier::view::Event;
use crate::verifier::{Principal, Verifier};

mod audit;
mod error;
mod key_policy;
mod keys;
mod paging;
pub mod requests;
mod revoke;
mod roles;
mod validation;
pub mod vending;

pub use error::{Error, Result};
pub use key_policy::{PolicyReport, Violation, MAX_REPORTED};
use keys::*;
pub(crate) use paging::Listing;
use paging::*;
pub use requests::*;
use revoke::*;
pub use revoke::{CellNode, Confirmation, TokenRef, GONE_AFTER_MS, LIVENESS_MS};
pub use validation::MAX_TOKEN_ID_LEN;
use validation::*;

/// Longest key or role description.
pub const MAX_DESCRIPTION_LEN: usize = 256;
/// Longest role or account name.
pub const MAX_NAME_LEN: usize = 64;
/// Largest page of a key listing.
pub const MAX_PAGE: u32 = 100;

/// An authenticated caller of a management API.
#[derive(Clone, Debug)]
pub struct Caller {
    pub principal: Principal,
    pub peer: Option<IpAddr>,
}

impl Caller {
    pub fn account(&self) -> &str {
        &self.principal.credential.account
    }
    pub fn key_id(&self) -> &str {
        &self.principal.credential.id
    }
}

/// When a new key expires.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expiry {
    Never,
    At(u64),
}

/// How a role is presented in listings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RoleView {
    pub role_id: String,
    pub name: String,
    pub description: String,
    pub permissions: PermissionSet,
    pub system: bool,
    pub created_at: u64,
    pub updated_at: u64,
}

/// A key's status at a point in time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyStatus {
    Active,
    Expired,
    Revoked,
}

/// One page of keys.
#[derive(Clone, Debug)]
pub struct KeyPage {
    pub keys: Vec<(KeyRecord, KeyStatus)>,
    pub next_token: Option<String>,
}

/// Changes to a role; `None` leaves a field as it is.
#[derive(Clone, Debug, Default)]
pub struct RoleUpdate {
    pub name: Option<String>,
    pub description: Option<String>,
    pub permissions: Option<PermissionSet>,
}

/// Per-node settings of the authority.
pub struct Settings {
    /// This cell's name, written into the tokens it mints.
    pub cell: String,
    /// This cell's public endpoint, returned with minted tokens.
    pub endpoint: String,
    /// Limits token vending and key creation per account.
    pub limiter: Box<dyn RateLimiter>,
    /// Limits the revocation endpoints (RevokeToken, RevokeIssuedBefore, ConfirmRevocation)
    /// per account: each revocation grows every node's view and the event stream, and thrashes
    /// every cached verdict, so one key must not be able to do it without bound.
    pub revocation_limiter: Box<dyn RateLimiter>,
    /// Token-id revocations one account may have in force at once.
    pub max_token_id_revocations: usize,
    /// ConfirmRevocation calls this node serves at once (each polls the primary).
    pub max_confirmations: usize,
    /// The node's counters (keys and tokens issued, calls refused by a rate limit).
    pub counters: Arc<Counters>,
}

/// Default of [`Settings::max_token_id_revocations`].
pub const DEFAULT_MAX_TOKEN_ID_REVOCATIONS: usize = 10_000;
/// Default of [`Settings::max_confirmations`].
pub const DEFAULT_MAX_CONFIRMATIONS: usize = 16;
/// Longest ConfirmRevocation wait, in ms.
pub const MAX_CONFIRM_TIMEOUT_MS: u32 = 30_000;
/// How often a ConfirmRevocation call polls the nodes' progress.
const CONFIRM_POLL: std::time::Duration = std::time::Duration::from_millis(20);

/// The authority's configuration and collaborators.
pub struct Authority {
    store: Arc<dyn Store>,
    /// Bounds the ConfirmRevocation calls in progress (see [`Settings::max_confirmations`]).
    confirmations: tokio::sync::Semaphore,
    /// Also the source of the signing key: the verifier's key ring is swapped on rotation, and
    /// signing follows it.
    verifier: Verifier,
    clock: Arc<dyn Clock>,
    settings: Settings,
}

impl Authority {
    pub fn new(store: Arc<dyn Store>, verifier: Verifier, settings: Settings) -> Self {
        let clock = verifier.clock().clone();
        Authority {
            confirmations: tokio::sync::Semaphore::new(settings.max_confirmations.max(1)),
            store,
            verifier,
            clock,
            settings,
        }
    }

    /// Takes one rate-limited operation for the account, or says how long to wait.
    pub(crate) async fn rate_limit(&self, account: &str) -> Result<()> {
        self.limited(
            self.settings.limiter.acquire(account).await,
            "token vending and key creation",
        )
    }

    /// Maps a limiter's answer to a RESOURCE_EXHAUSTED naming what was limited.
    fn limited(
        &self,
        outcome: std::result::Result<(), std::time::Duration>,
        what: &str,
    ) -> Result<()> {
        outcome.map_err(|wait| {
            Counters::bump(&self.settings.counters.rate_limited);
            let secs = wait.as_secs_f64().ceil().max(1.0) as u64;
            Error::ResourceExhausted {
                message: format!(
                    "rate limit for {what} reached for this account; retry in {:.1} s",
                    wait.as_secs_f64()
                ),
                retry_after_secs: secs,
            }
        })
    }

    /// Takes one revocation-endpoint call for the account, or says how long to wait.
    async fn revocation_rate_limit(&self, account: &str) -> Result<()> {
        self.limited(
            self.settings.revocation_limiter.acquire(account).await,
            "revocations and revocation confirmations",
        )
    }

    /// An issue time (epoch ms) for a credential minted now in `account`: the clock's time
    /// (the primary's, on a Redis-backed node), but never before the account's watermark, so a
    /// credential minted after an issued-before cut, even within the same millisecond, is
    /// never caught by it.
    pub(crate) fn stamp(&self, account: &str) -> u64 {
        let now = self.clock.now_ms();
        self.verifier
            .view()
            .watermark(account)
            .map_or(now, |mark| now.max(mark))
    }

    pub fn verifier(&self) -> &Verifier {
        &self.verifier
    }

    pub fn endpoint(&self) -> &str {
        &self.settings.endpoint
    }

    pub fn cell(&self) -> &str {
        &self.settings.cell
    }

    pub fn now(&self) -> u64 {
        self.clock.now()
    }

    /// An audit record of something `actor` did (from `peer`) to `target` in `account`.
    pub(crate) fn audit(
        account: &str,
        actor: &str,
        peer: Option<IpAddr>,
        action: &str,
        target: &str,
        detail: String,
    ) -> AuditRecord {
        AuditRecord {
            account: account.to_owned(),
            actor: actor.to_owned(),
            peer: peer.map(|p| p.to_string()),
            action: action.to_owned(),
            target: target.to_owned(),
            detail,
            ..AuditRecord::default()
        }
    }

    fn caller_audit(caller: &Caller, action: &str, target: &str, detail: String) -> AuditRecord {
        Self::audit(
            caller.account(),
            caller.key_id(),
            caller.peer,
            action,
            target,
            detail,
        )
    }

    /// Authenticates a management caller. Disposable tokens are refused here: they are for the
    /// data plane only.
    pub fn caller(&self, token: &str, peer: Option<IpAddr>) -> Result<Caller> {
        let principal = self.verifier.authenticate(token)?;
        if principal.credential.disposable {
            return Err(CredentialError::DisposableNotAllowed.into());
        }
        Ok(Caller { principal, peer })
    }

    /// Requires a management permission of the caller.
    pub fn require(&self, caller: &Caller, action: Action) -> Result<()> {
        caller
            .principal
            .evaluate(action, &Resource::default(), caller.peer)
            .map_err(|denial| match denial {
                Denial::Permission => Error::PermissionDenied(format!(
                    "the calling key's permissions do not include {}",
                    permission_name(action)
                )),
                Denial::IpNotAllowed => Error::PermissionDenied(
                    "the calling key's ip_filter does not allow this peer address".into(),
                ),
            })
    }

    fn require_delegable(&self, caller: &Caller, what: &str, set: &PermissionSet) -> Result<()> {
        caller.principal.check_delegation(set).map_err(|e| {
            Error::PermissionDenied(format!("{what} can do more than the calling key: {e}"))
        })
    }

    /// Resolves a role id (system or the caller's custom role) to its permissions.
    async fn role_permissions(&self, account: &str, role_id: &str) -> Result<PermissionSet> {
        if role_id.is_empty() {
            return Err(Invalid::new("role_id", "required").into());
        }
        if let Some(set) = system::permissions(role_id) {
            return Ok(set);
        }
        match self.store.get_role(account, role_id).await? {
            Some(role) => Ok(role.permissions),
            None => Err(Error::NotFound(format!(
                "role_id: no role {role_id:?} in this account"
            ))),
        }
    }

    fn sign(&self, claims: &Claims) -> Result<String> {
        credential::sign(&self.verifier.keys().load(), claims)
            .map_err(|e| Error::Internal(format!("signing failed: {e}")))
    }
}

fn permission_name(action: Action) -> &'static str {
    match action {
        Action::AuthRead => "AuthRead",
        Action::AuthWrite => "AuthWrite",
        Action::AuthList => "AuthList",
        Action::AccountRead => "AccountRead",
        Action::AccountWrite => "AccountWrite",
        Action::AccountList => "AccountList",
        Action::ResourceRead => "ResourceRead",
        Action::ResourceWrite => "ResourceWrite",
        Action::ResourceList => "ResourceList",
        _ => "the data permission",
    }
}

/// The response metadata carrying RevokeGlobalApiKey's revocation id (the upstream response
/// has no field for it).
pub const REVOCATION_ID_METADATA: &str = "authcell-revocation-id";

/// The request metadata that makes a key creation safe to retry.
pub const IDEMPOTENCY_KEY: &str = "idempotency-key";

/// The account platform events (signing key rotations) are recorded under: never a tenant.
pub const SYSTEM_ACCOUNT: &str = "system";

#[cfg(test)]
mod tests {
    use super::revoke::*;
    use super::*;
    use crate::store::NodeStatus;

    fn node(position: &str, silent_for_ms: u64, deny: bool, max_staleness_ms: u64) -> NodeStatus {
        NodeStatus {
            node_id: "n".into(),
            cell: "a".into(),
            position: position.into(),
            seen_at_ms: 1_000_000_000 - silent_for_ms,
            max_staleness_ms,
            deny_when_stale: deny,
        }
    }

    #[test]
    fn a_silent_node_blocks_confirmation_while_it_could_still_serve_its_old_state() {
        let now = 1_000_000_000;
        let target = "1000-0";
        let standing = |n: NodeStatus| node_standing(&n, target, now);
        // Reporting: by position.
        assert_eq!(
            standing(node("1000-0", 100, false, 30_000)),
            Standing::Applied
        );
        assert_eq!(
            standing(node("999-5", 100, false, 30_000)),
            Standing::Behind
        );
        // Silent after it applied the revocation: it cannot forget it.
        assert_eq!(
            standing(node("1001-0", 60_000, false, 30_000)),
            Standing::Applied
        );
        // Silent before applying it, serve policy: when it resumes it may allow the credential.
        assert_eq!(
            standing(node("999-0", 6_000, false, 30_000)),
            Standing::SilentMayServe
        );
        // Deny policy: within its bound it may still serve; past it, it refuses until fresh.
        assert_eq!(
            standing(node("999-0", 6_000, true, 30_000)),
            Standing::SilentMayServe
        );
        assert_eq!(
            standing(node("999-0", 31_000, true, 30_000)),
            Standing::SilentFenced
        );
        // Silent for more than ten minutes: taken to be gone.
        assert_eq!(
            standing(node("999-0", GONE_AFTER_MS + 1, false, 30_000)),
            Standing::SilentFenced
        );
    }
}
