//! Generated protobuf and gRPC types, one module per protobuf package.
#![allow(clippy::all, missing_docs)]

pub mod permission_messages {
    tonic::include_proto!("permission_messages");
}
pub mod permission_rules {
    tonic::include_proto!("permission_rules");
}
pub mod token {
    tonic::include_proto!("token");
}
pub mod auth {
    tonic::include_proto!("auth");
}
pub mod global_admin {
    tonic::include_proto!("global_admin");
}
pub mod authcell {
    pub mod v1 {
        tonic::include_proto!("authcell.v1");
    }
}

/// The Momento cache and pub/sub subset served by the example cache node ([`crate::cache_node`]).
pub mod cache_node {
    pub mod cache_client {
        tonic::include_proto!("cache_client");
        pub mod pubsub {
            tonic::include_proto!("cache_client.pubsub");
        }
    }
    pub mod common {
        tonic::include_proto!("common");
    }
}

/// The encoded file descriptor set of every service above, for server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("authcell_descriptor");
