//! The store contract for roles.

use super::*;

contract!(
    roles_are_created_read_listed_and_followed_by_the_view,
    role_names_are_unique_per_account,
    update_role_replaces_and_renames_but_not_onto_a_taken_name,
    updating_a_missing_role_is_not_found,
    a_role_used_by_live_keys_cannot_be_deleted,
    only_unexpired_keys_block_role_deletion,
    deleting_an_unknown_role_is_not_found,
    a_key_cannot_be_bound_to_a_custom_role_that_does_not_exist,
    creating_a_role_id_twice_is_already_exists,
    a_key_policy_round_trips_and_reaches_the_view,
);

async fn roles_are_created_read_listed_and_followed_by_the_view(store: &dyn Store, view: &View) {
    assert_eq!(store.list_roles(ACCOUNT).await.expect("list"), []);
    let readers = role(ACCOUNT, "readers");
    let writers = role(ACCOUNT, "writers");
    assert_eq!(view.role(ACCOUNT, &readers.role_id), None, "precondition");
    store
        .create_role(readers.clone(), None)
        .await
        .expect("create");
    store
        .create_role(writers.clone(), None)
        .await
        .expect("create");

    assert_eq!(
        store
            .get_role(ACCOUNT, &readers.role_id)
            .await
            .expect("get"),
        Some(readers.clone())
    );
    assert_eq!(
        store.list_roles(ACCOUNT).await.expect("list"),
        vec![readers.clone(), writers.clone()],
        "in role-id order"
    );
    assert_eq!(
        view.role(ACCOUNT, &readers.role_id).as_deref(),
        Some(&readers.permissions)
    );
    assert_eq!(
        view.role(ACCOUNT, &writers.role_id).as_deref(),
        Some(&writers.permissions)
    );
    // Scoped to the account.
    assert_eq!(
        store.get_role(OTHER, &readers.role_id).await.expect("get"),
        None
    );
    assert_eq!(store.list_roles(OTHER).await.expect("list"), []);
    assert_eq!(view.role(OTHER, &readers.role_id), None);
}

async fn creating_a_role_id_twice_is_already_exists(store: &dyn Store, _: &View) {
    let first = role(ACCOUNT, "readers");
    store
        .create_role(first.clone(), None)
        .await
        .expect("create");
    let mut again = first.clone();
    again.name = "writers".into();
    let e = err(store.create_role(again, None).await);
    assert!(is_already_exists(&e), "{e:?}");
    assert_eq!(store.list_roles(ACCOUNT).await.expect("list"), vec![first]);
}

async fn role_names_are_unique_per_account(store: &dyn Store, view: &View) {
    let first = role(ACCOUNT, "readers");
    store
        .create_role(first.clone(), None)
        .await
        .expect("create");
    assert_eq!(
        store.list_roles(ACCOUNT).await.expect("list"),
        vec![first.clone()],
        "precondition: the name is taken"
    );
    let mut same_name = role(ACCOUNT, "readers");
    same_name.permissions = PermissionSet::super_user();
    let e = err(store.create_role(same_name.clone(), None).await);
    assert!(is_already_exists(&e), "{e:?}");
    assert_eq!(store.list_roles(ACCOUNT).await.expect("list"), vec![first]);
    assert_eq!(view.role(ACCOUNT, &same_name.role_id), None);

    // Another account may use the name.
    let elsewhere = role(OTHER, "readers");
    store
        .create_role(elsewhere.clone(), None)
        .await
        .expect("other account");
    assert_eq!(
        store.list_roles(OTHER).await.expect("list"),
        vec![elsewhere]
    );
}

async fn update_role_replaces_and_renames_but_not_onto_a_taken_name(
    store: &dyn Store,
    view: &View,
) {
    let a = role(ACCOUNT, "alpha");
    let b = role(ACCOUNT, "beta");
    store.create_role(a.clone(), None).await.expect("create");
    store.create_role(b.clone(), None).await.expect("create");

    let changed = RoleRecord {
        name: "gamma".into(),
        description: "renamed".into(),
        permissions: cache_reader("gamma-cache"),
        updated_at: NOW,
        ..a.clone()
    };
    store
        .update_role(changed.clone(), None)
        .await
        .expect("update");
    assert_eq!(
        store.get_role(ACCOUNT, &a.role_id).await.expect("get"),
        Some(changed.clone())
    );
    assert_eq!(
        view.role(ACCOUNT, &a.role_id).as_deref(),
        Some(&changed.permissions),
        "the view follows the update"
    );
    // The old name is free again, the new one is taken.
    let reuse = role(ACCOUNT, "alpha");
    store
        .create_role(reuse.clone(), None)
        .await
        .expect("old name is free");
    let e = err(store.create_role(role(ACCOUNT, "gamma"), None).await);
    assert!(is_already_exists(&e), "{e:?}");

    // Renaming onto another role's name.
    assert!(
        store
            .list_roles(ACCOUNT)
            .await
            .expect("list")
            .iter()
            .any(|r| r.name == "beta" && r.role_id == b.role_id),
        "precondition: beta is taken by b"
    );
    let onto_b = RoleRecord {
        name: "beta".into(),
        permissions: PermissionSet::super_user(),
        ..changed.clone()
    };
    let e = err(store.update_role(onto_b, None).await);
    assert!(is_already_exists(&e), "{e:?}");
    assert_eq!(
        store.get_role(ACCOUNT, &a.role_id).await.expect("get"),
        Some(changed.clone()),
        "unchanged"
    );
    assert_eq!(
        view.role(ACCOUNT, &a.role_id).as_deref(),
        Some(&changed.permissions),
        "the view is unchanged too"
    );
    assert_eq!(
        store.get_role(ACCOUNT, &b.role_id).await.expect("get"),
        Some(b)
    );

    // Keeping one's own name is no conflict.
    let same_name = RoleRecord {
        description: "same name".into(),
        ..changed
    };
    store
        .update_role(same_name.clone(), None)
        .await
        .expect("update");
    assert_eq!(
        store.get_role(ACCOUNT, &a.role_id).await.expect("get"),
        Some(same_name)
    );
}

