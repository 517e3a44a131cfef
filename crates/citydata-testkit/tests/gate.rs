//! The one gate on the rows read path: grant required, narrowed scope, masks, revocation,
//! anonymous readers, and every read in the audit log.

use citydata_core::demo::generate::{Register, generate_listing};
use citydata_testkit::{TestApp, assert_error, new_client, spawn_app};
use serde_json::{Value, json};

async fn load(app: &TestApp) -> (String, String) {
    let gaj = app.login("gaj-steward").await;
    let mut pop = Vec::new();
    generate_listing(Register::Population, 600, 0.0, 5, false, &mut pop).unwrap();
    let pop = String::from_utf8(pop).unwrap();
    let r = gaj.post(app.url("/api/v1/resources/101%2F000001/data")).body(pop.clone()).send().await.unwrap();
    assert_eq!(r.status(), 201);
    let scj = app.login("scjgj-steward").await;
    let mut ent = Vec::new();
    generate_listing(Register::Enterprise, 50, 0.0, 6, false, &mut ent).unwrap();
    let ent = String::from_utf8(ent).unwrap();
    let r = scj.post(app.url("/api/v1/resources/102%2F000001/data")).body(ent.clone()).send().await.unwrap();
    assert_eq!(r.status(), 201);
    (pop, ent)
}

fn column(csv: &str, title: &str) -> Vec<String> {
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let i = header.iter().position(|h| *h == title).unwrap();
    lines.map(|l| l.split(',').nth(i).unwrap().to_string()).collect()
}

#[tokio::test]
async fn a_grant_opens_a_narrow_masked_window_and_revocation_closes_it() {
    let app = spawn_app().await;
    let (pop, _) = load(&app).await;
    let wjw = app.login("wjw-analyst").await;
    let rows_url = app.url("/api/v1/resources/101%2F000001/rows?limit=10000&count=exact");
    assert_error(wjw.get(&rows_url).send().await.unwrap(), 403, "grant_required").await;

    let gaj = app.login("gaj-steward").await;
    let g: Value = gaj
        .post(app.url("/api/v1/grants"))
        .json(&json!({
            "resource_id": "101/000001", "grantee": {"department": "wjw"},
            "fields": ["身份证号", "性别", "出生日期", "区县"], "row_filter": "区县 = '海陵区'",
            "purpose": "妇幼保健", "expires_at": "2099-01-01T00:00:00Z"
        }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let r = wjw.get(&rows_url).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let text = r.text().await.unwrap();
    let v: Value = serde_json::from_str(&text).unwrap();
    let names: Vec<&str> = v["fields"].as_array().unwrap().iter().map(|f| f["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["sfzh", "xb", "csrq", "qx"]);
    assert_eq!(v["fields"][0]["mask"], "id_card");
    let rows = v["rows"].as_array().unwrap();
    let districts = column(&pop, "区县");
    assert_eq!(rows.len(), districts.iter().filter(|d| *d == "海陵区").count());
    assert_eq!(v["total"].as_u64().unwrap() as usize, rows.len());
    assert!(rows.iter().all(|r| r["qx"] == "海陵区"));
    assert!(rows.iter().all(|r| r["sfzh"].as_str().unwrap().contains("********")));
    // No original identity number, name or mobile appears anywhere in the answer.
    for (title, values) in
        [("身份证号", column(&pop, "身份证号")), ("姓名", column(&pop, "姓名")), ("手机号", column(&pop, "手机号"))]
    {
        for value in values {
            assert!(!text.contains(&value), "{title} {value} leaked");
        }
    }
    // The caller's filter narrows further but cannot widen, nor reach masked or ungranted items.
    let r: Value = wjw
        .get(app.url("/api/v1/resources/101%2F000001/rows?filter=性别%20=%20'女'&fields=性别,区县"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(r["rows"].as_array().unwrap().iter().all(|x| x["xb"] == "女" && x["qx"] == "海陵区"));
    assert_eq!(r["fields"].as_array().unwrap().len(), 2);
    assert_error(
        wjw.get(app.url("/api/v1/resources/101%2F000001/rows?filter=身份证号%20=%20'1'")).send().await.unwrap(),
        400,
        "validation_failed",
    )
    .await;
    assert_error(
        wjw.get(app.url("/api/v1/resources/101%2F000001/rows?fields=姓名")).send().await.unwrap(),
        400,
        "validation_failed",
    )
    .await;
    // Paging.
    let p1: Value = wjw
        .get(app.url("/api/v1/resources/101%2F000001/rows?limit=5&sort=csrq"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let cursor = p1["next_cursor"].as_str().unwrap();
    let p2: Value = wjw
        .get(app.url(&format!("/api/v1/resources/101%2F000001/rows?limit=5&sort=csrq&cursor={cursor}")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(p2["rows"].as_array().unwrap().len(), 5);
    assert_ne!(p1["rows"][0], p2["rows"][0]);

    // Revocation closes it at once.
    let id = g["id"].as_str().unwrap();
    assert_eq!(gaj.post(app.url(&format!("/api/v1/grants/{id}/revoke"))).send().await.unwrap().status(), 200);
    assert_error(wjw.get(&rows_url).send().await.unwrap(), 403, "grant_revoked").await;

    // The provider reads everything, unmasked.
    let v: Value =
        gaj.get(app.url("/api/v1/resources/101%2F000001/rows?limit=1")).send().await.unwrap().json().await.unwrap();
    assert_eq!(v["fields"].as_array().unwrap().len(), 12);
    assert!(v["fields"].as_array().unwrap().iter().all(|f| f["mask"].is_null()));

    // Every read is audited with its row count; refusals too.
    let admin = app.login("admin").await;
    let page: Value = admin
        .get(app.url("/api/v1/audit?action=data.read_rows&actor=wjw-analyst&per_page=100"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let entries = page["entries"].as_array().unwrap();
    assert!(entries.iter().any(|e| e["outcome"] == "denied" && e["details"]["decision"] == "grant_required"));
    assert!(entries.iter().any(|e| e["outcome"] == "denied" && e["details"]["decision"] == "grant_revoked"));
    assert!(
        entries.iter().any(|e| e["outcome"] == "success" && e["details"]["rows"].as_u64() == Some(rows.len() as u64))
    );
}

#[tokio::test]
async fn anonymous_readers_get_open_data_masked_and_nothing_else() {
    let app = spawn_app().await;
    let (_, ent) = load(&app).await;
    let anon = new_client();
    let r = anon.get(app.url("/api/v1/resources/102%2F000001/rows?limit=1000")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let text = r.text().await.unwrap();
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["rows"].as_array().unwrap().len(), 50);
    let rep = v["fields"].as_array().unwrap().iter().find(|f| f["name"] == "fddbr").unwrap();
    assert_eq!(rep["mask"], "chinese_name");
    for name in column(&ent, "法定代表人") {
        assert!(!text.contains(&format!("\"{name}\"")), "{name} leaked");
    }
    assert!(v["rows"][0]["fddbr"].as_str().unwrap().ends_with('*'));
    // 人口基础信息 is not even in the open catalog.
    assert_error(anon.get(app.url("/api/v1/resources/101%2F000001/rows")).send().await.unwrap(), 404, "not_found")
        .await;
    // Time travel reads an older version; an unknown one is 404.
    let v: Value = anon
        .get(app.url("/api/v1/resources/102%2F000001/rows?version=0&limit=1"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["rows"].as_array().unwrap().len(), 1);
    let r = anon.get(app.url("/api/v1/resources/102%2F000001/rows?version=99")).send().await.unwrap();
    assert_error(r, 404, "not_found").await;
}
