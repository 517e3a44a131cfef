//! Login, logout, sessions, tokens and permissions over HTTP.

use citydata_testkit::{DEMO_PASSWORD, assert_error, new_client, spawn_app};
use serde_json::{Value, json};

#[tokio::test]
async fn login_sets_an_httponly_cookie_and_logout_ends_the_session() {
    let app = spawn_app().await;
    let c = new_client();
    let r = c
        .post(app.url("/api/v1/auth/login"))
        .json(&json!({"username": "admin", "password": DEMO_PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let cookie = r.headers().get("set-cookie").unwrap().to_str().unwrap().to_string();
    assert!(cookie.starts_with("citydata_session="), "{cookie}");
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"), "{cookie}");
    assert!(!cookie.contains("Secure"), "plain http deployments get no Secure flag: {cookie}");
    let me: Value = c.get(app.url("/api/v1/me")).send().await.unwrap().json().await.unwrap();
    assert_eq!(me["username"], "admin");
    assert_eq!(me["is_admin"], true);
    assert_eq!(me["authenticated_by"], "session");

    let r = c.post(app.url("/api/v1/auth/logout")).send().await.unwrap();
    assert_eq!(r.status(), 204);
    assert_error(c.get(app.url("/api/v1/me")).send().await.unwrap(), 401, "unauthenticated").await;
}

#[tokio::test]
async fn wrong_password_is_401_and_audited_and_repeated_failures_are_429() {
    let app = spawn_app().await;
    let c = new_client();
    for _ in 0..10 {
        let r = c
            .post(app.url("/api/v1/auth/login"))
            .json(&json!({"username": "gaj-steward", "password": "wrong-password"}))
            .send()
            .await
            .unwrap();
        assert_error(r, 401, "unauthenticated").await;
    }
    let r = c
        .post(app.url("/api/v1/auth/login"))
        .json(&json!({"username": "gaj-steward", "password": DEMO_PASSWORD}))
        .send()
        .await
        .unwrap();
    assert!(r.headers().get("retry-after").is_some());
    assert_error(r, 429, "rate_limited").await;
    // The failures are in the audit log under the attempted username.
    let admin = app.login("admin").await;
    let page: Value = admin
        .get(app.url("/api/v1/audit?actor=gaj-steward&action=auth.login"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(page["total"], 11);
    let entries = page["entries"].as_array().unwrap();
    assert!(entries.iter().all(|e| e["outcome"] == "denied"), "{page}");
    let errors: Vec<&str> = entries.iter().map(|e| e["details"]["error"].as_str().unwrap()).collect();
    assert_eq!(errors[0], "rate_limited", "newest first");
    assert_eq!(errors[1..].iter().filter(|e| **e == "unauthenticated").count(), 10);
}

#[tokio::test]
async fn unknown_user_gets_the_same_answer_as_a_wrong_password() {
    let app = spawn_app().await;
    let r = new_client()
        .post(app.url("/api/v1/auth/login"))
        .json(&json!({"username": "nobody", "password": "whatever1"}))
        .send()
        .await
        .unwrap();
    let body = assert_error(r, 401, "unauthenticated").await;
    assert!(body["error"]["message"].as_str().unwrap().contains("用户名或密码错误"));
}

#[tokio::test]
async fn tokens_work_as_bearer_are_listed_without_secrets_and_can_be_revoked() {
    let app = spawn_app().await;
    let admin = app.login("admin").await;
    let r = admin
        .post(app.url("/api/v1/tokens"))
        .json(&json!({"name": "etl", "expires_in_days": 90}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let created: Value = r.json().await.unwrap();
    let token = created["token"].as_str().unwrap().to_string();
    assert!(token.starts_with("cd_") && token.len() >= 40, "{token}");
    assert!(created["expires_at"].is_string());

    // The token works everywhere a session does, including mutations.
    let bearer = reqwest::Client::new();
    let me: Value = bearer.get(app.url("/api/v1/me")).bearer_auth(&token).send().await.unwrap().json().await.unwrap();
    assert_eq!(me["username"], "admin");
    assert_eq!(me["authenticated_by"], "token");
    let r = bearer
        .post(app.url("/api/v1/departments"))
        .bearer_auth(&token)
        .json(&json!({"code": "hlq-dsj", "name": "海陵区大数据管理局", "region_code": "321202", "level": "district", "parent": "dsjzx"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
    // The mutation's audit entry records that a token did it.
    let page: Value =
        admin.get(app.url("/api/v1/audit?action=department.create")).send().await.unwrap().json().await.unwrap();
    let e = &page["entries"][0];
    assert_eq!(e["actor"], "admin");
    assert_eq!(e["details"]["via"], "token");
    assert_eq!(e["details"]["token_id"], created["id"]);

    // Listing never shows secrets.
    let list = admin.get(app.url("/api/v1/tokens")).send().await.unwrap().text().await.unwrap();
    assert!(!list.contains(&token));
    assert!(list.contains(&token[..9]), "the prefix identifies the token");

    // Another user cannot revoke it; its owner can; then it stops working.
    let other = app.login("wjw-analyst").await;
    let id = created["id"].as_str().unwrap();
    assert_error(other.delete(app.url(&format!("/api/v1/tokens/{id}"))).send().await.unwrap(), 404, "not_found").await;
    assert_eq!(admin.delete(app.url(&format!("/api/v1/tokens/{id}"))).send().await.unwrap().status(), 204);
    assert_error(bearer.get(app.url("/api/v1/me")).bearer_auth(&token).send().await.unwrap(), 401, "invalid_token")
        .await;
    assert_error(
        bearer.get(app.url("/api/v1/me")).bearer_auth("cd_forged").send().await.unwrap(),
        401,
        "invalid_token",
    )
    .await;
}

#[tokio::test]
async fn token_input_is_validated() {
    let app = spawn_app().await;
    let c = app.login("wjw-analyst").await;
    let r = c.post(app.url("/api/v1/tokens")).json(&json!({"name": "", "expires_in_days": 0})).send().await.unwrap();
    let body = assert_error(r, 400, "validation_failed").await;
    let fields: Vec<&str> =
        body["error"]["details"]["fields"].as_array().unwrap().iter().map(|f| f["field"].as_str().unwrap()).collect();
    assert_eq!(fields, ["name", "expires_in_days"], "every bad field is named at once");
    let r = c.post(app.url("/api/v1/tokens")).json(&json!({"name": "x", "expires_in_days": 0})).send().await.unwrap();
    let body = assert_error(r, 400, "validation_failed").await;
    assert_eq!(body["error"]["details"]["fields"][0]["field"], "expires_in_days");
    assert_error(
        new_client().post(app.url("/api/v1/tokens")).json(&json!({"name": "x"})).send().await.unwrap(),
        401,
        "unauthenticated",
    )
    .await;
}

#[tokio::test]
async fn analyst_cannot_create_a_department_or_read_audit() {
    let app = spawn_app().await;
    let c = app.login("wjw-analyst").await;
    let r = c
        .post(app.url("/api/v1/departments"))
        .json(&json!({"code": "x", "name": "X", "region_code": "321200", "level": "city"}))
        .send()
        .await
        .unwrap();
    assert_error(r, 403, "forbidden").await;
    assert_error(c.get(app.url("/api/v1/audit")).send().await.unwrap(), 403, "forbidden").await;
    assert_error(c.get(app.url("/api/v1/users")).send().await.unwrap(), 403, "forbidden").await;
    // Nothing was created.
    let list: Value = c.get(app.url("/api/v1/departments")).send().await.unwrap().json().await.unwrap();
    assert!(!list.as_array().unwrap().iter().any(|d| d["code"] == "x"));
    // The refusal is audited as denied.
    let admin = app.login("admin").await;
    let page: Value = admin
        .get(app.url("/api/v1/audit?actor=wjw-analyst&action=department.create&outcome=denied"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(page["total"], 1);
}
