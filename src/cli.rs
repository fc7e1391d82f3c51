//! The operator command line: `authcell keys|roles|tokens|cells|audit`.
//!
//! A client of the server's own gRPC API (the generated clients in [`crate::proto`]), never of
//! the store: it works against any node, embedded or Redis-backed, and every call goes through
//! the same authentication and permission checks as any other caller's.
//!
//! Conventions, for scripts as much as for people:
//!
//! * The endpoint and the key come from `AUTHCELL_ENDPOINT` / `AUTHCELL_API_KEY` (the two lines
//!   `authcell serve` prints in embedded mode) or `--endpoint` / `--api-key`. The key is sent as
//!   `authorization` metadata, marked sensitive, and never printed: error messages are scrubbed
//!   of it before they reach stderr. It travels in plaintext only to a loopback host, unless
//!   `--insecure` says otherwise ([`target_url`]).
//! * stdout carries results only: aligned tables by default, one JSON document with `--json`.
//!   The plaintext of a new key or token goes to stdout once, alone on its line in human mode,
//!   with what is known about it on stderr.
//! * Errors are one line on stderr, `authcell: <STATUS_CODE>: <server message>`, and the exit
//!   code says whose fault it was ([`EXIT_CODES`]).
//! * Local input (flags, `--file`) is checked before connecting: a usage error never depends on
//!   the server being up.

use std::fmt;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use clap::{ArgGroup, Args, Subcommand, ValueEnum};
use serde::{Deserialize, Serialize};
use tonic::metadata::{Ascii, MetadataValue};
use tonic::transport::{Channel, Endpoint};
use tonic::{Code, Request, Status};

use crate::authority::{MAX_PAGE, REVOCATION_ID_METADATA};
// System role ids; a role named otherwise, and not a UUID, is looked up by name.
use crate::policy::system::ALL as SYSTEM_ROLES;
use crate::proto::authcell::v1 as pb;
use crate::proto::global_admin as ga;
use crate::proto::permission_messages as pm;
use crate::proto::permission_rules as pr;
use crate::proto::token;

/// The exit codes, as `authcell --help` and every client command's help show them.
pub const EXIT_CODES: &str = "\
Exit codes of the client commands (keys, roles, tokens, cells, audit):
  0  success
  2  usage error: bad flags or arguments, an unreadable or invalid --file, no endpoint,
     plain http to a host that is not loopback without --insecure
  3  authentication or authorization failure: no API key, UNAUTHENTICATED, PERMISSION_DENIED
  4  the server refused the request: INVALID_ARGUMENT, NOT_FOUND, ALREADY_EXISTS,
     FAILED_PRECONDITION, RESOURCE_EXHAUSTED, OUT_OF_RANGE
  5  server or connection error: UNAVAILABLE (including cannot connect), INTERNAL,
     UNIMPLEMENTED, DEADLINE_EXCEEDED, UNKNOWN and every other status
serve, bootstrap and keygen exit 1 on failure.";

/// How long connecting to the server may take before the command fails with exit code 5.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long one call may take: longer than the longest wait the server does on purpose
/// (ConfirmRevocation, up to 60 s), so only a server that stopped answering hits it.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(75);

// ---------------------------------------------------------------------------------------------
// Command line (clap)
// ---------------------------------------------------------------------------------------------

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
}

impl ClientCommand {
    fn client(&self) -> &ClientArgs {
        match self {
            ClientCommand::Keys(a) => &a.client,
            ClientCommand::Roles(a) => &a.client,
            ClientCommand::Tokens(a) => &a.client,
            ClientCommand::Cells(a) => &a.client,
            ClientCommand::Audit(a) => &a.client,
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
    #[arg(long)]
    pub all: bool,
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
    /// Create a custom role from a permissions file (see the README, "Operator CLI").
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
    fn epoch_millis(self, now_ms: u64) -> u64 {
        match self {
            TimeArg::At(ms) => ms,
            TimeArg::Ago(d) => now_ms.saturating_sub(u64::try_from(d.as_millis()).unwrap_or(0)),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Outcome and exit codes
// ---------------------------------------------------------------------------------------------

/// Whose fault a failure was; the process exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// Bad flags or arguments, unreadable or invalid input files, no endpoint, plain http to
    /// a host that is not loopback without --insecure.
    Usage = 2,
    /// No API key, UNAUTHENTICATED, PERMISSION_DENIED.
    Auth = 3,
    /// The server refused the request as asked (the caller can fix it).
    Refused = 4,
    /// The server failed, or could not be reached.
    Server = 5,
}

/// A failed command: its exit code and the one line printed after `authcell: `.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub exit: Exit,
    pub message: String,
}

impl Failure {
    fn new(exit: Exit, message: impl Into<String>) -> Self {
        Failure {
            exit,
            message: message.into(),
        }
    }

    fn usage(message: impl Into<String>) -> Self {
        Self::new(Exit::Usage, message)
    }

    /// Adds what had already happened when this failure struck.
    fn after(mut self, done: &str) -> Self {
        self.message = format!("{} ({done})", self.message);
        self
    }
}

/// The exit code a gRPC status maps to.
pub fn exit_for(code: Code) -> Exit {
    match code {
        Code::Unauthenticated | Code::PermissionDenied => Exit::Auth,
        Code::InvalidArgument
        | Code::NotFound
        | Code::AlreadyExists
        | Code::FailedPrecondition
        | Code::ResourceExhausted
        | Code::OutOfRange => Exit::Refused,
        _ => Exit::Server,
    }
}

/// The canonical name of a status code, as the gRPC specification spells it.
pub fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}

fn from_status(status: Status) -> Failure {
    let code = status.code();
    let mut message = code_name(code).to_owned();
    if !status.message().is_empty() {
        message = format!("{message}: {}", status.message());
    }
    // A status made from a transport error carries the cause as its source.
    if let Some(source) = std::error::Error::source(&status) {
        let cause = error_chain(source);
        if !message.contains(&cause) {
            message = format!("{message}: {cause}");
        }
    }
    Failure::new(exit_for(code), message)
}

/// An error and its sources, outermost first, without repeating what a level already said.
fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut next = Some(error);
    while let Some(e) = next {
        let text = e.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        next = e.source();
    }
    parts.join(": ")
}

/// Removes the API key from anything about to be printed.
fn redact(message: &str, secret: &str) -> String {
    if secret.len() < 8 {
        // Too short to be a key; replacing it would garble the message and reveal its length.
        return message.to_owned();
    }
    message.replace(secret, "<redacted>")
}

/// Runs one client command; prints its results and errors and returns the exit code.
pub async fn run(command: ClientCommand) -> ExitCode {
    let secret = command.client().api_key.clone().unwrap_or_default();
    match execute(command).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            let message = redact(&failure.message, secret.trim());
            note(&format!("authcell: {message}\n"));
            ExitCode::from(failure.exit as u8)
        }
    }
}

async fn execute(command: ClientCommand) -> Result<(), Failure> {
    match command {
        ClientCommand::Keys(a) => match a.command {
            KeysCommand::Create(c) => keys_create(&a.client, c).await,
            KeysCommand::List(c) => keys_list(&a.client, c).await,
            KeysCommand::Describe(c) => keys_describe(&a.client, c).await,
            KeysCommand::Revoke(c) => keys_revoke(&a.client, c).await,
        },
        ClientCommand::Roles(a) => match a.command {
            RolesCommand::List => roles_list(&a.client).await,
            RolesCommand::Describe(c) => roles_describe(&a.client, c).await,
            RolesCommand::Create(c) => roles_create(&a.client, c).await,
            RolesCommand::Update(c) => roles_update(&a.client, c).await,
            RolesCommand::Delete(c) => roles_delete(&a.client, c).await,
        },
        ClientCommand::Tokens(a) => match a.command {
            TokensCommand::Mint(c) => tokens_mint(&a.client, c).await,
            TokensCommand::Revoke(c) => tokens_revoke(&a.client, c).await,
        },
        ClientCommand::Cells(a) => cells(&a.client).await,
        ClientCommand::Audit(a) => audit(a).await,
    }
}

// ---------------------------------------------------------------------------------------------
// Connection
// ---------------------------------------------------------------------------------------------

/// The URL of an endpoint given as `host:port`, `http://host:port` or `https://host:port`.
pub fn endpoint_url(endpoint: &str) -> Result<String, Failure> {
    let endpoint = endpoint.trim().trim_end_matches('/');
    if endpoint.is_empty() {
        return Err(no_endpoint());
    }
    let lower = endpoint.to_ascii_lowercase();
    if lower.starts_with("https://") {
        return Ok(format!("https://{}", &endpoint["https://".len()..]));
    }
    if lower.starts_with("http://") {
        return Ok(format!("http://{}", &endpoint["http://".len()..]));
    }
    if endpoint.contains("://") {
        return Err(Failure::usage(format!(
            "--endpoint {endpoint}: use host:port, http://host:port or https://host:port"
        )));
    }
    Ok(format!("http://{endpoint}"))
}

fn no_endpoint() -> Failure {
    Failure::usage(
        "no endpoint: set AUTHCELL_ENDPOINT (as `authcell serve` prints it) or pass --endpoint",
    )
}

/// The URL the client connects to: `endpoint` as [`endpoint_url`] reads it, https when a CA
/// is given (`tls_ca`), and refused when it would carry the API key in plaintext to a host
/// that is not loopback, unless `insecure`. Decided from the text alone, before connecting.
pub fn target_url(endpoint: &str, tls_ca: bool, insecure: bool) -> Result<String, Failure> {
    use crate::endpoint::Transport;
    let mut url = endpoint_url(endpoint)?;
    if tls_ca && url.starts_with("http://") {
        url = format!("https://{}", &url["http://".len()..]);
    }
    match crate::endpoint::transport(&url) {
        Err(e) => Err(Failure::usage(format!("--endpoint {endpoint}: {e}"))),
        Ok(Transport::RemotePlaintext) if !insecure => Err(Failure::usage(format!(
            "--endpoint {endpoint}: refusing to send the API key in plaintext to a host that is \
             not loopback; use https:// (with --tls-ca for a private CA), or pass --insecure \
             (AUTHCELL_INSECURE=1) to send it anyway"
        ))),
        Ok(Transport::RemotePlaintext) => {
            note(&format!(
                "authcell: warning: sending the API key in plaintext to {endpoint} (--insecure)\n"
            ));
            Ok(url)
        }
        Ok(Transport::Tls | Transport::LoopbackPlaintext) => Ok(url),
    }
}

/// Opens the channel to `url` (from [`target_url`]; `endpoint` as the user gave it, for
/// messages). The one place transport settings live.
async fn open_channel(
    endpoint: &str,
    url: String,
    tls_ca: Option<&str>,
) -> Result<Channel, Failure> {
    let tls = if url.starts_with("https://") {
        let config = tonic::transport::ClientTlsConfig::new();
        Some(match tls_ca {
            Some(path) => {
                let pem = std::fs::read_to_string(path)
                    .map_err(|e| Failure::usage(format!("--tls-ca {path}: cannot read: {e}")))?;
                config.ca_certificate(tonic::transport::Certificate::from_pem(pem))
            }
            None => config.with_webpki_roots(),
        })
    } else {
        None
    };
    let mut target = Endpoint::from_shared(url)
        .map_err(|e| {
            Failure::usage(format!(
                "--endpoint {endpoint}: not a valid address ({})",
                error_chain(&e)
            ))
        })?
        .connect_timeout(CONNECT_TIMEOUT)
        .timeout(REQUEST_TIMEOUT)
        .tcp_nodelay(true);
    if let Some(tls) = tls {
        target = target
            .tls_config(tls)
            .map_err(|e| Failure::usage(format!("--tls-ca: cannot use it: {}", error_chain(&e))))?;
    }
    target.connect().await.map_err(|e| {
        Failure::new(
            Exit::Server,
            format!(
                "UNAVAILABLE: cannot connect to {endpoint}: {}",
                error_chain(&e)
            ),
        )
    })
}

/// A connected client: the channel and the caller's key.
struct Api {
    channel: Channel,
    key: MetadataValue<Ascii>,
}

