//! The applications registry (应用) and the evaluation's XLSX export: who may register what,
//! what anonymous callers see of it, the count on the evaluation, the workbook read back.

use crate::evaluation::{Fixture, body, fixture, resource};
use calamine::Reader;
use chrono::Utc;
use citydata_domain::evaluation::{INDICATORS, Period};
use citydata_testkit::{SpawnOptions, assert_error, new_client, spawn_app_with};
use serde_json::{Value, json};

#[tokio::test]
async fn applications_declare_only_resources_their_department_may_read() {
    let app = spawn_app_with(SpawnOptions { demo: false, accounts_only: true, ..Default::default() }).await;
    let gaj = app.login("gaj-steward").await;
    let wjw = app.login("wjw-steward").await;
    let analyst = app.login("wjw-analyst").await;
    let long_ago = Utc::now() - chrono::Duration::days(400);
    let g = resource(&app, &gaj, body("户籍登记", "gaj", "conditional", "none", "monthly"), long_ago).await;
    let w = resource(&app, &wjw, body("医疗机构名录", "wjw", "unconditional", "none", "monthly"), long_ago).await;
    let post = |c: reqwest::Client, v: Value| {
        let url = app.url("/api/v1/applications");
        async move { c.post(url).json(&v).send().await.unwrap() }
    };
    // A conditional resource without a grant: refused by name, nothing stored.
    let r = post(
        wjw.clone(),
        json!({"name": "健康码", "scenario": "防疫通行", "resources": [w.to_string(), g.to_string()]}),
    )
    .await;
    let e = assert_error(r, 400, "validation_failed").await;
    assert_eq!(e["error"]["details"]["fields"][0]["field"], "resources[1]", "{e}");
    assert_eq!(e["error"]["details"]["fields"][0]["code"], "not_granted");
    let r = post(wjw.clone(), json!({"name": "x", "scenario": "y", "resources": ["999/999999"]})).await;
    let e = assert_error(r, 400, "validation_failed").await;
    assert_eq!(e["error"]["details"]["fields"][0]["field"], "resources[0]");
    let r = post(
        wjw.clone(),
        json!({"name": "x", "scenario": "y", "url": "javascript:alert(1)", "resources": [w.to_string()]}),
    )
    .await;
    let e = assert_error(r, 400, "validation_failed").await;
    assert_eq!(e["error"]["details"]["fields"][0]["field"], "url");
    let r = post(wjw.clone(), json!({"name": "", "scenario": "y", "resources": []})).await;
    let e = assert_error(r, 400, "validation_failed").await;
    let fields: Vec<&str> =
        e["error"]["details"]["fields"].as_array().unwrap().iter().map(|f| f["field"].as_str().unwrap()).collect();
    assert_eq!(fields, ["name", "resources"]);
    // Only the department's stewards register its applications; anonymous callers nothing.
    let r = post(analyst.clone(), json!({"name": "x", "scenario": "y", "resources": [w.to_string()]})).await;
    assert_error(r, 403, "forbidden").await;
    let r = post(gaj.clone(), json!({"name": "x", "scenario": "y", "department": "wjw", "resources": [w.to_string()]}))
        .await;
    assert_error(r, 403, "forbidden").await;
    let r = post(new_client(), json!({"name": "x", "scenario": "y", "resources": [w.to_string()]})).await;
    assert_eq!(r.status(), 401);
    assert_eq!(app.store.list_applications().await.unwrap().len(), 0, "nothing half-written");

    let r = post(wjw.clone(), json!({"name": "健康码", "scenario": "防疫通行", "url": "https://jkm.example.gov.cn", "resources": [w.to_string()]})).await;
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
    // Listed for everyone, but a resource only to those who see it in the catalog: W is in the
    // sharing catalog, not the open one.
    let list: Value = analyst.get(app.url("/api/v1/applications")).send().await.unwrap().json().await.unwrap();
    assert_eq!(list[0]["resources"][0]["name"], "医疗机构名录");
    let public: Value = new_client().get(app.url("/api/v1/applications")).send().await.unwrap().json().await.unwrap();
    assert_eq!(public[0]["name"], "健康码");
    assert_eq!(public[0]["resources"], json!([]), "{public}");
    let r = new_client().get(app.url(&format!("/api/v1/applications?resource={w}"))).send().await.unwrap();
    assert_eq!(r.status(), 404, "the public cannot learn of a shared-only resource through it");
    let using: Value =
        analyst.get(app.url(&format!("/api/v1/applications?resource={w}"))).send().await.unwrap().json().await.unwrap();
    assert_eq!(using.as_array().unwrap().len(), 1);
    let none: Value =
        analyst.get(app.url(&format!("/api/v1/applications?resource={g}"))).send().await.unwrap().json().await.unwrap();
    assert_eq!(none, json!([]));
    // Counted for the provider of the resources it uses, and once for the city.
    let now = Period::quarter_of(Utc::now());
    let e: Value =
        analyst.get(app.url(&format!("/api/v1/evaluation?period={now}"))).send().await.unwrap().json().await.unwrap();
    let d = e["departments"].as_array().unwrap().iter().find(|d| d["code"] == "wjw").unwrap();
    assert_eq!(d["indicators"]["applications"]["value"], json!(1.0));
    assert_eq!(e["city"]["indicators"]["applications"], json!(1.0));
}

