//! 核验's per-second limit per user (issue #23 item 3), counted in the database so that every
//! node shares it: two nodes on one database, one verification a second for the user — the
//! second request within a second, on the other node, is refused with 429 and `Retry-After`.

use citydata_testkit::{SpawnOptions, assert_error, spawn_app_with};
use serde_json::json;

fn one_a_second(s: &mut citydata_server::settings::Settings) {
    s.verify_per_second = 1;
}

#[tokio::test]
async fn the_per_second_verification_limit_is_counted_across_nodes() {
    let a = spawn_app_with(SpawnOptions { demo_rows: 20, configure: Some(one_a_second), ..Default::default() }).await;
    let b = spawn_app_with(SpawnOptions {
        database_url: Some(a.database_url.clone()),
        configure: Some(one_a_second),
        demo: false,
        ..Default::default()
    })
    .await;
    let gaj = a.login("gaj-steward").await;
    let r = gaj
        .post(a.url("/api/v1/grants"))
        .json(&json!({"resource_id": "101/000001", "grantee": {"department": "wjw"}, "kind": "verify",
            "fields": ["身份证号", "姓名"], "purpose": "医保结算人证核验", "expires_at": "2099-01-01T00:00:00Z"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
    let body = json!({"records": [{"身份证号": "11010519491231002X", "姓名": "王某"}]});
    let path = "/api/v1/resources/101%2F000001/verify";
    let (on_a, on_b) = (a.login("wjw-analyst").await, b.login("wjw-analyst").await);
    // Retried when the second turns between the two requests (the windows are calendar seconds).
    for _ in 0..10 {
        let second = chrono::Utc::now().timestamp();
        let first = on_a.post(a.url(path)).json(&body).send().await.unwrap();
        let again = on_b.post(b.url(path)).json(&body).send().await.unwrap();
        if chrono::Utc::now().timestamp() != second {
            tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
            continue;
        }
        assert_eq!(first.status(), 200, "{}", first.text().await.unwrap());
        assert_eq!(again.headers()["retry-after"], "1");
        assert_error(again, 429, "rate_limited").await;
        return;
    }
    panic!("the second turned during every attempt");
}
