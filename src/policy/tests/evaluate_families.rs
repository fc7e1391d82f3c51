//! evaluate: topics, stores, functions and ip_filter conditions.

use super::*;

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
