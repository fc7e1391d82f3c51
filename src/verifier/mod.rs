//! The verifier: credential -> verify -> evaluate -> decide.
//!
//! [`Verifier::check`] is the one entry point data-plane checks go through; the Authorize RPC is
//! a thin wrapper over it, and a cache node can link it in directly (see `examples/`).
//! [`Verifier::authenticate`] is its first half, also used for callers of the management APIs.
//!
//! # The hot path
//!
//! Signature and claim validation is cached per token string in a bounded concurrent cache
//! (entries are dropped at the token's expiry, and re-verified when the key ring changed, so a
//! retired key stops working at once). What can change after issue (revocations, watermarks,
//! role permissions) is never cached blindly: each cached entry remembers the generation of its
//! account in the live view ([`view::Stamp`]) its verdict was computed at, and the verdict is
//! reused only while the account is still at that generation. Any revocation or role change in
//! the account bumps it, so the very next check looks again; a revocation storm in another
//! account leaves it alone (generations are per account, spread over 1 024 counters on their
//! own cache lines). A cache hit therefore costs one cache lookup, two atomic loads and
//! the permission evaluation: no JSON, no signature, no lock but the cache shard's read lock,
//! no Redis, and no log line.
//!
//! The cache is bounded by bytes, not entries (a credential may be up to 8 KiB, so a count
//! bound alone would let large tokens take a gigabyte): each entry weighs its token twice (the
//! key, and the decoded claims, which grow with it) plus a fixed overhead.
//!
//! # Derived credentials are bounded by their root
//!
//! A derived credential (disposable token, SDK-made key, and whatever is refreshed from them)
//! may do what its own inline permissions allow *and* what the role of the role-bound key at the
//! root of its chain allows at check time ([`Principal::bound`]). Every key between them has
//! fixed inline permissions that already contained the child's at mint (the subset test), so
//! the root role is the one thing that can change: narrowing a role narrows every credential
//! minted from its keys on the next check, in every cell (the role change is an event like a
//! revocation, and bumps the account's generation). Both sets must allow an action; a delegation
//! must fit within both.

use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use arc_swap::ArcSwap;

use crate::clock::Clock;
use crate::credential::{self, Authority, Credential, CredentialError};
use crate::keyring::KeyRing;
use crate::policy::{self, system, Action, Condition, Denial, Exceeds, PermissionSet, Resource};
mod cache;
mod stats;
pub mod view;

use cache::{new_cache, CredentialCache, Entry, Resolved};
pub use stats::{Stats, StatsSnapshot};
use view::{Stamp, View};

/// Clock skew tolerated on `exp` and `iat`, in seconds.
pub const LEEWAY_SECS: u64 = 5;
/// Default memory budget of the verified-credential cache, in bytes.
pub const DEFAULT_CACHE_BYTES: u64 = 64 * 1024 * 1024;
/// What a cache entry costs beyond its token (the entry, the decoded credential's fixed part).
pub(crate) const ENTRY_OVERHEAD_BYTES: u64 = 512;

/// An authenticated credential and the permissions it has right now.
#[derive(Clone, Debug)]
pub struct Principal {
    pub credential: Arc<Credential>,
    /// Its own permissions: its role's (role-bound key) or its inline set.
    pub permissions: Arc<PermissionSet>,
    /// For a derived credential, its root role's current permissions: what it may do is the
    /// intersection of both (see the module docs).
    pub bound: Option<Arc<PermissionSet>>,
}

impl Principal {
    /// Whether both its own permissions and its bound allow `action` on `resource` from `peer`.
    pub fn evaluate(
        &self,
        action: Action,
        resource: &Resource<'_>,
        peer: Option<IpAddr>,
    ) -> Result<(), Denial> {
        evaluate_both(
            &self.permissions,
            self.bound.as_deref(),
            action,
            resource,
            peer,
        )
    }

    /// Whether its conditions (and its bound's) admit a caller at `peer`.
    pub fn admits_peer(&self, peer: Option<IpAddr>) -> bool {
        policy::admits_peer(&self.permissions, peer)
            && self
                .bound
                .as_ref()
                .is_none_or(|b| policy::admits_peer(b, peer))
    }

