//! Domain -> protobuf: a permission set as it is listed back to callers.

use super::*;

/// Converts a domain permission set back to its protobuf form (for listing roles).
pub fn permission_set_to_proto(set: &PermissionSet) -> pr::PermissionSet {
    let kind = match &set.grant {
        Grant::SuperUser => {
            pr::permission_set::Kind::SuperUser(pr::SuperUserPermissions::SuperUser as i32)
        }
        Grant::Rules(rules) => pr::permission_set::Kind::Explicit(pr::ExplicitPermissions {
            rules: rules.iter().map(rule_to_proto).collect(),
        }),
    };
    pr::PermissionSet {
        kind: Some(kind),
        conditions: set
            .conditions
            .iter()
            .map(|Condition::IpFilter(ranges)| pr::Condition {
                condition: Some(pr::condition::Condition::IpFilter(pr::IpFilter {
                    allowed_cidr_ranges: ranges
                        .iter()
                        .map(|net| pr::ip_filter::CidrRange {
                            range: Some(match net {
                                IpNet::V4(_) => {
                                    pr::ip_filter::cidr_range::Range::Ipv4(net.to_string())
                                }
                                IpNet::V6(_) => {
                                    pr::ip_filter::cidr_range::Range::Ipv6(net.to_string())
                                }
                            }),
                        })
                        .collect(),
                })),
            })
            .collect(),
    }
}

fn ops_to(ops: Ops, read: i32, write: i32, list: i32) -> Vec<i32> {
    ops.iter()
        .filter_map(|op| match op {
            Ops::READ => Some(read),
            Ops::WRITE => Some(write),
            Ops::LIST => Some(list),
            _ => None,
        })
        .collect()
}

fn all() -> pr::All {
    pr::All {}
}

fn cache_sel_to(sel: &NameSel) -> Option<pr::CacheSelector> {
    match sel {
        NameSel::All => None,
        NameSel::Name(n) => Some(pr::CacheSelector {
            kind: Some(pr::cache_selector::Kind::CacheName(n.clone())),
        }),
    }
}

