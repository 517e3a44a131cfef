//! Reading cell text the way Chinese government files write it: full-width digits, thousands
//! separators, dates like `2024/1/5`, `2024年1月5日`, `20240105`, booleans 是/否.

use chrono::{DateTime, FixedOffset, NaiveDate, NaiveDateTime, NaiveTime, SecondsFormat, TimeZone, Utc};
use std::sync::OnceLock;

/// The platform's time zone, as a fixed offset from UTC (UTC+8 unless configured).
static LOCAL_OFFSET: OnceLock<FixedOffset> = OnceLock::new();

/// The default zone: China Standard Time, UTC+8 (no daylight saving).
pub const DEFAULT_OFFSET_SECS: i32 = 8 * 3600;

/// The platform's zone: naive times in input are local times there, and every surface writes
/// times in it (RFC 3339 with the offset, `2024-01-05T08:30:00+08:00`).
pub fn local_offset() -> FixedOffset {
    *LOCAL_OFFSET.get_or_init(|| FixedOffset::east_opt(DEFAULT_OFFSET_SECS).expect("valid offset"))
}

/// Set the platform's zone once, at start (before any read or write). Returns `false` when a
/// different zone was already in use.
pub fn set_local_offset(offset: FixedOffset) -> bool {
    *LOCAL_OFFSET.get_or_init(|| offset) == offset
}

/// The zone as Arrow names it: `+08:00`.
pub fn local_zone_name() -> String {
    offset_name(local_offset())
}

fn offset_name(o: FixedOffset) -> String {
    let secs = o.local_minus_utc();
    let sign = if secs < 0 { '-' } else { '+' };
    let a = secs.unsigned_abs();
    format!("{sign}{:02}:{:02}", a / 3600, (a % 3600) / 60)
}

/// An offset as written in settings and cell text: `+08:00`, `+0800`, `+08`, `-05:30`, `Z`,
/// `UTC`, `UTC+8`.
pub fn parse_offset(s: &str) -> Option<FixedOffset> {
    let t = s.trim();
    let t = t.strip_prefix("UTC").or_else(|| t.strip_prefix("GMT")).unwrap_or(t);
    if t.is_empty() || t == "Z" || t == "z" {
        return FixedOffset::east_opt(0);
    }
    let (sign, rest) = match t.as_bytes()[0] {
        b'+' => (1, &t[1..]),
        b'-' => (-1, &t[1..]),
        _ => return None,
    };
    if rest.is_empty() || !rest.bytes().all(|b| b.is_ascii_digit() || b == b':') {
        return None;
    }
    let (h, m) = match rest.split_once(':') {
        Some((h, m)) => (h, m),
        None if rest.len() == 4 => (&rest[..2], &rest[2..]),
        None => (rest, "0"),
    };
    let (h, m): (i32, i32) = (h.parse().ok()?, m.parse().ok()?);
    if h > 18 || m > 59 {
        return None;
    }
    FixedOffset::east_opt(sign * (h * 3600 + m * 60))
}

/// An instant as every surface writes it: RFC 3339 in the platform's zone, with its offset and
/// as many fractional digits as needed (`2024-01-05T08:30:00+08:00`, `…T08:30:00.5+08:00`).
pub fn format_instant(t: DateTime<Utc>) -> String {
    t.with_timezone(&local_offset()).to_rfc3339_opts(SecondsFormat::AutoSi, false)
}

/// Microseconds since the epoch as [`format_instant`] writes them.
pub fn format_micros(micros: i64) -> Option<String> {
    DateTime::from_timestamp_micros(micros).map(format_instant)
}

/// A date and time as an instant: an explicit offset or `Z` is honored; a naive time is a
/// local time in the platform's zone ([`local_offset`]).
pub fn parse_instant(s: &str) -> Option<DateTime<Utc>> {
    let (naive, offset) = parse_datetime_offset(s)?;
    let offset = offset.unwrap_or_else(local_offset);
    offset.from_local_datetime(&naive).single().map(|t| t.with_timezone(&Utc))
}

