//! Property tests: whatever a delegated set allows, its parent allows too; and more.

use super::strategies::*;
use super::*;

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
