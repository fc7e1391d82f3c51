//! Strategies of the property tests: arbitrary rules, sets, resources and peers.

use super::*;

// ---------------------------------------------------------------------------------------------
// Property tests: strategies
// ---------------------------------------------------------------------------------------------

pub(super) const NAMES: [&str; 3] = ["a", "ab", "b"];
pub(super) const TEXT_PREFIXES: [&str; 4] = ["", "a", "ab", "b"];
pub(super) const RANGES: [&str; 5] = [
    "10.0.0.0/8",
    "10.1.0.0/16",
    "192.168.0.0/24",
    "::1/128",
    "fd00::/8",
];
pub(super) const PEERS: [&str; 10] = [
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
pub(super) const QUERIES_PER_CASE: usize = 48;

pub(super) fn arb_name() -> impl Strategy<Value = String> {
    prop::sample::select(NAMES.to_vec()).prop_map(str::to_owned)
}

pub(super) fn arb_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(prop::sample::select(vec![b'a', b'b']), 0..=2)
}

pub(super) fn arb_name_sel() -> impl Strategy<Value = NameSel> {
    prop_oneof![Just(NameSel::All), arb_name().prop_map(NameSel::Name)]
}

pub(super) fn arb_bytes_sel() -> impl Strategy<Value = BytesSel> {
    prop_oneof![
        Just(BytesSel::All),
        arb_bytes().prop_map(BytesSel::Key),
        arb_bytes().prop_map(BytesSel::Prefix),
    ]
}

pub(super) fn arb_text_sel() -> impl Strategy<Value = TextSel> {
    prop_oneof![
        Just(TextSel::All),
        arb_name().prop_map(TextSel::Name),
        prop::sample::select(TEXT_PREFIXES.to_vec()).prop_map(|p| TextSel::Prefix(p.to_owned())),
    ]
}

