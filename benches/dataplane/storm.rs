//! Figure 8: a revocation storm in one account, cached checks of another.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use super::*;

/// Runs `events_per_sec` revocations in `account` on a thread while `storming` is set (0: as
/// fast as one thread can apply them). Returns the number applied when `stop` is set.
fn storm(
    view: Arc<View>,
    account: String,
    events_per_sec: u64,
    storming: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
    applied: Arc<AtomicU64>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let pause = (events_per_sec > 0).then(|| Duration::from_secs(1) / events_per_sec as u32);
        let mut next = Instant::now();
        let mut i = 0;
        while !stop.load(Ordering::Relaxed) {
            if !storming.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_micros(200));
                next = Instant::now();
                continue;
            }
            view.apply(&Event::CredentialRevoked {
                account: account.clone(),
                by: None,
                id: random_id(i),
            });
            i += 1;
            applied.fetch_add(1, Ordering::Relaxed);
            if let Some(pause) = pause {
                next += pause;
                if let Some(wait) = next.checked_duration_since(Instant::now()) {
                    std::thread::sleep(wait);
                }
            }
        }
    })
}

pub(crate) fn figure_storm(report: &mut Report, scale: &Scale, base: &Verifier, tokens: &Tokens) {
    let view = Arc::new(View::new());
    let verifier = Verifier::with_keys(base.keys().clone(), view.clone(), base.clock().clone());
    // The stormy account sits on another generation counter than the checked one (two accounts
    // share one with odds of 1 in 1 024; then they cost each other a re-resolve per event).
    let stormy = (0..)
        .map(|i| format!("storm-{i}"))
        .find(|a| view.shard(a) != view.shard(ACCOUNT))
        .expect("an account on another counter");
    let token = &tokens.api_key;
    assert_allowed(&verifier, token);
    let mut rows = Vec::new();
    // A batch long enough for the storm to land tens of events in it.
    let batch = scale.cached_batch * 20;
    for (label, rate) in [
        ("X: 1 000 revocations/s", 1_000u64),
        ("X: revocations flat out", 0),
    ] {
        let storming = Arc::new(AtomicBool::new(false));
        let stop = Arc::new(AtomicBool::new(false));
        let applied = Arc::new(AtomicU64::new(0));
        let thread = storm(
            view.clone(),
            stormy.clone(),
            rate,
            storming.clone(),
            stop.clone(),
            applied.clone(),
        );
        let resolves_before = verifier.stats().snapshot().resolves;
        let mut storm_time = Duration::ZERO;
        let mut quiet = |r: Range<usize>| check_repeatedly(&verifier, token, r);
        let mut stormy_case = |r: Range<usize>| {
            storming.store(true, Ordering::Relaxed);
            let started = Instant::now();
            check_repeatedly(&verifier, token, r);
            storm_time += started.elapsed();
            storming.store(false, Ordering::Relaxed);
        };
        let m = interleaved(
            scale.cached_rounds,
            batch,
            &mut [&mut quiet, &mut stormy_case],
        );
        stop.store(true, Ordering::Relaxed);
        thread.join().expect("storm thread");
        assert_eq!(
            verifier.stats().snapshot().resolves,
            resolves_before,
            "the checked account's verdicts must be reused through the storm"
        );
        let events = applied.load(Ordering::Relaxed);
        let per_sec = events as f64 / storm_time.as_secs_f64().max(1e-9);
        let label = format!("{label} ({per_sec:.0}/s applied)");
        let row = Row::new(&label, ns(m[0]), ns(m[1]), m[1] / m[0]);
        rows.push(if rate > 0 {
            row.goal("<= 1.2x", |r| r <= 1.2)
        } else {
            row
        });
    }
    // The checked account's own revocation still applies on the very next check.
    view.apply(&Event::IssuedBefore {
        account: ACCOUNT.into(),
        before_ms: u64::MAX,
    });
    let denied = verifier.check(token, Action::CacheRead, &cache_read(), None);
    assert!(
        !denied.allowed(),
        "a revocation in the account applies at once"
    );
    report.figure(
        "8",
        "cached check of account Y, quiet vs during a revocation storm in account X",
        ("quiet", "storm in X"),
        &rows,
    );
}
