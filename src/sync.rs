//! Keeps a node's live [`View`] in step with Redis.
//!
//! At start the node loads the whole revocation state (revoked ids, token ids, watermarks,
//! custom roles) from its cell's replica, remembering the newest event id it saw *before* the
//! load; then it tails the event stream from that id with blocking reads. Events are idempotent,
//! so re-applying ones the load already reflected is harmless. After a disconnect it resumes
//! from the last applied id; if the stream was trimmed past that id, it reloads in full, so no
//! revocation is ever skipped.
//!
//! Trimming is detected by counting, not by ids: `XINFO STREAM` reports how many entries were
//! ever added and how many remain, so `added - length` entries were trimmed (authcell never
//! uses XDEL; and Redis 7.0 does not update `max-deleted-entry-id` when trimming). The node
//! knows how many entries it has seen (those up to its position); if more were trimmed than it
//! has seen, some entry it never read is gone.
//!
//! The node reports its position to the primary after every batch and on a heartbeat, so an
//! operator can see each cell's lag and a revocation can wait until every live cell applied it.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use redis::aio::ConnectionManager;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::store::redis::{unavailable, wall_ms, Keys};
use crate::store::{NodeStatus, RoleRecord, StoreError, StoreResult};
use crate::view::{Event, View};

/// How often a node reports its position when no event arrives.
pub const HEARTBEAT: Duration = Duration::from_millis(500);
/// Longest blocking read; also bounds how stale an idle view's sync time gets.
const BLOCK_MS: u64 = 1000;
/// Events applied per read at most.
const BATCH: usize = 1000;

/// Identity of this node in progress reports.
#[derive(Clone, Debug)]
pub struct NodeIdentity {
    pub node_id: String,
    pub cell: String,
}

/// A running sync: stop it to deregister the node.
pub struct SyncHandle {
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
    position: Arc<Mutex<String>>,
}

impl SyncHandle {
    /// The last event id applied.
    pub fn position(&self) -> String {
        lock(&self.position).clone()
    }

    /// Stops tailing and heartbeats, and removes this node's report.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        for task in self.tasks {
            let _ = task.await;
        }
    }
}

fn lock(position: &Mutex<String>) -> std::sync::MutexGuard<'_, String> {
    // Only ever holds a String assignment: a poisoned lock still holds a whole value.
    position.lock().unwrap_or_else(|e| e.into_inner())
}

/// Where a node reports its progress (authcell nodes do; a cache node linking the verifier
/// library need not).
pub struct Reporting {
    pub primary: ConnectionManager,
    pub identity: NodeIdentity,
}

/// Starts the tailer (on `read`, this cell's replica) and, with `reporting`, the heartbeat.
pub fn spawn(
    view: Arc<View>,
    read: ConnectionManager,
    keys: Keys,
    reporting: Option<Reporting>,
) -> SyncHandle {
    let (stop, stopped) = watch::channel(false);
    let position = Arc::new(Mutex::new("0-0".to_owned()));
    let report_to = reporting
        .as_ref()
        .map(|r| (r.primary.clone(), r.identity.clone()));
    let mut tasks = vec![tokio::spawn(tail(
        view,
        read,
        report_to,
        keys.clone(),
        position.clone(),
        stopped.clone(),
    ))];
    if let Some(Reporting { primary, identity }) = reporting {
        tasks.push(tokio::spawn(heartbeat(
            primary,
            keys,
            identity,
            position.clone(),
            stopped,
        )));
    }
    SyncHandle {
        stop,
        tasks,
        position,
    }
}

