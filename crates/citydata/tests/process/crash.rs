//! A server killed with SIGKILL in the middle of an ingest recovers by itself (issue #14): the
//! table stays at a committed version holding the old or the new rows, never a mix; the
//! interrupted ingest is settled when the node comes back (nothing stays `running`); a retry
//! with the same Idempotency-Key lands exactly once; the audit chain verifies. Kill points:
//! while the upload is being sent, at random moments while it is converted and committed, and
//! exactly after the record is written and after the Delta commit (`CITYDATA_CRASH_AT`).
//! Runs on SQLite, and on PostgreSQL when `CITYDATA_TEST_DATABASE_URL` is set.
//! `CITYDATA_CRASH_ROWS` / `CITYDATA_CRASH_ROUNDS` make it larger (see BENCHMARKS.md).

use super::support::free_port;
use serde_json::{Value, json};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const POP: &str = "101%2F000001";

fn citydata(data_dir: &Path, db: &str) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_citydata"));
    c.arg("--data-dir").arg(data_dir).current_dir(data_dir);
    c.env("CITYDATA__DATABASE_URL", db).env_remove("CITYDATA_CRASH_AT");
    c
}

/// A server on `port` with a short ingest lease; `crash_at` aborts it at a named point.
fn start(d: &Path, db: &str, port: u16, demo: bool, crash_at: Option<&str>) -> Child {
    let mut c = citydata(d, db);
    c.args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .env("CITYDATA__DEMO", if demo { "true" } else { "false" })
        .env("CITYDATA__DEMO_ROWS", "0")
        .env("CITYDATA__INGEST_LEASE_SECS", "2")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    if let Some(p) = crash_at {
        c.env("CITYDATA_CRASH_AT", p);
    }
    let mut child = c.spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return child;
        }
        if let Some(s) = child.try_wait().unwrap() {
            panic!("server exited early: {s}");
        }
        assert!(Instant::now() < deadline, "server did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn kill9(child: &mut Child) {
    let _ = Command::new("kill").args(["-KILL", &child.id().to_string()]).status();
    let _ = child.wait();
}

fn stop(child: &mut Child) {
    Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    child.wait().unwrap();
}

struct Api {
    base: String,
    client: reqwest::Client,
}

