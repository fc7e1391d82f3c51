//! The Redis store: the system of record in production.
//!
//! Writes go to the primary; every mutation is one Lua script, so it is atomic and appends its
//! [`Event`] to the event stream in the same step. The scripts are files of their own, in
//! `src/store/redis/scripts/` (with those of [`sync`] and [`limiter`]), built in
//! with `include_str!`; each opens with the KEYS and ARGV it takes. Reads of records go to the primary too (they
//! are management calls, where read-your-writes matters more than a round trip); the hot path
//! never reads Redis: it reads the live view, which [`crate::store::redis::sync`] feeds from this cell's
//! replica.
//!
//! The key layout (every key and what it holds) is documented in [`keys`].
//!
//! Redis Cluster is not supported: scripts touch keys of several accounts' slots.

use std::time::Duration;

use async_trait::async_trait;
use redis::AsyncCommands;

pub mod keys;
pub mod limiter;
pub mod link;
mod mutations;
mod outcomes;
mod scripts;
pub mod sync;

pub use keys::*;
use link::{Acks, Durable, Link, Target};
use outcomes::{Refusal, Reply};
use scripts::{run_script, Scripts, SWEEP_TOKEN_IDS};

use super::{
    AuditQuery, AuditRecord, KeyRecord, NodeStatus, Receipt, RoleRecord, Store, StoreError,
    StoreResult,
};
use crate::policy::{system, KeyPolicy};
use crate::verifier::view::{Event, View};
use std::sync::Arc;

/// How Redis is reached and how big the event stream may grow.
#[derive(Clone, Debug)]
pub struct RedisConfig {
    pub prefix: String,
    /// Approximate cap of the event stream (`XADD MAXLEN ~`).
    pub stream_max_len: u64,
    /// Approximate cap of each account's audit stream.
    pub audit_max_len: u64,
    /// Replicas that must hold every mutation before it is acknowledged (`WAIT`).
    pub acks: Acks,
}

impl Default for RedisConfig {
    fn default() -> Self {
        RedisConfig {
            prefix: "authcell:".into(),
            stream_max_len: 100_000,
            audit_max_len: 100_000,
            acks: Acks::NONE,
        }
    }
}

/// Redis-backed [`Store`].
pub struct RedisStore {
    /// Reads, on the primary.
    conn: Link,
    /// Mutations: connections of their own when they wait for replicas (`WAIT` holds up
    /// everything queued behind it on its connection), picked in turn.
    writes: Vec<Link>,
    next_write: std::sync::atomic::AtomicUsize,
    keys: Keys,
    config: RedisConfig,
    /// Our own mutations are applied to the local view as soon as Redis accepted them, so the
    /// next call on this node sees them without waiting for the stream (re-applying them from
    /// the stream later is harmless: events are idempotent).
    view: Arc<View>,
    scripts: Scripts,
    /// This cell's replica, for [`Store::get_key_nearby`].
    nearby: Option<Link>,
}

/// How long one command may take: a Redis outage must turn into a prompt UNAVAILABLE, not a
/// hung call.
pub const RESPONSE_TIMEOUT: Duration = Duration::from_secs(3);

/// Mutation connections of a store that waits for replicas.
const WRITE_LINKS: usize = 4;

/// Connects to a fixed URL (see [`Link`]: it reconnects by itself, and follows a name that
/// moves on failover).
pub async fn connect(url: &str) -> Result<Link, String> {
    Link::connect(Target::Url(url.to_owned()), RESPONSE_TIMEOUT).await
}

/// A failed Redis command (counted by its [`Link`]), reported as the store being unavailable.
pub(crate) fn unavailable(e: redis::RedisError) -> StoreError {
    if e.to_string().contains(link::NOT_REPLICATED) {
        return StoreError::Unavailable(format!(
            "{e}: the change reached the Redis primary but may not survive a failover, so it is not acknowledged; it may or may not take effect: retrying is safe"
        ));
    }
    StoreError::Unavailable(e.to_string())
}

fn corrupt(what: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(format!("unreadable {what} in Redis: {e}"))
}

fn to_json<T: serde::Serialize>(value: &T) -> StoreResult<String> {
    serde_json::to_string(value).map_err(|e| corrupt("record", e))
}

/// Drops ended token-id revocations from Redis (at most 1000 a call); returns how many. Nodes
/// call it on their heartbeat; each new token-id revocation also sweeps first.
pub async fn sweep_token_id_revocations(
    conn: &mut Link,
    keys: &Keys,
    prefix: &str,
    now: u64,
) -> StoreResult<u64> {
    let script = redis::Script::new(&format!(
        "{SWEEP_TOKEN_IDS}\nreturn sweep(KEYS[1], KEYS[2], ARGV[1], ARGV[2], 1000)"
    ));
    script
        .key(keys.revoked())
        .key(keys.all_token_revocations())
        .arg(prefix)
        .arg(now)
        .invoke_async(conn)
        .await
        .map_err(unavailable)
}

