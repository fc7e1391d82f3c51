//! Request builders: credentials as metadata, Authorize checks, token statements, key requests.

use authcell::proto::authcell::v1 as pb;
use authcell::proto::global_admin as ga;
use tonic::Request;

/// Wraps a message in a request carrying `key` as `authorization` metadata.
pub fn with_key<T>(message: T, key: &str) -> Request<T> {
    let mut request = Request::new(message);
    request
        .metadata_mut()
        .insert("authorization", key.parse().expect("ascii key"));
    request
}

/// An Authorize request for a cache action.
pub fn cache_check(
    credential: &str,
    action: pb::Action,
    cache: &str,
    key: &[u8],
) -> pb::AuthorizeRequest {
    pb::AuthorizeRequest {
        credential: credential.into(),
        action: action as i32,
        cache: cache.into(),
        key: key.to_vec(),
        ..Default::default()
    }
}

/// An Authorize request for a topic action.
pub fn topic_check(
    credential: &str,
    action: pb::Action,
    cache: &str,
    topic: &str,
) -> pb::AuthorizeRequest {
    pb::AuthorizeRequest {
        credential: credential.into(),
        action: action as i32,
        cache: cache.into(),
        topic: topic.into(),
        ..Default::default()
    }
}

/// An Authorize request for a function invocation.
pub fn function_check(credential: &str, cache: &str, function: &str) -> pb::AuthorizeRequest {
    pb::AuthorizeRequest {
        credential: credential.into(),
        action: pb::Action::FunctionInvoke as i32,
        cache: cache.into(),
        function: function.into(),
        ..Default::default()
    }
}

pub mod statements {
    //! Builders for permission_messages statements.
    use authcell::proto::permission_messages as pm;
    use pm::permissions_type as pt;

    pub fn cache(
        role: pm::CacheRole,
        cache: Option<&str>,
        item: Option<pt::cache_item_selector::Kind>,
    ) -> pm::PermissionsType {
        pm::PermissionsType {
            kind: Some(pt::Kind::CachePermissions(pt::CachePermissions {
                role: role as i32,
                cache: Some(match cache {
                    None => pt::cache_permissions::Cache::AllCaches(pt::All {}),
                    Some(name) => pt::cache_permissions::Cache::CacheSelector(pt::CacheSelector {
                        kind: Some(pt::cache_selector::Kind::CacheName(name.into())),
                    }),
                }),
                cache_item: Some(match item {
                    None => pt::cache_permissions::CacheItem::AllItems(pt::All {}),
                    Some(kind) => {
                        pt::cache_permissions::CacheItem::ItemSelector(pt::CacheItemSelector {
                            kind: Some(kind),
                        })
                    }
                }),
            })),
        }
    }

    pub fn topic(
        role: pm::TopicRole,
        cache: Option<&str>,
        topic: Option<pt::topic_selector::Kind>,
    ) -> pm::PermissionsType {
        pm::PermissionsType {
            kind: Some(pt::Kind::TopicPermissions(pt::TopicPermissions {
                role: role as i32,
                cache: Some(match cache {
                    None => pt::topic_permissions::Cache::AllCaches(pt::All {}),
                    Some(name) => pt::topic_permissions::Cache::CacheSelector(pt::CacheSelector {
                        kind: Some(pt::cache_selector::Kind::CacheName(name.into())),
                    }),
                }),
                topic: Some(match topic {
                    None => pt::topic_permissions::Topic::AllTopics(pt::All {}),
                    Some(kind) => pt::topic_permissions::Topic::TopicSelector(pt::TopicSelector {
                        kind: Some(kind),
                    }),
                }),
            })),
        }
    }

    pub fn function(
        cache: Option<&str>,
        function: Option<pt::function_selector::Kind>,
    ) -> pm::PermissionsType {
        pm::PermissionsType {
            kind: Some(pt::Kind::FunctionPermissions(pt::FunctionPermissions {
                role: pm::FunctionRole::FunctionInvoke as i32,
                cache: Some(match cache {
                    None => pt::function_permissions::Cache::AllCaches(pt::All {}),
                    Some(name) => {
                        pt::function_permissions::Cache::CacheSelector(pt::CacheSelector {
                            kind: Some(pt::cache_selector::Kind::CacheName(name.into())),
                        })
                    }
                }),
                function: Some(match function {
                    None => pt::function_permissions::Function::AllFunctions(pt::All {}),
                    Some(kind) => {
                        pt::function_permissions::Function::FunctionSelector(pt::FunctionSelector {
                            kind: Some(kind),
                        })
                    }
                }),
            })),
        }
    }

    pub fn read_cache(name: &str) -> pm::PermissionsType {
        cache(pm::CacheRole::CacheReadOnly, Some(name), None)
    }
}

/// Wraps statements in an explicit permission_messages set.
pub fn explicit(
    permissions: Vec<authcell::proto::permission_messages::PermissionsType>,
) -> authcell::proto::permission_messages::Permissions {
    use authcell::proto::permission_messages as pm;
    pm::Permissions {
        kind: Some(pm::permissions::Kind::Explicit(pm::ExplicitPermissions {
            permissions,
        })),
    }
}

/// A GenerateGlobalApiKey request: a key bound to `role_id`, expiring at `expires_at` (epoch
/// seconds) or never.
pub fn key_request(
    role_id: &str,
    description: impl Into<String>,
    expires_at: Option<u64>,
) -> ga::GenerateGlobalApiKeyRequest {
    use ga::generate_global_api_key_request::{Expires, Expiry, Never};
    ga::GenerateGlobalApiKeyRequest {
        role_id: role_id.into(),
        description: description.into(),
        expiry: Some(match expires_at {
            None => Expiry::Never(Never {}),
            Some(at) => Expiry::Expires(Expires {
                expiration_epoch_seconds: at,
            }),
        }),
    }
}
