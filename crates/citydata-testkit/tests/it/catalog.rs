//! The catalog over HTTP: lifecycle, revisions and every visibility rule, through the REST
//! list, one-resource reads, search facets.

use citydata_testkit::{TestApp, assert_error, new_client, spawn_app};
use serde_json::{Value, json};
use std::collections::BTreeMap;

fn air_quality() -> Value {
    json!({
        "name": "泰州市PM2.5小时浓度",
        "abstract": "各监测站点 PM2.5 小时平均浓度",
        "provider": "wjw",
        "classification": {"class": "thematic", "theme": "environment"},
        "format": {"category": "spreadsheet", "type": "csv"},
        "items": [
            {"name": "station", "title": "站点", "key": true},
            {"name": "hour", "title": "时间", "data_type": "datetime", "key": true},
            {"name": "pm25", "title": "PM2.5", "data_type": "decimal", "unit": "μg/m³", "validator": "range:0..1000"}
        ],
        "share": {"type": "unconditional", "method": "file"},
        "open": {"type": "unconditional"},
        "update_cycle": "realtime",
        "tags": ["空气", "PM2.5"],
        "regions": ["321202"]
    })
}

async fn create(app: &TestApp, c: &reqwest::Client, body: &Value) -> Value {
    let r = c.post(app.url("/api/v1/resources")).json(body).send().await.unwrap();
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
    r.json().await.unwrap()
}

async fn get_status(c: &reqwest::Client, url: &str) -> u16 {
    c.get(url).send().await.unwrap().status().as_u16()
}

async fn list_names(c: &reqwest::Client, url: &str) -> Vec<String> {
    let v: Value = c.get(url).send().await.unwrap().json().await.unwrap();
    v["items"].as_array().unwrap().iter().map(|r| r["name"].as_str().unwrap().to_string()).collect()
}

#[tokio::test]
async fn drafts_are_seen_only_by_the_provider_until_published() {
    let app = spawn_app().await;
    let steward = app.login("wjw-steward").await;
    let analyst_same_dept = app.login("wjw-analyst").await;
    let other_dept = app.login("gaj-steward").await;
    let anon = new_client();
    let r = create(&app, &steward, &air_quality()).await;
    let id = r["id"].as_str().unwrap().to_string();
    assert_eq!(r["state"], "draft");
    assert_eq!(r["code"], "203/000004", "the next sequence under 203 (thematic, environment)");
    assert_eq!(r["labels"]["theme"], "生态环境");
    assert_eq!(r["labels"]["provider"], "泰州市卫生健康委员会");
    let one = app.url(&format!("/api/v1/resources/{id}"));
    let list = app.url("/api/v1/resources?per_page=1000");
    let search = app.url("/api/v1/search?q=PM2.5小时浓度");

    // Draft: the provider department sees it; nobody else, anywhere.
    assert_eq!(get_status(&steward, &one).await, 200);
    assert_eq!(get_status(&analyst_same_dept, &one).await, 200);
    assert_eq!(get_status(&other_dept, &one).await, 404);
    assert_eq!(get_status(&anon, &one).await, 404);
    assert!(list_names(&steward, &list).await.contains(&"泰州市PM2.5小时浓度".to_string()));
    for c in [&other_dept, &anon] {
        assert!(!list_names(c, &list).await.contains(&"泰州市PM2.5小时浓度".to_string()));
        let s: Value = c.get(&search).send().await.unwrap().json().await.unwrap();
        assert!(!s.to_string().contains("PM2.5小时浓度"), "draft leaked through search: {s}");
    }

    // Published: everyone (it is open unconditionally).
    let r = steward.post(app.url(&format!("/api/v1/resources/{id}/publish"))).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let published: Value = r.json().await.unwrap();
    assert_eq!(published["state"], "published");
    assert!(published["publish_date"].is_string());
    for c in [&other_dept, &anon] {
        assert_eq!(get_status(c, &one).await, 200);
        let s: Value = c.get(&search).send().await.unwrap().json().await.unwrap();
        assert_eq!(s["hits"][0]["id"], id.as_str(), "search follows the change at once: {s}");
    }
    // Found by code and by slug too.
    let by_code = app.url("/api/v1/resources/203%2F000004");
    assert_eq!(get_status(&anon, &by_code).await, 200);
    let slug = published["slug"].as_str().unwrap();
    assert_eq!(get_status(&anon, &app.url(&format!("/api/v1/resources/{slug}"))).await, 200);
    let v: Value = anon.get(app.url("/api/v1/resources?code=203/000004")).send().await.unwrap().json().await.unwrap();
    assert_eq!(v["total"], 1);

    // Withdrawn: back to the provider only; can be republished; cannot be deleted.
    assert_eq!(steward.post(app.url(&format!("/api/v1/resources/{id}/withdraw"))).send().await.unwrap().status(), 200);
    assert_eq!(get_status(&other_dept, &one).await, 404);
    assert_eq!(get_status(&anon, &one).await, 404);
    assert_error(steward.delete(&one).send().await.unwrap(), 409, "conflict").await;
    assert_error(
        steward.post(app.url(&format!("/api/v1/resources/{id}/withdraw"))).send().await.unwrap(),
        409,
        "conflict",
    )
    .await;
    assert_eq!(steward.post(app.url(&format!("/api/v1/resources/{id}/publish"))).send().await.unwrap().status(), 200);
    assert_eq!(get_status(&anon, &one).await, 200);
}

