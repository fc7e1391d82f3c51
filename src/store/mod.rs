//! The state store: one interface, several implementations.
//!
//! The store is the system of record for accounts, key metadata (never plaintext keys), custom
//! roles, revocations and watermarks. Every mutation is atomic and yields the [`Event`] the live
//! view needs. [`memory::MemoryStore`] is the embedded default: everything in process memory,
//! nothing survives exit.

pub mod limiter;
pub mod memory;
pub mod redis;
pub mod stream_id;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::policy::{KeyPolicy, PermissionSet};
use crate::verifier::view::Event;

/// How long before its expiry a key is reported as expiring in the audit log
/// ([`Store::warn_expiring`]): 7 days.
pub const EXPIRY_WARNING_SECS: u64 = 7 * 86_400;

/// Keys made to live this long or less are not counted by the expiring-keys gauge: 1 day.
pub const GAUGE_MIN_LIFETIME_SECS: u64 = 86_400;

/// The detail of a `key.expiring` audit record.
pub fn expiring_detail(expires_at: u64, now: u64) -> String {
    let left = expires_at.saturating_sub(now);
    format!(
        "expires at {expires_at} (in {} d {} h); rotate it before then (authcell keys rotate)",
        left / 86_400,
        left % 86_400 / 3_600
    )
}

/// Metadata of an API key. The key itself is never stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyRecord {
    pub key_id: String,
    pub account: String,
    pub description: String,
    /// Role-bound keys name their role; SDK-made keys carry inline permissions instead.
    pub role_id: Option<String>,
    pub inline: Option<PermissionSet>,
    pub token_id: Option<String>,
    pub created_by: String,
    pub issued_at: u64,
    /// Issue time in epoch ms (0 in records written before it was kept: `issued_at` then).
    #[serde(default)]
    pub issued_at_ms: u64,
    /// For an SDK-made key, the chain of credentials that made it, nearest first (revoking any
    /// of them revokes it), and the chain's earliest issue time (ms).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ancestors: Vec<String>,
    #[serde(default)]
    pub origin_issued_at_ms: u64,
    pub expires_at: Option<u64>,
    pub revoked_at: Option<u64>,
    /// SHA-256 (hex) of the key's single-use refresh token (SDK-made keys only).
    pub refresh_hash: Option<String>,
    /// The rotation this key took part in, if any (RotateApiKey).
    #[serde(default, skip_serializing_if = "Rotation::is_none")]
    pub rotation: Rotation,
}

/// A key's part in rotations: the key that replaced it and when it is revoked, and the key it
/// replaced.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rotation {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    /// When a rotated key is revoked (epoch seconds): the end of its overlap.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revokes_at: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// The `idempotency-key` the rotation was asked under (on the rotated key), so that a
    /// retry of the same request by the same key gets the same new key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request: Option<String>,
}

impl Rotation {
    pub fn is_none(&self) -> bool {
        *self == Rotation::default()
    }
}

impl KeyRecord {
    /// When the expiring-keys gauge counts the key as lapsing: keys made to live longer than
    /// [`GAUGE_MIN_LIFETIME_SECS`] (shorter ones, such as browser SDK keys, lapse by design and
    /// are refreshed), and any key a rotation revokes.
    pub fn gauged_lapse(&self) -> Option<u64> {
        let long = self
            .expires_at
            .is_some_and(|exp| exp.saturating_sub(self.issued_at) > GAUGE_MIN_LIFETIME_SECS);
        if long || self.rotation.revokes_at.is_some() {
            self.lapses_at()
        } else {
            None
        }
    }

    /// Whether the key is warned of before it expires: it lives longer than the warning
    /// window, so it enters it at some point. The time it does, if so.
    pub fn warns_at(&self) -> Option<u64> {
        let expires_at = self.expires_at?;
        (expires_at.saturating_sub(self.issued_at) > EXPIRY_WARNING_SECS)
            .then(|| expires_at - EXPIRY_WARNING_SECS)
    }

