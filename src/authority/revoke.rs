//! Revocation: of keys, token ids and everything issued before a time; and confirming that
//! every node of every cell applies a revocation.

use super::*;

impl Authority {
    /// RevokeGlobalApiKey: the next call made with the key, on any RPC, is refused. Returns the
    /// record and the revocation id (for [`Authority::confirm_revocation`]).
    pub async fn revoke_key(
        &self,
        caller: &Caller,
        key_id: &KeyId,
    ) -> Result<(KeyRecord, Option<String>)> {
        self.require(caller, Action::AuthWrite)?;
        let key_id = key_id.as_str();
        // What the key grants never changes, so the nearest copy serves the check; the revoke
        // script on the primary settles the rest (one round trip from a far cell).
        let key = self
            .store
            .get_key_nearby(caller.account(), key_id)
            .await?
            .ok_or_else(|| not_found_key(key_id))?;
        self.require_revocable(caller, &key).await?;
        Ok(self
            .store
            .revoke_key(
                &key,
                self.clock.now(),
                Some(&Self::caller_audit(
                    caller,
                    "key.revoked",
                    key_id,
                    String::new(),
                )),
            )
            .await?)
    }

    /// Revoking is also a power over the key: nobody revokes a key that can do more than they
    /// can (an operator cannot revoke an owner's key). A key may always revoke itself.
    pub(super) async fn require_revocable(&self, caller: &Caller, key: &KeyRecord) -> Result<()> {
        if key.key_id == caller.key_id() {
            return Ok(());
        }
        let target = match (&key.role_id, &key.inline) {
            (_, Some(inline)) => Some(inline.clone()),
            (Some(role_id), None) => self.role_permissions(caller.account(), role_id).await.ok(),
            (None, None) => None,
        };
        match target {
            Some(target) => self.require_delegable(caller, &format!("key {}", key.key_id), &target),
            // A key whose role is gone grants nothing; only an owner may tidy it up.
            None if caller.principal.is_super_user() => Ok(()),
            None => Err(Error::PermissionDenied(format!(
                "key {} can do more than the calling key: its role no longer exists",
                key.key_id
            ))),
        }
    }

    /// RevokeToken: a disposable token or an SDK-made key, by its id (jti), or disposable tokens
    /// by their caller-chosen token id. Returns the revocation id.
    ///
    /// Nobody revokes what they could not have made:
    /// - an id with a key record: an SDK-made key is revoked (record and all) if the caller
    ///   holds everything it grants; a role-bound key is refused with the error
    ///   RevokeGlobalApiKey would give this caller (or, if the caller may revoke it, pointed
    ///   there: RevokeToken is not for role-bound keys);
    /// - an id without a record (a disposable token: they are not stored) and token ids: an
    ///   owner's revocation applies account-wide; anyone else's applies only to credentials
    ///   that the calling key made, directly or through keys it made (the view checks the
    ///   revoker against the credential's ancestors), so no key can kill what a stronger key
    ///   minted.
    ///
    /// A token-id revocation holds until `expires_at` (epoch seconds; 0: the longest token
    /// lifetime from now), then is dropped everywhere, and the token id can be used again.
    pub async fn revoke_token(
        &self,
        caller: &Caller,
        request: TokenRevocation,
    ) -> Result<Option<String>> {
        self.require(caller, Action::AuthWrite)?;
        let TokenRevocation { token, expires_at } = request;
        let account = caller.account().to_owned();
        let scope = (!caller.principal.is_super_user()).then(|| caller.key_id().to_owned());
        match token {
            TokenRef::Id(id) => {
                if let Some(key) = self.store.get_key(&account, &id).await? {
                    if key.inline.is_none() {
                        self.require_revocable(caller, &key).await?;
                        return Err(Error::FailedPrecondition(format!(
                            "id: {id} is a role-bound API key: revoke it with RevokeGlobalApiKey"
                        )));
                    }
                    self.require_revocable(caller, &key).await?;
                    self.revocation_rate_limit(&account).await?;
                    let audit = Self::caller_audit(
                        caller,
                        "key.revoked",
                        &id,
                        "SDK-made key (RevokeToken)".into(),
                    );
                    let (_, event_id) = self
                        .store
                        .revoke_key(&key, self.clock.now(), Some(&audit))
                        .await?;
                    return Ok(event_id);
                }
                self.revocation_rate_limit(&account).await?;
                let audit = Self::caller_audit(
                    caller,
                    "token.revoked",
                    &format!("token {id}"),
                    scope_detail(scope.as_deref()),
                );
                let event = Event::CredentialRevoked {
                    account,
                    id,
                    by: scope,
                };
                Ok(self.store.revoke(event, Some(&audit)).await?)
            }
            TokenRef::TokenId(token_id) => {
                let now = self.clock.now();
                let longest = now + u64::from(crate::authority::vending::MAX_DISPOSABLE_SECS);
                let until = match expires_at {
                    0 => longest,
                    at if at <= now => {
                        return Err(Invalid::new(
                            "expires_at_epoch_seconds",
                            "must be in the future (0: the longest token lifetime from now)",
                        )
                        .into())
                    }
                    // No token lives longer than this: holding the revocation longer protects
                    // nothing and only takes room.
                    at => at.min(longest),
                };
                self.revocation_rate_limit(&account).await?;
                let audit = Self::caller_audit(
                    caller,
                    "token.revoked",
                    &format!("token_id {token_id}"),
                    format!("until {until}; {}", scope_detail(scope.as_deref())),
                );
                let event = Event::TokenIdRevoked {
                    account,
                    token_id,
                    until,
                    by: scope,
                };
                Ok(self
                    .store
                    .revoke_token_id(
                        event,
                        now,
                        self.settings.max_token_id_revocations,
                        Some(&audit),
                    )
                    .await?)
            }
        }
    }

