//! `iot_*`: MQTT readings into one governed table (#19), on a real mosquitto.
//!
//! On `serve --demo`, the bench makes a device type for 空气质量实时监测数据 (`203/000001`, the
//! demo's payload), registers 2,000 stations through the bulk import and a stream from
//! `citydata/air/+` with 1-second or 50,000-message batches, all through the API (the broker's
//! loopback address allowed by `webhook_allow_cidrs`). Publishers are MQTT clients in this
//! process (QoS 1).
//!
//! - `iot_throughput`: a burst of messages published as fast as the publishers go, timed from
//!   the first publish until the stream's counters say all are committed. The anchor is the
//!   same burst taken by `mosquitto_sub` into a file and converted to Parquet by DuckDB, timed
//!   the same way (first publish → Parquet written).
//! - `iot_latency`: 20,000 messages a second offered for `CITYDATA_BENCH_IOT_SECS` seconds
//!   (default 120; 600 for the 10-minute run of the issue); a probe station publishes its own
//!   time every 100 ms, and a reader polls `GET /resources/203%2F000001/latest?device=` (the
//!   gated read, anonymous: the resource is open) until the probe's newest reading appears.
//!   The latency of a probe reading is the time from its publish to the first read showing it.
//! - `iot_memory`: the server's resident memory sampled every 5 s over the same run: the medians
//!   of minute 1 (warm-up), minute 2 and the last minute; flat is the last against minute 2.

use super::{Row, Server, pct};
use anyhow::{Context, Result, bail};
use rumqttc::{AsyncClient, MqttOptions, QoS};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const AIR: &str = "203%2F000001";
const PROBE: &str = "BENCH-PROBE";

struct Sizes {
    stations: usize,
    burst: usize,
    rate: usize,
    secs: u64,
}

impl Sizes {
    fn new(quick: bool) -> Self {
        if quick {
            Sizes { stations: 20, burst: 2_000, rate: 1_000, secs: 3 }
        } else {
            let secs = std::env::var("CITYDATA_BENCH_IOT_SECS").ok().and_then(|s| s.parse().ok()).unwrap_or(120);
            Sizes { stations: 2_000, burst: 200_000, rate: 20_000, secs }
        }
    }
}

/// A mosquitto on a free loopback port, killed when dropped.
struct Broker {
    child: Child,
    port: u16,
}

