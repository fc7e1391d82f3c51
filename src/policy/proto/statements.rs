//! `permission_messages.Permissions` (disposable tokens, SDK-made keys) -> domain.

use super::*;

/// Converts the statements of a token or SDK-made key request.
///
/// Role mapping (documented in docs/concepts.md, "Token vending rules"):
/// * cache `CacheReadWrite` -> read + write (so conditional writes, ACTION_CACHE_READ_WRITE);
///   `CacheReadOnly` -> read; `CacheWriteOnly` -> write only (no conditional writes).
/// * topic `TopicReadWrite` -> subscribe + publish; `TopicReadOnly` -> subscribe;
///   `TopicWriteOnly` -> publish.
/// * function `FunctionInvoke` -> invoke.
pub fn statements_from_proto(
    field: &str,
    permissions: Option<&pm::Permissions>,
) -> Result<Vec<Rule>, Invalid> {
    let permissions = permissions.ok_or_else(|| Invalid::new(field, "required"))?;
    let explicit = match &permissions.kind {
        None => {
            return Err(Invalid::new(
                format!("{field}.kind"),
                "set explicit permissions",
            ))
        }
        Some(pm::permissions::Kind::SuperUser(_)) => {
            return Err(Invalid::new(
                format!("{field}.super_user"),
                "super-user cannot be delegated: list explicit permissions",
            ))
        }
        Some(pm::permissions::Kind::Explicit(e)) => e,
    };
    let field = format!("{field}.explicit.permissions");
    if explicit.permissions.is_empty() {
        return Err(Invalid::new(
            field,
            "at least one permission statement is required",
        ));
    }
    if explicit.permissions.len() > MAX_STATEMENTS {
        return Err(Invalid::new(
            field,
            format!("at most {MAX_STATEMENTS} permission statements are allowed"),
        ));
    }
    explicit
        .permissions
        .iter()
        .enumerate()
        .map(|(i, s)| statement_from_proto(&format!("{field}[{i}]"), s))
        .collect()
}

fn statement_from_proto(field: &str, s: &pm::PermissionsType) -> Result<Rule, Invalid> {
    use pm::permissions_type as pt;
    let kind = s.kind.as_ref().ok_or_else(|| {
        Invalid::new(
            format!("{field}.kind"),
            "unknown or missing statement type (cache_permissions, topic_permissions, function_permissions)",
        )
    })?;
    Ok(match kind {
        pt::Kind::CachePermissions(c) => {
            use pt::cache_permissions::{Cache, CacheItem};
            let f = format!("{field}.cache_permissions");
            let ops = match pm::CacheRole::try_from(c.role) {
                Ok(pm::CacheRole::CacheReadWrite) => Ops::READ.union(Ops::WRITE),
                Ok(pm::CacheRole::CacheReadOnly) => Ops::READ,
                Ok(pm::CacheRole::CacheWriteOnly) => Ops::WRITE,
                Ok(pm::CacheRole::CachePermitNone) | Err(_) => {
                    return Err(Invalid::new(
                        format!("{f}.role"),
                        "set CacheReadWrite, CacheReadOnly or CacheWriteOnly",
                    ))
                }
            };
            let cache = cache_sel(
                &f,
                match &c.cache {
                    None => Pick::Missing,
                    Some(Cache::AllCaches(_)) => Pick::All,
                    Some(Cache::CacheSelector(sel)) => Pick::One(pm_cache_name(sel)),
                },
            )?;
            let item = item_sel(
                &f,
                "cache_item",
                match &c.cache_item {
                    // The official SDKs send no item selector for whole-cache scopes: upstream
                    // semantics are "all items".
                    None | Some(CacheItem::AllItems(_)) => Pick::All,
                    Some(CacheItem::ItemSelector(sel)) => {
                        Pick::One(sel.kind.as_ref().map(|k| match k {
                            pt::cache_item_selector::Kind::Key(k) => KeyKind::Key(k),
                            pt::cache_item_selector::Kind::KeyPrefix(k) => KeyKind::Prefix(k),
                        }))
                    }
                },
            )?;
            Rule::Cache { ops, cache, item }
        }
        pt::Kind::TopicPermissions(t) => {
            use pt::topic_permissions::{Cache, Topic};
            let f = format!("{field}.topic_permissions");
            let ops = match pm::TopicRole::try_from(t.role) {
                Ok(pm::TopicRole::TopicReadWrite) => Ops::READ.union(Ops::WRITE),
                Ok(pm::TopicRole::TopicReadOnly) => Ops::READ,
                Ok(pm::TopicRole::TopicWriteOnly) => Ops::WRITE,
                Ok(pm::TopicRole::TopicPermitNone) | Err(_) => {
                    return Err(Invalid::new(
                        format!("{f}.role"),
                        "set TopicReadWrite, TopicReadOnly or TopicWriteOnly",
                    ))
                }
            };
            let cache = cache_sel(
                &f,
                match &t.cache {
                    None => Pick::Missing,
                    Some(Cache::AllCaches(_)) => Pick::All,
                    Some(Cache::CacheSelector(sel)) => Pick::One(pm_cache_name(sel)),
                },
            )?;
            let topic = text_sel(
                &f,
                &TOPIC,
                match &t.topic {
                    None => Pick::Missing,
                    Some(Topic::AllTopics(_)) => Pick::All,
                    Some(Topic::TopicSelector(sel)) => {
                        Pick::One(sel.kind.as_ref().map(|k| match k {
                            pt::topic_selector::Kind::TopicName(n) => TextKind::Name(n),
                            pt::topic_selector::Kind::TopicNamePrefix(n) => TextKind::Prefix(n),
                        }))
                    }
                },
            )?;
            Rule::Topic { ops, cache, topic }
        }
        pt::Kind::FunctionPermissions(p) => {
            use pt::function_permissions::{Cache, Function};
            let f = format!("{field}.function_permissions");
            match pm::FunctionRole::try_from(p.role) {
                Ok(pm::FunctionRole::FunctionInvoke) => {}
                Ok(pm::FunctionRole::FunctionPermitNone) | Err(_) => {
                    return Err(Invalid::new(format!("{f}.role"), "set FunctionInvoke"))
                }
            }
            let cache = cache_sel(
                &f,
                match &p.cache {
                    None => Pick::Missing,
                    Some(Cache::AllCaches(_)) => Pick::All,
                    Some(Cache::CacheSelector(sel)) => Pick::One(pm_cache_name(sel)),
                },
            )?;
            let function = text_sel(
                &f,
                &STATEMENT_FUNCTION,
                match &p.function {
                    None => Pick::Missing,
                    Some(Function::AllFunctions(_)) => Pick::All,
                    Some(Function::FunctionSelector(sel)) => {
                        Pick::One(sel.kind.as_ref().map(|k| match k {
                            pt::function_selector::Kind::FunctionName(n) => TextKind::Name(n),
                            pt::function_selector::Kind::FunctionNamePrefix(n) => {
                                TextKind::Prefix(n)
                            }
                        }))
                    }
                },
            )?;
            Rule::Function {
                ops: Ops::INVOKE,
                cache,
                function,
            }
        }
    })
}
