//! The fixed system roles every account has.

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
