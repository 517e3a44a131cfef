//! `citydata bench`: citydata's speed and memory beside DuckDB and PostgreSQL, on the same data,
//! on the same machine, in the same run. The bench generates its registers with the demo
//! generator (`citydata demo generate`), starts this binary as a server on a fresh data
//! directory and talks HTTP to it like a client would; the anchors run the same work in DuckDB
//! (a Python virtual environment the bench makes) and PostgreSQL (`COPY` + a btree index, when
//! a server answers). Results go to stdout and to BENCHMARKS.md.

mod evaluation;
mod geo;
mod iot;
mod quality;
mod s3;
mod sharing;
mod sources;
mod verify;

use anyhow::{Context, Result, bail};
use citydata_core::demo::generate::{Register, generate_listing};
use serde_json::{Value, json};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct BenchArgs {
    pub quick: bool,
    pub only: Option<String>,
    pub out: Option<PathBuf>,
    pub dir: Option<PathBuf>,
}

struct Sizes {
    ingest_rows: u64,
    lookup_rows: u64,
    rss_bytes: u64,
    runs: usize,
    probes: usize,
    load_secs: u64,
}

impl Sizes {
    fn new(quick: bool) -> Self {
        if quick {
            Sizes { ingest_rows: 2_000, lookup_rows: 5_000, rss_bytes: 2 << 20, runs: 1, probes: 10, load_secs: 1 }
        } else {
            Sizes {
                ingest_rows: 1_000_000,
                lookup_rows: 5_000_000,
                rss_bytes: 2 << 30,
                runs: 3,
                probes: 200,
                load_secs: 10,
            }
        }
    }
}

/// One measured row of the table.
#[derive(Debug, Clone)]
struct Row {
    name: &'static str,
    /// citydata's figure, as text, and the number compared.
    ours: String,
    ours_value: Option<f64>,
    anchor: Option<(String, String, f64)>,
    /// `true` when a smaller figure is better (times); `false` for rates.
    lower_is_better: bool,
    target: &'static str,
    met: Option<bool>,
}

fn stats(mut v: Vec<f64>) -> (f64, f64, f64) {
    v.sort_by(f64::total_cmp);
    let pick = |p: f64| v[((v.len() - 1) as f64 * p).round() as usize];
    (v[0], pick(0.5), v[v.len() - 1])
}

fn pct(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    v[((v.len() - 1) as f64 * p).round() as usize]
}

struct Server {
    child: Child,
    base: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    async fn start(data: &Path) -> Result<(Server, Duration)> {
        Server::start_with(data, &[]).await
    }

    /// With more settings (`CITYDATA__…` variables).
    async fn start_with(data: &Path, env: &[(&str, &str)]) -> Result<(Server, Duration)> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let exe = std::env::current_exe()?;
        let started = Instant::now();
        let child = Command::new(exe)
            .args(["serve", "--demo", "--data-dir"])
            .arg(data)
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .env("CITYDATA__DEMO_ROWS", "0")
            .env("CITYDATA__MAX_UPLOAD_BYTES", (8u64 << 30).to_string())
            // 核验: limits counted as in production, set high enough not to be hit.
            .env("CITYDATA__VERIFY_PER_SECOND", "1000000")
            .env("CITYDATA__VERIFY_USER_DAILY_QUOTA", "100000000")
            .env("RUST_LOG", "warn")
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("start the server")?;
        let server = Server { child, base: format!("http://127.0.0.1:{port}") };
        let client = reqwest::Client::new();
        for _ in 0..6000 {
            if let Ok(r) = client.get(format!("{}/readyz", server.base)).send().await
                && r.status().is_success()
            {
                return Ok((server, started.elapsed()));
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        bail!("the server did not become ready")
    }

    /// The server's process id.
    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits until the server is idle — under 5% of a core over 300 ms, so the previous row's
    /// background work (the commit's checkpoint, the search index, caches) is done — for at
    /// most 15 s, so that a timed row measures its own requests. Returns how long it waited.
    async fn settled(&self) -> Duration {
        let ticks = || -> Option<u64> {
            let s = std::fs::read_to_string(format!("/proc/{}/stat", self.pid())).ok()?;
            // Fields after the command's closing parenthesis, from the 3rd: utime is the 14th
            // and stime the 15th (clock ticks, 100 a second).
            let f: Vec<&str> = s.rsplit_once(')')?.1.split_whitespace().collect();
            Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
        };
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(15) {
            let Some(before) = ticks() else { break };
            tokio::time::sleep(Duration::from_millis(300)).await;
            let Some(after) = ticks() else { break };
            if after.saturating_sub(before) <= 1 {
                break;
            }
        }
        started.elapsed()
    }

    /// [`Self::settled`], then the row's name and the wait on the bench's log.
    async fn settle_for(&self, row: &str) {
        let waited = self.settled().await;
        eprintln!("bench: {row} (after {:.1} s for the server to settle)", waited.as_secs_f64());
    }

    /// Peak resident memory of the server process so far (VmHWM), in bytes.
    fn peak_rss(&self) -> Option<u64> {
        let s = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).ok()?;
        let line = s.lines().find(|l| l.starts_with("VmHWM:"))?;
        line.split_whitespace().nth(1)?.parse::<u64>().ok().map(|kb| kb * 1024)
    }

