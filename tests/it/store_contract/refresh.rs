//! The store contract for refreshing SDK-made keys.

use super::*;

contract!(
    rotate_refresh_replaces_the_key_and_works_once,
    rotate_refresh_with_a_wrong_hash_is_refused,
    rotate_refresh_of_a_revoked_key_is_refused,
    rotate_refresh_of_an_unknown_key_is_not_found,
    rotate_refresh_onto_an_existing_key_id_changes_nothing,
    a_key_revoked_by_refresh_no_longer_blocks_role_deletion,
    a_key_inserted_by_refresh_blocks_role_deletion,
    concurrent_refreshes_with_one_token_succeed_once,
    a_rotated_sdk_key_hands_its_refresh_to_the_successor,
    reset_refresh_replaces_the_hash_of_a_live_key_only,
);

/// Rotating an SDK-made key stores the successor's refresh hash, and the rotated key can no
/// longer be refreshed (that would fork a second successor beside the rotation's).
async fn a_rotated_sdk_key_hands_its_refresh_to_the_successor(store: &dyn Store, _: &View) {
    let old = sdk_key(ACCOUNT, "hash-1");
    insert(store, &old).await;
    let new = sdk_key(ACCOUNT, "hash-2");
    store
        .rotate_key(&old, new.clone(), NOW + 60, NOW, None, &[])
        .await
        .expect("rotate");
    let stored = get_key(store, ACCOUNT, &new.key_id).await.expect("new");
    assert_eq!(stored.refresh_hash.as_deref(), Some("hash-2"));
    assert_eq!(stored.inline, new.inline);
    let e = err(store
        .rotate_refresh(
            ACCOUNT,
            &old.key_id,
            "hash-1",
            sdk_key(ACCOUNT, "hash-3"),
            NOW,
            None,
        )
        .await);
    assert!(is_failed_precondition(&e), "{e:?}");
    assert_eq!(
        get_key(store, ACCOUNT, &old.key_id)
            .await
            .and_then(|k| k.revoked_at),
        None,
        "the refused refresh changed nothing"
    );
    // The successor refreshes as usual.
    store
        .rotate_refresh(
            ACCOUNT,
            &new.key_id,
            "hash-2",
            sdk_key(ACCOUNT, "hash-4"),
            NOW,
            None,
        )
        .await
        .expect("refresh the successor");
}

async fn reset_refresh_replaces_the_hash_of_a_live_key_only(store: &dyn Store, _: &View) {
    let key = sdk_key(ACCOUNT, "hash-1");
    insert(store, &key).await;
    store
        .reset_refresh(ACCOUNT, &key.key_id, "hash-2")
        .await
        .expect("reset");
    // The old hash no longer works; the new one does.
    let e = err(store
        .rotate_refresh(
            ACCOUNT,
            &key.key_id,
            "hash-1",
            sdk_key(ACCOUNT, "x"),
            NOW,
            None,
        )
        .await);
    assert!(is_failed_precondition(&e), "{e:?}");
    let next = sdk_key(ACCOUNT, "hash-3");
    store
        .rotate_refresh(ACCOUNT, &key.key_id, "hash-2", next.clone(), NOW, None)
        .await
        .expect("the new hash works");
    // A refreshed (revoked) key, a role key and an unknown one are refused.
    let e = err(store.reset_refresh(ACCOUNT, &key.key_id, "hash-9").await);
    assert!(is_failed_precondition(&e), "{e:?}");
    let role = role_key(ACCOUNT, "viewer");
    insert(store, &role).await;
    let e = err(store.reset_refresh(ACCOUNT, &role.key_id, "hash-9").await);
    assert!(is_failed_precondition(&e), "{e:?}");
    let e = err(store.reset_refresh(ACCOUNT, &new_id(), "hash-9").await);
    assert!(matches!(e, StoreError::NotFound(_)), "{e:?}");
}

