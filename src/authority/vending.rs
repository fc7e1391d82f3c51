//! Token vending: disposable tokens (`token.Token/GenerateDisposableToken`) and SDK-made API
//! keys with refresh tokens (`auth.Auth/GenerateApiToken`, `RefreshApiToken`).
//!
//! Rules, in the order they are checked:
//! 1. the calling credential verifies (else UNAUTHENTICATED) and is not itself a disposable
//!    token (a token can never mint another);
//! 2. its ip_filter admits the caller's address;
//! 3. the request is well formed (INVALID_ARGUMENT naming the field);
//! 4. the caller holds every permission it delegates, by its own permissions and by its root
//!    role's current ones (PERMISSION_DENIED naming the first statement that exceeds it); the
//!    child keeps the caller's ip_filter conditions;
//! 5. the account is within its vending rate (RESOURCE_EXHAUSTED with `retry-after`);
//! 6. the token never outlives its parent or any ancestor: `valid_until` is the earliest.
//!
//! Every credential minted here records its chain (`anc`), its root role (`rr`) and the
//! earliest ancestor expiry (`aexp`), so that at every later check it is bounded by its root
//! role's current permissions and dies with any ancestor (see [`crate::verifier`]).

use std::net::IpAddr;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rand_core::RngCore;
use sha2::{Digest, Sha256};

use crate::authority::key_policy::lifetime_of;
use crate::authority::requests::{ApiToken, DisposableToken, Refresh};
use crate::authority::{Authority, Error, KeyStatus, Result};
use crate::credential::{self, Claims, CredentialError};
use crate::metrics::Counters;
use crate::policy::lifetime::CredentialKind;
use crate::policy::proto::Invalid;
use crate::policy::{self, Exceeds, Grant, PermissionSet, Rule};
use crate::store::KeyRecord;
use crate::verifier::Principal;

/// Longest disposable token lifetime: 25 hours.
pub const MAX_DISPOSABLE_SECS: u32 = 90_000;

/// A minted credential.
#[derive(Clone, Debug)]
pub struct Minted {
    pub token: String,
    pub endpoint: String,
    /// Epoch seconds; `None` for a key that never expires.
    pub valid_until: Option<u64>,
    pub id: String,
}

/// A minted SDK key with its refresh token.
#[derive(Clone, Debug)]
pub struct MintedKey {
    pub key: Minted,
    pub refresh_token: String,
}

/// What an SDK-made key grants and how long it lives.
struct InlineKey {
    set: PermissionSet,
    lifetime: KeyLifetime,
    token_id: Option<String>,
    description: String,
}

/// The earlier of two optional expiries or lifetimes (`None`: never).
pub(super) fn earliest(a: Option<u64>, b: Option<u64>) -> Option<u64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// Lifetime of an SDK-made key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyLifetime {
    Never,
    Seconds(u32),
}

const REFRESH_PREFIX: &str = "acr1_";

fn refresh_hash(refresh_token: &str) -> String {
    super::hex(&Sha256::digest(refresh_token.as_bytes()))
}