/// Loads the whole revocation state as events, with the stream id it is current as of.
pub async fn load(
    conn: &mut ConnectionManager,
    keys: &Keys,
) -> StoreResult<(Vec<Event>, StreamInfo)> {
    // The position is read first: anything newer is replayed from the stream afterwards.
    let info = stream_info(conn, keys).await?;
    let mut events = Vec::new();
    for (field, _) in hscan(conn, &keys.revoked()).await? {
        let mut parts = field.splitn(3, '\u{0}');
        match (parts.next(), parts.next(), parts.next()) {
            (Some("c"), Some(account), Some(id)) => events.push(Event::CredentialRevoked {
                account: account.into(),
                id: id.into(),
            }),
            (Some("t"), Some(account), Some(token_id)) => events.push(Event::TokenIdRevoked {
                account: account.into(),
                token_id: token_id.into(),
            }),
            _ => tracing::warn!("ignoring a malformed revocation entry"),
        }
    }
    for (account, before) in hscan(conn, &keys.watermarks()).await? {
        if let Ok(before) = before.parse() {
            events.push(Event::IssuedBefore { account, before });
        }
    }
    for (_, json) in hscan(conn, &keys.all_roles()).await? {
        match serde_json::from_str::<RoleRecord>(&json) {
            Ok(role) => events.push(Event::RoleSet {
                account: role.account,
                role_id: role.role_id,
                permissions: role.permissions,
            }),
            Err(e) => tracing::warn!(error = %e, "ignoring an unreadable role"),
        }
    }
    Ok((events, info))
}

async fn hscan(conn: &mut ConnectionManager, key: &str) -> StoreResult<Vec<(String, String)>> {
    let mut out = Vec::new();
    let mut cursor: u64 = 0;
    loop {
        let (next, page): (u64, Vec<(String, String)>) = redis::cmd("HSCAN")
            .arg(key)
            .arg(cursor)
            .arg("COUNT")
            .arg(5000)
            .query_async(conn)
            .await
            .map_err(unavailable)?;
        out.extend(page);
        if next == 0 {
            return Ok(out);
        }
        cursor = next;
    }
}

type StreamReply = Option<Vec<(String, Vec<(String, Vec<String>)>)>>;

/// One blocking read of events after `from`.
async fn read_after(
    conn: &mut ConnectionManager,
    keys: &Keys,
    from: &str,
) -> StoreResult<Vec<(String, Option<Event>)>> {
    let reply: StreamReply = redis::cmd("XREAD")
        .arg("COUNT")
        .arg(BATCH)
        .arg("BLOCK")
        .arg(BLOCK_MS)
        .arg("STREAMS")
        .arg(keys.events())
        .arg(from)
        .query_async(conn)
        .await
        .map_err(unavailable)?;
    let entries = reply
        .into_iter()
        .flatten()
        .flat_map(|(_, entries)| entries)
        .map(|(id, fields)| {
            let event = fields
                .chunks(2)
                .find(|kv| kv.first().map(String::as_str) == Some("e"))
                .and_then(|kv| kv.get(1))
                .and_then(|json| serde_json::from_str::<Event>(json).ok());
            (id, event)
        })
        .collect();
    Ok(entries)
}

/// What `XINFO STREAM` says about the event stream, from one consistent reply.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StreamInfo {
    /// The newest id ever generated ("0-0" for a stream that never had an entry).
    pub last_id: String,
    /// Entries ever added.
    pub entries_added: u64,
    /// Entries still in the stream.
    pub length: u64,
}

impl StreamInfo {
    /// Entries removed by trimming.
    pub fn trimmed(&self) -> u64 {
        self.entries_added.saturating_sub(self.length)
    }
}

pub async fn stream_info(conn: &mut ConnectionManager, keys: &Keys) -> StoreResult<StreamInfo> {
    let reply: redis::RedisResult<Vec<redis::Value>> = redis::cmd("XINFO")
        .arg("STREAM")
        .arg(keys.events())
        .query_async(conn)
        .await;
    let fields = match reply {
        Ok(fields) => fields,
        // No stream yet.
        Err(e) if e.to_string().contains("no such key") => {
            return Ok(StreamInfo {
                last_id: "0-0".into(),
                ..StreamInfo::default()
            })
        }
        Err(e) => return Err(unavailable(e)),
    };
    let mut info = StreamInfo {
        last_id: "0-0".into(),
        ..StreamInfo::default()
    };
    let mut it = fields.into_iter();
    while let (Some(k), Some(v)) = (it.next(), it.next()) {
        match redis::from_redis_value::<String>(k).ok().as_deref() {
            Some("length") => info.length = redis::from_redis_value(v).unwrap_or(0),
            Some("entries-added") => info.entries_added = redis::from_redis_value(v).unwrap_or(0),
            Some("last-generated-id") => {
                info.last_id = redis::from_redis_value(v).unwrap_or_else(|_| "0-0".into())
            }
            _ => {}
        }
    }
    Ok(info)
}

