//! Spatial rows (issue #24):
//! - `geo_ingest`: a CSV of points in 经度/纬度 columns written in GCJ-02, ingested into a
//!   `point` item declared `crs:gcj02` (parsed, validated inside China, converted to CGCS2000,
//!   stored as WKB) against the same file ingested as two plain decimal items. Target: within
//!   1.2× the plain ingest.
//! - `geo_within_bbox`: `GET …/rows?filter=within(wz, bbox(…))&limit=100` on the points
//!   table, p50 through HTTP. Target: < 50 ms on 5,000,000 points. Anchor: DuckDB with plain
//!   range filters on the same longitude/latitude (its spatial extension is not installed
//!   offline).

use super::{Row, pct, stats};
use anyhow::{Result, ensure};
use serde_json::{Value, json};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// `n` points around 泰州 as GCJ-02 text, deterministic.
fn generate(path: &Path, n: u64) -> Result<()> {
    if std::fs::metadata(path).is_ok_and(|m| m.len() > 0) {
        return Ok(());
    }
    let mut out = BufWriter::with_capacity(1 << 20, std::fs::File::create(path)?);
    writeln!(out, "编号,经度,纬度")?;
    let mut s: u64 = 0x9E37_79B9_7F4A_7C15;
    for i in 0..n {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        let x = 119.4 + (s % 1_000_000) as f64 / 1_000_000.0 * 1.1;
        let y = 31.95 + ((s >> 20) % 1_000_000) as f64 / 1_000_000.0 * 1.0;
        let (gx, gy) = citydata_domain::crs::wgs84_to_gcj02(x, y);
        writeln!(out, "P{i:08},{gx:.7},{gy:.7}")?;
    }
    out.flush()?;
    Ok(())
}

async fn create(c: &reqwest::Client, base: &str, name: &str, spatial: bool) -> Result<String> {
    let items = if spatial {
        json!([{"name": "bh", "title": "编号", "key": true},
               {"name": "wz", "title": "位置", "data_type": "point", "validator": "crs:gcj02"}])
    } else {
        json!([{"name": "bh", "title": "编号", "key": true},
               {"name": "jd", "title": "经度", "data_type": "decimal"},
               {"name": "wd", "title": "纬度", "data_type": "decimal"}])
    };
    let r = c
        .post(format!("{base}/api/v1/resources"))
        .json(&json!({"name": name, "abstract": "bench", "provider": "gaj",
            "classification": {"class": "thematic", "theme": "environment"}, "format": {"category": "database"},
            "items": items, "share": {"type": "unconditional"}, "open": {"type": "none", "conditions": "bench"},
            "update_cycle": "daily"}))
        .send()
        .await?;
    ensure!(r.status() == 201, "create {name}: {}", r.text().await?);
    let v: Value = r.json().await?;
    let code = v["code"].as_str().unwrap_or_default().replace('/', "%2F");
    let p = c.post(format!("{base}/api/v1/resources/{code}/publish")).send().await?;
    ensure!(p.status() == 200, "publish {name}: {}", p.text().await?);
    Ok(code)
}

async fn ingest(c: &reqwest::Client, base: &str, code: &str, file: &Path) -> Result<(f64, u64)> {
    let f = tokio::fs::File::open(file).await?;
    let body = reqwest::Body::wrap_stream(tokio_util::io::ReaderStream::with_capacity(f, 1 << 20));
    let t = Instant::now();
    let r = c.post(format!("{base}/api/v1/resources/{code}/data?mode=replace")).body(body).send().await?;
    let status = r.status();
    let v: Value = r.json().await.unwrap_or_default();
    ensure!(status.is_success(), "ingest {}: {status} {v}", file.display());
    Ok((t.elapsed().as_secs_f64(), v["report"]["rows_committed"].as_u64().unwrap_or(0)))
}

const BBOX: (f64, f64, f64, f64) = (119.90, 32.40, 119.95, 32.45);
/// A box of about 100 m a side: a handful of the 5,000,000 points, so LIMIT 100 never stops
/// the scan early — the case bounding-box file skipping is for.
const SPARSE: (f64, f64, f64, f64) = (119.900, 32.400, 119.901, 32.401);