impl Api {
    /// Checks the endpoint and key, then connects.
    async fn connect(args: &ClientArgs) -> Result<Api, Failure> {
        let endpoint = args
            .endpoint
            .as_deref()
            .map(str::trim)
            .filter(|e| !e.is_empty())
            .ok_or_else(no_endpoint)?;
        // Fail on a bad endpoint, or one the key must not travel to, before complaining about
        // the key, and before connecting.
        let url = target_url(endpoint, args.tls_ca.is_some(), args.insecure)?;
        let key = args
            .api_key
            .as_deref()
            .map(str::trim)
            .filter(|k| !k.is_empty())
            .ok_or_else(|| {
                Failure::new(
                    Exit::Auth,
                    "no API key: set AUTHCELL_API_KEY or pass --api-key",
                )
            })?;
        let mut key = MetadataValue::try_from(key).map_err(|_| {
            Failure::new(
                Exit::Auth,
                "the API key is malformed: it must be printable ASCII",
            )
        })?;
        key.set_sensitive(true);
        let channel = open_channel(endpoint, url, args.tls_ca.as_deref()).await?;
        Ok(Api { channel, key })
    }

    /// A request carrying the caller's key.
    fn req<T>(&self, message: T) -> Request<T> {
        let mut request = Request::new(message);
        request
            .metadata_mut()
            .insert("authorization", self.key.clone());
        request
    }

    fn admin(&self) -> pb::admin_client::AdminClient<Channel> {
        pb::admin_client::AdminClient::new(self.channel.clone())
    }

    fn global_admin(&self) -> ga::global_admin_client::GlobalAdminClient<Channel> {
        ga::global_admin_client::GlobalAdminClient::new(self.channel.clone())
    }

    fn token(&self) -> token::token_client::TokenClient<Channel> {
        token::token_client::TokenClient::new(self.channel.clone())
    }

    async fn list_roles(&self) -> Result<Vec<pb::Role>, Failure> {
        Ok(self
            .admin()
            .list_roles(self.req(pb::ListRolesRequest {}))
            .await
            .map_err(from_status)?
            .into_inner()
            .roles)
    }

    /// A role id from an id or a name. System role ids and UUIDs are taken as they are;
    /// anything else is looked up by name, and sent as it is when no role has that name or the
    /// roles cannot be listed (the call that follows then says what is wrong).
    async fn resolve_role(&self, role: &str) -> String {
        if SYSTEM_ROLES.contains(&role) || uuid::Uuid::try_parse(role).is_ok() {
            return role.to_owned();
        }
        self.list_roles()
            .await
            .ok()
            .and_then(|roles| roles.into_iter().find(|r| r.name == role))
            .map_or_else(|| role.to_owned(), |r| r.role_id)
    }

    async fn confirm(&self, revocation_id: &str, timeout_ms: u32) -> Result<Confirmation, Failure> {
        let c = self
            .admin()
            .confirm_revocation(self.req(pb::ConfirmRevocationRequest {
                revocation_id: revocation_id.to_owned(),
                timeout_ms,
            }))
            .await
            .map_err(from_status)?
            .into_inner();
        Ok(Confirmation {
            confirmed: c.confirmed,
            confirmed_cells: c.confirmed_cells,
            pending_cells: c.pending_cells,
            revocation_id: c.revocation_id,
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Output
// ---------------------------------------------------------------------------------------------

/// Writes to stdout. A closed pipe (`| head`) is not an error worth a panic.
fn out(text: &str) {
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(text.as_bytes());
    let _ = stdout.flush();
}

/// Writes to stderr: notes for people, never results.
fn note(text: &str) {
    let mut stderr = std::io::stderr().lock();
    let _ = stderr.write_all(text.as_bytes());
    let _ = stderr.flush();
}

fn json_out<T: Serialize>(value: &T) -> Result<(), Failure> {
    let text = serde_json::to_string_pretty(value)
        .map_err(|e| Failure::new(Exit::Server, format!("cannot encode the output: {e}")))?;
    out(&format!("{text}\n"));
    Ok(())
}

/// Makes text safe for a terminal: control characters are escaped.
fn printable(text: &str) -> String {
    if text.chars().any(char::is_control) {
        text.chars()
            .flat_map(|c| {
                let escaped: Vec<char> = if c.is_control() {
                    c.escape_default().collect()
                } else {
                    vec![c]
                };
                escaped
            })
            .collect()
    } else {
        text.to_owned()
    }
}

/// A table cell: "-" for nothing.
fn cell(text: &str) -> String {
    if text.is_empty() {
        "-".to_owned()
    } else {
        printable(text)
    }
}

/// Columns padded to their widest cell, two spaces apart.
pub fn render_table(head: &[&str], rows: &[Vec<String>]) -> String {
    let columns = head.len();
    let mut widths: Vec<usize> = head.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, value) in row.iter().enumerate().take(columns) {
            widths[i] = widths[i].max(value.chars().count());
        }
    }
    let line = |values: &mut dyn Iterator<Item = &str>| -> String {
        let mut text = String::new();
        for (i, value) in values.enumerate() {
            if i > 0 {
                text.push_str("  ");
            }
            text.push_str(value);
            if i + 1 < columns {
                let pad = widths[i].saturating_sub(value.chars().count());
                text.extend(std::iter::repeat_n(' ', pad));
            }
        }
        let mut text = text.trim_end().to_owned();
        text.push('\n');
        text
    };
    let mut text = line(&mut head.iter().copied());
    for row in rows {
        text.push_str(&line(&mut row.iter().map(String::as_str)));
    }
    text
}

/// `label  value` lines, values aligned.
fn render_block(pairs: &[(&str, String)]) -> String {
    let width = pairs.iter().map(|(l, _)| l.len()).max().unwrap_or(0);
    pairs
        .iter()
        .map(|(label, value)| format!("{}\n", format!("{label:<width$}  {value}").trim_end()))
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Time
// ---------------------------------------------------------------------------------------------

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = i64::from((month + 9) % 12);
    let doy = (153 * mp + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date of a day count since 1970-01-01.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        _ => 28,
    }
}

/// Epoch milliseconds as RFC 3339 in UTC; milliseconds shown only when asked for.
pub fn format_time_ms(ms: u64, with_millis: bool) -> String {
    let secs = ms / 1000;
    let days = i64::try_from(secs / 86_400).unwrap_or(i64::MAX / 2);
    let rest = secs % 86_400;
    let (year, month, day) = civil_from_days(days);
    let (h, m, s) = (rest / 3600, rest % 3600 / 60, rest % 60);
    if with_millis {
        format!(
            "{year:04}-{month:02}-{day:02}T{h:02}:{m:02}:{s:02}.{:03}Z",
            ms % 1000
        )
    } else {
        format!("{year:04}-{month:02}-{day:02}T{h:02}:{m:02}:{s:02}Z")
    }
}

fn format_secs(secs: u64) -> String {
    format_time_ms(secs.saturating_mul(1000), false)
}

/// Parses epoch seconds or an RFC 3339 time (`2030-01-01T00:00:00Z`, with optional fraction
/// and `±hh:mm` offset; a bare date means its midnight UTC) into epoch milliseconds.
pub fn parse_timestamp_ms(text: &str) -> Result<u64, String> {
    let text = text.trim();
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        let secs: u64 = text
            .parse()
            .map_err(|_| format!("{text:?}: too large for epoch seconds"))?;
        if secs >= 100_000_000_000 {
            return Err(format!(
                "{text:?}: looks like milliseconds; give epoch seconds"
            ));
        }
        return Ok(secs * 1000);
    }
    parse_rfc3339_ms(text).ok_or_else(|| {
        format!("{text:?}: use epoch seconds or RFC 3339, like 2030-01-01T00:00:00Z")
    })
}

fn parse_rfc3339_ms(text: &str) -> Option<u64> {
    let num = |s: &str| -> Option<u32> {
        if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
            s.parse().ok()
        } else {
            None
        }
    };
    let (date, time) = match text.find(['T', 't', ' ']) {
        Some(i) => (&text[..i], Some(&text[i + 1..])),
        None => (text, None),
    };
    let mut parts = date.split('-');
    let (year, month, day) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || year.len() != 4 || month.len() != 2 || day.len() != 2 {
        return None;
    }
    let (year, month, day) = (i64::from(num(year)?), num(month)?, num(day)?);
    if !(1..=12).contains(&month) || day == 0 || day > days_in_month(year, month) {
        return None;
    }
    let mut ms_of_day: i64 = 0;
    let mut offset_secs: i64 = 0;
    if let Some(time) = time {
        let (clock, zone) = if let Some(clock) = time.strip_suffix(['Z', 'z']) {
            (clock, None)
        } else {
            let i = time.rfind(['+', '-'])?;
            (&time[..i], Some(&time[i..]))
        };
        let (hms, fraction) = match clock.split_once('.') {
            Some((hms, fraction)) => (hms, Some(fraction)),
            None => (clock, None),
        };
        let mut fields = hms.split(':');
        let (h, m, s) = (fields.next()?, fields.next()?, fields.next()?);
        if fields.next().is_some() || h.len() != 2 || m.len() != 2 || s.len() != 2 {
            return None;
        }
        let (h, m, s) = (num(h)?, num(m)?, num(s)?);
        // A leap second is read as the last second of its minute.
        if h > 23 || m > 59 || s > 60 {
            return None;
        }
        let millis = match fraction {
            None => 0,
            Some(f) => {
                num(f)?;
                let digits: String = f.chars().chain("000".chars()).take(3).collect();
                num(&digits)?
            }
        };
        ms_of_day = (i64::from(h) * 3600 + i64::from(m) * 60 + i64::from(s.min(59))) * 1000
            + i64::from(millis);
        if let Some(zone) = zone {
            let sign = if zone.starts_with('-') { -1 } else { 1 };
            let (oh, om) = zone[1..].split_once(':')?;
            if oh.len() != 2 || om.len() != 2 {
                return None;
            }
            let (oh, om) = (num(oh)?, num(om)?);
            if oh > 23 || om > 59 {
                return None;
            }
            offset_secs = sign * (i64::from(oh) * 3600 + i64::from(om) * 60);
        }
    }
    let ms = days_from_civil(year, month, day) * 86_400_000 + ms_of_day - offset_secs * 1000;
    u64::try_from(ms).ok()
}

/// Parses `30d`, `12h`, `90m`, `45s`, or several of them together (`1h30m`).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err("empty duration: use a number and a unit, like 10m".into());
    }
    let mut total: u64 = 0;
    let mut digits = String::new();
    for c in text.chars() {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        let unit = match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            _ => {
                return Err(format!(
                    "{text:?}: unknown unit {c:?}; use s, m, h or d (like 90m or 1h30m)"
                ))
            }
        };
        if digits.is_empty() {
            return Err(format!("{text:?}: a number must come before {c:?}"));
        }
        let n: u64 = digits.parse().map_err(|_| format!("{text:?}: too large"))?;
        total = n
            .checked_mul(unit)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(|| format!("{text:?}: too large"))?;
        digits.clear();
    }
    if !digits.is_empty() {
        return Err(format!(
            "{text:?}: add a unit: s, m, h or d (like {digits}s or {digits}m)"
        ));
    }
    if total == 0 {
        return Err(format!("{text:?}: must be longer than zero"));
    }
    Ok(Duration::from_secs(total))
}

/// A time (epoch seconds, RFC 3339) or a duration before now (`24h`).
pub fn parse_time_arg(text: &str) -> Result<TimeArg, String> {
    let trimmed = text.trim();
    let looks_like_duration = trimmed
        .chars()
        .last()
        .is_some_and(|c| matches!(c, 's' | 'm' | 'h' | 'd'))
        && !trimmed.contains(['-', ':']);
    if looks_like_duration {
        return parse_duration(trimmed).map(TimeArg::Ago);
    }
    parse_timestamp_ms(trimmed)
        .map(TimeArg::At)
        .map_err(|e| format!("{e}, or a duration ago like 24h"))
}

// ---------------------------------------------------------------------------------------------
// Permission files: a JSON model of permission_rules.PermissionSet and of token statements
// ---------------------------------------------------------------------------------------------

/// A role's permissions as operators write them (`roles create --file`) and as `roles list
/// --json` prints them: the same format both ways.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PermissionsDoc {
    /// Everything (the owner role). Custom roles cannot have it.
    #[serde(default, skip_serializing_if = "is_false")]
    pub super_user: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rules: Vec<RuleDoc>,
    /// Allowed client networks (CIDR ranges, IPv4 or IPv6); empty: any.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ip_filter: Vec<String>,
    /// Several ip_filter conditions, each of which must allow the client (rarely needed).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ip_filters: Vec<Vec<String>>,
}

