//! `citydata backup` / `citydata restore` as an operator uses them: a backup taken while a
//! server runs and an ingest loop commits, restored into a fresh data directory, started, and
//! compared (catalog, table versions and rows, audit chain, logins and tokens); and the
//! refusals (non-empty backup directory, non-empty data directory or database, a backup whose
//! files do not match its manifest). On SQLite always; on PostgreSQL (pg_dump / pg_restore)
//! when `CITYDATA_TEST_DATABASE_URL` is set.

use super::support::free_port;
use serde_json::{Value, json};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

const PW: &str = "citydata-demo";

fn citydata(data_dir: &Path, db: Option<&str>) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_citydata"));
    c.arg("--data-dir").arg(data_dir);
    if let Some(url) = db {
        c.arg("--database-url").arg(url);
    }
    c.env_remove("CITYDATA__DATABASE_URL").current_dir(data_dir.parent().unwrap());
    c
}

fn run(cmd: &mut Command) -> Output {
    cmd.output().expect("run citydata")
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

struct Server(Child, String);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = Command::new("kill").args(["-TERM", &self.0.id().to_string()]).status();
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn serve(d: &Path, db: Option<&str>, demo: bool) -> Server {
    let port = free_port();
    let mut cmd = citydata(d, db);
    cmd.arg("serve").args(["--listen", &format!("127.0.0.1:{port}")]);
    if demo {
        cmd.arg("--demo").env("CITYDATA__DEMO_ROWS", "300");
    }
    let mut child = cmd.stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if let Ok(r) = reqwest::get(format!("{base}/readyz")).await
            && r.status().is_success()
        {
            return Server(child, base);
        }
        if let Some(s) = child.try_wait().unwrap() {
            panic!("server exited early: {s}");
        }
        assert!(Instant::now() < deadline, "server did not become ready");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn login(base: &str, user: &str) -> reqwest::Client {
    let c = reqwest::Client::builder().cookie_store(true).timeout(Duration::from_secs(120)).build().unwrap();
    let r = c
        .post(format!("{base}/api/v1/auth/login"))
        .json(&json!({"username": user, "password": PW}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "login as {user}");
    c
}

fn population_csv(rows: u64, seed: u64) -> Vec<u8> {
    let mut buf = Vec::new();
    citydata_core::demo::generate::generate(
        citydata_core::demo::generate::Register::Population,
        rows,
        0.0,
        seed,
        false,
        &mut buf,
    )
    .unwrap();
    buf
}

async fn ingest(c: &reqwest::Client, base: &str, body: Vec<u8>) -> reqwest::Response {
    c.post(format!("{base}/api/v1/resources/101%2F000001/data?mode=upsert&format=csv")).body(body).send().await.unwrap()
}

async fn get_json(c: &reqwest::Client, url: String) -> Value {
    c.get(url).send().await.unwrap().json().await.unwrap()
}

/// Rows of the table, sorted, as text (`version` None: the newest).
async fn table_rows(lake_dir: &Path, id: &str, version: Option<i64>) -> (Option<i64>, String) {
    let lake = citydata_lake::table::Lake::new(lake_dir.to_str().unwrap()).unwrap();
    let id = id.parse().unwrap();
    let v = lake.version(id).await.unwrap();
    let batches = lake.query(id, version, "SELECT * FROM t ORDER BY sfzh").await.unwrap();
    (v, arrow::util::pretty::pretty_format_batches(&batches).unwrap().to_string())
}

struct Before {
    resources: u64,
    people: Value,
    people_id: String,
    token: String,
}

/// Make data on a running server (demo, an ingest, a request approved into a grant, a token),
/// then back it up while an ingest loop commits. Returns what the restored copy must show.
async fn make_data_and_back_up(d: &Path, db: Option<&str>, backup: &Path) -> Before {
    let server = serve(d, db, true).await;
    let base = server.1.clone();
    let admin = login(&base, "admin").await;
    let steward = login(&base, "gaj-steward").await;
    let analyst = login(&base, "wjw-analyst").await;
    let r = ingest(&steward, &base, population_csv(20, 99)).await;
    assert!(r.status().is_success(), "{}", r.text().await.unwrap());
    let req: Value = analyst
        .post(format!("{base}/api/v1/requests"))
        .json(&json!({"resource_id": "101/000001", "purpose": "核验就诊人员身份", "basis": "条例", "period_days": 90}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let rid = req["id"].as_str().expect("request id").to_string();
    let r = steward.post(format!("{base}/api/v1/requests/{rid}/approve")).json(&json!({})).send().await.unwrap();
    assert!(r.status().is_success(), "{}", r.text().await.unwrap());
    let o =
        run(citydata(d, db).args(["token", "create", "--user", "wjw-analyst", "--name", "etl", "--expires", "30d"]));
    assert!(o.status.success(), "{}", text(&o));
    let token = String::from_utf8_lossy(&o.stdout).trim().to_string();
    let list = get_json(&admin, format!("{base}/api/v1/resources?per_page=1")).await;
    let resources = list["total"].as_u64().unwrap();
    let people = get_json(&admin, format!("{base}/api/v1/resources/101%2F000001")).await;
    let people_id = people["id"].as_str().unwrap().to_string();

    // What a writer killed before its commit leaves: a data file no version names. It stays out.
    std::fs::write(d.join("lake/tables").join(&people_id).join("part-00000-uncommitted-c000.snappy.parquet"), b"PAR1")
        .unwrap();

    // Commits go on during the backup.
    let stop = Arc::new(AtomicBool::new(false));
    let commits = Arc::new(AtomicU64::new(0));
    let writer = {
        let (stop, commits, base) = (stop.clone(), commits.clone(), base.clone());
        tokio::spawn(async move {
            let steward = login(&base, "gaj-steward").await;
            let mut seed = 1000;
            while !stop.load(Ordering::Relaxed) {
                seed += 1;
                let r = ingest(&steward, &base, population_csv(3, seed)).await;
                assert!(r.status().is_success(), "{}", r.text().await.unwrap());
                commits.fetch_add(1, Ordering::Relaxed);
            }
        })
    };
    while commits.load(Ordering::Relaxed) == 0 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut cmd = citydata(d, db);
    cmd.args(["backup", "--to"]).arg(backup);
    let o = tokio::task::spawn_blocking(move || run(&mut cmd)).await.unwrap();
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("backup written"), "{}", text(&o));
    let during = commits.load(Ordering::Relaxed);
    // Let the writer commit at least once more after the backup, then stop it.
    while commits.load(Ordering::Relaxed) < during + 1 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stop.store(true, Ordering::Relaxed);
    writer.await.unwrap();
    drop(server);
    Before { resources, people, people_id, token }
}

fn manifest(backup: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(backup.join("MANIFEST.json")).unwrap()).unwrap()
}

async fn check_restored(src: &Path, dst: &Path, db: Option<&str>, backup: &Path, before: &Before) {
    let m = manifest(backup);
    let table = m["tables"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["resource_id"] == before.people_id.as_str() && t["kind"] == "tables")
        .expect("the population table is in the manifest")
        .clone();
    let version = table["version"].as_i64().unwrap();
    let files = m["files"].as_array().unwrap();
    assert!(!files.iter().any(|f| f["path"].as_str().unwrap().contains("uncommitted")), "uncommitted files stay out");
    let logs: Vec<&str> = files
        .iter()
        .map(|f| f["path"].as_str().unwrap())
        .filter(|p| p.starts_with(&format!("lake/tables/{}/_delta_log/", before.people_id)) && p.ends_with(".json"))
        .collect();
    assert_eq!(logs.len() as i64, version + 1, "the log up to version {version} and nothing after it: {logs:?}");
    assert!(version >= 2, "demo load, one ingest and loop commits: {table}");

    // The table: the backup's version, with the rows the source had at that version.
    let (src_latest, src_rows) = table_rows(&src.join("lake"), &before.people_id, Some(version)).await;
    assert!(src_latest.unwrap() > version, "the source went on committing after the backup");
    let (dst_latest, dst_rows) = table_rows(&dst.join("lake"), &before.people_id, None).await;
    assert_eq!(dst_latest, Some(version));
    assert_eq!(dst_rows, src_rows, "the restored table holds the rows of version {version}");
    let (_, older) = table_rows(&dst.join("lake"), &before.people_id, Some(version - 1)).await;
    assert_ne!(older, dst_rows, "older versions (time travel) came along");

    let o = run(citydata(dst, db).args(["audit", "verify"]));
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(text(&o).contains("intact"), "{}", text(&o));

    let server = serve(dst, db, false).await;
    let base = &server.1;
    let admin = login(base, "admin").await;
    let list = get_json(&admin, format!("{base}/api/v1/resources?per_page=1")).await;
    assert_eq!(list["total"].as_u64(), Some(before.resources));
    let people = get_json(&admin, format!("{base}/api/v1/resources/101%2F000001")).await;
    assert_eq!(people, before.people, "the resource's catalog entry is the same");
    // Search was rebuilt.
    let s = get_json(&reqwest::Client::new(), format!("{base}/api/v1/search?q=企业")).await;
    assert!(s["total"].as_u64().unwrap_or(0) >= 1, "{s}");
    // The analyst's token works and the grant lets it read rows.
    let c = reqwest::Client::new();
    let r = c.get(format!("{base}/api/v1/me")).bearer_auth(&before.token).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let r = c
        .get(format!("{base}/api/v1/resources/101%2F000001/rows?limit=5"))
        .bearer_auth(&before.token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "the grant survived");
    let rows: Value = r.json().await.unwrap();
    assert_eq!(rows["rows"].as_array().map(Vec::len), Some(5), "{rows}");
    // The demo's file distribution came along: its blob is in the backup.
    assert!(
        files.iter().any(|f| f["path"].as_str().unwrap().starts_with("lake/files/sha256/")),
        "file blobs are backed up"
    );
    let listed = get_json(&admin, format!("{base}/api/v1/resources/103%2F000001/files")).await;
    let url = listed[0]["download_url"].as_str().expect("the demo file is listed").to_string();
    let r = admin.get(format!("{base}{url}")).send().await.unwrap();
    assert_eq!(r.status(), 200, "the restored file downloads");
    assert!(r.bytes().await.unwrap().starts_with(b"%PDF"));
    // A wrong password still fails.
    let r = c
        .post(format!("{base}/api/v1/auth/login"))
        .json(&json!({"username": "admin", "password": "nope"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    drop(server);
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            copy_dir(&p, &to.join(e.file_name()));
        } else {
            std::fs::copy(&p, to.join(e.file_name())).unwrap();
        }
    }
}

/// A backup whose files do not match the manifest is refused, naming the file.
fn check_damaged_backups(root: &Path, backup: &Path, db: Option<&str>) {
    let m = manifest(backup);
    let parquet = m["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["path"].as_str().unwrap().to_string())
        .find(|p| p.ends_with(".parquet") && !p.contains("_delta_log"))
        .expect("a data file");
    // Changed.
    let b = root.join("damaged");
    copy_dir(backup, &b);
    let f = b.join(&parquet);
    let mut bytes = std::fs::read(&f).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    std::fs::write(&f, bytes).unwrap();
    let target = root.join("restore-damaged");
    let o = run(citydata(&target, db).args(["restore", "--from"]).arg(&b));
    assert!(!o.status.success());
    assert!(text(&o).contains(&parquet) && text(&o).contains("damaged"), "{}", text(&o));
    assert!(!target.join("lake").exists(), "nothing was written");
    // Missing.
    std::fs::remove_file(&f).unwrap();
    let o = run(citydata(&target, db).args(["restore", "--from"]).arg(&b));
    assert!(!o.status.success());
    assert!(text(&o).contains(&parquet) && text(&o).contains("missing"), "{}", text(&o));
    // An extra file.
    let b2 = root.join("extra");
    copy_dir(backup, &b2);
    std::fs::write(b2.join("lake").join("stray.txt"), "x").unwrap();
    let o = run(citydata(&target, db).args(["restore", "--from"]).arg(&b2));
    assert!(!o.status.success());
    assert!(text(&o).contains("lake/stray.txt"), "{}", text(&o));
    // Not a backup.
    let o = run(citydata(&target, db).args(["restore", "--from"]).arg(root.join("nowhere")));
    assert!(!o.status.success());
    assert!(text(&o).contains("MANIFEST.json"), "{}", text(&o));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backup_while_serving_and_restore_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let (src, backup, dst) = (root.join("data"), root.join("backup"), root.join("restored"));
    let before = make_data_and_back_up(&src, None, &backup).await;
    let m = manifest(&backup);
    assert_eq!(m["store"], "sqlite");
    assert_eq!(m["format_version"], 1);
    assert!(backup.join("metadata.db").is_file() && backup.join("audit.key").is_file());
    assert!(!backup.join("search").exists(), "the search index is rebuilt, not copied");

    // Refusals: a non-empty backup directory, a non-empty data directory.
    let o = run(citydata(&src, None).args(["backup", "--to"]).arg(&backup));
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).contains("not empty"), "{}", text(&o));
    let o = run(citydata(&src, None).args(["restore", "--from"]).arg(&backup));
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).contains("not empty"), "{}", text(&o));

    let o = run(citydata(&dst, None).args(["restore", "--from"]).arg(&backup));
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("audit chain intact"), "{}", text(&o));
    check_restored(&src, &dst, None, &backup, &before).await;
    check_damaged_backups(root, &backup, None);
}

