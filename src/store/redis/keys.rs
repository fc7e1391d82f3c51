//! The key layout: every Redis key and hash field authcell uses, under one prefix.

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
