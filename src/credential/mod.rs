//! Credential formats: compact JWS (EdDSA) tokens signed by authcell.
//!
//! * v2 API key: `t = "g"` (the official SDKs recognise a v2 key by it), `jti` = key id,
//!   `sub` = account, either `role` (role-bound key: permissions are the role's at check time)
//!   or inline `p` rules (SDK-made key), `iat`, optional `exp`.
//! * disposable token: `t = "d"`, fresh `jti`, `sub`, ancestors `anc` (the credential that
//!   minted it, and that one's ancestors: revoking any of them kills the token), optional
//!   `tid` (caller-chosen token id), `cell`, `iat`, `exp` (always), inline `p`.
//! * every credential carries `iatm`, its issue time in milliseconds on the primary's clock
//!   (see [`crate::clock`]), which issued-before revocations compare against; derived
//!   credentials (disposable tokens and SDK-made keys) also carry `oiatm` (the chain's earliest
//!   issue time), `rr` (the role of the role-bound key at the root of their chain, whose
//!   current permissions bound theirs at every check) and, when an ancestor expires, `aexp`
//!   (the earliest ancestor expiry, which a refresh never extends past).
//!
//! The JWS header must be exactly what authcell writes (`typ`, `alg`, `kid`): `crit` (RFC 7515
//! says a recipient must refuse critical extensions it does not understand, and authcell
//! understands none), `jku`, `jwk`, `x5u`, `x5c` and anything else are refused before the
//! signature is even looked at, so no header can ever point the verifier at a key.
//!
//! This module only signs and checks signatures and structure. Time, revocation and role checks
//! happen in [`crate::verifier`], with the clock and live state passed in.

use std::sync::Arc;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use crate::keyring::KeyRing;
use crate::policy::{BytesSel, Condition, Grant, NameSel, Ops, PermissionSet, Rule, TextSel};

mod jws;
mod rules;

pub use jws::{decode, sign};
pub use rules::{decode_rule, encode_conditions, encode_rule};

/// Largest credential accepted, in bytes; larger ones are refused before any parsing.
pub const MAX_CREDENTIAL_LEN: usize = 8 * 1024;

/// The `t` claim of a v2 API key.
pub const TYPE_API_KEY: &str = "g";
/// The `t` claim of a disposable token.
pub const TYPE_DISPOSABLE: &str = "d";

/// The claims authcell signs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    pub t: String,
    pub jti: String,
    pub sub: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// Inline rules, compactly encoded (see [`encode_rule`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p: Option<Vec<String>>,
    /// Inline ip_filter conditions: each a list of CIDR ranges.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ipf: Vec<Vec<String>>,
    /// Ancestor credential ids, nearest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub anc: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cell: Option<String>,
    pub iat: u64,
    /// Issue time in epoch milliseconds (the primary's clock).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iatm: Option<u64>,
    /// Issue time (ms) of the oldest ancestor, when it has ancestors: an issued-before
    /// watermark that revokes an ancestor revokes this credential too.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oiatm: Option<u64>,
    /// Root role: the role of the role-bound key at the root of the chain (derived credentials).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rr: Option<String>,
    /// The earliest expiry among the ancestors, if any of them expires.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aexp: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exp: Option<u64>,
    /// Not before (RFC 7519). authcell never writes it, but honours it if present.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<u64>,
}

/// What a credential grants: its role (looked up at check time) or its inline set.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Authority {
    Role(String),
    Inline(Arc<PermissionSet>),
}

/// A credential whose signature and structure are valid (not yet checked against time or
/// revocation).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Credential {
    pub disposable: bool,
    pub id: String,
    pub account: String,
    pub authority: Authority,
    pub ancestors: Vec<String>,
    pub token_id: Option<String>,
    pub cell: Option<String>,
    pub issued_at: u64,
    /// Issue time in epoch milliseconds.
    pub issued_at_ms: u64,
    /// The earliest issue time (ms) along the chain of ancestors (itself included).
    pub origin_issued_at_ms: u64,
    pub expires_at: Option<u64>,
    /// Not valid before this time (epoch seconds), if the claims say so.
    pub not_before: Option<u64>,
    /// The earliest expiry among its ancestors: it never outlives them.
    pub chain_expires_at: Option<u64>,
    /// For a derived credential, the role of the role-bound key its chain starts from: what it
    /// may do is also bounded by that role's permissions at check time.
    pub root_role: Option<String>,
    /// Itself and its ancestors, in the form the revocation view looks them up.
    pub revocation_ids: Vec<CredentialId>,
    /// The key ring generation it was verified under.
    pub kid_generation: u64,
}

