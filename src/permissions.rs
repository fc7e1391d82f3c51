//! The permission model: policy as data, enforcement as pure functions.
//!
//! One model serves roles, SDK-made keys and disposable tokens. A [`PermissionSet`] is either
//! super-user or an explicit list of [`Rule`]s, and carries [`Condition`]s (an IP allow-list)
//! that must all hold before any rule applies.
//!
//! * [`evaluate`] answers "may this set do this action on this resource from this peer?" and is
//!   default-deny.
//! * [`check_delegation`] is the subset test used whenever a credential creates another
//!   credential or a role: nobody can hand out something they cannot do themselves. It is
//!   deliberately conservative (each delegated grant must be covered by a single rule of the
//!   parent), which keeps it sound: a property test asserts that whatever the child allows, the
//!   parent allows too.
//!
//! "List" permissions follow the upstream contract: a list cannot name resources, so a rule's
//! selectors do not restrict its list permission.

use std::fmt;
use std::net::IpAddr;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

/// A set of operations within one rule family, as bits.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
pub struct Ops(u8);

impl Ops {
    pub const READ: Ops = Ops(1);
    pub const WRITE: Ops = Ops(2);
    pub const LIST: Ops = Ops(4);
    pub const INVOKE: Ops = Ops(8);
    /// Every operation bit defined above.
    pub const ALL_BITS: u8 = 0b1111;

    pub const fn empty() -> Ops {
        Ops(0)
    }
    pub const fn union(self, other: Ops) -> Ops {
        Ops(self.0 | other.0)
    }
    pub const fn contains(self, other: Ops) -> bool {
        self.0 & other.0 == other.0
    }
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }
    pub const fn bits(self) -> u8 {
        self.0
    }
    /// Builds from raw bits, refusing unknown ones.
    pub const fn from_bits(bits: u8) -> Option<Ops> {
        if bits & !Self::ALL_BITS == 0 {
            Some(Ops(bits))
        } else {
            None
        }
    }
    /// The single-bit operations contained in this set.
    pub fn iter(self) -> impl Iterator<Item = Ops> {
        [Ops::READ, Ops::WRITE, Ops::LIST, Ops::INVOKE]
            .into_iter()
            .filter(move |op| self.contains(*op))
    }
}

impl fmt::Debug for Ops {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self
            .iter()
            .map(|op| match op {
                Ops::READ => "read",
                Ops::WRITE => "write",
                Ops::LIST => "list",
                _ => "invoke",
            })
            .collect();
        write!(f, "{}", names.join("+"))
    }
}

/// Selects caches or stores: all of them, or one by name.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum NameSel {
    All,
    Name(String),
}

/// Selects items by key: all, one key, or a key prefix.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum BytesSel {
    All,
    Key(Vec<u8>),
    Prefix(Vec<u8>),
}

/// Selects topics or functions: all, one name, or a name prefix.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum TextSel {
    All,
    Name(String),
    Prefix(String),
}

/// One rule of an explicit permission set.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Rule {
    /// Account management: read, write, list.
    Account(Ops),
    /// Key, role and token management: read, write, list.
    Auth(Ops),
    /// Resource (cache, store, ...) management: read, write, list.
    Resource(Ops),
    /// Cache data: list, read, write.
    Cache {
        ops: Ops,
        cache: NameSel,
        item: BytesSel,
    },
    /// Topics: list, read (subscribe), write (publish).
    Topic {
        ops: Ops,
        cache: NameSel,
        topic: TextSel,
    },
    /// Store data: list, read, write.
    Store {
        ops: Ops,
        store: NameSel,
        item: BytesSel,
    },
    /// Functions: invoke.
    Function {
        ops: Ops,
        cache: NameSel,
        function: TextSel,
    },
}

impl Rule {
    pub fn family(&self) -> Family {
        match self {
            Rule::Account(_) => Family::Account,
            Rule::Auth(_) => Family::Auth,
            Rule::Resource(_) => Family::Resource,
            Rule::Cache { .. } => Family::Cache,
            Rule::Topic { .. } => Family::Topic,
            Rule::Store { .. } => Family::Store,
            Rule::Function { .. } => Family::Function,
        }
    }

    pub fn ops(&self) -> Ops {
        match self {
            Rule::Account(ops) | Rule::Auth(ops) | Rule::Resource(ops) => *ops,
            Rule::Cache { ops, .. }
            | Rule::Topic { ops, .. }
            | Rule::Store { ops, .. }
            | Rule::Function { ops, .. } => *ops,
        }
    }

    /// The operations a rule family can carry.
    pub fn allowed_ops(family: Family) -> Ops {
        match family {
            Family::Function => Ops::INVOKE,
            _ => Ops::READ.union(Ops::WRITE).union(Ops::LIST),
        }
    }
}

/// Rule families; each action belongs to exactly one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Family {
    Account,
    Auth,
    Resource,
    Cache,
    Topic,
    Store,
    Function,
}

/// A condition every rule of a set is subject to.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Condition {
    /// The peer address must fall in one of these ranges (never empty).
    IpFilter(Vec<IpNet>),
}

/// What a set grants, before conditions.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Grant {
    SuperUser,
    Rules(Vec<Rule>),
}

