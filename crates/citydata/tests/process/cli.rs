//! The `citydata` binary as an operator uses it: init, departments, users, tokens, config,
//! serve with graceful shutdown, and audit verify catching an edited entry.

use super::support::{free_port, wait_until_up};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn citydata(data_dir: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_citydata"));
    c.arg("--data-dir").arg(data_dir);
    // Isolate from the developer's environment and any ./citydata.toml.
    c.env_remove("CITYDATA__DATABASE_URL").current_dir(data_dir);
    c
}

fn run(cmd: &mut Command) -> Output {
    cmd.output().expect("run citydata")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).to_string()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

#[test]
fn operator_commands_and_audit_verify() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();

    let o = run(citydata(d).args(["init"]).env("CITYDATA_ADMIN_PASSWORD", "first-admin-pw"));
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("admin"));
    assert!(
        !stdout(&o).contains("first-admin-pw") && !stderr(&o).contains("first-admin-pw"),
        "the password is never echoed"
    );

    let o = run(citydata(d).args(["dept", "add", "--code", "gaj", "--name", "泰州市公安局", "--region", "321200"]));
    assert!(o.status.success(), "{}", stderr(&o));
    let o = run(citydata(d).args(["dept", "add", "--code", "bad code", "--name", "X", "--region", "12"]));
    assert!(!o.status.success());
    assert!(stderr(&o).contains("region_code") && stderr(&o).contains("code"), "{}", stderr(&o));
    let o = run(citydata(d).args(["dept", "list"]));
    assert!(stdout(&o).contains("gaj\t泰州市公安局\t321200\tcity"), "{}", stdout(&o));

    let o = run(citydata(d)
        .args([
            "user",
            "add",
            "--username",
            "gaj-steward",
            "--display-name",
            "管理员",
            "--department",
            "gaj",
            "--role",
            "steward",
        ])
        .env("CITYDATA_USER_PASSWORD", "steward-pw-1"));
    assert!(o.status.success(), "{}", stderr(&o));
    let o = run(citydata(d).args(["user", "list"]));
    assert!(stdout(&o).contains("gaj-steward") && stdout(&o).contains("gaj:steward"), "{}", stdout(&o));

    let o = run(citydata(d).args(["token", "create", "--user", "gaj-steward", "--name", "etl", "--expires", "90d"]));
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).trim().starts_with("cd_"), "{}", stdout(&o));
    let o = run(citydata(d).args(["token", "create", "--user", "nobody", "--name", "etl"]));
    assert!(!o.status.success());
    // Scoped: the least a reading job needs; a bad scope is named.
    let o = run(citydata(d).args([
        "token",
        "create",
        "--user",
        "gaj-steward",
        "--name",
        "reader",
        "--scopes",
        "catalog:read,data:read",
        "--expires-in-days",
        "30",
    ]));
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).trim().starts_with("cd_"), "{}", stdout(&o));
    let o = run(citydata(d).args(["token", "create", "--user", "gaj-steward", "--name", "x", "--scopes", "data:rd"]));
    assert!(!o.status.success());
    assert!(stderr(&o).contains("scopes[0]"), "{}", stderr(&o));
    let o =
        run(citydata(d).args(["token", "create", "--user", "gaj-steward", "--name", "x", "--resource", "999/999999"]));
    assert!(!o.status.success());
    assert!(stderr(&o).contains("resources[0]"), "{}", stderr(&o));

    let o = run(citydata(d).args(["config", "show"]));
    let secret = std::fs::read_to_string(d.join("secret_key")).unwrap();
    assert!(stdout(&o).contains("secret_key = \"<redacted>\""), "{}", stdout(&o));
    assert!(!stdout(&o).contains(secret.trim()));
    let o = run(citydata(d).args(["config", "show"]).env("CITYDATA__LISTEN", "127.0.0.1:9999"));
    assert!(stdout(&o).contains("listen = \"127.0.0.1:9999\""), "environment layer: {}", stdout(&o));

    let o = run(citydata(d).args(["audit", "verify"]));
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    assert!(stdout(&o).contains("intact"));

    // Edit one audit row directly in the SQLite file: verify exits 1 and names the entry.
    let db = d.join("citydata.db");
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", db.display())).await.unwrap();
        sqlx::query("UPDATE audit_log SET target = 'department:forged' WHERE seq = 2").execute(&pool).await.unwrap();
        pool.close().await;
    });
    let o = run(citydata(d).args(["audit", "verify"]));
    assert_eq!(o.status.code(), Some(1));
    assert!(stdout(&o).contains("#2"), "{}", stdout(&o));

    // The attacker re-hashes the chain after the edit and deletes the checkpoint rows: the
    // bare chain agrees again, the signed checkpoint in the file beside audit.key does not.
    let url = format!("sqlite://{}", db.display());
    rt.block_on(async {
        let store = citydata_server::open_store(&url).await.unwrap();
        let all = store.audit_after(0, 100_000).await.unwrap();
        let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
        let mut prev = all[0].hash.clone();
        for e in &all[1..] {
            let hash = citydata_domain::audit::chain_hash(&prev, e.seq, &e.event);
            sqlx::query("UPDATE audit_log SET prev_hash = ?, hash = ? WHERE seq = ?")
                .bind(&prev)
                .bind(&hash)
                .bind(e.seq)
                .execute(&pool)
                .await
                .unwrap();
            prev = hash;
        }
        sqlx::query("UPDATE audit_head SET hash = ? WHERE id = 1").bind(&prev).execute(&pool).await.unwrap();
        sqlx::query("DELETE FROM audit_checkpoints").execute(&pool).await.unwrap();
        pool.close().await;
        assert!(citydata_core::audit::verify_chain(&*store, None).await.unwrap().ok, "the bare chain is fooled");
        store.close().await;
    });
    let o = run(citydata(d).args(["audit", "verify"]));
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    assert!(stdout(&o).contains("rewritten"), "{}", stdout(&o));
    assert!(d.join("audit.key").exists() && d.join("audit-checkpoints.jsonl").exists());
}

