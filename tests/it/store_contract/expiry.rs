//! The store contract for expiring keys: the once-only `key.expiring` audit event and the
//! window of keys that lapse soon (what the expiring-keys gauge counts).

use super::*;
use authcell::store::{AuditQuery, EXPIRY_WARNING_SECS};

contract!(
    a_key_entering_its_last_week_is_audited_once,
    keys_lapsing_reads_the_window_by_expiry_or_scheduled_revocation,
);

const DAY: u64 = 86_400;

/// A viewer key issued at `NOW` that expires after `lifetime` seconds.
fn expiring(lifetime: u64) -> KeyRecord {
    KeyRecord {
        issued_at: NOW,
        issued_at_ms: NOW * 1000,
        origin_issued_at_ms: NOW * 1000,
        expires_at: Some(NOW + lifetime),
        ..role_key(ACCOUNT, "viewer")
    }
}

async fn expiring_events(store: &dyn Store) -> Vec<String> {
    store
        .list_audit(
            ACCOUNT,
            &AuditQuery {
                limit: 1000,
                ..Default::default()
            },
        )
        .await
        .expect("audit")
        .into_iter()
        .filter(|a| a.action == "key.expiring")
        .inspect(|a| assert_eq!(a.actor, "system"))
        .map(|a| a.target)
        .collect()
}

async fn a_key_entering_its_last_week_is_audited_once(store: &dyn Store, view: &View) {
    let long = expiring(10 * DAY);
    let short = expiring(3 * DAY);
    let revoked = expiring(10 * DAY);
    let rotating = expiring(10 * DAY);
    let chained = KeyRecord {
        ancestors: vec![revoked.key_id.clone()],
        ..expiring(10 * DAY)
    };
    for key in [&long, &short, &revoked, &rotating, &chained] {
        insert(store, key).await;
    }
    store.revoke_key(&revoked, NOW, None).await.expect("revoke");
    store
        .rotate_key(
            &rotating,
            expiring(60 * DAY),
            NOW + 30 * DAY,
            NOW,
            None,
            &[],
        )
        .await
        .expect("rotate");
    // Not yet in the last week (10 days left).
    assert_eq!(store.warn_expiring(NOW).await.expect("warn"), 0);
    assert_eq!(expiring_events(store).await, Vec::<String>::new());
    // Three days on: the long key enters its last week. The short key was born in it (not
    // audited); the revoked one, the rotating one and the one whose maker was revoked are
    // skipped.
    let entered = NOW + 10 * DAY - EXPIRY_WARNING_SECS;
    assert_eq!(store.warn_expiring(entered - 1).await.expect("warn"), 0);
    assert_eq!(store.warn_expiring(entered).await.expect("warn"), 1);
    assert_eq!(expiring_events(store).await, vec![long.key_id.clone()]);
    // Once: later runs record nothing more.
    assert_eq!(store.warn_expiring(entered + 1).await.expect("again"), 0);
    assert_eq!(store.warn_expiring(entered + DAY).await.expect("again"), 0);
    assert_eq!(expiring_events(store).await, vec![long.key_id.clone()]);
    let _ = view;
}

async fn keys_lapsing_reads_the_window_by_expiry_or_scheduled_revocation(
    store: &dyn Store,
    _: &View,
) {
    // Made for an hour: lapses by design, not counted.
    let hour = expiring(3600);
    let days = expiring(2 * DAY);
    let far = expiring(40 * DAY);
    let never = role_key(ACCOUNT, "viewer");
    let rotated = role_key(ACCOUNT, "viewer");
    for key in [&hour, &days, &far, &never, &rotated] {
        insert(store, key).await;
    }
    // A never-expiring key rotated with a 2-day overlap lapses at the end of it.
    store
        .rotate_key(
            &rotated,
            role_key(ACCOUNT, "viewer"),
            NOW + 2 * DAY,
            NOW,
            None,
            &[],
        )
        .await
        .expect("rotate");
    let mut ids: Vec<String> = store
        .keys_lapsing(NOW, 30 * DAY)
        .await
        .expect("window")
        .into_iter()
        .map(|k| k.key_id)
        .collect();
    ids.sort();
    let mut want = vec![days.key_id.clone(), rotated.key_id.clone()];
    want.sort();
    assert_eq!(ids, want);
    // Past their time, keys leave the window.
    let later: Vec<String> = store
        .keys_lapsing(NOW + 3 * DAY, 30 * DAY)
        .await
        .expect("window")
        .into_iter()
        .map(|k| k.key_id)
        .collect();
    assert_eq!(later, Vec::<String>::new());
    let all: Vec<String> = store
        .keys_lapsing(NOW, 50 * DAY)
        .await
        .expect("window")
        .into_iter()
        .map(|k| k.key_id)
        .collect();
    assert!(all.contains(&far.key_id), "{all:?}");
}

/// Keys stored before the expiry indexes existed are added to them once, at a node's start:
/// the gauge then counts them and the last-week warning covers them; the marker stops a second
/// pass.
#[tokio::test]
async fn redis_indexes_keys_stored_before_the_expiry_indexes_once() {
    let redis = RedisServer::start(Default::default());
    let view = Arc::new(View::new());
    let conn = connect(&redis.url()).await.expect("connect to redis");
    let store = RedisStore::new(conn.clone(), RedisConfig::default(), view);
    store.ensure_account(ACCOUNT, NOW).await.expect("account");
    let old = expiring(10 * DAY);
    insert(&store, &old).await;
    // As a version before the indexes left it: no index entries, no marker.
    let mut raw = conn.clone();
    let _: () = ::redis::cmd("DEL")
        .arg("authcell:lapses")
        .arg("authcell:expiring")
        .arg("authcell:indexed")
        .query_async(&mut raw)
        .await
        .expect("forget the indexes");
    assert_eq!(
        store.keys_lapsing(NOW, 30 * DAY).await.expect("window"),
        Vec::<KeyRecord>::new()
    );
    assert_eq!(store.index_existing_keys(NOW).await.expect("index"), 1);
    let found = store.keys_lapsing(NOW, 30 * DAY).await.expect("window");
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].key_id, old.key_id);
    let entered = NOW + 10 * DAY - EXPIRY_WARNING_SECS;
    assert_eq!(store.warn_expiring(entered).await.expect("warn"), 1);
    // Done once: the marker stops another pass (which would find the warned key again).
    assert_eq!(store.index_existing_keys(NOW).await.expect("again"), 0);
    assert_eq!(store.warn_expiring(entered + 1).await.expect("warn"), 0);
}