    async fn login(&self, user: &str) -> Result<reqwest::Client> {
        let c = reqwest::Client::builder().cookie_store(true).pool_max_idle_per_host(256).build()?;
        let r = c
            .post(format!("{}/api/v1/auth/login", self.base))
            .json(&json!({"username": user, "password": citydata_core::demo::DEMO_PASSWORD}))
            .send()
            .await?;
        if !r.status().is_success() {
            bail!("login as {user}: {}", r.status());
        }
        Ok(c)
    }
}

/// Upload `file` into 人口基础信息; returns (seconds, rows committed).
async fn ingest(c: &reqwest::Client, base: &str, file: &Path, mode: &str, encoding: &str) -> Result<(f64, u64)> {
    let f = tokio::fs::File::open(file).await?;
    let body = reqwest::Body::wrap_stream(tokio_util::io::ReaderStream::with_capacity(f, 1 << 20));
    let t = Instant::now();
    let r = c
        .post(format!("{base}/api/v1/resources/101%2F000001/data?mode={mode}&encoding={encoding}"))
        .body(body)
        .send()
        .await?;
    let status = r.status();
    let v: Value = r.json().await.unwrap_or_default();
    let secs = t.elapsed().as_secs_f64();
    if !status.is_success() {
        bail!("ingest {}: {status} {v}", file.display());
    }
    Ok((secs, v["report"]["rows_committed"].as_u64().unwrap_or(0)))
}

fn generate(path: &Path, rows: u64, gb18030: bool) -> Result<u64> {
    if let Ok(m) = std::fs::metadata(path)
        && m.len() > 0
    {
        return Ok(m.len());
    }
    let mut out = BufWriter::with_capacity(1 << 20, std::fs::File::create(path)?);
    generate_listing(Register::Population, rows, 0.0, 7, gb18030, &mut out)?;
    out.flush()?;
    Ok(std::fs::metadata(path)?.len())
}

/// Rows of a file until it is at least `bytes` long (the RSS file).
fn generate_bytes(path: &Path, bytes: u64) -> Result<u64> {
    // About 150 bytes a row.
    generate(path, bytes / 150 + 1, false)
}

/// Identity numbers to look up: every k-th line of the file.
fn sample_ids(path: &Path, n: usize) -> Result<Vec<String>> {
    use std::io::BufRead;
    let f = std::io::BufReader::new(std::fs::File::open(path)?);
    let mut ids = Vec::new();
    for (i, line) in f.lines().enumerate().skip(1) {
        let line = line?;
        if i % 997 == 1 {
            ids.push(line.split(',').next().unwrap_or("").to_string());
        }
        if ids.len() >= n {
            break;
        }
    }
    Ok(ids)
}

async fn timed_get(c: &reqwest::Client, url: &str) -> Result<(f64, usize)> {
    let t = Instant::now();
    let r = c.get(url).send().await?;
    if !r.status().is_success() {
        bail!("GET {url}: {}", r.status());
    }
    let b = r.bytes().await?;
    Ok((t.elapsed().as_secs_f64() * 1000.0, b.len()))
}

