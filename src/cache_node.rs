//! A minimal cache node the official Momento SDKs can talk to: the cache service's Get, Set and
//! Delete on an in-memory map, and the pub/sub service's Publish and Subscribe, every call
//! checked by a linked [`Verifier`] (see `examples/cache_node` and the README's quick start).
//!
//! It exists to show, and to test with real clients, the loop authcell is for: an SDK mints a
//! scoped token, uses it here, and is refused the moment the token is revoked. It is not a
//! cache: no eviction beyond expiry, no persistence, one process.
//!
//! Checks, per call (the resource comes from what the SDKs send):
//! - Get: `CacheRead`; Set and Delete: `CacheWrite`; on the cache named by the `cache` metadata
//!   header and the request's key;
//! - Publish: `TopicPublish`; Subscribe: `TopicSubscribe`; on the request's cache and topic;
//! - the credential is the `authorization` header (what the SDKs send: the key or the token
//!   inside a disposable token's envelope).
//!
//! Statuses, as the SDKs map them: a missing, malformed, expired or revoked credential (or one
//! whose role is gone) is UNAUTHENTICATED (the SDK's authentication error); a credential that
//! does not cover the cache, key or topic, or whose ip_filter refuses the caller, is
//! PERMISSION_DENIED (permission error); a node whose revocation view is not loaded or is stale
//! under the deny policy answers UNAVAILABLE. Every other RPC of those services is
//! UNIMPLEMENTED (the generated servers answer so). A subscription is checked again before each
//! message and heartbeat it delivers: revoking its credential ends it with UNAUTHENTICATED.

use std::collections::HashMap;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tokio::sync::{broadcast, mpsc};
use tonic::{Request, Response, Status};

use crate::policy::{Action, Resource};
use crate::proto::cache_node::cache_client::pubsub::{
    self as pb_pubsub, pubsub_server, subscription_item, SubscriptionItem,
};
use crate::proto::cache_node::cache_client::{self as pb, scs_server, ECacheResult};
use crate::proto::cache_node::common::Empty;
use crate::verifier::{Reason, Verifier};

pub use pb_pubsub::pubsub_server::PubsubServer;
pub use scs_server::ScsServer;

/// Most items the map holds; a Set beyond it is RESOURCE_EXHAUSTED.
pub const MAX_ITEMS: usize = 100_000;
/// Most bytes of keys and values the map holds (a Set beyond it, after expired items are
/// dropped, is RESOURCE_EXHAUSTED).
pub const MAX_BYTES: usize = 256 * 1024 * 1024;
/// Most topics at once; a topic nobody subscribes to is dropped to make room.
pub const MAX_TOPICS: usize = 10_000;
/// Messages a slow subscriber may fall behind by before it skips (and is told so).
const TOPIC_BACKLOG: usize = 64;
/// Largest key, bytes.
pub const MAX_KEY_BYTES: usize = 1024;
/// Largest value, bytes.
pub const MAX_VALUE_BYTES: usize = 1024 * 1024;
/// How often an idle subscription gets a heartbeat (and its credential is checked again).
pub const HEARTBEAT: Duration = Duration::from_secs(1);

/// (cache, key) -> (value, expiry), and the bytes of keys and values held.
#[derive(Default)]
struct Items {
    map: HashMap<(String, Vec<u8>), (Vec<u8>, Instant)>,
    bytes: usize,
}

impl Items {
    fn size(cache: &str, key: &[u8], value: &[u8]) -> usize {
        cache.len() + key.len() + value.len()
    }

    fn remove(&mut self, cache: String, key: Vec<u8>) {
        if let Some((value, _)) = self.map.remove(&(cache.clone(), key.clone())) {
            self.bytes -= Items::size(&cache, &key, &value);
        }
    }

    /// Whether an item of `size` bytes at (cache, key) fits, counting the one it replaces.
    fn fits(&self, cache: &str, key: &[u8], size: usize) -> bool {
        let replaced = self
            .map
            .get(&(cache.to_owned(), key.to_vec()))
            .map(|(value, _)| Items::size(cache, key, value));
        let count = self.map.len() - usize::from(replaced.is_some());
        count < MAX_ITEMS && self.bytes - replaced.unwrap_or(0) + size <= MAX_BYTES
    }

