//! The soak under faults, for long runs (the test `soak::a_short_soak_under_faults_loses_no_revocation`
//! runs the same driver for about a minute).
//!
//! Two real `authcell serve` processes (cells a and b) over a Redis primary and one replica per
//! cell (AOF), mixed traffic, a cycling fault schedule, and an oracle of every revocation; see
//! `tests/it/soak.rs` for what it does and what it counts.
//!
//! Run: `AUTHCELL_SOAK_SECONDS=600 cargo bench --bench soak` (default 600 s; needs
//! `redis-server` on PATH). Cargo builds the authcell binary in the bench profile first and
//! tells this program where it is (`CARGO_BIN_EXE_authcell`); `AUTHCELL_SOAK_BIN` points it at
//! another build. `AUTHCELL_SOAK_SEED` replays a run's traffic choices.
//!
//! `cargo test --all-targets` also builds and runs this target (without `--bench`): it then
//! prints one line and exits, so the suite does not take ten minutes.

/// The test suite's Redis harness, at the same module path as in the tests.
mod support {
    // Inside an inline module a path is relative to `benches/support/`.
    #[path = "../../tests/it/support/redis/mod.rs"]
    pub mod redis;
}
#[path = "../tests/it/soak/mod.rs"]
mod soak;

use std::process::ExitCode;
use std::time::Duration;

fn main() -> ExitCode {
    if !std::env::args().any(|a| a == "--bench") {
        println!("soak: not run without --bench (run it with `cargo bench --bench soak`)");
        return ExitCode::SUCCESS;
    }
    let seconds: u64 = match std::env::var("AUTHCELL_SOAK_SECONDS") {
        Err(_) => 600,
        Ok(s) => match s.parse() {
            Ok(n) => n,
            Err(_) => {
                eprintln!("soak: AUTHCELL_SOAK_SECONDS={s:?} is not a number of seconds");
                return ExitCode::FAILURE;
            }
        },
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("soak: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!("soak: {seconds} s of traffic under faults, then healing and the final sweep");
    let report = runtime.block_on(soak::run(Duration::from_secs(seconds)));
    println!("{report}");
    let gaps = report.gaps();
    if !gaps.is_empty() {
        println!("never happened: {}", gaps.join("; "));
    }
    println!(
        "result: {} violation(s), {} missed revocation(s): {}",
        report.violation_count(),
        report.missed_count(),
        if report.passed() { "PASS" } else { "FAIL" }
    );
    if report.passed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
