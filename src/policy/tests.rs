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
fn all_bits() -> Ops {
    Ops::from_bits(Ops::ALL_BITS).expect("ALL_BITS is valid")
}

fn named(name: &str) -> NameSel {
    NameSel::Name(name.to_owned())
}

fn key(bytes: &[u8]) -> BytesSel {
    BytesSel::Key(bytes.to_vec())
}

fn prefix(bytes: &[u8]) -> BytesSel {
    BytesSel::Prefix(bytes.to_vec())
}

fn text(name: &str) -> TextSel {
    TextSel::Name(name.to_owned())
}

fn text_prefix(prefix: &str) -> TextSel {
    TextSel::Prefix(prefix.to_owned())
}

fn cache_rule(ops: Ops, cache: NameSel, item: BytesSel) -> Rule {
    Rule::Cache { ops, cache, item }
}

fn topic_rule(ops: Ops, cache: NameSel, topic: TextSel) -> Rule {
    Rule::Topic { ops, cache, topic }
}

fn store_rule(ops: Ops, store: NameSel, item: BytesSel) -> Rule {
    Rule::Store { ops, store, item }
}

fn function_rule(cache: NameSel, function: TextSel) -> Rule {
    Rule::Function {
        ops: I,
        cache,
        function,
    }
}

fn set(rules: Vec<Rule>) -> PermissionSet {
    PermissionSet::rules(rules)
}

fn role(id: &str) -> PermissionSet {
    system::permissions(id).expect("system role exists")
}

fn net(cidr: &str) -> IpNet {
    cidr.parse().expect("test CIDR is valid")
}

fn ip(addr: &str) -> IpAddr {
    addr.parse().expect("test address is valid")
}

fn peer(addr: &str) -> Option<IpAddr> {
    Some(ip(addr))
}

fn ip_filter(cidrs: &[&str]) -> Condition {
    Condition::IpFilter(cidrs.iter().map(|cidr| net(cidr)).collect())
}

/// Adds one ip_filter condition with the given ranges.
fn filtered(mut set: PermissionSet, cidrs: &[&str]) -> PermissionSet {
    set.conditions.push(ip_filter(cidrs));
    set
}

/// Evaluates without a peer address (fine for sets without conditions).
fn eval(set: &PermissionSet, action: Action, resource: &Resource<'_>) -> Result<(), Denial> {
    evaluate(set, action, resource, None)
}

fn cache_item<'a>(cache: &'a str, key: &'a [u8]) -> Resource<'a> {
    Resource {
        cache: Some(cache),
        key: Some(key),
        ..Resource::default()
    }
}

fn cache_only(cache: &str) -> Resource<'_> {
    Resource {
        cache: Some(cache),
        ..Resource::default()
    }
}

fn topic_res<'a>(cache: &'a str, topic: &'a str) -> Resource<'a> {
    Resource {
        cache: Some(cache),
        topic: Some(topic),
        ..Resource::default()
    }
}

fn store_item<'a>(store: &'a str, key: &'a [u8]) -> Resource<'a> {
    Resource {
        store: Some(store),
        key: Some(key),
        ..Resource::default()
    }
}

fn function_res<'a>(cache: &'a str, function: &'a str) -> Resource<'a> {
    Resource {
        cache: Some(cache),
        function: Some(function),
        ..Resource::default()
    }
}

/// A resource with every field filled in, so selectors are never what denies.
fn full_resource() -> Resource<'static> {
    Resource {
        cache: Some("c"),
        key: Some(b"k"),
        topic: Some("t"),
        function: Some("f"),
        store: Some("s"),
    }
}

// ---------------------------------------------------------------------------------------------
// Ops
// ---------------------------------------------------------------------------------------------

#[test]
fn ops_from_bits_refuses_unknown_bits() {
    assert_eq!(Ops::from_bits(0b0101), Some(R.union(L)));
    assert_eq!(Ops::from_bits(Ops::ALL_BITS + 1), None);
    assert_eq!(Ops::from_bits(0x80), None);
}

#[test]
fn ops_iter_yields_single_bits_in_order() {
    let ops: Vec<Ops> = all_bits().iter().collect();
    assert_eq!(ops, vec![R, W, L, I]);
    assert_eq!(Ops::empty().iter().count(), 0);
    assert_eq!(format!("{:?}", RWL), "read+write+list");
}

#[test]
fn allowed_ops_per_family() {
    assert_eq!(Rule::allowed_ops(Family::Function), I);
    for family in [
        Family::Account,
        Family::Auth,
        Family::Resource,
        Family::Cache,
        Family::Topic,
        Family::Store,
    ] {
        assert_eq!(Rule::allowed_ops(family), RWL, "{family:?}");
    }
}

// ---------------------------------------------------------------------------------------------
// evaluate: defaults and families
// ---------------------------------------------------------------------------------------------

#[test]
fn empty_rules_deny_every_action() {
    let empty = set(vec![]);
    for action in ALL_ACTIONS {
        assert_eq!(
            eval(&empty, action, &full_resource()),
            Err(Denial::Permission),
            "{action:?}"
        );
        assert_eq!(
            eval(&empty, action, &Resource::default()),
            Err(Denial::Permission),
            "{action:?}"
        );
    }
}

#[test]
fn super_user_allows_every_action() {
    let su = PermissionSet::super_user();
    for action in ALL_ACTIONS {
        assert_eq!(eval(&su, action, &full_resource()), Ok(()), "{action:?}");
        assert_eq!(
            eval(&su, action, &Resource::default()),
            Ok(()),
            "{action:?}"
        );
    }
}

#[test]
fn each_rule_family_allows_exactly_its_own_actions() {
    let cases: [(Rule, &[Action]); 7] = [
        (Rule::Account(all_bits()), &ACCOUNT_ACTIONS),
        (Rule::Auth(all_bits()), &AUTH_ACTIONS),
        (Rule::Resource(all_bits()), &RESOURCE_ACTIONS),
        (
            cache_rule(all_bits(), NameSel::All, BytesSel::All),
            &CACHE_ACTIONS,
        ),
        (
            topic_rule(all_bits(), NameSel::All, TextSel::All),
            &TOPIC_ACTIONS,
        ),
        (
            store_rule(all_bits(), NameSel::All, BytesSel::All),
            &STORE_ACTIONS,
        ),
        (
            Rule::Function {
                ops: all_bits(),
                cache: NameSel::All,
                function: TextSel::All,
            },
            &FUNCTION_ACTIONS,
        ),
    ];
    for (rule, own_actions) in cases {
        let family = rule.family();
        let rules = set(vec![rule]);
        for action in ALL_ACTIONS {
            let expected = if own_actions.contains(&action) {
                Ok(())
            } else {
                Err(Denial::Permission)
            };
            assert_eq!(
                eval(&rules, action, &full_resource()),
                expected,
                "{family:?} rule, {action:?}"
            );
        }
    }
}

#[test]
fn management_rules_grant_exactly_their_ops() {
    type MakeRule = fn(Ops) -> Rule;
    let families: [(MakeRule, [Action; 3]); 3] = [
        (Rule::Account, ACCOUNT_ACTIONS),
        (Rule::Auth, AUTH_ACTIONS),
        (Rule::Resource, RESOURCE_ACTIONS),
    ];
    for (make, [read, write, list]) in families {
        for (op, granted) in [(R, read), (W, write), (L, list)] {
            let rules = set(vec![make(op)]);
            for action in ALL_ACTIONS {
                let expected = if action == granted {
                    Ok(())
                } else {
                    Err(Denial::Permission)
                };
                assert_eq!(
                    eval(&rules, action, &Resource::default()),
                    expected,
                    "{rules:?}, {action:?}"
                );
            }
        }
    }
}

#[test]
fn store_rule_does_not_allow_cache_read() {
    let rules = set(vec![store_rule(RWL, NameSel::All, BytesSel::All)]);
    let res = Resource {
        cache: Some("x"),
        store: Some("x"),
        key: Some(b"k"),
        ..Resource::default()
    };
    assert_eq!(eval(&rules, Action::StoreRead, &res), Ok(()));
    assert_eq!(
        eval(&rules, Action::CacheRead, &res),
        Err(Denial::Permission)
    );
    assert_eq!(
        eval(&rules, Action::CacheList, &res),
        Err(Denial::Permission)
    );
}

// ---------------------------------------------------------------------------------------------
// evaluate: cache selectors
// ---------------------------------------------------------------------------------------------

#[test]
fn cache_all_selectors_match_any_cache_and_key() {
    let rules = set(vec![cache_rule(RW, NameSel::All, BytesSel::All)]);
    for (cache, key) in [("a", &b"x"[..]), ("b", b""), ("zz", b"abc")] {
        assert_eq!(
            eval(&rules, Action::CacheRead, &cache_item(cache, key)),
            Ok(())
        );
        assert_eq!(
            eval(&rules, Action::CacheWrite, &cache_item(cache, key)),
            Ok(())
        );
    }
}

