//! Data-plane figures, each against a baseline measured in the same run (the machine is noisy,
//! so what matters is the ratio):
//!
//! 1. cached `Verifier::check` vs a `HashMap<String, _>` lookup keyed by the same token;
//! 2. uncached check (a never-seen token per call) vs a bare Ed25519 `verify_strict` of the same
//!    token (signing input and signature decoded beforehand, key pre-parsed);
//! 3. check latency with 1 000 vs 1 000 000 revoked ids of the token's account in the view;
//! 4. resident-set growth per revoked id at 1 000 000 ids (in a child process: a clean heap);
//! 5. Authorize throughput and latency vs `grpc.health.v1.Health/Check` on the same server;
//! 6. GenerateDisposableToken throughput and latency vs Health/Check;
//! 7. the metrics layer's cost per RPC;
//! 8. cached checks of one account during a revocation storm in another vs quiet;
//! 9. resident memory after 1 000 000 distinct credentials checked vs the cache budget.
//!
//! Micro benchmarks time interleaved batches (baseline, measured, baseline, ...) with
//! `Instant` and take the median batch; the load figures interleave one-second segments of each
//! call kind over the same connections with the same number of calls in flight.
//!
//! Run: `cargo bench --bench dataplane`. Under `cargo test --all-targets` (no `--bench`) it is
//! a smoke run with tiny counts that only checks every figure can be produced.
//! `AUTHCELL_BENCH_FIGURES=1,3` runs a subset (e.g. under a profiler).

use std::collections::HashMap;
use std::hint::black_box;
use std::net::SocketAddr;
use std::ops::Range;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use authcell::clock::{Clock, SystemClock};
use authcell::credential::{self, Claims};
use authcell::keyring::KeyRing;
use authcell::node::{self, NodeOptions};
use authcell::policy::{Action, BytesSel, NameSel, Ops, Resource, Rule};
use authcell::proto::authcell::v1 as pb;
use authcell::proto::permission_messages as pm;
use authcell::proto::token;
use authcell::server;
use authcell::verifier::view::{CredentialId, Event, View};
use authcell::verifier::Verifier;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ed25519_dalek::{Signature, VerifyingKey};
use tokio::net::TcpListener;
use tonic::transport::Channel;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::HealthCheckRequest;

mod load;
mod memory;
mod metrics_layer;
mod report;
mod storm;
mod tokens;
mod verifier;

use load::*;
use memory::*;
use metrics_layer::*;
use report::*;
use storm::*;
use tokens::*;
use verifier::*;

/// Set in the child process that measures memory; its value is the number of revocations.
pub(crate) const MEMORY_CHILD_ENV: &str = "AUTHCELL_BENCH_MEMORY_CHILD";
/// Set in the child process that measures the credential cache; its value is the number of
/// distinct credentials to check.
pub(crate) const CACHE_CHILD_ENV: &str = "AUTHCELL_BENCH_CACHE_CHILD";
/// The account every token and revocation belongs to.
pub(crate) const ACCOUNT: &str = "bench";
/// A comma-separated subset of figures to run (e.g. `1,3`); all when unset.
pub(crate) const FIGURES_ENV: &str = "AUTHCELL_BENCH_FIGURES";

/// How much work each figure does.
pub(crate) struct Scale {
    /// Calls per timed batch of the cached micro benchmarks.
    cached_batch: usize,
    /// Timed batches (rounds) of each micro benchmark; one more untimed round warms up.
    cached_rounds: usize,
    uncached_batch: usize,
    uncached_rounds: usize,
    revocations_small: usize,
    revocations_large: usize,
    memory_entries: usize,
    /// Distinct credentials checked for figure 9.
    cache_credentials: usize,
    channels: usize,
    in_flight: usize,
    load_segment: Duration,
    load_rounds: usize,
}

impl Scale {
    fn full() -> Self {
        Scale {
            cached_batch: 10_000,
            cached_rounds: 25,
            uncached_batch: 1_000,
            uncached_rounds: 15,
            revocations_small: 1_000,
            revocations_large: 1_000_000,
            memory_entries: 1_000_000,
            cache_credentials: 1_000_000,
            channels: 4,
            in_flight: 32,
            load_segment: Duration::from_secs(1),
            load_rounds: 6,
        }
    }

