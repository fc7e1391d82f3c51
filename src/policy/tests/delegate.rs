//! check_delegation: the subset test.

use super::*;

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
