//! Role permission files <-> `permission_rules.PermissionSet`.

use super::*;

/// Maps permission words to enum values, naming the offending entry.
pub(crate) fn permission_values(
    field: &str,
    words: &[String],
    map: &[(&str, i32)],
) -> Result<Vec<i32>, String> {
    if words.is_empty() {
        let names: Vec<&str> = map.iter().map(|(n, _)| *n).collect();
        return Err(format!(
            "{field}: at least one permission is required ({})",
            names.join(", ")
        ));
    }
    words
        .iter()
        .enumerate()
        .map(|(i, word)| {
            map.iter()
                .find(|(name, _)| name.eq_ignore_ascii_case(word.trim()))
                .map(|(_, value)| *value)
                .ok_or_else(|| {
                    let names: Vec<&str> = map.iter().map(|(n, _)| *n).collect();
                    format!(
                        "{field}[{i}]: unknown permission {word:?}; use {}",
                        names.join(", ")
                    )
                })
        })
        .collect()
}

pub(crate) fn permission_words(values: &[i32], map: &[(&str, i32)]) -> Vec<String> {
    values
        .iter()
        .map(|v| {
            map.iter()
                .find(|(_, value)| value == v)
                .map_or_else(|| format!("unknown({v})"), |(name, _)| (*name).to_owned())
        })
        .collect()
}

pub(crate) const ACCOUNT_PERMS: [(&str, i32); 3] = [
    ("read", pr::AccountManagementPermissions::AccountRead as i32),
    (
        "write",
        pr::AccountManagementPermissions::AccountWrite as i32,
    ),
    ("list", pr::AccountManagementPermissions::AccountList as i32),
];
pub(crate) const AUTH_PERMS: [(&str, i32); 3] = [
    ("read", pr::AuthManagementPermissions::AuthRead as i32),
    ("write", pr::AuthManagementPermissions::AuthWrite as i32),
    ("list", pr::AuthManagementPermissions::AuthList as i32),
];
pub(crate) const RESOURCE_PERMS: [(&str, i32); 3] = [
    (
        "read",
        pr::ResourceManagementPermissions::ResourceRead as i32,
    ),
    (
        "write",
        pr::ResourceManagementPermissions::ResourceWrite as i32,
    ),
    (
        "list",
        pr::ResourceManagementPermissions::ResourceList as i32,
    ),
];
pub(crate) const CACHE_PERMS: [(&str, i32); 3] = [
    ("read", pr::CacheApiPermissions::CacheRead as i32),
    ("write", pr::CacheApiPermissions::CacheWrite as i32),
    ("list", pr::CacheApiPermissions::CacheList as i32),
];
pub(crate) const TOPIC_PERMS: [(&str, i32); 3] = [
    ("read", pr::TopicApiPermissions::TopicRead as i32),
    ("write", pr::TopicApiPermissions::TopicWrite as i32),
    ("list", pr::TopicApiPermissions::TopicList as i32),
];
pub(crate) const STORE_PERMS: [(&str, i32); 3] = [
    ("read", pr::StoreApiPermissions::StoreRead as i32),
    ("write", pr::StoreApiPermissions::StoreWrite as i32),
    ("list", pr::StoreApiPermissions::StoreList as i32),
];
pub(crate) const FUNCTION_PERMS: [(&str, i32); 1] =
    [("invoke", pr::FunctionApiPermissions::FunctionInvoke as i32)];

/// A name selector: `"*"` is every one (`None`), anything else one name.
pub(crate) fn named(field: &str, value: &str) -> Result<Option<String>, String> {
    match value {
        "" => Err(format!("{field}: must not be empty (use \"*\" for all)")),
        "*" => Ok(None),
        name => Ok(Some(name.to_owned())),
    }
}

/// The items of a cache or store that a rule or statement covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Items {
    All,
    Key(Vec<u8>),
    Prefix(Vec<u8>),
}

