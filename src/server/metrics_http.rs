//! The metrics endpoint: `GET /metrics` over HTTP/1.1 (`--metrics-listen`).

use std::future::Future;
use std::sync::Arc;

use crate::metrics::Metrics;

/// Serves `GET /metrics` (HTTP/1.1) on `listener` until `shutdown` resolves.
pub async fn serve_metrics(
    listener: tokio::net::TcpListener,
    metrics: Arc<Metrics>,
    shutdown: impl Future<Output = ()>,
) {
    use http_body_util::Full;
    use hyper::body::Bytes;
    tokio::pin!(shutdown);
    // Out of descriptors, accept fails again at once: wait instead of spinning.
    let mut backoff = super::accept::Backoff::default();
    loop {
        let (stream, _) = tokio::select! {
            accepted = super::accept::accept("metrics", &listener, &mut backoff) => accepted,
            _ = &mut shutdown => return,
        };
        let metrics = metrics.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(
                move |request: hyper::Request<hyper::body::Incoming>| {
                    let metrics = metrics.clone();
                    async move {
                        let response = if request.uri().path() == "/metrics" {
                            hyper::Response::builder()
                                .header(
                                    "content-type",
                                    "application/openmetrics-text; version=1.0.0; charset=utf-8",
                                )
                                .body(Full::new(Bytes::from(metrics.render_fresh().await)))
                        } else {
                            hyper::Response::builder()
                                .status(404)
                                .body(Full::new(Bytes::from_static(b"not found: try /metrics\n")))
                        };
                        response
                    }
                },
            );
            let io = hyper_util::rt::TokioIo::new(stream);
            if let Err(e) = hyper::server::conn::http1::Builder::new()
                .serve_connection(io, service)
                .await
            {
                tracing::debug!(error = %e, "metrics connection ended with an error");
            }
        });
    }
}
