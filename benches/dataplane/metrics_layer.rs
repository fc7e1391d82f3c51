//! [7] The metrics layer's cost per RPC.

use super::*;

// ---------------------------------------------------------------------------------------------
// [7] The metrics layer's cost per RPC

/// A service that answers at once: what the layer wraps in this figure.
#[derive(Clone)]
pub(crate) struct Immediate;

impl tower_service::Service<http::Request<()>> for Immediate {
    type Response = http::Response<()>;
    type Error = std::convert::Infallible;
    type Future = std::future::Ready<Result<http::Response<()>, std::convert::Infallible>>;

    fn poll_ready(
        &mut self,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: http::Request<()>) -> Self::Future {
        std::future::ready(Ok(http::Response::new(())))
    }
}

pub(crate) fn figure_metrics_layer(report: &mut Report, scale: &Scale) {
    use tower_layer::Layer;
    use tower_service::Service;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let ring = KeyRing::ephemeral().expect("ring");
    let options = authcell::node::NodeOptions {
        cell: "bench".into(),
        endpoint: "localhost:0".into(),
        vend_rate_per_second: 0,
        vend_burst: 0,
        ..Default::default()
    };
    let node = authcell::node::Node::embedded(ring, Arc::new(SystemClock), &options);
    let metrics = node.metrics().clone();
    let mut bare = Immediate;
    let mut counted = authcell::metrics::MetricsLayer(metrics).layer(Immediate);
    let batch = scale.cached_batch;
    let request = || {
        http::Request::builder()
            .uri("/authcell.v1.Verifier/Authorize")
            .body(())
            .expect("request")
    };
    let mut bare_ns = Vec::new();
    let mut counted_ns = Vec::new();
    for round in 0..scale.cached_rounds {
        let mut time = |counted_run: bool| {
            let started = Instant::now();
            runtime.block_on(async {
                for _ in 0..batch {
                    let response = if counted_run {
                        counted.call(black_box(request())).await
                    } else {
                        bare.call(black_box(request())).await
                    };
                    black_box(response.is_ok());
                }
            });
            started.elapsed().as_nanos() as f64 / batch as f64
        };
        // Alternate the order each round; the first round warms up.
        let (a, b) = if round % 2 == 0 {
            let a = time(false);
            (a, time(true))
        } else {
            let b = time(true);
            (time(false), b)
        };
        if round > 0 {
            bare_ns.push(a);
            counted_ns.push(b);
        }
    }
    let bare = median(&mut bare_ns);
    let counted = median(&mut counted_ns);
    report.figure(
        "7",
        "metrics layer per RPC: a wrapped service vs the same service unwrapped",
        ("unwrapped", "with metrics"),
        &[Row::new(
            "counting + latency histogram, per call",
            ns(bare),
            ns(counted),
            counted / bare.max(f64::EPSILON),
        )],
    );
    report.note(&format!(
        "the layer adds {} per RPC; an Authorize costs ~55 us of CPU on this machine (figure 5: 2 cores / ~34k calls/s), so about {:.2}% of it",
        ns(counted - bare),
        (counted - bare) / 55_000.0 * 100.0
    ));
}
