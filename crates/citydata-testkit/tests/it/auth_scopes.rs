//! Scoped tokens and service accounts (issue #21): every route's scope from the one table,
//! resource lists enforced by the gate, service accounts that cannot log in and whose calls
//! are audited under the token's name.

use citydata_testkit::{SpawnOptions, TestApp, assert_error, new_client, spawn_app, spawn_app_with};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};

const ALL_SCOPES: [&str; 7] =
    ["catalog:read", "catalog:write", "data:read", "data:write", "requests", "webhooks", "admin"];

async fn scoped_token(app: &TestApp, c: &reqwest::Client, body: Value) -> (String, Value) {
    let r = c.post(app.url("/api/v1/tokens")).json(&body).send().await.unwrap();
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
    let v: Value = r.json().await.unwrap();
    (v["token"].as_str().unwrap().to_string(), v)
}

/// The table-driven test over the OpenAPI document: each operation names its scope
/// (`x-required-scope`, from the one table in `citydata_api::scopes`); a token holding every
/// other scope is refused with 403 `insufficient_scope` before the handler runs, and a token
/// holding just that scope gets past the check (so the refusal is the scope's doing).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_refuses_a_token_without_its_scope() {
    let app = spawn_app().await;
    let admin = app.login("admin").await;
    let doc: Value = new_client().get(app.url("/api/v1/openapi.json")).send().await.unwrap().json().await.unwrap();
    let mut ops = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let scope =
                op["x-required-scope"].as_str().unwrap_or_else(|| panic!("{method} {path}: no x-required-scope"));
            assert_ne!(scope, "unlisted", "{method} {path} is missing from citydata_api::scopes::REQUIRED");
            ops.push((method.to_uppercase(), path.clone(), scope.to_string()));
        }
    }
    let used: BTreeSet<&str> = ops.iter().map(|(_, _, s)| s.as_str()).filter(|s| *s != "none").collect();
    assert_eq!(used, ALL_SCOPES.into_iter().collect(), "every scope guards some route");
    // One token without each scope, one with only it.
    let mut without = BTreeMap::new();
    let mut only = BTreeMap::new();
    for s in ALL_SCOPES {
        let rest: Vec<&str> = ALL_SCOPES.into_iter().filter(|x| *x != s).collect();
        without.insert(s, scoped_token(&app, &admin, json!({"name": format!("without {s}"), "scopes": rest})).await.0);
        only.insert(s, scoped_token(&app, &admin, json!({"name": format!("only {s}"), "scopes": [s]})).await.0);
    }
    let nil = "00000000-0000-0000-0000-000000000000";
    let mut checked = 0;
    for (method, path, scope) in &ops {
        if scope == "none" {
            continue;
        }
        let url = app.url(
            &path
                .replace("{code}", "wjw")
                .replace("{id}", nil)
                .replace("{ingest_id}", nil)
                .replace("{run_id}", nil)
                .replace("{token_id}", nil),
        );
        let call = |token: &str| {
            let mut r = new_client().request(method.parse().unwrap(), &url).bearer_auth(token);
            if matches!(method.as_str(), "POST" | "PUT" | "PATCH") {
                r = r.json(&json!({}));
            }
            r
        };
        let r = call(&without[scope.as_str()]).send().await.unwrap();
        let body = assert_error(r, 403, "insufficient_scope").await;
        assert_eq!(body["error"]["details"]["required_scope"], scope.as_str(), "{method} {path}");
        assert!(body["error"]["message"].as_str().unwrap().contains("此令牌没有"), "zh first: {body}");
        let r = call(&only[scope.as_str()]).send().await.unwrap();
        let status = r.status().as_u16();
        let text = r.text().await.unwrap();
        assert!(!text.contains("insufficient_scope"), "{method} {path} with {scope}: {status} {text}");
        checked += 1;
    }
    assert!(checked > 100, "{checked} operations checked");
}

