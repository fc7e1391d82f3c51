//! Compiles proto/ with protox (a pure-Rust protobuf compiler), so a fresh machine needs nothing
//! but cargo, and embeds the file descriptor set for server reflection.

use std::{env, path::PathBuf};

const PROTOS: &[&str] = &[
    "permissionmessages.proto",
    "permissionrules.proto",
    "token.proto",
    "auth.proto",
    "global_admin.proto",
    "authcell/v1/authcell.proto",
];

/// The Momento data-plane subset the example cache node serves (not authcell's own services:
/// kept out of the reflection descriptor set).
const CACHE_PROTOS: &[&str] = &["cache/cacheclient.proto", "cache/cachepubsub.proto"];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto");
    let fds = protox::compile(PROTOS, ["proto"])?;
    let out = PathBuf::from(env::var("OUT_DIR")?);
    let descriptor_path = out.join("authcell_descriptor.bin");
    std::fs::write(&descriptor_path, prost::Message::encode_to_vec(&fds))?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .compile_fds(fds)?;
    tonic_prost_build::configure()
        .build_client(false)
        .build_server(true)
        .compile_fds(protox::compile(CACHE_PROTOS, ["proto"])?)?;
    Ok(())
}
