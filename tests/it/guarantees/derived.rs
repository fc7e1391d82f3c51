//! Nobody holds more than their maker: refreshes never outlive the maker, derived
//! credentials follow their root role at every check.

use super::*;

// --- 3. A refresh never outlives the maker -------------------------------------------------------

#[tokio::test]
async fn refresh_fails_once_the_maker_expired_and_never_extends_past_it() {
    let server = TestServer::start().await;
    let api = Api::of_server(&server).await;
    let maker_expiry = server.clock_now() + 600;
    let (maker, _) = api
        .create_key(&server.owner_key, "operator", Some(maker_expiry))
        .await
        .expect("maker");
    let made = api
        .sdk_key(&maker, vec![read_cache("c")], None)
        .await
        .expect("sdk key");
    assert_eq!(
        made.valid_until, maker_expiry,
        "capped at the maker's expiry"
    );
    // Before the maker expires, a refresh works and stays capped.
    server.clock.advance(300);
    let refreshed = api
        .refresh(&made.api_key, &made.refresh_token)
        .await
        .expect("refresh while the maker lives");
    assert!(
        refreshed.valid_until <= maker_expiry,
        "{} > {maker_expiry}",
        refreshed.valid_until
    );
    assert_eq!(api.reason(&refreshed.api_key, READ, "c").await, ALLOWED);
    // After it, the refresh is an authentication error, again and again.
    server.clock.advance(400);
    for _ in 0..2 {
        let status = api
            .refresh(&refreshed.api_key, &refreshed.refresh_token)
            .await
            .expect_err("maker expired");
        assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
    }
    assert_ne!(api.reason(&refreshed.api_key, READ, "c").await, ALLOWED);
}

