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
        .get(app.url("/api/v1/resources/101%2F000001/rows?limit=5&sort=qx"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let cursor = p1["next_cursor"].as_str().unwrap();
    let p2: Value = wjw
        .get(app.url(&format!("/api/v1/resources/101%2F000001/rows?limit=5&sort=qx&cursor={cursor}")))
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
    assert_error(r, 404, "version_not_found").await;
}

/// Every export format, as the narrowed grantee and as an anonymous reader: only the allowed
/// items and rows, masked, nothing original; audited with row counts.
#[tokio::test]
async fn every_export_format_goes_through_the_gate() {
    let app = spawn_app().await;
    let (pop, ent) = load(&app).await;
    let wjw = app.login("wjw-analyst").await;
    let base = app.url("/api/v1/resources/101%2F000001/export");
    assert_error(wjw.get(format!("{base}?format=csv")).send().await.unwrap(), 403, "grant_required").await;
    let gaj = app.login("gaj-steward").await;
    let r = gaj
        .post(app.url("/api/v1/grants"))
        .json(&json!({
            "resource_id": "101/000001", "grantee": {"department": "wjw"},
            "fields": ["身份证号", "性别", "出生日期", "区县"], "row_filter": "区县 = '海陵区'", "purpose": "统计"
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let haling = column(&pop, "区县").iter().filter(|d| *d == "海陵区").count();
    let ids = column(&pop, "身份证号");
    let names = column(&pop, "姓名");
    let no_originals = |text: &str, what: &str| {
        for v in ids.iter().chain(names.iter()) {
            assert!(!text.contains(v.as_str()), "{what}: {v} leaked");
        }
    };
    for format in ["csv", "ndjson", "json", "parquet", "xlsx"] {
        let r = wjw.get(format!("{base}?format={format}&header=title")).send().await.unwrap();
        assert_eq!(r.status(), 200, "{format}");
        let cd = r.headers()["content-disposition"].to_str().unwrap().to_string();
        assert!(cd.contains(&format!(".{format}")), "{cd}");
        let bytes = r.bytes().await.unwrap().to_vec();
        let (header, rows, text): (Vec<String>, Vec<Vec<String>>, String) = match format {
            "csv" => {
                let t = String::from_utf8(bytes).unwrap();
                let mut l = t.lines();
                let h = l.next().unwrap().split(',').map(str::to_string).collect();
                let rows = l.map(|x| x.split(',').map(str::to_string).collect()).collect();
                (h, rows, t)
            }
            "ndjson" | "json" => {
                let t = String::from_utf8(bytes).unwrap();
                let objs: Vec<serde_json::Map<String, Value>> = if format == "json" {
                    serde_json::from_str(&t).unwrap()
                } else {
                    t.lines().map(|l| serde_json::from_str(l).unwrap()).collect()
                };
                // serde_json maps sort their keys: check the set, then read in the expected order.
                let mut keys: Vec<String> = objs[0].keys().cloned().collect();
                keys.sort();
                let mut want: Vec<String> =
                    ["身份证号", "性别", "出生日期", "区县"].iter().map(|s| s.to_string()).collect();
                want.sort();
                assert_eq!(keys, want, "{format}");
                let h: Vec<String> = ["身份证号", "性别", "出生日期", "区县"].iter().map(|s| s.to_string()).collect();
                let rows = objs
                    .iter()
                    .map(|o| {
                        h.iter()
                            .map(|k| o[k].as_str().map(str::to_string).unwrap_or_else(|| o[k].to_string()))
                            .collect()
                    })
                    .collect();
                (h, rows, t)
            }
            "parquet" => {
                let builder =
                    parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(bytes::Bytes::from(bytes))
                        .unwrap();
                // Item titles as field metadata for every caller, the masked 身份证号 included;
                // plain strings, not view types.
                let fields = builder.schema().fields().clone();
                let titles: Vec<String> =
                    fields.iter().map(|f| f.metadata().get("title").cloned().unwrap_or_default()).collect();
                assert_eq!(titles, ["身份证号", "性别", "出生日期", "区县"]);
                assert_eq!(fields[0].data_type(), &arrow::datatypes::DataType::Utf8);
                let reader = builder.build().unwrap();
                let mut h = vec![];
                let mut rows = vec![];
                for b in reader {
                    let b = b.unwrap();
                    h = b.schema().fields().iter().map(|f| f.name().clone()).collect();
                    for r in 0..b.num_rows() {
                        rows.push(
                            b.columns()
                                .iter()
                                .map(|c| arrow::util::display::array_value_to_string(c, r).unwrap())
                                .collect(),
                        );
                    }
                }
                let text = format!("{rows:?}");
                (h, rows, text)
            }
            _ => {
                use calamine::Reader;
                let mut wb: calamine::Xlsx<_> = calamine::open_workbook_from_rs(std::io::Cursor::new(bytes)).unwrap();
                let name = wb.sheet_names()[0].clone();
                let range = wb.worksheet_range(&name).unwrap();
                let mut it = range.rows();
                let h = it.next().unwrap().iter().map(|c| c.to_string()).collect();
                let rows: Vec<Vec<String>> = it.map(|r| r.iter().map(|c| c.to_string()).collect()).collect();
                let text = format!("{rows:?}");
                (h, rows, text)
            }
        };
        assert_eq!(header, ["身份证号", "性别", "出生日期", "区县"], "{format}");
        assert_eq!(rows.len(), haling, "{format}");
        assert!(rows.iter().all(|r| r[3] == "海陵区"), "{format}");
        assert!(rows.iter().all(|r| r[0].contains("********")), "{format}");
        no_originals(&text, format);
    }
    // GB18030 CSV with a BOM-free Chinese header.
    let r = wjw.get(format!("{base}?format=csv&encoding=gb18030&header=title")).send().await.unwrap();
    let bytes = r.bytes().await.unwrap();
    let (decoded, _, bad) = encoding_rs::GB18030.decode(&bytes);
    assert!(!bad && decoded.starts_with("身份证号,"));
    assert_error(wjw.get(format!("{base}?format=docx")).send().await.unwrap(), 400, "validation_failed").await;

    // Anonymous: the open enterprise register with 法定代表人 masked.
    let anon = new_client();
    let csv = anon
        .get(app.url("/api/v1/resources/102%2F000001/export?format=csv&bom=true"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(csv.starts_with('\u{feff}'));
    assert_eq!(csv.lines().count(), 51);
    for n in column(&ent, "法定代表人") {
        assert!(!csv.contains(&format!(",{n},")), "{n} leaked");
    }
    assert_error(anon.get(format!("{base}?format=csv")).send().await.unwrap(), 404, "not_found").await;

    // Audited with rows once the download ends.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let admin = app.login("admin").await;
    let page: Value = admin
        .get(app.url("/api/v1/audit?action=data.export&actor=wjw-analyst&per_page=100"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let ok: Vec<&Value> = page["entries"].as_array().unwrap().iter().filter(|e| e["outcome"] == "success").collect();
    assert!(ok.len() >= 5, "{page}");
    assert!(ok.iter().all(|e| e["details"]["rows"].as_u64() == Some(haling as u64)));
}

#[tokio::test]
async fn aggregates_respect_the_grant_and_suppress_small_groups_for_the_public() {
    let app = spawn_app().await;
    let (pop, ent) = load(&app).await;
    let wjw = app.login("wjw-analyst").await;
    let url = app.url("/api/v1/resources/101%2F000001/aggregate?group_by=区县");
    assert_error(wjw.get(&url).send().await.unwrap(), 403, "grant_required").await;
    let gaj = app.login("gaj-steward").await;
    gaj.post(app.url("/api/v1/grants"))
        .json(&json!({"resource_id": "101/000001", "grantee": {"department": "wjw"}, "fields": ["性别", "区县"], "row_filter": "区县 = '海陵区'", "purpose": "统计"}))
        .send()
        .await
        .unwrap();
    let v: Value = wjw
        .get(app.url("/api/v1/resources/101%2F000001/aggregate?group_by=区县,性别"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let rows = v["rows"].as_array().unwrap();
    assert!(rows.iter().all(|r| r["qx"] == "海陵区"), "the grant's filter applies");
    let total: u64 = rows.iter().map(|r| r["count"].as_u64().unwrap()).sum();
    assert_eq!(total as usize, column(&pop, "区县").iter().filter(|d| *d == "海陵区").count());
    assert_error(
        wjw.get(app.url("/api/v1/resources/101%2F000001/aggregate?group_by=姓名")).send().await.unwrap(),
        400,
        "validation_failed",
    )
    .await;

    // The public: counts by district of the enterprise register; groups under 5 suppressed.
    let anon = new_client();
    let v: Value = anon
        .get(app.url(
            "/api/v1/resources/102%2F000001/aggregate?group_by=区县&metrics=count,sum(注册资本万元),max(成立日期)",
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["min_group_size"], 5);
    let districts = column(&ent, "区县");
    let shown: u64 = v["rows"].as_array().unwrap().iter().map(|r| r["count"].as_u64().unwrap()).sum();
    let small = v["rows"].as_array().unwrap().iter().any(|r| r["count"].as_u64().unwrap() < 5);
    assert!(!small);
    assert!(shown as usize <= districts.len());
    let by_rep: Value = anon
        .get(app.url("/api/v1/resources/102%2F000001/aggregate?group_by=法定代表人"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(by_rep["suppressed_groups"].as_u64().unwrap() > 0, "individual names form groups of one: {by_rep}");
    assert!(by_rep["rows"].as_array().unwrap().iter().all(|r| r["count"].as_u64().unwrap() >= 5));
    assert_error(
        anon.get(app.url("/api/v1/resources/102%2F000001/aggregate?metrics=median(x)")).send().await.unwrap(),
        400,
        "validation_failed",
    )
    .await;
}

#[tokio::test]
async fn ckan_datastore_search_goes_through_the_gate() {
    let app = spawn_app().await;
    let (pop, _) = load(&app).await;
    let token = app.token("wjw-analyst").await;
    let c = new_client();
    let call = |body: Value| {
        let c = c.clone();
        let url = app.url("/api/3/action/datastore_search");
        let token = token.clone();
        async move {
            let r = c.post(url).header("Authorization", token).json(&body).send().await.unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap())
        }
    };
    let (s, v) = call(json!({"resource_id": "101/000001"})).await;
    assert_eq!(s, 403);
    assert_eq!(v["error"]["__type"], "Authorization Error");
    let gaj = app.login("gaj-steward").await;
    gaj.post(app.url("/api/v1/grants"))
        .json(&json!({"resource_id": "101/000001", "grantee": {"department": "wjw"}, "fields": ["身份证号", "性别", "出生日期", "区县"], "row_filter": "区县 = '海陵区'", "purpose": "统计"}))
        .send()
        .await
        .unwrap();
    let (s, v) = call(json!({"resource_id": "101/000001", "limit": 32000, "filters": {"性别": "女"}})).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["success"], true);
    let recs = v["result"]["records"].as_array().unwrap();
    assert!(!recs.is_empty());
    assert!(
        recs.iter().all(|r| r["qx"] == "海陵区" && r["xb"] == "女" && r["sfzh"].as_str().unwrap().contains("****"))
    );
    assert_eq!(v["result"]["total"].as_u64().unwrap() as usize, recs.len());
    let ids: Vec<&str> = v["result"]["fields"].as_array().unwrap().iter().map(|f| f["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["_id", "sfzh", "xb", "csrq", "qx"], "CKAN's _id first");
    let text = v.to_string();
    for id in column(&pop, "身份证号") {
        assert!(!text.contains(&id), "{id} leaked");
    }
    let (_, v) = call(json!({"resource_id": "101/000001", "records_format": "lists", "limit": 2, "offset": 1, "fields": ["xb", "qx"]})).await;
    assert_eq!(v["result"]["records"].as_array().unwrap().len(), 2);
    assert_eq!(v["result"]["records"][0].as_array().unwrap().len(), 2);
    let (s, _) = call(json!({"resource_id": "101/000001", "limit": 40000})).await;
    assert_eq!(s, 409);
    // q finds text in readable, unmasked text items only.
    let (_, v) = call(json!({"resource_id": "101/000001", "q": "海陵", "limit": 5})).await;
    assert_eq!(v["result"]["records"].as_array().unwrap().len(), 5);
    let (_, v) = call(json!({"resource_id": "101/000001", "q": "高港"})).await;
    assert_eq!(v["result"]["total"], 0, "outside the grant's rows");
    let a_name = column(&pop, "姓名")[0].clone();
    let (_, v) = call(json!({"resource_id": "101/000001", "q": a_name})).await;
    assert_eq!(v["result"]["total"], 0, "names are not granted, so not searchable");
    let (s, v) = call(json!({"sql": "SELECT 1"})).await;
    assert_eq!(s, 409, "{v}");
    let r = c
        .post(app.url("/api/3/action/datastore_search_sql"))
        .json(&json!({"sql": "SELECT * FROM x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
}

#[tokio::test]
async fn the_sql_sandbox_holds_only_the_gates_views() {
    let app = spawn_app().await;
    let (pop, _) = load(&app).await;
    let wjw = app.login("wjw-analyst").await;
    let sql = |c: &reqwest::Client, q: &str| c.post(app.url("/api/v1/sql")).json(&json!({"sql": q})).send();
    let r = sql(&wjw, "SELECT * FROM \"101/000001\"").await.unwrap();
    assert_error(r, 403, "grant_required").await;
    let gaj = app.login("gaj-steward").await;
    gaj.post(app.url("/api/v1/grants"))
        .json(&json!({"resource_id": "101/000001", "grantee": {"department": "wjw"}, "fields": ["身份证号", "性别", "区县"], "row_filter": "区县 = '海陵区'", "purpose": "统计"}))
        .send()
        .await
        .unwrap();
    let r = sql(&wjw, "SELECT * FROM \"101/000001\" LIMIT 100000").await.unwrap();
    assert_eq!(r.status(), 200);
    let text = r.text().await.unwrap();
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["columns"], json!(["sfzh", "xb", "qx"]));
    let rows = v["rows"].as_array().unwrap();
    assert_eq!(rows.len(), column(&pop, "区县").iter().filter(|d| *d == "海陵区").count());
    for id in column(&pop, "身份证号") {
        assert!(!text.contains(&id), "{id} leaked");
    }
    // Ungranted columns do not exist in the view; other rows are not there either.
    assert_error(sql(&wjw, "SELECT xm FROM \"101/000001\"").await.unwrap(), 400, "sql_error").await;
    let v: Value =
        sql(&wjw, "SELECT count(*) AS n FROM \"101/000001\" WHERE qx <> '海陵区'").await.unwrap().json().await.unwrap();
    assert_eq!(v["rows"][0]["n"], 0);
    // By slug, joined with an open resource.
    let slug = {
        let v: Value = wjw.get(app.url("/api/v1/resources/101%2F000001")).send().await.unwrap().json().await.unwrap();
        v["slug"].as_str().unwrap().to_string()
    };
    let v: Value = sql(&wjw, &format!("SELECT p.xb, count(*) AS n FROM \"{slug}\" p GROUP BY p.xb ORDER BY p.xb"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["tables"], json!(["101/000001"]));
    // Statements other than one SELECT are refused; no file or URL access.
    for bad in [
        "DROP TABLE \"101/000001\"",
        "CREATE TABLE x AS SELECT 1",
        "INSERT INTO \"101/000001\" VALUES ('x', 'y', 'z')",
        "COPY (SELECT 1) TO '/tmp/x.csv'",
        "SELECT * FROM '/etc/passwd'",
        "SELECT * FROM read_parquet('/tmp/x.parquet')",
        "SET datafusion.execution.batch_size = 1",
        "SELECT * FROM \"999/000001\"",
    ] {
        let r = sql(&wjw, bad).await.unwrap();
        let status = r.status().as_u16();
        let body: Value = r.json().await.unwrap();
        assert!((400..500).contains(&status), "{bad}: {status} {body}");
        assert!(!body.to_string().contains("/etc/passwd") || status == 404 || status == 400, "{bad}");
    }
    // The public has no SQL.
    assert_error(
        new_client().post(app.url("/api/v1/sql")).json(&json!({"sql": "SELECT 1"})).send().await.unwrap(),
        401,
        "unauthenticated",
    )
    .await;
}

/// Keyed pseudonyms are stable across resources, so pseudonymized tables still join.
#[tokio::test]
async fn pseudonymized_tables_still_join() {
    let app = spawn_app().await;
    let (pop, _) = load(&app).await;
    let gaj = app.login("gaj-steward").await;
    let ids = column(&pop, "身份证号");
    let names = column(&pop, "姓名");
    // 流动人口: 40 of the same people.
    let mut flow = String::from("身份证号,姓名,居住地址,登记日期\n");
    for i in 0..40 {
        flow.push_str(&format!("{},{},泰州市海陵区青年路{}号,2024-03-01\n", ids[i * 3], names[i * 3], i + 1));
    }
    let r = gaj.post(app.url("/api/v1/resources/101%2F000002/data")).body(flow).send().await.unwrap();
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
    for code in ["101/000001", "101/000002"] {
        let r = gaj
            .post(app.url("/api/v1/grants"))
            .json(&json!({"resource_id": code, "grantee": {"department": "wjw"}, "fields": ["身份证号"], "masks": {"身份证号": "pseudonym"}, "purpose": "关联分析"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
    }
    let wjw = app.login("wjw-analyst").await;
    let r = wjw
        .post(app.url("/api/v1/sql"))
        .json(&json!({"sql": "SELECT count(*) AS n FROM \"101/000001\" a JOIN \"101/000002\" b ON a.sfzh = b.sfzh"}))
        .send()
        .await
        .unwrap();
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["rows"][0]["n"], 40, "{v}");
    let rows: Value =
        wjw.get(app.url("/api/v1/resources/101%2F000002/rows?limit=100")).send().await.unwrap().json().await.unwrap();
    let text = rows.to_string();
    assert_eq!(rows["fields"][0]["mask"], "pseudonym");
    for id in &ids {
        assert!(!text.contains(id.as_str()), "{id} leaked");
    }
}

/// Every read path's body as text (Parquet and XLSX decoded), with its status.
async fn every_path(app: &TestApp, c: &reqwest::Client, token: Option<&str>, code: &str) -> Vec<(String, u16, String)> {
    let enc = code.replace('/', "%2F");
    let mut out = Vec::new();
    let auth = |rb: reqwest::RequestBuilder| match token {
        Some(t) => rb.bearer_auth(t),
        None => rb,
    };
    let mut gets = vec![
        ("rows".to_string(), format!("/api/v1/resources/{enc}/rows?limit=10000")),
        ("aggregate".to_string(), format!("/api/v1/resources/{enc}/aggregate?group_by=区县")),
    ];
    for f in ["csv", "ndjson", "json", "parquet", "xlsx"] {
        gets.push((format!("export.{f}"), format!("/api/v1/resources/{enc}/export?format={f}")));
    }
    for (name, path) in gets {
        let r = auth(c.get(app.url(&path))).send().await.unwrap();
        let status = r.status().as_u16();
        let bytes = r.bytes().await.unwrap().to_vec();
        let text = match (name.as_str(), status) {
            ("export.parquet", 200) if !bytes.is_empty() => {
                let reader =
                    parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(bytes::Bytes::from(bytes))
                        .unwrap()
                        .build()
                        .unwrap();
                let mut t = String::new();
                for b in reader {
                    let b = b.unwrap();
                    for r in 0..b.num_rows() {
                        for col in b.columns() {
                            t.push_str(&arrow::util::display::array_value_to_string(col, r).unwrap());
                            t.push('|');
                        }
                    }
                }
                t
            }
            ("export.xlsx", 200) => {
                use calamine::Reader;
                let mut wb: calamine::Xlsx<_> = calamine::open_workbook_from_rs(std::io::Cursor::new(bytes)).unwrap();
                let n = wb.sheet_names()[0].clone();
                let range = wb.worksheet_range(&n).unwrap();
                range.rows().flat_map(|r| r.iter().map(|c| format!("{c}|")).collect::<Vec<_>>()).collect()
            }
            _ => String::from_utf8_lossy(&bytes).into_owned(),
        };
        out.push((name, status, text));
    }
    let r = auth(c.post(app.url("/api/v1/sql")))
        .json(&json!({"sql": format!("SELECT * FROM \"{code}\"")}))
        .send()
        .await
        .unwrap();
    out.push(("sql".into(), r.status().as_u16(), r.text().await.unwrap()));
    let r = auth(c.post(app.url("/api/3/action/datastore_search")))
        .json(&json!({"resource_id": code, "limit": 32000}))
        .send()
        .await
        .unwrap();
    out.push(("datastore_search".into(), r.status().as_u16(), r.text().await.unwrap()));
    out
}

/// The authorization matrix: every caller class × every read path × both demo registers; the
/// bodies are scanned for the original values of personal items and for rows outside the grant.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_authorization_matrix() {
    let app = spawn_app().await;
    let (pop, ent) = load(&app).await;
    let admin = app.login("admin").await;
    for (u, ms) in [("rsj-analyst", json!([{"department": "rsj", "role": "analyst"}])), ("citizen", json!([]))] {
        let r = admin
            .post(app.url("/api/v1/users"))
            .json(&json!({"username": u, "display_name": u, "password": "matrix-password", "memberships": ms}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
    }
    let token_of = |u: &'static str| {
        let app = &app;
        async move {
            let c = new_client();
            c.post(app.url("/api/v1/auth/login"))
                .json(&json!({"username": u, "password": "matrix-password"}))
                .send()
                .await
                .unwrap();
            let v: Value = c
                .post(app.url("/api/v1/tokens"))
                .json(&json!({"name": "m"}))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            v["token"].as_str().unwrap().to_string()
        }
    };
    let rsj = token_of("rsj-analyst").await;
    let citizen = token_of("citizen").await;
    let wjw = app.token("wjw-analyst").await;
    let gaj_t = app.token("gaj-steward").await;
    let scj_t = app.token("scjgj-steward").await;
    let gaj = app.login("gaj-steward").await;
    gaj.post(app.url("/api/v1/grants"))
        .json(&json!({"resource_id": "101/000001", "grantee": {"department": "wjw"}, "fields": ["身份证号", "性别", "出生日期", "区县"], "row_filter": "区县 = '海陵区'", "purpose": "矩阵"}))
        .send()
        .await
        .unwrap();
    let c = new_client();
    let personal_pop: Vec<String> =
        ["身份证号", "姓名", "户籍地址", "手机号"].iter().flat_map(|t| column(&pop, t)).collect();
    let reps: Vec<String> = column(&ent, "法定代表人");
    let other_districts = ["高港区", "姜堰区", "兴化市", "靖江市", "泰兴市"];

    // 人口基础信息 (conditional share, not open).
    for (who, token) in [
        ("anonymous", None),
        ("citizen", Some(citizen.as_str())),
        ("rsj", Some(rsj.as_str())),
        ("wjw", Some(wjw.as_str())),
        ("gaj", Some(gaj_t.as_str())),
    ] {
        for (path, status, text) in every_path(&app, &c, token, "101/000001").await {
            let ctx = format!("人口 / {who} / {path}: {status} {}", text.chars().take(200).collect::<String>());
            match who {
                "gaj" => assert_eq!(status, 200, "{ctx}"),
                "wjw" => {
                    assert_eq!(status, 200, "{ctx}");
                    for v in &personal_pop {
                        assert!(!text.contains(v.as_str()), "{ctx}: {v} leaked");
                    }
                    for d in other_districts {
                        assert!(!text.contains(d), "{ctx}: a row outside the grant ({d})");
                    }
                }
                _ => {
                    assert!((400..500).contains(&status), "{ctx}");
                    for v in &personal_pop {
                        assert!(!text.contains(v.as_str()), "{ctx}: {v} leaked");
                    }
                }
            }
        }
    }
    // 企业登记信息 (unconditional share and open): 法定代表人 masked for everyone but the provider.
    for (who, token) in [
        ("anonymous", None),
        ("citizen", Some(citizen.as_str())),
        ("rsj", Some(rsj.as_str())),
        ("scjgj", Some(scj_t.as_str())),
    ] {
        for (path, status, text) in every_path(&app, &c, token, "102/000001").await {
            let ctx = format!("企业 / {who} / {path}: {status}");
            if path == "sql" && matches!(who, "anonymous" | "citizen") {
                assert!((400..500).contains(&status), "{ctx}");
                continue;
            }
            assert_eq!(status, 200, "{ctx} {}", text.chars().take(200).collect::<String>());
            if who == "scjgj" {
                continue;
            }
            for name in &reps {
                // Whole-cell matches only: a masked 张* never equals 张三.
                for needle in [format!("\"{name}\""), format!(",{name},"), format!("{name}|")] {
                    assert!(!text.contains(&needle), "{ctx}: {name} leaked");
                }
            }
        }
    }
}
