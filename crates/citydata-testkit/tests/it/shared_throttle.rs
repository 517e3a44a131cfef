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

/// Two nodes on one database: the second without the demo seed (the first made it).
async fn two_nodes() -> (TestApp, TestApp) {
    let a = spawn_app_with(SpawnOptions::default()).await;
    let b = spawn_app_with(SpawnOptions {
        database_url: Some(a.database_url.clone()),
        demo: false,
        ..SpawnOptions::default()
    })
    .await;
    (a, b)
}

#[tokio::test]
async fn failures_on_two_nodes_count_against_one_limit() {
    let (a, b) = two_nodes().await;
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

/// A user's concurrent SQL statements (`sql_concurrency`, 2) are counted across nodes: slots
/// held on one node refuse a third statement on the other; a node that died holding a slot
/// frees it when its lease ends. The slots are rows of the shared `rate_counters`, written
/// here as another node would hold them (the store suite's `concurrency_slots` proves the
/// compare-and-set under concurrent takers).
#[tokio::test]
async fn sql_statements_are_counted_across_nodes() {
    let (a, b) = two_nodes().await;
    let gaj_a = a.login("gaj-steward").await;
    let gaj_b = b.login("gaj-steward").await;
    let sql = |c: &reqwest::Client, node: &TestApp| {
        c.post(node.url("/api/v1/sql")).json(&json!({"sql": "SELECT 1 AS n"})).send()
    };
    assert_eq!(sql(&gaj_a, &a).await.unwrap().status(), 200);
    // The statement's slot is given back after it ends.
    let mut scope = String::new();
    for _ in 0..100 {
        let held = a.sql_strings("SELECT scope FROM rate_counters WHERE scope LIKE 'sql:%' AND used = 1").await;
        let all = a.sql_strings("SELECT scope FROM rate_counters WHERE scope LIKE 'sql:%'").await;
        if held.is_empty() && !all.is_empty() {
            scope = all[0].clone();
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(scope.starts_with("sql:"), "no slot row, or it was never given back");
    // Another node holds both of gaj's slots (two long statements on it).
    a.exec_sql(&format!(
        "DELETE FROM rate_counters WHERE scope = '{scope}'; \
         INSERT INTO rate_counters (scope, win, until, used) VALUES \
         ('{scope}', 'slot:0', '2999-01-01T00:00:00.000000Z', 1), ('{scope}', 'slot:1', '2999-01-01T00:00:00.000000Z', 1)"
    ))
    .await;
    for (c, node) in [(&gaj_a, &a), (&gaj_b, &b)] {
        assert_error(sql(c, node).await.unwrap(), 429, "rate_limited").await;
    }
    // Another user's statements are not limited by gaj's.
    let wjw = b.login("wjw-steward").await;
    assert_eq!(sql(&wjw, &b).await.unwrap().status(), 200);
    // The node holding them died: once the leases end, the slots are taken over.
    a.exec_sql(&format!("UPDATE rate_counters SET until = '2000-01-01T00:00:00.000000Z' WHERE scope = '{scope}'"))
        .await;
    assert_eq!(sql(&gaj_b, &b).await.unwrap().status(), 200);
}