/// The item fields of a document: `key`, `key_prefix`, `key_base64`, `key_prefix_base64`.
pub(crate) type ItemFields = (
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
);

impl Items {
    /// From a document's item fields: at most one may be set; none is every item.
    pub(crate) fn parse(
        field: &str,
        key: &Option<String>,
        key_prefix: &Option<String>,
        key_base64: &Option<String>,
        key_prefix_base64: &Option<String>,
    ) -> Result<Items, String> {
        let set = [key, key_prefix, key_base64, key_prefix_base64]
            .iter()
            .filter(|f| f.is_some())
            .count();
        if set > 1 {
            return Err(format!(
                "{field}: set at most one of key, key_prefix, key_base64, key_prefix_base64"
            ));
        }
        let decode = |name: &str, value: &str| {
            STANDARD
                .decode(value)
                .map_err(|e| format!("{field}.{name}: not base64: {e}"))
        };
        Ok(match (key, key_prefix, key_base64, key_prefix_base64) {
            (Some(k), ..) => Items::Key(k.as_bytes().to_vec()),
            (_, Some(k), ..) => Items::Prefix(k.as_bytes().to_vec()),
            (_, _, Some(k), _) => Items::Key(decode("key_base64", k)?),
            (.., Some(k)) => Items::Prefix(decode("key_prefix_base64", k)?),
            _ => Items::All,
        })
    }

    /// A document's item fields: UTF-8 keys as text, any other bytes in base64.
    pub(crate) fn fields(&self) -> ItemFields {
        let (prefix, bytes) = match self {
            Items::All => return (None, None, None, None),
            Items::Key(k) => (false, k),
            Items::Prefix(k) => (true, k),
        };
        match (prefix, std::str::from_utf8(bytes)) {
            (false, Ok(text)) => (Some(text.to_owned()), None, None, None),
            (true, Ok(text)) => (None, Some(text.to_owned()), None, None),
            (false, Err(_)) => (None, None, Some(STANDARD.encode(bytes)), None),
            (true, Err(_)) => (None, None, None, Some(STANDARD.encode(bytes))),
        }
    }

    pub(crate) fn pr_cache(self) -> pr::rule::cache_rule::CacheItem {
        use pr::cache_item_selector::Kind;
        use pr::rule::cache_rule::CacheItem;
        let kind = match self {
            Items::All => return CacheItem::AllItems(pr::All {}),
            Items::Key(k) => Kind::Key(k),
            Items::Prefix(k) => Kind::KeyPrefix(k),
        };
        CacheItem::ItemSelector(pr::CacheItemSelector { kind: Some(kind) })
    }

    pub(crate) fn pr_store(self) -> pr::rule::store_rule::StoreItem {
        use pr::rule::store_rule::StoreItem;
        use pr::store_item_selector::Kind;
        let kind = match self {
            Items::All => return StoreItem::AllItems(pr::All {}),
            Items::Key(k) => Kind::Key(k),
            Items::Prefix(k) => Kind::KeyPrefix(k),
        };
        StoreItem::ItemSelector(pr::StoreItemSelector { kind: Some(kind) })
    }

    pub(crate) fn pm_cache(self) -> pm::permissions_type::cache_permissions::CacheItem {
        use pm::permissions_type::cache_item_selector::Kind;
        use pm::permissions_type::cache_permissions::CacheItem;
        let kind = match self {
            Items::All => return CacheItem::AllItems(pm::permissions_type::All {}),
            Items::Key(k) => Kind::Key(k),
            Items::Prefix(k) => Kind::KeyPrefix(k),
        };
        CacheItem::ItemSelector(pm::permissions_type::CacheItemSelector { kind: Some(kind) })
    }
}

/// The topics or functions that a rule or statement covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Names {
    All,
    Name(String),
    Prefix(String),
}

