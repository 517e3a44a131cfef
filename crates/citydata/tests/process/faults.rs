//! SIGTERM with requests in flight, against the real `citydata serve` process: an upload in
//! flight finishes and commits, new connections are refused after the signal, and the process
//! exits 0 when the drain is done — or when `shutdown_grace_secs` runs out, leaving an upload
//! that never finished uncommitted. Also `citydata lake check`.

use super::support::{free_port, wait_until_up};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn citydata(data_dir: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_citydata"));
    c.arg("--data-dir").arg(data_dir);
    c.env_remove("CITYDATA__DATABASE_URL").current_dir(data_dir);
    c
}

/// `serve --demo` without data rows, with the given grace period.
fn serve(d: &Path, port: u16, grace_secs: u64) -> Child {
    let mut child = citydata(d)
        .args(["serve", "--demo", "--listen", &format!("127.0.0.1:{port}")])
        .env("CITYDATA__DEMO_ROWS", "0")
        .env("CITYDATA__SHUTDOWN_GRACE_SECS", grace_secs.to_string())
        .stdout(Stdio::null())
        // Every start appends its log here, so that a failed exit can say why.
        .stderr(std::fs::OpenOptions::new().create(true).append(true).open(server_log(d)).unwrap())
        .spawn()
        .unwrap();
    wait_until_up(port, &mut child);
    child
}

/// Where the servers of a test write their stderr.
fn server_log(d: &Path) -> std::path::PathBuf {
    d.join("server.log")
}

/// The servers' stderr so far, for a failure message.
fn log_of(d: &Path) -> String {
    std::fs::read_to_string(server_log(d)).unwrap_or_default()
}

fn sigterm(child: &Child) {
    assert!(Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap().success());
}

