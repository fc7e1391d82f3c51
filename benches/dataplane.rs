//! Data-plane figures, each against a baseline measured in the same run (the machine is noisy,
//! so what matters is the ratio):
//!
//! 1. cached `Verifier::check` vs a `HashMap<String, _>` lookup keyed by the same token;
//! 2. uncached check (a never-seen token per call) vs a bare Ed25519 `verify_strict` of the same
//!    token (signing input and signature decoded beforehand, key pre-parsed);
//! 3. check latency with 1 000 vs 1 000 000 revoked ids of the token's account in the view;
//! 4. resident-set growth per revoked id at 1 000 000 ids (in a child process: a clean heap);
//! 5. Authorize throughput and latency vs `grpc.health.v1.Health/Check` on the same server;
//! 6. GenerateDisposableToken throughput and latency vs Health/Check.
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

/// Set in the child process that measures memory; its value is the number of revocations.
const MEMORY_CHILD_ENV: &str = "AUTHCELL_BENCH_MEMORY_CHILD";
/// The account every token and revocation belongs to.
const ACCOUNT: &str = "bench";
/// A comma-separated subset of figures to run (e.g. `1,3`); all when unset.
const FIGURES_ENV: &str = "AUTHCELL_BENCH_FIGURES";

/// How much work each figure does.
struct Scale {
    /// Calls per timed batch of the cached micro benchmarks.
    cached_batch: usize,
    /// Timed batches (rounds) of each micro benchmark; one more untimed round warms up.
    cached_rounds: usize,
    uncached_batch: usize,
    uncached_rounds: usize,
    revocations_small: usize,
    revocations_large: usize,
    memory_entries: usize,
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
            channels: 2,
            in_flight: 4,
            load_segment: Duration::from_millis(100),
            load_rounds: 1,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// [7] The metrics layer's cost per RPC

/// A service that answers at once: what the layer wraps in this figure.
#[derive(Clone)]
struct Immediate;

impl tower_service::Service<http::Request<()>> for Immediate {
    type Response = http::Response<()>;
    type Error = std::convert::Infallible;
    type Future = std::future::Ready<Result<http::Response<()>, std::convert::Infallible>>;

    fn poll_ready(
        &mut self,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: http::Request<()>) -> Self::Future {
        std::future::ready(Ok(http::Response::new(())))
    }
}

fn figure_metrics_layer(report: &mut Report, scale: &Scale) {
    use tower_layer::Layer;
    use tower_service::Service;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let ring = KeyRing::ephemeral().expect("ring");
    let options = authcell::node::NodeOptions {
        cell: "bench".into(),
        endpoint: "localhost:0".into(),
        vend_rate_per_second: 0,
        vend_burst: 0,
        ..Default::default()
    };
    let node = authcell::node::Node::embedded(ring, Arc::new(SystemClock), &options);
    let metrics = node.metrics().clone();
    let mut bare = Immediate;
    let mut counted = authcell::metrics::MetricsLayer(metrics).layer(Immediate);
    let batch = scale.cached_batch;
    let request = || {
        http::Request::builder()
            .uri("/authcell.v1.Verifier/Authorize")
            .body(())
            .expect("request")
    };
    let mut bare_ns = Vec::new();
    let mut counted_ns = Vec::new();
    for round in 0..scale.cached_rounds {
        let mut time = |counted_run: bool| {
            let started = Instant::now();
            runtime.block_on(async {
                for _ in 0..batch {
                    let response = if counted_run {
                        counted.call(black_box(request())).await
                    } else {
                        bare.call(black_box(request())).await
                    };
                    black_box(response.is_ok());
                }
            });
            started.elapsed().as_nanos() as f64 / batch as f64
        };
        // Alternate the order each round; the first round warms up.
        let (a, b) = if round % 2 == 0 {
            let a = time(false);
            (a, time(true))
        } else {
            let b = time(true);
            (time(false), b)
        };
        if round > 0 {
            bare_ns.push(a);
            counted_ns.push(b);
        }
    }
    let bare = median(&mut bare_ns);
    let counted = median(&mut counted_ns);
    report.figure(
        "7",
        "metrics layer per RPC: a wrapped service vs the same service unwrapped",
        ("unwrapped", "with metrics"),
        &[Row::new(
            "counting + latency histogram, per call",
            ns(bare),
            ns(counted),
            counted / bare.max(f64::EPSILON),
        )],
    );
    report.note(&format!(
        "the layer adds {} per RPC; an Authorize costs ~55 us of CPU on this machine (figure 5: 2 cores / ~34k calls/s), so about {:.2}% of it",
        ns(counted - bare),
        (counted - bare) / 55_000.0 * 100.0
    ));
}

// ---------------------------------------------------------------------------------------------
// Reporting

/// A goal on a ratio: its human form and the test.
type Goal = (String, fn(f64) -> bool);

/// One line of a figure's table.
struct Row {
    label: String,
    baseline: String,
    measured: String,
    ratio: f64,
    /// `None`: informational.
    goal: Option<Goal>,
}

impl Row {
    fn new(label: &str, baseline: String, measured: String, ratio: f64) -> Self {
        Row {
            label: label.to_owned(),
            baseline,
            measured,
            ratio,
            goal: None,
        }
    }

