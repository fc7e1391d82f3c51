//! The key layout: every Redis key and hash field authcell uses, under one prefix.
//!
//! # Layout
//!
//! Everything lives under the prefix (default `authcell:`):
//!
//! | key | type | content |
//! | --- | --- | --- |
//! | `accounts` | set | account names |
//! | `acct:{account}:keys` | sorted set, all scores 0 | key ids; lexicographic order = creation order (UUIDv7), so pages are `ZRANGEBYLEX` in O(log n + page) |
//! | `key:{account}:{key_id}` | hash | `rec` (KeyRecord JSON, immutable), `revoked_at`, `refresh` (SHA-256 of the refresh token), `rotated_to`, `revokes_at` and `rotation_request` (a rotated key; the last the idempotency-key it was rotated under), `rotated_from` (its replacement) |
//! | `rotations` | sorted set | `{account}\0{key_id}` of rotated keys, scored by the end of their overlap (epoch seconds); every node's scheduler takes due entries off it in one script |
//! | `lapses` | sorted set | `{account}\0{key_id}` of keys that lapse (expire, or a rotation revokes them), scored by that time; the expiring-keys gauge reads a window of it, entries past are trimmed |
//! | `expiring` | sorted set | `{account}\0{key_id}` of keys that live longer than 7 days, scored by 7 days before their expiry; every node's scheduler takes due entries off it and records `key.expiring` once |
//! | `indexed`, `indexing` | string | `indexed`: the keys stored before the two indexes above existed were added to them; `indexing`: a node is doing it (expires after 10 minutes) |
//! | `acct:{account}:rolekeys:{role_id}` | sorted set | ids of the role's unrevoked keys, scored by expiry (`+inf` for never): live keys are `ZCOUNT (now +inf` |
//! | `acct:{account}:roles` | hash | role id -> RoleRecord JSON |
//! | `acct:{account}:rolenames` | hash | role name -> role id (unique names) |
//! | `policies` | hash | account -> [`KeyPolicy`](crate::policy::KeyPolicy) JSON (what the view loads; `{}` once cleared) |
//! | `roles` | hash | `{account}\0{role_id}` -> RoleRecord JSON (what the view loads) |
//! | `revoked` | hash | `c\0{account}\0{id}` (credential) -> revocation time; `s\0{account}\0{id}\0{by}` (credential, scoped to descendants of key `by`) -> revocation time; `t\0{account}\0{token_id}\0{by or empty}` (token id) -> end of the revocation, epoch seconds |
//! | `acct:{account}:tokrevs` | sorted set | the account's token-id revocation fields, scored by their end (the per-account quota counts them) |
//! | `tokrevs` | sorted set | every token-id revocation field, scored by its end (ended ones are swept) |
//! | `watermarks` | hash | account -> issued-before epoch milliseconds (only ever raised; set from the primary's `TIME`) |
//! | `beats` | stream | the last heartbeat of any node (capped at one entry): its id's milliseconds are the primary's clock; read back through a replica, it says how fresh that replica's data is |
//! | `events` | stream | field `e`: [`Event`](crate::verifier::view::Event) JSON; capped with `MAXLEN ~` |
//! | `nodes` | hash | node id -> [`NodeStatus`](crate::store::NodeStatus) JSON (progress reports) |
//! | `rl:{account}` | string | GCRA theoretical arrival time, ms (the shared rate limiter; nodes lease tokens from it a share at a time) |
//! | `fence` | string | a counter every mutation increments before its `WAIT` (see [`super::link::Durable`]) |
//! | `idem:{account}:{request id}` | string | [`Receipt`](crate::store::Receipt) JSON of a key created under an `idempotency-key`; expires after 24 h |
//! | `audit:{account}` | stream | field `a`: [`AuditRecord`](crate::store::AuditRecord) JSON; capped with `MAXLEN ~` (ids give the time) |
//!

/// Key names under the configured prefix.
#[derive(Clone, Debug)]
pub struct Keys {
    prefix: String,
}