    /// When the key stops working by itself: its expiry, or a rotation's scheduled
    /// revocation, whichever comes first (`None`: never).
    pub fn lapses_at(&self) -> Option<u64> {
        match (self.expires_at, self.rotation.revokes_at) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The chain's earliest issue time in epoch ms, as issued-before watermarks compare it.
    pub fn origin_ms(&self) -> u64 {
        let own = if self.issued_at_ms > 0 {
            self.issued_at_ms
        } else {
            self.issued_at.saturating_mul(1000)
        };
        if self.origin_issued_at_ms > 0 {
            self.origin_issued_at_ms.min(own)
        } else {
            own
        }
    }
}

/// A custom role.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoleRecord {
    pub role_id: String,
    pub account: String,
    pub name: String,
    pub description: String,
    pub permissions: PermissionSet,
    pub created_at: u64,
    pub updated_at: u64,
}

/// What one node reported about its progress through the event stream.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeStatus {
    pub node_id: String,
    pub cell: String,
    /// The last event stream id the node applied ("0-0" before any).
    pub position: String,
    /// Milliseconds of the report, on the primary's clock.
    pub seen_at_ms: u64,
    /// The node's --max-staleness, in ms (0 in reports of nodes that predate it).
    #[serde(default)]
    pub max_staleness_ms: u64,
    /// Whether the node refuses every check once its view is older than that.
    #[serde(default)]
    pub deny_when_stale: bool,
}

/// One lifecycle event of an account: who (key id), what, when and from where. Stores write it
/// in the same atomic step as the mutation it records.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRecord {
    /// Assigned by the store: time-ordered (`<millis>-<seq>`).
    #[serde(default, skip_serializing)]
    pub id: String,
    /// Wall-clock milliseconds, taken from the id.
    #[serde(default, skip_serializing)]
    pub at_ms: u64,
    pub account: String,
    /// Key id of the acting credential ("bootstrap" or "system" when none).
    pub actor: String,
    pub peer: Option<String>,
    /// `key.created`, `key.revoked`, `key.refreshed`, `key.rotated`, `role.created`, `role.updated`,
    /// `role.deleted`, `token.revoked`, `credentials.revoked_before`, `signing_key.rotated`.
    pub action: String,
    pub target: String,
    pub detail: String,
}

/// A time window and page of an audit listing, newest first.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AuditQuery {
    /// Events at or after this time (ms).
    pub since_ms: Option<u64>,
    /// Events before this time (ms).
    pub until_ms: Option<u64>,
    /// Continue strictly before this event id.
    pub before_id: Option<String>,
    pub limit: usize,
}

pub use stream_id::StreamId;

/// Store failures, each with the meaning the API reports.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    AlreadyExists(String),
    #[error("{0}")]
    FailedPrecondition(String),
    /// A per-account quota is used up; nothing was changed.
    #[error("{0}")]
    QuotaExceeded(String),
    /// The store could not be reached; nothing was changed.
    #[error("state store unavailable: {0}")]
    Unavailable(String),
}

pub type StoreResult<T> = Result<T, StoreError>;

/// How long a request id (`idempotency-key`) is remembered.
pub const IDEMPOTENCY_TTL_SECS: u64 = 24 * 3600;

/// What a creation made under a request id: enough to answer a retry with the same result
/// (the key's claims are the public part of the token: re-signed, they give the same key).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Receipt {
    /// Digest of the request, so that a request id reused for a different request is refused.
    pub digest: String,
    pub key_id: String,
    /// The key's claims, as JSON.
    pub claims: String,
}

