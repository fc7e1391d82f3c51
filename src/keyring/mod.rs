//! The signing key ring: one active Ed25519 signing key and any number of verification keys, so
//! keys rotate without a restart or a broken credential.
//!
//! Private keys come from PEM files (PKCS#8) or are generated ephemerally for the embedded
//! default; they are never stored in the state store. The private key is held only inside
//! a parsed, zeroizing [`SigningKey`], and `Debug` never prints it.

use std::collections::HashMap;
use std::fmt;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ed25519_dalek::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePrivateKey};
use ed25519_dalek::{SigningKey, VerifyingKey};
use jsonwebtoken::jwk::{
    AlgorithmParameters, CommonParameters, EllipticCurve, Jwk, JwkSet, KeyAlgorithm,
    OctetKeyPairParameters, OctetKeyPairType, PublicKeyUse,
};
use jsonwebtoken::DecodingKey;
use sha2::{Digest, Sha256};

mod files;
mod jwks;

pub use files::{generate_pem, public_pem_of, KeyFiles};

/// Why a key could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("{path}: cannot read: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: not an Ed25519 private key in PKCS#8 PEM form")]
    BadPrivateKey { path: String },
    #[error("{path}: not an Ed25519 public key in SPKI PEM form")]
    BadPublicKey { path: String },
    #[error("cannot encode the signing key")]
    Encode,
}

/// A verification key and its id.
pub struct VerificationKey {
    pub kid: String,
    pub public: VerifyingKey,
    pub decoding: DecodingKey,
}

/// Signs with the active key; verifies with any key it holds, strictly by `kid`. A ring built
/// from a JWK set (a verifier library's) has no signer.
pub struct KeyRing {
    active_kid: String,
    /// The active private key, parsed once (re-parsing PKCS#8 for every token was most of the
    /// cost of minting one).
    signer: Option<Signer>,
    verifiers: HashMap<String, VerificationKey>,
    ephemeral: bool,
    /// Distinguishes successive rings of one process: a credential verified under an older
    /// generation is verified again, so a retired key stops working at once.
    generation: u64,
}

/// The active signing key, parsed once, and the JWS header every token it signs carries.
///
/// With the `server` feature (the node that mints), signatures come from aws-lc-rs: AWS's
/// libcrypto signs Ed25519 in about half the time ed25519-dalek takes on the same machine
/// (11 us vs 22 us here), and signing is most of the cost of vending a token. Both produce the
/// same bytes (Ed25519 signatures are deterministic; a unit test compares them). Both keys are
/// wiped on drop (ed25519-dalek's `zeroize` feature; aws-lc frees keys with `OPENSSL_cleanse`).
pub struct Signer {
    key: SigningKey,
    #[cfg(feature = "server")]
    fast: aws_lc_rs::signature::Ed25519KeyPair,
    /// The base64url JWS header: `typ`, `alg` and this key's `kid`.
    header: String,
}

impl Signer {
    fn new(key: SigningKey, kid: &str) -> Result<Self, KeyError> {
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::EdDSA);
        header.kid = Some(kid.to_owned());
        let header = serde_json::to_vec(&header).map_err(|_| KeyError::Encode)?;
        Ok(Signer {
            #[cfg(feature = "server")]
            fast: aws_lc_rs::signature::Ed25519KeyPair::from_seed_unchecked(key.as_bytes())
                .map_err(|_| KeyError::Encode)?,
            key,
            header: URL_SAFE_NO_PAD.encode(header),
        })
    }

    /// The Ed25519 signature of `message`.
    pub fn sign(&self, message: &[u8]) -> [u8; 64] {
        #[cfg(feature = "server")]
        {
            let mut out = [0u8; 64];
            out.copy_from_slice(self.fast.sign(message).as_ref());
            out
        }
        #[cfg(not(feature = "server"))]
        {
            use ed25519_dalek::Signer as _;
            self.key.sign(message).to_bytes()
        }
    }

    /// The base64url-encoded JWS header of the tokens it signs.
    pub fn header(&self) -> &str {
        &self.header
    }

    /// The key itself.
    pub fn key(&self) -> &SigningKey {
        &self.key
    }
}

fn next_generation() -> u64 {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

impl fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyRing")
            .field("active_kid", &self.active_kid)
            .field("signer", &"<redacted>")
            .field(
                "verification_kids",
                &self.verifiers.keys().collect::<Vec<_>>(),
            )
            .field("ephemeral", &self.ephemeral)
            .finish()
    }
}

