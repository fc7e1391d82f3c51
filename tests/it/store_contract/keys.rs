//! The store contract for accounts, keys and revocations.

use super::*;

contract!(
    ensure_account_is_true_only_the_first_time,
    a_key_round_trips_every_field,
    inserting_an_existing_key_id_is_already_exists,
    a_key_is_invisible_to_other_accounts,
    list_keys_pages_in_key_id_order,
    count_live_keys_ignores_revoked_and_expired_keys,
    revoke_key_keeps_the_first_revocation_time_and_reaches_the_view,
    revoking_an_unknown_key_is_not_found,
    revocations_without_a_key_record_reach_the_view,
    issued_before_reaches_the_view_and_never_lowers_the_watermark,
    issued_before_now_covers_the_current_millisecond,
    token_id_revocations_end_and_the_id_can_be_used_again,
    token_id_revocations_are_capped_per_account,
    scoped_revocations_apply_only_below_their_revoker,
    a_request_id_stores_one_key_and_replays_its_receipt,
    a_rotation_schedules_the_old_keys_revocation_and_revoke_due_carries_it_out_once,
    a_rotation_with_no_overlap_revokes_the_old_key_in_the_same_mutation,
);

async fn a_rotation_schedules_the_old_keys_revocation_and_revoke_due_carries_it_out_once(
    store: &dyn Store,
    view: &View,
) {
    let old = role_key(ACCOUNT, "viewer");
    insert(store, &old).await;
    let new = role_key(ACCOUNT, "viewer");
    let event_id = store
        .rotate_key(&old, new.clone(), NOW + 60, NOW, None, &[])
        .await
        .expect("rotate");
    assert_eq!(event_id, None, "nothing revoked yet");
    let stored_old = get_key(store, ACCOUNT, &old.key_id).await.expect("old");
    assert_eq!(stored_old.rotation.to.as_deref(), Some(new.key_id.as_str()));
    assert_eq!(stored_old.rotation.revokes_at, Some(NOW + 60));
    assert_eq!(stored_old.revoked_at, None);
    let stored_new = get_key(store, ACCOUNT, &new.key_id).await.expect("new");
    assert_eq!(
        stored_new.rotation.from.as_deref(),
        Some(old.key_id.as_str())
    );
    // Listings carry the rotation as reads do.
    let listed = store.list_keys(ACCOUNT, None, 100).await.expect("list");
    assert!(listed.contains(&stored_old), "{listed:?}");
    assert!(listed.contains(&stored_new), "{listed:?}");
    // A second rotation of the same key is refused, and stores nothing.
    let again = role_key(ACCOUNT, "viewer");
    let e = err(store
        .rotate_key(&old, again.clone(), NOW + 60, NOW, None, &[])
        .await);
    assert!(matches!(e, StoreError::FailedPrecondition(_)), "{e:?}");
    assert_eq!(get_key(store, ACCOUNT, &again.key_id).await, None);
    // Not due before its time; then revoked exactly once, however many runs.
    assert_eq!(store.revoke_due(NOW + 59).await.expect("not yet"), 0);
    assert!(!revoked_in_view(view, ACCOUNT, &old));
    assert_eq!(store.revoke_due(NOW + 60).await.expect("due"), 1);
    assert_eq!(store.revoke_due(NOW + 61).await.expect("done"), 0);
    let revoked = get_key(store, ACCOUNT, &old.key_id).await.expect("old");
    assert_eq!(revoked.revoked_at, Some(NOW + 60));
    assert!(revoked_in_view(view, ACCOUNT, &old));
    assert!(!revoked_in_view(view, ACCOUNT, &new));
    assert_eq!(
        get_key(store, ACCOUNT, &new.key_id)
            .await
            .expect("new")
            .revoked_at,
        None
    );
}

