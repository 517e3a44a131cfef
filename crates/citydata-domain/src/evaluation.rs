//! 评估考核 (evaluation): the periods a department is assessed over, the indicators, the
//! rules the big-data center sets (targets and weights) and how a score follows from them.
//! No IO: the figures come from `citydata-core`, which reads them from the store.

use crate::error::{FieldError, ValidationErrors};
use chrono::{DateTime, Datelike, Duration, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// China Standard Time: a period's days are the city's days.
const CST_HOURS: i64 = 8;

/// How long a period is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PeriodKind {
    Month,
    Quarter,
    Year,
}

/// A month (`2026-11`), a quarter (`2026-Q4`) or a year (`2026`), in China time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Period {
    kind: PeriodKind,
    year: i32,
    /// The month (1–12) or the quarter (1–4); 0 for a year.
    n: u32,
}

impl Period {
    /// Parse `YYYY-MM`, `YYYY-Qn` or `YYYY`; the error names the field `period`.
    pub fn parse(s: &str) -> Result<Period, FieldError> {
        let bad = || {
            FieldError::new(
                "period",
                "invalid_period",
                format!("period 须为 YYYY-MM、YYYY-Qn 或 YYYY，收到 \"{s}\" / period must be YYYY-MM, YYYY-Qn or YYYY"),
            )
        };
        let s = s.trim();
        let digits = |t: &str| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit());
        let (y, rest) = s.split_once('-').map_or((s, None), |(a, b)| (a, Some(b)));
        if y.len() != 4 || !digits(y) {
            return Err(bad());
        }
        let year: i32 = y.parse().map_err(|_| bad())?;
        if !(2000..=2999).contains(&year) {
            return Err(bad());
        }
        let p = match rest {
            None => Period { kind: PeriodKind::Year, year, n: 0 },
            Some(q) if q.len() == 2 && (q.starts_with('Q') || q.starts_with('q')) => {
                let n: u32 = q[1..].parse().map_err(|_| bad())?;
                if !(1..=4).contains(&n) || !digits(&q[1..]) {
                    return Err(bad());
                }
                Period { kind: PeriodKind::Quarter, year, n }
            }
            Some(m) if m.len() == 2 && digits(m) => {
                let n: u32 = m.parse().map_err(|_| bad())?;
                if !(1..=12).contains(&n) {
                    return Err(bad());
                }
                Period { kind: PeriodKind::Month, year, n }
            }
            Some(_) => return Err(bad()),
        };
        Ok(p)
    }

    /// Parse and refuse a period that has not begun at `now` (field `period`).
    pub fn parse_at(s: &str, now: DateTime<Utc>) -> Result<Period, FieldError> {
        let p = Period::parse(s)?;
        if p.start() > now {
            return Err(FieldError::new(
                "period",
                "future_period",
                format!("period {p} 尚未开始 / period {p} has not begun"),
            ));
        }
        Ok(p)
    }

    /// The quarter that contains `at`.
    pub fn quarter_of(at: DateTime<Utc>) -> Period {
        let d = (at + Duration::hours(CST_HOURS)).date_naive();
        Period { kind: PeriodKind::Quarter, year: d.year(), n: (d.month() - 1) / 3 + 1 }
    }

    pub fn kind(&self) -> PeriodKind {
        self.kind
    }

    fn first_month(&self) -> u32 {
        match self.kind {
            PeriodKind::Month => self.n,
            PeriodKind::Quarter => (self.n - 1) * 3 + 1,
            PeriodKind::Year => 1,
        }
    }

    fn months(&self) -> u32 {
        match self.kind {
            PeriodKind::Month => 1,
            PeriodKind::Quarter => 3,
            PeriodKind::Year => 12,
        }
    }

    fn instant(year: i32, month0: u32) -> DateTime<Utc> {
        let (y, m) = (year + (month0 / 12) as i32, month0 % 12 + 1);
        let day = NaiveDate::from_ymd_opt(y, m, 1).expect("a valid first of the month");
        day.and_hms_opt(0, 0, 0).expect("midnight").and_utc() - Duration::hours(CST_HOURS)
    }

    /// The first instant of the period (00:00 China time on its first day).
    pub fn start(&self) -> DateTime<Utc> {
        Period::instant(self.year, self.first_month() - 1)
    }

    /// The first instant after the period.
    pub fn end(&self) -> DateTime<Utc> {
        Period::instant(self.year, self.first_month() - 1 + self.months())
    }

    /// `true` once the period is over at `now`.
    pub fn is_closed(&self, now: DateTime<Utc>) -> bool {
        self.end() <= now
    }

    /// The period of the same length just before this one.
    pub fn previous(&self) -> Period {
        match self.kind {
            PeriodKind::Year => Period { year: self.year - 1, ..*self },
            PeriodKind::Quarter if self.n == 1 => Period { year: self.year - 1, n: 4, ..*self },
            PeriodKind::Month if self.n == 1 => Period { year: self.year - 1, n: 12, ..*self },
            _ => Period { n: self.n - 1, ..*self },
        }
    }
}

