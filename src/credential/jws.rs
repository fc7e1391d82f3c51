//! Compact JWS: signing claims with the ring's active key, and decoding a token strictly (the
//! header exactly as authcell writes it, the key by `kid`, then the claims' structure).

use super::*;

/// Signs claims with the ring's active key: the compact JWS `header.claims.signature`, with
/// the header jsonwebtoken would write (`typ`, `alg`, `kid`; encoded once per key ring), signed
/// with the ring's parsed key.
pub fn sign(ring: &KeyRing, claims: &Claims) -> Result<String, jsonwebtoken::errors::Error> {
    let signer = ring.signer().ok_or_else(|| {
        jsonwebtoken::errors::Error::from(jsonwebtoken::errors::ErrorKind::InvalidKeyFormat)
    })?;
    let claims = serde_json::to_vec(claims).map_err(|e| {
        jsonwebtoken::errors::Error::from(jsonwebtoken::errors::ErrorKind::Json(
            std::sync::Arc::new(e),
        ))
    })?;
    let header = signer.header();
    // header . claims . signature (86 characters)
    let mut token = String::with_capacity(header.len() + claims.len().div_ceil(3) * 4 + 88);
    token.push_str(header);
    token.push('.');
    URL_SAFE_NO_PAD.encode_string(claims, &mut token);
    let signature = signer.sign(token.as_bytes());
    token.push('.');
    URL_SAFE_NO_PAD.encode_string(signature, &mut token);
    Ok(token)
}

/// The header authcell writes, and the only one it reads: any other parameter (`crit`, `jku`,
/// `jwk`, `x5u`, `x5c`, ...) makes the credential malformed.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawHeader<'a> {
    #[serde(borrow)]
    #[allow(dead_code)]
    typ: Option<std::borrow::Cow<'a, str>>,
    #[serde(borrow)]
    alg: Option<std::borrow::Cow<'a, str>>,
    #[serde(borrow)]
    kid: Option<std::borrow::Cow<'a, str>>,
}

/// Longest JWS header accepted, decoded.
pub(super) const MAX_HEADER_LEN: usize = 512;

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

pub(super) fn credential_from_claims(c: Claims) -> Result<Credential, CredentialError> {
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