    /// The subset test against both its own permissions and its bound.
    pub fn check_delegation(&self, child: &PermissionSet) -> Result<(), Exceeds> {
        policy::check_delegation(&self.permissions, child)?;
        match &self.bound {
            Some(bound) => policy::check_delegation(bound, child),
            None => Ok(()),
        }
    }

    /// The conditions anything it delegates must keep: its own and its bound's.
    pub fn conditions(&self) -> Vec<Condition> {
        let mut conditions = self.permissions.conditions.clone();
        for c in self.bound.iter().flat_map(|b| b.conditions.iter()) {
            if !conditions.contains(c) {
                conditions.push(c.clone());
            }
        }
        conditions
    }

    /// Super-user, with nothing bounding it.
    pub fn is_super_user(&self) -> bool {
        self.permissions.is_super_user() && self.bound.as_ref().is_none_or(|b| b.is_super_user())
    }
}

/// One question to the verifier once its shape is checked: which action, on what, from where
/// (the credential travels beside it). Built from an Authorize request at the server's
/// validation boundary.
#[derive(Clone, Copy, Debug)]
pub struct Query<'a> {
    pub action: Action,
    pub resource: Resource<'a>,
    pub peer: Option<IpAddr>,
}

/// What a node does when its revocation view is older than the bound.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[cfg_attr(feature = "server", derive(clap::ValueEnum))]
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
    /// The node cannot judge: its revocation state is not loaded.
    Unavailable,
    /// The node's revocation state is too old under the deny policy.
    Stale,
    Unauthenticated,
    Expired,
    Revoked,
    Permission,
    IpNotAllowed,
    RoleNotFound,
    NotYetValid,
}

impl Reason {
    const ALL: [Reason; 9] = [
        Reason::Unavailable,
        Reason::Stale,
        Reason::Unauthenticated,
        Reason::Expired,
        Reason::Revoked,
        Reason::Permission,
        Reason::IpNotAllowed,
        Reason::RoleNotFound,
        Reason::NotYetValid,
    ];

    fn index(self) -> usize {
        self as usize
    }

    pub fn name(self) -> &'static str {
        match self {
            Reason::Unavailable => "unavailable",
            Reason::Stale => "stale",
            Reason::Unauthenticated => "unauthenticated",
            Reason::Expired => "expired",
            Reason::Revoked => "revoked",
            Reason::Permission => "permission",
            Reason::IpNotAllowed => "ip_not_allowed",
            Reason::RoleNotFound => "role_not_found",
            Reason::NotYetValid => "not_yet_valid",
        }
    }
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
#[derive(Clone)]
pub struct Decision {
    /// `Ok` if allowed; else the reason and a message for humans (never the credential).
    pub outcome: Result<(), (Reason, String)>,
    /// The authenticated credential's cache entry (also on a permission denial). Held rather
    /// than copied into a [`Principal`]: a check touches no reference count but this one.
    entry: Option<Arc<Entry>>,
}

impl Decision {
    pub fn allowed(&self) -> bool {
        self.outcome.is_ok()
    }

    /// The credential, when it could be authenticated (also on a permission denial).
    pub fn credential(&self) -> Option<&Credential> {
        self.entry.as_deref().map(|e| e.credential.as_ref())
    }
}

impl std::fmt::Debug for Decision {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Decision")
            .field("outcome", &self.outcome)
            .field("credential", &self.credential())
            .finish()
    }
}

/// The key ring a verifier uses, swappable at run time (rotation without restart).
#[derive(Debug)]
pub struct KeyRingHandle {
    ring: ArcSwap<KeyRing>,
    /// The current ring's generation, kept beside it so the hot path reads one atomic instead
    /// of loading the ring. Written after the swap: a check that reads the older value a moment
    /// longer accepts what the ring current a moment ago accepted, nothing more.
    generation: AtomicU64,
}

