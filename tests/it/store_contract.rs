//! The store contract: one behavioural suite, written once against `&dyn Store` (and the live
//! [`View`] the store feeds), run against the embedded [`MemoryStore`] and the [`RedisStore`]
//! (each Redis test on its own `redis-server`). Both must behave the same; where they may not
//! (the event stream), the difference is stated in the test.
//!
//! Test names: `store_contract::memory::<behaviour>` and `store_contract::redis::<behaviour>`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use authcell::policy::{BytesSel, Condition, Grant, NameSel, Ops, PermissionSet, Rule, TextSel};
use authcell::store::memory::MemoryStore;
use authcell::store::redis::{connect, RedisConfig, RedisStore};
use authcell::store::{KeyRecord, RoleRecord, Store, StoreError, StoreResult};
use authcell::verifier::view::{Event, View};
use uuid::Uuid;

use crate::support::redis::{RedisOptions, RedisServer};

/// The time every test passes as `now`.
const NOW: u64 = 1_700_000_000;
const ACCOUNT: &str = "acme";
const OTHER: &str = "globex";

/// A store under test and the view it feeds. The Redis server, if any, lives as long as this.
struct Subject {
    store: Box<dyn Store>,
    view: Arc<View>,
    redis: Option<RedisServer>,
}

fn memory_subject() -> Subject {
    let view = Arc::new(View::new());
    Subject {
        store: Box::new(MemoryStore::new(view.clone())),
        view,
        redis: None,
    }
}

async fn redis_subject(options: RedisOptions) -> Subject {
    let redis = RedisServer::start(options);
    let view = Arc::new(View::new());
    let conn = connect(&redis.url()).await.expect("connect to redis");
    Subject {
        store: Box::new(RedisStore::new(conn, RedisConfig::default(), view.clone())),
        view,
        redis: Some(redis),
    }
}

/// Instantiates every contract function once per store.
macro_rules! contract {
    ($($name:ident),* $(,)?) => {
        mod memory {
            $(
                #[tokio::test]
                async fn $name() {
                    let subject = super::memory_subject();
                    super::$name(&*subject.store, &subject.view).await;
                }
            )*
        }
        mod redis {
            $(
                #[tokio::test]
                async fn $name() {
                    let subject = super::redis_subject(Default::default()).await;
                    super::$name(&*subject.store, &subject.view).await;
                }
            )*
        }
    };
}

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
    roles_are_created_read_listed_and_followed_by_the_view,
    role_names_are_unique_per_account,
    update_role_replaces_and_renames_but_not_onto_a_taken_name,
    updating_a_missing_role_is_not_found,
    a_role_used_by_live_keys_cannot_be_deleted,
    only_unexpired_keys_block_role_deletion,
    deleting_an_unknown_role_is_not_found,
    a_key_cannot_be_bound_to_a_custom_role_that_does_not_exist,
    rotate_refresh_replaces_the_key_and_works_once,
    rotate_refresh_with_a_wrong_hash_is_refused,
    rotate_refresh_of_a_revoked_key_is_refused,
    rotate_refresh_of_an_unknown_key_is_not_found,
    rotate_refresh_onto_an_existing_key_id_changes_nothing,
    a_key_revoked_by_refresh_no_longer_blocks_role_deletion,
    a_key_inserted_by_refresh_blocks_role_deletion,
    concurrent_refreshes_with_one_token_succeed_once,
    a_request_id_stores_one_key_and_replays_its_receipt,
    creating_a_role_id_twice_is_already_exists,
);

// --- Builders and assertions ----------------------------------------------------------------

fn new_id() -> String {
    Uuid::now_v7().to_string()
}

/// A key bound to `role_id`, issued at `NOW - 100`, never expiring.
fn role_key(account: &str, role_id: &str) -> KeyRecord {
    KeyRecord {
        key_id: new_id(),
        account: account.into(),
        description: "role key".into(),
        role_id: Some(role_id.into()),
        inline: None,
        token_id: None,
        created_by: "bootstrap".into(),
        issued_at: NOW - 100,
        issued_at_ms: 0,
        ancestors: Vec::new(),
        origin_issued_at_ms: 0,
        expires_at: None,
        revoked_at: None,
        refresh_hash: None,
    }
}

/// An SDK-made key: inline permissions, a token id, an expiry and a refresh hash.
fn sdk_key(account: &str, refresh_hash: &str) -> KeyRecord {
    KeyRecord {
        key_id: new_id(),
        account: account.into(),
        description: "SDK key: déjà vu, 鍵 \"quoted\"".into(),
        role_id: None,
        inline: Some(inline_permissions()),
        token_id: Some("tid-7".into()),
        created_by: new_id(),
        issued_at: NOW - 10,
        issued_at_ms: 0,
        ancestors: Vec::new(),
        origin_issued_at_ms: 0,
        expires_at: Some(NOW + 3600),
        revoked_at: None,
        refresh_hash: Some(refresh_hash.into()),
    }
}