#[test]
fn serve_demo_answers_and_stops_gracefully_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let port = free_port();
    let mut child = citydata(d)
        .args(["serve", "--demo", "--listen", &format!("127.0.0.1:{port}")])
        .env("CITYDATA__DEMO_ROWS", "2000")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_until_up(port, &mut child);
    let mut banner = String::new();
    let mut reader = BufReader::new(child.stdout.take().unwrap());
    for _ in 0..7 {
        reader.read_line(&mut banner).unwrap();
    }
    assert!(banner.contains(&format!("http://127.0.0.1:{port}")), "{banner}");
    assert!(banner.contains("wjw-analyst"), "the demo logins are printed: {banner}");

    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let base = format!("http://127.0.0.1:{port}");
        let c = reqwest::Client::builder().cookie_store(true).build().unwrap();
        assert_eq!(c.get(format!("{base}/healthz")).send().await.unwrap().status(), 200);
        assert_eq!(c.get(format!("{base}/readyz")).send().await.unwrap().status(), 200);
        let r = c
            .post(format!("{base}/api/v1/auth/login"))
            .json(&serde_json::json!({"username": "admin", "password": "citydata-demo"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    });

    let status = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(20);
    let exit = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "server did not stop on SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(exit.success(), "graceful shutdown exits 0: {exit}");

    // Restarting the demo is idempotent, and the chain written so far verifies.
    let o = run(citydata(d).args(["audit", "verify"]));
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));

    // A damaged search index is rebuilt by `search reindex` from the database.
    std::fs::write(d.join("search").join("meta.json"), "{ damaged").unwrap();
    let o = run(citydata(d).args(["search", "reindex"]));
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("34 resources"), "{}", stdout(&o));

    // The catalog exports to a workbook and a CSV from the command line.
    let o = run(citydata(d).args(["catalog", "export", "--out", "catalog.xlsx"]));
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(std::fs::read(d.join("catalog.xlsx")).unwrap().starts_with(b"PK"));
    let o = run(citydata(d).args(["catalog", "export", "--out", "catalog.csv"]));
    assert!(o.status.success());
    let csv = std::fs::read_to_string(d.join("catalog.csv")).unwrap();
    assert!(csv.contains("人口基础信息") && csv.contains("信息资源代码"));

    // A second start with a damaged index rebuilds it and search answers.
    std::fs::write(d.join("search").join("meta.json"), "{ damaged").unwrap();
    let mut child = citydata(d)
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_until_up(port, &mut child);
    rt.block_on(async {
        let v: serde_json::Value =
            reqwest::get(format!("http://127.0.0.1:{port}/api/v1/search?q=企业")).await.unwrap().json().await.unwrap();
        assert!(v["total"].as_u64().unwrap() >= 1, "{v}");
    });
    Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    child.wait().unwrap();
}