impl KeyRingHandle {
    pub fn new(ring: KeyRing) -> Self {
        KeyRingHandle {
            generation: AtomicU64::new(ring.generation()),
            ring: ArcSwap::from_pointee(ring),
        }
    }
    pub fn load(&self) -> Arc<KeyRing> {
        self.ring.load_full()
    }
    /// Replaces the ring; credentials verified under the old one are verified again.
    pub fn store(&self, ring: KeyRing) {
        let generation = ring.generation();
        self.ring.store(Arc::new(ring));
        self.generation.store(generation, Ordering::Release);
    }
    fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }
}

/// Verifies credentials against a key ring and the live view.
#[derive(Clone)]
pub struct Verifier {
    keys: Arc<KeyRingHandle>,
    view: Arc<View>,
    clock: Arc<dyn Clock>,
    cache: Arc<CredentialCache>,
    max_staleness: Duration,
    stale_policy: StalePolicy,
    stats: Arc<Stats>,
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
    pub fn new(keyring: KeyRing, view: Arc<View>, clock: Arc<dyn Clock>) -> Self {
        Self::with_keys(Arc::new(KeyRingHandle::new(keyring)), view, clock)
    }

    /// A verifier over a swappable key ring.
    pub fn with_keys(keys: Arc<KeyRingHandle>, view: Arc<View>, clock: Arc<dyn Clock>) -> Self {
        Verifier {
            keys,
            view,
            clock,
            cache: Arc::new(new_cache(DEFAULT_CACHE_BYTES)),
            max_staleness: Duration::from_secs(30),
            stale_policy: StalePolicy::Serve,
            stats: Arc::new(Stats::default()),
        }
    }

    /// Sets the memory budget of the verified-credential cache, in bytes.
    pub fn with_cache_bytes(mut self, bytes: u64) -> Self {
        self.cache = Arc::new(new_cache(bytes));
        self
    }

    /// Bytes the verified-credential cache holds now, and its budget.
    pub fn cache_weight(&self) -> (u64, u64) {
        (self.cache.weight(), self.cache.capacity())
    }

    /// Sets what happens when the view is older than `max_staleness`.
    pub fn with_staleness(mut self, max_staleness: Duration, policy: StalePolicy) -> Self {
        self.max_staleness = max_staleness;
        self.stale_policy = policy;
        self
    }

    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    pub fn view(&self) -> &Arc<View> {
        &self.view
    }

    pub fn keys(&self) -> &Arc<KeyRingHandle> {
        &self.keys
    }

    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// How far behind the primary the view may be now.
    pub fn view_age(&self) -> Duration {
        self.view.age(self.clock.now_ms())
    }

    pub fn stale_policy(&self) -> StalePolicy {
        self.stale_policy
    }

    /// Whether the view is older than the bound.
    pub fn is_stale(&self) -> bool {
        self.view_age() > self.max_staleness
    }

    /// Whether this node can judge credentials now (health: SERVING).
    pub fn is_serving(&self) -> bool {
        self.view.is_loaded() && !(self.stale_policy == StalePolicy::Deny && self.is_stale())
    }

    /// Verifies signature, algorithm, key id, type, time and revocation, and resolves the
    /// credential's current permissions.
    pub fn authenticate(&self, token: &str) -> Result<Principal, CredentialError> {
        self.admit(token, true)
            .map(|(entry, resolved)| principal(&entry, &resolved))
    }

    /// As [`Self::authenticate`], but an expired credential still passes (refreshing an
    /// expired SDK-made key). Everything else, revocation included, is checked.
    pub fn authenticate_allowing_expiry(&self, token: &str) -> Result<Principal, CredentialError> {
        self.admit(token, false)
            .map(|(entry, resolved)| principal(&entry, &resolved))
    }

