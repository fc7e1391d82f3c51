//! The service surface: authentication errors of management RPCs, health and reflection,
//! upstream methods authcell does not serve, oversized requests.
//!
//! Every test talks to a real server over loopback. Negative tests first show that the same
//! call succeeds when only the one thing under test is changed back, so they fail for the
//! intended reason. Time moves only through the server's manual clock.

use crate::support::grpc::*;
use authcell::proto::authcell::v1 as pb;
use authcell::proto::global_admin as ga;
use tonic::Code;

#[tokio::test]
async fn management_call_without_a_credential_is_unauthenticated() {
    let server = TestServer::start().await;
    list_roles(&server, &server.owner_key)
        .await
        .expect("precondition: the same call with a key succeeds");
    let mut admin = server.admin().await;
    let result = admin.list_roles(pb::ListRolesRequest {}).await;
    assert_status(result, Code::Unauthenticated, &["missing"]);
    let mut global = server.global_admin().await;
    let result = global
        .generate_global_api_key(ga::GenerateGlobalApiKeyRequest {
            role_id: "viewer".into(),
            description: "anonymous".into(),
            expiry: never(),
        })
        .await;
    assert_status(result, Code::Unauthenticated, &["missing"]);
}

#[tokio::test]
async fn management_call_accepts_a_bearer_prefix() {
    let server = TestServer::start().await;
    let roles = list_roles(&server, &format!("Bearer {}", server.owner_key))
        .await
        .expect("Bearer-prefixed key authenticates");
    assert!(!roles.is_empty());
}

#[tokio::test]
async fn management_call_with_a_bad_credential_says_why_without_echoing_it() {
    let (server, public) = server_with_known_key().await;
    let real = server.owner_key.clone();
    list_roles(&server, &real)
        .await
        .expect("precondition: the genuine key authenticates");
    for (case, credential, word) in bad_credentials(&real, &public) {
        for rpc in [
            Rpc::ListRoles,
            Rpc::ListGlobalApiKeys,
            Rpc::GenerateGlobalApiKey,
        ] {
            let status = call_as(&server, rpc, &credential)
                .await
                .expect_err("a bad credential is refused");
            assert_eq!(
                status.code(),
                Code::Unauthenticated,
                "{case} {rpc:?}: {status:?}"
            );
            assert!(
                status.message().contains(word),
                "{case} {rpc:?}: message {:?} should mention {word:?}",
                status.message()
            );
            if !credential.is_empty() {
                assert!(
                    !status.message().contains(&credential),
                    "{case}: message echoes the credential"
                );
            }
        }
    }
}

use authcell::server::SERVICES;

#[tokio::test]
async fn health_reports_the_server_and_every_service_serving() {
    use tonic_health::pb::health_check_response::ServingStatus;
    use tonic_health::pb::{health_client::HealthClient, HealthCheckRequest};
    let server = TestServer::start().await;
    let mut health = HealthClient::new(server.channel().await);
    for service in std::iter::once("").chain(SERVICES) {
        let response = health
            .check(HealthCheckRequest {
                service: service.into(),
            })
            .await
            .unwrap_or_else(|e| panic!("health check {service:?}: {e:?}"))
            .into_inner();
        assert_eq!(response.status(), ServingStatus::Serving, "{service:?}");
    }
    let result = health
        .check(HealthCheckRequest {
            service: "no.Such".into(),
        })
        .await;
    assert_status(result, Code::NotFound, &[]);
}

#[tokio::test]
async fn reflection_v1_lists_every_service() {
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
    use tonic_reflection::pb::v1::ServerReflectionRequest;
    let server = TestServer::start().await;
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut stream = ServerReflectionClient::new(server.channel().await)
        .server_reflection_info(tokio_stream::iter([request]))
        .await
        .expect("reflection call")
        .into_inner();
    let response = stream
        .message()
        .await
        .expect("reflection response")
        .expect("one response");
    let names: Vec<String> = match response.message_response {
        Some(MessageResponse::ListServicesResponse(list)) => {
            list.service.into_iter().map(|s| s.name).collect()
        }
        other => panic!("expected a service list, got {other:?}"),
    };
    for service in SERVICES.into_iter().chain(["grpc.health.v1.Health"]) {
        assert!(
            names.iter().any(|n| n == service),
            "{service} missing from {names:?}"
        );
    }
}

#[tokio::test]
async fn reflection_v1alpha_lists_services_too() {
    use tonic_reflection::pb::v1alpha::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1alpha::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1alpha::server_reflection_response::MessageResponse;
    use tonic_reflection::pb::v1alpha::ServerReflectionRequest;
    let server = TestServer::start().await;
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut stream = ServerReflectionClient::new(server.channel().await)
        .server_reflection_info(tokio_stream::iter([request]))
        .await
        .expect("reflection call")
        .into_inner();
    let response = stream
        .message()
        .await
        .expect("reflection response")
        .expect("one response");
    let names: Vec<String> = match response.message_response {
        Some(MessageResponse::ListServicesResponse(list)) => {
            list.service.into_iter().map(|s| s.name).collect()
        }
        other => panic!("expected a service list, got {other:?}"),
    };
    for service in SERVICES.into_iter().chain(["grpc.health.v1.Health"]) {
        assert!(
            names.iter().any(|n| n == service),
            "{service} missing from {names:?}"
        );
    }
}

#[tokio::test]
async fn login_is_unimplemented() {
    let server = TestServer::start().await;
    let result = server
        .auth()
        .await
        .login(with_key(
            authcell::proto::auth::LoginRequest {},
            &server.owner_key,
        ))
        .await;
    let status = match result {
        Err(status) => status,
        Ok(response) => response
            .into_inner()
            .message()
            .await
            .expect_err("Login yields no messages"),
    };
    assert_eq!(status.code(), Code::Unimplemented, "{status:?}");
}

#[tokio::test]
async fn oversized_requests_are_refused_and_the_server_keeps_serving() {
    let server = TestServer::start().await;
    let under_limit = cache_check(&server.owner_key, pb::Action::CacheRead, "c", &[7; 60_000]);
    let answer = try_authorize(&server, under_limit).await;
    assert!(
        answer
            .expect("precondition: a 60 KB request is served")
            .allowed
    );
    let mut client = server.global_admin().await;
    let request = |description: String| {
        with_key(
            ga::GenerateGlobalApiKeyRequest {
                role_id: "viewer".into(),
                description,
                expiry: never(),
            },
            &server.owner_key,
        )
    };
    let status = client
        .generate_global_api_key(request("d".repeat(70_000)))
        .await
        .expect_err("a 70 KB request is refused");
    assert!(
        matches!(status.code(), Code::OutOfRange | Code::ResourceExhausted),
        "{status:?}"
    );
    client
        .generate_global_api_key(request("small".into()))
        .await
        .expect("the same connection keeps serving");
    // The verifier takes batches, so its limit is 8 MiB rather than 64 KiB.
    let oversized_check = cache_check(
        &server.owner_key,
        pb::Action::CacheRead,
        "c",
        &vec![7; 9 * 1024 * 1024],
    );
    let result = try_authorize(&server, oversized_check).await;
    let status = result.expect_err("a 9 MiB Authorize is refused");
    assert!(
        matches!(status.code(), Code::OutOfRange | Code::ResourceExhausted),
        "{status:?}"
    );
    list_roles(&server, &server.owner_key)
        .await
        .expect("the server keeps serving");
}
