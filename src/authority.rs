//! The credential authority: mint -> sign -> store -> event.
//!
//! Business rules for keys, roles and revocation live here, free of gRPC and of any particular
//! store. Each operation takes the authenticated [`Caller`], checks what it may do (management
//! permissions and the delegation subset test), validates its input, and calls the store.

use std::net::IpAddr;
use std::sync::Arc;

use crate::clock::Clock;
use crate::credential::{self, Claims, CredentialError};
use crate::policy::proto::Invalid;
use crate::policy::{system, Action, Denial, PermissionSet, Resource};
use crate::store::limiter::RateLimiter;
use crate::store::{AuditQuery, AuditRecord, KeyRecord, RoleRecord, Store, StoreError};
use crate::verifier::view::Event;
use crate::verifier::{Principal, Verifier};

/// Errors of the authority, each with the meaning the API reports (mapped to gRPC status codes
/// in one place, `server::status`).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    Unauthenticated(CredentialError),
    #[error("{0}")]
    PermissionDenied(String),
    #[error("{0}")]
    Invalid(#[from] Invalid),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    AlreadyExists(String),
    #[error("{0}")]
    FailedPrecondition(String),
    #[error("{message}")]
    ResourceExhausted {
        message: String,
        retry_after_secs: u64,
    },
    #[error("{0}")]
    Unavailable(String),
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<CredentialError> for Error {
    fn from(e: CredentialError) -> Self {
        match e {
            // Not the caller's fault: this node cannot judge right now.
            CredentialError::StateNotLoaded | CredentialError::StateStale => {
                Error::Unavailable(e.to_string())
            }
            other => Error::Unauthenticated(other),
        }
    }
}

impl From<StoreError> for Error {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(m) => Error::NotFound(m),
            StoreError::AlreadyExists(m) => Error::AlreadyExists(m),
            StoreError::FailedPrecondition(m) => Error::FailedPrecondition(m),
            StoreError::QuotaExceeded(m) => Error::ResourceExhausted {
                message: m,
                retry_after_secs: 60,
            },
            StoreError::Unavailable(m) => {
                Error::Unavailable(format!("state store unavailable, nothing was changed: {m}"))
            }
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

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
        limited(
            self.settings.limiter.acquire(account).await,
            "token vending and key creation",
        )
    }

    /// Takes one revocation-endpoint call for the account, or says how long to wait.
    async fn revocation_rate_limit(&self, account: &str) -> Result<()> {
        limited(
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

    /// Mints a role-bound v2 API key and stores its metadata. Returns the key (shown once).
    #[allow(clippy::too_many_arguments)]
    async fn mint_role_key(
        &self,
        account: &str,
        role_id: &str,
        description: String,
        expires_at: Option<u64>,
        created_by: String,
        peer: Option<IpAddr>,
        request_id: Option<&str>,
    ) -> Result<(String, KeyRecord)> {
        let now_ms = self.stamp(account);
        let now = now_ms / 1000;
        let key_id = credential_id(now_ms);
        let claims = Claims {
            t: credential::TYPE_API_KEY.into(),
            jti: key_id.clone(),
            sub: account.to_owned(),
            role: Some(role_id.to_owned()),
            p: None,
            ipf: Vec::new(),
            anc: Vec::new(),
            tid: None,
            cell: None,
            iat: now,
            iatm: Some(now_ms),
            oiatm: None,
            rr: None,
            aexp: None,
            exp: expires_at,
            nbf: None,
        };
        let token = self.sign(&claims)?;
        let record = KeyRecord {
            key_id,
            account: account.to_owned(),
            description,
            role_id: Some(role_id.to_owned()),
            inline: None,
            token_id: None,
            created_by,
            issued_at: now,
            issued_at_ms: now_ms,
            ancestors: Vec::new(),
            origin_issued_at_ms: now_ms,
            expires_at,
            revoked_at: None,
            refresh_hash: None,
        };
        let audit = Self::audit(
            account,
            &record.created_by,
            peer,
            "key.created",
            &record.key_id,
            format!("role {role_id}; {:?}", record.description),
        );
        let Some(request_id) = request_id else {
            self.store.insert_key(record.clone(), Some(&audit)).await?;
            crate::metrics::bump(&crate::metrics::COUNTERS.keys_issued);
            return Ok((token, record));
        };
        // The same request again (same caller, role, description, expiry) under the same id
        // gets the same key; a different one is refused.
        let digest = request_digest(&[
            &record.created_by,
            role_id,
            &record.description,
            &expires_at.map_or_else(|| "never".to_owned(), |e| e.to_string()),
        ]);
        let receipt = crate::store::Receipt {
            digest: digest.clone(),
            key_id: record.key_id.clone(),
            claims: serde_json::to_string(&claims)
                .map_err(|e| Error::Internal(format!("claims: {e}")))?,
        };
        let Some(prior) = self
            .store
            .insert_key_once(record.clone(), Some(&audit), request_id, &receipt)
            .await?
        else {
            crate::metrics::bump(&crate::metrics::COUNTERS.keys_issued);
            return Ok((token, record));
        };
        if prior.digest != digest {
            return Err(Error::FailedPrecondition(format!(
                "{IDEMPOTENCY_KEY}: already used in the last 24 h for a different request; use a new one for each new request"
            )));
        }
        let claims: Claims = serde_json::from_str(&prior.claims)
            .map_err(|e| Error::Internal(format!("stored claims: {e}")))?;
        let record = self
            .store
            .get_key(account, &prior.key_id)
            .await?
            .ok_or_else(|| Error::Internal("the key of a replayed request is gone".into()))?;
        if self.key_status(&record) != KeyStatus::Active {
            return Err(Error::FailedPrecondition(format!(
                "{IDEMPOTENCY_KEY}: the key this request created ({}) has been revoked or has expired since",
                record.key_id
            )));
        }
        tracing::info!(account = %account, key_id = %record.key_id, "key creation replayed for a repeated idempotency-key");
        Ok((self.sign(&claims)?, record))
    }

    /// GenerateGlobalApiKey: a key bound to a role the caller could itself delegate. With a
    /// `request_id` (metadata [`IDEMPOTENCY_KEY`]), a retry of the same request returns the same
    /// key instead of creating a second one.
    pub async fn generate_key(
        &self,
        caller: &Caller,
        role_id: &str,
        description: &str,
        expiry: Option<Expiry>,
        request_id: Option<&str>,
    ) -> Result<(String, KeyRecord)> {
        self.require(caller, Action::AuthWrite)?;
        if let Some(id) = request_id {
            validate_request_id(id)?;
        }
        let description = validate_description("description", description)?;
        let expires_at = match expiry {
            None => {
                return Err(Invalid::new(
                    "expiry",
                    "required: set never, or expires with expiration_epoch_seconds",
                )
                .into())
            }
            Some(Expiry::Never) => None,
            Some(Expiry::At(at)) => {
                if at <= self.clock.now() {
                    return Err(Invalid::new(
                        "expires.expiration_epoch_seconds",
                        "must be in the future",
                    )
                    .into());
                }
                Some(at)
            }
        };
        let role = self.role_permissions(caller.account(), role_id).await?;
        self.require_delegable(caller, &format!("role {role_id:?}"), &role)?;
        self.rate_limit(caller.account()).await?;
        self.mint_role_key(
            caller.account(),
            role_id,
            description,
            expires_at,
            caller.key_id().to_owned(),
            caller.peer,
            request_id,
        )
        .await
    }

    /// The status of a key now. Revoked covers every way a key stops working for good: its
    /// own revocation, an issued-before cut, and the revocation of a credential that made it.
    pub fn key_status(&self, key: &KeyRecord) -> KeyStatus {
        let now = self.clock.now();
        let chain_revoked = self.verifier.view().is_revoked(
            &key.account,
            key.origin_ms(),
            std::iter::once(&key.key_id).chain(key.ancestors.iter()),
            None,
            now,
        );
        if key.revoked_at.is_some() || chain_revoked {
            KeyStatus::Revoked
        } else if key.expires_at.is_some_and(|exp| exp <= now) {
            KeyStatus::Expired
        } else {
            KeyStatus::Active
        }
    }

    /// All live keys of the caller's account (ListGlobalApiKeys).
    pub async fn live_keys(&self, caller: &Caller) -> Result<Vec<KeyRecord>> {
        self.require(caller, Action::AuthList)?;
        let mut out = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let batch = self
                .store
                .list_keys(caller.account(), after.as_deref(), MAX_PAGE as usize)
                .await?;
            let done = batch.len() < MAX_PAGE as usize;
            after = batch.last().map(|k| k.key_id.clone());
            out.extend(
                batch
                    .into_iter()
                    .filter(|k| self.key_status(k) == KeyStatus::Active),
            );
            if done {
                return Ok(out);
            }
        }
    }

    /// ListApiKeys: one page, in key-id (creation) order.
    pub async fn list_keys(
        &self,
        caller: &Caller,
        limit: u32,
        next_token: &str,
        include_inactive: bool,
    ) -> Result<KeyPage> {
        self.require(caller, Action::AuthList)?;
        let limit = page_limit(limit)?;
        let mut after = decode_page_token(next_token, KEY_PAGE_PREFIX, is_uuid)?;
        let mut keys = Vec::with_capacity(limit);
        loop {
            // Ask for one more than needed, to know whether another page exists.
            let want = limit + 1 - keys.len();
            let batch = self
                .store
                .list_keys(caller.account(), after.as_deref(), want)
                .await?;
            let exhausted = batch.len() < want;
            after = batch.last().map(|k| k.key_id.clone()).or(after);
            for key in batch {
                let status = self.key_status(&key);
                if include_inactive || status == KeyStatus::Active {
                    keys.push((key, status));
                }
            }
            if keys.len() > limit {
                keys.truncate(limit);
                let last = keys.last().map(|(k, _)| k.key_id.clone());
                return Ok(KeyPage {
                    keys,
                    next_token: last.map(|id| encode_page_token(KEY_PAGE_PREFIX, &id)),
                });
            }
            if exhausted {
                return Ok(KeyPage {
                    keys,
                    next_token: None,
                });
            }
        }
    }

    /// DescribeApiKey.
    pub async fn describe_key(
        &self,
        caller: &Caller,
        key_id: &str,
    ) -> Result<(KeyRecord, KeyStatus)> {
        self.require(caller, Action::AuthRead)?;
        validate_key_id(key_id)?;
        match self.store.get_key(caller.account(), key_id).await? {
            Some(key) => {
                let status = self.key_status(&key);
                Ok((key, status))
            }
            None => Err(not_found_key(key_id)),
        }
    }

    /// RevokeGlobalApiKey: the next call made with the key, on any RPC, is refused. Returns the
    /// record and the revocation id (for [`Authority::confirm_revocation`]).
    pub async fn revoke_key(
        &self,
        caller: &Caller,
        key_id: &str,
    ) -> Result<(KeyRecord, Option<String>)> {
        self.require(caller, Action::AuthWrite)?;
        validate_key_id(key_id)?;
        let key = self
            .store
            .get_key(caller.account(), key_id)
            .await?
            .ok_or_else(|| not_found_key(key_id))?;
        self.require_revocable(caller, &key).await?;
        Ok(self
            .store
            .revoke_key(
                caller.account(),
                key_id,
                self.clock.now(),
                Some(&Self::caller_audit(
                    caller,
                    "key.revoked",
                    key_id,
                    String::new(),
                )),
            )
            .await?)
    }

    /// Revoking is also a power over the key: nobody revokes a key that can do more than they
    /// can (an operator cannot revoke an owner's key). A key may always revoke itself.
    async fn require_revocable(&self, caller: &Caller, key: &KeyRecord) -> Result<()> {
        if key.key_id == caller.key_id() {
            return Ok(());
        }
        let target = match (&key.role_id, &key.inline) {
            (_, Some(inline)) => Some(inline.clone()),
            (Some(role_id), None) => self.role_permissions(caller.account(), role_id).await.ok(),
            (None, None) => None,
        };
        match target {
            Some(target) => self.require_delegable(caller, &format!("key {}", key.key_id), &target),
            // A key whose role is gone grants nothing; only an owner may tidy it up.
            None if caller.principal.is_super_user() => Ok(()),
            None => Err(Error::PermissionDenied(format!(
                "key {} can do more than the calling key: its role no longer exists",
                key.key_id
            ))),
        }
    }

    /// RevokeToken: a disposable token or an SDK-made key, by its id (jti), or disposable tokens
    /// by their caller-chosen token id. Returns the revocation id.
    ///
    /// Nobody revokes what they could not have made:
    /// - an id with a key record: an SDK-made key is revoked (record and all) if the caller
    ///   holds everything it grants; a role-bound key is refused with the error
    ///   RevokeGlobalApiKey would give this caller (or, if the caller may revoke it, pointed
    ///   there: RevokeToken is not for role-bound keys);
    /// - an id without a record (a disposable token: they are not stored) and token ids: an
    ///   owner's revocation applies account-wide; anyone else's applies only to credentials
    ///   that the calling key made, directly or through keys it made (the view checks the
    ///   revoker against the credential's ancestors), so no key can kill what a stronger key
    ///   minted.
    ///
    /// A token-id revocation holds until `expires_at` (epoch seconds; 0: the longest token
    /// lifetime from now), then is dropped everywhere, and the token id can be used again.
    pub async fn revoke_token(
        &self,
        caller: &Caller,
        token: TokenRef,
        expires_at: u64,
    ) -> Result<Option<String>> {
        self.require(caller, Action::AuthWrite)?;
        let account = caller.account().to_owned();
        let scope = (!caller.principal.is_super_user()).then(|| caller.key_id().to_owned());
        match token {
            TokenRef::Id(id) => {
                validate_key_id(&id).map_err(|_| Invalid::new("id", "not a token id (a UUID)"))?;
                if let Some(key) = self.store.get_key(&account, &id).await? {
                    if key.inline.is_none() {
                        self.require_revocable(caller, &key).await?;
                        return Err(Error::FailedPrecondition(format!(
                            "id: {id} is a role-bound API key: revoke it with RevokeGlobalApiKey"
                        )));
                    }
                    self.require_revocable(caller, &key).await?;
                    self.revocation_rate_limit(&account).await?;
                    let audit = Self::caller_audit(
                        caller,
                        "key.revoked",
                        &id,
                        "SDK-made key (RevokeToken)".into(),
                    );
                    let (_, event_id) = self
                        .store
                        .revoke_key(&account, &id, self.clock.now(), Some(&audit))
                        .await?;
                    return Ok(event_id);
                }
                self.revocation_rate_limit(&account).await?;
                let audit = Self::caller_audit(
                    caller,
                    "token.revoked",
                    &format!("token {id}"),
                    scope_detail(scope.as_deref()),
                );
                let event = Event::CredentialRevoked {
                    account,
                    id,
                    by: scope,
                };
                Ok(self.store.revoke(event, Some(&audit)).await?)
            }
            TokenRef::TokenId(token_id) => {
                validate_token_id("token_id", &token_id)?;
                if token_id.is_empty() {
                    return Err(Invalid::new("token_id", "must not be empty").into());
                }
                let now = self.clock.now();
                let longest = now + u64::from(crate::vending::MAX_DISPOSABLE_SECS);
                let until = match expires_at {
                    0 => longest,
                    at if at <= now => {
                        return Err(Invalid::new(
                            "expires_at_epoch_seconds",
                            "must be in the future (0: the longest token lifetime from now)",
                        )
                        .into())
                    }
                    // No token lives longer than this: holding the revocation longer protects
                    // nothing and only takes room.
                    at => at.min(longest),
                };
                self.revocation_rate_limit(&account).await?;
                let audit = Self::caller_audit(
                    caller,
                    "token.revoked",
                    &format!("token_id {token_id}"),
                    format!("until {until}; {}", scope_detail(scope.as_deref())),
                );
                let event = Event::TokenIdRevoked {
                    account,
                    token_id,
                    until,
                    by: scope,
                };
                Ok(self
                    .store
                    .revoke_token_id(
                        event,
                        now,
                        self.settings.max_token_id_revocations,
                        Some(&audit),
                    )
                    .await?)
            }
        }
    }

    /// RevokeIssuedBefore: every credential of the account issued before `before_ms` (epoch
    /// ms; `None`: the moment the call is handled, on the primary's clock). Owner only: it also
    /// revokes owner keys. Returns the cut in force (epoch ms) and the revocation id.
    pub async fn revoke_issued_before(
        &self,
        caller: &Caller,
        before_ms: Option<u64>,
    ) -> Result<(u64, Option<String>)> {
        self.require(caller, Action::AuthWrite)?;
        if !caller.principal.is_super_user() {
            return Err(Error::PermissionDenied(
                "revoking every credential of the account needs an owner key".into(),
            ));
        }
        if before_ms.is_some_and(|b| b > self.clock.now_ms()) {
            return Err(
                Invalid::new("issued_before_epoch_seconds", "must not be in the future").into(),
            );
        }
        self.revocation_rate_limit(caller.account()).await?;
        let audit = Self::caller_audit(
            caller,
            "credentials.revoked_before",
            crate::store::memory::CUT_PLACEHOLDER,
            format!(
                "every credential issued before {} (epoch ms)",
                crate::store::memory::CUT_PLACEHOLDER
            ),
        );
        Ok(self
            .store
            .revoke_issued_before(
                caller.account(),
                before_ms,
                self.clock.now_ms(),
                Some(&audit),
            )
            .await?)
    }

    /// Waits until every live cell has applied the revocation `id` (or the newest event when
    /// empty), up to `timeout_ms`; says which cells confirmed and which did not.
    pub async fn confirm_revocation(
        &self,
        caller: &Caller,
        id: &str,
        timeout_ms: u32,
    ) -> Result<Confirmation> {
        self.require(caller, Action::AuthRead)?;
        let timeout = match timeout_ms {
            0 => 5000,
            1..=MAX_CONFIRM_TIMEOUT_MS => timeout_ms,
            _ => {
                return Err(
                    Invalid::new("timeout_ms", format!("at most {MAX_CONFIRM_TIMEOUT_MS}")).into(),
                )
            }
        };
        if !id.is_empty() && !is_stream_id(id) {
            return Err(Invalid::new(
                "revocation_id",
                "not a revocation id (from a revoke response)",
            )
            .into());
        }
        self.revocation_rate_limit(caller.account()).await?;
        let target = if id.is_empty() {
            self.store.latest_event_id().await?
        } else {
            Some(id.to_owned())
        };
        let Some(target) = target else {
            // No event stream (embedded mode): the revocation applied here, in the only cell.
            return Ok(Confirmation {
                confirmed: true,
                confirmed_cells: vec![self.cell().to_owned()],
                pending_cells: Vec::new(),
                silent_cells: Vec::new(),
                revocation_id: id.to_owned(),
            });
        };
        // Each waiting call polls the primary: bound how many this node runs at once.
        let _permit = self
            .confirmations
            .try_acquire()
            .map_err(|_| Error::ResourceExhausted {
                message: format!(
                    "this node is already serving {} revocation confirmations; retry shortly",
                    self.settings.max_confirmations
                ),
                retry_after_secs: 1,
            })?;
        let started = std::time::Instant::now();
        loop {
            let nodes = self.store.nodes().await?;
            // Node reports carry the primary's time: compare them on the same clock.
            let now_ms = self.clock.now_ms();
            let mut confirmed = std::collections::BTreeSet::new();
            let mut pending = std::collections::BTreeSet::new();
            let mut silent = std::collections::BTreeSet::new();
            for node in &nodes {
                match node_standing(node, &target, now_ms) {
                    Standing::Applied => {
                        confirmed.insert(node.cell.clone());
                    }
                    Standing::Behind => {
                        pending.insert(node.cell.clone());
                    }
                    Standing::SilentMayServe => {
                        silent.insert(node.cell.clone());
                        pending.insert(node.cell.clone());
                    }
                    Standing::SilentFenced => {
                        silent.insert(node.cell.clone());
                    }
                }
            }
            // A cell is confirmed only when every node in it that could allow the credential
            // has applied the revocation.
            confirmed.retain(|cell| !pending.contains(cell));
            let done = pending.is_empty();
            if done || started.elapsed().as_millis() >= u128::from(timeout) {
                return Ok(Confirmation {
                    confirmed: done,
                    confirmed_cells: confirmed.into_iter().collect(),
                    pending_cells: pending.into_iter().collect(),
                    silent_cells: silent.into_iter().collect(),
                    revocation_id: target,
                });
            }
            tokio::time::sleep(CONFIRM_POLL).await;
        }
    }

    /// Every node's progress through the event stream, and the newest event id.
    pub async fn cells(&self, caller: &Caller) -> Result<(Vec<CellNode>, Option<String>)> {
        self.require(caller, Action::AuthRead)?;
        let latest = self.store.latest_event_id().await?;
        // Node reports carry the primary's time: compare them on the same clock.
        let now_ms = self.clock.now_ms();
        let nodes = self.store.nodes().await?;
        if latest.is_none() && nodes.is_empty() {
            return Ok((
                vec![CellNode {
                    node_id: "embedded".into(),
                    cell: self.cell().to_owned(),
                    position: String::new(),
                    lag_ms: 0,
                    last_seen_ms_ago: 0,
                    live: true,
                }],
                None,
            ));
        }
        let latest_ms = latest.as_deref().map_or(0, crate::store::StreamId::ms_of);
        let nodes = nodes
            .into_iter()
            .map(|n| CellNode {
                lag_ms: latest_ms.saturating_sub(crate::store::StreamId::ms_of(&n.position)),
                last_seen_ms_ago: now_ms.saturating_sub(n.seen_at_ms),
                live: is_live(&n, now_ms),
                node_id: n.node_id,
                cell: n.cell,
                position: n.position,
            })
            .collect();
        Ok((nodes, latest))
    }

    /// System roles, then the account's custom roles.
    pub async fn list_roles(&self, caller: &Caller) -> Result<Vec<RoleView>> {
        self.require(caller, Action::AuthList)?;
        let mut roles: Vec<RoleView> = system::ALL
            .iter()
            .filter_map(|id| {
                system::permissions(id).map(|permissions| RoleView {
                    role_id: (*id).to_owned(),
                    name: system::name(id).to_owned(),
                    description: format!("System role: {}", system::name(id)),
                    permissions,
                    system: true,
                    created_at: 0,
                    updated_at: 0,
                })
            })
            .collect();
        roles.extend(
            self.store
                .list_roles(caller.account())
                .await?
                .into_iter()
                .map(role_view),
        );
        Ok(roles)
    }

    /// CreateRole: explicit rules only, unique name, no more than the caller can do.
    pub async fn create_role(
        &self,
        caller: &Caller,
        name: &str,
        description: &str,
        permissions: PermissionSet,
    ) -> Result<RoleView> {
        self.require(caller, Action::AuthWrite)?;
        let name = validate_role_name(name)?;
        let description = validate_optional_description("description", description)?;
        self.require_delegable(caller, "the role", &permissions)?;
        let now = self.clock.now();
        let role = RoleRecord {
            role_id: uuid::Uuid::now_v7().to_string(),
            account: caller.account().to_owned(),
            name,
            description,
            permissions,
            created_at: now,
            updated_at: now,
        };
        let audit = Self::caller_audit(caller, "role.created", &role.role_id, role.name.clone());
        self.store.create_role(role.clone(), Some(&audit)).await?;
        Ok(role_view(role))
    }

    /// UpdateRole: every key bound to the role follows on its next check.
    pub async fn update_role(
        &self,
        caller: &Caller,
        role_id: &str,
        update: RoleUpdate,
    ) -> Result<RoleView> {
        self.require(caller, Action::AuthWrite)?;
        let mut role = self.custom_role(caller, role_id).await?;
        self.require_delegable(caller, "the role", &role.permissions)?;
        if let Some(name) = update.name {
            role.name = validate_role_name(&name)?;
        }
        if let Some(description) = update.description {
            role.description = validate_optional_description("description", &description)?;
        }
        if let Some(permissions) = update.permissions {
            self.require_delegable(caller, "the new permissions", &permissions)?;
            role.permissions = permissions;
        }
        role.updated_at = self.clock.now();
        let audit = Self::caller_audit(caller, "role.updated", &role.role_id, role.name.clone());
        self.store.update_role(role.clone(), Some(&audit)).await?;
        Ok(role_view(role))
    }

    /// DeleteRole: refused while live keys use the role.
    pub async fn delete_role(&self, caller: &Caller, role_id: &str) -> Result<()> {
        self.require(caller, Action::AuthWrite)?;
        let role = self.custom_role(caller, role_id).await?;
        self.require_delegable(caller, "the role", &role.permissions)?;
        Ok(self
            .store
            .delete_role(
                caller.account(),
                role_id,
                self.clock.now(),
                Some(&Self::caller_audit(
                    caller,
                    "role.deleted",
                    role_id,
                    role.name.clone(),
                )),
            )
            .await?)
    }

    async fn custom_role(&self, caller: &Caller, role_id: &str) -> Result<RoleRecord> {
        if role_id.is_empty() {
            return Err(Invalid::new("role_id", "required").into());
        }
        if system::permissions(role_id).is_some() {
            return Err(Error::FailedPrecondition(format!(
                "role_id: {role_id:?} is a system role and cannot be changed or deleted"
            )));
        }
        self.store
            .get_role(caller.account(), role_id)
            .await?
            .ok_or_else(|| Error::NotFound(format!("role_id: no role {role_id:?} in this account")))
    }

    /// ListAuditEvents: the caller's account's lifecycle events, newest first.
    pub async fn list_audit(
        &self,
        caller: &Caller,
        since_ms: u64,
        until_ms: u64,
        limit: u32,
        next_token: &str,
    ) -> Result<(Vec<AuditRecord>, Option<String>)> {
        self.require(caller, Action::AuthList)?;
        let limit = page_limit(limit)?;
        if since_ms > 0 && until_ms > 0 && since_ms >= until_ms {
            return Err(
                Invalid::new("until_epoch_millis", "must be after since_epoch_millis").into(),
            );
        }
        let before_id = decode_page_token(next_token, AUDIT_PAGE_PREFIX, is_stream_id)?;
        let query = AuditQuery {
            since_ms: (since_ms > 0).then_some(since_ms),
            until_ms: (until_ms > 0).then_some(until_ms),
            before_id,
            limit: limit + 1,
        };
        let mut events = self.store.list_audit(caller.account(), &query).await?;
        let next = if events.len() > limit {
            events.truncate(limit);
            events
                .last()
                .map(|e| encode_page_token(AUDIT_PAGE_PREFIX, &e.id))
        } else {
            None
        };
        Ok((events, next))
    }

    /// Records a signing key rotation (platform event, under the account `system`).
    pub async fn record_rotation(&self, kids: &[String], active: &str) {
        let audit = Self::audit(
            SYSTEM_ACCOUNT,
            SYSTEM_ACCOUNT,
            None,
            "signing_key.rotated",
            active,
            format!("trusted keys: {}", kids.join(", ")),
        );
        if let Err(e) = self.store.append_audit(&audit).await {
            tracing::warn!(error = %e, "cannot record the key rotation in the audit log");
        }
    }

    /// Creates `account` (if new) and its first owner key. Refuses if the account already has
    /// live keys, unless `force`.
    pub async fn bootstrap(&self, account: &str, force: bool) -> Result<(String, KeyRecord)> {
        validate_account_name(account)?;
        self.bootstrap_unchecked(account, force).await
    }

    /// Creates the platform account (`system`, where signing key rotations are recorded) and an
    /// owner key for it: for the platform's operators only, never for a tenant.
    pub async fn bootstrap_platform(&self, force: bool) -> Result<(String, KeyRecord)> {
        self.bootstrap_unchecked(SYSTEM_ACCOUNT, force).await
    }

    async fn bootstrap_unchecked(&self, account: &str, force: bool) -> Result<(String, KeyRecord)> {
        let now = self.clock.now();
        self.store.ensure_account(account, now).await?;
        let live = self.store.count_live_keys(account, now).await?;
        if live > 0 && !force {
            return Err(Error::FailedPrecondition(format!(
                "account {account:?} already has {live} live key(s); use --force to add another owner key"
            )));
        }
        self.mint_role_key(
            account,
            system::OWNER,
            "bootstrap owner key".into(),
            None,
            "bootstrap".into(),
            None,
            None,
        )
        .await
    }

    pub(crate) fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    pub(crate) fn sign_claims(&self, claims: &Claims) -> Result<String> {
        self.sign(claims)
    }
}

/// How long a node's last report keeps it counted as live.
pub const LIVENESS_MS: u64 = 5000;
/// A node silent for longer than this is taken to be gone (its entry is kept, and named, but no
/// longer waited for).
pub const GONE_AFTER_MS: u64 = 10 * 60 * 1000;

/// Where one node stands with respect to a revocation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Standing {
    /// Reported recently, at or past the revocation.
    Applied,
    /// Reported recently, not there yet.
    Behind,
    /// Silent (paused, cut off from the primary): when it comes back it may serve its last
    /// known state, which may not hold the revocation. Not confirmed.
    SilentMayServe,
    /// Silent, but it cannot allow anything it has not caught up on: it refuses every check
    /// once stale (`--stale-policy deny`) and has been silent longer than its bound, or it has
    /// been silent so long that it is taken to be gone.
    SilentFenced,
}

