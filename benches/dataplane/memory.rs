//! Figure 4: memory, measured in a child process.

use super::*;

// ---------------------------------------------------------------------------------------------
// Figure 4: memory, measured in a child process

pub(crate) fn page_size() -> u64 {
    Command::new("getconf")
        .arg("PAGESIZE")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(4096)
}

pub(crate) fn resident_bytes(page: u64) -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").expect("/proc/self/statm");
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .expect("resident pages");
    pages * page
}

/// The child: applies `n` revocations to a fresh view and prints RSS before and after.
pub(crate) fn memory_child(n: usize) {
    let page = page_size();
    let view = View::new();
    // Warm up everything but the revoked set: the account entry, the UUID generator, and the
    // allocator's small-object arenas the transient event strings reuse.
    view.apply(&Event::IssuedBefore {
        account: ACCOUNT.into(),
        before_ms: 0,
    });
    for i in 0..1000 {
        black_box(random_id(i));
    }
    let before = resident_bytes(page);
    revoke_many(&view, n);
    let after = resident_bytes(page);
    assert_eq!(view.revoked_len(), n);
    black_box(&view);
    println!("entries={n} rss_before={before} rss_after={after} page={page}");
}

/// The floor for `n` u128 ids in a hashbrown set: buckets (a power of two at most 7/8 full)
/// times 16 bytes of id and 1 control byte, plus one group of trailing control bytes.
pub(crate) fn hash_set_floor(n: usize) -> u64 {
    let buckets = if n < 8 {
        if n < 4 {
            4
        } else {
            8
        }
    } else {
        (n * 8 / 7).next_power_of_two()
    };
    (buckets * 17 + 16) as u64
}

/// Runs this benchmark again as a child with `env` set to `count`, and returns a reader of the
/// `name=value` fields it printed.
fn run_child(env: &str, count: usize) -> impl Fn(&str) -> u64 {
    let exe = std::env::current_exe().expect("current exe");
    let output = Command::new(exe)
        .env(env, count.to_string())
        .output()
        .expect("spawn the measuring child");
    assert!(
        output.status.success(),
        "{env} child failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8(output.stdout).expect("utf-8");
    move |name: &str| -> u64 {
        stdout
            .split_whitespace()
            .find_map(|kv| kv.strip_prefix(&format!("{name}=")))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("the child printed no {name}: {stdout}"))
    }
}

pub(crate) fn figure_memory(report: &mut Report, scale: &Scale) {
    let field = run_child(MEMORY_CHILD_ENV, scale.memory_entries);
    let (n, before, after, page) = (
        field("entries"),
        field("rss_before"),
        field("rss_after"),
        field("page"),
    );
    let per_entry = after.saturating_sub(before) as f64 / n as f64;
    let floor = hash_set_floor(n as usize) as f64 / n as f64;
    let goal = 100.0;
    let rows = [Row::new(
        "RSS growth per revoked id",
        format!("{goal:.0} B (goal)"),
        format!("{per_entry:.1} B"),
        per_entry / goal,
    )
    .goal("<= 1.00x", |r| r <= 1.0)];
    report.figure(
        "4",
        &format!("resident memory per revoked id at {n} ids (fresh View, child process)"),
        ("budget", "measured"),
        &rows,
    );
    report.note(&format!(
        "RSS {:.1} MiB -> {:.1} MiB (page {page} B); a hash set of {n} u128 ids needs at least \
         {floor:.1} B per id (table {:.1} MiB, {:.0}% full)",
        before as f64 / 1048576.0,
        after as f64 / 1048576.0,
        hash_set_floor(n as usize) as f64 / 1048576.0,
        n as f64 * 17.0 * 100.0 / hash_set_floor(n as usize) as f64
    ));
}

// ---------------------------------------------------------------------------------------------
// Figure 9: memory of the verified-credential cache after many distinct credentials

/// The cache budget figure 9 configures.
pub(crate) const CACHE_BUDGET: u64 = 32 * 1024 * 1024;

/// The child: checks `n` distinct, never-repeated API keys (minted here, on two threads) with a
/// verifier whose cache budget is [`CACHE_BUDGET`], and prints RSS before and after.
pub(crate) fn cache_child(n: usize) {
    let page = page_size();
    let ring = KeyRing::ephemeral().expect("key ring");
    let verifier = Verifier::new(ring, Arc::new(View::new()), Arc::new(SystemClock))
        .with_cache_bytes(CACHE_BUDGET);
    let keys = verifier.keys().load();
    let now = SystemClock.now();
    // Warm the allocator and the lazily built parts with a few checks.
    for _ in 0..100 {
        let token = credential::sign(&keys, &api_key_claims(now)).expect("sign");
        assert_allowed(&verifier, &token);
    }
    let before = resident_bytes(page);
    let threads = 2;
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| {
                let resource = cache_read();
                for _ in 0..n / threads {
                    let token = credential::sign(&keys, &api_key_claims(now)).expect("sign");
                    let decision = verifier.check(&token, Action::CacheRead, &resource, None);
                    assert!(decision.allowed(), "{:?}", decision.outcome);
                }
            });
        }
    });
    let after = resident_bytes(page);
    let (held, budget) = verifier.cache_weight();
    let misses = verifier.stats().snapshot().cache_misses;
    println!(
        "entries={n} rss_before={before} rss_after={after} held={held} budget={budget} misses={misses}"
    );
}

pub(crate) fn figure_cache_memory(report: &mut Report, scale: &Scale) {
    let field = run_child(CACHE_CHILD_ENV, scale.cache_credentials);
    let (n, before, after, held, budget, misses) = (
        field("entries"),
        field("rss_before"),
        field("rss_after"),
        field("held"),
        field("budget"),
        field("misses"),
    );
    assert!(
        misses >= n,
        "every credential was new: {misses} misses for {n}"
    );
    let growth = after.saturating_sub(before);
    let mib = |b: u64| format!("{:.1} MiB", b as f64 / 1048576.0);
    let rows = [Row::new(
        "RSS growth vs the cache budget",
        mib(budget),
        mib(growth),
        growth as f64 / budget as f64,
    )
    .goal("<= 1.10x", |r| r <= 1.10)];
    report.figure(
        "9",
        &format!(
            "resident memory after {n} distinct credentials checked (cache budget {}, empty view, child process)",
            mib(budget)
        ),
        ("budget", "RSS growth"),
        &rows,
    );
    report.note(&format!(
        "RSS {} -> {}; the cache's own weighing holds {} of its {} budget; the goal allows 10% \
         for the allocator's free lists and the cache's tables, which the weighing does not count",
        mib(before),
        mib(after),
        mib(held),
        mib(budget)
    ));
}
