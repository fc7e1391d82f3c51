//! gRPC-Web and CORS on the gRPC listener, over HTTP/1.1 as a browser sends them: the browser
//! services answer gRPC-Web calls, every other service refuses them, preflights succeed only
//! for the configured origins, and metrics count gRPC-Web calls like any other.

use std::net::SocketAddr;

use authcell::proto::authcell::v1 as pb;
use authcell::proto::token;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use prost::Message;
use tokio::net::TcpStream;

use crate::support::*;

const ALLOWED: &str = "http://app.localhost:5173";

/// What one HTTP/1.1 exchange returned.
struct Answer {
    status: u16,
    headers: http::HeaderMap,
    body: Bytes,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The gRPC-Web frames: the message (flag 0) and the trailers (flag 0x80), and the status
    /// from the trailers or, for a trailers-only answer, the headers.
    fn grpc(&self) -> (Option<Bytes>, String, String) {
        let mut message = None;
        let mut trailers = String::new();
        let mut rest = self.body.clone();
        while rest.len() >= 5 {
            let flag = rest[0];
            let len = u32::from_be_bytes([rest[1], rest[2], rest[3], rest[4]]) as usize;
            let frame = rest.slice(5..5 + len);
            rest = rest.slice(5 + len..);
            if flag & 0x80 != 0 {
                trailers = String::from_utf8_lossy(&frame).into_owned();
            } else {
                message = Some(frame);
            }
        }
        let from_trailers = |name: &str| {
            trailers.lines().find_map(|l| {
                l.split_once(':')
                    .filter(|(k, _)| k.trim().eq_ignore_ascii_case(name))
                    .map(|(_, v)| v.trim().to_owned())
            })
        };
        let status = from_trailers("grpc-status")
            .or_else(|| self.header("grpc-status").map(str::to_owned))
            .unwrap_or_default();
        let message_text = from_trailers("grpc-message")
            .or_else(|| self.header("grpc-message").map(str::to_owned))
            .unwrap_or_default();
        (message, status, message_text)
    }
}

async fn exchange(addr: SocketAddr, request: http::Request<Full<Bytes>>) -> Answer {
    let stream = TcpStream::connect(addr).await.expect("connect");
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .expect("http/1.1 handshake");
    tokio::spawn(connection);
    let response = sender.send_request(request).await.expect("response");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    Answer {
        status,
        headers,
        body,
    }
}

/// A gRPC-Web call (binary), from a page of `origin`.
async fn grpc_web(addr: SocketAddr, path: &str, origin: &str, message: &impl Message) -> Answer {
    let encoded = message.encode_to_vec();
    let mut framed = vec![0u8];
    framed.extend_from_slice(&(encoded.len() as u32).to_be_bytes());
    framed.extend_from_slice(&encoded);
    let request = http::Request::post(path)
        .header("host", addr.to_string())
        .header("origin", origin)
        .header("content-type", "application/grpc-web+proto")
        .header("x-grpc-web", "1")
        .header("x-user-agent", "grpc-web-javascript/0.1")
        .body(Full::new(Bytes::from(framed)))
        .expect("request");
    exchange(addr, request).await
}

async fn preflight(addr: SocketAddr, path: &str, origin: &str) -> Answer {
    let request = http::Request::options(path)
        .header("host", addr.to_string())
        .header("origin", origin)
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "content-type,x-grpc-web,x-user-agent,agent,runtime-version",
        )
        .body(Full::new(Bytes::new()))
        .expect("request");
    exchange(addr, request).await
}

fn mint_request(owner: &str) -> token::GenerateDisposableTokenRequest {
    token::GenerateDisposableTokenRequest {
        expires: Some(token::generate_disposable_token_request::Expires {
            valid_for_seconds: 600,
        }),
        auth_token: owner.into(),
        permissions: Some(explicit(vec![statements::read_cache("c")])),
        token_id: String::new(),
    }
}

