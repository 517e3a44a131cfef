//! Catalog spreadsheets: export → import into a fresh instance round-trips; bad files are
//! refused whole with every problem named by sheet, row and column.

use citydata_testkit::{SpawnOptions, TestApp, assert_error, new_client, spawn_app, spawn_app_with};
use serde_json::Value;

async fn export(app: &TestApp, c: &reqwest::Client, format: &str) -> Vec<u8> {
    let r = c.get(app.url(&format!("/api/v1/catalog/export?format={format}"))).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let cd = r.headers()["content-disposition"].to_str().unwrap().to_string();
    assert!(cd.contains(&format!("catalog.{format}")) && cd.contains("filename*=UTF-8''"), "{cd}");
    r.bytes().await.unwrap().to_vec()
}

async fn import(app: &TestApp, c: &reqwest::Client, body: Vec<u8>, query: &str) -> reqwest::Response {
    c.post(app.url(&format!("/api/v1/catalog/import{query}"))).body(body).send().await.unwrap()
}

async fn total(app: &TestApp, c: &reqwest::Client) -> u64 {
    let v: Value = c.get(app.url("/api/v1/resources?per_page=1")).send().await.unwrap().json().await.unwrap();
    v["total"].as_u64().unwrap()
}

#[tokio::test]
async fn export_then_import_into_a_fresh_instance_gives_the_same_catalog() {
    let a = spawn_app().await;
    let admin_a = a.login("admin").await;
    // Quality rules travel in the 质量规则 column (one a line, severity first).
    let rules = serde_json::json!([
        {"rule": "not_null(xm)", "severity": "info"},
        {"rule": "regex(xm, a,b; c)", "severity": "warn"},
        {"rule": "reference(sfzh, 101/000001, sfzh)", "severity": "reject"}
    ]);
    let gaj = a.login("gaj-steward").await;
    let r = gaj
        .patch(a.url("/api/v1/resources/101%2F000001"))
        .json(&serde_json::json!({"quality_rules": rules}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let xlsx = export(&a, &admin_a, "xlsx").await;
    assert!(xlsx.starts_with(b"PK"), "a zip container");
    let csv_a = String::from_utf8(export(&a, &admin_a, "csv").await).unwrap();
    assert!(csv_a.starts_with('\u{feff}'), "a BOM so that Excel reads UTF-8");
    assert!(csv_a.contains("信息资源代码") && csv_a.contains("人口基础信息") && csv_a.contains("有条件共享"));

    let b = spawn_app_with(SpawnOptions { demo: false, accounts_only: true, ..Default::default() }).await;
    let admin_b = b.login("admin").await;
    assert_eq!(total(&b, &admin_b).await, 0);
    let r = import(&b, &admin_b, xlsx, "").await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let report: Value = r.json().await.unwrap();
    assert_eq!(report["created"].as_u64(), Some(total(&a, &admin_a).await));
    assert_eq!(report["issues"], serde_json::json!([]));

    let csv_b = String::from_utf8(export(&b, &admin_b, "csv").await).unwrap();
    assert_eq!(csv_a, csv_b, "the same catalog, cell for cell");
    let pop: Value = admin_b.get(b.url("/api/v1/resources/101%2F000001")).send().await.unwrap().json().await.unwrap();
    assert_eq!(pop["quality_rules"], rules);
    // States and visibility came across: anonymous sees the same open catalog in both.
    assert_eq!(total(&a, &new_client()).await, total(&b, &new_client()).await);

    // Importing the same file again updates in place and changes nothing.
    let r = import(&b, &admin_b, csv_b.clone().into_bytes(), "?format=csv").await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let report: Value = r.json().await.unwrap();
    assert_eq!(report["created"], 0);
    assert_eq!(String::from_utf8(export(&b, &admin_b, "csv").await).unwrap(), csv_b);
}

const HEADER: &str = "信息资源代码,信息资源名称,信息资源摘要,资源提供方代码,资源分类,主题分类,资源格式分类,共享类型,共享条件,开放类型,更新周期,信息项名称,信息项中文名称,信息项数据类型,信息项校验规则";

#[tokio::test]
async fn a_bad_file_imports_nothing_and_names_each_problem() {
    let app = spawn_app_with(SpawnOptions { demo: false, accounts_only: true, ..Default::default() }).await;
    let steward = app.login("wjw-steward").await;
    let csv = format!(
        "{HEADER}\n\
         201/000001,医疗机构,全市医疗机构,wjw,主题,健康医疗,电子表格,无条件共享,,无条件开放,每季度,jgdm,机构代码,字符型,\n\
         201/000001,医疗机构,全市医疗机构,wjw,主题,健康医疗,电子表格,无条件共享,,无条件开放,每季度,cws,床位数,整数型,range:0..10000\n\
         201/000002,接种点,接种门诊,wjw,主题,健康医疗,电子表格,随便共享,,无条件开放,每月,mc,名称,字符型,\n\
         201/000003,诊所,诊所名录,wjw,主题,健康医疗,电子表格,无条件共享,,无条件开放,每月,dh,电话,字符型,phone\n\
         101/000009,户籍,户籍,gaj,基础,人口,数据库,无条件共享,,不予开放,每日,sfzh,身份证号,字符型,id_card\n"
    );
    let r = import(&app, &steward, csv.clone().into_bytes(), "").await;
    let body = assert_error(r, 400, "validation_failed").await;
    let issues = body["error"]["details"]["issues"].as_array().unwrap().clone();
    let at = |row: u64, col: &str| issues.iter().any(|i| i["row"] == row && i["column"] == col);
    assert!(at(4, "共享类型"), "{issues:?}");
    assert!(at(5, "信息项校验规则"), "{issues:?}");
    assert!(at(6, "资源提供方代码"), "a wjw steward may not import gaj's resources: {issues:?}");
    assert!(issues.iter().all(|i| i["sheet"] == "CSV"));
    assert_eq!(total(&app, &steward).await, 0, "nothing was imported");

    // --partial imports the good resource only.
    let r = import(&app, &steward, csv.into_bytes(), "?partial=true").await;
    assert_eq!(r.status(), 200);
    let report: Value = r.json().await.unwrap();
    assert_eq!(report["created"], 1);
    assert_eq!(report["skipped"], 3);
    let v: Value = steward.get(app.url("/api/v1/resources/201%2F000001")).send().await.unwrap().json().await.unwrap();
    assert_eq!(v["items"].as_array().unwrap().len(), 2);
    assert_eq!(v["state"], "draft", "no state column: drafts");
}

#[tokio::test]
async fn unreadable_files_are_refused() {
    let app = spawn_app_with(SpawnOptions { demo: false, accounts_only: true, ..Default::default() }).await;
    let admin = app.login("admin").await;
    assert_error(import(&app, &admin, vec![], "").await, 400, "validation_failed").await;
    let body =
        assert_error(import(&app, &admin, b"PK\x03\x04garbage".to_vec(), "").await, 400, "validation_failed").await;
    assert!(body["error"]["message"].as_str().unwrap().contains("xlsx"), "{body}");
    let body = assert_error(import(&app, &admin, "a,b\n1,2\n".into(), "").await, 400, "validation_failed").await;
    assert!(body["error"]["message"].as_str().unwrap().contains("信息资源代码"), "missing columns are named: {body}");
    assert_error(import(&app, &admin, vec![1], "?format=pdf").await, 400, "validation_failed").await;
    assert_error(
        new_client().post(app.url("/api/v1/catalog/import")).body("x").send().await.unwrap(),
        401,
        "unauthenticated",
    )
    .await;
}
