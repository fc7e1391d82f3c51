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

use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use std::fmt;

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
mod delegate;
mod evaluate;
pub mod lifetime;
pub mod proto;
pub mod system;

pub use delegate::{check_delegation, Exceeds};
pub use evaluate::{admits_peer, canonical_ip, evaluate};
pub use lifetime::KeyPolicy;

#[cfg(test)]
mod tests;
