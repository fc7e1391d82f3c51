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
use jsonwebtoken::{Algorithm, Header};
use serde::{Deserialize, Serialize};

use crate::keyring::KeyRing;
use crate::policy::{BytesSel, Condition, Grant, NameSel, Ops, PermissionSet, Rule, TextSel};

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

/// Signs claims with the ring's active key.
pub fn sign(ring: &KeyRing, claims: &Claims) -> Result<String, jsonwebtoken::errors::Error> {
    let mut header = Header::new(Algorithm::EdDSA);
    header.kid = Some(ring.active_kid().to_owned());
    let signer = ring.signer().ok_or_else(|| {
        jsonwebtoken::errors::Error::from(jsonwebtoken::errors::ErrorKind::InvalidKeyFormat)
    })?;
    jsonwebtoken::encode(&header, claims, signer)
}

/// The header authcell writes, and the only one it reads: any other parameter (`crit`, `jku`,
/// `jwk`, `x5u`, `x5c`, ...) makes the credential malformed.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHeader<'a> {
    #[serde(borrow)]
    #[allow(dead_code)]
    typ: Option<std::borrow::Cow<'a, str>>,
    #[serde(borrow)]
    alg: Option<std::borrow::Cow<'a, str>>,
    #[serde(borrow)]
    kid: Option<std::borrow::Cow<'a, str>>,
}

/// Longest JWS header accepted, decoded.
const MAX_HEADER_LEN: usize = 512;

/// Checks size, structure, algorithm, key id and signature, and decodes the claims.
///
/// The signature is checked with the key ring's pre-parsed Ed25519 keys (jsonwebtoken would
/// re-parse the public key on every call, which is most of the cost of a check). Nothing but
/// the small header is parsed before the signature holds.
pub fn decode(ring: &KeyRing, token: &str) -> Result<Credential, CredentialError> {
    if token.is_empty() {
        return Err(CredentialError::Missing);
    }
    if token.len() > MAX_CREDENTIAL_LEN {
        return Err(CredentialError::TooLarge);
    }
    let (signing_input, signature_b64) =
        token.rsplit_once('.').ok_or(CredentialError::Malformed)?;
    let (header_b64, payload_b64) = signing_input
        .split_once('.')
        .ok_or(CredentialError::Malformed)?;
    if payload_b64.contains('.') {
        return Err(CredentialError::Malformed);
    }
    // Read the header ourselves: the algorithm is pinned to EdDSA and the key chosen strictly by
    // kid, so "alg: none" or an HMAC signed with a public key never gets further.
    let mut header_buf = [0u8; MAX_HEADER_LEN];
    let header_len = URL_SAFE_NO_PAD
        .decode_slice(header_b64, &mut header_buf)
        .map_err(|_| CredentialError::Malformed)?;
    let header: RawHeader<'_> = serde_json::from_slice(&header_buf[..header_len])
        .map_err(|_| CredentialError::Malformed)?;
    if header.alg.as_deref() != Some("EdDSA") {
        return Err(CredentialError::WrongAlgorithm);
    }
    let key = header
        .kid
        .as_deref()
        .and_then(|kid| ring.verification_key(kid))
        .ok_or(CredentialError::UnknownKeyId)?;
    let mut signature = [0u8; 64];
    match URL_SAFE_NO_PAD.decode_slice(signature_b64, &mut signature) {
        Ok(64) => {}
        _ => return Err(CredentialError::BadSignature),
    }
    key.public
        .verify_strict(
            signing_input.as_bytes(),
            &ed25519_dalek::Signature::from_bytes(&signature),
        )
        .map_err(|_| CredentialError::BadSignature)?;
    let payload = URL_SAFE_NO_PAD
        .decode(payload_b64)
        .map_err(|_| CredentialError::Malformed)?;
    let claims: Claims =
        serde_json::from_slice(&payload).map_err(|_| CredentialError::Malformed)?;
    let mut credential = credential_from_claims(claims)?;
    credential.kid_generation = ring.generation();
    Ok(credential)
}