/// A complete permission set: a grant and the conditions under which it applies.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PermissionSet {
    pub grant: Grant,
    pub conditions: Vec<Condition>,
}

impl PermissionSet {
    pub fn super_user() -> Self {
        PermissionSet {
            grant: Grant::SuperUser,
            conditions: Vec::new(),
        }
    }

    pub fn rules(rules: Vec<Rule>) -> Self {
        PermissionSet {
            grant: Grant::Rules(rules),
            conditions: Vec::new(),
        }
    }

    pub fn is_super_user(&self) -> bool {
        matches!(self.grant, Grant::SuperUser)
    }
}

/// Something a credential may be asked to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Action {
    CacheRead,
    CacheWrite,
    /// Conditional and read-modify-write operations: needs read and write on the item.
    CacheReadWrite,
    CacheList,
    TopicSubscribe,
    TopicPublish,
    TopicList,
    StoreRead,
    StoreWrite,
    StoreList,
    FunctionInvoke,
    AccountRead,
    AccountWrite,
    AccountList,
    AuthRead,
    AuthWrite,
    AuthList,
    ResourceRead,
    ResourceWrite,
    ResourceList,
}

impl Action {
    /// The family and operations the action needs (every one of them).
    pub fn needs(self) -> (Family, Ops) {
        use Action::*;
        match self {
            CacheRead => (Family::Cache, Ops::READ),
            CacheWrite => (Family::Cache, Ops::WRITE),
            CacheReadWrite => (Family::Cache, Ops::READ.union(Ops::WRITE)),
            CacheList => (Family::Cache, Ops::LIST),
            TopicSubscribe => (Family::Topic, Ops::READ),
            TopicPublish => (Family::Topic, Ops::WRITE),
            TopicList => (Family::Topic, Ops::LIST),
            StoreRead => (Family::Store, Ops::READ),
            StoreWrite => (Family::Store, Ops::WRITE),
            StoreList => (Family::Store, Ops::LIST),
            FunctionInvoke => (Family::Function, Ops::INVOKE),
            AccountRead => (Family::Account, Ops::READ),
            AccountWrite => (Family::Account, Ops::WRITE),
            AccountList => (Family::Account, Ops::LIST),
            AuthRead => (Family::Auth, Ops::READ),
            AuthWrite => (Family::Auth, Ops::WRITE),
            AuthList => (Family::Auth, Ops::LIST),
            ResourceRead => (Family::Resource, Ops::READ),
            ResourceWrite => (Family::Resource, Ops::WRITE),
            ResourceList => (Family::Resource, Ops::LIST),
        }
    }
}

/// The resource an action is about. Fields that do not apply are `None`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Resource<'a> {
    pub cache: Option<&'a str>,
    pub key: Option<&'a [u8]>,
    pub topic: Option<&'a str>,
    pub function: Option<&'a str>,
    pub store: Option<&'a str>,
}

/// Why [`evaluate`] said no.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Denial {
    /// No rule grants the action on the resource.
    Permission,
    /// An ip_filter condition does not admit the peer (or the peer is unknown).
    IpNotAllowed,
}

/// Decides whether `set` allows `action` on `resource` for a caller at `peer`. Default deny.
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

/// The fixed system roles every account has.
pub mod system {
    use super::*;

    pub const OWNER: &str = "owner";
    pub const OPERATOR: &str = "operator";
    pub const VIEWER: &str = "viewer";
    pub const ALL: [&str; 3] = [OWNER, OPERATOR, VIEWER];

    const RWL: Ops = Ops::READ.union(Ops::WRITE).union(Ops::LIST);
    const RL: Ops = Ops::READ.union(Ops::LIST);

    /// The permission set of a system role, by id.
    pub fn permissions(role_id: &str) -> Option<PermissionSet> {
        match role_id {
            OWNER => Some(PermissionSet::super_user()),
            OPERATOR => Some(PermissionSet::rules(vec![
                Rule::Account(RL),
                Rule::Auth(RWL),
                Rule::Resource(RWL),
                Rule::Cache {
                    ops: RWL,
                    cache: NameSel::All,
                    item: BytesSel::All,
                },
                Rule::Topic {
                    ops: RWL,
                    cache: NameSel::All,
                    topic: TextSel::All,
                },
                Rule::Store {
                    ops: RWL,
                    store: NameSel::All,
                    item: BytesSel::All,
                },
                Rule::Function {
                    ops: Ops::INVOKE,
                    cache: NameSel::All,
                    function: TextSel::All,
                },
            ])),
            VIEWER => Some(PermissionSet::rules(vec![
                Rule::Account(RL),
                Rule::Auth(RL),
                Rule::Resource(RL),
                Rule::Cache {
                    ops: RL,
                    cache: NameSel::All,
                    item: BytesSel::All,
                },
                Rule::Topic {
                    ops: RL,
                    cache: NameSel::All,
                    topic: TextSel::All,
                },
                Rule::Store {
                    ops: RL,
                    store: NameSel::All,
                    item: BytesSel::All,
                },
            ])),
            _ => None,
        }
    }

    /// Human name of a system role.
    pub fn name(role_id: &str) -> &'static str {
        match role_id {
            OWNER => "Owner",
            OPERATOR => "Operator",
            _ => "Viewer",
        }
    }
}

#[cfg(test)]
mod tests;
