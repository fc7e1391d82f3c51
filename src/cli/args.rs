//! The command line: clap definitions of every client command and its flags.

use super::*;

/// Where the server is, who is calling, and how to print: global to every client command.
#[derive(Clone, Args)]
#[command(next_help_heading = "Client options")]
pub struct ClientArgs {
    /// The server: host:port as `authcell serve` prints it, or http://host:port.
    #[arg(
        long,
        env = "AUTHCELL_ENDPOINT",
        global = true,
        value_name = "HOST:PORT"
    )]
    pub endpoint: Option<String>,

    /// The API key to call with. Prefer the environment variable: flags show in `ps`.
    #[arg(
        long,
        env = "AUTHCELL_API_KEY",
        global = true,
        hide_env_values = true,
        value_name = "KEY"
    )]
    pub api_key: Option<String>,

    /// Print one JSON document on stdout instead of tables.
    #[arg(long, global = true)]
    pub json: bool,

    /// PEM CA certificate(s) to verify the server with; implies TLS (https). Without it, an
    /// https:// endpoint is verified against the public web PKI roots.
    #[arg(long, env = "AUTHCELL_TLS_CA", global = true, value_name = "PEM")]
    pub tls_ca: Option<String>,

    /// Send the API key over plain http to a host that is not loopback, where anyone on the
    /// path can read it. Without it, only localhost, 127.0.0.0/8 and `[::1]` are reached
    /// without TLS.
    #[arg(
        long,
        env = "AUTHCELL_INSECURE",
        global = true,
        value_parser = clap::builder::BoolishValueParser::new()
    )]
    pub insecure: bool,
}

impl fmt::Debug for ClientArgs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientArgs")
            .field("endpoint", &self.endpoint)
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .field("json", &self.json)
            .field("tls_ca", &self.tls_ca)
            .field("insecure", &self.insecure)
            .finish()
    }
}

/// The client commands, flattened into the binary's top-level commands.
#[derive(Debug, Subcommand)]
pub enum ClientCommand {
    /// API keys of the caller's account: create, list, describe, revoke.
    Keys(KeysArgs),
    /// Roles of the caller's account: list, describe, create, update, delete.
    Roles(RolesArgs),
    /// Disposable tokens: mint, revoke.
    Tokens(TokensArgs),
    /// Each node of each cell: how far it has applied the revocation stream.
    Cells(CellsArgs),
    /// The account's audit log (who did what, when, from where), newest first.
    Audit(AuditArgs),
    /// The account's key policy (lifetime limits on new keys and tokens): show, set.
    Policy(PolicyArgs),
}

impl ClientCommand {
    pub(crate) fn client(&self) -> &ClientArgs {
        match self {
            ClientCommand::Keys(a) => &a.client,
            ClientCommand::Roles(a) => &a.client,
            ClientCommand::Tokens(a) => &a.client,
            ClientCommand::Cells(a) => &a.client,
            ClientCommand::Audit(a) => &a.client,
            ClientCommand::Policy(a) => &a.client,
        }
    }
}

#[derive(Debug, Args)]
#[command(after_help = EXIT_CODES)]
pub struct KeysArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    #[command(subcommand)]
    pub command: KeysCommand,
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Create a key bound to a role. Its plaintext is printed once, to stdout.
    Create(KeysCreate),
    /// List the account's keys (active ones unless --all), following every page.
    List(KeysList),
    /// Show one key's metadata and status.
    Describe(KeysDescribe),
    /// Revoke a key: its next call, on any RPC and any cell, is refused.
    Revoke(KeysRevoke),
    /// Replace a key with a new one of the same role, description and lifetime; the old key
    /// keeps working for --overlap, then is revoked in every cell. The new key is printed once.
    Rotate(KeysRotate),
}

#[derive(Debug, Args)]
pub struct KeysRotate {
    /// The key id (a UUID, as `keys list` shows it).
    pub key_id: String,
    /// How long the old key keeps working beside the new one: 24h, 30m, 0s (revoked at
    /// once); at most 30d.
    #[arg(long, value_name = "DURATION", value_parser = parse_overlap)]
    pub overlap: Duration,
    /// The new key's lifetime (90d, 24h, ...); without it, the old key's (never, if the old
    /// key never expired). The account's key policy applies either way.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub expires_in: Option<Duration>,
}

