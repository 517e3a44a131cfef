//! Delta Sharing (#20) on the 1,000,000-row register, as 卫健委 (a grant, the resource's masks):
//!
//! - `share_materialize`: the first `POST .../query` of the granted table, which writes what the
//!   gate allows as a Delta table of its own, against the same analyst's masked CSV export of
//!   the same rows (the same governed plan, written as one file). Target: within 1.5×.
//! - `sharing_pandas`: the PyPI client's `load_as_pandas` of the (materialized) table, against
//!   pyarrow reading the very same Parquet files from the local disk into pandas. Target:
//!   within 1.5×.

use super::{Row, Server, stats, timed_get};
use anyhow::{Context, Result, bail};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

/// A Python with the `delta_sharing` client and pyarrow: `CITYDATA_PYTHON`, the bench's or the
/// CI's virtual environment.
fn python() -> Option<PathBuf> {
    let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_default();
    let candidates = ["CITYDATA_PYTHON", "CITYDATA_BENCH_PYTHON"]
        .iter()
        .filter_map(std::env::var_os)
        .map(PathBuf::from)
        .chain([home.join(".cache/citydata-ci-venv/bin/python"), home.join(".cache/citydata-bench/venv/bin/python")]);
    for p in candidates {
        let ok = Command::new(&p)
            .args(["-c", "import delta_sharing, pyarrow"])
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false);
        if ok {
            return Some(p);
        }
    }
    None
}

const SCRIPT: &str = r##"
import glob, json, os, sys, time
import delta_sharing, pyarrow.parquet as pq
profile, table, files, runs = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
out = {"sharing": [], "pyarrow": []}
for _ in range(runs):
    t = time.perf_counter()
    df = delta_sharing.load_as_pandas(profile + "#" + table)
    out["sharing"].append(time.perf_counter() - t)
    out["rows"] = len(df)
paths = sorted(glob.glob(files))
for _ in range(runs):
    t = time.perf_counter()
    df = pq.read_table(paths).to_pandas()
    out["pyarrow"].append(time.perf_counter() - t)
    out["pyarrow_rows"] = len(df)
print(json.dumps(out))
sys.stdout.flush()
os._exit(0)
"##;

#[allow(clippy::too_many_arguments)]
pub(super) async fn rows(
    server: &Server,
    gaj: &reqwest::Client,
    base: &str,
    data: &Path,
    csv: &Path,
    n: u64,
    runs: usize,
) -> Result<Vec<Row>> {
    let (_, got) = super::ingest(gaj, base, csv, "replace", "utf-8").await?;
    anyhow::ensure!(got == n, "committed {got} of {n}");
    let r = gaj
        .post(format!("{base}/api/v1/grants"))
        .json(&json!({"resource_id": "101/000001", "grantee": {"department": "wjw"}, "purpose": "bench sharing",
                      "expires_at": "2099-01-01T00:00:00Z"}))
        .send()
        .await?;
    if !(r.status().is_success() || r.status() == 409) {
        bail!("grant: {} {}", r.status(), r.text().await?);
    }
    let resource: Value = gaj.get(format!("{base}/api/v1/resources/101%2F000001")).send().await?.json().await?;
    let (id, slug) = (
        resource["id"].as_str().context("resource id")?.to_string(),
        resource["slug"].as_str().context("slug")?.to_string(),
    );
    let wjw = server.login("wjw-analyst").await?;
    let r = wjw.post(format!("{base}/api/v1/sharing/profiles")).json(&json!({"name": "bench"})).send().await?;
    anyhow::ensure!(r.status() == 201, "profile: {}", r.text().await?);
    let profile: Value = r.json().await?;
    let token = profile["bearerToken"].as_str().context("token")?.to_string();
    let profile_path = data.join("bench.share");
    std::fs::write(&profile_path, profile.to_string())?;

    // The first query writes the shared table; the export is the same plan into one file.
    let t = Instant::now();
    let r = reqwest::Client::new()
        .post(format!("{base}/delta-sharing/shares/wjw/schemas/gaj/tables/{slug}/query"))
        .bearer_auth(&token)
        .json(&json!({}))
        .send()
        .await?;
    anyhow::ensure!(r.status() == 200, "sharing query: {} {}", r.status(), r.text().await?);
    let lines = r.text().await?;
    let materialize = t.elapsed().as_secs_f64();
    let files = lines.lines().skip(2).count();
    let mut export = Vec::new();
    for _ in 0..runs {
        let (ms, _) = timed_get(&wjw, &format!("{base}/api/v1/resources/101%2F000001/export?format=csv")).await?;
        export.push(ms / 1000.0);
    }
    let (_, exp, _) = stats(export);
    let mut out = vec![Row {
        name: "share_materialize",
        ours: format!("{materialize:.2} s ({n} rows, masked, {files} files)"),
        ours_value: Some(materialize),
        anchor: Some(("citydata masked export".into(), format!("{exp:.2} s (CSV, same analyst)"), exp)),
        lower_is_better: true,
        target: "≤ 1.5× masked export",
        met: Some(materialize <= 1.5 * exp),
    }];

    let Some(py) = python() else {
        eprintln!("bench: sharing_pandas skipped: no Python with delta_sharing and pyarrow (set CITYDATA_PYTHON)");
        return Ok(out);
    };
    let files = data.join(format!("lake/sharing/{id}/g*/*.parquet"));
    let o = Command::new(&py)
        .args([
            "-c",
            SCRIPT,
            profile_path.to_str().context("path")?,
            &format!("wjw.gaj.{slug}"),
            files.to_str().context("path")?,
            &runs.to_string(),
        ])
        .output()?;
    anyhow::ensure!(o.status.success(), "delta_sharing: {}", String::from_utf8_lossy(&o.stderr));
    let v: Value = serde_json::from_slice(&o.stdout).context("the client's answer")?;
    let times = |k: &str| v[k].as_array().map(|a| a.iter().filter_map(Value::as_f64).collect::<Vec<_>>());
    let (Some(ours), Some(local)) = (times("sharing"), times("pyarrow")) else { bail!("delta_sharing: {v}") };
    anyhow::ensure!(v["rows"] == v["pyarrow_rows"] && v["rows"].as_u64() == Some(n), "rows differ: {v}");
    let (_, ours, _) = stats(ours);
    let (_, local, _) = stats(local);
    out.push(Row {
        name: "sharing_pandas",
        ours: format!("{ours:.2} s `load_as_pandas` ({n} rows)"),
        ours_value: Some(ours),
        anchor: Some(("pyarrow (local files)".into(), format!("{local:.2} s (the same Parquet files)"), local)),
        lower_is_better: true,
        target: "≤ 1.5× pyarrow",
        met: Some(ours <= 1.5 * local),
    });
    Ok(out)
}