async fn a_rotation_with_no_overlap_revokes_the_old_key_in_the_same_mutation(
    store: &dyn Store,
    view: &View,
) {
    let old = role_key(ACCOUNT, "operator");
    insert(store, &old).await;
    let new = role_key(ACCOUNT, "operator");
    store
        .rotate_key(&old, new.clone(), NOW, NOW, Some("req-9"), &[])
        .await
        .expect("rotate");
    // The request id it was asked under stays with the rotated key (a retry is recognised).
    assert_eq!(
        get_key(store, ACCOUNT, &old.key_id)
            .await
            .expect("old")
            .rotation
            .request
            .as_deref(),
        Some("req-9")
    );
    assert_eq!(
        get_key(store, ACCOUNT, &old.key_id)
            .await
            .expect("old")
            .revoked_at,
        Some(NOW)
    );
    // The store's own view has it at once (this node's next check refuses it).
    assert!(revoked_in_view(view, ACCOUNT, &old));
    assert_eq!(
        store.revoke_due(NOW + 1).await.expect("nothing scheduled"),
        0
    );
    // A revoked key cannot be rotated.
    let e = err(store
        .rotate_key(&old, role_key(ACCOUNT, "operator"), NOW, NOW, None, &[])
        .await);
    assert!(matches!(e, StoreError::FailedPrecondition(_)), "{e:?}");
    // Nor can a key that does not exist.
    let missing = role_key(ACCOUNT, "viewer");
    let e = err(store
        .rotate_key(&missing, role_key(ACCOUNT, "viewer"), NOW, NOW, None, &[])
        .await);
    assert!(matches!(e, StoreError::NotFound(_)), "{e:?}");
}

async fn a_request_id_stores_one_key_and_replays_its_receipt(store: &dyn Store, _: &View) {
    use authcell::store::Receipt;
    let receipt = |key: &KeyRecord| Receipt {
        digest: "d1".into(),
        key_id: key.key_id.clone(),
        claims: "{}".into(),
    };
    let first = role_key("acme", "viewer");
    let stored = store
        .insert_key_once(first.clone(), None, "req-1", &receipt(&first))
        .await
        .expect("first attempt");
    assert_eq!(stored, None, "a new request id stores the key");
    // A retry makes a new key id (as a retried call would); it is not stored.
    let retry = role_key("acme", "viewer");
    let replayed = store
        .insert_key_once(retry.clone(), None, "req-1", &receipt(&retry))
        .await
        .expect("retry");
    assert_eq!(
        replayed,
        Some(receipt(&first)),
        "the first attempt's receipt"
    );
    assert!(get_key(store, "acme", &retry.key_id).await.is_none());
    assert_eq!(
        store.list_keys("acme", None, 10).await.expect("list").len(),
        1
    );
    // The same id in another account, and another id in this one, are new requests.
    let other = role_key("beta", "viewer");
    let stored = store
        .insert_key_once(other.clone(), None, "req-1", &receipt(&other))
        .await
        .expect("other account");
    assert_eq!(stored, None);
    let second = role_key("acme", "viewer");
    let stored = store
        .insert_key_once(second.clone(), None, "req-2", &receipt(&second))
        .await
        .expect("another id");
    assert_eq!(stored, None);
    assert_eq!(
        store.list_keys("acme", None, 10).await.expect("list").len(),
        2
    );
}

async fn ensure_account_is_true_only_the_first_time(store: &dyn Store, _: &View) {
    assert!(store.ensure_account(ACCOUNT, NOW).await.expect("first"));
    assert!(!store
        .ensure_account(ACCOUNT, NOW + 1)
        .await
        .expect("second"));
    assert!(store.ensure_account(OTHER, NOW).await.expect("another"));
}

async fn a_key_round_trips_every_field(store: &dyn Store, _: &View) {
    let sdk = sdk_key(
        ACCOUNT,
        "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
    );
    let owner = role_key(ACCOUNT, "owner");
    insert(store, &sdk).await;
    insert(store, &owner).await;
    assert_eq!(
        get_key(store, ACCOUNT, &sdk.key_id).await,
        Some(sdk.clone())
    );
    assert_eq!(
        get_key(store, ACCOUNT, &owner.key_id).await,
        Some(owner.clone())
    );
    // Listing returns the same records.
    let listed = store.list_keys(ACCOUNT, None, 10).await.expect("list");
    assert_eq!(listed, vec![sdk, owner]);
}

