//! Key files: generating a PEM key, its public half, and loading (and fingerprinting, to
//! reload on change) the files the flags name.

use super::*;

/// Generates a new Ed25519 private key as PKCS#8 PEM (for `authcell keygen`).
pub fn generate_pem() -> Result<zeroize::Zeroizing<String>, KeyError> {
    use ed25519_dalek::pkcs8::spki::der::pem::LineEnding;
    let signing = SigningKey::generate(&mut rand_core::OsRng);
    signing
        .to_pkcs8_pem(LineEnding::LF)
        .map_err(|_| KeyError::Encode)
}

/// The SPKI PEM of a private key's public half (for distributing verification keys).
pub fn public_pem_of(private_pem: &str) -> Result<String, KeyError> {
    use ed25519_dalek::pkcs8::spki::der::pem::LineEnding;
    use ed25519_dalek::pkcs8::EncodePublicKey;
    let signing = SigningKey::from_pkcs8_pem(private_pem).map_err(|_| KeyError::BadPrivateKey {
        path: "<stdin>".into(),
    })?;
    signing
        .verifying_key()
        .to_public_key_pem(LineEnding::LF)
        .map_err(|_| KeyError::Encode)
}

/// Where a node's keys live on disk: the signing key file, extra verification key files, and a
/// directory whose `*.pem` public keys are all trusted. Re-reading them is how keys rotate
/// without a restart (Kubernetes updates mounted secrets in place).
#[derive(Clone, Debug, Default)]
pub struct KeyFiles {
    pub signing_key_file: Option<String>,
    pub verification_key_files: Vec<String>,
    pub verification_keys_dir: Option<String>,
}

impl KeyFiles {
    /// Every file that makes up the ring, in a stable order.
    fn paths(&self) -> Result<Vec<String>, KeyError> {
        let mut paths: Vec<String> = self.verification_key_files.clone();
        if let Some(dir) = &self.verification_keys_dir {
            let entries = std::fs::read_dir(dir).map_err(|source| KeyError::Read {
                path: dir.clone(),
                source,
            })?;
            let mut found: Vec<String> = entries
                .filter_map(|e| e.ok())
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "pem"))
                .map(|p| p.to_string_lossy().into_owned())
                .collect();
            found.sort();
            paths.extend(found);
        }
        Ok(paths)
    }

    /// A digest of every file's content: unchanged digest, unchanged ring.
    pub fn fingerprint(&self) -> Result<Vec<u8>, KeyError> {
        let mut hasher = Sha256::new();
        for path in self.signing_key_file.iter().cloned().chain(self.paths()?) {
            let content = std::fs::read(&path).map_err(|source| KeyError::Read {
                path: path.clone(),
                source,
            })?;
            hasher.update(path.as_bytes());
            hasher.update(Sha256::digest(&content));
        }
        Ok(hasher.finalize().to_vec())
    }

    /// Loads the ring: the signing key (or an ephemeral one when none is configured) plus every
    /// verification key.
    pub fn load(&self) -> Result<KeyRing, KeyError> {
        let mut ring = match &self.signing_key_file {
            Some(path) => KeyRing::from_pem_file(path)?,
            None => KeyRing::ephemeral()?,
        };
        for path in self.paths()? {
            ring.add_public_pem_file(&path)?;
        }
        Ok(ring)
    }
}