/// Random operation bits, restricted to those the family can carry; rarely empty.
pub(super) fn arb_ops(family: Family) -> impl Strategy<Value = Ops> {
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

pub(super) fn arb_rule() -> impl Strategy<Value = Rule> {
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

pub(super) fn arb_range() -> impl Strategy<Value = IpNet> {
    prop::sample::select(RANGES.to_vec()).prop_map(net)
}

pub(super) fn arb_ip_filter() -> impl Strategy<Value = Condition> {
    prop::collection::vec(arb_range(), 1..=2).prop_map(Condition::IpFilter)
}

pub(super) fn arb_conditions() -> impl Strategy<Value = Vec<Condition>> {
    prop_oneof![
        5 => Just(Vec::new()),
        4 => arb_ip_filter().prop_map(|filter| vec![filter]),
        1 => prop::collection::vec(arb_ip_filter(), 2..=3),
    ]
}

pub(super) fn arb_set() -> impl Strategy<Value = PermissionSet> {
    let grant = prop_oneof![
        1 => Just(Grant::SuperUser),
        6 => prop::collection::vec(arb_rule(), 0..=5).prop_map(Grant::Rules),
    ];
    (grant, arb_conditions()).prop_map(|(grant, conditions)| PermissionSet { grant, conditions })
}

/// An owned [`Resource`], so strategies can generate one.
#[derive(Clone, Debug)]
pub(super) struct OwnedResource {
    cache: Option<String>,
    key: Option<Vec<u8>>,
    topic: Option<String>,
    function: Option<String>,
    store: Option<String>,
}

impl OwnedResource {
    pub(super) fn borrow(&self) -> Resource<'_> {
        Resource {
            cache: self.cache.as_deref(),
            key: self.key.as_deref(),
            topic: self.topic.as_deref(),
            function: self.function.as_deref(),
            store: self.store.as_deref(),
        }
    }
}

pub(super) fn arb_resource() -> impl Strategy<Value = OwnedResource> {
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

pub(super) fn arb_peer() -> impl Strategy<Value = Option<IpAddr>> {
    prop::option::weighted(0.9, prop::sample::select(PEERS.to_vec()).prop_map(ip))
}

pub(super) type Query = (Action, OwnedResource, Option<IpAddr>);

pub(super) fn arb_query() -> impl Strategy<Value = Query> {
    (
        prop::sample::select(ALL_ACTIONS.to_vec()),
        arb_resource(),
        arb_peer(),
    )
}

pub(super) fn arb_queries() -> impl Strategy<Value = Vec<Query>> {
    prop::collection::vec(arb_query(), QUERIES_PER_CASE)
}

/// Draws small choices from a random seed.
pub(super) struct Picker(u64);

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
pub(super) fn narrow_name(sel: &NameSel, picker: &mut Picker) -> NameSel {
    match sel {
        NameSel::All => match picker.pick(NAMES.len() + 1) {
            0 => NameSel::All,
            i => named(NAMES[i - 1]),
        },
        NameSel::Name(name) => NameSel::Name(name.clone()),
    }
}

pub(super) fn narrow_bytes(sel: &BytesSel, picker: &mut Picker) -> BytesSel {
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

pub(super) fn narrow_text(sel: &TextSel, picker: &mut Picker) -> TextSel {
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
pub(super) fn narrow_rule(rule: &Rule, ops_mask: u8, picker: &mut Picker) -> Rule {
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
pub(super) fn narrow_filter(ranges: &[IpNet], picker: &mut Picker) -> Condition {
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
pub(super) struct Narrowing {
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

pub(super) fn arb_narrowing() -> impl Strategy<Value = Narrowing> {
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

pub(super) fn narrow(parent: &PermissionSet, narrowing: &Narrowing) -> PermissionSet {
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
pub(super) enum Perturbation {
    AddRule(Rule),
    ReplaceRule(usize, Rule),
    DropConditions,
    AddRangeToFirstFilter(IpNet),
    BecomeSuperUser,
}

pub(super) fn arb_perturbation() -> impl Strategy<Value = Perturbation> {
    prop_oneof![
        3 => arb_rule().prop_map(Perturbation::AddRule),
        3 => (any::<usize>(), arb_rule()).prop_map(|(i, rule)| Perturbation::ReplaceRule(i, rule)),
        1 => Just(Perturbation::DropConditions),
        1 => arb_range().prop_map(Perturbation::AddRangeToFirstFilter),
        1 => Just(Perturbation::BecomeSuperUser),
    ]
}

pub(super) fn perturb(mut child: PermissionSet, perturbation: &Perturbation) -> PermissionSet {
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
pub(super) fn arb_narrowed_pair() -> impl Strategy<Value = (PermissionSet, PermissionSet)> {
    (arb_set(), arb_narrowing()).prop_map(|(parent, narrowing)| {
        let child = narrow(&parent, &narrowing);
        (parent, child)
    })
}

/// Parent and a narrowed child that is sometimes perturbed, so some children exceed the parent
/// by a little (near misses for `check_delegation`).
pub(super) fn arb_near_pair() -> impl Strategy<Value = (PermissionSet, PermissionSet)> {
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
pub(super) fn find_escalation<'q>(
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
pub(super) fn targeted_query(rule: &Rule, conditions: &[Condition], picker: &mut Picker) -> Query {
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

pub(super) fn name_for(sel: &NameSel, picker: &mut Picker) -> Option<String> {
    match sel {
        NameSel::Name(name) if picker.pick(8) != 0 => Some(name.clone()),
        _ => Some(NAMES[picker.pick(NAMES.len())].to_owned()),
    }
}

pub(super) fn key_for(sel: &BytesSel, picker: &mut Picker) -> Option<Vec<u8>> {
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

pub(super) fn text_for(sel: &TextSel, picker: &mut Picker) -> Option<String> {
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
pub(super) fn targeted_queries(
    child: &PermissionSet,
    extra_rules: &[Rule],
    seeds: &[u64],
) -> Vec<Query> {
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

pub(super) fn arb_seeds() -> impl Strategy<Value = Vec<u64>> {
    prop::collection::vec(any::<u64>(), QUERIES_PER_CASE)
}

pub(super) fn sample<S: Strategy>(strategy: &S, runner: &mut TestRunner) -> S::Value {
    strategy
        .new_tree(runner)
        .expect("strategy generates a value")
        .current()
}
