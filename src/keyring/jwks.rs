//! The ring as a JWK set: what `authcell.v1.Keys/GetJwks` serves, and what a cache node's
//! verifier is built from.

use super::*;

impl KeyRing {
    /// The verification keys as an RFC 7517 JWK set (OKP / Ed25519).
    pub fn jwks(&self) -> JwkSet {
        let mut keys: Vec<&VerificationKey> = self.verifiers.values().collect();
        keys.sort_by(|a, b| a.kid.cmp(&b.kid));
        JwkSet {
            keys: keys
                .into_iter()
                .map(|k| Jwk {
                    common: CommonParameters {
                        public_key_use: Some(PublicKeyUse::Signature),
                        key_algorithm: Some(KeyAlgorithm::EdDSA),
                        key_id: Some(k.kid.clone()),
                        ..CommonParameters::default()
                    },
                    algorithm: AlgorithmParameters::OctetKeyPair(OctetKeyPairParameters {
                        key_type: OctetKeyPairType::OctetKeyPair,
                        curve: EllipticCurve::Ed25519,
                        x: URL_SAFE_NO_PAD.encode(k.public.as_bytes()),
                    }),
                })
                .collect(),
        }
    }

    /// A verification-only ring from a JWK set. Keys that are not Ed25519 are skipped; a key
    /// whose `kid` does not match its public key is refused (the kid is our digest of it).
    pub fn from_jwks(jwks: &JwkSet, active_kid: &str) -> Result<Self, KeyError> {
        let mut verifiers = HashMap::new();
        for jwk in &jwks.keys {
            let AlgorithmParameters::OctetKeyPair(okp) = &jwk.algorithm else {
                continue;
            };
            if okp.curve != EllipticCurve::Ed25519 {
                continue;
            }
            let bad = || KeyError::BadPublicKey {
                path: format!("jwk {:?}", jwk.common.key_id),
            };
            let raw = URL_SAFE_NO_PAD.decode(&okp.x).map_err(|_| bad())?;
            let bytes: [u8; 32] = raw.try_into().map_err(|_| bad())?;
            let public = VerifyingKey::from_bytes(&bytes).map_err(|_| bad())?;
            let key = verification_key(public);
            if jwk.common.key_id.as_deref() != Some(key.kid.as_str()) {
                return Err(bad());
            }
            verifiers.insert(key.kid.clone(), key);
        }
        Ok(KeyRing {
            active_kid: active_kid.to_owned(),
            signer: None,
            verifiers,
            ephemeral: false,
            generation: next_generation(),
        })
    }
}
