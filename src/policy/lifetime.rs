//! An account's key policy: limits on how long the credentials it creates may live.
//!
//! The owner sets it (`authcell.v1.Admin/SetKeyPolicy`); every path that creates a credential
//! checks the new credential's lifetime against it: GenerateGlobalApiKey, GenerateApiToken,
//! RefreshApiToken, GenerateDisposableToken and RotateApiKey. A stricter policy revokes nothing:
//! keys that break it keep working until they lapse, and are reported (see
//! [`KeyPolicy::breach`]); their refresh or rotation is refused unless the new credential fits.
//!
//! The policy travels to every node as a view event, like a custom role, so a check reads it
//! from memory and never waits on the store.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The platform's limit on a disposable token's life: 25 hours.
pub const PLATFORM_MAX_DISPOSABLE_SECS: u64 = 90_000;

/// The longest limit a policy may state for keys: 100 years (beyond it, "no limit" says it).
pub const MAX_POLICY_LIFETIME_SECS: u64 = 100 * 365 * 86_400;

/// Lifetime limits of an account's credentials. The default allows everything the platform
/// allows (no account has a policy until its owner sets one).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyPolicy {
    /// New keys (role-bound and SDK-made) must expire.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub require_expiry: bool,
    /// The longest life of a new key of any kind, seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_key_secs: Option<u64>,
    /// The longest life of a new SDK-made key (GenerateApiToken, RefreshApiToken), seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_sdk_key_secs: Option<u64>,
    /// The longest life of a new disposable token, seconds (below the platform's 25 h).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_disposable_secs: Option<u64>,
}

/// What a policy limits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CredentialKind {
    /// A role-bound v2 API key.
    RoleKey,
    /// An SDK-made key (inline permissions, a refresh token).
    SdkKey,
    /// A disposable token.
    Disposable,
}

/// The rule a lifetime breaks, named as the `KeyPolicy` message's field is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Breach {
    /// The credential would never expire.
    ExpiryRequired,
    /// The credential would live longer than `limit` seconds, the limit of `rule`.
    TooLong { rule: &'static str, limit: u64 },
}

impl fmt::Display for Breach {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Breach::ExpiryRequired => write!(
                f,
                "the account's key policy requires an expiry on new keys (require_expiry)"
            ),
            Breach::TooLong { rule, limit } => write!(
                f,
                "the account's key policy allows at most {limit} s ({rule} = {limit})"
            ),
        }
    }
}

impl KeyPolicy {
    /// Whether the policy limits nothing.
    pub fn is_empty(&self) -> bool {
        *self == KeyPolicy::default()
    }

