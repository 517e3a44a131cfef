//! Catalog harvest (#18): a second citydata instance is the CKAN site. Its open catalog is
//! harvested into the first; then an edit and a withdrawal on the source propagate, a repeated
//! run duplicates nothing, and a source that is not a CKAN site fails with nothing changed.

use crate::sources::finished;
use citydata_testkit::{SpawnOptions, TestApp, assert_error, new_client, spawn_app, spawn_app_with};
use serde_json::{Value, json};

async fn ckan_count(app: &TestApp) -> u64 {
    let v: Value =
        new_client().get(app.url("/api/3/action/package_search?rows=0")).send().await.unwrap().json().await.unwrap();
    v["result"]["count"].as_u64().unwrap()
}

async fn run(app: &TestApp, c: &reqwest::Client, source: &str) -> Value {
    let r = c.post(app.url(&format!("/api/v1/sources/{source}/run"))).send().await.unwrap();
    assert_eq!(r.status(), 202, "{}", r.text().await.unwrap());
    let v: Value = r.json().await.unwrap();
    finished(app, c, source, v["run_id"].as_str().unwrap()).await
}

/// The local entry harvested from the remote package `id`.
async fn local_of(app: &TestApp, c: &reqwest::Client, remote_id: &str) -> Option<Value> {
    let list: Value = c.get(app.url("/api/v1/resources?per_page=100")).send().await.unwrap().json().await.unwrap();
    for r in list["items"].as_array().unwrap() {
        let v: Value = c
            .get(app.url(&format!("/api/v1/resources/{}", r["id"].as_str().unwrap())))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if v["origin"]["identifier"] == remote_id {
            return Some(v);
        }
    }
    None
}

/// The harvesting instance: accounts only, an empty catalog, loopback allowed (the remote is
/// another instance on this machine).
async fn harvester() -> TestApp {
    spawn_app_with(SpawnOptions {
        accounts_only: true,
        demo: false,
        configure: Some(|s| s.webhook_allow_cidrs = vec!["127.0.0.0/8".into()]),
        ..Default::default()
    })
    .await
}