    fn goal(mut self, text: &str, met: fn(f64) -> bool) -> Self {
        self.goal = Some((text.to_owned(), met));
        self
    }
}

struct Report {
    judged: bool,
    /// (figure, row label, met) for the summary.
    verdicts: Vec<(String, String, bool, String)>,
}

impl Report {
    fn figure(&mut self, id: &str, title: &str, columns: (&str, &str), rows: &[Row]) {
        println!();
        println!("[{id}] {title}");
        println!(
            "  {:<44} {:>16} {:>16} {:>8}  {:<10} result",
            "", columns.0, columns.1, "ratio", "goal"
        );
        for row in rows {
            let (goal, result) = match &row.goal {
                None => ("-".to_owned(), "info".to_owned()),
                Some((text, met)) if self.judged => {
                    let ok = met(row.ratio);
                    self.verdicts.push((
                        id.to_owned(),
                        row.label.clone(),
                        ok,
                        format!("{:.2}x vs goal {text}", row.ratio),
                    ));
                    (text.clone(), if ok { "met" } else { "MISSED" }.to_owned())
                }
                Some((text, _)) => (text.clone(), "(smoke)".to_owned()),
            };
            println!(
                "  {:<44} {:>16} {:>16} {:>7.2}x  {:<10} {result}",
                row.label, row.baseline, row.measured, row.ratio, goal
            );
        }
    }

    fn note(&self, text: &str) {
        println!("  note: {text}");
    }
}

fn ns(v: f64) -> String {
    if v >= 10_000.0 {
        format!("{:.2} us", v / 1000.0)
    } else {
        format!("{v:.1} ns")
    }
}

fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1000.0)
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    if !n.is_multiple_of(2) {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    }
}

// ---------------------------------------------------------------------------------------------
// Micro benchmark driver

/// Runs `rounds + 1` rounds; in each, every case runs one batch of `batch` calls, given the
/// global call indices `round * batch .. (round + 1) * batch` (so a case can use a fresh input
/// per call). Round 0 warms up and is not timed. Returns each case's median ns per call.
fn interleaved(
    rounds: usize,
    batch: usize,
    cases: &mut [&mut dyn FnMut(Range<usize>)],
) -> Vec<f64> {
    let mut samples = vec![Vec::with_capacity(rounds); cases.len()];
    for round in 0..=rounds {
        let range = round * batch..(round + 1) * batch;
        // Alternate which case goes first, so a slow drift favours none of them.
        let order: Vec<usize> = if round.is_multiple_of(2) {
            (0..cases.len()).collect()
        } else {
            (0..cases.len()).rev().collect()
        };
        for i in order {
            let started = Instant::now();
            (cases[i])(range.clone());
            let elapsed = started.elapsed();
            if round > 0 {
                samples[i].push(elapsed.as_secs_f64() * 1e9 / batch as f64);
            }
        }
    }
    samples.iter_mut().map(|s| median(s)).collect()
}

// ---------------------------------------------------------------------------------------------
// Tokens