    /// Everything [`Self::authenticate`] checks, returning the cached entry and its current
    /// verdict (whose permissions are then borrowed, not cloned: on the hot path the only
    /// reference count touched is the entry's).
    fn admit(
        &self,
        token: &str,
        check_expiry: bool,
    ) -> Result<(Arc<Entry>, Verdict), CredentialError> {
        // An empty, never-loaded view would let revoked credentials through.
        if !self.view.is_loaded() {
            return Err(CredentialError::StateNotLoaded);
        }
        if self.stale_policy == StalePolicy::Deny && self.is_stale() {
            return Err(CredentialError::StateStale);
        }
        let now = self.clock.now();
        let entry = self.entry(token, now)?;
        let credential = &entry.credential;
        if check_expiry
            && credential
                .expires_at
                .is_some_and(|exp| now >= exp.saturating_add(LEEWAY_SECS))
        {
            return Err(CredentialError::Expired);
        }
        // An ancestor that expired takes its descendants with it (even where a refresh of an
        // expired key is allowed: the key that made it is gone).
        if credential
            .chain_expires_at
            .is_some_and(|exp| now >= exp.saturating_add(LEEWAY_SECS))
        {
            return Err(if check_expiry {
                CredentialError::Expired
            } else {
                CredentialError::MakerGone
            });
        }
        if credential.issued_at > now.saturating_add(LEEWAY_SECS)
            || credential
                .not_before
                .is_some_and(|nbf| nbf > now.saturating_add(LEEWAY_SECS))
        {
            return Err(CredentialError::NotYetValid);
        }
        let verdict = self.resolve(&entry, now);
        if let Err(e) = &verdict.outcome {
            return Err(*e);
        }
        Ok((entry, verdict))
    }

    /// The cached entry for `token`, verifying it on a miss.
    fn entry(&self, token: &str, now: u64) -> Result<Arc<Entry>, CredentialError> {
        if token.len() > credential::MAX_CREDENTIAL_LEN {
            return Err(CredentialError::TooLarge);
        }
        let generation = self.keys.generation();
        if let Some(entry) = self.cache.get(token) {
            let expired_long_ago = entry
                .credential
                .expires_at
                .or(entry.credential.chain_expires_at)
                .is_some_and(|exp| now >= exp.saturating_add(LEEWAY_SECS));
            if entry.credential.kid_generation == generation && !expired_long_ago {
                self.stats.cache_hits.fetch_add(1, Ordering::Relaxed);
                return Ok(entry);
            }
            // Dead or verified under a key ring that has since changed: verify again.
            self.cache.remove(token);
        }
        self.stats.cache_misses.fetch_add(1, Ordering::Relaxed);
        let credential = credential::decode(&self.keys.load(), token)?;
        let entry = Arc::new(Entry {
            shard: self.view.shard(&credential.account),
            credential: Arc::new(credential),
            resolved: ArcSwap::from_pointee(Resolved {
                stamp: Stamp::default(),
                outcome: Err(CredentialError::Revoked),
            }),
        });
        // Expired credentials are not worth a slot.
        let alive = entry
            .credential
            .expires_at
            .is_none_or(|exp| now < exp.saturating_add(LEEWAY_SECS));
        if alive {
            self.cache.insert(token.into(), entry.clone());
        }
        Ok(entry)
    }

    /// Revocation and role lookup, reused while the account's stamp in the view is unchanged.
    fn resolve(&self, entry: &Entry, now: u64) -> Verdict {
        // Read the stamp before looking: a change made during the lookups leaves this verdict
        // tagged with the older stamp, so the next check recomputes.
        let stamp = self.view.stamp(entry.shard);
        let cached = entry.resolved.load();
        if cached.stamp == stamp {
            return cached;
        }
        self.stats.resolves.fetch_add(1, Ordering::Relaxed);
        let c = &entry.credential;
        let role = |role_id: &str| {
            system_role(role_id)
                .or_else(|| self.view.role(&c.account, role_id))
                .ok_or(CredentialError::RoleNotFound)
        };
        let outcome = if self.view.is_revoked_ids(
            &c.account,
            c.origin_issued_at_ms,
            &c.revocation_ids,
            c.token_id.as_deref().filter(|_| c.disposable),
            now,
        ) {
            Err(CredentialError::Revoked)
        } else {
            let own = match &c.authority {
                Authority::Inline(set) => Ok(set.clone()),
                Authority::Role(role_id) => role(role_id),
            };
            let bound = c.root_role.as_deref().map(role).transpose();
            own.and_then(|own| Ok((own, bound?)))
        };
        let resolved = Arc::new(Resolved { stamp, outcome });
        entry.resolved.store(resolved.clone());
        Verdict::from_inner(resolved)
    }

