//! Accounts are isolated: nothing of one account is visible to, or usable by, another.
//!
//! Every test talks to a real server over loopback. Negative tests first show that the same
//! call succeeds when only the one thing under test is changed back, so they fail for the
//! intended reason. Time moves only through the server's manual clock.

use crate::support::grpc::*;
use authcell::proto::authcell::v1 as pb;
use tonic::Code;

#[tokio::test]
async fn another_account_gets_not_found_for_dev_keys() {
    let server = TestServer::start().await;
    let (_, dev_key) = server.create_key(&server.owner_key, "viewer").await;
    let (other, _) = server
        .authority
        .bootstrap("other", false)
        .await
        .expect("bootstrap other account");
    describe(&server, &server.owner_key, &dev_key.key_id)
        .await
        .expect("precondition: the dev owner sees the key");
    describe(&server, &other, &key_id_of(&other))
        .await
        .expect("precondition: the other owner may describe keys of its own account");
    assert_status(
        describe(&server, &other, &dev_key.key_id).await,
        Code::NotFound,
        &[],
    );
    assert_status(
        revoke(&server, &other, &dev_key.key_id).await,
        Code::NotFound,
        &[],
    );
    let still = describe(&server, &server.owner_key, &dev_key.key_id)
        .await
        .expect("describe");
    assert_eq!(still.status(), pb::KeyStatus::Active);
}

#[tokio::test]
async fn another_account_does_not_see_dev_keys_or_roles() {
    let server = TestServer::start().await;
    server.create_key(&server.owner_key, "viewer").await;
    let dev_role =
        owner_creates_role(&server, "dev-readers", explicit(vec![cache_read_on("a")])).await;
    let (other, other_record) = server
        .authority
        .bootstrap("other", false)
        .await
        .expect("bootstrap other account");

    let global = list_global_keys(&server, &other).await.expect("list");
    assert_eq!(
        global.iter().map(|k| k.key_id.as_str()).collect::<Vec<_>>(),
        [other_record.key_id.as_str()]
    );
    let page = list_page(&server, &other, 0, "", true).await.expect("list");
    assert_eq!(
        page.keys
            .iter()
            .map(|k| k.key_id.as_str())
            .collect::<Vec<_>>(),
        [other_record.key_id.as_str()]
    );

    let dev_roles = list_roles(&server, &server.owner_key)
        .await
        .expect("list roles");
    assert!(
        dev_roles.iter().any(|r| r.role_id == dev_role),
        "precondition"
    );
    let roles = list_roles(&server, &other).await.expect("list roles");
    let ids: Vec<&str> = roles.iter().map(|r| r.role_id.as_str()).collect();
    assert_eq!(ids, ["owner", "operator", "viewer"]);
    let account_roles = list_roles_for_account(&server, &other)
        .await
        .expect("list roles");
    let ids: Vec<&str> = account_roles.iter().map(|r| r.role_id.as_str()).collect();
    assert_eq!(ids, ["owner", "operator", "viewer"]);
}

#[tokio::test]
async fn another_account_cannot_use_change_or_delete_dev_roles() {
    let server = TestServer::start().await;
    let dev_role =
        owner_creates_role(&server, "dev-readers", explicit(vec![cache_read_on("a")])).await;
    let (other, _) = server
        .authority
        .bootstrap("other", false)
        .await
        .expect("bootstrap other account");
    update_role_permissions(
        &server,
        &server.owner_key,
        &dev_role,
        explicit(vec![cache_read_on("a")]),
    )
    .await
    .expect("precondition: the dev owner can update the role");

    let result = update_role_permissions(
        &server,
        &other,
        &dev_role,
        explicit(vec![cache_read_on("x")]),
    )
    .await;
    assert_status(result, Code::NotFound, &["role_id"]);
    assert_status(
        delete_role(&server, &other, &dev_role).await,
        Code::NotFound,
        &["role_id"],
    );
    let result = generate(&server, &other, &dev_role, "borrow", never()).await;
    assert_status(result, Code::NotFound, &["role_id"]);

    let roles = list_roles(&server, &server.owner_key)
        .await
        .expect("list roles");
    let role = roles
        .iter()
        .find(|r| r.role_id == dev_role)
        .expect("dev role still exists");
    assert_eq!(role.permissions, Some(explicit(vec![cache_read_on("a")])));
}