    fn smoke() -> Self {
        Scale {
            cached_batch: 200,
            cached_rounds: 3,
            uncached_batch: 20,
            uncached_rounds: 2,
            revocations_small: 100,
            revocations_large: 3_000,
            memory_entries: 3_000,
            cache_credentials: 2_000,
            channels: 2,
            in_flight: 4,
            load_segment: Duration::from_millis(100),
            load_rounds: 1,
        }
    }
}

// ---------------------------------------------------------------------------------------------

fn main() {
    if let Ok(n) = std::env::var(MEMORY_CHILD_ENV) {
        memory_child(n.parse().expect("revocation count"));
        return;
    }
    if let Ok(n) = std::env::var(CACHE_CHILD_ENV) {
        cache_child(n.parse().expect("credential count"));
        return;
    }
    // `cargo bench` passes --bench; under `cargo test --all-targets` this is a smoke run.
    let benching = std::env::args().any(|a| a == "--bench");
    let scale = if benching {
        Scale::full()
    } else {
        Scale::smoke()
    };
    let mut report = Report {
        judged: benching,
        verdicts: Vec::new(),
    };
    let started = Instant::now();
    println!(
        "authcell data-plane benchmarks ({}): ratios against baselines measured in this run",
        if benching {
            "full run"
        } else {
            "smoke run, goals not judged"
        }
    );

    // AUTHCELL_BENCH_FIGURES=1,3 runs a subset (e.g. under a profiler); default: all.
    let only: Option<Vec<String>> = std::env::var(FIGURES_ENV)
        .ok()
        .map(|v| v.split(',').map(|f| f.trim().to_owned()).collect());
    let wants = |ids: &[&str]| {
        only.as_ref()
            .is_none_or(|o| ids.iter().any(|id| o.iter().any(|f| f == id)))
    };

    // First, while this process is still small (the child has its own heap anyway).
    if wants(&["4"]) {
        figure_memory(&mut report, &scale);
    }
    if wants(&["9"]) {
        figure_cache_memory(&mut report, &scale);
    }

    if wants(&["1", "2", "3", "8"]) {
        let ring = KeyRing::ephemeral().expect("key ring");
        let verifier = Verifier::new(ring, Arc::new(View::new()), Arc::new(SystemClock));
        let keys = verifier.keys().load();
        let public = keys
            .verification_key(keys.active_kid())
            .expect("active key")
            .public;
        let tokens = mint_tokens(&keys, &scale);
        if wants(&["1"]) {
            figure_cached(&mut report, &scale, &verifier, &tokens);
        }
        if wants(&["2"]) {
            figure_uncached(&mut report, &scale, &verifier, &public, &tokens);
        }
        if wants(&["3"]) {
            figure_view_size(&mut report, &scale, &verifier, &tokens);
        }
        if wants(&["8"]) {
            figure_storm(&mut report, &scale, &verifier, &tokens);
        }
    }

    if wants(&["5", "6"]) {
        let sign_row = wants(&["6"]).then(|| sign_cost(&scale));
        figures_load(&mut report, &scale, sign_row);
    }

    if wants(&["7"]) {
        figure_metrics_layer(&mut report, &scale);
    }

    println!();
    if report.judged {
        let missed = report.verdicts.iter().filter(|v| !v.2).count();
        println!(
            "summary: {} of {} goals met ({:.0} s)",
            report.verdicts.len() - missed,
            report.verdicts.len(),
            started.elapsed().as_secs_f64()
        );
        for (figure, label, met, detail) in &report.verdicts {
            if !met {
                println!("  MISSED [{figure}] {label}: {detail}");
            }
        }
    } else {
        println!(
            "smoke run done in {:.1} s (run `cargo bench --bench dataplane` for the figures)",
            started.elapsed().as_secs_f64()
        );
    }
}
