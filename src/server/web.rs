//! Browsers: gRPC-Web on the same listener as gRPC, and the CORS an operator configures.
//!
//! A browser can only send gRPC-Web (HTTP/1.1 or HTTP/2 `POST`s with `application/grpc-web*`
//! bodies, no trailers). [`tonic_web`] translates those into gRPC for the services and back;
//! [`tower_http::cors`] answers the browser's CORS preflight for the origins the operator
//! allows (`--cors-allowed-origin`, repeatable; none by default, so no page can call the
//! server until an operator says which may).
//!
//! What a browser may call: `token.Token` (a backend hands a page a disposable token, or the
//! page mints one with its SDK key) and `auth.Auth` (a page refreshes its SDK key), the two
//! services the official web SDK (`@gomomento/sdk-web`) uses for credentials. Every other
//! service answers a call from a browser (gRPC-Web, or any call with an `Origin` header) with
//! UNIMPLEMENTED ([`BrowserGate`]), and CORS allows origins for the browser services' paths
//! only, so no page can read another service's answer: administration
//! belongs to operators' tools, and the Verifier is for data-plane nodes (under mTLS it
//! requires their client certificate, which a browser does not have).
//!
//! CORS, as the web SDK needs it: `POST` only; the request headers grpc-web and the SDKs send
//! (`content-type`, `x-grpc-web`, `x-user-agent`, `grpc-timeout`, `agent`, `runtime-version`,
//! `authorization`, ...); the response headers a gRPC-Web client reads (`grpc-status`,
//! `grpc-message`, `retry-after`). Credentials mode is never allowed (`Allow-Credentials` is
//! not sent: nothing here uses cookies), and a wildcard origin is refused: origins are listed.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use http::header::{HeaderName, HeaderValue, CONTENT_TYPE};
use tower_http::cors::{AllowOrigin, CorsLayer};

/// The services a browser may call over gRPC-Web, by path prefix.
pub const BROWSER_SERVICES: [&str; 2] = ["/token.Token/", "/auth.Auth/"];

/// How long a browser may cache a preflight answer.
const PREFLIGHT_MAX_AGE: Duration = Duration::from_secs(600);

/// Request headers a gRPC-Web call from the official web SDK (or grpc-web itself) carries.
const ALLOWED_HEADERS: [&str; 11] = [
    "content-type",
    "x-grpc-web",
    "x-user-agent",
    "grpc-timeout",
    "grpc-accept-encoding",
    "agent",
    "runtime-version",
    "authorization",
    "cache",
    "read-concern",
    "idempotency-key",
];

/// Response headers a gRPC-Web client reads.
const EXPOSED_HEADERS: [&str; 4] = [
    "grpc-status",
    "grpc-message",
    "grpc-status-details-bin",
    "retry-after",
];

/// Parses one `--cors-allowed-origin`: `scheme://host[:port]`, exactly as a browser sends it in
/// `Origin` (no path, no trailing slash, no wildcard).
pub fn parse_origin(text: &str) -> Result<HeaderValue, String> {
    let rule = "an origin is scheme://host[:port], as browsers send it (https://app.example.com)";
    if text == "*" || text.contains('*') {
        return Err(format!(
            "{text:?}: wildcard origins are refused: list each origin that may call ({rule})"
        ));
    }
    let Some((scheme, rest)) = text.split_once("://") else {
        return Err(format!("{text:?}: {rule}"));
    };
    let host_ok = !rest.is_empty()
        && !rest.contains(['/', '?', '#', '@', ' '])
        && rest
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'));
    if !matches!(scheme, "http" | "https") || !host_ok {
        return Err(format!("{text:?}: {rule}"));
    }
    // Browsers send the host in lower case and leave out a default port: an origin written
    // otherwise would never match.
    if rest.chars().any(|c| c.is_ascii_uppercase()) {
        return Err(format!(
            "{text:?}: write the origin in lower case, as browsers send it"
        ));
    }
    let default_port = if scheme == "https" { ":443" } else { ":80" };
    if rest.ends_with(default_port) {
        return Err(format!(
            "{text:?}: leave out the default port {default_port}, as browsers do"
        ));
    }
    HeaderValue::from_str(text).map_err(|_| format!("{text:?}: {rule}"))
}

