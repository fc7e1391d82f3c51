//! Connections to Redis that follow the primary through a failover.
//!
//! A [`Link`] is one multiplexed connection to a Redis server found by a [`Target`]: a fixed
//! URL (a single Redis, a cell's replica, or a managed Redis whose DNS name moves to the new
//! primary on failover), or Redis Sentinel (`--redis-sentinel`, `--redis-master-name`), which
//! names the current primary. It implements [`ConnectionLike`], so every command and script
//! runs on it as on any redis-rs connection.
//!
//! When the server goes away (I/O error, dropped connection, timeout) or answers `READONLY`
//! (the primary we knew was demoted to a replica), the connection is dropped and the next
//! command connects afresh: to the same URL, whose name may now point elsewhere, or to the
//! primary Sentinel names now. A command refused with `READONLY` was not executed, so it is
//! sent once more to the primary found anew; any other failure is returned to the caller (the
//! command may or may not have run: that is the store's UNAVAILABLE, and mutations are safe to
//! retry).
//!
//! Links made from one another with [`Link::separate`] share an epoch: when one loses its
//! connection, the others reconnect before their next command rather than each failing once on
//! a server that is gone. Right after a failover the Sentinels may briefly disagree, so a
//! Sentinel lookup is tried a few times (bounded by the connect timeout) before it fails.
//!
//! [`Durable`] wraps a link for mutations: after every command it sends a fence write and
//! `WAIT n timeout` in the same round trip, and fails unless `n` replicas acknowledged the
//! write (docs/operating.md: "No acknowledged write is lost on failover").

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::metrics::Counters;
use redis::aio::{ConnectionLike, MultiplexedConnection};
use redis::sentinel::{SentinelClient, SentinelNodeConnectionInfo, SentinelServerType};
use redis::{AsyncConnectionConfig, Cmd, ErrorKind, Pipeline, RedisError, RedisFuture, Value};

/// How long connecting (including asking Sentinel) may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// Sentinel lookups tried again after a failure, this far apart, before a connect fails.
const SENTINEL_RETRIES: u32 = 5;
const SENTINEL_RETRY_PAUSE: Duration = Duration::from_millis(200);
/// After a failed connect, commands fail at once for this long instead of each trying again.
const RECONNECT_BACKOFF: Duration = Duration::from_millis(100);

/// Where a link connects.
#[derive(Clone, Debug)]
pub enum Target {
    /// A fixed URL (`redis://[user:password@]host:port[/db]`).
    Url(String),
    /// The primary that Redis Sentinel names for `master`.
    Sentinel {
        /// Sentinel addresses: `host:port` or `redis://` URLs.
        sentinels: Vec<String>,
        master: String,
        /// Credentials and database of the data nodes (the sentinels' own are in their URLs).
        username: Option<String>,
        password: Option<String>,
        db: i64,
    },
}

impl Target {
    /// Checks the target's syntax (without connecting), for a clear error at start.
    pub fn check(&self) -> Result<(), String> {
        match self {
            Target::Url(url) => redis::Client::open(url.as_str())
                .map(|_| ())
                .map_err(|e| format!("{}: {e}", redact(url))),
            Target::Sentinel {
                sentinels, master, ..
            } => {
                if sentinels.is_empty() {
                    return Err("--redis-sentinel: at least one address is required".into());
                }
                if master.is_empty() {
                    return Err("--redis-master-name is required with --redis-sentinel".into());
                }
                for s in sentinels {
                    redis::Client::open(sentinel_url(s).as_str())
                        .map_err(|e| format!("--redis-sentinel: {}: {e}", redact(s)))?;
                }
                Ok(())
            }
        }
    }

    /// For logs and errors: the address without credentials.
    pub fn describe(&self) -> String {
        match self {
            Target::Url(url) => redact(url),
            Target::Sentinel {
                sentinels, master, ..
            } => format!(
                "sentinel master {master:?} via {}",
                sentinels
                    .iter()
                    .map(|s| redact(s))
                    .collect::<Vec<_>>()
                    .join(",")
            ),
        }
    }
}

