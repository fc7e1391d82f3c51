//! The event stream, and a Redis outage.

use super::*;

/// Where there is an event stream (Redis), every revocation returns its event id and the newest
/// one is the stream's latest; the embedded store has none and says so.
async fn event_ids_follow_revocations(store: &dyn Store, has_stream: bool) {
    assert_eq!(
        store.latest_event_id().await.expect("latest"),
        None,
        "nothing yet"
    );
    assert_eq!(store.nodes().await.expect("nodes"), [], "no node reported");
    let key = role_key(ACCOUNT, "viewer");
    insert(store, &key).await;
    let (_, first) = store.revoke_key(&key, NOW, None).await.expect("revoke");
    assert_eq!(first.is_some(), has_stream, "{first:?}");
    assert_eq!(store.latest_event_id().await.expect("latest"), first);

    let second = store
        .revoke_token_id(token_id_revocation("t", NOW + 60, None), NOW, 10, None)
        .await
        .expect("revoke token id");
    assert_eq!(second.is_some(), has_stream, "{second:?}");
    assert_eq!(store.latest_event_id().await.expect("latest"), second);
    if let (Some(first), Some(second)) = (&first, &second) {
        assert!(
            authcell::store::StreamId::cmp_text(first, second).is_lt(),
            "{first} < {second}"
        );
    }
    assert_eq!(store.nodes().await.expect("nodes"), []);
}

#[tokio::test]
async fn memory_has_no_event_stream() {
    let subject = memory_subject();
    event_ids_follow_revocations(&*subject.store, false).await;
}

#[tokio::test]
async fn redis_event_ids_follow_revocations() {
    let subject = redis_subject(Default::default()).await;
    event_ids_follow_revocations(&*subject.store, true).await;
}

// --- Redis outage -----------------------------------------------------------------------------

/// How long a mutation may take to report a Redis outage.
const PROMPT: Duration = Duration::from_secs(10);

