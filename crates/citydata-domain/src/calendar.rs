//! 工作日 (working days) for the response-time clock: weekends are off, except the make-up
//! working days (调休上班) that Chinese holiday schedules add; public holidays are off.

use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveTime, Utc, Weekday};
use std::collections::BTreeSet;

/// China Standard Time offset, for deciding which calendar day a moment falls on.
const CST_HOURS: i64 = 8;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WorkCalendar {
    pub holidays: BTreeSet<NaiveDate>,
    pub makeup_workdays: BTreeSet<NaiveDate>,
}

impl WorkCalendar {
    pub fn new(
        holidays: impl IntoIterator<Item = NaiveDate>,
        makeup_workdays: impl IntoIterator<Item = NaiveDate>,
    ) -> Self {
        Self { holidays: holidays.into_iter().collect(), makeup_workdays: makeup_workdays.into_iter().collect() }
    }

    pub fn is_workday(&self, d: NaiveDate) -> bool {
        if self.makeup_workdays.contains(&d) {
            return true;
        }
        if self.holidays.contains(&d) {
            return false;
        }
        !matches!(d.weekday(), Weekday::Sat | Weekday::Sun)
    }

    /// The `n`-th working day after `day` (not counting `day` itself).
    pub fn add_workdays(&self, day: NaiveDate, n: u32) -> NaiveDate {
        let mut d = day;
        let mut left = n;
        while left > 0 {
            d += Duration::days(1);
            if self.is_workday(d) {
                left -= 1;
            }
        }
        d
    }

    /// When a request submitted at `at` is due: the end (23:59:59, China time) of the `n`-th
    /// working day after the day it was submitted.
    pub fn due(&self, at: DateTime<Utc>, n: u32) -> DateTime<Utc> {
        let local_day = (at + Duration::hours(CST_HOURS)).date_naive();
        let due_day = self.add_workdays(local_day, n);
        let end = due_day.and_time(NaiveTime::from_hms_opt(23, 59, 59).expect("static time"));
        end.and_utc() - Duration::hours(CST_HOURS)
    }

    /// Working days between two moments (whole days, China time), for response-time statistics.
    pub fn workdays_between(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> u32 {
        let a = (from + Duration::hours(CST_HOURS)).date_naive();
        let b = (to + Duration::hours(CST_HOURS)).date_naive();
        let mut n = 0;
        let mut d = a;
        while d < b {
            d += Duration::days(1);
            if self.is_workday(d) {
                n += 1;
            }
        }
        n
    }

    /// Parse dates written `YYYY-MM-DD` (as in configuration).
    pub fn parse_dates(list: &[String]) -> Result<Vec<NaiveDate>, String> {
        list.iter()
            .map(|s| {
                NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d").map_err(|_| format!("not a date (YYYY-MM-DD): {s}"))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    /// National Day 2025: Oct 1–8 off; Sep 28 (Sunday) and Oct 11 (Saturday) are working days.
    fn cal() -> WorkCalendar {
        WorkCalendar::new(
            ["2025-10-01", "2025-10-02", "2025-10-03", "2025-10-06", "2025-10-07", "2025-10-08"].map(d),
            ["2025-09-28", "2025-10-11"].map(d),
        )
    }

    #[test]
    fn weekends_are_skipped() {
        let c = WorkCalendar::default();
        // Friday 2025-03-07 + 10 working days = Friday 2025-03-21.
        assert_eq!(c.add_workdays(d("2025-03-07"), 10), d("2025-03-21"));
        // Saturday counts from Monday.
        assert_eq!(c.add_workdays(d("2025-03-08"), 1), d("2025-03-10"));
    }

    #[test]
    fn holidays_and_makeup_days() {
        let c = cal();
        assert!(c.is_workday(d("2025-09-28")), "a make-up Sunday");
        assert!(!c.is_workday(d("2025-10-01")), "a holiday");
        assert!(!c.is_workday(d("2025-10-04")), "a Saturday inside the holiday");
        assert!(c.is_workday(d("2025-10-11")), "a make-up Saturday");
        // Submitted Friday Sep 26: working days Sep 28 (Sun), 29, 30, Oct 9, 10, 11 (Sat), 13, 14, 15, 16.
        assert_eq!(c.add_workdays(d("2025-09-26"), 10), d("2025-10-16"));
    }

    #[test]
    fn due_is_the_end_of_the_day_in_china_time() {
        let c = cal();
        // 2025-09-26 20:00 UTC is already Saturday 27th in China.
        let at = d("2025-09-26").and_hms_opt(20, 0, 0).unwrap().and_utc();
        let due = c.due(at, 1);
        assert_eq!(due, d("2025-09-28").and_hms_opt(15, 59, 59).unwrap().and_utc());
        assert_eq!(c.workdays_between(at, due), 1);
    }
}