async fn report(
    primary: &mut ConnectionManager,
    keys: &Keys,
    identity: &NodeIdentity,
    position: &str,
) -> StoreResult<()> {
    let status = NodeStatus {
        node_id: identity.node_id.clone(),
        cell: identity.cell.clone(),
        position: position.to_owned(),
        seen_at_ms: wall_ms(),
    };
    let json =
        serde_json::to_string(&status).map_err(|e| StoreError::Unavailable(e.to_string()))?;
    redis::cmd("HSET")
        .arg(keys.nodes())
        .arg(&identity.node_id)
        .arg(json)
        .query_async::<()>(primary)
        .await
        .map_err(unavailable)
}

async fn tail(
    view: Arc<View>,
    mut read: ConnectionManager,
    mut report_to: Option<(ConnectionManager, NodeIdentity)>,
    keys: Keys,
    position: Arc<Mutex<String>>,
    mut stopped: watch::Receiver<bool>,
) {
    let mut need_load = true;
    // Entries of the stream up to our position: those the load reflected, plus those applied.
    let mut seen: u64 = 0;
    while !*stopped.borrow() {
        if need_load {
            match load(&mut read, &keys).await {
                Ok((events, info)) => {
                    let count = events.len();
                    view.replace(events);
                    *lock(&position) = info.last_id.clone();
                    seen = info.entries_added;
                    need_load = false;
                    tracing::info!(entries = count, position = %info.last_id, "revocation view loaded");
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cannot load the revocation view; retrying");
                    pause(&mut stopped, Duration::from_millis(250)).await;
                    continue;
                }
            }
        }
        let from = lock(&position).clone();
        let entries = tokio::select! {
            entries = read_after(&mut read, &keys, &from) => entries,
            _ = stopped.changed() => break,
        };
        let entries = match entries {
            Ok(entries) => entries,
            Err(e) => {
                tracing::warn!(error = %e, "event stream read failed; resuming from the last applied id");
                pause(&mut stopped, Duration::from_millis(100)).await;
                continue;
            }
        };
        let applied = !entries.is_empty();
        for (id, event) in entries {
            match event {
                Some(event) => view.apply(&event),
                None => tracing::warn!(id = %id, "ignoring an unreadable event"),
            }
            *lock(&position) = id;
            seen += 1;
        }
        // Trimmed past our position? Then entries we never read are gone: reload in full. A
        // stream with fewer entries ever added than we saw was recreated: reload too.
        match stream_info(&mut read, &keys).await {
            Ok(info) if info.trimmed() > seen || info.entries_added < seen => {
                tracing::warn!(position = %from, seen, trimmed = info.trimmed(), "event stream trimmed past this node's position; reloading the revocation view");
                need_load = true;
                continue;
            }
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(error = %e, "cannot check the event stream for trimming");
                continue;
            }
        }
        view.mark_synced();
        if let (true, Some((primary, identity))) = (applied, report_to.as_mut()) {
            let at = lock(&position).clone();
            if let Err(e) = report(primary, &keys, identity, &at).await {
                tracing::debug!(error = %e, "cannot report position");
            }
        }
    }
}

async fn heartbeat(
    mut primary: ConnectionManager,
    keys: Keys,
    identity: NodeIdentity,
    position: Arc<Mutex<String>>,
    mut stopped: watch::Receiver<bool>,
) {
    while !*stopped.borrow() {
        let at = lock(&position).clone();
        if let Err(e) = report(&mut primary, &keys, &identity, &at).await {
            tracing::debug!(error = %e, "heartbeat failed");
        }
        pause(&mut stopped, HEARTBEAT).await;
    }
    let _ = redis::cmd("HDEL")
        .arg(keys.nodes())
        .arg(&identity.node_id)
        .query_async::<()>(&mut primary)
        .await;
}

async fn pause(stopped: &mut watch::Receiver<bool>, duration: Duration) {
    tokio::select! {
        _ = tokio::time::sleep(duration) => {}
        _ = stopped.changed() => {}
    }
}
