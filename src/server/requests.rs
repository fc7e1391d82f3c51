//! The validation boundary: every protobuf request becomes a typed domain request here
//! (`TryFrom`, refusals as [`Invalid`] naming the field), before a handler calls the one
//! operation that serves it. The rules themselves live with the typed requests
//! ([`crate::authority::requests`]) and, for permission messages, in [`crate::policy::proto`].

use crate::authority::vending::KeyLifetime;
use crate::authority::{
    ApiToken, AuditListing, DisposableToken, Expiry, KeyId, KeyListing, KeyRotation, NewKey,
    NewRole, Refresh, RevocationWait, RoleChange, RoleId, RoleUpdate, TokenRef, TokenRevocation,
};
use std::net::{IpAddr, SocketAddr};

use crate::policy::proto::{permission_set_from_proto, statements_from_proto, Invalid};
use crate::policy::{Action, Resource};
use crate::proto::authcell::v1 as pb;
use crate::proto::{auth, global_admin as ga, token};
use crate::verifier::Query;

/// GenerateGlobalApiKey, with the `idempotency-key` the client sent.
impl TryFrom<(ga::GenerateGlobalApiKeyRequest, Option<String>)> for NewKey {
    type Error = Invalid;

    fn try_from(
        (req, request_id): (ga::GenerateGlobalApiKeyRequest, Option<String>),
    ) -> Result<Self, Invalid> {
        use ga::generate_global_api_key_request::Expiry as E;
        let expiry = req.expiry.map(|e| match e {
            E::Never(_) => Expiry::Never,
            E::Expires(x) => Expiry::At(x.expiration_epoch_seconds),
        });
        NewKey::new(req.role_id, &req.description, expiry, request_id)
    }
}

impl TryFrom<ga::RevokeGlobalApiKeyRequest> for KeyId {
    type Error = Invalid;

    fn try_from(req: ga::RevokeGlobalApiKeyRequest) -> Result<Self, Invalid> {
        KeyId::new(req.key_id)
    }
}

impl TryFrom<(pb::RotateApiKeyRequest, Option<String>)> for KeyRotation {
    type Error = Invalid;

    fn try_from(
        (req, request_id): (pb::RotateApiKeyRequest, Option<String>),
    ) -> Result<Self, Invalid> {
        KeyRotation::new(
            req.key_id,
            req.overlap_seconds,
            req.lifetime_seconds,
            request_id,
        )
    }
}

/// SetKeyPolicy: 0 and a field left out both mean no limit (the authority validates ranges).
impl From<pb::KeyPolicy> for crate::policy::KeyPolicy {
    fn from(p: pb::KeyPolicy) -> Self {
        let limit = |v: Option<u64>| v.filter(|&v| v > 0);
        crate::policy::KeyPolicy {
            require_expiry: p.require_expiry,
            max_key_secs: limit(p.max_key_lifetime_seconds),
            max_sdk_key_secs: limit(p.max_sdk_key_lifetime_seconds),
            max_disposable_secs: limit(p.max_disposable_token_lifetime_seconds),
        }
    }
}

impl TryFrom<pb::DescribeApiKeyRequest> for KeyId {
    type Error = Invalid;

    fn try_from(req: pb::DescribeApiKeyRequest) -> Result<Self, Invalid> {
        KeyId::new(req.key_id)
    }
}

impl TryFrom<&pb::ListApiKeysRequest> for KeyListing {
    type Error = Invalid;

    fn try_from(req: &pb::ListApiKeysRequest) -> Result<Self, Invalid> {
        KeyListing::new(req.limit, &req.next_token, req.include_inactive)?
            .expiring_within(req.expiring_within_seconds)
    }
}

impl TryFrom<&pb::ListAuditEventsRequest> for AuditListing {
    type Error = Invalid;

    fn try_from(req: &pb::ListAuditEventsRequest) -> Result<Self, Invalid> {
        AuditListing::new(
            req.since_epoch_millis,
            req.until_epoch_millis,
            req.limit,
            &req.next_token,
        )
    }
}

impl TryFrom<pb::CreateRoleRequest> for NewRole {
    type Error = Invalid;

    fn try_from(req: pb::CreateRoleRequest) -> Result<Self, Invalid> {
        let permissions =
            permission_set_from_proto("permissions", req.permissions.as_ref(), false)?;
        NewRole::new(&req.name, &req.description, permissions)
    }
}

impl TryFrom<pb::UpdateRoleRequest> for RoleChange {
    type Error = Invalid;

    fn try_from(req: pb::UpdateRoleRequest) -> Result<Self, Invalid> {
        let permissions = req
            .permissions
            .as_ref()
            .map(|p| permission_set_from_proto("permissions", Some(p), false))
            .transpose()?;
        RoleChange::new(
            RoleId::new(req.role_id)?,
            RoleUpdate {
                name: req.name,
                description: req.description,
                permissions,
            },
        )
    }
}

impl TryFrom<pb::DeleteRoleRequest> for RoleId {
    type Error = Invalid;