fn credential_from_claims(c: Claims) -> Result<Credential, CredentialError> {
    let disposable = match c.t.as_str() {
        TYPE_API_KEY => false,
        TYPE_DISPOSABLE => true,
        _ => return Err(CredentialError::Malformed),
    };
    let authority = match (c.role, c.p) {
        (Some(role), None) if !disposable => Authority::Role(role),
        (None, Some(rules)) => {
            let rules = rules
                .iter()
                .map(|r| decode_rule(r))
                .collect::<Option<Vec<_>>>()
                .ok_or(CredentialError::Malformed)?;
            let conditions = c
                .ipf
                .iter()
                .map(|ranges| {
                    ranges
                        .iter()
                        .map(|r| r.parse::<IpNet>().ok())
                        .collect::<Option<Vec<_>>>()
                        .filter(|v| !v.is_empty())
                        .map(Condition::IpFilter)
                })
                .collect::<Option<Vec<_>>>()
                .ok_or(CredentialError::Malformed)?;
            Authority::Inline(Arc::new(PermissionSet {
                grant: Grant::Rules(rules),
                conditions,
            }))
        }
        _ => return Err(CredentialError::Malformed),
    };
    if disposable && c.exp.is_none() {
        return Err(CredentialError::Malformed);
    }
    // A derived credential is bounded by its root role at every check: one that does not name
    // it cannot be bounded, so it is not accepted.
    let derived = !c.anc.is_empty();
    if derived != c.rr.is_some() || (derived && matches!(authority, Authority::Role(_))) {
        return Err(CredentialError::Malformed);
    }
    let issued_at_ms = c.iatm.unwrap_or(c.iat.saturating_mul(1000));
    let revocation_ids = std::iter::once(&c.jti)
        .chain(c.anc.iter())
        .map(|id| CredentialId::parse(id))
        .collect();
    Ok(Credential {
        disposable,
        id: c.jti,
        account: c.sub,
        authority,
        ancestors: c.anc,
        token_id: c.tid,
        cell: c.cell,
        issued_at: c.iat,
        issued_at_ms,
        origin_issued_at_ms: c.oiatm.map_or(issued_at_ms, |o| o.min(issued_at_ms)),
        expires_at: c.exp,
        not_before: c.nbf,
        chain_expires_at: c.aexp,
        root_role: c.rr,
        revocation_ids,
        kid_generation: 0,
    })
}

/// Encodes inline conditions for the `ipf` claim.
pub fn encode_conditions(conditions: &[Condition]) -> Vec<Vec<String>> {
    conditions
        .iter()
        .map(|Condition::IpFilter(ranges)| ranges.iter().map(|r| r.to_string()).collect())
        .collect()
}

// Compact rule encoding: `<family><ops hex>;<selector>;<selector>` where a selector is `*`
// (all), `=<base64url>` (exact name or key) or `^<base64url>` (prefix). Families: a account,
// u auth, r resource, c cache, t topic, s store, f function. Names are base64url so any byte
// survives and the separator never needs escaping.

fn sel_str(kind: char, bytes: &[u8]) -> String {
    format!("{kind}{}", URL_SAFE_NO_PAD.encode(bytes))
}

fn name_sel(s: &NameSel) -> String {
    match s {
        NameSel::All => "*".into(),
        NameSel::Name(n) => sel_str('=', n.as_bytes()),
    }
}

fn bytes_sel(s: &BytesSel) -> String {
    match s {
        BytesSel::All => "*".into(),
        BytesSel::Key(k) => sel_str('=', k),
        BytesSel::Prefix(k) => sel_str('^', k),
    }
}

fn text_sel(s: &TextSel) -> String {
    match s {
        TextSel::All => "*".into(),
        TextSel::Name(n) => sel_str('=', n.as_bytes()),
        TextSel::Prefix(n) => sel_str('^', n.as_bytes()),
    }
}