/// The PostgreSQL half of the suite (`CITYDATA_TEST_DATABASE_URL` set, as `.ci/run`'s second
/// pass does) runs the PostgreSQL backup; the SQLite half runs the SQLite one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backup_while_serving_and_restore_postgres() {
    // The SQLite half of the suite: the PostgreSQL backup runs in the PostgreSQL half.
    if !citydata_testkit::postgres_or_skip("backup_while_serving_and_restore_postgres") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let (db_a, db_b) =
        (citydata_testkit::fresh_database_url(root).await, citydata_testkit::fresh_database_url(root).await);
    let (src, backup, dst) = (root.join("data"), root.join("backup"), root.join("restored"));
    let before = make_data_and_back_up(&src, Some(&db_a), &backup).await;
    let m = manifest(&backup);
    assert_eq!(m["store"], "postgres");
    assert!(backup.join("metadata.pgdump").is_file());
    // The password is not in the dump's file name or the manifest.
    assert!(!std::fs::read_to_string(backup.join("MANIFEST.json")).unwrap().contains("citydata:citydata"));

    // The source database is not empty: refused.
    let o = run(citydata(&root.join("fresh"), Some(&db_a)).args(["restore", "--from"]).arg(&backup));
    assert!(!o.status.success());
    assert!(text(&o).contains("not empty"), "{}", text(&o));
    // A SQLite target for a PostgreSQL backup: refused.
    let o = run(citydata(&root.join("fresh2"), None).args(["restore", "--from"]).arg(&backup));
    assert!(!o.status.success());
    assert!(text(&o).contains("same kind of store"), "{}", text(&o));

    let o = run(citydata(&dst, Some(&db_b)).args(["restore", "--from"]).arg(&backup));
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("audit chain intact"), "{}", text(&o));
    check_restored(&src, &dst, Some(&db_b), &backup, &before).await;
    check_damaged_backups(root, &backup, Some(&db_b));
}
