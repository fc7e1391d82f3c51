//! Wiring: builds the key ring, store, live view, verifier and authority of one node.

use std::sync::Arc;

use crate::authority::Authority;
use crate::clock::Clock;
use crate::config::CommonArgs;
use crate::keyring::{KeyError, KeyRing};
use crate::store::memory::MemoryStore;
use crate::verifier::Verifier;
use crate::view::View;

/// Loads the key ring the flags describe, or an ephemeral one when no signing key is given.
pub fn keyring(common: &CommonArgs) -> Result<KeyRing, KeyError> {
    let mut ring = match &common.signing_key_file {
        Some(path) => KeyRing::from_pem_file(path)?,
        None => KeyRing::ephemeral()?,
    };
    for path in &common.verification_key_file {
        ring.add_public_pem_file(path)?;
    }
    Ok(ring)
}

/// An authority over an in-memory store (the embedded default, and most tests).
pub fn embedded(
    keyring: KeyRing,
    clock: Arc<dyn Clock>,
    cell: &str,
    endpoint: &str,
) -> Arc<Authority> {
    let keyring = Arc::new(keyring);
    let view = Arc::new(View::new());
    let store = Arc::new(MemoryStore::new(view.clone()));
    let verifier = Verifier::new(keyring.clone(), view, clock);
    Arc::new(Authority::new(
        store,
        verifier,
        keyring,
        cell.to_owned(),
        endpoint.to_owned(),
    ))
}
