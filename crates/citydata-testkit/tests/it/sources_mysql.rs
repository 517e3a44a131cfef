//! 前置机 pulls from MySQL / MariaDB (#18) against a real server: a scratch database created on
//! the local MariaDB (`CITYDATA_TEST_MYSQL_URL`, made by `scripts/mysql-setup.sh`) is a
//! department's business database. The first run takes every row; updates, inserts and soft
//! deletes between runs arrive exactly; an unchanged source commits nothing; a renamed column
//! fails the run naming it and leaves data and watermark alone; a wrong password fails without
//! echoing the server; the password is never returned; other departments see no source.

use crate::sources::{options, resource_id, run_now, set_compare_keys, settled, table, table_version, uscc};
use citydata_testkit::{assert_error, spawn_app_with};
use serde_json::{Value, json};
use sqlx::{Connection, Executor};

/// The MariaDB admin URL; without it the test skips (fails under `CI=true`).
fn mysql_url(test: &str) -> Option<String> {
    let url = std::env::var("CITYDATA_TEST_MYSQL_URL").ok().filter(|s| !s.trim().is_empty());
    if url.is_none() {
        assert!(
            std::env::var("CI").ok().as_deref() != Some("true"),
            "{test}: CI=true but CITYDATA_TEST_MYSQL_URL is not set (scripts/mysql-setup.sh prints it)"
        );
        eprintln!("skipped {test}: set CITYDATA_TEST_MYSQL_URL (scripts/mysql-setup.sh)");
    }
    url
}

struct SourceDb {
    url: String,
    conn: sqlx::MySqlConnection,
}

impl SourceDb {
    async fn new(admin: &str) -> Self {
        let name = format!("citydata_src_{}", uuid::Uuid::new_v4().simple());
        let mut admin_conn = sqlx::MySqlConnection::connect(admin).await.expect("connect to MariaDB");
        admin_conn.execute(format!("CREATE DATABASE `{name}` CHARACTER SET utf8mb4").as_str()).await.unwrap();
        let url = format!("{}{name}", admin.trim_end_matches('/').to_string() + "/");
        let mut conn = sqlx::MySqlConnection::connect(&url).await.unwrap();
        conn.execute(
            "CREATE TABLE credit (tyshxydm VARCHAR(18) PRIMARY KEY, pjdj VARCHAR(8), pjrq DATE, \
             updated_at DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6) ON UPDATE CURRENT_TIMESTAMP(6), \
             deleted BOOLEAN NOT NULL DEFAULT FALSE)",
        )
        .await
        .unwrap();
        Self { url, conn }
    }

    async fn exec(&mut self, sql: &str) {
        self.conn.execute(sql).await.unwrap();
    }
}

