//! `verify_batch`: 核验 of 1,000 records (ID numbers sampled from the lookup table) in one
//! `POST /api/v1/resources/101%2F000001/verify` under a verification grant — key lookups
//! batched into one `IN` plan, not scans. Target: p50 ≤ 200 ms on the 5,000,000-row table.

use super::{Row, Server, pct, sample_ids};
use anyhow::Result;
use std::path::Path;
use std::time::Instant;

pub(super) async fn verify_batch(
    server: &Server,
    gaj: &reqwest::Client,
    base: &str,
    table: &Path,
    rows: u64,
    runs: usize,
) -> Result<Row> {
    let r = gaj
        .post(format!("{base}/api/v1/grants"))
        .json(&serde_json::json!({"resource_id": "101/000001", "grantee": {"department": "wjw"}, "kind": "verify",
            "fields": ["身份证号", "姓名"], "purpose": "bench", "daily_quota": 10_000_000, "max_batch": 1000}))
        .send()
        .await?;
    anyhow::ensure!(r.status() == 201, "verification grant: {}", r.text().await?);
    let wjw = server.login("wjw-analyst").await?;
    let ids = sample_ids(table, 1000)?;
    let records: Vec<serde_json::Value> = ids.iter().map(|id| serde_json::json!({"身份证号": id})).collect();
    let body = serde_json::json!({"records": records});
    let url = format!("{base}/api/v1/resources/101%2F000001/verify");
    let mut lat = Vec::new();
    // One warm-up, then the measured runs.
    for i in 0..=runs.max(3) {
        let t = Instant::now();
        let r = wjw.post(&url).json(&body).send().await?;
        anyhow::ensure!(r.status() == 200, "verify: {}", r.text().await?);
        r.bytes().await?;
        if i > 0 {
            lat.push(t.elapsed().as_secs_f64() * 1000.0);
        }
    }
    let p50 = pct(&mut lat, 0.5);
    Ok(Row {
        name: "verify_batch",
        ours: format!("p50 {p50:.0} ms for {} records ({rows} rows)", ids.len()),
        ours_value: Some(p50),
        anchor: None,
        lower_is_better: true,
        target: "p50 ≤ 200 ms (1,000 records, 5,000,000 rows)",
        met: Some(p50 <= 200.0),
    })
}

/// `verify_single`: single-record verifications (one ID number a request) from 16 concurrent
/// clients under one verification grant: requests per second, the per-user second limit and
/// the quotas counted in the database as in production (the limit set high, so it is counted,
/// not hit). Target: ≥ 2,000 req/s on 2 cores.
pub(super) async fn verify_single(
    server: &Server,
    gaj: &reqwest::Client,
    base: &str,
    table: &Path,
    requests: usize,
) -> Result<Row> {
    let r = gaj
        .post(format!("{base}/api/v1/grants"))
        .json(&serde_json::json!({"resource_id": "101/000001", "grantee": {"department": "wjw"}, "kind": "verify",
            "fields": ["身份证号", "姓名"], "purpose": "bench", "daily_quota": 10_000_000, "max_batch": 1000}))
        .send()
        .await?;
    anyhow::ensure!(r.status() == 201, "verification grant: {}", r.text().await?);
    let wjw = server.login("wjw-analyst").await?;
    let ids = std::sync::Arc::new(sample_ids(table, 1000)?);
    let url = std::sync::Arc::new(format!("{base}/api/v1/resources/101%2F000001/verify"));
    const CLIENTS: usize = 16;
    let per_client = requests.div_ceil(CLIENTS);
    // Warm-up: one request.
    let r = wjw.post(url.as_str()).json(&serde_json::json!({"records": [{"身份证号": ids[0]}]})).send().await?;
    anyhow::ensure!(r.status() == 200, "verify: {}", r.text().await?);
    let t = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for c in 0..CLIENTS {
        let (wjw, ids, url) = (wjw.clone(), ids.clone(), url.clone());
        tasks.spawn(async move {
            for i in 0..per_client {
                let id = &ids[(c * per_client + i) % ids.len()];
                let r = wjw.post(url.as_str()).json(&serde_json::json!({"records": [{"身份证号": id}]})).send().await?;
                anyhow::ensure!(r.status() == 200, "verify: {}", r.text().await?);
                r.bytes().await?;
            }
            anyhow::Ok(())
        });
    }
    while let Some(done) = tasks.join_next().await {
        done??;
    }
    let secs = t.elapsed().as_secs_f64();
    let rate = (per_client * CLIENTS) as f64 / secs;
    Ok(Row {
        name: "verify_single",
        ours: format!("{rate:.0} req/s ({} requests, {CLIENTS} clients)", per_client * CLIENTS),
        ours_value: Some(rate),
        anchor: None,
        lower_is_better: false,
        target: "≥ 2,000 req/s (2 cores)",
        met: Some(rate >= 2000.0),
    })
}