/// `host:port` becomes `redis://host:port`; URLs pass through.
fn sentinel_url(address: &str) -> String {
    if address.contains("://") {
        address.to_owned()
    } else {
        format!("redis://{address}")
    }
}

/// A URL without its password.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            format!("{}***{}", &url[..scheme + 3], &url[at..])
        }
        _ => url.to_owned(),
    }
}

enum Resolver {
    Url(redis::Client),
    Sentinel(Box<SentinelClient>),
}

impl Resolver {
    fn is_sentinel(&self) -> bool {
        matches!(self, Resolver::Sentinel(_))
    }

    async fn client(&mut self) -> Result<redis::Client, RedisError> {
        match self {
            Resolver::Url(client) => Ok(client.clone()),
            Resolver::Sentinel(sentinel) => sentinel.async_get_client().await,
        }
    }
}

struct Inner {
    target: Target,
    config: AsyncConnectionConfig,
    /// The live connection, its generation (so that one failure drops it only once) and the
    /// group epoch it was made in.
    current: Mutex<Option<Current>>,
    /// Shared by the links [`Link::separate`] made from one another: when one of them loses its
    /// connection, the epoch moves on and the others reconnect before their next command
    /// instead of failing on a connection to a server that is gone (after a failover, the
    /// first command on each idle connection would otherwise fail).
    epoch: Arc<AtomicU64>,
    /// Serialises reconnecting.
    connector: tokio::sync::Mutex<Connector>,
}

struct Connector {
    resolver: Resolver,
    /// Generation of the last connection made.
    generation: u64,
    /// When the last attempt failed, and why.
    failed: Option<(Instant, String)>,
}

#[derive(Clone)]
struct Current {
    generation: u64,
    epoch: u64,
    conn: MultiplexedConnection,
}

/// A connection that reconnects, and follows the primary; clones share it.
#[derive(Clone)]
pub struct Link {
    inner: Arc<Inner>,
    /// Where failed commands are counted: the node's counters (see [`Link::counted`]).
    counters: Arc<Counters>,
}

impl Link {
    /// A link to `target` whose commands may take up to `response_timeout`. Connects lazily.
    pub fn new(target: Target, response_timeout: Duration) -> Result<Link, String> {
        Link::in_group(target, response_timeout, Arc::new(AtomicU64::new(0)))
    }

    fn in_group(
        target: Target,
        response_timeout: Duration,
        epoch: Arc<AtomicU64>,
    ) -> Result<Link, String> {
        target.check()?;
        let resolver = match &target {
            Target::Url(url) => Resolver::Url(
                redis::Client::open(url.as_str()).map_err(|e| format!("{}: {e}", redact(url)))?,
            ),
            Target::Sentinel {
                sentinels,
                master,
                username,
                password,
                db,
            } => {
                let mut info = redis::RedisConnectionInfo::default().set_db(*db);
                if let Some(user) = username {
                    info = info.set_username(user);
                }
                if let Some(password) = password {
                    info = info.set_password(password);
                }
                let node = SentinelNodeConnectionInfo::default().set_redis_connection_info(info);
                let client = SentinelClient::build(
                    sentinels.iter().map(|s| sentinel_url(s)).collect(),
                    master.clone(),
                    Some(node),
                    SentinelServerType::Master,
                )
                .map_err(|e| format!("--redis-sentinel: {e}"))?;
                Resolver::Sentinel(Box::new(client))
            }
        };
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_response_timeout(Some(response_timeout));
        Ok(Link {
            inner: Arc::new(Inner {
                target,
                config,
                current: Mutex::new(None),
                epoch,
                connector: tokio::sync::Mutex::new(Connector {
                    resolver,
                    generation: 0,
                    failed: None,
                }),
            }),
            counters: Arc::default(),
        })
    }

