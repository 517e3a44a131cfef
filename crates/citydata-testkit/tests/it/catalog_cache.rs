//! Metadata reads come from an in-memory cache of catalog records (`citydata_core::catalog_cache`).
//! An attacker's view: a cached record must never be shown to someone who may not see it, and a
//! change — on this node or on another node sharing the database — must be seen (at once here,
//! within the recheck interval there).

use citydata_testkit::{SpawnOptions, spawn_app, spawn_app_with};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

async fn name_of(c: &reqwest::Client, url: &str) -> (u16, Option<String>) {
    let r = c.get(url).send().await.unwrap();
    let s = r.status().as_u16();
    let v: Value = r.json().await.unwrap_or(Value::Null);
    (s, v["name"].as_str().map(str::to_string))
}

#[tokio::test]
async fn a_cached_draft_is_not_shown_to_others_and_changes_are_read_at_once() {
    let app = spawn_app().await;
    let steward = app.login("wjw-steward").await;
    let anon = reqwest::Client::new();
    let r = steward
        .post(app.url("/api/v1/resources"))
        .json(&json!({
            "name": "泰州市噪声监测",
            "abstract": "各监测站点噪声小时值",
            "provider": "wjw",
            "classification": {"class": "thematic", "theme": "environment"},
            "format": {"category": "spreadsheet", "type": "csv"},
            "items": [{"name": "station", "title": "站点", "key": true}],
            "share": {"type": "unconditional", "method": "file"},
            "open": {"type": "unconditional"},
            "update_cycle": "daily"
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
    let v: Value = r.json().await.unwrap();
    let id = v["id"].as_str().unwrap().to_string();
    let url = app.url(&format!("/api/v1/resources/{id}"));

    // The steward's read fills the cache with the draft; an anonymous reader still gets 404.
    assert_eq!(name_of(&steward, &url).await.0, 200);
    assert!(app.core.catalog_cache_holds(&id), "the record is cached after a read");
    assert_eq!(name_of(&anon, &url).await.0, 404);
    assert_eq!(name_of(&app.login("gaj-steward").await, &url).await.0, 404, "another department, a draft");

    // Published: anonymous callers see it at once; renamed: the new name at once.
    assert_eq!(steward.post(format!("{url}/publish")).send().await.unwrap().status(), 200);
    assert_eq!(name_of(&anon, &url).await, (200, Some("泰州市噪声监测".into())));
    assert_eq!(steward.patch(&url).json(&json!({"name": "泰州市噪声小时值"})).send().await.unwrap().status(), 200);
    assert_eq!(name_of(&anon, &url).await, (200, Some("泰州市噪声小时值".into())));
    // Withdrawn: gone for anonymous callers at once.
    assert_eq!(steward.post(format!("{url}/withdraw")).send().await.unwrap().status(), 200);
    assert_eq!(name_of(&anon, &url).await.0, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_change_made_on_another_node_is_read_here_within_the_recheck_interval() {
    let a = spawn_app().await;
    let b = spawn_app_with(SpawnOptions {
        demo: false,
        database_url: Some(a.database_url.clone()),
        audit_key_file: Some(a.data_dir.path().join("audit.key")),
        ..Default::default()
    })
    .await;
    let anon = reqwest::Client::new();
    let list: Value =
        anon.get(a.url("/api/v1/resources?provider=wjw&per_page=1")).send().await.unwrap().json().await.unwrap();
    let first = &list["items"][0];
    let id = first["id"].as_str().expect("an open resource in the demo catalog").to_string();
    let old = first["name"].as_str().unwrap().to_string();
    let on_b = b.url(&format!("/api/v1/resources/{id}"));
    assert_eq!(name_of(&anon, &on_b).await, (200, Some(old.clone())));
    assert!(b.core.catalog_cache_holds(&id));

    // Node A withdraws it; node B stops showing it without any request to B in between.
    let steward = a.login("wjw-steward").await;
    let r = steward.post(a.url(&format!("/api/v1/resources/{id}/withdraw"))).send().await.unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (status, _) = name_of(&anon, &on_b).await;
        if status == 404 {
            break;
        }
        assert!(Instant::now() < deadline, "node B still shows a resource node A withdrew");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