#[tokio::test]
async fn a_browser_mints_a_token_over_grpc_web() {
    let server = TestServer::start_with_origins(&[ALLOWED]).await;
    let answer = grpc_web(
        server.addr,
        "/token.Token/GenerateDisposableToken",
        ALLOWED,
        &mint_request(&server.owner_key),
    )
    .await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.header("access-control-allow-origin"), Some(ALLOWED));
    assert_eq!(answer.header("access-control-allow-credentials"), None);
    assert!(answer
        .header("access-control-expose-headers")
        .is_some_and(|h| h.contains("grpc-status")));
    assert!(answer
        .header("content-type")
        .is_some_and(|ct| ct.starts_with("application/grpc-web")));
    let (message, status, text) = answer.grpc();
    assert_eq!(status, "0", "{text}");
    let minted = token::GenerateDisposableTokenResponse::decode(message.expect("a message"))
        .expect("decode");
    // The token works like any other.
    let verdict = server
        .authorize(cache_check(
            &minted.api_key,
            pb::Action::CacheRead,
            "c",
            b"k",
        ))
        .await;
    assert!(verdict.allowed, "{verdict:?}");
    // Errors come back as gRPC-Web statuses the web SDK reads.
    let mut bad = mint_request("not-a-key");
    bad.auth_token = "not-a-key".into();
    let (_, status, _) = grpc_web(
        server.addr,
        "/token.Token/GenerateDisposableToken",
        ALLOWED,
        &bad,
    )
    .await
    .grpc();
    assert_eq!(status, "16", "UNAUTHENTICATED");
    // Metrics count gRPC-Web calls as the gRPC calls they become.
    let text = server.served.node().metrics().render();
    for line in [
        r#"authcell_grpc_server_handled_total{grpc_method="token.Token/GenerateDisposableToken",grpc_code="OK"} 1"#,
        r#"authcell_grpc_server_handled_total{grpc_method="token.Token/GenerateDisposableToken",grpc_code="UNAUTHENTICATED"} 1"#,
    ] {
        assert!(text.contains(line), "{line} in {text}");
    }
}

/// A page refreshes its SDK key over gRPC-Web; the audit log records it like any refresh.
#[tokio::test]
async fn a_browser_refreshes_its_sdk_key_over_grpc_web() {
    use authcell::proto::auth;
    let server = TestServer::start_with_origins(&[ALLOWED]).await;
    let made = crate::support::api::Api::of_server(&server)
        .await
        .sdk_key(
            &server.owner_key,
            vec![statements::read_cache("c")],
            Some(3600),
        )
        .await
        .expect("sdk key");
    let answer = grpc_web(
        server.addr,
        "/auth.Auth/RefreshApiToken",
        ALLOWED,
        &auth::RefreshApiTokenRequest {
            api_key: made.api_key.clone(),
            refresh_token: made.refresh_token.clone(),
        },
    )
    .await;
    let (message, status, text) = answer.grpc();
    assert_eq!(status, "0", "{text}");
    let refreshed =
        auth::RefreshApiTokenResponse::decode(message.expect("a message")).expect("decode");
    assert!(
        server
            .authorize(cache_check(
                &refreshed.api_key,
                pb::Action::CacheRead,
                "c",
                b"k"
            ))
            .await
            .allowed
    );
    let events = pb::admin_client::AdminClient::new(server.channel().await)
        .list_audit_events(with_key(
            pb::ListAuditEventsRequest {
                limit: 10,
                ..Default::default()
            },
            &server.owner_key,
        ))
        .await
        .expect("audit")
        .into_inner()
        .events;
    let event = events
        .iter()
        .find(|e| e.action == "key.refreshed")
        .expect("the refresh is audited");
    assert_eq!(event.peer_address, "127.0.0.1", "{event:?}");
}

#[tokio::test]
async fn only_the_browser_services_answer_grpc_web() {
    let server = TestServer::start_with_origins(&[ALLOWED]).await;
    let request = cache_check(&server.owner_key, pb::Action::CacheRead, "c", b"k");
    for path in [
        "/authcell.v1.Verifier/Authorize",
        "/authcell.v1.Admin/ListApiKeys",
        "/global_admin.GlobalAdmin/ListRolesForAccount",
    ] {
        let answer = grpc_web(server.addr, path, ALLOWED, &request).await;
        let (message, status, text) = answer.grpc();
        assert_eq!(status, "12", "{path}: {text}");
        assert!(text.contains("token.Token and auth.Auth"), "{text}");
        assert!(message.is_none());
    }
    // Plain gRPC to the same services still works on the same listener.
    assert!(server.authorize(request).await.allowed);
}