/// Seed the demo catalog into `d` without data: start `serve --demo`, wait for it, stop it.
fn seed_demo_catalog(d: &Path) {
    let port = free_port();
    let mut child = citydata(d)
        .args(["serve", "--demo", "--listen", &format!("127.0.0.1:{port}")])
        .env("CITYDATA__DEMO_ROWS", "0")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_until_up(port, &mut child);
    Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    child.wait().unwrap();
}

fn table_state(d: &Path) -> (Option<i64>, String) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let store_url = format!("sqlite://{}", d.join("citydata.db").display());
        let pool = sqlx::SqlitePool::connect(&store_url).await.unwrap();
        let id: String =
            sqlx::query_scalar("SELECT id FROM resources WHERE code = '101/000001'").fetch_one(&pool).await.unwrap();
        pool.close().await;
        let lake = citydata_lake::table::Lake::new(d.join("lake").to_str().unwrap()).unwrap();
        let id = id.parse().unwrap();
        let v = lake.version(id).await.unwrap();
        let n = lake.query(id, None, "SELECT count(*) FROM t").await.unwrap();
        let n = n.first().map(arrow_value).unwrap_or_default();
        (v, n)
    })
}

fn arrow_value(b: &arrow::record_batch::RecordBatch) -> String {
    arrow::util::display::array_value_to_string(b.column(0), 0).unwrap()
}

