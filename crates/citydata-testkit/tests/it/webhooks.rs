//! Webhooks over HTTP against a real receiver: HMAC-SHA256 signatures verify (checked here
//! with the `hmac` crate, not the server's code), a failing receiver is retried with backoff
//! until it answers, retries end in `failed`, every delivery is in the log; subscriptions send
//! `table.version` events only while the department may read the resource.

use citydata_core::demo::generate::{Register, generate_listing};
use citydata_testkit::{SpawnOptions, assert_error, spawn_app_with};
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The receivers here listen on 127.0.0.1, which webhooks may reach only when allowed.
fn loopback() -> SpawnOptions {
    SpawnOptions { configure: Some(|s| s.webhook_allow_cidrs = vec!["127.0.0.0/8".into()]), ..Default::default() }
}

#[derive(Clone, Debug)]
struct Received {
    event: String,
    timestamp: String,
    signature: String,
    body: Vec<u8>,
}

/// A receiver on a free port that answers 500 to its first `fail_first` requests, then 204.
async fn receiver(fail_first: usize) -> (String, Arc<Mutex<Vec<Received>>>) {
    use axum::http::{HeaderMap, StatusCode};
    let got: Arc<Mutex<Vec<Received>>> = Arc::default();
    let log = got.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: HeaderMap, body: axum::body::Bytes| {
            let log = log.clone();
            async move {
                let h = |n: &str| headers.get(n).and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
                let mut log = log.lock().unwrap();
                log.push(Received {
                    event: h("x-citydata-event"),
                    timestamp: h("x-citydata-timestamp"),
                    signature: h("x-citydata-signature"),
                    body: body.to_vec(),
                });
                if log.len() <= fail_first { StatusCode::INTERNAL_SERVER_ERROR } else { StatusCode::NO_CONTENT }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, got)
}

fn verifies(secret: &str, r: &Received) -> bool {
    let Some(hex_sig) = r.signature.strip_prefix("sha256=") else { return false };
    let Ok(sig) = hex::decode(hex_sig) else { return false };
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{}.", r.timestamp).as_bytes());
    mac.update(&r.body);
    mac.verify_slice(&sig).is_ok()
}

/// Wait (up to 20 s) until `pred` holds for what the receiver got.
async fn wait_for(got: &Arc<Mutex<Vec<Received>>>, pred: impl Fn(&[Received]) -> bool) -> Vec<Received> {
    for _ in 0..200 {
        {
            let g = got.lock().unwrap();
            if pred(&g) {
                return g.clone();
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("receiver never got what was expected: {:?}", got.lock().unwrap());
}

async fn deliveries(c: &reqwest::Client, app: &citydata_testkit::TestApp, hook: &str) -> Vec<Value> {
    c.get(app.url(&format!("/api/v1/webhooks/{hook}/deliveries"))).send().await.unwrap().json().await.unwrap()
}

#[tokio::test]
async fn signed_events_are_retried_until_delivered_and_logged() {
    let app = spawn_app_with(loopback()).await;
    let (url, got) = receiver(2).await;
    let wjw_steward = app.login("wjw-steward").await;
    // Bad input names the field; analysts may not register webhooks.
    let body = assert_error(
        wjw_steward
            .post(app.url("/api/v1/webhooks"))
            .json(&json!({"url": "ftp://x", "events": ["nope"]}))
            .send()
            .await
            .unwrap(),
        400,
        "validation_failed",
    )
    .await;
    let text = body.to_string();
    assert!(text.contains("\"url\"") && text.contains("\"events\""), "{body}");
    let analyst = app.login("wjw-analyst").await;
    assert_error(
        analyst.post(app.url("/api/v1/webhooks")).json(&json!({"url": url})).send().await.unwrap(),
        403,
        "forbidden",
    )
    .await;

    let r = wjw_steward
        .post(app.url("/api/v1/webhooks"))
        .json(&json!({"url": url, "events": ["request.decided"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let hook: Value = r.json().await.unwrap();
    let secret = hook["secret"].as_str().unwrap().to_string();
    let hook_id = hook["id"].as_str().unwrap().to_string();
    assert_eq!(hook["department"], "wjw");
    // The secret is shown once.
    let listed: Vec<Value> = wjw_steward.get(app.url("/api/v1/webhooks")).send().await.unwrap().json().await.unwrap();
    assert_eq!(listed.len(), 1);
    assert!(listed[0].get("secret").is_none());

    // wjw asks gaj; gaj approves: the decision reaches wjw's webhook.
    let req: Value = analyst
        .post(app.url("/api/v1/requests"))
        .json(&json!({"resource_id": "101/000001", "fields": ["性别", "区县"], "purpose": "统计", "basis": "职责"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let gaj = app.login("gaj-steward").await;
    let id = req["id"].as_str().unwrap();
    assert_eq!(
        gaj.post(app.url(&format!("/api/v1/requests/{id}/approve"))).json(&json!({})).send().await.unwrap().status(),
        200
    );
    // Two 500s, then success: three attempts of the same signed delivery.
    let seen = wait_for(&got, |g| g.len() >= 3).await;
    assert!(seen.iter().all(|r| r.event == "request.decided"), "only the asked-for event: {seen:?}");
    assert!(seen.iter().all(|r| verifies(&secret, r)), "signatures verify");
    assert!(!verifies("whsec_wrong", &seen[0]), "a wrong secret does not verify");
    let payload: Value = serde_json::from_slice(&seen[2].body).unwrap();
    assert_eq!(payload["event"], "request.decided");
    assert!(payload["data"]["link"].as_str().unwrap().ends_with(id), "{payload}");
    let ids: Vec<Value> =
        seen.iter().map(|r| serde_json::from_slice::<Value>(&r.body).unwrap()["id"].clone()).collect();
    assert!(ids.iter().all(|i| i == &ids[0]), "retries resend the same delivery");

    // The log shows one delivered delivery after three attempts.
    let mut log = deliveries(&wjw_steward, &app, &hook_id).await;
    for _ in 0..50 {
        if log.first().is_some_and(|d| d["state"] == "delivered") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        log = deliveries(&wjw_steward, &app, &hook_id).await;
    }
    assert_eq!(log.len(), 1, "{log:?}");
    assert_eq!(log[0]["state"], "delivered");
    assert_eq!(log[0]["attempts"], 3);
    assert_eq!(log[0]["last_status"], 204);
    // Another department's steward cannot see the log.
    assert_error(
        gaj.get(app.url(&format!("/api/v1/webhooks/{hook_id}/deliveries"))).send().await.unwrap(),
        404,
        "not_found",
    )
    .await;
}

#[tokio::test]
async fn a_receiver_that_always_fails_is_given_up_after_the_last_attempt() {
    let app = spawn_app_with(SpawnOptions { webhook_max_attempts: Some(3), ..loopback() }).await;
    let (url, got) = receiver(usize::MAX).await;
    let gaj = app.login("gaj-steward").await;
    let hook: Value = gaj
        .post(app.url("/api/v1/webhooks"))
        .json(&json!({"url": url, "events": ["request.new"]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let hook_id = hook["id"].as_str().unwrap();
    let analyst = app.login("wjw-analyst").await;
    let r = analyst
        .post(app.url("/api/v1/requests"))
        .json(&json!({"resource_id": "101/000001", "purpose": "统计", "basis": "职责"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    wait_for(&got, |g| g.len() >= 3).await;
    let mut log = deliveries(&gaj, &app, hook_id).await;
    for _ in 0..50 {
        if log.first().is_some_and(|d| d["state"] == "failed") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        log = deliveries(&gaj, &app, hook_id).await;
    }
    assert_eq!(log[0]["state"], "failed", "{log:?}");
    assert_eq!(log[0]["attempts"], 3);
    assert_eq!(log[0]["last_error"], "http_status", "only the class is logged");
    assert_eq!(log[0]["last_status"], 500);
    // No fourth attempt.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(got.lock().unwrap().len(), 3);
}

#[tokio::test]
async fn subscriptions_announce_new_table_versions_to_readers_only() {
    // With a public address configured, payload links are absolute under it.
    let app = spawn_app_with(SpawnOptions {
        configure: Some(|s| {
            s.webhook_allow_cidrs = vec!["127.0.0.0/8".into()];
            s.public_base_url = Some("https://data.taizhou.gov.cn/".into());
        }),
        ..Default::default()
    })
    .await;
    let (url, got) = receiver(0).await;
    let wjw = app.login("wjw-steward").await;
    let hook: Value = wjw
        .post(app.url("/api/v1/webhooks"))
        .json(&json!({"url": url, "events": ["table.version", "grant.revoked"]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let hook_id = hook["id"].as_str().unwrap();
    // No grant yet: the subscription is refused by the gate.
    assert_error(
        wjw.post(app.url("/api/v1/resources/101%2F000001/subscriptions"))
            .json(&json!({"webhook_id": hook_id}))
            .send()
            .await
            .unwrap(),
        403,
        "grant_required",
    )
    .await;
    let gaj = app.login("gaj-steward").await;
    let grant: Value = gaj
        .post(app.url("/api/v1/grants"))
        .json(&json!({"resource_id": "101/000001", "grantee": {"department": "wjw"}, "fields": ["性别", "区县"],
            "purpose": "统计", "expires_at": "2099-01-01T00:00:00Z"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let r = wjw
        .post(app.url("/api/v1/resources/101%2F000001/subscriptions"))
        .json(&json!({"webhook_id": hook_id}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
    let mut pop = Vec::new();
    generate_listing(Register::Population, 20, 0.0, 8, false, &mut pop).unwrap();
    let upload = |body: Vec<u8>| gaj.post(app.url("/api/v1/resources/101%2F000001/data")).body(body).send();
    assert_eq!(upload(pop.clone()).await.unwrap().status(), 201);
    let seen = wait_for(&got, |g| !g.is_empty()).await;
    let payload: Value = serde_json::from_slice(&seen[0].body).unwrap();
    assert_eq!(payload["event"], "table.version");
    assert_eq!(payload["data"]["version"], 0);
    let changes = payload["data"]["changes"].as_str().unwrap();
    assert!(changes.starts_with("https://data.taizhou.gov.cn/api/v1/resources/"), "{changes}");
    assert!(verifies(hook["secret"].as_str().unwrap(), &seen[0]));
    // Once the grant is revoked, new versions are not announced.
    let gid = grant["id"].as_str().unwrap();
    assert_eq!(gaj.post(app.url(&format!("/api/v1/grants/{gid}/revoke"))).send().await.unwrap().status(), 200);
    // The revocation itself reaches the grantee department's webhook.
    wait_for(&got, |g| g.iter().any(|r| r.event == "grant.revoked")).await;
    let mut more = Vec::new();
    generate_listing(Register::Population, 30, 0.0, 9, false, &mut more).unwrap();
    assert_eq!(upload(more).await.unwrap().status(), 201);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let table_events = got.lock().unwrap().iter().filter(|r| r.event == "table.version").count();
    assert_eq!(table_events, 1);
}
