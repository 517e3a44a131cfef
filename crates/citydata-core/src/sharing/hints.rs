//! `jsonPredicateHints` (Delta Sharing's JSON predicates), used only to skip files whose
//! statistics prove that no row can match. Best effort: a hint that does not parse, an
//! operator not understood or a file without statistics keeps the file — the recipient
//! applies its own filter to what it reads, so keeping a file is never wrong.

use serde_json::Value;
use std::cmp::Ordering;

/// `numRecords` of a file's statistics.
pub fn num_records(stats: Option<&str>) -> Option<i64> {
    serde_json::from_str::<Value>(stats?).ok()?.get("numRecords")?.as_i64()
}

/// `false` only when the statistics prove that no row of the file satisfies `hints`.
pub fn may_match(hints: Option<&str>, stats: Option<&str>) -> bool {
    let (Some(h), Some(s)) = (hints, stats) else { return true };
    let (Ok(pred), Ok(stats)) = (serde_json::from_str::<Value>(h), serde_json::from_str::<Value>(s)) else {
        return true;
    };
    eval(&pred, &stats, 0).unwrap_or(true)
}

fn cmp(a: &Value, b: &Value) -> Option<Ordering> {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64()?.partial_cmp(&y.as_f64()?),
        (Value::String(x), Value::String(y)) => Some(x.cmp(y)),
        (Value::Number(x), Value::String(y)) => x.as_f64()?.partial_cmp(&y.parse::<f64>().ok()?),
        (Value::String(x), Value::Number(y)) => x.parse::<f64>().ok()?.partial_cmp(&y.as_f64()?),
        _ => None,
    }
}

/// `Some(false)` when no row can match; `None` when unknown.
fn eval(p: &Value, stats: &Value, depth: usize) -> Option<bool> {
    if depth > 32 {
        return None;
    }
    let op = p.get("op")?.as_str()?;
    let children = p.get("children").and_then(Value::as_array);
    match op {
        "and" => {
            let c = children?;
            Some(!c.iter().any(|x| eval(x, stats, depth + 1) == Some(false)))
        }
        "or" => {
            let c = children?;
            Some(c.iter().any(|x| eval(x, stats, depth + 1) != Some(false)))
        }
        "equal" | "lessThan" | "lessThanOrEqual" | "greaterThan" | "greaterThanOrEqual" => {
            let c = children?;
            let (col, lit) = (c.first()?, c.get(1)?);
            if col.get("op")?.as_str()? != "column" || lit.get("op")?.as_str()? != "literal" {
                return None;
            }
            let name = col.get("name")?.as_str()?;
            let value = lit.get("value")?;
            let min = stats.get("minValues")?.get(name)?;
            let max = stats.get("maxValues")?.get(name)?;
            let (lo, hi) = (cmp(value, min)?, cmp(value, max)?);
            Some(match op {
                "equal" => lo != Ordering::Less && hi != Ordering::Greater,
                // some row < value  <=>  min < value
                "lessThan" => lo == Ordering::Greater,
                "lessThanOrEqual" => lo != Ordering::Less,
                "greaterThan" => hi == Ordering::Less,
                _ => hi != Ordering::Greater,
            })
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STATS: &str = r#"{"numRecords":3,"minValues":{"n":10,"s":"b"},"maxValues":{"n":20,"s":"d"}}"#;

    fn eq(col: &str, v: Value) -> String {
        serde_json::json!({"op":"equal","children":[{"op":"column","name":col,"valueType":"int"},{"op":"literal","value":v,"valueType":"int"}]}).to_string()
    }

    #[test]
    fn skips_only_what_the_statistics_rule_out() {
        assert!(!may_match(Some(&eq("n", 5.into())), Some(STATS)));
        assert!(may_match(Some(&eq("n", 15.into())), Some(STATS)));
        assert!(may_match(Some(&eq("n", "15".into())), Some(STATS)));
        assert!(!may_match(Some(&eq("s", "a".into())), Some(STATS)));
        assert!(may_match(Some(&eq("other", 1.into())), Some(STATS)), "unknown column keeps the file");
        assert!(may_match(Some("not json"), Some(STATS)), "a bad hint is ignored");
        assert!(may_match(Some(&eq("n", 5.into())), None), "no statistics keeps the file");
        let or = format!(r#"{{"op":"or","children":[{},{}]}}"#, eq("n", 5.into()), eq("n", 12.into()));
        assert!(may_match(Some(&or), Some(STATS)));
        let and = format!(r#"{{"op":"and","children":[{},{}]}}"#, eq("n", 5.into()), eq("n", 12.into()));
        assert!(!may_match(Some(&and), Some(STATS)));
        assert_eq!(num_records(Some(STATS)), Some(3));
    }
}
