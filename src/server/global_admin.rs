//! `global_admin.GlobalAdmin`: the upstream key and role methods.

use std::pin::Pin;
use std::sync::Arc;

use tokio_stream::Stream;
use tonic::{Request, Response, Status};

use super::caller;
use crate::authority::{Authority, KeyId, NewKey};
use crate::policy::proto::permission_set_to_proto;
use crate::proto::global_admin as ga;
use crate::store::KeyRecord;

pub struct GlobalAdminService {
    authority: Arc<Authority>,
}

impl GlobalAdminService {
    pub fn new(authority: Arc<Authority>) -> Self {
        GlobalAdminService { authority }
    }
}

pub(crate) fn key_info(key: &KeyRecord) -> ga::GlobalApiKey {
    ga::GlobalApiKey {
        key_id: key.key_id.clone(),
        account_id: key.account.clone(),
        description: key.description.clone(),
        role_id: key.role_id.clone().unwrap_or_default(),
        expires_at_epoch_seconds: key.expires_at,
        issued_at_epoch_seconds: key.issued_at,
    }
}

type KeyStream = Pin<Box<dyn Stream<Item = Result<ga::GlobalApiKey, Status>> + Send>>;

#[tonic::async_trait]
impl ga::global_admin_server::GlobalAdmin for GlobalAdminService {
    async fn list_roles_for_account(
        &self,
        request: Request<ga::ListRolesForAccountRequest>,
    ) -> Result<Response<ga::ListRolesForAccountResponse>, Status> {
        let caller = caller(&self.authority, &request)?;
        let roles = self.authority.list_roles(&caller).await?;
        Ok(Response::new(ga::ListRolesForAccountResponse {
            roles: roles
                .into_iter()
                .map(|r| ga::AccountRole {
                    role_id: r.role_id,
                    role_name: r.name,
                    permissions: Some(permission_set_to_proto(&r.permissions)),
                    role_type: if r.system {
                        ga::RoleType::System
                    } else {
                        ga::RoleType::Custom
                    } as i32,
                })
                .collect(),
        }))
    }

    async fn generate_global_api_key(
        &self,
        request: Request<ga::GenerateGlobalApiKeyRequest>,
    ) -> Result<Response<ga::GenerateGlobalApiKeyResponse>, Status> {
        let caller = caller(&self.authority, &request)?;
        let request_id = super::caller::request_id(&request)?;
        let request = NewKey::try_from((request.into_inner(), request_id))?;
        let role_id = request.role_id.clone();
        let (api_key, record) = self.authority.generate_key(&caller, request).await?;
        tracing::info!(
            method = "global_admin.GlobalAdmin/GenerateGlobalApiKey",
            account = %record.account,
            key_id = %record.key_id,
            role_id = role_id,
            created_by = %record.created_by,
            "api key created"
        );
        Ok(Response::new(ga::GenerateGlobalApiKeyResponse {
            api_key,
            key_info: Some(key_info(&record)),
        }))
    }

    type ListGlobalApiKeysStream = KeyStream;

    async fn list_global_api_keys(
        &self,
        request: Request<ga::ListGlobalApiKeysRequest>,
    ) -> Result<Response<Self::ListGlobalApiKeysStream>, Status> {
        let caller = caller(&self.authority, &request)?;
        let keys = self.authority.live_keys(&caller).await?;
        let stream = tokio_stream::iter(keys.into_iter().map(|k| Ok(key_info(&k))));
        Ok(Response::new(Box::pin(stream)))
    }

    async fn revoke_global_api_key(
        &self,
        request: Request<ga::RevokeGlobalApiKeyRequest>,
    ) -> Result<Response<ga::RevokeGlobalApiKeyResponse>, Status> {
        let caller = caller(&self.authority, &request)?;
        let key_id = KeyId::try_from(request.into_inner())?;
        let (record, revocation_id) = self.authority.revoke_key(&caller, &key_id).await?;
        tracing::info!(
            method = "global_admin.GlobalAdmin/RevokeGlobalApiKey",
            account = %record.account,
            key_id = %record.key_id,
            revoked_by = %caller.key_id(),
            "api key revoked"
        );
        let mut response = Response::new(ga::RevokeGlobalApiKeyResponse {});
        // The upstream response has no field for it: the id travels in metadata.
        if let Some(value) = revocation_id.and_then(|id| id.parse().ok()) {
            response
                .metadata_mut()
                .insert(crate::authority::REVOCATION_ID_METADATA, value);
        }
        Ok(response)
    }
}