/// The key id of a public key: a short digest, stable across restarts.
pub fn kid_of(public: &VerifyingKey) -> String {
    let digest = Sha256::digest(public.as_bytes());
    URL_SAFE_NO_PAD.encode(&digest[..12])
}

fn verification_key(public: VerifyingKey) -> VerificationKey {
    VerificationKey {
        kid: kid_of(&public),
        decoding: DecodingKey::from_ed_der(public.as_bytes()),
        public,
    }
}

impl KeyRing {
    fn from_signing_key(signing: SigningKey, ephemeral: bool) -> Result<Self, KeyError> {
        // A key that cannot be encoded as PKCS#8 is refused here, as it always was.
        signing.to_pkcs8_der().map_err(|_| KeyError::Encode)?;
        let verification = verification_key(signing.verifying_key());
        let active_kid = verification.kid.clone();
        let mut verifiers = HashMap::new();
        verifiers.insert(active_kid.clone(), verification);
        Ok(KeyRing {
            signer: Some(Signer::new(signing, &active_kid)?),
            active_kid,
            verifiers,
            ephemeral,
            generation: next_generation(),
        })
    }

    /// A fresh random key that lives as long as the process (embedded default).
    pub fn ephemeral() -> Result<Self, KeyError> {
        let signing = SigningKey::generate(&mut rand_core::OsRng);
        Self::from_signing_key(signing, true)
    }

    /// Loads the signing key from a PKCS#8 PEM file.
    pub fn from_pem_file(path: &str) -> Result<Self, KeyError> {
        let pem = std::fs::read_to_string(path).map_err(|source| KeyError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::from_pem(path, &pem)
    }

    /// Loads the signing key from PKCS#8 PEM text; `origin` names it in errors.
    pub fn from_pem(origin: &str, pem: &str) -> Result<Self, KeyError> {
        let signing = SigningKey::from_pkcs8_pem(pem).map_err(|_| KeyError::BadPrivateKey {
            path: origin.to_owned(),
        })?;
        Self::from_signing_key(signing, false)
    }

    /// Adds a verification-only key (a retiring or upcoming key) from an SPKI PEM file.
    pub fn add_public_pem_file(&mut self, path: &str) -> Result<String, KeyError> {
        let pem = std::fs::read_to_string(path).map_err(|source| KeyError::Read {
            path: path.to_owned(),
            source,
        })?;
        let public =
            VerifyingKey::from_public_key_pem(&pem).map_err(|_| KeyError::BadPublicKey {
                path: path.to_owned(),
            })?;
        let key = verification_key(public);
        let kid = key.kid.clone();
        self.verifiers.insert(kid.clone(), key);
        self.generation = next_generation();
        Ok(kid)
    }

    pub fn generation(&self) -> u64 {
        self.generation
    }

    pub fn is_ephemeral(&self) -> bool {
        self.ephemeral
    }

    pub fn active_kid(&self) -> &str {
        &self.active_kid
    }

    /// The signing key; `None` for a verification-only ring.
    pub fn signer(&self) -> Option<&Signer> {
        self.signer.as_ref()
    }

    /// The key ids it verifies, sorted.
    pub fn kids(&self) -> Vec<String> {
        let mut kids: Vec<String> = self.verifiers.keys().cloned().collect();
        kids.sort();
        kids
    }

    pub fn verification_key(&self, kid: &str) -> Option<&VerificationKey> {
        self.verifiers.get(kid)
    }

    pub fn verification_keys(&self) -> impl Iterator<Item = &VerificationKey> {
        self.verifiers.values()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The fast signer writes exactly what ed25519-dalek writes (Ed25519 is deterministic), and
    /// the ring's own public key verifies it strictly.
    #[test]
    fn the_signer_matches_ed25519_dalek_byte_for_byte() {
        use ed25519_dalek::Signer as _;
        let ring = KeyRing::ephemeral().expect("ring");
        let signer = ring.signer().expect("a signing ring");
        let public = &ring
            .verification_key(ring.active_kid())
            .expect("key")
            .public;
        for len in [0usize, 1, 64, 330, 8192] {
            let message = vec![b'm'; len];
            let signature = signer.sign(&message);
            assert_eq!(
                signature,
                signer.key().sign(&message).to_bytes(),
                "length {len}"
            );
            public
                .verify_strict(&message, &ed25519_dalek::Signature::from_bytes(&signature))
                .expect("verifies");
        }
    }
}