async fn inserting_an_existing_key_id_is_already_exists(store: &dyn Store, _: &View) {
    let first = role_key(ACCOUNT, "viewer");
    insert(store, &first).await;
    assert_eq!(
        get_key(store, ACCOUNT, &first.key_id).await,
        Some(first.clone()),
        "precondition: the id is taken"
    );
    let mut second = role_key(ACCOUNT, "owner");
    second.key_id = first.key_id.clone();
    second.description = "an impostor".into();
    let e = err(store.insert_key(second, None).await);
    assert!(is_already_exists(&e), "{e:?}");
    assert_eq!(
        get_key(store, ACCOUNT, &first.key_id).await,
        Some(first),
        "the first record is untouched"
    );
}

async fn a_key_is_invisible_to_other_accounts(store: &dyn Store, view: &View) {
    let key = role_key(ACCOUNT, "owner");
    insert(store, &key).await;
    assert!(
        get_key(store, ACCOUNT, &key.key_id).await.is_some(),
        "precondition: the owning account sees it"
    );
    assert_eq!(get_key(store, OTHER, &key.key_id).await, None);
    assert_eq!(store.list_keys(OTHER, None, 100).await.expect("list"), []);
    assert_eq!(store.count_live_keys(OTHER, NOW).await.expect("count"), 0);
    let e = err(store
        .revoke_key(
            &KeyRecord {
                account: OTHER.into(),
                ..key.clone()
            },
            NOW,
            None,
        )
        .await);
    assert!(is_not_found(&e), "{e:?}");
    let e = err(store
        .rotate_refresh(OTHER, &key.key_id, "", sdk_key(OTHER, "h"), NOW, None)
        .await);
    assert!(is_not_found(&e), "{e:?}");
    assert_eq!(
        get_key(store, ACCOUNT, &key.key_id).await,
        Some(key.clone()),
        "still unrevoked"
    );
    assert!(!revoked_in_view(view, ACCOUNT, &key));
}

async fn list_keys_pages_in_key_id_order(store: &dyn Store, _: &View) {
    assert_eq!(
        store.list_keys(ACCOUNT, None, 100).await.expect("list"),
        [],
        "an empty account lists nothing"
    );
    let keys: Vec<KeyRecord> = (0..7).map(|_| role_key(ACCOUNT, "viewer")).collect();
    let others: Vec<KeyRecord> = (0..3).map(|_| role_key(OTHER, "viewer")).collect();
    // Inserted out of order, interleaved with another account's keys.
    for (i, key) in keys.iter().enumerate().rev() {
        insert(store, key).await;
        if let Some(other) = others.get(i) {
            insert(store, other).await;
        }
    }
    let all = ids(&keys);
    let mut sorted = all.clone();
    sorted.sort();
    assert_eq!(all, sorted, "precondition: UUIDv7 ids are created in order");

    assert_eq!(
        ids(&store.list_keys(ACCOUNT, None, 100).await.expect("all")),
        all
    );
    assert_eq!(
        ids(&store.list_keys(ACCOUNT, None, 3).await.expect("p1")),
        all[..3]
    );
    assert_eq!(
        ids(&store
            .list_keys(ACCOUNT, Some(&all[2]), 3)
            .await
            .expect("p2")),
        all[3..6],
        "`after` is exclusive"
    );
    assert_eq!(
        ids(&store
            .list_keys(ACCOUNT, Some(&all[5]), 3)
            .await
            .expect("p3")),
        all[6..]
    );
    assert_eq!(
        store
            .list_keys(ACCOUNT, Some(&all[6]), 3)
            .await
            .expect("end"),
        []
    );
    // A cursor need not be a stored id (a page token outlives nothing, but is just a bound).
    let before_all = Uuid::nil().to_string();
    assert_eq!(
        ids(&store
            .list_keys(ACCOUNT, Some(&before_all), 2)
            .await
            .expect("nil")),
        all[..2]
    );
    // Paging with limit 1 visits every key exactly once.
    let mut visited = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = store
            .list_keys(ACCOUNT, after.as_deref(), 1)
            .await
            .expect("page");
        assert!(page.len() <= 1);
        let Some(key) = page.into_iter().next() else {
            break;
        };
        after = Some(key.key_id.clone());
        visited.push(key.key_id);
    }
    assert_eq!(visited, all);
    assert_eq!(
        ids(&store.list_keys(OTHER, None, 100).await.expect("other")),
        ids(&others)
    );
}

