//! Page tokens of key and audit listings: opaque to callers, checked when they come back.

use super::*;

/// Page-token prefixes: a token from one listing is refused by another.
pub(super) const KEY_PAGE_PREFIX: &str = "k1:";
pub(super) const AUDIT_PAGE_PREFIX: &str = "a1:";

/// A page size: 1..=100, 0 meaning the default (100).
pub(super) fn page_limit(limit: u32) -> Result<usize, Invalid> {
    match limit {
        0 => Ok(MAX_PAGE as usize),
        1..=MAX_PAGE => Ok(limit as usize),
        _ => Err(Invalid::new(
            "limit",
            format!("must be between 1 and {MAX_PAGE}"),
        )),
    }
}

/// The opaque next_token for a page ending at `last_id`.
pub(super) fn encode_page_token(prefix: &str, last_id: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("{prefix}{last_id}"))
}

/// The id a next_token continues after (`None` for the first page), if the token is one of
/// this listing's.
pub(super) fn decode_page_token(
    token: &str,
    prefix: &str,
    valid_id: fn(&str) -> bool,
) -> Result<Option<String>, Invalid> {
    use base64::Engine;
    if token.is_empty() {
        return Ok(None);
    }
    let bad = || Invalid::new("next_token", "not a next_token returned by a previous page");
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token)
        .map_err(|_| bad())?;
    let text = String::from_utf8(raw).map_err(|_| bad())?;
    let id = text.strip_prefix(prefix).ok_or_else(bad)?;
    if !valid_id(id) {
        return Err(bad());
    }
    Ok(Some(id.to_owned()))
}

pub(super) fn is_uuid(id: &str) -> bool {
    uuid::Uuid::try_parse(id).is_ok()
}

/// A listing with page tokens: its codec, reachable from the fuzz targets ([`crate::fuzzing`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Listing {
    Keys,
    Audit,
}

impl Listing {
    fn codec(self) -> (&'static str, fn(&str) -> bool) {
        match self {
            Listing::Keys => (KEY_PAGE_PREFIX, is_uuid),
            Listing::Audit => (AUDIT_PAGE_PREFIX, is_stream_id),
        }
    }

    /// What the listing does with a request's next_token.
    pub(crate) fn decode_page_token(self, token: &str) -> Result<Option<String>, Invalid> {
        let (prefix, valid_id) = self.codec();
        decode_page_token(token, prefix, valid_id)
    }

    /// The next_token the listing returns for a page ending at `last_id`.
    pub(crate) fn encode_page_token(self, last_id: &str) -> String {
        encode_page_token(self.codec().0, last_id)
    }
}
