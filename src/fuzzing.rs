//! The bodies of the fuzz targets (`fuzz/fuzz_targets/*.rs`, run with cargo-fuzz on nightly),
//! and the fixture they share. `tests/it/fuzz_replay.rs` replays the committed corpora through
//! the same functions on stable, so every input a campaign kept stays a regression test.
//!
//! Each body takes arbitrary bytes and must never panic: a panic is what the fuzzer reports.
//! Where a property must hold for every input, the body asserts it as well: a permission set
//! survives its protobuf round trip unchanged, a cached verdict equals the fresh one, an
//! Authorize answer is consistent with itself.

use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;
use std::sync::{Arc, OnceLock};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ed25519_dalek::pkcs8::spki::der::pem::LineEnding;
use ed25519_dalek::pkcs8::EncodePrivateKey;
use ed25519_dalek::Signer;
use prost::Message;

use crate::authority::{Authority, Listing};
use crate::clock::ManualClock;
use crate::keyring::KeyRing;
use crate::node::{self, NodeOptions};
use crate::policy::{
    self, system, Action, BytesSel, Condition, NameSel, Ops, PermissionSet, Resource, Rule, TextSel,
};
use crate::proto::authcell::v1 as pb;
use crate::proto::permission_messages as pm;
use crate::proto::permission_rules as pr;
use crate::server::verifier::VerifierService;
use crate::verifier::view::Event;
use crate::verifier::{Decision, Verifier};
use crate::{cli, credential};

/// The fixture's time, epoch seconds: its clock never moves, so a seed token stays valid.
pub const NOW: u64 = 1_750_000_000;
/// The account the fixture's view knows about.
pub const ACCOUNT: &str = "fuzz-account";
/// A custom role of [`ACCOUNT`] in the fixture's view.
pub const ROLE_ID: &str = "01978f3c-0000-7000-8000-00000000f022";
/// A revoked key id of [`ACCOUNT`].
pub const REVOKED_KEY_ID: &str = "01978f3c-0000-7000-8000-0000000dead0";
/// A revoked token id of [`ACCOUNT`].
pub const REVOKED_TOKEN_ID: &str = "fuzz-revoked-token";
/// An account whose credentials issued before [`NOW`] are all revoked.
pub const WATERMARKED_ACCOUNT: &str = "fuzz-watermarked";

/// The fixture's signing key seed. Fixed so that seed tokens signed once stay valid in every
/// later fuzzing process; this key signs nothing but fuzz inputs and no server trusts it.
const FIXTURE_SEED: [u8; 32] = *b"authcell fuzz fixture, no secret";

fn signing_key() -> ed25519_dalek::SigningKey {
    ed25519_dalek::SigningKey::from_bytes(&FIXTURE_SEED)
}

/// The fixture's key ring (a fresh ring each call, always the same key).
pub fn keyring() -> KeyRing {
    let pem = signing_key()
        .to_pkcs8_pem(LineEnding::LF)
        .expect("the fixture key encodes as PKCS#8");
    KeyRing::from_pem("fuzz fixture key", &pem).expect("the fixture key loads")
}

/// The permissions of [`ROLE_ID`]: read and write on keys starting with `k` of cache `c`,
/// subscribe to `news.*` topics of every cache, from 10.0.0.0/8 only.
pub fn fixture_role() -> PermissionSet {
    PermissionSet {
        conditions: vec![Condition::IpFilter(vec!["10.0.0.0/8"
            .parse()
            .expect("a CIDR range")])],
        ..PermissionSet::rules(vec![
            Rule::Cache {
                ops: Ops::READ.union(Ops::WRITE),
                cache: NameSel::Name("c".into()),
                item: BytesSel::Prefix(b"k".to_vec()),
            },
            Rule::Topic {
                ops: Ops::READ,
                cache: NameSel::All,
                topic: TextSel::Prefix("news.".into()),
            },
        ])
    }
}

