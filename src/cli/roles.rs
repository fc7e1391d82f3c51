//! `authcell roles`: list, describe, create, update, delete.

use super::*;

pub(crate) fn rules_summary(doc: &PermissionsDoc) -> String {
    let mut text = if doc.super_user {
        "super-user".to_owned()
    } else if doc.rules.len() == 1 {
        "1 rule".to_owned()
    } else {
        format!("{} rules", doc.rules.len())
    };
    if !doc.ip_filter.is_empty() || !doc.ip_filters.is_empty() {
        text.push_str(", ip filter");
    }
    text
}

pub(crate) fn role_block(role: &RoleJson) -> String {
    let when = |t: Option<u64>| t.map_or_else(|| "-".to_owned(), format_secs);
    let mut pairs = vec![
        ("role id", cell(&role.role_id)),
        ("name", cell(&role.name)),
        ("kind", role.kind.to_owned()),
        ("description", cell(&role.description)),
        ("created", when(role.created_at_epoch_seconds)),
        ("updated", when(role.updated_at_epoch_seconds)),
    ];
    let p = &role.permissions;
    if !p.ip_filter.is_empty() {
        pairs.push(("ip filter", printable(&p.ip_filter.join(", "))));
    }
    for filter in &p.ip_filters {
        pairs.push(("ip filter", printable(&filter.join(", "))));
    }
    if p.super_user {
        pairs.push(("rules", "super-user: everything".to_owned()));
    } else {
        pairs.push(("rules", String::new()));
    }
    let mut text = render_block(&pairs);
    if !p.super_user {
        let table = render_table(&["FAMILY", "PERMISSIONS", "SCOPE"], &rule_rows(p));
        for line in table.lines() {
            text.push_str(&format!("  {line}\n"));
        }
    }
    text
}

pub(crate) fn print_role(client: &ClientArgs, role: &pb::Role) -> Result<(), Failure> {
    let role = role_json(role);
    if client.json {
        return json_out(&role);
    }
    out(&role_block(&role));
    Ok(())
}

pub(crate) async fn roles_list(client: &ClientArgs) -> Result<(), Failure> {
    let api = Api::connect(client).await?;
    let roles: Vec<RoleJson> = api.list_roles().await?.iter().map(role_json).collect();
    if client.json {
        return json_out(&RoleListJson { roles });
    }
    let rows: Vec<Vec<String>> = roles
        .iter()
        .map(|r| {
            vec![
                cell(&r.role_id),
                cell(&r.name),
                r.kind.to_owned(),
                rules_summary(&r.permissions),
                cell(&r.description),
            ]
        })
        .collect();
    out(&render_table(
        &["ROLE ID", "NAME", "KIND", "RULES", "DESCRIPTION"],
        &rows,
    ));
    Ok(())
}

pub(crate) async fn roles_describe(client: &ClientArgs, args: RoleRef) -> Result<(), Failure> {
    let api = Api::connect(client).await?;
    let roles = api.list_roles().await?;
    let role = roles
        .iter()
        .find(|r| r.role_id == args.role)
        .or_else(|| roles.iter().find(|r| r.name == args.role))
        .ok_or_else(|| {
            Failure::new(
                Exit::Refused,
                format!(
                    "NOT_FOUND: no role with id or name {:?} in this account",
                    args.role
                ),
            )
        })?;
    print_role(client, role)
}

pub(crate) async fn roles_create(client: &ClientArgs, args: RolesCreate) -> Result<(), Failure> {
    let permissions = read_permissions(&args.file)?;
    let api = Api::connect(client).await?;
    let role = api
        .admin()
        .create_role(api.req(pb::CreateRoleRequest {
            name: args.name,
            permissions: Some(permissions),
            description: args.description,
        }))
        .await
        .map_err(from_status)?
        .into_inner()
        .role
        .unwrap_or_default();
    print_role(client, &role)
}

