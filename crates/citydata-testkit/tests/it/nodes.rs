//! Two nodes, one platform (issue #20 item 4): two applications on one PostgreSQL database and
//! one S3 bucket (moto), each with its own data directory (search index, temporary files) and
//! port, sharing `secret_key` and the audit key as a deployment would. A session made on A works
//! on B; data ingested on A is read on B; a catalog change on A is found by B's search once its
//! follower catches up (polled); a grant revoked on B is refused on A at the next read.
//! PostgreSQL only (`CITYDATA_TEST_DATABASE_URL`; under `CI=true` a missing URL fails).

use citydata_core::demo::generate::{Register, generate_listing};
use citydata_testkit::s3::Moto;
use citydata_testkit::{SpawnOptions, TestApp, spawn_app_with};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

fn shared_secret(s: &mut citydata_server::Settings) {
    s.secret_key = Some(citydata_server::settings::Secret::new("two-nodes-share-this-secret-key-0123456789"));
}

#[tokio::test]
async fn two_nodes_on_one_database_and_one_bucket_behave_as_one_platform() {
    if !citydata_testkit::postgres_or_skip("nodes::two_nodes") {
        return;
    }
    let Some(moto) = Moto::start_or_skip("nodes::two_nodes") else { return };
    let lake = moto.lake().await;
    let keys = tempfile::tempdir().unwrap();
    let audit_key = keys.path().join("audit.key");
    let a: TestApp = spawn_app_with(SpawnOptions {
        s3: Some(lake.clone()),
        audit_key_file: Some(audit_key.clone()),
        configure: Some(shared_secret),
        ..SpawnOptions::default()
    })
    .await;
    let b: TestApp = spawn_app_with(SpawnOptions {
        database_url: Some(a.database_url.clone()),
        demo: false,
        s3: Some(lake.clone()),
        audit_key_file: Some(audit_key),
        configure: Some(shared_secret),
        ..SpawnOptions::default()
    })
    .await;
    assert_ne!(a.address, b.address);
    for node in [&a, &b] {
        assert_eq!(reqwest::get(node.url("/readyz")).await.unwrap().status(), 200);
    }

    // A session made on A is valid on B (the cookie jar sends it to both: same host).
    let gaj = a.login("gaj-steward").await;
    let me: Value = gaj.get(b.url("/api/v1/me")).send().await.unwrap().json().await.unwrap();
    assert_eq!(me["username"], "gaj-steward", "{me}");

    // Ingest on A, read on B.
    let mut people = Vec::new();
    generate_listing(Register::Population, 50, 0.0, 4, false, &mut people).unwrap();
    let r = gaj.post(a.url("/api/v1/resources/101%2F000001/data")).body(people).send().await.unwrap();
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
    let rows: Value =
        gaj.get(b.url("/api/v1/resources/101%2F000001/rows?limit=100")).send().await.unwrap().json().await.unwrap();
    assert_eq!(rows["rows"].as_array().unwrap().len(), 50, "{rows}");

    // A catalog change on A: B's search finds it once its follower has caught up.
    let r = gaj
        .patch(a.url("/api/v1/resources/101%2F000001"))
        .json(&json!({"abstract": "人口基础信息 zyxwvq 两节点检索"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let changed = Instant::now();
    let found = loop {
        let s: Value = gaj.get(b.url("/api/v1/search?q=zyxwvq")).send().await.unwrap().json().await.unwrap();
        if s["hits"].as_array().is_some_and(|h| !h.is_empty()) {
            break changed.elapsed();
        }
        assert!(changed.elapsed() < Duration::from_secs(3), "B's search did not see A's change within 3 s: {s}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    eprintln!("search on B caught up {} ms after the change on A", found.as_millis());

    // A grant made on A, used on A, revoked on B: A refuses the next read.
    let r = gaj
        .post(a.url("/api/v1/grants"))
        .json(&json!({
            "resource_id": "101/000001", "grantee": {"department": "wjw"},
            "fields": ["性别", "区县"], "purpose": "妇幼健康服务", "expires_at": "2099-01-01T00:00:00Z"
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
    let grant: Value = r.json().await.unwrap();
    let wjw = a.login("wjw-analyst").await;
    let url = a.url("/api/v1/resources/101%2F000001/rows?limit=5");
    assert_eq!(wjw.get(&url).send().await.unwrap().status(), 200);
    let r = gaj.post(b.url(&format!("/api/v1/grants/{}/revoke", grant["id"].as_str().unwrap()))).send().await.unwrap();
    assert!(r.status().is_success(), "{}", r.text().await.unwrap());
    let r = wjw.get(&url).send().await.unwrap();
    assert_eq!(r.status(), 403, "A refuses at once what B revoked");

    // One audit chain for both nodes.
    let admin = b.login("admin").await;
    let v: Value = admin.get(b.url("/api/v1/audit?action=grant.revoke")).send().await.unwrap().json().await.unwrap();
    assert!(!v["entries"].as_array().unwrap().is_empty(), "{v}");
}
