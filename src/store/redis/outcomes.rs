//! What the mutation scripts answer, read in one place.
//!
//! Every mutation script (`scripts/*.lua`) answers with a status word first: `OK`, or why it
//! changed nothing. After the word come the values it carries (the event id of the change, a
//! stored receipt, a count). [`Reply`] parses any of those shapes once; each mutation only says
//! what its refusals mean to its caller.

use redis::{FromRedisValue, ParsingError, Value};

use crate::store::StoreError;

/// Why a script changed nothing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Refusal {
    /// The record to change does not exist.
    NotFound,
    /// The record to create exists already.
    Exists,
    /// The role name is taken by another role of the account.
    NameTaken,
    /// The record changed since it was read.
    Conflict,
    /// The role still has this many live keys.
    InUse(u64),
    /// The custom role the key names does not exist.
    NoRole,
    /// The account holds as many token-id revocations as it may.
    Quota,
    /// The request id was seen before: the receipt (JSON) stored the first time.
    Replay(String),
    /// Any other word (the refresh script's `USED`, `MISMATCH`).
    Other(String),
}

/// A script's reply: `Ok` with the values after `OK`, or a [`Refusal`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Reply {
    Ok(Vec<String>),
    Refused(Refusal),
}

impl Reply {
    /// The values after `OK`, or the error `refused` makes of a refusal.
    pub(super) fn ok(
        self,
        refused: impl FnOnce(Refusal) -> StoreError,
    ) -> Result<Vec<String>, StoreError> {
        match self {
            Reply::Ok(values) => Ok(values),
            Reply::Refused(refusal) => Err(refused(refusal)),
        }
    }
}

impl FromRedisValue for Reply {
    fn from_redis_value(value: Value) -> Result<Reply, ParsingError> {
        // A bare word, or an array whose first element is the word.
        let mut words: Vec<String> = match value {
            Value::Array(items) => items
                .into_iter()
                .map(String::from_redis_value)
                .collect::<Result<_, _>>()?,
            other => vec![String::from_redis_value(other)?],
        };
        if words.is_empty() {
            return Err("an empty script reply".into());
        }
        let status = words.remove(0);
        let first = || words.first().cloned().unwrap_or_default();
        Ok(match status.as_str() {
            "OK" => Reply::Ok(words),
            "NOTFOUND" => Reply::Refused(Refusal::NotFound),
            "EXISTS" => Reply::Refused(Refusal::Exists),
            "NAMETAKEN" => Reply::Refused(Refusal::NameTaken),
            "CONFLICT" => Reply::Refused(Refusal::Conflict),
            "INUSE" => Reply::Refused(Refusal::InUse(first().parse().unwrap_or(0))),
            "NOROLE" => Reply::Refused(Refusal::NoRole),
            "QUOTA" => Reply::Refused(Refusal::Quota),
            "REPLAY" => Reply::Refused(Refusal::Replay(first())),
            _ => Reply::Refused(Refusal::Other(status)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bulk(s: &str) -> Value {
        Value::BulkString(s.as_bytes().to_vec())
    }

    #[test]
    fn every_reply_shape_reads_the_same() {
        let read = |v| Reply::from_redis_value(v).expect("a reply");
        assert_eq!(read(Value::SimpleString("OK".into())), Reply::Ok(vec![]));
        assert_eq!(
            read(Value::Array(vec![bulk("OK"), bulk("1-0"), Value::Int(7)])),
            Reply::Ok(vec!["1-0".into(), "7".into()])
        );
        assert_eq!(
            read(Value::Array(vec![bulk("INUSE"), Value::Int(3)])),
            Reply::Refused(Refusal::InUse(3))
        );
        assert_eq!(
            read(Value::Array(vec![bulk("REPLAY"), bulk("{}")])),
            Reply::Refused(Refusal::Replay("{}".into()))
        );
        assert_eq!(
            read(bulk("USED")),
            Reply::Refused(Refusal::Other("USED".into()))
        );
        assert!(Reply::from_redis_value(Value::Array(vec![])).is_err());
    }
}
