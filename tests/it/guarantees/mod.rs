//! The two promises, at their edges: a revoked credential is refused everywhere, and nothing
//! derived from a key can do more than that key can do right now. Each test names the hole it
//! closes (issue "Revoked means refused, and nobody holds more than their maker"); each runs
//! over gRPC against the embedded server, and, where cells matter, against two cells over real
//! Redis (a primary and a replica per cell), some while a replica is cut off, paused or
//! restarted.

use std::time::{Duration, Instant};

use authcell::proto::authcell::v1 as pb;
use authcell::proto::permission_rules as pr;
use tonic::Code;

use crate::support::api::*;
use crate::support::cells::{until_revoked, wait_for, Cells, Node, NodeConfig};
use crate::support::process::*;
use crate::support::redis::Topology;
use crate::support::statements::read_cache;
use crate::support::*;

pub(super) const ALLOWED: pb::Reason = pb::Reason::Unspecified;
pub(super) const READ: pb::Action = pb::Action::CacheRead;
pub(super) const WRITE: pb::Action = pb::Action::CacheWrite;

/// The claims of a credential, without verifying it (tests only).
pub(super) fn claims(credential: &str) -> serde_json::Value {
    use base64::Engine;
    let payload = credential.split('.').nth(1).expect("jws payload");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .expect("base64url");
    serde_json::from_slice(&bytes).expect("json claims")
}

mod cells;
mod clock;
mod derived;
mod revocation;