/// DuckDB's median time (ms) for the same box as plain range filters, `None` without DuckDB.
fn duckdb(py: &Path, csv: &Path, runs: usize, b: (f64, f64, f64, f64)) -> Option<f64> {
    let script = format!(
        "import duckdb, sys, time, json\ncon = duckdb.connect()\ncon.execute(\"CREATE TABLE p AS SELECT * FROM read_csv_auto('{}')\")\nts = []\nfor _ in range({}):\n    t = time.perf_counter()\n    con.execute('SELECT * FROM p WHERE \"经度\" BETWEEN {} AND {} AND \"纬度\" BETWEEN {} AND {} LIMIT 100').fetchall()\n    ts.append((time.perf_counter() - t) * 1000)\nprint(json.dumps(ts))\n",
        csv.display(),
        runs.max(5),
        b.0,
        b.2,
        b.1,
        b.3
    );
    let out = std::process::Command::new(py).args(["-c", &script]).output().ok()?;
    let v: Vec<f64> = serde_json::from_slice(out.stdout.trim_ascii()).ok()?;
    (!v.is_empty()).then(|| stats(v).1)
}

pub(super) async fn rows(
    gaj: &reqwest::Client,
    base: &str,
    dir: &Path,
    ingest_rows: u64,
    lookup_rows: u64,
    runs: usize,
    py: Option<PathBuf>,
) -> Result<Vec<Row>> {
    let small = dir.join(format!("points-{ingest_rows}.csv"));
    let big = dir.join(format!("points-{lookup_rows}.csv"));
    generate(&small, ingest_rows)?;
    generate(&big, lookup_rows)?;
    let spatial = create(gaj, base, "基准点位（空间）", true).await?;
    let plain = create(gaj, base, "基准点位（数值）", false).await?;
    let (mut ts, mut tp) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        let (s, n) = ingest(gaj, base, &spatial, &small).await?;
        ensure!(n == ingest_rows, "spatial ingest committed {n} of {ingest_rows}");
        ts.push(s);
        let (s, n) = ingest(gaj, base, &plain, &small).await?;
        ensure!(n == ingest_rows, "plain ingest committed {n} of {ingest_rows}");
        tp.push(s);
    }
    let (_, s_med, _) = stats(ts);
    let (_, p_med, _) = stats(tp);
    let ratio = s_med / p_med;
    let mut out = vec![Row {
        name: "geo_ingest",
        ours: format!(
            "{s_med:.2} s for {ingest_rows} GCJ-02 points → CGCS2000 WKB ({:.0} rows/s); plain decimals {p_med:.2} s; ratio {ratio:.2}",
            ingest_rows as f64 / s_med
        ),
        ours_value: Some(s_med),
        anchor: None,
        lower_is_better: true,
        target: "≤ 1.2× the plain ingest",
        met: Some(ratio <= 1.2),
    }];
    let (_, n) = ingest(gaj, base, &spatial, &big).await?;
    ensure!(n == lookup_rows, "committed {n} of {lookup_rows}");
    for (name, b, what) in [("geo_within_bbox", BBOX, "100 rows"), ("geo_within_sparse", SPARSE, "a ~100 m box")] {
        let filter = format!("within(wz, bbox({}, {}, {}, {}))", b.0, b.1, b.2, b.3);
        let url = reqwest::Url::parse_with_params(
            &format!("{base}/api/v1/resources/{spatial}/rows"),
            &[("limit", "100"), ("filter", &filter)],
        )?;
        let mut lat = Vec::new();
        let mut found = 0;
        for i in 0..=runs.max(5) {
            let t = Instant::now();
            let r = gaj.get(url.clone()).send().await?;
            ensure!(r.status() == 200, "within: {}", r.text().await?);
            let v: serde_json::Value = r.json().await?;
            found = v["rows"].as_array().map(Vec::len).unwrap_or(0);
            if i > 0 {
                lat.push(t.elapsed().as_secs_f64() * 1000.0);
            }
        }
        let p50 = pct(&mut lat, 0.5);
        let anchor = py.as_deref().and_then(|p| duckdb(p, &big, runs, b));
        out.push(Row {
            name,
            ours: format!("p50 {p50:.0} ms, {what} ({found} rows), {lookup_rows} points"),
            ours_value: Some(p50),
            anchor: anchor.map(|a| ("DuckDB (range filters)".to_string(), format!("{a:.1} ms"), a)),
            lower_is_better: true,
            target: "p50 < 50 ms (5,000,000 points)",
            met: Some(p50 < 50.0),
        });
    }
    Ok(out)
}