    /// RevokeIssuedBefore: every credential of the account issued before `before_ms` (epoch
    /// ms; `None`: the moment the call is handled, on the primary's clock). Owner only: it also
    /// revokes owner keys. Returns the cut in force (epoch ms) and the revocation id.
    pub async fn revoke_issued_before(
        &self,
        caller: &Caller,
        before_ms: Option<u64>,
    ) -> Result<(u64, Option<String>)> {
        self.require(caller, Action::AuthWrite)?;
        if !caller.principal.is_super_user() {
            return Err(Error::PermissionDenied(
                "revoking every credential of the account needs an owner key".into(),
            ));
        }
        if before_ms.is_some_and(|b| b > self.clock.now_ms()) {
            return Err(
                Invalid::new("issued_before_epoch_seconds", "must not be in the future").into(),
            );
        }
        self.revocation_rate_limit(caller.account()).await?;
        let audit = Self::caller_audit(
            caller,
            "credentials.revoked_before",
            crate::store::memory::CUT_PLACEHOLDER,
            format!(
                "every credential issued before {} (epoch ms)",
                crate::store::memory::CUT_PLACEHOLDER
            ),
        );
        Ok(self
            .store
            .revoke_issued_before(
                caller.account(),
                before_ms,
                self.clock.now_ms(),
                Some(&audit),
            )
            .await?)
    }

    /// Waits until every live cell has applied the revocation `id` (or the newest event when
    /// empty), up to `timeout_ms`; says which cells confirmed and which did not.
    pub async fn confirm_revocation(
        &self,
        caller: &Caller,
        request: RevocationWait,
    ) -> Result<Confirmation> {
        self.require(caller, Action::AuthRead)?;
        let RevocationWait {
            id,
            timeout_ms: timeout,
        } = request;
        self.revocation_rate_limit(caller.account()).await?;
        let requested = id.clone().unwrap_or_default();
        let target = match id {
            None => self.store.latest_event_id().await?,
            Some(id) => Some(id),
        };
        let Some(target) = target else {
            // No event stream (embedded mode): the revocation applied here, in the only cell.
            return Ok(Confirmation {
                confirmed: true,
                confirmed_cells: vec![self.cell().to_owned()],
                pending_cells: Vec::new(),
                silent_cells: Vec::new(),
                revocation_id: requested,
            });
        };
        // Each waiting call polls the primary: bound how many this node runs at once.
        let _permit = self
            .confirmations
            .try_acquire()
            .map_err(|_| Error::ResourceExhausted {
                message: format!(
                    "this node is already serving {} revocation confirmations; retry shortly",
                    self.settings.max_confirmations
                ),
                retry_after_secs: 1,
            })?;
        let started = std::time::Instant::now();
        loop {
            let nodes = self.store.nodes().await?;
            // Node reports carry the primary's time: compare them on the same clock.
            let now_ms = self.clock.now_ms();
            let mut confirmed = std::collections::BTreeSet::new();
            let mut pending = std::collections::BTreeSet::new();
            let mut silent = std::collections::BTreeSet::new();
            for node in &nodes {
                match node_standing(node, &target, now_ms) {
                    Standing::Applied => {
                        confirmed.insert(node.cell.clone());
                    }
                    Standing::Behind => {
                        pending.insert(node.cell.clone());
                    }
                    Standing::SilentMayServe => {
                        silent.insert(node.cell.clone());
                        pending.insert(node.cell.clone());
                    }
                    Standing::SilentFenced => {
                        silent.insert(node.cell.clone());
                    }
                }
            }
            // A cell is confirmed only when every node in it that could allow the credential
            // has applied the revocation.
            confirmed.retain(|cell| !pending.contains(cell));
            let done = pending.is_empty();
            if done || started.elapsed().as_millis() >= u128::from(timeout) {
                return Ok(Confirmation {
                    confirmed: done,
                    confirmed_cells: confirmed.into_iter().collect(),
                    pending_cells: pending.into_iter().collect(),
                    silent_cells: silent.into_iter().collect(),
                    revocation_id: target,
                });
            }
            tokio::time::sleep(CONFIRM_POLL).await;
        }
    }

