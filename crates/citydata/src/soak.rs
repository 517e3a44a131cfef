//! `citydata bench soak`: a long mixed workload at a fixed rate against a server process this
//! command starts (the same binary, `serve --demo`, on loopback), reporting errors by
//! operation and status, latency percentiles per operation per window, and the server's
//! resident memory over time with its slope after warm-up.
//!
//! The load is open-loop: operation `k` is sent at `k / rate` seconds whatever the answers
//! before it, so a slow server shows up as latency, not as a lower rate. Operations, by share:
//! catalog list and detail, search, governed rows and exports (the provider's steward, and the
//! requesting analyst once a grant exists), small upsert ingests with an Idempotency-Key,
//! logins, and sharing requests each followed by the provider's approval.

use anyhow::{Context, Result, bail};
use citydata_core::demo::generate::{Register, generate};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(clap::Args, Debug, Clone)]
pub struct SoakArgs {
    /// Run this many minutes (default 30).
    #[arg(long, conflicts_with = "seconds")]
    pub minutes: Option<u64>,
    /// Or this many seconds (short runs: tests, CI).
    #[arg(long)]
    pub seconds: Option<u64>,
    /// Operations per second, sent at a fixed pace.
    #[arg(long, default_value_t = 20.0)]
    pub rate: f64,
    /// Width of a latency window, in seconds.
    #[arg(long, default_value_t = 60)]
    pub window_seconds: u64,
    /// Memory samples before this are warm-up and not in the slope (default: a fifth of the
    /// run, at most 5 minutes).
    #[arg(long)]
    pub warmup_seconds: Option<u64>,
    /// Largest accepted growth of the server's RSS after warm-up, in MB per 10 minutes.
    #[arg(long, default_value_t = 5.0, allow_negative_numbers = true)]
    pub max_slope_mb: f64,
    /// Judge the slope only when the samples after warm-up span at least this many seconds
    /// (shorter runs report it without judging: a minute of a warming server says little).
    #[arg(long, default_value_t = 300)]
    pub slope_min_seconds: u64,
    /// Operations allowed in flight at once; an operation due while this many are still
    /// waiting is not sent and counts as an error (`not sent`): the server is not keeping up.
    #[arg(long, default_value_t = 64)]
    pub max_in_flight: usize,
    /// Rows of the demo population register loaded at start.
    #[arg(long, default_value_t = 2000)]
    pub demo_rows: u64,
    /// Write the results here as JSON.
    #[arg(long, default_value = "soak.json")]
    pub json: PathBuf,
    /// Data directory for the server (default: a temporary directory).
    #[arg(long)]
    pub dir: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Op {
    CatalogList,
    CatalogGet,
    Search,
    Rows,
    RowsGranted,
    Export,
    Ingest,
    Login,
    Request,
    Approve,
}

impl Op {
    fn name(self) -> &'static str {
        match self {
            Op::CatalogList => "catalog_list",
            Op::CatalogGet => "catalog_get",
            Op::Search => "search",
            Op::Rows => "rows",
            Op::RowsGranted => "rows_granted",
            Op::Export => "export",
            Op::Ingest => "ingest",
            Op::Login => "login",
            Op::Request => "request",
            Op::Approve => "approve",
        }
    }
}

/// One cycle of 50 operations: the mix, in a fixed interleaved order.
const CYCLE: [Op; 50] = {
    use Op::*;
    [
        CatalogList,
        Search,
        Rows,
        CatalogGet,
        Export,
        CatalogList,
        Search,
        RowsGranted,
        CatalogGet,
        Rows, //
        CatalogList,
        Search,
        Rows,
        Ingest,
        CatalogGet,
        Search,
        CatalogList,
        Rows,
        Request,
        RowsGranted, //
        CatalogList,
        Search,
        Export,
        CatalogGet,
        Rows,
        Login,
        CatalogList,
        Search,
        Rows,
        CatalogGet, //
        CatalogList,
        Search,
        RowsGranted,
        Ingest,
        Rows,
        CatalogList,
        Search,
        CatalogGet,
        Export,
        Rows, //
        CatalogList,
        Search,
        Rows,
        CatalogGet,
        Request,
        RowsGranted,
        CatalogList,
        Search,
        Rows,
        Login,
    ]
};

