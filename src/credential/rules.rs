//! The compact encoding of permission rules and conditions inside a credential's claims.

use super::*;

/// Encodes inline conditions for the `ipf` claim.
pub fn encode_conditions(conditions: &[Condition]) -> Vec<Vec<String>> {
    conditions
        .iter()
        .map(|Condition::IpFilter(ranges)| ranges.iter().map(|r| r.to_string()).collect())
        .collect()
}

// Compact rule encoding: `<family><ops hex>;<selector>;<selector>` where a selector is `*`
// (all), `=<base64url>` (exact name or key) or `^<base64url>` (prefix). Families: a account,
// u auth, r resource, c cache, t topic, s store, f function. Names are base64url so any byte
// survives and the separator never needs escaping.

pub(super) fn sel_str(kind: char, bytes: &[u8]) -> String {
    format!("{kind}{}", URL_SAFE_NO_PAD.encode(bytes))
}

pub(super) fn name_sel(s: &NameSel) -> String {
    match s {
        NameSel::All => "*".into(),
        NameSel::Name(n) => sel_str('=', n.as_bytes()),
    }
}

pub(super) fn bytes_sel(s: &BytesSel) -> String {
    match s {
        BytesSel::All => "*".into(),
        BytesSel::Key(k) => sel_str('=', k),
        BytesSel::Prefix(k) => sel_str('^', k),
    }
}

pub(super) fn text_sel(s: &TextSel) -> String {
    match s {
        TextSel::All => "*".into(),
        TextSel::Name(n) => sel_str('=', n.as_bytes()),
        TextSel::Prefix(n) => sel_str('^', n.as_bytes()),
    }
}

/// Encodes one rule compactly.
pub fn encode_rule(rule: &Rule) -> String {
    let ops = rule.ops().bits();
    match rule {
        Rule::Account(_) => format!("a{ops:x}"),
        Rule::Auth(_) => format!("u{ops:x}"),
        Rule::Resource(_) => format!("r{ops:x}"),
        Rule::Cache { cache, item, .. } => {
            format!("c{ops:x};{};{}", name_sel(cache), bytes_sel(item))
        }
        Rule::Topic { cache, topic, .. } => {
            format!("t{ops:x};{};{}", name_sel(cache), text_sel(topic))
        }
        Rule::Store { store, item, .. } => {
            format!("s{ops:x};{};{}", name_sel(store), bytes_sel(item))
        }
        Rule::Function {
            cache, function, ..
        } => format!("f{ops:x};{};{}", name_sel(cache), text_sel(function)),
    }
}

pub(super) enum Sel {
    All,
    Exact(Vec<u8>),
    Prefix(Vec<u8>),
}

pub(super) fn parse_sel(s: &str) -> Option<Sel> {
    if s == "*" {
        return Some(Sel::All);
    }
    let (kind, rest) = s.split_at_checked(1)?;
    let bytes = URL_SAFE_NO_PAD.decode(rest).ok()?;
    match kind {
        "=" => Some(Sel::Exact(bytes)),
        "^" => Some(Sel::Prefix(bytes)),
        _ => None,
    }
}

pub(super) fn to_name(sel: Sel) -> Option<NameSel> {
    match sel {
        Sel::All => Some(NameSel::All),
        Sel::Exact(b) => String::from_utf8(b).ok().map(NameSel::Name),
        Sel::Prefix(_) => None,
    }
}

pub(super) fn to_bytes(sel: Sel) -> BytesSel {
    match sel {
        Sel::All => BytesSel::All,
        Sel::Exact(b) => BytesSel::Key(b),
        Sel::Prefix(b) => BytesSel::Prefix(b),
    }
}

pub(super) fn to_text(sel: Sel) -> Option<TextSel> {
    Some(match sel {
        Sel::All => TextSel::All,
        Sel::Exact(b) => TextSel::Name(String::from_utf8(b).ok()?),
        Sel::Prefix(b) => TextSel::Prefix(String::from_utf8(b).ok()?),
    })
}

/// Decodes one compactly encoded rule; `None` if it is not well formed.
pub fn decode_rule(s: &str) -> Option<Rule> {
    let mut parts = s.split(';');
    let head = parts.next()?;
    let (family, ops) = head.split_at_checked(1)?;
    let ops = Ops::from_bits(u8::from_str_radix(ops, 16).ok()?)?;
    let first = parts.next().map(parse_sel);
    let second = parts.next().map(parse_sel);
    if parts.next().is_some() {
        return None;
    }
    let rule = match (family, first, second) {
        ("a", None, None) => Rule::Account(ops),
        ("u", None, None) => Rule::Auth(ops),
        ("r", None, None) => Rule::Resource(ops),
        ("c", Some(Some(a)), Some(Some(b))) => Rule::Cache {
            ops,
            cache: to_name(a)?,
            item: to_bytes(b),
        },
        ("t", Some(Some(a)), Some(Some(b))) => Rule::Topic {
            ops,
            cache: to_name(a)?,
            topic: to_text(b)?,
        },
        ("s", Some(Some(a)), Some(Some(b))) => Rule::Store {
            ops,
            store: to_name(a)?,
            item: to_bytes(b),
        },
        ("f", Some(Some(a)), Some(Some(b))) => Rule::Function {
            ops,
            cache: to_name(a)?,
            function: to_text(b)?,
        },
        _ => return None,
    };
    // Refuse op bits the family cannot carry.
    if !Rule::allowed_ops(rule.family()).contains(ops) || ops.is_empty() {
        return None;
    }
    Some(rule)
}
