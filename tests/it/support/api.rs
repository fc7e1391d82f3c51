//! A client over any server (embedded or a Redis node), and the permission builders the
//! tests of the two promises use.

use authcell::proto::authcell::v1 as pb;
use authcell::proto::permission_messages as pm;
use authcell::proto::permission_rules as pr;
use authcell::proto::{auth, global_admin as ga, token};
use tonic::transport::Channel;

use super::cells::Node;
use super::*;

pub(crate) struct Api {
    pub(crate) channel: Channel,
}

pub(crate) fn cache_write_all() -> pm::PermissionsType {
    statements::cache(pm::CacheRole::CacheReadWrite, None, None)
}

pub(crate) fn role_rules(
    rules: Vec<pr::rule::Kind>,
    conditions: Vec<pr::Condition>,
) -> pr::PermissionSet {
    pr::PermissionSet {
        kind: Some(pr::permission_set::Kind::Explicit(
            pr::ExplicitPermissions {
                rules: rules
                    .into_iter()
                    .map(|k| pr::Rule { kind: Some(k) })
                    .collect(),
            },
        )),
        conditions,
    }
}

/// A cache rule as a rule kind (the one builder is [`super::grpc::cache_rule`]).
pub(crate) fn cache_rule(perms: &[pr::CacheApiPermissions], cache: Option<&str>) -> pr::rule::Kind {
    pr::rule::Kind::CacheRule(super::grpc::cache_rule(perms, cache))
}

pub(crate) use super::grpc::auth_rule;

pub(crate) fn only_from(cidr: &str) -> pr::Condition {
    pr::Condition {
        condition: Some(pr::condition::Condition::IpFilter(pr::IpFilter {
            allowed_cidr_ranges: vec![pr::ip_filter::CidrRange {
                range: Some(pr::ip_filter::cidr_range::Range::Ipv4(cidr.into())),
            }],
        })),
    }
}

pub(crate) fn check(credential: &str, action: pb::Action, cache: &str) -> pb::AuthorizeRequest {
    pb::AuthorizeRequest {
        peer_address: "127.0.0.1".into(),
        ..cache_check(credential, action, cache, b"k")
    }
}

impl Api {
    pub(crate) async fn of(node: &Node) -> Api {
        Api {
            channel: node.channel().await,
        }
    }

    pub(crate) async fn of_server(server: &TestServer) -> Api {
        Api {
            channel: server.channel().await,
        }
    }

    pub(crate) async fn create_key(
        &self,
        caller: &str,
        role_id: &str,
        expires_at: Option<u64>,
    ) -> Result<(String, String), tonic::Status> {
        let response = ga::global_admin_client::GlobalAdminClient::new(self.channel.clone())
            .generate_global_api_key(with_key(
                key_request(role_id, "guarantee test", expires_at),
                caller,
            ))
            .await?
            .into_inner();
        Ok((
            response.api_key,
            response.key_info.expect("key info").key_id,
        ))
    }

    pub(crate) async fn revoke_key(&self, caller: &str, key_id: &str) -> Result<(), tonic::Status> {
        ga::global_admin_client::GlobalAdminClient::new(self.channel.clone())
            .revoke_global_api_key(with_key(
                ga::RevokeGlobalApiKeyRequest {
                    key_id: key_id.into(),
                },
                caller,
            ))
            .await
            .map(|_| ())
    }

    pub(crate) fn admin(&self) -> pb::admin_client::AdminClient<Channel> {
        pb::admin_client::AdminClient::new(self.channel.clone())
    }

    pub(crate) async fn create_role(
        &self,
        caller: &str,
        name: &str,
        set: pr::PermissionSet,
    ) -> String {
        self.admin()
            .create_role(with_key(
                pb::CreateRoleRequest {
                    name: name.into(),
                    permissions: Some(set),
                    description: String::new(),
                },
                caller,
            ))
            .await
            .expect("create role")
            .into_inner()
            .role
            .expect("role")
            .role_id
    }

    /// A key of a new custom role (`name`) that may read cache `c` and manage keys, nothing
    /// more; and the role's id.
    pub(crate) async fn limited_key(&self, owner: &str, name: &str) -> (String, String) {
        let role_id = self
            .create_role(
                owner,
                name,
                role_rules(
                    vec![
                        cache_rule(&[pr::CacheApiPermissions::CacheRead], Some("c")),
                        auth_rule(&[pr::AuthManagementPermissions::AuthWrite]),
                    ],
                    vec![],
                ),
            )
            .await;
        let (key, _) = self
            .create_key(owner, &role_id, None)
            .await
            .expect("a key of the limited role");
        (key, role_id)
    }