impl Api {
    async fn login(port: u16) -> Self {
        let base = format!("http://127.0.0.1:{port}");
        let client = reqwest::Client::builder().cookie_store(true).build().unwrap();
        let r = client
            .post(format!("{base}/api/v1/auth/login"))
            .json(&json!({"username": "gaj-steward", "password": citydata_testkit::DEMO_PASSWORD}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        Self { base, client }
    }

    fn upload(&self, key: &str, body: Vec<u8>) -> reqwest::RequestBuilder {
        self.client
            .post(format!("{}/api/v1/resources/{POP}/data?mode=replace", self.base))
            .header("Idempotency-Key", key)
            .body(body)
    }

    async fn get(&self, path: &str) -> Value {
        let r = self.client.get(format!("{}{path}", self.base)).send().await.unwrap();
        assert!(r.status().is_success(), "{path}: {}", r.status());
        r.json().await.unwrap()
    }

    /// (table version, row count, distinct 身份证号) through the API.
    async fn table(&self) -> (i64, u64, u64) {
        let versions = self.get(&format!("/api/v1/resources/{POP}/versions")).await;
        let version = versions[0]["version"].as_i64().expect("a committed version");
        let sql = json!({"sql": "SELECT count(*) AS n, count(DISTINCT sfzh) AS k FROM \"101/000001\""});
        let r = self.client.post(format!("{}/api/v1/sql", self.base)).json(&sql).send().await.unwrap();
        let status = r.status();
        let v: Value = r.json().await.unwrap();
        assert!(status.is_success(), "sql: {v}");
        let row = &v["rows"][0];
        let n = row["n"].as_u64().or_else(|| row[0].as_u64()).unwrap_or_else(|| panic!("{v}"));
        let k = row["k"].as_u64().or_else(|| row[1].as_u64()).unwrap_or_else(|| panic!("{v}"));
        (version, n, k)
    }

    async fn ingests(&self) -> Vec<Value> {
        self.get(&format!("/api/v1/resources/{POP}/ingests")).await.as_array().cloned().unwrap_or_default()
    }
}

fn generate(d: &Path, db: &str, rows: u64, out: &str, seed: u64) -> Vec<u8> {
    let o = citydata(d, db)
        .args(["demo", "generate", "population", "--rows", &rows.to_string(), "--out", out, "--defects", "0"])
        .args(["--seed", &seed.to_string()])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    std::fs::read(d.join(out)).unwrap()
}

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// A pseudo-random number from the clock (the kill moments vary from run to run; the seed is
/// printed so that a failing run can be told apart).
fn jitter(max: u64) -> u64 {
    let n = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos() as u64;
    if max == 0 { 0 } else { n.wrapping_mul(6364136223846793005).rotate_left(17) % max }
}

#[test]
fn a_server_killed_mid_ingest_recovers_and_the_retry_lands_once() {
    let rows = env_u64("CITYDATA_CRASH_ROWS", 30_000);
    let rounds = env_u64("CITYDATA_CRASH_ROUNDS", 1);
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let db = rt.block_on(citydata_testkit::fresh_database_url(d));
    if std::env::var("CI").is_ok_and(|v| v == "true") && std::env::var("CITYDATA_TEST_DATABASE_URL").is_ok() {
        assert!(db.starts_with("postgres"), "CITYDATA_TEST_DATABASE_URL is set: the crash test runs on PostgreSQL");
    }
    let port = free_port();
    // Two different files of different sizes: any mix of the two is told apart by its counts.
    let small = generate(d, &db, 2_000, "old.csv", 1);
    let big = generate(d, &db, rows, "new.csv", 2);
    let old = (2_000u64, 2_000u64);
    let new = (rows, rows);

    let mut server = start(d, &db, port, true, None);
    let (mut version, first) = rt.block_on(async {
        let api = Api::login(port).await;
        let r = api.upload("seed", small.clone()).send().await.unwrap();
        assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
        let (v, n, k) = api.table().await;
        assert_eq!((n, k), old);
        // How long a whole ingest of the big file takes here: the random kills fall within it.
        let started = Instant::now();
        let r = api.upload("timing", big.clone()).send().await.unwrap();
        assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
        let took = started.elapsed();
        let r = api.upload("seed-again", small.clone()).send().await.unwrap();
        assert_eq!(r.status(), 201);
        let (v2, n, _) = api.table().await;
        assert_eq!((v2, n), (v + 2, 2_000));
        (v2, took)
    });
    eprintln!("one ingest of {rows} rows takes {first:?}");

    // (name, crash point, kill after): the deterministic points first, then random moments.
    let mut plan: Vec<(String, Option<&str>, Duration)> = vec![
        ("after the record is written".into(), Some("ingest.started"), Duration::ZERO),
        ("after the Delta commit, before the metadata write".into(), Some("ingest.committed"), Duration::ZERO),
        ("while the upload is sent".into(), None, Duration::from_millis(jitter(30))),
    ];
    for i in 0..rounds.max(1) {
        let ms = first.as_millis() as u64;
        plan.push((format!("at random {i} (conversion or commit)"), None, Duration::from_millis(ms / 5 + jitter(ms))));
    }
    let mut committed_by_the_killed = 0;
    for (round, (what, crash_at, after)) in plan.iter().enumerate() {
        let key = format!("crash-{round}");
        if crash_at.is_some() {
            stop(&mut server);
            server = start(d, &db, port, false, *crash_at);
        }
        eprintln!("round {round}: kill {what} (after {after:?})");
        let sent = rt.block_on(async {
            let api = Api::login(port).await;
            let req = api.upload(&key, big.clone());
            let call = tokio::spawn(async move { req.send().await.map(|r| r.status().as_u16()) });
            if crash_at.is_none() {
                tokio::time::sleep(*after).await;
                kill9(&mut server);
            }
            call.await.unwrap()
        });
        // A crash point aborts the server itself; a random kill may come after the reply.
        if crash_at.is_some() {
            let deadline = Instant::now() + Duration::from_secs(60);
            while server.try_wait().unwrap().is_none() {
                assert!(Instant::now() < deadline, "the server did not stop at {crash_at:?}");
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        eprintln!("round {round}: the client saw {sent:?}");

        server = start(d, &db, port, false, None);
        rt.block_on(async {
            let api = Api::login(port).await;
            // The restarted node settled its own leftovers at start: nothing is running.
            let ingests = api.ingests().await;
            let running: Vec<_> = ingests.iter().filter(|i| i["state"] == "running").collect();
            assert!(running.is_empty(), "round {round}: still running after the restart: {running:?}");
            let mine = ingests.iter().find(|i| i["idempotency_key"] == key.as_str());
            // The table holds the old or the new rows, never a mix, at a committed version.
            let (v, n, k) = api.table().await;
            let landed = (n, k) == new;
            assert!((n, k) == old || landed, "round {round}: a mix of old and new rows: {n} rows, {k} keys");
            assert!(v == version || v == version + 1, "round {round}: version {v} after {version}");
            assert_eq!(landed, v == version + 1, "round {round}: a new version without the new rows");
            if let Some(m) = mine {
                let state = m["state"].as_str().unwrap();
                assert!(state == "committed" || state == "interrupted", "round {round}: {m}");
                assert_eq!(state == "committed", landed, "round {round}: the record disagrees with the table: {m}");
            } else {
                assert!(!landed, "round {round}: rows landed without a record");
            }
            // The retry with the same key lands exactly once.
            let r = api.upload(&key, big.clone()).send().await.unwrap();
            let status = r.status().as_u16();
            let body: Value = r.json().await.unwrap();
            assert!(status == 200 || status == 201, "round {round}: retry {status}: {body}");
            assert_eq!(body["state"], "committed", "round {round}: {body}");
            assert_eq!(status == 200, landed, "round {round}: a replay exactly when the first attempt landed: {body}");
            let (v2, n2, k2) = api.table().await;
            assert_eq!((n2, k2), new, "round {round}");
            assert_eq!(v2, version + 1, "round {round}: the rows landed once, in one version");
            if landed {
                committed_by_the_killed += 1;
            }
            // A retry with the same key but another body is refused, never replayed.
            let r = api.upload(&key, small.clone()).send().await.unwrap();
            assert_eq!(r.status(), 422, "round {round}");
            let e: Value = r.json().await.unwrap();
            assert_eq!(e["error"]["code"], "idempotency_key_reused");
            // Back to the old rows for the next round.
            let r = api.upload(&format!("reset-{round}"), small.clone()).send().await.unwrap();
            assert_eq!(r.status(), 201);
            let (v3, n3, _) = api.table().await;
            assert_eq!(n3, 2_000);
            version = v3;
        });
    }
    eprintln!("{committed_by_the_killed} of {} killed ingests had committed before the kill", plan.len());
    stop(&mut server);
    // The audit chain verifies after all of it.
    let o = citydata(d, &db).args(["audit", "verify"]).output().unwrap();
    assert!(o.status.success(), "{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
}

/// A running ingest of a node that died (its lease ended) is settled by another node, without
/// a restart of the first: nothing stays `running` longer than the lease.
#[test]
fn another_node_settles_an_ingest_whose_lease_ended() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let db = rt.block_on(citydata_testkit::fresh_database_url(d));
    let big = generate(d, &db, 20_000, "new.csv", 3);
    let port = free_port();
    let mut seed = start(d, &db, port, true, None);
    stop(&mut seed);
    // Node A dies right after writing its record; node B (another data directory, the same
    // database and lake) settles it once the lease has ended.
    let mut a = start(d, &db, port, false, Some("ingest.started"));
    rt.block_on(async {
        let api = Api::login(port).await;
        let _ = api.upload("lost", big.clone()).send().await;
    });
    let _ = a.wait();
    let b_dir = tempfile::tempdir().unwrap();
    let port_b = free_port();
    let mut b = citydata(b_dir.path(), &db);
    let mut b = b
        .args(["serve", "--listen", &format!("127.0.0.1:{port_b}")])
        .env("CITYDATA__LAKE_URL", d.join("lake"))
        .env("CITYDATA__AUDIT_KEY_FILE", d.join("audit.key"))
        .env("CITYDATA__INGEST_LEASE_SECS", "2")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while std::net::TcpStream::connect(("127.0.0.1", port_b)).is_err() {
        assert!(Instant::now() < deadline && b.try_wait().unwrap().is_none(), "node B did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    rt.block_on(async {
        let api = Api::login(port_b).await;
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let ingests = api.ingests().await;
            let lost = ingests.iter().find(|i| i["idempotency_key"] == "lost").expect("the record");
            if lost["state"] == "interrupted" {
                break;
            }
            assert_eq!(lost["state"], "running");
            assert!(Instant::now() < deadline, "not settled within the lease: {lost}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        // The spooled upload is gone with it, and the retry runs again.
        let r = api.upload("lost", big.clone()).send().await.unwrap();
        assert_eq!(r.status(), 201);
    });
    stop(&mut b);
}
