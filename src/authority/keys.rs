//! Keys: minting role-bound v2 API keys, listing, describing, and an account's first key.

use super::key_policy::kind_of;
use super::vending::earliest;
use super::*;
use crate::policy::lifetime::CredentialKind;

/// The claims of a role-bound key: all of them follow from its record, so a key's token can be
/// signed again from it (a replayed request).
fn role_key_claims(record: &KeyRecord, role_id: &str) -> Claims {
    Claims {
        t: credential::TYPE_API_KEY.into(),
        jti: record.key_id.clone(),
        sub: record.account.clone(),
        role: Some(role_id.to_owned()),
        p: None,
        ipf: Vec::new(),
        anc: Vec::new(),
        tid: None,
        cell: None,
        iat: record.issued_at,
        iatm: Some(record.issued_at_ms),
        oiatm: None,
        rr: None,
        aexp: None,
        exp: record.expires_at,
        nbf: None,
    }
}

impl Authority {
    /// A new role-bound key: its token (signed) and record, not stored yet.
    fn new_role_key(
        &self,
        account: &str,
        role_id: &str,
        description: String,
        expires_at: Option<u64>,
        created_by: String,
    ) -> Result<(String, KeyRecord, Claims)> {
        let now_ms = self.stamp(account);
        let now = now_ms / 1000;
        let key_id = credential_id(now_ms);
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
            rotation: Default::default(),
        };
        let claims = role_key_claims(&record, role_id);
        let token = self.sign(&claims)?;
        Ok((token, record, claims))
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
        let (token, record, claims) =
            self.new_role_key(account, role_id, description, expires_at, created_by)?;
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
            Counters::bump(&self.settings.counters.keys_issued);
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
            Counters::bump(&self.settings.counters.keys_issued);
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
        request: NewKey,
    ) -> Result<(String, KeyRecord)> {
        self.require(caller, Action::AuthWrite)?;
        let NewKey {
            role_id,
            description,
            expiry,
            request_id,
        } = request;
        let expires_at = match expiry {
            Expiry::Never => None,
            Expiry::At(at) if at <= self.clock.now() => {
                return Err(Invalid::new(
                    "expires.expiration_epoch_seconds",
                    "must be in the future",
                )
                .into());
            }
            Expiry::At(at) => Some(at),
        };
        self.check_requested_lifetime(
            caller.account(),
            CredentialKind::RoleKey,
            key_policy::lifetime_of(self.clock.now(), expires_at),
            "expiry",
        )?;
        let role = self.role_permissions(caller.account(), &role_id).await?;
        self.require_delegable(caller, &format!("role {role_id:?}"), &role)?;
        self.rate_limit(caller.account()).await?;
        self.mint_role_key(
            caller.account(),
            &role_id,
            description,
            expires_at,
            caller.key_id().to_owned(),
            caller.peer,
            request_id.as_deref(),
        )
        .await
    }

    /// RotateApiKey: a new key with the old one's role (or, for an SDK-made key, its
    /// permissions, chain and token id), description and lifetime, and the old key revoked once
    /// `overlap_secs` have passed (at once for 0), in one atomic mutation. The caller must be
    /// able to revoke the old key and to create one like it (nobody rotates a key stronger than
    /// their own). The new key's lifetime is the old one's unless the request names one; either
    /// way the account's key policy must allow it.
    pub async fn rotate_key(&self, caller: &Caller, request: KeyRotation) -> Result<Rotated> {
        self.require(caller, Action::AuthWrite)?;
        let account = caller.account();
        let key_id = request.key_id.as_str();
        let mut old = self
            .store
            .get_key(account, key_id)
            .await?
            .ok_or_else(|| not_found_key(key_id))?;
        // A rotation asked again (the old key may be revoked by now, with no overlap).
        if let Some(to) = old.rotation.to.clone() {
            return self.replay_rotation(caller, &request, old, &to).await;
        }
        match self.key_status(&old) {
            KeyStatus::Active => {}
            KeyStatus::Revoked => {
                return Err(Error::FailedPrecondition(format!(
                    "key_id: key {key_id} is revoked; only a live key can be rotated"
                )))
            }
            KeyStatus::Expired => {
                return Err(Error::FailedPrecondition(format!(
                    "key_id: key {key_id} has expired; only a live key can be rotated"
                )))
            }
        }
        // An SDK-made key that rotated itself would get a successor without its refresh token,
        // one that outlives it: what a refresh is, minus the single-use token that exposes a
        // stolen key. Its holder refreshes instead; anyone else holding its permissions rotates.
        // (SDK-made keys cannot hold AuthWrite today, so `require` above already refuses them:
        // this keeps the rule if that ever changes.)
        if old.role_id.is_none() && old.key_id == caller.key_id() {
            return Err(Error::FailedPrecondition(
                "key_id: an SDK-made key cannot rotate itself: refresh it with its refresh token (auth.Auth/RefreshApiToken), or rotate it with another key".into(),
            ));
        }
        self.require_revocable(caller, &old).await?;
        // An SDK-made key's successor keeps its chain: it never outlives an ancestor.
        let chain = match old.role_id {
            Some(_) => None,
            None => Some(self.chain_of(&old).await?),
        };
        let now = self.clock.now();
        let bound = chain
            .as_ref()
            .and_then(|(_, aexp)| aexp.map(|at| at.saturating_sub(now)));
        let old_lifetime = key_policy::lifetime_of(old.issued_at, old.expires_at);
        // The same lifetime policy: a key that expired N seconds after issue is replaced by one
        // that expires N seconds after its own; a key that never expires, by one that never
        // does. Or the lifetime the request names (for an SDK-made key, at most its own: a
        // rotation does not lengthen a derived key's life). The policy judges the lifetime the
        // new key will have.
        let lifetime = match request.lifetime_secs {
            Some(secs) => {
                if let (Some(_), Some(own)) = (&chain, old_lifetime) {
                    if secs > own {
                        return Err(Invalid::new(
                            "lifetime_seconds",
                            format!("an SDK-made key's replacement lives at most as long as the key did ({own} s)"),
                        )
                        .into());
                    }
                }
                self.check_requested_lifetime(
                    account,
                    kind_of(&old),
                    earliest(Some(secs), bound),
                    "lifetime_seconds",
                )?;
                Some(secs)
            }
            None => {
                self.check_carried_lifetime(
                    &old,
                    earliest(old_lifetime, bound),
                    "name a lifetime within the policy (lifetime_seconds; authcell keys rotate --expires-in)",
                )?;
                old_lifetime
            }
        };
        let (token, mut new, refresh_token) = match old.role_id.clone() {
            Some(role_id) => {
                let role = self.role_permissions(account, &role_id).await?;
                self.require_delegable(caller, &format!("role {role_id:?}"), &role)?;
                self.rate_limit(account).await?;
                let expires_at = lifetime.map(|secs| self.clock.now().saturating_add(secs));
                let (token, new, _) = self.new_role_key(
                    account,
                    &role_id,
                    old.description.clone(),
                    expires_at,
                    caller.key_id().to_owned(),
                )?;
                (token, new, None)
            }
            None => {
                self.rate_limit(account).await?;
                let chain = chain.ok_or_else(|| {
                    Error::Internal("an SDK-made key's chain was not read".into())
                })?;
                let (token, new, refresh) = self.sdk_key_successor(&old, chain, lifetime)?;
                (token, new, Some(refresh))
            }
        };
        let now = new.issued_at;
        // Whole seconds, rounded up: the old key never loses part of its overlap (a rotation at
        // x.9 s with a 1 s overlap revokes at x+2, not at x+1).
        let revokes_at = match request.overlap_secs {
            0 => now,
            overlap => new.issued_at_ms.div_ceil(1000).saturating_add(overlap),
        };
        let audit = [
            Self::audit(
                account,
                caller.key_id(),
                caller.peer,
                "key.rotated",
                key_id,
                format!(
                    "replaced by {}; old key revoked at {revokes_at} (overlap {} s)",
                    new.key_id, request.overlap_secs
                ),
            ),
            Self::audit(
                account,
                caller.key_id(),
                caller.peer,
                "key.revoked",
                key_id,
                format!("rotated to {} with no overlap", new.key_id),
            ),
        ];
        let request_stamp = request
            .request_id
            .as_deref()
            .map(|id| rotation_request(caller, &request, id));
        self.store
            .rotate_key(
                &old,
                new.clone(),
                revokes_at,
                now,
                request_stamp.as_deref(),
                &audit,
            )
            .await?;
        Counters::bump(&self.settings.counters.keys_issued);
        new.rotation.from = Some(old.key_id.clone());
        old.rotation.to = Some(new.key_id.clone());
        old.rotation.revokes_at = Some(revokes_at);
        old.rotation.request = request_stamp;
        if revokes_at <= now {
            old.revoked_at = Some(now);
        }
        tracing::info!(account = %account, old = %old.key_id, new = %new.key_id, revokes_at, "key rotated");
        Ok(Rotated {
            token,
            refresh_token,
            new,
            old,
        })
    }

    /// A rotation asked again: under the `idempotency-key` it was made with, by the key that made
    /// it, while the replacement is live, the same new key (signed again from its record: the
    /// same claims, and Ed25519 signatures are deterministic; an SDK-made key gets a new refresh
    /// token, the lost one stops working); otherwise refused as already rotating.
    async fn replay_rotation(
        &self,
        caller: &Caller,
        request: &KeyRotation,
        old: KeyRecord,
        to: &str,
    ) -> Result<Rotated> {
        let refused = || {
            Error::FailedPrecondition(format!(
                "key_id: key {} is already rotating (replaced by {to})",
                old.key_id
            ))
        };
        let (Some(asked), Some(made)) = (&request.request_id, &old.rotation.request) else {
            return Err(refused());
        };
        if rotation_request(caller, request, asked) != *made {
            return Err(refused());
        }
        let new = self
            .store
            .get_key(caller.account(), to)
            .await?
            .ok_or_else(refused)?;
        if self.key_status(&new) != KeyStatus::Active {
            return Err(refused());
        }
        let (token, refresh_token) = match &new.role_id {
            Some(role_id) => (self.sign(&role_key_claims(&new, role_id))?, None),
            None => {
                let (token, refresh) = self.reissue_sdk_key(&new).await?;
                let audit = Self::caller_audit(
                    caller,
                    "key.refresh_reissued",
                    &new.key_id,
                    format!("rotation of {} replayed: a new refresh token replaces the one of the lost reply", old.key_id),
                );
                self.store.append_audit(&audit).await?;
                (token, Some(refresh))
            }
        };
        tracing::info!(account = %caller.account(), old = %old.key_id, new = %new.key_id, "key rotation replayed for a repeated idempotency-key");
        Ok(Rotated {
            token,
            refresh_token,
            new,
            old,
        })
    }

    /// Revokes rotated keys whose overlap has ended (every node runs this on a timer; see
    /// [`crate::store::Store::revoke_due`]).
    pub async fn revoke_due(&self) -> Result<usize> {
        Ok(self.store.revoke_due(self.clock.now()).await?)
    }

    /// Records `key.expiring` for keys that entered their last week (every node runs this on
    /// a timer; see [`crate::store::Store::warn_expiring`]).
    pub async fn warn_expiring(&self) -> Result<usize> {
        Ok(self.store.warn_expiring(self.clock.now()).await?)
    }

    /// Every live key that lapses (expires, or a rotation revokes it) within `within` seconds:
    /// its account and the seconds left.
    pub async fn lapsing_keys(&self, within: u64) -> Result<Vec<(String, u64)>> {
        let now = self.clock.now();
        Ok(self
            .store
            .keys_lapsing(now, within)
            .await?
            .into_iter()
            .filter(|k| self.key_status(k) == KeyStatus::Active)
            .filter_map(|k| {
                let left = k.lapses_at()?.saturating_sub(now);
                Some((k.account, left))
            })
            .collect())
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
        self.live_keys_of(caller.account()).await
    }

    /// All live keys of `account`, for a caller already allowed to see them.
    pub(super) async fn live_keys_of(&self, account: &str) -> Result<Vec<KeyRecord>> {
        let mut out = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let batch = self
                .store
                .list_keys(account, after.as_deref(), MAX_PAGE as usize)
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
    pub async fn list_keys(&self, caller: &Caller, request: KeyListing) -> Result<KeyPage> {
        self.require(caller, Action::AuthList)?;
        let KeyListing {
            limit,
            mut after,
            include_inactive,
            expiring_within,
        } = request;
        let horizon = expiring_within.map(|s| self.clock.now().saturating_add(s));
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
                let wanted = match horizon {
                    Some(horizon) => {
                        status == KeyStatus::Active
                            && key.lapses_at().is_some_and(|at| at <= horizon)
                    }
                    None => include_inactive || status == KeyStatus::Active,
                };
                if wanted {
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
        key_id: &KeyId,
    ) -> Result<(KeyRecord, KeyStatus)> {
        self.require(caller, Action::AuthRead)?;
        let key_id = key_id.as_str();
        match self.store.get_key(caller.account(), key_id).await? {
            Some(key) => {
                let status = self.key_status(&key);
                Ok((key, status))
            }
            None => Err(not_found_key(key_id)),
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
}

/// What a rotation stores as its request: the calling key, its `idempotency-key` and what it
/// asked, so that only the same key's retry of the same request replays it.
fn rotation_request(caller: &Caller, request: &KeyRotation, request_id: &str) -> String {
    format!(
        "{} {request_id} {} {}",
        caller.key_id(),
        request.overlap_secs,
        request.lifetime_secs.unwrap_or(0)
    )
}

/// A rotation's outcome: the new key's secret (and refresh token, for an SDK-made key), its
/// record, and the old key's record as it is now.
#[derive(Clone, Debug)]
pub struct Rotated {
    pub token: String,
    pub refresh_token: Option<String>,
    pub new: KeyRecord,
    pub old: KeyRecord,
}

pub(super) fn not_found_key(key_id: &str) -> Error {
    Error::NotFound(format!("key_id: no key {key_id} in this account"))
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

/// The expiring-keys gauge reads the authority (see [`crate::metrics::expiring`]).
#[async_trait::async_trait]
impl crate::metrics::expiring::LapsingKeys for Authority {
    async fn lapsing_keys(&self, within: u64) -> std::result::Result<Vec<(String, u64)>, String> {
        Authority::lapsing_keys(self, within)
            .await
            .map_err(|e| e.to_string())
    }
}
