//! Conversion between protobuf permission messages and the domain model, in one place.
//!
//! Everything a caller sends is validated here, and every refusal is an [`Invalid`] naming the
//! field (as a path into the request) and the rule it broke. Handlers never look inside
//! permission messages themselves.

use ipnet::IpNet;

use crate::policy::{BytesSel, Condition, Grant, NameSel, Ops, PermissionSet, Rule, TextSel};
use crate::proto::permission_messages as pm;
use crate::proto::permission_rules as pr;

mod statements;
mod to;

pub use statements::statements_from_proto;
pub use to::permission_set_to_proto;

/// A request field that breaks a rule. Rendered as `field: rule`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {rule}")]
pub struct Invalid {
    pub field: String,
    pub rule: String,
}

impl Invalid {
    pub fn new(field: impl Into<String>, rule: impl Into<String>) -> Self {
        Invalid {
            field: field.into(),
            rule: rule.into(),
        }
    }
}

/// Longest cache, store, topic or function name accepted in a selector.
pub const MAX_NAME_LEN: usize = 255;
/// Longest key or key prefix accepted in a selector, in bytes.
pub const MAX_KEY_LEN: usize = 1024;
/// Most rules in one role's permission set.
pub const MAX_RULES: usize = 100;
/// Most CIDR ranges in one ip_filter.
pub const MAX_CIDR_RANGES: usize = 64;
/// Most statements in one disposable token or SDK-made key.
pub const MAX_STATEMENTS: usize = 20;

// ---------------------------------------------------------------------------------------------
// permission_rules.PermissionSet (roles) <-> domain
// ---------------------------------------------------------------------------------------------

/// Converts a role permission set. `allow_super_user` is false for custom roles.
pub fn permission_set_from_proto(
    field: &str,
    set: Option<&pr::PermissionSet>,
    allow_super_user: bool,
) -> Result<PermissionSet, Invalid> {
    let set = set.ok_or_else(|| Invalid::new(field, "required"))?;
    let grant = match &set.kind {
        None => {
            return Err(Invalid::new(
                format!("{field}.kind"),
                "set super_user or explicit",
            ))
        }
        Some(pr::permission_set::Kind::SuperUser(value)) => {
            if pr::SuperUserPermissions::try_from(*value).is_err() {
                return Err(Invalid::new(
                    format!("{field}.super_user"),
                    format!("unknown value {value}"),
                ));
            }
            if !allow_super_user {
                return Err(Invalid::new(
                    format!("{field}.super_user"),
                    "custom roles take explicit rules only; super-user is the owner role",
                ));
            }
            Grant::SuperUser
        }
        Some(pr::permission_set::Kind::Explicit(explicit)) => {
            let field = format!("{field}.explicit.rules");
            if explicit.rules.is_empty() {
                return Err(Invalid::new(field, "at least one rule is required"));
            }
            if explicit.rules.len() > MAX_RULES {
                return Err(Invalid::new(
                    field,
                    format!("at most {MAX_RULES} rules are allowed"),
                ));
            }
            let rules = explicit
                .rules
                .iter()
                .enumerate()
                .map(|(i, rule)| rule_from_proto(&format!("{field}[{i}]"), rule))
                .collect::<Result<Vec<_>, _>>()?;
            Grant::Rules(rules)
        }
    };
    let conditions = set
        .conditions
        .iter()
        .enumerate()
        .map(|(i, c)| condition_from_proto(&format!("{field}.conditions[{i}]"), c))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(PermissionSet { grant, conditions })
}