/// Tokens made without scopes (and those from before scopes existed) keep every scope; a
/// scoped token cannot mint a wider one; bad scopes and unknown resources name the field.
#[tokio::test]
async fn unscoped_tokens_keep_working_and_scoped_ones_cannot_widen() {
    let app = spawn_app().await;
    let legacy = app.token("admin").await;
    let r = new_client().get(app.url("/api/v1/audit")).bearer_auth(&legacy).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let admin = app.login("admin").await;
    let tokens: Value = admin.get(app.url("/api/v1/tokens")).send().await.unwrap().json().await.unwrap();
    assert!(tokens[0]["scopes"].is_null() && tokens[0]["resources"].is_null(), "{tokens}");

    let (admin_only, view) = scoped_token(&app, &admin, json!({"name": "ops", "scopes": ["admin"]})).await;
    assert_eq!(view["scopes"], json!(["admin"]));
    let c = new_client();
    let widen = |body: Value| c.post(app.url("/api/v1/tokens")).bearer_auth(&admin_only).json(&body);
    assert_error(widen(json!({"name": "all"})).send().await.unwrap(), 403, "insufficient_scope").await;
    assert_error(widen(json!({"name": "r", "scopes": ["data:read"]})).send().await.unwrap(), 403, "insufficient_scope")
        .await;
    assert_eq!(widen(json!({"name": "same", "scopes": ["admin"]})).send().await.unwrap().status(), 201);
    // The refusal is audited under the token's name.
    let page: Value =
        admin.get(app.url("/api/v1/audit?action=token.create")).send().await.unwrap().json().await.unwrap();
    let denied = page["entries"].as_array().unwrap().iter().find(|e| e["outcome"] == "denied").unwrap();
    assert_eq!(denied["details"]["token_name"], "ops");
    assert_eq!(denied["details"]["error"], "insufficient_scope");

    let r = admin.post(app.url("/api/v1/tokens")).json(&json!({"name": "x", "scopes": ["data:read", "root"]})).send();
    let body = assert_error(r.await.unwrap(), 400, "validation_failed").await;
    assert_eq!(body["error"]["details"]["fields"][0]["field"], "scopes[1]");
    let r = admin.post(app.url("/api/v1/tokens")).json(&json!({"name": "x", "scopes": []})).send();
    assert_error(r.await.unwrap(), 400, "validation_failed").await;
    let r = admin.post(app.url("/api/v1/tokens")).json(&json!({"name": "x", "resources": ["999/999999"]})).send();
    let body = assert_error(r.await.unwrap(), 400, "validation_failed").await;
    assert_eq!(body["error"]["details"]["fields"][0]["field"], "resources[0]");
    // A resource the caller cannot see is as unknown as one that does not exist.
    let wjw = app.login("wjw-analyst").await;
    let drafts: Value = admin.get(app.url("/api/v1/resources?state=draft")).send().await.unwrap().json().await.unwrap();
    if let Some(d) = drafts["items"].as_array().unwrap().iter().find(|r| r["provider"] != "wjw") {
        let r = wjw.post(app.url("/api/v1/tokens")).json(&json!({"name": "x", "resources": [d["id"]]})).send();
        assert_error(r.await.unwrap(), 400, "validation_failed").await;
    }
}

/// Pages, CKAN and DCAT need scopes too: a token for one purpose opens nothing else.
#[tokio::test]
async fn scopes_reach_pages_ckan_and_dcat() {
    let app = spawn_app().await;
    let admin = app.login("admin").await;
    let (catalog, _) = scoped_token(&app, &admin, json!({"name": "cat", "scopes": ["catalog:read"]})).await;
    let c = new_client();
    let get = |path: &str| c.get(app.url(path)).bearer_auth(&catalog).send();
    assert_eq!(get("/api/3/action/package_list").await.unwrap().status(), 200);
    assert_eq!(get("/catalog.ttl").await.unwrap().status(), 200);
    for path in ["/api/3/action/datastore_search?resource_id=101/000001", "/api/action/datastore_search?resource_id=1"]
    {
        let r = get(path).await.unwrap();
        assert_eq!(r.status(), 403);
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["success"], false, "CKAN's own envelope: {body}");
        assert_eq!(body["error"]["code"], "insufficient_scope", "{body}");
        assert!(body["error"]["message"].as_str().unwrap().contains("data:read"), "{body}");
    }
    assert_eq!(get("/api/action/package_list").await.unwrap().status(), 200);
    let (data_only, _) = scoped_token(&app, &admin, json!({"name": "data", "scopes": ["data:read"]})).await;
    for path in ["/catalog.ttl", "/api/3/action/package_list", "/api/3"] {
        let r = c.get(app.url(path)).bearer_auth(&data_only).send().await.unwrap();
        assert_eq!(r.status(), 403, "{path}");
    }
    assert_eq!(get("/console").await.unwrap().status(), 403, "pages need admin");
    assert_eq!(get("/api/v1/me").await.unwrap().status(), 200, "who am I needs no scope");
}

