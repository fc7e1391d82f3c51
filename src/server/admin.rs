//! `authcell.v1.Admin`: key listing and description, custom roles, token revocation.

use std::sync::Arc;

use tonic::{Request, Response, Status};

use super::caller;
use crate::authority::{
    AuditListing, Authority, KeyId, KeyListing, KeyRotation, KeyStatus, NewRole, PolicyReport,
    RevocationWait, RoleChange, RoleId, RoleView, TokenRevocation,
};
use crate::policy::proto::permission_set_to_proto;
use crate::policy::KeyPolicy;
use crate::proto::authcell::v1 as pb;
use crate::store::KeyRecord;

pub struct AdminService {
    authority: Arc<Authority>,
}

impl AdminService {
    pub fn new(authority: Arc<Authority>) -> Self {
        AdminService { authority }
    }
}

fn key_info(key: KeyRecord, status: KeyStatus) -> pb::ApiKeyInfo {
    pb::ApiKeyInfo {
        kind: if key.role_id.is_some() {
            pb::KeyKind::Role
        } else {
            pb::KeyKind::Inline
        } as i32,
        status: match status {
            KeyStatus::Active => pb::KeyStatus::Active,
            KeyStatus::Expired => pb::KeyStatus::Expired,
            KeyStatus::Revoked => pb::KeyStatus::Revoked,
        } as i32,
        key_id: key.key_id,
        account_id: key.account,
        description: key.description,
        role_id: key.role_id.unwrap_or_default(),
        expires_at_epoch_seconds: key.expires_at,
        issued_at_epoch_seconds: key.issued_at,
        created_by: key.created_by,
        revoked_at_epoch_seconds: key.revoked_at,
        token_id: key.token_id.unwrap_or_default(),
        rotated_to: key.rotation.to.unwrap_or_default(),
        rotated_from: key.rotation.from.unwrap_or_default(),
        revokes_at_epoch_seconds: key.rotation.revokes_at,
    }
}

fn policy_to_proto(p: &KeyPolicy) -> pb::KeyPolicy {
    pb::KeyPolicy {
        require_expiry: p.require_expiry,
        max_key_lifetime_seconds: p.max_key_secs,
        max_sdk_key_lifetime_seconds: p.max_sdk_key_secs,
        max_disposable_token_lifetime_seconds: p.max_disposable_secs,
    }
}

fn policy_response(report: PolicyReport) -> pb::KeyPolicyResponse {
    pb::KeyPolicyResponse {
        policy: Some(policy_to_proto(&report.policy)),
        violations: report
            .violations
            .into_iter()
            .map(|v| pb::PolicyViolation {
                reason: v.breach.to_string(),
                key: Some(key_info(v.key, KeyStatus::Active)),
            })
            .collect(),
        violations_total: u32::try_from(report.violations_total).unwrap_or(u32::MAX),
    }
}

fn role(r: RoleView) -> pb::Role {
    pb::Role {
        permissions: Some(permission_set_to_proto(&r.permissions)),
        kind: if r.system {
            pb::RoleKind::System
        } else {
            pb::RoleKind::Custom
        } as i32,
        role_id: r.role_id,
        name: r.name,
        description: r.description,
        created_at_epoch_seconds: r.created_at,
        updated_at_epoch_seconds: r.updated_at,
    }
}

#[tonic::async_trait]
impl pb::admin_server::Admin for AdminService {
    async fn rotate_api_key(
        &self,
        request: Request<pb::RotateApiKeyRequest>,
    ) -> Result<Response<pb::RotateApiKeyResponse>, Status> {
        let caller = caller(&self.authority, &request)?;
        let request_id = super::caller::request_id(&request)?;
        let rotation = KeyRotation::try_from((request.into_inner(), request_id))?;
        let rotated = self.authority.rotate_key(&caller, rotation).await?;
        let old_status = self.authority.key_status(&rotated.old);
        Ok(Response::new(pb::RotateApiKeyResponse {
            api_key: rotated.token,
            key: Some(key_info(rotated.new, KeyStatus::Active)),
            rotated: Some(key_info(rotated.old, old_status)),
            endpoint: self.authority.endpoint().to_owned(),
            refresh_token: rotated.refresh_token.unwrap_or_default(),
        }))
    }

