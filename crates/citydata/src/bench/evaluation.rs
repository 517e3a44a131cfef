//! `evaluation_quarter`: 评估考核 of one closed quarter for 100 departments over 10,000,000
//! audit entries (#17; target: under 10 s), on the default SQLite store.
//!
//! Departments and their resources are made through the API as an administrator would. The
//! audit entries are then written straight into the store while the server is stopped (one
//! `INSERT … SELECT` over a generated sequence: appending 10,000,000 entries one by one through
//! the chain would take the bench hours and measure the append, not the evaluation). The
//! generated entries carry the columns the evaluation reads (time, actor, department, action,
//! target, outcome) but no chain hashes: `citydata audit verify` reports them as a break, which
//! is right — they were not appended. The head is moved past them so the server's own appends
//! continue after them. The figure is `GET /api/v1/evaluation?period=` as the platform admin:
//! the quarter and the previous one (for the change), every indicator, scores and ranks.

use super::{Row, Server, stats};
use anyhow::{Context, Result, bail};
use chrono::Utc;
use citydata_domain::evaluation::Period;
use serde_json::{Value, json};
use sqlx::Connection;
use std::path::Path;
use std::time::Instant;

pub(super) struct Sizes {
    pub departments: usize,
    pub resources_per_department: usize,
    pub entries: i64,
}

impl Sizes {
    pub fn new(quick: bool) -> Self {
        if quick {
            Sizes { departments: 5, resources_per_department: 2, entries: 20_000 }
        } else {
            Sizes { departments: 100, resources_per_department: 3, entries: 10_000_000 }
        }
    }
}

async fn ok(r: reqwest::Response, what: &str) -> Result<Value> {
    let status = r.status();
    let v: Value = r.json().await.unwrap_or_default();
    if !status.is_success() {
        bail!("{what}: {status} {v}");
    }
    Ok(v)
}

/// The departments and resources, through the API.
async fn catalog(server: &Server, sizes: &Sizes) -> Result<()> {
    let base = &server.base;
    let admin = server.login("admin").await?;
    let model = ok(admin.get(format!("{base}/api/v1/resources/102%2F000001")).send().await?, "model resource").await?;
    for d in 0..sizes.departments {
        let code = format!("bench-{d:03}");
        let r = admin
            .post(format!("{base}/api/v1/departments"))
            .json(&json!({"code": code, "name": format!("基准部门{d:03}"), "region_code": "321200", "level": "city"}))
            .send()
            .await?;
        ok(r, "creating a department").await?;
        for k in 0..sizes.resources_per_department {
            let body = json!({
                "name": format!("基准资源{d:03}-{k}"), "abstract": "评估基准", "provider": code,
                "classification": model["classification"], "format": model["format"], "items": model["items"],
                "share": model["share"], "open": model["open"], "update_cycle": model["update_cycle"],
                "security_level": model["security_level"],
            });
            let r = admin.post(format!("{base}/api/v1/resources")).json(&body).send().await?;
            ok(r, "creating a resource").await?;
        }
    }
    Ok(())
}