impl RedisStore {
    pub fn new(conn: Link, config: RedisConfig, view: Arc<View>) -> Self {
        // Without WAIT, mutations share the read connection. (A separate link cannot fail to
        // build here: its target already made `conn`.)
        let mut writes: Vec<Link> = if config.acks.replicas == 0 {
            Vec::new()
        } else {
            (0..WRITE_LINKS)
                .filter_map(|_| conn.separate(config.acks.timeout + RESPONSE_TIMEOUT).ok())
                .collect()
        };
        if writes.is_empty() {
            writes.push(conn.clone());
        }
        RedisStore {
            conn,
            writes,
            next_write: std::sync::atomic::AtomicUsize::new(0),
            keys: Keys::new(&config.prefix),
            config,
            view,
            scripts: Scripts::load(),
            nearby: None,
        }
    }

    /// Reads what never changes after it is written from `replica` (see
    /// [`Store::get_key_nearby`]).
    pub fn with_nearby(mut self, replica: Link) -> Self {
        self.nearby = Some(replica);
        self
    }

    pub fn keys(&self) -> &Keys {
        &self.keys
    }

    /// Opens every mutation connection now (a `PING` on each), so that no caller pays for a
    /// connection set-up (a TCP handshake and `HELLO`: two extra round trips to a primary a
    /// region away) on its first mutation. A connection that cannot open now opens on first use.
    pub async fn warm_up(&self) {
        for link in self.writes.iter().chain(&self.nearby) {
            let _ = redis::cmd("PING")
                .query_async::<String>(&mut link.clone())
                .await;
        }
    }

    /// Adds the keys stored before the `lapses` and `expiring` indexes existed to them, once
    /// per Redis (a marker says it was done; a lock lets one node do it at a time). Live keys
    /// only; a key already in its last week is not added to `expiring` (its warning time has
    /// passed: it may have been warned of by a node that indexed it as it was created).
    /// Returns how many keys it looked at (0 when done before).
    pub async fn index_existing_keys(&self, now: u64) -> StoreResult<usize> {
        let mut conn = self.conn();
        let done: Option<String> = conn.get(self.keys.indexed()).await.map_err(unavailable)?;
        if done.is_some() {
            return Ok(0);
        }
        let locked: bool = redis::cmd("SET")
            .arg(self.keys.indexing())
            .arg(1)
            .arg("NX")
            .arg("EX")
            .arg(600)
            .query_async::<Option<String>>(&mut conn)
            .await
            .map_err(unavailable)?
            .is_some();
        if !locked {
            return Ok(0);
        }
        let accounts: Vec<String> = conn
            .smembers(self.keys.accounts())
            .await
            .map_err(unavailable)?;
        let mut seen = 0;
        for account in accounts {
            let mut after: Option<String> = None;
            loop {
                let batch = self.list_keys(&account, after.as_deref(), 500).await?;
                after = batch.last().map(|k| k.key_id.clone());
                let mut pipe = redis::pipe();
                for key in batch.iter().filter(|k| k.revoked_at.is_none()) {
                    let [member, lapse, warn] = index_args(key);
                    if !lapse.is_empty() {
                        pipe.cmd("ZADD")
                            .arg(self.keys.lapses())
                            .arg("NX")
                            .arg(&lapse)
                            .arg(&member)
                            .ignore();
                    }
                    if key.warns_at().is_some_and(|at| at > now) {
                        pipe.cmd("ZADD")
                            .arg(self.keys.expiring())
                            .arg("NX")
                            .arg(&warn)
                            .arg(&member)
                            .ignore();
                    }
                }
                let _: () = pipe.query_async(&mut conn).await.map_err(unavailable)?;
                seen += batch.len();
                if batch.len() < 500 {
                    break;
                }
            }
        }
        let _: () = conn
            .set(self.keys.indexed(), 1)
            .await
            .map_err(unavailable)?;
        Ok(seen)
    }

    /// Whether the schedule (a sorted set scored by due time) has an entry due by `now`. The
    /// schedulers ask this first: nothing is due nearly always, and then they cost one read, no
    /// replicated write and no WAIT.
    async fn any_due(&self, schedule: &str, now: u64) -> StoreResult<bool> {
        let due: Vec<String> = redis::cmd("ZRANGEBYSCORE")
            .arg(schedule)
            .arg("-inf")
            .arg(now)
            .arg("LIMIT")
            .arg(0)
            .arg(1)
            .query_async(&mut self.conn())
            .await
            .map_err(unavailable)?;
        Ok(!due.is_empty())
    }