    fn drop_expired(&mut self, now: Instant) {
        let mut freed = 0;
        self.map.retain(|(cache, key), (value, at)| {
            let keep = *at > now;
            if !keep {
                freed += Items::size(cache, key, value);
            }
            keep
        });
        self.bytes -= freed;
    }
}

/// A topic: its channel of (sequence number, value), and its last sequence number.
type Topic = (broadcast::Sender<(u64, pb_pubsub::TopicValue)>, u64);

/// The node: its verifier, its items, its topics.
pub struct CacheNode {
    verifier: Verifier,
    items: Mutex<Items>,
    /// (cache, topic) -> the topic
    topics: Mutex<HashMap<(String, String), Topic>>,
}

/// The service implementations share one node.
pub type Shared = std::sync::Arc<CacheNode>;

impl CacheNode {
    pub fn new(verifier: Verifier) -> Shared {
        std::sync::Arc::new(CacheNode {
            verifier,
            items: Mutex::new(Items::default()),
            topics: Mutex::new(HashMap::new()),
        })
    }

    /// The cache a call names (its `cache` header), once the call's credential may do
    /// `action` on `key` there.
    fn admit<T>(&self, request: &Request<T>, key: &[u8], action: Action) -> Result<String, Status> {
        let (token, cache) = (credential(request)?, cache_header(request)?);
        checked_key(key)?;
        let resource = Resource {
            cache: Some(&cache),
            key: Some(key),
            ..Resource::default()
        };
        self.check(&token, action, &resource, peer(request))?;
        Ok(cache)
    }

    /// Checks the call's credential for `action` on `resource`.
    fn check(
        &self,
        credential: &str,
        action: Action,
        resource: &Resource<'_>,
        peer: Option<IpAddr>,
    ) -> Result<(), Status> {
        match self
            .verifier
            .check(credential, action, resource, peer)
            .outcome
        {
            Ok(()) => Ok(()),
            Err((reason, message)) => Err(status_for(reason, message)),
        }
    }
}

/// The status an SDK maps to the right error for a refusal.
pub fn status_for(reason: Reason, message: String) -> Status {
    match reason {
        Reason::Unauthenticated
        | Reason::Expired
        | Reason::Revoked
        | Reason::RoleNotFound
        | Reason::NotYetValid => Status::unauthenticated(message),
        Reason::Permission | Reason::IpNotAllowed => Status::permission_denied(message),
        Reason::Unavailable | Reason::Stale => Status::unavailable(message),
    }
}

fn credential<T>(request: &Request<T>) -> Result<String, Status> {
    request
        .metadata()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
        .ok_or_else(|| Status::unauthenticated("authorization: a credential is required"))
}

fn cache_header<T>(request: &Request<T>) -> Result<String, Status> {
    request
        .metadata()
        .get("cache")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
        .ok_or_else(|| Status::invalid_argument("cache: the cache name header is required"))
}

fn peer<T>(request: &Request<T>) -> Option<IpAddr> {
    request.remote_addr().map(|a| a.ip())
}

fn checked_key(key: &[u8]) -> Result<(), Status> {
    if key.is_empty() || key.len() > MAX_KEY_BYTES {
        return Err(Status::invalid_argument(format!(
            "cache_key: 1 to {MAX_KEY_BYTES} bytes"
        )));
    }
    Ok(())
}

/// The cache service of one node.
pub struct Cache(pub Shared);

#[tonic::async_trait]
impl scs_server::Scs for Cache {
    async fn get(
        &self,
        request: Request<pb::GetRequest>,
    ) -> Result<Response<pb::GetResponse>, Status> {
        let cache = self
            .0
            .admit(&request, &request.get_ref().cache_key, Action::CacheRead)?;
        let key = request.into_inner().cache_key;
        let now = Instant::now();
        let items = self.0.items.lock().unwrap_or_else(|e| e.into_inner());
        let hit = items
            .map
            .get(&(cache, key))
            .filter(|(_, expiry)| *expiry > now)
            .map(|(value, _)| value.clone());
        Ok(Response::new(match hit {
            Some(value) => pb::GetResponse {
                result: ECacheResult::Hit as i32,
                cache_body: value,
                message: String::new(),
            },
            None => pb::GetResponse {
                result: ECacheResult::Miss as i32,
                ..Default::default()
            },
        }))
    }

