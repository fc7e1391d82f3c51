//! Redis as the system of record, and revocation across regional cells, against real
//! `redis-server` processes: one primary and two replicas (cells a and b), one authcell node per
//! cell reading its own replica.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use authcell::authority::Authority;
use authcell::clock::SystemClock;
use authcell::keyring::KeyRing;
use authcell::node::{self, NodeOptions, RedisSettings};
use authcell::proto::authcell::v1 as pb;
use authcell::proto::global_admin as ga;
use authcell::server;
use authcell::store::redis::sync::SyncHandle;
use authcell::verifier::StalePolicy;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tonic::transport::Channel;
use tonic::Code;

use crate::common::statements::read_cache;
use crate::common::*;
use crate::redis_env::{RedisOptions, RedisServer, Topology, SENTINEL_MASTER};

const PREFIX: &str = "authcell:";

/// One authcell node of one cell, serving gRPC on a free port.
pub struct Node {
    pub addr: SocketAddr,
    pub authority: Arc<Authority>,
    sync: Option<SyncHandle>,
    shutdown: Option<oneshot::Sender<()>>,
    handle: Option<tokio::task::JoinHandle<()>>,
}

pub struct NodeConfig<'a> {
    pub pem: &'a str,
    pub cell: &'a str,
    pub primary: &'a str,
    pub replica: &'a str,
    pub vend_rate: u32,
    pub stream_max_len: u64,
    pub stale_policy: StalePolicy,
    pub max_staleness: Duration,
    pub max_confirmations: usize,
    /// `--min-replica-acks` (`None`: automatic).
    pub min_replica_acks: Option<u32>,
    /// `--redis-sentinel` (master [`SENTINEL_MASTER`]): find the primary through these
    /// instead of `primary`.
    pub sentinels: Option<&'a [String]>,
}

impl<'a> NodeConfig<'a> {
    pub fn new(pem: &'a str, cell: &'a str, primary: &'a str, replica: &'a str) -> Self {
        NodeConfig {
            pem,
            cell,
            primary,
            replica,
            vend_rate: 0,
            stream_max_len: 100_000,
            stale_policy: StalePolicy::Serve,
            max_staleness: Duration::from_secs(30),
            max_confirmations: authcell::authority::DEFAULT_MAX_CONFIRMATIONS,
            min_replica_acks: None,
            sentinels: None,
        }
    }
}

impl Node {
    pub async fn start(config: NodeConfig<'_>) -> Node {
        let ring = KeyRing::from_pem("test", config.pem).expect("signing key");
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let options = NodeOptions {
            cell: config.cell.into(),
            endpoint: addr.to_string(),
            vend_rate_per_second: config.vend_rate,
            vend_burst: 3,
            max_confirmations: config.max_confirmations,
            ..Default::default()
        };
        let settings = RedisSettings {
            primary: match config.sentinels {
                Some(sentinels) => authcell::store::redis::link::Target::Sentinel {
                    sentinels: sentinels.to_vec(),
                    master: SENTINEL_MASTER.into(),
                    username: None,
                    password: None,
                    db: 0,
                },
                None => authcell::store::redis::link::Target::Url(config.primary.into()),
            },
            read_url: Some(config.replica.into()),
            prefix: PREFIX.into(),
            stream_max_len: config.stream_max_len,
            max_staleness: config.max_staleness,
            stale_policy: config.stale_policy,
            min_replica_acks: config.min_replica_acks,
            replica_ack_timeout: node::DEFAULT_REPLICA_ACK_TIMEOUT,
        };
        let redis_node = node::with_redis(ring, &options, &settings)
            .await
            .expect("node with redis");
        let authority = redis_node.authority.clone();
        let (tx, rx) = oneshot::channel::<()>();
        let served = authority.clone();
        let handle = tokio::spawn(async move {
            server::run(listener, served, server::Serving::default(), async {
                let _ = rx.await;
            })
            .await
            .expect("server");
        });
        let node = Node {
            addr,
            authority,
            sync: Some(redis_node.sync),
            shutdown: Some(tx),
            handle: Some(handle),
        };
        node.wait_until_serving().await;
        node
    }