const SEARCH_TERMS: [&str; 6] = ["人口", "企业", "医疗", "交通", "教育", "信用"];

/// One finished operation.
#[derive(Debug, Clone)]
struct Sample {
    op: Op,
    /// When it was sent, in seconds since the start of the load.
    at: f64,
    ms: f64,
    /// HTTP status, 0 when the request failed without one, 1 when it was not sent (too many
    /// operations in flight).
    status: u16,
    ok: bool,
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

fn rss_bytes(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = s.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse::<u64>().ok().map(|kb| kb * 1024)
}

async fn start_server(data: &Path, demo_rows: u64) -> Result<Server> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let child = Command::new(std::env::current_exe()?)
        .args(["serve", "--demo", "--data-dir"])
        .arg(data)
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .env("CITYDATA__DEMO_ROWS", demo_rows.to_string())
        .env_remove("CITYDATA__DATABASE_URL")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("cannot start the server")?;
    let mut server = Server { child, base: format!("http://127.0.0.1:{port}") };
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(600);
    while Instant::now() < deadline {
        if let Ok(r) = client.get(format!("{}/readyz", server.base)).send().await
            && r.status().is_success()
        {
            return Ok(server);
        }
        if let Some(status) = server.child.try_wait()? {
            bail!("the server exited before it was ready ({status})");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    bail!("the server did not become ready")
}

async fn login(base: &str, user: &str) -> Result<reqwest::Client> {
    let c = reqwest::Client::builder().cookie_store(true).timeout(Duration::from_secs(120)).build()?;
    let r = c
        .post(format!("{base}/api/v1/auth/login"))
        .json(&json!({"username": user, "password": citydata_core::demo::DEMO_PASSWORD}))
        .send()
        .await?;
    if !r.status().is_success() {
        bail!("login as {user}: {}", r.status());
    }
    Ok(c)
}

/// Shared state of the workload.
struct Ctx {
    base: String,
    anon: reqwest::Client,
    steward: reqwest::Client,
    analyst: reqwest::Client,
    /// Resource ids of the catalog, for detail pages.
    resources: Vec<String>,
    /// The data resource (人口基础信息).
    people: String,
    /// Requests filed and not yet approved.
    pending: Mutex<Vec<String>>,
    granted: std::sync::atomic::AtomicBool,
    seq: std::sync::atomic::AtomicU64,
}

/// Send one operation; `(status, ok)`.
async fn send(ctx: &Ctx, op: Op, k: u64) -> (u16, bool) {
    let base = &ctx.base;
    let people = crate::cli::urlencode(&ctx.people);
    let result: Result<reqwest::Response, reqwest::Error> = match op {
        Op::CatalogList => ctx.anon.get(format!("{base}/api/v1/resources?per_page=20&page={}", 1 + k % 2)).send().await,
        Op::CatalogGet => {
            let id = &ctx.resources[(k as usize) % ctx.resources.len().max(1)];
            ctx.anon.get(format!("{base}/api/v1/resources/{id}")).send().await
        }
        Op::Search => {
            let q = SEARCH_TERMS[(k as usize) % SEARCH_TERMS.len()];
            ctx.anon.get(format!("{base}/api/v1/search?q={}", crate::cli::urlencode(q))).send().await
        }
        Op::Rows => {
            ctx.steward.get(format!("{base}/api/v1/resources/{people}/rows?limit={}", 20 + k % 50)).send().await
        }
        Op::RowsGranted => {
            // Until the first approval the analyst has no grant: read the open catalog instead.
            if ctx.granted.load(std::sync::atomic::Ordering::Relaxed) {
                ctx.analyst.get(format!("{base}/api/v1/resources/{people}/rows?limit=20")).send().await
            } else {
                ctx.analyst.get(format!("{base}/api/v1/resources?per_page=5")).send().await
            }
        }
        Op::Export => ctx.steward.get(format!("{base}/api/v1/resources/{people}/export?format=csv")).send().await,
        Op::Ingest => {
            let n = ctx.seq.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let mut buf = Vec::new();
            if generate(Register::Population, 5, 0.0, 1_000 + n, false, &mut buf).is_err() {
                return (0, false);
            }
            ctx.steward
                .post(format!("{base}/api/v1/resources/{people}/data?mode=upsert&format=csv"))
                .header("Idempotency-Key", format!("soak-{}-{n}", std::process::id()))
                .body(buf)
                .send()
                .await
        }
        Op::Login => {
            let user = ["wjw-analyst", "gaj-steward"][(k % 2) as usize];
            reqwest::Client::new()
                .post(format!("{base}/api/v1/auth/login"))
                .json(&json!({"username": user, "password": citydata_core::demo::DEMO_PASSWORD}))
                .send()
                .await
        }
        Op::Request => {
            let r = ctx
                .analyst
                .post(format!("{base}/api/v1/requests"))
                .json(&json!({
                    "resource_id": ctx.people,
                    "purpose": "浸泡测试：核验就诊人员身份",
                    "basis": "《医疗机构管理条例》",
                    "period_days": 30,
                }))
                .send()
                .await;
            match r {
                Ok(r) if r.status().is_success() => {
                    let status = r.status().as_u16();
                    let v: Value = r.json().await.unwrap_or_default();
                    match v["id"].as_str() {
                        Some(id) => {
                            ctx.pending.lock().unwrap_or_else(|p| p.into_inner()).push(id.to_string());
                            return (status, true);
                        }
                        None => return (status, false),
                    }
                }
                other => other,
            }
        }
        Op::Approve => {
            let Some(id) = ctx.pending.lock().unwrap_or_else(|p| p.into_inner()).pop() else { return (0, true) };
            let r = ctx.steward.post(format!("{base}/api/v1/requests/{id}/approve")).json(&json!({})).send().await;
            if r.as_ref().is_ok_and(|r| r.status().is_success()) {
                ctx.granted.store(true, std::sync::atomic::Ordering::Relaxed);
            }
            r
        }
    };
    match result {
        Ok(r) => {
            let status = r.status().as_u16();
            let ok = r.status().is_success();
            // Read the whole body: an export is timed to its last byte.
            let body_ok = r.bytes().await.is_ok();
            (status, ok && body_ok)
        }
        Err(_) => (0, false),
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// Least-squares slope of `(t seconds, bytes)`, in MB per 10 minutes.
pub fn slope_mb_per_10min(points: &[(f64, u64)]) -> Option<f64> {
    if points.len() < 3 {
        return None;
    }
    let n = points.len() as f64;
    let mx = points.iter().map(|p| p.0).sum::<f64>() / n;
    let my = points.iter().map(|p| p.1 as f64 / 1e6).sum::<f64>() / n;
    let sxx: f64 = points.iter().map(|p| (p.0 - mx).powi(2)).sum();
    if sxx == 0.0 {
        return None;
    }
    let sxy: f64 = points.iter().map(|p| (p.0 - mx) * (p.1 as f64 / 1e6 - my)).sum();
    Some(sxy / sxx * 600.0)
}

fn stats_json(samples: &[&Sample]) -> Value {
    // Operations not sent have no latency.
    let mut ms: Vec<f64> = samples.iter().filter(|s| s.status != 1).map(|s| s.ms).collect();
    ms.sort_by(f64::total_cmp);
    json!({
        "count": samples.len(),
        "errors": samples.iter().filter(|s| !s.ok).count(),
        "p50_ms": round(percentile(&ms, 0.50)),
        "p95_ms": round(percentile(&ms, 0.95)),
        "p99_ms": round(percentile(&ms, 0.99)),
        "max_ms": round(ms.last().copied().unwrap_or(f64::NAN)),
    })
}

fn status_label(status: u16) -> String {
    match status {
        0 => "no answer (connection or timeout)".into(),
        1 => "not sent (too many operations in flight)".into(),
        s => format!("status {s}"),
    }
}

fn print_row(window: &str, op: &str, st: &Value) {
    let cell = |k: &str| st[k].to_string();
    println!(
        "{:<7} {:<13} {:>6} {:>6} {:>9} {:>9} {:>9}",
        window,
        op,
        cell("count"),
        cell("errors"),
        cell("p50_ms"),
        cell("p95_ms"),
        cell("p99_ms")
    );
}

fn round(v: f64) -> Value {
    if v.is_finite() { json!((v * 10.0).round() / 10.0) } else { Value::Null }
}

pub async fn run(args: SoakArgs) -> Result<std::process::ExitCode> {
    let duration = Duration::from_secs(match (args.minutes, args.seconds) {
        (Some(m), _) => m * 60,
        (None, Some(s)) => s,
        (None, None) => 30 * 60,
    });
    if duration.is_zero() {
        bail!("--minutes / --seconds must be positive");
    }
    if !(args.rate > 0.0 && args.rate <= 10_000.0) {
        bail!("--rate must be between 0 and 10000 operations per second");
    }
    let window = args.window_seconds.max(1) as f64;
    let warmup = args.warmup_seconds.map(|s| s as f64).unwrap_or_else(|| (duration.as_secs_f64() / 5.0).min(300.0));

    let tmp;
    let data = match &args.dir {
        Some(d) => d.clone(),
        None => {
            tmp = tempfile::tempdir()?;
            tmp.path().join("data")
        }
    };
    eprintln!("soak: starting the server in {} (demo, {} rows)", data.display(), args.demo_rows);
    let server = start_server(&data, args.demo_rows).await?;
    let pid = server.child.id();
    let base = server.base.clone();

    // Setup: sessions, the catalog, the data resource.
    let steward = login(&base, "gaj-steward").await?;
    let analyst = login(&base, "wjw-analyst").await?;
    let anon = reqwest::Client::builder().timeout(Duration::from_secs(120)).build()?;
    let list: Value = anon.get(format!("{base}/api/v1/resources?per_page=100")).send().await?.json().await?;
    let items = list["items"].as_array().or_else(|| list.as_array()).cloned().unwrap_or_default();
    let resources: Vec<String> = items.iter().filter_map(|r| r["id"].as_str().map(str::to_string)).collect();
    if resources.is_empty() {
        bail!("the demo catalog is empty: {list}");
    }
    let ctx = Arc::new(Ctx {
        base: base.clone(),
        anon,
        steward,
        analyst,
        resources,
        people: "101/000001".into(),
        pending: Mutex::new(vec![]),
        granted: std::sync::atomic::AtomicBool::new(false),
        seq: std::sync::atomic::AtomicU64::new(0),
    });

    // Memory sampler.
    let rss: Arc<Mutex<Vec<(f64, u64)>>> = Arc::new(Mutex::new(vec![]));
    let start = Instant::now();
    let sample_every = Duration::from_secs_f64((duration.as_secs_f64() / 120.0).clamp(1.0, 10.0));
    let sampler = {
        let rss = rss.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(sample_every);
            loop {
                tick.tick().await;
                if let Some(b) = rss_bytes(pid) {
                    rss.lock().unwrap_or_else(|p| p.into_inner()).push((start.elapsed().as_secs_f64(), b));
                }
            }
        })
    };

    // The open-loop load: operation k at k / rate seconds; an approval follows each request.
    eprintln!(
        "soak: {:.0} s at {} operations/s against pid {pid}, windows of {window:.0} s",
        duration.as_secs_f64(),
        args.rate
    );
    let samples: Arc<Mutex<Vec<Sample>>> = Arc::new(Mutex::new(vec![]));
    let mut tasks = tokio::task::JoinSet::new();
    let mut k: u64 = 0;
    loop {
        let due = Duration::from_secs_f64(k as f64 / args.rate);
        if due >= duration {
            break;
        }
        tokio::time::sleep_until(tokio::time::Instant::from_std(start + due)).await;
        let op = CYCLE[(k % CYCLE.len() as u64) as usize];
        while tasks.try_join_next().is_some() {}
        if tasks.len() >= args.max_in_flight.max(1) {
            let at = start.elapsed().as_secs_f64();
            samples.lock().unwrap_or_else(|p| p.into_inner()).push(Sample { op, at, ms: 0.0, status: 1, ok: false });
            k += 1;
            continue;
        }
        let (ctx, samples) = (ctx.clone(), samples.clone());
        tasks.spawn(async move {
            let ops: &[Op] = if op == Op::Request { &[Op::Request, Op::Approve] } else { &[op] };
            for &op in ops {
                let t = Instant::now();
                let at = start.elapsed().as_secs_f64();
                let (status, ok) = send(&ctx, op, k).await;
                let s = Sample { op, at, ms: t.elapsed().as_secs_f64() * 1e3, status, ok };
                samples.lock().unwrap_or_else(|p| p.into_inner()).push(s);
            }
        });
        while tasks.try_join_next().is_some() {}
        k += 1;
    }
    while tasks.join_next().await.is_some() {}
    let elapsed = start.elapsed().as_secs_f64();
    sampler.abort();
    if let Some(b) = rss_bytes(pid) {
        rss.lock().unwrap_or_else(|p| p.into_inner()).push((elapsed, b));
    }
    let server_alive = rss_bytes(pid).is_some();
    drop(server);

    // Report.
    let samples = std::mem::take(&mut *samples.lock().unwrap_or_else(|p| p.into_inner()));
    let rss = std::mem::take(&mut *rss.lock().unwrap_or_else(|p| p.into_inner()));
    let mut ops: Vec<Op> = samples.iter().map(|s| s.op).collect();
    ops.sort();
    ops.dedup();
    let n_windows = ((duration.as_secs_f64() / window).ceil() as usize).max(1);
    let mut windows = vec![];
    println!("citydata bench soak: {:.0} s, {} operations/s, server pid {pid}", elapsed, args.rate);
    println!(
        "{:<7} {:<13} {:>6} {:>6} {:>9} {:>9} {:>9}",
        "window", "operation", "count", "errors", "p50 ms", "p95 ms", "p99 ms"
    );
    for w in 0..n_windows {
        let (lo, hi) = (w as f64 * window, (w + 1) as f64 * window);
        let mut per_op = serde_json::Map::new();
        for &op in &ops {
            let s: Vec<&Sample> = samples.iter().filter(|s| s.op == op && s.at >= lo && s.at < hi).collect();
            if s.is_empty() {
                continue;
            }
            let st = stats_json(&s);
            print_row(&format!("{}", w + 1), op.name(), &st);
            per_op.insert(op.name().into(), st);
        }
        windows.push(json!({"start_s": lo, "end_s": hi.min(elapsed), "operations": per_op}));
    }
    let mut totals = serde_json::Map::new();
    println!(
        "{:<7} {:<13} {:>6} {:>6} {:>9} {:>9} {:>9}",
        "-------", "-------------", "------", "------", "------", "------", "------"
    );
    for &op in &ops {
        let s: Vec<&Sample> = samples.iter().filter(|s| s.op == op).collect();
        let st = stats_json(&s);
        print_row("all", op.name(), &st);
        totals.insert(op.name().into(), st);
    }
    let mut errors: BTreeMap<(String, u16), usize> = BTreeMap::new();
    for s in samples.iter().filter(|s| !s.ok) {
        *errors.entry((s.op.name().to_string(), s.status)).or_default() += 1;
    }
    let error_count: usize = errors.values().sum();
    println!("错误 / errors: {error_count}");
    for ((op, status), n) in &errors {
        println!("  {op} {}: {n}", status_label(*status));
    }
    let after: Vec<(f64, u64)> = rss.iter().copied().filter(|(t, _)| *t >= warmup).collect();
    let slope = slope_mb_per_10min(&after);
    let judged_span = after.last().map(|l| l.0).unwrap_or(0.0) - after.first().map(|f| f.0).unwrap_or(0.0);
    let min_span = args.slope_min_seconds as f64;
    let judged = slope.is_some() && judged_span >= min_span;
    let mb = |b: u64| b as f64 / 1e6;
    let (first, last, max) = (
        rss.first().map(|r| r.1).unwrap_or(0),
        rss.last().map(|r| r.1).unwrap_or(0),
        rss.iter().map(|r| r.1).max().unwrap_or(0),
    );
    println!(
        "服务器内存 / server RSS: start {:.1} MB, end {:.1} MB, max {:.1} MB, {} samples",
        mb(first),
        mb(last),
        mb(max),
        rss.len()
    );
    match slope {
        Some(s) if judged => println!(
            "  slope after {warmup:.0} s warm-up: {s:+.2} MB / 10 min (limit {:.1}) {}",
            args.max_slope_mb,
            if s <= args.max_slope_mb { "ok" } else { "OVER THE LIMIT" }
        ),
        Some(s) => println!(
            "  slope after {warmup:.0} s warm-up: {s:+.2} MB / 10 min (not judged: {judged_span:.0} s of samples, {min_span:.0} s needed)"
        ),
        None => println!("  slope: too few samples after warm-up"),
    }
    if !server_alive {
        println!("服务器进程已退出 / the server process exited during the run");
    }
    let slope_ok = !judged || slope.is_some_and(|s| s <= args.max_slope_mb);
    let passed = error_count == 0 && slope_ok && server_alive;
    let report = json!({
        "version": env!("CARGO_PKG_VERSION"),
        "build": if cfg!(debug_assertions) { "debug" } else { "release" },
        "duration_s": elapsed,
        "rate_per_s": args.rate,
        "operations_sent": k,
        "window_s": window,
        "warmup_s": warmup,
        "demo_rows": args.demo_rows,
        "windows": windows,
        "totals": totals,
        "errors": errors.iter().map(|((op, status), n)| json!({"operation": op, "status": status, "what": status_label(*status), "count": n})).collect::<Vec<_>>(),
        "error_count": error_count,
        "rss": {
            "samples": rss.iter().map(|(t, b)| json!([(*t * 10.0).round() / 10.0, b])).collect::<Vec<_>>(),
            "start_bytes": first,
            "end_bytes": last,
            "max_bytes": max,
            "slope_mb_per_10min": slope,
            "slope_judged": judged,
            "max_slope_mb_per_10min": args.max_slope_mb,
        },
        "server_alive": server_alive,
        "passed": passed,
    });
    std::fs::write(&args.json, serde_json::to_string_pretty(&report)?)
        .with_context(|| format!("cannot write {}", args.json.display()))?;
    println!("JSON: {}", args.json.display());
    Ok(if passed { std::process::ExitCode::SUCCESS } else { std::process::ExitCode::from(1) })
}

#[cfg(test)]
mod tests {
    #[test]
    fn slope_of_a_line() {
        // 1 MB a minute: 10 MB per 10 minutes.
        let pts: Vec<(f64, u64)> = (0..10).map(|i| (i as f64 * 60.0, 100_000_000 + i * 1_000_000)).collect();
        let s = super::slope_mb_per_10min(&pts).unwrap();
        assert!((s - 10.0).abs() < 1e-9, "{s}");
        let flat: Vec<(f64, u64)> = (0..10).map(|i| (i as f64, 5)).collect();
        assert_eq!(super::slope_mb_per_10min(&flat), Some(0.0));
        assert_eq!(super::slope_mb_per_10min(&flat[..2]), None);
    }
}