/// Requests per second and p99 (ms) of `url` under `conns` concurrent connections: `wrk` when
/// installed, else the bench's own generator.
async fn load(url: &str, secs: u64, conns: usize) -> Result<(f64, f64, &'static str)> {
    if Command::new("wrk").arg("--version").output().is_ok() {
        let out = Command::new("wrk")
            .args(["-t2", &format!("-c{conns}"), &format!("-d{secs}s"), "--latency", url])
            .output()?;
        let text = String::from_utf8_lossy(&out.stdout);
        let rps = text
            .lines()
            .find(|l| l.starts_with("Requests/sec:"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<f64>().ok());
        let p99 = text.lines().find(|l| l.trim_start().starts_with("99%")).and_then(|l| {
            let v = l.split_whitespace().nth(1)?;
            let (num, unit) = v.split_at(v.find(|c: char| c.is_ascii_alphabetic())?);
            let n: f64 = num.parse().ok()?;
            Some(match unit {
                "us" => n / 1000.0,
                "ms" => n,
                "s" => n * 1000.0,
                _ => n,
            })
        });
        if let (Some(r), Some(p)) = (rps, p99) {
            return Ok((r, p, "wrk"));
        }
    }
    let client = reqwest::Client::builder().pool_max_idle_per_host(conns).build()?;
    let deadline = Instant::now() + Duration::from_secs(secs);
    let mut tasks = Vec::new();
    for _ in 0..conns {
        let c = client.clone();
        let url = url.to_string();
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            while Instant::now() < deadline {
                let t = Instant::now();
                if let Ok(r) = c.get(&url).send().await
                    && r.bytes().await.is_ok()
                {
                    lat.push(t.elapsed().as_secs_f64() * 1000.0);
                }
            }
            lat
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap_or_default());
    }
    if all.is_empty() {
        bail!("no request to {url} succeeded");
    }
    let n = all.len() as f64;
    Ok((n / secs as f64, pct(&mut all, 0.99), "built-in"))
}

/// Where the anchors' script is: `bench/anchors.py` of the source tree (the bench runs from it).
const ANCHOR_SCRIPT: &str = "bench/anchors.py";

/// The anchors' Python: `CITYDATA_BENCH_PYTHON`, else the environment `bench/setup-anchors.sh`
/// makes (duckdb and psycopg). The binary installs nothing itself.
fn anchor_python() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("CITYDATA_BENCH_PYTHON") {
        return Some(PathBuf::from(p));
    }
    let home = std::env::var_os("HOME").map(PathBuf::from)?;
    let py = home.join(".cache/citydata-bench/venv/bin/python");
    if py.exists() {
        Some(py)
    } else {
        eprintln!("bench: no Python for the anchors: run bench/setup-anchors.sh (or set CITYDATA_BENCH_PYTHON)");
        None
    }
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| s.lines().next().and_then(|l| l.split_whitespace().nth(1)).and_then(|k| k.parse::<u64>().ok()))
        .map(|kb| format!("{:.0} GiB", kb as f64 / 1048576.0))
        .unwrap_or_default();
    format!("{cores} cores ({cpu}), {mem} RAM, {}", std::env::consts::OS)
}

fn fmt_ratio(r: &Row) -> String {
    match (&r.anchor, r.ours_value) {
        (Some((_, _, a)), Some(o)) if *a > 0.0 && o > 0.0 => {
            if r.lower_is_better {
                format!("{:.2}×", o / a)
            } else {
                format!("{:.2}×", a / o)
            }
        }
        _ => "—".into(),
    }
}

