//! The store contract: one behavioural suite, written once against `&dyn Store` (and the live
//! [`View`] the store feeds), run against the embedded [`MemoryStore`] and the [`RedisStore`]
//! (each Redis test on its own `redis-server`). Both must behave the same; where they may not
//! (the event stream), the difference is stated in the test.
//!
//! Test names: `store_contract::<topic>::memory::<behaviour>` and
//! `store_contract::<topic>::redis::<behaviour>`, topics: keys, roles, refresh, stream, expiry.

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
        rotation: Default::default(),
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
        rotation: Default::default(),
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

/// The numbers in a message, once `skip` (an id, which may contain digits) is removed.
fn numbers_in(message: &str, skip: &str) -> Vec<u64> {
    message
        .replace(skip, " ")
        .split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().expect("number"))
        .collect()
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

mod expiry;
mod keys;
mod refresh;
mod roles;
mod stream;
