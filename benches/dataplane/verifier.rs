//! Figures 1-3: the verifier in process (cached, uncached, a large view).

use super::*;

// ---------------------------------------------------------------------------------------------
// Figures 1-3: the verifier in process

pub(crate) struct Tokens {
    /// One token of each kind, checked once already (cached).
    pub(crate) api_key: String,
    pub(crate) disposable: String,
    /// Never-seen tokens for the uncached figures: enough for every round of one verifier.
    pub(crate) fresh_api_keys: Vec<String>,
    pub(crate) fresh_disposables: Vec<String>,
}

pub(crate) fn mint_tokens(ring: &KeyRing, scale: &Scale) -> Tokens {
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

pub(crate) fn figure_cached(
    report: &mut Report,
    scale: &Scale,
    verifier: &Verifier,
    tokens: &Tokens,
) {
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
        rows.push(Row::new(label, ns(m[0]), ns(m[1]), m[1] / m[0]).goal("<= 1.5x", |r| r <= 1.5));
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

pub(crate) fn figure_uncached(
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

pub(crate) fn figure_view_size(
    report: &mut Report,
    scale: &Scale,
    base: &Verifier,
    tokens: &Tokens,
) {
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

    // Cached signature, but the verdict recomputed on every call: an event in the token's own
    // account (deleting a role that does not exist) bumps its generation before each check, as
    // a steady stream of revocations in the account would. The apply is inside the timing, the
    // same cost on both.
    let bump = Event::RoleDeleted {
        account: ACCOUNT.into(),
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
