//! A hostile caller against the quality surfaces (#16): failing values kept in the stored
//! reports after an erasure, record keys of tickets on resources the caller cannot read, ticket
//! steps by the wrong party, out-of-order and repeated steps, markup in ticket titles on the
//! public page, the profile and the overdue list for outsiders.

use citydata_core::demo::generate::{Register, generate_listing};
use citydata_testkit::{TestApp, assert_error, new_client, spawn_app};
use serde_json::{Value, json};

const POP: &str = "101%2F000001";
const ENT: &str = "102%2F000001";

async fn upload(app: &TestApp, c: &reqwest::Client, res: &str, query: &str, body: Vec<u8>) -> Value {
    let r = c.post(app.url(&format!("/api/v1/resources/{res}/data{query}"))).body(body).send().await.unwrap();
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
    r.json().await.unwrap()
}

fn listing(register: Register, rows: u64, defects: f64, seed: u64) -> Vec<u8> {
    let mut f = Vec::new();
    generate_listing(register, rows, defects, seed, false, &mut f).unwrap();
    f
}

async fn get_text(c: &reqwest::Client, app: &TestApp, path: &str) -> (u16, String) {
    let r = c.get(app.url(path)).send().await.unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

/// The failing values of a report, as the provider's steward sees them.
fn top_values(report: &Value) -> Vec<String> {
    let mut out = Vec::new();
    for rule in report["rules"].as_array().unwrap() {
        for v in rule["top_values"].as_array().into_iter().flatten() {
            out.push(v["value"].as_str().unwrap().to_string());
        }
    }
    out
}

#[tokio::test]
async fn an_erasure_also_erases_the_failing_values_quoted_by_stored_reports() {
    let app = spawn_app().await;
    let gaj = app.login("gaj-steward").await;
    // A rule every 姓名 fails: the report quotes names, the most personal of values.
    let r = gaj
        .patch(app.url(&format!("/api/v1/resources/{POP}")))
        .json(&json!({"quality_rules": [{"rule": "length(xm, 9, 9)", "severity": "warn"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    upload(&app, &gaj, POP, "", listing(Register::Population, 200, 0.0, 11)).await; // v0
    let (s, v0) = get_text(&gaj, &app, &format!("/api/v1/resources/{POP}/quality?version=0")).await;
    assert_eq!(s, 200, "{v0}");
    let before = top_values(&serde_json::from_str(&v0).unwrap());
    assert!(!before.is_empty(), "the steward sees the failing values before: {v0}");

    // Replace the whole table with clean rows and erase the history.
    let r = upload(&app, &gaj, POP, "?mode=replace&erase=true", listing(Register::Population, 20, 0.0, 12)).await;
    assert!(r["report"]["erasure"]["erased_before"].as_i64().is_some(), "{r}");

    // The old report keeps its counts but no longer quotes the erased cells.
    let (s, v0) = get_text(&gaj, &app, &format!("/api/v1/resources/{POP}/quality?version=0")).await;
    assert_eq!(s, 200, "{v0}");
    let report: Value = serde_json::from_str(&v0).unwrap();
    assert!(report["rows"].as_u64() == Some(200), "the counts stay: {report}");
    for value in &before {
        assert!(!v0.contains(value.as_str()), "the erased value {value} is still quoted: {v0}");
    }
    let (_, history) = get_text(&gaj, &app, &format!("/api/v1/resources/{POP}/quality/history")).await;
    for value in &before {
        assert!(!history.contains(value.as_str()), "history quotes {value}");
    }
}

async fn file_ticket(app: &TestApp, c: &reqwest::Client, res: &str, body: Value) -> Value {
    let r = c.post(app.url(&format!("/api/v1/resources/{res}/tickets"))).json(&body).send().await.unwrap();
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
    r.json().await.unwrap()
}

async fn step(c: &reqwest::Client, app: &TestApp, id: &str, action: &str, body: Value) -> reqwest::Response {
    c.post(app.url(&format!("/api/v1/tickets/{id}/{action}"))).json(&body).send().await.unwrap()
}

#[tokio::test]
async fn the_record_key_of_a_ticket_on_a_closed_register_stays_with_provider_and_reporter() {
    let app = spawn_app().await;
    let gaj = app.login("gaj-steward").await;
    upload(&app, &gaj, POP, "", listing(Register::Population, 20, 0.0, 3)).await;
    // A health analyst, who sees the catalog entry of 人口基础信息, reports a person's record.
    const KEY: &str = "320102199001011237";
    let wjw = app.login("wjw-steward").await;
    let t = file_ticket(
        &app,
        &wjw,
        POP,
        json!({"title": "出生日期有误", "description": "与出生证明不符", "record_key": KEY}),
    )
    .await;
    let id = t["id"].as_str().unwrap();
    assert_eq!(t["record_key"], KEY, "the reporter sees its own report");
    let (_, theirs) = get_text(&gaj, &app, &format!("/api/v1/tickets/{id}")).await;
    assert!(theirs.contains(KEY), "the provider sees the key: {theirs}");

    // Another department sees the ticket (it sees the entry) but not whose record it is.
    let rsj = app.login("scjgj-steward").await;
    let (s, list) = get_text(&rsj, &app, &format!("/api/v1/resources/{POP}/tickets")).await;
    assert_eq!(s, 200, "{list}");
    assert!(list.contains("出生日期有误"), "the ticket itself is listed: {list}");
    assert!(!list.contains(KEY), "another department learns the record key: {list}");
    let (s, one) = get_text(&rsj, &app, &format!("/api/v1/tickets/{id}")).await;
    assert_eq!(s, 200, "{one}");
    assert!(!one.contains(KEY) && !one.contains("wjw-steward"), "{one}");
    // The public does not see the register at all.
    let (s, _) = get_text(&new_client(), &app, &format!("/api/v1/resources/{POP}/tickets")).await;
    assert_eq!(s, 404);
    let (s, _) = get_text(&new_client(), &app, &format!("/api/v1/tickets/{id}")).await;
    assert_eq!(s, 404);
}

#[tokio::test]
async fn ticket_steps_by_the_wrong_party_or_twice_are_refused_and_change_nothing() {
    let app = spawn_app().await;
    let scj = app.login("scjgj-steward").await;
    upload(&app, &scj, ENT, "", listing(Register::Enterprise, 20, 0.0, 1)).await;
    let wjw = app.login("wjw-steward").await;
    let t = file_ticket(&app, &wjw, ENT, json!({"title": "名称有误", "description": "已更名"})).await;
    let id = t["id"].as_str().unwrap();

    // The reporter cannot accept, reject or fix its own ticket; another department cannot
    // either; a steward of the provider cannot confirm in the reporter's place.
    for action in ["accept", "reject", "fix"] {
        let body = json!({"reason": "x", "note": "x"});
        assert_error(step(&wjw, &app, id, action, body.clone()).await, 403, "forbidden").await;
        let gaj = app.login("gaj-steward").await;
        assert_error(step(&gaj, &app, id, action, body).await, 403, "forbidden").await;
    }
    assert_error(step(&scj, &app, id, "confirm", json!({})).await, 403, "forbidden").await;
    assert_error(step(&new_client(), &app, id, "accept", json!({})).await, 401, "unauthenticated").await;
    // Nobody closes by hand.
    let r = step(&app.login("admin").await, &app, id, "close", json!({})).await;
    assert!((403..=405).contains(&r.status().as_u16()), "{}", r.status());
    let (_, now) = get_text(&scj, &app, &format!("/api/v1/tickets/{id}")).await;
    let now: Value = serde_json::from_str(&now).unwrap();
    assert_eq!(now["state"], "submitted");
    assert_eq!(now["history"].as_array().unwrap().len(), 1, "refusals leave no trace in the history: {now}");

    // Reject, then the reporter reopens; a second reopen, a confirm of a rejected ticket and a
    // second reject are out of order.
    let r = step(&scj, &app, id, "reject", json!({"reason": "名称无误"})).await;
    assert_eq!(r.status(), 200);
    assert_error(step(&scj, &app, id, "reject", json!({"reason": "again"})).await, 409, "invalid_transition").await;
    assert_error(step(&wjw, &app, id, "confirm", json!({})).await, 409, "invalid_transition").await;
    assert_eq!(step(&wjw, &app, id, "reopen", json!({"reason": "仍有误"})).await.status(), 200);
    assert_error(step(&wjw, &app, id, "reopen", json!({"reason": "again"})).await, 409, "invalid_transition").await;
    // Comments: neither the public nor another department.
    let r = app
        .login("gaj-steward")
        .await
        .post(app.url(&format!("/api/v1/tickets/{id}/comments")))
        .json(&json!({"body": "插话"}))
        .send()
        .await
        .unwrap();
    assert_error(r, 403, "forbidden").await;
    let (_, now) = get_text(&scj, &app, &format!("/api/v1/tickets/{id}")).await;
    assert!(!now.contains("插话"), "{now}");
}

#[tokio::test]
async fn markup_in_ticket_titles_and_rule_texts_is_text_on_the_public_quality_page() {
    let app = spawn_app().await;
    let scj = app.login("scjgj-steward").await;
    // A rule whose text is markup, shown in the page's rule table.
    let r = scj
        .patch(app.url(&format!("/api/v1/resources/{ENT}")))
        .json(&json!({"quality_rules": [{"rule": "regex(qymc, <b>x</b>)", "severity": "info"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    upload(&app, &scj, ENT, "", listing(Register::Enterprise, 20, 0.0, 1)).await;
    let wjw = app.login("wjw-steward").await;
    file_ticket(
        &app,
        &wjw,
        ENT,
        json!({"title": "<script>alert(1)</script>", "description": "<img src=x onerror=alert(2)>"}),
    )
    .await;
    let res: Value =
        new_client().get(app.url(&format!("/api/v1/resources/{ENT}"))).send().await.unwrap().json().await.unwrap();
    let (s, page) =
        get_text(&new_client(), &app, &format!("/datasets/{}/quality", res["slug"].as_str().unwrap())).await;
    assert_eq!(s, 200);
    assert!(page.contains("&lt;script&gt;alert(1)"), "the title is shown, escaped: {page}");
    assert!(page.contains("&lt;b&gt;x"), "the rule is shown, escaped: {page}");
    assert!(!page.contains("<script>alert") && !page.contains("<img src=x") && !page.contains("<b>x"), "{page}");
}

#[tokio::test]
async fn outsiders_neither_profile_nor_read_the_closed_registers_quality() {
    let app = spawn_app().await;
    let gaj = app.login("gaj-steward").await;
    upload(&app, &gaj, POP, "", listing(Register::Population, 50, 0.2, 5)).await;
    // Another department's steward cannot run (and so replace) the provider's full profile.
    let wjw = app.login("wjw-steward").await;
    let r = wjw.post(app.url(&format!("/api/v1/resources/{POP}/quality/profile"))).send().await.unwrap();
    assert!(matches!(r.status().as_u16(), 403 | 404), "{}", r.status());
    let (_, q) = get_text(&wjw, &app, &format!("/api/v1/resources/{POP}/quality")).await;
    assert!(!q.contains("top_values") && !q.contains("\"profile\":true"), "{q}");
    // The public: no report, no history, no overdue list, no ticket list of others.
    let anon = new_client();
    for path in [
        format!("/api/v1/resources/{POP}/quality"),
        format!("/api/v1/resources/{POP}/quality/history"),
        format!("/api/v1/resources/{POP}/quality?version=0"),
    ] {
        let (s, body) = get_text(&anon, &app, &path).await;
        assert_eq!(s, 404, "{path}: {body}");
    }
    let r = anon.post(app.url(&format!("/api/v1/resources/{POP}/quality/profile"))).send().await.unwrap();
    assert!(matches!(r.status().as_u16(), 401 | 404), "{}", r.status());
    let (s, _) = get_text(&anon, &app, "/api/v1/tickets").await;
    assert_eq!(s, 401);
    let (s, overdue) = get_text(&anon, &app, "/api/v1/quality/overdue").await;
    assert!(s == 401 || !overdue.contains("101/000001"), "{s} {overdue}");
    // The department's quality page for the public leaves the register out.
    let (_, page) = get_text(&anon, &app, "/departments/gaj/quality").await;
    assert!(!page.contains("人口基础信息"), "{page}");
}

#[tokio::test]
async fn the_row_filter_pickers_read_distinct_values_only_for_the_provider() {
    let app = spawn_app().await;
    let gaj = app.login("gaj-steward").await;
    upload(&app, &gaj, POP, "", listing(Register::Population, 30, 0.0, 9)).await;
    let wjw = app.login("wjw-analyst").await;
    let r = wjw
        .post(app.url("/api/v1/requests"))
        .json(&json!({"resource_id": "101/000001", "fields": ["性别", "区县"], "purpose": "统计", "basis": "职责"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
    let id = r.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_string();
    let page = format!("/console/requests/{id}");
    // The provider's approval form offers the district values (read through the gate).
    let (s, html) = get_text(&gaj, &app, &page).await;
    assert_eq!(s, 200);
    assert!(html.contains("name=\"fv_"), "the provider gets the pickers: {html}");
    // The applicant sees its request but no value of the register it has not been granted.
    let (s, html) = get_text(&wjw, &app, &page).await;
    assert_eq!(s, 200);
    assert!(!html.contains("name=\"fv_"), "the applicant gets the provider's pickers: {html}");
    // Another department does not see the request at all.
    let (s, html) = get_text(&app.login("scjgj-steward").await, &app, &page).await;
    assert!(s == 404 || s == 403, "{s}");
    assert!(!html.contains("name=\"fv_"));
}

#[tokio::test]
async fn a_forged_host_header_cannot_put_markup_into_absolute_links() {
    let app = spawn_app().await;
    let scj = app.login("scjgj-steward").await;
    upload(&app, &scj, ENT, "", listing(Register::Enterprise, 5, 0.0, 1)).await;
    let res: Value =
        new_client().get(app.url(&format!("/api/v1/resources/{ENT}"))).send().await.unwrap().json().await.unwrap();
    let path = format!("/datasets/{}", res["slug"].as_str().unwrap());
    let forged = "evil.example\"><script>alert(1)</script>";
    let r = new_client().get(app.url(&path)).header("host", forged).send().await.unwrap();
    let status = r.status().as_u16();
    let html = r.text().await.unwrap();
    assert!(status == 400 || status == 200, "{status}");
    assert!(!html.contains("<script>alert(1)") && !html.contains("evil.example"), "{html}");
    // A well-formed host is used as is without `public_base_url` (the documented fallback).
    let html =
        new_client().get(app.url(&path)).header("host", "data.example.cn").send().await.unwrap().text().await.unwrap();
    assert!(html.replace("&#x2f;", "/").contains("http://data.example.cn/api/"), "{html}");
}

/// A resource of wjw's own with one identity-number item, for reference rules against 人口.
fn own_resource() -> Value {
    json!({
        "name": "核验表", "abstract": "用身份证号核对人口库", "provider": "wjw",
        "classification": {"class": "thematic", "theme": "health"},
        "format": {"category": "spreadsheet", "type": "csv"},
        "items": [{"name": "dm", "title": "代码", "key": true}, {"name": "sfzh", "title": "身份证号"}],
        "share": {"type": "unconditional", "method": "api"}, "open": {"type": "none"}, "update_cycle": "irregular"
    })
}

#[tokio::test]
async fn a_reference_rule_through_a_filtered_or_masked_grant_is_refused() {
    let app = spawn_app().await;
    let gaj = app.login("gaj-steward").await;
    upload(&app, &gaj, POP, "", listing(Register::Population, 20, 0.0, 4)).await;
    let wjw = app.login("wjw-steward").await;
    // Each grant lets wjw read the key only in part: counting its own identity numbers that
    // are not in the register would tell it about the rows or cells it may not see.
    for (extra, why) in [
        (json!({"row_filter": "区县 = '海陵区'", "masks": {"sfzh": "none"}}), "a row filter"),
        (json!({"masks": {"sfzh": "id_card"}}), "a mask"),
    ] {
        let mut grant = json!({"resource_id": "101/000001", "grantee": {"department": "wjw"}, "fields": ["sfzh"],
            "purpose": "核验身份证号"});
        for (k, v) in extra.as_object().unwrap() {
            grant[k] = v.clone();
        }
        let r = gaj.post(app.url("/api/v1/grants")).json(&grant).send().await.unwrap();
        assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
        let grant_id = r.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_string();
        let mut body = own_resource();
        body["quality_rules"] = json!([{"rule": "reference(sfzh, 101/000001, sfzh)", "severity": "warn"}]);
        let r = wjw.post(app.url("/api/v1/resources")).json(&body).send().await.unwrap();
        let e = assert_error(r, 400, "validation_failed").await;
        assert_eq!(e["error"]["details"]["fields"][0]["code"], "reference_not_readable", "{why}: {e}");
        let r = gaj.post(app.url(&format!("/api/v1/grants/{grant_id}/revoke"))).send().await.unwrap();
        assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    }
    // Whole and unmasked, it is accepted: the refusals above are about the grant, not the rule.
    let grant = json!({"resource_id": "101/000001", "grantee": {"department": "wjw"}, "fields": ["sfzh"],
        "masks": {"sfzh": "none"}, "purpose": "核验身份证号"});
    assert_eq!(gaj.post(app.url("/api/v1/grants")).json(&grant).send().await.unwrap().status(), 201);
    let mut body = own_resource();
    body["quality_rules"] = json!([{"rule": "reference(sfzh, 101/000001, sfzh)", "severity": "warn"}]);
    let r = wjw.post(app.url("/api/v1/resources")).json(&body).send().await.unwrap();
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
}

#[tokio::test]
async fn outsiders_neither_file_on_a_hidden_register_nor_list_another_departments_tickets() {
    let app = spawn_app().await;
    let gaj = app.login("gaj-steward").await;
    upload(&app, &gaj, POP, "", listing(Register::Population, 10, 0.0, 2)).await;
    // A citizen cannot tell 人口基础信息 exists by filing on it.
    let citizen = new_client();
    let r = citizen
        .post(app.url("/api/v1/auth/register"))
        .json(&json!({"email": "eve@example.cn", "password": "public-pass-1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
    let r = citizen
        .post(app.url("/api/v1/auth/login"))
        .json(&json!({"username": "eve@example.cn", "password": "public-pass-1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = citizen
        .post(app.url(&format!("/api/v1/resources/{POP}/tickets")))
        .json(&json!({"title": "试探", "description": "x"}))
        .send()
        .await
        .unwrap();
    assert_error(r, 404, "not_found").await;
    // scjgj reports on 人口; wjw asking for gaj's tickets gets none of it (only its own reports).
    let scj = app.login("scjgj-steward").await;
    let t =
        file_ticket(&app, &scj, POP, json!({"title": "户籍地址有误", "description": "门牌号", "record_key": "K-1"}))
            .await;
    let wjw = app.login("wjw-steward").await;
    let (s, list) = get_text(&wjw, &app, "/api/v1/tickets?department=gaj").await;
    assert_eq!(s, 200, "{list}");
    assert!(!list.contains(t["id"].as_str().unwrap()), "{list}");
    let (_, list) = get_text(&citizen, &app, "/api/v1/tickets").await;
    assert!(!list.contains(t["id"].as_str().unwrap()), "{list}");
    // The provider has it, with the reporter.
    let (_, list) = get_text(&gaj, &app, "/api/v1/tickets?department=gaj").await;
    assert!(list.contains(t["id"].as_str().unwrap()) && list.contains("scjgj-steward"), "{list}");
}

#[tokio::test]
async fn an_anonymous_reporters_contact_reaches_only_the_provider() {
    let app = spawn_app().await;
    let scj = app.login("scjgj-steward").await;
    upload(&app, &scj, ENT, "", listing(Register::Enterprise, 5, 0.0, 1)).await;
    let res: Value =
        new_client().get(app.url(&format!("/api/v1/resources/{ENT}"))).send().await.unwrap().json().await.unwrap();
    let slug = res["slug"].as_str().unwrap();
    let anon = new_client();
    let (_, html) = get_text(&anon, &app, &format!("/datasets/{slug}")).await;
    let form = html.split("id=\"feedback\"").nth(1).expect("the feedback form");
    let at = form.find("name=\"csrf\" value=\"").expect("a CSRF token") + "name=\"csrf\" value=\"".len();
    let token = &form[at..at + form[at..].find('"').unwrap()];
    const CONTACT: &str = "139-1234-5678";
    let r = anon
        .post(app.url(&format!("/datasets/{slug}/feedback")))
        .form(&[("csrf", token), ("body", "注册资本有误"), ("contact", CONTACT)])
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    // The public list, the ticket itself for another user, the quality page: no contact.
    let (_, list) = get_text(&new_client(), &app, &format!("/api/v1/resources/{ENT}/tickets")).await;
    let list: Value = serde_json::from_str(&list).unwrap();
    let id = list[0]["id"].as_str().expect("the report is a ticket").to_string();
    assert!(!list.to_string().contains(CONTACT), "{list}");
    for c in [new_client(), app.login("wjw-steward").await] {
        let (_, one) = get_text(&c, &app, &format!("/api/v1/tickets/{id}")).await;
        assert!(!one.contains(CONTACT) && one.contains("注册资本有误"), "{one}");
    }
    let (_, page) = get_text(&new_client(), &app, &format!("/datasets/{slug}/quality")).await;
    assert!(!page.contains(CONTACT));
    // The provider's steward can answer.
    let (_, one) = get_text(&scj, &app, &format!("/api/v1/tickets/{id}")).await;
    assert!(one.contains(CONTACT), "{one}");
}