/// `entries` audit entries spread evenly over `period`: 80% reads (the four read actions) by
/// the departments in turn and, one in ten, by members of the public; the rest sign-ins; one in
/// fifty refused.
async fn seed_audit(db: &Path, period: &Period, entries: i64) -> Result<()> {
    let url = format!("sqlite://{}", db.display());
    let mut c = sqlx::SqliteConnection::connect(&url).await.context("open the bench's SQLite store")?;
    for s in [
        "CREATE TEMP TABLE bench_codes (n INTEGER PRIMARY KEY, code TEXT NOT NULL)",
        "INSERT INTO bench_codes (n, code) SELECT row_number() OVER (ORDER BY code) - 1, code FROM resources",
        "CREATE TEMP TABLE bench_depts (n INTEGER PRIMARY KEY, code TEXT NOT NULL)",
        "INSERT INTO bench_depts (n, code) SELECT row_number() OVER (ORDER BY code) - 1, code FROM departments",
    ] {
        sqlx::query(s).execute(&mut c).await?;
    }
    let resources: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM bench_codes").fetch_one(&mut c).await?;
    let departments: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM bench_depts").fetch_one(&mut c).await?;
    let first: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(seq), 0) + 1 FROM audit_log").fetch_one(&mut c).await?;
    let start = period.start().timestamp_micros();
    let step = (period.end().timestamp_micros() - start) / entries.max(1);
    let mut tx = c.begin().await?;
    sqlx::query(
        "WITH RECURSIVE s(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM s WHERE i + 1 < $1) \
         INSERT INTO audit_log (seq, at, actor, department, action, target, outcome, request_id, client, details, \
         prev_hash, hash) \
         SELECT $2 + i, $3 + i * $4, 'bench-user-' || (i % 5000), CASE WHEN i % 10 = 0 THEN NULL ELSE d.code END, \
         CASE i % 5 WHEN 0 THEN 'data.read_rows' WHEN 1 THEN 'data.export' WHEN 2 THEN 'data.aggregate' \
         WHEN 3 THEN 'data.read_changes' ELSE 'auth.login' END, 'resource:' || c.code, \
         CASE WHEN i % 50 = 0 THEN 'denied' ELSE 'success' END, NULL, NULL, '{}', 'bench', 'bench' \
         FROM s JOIN bench_codes c ON c.n = (i * 7919) % $5 JOIN bench_depts d ON d.n = (i / 7) % $6",
    )
    .bind(entries)
    .bind(first)
    .bind(start)
    .bind(step)
    .bind(resources)
    .bind(departments)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "INSERT INTO audit_head (id, seq, hash) VALUES (1, $1, 'bench') \
         ON CONFLICT (id) DO UPDATE SET seq = excluded.seq, hash = excluded.hash",
    )
    .bind(first + entries - 1)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    sqlx::query("ANALYZE").execute(&mut c).await?;
    Ok(())
}

pub(super) async fn row(dir: &Path, quick: bool, runs: usize) -> Result<Row> {
    let sizes = Sizes::new(quick);
    let data = dir.join("evaluation-data");
    let _ = std::fs::remove_dir_all(&data);
    // The last quarter that is over: its figures no longer move.
    let period = Period::quarter_of(Utc::now()).previous();
    {
        let (server, _) = Server::start(&data).await?;
        catalog(&server, &sizes).await?;
    }
    let t = Instant::now();
    seed_audit(&data.join("citydata.db"), &period, sizes.entries).await?;
    eprintln!("bench: evaluation: {} audit entries written in {:.0} s", sizes.entries, t.elapsed().as_secs_f64());
    let (server, _) = Server::start(&data).await?;
    let admin = server.login("admin").await?;
    let url = format!("{}/api/v1/evaluation?period={period}", server.base);
    let mut t = Vec::new();
    let mut departments = 0;
    let mut flows = 0;
    for _ in 0..runs.max(1) {
        let s = Instant::now();
        let v = ok(admin.get(&url).send().await?, "evaluation").await?;
        t.push(s.elapsed().as_secs_f64());
        departments = v["departments"].as_array().map_or(0, Vec::len);
        flows = v["city"]["flows"].as_array().map_or(0, Vec::len);
    }
    anyhow::ensure!(departments > sizes.departments, "the evaluation listed {departments} departments");
    // Every department read every other's data in the generated entries.
    anyhow::ensure!(flows >= sizes.departments, "the evaluation saw {flows} flows between departments");
    let (min, med, max) = stats(t);
    Ok(Row {
        name: "evaluation_quarter",
        ours: format!(
            "{med:.2} s (min {min:.2}, max {max:.2}); {departments} departments, {} audit entries in {period}, {flows} flows",
            sizes.entries
        ),
        ours_value: Some(med),
        anchor: None,
        lower_is_better: true,
        target: "< 10 s",
        met: Some(med < 10.0),
    })
}
