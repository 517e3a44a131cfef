//! Two `citydata serve` processes on one PostgreSQL database and one S3 bucket (moto), as the
//! README's deployment guide sets them up — each its own data directory and port, the same
//! `secret_key` and audit key, configured through the environment only (issue #20 item 4).
//! A session made on A works on B; rows ingested on A are read on B; a catalog change on A is
//! found by B's search; a grant revoked on B is refused on A; and when A is killed, B goes on
//! serving the same session, rows and search. PostgreSQL only (`CITYDATA_TEST_DATABASE_URL`;
//! under `CI=true` a missing URL fails, except in the SQLite pass).

use super::support::{free_port, wait_until_up};
use citydata_testkit::s3::Moto;
use serde_json::{Value, json};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const SECRET: &str = "two-processes-share-this-secret-key-0123456789";

fn node(data: &Path, db: &str, port: u16, lake: &citydata_testkit::s3::S3Lake, audit_key: &Path, demo: bool) -> Child {
    let mut c = Command::new(env!("CARGO_BIN_EXE_citydata"));
    c.arg("--data-dir").arg(data).current_dir(data);
    c.args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .env("CITYDATA__DATABASE_URL", db)
        .env("CITYDATA__DEMO", if demo { "true" } else { "false" })
        .env("CITYDATA__DEMO_ROWS", "0")
        .env("CITYDATA__SECRET_KEY", SECRET)
        .env("CITYDATA__AUDIT_KEY_FILE", audit_key)
        .env("CITYDATA__LAKE_URL", &lake.lake_url)
        .env("CITYDATA__LAKE_S3__ENDPOINT", &lake.endpoint)
        .env("CITYDATA__LAKE_S3__ACCESS_KEY_ID", "citydata-test")
        .env("CITYDATA__LAKE_S3__SECRET_ACCESS_KEY", "citydata-test-secret")
        .env("CITYDATA__LAKE_S3__ALLOW_HTTP", "true")
        .env_remove("CITYDATA_CRASH_AT")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut child = c.spawn().unwrap();
    wait_until_up(port, &mut child);
    child
}

async fn json_get(c: &reqwest::Client, url: String) -> (u16, Value) {
    let r = c.get(url).send().await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or_default())
}

#[test]
fn two_server_processes_on_one_database_and_one_bucket_are_one_platform() {
    if !citydata_testkit::postgres_or_skip("process::nodes") {
        return;
    }
    let Some(moto) = Moto::start_or_skip("process::nodes") else { return };
    let rt = tokio::runtime::Runtime::new().unwrap();
    let lake = rt.block_on(moto.lake());
    let (da, db_dir, keys) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let db = rt.block_on(citydata_testkit::fresh_database_url(da.path()));
    assert!(db.starts_with("postgres"), "{db}");
    let audit_key = keys.path().join("audit.key");
    let (pa, pb) = (free_port(), free_port());
    let mut a = node(da.path(), &db, pa, &lake, &audit_key, true);
    let mut b = node(db_dir.path(), &db, pb, &lake, &audit_key, false);
    let (ua, ub) = (format!("http://127.0.0.1:{pa}"), format!("http://127.0.0.1:{pb}"));
    // One cookie jar: the session cookie goes to both nodes (same host).
    let gaj = reqwest::Client::builder().cookie_store(true).build().unwrap();
    rt.block_on(async {
        for u in [&ua, &ub] {
            assert_eq!(reqwest::get(format!("{u}/readyz")).await.unwrap().status(), 200);
        }
        let r = gaj
            .post(format!("{ua}/api/v1/auth/login"))
            .json(&json!({"username": "gaj-steward", "password": citydata_testkit::DEMO_PASSWORD}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let (s, me) = json_get(&gaj, format!("{ub}/api/v1/me")).await;
        assert_eq!((s, me["username"].as_str()), (200, Some("gaj-steward")), "{me}");
        // Ingest on A, read on B.
        let mut people = Vec::new();
        citydata_core::demo::generate::generate_listing(
            citydata_core::demo::generate::Register::Population,
            30,
            0.0,
            9,
            false,
            &mut people,
        )
        .unwrap();
        let r = gaj.post(format!("{ua}/api/v1/resources/101%2F000001/data")).body(people).send().await.unwrap();
        assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
        let (s, rows) = json_get(&gaj, format!("{ub}/api/v1/resources/101%2F000001/rows?limit=100")).await;
        assert_eq!((s, rows["rows"].as_array().map(Vec::len)), (200, Some(30)), "{rows}");
        // A catalog change on A is found by B's search within 3 s.
        let r = gaj
            .patch(format!("{ua}/api/v1/resources/101%2F000001"))
            .json(&json!({"abstract": "人口基础信息 qpzmwx 两进程检索"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
        let changed = Instant::now();
        loop {
            let (_, s) = json_get(&gaj, format!("{ub}/api/v1/search?q=qpzmwx")).await;
            if s["hits"].as_array().is_some_and(|h| !h.is_empty()) {
                break;
            }
            assert!(changed.elapsed() < Duration::from_secs(3), "B's search missed A's change: {s}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        // A grant made on A and revoked on B is refused on A.
        let r = gaj
            .post(format!("{ua}/api/v1/grants"))
            .json(&json!({"resource_id": "101/000001", "grantee": {"department": "wjw"}, "fields": ["性别", "区县"],
                "purpose": "妇幼健康服务", "expires_at": "2099-01-01T00:00:00Z"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
        let grant: Value = r.json().await.unwrap();
        let wjw = reqwest::Client::builder().cookie_store(true).build().unwrap();
        let r = wjw
            .post(format!("{ua}/api/v1/auth/login"))
            .json(&json!({"username": "wjw-analyst", "password": citydata_testkit::DEMO_PASSWORD}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let read = format!("{ua}/api/v1/resources/101%2F000001/rows?limit=5");
        assert_eq!(wjw.get(&read).send().await.unwrap().status(), 200);
        let r = gaj.post(format!("{ub}/api/v1/grants/{}/revoke", grant["id"].as_str().unwrap())).send().await.unwrap();
        assert!(r.status().is_success(), "{}", r.text().await.unwrap());
        assert_eq!(wjw.get(&read).send().await.unwrap().status(), 403, "A refuses what B revoked");
    });
    // A node dies: the other goes on with the same session, rows and catalog.
    let _ = Command::new("kill").args(["-KILL", &a.id().to_string()]).status();
    let _ = a.wait();
    rt.block_on(async {
        let (s, me) = json_get(&gaj, format!("{ub}/api/v1/me")).await;
        assert_eq!((s, me["username"].as_str()), (200, Some("gaj-steward")), "the session outlives A: {me}");
        let (s, rows) = json_get(&gaj, format!("{ub}/api/v1/resources/101%2F000001/rows?limit=100")).await;
        assert_eq!((s, rows["rows"].as_array().map(Vec::len)), (200, Some(30)), "{rows}");
        let (_, hits) = json_get(&gaj, format!("{ub}/api/v1/search?q=qpzmwx")).await;
        assert!(hits["hits"].as_array().is_some_and(|h| !h.is_empty()), "{hits}");
    });
    Command::new("kill").args(["-TERM", &b.id().to_string()]).status().unwrap();
    b.wait().unwrap();
}