impl Names {
    /// From a name field and a prefix field: at most one may be set; none (or a name of `"*"`)
    /// is all of them.
    pub(crate) fn parse(
        field: &str,
        (name_field, name): (&str, &Option<String>),
        (prefix_field, prefix): (&str, &Option<String>),
    ) -> Result<Names, String> {
        match (name, prefix) {
            (Some(_), Some(_)) => Err(format!(
                "{field}: set {name_field} or {prefix_field}, not both"
            )),
            (Some(n), None) if n == "*" => Ok(Names::All),
            (Some(n), None) => Ok(Names::Name(n.clone())),
            (None, Some(p)) => Ok(Names::Prefix(p.clone())),
            (None, None) => Ok(Names::All),
        }
    }

    /// A document's name and prefix fields.
    pub(crate) fn fields(self) -> (Option<String>, Option<String>) {
        match self {
            Names::All => (None, None),
            Names::Name(n) => (Some(n), None),
            Names::Prefix(p) => (None, Some(p)),
        }
    }
}

pub(crate) fn pr_cache(name: String) -> pr::CacheSelector {
    pr::CacheSelector {
        kind: Some(pr::cache_selector::Kind::CacheName(name)),
    }
}

/// A cache selector's document form: the name, or `"*"` for every cache.
pub(crate) fn cache_name(selector: Option<&pr::CacheSelector>) -> String {
    match selector.and_then(|s| s.kind.as_ref()) {
        Some(pr::cache_selector::Kind::CacheName(n)) => n.clone(),
        None => "*".to_owned(),
    }
}

pub(crate) fn pm_cache(name: String) -> pm::permissions_type::CacheSelector {
    pm::permissions_type::CacheSelector {
        kind: Some(pm::permissions_type::cache_selector::Kind::CacheName(name)),
    }
}

impl PermissionsDoc {
    /// The protobuf permission set. Structure is checked here (unknown words, conflicting
    /// selectors); what the values may be is the server's to say.
    pub fn to_proto(&self) -> Result<pr::PermissionSet, String> {
        let kind = if self.super_user {
            if !self.rules.is_empty() {
                return Err("super_user: true takes no rules".into());
            }
            pr::permission_set::Kind::SuperUser(pr::SuperUserPermissions::SuperUser as i32)
        } else {
            if self.rules.is_empty() {
                return Err("rules: at least one rule is required".into());
            }
            let rules = self
                .rules
                .iter()
                .enumerate()
                .map(|(i, rule)| rule.to_proto(&format!("rules[{i}]")))
                .collect::<Result<Vec<_>, String>>()?;
            pr::permission_set::Kind::Explicit(pr::ExplicitPermissions { rules })
        };
        if !self.ip_filter.is_empty() && !self.ip_filters.is_empty() {
            return Err("set ip_filter or ip_filters, not both".into());
        }
        let filters: Vec<&Vec<String>> = if self.ip_filter.is_empty() {
            self.ip_filters.iter().collect()
        } else {
            vec![&self.ip_filter]
        };
        let conditions = filters
            .into_iter()
            .map(|ranges| pr::Condition {
                condition: Some(pr::condition::Condition::IpFilter(pr::IpFilter {
                    allowed_cidr_ranges: ranges.iter().map(|r| cidr_range(r)).collect(),
                })),
            })
            .collect();
        Ok(pr::PermissionSet {
            kind: Some(kind),
            conditions,
        })
    }

    /// The document form of a permission set the server returned.
    pub fn from_proto(set: &pr::PermissionSet) -> PermissionsDoc {
        let mut doc = PermissionsDoc::default();
        match &set.kind {
            Some(pr::permission_set::Kind::SuperUser(_)) => doc.super_user = true,
            Some(pr::permission_set::Kind::Explicit(e)) => {
                doc.rules = e.rules.iter().map(RuleDoc::from_proto).collect();
            }
            None => {}
        }
        let mut filters: Vec<Vec<String>> = set
            .conditions
            .iter()
            .filter_map(|c| c.condition.as_ref())
            .map(|pr::condition::Condition::IpFilter(f)| {
                f.allowed_cidr_ranges
                    .iter()
                    .filter_map(|r| r.range.as_ref())
                    .map(|range| match range {
                        pr::ip_filter::cidr_range::Range::Ipv4(s)
                        | pr::ip_filter::cidr_range::Range::Ipv6(s) => s.clone(),
                    })
                    .collect()
            })
            .collect();
        if filters.len() == 1 {
            doc.ip_filter = filters.remove(0);
        } else {
            doc.ip_filters = filters;
        }
        doc
    }
}

