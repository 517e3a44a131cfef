//! Benchmark rows of scheduled collection (#18):
//!
//! - `source_incremental`: a department's PostgreSQL table of the 5,000,000-row register (a
//!   scratch database on the bench's PostgreSQL, loaded with `COPY`), pulled once in full by a
//!   `postgres` source, then 100,000 rows changed and the incremental run timed from "run now"
//!   to its end (the window query, the rows as JSON, mapping, validators, the upsert commit).
//!   Anchor: `COPY (SELECT … WHERE updated_at > watermark) TO STDOUT` of the same rows on the
//!   same server. Target: ≤ 2×.
//! - `harvest_10k`: a CKAN harvest of 10,000 datasets from a `package_search` endpoint the bench
//!   serves itself (pages of 1,000 packages shaped like CKAN's), each entry created and
//!   published through the catalog. Target: < 60 s.

use super::{Row, Server, generate};
use anyhow::{Context, Result, bail};
use serde_json::{Value, json};
use sqlx::Connection;
use std::path::Path;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const PG_DEFAULT: &str = "postgresql://citydata:citydata@127.0.0.1:5432/postgres";
const DB: &str = "citydata_bench_source";

async fn ok(r: reqwest::Response, what: &str) -> Result<Value> {
    let status = r.status();
    let v: Value = r.json().await.unwrap_or_default();
    if !status.is_success() {
        bail!("{what}: {status} {v}");
    }
    Ok(v)
}

