//! Enforcement: [`evaluate`] decides one action on one resource for one peer, default deny.

use std::net::IpAddr;

use super::*;

pub fn evaluate(
    set: &PermissionSet,
    action: Action,
    resource: &Resource<'_>,
    peer: Option<IpAddr>,
) -> Result<(), Denial> {
    if !conditions_hold(&set.conditions, peer) {
        return Err(Denial::IpNotAllowed);
    }
    let rules = match &set.grant {
        Grant::SuperUser => return Ok(()),
        Grant::Rules(rules) => rules,
    };
    let (family, needed) = action.needs();
    // Each needed operation may come from a different rule (read from one, write from another).
    for op in needed.iter() {
        let granted = rules.iter().any(|rule| {
            rule.family() == family && rule.ops().contains(op) && rule_matches(rule, op, resource)
        });
        if !granted {
            return Err(Denial::Permission);
        }
    }
    Ok(())
}

/// Whether the set's conditions admit a caller at `peer` (whatever the action).
pub fn admits_peer(set: &PermissionSet, peer: Option<IpAddr>) -> bool {
    conditions_hold(&set.conditions, peer)
}

fn conditions_hold(conditions: &[Condition], peer: Option<IpAddr>) -> bool {
    conditions.iter().all(|condition| match condition {
        Condition::IpFilter(ranges) => match peer {
            // No peer address to check: a filtered credential is refused, never waved through.
            None => false,
            Some(ip) => {
                let ip = canonical_ip(ip);
                ranges.iter().any(|range| range.contains(&ip))
            }
        },
    })
}

/// Maps IPv4-mapped IPv6 addresses (`::ffff:a.b.c.d`, as dual-stack sockets report IPv4
/// peers) to plain IPv4, so IPv4 ranges apply to them.
pub fn canonical_ip(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(v6),
        },
        v4 => v4,
    }
}

fn rule_matches(rule: &Rule, op: Ops, resource: &Resource<'_>) -> bool {
    // A list cannot name resources, so selectors never restrict it.
    if op == Ops::LIST {
        return true;
    }
    match rule {
        Rule::Account(_) | Rule::Auth(_) | Rule::Resource(_) => true,
        Rule::Cache { cache, item, .. } => {
            name_matches(cache, resource.cache) && bytes_matches(item, resource.key)
        }
        Rule::Topic { cache, topic, .. } => {
            name_matches(cache, resource.cache) && text_matches(topic, resource.topic)
        }
        Rule::Store { store, item, .. } => {
            name_matches(store, resource.store) && bytes_matches(item, resource.key)
        }
        Rule::Function {
            cache, function, ..
        } => name_matches(cache, resource.cache) && text_matches(function, resource.function),
    }
}

fn name_matches(sel: &NameSel, name: Option<&str>) -> bool {
    match (sel, name) {
        (NameSel::All, _) => true,
        (NameSel::Name(want), Some(name)) => want == name,
        (NameSel::Name(_), None) => false,
    }
}

/// Without a key, only an all-items selector applies (the action covers every item).
fn bytes_matches(sel: &BytesSel, key: Option<&[u8]>) -> bool {
    match (sel, key) {
        (BytesSel::All, _) => true,
        (BytesSel::Key(want), Some(key)) => want.as_slice() == key,
        (BytesSel::Prefix(prefix), Some(key)) => key.starts_with(prefix),
        (_, None) => false,
    }
}

fn text_matches(sel: &TextSel, name: Option<&str>) -> bool {
    match (sel, name) {
        (TextSel::All, _) => true,
        (TextSel::Name(want), Some(name)) => want == name,
        (TextSel::Prefix(prefix), Some(name)) => name.starts_with(prefix.as_str()),
        (_, None) => false,
    }
}
