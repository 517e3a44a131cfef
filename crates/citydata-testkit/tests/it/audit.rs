//! The hash-chained audit log: tampering of every kind is caught; concurrent writers never
//! fork the chain.

use citydata_testkit::{SpawnOptions, spawn_app, spawn_app_with};
use serde_json::{Value, json};

/// Verify through the API with a bearer token: reads append nothing, so the chain seen is
/// exactly the tampered one.
async fn verify_with(app: &citydata_testkit::TestApp, token: &str) -> Value {
    reqwest::Client::new()
        .get(app.url("/api/v1/audit/verify"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

async fn verify(app: &citydata_testkit::TestApp) -> Value {
    let token = app.token("admin").await;
    verify_with(app, &token).await
}

/// Make a few audited mutations; return the app and an admin token.
async fn app_with_history() -> (citydata_testkit::TestApp, String) {
    let app = spawn_app().await;
    let admin = app.token("admin").await;
    let c = app.login("gaj-steward").await;
    for i in 0..5 {
        c.post(app.url("/api/v1/tokens")).json(&json!({"name": format!("t{i}")})).send().await.unwrap();
    }
    let v = verify_with(&app, &admin).await;
    assert_eq!(v["ok"], true, "{v}");
    (app, admin)
}

fn first_break(v: &Value) -> (i64, String) {
    assert_eq!(v["ok"], false, "tampering was not detected: {v}");
    (v["first_break"]["seq"].as_i64().unwrap(), v["first_break"]["kind"].as_str().unwrap().to_string())
}

#[tokio::test]
async fn an_edited_entry_is_named() {
    let (app, admin) = app_with_history().await;
    app.exec_sql("UPDATE audit_log SET actor = 'mallory' WHERE seq = 8").await;
    assert_eq!(first_break(&verify_with(&app, &admin).await), (8, "edited".into()));
}

#[tokio::test]
async fn an_edited_outcome_or_time_is_named() {
    let (app, admin) = app_with_history().await;
    app.exec_sql("UPDATE audit_log SET outcome = 'denied' WHERE seq = 9").await;
    assert_eq!(first_break(&verify_with(&app, &admin).await).0, 9);
}

#[tokio::test]
async fn a_deleted_entry_is_named() {
    let (app, admin) = app_with_history().await;
    app.exec_sql("DELETE FROM audit_log WHERE seq = 7").await;
    let (seq, kind) = first_break(&verify_with(&app, &admin).await);
    assert_eq!((seq, kind.as_str()), (8, "unlinked"));
}

#[tokio::test]
async fn a_deleted_last_entry_is_caught_by_the_head() {
    let (app, admin) = app_with_history().await;
    let max = verify_with(&app, &admin).await["entries"].as_i64().unwrap();
    app.exec_sql(&format!("DELETE FROM audit_log WHERE seq = {max}")).await;
    let (_, kind) = first_break(&verify_with(&app, &admin).await);
    assert_eq!(kind, "truncated");
}

#[tokio::test]
async fn an_inserted_entry_is_named() {
    let (app, admin) = app_with_history().await;
    // Shift entries 6.. up by one and forge an entry 6 that claims to follow entry 5.
    app.exec_sql("UPDATE audit_log SET seq = -(seq + 1) WHERE seq >= 6").await;
    app.exec_sql("UPDATE audit_log SET seq = -seq WHERE seq < 0").await;
    app.exec_sql(
        "INSERT INTO audit_log (seq, at, actor, department, action, target, outcome, request_id, client, details, prev_hash, hash) \
         SELECT 6, at, 'mallory', department, action, target, outcome, request_id, client, details, hash, hash FROM audit_log WHERE seq = 5",
    )
    .await;
    let (seq, _) = first_break(&verify_with(&app, &admin).await);
    assert_eq!(seq, 6);
}

#[tokio::test]
async fn reordered_entries_are_named() {
    let (app, admin) = app_with_history().await;
    app.exec_sql("UPDATE audit_log SET seq = -1 WHERE seq = 7").await;
    app.exec_sql("UPDATE audit_log SET seq = 7 WHERE seq = 8").await;
    app.exec_sql("UPDATE audit_log SET seq = 8 WHERE seq = -1").await;
    let (seq, _) = first_break(&verify_with(&app, &admin).await);
    assert_eq!(seq, 7);
}

/// 8 concurrent writers × 200 audited mutations each: the chain verifies and has every entry.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_writers_never_fork_the_chain() {
    let app = spawn_app().await;
    let token = app.token("wjw-analyst").await;
    let admin = app.token("admin").await;
    let before = verify_with(&app, &admin).await["entries"].as_i64().unwrap();
    let mut tasks = Vec::new();
    for w in 0..8 {
        let url = app.url("/api/v1/tokens");
        let token = token.clone();
        tasks.push(tokio::spawn(async move {
            let c = reqwest::Client::new();
            for i in 0..200 {
                let r =
                    c.post(&url).bearer_auth(&token).json(&json!({"name": format!("w{w}-{i}")})).send().await.unwrap();
                assert_eq!(r.status(), 201);
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let v = verify_with(&app, &admin).await;
    assert_eq!(v["ok"], true, "{v}");
    assert_eq!(v["entries"].as_i64().unwrap(), before + 1600);
}

/// Two server processes sharing one PostgreSQL append into one chain.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_servers_sharing_postgres_keep_one_chain() {
    if !citydata_testkit::postgres_or_skip("two_servers_sharing_postgres_keep_one_chain") {
        return;
    }
    let a = spawn_app().await;
    // Nodes of one deployment share the checkpoint key (a mounted secret), as they share the database.
    let b = spawn_app_with(SpawnOptions {
        database_url: Some(a.database_url.clone()),
        audit_key_file: Some(a.data_dir.path().join("audit.key")),
        ..Default::default()
    })
    .await;
    let ta = a.token("admin").await;
    let tb = b.token("gaj-steward").await;
    let mut tasks = Vec::new();
    for (url, tok) in [
        (a.url("/api/v1/tokens"), ta.clone()),
        (b.url("/api/v1/tokens"), tb.clone()),
        (a.url("/api/v1/tokens"), ta),
        (b.url("/api/v1/tokens"), tb),
    ] {
        tasks.push(tokio::spawn(async move {
            let c = reqwest::Client::new();
            for i in 0..50 {
                let r = c.post(&url).bearer_auth(&tok).json(&json!({"name": format!("n{i}")})).send().await.unwrap();
                assert_eq!(r.status(), 201);
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let v = verify(&b).await;
    assert_eq!(v["ok"], true, "{v}");
}

#[tokio::test]
async fn audit_listing_filters_and_pages() {
    let (app, _) = app_with_history().await;
    let admin = app.login("admin").await;
    let page: Value =
        admin.get(app.url("/api/v1/audit?action=token.&per_page=2&page=2")).send().await.unwrap().json().await.unwrap();
    assert_eq!(page["total"], 6, "the admin token and five steward tokens");
    assert_eq!(page["entries"].as_array().unwrap().len(), 2);
    assert_eq!(page["page"], 2);
    let r = admin.get(app.url("/api/v1/audit?outcome=maybe")).send().await.unwrap();
    citydata_testkit::assert_error(r, 400, "validation_failed").await;
    let r = admin.get(app.url("/api/v1/audit?from=yesterday")).send().await.unwrap();
    citydata_testkit::assert_error(r, 400, "validation_failed").await;
}