fn is_false(value: &bool) -> bool {
    !*value
}

/// One rule, keyed by its family.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RuleDoc {
    Account(ManagementDoc),
    Auth(ManagementDoc),
    Resource(ManagementDoc),
    Cache(CacheRuleDoc),
    Topic(TopicRuleDoc),
    Store(StoreRuleDoc),
    Function(FunctionRuleDoc),
    /// A rule type this client does not know (printed, never sent).
    #[serde(skip_deserializing)]
    Unknown {},
}

/// Account, auth (keys, roles, tokens) or resource management: read, write, list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManagementDoc {
    pub permissions: Vec<String>,
}

/// Cache data. Of `key`, `key_prefix`, `key_base64` and `key_prefix_base64` at most one may be
/// set; none means every item. The `*_base64` forms carry keys that are not UTF-8.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CacheRuleDoc {
    /// read, write, list.
    pub permissions: Vec<String>,
    /// A cache name, or "*" for every cache.
    pub cache: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_prefix: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_base64: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_prefix_base64: Option<String>,
}

/// Store data; the item fields work as in [`CacheRuleDoc`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreRuleDoc {
    /// read, write, list.
    pub permissions: Vec<String>,
    /// A store name, or "*" for every store.
    pub store: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_prefix: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_base64: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_prefix_base64: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TopicRuleDoc {
    /// read (subscribe), write (publish), list.
    pub permissions: Vec<String>,
    /// A cache name, or "*" for every cache.
    pub cache: String,
    /// A topic name; with neither this nor topic_prefix, every topic.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topic: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topic_prefix: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FunctionRuleDoc {
    /// invoke (the default).
    #[serde(default = "invoke")]
    pub permissions: Vec<String>,
    /// A cache name, or "*" for every cache.
    pub cache: String,
    /// A function name; with neither this nor function_prefix, every function.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub function: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub function_prefix: Option<String>,
}

fn invoke() -> Vec<String> {
    vec!["invoke".to_owned()]
}

/// A disposable token's statements (`tokens mint --file`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatementsDoc {
    pub statements: Vec<StatementDoc>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StatementDoc {
    Cache(CacheStatementDoc),
    Topic(TopicStatementDoc),
    Function(FunctionStatementDoc),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CacheStatementDoc {
    pub role: Access,
    /// A cache name, or "*" for every cache.
    pub cache: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_prefix: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_base64: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_prefix_base64: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TopicStatementDoc {
    pub role: Access,
    /// A cache name, or "*" for every cache.
    pub cache: String,
    /// A topic name ("*" or neither field: every topic).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topic: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topic_prefix: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FunctionStatementDoc {
    /// A cache name, or "*" for every cache.
    pub cache: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub function: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub function_prefix: Option<String>,
}

/// Reads a file ("-" for stdin) for --file. Any problem is a usage error.
fn read_file(path: &Path) -> Result<String, Failure> {
    if path == Path::new("-") {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .map_err(|e| Failure::usage(format!("--file -: cannot read stdin: {e}")))?;
        return Ok(text);
    }
    std::fs::read_to_string(path)
        .map_err(|e| Failure::usage(format!("--file {}: cannot read it: {e}", path.display())))
}

fn parse_json<T: for<'de> Deserialize<'de>>(path: &Path, text: &str) -> Result<T, Failure> {
    serde_json::from_str(text)
        .map_err(|e| Failure::usage(format!("--file {}: {e}", path.display())))
}

/// Reads a role permissions file into the protobuf the server takes.
fn read_permissions(path: &Path) -> Result<pr::PermissionSet, Failure> {
    parse_permissions(path, &read_file(path)?)
}

/// Parses the text of a role permissions file (`roles create --file`); `path` names it in
/// errors. Public for the fuzz targets ([`crate::fuzzing`]).
pub fn parse_permissions(path: &Path, text: &str) -> Result<pr::PermissionSet, Failure> {
    let doc: PermissionsDoc = parse_json(path, text)?;
    doc.to_proto()
        .map_err(|e| Failure::usage(format!("--file {}: {e}", path.display())))
}

/// Parses the text of a token statements file (`tokens mint --file`): at least one statement.
/// Public for the fuzz targets ([`crate::fuzzing`]).
pub fn parse_statements(path: &Path, text: &str) -> Result<Vec<StatementDoc>, Failure> {
    let doc: StatementsDoc = parse_json(path, text)?;
    if doc.statements.is_empty() {
        return Err(Failure::usage(format!(
            "--file {}: statements: at least one statement is required",
            path.display()
        )));
    }
    Ok(doc.statements)
}

/// Maps permission words to enum values, naming the offending entry.
fn permission_values(
    field: &str,
    words: &[String],
    map: &[(&str, i32)],
) -> Result<Vec<i32>, String> {
    if words.is_empty() {
        let names: Vec<&str> = map.iter().map(|(n, _)| *n).collect();
        return Err(format!(
            "{field}: at least one permission is required ({})",
            names.join(", ")
        ));
    }
    words
        .iter()
        .enumerate()
        .map(|(i, word)| {
            map.iter()
                .find(|(name, _)| name.eq_ignore_ascii_case(word.trim()))
                .map(|(_, value)| *value)
                .ok_or_else(|| {
                    let names: Vec<&str> = map.iter().map(|(n, _)| *n).collect();
                    format!(
                        "{field}[{i}]: unknown permission {word:?}; use {}",
                        names.join(", ")
                    )
                })
        })
        .collect()
}

fn permission_words(values: &[i32], map: &[(&str, i32)]) -> Vec<String> {
    values
        .iter()
        .map(|v| {
            map.iter()
                .find(|(_, value)| value == v)
                .map_or_else(|| format!("unknown({v})"), |(name, _)| (*name).to_owned())
        })
        .collect()
}

const ACCOUNT_PERMS: [(&str, i32); 3] = [
    ("read", pr::AccountManagementPermissions::AccountRead as i32),
    (
        "write",
        pr::AccountManagementPermissions::AccountWrite as i32,
    ),
    ("list", pr::AccountManagementPermissions::AccountList as i32),
];
const AUTH_PERMS: [(&str, i32); 3] = [
    ("read", pr::AuthManagementPermissions::AuthRead as i32),
    ("write", pr::AuthManagementPermissions::AuthWrite as i32),
    ("list", pr::AuthManagementPermissions::AuthList as i32),
];
const RESOURCE_PERMS: [(&str, i32); 3] = [
    (
        "read",
        pr::ResourceManagementPermissions::ResourceRead as i32,
    ),
    (
        "write",
        pr::ResourceManagementPermissions::ResourceWrite as i32,
    ),
    (
        "list",
        pr::ResourceManagementPermissions::ResourceList as i32,
    ),
];
const CACHE_PERMS: [(&str, i32); 3] = [
    ("read", pr::CacheApiPermissions::CacheRead as i32),
    ("write", pr::CacheApiPermissions::CacheWrite as i32),
    ("list", pr::CacheApiPermissions::CacheList as i32),
];
const TOPIC_PERMS: [(&str, i32); 3] = [
    ("read", pr::TopicApiPermissions::TopicRead as i32),
    ("write", pr::TopicApiPermissions::TopicWrite as i32),
    ("list", pr::TopicApiPermissions::TopicList as i32),
];
const STORE_PERMS: [(&str, i32); 3] = [
    ("read", pr::StoreApiPermissions::StoreRead as i32),
    ("write", pr::StoreApiPermissions::StoreWrite as i32),
    ("list", pr::StoreApiPermissions::StoreList as i32),
];
const FUNCTION_PERMS: [(&str, i32); 1] =
    [("invoke", pr::FunctionApiPermissions::FunctionInvoke as i32)];

/// A name selector: `"*"` is every one (`None`), anything else one name.
fn named(field: &str, value: &str) -> Result<Option<String>, String> {
    match value {
        "" => Err(format!("{field}: must not be empty (use \"*\" for all)")),
        "*" => Ok(None),
        name => Ok(Some(name.to_owned())),
    }
}

/// The items of a cache or store that a rule or statement covers.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Items {
    All,
    Key(Vec<u8>),
    Prefix(Vec<u8>),
}

/// The item fields of a document: `key`, `key_prefix`, `key_base64`, `key_prefix_base64`.
type ItemFields = (
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
);

impl Items {
    /// From a document's item fields: at most one may be set; none is every item.
    fn parse(
        field: &str,
        key: &Option<String>,
        key_prefix: &Option<String>,
        key_base64: &Option<String>,
        key_prefix_base64: &Option<String>,
    ) -> Result<Items, String> {
        let set = [key, key_prefix, key_base64, key_prefix_base64]
            .iter()
            .filter(|f| f.is_some())
            .count();
        if set > 1 {
            return Err(format!(
                "{field}: set at most one of key, key_prefix, key_base64, key_prefix_base64"
            ));
        }
        let decode = |name: &str, value: &str| {
            STANDARD
                .decode(value)
                .map_err(|e| format!("{field}.{name}: not base64: {e}"))
        };
        Ok(match (key, key_prefix, key_base64, key_prefix_base64) {
            (Some(k), ..) => Items::Key(k.as_bytes().to_vec()),
            (_, Some(k), ..) => Items::Prefix(k.as_bytes().to_vec()),
            (_, _, Some(k), _) => Items::Key(decode("key_base64", k)?),
            (.., Some(k)) => Items::Prefix(decode("key_prefix_base64", k)?),
            _ => Items::All,
        })
    }

    /// A document's item fields: UTF-8 keys as text, any other bytes in base64.
    fn fields(&self) -> ItemFields {
        let (prefix, bytes) = match self {
            Items::All => return (None, None, None, None),
            Items::Key(k) => (false, k),
            Items::Prefix(k) => (true, k),
        };
        match (prefix, std::str::from_utf8(bytes)) {
            (false, Ok(text)) => (Some(text.to_owned()), None, None, None),
            (true, Ok(text)) => (None, Some(text.to_owned()), None, None),
            (false, Err(_)) => (None, None, Some(STANDARD.encode(bytes)), None),
            (true, Err(_)) => (None, None, None, Some(STANDARD.encode(bytes))),
        }
    }

    fn pr_cache(self) -> pr::rule::cache_rule::CacheItem {
        use pr::cache_item_selector::Kind;
        use pr::rule::cache_rule::CacheItem;
        let kind = match self {
            Items::All => return CacheItem::AllItems(pr::All {}),
            Items::Key(k) => Kind::Key(k),
            Items::Prefix(k) => Kind::KeyPrefix(k),
        };
        CacheItem::ItemSelector(pr::CacheItemSelector { kind: Some(kind) })
    }

    fn pr_store(self) -> pr::rule::store_rule::StoreItem {
        use pr::rule::store_rule::StoreItem;
        use pr::store_item_selector::Kind;
        let kind = match self {
            Items::All => return StoreItem::AllItems(pr::All {}),
            Items::Key(k) => Kind::Key(k),
            Items::Prefix(k) => Kind::KeyPrefix(k),
        };
        StoreItem::ItemSelector(pr::StoreItemSelector { kind: Some(kind) })
    }

    fn pm_cache(self) -> pm::permissions_type::cache_permissions::CacheItem {
        use pm::permissions_type::cache_item_selector::Kind;
        use pm::permissions_type::cache_permissions::CacheItem;
        let kind = match self {
            Items::All => return CacheItem::AllItems(pm::permissions_type::All {}),
            Items::Key(k) => Kind::Key(k),
            Items::Prefix(k) => Kind::KeyPrefix(k),
        };
        CacheItem::ItemSelector(pm::permissions_type::CacheItemSelector { kind: Some(kind) })
    }
}

/// The topics or functions that a rule or statement covers.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Names {
    All,
    Name(String),
    Prefix(String),
}

impl Names {
    /// From a name field and a prefix field: at most one may be set; none (or a name of `"*"`)
    /// is all of them.
    fn parse(
        field: &str,
        (name_field, name): (&str, &Option<String>),
        (prefix_field, prefix): (&str, &Option<String>),
    ) -> Result<Names, String> {
        match (name, prefix) {
            (Some(_), Some(_)) => Err(format!(
                "{field}: set {name_field} or {prefix_field}, not both"
            )),
            (Some(n), None) if n == "*" => Ok(Names::All),
            (Some(n), None) => Ok(Names::Name(n.clone())),
            (None, Some(p)) => Ok(Names::Prefix(p.clone())),
            (None, None) => Ok(Names::All),
        }
    }