/// A service account of 卫健委 with a read-only token for one resource: it reads that
/// resource, nothing else, cannot log in, and its calls are audited under the token's name.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_account_token_reads_one_resource_and_is_audited() {
    let app = spawn_app_with(SpawnOptions { demo_rows: 20, ..Default::default() }).await;
    let admin = app.login("admin").await;
    // Validation and permission first.
    let r = admin
        .post(app.url("/api/v1/service-accounts"))
        .json(&json!({"username": "wjw-root", "display_name": "x", "department": "wjw", "role": "admin"}))
        .send();
    let body = assert_error(r.await.unwrap(), 400, "validation_failed").await;
    assert_eq!(body["error"]["details"]["fields"][0]["field"], "role");
    let steward = app.login("wjw-steward").await;
    let r = steward
        .post(app.url("/api/v1/service-accounts"))
        .json(&json!({"username": "wjw-etl", "display_name": "卫健委同步", "department": "wjw"}))
        .send();
    assert_error(r.await.unwrap(), 403, "forbidden").await;

    let r = admin
        .post(app.url("/api/v1/service-accounts"))
        .json(&json!({"username": "wjw-etl", "display_name": "卫健委夜间同步", "department": "wjw",
                      "description": "每晚同步医疗机构信息"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let sa: Value = r.json().await.unwrap();
    assert_eq!(sa["department"], "wjw");
    let id = sa["id"].as_str().unwrap();
    let list: Value = admin.get(app.url("/api/v1/service-accounts")).send().await.unwrap().json().await.unwrap();
    assert_eq!(list.as_array().unwrap().len(), 1);
    let seen: Value = steward.get(app.url("/api/v1/service-accounts")).send().await.unwrap().json().await.unwrap();
    assert!(seen.as_array().unwrap().is_empty(), "a steward manages no service accounts");
    let r = steward.get(app.url(&format!("/api/v1/service-accounts/{id}/tokens"))).send().await.unwrap();
    assert_error(r, 404, "not_found").await;

    // It cannot log in, whatever it tries.
    for password in ["", "!service-account", citydata_testkit::DEMO_PASSWORD] {
        let r = new_client()
            .post(app.url("/api/v1/auth/login"))
            .json(&json!({"username": "wjw-etl", "password": password}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16() / 100, 4, "{password}");
        assert_ne!(r.status(), 200);
    }

    let r = admin
        .post(app.url(&format!("/api/v1/service-accounts/{id}/tokens")))
        .json(&json!({"name": "夜间同步", "scopes": ["data:read"], "resources": ["201/000001"], "expires_in_days": 30}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let created: Value = r.json().await.unwrap();
    let token = created["token"].as_str().unwrap().to_string();
    assert_eq!(created["scopes"], json!(["data:read"]));
    assert_eq!(created["resources"].as_array().unwrap().len(), 1);
    let me: Value =
        new_client().get(app.url("/api/v1/me")).bearer_auth(&token).send().await.unwrap().json().await.unwrap();
    assert_eq!(me["username"], "wjw-etl");
    assert_eq!(me["scopes"], json!(["data:read"]), "a token sees its own limits: {me}");
    assert_eq!(me["resources"], created["resources"]);

    let c = new_client();
    let get = |path: &str| c.get(app.url(path)).bearer_auth(&token).send();
    let r = get("/api/v1/resources/201%2F000001/rows?limit=5").await.unwrap();
    assert_eq!(r.status(), 200);
    let rows: Value = r.json().await.unwrap();
    assert_eq!(rows["rows"].as_array().unwrap().len(), 5);
    // Another of its own department's resources: refused by the token, on every read path.
    assert_error(get("/api/v1/resources/201%2F000002/rows").await.unwrap(), 403, "insufficient_scope").await;
    assert_error(get("/api/v1/resources/201%2F000002/export?format=csv").await.unwrap(), 403, "insufficient_scope")
        .await;
    let r = c
        .post(app.url("/api/v1/sql"))
        .bearer_auth(&token)
        .json(&json!({"sql": "SELECT COUNT(*) FROM \"201/000002\""}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403, "{}", r.text().await.unwrap());
    let r = get("/api/3/action/datastore_search?resource_id=201/000002").await.unwrap();
    assert_eq!(r.status(), 403);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["__type"], "Authorization Error", "{body}");
    assert_eq!(body["error"]["code"], "insufficient_scope", "{body}");
    let r = get("/api/3/action/datastore_search?resource_id=201/000001&limit=2").await.unwrap();
    assert_eq!(r.status(), 200, "CKAN reads the token's resource");
    // Outside its scopes: the catalog, uploads, tokens.
    assert_error(get("/api/v1/resources").await.unwrap(), 403, "insufficient_scope").await;
    assert_error(get("/api/v1/tokens").await.unwrap(), 403, "insufficient_scope").await;
    let form = reqwest::multipart::Form::new().text("x", "y");
    let r = c.post(app.url("/api/v1/resources/201%2F000001/data")).bearer_auth(&token).multipart(form).send();
    assert_error(r.await.unwrap(), 403, "insufficient_scope").await;

    // The audit log names the account and the token for each call.
    let page: Value = admin.get(app.url("/api/v1/audit?actor=wjw-etl")).send().await.unwrap().json().await.unwrap();
    let entries: Vec<&Value> =
        page["entries"].as_array().unwrap().iter().filter(|e| e["action"] != "auth.login").collect();
    assert!(entries.len() >= 3, "{page}");
    for e in &entries {
        assert_eq!(e["details"]["via"], "token", "{e}");
        assert_eq!(e["details"]["token_name"], "夜间同步", "{e}");
        assert_eq!(e["details"]["token_id"], created["id"], "{e}");
    }
    assert!(entries.iter().any(|e| e["outcome"] == "success"));
    assert!(entries.iter().any(|e| e["outcome"] == "denied"));

    // Revoked: the token stops working.
    let tid = created["id"].as_str().unwrap();
    let r = admin.delete(app.url(&format!("/api/v1/service-accounts/{id}/tokens/{tid}"))).send().await.unwrap();
    assert_eq!(r.status(), 204);
    assert_error(get("/api/v1/resources/201%2F000001/rows").await.unwrap(), 401, "invalid_token").await;
}
