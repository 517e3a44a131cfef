//! `ingest_s3`, `lookup_s3` (#20): the same ingest and key lookups with the lake on an
//! S3-compatible server (moto, local, from the CI's virtual environment), reported beside the
//! local-disk figures of the same run. No target: the figures show what object storage costs.

use super::{Row, Server, pct, sample_ids, timed_get};
use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// `moto_server` beside `CITYDATA_PYTHON`, or in the CI's virtual environment.
fn moto_binary() -> Option<PathBuf> {
    let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_default();
    std::env::var_os("CITYDATA_PYTHON")
        .and_then(|p| Path::new(&p).parent().map(|d| d.join("moto_server")))
        .into_iter()
        .chain([home.join(".cache/citydata-ci-venv/bin/moto_server")])
        .find(|p| p.exists())
}

struct Moto(Child);

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[allow(clippy::too_many_arguments)]
pub(super) async fn rows(
    dir: &Path,
    csv: &Path,
    rows: u64,
    probes: usize,
    local_ingest: Option<f64>,
    local_lookup: Option<f64>,
) -> Result<Vec<Row>> {
    let Some(bin) = moto_binary() else {
        eprintln!("bench: S3 rows skipped: no moto_server (pip install 'moto[server]', or set CITYDATA_PYTHON)");
        return Ok(vec![]);
    };
    let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let _moto = Moto(
        Command::new(bin)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("moto_server")?,
    );
    let endpoint = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(60);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if Instant::now() > deadline {
            bail!("moto_server did not start");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let r = reqwest::Client::new().put(format!("{endpoint}/bench-lake")).send().await?;
    anyhow::ensure!(r.status().is_success(), "creating the bucket: {}", r.status());
    let data = dir.join("s3-data");
    let _ = std::fs::remove_dir_all(&data);
    let (server, _) = Server::start_with(
        &data,
        &[
            ("CITYDATA__LAKE_URL", "s3://bench-lake/citydata"),
            ("CITYDATA__LAKE_S3__ENDPOINT", endpoint.as_str()),
            ("CITYDATA__LAKE_S3__ACCESS_KEY_ID", "bench"),
            ("CITYDATA__LAKE_S3__SECRET_ACCESS_KEY", "bench-secret"),
            ("CITYDATA__LAKE_S3__ALLOW_HTTP", "true"),
        ],
    )
    .await?;
    let base = server.base.clone();
    let gaj = server.login("gaj-steward").await?;
    let (secs, n) = super::ingest(&gaj, &base, csv, "replace", "utf-8").await?;
    anyhow::ensure!(n == rows, "committed {n} of {rows} on S3");
    let mut out = vec![Row {
        name: "ingest_s3",
        ours: format!(
            "{secs:.2} s, {:.0} rows/s ({rows} rows; the lake on moto){}",
            rows as f64 / secs,
            local_ingest.map(|l| format!("; local disk {l:.2} s in this run")).unwrap_or_default()
        ),
        ours_value: Some(secs),
        anchor: None,
        lower_is_better: true,
        target: "— (beside `ingest_utf8`)",
        met: None,
    }];
    let ids = sample_ids(csv, probes)?;
    let mut lat = Vec::new();
    for id in &ids {
        let url = reqwest::Url::parse_with_params(
            &format!("{base}/api/v1/resources/101%2F000001/rows"),
            &[("limit", "1"), ("filter", &format!("身份证号 = '{id}'"))],
        )?;
        lat.push(timed_get(&gaj, url.as_str()).await?.0);
    }
    let (p50, p99) = (pct(&mut lat, 0.5), pct(&mut lat, 0.99));
    out.push(Row {
        name: "lookup_s3",
        ours: format!(
            "p50 {p50:.1} ms, p99 {p99:.1} ms ({rows} rows on moto){}",
            local_lookup.map(|l| format!("; local disk p50 {l:.1} ms in this run")).unwrap_or_default()
        ),
        ours_value: Some(p50),
        anchor: None,
        lower_is_better: true,
        target: "— (beside `lookup`)",
        met: None,
    });
    drop(server);
    Ok(out)
}