    /// A document's name and prefix fields.
    fn fields(self) -> (Option<String>, Option<String>) {
        match self {
            Names::All => (None, None),
            Names::Name(n) => (Some(n), None),
            Names::Prefix(p) => (None, Some(p)),
        }
    }
}

fn pr_cache(name: String) -> pr::CacheSelector {
    pr::CacheSelector {
        kind: Some(pr::cache_selector::Kind::CacheName(name)),
    }
}

/// A cache selector's document form: the name, or `"*"` for every cache.
fn cache_name(selector: Option<&pr::CacheSelector>) -> String {
    match selector.and_then(|s| s.kind.as_ref()) {
        Some(pr::cache_selector::Kind::CacheName(n)) => n.clone(),
        None => "*".to_owned(),
    }
}

fn pm_cache(name: String) -> pm::permissions_type::CacheSelector {
    pm::permissions_type::CacheSelector {
        kind: Some(pm::permissions_type::cache_selector::Kind::CacheName(name)),
    }
}

impl PermissionsDoc {
    /// The protobuf permission set. Structure is checked here (unknown words, conflicting
    /// selectors); what the values may be is the server's to say.
    pub fn to_proto(&self) -> Result<pr::PermissionSet, String> {
        let kind = if self.super_user {
            if !self.rules.is_empty() {
                return Err("super_user: true takes no rules".into());
            }
            pr::permission_set::Kind::SuperUser(pr::SuperUserPermissions::SuperUser as i32)
        } else {
            if self.rules.is_empty() {
                return Err("rules: at least one rule is required".into());
            }
            let rules = self
                .rules
                .iter()
                .enumerate()
                .map(|(i, rule)| rule.to_proto(&format!("rules[{i}]")))
                .collect::<Result<Vec<_>, String>>()?;
            pr::permission_set::Kind::Explicit(pr::ExplicitPermissions { rules })
        };
        if !self.ip_filter.is_empty() && !self.ip_filters.is_empty() {
            return Err("set ip_filter or ip_filters, not both".into());
        }
        let filters: Vec<&Vec<String>> = if self.ip_filter.is_empty() {
            self.ip_filters.iter().collect()
        } else {
            vec![&self.ip_filter]
        };
        let conditions = filters
            .into_iter()
            .map(|ranges| pr::Condition {
                condition: Some(pr::condition::Condition::IpFilter(pr::IpFilter {
                    allowed_cidr_ranges: ranges.iter().map(|r| cidr_range(r)).collect(),
                })),
            })
            .collect();
        Ok(pr::PermissionSet {
            kind: Some(kind),
            conditions,
        })
    }

    /// The document form of a permission set the server returned.
    pub fn from_proto(set: &pr::PermissionSet) -> PermissionsDoc {
        let mut doc = PermissionsDoc::default();
        match &set.kind {
            Some(pr::permission_set::Kind::SuperUser(_)) => doc.super_user = true,
            Some(pr::permission_set::Kind::Explicit(e)) => {
                doc.rules = e.rules.iter().map(RuleDoc::from_proto).collect();
            }
            None => {}
        }
        let mut filters: Vec<Vec<String>> = set
            .conditions
            .iter()
            .filter_map(|c| c.condition.as_ref())
            .map(|pr::condition::Condition::IpFilter(f)| {
                f.allowed_cidr_ranges
                    .iter()
                    .filter_map(|r| r.range.as_ref())
                    .map(|range| match range {
                        pr::ip_filter::cidr_range::Range::Ipv4(s)
                        | pr::ip_filter::cidr_range::Range::Ipv6(s) => s.clone(),
                    })
                    .collect()
            })
            .collect();
        if filters.len() == 1 {
            doc.ip_filter = filters.remove(0);
        } else {
            doc.ip_filters = filters;
        }
        doc
    }
}

/// A CIDR range of an ip_filter: IPv6 when it has a colon (the server checks the rest).
fn cidr_range(range: &str) -> pr::ip_filter::CidrRange {
    use pr::ip_filter::cidr_range::Range;
    let range = range.trim().to_owned();
    pr::ip_filter::CidrRange {
        range: Some(if range.contains(':') {
            Range::Ipv6(range)
        } else {
            Range::Ipv4(range)
        }),
    }
}

impl RuleDoc {
    fn to_proto(&self, field: &str) -> Result<pr::Rule, String> {
        use pr::rule::Kind;
        let perms = |family: &str, words: &[String], map: &[(&str, i32)]| {
            permission_values(&format!("{field}.{family}.permissions"), words, map)
        };
        let kind = match self {
            RuleDoc::Account(r) => Kind::AccountManagementRule(pr::rule::AccountManagementRule {
                permissions: perms("account", &r.permissions, &ACCOUNT_PERMS)?,
            }),
            RuleDoc::Auth(r) => Kind::AuthManagementRule(pr::rule::AuthManagementRule {
                permissions: perms("auth", &r.permissions, &AUTH_PERMS)?,
                auth_items: Some(pr::rule::auth_management_rule::AuthItems::AllItems(
                    pr::All {},
                )),
            }),
            RuleDoc::Resource(r) => {
                Kind::ResourceManagementRule(pr::rule::ResourceManagementRule {
                    permissions: perms("resource", &r.permissions, &RESOURCE_PERMS)?,
                    resources: Some(pr::rule::resource_management_rule::Resources::AllResources(
                        pr::All {},
                    )),
                })
            }
            RuleDoc::Cache(r) => Kind::CacheRule(r.to_proto(&format!("{field}.cache"))?),
            RuleDoc::Topic(r) => Kind::TopicRule(r.to_proto(&format!("{field}.topic"))?),
            RuleDoc::Store(r) => Kind::StorageRule(r.to_proto(&format!("{field}.store"))?),
            RuleDoc::Function(r) => Kind::FunctionRule(r.to_proto(&format!("{field}.function"))?),
            RuleDoc::Unknown {} => return Err(format!("{field}: unknown rule type")),
        };
        Ok(pr::Rule { kind: Some(kind) })
    }

    fn from_proto(rule: &pr::Rule) -> RuleDoc {
        use pr::rule::Kind;
        let management = |values: &[i32], map: &[(&str, i32)]| ManagementDoc {
            permissions: permission_words(values, map),
        };
        match &rule.kind {
            None => RuleDoc::Unknown {},
            Some(Kind::AccountManagementRule(r)) => {
                RuleDoc::Account(management(&r.permissions, &ACCOUNT_PERMS))
            }
            Some(Kind::AuthManagementRule(r)) => {
                RuleDoc::Auth(management(&r.permissions, &AUTH_PERMS))
            }
            Some(Kind::ResourceManagementRule(r)) => {
                RuleDoc::Resource(management(&r.permissions, &RESOURCE_PERMS))
            }
            Some(Kind::CacheRule(r)) => RuleDoc::Cache(CacheRuleDoc::from_proto(r)),
            Some(Kind::TopicRule(r)) => RuleDoc::Topic(TopicRuleDoc::from_proto(r)),
            Some(Kind::StorageRule(r)) => RuleDoc::Store(StoreRuleDoc::from_proto(r)),
            Some(Kind::FunctionRule(r)) => RuleDoc::Function(FunctionRuleDoc::from_proto(r)),
        }
    }
}

impl CacheRuleDoc {
    fn to_proto(&self, f: &str) -> Result<pr::rule::CacheRule, String> {
        use pr::rule::cache_rule::Cache;
        let items = Items::parse(
            f,
            &self.key,
            &self.key_prefix,
            &self.key_base64,
            &self.key_prefix_base64,
        )?;
        Ok(pr::rule::CacheRule {
            permissions: permission_values(
                &format!("{f}.permissions"),
                &self.permissions,
                &CACHE_PERMS,
            )?,
            cache: Some(match named(&format!("{f}.cache"), &self.cache)? {
                None => Cache::AllCaches(pr::All {}),
                Some(name) => Cache::CacheSelector(pr_cache(name)),
            }),
            cache_item: Some(items.pr_cache()),
        })
    }

    fn from_proto(r: &pr::rule::CacheRule) -> CacheRuleDoc {
        use pr::cache_item_selector::Kind;
        use pr::rule::cache_rule::{Cache, CacheItem};
        let items = match &r.cache_item {
            Some(CacheItem::ItemSelector(s)) => match &s.kind {
                Some(Kind::Key(k)) => Items::Key(k.clone()),
                Some(Kind::KeyPrefix(k)) => Items::Prefix(k.clone()),
                None => Items::All,
            },
            _ => Items::All,
        };
        let (key, key_prefix, key_base64, key_prefix_base64) = items.fields();
        CacheRuleDoc {
            permissions: permission_words(&r.permissions, &CACHE_PERMS),
            cache: cache_name(match &r.cache {
                Some(Cache::CacheSelector(s)) => Some(s),
                _ => None,
            }),
            key,
            key_prefix,
            key_base64,
            key_prefix_base64,
        }
    }
}

impl StoreRuleDoc {
    fn to_proto(&self, f: &str) -> Result<pr::rule::StoreRule, String> {
        use pr::rule::store_rule::Store;
        let items = Items::parse(
            f,
            &self.key,
            &self.key_prefix,
            &self.key_base64,
            &self.key_prefix_base64,
        )?;
        Ok(pr::rule::StoreRule {
            permissions: permission_values(
                &format!("{f}.permissions"),
                &self.permissions,
                &STORE_PERMS,
            )?,
            store: Some(match named(&format!("{f}.store"), &self.store)? {
                None => Store::AllStores(pr::All {}),
                Some(name) => Store::StoreSelector(pr::StoreSelector {
                    kind: Some(pr::store_selector::Kind::StoreName(name)),
                }),
            }),
            store_item: Some(items.pr_store()),
        })
    }

    fn from_proto(r: &pr::rule::StoreRule) -> StoreRuleDoc {
        use pr::rule::store_rule::{Store, StoreItem};
        use pr::store_item_selector::Kind;
        let items = match &r.store_item {
            Some(StoreItem::ItemSelector(s)) => match &s.kind {
                Some(Kind::Key(k)) => Items::Key(k.clone()),
                Some(Kind::KeyPrefix(k)) => Items::Prefix(k.clone()),
                None => Items::All,
            },
            _ => Items::All,
        };
        let (key, key_prefix, key_base64, key_prefix_base64) = items.fields();
        let store = match &r.store {
            Some(Store::StoreSelector(pr::StoreSelector {
                kind: Some(pr::store_selector::Kind::StoreName(n)),
            })) => n.clone(),
            _ => "*".to_owned(),
        };
        StoreRuleDoc {
            permissions: permission_words(&r.permissions, &STORE_PERMS),
            store,
            key,
            key_prefix,
            key_base64,
            key_prefix_base64,
        }
    }
}

impl TopicRuleDoc {
    fn to_proto(&self, f: &str) -> Result<pr::rule::TopicRule, String> {
        use pr::rule::topic_rule::{Cache, Topic};
        use pr::topic_selector::Kind;
        let topics = Names::parse(
            f,
            ("topic", &self.topic),
            ("topic_prefix", &self.topic_prefix),
        )?;
        Ok(pr::rule::TopicRule {
            permissions: permission_values(
                &format!("{f}.permissions"),
                &self.permissions,
                &TOPIC_PERMS,
            )?,
            cache: Some(match named(&format!("{f}.cache"), &self.cache)? {
                None => Cache::AllCaches(pr::All {}),
                Some(name) => Cache::CacheSelector(pr_cache(name)),
            }),
            topic: Some(match topics {
                Names::All => Topic::AllTopics(pr::All {}),
                Names::Name(n) => Topic::TopicSelector(pr::TopicSelector {
                    kind: Some(Kind::TopicName(n)),
                }),
                Names::Prefix(p) => Topic::TopicSelector(pr::TopicSelector {
                    kind: Some(Kind::TopicNamePrefix(p)),
                }),
            }),
        })
    }

