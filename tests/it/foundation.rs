//! Foundation: keys, roles, Authorize, errors, over gRPC.

use crate::common::*;
use authcell::proto::authcell::v1 as pb;

#[tokio::test]
async fn owner_key_is_allowed_to_read_a_cache() {
    let server = TestServer::start().await;
    let response = server
        .authorize(cache_check(&server.owner_key, pb::Action::CacheRead, "c", b"k"))
        .await;
    assert!(response.allowed, "{response:?}");
    assert_eq!(response.account_id, ACCOUNT);
}
