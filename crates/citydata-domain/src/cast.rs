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

/// `s.trim()`, without decoding the first and last characters when their leading bytes show
/// that they cannot be white space: every Unicode white-space character is ASCII or starts
/// with 0xC2, 0xE1, 0xE2 or 0xE3 in UTF-8, so a cell that begins and ends with a Chinese
/// character or a visible ASCII one is returned as it is (an ingest trims every cell, twice).
pub fn trim_cell(s: &str) -> &str {
    fn not_space(lead: u8) -> bool {
        lead.is_ascii_graphic() || (lead >= 0xC0 && !matches!(lead, 0xC2 | 0xE1 | 0xE2 | 0xE3))
    }
    let b = s.as_bytes();
    let Some(&first) = b.first() else { return s };
    // The last character's leading byte: the last byte that does not continue a sequence.
    let last = b.iter().rev().take(4).copied().find(|c| !(0x80..=0xBF).contains(c));
    if not_space(first) && last.is_some_and(not_space) { s } else { s.trim() }
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
    let t = half_width(trim_cell(s));
    let t = t.trim();
    if t.len() == 8 && t.bytes().all(|b| b.is_ascii_digit()) {
        return ymd8(t);
    }
    // ASCII text (`2024-01-05`, `2024/1/5`, `2024.1.5`): split in place, nothing allocated.
    if t.is_ascii() {
        return ymd_parts(t.split(['-', '/', '.']));
    }
    let normalized: String = t
        .trim_end_matches('日')
        .chars()
        .map(|c| match c {
            '年' | '月' | '/' | '.' => '-',
            c => c,
        })
        .collect();
    ymd_parts(normalized.split('-'))
}

/// Year, month and day from exactly three parts; the year has four digits.
fn ymd_parts<'a>(mut parts: impl Iterator<Item = &'a str>) -> Option<NaiveDate> {
    let y: i32 = parts.next()?.trim().parse().ok()?;
    let m: u32 = parts.next()?.trim().parse().ok()?;
    let d: u32 = parts.next()?.trim().parse().ok()?;
    if parts.next().is_some() || !(1000..=9999).contains(&y) {
        return None;
    }
    NaiveDate::from_ymd_opt(y, m, d)
}

/// Eight ASCII digits `YYYYMMDD` as a date: what chrono's `"%Y%m%d"` reads from them, without
/// interpreting the format string for every value (that interpretation was a tenth of an
/// ingest's CPU: birth dates in identity numbers, dates in cells).
pub fn ymd8(t: &str) -> Option<NaiveDate> {
    let b = t.as_bytes();
    if b.len() != 8 || !b.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let n = |r: std::ops::Range<usize>| b[r].iter().fold(0u32, |a, d| a * 10 + u32::from(d - b'0'));
    NaiveDate::from_ymd_opt(n(0..4) as i32, n(4..6), n(6..8))
}