impl Keys {
    pub fn new(prefix: &str) -> Self {
        Keys {
            prefix: prefix.to_owned(),
        }
    }
    pub fn accounts(&self) -> String {
        format!("{}accounts", self.prefix)
    }
    pub fn account_keys(&self, account: &str) -> String {
        format!("{}acct:{account}:keys", self.prefix)
    }
    pub fn key(&self, account: &str, key_id: &str) -> String {
        format!("{}key:{account}:{key_id}", self.prefix)
    }
    pub fn role_keys(&self, account: &str, role_id: &str) -> String {
        format!("{}acct:{account}:rolekeys:{role_id}", self.prefix)
    }
    pub fn roles(&self, account: &str) -> String {
        format!("{}acct:{account}:roles", self.prefix)
    }
    pub fn role_names(&self, account: &str) -> String {
        format!("{}acct:{account}:rolenames", self.prefix)
    }
    pub fn policies(&self) -> String {
        format!("{}policies", self.prefix)
    }
    pub fn all_roles(&self) -> String {
        format!("{}roles", self.prefix)
    }
    pub fn revoked(&self) -> String {
        format!("{}revoked", self.prefix)
    }
    pub fn token_revocations(&self, account: &str) -> String {
        format!("{}acct:{account}:tokrevs", self.prefix)
    }
    pub fn all_token_revocations(&self) -> String {
        format!("{}tokrevs", self.prefix)
    }
    pub fn beats(&self) -> String {
        format!("{}beats", self.prefix)
    }
    pub fn watermarks(&self) -> String {
        format!("{}watermarks", self.prefix)
    }
    pub fn events(&self) -> String {
        format!("{}events", self.prefix)
    }
    pub fn nodes(&self) -> String {
        format!("{}nodes", self.prefix)
    }
    pub fn rate(&self, account: &str) -> String {
        format!("{}rl:{account}", self.prefix)
    }
    pub fn audit(&self, account: &str) -> String {
        format!("{}audit:{account}", self.prefix)
    }
    /// Rotated keys' scheduled revocations: member `account NUL key id`, score the time.
    pub fn rotations(&self) -> String {
        format!("{}rotations", self.prefix)
    }
    /// Keys by lapse time: member `account NUL key id`.
    pub fn lapses(&self) -> String {
        format!("{}lapses", self.prefix)
    }
    /// Keys by the time they enter their last week: member `account NUL key id`.
    pub fn expiring(&self) -> String {
        format!("{}expiring", self.prefix)
    }
    /// Set once the keys stored before the `lapses` and `expiring` indexes were added to them.
    pub fn indexed(&self) -> String {
        format!("{}indexed", self.prefix)
    }
    /// Held (10 minutes at most) by the node adding them.
    pub fn indexing(&self) -> String {
        format!("{}indexing", self.prefix)
    }
    pub fn prefix(&self) -> &str {
        &self.prefix
    }
    pub fn fence(&self) -> String {
        format!("{}fence", self.prefix)
    }
    pub fn receipt(&self, account: &str, request_id: &str) -> String {
        format!("{}idem:{account}:{request_id}", self.prefix)
    }
}

/// The field of the `revoked` hash for a revoked credential id.
pub fn revoked_credential_field(account: &str, id: &str) -> String {
    format!("c\u{0}{account}\u{0}{id}")
}

/// The field of the `revoked` hash for a credential revoked for the descendants of key `by`.
pub fn revoked_scoped_field(account: &str, id: &str, by: &str) -> String {
    format!("s\u{0}{account}\u{0}{id}\u{0}{by}")
}

/// The field of the `revoked` hash for a revoked token id (scoped to the descendants of key
/// `by`, or account-wide).
pub fn revoked_token_id_field(account: &str, token_id: &str, by: Option<&str>) -> String {
    format!("t\u{0}{account}\u{0}{token_id}\u{0}{}", by.unwrap_or(""))
}

/// The field of the `roles` hash.
pub fn role_field(account: &str, role_id: &str) -> String {
    format!("{account}\u{0}{role_id}")
}