#[tokio::test]
async fn a_ckan_harvest_keeps_the_local_catalog_in_step() {
    let remote = spawn_app().await;
    let local = harvester().await;
    let steward = local.login("gaj-steward").await;
    let total = ckan_count(&remote).await;
    assert!(total > 5, "the remote demo catalog lists datasets: {total}");
    assert_eq!(ckan_count(&local).await, 0);

    // A cron expression that does not parse, or a missing url: refused by field.
    let r = steward
        .post(local.url("/api/v1/sources"))
        .json(&json!({"name": "泰州门户", "kind": "ckan", "url": remote.address, "schedule": "every tuesday"}))
        .send()
        .await
        .unwrap();
    let e = assert_error(r, 400, "validation_failed").await;
    assert_eq!(e["error"]["details"]["fields"][0]["field"], "schedule", "{e}");
    let r =
        steward.post(local.url("/api/v1/sources")).json(&json!({"name": "x", "kind": "ckan"})).send().await.unwrap();
    let e = assert_error(r, 400, "validation_failed").await;
    assert_eq!(e["error"]["details"]["fields"][0]["field"], "url", "{e}");

    let r = steward
        .post(local.url("/api/v1/sources"))
        .json(&json!({"name": "泰州门户", "kind": "ckan", "url": remote.address, "schedule": "every 6h"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
    let source: Value = r.json().await.unwrap();
    let sid = source["id"].as_str().unwrap().to_string();
    assert_eq!(source["department"], "gaj");

    // 1. Everything the remote lists arrives, published, once.
    let first = run(&local, &steward, &sid).await;
    assert_eq!(first["state"], "succeeded", "{first}");
    assert_eq!(first["report"]["objects_created"], total, "{first}");
    assert_eq!(first["report"]["objects_refused"], 0, "{first}");
    assert_eq!(ckan_count(&local).await, total);
    let again = run(&local, &steward, &sid).await;
    assert_eq!(again["report"]["objects_created"], 0, "{again}");
    assert_eq!(again["report"]["objects_unchanged"], total, "{again}");
    assert_eq!(ckan_count(&local).await, total, "nothing duplicated");

    // The origin, in the API and on the dataset page.
    let remote_pkg: Value =
        new_client().get(remote.url("/api/3/action/package_search?rows=1")).send().await.unwrap().json().await.unwrap();
    let remote_pkg = json!({"result": remote_pkg["result"]["results"][0].clone()});
    let rid = remote_pkg["result"]["id"].as_str().unwrap().to_string();
    let mine = local_of(&local, &steward, &rid).await.expect("harvested");
    assert_eq!(mine["origin"]["source_id"], sid.as_str());
    assert_eq!(mine["origin"]["url"], remote_pkg["result"]["url"]);
    assert_eq!(mine["name"], remote_pkg["result"]["title"]);
    assert_eq!(mine["provider"], "gaj");
    assert_eq!(mine["state"], "published");
    let page = new_client()
        .get(local.url(&format!("/datasets/{}?lang=zh", mine["slug"].as_str().unwrap())))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("由目录汇聚自其他门户"), "the page says where it comes from");

    // 2. An edit on the remote propagates as one update.
    let admin = remote.login("admin").await;
    let r = admin
        .patch(remote.url(&format!("/api/v1/resources/{rid}")))
        .json(&json!({"abstract": "摘要已在源门户修改"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let third = run(&local, &steward, &sid).await;
    assert_eq!(
        (&third["report"]["objects_updated"], &third["report"]["objects_created"]),
        (&json!(1), &json!(0)),
        "{third}"
    );
    let mine = local_of(&local, &steward, &rid).await.unwrap();
    assert_eq!(mine["abstract"], "摘要已在源门户修改");

    // 3. A withdrawal on the remote withdraws the local entry.
    let r = admin.post(remote.url(&format!("/api/v1/resources/{rid}/withdraw"))).send().await.unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let fourth = run(&local, &steward, &sid).await;
    assert_eq!(fourth["report"]["objects_withdrawn"], 1, "{fourth}");
    let mine = local_of(&local, &steward, &rid).await.unwrap();
    assert_eq!(mine["state"], "withdrawn");
    assert_eq!(ckan_count(&local).await, total - 1);
    // … and published again when it comes back.
    let r = admin.post(remote.url(&format!("/api/v1/resources/{rid}/publish"))).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let fifth = run(&local, &steward, &sid).await;
    assert_eq!(fifth["report"]["objects_updated"], 1, "{fifth}");
    assert_eq!(ckan_count(&local).await, total);

    // The console page counts catalog entries per run, in words.
    let r = steward.get(local.url(&format!("/console/sources/{sid}?lang=zh"))).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let page = r.text().await.unwrap();
    assert!(
        page.contains("其他门户目录（CKAN）") && page.contains("条目新建或更新") && page.contains("目录汇聚"),
        "{page}"
    );
    assert!(crate::plain::raw_codes(&page).is_empty(), "{:?}", crate::plain::raw_codes(&page));
}

#[tokio::test]
async fn a_source_that_is_not_a_ckan_site_fails_and_changes_nothing() {
    let remote = spawn_app().await;
    let local = harvester().await;
    let steward = local.login("gaj-steward").await;
    // The portal's home page is HTML, its /api/3/… path under a wrong prefix is a 404.
    let r = steward
        .post(local.url("/api/v1/sources"))
        .json(&json!({"name": "错误地址", "kind": "ckan", "url": format!("{}/datasets", remote.address), "max_retries": 0}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let s: Value = r.json().await.unwrap();
    let done = run(&local, &steward, s["id"].as_str().unwrap()).await;
    assert_eq!(done["state"], "failed", "{done}");
    assert!(done["error"].as_str().unwrap().contains("404"), "{done}");
    assert_eq!(ckan_count(&local).await, 0);

    // Without the operator's allowance a harvest may not reach the server's own network.
    let plain = spawn_app_with(SpawnOptions { accounts_only: true, demo: false, ..Default::default() }).await;
    let c = plain.login("gaj-steward").await;
    let r = c
        .post(plain.url("/api/v1/sources"))
        .json(&json!({"name": "内网", "kind": "ckan", "url": remote.address}))
        .send()
        .await
        .unwrap();
    let e = assert_error(r, 400, "validation_failed").await;
    assert_eq!(e["error"]["details"]["fields"][0]["field"], "url", "{e}");
    assert_eq!(e["error"]["details"]["fields"][0]["code"], "address_not_allowed", "{e}");
    // Another department's steward cannot harvest into gaj.
    let wjw = local.login("wjw-steward").await;
    let r = wjw
        .post(local.url("/api/v1/sources"))
        .json(&json!({"name": "x", "kind": "ckan", "url": remote.address, "department": "gaj"}))
        .send()
        .await
        .unwrap();
    assert_error(r, 403, "forbidden").await;
}

/// The remote's open catalog as DCAT: the number of datasets over all Hydra pages.
async fn dcat_total(remote: &TestApp) -> u64 {
    let v: Value = new_client().get(remote.url("/catalog.jsonld")).send().await.unwrap().json().await.unwrap();
    v["@graph"].as_array().unwrap().iter().find_map(|n| n["hydra:totalItems"].as_u64()).unwrap()
}

#[tokio::test]
async fn a_dcat_harvest_reads_turtle_and_json_ld_and_follows_withdrawals() {
    let remote = spawn_app().await;
    let local = harvester().await;
    let steward = local.login("scjgj-steward").await;
    let total = dcat_total(&remote).await;
    assert!(total > 3, "{total}");
    let mut sources = Vec::new();
    for (name, path) in [("开放目录（Turtle）", "/catalog.ttl"), ("开放目录（JSON-LD）", "/catalog.jsonld")]
    {
        let r = steward
            .post(local.url("/api/v1/sources"))
            .json(&json!({"name": name, "kind": "dcat", "url": remote.url(path)}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
        let v: Value = r.json().await.unwrap();
        sources.push(v["id"].as_str().unwrap().to_string());
    }
    // The Turtle source creates every open dataset; the JSON-LD one, a second source, its own.
    let ttl = run(&local, &steward, &sources[0]).await;
    assert_eq!(ttl["state"], "succeeded", "{ttl}");
    assert_eq!(ttl["report"]["objects_created"], total, "{ttl}");
    let again = run(&local, &steward, &sources[0]).await;
    assert_eq!(again["report"]["objects_unchanged"], total, "{again}");
    let jsonld = run(&local, &steward, &sources[1]).await;
    assert_eq!(jsonld["state"], "succeeded", "{jsonld}");
    assert_eq!(jsonld["report"]["objects_created"], total, "{jsonld}");
    assert_eq!(ckan_count(&local).await, 2 * total);
    // A dataset's identifier is its IRI on the remote; its Chinese title and theme came along.
    let v: Value = new_client().get(remote.url("/catalog.jsonld")).send().await.unwrap().json().await.unwrap();
    let ds = v["@graph"].as_array().unwrap().iter().find(|n| n["@type"] == "dcat:Dataset").unwrap().clone();
    let iri = ds["@id"].as_str().unwrap();
    let mine = local_of(&local, &steward, iri).await.expect("harvested by its IRI");
    assert_eq!(mine["name"], ds["dct:title"]["@value"]);
    // Withdrawn on the remote → withdrawn here at the next run.
    let code = ds["dct:identifier"].as_str().unwrap().replace('/', "%2F");
    let admin = remote.login("admin").await;
    let r = admin.post(remote.url(&format!("/api/v1/resources/{code}/withdraw"))).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let after = run(&local, &steward, &sources[0]).await;
    assert_eq!(after["report"]["objects_withdrawn"], 1, "{after}");

    // A page that is not RDF fails the run, nothing written.
    let r = steward
        .post(local.url("/api/v1/sources"))
        .json(&json!({"name": "HTML", "kind": "dcat", "url": remote.url("/"), "max_retries": 0}))
        .send()
        .await
        .unwrap();
    let v: Value = r.json().await.unwrap();
    let before = ckan_count(&local).await;
    let bad = run(&local, &steward, v["id"].as_str().unwrap()).await;
    assert_eq!(bad["state"], "failed", "{bad}");
    assert!(bad["error"].as_str().unwrap().contains("DCAT"), "{bad}");
    assert_eq!(ckan_count(&local).await, before);
}

/// Remote organizations land in the local departments they are mapped to (by the CKAN
/// organization's name or title); the others under the source's department. A mapping to a
/// department that does not exist, or that the caller does not steward, is refused by field.
#[tokio::test]
async fn a_harvest_maps_remote_organizations_to_local_departments() {
    let remote = spawn_app().await;
    let local = harvester().await;
    let steward = local.login("gaj-steward").await;
    for (map, code) in [
        (json!({"泰州市市场监督管理局": "nope"}), "unknown_department"),
        (json!({"泰州市市场监督管理局": "scjgj"}), "not_stewarded"),
        (json!({"": "gaj"}), "invalid_value"),
    ] {
        let r = steward
            .post(local.url("/api/v1/sources"))
            .json(&json!({"name": "映射", "kind": "ckan", "url": remote.address, "departments": map}))
            .send()
            .await
            .unwrap();
        let e = assert_error(r, 400, "validation_failed").await;
        assert_eq!(e["error"]["details"]["fields"][0]["field"], "departments", "{e}");
        assert_eq!(e["error"]["details"]["fields"][0]["code"], code, "{e}");
    }
    // The platform admin may place entries in any department: scjgj's by the organization's
    // title, wjw's by its name (its code on a citydata remote), the rest under dsjzx.
    let admin = local.login("admin").await;
    let r = admin
        .post(local.url("/api/v1/sources"))
        .json(&json!({"name": "泰州门户", "kind": "ckan", "url": remote.address, "department": "dsjzx",
                      "departments": {"泰州市市场监督管理局": "scjgj", "wjw": "wjw"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
    let source: Value = r.json().await.unwrap();
    assert_eq!(source["departments"]["wjw"], "wjw", "{source}");
    let done = run(&local, &admin, source["id"].as_str().unwrap()).await;
    assert_eq!(done["state"], "succeeded", "{done}");
    assert_eq!(done["report"]["objects_refused"], 0, "{done}");
    // Each local entry's provider, by its remote organization.
    let remote_all: Value = new_client()
        .get(remote.url("/api/3/action/package_search?rows=1000"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut seen = std::collections::BTreeMap::new();
    for p in remote_all["result"]["results"].as_array().unwrap() {
        let org = p["organization"]["name"].as_str().unwrap().to_string();
        let want = match org.as_str() {
            "scjgj" => "scjgj",
            "wjw" => "wjw",
            _ => "dsjzx",
        };
        let mine = local_of(&local, &admin, p["id"].as_str().unwrap()).await.expect("harvested");
        assert_eq!(mine["provider"], want, "{org}: {}", mine["name"]);
        *seen.entry(want).or_insert(0) += 1;
    }
    assert!(seen.len() == 3, "entries in all three departments: {seen:?}");
    // A mapping on a data source is refused by name.
    let r = admin
        .post(local.url("/api/v1/sources"))
        .json(&json!({"name": "x", "kind": "http", "resource_id": "x", "connection": {"url": "https://203.0.113.7/x"},
                      "departments": {"a": "gaj"}}))
        .send()
        .await
        .unwrap();
    let e = assert_error(r, 400, "validation_failed").await;
    assert!(e.to_string().contains("departments"), "{e}");
}

/// A plain CKAN site serving one dataset without GB/T 21063 extras, whose CSV distribution (in
/// GB18030, Chinese headers) lives on the same site; and one whose distribution is missing.
async fn plain_ckan() -> String {
    use axum::http::header;
    use axum::response::IntoResponse;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let b = base.clone();
    let search = move || {
        let b = b.clone();
        async move {
            axum::Json(json!({"success": true, "result": {"count": 2, "results": [
                {"id": "stops", "name": "bus-stops", "title": "公交站点", "metadata_modified": "2026-11-01T00:00:00",
                 "organization": {"name": "jt", "title": "市交通局"},
                 "resources": [{"format": "JSON", "url": format!("{b}/files/stops.json")},
                               {"format": "CSV", "url": format!("{b}/files/stops.csv")}]},
                {"id": "gone", "name": "gone", "title": "缺失的文件", "metadata_modified": "2026-11-01T00:00:00",
                 "resources": [{"format": "csv", "url": format!("{b}/files/gone.csv")}]}
            ]}}))
        }
    };
    let csv = || async {
        let text = "站点编号,站点名称,线路数\nS001,泰州站,12\nS002,鼓楼路口,\"5\"\nS003,\"万达, 东门\",3\n";
        let (bytes, _, _) = encoding_rs::GB18030.encode(text);
        ([(header::CONTENT_TYPE, "text/csv; charset=gb18030")], bytes.into_owned()).into_response()
    };
    let app = axum::Router::new()
        .route("/api/3/action/package_search", axum::routing::get(search))
        .route("/files/stops.csv", axum::routing::get(csv));
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    base
}

/// `distributions: true`: each new or changed dataset's CSV distribution is loaded into its
/// table — by the remote's items when the remote is a citydata, else by items made from the
/// CSV header (GB18030 read as such). A distribution that cannot be fetched is reported and
/// leaves the catalog entry in place.
#[tokio::test]
async fn a_harvest_loads_csv_distributions_into_tables() {
    let local = harvester().await;
    let steward = local.login("gaj-steward").await;
    let plain = plain_ckan().await;
    let r = steward
        .post(local.url("/api/v1/sources"))
        .json(&json!({"name": "交通门户", "kind": "ckan", "url": plain, "distributions": true, "max_retries": 0}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
    let source: Value = r.json().await.unwrap();
    assert_eq!(source["distributions"], true);
    let done = run(&local, &steward, source["id"].as_str().unwrap()).await;
    assert_eq!(done["state"], "succeeded", "{done}");
    assert_eq!(done["report"]["objects_created"], 2, "{done}");
    assert_eq!(done["report"]["tables_loaded"], 1, "{done}");
    assert_eq!(done["report"]["rows_committed"], 3, "{done}");
    assert_eq!(done["report"]["objects_refused"], 0, "{done}");
    assert_eq!(done["report"]["distributions_failed"], 1, "{done}");
    let errors = done["report"]["errors"].to_string();
    assert!(errors.contains("gone") && errors.contains("404"), "{errors}");
    let stops = local_of(&local, &steward, "stops").await.expect("harvested");
    let titles: Vec<&str> = stops["items"].as_array().unwrap().iter().map(|i| i["title"].as_str().unwrap()).collect();
    assert_eq!(titles, ["站点编号", "站点名称", "线路数"]);
    let rows: Value = steward
        .get(local.url(&format!("/api/v1/resources/{}/rows?limit=10", stops["id"].as_str().unwrap())))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut names: Vec<&str> = rows["rows"].as_array().unwrap().iter().map(|r| r["c2"].as_str().unwrap()).collect();
    names.sort();
    assert_eq!(names, ["万达, 东门", "泰州站", "鼓楼路口"], "{rows}");
    assert!(local_of(&local, &steward, "gone").await.is_some(), "the entry stays without its table");

    // Another citydata as the remote: its open tables arrive under its own items.
    let remote = spawn_app().await;
    let wjw = remote.login("wjw-steward").await;
    let r = wjw
        .post(remote.url("/api/v1/resources/201%2F000003/data?mode=replace"))
        .body("门诊名称,地址,开放时间\n海陵区接种门诊,鼓楼南路1号,周一至周五\n高港区接种门诊,通江路2号,周二、周四\n")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
    let r = steward
        .post(local.url("/api/v1/sources"))
        .json(&json!({"name": "泰州门户", "kind": "ckan", "url": remote.address, "distributions": true,
                      "max_retries": 0}))
        .send()
        .await
        .unwrap();
    let source: Value = r.json().await.unwrap();
    let done = run(&local, &steward, source["id"].as_str().unwrap()).await;
    assert_eq!(done["state"], "succeeded", "{done}");
    // What an anonymous caller can export from the remote is what arrives.
    let all: Value = new_client()
        .get(remote.url("/api/3/action/package_search?rows=1000"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let (mut exported, mut tables) = (0u64, 0u64);
    for p in all["result"]["results"].as_array().unwrap() {
        let r = new_client()
            .get(remote.url(&format!("/api/v1/resources/{}/export?format=csv", p["id"].as_str().unwrap())))
            .send()
            .await
            .unwrap();
        if r.status() == 200 {
            let lines = r.text().await.unwrap().lines().count() as u64;
            if lines > 1 {
                exported += lines - 1;
                tables += 1;
            }
        }
    }
    assert!(tables > 0, "the remote demo has open tables");
    let rep = &done["report"];
    assert_eq!(rep["tables_loaded"].as_u64().unwrap(), tables, "{done}");
    assert_eq!(rep["rows_committed"].as_u64().unwrap() + rep["rows_quarantined"].as_u64().unwrap(), exported, "{done}");
    // A data source refuses the switch by name.
    let r = steward
        .post(local.url("/api/v1/sources"))
        .json(&json!({"name": "x", "kind": "http", "resource_id": "x", "connection": {"url": "https://203.0.113.7/x"},
                      "distributions": true}))
        .send()
        .await
        .unwrap();
    let e = assert_error(r, 400, "validation_failed").await;
    assert!(e.to_string().contains("distributions"), "{e}");
}
