//! The operator command line: `authcell keys|roles|tokens|cells|audit|policy`.
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
Exit codes of the client commands (keys, roles, tokens, cells, audit, policy):
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
pub(crate) const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long one call may take: longer than the longest wait the server does on purpose
/// (ConfirmRevocation, up to 60 s), so only a server that stopped answering hits it.
pub(crate) const REQUEST_TIMEOUT: Duration = Duration::from_secs(75);

mod args;
mod audit;
mod cells;
mod client;
mod keys;
mod output;
mod permfile;
mod policy;
mod roles;
mod time;
mod tokens;

pub use args::*;
use audit::*;
use cells::*;
pub use client::*;
use keys::*;
pub use output::*;
pub use permfile::*;
use policy::*;
use roles::*;
pub use time::*;
use tokens::*;

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
    pub(crate) fn new(exit: Exit, message: impl Into<String>) -> Self {
        Failure {
            exit,
            message: message.into(),
        }
    }

    pub(crate) fn usage(message: impl Into<String>) -> Self {
        Self::new(Exit::Usage, message)
    }

    /// Adds what had already happened when this failure struck.
    pub(crate) fn after(mut self, done: &str) -> Self {
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

pub(crate) fn from_status(status: Status) -> Failure {
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
pub(crate) fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
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
pub(crate) fn redact(message: &str, secret: &str) -> String {
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

pub(crate) async fn execute(command: ClientCommand) -> Result<(), Failure> {
    match command {
        ClientCommand::Keys(a) => match a.command {
            KeysCommand::Create(c) => keys_create(&a.client, c).await,
            KeysCommand::List(c) => keys_list(&a.client, c).await,
            KeysCommand::Describe(c) => keys_describe(&a.client, c).await,
            KeysCommand::Revoke(c) => keys_revoke(&a.client, c).await,
            KeysCommand::Rotate(c) => keys_rotate(&a.client, c).await,
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
        ClientCommand::Policy(a) => match a.command {
            PolicyCommand::Show => policy_show(&a.client).await,
            PolicyCommand::Set(c) => policy_set(&a.client, c).await,
        },
    }
}

#[cfg(test)]
mod tests;
