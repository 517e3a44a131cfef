//! The sharing workflow over HTTP: request, narrowed approval, reads, revocation, inboxes,
//! audit; immediate outcomes for unconditional and 不予共享 resources.

use citydata_core::demo::generate::{Register, generate_listing};
use citydata_testkit::{assert_error, spawn_app};
use serde_json::{Value, json};

async fn inbox(c: &reqwest::Client, app: &citydata_testkit::TestApp) -> Vec<Value> {
    c.get(app.url("/api/v1/inbox")).send().await.unwrap().json::<Vec<Value>>().await.unwrap()
}

#[tokio::test]
async fn request_narrowed_approval_read_and_revocation() {
    let app = spawn_app().await;
    let gaj = app.login("gaj-steward").await;
    let mut pop = Vec::new();
    generate_listing(Register::Population, 300, 0.0, 8, false, &mut pop).unwrap();
    assert_eq!(gaj.post(app.url("/api/v1/resources/101%2F000001/data")).body(pop).send().await.unwrap().status(), 201);

    let wjw = app.login("wjw-analyst").await;
    let r = wjw
        .post(app.url("/api/v1/requests"))
        .json(&json!({"resource_id": "101/000001", "fields": ["身份证号", "性别", "出生日期", "区县"], "purpose": "孕产妇健康管理", "basis": "《母婴保健法》", "scenario": "随访", "period_days": 180}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
    let req: Value = r.json().await.unwrap();
    assert_eq!(req["state"], "pending");
    assert!(req["due_at"].is_string());
    let id = req["id"].as_str().unwrap().to_string();
    // The provider's steward is told; the requester cannot approve.
    let msgs = inbox(&gaj, &app).await;
    assert!(msgs.iter().any(|m| m["kind"] == "request.new" && m["link"].as_str().unwrap().ends_with(&id)), "{msgs:?}");
    assert_error(
        wjw.post(app.url(&format!("/api/v1/requests/{id}/approve"))).json(&json!({})).send().await.unwrap(),
        403,
        "forbidden",
    )
    .await;
    // A question and its answer.
    gaj.post(app.url(&format!("/api/v1/requests/{id}/comments")))
        .json(&json!({"body": "是否需要身份证号？"}))
        .send()
        .await
        .unwrap();
    wjw.post(app.url(&format!("/api/v1/requests/{id}/comments")))
        .json(&json!({"body": "不需要，可以去掉"}))
        .send()
        .await
        .unwrap();
    let thread: Vec<Value> =
        wjw.get(app.url(&format!("/api/v1/requests/{id}/comments"))).send().await.unwrap().json().await.unwrap();
    assert_eq!(thread.len(), 2);
    assert!(inbox(&wjw, &app).await.iter().any(|m| m["kind"] == "request.comment"));
    // Widening is refused; narrowing is approved.
    let r = gaj
        .post(app.url(&format!("/api/v1/requests/{id}/approve")))
        .json(&json!({"fields": ["姓名"]}))
        .send()
        .await
        .unwrap();
    assert_error(r, 400, "validation_failed").await;
    let r = gaj
        .post(app.url(&format!("/api/v1/requests/{id}/approve")))
        .json(&json!({"fields": ["性别", "出生日期", "区县"], "row_filter": "区县 = '海陵区'"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let approved: Value = r.json().await.unwrap();
    assert_eq!(approved["state"], "approved");
    assert!(inbox(&wjw, &app).await.iter().any(|m| m["kind"] == "request.decided"));
    // The requester reads exactly those items and rows.
    let v: Value =
        wjw.get(app.url("/api/v1/resources/101%2F000001/rows?limit=1000")).send().await.unwrap().json().await.unwrap();
    let names: Vec<&str> = v["fields"].as_array().unwrap().iter().map(|f| f["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["xb", "csrq", "qx"]);
    assert!(v["rows"].as_array().unwrap().iter().all(|r| r["qx"] == "海陵区"));
    // Revocation: reads fail with grant_revoked and the requester is told.
    let grant = approved["grant_id"].as_str().unwrap();
    assert_eq!(gaj.post(app.url(&format!("/api/v1/grants/{grant}/revoke"))).send().await.unwrap().status(), 200);
    assert_error(wjw.get(app.url("/api/v1/resources/101%2F000001/rows")).send().await.unwrap(), 403, "grant_revoked")
        .await;
    assert!(inbox(&wjw, &app).await.iter().any(|m| m["kind"] == "grant.revoked"));
    // Every step is audited.
    let admin = app.login("admin").await;
    let page: Value =
        admin.get(app.url("/api/v1/audit?action=request.&per_page=100")).send().await.unwrap().json().await.unwrap();
    let actions: Vec<&str> =
        page["entries"].as_array().unwrap().iter().map(|e| e["action"].as_str().unwrap()).collect();
    for a in ["request.create", "request.comment", "request.approve"] {
        assert!(actions.contains(&a), "{a} missing: {actions:?}");
    }
    // Mark read.
    let m = &inbox(&wjw, &app).await[0];
    let mid = m["id"].as_str().unwrap();
    assert_eq!(wjw.post(app.url(&format!("/api/v1/inbox/{mid}/read"))).send().await.unwrap().status(), 204);
    let unread: Vec<Value> = wjw.get(app.url("/api/v1/inbox?unread=true")).send().await.unwrap().json().await.unwrap();
    assert!(!unread.iter().any(|x| x["id"] == mid));
}

#[tokio::test]
async fn immediate_outcomes_rejections_and_withdrawals() {
    let app = spawn_app().await;
    let wjw = app.login("wjw-analyst").await;
    // 不予共享: refused at once, quoting the catalog's basis.
    let v: Value = wjw
        .post(app.url("/api/v1/requests"))
        .json(&json!({"resource_id": "105/000002", "purpose": "核验", "basis": "依据"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["state"], "rejected");
    assert!(v["reason"].as_str().unwrap().contains("居民身份证法"), "{v}");
    // 无条件共享: granted at once.
    let v: Value = wjw
        .post(app.url("/api/v1/requests"))
        .json(&json!({"resource_id": "102/000001", "purpose": "营商环境分析", "basis": "职责"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["state"], "approved");
    assert!(v["grant_id"].is_string());
    // Rejection needs a reason; withdrawal is the requester's.
    let v: Value = wjw
        .post(app.url("/api/v1/requests"))
        .json(&json!({"resource_id": "101/000002", "purpose": "x", "basis": "y"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = v["id"].as_str().unwrap();
    let gaj = app.login("gaj-steward").await;
    assert_error(
        gaj.post(app.url(&format!("/api/v1/requests/{id}/reject"))).json(&json!({"reason": " "})).send().await.unwrap(),
        400,
        "validation_failed",
    )
    .await;
    assert_error(gaj.post(app.url(&format!("/api/v1/requests/{id}/withdraw"))).send().await.unwrap(), 403, "forbidden")
        .await;
    assert_eq!(wjw.post(app.url(&format!("/api/v1/requests/{id}/withdraw"))).send().await.unwrap().status(), 200);
    assert_error(
        gaj.post(app.url(&format!("/api/v1/requests/{id}/approve"))).json(&json!({})).send().await.unwrap(),
        409,
        "conflict",
    )
    .await;
    let v: Value = wjw
        .post(app.url("/api/v1/requests"))
        .json(&json!({"resource_id": "101/000002", "purpose": "x", "basis": "y"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id2 = v["id"].as_str().unwrap();
    let r: Value = gaj
        .post(app.url(&format!("/api/v1/requests/{id2}/reject")))
        .json(&json!({"reason": "用途不明确"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(r["state"], "rejected");
    assert_eq!(r["reason"], "用途不明确");
    // Listing: mine and incoming; bad input named by field.
    let mine: Vec<Value> = wjw.get(app.url("/api/v1/requests")).send().await.unwrap().json().await.unwrap();
    assert_eq!(mine.len(), 4);
    let incoming: Vec<Value> = gaj.get(app.url("/api/v1/requests")).send().await.unwrap().json().await.unwrap();
    assert_eq!(incoming.len(), 3);
    let overdue: Vec<Value> =
        gaj.get(app.url("/api/v1/requests?overdue=true")).send().await.unwrap().json().await.unwrap();
    assert!(overdue.is_empty());
    let r = wjw
        .post(app.url("/api/v1/requests"))
        .json(&json!({"resource_id": "101/000001", "purpose": "", "fields": ["颜色"], "period_days": 0}))
        .send()
        .await
        .unwrap();
    let body = assert_error(r, 400, "validation_failed").await;
    let fields: Vec<&str> =
        body["error"]["details"]["fields"].as_array().unwrap().iter().map(|f| f["field"].as_str().unwrap()).collect();
    for f in ["fields[0]", "purpose", "basis", "period_days"] {
        assert!(fields.contains(&f), "{f}: {fields:?}");
    }
    // Response times: two answers by a person (one rejection, one withdrawal is not an answer).
    let rt: Value =
        gaj.get(app.url("/api/v1/departments/gaj/response-times")).send().await.unwrap().json().await.unwrap();
    assert_eq!(rt["decided"], 1);
    assert_eq!(rt["median_workdays"], 0);
    assert_eq!(rt["pending"], 0);
    // Nobody else sees a department's request.
    let scj = app.login("scjgj-steward").await;
    assert_error(scj.get(app.url(&format!("/api/v1/requests/{id}"))).send().await.unwrap(), 404, "not_found").await;
}

/// A member of the public registers, applies for a 有条件开放 resource, is approved, and reads
/// it with its own token.
#[tokio::test]
async fn a_public_user_applies_and_reads_with_its_token() {
    let app = spawn_app().await;
    let anon = citydata_testkit::new_client();
    let r = anon
        .post(app.url("/api/v1/auth/register"))
        .json(&json!({"email": "Li.Ming@example.cn", "password": "public-pass-1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
    let r = anon
        .post(app.url("/api/v1/auth/register"))
        .json(&json!({"email": "li.ming@example.cn", "password": "public-pass-1"}))
        .send()
        .await
        .unwrap();
    assert_error(r, 409, "conflict").await;
    let r = anon
        .post(app.url("/api/v1/auth/register"))
        .json(&json!({"email": "not-an-email", "password": "short"}))
        .send()
        .await
        .unwrap();
    let body = assert_error(r, 400, "validation_failed").await;
    let fields: Vec<&str> =
        body["error"]["details"]["fields"].as_array().unwrap().iter().map(|f| f["field"].as_str().unwrap()).collect();
    assert_eq!(fields, ["email", "password"]);
    // The provider (大数据管理中心, run by the admin) loads 国土空间规划分区 (有条件开放).
    let admin = app.login("admin").await;
    let csv = "分区编码,分区名称,面积\nZ01,生态保护区,120.5\nZ02,农田保护区,300\nZ03,城镇开发区,88.25\n";
    assert_eq!(
        admin.post(app.url("/api/v1/resources/103%2F000001/data")).body(csv).send().await.unwrap().status(),
        201
    );

    let user = citydata_testkit::new_client();
    let r = user
        .post(app.url("/api/v1/auth/login"))
        .json(&json!({"username": "li.ming@example.cn", "password": "public-pass-1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let token: Value = user
        .post(app.url("/api/v1/tokens"))
        .json(&json!({"name": "我的应用"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = token["token"].as_str().unwrap().to_string();
    let bearer = citydata_testkit::new_client();
    let rows = app.url("/api/v1/resources/103%2F000001/rows");
    assert_error(bearer.get(&rows).bearer_auth(&token).send().await.unwrap(), 403, "grant_required").await;
    // The application needs the commitment accepted and a scenario.
    let r = user
        .post(app.url("/api/v1/requests"))
        .json(&json!({"resource_id": "103/000001", "purpose": "规划研究"}))
        .send()
        .await
        .unwrap();
    let body = assert_error(r, 400, "validation_failed").await;
    let fields: Vec<&str> =
        body["error"]["details"]["fields"].as_array().unwrap().iter().map(|f| f["field"].as_str().unwrap()).collect();
    assert!(fields.contains(&"accept_commitment") && fields.contains(&"scenario"), "{fields:?}");
    // The commitment text is public, with its fingerprint; a stale fingerprint is refused.
    let commitment: Value =
        anon.get(app.url("/api/v1/requests/commitment")).send().await.unwrap().json().await.unwrap();
    assert!(commitment["text"].as_str().unwrap().contains("承诺"), "{commitment}");
    let sha = commitment["sha256"].as_str().unwrap();
    assert_eq!(sha.len(), 64);
    let r = user
        .post(app.url("/api/v1/requests"))
        .json(&json!({"resource_id": "103/000001", "purpose": "规划研究", "scenario": "高校课题", "accept_commitment": true,
            "commitment_sha256": "00".repeat(32)}))
        .send()
        .await
        .unwrap();
    let body = assert_error(r, 400, "validation_failed").await;
    assert!(body.to_string().contains("stale_commitment"), "{body}");
    let r = user
        .post(app.url("/api/v1/requests"))
        .json(&json!({"resource_id": "103/000001", "purpose": "规划研究", "scenario": "高校课题", "accept_commitment": true,
            "commitment_sha256": sha, "period_days": 30}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
    let req: Value = r.json().await.unwrap();
    assert_eq!(req["state"], "pending");
    assert_eq!(req["commitment_sha256"], sha, "the accepted text is recorded");
    assert!(req["requester_department"].is_null());
    let id = req["id"].as_str().unwrap();
    let r = admin
        .post(app.url(&format!("/api/v1/requests/{id}/approve")))
        .json(&json!({"fields": ["分区编码", "面积"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let v: Value = bearer.get(&rows).bearer_auth(&token).send().await.unwrap().json().await.unwrap();
    let names: Vec<&str> = v["fields"].as_array().unwrap().iter().map(|f| f["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["fqbm", "mj"]);
    assert_eq!(v["rows"].as_array().unwrap().len(), 3);
    // Another anonymous caller still gets nothing.
    assert_error(anon.get(&rows).send().await.unwrap(), 403, "grant_required").await;
    // Registrations are limited per client address.
    let mut last = 0;
    for i in 0..6 {
        last = anon
            .post(app.url("/api/v1/auth/register"))
            .json(&json!({"email": format!("x{i}@example.cn"), "password": "public-pass-1"}))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16();
    }
    assert_eq!(last, 429);
}

/// The hourly sweep: an overdue request is flagged to platform admins once; a grant expiring
/// within 7 days is announced to its grantee once; nothing is sent before its time.
#[tokio::test]
async fn overdue_requests_and_expiring_grants_are_announced_once() {
    let app = spawn_app().await;
    let wjw = app.login("wjw-analyst").await;
    let r = wjw
        .post(app.url("/api/v1/requests"))
        .json(&json!({"resource_id": "101/000001", "fields": ["性别"], "purpose": "统计", "basis": "职责", "period_days": 5}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let id = r.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_string();
    let admin = app.login("admin").await;
    let flagged = |msgs: Vec<Value>| {
        msgs.iter().any(|m| m["kind"] == "request.overdue" && m["link"].as_str().unwrap().ends_with(&id))
    };

    // Not yet due: nothing.
    let now = chrono::Utc::now();
    assert_eq!(app.core.sweep_notices(now).await.unwrap(), (0, 0));
    assert!(!flagged(inbox(&admin, &app).await));
    // A month later it is overdue: admins are told once.
    let later = now + chrono::Duration::days(30);
    assert_eq!(app.core.sweep_notices(later).await.unwrap(), (1, 0));
    assert_eq!(app.core.sweep_notices(later).await.unwrap(), (0, 0));
    assert!(flagged(inbox(&admin, &app).await));
    assert!(!flagged(inbox(&wjw, &app).await), "only admins are flagged");

    // Approved for 5 days: the grant is within the 7-day horizon; the grantee department hears once.
    let gaj = app.login("gaj-steward").await;
    let r = gaj.post(app.url(&format!("/api/v1/requests/{id}/approve"))).json(&json!({})).send().await.unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let grant_id = r.json::<Value>().await.unwrap()["grant_id"].as_str().unwrap().to_string();
    assert_eq!(app.core.sweep_notices(now).await.unwrap(), (0, 1));
    assert_eq!(app.core.sweep_notices(now).await.unwrap(), (0, 0));
    let msgs = inbox(&wjw, &app).await;
    assert!(
        msgs.iter().any(|m| m["kind"] == "grant.expiring" && m["link"].as_str().unwrap().ends_with(&grant_id)),
        "{msgs:?}"
    );
    // ... and the provider's steward is not the grantee.
    assert!(!inbox(&gaj, &app).await.iter().any(|m| m["kind"] == "grant.expiring"));
}

/// A grantee asks to renew before expiry; the provider approves; the new grant keeps the old
/// one's row filter and masks, runs beyond the old expiry, and replaces it.
#[tokio::test]
async fn grants_are_renewed_through_a_request() {
    let app = spawn_app().await;
    let gaj = app.login("gaj-steward").await;
    let grant: Value = gaj
        .post(app.url("/api/v1/grants"))
        .json(&json!({"resource_id": "101/000001", "grantee": {"department": "wjw"}, "fields": ["性别", "区县"],
            "row_filter": "区县 = '海陵区'", "masks": {"性别": "redact"}, "purpose": "妇幼健康服务",
            "expires_at": (chrono::Utc::now() + chrono::Duration::days(5)).to_rfc3339()}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let gid = grant["id"].as_str().unwrap();
    let old_expiry: chrono::DateTime<chrono::Utc> = grant["expires_at"].as_str().unwrap().parse().unwrap();
    // Only grantees may ask.
    let scjgj = app.login("scjgj-steward").await;
    assert_error(
        scjgj.post(app.url(&format!("/api/v1/grants/{gid}/renew"))).json(&json!({})).send().await.unwrap(),
        404,
        "not_found",
    )
    .await;
    let wjw = app.login("wjw-analyst").await;
    let r = wjw
        .post(app.url(&format!("/api/v1/grants/{gid}/renew")))
        .json(&json!({"period_days": 90}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
    let req: Value = r.json().await.unwrap();
    assert_eq!(req["state"], "pending");
    assert_eq!(req["renews_grant"], gid);
    assert_eq!(req["purpose"], "妇幼健康服务");
    assert_eq!(req["fields"], json!(["xb", "qx"]));
    // One renewal at a time; the provider is told.
    assert_error(
        wjw.post(app.url(&format!("/api/v1/grants/{gid}/renew"))).json(&json!({})).send().await.unwrap(),
        409,
        "conflict",
    )
    .await;
    let msgs: Vec<Value> = gaj.get(app.url("/api/v1/inbox")).send().await.unwrap().json().await.unwrap();
    assert!(msgs.iter().any(|m| m["kind"] == "request.new"));
    let id = req["id"].as_str().unwrap();
    let r = gaj.post(app.url(&format!("/api/v1/requests/{id}/approve"))).json(&json!({})).send().await.unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let approved: Value = r.json().await.unwrap();
    let new_id = approved["grant_id"].as_str().unwrap();
    let grants: Vec<Value> = wjw.get(app.url("/api/v1/grants")).send().await.unwrap().json().await.unwrap();
    let old = grants.iter().find(|g| g["id"] == gid).unwrap();
    let new = grants.iter().find(|g| g["id"] == new_id).unwrap();
    assert_eq!(old["state"], "revoked");
    assert_eq!(old["revoked_by"], "renewal");
    assert_eq!(new["state"], "active");
    assert_eq!(new["row_filter"], old["row_filter"]);
    assert!(new["row_filter"].as_str().unwrap().contains("海陵区"));
    assert_eq!(new["masks"], json!({"xb": "redact"}));
    let new_expiry: chrono::DateTime<chrono::Utc> = new["expires_at"].as_str().unwrap().parse().unwrap();
    assert!(new_expiry > old_expiry + chrono::Duration::days(80), "{old_expiry} → {new_expiry}");
    // A revoked (or replaced) grant cannot be renewed.
    assert_error(
        wjw.post(app.url(&format!("/api/v1/grants/{gid}/renew"))).json(&json!({})).send().await.unwrap(),
        409,
        "conflict",
    )
    .await;
}

/// The 安全承诺书 is the configured text; its fingerprint follows the text.
#[tokio::test]
async fn the_commitment_text_is_configurable() {
    use sha2::Digest;
    let text = "本单位承诺仅将数据用于城市规划研究，不向第三方提供。";
    let app = citydata_testkit::spawn_app_with(citydata_testkit::SpawnOptions {
        commitment_text: Some(text.into()),
        ..Default::default()
    })
    .await;
    let v: Value = citydata_testkit::new_client()
        .get(app.url("/api/v1/requests/commitment"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["text"], text);
    assert_eq!(v["sha256"], hex::encode(sha2::Sha256::digest(text.as_bytes())));
}