    /// A link connected now: fails with one clear error if the target cannot be reached.
    pub async fn connect(target: Target, response_timeout: Duration) -> Result<Link, String> {
        let link = Link::new(target, response_timeout)?;
        link.connection()
            .await
            .map_err(|e| format!("{}: cannot connect to Redis: {e}", link.describe()))?;
        Ok(link)
    }

    pub fn describe(&self) -> String {
        self.inner.target.describe()
    }

    /// The same target, on a connection of its own (for blocking reads and `WAIT`, which hold
    /// up every other command queued on their connection).
    pub fn separate(&self, response_timeout: Duration) -> Result<Link, String> {
        Ok(Link::in_group(
            self.inner.target.clone(),
            response_timeout,
            self.inner.epoch.clone(),
        )?
        .counted(self.counters.clone()))
    }

    /// Counts this link's failed commands (and those of links [`separate`](Link::separate)d
    /// from it) in `counters`, a node's; by default a link counts in counters of its own.
    pub fn counted(mut self, counters: Arc<Counters>) -> Link {
        self.counters = counters;
        self
    }

    /// The counters this link counts in.
    pub fn counters(&self) -> &Arc<Counters> {
        &self.counters
    }

    /// Counts a failed command returned to a caller (a script missing from the script cache is
    /// not a failure: the caller loads it and retries).
    fn count<T>(&self, result: Result<T, RedisError>) -> Result<T, RedisError> {
        if let Err(e) = &result {
            if e.kind() != ErrorKind::Server(redis::ServerErrorKind::NoScript) {
                Counters::bump(&self.counters.redis_errors);
            }
        }
        result
    }

    fn lock_current(&self) -> std::sync::MutexGuard<'_, Option<Current>> {
        // Only ever holds an assignment: a poisoned lock still holds a whole value.
        self.inner.current.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The current connection, unless a link of the group lost its own since it was made.
    fn live(&self) -> Option<(u64, MultiplexedConnection)> {
        let epoch = self.inner.epoch.load(Ordering::Acquire);
        let current = self.lock_current();
        current
            .as_ref()
            .filter(|c| c.epoch >= epoch)
            .map(|c| (c.generation, c.conn.clone()))
    }

    async fn connection(&self) -> Result<(u64, MultiplexedConnection), RedisError> {
        if let Some(current) = self.live() {
            return Ok(current);
        }
        let mut connector = self.inner.connector.lock().await;
        if let Some(current) = self.live() {
            return Ok(current);
        }
        if let Some((at, error)) = &connector.failed {
            if at.elapsed() < RECONNECT_BACKOFF {
                return Err(RedisError::from((
                    ErrorKind::Io,
                    "Redis unreachable",
                    error.clone(),
                )));
            }
        }
        let epoch = self.inner.epoch.load(Ordering::Acquire);
        let config = &self.inner.config;
        let resolver = &mut connector.resolver;
        let attempt = async move {
            // Right after a failover the Sentinels may briefly disagree, or name a primary
            // that is still finishing its promotion: ask again a few times before failing.
            let mut tries = 0;
            loop {
                let connected = match resolver.client().await {
                    Ok(client) => {
                        client
                            .get_multiplexed_async_connection_with_config(config)
                            .await
                    }
                    Err(e) => Err(e),
                };
                match connected {
                    Err(_) if resolver.is_sentinel() && tries < SENTINEL_RETRIES => {
                        tries += 1;
                        tokio::time::sleep(SENTINEL_RETRY_PAUSE).await;
                    }
                    other => return other,
                }
            }
        };
        let result = match tokio::time::timeout(CONNECT_TIMEOUT * 2, attempt).await {
            Ok(result) => result,
            Err(_) => Err(RedisError::from((
                ErrorKind::Io,
                "Redis unreachable",
                "connecting timed out".to_owned(),
            ))),
        };
        match result {
            Ok(conn) => {
                connector.generation += 1;
                connector.failed = None;
                *self.lock_current() = Some(Current {
                    generation: connector.generation,
                    epoch,
                    conn: conn.clone(),
                });
                Ok((connector.generation, conn))
            }
            Err(e) => {
                connector.failed = Some((Instant::now(), e.to_string()));
                Err(e)
            }
        }
    }