fn inline_permissions() -> PermissionSet {
    PermissionSet {
        grant: Grant::Rules(vec![
            Rule::Cache {
                ops: Ops::READ.union(Ops::LIST),
                cache: NameSel::Name("sessions".into()),
                item: BytesSel::Prefix(vec![0, 255, b'u']),
            },
            Rule::Topic {
                ops: Ops::WRITE,
                cache: NameSel::All,
                topic: TextSel::Prefix("news/".into()),
            },
            Rule::Function {
                ops: Ops::INVOKE,
                cache: NameSel::Name("fn".into()),
                function: TextSel::Name("resize".into()),
            },
        ]),
        conditions: vec![Condition::IpFilter(vec![
            "10.0.0.0/8".parse().expect("cidr"),
            "2001:db8::/32".parse().expect("cidr"),
        ])],
    }
}

fn cache_reader(cache: &str) -> PermissionSet {
    PermissionSet::rules(vec![Rule::Cache {
        ops: Ops::READ,
        cache: NameSel::Name(cache.into()),
        item: BytesSel::All,
    }])
}

fn role(account: &str, name: &str) -> RoleRecord {
    RoleRecord {
        role_id: new_id(),
        account: account.into(),
        name: name.into(),
        description: format!("the {name} role"),
        permissions: cache_reader(name),
        created_at: NOW - 50,
        updated_at: NOW - 50,
    }
}

/// The error of a call that must fail.
fn err<T: std::fmt::Debug>(result: StoreResult<T>) -> StoreError {
    result.expect_err("the call must fail")
}

fn is_not_found(e: &StoreError) -> bool {
    matches!(e, StoreError::NotFound(_))
}
fn is_already_exists(e: &StoreError) -> bool {
    matches!(e, StoreError::AlreadyExists(_))
}
fn is_failed_precondition(e: &StoreError) -> bool {
    matches!(e, StoreError::FailedPrecondition(_))
}
fn is_unavailable(e: &StoreError) -> bool {
    matches!(e, StoreError::Unavailable(_))
}

fn ids(keys: &[KeyRecord]) -> Vec<String> {
    keys.iter().map(|k| k.key_id.clone()).collect()
}

fn revoked_in_view(view: &View, account: &str, key: &KeyRecord) -> bool {
    view.is_revoked(account, key.origin_ms(), [&key.key_id], None, NOW)
}

async fn get_key(store: &dyn Store, account: &str, key_id: &str) -> Option<KeyRecord> {
    store.get_key(account, key_id).await.expect("get_key")
}

async fn insert(store: &dyn Store, key: &KeyRecord) {
    store
        .insert_key(key.clone(), None)
        .await
        .expect("insert_key");
}

// --- Accounts and keys ------------------------------------------------------------------------

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
    let e = err(store.revoke_key(OTHER, &key.key_id, NOW, None).await);
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
    store
        .revoke_key(ACCOUNT, &revoked.key_id, NOW, None)
        .await
        .expect("revoke");
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

    let (record, _) = store
        .revoke_key(ACCOUNT, &key.key_id, NOW, None)
        .await
        .expect("revoke");
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
        .revoke_key(ACCOUNT, &key.key_id, NOW + 50, None)
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
    let e = err(store.revoke_key(ACCOUNT, &unknown, NOW, None).await);
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

/// A token-id revocation event of `ACCOUNT`.
fn token_id_revocation(token_id: &str, until: u64, by: Option<&str>) -> Event {
    Event::TokenIdRevoked {
        account: ACCOUNT.into(),
        token_id: token_id.into(),
        until,
        by: by.map(str::to_owned),
    }
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

// --- Roles ------------------------------------------------------------------------------------

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

/// The numbers in a message, once `skip` (an id, which may contain digits) is removed.
fn numbers_in(message: &str, skip: &str) -> Vec<u64> {
    message
        .replace(skip, " ")
        .split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().expect("number"))
        .collect()
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
    store
        .revoke_key(ACCOUNT, &revoked.key_id, NOW, None)
        .await
        .expect("revoke");
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

    store
        .revoke_key(ACCOUNT, &live[0].key_id, NOW, None)
        .await
        .expect("revoke");
    let e = err(store
        .delete_role(ACCOUNT, &readers.role_id, NOW, None)
        .await);
    assert!(is_failed_precondition(&e), "one live key left: {e:?}");
    store
        .revoke_key(ACCOUNT, &live[1].key_id, NOW, None)
        .await
        .expect("revoke");

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

// --- Refresh ----------------------------------------------------------------------------------

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
    store
        .revoke_key(ACCOUNT, &old.key_id, NOW, None)
        .await
        .expect("revoke");
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
        .revoke_key(ACCOUNT, &existing.key_id, NOW - 5, None)
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

// --- The event stream -------------------------------------------------------------------------

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
    let (_, first) = store
        .revoke_key(ACCOUNT, &key.key_id, NOW, None)
        .await
        .expect("revoke");
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
        unavailable(
            "revoke_key",
            store.revoke_key(ACCOUNT, &key.key_id, NOW, None),
        )
        .await,
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
    store
        .revoke_key(ACCOUNT, &key.key_id, NOW, None)
        .await
        .expect("revoke");
    assert!(revoked_in_view(&view, ACCOUNT, &key));
    store
        .rotate_refresh(ACCOUNT, &sdk.key_id, "h", successor.clone(), NOW, None)
        .await
        .expect("rotate");
    store
        .update_role(renamed.clone(), None)
        .await
        .expect("update");
    store
        .revoke_key(ACCOUNT, &bound.key_id, NOW, None)
        .await
        .expect("revoke");
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
