//! Listing keys at scale: `authcell.v1.Admin/ListApiKeys` on a Redis-backed node, over 100 000
//! keys, while another client keeps adding and revoking keys.

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use authcell::proto::authcell::v1 as pb;
use authcell::proto::global_admin as ga;
use authcell::store::redis::{connect, RedisConfig, RedisStore};
use authcell::store::{KeyRecord, Store};
use authcell::verifier::view::View;
use tokio::task::JoinSet;
use tonic::transport::Channel;
use uuid::Uuid;

use crate::support::cells::{Node, NodeConfig};
use crate::support::key_request;
use crate::support::redis::{RedisOptions, RedisServer};
use crate::support::with_key;

const ACCOUNT: &str = "acme";
/// Keys stored before the listing starts (besides the bootstrap owner key).
const KEYS: usize = 100_000;
/// Concurrent `insert_key` calls while seeding.
const SEED_CONCURRENCY: usize = 64;
const PAGE: usize = 100;
/// Pages averaged at each end of the listing when comparing page times.
const TIMED_PAGES: usize = 10;

/// One page as the lister saw it.
struct Page {
    /// When the request was sent.
    sent: Instant,
    took: Duration,
    keys: Vec<pb::ApiKeyInfo>,
}

/// What the concurrent writer did.
#[derive(Default)]
struct Writes {
    created: Vec<String>,
    /// Revoked pre-existing key ids, with when the revocation had returned.
    revoked: Vec<(String, Instant)>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listing_100k_keys_on_redis_sees_each_once_in_order_while_keys_change() {
    let started = Instant::now();
    let redis = RedisServer::start(RedisOptions::default());
    let url = redis.url();
    let pem = authcell::keyring::generate_pem().expect("pem").to_string();
    let node = Node::start(NodeConfig::new(&pem, "a", &url, &url)).await;
    let (owner, owner_record) = node
        .authority
        .bootstrap(ACCOUNT, false)
        .await
        .expect("bootstrap");

    // Seeding through the store directly: through gRPC, 100 000 keys would take minutes.
    let seeding = Instant::now();
    let ids = seed(&url, &owner_record).await;
    let seeding = seeding.elapsed();
    let mut expected: BTreeSet<String> = ids.iter().cloned().collect();
    expected.insert(owner_record.key_id.clone());
    assert_eq!(expected.len(), KEYS + 1, "precondition: distinct ids");

    let channel = node.channel().await;
    let stop = Arc::new(AtomicBool::new(false));
    let writer = tokio::spawn(write_while_listing(
        channel.clone(),
        owner.clone(),
        ids,
        stop.clone(),
    ));

    let listing = Instant::now();
    let pages = tokio::time::timeout(Duration::from_secs(120), list_all(channel, &owner))
        .await
        .expect("the listing terminates");
    let listing = listing.elapsed();
    stop.store(true, Ordering::Relaxed);
    let writes = writer.await.expect("writer");

    // Page sizes: full pages, then one last page that is not empty.
    let (last, full) = pages.split_last().expect("at least one page");
    for (i, page) in full.iter().enumerate() {
        assert_eq!(page.keys.len(), PAGE, "page {i} of {}", pages.len());
    }
    assert!(
        (1..=PAGE).contains(&last.keys.len()),
        "last page: {} keys",
        last.keys.len()
    );

    // Strictly increasing ids across all pages: no key twice, none out of order.
    let listed: Vec<&str> = pages
        .iter()
        .flat_map(|p| p.keys.iter().map(|k| k.key_id.as_str()))
        .collect();
    if let Some(w) = listed.windows(2).find(|w| w[0] >= w[1]) {
        panic!("ids not strictly increasing: {} then {}", w[0], w[1]);
    }

    // Every key that existed before the listing started, exactly once.
    let listed_set: BTreeSet<String> = listed.iter().map(|s| (*s).to_owned()).collect();
    let missing: Vec<&String> = expected.difference(&listed_set).take(5).collect();
    assert!(
        missing.is_empty(),
        "{} pre-existing keys not listed, e.g. {missing:?}",
        expected.difference(&listed_set).count()
    );
    // Anything else listed was made by the writer during the listing.
    let created: BTreeSet<&String> = writes.created.iter().collect();
    let extra: Vec<&String> = listed_set
        .difference(&expected)
        .filter(|id| !created.contains(id))
        .collect();
    assert!(extra.is_empty(), "listed keys nobody made: {extra:?}");

    // A page requested after a revocation returned shows the key revoked.
    let shown: HashMap<&str, (Instant, i32)> = pages
        .iter()
        .flat_map(|p| {
            p.keys
                .iter()
                .map(move |k| (k.key_id.as_str(), (p.sent, k.status)))
        })
        .collect();
    let mut checked = 0;
    for (id, revoked_at) in &writes.revoked {
        let (sent, status) = shown[id.as_str()];
        if sent > *revoked_at {
            checked += 1;
            assert_eq!(status, pb::KeyStatus::Revoked as i32, "{id}");
        }
    }

    // Page cost does not grow with the position in a 100k listing.
    let mean = |pages: &[Page]| {
        pages.iter().map(|p| p.took).sum::<Duration>() / u32::try_from(pages.len()).expect("len")
    };
    let first = mean(&full[..TIMED_PAGES]);
    let end = mean(&full[full.len() - TIMED_PAGES..]);
    eprintln!(
        "listing at scale: seeded {KEYS} keys in {seeding:?}; listed {} keys in {} pages in \
         {listing:?}; writer created {} and revoked {} keys ({checked} revocations checked \
         in the listing); mean page time: first {TIMED_PAGES} {first:?}, last {TIMED_PAGES} \
         {end:?}; test total {:?}",
        listed.len(),
        pages.len(),
        writes.created.len(),
        writes.revoked.len(),
        started.elapsed()
    );
    assert!(
        !writes.created.is_empty() && !writes.revoked.is_empty(),
        "precondition: keys changed during the listing"
    );
    assert!(
        end <= first * 10,
        "pages at the end of the listing ({end:?}) cost more than 10x the first ({first:?})"
    );
}

/// Stores [`KEYS`] role-bound keys (new UUIDv7 ids) with [`SEED_CONCURRENCY`] inserts in
/// flight, on a store of its own over the node's Redis. Returns the ids in creation order.
async fn seed(url: &str, owner: &KeyRecord) -> Vec<String> {
    let conn = connect(url).await.expect("connect");
    let store = Arc::new(RedisStore::new(
        conn,
        RedisConfig::default(),
        Arc::new(View::new()),
    ));
    let ids: Vec<String> = (0..KEYS).map(|_| Uuid::now_v7().to_string()).collect();
    let mut inserts = JoinSet::new();
    for chunk in ids.chunks(KEYS.div_ceil(SEED_CONCURRENCY)) {
        let store = store.clone();
        let records: Vec<KeyRecord> = chunk
            .iter()
            .map(|id| KeyRecord {
                key_id: id.clone(),
                account: ACCOUNT.into(),
                description: "seeded".into(),
                role_id: Some("viewer".into()),
                inline: None,
                token_id: None,
                created_by: owner.key_id.clone(),
                issued_at: owner.issued_at,
                issued_at_ms: 0,
                ancestors: Vec::new(),
                origin_issued_at_ms: 0,
                expires_at: None,
                revoked_at: None,
                refresh_hash: None,
                rotation: Default::default(),
            })
            .collect();
        inserts.spawn(async move {
            for record in records {
                store.insert_key(record, None).await.expect("insert_key");
            }
        });
    }
    while let Some(done) = inserts.join_next().await {
        done.expect("insert task");
    }
    ids
}

/// Pages through ListApiKeys (limit 100, inactive keys included) to the end.
async fn list_all(channel: Channel, owner: &str) -> Vec<Page> {
    let mut admin = pb::admin_client::AdminClient::new(channel);
    let mut pages = Vec::new();
    let mut next_token = String::new();
    loop {
        let sent = Instant::now();
        let response = admin
            .list_api_keys(with_key(
                pb::ListApiKeysRequest {
                    limit: PAGE as u32,
                    next_token: next_token.clone(),
                    include_inactive: true,
                    expiring_within_seconds: 0,
                },
                owner,
            ))
            .await
            .expect("list_api_keys")
            .into_inner();
        pages.push(Page {
            sent,
            took: sent.elapsed(),
            keys: response.keys,
        });
        if response.next_token.is_empty() {
            return pages;
        }
        next_token = response.next_token;
    }
}

/// Until `stop`: creates a key, then revokes a pre-existing one, over gRPC, one call at a
/// time. Revokes from the end of `ids` backwards, so the lister meets the revoked keys after
/// their revocation.
async fn write_while_listing(
    channel: Channel,
    owner: String,
    ids: Vec<String>,
    stop: Arc<AtomicBool>,
) -> Writes {
    let mut admin = ga::global_admin_client::GlobalAdminClient::new(channel);
    let mut writes = Writes::default();
    let mut targets = ids.iter().rev().step_by(7);
    while !stop.load(Ordering::Relaxed) {
        let created = admin
            .generate_global_api_key(with_key(
                key_request("viewer", "made during the listing", None),
                &owner,
            ))
            .await
            .expect("generate key")
            .into_inner();
        writes
            .created
            .push(created.key_info.expect("key_info").key_id);
        let Some(target) = targets.next() else {
            continue;
        };
        admin
            .revoke_global_api_key(with_key(
                ga::RevokeGlobalApiKeyRequest {
                    key_id: target.clone(),
                },
                &owner,
            ))
            .await
            .expect("revoke key");
        writes.revoked.push((target.clone(), Instant::now()));
    }
    writes
}