fn node_standing(node: &crate::store::NodeStatus, target: &str, now_ms: u64) -> Standing {
    let silent_for = now_ms.saturating_sub(node.seen_at_ms);
    if silent_for <= LIVENESS_MS {
        if crate::store::StreamId::cmp_text(&node.position, target).is_ge() {
            Standing::Applied
        } else {
            Standing::Behind
        }
    } else if crate::store::StreamId::cmp_text(&node.position, target).is_ge() {
        // Silent, but it had applied the revocation before it went quiet.
        Standing::Applied
    } else if silent_for > GONE_AFTER_MS
        || (node.deny_when_stale && silent_for > node.max_staleness_ms)
    {
        Standing::SilentFenced
    } else {
        Standing::SilentMayServe
    }
}

fn is_live(node: &crate::store::NodeStatus, now_ms: u64) -> bool {
    now_ms.saturating_sub(node.seen_at_ms) <= LIVENESS_MS
}

fn is_stream_id(id: &str) -> bool {
    let mut parts = id.splitn(2, '-');
    matches!(
        (parts.next(), parts.next()),
        (Some(ms), Some(seq)) if !ms.is_empty() && !seq.is_empty()
            && ms.bytes().all(|b| b.is_ascii_digit()) && seq.bytes().all(|b| b.is_ascii_digit())
    )
}