    fn from_proto(r: &pr::rule::TopicRule) -> TopicRuleDoc {
        use pr::rule::topic_rule::{Cache, Topic};
        use pr::topic_selector::Kind;
        let topics = match &r.topic {
            Some(Topic::TopicSelector(s)) => match &s.kind {
                Some(Kind::TopicName(n)) => Names::Name(n.clone()),
                Some(Kind::TopicNamePrefix(p)) => Names::Prefix(p.clone()),
                None => Names::All,
            },
            _ => Names::All,
        };
        let (topic, topic_prefix) = topics.fields();
        TopicRuleDoc {
            permissions: permission_words(&r.permissions, &TOPIC_PERMS),
            cache: cache_name(match &r.cache {
                Some(Cache::CacheSelector(s)) => Some(s),
                _ => None,
            }),
            topic,
            topic_prefix,
        }
    }
}

impl FunctionRuleDoc {
    fn to_proto(&self, f: &str) -> Result<pr::rule::FunctionRule, String> {
        use pr::function_selector::Kind;
        use pr::rule::function_rule::{Cache, Function};
        let functions = Names::parse(
            f,
            ("function", &self.function),
            ("function_prefix", &self.function_prefix),
        )?;
        Ok(pr::rule::FunctionRule {
            permissions: permission_values(
                &format!("{f}.permissions"),
                &self.permissions,
                &FUNCTION_PERMS,
            )?,
            cache: Some(match named(&format!("{f}.cache"), &self.cache)? {
                None => Cache::AllCaches(pr::All {}),
                Some(name) => Cache::CacheSelector(pr_cache(name)),
            }),
            function: Some(match functions {
                Names::All => Function::AllFunctions(pr::All {}),
                Names::Name(n) => Function::FunctionSelector(pr::FunctionSelector {
                    kind: Some(Kind::FunctionName(n)),
                }),
                Names::Prefix(p) => Function::FunctionSelector(pr::FunctionSelector {
                    kind: Some(Kind::FunctionPrefix(p)),
                }),
            }),
        })
    }

    fn from_proto(r: &pr::rule::FunctionRule) -> FunctionRuleDoc {
        use pr::function_selector::Kind;
        use pr::rule::function_rule::{Cache, Function};
        let functions = match &r.function {
            Some(Function::FunctionSelector(s)) => match &s.kind {
                Some(Kind::FunctionName(n)) => Names::Name(n.clone()),
                Some(Kind::FunctionPrefix(p)) => Names::Prefix(p.clone()),
                None => Names::All,
            },
            _ => Names::All,
        };
        let (function, function_prefix) = functions.fields();
        FunctionRuleDoc {
            permissions: permission_words(&r.permissions, &FUNCTION_PERMS),
            cache: cache_name(match &r.cache {
                Some(Cache::CacheSelector(s)) => Some(s),
                _ => None,
            }),
            function,
            function_prefix,
        }
    }
}

impl StatementDoc {
    /// The protobuf statement a token request carries.
    pub fn to_proto(&self, field: &str) -> Result<pm::PermissionsType, String> {
        use pm::permissions_type as pt;
        let kind = match self {
            StatementDoc::Cache(s) => {
                use pt::cache_permissions::Cache;
                let f = format!("{field}.cache");
                let items = Items::parse(
                    &f,
                    &s.key,
                    &s.key_prefix,
                    &s.key_base64,
                    &s.key_prefix_base64,
                )?;
                pt::Kind::CachePermissions(pt::CachePermissions {
                    role: match s.role {
                        Access::Readwrite => pm::CacheRole::CacheReadWrite,
                        Access::Readonly => pm::CacheRole::CacheReadOnly,
                        Access::Writeonly => pm::CacheRole::CacheWriteOnly,
                    } as i32,
                    cache: Some(match named(&format!("{f}.cache"), &s.cache)? {
                        None => Cache::AllCaches(pt::All {}),
                        Some(name) => Cache::CacheSelector(pm_cache(name)),
                    }),
                    cache_item: Some(items.pm_cache()),
                })
            }
            StatementDoc::Topic(s) => {
                use pt::topic_permissions::{Cache, Topic};
                use pt::topic_selector::Kind;
                let f = format!("{field}.topic");
                let topics =
                    Names::parse(&f, ("topic", &s.topic), ("topic_prefix", &s.topic_prefix))?;
                pt::Kind::TopicPermissions(pt::TopicPermissions {
                    role: match s.role {
                        Access::Readwrite => pm::TopicRole::TopicReadWrite,
                        Access::Readonly => pm::TopicRole::TopicReadOnly,
                        Access::Writeonly => pm::TopicRole::TopicWriteOnly,
                    } as i32,
                    cache: Some(match named(&format!("{f}.cache"), &s.cache)? {
                        None => Cache::AllCaches(pt::All {}),
                        Some(name) => Cache::CacheSelector(pm_cache(name)),
                    }),
                    topic: Some(match topics {
                        Names::All => Topic::AllTopics(pt::All {}),
                        Names::Name(n) => Topic::TopicSelector(pt::TopicSelector {
                            kind: Some(Kind::TopicName(n)),
                        }),
                        Names::Prefix(p) => Topic::TopicSelector(pt::TopicSelector {
                            kind: Some(Kind::TopicNamePrefix(p)),
                        }),
                    }),
                })
            }
            StatementDoc::Function(s) => {
                use pt::function_permissions::{Cache, Function};
                use pt::function_selector::Kind;
                let f = format!("{field}.function");
                let functions = Names::parse(
                    &f,
                    ("function", &s.function),
                    ("function_prefix", &s.function_prefix),
                )?;
                pt::Kind::FunctionPermissions(pt::FunctionPermissions {
                    role: pm::FunctionRole::FunctionInvoke as i32,
                    cache: Some(match named(&format!("{f}.cache"), &s.cache)? {
                        None => Cache::AllCaches(pt::All {}),
                        Some(name) => Cache::CacheSelector(pm_cache(name)),
                    }),
                    function: Some(match functions {
                        Names::All => Function::AllFunctions(pt::All {}),
                        Names::Name(n) => Function::FunctionSelector(pt::FunctionSelector {
                            kind: Some(Kind::FunctionName(n)),
                        }),
                        Names::Prefix(p) => Function::FunctionSelector(pt::FunctionSelector {
                            kind: Some(Kind::FunctionNamePrefix(p)),
                        }),
                    }),
                })
            }
        };
        Ok(pm::PermissionsType { kind: Some(kind) })
    }
}

/// The statements of `tokens mint`, from its flags or its file.
fn mint_statements(args: &TokensMint) -> Result<Vec<pm::PermissionsType>, Failure> {
    let docs: Vec<StatementDoc> = if let Some(path) = &args.file {
        parse_statements(path, &read_file(path)?)?
    } else {
        // clap guarantees --cache and --role here; checked again rather than unwrapped.
        let (Some(cache), Some(role)) = (&args.cache, args.role) else {
            return Err(Failure::usage(
                "--cache and --role are required without --file",
            ));
        };
        let statement = if args.topic.is_some() || args.topic_prefix.is_some() {
            StatementDoc::Topic(TopicStatementDoc {
                role,
                cache: cache.clone(),
                topic: args.topic.clone(),
                topic_prefix: args.topic_prefix.clone(),
            })
        } else {
            StatementDoc::Cache(CacheStatementDoc {
                role,
                cache: cache.clone(),
                key: args.key.clone(),
                key_prefix: args.key_prefix.clone(),
                key_base64: None,
                key_prefix_base64: None,
            })
        };
        vec![statement]
    };
    let origin = match &args.file {
        Some(path) => format!("--file {}: ", path.display()),
        None => String::new(),
    };
    docs.iter()
        .enumerate()
        .map(|(i, s)| {
            s.to_proto(&format!("statements[{i}]"))
                .map_err(|e| Failure::usage(format!("{origin}{e}")))
        })
        .collect()
}

/// One line per rule, for people: family, permissions, scope.
fn rule_rows(doc: &PermissionsDoc) -> Vec<Vec<String>> {
    let items = |key: &Option<String>,
                 key_prefix: &Option<String>,
                 key_b64: &Option<String>,
                 prefix_b64: &Option<String>| {
        if let Some(k) = key {
            format!("key={k:?}")
        } else if let Some(k) = key_prefix {
            format!("key_prefix={k:?}")
        } else if let Some(k) = key_b64 {
            format!("key_base64={k}")
        } else if let Some(k) = prefix_b64 {
            format!("key_prefix_base64={k}")
        } else {
            "items=*".to_owned()
        }
    };
    let name = |n: &str| {
        if n == "*" {
            "*".to_owned()
        } else {
            format!("{n:?}")
        }
    };
    let text = |field: &str, all: &str, n: &Option<String>, p: &Option<String>| match (n, p) {
        (Some(n), _) => format!("{field}={n:?}"),
        (None, Some(p)) => format!("{field}_prefix={p:?}"),
        (None, None) => format!("{all}=*"),
    };
    doc.rules
        .iter()
        .map(|rule| {
            let (family, permissions, scope) = match rule {
                RuleDoc::Account(r) => ("account", &r.permissions, String::new()),
                RuleDoc::Auth(r) => ("auth", &r.permissions, String::new()),
                RuleDoc::Resource(r) => ("resource", &r.permissions, String::new()),
                RuleDoc::Cache(r) => (
                    "cache",
                    &r.permissions,
                    format!(
                        "cache={} {}",
                        name(&r.cache),
                        items(&r.key, &r.key_prefix, &r.key_base64, &r.key_prefix_base64)
                    ),
                ),
                RuleDoc::Topic(r) => (
                    "topic",
                    &r.permissions,
                    format!(
                        "cache={} {}",
                        name(&r.cache),
                        text("topic", "topics", &r.topic, &r.topic_prefix)
                    ),
                ),
                RuleDoc::Store(r) => (
                    "store",
                    &r.permissions,
                    format!(
                        "store={} {}",
                        name(&r.store),
                        items(&r.key, &r.key_prefix, &r.key_base64, &r.key_prefix_base64)
                    ),
                ),
                RuleDoc::Function(r) => (
                    "function",
                    &r.permissions,
                    format!(
                        "cache={} {}",
                        name(&r.cache),
                        text("function", "functions", &r.function, &r.function_prefix)
                    ),
                ),
                RuleDoc::Unknown {} => {
                    return vec!["unknown".into(), "-".into(), "-".into()];
                }
            };
            vec![
                family.to_owned(),
                cell(&permissions.join(",")),
                cell(&printable(&scope)),
            ]
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// JSON output shapes
// ---------------------------------------------------------------------------------------------

#[derive(Serialize)]
struct KeyJson {
    key_id: String,
    account_id: String,
    role_id: String,
    kind: &'static str,
    status: &'static str,
    description: String,
    issued_at_epoch_seconds: u64,
    expires_at_epoch_seconds: Option<u64>,
    revoked_at_epoch_seconds: Option<u64>,
    created_by: String,
    token_id: String,
}

fn key_status(status: i32) -> &'static str {
    match pb::KeyStatus::try_from(status) {
        Ok(pb::KeyStatus::Active) => "active",
        Ok(pb::KeyStatus::Expired) => "expired",
        Ok(pb::KeyStatus::Revoked) => "revoked",
        _ => "unknown",
    }
}

fn key_kind(kind: i32) -> &'static str {
    match pb::KeyKind::try_from(kind) {
        Ok(pb::KeyKind::Role) => "role",
        Ok(pb::KeyKind::Inline) => "inline",
        _ => "unknown",
    }
}

fn key_json(k: &pb::ApiKeyInfo) -> KeyJson {
    KeyJson {
        key_id: k.key_id.clone(),
        account_id: k.account_id.clone(),
        role_id: k.role_id.clone(),
        kind: key_kind(k.kind),
        status: key_status(k.status),
        description: k.description.clone(),
        issued_at_epoch_seconds: k.issued_at_epoch_seconds,
        expires_at_epoch_seconds: k.expires_at_epoch_seconds,
        revoked_at_epoch_seconds: k.revoked_at_epoch_seconds,
        created_by: k.created_by.clone(),
        token_id: k.token_id.clone(),
    }
}

#[derive(Serialize)]
struct CreatedKeyJson {
    /// The key itself, shown this once.
    api_key: String,
    key_id: String,
    account_id: String,
    role_id: String,
    description: String,
    issued_at_epoch_seconds: u64,
    expires_at_epoch_seconds: Option<u64>,
}

#[derive(Serialize)]
struct KeyListJson {
    keys: Vec<KeyJson>,
    /// --limit stopped the listing before the last key.
    truncated: bool,
}

#[derive(Serialize, Clone)]
struct Confirmation {
    confirmed: bool,
    confirmed_cells: Vec<String>,
    pending_cells: Vec<String>,
    revocation_id: String,
}

#[derive(Serialize)]
struct RevokedKeyJson {
    key_id: String,
    revoked: bool,
    revocation_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    confirmation: Option<Confirmation>,
}

#[derive(Serialize)]
struct RoleJson {
    role_id: String,
    name: String,
    kind: &'static str,
    description: String,
    created_at_epoch_seconds: Option<u64>,
    updated_at_epoch_seconds: Option<u64>,
    permissions: PermissionsDoc,
}

fn role_kind(kind: i32) -> &'static str {
    match pb::RoleKind::try_from(kind) {
        Ok(pb::RoleKind::System) => "system",
        Ok(pb::RoleKind::Custom) => "custom",
        _ => "unknown",
    }
}