fn rule_from_proto(field: &str, rule: &pr::Rule) -> Result<Rule, Invalid> {
    use pr::rule::Kind;
    let kind = rule.kind.as_ref().ok_or_else(|| {
        Invalid::new(
            format!("{field}.kind"),
            "unknown or missing rule type (account_management_rule, auth_management_rule, \
             resource_management_rule, cache_rule, topic_rule, storage_rule, function_rule)",
        )
    })?;
    Ok(match kind {
        Kind::AccountManagementRule(r) => {
            let f = format!("{field}.account_management_rule.permissions");
            Rule::Account(family_ops(
                &f,
                &r.permissions,
                [
                    pr::AccountManagementPermissions::AccountRead as i32,
                    pr::AccountManagementPermissions::AccountWrite as i32,
                    pr::AccountManagementPermissions::AccountList as i32,
                ],
            )?)
        }
        Kind::AuthManagementRule(r) => {
            let f = format!("{field}.auth_management_rule.permissions");
            Rule::Auth(family_ops(
                &f,
                &r.permissions,
                [
                    pr::AuthManagementPermissions::AuthRead as i32,
                    pr::AuthManagementPermissions::AuthWrite as i32,
                    pr::AuthManagementPermissions::AuthList as i32,
                ],
            )?)
        }
        Kind::ResourceManagementRule(r) => {
            let f = format!("{field}.resource_management_rule.permissions");
            Rule::Resource(family_ops(
                &f,
                &r.permissions,
                [
                    pr::ResourceManagementPermissions::ResourceRead as i32,
                    pr::ResourceManagementPermissions::ResourceWrite as i32,
                    pr::ResourceManagementPermissions::ResourceList as i32,
                ],
            )?)
        }
        Kind::CacheRule(r) => {
            use pr::rule::cache_rule::{Cache, CacheItem};
            let f = format!("{field}.cache_rule");
            let ops = family_ops(
                &format!("{f}.permissions"),
                &r.permissions,
                [
                    pr::CacheApiPermissions::CacheRead as i32,
                    pr::CacheApiPermissions::CacheWrite as i32,
                    pr::CacheApiPermissions::CacheList as i32,
                ],
            )?;
            let cache = cache_sel(
                &f,
                match &r.cache {
                    None => Pick::Missing,
                    Some(Cache::AllCaches(_)) => Pick::All,
                    Some(Cache::CacheSelector(s)) => Pick::One(pr_cache_name(s)),
                },
            )?;
            let item = item_sel(
                &f,
                "cache_item",
                match &r.cache_item {
                    None => Pick::Missing,
                    Some(CacheItem::AllItems(_)) => Pick::All,
                    Some(CacheItem::ItemSelector(s)) => {
                        Pick::One(s.kind.as_ref().map(|k| match k {
                            pr::cache_item_selector::Kind::Key(k) => KeyKind::Key(k),
                            pr::cache_item_selector::Kind::KeyPrefix(k) => KeyKind::Prefix(k),
                        }))
                    }
                },
            )?;
            list_needs_all(&f, ops, cache == NameSel::All && item == BytesSel::All)?;
            Rule::Cache { ops, cache, item }
        }
        Kind::TopicRule(r) => {
            use pr::rule::topic_rule::{Cache, Topic};
            let f = format!("{field}.topic_rule");
            let ops = family_ops(
                &format!("{f}.permissions"),
                &r.permissions,
                [
                    pr::TopicApiPermissions::TopicRead as i32,
                    pr::TopicApiPermissions::TopicWrite as i32,
                    pr::TopicApiPermissions::TopicList as i32,
                ],
            )?;
            let cache = cache_sel(
                &f,
                match &r.cache {
                    None => Pick::Missing,
                    Some(Cache::AllCaches(_)) => Pick::All,
                    Some(Cache::CacheSelector(s)) => Pick::One(pr_cache_name(s)),
                },
            )?;
            let topic = text_sel(
                &f,
                &TOPIC,
                match &r.topic {
                    None => Pick::Missing,
                    Some(Topic::AllTopics(_)) => Pick::All,
                    Some(Topic::TopicSelector(s)) => Pick::One(s.kind.as_ref().map(|k| match k {
                        pr::topic_selector::Kind::TopicName(n) => TextKind::Name(n),
                        pr::topic_selector::Kind::TopicNamePrefix(n) => TextKind::Prefix(n),
                    })),
                },
            )?;
            list_needs_all(&f, ops, cache == NameSel::All && topic == TextSel::All)?;
            Rule::Topic { ops, cache, topic }
        }
        Kind::StorageRule(r) => {
            use pr::rule::store_rule::{Store, StoreItem};
            let f = format!("{field}.storage_rule");
            let ops = family_ops(
                &format!("{f}.permissions"),
                &r.permissions,
                [
                    pr::StoreApiPermissions::StoreRead as i32,
                    pr::StoreApiPermissions::StoreWrite as i32,
                    pr::StoreApiPermissions::StoreList as i32,
                ],
            )?;
            let store = name_sel(
                &f,
                &STORE,
                match &r.store {
                    None => Pick::Missing,
                    Some(Store::AllStores(_)) => Pick::All,
                    Some(Store::StoreSelector(s)) => Pick::One(s.kind.as_ref().map(|k| match k {
                        pr::store_selector::Kind::StoreName(n) => n.as_str(),
                    })),
                },
            )?;
            let item = item_sel(
                &f,
                "store_item",
                match &r.store_item {
                    None => Pick::Missing,
                    Some(StoreItem::AllItems(_)) => Pick::All,
                    Some(StoreItem::ItemSelector(s)) => {
                        Pick::One(s.kind.as_ref().map(|k| match k {
                            pr::store_item_selector::Kind::Key(k) => KeyKind::Key(k),
                            pr::store_item_selector::Kind::KeyPrefix(k) => KeyKind::Prefix(k),
                        }))
                    }
                },
            )?;
            list_needs_all(&f, ops, store == NameSel::All && item == BytesSel::All)?;
            Rule::Store { ops, store, item }
        }
        Kind::FunctionRule(r) => {
            use pr::rule::function_rule::{Cache, Function};
            let f = format!("{field}.function_rule");
            let ops = ops_from(&format!("{f}.permissions"), &r.permissions, |v| {
                pr::FunctionApiPermissions::try_from(v)
                    .ok()
                    .map(|pr::FunctionApiPermissions::FunctionInvoke| Ops::INVOKE)
            })?;
            let cache = cache_sel(
                &f,
                match &r.cache {
                    None => Pick::Missing,
                    Some(Cache::AllCaches(_)) => Pick::All,
                    Some(Cache::CacheSelector(s)) => Pick::One(pr_cache_name(s)),
                },
            )?;
            let function = text_sel(
                &f,
                &RULE_FUNCTION,
                match &r.function {
                    None => Pick::Missing,
                    Some(Function::AllFunctions(_)) => Pick::All,
                    Some(Function::FunctionSelector(s)) => {
                        Pick::One(s.kind.as_ref().map(|k| match k {
                            pr::function_selector::Kind::FunctionName(n) => TextKind::Name(n),
                            pr::function_selector::Kind::FunctionPrefix(n) => TextKind::Prefix(n),
                        }))
                    }
                },
            )?;
            Rule::Function {
                ops,
                cache,
                function,
            }
        }
    })
}