    /// Every node's progress through the event stream, and the newest event id.
    pub async fn cells(&self, caller: &Caller) -> Result<(Vec<CellNode>, Option<String>)> {
        self.require(caller, Action::AuthRead)?;
        let latest = self.store.latest_event_id().await?;
        // Node reports carry the primary's time: compare them on the same clock.
        let now_ms = self.clock.now_ms();
        let nodes = self.store.nodes().await?;
        if latest.is_none() && nodes.is_empty() {
            return Ok((
                vec![CellNode {
                    node_id: "embedded".into(),
                    cell: self.cell().to_owned(),
                    position: String::new(),
                    lag_ms: 0,
                    last_seen_ms_ago: 0,
                    live: true,
                }],
                None,
            ));
        }
        let latest_ms = latest.as_deref().map_or(0, crate::store::StreamId::ms_of);
        let nodes = nodes
            .into_iter()
            .map(|n| CellNode {
                lag_ms: latest_ms.saturating_sub(crate::store::StreamId::ms_of(&n.position)),
                last_seen_ms_ago: now_ms.saturating_sub(n.seen_at_ms),
                live: is_live(&n, now_ms),
                node_id: n.node_id,
                cell: n.cell,
                position: n.position,
            })
            .collect();
        Ok((nodes, latest))
    }
}

/// How long a node's last report keeps it counted as live.
pub const LIVENESS_MS: u64 = 5000;
/// A node silent for longer than this is taken to be gone (its entry is kept, and named, but no
/// longer waited for).
pub const GONE_AFTER_MS: u64 = 10 * 60 * 1000;

/// Where one node stands with respect to a revocation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Standing {
    /// Reported recently, at or past the revocation.
    Applied,
    /// Reported recently, not there yet.
    Behind,
    /// Silent (paused, cut off from the primary): when it comes back it may serve its last
    /// known state, which may not hold the revocation. Not confirmed.
    SilentMayServe,
    /// Silent, but it cannot allow anything it has not caught up on: it refuses every check
    /// once stale (`--stale-policy deny`) and has been silent longer than its bound, or it has
    /// been silent so long that it is taken to be gone.
    SilentFenced,
}

pub(super) fn node_standing(
    node: &crate::store::NodeStatus,
    target: &str,
    now_ms: u64,
) -> Standing {
    let silent_for = now_ms.saturating_sub(node.seen_at_ms);
    if silent_for <= LIVENESS_MS {
        if crate::store::StreamId::cmp_text(&node.position, target).is_ge() {
            Standing::Applied
        } else {
            Standing::Behind
        }
    } else if crate::store::StreamId::cmp_text(&node.position, target).is_ge() {
        // Silent, but it had applied the revocation before it went quiet.
        Standing::Applied
    } else if silent_for > GONE_AFTER_MS
        || (node.deny_when_stale && silent_for > node.max_staleness_ms)
    {
        Standing::SilentFenced
    } else {
        Standing::SilentMayServe
    }
}

pub(super) fn is_live(node: &crate::store::NodeStatus, now_ms: u64) -> bool {
    now_ms.saturating_sub(node.seen_at_ms) <= LIVENESS_MS
}

pub(super) fn is_stream_id(id: &str) -> bool {
    let mut parts = id.splitn(2, '-');
    matches!(
        (parts.next(), parts.next()),
        (Some(ms), Some(seq)) if !ms.is_empty() && !seq.is_empty()
            && ms.bytes().all(|b| b.is_ascii_digit()) && seq.bytes().all(|b| b.is_ascii_digit())
    )
}

/// The outcome of waiting for a revocation to reach every cell.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Confirmation {
    pub confirmed: bool,
    pub confirmed_cells: Vec<String>,
    pub pending_cells: Vec<String>,
    /// Cells with a node that has not reported within [`LIVENESS_MS`].
    pub silent_cells: Vec<String>,
    pub revocation_id: String,
}

/// One node's progress.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CellNode {
    pub node_id: String,
    pub cell: String,
    pub position: String,
    pub lag_ms: u64,
    pub last_seen_ms_ago: u64,
    pub live: bool,
}

/// Which credential to revoke.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TokenRef {
    Id(String),
    TokenId(String),
}

pub(super) fn scope_detail(scope: Option<&str>) -> String {
    match scope {
        None => "account-wide (owner)".into(),
        Some(by) => format!("only credentials made by key {by}"),
    }
}