/// A writer killed mid-ingest leaves the table at its previous version; vacuum then removes
/// the files it left behind.
#[test]
fn a_killed_ingest_leaves_the_previous_version() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    seed_demo_catalog(d);
    let o = run(citydata(d).args([
        "demo",
        "generate",
        "population",
        "--rows",
        "2000",
        "--out",
        "small.csv",
        "--defects",
        "0",
    ]));
    assert!(o.status.success(), "{}", stderr(&o));
    let o = run(citydata(d).args(["ingest", "small.csv", "--resource", "101/000001"]));
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    assert!(stdout(&o).contains("committed"), "{}", stdout(&o));
    let before = table_state(d);
    assert_eq!(before, (Some(0), "2000".to_string()));

    let o = run(citydata(d).args([
        "demo",
        "generate",
        "population",
        "--rows",
        "200000",
        "--out",
        "big.csv",
        "--encoding",
        "gb18030",
    ]));
    assert!(o.status.success());
    let mut child = citydata(d)
        .args(["ingest", "big.csv", "--resource", "101/000001", "--mode", "replace"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Kill the writer when it has written a data file, or after two seconds, mid-way either way.
    let tables = d.join("lake").join("tables");
    let count_parquet =
        || -> usize { walk(&tables).iter().filter(|p| p.extension().is_some_and(|e| e == "parquet")).count() };
    let initial = count_parquet();
    let started = Instant::now();
    while count_parquet() == initial && started.elapsed() < Duration::from_secs(2) {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(child.try_wait().unwrap().is_none(), "the ingest finished before it could be killed");
    Command::new("kill").args(["-KILL", &child.id().to_string()]).status().unwrap();
    child.wait().unwrap();
    assert_eq!(table_state(d), before, "the killed writer changed the table");
    let o = run(citydata(d).args(["lake", "vacuum", "--retention-hours", "0"]));
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(count_parquet(), initial, "vacuum removed the leftovers");
    assert_eq!(table_state(d), before);
}

fn walk(p: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(p) {
        for e in rd.flatten() {
            let path = e.path();
            if path.is_dir() {
                out.extend(walk(&path));
            } else {
                out.push(path);
            }
        }
    }
    out
}

/// The sharing workflow from the terminal: an analyst files a request, the provider's steward
/// sees it, approves it narrowed, lists and revokes the grant; bad input names what is wrong.
#[test]
fn request_and_grant_commands() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    seed_demo_catalog(d);

    let o = run(citydata(d).args([
        "request",
        "--as",
        "wjw-analyst",
        "create",
        "--resource",
        "101/000001",
        "--purpose",
        "核验就诊人员身份",
        "--basis",
        "《医疗机构管理条例》",
        "--period-days",
        "90",
    ]));
    assert!(o.status.success(), "{}", stderr(&o));
    let line = stdout(&o);
    assert!(line.contains("\tpending\t") && line.contains("\twjw\t"), "{line}");
    let id = line.split('\t').next().unwrap().trim().to_string();

    // Another department's steward does not see it; the provider's steward does.
    let o = run(citydata(d).args(["request", "--as", "scjgj-steward", "list"]));
    assert!(!stdout(&o).contains(&id), "{}", stdout(&o));
    let o = run(citydata(d).args(["request", "--as", "gaj-steward", "list", "--state", "pending"]));
    assert!(stdout(&o).contains(&id), "{}", stdout(&o));
    // ... and the requester cannot approve its own request.
    let o = run(citydata(d).args(["request", "--as", "wjw-analyst", "approve", &id]));
    assert!(!o.status.success());

    let o = run(citydata(d).args(["request", "--as", "gaj-steward", "approve", &id, "--mask", "sfzh"]));
    assert!(!o.status.success());
    assert!(stderr(&o).contains("FIELD=MASK"), "{}", stderr(&o));
    let o = run(citydata(d).args(["request", "--as", "gaj-steward", "approve", &id, "--expires", "next year"]));
    assert!(!o.status.success());
    assert!(stderr(&o).contains("--expires"), "{}", stderr(&o));

    let o = run(citydata(d).args(["grant", "--as", "gaj-steward", "list"]));
    let before = stdout(&o).lines().count();
    let o = run(citydata(d).args(["request", "--as", "gaj-steward", "approve", &id]));
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("\tapproved\t"), "{}", stdout(&o));
    let o = run(citydata(d).args(["grant", "--as", "wjw-analyst", "list"]));
    let grant_line =
        stdout(&o).lines().find(|l| l.contains("department:wjw")).map(str::to_string).expect("the new grant");
    assert!(grant_line.contains("\tactive\t"), "{grant_line}");
    let o = run(citydata(d).args(["grant", "--as", "gaj-steward", "list"]));
    assert_eq!(stdout(&o).lines().count(), before + 1, "{}", stdout(&o));

    let grant_id = grant_line.split('\t').next().unwrap().to_string();
    // The grantee asks to renew: a pending request for the provider.
    let o = run(citydata(d).args(["grant", "--as", "wjw-analyst", "renew", &grant_id, "--days", "30"]));
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("\tpending\t"), "{}", stdout(&o));
    let o = run(citydata(d).args(["grant", "--as", "wjw-analyst", "renew", &grant_id]));
    assert!(!o.status.success(), "one renewal at a time");
    let o = run(citydata(d).args(["grant", "--as", "wjw-analyst", "revoke", &grant_id]));
    assert!(!o.status.success(), "the grantee cannot revoke the provider's grant");
    let o = run(citydata(d).args(["grant", "--as", "gaj-steward", "revoke", &grant_id]));
    assert!(o.status.success(), "{}", stderr(&o));
    let o = run(citydata(d).args(["grant", "--as", "wjw-analyst", "list"]));
    assert!(stdout(&o).lines().any(|l| l.starts_with(&grant_id) && l.contains("\trevoked\t")), "{}", stdout(&o));

    // A second request, withdrawn by its author; a request for nothing names the field.
    let o = run(citydata(d).args([
        "request",
        "--as",
        "wjw-analyst",
        "create",
        "--resource",
        "101/000002",
        "--purpose",
        "统计",
        "--basis",
        "职责",
    ]));
    assert!(o.status.success(), "{}", stderr(&o));
    let id2 = stdout(&o).split('\t').next().unwrap().to_string();
    let o = run(citydata(d).args(["request", "--as", "wjw-analyst", "withdraw", &id2]));
    assert!(stdout(&o).contains("\twithdrawn\t"), "{}{}", stdout(&o), stderr(&o));
    let o = run(citydata(d).args(["request", "--as", "gaj-steward", "reject", &id2, "--reason", "迟了"]));
    assert!(!o.status.success(), "a withdrawn request cannot be rejected");
    let o =
        run(citydata(d).args(["request", "--as", "wjw-analyst", "create", "--resource", "no/such", "--purpose", "x"]));
    assert!(!o.status.success());
    assert!(!stderr(&o).contains("SELECT"), "{}", stderr(&o));
}