/// Runs `call`, asserts it fails with `Unavailable` within [`PROMPT`], and returns how long it
/// took.
async fn unavailable<T: std::fmt::Debug>(
    what: &str,
    call: impl std::future::Future<Output = StoreResult<T>>,
) -> Duration {
    let started = Instant::now();
    let outcome = tokio::time::timeout(PROMPT, call)
        .await
        .unwrap_or_else(|_| panic!("{what}: no answer within {PROMPT:?} while Redis is down"));
    let took = started.elapsed();
    match outcome {
        Err(e) if is_unavailable(&e) => took,
        other => panic!("{what}: expected Unavailable, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_outage_makes_every_mutation_unavailable_promptly_and_the_store_recovers() {
    // AOF, so that after the restart the store shows what the failed mutations left: nothing.
    let mut subject = redis_subject(RedisOptions {
        aof: true,
        ..Default::default()
    })
    .await;
    let (store, view) = (&*subject.store, subject.view.clone());
    store.ensure_account(ACCOUNT, NOW).await.expect("account");
    let key = role_key(ACCOUNT, "viewer");
    insert(store, &key).await;
    let sdk = sdk_key(ACCOUNT, "h");
    insert(store, &sdk).await;
    let readers = role(ACCOUNT, "readers");
    store
        .create_role(readers.clone(), None)
        .await
        .expect("role");
    let bound = role_key(ACCOUNT, &readers.role_id);
    insert(store, &bound).await;

    subject.redis.as_mut().expect("redis").stop();
    let mut timings = Vec::new();
    let new_key = role_key(ACCOUNT, "viewer");
    let successor = sdk_key(ACCOUNT, "h2");
    let renamed = RoleRecord {
        name: "renamed".into(),
        permissions: PermissionSet::super_user(),
        ..readers.clone()
    };
    let other_role = role(ACCOUNT, "other");
    timings.push((
        "ensure_account",
        unavailable("ensure_account", store.ensure_account(OTHER, NOW)).await,
    ));
    timings.push((
        "insert_key",
        unavailable("insert_key", store.insert_key(new_key.clone(), None)).await,
    ));
    timings.push((
        "revoke_key",
        unavailable("revoke_key", store.revoke_key(&key, NOW, None)).await,
    ));
    timings.push((
        "revoke(token id)",
        unavailable(
            "revoke(token id)",
            store.revoke_token_id(token_id_revocation("tid", NOW + 60, None), NOW, 10, None),
        )
        .await,
    ));
    timings.push((
        "revoke(issued before)",
        unavailable(
            "revoke(issued before)",
            store.revoke_issued_before(ACCOUNT, Some(NOW), NOW, None),
        )
        .await,
    ));
    timings.push((
        "create_role",
        unavailable("create_role", store.create_role(other_role.clone(), None)).await,
    ));
    timings.push((
        "update_role",
        unavailable("update_role", store.update_role(renamed.clone(), None)).await,
    ));
    timings.push((
        "delete_role",
        unavailable(
            "delete_role",
            store.delete_role(ACCOUNT, &readers.role_id, NOW, None),
        )
        .await,
    ));
    timings.push((
        "rotate_refresh",
        unavailable(
            "rotate_refresh",
            store.rotate_refresh(ACCOUNT, &sdk.key_id, "h", successor.clone(), NOW, None),
        )
        .await,
    ));
    eprintln!("time to Unavailable with Redis down: {timings:?}");

    // A failed mutation leaves the view alone too.
    let none: [&String; 0] = [];
    assert!(!revoked_in_view(&view, ACCOUNT, &key));
    assert!(!revoked_in_view(&view, ACCOUNT, &sdk));
    assert!(!view.is_revoked(ACCOUNT, NOW - 1, none, Some("tid"), NOW));
    assert_eq!(view.watermark(ACCOUNT), None);
    assert_eq!(view.role(ACCOUNT, &other_role.role_id), None);
    assert_eq!(
        view.role(ACCOUNT, &readers.role_id).as_deref(),
        Some(&readers.permissions)
    );

    subject.redis.as_mut().expect("redis").start_again();
    // The same store, not recreated: its connection manager reconnects by itself.
    let deadline = Instant::now() + Duration::from_secs(10);
    let recovered_after = Instant::now();
    let is_new = loop {
        match store.ensure_account(OTHER, NOW).await {
            Ok(is_new) => break is_new,
            Err(e) => {
                assert!(is_unavailable(&e), "{e:?}");
                assert!(Instant::now() < deadline, "no reconnection: {e:?}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    };
    eprintln!(
        "reconnected {:?} after the restart",
        recovered_after.elapsed()
    );
    assert!(
        is_new,
        "the failed ensure_account did not create the account"
    );

    // Nothing the failed mutations attempted happened.
    assert_eq!(
        get_key(store, ACCOUNT, &key.key_id).await,
        Some(key.clone())
    );
    assert_eq!(
        get_key(store, ACCOUNT, &sdk.key_id).await,
        Some(sdk.clone())
    );
    assert_eq!(get_key(store, ACCOUNT, &new_key.key_id).await, None);
    assert_eq!(get_key(store, ACCOUNT, &successor.key_id).await, None);
    assert_eq!(
        store.list_roles(ACCOUNT).await.expect("roles"),
        vec![readers.clone()]
    );
    assert!(store.latest_event_id().await.expect("latest").is_some());

    // And every mutation works again.
    insert(store, &new_key).await;
    store.revoke_key(&key, NOW, None).await.expect("revoke");
    assert!(revoked_in_view(&view, ACCOUNT, &key));
    store
        .rotate_refresh(ACCOUNT, &sdk.key_id, "h", successor.clone(), NOW, None)
        .await
        .expect("rotate");
    store
        .update_role(renamed.clone(), None)
        .await
        .expect("update");
    store.revoke_key(&bound, NOW, None).await.expect("revoke");
    store
        .delete_role(ACCOUNT, &readers.role_id, NOW, None)
        .await
        .expect("delete");
    store.create_role(other_role, None).await.expect("create");
    store
        .revoke_issued_before(ACCOUNT, Some(NOW), NOW, None)
        .await
        .expect("issued before");
    assert_eq!(view.watermark(ACCOUNT), Some(NOW));
}