impl std::fmt::Display for Period {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.kind {
            PeriodKind::Month => write!(f, "{}-{:02}", self.year, self.n),
            PeriodKind::Quarter => write!(f, "{}-Q{}", self.year, self.n),
            PeriodKind::Year => write!(f, "{}", self.year),
        }
    }
}

/// What an indicator's value is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Unit {
    /// A share 0–1.
    Rate,
    Count,
    /// A score 0–100.
    Score,
    /// Working days (lower is better).
    Workdays,
}

/// One indicator: its code (the key in the API), titles, unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Indicator {
    pub code: &'static str,
    pub zh: &'static str,
    pub en: &'static str,
    pub unit: Unit,
}

impl Indicator {
    /// Lower values are better (response and closing times).
    pub fn lower_is_better(&self) -> bool {
        self.unit == Unit::Workdays
    }
}

macro_rules! indicators {
    ($($code:literal, $zh:literal, $en:literal, $unit:ident;)*) => {
        /// Every indicator, in the order pages and sheets show them.
        pub const INDICATORS: &[Indicator] = &[$(Indicator { code: $code, zh: $zh, en: $en, unit: Unit::$unit }),*];
    };
}

indicators! {
    "catalog_resources", "编目资源数", "Resources cataloged", Count;
    "catalog_completeness", "目录要素完整率", "Catalog elements filled", Rate;
    "data_attached_rate", "数据挂接率", "Resources with data", Rate;
    "timeliness_rate", "数据更新及时率", "Updated within cycle", Rate;
    "declared_share_rate", "共享目录率（申报）", "Declared share rate", Rate;
    "effective_share_rate", "实际共享率", "Effective share rate", Rate;
    "open_rate", "开放率", "Open rate", Rate;
    "public_reads", "社会公众访问量", "Public reads", Count;
    "quality_score", "数据质量得分", "Quality score", Score;
    "tickets_received", "收到纠错数", "Correction tickets received", Count;
    "tickets_closed_in_sla_rate", "纠错按时办结率", "Tickets answered within SLA", Rate;
    "ticket_median_days", "纠错办结时长中位数（工作日）", "Median days to answer a ticket", Workdays;
    "requests_received", "收到共享申请数", "Sharing requests received", Count;
    "requests_in_sla_rate", "申请按时答复率", "Requests answered within SLA", Rate;
    "response_median_days", "答复时长中位数（工作日）", "Median response (working days)", Workdays;
    "response_p90_days", "答复时长 P90（工作日）", "P90 response (working days)", Workdays;
    "consuming_departments", "使用部门数", "Consuming departments", Count;
    "public_users", "公众用户数", "Public users", Count;
    "reads", "数据调用次数", "Reads", Count;
    "downloads", "下载次数", "Downloads", Count;
    "applications", "支撑应用数", "Applications", Count;
}

/// The indicator named `code`.
pub fn indicator(code: &str) -> Option<&'static Indicator> {
    INDICATORS.iter().find(|i| i.code == code)
}

/// The score 0–100 of one value against its target: the share of the target reached (capped
/// at 100); for working days, full marks at or under the target and `target / value` above.
pub fn indicator_score(ind: &Indicator, value: f64, target: f64) -> f64 {
    let s = if ind.lower_is_better() {
        if value <= target { 1.0 } else { target / value }
    } else if target <= 0.0 {
        1.0
    } else {
        (value / target).min(1.0)
    };
    round2(s * 100.0)
}

