//! HTTP sources (#18) against a small HTTP server started here: paged JSON (page numbers and
//! next links), CSV, `ETag` → 304 so an unchanged source commits nothing, a malformed answer
//! failing the run with nothing written, and the address rule of outgoing webhooks.

use citydata_testkit::{SpawnOptions, TestApp, assert_error, spawn_app, spawn_app_with};
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use std::time::Duration;

fn options() -> SpawnOptions {
    SpawnOptions { configure: Some(|s| s.webhook_allow_cidrs = vec!["127.0.0.0/8".into()]), ..Default::default() }
}

fn uscc(first16: &str) -> String {
    use citydata_domain::identifiers::{org_check_char, uscc_check_char};
    let first17 = format!("{first16}{}", org_check_char(&first16[8..]).unwrap());
    format!("{first17}{}", uscc_check_char(&first17).unwrap())
}

/// What the server serves: the records, the ETag of this state, and a request log.
#[derive(Default)]
struct Served {
    records: Vec<Value>,
    etag: String,
    requests: Vec<String>,
}

async fn server(state: Arc<Mutex<Served>>) -> String {
    use axum::extract::{Query, State};
    use axum::http::{HeaderMap, StatusCode, header};
    use axum::response::IntoResponse;
    use std::collections::HashMap;
    type S = Arc<Mutex<Served>>;
    async fn items(
        State(s): State<S>,
        Query(q): Query<HashMap<String, String>>,
        h: HeaderMap,
    ) -> axum::response::Response {
        let mut s = s.lock().unwrap();
        s.requests.push(format!("items {q:?}"));
        if h.get(header::IF_NONE_MATCH).and_then(|v| v.to_str().ok()) == Some(s.etag.as_str()) {
            return StatusCode::NOT_MODIFIED.into_response();
        }
        let page: usize = q.get("page").and_then(|p| p.parse().ok()).unwrap_or(1);
        let size: usize = q.get("size").and_then(|p| p.parse().ok()).unwrap_or(100);
        let chunk: Vec<Value> = s.records.iter().skip((page - 1) * size).take(size).cloned().collect();
        ([(header::ETAG, s.etag.clone())], axum::Json(json!({"data": {"items": chunk}}))).into_response()
    }
    async fn linked(State(s): State<S>, Query(q): Query<HashMap<String, String>>) -> axum::response::Response {
        let s = s.lock().unwrap();
        let at: usize = q.get("cursor").and_then(|p| p.parse().ok()).unwrap_or(0);
        let chunk: Vec<Value> = s.records.iter().skip(at).take(1).cloned().collect();
        let next = (at + 1 < s.records.len()).then(|| format!("/linked?cursor={}", at + 1));
        axum::Json(json!({"items": chunk, "links": {"next": next}})).into_response()
    }
    async fn csv(State(s): State<S>) -> String {
        let s = s.lock().unwrap();
        let mut out = String::from("tyshxydm,pjdj,pjrq\n");
        for r in s.records.iter().take(2) {
            out.push_str(&format!(
                "{},{},{}\n",
                r["tyshxydm"].as_str().unwrap(),
                r["pjdj"].as_str().unwrap(),
                r["pjrq"].as_str().unwrap()
            ));
        }
        out
    }
    // The same records as a spreadsheet, under their Chinese titles.
    async fn xlsx(State(s): State<S>) -> Vec<u8> {
        let s = s.lock().unwrap();
        let mut book = rust_xlsxwriter::Workbook::new();
        let sheet = book.add_worksheet();
        for (c, h) in ["统一社会信用代码", "评价等级", "评价日期"].iter().enumerate() {
            sheet.write_string(0, c as u16, *h).unwrap();
        }
        for (i, r) in s.records.iter().enumerate() {
            for (c, k) in ["tyshxydm", "pjdj", "pjrq"].iter().enumerate() {
                sheet.write_string(i as u32 + 1, c as u16, r[*k].as_str().unwrap()).unwrap();
            }
        }
        book.save_to_buffer().unwrap()
    }
    let app = axum::Router::new()
        .route("/xlsx", axum::routing::get(xlsx))
        .route("/items", axum::routing::get(items))
        .route("/linked", axum::routing::get(linked))
        .route("/csv", axum::routing::get(csv))
        .route("/broken", axum::routing::get(|| async { "<html>维护中 / down for maintenance</html>" }))
        .with_state(state);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    base
}