/// The outcome of waiting for a revocation to reach every cell.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Confirmation {
    pub confirmed: bool,
    pub confirmed_cells: Vec<String>,
    pub pending_cells: Vec<String>,
    /// Cells with a node that has not reported within [`LIVENESS_MS`].
    pub silent_cells: Vec<String>,
    pub revocation_id: String,
}

/// One node's progress.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CellNode {
    pub node_id: String,
    pub cell: String,
    pub position: String,
    pub lag_ms: u64,
    pub last_seen_ms_ago: u64,
    pub live: bool,
}

/// Which credential to revoke.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TokenRef {
    Id(String),
    TokenId(String),
}

fn role_view(role: RoleRecord) -> RoleView {
    RoleView {
        role_id: role.role_id,
        name: role.name,
        description: role.description,
        permissions: role.permissions,
        system: false,
        created_at: role.created_at,
        updated_at: role.updated_at,
    }
}

fn not_found_key(key_id: &str) -> Error {
    Error::NotFound(format!("key_id: no key {key_id} in this account"))
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

fn validate_text(field: &str, value: &str, max: usize) -> Result<String, Invalid> {
    if value.chars().count() > max {
        return Err(Invalid::new(field, format!("at most {max} characters")));
    }
    if value.chars().any(char::is_control) {
        return Err(Invalid::new(field, "must not contain control characters"));
    }
    Ok(value.to_owned())
}

/// The response metadata carrying RevokeGlobalApiKey's revocation id (the upstream response
/// has no field for it).
pub const REVOCATION_ID_METADATA: &str = "authcell-revocation-id";

/// The request metadata that makes a key creation safe to retry.
pub const IDEMPOTENCY_KEY: &str = "idempotency-key";

/// 1 to 128 characters of `A-Z a-z 0-9 . _ : -` (a UUID fits).
fn validate_request_id(value: &str) -> Result<(), Invalid> {
    let ok = !value.is_empty()
        && value.len() <= 128
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(Invalid::new(
            IDEMPOTENCY_KEY,
            "must be 1 to 128 characters of A-Z a-z 0-9 . _ : -",
        ))
    }
}