/// Run the source now and wait for the run's end; (seconds, the run).
async fn run_now(c: &reqwest::Client, base: &str, source: &str) -> Result<(f64, Value)> {
    let t = Instant::now();
    let started = ok(c.post(format!("{base}/api/v1/sources/{source}/run")).send().await?, "run now").await?;
    let run = started["run_id"].as_str().unwrap_or_default().to_string();
    loop {
        let v = ok(c.get(format!("{base}/api/v1/sources/{source}/runs/{run}")).send().await?, "run").await?;
        if matches!(v["state"].as_str(), Some("succeeded" | "failed" | "aborted")) {
            if v["state"] != "succeeded" {
                bail!("the source run ended {}: {}", v["state"], v["error"]);
            }
            return Ok((t.elapsed().as_secs_f64(), v));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

pub(super) async fn rows(
    dir: &Path,
    big: &Path,
    big_rows: u64,
    quick: bool,
    want: &dyn Fn(&str) -> bool,
) -> Result<Vec<Row>> {
    let data = dir.join("sources-data");
    let _ = std::fs::remove_dir_all(&data);
    let (server, _) = Server::start_with(&data, &[("CITYDATA__WEBHOOK_ALLOW_CIDRS", "[\"127.0.0.0/8\"]")]).await?;
    let mut out = Vec::new();
    if want("source_incremental") {
        out.push(match incremental(&server, big, big_rows, quick).await {
            Ok(r) => r,
            Err(e) => {
                eprintln!("bench: source_incremental skipped: {e:#}");
                Row {
                    name: "source_incremental",
                    ours: format!("not measured: {e}"),
                    ours_value: None,
                    anchor: None,
                    lower_is_better: true,
                    target: "≤ 2× COPY",
                    met: None,
                }
            }
        });
    }
    if want("harvest_10k") {
        out.push(harvest(&server, if quick { 300 } else { 10_000 }).await?);
    }
    Ok(out)
}

async fn incremental(server: &Server, big: &Path, big_rows: u64, quick: bool) -> Result<Row> {
    let admin_url = std::env::var("CITYDATA_BENCH_PG_URL").unwrap_or_else(|_| PG_DEFAULT.into());
    let mut admin = sqlx::PgConnection::connect(&admin_url).await.context("no PostgreSQL for the source")?;
    sqlx::raw_sql(&format!("DROP DATABASE IF EXISTS {DB} WITH (FORCE)")).execute(&mut admin).await?;
    sqlx::raw_sql(&format!("CREATE DATABASE {DB}")).execute(&mut admin).await?;
    let mut url = reqwest::Url::parse(&admin_url)?;
    url.set_path(&format!("/{DB}"));
    let db_url = url.to_string();
    let mut db = sqlx::PgConnection::connect(&db_url).await?;
    // The department's table: the register's columns as text, and a change timestamp.
    generate(big, big_rows, false)?;
    let header = {
        use std::io::BufRead;
        let mut line = String::new();
        std::io::BufReader::new(std::fs::File::open(big)?).read_line(&mut line)?;
        line.trim().split(',').map(str::to_string).collect::<Vec<_>>()
    };
    let cols: Vec<String> = header.iter().map(|h| format!("\"{h}\" TEXT")).collect();
    sqlx::raw_sql(&format!(
        "CREATE TABLE people ({}, updated_at TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp())",
        cols.join(", ")
    ))
    .execute(&mut db)
    .await?;
    let list: Vec<String> = header.iter().map(|h| format!("\"{h}\"")).collect();
    let t = Instant::now();
    let mut copy =
        db.copy_in_raw(&format!("COPY people ({}) FROM STDIN WITH (FORMAT csv, HEADER true)", list.join(", "))).await?;
    let mut f = tokio::fs::File::open(big).await?;
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        copy.send(&buf[..n]).await?;
    }
    copy.finish().await?;
    sqlx::raw_sql("CREATE INDEX people_updated_at ON people (updated_at); ANALYZE people").execute(&mut db).await?;
    eprintln!(
        "bench: source_incremental: {big_rows} rows loaded into PostgreSQL in {:.0} s",
        t.elapsed().as_secs_f64()
    );

    // A copy of 人口基础信息's items under gaj, filled by the source.
    let base = &server.base;
    let gaj = server.login("gaj-steward").await?;
    let pop = ok(gaj.get(format!("{base}/api/v1/resources/101%2F000001")).send().await?, "人口基础信息").await?;
    let body = json!({
        "name": "人口基础信息（前置机采集基准）", "abstract": "采集基准", "provider": "gaj",
        "classification": pop["classification"], "format": pop["format"], "items": pop["items"],
        "share": {"type": "none", "conditions": "基准", "method": "api"}, "open": {"type": "none"},
        "update_cycle": "daily", "security_level": "general_3",
    });
    let resource = ok(gaj.post(format!("{base}/api/v1/resources")).json(&body).send().await?, "resource").await?;
    let source = ok(
        gaj.post(format!("{base}/api/v1/sources"))
            .json(&json!({"name": "人口前置机", "kind": "postgres", "resource_id": resource["id"],
                          "connection": {"url": db_url}, "table": "people", "mode": "upsert",
                          "watermark": "updated_at", "max_retries": 0}))
            .send()
            .await?,
        "source",
    )
    .await?;
    let sid = source["id"].as_str().unwrap_or_default().to_string();
    let (full_secs, first) = run_now(&gaj, base, &sid).await?;
    anyhow::ensure!(first["report"]["rows_committed"] == json!(big_rows), "full pull: {first}");
    let watermark = first["report"]["watermark"].as_str().unwrap_or_default().to_string();

    // 100,000 rows change (a new mobile number).
    let changed: u64 = if quick { 100 } else { 100_000 };
    sqlx::raw_sql(&format!(
        "UPDATE people SET \"手机号\" = '139' || lpad((random() * 99999999)::bigint::text, 8, '0'), \
         updated_at = clock_timestamp() WHERE ctid IN (SELECT ctid FROM people ORDER BY random() LIMIT {changed})"
    ))
    .execute(&mut db)
    .await?;
    let (secs, second) = run_now(&gaj, base, &sid).await?;
    anyhow::ensure!(second["report"]["rows_committed"] == json!(changed), "incremental pull: {second}");

    // The anchor: the same rows out of PostgreSQL with COPY.
    let mut copy_t = Vec::new();
    for _ in 0..3 {
        let t = Instant::now();
        let mut s = db
            .copy_out_raw(&format!(
                "COPY (SELECT * FROM people WHERE updated_at > '{watermark}'::timestamptz) TO STDOUT WITH (FORMAT csv)"
            ))
            .await?;
        let mut bytes = 0usize;
        while let Some(chunk) = futures::StreamExt::next(&mut s).await {
            bytes += chunk?.len();
        }
        anyhow::ensure!(bytes > 0, "COPY returned nothing");
        copy_t.push(t.elapsed().as_secs_f64());
    }
    drop(db);
    let _ = sqlx::raw_sql(&format!("DROP DATABASE IF EXISTS {DB} WITH (FORCE)")).execute(&mut admin).await;
    let (_, copy, _) = super::stats(copy_t);
    let pg = sqlx::query_scalar::<_, String>("SHOW server_version").fetch_one(&mut admin).await.unwrap_or_default();
    Ok(Row {
        name: "source_incremental",
        ours: format!(
            "{secs:.2} s for {changed} changed rows of {big_rows} (run now → committed); the first full pull {full_secs:.1} s"
        ),
        ours_value: Some(secs),
        anchor: Some((
            format!("PostgreSQL {}", pg.split_whitespace().next().unwrap_or("")),
            format!("{copy:.2} s (COPY … TO STDOUT of the same rows)"),
            copy,
        )),
        lower_is_better: true,
        target: "≤ 2× COPY",
        met: Some(secs <= copy * 2.0),
    })
}

/// One `package_search` page of the generated catalog: `rows` packages from `start`.
fn ckan_page(total: usize, start: usize, rows: usize) -> Value {
    let results: Vec<Value> = (start..(start + rows).min(total))
        .map(|i| {
            json!({
                "id": format!("bench-{i:06}"), "name": format!("bench-{i:06}"),
                "title": format!("省级基准数据集{i:06}"), "notes": format!("第 {i} 个基准数据集的说明"),
                "metadata_modified": "2026-11-01T08:00:00.000000", "license_id": "cc-by",
                "maintainer": "省大数据中心", "url": format!("https://data.province.example/dataset/bench-{i:06}"),
                "tags": [{"name": "基准"}, {"name": format!("组{}", i % 50)}],
                "organization": {"name": format!("org-{}", i % 40), "title": format!("省厅{}", i % 40)},
                "resources": [{"format": "CSV", "url": format!("https://data.province.example/files/{i}.csv")}],
            })
        })
        .collect();
    json!({"success": true, "result": {"count": total, "results": results}})
}

/// A CKAN `package_search` over `total` generated datasets on a loopback port, answering
/// `start` and `rows` (HTTP/1.1, one request per connection); its address.
async fn serve_ckan(total: usize) -> Result<String> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0u8; 4096];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 65536 {
                    match sock.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let text = String::from_utf8_lossy(&head);
                let target = text.split_whitespace().nth(1).unwrap_or("/");
                let u = reqwest::Url::parse(&format!("http://x{target}")).ok();
                let param = |k: &str| {
                    u.as_ref().and_then(|u| u.query_pairs().find(|(n, _)| n == k).and_then(|(_, v)| v.parse().ok()))
                };
                let body = if target.contains("/api/3/action/package_search") {
                    ckan_page(total, param("start").unwrap_or(0), param("rows").unwrap_or(10).min(1000)).to_string()
                } else {
                    String::from("{\"success\": false}")
                };
                let resp = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = sock.write_all(resp.as_bytes()).await;
                let _ = sock.shutdown().await;
            });
        }
    });
    Ok(format!("http://{addr}"))
}