async fn updating_a_missing_role_is_not_found(store: &dyn Store, view: &View) {
    let ghost = role(ACCOUNT, "ghost");
    assert_eq!(
        store.get_role(ACCOUNT, &ghost.role_id).await.expect("get"),
        None,
        "precondition"
    );
    let e = err(store.update_role(ghost.clone(), None).await);
    assert!(is_not_found(&e), "{e:?}");
    assert_eq!(
        store.list_roles(ACCOUNT).await.expect("list"),
        [],
        "no upsert"
    );
    assert_eq!(view.role(ACCOUNT, &ghost.role_id), None);
    // A role of another account is missing here too.
    let theirs = role(OTHER, "theirs");
    store
        .create_role(theirs.clone(), None)
        .await
        .expect("create");
    let e = err(store
        .update_role(
            RoleRecord {
                account: ACCOUNT.into(),
                ..theirs
            },
            None,
        )
        .await);
    assert!(is_not_found(&e), "{e:?}");
}

async fn a_role_used_by_live_keys_cannot_be_deleted(store: &dyn Store, view: &View) {
    let readers = role(ACCOUNT, "readers");
    store
        .create_role(readers.clone(), None)
        .await
        .expect("create");
    let live = [
        role_key(ACCOUNT, &readers.role_id),
        role_key(ACCOUNT, &readers.role_id),
    ];
    let mut expired = role_key(ACCOUNT, &readers.role_id);
    expired.expires_at = Some(NOW - 1);
    let revoked = role_key(ACCOUNT, &readers.role_id);
    for key in live.iter().chain([&expired, &revoked]) {
        insert(store, key).await;
    }
    store.revoke_key(&revoked, NOW, None).await.expect("revoke");
    assert_eq!(
        store.count_live_keys(ACCOUNT, NOW).await.expect("count"),
        2,
        "precondition: two live keys use the role"
    );

    let e = err(store
        .delete_role(ACCOUNT, &readers.role_id, NOW, None)
        .await);
    let StoreError::FailedPrecondition(message) = &e else {
        panic!("expected FailedPrecondition, got {e:?}");
    };
    assert_eq!(
        numbers_in(message, &readers.role_id),
        [2],
        "the message says how many live keys: {message}"
    );
    assert_eq!(
        store
            .get_role(ACCOUNT, &readers.role_id)
            .await
            .expect("get"),
        Some(readers.clone()),
        "the role stays"
    );
    assert!(view.role(ACCOUNT, &readers.role_id).is_some());

    store.revoke_key(&live[0], NOW, None).await.expect("revoke");
    let e = err(store
        .delete_role(ACCOUNT, &readers.role_id, NOW, None)
        .await);
    assert!(is_failed_precondition(&e), "one live key left: {e:?}");
    store.revoke_key(&live[1], NOW, None).await.expect("revoke");

    store
        .delete_role(ACCOUNT, &readers.role_id, NOW, None)
        .await
        .expect("no live key uses it now");
    assert_eq!(
        store
            .get_role(ACCOUNT, &readers.role_id)
            .await
            .expect("get"),
        None
    );
    assert_eq!(store.list_roles(ACCOUNT).await.expect("list"), []);
    assert_eq!(
        view.role(ACCOUNT, &readers.role_id),
        None,
        "the view follows"
    );
    // Its name is free again; its id is gone for good.
    store
        .create_role(role(ACCOUNT, "readers"), None)
        .await
        .expect("the name is free");
    let e = err(store
        .insert_key(role_key(ACCOUNT, &readers.role_id), None)
        .await);
    assert!(is_not_found(&e), "{e:?}");
}