async fn count_live_keys_ignores_revoked_and_expired_keys(store: &dyn Store, _: &View) {
    assert_eq!(store.count_live_keys(ACCOUNT, NOW).await.expect("empty"), 0);
    let never = role_key(ACCOUNT, "owner");
    let mut later = role_key(ACCOUNT, "viewer");
    later.expires_at = Some(NOW + 1);
    let mut at_now = role_key(ACCOUNT, "viewer");
    at_now.expires_at = Some(NOW);
    let mut earlier = role_key(ACCOUNT, "viewer");
    earlier.expires_at = Some(NOW - 1);
    let revoked = role_key(ACCOUNT, "operator");
    for key in [&never, &later, &at_now, &earlier, &revoked] {
        insert(store, key).await;
    }
    insert(store, &role_key(OTHER, "owner")).await;
    assert_eq!(
        store.count_live_keys(ACCOUNT, NOW).await.expect("count"),
        3,
        "precondition: never, later and revoked are live before the revocation"
    );
    store.revoke_key(&revoked, NOW, None).await.expect("revoke");
    assert_eq!(store.count_live_keys(ACCOUNT, NOW).await.expect("count"), 2);
    assert_eq!(
        store
            .count_live_keys(ACCOUNT, NOW + 1)
            .await
            .expect("count"),
        1,
        "expires_at <= now is expired"
    );
    assert_eq!(store.count_live_keys(OTHER, NOW).await.expect("other"), 1);
}

async fn revoke_key_keeps_the_first_revocation_time_and_reaches_the_view(
    store: &dyn Store,
    view: &View,
) {
    let key = role_key(ACCOUNT, "viewer");
    let untouched = role_key(ACCOUNT, "viewer");
    insert(store, &key).await;
    insert(store, &untouched).await;
    assert!(!revoked_in_view(view, ACCOUNT, &key), "precondition");

    let (record, _) = store.revoke_key(&key, NOW, None).await.expect("revoke");
    let expected = KeyRecord {
        revoked_at: Some(NOW),
        ..key.clone()
    };
    assert_eq!(record, expected);
    assert_eq!(
        get_key(store, ACCOUNT, &key.key_id).await,
        Some(expected.clone())
    );
    assert!(revoked_in_view(view, ACCOUNT, &key));

    let (again, _) = store
        .revoke_key(&key, NOW + 50, None)
        .await
        .expect("revoking twice is not an error");
    assert_eq!(
        again.revoked_at,
        Some(NOW),
        "the first revocation time stays"
    );
    assert_eq!(get_key(store, ACCOUNT, &key.key_id).await, Some(expected));
    assert!(revoked_in_view(view, ACCOUNT, &key));

    // Scoped to the account, and to the key.
    assert!(!revoked_in_view(view, OTHER, &key));
    assert!(!revoked_in_view(view, ACCOUNT, &untouched));
    assert_eq!(
        get_key(store, ACCOUNT, &untouched.key_id).await,
        Some(untouched)
    );
    // An ancestor's revocation covers its descendants: `ids` is the whole chain.
    let child = new_id();
    assert!(view.is_revoked(ACCOUNT, NOW, [&child, &key.key_id], None, NOW));
    assert!(!view.is_revoked(ACCOUNT, NOW, [&child], None, NOW));
}

async fn revoking_an_unknown_key_is_not_found(store: &dyn Store, view: &View) {
    let unknown = new_id();
    assert_eq!(
        get_key(store, ACCOUNT, &unknown).await,
        None,
        "precondition"
    );
    let e = err(store
        .revoke_key(
            &KeyRecord {
                key_id: unknown.clone(),
                ..role_key(ACCOUNT, "owner")
            },
            NOW,
            None,
        )
        .await);
    assert!(is_not_found(&e), "{e:?}");
    assert!(
        !view.is_revoked(ACCOUNT, NOW, [&unknown], None, NOW),
        "a failed revocation changes nothing"
    );
    assert_eq!(
        get_key(store, ACCOUNT, &unknown).await,
        None,
        "nor creates it"
    );
}

