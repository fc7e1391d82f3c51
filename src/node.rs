//! Wiring: builds the key ring, store, live view, verifier and authority of one node.

use std::sync::Arc;

use crate::authority::{Authority, Settings};
use crate::clock::Clock;
use crate::config::CommonArgs;
use crate::keyring::{KeyError, KeyRing};
use crate::ratelimit;
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

/// What distinguishes one node from another.
#[derive(Clone, Debug)]
pub struct NodeOptions {
    pub cell: String,
    pub endpoint: String,
    /// Token vending and key creation per account and second; 0 = unlimited.
    pub vend_rate_per_second: u32,
    pub vend_burst: u32,
}

/// An authority over an in-memory store (the embedded default, and most tests).
pub fn embedded(keyring: KeyRing, clock: Arc<dyn Clock>, options: &NodeOptions) -> Arc<Authority> {
    let keyring = Arc::new(keyring);
    let view = Arc::new(View::new());
    let store = Arc::new(MemoryStore::new(view.clone()));
    let verifier = Verifier::new(keyring.clone(), view, clock);
    Arc::new(Authority::new(
        store,
        verifier,
        keyring,
        Settings {
            cell: options.cell.clone(),
            endpoint: options.endpoint.clone(),
            limiter: ratelimit::from_config(options.vend_rate_per_second, options.vend_burst),
        },
    ))
}