#[test]
fn cache_name_selector_matches_only_that_cache() {
    let rules = set(vec![cache_rule(R, named("a"), BytesSel::All)]);
    assert_eq!(
        eval(&rules, Action::CacheRead, &cache_item("a", b"k")),
        Ok(())
    );
    assert_eq!(
        eval(&rules, Action::CacheRead, &cache_item("ab", b"k")),
        Err(Denial::Permission)
    );
    assert_eq!(
        eval(&rules, Action::CacheRead, &cache_item("b", b"k")),
        Err(Denial::Permission)
    );
    // Without a cache name, only an all-caches selector applies.
    let no_cache = Resource {
        key: Some(b"k"),
        ..Resource::default()
    };
    assert_eq!(
        eval(&rules, Action::CacheRead, &no_cache),
        Err(Denial::Permission)
    );
}

#[test]
fn cache_key_selector_does_not_match_a_different_key() {
    let rules = set(vec![cache_rule(R, NameSel::All, key(b"ab"))]);
    assert_eq!(
        eval(&rules, Action::CacheRead, &cache_item("c", b"ab")),
        Ok(())
    );
    for other in [&b"a"[..], b"abc", b"b", b""] {
        assert_eq!(
            eval(&rules, Action::CacheRead, &cache_item("c", other)),
            Err(Denial::Permission),
            "key {other:?}"
        );
    }
}

#[test]
fn cache_prefix_selector_matches_keys_with_the_prefix_only() {
    let rules = set(vec![cache_rule(R, NameSel::All, prefix(b"ab"))]);
    for inside in [&b"ab"[..], b"abc", b"ab\x00"] {
        assert_eq!(
            eval(&rules, Action::CacheRead, &cache_item("c", inside)),
            Ok(()),
            "key {inside:?}"
        );
    }
    for outside in [&b"a"[..], b"ba", b"b", b"", b"xab"] {
        assert_eq!(
            eval(&rules, Action::CacheRead, &cache_item("c", outside)),
            Err(Denial::Permission),
            "key {outside:?}"
        );
    }
}

#[test]
fn without_a_key_only_the_all_items_selector_matches() {
    let all = set(vec![cache_rule(R, NameSel::All, BytesSel::All)]);
    assert_eq!(eval(&all, Action::CacheRead, &cache_only("c")), Ok(()));
    for item in [key(b"a"), prefix(b"a"), prefix(b"")] {
        let rules = set(vec![cache_rule(R, NameSel::All, item.clone())]);
        assert_eq!(
            eval(&rules, Action::CacheRead, &cache_item("c", b"a")),
            Ok(()),
            "{item:?} with a key"
        );
        assert_eq!(
            eval(&rules, Action::CacheRead, &cache_only("c")),
            Err(Denial::Permission),
            "{item:?} without a key"
        );
    }
}

#[test]
fn cache_ops_are_checked_per_action() {
    let read_only = set(vec![cache_rule(R, NameSel::All, BytesSel::All)]);
    assert_eq!(
        eval(&read_only, Action::CacheRead, &cache_item("c", b"k")),
        Ok(())
    );
    assert_eq!(
        eval(&read_only, Action::CacheWrite, &cache_item("c", b"k")),
        Err(Denial::Permission)
    );
    assert_eq!(
        eval(&read_only, Action::CacheList, &cache_only("c")),
        Err(Denial::Permission)
    );
}

#[test]
fn cache_read_write_needs_both_read_and_write() {
    let res = cache_item("c", b"k");
    let write_only = set(vec![cache_rule(W, NameSel::All, BytesSel::All)]);
    assert_eq!(eval(&write_only, Action::CacheWrite, &res), Ok(()));
    assert_eq!(
        eval(&write_only, Action::CacheReadWrite, &res),
        Err(Denial::Permission)
    );

    let read_only = set(vec![cache_rule(R, NameSel::All, BytesSel::All)]);
    assert_eq!(eval(&read_only, Action::CacheRead, &res), Ok(()));
    assert_eq!(
        eval(&read_only, Action::CacheReadWrite, &res),
        Err(Denial::Permission)
    );

    let both = set(vec![cache_rule(RW, NameSel::All, BytesSel::All)]);
    assert_eq!(eval(&both, Action::CacheReadWrite, &res), Ok(()));
}

#[test]
fn cache_read_write_may_combine_two_rules() {
    let rules = set(vec![
        cache_rule(R, NameSel::All, prefix(b"a")),
        cache_rule(W, named("c"), key(b"ab")),
    ]);
    assert_eq!(
        eval(&rules, Action::CacheReadWrite, &cache_item("c", b"ab")),
        Ok(())
    );
    // The write rule does not cover this key, so the combination fails.
    assert_eq!(
        eval(&rules, Action::CacheRead, &cache_item("c", b"aa")),
        Ok(())
    );
    assert_eq!(
        eval(&rules, Action::CacheReadWrite, &cache_item("c", b"aa")),
        Err(Denial::Permission)
    );
    // The write rule does not cover this cache either.
    assert_eq!(
        eval(&rules, Action::CacheReadWrite, &cache_item("d", b"ab")),
        Err(Denial::Permission)
    );
}

#[test]
fn list_ignores_selectors() {
    let rules = set(vec![
        cache_rule(RL, named("a"), key(b"x")),
        topic_rule(L, named("a"), text("t")),
        store_rule(L, named("a"), key(b"x")),
    ]);
    // Selectors do restrict non-list operations...
    assert_eq!(
        eval(&rules, Action::CacheRead, &cache_item("a", b"x")),
        Ok(())
    );
    assert_eq!(
        eval(&rules, Action::CacheRead, &cache_item("b", b"y")),
        Err(Denial::Permission)
    );
    // ...but not lists.
    for action in [Action::CacheList, Action::TopicList, Action::StoreList] {
        assert_eq!(
            eval(&rules, action, &Resource::default()),
            Ok(()),
            "{action:?}"
        );
        assert_eq!(eval(&rules, action, &cache_only("b")), Ok(()), "{action:?}");
        assert_eq!(
            eval(&rules, action, &store_item("b", b"y")),
            Ok(()),
            "{action:?}"
        );
    }
}