async fn revocations_without_a_key_record_reach_the_view(store: &dyn Store, view: &View) {
    let none: [&String; 0] = [];
    assert!(
        !view.is_revoked(ACCOUNT, NOW, none, Some("tid-1"), NOW),
        "precondition"
    );
    store
        .revoke_token_id(token_id_revocation("tid-1", NOW + 600, None), NOW, 10, None)
        .await
        .expect("revoke token id");
    assert!(view.is_revoked(ACCOUNT, NOW, none, Some("tid-1"), NOW));
    assert!(!view.is_revoked(ACCOUNT, NOW, none, Some("tid-2"), NOW));
    assert!(!view.is_revoked(OTHER, NOW, none, Some("tid-1"), NOW));
    assert!(
        !view.is_revoked(ACCOUNT, NOW, none, None, NOW),
        "credentials without a token id are unaffected"
    );

    // A disposable token, by its jti.
    let jti = new_id();
    assert!(
        !view.is_revoked(ACCOUNT, NOW, [&jti], None, NOW),
        "precondition"
    );
    store
        .revoke(
            Event::CredentialRevoked {
                account: ACCOUNT.into(),
                id: jti.clone(),
                by: None,
            },
            None,
        )
        .await
        .expect("revoke jti");
    assert!(view.is_revoked(ACCOUNT, NOW, [&jti], None, NOW));
    assert!(!view.is_revoked(OTHER, NOW, [&jti], None, NOW));
    assert_eq!(
        get_key(store, ACCOUNT, &jti).await,
        None,
        "no key record appears"
    );
    // Anything but a credential revocation is refused by revoke.
    let e = err(store
        .revoke(token_id_revocation("tid-9", NOW + 60, None), None)
        .await);
    assert!(is_failed_precondition(&e), "{e:?}");
}

async fn token_id_revocations_end_and_the_id_can_be_used_again(store: &dyn Store, view: &View) {
    let none: [&String; 0] = [];
    store
        .revoke_token_id(token_id_revocation("x", NOW + 100, None), NOW, 10, None)
        .await
        .expect("revoke token id");
    assert!(view.is_revoked(ACCOUNT, NOW, none, Some("x"), NOW + 99));
    assert!(
        !view.is_revoked(ACCOUNT, NOW, none, Some("x"), NOW + 100),
        "ended at its until"
    );
    // A second revocation of the same id never shortens the first.
    store
        .revoke_token_id(token_id_revocation("x", NOW + 50, None), NOW, 10, None)
        .await
        .expect("again");
    assert!(view.is_revoked(ACCOUNT, NOW, none, Some("x"), NOW + 99));
    // Ended revocations are dropped from the view (and, for Redis, from Redis: see the cells
    // tests, where a reloading node must not find them).
    assert_eq!(view.prune_expired(NOW + 100), 1);
    assert!(!view.is_revoked(ACCOUNT, NOW, none, Some("x"), NOW + 1));
}

async fn token_id_revocations_are_capped_per_account(store: &dyn Store, view: &View) {
    for i in 0..3 {
        store
            .revoke_token_id(
                token_id_revocation(&format!("t{i}"), NOW + 100, None),
                NOW,
                3,
                None,
            )
            .await
            .expect("within the cap");
    }
    let e = err(store
        .revoke_token_id(token_id_revocation("t3", NOW + 100, None), NOW, 3, None)
        .await);
    assert!(matches!(e, StoreError::QuotaExceeded(_)), "{e:?}");
    let none: [&String; 0] = [];
    assert!(
        !view.is_revoked(ACCOUNT, NOW, none, Some("t3"), NOW),
        "nothing written"
    );
    // Extending one already held is not a new one.
    store
        .revoke_token_id(token_id_revocation("t1", NOW + 200, None), NOW, 3, None)
        .await
        .expect("extending is allowed at the cap");
    // Once they end, room is made again.
    store
        .revoke_token_id(
            token_id_revocation("t3", NOW + 300, None),
            NOW + 100,
            3,
            None,
        )
        .await
        .expect("ended ones do not count");
    // Another account has its own quota.
    store
        .revoke_token_id(
            Event::TokenIdRevoked {
                account: OTHER.into(),
                token_id: "t0".into(),
                until: NOW + 100,
                by: None,
            },
            NOW,
            3,
            None,
        )
        .await
        .expect("another account");
}