    /// Drops connection `generation` if it is still the current one.
    fn drop_connection(&self, generation: u64, error: &RedisError) {
        let mut current = self.lock_current();
        if current.as_ref().is_some_and(|c| c.generation == generation) {
            tracing::warn!(target_redis = %self.describe(), error = %error, "Redis connection lost; reconnecting on the next command");
            *current = None;
            self.inner.epoch.fetch_add(1, Ordering::AcqRel);
        }
    }

    /// Sends `request` on the current connection; reconnects after a failure that says the
    /// connection (or the server's role) is gone, and resends once when the server refused
    /// the command without running it (`READONLY`).
    async fn run(&self, request: Request<'_>) -> Result<Reply, RedisError> {
        let mut resent = false;
        loop {
            let (generation, mut conn) = self.connection().await?;
            let result = match request {
                Request::One(cmd) => conn.req_packed_command(cmd).await.map(Reply::One),
                Request::Many(pipeline, offset, count) => conn
                    .req_packed_commands(pipeline, offset, count)
                    .await
                    .map(Reply::Many),
            };
            // A server's error reply comes back as a value (the caller turns it into an error
            // later); READONLY means nothing ran: a pipeline's first command, or the command.
            let error = match result {
                Ok(Reply::Many(values)) => match values.first() {
                    Some(Value::ServerError(e)) if e.code() == "READONLY" => {
                        RedisError::from(e.clone())
                    }
                    _ => return Ok(Reply::Many(values)),
                },
                Ok(Reply::One(Value::ServerError(e))) if e.code() == "READONLY" => {
                    RedisError::from(e)
                }
                Ok(reply) => return Ok(reply),
                Err(e) => e,
            };
            if is_read_only(&error) {
                self.drop_connection(generation, &error);
                if resent {
                    return Err(error);
                }
                resent = true;
                continue;
            }
            if error.is_io_error()
                || error.is_connection_dropped()
                || error.is_timeout()
                || error.is_unrecoverable_error()
            {
                self.drop_connection(generation, &error);
            }
            return Err(error);
        }
    }
}

#[derive(Clone, Copy)]
enum Request<'a> {
    One(&'a Cmd),
    Many(&'a Pipeline, usize, usize),
}

enum Reply {
    One(Value),
    Many(Vec<Value>),
}

fn is_read_only(e: &RedisError) -> bool {
    e.kind() == ErrorKind::Server(redis::ServerErrorKind::ReadOnly) || e.code() == Some("READONLY")
}

fn unexpected() -> RedisError {
    RedisError::from((ErrorKind::Client, "unexpected reply shape"))
}

impl ConnectionLike for Link {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        Box::pin(async move {
            let reply = self.run(Request::One(cmd)).await;
            match self.count(reply)? {
                Reply::One(value) => Ok(value),
                Reply::Many(_) => Err(unexpected()),
            }
        })
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        Box::pin(async move {
            let reply = self.run(Request::Many(pipeline, offset, count)).await;
            match self.count(reply)? {
                Reply::Many(values) => Ok(values),
                Reply::One(_) => Err(unexpected()),
            }
        })
    }

    fn get_db(&self) -> i64 {
        match &self.inner.target {
            Target::Sentinel { db, .. } => *db,
            Target::Url(_) => 0,
        }
    }
}

/// How many replicas must hold a write before it is acknowledged, and how long to wait.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Acks {
    pub replicas: u32,
    pub timeout: Duration,
}