/// Hex SHA-256 of the parts, each length-prefixed (so that no two lists collide).
fn request_digest(parts: &[&str]) -> String {
    use sha2::{Digest, Sha256};
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update((part.len() as u64).to_be_bytes());
        hasher.update(part.as_bytes());
    }
    hex(&hasher.finalize())
}

/// Lower-case hex of a digest (refresh-token hashes, request digests).
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn validate_description(field: &str, value: &str) -> Result<String, Invalid> {
    if value.trim().is_empty() {
        return Err(Invalid::new(field, "required: say what the key is for"));
    }
    validate_text(field, value, MAX_DESCRIPTION_LEN)
}

pub(crate) fn validate_optional_description(field: &str, value: &str) -> Result<String, Invalid> {
    validate_text(field, value, MAX_DESCRIPTION_LEN)
}

/// Role and account names: 1 to 64 of letters, digits, '_', '-' and '.'.
fn validate_name_syntax(field: &str, name: &str) -> Result<(), Invalid> {
    if name.is_empty() || name.len() > MAX_NAME_LEN {
        return Err(Invalid::new(
            field,
            format!("1 to {MAX_NAME_LEN} characters"),
        ));
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
    {
        return Err(Invalid::new(
            field,
            "only letters, digits, '_', '-' and '.'",
        ));
    }
    Ok(())
}

fn validate_role_name(name: &str) -> Result<String, Invalid> {
    validate_name_syntax("name", name)?;
    if system::ALL.iter().any(|s| s.eq_ignore_ascii_case(name)) {
        return Err(Invalid::new(
            "name",
            "system role names (owner, operator, viewer) are reserved",
        ));
    }
    Ok(name.to_owned())
}

/// The account platform events (signing key rotations) are recorded under: never a tenant.
pub const SYSTEM_ACCOUNT: &str = "system";

fn validate_account_name(name: &str) -> Result<(), Invalid> {
    validate_name_syntax("account", name)?;
    if name.eq_ignore_ascii_case(SYSTEM_ACCOUNT) {
        return Err(Invalid::new(
            "account",
            "\"system\" is reserved for platform events and cannot be a tenant account",
        ));
    }
    Ok(())
}

/// A new credential id: a UUIDv7 whose time part is the credential's issue stamp. Ids are
/// strictly increasing within this process (a counter orders those of the same millisecond),
/// so key-id order is creation order.
pub(crate) fn credential_id(stamp_ms: u64) -> String {
    // ContextV7 keeps its counter in a Cell: shared behind a mutex, held for one call.
    static CONTEXT: std::sync::Mutex<uuid::ContextV7> =
        std::sync::Mutex::new(uuid::ContextV7::new());
    let context = CONTEXT.lock().unwrap_or_else(|e| e.into_inner());
    let ts = uuid::Timestamp::from_unix(
        &*context,
        stamp_ms / 1000,
        u32::try_from((stamp_ms % 1000) * 1_000_000).unwrap_or(0),
    );
    uuid::Uuid::new_v7(ts).to_string()
}

fn scope_detail(scope: Option<&str>) -> String {
    match scope {
        None => "account-wide (owner)".into(),
        Some(by) => format!("only credentials made by key {by}"),
    }
}

/// Maps a limiter's answer to a RESOURCE_EXHAUSTED naming what was limited.
fn limited(outcome: std::result::Result<(), std::time::Duration>, what: &str) -> Result<()> {
    outcome.map_err(|wait| {
        crate::metrics::bump(&crate::metrics::COUNTERS.rate_limited);
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

fn validate_key_id(key_id: &str) -> Result<(), Invalid> {
    if key_id.is_empty() {
        return Err(Invalid::new("key_id", "required"));
    }
    if !is_uuid(key_id) {
        return Err(Invalid::new("key_id", "not a key id (a UUID)"));
    }
    Ok(())
}

/// Longest caller-chosen token id.
pub const MAX_TOKEN_ID_LEN: usize = 64;

pub(crate) fn validate_token_id(field: &str, token_id: &str) -> Result<(), Invalid> {
    if token_id.chars().count() > MAX_TOKEN_ID_LEN {
        return Err(Invalid::new(
            field,
            format!("at most {MAX_TOKEN_ID_LEN} characters"),
        ));
    }
    if token_id.chars().any(char::is_control) {
        return Err(Invalid::new(field, "must not contain control characters"));
    }
    Ok(())
}

/// Page-token prefixes: a token from one listing is refused by another.
const KEY_PAGE_PREFIX: &str = "k1:";
const AUDIT_PAGE_PREFIX: &str = "a1:";

/// A page size: 1..=100, 0 meaning the default (100).
fn page_limit(limit: u32) -> Result<usize, Invalid> {
    match limit {
        0 => Ok(MAX_PAGE as usize),
        1..=MAX_PAGE => Ok(limit as usize),
        _ => Err(Invalid::new(
            "limit",
            format!("must be between 1 and {MAX_PAGE}"),
        )),
    }
}

/// The opaque next_token for a page ending at `last_id`.
fn encode_page_token(prefix: &str, last_id: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("{prefix}{last_id}"))
}

/// The id a next_token continues after (`None` for the first page), if the token is one of
/// this listing's.
fn decode_page_token(
    token: &str,
    prefix: &str,
    valid_id: fn(&str) -> bool,
) -> Result<Option<String>, Invalid> {
    use base64::Engine;
    if token.is_empty() {
        return Ok(None);
    }
    let bad = || Invalid::new("next_token", "not a next_token returned by a previous page");
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token)
        .map_err(|_| bad())?;
    let text = String::from_utf8(raw).map_err(|_| bad())?;
    let id = text.strip_prefix(prefix).ok_or_else(bad)?;
    if !valid_id(id) {
        return Err(bad());
    }
    Ok(Some(id.to_owned()))
}

fn is_uuid(id: &str) -> bool {
    uuid::Uuid::try_parse(id).is_ok()
}

/// A listing with page tokens: its codec, reachable from the fuzz targets ([`crate::fuzzing`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Listing {
    Keys,
    Audit,
}

impl Listing {
    fn codec(self) -> (&'static str, fn(&str) -> bool) {
        match self {
            Listing::Keys => (KEY_PAGE_PREFIX, is_uuid),
            Listing::Audit => (AUDIT_PAGE_PREFIX, is_stream_id),
        }
    }

    /// What the listing does with a request's next_token.
    pub(crate) fn decode_page_token(self, token: &str) -> Result<Option<String>, Invalid> {
        let (prefix, valid_id) = self.codec();
        decode_page_token(token, prefix, valid_id)
    }

    /// The next_token the listing returns for a page ending at `last_id`.
    pub(crate) fn encode_page_token(self, last_id: &str) -> String {
        encode_page_token(self.codec().0, last_id)
    }
}

#[cfg(test)]
mod tests {
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
