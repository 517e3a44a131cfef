//! CKAN Action API and DCAT-AP: the shapes tools expect, and the same visibility rules.

use citydata_testkit::{new_client, spawn_app};
use serde_json::{Value, json};

async fn action(c: &reqwest::Client, url: String) -> (u16, Value) {
    let r = c.get(url).send().await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

#[tokio::test]
async fn ckanapi_style_calls_return_ckans_envelope() {
    let app = spawn_app().await;
    let anon = new_client();
    let (s, v) =
        action(&anon, app.url("/api/3/action/package_search?q=企业&rows=5&facet.field=[\"organization\",\"groups\"]"))
            .await;
    assert_eq!(s, 200);
    assert_eq!(v["success"], true);
    assert!(v["help"].as_str().unwrap().ends_with("/api/3/action/help_show?name=package_search"));
    let r = &v["result"];
    assert!(r["count"].as_u64().unwrap() >= 1);
    let pkg = r["results"].as_array().unwrap().iter().find(|p| p["title"] == "企业登记信息").expect("企业登记信息");
    assert_eq!(pkg["organization"]["name"], "scjgj");
    assert_eq!(pkg["organization"]["title"], "泰州市市场监督管理局");
    assert_eq!(pkg["groups"][0]["name"], "legal_entity");
    assert!(pkg["resources"].as_array().unwrap().iter().any(|r| r["format"] == "CSV"));
    let extras: Vec<&str> = pkg["extras"].as_array().unwrap().iter().map(|e| e["key"].as_str().unwrap()).collect();
    for k in ["resource_code", "share_type", "open_type", "update_cycle", "security_level"] {
        assert!(extras.contains(&k), "{k}");
    }
    assert!(
        r["search_facets"]["organization"]["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["name"] == "scjgj" && i["display_name"] == "泰州市市场监督管理局")
    );
    assert!(r["facets"]["groups"]["legal_entity"].as_u64().unwrap() >= 1);

    // POST with a JSON body, as ckanapi sends it.
    let v: Value = anon
        .post(app.url("/api/3/action/package_search"))
        .json(&json!({"fq": "organization:scjgj", "rows": 100}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(v["result"]["results"].as_array().unwrap().iter().all(|p| p["organization"]["name"] == "scjgj"));

    // package_show by slug, code or id.
    let slug = pkg["name"].as_str().unwrap();
    for key in [slug.to_string(), "102/000001".to_string(), pkg["id"].as_str().unwrap().to_string()] {
        let (s, v) =
            action(&anon, app.url(&format!("/api/3/action/package_show?id={}", key.replace('/', "%2F")))).await;
        assert_eq!(s, 200, "{key}");
        assert_eq!(v["result"]["title"], "企业登记信息");
    }
    let res_id = pkg["resources"][0]["id"].as_str().unwrap();
    let (s, v) = action(&anon, app.url(&format!("/api/3/action/resource_show?id={res_id}"))).await;
    assert_eq!(s, 200);
    assert_eq!(v["result"]["package_id"], pkg["id"]);

    let (s, v) = action(&anon, app.url("/api/3/action/organization_list?all_fields=true")).await;
    assert_eq!(s, 200);
    let gaj = v["result"].as_array().unwrap().iter().find(|o| o["name"] == "gaj").unwrap();
    assert_eq!(gaj["title"], "泰州市公安局");
    let (_, v) = action(&anon, app.url("/api/3/action/organization_list")).await;
    assert!(v["result"].as_array().unwrap().contains(&json!("wjw")));
    let (s, v) = action(&anon, app.url("/api/3/action/organization_show?id=scjgj&include_datasets=true")).await;
    assert_eq!(s, 200);
    assert!(v["result"]["package_count"].as_u64().unwrap() >= 1);
    let (_, v) = action(&anon, app.url("/api/3/action/group_list")).await;
    assert!(v["result"].as_array().unwrap().contains(&json!("health")));
    let (_, v) = action(&anon, app.url("/api/3/action/tag_list")).await;
    assert!(v["result"].as_array().unwrap().contains(&json!("企业")));
    let (_, v) = action(&anon, app.url("/api/3/action/status_show")).await;
    assert_eq!(v["result"]["ckan_version"], "2.10.0");
    let (_, v) = action(&anon, app.url("/api/3/action/help_show?name=package_search")).await;
    assert!(v["result"].as_str().unwrap().contains(":param q:"));
    let (_, v) = action(&anon, app.url("/api/3/action/package_list")).await;
    assert!(v["result"].as_array().unwrap().contains(&json!(slug)));
}

#[tokio::test]
async fn ckan_errors_have_ckans_shape_and_visibility_holds() {
    let app = spawn_app().await;
    let anon = new_client();
    let (s, v) = action(&anon, app.url("/api/3/action/package_show?id=101%2F000001")).await;
    assert_eq!(s, 404, "人口基础信息 is not open");
    assert_eq!(v["success"], false);
    assert_eq!(v["error"]["__type"], "Not Found Error");
    // With a token (CKAN's bare Authorization header), a government user sees it.
    let token = app.token("wjw-analyst").await;
    let v: Value = anon
        .get(app.url("/api/3/action/package_show?id=101%2F000001"))
        .header("Authorization", &token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["result"]["title"], "人口基础信息");
    // A token that is not valid is refused in CKAN's envelope, on both action paths.
    for path in ["/api/3/action/package_show?id=101%2F000001", "/api/action/package_list"] {
        let r = anon.get(app.url(path)).header("Authorization", "cd_not_a_token").send().await.unwrap();
        assert_eq!(r.status(), 401, "{path}");
        let v: Value = r.json().await.unwrap();
        assert_eq!(
            (&v["success"], &v["error"]["__type"], &v["error"]["code"]),
            (&json!(false), &json!("Authorization Error"), &json!("invalid_token")),
            "{path}: {v}"
        );
        assert!(v["help"].as_str().unwrap().starts_with("http"), "{v}");
    }
    let (_, v) = action(&anon, app.url("/api/3/action/package_search?q=人口基础信息")).await;
    assert!(!v.to_string().contains("\"人口基础信息\""));
    let (s, v) = action(&anon, app.url("/api/3/action/package_search?rows=5000")).await;
    assert_eq!(s, 409);
    assert_eq!(v["error"]["__type"], "Validation Error");
    assert!(v["error"]["rows"].is_array());
    let (s, v) = action(&anon, app.url("/api/3/action/package_search?fq=colour:red")).await;
    assert_eq!(s, 409);
    assert!(v["error"]["fq"].is_array());
    let (s, v) = action(&anon, app.url("/api/3/action/no_such_action")).await;
    assert_eq!(s, 400);
    assert_eq!(v["success"], false);
    let (s, _) = action(&anon, app.url("/api/3/action/package_show")).await;
    assert_eq!(s, 409);
    // Drafts are never datasets.
    let (_, v) = action(&anon, app.url("/api/3/action/package_list")).await;
    assert!(!v.to_string().contains("xue-wei"));
    let gov: Value = anon
        .get(app.url("/api/3/action/package_search?q=学位预警&rows=10"))
        .header("Authorization", &token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(gov["result"]["count"], 0, "another department's draft");
    // Harvesters page by modification time.
    let (s, v) = action(
        &anon,
        app.url("/api/3/action/package_search?fq=metadata_modified:[2000-01-01T00:00:00Z%20TO%20*]&rows=1000"),
    )
    .await;
    assert_eq!(s, 200);
    let (_, all) = action(&anon, app.url("/api/3/action/package_search?rows=1000")).await;
    assert_eq!(v["result"]["count"], all["result"]["count"]);
    let (_, none) =
        action(&anon, app.url("/api/3/action/package_search?fq=metadata_modified:[2999-01-01T00:00:00Z%20TO%20*]"))
            .await;
    assert_eq!(none["result"]["count"], 0);
}

/// Parse with a real Turtle parser; returns the number of triples.
fn parse_turtle(text: &str) -> usize {
    let mut n = 0;
    for t in oxttl::TurtleParser::new().for_slice(text) {
        t.unwrap_or_else(|e| panic!("invalid Turtle: {e}\n{text}"));
        n += 1;
    }
    n
}

#[tokio::test]
async fn dcat_catalog_parses_as_rdf_and_holds_only_the_open_catalog() {
    let app = spawn_app().await;
    let c = new_client();
    let r = c.get(app.url("/catalog.ttl")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-type"].to_str().unwrap().starts_with("text/turtle"));
    let ttl = r.text().await.unwrap();
    assert!(parse_turtle(&ttl) > 100);
    assert!(ttl.contains("dcat:Catalog") && ttl.contains("dcat:Dataset") && ttl.contains("dcat:downloadURL"));
    assert!(ttl.contains("企业登记信息"));
    assert!(ttl.contains("frequency/DAILY"));
    assert!(!ttl.contains("人口基础信息"), "not open");
    assert!(!ttl.contains("学位预警信息"), "a draft");
    let slug = {
        let v: Value = c.get(app.url("/api/v1/resources/102%2F000001")).send().await.unwrap().json().await.unwrap();
        v["slug"].as_str().unwrap().to_string()
    };
    let one = c.get(app.url(&format!("/dataset/{slug}.ttl"))).send().await.unwrap().text().await.unwrap();
    assert!(parse_turtle(&one) > 20);
    assert!(one.contains("\"102/000001\""));
    let r = c.get(app.url("/catalog.jsonld")).send().await.unwrap();
    assert!(r.headers()["content-type"].to_str().unwrap().starts_with("application/ld+json"));
    let doc: Value = r.json().await.unwrap();
    assert!(doc["@context"]["dcat"].is_string());
    assert!(
        doc["@graph"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n["@type"] == "dcat:Dataset" && n["dct:identifier"] == "102/000001")
    );
    let one: Value = c.get(app.url(&format!("/dataset/{slug}.jsonld"))).send().await.unwrap().json().await.unwrap();
    assert_eq!(one["@graph"][0]["dct:identifier"], "102/000001");
    assert_eq!(c.get(app.url("/dataset/ren-kou-ji-chu-xin-xi.ttl")).send().await.unwrap().status(), 404);
    assert_eq!(c.get(app.url("/catalog.ttl?page=0")).send().await.unwrap().status(), 400);
    let p2 = c.get(app.url("/catalog.ttl?page=2")).send().await.unwrap().text().await.unwrap();
    assert!(parse_turtle(&p2) > 5);
    assert!(!p2.contains("dcat:Dataset"), "fewer than 100 open datasets: page 2 is empty");
}