async fn scoped_revocations_apply_only_below_their_revoker(store: &dyn Store, view: &View) {
    let (revoker, other_maker, token) = (new_id(), new_id(), new_id());
    store
        .revoke(
            Event::CredentialRevoked {
                account: ACCOUNT.into(),
                id: token.clone(),
                by: Some(revoker.clone()),
            },
            None,
        )
        .await
        .expect("scoped revoke");
    // Made (through another key) by the revoker: revoked.
    let middle = new_id();
    assert!(view.is_revoked(ACCOUNT, NOW, [&token, &middle, &revoker], None, NOW));
    // Made by another key: untouched.
    assert!(!view.is_revoked(ACCOUNT, NOW, [&token, &other_maker], None, NOW));
    assert!(!view.is_revoked(ACCOUNT, NOW, [&token], None, NOW));

    // The same for token ids.
    store
        .revoke_token_id(
            token_id_revocation("s", NOW + 60, Some(&revoker)),
            NOW,
            10,
            None,
        )
        .await
        .expect("scoped token id");
    let t2 = new_id();
    assert!(view.is_revoked(ACCOUNT, NOW, [&t2, &revoker], Some("s"), NOW));
    assert!(!view.is_revoked(ACCOUNT, NOW, [&t2, &other_maker], Some("s"), NOW));
}

async fn issued_before_reaches_the_view_and_never_lowers_the_watermark(
    store: &dyn Store,
    view: &View,
) {
    let none: [&String; 0] = [];
    let now_ms = NOW * 1000;
    assert_eq!(view.watermark(ACCOUNT), None, "precondition");
    let (mark, _) = store
        .revoke_issued_before(ACCOUNT, Some(now_ms), now_ms, None)
        .await
        .expect("issued before");
    assert_eq!(mark, now_ms);
    assert_eq!(view.watermark(ACCOUNT), Some(now_ms));
    assert!(view.is_revoked(ACCOUNT, now_ms - 1, none, None, NOW));
    assert!(
        !view.is_revoked(ACCOUNT, now_ms, none, None, NOW),
        "issued at the mark"
    );
    assert!(!view.is_revoked(OTHER, now_ms - 1, none, None, NOW));
    assert_eq!(view.watermark(OTHER), None);

    let (mark, _) = store
        .revoke_issued_before(ACCOUNT, Some(now_ms - 500), now_ms, None)
        .await
        .expect("lower");
    assert_eq!(mark, now_ms, "never lowered: the mark in force comes back");
    assert_eq!(view.watermark(ACCOUNT), Some(now_ms));

    let (mark, _) = store
        .revoke_issued_before(ACCOUNT, Some(now_ms + 500), now_ms, None)
        .await
        .expect("higher");
    assert_eq!(mark, now_ms + 500);
    assert_eq!(view.watermark(ACCOUNT), Some(now_ms + 500));
}

/// "Now" is cut on the store's clock (the primary's, for Redis), after the current millisecond,
/// and every cut at "now" is above the one before, even within one millisecond.
async fn issued_before_now_covers_the_current_millisecond(store: &dyn Store, view: &View) {
    let wall = authcell::clock::wall_ms();
    let (first, _) = store
        .revoke_issued_before(ACCOUNT, None, wall, None)
        .await
        .expect("cut now");
    assert!(first > wall, "{first} covers {wall}");
    assert!(
        first <= authcell::clock::wall_ms() + 1000,
        "{first} is about now"
    );
    assert_eq!(view.watermark(ACCOUNT), Some(first));
    let (second, _) = store
        .revoke_issued_before(ACCOUNT, None, wall, None)
        .await
        .expect("cut again");
    assert!(
        second > first,
        "a later cut is always higher: {second} > {first}"
    );
}