/// `citydata lake erase`: rows an earlier delete removed (without `--erase`) stay readable in
/// older versions and files until the operator erases the history; then no file holds them.
#[test]
fn lake_erase_removes_what_earlier_deletes_left_in_history() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    seed_demo_catalog(d);
    let o =
        run(citydata(d).args(["demo", "generate", "population", "--rows", "50", "--out", "p.csv", "--defects", "0"]));
    assert!(o.status.success(), "{}", stderr(&o));
    let text = std::fs::read_to_string(d.join("p.csv")).unwrap();
    let mut lines = text.lines();
    let header = lines.next().unwrap().to_string();
    let first = lines.next().unwrap().to_string();
    let secret = first.split(',').next().unwrap().to_string();
    assert_eq!(secret.len(), 18, "the first column is the identity number: {first}");
    let o = run(citydata(d).args(["ingest", "p.csv", "--resource", "101/000001"]));
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    std::fs::write(d.join("gone.csv"), format!("{header}\n{first}\n")).unwrap();
    let o = run(citydata(d).args(["ingest", "gone.csv", "--resource", "101/000001", "--mode", "delete"]));
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    let tables = d.join("lake").join("tables");
    let holds = || {
        walk(&tables)
            .iter()
            .any(|p| std::fs::read(p).is_ok_and(|b| b.windows(secret.len()).any(|w| w == secret.as_bytes())))
    };
    assert!(holds(), "before erasing, the old files still hold the deleted row");
    let o = run(citydata(d).args(["lake", "erase", "101/000001"]));
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    assert!(stdout(&o).contains("erased"), "{}", stdout(&o));
    assert!(!holds(), "after erasing, no file of the table holds the deleted row");
    assert_eq!(table_state(d).1, "49");
    let o = run(citydata(d).args(["audit", "verify"]));
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
}

#[test]
fn quality_report_and_rules_import() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    seed_demo_catalog(d);
    let o = run(citydata(d).args(["demo", "generate", "population", "--rows", "300", "--out", "p.csv"]));
    assert!(o.status.success(), "{}", stderr(&o));
    let o = run(citydata(d).args(["quality", "report", "101/000001"]));
    assert!(!o.status.success(), "no report before any data");
    // Rules: a bad file names its line and changes nothing; a good one replaces the set.
    std::fs::write(
        d.join("bad.csv"),
        "resource,rule,severity\n101/000001,not_null(sjh),warn\n101/000001,\"range(xm, 0, 1)\",warn\n",
    )
    .unwrap();
    let o = run(citydata(d).args(["quality", "rules", "import", "bad.csv"]));
    assert!(!o.status.success());
    assert!(stderr(&o).contains("line 3") && stderr(&o).contains("range does not fit item xm"), "{}", stderr(&o));
    std::fs::write(
        d.join("rules.csv"),
        "资源代码,规则,严重程度\n101/000001,not_null(sjh),info\n101/000001,\"regex(xm, .{2,4})\",warn\n",
    )
    .unwrap();
    let o = run(citydata(d).args(["quality", "rules", "import", "rules.csv"]));
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    assert!(stdout(&o).contains("2 rules"), "{}", stdout(&o));
    let o = run(citydata(d).args(["ingest", "p.csv", "--resource", "101/000001"]));
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    let o = run(citydata(d).args(["quality", "report", "101/000001"]));
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["version"], 0);
    assert_eq!(v["rows"], 300);
    let rules: Vec<&str> = v["rules"].as_array().unwrap().iter().map(|r| r["rule"].as_str().unwrap()).collect();
    assert!(rules.contains(&"not_null(sjh)") && rules.contains(&"regex(xm, .{2,4})"), "{rules:?}");
    let o = run(citydata(d).args(["quality", "report", "101/000001", "--format", "xlsx", "--out", "q.xlsx"]));
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(std::fs::read(d.join("q.xlsx")).unwrap().starts_with(b"PK"), "an XLSX (zip) file");
    let o = run(citydata(d).args(["quality", "report", "101/000001", "--format", "pdf"]));
    assert!(!o.status.success());
}