#[tokio::test]
async fn refresh_fails_once_the_maker_was_revoked() {
    let server = TestServer::start().await;
    let api = Api::of_server(&server).await;
    refresh_after_the_maker_was_revoked(&api, &server.owner_key).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresh_fails_once_the_maker_was_revoked_or_expired_over_redis() {
    let cells = Cells::start(false).await;
    let (a, b) = (Api::of(&cells.a).await, Api::of(&cells.b).await);
    refresh_after_the_maker_was_revoked(&a, &cells.owner).await;
    // A maker that expires in two seconds (real time: Redis nodes use the primary's clock).
    let expiry = authcell::clock::wall_ms() / 1000 + 2;
    let (maker, _) = a
        .create_key(&cells.owner, "operator", Some(expiry))
        .await
        .expect("maker");
    let made = a
        .sdk_key(&maker, vec![read_cache("c")], None)
        .await
        .expect("sdk key");
    assert_eq!(made.valid_until, expiry);
    tokio::time::sleep(Duration::from_millis(3100)).await;
    let status = b
        .refresh(&made.api_key, &made.refresh_token)
        .await
        .expect_err("maker expired, refreshed in the other cell");
    assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
}

async fn refresh_after_the_maker_was_revoked(api: &Api, owner: &str) {
    let (maker, maker_id) = api
        .create_key(owner, "operator", None)
        .await
        .expect("maker");
    let made = api
        .sdk_key(&maker, vec![read_cache("c")], Some(60))
        .await
        .expect("sdk key");
    api.revoke_key(owner, &maker_id)
        .await
        .expect("revoke maker");
    let status = api
        .refresh(&made.api_key, &made.refresh_token)
        .await
        .expect_err("maker revoked");
    assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
}

// --- 4. Derived credentials follow their root role at every check ---------------------------

async fn narrowing_a_role_narrows_everything_derived(a: &Api, b: &Api, owner: &str) {
    let role_id = a
        .create_role(
            owner,
            "writers",
            role_rules(
                vec![
                    cache_rule(
                        &[
                            pr::CacheApiPermissions::CacheRead,
                            pr::CacheApiPermissions::CacheWrite,
                        ],
                        None,
                    ),
                    auth_rule(&[pr::AuthManagementPermissions::AuthWrite]),
                ],
                vec![],
            ),
        )
        .await;
    let (writer, _) = a
        .create_key(owner, &role_id, None)
        .await
        .expect("writer key");
    let sdk = a
        .sdk_key(&writer, vec![cache_write_all()], None)
        .await
        .expect("sdk key");
    let token = a
        .mint(&writer, vec![cache_write_all()], "")
        .await
        .expect("token");
    let grandchild = a
        .mint(&sdk.api_key, vec![cache_write_all()], "")
        .await
        .expect("grandchild");
    for api in [a, b] {
        for credential in [&writer, &sdk.api_key, &token, &grandchild] {
            // Cell b may still be applying the role.
            wait_for(
                "precondition: allowed",
                Duration::from_secs(5),
                async || api.reason(credential, WRITE, "other").await == ALLOWED,
            )
            .await;
        }
    }
    // Narrowed to reading one cache.
    a.update_role(
        owner,
        &role_id,
        role_rules(
            vec![cache_rule(&[pr::CacheApiPermissions::CacheRead], Some("c"))],
            vec![],
        ),
    )
    .await;
    let deadline = Instant::now() + Duration::from_secs(5);
    for (cell, api) in [("a", a), ("b", b)] {
        for credential in [&writer, &sdk.api_key, &token, &grandchild] {
            loop {
                let reason = api.reason(credential, WRITE, "other").await;
                if reason == pb::Reason::Permission {
                    break;
                }
                assert!(Instant::now() < deadline, "cell {cell}: still {reason:?}");
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            assert_eq!(
                api.reason(credential, WRITE, "c").await,
                pb::Reason::Permission
            );
            assert_eq!(
                api.reason(credential, READ, "c").await,
                ALLOWED,
                "cell {cell}"
            );
            assert_eq!(
                api.reason(credential, READ, "other").await,
                pb::Reason::Permission
            );
        }
    }
    // Nothing derived can mint, or refresh into, more than the narrowed role.
    let status = a
        .mint(&sdk.api_key, vec![cache_write_all()], "")
        .await
        .expect_err("mint beyond the root role");
    assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
    let refreshed = a
        .refresh(&sdk.api_key, &sdk.refresh_token)
        .await
        .expect("refresh");
    assert_eq!(
        a.reason(&refreshed.api_key, WRITE, "other").await,
        pb::Reason::Permission
    );
    assert_eq!(a.reason(&refreshed.api_key, READ, "c").await, ALLOWED);
    // An ip_filter added to the role applies to everything derived, too.
    a.update_role(
        owner,
        &role_id,
        role_rules(
            vec![cache_rule(&[pr::CacheApiPermissions::CacheRead], Some("c"))],
            vec![only_from("10.0.0.0/8")],
        ),
    )
    .await;
    // (The grandchild died with the refresh: its parent was the key the refresh replaced.)
    assert_eq!(a.reason(&grandchild, READ, "c").await, pb::Reason::Revoked);
    let deadline = Instant::now() + Duration::from_secs(5);
    for api in [a, b] {
        for credential in [&token, &refreshed.api_key] {
            loop {
                let reason = api.reason(credential, READ, "c").await;
                if reason == pb::Reason::IpNotAllowed {
                    break;
                }
                assert!(Instant::now() < deadline, "still {reason:?}");
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
}

#[tokio::test]
async fn narrowing_a_role_narrows_everything_derived_embedded() {
    let server = TestServer::start().await;
    let api = Api::of_server(&server).await;
    let again = Api::of_server(&server).await;
    narrowing_a_role_narrows_everything_derived(&api, &again, &server.owner_key).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn narrowing_a_role_narrows_everything_derived_in_both_cells() {
    let cells = Cells::start(false).await;
    let (a, b) = (Api::of(&cells.a).await, Api::of(&cells.b).await);
    narrowing_a_role_narrows_everything_derived(&a, &b, &cells.owner).await;
}
