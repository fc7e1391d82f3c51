//! Signing keys rotate without a restart: add a key, make it the signer, retire the old one.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use authcell::keyring::{generate_pem, kid_of, public_pem_of, KeyFiles, KeyRing};
use authcell::proto::authcell::v1 as pb;
use authcell::{dataplane, node};

use crate::support::*;

struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> Self {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "authcell-{tag}-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(dir.join("trusted")).expect("temp dir");
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Replaces a file's content atomically (as a Kubernetes secret update does).
fn write_atomically(path: &Path, content: &str) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, content).expect("write");
    std::fs::rename(&tmp, path).expect("rename");
}

fn kid_of_pem(pem: &str) -> String {
    KeyRing::from_pem("test", pem)
        .expect("pem")
        .active_kid()
        .to_owned()
}

fn header_kid(token: &str) -> String {
    use base64::Engine;
    let header = token.split('.').next().expect("header");
    let json = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(header)
        .expect("base64");
    let value: serde_json::Value = serde_json::from_slice(&json).expect("json");
    value["kid"].as_str().expect("kid").to_owned()
}

async fn jwks(server: &TestServer) -> (Vec<String>, String) {
    let response = pb::keys_client::KeysClient::new(server.channel().await)
        .get_jwks(pb::GetJwksRequest {})
        .await
        .expect("jwks")
        .into_inner();
    let set: jsonwebtoken::jwk::JwkSet =
        serde_json::from_str(&response.jwks).expect("RFC 7517 JSON");
    let mut kids: Vec<String> = set
        .keys
        .iter()
        .map(|k| k.common.key_id.clone().expect("kid"))
        .collect();
    kids.sort();
    (kids, response.active_kid)
}

async fn wait_for_jwks(server: &TestServer, kids: &[&str], active: &str) {
    let mut want: Vec<String> = kids.iter().map(|k| (*k).to_owned()).collect();
    want.sort();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (got, got_active) = jwks(server).await;
        if got == want && got_active == active {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "keys never became {want:?} active {active}: {got:?} {got_active}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn keys_rotate_without_restart_and_retired_keys_stop_verifying() {
    let dir = TempDir::new("rotation");
    let signing = dir.0.join("signing.pem");
    let trusted = dir.0.join("trusted");
    let pem_a = generate_pem().expect("pem").to_string();
    write_atomically(&signing, &pem_a);
    let files = KeyFiles {
        signing_key_file: Some(signing.to_string_lossy().into_owned()),
        verification_key_files: Vec::new(),
        verification_keys_dir: Some(trusted.to_string_lossy().into_owned()),
    };
    let server = TestServer::start_with_keyring(files.load().expect("ring")).await;
    node::spawn_key_reloader(files, server.authority.clone(), Duration::from_millis(20));
    let kid_a = kid_of_pem(&pem_a);
    wait_for_jwks(&server, &[&kid_a], &kid_a).await;
    let (key_a, _) = server.create_key(&server.owner_key, "viewer").await;
    assert_eq!(header_kid(&key_a), kid_a);

    // 1. Add the next key: every node trusts it before anything is signed with it.
    let pem_b = generate_pem().expect("pem").to_string();
    let kid_b = kid_of_pem(&pem_b);
    write_atomically(
        &trusted.join("b.pem"),
        &public_pem_of(&pem_b).expect("public"),
    );
    wait_for_jwks(&server, &[&kid_a, &kid_b], &kid_a).await;

    // 2. Make it the signer; the old key stays trusted.
    write_atomically(
        &trusted.join("a.pem"),
        &public_pem_of(&pem_a).expect("public"),
    );
    write_atomically(&signing, &pem_b);
    wait_for_jwks(&server, &[&kid_a, &kid_b], &kid_b).await;
    let (key_b, _) = server.create_key(&server.owner_key, "viewer").await;
    assert_eq!(
        header_kid(&key_b),
        kid_b,
        "new keys are signed with the new key"
    );
    let (owner_b, _) = server
        .authority
        .bootstrap(ACCOUNT, true)
        .await
        .expect("owner");
    let read = |key: &str| cache_check(key, pb::Action::CacheRead, "c", b"k");
    assert!(
        server.authorize(read(&key_a)).await.allowed,
        "old credentials keep working"
    );
    assert!(server.authorize(read(&key_b)).await.allowed);

    // 3. Retire the old key: what it signed stops verifying, the rest keeps working.
    std::fs::remove_file(trusted.join("a.pem")).expect("remove");
    wait_for_jwks(&server, &[&kid_b], &kid_b).await;
    let verdict = server.authorize(read(&key_a)).await;
    assert!(!verdict.allowed);
    assert_eq!(
        verdict.reason,
        pb::Reason::Unauthenticated as i32,
        "{verdict:?}"
    );
    assert!(verdict.message.contains("unknown key id"), "{verdict:?}");
    assert!(server.authorize(read(&key_b)).await.allowed);
    assert!(server.authorize(read(&owner_b)).await.allowed);

    // Each rotation is in the audit log, under the platform account `system`, which only the
    // platform bootstrap creates: a tenant can never be named so.
    let refused = server.authority.bootstrap("system", false).await;
    assert!(
        matches!(refused, Err(authcell::authority::Error::Invalid(_))),
        "{refused:?}"
    );
    let (system_owner, _) = server
        .authority
        .bootstrap_platform(false)
        .await
        .expect("system");
    let events = pb::admin_client::AdminClient::new(server.channel().await)
        .list_audit_events(with_key(
            pb::ListAuditEventsRequest::default(),
            &system_owner,
        ))
        .await
        .expect("audit")
        .into_inner()
        .events;
    let rotations: Vec<_> = events
        .iter()
        .filter(|e| e.action == "signing_key.rotated")
        .collect();
    assert!(rotations.len() >= 3, "{events:?}");
    assert_eq!(
        rotations[0].target, kid_b,
        "the newest rotation names the active key"
    );

    // A key file that does not load is ignored: the node keeps its last good keys.
    write_atomically(&trusted.join("broken.pem"), "not a key");
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(jwks(&server).await.0, vec![kid_b.clone()]);
    assert!(server.authorize(read(&key_b)).await.allowed);
}

#[tokio::test]
async fn the_jwk_set_round_trips_into_a_verification_only_ring() {
    let server = TestServer::start().await;
    let ring = dataplane::fetch_jwks(&server.url()).await.expect("jwks");
    let served = server.authority.verifier().keys().load();
    assert_eq!(ring.kids(), served.kids());
    assert!(ring.signer().is_none(), "a JWKS ring cannot sign");
    let public = served
        .verification_key(served.active_kid())
        .expect("active key")
        .public;
    assert_eq!(kid_of(&public), served.active_kid());
    // A key set whose kid does not match its key is refused.
    let mut set = served.jwks();
    set.keys[0].common.key_id = Some("forged".into());
    assert!(KeyRing::from_jwks(&set, "forged").is_err());
}