/// A CIDR range of an ip_filter: IPv6 when it has a colon (the server checks the rest).
pub(crate) fn cidr_range(range: &str) -> pr::ip_filter::CidrRange {
    use pr::ip_filter::cidr_range::Range;
    let range = range.trim().to_owned();
    pr::ip_filter::CidrRange {
        range: Some(if range.contains(':') {
            Range::Ipv6(range)
        } else {
            Range::Ipv4(range)
        }),
    }
}

impl RuleDoc {
    pub(crate) fn to_proto(&self, field: &str) -> Result<pr::Rule, String> {
        use pr::rule::Kind;
        let perms = |family: &str, words: &[String], map: &[(&str, i32)]| {
            permission_values(&format!("{field}.{family}.permissions"), words, map)
        };
        let kind = match self {
            RuleDoc::Account(r) => Kind::AccountManagementRule(pr::rule::AccountManagementRule {
                permissions: perms("account", &r.permissions, &ACCOUNT_PERMS)?,
            }),
            RuleDoc::Auth(r) => Kind::AuthManagementRule(pr::rule::AuthManagementRule {
                permissions: perms("auth", &r.permissions, &AUTH_PERMS)?,
                auth_items: Some(pr::rule::auth_management_rule::AuthItems::AllItems(
                    pr::All {},
                )),
            }),
            RuleDoc::Resource(r) => {
                Kind::ResourceManagementRule(pr::rule::ResourceManagementRule {
                    permissions: perms("resource", &r.permissions, &RESOURCE_PERMS)?,
                    resources: Some(pr::rule::resource_management_rule::Resources::AllResources(
                        pr::All {},
                    )),
                })
            }
            RuleDoc::Cache(r) => Kind::CacheRule(r.to_proto(&format!("{field}.cache"))?),
            RuleDoc::Topic(r) => Kind::TopicRule(r.to_proto(&format!("{field}.topic"))?),
            RuleDoc::Store(r) => Kind::StorageRule(r.to_proto(&format!("{field}.store"))?),
            RuleDoc::Function(r) => Kind::FunctionRule(r.to_proto(&format!("{field}.function"))?),
            RuleDoc::Unknown {} => return Err(format!("{field}: unknown rule type")),
        };
        Ok(pr::Rule { kind: Some(kind) })
    }

    pub(crate) fn from_proto(rule: &pr::Rule) -> RuleDoc {
        use pr::rule::Kind;
        let management = |values: &[i32], map: &[(&str, i32)]| ManagementDoc {
            permissions: permission_words(values, map),
        };
        match &rule.kind {
            None => RuleDoc::Unknown {},
            Some(Kind::AccountManagementRule(r)) => {
                RuleDoc::Account(management(&r.permissions, &ACCOUNT_PERMS))
            }
            Some(Kind::AuthManagementRule(r)) => {
                RuleDoc::Auth(management(&r.permissions, &AUTH_PERMS))
            }
            Some(Kind::ResourceManagementRule(r)) => {
                RuleDoc::Resource(management(&r.permissions, &RESOURCE_PERMS))
            }
            Some(Kind::CacheRule(r)) => RuleDoc::Cache(CacheRuleDoc::from_proto(r)),
            Some(Kind::TopicRule(r)) => RuleDoc::Topic(TopicRuleDoc::from_proto(r)),
            Some(Kind::StorageRule(r)) => RuleDoc::Store(StoreRuleDoc::from_proto(r)),
            Some(Kind::FunctionRule(r)) => RuleDoc::Function(FunctionRuleDoc::from_proto(r)),
        }
    }
}

