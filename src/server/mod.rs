//! The gRPC server: one [`run`] entry point used by the binary and the tests alike.
//!
//! Handlers (one module per protobuf service) convert protobuf to domain types, call the
//! [`Authority`](crate::authority::Authority), and convert back. Errors become gRPC statuses in exactly one place,
//! `status.rs`.

pub mod accept;
mod admin;
mod auth;
mod caller;
mod global_admin;
mod health;
mod keys;
mod metrics_http;
mod requests;
mod status;
pub mod tls;
mod token;
pub(crate) mod verifier;
pub mod web;

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tonic_health::ServingStatus;

use tokio::net::TcpListener;
use tonic::transport::Server;

use crate::metrics::MetricsLayer;
use crate::node::Node;
use crate::proto;
use std::pin::Pin;
use tls::ServerTls;

pub(crate) use caller::{body_or_metadata_credential, caller, peer_ip};
use health::{set_all, watch_health};
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
    /// Origins whose pages may call the browser services over gRPC-Web (see [`web`]); none
    /// by default.
    pub cors_origins: Vec<http::HeaderValue>,
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
    let Serving {
        drain,
        tls,
        cors_origins,
    } = serving;
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

    // Layers added first are outermost: CORS answers preflights, the gate keeps gRPC-Web to the
    // browser services, gRPC-Web is translated, then every call is counted as gRPC.
    let router = Server::builder()
        .http2_max_header_list_size(MAX_HEADER_LIST_BYTES)
        .accept_http1(true)
        .layer(web::cors(&cors_origins))
        .layer(web::BrowserGate)
        .layer(tonic_web::GrpcWebLayer::new())
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

/// Reflection is a convenience for operators; a descriptor problem must not stop the server.
fn panic_free_reflection_error(e: &tonic_reflection::server::Error) {
    tracing::error!(error = %e, "server reflection disabled: bad file descriptor set");
}
