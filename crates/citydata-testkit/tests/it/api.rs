//! The REST surface: departments, users, error envelope, request ids, ops endpoints, OpenAPI.

use citydata_testkit::{SpawnOptions, assert_error, new_client, spawn_app, spawn_app_with};
use serde_json::{Value, json};
use std::collections::BTreeSet;

#[tokio::test]
async fn demo_departments_are_public_with_region_names() {
    let app = spawn_app().await;
    let list: Value = new_client().get(app.url("/api/v1/departments")).send().await.unwrap().json().await.unwrap();
    let codes: BTreeSet<&str> = list.as_array().unwrap().iter().map(|d| d["code"].as_str().unwrap()).collect();
    for c in ["dsjzx", "gaj", "scjgj", "wjw", "rsj", "sthjj", "jtysj", "whlyj"] {
        assert!(codes.contains(c), "missing {c}");
    }
    let gaj: Value = new_client().get(app.url("/api/v1/departments/gaj")).send().await.unwrap().json().await.unwrap();
    assert_eq!(gaj["name"], "泰州市公安局");
    assert_eq!(gaj["region_code"], "321200");
    assert_eq!(gaj["region_name"], "泰州市");
    assert_error(new_client().get(app.url("/api/v1/departments/nope")).send().await.unwrap(), 404, "not_found").await;
}

#[tokio::test]
async fn admin_creates_departments_with_validation_and_conflicts() {
    let app = spawn_app().await;
    let c = app.login("admin").await;
    let body = json!({"code": "HLQ-dsj", "name": "海陵区数据局", "region_code": "321202", "level": "district", "parent": "dsjzx"});
    let r = c.post(app.url("/api/v1/departments")).json(&body).send().await.unwrap();
    assert_eq!(r.status(), 201);
    let d: Value = r.json().await.unwrap();
    assert_eq!(d["code"], "hlq-dsj");
    assert_eq!(d["region_name"], "海陵区");
    assert_error(c.post(app.url("/api/v1/departments")).json(&body).send().await.unwrap(), 409, "conflict").await;

    let bad = json!({"code": "a b", "name": "", "region_code": "991202", "level": "province", "parent": "nope"});
    let body =
        assert_error(c.post(app.url("/api/v1/departments")).json(&bad).send().await.unwrap(), 400, "validation_failed")
            .await;
    let fields: Vec<&str> =
        body["error"]["details"]["fields"].as_array().unwrap().iter().map(|f| f["field"].as_str().unwrap()).collect();
    assert_eq!(fields, ["code", "name", "region_code", "level"]);

    let orphan =
        json!({"code": "orphan", "name": "孤儿", "region_code": "321200", "level": "city", "parent": "missing"});
    let body = assert_error(
        c.post(app.url("/api/v1/departments")).json(&orphan).send().await.unwrap(),
        400,
        "validation_failed",
    )
    .await;
    assert_eq!(body["error"]["details"]["fields"][0]["field"], "parent");
}