    pub(crate) async fn update_role(&self, caller: &str, role_id: &str, set: pr::PermissionSet) {
        self.admin()
            .update_role(with_key(
                pb::UpdateRoleRequest {
                    role_id: role_id.into(),
                    permissions: Some(set),
                    ..Default::default()
                },
                caller,
            ))
            .await
            .expect("update role");
    }

    pub(crate) async fn sdk_key(
        &self,
        caller: &str,
        statements: Vec<pm::PermissionsType>,
        valid_for_seconds: Option<u32>,
    ) -> Result<auth::GenerateApiTokenResponse, tonic::Status> {
        use auth::generate_api_token_request::{Expires, Expiry, Never};
        auth::auth_client::AuthClient::new(self.channel.clone())
            .generate_api_token(auth::GenerateApiTokenRequest {
                expiry: Some(match valid_for_seconds {
                    None => Expiry::Never(Never {}),
                    Some(s) => Expiry::Expires(Expires {
                        valid_for_seconds: s,
                    }),
                }),
                auth_token: caller.into(),
                permissions: Some(explicit(statements)),
                token_id: String::new(),
                description: "guarantee test".into(),
            })
            .await
            .map(|r| r.into_inner())
    }

    pub(crate) async fn refresh(
        &self,
        api_key: &str,
        refresh_token: &str,
    ) -> Result<auth::RefreshApiTokenResponse, tonic::Status> {
        auth::auth_client::AuthClient::new(self.channel.clone())
            .refresh_api_token(auth::RefreshApiTokenRequest {
                api_key: api_key.into(),
                refresh_token: refresh_token.into(),
            })
            .await
            .map(|r| r.into_inner())
    }

    pub(crate) async fn mint(
        &self,
        caller: &str,
        statements: Vec<pm::PermissionsType>,
        token_id: &str,
    ) -> Result<String, tonic::Status> {
        token::token_client::TokenClient::new(self.channel.clone())
            .generate_disposable_token(token::GenerateDisposableTokenRequest {
                expires: Some(token::generate_disposable_token_request::Expires {
                    valid_for_seconds: 3600,
                }),
                auth_token: caller.into(),
                permissions: Some(explicit(statements)),
                token_id: token_id.into(),
            })
            .await
            .map(|r| r.into_inner().api_key)
    }

    pub(crate) async fn revoke_token(
        &self,
        caller: &str,
        token: pb::revoke_token_request::Token,
        expires_at: u64,
    ) -> Result<pb::RevokeTokenResponse, tonic::Status> {
        self.admin()
            .revoke_token(with_key(
                pb::RevokeTokenRequest {
                    token: Some(token),
                    expires_at_epoch_seconds: expires_at,
                },
                caller,
            ))
            .await
            .map(|r| r.into_inner())
    }

    pub(crate) async fn revoke_issued_before(
        &self,
        caller: &str,
    ) -> Result<pb::RevokeIssuedBeforeResponse, tonic::Status> {
        self.admin()
            .revoke_issued_before(with_key(pb::RevokeIssuedBeforeRequest::default(), caller))
            .await
            .map(|r| r.into_inner())
    }

    pub(crate) async fn describe(&self, caller: &str, key_id: &str) -> pb::ApiKeyInfo {
        self.admin()
            .describe_api_key(with_key(
                pb::DescribeApiKeyRequest {
                    key_id: key_id.into(),
                },
                caller,
            ))
            .await
            .expect("describe")
            .into_inner()
            .key
            .expect("key")
    }

    pub(crate) async fn authorize(&self, request: pb::AuthorizeRequest) -> pb::AuthorizeResponse {
        pb::verifier_client::VerifierClient::new(self.channel.clone())
            .authorize(request)
            .await
            .expect("authorize")
            .into_inner()
    }

    pub(crate) async fn reason(
        &self,
        credential: &str,
        action: pb::Action,
        cache: &str,
    ) -> pb::Reason {
        let verdict = self.authorize(check(credential, action, cache)).await;
        pb::Reason::try_from(verdict.reason).expect("known reason")
    }

    pub(crate) async fn key_id_of(&self, credential: &str) -> String {
        self.authorize(check(credential, pb::Action::CacheRead, "c"))
            .await
            .key_id
    }
}