/// Full-width ASCII variants (０-９, Ａ-Ｚ, ．，－ ...) and the ideographic space to ASCII.
pub fn half_width(s: &str) -> std::borrow::Cow<'_, str> {
    if s.is_ascii() || !s.chars().any(|c| ('\u{FF01}'..='\u{FF5E}').contains(&c) || c == '\u{3000}') {
        return std::borrow::Cow::Borrowed(s);
    }
    std::borrow::Cow::Owned(
        s.chars()
            .map(|c| match c {
                '\u{3000}' => ' ',
                '\u{FF01}'..='\u{FF5E}' => char::from_u32(c as u32 - 0xFEE0).unwrap_or(c),
                c => c,
            })
            .collect(),
    )
}

/// An integer, with optional sign and thousands separators.
pub fn parse_int(s: &str) -> Option<i64> {
    let t = half_width(s.trim());
    let cleaned: String = t.chars().filter(|c| !matches!(c, ',' | '，' | ' ' | '_')).collect();
    if cleaned.is_empty() {
        return None;
    }
    cleaned.parse().ok().or_else(|| {
        // `12.0` as written by spreadsheets.
        let (i, f) = cleaned.split_once('.')?;
        (f.chars().all(|c| c == '0')).then(|| i.parse().ok()).flatten()
    })
}

/// A decimal as an integer scaled by 10^`scale`, rounded half away from zero.
pub fn parse_decimal(s: &str, scale: u32) -> Option<i128> {
    let t = half_width(s.trim());
    let cleaned: String = t.chars().filter(|c| !matches!(c, ',' | '，' | ' ' | '_' | '¥' | '￥')).collect();
    let (neg, body) = match cleaned.strip_prefix('-') {
        Some(b) => (true, b),
        None => (false, cleaned.strip_prefix('+').unwrap_or(&cleaned)),
    };
    if body.is_empty() {
        return None;
    }
    let (int, frac) = body.split_once('.').unwrap_or((body, ""));
    if int.is_empty() && frac.is_empty() {
        return None;
    }
    if !int.bytes().all(|b| b.is_ascii_digit()) || !frac.bytes().all(|b| b.is_ascii_digit()) || int.len() > 30 {
        return None;
    }
    let mut v: i128 = if int.is_empty() { 0 } else { int.parse().ok()? };
    for i in 0..scale as usize {
        let d = frac.as_bytes().get(i).map(|b| i128::from(b - b'0')).unwrap_or(0);
        v = v.checked_mul(10)?.checked_add(d)?;
    }
    if frac.as_bytes().get(scale as usize).is_some_and(|b| *b >= b'5') {
        v += 1;
    }
    Some(if neg { -v } else { v })
}

pub fn parse_f64(s: &str) -> Option<f64> {
    let t = half_width(s.trim());
    let cleaned: String = t.chars().filter(|c| !matches!(c, ',' | '，' | ' ' | '_')).collect();
    cleaned.parse::<f64>().ok().filter(|f| f.is_finite())
}

pub fn parse_bool(s: &str) -> Option<bool> {
    match half_width(s.trim()).to_ascii_lowercase().as_str() {
        "是" | "y" | "yes" | "true" | "t" | "1" | "√" | "对" => Some(true),
        "否" | "n" | "no" | "false" | "f" | "0" | "×" | "错" => Some(false),
        _ => None,
    }
}

/// A date: `2024-01-05`, `2024/1/5`, `2024.1.5`, `2024年1月5日`, `20240105`.
pub fn parse_date(s: &str) -> Option<NaiveDate> {
    let t = half_width(s.trim());
    let t = t.trim();
    if t.len() == 8 && t.bytes().all(|b| b.is_ascii_digit()) {
        return NaiveDate::parse_from_str(t, "%Y%m%d").ok();
    }
    let normalized: String = t
        .trim_end_matches('日')
        .chars()
        .map(|c| match c {
            '年' | '月' | '/' | '.' => '-',
            c => c,
        })
        .collect();
    let mut parts = normalized.split('-');
    let y: i32 = parts.next()?.trim().parse().ok()?;
    let m: u32 = parts.next()?.trim().parse().ok()?;
    let d: u32 = parts.next()?.trim().parse().ok()?;
    if parts.next().is_some() || !(1000..=9999).contains(&y) {
        return None;
    }
    NaiveDate::from_ymd_opt(y, m, d)
}