pub(crate) async fn roles_update(client: &ClientArgs, args: RolesUpdate) -> Result<(), Failure> {
    let permissions = args.file.as_deref().map(read_permissions).transpose()?;
    let api = Api::connect(client).await?;
    let role_id = api.resolve_role(&args.role).await;
    let role = api
        .admin()
        .update_role(api.req(pb::UpdateRoleRequest {
            role_id,
            name: args.name,
            permissions,
            description: args.description,
        }))
        .await
        .map_err(from_status)?
        .into_inner()
        .role
        .unwrap_or_default();
    print_role(client, &role)
}

pub(crate) async fn roles_delete(client: &ClientArgs, args: RoleRef) -> Result<(), Failure> {
    let api = Api::connect(client).await?;
    let role_id = api.resolve_role(&args.role).await;
    api.admin()
        .delete_role(api.req(pb::DeleteRoleRequest {
            role_id: role_id.clone(),
        }))
        .await
        .map_err(from_status)?;
    if client.json {
        return json_out(&DeletedRoleJson {
            role_id,
            deleted: true,
        });
    }
    out(&format!("Deleted role {}.\n", printable(&role_id)));
    Ok(())
}

/// One line per rule, for people: family, permissions, scope.
pub(crate) fn rule_rows(doc: &PermissionsDoc) -> Vec<Vec<String>> {
    let items = |key: &Option<String>,
                 key_prefix: &Option<String>,
                 key_b64: &Option<String>,
                 prefix_b64: &Option<String>| {
        if let Some(k) = key {
            format!("key={k:?}")
        } else if let Some(k) = key_prefix {
            format!("key_prefix={k:?}")
        } else if let Some(k) = key_b64 {
            format!("key_base64={k}")
        } else if let Some(k) = prefix_b64 {
            format!("key_prefix_base64={k}")
        } else {
            "items=*".to_owned()
        }
    };
    let name = |n: &str| {
        if n == "*" {
            "*".to_owned()
        } else {
            format!("{n:?}")
        }
    };
    let text = |field: &str, all: &str, n: &Option<String>, p: &Option<String>| match (n, p) {
        (Some(n), _) => format!("{field}={n:?}"),
        (None, Some(p)) => format!("{field}_prefix={p:?}"),
        (None, None) => format!("{all}=*"),
    };
    doc.rules
        .iter()
        .map(|rule| {
            let (family, permissions, scope) = match rule {
                RuleDoc::Account(r) => ("account", &r.permissions, String::new()),
                RuleDoc::Auth(r) => ("auth", &r.permissions, String::new()),
                RuleDoc::Resource(r) => ("resource", &r.permissions, String::new()),
                RuleDoc::Cache(r) => (
                    "cache",
                    &r.permissions,
                    format!(
                        "cache={} {}",
                        name(&r.cache),
                        items(&r.key, &r.key_prefix, &r.key_base64, &r.key_prefix_base64)
                    ),
                ),
                RuleDoc::Topic(r) => (
                    "topic",
                    &r.permissions,
                    format!(
                        "cache={} {}",
                        name(&r.cache),
                        text("topic", "topics", &r.topic, &r.topic_prefix)
                    ),
                ),
                RuleDoc::Store(r) => (
                    "store",
                    &r.permissions,
                    format!(
                        "store={} {}",
                        name(&r.store),
                        items(&r.key, &r.key_prefix, &r.key_base64, &r.key_prefix_base64)
                    ),
                ),
                RuleDoc::Function(r) => (
                    "function",
                    &r.permissions,
                    format!(
                        "cache={} {}",
                        name(&r.cache),
                        text("function", "functions", &r.function, &r.function_prefix)
                    ),
                ),
                RuleDoc::Unknown {} => {
                    return vec!["unknown".into(), "-".into(), "-".into()];
                }
            };
            vec![
                family.to_owned(),
                cell(&permissions.join(",")),
                cell(&printable(&scope)),
            ]
        })
        .collect()
}