#[derive(Debug, Args)]
pub struct KeysCreate {
    /// The key's role: owner, operator, viewer, or a custom role's id or name.
    #[arg(long)]
    pub role: String,
    /// What the key is for (required by the server).
    #[arg(long)]
    pub description: String,
    /// When the key expires: epoch seconds or RFC 3339 (2030-01-01T00:00:00Z). Without
    /// --expires-at or --expires-in the key never expires.
    #[arg(long, value_name = "TIME", value_parser = parse_timestamp_ms, conflicts_with = "expires_in")]
    pub expires_at: Option<u64>,
    /// Expire this long from now: 30d, 12h, 90m, 45s, or combined (1h30m).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub expires_in: Option<Duration>,
}

#[derive(Debug, Args)]
pub struct KeysList {
    /// Also list revoked and expired keys.
    #[arg(long, conflicts_with = "expiring_within")]
    pub all: bool,
    /// Only live keys that lapse (expire, or are revoked at the end of a rotation) within this
    /// long: 7d, 30d, 12h.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub expiring_within: Option<Duration>,
    /// List at most this many keys.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub limit: Option<u32>,
}

#[derive(Debug, Args)]
pub struct KeysDescribe {
    /// The key id (a UUID, as `keys list` shows it).
    pub key_id: String,
}

#[derive(Debug, Args)]
pub struct KeysRevoke {
    /// The key id (a UUID, as `keys list` shows it).
    pub key_id: String,
    /// Then wait up to this many milliseconds (1..=60000) until every live cell has applied
    /// the revocation, and say which cells confirmed.
    #[arg(long, value_name = "MS", value_parser = clap::value_parser!(u32).range(1..=60_000))]
    pub confirm_timeout: Option<u32>,
}

#[derive(Debug, Args)]
#[command(after_help = EXIT_CODES)]
pub struct RolesArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    #[command(subcommand)]
    pub command: RolesCommand,
}

#[derive(Debug, Subcommand)]
pub enum RolesCommand {
    /// List the system roles and the account's custom roles.
    List,
    /// Show one role with its rules.
    Describe(RoleRef),
    /// Create a custom role from a permissions file (format: docs/cli.md, "Permissions file").
    Create(RolesCreate),
    /// Rename a custom role, change its description, or replace its permissions.
    Update(RolesUpdate),
    /// Delete a custom role (refused while live keys use it).
    Delete(RoleRef),
}

#[derive(Debug, Args)]
pub struct RoleRef {
    /// The role's id or name.
    #[arg(value_name = "ROLE")]
    pub role: String,
}

#[derive(Debug, Args)]
pub struct RolesCreate {
    /// The role's name: unique in the account, 1 to 64 of A-Z a-z 0-9 _ . -
    #[arg(long)]
    pub name: String,
    /// The permissions, as JSON ("-" reads stdin), e.g.
    /// {"rules":[{"cache":{"permissions":["read"],"cache":"sessions"}}]}
    #[arg(long, value_name = "PATH")]
    pub file: PathBuf,
    /// What the role is for.
    #[arg(long, default_value = "")]
    pub description: String,
}

#[derive(Debug, Args)]
#[command(group = ArgGroup::new("change").args(["name", "file", "description"]).required(true).multiple(true))]
pub struct RolesUpdate {
    /// The role's id or name.
    #[arg(value_name = "ROLE")]
    pub role: String,
    /// Rename the role.
    #[arg(long)]
    pub name: Option<String>,
    /// Replace the permissions with this file's ("-" reads stdin); keys bound to the role
    /// follow on their next check.
    #[arg(long, value_name = "PATH")]
    pub file: Option<PathBuf>,
    /// Replace the description.
    #[arg(long)]
    pub description: Option<String>,
}

#[derive(Debug, Args)]
#[command(after_help = EXIT_CODES)]
pub struct TokensArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    #[command(subcommand)]
    pub command: TokensCommand,
}

#[derive(Debug, Subcommand)]
pub enum TokensCommand {
    /// Mint a disposable token. Its plaintext is printed once, to stdout.
    ///
    /// One statement from flags (--cache with --role, narrowed by --key, --key-prefix,
    /// --topic or --topic-prefix), or several from --file.
    Mint(TokensMint),
    /// Revoke one disposable token, by its id (jti) or its caller-chosen token id.
    Revoke(TokensRevoke),
}

