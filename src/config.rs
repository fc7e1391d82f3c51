//! Command line and environment configuration (clap): every server flag also reads an
//! `AUTHCELL_*` environment variable. The client commands (`keys`, `roles`, `tokens`, `cells`,
//! `audit`) are defined in [`crate::cli`] and flattened in here.

use std::net::SocketAddr;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::cli::{ClientCommand, EXIT_CODES};
use crate::verifier::StalePolicy;

#[derive(Debug, Parser)]
#[command(
    name = "authcell",
    version,
    about = "Credential authority: API keys, roles, disposable tokens, revocation",
    after_help = EXIT_CODES
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
// Parsed once at start: the size of the largest variant does not matter.
#[allow(clippy::large_enum_variant)]
pub enum Command {
    /// Run the gRPC server. With no store configured, state lives in memory (embedded mode).
    Serve(ServeArgs),
    /// Create an account and its first owner key in the configured store; prints the key once.
    Bootstrap(BootstrapArgs),
    /// Print a new Ed25519 signing key (PKCS#8 PEM) to stdout.
    Keygen(KeygenArgs),
    /// The operator client: calls a running server's gRPC API.
    #[command(flatten)]
    Client(ClientCommand),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Human,
    Json,
}

/// Options shared by every command that opens the key ring and the store.
#[derive(Debug, Clone, Args)]
pub struct CommonArgs {
    /// PKCS#8 PEM file holding the Ed25519 signing key. Without it, an ephemeral key is
    /// generated (embedded mode only).
    #[arg(long, env = "AUTHCELL_SIGNING_KEY_FILE")]
    pub signing_key_file: Option<String>,

    /// SPKI PEM files of extra verification keys (keys being rotated in or out). Repeatable;
    /// comma-separated in the environment.
    #[arg(long, env = "AUTHCELL_VERIFICATION_KEY_FILES", value_delimiter = ',')]
    pub verification_key_file: Vec<String>,

    /// Directory whose `*.pem` public keys (SPKI) are all trusted for verification. Together with
    /// the files above it is re-read every --key-reload-interval: keys rotate without restart.
    #[arg(long, env = "AUTHCELL_VERIFICATION_KEYS_DIR")]
    pub verification_keys_dir: Option<String>,

    /// How often the key files are checked for changes, in seconds.
    #[arg(long, env = "AUTHCELL_KEY_RELOAD_INTERVAL", default_value_t = 5)]
    pub key_reload_interval: u64,

    /// Name of this regional cell.
    #[arg(long, env = "AUTHCELL_CELL", default_value = "local")]
    pub cell: String,

    /// Log format.
    #[arg(long, env = "AUTHCELL_LOG_FORMAT", value_enum, default_value_t = LogFormat::Human)]
    pub log_format: LogFormat,

    /// Redis primary (all writes), e.g. redis://10.0.0.5:6379/. A name that moves to the new
    /// primary on failover (managed Redis) is followed: the node reconnects by name. Without it
    /// or --redis-sentinel: embedded mode.
    #[arg(long, env = "AUTHCELL_REDIS_URL", conflicts_with = "redis_sentinel")]
    pub redis_url: Option<String>,

    /// Redis Sentinel addresses (host:port, or redis:// URLs for sentinels with a password),
    /// comma-separated: the node asks them for the current primary, at start and after losing
    /// it, so writes follow a failover without a restart. Needs --redis-master-name.
    #[arg(
        long,
        env = "AUTHCELL_REDIS_SENTINELS",
        value_delimiter = ',',
        requires = "redis_master_name"
    )]
    pub redis_sentinel: Vec<String>,

    /// The Sentinel master name of authcell's Redis.
    #[arg(long, env = "AUTHCELL_REDIS_MASTER_NAME")]
    pub redis_master_name: Option<String>,

    /// ACL user on the Redis servers Sentinel names (with --redis-sentinel; a URL carries its own).
    #[arg(long, env = "AUTHCELL_REDIS_USERNAME")]
    pub redis_username: Option<String>,

    /// Password on the Redis servers Sentinel names (with --redis-sentinel).
    #[arg(long, env = "AUTHCELL_REDIS_PASSWORD", hide_env_values = true)]
    pub redis_password: Option<String>,

    /// Database number on the Redis servers Sentinel names (with --redis-sentinel).
    #[arg(long, env = "AUTHCELL_REDIS_DB", default_value_t = 0)]
    pub redis_db: i64,

    /// Replicas that must hold every mutation (key, role, revocation, watermark, refresh)
    /// before it is acknowledged (Redis WAIT); otherwise the call answers UNAVAILABLE. Default:
    /// 1 if the primary has a replica when the node starts, else 0.
    #[arg(long, env = "AUTHCELL_MIN_REPLICA_ACKS")]
    pub min_replica_acks: Option<u32>,

    /// How long a mutation waits for --min-replica-acks replicas, in milliseconds.
    #[arg(long, env = "AUTHCELL_REPLICA_ACK_TIMEOUT_MS", default_value_t = 1000,
          value_parser = clap::value_parser!(u64).range(1..=60_000))]
    pub replica_ack_timeout_ms: u64,

    /// This cell's Redis replica, which the node reads and tails. Defaults to the primary.
    #[arg(long, env = "AUTHCELL_REDIS_READ_URL")]
    pub redis_read_url: Option<String>,

    /// Prefix of every Redis key authcell uses.
    #[arg(long, env = "AUTHCELL_REDIS_PREFIX", default_value = "authcell:")]
    pub redis_prefix: String,

    /// Approximate cap of the event stream length (XADD MAXLEN ~).
    #[arg(long, env = "AUTHCELL_EVENT_STREAM_MAX_LEN", default_value_t = 100_000)]
    pub event_stream_max_len: u64,
}