fn new_refresh_token() -> String {
    let mut bytes = [0u8; 32];
    rand_core::OsRng.fill_bytes(&mut bytes);
    format!("{REFRESH_PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes))
}

impl Authority {
    /// Authenticates a vending caller: a verified API key whose conditions admit the peer. The
    /// first step of every vending RPC, before its request is even looked at.
    pub fn vending_caller(&self, credential: &str, peer: Option<IpAddr>) -> Result<Principal> {
        let principal = self.verifier().authenticate(credential)?;
        if principal.credential.disposable {
            return Err(Error::PermissionDenied(
                "a disposable token cannot mint tokens or keys: use an API key".into(),
            ));
        }
        if !principal.admits_peer(peer) {
            return Err(Error::PermissionDenied(
                "the calling key's ip_filter does not allow this peer address".into(),
            ));
        }
        Ok(principal)
    }

    /// Builds the delegated set (the caller's conditions are inherited) and runs the subset
    /// test, naming the first statement that exceeds the caller.
    fn delegated_set(
        &self,
        parent: &Principal,
        field: &str,
        statements: Vec<Rule>,
    ) -> Result<PermissionSet> {
        let child = PermissionSet {
            grant: Grant::Rules(statements),
            conditions: parent.conditions(),
        };
        parent.check_delegation(&child).map_err(|e| match e {
            Exceeds::Rule { index, ops } => Error::PermissionDenied(format!(
                "{field}.explicit.permissions[{index}] exceeds the calling key's permissions ({ops:?} not held)"
            )),
            other => Error::PermissionDenied(format!("{field}: {other}")),
        })?;
        Ok(child)
    }

    fn child_claims(
        &self,
        parent: &Principal,
        kind: &str,
        set: &PermissionSet,
        token_id: Option<String>,
        stamp_ms: u64,
        expires_at: Option<u64>,
    ) -> Result<Claims> {
        let Grant::Rules(rules) = &set.grant else {
            return Err(Error::Internal(
                "a delegated set is never super-user: the subset test refuses it first".into(),
            ));
        };
        let c = &parent.credential;
        let root_role = match (&c.root_role, &c.authority) {
            (Some(root), _) => root.clone(),
            (None, credential::Authority::Role(role)) => role.clone(),
            (None, credential::Authority::Inline(_)) => {
                return Err(Error::Internal(
                    "a credential with inline permissions always names its root role".into(),
                ))
            }
        };
        Ok(Claims {
            t: kind.into(),
            jti: super::keys::credential_id(stamp_ms),
            sub: c.account.clone(),
            role: None,
            p: Some(rules.iter().map(credential::encode_rule).collect()),
            ipf: credential::encode_conditions(&set.conditions),
            anc: std::iter::once(c.id.clone())
                .chain(c.ancestors.iter().cloned())
                .collect(),
            tid: token_id,
            cell: Some(self.cell().to_owned()),
            iat: stamp_ms / 1000,
            iatm: Some(stamp_ms),
            oiatm: Some(c.origin_issued_at_ms.min(stamp_ms)),
            rr: Some(root_role),
            aexp: earliest(c.expires_at, c.chain_expires_at),
            exp: expires_at,
            nbf: None,
        })
    }

    fn sign_bounded(&self, claims: &Claims) -> Result<String> {
        let token = self.sign(claims)?;
        if token.len() > credential::MAX_CREDENTIAL_LEN {
            return Err(Invalid::new(
                "permissions",
                format!(
                    "too large: the token would exceed {} bytes; use fewer or shorter selectors",
                    credential::MAX_CREDENTIAL_LEN
                ),
            )
            .into());
        }
        Ok(token)
    }

    /// GenerateDisposableToken, for a caller authenticated by [`Authority::vending_caller`].
    pub async fn mint_disposable(
        &self,
        parent: &Principal,
        request: DisposableToken,
    ) -> Result<Minted> {
        let DisposableToken {
            valid_for,
            statements,
            token_id,
        } = request;
        let set = self.delegated_set(parent, "permissions", statements)?;
        self.check_requested_lifetime(
            &parent.credential.account,
            CredentialKind::Disposable,
            Some(u64::from(valid_for)),
            "expires.valid_for_seconds",
        )?;
        self.rate_limit(&parent.credential.account).await?;
        let stamp = self.stamp(&parent.credential.account);
        let c = &parent.credential;
        let valid_until = earliest(
            Some(stamp / 1000 + u64::from(valid_for)),
            earliest(c.expires_at, c.chain_expires_at),
        )
        .unwrap_or(stamp / 1000);
        let claims = self.child_claims(
            parent,
            credential::TYPE_DISPOSABLE,
            &set,
            token_id,
            stamp,
            Some(valid_until),
        )?;
        let token = self.sign_bounded(&claims)?;
        Counters::bump(&self.settings.counters.tokens_issued);
        tracing::info!(
            method = "token.Token/GenerateDisposableToken",
            account = %claims.sub,
            parent = %parent.credential.id,
            token = %claims.jti,
            valid_until,
            "disposable token minted"
        );
        Ok(Minted {
            token,
            endpoint: self.endpoint().to_owned(),
            valid_until: Some(valid_until),
            id: claims.jti,
        })
    }

    /// GenerateApiToken: an API key with inline permissions and a single-use refresh token.
    /// Needs AuthWrite (it creates a key of the account) and the subset test.
    pub async fn generate_api_token(
        &self,
        parent: &Principal,
        peer: Option<IpAddr>,
        request: ApiToken,
    ) -> Result<MintedKey> {
        parent
            .evaluate(
                policy::Action::AuthWrite,
                &policy::Resource::default(),
                peer,
            )
            .map_err(|_| {
                Error::PermissionDenied(
                    "creating an API key needs AuthWrite in the calling key's permissions".into(),
                )
            })?;
        let ApiToken {
            lifetime,
            statements,
            token_id,
            description,
        } = request;
        let set = self.delegated_set(parent, "permissions", statements)?;
        // The lifetime asked for; the key may end sooner (never after its maker), which any
        // policy allows.
        let asked = match lifetime {
            KeyLifetime::Never => None,
            KeyLifetime::Seconds(s) => Some(u64::from(s)),
        };
        let c = &parent.credential;
        let bound = earliest(c.expires_at, c.chain_expires_at)
            .map(|at| at.saturating_sub(self.clock.now()));
        self.check_requested_lifetime(
            &c.account,
            CredentialKind::SdkKey,
            earliest(asked, bound),
            "expiry",
        )?;
        self.rate_limit(&parent.credential.account).await?;
        let key = InlineKey {
            set,
            lifetime,
            token_id,
            description,
        };
        self.mint_inline_key(parent, key, None, peer).await
    }

    /// Mints and stores an SDK-made key; with `replacing`, atomically swaps it in for the old
    /// key whose refresh hash is given.
    async fn mint_inline_key(
        &self,
        parent: &Principal,
        key: InlineKey,
        replacing: Option<(&str, &str)>,
        peer: Option<IpAddr>,
    ) -> Result<MintedKey> {
        let InlineKey {
            set,
            lifetime,
            token_id,
            description,
        } = key;
        let stamp = self.stamp(&parent.credential.account);
        let now = stamp / 1000;
        let own = match lifetime {
            KeyLifetime::Never => None,
            KeyLifetime::Seconds(s) => Some(now + u64::from(s)),
        };
        // A key never outlives the credential that made it, nor any of that one's ancestors.
        let c = &parent.credential;
        let expires_at = earliest(own, earliest(c.expires_at, c.chain_expires_at));
        let claims = self.child_claims(
            parent,
            credential::TYPE_API_KEY,
            &set,
            token_id.clone(),
            stamp,
            expires_at,
        )?;
        let token = self.sign_bounded(&claims)?;
        let refresh_token = new_refresh_token();
        let record = KeyRecord {
            key_id: claims.jti.clone(),
            account: claims.sub.clone(),
            description,
            role_id: None,
            inline: Some(set),
            token_id,
            created_by: parent.credential.id.clone(),
            issued_at: now,
            issued_at_ms: stamp,
            ancestors: claims.anc.clone(),
            origin_issued_at_ms: claims.oiatm.unwrap_or(stamp),
            expires_at,
            revoked_at: None,
            refresh_hash: Some(refresh_hash(&refresh_token)),
            rotation: Default::default(),
        };
        let audit = match replacing {
            None => Authority::audit(
                &claims.sub,
                &parent.credential.id,
                peer,
                "key.created",
                &claims.jti,
                "SDK-made key (GenerateApiToken)".into(),
            ),
            Some((old_id, _)) => Authority::audit(
                &claims.sub,
                old_id,
                peer,
                "key.refreshed",
                &claims.jti,
                format!("replaces {old_id}"),
            ),
        };
        match replacing {
            None => self.store.insert_key(record, Some(&audit)).await?,
            Some((old_id, old_hash)) => self
                .store
                .rotate_refresh(&claims.sub, old_id, old_hash, record, now, Some(&audit))
                .await
                .map_err(|e| match e {
                    crate::store::StoreError::FailedPrecondition(_)
                    | crate::store::StoreError::NotFound(_) => {
                        Error::Unauthenticated(CredentialError::RefreshRejected)
                    }
                    other => other.into(),
                })?,
        }
        Counters::bump(&self.settings.counters.keys_issued);
        tracing::info!(
            method = if replacing.is_some() { "auth.Auth/RefreshApiToken" } else { "auth.Auth/GenerateApiToken" },
            account = %claims.sub,
            key_id = %claims.jti,
            created_by = %parent.credential.id,
            refreshed_from = replacing.map(|(id, _)| id).unwrap_or(""),
            "sdk api key minted"
        );
        Ok(MintedKey {
            key: Minted {
                token,
                endpoint: self.endpoint().to_owned(),
                valid_until: expires_at,
                id: claims.jti,
            },
            refresh_token,
        })
    }

    /// RefreshApiToken: a new key and refresh token with the same permissions and lifetime
    /// length; the old pair is revoked. Works once per refresh token; an expired key may be
    /// refreshed, a revoked one (or one whose parent was revoked) may not.
    pub async fn refresh_api_token(
        &self,
        request: Refresh,
        peer: Option<IpAddr>,
    ) -> Result<MintedKey> {
        let (api_key, refresh_token) = (request.api_key.as_str(), request.refresh_token.as_str());
        let old = self.verifier().authenticate_allowing_expiry(api_key)?;
        let c = &old.credential;
        if c.disposable {
            return Err(Error::PermissionDenied(
                "api_key: a disposable token cannot be refreshed".into(),
            ));
        }
        if !old.admits_peer(peer) {
            return Err(Error::PermissionDenied(
                "the key's ip_filter does not allow this peer address".into(),
            ));
        }
        let record = self
            .store
            .get_key(&c.account, &c.id)
            .await?
            .filter(|r| r.refresh_hash.is_some())
            .ok_or_else(|| {
                Error::FailedPrecondition(
                    "api_key: only keys made by GenerateApiToken can be refreshed".into(),
                )
            })?;
        // The key that made it must still be alive: a refresh never outlives the maker (the
        // verifier already refused a chain that was revoked or whose `aexp` passed; the maker's
        // record is checked too, as the system of record has it now).
        let maker_id = c.ancestors.first().ok_or_else(|| {
            Error::FailedPrecondition(
                "api_key: only keys made by GenerateApiToken can be refreshed".into(),
            )
        })?;
        match self.store.get_key(&c.account, maker_id).await? {
            Some(maker) if self.key_status(&maker) == super::KeyStatus::Active => {}
            _ => return Err(Error::Unauthenticated(CredentialError::MakerGone)),
        }
        if record.rotation.to.is_some() {
            return Err(Error::FailedPrecondition(format!(
                "api_key: key {} has been rotated; refresh its replacement instead",
                record.key_id
            )));
        }
        let lifetime = match record.expires_at {
            None => KeyLifetime::Never,
            Some(exp) => KeyLifetime::Seconds(
                u32::try_from(exp.saturating_sub(record.issued_at).max(1)).unwrap_or(u32::MAX),
            ),
        };
        self.check_carried_lifetime(
            &record,
            lifetime_of(record.issued_at, record.expires_at),
            "ask for a new key within the policy (GenerateApiToken)",
        )?;
        self.rate_limit(&c.account).await?;
        // The successor keeps the old key's chain (so revoking any ancestor still kills it),
        // its root role (which bounds it at every check) and its chain's expiry bound (which it
        // never outlives, however often it is refreshed).
        let parent = Principal {
            credential: std::sync::Arc::new(credential::Credential {
                id: maker_id.clone(),
                ancestors: c.ancestors.iter().skip(1).cloned().collect(),
                expires_at: c.chain_expires_at,
                chain_expires_at: None,
                ..(**c).clone()
            }),
            permissions: old.permissions.clone(),
            bound: old.bound.clone(),
        };
        let key = InlineKey {
            set: (*old.permissions).clone(),
            lifetime,
            token_id: record.token_id.clone(),
            description: record.description.clone(),
        };
        self.mint_inline_key(
            &parent,
            key,
            Some((&c.id, &refresh_hash(refresh_token))),
            peer,
        )
        .await
    }

    /// What an SDK-made key's successor takes from the chain that made it: its root role (the
    /// role of the chain's first key, which bounds it at every check) and the earliest expiry
    /// of its ancestors (which it never outlives). Every ancestor must still be live.
    pub(super) async fn chain_of(&self, key: &KeyRecord) -> Result<(String, Option<u64>)> {
        let mut root_role = None;
        let mut expires = None;
        for id in &key.ancestors {
            let ancestor = self
                .store
                .get_key(&key.account, id)
                .await?
                .filter(|a| self.key_status(a) == KeyStatus::Active)
                .ok_or_else(|| {
                    Error::FailedPrecondition(format!(
                        "key_id: key {id}, which made key {}, is no longer live",
                        key.key_id
                    ))
                })?;
            expires = earliest(expires, ancestor.expires_at);
            if let Some(role) = ancestor.role_id {
                root_role = Some(role);
            }
        }
        let root_role = root_role.ok_or_else(|| {
            Error::Internal(format!(
                "the chain of SDK-made key {} has no role-bound key",
                key.key_id
            ))
        })?;
        Ok((root_role, expires))
    }

    /// The claims of a stored SDK-made key, from its record and its chain.
    fn sdk_key_claims(
        &self,
        record: &KeyRecord,
        root_role: String,
        aexp: Option<u64>,
    ) -> Result<Claims> {
        let Some(PermissionSet {
            grant: Grant::Rules(rules),
            conditions,
        }) = &record.inline
        else {
            return Err(Error::Internal(format!(
                "SDK-made key {} has no explicit permissions",
                record.key_id
            )));
        };
        Ok(Claims {
            t: credential::TYPE_API_KEY.into(),
            jti: record.key_id.clone(),
            sub: record.account.clone(),
            role: None,
            p: Some(rules.iter().map(credential::encode_rule).collect()),
            ipf: credential::encode_conditions(conditions),
            anc: record.ancestors.clone(),
            tid: record.token_id.clone(),
            cell: Some(self.cell().to_owned()),
            iat: record.issued_at,
            iatm: Some(record.issued_at_ms),
            oiatm: Some(record.origin_ms()),
            rr: Some(root_role),
            aexp,
            exp: record.expires_at,
            nbf: None,
        })
    }

    /// The successor of an SDK-made key being rotated: the same permissions, conditions,
    /// chain, token id and description, `lifetime` seconds (never outliving its chain), and a
    /// new refresh token. Not stored yet. Returns its token, record and refresh token.
    pub(super) fn sdk_key_successor(
        &self,
        old: &KeyRecord,
        (root_role, aexp): (String, Option<u64>),
        lifetime: Option<u64>,
    ) -> Result<(String, KeyRecord, String)> {
        let stamp = self.stamp(&old.account);
        let now = stamp / 1000;
        let expires_at = earliest(lifetime.map(|s| now.saturating_add(s)), aexp);
        let refresh_token = new_refresh_token();
        let record = KeyRecord {
            key_id: super::keys::credential_id(stamp),
            issued_at: now,
            issued_at_ms: stamp,
            expires_at,
            revoked_at: None,
            refresh_hash: Some(refresh_hash(&refresh_token)),
            rotation: Default::default(),
            // Records written before the chain's origin was kept carry 0: the successor states
            // it, as its claims do.
            origin_issued_at_ms: old.origin_ms(),
            ..old.clone()
        };
        let token = self.sign_bounded(&self.sdk_key_claims(&record, root_role, aexp)?)?;
        Ok((token, record, refresh_token))
    }

    /// An SDK-made key signed again from its record (a replayed rotation), with a new refresh
    /// token replacing the one whose reply was lost.
    pub(super) async fn reissue_sdk_key(&self, record: &KeyRecord) -> Result<(String, String)> {
        let (root_role, aexp) = self.chain_of(record).await?;
        let token = self.sign_bounded(&self.sdk_key_claims(record, root_role, aexp)?)?;
        let refresh_token = new_refresh_token();
        self.store
            .reset_refresh(
                &record.account,
                &record.key_id,
                &refresh_hash(&refresh_token),
            )
            .await?;
        Ok((token, refresh_token))
    }
}