/// Wait for the process to exit; its status and how long it took.
fn wait_exit(child: &mut Child, limit: Duration) -> (std::process::ExitStatus, Duration) {
    let started = Instant::now();
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return (s, started.elapsed());
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            panic!("the server did not exit within {limit:?} of SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The people register as CSV lines (header first).
fn people(rows: u64) -> Vec<String> {
    let mut out = Vec::new();
    citydata_core::demo::generate::generate_listing(
        citydata_core::demo::generate::Register::Population,
        rows,
        0.0,
        7,
        false,
        &mut out,
    )
    .unwrap();
    String::from_utf8(out).unwrap().lines().map(|l| format!("{l}\n")).collect()
}

async fn steward(base: &str) -> reqwest::Client {
    let c = reqwest::Client::builder().cookie_store(true).build().unwrap();
    let r = c
        .post(format!("{base}/api/v1/auth/login"))
        .json(&serde_json::json!({"username": "gaj-steward", "password": "citydata-demo"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    c
}

/// Start a streamed upload whose body the test feeds through the returned sender.
type BodySender = tokio::sync::mpsc::Sender<Result<String, std::io::Error>>;
type Answer = tokio::task::JoinHandle<Result<(u16, String), reqwest::Error>>;

fn slow_upload(c: &reqwest::Client, base: &str) -> (BodySender, Answer) {
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<String, std::io::Error>>(4);
    let body = reqwest::Body::wrap_stream(tokio_stream(rx));
    let req = c.post(format!("{base}/api/v1/resources/101%2F000001/data?mode=append")).body(body);
    let h = tokio::spawn(async move {
        let r = req.send().await?;
        let status = r.status().as_u16();
        Ok((status, r.text().await?))
    });
    (tx, h)
}

fn tokio_stream(
    mut rx: tokio::sync::mpsc::Receiver<Result<String, std::io::Error>>,
) -> impl futures::Stream<Item = Result<String, std::io::Error>> {
    futures::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

/// (version, rows) of the people table, read from the lake directly.
fn table_state(d: &Path) -> (Option<i64>, u64) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let url = format!("sqlite://{}", d.join("citydata.db").display());
        let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
        let id: String =
            sqlx::query_scalar("SELECT id FROM resources WHERE code = '101/000001'").fetch_one(&pool).await.unwrap();
        pool.close().await;
        let lake = citydata_lake::table::Lake::new(d.join("lake").to_str().unwrap()).unwrap();
        let id = id.parse().unwrap();
        let v = lake.version(id).await.unwrap();
        if v.is_none() {
            return (None, 0);
        }
        let b = lake.query(id, None, "SELECT count(*) FROM t").await.unwrap();
        let n = arrow::util::display::array_value_to_string(b[0].column(0), 0).unwrap();
        (v, n.parse().unwrap())
    })
}

#[test]
fn sigterm_lets_an_upload_in_flight_finish_and_refuses_new_connections() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let port = free_port();
    let mut child = serve(d, port, 20);
    let base = format!("http://127.0.0.1:{port}");
    let lines = people(3_000);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let signalled_at = rt.block_on(async {
        let c = steward(&base).await;
        let (tx, upload) = slow_upload(&c, &base);
        // A first part of the file, then the signal, then the rest over two seconds.
        let (first, rest) = lines.split_at(500);
        tx.send(Ok(first.concat())).await.unwrap();
        tokio::time::sleep(Duration::from_millis(500)).await;
        sigterm(&child);
        let signalled_at = Instant::now();
        // New connections are refused soon after the signal (the listener is closed).
        let refused = loop {
            match tokio::net::TcpStream::connect(("127.0.0.1", port)).await {
                Err(_) => break true,
                Ok(_) if signalled_at.elapsed() > Duration::from_secs(3) => break false,
                Ok(_) => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        };
        assert!(refused, "a new connection was still accepted 3 s after SIGTERM");
        for chunk in rest.chunks(250) {
            tx.send(Ok(chunk.concat())).await.unwrap();
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        drop(tx);
        let (status, body) = upload.await.unwrap().expect("the upload in flight gets its answer");
        assert_eq!(status, 201, "{body}");
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["report"]["rows_committed"], 3_000, "{v}");
        signalled_at
    });
    let (status, _) = wait_exit(&mut child, Duration::from_secs(20));
    assert!(status.success(), "exit status after a clean drain: {status}");
    let took = signalled_at.elapsed();
    assert!(took < Duration::from_secs(20), "exited within the grace period: {took:?}");
    assert_eq!(table_state(d), (Some(0), 3_000), "the drained upload committed");
}

#[test]
fn sigterm_exits_when_the_grace_period_ends_and_leaves_the_table_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let port = free_port();
    let mut child = serve(d, port, 2);
    let base = format!("http://127.0.0.1:{port}");
    let lines = people(1_000);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (tx, upload) = rt.block_on(async {
        let c = steward(&base).await;
        let (tx, upload) = slow_upload(&c, &base);
        // Half a file, then the client stalls and never finishes.
        tx.send(Ok(lines[..500].concat())).await.unwrap();
        tokio::time::sleep(Duration::from_millis(500)).await;
        (tx, upload)
    });
    sigterm(&child);
    let (status, took) = wait_exit(&mut child, Duration::from_secs(15));
    assert!(status.success(), "exit status when the grace period ends: {status}; log:\n{}", log_of(d));
    assert!(took >= Duration::from_millis(1900), "the stalled upload had its grace period: {took:?}");
    assert!(took < Duration::from_secs(8), "exited soon after the 2 s grace period: {took:?}");
    rt.block_on(async {
        drop(tx);
        let r = upload.await.unwrap();
        assert!(r.is_err() || r.as_ref().is_ok_and(|(s, _)| *s >= 500), "the cut-off upload did not succeed: {r:?}");
    });
    // Never committed: the table has no version, and the server starts again on the same data.
    assert_eq!(table_state(d), (None, 0));
    let mut child = serve(d, port, 2);
    sigterm(&child);
    let (status, _) = wait_exit(&mut child, Duration::from_secs(15));
    assert!(status.success(), "the restarted server exited with {status}; its log:\n{}", log_of(d));
}

#[test]
fn lake_check_reports_each_broken_table_and_exits_non_zero() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let port = free_port();
    let mut child = serve(d, port, 5);
    sigterm(&child);
    wait_exit(&mut child, Duration::from_secs(20));
    // Two tables with data, through the command line.
    for (code, register) in [("101/000001", "population"), ("102/000001", "enterprise")] {
        let file = format!("{register}.csv");
        let o = citydata(d)
            .args(["demo", "generate", register, "--rows", "200", "--out", &file, "--defects", "0"])
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let o = citydata(d).args(["ingest", &file, "--resource", code]).output().unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    let check = |args: &[&str]| {
        let o = citydata(d).args(["lake", "check"]).args(args).output().unwrap();
        (o.status.code(), String::from_utf8_lossy(&o.stdout).to_string())
    };
    let (code, out) = check(&[]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("ok      101/000001 人口基础信息") && out.contains("all 34 tables are readable"), "{out}");

    // Break both: one data file removed, one truncated.
    let ids = |c: &str| {
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(async {
            let url = format!("sqlite://{}", d.join("citydata.db").display());
            let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
            let id: String =
                sqlx::query_scalar("SELECT id FROM resources WHERE code = ?").bind(c).fetch_one(&pool).await.unwrap();
            pool.close().await;
            id
        })
    };
    let parquet = |c: &str| -> Vec<std::path::PathBuf> {
        std::fs::read_dir(d.join("lake/tables").join(ids(c)))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "parquet"))
            .collect()
    };
    let pop = parquet("101/000001");
    let ent = parquet("102/000001");
    assert!(!pop.is_empty() && !ent.is_empty());
    std::fs::remove_file(&pop[0]).unwrap();
    let f = std::fs::OpenOptions::new().write(true).open(&ent[0]).unwrap();
    f.set_len(f.metadata().unwrap().len() / 2).unwrap();
    drop(f);

    let (code, out) = check(&[]);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("PROBLEM 101/000001 人口基础信息"), "{out}");
    assert!(out.contains("file_missing"), "{out}");
    assert!(out.contains("PROBLEM 102/000001 企业登记信息"), "{out}");
    assert!(out.contains("size_mismatch"), "{out}");
    assert!(out.contains("2 of 34 tables have problems"), "{out}");
    // One resource at a time, by code.
    let (code, out) = check(&["101/000001"]);
    assert_eq!(code, Some(1), "{out}");
    assert!(!out.contains("102/000001"), "{out}");
    let (code, out) = check(&["101/000002"]);
    assert_eq!(code, Some(0), "a table without data is fine: {out}");
}