/// An HTTP source served by a thread here (every request: the same JSON page).
fn json_server(body: String) -> String {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { continue };
            let mut buf = [0u8; 4096];
            let mut got = Vec::new();
            while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                match s.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => got.extend_from_slice(&buf[..n]),
                }
            }
            let _ = write!(
                s,
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    format!("http://{addr}/records")
}

#[test]
fn source_commands_create_run_and_list() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("citydata.toml"), "webhook_allow_cidrs = [\"127.0.0.0/8\"]\n").unwrap();
    seed_demo_catalog(d);
    let uscc = |first16: &str| {
        use citydata_domain::identifiers::{org_check_char, uscc_check_char};
        let first17 = format!("{first16}{}", org_check_char(&first16[8..]).unwrap());
        format!("{first17}{}", uscc_check_char(&first17).unwrap())
    };
    let url = json_server(
        serde_json::json!([
            {"tyshxydm": uscc("91321200MA400001"), "pjdj": "A", "pjrq": "2025-01-01"},
            {"tyshxydm": uscc("91321200MA400002"), "pjdj": "B", "pjrq": "2025-01-02"}
        ])
        .to_string(),
    );
    std::fs::write(
        d.join("source.json"),
        serde_json::json!({"name": "接口", "kind": "http", "resource_id": "104/000001", "connection": {"url": url}})
            .to_string(),
    )
    .unwrap();
    // Not a steward of 市场监管局: refused.
    let o = run(citydata(d).args(["source", "create", "source.json", "--as", "wjw-steward"]));
    assert!(!o.status.success(), "{}", stdout(&o));
    let o = run(citydata(d).args(["source", "create", "source.json", "--as", "scjgj-steward"]));
    assert!(o.status.success(), "{}", stderr(&o));
    let created: serde_json::Value = serde_json::from_str(stdout(&o).trim()).unwrap();
    let id = created["id"].as_str().unwrap().to_string();
    let o = run(citydata(d).args(["source", "run", &id]));
    assert!(o.status.success(), "{} {}", stdout(&o), stderr(&o));
    let done: serde_json::Value = serde_json::from_str(stdout(&o).trim()).unwrap();
    assert_eq!(done["state"], "succeeded");
    assert_eq!(done["report"]["rows_committed"], 2);
    let o = run(citydata(d).args(["source", "runs", &id]));
    assert_eq!(stdout(&o).lines().count(), 1);
    let o = run(citydata(d).args(["source", "list"]));
    assert!(stdout(&o).contains(&id));
    let o = run(citydata(d).args(["source", "run", "00000000-0000-0000-0000-000000000000"]));
    assert!(!o.status.success());
}

/// A scratch database in the PostgreSQL of `CITYDATA_TEST_SOURCE_DATABASE_URL` (else
/// `CITYDATA_TEST_DATABASE_URL`); `None` skips, except under `CI=true`.
fn scratch_pg(rt: &tokio::runtime::Runtime, test: &str) -> Option<String> {
    use sqlx::Connection;
    let admin = std::env::var("CITYDATA_TEST_SOURCE_DATABASE_URL")
        .ok()
        .or_else(|| std::env::var("CITYDATA_TEST_DATABASE_URL").ok())
        .filter(|s| !s.trim().is_empty());
    let Some(admin) = admin else {
        assert!(std::env::var("CI").ok().as_deref() != Some("true"), "{test}: CI=true but no PostgreSQL URL is set");
        eprintln!("skipped {test}: set CITYDATA_TEST_SOURCE_DATABASE_URL");
        return None;
    };
    let name = format!("citydata_src_{}", std::process::id()) + &format!("_{}", rand_suffix());
    rt.block_on(async {
        let mut c = sqlx::PgConnection::connect(&admin).await.unwrap();
        sqlx::raw_sql(&format!("CREATE DATABASE {name}")).execute(&mut c).await.unwrap();
    });
    let (base, _) = admin.rsplit_once('/').unwrap();
    Some(format!("{base}/{name}"))
}