/// An embedded authority over [`keyring`], stopped at [`NOW`], whose view holds
/// [`fixture_role`], a revoked key id, a revoked token id and a watermark.
pub fn authority() -> &'static Arc<Authority> {
    static AUTHORITY: OnceLock<Arc<Authority>> = OnceLock::new();
    AUTHORITY.get_or_init(|| {
        let options = NodeOptions {
            cell: "fuzz".into(),
            endpoint: "http://fuzz.invalid".into(),
            vend_rate_per_second: 0,
            vend_burst: 0,
            ..Default::default()
        };
        let authority = node::Node::embedded(keyring(), Arc::new(ManualClock::new(NOW)), &options)
            .authority()
            .clone();
        let view = authority.verifier().view();
        for event in [
            Event::RoleSet {
                account: ACCOUNT.into(),
                role_id: ROLE_ID.into(),
                permissions: fixture_role(),
            },
            Event::CredentialRevoked {
                account: ACCOUNT.into(),
                id: REVOKED_KEY_ID.into(),
                by: None,
            },
            Event::TokenIdRevoked {
                account: ACCOUNT.into(),
                token_id: REVOKED_TOKEN_ID.into(),
                until: NOW + 3600,
                by: None,
            },
            Event::IssuedBefore {
                account: WATERMARKED_ACCOUNT.into(),
                before_ms: NOW * 1000,
            },
        ] {
            view.apply(&event);
        }
        authority
    })
}

/// What the fixture checks each credential for: data-plane actions on resources inside and
/// outside [`fixture_role`], and a management action, from inside and outside its network.
fn probes() -> [(Action, Resource<'static>, Option<IpAddr>); 6] {
    let inside = Some(IpAddr::V4(Ipv4Addr::new(10, 1, 2, 3)));
    let outside = Some(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)));
    [
        (
            Action::CacheRead,
            Resource {
                cache: Some("c"),
                key: Some(b"k1"),
                ..Resource::default()
            },
            inside,
        ),
        (
            Action::CacheReadWrite,
            Resource {
                cache: Some("c"),
                key: Some(b"other"),
                ..Resource::default()
            },
            None,
        ),
        (
            Action::TopicSubscribe,
            Resource {
                cache: Some("c"),
                topic: Some("news.today"),
                ..Resource::default()
            },
            outside,
        ),
        (
            Action::TopicPublish,
            Resource {
                cache: Some("c"),
                topic: Some("news.today"),
                ..Resource::default()
            },
            inside,
        ),
        (
            Action::FunctionInvoke,
            Resource {
                cache: Some("c"),
                function: Some("f"),
                ..Resource::default()
            },
            inside,
        ),
        (Action::AuthWrite, Resource::default(), outside),
    ]
}

/// Evaluates every probe against a set; the verdicts themselves are not checked here.
fn evaluate_probes(set: &PermissionSet) {
    for (action, resource, peer) in probes() {
        let _ = policy::evaluate(set, action, &resource, peer);
    }
}

/// Target `credential_decode`: [`credential::decode`] under the fixture's key ring.
pub fn credential_decode(data: &[u8]) {
    static RING: OnceLock<KeyRing> = OnceLock::new();
    let Ok(token) = std::str::from_utf8(data) else {
        return;
    };
    let _ = credential::decode(RING.get_or_init(keyring), token);
}

/// The parts of a decision that must not depend on whether the verdict was cached.
fn decision_summary(d: &Decision) -> impl PartialEq + std::fmt::Debug + '_ {
    (&d.outcome, d.credential())
}

/// Target `credential_check`: [`crate::verifier::Verifier::check`] of the fixture's authority,
/// for each probe, of a token as a client presents it.
pub fn credential_check(data: &[u8]) {
    let Ok(token) = std::str::from_utf8(data) else {
        return;
    };
    check_probes(authority().verifier(), token);
}