#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "AUTHCELL_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,

    /// This cell's public endpoint, returned with minted tokens. Defaults to the listen address.
    #[arg(long, env = "AUTHCELL_ENDPOINT")]
    pub endpoint: Option<String>,

    /// Token vending and key creation allowed per account and second (0 = unlimited).
    #[arg(long, env = "AUTHCELL_VEND_RATE", default_value_t = 5)]
    pub vend_rate: u32,

    /// Burst allowance of the vending rate limit (0: one second's worth, --vend-rate).
    #[arg(long, env = "AUTHCELL_VEND_BURST", default_value_t = 10)]
    pub vend_burst: u32,

    /// Revocation-endpoint calls (RevokeToken, RevokeIssuedBefore, ConfirmRevocation) allowed
    /// per account and second (0 = unlimited). Each revocation grows every node's view and the
    /// event stream, so they are limited like vending.
    #[arg(long, env = "AUTHCELL_REVOKE_RATE", default_value_t = 10)]
    pub revoke_rate: u32,

    /// Burst allowance of the revocation rate limit (0: one second's worth, --revoke-rate).
    #[arg(long, env = "AUTHCELL_REVOKE_BURST", default_value_t = 50)]
    pub revoke_burst: u32,

    /// Token-id revocations one account may have in force at once (each ends at its
    /// expires_at_epoch_seconds, at most 25 hours after it was made).
    #[arg(long, env = "AUTHCELL_MAX_TOKEN_ID_REVOCATIONS", default_value_t = crate::authority::DEFAULT_MAX_TOKEN_ID_REVOCATIONS)]
    pub max_token_id_revocations: usize,

    /// ConfirmRevocation calls this node serves at once (each polls the primary until it
    /// returns, for at most 30 s); more are refused with RESOURCE_EXHAUSTED.
    #[arg(long, env = "AUTHCELL_MAX_CONFIRMATIONS", default_value_t = crate::authority::DEFAULT_MAX_CONFIRMATIONS)]
    pub max_confirmations: usize,

    /// How far behind the Redis primary the revocation view may be (time since the newest
    /// primary heartbeat that came through this cell's replica) before --stale-policy applies,
    /// in seconds.
    #[arg(long, env = "AUTHCELL_MAX_STALENESS", default_value_t = 30)]
    pub max_staleness: u64,

    /// What a node does when its view is older than --max-staleness: keep serving checks from
    /// the last known state, or deny every check.
    #[arg(long, env = "AUTHCELL_STALE_POLICY", value_enum, default_value_t = StalePolicy::Serve)]
    pub stale_policy: StalePolicy,

    /// On SIGTERM/SIGINT, seconds during which health reports NOT_SERVING while calls are still
    /// served (load balancers and probes stop sending traffic first).
    #[arg(long, env = "AUTHCELL_DRAIN_SECONDS", default_value_t = 5)]
    pub drain_seconds: u64,

    /// Then, seconds in-flight calls may take to finish before the process exits anyway.
    #[arg(long, env = "AUTHCELL_SHUTDOWN_TIMEOUT", default_value_t = 20)]
    pub shutdown_timeout: u64,

    /// PEM certificate chain: serve gRPC over TLS (with --tls-key). Reloaded when it changes.
    #[arg(long, env = "AUTHCELL_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<String>,

    /// PEM private key of --tls-cert.
    #[arg(long, env = "AUTHCELL_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<String>,

    /// PEM CA certificates: clients may present a certificate signed by them, and the Verifier
    /// service requires one (mTLS: only data-plane nodes may call Authorize).
    #[arg(long, env = "AUTHCELL_TLS_CLIENT_CA", requires = "tls_cert")]
    pub tls_client_ca: Option<String>,

    /// An origin whose pages may call token.Token and auth.Auth over gRPC-Web (browser apps
    /// using the official web SDK), e.g. `https://app.example.com`; repeat for each. None by
    /// default; wildcards are refused.
    #[arg(long = "cors-allowed-origin", env = "AUTHCELL_CORS_ALLOWED_ORIGINS", value_delimiter = ',', value_name = "ORIGIN", value_parser = crate::server::web::parse_origin)]
    pub cors_allowed_origins: Vec<http::HeaderValue>,

    /// Serve Prometheus metrics (GET /metrics) on this address. Off unless set.
    #[arg(long, env = "AUTHCELL_METRICS_LISTEN")]
    pub metrics_listen: Option<SocketAddr>,

    /// Account created with an owner key in embedded mode.
    #[arg(long, env = "AUTHCELL_DEV_ACCOUNT", default_value = "dev")]
    pub dev_account: String,

    #[command(flatten)]
    pub common: CommonArgs,
}

#[derive(Debug, Clone, Args)]
pub struct BootstrapArgs {
    /// The account to create.
    #[arg(long)]
    pub account: String,

    /// Add another owner key even if the account already has keys.
    #[arg(long)]
    pub force: bool,

    /// Create the platform account `system` (where signing key rotations are recorded)
    /// instead of a tenant account; `--account` must then be `system`. Tenants can never be
    /// named `system`.
    #[arg(long)]
    pub platform: bool,

    #[command(flatten)]
    pub common: CommonArgs,
}

#[derive(Debug, Clone, Args)]
pub struct KeygenArgs {
    /// Print the public key (SPKI PEM) of the private key read from stdin instead.
    #[arg(long)]
    pub public: bool,
}