pub async fn run(args: BenchArgs) -> Result<()> {
    let sizes = Sizes::new(args.quick);
    let want = |name: &str| args.only.as_deref().is_none_or(|o| o.split(',').any(|x| name.starts_with(x.trim())));
    // Generated files are kept in `--dir` (reused by the next run), else removed at the end.
    let scratch = match &args.dir {
        Some(_) => None,
        None => Some(tempfile::tempdir()?),
    };
    let dir = match (&args.dir, &scratch) {
        (Some(d), _) => d.clone(),
        (None, Some(t)) => t.path().to_path_buf(),
        (None, None) => unreachable!("a scratch directory exists when no --dir is given"),
    };
    std::fs::create_dir_all(&dir)?;
    eprintln!("bench: working in {}", dir.display());
    let utf8 = dir.join(format!("people-{}.csv", sizes.ingest_rows));
    let gbk = dir.join(format!("people-{}-gb18030.csv", sizes.ingest_rows));
    let big = dir.join(format!("people-{}.csv", sizes.lookup_rows));
    eprintln!("bench: generating registers");
    let utf8_bytes = generate(&utf8, sizes.ingest_rows, false)?;
    let gbk_bytes = generate(&gbk, sizes.ingest_rows, true)?;
    let data = dir.join("data");
    let _ = std::fs::remove_dir_all(&data);
    let (server, _) = Server::start(&data).await?;
    let base = server.base.clone();
    let gaj = server.login("gaj-steward").await?;
    let mut rows: Vec<Row> = Vec::new();

    // Anchors first (they need the CSV only), so the server's figures are not disturbed.
    let anchors: Value = if args.quick {
        json!({})
    } else if let Some(py) = anchor_python().filter(|_| {
        let found = Path::new(ANCHOR_SCRIPT).is_file();
        if !found {
            eprintln!("bench: {ANCHOR_SCRIPT} not found: run the bench from the source tree for the anchors");
        }
        found
    }) {
        eprintln!("bench: anchors (DuckDB, PostgreSQL)");
        generate(&big, sizes.lookup_rows, false)?;
        let ids = sample_ids(&big, sizes.probes)?;
        let pg = std::env::var("CITYDATA_BENCH_PG_URL")
            .unwrap_or_else(|_| "postgresql://citydata:citydata@127.0.0.1:5432/postgres".into());
        let a = json!({
            "csv": utf8, "parquet": dir.join("people.parquet"), "export": dir.join("duckdb-export.csv"),
            "big_csv": big, "big_parquet": dir.join("people-big.parquet"),
            "runs": sizes.runs, "probes": sizes.probes, "ids": ids, "pg": pg,
        });
        let out = Command::new(py).args([ANCHOR_SCRIPT, &a.to_string()]).output()?;
        // The script's answer is its last line (a library may print before it).
        let stdout = String::from_utf8_lossy(&out.stdout);
        let last = stdout.lines().rev().find(|l| l.trim_start().starts_with('{')).unwrap_or("");
        serde_json::from_str(last).unwrap_or_else(|_| {
            eprintln!("bench: anchors failed: {}", String::from_utf8_lossy(&out.stderr));
            json!({})
        })
    } else {
        eprintln!("bench: no Python virtual environment for the anchors; citydata's figures only");
        json!({})
    };
    let anchor_median = |key: &str| -> Option<f64> {
        let v: Vec<f64> = anchors[key].as_array()?.iter().filter_map(Value::as_f64).collect();
        (!v.is_empty()).then(|| stats(v).1)
    };
    let anchor_pct = |key: &str, p: f64| -> Option<f64> {
        let mut v: Vec<f64> = anchors[key].as_array()?.iter().filter_map(Value::as_f64).collect();
        (!v.is_empty()).then(|| pct(&mut v, p))
    };
    let duck = format!("DuckDB {}", anchors["duckdb_version"].as_str().unwrap_or(""));
    let pgname = format!("PostgreSQL {}", anchors["pg_version"].as_str().unwrap_or(""));

    // Ingest.
    let mut utf8_secs = None;
    if want("ingest_utf8") {
        eprintln!("bench: ingest_utf8");
        let mut t = Vec::new();
        for _ in 0..sizes.runs {
            let (s, n) = ingest(&gaj, &base, &utf8, "replace", "utf-8").await?;
            anyhow::ensure!(n == sizes.ingest_rows, "committed {n} rows of {}", sizes.ingest_rows);
            t.push(s);
        }
        let (min, med, max) = stats(t);
        utf8_secs = Some(med);
        let duck_t = anchor_median("duckdb_ingest");
        let pg_t = anchor_median("pg_ingest");
        rows.push(Row {
            name: "ingest_utf8",
            ours: format!(
                "{med:.2} s (min {min:.2}, max {max:.2}); {:.0} rows/s, {:.1} MB/s",
                sizes.ingest_rows as f64 / med,
                utf8_bytes as f64 / med / 1e6
            ),
            ours_value: Some(med),
            anchor: duck_t.map(|d| (duck.clone(), format!("{d:.2} s (CSV→Parquet)"), d)),
            lower_is_better: true,
            target: "≤ 1.0× DuckDB",
            met: duck_t.map(|d| med <= d),
        });
        if let Some(d) = anchor_median("duckdb_ingest_duties") {
            rows.push(Row {
                name: "ingest_utf8 (vs DuckDB with the same duties)",
                ours: format!("{med:.2} s"),
                ours_value: Some(med),
                anchor: Some((
                    duck.clone(),
                    format!("{d:.2} s (typed cells, the same checks, unique key, sorted by it → Parquet)"),
                    d,
                )),
                lower_is_better: true,
                target: "—",
                met: None,
            });
        }
        if let Some(p) = pg_t {
            rows.push(Row {
                name: "ingest_utf8 (vs PostgreSQL)",
                ours: format!("{med:.2} s"),
                ours_value: Some(med),
                anchor: Some((pgname.clone(), format!("{p:.2} s (COPY + btree)"), p)),
                lower_is_better: true,
                target: "—",
                met: None,
            });
        }
    }
    if want("ingest_gb18030") {
        eprintln!("bench: ingest_gb18030");
        let mut t = Vec::new();
        for _ in 0..sizes.runs {
            let (s, n) = ingest(&gaj, &base, &gbk, "replace", "gb18030").await?;
            anyhow::ensure!(n == sizes.ingest_rows, "committed {n} rows of {}", sizes.ingest_rows);
            t.push(s);
        }
        let (min, med, max) = stats(t);
        let ratio = utf8_secs.map(|u| med / u);
        rows.push(Row {
            name: "ingest_gb18030",
            ours: format!(
                "{med:.2} s (min {min:.2}, max {max:.2}); {:.0} rows/s, {:.1} MB/s{}",
                sizes.ingest_rows as f64 / med,
                gbk_bytes as f64 / med / 1e6,
                ratio.map(|r| format!("; {r:.2}× UTF-8")).unwrap_or_default()
            ),
            ours_value: Some(med),
            anchor: None,
            lower_is_better: true,
            target: "≤ 1.1× UTF-8",
            met: ratio.map(|r| r <= 1.1),
        });
    }

    // Masked export of the 1,000,000-row table, as a government analyst with a grant.
    if want("export_masked") {
        eprintln!("bench: export_masked");
        let (_, n) = ingest(&gaj, &base, &utf8, "replace", "utf-8").await?;
        anyhow::ensure!(n == sizes.ingest_rows);
        let r = gaj
            .post(format!("{base}/api/v1/grants"))
            .json(&json!({"resource_id": "101/000001", "grantee": {"department": "wjw"}, "purpose": "bench",
                          "expires_at": "2099-01-01T00:00:00Z"}))
            .send()
            .await?;
        anyhow::ensure!(r.status().is_success(), "grant: {}", r.status());
        let wjw = server.login("wjw-analyst").await?;
        let mut t = Vec::new();
        let mut bytes = 0;
        for _ in 0..sizes.runs {
            let (ms, b) = timed_get(&wjw, &format!("{base}/api/v1/resources/101%2F000001/export?format=csv")).await?;
            t.push(ms / 1000.0);
            bytes = b;
        }
        let (min, med, max) = stats(t);
        let d = anchor_median("duckdb_export_masked");
        rows.push(Row {
            name: "export_masked",
            ours: format!("{med:.2} s (min {min:.2}, max {max:.2}); {:.1} MB", bytes as f64 / 1e6),
            ours_value: Some(med),
            anchor: d.map(|d| (duck.clone(), format!("{d:.2} s"), d)),
            lower_is_better: true,
            target: "≤ 1.0× DuckDB",
            met: d.map(|d| med <= d),
        });
    }

    // Delta Sharing of the 1,000,000-row table to a grantee (materialize, load_as_pandas).
    if want("share_materialize") || want("sharing_pandas") {
        eprintln!("bench: sharing");
        rows.extend(sharing::rows(&server, &gaj, &base, &data, &utf8, sizes.ingest_rows, sizes.runs).await?);
    }

    // Lookups, filters and groups on the large table.
    let mut lookup_p50 = None;
    if want("lookup") || want("filter_limit") || want("group_count") || want("verify_") || want("dataset_page") {
        eprintln!("bench: generating and loading the {}-row table", sizes.lookup_rows);
        generate(&big, sizes.lookup_rows, false)?;
        let (_, n) = ingest(&gaj, &base, &big, "replace", "utf-8").await?;
        anyhow::ensure!(n == sizes.lookup_rows, "committed {n}");
        if want("lookup") {
            server.settle_for("lookup").await;
            let ids = sample_ids(&big, sizes.probes)?;
            let mut lat = Vec::new();
            for id in &ids {
                let url = reqwest::Url::parse_with_params(
                    &format!("{base}/api/v1/resources/101%2F000001/rows"),
                    &[("limit", "1"), ("filter", &format!("身份证号 = '{id}'"))],
                )?;
                lat.push(timed_get(&gaj, url.as_str()).await?.0);
            }
            let p50 = pct(&mut lat, 0.5);
            let p99 = pct(&mut lat, 0.99);
            lookup_p50 = Some(p50);
            let pg50 = anchor_pct("pg_lookup", 0.5).map(|s| s * 1000.0);
            let pg99 = anchor_pct("pg_lookup", 0.99).map(|s| s * 1000.0);
            rows.push(Row {
                name: "lookup",
                ours: format!("p50 {p50:.1} ms, p99 {p99:.1} ms ({} rows)", sizes.lookup_rows),
                ours_value: Some(p50),
                anchor: pg50.map(|a| {
                    (pgname.clone(), format!("p50 {a:.2} ms, p99 {:.2} ms (btree, same rows)", pg99.unwrap_or(0.0)), a)
                }),
                lower_is_better: true,
                target: "p50 ≤ 5 ms",
                met: Some(p50 <= 5.0),
            });
        }
        if want("verify_batch") {
            server.settle_for("verify_batch").await;
            rows.push(verify::verify_batch(&server, &gaj, &base, &big, sizes.lookup_rows, sizes.runs).await?);
        }
        if want("verify_single") {
            server.settle_for("verify_single").await;
            rows.push(verify::verify_single(&server, &gaj, &base, &big, if args.quick { 100 } else { 20_000 }).await?);
        }
        if want("filter_limit") {
            server.settle_for("filter_limit").await;
            let url = reqwest::Url::parse_with_params(
                &format!("{base}/api/v1/resources/101%2F000001/rows"),
                &[("limit", "100"), ("filter", "区县 = '海陵区'")],
            )?
            .to_string();
            let mut lat = Vec::new();
            for _ in 0..sizes.probes.min(50) {
                lat.push(timed_get(&gaj, &url).await?.0);
            }
            let p50 = pct(&mut lat, 0.5);
            let d = anchor_median("duckdb_filter_limit").map(|s| s * 1000.0);
            rows.push(Row {
                name: "filter_limit",
                ours: format!("p50 {p50:.1} ms, p99 {:.1} ms", pct(&mut lat, 0.99)),
                ours_value: Some(p50),
                anchor: d.map(|d| (duck.clone(), format!("p50 {d:.2} ms (same rows)"), d)),
                lower_is_better: true,
                target: "p50 ≤ 10 ms",
                met: Some(p50 <= 10.0),
            });
        }
        if want("group_count") {
            server.settle_for("group_count").await;
            let url = format!("{base}/api/v1/resources/101%2F000001/aggregate?group_by=%E5%8C%BA%E5%8E%BF");
            let mut t = Vec::new();
            for _ in 0..sizes.runs * 3 {
                t.push(timed_get(&gaj, &url).await?.0 / 1000.0);
            }
            let (min, med, max) = stats(t);
            let d = anchor_median("duckdb_group_count");
            rows.push(Row {
                name: "group_count",
                ours: format!(
                    "{:.0} ms (min {:.0}, max {:.0}; {} rows)",
                    med * 1000.0,
                    min * 1000.0,
                    max * 1000.0,
                    sizes.lookup_rows
                ),
                ours_value: Some(med),
                anchor: d.map(|d| (duck.clone(), format!("{:.1} ms (same rows)", d * 1000.0), d)),
                lower_is_better: true,
                target: "≤ 1.5× DuckDB",
                met: d.map(|d| med <= 1.5 * d),
            });
        }
    }

    // The portal's dataset page of the large table (preview, charts), as its provider sees it.
    if want("dataset_page") {
        server.settle_for("dataset_page").await;
        let url = format!("{base}/datasets/101%2F000001");
        let mut lat = Vec::new();
        for _ in 0..sizes.probes.min(20) {
            lat.push(timed_get(&gaj, &url).await?.0);
        }
        // The first view computes the charts; the others at this table version take them from
        // the chart cache (citydata_core::chart_cache), as a dataset's viewers mostly do.
        let first = lat.first().copied().unwrap_or(0.0);
        let p50 = pct(&mut lat, 0.5);
        rows.push(Row {
            name: "dataset_page",
            ours: format!(
                "p50 {p50:.0} ms, p99 {:.0} ms ({} rows, preview and charts; the first view, which computes the charts, {first:.0} ms)",
                pct(&mut lat, 0.99),
                sizes.lookup_rows
            ),
            ours_value: Some(p50),
            anchor: None,
            lower_is_better: true,
            target: "p50 ≤ 100 ms",
            met: Some(p50 <= 100.0),
        });
    }

    // Data quality: rules and the report, and a reference to the lookup table.
    if want("quality") {
        eprintln!("bench: quality (the reference target is the {}-row table)", sizes.lookup_rows);
        if !(want("lookup") || want("filter_limit") || want("group_count")) {
            generate(&big, sizes.lookup_rows, false)?;
            let (_, n) = ingest(&gaj, &base, &big, "replace", "utf-8").await?;
            anyhow::ensure!(n == sizes.lookup_rows, "committed {n}");
        }
        rows.extend(quality::rows(&gaj, &base, &utf8, sizes.ingest_rows, sizes.runs).await?);
    }

    // Requests per second.
    if want("metadata_rps") {
        server.settle_for("metadata_rps").await;
        let v: Value = reqwest::get(format!("{base}/api/v1/resources/102%2F000001")).await?.json().await?;
        let id = v["id"].as_str().unwrap_or("").to_string();
        let (rps, p99, how) = load(&format!("{base}/api/v1/resources/{id}"), sizes.load_secs, 64).await?;
        rows.push(Row {
            name: "metadata_rps",
            ours: format!("{rps:.0} req/s, p99 {p99:.1} ms (64 connections, {how})"),
            ours_value: Some(rps),
            anchor: None,
            lower_is_better: false,
            target: "≥ 20,000 req/s",
            met: Some(rps >= 20_000.0),
        });
    }
    if want("search_rps") {
        server.settle_for("search_rps").await;
        let (rps, p99, how) = load(&format!("{base}/api/v1/search?q=%E4%BC%81%E4%B8%9A"), sizes.load_secs, 64).await?;
        rows.push(Row {
            name: "search_rps",
            ours: format!("{rps:.0} req/s, p99 {p99:.1} ms (64 connections, {how})"),
            ours_value: Some(rps),
            anchor: None,
            lower_is_better: false,
            target: "≥ 5,000 req/s",
            met: Some(rps >= 5_000.0),
        });
    }
    // Spatial rows on the running server (before it stops for the startup and memory rows).
    if want("geo") {
        eprintln!("bench: geo");
        let py = if args.quick { None } else { anchor_python() };
        rows.extend(geo::rows(&gaj, &base, &dir, sizes.ingest_rows, sizes.lookup_rows, sizes.runs, py).await?);
    }

    drop(server);

    // The same ingest and lookups with the lake on S3 (moto).
    if want("ingest_s3") || want("lookup_s3") {
        eprintln!("bench: ingest_s3, lookup_s3");
        rows.extend(s3::rows(&dir, &utf8, sizes.ingest_rows, sizes.probes, utf8_secs, lookup_p50).await?);
    }

    // Scheduled collection: an incremental pull from PostgreSQL, a CKAN harvest.
    if want("source_") || want("harvest_") {
        eprintln!("bench: sources (pull and harvest)");
        rows.extend(sources::rows(&dir, &big, sizes.lookup_rows, args.quick, &want).await?);
    }

    // 评估考核 of a quarter, on its own data directory.
    if want("evaluation") {
        eprintln!("bench: evaluation_quarter");
        rows.push(evaluation::row(&dir, args.quick, sizes.runs).await?);
    }

    // MQTT readings into one table, on a real mosquitto.
    if want("iot") {
        eprintln!("bench: iot");
        let py = if args.quick { None } else { anchor_python() };
        rows.extend(iot::rows(&dir, args.quick, py).await?);
    }

    // Startup on an existing data directory.
    if want("ready") {
        eprintln!("bench: ready");
        let mut t = Vec::new();
        for _ in 0..3 {
            let (s, d) = Server::start(&data).await?;
            t.push(d.as_secs_f64());
            drop(s);
        }
        let (min, med, max) = stats(t);
        rows.push(Row {
            name: "ready",
            ours: format!("{med:.2} s (min {min:.2}, max {max:.2})"),
            ours_value: Some(med),
            anchor: None,
            lower_is_better: true,
            target: "< 3 s",
            met: Some(med < 3.0),
        });
    }

    // Peak memory while ingesting a large file, in a fresh server process.
    if want("ingest_rss") {
        eprintln!("bench: ingest_rss (generating {} MB)", sizes.rss_bytes >> 20);
        let file = dir.join("people-rss.csv");
        let bytes = generate_bytes(&file, sizes.rss_bytes)?;
        let (s, _) = Server::start(&data).await?;
        let c = s.login("gaj-steward").await?;
        let before = s.peak_rss().unwrap_or(0);
        let (secs, n) = ingest(&c, &s.base, &file, "replace", "utf-8").await?;
        let peak = s.peak_rss().unwrap_or(0);
        rows.push(Row {
            name: "ingest_rss",
            ours: format!(
                "peak {:.0} MB (idle {:.0} MB) ingesting {:.2} GB, {n} rows in {secs:.0} s",
                peak as f64 / 1048576.0,
                before as f64 / 1048576.0,
                bytes as f64 / 1e9
            ),
            ours_value: Some(peak as f64),
            anchor: None,
            lower_is_better: true,
            target: "< 300 MB",
            met: Some(peak < 300 << 20),
        });
        drop(s);
    }

    let mut table = String::from(
        "| benchmark | citydata | anchor | anchor's figure | ratio (citydata ÷ anchor time) | target | met |\n",
    );
    table.push_str("| --- | --- | --- | --- | --- | --- | --- |\n");
    for r in &rows {
        let (an, af) = r.anchor.as_ref().map(|(a, f, _)| (a.as_str(), f.as_str())).unwrap_or(("—", "—"));
        table.push_str(&format!(
            "| `{}` | {} | {} | {} | {} | {} | {} |\n",
            r.name,
            r.ours,
            an,
            af,
            fmt_ratio(r),
            r.target,
            match r.met {
                Some(true) => "yes",
                Some(false) => "**no**",
                None => "—",
            }
        ));
    }
    println!("{table}");
    if let Some(e) = anchors["duckdb_error"].as_str() {
        println!("DuckDB anchor failed: {e}");
    }
    if let Some(e) = anchors["pg_error"].as_str() {
        println!("PostgreSQL anchor failed: {e}");
    }
    if let Some(out) = &args.out {
        let table = match &args.only {
            // A partial run replaces its own rows and keeps the others of the earlier run.
            Some(only) => merge_rows(&std::fs::read_to_string(out).unwrap_or_default(), &table, only),
            None => table,
        };
        write_report(out, &table, &sizes, args.quick)?;
        eprintln!("bench: wrote {}", out.display());
    }
    Ok(())
}

