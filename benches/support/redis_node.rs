//! What the Redis benchmarks share: a node on a Redis topology, served on loopback, and the
//! figures' arithmetic. Included with `#[path]` (each bench is its own crate).

use std::sync::Arc;
use std::time::Duration;

use authcell::authority::Authority;
use authcell::keyring::KeyRing;
use authcell::node::{self, NodeOptions, RedisSettings};
use authcell::server;
use tokio::net::TcpListener;
use tonic::transport::Channel;
use tonic::Request;

/// `message` with `key` as its `authorization` metadata.
#[allow(dead_code)] // Not every bench that includes this file uses it.
pub fn with_key<T>(message: T, key: &str) -> Request<T> {
    let mut request = Request::new(message);
    if let Ok(value) = key.parse() {
        request.metadata_mut().insert("authorization", value);
    }
    request
}

/// A node of `cell` with `settings` (vending unlimited), serving on a free loopback port once
/// its view is loaded: a channel to it, and its authority.
#[allow(dead_code)] // Not every bench that includes this file uses it.
pub async fn start(pem: &str, cell: &str, settings: &RedisSettings) -> (Channel, Arc<Authority>) {
    start_limited(pem, cell, settings, 0).await
}

/// As [`start`], with the shared vending limiter at `vend_rate` per second (burst the same).
pub async fn start_limited(
    pem: &str,
    cell: &str,
    settings: &RedisSettings,
    vend_rate: u32,
) -> (Channel, Arc<Authority>) {
    let ring = KeyRing::from_pem("bench", pem).expect("signing key");
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let options = NodeOptions {
        cell: cell.into(),
        endpoint: addr.to_string(),
        vend_rate_per_second: vend_rate,
        vend_burst: vend_rate,
        ..Default::default()
    };
    let node = node::Node::redis(ring, &options, settings)
        .await
        .expect("node");
    let authority = node.authority().clone();
    tokio::spawn(async move {
        let _ = server::run(
            listener,
            &node,
            server::Serving::default(),
            std::future::pending(),
        )
        .await;
        node.stop().await;
    });
    while !authority.verifier().is_serving() {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let channel = Channel::from_shared(format!("http://{addr}"))
        .expect("url")
        .connect()
        .await
        .expect("connect");
    (channel, authority)
}

/// The `p` quantile of sorted samples.
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