fn role_json(r: &pb::Role) -> RoleJson {
    RoleJson {
        role_id: r.role_id.clone(),
        name: r.name.clone(),
        kind: role_kind(r.kind),
        description: r.description.clone(),
        created_at_epoch_seconds: Some(r.created_at_epoch_seconds).filter(|t| *t > 0),
        updated_at_epoch_seconds: Some(r.updated_at_epoch_seconds).filter(|t| *t > 0),
        permissions: r
            .permissions
            .as_ref()
            .map(PermissionsDoc::from_proto)
            .unwrap_or_default(),
    }
}

#[derive(Serialize)]
struct RoleListJson {
    roles: Vec<RoleJson>,
}

#[derive(Serialize)]
struct DeletedRoleJson {
    role_id: String,
    deleted: bool,
}

#[derive(Serialize)]
struct MintedTokenJson {
    /// The token itself, shown this once.
    token: String,
    /// The token's own id (jti), for `tokens revoke --id`.
    id: Option<String>,
    token_id: Option<String>,
    endpoint: String,
    valid_until_epoch_seconds: u64,
}

#[derive(Serialize)]
struct RevokedTokenJson {
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    token_id: Option<String>,
    revoked: bool,
    revocation_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    confirmation: Option<Confirmation>,
}

#[derive(Serialize)]
struct NodeJson {
    node_id: String,
    cell: String,
    position: String,
    lag_ms: u64,
    last_seen_ms_ago: u64,
    live: bool,
}

#[derive(Serialize)]
struct CellsJson {
    nodes: Vec<NodeJson>,
    latest_event_id: Option<String>,
}

#[derive(Serialize)]
struct AuditEventJson {
    id: String,
    at_epoch_millis: u64,
    account_id: String,
    actor_key_id: String,
    peer_address: String,
    action: String,
    target: String,
    detail: String,
}

#[derive(Serialize)]
struct AuditJson {
    events: Vec<AuditEventJson>,
    /// --limit stopped the listing before the oldest matching event.
    truncated: bool,
}

// ---------------------------------------------------------------------------------------------
// keys
// ---------------------------------------------------------------------------------------------

async fn keys_create(client: &ClientArgs, args: KeysCreate) -> Result<(), Failure> {
    use ga::generate_global_api_key_request::{Expires, Expiry, Never};
    let expiry = match (args.expires_at, args.expires_in) {
        (Some(at_ms), _) => Expiry::Expires(Expires {
            expiration_epoch_seconds: at_ms / 1000,
        }),
        (None, Some(after)) => Expiry::Expires(Expires {
            expiration_epoch_seconds: (now_ms() / 1000).saturating_add(after.as_secs()),
        }),
        (None, None) => Expiry::Never(Never {}),
    };
    let api = Api::connect(client).await?;
    let role_id = api.resolve_role(&args.role).await;
    // The role as the operator named it, and its id when that differs.
    let role_label = if role_id == args.role {
        printable(&role_id)
    } else {
        format!("{} ({})", printable(&args.role), printable(&role_id))
    };
    // One request id for this command: when the store answers UNAVAILABLE (Redis failing
    // over, replicas not acknowledging) the call is retried under the same id, so it creates at
    // most one key, and the key it reports is the one that exists.
    let request_id = uuid::Uuid::new_v4().to_string();
    let message = ga::GenerateGlobalApiKeyRequest {
        role_id,
        description: args.description,
        expiry: Some(expiry),
    };
    let mut attempt = 0;
    let created = loop {
        let mut request = api.req(message.clone());
        if let Ok(id) = request_id.parse() {
            request
                .metadata_mut()
                .insert(authcell_idempotency_key(), id);
        }
        match api.global_admin().generate_global_api_key(request).await {
            Err(status)
                if status.code() == tonic::Code::Unavailable && attempt < CREATE_RETRIES =>
            {
                attempt += 1;
                tokio::time::sleep(std::time::Duration::from_millis(500 * attempt)).await;
            }
            other => break other.map_err(from_status)?.into_inner(),
        }
    };
    let info = created.key_info.unwrap_or_default();
    if client.json {
        return json_out(&CreatedKeyJson {
            api_key: created.api_key,
            key_id: info.key_id,
            account_id: info.account_id,
            role_id: info.role_id,
            description: info.description,
            issued_at_epoch_seconds: info.issued_at_epoch_seconds,
            expires_at_epoch_seconds: info.expires_at_epoch_seconds,
        });
    }
    out(&format!("{}\n", created.api_key));
    note(&format!(
        "Created key {} (role {role_label}, {}). The key is printed on stdout this once: store it now.\n",
        info.key_id,
        match info.expires_at_epoch_seconds {
            Some(at) => format!("expires {}", format_secs(at)),
            None => "never expires".to_owned(),
        }
    ));
    Ok(())
}

async fn keys_list(client: &ClientArgs, args: KeysList) -> Result<(), Failure> {
    let api = Api::connect(client).await?;
    let limit = args.limit.map(|n| n as usize);
    let mut keys: Vec<pb::ApiKeyInfo> = Vec::new();
    let mut next_token = String::new();
    let mut truncated = false;
    loop {
        let page_size = limit.map_or(MAX_PAGE, |n| {
            u32::try_from(n - keys.len()).map_or(MAX_PAGE, |left| left.min(MAX_PAGE))
        });
        let page = api
            .admin()
            .list_api_keys(api.req(pb::ListApiKeysRequest {
                limit: page_size,
                next_token: next_token.clone(),
                include_inactive: args.all,
            }))
            .await
            .map_err(from_status)?
            .into_inner();
        keys.extend(page.keys);
        if page.next_token.is_empty() {
            break;
        }
        if limit.is_some_and(|n| keys.len() >= n) {
            truncated = true;
            break;
        }
        if page.next_token == next_token {
            return Err(Failure::new(
                Exit::Server,
                "the server returned the same page twice",
            ));
        }
        next_token = page.next_token;
    }
    if let Some(n) = limit {
        keys.truncate(n);
    }
    if client.json {
        return json_out(&KeyListJson {
            keys: keys.iter().map(key_json).collect(),
            truncated,
        });
    }
    // Custom roles by name, when the caller may list them; their ids otherwise.
    let names: Vec<(String, String)> = match api.list_roles().await {
        Ok(roles) => roles
            .into_iter()
            .filter(|r| r.kind == pb::RoleKind::Custom as i32)
            .map(|r| (r.role_id, r.name))
            .collect(),
        Err(_) => Vec::new(),
    };
    let role_label = |k: &pb::ApiKeyInfo| {
        if k.role_id.is_empty() {
            "(inline)".to_owned()
        } else {
            names
                .iter()
                .find(|(id, _)| *id == k.role_id)
                .map_or_else(|| cell(&k.role_id), |(_, name)| cell(name))
        }
    };
    let rows: Vec<Vec<String>> = keys
        .iter()
        .map(|k| {
            vec![
                cell(&k.key_id),
                role_label(k),
                key_status(k.status).to_owned(),
                cell(&k.description),
                format_secs(k.issued_at_epoch_seconds),
                k.expires_at_epoch_seconds
                    .map_or_else(|| "never".to_owned(), format_secs),
                cell(&k.created_by),
            ]
        })
        .collect();
    out(&render_table(
        &[
            "KEY ID",
            "ROLE",
            "STATUS",
            "DESCRIPTION",
            "ISSUED",
            "EXPIRES",
            "CREATED BY",
        ],
        &rows,
    ));
    if truncated {
        note("More keys exist: raise --limit to see them.\n");
    }
    Ok(())
}

fn key_block(k: &pb::ApiKeyInfo) -> String {
    let mut pairs = vec![
        ("key id", cell(&k.key_id)),
        ("account", cell(&k.account_id)),
        (
            "role",
            if k.role_id.is_empty() {
                "- (inline permissions)".to_owned()
            } else {
                cell(&k.role_id)
            },
        ),
        ("kind", key_kind(k.kind).to_owned()),
        ("status", key_status(k.status).to_owned()),
        ("description", cell(&k.description)),
        ("issued", format_secs(k.issued_at_epoch_seconds)),
        (
            "expires",
            k.expires_at_epoch_seconds
                .map_or_else(|| "never".to_owned(), format_secs),
        ),
    ];
    if let Some(at) = k.revoked_at_epoch_seconds {
        pairs.push(("revoked", format_secs(at)));
    }
    pairs.push(("created by", cell(&k.created_by)));
    if !k.token_id.is_empty() {
        pairs.push(("token id", cell(&k.token_id)));
    }
    render_block(&pairs)
}

async fn keys_describe(client: &ClientArgs, args: KeysDescribe) -> Result<(), Failure> {
    let api = Api::connect(client).await?;
    let key = api
        .admin()
        .describe_api_key(api.req(pb::DescribeApiKeyRequest {
            key_id: args.key_id,
        }))
        .await
        .map_err(from_status)?
        .into_inner()
        .key
        .unwrap_or_default();
    if client.json {
        return json_out(&key_json(&key));
    }
    out(&key_block(&key));
    Ok(())
}

fn confirmation_text(c: &Confirmation, timeout_ms: u32) -> String {
    if c.confirmed {
        format!(
            "Confirmed by every live cell: {}.\n",
            if c.confirmed_cells.is_empty() {
                "-".to_owned()
            } else {
                c.confirmed_cells.join(", ")
            }
        )
    } else {
        format!(
            "Not confirmed within {timeout_ms} ms: pending cells {}; confirmed cells {}.\n",
            if c.pending_cells.is_empty() {
                "-".to_owned()
            } else {
                c.pending_cells.join(", ")
            },
            if c.confirmed_cells.is_empty() {
                "-".to_owned()
            } else {
                c.confirmed_cells.join(", ")
            }
        )
    }
}