/// A role-bound v2 API key, as GenerateGlobalApiKey mints it.
fn api_key_claims(now: u64) -> Claims {
    Claims {
        t: credential::TYPE_API_KEY.into(),
        jti: uuid::Uuid::now_v7().to_string(),
        sub: ACCOUNT.into(),
        role: Some("viewer".into()),
        p: None,
        ipf: Vec::new(),
        anc: Vec::new(),
        tid: None,
        cell: None,
        iat: now,
        iatm: Some(now * 1000),
        oiatm: None,
        rr: None,
        aexp: None,
        exp: None,
        nbf: None,
    }
}

/// A disposable token with one inline rule (read cache `c`) and one ancestor, as
/// GenerateDisposableToken mints it.
fn disposable_claims(now: u64, parent: &str) -> Claims {
    Claims {
        t: credential::TYPE_DISPOSABLE.into(),
        jti: uuid::Uuid::now_v7().to_string(),
        sub: ACCOUNT.into(),
        role: None,
        p: Some(vec![credential::encode_rule(&Rule::Cache {
            ops: Ops::READ,
            cache: NameSel::Name("c".into()),
            item: BytesSel::All,
        })]),
        ipf: Vec::new(),
        anc: vec![parent.to_owned()],
        tid: None,
        cell: Some("bench".into()),
        iat: now,
        iatm: Some(now * 1000),
        oiatm: Some(now * 1000),
        rr: Some("viewer".into()),
        aexp: None,
        exp: Some(now + 3600),
        nbf: None,
    }
}

/// The JWS signing input and the decoded signature: what a bare verification needs.
fn split_jws(token: &str) -> (String, Signature) {
    let (input, signature) = token.rsplit_once('.').expect("compact JWS");
    let bytes: [u8; 64] = URL_SAFE_NO_PAD
        .decode(signature)
        .expect("base64url signature")
        .try_into()
        .expect("64-byte signature");
    (input.to_owned(), Signature::from_bytes(&bytes))
}

/// A random revoked id: UUIDv4 and v7 alternately (authcell mints v7, clients may bring v4).
fn random_id(i: usize) -> String {
    if i.is_multiple_of(2) {
        uuid::Uuid::new_v4().to_string()
    } else {
        uuid::Uuid::now_v7().to_string()
    }
}

fn revoke_many(view: &View, n: usize) {
    for i in 0..n {
        view.apply(&Event::CredentialRevoked {
            account: ACCOUNT.into(),
            by: None,
            id: random_id(i),
        });
    }
}

fn cache_read() -> Resource<'static> {
    Resource {
        cache: Some("c"),
        key: Some(b"k"),
        ..Resource::default()
    }
}

/// Checks every token in `range` once (each must be allowed).
fn check_all(verifier: &Verifier, tokens: &[String], range: Range<usize>) {
    let resource = cache_read();
    for token in &tokens[range] {
        let decision = verifier.check(
            black_box(token),
            black_box(Action::CacheRead),
            black_box(&resource),
            black_box(None),
        );
        debug_assert!(decision.allowed());
        black_box(decision);
    }
}

/// Checks one token `range.len()` times.
fn check_repeatedly(verifier: &Verifier, token: &str, range: Range<usize>) {
    let resource = cache_read();
    for _ in range {
        black_box(verifier.check(
            black_box(token),
            black_box(Action::CacheRead),
            black_box(&resource),
            black_box(None),
        ));
    }
}

fn assert_allowed(verifier: &Verifier, token: &str) {
    let decision = verifier.check(token, Action::CacheRead, &cache_read(), None);
    assert!(
        decision.allowed(),
        "bench token refused: {:?}",
        decision.outcome
    );
}

// ---------------------------------------------------------------------------------------------
// Figures 1-3: the verifier in process

struct Tokens {
    /// One token of each kind, checked once already (cached).
    api_key: String,
    disposable: String,
    /// Never-seen tokens for the uncached figures: enough for every round of one verifier.
    fresh_api_keys: Vec<String>,
    fresh_disposables: Vec<String>,
}

fn mint_tokens(ring: &KeyRing, scale: &Scale) -> Tokens {
    let now = SystemClock.now();
    let parent = uuid::Uuid::now_v7().to_string();
    let n = (scale.uncached_rounds + 1) * scale.uncached_batch;
    let sign = |c: &Claims| credential::sign(ring, c).expect("sign");
    Tokens {
        api_key: sign(&api_key_claims(now)),
        disposable: sign(&disposable_claims(now, &parent)),
        fresh_api_keys: (0..n).map(|_| sign(&api_key_claims(now))).collect(),
        fresh_disposables: (0..n)
            .map(|_| sign(&disposable_claims(now, &parent)))
            .collect(),
    }
}

