//! The operator command line (`authcell keys|roles|tokens|cells|audit`): the real binary
//! against a real server on loopback, in human and JSON mode, with every exit code.

use std::process::Stdio;

use authcell::proto::authcell::v1 as pb;
use serde_json::Value;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;
use tokio::process::Command;

use crate::support::*;

const BIN: &str = env!("CARGO_BIN_EXE_authcell");

/// What one run of the binary did.
#[derive(Debug)]
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    /// Asserts success and returns stdout.
    fn ok(&self) -> &str {
        assert_eq!(self.code, 0, "expected success: {self:?}");
        &self.stdout
    }

    /// Asserts success and parses stdout as one JSON document.
    fn json(&self) -> Value {
        serde_json::from_str(self.ok()).unwrap_or_else(|e| panic!("not JSON ({e}): {self:?}"))
    }

    /// Asserts a failure with `code`, one `authcell: ` line on stderr containing `needle`,
    /// nothing on stdout, and no trace of `secret` anywhere.
    fn fails(&self, code: i32, needle: &str, secret: &str) {
        assert_eq!(self.code, code, "exit code: {self:?}");
        assert!(
            self.stderr.starts_with("authcell: ") || self.stderr.starts_with("error: "),
            "{self:?}"
        );
        assert!(self.stderr.contains(needle), "{needle:?} in {self:?}");
        if !secret.is_empty() {
            assert!(!self.stderr.contains(secret), "the key leaked: {self:?}");
        }
        assert!(self.stdout.is_empty(), "nothing on stdout: {self:?}");
    }
}

/// Runs the binary with exactly these `AUTHCELL_*` variables (the test's own are removed).
async fn run_env(env: &[(&str, &str)], args: &[&str], stdin: Option<&str>) -> Run {
    let mut command = Command::new(BIN);
    command
        .args(args)
        .env_remove("AUTHCELL_ENDPOINT")
        .env_remove("AUTHCELL_API_KEY")
        .env_remove("AUTHCELL_INSECURE")
        .env_remove("AUTHCELL_TLS_CA")
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    for (name, value) in env {
        command.env(name, value);
    }
    let mut child = command.spawn().expect("start authcell");
    if let Some(text) = stdin {
        let mut pipe = child.stdin.take().expect("stdin");
        pipe.write_all(text.as_bytes()).await.expect("write stdin");
        drop(pipe);
    }
    let out = child.wait_with_output().await.expect("run authcell");
    Run {
        code: out.status.code().expect("exit code"),
        stdout: String::from_utf8(out.stdout).expect("utf-8 stdout"),
        stderr: String::from_utf8(out.stderr).expect("utf-8 stderr"),
    }
}

/// Runs the binary against `server` with `key`, both from the environment.
async fn cli(server: &TestServer, key: &str, args: &[&str]) -> Run {
    run_env(
        &[
            ("AUTHCELL_ENDPOINT", &server.endpoint),
            ("AUTHCELL_API_KEY", key),
        ],
        args,
        None,
    )
    .await
}

/// A file in the temp directory, removed on drop.
struct TempFile(std::path::PathBuf);

impl TempFile {
    fn new(name: &str, text: &str) -> Self {
        let path = std::env::temp_dir().join(format!(
            "authcell-cli-{}-{}-{name}",
            std::process::id(),
            uuid::Uuid::new_v4()
        ));
        std::fs::write(&path, text).expect("write temp file");
        TempFile(path)
    }

    fn path(&self) -> &str {
        self.0.to_str().expect("utf-8 path")
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// The row of a table whose first column is `first`.
fn row<'a>(table: &'a str, first: &str) -> Option<&'a str> {
    table
        .lines()
        .find(|line| line.split_whitespace().next() == Some(first))
}

/// The value a table row has in the column headed `column` (columns are aligned on the
/// header; values here hold no double spaces).
fn column<'a>(table: &'a str, row_line: &'a str, column: &str) -> &'a str {
    let header = table.lines().next().expect("header");
    let start = header
        .find(column)
        .unwrap_or_else(|| panic!("{column} in {header}"));
    row_line[start..]
        .split("  ")
        .next()
        .expect("value")
        .trim_end()
}

/// The value after `label` in a `label  value` block.
fn field<'a>(block: &'a str, label: &str) -> Option<&'a str> {
    block.lines().find_map(|line| {
        line.strip_prefix(label)
            .filter(|rest| rest.starts_with("  "))
            .map(str::trim)
    })
}

const READER_EU: &str = r#"{
  "rules": [
    {"cache": {"permissions": ["read"], "cache": "sessions", "key_prefix": "user:"}}
  ],
  "ip_filter": ["10.0.0.0/8"]
}"#;

/// An address nothing listens on.
async fn closed_port() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let endpoint = listener.local_addr().expect("addr").to_string();
    drop(listener);
    endpoint
}

mod cells_audit;
mod exit_codes;
mod keys;
mod policy;
mod roles;
mod tokens;