    async fn get_key_policy(
        &self,
        request: Request<pb::GetKeyPolicyRequest>,
    ) -> Result<Response<pb::KeyPolicyResponse>, Status> {
        let caller = caller(&self.authority, &request)?;
        let report = self.authority.get_key_policy(&caller).await?;
        Ok(Response::new(policy_response(report)))
    }

    async fn set_key_policy(
        &self,
        request: Request<pb::SetKeyPolicyRequest>,
    ) -> Result<Response<pb::KeyPolicyResponse>, Status> {
        let caller = caller(&self.authority, &request)?;
        let policy = KeyPolicy::from(request.into_inner().policy.unwrap_or_default());
        let report = self.authority.set_key_policy(&caller, policy).await?;
        Ok(Response::new(policy_response(report)))
    }

    async fn describe_api_key(
        &self,
        request: Request<pb::DescribeApiKeyRequest>,
    ) -> Result<Response<pb::DescribeApiKeyResponse>, Status> {
        let caller = caller(&self.authority, &request)?;
        let key_id = KeyId::try_from(request.into_inner())?;
        let (key, status) = self.authority.describe_key(&caller, &key_id).await?;
        Ok(Response::new(pb::DescribeApiKeyResponse {
            key: Some(key_info(key, status)),
        }))
    }

    async fn list_api_keys(
        &self,
        request: Request<pb::ListApiKeysRequest>,
    ) -> Result<Response<pb::ListApiKeysResponse>, Status> {
        let caller = caller(&self.authority, &request)?;
        let listing = KeyListing::try_from(request.get_ref())?;
        let page = self.authority.list_keys(&caller, listing).await?;
        Ok(Response::new(pb::ListApiKeysResponse {
            keys: page.keys.into_iter().map(|(k, s)| key_info(k, s)).collect(),
            next_token: page.next_token.unwrap_or_default(),
        }))
    }

    async fn create_role(
        &self,
        request: Request<pb::CreateRoleRequest>,
    ) -> Result<Response<pb::CreateRoleResponse>, Status> {
        let caller = caller(&self.authority, &request)?;
        let new_role = NewRole::try_from(request.into_inner())?;
        let created = self.authority.create_role(&caller, new_role).await?;
        tracing::info!(method = "authcell.v1.Admin/CreateRole", account = %caller.account(), role_id = %created.role_id, created_by = %caller.key_id(), "role created");
        Ok(Response::new(pb::CreateRoleResponse {
            role: Some(role(created)),
        }))
    }

    async fn update_role(
        &self,
        request: Request<pb::UpdateRoleRequest>,
    ) -> Result<Response<pb::UpdateRoleResponse>, Status> {
        let caller = caller(&self.authority, &request)?;
        let change = RoleChange::try_from(request.into_inner())?;
        let updated = self.authority.update_role(&caller, change).await?;
        tracing::info!(method = "authcell.v1.Admin/UpdateRole", account = %caller.account(), role_id = %updated.role_id, changed_by = %caller.key_id(), "role updated");
        Ok(Response::new(pb::UpdateRoleResponse {
            role: Some(role(updated)),
        }))
    }

    async fn delete_role(
        &self,
        request: Request<pb::DeleteRoleRequest>,
    ) -> Result<Response<pb::DeleteRoleResponse>, Status> {
        let caller = caller(&self.authority, &request)?;
        let role_id = RoleId::try_from(request.into_inner())?;
        self.authority.delete_role(&caller, &role_id).await?;
        let role_id = role_id.as_str();
        tracing::info!(method = "authcell.v1.Admin/DeleteRole", account = %caller.account(), role_id = %role_id, deleted_by = %caller.key_id(), "role deleted");
        Ok(Response::new(pb::DeleteRoleResponse {}))
    }

    async fn list_roles(
        &self,
        request: Request<pb::ListRolesRequest>,
    ) -> Result<Response<pb::ListRolesResponse>, Status> {
        let caller = caller(&self.authority, &request)?;
        let roles = self.authority.list_roles(&caller).await?;
        Ok(Response::new(pb::ListRolesResponse {
            roles: roles.into_iter().map(role).collect(),
        }))
    }

