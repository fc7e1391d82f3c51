//! Output: tables and blocks for people, JSON documents for scripts, and their shapes.

use super::*;

/// Writes to stdout. A closed pipe (`| head`) is not an error worth a panic.
pub(crate) fn out(text: &str) {
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(text.as_bytes());
    let _ = stdout.flush();
}

/// Writes to stderr: notes for people, never results.
pub(crate) fn note(text: &str) {
    let mut stderr = std::io::stderr().lock();
    let _ = stderr.write_all(text.as_bytes());
    let _ = stderr.flush();
}

pub(crate) fn json_out<T: Serialize>(value: &T) -> Result<(), Failure> {
    let text = serde_json::to_string_pretty(value)
        .map_err(|e| Failure::new(Exit::Server, format!("cannot encode the output: {e}")))?;
    out(&format!("{text}\n"));
    Ok(())
}

/// Makes text safe for a terminal: control characters are escaped.
pub(crate) fn printable(text: &str) -> String {
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
pub(crate) fn cell(text: &str) -> String {
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
pub(crate) fn render_block(pairs: &[(&str, String)]) -> String {
    let width = pairs.iter().map(|(l, _)| l.len()).max().unwrap_or(0);
    pairs
        .iter()
        .map(|(label, value)| format!("{}\n", format!("{label:<width$}  {value}").trim_end()))
        .collect()
}

#[derive(Serialize)]
pub(crate) struct KeyJson {
    pub(crate) key_id: String,
    pub(crate) account_id: String,
    pub(crate) role_id: String,
    pub(crate) kind: &'static str,
    pub(crate) status: &'static str,
    pub(crate) description: String,
    pub(crate) issued_at_epoch_seconds: u64,
    pub(crate) expires_at_epoch_seconds: Option<u64>,
    pub(crate) revoked_at_epoch_seconds: Option<u64>,
    pub(crate) created_by: String,
    pub(crate) token_id: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub(crate) rotated_to: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub(crate) rotated_from: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) revokes_at_epoch_seconds: Option<u64>,
}

pub(crate) fn key_status(status: i32) -> &'static str {
    match pb::KeyStatus::try_from(status) {
        Ok(pb::KeyStatus::Active) => "active",
        Ok(pb::KeyStatus::Expired) => "expired",
        Ok(pb::KeyStatus::Revoked) => "revoked",
        _ => "unknown",
    }
}

pub(crate) fn key_kind(kind: i32) -> &'static str {
    match pb::KeyKind::try_from(kind) {
        Ok(pb::KeyKind::Role) => "role",
        Ok(pb::KeyKind::Inline) => "inline",
        _ => "unknown",
    }
}

pub(crate) fn key_json(k: &pb::ApiKeyInfo) -> KeyJson {
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
        rotated_to: k.rotated_to.clone(),
        rotated_from: k.rotated_from.clone(),
        revokes_at_epoch_seconds: k.revokes_at_epoch_seconds,
    }
}

#[derive(Serialize)]
pub(crate) struct RotatedKeyJson {
    /// The new key itself, shown this once.
    pub(crate) api_key: String,
    /// An SDK-made key's new refresh token, shown this once.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) refresh_token: Option<String>,
    pub(crate) endpoint: String,
    pub(crate) key: KeyJson,
    /// The old key, with the time it is revoked.
    pub(crate) rotated: KeyJson,
}

/// What `keys create --json` prints: everything an application needs in one document (the
/// console's "Download JSON"), to store as a secret in one step.
#[derive(Serialize)]
pub(crate) struct CreatedKeyJson {
    /// The key itself, shown this once.
    pub(crate) api_key: String,
    /// Where to use it: the endpoint the key was created at.
    pub(crate) endpoint: String,
    pub(crate) key_id: String,
    pub(crate) account_id: String,
    pub(crate) role_id: String,
    pub(crate) description: String,
    pub(crate) issued_at_epoch_seconds: u64,
    pub(crate) expires_at_epoch_seconds: Option<u64>,
}

#[derive(Serialize)]
pub(crate) struct KeyListJson {
    pub(crate) keys: Vec<KeyJson>,
    /// --limit stopped the listing before the last key.
    pub(crate) truncated: bool,
}

#[derive(Serialize, Clone)]
pub(crate) struct Confirmation {
    pub(crate) confirmed: bool,
    pub(crate) confirmed_cells: Vec<String>,
    pub(crate) pending_cells: Vec<String>,
    pub(crate) revocation_id: String,
}

#[derive(Serialize)]
pub(crate) struct RevokedKeyJson {
    pub(crate) key_id: String,
    pub(crate) revoked: bool,
    pub(crate) revocation_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) confirmation: Option<Confirmation>,
}

#[derive(Serialize)]
pub(crate) struct RoleJson {
    pub(crate) role_id: String,
    pub(crate) name: String,
    pub(crate) kind: &'static str,
    pub(crate) description: String,
    pub(crate) created_at_epoch_seconds: Option<u64>,
    pub(crate) updated_at_epoch_seconds: Option<u64>,
    pub(crate) permissions: PermissionsDoc,
}

pub(crate) fn role_kind(kind: i32) -> &'static str {
    match pb::RoleKind::try_from(kind) {
        Ok(pb::RoleKind::System) => "system",
        Ok(pb::RoleKind::Custom) => "custom",
        _ => "unknown",
    }
}

pub(crate) fn role_json(r: &pb::Role) -> RoleJson {
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
pub(crate) struct RoleListJson {
    pub(crate) roles: Vec<RoleJson>,
}

#[derive(Serialize)]
pub(crate) struct DeletedRoleJson {
    pub(crate) role_id: String,
    pub(crate) deleted: bool,
}

#[derive(Serialize)]
pub(crate) struct MintedTokenJson {
    /// The token itself, shown this once.
    pub(crate) token: String,
    /// The token's own id (jti), for `tokens revoke --id`.
    pub(crate) id: Option<String>,
    pub(crate) token_id: Option<String>,
    pub(crate) endpoint: String,
    pub(crate) valid_until_epoch_seconds: u64,
}

#[derive(Serialize)]
pub(crate) struct RevokedTokenJson {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) token_id: Option<String>,
    pub(crate) revoked: bool,
    pub(crate) revocation_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) confirmation: Option<Confirmation>,
}

#[derive(Serialize)]
pub(crate) struct NodeJson {
    pub(crate) node_id: String,
    pub(crate) cell: String,
    pub(crate) position: String,
    pub(crate) lag_ms: u64,
    pub(crate) last_seen_ms_ago: u64,
    pub(crate) live: bool,
}

#[derive(Serialize)]
pub(crate) struct CellsJson {
    pub(crate) nodes: Vec<NodeJson>,
    pub(crate) latest_event_id: Option<String>,
}

#[derive(Serialize)]
pub(crate) struct AuditEventJson {
    pub(crate) id: String,
    pub(crate) at_epoch_millis: u64,
    pub(crate) account_id: String,
    pub(crate) actor_key_id: String,
    pub(crate) peer_address: String,
    pub(crate) action: String,
    pub(crate) target: String,
    pub(crate) detail: String,
}

#[derive(Serialize)]
pub(crate) struct AuditJson {
    pub(crate) events: Vec<AuditEventJson>,
    /// --limit stopped the listing before the oldest matching event.
    pub(crate) truncated: bool,
}