#[tokio::test]
async fn preflights_succeed_only_for_configured_origins() {
    let server = TestServer::start_with_origins(&[ALLOWED]).await;
    let ok = preflight(server.addr, "/token.Token/GenerateDisposableToken", ALLOWED).await;
    assert!((200..300).contains(&ok.status), "{}", ok.status);
    assert_eq!(ok.header("access-control-allow-origin"), Some(ALLOWED));
    assert!(ok
        .header("access-control-allow-methods")
        .is_some_and(|m| m.contains("POST")));
    let allowed_headers = ok
        .header("access-control-allow-headers")
        .unwrap_or_default()
        .to_owned();
    for h in [
        "content-type",
        "x-grpc-web",
        "agent",
        "runtime-version",
        "authorization",
    ] {
        assert!(allowed_headers.contains(h), "{h} in {allowed_headers}");
    }
    assert_eq!(ok.header("access-control-allow-credentials"), None);

    let other = preflight(
        server.addr,
        "/token.Token/GenerateDisposableToken",
        "http://evil.localhost:5173",
    )
    .await;
    assert_eq!(other.header("access-control-allow-origin"), None);
    // A call from that origin is answered (CORS is the browser's rule) but without the header
    // that would let its page read the answer.
    let answer = grpc_web(
        server.addr,
        "/token.Token/GenerateDisposableToken",
        "http://evil.localhost:5173",
        &mint_request(&server.owner_key),
    )
    .await;
    assert_eq!(answer.header("access-control-allow-origin"), None);

    // With no origin configured (the default), no origin is allowed.
    let closed = TestServer::start().await;
    let none = preflight(closed.addr, "/token.Token/GenerateDisposableToken", ALLOWED).await;
    assert_eq!(none.header("access-control-allow-origin"), None);
}

/// Over HTTP/2 a page could send plain `application/grpc` (or a content type in another case):
/// any call that carries an `Origin` header to a service that is not for browsers is refused,
/// and CORS never allows an origin for such a path. gRPC clients (no `Origin`) are unaffected.
#[tokio::test]
async fn a_page_cannot_reach_other_services_by_any_content_type() {
    let server = TestServer::start_with_origins(&[ALLOWED]).await;
    let mut request = with_key(pb::ListApiKeysRequest::default(), &server.owner_key);
    request
        .metadata_mut()
        .insert("origin", ALLOWED.parse().expect("ascii"));
    let refused = pb::admin_client::AdminClient::new(server.channel().await)
        .list_api_keys(request)
        .await
        .expect_err("a call from a page to the Admin service");
    assert_eq!(refused.code(), tonic::Code::Unimplemented, "{refused:?}");
    pb::admin_client::AdminClient::new(server.channel().await)
        .list_api_keys(with_key(
            pb::ListApiKeysRequest::default(),
            &server.owner_key,
        ))
        .await
        .expect("the same call from a gRPC client");
    // A preflight from the allowed origin for another service is not allowed.
    let other = preflight(server.addr, "/authcell.v1.Admin/ListApiKeys", ALLOWED).await;
    assert_eq!(other.header("access-control-allow-origin"), None);
    // gRPC-Web in another case is still gRPC-Web.
    let encoded = pb::ListApiKeysRequest::default().encode_to_vec();
    let mut framed = vec![0u8];
    framed.extend_from_slice(&(encoded.len() as u32).to_be_bytes());
    framed.extend_from_slice(&encoded);
    let answer = exchange(
        server.addr,
        http::Request::post("/authcell.v1.Admin/ListApiKeys")
            .header("host", server.addr.to_string())
            .header("content-type", "Application/GRPC-Web+proto; charset=utf-8")
            .header("authorization", server.owner_key.as_str())
            .body(Full::new(Bytes::from(framed)))
            .expect("request"),
    )
    .await;
    assert_eq!(answer.grpc().1, "12", "refused");
    assert_eq!(answer.header("access-control-allow-origin"), None);
}