async fn only_unexpired_keys_block_role_deletion(store: &dyn Store, view: &View) {
    let readers = role(ACCOUNT, "readers");
    store
        .create_role(readers.clone(), None)
        .await
        .expect("create");
    let mut at_now = role_key(ACCOUNT, &readers.role_id);
    at_now.expires_at = Some(NOW);
    let mut next_second = role_key(ACCOUNT, &readers.role_id);
    next_second.expires_at = Some(NOW + 1);
    insert(store, &at_now).await;
    insert(store, &next_second).await;
    assert_eq!(
        get_key(store, ACCOUNT, &at_now.key_id)
            .await
            .and_then(|k| k.role_id),
        Some(readers.role_id.clone()),
        "precondition: the expired key is bound to the role"
    );

    let e = err(store
        .delete_role(ACCOUNT, &readers.role_id, NOW, None)
        .await);
    let StoreError::FailedPrecondition(message) = &e else {
        panic!("expected FailedPrecondition, got {e:?}");
    };
    assert_eq!(
        numbers_in(message, &readers.role_id),
        [1],
        "only the key expiring after now counts: {message}"
    );
    store
        .delete_role(ACCOUNT, &readers.role_id, NOW + 1, None)
        .await
        .expect("every key bound to it has expired");
    assert_eq!(
        store
            .get_role(ACCOUNT, &readers.role_id)
            .await
            .expect("get"),
        None
    );
    assert_eq!(view.role(ACCOUNT, &readers.role_id), None);
}

async fn deleting_an_unknown_role_is_not_found(store: &dyn Store, _: &View) {
    let unknown = new_id();
    assert_eq!(
        store.get_role(ACCOUNT, &unknown).await.expect("get"),
        None,
        "precondition"
    );
    let e = err(store.delete_role(ACCOUNT, &unknown, NOW, None).await);
    assert!(is_not_found(&e), "{e:?}");
    // Another account's role is unknown here.
    let theirs = role(OTHER, "theirs");
    store
        .create_role(theirs.clone(), None)
        .await
        .expect("create");
    let e = err(store.delete_role(ACCOUNT, &theirs.role_id, NOW, None).await);
    assert!(is_not_found(&e), "{e:?}");
    assert_eq!(
        store.get_role(OTHER, &theirs.role_id).await.expect("get"),
        Some(theirs)
    );
}

async fn a_key_cannot_be_bound_to_a_custom_role_that_does_not_exist(store: &dyn Store, _: &View) {
    let missing = new_id();
    assert_eq!(
        store.get_role(ACCOUNT, &missing).await.expect("get"),
        None,
        "precondition"
    );
    let key = role_key(ACCOUNT, &missing);
    let e = err(store.insert_key(key.clone(), None).await);
    assert!(is_not_found(&e), "{e:?}");
    assert_eq!(get_key(store, ACCOUNT, &key.key_id).await, None);
    assert_eq!(store.list_keys(ACCOUNT, None, 10).await.expect("list"), []);

    // Another account's role does not exist here either.
    let theirs = role(OTHER, "theirs");
    store
        .create_role(theirs.clone(), None)
        .await
        .expect("create");
    insert(store, &role_key(OTHER, &theirs.role_id)).await;
    let e = err(store
        .insert_key(role_key(ACCOUNT, &theirs.role_id), None)
        .await);
    assert!(is_not_found(&e), "{e:?}");

    // System roles need no record.
    for system in ["owner", "operator", "viewer"] {
        insert(store, &role_key(ACCOUNT, system)).await;
    }
    assert_eq!(
        store
            .list_keys(ACCOUNT, None, 10)
            .await
            .expect("list")
            .len(),
        3
    );
}

async fn a_key_policy_round_trips_and_reaches_the_view(store: &dyn Store, view: &View) {
    use authcell::policy::KeyPolicy;
    assert_eq!(
        store.get_key_policy(ACCOUNT).await.expect("none yet"),
        KeyPolicy::default()
    );
    assert_eq!(view.key_policy(ACCOUNT), None);
    let policy = KeyPolicy {
        require_expiry: true,
        max_key_secs: Some(90 * 86_400),
        max_sdk_key_secs: None,
        max_disposable_secs: Some(600),
    };
    store
        .set_key_policy(ACCOUNT, &policy, None)
        .await
        .expect("set");
    assert_eq!(store.get_key_policy(ACCOUNT).await.expect("get"), policy);
    assert_eq!(view.key_policy(ACCOUNT).as_deref(), Some(&policy));
    // Per account.
    assert_eq!(
        store.get_key_policy("other").await.expect("other"),
        KeyPolicy::default()
    );
    assert_eq!(view.key_policy("other"), None);
    // An empty policy clears it.
    store
        .set_key_policy(ACCOUNT, &KeyPolicy::default(), None)
        .await
        .expect("clear");
    assert_eq!(
        store.get_key_policy(ACCOUNT).await.expect("get"),
        KeyPolicy::default()
    );
    assert_eq!(view.key_policy(ACCOUNT), None);
}
