//! Typed requests: what each operation takes once its input has the right shape.
//!
//! The server turns every protobuf request into one of these (`TryFrom`, in
//! `server::requests`) before it calls the operation, so an operation never sees a field it
//! has not been promised: the constructors here hold every rule about a request's shape (sizes,
//! character sets, ids, page tokens, required fields), each refusal an [`Invalid`] naming the
//! field and the rule. What needs the clock or the store (an expiry in the future, a role that
//! exists, what the caller may delegate) stays in the operation.
//!
//! The order a caller sees is therefore one rule for every RPC: authenticate, then the
//! request's shape (INVALID_ARGUMENT), then permissions (PERMISSION_DENIED), then state.

use super::paging::{decode_page_token, is_uuid, page_limit, AUDIT_PAGE_PREFIX, KEY_PAGE_PREFIX};
use super::revoke::is_stream_id;
use super::validation::*;
use super::{Expiry, RoleUpdate, TokenRef, MAX_CONFIRM_TIMEOUT_MS};
use crate::authority::vending::{KeyLifetime, MAX_DISPOSABLE_SECS};
use crate::policy::proto::Invalid;
use crate::policy::{PermissionSet, Rule};

/// The id of a key of the caller's account (a UUID).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyId(String);

impl KeyId {
    pub fn new(key_id: String) -> Result<KeyId, Invalid> {
        validate_key_id(&key_id)?;
        Ok(KeyId(key_id))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Longest overlap of a rotation: 30 days.
pub const MAX_ROTATION_OVERLAP_SECS: u64 = 30 * 24 * 3600;

/// RotateApiKey: which key, and how long it keeps working beside its replacement.
#[derive(Clone, Debug)]
pub struct KeyRotation {
    pub key_id: KeyId,
    pub overlap_secs: u64,
    /// The new key's lifetime; `None`: the old key's.
    pub lifetime_secs: Option<u64>,
    /// The `idempotency-key` the client sent, if any.
    pub request_id: Option<String>,
}

impl KeyRotation {
    pub fn new(
        key_id: String,
        overlap_secs: u64,
        lifetime_secs: u64,
        request_id: Option<String>,
    ) -> Result<KeyRotation, Invalid> {
        if let Some(id) = &request_id {
            validate_request_id(id)?;
        }
        let key_id = KeyId::new(key_id)?;
        if overlap_secs > MAX_ROTATION_OVERLAP_SECS {
            return Err(Invalid::new(
                "overlap_seconds",
                format!("at most {MAX_ROTATION_OVERLAP_SECS} (30 days), got {overlap_secs}"),
            ));
        }
        let max = crate::policy::lifetime::MAX_POLICY_LIFETIME_SECS;
        if lifetime_secs > max {
            return Err(Invalid::new(
                "lifetime_seconds",
                format!("at most {max} (100 years), got {lifetime_secs}"),
            ));
        }
        Ok(KeyRotation {
            key_id,
            overlap_secs,
            lifetime_secs: (lifetime_secs > 0).then_some(lifetime_secs),
            request_id,
        })
    }
}

/// GenerateGlobalApiKey.
#[derive(Clone, Debug)]
pub struct NewKey {
    pub role_id: String,
    pub description: String,
    pub expiry: Expiry,
    /// The `idempotency-key` the client sent, if any.
    pub request_id: Option<String>,
}

impl NewKey {
    pub fn new(
        role_id: String,
        description: &str,
        expiry: Option<Expiry>,
        request_id: Option<String>,
    ) -> Result<NewKey, Invalid> {
        if let Some(id) = &request_id {
            validate_request_id(id)?;
        }
        let description = validate_description("description", description)?;
        let Some(expiry) = expiry else {
            return Err(Invalid::new(
                "expiry",
                "required: set never, or expires with expiration_epoch_seconds",
            ));
        };
        Ok(NewKey {
            role_id,
            description,
            expiry,
            request_id,
        })
    }
}

/// ListApiKeys: one page.
#[derive(Clone, Debug)]
pub struct KeyListing {
    pub(super) limit: usize,
    pub(super) after: Option<String>,
    pub(super) include_inactive: bool,
    /// Only live keys that lapse within this many seconds.
    pub(super) expiring_within: Option<u64>,
}

/// Longest `expiring_within_seconds`: ten years.
pub const MAX_EXPIRING_WITHIN_SECS: u64 = 10 * 366 * 86_400;

impl KeyListing {
    pub fn new(limit: u32, next_token: &str, include_inactive: bool) -> Result<Self, Invalid> {
        Ok(KeyListing {
            limit: page_limit(limit)?,
            after: decode_page_token(next_token, KEY_PAGE_PREFIX, is_uuid)?,
            include_inactive,
            expiring_within: None,
        })
    }

    /// Only live keys that lapse (expire, or are revoked by a rotation) within `seconds`
    /// (0: no filter).
    pub fn expiring_within(mut self, seconds: u64) -> Result<Self, Invalid> {
        if seconds > MAX_EXPIRING_WITHIN_SECS {
            return Err(Invalid::new(
                "expiring_within_seconds",
                format!("at most {MAX_EXPIRING_WITHIN_SECS} (10 years), got {seconds}"),
            ));
        }
        self.expiring_within = (seconds > 0).then_some(seconds);
        Ok(self)
    }
}

/// ListAuditEvents: one page, newest first.
#[derive(Clone, Debug)]
pub struct AuditListing {
    pub(super) since_ms: Option<u64>,
    pub(super) until_ms: Option<u64>,
    pub(super) limit: usize,
    pub(super) before_id: Option<String>,
}

impl AuditListing {
    pub fn new(
        since_ms: u64,
        until_ms: u64,
        limit: u32,
        next_token: &str,
    ) -> Result<Self, Invalid> {
        let limit = page_limit(limit)?;
        if since_ms > 0 && until_ms > 0 && since_ms >= until_ms {
            return Err(Invalid::new(
                "until_epoch_millis",
                "must be after since_epoch_millis",
            ));
        }
        Ok(AuditListing {
            since_ms: (since_ms > 0).then_some(since_ms),
            until_ms: (until_ms > 0).then_some(until_ms),
            limit,
            before_id: decode_page_token(next_token, AUDIT_PAGE_PREFIX, is_stream_id)?,
        })
    }
}

/// The id of a custom role (required).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RoleId(String);

impl RoleId {
    pub fn new(role_id: String) -> Result<RoleId, Invalid> {
        if role_id.is_empty() {
            return Err(Invalid::new("role_id", "required"));
        }
        Ok(RoleId(role_id))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// CreateRole.
#[derive(Clone, Debug)]
pub struct NewRole {
    pub name: String,
    pub description: String,
    pub permissions: PermissionSet,
}

impl NewRole {
    pub fn new(name: &str, description: &str, permissions: PermissionSet) -> Result<Self, Invalid> {
        Ok(NewRole {
            name: validate_role_name(name)?,
            description: validate_optional_description("description", description)?,
            permissions,
        })
    }
}

/// UpdateRole: the changes, each checked as CreateRole checks it.
#[derive(Clone, Debug)]
pub struct RoleChange {
    pub role_id: RoleId,
    pub update: RoleUpdate,
}

impl RoleChange {
    pub fn new(role_id: RoleId, update: RoleUpdate) -> Result<Self, Invalid> {
        let RoleUpdate {
            name,
            description,
            permissions,
        } = update;
        Ok(RoleChange {
            role_id,
            update: RoleUpdate {
                name: name.as_deref().map(validate_role_name).transpose()?,
                description: description
                    .as_deref()
                    .map(|d| validate_optional_description("description", d))
                    .transpose()?,
                permissions,
            },
        })
    }
}

/// RevokeToken.
#[derive(Clone, Debug)]
pub struct TokenRevocation {
    pub token: TokenRef,
    /// For a token id: until when (epoch seconds; 0: the longest token lifetime from now).
    pub expires_at: u64,
}

impl TokenRevocation {
    pub fn new(token: Option<TokenRef>, expires_at: u64) -> Result<Self, Invalid> {
        let Some(token) = token else {
            return Err(Invalid::new("token", "set id or token_id"));
        };
        match &token {
            TokenRef::Id(id) => {
                validate_key_id(id).map_err(|_| Invalid::new("id", "not a token id (a UUID)"))?
            }
            TokenRef::TokenId(token_id) => {
                validate_token_id("token_id", token_id)?;
                if token_id.is_empty() {
                    return Err(Invalid::new("token_id", "must not be empty"));
                }
            }
        }
        Ok(TokenRevocation { token, expires_at })
    }
}

/// ConfirmRevocation: which revocation, and how long to wait for it.
#[derive(Clone, Debug)]
pub struct RevocationWait {
    /// `None`: the newest event.
    pub(super) id: Option<String>,
    pub(super) timeout_ms: u32,
}

impl RevocationWait {
    pub fn new(revocation_id: &str, timeout_ms: u32) -> Result<Self, Invalid> {
        let timeout_ms = match timeout_ms {
            0 => 5000,
            1..=MAX_CONFIRM_TIMEOUT_MS => timeout_ms,
            _ => {
                return Err(Invalid::new(
                    "timeout_ms",
                    format!("at most {MAX_CONFIRM_TIMEOUT_MS}"),
                ))
            }
        };
        if !revocation_id.is_empty() && !is_stream_id(revocation_id) {
            return Err(Invalid::new(
                "revocation_id",
                "not a revocation id (from a revoke response)",
            ));
        }
        Ok(RevocationWait {
            id: (!revocation_id.is_empty()).then(|| revocation_id.to_owned()),
            timeout_ms,
        })
    }
}

/// GenerateDisposableToken.
#[derive(Clone, Debug)]
pub struct DisposableToken {
    pub(super) valid_for: u32,
    pub(super) statements: Vec<Rule>,
    pub(super) token_id: Option<String>,
}

impl DisposableToken {
    pub fn new(
        valid_for_seconds: Option<u32>,
        statements: Result<Vec<Rule>, Invalid>,
        token_id: &str,
    ) -> Result<Self, Invalid> {
        let valid_for = match valid_for_seconds {
            None => return Err(Invalid::new("expires", "required: set valid_for_seconds")),
            Some(s) if s == 0 || s > MAX_DISPOSABLE_SECS => {
                return Err(Invalid::new(
                    "expires.valid_for_seconds",
                    format!("must be between 1 and {MAX_DISPOSABLE_SECS} (25 hours)"),
                ))
            }
            Some(s) => s,
        };
        let statements = statements?;
        validate_token_id("token_id", token_id)?;
        Ok(DisposableToken {
            valid_for,
            statements,
            token_id: (!token_id.is_empty()).then(|| token_id.to_owned()),
        })
    }
}

/// GenerateApiToken: an SDK-made key.
#[derive(Clone, Debug)]
pub struct ApiToken {
    pub(super) lifetime: KeyLifetime,
    pub(super) statements: Vec<Rule>,
    pub(super) token_id: Option<String>,
    pub(super) description: String,
}

impl ApiToken {
    pub fn new(
        lifetime: Option<KeyLifetime>,
        statements: Result<Vec<Rule>, Invalid>,
        token_id: &str,
        description: &str,
    ) -> Result<Self, Invalid> {
        let lifetime = match lifetime {
            None => return Err(Invalid::new("expiry", "required: set never or expires")),
            Some(KeyLifetime::Seconds(0)) => {
                return Err(Invalid::new(
                    "expires.valid_for_seconds",
                    "must be at least 1",
                ))
            }
            Some(l) => l,
        };
        let statements = statements?;
        validate_token_id("token_id", token_id)?;
        let description = validate_optional_description("description", description)?;
        Ok(ApiToken {
            lifetime,
            statements,
            token_id: (!token_id.is_empty()).then(|| token_id.to_owned()),
            description: if description.is_empty() {
                "SDK-made key".to_owned()
            } else {
                description
            },
        })
    }
}

/// RefreshApiToken.
#[derive(Clone)]
pub struct Refresh {
    pub(super) api_key: String,
    pub(super) refresh_token: String,
}

impl Refresh {
    pub fn new(api_key: String, refresh_token: String) -> Result<Self, Invalid> {
        if api_key.is_empty() {
            return Err(Invalid::new("api_key", "required"));
        }
        if refresh_token.is_empty() {
            return Err(Invalid::new("refresh_token", "required"));
        }
        Ok(Refresh {
            api_key,
            refresh_token,
        })
    }
}

/// Holds a key and a refresh token: its `Debug` prints neither.
impl std::fmt::Debug for Refresh {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Refresh { api_key: <redacted>, refresh_token: <redacted> }")
    }
}
