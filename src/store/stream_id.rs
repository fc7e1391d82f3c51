//! Ids of stream entries: the event stream, the audit streams and the beats (Redis generates
//! them; the memory store imitates them).

use std::cmp::Ordering;
use std::fmt;

/// A stream entry id, `<milliseconds>-<sequence>`. Ordered as Redis orders them: numerically,
/// milliseconds first.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct StreamId {
    /// Milliseconds since the epoch, on the clock of whoever generated the id (for Redis, the
    /// primary's).
    pub ms: u64,
    pub seq: u64,
}

impl StreamId {
    /// Reads an id; a part that is missing or not a number counts as 0 (`"0-0"` is the id
    /// before every entry).
    pub fn parse(id: &str) -> StreamId {
        let mut parts = id.splitn(2, '-');
        let mut next = || parts.next().and_then(|v| v.parse().ok()).unwrap_or(0);
        let ms = next();
        let seq = next();
        StreamId { ms, seq }
    }

    /// The milliseconds of an id in text.
    pub fn ms_of(id: &str) -> u64 {
        StreamId::parse(id).ms
    }

    /// Compares two ids in text.
    pub fn cmp_text(a: &str, b: &str) -> Ordering {
        StreamId::parse(a).cmp(&StreamId::parse(b))
    }
}

impl fmt::Display for StreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.ms, self.seq)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_order_numerically_and_read_leniently() {
        assert_eq!(StreamId::cmp_text("9-5", "10-0"), Ordering::Less);
        assert_eq!(StreamId::cmp_text("10-2", "10-10"), Ordering::Less);
        assert_eq!(
            StreamId::parse("1700000000000-3").to_string(),
            "1700000000000-3"
        );
        assert_eq!(StreamId::parse("12"), StreamId { ms: 12, seq: 0 });
        assert_eq!(StreamId::parse("junk"), StreamId::default());
        assert_eq!(StreamId::ms_of("42-7"), 42);
    }
}