/// Why a credential does not verify. Messages never include the credential.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CredentialError {
    #[error("missing credential: send the API key in the authorization metadata")]
    Missing,
    #[error("credential is larger than {MAX_CREDENTIAL_LEN} bytes")]
    TooLarge,
    #[error("credential is not a JWT issued by authcell")]
    Malformed,
    #[error("credential uses an algorithm authcell does not accept (only EdDSA)")]
    WrongAlgorithm,
    #[error("credential was signed by an unknown key id")]
    UnknownKeyId,
    #[error("credential signature is not valid")]
    BadSignature,
    #[error("credential has expired")]
    Expired,
    #[error("credential is not valid yet")]
    NotYetValid,
    #[error("credential has been revoked")]
    Revoked,
    #[error("credential's role no longer exists")]
    RoleNotFound,
    #[error("the key that made this credential has expired or been revoked")]
    MakerGone,
    #[error("a disposable token cannot be used here: use an API key")]
    DisposableNotAllowed,
    #[error("refresh token is not valid for this key (a refresh token works once)")]
    RefreshRejected,
    #[error("this node has not loaded the revocation state yet and serves no check")]
    StateNotLoaded,
    #[error("this node's revocation state is older than the configured bound (--max-staleness) and the stale policy is deny")]
    StateStale,
}

/// A credential id as the view stores it: ids authcell mints are UUIDs, held as 16 bytes (a
/// million revocations cost tens of megabytes, not hundreds); anything else is kept as text.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum CredentialId {
    Uuid(u128),
    Other(Box<str>),
}

impl CredentialId {
    pub fn parse(id: &str) -> Self {
        match uuid::Uuid::try_parse(id) {
            Ok(u) => CredentialId::Uuid(u.as_u128()),
            Err(_) => CredentialId::Other(id.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The JWS `sign` writes by hand is what a standard implementation reads: jsonwebtoken
    /// verifies it with the ring's public key and gets the same claims and header back.
    #[test]
    fn a_signed_credential_is_a_standard_eddsa_jws() {
        let ring = KeyRing::ephemeral().expect("ring");
        let claims = Claims {
            t: TYPE_API_KEY.into(),
            jti: "01978f3c-0000-7000-8000-000000000001".into(),
            sub: "acme".into(),
            role: Some("viewer".into()),
            p: None,
            ipf: Vec::new(),
            anc: Vec::new(),
            tid: None,
            cell: None,
            iat: 1_700_000_000,
            iatm: Some(1_700_000_000_123),
            oiatm: None,
            rr: None,
            aexp: None,
            exp: Some(4_102_444_800),
            nbf: None,
        };
        let token = sign(&ring, &claims).expect("sign");
        let key = ring
            .verification_key(ring.active_kid())
            .expect("active key");
        let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::EdDSA);
        validation.required_spec_claims.clear();
        validation.validate_exp = false;
        let read = jsonwebtoken::decode::<Claims>(&token, &key.decoding, &validation)
            .expect("jsonwebtoken verifies it");
        assert_eq!(read.claims, claims);
        assert_eq!(read.header.kid.as_deref(), Some(ring.active_kid()));
        assert_eq!(read.header.typ.as_deref(), Some("JWT"));
        // And authcell's own strict decoder takes it.
        decode(&ring, &token).expect("authcell decodes it");
    }

    #[test]
    fn rules_round_trip_through_the_compact_encoding() {
        let rules = vec![
            Rule::Account(Ops::READ.union(Ops::LIST)),
            Rule::Auth(Ops::WRITE),
            Rule::Resource(Ops::LIST),
            Rule::Cache {
                ops: Ops::READ.union(Ops::WRITE),
                cache: NameSel::Name("c;a=c*he".into()),
                item: BytesSel::Prefix(vec![0, 255, b';']),
            },
            Rule::Topic {
                ops: Ops::READ,
                cache: NameSel::All,
                topic: TextSel::Prefix("news.".into()),
            },
            Rule::Store {
                ops: Ops::WRITE,
                store: NameSel::Name("s".into()),
                item: BytesSel::Key(b"k".to_vec()),
            },
            Rule::Function {
                ops: Ops::INVOKE,
                cache: NameSel::Name("c".into()),
                function: TextSel::Name("fn".into()),
            },
        ];
        for rule in rules {
            let encoded = encode_rule(&rule);
            assert_eq!(decode_rule(&encoded), Some(rule), "{encoded}");
        }
    }

    #[test]
    fn malformed_rules_are_refused() {
        for bad in [
            "", "x1", "c3", "c3;*", "c3;*;*;*", "cz;*;*", "c10;*;*", "f1;*;*", "c0;*;*",
            "c3;^YQ;*", "c3;?YQ;*", "a1;*",
        ] {
            assert_eq!(decode_rule(bad), None, "{bad:?} should not decode");
        }
    }
}