const MARK: &str = "<!-- bench:results -->";
const END: &str = "<!-- /bench:results -->";

/// The table of this run's rows merged into the report's earlier table: rows of the same name
/// are replaced in place, the others kept (and said to come from the earlier run).
fn merge_rows(existing: &str, table: &str, only: &str) -> String {
    let name = |l: &str| l.strip_prefix("| `").and_then(|r| r.split_once('`')).map(|(n, _)| n.to_string());
    let earlier = match (existing.find(MARK), existing.find(END)) {
        (Some(a), Some(b)) if b > a => &existing[a..b],
        _ => return table.to_string(),
    };
    let when = earlier.lines().find_map(|l| l.strip_prefix("Run on ")).and_then(|l| l.split_once(": ")).map(|(w, _)| w);
    let fresh: Vec<&str> = table.lines().filter(|l| name(l).is_some()).collect();
    let mut out: Vec<String> = table.lines().take(2).map(str::to_string).collect();
    let mut used = vec![false; fresh.len()];
    for l in earlier.lines().filter(|l| name(l).is_some()) {
        match fresh.iter().position(|f| name(f) == name(l)) {
            Some(i) => {
                out.push(fresh[i].to_string());
                used[i] = true;
            }
            None => out.push(l.to_string()),
        }
    }
    out.extend(fresh.iter().zip(&used).filter(|(_, u)| !**u).map(|(f, _)| f.to_string()));
    let mut text = out.join("\n");
    text.push_str(&format!(
        "\n\nThis run measured only `{only}`; the other rows are from the earlier run ({}).\n",
        when.unwrap_or("date not recorded")
    ));
    text
}