fn rule_to_proto(rule: &Rule) -> pr::Rule {
    use pr::rule::Kind;
    let kind = match rule {
        Rule::Account(ops) => Kind::AccountManagementRule(pr::rule::AccountManagementRule {
            permissions: ops_to(
                *ops,
                pr::AccountManagementPermissions::AccountRead as i32,
                pr::AccountManagementPermissions::AccountWrite as i32,
                pr::AccountManagementPermissions::AccountList as i32,
            ),
        }),
        Rule::Auth(ops) => Kind::AuthManagementRule(pr::rule::AuthManagementRule {
            permissions: ops_to(
                *ops,
                pr::AuthManagementPermissions::AuthRead as i32,
                pr::AuthManagementPermissions::AuthWrite as i32,
                pr::AuthManagementPermissions::AuthList as i32,
            ),
            auth_items: Some(pr::rule::auth_management_rule::AuthItems::AllItems(all())),
        }),
        Rule::Resource(ops) => Kind::ResourceManagementRule(pr::rule::ResourceManagementRule {
            permissions: ops_to(
                *ops,
                pr::ResourceManagementPermissions::ResourceRead as i32,
                pr::ResourceManagementPermissions::ResourceWrite as i32,
                pr::ResourceManagementPermissions::ResourceList as i32,
            ),
            resources: Some(pr::rule::resource_management_rule::Resources::AllResources(
                all(),
            )),
        }),
        Rule::Cache { ops, cache, item } => {
            use pr::rule::cache_rule::{Cache, CacheItem};
            Kind::CacheRule(pr::rule::CacheRule {
                permissions: ops_to(
                    *ops,
                    pr::CacheApiPermissions::CacheRead as i32,
                    pr::CacheApiPermissions::CacheWrite as i32,
                    pr::CacheApiPermissions::CacheList as i32,
                ),
                cache: Some(match cache_sel_to(cache) {
                    None => Cache::AllCaches(all()),
                    Some(s) => Cache::CacheSelector(s),
                }),
                cache_item: Some(match item {
                    BytesSel::All => CacheItem::AllItems(all()),
                    BytesSel::Key(k) => CacheItem::ItemSelector(pr::CacheItemSelector {
                        kind: Some(pr::cache_item_selector::Kind::Key(k.clone())),
                    }),
                    BytesSel::Prefix(k) => CacheItem::ItemSelector(pr::CacheItemSelector {
                        kind: Some(pr::cache_item_selector::Kind::KeyPrefix(k.clone())),
                    }),
                }),
            })
        }
        Rule::Topic { ops, cache, topic } => {
            use pr::rule::topic_rule::{Cache, Topic};
            Kind::TopicRule(pr::rule::TopicRule {
                permissions: ops_to(
                    *ops,
                    pr::TopicApiPermissions::TopicRead as i32,
                    pr::TopicApiPermissions::TopicWrite as i32,
                    pr::TopicApiPermissions::TopicList as i32,
                ),
                cache: Some(match cache_sel_to(cache) {
                    None => Cache::AllCaches(all()),
                    Some(s) => Cache::CacheSelector(s),
                }),
                topic: Some(match topic {
                    TextSel::All => Topic::AllTopics(all()),
                    TextSel::Name(n) => Topic::TopicSelector(pr::TopicSelector {
                        kind: Some(pr::topic_selector::Kind::TopicName(n.clone())),
                    }),
                    TextSel::Prefix(n) => Topic::TopicSelector(pr::TopicSelector {
                        kind: Some(pr::topic_selector::Kind::TopicNamePrefix(n.clone())),
                    }),
                }),
            })
        }
        Rule::Store { ops, store, item } => {
            use pr::rule::store_rule::{Store, StoreItem};
            Kind::StorageRule(pr::rule::StoreRule {
                permissions: ops_to(
                    *ops,
                    pr::StoreApiPermissions::StoreRead as i32,
                    pr::StoreApiPermissions::StoreWrite as i32,
                    pr::StoreApiPermissions::StoreList as i32,
                ),
                store: Some(match store {
                    NameSel::All => Store::AllStores(all()),
                    NameSel::Name(n) => Store::StoreSelector(pr::StoreSelector {
                        kind: Some(pr::store_selector::Kind::StoreName(n.clone())),
                    }),
                }),
                store_item: Some(match item {
                    BytesSel::All => StoreItem::AllItems(all()),
                    BytesSel::Key(k) => StoreItem::ItemSelector(pr::StoreItemSelector {
                        kind: Some(pr::store_item_selector::Kind::Key(k.clone())),
                    }),
                    BytesSel::Prefix(k) => StoreItem::ItemSelector(pr::StoreItemSelector {
                        kind: Some(pr::store_item_selector::Kind::KeyPrefix(k.clone())),
                    }),
                }),
            })
        }
        Rule::Function {
            cache, function, ..
        } => {
            use pr::rule::function_rule::{Cache, Function};
            Kind::FunctionRule(pr::rule::FunctionRule {
                permissions: vec![pr::FunctionApiPermissions::FunctionInvoke as i32],
                cache: Some(match cache_sel_to(cache) {
                    None => Cache::AllCaches(all()),
                    Some(s) => Cache::CacheSelector(s),
                }),
                function: Some(match function {
                    TextSel::All => Function::AllFunctions(all()),
                    TextSel::Name(n) => Function::FunctionSelector(pr::FunctionSelector {
                        kind: Some(pr::function_selector::Kind::FunctionName(n.clone())),
                    }),
                    TextSel::Prefix(n) => Function::FunctionSelector(pr::FunctionSelector {
                        kind: Some(pr::function_selector::Kind::FunctionPrefix(n.clone())),
                    }),
                }),
            })
        }
    };
    pr::Rule { kind: Some(kind) }
}
