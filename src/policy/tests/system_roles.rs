//! The system roles.

use super::*;

// ---------------------------------------------------------------------------------------------
// System roles
// ---------------------------------------------------------------------------------------------

#[test]
fn every_system_role_id_has_permissions() {
    for id in system::ALL {
        assert!(system::permissions(id).is_some(), "{id}");
    }
    assert_eq!(system::name(system::OWNER), "Owner");
    assert_eq!(system::name(system::OPERATOR), "Operator");
    assert_eq!(system::name(system::VIEWER), "Viewer");
}

#[test]
fn unknown_role_id_has_no_permissions() {
    for id in ["admin", "", "Owner", "owner ", "viewers"] {
        assert_eq!(system::permissions(id), None, "{id:?}");
    }
}

#[test]
fn owner_allows_everything() {
    let owner = role(system::OWNER);
    assert!(owner.is_super_user());
    for action in ALL_ACTIONS {
        assert_eq!(eval(&owner, action, &full_resource()), Ok(()), "{action:?}");
    }
}

#[test]
fn operator_manages_auth_and_data_but_not_accounts() {
    let operator = role(system::OPERATOR);
    assert!(!operator.is_super_user());
    let allowed = [
        Action::AccountRead,
        Action::AccountList,
        Action::AuthRead,
        Action::AuthWrite,
        Action::AuthList,
        Action::ResourceRead,
        Action::ResourceWrite,
        Action::ResourceList,
        Action::CacheRead,
        Action::CacheWrite,
        Action::CacheReadWrite,
        Action::CacheList,
        Action::TopicSubscribe,
        Action::TopicPublish,
        Action::TopicList,
        Action::StoreRead,
        Action::StoreWrite,
        Action::StoreList,
        Action::FunctionInvoke,
    ];
    for action in allowed {
        assert_eq!(
            eval(&operator, action, &full_resource()),
            Ok(()),
            "{action:?}"
        );
    }
    assert_eq!(
        eval(&operator, Action::AccountWrite, &full_resource()),
        Err(Denial::Permission)
    );
}

#[test]
fn viewer_reads_and_lists_but_does_not_change_anything() {
    let viewer = role(system::VIEWER);
    let allowed = [
        Action::AccountRead,
        Action::AccountList,
        Action::AuthRead,
        Action::AuthList,
        Action::ResourceRead,
        Action::ResourceList,
        Action::CacheRead,
        Action::CacheList,
        Action::TopicSubscribe,
        Action::TopicList,
        Action::StoreRead,
        Action::StoreList,
    ];
    let denied = [
        Action::AccountWrite,
        Action::AuthWrite,
        Action::ResourceWrite,
        Action::CacheWrite,
        Action::CacheReadWrite,
        Action::TopicPublish,
        Action::StoreWrite,
        Action::FunctionInvoke,
    ];
    assert_eq!(allowed.len() + denied.len(), ALL_ACTIONS.len());
    for action in allowed {
        assert_eq!(
            eval(&viewer, action, &full_resource()),
            Ok(()),
            "{action:?}"
        );
    }
    for action in denied {
        assert_eq!(
            eval(&viewer, action, &full_resource()),
            Err(Denial::Permission),
            "{action:?}"
        );
    }
}