/// Target `credential_claims`: arbitrary bytes as the claims of a token signed with the
/// fixture's key, through [`crate::verifier::Verifier::check`]. A mutated token almost never
/// gets past the signature; this reaches what comes after it (claims, inline rules, ip
/// filters, ancestors, revocation and role lookups) as if the signer had been fooled.
pub fn credential_claims(data: &[u8]) {
    static SIGNER: OnceLock<(ed25519_dalek::SigningKey, String)> = OnceLock::new();
    // A verifier of its own with a small cache: here nearly every input verifies and is kept.
    static VERIFIER: OnceLock<Verifier> = OnceLock::new();
    let (signing, header) = SIGNER.get_or_init(|| {
        let signing = signing_key();
        let kid = crate::keyring::kid_of(&signing.verifying_key());
        let header = format!(r#"{{"alg":"EdDSA","typ":"JWT","kid":"{kid}"}}"#);
        (signing, URL_SAFE_NO_PAD.encode(header))
    });
    let verifier = VERIFIER.get_or_init(|| {
        let fixture = authority().verifier();
        Verifier::new(keyring(), fixture.view().clone(), fixture.clock().clone())
            .with_cache_bytes(1024 * 1024)
    });
    let signing_input = format!("{header}.{}", URL_SAFE_NO_PAD.encode(data));
    let signature = signing.sign(signing_input.as_bytes());
    let token = format!(
        "{signing_input}.{}",
        URL_SAFE_NO_PAD.encode(signature.to_bytes())
    );
    check_probes(verifier, &token);
}

/// Checks `token` for each probe, twice: the second check of a credential that verified is a
/// cache hit, and must decide exactly as the first.
fn check_probes(verifier: &Verifier, token: &str) {
    for (action, resource, peer) in probes() {
        let first = verifier.check(token, action, &resource, peer);
        let again = verifier.check(token, action, &resource, peer);
        assert_eq!(decision_summary(&first), decision_summary(&again));
        if first.allowed() {
            assert!(first.credential().is_some(), "allowed without a credential");
        }
        // The principal the management APIs see agrees with the check, cached or not.
        let principal = |v: &Verifier| {
            v.authenticate(token)
                .map(|p| (p.credential, p.permissions, p.bound))
        };
        let (a, b) = (principal(verifier), principal(verifier));
        assert_eq!(a.is_ok(), b.is_ok());
        if first.allowed() {
            assert!(a.is_ok(), "a check allowed what authenticate refuses");
        }
        if let (Ok(a), Ok(b)) = (a, b) {
            assert_eq!((&a.0, &a.1, &a.2), (&b.0, &b.1, &b.2));
            assert_eq!(first.credential(), Some(a.0.as_ref()));
        }
    }
}

/// Target `role_permissions`: a `permission_rules.PermissionSet` (a role's permissions) to the
/// domain model, with and without super-user allowed. What converts must come back unchanged
/// through its protobuf form (roles are listed that way and written back), and through the
/// CLI's document form (`roles list --json`, edited, then `roles create --file`).
pub fn role_permissions(data: &[u8]) {
    let Ok(set) = pr::PermissionSet::decode(data) else {
        return;
    };
    let to_domain = |set: &pr::PermissionSet, allow_super_user| {
        policy::proto::permission_set_from_proto("permissions", Some(set), allow_super_user)
    };
    for allow_super_user in [false, true] {
        let Ok(domain) = to_domain(&set, allow_super_user) else {
            continue;
        };
        let listed = policy::proto::permission_set_to_proto(&domain);
        assert_eq!(
            to_domain(&listed, allow_super_user).as_ref(),
            Ok(&domain),
            "a role's permissions changed through their protobuf round trip"
        );
        let printed = cli::PermissionsDoc::from_proto(&listed);
        let read_back = printed
            .to_proto()
            .map(|set| to_domain(&set, allow_super_user));
        assert_eq!(
            read_back.as_ref(),
            Ok(&Ok(domain.clone())),
            "a role's permissions changed through the CLI's document form {printed:?}"
        );
        evaluate_probes(&domain);
    }
}

/// Target `token_permissions`: a `permission_messages.Permissions` (a disposable token's or an
/// SDK-made key's statements) to the domain model. Each rule that converts must survive the
/// compact encoding signed into the token unchanged, and the delegation test must not panic.
pub fn token_permissions(data: &[u8]) {
    let Ok(message) = pm::Permissions::decode(data) else {
        return;
    };
    let Ok(rules) = policy::proto::statements_from_proto("permissions", Some(&message)) else {
        return;
    };
    for rule in &rules {
        let encoded = credential::encode_rule(rule);
        assert_eq!(
            credential::decode_rule(&encoded).as_ref(),
            Some(rule),
            "a token rule changed through its compact encoding {encoded:?}"
        );
    }
    let child = PermissionSet::rules(rules);
    for parent in system::ALL.iter().filter_map(|id| system::permissions(id)) {
        let _ = policy::check_delegation(&parent, &child);
    }
    let _ = policy::check_delegation(&fixture_role(), &child);
    evaluate_probes(&child);
}

/// Target `cli_permissions`: the CLI's permission files, read as a role permissions document
/// and as a token statements document, then converted as the server would. A role document the
/// server accepts must read back unchanged from the form `roles list --json` prints.
pub fn cli_permissions(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let path = Path::new("fuzz.json");
    if let Ok(set) = cli::parse_permissions(path, text) {
        if policy::proto::permission_set_from_proto("permissions", Some(&set), true).is_ok() {
            let printed = serde_json::to_string(&cli::PermissionsDoc::from_proto(&set))
                .expect("a permissions document serializes");
            assert_eq!(
                cli::parse_permissions(path, &printed).as_ref(),
                Ok(&set),
                "a role document changed through `roles list --json`: {printed}"
            );
        }
    }
    if let Ok(docs) = cli::parse_statements(path, text) {
        let statements = docs
            .iter()
            .enumerate()
            .map(|(i, doc)| doc.to_proto(&format!("statements[{i}]")))
            .collect::<Result<Vec<_>, _>>();
        if let Ok(permissions) = statements {
            let message = pm::Permissions {
                kind: Some(pm::permissions::Kind::Explicit(pm::ExplicitPermissions {
                    permissions,
                })),
            };
            let _ = policy::proto::statements_from_proto("permissions", Some(&message));
        }
    }
}

/// Target `page_token`: a next_token as the key and the audit listings decode it. A token that
/// decodes names an id whose own token decodes back to it.
pub fn page_token(data: &[u8]) {
    let Ok(token) = std::str::from_utf8(data) else {
        return;
    };
    for listing in [Listing::Keys, Listing::Audit] {
        if let Ok(Some(id)) = listing.decode_page_token(token) {
            let again = listing.encode_page_token(&id);
            assert_eq!(listing.decode_page_token(&again), Ok(Some(id)));
        }
    }
}

/// Target `authorize`: an `authcell.v1.AuthorizeRequest` as the Verifier service answers it
/// (request validation, then the check) against the fixture's authority.
pub fn authorize(data: &[u8]) {
    static SERVICE: OnceLock<VerifierService> = OnceLock::new();
    let Ok(request) = pb::AuthorizeRequest::decode(data) else {
        return;
    };
    let service = SERVICE.get_or_init(|| VerifierService::new(authority().clone(), false));
    let Ok(response) = service.decide(&request) else {
        return;
    };
    if response.allowed {
        assert_eq!(response.reason, pb::Reason::Unspecified as i32);
        assert!(!response.key_id.is_empty(), "allowed without a key id");
    } else {
        assert_ne!(response.reason, pb::Reason::Unspecified as i32);
    }
}