#[tokio::test]
async fn the_export_reads_back_with_every_sheet_and_the_scores() {
    let Fixture { app, a, .. } = fixture().await;
    let admin = app.login("admin").await;
    let r = admin.get(app.url(&format!("/api/v1/evaluation/export?period={a}&format=xlsx"))).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-disposition"].to_str().unwrap().contains(&format!("evaluation-{a}.xlsx")));
    let bytes = r.bytes().await.unwrap();
    let mut wb: calamine::Xlsx<_> = calamine::open_workbook_from_rs(std::io::Cursor::new(bytes.to_vec())).unwrap();
    let names = wb.sheet_names();
    assert_eq!(names.len(), INDICATORS.len() + 2);
    assert_eq!(names[0], "汇总");
    assert_eq!(names.last().unwrap(), "评估规则");
    assert!(names.iter().any(|n| n == "实际共享率"));
    let summary = wb.worksheet_range("汇总").unwrap();
    let rows: Vec<Vec<String>> = summary.rows().map(|r| r.iter().map(|c| c.to_string()).collect()).collect();
    assert_eq!(rows[0][..4], ["排名", "部门代码", "部门名称", "得分"]);
    assert_eq!(rows[1][..4], ["1", "scjgj", "泰州市市场监督管理局", "72.22"]);
    assert_eq!(rows[2][1..4], ["gaj", "泰州市公安局", "61.11"]);
    let share = wb.worksheet_range("实际共享率").unwrap();
    let gaj: Vec<String> = share.rows().find(|r| r[0] == "gaj").unwrap().iter().map(|c| c.to_string()).collect();
    assert_eq!(gaj[2..5], ["0.5", "1", "2"], "value, numerator, denominator");
    let rules = wb.worksheet_range("评估规则").unwrap();
    assert!(rules.rows().any(|r| r[0] == "effective_share_rate" && r[2] == 20.0));
}

#[tokio::test]
async fn a_resource_page_lists_the_applications_using_it() {
    let app = spawn_app_with(SpawnOptions { demo: false, accounts_only: true, ..Default::default() }).await;
    let scj = app.login("scjgj-steward").await;
    let long_ago = Utc::now() - chrono::Duration::days(400);
    let s =
        resource(&app, &scj, body("企业名录", "scjgj", "unconditional", "unconditional", "monthly"), long_ago).await;
    let slug = app.store.get_resource(s).await.unwrap().unwrap().content.slug.as_str().to_string();
    let r = scj
        .post(app.url("/api/v1/applications"))
        .json(&json!({"name": "一网通办", "scenario": "企业开办", "url": "https://ywtb.example.gov.cn", "resources": [s.to_string()]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let html =
        new_client().get(app.url(&format!("/datasets/{slug}?lang=zh"))).send().await.unwrap().text().await.unwrap();
    assert!(html.contains("使用该资源的应用") && html.contains("一网通办") && html.contains("企业开办"), "{html}");
}

#[tokio::test]
async fn a_citizen_sees_no_evaluation_sets_no_rules_and_registers_no_application() {
    let Fixture { app, a, .. } = fixture().await;
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
    // Who reads whose data, and the records behind it, are for departments and the center.
    for path in [
        format!("/api/v1/evaluation?period={a}"),
        format!("/api/v1/evaluation/departments/gaj?period={a}"),
        format!("/api/v1/evaluation/departments/gaj/records?period={a}&indicator=reads"),
        format!("/api/v1/evaluation/export?period={a}"),
    ] {
        let r = citizen.get(app.url(&path)).send().await.unwrap();
        assert_error(r, 403, "forbidden").await;
    }
    let (_, page) = {
        let r = citizen.get(app.url(&format!("/dashboard?period={a}"))).send().await.unwrap();
        (r.status(), r.text().await.unwrap())
    };
    assert!(!page.contains("部门间数据流向"), "no matrix for a citizen");
    let rules = json!({"weights": {"open_rate": 100}, "targets": {"open_rate": 1}});
    let r = citizen.put(app.url("/api/v1/evaluation/rules")).json(&rules).send().await.unwrap();
    assert_error(r, 403, "forbidden").await;
    let r = citizen
        .post(app.url("/api/v1/applications"))
        .json(&json!({"name": "x", "scenario": "y", "resources": ["101/000001"]}))
        .send()
        .await
        .unwrap();
    let e = assert_error(r, 400, "validation_failed").await;
    assert_eq!(e["error"]["details"]["fields"][0]["field"], "department");
    let r = citizen
        .post(app.url("/api/v1/applications"))
        .json(&json!({"name": "x", "scenario": "y", "department": "gaj", "resources": ["101/000001"]}))
        .send()
        .await
        .unwrap();
    assert_error(r, 403, "forbidden").await;
    assert_eq!(app.store.evaluation_rules(None).await.unwrap(), None, "no rules stored");
}
