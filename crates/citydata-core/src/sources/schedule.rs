//! When a source runs: a five-field cron expression (`minute hour day-of-month month
//! day-of-week`, evaluated by the `croner` crate in the platform's zone) or an interval
//! (`every 30m`, `every 6h`, `every 1d`). A cron that does not parse is refused naming the
//! field that is wrong.

use chrono::{DateTime, Duration, Utc};
use citydata_domain::FieldError;

const FIELDS: [(&str, &str); 5] =
    [("minute", "分钟"), ("hour", "小时"), ("day-of-month", "日"), ("month", "月"), ("day-of-week", "星期")];

/// A parsed schedule.
#[derive(Debug, Clone)]
pub enum Schedule {
    Cron(Box<croner::Cron>),
    Every(Duration),
}

fn refuse(message: String) -> FieldError {
    FieldError::new("schedule", "invalid_schedule", message)
}

fn parse_cron(p: &str) -> Result<croner::Cron, croner::errors::CronError> {
    croner::parser::CronParser::new().parse(p)
}

impl Schedule {
    pub fn parse(text: &str) -> Result<Self, FieldError> {
        let t = text.trim();
        if let Some(rest) = t.strip_prefix("every ") {
            let rest = rest.trim();
            let (n, unit) = rest.split_at(rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(rest.len()));
            let n: i64 = n.parse().unwrap_or(0);
            let d = match unit.trim() {
                "m" | "min" | "minutes" => Duration::minutes(n),
                "h" | "hours" => Duration::hours(n),
                "d" | "days" => Duration::days(n),
                _ => Duration::zero(),
            };
            if n <= 0 || d < Duration::minutes(1) || d > Duration::days(366) {
                return Err(refuse(format!(
                    "schedule“{t}”无效：间隔须写作 every 30m / every 6h / every 1d（1 分钟至 366 天） / schedule {t:?}: an interval is written every 30m, every 6h or every 1d (1 minute to 366 days)"
                )));
            }
            return Ok(Self::Every(d));
        }
        let fields: Vec<&str> = t.split_whitespace().collect();
        if fields.len() != 5 {
            return Err(refuse(format!(
                "schedule“{t}”无效：cron 表达式须有 5 个字段（分钟 小时 日 月 星期），此处有 {} 个 / schedule {t:?}: a cron expression has 5 fields (minute hour day-of-month month day-of-week), this one has {}",
                fields.len(),
                fields.len()
            )));
        }
        // Each field alone, the others `*`: the first that fails is named.
        for (i, (en, zh)) in FIELDS.iter().enumerate() {
            let probe: Vec<&str> = (0..5).map(|j| if j == i { fields[j] } else { "*" }).collect();
            if parse_cron(&probe.join(" ")).is_err() {
                return Err(refuse(format!(
                    "schedule 的{zh}字段“{}”无效 / schedule: the {en} field {:?} is not valid",
                    fields[i], fields[i]
                )));
            }
        }
        let cron =
            parse_cron(t).map_err(|e| refuse(format!("schedule“{t}”无效 / schedule {t:?} is not valid: {e}")))?;
        let s = Self::Cron(Box::new(cron));
        if s.next_after(Utc::now()).is_none() {
            return Err(refuse(format!("schedule“{t}”永远不会触发 / schedule {t:?} never fires")));
        }
        Ok(s)
    }

    /// The first run time strictly after `t`.
    pub fn next_after(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match self {
            Self::Every(d) => Some(t + *d),
            Self::Cron(c) => {
                let local = t.with_timezone(&citydata_domain::cast::local_offset());
                c.find_next_occurrence(&local, false).ok().map(|n| n.with_timezone(&Utc))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crons_and_intervals_parse_and_bad_fields_are_named() {
        assert!(Schedule::parse("0 */6 * * *").is_ok());
        assert!(Schedule::parse("every 6h").is_ok());
        assert!(Schedule::parse("every 15m").is_ok());
        let e = Schedule::parse("0 25 * * *").unwrap_err();
        assert!(e.message.contains("hour"), "{}", e.message);
        let e = Schedule::parse("61 * * * *").unwrap_err();
        assert!(e.message.contains("minute"), "{}", e.message);
        let e = Schedule::parse("* * * 13 *").unwrap_err();
        assert!(e.message.contains("month"), "{}", e.message);
        let e = Schedule::parse("* * * *").unwrap_err();
        assert!(e.message.contains("5 fields"), "{}", e.message);
        assert!(Schedule::parse("every 0h").is_err());
        assert!(Schedule::parse("every often").is_err());
    }

    #[test]
    fn next_run_follows_the_schedule() {
        let t = DateTime::parse_from_rfc3339("2026-01-01T00:10:00+08:00").unwrap().with_timezone(&Utc);
        let next = Schedule::parse("0 */6 * * *").unwrap().next_after(t).unwrap();
        assert_eq!(next.to_rfc3339(), "2025-12-31T22:00:00+00:00");
        assert_eq!(Schedule::parse("every 6h").unwrap().next_after(t).unwrap(), t + Duration::hours(6));
    }
}