async fn rotate_refresh_replaces_the_key_and_works_once(store: &dyn Store, view: &View) {
    let old = sdk_key(ACCOUNT, "hash-1");
    insert(store, &old).await;
    let new = sdk_key(ACCOUNT, "hash-2");
    store
        .rotate_refresh(ACCOUNT, &old.key_id, "hash-1", new.clone(), NOW, None)
        .await
        .expect("rotate");
    assert_eq!(
        get_key(store, ACCOUNT, &old.key_id).await,
        Some(KeyRecord {
            revoked_at: Some(NOW),
            ..old.clone()
        })
    );
    assert_eq!(
        get_key(store, ACCOUNT, &new.key_id).await,
        Some(new.clone())
    );
    assert!(revoked_in_view(view, ACCOUNT, &old));
    assert!(!revoked_in_view(view, ACCOUNT, &new));
    assert_eq!(
        ids(&store.list_keys(ACCOUNT, None, 10).await.expect("list")),
        [old.key_id.clone(), new.key_id.clone()]
    );
    assert_eq!(store.count_live_keys(ACCOUNT, NOW).await.expect("count"), 1);

    // The same refresh token again: refused, nothing inserted.
    let replay = sdk_key(ACCOUNT, "hash-3");
    let e = err(store
        .rotate_refresh(
            ACCOUNT,
            &old.key_id,
            "hash-1",
            replay.clone(),
            NOW + 1,
            None,
        )
        .await);
    assert!(is_failed_precondition(&e), "{e:?}");
    assert_eq!(get_key(store, ACCOUNT, &replay.key_id).await, None);
    assert_eq!(
        get_key(store, ACCOUNT, &old.key_id)
            .await
            .and_then(|k| k.revoked_at),
        Some(NOW),
        "the first revocation time stays"
    );

    // The successor's own token works (once).
    let third = sdk_key(ACCOUNT, "hash-4");
    store
        .rotate_refresh(ACCOUNT, &new.key_id, "hash-2", third.clone(), NOW + 2, None)
        .await
        .expect("rotate the successor");
    assert!(revoked_in_view(view, ACCOUNT, &new));
    assert_eq!(get_key(store, ACCOUNT, &third.key_id).await, Some(third));
}

async fn rotate_refresh_with_a_wrong_hash_is_refused(store: &dyn Store, view: &View) {
    let old = sdk_key(ACCOUNT, "right");
    insert(store, &old).await;
    assert_eq!(
        get_key(store, ACCOUNT, &old.key_id)
            .await
            .and_then(|k| k.refresh_hash),
        Some("right".into()),
        "precondition: a live key with a refresh hash"
    );
    for wrong in ["wrong", "", "righ", "right "] {
        let new = sdk_key(ACCOUNT, "next");
        let e = err(store
            .rotate_refresh(ACCOUNT, &old.key_id, wrong, new.clone(), NOW, None)
            .await);
        assert!(is_failed_precondition(&e), "{wrong:?}: {e:?}");
        assert_eq!(get_key(store, ACCOUNT, &new.key_id).await, None);
    }
    assert_eq!(
        get_key(store, ACCOUNT, &old.key_id).await,
        Some(old.clone())
    );
    assert!(!revoked_in_view(view, ACCOUNT, &old));

    // A key without a refresh hash (role-bound) cannot be refreshed, not even with "".
    let role_bound = role_key(ACCOUNT, "owner");
    insert(store, &role_bound).await;
    let e = err(store
        .rotate_refresh(
            ACCOUNT,
            &role_bound.key_id,
            "",
            sdk_key(ACCOUNT, "x"),
            NOW,
            None,
        )
        .await);
    assert!(is_failed_precondition(&e), "{e:?}");
    assert!(!revoked_in_view(view, ACCOUNT, &role_bound));
    assert_eq!(
        get_key(store, ACCOUNT, &role_bound.key_id).await,
        Some(role_bound)
    );
}

async fn rotate_refresh_of_a_revoked_key_is_refused(store: &dyn Store, _: &View) {
    let old = sdk_key(ACCOUNT, "h");
    insert(store, &old).await;
    store.revoke_key(&old, NOW, None).await.expect("revoke");
    assert_eq!(
        get_key(store, ACCOUNT, &old.key_id)
            .await
            .and_then(|k| k.refresh_hash),
        Some("h".into()),
        "precondition: the hash matches, only the revocation stands in the way"
    );
    let new = sdk_key(ACCOUNT, "h2");
    let e = err(store
        .rotate_refresh(ACCOUNT, &old.key_id, "h", new.clone(), NOW + 1, None)
        .await);
    assert!(is_failed_precondition(&e), "{e:?}");
    assert_eq!(get_key(store, ACCOUNT, &new.key_id).await, None);
}

async fn rotate_refresh_of_an_unknown_key_is_not_found(store: &dyn Store, _: &View) {
    let unknown = new_id();
    assert_eq!(
        get_key(store, ACCOUNT, &unknown).await,
        None,
        "precondition"
    );
    let new = sdk_key(ACCOUNT, "h");
    let e = err(store
        .rotate_refresh(ACCOUNT, &unknown, "h", new.clone(), NOW, None)
        .await);
    assert!(is_not_found(&e), "{e:?}");
    assert_eq!(get_key(store, ACCOUNT, &new.key_id).await, None);
}

