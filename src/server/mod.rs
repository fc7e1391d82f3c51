//! The gRPC server: one [`run`] entry point used by the binary and the tests alike.
//!
//! Handlers (one module per protobuf service) convert protobuf to domain types, call the
//! [`Authority`], and convert back. Errors become gRPC statuses in exactly one place,
//! `status.rs`.

pub mod accept;
mod admin;
mod auth;
mod global_admin;
mod keys;
mod metrics_http;
mod requests;
mod status;
pub mod tls;
mod token;
pub(crate) mod verifier;

use std::future::Future;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tonic_health::ServingStatus;

use tokio::net::TcpListener;
use tonic::transport::Server;

use crate::authority::{Authority, Caller};
use crate::metrics::MetricsLayer;
use crate::node::Node;
use crate::proto;
use std::pin::Pin;
use tls::ServerTls;

pub use metrics_http::serve_metrics;
pub use status::to_status;

/// Largest request message accepted, in bytes; larger ones are refused before decoding.
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024;
/// Largest Verifier request (a BatchAuthorize of up to 1000 checks), in bytes.
pub const MAX_BATCH_BYTES: usize = 8 * 1024 * 1024;
/// Largest header block accepted (the credential travels in `authorization`).
pub const MAX_HEADER_LIST_BYTES: u32 = 32 * 1024;

/// How a server stops.
#[derive(Clone, Copy, Debug, Default)]
pub struct Drain {
    /// After the shutdown signal, how long health reports NOT_SERVING while calls are still
    /// served, so load balancers and probes stop sending traffic first.
    pub delay: Duration,
    /// Then, how long in-flight calls may take to finish before the server returns anyway
    /// (zero: wait for them).
    pub timeout: Duration,
}

/// How [`run`] serves. The default: no drain delay, plaintext.
#[derive(Default)]
pub struct Serving {
    pub drain: Drain,
    /// TLS (mTLS on the Verifier service when it is mutual); `None`: plaintext.
    pub tls: Option<ServerTls>,
}

/// Serves every authcell service on `listener` until `shutdown` resolves; in-flight calls
/// finish before it returns (within `serving.drain`). The one entry point: the binary and the
/// tests start servers the same way: build a [`Node`], then `run(listener, &node, ..)`.
pub async fn run(
    listener: TcpListener,
    node: &Node,
    serving: Serving,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), tonic::transport::Error> {
    let Serving { drain, tls } = serving;
    let authority = node.authority().clone();
    let metrics = node.metrics().clone();
    let client_cert_required = tls.as_ref().is_some_and(|t| t.mutual);
    let (health_reporter, health_service) = tonic_health::server::health_reporter();
    health_reporter
        .set_serving::<proto::token::token_server::TokenServer<token::TokenService>>()
        .await;
    health_reporter
        .set_serving::<proto::auth::auth_server::AuthServer<auth::AuthService>>()
        .await;
    health_reporter
        .set_serving::<proto::global_admin::global_admin_server::GlobalAdminServer<
            global_admin::GlobalAdminService,
        >>()
        .await;
    health_reporter
        .set_serving::<proto::authcell::v1::admin_server::AdminServer<admin::AdminService>>()
        .await;
    health_reporter
        .set_serving::<proto::authcell::v1::verifier_server::VerifierServer<verifier::VerifierService>>()
        .await;
    health_reporter
        .set_serving::<proto::authcell::v1::keys_server::KeysServer<keys::KeysService>>()
        .await;

    let reflection_v1 = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()
        .map_err(|e| panic_free_reflection_error(&e))
        .ok();
    let reflection_v1alpha = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1alpha()
        .map_err(|e| panic_free_reflection_error(&e))
        .ok();

    // Health follows the verifier: NOT_SERVING until the revocation view is loaded, and while
    // it is stale under the deny policy; and NOT_SERVING for good once draining starts.
    let draining = Arc::new(AtomicBool::new(false));
    let watcher = tokio::spawn(watch_health(
        authority.clone(),
        health_reporter.clone(),
        draining.clone(),
    ));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let (began, mut drain_began) = tokio::sync::watch::channel(false);
    let drainer = tokio::spawn(async move {
        shutdown.await;
        draining.store(true, Ordering::SeqCst);
        set_all(&health_reporter, ServingStatus::NotServing).await;
        tracing::info!(delay = ?drain.delay, "draining: health is NOT_SERVING");
        tokio::time::sleep(drain.delay).await;
        let _ = began.send(true);
        let _ = stop.send(());
    });

    let router = Server::builder()
        .http2_max_header_list_size(MAX_HEADER_LIST_BYTES)
        .layer(MetricsLayer(metrics))
        .add_service(health_service)
        .add_optional_service(reflection_v1)
        .add_optional_service(reflection_v1alpha)
        .add_service(
            proto::token::token_server::TokenServer::new(token::TokenService::new(
                authority.clone(),
            ))
            .max_decoding_message_size(MAX_MESSAGE_BYTES),
        )
        .add_service(
            proto::auth::auth_server::AuthServer::new(auth::AuthService::new(authority.clone()))
                .max_decoding_message_size(MAX_MESSAGE_BYTES),
        )
        .add_service(
            proto::global_admin::global_admin_server::GlobalAdminServer::new(
                global_admin::GlobalAdminService::new(authority.clone()),
            )
            .max_decoding_message_size(MAX_MESSAGE_BYTES),
        )
        .add_service(
            proto::authcell::v1::admin_server::AdminServer::new(admin::AdminService::new(
                authority.clone(),
            ))
            .max_decoding_message_size(MAX_MESSAGE_BYTES),
        )
        .add_service(proto::authcell::v1::keys_server::KeysServer::new(
            keys::KeysService::new(authority.clone()),
        ))
        .add_service(
            proto::authcell::v1::verifier_server::VerifierServer::new(
                verifier::VerifierService::new(authority, client_cert_required),
            )
            // A batch of up to 1000 checks carries up to 1000 credentials.
            .max_decoding_message_size(MAX_BATCH_BYTES),
        );
    let stop = async {
        let _ = stopped.await;
    };
    let served: Pin<Box<dyn Future<Output = Result<(), tonic::transport::Error>> + Send>> =
        match tls {
            None => {
                let incoming = crate::server::accept::TcpIncoming::new(listener);
                Box::pin(router.serve_with_incoming_shutdown(incoming, stop))
            }
            Some(tls) => {
                Box::pin(router.serve_with_incoming_shutdown(tls::incoming(listener, tls), stop))
            }
        };
    let bound = async {
        // Only once the server stopped accepting does the in-flight bound start.
        let _ = drain_began.wait_for(|began| *began).await;
        if drain.timeout.is_zero() {
            std::future::pending::<()>().await;
        }
        tokio::time::sleep(drain.timeout).await;
    };
    let served = tokio::select! {
        served = served => served,
        _ = bound => {
            tracing::warn!(timeout = ?drain.timeout, "in-flight calls did not finish in time; stopping anyway");
            Ok(())
        }
    };
    watcher.abort();
    drainer.abort();
    served
}