async fn harvest(server: &Server, total: usize) -> Result<Row> {
    let remote = serve_ckan(total).await?;
    let base = &server.base;
    let admin = server.login("admin").await?;
    let source = ok(
        admin
            .post(format!("{base}/api/v1/sources"))
            .json(&json!({"name": "省级门户（基准）", "kind": "ckan", "url": remote, "department": "dsjzx",
                          "max_retries": 0}))
            .send()
            .await?,
        "harvest source",
    )
    .await?;
    let sid = source["id"].as_str().unwrap_or_default().to_string();
    let (secs, run) = run_now(&admin, base, &sid).await?;
    anyhow::ensure!(run["report"]["objects_created"] == json!(total), "harvest: {run}");
    // A second run of the unchanged catalog writes nothing.
    let (again, run) = run_now(&admin, base, &sid).await?;
    anyhow::ensure!(run["report"]["objects_unchanged"] == json!(total), "second harvest: {run}");
    Ok(Row {
        name: "harvest_10k",
        ours: format!(
            "{secs:.1} s for {total} new catalog entries ({:.0} entries/s, each created and published); unchanged again: {again:.1} s",
            total as f64 / secs
        ),
        ours_value: Some(secs),
        anchor: None,
        lower_is_better: true,
        target: "< 60 s",
        met: Some(secs < 60.0),
    })
}