    /// May `token` do `action` on `resource` from `peer`?
    pub fn check(
        &self,
        token: &str,
        action: Action,
        resource: &Resource<'_>,
        peer: Option<IpAddr>,
    ) -> Decision {
        let (entry, verdict) = match self.admit(token, true) {
            Ok(admitted) => admitted,
            Err(e) => {
                let reason = Reason::from(e);
                self.stats.denied[reason.index()].fetch_add(1, Ordering::Relaxed);
                return Decision {
                    outcome: Err((reason, e.to_string())),
                    entry: None,
                };
            }
        };
        let evaluated = match &verdict.outcome {
            Ok((own, bound)) => evaluate_both(own, bound.as_deref(), action, resource, peer),
            // `admit` returns only verdicts that allow.
            Err(_) => Err(Denial::Permission),
        };
        let outcome = evaluated.map_err(|denial| match denial {
            Denial::Permission => (
                Reason::Permission,
                format!("credential does not allow {action:?} on this resource"),
            ),
            Denial::IpNotAllowed => (
                Reason::IpNotAllowed,
                "the peer address is not allowed by the credential's ip_filter".to_owned(),
            ),
        });
        match &outcome {
            Ok(()) => self.stats.allowed.fetch_add(1, Ordering::Relaxed),
            Err((reason, _)) => self.stats.denied[reason.index()].fetch_add(1, Ordering::Relaxed),
        };
        Decision {
            outcome,
            entry: Some(entry),
        }
    }
}

/// A verdict as loaded from an entry (no reference count taken on the hot path).
type Verdict = arc_swap::Guard<Arc<Resolved>>;

/// The principal an allowing verdict describes.
fn principal(entry: &Arc<Entry>, verdict: &Resolved) -> Principal {
    let (permissions, bound) = match &verdict.outcome {
        Ok((own, bound)) => (own.clone(), bound.clone()),
        // Not reached: `admit` returns only verdicts that allow; an empty set allows nothing.
        Err(_) => (Arc::new(PermissionSet::rules(Vec::new())), None),
    };
    Principal {
        credential: entry.credential.clone(),
        permissions,
        bound,
    }
}

