//! Delegation: the subset test run whenever a credential creates another credential or a role.

use ipnet::IpNet;

use super::*;

/// Where a delegated set exceeds its parent.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Exceeds {
    #[error("super-user cannot be delegated by a credential that is not super-user")]
    SuperUser,
    #[error("rule {index} grants {ops:?} beyond the caller's own permissions")]
    Rule { index: usize, ops: Ops },
    #[error("the caller's ip_filter condition must be kept: every delegated range must lie within the caller's ranges")]
    Conditions,
}

/// The subset test: `Ok` only if everything `child` allows, `parent` allows too.
pub fn check_delegation(parent: &PermissionSet, child: &PermissionSet) -> Result<(), Exceeds> {
    // Every parent condition must be at least as strict in the child.
    for condition in &parent.conditions {
        let Condition::IpFilter(parent_ranges) = condition;
        let kept = child.conditions.iter().any(|c| {
            let Condition::IpFilter(child_ranges) = c;
            child_ranges
                .iter()
                .all(|cr| parent_ranges.iter().any(|pr| net_within(cr, pr)))
        });
        if !kept {
            return Err(Exceeds::Conditions);
        }
    }
    let parent_rules = match &parent.grant {
        Grant::SuperUser => return Ok(()),
        Grant::Rules(rules) => rules,
    };
    let child_rules = match &child.grant {
        Grant::SuperUser => return Err(Exceeds::SuperUser),
        Grant::Rules(rules) => rules,
    };
    for (index, rule) in child_rules.iter().enumerate() {
        let uncovered = rule
            .ops()
            .iter()
            .filter(|op| !parent_rules.iter().any(|p| rule_covers(p, rule, *op)))
            .fold(Ops::empty(), Ops::union);
        if !uncovered.is_empty() {
            return Err(Exceeds::Rule {
                index,
                ops: uncovered,
            });
        }
    }
    Ok(())
}

/// Whether `parent` grants `op` on everything `child` selects.
fn rule_covers(parent: &Rule, child: &Rule, op: Ops) -> bool {
    if parent.family() != child.family() || !parent.ops().contains(op) {
        return false;
    }
    if op == Ops::LIST {
        return true;
    }
    match (parent, child) {
        (Rule::Account(_), Rule::Account(_))
        | (Rule::Auth(_), Rule::Auth(_))
        | (Rule::Resource(_), Rule::Resource(_)) => true,
        (
            Rule::Cache {
                cache: pc,
                item: pi,
                ..
            },
            Rule::Cache {
                cache: cc,
                item: ci,
                ..
            },
        )
        | (
            Rule::Store {
                store: pc,
                item: pi,
                ..
            },
            Rule::Store {
                store: cc,
                item: ci,
                ..
            },
        ) => name_covers(pc, cc) && bytes_covers(pi, ci),
        (
            Rule::Topic {
                cache: pc,
                topic: pt,
                ..
            },
            Rule::Topic {
                cache: cc,
                topic: ct,
                ..
            },
        )
        | (
            Rule::Function {
                cache: pc,
                function: pt,
                ..
            },
            Rule::Function {
                cache: cc,
                function: ct,
                ..
            },
        ) => name_covers(pc, cc) && text_covers(pt, ct),
        _ => false,
    }
}

fn name_covers(parent: &NameSel, child: &NameSel) -> bool {
    match (parent, child) {
        (NameSel::All, _) => true,
        (NameSel::Name(p), NameSel::Name(c)) => p == c,
        (NameSel::Name(_), NameSel::All) => false,
    }
}

fn bytes_covers(parent: &BytesSel, child: &BytesSel) -> bool {
    match (parent, child) {
        (BytesSel::All, _) => true,
        (BytesSel::Key(p), BytesSel::Key(c)) => p == c,
        (BytesSel::Prefix(p), BytesSel::Key(c) | BytesSel::Prefix(c)) => c.starts_with(p),
        _ => false,
    }
}

fn text_covers(parent: &TextSel, child: &TextSel) -> bool {
    match (parent, child) {
        (TextSel::All, _) => true,
        (TextSel::Name(p), TextSel::Name(c)) => p == c,
        (TextSel::Prefix(p), TextSel::Name(c) | TextSel::Prefix(c)) => c.starts_with(p.as_str()),
        _ => false,
    }
}

fn net_within(inner: &IpNet, outer: &IpNet) -> bool {
    match (inner, outer) {
        (IpNet::V4(i), IpNet::V4(o)) => o.contains(i),
        (IpNet::V6(i), IpNet::V6(o)) => o.contains(i),
        _ => false,
    }
}
