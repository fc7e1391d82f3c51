//! Times and durations on the command line: RFC 3339 timestamps, `30d`-style durations.

use super::*;

pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Epoch milliseconds as RFC 3339 in UTC; milliseconds shown only when asked for.
pub fn format_time_ms(ms: u64, with_millis: bool) -> String {
    use ::time::macros::format_description;
    let at = i128::from(ms).saturating_mul(1_000_000);
    let Ok(at) = ::time::OffsetDateTime::from_unix_timestamp_nanos(at) else {
        // Beyond year 9999: still say something true.
        return format!("{ms} ms after the epoch");
    };
    let formatted = if with_millis {
        at.format(format_description!(
            "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
        ))
    } else {
        at.format(format_description!(
            "[year]-[month]-[day]T[hour]:[minute]:[second]Z"
        ))
    };
    formatted.unwrap_or_else(|_| format!("{ms} ms after the epoch"))
}

pub(crate) fn format_secs(secs: u64) -> String {
    format_time_ms(secs.saturating_mul(1000), false)
}

/// Parses epoch seconds or an RFC 3339 time (`2030-01-01T00:00:00Z`, with optional fraction
/// and `±hh:mm` offset; a bare date means its midnight UTC) into epoch milliseconds.
pub fn parse_timestamp_ms(text: &str) -> Result<u64, String> {
    let text = text.trim();
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        let secs: u64 = text
            .parse()
            .map_err(|_| format!("{text:?}: too large for epoch seconds"))?;
        if secs >= 100_000_000_000 {
            return Err(format!(
                "{text:?}: looks like milliseconds; give epoch seconds"
            ));
        }
        return Ok(secs * 1000);
    }
    parse_rfc3339_ms(text).ok_or_else(|| {
        format!("{text:?}: use epoch seconds or RFC 3339, like 2030-01-01T00:00:00Z")
    })
}

/// RFC 3339 (any offset; `t`/`z` in either case, or a space between date and time), or a bare
/// date (its midnight UTC), as epoch milliseconds; `None` before the epoch or if malformed.
pub(crate) fn parse_rfc3339_ms(text: &str) -> Option<u64> {
    use ::time::format_description::well_known::Rfc3339;
    use ::time::macros::format_description;
    let at = match ::time::Date::parse(text, format_description!("[year]-[month]-[day]")) {
        Ok(date) => date.midnight().assume_utc(),
        Err(_) => {
            // RFC 3339 allows a space instead of the `T`; the parser wants the letter.
            let text = match text.as_bytes().get(10) {
                Some(b' ') => format!("{}T{}", &text[..10], &text[11..]),
                _ => text.to_owned(),
            };
            ::time::OffsetDateTime::parse(&text, &Rfc3339).ok()?
        }
    };
    u64::try_from(at.unix_timestamp_nanos() / 1_000_000).ok()
}

/// As [`parse_duration`], but zero (`0` or `0s`) is allowed: a rotation's overlap.
pub fn parse_overlap(text: &str) -> Result<Duration, String> {
    // `0`, `0s`, `0m`, ...: one zero, with or without one unit.
    let number = text
        .trim()
        .strip_suffix(['s', 'm', 'h', 'd'])
        .unwrap_or(text.trim());
    if number.parse::<u64>() == Ok(0) {
        return Ok(Duration::ZERO);
    }
    parse_duration(text)
}

/// Parses `30d`, `12h`, `90m`, `45s`, or several of them together (`1h30m`).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err("empty duration: use a number and a unit, like 10m".into());
    }
    let mut total: u64 = 0;
    let mut digits = String::new();
    for c in text.chars() {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        let unit = match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            _ => {
                return Err(format!(
                    "{text:?}: unknown unit {c:?}; use s, m, h or d (like 90m or 1h30m)"
                ))
            }
        };
        if digits.is_empty() {
            return Err(format!("{text:?}: a number must come before {c:?}"));
        }
        let n: u64 = digits.parse().map_err(|_| format!("{text:?}: too large"))?;
        total = n
            .checked_mul(unit)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(|| format!("{text:?}: too large"))?;
        digits.clear();
    }
    if !digits.is_empty() {
        return Err(format!(
            "{text:?}: add a unit: s, m, h or d (like {digits}s or {digits}m)"
        ));
    }
    if total == 0 {
        return Err(format!("{text:?}: must be longer than zero"));
    }
    Ok(Duration::from_secs(total))
}

/// A time (epoch seconds, RFC 3339) or a duration before now (`24h`).
pub fn parse_time_arg(text: &str) -> Result<TimeArg, String> {
    let trimmed = text.trim();
    let looks_like_duration = trimmed
        .chars()
        .last()
        .is_some_and(|c| matches!(c, 's' | 'm' | 'h' | 'd'))
        && !trimmed.contains(['-', ':']);
    if looks_like_duration {
        return parse_duration(trimmed).map(TimeArg::Ago);
    }
    parse_timestamp_ms(trimmed)
        .map(TimeArg::At)
        .map_err(|e| format!("{e}, or a duration ago like 24h"))
}