    async fn set(
        &self,
        request: Request<pb::SetRequest>,
    ) -> Result<Response<pb::SetResponse>, Status> {
        {
            let set = request.get_ref();
            if set.cache_body.len() > MAX_VALUE_BYTES {
                return Err(Status::invalid_argument(format!(
                    "cache_body: at most {MAX_VALUE_BYTES} bytes"
                )));
            }
            if set.ttl_milliseconds == 0 {
                return Err(Status::invalid_argument(
                    "ttl_milliseconds: must be positive",
                ));
            }
        }
        let cache = self
            .0
            .admit(&request, &request.get_ref().cache_key, Action::CacheWrite)?;
        let set = request.into_inner();
        let now = Instant::now();
        let expiry = now + Duration::from_millis(set.ttl_milliseconds.min(u64::from(u32::MAX)));
        let mut items = self.0.items.lock().unwrap_or_else(|e| e.into_inner());
        let size = Items::size(&cache, &set.cache_key, &set.cache_body);
        // Refused at capacity, a Set changes nothing (the item it would replace stays).
        if !items.fits(&cache, &set.cache_key, size) {
            items.drop_expired(now);
            if !items.fits(&cache, &set.cache_key, size) {
                return Err(Status::resource_exhausted(format!(
                    "this example node holds at most {MAX_ITEMS} items and {MAX_BYTES} bytes"
                )));
            }
        }
        items.remove(cache.clone(), set.cache_key.clone());
        items.bytes += size;
        items
            .map
            .insert((cache, set.cache_key), (set.cache_body, expiry));
        Ok(Response::new(pb::SetResponse {
            result: ECacheResult::Ok as i32,
            message: String::new(),
        }))
    }

    async fn delete(
        &self,
        request: Request<pb::DeleteRequest>,
    ) -> Result<Response<pb::DeleteResponse>, Status> {
        let cache = self
            .0
            .admit(&request, &request.get_ref().cache_key, Action::CacheWrite)?;
        let key = request.into_inner().cache_key;
        self.0
            .items
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(cache, key);
        Ok(Response::new(pb::DeleteResponse {}))
    }
}

/// The pub/sub service of one node.
pub struct Topics(pub Shared);

type ItemStream =
    Pin<Box<dyn tokio_stream::Stream<Item = Result<SubscriptionItem, Status>> + Send + 'static>>;

fn topic_resource<'a>(cache: &'a str, topic: &'a str) -> Resource<'a> {
    Resource {
        cache: Some(cache),
        topic: Some(topic),
        ..Resource::default()
    }
}

fn checked_names(cache: &str, topic: &str) -> Result<(), Status> {
    if cache.is_empty() {
        return Err(Status::invalid_argument("cache_name: required"));
    }
    if topic.is_empty() {
        return Err(Status::invalid_argument("topic: required"));
    }
    Ok(())
}

/// The topic, made if new; at [`MAX_TOPICS`], topics nobody subscribes to are dropped first.
fn topic_entry(
    topics: &mut HashMap<(String, String), Topic>,
    cache: String,
    topic: String,
) -> Result<&mut Topic, Status> {
    let key = (cache, topic);
    if !topics.contains_key(&key) && topics.len() >= MAX_TOPICS {
        topics.retain(|_, (sender, _)| sender.receiver_count() > 0);
        if topics.len() >= MAX_TOPICS {
            return Err(Status::resource_exhausted(format!(
                "this example node holds at most {MAX_TOPICS} topics"
            )));
        }
    }
    Ok(topics
        .entry(key)
        .or_insert_with(|| (broadcast::channel(TOPIC_BACKLOG).0, 0)))
}