/// A date and time as written (its offset, if any, dropped): see [`parse_datetime_offset`].
/// Callers that need the instant use [`parse_instant`].
pub fn parse_datetime(s: &str) -> Option<NaiveDateTime> {
    parse_datetime_offset(s).map(|(t, _)| t)
}

/// Split a trailing offset (`Z`, `+08:00`, `+0800`, `+08`, `-05:00`) off a time of day.
fn split_offset(time: &str) -> (&str, Option<FixedOffset>) {
    let t = time.trim_end();
    if let Some(rest) = t.strip_suffix(['Z', 'z']) {
        return (rest.trim_end(), FixedOffset::east_opt(0));
    }
    if let Some(i) = t.rfind(['+', '-'])
        && let Some(o) = parse_offset(&t[i..])
    {
        return (t[..i].trim_end(), Some(o));
    }
    (t, None)
}

/// A date and time: a date as [`parse_date`] reads, then ` ` or `T`, then `H:MM[:SS[.f]]`
/// (also `8时30分`), then optionally an offset (`Z`, `+08:00`); a date alone is midnight.
pub fn parse_datetime_offset(s: &str) -> Option<(NaiveDateTime, Option<FixedOffset>)> {
    let t = half_width(s.trim());
    let t = t.trim();
    let (d, time) = match t.find([' ', 'T']) {
        Some(i) => (&t[..i], t[i + 1..].trim()),
        None => {
            // 2024年1月5日8时30分
            match t.find('日') {
                Some(i) if i + '日'.len_utf8() < t.len() => {
                    (&t[..i + '日'.len_utf8()], t[i + '日'.len_utf8()..].trim())
                }
                _ => (t, ""),
            }
        }
    };
    let date = parse_date(d)?;
    if time.is_empty() {
        return Some((date.and_hms_opt(0, 0, 0)?, None));
    }
    let (time, offset) = split_offset(time);
    if time.is_empty() {
        return Some((date.and_hms_opt(0, 0, 0)?, offset));
    }
    let time = time.trim_end_matches('秒').replace(['时', '分'], ":");
    let time = time.trim_end_matches(':');
    let parsed = NaiveTime::parse_from_str(time, "%H:%M:%S%.f")
        .or_else(|_| NaiveTime::parse_from_str(time, "%H:%M:%S"))
        .or_else(|_| NaiveTime::parse_from_str(time, "%H:%M"))
        .ok()?;
    Some((date.and_time(parsed), offset))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn dates_in_every_usual_form() {
        let d = NaiveDate::from_ymd_opt(2024, 1, 5).unwrap();
        for s in
            ["2024-01-05", "2024/1/5", "2024年1月5日", "20240105", "2024.1.5", "２０２４－０１－０５", " 2024-1-05 "]
        {
            assert_eq!(parse_date(s), Some(d), "{s}");
        }
        for s in ["2024-02-30", "2024/13/1", "24/1/5", "", "昨天", "2024-1-5-1"] {
            assert_eq!(parse_date(s), None, "{s}");
        }
    }

    #[test]
    fn datetimes() {
        let dt = NaiveDate::from_ymd_opt(2024, 1, 5).unwrap().and_hms_opt(8, 30, 0).unwrap();
        for s in
            ["2024-01-05 08:30", "2024/1/5 8:30:00", "2024-01-05T08:30:00", "2024年1月5日 8:30", "2024年1月5日8时30分"]
        {
            assert_eq!(parse_datetime(s), Some(dt), "{s}");
        }
        assert_eq!(parse_datetime("2024-01-05").unwrap().time(), NaiveTime::MIN);
        assert_eq!(parse_datetime("2024-01-05 25:00"), None);
    }

    #[test]
    fn instants_honor_offsets_and_read_naive_times_as_local() {
        let utc = |s: &str| DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc);
        let at = utc("2024-01-05T00:30:00Z");
        for s in [
            "2024-01-05 08:30",
            "2024-01-05T08:30:00+08:00",
            "2024-01-05T00:30:00Z",
            "2024-01-05T00:30:00.000000Z",
            "2024-01-05 00:30:00 +00:00",
            "2024-01-05T08:30:00+0800",
            "2024-01-04T19:30:00-05:00",
            "2024年1月5日8时30分",
        ] {
            assert_eq!(parse_instant(s), Some(at), "{s}");
        }
        // A date alone is local midnight: the previous day in UTC.
        assert_eq!(parse_instant("2024-01-01"), Some(utc("2023-12-31T16:00:00Z")));
        assert_eq!(parse_instant("2024-01-01T00:00:00Z"), Some(utc("2024-01-01T00:00:00Z")));
        assert_eq!(format_instant(at), "2024-01-05T08:30:00+08:00");
        assert_eq!(format_instant(utc("2023-12-31T16:00:00.123456Z")), "2024-01-01T00:00:00.123456+08:00");
        // Output reads back as the same instant.
        for s in ["1970-01-01T08:00:00+08:00", "2024-12-31T23:59:59.999999+08:00", "2024-02-29T00:00:00Z"] {
            let t = parse_instant(s).unwrap();
            assert_eq!(parse_instant(&format_instant(t)), Some(t), "{s}");
        }
        assert_eq!(parse_offset("+08:00"), FixedOffset::east_opt(8 * 3600));
        assert_eq!(parse_offset("UTC+8"), FixedOffset::east_opt(8 * 3600));
        assert_eq!(parse_offset("-05:30"), FixedOffset::east_opt(-(5 * 3600 + 30 * 60)));
        assert_eq!(parse_offset("+25:00"), None);
        assert_eq!(local_zone_name(), "+08:00");
    }

    #[test]
    fn numbers() {
        assert_eq!(parse_int("1,234"), Some(1234));
        assert_eq!(parse_int("１２３"), Some(123));
        assert_eq!(parse_int("-5"), Some(-5));
        assert_eq!(parse_int("12.0"), Some(12));
        assert_eq!(parse_int("12.5"), None);
        assert_eq!(parse_decimal("1,234.565", 2), Some(123457));
        assert_eq!(parse_decimal("-0.5", 0), Some(-1));
        assert_eq!(parse_decimal("．５", 1), Some(5));
        assert_eq!(parse_decimal("1e5", 2), None);
        assert_eq!(parse_decimal("abc", 2), None);
        assert_eq!(parse_bool("是"), Some(true));
        assert_eq!(parse_bool("N"), Some(false));
        assert_eq!(parse_bool("maybe"), None);
    }

    proptest! {
        #[test]
        fn casts_never_panic(s in "\\PC{0,30}") {
            let _ = parse_int(&s);
            let _ = parse_decimal(&s, 6);
            let _ = parse_f64(&s);
            let _ = parse_date(&s);
            let _ = parse_datetime(&s);
            let _ = parse_instant(&s);
        }

        #[test]
        fn decimals_roundtrip(v in -1_000_000_000i64..1_000_000_000, scale in 0u32..6) {
            let text = format!("{}.{:0width$}", v / 10i64.pow(scale).max(1), (v % 10i64.pow(scale).max(1)).abs(), width = scale as usize);
            if scale > 0 && v < 0 && v / 10i64.pow(scale) == 0 {
                return Ok(()); // "-0.x" forms are covered above
            }
            prop_assert_eq!(parse_decimal(&text, scale), Some(v as i128));
        }
    }
}
