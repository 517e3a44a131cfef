//! Benchmark rows of data quality (#16): the cost of quality rules and the version's report on
//! the 1,000,000-row register (target: ≤ 1.05× the same ingest without rules), and of a
//! `reference` rule against the 5,000,000-row 人口基础信息 table (target: ≤ 1.5×).

use super::{Row, stats};
use anyhow::{Result, bail};
use serde_json::{Value, json};
use std::path::Path;
use std::time::Instant;

/// Upload `file` into `resource` (replace); seconds.
async fn ingest_into(c: &reqwest::Client, base: &str, resource: &str, file: &Path) -> Result<f64> {
    let f = tokio::fs::File::open(file).await?;
    let body = reqwest::Body::wrap_stream(tokio_util::io::ReaderStream::with_capacity(f, 1 << 20));
    let t = Instant::now();
    let r = c.post(format!("{base}/api/v1/resources/{resource}/data?mode=replace")).body(body).send().await?;
    let status = r.status();
    let v: Value = r.json().await.unwrap_or_default();
    if !status.is_success() {
        bail!("ingest into {resource}: {status} {v}");
    }
    Ok(t.elapsed().as_secs_f64())
}

async fn set_rules(c: &reqwest::Client, base: &str, id: &str, rules: Value) -> Result<()> {
    let r = c.patch(format!("{base}/api/v1/resources/{id}")).json(&json!({ "quality_rules": rules })).send().await?;
    if !r.status().is_success() {
        bail!("setting quality rules: {} {}", r.status(), r.text().await.unwrap_or_default());
    }
    Ok(())
}

async fn timed(c: &reqwest::Client, base: &str, id: &str, file: &Path, runs: usize) -> Result<(f64, f64, f64)> {
    let mut t = Vec::new();
    for _ in 0..runs {
        t.push(ingest_into(c, base, id, file).await?);
    }
    Ok(stats(t))
}

/// Needs 人口基础信息 loaded with the lookup table (the reference target) and `file`, a
/// population register of `rows` rows.
pub(super) async fn rows(gaj: &reqwest::Client, base: &str, file: &Path, rows: u64, runs: usize) -> Result<Vec<Row>> {
    // A copy of 人口基础信息's items under gaj, so the same file goes in with and without rules.
    let pop: Value = gaj.get(format!("{base}/api/v1/resources/101%2F000001")).send().await?.json().await?;
    let body = json!({
        "name": "人口核验（质量基准）", "abstract": "质量规则基准", "provider": "gaj",
        "classification": pop["classification"], "format": pop["format"], "items": pop["items"],
        "share": {"type": "none", "conditions": "基准", "method": "api"}, "open": {"type": "none"},
        "update_cycle": "daily", "security_level": "general_3", "consistency": pop["consistency"],
    });
    let r = gaj.post(format!("{base}/api/v1/resources")).json(&body).send().await?;
    if !r.status().is_success() {
        bail!("creating the benchmark resource: {} {}", r.status(), r.text().await.unwrap_or_default());
    }
    let id = r.json::<Value>().await?["id"].as_str().unwrap_or_default().to_string();
    let (_, base_med, _) = timed(gaj, base, &id, file, runs).await?;
    set_rules(
        gaj,
        base,
        &id,
        json!([
            {"rule": "not_null(xm)"}, {"rule": "regex(xm, .{2,4})"}, {"rule": "enum(xb, 男|女)"},
            {"rule": "length(hjdz, 5, 100)"}, {"rule": "unique(sjh)"}, {"rule": "freshness(gxsj, 36500d)"}
        ]),
    )
    .await?;
    let (min, med, max) = timed(gaj, base, &id, file, runs).await?;
    let mut out = vec![Row {
        name: "quality_rules",
        ours: format!("{med:.2} s (min {min:.2}, max {max:.2}) with 6 rules and the report; {rows} rows"),
        ours_value: Some(med),
        anchor: Some(("same ingest, no rules".into(), format!("{base_med:.2} s"), base_med)),
        lower_is_better: true,
        target: "≤ 1.05× without rules",
        met: Some(med <= base_med * 1.05),
    }];
    set_rules(gaj, base, &id, json!([{"rule": "reference(sfzh, 101/000001, sfzh)"}])).await?;
    let (min, med, max) = timed(gaj, base, &id, file, runs).await?;
    out.push(Row {
        name: "quality_reference",
        ours: format!("{med:.2} s (min {min:.2}, max {max:.2}); reference to the lookup table"),
        ours_value: Some(med),
        anchor: Some(("same ingest, no rules".into(), format!("{base_med:.2} s"), base_med)),
        lower_is_better: true,
        target: "≤ 1.5× without the rule",
        met: Some(med <= base_med * 1.5),
    });
    Ok(out)
}