/// The CORS layer for `origins` (none: every preflight is answered without an allowed origin,
/// so browsers refuse to send the call).
pub fn cors(origins: &[HeaderValue]) -> CorsLayer {
    let names = |list: &[&'static str]| -> Vec<HeaderName> {
        list.iter().map(|h| HeaderName::from_static(h)).collect()
    };
    let origins = origins.to_vec();
    CorsLayer::new()
        // An origin is allowed only for the browser services: a page (or a script injected into
        // one) never gets to read an answer from any other service.
        .allow_origin(AllowOrigin::predicate(
            move |origin: &HeaderValue, request: &http::request::Parts| {
                origins.contains(origin) && is_browser_path(request.uri.path())
            },
        ))
        .allow_methods([http::Method::POST])
        .allow_headers(names(&ALLOWED_HEADERS))
        .expose_headers(names(&EXPOSED_HEADERS))
        .max_age(PREFLIGHT_MAX_AGE)
}

fn is_browser_path(path: &str) -> bool {
    BROWSER_SERVICES.iter().any(|p| path.starts_with(p))
}

/// A call a browser made: gRPC-Web (whatever the case or parameters of its content type), or
/// anything that carries an `Origin` header (browsers send one on every cross-origin call;
/// gRPC clients never do). Over HTTP/2 a page could otherwise send plain `application/grpc`.
fn from_browser(request: &http::Request<impl Sized>) -> bool {
    is_grpc_web(request) || request.headers().contains_key(http::header::ORIGIN)
}

/// A gRPC-Web content type, whatever its case or parameters.
fn is_grpc_web(request: &http::Request<impl Sized>) -> bool {
    request
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.to_ascii_lowercase().starts_with("application/grpc-web"))
}

/// Answers calls from browsers (gRPC-Web, or with an `Origin` header) to services that are not
/// for browsers with UNIMPLEMENTED (a trailers-only response); passes everything else on.
#[derive(Clone, Copy, Default)]
pub struct BrowserGate;

impl<S> tower_layer::Layer<S> for BrowserGate {
    type Service = BrowserGateService<S>;
    fn layer(&self, inner: S) -> Self::Service {
        BrowserGateService { inner }
    }
}

#[derive(Clone)]
pub struct BrowserGateService<S> {
    inner: S,
}

impl<S, B, RB> tower_service::Service<http::Request<B>> for BrowserGateService<S>
where
    S: tower_service::Service<http::Request<B>, Response = http::Response<RB>>,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    RB: Default + Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        if !from_browser(&request) || is_browser_path(request.uri().path()) {
            return Box::pin(self.inner.call(request));
        }
        let content_type = HeaderValue::from_static(if is_grpc_web(&request) {
            "application/grpc-web+proto"
        } else {
            "application/grpc"
        });
        let mut response = http::Response::new(RB::default());
        let headers = response.headers_mut();
        headers.insert(CONTENT_TYPE, content_type);
        headers.insert("grpc-status", HeaderValue::from_static("12"));
        headers.insert(
            "grpc-message",
            HeaderValue::from_static(
                "not served over gRPC-Web: browsers may call token.Token and auth.Auth only",
            ),
        );
        Box::pin(std::future::ready(Ok(response)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_are_exact_and_listed() {
        assert!(parse_origin("https://app.example.com").is_ok());
        assert!(parse_origin("http://127.0.0.1:5173").is_ok());
        assert!(parse_origin("http://[::1]:8080").is_ok());
        for bad in [
            "*",
            "https://*.example.com",
            "app.example.com",
            "https://app.example.com/",
            "https://app.example.com/path",
            "ftp://x",
            "https://",
            "https://user@host",
            "https://App.example.com",
            "https://app.example.com:443",
            "http://app.example.com:80",
        ] {
            assert!(parse_origin(bad).is_err(), "{bad} accepted");
        }
    }
}