#[test]
fn list_needs_the_list_bit() {
    let rules = set(vec![
        cache_rule(RW, NameSel::All, BytesSel::All),
        topic_rule(RW, NameSel::All, TextSel::All),
        store_rule(RW, NameSel::All, BytesSel::All),
    ]);
    assert_eq!(
        eval(&rules, Action::CacheRead, &cache_item("c", b"k")),
        Ok(())
    );
    for action in [Action::CacheList, Action::TopicList, Action::StoreList] {
        assert_eq!(
            eval(&rules, action, &full_resource()),
            Err(Denial::Permission),
            "{action:?}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// evaluate: topics
// ---------------------------------------------------------------------------------------------

#[test]
fn topic_subscribe_is_read_and_publish_is_write() {
    let res = topic_res("c", "t");
    let read = set(vec![topic_rule(R, NameSel::All, TextSel::All)]);
    assert_eq!(eval(&read, Action::TopicSubscribe, &res), Ok(()));
    assert_eq!(
        eval(&read, Action::TopicPublish, &res),
        Err(Denial::Permission)
    );
    let write = set(vec![topic_rule(W, NameSel::All, TextSel::All)]);
    assert_eq!(eval(&write, Action::TopicPublish, &res), Ok(()));
    assert_eq!(
        eval(&write, Action::TopicSubscribe, &res),
        Err(Denial::Permission)
    );
}

#[test]
fn topic_name_selector_matches_only_that_topic() {
    let rules = set(vec![topic_rule(R, NameSel::All, text("ab"))]);
    assert_eq!(
        eval(&rules, Action::TopicSubscribe, &topic_res("c", "ab")),
        Ok(())
    );
    for other in ["a", "abc", "b", ""] {
        assert_eq!(
            eval(&rules, Action::TopicSubscribe, &topic_res("c", other)),
            Err(Denial::Permission),
            "topic {other:?}"
        );
    }
}

#[test]
fn topic_prefix_selector_matches_topics_with_the_prefix_only() {
    let rules = set(vec![topic_rule(W, NameSel::All, text_prefix("ab"))]);
    for inside in ["ab", "abc", "ab.x"] {
        assert_eq!(
            eval(&rules, Action::TopicPublish, &topic_res("c", inside)),
            Ok(()),
            "topic {inside:?}"
        );
    }
    for outside in ["a", "b", "ba", "", "xab"] {
        assert_eq!(
            eval(&rules, Action::TopicPublish, &topic_res("c", outside)),
            Err(Denial::Permission),
            "topic {outside:?}"
        );
    }
}

#[test]
fn topic_cache_selector_is_checked() {
    let rules = set(vec![topic_rule(R, named("a"), TextSel::All)]);
    assert_eq!(
        eval(&rules, Action::TopicSubscribe, &topic_res("a", "t")),
        Ok(())
    );
    assert_eq!(
        eval(&rules, Action::TopicSubscribe, &topic_res("b", "t")),
        Err(Denial::Permission)
    );
}

#[test]
fn without_a_topic_only_the_all_topics_selector_matches() {
    let all = set(vec![topic_rule(R, NameSel::All, TextSel::All)]);
    assert_eq!(eval(&all, Action::TopicSubscribe, &cache_only("c")), Ok(()));
    for topic in [text("t"), text_prefix("t"), text_prefix("")] {
        let rules = set(vec![topic_rule(R, NameSel::All, topic.clone())]);
        assert_eq!(
            eval(&rules, Action::TopicSubscribe, &topic_res("c", "t")),
            Ok(()),
            "{topic:?} with a topic"
        );
        assert_eq!(
            eval(&rules, Action::TopicSubscribe, &cache_only("c")),
            Err(Denial::Permission),
            "{topic:?} without a topic"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// evaluate: stores
// ---------------------------------------------------------------------------------------------

#[test]
fn store_selectors_match_store_name_and_key() {
    let rules = set(vec![
        store_rule(R, named("s"), BytesSel::All),
        store_rule(W, NameSel::All, prefix(b"a")),
        store_rule(W, named("t"), key(b"b")),
    ]);
    assert_eq!(
        eval(&rules, Action::StoreRead, &store_item("s", b"zz")),
        Ok(())
    );
    assert_eq!(
        eval(&rules, Action::StoreRead, &store_item("t", b"zz")),
        Err(Denial::Permission)
    );
    assert_eq!(
        eval(&rules, Action::StoreWrite, &store_item("x", b"ab")),
        Ok(())
    );
    assert_eq!(
        eval(&rules, Action::StoreWrite, &store_item("x", b"ba")),
        Err(Denial::Permission)
    );
    assert_eq!(
        eval(&rules, Action::StoreWrite, &store_item("t", b"b")),
        Ok(())
    );
    assert_eq!(
        eval(&rules, Action::StoreWrite, &store_item("t", b"bb")),
        Err(Denial::Permission)
    );
    assert_eq!(
        eval(&rules, Action::StoreWrite, &store_item("u", b"b")),
        Err(Denial::Permission)
    );
}

#[test]
fn store_rule_selects_on_the_store_field_not_the_cache_field() {
    let rules = set(vec![store_rule(R, named("s"), BytesSel::All)]);
    assert_eq!(
        eval(&rules, Action::StoreRead, &store_item("s", b"k")),
        Ok(())
    );
    let cache_named_s = cache_item("s", b"k");
    assert_eq!(
        eval(&rules, Action::StoreRead, &cache_named_s),
        Err(Denial::Permission)
    );
}

#[test]
fn without_a_store_key_only_the_all_items_selector_matches() {
    let store_only = Resource {
        store: Some("s"),
        ..Resource::default()
    };
    let all = set(vec![store_rule(R, NameSel::All, BytesSel::All)]);
    assert_eq!(eval(&all, Action::StoreRead, &store_only), Ok(()));
    for item in [key(b"k"), prefix(b"k")] {
        let rules = set(vec![store_rule(R, NameSel::All, item.clone())]);
        assert_eq!(
            eval(&rules, Action::StoreRead, &store_item("s", b"k")),
            Ok(()),
            "{item:?}"
        );
        assert_eq!(
            eval(&rules, Action::StoreRead, &store_only),
            Err(Denial::Permission),
            "{item:?}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// evaluate: functions
// ---------------------------------------------------------------------------------------------

#[test]
fn function_selectors() {
    let all = set(vec![function_rule(NameSel::All, TextSel::All)]);
    assert_eq!(
        eval(&all, Action::FunctionInvoke, &function_res("c", "anything")),
        Ok(())
    );

    let by_name = set(vec![function_rule(NameSel::All, text("fa"))]);
    assert_eq!(
        eval(&by_name, Action::FunctionInvoke, &function_res("c", "fa")),
        Ok(())
    );
    assert_eq!(
        eval(&by_name, Action::FunctionInvoke, &function_res("c", "fab")),
        Err(Denial::Permission)
    );

    let by_prefix = set(vec![function_rule(NameSel::All, text_prefix("fa"))]);
    assert_eq!(
        eval(
            &by_prefix,
            Action::FunctionInvoke,
            &function_res("c", "fab")
        ),
        Ok(())
    );
    assert_eq!(
        eval(&by_prefix, Action::FunctionInvoke, &function_res("c", "fb")),
        Err(Denial::Permission)
    );

    let by_cache = set(vec![function_rule(named("a"), TextSel::All)]);
    assert_eq!(
        eval(&by_cache, Action::FunctionInvoke, &function_res("a", "f")),
        Ok(())
    );
    assert_eq!(
        eval(&by_cache, Action::FunctionInvoke, &function_res("b", "f")),
        Err(Denial::Permission)
    );
}

#[test]
fn without_a_function_name_only_the_all_functions_selector_matches() {
    let all = set(vec![function_rule(NameSel::All, TextSel::All)]);
    assert_eq!(eval(&all, Action::FunctionInvoke, &cache_only("c")), Ok(()));
    for function in [text("f"), text_prefix("f")] {
        let rules = set(vec![function_rule(NameSel::All, function.clone())]);
        assert_eq!(
            eval(&rules, Action::FunctionInvoke, &function_res("c", "f")),
            Ok(()),
            "{function:?}"
        );
        assert_eq!(
            eval(&rules, Action::FunctionInvoke, &cache_only("c")),
            Err(Denial::Permission),
            "{function:?}"
        );
    }
}

#[test]
fn function_invoke_needs_the_invoke_bit() {
    let res = function_res("c", "f");
    let no_invoke = set(vec![Rule::Function {
        ops: RWL,
        cache: NameSel::All,
        function: TextSel::All,
    }]);
    let invoke = set(vec![function_rule(NameSel::All, TextSel::All)]);
    assert_eq!(eval(&invoke, Action::FunctionInvoke, &res), Ok(()));
    assert_eq!(
        eval(&no_invoke, Action::FunctionInvoke, &res),
        Err(Denial::Permission)
    );
}

// ---------------------------------------------------------------------------------------------
// evaluate: ip_filter conditions
// ---------------------------------------------------------------------------------------------

fn cache_reader() -> PermissionSet {
    set(vec![cache_rule(R, NameSel::All, BytesSel::All)])
}

#[test]
fn ipv4_filter_admits_peers_inside_and_refuses_peers_outside() {
    let res = cache_item("c", b"k");
    let rules = filtered(cache_reader(), &["10.0.0.0/8"]);
    assert_eq!(
        evaluate(&rules, Action::CacheRead, &res, peer("10.1.2.3")),
        Ok(())
    );
    assert_eq!(
        evaluate(&rules, Action::CacheRead, &res, peer("10.255.255.255")),
        Ok(())
    );
    assert_eq!(
        evaluate(&rules, Action::CacheRead, &res, peer("11.0.0.1")),
        Err(Denial::IpNotAllowed)
    );
    assert_eq!(
        evaluate(&rules, Action::CacheRead, &res, peer("fd00::1")),
        Err(Denial::IpNotAllowed)
    );
}

#[test]
fn ipv6_filter_admits_peers_inside_and_refuses_peers_outside() {
    let res = cache_item("c", b"k");
    let rules = filtered(cache_reader(), &["fd00::/8"]);
    assert_eq!(
        evaluate(&rules, Action::CacheRead, &res, peer("fd12::5")),
        Ok(())
    );
    assert_eq!(
        evaluate(&rules, Action::CacheRead, &res, peer("fe80::1")),
        Err(Denial::IpNotAllowed)
    );
    assert_eq!(
        evaluate(&rules, Action::CacheRead, &res, peer("10.0.0.1")),
        Err(Denial::IpNotAllowed)
    );
}

#[test]
fn filter_with_several_ranges_admits_any_of_them() {
    let res = cache_item("c", b"k");
    let rules = filtered(cache_reader(), &["10.0.0.0/8", "::1/128"]);
    assert_eq!(
        evaluate(&rules, Action::CacheRead, &res, peer("10.9.9.9")),
        Ok(())
    );
    assert_eq!(
        evaluate(&rules, Action::CacheRead, &res, peer("::1")),
        Ok(())
    );
    assert_eq!(
        evaluate(&rules, Action::CacheRead, &res, peer("::2")),
        Err(Denial::IpNotAllowed)
    );
}

#[test]
fn filter_refuses_an_unknown_peer() {
    let res = cache_item("c", b"k");
    let rules = filtered(cache_reader(), &["0.0.0.0/0", "::/0"]);
    assert_eq!(
        evaluate(&rules, Action::CacheRead, &res, peer("1.2.3.4")),
        Ok(())
    );
    assert_eq!(
        evaluate(&rules, Action::CacheRead, &res, None),
        Err(Denial::IpNotAllowed)
    );
}

#[test]
fn ipv4_mapped_ipv6_peer_matches_an_ipv4_range() {
    let res = cache_item("c", b"k");
    let rules = filtered(cache_reader(), &["10.0.0.0/8"]);
    assert_eq!(
        evaluate(&rules, Action::CacheRead, &res, peer("::ffff:10.1.2.3")),
        Ok(())
    );
    assert_eq!(
        evaluate(&rules, Action::CacheRead, &res, peer("::ffff:11.1.2.3")),
        Err(Denial::IpNotAllowed)
    );
}

#[test]
fn admits_peer_checks_conditions_only() {
    let open = set(vec![]);
    assert!(admits_peer(&open, None));
    assert!(admits_peer(&open, peer("203.0.113.9")));

    // No rule grants anything, yet the peer is admitted: only conditions count.
    let rules = filtered(set(vec![]), &["10.0.0.0/8", "fd00::/8"]);
    assert!(admits_peer(&rules, peer("10.1.2.3")));
    assert!(admits_peer(&rules, peer("::ffff:10.1.2.3")));
    assert!(admits_peer(&rules, peer("fd00::1")));
    assert!(!admits_peer(&rules, peer("11.0.0.1")));
    assert!(!admits_peer(&rules, None));

    let su = filtered(PermissionSet::super_user(), &["192.168.0.0/24"]);
    assert!(admits_peer(&su, peer("192.168.0.7")));
    assert!(!admits_peer(&su, peer("192.168.1.7")));
}

#[test]
fn canonical_ip_unmaps_ipv4_mapped_addresses_only() {
    assert_eq!(canonical_ip(ip("::ffff:10.1.2.3")), ip("10.1.2.3"));
    assert_eq!(canonical_ip(ip("10.1.2.3")), ip("10.1.2.3"));
    assert_eq!(canonical_ip(ip("fd00::1")), ip("fd00::1"));
    assert_eq!(canonical_ip(ip("::1")), ip("::1"));
}

#[test]
fn all_conditions_must_hold() {
    let res = cache_item("c", b"k");
    let rules = filtered(
        filtered(cache_reader(), &["10.0.0.0/8"]),
        &["10.1.0.0/16", "192.168.0.0/24"],
    );
    assert_eq!(
        evaluate(&rules, Action::CacheRead, &res, peer("10.1.2.3")),
        Ok(())
    );
    // In the first filter only.
    assert_eq!(
        evaluate(&rules, Action::CacheRead, &res, peer("10.2.0.1")),
        Err(Denial::IpNotAllowed)
    );
    // In the second filter only.
    assert_eq!(
        evaluate(&rules, Action::CacheRead, &res, peer("192.168.0.7")),
        Err(Denial::IpNotAllowed)
    );
}

#[test]
fn super_user_is_still_subject_to_its_ip_filter() {
    let su = filtered(PermissionSet::super_user(), &["10.0.0.0/8"]);
    for action in ALL_ACTIONS {
        assert_eq!(
            evaluate(&su, action, &full_resource(), peer("10.0.0.1")),
            Ok(()),
            "{action:?}"
        );
        assert_eq!(
            evaluate(&su, action, &full_resource(), peer("192.168.0.1")),
            Err(Denial::IpNotAllowed),
            "{action:?}"
        );
        assert_eq!(
            evaluate(&su, action, &full_resource(), None),
            Err(Denial::IpNotAllowed),
            "{action:?}"
        );
    }
}

#[test]
fn ip_denial_is_reported_before_permission_denial() {
    let res = cache_item("c", b"k");
    let rules = filtered(cache_reader(), &["10.0.0.0/8"]);
    assert_eq!(
        evaluate(&rules, Action::CacheWrite, &res, peer("10.0.0.1")),
        Err(Denial::Permission)
    );
    assert_eq!(
        evaluate(&rules, Action::CacheWrite, &res, peer("11.0.0.1")),
        Err(Denial::IpNotAllowed)
    );
}

// ---------------------------------------------------------------------------------------------
// System roles
// ---------------------------------------------------------------------------------------------

#[test]
fn every_system_role_id_has_permissions() {
    for id in system::ALL {
        assert!(system::permissions(id).is_some(), "{id}");
    }
    assert_eq!(system::name(system::OWNER), "Owner");
    assert_eq!(system::name(system::OPERATOR), "Operator");
    assert_eq!(system::name(system::VIEWER), "Viewer");
}

#[test]
fn unknown_role_id_has_no_permissions() {
    for id in ["admin", "", "Owner", "owner ", "viewers"] {
        assert_eq!(system::permissions(id), None, "{id:?}");
    }
}

#[test]
fn owner_allows_everything() {
    let owner = role(system::OWNER);
    assert!(owner.is_super_user());
    for action in ALL_ACTIONS {
        assert_eq!(eval(&owner, action, &full_resource()), Ok(()), "{action:?}");
    }
}

#[test]
fn operator_manages_auth_and_data_but_not_accounts() {
    let operator = role(system::OPERATOR);
    assert!(!operator.is_super_user());
    let allowed = [
        Action::AccountRead,
        Action::AccountList,
        Action::AuthRead,
        Action::AuthWrite,
        Action::AuthList,
        Action::ResourceRead,
        Action::ResourceWrite,
        Action::ResourceList,
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
    ];
    for action in allowed {
        assert_eq!(
            eval(&operator, action, &full_resource()),
            Ok(()),
            "{action:?}"
        );
    }
    assert_eq!(
        eval(&operator, Action::AccountWrite, &full_resource()),
        Err(Denial::Permission)
    );
}

#[test]
fn viewer_reads_and_lists_but_does_not_change_anything() {
    let viewer = role(system::VIEWER);
    let allowed = [
        Action::AccountRead,
        Action::AccountList,
        Action::AuthRead,
        Action::AuthList,
        Action::ResourceRead,
        Action::ResourceList,
        Action::CacheRead,
        Action::CacheList,
        Action::TopicSubscribe,
        Action::TopicList,
        Action::StoreRead,
        Action::StoreList,
    ];
    let denied = [
        Action::AccountWrite,
        Action::AuthWrite,
        Action::ResourceWrite,
        Action::CacheWrite,
        Action::CacheReadWrite,
        Action::TopicPublish,
        Action::StoreWrite,
        Action::FunctionInvoke,
    ];
    assert_eq!(allowed.len() + denied.len(), ALL_ACTIONS.len());
    for action in allowed {
        assert_eq!(
            eval(&viewer, action, &full_resource()),
            Ok(()),
            "{action:?}"
        );
    }
    for action in denied {
        assert_eq!(
            eval(&viewer, action, &full_resource()),
            Err(Denial::Permission),
            "{action:?}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// check_delegation
// ---------------------------------------------------------------------------------------------

#[test]
fn super_user_parent_may_delegate_anything() {
    let su = PermissionSet::super_user();
    let children = [
        PermissionSet::super_user(),
        role(system::OPERATOR),
        role(system::VIEWER),
        set(vec![]),
        set(vec![
            cache_rule(all_bits(), NameSel::All, BytesSel::All),
            Rule::Account(RWL),
        ]),
        filtered(PermissionSet::super_user(), &["10.0.0.0/8"]),
    ];
    for child in children {
        assert_eq!(check_delegation(&su, &child), Ok(()), "{child:?}");
    }
}

#[test]
fn super_user_parent_with_ip_filter_requires_the_child_to_keep_it() {
    let parent = filtered(PermissionSet::super_user(), &["10.0.0.0/8"]);
    assert_eq!(
        check_delegation(&parent, &filtered(role(system::VIEWER), &["10.0.0.0/8"])),
        Ok(())
    );
    assert_eq!(
        check_delegation(
            &parent,
            &filtered(PermissionSet::super_user(), &["10.1.0.0/16"])
        ),
        Ok(())
    );
    assert_eq!(
        check_delegation(&parent, &role(system::VIEWER)),
        Err(Exceeds::Conditions)
    );
    assert_eq!(
        check_delegation(&parent, &PermissionSet::super_user()),
        Err(Exceeds::Conditions)
    );
}

#[test]
fn explicit_parent_cannot_delegate_super_user() {
    let operator = role(system::OPERATOR);
    assert_eq!(
        check_delegation(&operator, &role(system::OWNER)),
        Err(Exceeds::SuperUser)
    );
    let everything = set(vec![
        Rule::Account(RWL),
        Rule::Auth(RWL),
        Rule::Resource(RWL),
        cache_rule(RWL, NameSel::All, BytesSel::All),
        topic_rule(RWL, NameSel::All, TextSel::All),
        store_rule(RWL, NameSel::All, BytesSel::All),
        function_rule(NameSel::All, TextSel::All),
    ]);
    assert_eq!(
        check_delegation(&everything, &PermissionSet::super_user()),
        Err(Exceeds::SuperUser)
    );
}

#[test]
fn operator_can_delegate_viewer_and_operator() {
    let operator = role(system::OPERATOR);
    assert_eq!(check_delegation(&operator, &role(system::VIEWER)), Ok(()));
    assert_eq!(check_delegation(&operator, &role(system::OPERATOR)), Ok(()));
}

#[test]
fn viewer_cannot_delegate_operator() {
    let viewer = role(system::VIEWER);
    assert_eq!(check_delegation(&viewer, &role(system::VIEWER)), Ok(()));
    // Operator rule 0 is Account(read+list), which the viewer has; rule 1 is Auth(read+write+list).
    assert_eq!(
        check_delegation(&viewer, &role(system::OPERATOR)),
        Err(Exceeds::Rule { index: 1, ops: W })
    );
}

#[test]
fn exceeding_rule_reports_its_index_and_only_the_uncovered_ops() {
    let parent = set(vec![
        cache_rule(R, NameSel::All, BytesSel::All),
        Rule::Auth(RL),
    ]);
    let child = set(vec![
        Rule::Auth(R),
        cache_rule(RWL, named("a"), BytesSel::All),
    ]);
    assert_eq!(
        check_delegation(&parent, &child),
        Err(Exceeds::Rule {
            index: 1,
            ops: W.union(L)
        })
    );
}

#[test]
fn delegation_may_draw_ops_from_several_parent_rules() {
    let parent = set(vec![
        cache_rule(R, NameSel::All, BytesSel::All),
        cache_rule(W, named("a"), prefix(b"a")),
    ]);
    let child = set(vec![cache_rule(RW, named("a"), key(b"ab"))]);
    assert_eq!(check_delegation(&parent, &child), Ok(()));
    let outside = set(vec![cache_rule(RW, named("a"), key(b"b"))]);
    assert_eq!(
        check_delegation(&parent, &outside),
        Err(Exceeds::Rule { index: 0, ops: W })
    );
}

#[test]
fn delegation_refuses_a_different_family() {
    let parent = set(vec![store_rule(RWL, NameSel::All, BytesSel::All)]);
    assert_eq!(
        check_delegation(
            &parent,
            &set(vec![store_rule(R, NameSel::All, BytesSel::All)])
        ),
        Ok(())
    );
    assert_eq!(
        check_delegation(
            &parent,
            &set(vec![cache_rule(R, NameSel::All, BytesSel::All)])
        ),
        Err(Exceeds::Rule { index: 0, ops: R })
    );
    assert_eq!(
        check_delegation(
            &parent,
            &set(vec![cache_rule(L, NameSel::All, BytesSel::All)])
        ),
        Err(Exceeds::Rule { index: 0, ops: L })
    );
}

#[test]
fn list_delegation_ignores_selectors() {
    let parent = set(vec![cache_rule(L, named("a"), key(b"x"))]);
    let child = set(vec![cache_rule(L, NameSel::All, BytesSel::All)]);
    assert_eq!(check_delegation(&parent, &child), Ok(()));
}

/// Asserts that `parent_rule` may delegate `narrower` but not the reverse.
fn assert_strictly_narrower(parent_rule: Rule, narrower: Rule) {
    let parent = set(vec![parent_rule.clone()]);
    let child = set(vec![narrower.clone()]);
    assert_eq!(
        check_delegation(&parent, &child),
        Ok(()),
        "{parent_rule:?} should delegate {narrower:?}"
    );
    assert_eq!(
        check_delegation(&child, &parent),
        Err(Exceeds::Rule {
            index: 0,
            ops: parent_rule.ops()
        }),
        "{narrower:?} should not delegate {parent_rule:?}"
    );
}

#[test]
fn name_selector_narrowing_is_allowed_and_widening_refused() {
    assert_strictly_narrower(
        cache_rule(RW, NameSel::All, BytesSel::All),
        cache_rule(RW, named("a"), BytesSel::All),
    );
    assert_strictly_narrower(
        store_rule(R, NameSel::All, BytesSel::All),
        store_rule(R, named("a"), BytesSel::All),
    );
    assert_strictly_narrower(
        topic_rule(W, NameSel::All, TextSel::All),
        topic_rule(W, named("a"), TextSel::All),
    );
    assert_strictly_narrower(
        function_rule(NameSel::All, TextSel::All),
        function_rule(named("a"), TextSel::All),
    );
    // Sibling names cover neither way.
    let a = set(vec![cache_rule(R, named("a"), BytesSel::All)]);
    let ab = set(vec![cache_rule(R, named("ab"), BytesSel::All)]);
    assert_eq!(check_delegation(&a, &a), Ok(()));
    assert_eq!(
        check_delegation(&a, &ab),
        Err(Exceeds::Rule { index: 0, ops: R })
    );
    assert_eq!(
        check_delegation(&ab, &a),
        Err(Exceeds::Rule { index: 0, ops: R })
    );
}

#[test]
fn bytes_selector_narrowing_is_allowed_and_widening_refused() {
    let cache = |item| cache_rule(R, NameSel::All, item);
    assert_strictly_narrower(cache(BytesSel::All), cache(prefix(b"a")));
    assert_strictly_narrower(cache(BytesSel::All), cache(key(b"a")));
    assert_strictly_narrower(cache(prefix(b"a")), cache(prefix(b"ab")));
    assert_strictly_narrower(cache(prefix(b"a")), cache(key(b"ab")));
    // Key -> Prefix of the same bytes widens.
    assert_strictly_narrower(cache(prefix(b"a")), cache(key(b"a")));
    let store = |item| store_rule(W, named("s"), item);
    assert_strictly_narrower(store(prefix(b"a")), store(prefix(b"ab")));
    assert_strictly_narrower(store(prefix(b"")), store(key(b"")));

    // A key or prefix outside the parent's prefix is refused.
    let parent = set(vec![cache(prefix(b"a"))]);
    for child in [cache(key(b"b")), cache(prefix(b"b")), cache(key(b""))] {
        assert_eq!(
            check_delegation(&parent, &set(vec![child.clone()])),
            Err(Exceeds::Rule { index: 0, ops: R }),
            "{child:?}"
        );
    }
    let by_key = set(vec![cache(key(b"a"))]);
    assert_eq!(
        check_delegation(&by_key, &set(vec![cache(key(b"b"))])),
        Err(Exceeds::Rule { index: 0, ops: R })
    );
}

#[test]
fn text_selector_narrowing_is_allowed_and_widening_refused() {
    let topic = |sel| topic_rule(R, NameSel::All, sel);
    assert_strictly_narrower(topic(TextSel::All), topic(text_prefix("a")));
    assert_strictly_narrower(topic(TextSel::All), topic(text("a")));
    assert_strictly_narrower(topic(text_prefix("a")), topic(text_prefix("ab")));
    assert_strictly_narrower(topic(text_prefix("a")), topic(text("ab")));
    assert_strictly_narrower(topic(text_prefix("a")), topic(text("a")));
    assert_strictly_narrower(topic(text_prefix("")), topic(text_prefix("a")));
    let function = |sel| function_rule(named("c"), sel);
    assert_strictly_narrower(function(text_prefix("a")), function(text("ab")));
    assert_strictly_narrower(function(TextSel::All), function(text_prefix("")));

    let parent = set(vec![topic(text("a"))]);
    assert_eq!(
        check_delegation(&parent, &set(vec![topic(text("b"))])),
        Err(Exceeds::Rule { index: 0, ops: R })
    );
}

#[test]
fn ip_filter_narrowing_is_allowed() {
    let parent = filtered(role(system::VIEWER), &["10.0.0.0/8"]);
    for child_ranges in [
        &["10.0.0.0/8"][..],
        &["10.1.0.0/16"],
        &["10.1.0.0/16", "10.200.0.0/24"],
    ] {
        let child = filtered(role(system::VIEWER), child_ranges);
        assert_eq!(
            check_delegation(&parent, &child),
            Ok(()),
            "{child_ranges:?}"
        );
    }
    // Keeping the filter alongside an extra one is fine, too.
    let extra = filtered(
        filtered(role(system::VIEWER), &["192.168.0.0/24"]),
        &["10.1.0.0/16"],
    );
    assert_eq!(check_delegation(&parent, &extra), Ok(()));
    // A child may add a filter its parent does not have.
    assert_eq!(
        check_delegation(
            &role(system::VIEWER),
            &filtered(role(system::VIEWER), &["::1/128"])
        ),
        Ok(())
    );
}

#[test]
fn ip_filter_widening_or_dropping_is_refused() {
    let parent = filtered(role(system::VIEWER), &["10.1.0.0/16"]);
    assert_eq!(
        check_delegation(&parent, &filtered(role(system::VIEWER), &["10.1.0.0/16"])),
        Ok(())
    );
    for child_ranges in [
        &["10.0.0.0/8"][..],
        &["10.1.0.0/16", "192.168.0.0/24"],
        &["0.0.0.0/0"],
        &["::/0"],
        // Same addresses, but written as IPv4-mapped IPv6: refused conservatively.
        &["::ffff:10.1.0.0/112"],
    ] {
        let child = filtered(role(system::VIEWER), child_ranges);
        assert_eq!(
            check_delegation(&parent, &child),
            Err(Exceeds::Conditions),
            "{child_ranges:?}"
        );
    }
    assert_eq!(
        check_delegation(&parent, &role(system::VIEWER)),
        Err(Exceeds::Conditions)
    );
}

#[test]
fn every_parent_filter_must_be_kept() {
    let parent = filtered(
        filtered(role(system::VIEWER), &["10.0.0.0/8"]),
        &["10.1.0.0/16", "192.168.0.0/24"],
    );
    let keeps_both = filtered(role(system::VIEWER), &["10.1.2.0/24"]);
    assert_eq!(check_delegation(&parent, &keeps_both), Ok(()));
    let keeps_first_only = filtered(role(system::VIEWER), &["10.2.0.0/16"]);
    assert_eq!(
        check_delegation(&parent, &keeps_first_only),
        Err(Exceeds::Conditions)
    );
}

#[test]
fn conditions_are_checked_before_rules() {
    let parent = filtered(role(system::VIEWER), &["10.0.0.0/8"]);
    // The child both exceeds the rules and drops the filter: the filter is reported.
    assert_eq!(
        check_delegation(&parent, &role(system::OPERATOR)),
        Err(Exceeds::Conditions)
    );
    assert_eq!(
        check_delegation(&parent, &filtered(role(system::OPERATOR), &["10.0.0.0/8"])),
        Err(Exceeds::Rule { index: 1, ops: W })
    );
}

// ---------------------------------------------------------------------------------------------
// Property tests: strategies
// ---------------------------------------------------------------------------------------------

const NAMES: [&str; 3] = ["a", "ab", "b"];
const TEXT_PREFIXES: [&str; 4] = ["", "a", "ab", "b"];
const RANGES: [&str; 5] = [
    "10.0.0.0/8",
    "10.1.0.0/16",
    "192.168.0.0/24",
    "::1/128",
    "fd00::/8",
];
const PEERS: [&str; 10] = [
    "10.1.2.3",
    "10.2.0.1",
    "192.168.0.7",
    "192.168.1.1",
    "::1",
    "fd00::5",
    "2001:db8::1",
    "::ffff:10.1.2.3",
    "::ffff:192.168.0.7",
    "::ffff:10.2.0.1",
];
/// How many random (action, resource, peer) queries, and as many aimed at the child's rules,
/// each generated pair is checked against.
const QUERIES_PER_CASE: usize = 48;

fn arb_name() -> impl Strategy<Value = String> {
    prop::sample::select(NAMES.to_vec()).prop_map(str::to_owned)
}

fn arb_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(prop::sample::select(vec![b'a', b'b']), 0..=2)
}

fn arb_name_sel() -> impl Strategy<Value = NameSel> {
    prop_oneof![Just(NameSel::All), arb_name().prop_map(NameSel::Name)]
}

fn arb_bytes_sel() -> impl Strategy<Value = BytesSel> {
    prop_oneof![
        Just(BytesSel::All),
        arb_bytes().prop_map(BytesSel::Key),
        arb_bytes().prop_map(BytesSel::Prefix),
    ]
}

fn arb_text_sel() -> impl Strategy<Value = TextSel> {
    prop_oneof![
        Just(TextSel::All),
        arb_name().prop_map(TextSel::Name),
        prop::sample::select(TEXT_PREFIXES.to_vec()).prop_map(|p| TextSel::Prefix(p.to_owned())),
    ]
}

/// Random operation bits, restricted to those the family can carry; rarely empty.
fn arb_ops(family: Family) -> impl Strategy<Value = Ops> {
    let allowed = Rule::allowed_ops(family).bits();
    (any::<u8>(), prop::bool::weighted(0.05)).prop_map(move |(bits, empty)| {
        let bits = match bits & allowed {
            _ if empty => 0,
            0 => allowed,
            bits => bits,
        };
        Ops::from_bits(bits).expect("masked bits are valid")
    })
}

fn arb_rule() -> impl Strategy<Value = Rule> {
    prop_oneof![
        arb_ops(Family::Account).prop_map(Rule::Account),
        arb_ops(Family::Auth).prop_map(Rule::Auth),
        arb_ops(Family::Resource).prop_map(Rule::Resource),
        (arb_ops(Family::Cache), arb_name_sel(), arb_bytes_sel())
            .prop_map(|(ops, cache, item)| Rule::Cache { ops, cache, item }),
        (arb_ops(Family::Topic), arb_name_sel(), arb_text_sel())
            .prop_map(|(ops, cache, topic)| Rule::Topic { ops, cache, topic }),
        (arb_ops(Family::Store), arb_name_sel(), arb_bytes_sel())
            .prop_map(|(ops, store, item)| Rule::Store { ops, store, item }),
        (arb_ops(Family::Function), arb_name_sel(), arb_text_sel()).prop_map(
            |(ops, cache, function)| Rule::Function {
                ops,
                cache,
                function
            }
        ),
    ]
}

fn arb_range() -> impl Strategy<Value = IpNet> {
    prop::sample::select(RANGES.to_vec()).prop_map(net)
}

fn arb_ip_filter() -> impl Strategy<Value = Condition> {
    prop::collection::vec(arb_range(), 1..=2).prop_map(Condition::IpFilter)
}

fn arb_conditions() -> impl Strategy<Value = Vec<Condition>> {
    prop_oneof![
        5 => Just(Vec::new()),
        4 => arb_ip_filter().prop_map(|filter| vec![filter]),
        1 => prop::collection::vec(arb_ip_filter(), 2..=3),
    ]
}

fn arb_set() -> impl Strategy<Value = PermissionSet> {
    let grant = prop_oneof![
        1 => Just(Grant::SuperUser),
        6 => prop::collection::vec(arb_rule(), 0..=5).prop_map(Grant::Rules),
    ];
    (grant, arb_conditions()).prop_map(|(grant, conditions)| PermissionSet { grant, conditions })
}

/// An owned [`Resource`], so strategies can generate one.
#[derive(Clone, Debug)]
struct OwnedResource {
    cache: Option<String>,
    key: Option<Vec<u8>>,
    topic: Option<String>,
    function: Option<String>,
    store: Option<String>,
}

impl OwnedResource {
    fn borrow(&self) -> Resource<'_> {
        Resource {
            cache: self.cache.as_deref(),
            key: self.key.as_deref(),
            topic: self.topic.as_deref(),
            function: self.function.as_deref(),
            store: self.store.as_deref(),
        }
    }
}

fn arb_resource() -> impl Strategy<Value = OwnedResource> {
    // Names are mostly present, so selectors other than All get a chance to match.
    let name = || prop::option::weighted(0.85, arb_name());
    (
        name(),
        prop::option::weighted(0.85, arb_bytes()),
        name(),
        name(),
        name(),
    )
        .prop_map(|(cache, key, topic, function, store)| OwnedResource {
            cache,
            key,
            topic,
            function,
            store,
        })
}

fn arb_peer() -> impl Strategy<Value = Option<IpAddr>> {
    prop::option::weighted(0.9, prop::sample::select(PEERS.to_vec()).prop_map(ip))
}

type Query = (Action, OwnedResource, Option<IpAddr>);

fn arb_query() -> impl Strategy<Value = Query> {
    (
        prop::sample::select(ALL_ACTIONS.to_vec()),
        arb_resource(),
        arb_peer(),
    )
}

fn arb_queries() -> impl Strategy<Value = Vec<Query>> {
    prop::collection::vec(arb_query(), QUERIES_PER_CASE)
}

/// Draws small choices from a random seed.
struct Picker(u64);

impl Picker {
    fn pick(&mut self, n: usize) -> usize {
        let n = n as u64;
        let choice = self.0 % n;
        self.0 /= n;
        choice as usize
    }

    fn chance(&mut self) -> bool {
        self.pick(2) == 1
    }

    fn bytes(&mut self) -> Vec<u8> {
        let len = self.pick(3);
        (0..len).map(|_| [b'a', b'b'][self.pick(2)]).collect()
    }

    fn text(&mut self) -> String {
        ["", "a", "b"][self.pick(3)].to_owned()
    }
}

/// A selector at least as narrow as `sel`.
fn narrow_name(sel: &NameSel, picker: &mut Picker) -> NameSel {
    match sel {
        NameSel::All => match picker.pick(NAMES.len() + 1) {
            0 => NameSel::All,
            i => named(NAMES[i - 1]),
        },
        NameSel::Name(name) => NameSel::Name(name.clone()),
    }
}

fn narrow_bytes(sel: &BytesSel, picker: &mut Picker) -> BytesSel {
    match sel {
        BytesSel::All => match picker.pick(3) {
            0 => BytesSel::All,
            1 => BytesSel::Key(picker.bytes()),
            _ => BytesSel::Prefix(picker.bytes()),
        },
        BytesSel::Prefix(prefix) => {
            let mut longer = prefix.clone();
            longer.extend(picker.bytes());
            if picker.chance() {
                BytesSel::Key(longer)
            } else {
                BytesSel::Prefix(longer)
            }
        }
        BytesSel::Key(key) => BytesSel::Key(key.clone()),
    }
}

fn narrow_text(sel: &TextSel, picker: &mut Picker) -> TextSel {
    match sel {
        TextSel::All => match picker.pick(3) {
            0 => TextSel::All,
            1 => TextSel::Name(picker.text()),
            _ => TextSel::Prefix(picker.text()),
        },
        TextSel::Prefix(prefix) => {
            let longer = format!("{prefix}{}", picker.text());
            if picker.chance() {
                TextSel::Name(longer)
            } else {
                TextSel::Prefix(longer)
            }
        }
        TextSel::Name(name) => TextSel::Name(name.clone()),
    }
}

/// A rule granting at most what `rule` grants: some of its ops, narrower selectors.
fn narrow_rule(rule: &Rule, ops_mask: u8, picker: &mut Picker) -> Rule {
    let ops = Ops::from_bits(rule.ops().bits() & ops_mask & Ops::ALL_BITS).expect("masked bits");
    match rule {
        Rule::Account(_) => Rule::Account(ops),
        Rule::Auth(_) => Rule::Auth(ops),
        Rule::Resource(_) => Rule::Resource(ops),
        Rule::Cache { cache, item, .. } => Rule::Cache {
            ops,
            cache: narrow_name(cache, picker),
            item: narrow_bytes(item, picker),
        },
        Rule::Topic { cache, topic, .. } => Rule::Topic {
            ops,
            cache: narrow_name(cache, picker),
            topic: narrow_text(topic, picker),
        },
        Rule::Store { store, item, .. } => Rule::Store {
            ops,
            store: narrow_name(store, picker),
            item: narrow_bytes(item, picker),
        },
        Rule::Function {
            cache, function, ..
        } => Rule::Function {
            ops,
            cache: narrow_name(cache, picker),
            function: narrow_text(function, picker),
        },
    }
}

/// An ip_filter admitting at most what `ranges` admits: a non-empty subset of the ranges, each
/// possibly replaced by one of the fixed ranges it contains.
fn narrow_filter(ranges: &[IpNet], picker: &mut Picker) -> Condition {
    let mut narrowed: Vec<IpNet> = Vec::new();
    for range in ranges {
        if !narrowed.is_empty() && picker.chance() {
            continue; // drop this range
        }
        let inside: Vec<IpNet> = RANGES
            .iter()
            .map(|cidr| net(cidr))
            .filter(|candidate| range.contains(candidate))
            .collect();
        narrowed.push(if inside.is_empty() {
            *range
        } else {
            inside[picker.pick(inside.len())]
        });
    }
    Condition::IpFilter(narrowed)
}

/// The random choices that turn a parent into a narrower child.
#[derive(Clone, Debug)]
struct Narrowing {
    /// Each entry makes one child rule from parent rule `index % len` (none when the parent
    /// has no rules); fewer entries than parent rules drops some.
    edits: Vec<(usize, u8, u64)>,
    /// The child's rules when the parent is super-user and the child is not.
    fresh_rules: Vec<Rule>,
    keep_super_user: bool,
    /// An ip_filter the child adds on top of the parent's.
    extra_filter: Option<Condition>,
    seed: u64,
}

fn arb_narrowing() -> impl Strategy<Value = Narrowing> {
    (
        // Or-ing two random masks keeps each op bit with probability 3/4.
        prop::collection::vec(
            (any::<usize>(), any::<u8>(), any::<u8>(), any::<u64>())
                .prop_map(|(index, mask_a, mask_b, seed)| (index, mask_a | mask_b, seed)),
            1..=6,
        ),
        prop::collection::vec(arb_rule(), 0..=4),
        any::<bool>(),
        prop::option::weighted(0.15, arb_ip_filter()),
        any::<u64>(),
    )
        .prop_map(
            |(edits, fresh_rules, keep_super_user, extra_filter, seed)| Narrowing {
                edits,
                fresh_rules,
                keep_super_user,
                extra_filter,
                seed,
            },
        )
}

fn narrow(parent: &PermissionSet, narrowing: &Narrowing) -> PermissionSet {
    let mut picker = Picker(narrowing.seed);
    let grant = match &parent.grant {
        Grant::SuperUser if narrowing.keep_super_user => Grant::SuperUser,
        Grant::SuperUser => Grant::Rules(narrowing.fresh_rules.clone()),
        Grant::Rules(rules) if rules.is_empty() => Grant::Rules(Vec::new()),
        Grant::Rules(rules) => Grant::Rules(
            narrowing
                .edits
                .iter()
                .map(|&(index, ops_mask, seed)| {
                    narrow_rule(&rules[index % rules.len()], ops_mask, &mut Picker(seed))
                })
                .collect(),
        ),
    };
    let mut conditions: Vec<Condition> = parent
        .conditions
        .iter()
        .map(|Condition::IpFilter(ranges)| narrow_filter(ranges, &mut picker))
        .collect();
    conditions.extend(narrowing.extra_filter.clone());
    if conditions.len() > 1 && picker.chance() {
        conditions.reverse();
    }
    PermissionSet { grant, conditions }
}

/// A change that may make a child exceed its parent.
#[derive(Clone, Debug)]
enum Perturbation {
    AddRule(Rule),
    ReplaceRule(usize, Rule),
    DropConditions,
    AddRangeToFirstFilter(IpNet),
    BecomeSuperUser,
}

fn arb_perturbation() -> impl Strategy<Value = Perturbation> {
    prop_oneof![
        3 => arb_rule().prop_map(Perturbation::AddRule),
        3 => (any::<usize>(), arb_rule()).prop_map(|(i, rule)| Perturbation::ReplaceRule(i, rule)),
        1 => Just(Perturbation::DropConditions),
        1 => arb_range().prop_map(Perturbation::AddRangeToFirstFilter),
        1 => Just(Perturbation::BecomeSuperUser),
    ]
}

fn perturb(mut child: PermissionSet, perturbation: &Perturbation) -> PermissionSet {
    match perturbation {
        Perturbation::AddRule(rule) => {
            if let Grant::Rules(rules) = &mut child.grant {
                rules.push(rule.clone());
            }
        }
        Perturbation::ReplaceRule(index, rule) => {
            if let Grant::Rules(rules) = &mut child.grant {
                if !rules.is_empty() {
                    let len = rules.len();
                    rules[index % len] = rule.clone();
                }
            }
        }
        Perturbation::DropConditions => child.conditions.clear(),
        Perturbation::AddRangeToFirstFilter(range) => {
            if let Some(Condition::IpFilter(ranges)) = child.conditions.first_mut() {
                ranges.push(*range);
            }
        }
        Perturbation::BecomeSuperUser => child.grant = Grant::SuperUser,
    }
    child
}

/// Parent and a child narrowed from it (always within the parent).
fn arb_narrowed_pair() -> impl Strategy<Value = (PermissionSet, PermissionSet)> {
    (arb_set(), arb_narrowing()).prop_map(|(parent, narrowing)| {
        let child = narrow(&parent, &narrowing);
        (parent, child)
    })
}

/// Parent and a narrowed child that is sometimes perturbed, so some children exceed the parent
/// by a little (near misses for `check_delegation`).
fn arb_near_pair() -> impl Strategy<Value = (PermissionSet, PermissionSet)> {
    (
        arb_narrowed_pair(),
        prop::option::weighted(0.3, arb_perturbation()),
    )
        .prop_map(|((parent, child), perturbation)| {
            let child = match &perturbation {
                Some(p) => perturb(child, p),
                None => child,
            };
            (parent, child)
        })
}

/// The first query the child allows and the parent refuses, if any.
fn find_escalation<'q>(
    parent: &PermissionSet,
    child: &PermissionSet,
    queries: &'q [Query],
) -> Option<&'q Query> {
    queries.iter().find(|(action, resource, peer)| {
        let resource = resource.borrow();
        evaluate(child, *action, &resource, *peer).is_ok()
            && evaluate(parent, *action, &resource, *peer).is_err()
    })
}

/// A query aimed at `rule`: an action the rule's ops can serve, a resource its selectors match
/// (mostly), and a peer admitted by `conditions` when one exists.
fn targeted_query(rule: &Rule, conditions: &[Condition], picker: &mut Picker) -> Query {
    let family = rule.family();
    let of_family: Vec<Action> = ALL_ACTIONS
        .into_iter()
        .filter(|action| action.needs().0 == family)
        .collect();
    let served: Vec<Action> = of_family
        .iter()
        .copied()
        .filter(|action| rule.ops().contains(action.needs().1))
        .collect();
    let candidates = if served.is_empty() {
        &of_family
    } else {
        &served
    };
    let action = candidates[picker.pick(candidates.len())];

    let mut resource = OwnedResource {
        cache: None,
        key: None,
        topic: None,
        function: None,
        store: None,
    };
    match rule {
        Rule::Account(_) | Rule::Auth(_) | Rule::Resource(_) => {}
        Rule::Cache { cache, item, .. } => {
            resource.cache = name_for(cache, picker);
            resource.key = key_for(item, picker);
        }
        Rule::Topic { cache, topic, .. } => {
            resource.cache = name_for(cache, picker);
            resource.topic = text_for(topic, picker);
        }
        Rule::Store { store, item, .. } => {
            resource.store = name_for(store, picker);
            resource.key = key_for(item, picker);
        }
        Rule::Function {
            cache, function, ..
        } => {
            resource.cache = name_for(cache, picker);
            resource.function = text_for(function, picker);
        }
    }

    let gate = PermissionSet {
        grant: Grant::SuperUser,
        conditions: conditions.to_vec(),
    };
    let admitted: Vec<IpAddr> = PEERS
        .iter()
        .map(|addr| ip(addr))
        .filter(|&peer| evaluate(&gate, action, &resource.borrow(), Some(peer)).is_ok())
        .collect();
    let peer = if admitted.is_empty() || picker.pick(8) == 0 {
        PEERS.get(picker.pick(PEERS.len() + 1)).map(|addr| ip(addr))
    } else {
        Some(admitted[picker.pick(admitted.len())])
    };
    (action, resource, peer)
}

fn name_for(sel: &NameSel, picker: &mut Picker) -> Option<String> {
    match sel {
        NameSel::Name(name) if picker.pick(8) != 0 => Some(name.clone()),
        _ => Some(NAMES[picker.pick(NAMES.len())].to_owned()),
    }
}

fn key_for(sel: &BytesSel, picker: &mut Picker) -> Option<Vec<u8>> {
    match sel {
        BytesSel::Key(key) if picker.pick(8) != 0 => Some(key.clone()),
        BytesSel::Prefix(prefix) if picker.pick(8) != 0 => {
            let mut key = prefix.clone();
            key.extend(picker.bytes());
            Some(key)
        }
        _ if picker.pick(4) == 0 => None,
        _ => Some(picker.bytes()),
    }
}

fn text_for(sel: &TextSel, picker: &mut Picker) -> Option<String> {
    match sel {
        TextSel::Name(name) if picker.pick(8) != 0 => Some(name.clone()),
        TextSel::Prefix(prefix) if picker.pick(8) != 0 => {
            Some(format!("{prefix}{}", picker.text()))
        }
        _ if picker.pick(4) == 0 => None,
        _ => Some(NAMES[picker.pick(NAMES.len())].to_owned()),
    }
}

/// Queries aimed at the child's rules (or at random rules for a super-user child), one per seed.
fn targeted_queries(child: &PermissionSet, extra_rules: &[Rule], seeds: &[u64]) -> Vec<Query> {
    let rules: Vec<&Rule> = match &child.grant {
        Grant::Rules(rules) if !rules.is_empty() => rules.iter().collect(),
        _ => extra_rules.iter().collect(),
    };
    if rules.is_empty() {
        return Vec::new();
    }
    seeds
        .iter()
        .enumerate()
        .map(|(i, &seed)| {
            targeted_query(rules[i % rules.len()], &child.conditions, &mut Picker(seed))
        })
        .collect()
}

fn arb_seeds() -> impl Strategy<Value = Vec<u64>> {
    prop::collection::vec(any::<u64>(), QUERIES_PER_CASE)
}

fn sample<S: Strategy>(strategy: &S, runner: &mut TestRunner) -> S::Value {
    strategy
        .new_tree(runner)
        .expect("strategy generates a value")
        .current()
}

// ---------------------------------------------------------------------------------------------
// Property tests
// ---------------------------------------------------------------------------------------------

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn prop_delegation_is_sound_for_random_pairs(
        parent in arb_set(),
        child in arb_set(),
        mut queries in arb_queries(),
        extra_rules in prop::collection::vec(arb_rule(), 1..=3),
        seeds in arb_seeds(),
    ) {
        if check_delegation(&parent, &child).is_ok() {
            queries.extend(targeted_queries(&child, &extra_rules, &seeds));
            let escalation = find_escalation(&parent, &child, &queries);
            prop_assert!(escalation.is_none(), "child exceeds parent on {:?}", escalation);
        }
    }

    #[test]
    fn prop_delegation_is_sound_for_near_pairs(
        (parent, child) in arb_near_pair(),
        mut queries in arb_queries(),
        extra_rules in prop::collection::vec(arb_rule(), 1..=3),
        seeds in arb_seeds(),
    ) {
        if check_delegation(&parent, &child).is_ok() {
            queries.extend(targeted_queries(&child, &extra_rules, &seeds));
            let escalation = find_escalation(&parent, &child, &queries);
            prop_assert!(escalation.is_none(), "child exceeds parent on {:?}", escalation);
        }
    }

    #[test]
    fn prop_narrowed_child_is_accepted((parent, child) in arb_narrowed_pair()) {
        prop_assert_eq!(check_delegation(&parent, &child), Ok(()));
    }

    #[test]
    fn prop_every_set_delegates_to_itself(set in arb_set()) {
        prop_assert_eq!(check_delegation(&set, &set), Ok(()));
    }

    #[test]
    fn prop_adding_a_rule_never_revokes(
        set in arb_set(),
        extra in arb_rule(),
        (action, resource, peer) in arb_query(),
    ) {
        let resource = resource.borrow();
        if evaluate(&set, action, &resource, peer).is_ok() {
            let mut wider = set.clone();
            if let Grant::Rules(rules) = &mut wider.grant {
                rules.push(extra);
            }
            prop_assert_eq!(evaluate(&wider, action, &resource, peer), Ok(()));
        }
    }

    #[test]
    fn prop_filtered_set_refuses_unknown_peer(
        set in arb_set(),
        filter in arb_ip_filter(),
        (action, resource, _) in arb_query(),
    ) {
        let mut set = set;
        set.conditions.push(filter);
        prop_assert_eq!(
            evaluate(&set, action, &resource.borrow(), None),
            Err(Denial::IpNotAllowed)
        );
    }

    #[test]
    fn prop_unconditional_super_user_allows_everything((action, resource, peer) in arb_query()) {
        prop_assert_eq!(
            evaluate(&PermissionSet::super_user(), action, &resource.borrow(), peer),
            Ok(())
        );
    }
}

/// The near-pair generator must give the soundness property something to chew on: most pairs
/// pass `check_delegation`, some do not, and many passing children actually allow queries.
#[test]
fn near_pairs_are_mostly_delegable_and_exercise_evaluate() {
    let mut runner = TestRunner::deterministic();
    let pairs = arb_near_pair();
    let queries = arb_queries();
    let total = 1000;
    let mut accepted = 0;
    let mut accepted_and_allowing = 0;
    for _ in 0..total {
        let (parent, child) = sample(&pairs, &mut runner);
        if check_delegation(&parent, &child).is_ok() {
            accepted += 1;
            let mut queries = sample(&queries, &mut runner);
            let extra_rules = sample(&prop::collection::vec(arb_rule(), 1..=3), &mut runner);
            let seeds = sample(&arb_seeds(), &mut runner);
            queries.extend(targeted_queries(&child, &extra_rules, &seeds));
            let allows_something = queries.iter().any(|(action, resource, peer)| {
                evaluate(&child, *action, &resource.borrow(), *peer).is_ok()
            });
            if allows_something {
                accepted_and_allowing += 1;
            }
        }
    }
    let rejected = total - accepted;
    eprintln!(
        "near pairs: {accepted}/{total} accepted, {accepted_and_allowing} of them allow a query"
    );
    assert!(
        accepted * 10 >= total * 6,
        "only {accepted}/{total} accepted"
    );
    assert!(rejected * 20 >= total, "only {rejected}/{total} rejected");
    assert!(
        accepted_and_allowing * 2 >= accepted,
        "only {accepted_and_allowing}/{accepted} accepted children allow any query"
    );
}