    async fn wait_until_serving(&self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !self.authority.verifier().is_serving() {
            assert!(Instant::now() < deadline, "node did not load its view");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    pub async fn channel(&self) -> Channel {
        Channel::from_shared(format!("http://{}", self.addr))
            .expect("url")
            .connect()
            .await
            .expect("connect")
    }

    pub async fn authorize(&self, request: pb::AuthorizeRequest) -> pb::AuthorizeResponse {
        pb::verifier_client::VerifierClient::new(self.channel().await)
            .authorize(request)
            .await
            .expect("authorize")
            .into_inner()
    }

    pub async fn create_key(
        &self,
        caller: &str,
        role_id: &str,
    ) -> Result<(String, String), tonic::Status> {
        let response = ga::global_admin_client::GlobalAdminClient::new(self.channel().await)
            .generate_global_api_key(with_key(key_request(role_id, "cell test", None), caller))
            .await?
            .into_inner();
        Ok((response.api_key, response.key_info.expect("info").key_id))
    }

    /// Revokes a key; returns the revocation id from the response metadata.
    pub async fn revoke_key(&self, caller: &str, key_id: &str) -> Result<String, tonic::Status> {
        let response = ga::global_admin_client::GlobalAdminClient::new(self.channel().await)
            .revoke_global_api_key(with_key(
                ga::RevokeGlobalApiKeyRequest {
                    key_id: key_id.into(),
                },
                caller,
            ))
            .await?;
        Ok(response
            .metadata()
            .get("authcell-revocation-id")
            .and_then(|v| v.to_str().ok())
            .expect("revocation id metadata")
            .to_owned())
    }

    /// ConfirmRevocation of `revocation_id`, waiting up to 5 s.
    pub async fn confirm(
        &self,
        caller: &str,
        revocation_id: String,
    ) -> pb::ConfirmRevocationResponse {
        self.admin()
            .await
            .confirm_revocation(with_key(
                pb::ConfirmRevocationRequest {
                    revocation_id,
                    timeout_ms: 5000,
                },
                caller,
            ))
            .await
            .expect("confirm")
            .into_inner()
    }

    pub async fn admin(&self) -> pb::admin_client::AdminClient<Channel> {
        pb::admin_client::AdminClient::new(self.channel().await)
    }

    pub async fn mint(&self, caller: &str, token_id: &str) -> String {
        authcell::proto::token::token_client::TokenClient::new(self.channel().await)
            .generate_disposable_token(authcell::proto::token::GenerateDisposableTokenRequest {
                expires: Some(
                    authcell::proto::token::generate_disposable_token_request::Expires {
                        valid_for_seconds: 600,
                    },
                ),
                auth_token: caller.into(),
                permissions: Some(explicit(vec![read_cache("c")])),
                token_id: token_id.into(),
            })
            .await
            .expect("mint")
            .into_inner()
            .api_key
    }

    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(h) = self.handle.take() {
            let _ = h.await;
        }
        if let Some(sync) = self.sync.take() {
            sync.stop().await;
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(h) = self.handle.take() {
            h.abort();
        }
    }
}

pub(crate) fn read(credential: &str) -> pb::AuthorizeRequest {
    cache_check(credential, pb::Action::CacheRead, "c", b"k")
}

/// Polls `node` until `credential` is refused as revoked, or panics after `within`.
pub(crate) async fn until_revoked(node: &Node, credential: &str, within: Duration) -> Duration {
    let started = Instant::now();
    loop {
        let verdict = node.authorize(read(credential)).await;
        if verdict.reason == pb::Reason::Revoked as i32 {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < within,
            "not revoked within {within:?}: {verdict:?}"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

pub(crate) fn signing_pem() -> String {
    authcell::keyring::generate_pem().expect("pem").to_string()
}

pub(crate) struct Cells {
    pub(crate) topology: Topology,
    pub(crate) pem: String,
    pub(crate) a: Node,
    pub(crate) b: Node,
    pub(crate) owner: String,
}

impl Cells {
    pub(crate) async fn start(aof: bool) -> Cells {
        Self::start_on(Topology::start(aof), |c| c, |c| c).await
    }

    /// Two cells on `topology`, each node's configuration adjusted by its function, and an
    /// owner key of account `acme`.
    pub(crate) async fn start_on(
        topology: Topology,
        tweak_a: impl for<'c> FnOnce(NodeConfig<'c>) -> NodeConfig<'c>,
        tweak_b: impl for<'c> FnOnce(NodeConfig<'c>) -> NodeConfig<'c>,
    ) -> Cells {
        let pem = signing_pem();
        let primary = topology.primary.url();
        let (replica_a, replica_b) = (topology.replica_a.url(), topology.replica_b.url());
        let a = Node::start(tweak_a(NodeConfig::new(&pem, "a", &primary, &replica_a))).await;
        let b = Node::start(tweak_b(NodeConfig::new(&pem, "b", &primary, &replica_b))).await;
        let (owner, _) = a
            .authority
            .bootstrap("acme", false)
            .await
            .expect("bootstrap");
        Cells {
            topology,
            pem,
            a,
            b,
            owner,
        }
    }

    pub(crate) async fn restart_b(&mut self) {
        let b = std::mem::replace(
            &mut self.b,
            Node::start(NodeConfig::new(
                &self.pem,
                "b",
                &self.topology.primary.url(),
                &self.topology.replica_b.url(),
            ))
            .await,
        );
        b.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_revoked_in_cell_a_is_refused_in_cell_b_within_a_second() {
    let cells = Cells::start(false).await;
    let (key, key_id) = cells
        .a
        .create_key(&cells.owner, "operator")
        .await
        .expect("key");
    assert!(
        cells.b.authorize(read(&key)).await.allowed,
        "precondition: b allows it"
    );
    cells
        .a
        .revoke_key(&cells.owner, &key_id)
        .await
        .expect("revoke on a");
    // a refuses at once: its own mutation is applied to its view before the call returns.
    assert_eq!(
        cells.a.authorize(read(&key)).await.reason,
        pb::Reason::Revoked as i32
    );
    until_revoked(&cells.b, &key, Duration::from_secs(1)).await;
    // Every RPC on b refuses it too.
    let status = cells
        .b
        .create_key(&key, "viewer")
        .await
        .expect_err("revoked");
    assert_eq!(status.code(), Code::Unauthenticated);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cell_whose_replica_was_down_catches_up_with_every_revocation() {
    let mut cells = Cells::start(false).await;
    let mut credentials = Vec::new();
    for _ in 0..5 {
        credentials.push(
            cells
                .a
                .create_key(&cells.owner, "viewer")
                .await
                .expect("key"),
        );
    }
    let (operator, _) = cells
        .a
        .create_key(&cells.owner, "operator")
        .await
        .expect("operator");
    let token = cells.a.mint(&operator, "tid-1").await;
    cells.topology.replica_b.stop();
    for (_, key_id) in &credentials {
        cells
            .a
            .revoke_key(&cells.owner, key_id)
            .await
            .expect("revoke");
    }
    cells
        .a
        .admin()
        .await
        .revoke_token(with_key(
            pb::RevokeTokenRequest {
                token: Some(pb::revoke_token_request::Token::TokenId("tid-1".into())),
                expires_at_epoch_seconds: 0,
            },
            &cells.owner,
        ))
        .await
        .expect("revoke token id");
    // b cannot read its replica, yet keeps answering from its view (serve policy).
    let verdict = cells.b.authorize(read(&credentials[0].0)).await;
    assert!(verdict.allowed, "b still has the old state: {verdict:?}");
    cells.topology.replica_b.start_again();
    for (key, _) in &credentials {
        until_revoked(&cells.b, key, Duration::from_secs(10)).await;
    }
    until_revoked(&cells.b, &token, Duration::from_secs(5)).await;

    // A node restarted while revocations happen misses none either.
    let more: Vec<_> = {
        let mut v = Vec::new();
        for _ in 0..3 {
            v.push(
                cells
                    .a
                    .create_key(&cells.owner, "viewer")
                    .await
                    .expect("key"),
            );
        }
        v
    };
    let revoking = {
        let owner = cells.owner.clone();
        let a_addr = cells.a.addr;
        let ids: Vec<String> = more.iter().map(|(_, id)| id.clone()).collect();
        tokio::spawn(async move {
            let channel = Channel::from_shared(format!("http://{a_addr}"))
                .expect("url")
                .connect()
                .await
                .expect("connect");
            let mut client = ga::global_admin_client::GlobalAdminClient::new(channel);
            for id in ids {
                client
                    .revoke_global_api_key(with_key(
                        ga::RevokeGlobalApiKeyRequest { key_id: id },
                        &owner,
                    ))
                    .await
                    .expect("revoke");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    };
    cells.restart_b().await;
    revoking.await.expect("revocations");
    for (key, _) in more.iter().chain(credentials.iter()) {
        until_revoked(&cells.b, key, Duration::from_secs(5)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_is_lost_when_the_primary_restarts_with_aof() {
    let mut cells = Cells::start(true).await;
    let (kept, _) = cells
        .a
        .create_key(&cells.owner, "viewer")
        .await
        .expect("key");
    let (gone, gone_id) = cells
        .a
        .create_key(&cells.owner, "viewer")
        .await
        .expect("key");
    cells
        .a
        .revoke_key(&cells.owner, &gone_id)
        .await
        .expect("revoke");
    let role = cells
        .a
        .admin()
        .await
        .create_role(with_key(
            pb::CreateRoleRequest {
                name: "reader".into(),
                permissions: Some(reader_role()),
                description: String::new(),
            },
            &cells.owner,
        ))
        .await
        .expect("role")
        .into_inner()
        .role
        .expect("role");
    let (role_key, _) = cells
        .a
        .create_key(&cells.owner, &role.role_id)
        .await
        .expect("role key");

    cells.topology.primary.stop();
    cells.topology.primary.start_again();
    cells.topology.wait_for_links_up();
    // A fresh node loads everything from the restarted primary's replica.
    cells.restart_b().await;
    assert!(cells.b.authorize(read(&kept)).await.allowed);
    assert_eq!(
        cells.b.authorize(read(&gone)).await.reason,
        pb::Reason::Revoked as i32
    );
    assert!(
        cells.b.authorize(read(&role_key)).await.allowed,
        "the role survived"
    );
    let keys = cells
        .b
        .admin()
        .await
        .list_api_keys(with_key(
            pb::ListApiKeysRequest {
                include_inactive: true,
                ..Default::default()
            },
            &cells.owner,
        ))
        .await
        .expect("list")
        .into_inner()
        .keys;
    assert_eq!(keys.len(), 4, "owner, kept, gone, role key: {keys:?}");
}

fn reader_role() -> authcell::proto::permission_rules::PermissionSet {
    use authcell::proto::permission_rules as pr;
    pr::PermissionSet {
        kind: Some(pr::permission_set::Kind::Explicit(
            pr::ExplicitPermissions {
                rules: vec![pr::Rule {
                    kind: Some(pr::rule::Kind::CacheRule(pr::rule::CacheRule {
                        permissions: vec![pr::CacheApiPermissions::CacheRead as i32],
                        cache: Some(pr::rule::cache_rule::Cache::AllCaches(pr::All {})),
                        cache_item: Some(pr::rule::cache_rule::CacheItem::AllItems(pr::All {})),
                    })),
                }],
            },
        )),
        conditions: vec![],
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_reloads_in_full_when_the_stream_was_trimmed_past_it() {
    let topology = Topology::start(false);
    // Small stream nodes, so MAXLEN ~ trims promptly.
    topology
        .primary
        .command(&["CONFIG", "SET", "stream-node-max-entries", "4"]);
    let pem = signing_pem();
    let primary = topology.primary.url();
    let (url_a, url_b) = (topology.replica_a.url(), topology.replica_b.url());
    let mut small = NodeConfig::new(&pem, "a", &primary, &url_a);
    small.stream_max_len = 8;
    let a = Node::start(small).await;
    let mut b_config = NodeConfig::new(&pem, "b", &primary, &url_b);
    b_config.stream_max_len = 8;
    let mut topology = topology;
    let b = Node::start(b_config).await;
    let (owner, _) = a
        .authority
        .bootstrap("acme", false)
        .await
        .expect("bootstrap");
    let mut keys = Vec::new();
    for _ in 0..40 {
        keys.push(a.create_key(&owner, "viewer").await.expect("key"));
    }
    let before = b.sync_position();
    topology.replica_b.stop();
    for (_, id) in &keys {
        a.revoke_key(&owner, id).await.expect("revoke");
    }
    let len: usize = topology
        .primary
        .command(&["XLEN", "authcell:events"])
        .trim()
        .parse()
        .expect("xlen");
    assert!(
        len < 40,
        "precondition: the stream was trimmed ({len} entries left)"
    );
    topology.replica_b.start_again();
    for (key, _) in &keys {
        until_revoked(&b, key, Duration::from_secs(10)).await;
    }
    assert_ne!(b.sync_position(), before);
}

impl Node {
    fn sync_position(&self) -> String {
        self.sync.as_ref().map(|s| s.position()).unwrap_or_default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_redis_down_checks_go_on_mutations_are_unavailable_and_state_is_exact_after() {
    let mut redis = RedisServer::start(RedisOptions {
        aof: true,
        ..RedisOptions::default()
    });
    let pem = signing_pem();
    let url = redis.url();
    let a = Node::start(NodeConfig::new(&pem, "a", &url, &url)).await;
    let (owner, _) = a
        .authority
        .bootstrap("acme", false)
        .await
        .expect("bootstrap");
    let (live, _) = a.create_key(&owner, "viewer").await.expect("key");
    let (dead, dead_id) = a.create_key(&owner, "viewer").await.expect("key");
    a.revoke_key(&owner, &dead_id).await.expect("revoke");

    redis.stop();
    assert!(
        a.authorize(read(&live)).await.allowed,
        "checks go on from the view"
    );
    assert_eq!(
        a.authorize(read(&dead)).await.reason,
        pb::Reason::Revoked as i32
    );
    let status = a
        .create_key(&owner, "viewer")
        .await
        .expect_err("redis is down");
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    assert!(
        status.message().contains("nothing was changed"),
        "{status:?}"
    );
    let (_, live_id) = {
        let keys = list_all(&a, &owner).await;
        assert!(keys.is_err(), "listing needs the store");
        (live.clone(), String::new())
    };
    let _ = live_id;
    let status = a
        .revoke_key(&owner, "01a20418-2b4d-7716-9f1c-e5698ea26e22")
        .await
        .expect_err("down");
    assert_eq!(status.code(), Code::Unavailable);

    redis.start_again();
    // The node reconnects by itself.
    let deadline = Instant::now() + Duration::from_secs(10);
    let (after, _) = loop {
        match a.create_key(&owner, "viewer").await {
            Ok(created) => break created,
            Err(status) => {
                assert_eq!(status.code(), Code::Unavailable, "{status:?}");
                assert!(Instant::now() < deadline, "no reconnection: {status:?}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    };
    assert!(a.authorize(read(&after)).await.allowed);
    let keys = list_all(&a, &owner).await.expect("list");
    // Exactly the mutations that succeeded: owner, live, dead (revoked), after.
    assert_eq!(keys.len(), 4, "{keys:?}");
    let revoked: Vec<_> = keys
        .iter()
        .filter(|k| k.status == pb::KeyStatus::Revoked as i32)
        .map(|k| k.key_id.clone())
        .collect();
    assert_eq!(revoked, vec![dead_id]);
}

async fn list_all(node: &Node, owner: &str) -> Result<Vec<pb::ApiKeyInfo>, tonic::Status> {
    let mut out = Vec::new();
    let mut next = String::new();
    let mut admin = node.admin().await;
    loop {
        let page = admin
            .list_api_keys(with_key(
                pb::ListApiKeysRequest {
                    limit: 100,
                    next_token: next.clone(),
                    include_inactive: true,
                },
                owner,
            ))
            .await?
            .into_inner();
        out.extend(page.keys);
        if page.next_token.is_empty() {
            return Ok(out);
        }
        next = page.next_token;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cascade_and_issued_before_reach_the_other_cell() {
    let cells = Cells::start(false).await;
    let (operator, operator_id) = cells
        .a
        .create_key(&cells.owner, "operator")
        .await
        .expect("key");
    let token = cells.a.mint(&operator, "").await;
    assert!(
        cells.b.authorize(read(&token)).await.allowed,
        "precondition"
    );
    cells
        .a
        .revoke_key(&cells.owner, &operator_id)
        .await
        .expect("revoke");
    until_revoked(&cells.b, &token, Duration::from_secs(1)).await;

    let (viewer, _) = cells
        .a
        .create_key(&cells.owner, "viewer")
        .await
        .expect("viewer");
    let other_token = cells.a.mint(&cells.owner, "").await;
    assert!(
        cells.b.authorize(read(&viewer)).await.allowed,
        "precondition"
    );
    tokio::time::sleep(Duration::from_millis(1100)).await; // issued-before has 1 s granularity
    cells
        .a
        .admin()
        .await
        .revoke_issued_before(with_key(
            pb::RevokeIssuedBeforeRequest::default(),
            &cells.owner,
        ))
        .await
        .expect("issued before");
    for credential in [&viewer, &other_token, &cells.owner] {
        until_revoked(&cells.b, credential, Duration::from_secs(1)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn confirmed_revocation_waits_for_every_cell_and_names_the_one_missing() {
    let mut cells = Cells::start(false).await;
    let (key, key_id) = cells
        .a
        .create_key(&cells.owner, "viewer")
        .await
        .expect("key");
    let revocation = cells
        .a
        .revoke_key(&cells.owner, &key_id)
        .await
        .expect("revoke");
    let confirmation = cells.a.confirm(&cells.owner, revocation).await;
    assert!(confirmation.confirmed, "{confirmation:?}");
    assert_eq!(confirmation.confirmed_cells, vec!["a", "b"]);
    // Confirmed means b refuses it now, with no waiting.
    assert_eq!(
        cells.b.authorize(read(&key)).await.reason,
        pb::Reason::Revoked as i32
    );

    let cells_view = cells
        .a
        .admin()
        .await
        .list_cells(with_key(pb::ListCellsRequest {}, &cells.owner))
        .await
        .expect("cells")
        .into_inner();
    assert_eq!(cells_view.nodes.len(), 2, "{cells_view:?}");
    assert!(cells_view.nodes.iter().all(|n| n.live));

    cells.topology.replica_b.stop();
    let (key2, key2_id) = cells
        .a
        .create_key(&cells.owner, "viewer")
        .await
        .expect("key");
    let revocation = cells
        .a
        .revoke_key(&cells.owner, &key2_id)
        .await
        .expect("revoke");
    let started = Instant::now();
    let confirmation = cells
        .a
        .admin()
        .await
        .confirm_revocation(with_key(
            pb::ConfirmRevocationRequest {
                revocation_id: revocation,
                timeout_ms: 1500,
            },
            &cells.owner,
        ))
        .await
        .expect("confirm")
        .into_inner();
    assert!(!confirmation.confirmed, "{confirmation:?}");
    assert_eq!(confirmation.pending_cells, vec!["b"]);
    assert_eq!(confirmation.confirmed_cells, vec!["a"]);
    assert!(started.elapsed() >= Duration::from_millis(1500));
    assert!(
        cells.b.authorize(read(&key2)).await.allowed,
        "b has not seen it"
    );
    cells.topology.replica_b.start_again();
    until_revoked(&cells.b, &key2, Duration::from_secs(10)).await;
    cells.b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_vending_rate_limit_holds_across_cells() {
    let topology = Topology::start(false);
    let pem = signing_pem();
    let primary = topology.primary.url();
    let (url_a, url_b) = (topology.replica_a.url(), topology.replica_b.url());
    let mut config_a = NodeConfig::new(&pem, "a", &primary, &url_a);
    config_a.vend_rate = 1;
    let mut config_b = NodeConfig::new(&pem, "b", &primary, &url_b);
    config_b.vend_rate = 1;
    let a = Node::start(config_a).await;
    let b = Node::start(config_b).await;
    let (owner, _) = a
        .authority
        .bootstrap("acme", false)
        .await
        .expect("bootstrap");
    let mut refused = None;
    for i in 0..6 {
        let node = if i % 2 == 0 { &a } else { &b };
        let result = authcell::proto::token::token_client::TokenClient::new(node.channel().await)
            .generate_disposable_token(authcell::proto::token::GenerateDisposableTokenRequest {
                expires: Some(
                    authcell::proto::token::generate_disposable_token_request::Expires {
                        valid_for_seconds: 60,
                    },
                ),
                auth_token: owner.clone(),
                permissions: Some(explicit(vec![read_cache("c")])),
                token_id: String::new(),
            })
            .await;
        if let Err(status) = result {
            refused = Some((i, status));
            break;
        }
    }
    let (i, status) = refused.expect("the shared burst of 3 is exhausted across both cells");
    assert_eq!(i, 3, "three calls (a, b, a) used the shared burst");
    assert_eq!(status.code(), Code::ResourceExhausted);
    assert!(status.metadata().get("retry-after").is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_views_are_denied_under_the_deny_policy_and_a_fresh_node_serves_nothing_before_loading(
) {
    let mut redis = RedisServer::start(RedisOptions::default());
    let pem = signing_pem();
    let url = redis.url();
    let mut config = NodeConfig::new(&pem, "a", &url, &url);
    config.stale_policy = StalePolicy::Deny;
    config.max_staleness = Duration::from_secs(2);
    let a = Node::start(config).await;
    let (owner, _) = a
        .authority
        .bootstrap("acme", false)
        .await
        .expect("bootstrap");
    assert!(
        a.authorize(read(&owner)).await.allowed,
        "precondition: fresh view serves"
    );
    redis.stop();
    let deadline = Instant::now() + Duration::from_secs(10);
    let verdict = loop {
        let verdict = a.authorize(read(&owner)).await;
        if !verdict.allowed {
            break verdict;
        }
        assert!(Instant::now() < deadline, "never went stale");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(verdict.reason, pb::Reason::StaleState as i32, "{verdict:?}");
    let health = tonic_health::pb::health_client::HealthClient::new(a.channel().await)
        .check(tonic_health::pb::HealthCheckRequest {
            service: "authcell.v1.Verifier".into(),
        })
        .await
        .expect("health")
        .into_inner();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let health_later = tonic_health::pb::health_client::HealthClient::new(a.channel().await)
        .check(tonic_health::pb::HealthCheckRequest {
            service: "authcell.v1.Verifier".into(),
        })
        .await
        .expect("health")
        .into_inner();
    assert!(
        health.status == tonic_health::ServingStatus::NotServing as i32
            || health_later.status == tonic_health::ServingStatus::NotServing as i32,
        "health shows it"
    );
    redis.start_again();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !a.authorize(read(&owner)).await.allowed {
        assert!(Instant::now() < deadline, "did not recover");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // A node that cannot load its view at all serves no check.
    let view = Arc::new(authcell::verifier::view::View::tracked());
    let ring = KeyRing::from_pem("t", &pem).expect("ring");
    let verifier = authcell::verifier::Verifier::new(ring, view, Arc::new(SystemClock));
    assert!(!verifier.is_serving());
    let decision = verifier.check(
        &owner,
        authcell::policy::Action::CacheRead,
        &Default::default(),
        None,
    );
    assert_eq!(
        decision.outcome.map_err(|(r, _)| r),
        Err(authcell::verifier::Reason::Unavailable)
    );
}