/// Round to two decimals (scores and rates are shown and compared at this precision).
pub fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// A department's score: the weighted mean of its indicator scores over the weighted
/// indicators that have a value (an indicator with nothing to measure, e.g. no request
/// received, leaves the others' weights to share its place); `None` when none has one.
pub fn department_score(rules: &Rules, scores: &BTreeMap<String, Option<f64>>) -> Option<f64> {
    let (mut sum, mut weights) = (0.0, 0.0);
    for (code, w) in &rules.weights {
        if *w > 0.0
            && let Some(Some(s)) = scores.get(code)
        {
            sum += w * s;
            weights += w;
        }
    }
    (weights > 0.0).then(|| round2(sum / weights))
}

/// The rules a period is scored with: weights (summing to 100) and targets per indicator, and
/// the plan's city-wide targets (规划目标) the dashboard shows as progress.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Rules {
    pub weights: BTreeMap<String, f64>,
    pub targets: BTreeMap<String, f64>,
    #[serde(default)]
    pub plan: BTreeMap<String, f64>,
}

impl Rules {
    /// The rules before the center sets any (`rules_version` 0).
    pub fn defaults() -> Rules {
        let map = |v: &[(&str, f64)]| v.iter().map(|(k, x)| (k.to_string(), *x)).collect();
        Rules {
            weights: map(&[
                ("data_attached_rate", 10.0),
                ("timeliness_rate", 15.0),
                ("declared_share_rate", 10.0),
                ("effective_share_rate", 20.0),
                ("open_rate", 10.0),
                ("quality_score", 15.0),
                ("requests_in_sla_rate", 10.0),
                ("tickets_closed_in_sla_rate", 10.0),
            ]),
            targets: map(&[
                ("catalog_completeness", 1.0),
                ("data_attached_rate", 1.0),
                ("timeliness_rate", 1.0),
                ("declared_share_rate", 1.0),
                ("effective_share_rate", 1.0),
                ("open_rate", 0.5),
                ("quality_score", 90.0),
                ("requests_in_sla_rate", 1.0),
                ("tickets_closed_in_sla_rate", 1.0),
                ("response_median_days", 3.0),
                ("ticket_median_days", 5.0),
            ]),
            plan: map(&[
                ("effective_share_rate", 1.0),
                ("declared_share_rate", 1.0),
                ("data_attached_rate", 1.0),
                ("applications", 20.0),
                ("quality_score", 90.0),
            ]),
        }
    }

    /// Check rules as the center sends them: every key a known indicator (`weights.x`,
    /// `targets.x`, `plan.x`), weights ≥ 0 summing to 100 (`weights`), every weighted indicator
    /// with a positive target, every number finite.
    pub fn parse(r: Rules) -> Result<Rules, ValidationErrors> {
        let mut errs = ValidationErrors::new();
        for (section, map) in [("weights", &r.weights), ("targets", &r.targets), ("plan", &r.plan)] {
            for (k, v) in map {
                let field = format!("{section}.{k}");
                if indicator(k).is_none() {
                    errs.push(FieldError::new(
                        field,
                        "unknown_indicator",
                        format!("未知指标 \"{k}\" / unknown indicator \"{k}\""),
                    ));
                } else if !v.is_finite() || *v < 0.0 || (section != "weights" && *v == 0.0) {
                    errs.push(FieldError::new(field, "out_of_range", "须为正数 / must be a positive number"));
                }
            }
        }
        let sum: f64 = r.weights.values().filter(|v| v.is_finite()).sum();
        if (sum - 100.0).abs() > 1e-9 {
            errs.push(FieldError::new(
                "weights",
                "weights_sum",
                format!("权重之和须为 100，现为 {sum} / weights must sum to 100, not {sum}"),
            ));
        }
        for (k, w) in &r.weights {
            if *w > 0.0 && indicator(k).is_some() && !r.targets.contains_key(k) {
                errs.push(FieldError::new(
                    format!("targets.{k}"),
                    "required",
                    format!("有权重的指标须有目标值：{k} / a weighted indicator needs a target: {k}"),
                ));
            }
        }
        errs.into_result().map(|()| r)
    }
}

