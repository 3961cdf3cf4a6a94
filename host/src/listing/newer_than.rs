//! `--newer-than DUR|DATE`: the instant objects must be modified after,
//! and reading rclone's `ModTime` (RFC 3339, any UTC offset, any fraction
//! of a second). The same instant is given to rclone as `--max-age`
//! (RFC 3339 in UTC, which rclone takes as an absolute time), so a remote
//! listing and a saved one select the same objects.

use std::time::{Duration, SystemTime};

/// Resolve `--newer-than` against `now`: a duration back (`30d`, `12h`,
/// humantime units) or a date (`2026-11-01`, `2026-11-01T06:00:00Z`,
/// `2026-11-01T06:00:00+02:00`).
pub fn parse(raw: &str, now: SystemTime) -> Result<SystemTime, String> {
    let text = raw.trim();
    if let Ok(back) = humantime::parse_duration(text) {
        return now.checked_sub(back).ok_or_else(|| format!("`{raw}` reaches back before 1970"));
    }
    let date_only = text.len() == 10 && text.as_bytes().get(4) == Some(&b'-');
    let full = if date_only { format!("{text}T00:00:00Z") } else { text.to_string() };
    parse_rfc3339(&full).ok_or_else(|| {
        format!("`{raw}` is neither a duration (30d, 12h) nor a date (2026-11-01, 2026-11-01T06:00:00Z)")
    })
}

/// An RFC 3339 time with `Z` or a `±HH:MM` offset (rclone's `ModTime`).
pub fn parse_rfc3339(text: &str) -> Option<SystemTime> {
    let text = text.trim();
    let (local, offset) = if let Some(t) = text.strip_suffix(['Z', 'z']) {
        (t, 0i64)
    } else {
        // `+HH:MM` / `-HH:MM` after the seconds.
        let at = text.len().checked_sub(6)?;
        let (t, off) = text.split_at(at);
        let sign = match off.as_bytes()[0] {
            b'+' => 1,
            b'-' => -1,
            _ => return None,
        };
        let (h, m) = off[1..].split_once(':')?;
        (t, sign * (h.parse::<i64>().ok()? * 3600 + m.parse::<i64>().ok()? * 60))
    };
    let utc_as_if = humantime::parse_rfc3339_weak(local).ok()?;
    let shift = Duration::from_secs(offset.unsigned_abs());
    // A local time east of UTC (+02:00) is earlier in UTC.
    if offset >= 0 { utc_as_if.checked_sub(shift) } else { utc_as_if.checked_add(shift) }
}

/// The instant as rclone's `--max-age` takes it: RFC 3339 in UTC, whole
/// seconds (rounded down, so rclone never drops what prewarm would keep).
pub fn rclone_max_age(since: SystemTime) -> String {
    humantime::format_rfc3339_seconds(since).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_dates_and_offsets() {
        let now = parse_rfc3339("2026-12-07T12:00:00Z").unwrap();
        assert_eq!(parse("30d", now).unwrap(), parse_rfc3339("2026-11-07T12:00:00Z").unwrap());
        assert_eq!(parse("12h", now).unwrap(), parse_rfc3339("2026-12-07T00:00:00Z").unwrap());
        assert_eq!(parse("2026-11-01", now).unwrap(), parse_rfc3339("2026-11-01T00:00:00Z").unwrap());
        assert_eq!(
            parse_rfc3339("2026-11-01T08:00:00.123456789+02:00").unwrap(),
            parse_rfc3339("2026-11-01T06:00:00.123456789Z").unwrap()
        );
        assert_eq!(parse_rfc3339("2026-11-01T01:00:00-05:00").unwrap(), parse_rfc3339("2026-11-01T06:00:00Z").unwrap());
        assert!(parse("yesterday", now).unwrap_err().starts_with("`yesterday` is neither a duration"));
        assert!(parse_rfc3339("2026-11-01T06:00:00+0200").is_none());
        assert_eq!(rclone_max_age(parse_rfc3339("2026-11-01T06:00:00.9Z").unwrap()), "2026-11-01T06:00:00Z");
    }
}
