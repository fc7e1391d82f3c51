//! The verifier: credential -> verify -> evaluate -> decide.
//!
//! [`Verifier::check`] is the one entry point data-plane checks go through (the Authorize RPC is
//! a thin wrapper over it). [`Verifier::authenticate`] is the first half, also used to
//! authenticate callers of the management APIs. Every call consults the live [`View`], so a
//! revocation or role change takes effect on the very next check.

use std::net::IpAddr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use crate::clock::Clock;
use crate::credential::{self, Authority, Credential, CredentialError};
use crate::keyring::KeyRing;
use crate::permissions::{self, system, Action, Denial, PermissionSet, Resource};
use crate::view::View;

/// Clock skew tolerated on `exp` and `iat`, in seconds.
pub const LEEWAY_SECS: u64 = 5;

/// An authenticated credential and the permissions it has right now.
#[derive(Clone, Debug)]
pub struct Principal {
    pub credential: Credential,
    pub permissions: Arc<PermissionSet>,
}

/// What a node does when its revocation view is older than the bound.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum StalePolicy {
    /// Go on serving checks from the last known state (availability first).
    #[default]
    Serve,
    /// Refuse every check until the view is fresh again (safety first).
    Deny,
}

/// Why a check said no.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reason {
    /// The node cannot judge: its revocation state is not loaded, or too old under `deny`.
    Unavailable,
    Stale,
    Unauthenticated,
    Expired,
    Revoked,
    Permission,
    IpNotAllowed,
    RoleNotFound,
    NotYetValid,
}

impl From<CredentialError> for Reason {
    fn from(e: CredentialError) -> Self {
        match e {
            CredentialError::Expired => Reason::Expired,
            CredentialError::Revoked => Reason::Revoked,
            CredentialError::RoleNotFound => Reason::RoleNotFound,
            CredentialError::NotYetValid => Reason::NotYetValid,
            CredentialError::StateNotLoaded => Reason::Unavailable,
            CredentialError::StateStale => Reason::Stale,
            _ => Reason::Unauthenticated,
        }
    }
}

/// The outcome of a check.
#[derive(Clone, Debug)]
pub struct Decision {
    /// `Ok` with the principal if allowed.
    pub outcome: Result<(), (Reason, String)>,
    /// The credential, when it could be authenticated (also on a permission denial).
    pub principal: Option<Principal>,
}

impl Decision {
    pub fn allowed(&self) -> bool {
        self.outcome.is_ok()
    }
}

/// Verifies credentials against a key ring and the live view.
#[derive(Clone)]
pub struct Verifier {
    keyring: Arc<KeyRing>,
    view: Arc<View>,
    clock: Arc<dyn Clock>,
    max_staleness: Duration,
    stale_policy: StalePolicy,
}

fn system_role(role_id: &str) -> Option<Arc<PermissionSet>> {
    static ROLES: OnceLock<[(&'static str, Arc<PermissionSet>); 3]> = OnceLock::new();
    let roles = ROLES.get_or_init(|| {
        system::ALL.map(|id| {
            let set = system::permissions(id).unwrap_or_else(|| PermissionSet::rules(Vec::new()));
            (id, Arc::new(set))
        })
    });
    roles
        .iter()
        .find(|(id, _)| *id == role_id)
        .map(|(_, set)| set.clone())
}

impl Verifier {
    pub fn new(keyring: Arc<KeyRing>, view: Arc<View>, clock: Arc<dyn Clock>) -> Self {
        Verifier {
            keyring,
            view,
            clock,
            max_staleness: Duration::from_secs(30),
            stale_policy: StalePolicy::Serve,
        }
    }

    /// Sets what happens when the view is older than `max_staleness`.
    pub fn with_staleness(mut self, max_staleness: Duration, policy: StalePolicy) -> Self {
        self.max_staleness = max_staleness;
        self.stale_policy = policy;
        self
    }

    /// Whether the view is older than the bound.
    pub fn is_stale(&self) -> bool {
        self.view.age() > self.max_staleness
    }

    /// Whether this node can judge credentials now (health: SERVING).
    pub fn is_serving(&self) -> bool {
        self.view.is_loaded() && !(self.stale_policy == StalePolicy::Deny && self.is_stale())
    }

    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    pub fn view(&self) -> &Arc<View> {
        &self.view
    }

    /// Verifies signature, algorithm, key id, type, time and revocation, and resolves the
    /// credential's current permissions.
    pub fn authenticate(&self, token: &str) -> Result<Principal, CredentialError> {
        self.authenticate_inner(token, true)
    }

    /// As [`Self::authenticate`], but an expired credential still passes (refreshing an
    /// expired SDK-made key). Everything else, revocation included, is checked.
    pub fn authenticate_allowing_expiry(&self, token: &str) -> Result<Principal, CredentialError> {
        self.authenticate_inner(token, false)
    }

    fn authenticate_inner(
        &self,
        token: &str,
        check_expiry: bool,
    ) -> Result<Principal, CredentialError> {
        // An empty, never-loaded view would let revoked credentials through.
        if !self.view.is_loaded() {
            return Err(CredentialError::StateNotLoaded);
        }
        if self.stale_policy == StalePolicy::Deny && self.is_stale() {
            return Err(CredentialError::StateStale);
        }
        let credential = credential::decode(&self.keyring, token)?;
        let now = self.clock.now();
        if check_expiry
            && credential
                .expires_at
                .is_some_and(|exp| now >= exp.saturating_add(LEEWAY_SECS))
        {
            return Err(CredentialError::Expired);
        }
        if credential.issued_at > now.saturating_add(LEEWAY_SECS) {
            return Err(CredentialError::NotYetValid);
        }
        let ids = std::iter::once(&credential.id).chain(credential.ancestors.iter());
        if self.view.is_revoked(
            &credential.account,
            credential.origin_issued_at,
            ids,
            credential
                .token_id
                .as_deref()
                .filter(|_| credential.disposable),
        ) {
            return Err(CredentialError::Revoked);
        }
        let permissions = match &credential.authority {
            Authority::Inline(set) => set.clone(),
            Authority::Role(role_id) => system_role(role_id)
                .or_else(|| self.view.role(&credential.account, role_id))
                .ok_or(CredentialError::RoleNotFound)?,
        };
        Ok(Principal {
            credential,
            permissions,
        })
    }

    /// May `token` do `action` on `resource` from `peer`?
    pub fn check(
        &self,
        token: &str,
        action: Action,
        resource: &Resource<'_>,
        peer: Option<IpAddr>,
    ) -> Decision {
        let principal = match self.authenticate(token) {
            Ok(p) => p,
            Err(e) => {
                return Decision {
                    outcome: Err((e.into(), e.to_string())),
                    principal: None,
                }
            }
        };
        let outcome = permissions::evaluate(&principal.permissions, action, resource, peer)
            .map_err(|denial| match denial {
                Denial::Permission => (
                    Reason::Permission,
                    format!("credential does not allow {action:?} on this resource"),
                ),
                Denial::IpNotAllowed => (
                    Reason::IpNotAllowed,
                    "the peer address is not allowed by the credential's ip_filter".to_owned(),
                ),
            });
        Decision {
            outcome,
            principal: Some(principal),
        }
    }
}