impl Broker {
    fn start(dir: &Path) -> Result<Option<Broker>> {
        let Some(bin) = ["/usr/sbin/mosquitto", "/usr/bin/mosquitto"].into_iter().find(|p| Path::new(p).exists())
        else {
            return Ok(None);
        };
        let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let conf = dir.join("iot-mosquitto.conf");
        // Unlimited in-flight and queued messages: the consumer's own back-pressure decides.
        std::fs::write(
            &conf,
            format!(
                "listener {port} 127.0.0.1\nallow_anonymous true\nmax_inflight_messages 0\nmax_queued_messages 0\nmax_queued_bytes 0\npersistence false\n"
            ),
        )?;
        let child = Command::new(bin).arg("-c").arg(&conf).stdout(Stdio::null()).stderr(Stdio::null()).spawn()?;
        for _ in 0..200 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Ok(Some(Broker { child, port }));
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        bail!("mosquitto did not listen")
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A QoS 1 publisher whose event loop runs in its own task.
async fn publisher(port: u16, name: &str) -> AsyncClient {
    let mut o = MqttOptions::new(name, "127.0.0.1", port);
    o.set_keep_alive(Duration::from_secs(30)).set_inflight(1_000).set_request_channel_capacity(10_000);
    let (client, mut el) = AsyncClient::new(o, 10_000);
    tokio::spawn(async move {
        loop {
            if el.poll().await.is_err() {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    });
    client
}

fn reading(time: &str, n: usize) -> String {
    let pm25 = 20 + n % 60;
    format!(r#"{{"time":"{time}","aqi":{},"pm25":{pm25},"pm10":{}}}"#, pm25 * 3 / 2, pm25 + 20)
}

/// Now, as RFC 3339 with microseconds (a station's readings never share a time).
fn now_text() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

async fn ok(r: reqwest::Response, what: &str) -> Result<Value> {
    let status = r.status();
    let v: Value = r.json().await.unwrap_or_default();
    if !status.is_success() {
        bail!("{what}: {status} {v}");
    }
    Ok(v)
}

/// The stream's counters (this node consumes it).
async fn committed(admin: &reqwest::Client, base: &str, stream: &str) -> Result<u64> {
    let v = ok(admin.get(format!("{base}/api/v1/streams/{stream}")).send().await?, "stream").await?;
    Ok(v["stats"]["committed"].as_u64().unwrap_or(0))
}

async fn until_committed(admin: &reqwest::Client, base: &str, stream: &str, n: u64) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(1_800);
    while committed(admin, base, stream).await? < n {
        if Instant::now() > deadline {
            bail!("the stream did not commit {n} messages in 30 minutes");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}

/// Publish `n` readings round-robin over `stations` with two clients, as fast as they go.
async fn burst(port: u16, stations: &[String], n: usize, tag: &str) -> Result<()> {
    let clients = [publisher(port, &format!("bench-{tag}-a")).await, publisher(port, &format!("bench-{tag}-b")).await];
    let mut tasks = Vec::new();
    for (k, c) in clients.into_iter().enumerate() {
        let stations = stations.to_vec();
        tasks.push(tokio::spawn(async move {
            for i in (k..n).step_by(2) {
                let s = &stations[i % stations.len()];
                c.publish(format!("citydata/air/{s}"), QoS::AtLeastOnce, false, reading(&now_text(), i)).await?;
            }
            anyhow::Ok(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    Ok(())
}

/// The anchor: `mosquitto_sub` takes the burst into a file, DuckDB writes it as Parquet.
async fn anchor(dir: &Path, py: &Path, port: u16, stations: &[String], n: usize) -> Result<f64> {
    let file = dir.join("iot-anchor.jsonl");
    let parquet = dir.join("iot-anchor.parquet");
    let out = std::fs::File::create(&file)?;
    let mut sub = Command::new("mosquitto_sub")
        .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-q", "1", "-t", "citydata/air/#", "-C", &n.to_string()])
        .args(["-i", "bench-anchor"])
        .stdout(out)
        .stderr(Stdio::null())
        .spawn()
        .context("mosquitto_sub (apt-get install mosquitto-clients)")?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let started = Instant::now();
    burst(port, stations, n, "anchor").await?;
    let status = tokio::task::spawn_blocking(move || sub.wait()).await??;
    anyhow::ensure!(status.success(), "mosquitto_sub failed");
    let script = format!(
        "import duckdb\nduckdb.connect().execute(\"COPY (SELECT * FROM read_json_auto('{}', format='newline_delimited')) TO '{}' (FORMAT PARQUET)\")\n",
        file.display(),
        parquet.display()
    );
    let o = Command::new(py).args(["-c", &script]).output()?;
    anyhow::ensure!(o.status.success(), "DuckDB: {}", String::from_utf8_lossy(&o.stderr));
    Ok(started.elapsed().as_secs_f64())
}

/// Resident memory of a process, bytes.
fn rss(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = s.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse::<u64>().ok().map(|kb| kb * 1024)
}

fn median(mut v: Vec<f64>) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

pub(super) async fn rows(dir: &Path, quick: bool, py: Option<PathBuf>) -> Result<Vec<Row>> {
    let sizes = Sizes::new(quick);
    let Some(broker) = Broker::start(dir)? else {
        eprintln!("bench: iot skipped: mosquitto is not installed (apt-get install mosquitto mosquitto-clients)");
        return Ok(vec![]);
    };
    let data = dir.join("iot-data");
    let _ = std::fs::remove_dir_all(&data);
    let url = format!("mqtt://127.0.0.1:{}", broker.port);
    let (server, _) = Server::start_with(&data, &[("CITYDATA__WEBHOOK_ALLOW_CIDRS", "[\"127.0.0.0/8\"]")]).await?;
    let base = server.base.clone();
    let admin = server.login("admin").await?;
    // A device type for 空气质量实时监测数据 (the demo's payload), the stations, and a stream
    // of 1-second or 50,000-message batches, made through the API as a steward would.
    let payload = json!({"device_item": "zdbm", "timestamp_item": "jcsj", "timestamp_path": "time",
        "fields": [{"item": "aqi", "path": "aqi"}, {"item": "pm25", "path": "pm25"}, {"item": "pm10", "path": "pm10"}]});
    let r = admin
        .post(format!("{base}/api/v1/device-types"))
        .json(&json!({"name": "基准空气站", "resource": "203/000001", "payload": payload, "interval_secs": 1}))
        .send()
        .await?;
    let type_id = ok(r, "the device type").await?["id"].as_str().context("device type id")?.to_string();
    let stations: Vec<String> = (0..sizes.stations).map(|i| format!("BENCH-{i:05}")).collect();
    let mut csv = String::from("id,name\n");
    for s in stations.iter().chain([PROBE.to_string()].iter()) {
        csv.push_str(&format!("{s},基准站 {s}\n"));
    }
    let r = admin
        .post(format!("{base}/api/v1/device-types/{type_id}/devices"))
        .header("content-type", "text/csv")
        .body(csv)
        .send()
        .await?;
    ok(r, "importing the stations").await?;
    let r = admin
        .post(format!("{base}/api/v1/streams"))
        .json(&json!({"name": "基准数据流", "resource": "203/000001", "broker_url": url,
            "topics": ["citydata/air/+"], "batch_secs": 1, "batch_max": 50_000}))
        .send()
        .await?;
    let stream = ok(r, "the stream").await?["id"].as_str().context("stream id")?.to_string();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let v = ok(admin.get(format!("{base}/api/v1/streams/{stream}")).send().await?, "stream").await?;
        if v["stats"]["subscriptions"].as_u64().unwrap_or(0) >= 1 {
            break;
        }
        anyhow::ensure!(Instant::now() < deadline, "the stream did not subscribe");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut rows = Vec::new();

    // 1. Throughput: a burst, publish → committed.
    eprintln!("bench: iot_throughput ({} messages over {} stations)", sizes.burst, sizes.stations);
    let started = Instant::now();
    burst(broker.port, &stations, sizes.burst, "burst").await?;
    let published = started.elapsed().as_secs_f64();
    until_committed(&admin, &base, &stream, sizes.burst as u64).await?;
    let secs = started.elapsed().as_secs_f64();
    let ours = sizes.burst as f64 / secs;
    let duck = match &py {
        Some(py) if !quick => match anchor(dir, py, broker.port, &stations, sizes.burst).await {
            Ok(s) => Some(sizes.burst as f64 / s),
            Err(e) => {
                eprintln!("bench: the IoT anchor failed: {e:#}");
                None
            }
        },
        _ => None,
    };
    rows.push(Row {
        name: "iot_throughput",
        ours: format!(
            "{ours:.0} msg/s ({} messages from {} stations committed in {secs:.1} s; published in {published:.1} s)",
            sizes.burst, sizes.stations
        ),
        ours_value: Some(ours),
        anchor: duck.map(|d| ("mosquitto_sub + DuckDB".to_string(), format!("{d:.0} msg/s (file → Parquet)"), d)),
        lower_is_better: false,
        target: "≥ 20,000 msg/s",
        met: Some(ours >= 20_000.0),
    });

    // 2. Sustained rate with probes, and memory.
    eprintln!("bench: iot_latency ({} msg/s for {} s)", sizes.rate, sizes.secs);
    let before = committed(&admin, &base, &stream).await?;
    // Probe readings not yet seen, by time (UTC, microseconds: the text sorts as the time).
    let sent_at: Arc<Mutex<BTreeMap<String, Instant>>> = Arc::default();
    let mut probes = 0usize;
    let latencies: Arc<Mutex<Vec<f64>>> = Arc::default();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let reader = {
        let (sent_at, latencies, stop) = (sent_at.clone(), latencies.clone(), stop.clone());
        let url = format!("{base}/api/v1/resources/{AIR}/latest?device={PROBE}");
        tokio::spawn(async move {
            let c = reqwest::Client::new();
            let mut last = String::new();
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                if let Ok(r) = c.get(&url).send().await
                    && let Ok(v) = r.json::<Value>().await
                    && let Some(t) = v["rows"][0]["jcsj"].as_str()
                    && t != last
                {
                    last = t.to_string();
                    let seen = Instant::now();
                    // The table shows the time in its own form: compare instants. The newest
                    // probe reading is readable, so are the earlier ones (the probe publishes
                    // in order and batches commit in order): each is seen now.
                    if let Ok(at) = chrono::DateTime::parse_from_rfc3339(t) {
                        let key = at.with_timezone(&chrono::Utc).to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
                        let mut sent = sent_at.lock().unwrap_or_else(|e| e.into_inner());
                        let later = sent.split_off(&format!("{key}\u{10FFFF}"));
                        let now_seen = std::mem::replace(&mut *sent, later);
                        let mut l = latencies.lock().unwrap_or_else(|e| e.into_inner());
                        l.extend(now_seen.values().map(|p| (seen - *p).as_secs_f64()));
                    }
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
    };
    let pid = server.pid();
    let samples: Arc<Mutex<Vec<(f64, u64)>>> = Arc::default();
    let sampler = {
        let (samples, stop) = (samples.clone(), stop.clone());
        tokio::spawn(async move {
            let t0 = Instant::now();
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                if let Some(b) = rss(pid) {
                    samples.lock().unwrap_or_else(|e| e.into_inner()).push((t0.elapsed().as_secs_f64(), b));
                }
                tokio::time::sleep(Duration::from_secs(5)).await;
            }
        })
    };
    let clients = [publisher(broker.port, "bench-rate-a").await, publisher(broker.port, "bench-rate-b").await];
    let probe = publisher(broker.port, "bench-probe").await;
    let tick = Duration::from_millis(10);
    let per_tick = (sizes.rate / 100).max(1);
    let ticks = sizes.secs * 100;
    let mut i = 0usize;
    let mut interval = tokio::time::interval(tick);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut sent = 0u64;
    for t in 0..ticks {
        interval.tick().await;
        for _ in 0..per_tick {
            let s = &stations[i % stations.len()];
            clients[i % 2]
                .publish(format!("citydata/air/{s}"), QoS::AtLeastOnce, false, reading(&now_text(), i))
                .await?;
            i += 1;
            sent += 1;
        }
        if t % 10 == 0 {
            let now = now_text();
            sent_at.lock().unwrap_or_else(|e| e.into_inner()).insert(now.clone(), Instant::now());
            probes += 1;
            probe.publish(format!("citydata/air/{PROBE}"), QoS::AtLeastOnce, false, reading(&now, 0)).await?;
            sent += 1;
        }
    }
    let offered_for = sizes.secs as f64;
    until_committed(&admin, &base, &stream, before + sent).await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let _ = reader.await;
    let _ = sampler.await;
    let mut lat = latencies.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let (p50, p99) = if lat.is_empty() { (f64::NAN, f64::NAN) } else { (pct(&mut lat, 0.5), pct(&mut lat, 0.99)) };
    rows.push(Row {
        name: "iot_latency",
        ours: format!(
            "p99 {p99:.2} s, p50 {p50:.2} s publish → `latest` ({} of {probes} probe readings seen; {} msg/s offered for {offered_for:.0} s, 1-s batches)",
            lat.len(),
            sizes.rate
        ),
        ours_value: Some(p99),
        anchor: None,
        lower_is_better: true,
        target: "p99 < 3 s",
        met: Some(!lat.is_empty() && p99 < 3.0),
    });
    let samples = samples.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let window = |from: f64, to: f64| {
        median(samples.iter().filter(|(t, _)| *t >= from && *t <= to).map(|(_, b)| *b as f64 / 1048576.0).collect())
    };
    let end = samples.last().map(|(t, _)| *t).unwrap_or(0.0);
    // Minute 1 is the warm-up (the dedup window, caches and the first checkpoints fill);
    // flat means the last minute against minute 2.
    let first = window(0.0, 60.0_f64.min(end / 3.0));
    let warm = window(60.0_f64.min(end / 3.0), 120.0_f64.min(2.0 * end / 3.0));
    let last = window((end - 60.0).max(2.0 * end / 3.0), end);
    let ten_minutes = offered_for >= 600.0;
    rows.push(Row {
        name: "iot_memory",
        ours: format!(
            "RSS median {first:.0} MB in minute 1 (warm-up), {warm:.0} MB in minute 2, {last:.0} MB in the last ({offered_for:.0} s at {} msg/s{})",
            sizes.rate,
            if ten_minutes { "" } else { "; the 10-minute run is CITYDATA_BENCH_IOT_SECS=600" }
        ),
        ours_value: Some(last),
        anchor: None,
        lower_is_better: true,
        target: "flat over 10 minutes (last minute ≤ minute 2 + 10%)",
        met: ten_minutes.then_some(last <= warm * 1.1),
    });
    drop(server);
    drop(broker);
    Ok(rows)
}