/// Encodes one rule compactly.
pub fn encode_rule(rule: &Rule) -> String {
    let ops = rule.ops().bits();
    match rule {
        Rule::Account(_) => format!("a{ops:x}"),
        Rule::Auth(_) => format!("u{ops:x}"),
        Rule::Resource(_) => format!("r{ops:x}"),
        Rule::Cache { cache, item, .. } => {
            format!("c{ops:x};{};{}", name_sel(cache), bytes_sel(item))
        }
        Rule::Topic { cache, topic, .. } => {
            format!("t{ops:x};{};{}", name_sel(cache), text_sel(topic))
        }
        Rule::Store { store, item, .. } => {
            format!("s{ops:x};{};{}", name_sel(store), bytes_sel(item))
        }
        Rule::Function {
            cache, function, ..
        } => format!("f{ops:x};{};{}", name_sel(cache), text_sel(function)),
    }
}

enum Sel {
    All,
    Exact(Vec<u8>),
    Prefix(Vec<u8>),
}

fn parse_sel(s: &str) -> Option<Sel> {
    if s == "*" {
        return Some(Sel::All);
    }
    let (kind, rest) = s.split_at_checked(1)?;
    let bytes = URL_SAFE_NO_PAD.decode(rest).ok()?;
    match kind {
        "=" => Some(Sel::Exact(bytes)),
        "^" => Some(Sel::Prefix(bytes)),
        _ => None,
    }
}

fn to_name(sel: Sel) -> Option<NameSel> {
    match sel {
        Sel::All => Some(NameSel::All),
        Sel::Exact(b) => String::from_utf8(b).ok().map(NameSel::Name),
        Sel::Prefix(_) => None,
    }
}

fn to_bytes(sel: Sel) -> BytesSel {
    match sel {
        Sel::All => BytesSel::All,
        Sel::Exact(b) => BytesSel::Key(b),
        Sel::Prefix(b) => BytesSel::Prefix(b),
    }
}

fn to_text(sel: Sel) -> Option<TextSel> {
    Some(match sel {
        Sel::All => TextSel::All,
        Sel::Exact(b) => TextSel::Name(String::from_utf8(b).ok()?),
        Sel::Prefix(b) => TextSel::Prefix(String::from_utf8(b).ok()?),
    })
}

/// Decodes one compactly encoded rule; `None` if it is not well formed.
pub fn decode_rule(s: &str) -> Option<Rule> {
    let mut parts = s.split(';');
    let head = parts.next()?;
    let (family, ops) = head.split_at_checked(1)?;
    let ops = Ops::from_bits(u8::from_str_radix(ops, 16).ok()?)?;
    let first = parts.next().map(parse_sel);
    let second = parts.next().map(parse_sel);
    if parts.next().is_some() {
        return None;
    }
    let rule = match (family, first, second) {
        ("a", None, None) => Rule::Account(ops),
        ("u", None, None) => Rule::Auth(ops),
        ("r", None, None) => Rule::Resource(ops),
        ("c", Some(Some(a)), Some(Some(b))) => Rule::Cache {
            ops,
            cache: to_name(a)?,
            item: to_bytes(b),
        },
        ("t", Some(Some(a)), Some(Some(b))) => Rule::Topic {
            ops,
            cache: to_name(a)?,
            topic: to_text(b)?,
        },
        ("s", Some(Some(a)), Some(Some(b))) => Rule::Store {
            ops,
            store: to_name(a)?,
            item: to_bytes(b),
        },
        ("f", Some(Some(a)), Some(Some(b))) => Rule::Function {
            ops,
            cache: to_name(a)?,
            function: to_text(b)?,
        },
        _ => return None,
    };
    // Refuse op bits the family cannot carry.
    if !Rule::allowed_ops(rule.family()).contains(ops) || ops.is_empty() {
        return None;
    }
    Some(rule)
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