    fn try_from(req: pb::DeleteRoleRequest) -> Result<Self, Invalid> {
        RoleId::new(req.role_id)
    }
}

impl TryFrom<pb::RevokeTokenRequest> for TokenRevocation {
    type Error = Invalid;

    fn try_from(req: pb::RevokeTokenRequest) -> Result<Self, Invalid> {
        let token = req.token.map(|t| match t {
            pb::revoke_token_request::Token::Id(id) => TokenRef::Id(id),
            pb::revoke_token_request::Token::TokenId(tid) => TokenRef::TokenId(tid),
        });
        TokenRevocation::new(token, req.expires_at_epoch_seconds)
    }
}

impl TryFrom<&pb::ConfirmRevocationRequest> for RevocationWait {
    type Error = Invalid;

    fn try_from(req: &pb::ConfirmRevocationRequest) -> Result<Self, Invalid> {
        RevocationWait::new(&req.revocation_id, req.timeout_ms)
    }
}

impl TryFrom<token::GenerateDisposableTokenRequest> for DisposableToken {
    type Error = Invalid;

    fn try_from(req: token::GenerateDisposableTokenRequest) -> Result<Self, Invalid> {
        DisposableToken::new(
            req.expires.map(|e| e.valid_for_seconds),
            statements_from_proto("permissions", req.permissions.as_ref()),
            &req.token_id,
        )
    }
}

impl TryFrom<auth::GenerateApiTokenRequest> for ApiToken {
    type Error = Invalid;

    fn try_from(req: auth::GenerateApiTokenRequest) -> Result<Self, Invalid> {
        use auth::generate_api_token_request::Expiry as E;
        let lifetime = req.expiry.map(|e| match e {
            E::Never(_) => KeyLifetime::Never,
            E::Expires(x) => KeyLifetime::Seconds(x.valid_for_seconds),
        });
        ApiToken::new(
            lifetime,
            statements_from_proto("permissions", req.permissions.as_ref()),
            &req.token_id,
            &req.description,
        )
    }
}

impl TryFrom<auth::RefreshApiTokenRequest> for Refresh {
    type Error = Invalid;

    fn try_from(req: auth::RefreshApiTokenRequest) -> Result<Self, Invalid> {
        Refresh::new(req.api_key, req.refresh_token)
    }
}

/// Authorize and each BatchAuthorize item: borrowed from the request, nothing copied (the
/// data-plane hot path).
impl<'a> TryFrom<&'a pb::AuthorizeRequest> for Query<'a> {
    type Error = Invalid;

    fn try_from(req: &'a pb::AuthorizeRequest) -> Result<Self, Invalid> {
        let (action, resource) = action_and_resource(req)?;
        Ok(Query {
            action,
            resource,
            peer: parse_peer(&req.peer_address)?,
        })
    }
}

/// Parses `peer_address`: an IP, or an IP with a port (`1.2.3.4:5`, `[::1]:5`).
fn parse_peer(s: &str) -> Result<Option<IpAddr>, Invalid> {
    if s.is_empty() {
        return Ok(None);
    }
    s.parse::<IpAddr>()
        .or_else(|_| s.parse::<SocketAddr>().map(|a| a.ip()))
        .map(Some)
        .map_err(|_| Invalid::new("peer_address", "not an IP address (optionally with a port)"))
}

fn require_name<'a>(field: &str, value: &'a str) -> Result<&'a str, Invalid> {
    if value.is_empty() {
        Err(Invalid::new(field, "required for this action"))
    } else {
        Ok(value)
    }
}

/// Validates the request shape and builds the action and resource to check.
fn action_and_resource(req: &pb::AuthorizeRequest) -> Result<(Action, Resource<'_>), Invalid> {
    let action = match pb::Action::try_from(req.action) {
        Ok(pb::Action::CacheRead) => Action::CacheRead,
        Ok(pb::Action::CacheWrite) => Action::CacheWrite,
        Ok(pb::Action::CacheReadWrite) => Action::CacheReadWrite,
        Ok(pb::Action::TopicSubscribe) => Action::TopicSubscribe,
        Ok(pb::Action::TopicPublish) => Action::TopicPublish,
        Ok(pb::Action::FunctionInvoke) => Action::FunctionInvoke,
        Ok(pb::Action::Unspecified) => return Err(Invalid::new("action", "required")),
        Err(_) => {
            return Err(Invalid::new(
                "action",
                format!("unknown value {}", req.action),
            ))
        }
    };
    let cache = Some(require_name("cache", &req.cache)?);
    let resource = match action {
        Action::TopicSubscribe | Action::TopicPublish => Resource {
            cache,
            topic: Some(require_name("topic", &req.topic)?),
            ..Resource::default()
        },
        Action::FunctionInvoke => Resource {
            cache,
            function: Some(require_name("function", &req.function)?),
            ..Resource::default()
        },
        _ => Resource {
            cache,
            key: (!req.key.is_empty()).then_some(req.key.as_slice()),
            ..Resource::default()
        },
    };
    Ok((action, resource))
}
