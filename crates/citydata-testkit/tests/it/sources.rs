//! Scheduled collection (#18) against real components: a scratch database created in the
//! running PostgreSQL is a department's business database (前置机); the app pulls it through
//! the upload path. Inserts, updates and soft deletes between runs show up exactly; an
//! unchanged source commits nothing; a renamed column or a dead connection fails the run with
//! its reason and leaves the data as it was; a run whose node died is failed after its lease
//! and taken over; a second running run of one source is impossible; abort stops a run
//! before it commits. Other departments and anonymous callers see no source.

use citydata_testkit::{SpawnOptions, TestApp, assert_error, spawn_app, spawn_app_with};
use serde_json::{Value, json};
use sqlx::Connection;
use std::collections::BTreeMap;
use std::time::Duration;

/// The PostgreSQL the pulled-from database is created in: `CITYDATA_TEST_SOURCE_DATABASE_URL`,
/// else `CITYDATA_TEST_DATABASE_URL`; without both the test skips (fails under `CI=true`).
fn source_admin_url(test: &str) -> Option<String> {
    let url = std::env::var("CITYDATA_TEST_SOURCE_DATABASE_URL")
        .ok()
        .or_else(|| std::env::var("CITYDATA_TEST_DATABASE_URL").ok())
        .filter(|s| !s.trim().is_empty());
    if url.is_none() {
        assert!(
            std::env::var("CI").ok().as_deref() != Some("true"),
            "{test}: CI=true but neither CITYDATA_TEST_SOURCE_DATABASE_URL nor CITYDATA_TEST_DATABASE_URL is set"
        );
        eprintln!("skipped {test}: set CITYDATA_TEST_SOURCE_DATABASE_URL (a PostgreSQL admin URL)");
    }
    url
}

/// Loopback databases are reachable only when allowed (the webhook address rule); short
/// leases so that a dead node's run is settled soon.
pub(crate) fn options() -> SpawnOptions {
    SpawnOptions {
        configure: Some(|s| {
            s.webhook_allow_cidrs = vec!["127.0.0.0/8".into()];
            s.ingest_lease_secs = 2;
        }),
        ..Default::default()
    }
}

/// A valid 统一社会信用代码 from 16 characters (the organization code's check digit and the
/// code's own are computed).
pub(crate) fn uscc(first16: &str) -> String {
    use citydata_domain::identifiers::{org_check_char, uscc_check_char};
    let first17 = format!("{first16}{}", org_check_char(&first16[8..]).unwrap());
    format!("{first17}{}", uscc_check_char(&first17).unwrap())
}

struct SourceDb {
    url: String,
    conn: sqlx::PgConnection,
}

impl SourceDb {
    async fn new(admin: &str) -> Self {
        let url = citydata_store_postgres::testing::create_database(admin).await.expect("create the source database");
        let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
        sqlx::raw_sql(
            "CREATE TABLE credit (tyshxydm TEXT PRIMARY KEY, pjdj TEXT, pjrq DATE, \
             updated_at TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp(), deleted BOOLEAN NOT NULL DEFAULT FALSE)",
        )
        .execute(&mut conn)
        .await
        .unwrap();
        Self { url, conn }
    }

    async fn exec(&mut self, sql: &str) {
        sqlx::raw_sql(sql).execute(&mut self.conn).await.unwrap();
    }
}

pub(crate) async fn resource_id(app: &TestApp, code: &str) -> String {
    app.store.find_resource(code).await.unwrap().unwrap().id.to_string()
}

/// The table's rows as (统一社会信用代码 → 评价等级), read through the API as the provider.
pub(crate) async fn table(app: &TestApp, c: &reqwest::Client, rid: &str) -> BTreeMap<String, Value> {
    let r: Value =
        c.get(app.url(&format!("/api/v1/resources/{rid}/rows?limit=1000"))).send().await.unwrap().json().await.unwrap();
    r["rows"]
        .as_array()
        .unwrap_or(&vec![])
        .iter()
        .map(|row| (row["tyshxydm"].as_str().unwrap().to_string(), row["pjdj"].clone()))
        .collect()
}

