//! Health: every service SERVING once the revocation view is loaded, NOT_SERVING while it is
//! stale under the deny policy, and for good once draining starts.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use tonic_health::ServingStatus;

use super::SERVICES;
use crate::authority::Authority;

pub(super) async fn set_all(
    reporter: &tonic_health::server::HealthReporter,
    status: ServingStatus,
) {
    reporter.set_service_status("", status).await;
    for service in SERVICES {
        reporter.set_service_status(service, status).await;
    }
}

pub(super) async fn watch_health(
    authority: Arc<Authority>,
    reporter: tonic_health::server::HealthReporter,
    draining: Arc<AtomicBool>,
) {
    let mut last = None;
    let mut was_stale = false;
    loop {
        if draining.load(Ordering::SeqCst) {
            return;
        }
        let verifier = authority.verifier();
        // Under either policy a stale view is said out loud (under `serve`, checks go on).
        let stale = verifier.view().is_loaded() && verifier.is_stale();
        if stale != was_stale {
            let age_ms = verifier.view_age().as_millis() as u64;
            if stale {
                tracing::warn!(age_ms, policy = ?verifier.stale_policy(), "the revocation view is stale: no fresh data from the Redis primary has come through this cell's replica within --max-staleness");
            } else {
                tracing::info!(age_ms, "the revocation view is fresh again");
            }
            was_stale = stale;
        }
        let serving = verifier.is_serving();
        if last != Some(serving) {
            let status = if serving {
                ServingStatus::Serving
            } else {
                ServingStatus::NotServing
            };
            set_all(&reporter, status).await;
            if !serving {
                tracing::warn!(
                    "not serving checks: the revocation view is not loaded or too stale"
                );
            }
            last = Some(serving);
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}