    fn conn(&self) -> Link {
        // A cheap handle over one multiplexed connection.
        self.conn.clone()
    }

    /// A connection for one mutation: acknowledged only once `config.acks` replicas hold it.
    fn write(&self) -> Durable {
        let i = self
            .next_write
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Durable {
            link: self.writes[i % self.writes.len()].clone(),
            acks: self.config.acks,
            fence: self.keys.fence(),
        }
    }

    fn max_len(&self) -> String {
        self.config.stream_max_len.to_string()
    }

    fn audit_max_len(&self) -> String {
        self.config.audit_max_len.to_string()
    }

    async fn read_key(&self, account: &str, key_id: &str) -> StoreResult<Option<KeyRecord>> {
        let fields: Vec<Option<String>> = redis::cmd("HMGET")
            .arg(self.keys.key(account, key_id))
            .arg(&KEY_FIELDS[..])
            .query_async(&mut self.conn())
            .await
            .map_err(unavailable)?;
        decode_key(&fields)
    }

    async fn read_role(
        &self,
        account: &str,
        role_id: &str,
    ) -> StoreResult<Option<(String, RoleRecord)>> {
        let raw: Option<String> = self
            .conn()
            .hget(self.keys.roles(account), role_id)
            .await
            .map_err(unavailable)?;
        raw.map(|json| {
            serde_json::from_str::<RoleRecord>(&json)
                .map(|r| (json, r))
                .map_err(|e| corrupt("role", e))
        })
        .transpose()
    }
}

/// Decodes the `rec`, `revoked_at`, `refresh` fields of a key hash.
/// The fields of a key's hash a read takes, in the order [`decode_key`] reads them.
const KEY_FIELDS: [&str; 7] = [
    "rec",
    "revoked_at",
    "refresh",
    "rotated_to",
    "revokes_at",
    "rotated_from",
    "rotation_request",
];

fn decode_key(fields: &[Option<String>]) -> StoreResult<Option<KeyRecord>> {
    let Some(Some(rec)) = fields.first() else {
        return Ok(None);
    };
    let mut record: KeyRecord = serde_json::from_str(rec).map_err(|e| corrupt("key", e))?;
    let field = |i: usize| fields.get(i).and_then(|v| v.clone());
    record.revoked_at = field(1).and_then(|v| v.parse().ok());
    record.refresh_hash = field(2);
    record.rotation = crate::store::Rotation {
        to: field(3),
        revokes_at: field(4).and_then(|v| v.parse().ok()),
        from: field(5),
        request: field(6),
    };
    Ok(Some(record))
}

/// The audit record as the scripts take it ('' for none).
fn audit_json(audit: Option<&AuditRecord>) -> StoreResult<String> {
    audit.map_or_else(|| Ok(String::new()), to_json)
}

/// A new key's entries in the `lapses` and `expiring` indexes: its member, and each score
/// (`''`: not indexed there).
fn index_args(key: &KeyRecord) -> [String; 3] {
    let score = |t: Option<u64>| t.map_or_else(String::new, |t| t.to_string());
    [
        format!("{}\u{0}{}", key.account, key.key_id),
        score(key.gauged_lapse()),
        score(key.warns_at()),
    ]
}

fn expiry_score(expires_at: Option<u64>) -> String {
    expires_at.map_or_else(|| "+inf".to_owned(), |e| e.to_string())
}

#[async_trait]
impl Store for RedisStore {
    async fn ensure_account(&self, account: &str, _now: u64) -> StoreResult<bool> {
        let added: i64 = self
            .write()
            .sadd(self.keys.accounts(), account)
            .await
            .map_err(unavailable)?;
        Ok(added == 1)
    }

    async fn count_live_keys(&self, account: &str, now: u64) -> StoreResult<usize> {
        let mut count = 0;
        let mut after: Option<String> = None;
        loop {
            let page = self.list_keys(account, after.as_deref(), 500).await?;
            let done = page.len() < 500;
            after = page.last().map(|k| k.key_id.clone());
            count += page
                .iter()
                .filter(|k| k.revoked_at.is_none() && k.expires_at.is_none_or(|e| e > now))
                .count();
            if done {
                return Ok(count);
            }
        }
    }

    async fn insert_key(&self, key: KeyRecord, audit: Option<&AuditRecord>) -> StoreResult<()> {
        self.insert(key, audit, None).await.map(|_| ())
    }

    async fn insert_key_once(
        &self,
        key: KeyRecord,
        audit: Option<&AuditRecord>,
        request_id: &str,
        receipt: &Receipt,
    ) -> StoreResult<Option<Receipt>> {
        self.insert(key, audit, Some((request_id, receipt))).await
    }