    async fn revoke_token(
        &self,
        request: Request<pb::RevokeTokenRequest>,
    ) -> Result<Response<pb::RevokeTokenResponse>, Status> {
        let caller = caller(&self.authority, &request)?;
        let revocation = TokenRevocation::try_from(request.into_inner())?;
        let token = revocation.token.clone();
        let revocation_id = self.authority.revoke_token(&caller, revocation).await?;
        tracing::info!(method = "authcell.v1.Admin/RevokeToken", account = %caller.account(), token = ?token, revoked_by = %caller.key_id(), "token revoked");
        Ok(Response::new(pb::RevokeTokenResponse {
            revocation_id: revocation_id.unwrap_or_default(),
        }))
    }

    async fn revoke_issued_before(
        &self,
        request: Request<pb::RevokeIssuedBeforeRequest>,
    ) -> Result<Response<pb::RevokeIssuedBeforeResponse>, Status> {
        let caller = caller(&self.authority, &request)?;
        let req = request.get_ref();
        let before_ms = match (
            req.issued_before_epoch_millis,
            req.issued_before_epoch_seconds,
        ) {
            (0, 0) => None,
            (0, secs) => Some(secs.saturating_mul(1000)),
            (ms, _) => Some(ms),
        };
        let (before_ms, revocation_id) = self
            .authority
            .revoke_issued_before(&caller, before_ms)
            .await?;
        tracing::info!(method = "authcell.v1.Admin/RevokeIssuedBefore", account = %caller.account(), issued_before_ms = before_ms, revoked_by = %caller.key_id(), "credentials issued before a time revoked");
        Ok(Response::new(pb::RevokeIssuedBeforeResponse {
            issued_before_epoch_seconds: before_ms / 1000,
            issued_before_epoch_millis: before_ms,
            revocation_id: revocation_id.unwrap_or_default(),
        }))
    }

    async fn confirm_revocation(
        &self,
        request: Request<pb::ConfirmRevocationRequest>,
    ) -> Result<Response<pb::ConfirmRevocationResponse>, Status> {
        let caller = caller(&self.authority, &request)?;
        let wait = RevocationWait::try_from(request.get_ref())?;
        let outcome = self.authority.confirm_revocation(&caller, wait).await?;
        Ok(Response::new(pb::ConfirmRevocationResponse {
            confirmed: outcome.confirmed,
            confirmed_cells: outcome.confirmed_cells,
            pending_cells: outcome.pending_cells,
            silent_cells: outcome.silent_cells,
            revocation_id: outcome.revocation_id,
        }))
    }

    async fn list_cells(
        &self,
        request: Request<pb::ListCellsRequest>,
    ) -> Result<Response<pb::ListCellsResponse>, Status> {
        let caller = caller(&self.authority, &request)?;
        let (nodes, latest) = self.authority.cells(&caller).await?;
        Ok(Response::new(pb::ListCellsResponse {
            nodes: nodes
                .into_iter()
                .map(|n| pb::NodeStatus {
                    node_id: n.node_id,
                    cell: n.cell,
                    position: n.position,
                    lag_ms: n.lag_ms,
                    last_seen_ms_ago: n.last_seen_ms_ago,
                    live: n.live,
                })
                .collect(),
            latest_event_id: latest.unwrap_or_default(),
        }))
    }

    async fn list_audit_events(
        &self,
        request: Request<pb::ListAuditEventsRequest>,
    ) -> Result<Response<pb::ListAuditEventsResponse>, Status> {
        let caller = caller(&self.authority, &request)?;
        let listing = AuditListing::try_from(request.get_ref())?;
        let (events, next) = self.authority.list_audit(&caller, listing).await?;
        Ok(Response::new(pb::ListAuditEventsResponse {
            events: events
                .into_iter()
                .map(|e| pb::AuditEvent {
                    id: e.id,
                    at_epoch_millis: e.at_ms,
                    account_id: e.account,
                    actor_key_id: e.actor,
                    peer_address: e.peer.unwrap_or_default(),
                    action: e.action,
                    target: e.target,
                    detail: e.detail,
                })
                .collect(),
            next_token: next.unwrap_or_default(),
        }))
    }
}
