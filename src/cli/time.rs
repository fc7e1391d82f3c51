//! Times and durations on the command line: RFC 3339 timestamps, `30d`-style durations.

use super::*;

pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
pub(crate) fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = i64::from((month + 9) % 12);
    let doy = (153 * mp + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date of a day count since 1970-01-01.
pub(crate) fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

pub(crate) fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        _ => 28,
    }
}

/// Epoch milliseconds as RFC 3339 in UTC; milliseconds shown only when asked for.
pub fn format_time_ms(ms: u64, with_millis: bool) -> String {
    let secs = ms / 1000;
    let days = i64::try_from(secs / 86_400).unwrap_or(i64::MAX / 2);
    let rest = secs % 86_400;
    let (year, month, day) = civil_from_days(days);
    let (h, m, s) = (rest / 3600, rest % 3600 / 60, rest % 60);
    if with_millis {
        format!(
            "{year:04}-{month:02}-{day:02}T{h:02}:{m:02}:{s:02}.{:03}Z",
            ms % 1000
        )
    } else {
        format!("{year:04}-{month:02}-{day:02}T{h:02}:{m:02}:{s:02}Z")
    }
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

pub(crate) fn parse_rfc3339_ms(text: &str) -> Option<u64> {
    let num = |s: &str| -> Option<u32> {
        if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
            s.parse().ok()
        } else {
            None
        }
    };
    let (date, time) = match text.find(['T', 't', ' ']) {
        Some(i) => (&text[..i], Some(&text[i + 1..])),
        None => (text, None),
    };
    let mut parts = date.split('-');
    let (year, month, day) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || year.len() != 4 || month.len() != 2 || day.len() != 2 {
        return None;
    }
    let (year, month, day) = (i64::from(num(year)?), num(month)?, num(day)?);
    if !(1..=12).contains(&month) || day == 0 || day > days_in_month(year, month) {
        return None;
    }
    let mut ms_of_day: i64 = 0;
    let mut offset_secs: i64 = 0;
    if let Some(time) = time {
        let (clock, zone) = if let Some(clock) = time.strip_suffix(['Z', 'z']) {
            (clock, None)
        } else {
            let i = time.rfind(['+', '-'])?;
            (&time[..i], Some(&time[i..]))
        };
        let (hms, fraction) = match clock.split_once('.') {
            Some((hms, fraction)) => (hms, Some(fraction)),
            None => (clock, None),
        };
        let mut fields = hms.split(':');
        let (h, m, s) = (fields.next()?, fields.next()?, fields.next()?);
        if fields.next().is_some() || h.len() != 2 || m.len() != 2 || s.len() != 2 {
            return None;
        }
        let (h, m, s) = (num(h)?, num(m)?, num(s)?);
        // A leap second is read as the last second of its minute.
        if h > 23 || m > 59 || s > 60 {
            return None;
        }
        let millis = match fraction {
            None => 0,
            Some(f) => {
                num(f)?;
                let digits: String = f.chars().chain("000".chars()).take(3).collect();
                num(&digits)?
            }
        };
        ms_of_day = (i64::from(h) * 3600 + i64::from(m) * 60 + i64::from(s.min(59))) * 1000
            + i64::from(millis);
        if let Some(zone) = zone {
            let sign = if zone.starts_with('-') { -1 } else { 1 };
            let (oh, om) = zone[1..].split_once(':')?;
            if oh.len() != 2 || om.len() != 2 {
                return None;
            }
            let (oh, om) = (num(oh)?, num(om)?);
            if oh > 23 || om > 59 {
                return None;
            }
            offset_secs = sign * (i64::from(oh) * 3600 + i64::from(om) * 60);
        }
    }
    let ms = days_from_civil(year, month, day) * 86_400_000 + ms_of_day - offset_secs * 1000;
    u64::try_from(ms).ok()
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