/// `H:MM`, `HH:MM`, `HH:MM:SS` or `HH:MM:SS.fffffffff` (1–9 fraction digits) read directly;
/// `None` for anything else, which the caller then gives to chrono. Where it answers, it
/// answers as chrono's `%H:%M:%S%.f` / `%H:%M` would.
fn hms_ascii(t: &str) -> Option<NaiveTime> {
    let b = t.as_bytes();
    let two = |i: usize| -> Option<u32> {
        let (x, y) = (*b.get(i)?, *b.get(i + 1)?);
        (x.is_ascii_digit() && y.is_ascii_digit()).then(|| u32::from(x - b'0') * 10 + u32::from(y - b'0'))
    };
    let (h, rest) = match b.iter().position(|&c| c == b':')? {
        1 if b[0].is_ascii_digit() => (u32::from(b[0] - b'0'), 2),
        2 => (two(0)?, 3),
        _ => return None,
    };
    let m = two(rest)?;
    let (s, nano) = match b.len() - rest {
        2 => (0, 0),
        5 if b[rest + 2] == b':' => (two(rest + 3)?, 0),
        n if (7..=15).contains(&n) && b[rest + 2] == b':' && b[rest + 5] == b'.' => {
            let frac = &b[rest + 6..];
            if !frac.iter().all(u8::is_ascii_digit) {
                return None;
            }
            let digits = frac.iter().fold(0u32, |a, d| a * 10 + u32::from(d - b'0'));
            (two(rest + 3)?, digits * 10u32.pow(9 - frac.len() as u32))
        }
        _ => return None,
    };
    if h > 23 || m > 59 || s > 59 {
        return None;
    }
    NaiveTime::from_hms_nano_opt(h, m, s, nano)
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
    let t = half_width(trim_cell(s));
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
    if let Some(parsed) = hms_ascii(time) {
        return Some((date.and_time(parsed), offset));
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

    proptest! {
        /// `trim_cell` is `trim` on any text, white space of every kind at either end included.
        #[test]
        fn trim_cell_is_trim(
            body in "\\PC{0,6}",
            ends in proptest::collection::vec(prop::sample::select(vec![
                " ", "\t", "\n", "\u{85}", "\u{a0}", "\u{1680}", "\u{2000}", "\u{200a}", "\u{2028}",
                "\u{2029}", "\u{202f}", "\u{205f}", "\u{3000}", "张", "a", "é", "\u{1f600}", "\u{e100}", "",
            ]), 0..4),
        ) {
            let (head, tail) = ends.split_at(ends.len() / 2);
            let s = format!("{}{body}{}", head.concat(), tail.concat());
            prop_assert_eq!(trim_cell(&s), s.trim());
        }
    }

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

    /// The direct readers answer exactly as chrono's format strings do, wherever they answer.
    #[test]
    fn direct_date_and_time_readers_agree_with_chrono() {
        for s in ["20240105", "00000101", "20240230", "20241301", "19991231", "2024010", "2024010x", "99991231"] {
            assert_eq!(ymd8(s), NaiveDate::parse_from_str(s, "%Y%m%d").ok(), "{s}");
        }
        let chrono_time = |t: &str| {
            NaiveTime::parse_from_str(t, "%H:%M:%S%.f").or_else(|_| NaiveTime::parse_from_str(t, "%H:%M")).ok()
        };
        for t in [
            "08:30",
            "8:30",
            "08:30:00",
            "23:59:59",
            "00:00:00.5",
            "12:34:56.123456789",
            "12:34:56.000001",
            "24:00",
            "23:60",
            "23:59:60",
            "12:34:56.",
            "12:34:5",
            "1:2",
            "123:00",
            "12:34:56.1234567890",
        ] {
            if let Some(ours) = hms_ascii(t) {
                assert_eq!(Some(ours), chrono_time(t), "{t}");
            }
        }
        // The forms a file usually has are read directly.
        for t in ["08:30", "8:30", "08:30:00", "12:34:56.123456"] {
            assert!(hms_ascii(t).is_some(), "{t}");
        }
    }

    proptest! {
        #[test]
        fn time_readers_agree(h in 0u32..30, m in 0u32..70, s in 0u32..70, f in proptest::option::of("[0-9]{1,10}")) {
            let t = match &f {
                Some(f) => format!("{h:02}:{m:02}:{s:02}.{f}"),
                None => format!("{h}:{m:02}:{s:02}"),
            };
            if let Some(ours) = hms_ascii(&t) {
                prop_assert_eq!(Some(ours), NaiveTime::parse_from_str(&t, "%H:%M:%S%.f").ok(), "{}", t);
            }
        }

        #[test]
        fn eight_digit_dates_agree(y in 0u32..10000, m in 0u32..14, d in 0u32..33) {
            let t = format!("{y:04}{m:02}{d:02}");
            prop_assert_eq!(ymd8(&t), NaiveDate::parse_from_str(&t, "%Y%m%d").ok(), "{}", t);
        }

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