fn figure_cached(report: &mut Report, scale: &Scale, verifier: &Verifier, tokens: &Tokens) {
    let mut rows = Vec::new();
    for (label, token) in [
        ("API key (role viewer)", &tokens.api_key),
        ("disposable token (1 inline rule)", &tokens.disposable),
    ] {
        assert_allowed(verifier, token);
        // The baseline map holds the same token strings the verifier's cache holds.
        let mut map: HashMap<String, u64> = HashMap::new();
        map.insert(tokens.api_key.clone(), 1);
        map.insert(tokens.disposable.clone(), 2);
        let hits_before = verifier.stats().snapshot().cache_hits;
        let mut baseline = |r: Range<usize>| {
            for _ in r {
                black_box(map.get(black_box(token.as_str())));
            }
        };
        let mut measured = |r: Range<usize>| check_repeatedly(verifier, token, r);
        let m = interleaved(
            scale.cached_rounds,
            scale.cached_batch,
            &mut [&mut baseline, &mut measured],
        );
        let calls = ((scale.cached_rounds + 1) * scale.cached_batch) as u64;
        assert_eq!(
            verifier.stats().snapshot().cache_hits - hits_before,
            calls,
            "every cached check must be a cache hit"
        );
        rows.push(Row::new(label, ns(m[0]), ns(m[1]), m[1] / m[0]).goal("<= 3x", |r| r <= 3.0));
    }
    report.figure(
        "1",
        &format!(
            "cached Verifier::check vs HashMap<String, _>::get of the same token ({} token bytes)",
            tokens.api_key.len()
        ),
        ("HashMap::get", "cached check"),
        &rows,
    );
}

fn figure_uncached(
    report: &mut Report,
    scale: &Scale,
    verifier: &Verifier,
    key: &VerifyingKey,
    tokens: &Tokens,
) {
    let mut rows = Vec::new();
    for (label, fresh) in [
        ("API key (role viewer)", &tokens.fresh_api_keys),
        (
            "disposable token (1 inline rule)",
            &tokens.fresh_disposables,
        ),
    ] {
        let parsed: Vec<(String, Signature)> = fresh.iter().map(|t| split_jws(t)).collect();
        let misses_before = verifier.stats().snapshot().cache_misses;
        let mut baseline = |r: Range<usize>| {
            for (input, signature) in &parsed[r] {
                black_box(
                    key.verify_strict(black_box(input.as_bytes()), black_box(signature))
                        .is_ok(),
                );
            }
        };
        let mut measured = |r: Range<usize>| check_all(verifier, fresh, r);
        let m = interleaved(
            scale.uncached_rounds,
            scale.uncached_batch,
            &mut [&mut baseline, &mut measured],
        );
        assert_eq!(
            verifier.stats().snapshot().cache_misses - misses_before,
            fresh.len() as u64,
            "every uncached check must be a cache miss"
        );
        assert!(key
            .verify_strict(parsed[0].0.as_bytes(), &parsed[0].1)
            .is_ok());
        rows.push(Row::new(label, ns(m[0]), ns(m[1]), m[1] / m[0]).goal("<= 1.3x", |r| r <= 1.3));
    }
    report.figure(
        "2",
        "uncached Verifier::check (a never-seen token per call) vs bare Ed25519 verify_strict",
        ("verify_strict", "uncached check"),
        &rows,
    );
}