impl Acks {
    pub const NONE: Acks = Acks {
        replicas: 0,
        timeout: Duration::from_millis(0),
    };
}

/// The message of a mutation whose replicas did not acknowledge it in time.
pub const NOT_REPLICATED: &str = "not acknowledged by enough Redis replicas";

/// A mutation connection: every command is followed, in the same round trip, by a fence (an
/// `INCR` of `fence`) and `WAIT replicas timeout`, and fails unless enough replicas acknowledged
/// it.
///
/// The fence is a write, so the `WAIT` covers everything the primary holds at that moment even
/// when the command itself wrote nothing (a retry that finds its first attempt's work done, a
/// refusal that read state another caller wrote but is not yet replicated): Redis 7.2 and later
/// advance a connection's replication offset only on writes it propagates.
///
/// `WAIT` blocks its connection on the server until it returns, so a `Durable` must run on a
/// link of its own (see [`Link::separate`]), never on the one that serves reads.
pub struct Durable {
    pub link: Link,
    pub acks: Acks,
    pub fence: String,
}

impl ConnectionLike for Durable {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        Box::pin(async move {
            if self.acks.replicas == 0 {
                return self.link.req_packed_command(cmd).await;
            }
            let mut pipe = redis::pipe();
            pipe.add_command(cmd.clone())
                .cmd("INCR")
                .arg(&self.fence)
                .cmd("WAIT")
                .arg(self.acks.replicas)
                .arg(u64::try_from(self.acks.timeout.as_millis()).unwrap_or(u64::MAX));
            let mut values = self.link.req_packed_commands(&pipe, 0, 3).await?;
            let waited = values.pop();
            let _fence = values.pop();
            let value = values.pop().unwrap_or(Value::Nil).extract_error()?;
            let acked = match waited {
                Some(Value::Int(n)) => n,
                Some(Value::ServerError(e)) => return Err(e.into()),
                _ => 0,
            };
            if acked < i64::from(self.acks.replicas) {
                Counters::bump(&self.link.counters.replica_ack_timeouts);
                Counters::bump(&self.link.counters.redis_errors);
                return Err(RedisError::from((
                    ErrorKind::Io,
                    NOT_REPLICATED,
                    format!(
                        "{acked} of {} replica(s) acknowledged the write within {} ms",
                        self.acks.replicas,
                        self.acks.timeout.as_millis()
                    ),
                )));
            }
            Ok(value)
        })
    }

    /// Mutations are single commands (one script each); a pipeline has no single reply to
    /// fence and wait after, so it is refused rather than acknowledged without waiting.
    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        Box::pin(async move {
            if self.acks.replicas == 0 {
                return self.link.req_packed_commands(pipeline, offset, count).await;
            }
            Err(RedisError::from((
                ErrorKind::Client,
                "pipelines are not supported on a mutation connection",
            )))
        })
    }

    fn get_db(&self) -> i64 {
        self.link.get_db()
    }
}

/// How many replicas the server at `link` has connected now (`INFO replication`), for the
/// automatic `--min-replica-acks`.
pub async fn connected_replicas(link: &mut Link) -> Result<u32, RedisError> {
    let info: String = redis::cmd("INFO")
        .arg("replication")
        .query_async(link)
        .await?;
    Ok(info
        .lines()
        .find_map(|l| l.trim_end().strip_prefix("connected_slaves:"))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_passwords() {
        assert_eq!(redact("redis://u:secret@h:1/0"), "redis://***@h:1/0");
        assert_eq!(redact("redis://h:1"), "redis://h:1");
        assert_eq!(redact("h:1"), "h:1");
    }

    #[test]
    fn sentinel_needs_a_master_name() {
        let target = Target::Sentinel {
            sentinels: vec!["127.0.0.1:26379".into()],
            master: String::new(),
            username: None,
            password: None,
            db: 0,
        };
        assert!(target.check().unwrap_err().contains("--redis-master-name"));
    }
}