impl CacheRuleDoc {
    pub(crate) fn to_proto(&self, f: &str) -> Result<pr::rule::CacheRule, String> {
        use pr::rule::cache_rule::Cache;
        let items = Items::parse(
            f,
            &self.key,
            &self.key_prefix,
            &self.key_base64,
            &self.key_prefix_base64,
        )?;
        Ok(pr::rule::CacheRule {
            permissions: permission_values(
                &format!("{f}.permissions"),
                &self.permissions,
                &CACHE_PERMS,
            )?,
            cache: Some(match named(&format!("{f}.cache"), &self.cache)? {
                None => Cache::AllCaches(pr::All {}),
                Some(name) => Cache::CacheSelector(pr_cache(name)),
            }),
            cache_item: Some(items.pr_cache()),
        })
    }

    pub(crate) fn from_proto(r: &pr::rule::CacheRule) -> CacheRuleDoc {
        use pr::cache_item_selector::Kind;
        use pr::rule::cache_rule::{Cache, CacheItem};
        let items = match &r.cache_item {
            Some(CacheItem::ItemSelector(s)) => match &s.kind {
                Some(Kind::Key(k)) => Items::Key(k.clone()),
                Some(Kind::KeyPrefix(k)) => Items::Prefix(k.clone()),
                None => Items::All,
            },
            _ => Items::All,
        };
        let (key, key_prefix, key_base64, key_prefix_base64) = items.fields();
        CacheRuleDoc {
            permissions: permission_words(&r.permissions, &CACHE_PERMS),
            cache: cache_name(match &r.cache {
                Some(Cache::CacheSelector(s)) => Some(s),
                _ => None,
            }),
            key,
            key_prefix,
            key_base64,
            key_prefix_base64,
        }
    }
}

impl StoreRuleDoc {
    pub(crate) fn to_proto(&self, f: &str) -> Result<pr::rule::StoreRule, String> {
        use pr::rule::store_rule::Store;
        let items = Items::parse(
            f,
            &self.key,
            &self.key_prefix,
            &self.key_base64,
            &self.key_prefix_base64,
        )?;
        Ok(pr::rule::StoreRule {
            permissions: permission_values(
                &format!("{f}.permissions"),
                &self.permissions,
                &STORE_PERMS,
            )?,
            store: Some(match named(&format!("{f}.store"), &self.store)? {
                None => Store::AllStores(pr::All {}),
                Some(name) => Store::StoreSelector(pr::StoreSelector {
                    kind: Some(pr::store_selector::Kind::StoreName(name)),
                }),
            }),
            store_item: Some(items.pr_store()),
        })
    }

    pub(crate) fn from_proto(r: &pr::rule::StoreRule) -> StoreRuleDoc {
        use pr::rule::store_rule::{Store, StoreItem};
        use pr::store_item_selector::Kind;
        let items = match &r.store_item {
            Some(StoreItem::ItemSelector(s)) => match &s.kind {
                Some(Kind::Key(k)) => Items::Key(k.clone()),
                Some(Kind::KeyPrefix(k)) => Items::Prefix(k.clone()),
                None => Items::All,
            },
            _ => Items::All,
        };
        let (key, key_prefix, key_base64, key_prefix_base64) = items.fields();
        let store = match &r.store {
            Some(Store::StoreSelector(pr::StoreSelector {
                kind: Some(pr::store_selector::Kind::StoreName(n)),
            })) => n.clone(),
            _ => "*".to_owned(),
        };
        StoreRuleDoc {
            permissions: permission_words(&r.permissions, &STORE_PERMS),
            store,
            key,
            key_prefix,
            key_base64,
            key_prefix_base64,
        }
    }
}