/// A selector oneof as the request carried it: missing, "all", or one specific selector.
enum Pick<T> {
    Missing,
    All,
    One(T),
}

/// Names of a selector oneof's fields, for messages.
struct SelectorNames {
    oneof: &'static str,
    all: &'static str,
    selector: &'static str,
    name: &'static str,
    prefix: &'static str,
}

const CACHE: SelectorNames = SelectorNames {
    oneof: "cache",
    all: "all_caches",
    selector: "cache_selector",
    name: "cache_name",
    prefix: "",
};
const STORE: SelectorNames = SelectorNames {
    oneof: "store",
    all: "all_stores",
    selector: "store_selector",
    name: "store_name",
    prefix: "",
};
const TOPIC: SelectorNames = SelectorNames {
    oneof: "topic",
    all: "all_topics",
    selector: "topic_selector",
    name: "topic_name",
    prefix: "topic_name_prefix",
};
const RULE_FUNCTION: SelectorNames = SelectorNames {
    oneof: "function",
    all: "all_functions",
    selector: "function_selector",
    name: "function_name",
    prefix: "function_prefix",
};
const STATEMENT_FUNCTION: SelectorNames = SelectorNames {
    prefix: "function_name_prefix",
    ..RULE_FUNCTION
};

fn missing(f: &str, n: &SelectorNames) -> Invalid {
    Invalid::new(
        format!("{f}.{}", n.oneof),
        format!("set {} or {}", n.all, n.selector),
    )
}

fn empty(f: &str, n: &SelectorNames) -> Invalid {
    let fields = if n.prefix.is_empty() {
        n.name.to_owned()
    } else {
        format!("{} or {}", n.name, n.prefix)
    };
    Invalid::new(
        format!("{f}.{}", n.selector),
        format!("empty selector: set {fields}"),
    )
}