async fn rotate_refresh_onto_an_existing_key_id_changes_nothing(store: &dyn Store, view: &View) {
    let old = sdk_key(ACCOUNT, "h");
    let existing = role_key(ACCOUNT, "viewer");
    insert(store, &old).await;
    insert(store, &existing).await;
    let (existing, _) = store
        .revoke_key(&existing, NOW - 5, None)
        .await
        .expect("revoke");
    assert_eq!(
        get_key(store, ACCOUNT, &existing.key_id).await,
        Some(existing.clone()),
        "precondition: the successor's id is taken, by a revoked key"
    );
    let successor = KeyRecord {
        key_id: existing.key_id.clone(),
        ..sdk_key(ACCOUNT, "h2")
    };
    let outcome = store
        .rotate_refresh(ACCOUNT, &old.key_id, "h", successor, NOW, None)
        .await;
    let stored = get_key(store, ACCOUNT, &existing.key_id).await;
    assert!(
        outcome.is_err(),
        "a refresh must not overwrite an existing key; the record under its id is now {stored:?}"
    );
    assert_eq!(stored, Some(existing), "the existing key is untouched");
    assert_eq!(
        get_key(store, ACCOUNT, &old.key_id).await,
        Some(old.clone()),
        "the old key is not revoked"
    );
    assert!(!revoked_in_view(view, ACCOUNT, &old));
}

async fn a_key_revoked_by_refresh_no_longer_blocks_role_deletion(store: &dyn Store, _: &View) {
    let readers = role(ACCOUNT, "readers");
    store
        .create_role(readers.clone(), None)
        .await
        .expect("create");
    let old = KeyRecord {
        refresh_hash: Some("h".into()),
        rotation: Default::default(),
        ..role_key(ACCOUNT, &readers.role_id)
    };
    insert(store, &old).await;
    let e = err(store
        .delete_role(ACCOUNT, &readers.role_id, NOW, None)
        .await);
    assert!(
        is_failed_precondition(&e),
        "precondition: the key blocks deletion: {e:?}"
    );
    store
        .rotate_refresh(ACCOUNT, &old.key_id, "h", sdk_key(ACCOUNT, "h2"), NOW, None)
        .await
        .expect("rotate");
    assert_eq!(
        get_key(store, ACCOUNT, &old.key_id)
            .await
            .and_then(|k| k.revoked_at),
        Some(NOW),
        "precondition: the role-bound key is revoked"
    );
    store
        .delete_role(ACCOUNT, &readers.role_id, NOW, None)
        .await
        .expect("no live key uses the role any more");
}

async fn a_key_inserted_by_refresh_blocks_role_deletion(store: &dyn Store, _: &View) {
    let readers = role(ACCOUNT, "readers");
    store
        .create_role(readers.clone(), None)
        .await
        .expect("create");
    let old = sdk_key(ACCOUNT, "h");
    insert(store, &old).await;
    let successor = KeyRecord {
        refresh_hash: Some("h2".into()),
        rotation: Default::default(),
        ..role_key(ACCOUNT, &readers.role_id)
    };
    store
        .rotate_refresh(ACCOUNT, &old.key_id, "h", successor.clone(), NOW, None)
        .await
        .expect("rotate");
    assert_eq!(
        get_key(store, ACCOUNT, &successor.key_id).await,
        Some(successor),
        "precondition: a live key bound to the role"
    );
    let outcome = store
        .delete_role(ACCOUNT, &readers.role_id, NOW, None)
        .await;
    let Err(StoreError::FailedPrecondition(message)) = &outcome else {
        panic!("a role used by a live key must not be deleted: {outcome:?}");
    };
    assert_eq!(numbers_in(message, &readers.role_id), [1], "{message}");
    assert!(store
        .get_role(ACCOUNT, &readers.role_id)
        .await
        .expect("get")
        .is_some());
}

async fn concurrent_refreshes_with_one_token_succeed_once(store: &dyn Store, view: &View) {
    let old = sdk_key(ACCOUNT, "once");
    insert(store, &old).await;
    let successors: Vec<KeyRecord> = (0..4).map(|_| sdk_key(ACCOUNT, "next")).collect();
    let rotate = |new: &KeyRecord| {
        store.rotate_refresh(ACCOUNT, &old.key_id, "once", new.clone(), NOW, None)
    };
    let (a, b, c, d) = tokio::join!(
        rotate(&successors[0]),
        rotate(&successors[1]),
        rotate(&successors[2]),
        rotate(&successors[3]),
    );
    let outcomes = [a, b, c, d];
    let won: Vec<&KeyRecord> = successors
        .iter()
        .zip(&outcomes)
        .filter(|(_, outcome)| outcome.is_ok())
        .map(|(key, _)| key)
        .collect();
    assert_eq!(won.len(), 1, "exactly one refresh wins: {outcomes:?}");
    for outcome in &outcomes {
        if let Err(e) = outcome {
            assert!(is_failed_precondition(e), "{e:?}");
        }
    }
    for key in &successors {
        let stored = get_key(store, ACCOUNT, &key.key_id).await;
        assert_eq!(stored.is_some(), key.key_id == won[0].key_id);
    }
    assert!(revoked_in_view(view, ACCOUNT, &old));
}