impl TopicRuleDoc {
    pub(crate) fn to_proto(&self, f: &str) -> Result<pr::rule::TopicRule, String> {
        use pr::rule::topic_rule::{Cache, Topic};
        use pr::topic_selector::Kind;
        let topics = Names::parse(
            f,
            ("topic", &self.topic),
            ("topic_prefix", &self.topic_prefix),
        )?;
        Ok(pr::rule::TopicRule {
            permissions: permission_values(
                &format!("{f}.permissions"),
                &self.permissions,
                &TOPIC_PERMS,
            )?,
            cache: Some(match named(&format!("{f}.cache"), &self.cache)? {
                None => Cache::AllCaches(pr::All {}),
                Some(name) => Cache::CacheSelector(pr_cache(name)),
            }),
            topic: Some(match topics {
                Names::All => Topic::AllTopics(pr::All {}),
                Names::Name(n) => Topic::TopicSelector(pr::TopicSelector {
                    kind: Some(Kind::TopicName(n)),
                }),
                Names::Prefix(p) => Topic::TopicSelector(pr::TopicSelector {
                    kind: Some(Kind::TopicNamePrefix(p)),
                }),
            }),
        })
    }

    pub(crate) fn from_proto(r: &pr::rule::TopicRule) -> TopicRuleDoc {
        use pr::rule::topic_rule::{Cache, Topic};
        use pr::topic_selector::Kind;
        let topics = match &r.topic {
            Some(Topic::TopicSelector(s)) => match &s.kind {
                Some(Kind::TopicName(n)) => Names::Name(n.clone()),
                Some(Kind::TopicNamePrefix(p)) => Names::Prefix(p.clone()),
                None => Names::All,
            },
            _ => Names::All,
        };
        let (topic, topic_prefix) = topics.fields();
        TopicRuleDoc {
            permissions: permission_words(&r.permissions, &TOPIC_PERMS),
            cache: cache_name(match &r.cache {
                Some(Cache::CacheSelector(s)) => Some(s),
                _ => None,
            }),
            topic,
            topic_prefix,
        }
    }
}

impl FunctionRuleDoc {
    pub(crate) fn to_proto(&self, f: &str) -> Result<pr::rule::FunctionRule, String> {
        use pr::function_selector::Kind;
        use pr::rule::function_rule::{Cache, Function};
        let functions = Names::parse(
            f,
            ("function", &self.function),
            ("function_prefix", &self.function_prefix),
        )?;
        Ok(pr::rule::FunctionRule {
            permissions: permission_values(
                &format!("{f}.permissions"),
                &self.permissions,
                &FUNCTION_PERMS,
            )?,
            cache: Some(match named(&format!("{f}.cache"), &self.cache)? {
                None => Cache::AllCaches(pr::All {}),
                Some(name) => Cache::CacheSelector(pr_cache(name)),
            }),
            function: Some(match functions {
                Names::All => Function::AllFunctions(pr::All {}),
                Names::Name(n) => Function::FunctionSelector(pr::FunctionSelector {
                    kind: Some(Kind::FunctionName(n)),
                }),
                Names::Prefix(p) => Function::FunctionSelector(pr::FunctionSelector {
                    kind: Some(Kind::FunctionPrefix(p)),
                }),
            }),
        })
    }

    pub(crate) fn from_proto(r: &pr::rule::FunctionRule) -> FunctionRuleDoc {
        use pr::function_selector::Kind;
        use pr::rule::function_rule::{Cache, Function};
        let functions = match &r.function {
            Some(Function::FunctionSelector(s)) => match &s.kind {
                Some(Kind::FunctionName(n)) => Names::Name(n.clone()),
                Some(Kind::FunctionPrefix(p)) => Names::Prefix(p.clone()),
                None => Names::All,
            },
            _ => Names::All,
        };
        let (function, function_prefix) = functions.fields();
        FunctionRuleDoc {
            permissions: permission_words(&r.permissions, &FUNCTION_PERMS),
            cache: cache_name(match &r.cache {
                Some(Cache::CacheSelector(s)) => Some(s),
                _ => None,
            }),
            function,
            function_prefix,
        }
    }
}