/// Replace the results between the markers, keeping the hand-written analysis around them.
fn write_report(out: &Path, table: &str, sizes: &Sizes, quick: bool) -> Result<()> {
    let now = chrono::Utc::now().format("%Y-%m-%d %H:%M UTC");
    let section = format!(
        "{MARK}\nRun on {now}: `citydata bench{}` ({}) on {}.\nSizes: ingest {} rows, lookups on {} rows, RSS file {:.1} GB, {} runs per timing, {} probes per latency.\n\n{table}{END}",
        if quick { " --quick" } else { "" },
        // Figures of a debug build are not comparable with anything: say which build made them.
        if cfg!(debug_assertions) { "debug build, not comparable" } else { "release build" },
        machine(),
        sizes.ingest_rows,
        sizes.lookup_rows,
        sizes.rss_bytes as f64 / 1e9,
        sizes.runs,
        sizes.probes,
    );
    let existing = std::fs::read_to_string(out).unwrap_or_default();
    let text = match (existing.find(MARK), existing.find(END)) {
        (Some(a), Some(b)) if b > a => format!("{}{section}{}", &existing[..a], &existing[b + END.len()..]),
        _ => format!("# citydata benchmarks\n\n{section}\n"),
    };
    std::fs::write(out, text)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_partial_run_replaces_its_rows_and_keeps_the_others() {
        let head = "| benchmark | citydata | anchor | anchor's figure | ratio | target | met |\n| --- | --- | --- | --- | --- | --- | --- |\n";
        let existing = format!(
            "# b\n\n{MARK}\nRun on 2026-11-29 08:42 UTC: `citydata bench` (release build).\n\n{head}| `lookup` | old | — | — | — | — | no |\n| `ready` | 0.05 s | — | — | — | — | yes |\n{END}\n"
        );
        let fresh = format!(
            "{head}| `lookup` | new | — | — | — | — | yes |\n| `verify_batch` | 90 ms | — | — | — | — | yes |\n"
        );
        let merged = merge_rows(&existing, &fresh, "lookup,verify_");
        let rows: Vec<&str> = merged.lines().filter(|l| l.starts_with("| `")).collect();
        assert_eq!(rows.len(), 3, "{merged}");
        assert!(rows[0].contains("new") && rows[1].contains("`ready`") && rows[2].contains("verify_batch"));
        assert!(merged.contains("earlier run (2026-11-29 08:42 UTC)"), "{merged}");
        // No earlier report: the run's own table.
        assert_eq!(merge_rows("", &fresh, "lookup"), fresh);
    }
}