#[tokio::test]
async fn mysql_source_pulls_increments_updates_and_soft_deletes_exactly() {
    let Some(admin) = mysql_url("mysql_source_pulls_increments_updates_and_soft_deletes_exactly") else {
        return;
    };
    let app = spawn_app_with(options()).await;
    let mut db = SourceDb::new(&admin).await;
    let (a, b, c3, d) =
        (uscc("91321200MA200001"), uscc("91321200MA200002"), uscc("91321200MA200003"), uscc("91321200MA200004"));
    db.exec(&format!(
        "INSERT INTO credit (tyshxydm, pjdj, pjrq) VALUES ('{a}', 'B', '2025-01-05'), ('{b}', 'C', '2025-02-01'), ('{c3}', 'A', '2025-03-01')"
    ))
    .await;
    let steward = app.login("scjgj-steward").await;
    let rid = resource_id(&app, "104/000001").await;
    // A wrong password: refused without the server's words or the password.
    let r = steward
        .post(app.url("/api/v1/sources"))
        .json(&json!({
            "name": "企业信用评价（MySQL 前置机）", "kind": "mysql", "resource_id": "104/000001",
            "connection": {"url": db.url.replacen(":citydata@", ":wrong-pass@", 1)}, "table": "credit", "mode": "upsert",
            "watermark": "updated_at", "deleted": "deleted", "max_retries": 0
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let bad: Value = r.json().await.unwrap();
    let run = run_now(&app, &steward, bad["id"].as_str().unwrap()).await;
    assert_eq!(run["state"], "failed", "{run}");
    let text = run.to_string();
    assert!(text.contains("refused the user name or password"), "{text}");
    assert!(!text.contains("wrong-pass") && !text.contains("Access denied"), "{text}");

    let r = steward
        .post(app.url("/api/v1/sources"))
        .json(&json!({
            "name": "企业信用评价（MySQL 前置机）", "kind": "mysql", "resource_id": "104/000001",
            "connection": {"url": db.url}, "table": "credit", "mode": "upsert",
            "watermark": "updated_at", "deleted": "deleted", "schedule": "every 6h", "max_retries": 0
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let text = r.text().await.unwrap();
    assert!(!text.contains(":citydata@"), "the password is sealed: {text}");
    let source: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(source["kind"], "mysql");
    assert_eq!(source["connection"]["has_password"], true);
    let sid = source["id"].as_str().unwrap().to_string();
    let wjw = app.login("wjw-steward").await;
    assert_error(wjw.get(app.url(&format!("/api/v1/sources/{sid}"))).send().await.unwrap(), 404, "not_found").await;

    // 1. Everything.
    let run = run_now(&app, &steward, &sid).await;
    assert_eq!(run["state"], "succeeded", "{run}");
    assert_eq!(run["report"]["rows_committed"], 3, "{run}");
    let t = table(&app, &steward, &rid).await;
    assert_eq!(t.len(), 3);
    assert_eq!(t[&a], "B");

    // 2. An update, an insert and a soft delete.
    db.exec(&format!("UPDATE credit SET pjdj = 'A' WHERE tyshxydm = '{a}'")).await;
    db.exec(&format!("INSERT INTO credit (tyshxydm, pjdj, pjrq) VALUES ('{d}', 'D', '2025-04-01')")).await;
    db.exec(&format!("UPDATE credit SET deleted = TRUE WHERE tyshxydm = '{b}'")).await;
    let run = run_now(&app, &steward, &sid).await;
    assert_eq!(run["state"], "succeeded", "{run}");
    assert_eq!(run["report"]["rows_committed"], 2, "{run}");
    assert_eq!(run["report"]["rows_deleted"], 1, "{run}");
    let t = table(&app, &steward, &rid).await;
    assert_eq!(t.keys().cloned().collect::<Vec<_>>(), vec![a.clone(), c3.clone(), d.clone()]);
    assert_eq!(t[&a], "A");
    assert_eq!(t[&d], "D");
    let version = table_version(&app, &steward, &rid).await;

    // 3. Unchanged: nothing committed.
    let run = run_now(&app, &steward, &sid).await;
    assert_eq!(run["report"]["unchanged"], true, "{run}");
    assert_eq!(table_version(&app, &steward, &rid).await, version);

    // 3b. A hard delete at the source, found by comparing keys.
    set_compare_keys(&app, &steward, &sid, true).await;
    db.exec(&format!("DELETE FROM credit WHERE tyshxydm = '{d}'")).await;
    let run = run_now(&app, &steward, &sid).await;
    assert_eq!(run["state"], "succeeded", "{run}");
    assert_eq!(run["report"]["rows_deleted"], 1, "{run}");
    assert!(!table(&app, &steward, &rid).await.contains_key(&d));
    set_compare_keys(&app, &steward, &sid, false).await;

    // 4. A renamed column: the run fails naming it; table and watermark stay.
    let before: Value =
        steward.get(app.url(&format!("/api/v1/sources/{sid}"))).send().await.unwrap().json().await.unwrap();
    db.exec("ALTER TABLE credit CHANGE pjdj grade VARCHAR(8)").await;
    db.exec(&format!("UPDATE credit SET grade = 'B' WHERE tyshxydm = '{c3}'")).await;
    let run = run_now(&app, &steward, &sid).await;
    assert_eq!(run["state"], "failed", "{run}");
    assert!(run["error"].as_str().unwrap().contains("grade"), "{run}");
    assert_eq!(table(&app, &steward, &rid).await[&c3], "A");
    let after: Value =
        steward.get(app.url(&format!("/api/v1/sources/{sid}"))).send().await.unwrap().json().await.unwrap();
    assert_eq!(before["watermark_value"], after["watermark_value"]);

    // 5. Back: the watermark resumes where the last commit left it.
    db.exec("ALTER TABLE credit CHANGE grade pjdj VARCHAR(8)").await;
    let run = run_now(&app, &steward, &sid).await;
    assert_eq!(run["state"], "succeeded", "{run}");
    assert_eq!(run["report"]["rows_committed"], 1, "only the row changed since the last commit: {run}");
    assert_eq!(table(&app, &steward, &rid).await[&c3], "B");
    settled(&app, &steward, &sid).await;

    // A PostgreSQL URL on a MySQL source is refused naming the field.
    let r = steward
        .post(app.url("/api/v1/sources"))
        .json(&json!({"name": "x", "kind": "mysql", "resource_id": "104/000001",
                      "connection": {"url": "postgres://u@203.0.113.9/x"}, "table": "credit"}))
        .send()
        .await
        .unwrap();
    let e = assert_error(r, 400, "validation_failed").await;
    assert!(e.to_string().contains("connection.url") && e.to_string().contains("mysql://"), "{e}");
}