/// Both a credential's own set and its bound must allow (see [`Principal::evaluate`]).
fn evaluate_both(
    own: &PermissionSet,
    bound: Option<&PermissionSet>,
    action: Action,
    resource: &Resource<'_>,
    peer: Option<IpAddr>,
) -> Result<(), Denial> {
    policy::evaluate(own, action, resource, peer)?;
    match bound {
        Some(bound) => policy::evaluate(bound, action, resource, peer),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use crate::credential::{Claims, TYPE_API_KEY};
    use crate::verifier::view::Event;

    fn big_key(ring: &KeyRing, now: u64, i: usize) -> String {
        let claims = Claims {
            t: TYPE_API_KEY.into(),
            jti: uuid::Uuid::now_v7().to_string(),
            sub: "acme".into(),
            role: Some("viewer".into()),
            p: None,
            ipf: Vec::new(),
            anc: Vec::new(),
            tid: None,
            // Padding: a credential of over 5 KiB.
            cell: Some(format!("{i}{}", "x".repeat(4 * 1024))),
            iat: now,
            iatm: Some(now * 1000),
            oiatm: None,
            rr: None,
            aexp: None,
            exp: None,
            nbf: None,
        };
        credential::sign(ring, &claims).expect("sign")
    }

    fn viewer_key(ring: &KeyRing, account: &str, now: u64) -> (String, String) {
        let jti = uuid::Uuid::now_v7().to_string();
        let claims = Claims {
            t: TYPE_API_KEY.into(),
            jti: jti.clone(),
            sub: account.into(),
            role: Some("viewer".into()),
            p: None,
            ipf: Vec::new(),
            anc: Vec::new(),
            tid: None,
            cell: None,
            iat: now,
            iatm: Some(now * 1000),
            oiatm: None,
            rr: None,
            aexp: None,
            exp: None,
            nbf: None,
        };
        (credential::sign(ring, &claims).expect("sign"), jti)
    }

    /// Generations are per account: a storm of revocations in one account leaves another's
    /// cached verdicts in place, and a revocation still applies to its own account's very next
    /// check.
    #[test]
    fn a_revocation_storm_in_one_account_leaves_anothers_verdicts_cached() {
        let ring = KeyRing::ephemeral().expect("ring");
        let clock = Arc::new(ManualClock::starting_now());
        let now = clock.now();
        let view = Arc::new(View::new());
        // Two accounts on different generation counters (the hasher is keyed per process).
        let quiet = "quiet";
        let stormy = (0..)
            .map(|i| format!("stormy-{i}"))
            .find(|a| view.shard(a) != view.shard(quiet))
            .expect("an account on another counter");
        let (quiet_key, _) = viewer_key(&ring, quiet, now);
        let (stormy_key, stormy_id) = viewer_key(&ring, &stormy, now);
        let verifier = Verifier::new(ring, view.clone(), clock);
        let resource = Resource {
            cache: Some("c"),
            key: Some(b"k"),
            ..Resource::default()
        };
        let allowed = |token: &str| verifier.check(token, Action::CacheRead, &resource, None);
        assert!(allowed(&quiet_key).allowed());
        assert!(allowed(&stormy_key).allowed());
        let resolves = |v: &Verifier| v.stats().snapshot().resolves;
        let before = resolves(&verifier);
        for _ in 0..100 {
            view.apply(&Event::CredentialRevoked {
                account: stormy.clone(),
                id: uuid::Uuid::now_v7().to_string(),
                by: None,
            });
            assert!(allowed(&quiet_key).allowed());
        }
        assert_eq!(
            resolves(&verifier),
            before,
            "no quiet verdict was looked up again"
        );
        // The stormy account's own credential is looked up again, and its revocation applies
        // on the very next check.
        assert!(allowed(&stormy_key).allowed());
        assert_eq!(resolves(&verifier), before + 1);
        view.apply(&Event::CredentialRevoked {
            account: stormy.clone(),
            id: stormy_id,
            by: None,
        });
        let decision = allowed(&stormy_key);
        assert_eq!(decision.outcome.map_err(|(r, _)| r), Err(Reason::Revoked));
        // A reload (the view-wide epoch) makes every verdict look again.
        view.reload(Vec::new());
        let before = resolves(&verifier);
        assert!(allowed(&quiet_key).allowed());
        assert_eq!(resolves(&verifier), before + 1);
    }

    #[test]
    fn the_credential_cache_is_bounded_by_bytes_not_entries() {
        let ring = KeyRing::ephemeral().expect("ring");
        let clock = Arc::new(ManualClock::starting_now());
        let now = clock.now();
        let budget = 256 * 1024;
        let tokens: Vec<String> = (0..200).map(|i| big_key(&ring, now, i)).collect();
        let verifier = Verifier::new(ring, Arc::new(View::new()), clock).with_cache_bytes(budget);
        for token in &tokens {
            assert!(token.len() > 5 * 1024);
            verifier.authenticate(token).expect("a valid key");
        }
        let (held, capacity) = verifier.cache_weight();
        assert_eq!(capacity, budget);
        assert!(held <= budget, "{held} bytes held for a budget of {budget}");
        // 200 credentials weighing over 10 KiB each would be 2 MiB: most were not kept.
        assert!(held > budget / 4, "the cache is used: {held}");
        // And every credential still verifies, cached or not.
        for token in tokens.iter().take(5) {
            verifier.authenticate(token).expect("still valid");
        }
    }
}
