//! Tokens to check, and the helpers the verifier figures share.

use super::*;

// ---------------------------------------------------------------------------------------------
// Tokens

/// A role-bound v2 API key, as GenerateGlobalApiKey mints it.
pub(crate) fn api_key_claims(now: u64) -> Claims {
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
pub(crate) fn disposable_claims(now: u64, parent: &str) -> Claims {
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
pub(crate) fn split_jws(token: &str) -> (String, Signature) {
    let (input, signature) = token.rsplit_once('.').expect("compact JWS");
    let bytes: [u8; 64] = URL_SAFE_NO_PAD
        .decode(signature)
        .expect("base64url signature")
        .try_into()
        .expect("64-byte signature");
    (input.to_owned(), Signature::from_bytes(&bytes))
}

/// A random revoked id: UUIDv4 and v7 alternately (authcell mints v7, clients may bring v4).
pub(crate) fn random_id(i: usize) -> String {
    if i.is_multiple_of(2) {
        uuid::Uuid::new_v4().to_string()
    } else {
        uuid::Uuid::now_v7().to_string()
    }
}

pub(crate) fn revoke_many(view: &View, n: usize) {
    for i in 0..n {
        view.apply(&Event::CredentialRevoked {
            account: ACCOUNT.into(),
            by: None,
            id: random_id(i),
        });
    }
}

pub(crate) fn cache_read() -> Resource<'static> {
    Resource {
        cache: Some("c"),
        key: Some(b"k"),
        ..Resource::default()
    }
}

/// Checks every token in `range` once (each must be allowed).
pub(crate) fn check_all(verifier: &Verifier, tokens: &[String], range: Range<usize>) {
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
pub(crate) fn check_repeatedly(verifier: &Verifier, token: &str, range: Range<usize>) {
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

pub(crate) fn assert_allowed(verifier: &Verifier, token: &str) {
    let decision = verifier.check(token, Action::CacheRead, &cache_read(), None);
    assert!(
        decision.allowed(),
        "bench token refused: {:?}",
        decision.outcome
    );
}