#[derive(Debug, Args)]
#[command(group = ArgGroup::new("statements").args(["cache", "file"]).required(true))]
pub struct TokensMint {
    /// How long the token is valid: 10m, 12h, 1h30m (the server allows 1s to 25h).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub expires_in: Duration,
    /// An id of your choosing carried in the token (at most 64 characters), for Authorize and
    /// `tokens revoke --token-id`.
    #[arg(long)]
    pub token_id: Option<String>,
    /// The cache the statement covers ("*" for every cache).
    #[arg(long, requires = "role")]
    pub cache: Option<String>,
    /// Only this item key (cache statement).
    #[arg(long, requires = "cache", conflicts_with_all = ["key_prefix", "topic", "topic_prefix"])]
    pub key: Option<String>,
    /// Only item keys starting with this (cache statement).
    #[arg(long, requires = "cache", conflicts_with_all = ["topic", "topic_prefix"])]
    pub key_prefix: Option<String>,
    /// Make it a topic statement on this topic ("*" for every topic of the cache).
    #[arg(long, requires = "cache", conflicts_with = "topic_prefix")]
    pub topic: Option<String>,
    /// Make it a topic statement on topics starting with this.
    #[arg(long, requires = "cache")]
    pub topic_prefix: Option<String>,
    /// What the statement allows: readwrite, readonly (cache read / topic subscribe) or
    /// writeonly (cache write / topic publish).
    #[arg(long, value_enum, requires = "cache")]
    pub role: Option<Access>,
    /// Statements from a JSON file ("-" reads stdin), e.g.
    /// {"statements":[{"cache":{"role":"readonly","cache":"sessions"}}]}
    #[arg(long, value_name = "PATH")]
    pub file: Option<PathBuf>,
}

#[derive(Debug, Args)]
#[command(group = ArgGroup::new("which").args(["id", "token_id"]).required(true))]
pub struct TokensRevoke {
    /// The token's own id (its jti; `tokens mint` prints it).
    #[arg(long)]
    pub id: Option<String>,
    /// The token id chosen at minting (--token-id): revokes every token that carries it.
    #[arg(long)]
    pub token_id: Option<String>,
    /// Then wait up to this many milliseconds (1..=60000) until every live cell has applied
    /// the revocation.
    #[arg(long, value_name = "MS", value_parser = clap::value_parser!(u32).range(1..=60_000))]
    pub confirm_timeout: Option<u32>,
}

#[derive(Debug, Args)]
#[command(after_help = EXIT_CODES)]
pub struct PolicyArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    #[command(subcommand)]
    pub command: PolicyCommand,
}

#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Show the account's key policy and the live keys that break it.
    Show,
    /// Replace the account's key policy (owner only): a limit left out is no limit, so `set`
    /// with no flags clears it. Revokes nothing; lists the live keys that break the new policy.
    Set(PolicySet),
}

#[derive(Debug, Args)]
pub struct PolicySet {
    /// New keys (role-bound and SDK-made) must expire.
    #[arg(long)]
    pub require_expiry: bool,
    /// The longest life of a new key of any kind: 90d, 12h, ...
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub max_key_lifetime: Option<Duration>,
    /// The longest life of a new SDK-made key (GenerateApiToken, RefreshApiToken).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub max_sdk_key_lifetime: Option<Duration>,
    /// The longest life of a new disposable token (at most 25h, the platform's limit).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub max_disposable_lifetime: Option<Duration>,
}

#[derive(Debug, Args)]
#[command(after_help = EXIT_CODES)]
pub struct CellsArgs {
    #[command(flatten)]
    pub client: ClientArgs,
}

#[derive(Debug, Args)]
#[command(after_help = EXIT_CODES)]
pub struct AuditArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    /// Only events at or after this time: RFC 3339, epoch seconds, or a duration ago (24h).
    #[arg(long, value_name = "TIME", value_parser = parse_time_arg)]
    pub since: Option<TimeArg>,
    /// Only events before this time: RFC 3339, epoch seconds, or a duration ago (1h).
    #[arg(long, value_name = "TIME", value_parser = parse_time_arg)]
    pub until: Option<TimeArg>,
    /// At most this many events, newest first; 0 for all.
    #[arg(long, value_name = "N", default_value_t = 100)]
    pub limit: u32,
}

/// A statement's access, for cache and topic statements alike.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Access {
    Readwrite,
    Readonly,
    Writeonly,
}

/// A point in time given on the command line: absolute, or a duration before now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeArg {
    /// Epoch milliseconds.
    At(u64),
    Ago(Duration),
}

impl TimeArg {
    pub(crate) fn epoch_millis(self, now_ms: u64) -> u64 {
        match self {
            TimeArg::At(ms) => ms,
            TimeArg::Ago(d) => now_ms.saturating_sub(u64::try_from(d.as_millis()).unwrap_or(0)),
        }
    }
}
