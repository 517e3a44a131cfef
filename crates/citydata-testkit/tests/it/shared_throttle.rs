//! The login throttle is one for the whole platform (issue #20): two nodes on one database
//! count a guesser's failures together, so alternating between nodes buys no extra guesses; a
//! right password after the limit is still refused on either node; the counters hold digests,
//! not the usernames or addresses typed. Runs on SQLite and PostgreSQL.

use citydata_testkit::{DEMO_PASSWORD, SpawnOptions, TestApp, assert_error, new_client, spawn_app_with};
use serde_json::json;

async fn attempt(node: &TestApp, c: &reqwest::Client, password: &str) -> reqwest::Response {
    c.post(node.url("/api/v1/auth/login"))
        .json(&json!({"username": "gaj-steward", "password": password}))
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn failures_on_two_nodes_count_against_one_limit() {
    let a = spawn_app_with(SpawnOptions::default()).await;
    let b = spawn_app_with(SpawnOptions {
        database_url: Some(a.database_url.clone()),
        demo: false,
        ..SpawnOptions::default()
    })
    .await;
    let c = new_client();
    // Ten failures (the per-user-and-client limit), alternating between the nodes: five each.
    for i in 0..10 {
        let node = if i % 2 == 0 { &a } else { &b };
        assert_error(attempt(node, &c, "wrong-password").await, 401, "unauthenticated").await;
    }
    // Per node the guesser is at five of ten, but the platform counts ten: both refuse, even
    // the right password, and say when to come back.
    for node in [&a, &b] {
        let r = attempt(node, &c, DEMO_PASSWORD).await;
        let wait: u64 = r.headers().get("retry-after").unwrap().to_str().unwrap().parse().unwrap();
        // At most the 15-minute window plus one short window (a tenth of it).
        assert!((1..=15 * 60 + 90).contains(&wait), "retry after {wait} s");
        assert_error(r, 429, "rate_limited").await;
    }
    // Another user from the same client is not locked out by gaj-steward's failures.
    let r = c
        .post(b.url("/api/v1/auth/login"))
        .json(&json!({"username": "wjw-steward", "password": DEMO_PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // The shared counters name neither the username nor the client address.
    let scopes: Vec<String> = a.sql_strings("SELECT scope FROM rate_counters").await;
    assert!(!scopes.is_empty());
    assert!(
        scopes.iter().all(|s| s.starts_with("fail:") && !s.contains("gaj") && !s.contains("127.0.0.1")),
        "{scopes:?}"
    );
}
