use super::*;
use std::net::IpAddr;

use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::TestRunner;

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

const R: Ops = Ops::READ;
const W: Ops = Ops::WRITE;
const L: Ops = Ops::LIST;
const I: Ops = Ops::INVOKE;
const RW: Ops = R.union(W);
const RL: Ops = R.union(L);
const RWL: Ops = R.union(W).union(L);

const ALL_ACTIONS: [Action; 20] = [
    Action::CacheRead,
    Action::CacheWrite,
    Action::CacheReadWrite,
    Action::CacheList,
    Action::TopicSubscribe,
    Action::TopicPublish,
    Action::TopicList,
    Action::StoreRead,
    Action::StoreWrite,
    Action::StoreList,
    Action::FunctionInvoke,
    Action::AccountRead,
    Action::AccountWrite,
    Action::AccountList,
    Action::AuthRead,
    Action::AuthWrite,
    Action::AuthList,
    Action::ResourceRead,
    Action::ResourceWrite,
    Action::ResourceList,
];

const CACHE_ACTIONS: [Action; 4] = [
    Action::CacheRead,
    Action::CacheWrite,
    Action::CacheReadWrite,
    Action::CacheList,
];
const TOPIC_ACTIONS: [Action; 3] = [
    Action::TopicSubscribe,
    Action::TopicPublish,
    Action::TopicList,
];
const STORE_ACTIONS: [Action; 3] = [Action::StoreRead, Action::StoreWrite, Action::StoreList];
const FUNCTION_ACTIONS: [Action; 1] = [Action::FunctionInvoke];
const ACCOUNT_ACTIONS: [Action; 3] = [
    Action::AccountRead,
    Action::AccountWrite,
    Action::AccountList,
];
const AUTH_ACTIONS: [Action; 3] = [Action::AuthRead, Action::AuthWrite, Action::AuthList];
const RESOURCE_ACTIONS: [Action; 3] = [
    Action::ResourceRead,
    Action::ResourceWrite,
    Action::ResourceList,
];

/// Every operation bit, including ones a family does not use.
pub(super) fn all_bits() -> Ops {
    Ops::from_bits(Ops::ALL_BITS).expect("ALL_BITS is valid")
}

pub(super) fn named(name: &str) -> NameSel {
    NameSel::Name(name.to_owned())
}

pub(super) fn key(bytes: &[u8]) -> BytesSel {
    BytesSel::Key(bytes.to_vec())
}

pub(super) fn prefix(bytes: &[u8]) -> BytesSel {
    BytesSel::Prefix(bytes.to_vec())
}

pub(super) fn text(name: &str) -> TextSel {
    TextSel::Name(name.to_owned())
}

pub(super) fn text_prefix(prefix: &str) -> TextSel {
    TextSel::Prefix(prefix.to_owned())
}

pub(super) fn cache_rule(ops: Ops, cache: NameSel, item: BytesSel) -> Rule {
    Rule::Cache { ops, cache, item }
}

pub(super) fn topic_rule(ops: Ops, cache: NameSel, topic: TextSel) -> Rule {
    Rule::Topic { ops, cache, topic }
}

pub(super) fn store_rule(ops: Ops, store: NameSel, item: BytesSel) -> Rule {
    Rule::Store { ops, store, item }
}

pub(super) fn function_rule(cache: NameSel, function: TextSel) -> Rule {
    Rule::Function {
        ops: I,
        cache,
        function,
    }
}

pub(super) fn set(rules: Vec<Rule>) -> PermissionSet {
    PermissionSet::rules(rules)
}

pub(super) fn role(id: &str) -> PermissionSet {
    system::permissions(id).expect("system role exists")
}

pub(super) fn net(cidr: &str) -> IpNet {
    cidr.parse().expect("test CIDR is valid")
}

pub(super) fn ip(addr: &str) -> IpAddr {
    addr.parse().expect("test address is valid")
}

pub(super) fn peer(addr: &str) -> Option<IpAddr> {
    Some(ip(addr))
}

pub(super) fn ip_filter(cidrs: &[&str]) -> Condition {
    Condition::IpFilter(cidrs.iter().map(|cidr| net(cidr)).collect())
}

/// Adds one ip_filter condition with the given ranges.
pub(super) fn filtered(mut set: PermissionSet, cidrs: &[&str]) -> PermissionSet {
    set.conditions.push(ip_filter(cidrs));
    set
}

/// Evaluates without a peer address (fine for sets without conditions).
pub(super) fn eval(
    set: &PermissionSet,
    action: Action,
    resource: &Resource<'_>,
) -> Result<(), Denial> {
    evaluate(set, action, resource, None)
}

pub(super) fn cache_item<'a>(cache: &'a str, key: &'a [u8]) -> Resource<'a> {
    Resource {
        cache: Some(cache),
        key: Some(key),
        ..Resource::default()
    }
}

pub(super) fn cache_only(cache: &str) -> Resource<'_> {
    Resource {
        cache: Some(cache),
        ..Resource::default()
    }
}

pub(super) fn topic_res<'a>(cache: &'a str, topic: &'a str) -> Resource<'a> {
    Resource {
        cache: Some(cache),
        topic: Some(topic),
        ..Resource::default()
    }
}

pub(super) fn store_item<'a>(store: &'a str, key: &'a [u8]) -> Resource<'a> {
    Resource {
        store: Some(store),
        key: Some(key),
        ..Resource::default()
    }
}

pub(super) fn function_res<'a>(cache: &'a str, function: &'a str) -> Resource<'a> {
    Resource {
        cache: Some(cache),
        function: Some(function),
        ..Resource::default()
    }
}

/// A resource with every field filled in, so selectors are never what denies.
pub(super) fn full_resource() -> Resource<'static> {
    Resource {
        cache: Some("c"),
        key: Some(b"k"),
        topic: Some("t"),
        function: Some("f"),
        store: Some("s"),
    }
}

mod delegate;
mod evaluate;
mod evaluate_families;
mod properties;
mod strategies;
mod system_roles;