/// Every gRPC service `run` serves besides health and reflection, by its full name (from the
/// generated code, so the list cannot drift from the protos).
pub const SERVICES: [&str; 6] = [
    crate::proto::authcell::v1::verifier_server::SERVICE_NAME,
    crate::proto::authcell::v1::admin_server::SERVICE_NAME,
    crate::proto::authcell::v1::keys_server::SERVICE_NAME,
    crate::proto::token::token_server::SERVICE_NAME,
    crate::proto::auth::auth_server::SERVICE_NAME,
    crate::proto::global_admin::global_admin_server::SERVICE_NAME,
];

async fn set_all(reporter: &tonic_health::server::HealthReporter, status: ServingStatus) {
    reporter.set_service_status("", status).await;
    for service in SERVICES {
        reporter.set_service_status(service, status).await;
    }
}

async fn watch_health(
    authority: Arc<Authority>,
    reporter: tonic_health::server::HealthReporter,
    draining: Arc<AtomicBool>,
) {
    let mut last = None;
    let mut was_stale = false;
    loop {
        if draining.load(Ordering::SeqCst) {
            return;
        }
        let verifier = authority.verifier();
        // Under either policy a stale view is said out loud (under `serve`, checks go on).
        let stale = verifier.view().is_loaded() && verifier.is_stale();
        if stale != was_stale {
            let age_ms = verifier.view_age().as_millis() as u64;
            if stale {
                tracing::warn!(age_ms, policy = ?verifier.stale_policy(), "the revocation view is stale: no fresh data from the Redis primary has come through this cell's replica within --max-staleness");
            } else {
                tracing::info!(age_ms, "the revocation view is fresh again");
            }
            was_stale = stale;
        }
        let serving = verifier.is_serving();
        if last != Some(serving) {
            let status = if serving {
                ServingStatus::Serving
            } else {
                ServingStatus::NotServing
            };
            set_all(&reporter, status).await;
            if !serving {
                tracing::warn!(
                    "not serving checks: the revocation view is not loaded or too stale"
                );
            }
            last = Some(serving);
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// Reflection is a convenience for operators; a descriptor problem must not stop the server.
fn panic_free_reflection_error(e: &tonic_reflection::server::Error) {
    tracing::error!(error = %e, "server reflection disabled: bad file descriptor set");
}

/// The credential a call presents in its `authorization` metadata (`Bearer ` optional).
pub(crate) fn metadata_credential<T>(request: &tonic::Request<T>) -> &str {
    request
        .metadata()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .map(|v| v.strip_prefix("Bearer ").unwrap_or(v).trim())
        .unwrap_or("")
}

/// The credential of a vending call: the request body's `auth_token`, or the `authorization`
/// metadata when the body has none (the official SDKs differ in which they send).
pub(crate) fn body_or_metadata_credential<T>(request: &tonic::Request<T>, body: &str) -> String {
    if body.is_empty() {
        metadata_credential(request).to_owned()
    } else {
        body.to_owned()
    }
}

/// The caller's IP address, when the transport knows it.
pub(crate) fn peer_ip<T>(request: &tonic::Request<T>) -> Option<IpAddr> {
    request.remote_addr().map(|a| a.ip())
}

/// Authenticates the caller of a management RPC from its metadata.
pub(crate) fn caller<T>(
    authority: &Authority,
    request: &tonic::Request<T>,
) -> Result<Caller, tonic::Status> {
    authority
        .caller(metadata_credential(request), peer_ip(request))
        .map_err(tonic::Status::from)
}
