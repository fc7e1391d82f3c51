//! Field rules of requests: names, descriptions, ids. Each refusal is an [`Invalid`] naming
//! the field and the rule.

use super::*;

pub(super) fn validate_text(field: &str, value: &str, max: usize) -> Result<String, Invalid> {
    if value.chars().count() > max {
        return Err(Invalid::new(field, format!("at most {max} characters")));
    }
    if value.chars().any(char::is_control) {
        return Err(Invalid::new(field, "must not contain control characters"));
    }
    Ok(value.to_owned())
}

/// 1 to 128 characters of `A-Z a-z 0-9 . _ : -` (a UUID fits).
pub(super) fn validate_request_id(value: &str) -> Result<(), Invalid> {
    let ok = !value.is_empty()
        && value.len() <= 128
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(Invalid::new(
            IDEMPOTENCY_KEY,
            "must be 1 to 128 characters of A-Z a-z 0-9 . _ : -",
        ))
    }
}

/// Hex SHA-256 of the parts, each length-prefixed (so that no two lists collide).
pub(super) fn request_digest(parts: &[&str]) -> String {
    use sha2::{Digest, Sha256};
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update((part.len() as u64).to_be_bytes());
        hasher.update(part.as_bytes());
    }
    hex(&hasher.finalize())
}

/// Lower-case hex of a digest (refresh-token hashes, request digests).
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub(super) fn validate_description(field: &str, value: &str) -> Result<String, Invalid> {
    if value.trim().is_empty() {
        return Err(Invalid::new(field, "required: say what the key is for"));
    }
    validate_text(field, value, MAX_DESCRIPTION_LEN)
}

pub(crate) fn validate_optional_description(field: &str, value: &str) -> Result<String, Invalid> {
    validate_text(field, value, MAX_DESCRIPTION_LEN)
}

/// Role and account names: 1 to 64 of letters, digits, '_', '-' and '.'.
pub(super) fn validate_name_syntax(field: &str, name: &str) -> Result<(), Invalid> {
    if name.is_empty() || name.len() > MAX_NAME_LEN {
        return Err(Invalid::new(
            field,
            format!("1 to {MAX_NAME_LEN} characters"),
        ));
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
    {
        return Err(Invalid::new(
            field,
            "only letters, digits, '_', '-' and '.'",
        ));
    }
    Ok(())
}

pub(super) fn validate_role_name(name: &str) -> Result<String, Invalid> {
    validate_name_syntax("name", name)?;
    if system::ALL.iter().any(|s| s.eq_ignore_ascii_case(name)) {
        return Err(Invalid::new(
            "name",
            "system role names (owner, operator, viewer) are reserved",
        ));
    }
    Ok(name.to_owned())
}

pub(super) fn validate_account_name(name: &str) -> Result<(), Invalid> {
    validate_name_syntax("account", name)?;
    if name.eq_ignore_ascii_case(SYSTEM_ACCOUNT) {
        return Err(Invalid::new(
            "account",
            "\"system\" is reserved for platform events and cannot be a tenant account",
        ));
    }
    Ok(())
}

pub(super) fn validate_key_id(key_id: &str) -> Result<(), Invalid> {
    if key_id.is_empty() {
        return Err(Invalid::new("key_id", "required"));
    }
    if !is_uuid(key_id) {
        return Err(Invalid::new("key_id", "not a key id (a UUID)"));
    }
    Ok(())
}

/// Longest caller-chosen token id.
pub const MAX_TOKEN_ID_LEN: usize = 64;

pub(crate) fn validate_token_id(field: &str, token_id: &str) -> Result<(), Invalid> {
    if token_id.chars().count() > MAX_TOKEN_ID_LEN {
        return Err(Invalid::new(
            field,
            format!("at most {MAX_TOKEN_ID_LEN} characters"),
        ));
    }
    if token_id.chars().any(char::is_control) {
        return Err(Invalid::new(field, "must not contain control characters"));
    }
    Ok(())
}