#[tokio::test]
async fn users_are_created_with_roles_by_those_allowed() {
    let app = spawn_app().await;
    let admin = app.login("admin").await;
    let r = admin
        .post(app.url("/api/v1/users"))
        .json(&json!({"username": "gaj-admin", "display_name": "公安局部门管理员", "password": "long-enough-1",
                      "memberships": [{"department": "gaj", "role": "dept_admin"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let u: Value = r.json().await.unwrap();
    assert_eq!(u["memberships"][0]["role_title"], "部门管理员");
    assert!(!u.to_string().contains("long-enough-1"), "the password never comes back");

    // A department admin may add members of its own department, but not admins nor elsewhere.
    let da = new_client();
    da.post(app.url("/api/v1/auth/login"))
        .json(&json!({"username": "gaj-admin", "password": "long-enough-1"}))
        .send()
        .await
        .unwrap();
    let ok = json!({"username": "gaj-analyst", "display_name": "分析员", "password": "long-enough-2", "memberships": [{"department": "gaj", "role": "analyst"}]});
    assert_eq!(da.post(app.url("/api/v1/users")).json(&ok).send().await.unwrap().status(), 201);
    let elsewhere = json!({"username": "x1", "display_name": "X", "password": "long-enough-3", "memberships": [{"department": "wjw", "role": "analyst"}]});
    assert_error(da.post(app.url("/api/v1/users")).json(&elsewhere).send().await.unwrap(), 403, "forbidden").await;
    let escalate = json!({"username": "x2", "display_name": "X", "password": "long-enough-3", "memberships": [{"department": "gaj", "role": "admin"}]});
    assert_error(da.post(app.url("/api/v1/users")).json(&escalate).send().await.unwrap(), 403, "forbidden").await;
    let listed: Value = da.get(app.url("/api/v1/users")).send().await.unwrap().json().await.unwrap();
    let names: BTreeSet<&str> = listed.as_array().unwrap().iter().map(|u| u["username"].as_str().unwrap()).collect();
    assert!(names.contains("gaj-steward") && !names.contains("wjw-analyst"), "{names:?}");

    // Duplicates and bad input.
    assert_error(admin.post(app.url("/api/v1/users")).json(&ok).send().await.unwrap(), 409, "conflict").await;
    let bad = json!({"username": "X", "display_name": "", "password": "short", "memberships": [{"department": "gaj", "role": "root"}]});
    let body =
        assert_error(admin.post(app.url("/api/v1/users")).json(&bad).send().await.unwrap(), 400, "validation_failed")
            .await;
    let fields: Vec<&str> =
        body["error"]["details"]["fields"].as_array().unwrap().iter().map(|f| f["field"].as_str().unwrap()).collect();
    assert_eq!(fields, ["username", "display_name", "password", "memberships[0].role"]);
    let unknown_dept = json!({"username": "ghost", "display_name": "G", "password": "long-enough-4", "memberships": [{"department": "nowhere", "role": "analyst"}]});
    assert_error(
        admin.post(app.url("/api/v1/users")).json(&unknown_dept).send().await.unwrap(),
        400,
        "validation_failed",
    )
    .await;
}

#[tokio::test]
async fn bad_bodies_get_enveloped_4xx_and_are_audited() {
    let app = spawn_app_with(SpawnOptions { max_body_bytes: Some(4096), ..Default::default() }).await;
    let c = app.login("admin").await;
    let url = app.url("/api/v1/departments");

    let r = c
        .post(&url)
        .header("content-type", "application/json")
        .body("{\"code\": \"x\",\n  \"name\": ")
        .send()
        .await
        .unwrap();
    let body = assert_error(r, 400, "malformed_json").await;
    assert_eq!(body["error"]["details"]["line"], 2);

    let r = c.post(&url).header("content-type", "text/plain").body("{}").send().await.unwrap();
    assert_error(r, 415, "unsupported_media_type").await;

    let big = format!(
        "{{\"code\": \"x\", \"name\": \"{}\", \"region_code\": \"321200\", \"level\": \"city\"}}",
        "名".repeat(5000)
    );
    let r = c.post(&url).header("content-type", "application/json").body(big).send().await.unwrap();
    assert_error(r, 413, "payload_too_large").await;

    let r = c.post(&url).json(&json!({"code": 5})).send().await.unwrap();
    let body = assert_error(r, 422, "invalid_body").await;
    assert_eq!(body["error"]["details"]["field"], "code", "{body}");
    let r = c.post(&url).json(&json!({"name": "n"})).send().await.unwrap();
    let body = assert_error(r, 422, "invalid_body").await;
    assert_eq!(body["error"]["details"]["field"], "code", "a missing field is named: {body}");
    let r = c
        .post(&url)
        .json(&json!({"code": "x", "name": "n", "region_code": "321200", "level": "city", "extra": 1}))
        .send()
        .await
        .unwrap();
    let body = assert_error(r, 422, "invalid_body").await;
    assert!(body["error"]["message"].as_str().unwrap().contains("extra"), "{body}");
    let r = c
        .post(&url)
        .header("content-type", "application/json")
        .body("{\"code\": \"x\", \"name\": \"n\", \"region_code\": \"321200\", \"level\": \"city\"} trailing")
        .send()
        .await
        .unwrap();
    assert_error(r, 400, "malformed_json").await;

    // None of these leak internals.
    let text = body.to_string();
    assert!(!text.contains("sqlx") && !text.contains("/src/") && !text.contains("panicked"));
    // Each refused mutation left an audit entry.
    let page: Value = c.get(app.url("/api/v1/audit?action=http.rejected")).send().await.unwrap().json().await.unwrap();
    let statuses: BTreeSet<u64> =
        page["entries"].as_array().unwrap().iter().map(|e| e["details"]["status"].as_u64().unwrap()).collect();
    assert_eq!(statuses, BTreeSet::from([400, 413, 415, 422]));
}

#[tokio::test]
async fn unknown_routes_and_methods_use_the_envelope() {
    let app = spawn_app().await;
    assert_error(new_client().get(app.url("/api/v1/nothing-here")).send().await.unwrap(), 404, "not_found").await;
    assert_error(new_client().put(app.url("/api/v1/me")).send().await.unwrap(), 405, "method_not_allowed").await;
}

#[tokio::test]
async fn request_ids_are_generated_or_propagated() {
    let app = spawn_app().await;
    let r = new_client().get(app.url("/healthz")).send().await.unwrap();
    let rid = r.headers().get("x-request-id").unwrap().to_str().unwrap();
    assert_eq!(rid.len(), 36, "a UUID: {rid}");
    let r = new_client().get(app.url("/healthz")).header("x-request-id", "abc-123").send().await.unwrap();
    assert_eq!(r.headers().get("x-request-id").unwrap(), "abc-123");
    // The id reaches the audit log.
    let c = app.login("admin").await;
    c.post(app.url("/api/v1/tokens"))
        .header("x-request-id", "rid-for-audit")
        .json(&json!({"name": "t"}))
        .send()
        .await
        .unwrap();
    let page: Value =
        c.get(app.url("/api/v1/audit?request_id=rid-for-audit")).send().await.unwrap().json().await.unwrap();
    assert_eq!(page["total"], 1);
    assert_eq!(page["entries"][0]["action"], "token.create");
}

#[tokio::test]
async fn ops_endpoints_answer() {
    let app = spawn_app_with(SpawnOptions {
        configure: Some(|s| s.metrics_token = Some(citydata_server::settings::Secret::new("metrics-secret"))),
        ..Default::default()
    })
    .await;
    let c = new_client();
    assert_eq!(c.get(app.url("/healthz")).send().await.unwrap().status(), 200);
    let ready: Value = c.get(app.url("/readyz")).send().await.unwrap().json().await.unwrap();
    assert_eq!(ready["status"], "ready");
    c.get(app.url("/api/v1/departments")).send().await.unwrap();
    let r = c.get(app.url("/metrics")).bearer_auth("metrics-secret").send().await.unwrap();
    assert!(r.headers()["content-type"].to_str().unwrap().starts_with("text/plain"));
    let text = r.text().await.unwrap();
    assert!(
        text.contains("http_requests_total{route=\"/api/v1/departments\",method=\"GET\",status=\"200\"}"),
        "{text}"
    );
    assert!(text.contains("http_request_duration_seconds_bucket"));
    assert!(text.contains("store_pool_connections"));
}

/// Resolve every `$ref` in the document, so that the document is self-consistent.
fn check_refs(doc: &Value, v: &Value) {
    match v {
        Value::Object(m) => {
            if let Some(Value::String(r)) = m.get("$ref") {
                let path = r.strip_prefix("#/").expect("local ref");
                let mut cur = doc;
                for part in path.split('/') {
                    cur = cur.get(part).unwrap_or_else(|| panic!("dangling $ref {r}"));
                }
            }
            m.values().for_each(|x| check_refs(doc, x));
        }
        Value::Array(a) => a.iter().for_each(|x| check_refs(doc, x)),
        _ => {}
    }
}

/// Whether a response schema says what it holds: a `$ref` to a component with properties (or
/// composed of such), an array or map of typed values, or a scalar.
fn is_typed(doc: &Value, schema: &Value) -> bool {
    if let Some(Value::String(r)) = schema.get("$ref") {
        let name = r.rsplit('/').next().unwrap();
        return is_typed(doc, &doc["components"]["schemas"][name]);
    }
    if let Some(Value::Array(parts)) = schema.get("allOf").or_else(|| schema.get("oneOf")) {
        return !parts.is_empty() && parts.iter().all(|p| is_typed(doc, p));
    }
    let ty = match &schema["type"] {
        Value::String(t) => vec![t.as_str()],
        Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
        _ => vec![],
    };
    if ty.contains(&"array") {
        return is_typed(doc, &schema["items"]);
    }
    if ty.contains(&"object") {
        return schema["properties"].as_object().is_some_and(|p| !p.is_empty())
            || schema["additionalProperties"].is_object() && is_typed(doc, &schema["additionalProperties"]);
    }
    !ty.is_empty() || schema.get("enum").is_some()
}

/// `/api-docs` in Chinese gives every operation of the OpenAPI document a Chinese summary (the
/// English description stays, marked `lang="en"`, under it); in English, the document's own.
#[tokio::test]
async fn api_docs_summarise_every_operation_in_chinese() {
    let app = spawn_app().await;
    let doc: Value = new_client().get(app.url("/api/v1/openapi.json")).send().await.unwrap().json().await.unwrap();
    let ops: usize = doc["paths"].as_object().unwrap().values().map(|o| o.as_object().unwrap().len()).sum();
    let zh = new_client().get(app.url("/api-docs?lang=zh")).send().await.unwrap().text().await.unwrap();
    let summaries: Vec<&str> = zh.split("<summary>").skip(1).map(|s| s.split("</summary>").next().unwrap()).collect();
    assert_eq!(summaries.len(), ops, "one entry per operation");
    let english: Vec<&str> = summaries.iter().filter(|s| s.contains("lang=\"en\"")).copied().collect();
    assert!(english.is_empty(), "operations without a Chinese summary (messages/api-zh.toml): {english:#?}");
    let en = new_client().get(app.url("/api-docs?lang=en")).send().await.unwrap().text().await.unwrap();
    assert!(en.contains("Create a draft resource") && !en.contains("创建资源草稿"), "English page, English summaries");
}

#[tokio::test]
async fn openapi_documents_every_v1_route() {
    let app = spawn_app().await;
    let doc: Value = new_client().get(app.url("/api/v1/openapi.json")).send().await.unwrap().json().await.unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    assert!(doc["info"]["title"].is_string() && doc["info"]["version"].is_string());
    check_refs(&doc, &doc);
    // The data reads answer typed schemas, not an untyped object.
    for (path, method, schema) in [
        ("/api/v1/resources/{id}/rows", "get", "RowsResult"),
        ("/api/v1/resources/{id}/changes", "get", "ChangesResult"),
        ("/api/v1/resources/{id}/aggregate", "get", "AggregateResult"),
        ("/api/v1/sql", "post", "SqlResult"),
        ("/api/v1/resources/{id}/verify", "post", "VerifyResult"),
        ("/api/v1/licenses/verify", "post", "LicenseAnswer"),
        ("/api/v1/licenses/receipt-key", "get", "ReceiptKeyView"),
        ("/api/v1/resources/{id}/ingests/{ingest_id}", "get", "IngestView"),
        ("/api/v1/grants/{id}/revoke", "post", "GrantView"),
        ("/api/v1/requests/{id}", "get", "RequestView"),
        ("/api/v1/requests/commitment", "get", "CommitmentView"),
        ("/api/v1/sources/{id}", "get", "SourceView"),
        ("/api/v1/sources/{id}/runs/{run_id}", "get", "RunView"),
        ("/api/v1/runs/{id}/abort", "post", "RunView"),
    ] {
        let ok = &doc["paths"][path][method]["responses"]["200"]["content"]["application/json"]["schema"];
        assert_eq!(ok["$ref"], format!("#/components/schemas/{schema}"), "{method} {path}: {ok}");
        assert!(doc["components"]["schemas"][schema]["properties"].is_object(), "{schema}");
    }
    for (path, method, schema) in [
        ("/api/v1/resources/{id}/versions", "get", "TableVersionView"),
        ("/api/v1/webhooks", "get", "WebhookView"),
        ("/api/v1/requests", "get", "RequestView"),
        ("/api/v1/inbox", "get", "InboxView"),
        ("/api/v1/sources", "get", "SourceView"),
        ("/api/v1/sources/{id}/runs", "get", "RunView"),
    ] {
        let ok = &doc["paths"][path][method]["responses"]["200"]["content"]["application/json"]["schema"];
        assert_eq!(ok["items"]["$ref"], format!("#/components/schemas/{schema}"), "{method} {path}: {ok}");
    }
    // No response is an untyped object: every JSON body names a schema with properties, or an
    // array of one, or a map of one.
    let mut untyped = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            for (status, resp) in op["responses"].as_object().unwrap() {
                let Some(schema) = resp["content"]["application/json"].get("schema") else { continue };
                if !is_typed(&doc, schema) {
                    untyped.push(format!("{method} {path} {status}: {schema}"));
                }
            }
        }
    }
    assert!(untyped.is_empty(), "untyped responses:\n{}", untyped.join("\n"));
    let mut documented = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            assert!(op["responses"].as_object().is_some_and(|r| !r.is_empty()), "{method} {path} has no responses");
            documented.insert(format!("{} {path}", method.to_uppercase()));
        }
    }
    // Every route the server answers is documented: probe each documented pair and a list of
    // the routes this issue ships, and require both sets to agree.
    let shipped: BTreeSet<String> = [
        "GET /api/v1/openapi.json",
        "POST /api/v1/auth/login",
        "POST /api/v1/auth/logout",
        "POST /api/v1/auth/password",
        "POST /api/v1/auth/register",
        "GET /api/v1/me",
        "GET /api/v1/departments",
        "POST /api/v1/departments",
        "GET /api/v1/departments/{code}",
        "GET /api/v1/users",
        "POST /api/v1/users",
        "GET /api/v1/tokens",
        "POST /api/v1/tokens",
        "DELETE /api/v1/tokens/{id}",
        "GET /api/v1/sessions",
        "DELETE /api/v1/sessions",
        "DELETE /api/v1/sessions/{id}",
        "GET /api/v1/service-accounts",
        "POST /api/v1/service-accounts",
        "GET /api/v1/service-accounts/{id}/tokens",
        "POST /api/v1/service-accounts/{id}/tokens",
        "DELETE /api/v1/service-accounts/{id}/tokens/{token_id}",
        "PUT /api/v1/users/{id}/pinned-roles",
        "GET /api/v1/audit",
        "GET /api/v1/audit/verify",
        "GET /api/v1/resources",
        "POST /api/v1/resources",
        "GET /api/v1/resources/{id}",
        "PATCH /api/v1/resources/{id}",
        "DELETE /api/v1/resources/{id}",
        "POST /api/v1/resources/{id}/publish",
        "POST /api/v1/resources/{id}/withdraw",
        "GET /api/v1/resources/{id}/revisions",
        "GET /api/v1/themes",
        "GET /api/v1/search",
        "GET /api/v1/catalog/export",
        "POST /api/v1/catalog/import",
        "POST /api/v1/resources/{id}/data",
        "GET /api/v1/resources/{id}/ingests",
        "GET /api/v1/resources/{id}/ingests/{ingest_id}",
        "GET /api/v1/resources/{id}/versions",
        "GET /api/v1/resources/{id}/quarantine",
        "GET /api/v1/resources/{id}/rows",
        "GET /api/v1/resources/{id}/export",
        "GET /api/v1/resources/{id}/aggregate",
        "POST /api/v1/sql",
        "POST /api/v1/resources/{id}/verify",
        "POST /api/v1/licenses/verify",
        "GET /api/v1/licenses/receipt-key",
        "GET /api/v1/licenses/receipt-key.pem",
        "GET /api/v1/grants",
        "POST /api/v1/grants",
        "POST /api/v1/grants/{id}/revoke",
        "GET /api/v1/requests",
        "POST /api/v1/requests",
        "GET /api/v1/requests/{id}",
        "POST /api/v1/requests/{id}/approve",
        "POST /api/v1/requests/{id}/reject",
        "POST /api/v1/requests/{id}/withdraw",
        "GET /api/v1/requests/{id}/comments",
        "POST /api/v1/requests/{id}/comments",
        "GET /api/v1/inbox",
        "POST /api/v1/inbox/{id}/read",
        "GET /api/v1/departments/{code}/response-times",
        "GET /api/v1/requests/commitment",
        "POST /api/v1/grants/{id}/renew",
        "GET /api/v1/resources/{id}/changes",
        "GET /api/v1/webhooks",
        "POST /api/v1/webhooks",
        "GET /api/v1/resources/{id}/quality",
        "POST /api/v1/resources/{id}/files",
        "GET /api/v1/resources/{id}/files",
        "GET /api/v1/resources/{id}/files/{file_id}",
        "DELETE /api/v1/resources/{id}/files/{file_id}",
        "GET /api/v1/resources/{id}/quality/history",
        "POST /api/v1/resources/{id}/quality/profile",
        "GET /api/v1/resources/{id}/tickets",
        "POST /api/v1/resources/{id}/tickets",
        "GET /api/v1/tickets",
        "GET /api/v1/tickets/{id}",
        "POST /api/v1/tickets/{id}/accept",
        "POST /api/v1/tickets/{id}/assign",
        "POST /api/v1/tickets/{id}/reject",
        "POST /api/v1/tickets/{id}/fix",
        "POST /api/v1/tickets/{id}/confirm",
        "POST /api/v1/tickets/{id}/reopen",
        "POST /api/v1/tickets/{id}/comments",
        "GET /api/v1/quality/overdue",
        "DELETE /api/v1/webhooks/{id}",
        "GET /api/v1/webhooks/{id}/deliveries",
        "POST /api/v1/resources/{id}/subscriptions",
        "GET /api/v1/subscriptions",
        "DELETE /api/v1/subscriptions/{id}",
        "GET /api/v1/evaluation",
        "GET /api/v1/evaluation/departments/{code}",
        "GET /api/v1/evaluation/departments/{code}/records",
        "GET /api/v1/evaluation/export",
        "GET /api/v1/evaluation/rules",
        "PUT /api/v1/evaluation/rules",
        "GET /api/v1/applications",
        "POST /api/v1/applications",
        "GET /api/v1/sharing/profiles",
        "POST /api/v1/sharing/profiles",
        "DELETE /api/v1/sharing/profiles/{id}",
        "GET /api/v1/sources",
        "POST /api/v1/sources",
        "GET /api/v1/sources/{id}",
        "PATCH /api/v1/sources/{id}",
        "DELETE /api/v1/sources/{id}",
        "POST /api/v1/sources/{id}/run",
        "GET /api/v1/sources/{id}/runs",
        "GET /api/v1/sources/{id}/runs/{run_id}",
        "POST /api/v1/runs/{id}/abort",
        "GET /api/v1/device-types",
        "POST /api/v1/device-types",
        "GET /api/v1/device-types/{id}",
        "PATCH /api/v1/device-types/{id}",
        "POST /api/v1/device-types/{id}/devices",
        "GET /api/v1/devices",
        "POST /api/v1/devices",
        "GET /api/v1/devices/{id}",
        "PATCH /api/v1/devices/{id}",
        "GET /api/v1/streams",
        "POST /api/v1/streams",
        "GET /api/v1/streams/{id}",
        "PATCH /api/v1/streams/{id}",
        "GET /api/v1/resources/{id}/latest",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    assert_eq!(documented, shipped);
    for pair in &documented {
        let (method, path) = pair.split_once(' ').unwrap();
        let path = path
            .replace("{code}", "gaj")
            .replace("{id}", "00000000-0000-0000-0000-000000000000")
            .replace("{ingest_id}", "00000000-0000-0000-0000-000000000000")
            .replace("{token_id}", "00000000-0000-0000-0000-000000000000");
        let r = new_client().request(method.parse().unwrap(), app.url(&path)).send().await.unwrap();
        let status = r.status().as_u16();
        let text = r.text().await.unwrap();
        assert!(
            status != 405 && !text.contains("no such endpoint"),
            "{pair} is documented but not routed: {status} {text}"
        );
    }
}