/// Nearest-rank percentile of sorted values (the same rule as the response-time statistics).
pub fn percentile<T: Copy>(sorted: &[T], p: f64) -> Option<T> {
    if sorted.is_empty() {
        return None;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted.get(i).copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn periods_parse_and_bound_in_china_time() {
        let q = Period::parse("2026-Q4").unwrap();
        assert_eq!(q.to_string(), "2026-Q4");
        assert_eq!(q.start(), at("2026-09-30T16:00:00Z"));
        assert_eq!(q.end(), at("2026-12-31T16:00:00Z"));
        assert_eq!(q.previous().to_string(), "2026-Q3");
        assert_eq!(Period::parse("2026-Q1").unwrap().previous().to_string(), "2025-Q4");
        let m = Period::parse("2026-01").unwrap();
        assert_eq!(m.previous().to_string(), "2025-12");
        assert_eq!(m.end(), at("2026-01-31T16:00:00Z"));
        let y = Period::parse("2026").unwrap();
        assert_eq!((y.start(), y.end()), (at("2025-12-31T16:00:00Z"), at("2026-12-31T16:00:00Z")));
        assert_eq!(Period::parse("2026-12").unwrap().end(), y.end());
        for bad in
            ["", "2026-Q5", "2026-Q0", "2026-13", "2026-00", "26-Q1", "2026-1", "2026Q1", "abcd", "2026-Qx", "1999"]
        {
            assert_eq!(Period::parse(bad).unwrap_err().field, "period", "{bad}");
        }
        let now = at("2026-12-03T12:00:00Z");
        assert!(Period::parse_at("2026-Q4", now).is_ok());
        assert_eq!(Period::parse_at("2027-Q1", now).unwrap_err().code, "future_period");
        assert_eq!(Period::quarter_of(at("2026-09-30T16:30:00Z")).to_string(), "2026-Q4");
        assert!(Period::parse("2026-Q3").unwrap().is_closed(now));
        assert!(!q.is_closed(now));
    }

    #[test]
    fn rules_refuse_bad_weights_and_unknown_indicators() {
        assert!(Rules::parse(Rules::defaults()).is_ok());
        let mut r = Rules::defaults();
        r.weights.insert("open_rate".into(), 11.0);
        let e = Rules::parse(r).unwrap_err();
        assert_eq!(e.0[0].field, "weights");
        let mut r = Rules::defaults();
        r.targets.insert("popularity".into(), 1.0);
        assert_eq!(Rules::parse(r).unwrap_err().0[0].field, "targets.popularity");
        let mut r = Rules::defaults();
        r.targets.remove("open_rate");
        assert_eq!(Rules::parse(r).unwrap_err().0[0].field, "targets.open_rate");
    }

    #[test]
    fn scores_follow_targets_and_weights() {
        let share = indicator("effective_share_rate").unwrap();
        assert_eq!(indicator_score(share, 0.5, 1.0), 50.0);
        assert_eq!(indicator_score(share, 1.5, 1.0), 100.0);
        let days = indicator("response_median_days").unwrap();
        assert_eq!(indicator_score(days, 2.0, 3.0), 100.0);
        assert_eq!(indicator_score(days, 6.0, 3.0), 50.0);
        let rules = Rules {
            weights: [("open_rate".to_string(), 60.0), ("quality_score".to_string(), 40.0)].into(),
            targets: Default::default(),
            plan: Default::default(),
        };
        let s = |a: Option<f64>, b: Option<f64>| {
            department_score(&rules, &[("open_rate".to_string(), a), ("quality_score".to_string(), b)].into())
        };
        assert_eq!(s(Some(50.0), Some(100.0)), Some(70.0));
        assert_eq!(s(Some(50.0), None), Some(50.0));
        assert_eq!(s(None, None), None);
        assert_eq!(percentile(&[1, 2, 3, 4], 0.5), Some(3));
        assert_eq!(percentile(&[1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 0.9), Some(9));
    }
}
