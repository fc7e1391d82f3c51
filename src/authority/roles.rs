//! Roles: the system roles and an account's custom roles.

use super::*;

impl Authority {
    /// System roles, then the account's custom roles.
    pub async fn list_roles(&self, caller: &Caller) -> Result<Vec<RoleView>> {
        self.require(caller, Action::AuthList)?;
        let mut roles: Vec<RoleView> = system::ALL
            .iter()
            .filter_map(|id| {
                system::permissions(id).map(|permissions| RoleView {
                    role_id: (*id).to_owned(),
                    name: system::name(id).to_owned(),
                    description: format!("System role: {}", system::name(id)),
                    permissions,
                    system: true,
                    created_at: 0,
                    updated_at: 0,
                })
            })
            .collect();
        roles.extend(
            self.store
                .list_roles(caller.account())
                .await?
                .into_iter()
                .map(role_view),
        );
        Ok(roles)
    }

    /// CreateRole: explicit rules only, unique name, no more than the caller can do.
    pub async fn create_role(&self, caller: &Caller, request: NewRole) -> Result<RoleView> {
        self.require(caller, Action::AuthWrite)?;
        let NewRole {
            name,
            description,
            permissions,
        } = request;
        self.require_delegable(caller, "the role", &permissions)?;
        let now = self.clock.now();
        let role = RoleRecord {
            role_id: uuid::Uuid::now_v7().to_string(),
            account: caller.account().to_owned(),
            name,
            description,
            permissions,
            created_at: now,
            updated_at: now,
        };
        let audit = Self::caller_audit(caller, "role.created", &role.role_id, role.name.clone());
        self.store.create_role(role.clone(), Some(&audit)).await?;
        Ok(role_view(role))
    }

    /// UpdateRole: every key bound to the role follows on its next check.
    pub async fn update_role(&self, caller: &Caller, request: RoleChange) -> Result<RoleView> {
        self.require(caller, Action::AuthWrite)?;
        let RoleChange { role_id, update } = request;
        let mut role = self.custom_role(caller, &role_id).await?;
        self.require_delegable(caller, "the role", &role.permissions)?;
        if let Some(name) = update.name {
            role.name = name;
        }
        if let Some(description) = update.description {
            role.description = description;
        }
        if let Some(permissions) = update.permissions {
            self.require_delegable(caller, "the new permissions", &permissions)?;
            role.permissions = permissions;
        }
        role.updated_at = self.clock.now();
        let audit = Self::caller_audit(caller, "role.updated", &role.role_id, role.name.clone());
        self.store.update_role(role.clone(), Some(&audit)).await?;
        Ok(role_view(role))
    }

    /// DeleteRole: refused while live keys use the role.
    pub async fn delete_role(&self, caller: &Caller, role_id: &RoleId) -> Result<()> {
        self.require(caller, Action::AuthWrite)?;
        let role = self.custom_role(caller, role_id).await?;
        let role_id = role_id.as_str();
        self.require_delegable(caller, "the role", &role.permissions)?;
        Ok(self
            .store
            .delete_role(
                caller.account(),
                role_id,
                self.clock.now(),
                Some(&Self::caller_audit(
                    caller,
                    "role.deleted",
                    role_id,
                    role.name.clone(),
                )),
            )
            .await?)
    }

    async fn custom_role(&self, caller: &Caller, role_id: &RoleId) -> Result<RoleRecord> {
        let role_id = role_id.as_str();
        if system::permissions(role_id).is_some() {
            return Err(Error::FailedPrecondition(format!(
                "role_id: {role_id:?} is a system role and cannot be changed or deleted"
            )));
        }
        self.store
            .get_role(caller.account(), role_id)
            .await?
            .ok_or_else(|| Error::NotFound(format!("role_id: no role {role_id:?} in this account")))
    }
}

pub(super) fn role_view(role: RoleRecord) -> RoleView {
    RoleView {
        role_id: role.role_id,
        name: role.name,
        description: role.description,
        permissions: role.permissions,
        system: false,
        created_at: role.created_at,
        updated_at: role.updated_at,
    }
}