pub(crate) async fn table_version(app: &TestApp, c: &reqwest::Client, rid: &str) -> Value {
    let r: Value =
        c.get(app.url(&format!("/api/v1/resources/{rid}/rows?limit=1"))).send().await.unwrap().json().await.unwrap();
    r["version"].clone()
}

const ENDED: [&str; 3] = ["succeeded", "failed", "aborted"];

/// Wait (up to 120 s) until the run has ended; its view.
pub(crate) async fn finished(app: &TestApp, c: &reqwest::Client, source: &str, run: &str) -> Value {
    for _ in 0..1200 {
        let v: Value =
            c.get(app.url(&format!("/api/v1/sources/{source}/runs/{run}"))).send().await.unwrap().json().await.unwrap();
        if ENDED.contains(&v["state"].as_str().unwrap_or("")) {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("run {run} never ended");
}

/// Wait until no run of the source is queued or running; all its runs.
pub(crate) async fn settled(app: &TestApp, c: &reqwest::Client, source: &str) -> Vec<Value> {
    settled_with(app, c, source, 0).await
}

/// Wait until the source has at least `n` runs and none is queued or running (a retry is
/// queued just after the run it follows has ended, so a count says when it has come).
pub(crate) async fn settled_with(app: &TestApp, c: &reqwest::Client, source: &str, n: usize) -> Vec<Value> {
    for _ in 0..1200 {
        let runs: Vec<Value> =
            c.get(app.url(&format!("/api/v1/sources/{source}/runs"))).send().await.unwrap().json().await.unwrap();
        if runs.len() >= n && runs.iter().all(|r| ENDED.contains(&r["state"].as_str().unwrap_or(""))) {
            return runs;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("source {source} kept a run queued or running");
}

/// Turn the source's key comparison on or off.
pub(crate) async fn set_compare_keys(app: &TestApp, c: &reqwest::Client, source: &str, on: bool) {
    let r = c
        .patch(app.url(&format!("/api/v1/sources/{source}")))
        .json(&json!({ "compare_keys": on }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
}

pub(crate) async fn run_now(app: &TestApp, c: &reqwest::Client, source: &str) -> Value {
    let r = c.post(app.url(&format!("/api/v1/sources/{source}/run"))).send().await.unwrap();
    assert_eq!(r.status(), 202);
    let run: Value = r.json().await.unwrap();
    finished(app, c, source, run["run_id"].as_str().unwrap()).await
}

#[tokio::test]
async fn postgres_source_pulls_increments_updates_and_soft_deletes_exactly() {
    let Some(admin) = source_admin_url("postgres_source_pulls_increments_updates_and_soft_deletes_exactly") else {
        return;
    };
    let app = spawn_app_with(options()).await;
    let mut db = SourceDb::new(&admin).await;
    let (a, b, c3, d) =
        (uscc("91321200MA100001"), uscc("91321200MA100002"), uscc("91321200MA100003"), uscc("91321200MA100004"));
    db.exec(&format!(
        "INSERT INTO credit (tyshxydm, pjdj, pjrq) VALUES ('{a}', 'B', '2025-01-05'), ('{b}', 'C', '2025-02-01'), ('{c3}', 'A', '2025-03-01')"
    ))
    .await;
    let steward = app.login("scjgj-steward").await;
    let rid = resource_id(&app, "104/000001").await;
    // An interval, not a cron: a cron on wall-clock hours ("0 */6 * * *") fired in the middle
    // of a CI run at 06:00 Beijing time, and "run now" answered with the scheduled run.
    let r = steward
        .post(app.url("/api/v1/sources"))
        .json(&json!({
            "name": "企业信用评价（前置机）", "kind": "postgres", "resource_id": "104/000001",
            "connection": {"url": db.url}, "table": "credit", "mode": "upsert",
            "watermark": "updated_at", "deleted": "deleted", "schedule": "every 6h", "max_retries": 0
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let text = r.text().await.unwrap();
    // The password is sealed, never returned.
    assert!(!text.contains(":citydata@"), "{text}");
    let source: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(source["connection"]["has_password"], true);
    assert!(source["next_run_at"].is_string(), "a schedule gives a next run: {source}");
    let sid = source["id"].as_str().unwrap().to_string();

    // Another department and the anonymous public see nothing of it.
    let wjw = app.login("wjw-steward").await;
    let listed: Vec<Value> = wjw.get(app.url("/api/v1/sources")).send().await.unwrap().json().await.unwrap();
    assert!(listed.is_empty());
    for (method, path) in [
        ("GET", format!("/api/v1/sources/{sid}")),
        ("POST", format!("/api/v1/sources/{sid}/run")),
        ("GET", format!("/api/v1/sources/{sid}/runs")),
    ] {
        let req = if method == "GET" { wjw.get(app.url(&path)) } else { wjw.post(app.url(&path)) };
        assert_error(req.send().await.unwrap(), 404, "not_found").await;
    }
    assert_eq!(app.client.get(app.url("/api/v1/sources")).send().await.unwrap().status(), 401);
    let patched =
        wjw.patch(app.url(&format!("/api/v1/sources/{sid}"))).json(&json!({"enabled": false})).send().await.unwrap();
    assert_eq!(patched.status(), 404);

    // 1. The first run takes everything.
    let run = run_now(&app, &steward, &sid).await;
    assert_eq!(run["state"], "succeeded", "{run}");
    let ingest: Value = steward
        .get(app.url(&format!("/api/v1/resources/{rid}/ingests/{}", run["report"]["ingest_ids"][0].as_str().unwrap())))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(run["report"]["rows_committed"], 3, "{run} {ingest}");
    let t = table(&app, &steward, &rid).await;
    assert_eq!(t.len(), 3);
    assert_eq!(t[&a], "B");

    // 2. An update, an insert and a soft delete.
    db.exec(&format!(
        "UPDATE credit SET pjdj = 'A', updated_at = clock_timestamp() WHERE tyshxydm = '{a}';
         INSERT INTO credit (tyshxydm, pjdj, pjrq) VALUES ('{d}', 'D', '2025-04-01');
         UPDATE credit SET deleted = TRUE, updated_at = clock_timestamp() WHERE tyshxydm = '{b}';"
    ))
    .await;
    let run = run_now(&app, &steward, &sid).await;
    assert_eq!(run["state"], "succeeded", "{run}");
    assert_eq!(run["report"]["rows_committed"], 2, "{run}");
    assert_eq!(run["report"]["rows_deleted"], 1, "{run}");
    let t = table(&app, &steward, &rid).await;
    assert_eq!(t.keys().cloned().collect::<Vec<_>>(), vec![a.clone(), c3.clone(), d.clone()]);
    assert_eq!(t[&a], "A");
    assert_eq!(t[&d], "D");
    let version = table_version(&app, &steward, &rid).await;
    assert_eq!(run["report"]["table_version"], version);

    // 3. Nothing changed: nothing is committed.
    let run = run_now(&app, &steward, &sid).await;
    assert_eq!(run["state"], "succeeded", "{run}");
    assert_eq!(run["report"]["unchanged"], true, "{run}");
    assert_eq!(run["report"]["rows_committed"], 0);
    assert_eq!(table_version(&app, &steward, &rid).await, version);
    // … and yet the run counts as the resource's update for timeliness.
    let resource = app.store.find_resource("104/000001").await.unwrap().unwrap();
    let last = app.core.last_commit_at(&resource).await.unwrap().unwrap();
    let finished_at: chrono::DateTime<chrono::Utc> = run["finished_at"].as_str().unwrap().parse().unwrap();
    assert_eq!(last, finished_at);

    // 3b. Hard deletes: with compare_keys a row deleted at the source goes here too; a
    // comparison that would delete more than half the table is refused and changes nothing.
    let more: Vec<String> = (10..20).map(|i| uscc(&format!("91321200MA1000{i}"))).collect();
    let values: Vec<String> = more.iter().map(|k| format!("('{k}', 'B', '2025-05-01')")).collect();
    db.exec(&format!("INSERT INTO credit (tyshxydm, pjdj, pjrq) VALUES {}", values.join(", "))).await;
    set_compare_keys(&app, &steward, &sid, true).await;
    let run = run_now(&app, &steward, &sid).await;
    assert_eq!(run["state"], "succeeded", "{run}");
    assert_eq!(run["report"]["rows_committed"], 10, "{run}");
    assert_eq!(run["report"]["rows_deleted"], 0, "nothing to delete yet: {run}");
    db.exec(&format!("DELETE FROM credit WHERE tyshxydm = '{d}'")).await;
    let run = run_now(&app, &steward, &sid).await;
    assert_eq!(run["state"], "succeeded", "{run}");
    assert_eq!(run["report"]["rows_deleted"], 1, "{run}");
    let t = table(&app, &steward, &rid).await;
    assert_eq!(t.len(), 12);
    assert!(!t.contains_key(&d));
    db.exec("CREATE TABLE credit_saved AS SELECT * FROM credit; DELETE FROM credit WHERE pjdj = 'B'").await;
    let run = run_now(&app, &steward, &sid).await;
    assert_eq!(run["state"], "failed", "{run}");
    assert!(run["error"].as_str().unwrap().contains("more than half"), "{run}");
    assert_eq!(table(&app, &steward, &rid).await.len(), 12, "the data stays");
    db.exec("INSERT INTO credit SELECT * FROM credit_saved WHERE pjdj = 'B'").await;
    set_compare_keys(&app, &steward, &sid, false).await;
    let run = run_now(&app, &steward, &sid).await;
    assert_eq!(run["state"], "succeeded", "a success ends the failure streak: {run}");

    // 4. Columns that no longer match the items: the run fails naming the column, the table
    // and the watermark stay.
    let before: Value =
        steward.get(app.url(&format!("/api/v1/sources/{sid}"))).send().await.unwrap().json().await.unwrap();
    db.exec(&format!("ALTER TABLE credit RENAME COLUMN pjdj TO grade; UPDATE credit SET updated_at = clock_timestamp() WHERE tyshxydm = '{c3}'"))
        .await;
    let run = run_now(&app, &steward, &sid).await;
    assert_eq!(run["state"], "failed", "{run}");
    assert!(run["error"].as_str().unwrap().contains("grade"), "{run}");
    assert_eq!(table(&app, &steward, &rid).await.len(), 12);
    let after: Value =
        steward.get(app.url(&format!("/api/v1/sources/{sid}"))).send().await.unwrap().json().await.unwrap();
    assert_eq!(before["watermark_value"], after["watermark_value"]);
    assert_eq!(after["consecutive_failures"], 1);

    // 5. A connection that fails, retried with backoff: three failures in a row tell the
    // provider's stewards; the data stays.
    db.exec("ALTER TABLE credit RENAME COLUMN grade TO pjdj").await;
    let r = steward
        .patch(app.url(&format!("/api/v1/sources/{sid}")))
        .json(&json!({"connection": {"url": "postgres://citydata@127.0.0.1:1/nothing"}, "max_retries": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let run = run_now(&app, &steward, &sid).await;
    assert_eq!(run["state"], "failed", "{run}");
    assert!(run["error"].as_str().unwrap().contains("cannot connect"), "{run}");
    // Runs so far: 3 successes, the column failure, this failure and its retry. The retry is
    // queued only after the failure is recorded, so every run may have ended before it exists
    // (a PostgreSQL CI run saw that window): wait for it.
    let mut runs = settled_with(&app, &steward, &sid, 6).await;
    for _ in 0..600 {
        if runs[0]["cause"] == "retry" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        runs = settled_with(&app, &steward, &sid, 6).await;
    }
    assert_eq!(runs[0]["cause"], "retry", "{runs:?}");
    assert_eq!(runs[0]["state"], "failed");
    // The notice goes out right after the third failure in a row has been recorded.
    let mut inbox = Value::Null;
    for _ in 0..600 {
        inbox = steward.get(app.url("/api/v1/inbox")).send().await.unwrap().json().await.unwrap();
        if inbox.to_string().contains("source.failing") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(inbox.to_string().contains("source.failing"), "{inbox}");
    assert_eq!(table(&app, &steward, &rid).await.len(), 12);

    // 6. Back to the right database: the watermark resumes where the last commit left it.
    let r = steward
        .patch(app.url(&format!("/api/v1/sources/{sid}")))
        .json(&json!({"connection": {"url": db.url}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let run = run_now(&app, &steward, &sid).await;
    assert_eq!(run["state"], "succeeded", "{run}");
    assert_eq!(run["report"]["rows_committed"], 1, "only the row changed since the last commit: {run}");
    settled(&app, &steward, &sid).await;
}

#[tokio::test]
async fn a_dead_nodes_run_is_settled_after_its_lease_and_one_source_never_runs_twice() {
    let Some(admin) = source_admin_url("a_dead_nodes_run_is_settled_after_its_lease_and_one_source_never_runs_twice")
    else {
        return;
    };
    let app = spawn_app_with(options()).await;
    let mut db = SourceDb::new(&admin).await;
    let a = uscc("91321200MA200001");
    db.exec(&format!("INSERT INTO credit (tyshxydm, pjdj, pjrq) VALUES ('{a}', 'B', '2025-01-05')")).await;
    let steward = app.login("scjgj-steward").await;
    let rid = resource_id(&app, "104/000001").await;
    let source: Value = steward
        .post(app.url("/api/v1/sources"))
        .json(&json!({
            "name": "企业信用评价", "kind": "postgres", "resource_id": rid,
            "connection": {"url": db.url}, "query": "SELECT tyshxydm, pjdj, pjrq, updated_at FROM credit WHERE NOT deleted",
            "watermark": "updated_at", "max_retries": 1
        }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let sid: uuid::Uuid = source["id"].as_str().unwrap().parse().unwrap();
    // Another node claimed a run and died: its lease runs out in a second.
    let now = chrono::Utc::now();
    let dead = citydata_store::SourceRunRecord {
        id: uuid::Uuid::now_v7(),
        source_id: sid,
        state: "running".into(),
        cause: "schedule".into(),
        attempt: 0,
        not_before: now,
        node: Some("dead-node".into()),
        lease_until: Some(now + chrono::Duration::seconds(1)),
        abort_requested: false,
        report: None,
        error: None,
        created_at: now,
        started_at: Some(now),
        finished_at: None,
    };
    app.store.create_run(&dead).await.unwrap();
    // A second running run of the same source is refused by the store.
    let twin = citydata_store::SourceRunRecord { id: uuid::Uuid::now_v7(), node: Some("other".into()), ..dead.clone() };
    assert!(app.store.create_run(&twin).await.is_err(), "two running runs of one source");
    // Run now answers the run under way.
    let r: Value =
        steward.post(app.url(&format!("/api/v1/sources/{sid}/run"))).send().await.unwrap().json().await.unwrap();
    assert_eq!(r["run_id"], dead.id.to_string());
    // After the lease: failed with the reason, and a retry takes it over to the end.
    let settled_dead = finished(&app, &steward, &sid.to_string(), &dead.id.to_string()).await;
    assert_eq!(settled_dead["state"], "failed");
    assert!(settled_dead["error"].as_str().unwrap().contains("lease"), "{settled_dead}");
    let runs = settled_with(&app, &steward, &sid.to_string(), 2).await;
    assert_eq!(runs.len(), 2, "{runs:?}");
    assert_eq!(runs[0]["cause"], "retry");
    assert_eq!(runs[0]["state"], "succeeded", "{runs:?}");
    assert_eq!(table(&app, &steward, &rid).await.len(), 1);

    // Abort: a run stuck in a slow query stops without committing.
    db.exec(&format!(
        "INSERT INTO credit (tyshxydm, pjdj, pjrq) VALUES ('{}', 'A', '2025-01-06')",
        uscc("91321200MA200002")
    ))
    .await;
    let r = steward
        .patch(app.url(&format!("/api/v1/sources/{sid}")))
        .json(&json!({"query": "SELECT c.tyshxydm, c.pjdj, c.pjrq, c.updated_at FROM credit c, (SELECT pg_sleep(120)) s"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // An abort sent at once may meet the run queued, or just taken by a worker: either way it
    // is answered 200 and the run ends aborted (CI once saw a 409 when a worker took the run
    // between the abort's read and its write).
    let wjw = app.login("wjw-steward").await;
    for _ in 0..5 {
        let started: Value =
            steward.post(app.url(&format!("/api/v1/sources/{sid}/run"))).send().await.unwrap().json().await.unwrap();
        let run_id = started["run_id"].as_str().unwrap().to_string();
        let r = steward.post(app.url(&format!("/api/v1/runs/{run_id}/abort"))).send().await.unwrap();
        assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
        let r = wjw.post(app.url(&format!("/api/v1/runs/{run_id}/abort"))).send().await.unwrap();
        assert_error(r, 404, "not_found").await;
        let run = finished(&app, &steward, &sid.to_string(), &run_id).await;
        assert_eq!(run["state"], "aborted", "{run}");
    }
    assert_eq!(table(&app, &steward, &rid).await.len(), 1, "nothing committed");
    settled(&app, &steward, &sid.to_string()).await;
}

#[tokio::test]
async fn bad_sources_are_refused_naming_the_field() {
    let app = spawn_app().await;
    let steward = app.login("scjgj-steward").await;
    let base = json!({
        "name": "x", "kind": "postgres", "resource_id": "104/000001",
        "connection": {"url": "postgres://u:secret@db.example.invalid/x"}, "table": "credit"
    });
    let with = |k: &str, v: Value| {
        let mut b = base.clone();
        b[k] = v;
        b
    };
    for (body, field, word) in [
        (with("schedule", json!("0 25 * * *")), "schedule", "hour"),
        (with("schedule", json!("61 * * * *")), "schedule", "minute"),
        (with("schedule", json!("every sometimes")), "schedule", "every"),
        (with("kind", json!("ftp")), "kind", "ftp"),
        (with("table", json!("credit; DROP TABLE x")), "table", "table"),
        (with("mode", json!("merge")), "mode", "mode"),
    ] {
        let r = steward.post(app.url("/api/v1/sources")).json(&body).send().await.unwrap();
        let e = assert_error(r, 400, "validation_failed").await;
        let text = e.to_string();
        assert!(text.contains(&format!("\"{field}\"")) && text.contains(word), "{body} → {text}");
        assert!(!text.contains("secret"), "{text}");
    }
    // Loopback and private addresses are refused unless the operator allows them.
    let r = steward
        .post(app.url("/api/v1/sources"))
        .json(&with("connection", json!({"url": "postgres://u@127.0.0.1:5432/x"})))
        .send()
        .await
        .unwrap();
    let e = assert_error(r, 400, "validation_failed").await;
    assert!(e.to_string().contains("address_not_allowed"), "{e}");
    // Analysts and other departments may not create sources for scjgj's resource.
    for user in ["wjw-analyst", "wjw-steward"] {
        let c = app.login(user).await;
        let r = c
            .post(app.url("/api/v1/sources"))
            .json(&with("connection", json!({"url": "postgres://u@203.0.113.9/x"})))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 403, "{user}");
    }
    assert!(app.store.list_sources(None).await.unwrap().is_empty());
}