/// A cache or store selector: all, or one name.
fn name_sel(f: &str, n: &SelectorNames, pick: Pick<Option<&str>>) -> Result<NameSel, Invalid> {
    match pick {
        Pick::Missing => Err(missing(f, n)),
        Pick::All => Ok(NameSel::All),
        Pick::One(None) => Err(empty(f, n)),
        Pick::One(Some(v)) => Ok(NameSel::Name(exact_name(f, n, v)?)),
    }
}

fn cache_sel(f: &str, pick: Pick<Option<&str>>) -> Result<NameSel, Invalid> {
    name_sel(f, &CACHE, pick)
}

fn pm_cache_name(s: &pm::permissions_type::CacheSelector) -> Option<&str> {
    s.kind
        .as_ref()
        .map(|pm::permissions_type::cache_selector::Kind::CacheName(n)| n.as_str())
}

fn pr_cache_name(s: &pr::CacheSelector) -> Option<&str> {
    s.kind
        .as_ref()
        .map(|pr::cache_selector::Kind::CacheName(n)| n.as_str())
}

/// One item selector's content, whichever message carried it.
enum KeyKind<'a> {
    Key(&'a [u8]),
    Prefix(&'a [u8]),
}

/// An item selector: all items, one key, or a key prefix.
fn item_sel(f: &str, oneof: &str, pick: Pick<Option<KeyKind<'_>>>) -> Result<BytesSel, Invalid> {
    match pick {
        Pick::Missing => Err(Invalid::new(
            format!("{f}.{oneof}"),
            "set all_items or item_selector",
        )),
        Pick::All => Ok(BytesSel::All),
        Pick::One(None) => Err(Invalid::new(
            format!("{f}.item_selector"),
            "empty selector: set key or key_prefix",
        )),
        Pick::One(Some(KeyKind::Key(k))) => {
            Ok(BytesSel::Key(key(&format!("{f}.item_selector.key"), k)?))
        }
        Pick::One(Some(KeyKind::Prefix(k))) => Ok(BytesSel::Prefix(key(
            &format!("{f}.item_selector.key_prefix"),
            k,
        )?)),
    }
}

/// One name selector's content, whichever message carried it.
enum TextKind<'a> {
    Name(&'a str),
    Prefix(&'a str),
}

/// A topic or function selector: all, one name, or a name prefix.
fn text_sel(
    f: &str,
    n: &SelectorNames,
    pick: Pick<Option<TextKind<'_>>>,
) -> Result<TextSel, Invalid> {
    match pick {
        Pick::Missing => Err(missing(f, n)),
        Pick::All => Ok(TextSel::All),
        Pick::One(None) => Err(empty(f, n)),
        Pick::One(Some(TextKind::Name(v))) => Ok(TextSel::Name(exact_name(f, n, v)?)),
        Pick::One(Some(TextKind::Prefix(v))) => Ok(TextSel::Prefix(name(
            &format!("{f}.{}.{}", n.selector, n.prefix),
            v,
        )?)),
    }
}

/// Collects enum values into an operation set, refusing unknown values and empty lists.
/// The operations of a family whose permission values are read, write and list, in that order.
fn family_ops(field: &str, values: &[i32], [read, write, list]: [i32; 3]) -> Result<Ops, Invalid> {
    ops_from(field, values, |v| {
        [(read, Ops::READ), (write, Ops::WRITE), (list, Ops::LIST)]
            .into_iter()
            .find_map(|(value, op)| (value == v).then_some(op))
    })
}

fn ops_from(field: &str, values: &[i32], map: impl Fn(i32) -> Option<Ops>) -> Result<Ops, Invalid> {
    if values.is_empty() {
        return Err(Invalid::new(field, "at least one permission is required"));
    }
    values
        .iter()
        .enumerate()
        .try_fold(Ops::empty(), |acc, (i, v)| {
            map(*v).map(|op| acc.union(op)).ok_or_else(|| {
                Invalid::new(
                    format!("{field}[{i}]"),
                    format!("unknown permission value {v}"),
                )
            })
        })
}

/// A list permission cannot be restricted by a selector (upstream contract), so a rule that
/// lists must select everything; refusing it beats silently widening it.
fn list_needs_all(field: &str, ops: Ops, selects_all: bool) -> Result<(), Invalid> {
    if ops.contains(Ops::LIST) && !selects_all {
        return Err(Invalid::new(
            format!("{field}.permissions"),
            "a list permission cannot be restricted by a selector: use all selectors, or put the list permission in a rule of its own",
        ));
    }
    Ok(())
}

fn name(field: &str, value: &str) -> Result<String, Invalid> {
    if value.is_empty() {
        return Err(Invalid::new(field, "must not be empty"));
    }
    if value.len() > MAX_NAME_LEN {
        return Err(Invalid::new(field, format!("at most {MAX_NAME_LEN} bytes")));
    }
    if value.chars().any(char::is_control) {
        return Err(Invalid::new(field, "must not contain control characters"));
    }
    Ok(value.to_owned())
}

/// The name of a name selector. Never `*`: operators' tools (the CLI's permission files and
/// `roles list`) read `*` as every one, so a role naming a cache `*` would widen to every cache
/// on its way back through them.
fn exact_name(f: &str, n: &SelectorNames, value: &str) -> Result<String, Invalid> {
    let field = format!("{f}.{}.{}", n.selector, n.name);
    if value == "*" {
        return Err(Invalid::new(
            field,
            format!("\"*\" is not a name: set {} to select every one", n.all),
        ));
    }
    name(&field, value)
}

fn key(field: &str, value: &[u8]) -> Result<Vec<u8>, Invalid> {
    if value.is_empty() {
        return Err(Invalid::new(
            field,
            "must not be empty (use all_items for every item)",
        ));
    }
    if value.len() > MAX_KEY_LEN {
        return Err(Invalid::new(field, format!("at most {MAX_KEY_LEN} bytes")));
    }
    Ok(value.to_vec())
}

fn condition_from_proto(field: &str, c: &pr::Condition) -> Result<Condition, Invalid> {
    match &c.condition {
        None => Err(Invalid::new(
            format!("{field}.condition"),
            "unknown or missing condition type (ip_filter)",
        )),
        Some(pr::condition::Condition::IpFilter(filter)) => {
            let f = format!("{field}.ip_filter.allowed_cidr_ranges");
            if filter.allowed_cidr_ranges.is_empty() {
                return Err(Invalid::new(f, "at least one range is required"));
            }
            if filter.allowed_cidr_ranges.len() > MAX_CIDR_RANGES {
                return Err(Invalid::new(f, format!("at most {MAX_CIDR_RANGES} ranges")));
            }
            let ranges = filter
                .allowed_cidr_ranges
                .iter()
                .enumerate()
                .map(|(i, r)| cidr_from_proto(&format!("{f}[{i}]"), r))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(Condition::IpFilter(ranges))
        }
    }
}

fn cidr_from_proto(field: &str, r: &pr::ip_filter::CidrRange) -> Result<IpNet, Invalid> {
    use pr::ip_filter::cidr_range::Range;
    match &r.range {
        None => Err(Invalid::new(format!("{field}.range"), "set ipv4 or ipv6")),
        Some(Range::Ipv4(s)) => match parse_cidr(s) {
            Some(net @ IpNet::V4(_)) => Ok(net),
            _ => Err(Invalid::new(
                format!("{field}.ipv4"),
                "not an IPv4 CIDR range (like 10.0.0.0/8)",
            )),
        },
        Some(Range::Ipv6(s)) => match parse_cidr(s) {
            Some(net @ IpNet::V6(_)) => Ok(net),
            _ => Err(Invalid::new(
                format!("{field}.ipv6"),
                "not an IPv6 CIDR range (like 2001:db8::/32)",
            )),
        },
    }
}

/// Parses `a.b.c.d/n`, `x::y/n`, or a bare address (a single host). Host bits are cleared so
/// `10.1.2.3/8` means `10.0.0.0/8`.
fn parse_cidr(s: &str) -> Option<IpNet> {
    let s = s.trim();
    if let Ok(net) = s.parse::<IpNet>() {
        return Some(net.trunc());
    }
    s.parse::<std::net::IpAddr>().ok().map(IpNet::from)
}