    /// The tightest lifetime limit on a credential of `kind`, with the rule that sets it.
    pub fn max_secs(&self, kind: CredentialKind) -> Option<(&'static str, u64)> {
        let limits: &[(&'static str, Option<u64>)] = match kind {
            CredentialKind::RoleKey => &[("max_key_lifetime_seconds", self.max_key_secs)],
            CredentialKind::SdkKey => &[
                ("max_key_lifetime_seconds", self.max_key_secs),
                ("max_sdk_key_lifetime_seconds", self.max_sdk_key_secs),
            ],
            CredentialKind::Disposable => &[(
                "max_disposable_token_lifetime_seconds",
                self.max_disposable_secs,
            )],
        };
        limits
            .iter()
            .filter_map(|&(rule, limit)| limit.map(|l| (rule, l)))
            .min_by_key(|&(_, limit)| limit)
    }

    /// Whether a credential of `kind` living `lifetime` seconds (`None`: never expiring) may be
    /// created; the rule it breaks otherwise.
    pub fn breach(&self, kind: CredentialKind, lifetime: Option<u64>) -> Option<Breach> {
        let limit = self.max_secs(kind);
        match lifetime {
            None if kind == CredentialKind::Disposable => None,
            None if self.require_expiry => Some(Breach::ExpiryRequired),
            None => limit.map(|(rule, limit)| Breach::TooLong { rule, limit }),
            Some(secs) => match limit {
                Some((rule, limit)) if secs > limit => Some(Breach::TooLong { rule, limit }),
                _ => None,
            },
        }
    }

    /// Checks a policy an owner asks for: every limit positive and within range (the field and
    /// the rule in the message).
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        let positive = |field: &'static str, v: Option<u64>, max: u64| match v {
            Some(0) => Err((
                field,
                "0 is not a limit: leave the field out for none".into(),
            )),
            Some(v) if v > max => Err((field, format!("must be at most {max} seconds"))),
            _ => Ok(()),
        };
        positive(
            "max_key_lifetime_seconds",
            self.max_key_secs,
            MAX_POLICY_LIFETIME_SECS,
        )?;
        positive(
            "max_sdk_key_lifetime_seconds",
            self.max_sdk_key_secs,
            MAX_POLICY_LIFETIME_SECS,
        )?;
        positive(
            "max_disposable_token_lifetime_seconds",
            self.max_disposable_secs,
            PLATFORM_MAX_DISPOSABLE_SECS,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_policy_allows_everything() {
        let p = KeyPolicy::default();
        for kind in [
            CredentialKind::RoleKey,
            CredentialKind::SdkKey,
            CredentialKind::Disposable,
        ] {
            assert_eq!(p.breach(kind, None), None);
            assert_eq!(p.breach(kind, Some(u64::MAX)), None);
        }
    }

    #[test]
    fn the_tightest_limit_applies_and_is_named() {
        let p = KeyPolicy {
            require_expiry: false,
            max_key_secs: Some(86_400),
            max_sdk_key_secs: Some(3_600),
            max_disposable_secs: Some(600),
        };
        assert_eq!(p.breach(CredentialKind::RoleKey, Some(86_400)), None);
        assert_eq!(
            p.breach(CredentialKind::RoleKey, Some(86_401)),
            Some(Breach::TooLong {
                rule: "max_key_lifetime_seconds",
                limit: 86_400
            })
        );
        assert_eq!(
            p.breach(CredentialKind::SdkKey, Some(3_601)),
            Some(Breach::TooLong {
                rule: "max_sdk_key_lifetime_seconds",
                limit: 3_600
            })
        );
        // A never-expiring key breaks a maximum lifetime even without require_expiry.
        assert!(p.breach(CredentialKind::RoleKey, None).is_some());
        assert_eq!(p.breach(CredentialKind::Disposable, Some(600)), None);
        assert!(p.breach(CredentialKind::Disposable, Some(601)).is_some());
        assert!(p
            .breach(CredentialKind::Disposable, Some(601))
            .is_some_and(|b| b
                .to_string()
                .contains("max_disposable_token_lifetime_seconds = 600")));
    }

    #[test]
    fn require_expiry_refuses_never_expiring_keys_only() {
        let p = KeyPolicy {
            require_expiry: true,
            ..Default::default()
        };
        assert_eq!(
            p.breach(CredentialKind::RoleKey, None),
            Some(Breach::ExpiryRequired)
        );
        assert_eq!(
            p.breach(CredentialKind::SdkKey, None),
            Some(Breach::ExpiryRequired)
        );
        assert_eq!(
            p.breach(CredentialKind::RoleKey, Some(10 * 365 * 86_400)),
            None
        );
    }

    #[test]
    fn limits_must_be_positive_and_in_range() {
        let bad = |p: KeyPolicy| p.validate().err().map(|(field, _)| field);
        assert_eq!(
            bad(KeyPolicy {
                max_key_secs: Some(0),
                ..Default::default()
            }),
            Some("max_key_lifetime_seconds")
        );
        assert_eq!(
            bad(KeyPolicy {
                max_disposable_secs: Some(PLATFORM_MAX_DISPOSABLE_SECS + 1),
                ..Default::default()
            }),
            Some("max_disposable_token_lifetime_seconds")
        );
        assert_eq!(
            bad(KeyPolicy {
                max_disposable_secs: Some(PLATFORM_MAX_DISPOSABLE_SECS),
                max_key_secs: Some(1),
                ..Default::default()
            }),
            None
        );
    }
}
