//! evaluate: operation sets, defaults and families, cache selectors.

use super::*;

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