#[tonic::async_trait]
impl pubsub_server::Pubsub for Topics {
    async fn publish(
        &self,
        request: Request<pb_pubsub::PublishRequest>,
    ) -> Result<Response<Empty>, Status> {
        let (token, peer) = (credential(&request)?, peer(&request));
        let publish = request.into_inner();
        checked_names(&publish.cache_name, &publish.topic)?;
        let value = publish
            .value
            .ok_or_else(|| Status::invalid_argument("value: required"))?;
        let size = match &value.kind {
            Some(pb_pubsub::topic_value::Kind::Text(text)) => text.len(),
            Some(pb_pubsub::topic_value::Kind::Binary(bytes)) => bytes.len(),
            None => return Err(Status::invalid_argument("value: text or binary required")),
        };
        if size > MAX_VALUE_BYTES {
            return Err(Status::invalid_argument(format!(
                "value: at most {MAX_VALUE_BYTES} bytes"
            )));
        }
        self.0.check(
            &token,
            Action::TopicPublish,
            &topic_resource(&publish.cache_name, &publish.topic),
            peer,
        )?;
        let mut topics = self.0.topics.lock().unwrap_or_else(|e| e.into_inner());
        let (sender, last) = topic_entry(&mut topics, publish.cache_name, publish.topic)?;
        *last += 1;
        // No subscriber: the message is simply not delivered (as in Momento).
        let _ = sender.send((*last, value));
        Ok(Response::new(Empty {}))
    }

    type SubscribeStream = ItemStream;

    async fn subscribe(
        &self,
        request: Request<pb_pubsub::SubscriptionRequest>,
    ) -> Result<Response<Self::SubscribeStream>, Status> {
        let (token, peer) = (credential(&request)?, peer(&request));
        let subscription = request.into_inner();
        let (cache, topic) = (subscription.cache_name, subscription.topic);
        checked_names(&cache, &topic)?;
        self.0.check(
            &token,
            Action::TopicSubscribe,
            &topic_resource(&cache, &topic),
            peer,
        )?;
        let mut receiver = {
            let mut topics = self.0.topics.lock().unwrap_or_else(|e| e.into_inner());
            topic_entry(&mut topics, cache.clone(), topic.clone())?
                .0
                .subscribe()
        };
        let (tx, rx) = mpsc::channel(16);
        let node = self.0.clone();
        tokio::spawn(async move {
            let heartbeat = SubscriptionItem {
                kind: Some(subscription_item::Kind::Heartbeat(pb_pubsub::Heartbeat {})),
            };
            if tx.send(Ok(heartbeat.clone())).await.is_err() {
                return;
            }
            // The last sequence number delivered: a gap (the subscriber fell behind) is told as
            // a discontinuity, as Momento does.
            let mut delivered: Option<u64> = None;
            loop {
                let next = tokio::time::timeout(HEARTBEAT, receiver.recv()).await;
                // Checked again before anything is delivered: a revoked credential ends it.
                if let Err(status) = node.check(
                    &token,
                    Action::TopicSubscribe,
                    &topic_resource(&cache, &topic),
                    peer,
                ) {
                    let _ = tx.send(Err(status)).await;
                    return;
                }
                let item = match next {
                    Err(_) => heartbeat.clone(),
                    Ok(Ok((sequence, value))) => {
                        if let Some(last) = delivered.filter(|last| sequence > last + 1) {
                            let gap = SubscriptionItem {
                                kind: Some(subscription_item::Kind::Discontinuity(
                                    pb_pubsub::Discontinuity {
                                        last_topic_sequence: last,
                                        new_topic_sequence: sequence,
                                        new_sequence_page: 0,
                                    },
                                )),
                            };
                            if tx.send(Ok(gap)).await.is_err() {
                                return;
                            }
                        }
                        delivered = Some(sequence);
                        SubscriptionItem {
                            kind: Some(subscription_item::Kind::Item(pb_pubsub::TopicItem {
                                topic_sequence_number: sequence,
                                value: Some(value),
                                publisher_id: String::new(),
                                sequence_page: 0,
                            })),
                        }
                    }
                    Ok(Err(broadcast::error::RecvError::Lagged(_))) => continue,
                    Ok(Err(broadcast::error::RecvError::Closed)) => return,
                };
                if tx.send(Ok(item)).await.is_err() {
                    return;
                }
            }
        });
        Ok(Response::new(Box::pin(
            tokio_stream::wrappers::ReceiverStream::new(rx),
        )))
    }
}

/// Serves the node's cache and pub/sub services on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: tokio::net::TcpListener,
    node: Shared,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), tonic::transport::Error> {
    let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
    tonic::transport::Server::builder()
        .add_service(ScsServer::new(Cache(node.clone())))
        .add_service(PubsubServer::new(Topics(node)))
        .serve_with_incoming_shutdown(incoming, shutdown)
        .await
}