async fn keys_revoke(client: &ClientArgs, args: KeysRevoke) -> Result<(), Failure> {
    let api = Api::connect(client).await?;
    let response = api
        .global_admin()
        .revoke_global_api_key(api.req(ga::RevokeGlobalApiKeyRequest {
            key_id: args.key_id.clone(),
        }))
        .await
        .map_err(from_status)?;
    let revocation_id = response
        .metadata()
        .get(REVOCATION_ID_METADATA)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    if !client.json {
        out(&format!("Revoked key {}.\n", printable(&args.key_id)));
    }
    let confirmation = match args.confirm_timeout {
        Some(ms) => Some(
            api.confirm(&revocation_id, ms)
                .await
                .map_err(|f| f.after("the key is revoked; only confirming it failed"))?,
        ),
        None => None,
    };
    if client.json {
        return json_out(&RevokedKeyJson {
            key_id: args.key_id,
            revoked: true,
            revocation_id: Some(revocation_id).filter(|id| !id.is_empty()),
            confirmation,
        });
    }
    if let (Some(c), Some(ms)) = (&confirmation, args.confirm_timeout) {
        out(&confirmation_text(c, ms));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// roles
// ---------------------------------------------------------------------------------------------

fn rules_summary(doc: &PermissionsDoc) -> String {
    let mut text = if doc.super_user {
        "super-user".to_owned()
    } else if doc.rules.len() == 1 {
        "1 rule".to_owned()
    } else {
        format!("{} rules", doc.rules.len())
    };
    if !doc.ip_filter.is_empty() || !doc.ip_filters.is_empty() {
        text.push_str(", ip filter");
    }
    text
}

fn role_block(role: &RoleJson) -> String {
    let when = |t: Option<u64>| t.map_or_else(|| "-".to_owned(), format_secs);
    let mut pairs = vec![
        ("role id", cell(&role.role_id)),
        ("name", cell(&role.name)),
        ("kind", role.kind.to_owned()),
        ("description", cell(&role.description)),
        ("created", when(role.created_at_epoch_seconds)),
        ("updated", when(role.updated_at_epoch_seconds)),
    ];
    let p = &role.permissions;
    if !p.ip_filter.is_empty() {
        pairs.push(("ip filter", printable(&p.ip_filter.join(", "))));
    }
    for filter in &p.ip_filters {
        pairs.push(("ip filter", printable(&filter.join(", "))));
    }
    if p.super_user {
        pairs.push(("rules", "super-user: everything".to_owned()));
    } else {
        pairs.push(("rules", String::new()));
    }
    let mut text = render_block(&pairs);
    if !p.super_user {
        let table = render_table(&["FAMILY", "PERMISSIONS", "SCOPE"], &rule_rows(p));
        for line in table.lines() {
            text.push_str(&format!("  {line}\n"));
        }
    }
    text
}

fn print_role(client: &ClientArgs, role: &pb::Role) -> Result<(), Failure> {
    let role = role_json(role);
    if client.json {
        return json_out(&role);
    }
    out(&role_block(&role));
    Ok(())
}

async fn roles_list(client: &ClientArgs) -> Result<(), Failure> {
    let api = Api::connect(client).await?;
    let roles: Vec<RoleJson> = api.list_roles().await?.iter().map(role_json).collect();
    if client.json {
        return json_out(&RoleListJson { roles });
    }
    let rows: Vec<Vec<String>> = roles
        .iter()
        .map(|r| {
            vec![
                cell(&r.role_id),
                cell(&r.name),
                r.kind.to_owned(),
                rules_summary(&r.permissions),
                cell(&r.description),
            ]
        })
        .collect();
    out(&render_table(
        &["ROLE ID", "NAME", "KIND", "RULES", "DESCRIPTION"],
        &rows,
    ));
    Ok(())
}

async fn roles_describe(client: &ClientArgs, args: RoleRef) -> Result<(), Failure> {
    let api = Api::connect(client).await?;
    let roles = api.list_roles().await?;
    let role = roles
        .iter()
        .find(|r| r.role_id == args.role)
        .or_else(|| roles.iter().find(|r| r.name == args.role))
        .ok_or_else(|| {
            Failure::new(
                Exit::Refused,
                format!(
                    "NOT_FOUND: no role with id or name {:?} in this account",
                    args.role
                ),
            )
        })?;
    print_role(client, role)
}

async fn roles_create(client: &ClientArgs, args: RolesCreate) -> Result<(), Failure> {
    let permissions = read_permissions(&args.file)?;
    let api = Api::connect(client).await?;
    let role = api
        .admin()
        .create_role(api.req(pb::CreateRoleRequest {
            name: args.name,
            permissions: Some(permissions),
            description: args.description,
        }))
        .await
        .map_err(from_status)?
        .into_inner()
        .role
        .unwrap_or_default();
    print_role(client, &role)
}

async fn roles_update(client: &ClientArgs, args: RolesUpdate) -> Result<(), Failure> {
    let permissions = args.file.as_deref().map(read_permissions).transpose()?;
    let api = Api::connect(client).await?;
    let role_id = api.resolve_role(&args.role).await;
    let role = api
        .admin()
        .update_role(api.req(pb::UpdateRoleRequest {
            role_id,
            name: args.name,
            permissions,
            description: args.description,
        }))
        .await
        .map_err(from_status)?
        .into_inner()
        .role
        .unwrap_or_default();
    print_role(client, &role)
}

async fn roles_delete(client: &ClientArgs, args: RoleRef) -> Result<(), Failure> {
    let api = Api::connect(client).await?;
    let role_id = api.resolve_role(&args.role).await;
    api.admin()
        .delete_role(api.req(pb::DeleteRoleRequest {
            role_id: role_id.clone(),
        }))
        .await
        .map_err(from_status)?;
    if client.json {
        return json_out(&DeletedRoleJson {
            role_id,
            deleted: true,
        });
    }
    out(&format!("Deleted role {}.\n", printable(&role_id)));
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// tokens
// ---------------------------------------------------------------------------------------------

/// The id (jti) of a token, read from its payload without verifying it: for display only.
fn token_jti(token: &str) -> Option<String> {
    let payload = token.split('.').nth(1)?;
    let bytes = URL_SAFE_NO_PAD.decode(payload).ok()?;
    let claims: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    claims.get("jti")?.as_str().map(str::to_owned)
}

async fn tokens_mint(client: &ClientArgs, args: TokensMint) -> Result<(), Failure> {
    let statements = mint_statements(&args)?;
    let valid_for_seconds = u32::try_from(args.expires_in.as_secs())
        .map_err(|_| Failure::usage("--expires-in: too long"))?;
    let api = Api::connect(client).await?;
    let minted = api
        .token()
        .generate_disposable_token(api.req(token::GenerateDisposableTokenRequest {
            expires: Some(token::generate_disposable_token_request::Expires { valid_for_seconds }),
            // Empty: the server takes the caller's key from the `authorization` metadata.
            auth_token: String::new(),
            permissions: Some(pm::Permissions {
                kind: Some(pm::permissions::Kind::Explicit(pm::ExplicitPermissions {
                    permissions: statements,
                })),
            }),
            token_id: args.token_id.clone().unwrap_or_default(),
        }))
        .await
        .map_err(from_status)?
        .into_inner();
    let id = token_jti(&minted.api_key);
    if client.json {
        return json_out(&MintedTokenJson {
            token: minted.api_key,
            id,
            token_id: args.token_id,
            endpoint: minted.endpoint,
            valid_until_epoch_seconds: minted.valid_until,
        });
    }
    out(&format!("{}\n", minted.api_key));
    let mut about = format!(
        "Minted token {}",
        id.as_deref().map_or_else(|| "-".to_owned(), printable)
    );
    if let Some(token_id) = &args.token_id {
        about.push_str(&format!(" (token id {})", printable(token_id)));
    }
    about.push_str(&format!(
        ", valid until {}, for endpoint {}. It is printed on stdout this once.\n",
        format_secs(minted.valid_until),
        printable(&minted.endpoint)
    ));
    note(&about);
    Ok(())
}

async fn tokens_revoke(client: &ClientArgs, args: TokensRevoke) -> Result<(), Failure> {
    let (which, label) = match (&args.id, &args.token_id) {
        (Some(id), _) => (
            pb::revoke_token_request::Token::Id(id.clone()),
            format!("token {}", printable(id)),
        ),
        (None, Some(token_id)) => (
            pb::revoke_token_request::Token::TokenId(token_id.clone()),
            format!("token id {}", printable(token_id)),
        ),
        (None, None) => return Err(Failure::usage("set --id or --token-id")),
    };
    let api = Api::connect(client).await?;
    let revocation_id = api
        .admin()
        .revoke_token(api.req(pb::RevokeTokenRequest {
            token: Some(which),
            expires_at_epoch_seconds: 0,
        }))
        .await
        .map_err(from_status)?
        .into_inner()
        .revocation_id;
    if !client.json {
        out(&format!("Revoked {label}.\n"));
    }
    let confirmation = match args.confirm_timeout {
        Some(ms) => Some(
            api.confirm(&revocation_id, ms)
                .await
                .map_err(|f| f.after("the token is revoked; only confirming it failed"))?,
        ),
        None => None,
    };
    if client.json {
        return json_out(&RevokedTokenJson {
            id: args.id,
            token_id: args.token_id,
            revoked: true,
            revocation_id: Some(revocation_id).filter(|id| !id.is_empty()),
            confirmation,
        });
    }
    if let (Some(c), Some(ms)) = (&confirmation, args.confirm_timeout) {
        out(&confirmation_text(c, ms));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// cells, audit
// ---------------------------------------------------------------------------------------------

async fn cells(client: &ClientArgs) -> Result<(), Failure> {
    let api = Api::connect(client).await?;
    let cells = api
        .admin()
        .list_cells(api.req(pb::ListCellsRequest {}))
        .await
        .map_err(from_status)?
        .into_inner();
    if client.json {
        return json_out(&CellsJson {
            nodes: cells
                .nodes
                .into_iter()
                .map(|n| NodeJson {
                    node_id: n.node_id,
                    cell: n.cell,
                    position: n.position,
                    lag_ms: n.lag_ms,
                    last_seen_ms_ago: n.last_seen_ms_ago,
                    live: n.live,
                })
                .collect(),
            latest_event_id: Some(cells.latest_event_id).filter(|id| !id.is_empty()),
        });
    }
    let rows: Vec<Vec<String>> = cells
        .nodes
        .iter()
        .map(|n| {
            vec![
                cell(&n.node_id),
                cell(&n.cell),
                if n.live { "yes" } else { "no" }.to_owned(),
                cell(&n.position),
                format!("{} ms", n.lag_ms),
                format!("{} ms ago", n.last_seen_ms_ago),
            ]
        })
        .collect();
    out(&render_table(
        &["NODE ID", "CELL", "LIVE", "POSITION", "LAG", "LAST SEEN"],
        &rows,
    ));
    if !cells.latest_event_id.is_empty() {
        out(&format!(
            "latest event: {}\n",
            printable(&cells.latest_event_id)
        ));
    }
    Ok(())
}

async fn audit(args: AuditArgs) -> Result<(), Failure> {
    let now = now_ms();
    let since = args.since.map_or(0, |t| t.epoch_millis(now));
    let until = args.until.map_or(0, |t| t.epoch_millis(now));
    if since > 0 && until > 0 && since >= until {
        return Err(Failure::usage("--since must be before --until"));
    }
    let client = &args.client;
    let api = Api::connect(client).await?;
    let limit = (args.limit > 0).then_some(args.limit as usize);
    let mut events: Vec<pb::AuditEvent> = Vec::new();
    let mut next_token = String::new();
    let mut truncated = false;
    loop {
        let page_size = limit.map_or(MAX_PAGE, |n| {
            u32::try_from(n - events.len()).map_or(MAX_PAGE, |left| left.min(MAX_PAGE))
        });
        let page = api
            .admin()
            .list_audit_events(api.req(pb::ListAuditEventsRequest {
                since_epoch_millis: since,
                until_epoch_millis: until,
                limit: page_size,
                next_token: next_token.clone(),
            }))
            .await
            .map_err(from_status)?
            .into_inner();
        events.extend(page.events);
        if page.next_token.is_empty() {
            break;
        }
        if limit.is_some_and(|n| events.len() >= n) {
            truncated = true;
            break;
        }
        if page.next_token == next_token {
            return Err(Failure::new(
                Exit::Server,
                "the server returned the same page twice",
            ));
        }
        next_token = page.next_token;
    }
    if let Some(n) = limit {
        events.truncate(n);
    }
    if client.json {
        return json_out(&AuditJson {
            events: events
                .into_iter()
                .map(|e| AuditEventJson {
                    id: e.id,
                    at_epoch_millis: e.at_epoch_millis,
                    account_id: e.account_id,
                    actor_key_id: e.actor_key_id,
                    peer_address: e.peer_address,
                    action: e.action,
                    target: e.target,
                    detail: e.detail,
                })
                .collect(),
            truncated,
        });
    }
    let rows: Vec<Vec<String>> = events
        .iter()
        .map(|e| {
            vec![
                format_time_ms(e.at_epoch_millis, true),
                cell(&e.action),
                cell(&e.target),
                cell(&e.actor_key_id),
                cell(&e.peer_address),
                cell(&e.detail),
            ]
        })
        .collect();
    out(&render_table(
        &["TIME", "ACTION", "TARGET", "ACTOR", "PEER", "DETAIL"],
        &rows,
    ));
    if truncated {
        note("More events exist: raise --limit (0 for all) or narrow --since/--until.\n");
    }
    Ok(())
}

/// Retries of `keys create` after UNAVAILABLE (under the same idempotency-key).
const CREATE_RETRIES: u64 = 4;

fn authcell_idempotency_key() -> tonic::metadata::MetadataKey<tonic::metadata::Ascii> {
    tonic::metadata::MetadataKey::from_static(crate::authority::IDEMPOTENCY_KEY)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("45s"), Ok(Duration::from_secs(45)));
        assert_eq!(parse_duration("90m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("12h"), Ok(Duration::from_secs(43_200)));
        assert_eq!(parse_duration("30d"), Ok(Duration::from_secs(2_592_000)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert!(parse_duration("10").unwrap_err().contains("add a unit"));
        assert!(parse_duration("10x").unwrap_err().contains("unknown unit"));
        assert!(parse_duration("h").is_err());
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("").is_err());
        assert!(parse_duration("99999999999999999999d").is_err());
    }

    #[test]
    fn timestamps() {
        assert_eq!(parse_timestamp_ms("0"), Ok(0));
        assert_eq!(parse_timestamp_ms("1700000000"), Ok(1_700_000_000_000));
        assert_eq!(
            parse_timestamp_ms("2023-11-14T22:13:20Z"),
            Ok(1_700_000_000_000)
        );
        assert_eq!(
            parse_timestamp_ms("2023-11-14T23:13:20.5+01:00"),
            Ok(1_700_000_000_500)
        );
        assert_eq!(
            parse_timestamp_ms("2023-11-14T17:13:20-05:00"),
            Ok(1_700_000_000_000)
        );
        assert_eq!(parse_timestamp_ms("2000-02-29"), Ok(951_782_400_000));
        assert!(parse_timestamp_ms("2001-02-29").is_err());
        assert!(parse_timestamp_ms("2023-13-01T00:00:00Z").is_err());
        assert!(parse_timestamp_ms("2023-11-14T22:13Z").is_err());
        assert!(parse_timestamp_ms("1700000000000")
            .unwrap_err()
            .contains("milliseconds"));
        assert!(parse_timestamp_ms("yesterday").is_err());
        assert!(parse_timestamp_ms("1969-12-31T00:00:00Z").is_err());
    }

    #[test]
    fn formatting_inverts_parsing() {
        for ms in [
            0,
            951_782_400_000,
            1_700_000_000_123,
            4_102_444_800_000,
            253_402_300_799_000,
        ] {
            let text = format_time_ms(ms, true);
            assert_eq!(parse_timestamp_ms(&text), Ok(ms), "{text}");
        }
        assert_eq!(format_secs(1_700_000_000), "2023-11-14T22:13:20Z");
    }

    #[test]
    fn time_arguments() {
        assert_eq!(
            parse_time_arg("24h"),
            Ok(TimeArg::Ago(Duration::from_secs(86_400)))
        );
        assert_eq!(
            parse_time_arg("2023-11-14T22:13:20Z"),
            Ok(TimeArg::At(1_700_000_000_000))
        );
        assert_eq!(
            parse_time_arg("1700000000"),
            Ok(TimeArg::At(1_700_000_000_000))
        );
        assert_eq!(
            TimeArg::Ago(Duration::from_secs(1)).epoch_millis(5_000),
            4_000
        );
        assert!(parse_time_arg("soon").is_err());
    }

    #[test]
    fn endpoints() {
        assert_eq!(
            endpoint_url("127.0.0.1:8080").unwrap(),
            "http://127.0.0.1:8080"
        );
        assert_eq!(
            endpoint_url("http://127.0.0.1:8080/").unwrap(),
            "http://127.0.0.1:8080"
        );
        assert_eq!(
            endpoint_url("HTTP://cell-a.example.com:443").unwrap(),
            "http://cell-a.example.com:443"
        );
        assert_eq!(endpoint_url("[::1]:8080").unwrap(), "http://[::1]:8080");
        assert_eq!(
            endpoint_url("https://cell-a.example.com").unwrap(),
            "https://cell-a.example.com"
        );
        assert_eq!(endpoint_url("grpc://x:1").unwrap_err().exit, Exit::Usage);
        assert_eq!(endpoint_url("  ").unwrap_err().exit, Exit::Usage);
    }

    #[test]
    fn statuses_map_to_exit_codes() {
        assert_eq!(exit_for(Code::Unauthenticated), Exit::Auth);
        assert_eq!(exit_for(Code::PermissionDenied), Exit::Auth);
        for code in [
            Code::InvalidArgument,
            Code::NotFound,
            Code::AlreadyExists,
            Code::FailedPrecondition,
            Code::ResourceExhausted,
            Code::OutOfRange,
        ] {
            assert_eq!(exit_for(code), Exit::Refused, "{code:?}");
        }
        for code in [
            Code::Unavailable,
            Code::Internal,
            Code::Unimplemented,
            Code::Unknown,
            Code::DeadlineExceeded,
            Code::Aborted,
            Code::Cancelled,
            Code::DataLoss,
        ] {
            assert_eq!(exit_for(code), Exit::Server, "{code:?}");
        }
        let failure = from_status(Status::not_found("key_id: no key x"));
        assert_eq!(failure.message, "NOT_FOUND: key_id: no key x");
        assert_eq!(failure.exit, Exit::Refused);
    }

    #[test]
    fn redaction() {
        let key = "eyJhbGciOiJFZERTQSJ9.payload.signature";
        assert_eq!(
            redact(&format!("bad key {key} here"), key),
            "bad key <redacted> here"
        );
        assert_eq!(redact("short a", "a"), "short a");
    }

    #[test]
    fn tables_align_and_escape() {
        let table = render_table(
            &["ID", "NAME", "NOTE"],
            &[
                vec!["1".into(), "überlong".into(), "x".into()],
                vec!["22".into(), "b".into(), cell("")],
            ],
        );
        assert_eq!(
            table,
            "ID  NAME      NOTE\n1   überlong  x\n22  b         -\n"
        );
        assert_eq!(cell("a\nb\u{1b}"), "a\\nb\\u{1b}");
    }

    #[test]
    fn permissions_documents_round_trip() {
        let text = r#"{
            "rules": [
                {"cache": {"permissions": ["read", "write"], "cache": "sessions", "key_prefix": "user:"}},
                {"cache": {"permissions": ["list"], "cache": "*"}},
                {"topic": {"permissions": ["read"], "cache": "*", "topic_prefix": "chat."}},
                {"store": {"permissions": ["read"], "store": "profiles", "key_base64": "/wA="}},
                {"function": {"cache": "fns", "function": "resize"}},
                {"auth": {"permissions": ["read", "list"]}},
                {"account": {"permissions": ["read"]}},
                {"resource": {"permissions": ["list"]}}
            ],
            "ip_filter": ["10.0.0.0/8", "2001:db8::/32"]
        }"#;
        let doc: PermissionsDoc = serde_json::from_str(text).unwrap();
        let proto = doc.to_proto().unwrap();
        assert_eq!(proto.conditions.len(), 1);
        let back = PermissionsDoc::from_proto(&proto);
        assert_eq!(back, doc);
        let json = serde_json::to_string(&back).unwrap();
        let again: PermissionsDoc = serde_json::from_str(&json).unwrap();
        assert_eq!(again, doc);
        // Every rule renders as one line.
        assert_eq!(rule_rows(&doc).len(), 8);
        assert_eq!(
            rule_rows(&doc)[0],
            vec![
                "cache",
                "read,write",
                "cache=\"sessions\" key_prefix=\"user:\""
            ]
        );
    }

    #[test]
    fn permissions_documents_refuse_mistakes() {
        let refused = |text: &str| -> String {
            match serde_json::from_str::<PermissionsDoc>(text) {
                Err(e) => e.to_string(),
                Ok(doc) => doc.to_proto().unwrap_err(),
            }
        };
        assert!(
            refused(r#"{"rules":[{"cache":{"permissions":["reed"],"cache":"c"}}]}"#)
                .contains("rules[0].cache.permissions[0]: unknown permission \"reed\"")
        );
        assert!(refused(r#"{"rules":[{"cache":{"permissions":["read"]}}]}"#)
            .contains("missing field `cache`"));
        assert!(
            refused(r#"{"rules":[{"cache":{"permissions":["read"],"cache":"c","ky":"x"}}]}"#)
                .contains("unknown field `ky`")
        );
        assert!(refused(r#"{"rules":[{"cachee":{}}]}"#).contains("unknown variant `cachee`"));
        assert!(refused(
            r#"{"rules":[{"cache":{"permissions":["read"],"cache":"c","key":"a","key_prefix":"b"}}]}"#
        )
        .contains("at most one of"));
        assert!(refused(r#"{"rules":[]}"#).contains("at least one rule"));
        assert!(refused(r#"{"rules":[{"unknown":{}}]}"#).contains("unknown variant"));
        assert!(
            refused(r#"{"rules":[{"cache":{"permissions":["read"],"cache":""}}]}"#)
                .contains("must not be empty")
        );
    }

    #[test]
    fn statements_from_documents() {
        let doc: StatementsDoc = serde_json::from_str(
            r#"{"statements":[
                {"cache":{"role":"readonly","cache":"sessions","key":"user:42"}},
                {"topic":{"role":"writeonly","cache":"*","topic":"orders"}},
                {"function":{"cache":"fns","function_prefix":"img-"}}
            ]}"#,
        )
        .unwrap();
        let protos: Vec<_> = doc
            .statements
            .iter()
            .map(|s| s.to_proto("s").unwrap())
            .collect();
        use pm::permissions_type as pt;
        match &protos[0].kind {
            Some(pt::Kind::CachePermissions(c)) => {
                assert_eq!(c.role, pm::CacheRole::CacheReadOnly as i32);
                assert!(matches!(
                    &c.cache_item,
                    Some(pt::cache_permissions::CacheItem::ItemSelector(s))
                        if s.kind == Some(pt::cache_item_selector::Kind::Key(b"user:42".to_vec()))
                ));
            }
            other => panic!("{other:?}"),
        }
        match &protos[1].kind {
            Some(pt::Kind::TopicPermissions(t)) => {
                assert_eq!(t.role, pm::TopicRole::TopicWriteOnly as i32);
                assert!(matches!(
                    t.cache,
                    Some(pt::topic_permissions::Cache::AllCaches(_))
                ));
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            &protos[2].kind,
            Some(pt::Kind::FunctionPermissions(_))
        ));
        let bad: Result<StatementsDoc, _> =
            serde_json::from_str(r#"{"statements":[{"cache":{"role":"all","cache":"c"}}]}"#);
        assert!(bad.is_err());
    }

    #[test]
    fn token_ids_are_read_from_the_payload() {
        let payload = URL_SAFE_NO_PAD.encode(r#"{"jti":"abc","t":"d"}"#);
        assert_eq!(
            token_jti(&format!("header.{payload}.sig")).as_deref(),
            Some("abc")
        );
        assert_eq!(token_jti("not a token"), None);
    }

    #[test]
    fn client_args_never_show_the_key() {
        let args = ClientArgs {
            endpoint: Some("e:1".into()),
            api_key: Some("secret-key-value".into()),
            json: false,
            tls_ca: None,
            insecure: false,
        };
        assert!(!format!("{args:?}").contains("secret-key-value"));
    }

    #[test]
    fn the_key_travels_in_plaintext_only_to_loopback_unless_insecure() {
        for endpoint in [
            "127.0.0.1:8080",
            "http://127.0.0.1:8080",
            "127.3.2.1:8080",
            "localhost:8080",
            "http://LOCALHOST:8080",
            "[::1]:8080",
            "https://cell-a.example.com",
            "https://10.0.0.5:8443",
        ] {
            assert!(target_url(endpoint, false, false).is_ok(), "{endpoint}");
        }
        for endpoint in [
            "10.0.0.5:8080",
            "http://10.0.0.5:8080",
            "cell-a.example.com:443",
            "http://authcell:8080",
            "0.0.0.0:8080",
            "[2001:db8::1]:8080",
        ] {
            let refused = target_url(endpoint, false, false).expect_err(endpoint);
            assert_eq!(refused.exit, Exit::Usage, "{endpoint}");
            assert!(
                refused
                    .message
                    .starts_with(&format!("--endpoint {endpoint}: refusing")),
                "{refused:?}"
            );
            assert!(refused.message.contains("--insecure"), "{refused:?}");
            assert!(target_url(endpoint, false, true).is_ok(), "{endpoint}");
            // A CA means TLS: nothing travels in plaintext.
            assert!(
                target_url(endpoint, true, false)
                    .expect(endpoint)
                    .starts_with("https://"),
                "{endpoint}"
            );
        }
        assert_eq!(
            target_url("http://exa mple.com:1", false, false)
                .expect_err("bad")
                .exit,
            Exit::Usage
        );
    }
}
