//! Revoked means refused: issued-before cuts cover the current second, RevokeToken reaches
//! only what the caller could have made, token-id revocations end.

use super::*;

// --- 1. RevokeIssuedBefore(now) covers the current second and millisecond --------------------

#[tokio::test]
async fn issued_before_now_refuses_a_key_minted_in_the_same_second_embedded() {
    let server = TestServer::start().await;
    let api = Api::of_server(&server).await;
    let (key, _) = api
        .create_key(&server.owner_key, "viewer", None)
        .await
        .expect("key");
    assert_eq!(api.reason(&key, READ, "c").await, ALLOWED, "precondition");
    // The manual clock does not move: the cut and the key share their second and millisecond.
    let cut = api
        .revoke_issued_before(&server.owner_key)
        .await
        .expect("cut");
    let iatm = claims(&key)["iatm"].as_u64().expect("iatm");
    assert!(
        cut.issued_before_epoch_millis > iatm,
        "{cut:?} covers {iatm}"
    );
    assert_eq!(
        cut.issued_before_epoch_seconds,
        cut.issued_before_epoch_millis / 1000
    );
    assert_eq!(api.reason(&key, READ, "c").await, pb::Reason::Revoked);
    assert_eq!(
        api.reason(&server.owner_key, READ, "c").await,
        pb::Reason::Revoked,
        "the owner key that made the cut existed too"
    );
    // A credential minted after the call works, in the same millisecond as the cut.
    let (fresh_owner, _) = server
        .authority
        .bootstrap(ACCOUNT, true)
        .await
        .expect("new owner key");
    assert_eq!(api.reason(&fresh_owner, READ, "c").await, ALLOWED);
    let (after, _) = api
        .create_key(&fresh_owner, "viewer", None)
        .await
        .expect("key after");
    assert_eq!(api.reason(&after, READ, "c").await, ALLOWED);
    // And a second cut, still in the same millisecond, takes them too.
    let again = api
        .revoke_issued_before(&fresh_owner)
        .await
        .expect("cut again");
    assert!(again.issued_before_epoch_millis > cut.issued_before_epoch_millis);
    assert_eq!(api.reason(&after, READ, "c").await, pb::Reason::Revoked);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issued_before_now_is_exact_in_both_cells() {
    let cells = Cells::start(false).await;
    let (a, b) = (Api::of(&cells.a).await, Api::of(&cells.b).await);
    for round in 0..5 {
        let (owner, _) = cells
            .a
            .authority
            .bootstrap("acme", true)
            .await
            .expect("owner");
        let (key, _) = a.create_key(&owner, "viewer", None).await.expect("key");
        let (token_key, _) = b
            .create_key(&owner, "operator", None)
            .await
            .expect("key on b");
        let token = b
            .mint(&token_key, vec![read_cache("c")], "")
            .await
            .expect("token");
        assert_eq!(
            b.reason(&key, READ, "c").await,
            ALLOWED,
            "round {round}: precondition"
        );
        let cut = a.revoke_issued_before(&owner).await.expect("cut");
        for (cell, node) in [("a", &cells.a), ("b", &cells.b)] {
            for credential in [&key, &token, &owner] {
                let took = until_revoked(node, credential, Duration::from_secs(5)).await;
                assert!(took < Duration::from_secs(5), "round {round}, cell {cell}");
            }
        }
        let (after_owner, _) = cells
            .a
            .authority
            .bootstrap("acme", true)
            .await
            .expect("owner");
        let (after, _) = b
            .create_key(&after_owner, "viewer", None)
            .await
            .expect("key after");
        assert!(claims(&after)["iatm"].as_u64().expect("iatm") >= cut.issued_before_epoch_millis);
        assert_eq!(a.reason(&after, READ, "c").await, ALLOWED, "round {round}");
        assert_eq!(b.reason(&after, READ, "c").await, ALLOWED, "round {round}");
    }
}

// --- 2. RevokeToken never reaches what the caller could not have made --------------------------

#[tokio::test]
async fn revoke_token_cannot_kill_a_stronger_key_or_what_it_made() {
    let server = TestServer::start().await;
    let api = Api::of_server(&server).await;
    revoke_token_rules(&api, server.owner_key.clone()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoke_token_cannot_kill_a_stronger_key_or_what_it_made_over_redis() {
    let cells = Cells::start(false).await;
    let api = Api::of(&cells.a).await;
    revoke_token_rules(&api, cells.owner.clone()).await;
}

async fn revoke_token_rules(api: &Api, owner: String) {
    let owner_id = api.key_id_of(&owner).await;
    let (operator, _) = api
        .create_key(&owner, "operator", None)
        .await
        .expect("operator");
    let owner_token = api
        .mint(&owner, vec![read_cache("c")], "shared")
        .await
        .expect("token");
    let owner_token_id = api.key_id_of(&owner_token).await;
    let operator_token = api
        .mint(&operator, vec![read_cache("c")], "shared")
        .await
        .expect("token");
    let operator_token_id = api.key_id_of(&operator_token).await;
    for credential in [&owner, &owner_token, &operator_token] {
        assert_eq!(
            api.reason(credential, READ, "c").await,
            ALLOWED,
            "precondition"
        );
    }
    use pb::revoke_token_request::Token;

    // The owner key itself: the same error RevokeGlobalApiKey gives the operator.
    let by_token = api
        .revoke_token(&operator, Token::Id(owner_id.clone()), 0)
        .await
        .expect_err("an operator cannot revoke the owner key");
    let by_key = api
        .revoke_key(&operator, &owner_id)
        .await
        .expect_err("nor here");
    assert_eq!(by_token.code(), Code::PermissionDenied, "{by_token:?}");
    assert_eq!(by_token.code(), by_key.code());
    assert_eq!(by_token.message(), by_key.message());
    assert_eq!(api.reason(&owner, READ, "c").await, ALLOWED);
    let listed = api.describe(&owner, &owner_id).await;
    assert_eq!(listed.status, pb::KeyStatus::Active as i32);

    // A token the owner minted: the operator's revocation does not reach it; its own does.
    api.revoke_token(&operator, Token::Id(owner_token_id.clone()), 0)
        .await
        .expect("accepted, scoped to what the operator made");
    assert_eq!(api.reason(&owner_token, READ, "c").await, ALLOWED);
    api.revoke_token(&operator, Token::Id(operator_token_id), 0)
        .await
        .expect("its own token");
    assert_eq!(
        api.reason(&operator_token, READ, "c").await,
        pb::Reason::Revoked
    );

    // The same for token ids: the operator's revocation of "shared" spares the owner's token.
    let operator_token2 = api
        .mint(&operator, vec![read_cache("c")], "t2")
        .await
        .expect("token");
    let owner_token2 = api
        .mint(&owner, vec![read_cache("c")], "t2")
        .await
        .expect("token");
    api.revoke_token(&operator, Token::TokenId("t2".into()), 0)
        .await
        .expect("token id");
    assert_eq!(
        api.reason(&operator_token2, READ, "c").await,
        pb::Reason::Revoked
    );
    assert_eq!(api.reason(&owner_token2, READ, "c").await, ALLOWED);
    // The owner's reaches every token of the account.
    api.revoke_token(&owner, Token::TokenId("t2".into()), 0)
        .await
        .expect("owner token id");
    assert_eq!(
        api.reason(&owner_token2, READ, "c").await,
        pb::Reason::Revoked
    );
    api.revoke_token(&owner, Token::Id(owner_token_id), 0)
        .await
        .expect("owner revokes its token");
    assert_eq!(
        api.reason(&owner_token, READ, "c").await,
        pb::Reason::Revoked
    );

    // A role-bound key is not RevokeToken's to revoke, even for the owner.
    let (viewer, viewer_id) = api
        .create_key(&owner, "viewer", None)
        .await
        .expect("viewer");
    let status = api
        .revoke_token(&owner, Token::Id(viewer_id.clone()), 0)
        .await
        .expect_err("role key");
    assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
    assert!(
        status.message().contains("RevokeGlobalApiKey"),
        "{status:?}"
    );
    assert_eq!(api.reason(&viewer, READ, "c").await, ALLOWED);
}

#[tokio::test]
async fn revoke_token_of_an_sdk_key_needs_its_powers_and_marks_its_record() {
    let server = TestServer::start().await;
    let api = Api::of_server(&server).await;
    let owner = server.owner_key.clone();
    // The revoker may manage keys and read cache `c`, nothing more.
    let (revoker, _) = api.limited_key(&owner, "revokers").await;
    // An SDK key that writes every cache: more than the revoker could have made.
    let strong = api
        .sdk_key(&owner, vec![cache_write_all()], None)
        .await
        .expect("sdk key");
    let strong_id = api.key_id_of(&strong.api_key).await;
    use pb::revoke_token_request::Token;
    let status = api
        .revoke_token(&revoker, Token::Id(strong_id.clone()), 0)
        .await
        .expect_err("stronger than the revoker");
    assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
    assert_eq!(api.reason(&strong.api_key, READ, "c").await, ALLOWED);

    let weak = api
        .sdk_key(&owner, vec![read_cache("c")], None)
        .await
        .expect("sdk key");
    let weak_id = api.key_id_of(&weak.api_key).await;
    api.revoke_token(&revoker, Token::Id(weak_id.clone()), 0)
        .await
        .expect("within the revoker's powers");
    assert_eq!(
        api.reason(&weak.api_key, READ, "c").await,
        pb::Reason::Revoked
    );
    let info = api.describe(&owner, &weak_id).await;
    assert_eq!(info.status, pb::KeyStatus::Revoked as i32, "{info:?}");
    assert!(info.revoked_at_epoch_seconds.is_some());
}

// --- 5. Token-id revocations end ------------------------------------------------------------------

#[tokio::test]
async fn a_token_id_revocation_holds_until_its_end_then_the_id_is_free() {
    let server = TestServer::start().await;
    let api = Api::of_server(&server).await;
    use pb::revoke_token_request::Token;
    let end = server.clock_now() + 120;
    let before = api
        .mint(&server.owner_key, vec![read_cache("c")], "x")
        .await
        .expect("token");
    api.revoke_token(&server.owner_key, Token::TokenId("x".into()), end)
        .await
        .expect("revoke token id");
    assert_eq!(api.reason(&before, READ, "c").await, pb::Reason::Revoked);
    let during = api
        .mint(&server.owner_key, vec![read_cache("c")], "x")
        .await
        .expect("token");
    assert_eq!(api.reason(&during, READ, "c").await, pb::Reason::Revoked);
    server.clock.advance(121);
    let after = api
        .mint(&server.owner_key, vec![read_cache("c")], "x")
        .await
        .expect("token");
    assert_eq!(
        api.reason(&after, READ, "c").await,
        ALLOWED,
        "the id can be used again"
    );
    // An end in the past is refused; 0 means the longest token lifetime from now.
    let status = api
        .revoke_token(
            &server.owner_key,
            Token::TokenId("y".into()),
            server.clock_now(),
        )
        .await
        .expect_err("end in the past");
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert!(status.message().contains("expires_at_epoch_seconds"));
    api.revoke_token(&server.owner_key, Token::TokenId("y".into()), 0)
        .await
        .expect("default end");
    let y = api
        .mint(&server.owner_key, vec![read_cache("c")], "y")
        .await
        .expect("token");
    server
        .clock
        .advance(u64::from(authcell::authority::vending::MAX_DISPOSABLE_SECS) - 1);
    let y2 = api
        .mint(&server.owner_key, vec![read_cache("c")], "y")
        .await
        .expect("token");
    assert_eq!(
        api.reason(&y2, READ, "c").await,
        pb::Reason::Revoked,
        "held 25 hours"
    );
    server.clock.advance(2);
    let y3 = api
        .mint(&server.owner_key, vec![read_cache("c")], "y")
        .await
        .expect("token");
    assert_eq!(api.reason(&y3, READ, "c").await, ALLOWED);
    drop(y);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_id_revocations_end_in_every_cell_and_leave_redis() {
    let cells = Cells::start(false).await;
    let (a, b) = (Api::of(&cells.a).await, Api::of(&cells.b).await);
    use pb::revoke_token_request::Token;
    let now = authcell::clock::wall_ms() / 1000;
    let token = b
        .mint(&cells.owner, vec![read_cache("c")], "x")
        .await
        .expect("token");
    a.revoke_token(&cells.owner, Token::TokenId("x".into()), now + 2)
        .await
        .expect("revoke");
    until_revoked(&cells.b, &token, Duration::from_secs(5)).await;
    let revoked = |server: &crate::support::redis::RedisServer| {
        server.command(&["HKEYS", "authcell:revoked"])
    };
    assert!(
        revoked(&cells.topology.primary).contains("x"),
        "precondition"
    );
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let fresh = b
        .mint(&cells.owner, vec![read_cache("c")], "x")
        .await
        .expect("token");
    assert_eq!(b.reason(&fresh, READ, "c").await, ALLOWED);
    assert_eq!(a.reason(&fresh, READ, "c").await, ALLOWED);
    // Redis drops it too (the next token-id revocation sweeps ended ones first), so a node
    // that loads later never sees it.
    a.revoke_token(&cells.owner, Token::TokenId("other".into()), 0)
        .await
        .expect("another");
    let left = revoked(&cells.topology.primary);
    assert!(!left.contains("\u{0}x\u{0}"), "{left:?}");
    let mut cells = cells;
    cells.restart_b().await;
    let b = Api::of(&cells.b).await;
    assert_eq!(b.reason(&fresh, READ, "c").await, ALLOWED);
}