    async fn get_key(&self, account: &str, key_id: &str) -> StoreResult<Option<KeyRecord>> {
        self.read_key(account, key_id).await
    }

    async fn get_key_nearby(&self, account: &str, key_id: &str) -> StoreResult<Option<KeyRecord>> {
        if let Some(nearby) = &self.nearby {
            let fields: Result<Vec<Option<String>>, _> = redis::cmd("HMGET")
                .arg(self.keys.key(account, key_id))
                .arg(&KEY_FIELDS[..])
                .query_async(&mut nearby.clone())
                .await;
            // Not there yet (made a moment ago in another cell), or the replica is down: ask
            // the primary.
            if let Ok(fields) = fields {
                if let Some(record) = decode_key(&fields)? {
                    return Ok(Some(record));
                }
            }
        }
        self.read_key(account, key_id).await
    }

    async fn list_keys(
        &self,
        account: &str,
        after: Option<&str>,
        limit: usize,
    ) -> StoreResult<Vec<KeyRecord>> {
        let min = after.map_or_else(|| "-".to_owned(), |a| format!("({a}"));
        let ids: Vec<String> = redis::cmd("ZRANGEBYLEX")
            .arg(self.keys.account_keys(account))
            .arg(min)
            .arg("+")
            .arg("LIMIT")
            .arg(0)
            .arg(limit)
            .query_async(&mut self.conn())
            .await
            .map_err(unavailable)?;
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        for id in &ids {
            pipe.cmd("HMGET")
                .arg(self.keys.key(account, id))
                .arg(&KEY_FIELDS[..]);
        }
        let rows: Vec<Vec<Option<String>>> = pipe
            .query_async(&mut self.conn())
            .await
            .map_err(unavailable)?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            if let Some(record) = decode_key(&row)? {
                out.push(record);
            }
        }
        Ok(out)
    }

    async fn revoke_key(
        &self,
        key: &KeyRecord,
        now: u64,
        audit: Option<&AuditRecord>,
    ) -> StoreResult<(KeyRecord, Option<String>)> {
        let (account, key_id) = (key.account.as_str(), key.key_id.as_str());
        let record = key.clone();
        let event = Event::CredentialRevoked {
            account: account.to_owned(),
            id: key_id.to_owned(),
            by: None,
        };
        let role_id = record.role_id.clone().unwrap_or_default();
        let reply: Reply = run_script(
            self.with_audit(
                self.scripts
                    .revoke_key
                    .key(self.keys.key(account, key_id))
                    .key(self.keys.role_keys(account, &role_id))
                    .key(self.keys.revoked())
                    .key(self.keys.events())
                    .key(self.keys.lapses())
                    .key(self.keys.expiring())
                    .arg(now)
                    .arg(revoked_credential_field(account, key_id))
                    .arg(to_json(&event)?)
                    .arg(self.max_len())
                    .arg(key_id)
                    .arg(format!("{account}\u{0}{key_id}")),
                account,
                audit,
            )?,
            &mut self.write(),
        )
        .await
        .map_err(unavailable)?;
        let values = reply
            .ok(|_| StoreError::NotFound(format!("key_id: no key {key_id} in this account")))?;
        self.view.apply(&event);
        let mut record = record;
        record.revoked_at = values.get(1).and_then(|at| at.parse().ok()).or(Some(now));
        Ok((record, values.first().cloned()))
    }

    async fn rotate_key(
        &self,
        old: &KeyRecord,
        new: KeyRecord,
        revokes_at: u64,
        now: u64,
        request_id: Option<&str>,
        audit: &[AuditRecord],
    ) -> StoreResult<Option<String>> {
        let (account, old_id) = (old.account.as_str(), old.key_id.as_str());
        let mut stored = new.clone();
        stored.revoked_at = None;
        stored.refresh_hash = None;
        stored.rotation = crate::store::Rotation::default();
        let role_id = new.role_id.clone().unwrap_or_default();
        let immediate = revokes_at <= now;
        let event = Event::CredentialRevoked {
            account: account.to_owned(),
            id: old_id.to_owned(),
            by: None,
        };
        let (rotated, revoked) = match audit {
            [rotated, revoked, ..] => (Some(rotated), Some(revoked)),
            [rotated] => (Some(rotated), None),
            [] => (None, None),
        };
        let reply: Reply = run_script(
            self.with_audit(
                self.scripts
                    .rotate_key
                    .key(self.keys.key(account, old_id))
                    .key(self.keys.key(account, &new.key_id))
                    .key(self.keys.account_keys(account))
                    .key(self.keys.role_keys(account, &role_id))
                    .key(self.keys.rotations())
                    .key(self.keys.revoked())
                    .key(self.keys.events())
                    .key(self.keys.lapses())
                    .key(self.keys.expiring())
                    .arg(old_id)
                    .arg(&new.key_id)
                    .arg(to_json(&stored)?)
                    .arg(expiry_score(new.expires_at))
                    .arg(&role_id)
                    .arg(revokes_at)
                    .arg(now)
                    .arg(if immediate { "1" } else { "" })
                    .arg(format!("{account}\u{0}{old_id}"))
                    .arg(revoked_credential_field(account, old_id))
                    .arg(to_json(&event)?)
                    .arg(self.max_len())
                    .arg(audit_json(revoked.filter(|_| immediate))?)
                    .arg(request_id.unwrap_or_default())
                    .arg(new.refresh_hash.clone().unwrap_or_default())
                    .arg(&index_args(&stored)[..]),
                account,
                rotated,
            )?,
            &mut self.write(),
        )
        .await
        .map_err(unavailable)?;
        let values = reply.ok(|refusal| match refusal {
            Refusal::NotFound => {
                StoreError::NotFound(format!("key_id: no key {old_id} in this account"))
            }
            Refusal::Exists => {
                StoreError::AlreadyExists(format!("key {} already exists", new.key_id))
            }
            Refusal::Other(word) if word == "REVOKED" => {
                StoreError::FailedPrecondition(format!("key_id: key {old_id} is revoked"))
            }
            Refusal::Other(word) if word == "ROTATING" => {
                StoreError::FailedPrecondition(format!("key_id: key {old_id} is already rotating"))
            }
            other => StoreError::Unavailable(format!("rotation refused: {other:?}")),
        })?;
        if immediate {
            self.view.apply(&event);
        }
        Ok(values.first().filter(|id| !id.is_empty()).cloned())
    }

    async fn revoke_due(&self, now: u64) -> StoreResult<usize> {
        if !self.any_due(&self.keys.rotations(), now).await? {
            return Ok(0);
        }
        let mut invocation = self.scripts.revoke_due.key(self.keys.rotations());
        invocation
            .key(self.keys.revoked())
            .key(self.keys.events())
            .arg(now)
            .arg(self.max_len())
            .arg(self.keys.prefix())
            .arg(self.audit_max_len())
            .arg(100);
        let revoked: Vec<String> = run_script(&invocation, &mut self.write())
            .await
            .map_err(unavailable)?;
        // This node's view has them at once, as with every mutation of its own.
        for member in &revoked {
            if let Some((account, key_id)) = member.split_once('\u{0}') {
                self.view.apply(&Event::CredentialRevoked {
                    account: account.to_owned(),
                    id: key_id.to_owned(),
                    by: None,
                });
            }
        }
        Ok(revoked.len())
    }

    async fn warn_expiring(&self, now: u64) -> StoreResult<usize> {
        if !self.any_due(&self.keys.expiring(), now).await? {
            return Ok(0);
        }
        let mut invocation = self.scripts.warn_expiring.key(self.keys.expiring());
        invocation
            .key(self.keys.revoked())
            .key(self.keys.watermarks())
            .arg(now)
            .arg(self.keys.prefix())
            .arg(self.audit_max_len())
            .arg(100);
        run_script(&invocation, &mut self.write())
            .await
            .map_err(unavailable)
    }

    async fn keys_lapsing(&self, now: u64, within: u64) -> StoreResult<Vec<KeyRecord>> {
        // Entries whose time has passed are of no use to anyone: trimmed here (the gauge reads
        // this at most twice a minute per node), not in every mutation.
        let past: u64 = self
            .conn()
            .zcount(self.keys.lapses(), "-inf", now)
            .await
            .map_err(unavailable)?;
        if past > 0 {
            let _: u64 = self
                .write()
                .link
                .clone()
                .zrembyscore(self.keys.lapses(), "-inf", now)
                .await
                .map_err(unavailable)?;
        }
        let members: Vec<String> = self
            .conn()
            .zrangebyscore(
                self.keys.lapses(),
                format!("({now}"),
                now.saturating_add(within),
            )
            .await
            .map_err(unavailable)?;
        let mut out = Vec::with_capacity(members.len());
        for chunk in members.chunks(500) {
            let mut pipe = redis::pipe();
            for member in chunk {
                let (account, key_id) = member.split_once('\u{0}').unwrap_or(("", member));
                pipe.cmd("HMGET")
                    .arg(self.keys.key(account, key_id))
                    .arg(&KEY_FIELDS[..]);
            }
            let rows: Vec<Vec<Option<String>>> = pipe
                .query_async(&mut self.conn())
                .await
                .map_err(unavailable)?;
            for row in rows {
                if let Some(record) = decode_key(&row)? {
                    out.push(record);
                }
            }
        }
        Ok(out)
    }

    async fn revoke(
        &self,
        event: Event,
        audit: Option<&AuditRecord>,
    ) -> StoreResult<Option<String>> {
        let now = crate::clock::wall_ms() / 1000;
        let field = match &event {
            Event::CredentialRevoked {
                account,
                id,
                by: None,
            } => revoked_credential_field(account, id),
            Event::CredentialRevoked {
                account,
                id,
                by: Some(by),
            } => revoked_scoped_field(account, id, by),
            _ => {
                return Err(StoreError::FailedPrecondition(
                    "only credential revocations are published by revoke".into(),
                ))
            }
        };
        let id: String = run_script(
            self.with_audit(
                self.scripts
                    .publish
                    .key(self.keys.revoked())
                    .key(self.keys.events())
                    .arg(field)
                    .arg(now)
                    .arg(to_json(&event)?)
                    .arg(self.max_len()),
                event.account(),
                audit,
            )?,
            &mut self.write(),
        )
        .await
        .map_err(unavailable)?;
        self.view.apply(&event);
        Ok(Some(id))
    }

    async fn revoke_token_id(
        &self,
        event: Event,
        now: u64,
        max_live: usize,
        audit: Option<&AuditRecord>,
    ) -> StoreResult<Option<String>> {
        let Event::TokenIdRevoked {
            account,
            token_id,
            until,
            by,
        } = &event
        else {
            return Err(StoreError::FailedPrecondition(
                "only token-id revocations are published by revoke_token_id".into(),
            ));
        };
        let reply: Reply = run_script(
            self.with_audit(
                self.scripts
                    .revoke_token_id
                    .key(self.keys.revoked())
                    .key(self.keys.token_revocations(account))
                    .key(self.keys.all_token_revocations())
                    .key(self.keys.events())
                    .arg(revoked_token_id_field(account, token_id, by.as_deref()))
                    .arg(*until)
                    .arg(now)
                    .arg(max_live)
                    .arg(to_json(&event)?)
                    .arg(self.max_len())
                    .arg(&self.config.prefix),
                account,
                audit,
            )?,
            &mut self.write(),
        )
        .await
        .map_err(unavailable)?;
        let values = reply.ok(|_| super::memory::quota_exceeded(max_live))?;
        self.view.apply(&event);
        Ok(values.first().cloned())
    }

    async fn revoke_issued_before(
        &self,
        account: &str,
        before_ms: Option<u64>,
        _now_ms: u64,
        audit: Option<&AuditRecord>,
    ) -> StoreResult<(u64, Option<String>)> {
        let reply: Vec<String> = run_script(
            self.with_audit(
                self.scripts
                    .issued_before
                    .key(self.keys.watermarks())
                    .key(self.keys.events())
                    .arg(account)
                    .arg(before_ms.map_or_else(String::new, |b| b.to_string()))
                    .arg(self.max_len())
                    .arg(super::memory::CUT_PLACEHOLDER),
                account,
                audit,
            )?,
            &mut self.write(),
        )
        .await
        .map_err(unavailable)?;
        let (watermark, id) = match reply.as_slice() {
            [watermark, id] => (
                watermark
                    .parse::<u64>()
                    .map_err(|e| corrupt("watermark", e))?,
                id.clone(),
            ),
            _ => return Err(corrupt("watermark reply", "unexpected shape")),
        };
        self.view.apply(&Event::IssuedBefore {
            account: account.to_owned(),
            before_ms: watermark,
        });
        Ok((watermark, Some(id)))
    }

    async fn latest_event_id(&self) -> StoreResult<Option<String>> {
        latest_event_id(&mut self.conn(), &self.keys).await
    }

    async fn append_audit(&self, audit: &AuditRecord) -> StoreResult<()> {
        redis::cmd("XADD")
            .arg(self.keys.audit(&audit.account))
            .arg("MAXLEN")
            .arg("~")
            .arg(self.audit_max_len())
            .arg("*")
            .arg("a")
            .arg(to_json(audit)?)
            .query_async::<String>(&mut self.write())
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    async fn list_audit(&self, account: &str, query: &AuditQuery) -> StoreResult<Vec<AuditRecord>> {
        // Stream ids are `<millis>-<seq>`, so time bounds are id bounds.
        let end = match (&query.before_id, query.until_ms) {
            (Some(id), _) => format!("({id}"),
            (None, Some(until)) if until > 0 => (until - 1).to_string(),
            (None, Some(_)) => return Ok(Vec::new()),
            (None, None) => "+".to_owned(),
        };
        let start = query
            .since_ms
            .map_or_else(|| "-".to_owned(), |s| s.to_string());
        let entries: Vec<(String, Vec<String>)> = redis::cmd("XREVRANGE")
            .arg(self.keys.audit(account))
            .arg(end)
            .arg(start)
            .arg("COUNT")
            .arg(query.limit)
            .query_async(&mut self.conn())
            .await
            .map_err(unavailable)?;
        let mut out = Vec::with_capacity(entries.len());
        for (id, fields) in entries {
            let Some(json) = fields
                .chunks(2)
                .find(|kv| kv.first().map(String::as_str) == Some("a"))
                .and_then(|kv| kv.get(1))
            else {
                continue;
            };
            let mut record: AuditRecord =
                serde_json::from_str(json).map_err(|e| corrupt("audit event", e))?;
            record.at_ms = super::StreamId::ms_of(&id);
            record.id = id;
            out.push(record);
        }
        Ok(out)
    }

    async fn nodes(&self) -> StoreResult<Vec<NodeStatus>> {
        let raw: std::collections::HashMap<String, String> = self
            .conn()
            .hgetall(self.keys.nodes())
            .await
            .map_err(unavailable)?;
        let mut nodes: Vec<NodeStatus> = raw
            .values()
            .filter_map(|json| serde_json::from_str(json).ok())
            .collect();
        nodes.sort_by(|a, b| (&a.cell, &a.node_id).cmp(&(&b.cell, &b.node_id)));
        Ok(nodes)
    }

    async fn reset_refresh(
        &self,
        account: &str,
        key_id: &str,
        refresh_hash: &str,
    ) -> StoreResult<()> {
        let reply: Reply = run_script(
            self.scripts
                .reset_refresh
                .key(self.keys.key(account, key_id))
                .arg(refresh_hash),
            &mut self.write(),
        )
        .await
        .map_err(unavailable)?;
        reply
            .ok(|refusal| match refusal {
                Refusal::NotFound => {
                    StoreError::NotFound(format!("no key {key_id} in this account"))
                }
                _ => StoreError::FailedPrecondition(format!(
                    "key {key_id} is revoked or has no refresh token"
                )),
            })
            .map(drop)
    }

    async fn set_key_policy(
        &self,
        account: &str,
        policy: &KeyPolicy,
        audit: Option<&AuditRecord>,
    ) -> StoreResult<()> {
        let event = Event::KeyPolicySet {
            account: account.to_owned(),
            policy: policy.clone(),
        };
        let _: String = run_script(
            self.with_audit(
                self.scripts
                    .publish
                    .key(self.keys.policies())
                    .key(self.keys.events())
                    .arg(account)
                    .arg(to_json(policy)?)
                    .arg(to_json(&event)?)
                    .arg(self.max_len()),
                account,
                audit,
            )?,
            &mut self.write(),
        )
        .await
        .map_err(unavailable)?;
        self.view.apply(&event);
        Ok(())
    }

    async fn get_key_policy(&self, account: &str) -> StoreResult<KeyPolicy> {
        let json: Option<String> = self
            .conn()
            .hget(self.keys.policies(), account)
            .await
            .map_err(unavailable)?;
        json.map_or_else(
            || Ok(KeyPolicy::default()),
            |json| serde_json::from_str(&json).map_err(|e| corrupt("key policy", e)),
        )
    }

    async fn list_roles(&self, account: &str) -> StoreResult<Vec<RoleRecord>> {
        let raw: std::collections::HashMap<String, String> = self
            .conn()
            .hgetall(self.keys.roles(account))
            .await
            .map_err(unavailable)?;
        let mut roles = raw
            .values()
            .map(|json| serde_json::from_str::<RoleRecord>(json).map_err(|e| corrupt("role", e)))
            .collect::<StoreResult<Vec<_>>>()?;
        roles.sort_by(|a, b| a.role_id.cmp(&b.role_id));
        Ok(roles)
    }

    async fn get_role(&self, account: &str, role_id: &str) -> StoreResult<Option<RoleRecord>> {
        Ok(self.read_role(account, role_id).await?.map(|(_, r)| r))
    }

    async fn create_role(&self, role: RoleRecord, audit: Option<&AuditRecord>) -> StoreResult<()> {
        self.put_role(None, role, audit).await
    }

    async fn update_role(&self, role: RoleRecord, audit: Option<&AuditRecord>) -> StoreResult<()> {
        let (old_json, old) = self
            .read_role(&role.account, &role.role_id)
            .await?
            .ok_or_else(|| {
                StoreError::NotFound(format!("role_id: no role {} in this account", role.role_id))
            })?;
        self.put_role(Some((old_json, old.name)), role, audit).await
    }

    async fn rotate_refresh(
        &self,
        account: &str,
        old_key_id: &str,
        refresh_hash: &str,
        new_key: KeyRecord,
        now: u64,
        audit: Option<&AuditRecord>,
    ) -> StoreResult<()> {
        let event = Event::CredentialRevoked {
            account: account.to_owned(),
            id: old_key_id.to_owned(),
            by: None,
        };
        let mut stored = new_key.clone();
        stored.revoked_at = None;
        stored.refresh_hash = None;
        let old_role = self
            .read_key(account, old_key_id)
            .await?
            .and_then(|k| k.role_id)
            .unwrap_or_default();
        let new_role = new_key.role_id.clone().unwrap_or_default();
        let reply: Reply = run_script(
            self.with_audit(
                self.scripts
                    .rotate_refresh
                    .key(self.keys.key(account, old_key_id))
                    .key(self.keys.key(account, &new_key.key_id))
                    .key(self.keys.account_keys(account))
                    .key(self.keys.revoked())
                    .key(self.keys.events())
                    .key(self.keys.role_keys(account, &old_role))
                    .key(self.keys.role_keys(account, &new_role))
                    .key(self.keys.lapses())
                    .key(self.keys.expiring())
                    .arg(refresh_hash)
                    .arg(now)
                    .arg(&new_key.key_id)
                    .arg(to_json(&stored)?)
                    .arg(new_key.refresh_hash.clone().unwrap_or_default())
                    .arg(revoked_credential_field(account, old_key_id))
                    .arg(to_json(&event)?)
                    .arg(self.max_len())
                    .arg(old_key_id)
                    .arg(expiry_score(new_key.expires_at))
                    .arg(&new_role)
                    .arg(&index_args(&new_key)[..])
                    .arg(format!("{account}\u{0}{old_key_id}")),
                account,
                audit,
            )?,
            &mut self.write(),
        )
        .await
        .map_err(unavailable)?;
        reply.ok(|refusal| match refusal {
            Refusal::NotFound => {
                StoreError::NotFound(format!("no key {old_key_id} in this account"))
            }
            Refusal::Exists => {
                StoreError::AlreadyExists(format!("key {} already exists", new_key.key_id))
            }
            _ => StoreError::FailedPrecondition(
                "refresh_token: not valid for this key (a refresh token works once)".into(),
            ),
        })?;
        self.view.apply(&event);
        Ok(())
    }

    async fn delete_role(
        &self,
        account: &str,
        role_id: &str,
        now: u64,
        audit: Option<&AuditRecord>,
    ) -> StoreResult<()> {
        let (old_json, old) = self.read_role(account, role_id).await?.ok_or_else(|| {
            StoreError::NotFound(format!("role_id: no role {role_id} in this account"))
        })?;
        let event = Event::RoleDeleted {
            account: account.to_owned(),
            role_id: role_id.to_owned(),
        };
        let reply: Reply = run_script(
            self.with_audit(
                self.scripts
                    .delete_role
                    .key(self.keys.roles(account))
                    .key(self.keys.role_names(account))
                    .key(self.keys.all_roles())
                    .key(self.keys.role_keys(account, role_id))
                    .key(self.keys.events())
                    .arg(role_id)
                    .arg(&old_json)
                    .arg(&old.name)
                    .arg(now)
                    .arg(role_field(account, role_id))
                    .arg(to_json(&event)?)
                    .arg(self.max_len()),
                account,
                audit,
            )?,
            &mut self.write(),
        )
        .await
        .map_err(unavailable)?;
        reply.ok(|refusal| match refusal {
            Refusal::InUse(live) => StoreError::FailedPrecondition(format!(
                "role {role_id} is used by {live} live key(s): revoke them first"
            )),
            Refusal::Conflict => StoreError::FailedPrecondition(
                "the role changed while it was being deleted; try again".into(),
            ),
            _ => StoreError::NotFound(format!("role_id: no role {role_id} in this account")),
        })?;
        self.view.apply(&event);
        Ok(())
    }
}

/// The newest id of the event stream, if it has entries.
pub async fn latest_event_id(conn: &mut Link, keys: &Keys) -> StoreResult<Option<String>> {
    newest_id(conn, &keys.events()).await
}

/// The newest id of a stream, if it has entries.
pub async fn newest_id(conn: &mut Link, stream: &str) -> StoreResult<Option<String>> {
    let entries: Vec<(String, Vec<(String, String)>)> = redis::cmd("XREVRANGE")
        .arg(stream)
        .arg("+")
        .arg("-")
        .arg("COUNT")
        .arg(1)
        .query_async(conn)
        .await
        .map_err(unavailable)?;
    Ok(entries.into_iter().next().map(|(id, _)| id))
}