#[tokio::test]
async fn anonymous_callers_see_the_open_catalog_and_government_users_the_sharing_catalog() {
    let app = spawn_app().await;
    let anon = new_client();
    let gov = app.login("wjw-analyst").await;
    let anon_names = list_names(&anon, &app.url("/api/v1/resources?per_page=1000")).await;
    let gov_names = list_names(&gov, &app.url("/api/v1/resources?per_page=1000")).await;
    assert!(anon_names.contains(&"企业登记信息".to_string()));
    assert!(!anon_names.contains(&"人口基础信息".to_string()), "open type none is not in the open catalog");
    assert!(gov_names.contains(&"人口基础信息".to_string()), "the sharing catalog has every published resource");
    assert!(!gov_names.contains(&"学位预警信息".to_string()), "another department's draft");
    assert!(gov_names.contains(&"死亡医学证明信息".to_string()), "one's own department's draft");
    // The population resource is exactly as the demo describes it.
    let v: Value = gov.get(app.url("/api/v1/resources?code=101/000001")).send().await.unwrap().json().await.unwrap();
    let r = &v["items"][0];
    assert_eq!(r["name"], "人口基础信息");
    assert_eq!(r["provider"], "gaj");
    assert_eq!(r["share"]["type"], "conditional");
    assert_eq!(r["open"]["type"], "none");
    assert_eq!(r["security_level"], "general_3");
    let titles: Vec<&str> = r["items"].as_array().unwrap().iter().map(|i| i["title"].as_str().unwrap()).collect();
    assert_eq!(
        titles,
        [
            "身份证号",
            "姓名",
            "性别",
            "出生日期",
            "民族",
            "行政区划代码",
            "区县",
            "户籍地址",
            "手机号",
            "婚姻状况",
            "文化程度",
            "更新时间"
        ]
    );
    assert_eq!(r["items"][0]["key"], true);
    assert_eq!(r["items"][0]["validator"], "id_card");
    assert_eq!(r["items"][0]["sensitivity"], "sensitive_personal");
    assert_eq!(r["items"][8]["validator"], "mobile");
    // Filters.
    let v: Value = anon
        .get(app.url("/api/v1/resources?theme=environment&open=unconditional"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(v["items"].as_array().unwrap().iter().all(|r| r["classification"]["theme"] == "environment"));
    let v: Value = gov
        .get(app.url("/api/v1/resources?provider=gaj&share=conditional"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(v["total"].as_u64().unwrap() >= 2);
    let v: Value = gov.get(app.url("/api/v1/resources?region=321283")).send().await.unwrap().json().await.unwrap();
    assert_eq!(v["total"], 1, "only the population register lists 泰兴市");
}

#[tokio::test]
async fn search_finds_the_population_register_for_government_users_only_and_facets_agree_with_lists() {
    let app = spawn_app().await;
    let gov = app.login("wjw-analyst").await;
    let s: Value = gov.get(app.url("/api/v1/search?q=人口")).send().await.unwrap().json().await.unwrap();
    let names: Vec<&str> = s["hits"].as_array().unwrap().iter().map(|h| h["name"].as_str().unwrap()).collect();
    assert!(names.contains(&"人口基础信息"), "{names:?}");
    let s: Value = new_client().get(app.url("/api/v1/search?q=人口")).send().await.unwrap().json().await.unwrap();
    assert!(!s.to_string().contains("人口基础信息"));

    // Facet counts over everything visible equal the list totals for each value.
    for (client, who) in [(&gov, "government"), (&new_client(), "anonymous")] {
        let s: Value = client.get(app.url("/api/v1/search?per_page=1")).send().await.unwrap().json().await.unwrap();
        let list: Value =
            client.get(app.url("/api/v1/resources?per_page=1")).send().await.unwrap().json().await.unwrap();
        assert_eq!(s["total"], list["total"], "{who}");
        for (dim, param) in [
            ("theme", "theme"),
            ("provider", "provider"),
            ("share", "share"),
            ("open", "open"),
            ("cycle", "cycle"),
            ("region", "region"),
        ] {
            let counts: BTreeMap<String, u64> = s["facets"][dim]
                .as_array()
                .unwrap()
                .iter()
                .map(|f| (f["value"].as_str().unwrap().to_string(), f["count"].as_u64().unwrap()))
                .collect();
            assert!(!counts.is_empty(), "{who} {dim}");
            for (value, count) in counts {
                let l: Value = client
                    .get(app.url(&format!("/api/v1/resources?{param}={value}&per_page=1")))
                    .send()
                    .await
                    .unwrap()
                    .json()
                    .await
                    .unwrap();
                assert_eq!(l["total"].as_u64().unwrap(), count, "{who}: {dim}={value}");
            }
        }
        let theme = s["facets"]["theme"][0]["label"].as_str().unwrap();
        assert!(!theme.is_ascii(), "facets carry Chinese labels: {theme}");
    }
    // Filtering by a facet narrows the hits to it.
    let s: Value = gov.get(app.url("/api/v1/search?q=信息&provider=gaj")).send().await.unwrap().json().await.unwrap();
    assert!(s["total"].as_u64().unwrap() >= 1);
    assert!(s["hits"].as_array().unwrap().iter().all(|h| h["provider"] == "gaj"));
    assert_error(gov.get(app.url("/api/v1/search?sort=sideways")).send().await.unwrap(), 400, "validation_failed")
        .await;
}

#[tokio::test]
async fn only_the_provider_edits_and_every_change_is_a_revision() {
    let app = spawn_app().await;
    let steward = app.login("wjw-steward").await;
    let r = create(&app, &steward, &air_quality()).await;
    let id = r["id"].as_str().unwrap();
    let url = app.url(&format!("/api/v1/resources/{id}"));

    // Others cannot create for wjw, nor edit it.
    let gaj = app.login("gaj-steward").await;
    assert_error(gaj.post(app.url("/api/v1/resources")).json(&air_quality()).send().await.unwrap(), 403, "forbidden")
        .await;
    let analyst = app.login("wjw-analyst").await;
    assert_error(analyst.patch(&url).json(&json!({"name": "x"})).send().await.unwrap(), 403, "forbidden").await;
    assert_error(new_client().patch(&url).json(&json!({"name": "x"})).send().await.unwrap(), 401, "unauthenticated")
        .await;

    let r = steward
        .patch(&url)
        .json(&json!({"name": "泰州市PM2.5浓度（小时）", "tags": ["空气"], "contact": "0523-1234567"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["revision"], 2);
    assert_eq!(v["tags"], json!(["空气"]));
    assert_eq!(v["items"].as_array().unwrap().len(), 3, "untouched elements stay");
    steward.post(app.url(&format!("/api/v1/resources/{id}/publish"))).send().await.unwrap();

    let revs: Value =
        steward.get(app.url(&format!("/api/v1/resources/{id}/revisions"))).send().await.unwrap().json().await.unwrap();
    let revs = revs.as_array().unwrap();
    assert_eq!(revs.len(), 3);
    assert_eq!(revs[0]["action"], "create");
    assert_eq!(revs[1]["actor"], "wjw-steward");
    let changed: Vec<&str> =
        revs[1]["changes"].as_array().unwrap().iter().map(|c| c["field"].as_str().unwrap()).collect();
    assert_eq!(changed, ["contact", "name", "tags"]);
    assert_eq!(revs[1]["changes"][1]["before"], "泰州市PM2.5小时浓度");
    assert_eq!(revs[2]["action"], "publish");
    // Revisions are for government users.
    assert_eq!(get_status(&new_client(), &app.url(&format!("/api/v1/resources/{id}/revisions"))).await, 404);

    // Published resources keep their code, slug and provider.
    let body = assert_error(
        steward.patch(&url).json(&json!({"code": "203/000099", "provider": "gaj"})).send().await.unwrap(),
        400,
        "validation_failed",
    )
    .await;
    let fields: Vec<&str> =
        body["error"]["details"]["fields"].as_array().unwrap().iter().map(|f| f["field"].as_str().unwrap()).collect();
    assert_eq!(fields, ["provider", "code"]);
    // Bad patches name the field.
    let body = assert_error(
        steward.patch(&url).json(&json!({"update_cycle": "hourly"})).send().await.unwrap(),
        400,
        "validation_failed",
    )
    .await;
    assert_eq!(body["error"]["details"]["fields"][0]["field"], "update_cycle");
    let body = assert_error(
        steward.patch(&url).json(&json!({"colour": "red"})).send().await.unwrap(),
        400,
        "validation_failed",
    )
    .await;
    assert!(body["error"]["message"].as_str().unwrap().contains("colour"));
    // Removing a required element with null is refused.
    let body = assert_error(
        steward.patch(&url).json(&json!({"abstract": null})).send().await.unwrap(),
        400,
        "validation_failed",
    )
    .await;
    assert_eq!(body["error"]["details"]["fields"][0]["field"], "abstract");
}

#[tokio::test]
async fn creation_rules_are_enforced_with_field_errors() {
    let app = spawn_app().await;
    let steward = app.login("wjw-steward").await;
    let mut b = air_quality();
    b["security_level"] = json!("core");
    let body = assert_error(
        steward.post(app.url("/api/v1/resources")).json(&b).send().await.unwrap(),
        400,
        "validation_failed",
    )
    .await;
    assert_eq!(body["error"]["details"]["fields"][0]["code"], "cannot_open_important_data");

    let mut b = air_quality();
    b["items"][0]["sensitivity"] = json!("sensitive_personal");
    let body = assert_error(
        steward.post(app.url("/api/v1/resources")).json(&b).send().await.unwrap(),
        400,
        "validation_failed",
    )
    .await;
    assert_eq!(body["error"]["details"]["fields"][0]["field"], "items[0].public");
    b["items"][0]["public"] = json!("excluded");
    assert_eq!(steward.post(app.url("/api/v1/resources")).json(&b).send().await.unwrap().status(), 201);

    let mut b = air_quality();
    b["classification"]["theme"] = json!("astrology");
    b["regions"] = json!(["999999"]);
    b["related"] = json!(["203/999999"]);
    let body = assert_error(
        steward.post(app.url("/api/v1/resources")).json(&b).send().await.unwrap(),
        400,
        "validation_failed",
    )
    .await;
    let fields: Vec<&str> =
        body["error"]["details"]["fields"].as_array().unwrap().iter().map(|f| f["field"].as_str().unwrap()).collect();
    assert_eq!(fields, ["classification.theme", "regions[0]"]);

    let mut b = air_quality();
    b["related"] = json!(["203/999999"]);
    let body = assert_error(
        steward.post(app.url("/api/v1/resources")).json(&b).send().await.unwrap(),
        400,
        "validation_failed",
    )
    .await;
    assert_eq!(body["error"]["details"]["fields"][0]["field"], "related[0]");

    let mut b = air_quality();
    b["code"] = json!("101/000001");
    let body = assert_error(
        steward.post(app.url("/api/v1/resources")).json(&b).send().await.unwrap(),
        400,
        "validation_failed",
    )
    .await;
    assert_eq!(body["error"]["details"]["fields"][0]["code"], "code_classification_mismatch");
    b["code"] = json!("203/000001");
    assert_error(steward.post(app.url("/api/v1/resources")).json(&b).send().await.unwrap(), 409, "conflict").await;

    // Only drafts can be deleted, by the provider.
    let r = create(&app, &steward, &air_quality()).await;
    let url = app.url(&format!("/api/v1/resources/{}", r["id"].as_str().unwrap()));
    assert_error(app.login("gaj-steward").await.delete(&url).send().await.unwrap(), 404, "not_found").await;
    assert_eq!(steward.delete(&url).send().await.unwrap().status(), 204);
    assert_eq!(get_status(&steward, &url).await, 404);
}

#[tokio::test]
async fn themes_are_listed() {
    let app = spawn_app().await;
    let v: Value = new_client().get(app.url("/api/v1/themes")).send().await.unwrap().json().await.unwrap();
    let names: Vec<&str> = v.as_array().unwrap().iter().map(|t| t["name"].as_str().unwrap()).collect();
    for n in [
        "人口",
        "法人",
        "自然资源和空间地理",
        "社会信用",
        "电子证照",
        "健康医疗",
        "金融",
        "生态环境",
        "旅游",
        "交通运输",
        "市场监管",
        "人社",
        "教育",
    ] {
        assert!(names.contains(&n), "{n}");
    }
}

/// A change written by another process (another node, or the command line) reaches this
/// node's search index through the catalog change log.
#[tokio::test]
async fn changes_from_another_process_reach_the_search_index() {
    let app = spawn_app().await;
    let store = citydata_server::open_store(&app.database_url).await.unwrap();
    let other_node = citydata_core::Core::new(store, citydata_core::CoreConfig::default());
    let operator = citydata_core::auth::operator("cli");
    let meta = citydata_core::RequestMeta::default();
    let input: citydata_domain::resource::ResourceInput = serde_json::from_value(air_quality()).unwrap();
    let r = other_node.create_resource(&meta, &operator, &input).await.unwrap();
    other_node.publish_resource(&meta, &operator, &r.id.to_string()).await.unwrap();
    let anon = new_client();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let s: Value = anon.get(app.url("/api/v1/search?q=PM2.5小时浓度")).send().await.unwrap().json().await.unwrap();
        if s["total"] == 1 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the index never caught up: {s}");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}
