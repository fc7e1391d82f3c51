//! Cells over real Redis: an authcell node of a cell (served by the same `server::run` as
//! every test), a two-cell topology, and the waits tests of propagation need.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use authcell::authority::Authority;
use authcell::keyring::KeyRing;
use authcell::node::{self, NodeOptions, RedisSettings};
use authcell::proto::authcell::v1 as pb;
use authcell::proto::global_admin as ga;
use authcell::verifier::StalePolicy;
use tokio::net::TcpListener;
use tonic::transport::Channel;

use super::redis::{Topology, WanLink, SENTINEL_MASTER};
use super::server::Served;
use super::statements::read_cache;
use super::*;

const PREFIX: &str = "authcell:";

/// One authcell node of one cell, serving gRPC on a free port.
pub struct Node {
    pub addr: SocketAddr,
    pub authority: Arc<Authority>,
    served: Served,
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
        let node = authcell::node::Node::redis(ring, &options, &settings)
            .await
            .expect("node with redis");
        let served = Served::start(node, listener, authcell::server::Serving::default()).await;
        let node = Node {
            addr,
            authority: served.authority().clone(),
            served,
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

    pub async fn stop(self) {
        self.served.stop().await;
    }

    /// What this node's metrics endpoint would serve.
    pub fn metrics(&self) -> &Arc<authcell::metrics::Metrics> {
        self.served.node().metrics()
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
    /// Node b's link to the primary, when cell b is a WAN away ([`Cells::start_wan`]).
    pub(crate) wan_node_b: Option<WanLink>,
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
        Cells::of(topology, pem, a, b).await
    }

    /// Two cells where cell b is a region away: its replica and its node both reach the
    /// primary through a [`WanLink`] delaying each direction by `one_way`. `tweak` adjusts both
    /// nodes' configuration.
    pub(crate) async fn start_wan(
        one_way: Duration,
        tweak: impl for<'c> Fn(NodeConfig<'c>) -> NodeConfig<'c>,
    ) -> Cells {
        let topology = Topology::start_wan(one_way);
        let wan_node_b = WanLink::start(topology.primary.port(), one_way);
        let pem = signing_pem();
        let primary = topology.primary.url();
        let primary_b = wan_node_b.redis_url();
        let (replica_a, replica_b) = (topology.replica_a.url(), topology.replica_b.url());
        let a = Node::start(tweak(NodeConfig::new(&pem, "a", &primary, &replica_a))).await;
        let b = Node::start(tweak(NodeConfig::new(&pem, "b", &primary_b, &replica_b))).await;
        let mut cells = Cells::of(topology, pem, a, b).await;
        cells.wan_node_b = Some(wan_node_b);
        cells
    }

    /// The two started nodes, with an owner key of account `acme`.
    async fn of(topology: Topology, pem: String, a: Node, b: Node) -> Cells {
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
            wan_node_b: None,
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

impl Node {
    pub fn sync_position(&self) -> String {
        self.served
            .node()
            .sync()
            .map(|s| s.position())
            .unwrap_or_default()
    }
}

/// Polls `f` every 50 ms until it holds, failing the test after `within`.
pub(crate) async fn wait_for(what: &str, within: Duration, mut f: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !f().await {
        assert!(Instant::now() < deadline, "{what}: not within {within:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
