//! Grants over HTTP: who may grant, field-level validation, listing, revocation.

use citydata_testkit::{assert_error, spawn_app};
use serde_json::{Value, json};

#[tokio::test]
async fn the_provider_grants_narrowed_scopes_and_revokes_them() {
    let app = spawn_app().await;
    let gaj = app.login("gaj-steward").await;
    let body = json!({
        "resource_id": "101/000001",
        "grantee": {"department": "wjw"},
        "fields": ["身份证号", "性别", "出生日期", "区县"],
        "row_filter": "区县 = '海陵区'",
        "masks": {"出生日期": "date_to_year"},
        "purpose": "妇幼健康服务",
        "expires_at": "2099-01-01T00:00:00Z"
    });
    let r = gaj.post(app.url("/api/v1/grants")).json(&body).send().await.unwrap();
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
    let g: Value = r.json().await.unwrap();
    assert_eq!(g["state"], "active");
    assert_eq!(g["fields"], json!(["sfzh", "xb", "csrq", "qx"]), "titles become item names");
    assert_eq!(g["row_filter"], "qx = '海陵区'");
    assert_eq!(g["masks"]["csrq"], "date_to_year");
    assert_eq!(g["grantee"]["department"], "wjw");

    // The grantee department sees it; an unrelated department does not.
    let wjw = app.login("wjw-analyst").await;
    let mine: Value = wjw.get(app.url("/api/v1/grants")).send().await.unwrap().json().await.unwrap();
    assert_eq!(mine.as_array().unwrap().len(), 1);
    let scjgj = app.login("scjgj-steward").await;
    let theirs: Value = scjgj.get(app.url("/api/v1/grants")).send().await.unwrap().json().await.unwrap();
    assert!(theirs.as_array().unwrap().is_empty());

    // Only the provider grants and revokes.
    assert_error(scjgj.post(app.url("/api/v1/grants")).json(&body).send().await.unwrap(), 403, "forbidden").await;
    let id = g["id"].as_str().unwrap();
    assert_error(wjw.post(app.url(&format!("/api/v1/grants/{id}/revoke"))).send().await.unwrap(), 404, "not_found")
        .await;
    // A body must be the reason and nothing else.
    let r = gaj.post(app.url(&format!("/api/v1/grants/{id}/revoke"))).json(&json!({"why": "x"})).send().await.unwrap();
    assert_error(r, 422, "invalid_body").await;
    let r = gaj
        .post(app.url(&format!("/api/v1/grants/{id}/revoke")))
        .json(&json!({"reason": "合作项目结束"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let g: Value = r.json().await.unwrap();
    assert_eq!(g["state"], "revoked");
    assert_eq!(g["revoked_by"], "gaj-steward");
    assert_error(gaj.post(app.url(&format!("/api/v1/grants/{id}/revoke"))).send().await.unwrap(), 409, "conflict")
        .await;
    // Audited.
    let admin = app.login("admin").await;
    let page: Value = admin.get(app.url("/api/v1/audit?action=grant.")).send().await.unwrap().json().await.unwrap();
    let actions: Vec<&str> =
        page["entries"].as_array().unwrap().iter().map(|e| e["action"].as_str().unwrap()).collect();
    assert!(actions.contains(&"grant.create") && actions.contains(&"grant.revoke"), "{actions:?}");
    let revoke = page["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action"] == "grant.revoke" && e["outcome"] == "success")
        .unwrap();
    assert_eq!(revoke["details"]["reason"], "合作项目结束", "the reason is kept in the audit");
}

#[tokio::test]
async fn bad_grants_name_each_field() {
    let app = spawn_app().await;
    let gaj = app.login("gaj-steward").await;
    let r = gaj
        .post(app.url("/api/v1/grants"))
        .json(&json!({
            "resource_id": "101/000001",
            "grantee": {"department": "nowhere"},
            "fields": ["身份证号", "颜色"],
            "row_filter": "区县 == ",
            "masks": {"出生日期": "chinese_name", "体重": "null"},
            "purpose": " ",
            "expires_at": "2001-01-01T00:00:00Z"
        }))
        .send()
        .await
        .unwrap();
    let body = assert_error(r, 400, "validation_failed").await;
    let fields: Vec<&str> =
        body["error"]["details"]["fields"].as_array().unwrap().iter().map(|f| f["field"].as_str().unwrap()).collect();
    for f in ["grantee.department", "fields[1]", "row_filter", "masks.出生日期", "masks.体重", "purpose", "expires_at"]
    {
        assert!(fields.contains(&f), "{f} missing from {fields:?}");
    }
    let r = gaj
        .post(app.url("/api/v1/grants"))
        .json(&json!({"resource_id": "101/000001", "grantee": {"department": "gaj"}, "purpose": "x"}))
        .send()
        .await
        .unwrap();
    let body = assert_error(r, 400, "validation_failed").await;
    assert_eq!(body["error"]["details"]["fields"][0]["code"], "own_department");
    // A resource that is not shared cannot be granted to a department.
    let r = gaj
        .post(app.url("/api/v1/grants"))
        .json(&json!({"resource_id": "105/000002", "grantee": {"department": "wjw"}, "purpose": "x"}))
        .send()
        .await
        .unwrap();
    let body = assert_error(r, 400, "validation_failed").await;
    assert_eq!(body["error"]["details"]["fields"][0]["code"], "not_shared");
}