/// The state store. Mutations are atomic: they either happen whole (and their event is applied
/// or published) or not at all.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Creates an account; `false` if it already existed.
    async fn ensure_account(&self, account: &str, now: u64) -> StoreResult<bool>;

    /// Number of keys of the account that are neither revoked nor expired at `now`.
    async fn count_live_keys(&self, account: &str, now: u64) -> StoreResult<usize>;

    /// Stores a new key's metadata.
    async fn insert_key(&self, key: KeyRecord, audit: Option<&AuditRecord>) -> StoreResult<()>;

    /// Stores a new key's metadata once per `request_id` (per account, for
    /// [`IDEMPOTENCY_TTL_SECS`]), together with `receipt`, in the same atomic step. If the
    /// account already used `request_id`, stores nothing and returns that request's receipt.
    async fn insert_key_once(
        &self,
        key: KeyRecord,
        audit: Option<&AuditRecord>,
        request_id: &str,
        receipt: &Receipt,
    ) -> StoreResult<Option<Receipt>>;

    async fn get_key(&self, account: &str, key_id: &str) -> StoreResult<Option<KeyRecord>>;

    /// A key as the nearest copy of the state holds it, for checks about what the key grants
    /// (its role, its inline permissions, who made it: none of which ever change after it is
    /// created) ahead of a mutation that settles the rest on the system of record. A Redis node
    /// reads its cell's replica (no round trip to a primary a region away) and falls back to
    /// the primary for a key the replica does not hold yet. Never use it for `revoked_at`.
    async fn get_key_nearby(&self, account: &str, key_id: &str) -> StoreResult<Option<KeyRecord>> {
        self.get_key(account, key_id).await
    }

    /// Keys of the account in key-id order, strictly after `after`, at most `limit`.
    async fn list_keys(
        &self,
        account: &str,
        after: Option<&str>,
        limit: usize,
    ) -> StoreResult<Vec<KeyRecord>>;

    /// Rotates `old` (as the caller read it) to `new` in one atomic mutation: `new` is stored
    /// with `rotation.from` naming `old`; `old` gets `rotation.to` and `revokes_at`, and a
    /// schedule entry that [`Store::revoke_due`] acts on. With `revokes_at <= now` the old key is
    /// revoked (and its revocation published) in the same mutation instead. `NotFound` if `old`
    /// is not in the account; `FailedPrecondition` if it is revoked or already rotated. The
    /// audit records (`key.rotated`, and `key.revoked` when immediate) go with it.
    async fn rotate_key(
        &self,
        old: &KeyRecord,
        new: KeyRecord,
        revokes_at: u64,
        now: u64,
        request_id: Option<&str>,
        audit: &[AuditRecord],
    ) -> StoreResult<Option<String>>;

    /// Revokes every rotated key whose overlap ended by `now` (epoch seconds), each with its
    /// event and a `key.revoked` audit record by `system`. Safe to run from every node at once:
    /// each scheduled revocation is taken by exactly one run. Returns how many it revoked.
    async fn revoke_due(&self, now: u64) -> StoreResult<usize>;

    /// Marks `key` (as the caller read it: its account, id and role are what count) revoked
    /// (idempotent: revoking a revoked key keeps the first time) and publishes its revocation,
    /// in one round trip to the system of record. `NotFound` if the account has no such key.
    /// Returns the record with its revocation time, and the revocation's event id (`None` where
    /// there is no event stream).
    async fn revoke_key(
        &self,
        key: &KeyRecord,
        now: u64,
        audit: Option<&AuditRecord>,
    ) -> StoreResult<(KeyRecord, Option<String>)>;

    /// Publishes the revocation of a credential that has no key record (a disposable token),
    /// by id: an [`Event::CredentialRevoked`]; any other event is refused.
    async fn revoke(
        &self,
        event: Event,
        audit: Option<&AuditRecord>,
    ) -> StoreResult<Option<String>>;

    /// Publishes a token-id revocation ([`Event::TokenIdRevoked`]; any other event is refused),
    /// dropping revocations that ended by `now` (epoch seconds) first, the account's among them.
    /// `QuotaExceeded` if the account already has `max_live` others in force. A revocation
    /// of the same token id and scope keeps the later end.
    async fn revoke_token_id(
        &self,
        event: Event,
        now: u64,
        max_live: usize,
        audit: Option<&AuditRecord>,
    ) -> StoreResult<Option<String>>;

    /// Raises the account's issued-before watermark: to `before_ms` when given, else to just
    /// after the current time on the store's clock (for Redis, the primary's `TIME`; the
    /// embedded store uses `now_ms`), and in any case above every earlier cut, so that a
    /// credential stamped at the previous watermark cannot survive a later cut. Returns the
    /// watermark in force (epoch ms) and the revocation's event id.
    async fn revoke_issued_before(
        &self,
        account: &str,
        before_ms: Option<u64>,
        now_ms: u64,
        audit: Option<&AuditRecord>,
    ) -> StoreResult<(u64, Option<String>)>;

    /// Records an event that is not part of a mutation (a signing key rotation).
    async fn append_audit(&self, audit: &AuditRecord) -> StoreResult<()>;

    /// The account's audit events, newest first.
    async fn list_audit(&self, account: &str, query: &AuditQuery) -> StoreResult<Vec<AuditRecord>>;

    /// The newest event id of the stream (`None` where there is no event stream).
    async fn latest_event_id(&self) -> StoreResult<Option<String>>;

    /// Every node's last reported position (empty where there is no event stream).
    async fn nodes(&self) -> StoreResult<Vec<NodeStatus>>;

    /// Records a `key.expiring` audit event (actor `system`) for each key that has entered the
    /// last [`EXPIRY_WARNING_SECS`] of its life, once per key however many nodes call it at
    /// once. Only keys that lived longer than that window are warned of (they *enter* it;
    /// short-lived SDK keys would flood the log otherwise); a key revoked, rotating or revoked
    /// through its chain by then is skipped. Returns how many it recorded.
    async fn warn_expiring(&self, now: u64) -> StoreResult<usize>;

    /// Keys whose lapse time ([`KeyRecord::lapses_at`]) falls in `(now, now + within]`,
    /// including some that are revoked by now (the caller checks each key's status).
    async fn keys_lapsing(&self, now: u64, within: u64) -> StoreResult<Vec<KeyRecord>>;

    /// Sets the account's key policy (an empty one clears it) and publishes it to every node's
    /// view ([`Event::KeyPolicySet`]).
    async fn set_key_policy(
        &self,
        account: &str,
        policy: &KeyPolicy,
        audit: Option<&AuditRecord>,
    ) -> StoreResult<()>;

    /// The account's key policy as the system of record has it (empty when none was set).
    async fn get_key_policy(&self, account: &str) -> StoreResult<KeyPolicy>;

    async fn list_roles(&self, account: &str) -> StoreResult<Vec<RoleRecord>>;

    async fn get_role(&self, account: &str, role_id: &str) -> StoreResult<Option<RoleRecord>>;

    /// Creates a role; `AlreadyExists` if the account has a role of that name.
    async fn create_role(&self, role: RoleRecord, audit: Option<&AuditRecord>) -> StoreResult<()>;

    /// Replaces a role; `NotFound` if absent, `AlreadyExists` if renamed onto another's name.
    async fn update_role(&self, role: RoleRecord, audit: Option<&AuditRecord>) -> StoreResult<()>;

    /// Atomically replaces an SDK-made key by its successor: checks that `old_key_id` is live
    /// and its refresh hash equals `refresh_hash`, revokes it (publishing the revocation) and
    /// inserts `new_key`. `FailedPrecondition` if the hash does not match or the key was
    /// already revoked: a refresh token works once.
    async fn rotate_refresh(
        &self,
        account: &str,
        old_key_id: &str,
        refresh_hash: &str,
        new_key: KeyRecord,
        now: u64,
        audit: Option<&AuditRecord>,
    ) -> StoreResult<()>;

    /// Replaces the refresh hash of an unrevoked SDK-made key (a rotation replayed: the lost
    /// reply's refresh token stops working). `NotFound` or `FailedPrecondition` (revoked,
    /// which includes refreshed).
    async fn reset_refresh(
        &self,
        account: &str,
        key_id: &str,
        refresh_hash: &str,
    ) -> StoreResult<()>;

    /// Deletes a role; `FailedPrecondition` (saying how many) while live keys use it.
    async fn delete_role(
        &self,
        account: &str,
        role_id: &str,
        now: u64,
        audit: Option<&AuditRecord>,
    ) -> StoreResult<()>;
}