fn figure_view_size(report: &mut Report, scale: &Scale, base: &Verifier, tokens: &Tokens) {
    let small = Arc::new(View::new());
    let large = Arc::new(View::new());
    revoke_many(&small, scale.revocations_small);
    let started = Instant::now();
    revoke_many(&large, scale.revocations_large);
    let apply_time = started.elapsed();
    assert_eq!(small.revoked_len(), scale.revocations_small);
    assert_eq!(large.revoked_len(), scale.revocations_large);
    let with_view = |view: &Arc<View>| {
        Verifier::with_keys(base.keys().clone(), view.clone(), base.clock().clone())
    };
    let (v_small, v_large) = (with_view(&small), with_view(&large));
    assert_allowed(&v_small, &tokens.api_key);
    assert_allowed(&v_large, &tokens.api_key);
    let mut rows = Vec::new();

    // Cached: the verdict is reused while the view generation is unchanged.
    let mut a = |r: Range<usize>| check_repeatedly(&v_small, &tokens.api_key, r);
    let mut b = |r: Range<usize>| check_repeatedly(&v_large, &tokens.api_key, r);
    let m = interleaved(
        scale.cached_rounds,
        scale.cached_batch,
        &mut [&mut a, &mut b],
    );
    for v in [&v_small, &v_large] {
        assert_eq!(
            v.stats().snapshot().cache_misses,
            1,
            "cached checks must hit"
        );
    }
    rows.push(
        Row::new("cached check, API key", ns(m[0]), ns(m[1]), m[1] / m[0])
            .goal("<= 1.10x", |r| r <= 1.10),
    );

    // Uncached: fresh verifiers (empty caches) over the same never-seen tokens.
    let (u_small, u_large) = (with_view(&small), with_view(&large));
    let fresh = &tokens.fresh_api_keys;
    let mut a = |r: Range<usize>| check_all(&u_small, fresh, r);
    let mut b = |r: Range<usize>| check_all(&u_large, fresh, r);
    let m = interleaved(
        scale.uncached_rounds,
        scale.uncached_batch,
        &mut [&mut a, &mut b],
    );
    for v in [&u_small, &u_large] {
        let misses = v.stats().snapshot().cache_misses;
        assert_eq!(misses, fresh.len() as u64, "uncached checks must miss");
    }
    rows.push(
        Row::new("uncached check, API key", ns(m[0]), ns(m[1]), m[1] / m[0])
            .goal("<= 1.10x", |r| r <= 1.10),
    );

    // Cached signature, but the verdict recomputed on every call: an unrelated event (deleting
    // a role of an account that does not exist) bumps the generation before each check, as a
    // steady stream of revocations would. The apply is inside the timing, the same cost on both.
    let bump = Event::RoleDeleted {
        account: "nobody".into(),
        role_id: "none".into(),
    };
    let resource = cache_read();
    let resolving = |verifier: &Verifier, r: Range<usize>| {
        for _ in r {
            verifier.view().apply(&bump);
            black_box(verifier.check(
                black_box(&tokens.api_key),
                Action::CacheRead,
                black_box(&resource),
                None,
            ));
        }
    };
    let m = {
        let mut a = |r: Range<usize>| resolving(&v_small, r);
        let mut b = |r: Range<usize>| resolving(&v_large, r);
        interleaved(
            scale.cached_rounds,
            scale.cached_batch,
            &mut [&mut a, &mut b],
        )
    };
    rows.push(Row::new(
        "cached, re-resolved (1 view event per check)",
        ns(m[0]),
        ns(m[1]),
        m[1] / m[0],
    ));

    // The view lookup alone, a different id each call (the revocation ids of the fresh tokens).
    let ids: Vec<CredentialId> = fresh
        .iter()
        .map(|t| {
            let (_, payload, _) = {
                let mut parts = t.splitn(3, '.');
                (parts.next(), parts.next().expect("payload"), parts.next())
            };
            let claims: Claims =
                serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).expect("b64"))
                    .expect("json");
            CredentialId::parse(&claims.jti)
        })
        .collect();
    let lookup = |view: &View, r: Range<usize>| {
        let start = r.start;
        for i in r {
            // Cycle through the ids, so the batch size may exceed their number.
            let id = &ids[(i - start) % ids.len()];
            black_box(view.is_revoked_ids(
                black_box(ACCOUNT),
                0,
                std::slice::from_ref(id),
                None,
                0,
            ));
        }
    };
    let m = {
        let mut a = |r: Range<usize>| lookup(&small, r);
        let mut b = |r: Range<usize>| lookup(&large, r);
        interleaved(
            scale.cached_rounds,
            scale.cached_batch,
            &mut [&mut a, &mut b],
        )
    };
    rows.push(Row::new(
        "View::is_revoked_ids alone, distinct ids",
        ns(m[0]),
        ns(m[1]),
        m[1] / m[0],
    ));

    report.figure(
        "3",
        &format!(
            "check latency, {} vs {} revoked ids of the token's account in the view",
            scale.revocations_small, scale.revocations_large
        ),
        (
            &format!("{} revoked", scale.revocations_small),
            &format!("{} revoked", scale.revocations_large),
        ),
        &rows,
    );
    report.note(&format!(
        "applying {} CredentialRevoked events took {:.2} s ({:.0} ns per event)",
        scale.revocations_large,
        apply_time.as_secs_f64(),
        apply_time.as_secs_f64() * 1e9 / scale.revocations_large as f64
    ));
}

