//! The Lua scripts of the Redis store (`scripts/*.lua`, built in with `include_str!`) and how
//! they are run. Each mutation script is the audit prelude followed by its body; each file opens
//! with the KEYS and ARGV it takes, and answers as [`super::outcomes`] reads.

use redis::Script;

use super::link::Durable;

/// Prepended to every mutation script: appends the audit record, when there is one, to the
/// account's audit stream. The last KEY of every script is that stream; its last two ARGV are
/// the record ('' for none) and the stream's cap.
const AUDIT_PRELUDE: &str = include_str!("scripts/audit_prelude.lua");

/// A mutation script: the audit prelude, then the body.
fn mutation(body: &str) -> Script {
    Script::new(&format!("{AUDIT_PRELUDE}{body}"))
}

/// Stores a new key. Under a request id (a receipt in ARGV[7]) a retry finds the first
/// attempt's receipt and stores nothing new.
const INSERT_KEY: &str = include_str!("scripts/insert_key.lua");

const REVOKE_KEY: &str = include_str!("scripts/revoke_key.lua");

const PUBLISH: &str = include_str!("scripts/publish.lua");

/// Removes ended token-id revocations (at most ARGV[2] of them) from the `revoked` hash and
/// both sorted sets. Shared by the revocation script and the periodic sweep.
pub(super) const SWEEP_TOKEN_IDS: &str = include_str!("scripts/sweep_token_ids.lua");

const REVOKE_TOKEN_ID: &str = include_str!("scripts/revoke_token_id.lua");

/// The cut is taken from the primary's clock, the one clock every node's issue stamps follow
/// (see [`crate::clock`]).
const ISSUED_BEFORE: &str = include_str!("scripts/issued_before.lua");

const PUT_ROLE: &str = include_str!("scripts/put_role.lua");

const DELETE_ROLE: &str = include_str!("scripts/delete_role.lua");

const ROTATE_REFRESH: &str = include_str!("scripts/rotate_refresh.lua");

/// Rotates a key: the new key, the old one's rotation and its scheduled (or immediate)
/// revocation, in one mutation.
const ROTATE_KEY: &str = include_str!("scripts/rotate_key.lua");

/// Revokes rotated keys whose overlap ended (run by every node's scheduler).
const REVOKE_DUE: &str = include_str!("scripts/revoke_due.lua");

/// Records `key.expiring` for keys that entered their last week (run by every node's
/// scheduler; each key once).
const WARN_EXPIRING: &str = include_str!("scripts/warn_expiring.lua");

/// Gives a rotated SDK-made key a new refresh hash (a replayed rotation).
const RESET_REFRESH: &str = include_str!("scripts/reset_refresh.lua");

/// The mutation scripts, loaded once per store.
pub(super) struct Scripts {
    pub(super) insert_key: Script,
    pub(super) revoke_key: Script,
    pub(super) publish: Script,
    pub(super) revoke_token_id: Script,
    pub(super) issued_before: Script,
    pub(super) put_role: Script,
    pub(super) delete_role: Script,
    pub(super) rotate_refresh: Script,
    pub(super) rotate_key: Script,
    pub(super) revoke_due: Script,
    pub(super) reset_refresh: Script,
    pub(super) warn_expiring: Script,
}

impl Scripts {
    pub(super) fn load() -> Scripts {
        Scripts {
            insert_key: mutation(INSERT_KEY),
            revoke_key: mutation(REVOKE_KEY),
            publish: mutation(PUBLISH),
            revoke_token_id: mutation(&format!("{SWEEP_TOKEN_IDS}{REVOKE_TOKEN_ID}")),
            issued_before: mutation(ISSUED_BEFORE),
            put_role: mutation(PUT_ROLE),
            delete_role: mutation(DELETE_ROLE),
            rotate_refresh: mutation(ROTATE_REFRESH),
            rotate_key: mutation(ROTATE_KEY),
            revoke_due: Script::new(REVOKE_DUE),
            reset_refresh: Script::new(RESET_REFRESH),
            warn_expiring: Script::new(WARN_EXPIRING),
        }
    }
}

/// Runs a mutation script. A node that followed the primary to a new server after `READONLY`
/// (see [`Link`]) can meet a server without the script in the middle of redis-rs's own
/// NOSCRIPT fallback; the second attempt loads it there. A NOSCRIPT reply means the script did
/// not run, so trying again is safe.
pub(super) async fn run_script<T: redis::FromRedisValue>(
    invocation: &redis::ScriptInvocation<'_>,
    conn: &mut Durable,
) -> redis::RedisResult<T> {
    match invocation.invoke_async(conn).await {
        Err(e) if e.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::NoScript) => {
            invocation.invoke_async(conn).await
        }
        other => other,
    }
}