fn rand_suffix() -> u128 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos()
}

#[test]
fn a_killed_runner_leaves_no_run_running_and_the_retry_commits_exactly() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let Some(url) = scratch_pg(&rt, "a_killed_runner_leaves_no_run_running_and_the_retry_commits_exactly") else {
        return;
    };
    let exec = |sql: &str| {
        use sqlx::Connection;
        rt.block_on(async {
            let mut c = sqlx::PgConnection::connect(&url).await.unwrap();
            sqlx::raw_sql(sql).execute(&mut c).await.unwrap();
        })
    };
    let uscc = |first16: &str| {
        use citydata_domain::identifiers::{org_check_char, uscc_check_char};
        let first17 = format!("{first16}{}", org_check_char(&first16[8..]).unwrap());
        format!("{first17}{}", uscc_check_char(&first17).unwrap())
    };
    exec(&format!(
        "CREATE TABLE credit (tyshxydm TEXT PRIMARY KEY, pjdj TEXT, pjrq DATE, updated_at TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp());
         CREATE TABLE flags (slow BOOLEAN NOT NULL); INSERT INTO flags VALUES (TRUE);
         INSERT INTO credit (tyshxydm, pjdj, pjrq) VALUES ('{}', 'A', '2025-01-01'), ('{}', 'B', '2025-01-02');",
        uscc("91321200MA500001"),
        uscc("91321200MA500002")
    ));
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("citydata.toml"), "webhook_allow_cidrs = [\"127.0.0.0/8\"]\ningest_lease_secs = 1\n")
        .unwrap();
    seed_demo_catalog(d);
    // The query sleeps while flags.slow is set: the first run is stuck in it when killed.
    let query = "SELECT c.* FROM credit c, (SELECT pg_sleep(CASE WHEN (SELECT slow FROM flags) THEN 120 ELSE 0 END)) s";
    std::fs::write(
        d.join("source.json"),
        serde_json::json!({"name": "前置机", "kind": "postgres", "resource_id": "104/000001", "connection": {"url": url},
                           "query": query, "watermark": "updated_at"})
        .to_string(),
    )
    .unwrap();
    let o = run(citydata(d).args(["source", "create", "source.json", "--as", "scjgj-steward"]));
    assert!(o.status.success(), "{}", stderr(&o));
    let id = serde_json::from_str::<serde_json::Value>(stdout(&o).trim()).unwrap()["id"].as_str().unwrap().to_string();
    let runs = |d: &Path| -> Vec<serde_json::Value> {
        let o = run(citydata(d).args(["source", "runs", &id]));
        stdout(&o).lines().map(|l| serde_json::from_str(l).unwrap()).collect()
    };
    // A runner process claims the run and is killed in the middle of it.
    let mut runner =
        citydata(d).args(["source", "run", &id]).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while runs(d).first().map(|r| r["state"] != "running").unwrap_or(true) {
        assert!(Instant::now() < deadline, "the run never started");
        std::thread::sleep(Duration::from_millis(200));
    }
    runner.kill().unwrap();
    runner.wait().unwrap();
    exec("UPDATE flags SET slow = FALSE");
    // Past the lease (1 s): the next runner settles the dead run and its retry takes over.
    std::thread::sleep(Duration::from_millis(1500));
    let o = run(citydata(d).args(["source", "run", &id]));
    assert!(o.status.success(), "{} {}", stdout(&o), stderr(&o));
    let done: serde_json::Value = serde_json::from_str(stdout(&o).trim()).unwrap();
    assert_eq!(done["cause"], "retry");
    assert_eq!(done["report"]["rows_committed"], 2, "the watermark had not moved: {done}");
    let all = runs(d);
    assert_eq!(all.len(), 2, "{all:?}");
    assert_eq!(all[1]["state"], "failed");
    assert!(all[1]["error"].as_str().unwrap().contains("lease"), "{all:?}");
    assert!(all.iter().all(|r| r["state"] != "running" && r["state"] != "queued"), "{all:?}");
}