// ---------------------------------------------------------------------------------------------
// Figure 4: memory, measured in a child process

fn page_size() -> u64 {
    Command::new("getconf")
        .arg("PAGESIZE")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(4096)
}

fn resident_bytes(page: u64) -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").expect("/proc/self/statm");
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .expect("resident pages");
    pages * page
}

/// The child: applies `n` revocations to a fresh view and prints RSS before and after.
fn memory_child(n: usize) {
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
fn hash_set_floor(n: usize) -> u64 {
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

fn figure_memory(report: &mut Report, scale: &Scale) {
    let exe = std::env::current_exe().expect("current exe");
    let output = Command::new(exe)
        .env(MEMORY_CHILD_ENV, scale.memory_entries.to_string())
        .output()
        .expect("spawn memory child");
    assert!(
        output.status.success(),
        "memory child failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8(output.stdout).expect("utf-8");
    let field = |name: &str| -> u64 {
        stdout
            .split_whitespace()
            .find_map(|kv| kv.strip_prefix(&format!("{name}=")))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("memory child printed no {name}: {stdout}"))
    };
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
// Figures 5-6: the real server under load

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Call {
    Health,
    Authorize,
    Disposable,
}

#[derive(Clone)]
struct Clients {
    health: HealthClient<Channel>,
    verifier: pb::verifier_client::VerifierClient<Channel>,
    token: token::token_client::TokenClient<Channel>,
}

/// What one segment of load measured.
#[derive(Default)]
struct Load {
    calls: u64,
    errors: u64,
    elapsed: Duration,
    latencies: Vec<Duration>,
}

impl Load {
    fn absorb(&mut self, other: Load) {
        self.calls += other.calls;
        self.errors += other.errors;
        self.elapsed += other.elapsed;
        self.latencies.extend(other.latencies);
    }

    fn rate(&self) -> f64 {
        self.calls as f64 / self.elapsed.as_secs_f64()
    }

    fn percentile(&mut self, p: f64) -> Duration {
        self.latencies.sort_unstable();
        let index = ((self.latencies.len() as f64 - 1.0) * p).round() as usize;
        self.latencies[index.min(self.latencies.len() - 1)]
    }
}

async fn one_call(clients: &mut Clients, call: Call, owner: &str) -> bool {
    match call {
        Call::Health => clients
            .health
            .check(HealthCheckRequest {
                service: String::new(),
            })
            .await
            .is_ok_and(|r| r.get_ref().status == ServingStatus::Serving as i32),
        Call::Authorize => clients
            .verifier
            .authorize(pb::AuthorizeRequest {
                credential: owner.to_owned(),
                action: pb::Action::CacheRead as i32,
                cache: "c".into(),
                key: b"k".to_vec(),
                ..Default::default()
            })
            .await
            .is_ok_and(|r| r.get_ref().allowed),
        Call::Disposable => clients
            .token
            .generate_disposable_token(token::GenerateDisposableTokenRequest {
                expires: Some(token::generate_disposable_token_request::Expires {
                    valid_for_seconds: 60,
                }),
                auth_token: owner.to_owned(),
                permissions: Some(read_cache_permissions()),
                token_id: String::new(),
            })
            .await
            .is_ok_and(|r| !r.get_ref().api_key.is_empty()),
    }
}

fn read_cache_permissions() -> pm::Permissions {
    use pm::permissions_type as pt;
    pm::Permissions {
        kind: Some(pm::permissions::Kind::Explicit(pm::ExplicitPermissions {
            permissions: vec![pm::PermissionsType {
                kind: Some(pt::Kind::CachePermissions(pt::CachePermissions {
                    role: pm::CacheRole::CacheReadOnly as i32,
                    cache: Some(pt::cache_permissions::Cache::CacheSelector(
                        pt::CacheSelector {
                            kind: Some(pt::cache_selector::Kind::CacheName("c".into())),
                        },
                    )),
                    cache_item: Some(pt::cache_permissions::CacheItem::AllItems(pt::All {})),
                })),
            }],
        })),
    }
}

/// `in_flight` tasks, spread over the channels, each issuing `call` back to back for `duration`.
async fn load(
    clients: &[Clients],
    in_flight: usize,
    call: Call,
    owner: &Arc<str>,
    duration: Duration,
) -> Load {
    let started = Instant::now();
    let deadline = started + duration;
    let tasks: Vec<_> = (0..in_flight)
        .map(|i| {
            let mut clients = clients[i % clients.len()].clone();
            let owner = owner.clone();
            tokio::spawn(async move {
                let mut load = Load::default();
                loop {
                    let t0 = Instant::now();
                    if t0 >= deadline {
                        break;
                    }
                    let ok = one_call(&mut clients, call, &owner).await;
                    load.latencies.push(t0.elapsed());
                    load.calls += 1;
                    load.errors += u64::from(!ok);
                }
                load
            })
        })
        .collect();
    let mut total = Load::default();
    for task in tasks {
        total.absorb(task.await.expect("load task"));
    }
    total.elapsed = started.elapsed();
    total
}

async fn start_server() -> (
    SocketAddr,
    Arc<str>,
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<()>,
) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let options = NodeOptions {
        cell: "bench".into(),
        endpoint: addr.to_string(),
        vend_rate_per_second: 0,
        vend_burst: 0,
        ..Default::default()
    };
    let ring = KeyRing::ephemeral().expect("key ring");
    let node = node::Node::embedded(ring, Arc::new(SystemClock), &options);
    let (owner, _) = node
        .authority()
        .bootstrap(ACCOUNT, false)
        .await
        .expect("bootstrap");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let handle = tokio::spawn(async move {
        server::run(listener, &node, server::Serving::default(), async {
            let _ = stopped.await;
        })
        .await
        .expect("server");
    });
    (addr, owner.into(), stop, handle)
}

/// What signing one disposable token costs: `credential::sign` (jsonwebtoken) vs a bare Ed25519
/// signature over the same signing input with a pre-parsed key. Explains figure 6.
fn sign_cost(scale: &Scale) -> Row {
    use ed25519_dalek::pkcs8::DecodePrivateKey;
    use ed25519_dalek::Signer;
    let pem = authcell::keyring::generate_pem().expect("pem");
    let ring = KeyRing::from_pem("bench", &pem).expect("ring");
    let key = ed25519_dalek::SigningKey::from_pkcs8_pem(&pem).expect("signing key");
    let now = SystemClock.now();
    let claims = disposable_claims(now, &uuid::Uuid::now_v7().to_string());
    let token = credential::sign(&ring, &claims).expect("sign");
    let (input, _) = token.rsplit_once('.').expect("jws");
    let mut baseline = |r: Range<usize>| {
        for _ in r {
            black_box(key.sign(black_box(input.as_bytes())));
        }
    };
    let mut measured = |r: Range<usize>| {
        for _ in r {
            black_box(credential::sign(&ring, black_box(&claims)).expect("sign"));
        }
    };
    let batch = (scale.uncached_batch / 2).max(1);
    let m = interleaved(
        scale.uncached_rounds,
        batch,
        &mut [&mut baseline, &mut measured],
    );
    Row::new(
        "sign 1 token: ed25519 sign vs credential::sign",
        ns(m[0]),
        ns(m[1]),
        m[1] / m[0],
    )
}

fn figures_load(report: &mut Report, scale: &Scale, sign_row: Option<Row>) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let workers = runtime.metrics().num_workers();
    let (mut health, mut authorize, mut disposable, per_round) = runtime.block_on(async {
        let (addr, owner, stop, handle) = start_server().await;
        let mut clients = Vec::new();
        for _ in 0..scale.channels {
            // One HTTP/2 connection per channel.
            let channel = Channel::from_shared(format!("http://{addr}"))
                .expect("url")
                .connect()
                .await
                .expect("connect");
            clients.push(Clients {
                health: HealthClient::new(channel.clone()),
                verifier: pb::verifier_client::VerifierClient::new(channel.clone()),
                token: token::token_client::TokenClient::new(channel),
            });
        }
        // Every call kind must work before it is timed; the first Authorize caches the key.
        for call in [Call::Health, Call::Authorize, Call::Disposable] {
            assert!(
                one_call(&mut clients[0].clone(), call, &owner).await,
                "{call:?} failed before the benchmark"
            );
        }
        let warm_up = scale.load_segment / 2;
        for call in [Call::Health, Call::Authorize, Call::Disposable] {
            load(&clients, scale.in_flight, call, &owner, warm_up).await;
        }
        let (mut h, mut a, mut d) = (Load::default(), Load::default(), Load::default());
        let mut per_round = Vec::new();
        for round in 0..scale.load_rounds {
            let order = if round.is_multiple_of(2) {
                [Call::Health, Call::Authorize, Call::Disposable]
            } else {
                [Call::Disposable, Call::Authorize, Call::Health]
            };
            let mut rates = [0.0; 3];
            for call in order {
                let l = load(&clients, scale.in_flight, call, &owner, scale.load_segment).await;
                let (slot, total) = match call {
                    Call::Health => (0, &mut h),
                    Call::Authorize => (1, &mut a),
                    Call::Disposable => (2, &mut d),
                };
                rates[slot] = l.rate();
                total.absorb(l);
            }
            per_round.push(rates);
        }
        drop(clients);
        let _ = stop.send(());
        let _ = tokio::time::timeout(Duration::from_secs(5), handle).await;
        (h, a, d, per_round)
    });
    for (name, l) in [
        ("Health/Check", &health),
        ("Authorize", &authorize),
        ("GenerateDisposableToken", &disposable),
    ] {
        assert_eq!(
            l.errors, 0,
            "{name}: {} of {} calls failed",
            l.errors, l.calls
        );
        assert!(l.calls > 0, "{name}: no call completed");
    }
    let setup = format!(
        "{} HTTP/2 connections, {} calls in flight, {} x {:.1} s interleaved segments each, \
         {workers} runtime workers shared by server and load generator",
        scale.channels,
        scale.in_flight,
        scale.load_rounds,
        scale.load_segment.as_secs_f64()
    );
    let mut sign_row = sign_row;
    let hr = health.rate();
    let (h50, h99) = (health.percentile(0.5), health.percentile(0.99));
    for (id, name, column, measured, slot) in [
        ("5", "Authorize", "Authorize", &mut authorize, 1),
        (
            "6",
            "GenerateDisposableToken",
            "Disposable",
            &mut disposable,
            2,
        ),
    ] {
        let rate = measured.rate();
        let (p50, p99) = (measured.percentile(0.5), measured.percentile(0.99));
        let mut throughput = Row::new(
            "throughput",
            format!("{hr:.0}/s"),
            format!("{rate:.0}/s"),
            rate / hr,
        );
        if id == "5" {
            throughput = throughput.goal(">= 0.80x", |r| r >= 0.8);
        }
        let mut rows = vec![
            throughput,
            Row::new(
                "p50 latency",
                ms(h50),
                ms(p50),
                p50.as_secs_f64() / h50.as_secs_f64(),
            ),
            Row::new(
                "p99 latency",
                ms(h99),
                ms(p99),
                p99.as_secs_f64() / h99.as_secs_f64(),
            ),
        ];
        if id == "6" {
            rows.extend(sign_row.take());
        }
        report.figure(
            id,
            &format!("{name} vs grpc.health.v1.Health/Check on the same server"),
            ("Health/Check", column),
            &rows,
        );
        let ratios: Vec<f64> = per_round.iter().map(|r| r[slot] / r[0]).collect();
        let lo = ratios.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = ratios.iter().copied().fold(0.0, f64::max);
        report.note(&format!(
            "{setup}; throughput ratio per round {lo:.2}x..{hi:.2}x; {} calls measured",
            measured.calls
        ));
    }
}

// ---------------------------------------------------------------------------------------------

fn main() {
    if let Ok(n) = std::env::var(MEMORY_CHILD_ENV) {
        memory_child(n.parse().expect("revocation count"));
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

    if wants(&["1", "2", "3"]) {
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