async fn rows(app: &TestApp, c: &reqwest::Client, rid: &str) -> (Vec<(String, String)>, Value) {
    let r: Value =
        c.get(app.url(&format!("/api/v1/resources/{rid}/rows?limit=1000"))).send().await.unwrap().json().await.unwrap();
    let mut v: Vec<(String, String)> = r["rows"]
        .as_array()
        .unwrap_or(&vec![])
        .iter()
        .map(|row| (row["tyshxydm"].as_str().unwrap().to_string(), row["pjdj"].as_str().unwrap_or("").to_string()))
        .collect();
    v.sort();
    (v, r["version"].clone())
}

async fn run_now(app: &TestApp, c: &reqwest::Client, source: &str) -> Value {
    let r = c.post(app.url(&format!("/api/v1/sources/{source}/run"))).send().await.unwrap();
    assert_eq!(r.status(), 202);
    let run: Value = r.json().await.unwrap();
    let run_id = run["run_id"].as_str().unwrap();
    for _ in 0..1200 {
        let v: Value = c
            .get(app.url(&format!("/api/v1/sources/{source}/runs/{run_id}")))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if ["succeeded", "failed", "aborted"].contains(&v["state"].as_str().unwrap_or("")) {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("run {run_id} never ended");
}

async fn create(app: &TestApp, c: &reqwest::Client, body: Value) -> String {
    let r = c.post(app.url("/api/v1/sources")).json(&body).send().await.unwrap();
    let status = r.status();
    let text = r.text().await.unwrap();
    assert_eq!(status, 201, "{text}");
    assert!(!text.contains("s3cret"), "a header value came back: {text}");
    serde_json::from_str::<Value>(&text).unwrap()["id"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn http_sources_page_skip_unchanged_answers_and_fail_on_malformed_ones() {
    let app = spawn_app_with(options()).await;
    let (a, b, c) = (uscc("91321200MA300001"), uscc("91321200MA300002"), uscc("91321200MA300003"));
    let state = Arc::new(Mutex::new(Served {
        records: vec![
            json!({"tyshxydm": a, "pjdj": "A", "pjrq": "2025-01-01"}),
            json!({"tyshxydm": b, "pjdj": "B", "pjrq": "2025-01-02"}),
            json!({"tyshxydm": c, "pjdj": "C", "pjrq": "2025-01-03"}),
        ],
        etag: "\"v1\"".into(),
        requests: vec![],
    }));
    let base = server(state.clone()).await;
    let steward = app.login("scjgj-steward").await;
    let rid = app.store.find_resource("104/000001").await.unwrap().unwrap().id.to_string();
    let sid = create(
        &app,
        &steward,
        json!({
            "name": "信用评价接口", "kind": "http", "resource_id": rid, "mode": "upsert",
            "connection": {"url": format!("{base}/items"), "headers": {"Authorization": "Bearer s3cret"}},
            "records": "data.items", "pagination": {"kind": "page", "size_param": "size", "size": 2},
            "schedule": "every 6h", "max_retries": 0
        }),
    )
    .await;
    let view: Value =
        steward.get(app.url(&format!("/api/v1/sources/{sid}"))).send().await.unwrap().json().await.unwrap();
    assert_eq!(view["connection"]["headers"], json!(["Authorization"]));

    // Two pages (2 + 1 records).
    let run = run_now(&app, &steward, &sid).await;
    assert_eq!(run["state"], "succeeded", "{run}");
    assert_eq!(run["report"]["rows_committed"], 3, "{run}");
    let (t, version) = rows(&app, &steward, &rid).await;
    assert_eq!(t.len(), 3);
    assert_eq!(state.lock().unwrap().requests.len(), 2);

    // Unchanged: the first page answers 304 and nothing is committed.
    let run = run_now(&app, &steward, &sid).await;
    assert_eq!(run["state"], "succeeded", "{run}");
    assert_eq!(run["report"]["not_modified"], true, "{run}");
    assert_eq!(rows(&app, &steward, &rid).await.1, version);
    assert_eq!(state.lock().unwrap().requests.len(), 3);

    // Changed: a new ETag, the update arrives.
    {
        let mut s = state.lock().unwrap();
        s.records[0]["pjdj"] = json!("D");
        s.etag = "\"v2\"".into();
    }
    let run = run_now(&app, &steward, &sid).await;
    assert_eq!(run["state"], "succeeded", "{run}");
    let (t, version) = rows(&app, &steward, &rid).await;
    assert!(t.contains(&(a.clone(), "D".to_string())), "{t:?}");

    // A malformed answer: the run fails saying so, the table stays.
    let r = steward
        .patch(app.url(&format!("/api/v1/sources/{sid}")))
        .json(&json!({"connection": {"url": format!("{base}/broken")}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let run = run_now(&app, &steward, &sid).await;
    assert_eq!(run["state"], "failed");
    assert!(run["error"].as_str().unwrap().contains("not JSON"), "{run}");
    assert_eq!(rows(&app, &steward, &rid).await.1, version);
    // The patch kept the sealed header.
    let view: Value =
        steward.get(app.url(&format!("/api/v1/sources/{sid}"))).send().await.unwrap().json().await.unwrap();
    assert_eq!(view["connection"]["headers"], json!(["Authorization"]));

    // Next links.
    let linked = create(
        &app,
        &steward,
        json!({"name": "按链接翻页", "kind": "http", "resource_id": rid, "mode": "upsert",
               "connection": {"url": format!("{base}/linked")}, "records": "items",
               "pagination": {"kind": "next", "next": "links.next"}}),
    )
    .await;
    let run = run_now(&app, &steward, &linked).await;
    assert_eq!(run["state"], "succeeded", "{run}");
    assert_eq!(run["report"]["rows_read"], 3, "{run}");

    // CSV in replace mode: the table becomes the file.
    let csv = create(
        &app,
        &steward,
        json!({"name": "CSV 文件", "kind": "http", "resource_id": rid, "mode": "replace", "format": "csv",
               "connection": {"url": format!("{base}/csv")}}),
    )
    .await;
    let run = run_now(&app, &steward, &csv).await;
    assert_eq!(run["state"], "succeeded", "{run}");
    assert_eq!(rows(&app, &steward, &rid).await.0.len(), 2);
    // XLSX the same way (the first sheet, columns by title).
    let xlsx = create(
        &app,
        &steward,
        json!({"name": "XLSX 文件", "kind": "http", "resource_id": rid, "mode": "replace", "format": "xlsx",
               "connection": {"url": format!("{base}/xlsx")}}),
    )
    .await;
    let run = run_now(&app, &steward, &xlsx).await;
    assert_eq!(run["state"], "succeeded", "{run}");
    assert_eq!(rows(&app, &steward, &rid).await.0.len(), 3, "{run}");

    // The console: the steward's sources, and the page of one with its runs and a chart of
    // rows per run, in plain Chinese; another department's steward gets no such page.
    let list = steward.get(app.url("/console/sources")).send().await.unwrap();
    assert_eq!(list.status(), 200);
    let html = list.text().await.unwrap();
    assert!(html.contains("信用评价接口") && html.contains("HTTP 接口"), "{html}");
    assert!(crate::plain::raw_codes(&html).is_empty(), "{:?}", crate::plain::raw_codes(&html));
    let page = steward.get(app.url(&format!("/console/sources/{sid}"))).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(
        html.contains("<svg") && html.contains("运行记录") && html.contains("失败") && html.contains("不是 JSON"),
        "{html}"
    );
    assert!(crate::plain::raw_codes(&html).is_empty(), "{:?}", crate::plain::raw_codes(&html));
    let en =
        steward.get(app.url(&format!("/console/sources/{sid}?lang=en"))).send().await.unwrap().text().await.unwrap();
    assert!(en.contains("Rows written per run"), "{en}");
    let wjw = app.login("wjw-steward").await;
    assert_eq!(wjw.get(app.url(&format!("/console/sources/{sid}"))).send().await.unwrap().status(), 404);
    let listed = wjw.get(app.url("/console/sources")).send().await.unwrap().text().await.unwrap();
    assert!(!listed.contains("信用评价接口"));
}

#[tokio::test]
async fn http_sources_keep_to_the_webhook_address_rule() {
    let app = spawn_app().await;
    let steward = app.login("scjgj-steward").await;
    for url in [
        "http://127.0.0.1:8080/x",
        "http://169.254.169.254/latest/meta-data",
        "http://10.0.0.1/x",
        "ftp://example.org/x",
    ] {
        let r = steward
            .post(app.url("/api/v1/sources"))
            .json(&json!({"name": "x", "kind": "http", "resource_id": "104/000001", "connection": {"url": url}}))
            .send()
            .await
            .unwrap();
        let e = assert_error(r, 400, "validation_failed").await;
        assert!(e.to_string().contains("connection"), "{url}: {e}");
    }
    let r = steward
        .post(app.url("/api/v1/sources"))
        .json(&json!({"name": "x", "kind": "http", "resource_id": "104/000001",
                      "connection": {"url": "https://203.0.113.7/x"}, "pagination": {"kind": "sideways"}}))
        .send()
        .await
        .unwrap();
    let e = assert_error(r, 400, "validation_failed").await;
    assert!(e.to_string().contains("pagination"), "{e}");
}

fn csrf_of(html: &str) -> String {
    let at = html.find("name=\"csrf\" value=\"").expect("a form with a CSRF token");
    let rest = &html[at + "name=\"csrf\" value=\"".len()..];
    rest[..rest.find('"').unwrap()].to_string()
}

#[tokio::test]
async fn a_steward_creates_a_database_source_in_the_console() {
    let app = spawn_app_with(options()).await;
    let steward = app.login("scjgj-steward").await;
    let html = steward.get(app.url("/console/sources/new")).send().await.unwrap().text().await.unwrap();
    assert!(html.contains("企业信用评价结果"), "the picker offers the department's resources");
    assert!(crate::plain::raw_codes(&html).is_empty(), "{:?}", crate::plain::raw_codes(&html));
    let csrf = csrf_of(&html);
    let rid = app.store.find_resource("104/000001").await.unwrap().unwrap().id.to_string();
    let mut form = vec![
        ("csrf", csrf.clone()),
        ("name", "企业信用评价（前置机）".to_string()),
        ("resource", rid.clone()),
        ("url", "postgres://reader@127.0.0.1:5432/scjg".to_string()),
        ("password", "pw-s3cret".to_string()),
        ("table", "credit".to_string()),
        ("mode", "upsert".to_string()),
        ("watermark", "updated_at".to_string()),
        ("schedule", "0 25 * * *".to_string()),
    ];
    // A bad schedule: the form again, the message by its field, the input kept (not the password).
    let r = steward.post(app.url("/console/sources/new")).form(&form).send().await.unwrap();
    assert_eq!(r.status(), 400);
    let html = r.text().await.unwrap();
    assert!(html.contains("id=\"err-schedule\"") && html.contains("小时"), "{html}");
    assert!(html.contains("企业信用评价（前置机）") && !html.contains("pw-s3cret"));
    // Fixed: created, and its page shows it.
    form[8].1 = "0 */6 * * *".into();
    let r = steward.post(app.url("/console/sources/new")).form(&form).send().await.unwrap();
    assert_eq!(r.status(), 200, "followed to the source's page");
    assert!(r.url().path().starts_with("/console/sources/"), "{}", r.url());
    let html = r.text().await.unwrap();
    assert!(html.contains("企业信用评价（前置机）") && !html.contains("pw-s3cret"));
    let listed = app.store.list_sources(Some("scjgj")).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert!(listed[0].secret.as_deref().is_some_and(|s| !s.contains("pw-s3cret")), "sealed at rest");
    // The other kinds from the same form: an HTTP API with a paging and a secret header, a
    // MySQL database, a CKAN harvest; each takes only its own group of fields.
    let html = steward.get(app.url("/console/sources/new")).send().await.unwrap().text().await.unwrap();
    for k in ["MySQL 数据库", "HTTP 接口", "其他门户目录（CKAN）", "其他门户目录（DCAT）"] {
        assert!(html.contains(k), "the kind picker offers {k}");
    }
    let csrf = csrf_of(&html);
    let http_form = vec![
        ("csrf", csrf.clone()),
        ("name", "信用评价接口".to_string()),
        ("kind", "http".to_string()),
        ("resource", rid.clone()),
        ("url", "http://127.0.0.1:9/ratings".to_string()),
        ("mode", "upsert".to_string()),
        ("format", "json".to_string()),
        ("records", "data.items".to_string()),
        ("page_kind", "page".to_string()),
        ("size_param", "size".to_string()),
        ("size", "500".to_string()),
        ("headers", "Authorization: Bearer tok-s3cret\nX-Api-Key: k-s3cret".to_string()),
        // Fields of other kinds, left filled in: ignored.
        ("table", "credit".to_string()),
        ("watermark", "updated_at".to_string()),
    ];
    // A header line that is not "Name: value": the form again, the line named, nothing kept.
    let mut broken = http_form.clone();
    broken[11].1 = "Authorization Bearer".into();
    let r = steward.post(app.url("/console/sources/new")).form(&broken).send().await.unwrap();
    assert_eq!(r.status(), 400);
    let html = r.text().await.unwrap();
    assert!(html.contains("id=\"err-headers\"") && html.contains("第 1 行"), "{html}");
    assert!(!html.contains("Authorization Bearer"), "headers are not echoed");
    let r = steward.post(app.url("/console/sources/new")).form(&http_form).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let html = r.text().await.unwrap();
    assert!(html.contains("信用评价接口") && !html.contains("s3cret"));
    let mysql_form = vec![
        ("csrf", csrf.clone()),
        ("name", "信用评价（MySQL）".to_string()),
        ("kind", "mysql".to_string()),
        ("resource", rid.clone()),
        ("url", "postgres://reader@127.0.0.1:3306/scjg".to_string()),
        ("table", "credit".to_string()),
        ("mode", "replace".to_string()),
    ];
    // A PostgreSQL address on a MySQL source: named at the address field.
    let r = steward.post(app.url("/console/sources/new")).form(&mysql_form).send().await.unwrap();
    assert_eq!(r.status(), 400);
    let html = r.text().await.unwrap();
    assert!(html.contains("id=\"err-url\"") && html.contains("mysql:&#x2f;&#x2f;用户@主机"), "{html}");
    let mut mysql_form = mysql_form;
    mysql_form[4].1 = "mysql://reader:pw-s3cret@127.0.0.1:3306/scjg".into();
    let r = steward.post(app.url("/console/sources/new")).form(&mysql_form).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let ckan_form = vec![
        ("csrf", csrf.clone()),
        ("name", "省平台目录".to_string()),
        ("kind", "ckan".to_string()),
        ("url", "http://127.0.0.1:9/".to_string()),
        ("department", "scjgj".to_string()),
        ("schedule", "every 6h".to_string()),
        ("resource", rid.clone()),
        ("departments", "省市场监管局 = scjgj\n".to_string()),
        ("distributions", "on".to_string()),
    ];
    // A mapping line without "=": named, the text kept.
    let mut broken = ckan_form.clone();
    broken[7].1 = "省市场监管局 scjgj".into();
    let r = steward.post(app.url("/console/sources/new")).form(&broken).send().await.unwrap();
    assert_eq!(r.status(), 400);
    let html = r.text().await.unwrap();
    assert!(html.contains("id=\"err-departments\"") && html.contains("省市场监管局 scjgj"), "{html}");
    let r = steward.post(app.url("/console/sources/new")).form(&ckan_form).send().await.unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let mut listed = app.store.list_sources(Some("scjgj")).await.unwrap();
    listed.sort_by_key(|s| s.created_at);
    let kinds: Vec<&str> = listed.iter().map(|s| s.kind.as_str()).collect();
    assert_eq!(kinds, ["postgres", "http", "mysql", "ckan"]);
    let view: Value =
        steward.get(app.url(&format!("/api/v1/sources/{}", listed[1].id))).send().await.unwrap().json().await.unwrap();
    assert_eq!(view["records"], "data.items", "{view}");
    assert_eq!(view["pagination"]["kind"], "page", "{view}");
    assert_eq!(view["pagination"]["size"], 500, "{view}");
    assert!(view["table"].is_null() && view["watermark"].is_null(), "a database field on an HTTP source: {view}");
    assert!(!view.to_string().contains("s3cret"), "{view}");
    assert!(listed.iter().all(|s| s.secret.as_deref().is_none_or(|x| !x.contains("s3cret"))), "sealed at rest");
    assert!(listed[3].resource_id.is_none(), "a harvest fills no table");
    let harvest: Value =
        steward.get(app.url(&format!("/api/v1/sources/{}", listed[3].id))).send().await.unwrap().json().await.unwrap();
    assert_eq!(harvest["departments"]["省市场监管局"], "scjgj", "{harvest}");
    assert_eq!(harvest["distributions"], true, "{harvest}");

    // Another department cannot create one for scjgj's resource, even with a valid form.
    let wjw = app.login("wjw-steward").await;
    let html = wjw.get(app.url("/console/sources/new")).send().await.unwrap().text().await.unwrap();
    form[0].1 = csrf_of(&html);
    let r = wjw.post(app.url("/console/sources/new")).form(&form).send().await.unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(app.store.list_sources(None).await.unwrap().len(), 4);
}
